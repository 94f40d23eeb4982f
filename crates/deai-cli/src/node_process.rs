//! A `deai node` child process of this executable (the soak's node under test, the validators of
//! `deai testnet up`), and what the kernel says it uses.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Where the node listens.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Listen {
    /// The addresses in its `config.toml`.
    Configured,
    /// Loopback ports the OS chooses (a lone node nobody else dials).
    AnyLoopbackPort,
}

/// A `deai node` child process, killed when dropped.
pub(crate) struct NodeProcess {
    child: Child,
    /// Where its API listens.
    pub(crate) http: SocketAddr,
    /// What it said when it came up.
    pub(crate) started: deai_node::run::Started,
}

/// The last lines of a node's log (what it said before it stopped), for an error message.
fn log_tail(log: &Path) -> String {
    const LINES: usize = 12;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

impl NodeProcess {
    /// Starts `deai node` (this executable) on `dir`, its log (stderr) in `log`, and waits up to
    /// `timeout` for its one JSON line saying it is up (killing it otherwise). Blocks: call it
    /// off async workers. `log_level` is the child's `DEAI_LOG` where this process has none
    /// (`deai node` logs warnings only).
    pub(crate) fn start(
        dir: &Path,
        log: &Path,
        listen: Listen,
        log_level: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.args(["node", "--json"]).arg("--dir").arg(dir);
        if let (Some(level), None) = (log_level, std::env::var_os("DEAI_LOG")) {
            cmd.env("DEAI_LOG", level);
        }
        if let Listen::AnyLoopbackPort = listen {
            cmd.args(["--http", "127.0.0.1:0", "--p2p", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log)?)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start `deai node`: {e}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("the node's stdout was not captured"))?;
        // The read runs on its own thread so a node that hangs before saying anything cannot
        // hold the caller past `timeout`.
        let (said, heard) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = said.send(read);
        });
        let line = match heard.recv_timeout(timeout) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!(
                    "cannot read the node's output: {e}; see its log {}",
                    log.display()
                );
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!(
                    "the node did not say it was up within {} s; see its log {}",
                    timeout.as_secs(),
                    log.display()
                );
            }
        };
        let started: deai_node::run::Started = match serde_json::from_str(&line) {
            Ok(s) => s,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!(
                    "the node did not start (said {line:?}); the end of its log {}:\n{}",
                    log.display(),
                    log_tail(log)
                );
            }
        };
        let http = started.http.parse()?;
        Ok(Self {
            child,
            http,
            started,
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks it to stop (SIGTERM: it shuts down as on Ctrl-C); see [`Self::wait_or_kill`].
    pub(crate) fn terminate(&mut self) {
        if !self.alive() {
            return;
        }
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid()).unwrap_or(i32::MAX));
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }

    /// Waits until `deadline` for it to exit, then kills it. Returns whether it exited by itself.
    pub(crate) fn wait_or_kill(&mut self, deadline: Instant) -> bool {
        loop {
            if !self.alive() {
                return true;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of process `pid` in kB (`VmRSS`), 0 where `/proc` does not say.
pub(crate) fn rss_kb(pid: u32) -> u64 {
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
pub(crate) fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}
