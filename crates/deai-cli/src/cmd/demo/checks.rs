//! The demo's ledger checks: an inclusion proof checked like a light client would, and the full
//! audit that replays the chain from genesis.

use deai_ledger::Digest;
use deai_node::client::Client;
use serde_json::Value;

/// Checks dataset `id`'s inclusion proof against the state root of the finalized block it names.
pub(super) async fn prove_dataset(client: &Client, id: u64) -> anyhow::Result<bool> {
    let answer: Value = client.get(&format!("/v1/proofs/dataset/{id}")).await?;
    let height = answer["height"].as_u64().unwrap_or(0);
    let proof: deai_ledger::Proof = serde_json::from_value(answer["proof"].clone())?;
    let block: Value = client.get(&format!("/v1/blocks/{height}")).await?;
    let root: Digest = block["state_root"].as_str().unwrap_or_default().parse()?;
    Ok(deai_ledger::verify_proof(&root, &proof).is_ok())
}
