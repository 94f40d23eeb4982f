"""The ledger's canonical encoding (``commonware_codec`` as the Rust side uses it).

Rules, as ``crates/deai-ledger/src/codec.rs`` and ``commonware-codec`` define them:

* fixed-width integers are big-endian: ``u32`` 4 bytes, ``u64`` 8, ``i64`` 8 (two's
  complement), ``u128`` 16; ``u8`` and ``bool`` one byte (``bool`` is 0 or 1);
* lengths (``usize``) are canonical LEB128 varints of at most a ``u32``: 7 bits a byte, low
  bits first, the high bit set on every byte but the last, no trailing zero byte;
* strings and byte strings are ``length || bytes`` (strings UTF-8);
* lists are ``length || items``;
* ``Option<T>`` is a presence byte (0 or 1) then ``T`` when present;
* addresses, digests and signatures are their raw 32 or 64 bytes.

:class:`Writer` builds bytes; :class:`Reader` reads them back strictly (canonical varints only,
bounded lengths, no trailing bytes when :meth:`Reader.finish` is called).
"""

from __future__ import annotations

import struct

__all__ = ["DecodeError", "Reader", "Writer", "varint"]

_U32_MAX = 0xFFFF_FFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF
_U128_MAX = (1 << 128) - 1


class DecodeError(ValueError):
    """Bytes that are not a canonical encoding (cut short, over a bound, non-canonical)."""


def varint(n: int) -> bytes:
    """The canonical varint of a length ``n`` (``0 <= n <= 2**32 - 1``)."""
    if not 0 <= n <= _U32_MAX:
        raise ValueError(f"length {n} does not fit in a u32")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _check(value: int, bits: int, signed: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= value <= hi:
        kind = "i" if signed else "u"
        raise ValueError(f"{value} does not fit in {kind}{bits}")


class Writer:
    """Appends canonical encodings to a byte buffer."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def to_bytes(self) -> bytes:
        """Everything written so far."""
        return bytes(self._buf)

    def raw(self, data: bytes) -> None:
        """Raw bytes, no length (fixed-size fields: addresses, digests, signatures)."""
        self._buf += data

    def u8(self, v: int) -> None:
        """One byte."""
        _check(v, 8)
        self._buf.append(v)

    def boolean(self, v: bool) -> None:
        """One byte, 0 or 1."""
        if not isinstance(v, bool):
            raise TypeError(f"expected a bool, got {v!r}")
        self._buf.append(1 if v else 0)

    def u32(self, v: int) -> None:
        """Four bytes, big-endian."""
        _check(v, 32)
        self._buf += struct.pack(">I", v)

    def u64(self, v: int) -> None:
        """Eight bytes, big-endian."""
        _check(v, 64)
        self._buf += struct.pack(">Q", v)

    def i64(self, v: int) -> None:
        """Eight bytes, big-endian two's complement."""
        _check(v, 64, signed=True)
        self._buf += struct.pack(">q", v)

    def u128(self, v: int) -> None:
        """Sixteen bytes, big-endian."""
        _check(v, 128)
        self._buf += v.to_bytes(16, "big")

    def length(self, n: int) -> None:
        """A length as a canonical varint."""
        self._buf += varint(n)

    def string(self, s: str) -> None:
        """``length || UTF-8``."""
        data = s.encode("utf-8")
        self.length(len(data))
        self._buf += data

    def byte_string(self, data: bytes) -> None:
        """``length || bytes``."""
        self.length(len(data))
        self._buf += data


class Reader:
    """Reads canonical encodings from bytes, refusing anything the Rust decoder refuses that
    does not depend on the chain's parameters (length bounds come from the caller)."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0

    @property
    def remaining(self) -> int:
        """Bytes not read yet."""
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        """The next ``n`` bytes."""
        if n < 0 or self.remaining < n:
            raise DecodeError(f"needs {n} bytes, {self.remaining} left")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def finish(self) -> None:
        """Refuses trailing bytes."""
        if self.remaining:
            raise DecodeError(f"{self.remaining} trailing bytes")

    def u8(self) -> int:
        """One byte."""
        return self.take(1)[0]

    def boolean(self) -> bool:
        """One byte, 0 or 1."""
        b = self.u8()
        if b > 1:
            raise DecodeError(f"bool byte {b}")
        return b == 1

    def u32(self) -> int:
        """Four bytes, big-endian."""
        return int(struct.unpack(">I", self.take(4))[0])

    def u64(self) -> int:
        """Eight bytes, big-endian."""
        return int(struct.unpack(">Q", self.take(8))[0])

    def i64(self) -> int:
        """Eight bytes, big-endian two's complement."""
        return int(struct.unpack(">q", self.take(8))[0])

    def u128(self) -> int:
        """Sixteen bytes, big-endian."""
        return int.from_bytes(self.take(16), "big")

    def length(self, max_len: int = _U32_MAX) -> int:
        """A canonical varint length of at most ``max_len``."""
        result = 0
        shift = 0
        for i in range(5):
            byte = self.u8()
            if byte == 0 and i > 0:
                raise DecodeError("non-canonical varint (a zero continuation byte)")
            if i == 4 and byte > 0x0F:
                raise DecodeError("varint overflows a u32")
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if result > max_len:
            raise DecodeError(f"length {result} above the limit {max_len}")
        return result

    def string(self, max_len: int = _U32_MAX) -> str:
        """``length || UTF-8``."""
        n = self.length(max_len)
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"string is not UTF-8: {e}") from e

    def byte_string(self, max_len: int = _U32_MAX) -> bytes:
        """``length || bytes``."""
        return self.take(self.length(max_len))


U64_MAX = _U64_MAX
U128_MAX = _U128_MAX
