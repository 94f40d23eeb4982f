//! The explorer in a real browser: Debian's headless Chromium driven through ChromeDriver
//! (installed by scripts/install-deps.sh) by fantoccini, against `deai demo --keep` (a trained
//! task, a model with offers, a governance vote). It checks what a person would see: a live block
//! arriving on the overview, the task's rounds and cumulative-ε chart, the model's lineage graph
//! with the datasets that trained it and their owners, a consent policy in words, a search; and
//! saves a screenshot of each page (docs/explorer.md shows them).

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use crate::common;

/// Kills the child when dropped (the demo waits for Ctrl-C; ChromeDriver runs until stopped).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// `deai demo --keep --json` with a short task; its report (printed once the network is up to
/// stay) and the process.
fn demo(dir: &std::path::Path) -> (Value, Killed) {
    let mut child = common::deai()
        .args(["demo", "--keep", "--json", "--rounds", "6", "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn deai demo");
    let stdout = child.stdout.take().expect("piped");
    let child = Killed(child);
    // The report is one JSON document; read until it parses.
    let mut text = String::new();
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read the demo's output");
        assert!(n > 0, "deai demo ended before its report: {text}");
        text.push_str(&line);
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            std::thread::spawn(move || {
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
            });
            return (v, child);
        }
    }
}

fn chromedriver() -> (String, Killed) {
    assert!(
        std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
        "the browser tests need Debian's chromium and chromium-driver: run scripts/install-deps.sh"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (url, Killed(child))
}

async fn browser(driver: &str, profile: &std::path::Path) -> Client {
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let mut caps = serde_json::Map::new();
    // The flags keep Chromium off the network it cannot reach here (docs/explorer.md).
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a Chromium session through chromedriver")
}

/// Evaluates `expr` in the page until it is truthy; its value.
async fn wait_for(c: &Client, expr: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = c
            .execute(&format!("return ({expr});"), vec![])
            .await
            .expect("script runs");
        let truthy =
            !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
        if truthy {
            return v;
        }
        assert!(Instant::now() < deadline, "never true in the page: {expr}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `#/path` and waits until its page finished rendering.
async fn open(c: &Client, base: &str, path: &str) {
    c.goto(&format!("{base}/#/{path}")).await.expect("navigate");
    let want = if path.is_empty() { "overview" } else { path };
    wait_for(
        c,
        &format!("window.explorer && window.explorer.page === {want:?}"),
    )
    .await;
}

async fn screenshot(c: &Client, name: &str) {
    let dir = std::env::var_os("DEAI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/explorer-screenshots")
        });
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(dir.join(format!("explorer-{name}.png")), png).expect("write screenshot");
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

#[test]
fn the_explorer_shows_a_task_its_lineage_and_live_blocks_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let (report, _demo) = demo(&tmp.path().join("demo"));
    let base = report["node"]
        .as_str()
        .expect("--keep reports the node")
        .to_string();
    let (driver, _driver) = chromedriver();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = browser(&driver, &tmp.path().join("chromium")).await;

        // Overview: the finalized height and the recent blocks, then a block arriving live.
        let started = Instant::now();
        open(&c, &base, "").await;
        let painted = started.elapsed();
        let height: u64 = text(&wait_for(&c, "document.getElementById('height').textContent").await)
            .replace([',', '.', ' ', '\u{a0}'], "")
            .parse()
            .unwrap();
        assert!(height >= report["height"].as_u64().unwrap(), "{height}");
        let top = wait_for(&c, "document.querySelector('#blocks tbody tr').dataset.height").await;
        let top: u64 = text(&top).parse().unwrap();
        wait_for(&c, "document.getElementById('live').className === 'on'").await;
        let arrived = wait_for(
            &c,
            &format!(
                "Number(document.querySelector('#blocks tbody tr').dataset.height) > {top} && \
                 document.querySelector('#blocks tbody tr').className === 'new'"
            ),
        )
        .await;
        assert_eq!(arrived, json!(true));
        let painted_in_page = wait_for(&c, "window.explorer.paintedMs").await;
        eprintln!(
            "explorer: overview painted {painted_in_page} ms after navigation start by the \
             page's clock, {painted:?} by the test's (WebDriver included), at height {height}"
        );
        screenshot(&c, "overview").await;

        // The task: one row per round, and the chart's cumulative ε ending at what the ledger
        // charged.
        open(&c, &base, "task/1").await;
        let rounds = wait_for(&c, "document.querySelectorAll('#rounds tbody tr').length").await;
        assert_eq!(rounds, report["rounds"], "{report}");
        wait_for(&c, "document.querySelector('#epsilon-chart canvas') !== null").await;
        let last_eps = wait_for(
            &c,
            "(d => d[1][d[1].length - 1])(window.explorer.chart.data)",
        )
        .await;
        let spent = report["epsilon_spent"].as_f64().unwrap() / 1e6;
        assert!(
            (last_eps.as_f64().unwrap() - spent).abs() < 1e-6,
            "chart ends at ε {last_eps}, the ledger charged {spent}"
        );
        let status = wait_for(&c, "document.getElementById('task-status').textContent").await;
        assert_eq!(text(&status), "closed");
        // The node re-verified the closed task: every round checked, each one's validation
        // accuracy drawn.
        let verified = wait_for(
            &c,
            "(t => t !== 'checking…' && t)(document.getElementById('verification').textContent)",
        )
        .await;
        assert!(text(&verified).starts_with("OK"), "{verified}");
        let points = wait_for(
            &c,
            "Number(document.getElementById('epsilon-chart').dataset.accuracy)",
        )
        .await;
        assert_eq!(points, report["rounds"], "one accuracy per round");
        let accuracy = wait_for(
            &c,
            "(d => d[3][d[3].length - 1])(window.explorer.chart.data)",
        )
        .await
        .as_f64()
        .unwrap();
        assert!(accuracy > 0.5 && accuracy <= 1.0, "last round's accuracy {accuracy}");
        screenshot(&c, "task").await;

        // The model: its lineage holds exactly the datasets that survived some round, each with
        // its owner, the rounds and the task.
        open(&c, &base, "model/1").await;
        let labels = wait_for(
            &c,
            "window.explorer.lineage && window.explorer.lineage.nodes().map(n => n.data('kind') + ':' + n.id())",
        )
        .await;
        let labels: Vec<String> = serde_json::from_value(labels).unwrap();
        let shown: BTreeSet<u64> = labels
            .iter()
            .filter_map(|l| l.strip_prefix("dataset:dataset:"))
            .map(|d| d.parse().unwrap())
            .collect();
        let trained: BTreeSet<u64> = report["per_round"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["survivors"].as_array().unwrap().iter())
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(shown, trained, "{labels:?}");
        let owners = labels.iter().filter(|l| l.starts_with("owner:")).count();
        assert_eq!(owners, trained.len(), "one owner per dataset in the demo");
        assert!(labels.iter().any(|l| l == "task:task:1"));
        let rounds = labels.iter().filter(|l| l.starts_with("round:")).count();
        assert_eq!(rounds as u64, report["rounds"].as_u64().unwrap());
        screenshot(&c, "model").await;

        // A dataset's consent in words; the revoked one says so.
        let revoked_owner = report["revoked_owner"].as_u64().unwrap() as usize;
        let revoked = report["rewards"][revoked_owner]["dataset"].as_u64().unwrap();
        open(&c, &base, &format!("dataset/{revoked}")).await;
        let consent = wait_for(&c, "document.getElementById('consent').textContent").await;
        assert!(text(&consent).starts_with("Revoked"), "{consent}");
        let other = trained.iter().find(|d| **d != revoked).unwrap();
        open(&c, &base, &format!("dataset/{other}")).await;
        let consent = wait_for(&c, "document.getElementById('consent').textContent").await;
        assert!(text(&consent).contains("digit-recognition"), "{consent}");
        screenshot(&c, "dataset").await;

        // Governance: the demo's executed proposal with its tally.
        open(&c, &base, "proposal/1").await;
        let body = wait_for(&c, "document.getElementById('main').textContent").await;
        assert!(text(&body).contains("executed"), "{body}");
        screenshot(&c, "proposal").await;

        // Search by model hash finds the model.
        let hash = wait_for(
            &c,
            "fetch('/v1/models/1').then(r => r.json()).then(m => m.model_hash)",
        )
        .await;
        open(&c, &base, &format!("search/{}", text(&hash))).await;
        let results = wait_for(&c, "document.getElementById('results').textContent").await;
        assert!(text(&results).contains("model 1"), "{results}");

        c.close().await.unwrap();
    });
}
