//! `GET /metrics`: Prometheus text exposition of the chain's, the API's and the blob store's counters.

use std::{collections::BTreeMap, fmt::Write as _, sync::Mutex};

use axum::{extract::State, http::header, response::IntoResponse};

use super::AppState;

/// Counters kept by the HTTP layer: submissions it turned away before they reached the chain, by code.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl HttpMetrics {
    /// Counts one rejected submission under its error code.
    pub fn reject(&self, code: &'static str) {
        let mut map = self.rejected.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(code).or_default() += 1;
    }

    fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.rejected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

pub(super) async fn render(State(app): State<AppState>) -> impl IntoResponse {
    let status = app.chain.status();
    let m = app.chain.metrics();
    let mut out = String::new();
    gauge(
        &mut out,
        "deai_height",
        "Height of the last finalized block.",
        status.height,
    );
    gauge(
        &mut out,
        "deai_mempool_txs",
        "Transactions waiting in the mempool.",
        status.mempool_size as u64,
    );
    gauge(
        &mut out,
        "deai_peers",
        "Connected validator peers.",
        status.peers as u64,
    );
    counter(
        &mut out,
        "deai_finalized_txs_total",
        "Transactions finalized.",
        m.finalized_txs_total,
    );
    let _ = writeln!(
        out,
        "# HELP deai_finality_latency_ms Submission-to-finality latency, milliseconds."
    );
    let _ = writeln!(out, "# TYPE deai_finality_latency_ms summary");
    for (q, v) in [
        ("0.5", m.finality_latency_p50_ms),
        ("0.99", m.finality_latency_p99_ms),
    ] {
        if let Some(v) = v {
            let _ = writeln!(out, "deai_finality_latency_ms{{quantile=\"{q}\"}} {v}");
        }
    }
    let _ = writeln!(
        out,
        "deai_finality_latency_ms_sum {}",
        m.finality_latency_sum_ms
    );
    let _ = writeln!(
        out,
        "deai_finality_latency_ms_count {}",
        m.finality_latency_count
    );
    let _ = writeln!(
        out,
        "# HELP deai_rejected_txs_total Transactions rejected, by reason code."
    );
    let _ = writeln!(out, "# TYPE deai_rejected_txs_total counter");
    let mut by_code = m.rejected_txs_by_code;
    for (code, n) in app.http.snapshot() {
        *by_code.entry(code.to_string()).or_default() += n;
    }
    for (code, n) in by_code {
        let _ = writeln!(out, "deai_rejected_txs_total{{reason=\"{code}\"}} {n}");
    }
    blob_counters(&mut out, app.blobs.stats());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// The blob store's counters since the node started.
fn blob_counters(out: &mut String, s: crate::blobs::BlobStats) {
    counter(
        out,
        "deai_blobs_stored_total",
        "Blobs newly stored.",
        s.stored_total,
    );
    counter(
        out,
        "deai_blob_bytes_stored_total",
        "Bytes of the blobs newly stored.",
        s.stored_bytes_total,
    );
    counter(
        out,
        "deai_blob_puts_present_total",
        "Uploads of a blob already stored (nothing written).",
        s.already_present_total,
    );
    counter(
        out,
        "deai_blob_puts_rejected_total",
        "Uploads refused: too large, wrong hash, or a storage failure.",
        s.rejected_total,
    );
}

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
    );
}
