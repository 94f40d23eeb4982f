//! The one binary codec of deai, as secure aggregation and the round's blobs use it.
//!
//! Every format that crosses a trust boundary (ledger transactions and blocks, SecAgg+
//! messages, dataset, record and aggregate blobs) is written with `commonware-codec`: integers
//! are fixed-width **big-endian**, a list or byte string is a varint count followed by its items,
//! one byte per enum tag. The helpers here add what these formats need on top: a count is
//! checked against its bound *and* against what the remaining bytes can hold before anything is
//! allocated (so a peer can never size an allocation beyond its input), and lists of peer ids are
//! strictly ascending so each message has exactly one encoding.

use bytes::BufMut;
pub use commonware_codec::Error as DecodeError;
use commonware_codec::{Buf, EncodeSize, RangeCfg, Read, ReadExt as _, Write};

/// Reads a list count of at most `max` items of at least `item_bytes` bytes each.
pub fn read_count(buf: &mut impl Buf, max: usize, item_bytes: usize) -> Result<usize, DecodeError> {
    let len = usize::read_cfg(buf, &RangeCfg::new(..=max))?;
    if len > buf.remaining() / item_bytes.max(1) {
        return Err(DecodeError::InvalidLength(len));
    }
    Ok(len)
}

/// Writes a list count.
pub fn write_count(len: usize, buf: &mut impl BufMut) {
    len.write(buf);
}

/// Encoded size of a list count.
pub fn count_size(len: usize) -> usize {
    len.encode_size()
}

/// Reads `len` items with `read` (after [`read_count`] has bounded `len`).
pub fn read_items<B: Buf, T>(
    buf: &mut B,
    len: usize,
    mut read: impl FnMut(&mut B) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    (0..len).map(|_| read(buf)).collect()
}

/// Writes words as a counted list.
pub fn write_words(words: &[u32], buf: &mut impl BufMut) {
    write_count(words.len(), buf);
    words.iter().for_each(|w| buf.put_u32(*w));
}

/// Encoded size of [`write_words`].
pub fn words_size(words: &[u32]) -> usize {
    count_size(words.len()) + 4 * words.len()
}

/// Reads a counted list of at most `max` words.
pub fn read_words(buf: &mut impl Buf, max: usize) -> Result<Vec<u32>, DecodeError> {
    let len = read_count(buf, max, 4)?;
    read_items(buf, len, |b| u32::read(b))
}

/// Writes `words` big-endian into `out` (exactly `4 * words.len()` bytes): the uncounted form
/// that [`crate::hash_vector`] hashes and a masked-update blob stores.
pub fn put_words_be(out: &mut [u8], words: &[u32]) {
    for (b, w) in out.chunks_exact_mut(4).zip(words) {
        b.copy_from_slice(&w.to_be_bytes());
    }
}

/// Reads a counted list of at most `max` strictly ascending ids.
pub fn read_ids(
    buf: &mut impl Buf,
    what: &'static str,
    max: usize,
) -> Result<Vec<u32>, DecodeError> {
    let ids = read_words(buf, max)?;
    check_ascending(what, ids.iter().copied())?;
    Ok(ids)
}

/// Checks that ids are strictly ascending.
pub fn check_ascending(
    what: &'static str,
    ids: impl IntoIterator<Item = u32>,
) -> Result<(), DecodeError> {
    let mut last: Option<u32> = None;
    for id in ids {
        if last.is_some_and(|l| l >= id) {
            return Err(DecodeError::Invalid(what, "ids out of order or repeated"));
        }
        last = Some(id);
    }
    Ok(())
}

/// The encoding of `value` in one exactly sized allocation.
pub fn encode_vec<T: Write + EncodeSize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.encode_size());
    value.write(&mut out);
    out
}

/// Decodes `bytes` with `read`, refusing trailing bytes.
pub fn decode_all<T>(
    bytes: &[u8],
    read: impl FnOnce(&mut commonware_codec::Copying<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut buf = commonware_codec::Copying(bytes);
    let value = read(&mut buf)?;
    match bytes::Buf::remaining(&buf) {
        0 => Ok(value),
        n => Err(DecodeError::ExtraData(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_bounded_by_limit_and_input() {
        let mut out = Vec::new();
        write_words(&[1, 2, 3], &mut out);
        assert_eq!(out.len(), words_size(&[1, 2, 3]));
        assert_eq!(&out[1..5], &[0, 0, 0, 1], "big-endian");
        assert_eq!(
            decode_all(&out, |b| read_words(b, 3)).expect("decodes"),
            vec![1, 2, 3]
        );
        assert!(matches!(
            decode_all(&out, |b| read_words(b, 2)),
            Err(DecodeError::InvalidLength(3))
        ));
        // A count the remaining bytes cannot hold is refused before any allocation.
        let mut huge = Vec::new();
        write_count(1 << 30, &mut huge);
        assert!(matches!(
            decode_all(&huge, |b| read_words(b, usize::MAX)),
            Err(DecodeError::InvalidLength(_))
        ));
        assert!(matches!(
            decode_all(&[out.as_slice(), &[0]].concat(), |b| read_words(b, 3)),
            Err(DecodeError::ExtraData(1))
        ));
        let mut disorder = Vec::new();
        write_words(&[2, 2], &mut disorder);
        assert!(matches!(
            decode_all(&disorder, |b| read_ids(b, "ids", 8)),
            Err(DecodeError::Invalid("ids", _))
        ));
    }
}
