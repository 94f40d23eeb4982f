//! The node under test as a separate `deai node` process, and what the kernel says it uses.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
};

/// A `deai node` child process, killed when dropped.
pub(super) struct NodeProcess {
    child: Child,
    /// Where its API listens.
    pub(super) http: SocketAddr,
}

impl NodeProcess {
    /// Starts `deai node` (this executable) on `dir` with loopback ports chosen by the OS, its log
    /// in `log`, and waits for its one JSON line saying it is up.
    pub(super) fn start(dir: &Path, log: &Path) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args([
                "node",
                "--http",
                "127.0.0.1:0",
                "--p2p",
                "127.0.0.1:0",
                "--json",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start `deai node`: {e}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("the node's stdout was not captured"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let started: deai_node::run::Started = match serde_json::from_str(&line) {
            Ok(s) => s,
            Err(_) => {
                let _ = child.kill();
                anyhow::bail!(
                    "the node did not start (said {line:?}); see its log {}",
                    log.display()
                );
            }
        };
        let http = started.http.parse()?;
        Ok(Self { child, http })
    }

    /// The process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub(super) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid` in kB (`VmRSS`), 0 where `/proc` does not say.
pub(super) fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Open file descriptors of process `pid`, 0 where `/proc` does not say.
pub(super) fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}
