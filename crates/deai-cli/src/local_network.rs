//! A validator network on loopback made by `deai testnet init` and run as child processes of this
//! one (the chain bench's and `deai demo --validators N`'s network), stopped when dropped.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use deai_ledger::Genesis;
use deai_node::{
    client::Client,
    config::NodeConfig,
    testnet::{Manifest, Ports},
};

use crate::node_process::{Listen, NodeProcess};

/// How long a validator may take to say it serves.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Tries at starting the network, each on newly picked ports.
const PORT_ATTEMPTS: u32 = 3;

/// Validator processes of one network.
pub(crate) struct LocalNetwork {
    nodes: Vec<NodeProcess>,
    /// Each validator's API, in manifest order.
    pub(crate) urls: Vec<String>,
}

impl LocalNetwork {
    /// Writes a network of `n` validators to `dir` (which must not exist or be empty), with
    /// `adjust` changing the shared genesis and `configure` every node's configuration, and starts
    /// each validator as its own process, its log in `dir/nodeI/node.log`. A port taken between
    /// being picked and bound makes it start again on others (the network is written anew).
    pub(crate) fn start(
        dir: &Path,
        n: usize,
        adjust: impl Fn(&mut Genesis),
        configure: impl Fn(&mut NodeConfig),
    ) -> anyhow::Result<Self> {
        for attempt in 1..=PORT_ATTEMPTS {
            let manifest = deai_node::testnet::init_with(dir, n, Ports::Free, &adjust, &configure)?;
            match Self::start_nodes(dir, &manifest) {
                Ok(net) => return Ok(net),
                // Free ports are picked, released, then bound by the nodes: another process can
                // take one in between. Pick again (the nodes started were stopped).
                Err(e) if attempt < PORT_ATTEMPTS && format!("{e:#}").contains("in use") => {
                    eprintln!("a picked port was taken ({e:#}); starting the network on others");
                    std::fs::remove_dir_all(dir)?;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns its error")
    }

    fn start_nodes(dir: &Path, manifest: &Manifest) -> anyhow::Result<Self> {
        let n = manifest.nodes.len();
        let mut net = Self {
            nodes: Vec::with_capacity(n),
            urls: Vec::with_capacity(n),
        };
        for node in &manifest.nodes {
            let data = Manifest::node_dir(dir, node);
            let log = data.join("node.log");
            // On an error the nodes started are stopped as `net` drops.
            let p = NodeProcess::start(&data, &log, Listen::Configured, None, START_TIMEOUT)
                .map_err(|e| anyhow::anyhow!("{} did not start: {e:#}", node.name))?;
            net.urls.push(format!("http://{}", p.http));
            net.nodes.push(p);
        }
        Ok(net)
    }

    /// Asks every validator to stop (SIGTERM), then kills what has not exited within 10 s.
    pub(crate) fn stop(&mut self) {
        for p in &mut self.nodes {
            p.terminate();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        for p in &mut self.nodes {
            p.wait_or_kill(deadline);
        }
    }

    /// Waits until every validator is connected to all the others and then a block has
    /// finalized on each: processes answer HTTP before their p2p links are up, and a view whose
    /// leader nobody hears yet times out, so a measurement started earlier measures start-up.
    pub(crate) async fn await_connected(&self, timeout: Duration) -> anyhow::Result<()> {
        let clients: Vec<Client> = self.urls.iter().map(|u| Client::new(u.clone())).collect();
        let others = self.urls.len() as u64 - 1;
        let deadline = Instant::now() + timeout;
        let mut connected_at: Option<u64> = None;
        loop {
            let mut statuses = Vec::with_capacity(clients.len());
            for c in &clients {
                statuses.push(c.status().await?);
            }
            let all_connected = statuses.iter().all(|s| s.peers >= others);
            let lowest = statuses.iter().map(|s| s.height).min().unwrap_or(0);
            match connected_at {
                Some(h) if lowest > h => return Ok(()),
                None if all_connected => {
                    connected_at = Some(statuses.iter().map(|s| s.height).max().unwrap_or(0));
                }
                _ => {}
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the validators were not all connected and finalizing within {} s (peers seen: \
                 {:?})",
                timeout.as_secs(),
                statuses.iter().map(|s| s.peers).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The lowest height every validator has finalized, after checking that they all report the
    /// same state root there (a disagreement is a safety failure: an error naming the validators).
    pub(crate) async fn agreed_height(&self) -> anyhow::Result<u64> {
        let clients: Vec<Client> = self.urls.iter().map(|u| Client::new(u.clone())).collect();
        let mut height = u64::MAX;
        for c in &clients {
            height = height.min(c.status().await?.height);
        }
        let reference = clients[0].block(height).await?.state_root;
        for (i, c) in clients.iter().enumerate().skip(1) {
            let root = c.block(height).await?.state_root;
            anyhow::ensure!(
                root == reference,
                "validators 0 and {i} disagree on the state root at height {height}"
            );
        }
        Ok(height)
    }
}

impl Drop for LocalNetwork {
    fn drop(&mut self) {
        self.stop();
    }
}
