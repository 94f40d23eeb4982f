//! Set-up shared by the modules: a fresh single validator with a chosen `[http]` section.

use deai_node::{
    config::{HttpConfig, NodeConfig},
    run::RunningNode,
};
use std::path::PathBuf;

/// Runs `f` against a fresh single validator whose `[http]` section is `http`, with the node's
/// data directory (its dev key is `DEV_KEY_FILE` there).
pub(crate) fn with_node<F, Fut>(http: HttpConfig, f: F)
where
    F: FnOnce(RunningNode, PathBuf) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    deai_node::http::raise_fd_limit();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    let cfg = NodeConfig {
        http,
        ..NodeConfig::default()
    };
    deai_node::init::init(&dir, cfg).unwrap();
    let d = dir.clone();
    deai_node::run::with_embedded(&dir, move |node| f(node, d)).unwrap();
}

/// A consent policy for the purpose "digits" that admits any creator, with a σ floor of
/// `noise_multiplier_min` (fixed point) and room for many tasks.
pub(crate) fn digits_consent(noise_multiplier_min: u64) -> deai_ledger::ConsentPolicy {
    deai_ledger::ConsentPolicy {
        purposes: vec!["digits".into()],
        creators: None,
        reward_min: 0,
        epsilon_max: 1_000 * deai_ledger::EPSILON_SCALE,
        expiry_height: 1_000_000,
        epsilon_round_max: 0,
        noise_multiplier_min,
        royalty_bps_min: 0,
    }
}
