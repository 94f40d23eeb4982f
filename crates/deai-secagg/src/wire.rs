//! A length-checked little-endian byte reader and writer for the canonical message encoding.
//!
//! Integers are fixed-width little-endian; a list is a `u32` count followed by its elements. The
//! reader refuses to read past the end, to accept a count above its bound or above what the
//! remaining bytes can hold (so no allocation is ever sized by a peer beyond the input length),
//! and [`Reader::finish`] refuses trailing bytes.

use thiserror::Error;

/// Why bytes did not decode.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended early.
    #[error("truncated: needed {need} more bytes at offset {at}")]
    Truncated {
        /// Offset of the read.
        at: usize,
        /// Bytes needed.
        need: usize,
    },
    /// A list is longer than allowed.
    #[error("{what}: {len} elements, at most {max}")]
    TooLong {
        /// Which list.
        what: &'static str,
        /// Count read.
        len: u64,
        /// The bound.
        max: u64,
    },
    /// Bytes left after the message.
    #[error("{0} trailing bytes")]
    Trailing(usize),
    /// An unknown message or enum tag.
    #[error("unknown {what} tag {tag}")]
    Tag {
        /// Which enum.
        what: &'static str,
        /// The tag.
        tag: u8,
    },
    /// A list that must be strictly ascending is not.
    #[error("{what}: {value} out of order or repeated")]
    Order {
        /// Which list.
        what: &'static str,
        /// The offending id.
        value: u32,
    },
    /// A field value is invalid.
    #[error("invalid {0}")]
    Invalid(&'static str),
}

/// Reads from a byte slice with bounds checks.
pub struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, at: 0 }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(DecodeError::Truncated {
            at: self.at,
            need: n.saturating_sub(self.buf.len() - self.at),
        })?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("take returned N bytes"))
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A list count of elements of at least `elem_bytes` each, at most `max`.
    pub fn count(
        &mut self,
        what: &'static str,
        max: u32,
        elem_bytes: usize,
    ) -> Result<usize, DecodeError> {
        let len = self.u32()?;
        let fits = (self.buf.len() - self.at) / elem_bytes.max(1);
        if len > max || len as usize > fits {
            return Err(DecodeError::TooLong {
                what,
                len: u64::from(len),
                max: u64::from(max).min(fits as u64),
            });
        }
        Ok(len as usize)
    }

    /// Succeeds only if every byte was read.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() - self.at {
            0 => Ok(()),
            n => Err(DecodeError::Trailing(n)),
        }
    }
}

/// Checks that ids are strictly ascending.
pub fn check_ascending(
    what: &'static str,
    ids: impl IntoIterator<Item = u32>,
) -> Result<(), DecodeError> {
    let mut last: Option<u32> = None;
    for id in ids {
        if last.is_some_and(|l| l >= id) {
            return Err(DecodeError::Order { what, value: id });
        }
        last = Some(id);
    }
    Ok(())
}

/// Appends fixed-width little-endian values to a buffer.
pub trait Writer {
    /// Appends a `u32`.
    fn put_u32(&mut self, v: u32);
    /// Appends a `u64`.
    fn put_u64(&mut self, v: u64);
    /// Appends a list count.
    fn put_count(&mut self, n: usize);
    /// Appends words, each little-endian (one resize, then a loop the compiler vectorises).
    fn put_words(&mut self, words: &[u32]);
}

impl Writer for Vec<u8> {
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_count(&mut self, n: usize) {
        self.put_u32(u32::try_from(n).expect("lists are bounded by u32 counts"));
    }
    fn put_words(&mut self, words: &[u32]) {
        let start = self.len();
        self.resize(start + 4 * words.len(), 0);
        write_words(&mut self[start..], words);
    }
}

/// Writes `words` little-endian into `out` (exactly `4 * words.len()` bytes).
pub fn write_words(out: &mut [u8], words: &[u32]) {
    for (b, w) in out.chunks_exact_mut(4).zip(words) {
        b.copy_from_slice(&w.to_le_bytes());
    }
}
