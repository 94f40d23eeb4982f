//! `deai task create --spec FILE`: a training task from a task file, set up end to end. It picks
//! the datasets whose consent admits the task (unless the file names them), creates the task with
//! its reward in escrow, commits to the validation set, names the coordinator on the ledger when
//! it is not the creator, and hands the coordinator the spec and validation set. A task whose
//! hand-over fails is cancelled again (its escrow refunded), so a failed create leaves nothing
//! open.

use std::path::PathBuf;

use deai_ledger::{Address, TaskTerms, TxBody, tx::TaskSetCoordinator};
use deai_node::{
    client::Client,
    roles::{self, RoleContext, setup},
};
use serde::Serialize;

use super::{
    common::{NodeArgs, SignArgs, block_on},
    task_file::TaskFile,
};
use crate::output;

/// Arguments of `deai task create`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai task create --spec task.toml --coordinator http://127.0.0.1:7660 --key creator.key
The task file is described in docs/tasks.md; every field left out takes the default digits task's value.")]
pub struct CreateArgs {
    /// The task file (TOML): purpose, reward, model, training, privacy, secure aggregation,
    /// validation set.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    /// The coordinator node's API (default: the task file's `coordinator`).
    #[arg(long, value_name = "URL")]
    pub coordinator: Option<String>,
    /// Signing (the creator's key pays the reward into escrow).
    #[command(flatten)]
    pub sign: SignArgs,
}

/// What `deai task create` did.
#[derive(Debug, Serialize)]
pub struct Created {
    /// The new task's id.
    pub task: u64,
    /// Its creator.
    pub creator: String,
    /// The coordinator's address and API.
    pub coordinator: String,
    /// Its API.
    pub coordinator_url: String,
    /// Datasets the task may select.
    pub datasets: Vec<u64>,
    /// Rounds.
    pub rounds: u32,
    /// The ε budget, fixed point at `EPSILON_SCALE` (the task's `epsilon`).
    pub epsilon: u64,
    /// The same as an exact decimal.
    pub epsilon_decimal: String,
    /// The reward in escrow, base units (exact).
    pub reward: String,
    /// The same in tokens, an exact decimal.
    pub reward_decimal: String,
    /// BLAKE3 of the canonical spec (the ledger's `model_spec`).
    pub model_spec: String,
}

#[derive(serde::Deserialize)]
struct NodeInfo {
    key: String,
    roles: Vec<String>,
}

/// The datasets of `schema` whose consent admits a task with `terms` at `height`.
fn admitted(
    all: &[deai_ledger::Dataset],
    schema: &str,
    terms: &TaskTerms<'_>,
    height: u64,
) -> Vec<u64> {
    all.iter()
        .filter(|d| d.schema == schema && !d.revoked)
        .filter(|d| d.policy.admits(d.id, terms, height).is_ok())
        .map(|d| d.id)
        .collect()
}

fn say(json: bool, what: std::fmt::Arguments<'_>) {
    if !json {
        output::write_stderr(format_args!("{what}\n"));
    }
}

/// Runs `deai task create`.
pub fn run(args: CreateArgs, node: &NodeArgs) -> anyhow::Result<()> {
    let file = TaskFile::read(&args.spec)?;
    let coordinator_url = args
        .coordinator
        .clone()
        .or_else(|| file.coordinator.clone())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no coordinator: give --coordinator URL (a node made with `deai init --role coordinator`), or coordinator = \"URL\" in {}",
                args.spec.display()
            )
        })?;
    let key = deai_node::keyfile::read(args.sign.key_file()?)?;
    let json = node.json;
    let client = node.client();
    let created = block_on(async move {
        let creator = RoleContext::connect(key, client.clone()).await?;
        let me = creator.address();
        // The coordinator first: nothing is created for a node that is not one.
        let info: NodeInfo = Client::new(coordinator_url.clone())
            .get("/v1/node")
            .await
            .map_err(|e| anyhow::anyhow!("coordinator {coordinator_url}: {e}"))?;
        if !info.roles.iter().any(|r| r == "coordinator") {
            anyhow::bail!(
                "{coordinator_url} is not a coordinator (its roles: {}); start one with `deai init --role coordinator` and `deai node`",
                if info.roles.is_empty() {
                    "none".to_string()
                } else {
                    info.roles.join(", ")
                }
            );
        }
        let coordinator: Address = info
            .key
            .parse()
            .map_err(|e| anyhow::anyhow!("coordinator {coordinator_url} has a bad key: {e}"))?;

        let schedule = deai_node::fed::privacy::schedule(&file.spec)?;
        let budget = file
            .epsilon
            .unwrap_or_else(|| schedule.last().map_or(0, |s| s.epsilon));
        let datasets = match &file.datasets {
            Some(d) => d.clone(),
            None => {
                let all: Vec<deai_ledger::Dataset> = client.get("/v1/datasets").await?;
                let height = client.status().await?.height;
                let terms = TaskTerms {
                    creator: &me,
                    purpose: &file.purpose,
                    reward: file.reward,
                    epsilon: budget,
                };
                // The task lands in a later block: a consent that lapses next block is left out.
                admitted(&all, file.schema, &terms, height + 2)
            }
        };
        let needed = file.spec.group_size_min as usize;
        if datasets.len() < needed {
            anyhow::bail!(
                "only {} dataset(s) of schema {} admit this task (purpose {:?}, reward {} tokens, ε {}): a round needs at least group_size_min = {needed}; list them with `deai dataset list`",
                datasets.len(),
                file.schema,
                file.purpose,
                output::tokens(file.reward),
                output::epsilon(budget)
            );
        }
        say(
            json,
            format_args!("creating the task over {} datasets...", datasets.len()),
        );
        let salt = setup::fresh_salt();
        let terms = setup::TaskTerms {
            purpose: &file.purpose,
            spec: &file.spec,
            datasets: datasets.clone(),
            epsilon: Some(budget),
            reward: file.reward,
        };
        let task = setup::create_task(&creator, terms, &file.validation, salt).await?;
        let handover = async {
            if coordinator != me {
                say(
                    json,
                    format_args!(
                        "naming {} its coordinator...",
                        output::short(&coordinator.to_string())
                    ),
                );
                roles::send_tx(
                    &creator,
                    TxBody::TaskSetCoordinator(TaskSetCoordinator { task, coordinator }),
                )
                .await?;
            }
            say(
                json,
                format_args!("handing the spec and validation set to {coordinator_url}..."),
            );
            setup::assign(
                &creator,
                &coordinator_url,
                task,
                &file.spec,
                &file.validation,
                salt,
            )
            .await
        };
        if let Err(e) = handover.await {
            let undone = setup::take_back(&creator, task).await;
            anyhow::bail!(
                "task {task} was created but the coordinator did not take it: {e:#}; {undone}"
            );
        }
        anyhow::Ok(Created {
            task,
            creator: me.to_string(),
            coordinator: coordinator.to_string(),
            coordinator_url,
            datasets,
            rounds: file.spec.rounds,
            epsilon: budget,
            epsilon_decimal: output::epsilon(budget),
            reward: file.reward.to_string(),
            reward_decimal: output::tokens(file.reward),
            model_spec: file.spec.hash().to_string(),
        })
    })??;
    output::emit(json, &created, |c| {
        println!("created task {}", c.task);
        println!(
            "  datasets     {}",
            c.datasets
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("  rounds       {}", c.rounds);
        println!("  ε budget     {}", c.epsilon_decimal);
        println!("  reward       {} tokens in escrow", c.reward_decimal);
        println!(
            "  coordinator  {} at {}",
            output::short(&c.coordinator),
            c.coordinator_url
        );
        println!(
            "follow it:     deai task watch {} --node {} --coordinator {}",
            c.task, node.node, c.coordinator_url
        );
    })
}
