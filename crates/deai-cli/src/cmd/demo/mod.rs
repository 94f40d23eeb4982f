//! `deai demo`: the main job. On one machine: a validator, a coordinator and ten data-owner
//! nodes on loopback (each its own HTTP server and key, signed messages between them). Owners
//! register commitments to their slices of the digits data with consent policies; a creator posts
//! a task with escrow and a DP budget; twenty rounds train a model with clipping, distributed
//! Gaussian noise and SecAgg+ (one owner revokes consent mid-task, one drops mid-round and is
//! recovered); the task closes and pays rewards by contribution scores; a node that took no part
//! re-verifies every round from the ledger and the blobs. The same training without DP noise runs
//! beside it, so the summary shows what privacy cost. After training the model is sold per query
//! (`market`), and the validators vote a stricter privacy cap that the next task opens under
//! (`governance`).

mod checks;
mod governance;
mod market;
mod scenario;

use std::time::Instant;

use deai_ledger::TOKEN;
use deai_node::{client::Client, config::NodeConfig, fed::TaskSpec};
use serde::Serialize;

use crate::local_network::LocalNetwork;

pub use scenario::{OwnerSummary, Setup};

/// Arguments of `deai demo`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  deai demo
  deai demo --validators 4 --keep
  deai demo --strategy fedadam --server-lr 0.05 --json")]
pub struct Args {
    /// Keep the nodes' data directories here instead of a temporary one.
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Validators. 1 runs one inside this process; more run a network of `deai node` processes
    /// on loopback (as `deai testnet init` makes it), owners spread over its entry points.
    #[arg(long, default_value_t = 1)]
    pub validators: usize,
    /// Data owners. Up to 20 each run their own node; more are hosted 100 to a node, each
    /// still its own key, dataset, consent and reward account.
    #[arg(long, default_value_t = 10)]
    pub owners: usize,
    /// The owners' data: `digits` (8x8, 1,438 training images) or `fashion-mnist` (28x28,
    /// 60,000; from Debian's dataset-fashion-mnist, which scripts/install-deps.sh installs).
    #[arg(long, default_value = "digits")]
    pub dataset: String,
    /// Owners selected per round [default: 8 on digits; on fashion-mnist a tenth of the
    /// owners, at least 8].
    #[arg(long)]
    pub per_round: Option<u32>,
    /// Smallest secure-aggregation (and scoring) group [default: 4 on digits; on fashion-mnist
    /// all of a round's owners in one group]. Smaller groups score owners more finely and let
    /// robust rules see more sums, at the price of more noise for the same ε.
    #[arg(long)]
    pub group_size: Option<u32>,
    /// Training rounds [default: 20 on digits, 30 on fashion-mnist].
    #[arg(long)]
    pub rounds: Option<u32>,
    /// Noise multiplier σ (the noise on every released sum has std ≥ σ·C) [default: 0.3 on
    /// digits, 3.5 on fashion-mnist: ε ≤ 8 over 30 rounds even for an owner in every one].
    #[arg(long)]
    pub noise_multiplier: Option<f64>,
    /// The coordinator's aggregation rule over the groups' sums: any `deai simulate
    /// --strategy` rule except qfedavg (e.g. fedadam, median, krum+momentum), or
    /// `screened-RULE` to leave out first every group whose own step raises the validation
    /// loss (docs/robustness.md) [default: fedavg].
    #[arg(long)]
    pub strategy: Option<String>,
    /// Server step: the optimisers' η (fedadam, fedyogi, fedadagrad, fedavgm), else the step
    /// toward the rule's model (1 = all the way)
    #[arg(long, default_value_t = 1.0)]
    pub server_lr: f32,
    /// Make a fifth of the owners (owners 1, 2, ...) attack the model from inside the protocol:
    /// label-flip, sign-flip, scaling, gaussian, alie, ipm, free-rider, colluding or
    /// cancel-weight (each alone;
    /// docs/robustness.md measures them all). The checks still pass: attackers follow the wire
    /// protocol, so only the accuracy and the rewards show them.
    #[arg(long, value_name = "ATTACK")]
    pub attack: Option<String>,
    /// Make the coordinator lie about the model of this round: an owner challenges it, every
    /// validator re-checks the claim and votes on its own, and the coordinator's bond is
    /// slashed (docs/ledger.md, "Coordinator accountability"). 0: an honest coordinator.
    #[arg(long, value_name = "ROUND", default_value_t = 0)]
    pub coordinator_lies_in: u32,
    /// Leave the validators running after the summary, until Ctrl-C, so the commands it
    /// suggests (`deai lineage model`, `deai verify task`, `deai task show`) work against them.
    #[arg(long)]
    pub keep: bool,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

/// One round, as the summary shows it.
#[derive(Debug, Serialize)]
pub struct RoundLine {
    /// Round number.
    pub round: u32,
    /// Selected datasets.
    pub selected: Vec<u64>,
    /// Datasets in the aggregate.
    pub survivors: Vec<u64>,
    /// Validation accuracy after the round.
    pub accuracy: f64,
    /// The same round without DP noise.
    pub accuracy_without_dp: Option<f64>,
    /// The task's ε spent after it, fixed point at `EPSILON_SCALE` (as the ledger's).
    pub epsilon_spent: u64,
    /// The same as an exact decimal.
    pub epsilon_spent_decimal: String,
    /// Whether a dropped owner's masks were recovered.
    pub dropout_recovered: bool,
    /// Wall time (ms).
    pub ms: f64,
}

/// What the demo reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Rounds completed.
    pub rounds: u32,
    /// Owners.
    pub owners: usize,
    /// Their data family (`digits` or `fashion-mnist`).
    pub dataset: String,
    /// Owners selected per round.
    pub selected_per_round: u32,
    /// Smallest secure-aggregation group.
    pub group_size_min: u32,
    /// The task.
    pub task_id: u64,
    /// The registered model.
    pub model_id: u64,
    /// Validation accuracy before training.
    pub initial_accuracy: f64,
    /// Validation accuracy of the final model.
    pub final_accuracy: f64,
    /// The same training without DP noise (in one process).
    pub final_accuracy_without_dp: Option<f64>,
    /// ε the ledger charged (tight RDP accounting, client-level, δ below), fixed point at
    /// `EPSILON_SCALE` as the ledger's `epsilon_spent`.
    pub epsilon_spent: u64,
    /// The same as an exact decimal.
    pub epsilon_spent_decimal: String,
    /// The task's ε budget, fixed point (the ledger's `epsilon`).
    pub epsilon_budget: u64,
    /// The same as an exact decimal.
    pub epsilon_budget_decimal: String,
    /// δ charged, fixed point at `DELTA_SCALE` (the ledger's `delta_spent`).
    pub delta_spent: u64,
    /// The same as an exact decimal.
    pub delta_spent_decimal: String,
    /// Noise multiplier σ.
    pub noise_multiplier: f64,
    /// Rewards per owner.
    pub rewards: Vec<OwnerSummary>,
    /// Refunded to the creator, base units.
    #[serde(with = "deai_ledger::amount")]
    pub refund: u128,
    /// The same in tokens, an exact decimal.
    pub refund_decimal: String,
    /// The owner that revoked consent, and its dataset.
    pub revoked_owner: usize,
    /// The first round opened after the revocation (its dataset absent from it and every later).
    pub revoked_owner_excluded_from_round: Option<u32>,
    /// With `--attack`: the attack a fifth of the owners ran (which ones: `rewards[].attack`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
    /// With `--coordinator-lies-in`: the challenge of the lie, as the validators decided it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<scenario::ChallengeSummary>,
    /// The coordinator's aggregation rule.
    pub strategy: String,
    /// The owner that dropped mid-round.
    pub dropped_owner: usize,
    /// Rounds in which it went offline mid-round (after sharing its keys).
    pub dropped_in_rounds: Vec<u32>,
    /// Rounds that completed by recovering a dropped owner's masks.
    pub dropout_recovered_rounds: Vec<u32>,
    /// Blobs of the task (models, masked updates, unmasking records) published to the validator.
    pub blobs_published: usize,
    /// Whether the independent re-verification passed.
    pub verify_ok: bool,
    /// Rounds it found wrong (empty when `verify_ok`).
    pub verify_failed_rounds: Vec<u32>,
    /// What the re-verification found wrong, in words (empty when `verify_ok`).
    pub verify_mismatches: Vec<String>,
    /// Whether a dataset's inclusion proof verified against a finalized root.
    pub proof_ok: bool,
    /// Whether replaying the chain from genesis reproduced every state root.
    pub ledger_verify_ok: bool,
    /// Finalized height at the end.
    pub height: u64,
    /// Validators the chain ran on.
    pub validators: usize,
    /// With more than one validator: a height all of them had finalized at the end, where their
    /// state roots agreed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validators_agreed_at: Option<u64>,
    /// Per round.
    pub per_round: Vec<RoundLine>,
    /// The trained model quantized: its test accuracy with the integer engine.
    pub quantized_accuracy: f64,
    /// Paid queries an agent bought from the model's two offers.
    pub queries: u64,
    /// What they cost, base units.
    #[serde(with = "deai_ledger::amount")]
    pub paid: u128,
    /// Royalties each data owner received from the claimed payments.
    pub royalties: Vec<market::RoyaltyLine>,
    /// Disputes the agent sent.
    pub disputes: usize,
    /// Whether the cheating provider lost its bond.
    pub cheater_slashed: bool,
    /// The market phase in full.
    pub market: market::Market,
    /// The governance step: the validators' vote on a stricter privacy cap and the task that
    /// opened under it.
    pub governance: governance::Governance,
    /// Whole run, seconds.
    pub wall_s: f64,
    /// With `--keep`: a validator's API, up until Ctrl-C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// The demo's task. On digits: logistic regression, 8 owners a round in groups of four. On
/// Fashion-MNIST: logistic regression on a tenth of the owners a round (at least 8) in one
/// secure-aggregation group, σ = 3.5 with clip 0.5 (30 rounds then cost any owner at most
/// ε = 8, δ = 10⁻⁵, even one selected in every round): one large group carries the least noise
/// for that ε (docs/federation.md measures the group size's price).
pub fn demo_spec(args: &Args) -> TaskSpec {
    let mut spec = TaskSpec::digits_default();
    if args.dataset == "fashion-mnist" {
        spec.dataset = args.dataset.clone();
        spec.rounds = 30;
        spec.datasets_per_round = u32::try_from(args.owners / 10).unwrap_or(u32::MAX).max(8);
        spec.group_size_min = spec.datasets_per_round;
        spec.noise_multiplier = 3.5;
        spec.clip_norm = 0.5;
        spec.lr = 0.1;
    } else {
        spec.dataset.clone_from(&args.dataset);
    }
    if let Some(r) = args.rounds {
        spec.rounds = r;
    }
    if let Some(n) = args.per_round {
        spec.datasets_per_round = n;
        if args.dataset == "fashion-mnist" {
            spec.group_size_min = n;
        }
    }
    if let Some(g) = args.group_size {
        spec.group_size_min = g;
    }
    if let Some(s) = args.noise_multiplier {
        spec.noise_multiplier = s;
    }
    if let Some(s) = &args.strategy {
        spec.strategy.clone_from(s);
    }
    spec.server_lr = args.server_lr;
    spec
}

/// The largest transaction a federation of `owners` sends: a `TaskCreate` naming every dataset
/// (8 bytes each), a `RoundResult` with a survivor id, a masked-update hash and a score for each
/// selected one (56 bytes), with room for the rest.
fn tx_bytes_for(owners: u32, per_round: u32) -> u32 {
    owners
        .saturating_mul(16)
        .max(per_round.saturating_mul(64))
        .saturating_add(2048)
}

/// Runs `deai demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    anyhow::ensure!(
        args.owners >= 6,
        "--owners {} is too few: the demo needs 6 or more (one revokes, one drops, and a round \
         selects eight or fewer)",
        args.owners
    );
    let spec = demo_spec(&args);
    spec.validate()?;
    let rounds = spec.rounds;
    let setup = Setup {
        owners: args.owners,
        spec: spec.clone(),
        revoke_round: (rounds * 2 / 5).max(2),
        drop_round: (rounds * 3 / 5).max(2),
        reward_tokens: 1_000,
        attack: args
            .attack
            .as_ref()
            .map(|name| {
                deai_node::fed::attack::OwnerAttack::from_name(name).map(|a| (name.clone(), a))
            })
            .transpose()?,
        lie_round: args.coordinator_lies_in,
    };
    anyhow::ensure!(
        args.coordinator_lies_in <= rounds,
        "--coordinator-lies-in {} names no round of {}; give 1..={} (or 0 for an honest coordinator)",
        args.coordinator_lies_in,
        rounds,
        rounds
    );
    anyhow::ensure!(
        (1..=deai_node::testnet::VALIDATORS_MAX).contains(&args.validators),
        "--validators must be between 1 and {}",
        deai_node::testnet::VALIDATORS_MAX
    );
    let owners = u32::try_from(args.owners)?;
    let tmp = tempfile::tempdir()?;
    let root = args.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let mut balances = vec![
        (
            deai_node::keyfile::address(&scenario::creator_key()),
            1_000_000 * TOKEN,
        ),
        (
            deai_node::keyfile::address(&market::buyer_key()),
            1_000 * TOKEN,
        ),
    ];
    for i in 0..2 {
        balances.push((
            deai_node::keyfile::address(&market::provider_key(i)),
            1_000 * TOKEN,
        ));
    }
    for i in 0..args.owners {
        balances.push((
            deai_node::keyfile::address(&scenario::owner_key(i)),
            1_000 * TOKEN,
        ));
    }
    let bar = crate::progress::bar(args.json, u64::from(rounds) + 4, "federated rounds");
    let baseline_setup = setup.clone();
    let baseline = std::thread::spawn(move || scenario::without_dp(&baseline_setup));
    // The summary, printed while the network is still up (`--keep` waits after it).
    let finish = |ran: Ran, url: &str| -> anyhow::Result<Report> {
        bar.finish_and_clear();
        let without_dp = baseline
            .join()
            .map_err(|_| anyhow::anyhow!("the no-DP reference run panicked"))?
            .ok();
        let mut report = report(&args, &spec, ran, without_dp, started);
        report.node = args.keep.then(|| url.to_string());
        crate::output::emit(args.json, &report, print)?;
        Ok(report)
    };
    let report = if args.validators == 1 {
        let dir = root.join("validator");
        deai_node::init::init_with(&dir, NodeConfig::default(), |g| {
            // The validator keeps what pays its challenge votes; the dev account gives way.
            let validators: Vec<_> = g.validators.iter().map(|(v, _)| *v).collect();
            g.balances.retain(|(a, _)| validators.contains(a));
            g.balances.extend(balances);
            governance::adjust(&mut g.params);
            g.params.task_datasets_max = g.params.task_datasets_max.max(owners);
            g.params.tx_bytes_max = g
                .params
                .tx_bytes_max
                .max(tx_bytes_for(owners, spec.datasets_per_round));
        })?;
        let (progress, roles_dir) = (bar.clone(), root.clone());
        let voters = vec![deai_node::keyfile::read(
            &dir.join(deai_node::config::NODE_KEY_FILE),
        )?];
        deai_node::run::with_embedded(&dir, |node| async move {
            let url = format!("http://{}", node.http_addr);
            let ran = federate(
                std::slice::from_ref(&url),
                &roles_dir,
                &setup,
                &voters,
                &progress,
            )
            .await?;
            let report = finish(ran, &url)?;
            if args.keep {
                keep_until_interrupted().await;
            }
            Ok(report)
        })?
    } else {
        let mut net = LocalNetwork::start(
            &root.join("network"),
            args.validators,
            |g| {
                g.balances.extend(balances.iter().cloned());
                governance::adjust(&mut g.params);
                g.params.task_datasets_max = g.params.task_datasets_max.max(owners);
                g.params.tx_bytes_max = g
                    .params
                    .tx_bytes_max
                    .max(tx_bytes_for(owners, spec.datasets_per_round));
            },
            |_| {},
        )?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let voters = (0..args.validators)
            .map(|i| {
                deai_node::keyfile::read(
                    &root
                        .join("network")
                        .join(format!("node{i}"))
                        .join(deai_node::config::NODE_KEY_FILE),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let report = rt.block_on(async {
            let mut ran = federate(&net.urls, &root, &setup, &voters, &bar).await?;
            ran.agreed_at = Some(net.agreed_height().await?);
            let report = finish(ran, &net.urls[0])?;
            if args.keep {
                keep_until_interrupted().await;
            }
            anyhow::Ok(report)
        });
        net.stop();
        report?
    };
    anyhow::ensure!(
        report.verify_ok && report.proof_ok && report.ledger_verify_ok,
        "the demo's checks failed: verify {} (rounds {:?}: {}), proof {}, ledger replay {}",
        report.verify_ok,
        report.verify_failed_rounds,
        report.verify_mismatches.join("; "),
        report.proof_ok,
        report.ledger_verify_ok
    );
    Ok(())
}

/// Waits for Ctrl-C (or SIGTERM), saying so on stderr.
async fn keep_until_interrupted() {
    crate::output::write_stderr(format_args!("the network stays up; Ctrl-C stops it\n"));
    let _ = tokio::signal::ctrl_c().await;
}

/// What the federation and the checks after it found.
struct Ran {
    outcome: scenario::Outcome,
    market: market::Market,
    governance: governance::Governance,
    proof_ok: bool,
    ledger_verify_ok: bool,
    height: u64,
    agreed_at: Option<u64>,
}

/// Runs the federation on the validators at `urls`, then checks a dataset's inclusion proof and
/// replays the chain from genesis against the last of them (one neither the creator nor the
/// coordinator used).
async fn federate(
    urls: &[String],
    roles_dir: &std::path::Path,
    setup: &Setup,
    voters: &[ed25519_dalek::SigningKey],
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Ran> {
    let outcome = scenario::run(urls, roles_dir, setup, |r| {
        bar.set_message(format!(
            "acc {:.3} ε {}",
            r.accuracy, r.epsilon_spent_decimal
        ));
        bar.inc(1);
    })
    .await?;
    let market = market::run(
        &urls[0],
        roles_dir,
        outcome.close.model,
        &setup.spec,
        &outcome.owners,
        // The agent asks for a useful model unless the owners attacked it or the noise of a
        // small federation ruined it (the report says so; docs/federation.md tabulates it).
        setup.attack.is_none() && outcome.rounds.last().is_some_and(|r| r.accuracy >= 0.6),
    )
    .await?;
    bar.inc(1);
    let datasets: Vec<u64> = outcome
        .owners
        .iter()
        .map(|o| o.dataset)
        .filter(|d| *d != outcome.revoked.1)
        .collect();
    let governance = governance::run(
        &urls[0],
        scenario::creator_key(),
        voters,
        &setup.spec,
        &datasets,
        outcome.epsilon_spent,
    )
    .await?;
    bar.inc(1);
    let client = Client::new(urls.last().cloned().unwrap_or_default());
    let proof_ok = checks::prove_dataset(&client, outcome.revoked.1).await?;
    bar.inc(1);
    let audit = deai_node::audit::chain::verify_chain(&client, |_, _| {}).await?;
    bar.inc(1);
    let height = client.status().await?.height;
    Ok(Ran {
        outcome,
        market,
        governance,
        proof_ok,
        ledger_verify_ok: audit.ok,
        height,
        agreed_at: None,
    })
}

fn report(
    args: &Args,
    spec: &TaskSpec,
    ran: Ran,
    without_dp: Option<Vec<f64>>,
    started: Instant,
) -> Report {
    let Ran {
        outcome: o,
        market,
        governance,
        proof_ok,
        ledger_verify_ok,
        height,
        agreed_at,
    } = ran;
    let per_round: Vec<RoundLine> = o
        .rounds
        .iter()
        .map(|r| RoundLine {
            round: r.round,
            selected: r.selected.clone(),
            survivors: r.survivors.clone(),
            accuracy: r.accuracy,
            accuracy_without_dp: without_dp
                .as_ref()
                .and_then(|b| b.get(r.round as usize - 1).copied()),
            epsilon_spent: r.epsilon_spent,
            epsilon_spent_decimal: r.epsilon_spent_decimal.clone(),
            dropout_recovered: r.dropout_recovered,
            ms: r.ms,
        })
        .collect();
    let revoke_round = (spec.rounds * 2 / 5).max(2);
    let refund = o.close.refund.parse::<u128>().unwrap_or(0);
    Report {
        rounds: o.rounds.len() as u32,
        owners: args.owners,
        dataset: spec.dataset.clone(),
        selected_per_round: spec.datasets_per_round,
        group_size_min: spec.group_size_min,
        task_id: o.task,
        model_id: o.close.model,
        initial_accuracy: o.initial_accuracy,
        final_accuracy: o.rounds.last().map_or(0.0, |r| r.accuracy),
        // At the same round: a task whose owners ran out stops early, the reference does not.
        final_accuracy_without_dp: without_dp
            .as_ref()
            .and_then(|b| b.get(o.rounds.len().checked_sub(1)?).copied()),
        epsilon_spent: o.epsilon_spent,
        epsilon_spent_decimal: crate::output::epsilon(o.epsilon_spent),
        epsilon_budget: o.epsilon_budget,
        epsilon_budget_decimal: crate::output::epsilon(o.epsilon_budget),
        delta_spent: o.delta_spent,
        delta_spent_decimal: crate::output::decimal(
            u128::from(o.delta_spent),
            u128::from(deai_ledger::DELTA_SCALE),
        ),
        noise_multiplier: spec.noise_multiplier,
        rewards: o.owners,
        refund,
        refund_decimal: crate::output::tokens(refund),
        revoked_owner: o.revoked.0,
        revoked_owner_excluded_from_round: o.revoked_never_selected_again.then_some(revoke_round),
        attack: args.attack.clone(),
        challenge: o.challenge.clone(),
        strategy: spec.strategy.clone(),
        dropped_owner: o.dropped.0,
        dropped_in_rounds: o.drop_rounds.clone(),
        blobs_published: o.blobs_published,
        dropout_recovered_rounds: o
            .rounds
            .iter()
            .filter(|r| r.dropout_recovered)
            .map(|r| r.round)
            .collect(),
        verify_ok: o.verify.ok,
        verify_failed_rounds: o.verify.failed_rounds.clone(),
        verify_mismatches: o
            .verify
            .rounds
            .iter()
            .flat_map(|r| {
                r.mismatches
                    .iter()
                    .map(move |m| format!("round {}: {m}", r.round))
            })
            .chain(o.verify.task_mismatches.iter().cloned())
            .collect(),
        proof_ok,
        ledger_verify_ok,
        height,
        validators: args.validators,
        validators_agreed_at: agreed_at,
        per_round,
        quantized_accuracy: market.quantized_accuracy,
        queries: market.queries,
        paid: market.paid,
        royalties: market.royalties.clone(),
        disputes: market.disputes,
        cheater_slashed: market.cheater_slashed,
        market,
        governance,
        wall_s: started.elapsed().as_secs_f64(),
        node: None,
    }
}

/// ε for a person's eyes (rounded where printed; the JSON carries it exactly).
fn eps(fixed: u64) -> f64 {
    fixed as f64 / deai_ledger::EPSILON_SCALE as f64
}

/// Tokens for a person's eyes (rounded where printed; the JSON carries base units exactly).
fn tokens(base_units: u128) -> f64 {
    base_units as f64 / TOKEN as f64
}

fn print(r: &Report) {
    println!(
        "deai demo: {} data owners trained a model on {} for task {} in {} rounds ({:.1} s); {} a \
         round in secure-aggregation groups of at least {}",
        r.owners, r.dataset, r.task_id, r.rounds, r.wall_s, r.selected_per_round, r.group_size_min
    );
    println!(
        "  privacy: ε = {:.2} spent of {:.2}, the most any owner can spend even if selected in \
         every round (δ = {:.1e}, σ = {}, client-level, RDP); every update clipped, noised and \
         securely aggregated",
        eps(r.epsilon_spent),
        eps(r.epsilon_budget),
        r.delta_spent as f64 / deai_ledger::DELTA_SCALE as f64,
        r.noise_multiplier
    );
    if eps(r.epsilon_spent) > 10.0 {
        println!(
            "  (an ε this large protects little: few owners, most of them in every round; \
             docs/federation.md tabulates ε against accuracy for 10, 100 and 1,000 owners)"
        );
    }
    println!(
        "  accuracy: {:.3} before training → {:.3} with DP{}",
        r.initial_accuracy,
        r.final_accuracy,
        r.final_accuracy_without_dp
            .map(|b| format!(" (without DP: {b:.3})"))
            .unwrap_or_default()
    );
    if let Some(a) = &r.attack {
        let who: Vec<usize> = r
            .rewards
            .iter()
            .filter(|o| o.attack.is_some())
            .map(|o| o.owner)
            .collect();
        println!(
            "  attack: owners {who:?} ran {a} from inside the protocol (strategy {}); every check \
             below still passes, only accuracy and rewards show it (docs/robustness.md)",
            r.strategy
        );
    }
    if let Some(c) = &r.challenge {
        println!(
            "  coordinator lied about round {}'s model: owner {} challenged it; {} of {} validator \
             votes upheld it in {:.1} s (each re-checked on its own); bond {} tokens slashed, {} to \
             the challenger, {} into the escrow; the round earned nothing",
            c.round,
            c.challenger_owner,
            c.votes_upheld,
            c.votes,
            c.seconds,
            crate::output::tokens(c.slashed),
            crate::output::tokens(c.reward),
            crate::output::tokens(c.to_escrow),
        );
    }
    let many = r.owners > scenario::OWN_NODES_MAX;
    println!("  round  accuracy  (no DP)  ε total  in aggregate");
    for l in &r.per_round {
        println!(
            "  {:>5}  {:>8.3}  {:>7}  {:>7.2}  {}{}",
            l.round,
            l.accuracy,
            l.accuracy_without_dp
                .map(|a| format!("{a:.3}"))
                .unwrap_or_else(|| "-".into()),
            eps(l.epsilon_spent),
            if many {
                format!("{} owners", l.survivors.len())
            } else {
                format!("{:?}", l.survivors)
            },
            if r.challenge.as_ref().is_some_and(|c| c.round == l.round) {
                "  ← the coordinator lied: invalidated, earned nothing"
            } else if l.dropout_recovered {
                "  ← a dropout recovered"
            } else {
                ""
            }
        );
    }
    match r.revoked_owner_excluded_from_round {
        Some(n) => println!(
            "  owner {} revoked consent before round {n}: its dataset was never selected again",
            r.revoked_owner
        ),
        None => println!(
            "  owner {} revoked consent, but its dataset was selected afterwards (BUG)",
            r.revoked_owner
        ),
    }
    println!(
        "  owner {} dropped mid-round; recovered in rounds {:?}",
        r.dropped_owner, r.dropout_recovered_rounds
    );
    println!("  rewards (from contribution scores):");
    if many {
        let mut paid: Vec<u128> = r.rewards.iter().map(|o| o.reward).collect();
        paid.sort_unstable();
        let at = |q: usize| tokens(paid[(paid.len() - 1) * q / 100]);
        println!(
            "    {} owners: min {:.2}, median {:.2}, max {:.2} tokens; {} earned nothing \
             (`--json` lists each)",
            paid.len(),
            at(0),
            at(50),
            at(100),
            paid.iter().filter(|&&p| p == 0).count()
        );
    }
    for o in r.rewards.iter().filter(|_| !many) {
        println!(
            "    owner {:>2} (dataset {:>2}, {:>3} samples, {:>2} rounds): {:>8.2} tokens{}",
            o.owner,
            o.dataset,
            o.samples,
            o.rounds_in_aggregate,
            tokens(o.reward),
            o.attack
                .as_ref()
                .map(|a| format!("  ← attacked ({a})"))
                .unwrap_or_default()
        );
    }
    println!("    refund to the creator: {:.2} tokens", tokens(r.refund));
    match &r.node {
        Some(url) => println!(
            "  model {} registered; `deai lineage model {} --node {url}` shows its tree",
            r.model_id, r.model_id
        ),
        None => println!(
            "  model {} registered (run the demo with --keep to query it afterwards: `deai lineage model {}`)",
            r.model_id, r.model_id
        ),
    }
    let m = &r.market;
    println!(
        "  served: quantized to integers ({} bytes, {} operations a query, hash {}), test accuracy {:.3} (float {:.3})",
        m.blob_bytes,
        m.ops,
        crate::output::short(&m.quant_hash.to_string()),
        m.quantized_accuracy,
        m.float_accuracy
    );
    println!(
        "    offers {} (honest) and {} (cheaper, wrong on every tenth answer); an agent bought {} \
         queries for {} base units, re-executed {} answers, kept {} of {} ({:.3} correct)",
        m.offers[0],
        m.offers[1],
        r.queries,
        r.paid,
        m.checked,
        m.answered,
        m.inputs,
        m.answered_accuracy
    );
    for d in &m.agent.disputes {
        println!(
            "    dispute of offer {} (receipt {} of channel {}): {}",
            d.offer,
            d.sequence,
            d.channel,
            if d.upheld {
                format!(
                    "upheld: bond slashed, {} to the agent, {} burned, offer suspended",
                    crate::output::amount(d.reward),
                    crate::output::amount(d.burned)
                )
            } else {
                "rejected".into()
            }
        );
    }
    println!(
        "    the honest provider claimed {} base units on its own; royalties to the owners: {}",
        m.honest_claimed,
        r.royalties
            .iter()
            .filter(|l| l.amount > 0)
            .map(|l| format!("owner {} {}", l.owner, l.amount))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let g = &r.governance;
    println!(
        "  governance: proposal {} set {} from ε {} to ε {} ({} validator(s) voted yes with {} of \
         {} staked; executed at height {}); a task asking for more was refused, task {} opened \
         under the cap",
        g.proposal,
        g.parameter,
        g.old_epsilon_max,
        g.new_epsilon_max,
        g.voters,
        crate::output::amount(g.yes),
        crate::output::amount(g.power),
        g.executed_height,
        g.next_task
    );
    println!(
        "  verify task (a node that took no part): {}",
        if r.verify_ok {
            "OK, every round re-summed, re-aggregated and re-scored".to_string()
        } else {
            format!("FAILED in rounds {:?}", r.verify_failed_rounds)
        }
    );
    println!(
        "  ledger: proof {}, replay from genesis {} (height {})",
        if r.proof_ok { "valid" } else { "INVALID" },
        if r.ledger_verify_ok { "OK" } else { "FAILED" },
        r.height
    );
    if let Some(h) = r.validators_agreed_at {
        println!(
            "  validators: {} processes, every owner on its own entry point; all report the same \
             state root at height {h}",
            r.validators
        );
    }
}
