//! Canonical-encoding helpers shared by every transaction module: bounded strings and lists.
//!
//! Invariant: every variable-length field is written as a canonical varint length followed by
//! its items, and every read checks the length against a limit from [`crate::Params`] *before*
//! allocating, so a hostile length prefix cannot make the decoder allocate.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, Write};

/// Write a UTF-8 string as `len || bytes`.
pub(crate) fn write_str(s: &str, buf: &mut impl BufMut) {
    s.len().write(buf);
    buf.put_slice(s.as_bytes());
}

/// Encoded size of [`write_str`].
pub(crate) fn str_size(s: &str) -> usize {
    s.len().encode_size() + s.len()
}

/// Read a UTF-8 string of at most `max` bytes.
pub(crate) fn read_str(buf: &mut impl Buf, max: usize) -> Result<String, CodecError> {
    let len = usize::read_cfg(buf, &RangeCfg::new(..=max))?;
    if buf.remaining() < len {
        return Err(CodecError::EndOfBuffer);
    }
    let mut bytes = vec![0u8; len];
    buf.copy_to_slice(&mut bytes);
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid("string", "not UTF-8"))
}

/// Write a list as `len || items`.
pub(crate) fn write_list<T: Write>(items: &[T], buf: &mut impl BufMut) {
    items.len().write(buf);
    for item in items {
        item.write(buf);
    }
}

/// Encoded size of [`write_list`].
pub(crate) fn list_size<T: EncodeSize>(items: &[T]) -> usize {
    items.len().encode_size() + items.iter().map(EncodeSize::encode_size).sum::<usize>()
}

/// Read a list of at most `max` items.
pub(crate) fn read_list<T: Read>(
    buf: &mut impl Buf,
    max: usize,
    cfg: &T::Cfg,
) -> Result<Vec<T>, CodecError> {
    let len = usize::read_cfg(buf, &RangeCfg::new(..=max))?;
    let mut items = Vec::with_capacity(len.min(buf.remaining()));
    for _ in 0..len {
        items.push(T::read_cfg(buf, cfg)?);
    }
    Ok(items)
}

/// Write a list of strings.
pub(crate) fn write_strs(items: &[String], buf: &mut impl BufMut) {
    items.len().write(buf);
    for s in items {
        write_str(s, buf);
    }
}

/// Encoded size of [`write_strs`].
pub(crate) fn strs_size(items: &[String]) -> usize {
    items.len().encode_size() + items.iter().map(|s| str_size(s)).sum::<usize>()
}

/// Read at most `max` strings of at most `str_max` bytes each.
pub(crate) fn read_strs(
    buf: &mut impl Buf,
    max: usize,
    str_max: usize,
) -> Result<Vec<String>, CodecError> {
    let len = usize::read_cfg(buf, &RangeCfg::new(..=max))?;
    let mut items = Vec::with_capacity(len.min(buf.remaining()));
    for _ in 0..len {
        items.push(read_str(buf, str_max)?);
    }
    Ok(items)
}

/// Write a byte string as `len || bytes`.
pub(crate) fn write_bytes(b: &[u8], buf: &mut impl BufMut) {
    b.len().write(buf);
    buf.put_slice(b);
}

/// Encoded size of [`write_bytes`].
pub(crate) fn bytes_size(b: &[u8]) -> usize {
    b.len().encode_size() + b.len()
}

/// Read a byte string of at most `max` bytes (the length is checked before allocating, and
/// against the bytes actually present).
pub(crate) fn read_bytes(buf: &mut impl Buf, max: usize) -> Result<Vec<u8>, CodecError> {
    let len = usize::read_cfg(buf, &RangeCfg::new(..=max))?;
    if buf.remaining() < len {
        return Err(CodecError::EndOfBuffer);
    }
    let mut bytes = vec![0u8; len];
    buf.copy_to_slice(&mut bytes);
    Ok(bytes)
}
