//! Helpers for the CLI's integration tests: a `deai node` child process on loopback.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The `deai` binary under test.
pub(crate) fn deai() -> Command {
    Command::new(env!("CARGO_BIN_EXE_deai"))
}

/// Runs `deai init` in `dir` with free ports.
pub(crate) fn init(dir: &Path) {
    let out = deai()
        .args(["init", "--json", "--dir"])
        .arg(dir)
        .args(["--http", "127.0.0.1:0", "--p2p", "127.0.0.1:0"])
        .output()
        .expect("run deai init");
    assert!(
        out.status.success(),
        "deai init failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `deai node` process; killed on drop.
pub(crate) struct NodeProcess {
    /// The child.
    pub(crate) child: Child,
    /// Its API base URL.
    pub(crate) url: String,
    /// On a validator that holds roles, their API's base URL.
    pub(crate) roles_url: Option<String>,
}

impl NodeProcess {
    /// Starts `deai node` on `dir` and waits until it prints its address.
    pub(crate) fn start(dir: &Path) -> Self {
        Self::start_with_env(dir, None)
    }

    /// Like [`Self::start`], with one extra environment variable (test hooks).
    pub(crate) fn start_with_env(dir: &Path, env: Option<(&str, String)>) -> Self {
        let mut cmd = deai();
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .args(["node", "--json", "--dir"])
            .arg(dir)
            .args(["--http", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn deai node");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the node's first line");
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("node's first line is not JSON ({e}): {line:?}"));
        let http = v["http"].as_str().expect("http address").to_string();
        Self {
            child,
            url: format!("http://{http}"),
            roles_url: v["roles_http"].as_str().map(str::to_string),
        }
    }

    /// Kills the process with SIGKILL and waits for it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A blocking GET returning (status, JSON body).
pub(crate) fn get(url: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::blocking::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .expect("GET");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(serde_json::Value::Null))
}
