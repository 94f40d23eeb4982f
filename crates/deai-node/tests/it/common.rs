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
