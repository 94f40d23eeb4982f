//! `deai init`: a new data directory with a node key, a dev genesis and a config.
//!
//! Nothing is left behind on failure: everything is written into a sibling temporary directory that
//! is renamed into place at the end, and an existing directory with contents is never touched.

use std::{fs, path::Path};

use deai_ledger::Genesis;
use serde::Serialize;

use crate::{
    config::{CHAIN_DIR, DEV_KEY_FILE, GENESIS_FILE, NODE_KEY_FILE, NodeConfig},
    keyfile,
};

/// What `init` made.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The data directory.
    pub dir: String,
    /// The chain id of the dev genesis.
    pub chain_id: String,
    /// The node's (validator's) address.
    pub node_address: String,
    /// The funded development account's address.
    pub dev_address: String,
    /// Its balance at genesis, base units.
    pub dev_balance: String,
    /// Where the HTTP API will listen.
    pub http_listen: String,
}

/// Creates a data directory at `dir` with a dev genesis in which this node is the only validator.
pub fn init(dir: &Path, config: NodeConfig) -> anyhow::Result<InitReport> {
    init_with(dir, config, |_| {})
}

/// Like [`init`], letting `adjust` change the dev genesis before it is written (benchmarks and tests
/// fund extra accounts or raise limits this way).
pub fn init_with(
    dir: &Path,
    config: NodeConfig,
    adjust: impl FnOnce(&mut Genesis),
) -> anyhow::Result<InitReport> {
    let staging = stage(dir)?;
    let node_key = keyfile::create(&staging.path().join(NODE_KEY_FILE))?;
    let dev_key = keyfile::create(&staging.path().join(DEV_KEY_FILE))?;
    let node_address = keyfile::address(&node_key);
    let dev_address = keyfile::address(&dev_key);
    let mut genesis = Genesis::dev(dev_address, vec![node_address]);
    adjust(&mut genesis);
    let dev_balance = genesis
        .balances
        .iter()
        .find(|(a, _)| *a == dev_address)
        .map(|(_, b)| *b)
        .unwrap_or(0);
    write_data_dir(staging.path(), &genesis, &config)?;
    publish(staging, dir)?;
    Ok(InitReport {
        dir: dir.display().to_string(),
        chain_id: genesis.chain_id.clone(),
        node_address: node_address.to_string(),
        dev_address: dev_address.to_string(),
        dev_balance: dev_balance.to_string(),
        http_listen: config.http_listen.to_string(),
    })
}

/// What [`init_role`] made.
#[derive(Debug, Clone, Serialize)]
pub struct RoleInitReport {
    /// The data directory.
    pub dir: String,
    /// The chain the node serves.
    pub chain_id: String,
    /// The node's key's address (its ledger account: fund it before it registers or creates).
    pub address: String,
    /// Its roles.
    pub roles: Vec<String>,
    /// The validator API it uses.
    pub upstream: String,
    /// Where its API will listen (port 0: a free one, written to `http.addr` at start).
    pub http_listen: String,
}

/// Creates the data directory of a role node (not a validator): a node key, the network's
/// `genesis` (the node checks its upstream's answers against it) and `config`, whose `[roles]`
/// names the roles and the upstream. Nothing is left behind on failure.
pub fn init_role(
    dir: &Path,
    genesis: &Genesis,
    config: &NodeConfig,
) -> anyhow::Result<RoleInitReport> {
    let upstream = config
        .roles
        .upstream
        .clone()
        .ok_or_else(|| anyhow::anyhow!("a role node needs an upstream validator API"))?;
    anyhow::ensure!(
        !config.roles.validator,
        "a role node made by init_role is not a validator"
    );
    let staging = stage(dir)?;
    let key = keyfile::create(&staging.path().join(NODE_KEY_FILE))?;
    write_data_dir(staging.path(), genesis, config)?;
    publish(staging, dir)?;
    let mut roles = Vec::new();
    if !config.roles.datasets.is_empty() || !config.roles.announce_to.is_empty() {
        roles.push("owner".to_string());
    }
    if config.roles.coordinator {
        roles.push("coordinator".to_string());
    }
    if config.roles.provider.is_some() {
        roles.push("provider".to_string());
    }
    Ok(RoleInitReport {
        dir: dir.display().to_string(),
        chain_id: genesis.chain_id.clone(),
        address: keyfile::address(&key).to_string(),
        roles,
        upstream,
        http_listen: config.http_listen.to_string(),
    })
}

/// A temporary sibling of `dir` to write into, after checking `dir` is absent or empty.
pub(crate) fn stage(dir: &Path) -> anyhow::Result<tempfile::TempDir> {
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        anyhow::bail!(
            "{} exists and is not empty; `deai init` never overwrites — choose a new directory",
            dir.display()
        );
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    Ok(tempfile::Builder::new()
        .prefix(".deai-init-")
        .tempdir_in(parent)?)
}

/// Writes what every data directory has besides its keys: the genesis, the config and the
/// (empty) chain storage directory.
pub(crate) fn write_data_dir(
    dir: &Path,
    genesis: &Genesis,
    config: &NodeConfig,
) -> anyhow::Result<()> {
    fs::write(
        dir.join(GENESIS_FILE),
        serde_json::to_string_pretty(genesis)?,
    )?;
    fs::write(dir.join(crate::config::CONFIG_FILE), config.to_toml())?;
    fs::create_dir(dir.join(CHAIN_DIR))?;
    Ok(())
}

/// Moves a finished staging directory to `dir` (absent or empty, checked by [`stage`]).
pub(crate) fn publish(staging: tempfile::TempDir, dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        fs::remove_dir(dir)?; // empty, checked by `stage`
    }
    let staged = staging.keep();
    fs::rename(&staged, dir)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_makes_a_loadable_dir_and_refuses_to_overwrite() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("node");
        let report = init(&dir, NodeConfig::default()).expect("init");
        assert_eq!(
            NodeConfig::load(&dir).expect("config"),
            NodeConfig::default()
        );
        let genesis = crate::config::load_genesis(&dir).expect("genesis");
        assert_eq!(genesis.chain_id, report.chain_id);
        assert!(keyfile::read(&dir.join(NODE_KEY_FILE)).is_ok());
        let err = init(&dir, NodeConfig::default()).expect_err("second init must refuse");
        assert!(err.to_string().contains("never overwrites"), "{err}");
        // The refused attempt left no staging directory behind.
        let leftovers: Vec<_> = fs::read_dir(root.path()).expect("list").collect();
        assert_eq!(leftovers.len(), 1);
    }
}
