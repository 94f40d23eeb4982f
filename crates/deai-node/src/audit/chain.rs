//! The audit anyone can run: replay every finalized block from genesis in a fresh state and check
//! every state root against the one the chain committed to.
//!
//! A block at height `h` carries the root after `h - 1` (its parent state root), which consensus
//! signed; the node also reports the root after `h`. The replay checks both, so a node that lies about
//! its roots, or a block whose transactions do not lead to the committed root, is caught at that height.

use deai_ledger::{Block, Digest, Genesis, SignedTx, State};
use serde::Serialize;

use crate::api::types::BlockView;
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
    let tip = client.status().await?.height;
    let mut txs_total = 0u64;
    for height in 1..=tip {
        let block = client.block(height).await?;
        let parent_root = block.parent_state_root;
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
        let root = block.state_root;
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

fn ledger_block(
    block: &BlockView,
    height: u64,
    params: &deai_ledger::Params,
) -> anyhow::Result<Block> {
    let txs = block
        .txs
        .iter()
        .enumerate()
        .map(|(i, hex_tx)| {
            let bytes = hex::decode(hex_tx)
                .map_err(|e| anyhow::anyhow!("block {height} tx {i}: bad hex: {e}"))?;
            SignedTx::decode(&bytes, params)
                .map_err(|e| anyhow::anyhow!("block {height} tx {i}: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Block {
        height,
        proposer: block.proposer,
        // The chain's block digest is the ledger's beacon (it seeds round selections).
        beacon: block.digest,
        txs,
    })
}

/// An inclusion proof checked the way a light client checks it.
#[derive(Debug, Clone, Serialize)]
pub struct ProofCheck {
    /// The kind of entry (`account`, `dataset`, `task`, `model`).
    pub kind: String,
    /// Its id or address.
    pub id: String,
    /// The finalized height the proof was made at.
    pub height: u64,
    /// The state root of that height, read from its block (or replayed from genesis at 0).
    pub root: Digest,
    /// Whether the proof verifies against that root.
    pub valid: bool,
    /// Why not, when it does not.
    pub error: Option<String>,
    /// The proof.
    pub proof: deai_ledger::Proof,
}

/// Asks the node at `client` for an inclusion proof of entry `kind`/`id` and checks it against
/// the state root of the finalized block it names: the root comes from the block, never from
/// the same answer as the proof.
pub async fn check_proof(client: &Client, kind: &str, id: &str) -> anyhow::Result<ProofCheck> {
    let answer = client.proof(kind, id).await?;
    let root = if answer.height == 0 {
        let genesis: Genesis = client.get("/v1/genesis").await?;
        State::from_genesis(&genesis)?.root()
    } else {
        client.block(answer.height).await?.state_root
    };
    let verdict = deai_ledger::verify_proof(&root, &answer.proof);
    Ok(ProofCheck {
        kind: kind.into(),
        id: id.into(),
        height: answer.height,
        root,
        valid: verdict.is_ok(),
        error: verdict.err().map(|e| e.to_string()),
        proof: answer.proof,
    })
}
