"""Keys, addresses and key files compatible with the Rust CLI (tests/vectors/keys.json holds
the key file `deai key new` writes for each seed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from deai import Key, KeyFileError, verify


def test_addresses_and_signatures(key_vectors: Any) -> None:
    for v in key_vectors["keys"]:
        key = Key.from_seed_hex(v["seed"])
        assert str(key.address) == v["address"]
        assert key.sign(b"hello").hex() == v["signature_of_hello"]
        assert verify(key.address, b"hello", key.sign(b"hello"))
        assert not verify(key.address, b"hullo", key.sign(b"hello"))


def test_key_files_are_byte_identical(key_vectors: Any, tmp_path: Path) -> None:
    for i, v in enumerate(key_vectors["keys"]):
        key = Key.from_seed_hex(v["seed"])
        assert key.key_file_text() == v["key_file"]
        path = tmp_path / f"k{i}.key"
        key.save(path)
        assert path.read_text() == v["key_file"]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert Key.load(path).seed == key.seed
        # What the Rust CLI wrote reads back too.
        assert Key.from_key_file_text(v["key_file"]).address == key.address


def test_refuses_overwrite_and_bad_files(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    Key.generate().save(path)
    with pytest.raises(KeyFileError, match="already exists"):
        Key.generate().save(path)
    good = Key(bytes([3] * 32))
    wrong_public = good.key_file_text().replace(str(good.address), "00" * 32)
    with pytest.raises(KeyFileError, match="does not match"):
        Key.from_key_file_text(wrong_public)
    with pytest.raises(KeyFileError, match="kind"):
        Key.from_key_file_text(good.key_file_text().replace("ed25519", "sr25519"))
    with pytest.raises(KeyFileError):
        Key.from_key_file_text("{}")
    with pytest.raises(KeyFileError):
        Key.from_key_file_text(good.key_file_text().replace(good.seed.hex(), "zz" * 32))
    # The public half may be upper case, as the Rust reader allows.
    upper = good.key_file_text().replace(str(good.address), str(good.address).upper())
    assert Key.from_key_file_text(upper).address == good.address


def test_generated_keys_differ() -> None:
    assert Key.generate().address != Key.generate().address
