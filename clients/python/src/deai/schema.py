"""Field codecs: how one value is written to canonical bytes and to the node's JSON.

Every transaction, voucher and receipt type of this package is a dataclass whose fields carry
a :class:`Codec` in their metadata (:func:`field`). :class:`StructCodec` then writes the fields in
declaration order (the order of the Rust ``Write`` impls), reads them back, and converts to and
from the JSON the node's API uses (serde's shapes: ``u128`` amounts as decimal strings, bytes
and hashes as lowercase hex, ``Option`` as ``null``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Generic, TypeVar

from .codec import DecodeError, Reader, Writer
from .types import Address, Digest, from_hex

__all__ = [
    "ADDRESS",
    "AMOUNT",
    "BOOL",
    "BYTES",
    "DIGEST",
    "I64",
    "SIG",
    "STR",
    "U32",
    "U64",
    "Codec",
    "ListOf",
    "Opt",
    "StructCodec",
    "field",
    "struct_codec",
]

T = TypeVar("T")


class Codec(Generic[T]):
    """How a value of one type is encoded (bytes) and shown (JSON)."""

    def write(self, w: Writer, v: T) -> None:
        """Appends the canonical encoding of ``v``."""
        raise NotImplementedError

    def read(self, r: Reader) -> T:
        """Reads a value back."""
        raise NotImplementedError

    def to_json(self, v: T) -> Any:
        """The value as the node's JSON shows it."""
        raise NotImplementedError

    def from_json(self, j: Any) -> T:
        """The value from the node's JSON."""
        raise NotImplementedError


class _Int(Codec[int]):
    def __init__(self, bits: int, signed: bool = False) -> None:
        self.bits = bits
        self.signed = signed

    def write(self, w: Writer, v: int) -> None:
        if self.signed:
            w.i64(v)
        elif self.bits == 32:
            w.u32(v)
        else:
            w.u64(v)

    def read(self, r: Reader) -> int:
        if self.signed:
            return r.i64()
        return r.u32() if self.bits == 32 else r.u64()

    def to_json(self, v: int) -> Any:
        return v

    def from_json(self, j: Any) -> int:
        if isinstance(j, bool) or not isinstance(j, int):
            raise ValueError(f"expected an integer, got {j!r}")
        return j


class _Amount(Codec[int]):
    """A ``u128`` amount: 16 bytes big-endian; a decimal string in JSON."""

    def write(self, w: Writer, v: int) -> None:
        w.u128(v)

    def read(self, r: Reader) -> int:
        return r.u128()

    def to_json(self, v: int) -> Any:
        return str(v)

    def from_json(self, j: Any) -> int:
        if isinstance(j, str):
            return int(j, 10)
        if isinstance(j, int) and not isinstance(j, bool):
            return j
        raise ValueError(f"expected an amount (decimal string), got {j!r}")


class _Bool(Codec[bool]):
    def write(self, w: Writer, v: bool) -> None:
        w.boolean(v)

    def read(self, r: Reader) -> bool:
        return r.boolean()

    def to_json(self, v: bool) -> Any:
        return v

    def from_json(self, j: Any) -> bool:
        if not isinstance(j, bool):
            raise ValueError(f"expected a bool, got {j!r}")
        return j


class _Fixed32(Codec[Any]):
    def __init__(self, cls: type[Address] | type[Digest]) -> None:
        self.cls = cls

    def write(self, w: Writer, v: Any) -> None:
        if len(v) != 32:
            raise ValueError(f"expected 32 bytes, got {len(v)}")
        w.raw(bytes(v))

    def read(self, r: Reader) -> Any:
        return self.cls(r.take(32))

    def to_json(self, v: Any) -> Any:
        return bytes(v).hex()

    def from_json(self, j: Any) -> Any:
        return self.cls.from_hex(j)


class _Sig(Codec[bytes]):
    """A 64-byte signature: raw bytes; hex in JSON."""

    def write(self, w: Writer, v: bytes) -> None:
        if len(v) != 64:
            raise ValueError(f"a signature is 64 bytes, got {len(v)}")
        w.raw(bytes(v))

    def read(self, r: Reader) -> bytes:
        return r.take(64)

    def to_json(self, v: bytes) -> Any:
        return bytes(v).hex()

    def from_json(self, j: Any) -> bytes:
        b = from_hex(j)
        if len(b) != 64:
            raise ValueError(f"signature: expected 64 bytes, got {len(b)}")
        return b


class _Str(Codec[str]):
    def write(self, w: Writer, v: str) -> None:
        w.string(v)

    def read(self, r: Reader) -> str:
        return r.string()

    def to_json(self, v: str) -> Any:
        return v

    def from_json(self, j: Any) -> str:
        if not isinstance(j, str):
            raise ValueError(f"expected a string, got {j!r}")
        return j


class _Bytes(Codec[bytes]):
    """A byte string: ``length || bytes``; hex in JSON."""

    def write(self, w: Writer, v: bytes) -> None:
        w.byte_string(bytes(v))

    def read(self, r: Reader) -> bytes:
        return r.byte_string()

    def to_json(self, v: bytes) -> Any:
        return bytes(v).hex()

    def from_json(self, j: Any) -> bytes:
        return from_hex(j)


class ListOf(Codec[list[T]]):
    """``length || items``; a JSON array."""

    def __init__(self, item: Codec[T]) -> None:
        self.item = item

    def write(self, w: Writer, v: list[T]) -> None:
        w.length(len(v))
        for x in v:
            self.item.write(w, x)

    def read(self, r: Reader) -> list[T]:
        n = r.length()
        if n > r.remaining:  # every item takes at least one byte
            raise DecodeError(f"list of {n} items in {r.remaining} bytes")
        return [self.item.read(r) for _ in range(n)]

    def to_json(self, v: list[T]) -> Any:
        return [self.item.to_json(x) for x in v]

    def from_json(self, j: Any) -> list[T]:
        if not isinstance(j, list):
            raise ValueError(f"expected a list, got {j!r}")
        return [self.item.from_json(x) for x in j]


class Opt(Codec["T | None"]):
    """A presence byte then the value; ``null`` in JSON when absent."""

    def __init__(self, item: Codec[T]) -> None:
        self.item = item

    def write(self, w: Writer, v: T | None) -> None:
        if v is None:
            w.u8(0)
        else:
            w.u8(1)
            self.item.write(w, v)

    def read(self, r: Reader) -> T | None:
        flag = r.u8()
        if flag == 0:
            return None
        if flag != 1:
            raise DecodeError(f"option flag {flag}")
        return self.item.read(r)

    def to_json(self, v: T | None) -> Any:
        return None if v is None else self.item.to_json(v)

    def from_json(self, j: Any) -> T | None:
        return None if j is None else self.item.from_json(j)


class StructCodec(Codec[T]):
    """A dataclass whose fields carry codecs: written in field order; a JSON object."""

    def __init__(self, cls: type[T]) -> None:
        self.cls = cls
        self.fields = [
            (f.name, f.metadata["codec"], f)
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if "codec" in f.metadata
        ]

    def write(self, w: Writer, v: T) -> None:
        if not isinstance(v, self.cls):
            raise TypeError(f"expected {self.cls.__name__}, got {type(v).__name__}")
        for name, codec, _ in self.fields:
            codec.write(w, getattr(v, name))

    def read(self, r: Reader) -> T:
        return self.cls(**{name: codec.read(r) for name, codec, _ in self.fields})

    def to_json(self, v: T) -> Any:
        return {name: codec.to_json(getattr(v, name)) for name, codec, _ in self.fields}

    def from_json(self, j: Any) -> T:
        if not isinstance(j, dict):
            raise ValueError(f"{self.cls.__name__}: expected an object, got {j!r}")
        args: dict[str, Any] = {}
        for name, codec, f in self.fields:
            if name in j:
                args[name] = codec.from_json(j[name])
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{self.cls.__name__}: missing field {name!r}")
        return self.cls(**args)


def field(codec: Codec[Any], **kwargs: Any) -> Any:
    """A dataclass field encoded with ``codec`` (``default=`` where serde has a default)."""
    return dataclasses.field(metadata={"codec": codec}, **kwargs)


_CODECS: dict[type[Any], StructCodec[Any]] = {}


def struct_codec(cls: type[T]) -> StructCodec[T]:
    """The codec of a dataclass (built once per class)."""
    cached = _CODECS.get(cls)
    if cached is None:
        cached = _CODECS[cls] = StructCodec(cls)
    return cached


class _Lazy(Codec[T]):
    """A struct codec built on first use (for dataclasses defined after the field)."""

    def __init__(self, cls_name: str, module: dict[str, Any]) -> None:
        self.cls_name = cls_name
        self.module = module

    def _inner(self) -> Codec[T]:
        return struct_codec(self.module[self.cls_name])

    def write(self, w: Writer, v: T) -> None:
        self._inner().write(w, v)

    def read(self, r: Reader) -> T:
        return self._inner().read(r)

    def to_json(self, v: T) -> Any:
        return self._inner().to_json(v)

    def from_json(self, j: Any) -> T:
        return self._inner().from_json(j)


def nested(cls_name: str, module: dict[str, Any]) -> Codec[Any]:
    """A field codec for a dataclass named ``cls_name`` in ``module`` (``globals()``)."""
    return _Lazy(cls_name, module)


U32: Codec[int] = _Int(32)
U64: Codec[int] = _Int(64)
I64: Codec[int] = _Int(64, signed=True)
AMOUNT: Codec[int] = _Amount()
BOOL: Codec[bool] = _Bool()
ADDRESS: Codec[Address] = _Fixed32(Address)
DIGEST: Codec[Digest] = _Fixed32(Digest)
SIG: Codec[bytes] = _Sig()
STR: Codec[str] = _Str()
BYTES: Codec[bytes] = _Bytes()
