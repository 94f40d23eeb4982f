//! The demo's ledger checks: an inclusion proof checked like a light client would, and the full
//! audit that replays the chain from genesis.

use deai_node::client::Client;

/// Checks dataset `id`'s inclusion proof as a light client: against the state root certified by
/// the finalization of the block above it.
pub(super) async fn prove_dataset(client: &Client, id: u64) -> anyhow::Result<bool> {
    let check =
        deai_node::audit::chain::check_proof(client, None, "dataset", &id.to_string()).await?;
    Ok(check.valid)
}
