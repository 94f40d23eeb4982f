"""Byte identifiers: :class:`Address` (an ed25519 public key) and :class:`Digest` (BLAKE3).

Both are 32 bytes, shown and parsed as lowercase hex (a ``0x`` prefix is accepted when
parsing), exactly like ``Address``/``Digest`` in ``crates/deai-ledger/src/types.rs``. They are
``bytes`` subclasses, so they compare, hash and slice as bytes.
"""

from __future__ import annotations

from typing import TypeVar

import blake3

__all__ = ["TOKEN", "Address", "Digest", "TxId", "blake3_hash", "from_hex"]

#: One token in base units (amounts on the ledger are integers of base units).
TOKEN = 10**18

_H = TypeVar("_H", bound="_Hex32")


def from_hex(text: str) -> bytes:
    """Bytes from hex text (an optional ``0x`` prefix, either case)."""
    if text.startswith("0x"):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError as e:
        raise ValueError(f"not hex: {text[:80]!r}") from e


def blake3_hash(*parts: bytes) -> bytes:
    """BLAKE3 of the concatenation of ``parts`` (32 bytes)."""
    h = blake3.blake3()
    for p in parts:
        h.update(p)
    return h.digest()


class _Hex32(bytes):
    """32 bytes shown as hex."""

    def __new__(cls: type[_H], value: bytes | bytearray | str) -> _H:
        if isinstance(value, str):
            value = from_hex(value)
        if len(value) != 32:
            raise ValueError(f"{cls.__name__}: expected 32 bytes, got {len(value)}")
        return super().__new__(cls, bytes(value))

    @classmethod
    def from_hex(cls: type[_H], text: str) -> _H:
        """Parses 64 hex characters (an optional ``0x`` prefix)."""
        return cls(from_hex(text))

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hex()!r})"


class Address(_Hex32):
    """An account: the 32-byte ed25519 public key that signs its transactions."""


class Digest(_Hex32):
    """A BLAKE3 digest (content addresses, transaction ids, state roots)."""

    @classmethod
    def hash(cls, *parts: bytes) -> Digest:
        """BLAKE3 of the concatenation of ``parts``."""
        return cls(blake3_hash(*parts))


#: A transaction id: BLAKE3 of the signed transaction's canonical encoding.
TxId = Digest
