"""The canonical encoding's primitives against commonware-codec's own test values."""

from __future__ import annotations

import pytest

from deai.codec import DecodeError, Reader, Writer, varint


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),
        (300, "ac02"),
        (2**32 - 1, "ffffffff0f"),
    ],
)
def test_varints(n: int, encoded: str) -> None:
    assert varint(n).hex() == encoded
    r = Reader(bytes.fromhex(encoded))
    assert r.length() == n
    r.finish()


@pytest.mark.parametrize("bad", ["8000", "ff", "ffffffff10", "ffffffff8f01", "8080808000"])
def test_non_canonical_varints_are_refused(bad: str) -> None:
    with pytest.raises(DecodeError):
        Reader(bytes.fromhex(bad)).length()


def test_integers_are_big_endian() -> None:
    w = Writer()
    w.u32(0x01020304)
    w.u64(5)
    w.i64(-2)
    w.u128(2**128 - 1)
    w.boolean(True)
    w.string("é")
    assert w.to_bytes().hex() == (
        "01020304" + "0000000000000005" + "fffffffffffffffe" + "ff" * 16 + "01" + "02c3a9"
    )
    r = Reader(w.to_bytes())
    assert (r.u32(), r.u64(), r.i64(), r.u128(), r.boolean(), r.string()) == (
        0x01020304,
        5,
        -2,
        2**128 - 1,
        True,
        "é",
    )
    r.finish()


def test_bounds() -> None:
    with pytest.raises(ValueError):
        varint(2**32)
    with pytest.raises(DecodeError):
        Reader(b"\x05ab").string()
    with pytest.raises(DecodeError):
        Reader(b"\x02").boolean()
    with pytest.raises(DecodeError):
        Reader(b"\x05abcde").string(max_len=4)
    with pytest.raises(DecodeError):
        Reader(b"\x02\xff\xfe").string()
