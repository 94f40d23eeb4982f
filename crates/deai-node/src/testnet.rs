//! `deai testnet init`: the data directories of a local validator network, one per validator,
//! sharing one genesis, each knowing the others as bootstrappers, on distinct loopback ports.
//!
//! Layout of the network directory:
//! - `testnet.json`: the [`Manifest`] (which node is where, on which ports, with which keys);
//! - `node0/` … `node{N-1}/`: ordinary data directories (`deai node --dir D/node0` runs one), each
//!   with its validator key, a funded dev account key, the shared `genesis.json` and a
//!   `config.toml` listing every other validator as a bootstrapper.
//!
//! Like `deai init`, nothing is left behind on failure: everything is written to a sibling
//! temporary directory renamed into place at the end.

use std::{
    fs,
    net::{Ipv4Addr, SocketAddr, TcpListener},
    path::{Path, PathBuf},
};

use deai_ledger::{Address, Genesis};
use serde::{Deserialize, Serialize};

use crate::{
    config::{Bootstrapper, DEV_KEY_FILE, NODE_KEY_FILE, NodeConfig},
    init, keyfile,
};

/// The manifest file in a network directory.
pub const MANIFEST_FILE: &str = "testnet.json";
/// The chain id of networks made by `deai testnet init`.
pub const CHAIN_ID: &str = "deai-testnet";
/// Most validators `deai testnet init` makes (one machine runs them all).
pub const VALIDATORS_MAX: usize = 32;

/// Where a network's nodes listen.
#[derive(Debug, Clone, Copy)]
pub enum Ports {
    /// Node `i` gets HTTP on `base + 2i` and p2p on `base + 2i + 1`.
    From(u16),
    /// Free ports chosen now (tests, or several networks on one machine).
    Free,
}

/// One validator of a local network, as recorded in `testnet.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestNode {
    /// Its name, also its directory under the network directory (`node0`, …).
    pub name: String,
    /// Its validator address (ed25519 public key).
    pub validator: Address,
    /// Its funded dev account.
    pub dev_account: Address,
    /// Its HTTP API.
    pub http: SocketAddr,
    /// Where the other validators reach it.
    pub p2p: SocketAddr,
}

/// `testnet.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// The shared genesis's chain id.
    pub chain_id: String,
    /// The validators, in order.
    pub nodes: Vec<ManifestNode>,
}

impl Manifest {
    /// Reads `testnet.json` from a network directory.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(MANIFEST_FILE);
        let text = fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {}: {e}; is {} a network made by `deai testnet init`?",
                path.display(),
                dir.display()
            )
        })?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a testnet manifest: {e}", path.display()))
    }

    /// The data directory of `node` under the network directory `dir`.
    pub fn node_dir(dir: &Path, node: &ManifestNode) -> PathBuf {
        dir.join(&node.name)
    }
}

/// Creates a network of `validators` validators in `dir` (refused if it exists and is not empty).
/// `adjust` may change the shared genesis before it is written.
pub fn init(
    dir: &Path,
    validators: usize,
    ports: Ports,
    adjust: impl FnOnce(&mut Genesis),
) -> anyhow::Result<Manifest> {
    init_with(dir, validators, ports, adjust, |_| {})
}

/// Like [`init`], letting `configure` change every node's configuration too (benchmarks lift the
/// per-address write limit this way).
pub fn init_with(
    dir: &Path,
    validators: usize,
    ports: Ports,
    adjust: impl FnOnce(&mut Genesis),
    configure: impl Fn(&mut NodeConfig),
) -> anyhow::Result<Manifest> {
    anyhow::ensure!(
        (1..=VALIDATORS_MAX).contains(&validators),
        "--validators must be between 1 and {VALIDATORS_MAX} (got {validators})"
    );
    let staging = init::stage(dir)?;
    let addresses = listen_addresses(validators, ports)?;
    let mut keys = Vec::with_capacity(validators);
    for i in 0..validators {
        let node_dir = staging.path().join(format!("node{i}"));
        fs::create_dir(&node_dir)?;
        let node_key = keyfile::create(&node_dir.join(NODE_KEY_FILE))?;
        let dev_key = keyfile::create(&node_dir.join(DEV_KEY_FILE))?;
        keys.push((keyfile::address(&node_key), keyfile::address(&dev_key)));
    }
    let mut genesis = Genesis::dev(keys[0].1, keys.iter().map(|(v, _)| *v).collect());
    genesis.chain_id = CHAIN_ID.to_string();
    let dev_balance = genesis.balances[0].1;
    for (_, dev) in &keys[1..] {
        genesis.balances.push((*dev, dev_balance));
    }
    adjust(&mut genesis);
    genesis
        .validate()
        .map_err(|e| anyhow::anyhow!("the network's genesis is invalid: {e}"))?;
    let nodes: Vec<ManifestNode> = keys
        .iter()
        .zip(&addresses)
        .enumerate()
        .map(
            |(i, ((validator, dev_account), (http, p2p)))| ManifestNode {
                name: format!("node{i}"),
                validator: *validator,
                dev_account: *dev_account,
                http: *http,
                p2p: *p2p,
            },
        )
        .collect();
    for node in &nodes {
        let mut config = NodeConfig {
            http_listen: node.http,
            p2p_listen: node.p2p,
            bootstrappers: nodes
                .iter()
                .filter(|other| other.name != node.name)
                .map(|other| Bootstrapper {
                    public_key: hex::encode(other.validator.0),
                    address: other.p2p,
                })
                .collect(),
            ..NodeConfig::default()
        };
        configure(&mut config);
        init::write_data_dir(&staging.path().join(&node.name), &genesis, &config)?;
    }
    let manifest = Manifest {
        chain_id: genesis.chain_id.clone(),
        nodes,
    };
    fs::write(
        staging.path().join(MANIFEST_FILE),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    init::publish(staging, dir)?;
    Ok(manifest)
}

/// HTTP and p2p addresses for each node.
fn listen_addresses(n: usize, ports: Ports) -> anyhow::Result<Vec<(SocketAddr, SocketAddr)>> {
    let at = |port: u16| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match ports {
        Ports::From(base) => (0..n)
            .map(|i| {
                let http = u16::try_from(i * 2)
                    .ok()
                    .and_then(|o| base.checked_add(o))
                    .and_then(|h| h.checked_add(1).map(|p| (h, p)))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "--base-port {base} leaves no room for {n} nodes (2 ports each)"
                        )
                    })?;
                Ok((at(http.0), at(http.1)))
            })
            .collect(),
        Ports::Free => {
            // Hold every listener until all are chosen, so no two nodes get the same port.
            let listeners = (0..2 * n)
                .map(|_| TcpListener::bind(at(0)))
                .collect::<Result<Vec<_>, _>>()?;
            let ports = listeners
                .iter()
                .map(|l| l.local_addr())
                .collect::<Result<Vec<_>, _>>()?;
            Ok(ports.chunks(2).map(|p| (p[0], p[1])).collect())
        }
    }
}

/// A data directory that joins an existing network: `genesis` (shared by every validator), this
/// node's key, and the bootstrappers it dials (every genesis validator). A key the genesis does
/// not list follows the chain until an account stakes for it and declares it (`deai validator
/// declare`), and validates from the next epoch boundary on.
pub fn join(
    dir: &Path,
    genesis: &Genesis,
    node_key: &Path,
    config: NodeConfig,
) -> anyhow::Result<init::InitReport> {
    let key = keyfile::read(node_key)?;
    let me = keyfile::address(&key);
    let missing: Vec<String> = genesis
        .validators
        .iter()
        .filter(|(v, _)| *v != me)
        .filter(|(v, _)| {
            !config
                .bootstrappers
                .iter()
                .any(|b| b.public_key.eq_ignore_ascii_case(&v.to_string()))
        })
        .map(|(v, _)| v.to_string())
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "give --bootstrap KEY@HOST:PORT for every genesis validator; missing: {}",
        missing.join(", ")
    );
    let staging = init::stage(dir)?;
    keyfile::write(&staging.path().join(NODE_KEY_FILE), &key)?;
    init::write_data_dir(staging.path(), genesis, &config)?;
    init::publish(staging, dir)?;
    Ok(init::InitReport {
        dir: dir.display().to_string(),
        chain_id: genesis.chain_id.clone(),
        node_address: me.to_string(),
        dev_address: String::new(),
        dev_balance: "0".into(),
        http_listen: config.http_listen.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GENESIS_FILE;

    #[test]
    fn a_network_shares_one_genesis_and_each_node_knows_the_others() {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("net");
        let m = init(&dir, 4, Ports::Free, |_| {}).expect("init");
        assert_eq!(Manifest::load(&dir).expect("manifest"), m);
        let genesis = crate::config::load_genesis(&dir.join("node0")).expect("genesis");
        assert_eq!(genesis.validators.len(), 4);
        let mut ports = std::collections::BTreeSet::new();
        for node in &m.nodes {
            let d = Manifest::node_dir(&dir, node);
            assert_eq!(
                fs::read(d.join(GENESIS_FILE)).expect("genesis"),
                fs::read(dir.join("node0").join(GENESIS_FILE)).expect("genesis")
            );
            let cfg = NodeConfig::load(&d).expect("config");
            assert_eq!(cfg.bootstrappers.len(), 3);
            assert!(
                cfg.bootstrappers
                    .iter()
                    .all(|b| b.public_key != hex::encode(node.validator.0))
            );
            assert!(
                genesis
                    .balances
                    .iter()
                    .any(|(a, b)| *a == node.dev_account && *b > 0)
            );
            let key = keyfile::read(&d.join(NODE_KEY_FILE)).expect("key");
            assert_eq!(keyfile::address(&key), node.validator);
            assert!(ports.insert(node.http.port()) && ports.insert(node.p2p.port()));
        }
        let err = init(&dir, 4, Ports::Free, |_| {}).expect_err("never overwrites");
        assert!(err.to_string().contains("never overwrites"), "{err}");
    }

    #[test]
    fn base_ports_are_laid_out_two_per_node_and_overflow_is_refused() {
        let a = listen_addresses(3, Ports::From(7700)).expect("fits");
        assert_eq!(a[2].0.port(), 7704);
        assert_eq!(a[2].1.port(), 7705);
        let err = listen_addresses(3, Ports::From(65_533)).expect_err("overflows");
        assert!(err.to_string().contains("no room"), "{err}");
    }

    #[test]
    fn joining_needs_every_genesis_validator_as_a_bootstrapper() {
        let root = tempfile::tempdir().expect("temp dir");
        let net = root.path().join("net");
        let manifest = init(&net, 2, Ports::Free, |_| {}).expect("init");
        let genesis = crate::config::load_genesis(&net.join("node1")).expect("genesis");
        let stranger = root.path().join("stranger.key");
        keyfile::create(&stranger).expect("key");
        let bootstrap = |nodes: &[ManifestNode]| NodeConfig {
            bootstrappers: nodes
                .iter()
                .map(|n| crate::config::Bootstrapper {
                    public_key: n.validator.to_string().to_uppercase(),
                    address: n.p2p,
                })
                .collect(),
            ..NodeConfig::default()
        };
        let err = join(
            &root.path().join("j1"),
            &genesis,
            &stranger,
            bootstrap(&manifest.nodes[..1]),
        )
        .expect_err("node1 missing");
        let missing = manifest.nodes[1].validator.to_string();
        assert!(err.to_string().contains(&missing), "{err}");
        assert!(
            !root.path().join("j1").exists(),
            "a refused join left a directory"
        );
        // A key the genesis does not list joins as a follower (it validates once staked and
        // declared); a genesis validator's key needs the others only.
        let follower = join(
            &root.path().join("j2"),
            &genesis,
            &stranger,
            bootstrap(&manifest.nodes),
        )
        .expect("join as a follower");
        assert_eq!(follower.chain_id, CHAIN_ID);
        let ok = join(
            &root.path().join("j3"),
            &genesis,
            &net.join("node1").join(NODE_KEY_FILE),
            bootstrap(&manifest.nodes[..1]),
        )
        .expect("join");
        assert_eq!(ok.chain_id, CHAIN_ID);
    }
}
