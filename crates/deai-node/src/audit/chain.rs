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
use crate::light_client::LightClient;

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
    /// The state root of that height, from the block above it, whose finalization certificate
    /// verified against the validator set (all zero when it did not).
    pub root: Digest,
    /// The height of the certified block that carries `root`.
    pub certified_by: u64,
    /// Where the validator set came from: `genesis file` (given by the caller) or `node` (the
    /// genesis the node itself serves, which pins nothing against a lying node).
    pub validator_set: &'static str,
    /// Whether the certificate, the proof and the entry all verify.
    pub valid: bool,
    /// Why not, when they do not.
    pub error: Option<String>,
    /// The proof.
    pub proof: deai_ledger::Proof,
}

/// Asks the node at `client` for an inclusion proof of entry `kind`/`id` and checks it as a light
/// client does ([`crate::light_client`]): the root comes from the block above the proof's height,
/// whose finalization certificate must verify against the validators of `trusted` (or, without
/// one, of the genesis the node serves), never from the same answer as the proof; the entry sent
/// with the proof must be exactly what the proof commits to.
pub async fn check_proof(
    client: &Client,
    trusted: Option<&Genesis>,
    kind: &str,
    id: &str,
) -> anyhow::Result<ProofCheck> {
    let (genesis, validator_set) = match trusted {
        Some(g) => (g.clone(), "genesis file"),
        None => (client.get::<Genesis>("/v1/genesis").await?, "node"),
    };
    let light = LightClient::new(client.clone(), &genesis)?;
    light.check_chain().await?;
    let asked = crate::light_client::parse_key(kind, id)?;
    let answer = client.proof(kind, id).await?;
    let checked = match light.certified_root(answer.height).await {
        // Another entry's valid proof is not a proof of this one.
        Ok(_) if answer.proof.key != asked => Err(format!(
            "asked for {asked}, the node proved {}",
            answer.proof.key
        )),
        Ok(root) => {
            crate::light_client::check_entry_json(&root, &answer.proof, answer.entry.as_ref())
                .map(|()| root)
                .map_err(|e| e.to_string())
        }
        Err(e) if e.is_forgery() => Err(e.to_string()),
        Err(e) => return Err(e.into()),
    };
    Ok(ProofCheck {
        kind: kind.into(),
        id: id.into(),
        height: answer.height,
        root: checked.as_ref().copied().unwrap_or_default(),
        certified_by: answer.height + 1,
        validator_set,
        valid: checked.is_ok(),
        error: checked.err(),
        proof: answer.proof,
    })
}
