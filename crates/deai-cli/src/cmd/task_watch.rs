//! `deai task watch ID`: follows a task live from the ledger (rounds, survivors, ε) and, given its
//! coordinator, each round's validation accuracy, until the task closes or is cancelled.

use std::time::{Duration, Instant};

use deai_ledger::Task;
use deai_node::client::Client;
use serde::Serialize;

use super::common::{NodeArgs, block_on};
use crate::output;

/// Arguments of `deai task watch`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai task watch 1 --coordinator http://127.0.0.1:7660")]
pub struct WatchArgs {
    /// The task.
    pub id: u64,
    /// The coordinator node's API: adds each round's validation accuracy and loss (the ledger
    /// records hashes, not scores of the model).
    #[arg(long, value_name = "URL")]
    pub coordinator: Option<String>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_s: u64,
}

/// One closed round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundLine {
    /// Its number.
    pub round: u32,
    /// Datasets selected.
    pub selected: usize,
    /// Datasets in the aggregate (0 for an expired round).
    pub survivors: usize,
    /// Whether it expired without a result.
    pub expired: bool,
    /// The task's ε spent after it, fixed point at `EPSILON_SCALE` (as the ledger's
    /// `epsilon_spent`).
    pub epsilon_spent: u64,
    /// The same as an exact decimal.
    pub epsilon_spent_decimal: String,
    /// Validation accuracy of the new model (from the coordinator).
    pub accuracy: Option<f64>,
    /// Validation loss of the new model (from the coordinator).
    pub loss: Option<f64>,
}

/// How the task ended.
#[derive(Debug, Serialize)]
pub struct Watched {
    /// The task.
    pub task: u64,
    /// `closed` or `cancelled`.
    pub status: String,
    /// Every round.
    pub rounds: Vec<RoundLine>,
    /// The model registered at close.
    pub model: Option<u64>,
    /// ε spent, fixed point (the task's `epsilon_spent`).
    pub epsilon_spent: u64,
    /// The same as an exact decimal.
    pub epsilon_spent_decimal: String,
    /// The ε budget, fixed point (the task's `epsilon`).
    pub epsilon_budget: u64,
    /// The same as an exact decimal.
    pub epsilon_budget_decimal: String,
}

#[derive(serde::Deserialize, Default)]
struct CoordStatus {
    coordinator: Option<CoordTasks>,
}

#[derive(serde::Deserialize, Default)]
struct CoordTasks {
    tasks: Vec<CoordTask>,
}

#[derive(serde::Deserialize)]
struct CoordTask {
    task: u64,
    rounds: Vec<CoordRound>,
}

#[derive(serde::Deserialize)]
struct CoordRound {
    round: u32,
    accuracy: f64,
    loss: f64,
}

/// Accuracy and loss per round of `task`, as its coordinator reports them (empty if it cannot
/// be reached: the ledger's part of the watch goes on).
async fn scores(coordinator: Option<&str>, task: u64) -> Vec<(u32, f64, f64)> {
    let Some(url) = coordinator else {
        return Vec::new();
    };
    let status: CoordStatus = Client::new(url.to_string())
        .get("/v1/status")
        .await
        .unwrap_or_default();
    status
        .coordinator
        .unwrap_or_default()
        .tasks
        .into_iter()
        .filter(|t| t.task == task)
        .flat_map(|t| t.rounds)
        .map(|r| (r.round, r.accuracy, r.loss))
        .collect()
}

fn line(task: &Task, r: &deai_ledger::Round, scores: &[(u32, f64, f64)]) -> RoundLine {
    let spent: u64 = task
        .round_log
        .iter()
        .take_while(|x| x.number <= r.number)
        .map(|x| x.epsilon)
        .sum();
    let score = scores.iter().find(|s| s.0 == r.number);
    RoundLine {
        round: r.number,
        selected: r.selected.len(),
        survivors: r.outcome.as_ref().map_or(0, |o| o.survivors.len()),
        expired: r.expired_height.is_some(),
        epsilon_spent: spent,
        epsilon_spent_decimal: output::epsilon(spent),
        accuracy: score.map(|s| s.1),
        loss: score.map(|s| s.2),
    }
}

fn print_line(task: &Task, l: &RoundLine) {
    let acc = match (l.accuracy, l.loss) {
        (Some(a), Some(loss)) => format!("  accuracy {:.4}  loss {:.4}", a, loss),
        _ => String::new(),
    };
    let what = if l.expired {
        "expired without a result".to_string()
    } else {
        format!("{}/{} in the aggregate", l.survivors, l.selected)
    };
    output::write_stdout(format_args!(
        "round {:>3}/{}  {what}  ε {} of {}{acc}\n",
        l.round,
        task.rounds,
        l.epsilon_spent_decimal,
        output::epsilon(task.epsilon)
    ));
}

/// Runs `deai task watch`.
pub fn run(args: WatchArgs, node: &NodeArgs) -> anyhow::Result<()> {
    let client = node.client();
    let json = node.json;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_s);
    let id = args.id;
    let watched = block_on(async move {
        let mut shown = 0usize;
        let mut announced = false;
        loop {
            let task: Task = client.get(&format!("/v1/tasks/{id}")).await.map_err(|e| {
                anyhow::anyhow!("task {id}: {e}; list the tasks with `deai task list`")
            })?;
            if !json && !announced {
                output::write_stdout(format_args!(
                    "task {id}: {} rounds, {} datasets, ε budget {}; waiting for rounds...\n",
                    task.rounds,
                    task.datasets.len(),
                    output::epsilon(task.epsilon)
                ));
                announced = true;
            }
            let closed: Vec<&deai_ledger::Round> = task
                .round_log
                .iter()
                .filter(|r| r.outcome.is_some() || r.expired_height.is_some())
                .collect();
            if closed.len() > shown {
                let now = scores(args.coordinator.as_deref(), id).await;
                for r in &closed[shown..] {
                    // The coordinator records a round's score just after the ledger closes
                    // it; wait a moment for it rather than print a line without.
                    let mut l = line(&task, r, &now);
                    if l.accuracy.is_none() && args.coordinator.is_some() && !l.expired {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        l = line(&task, r, &scores(args.coordinator.as_deref(), id).await);
                    }
                    if !json {
                        print_line(&task, &l);
                    }
                }
                shown = closed.len();
            }
            // A settling task waits for its challenge window: rewards and model come after.
            if task.status.is_final() {
                let last = scores(args.coordinator.as_deref(), id).await;
                return anyhow::Ok(Watched {
                    task: id,
                    status: task.status.name().into(),
                    rounds: closed.iter().map(|r| line(&task, r, &last)).collect(),
                    model: task.final_model,
                    epsilon_spent: task.epsilon_spent,
                    epsilon_spent_decimal: output::epsilon(task.epsilon_spent),
                    epsilon_budget: task.epsilon,
                    epsilon_budget_decimal: output::epsilon(task.epsilon),
                });
            }
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "task {id} is still open after {} s ({} of {} rounds closed); watch again, or raise --timeout-s",
                    args.timeout_s,
                    shown,
                    task.rounds
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })??;
    output::emit(json, &watched, |w| match w.model {
        Some(m) => {
            println!(
                "task {} {}: model {m}, ε spent {} of {}",
                w.task, w.status, w.epsilon_spent_decimal, w.epsilon_budget_decimal
            );
            println!(
                "verify it:  deai verify task {} --node {}",
                w.task, node.node
            );
            println!("lineage:    deai lineage model {m} --node {}", node.node);
        }
        None => println!("task {} {}", w.task, w.status),
    })
}
