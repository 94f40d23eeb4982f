//! `GET /metrics` on a real node: one OpenMetrics exposition of the runtime's registry, holding
//! the chain's, the API's, the blob store's and consensus's metrics, whose values follow what
//! the node does.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use deai_ledger::{Address, Transfer, TxBody};
use deai_node::{
    api::METRICS_CONTENT_TYPE,
    client::Client,
    config::{DEV_KEY_FILE, NodeConfig},
    keyfile,
};

/// A parsed exposition: each family's type, and each sample's value by `name{labels}`.
#[derive(Debug, Default)]
struct Exposition {
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, f64>,
}

impl Exposition {
    fn value(&self, sample: &str) -> f64 {
        *self
            .samples
            .get(sample)
            .unwrap_or_else(|| panic!("no sample {sample}"))
    }
}

/// The suffixes OpenMetrics allows a sample of a family of `kind` to add to the family's name.
fn suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "histogram" => &["_bucket", "_sum", "_count", "_created"],
        "gaugehistogram" => &["_bucket", "_gsum", "_gcount"],
        "summary" => &["", "_sum", "_count", "_created"],
        "info" => &["_info"],
        _ => &[""],
    }
}

/// Parses the OpenMetrics text format strictly enough to catch what a scraper would reject: a
/// sample outside its family or of a name its type does not allow, a value that is not a number,
/// a family declared twice, anything after or a missing `# EOF`.
fn parse(text: &str) -> Exposition {
    let body = text
        .strip_suffix("# EOF\n")
        .unwrap_or_else(|| panic!("no final # EOF:\n{text}"));
    let mut out = Exposition::default();
    let mut family: Option<(String, String)> = None;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            let fresh = out
                .types
                .insert(name.to_string(), kind.to_string())
                .is_none();
            assert!(fresh, "family {name} declared twice");
            family = Some((name.to_string(), kind.to_string()));
            continue;
        }
        if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        let (fam, kind) = family
            .as_ref()
            .unwrap_or_else(|| panic!("sample {line:?} before any # TYPE"));
        let allowed = suffixes(kind)
            .iter()
            .any(|s| name.strip_suffix(s) == Some(fam.as_str()));
        assert!(allowed, "sample {name} is not of family {fam} ({kind})");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("{line:?}: bad value: {e}"));
        out.samples.insert(series.to_string(), value);
    }
    out
}

async fn scrape(base: &str) -> Exposition {
    let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], METRICS_CONTENT_TYPE);
    parse(&resp.text().await.unwrap())
}

#[test]
fn metrics_follow_a_transaction_and_a_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("node");
    deai_node::init::init(&dir, NodeConfig::default()).unwrap();
    let dev = keyfile::read(&dir.join(DEV_KEY_FILE)).unwrap();
    deai_node::run::with_embedded(&dir, |node| async move {
        let base = format!("http://{}", node.http_addr);
        let before = scrape(&base).await;
        for (family, kind) in [
            ("deai_height", "gauge"),
            ("deai_mempool_txs", "gauge"),
            ("deai_peers", "gauge"),
            ("deai_finalized_txs", "counter"),
            ("deai_finality_latency_ms", "histogram"),
            ("deai_blobs_stored", "counter"),
            ("deai_blob_bytes_stored", "counter"),
            ("deai_blob_puts_present", "counter"),
            ("deai_blob_puts_rejected", "counter"),
            ("deai_executor_queue_blocks", "gauge"),
        ] {
            assert_eq!(
                before.types.get(family).map(String::as_str),
                Some(kind),
                "{family}"
            );
        }
        // One transfer, waited for until final.
        let client = Client::new(base.clone());
        let body = TxBody::Transfer(Transfer {
            to: Address([5u8; 32]),
            amount: 1,
        });
        let wait = Some(Duration::from_secs(30));
        client.send(&dev, body, None, wait).await.unwrap();
        // One submission the API cannot decode.
        let resp = reqwest::Client::new()
            .post(format!("{base}/v1/txs"))
            .header("content-type", "application/json")
            .body(r#"{"tx":"not hex"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let answer: serde_json::Value = resp.json().await.unwrap();
        let code = answer["error"]["code"].as_str().unwrap().to_string();

        let after = scrape(&base).await;
        // Consensus's own metrics come from the same registry. They are checked after a block has
        // finalized: the engines register their families when they start, which can be after the
        // HTTP server answers its first scrape.
        let commonware: BTreeSet<_> = after
            .types
            .keys()
            .filter_map(|f| f.split('_').next())
            .collect();
        assert!(commonware.contains("consensus"), "{commonware:?}");
        assert!(commonware.contains("marshal"), "{commonware:?}");
        let grew = |sample: &str| after.value(sample) > before.value(sample);
        assert!(grew("deai_finalized_txs_total"));
        assert!(grew("deai_height"));
        assert!(grew("deai_finality_latency_ms_count"));
        assert!(after.value("deai_finality_latency_ms_bucket{le=\"+Inf\"}") >= 1.0);
        assert_eq!(
            after.value(&format!("deai_rejected_txs_total{{reason=\"{code}\"}}")),
            1.0
        );
        assert_eq!(
            after.value(&format!("deai_http_errors_total{{code=\"{code}\"}}")),
            1.0
        );
        assert_eq!(after.types["deai_rejected_txs"], "counter");
        Ok(())
    })
    .unwrap();
}
