"""ed25519 keys and the key files the Rust CLI reads and writes.

A key file (``deai key new``, ``deai init``'s ``dev.key``; ``crates/deai-node/src/keyfile.rs``)
is JSON, written with mode 0600::

    {
      "kind": "ed25519",
      "secret": "<64 hex: the 32-byte seed>",
      "public": "<64 hex: the public key, which is the address>"
    }

:meth:`Key.load` checks that ``public`` matches the seed, as the Rust side does; :meth:`Key.save`
writes the same bytes ``deai key new`` would for that seed and refuses to overwrite a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from .types import Address

__all__ = ["Key", "KeyFileError", "verify"]


class KeyFileError(ValueError):
    """A key file that cannot be read (malformed, wrong kind, halves that disagree) or written
    (it exists)."""


class Key:
    """An ed25519 signing key: an account (its :attr:`address`) or a node's identity.

    Signing is deterministic (RFC 8032), so a key signs the same message to the same 64 bytes
    here and in Rust (``ed25519-dalek``).
    """

    __slots__ = ("_private", "_seed", "address")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError(f"an ed25519 seed is 32 bytes, got {len(seed)}")
        self._seed = bytes(seed)
        self._private = Ed25519PrivateKey.from_private_bytes(self._seed)
        public = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        #: The account address: the public key.
        self.address = Address(public)

    @classmethod
    def generate(cls) -> Key:
        """A new random key (from the operating system's randomness)."""
        private = Ed25519PrivateKey.generate()
        return cls(private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))

    @classmethod
    def from_seed_hex(cls, text: str) -> Key:
        """The key of a 64-hex-character seed."""
        return cls(bytes.fromhex(text))

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed (what a key file's ``secret`` holds)."""
        return self._seed

    def sign(self, message: bytes) -> bytes:
        """The 64-byte ed25519 signature of ``message``."""
        return self._private.sign(message)

    def key_file_text(self) -> str:
        """The key file's text, byte for byte what the Rust CLI writes (no trailing newline)."""
        body = {"kind": "ed25519", "secret": self._seed.hex(), "public": self.address.hex()}
        return json.dumps(body, indent=2)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes a new key file at ``path`` (mode 0600); refuses to overwrite one."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(path, flags, 0o600)
        except FileExistsError as e:
            raise KeyFileError(
                f"key file {path} already exists; choose another path or remove it first"
            ) from e
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(self.key_file_text())
            f.flush()
            os.fsync(f.fileno())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Key:
        """Reads a key file written by the Rust CLI (or :meth:`save`)."""
        text = Path(path).read_text(encoding="utf-8")
        return cls.from_key_file_text(text, str(path))

    @classmethod
    def from_key_file_text(cls, text: str, where: str = "key file") -> Key:
        """Parses a key file's text, refusing one whose public half does not match."""
        try:
            body = json.loads(text)
            kind, secret, public = body["kind"], body["secret"], body["public"]
        except (ValueError, KeyError, TypeError) as e:
            raise KeyFileError(f"{where} is malformed: {e}") from e
        if kind != "ed25519":
            raise KeyFileError(f'{where} is malformed: kind is {kind!r}, expected "ed25519"')
        try:
            seed = bytes.fromhex(secret)
        except (ValueError, TypeError) as e:
            raise KeyFileError(f"{where}: secret must be 64 hex characters") from e
        if len(seed) != 32:
            raise KeyFileError(f"{where}: secret must be 64 hex characters")
        key = cls(seed)
        if not isinstance(public, str) or key.address.hex() != public.lower():
            raise KeyFileError(f"{where} is malformed: public key does not match the secret")
        return key

    def __repr__(self) -> str:
        return f"Key(address={self.address.hex()!r})"


def verify(signer: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``signer``'s (an address) ed25519 signature of ``message``."""
    if len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes(signer)).verify(bytes(signature), message)
    except (InvalidSignature, ValueError):
        return False
    return True
