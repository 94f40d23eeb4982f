//! The chain's Prometheus metrics, registered in the runtime's registry under `deai_`.
//!
//! They live in the same registry as the metrics Commonware's consensus, marshal, p2p and
//! storage register on their contexts, so one `encode()` of the runtime exposes all of them.
//! Each value is updated where the event happens (a block applied, a submission refused), not
//! recomputed at scrape time.
//!
//! Several validators sharing one runtime (the simulation tests) under the same context name
//! share these series: the registry hands a second registration of a name the first one's
//! metric. Give each validator its own context attribute to tell them apart.

use commonware_runtime::{Metrics, telemetry::metrics::Registered};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
};

/// Upper bounds of the finality-latency histogram's buckets, in ms: from one fast local block
/// to a minute of a stalled or partitioned network.
const LATENCY_BUCKETS_MS: [f64; 12] = [
    10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0, 5_000.0, 10_000.0, 30_000.0, 60_000.0,
];

/// The `reason` label of rejected transactions: a stable error code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Reason {
    reason: String,
}

/// The chain's registered metrics. Dropping it unregisters them.
pub(crate) struct Telemetry {
    pub(crate) height: Registered<Gauge>,
    pub(crate) mempool_txs: Registered<Gauge>,
    pub(crate) peers: Registered<Gauge>,
    pub(crate) finalized_txs: Registered<Counter>,
    pub(crate) finality_latency_ms: Registered<Histogram>,
    rejected_txs: Registered<Family<Reason, Counter>>,
    pub(crate) executor_queue_blocks: Registered<Gauge>,
    pub(crate) snapshot_height: Registered<Gauge>,
    pub(crate) replayed_blocks: Registered<Gauge>,
    pub(crate) gossip_sent_txs: Registered<Counter>,
    pub(crate) gossip_received_txs: Registered<Counter>,
    pub(crate) gossip_malformed: Registered<Counter>,
}

impl Telemetry {
    /// Registers the chain's metrics on `context` (names prefixed with its label and `deai`).
    pub(crate) fn register(context: &impl Metrics) -> Self {
        let ctx = context.child("deai");
        // Counters are registered without `_total`: the OpenMetrics encoder appends it.
        Self {
            height: ctx.register(
                "height",
                "Height of the last finalized block",
                Gauge::default(),
            ),
            mempool_txs: ctx.register(
                "mempool_txs",
                "Transactions waiting in the mempool",
                Gauge::default(),
            ),
            peers: ctx.register("peers", "Connected validator peers", Gauge::default()),
            finalized_txs: ctx.register(
                "finalized_txs",
                "Transactions finalized (applied or rejected in a block)",
                Counter::default(),
            ),
            finality_latency_ms: ctx.register(
                "finality_latency_ms",
                "Submission-to-finality latency of transactions submitted here, milliseconds",
                Histogram::new(LATENCY_BUCKETS_MS),
            ),
            rejected_txs: ctx.register(
                "rejected_txs",
                "Transactions rejected (at submission or in a block), by reason code",
                Family::default(),
            ),
            executor_queue_blocks: ctx.register(
                "executor_queue_blocks",
                "Finalized blocks handed to the executor and not yet taken up by it",
                Gauge::default(),
            ),
            snapshot_height: ctx.register(
                "snapshot_height",
                "Height of the newest durable state snapshot (restart replays only later blocks)",
                Gauge::default(),
            ),
            replayed_blocks: ctx.register(
                "replayed_blocks",
                "Blocks replayed from the block store at the last start (after the snapshot restored)",
                Gauge::default(),
            ),
            gossip_sent_txs: ctx.register(
                "gossip_sent_txs",
                "Transactions admitted here and gossiped to the other validators",
                Counter::default(),
            ),
            gossip_received_txs: ctx.register(
                "gossip_received_txs",
                "Transactions received from other validators' gossip (admitted or not)",
                Counter::default(),
            ),
            gossip_malformed: ctx.register(
                "gossip_malformed",
                "Gossip messages dropped whole because they did not decode",
                Counter::default(),
            ),
        }
    }

    /// Counts one rejected transaction under its stable code.
    pub(crate) fn reject(&self, code: &str) {
        self.rejected_txs
            .get_or_create(&Reason {
                reason: code.to_string(),
            })
            .inc();
    }
}

/// Sets a gauge to a count, saturating where it does not fit the gauge's integer.
pub(crate) fn set_count(gauge: &Gauge, n: impl TryInto<i64>) {
    gauge.set(n.try_into().unwrap_or(i64::MAX));
}
