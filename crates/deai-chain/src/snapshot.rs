//! Durable state snapshots, so a restart replays only the blocks after the last one.
//!
//! Format of one snapshot (one storage blob):
//! `magic (8) | height (u64 BE) | tx_seq (u64 BE) | length (u64 BE) | BLAKE3 (32) | payload`, where
//! the payload is the ledger's [`Snapshot`] as JSON and the hash covers the header fields before it
//! and the payload. `tx_seq` counts every transaction in blocks `1..=height` (the transaction
//! index's next position).
//!
//! Two blobs (`a`, `b`) alternate: a write always goes to the slot not holding the newest valid
//! snapshot, so a crash in the middle of a write leaves the previous snapshot intact. Loading
//! takes the valid slot with the greater height. The state restored from it is checked against
//! the root recorded in the snapshot ([`State::from_snapshot`]) and, by the caller, against the
//! state root the block store committed to at that height.

use crate::error::ChainError;
use commonware_runtime::{Blob as _, ReadOptions, Storage, WriteOptions};
use deai_ledger::{Snapshot, State};
use tracing::warn;

const MAGIC: &[u8; 8] = b"deaisnp1";
const HEADER: usize = 8 + 8 + 8 + 8 + 32;
const SLOTS: [&[u8]; 2] = [b"a", b"b"];

/// A restored snapshot.
pub(crate) struct Restored {
    /// The height the state is at.
    pub(crate) height: u64,
    /// Transactions in blocks `1..=height`.
    pub(crate) tx_seq: u64,
    /// The state after `height`, its root checked.
    pub(crate) state: State,
}

/// The two snapshot slots of one validator.
pub(crate) struct Snapshots<E> {
    context: E,
    partition: String,
    /// The slot holding the newest valid snapshot, if any.
    newest: Option<usize>,
}

impl<E: Storage> Snapshots<E> {
    /// Opens the slots under `{prefix}-snapshot` and restores the newest valid snapshot (or none).
    pub(crate) async fn load(
        context: E,
        prefix: &str,
    ) -> Result<(Self, Option<Restored>), ChainError> {
        let partition = format!("{prefix}-snapshot");
        let mut candidates = Vec::new();
        for (slot, name) in SLOTS.iter().enumerate() {
            let bytes = read_blob(&context, &partition, name).await?;
            match parse(&bytes) {
                Some((height, tx_seq, payload)) => {
                    candidates.push((height, tx_seq, slot, bytes.clone(), payload.len()))
                }
                None if !bytes.is_empty() => {
                    warn!(slot = %String::from_utf8_lossy(name), "ignoring a damaged snapshot slot")
                }
                None => {}
            }
        }
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        for (height, tx_seq, slot, bytes, len) in candidates {
            let payload = &bytes[bytes.len() - len..];
            let restored = serde_json::from_slice::<Snapshot>(payload)
                .map_err(|e| e.to_string())
                .and_then(|snap| {
                    if snap.height != height {
                        return Err(format!("payload is at height {}", snap.height));
                    }
                    State::from_snapshot(snap).map_err(|e| e.to_string())
                });
            match restored {
                Ok(state) => {
                    let me = Self {
                        context,
                        partition,
                        newest: Some(slot),
                    };
                    return Ok((
                        me,
                        Some(Restored {
                            height,
                            tx_seq,
                            state,
                        }),
                    ));
                }
                Err(reason) => warn!(height, %reason, "ignoring a snapshot that does not restore"),
            }
        }
        Ok((
            Self {
                context,
                partition,
                newest: None,
            },
            None,
        ))
    }

    /// Makes `state` (after `height`, with `tx_seq` transactions so far) the newest snapshot,
    /// durably, without touching the current newest one.
    pub(crate) async fn write(
        &mut self,
        height: u64,
        tx_seq: u64,
        state: &Snapshot,
    ) -> Result<(), ChainError> {
        let payload =
            serde_json::to_vec(state).map_err(|e| storage(format!("encode snapshot: {e}")))?;
        let bytes = encode(height, tx_seq, &payload);
        let slot = match self.newest {
            Some(0) => 1,
            _ => 0,
        };
        let (blob, _) = self
            .context
            .open(&self.partition, SLOTS[slot])
            .await
            .map_err(|e| storage(format!("open snapshot slot: {e}")))?;
        let len = bytes.len() as u64;
        blob.resize(len)
            .await
            .map_err(|e| storage(format!("size snapshot slot: {e}")))?;
        blob.write_at(0, bytes, WriteOptions::DONT_CACHE)
            .await
            .map_err(|e| storage(format!("write snapshot: {e}")))?;
        blob.sync()
            .await
            .map_err(|e| storage(format!("sync snapshot: {e}")))?;
        self.newest = Some(slot);
        Ok(())
    }
}

fn storage(reason: String) -> ChainError {
    ChainError::Snapshot(reason)
}

async fn read_blob<E: Storage>(
    context: &E,
    partition: &str,
    name: &[u8],
) -> Result<Vec<u8>, ChainError> {
    let (blob, len) = context
        .open(partition, name)
        .await
        .map_err(|e| storage(format!("open snapshot slot: {e}")))?;
    if len == 0 {
        return Ok(Vec::new());
    }
    let len =
        usize::try_from(len).map_err(|_| storage("snapshot slot larger than memory".into()))?;
    let buf = blob
        .read_at(0, len, ReadOptions::DONT_CACHE)
        .await
        .map_err(|e| storage(format!("read snapshot slot: {e}")))?
        .coalesce();
    Ok(buf.as_ref().to_vec())
}

fn encode(height: u64, tx_seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&tx_seq.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    let check = checksum(&out, payload);
    out.extend_from_slice(&check);
    out.extend_from_slice(payload);
    out
}

fn checksum(header: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    *hasher.finalize().as_bytes()
}

/// `(height, tx_seq, payload)` of a well-formed slot whose checksum holds.
fn parse(bytes: &[u8]) -> Option<(u64, u64, &[u8])> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return None;
    }
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let height = word(8)?;
    let tx_seq = word(16)?;
    let len = usize::try_from(word(24)?).ok()?;
    let payload = bytes.get(HEADER..)?;
    if payload.len() != len {
        return None;
    }
    let check = checksum(&bytes[..32], payload);
    (check[..] == bytes[32..HEADER]).then_some((height, tx_seq, payload))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn a_flipped_byte_anywhere_makes_a_slot_invalid() {
        let bytes = encode(7, 99, b"{\"x\":1}");
        assert_eq!(parse(&bytes), Some((7, 99, &b"{\"x\":1}"[..])));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert_eq!(parse(&bad), None, "flipping byte {i} went unnoticed");
        }
        assert_eq!(parse(&bytes[..bytes.len() - 1]), None);
        assert_eq!(parse(&[]), None);
    }
}
