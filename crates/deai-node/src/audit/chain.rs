//! The audit anyone can run: replay every finalized block from genesis in a fresh state and check
//! every state root against the one the chain committed to.
//!
//! A block at height `h` carries the root after `h - 1` (its parent state root), which consensus
//! signed; the node also reports the root after `h`. The replay checks both, so a node that lies about
//! its roots, or a block whose transactions do not lead to the committed root, is caught at that height.

use deai_ledger::{Block, Digest, Genesis, SignedTx, State};
use serde::Serialize;
use serde_json::Value;

use crate::client::Client;

/// The result of an audit.
#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    /// Blocks replayed.
    pub blocks: u64,
    /// Transactions replayed.
    pub txs: u64,
    /// Root after the last block, as recomputed.
    pub state_root: String,
    /// Whether every root matched.
    pub ok: bool,
    /// The first mismatch, if any.
    pub mismatch: Option<Mismatch>,
}

/// Where and how the replay disagreed with the chain.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    /// The block height.
    pub height: u64,
    /// What disagreed.
    pub what: String,
    /// The value the chain committed to.
    pub expected: String,
    /// The value the replay computed.
    pub computed: String,
}

/// Replays blocks `1..=tip` of the node at `client` from its genesis. `progress(done, total)` is called
/// after each block.
pub async fn verify_chain(
    client: &Client,
    mut progress: impl FnMut(u64, u64),
) -> anyhow::Result<AuditReport> {
    let genesis: Genesis = client.get("/v1/genesis").await?;
    let mut state = State::from_genesis(&genesis)?;
    let tip = client.status().await?["height"].as_u64().unwrap_or(0);
    let mut txs_total = 0u64;
    for height in 1..=tip {
        let block: Value = client.get(&format!("/v1/blocks/{height}")).await?;
        let parent_root = digest_field(&block, "parent_state_root", height)?;
        if parent_root != state.root() {
            return Ok(report(
                height - 1,
                txs_total,
                &state,
                mismatch(height, "parent state root", parent_root, state.root()),
            ));
        }
        let ledger_block = ledger_block(&block, height, state.params())?;
        txs_total += ledger_block.txs.len() as u64;
        let outcome = state.apply_block(&ledger_block);
        let root = digest_field(&block, "state_root", height)?;
        if root != outcome.root {
            return Ok(report(
                height,
                txs_total,
                &state,
                mismatch(height, "state root", root, outcome.root),
            ));
        }
        progress(height, tip);
    }
    Ok(report(tip, txs_total, &state, None))
}

fn report(blocks: u64, txs: u64, state: &State, mismatch: Option<Mismatch>) -> AuditReport {
    AuditReport {
        blocks,
        txs,
        state_root: state.root().to_string(),
        ok: mismatch.is_none(),
        mismatch,
    }
}

fn mismatch(height: u64, what: &str, expected: Digest, computed: Digest) -> Option<Mismatch> {
    Some(Mismatch {
        height,
        what: what.into(),
        expected: expected.to_string(),
        computed: computed.to_string(),
    })
}

fn digest_field(block: &Value, field: &str, height: u64) -> anyhow::Result<Digest> {
    let s = block[field]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("block {height} has no `{field}` string"))?;
    let mut raw = [0u8; 32];
    hex::decode_to_slice(s, &mut raw)
        .map_err(|e| anyhow::anyhow!("block {height} `{field}` is not 32-byte hex: {e}"))?;
    Ok(Digest(raw))
}

fn ledger_block(block: &Value, height: u64, params: &deai_ledger::Params) -> anyhow::Result<Block> {
    let proposer = digest_field(block, "proposer", height)?;
    // The chain's block digest is the ledger's beacon (it seeds round selections).
    let beacon = digest_field(block, "digest", height)?;
    let txs = block["txs"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("block {height} has no `txs` array"))?
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let hex_tx = t
                .as_str()
                .ok_or_else(|| anyhow::anyhow!("block {height} tx {i} is not a hex string"))?;
            let bytes = hex::decode(hex_tx)
                .map_err(|e| anyhow::anyhow!("block {height} tx {i}: bad hex: {e}"))?;
            SignedTx::decode(&bytes, params)
                .map_err(|e| anyhow::anyhow!("block {height} tx {i}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Block {
        height,
        proposer: deai_ledger::Address(proposer.0),
        beacon,
        txs,
    })
}
