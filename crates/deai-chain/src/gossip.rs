//! Transaction gossip: any validator is an entry point.
//!
//! A transaction admitted through this validator's [`crate::Handle`] (its API) is sent to every
//! other validator on the p2p channel [`crate::channel::TXS`], so whoever leads next can propose
//! it. Receivers admit what arrives by the same rules as a local submission (signatures checked in
//! batches, the mempool's fee, nonce and per-sender caps) and do not pass it on: the validators
//! are fully connected, so the origin's one send reaches them all, and a transaction cannot loop.
//!
//! Bounded at every step: the outbox holds [`OUTBOX`] transactions (more are not gossiped; they
//! stay in this validator's mempool and it proposes them when it leads), a message carries at most
//! [`BATCH_MAX`] transactions and fits one block's bytes, the channel's rate quota limits each
//! peer, and a receiver decodes with the block's bounds and drops a malformed message whole.
//! Duplicates (the same transaction sent to several entry points) are refused by the mempool as
//! `duplicate_tx` and counted, nothing more.

use crate::{block::read_len, replica::Shared};
use bytes::{Buf as _, BufMut as _, Bytes};
use commonware_codec::{EncodeSize as _, Write as _, varint::UInt};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Spawner};
use deai_ledger::{Limits, SignedTx};
use std::{sync::Arc, time::Duration};
use tracing::{debug, warn};

/// Most transactions in one gossip message.
pub(crate) const BATCH_MAX: usize = 256;
/// Transactions waiting to be gossiped before more are left to the local mempool only.
pub(crate) const OUTBOX: usize = 16_384;
/// How often an idle validator tells its peers it is there (an empty message).
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long the first transaction of a batch waits for company.
const LINGER: Duration = Duration::from_millis(5);

/// Bounds of a gossip message: those of a block.
#[derive(Clone, Debug)]
pub(crate) struct GossipCfg {
    /// The ledger's limits for decoding a transaction.
    pub(crate) limits: Limits,
    /// Largest encoded transaction.
    pub(crate) tx_bytes_max: usize,
    /// Largest message (below the p2p network's message size).
    pub(crate) message_bytes_max: usize,
}

/// Encodes transactions (already encoded) as one message.
fn encode(txs: &[Vec<u8>]) -> Vec<u8> {
    let size = UInt(txs.len() as u64).encode_size()
        + txs
            .iter()
            .map(|t| UInt(t.len() as u64).encode_size() + t.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    UInt(txs.len() as u64).write(&mut out);
    for t in txs {
        UInt(t.len() as u64).write(&mut out);
        out.put_slice(t);
    }
    out
}

/// Decodes one message; any fault (bounds, trailing bytes, a transaction that does not decode or
/// is not in canonical form) refuses the whole message.
pub(crate) fn decode(mut buf: Bytes, cfg: &GossipCfg) -> Result<Vec<SignedTx>, String> {
    let count = read_len(&mut buf, BATCH_MAX).map_err(|e| format!("count: {e}"))?;
    let mut txs = Vec::with_capacity(count);
    for i in 0..count {
        let len = read_len(&mut buf, cfg.tx_bytes_max).map_err(|e| format!("tx {i}: {e}"))?;
        if buf.remaining() < len {
            return Err(format!(
                "tx {i}: {len} bytes announced, {} left",
                buf.remaining()
            ));
        }
        let bytes = buf.split_to(len);
        let tx =
            SignedTx::decode_limits(&bytes, &cfg.limits).map_err(|e| format!("tx {i}: {e}"))?;
        if tx.encode() != bytes {
            return Err(format!("tx {i}: non-canonical encoding"));
        }
        txs.push(tx);
    }
    if buf.has_remaining() {
        return Err(format!(
            "{} bytes after the last transaction",
            buf.remaining()
        ));
    }
    Ok(txs)
}

/// Sends what the outbox receives to every peer, in batches; an idle validator sends an empty
/// message every [`HEARTBEAT`], so the count of peers reached stays current.
pub(crate) async fn send_loop<E: Clock, S: Sender>(
    clock: E,
    shared: Arc<Shared>,
    mut outbox: tokio::sync::mpsc::Receiver<SignedTx>,
    mut sender: S,
    cfg: GossipCfg,
) {
    loop {
        let first = commonware_macros::select! {
            first = outbox.recv() => match first {
                Some(first) => first,
                None => return,
            },
            _ = clock.sleep(HEARTBEAT) => {
                send(&mut sender, &shared, &[]);
                continue;
            },
        };
        clock.sleep(LINGER).await;
        let mut batch = vec![first.encode()];
        let mut bytes = batch[0].len() + 16;
        while batch.len() < BATCH_MAX {
            let Ok(next) = outbox.try_recv() else { break };
            let encoded = next.encode();
            if bytes + encoded.len() + 10 > cfg.message_bytes_max {
                send(&mut sender, &shared, &batch);
                batch.clear();
                bytes = 16;
            }
            bytes += encoded.len() + 10;
            batch.push(encoded);
        }
        send(&mut sender, &shared, &batch);
    }
}

/// Sends `batch` (empty: a heartbeat) to every connected peer within its quota, and records how
/// many that was as the validator's connected peers.
fn send<S: Sender>(sender: &mut S, shared: &Shared, batch: &[Vec<u8>]) {
    let reached = sender.send(Recipients::All, encode(batch), false);
    shared.set_peers(reached.len());
    if batch.is_empty() {
        return;
    }
    shared.telemetry.gossip_sent_txs.inc_by(batch.len() as u64);
    debug!(
        txs = batch.len(),
        peers = reached.len(),
        "gossiped transactions"
    );
}

/// Admits what peers send, until the channel closes.
pub(crate) async fn receive_loop<E: Spawner, R: Receiver>(
    context: E,
    shared: Arc<Shared>,
    mut receiver: R,
    cfg: GossipCfg,
) {
    loop {
        let (peer, message) = match receiver.recv().await {
            Ok(m) => m,
            Err(e) => {
                debug!(error = %e, "gossip channel closed");
                return;
            }
        };
        let txs = match decode(Bytes::copy_from_slice(message.as_ref()), &cfg) {
            Ok(txs) => txs,
            Err(e) => {
                shared.telemetry.gossip_malformed.inc();
                warn!(%peer, error = %e, "dropped a malformed gossip message");
                continue;
            }
        };
        if txs.is_empty() {
            continue; // a heartbeat
        }
        shared
            .telemetry
            .gossip_received_txs
            .inc_by(txs.len() as u64);
        // Signature batches are CPU work; keep the runtime's async workers free meanwhile.
        let admitting = shared.clone();
        let handle = context
            .child("admit")
            .shared(true)
            .spawn(move |_| async move { admitting.submit_batch(txs) });
        if handle.await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_consensus::BoundedBlock as _;
    use deai_ledger::{Address, Params, Transfer, Tx, TxBody};
    use ed25519_dalek::SigningKey;

    fn cfg() -> GossipCfg {
        let block = crate::BlockCfg::from_params(&Params::default());
        GossipCfg {
            limits: block.limits,
            tx_bytes_max: block.tx_bytes_max,
            message_bytes_max: crate::Block::max_encode_size(&block),
        }
    }

    fn tx(nonce: u64) -> SignedTx {
        let key = SigningKey::from_bytes(&[7; 32]);
        SignedTx::sign(
            Tx {
                chain_id: "gossip-test".into(),
                sender: Address(key.verifying_key().to_bytes()),
                nonce,
                fee: 10,
                body: TxBody::Transfer(Transfer {
                    to: Address([1; 32]),
                    amount: 1,
                }),
            },
            &key,
        )
    }

    #[test]
    fn a_message_round_trips_and_any_fault_refuses_it_whole() {
        let txs: Vec<SignedTx> = (0..3).map(tx).collect();
        let encoded: Vec<Vec<u8>> = txs.iter().map(SignedTx::encode).collect();
        let message = encode(&encoded);
        let back = decode(Bytes::from(message.clone()), &cfg()).expect("decodes");
        assert_eq!(back, txs);

        let mut trailing = message.clone();
        trailing.push(0);
        assert!(decode(Bytes::from(trailing), &cfg()).is_err());

        let truncated = message[..message.len() - 1].to_vec();
        assert!(decode(Bytes::from(truncated), &cfg()).is_err());

        let too_many = encode(&vec![encoded[0].clone(); BATCH_MAX + 1]);
        let err = decode(Bytes::from(too_many), &cfg()).expect_err("over the count bound");
        assert!(err.contains("count"), "{err}");

        let mut garbled = encoded.clone();
        garbled[1][0] ^= 0xff;
        assert!(decode(Bytes::from(encode(&garbled)), &cfg()).is_err());
    }
}
