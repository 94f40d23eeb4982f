//! The in-process simulator: a [`SimConfig`] in, a [`Report`] out.
//!
//! A run is a pure function of its config (seed included): clients of a round train in
//! parallel, but replies are consumed in client-id order and every random draw comes from a
//! stream keyed by (seed, round, client), so the final model hash is the same for any
//! `RAYON_NUM_THREADS`.

mod config;
mod driver;

pub use config::{DataSource, DpConfig, DpMode, SimConfig};
pub use driver::{Progress, RoundStat, client_eval, load_data, run, run_on};

/// Largest federation whose clients all evaluate the final model.
pub const PER_CLIENT_EVAL_MAX: usize = 1000;

/// The final model evaluated by each client on its own (training) data.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ClientEval {
    /// Sample-weighted mean accuracy (the strategy's `aggregate_evaluate`).
    pub accuracy: f64,
    /// Sample-weighted mean loss.
    pub loss: f64,
    /// Accuracy of the client at the 10th percentile (fairness).
    pub accuracy_p10: f64,
    /// Worst client accuracy.
    pub accuracy_min: f64,
}

/// What a run reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Task name, or `custom`.
    pub task: String,
    /// Data set.
    pub dataset: String,
    /// Partition.
    pub partition: String,
    /// Model.
    pub model: String,
    /// Strategy display name.
    pub strategy: String,
    /// Clients in the federation.
    pub clients: usize,
    /// Rounds run.
    pub rounds: u64,
    /// Seed.
    pub seed: u64,
    /// Attack and attacker count, when on.
    pub attack: Option<String>,
    /// Number of attacking clients.
    pub attackers: usize,
    /// Test accuracy after the last round.
    pub final_accuracy: f64,
    /// Best test accuracy over rounds.
    pub best_accuracy: f64,
    /// Test loss after the last round.
    pub final_loss: f64,
    /// Wall time of the whole run (data, init, rounds), seconds.
    pub wall_s: f64,
    /// Wall time of the rounds only, seconds.
    pub rounds_s: f64,
    /// Median round time (training + aggregation + evaluation), ms.
    pub median_round_ms: f64,
    /// BLAKE3 of the final flat parameters' little-endian bytes.
    pub model_hash: String,
    /// (ε, δ) spent, when DP is on.
    pub epsilon: Option<f64>,
    /// δ of `epsilon`.
    pub delta: Option<f64>,
    /// Federated evaluation of the final model on every client's own data (sample-weighted),
    /// when the federation has at most [`PER_CLIENT_EVAL_MAX`] clients.
    pub client_eval: Option<ClientEval>,
    /// Rayon threads used.
    pub threads: usize,
    /// Per-round metrics.
    pub per_round: Vec<RoundStat>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::partition::Partition;

    fn run_with_threads(cfg: &SimConfig, threads: usize) -> Report {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        pool.install(|| run(cfg, &mut |_| {})).expect("digits run")
    }

    #[test]
    fn same_seed_same_hash_for_one_and_two_threads() {
        for partition in [Partition::Iid, Partition::Shards] {
            let cfg = SimConfig {
                rounds: 4,
                partition,
                seed: 3,
                ..SimConfig::digits_100()
            };
            let one = run_with_threads(&cfg, 1);
            let two = run_with_threads(&cfg, 2);
            assert_eq!(one.model_hash, two.model_hash);
            let acc = |r: &Report| {
                r.per_round
                    .iter()
                    .map(|s| (s.accuracy, s.loss))
                    .collect::<Vec<_>>()
            };
            assert_eq!(acc(&one), acc(&two));
            let other = run_with_threads(&SimConfig { seed: 4, ..cfg }, 2);
            assert_ne!(one.model_hash, other.model_hash, "the seed matters");
        }
    }

    #[test]
    fn digits_100_learns() {
        let r = run(&SimConfig::digits_100(), &mut |_| {}).expect("digits run");
        assert_eq!(r.per_round.len(), 50);
        assert!(
            r.final_accuracy > 0.85,
            "final accuracy {}",
            r.final_accuracy
        );
        assert!(r.best_accuracy >= r.final_accuracy);
        let ce = r.client_eval.expect("100 clients evaluate");
        assert!(
            ce.accuracy_min <= ce.accuracy_p10
                && ce.accuracy_p10 <= ce.accuracy
                && ce.accuracy > 0.85
        );
    }

    #[test]
    fn dp_run_reports_epsilon() {
        let dp = DpConfig {
            mode: DpMode::ServerFixed,
            clip: 1.0,
            noise: 1.0,
            delta: 1e-5,
        };
        let r = run(
            &SimConfig {
                rounds: 3,
                dp: Some(dp),
                ..SimConfig::digits_100()
            },
            &mut |_| {},
        )
        .expect("run");
        let eps = r.epsilon.expect("DP on");
        assert!(eps > 0.0 && eps.is_finite());
    }

    /// Local training that overflows makes every reply fail its finiteness check: each such
    /// round keeps the model (as Flower does) and the run finishes, for every kind of strategy.
    #[test]
    fn rounds_where_every_client_fails_keep_the_model() {
        for strategy in ["fedavg", "median", "centered-clip+momentum"] {
            let cfg = SimConfig {
                rounds: 2,
                strategy: strategy.into(),
                local: crate::model::optim::LocalTrain {
                    lr: 1e38,
                    ..SimConfig::digits_100().local
                },
                ..SimConfig::digits_100()
            };
            let r = run(&cfg, &mut |_| {}).expect("the run finishes");
            for s in &r.per_round {
                assert_eq!((s.replies, s.failures), (0, 10), "{strategy}: {s:?}");
            }
            assert_eq!(r.per_round[0].accuracy, r.per_round[1].accuracy);
        }
    }

    #[test]
    fn bad_config_is_rejected_by_name() {
        let err = run(
            &SimConfig {
                rounds: 0,
                ..SimConfig::digits_100()
            },
            &mut |_| {},
        );
        assert!(matches!(
            err,
            Err(crate::LearnError::BadConfig {
                field: "rounds",
                ..
            })
        ));
        let err = run(
            &SimConfig {
                strategy: "nope".into(),
                ..SimConfig::digits_100()
            },
            &mut |_| {},
        );
        assert!(matches!(
            err,
            Err(crate::LearnError::BadConfig {
                field: "strategy",
                ..
            })
        ));
    }
}
