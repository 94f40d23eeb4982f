//! The JSON shapes of chain objects, owned by the API so the chain crate stays free of HTTP concerns.
//!
//! Transactions appear as their canonical bytes in hex (`txs`), which is what an auditor decodes and
//! replays, next to their ids.

use deai_chain::{FinalizedBlock, Status, TxStatus};
use serde_json::{Value, json};

/// `GET /v1/status`.
pub(crate) fn status(s: &Status, fee_min: u128) -> Value {
    json!({
        "chain_id": s.chain_id,
        "height": s.height,
        "state_root": s.state_root.to_string(),
        "peers": s.peers,
        "mempool_size": s.mempool_size,
        "last_finality_latency_ms": s.last_finality_latency_ms,
        "fee_min": fee_min.to_string(),
    })
}

/// `GET /v1/blocks/{height}`.
pub(crate) fn block(b: &FinalizedBlock) -> Value {
    json!({
        "height": b.height,
        "digest": b.digest.to_string(),
        "parent": b.parent.to_string(),
        "proposer": b.proposer.to_string(),
        "timestamp_ms": b.timestamp_ms,
        "tx_ids": b.txs.iter().map(|t| t.id().to_string()).collect::<Vec<_>>(),
        "txs": b.txs.iter().map(|t| hex::encode(t.encode())).collect::<Vec<_>>(),
        "receipts": b.receipts,
        "events": b.events,
        "parent_state_root": b.parent_state_root.to_string(),
        "state_root": b.state_root.to_string(),
        "finalized_at_ms": b.finalized_at_ms,
    })
}

/// `GET /v1/txs/{id}`; `None` for an unknown transaction.
pub(crate) fn tx_status(s: &TxStatus) -> Option<Value> {
    Some(match s {
        TxStatus::Pending => json!({ "status": "pending" }),
        TxStatus::Finalized {
            height,
            index,
            receipt,
        } => {
            let applied = receipt.result.is_ok();
            json!({ "status": "finalized", "applied": applied, "height": height, "index": index, "receipt": receipt })
        }
        TxStatus::Rejected { code, reason } => {
            json!({ "status": "rejected", "code": code, "reason": reason })
        }
        TxStatus::Unknown => return None,
    })
}
