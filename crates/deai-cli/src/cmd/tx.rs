//! `deai tx <kind>`: one subcommand per ledger transaction; each signs with a key file, submits to a
//! node and waits for finality. The `dataset`, `task` and `model` groups reuse these builders.

use clap::Subcommand;
use deai_ledger::{
    Address, ConsentPolicy, DELTA_SCALE, Digest, EPSILON_SCALE, METRIC_SCALE, Metric, NOISE_SCALE,
    TxBody,
    tx::{
        ChallengeVote, ConsentRevoke, ConsentUpdate, DatasetRegister, Delegate, ModelRegister,
        RoundChallenge, RoundExpire, Stake, TaskCancel, TaskCreate, Transfer, Undelegate, Unstake,
    },
};

use super::common::{NodeArgs, SignArgs, block_on, report_sent, send};

/// Arguments of `deai tx`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The transaction.
    #[command(subcommand)]
    pub kind: Kind,
    /// Signing and fee.
    #[command(flatten)]
    pub sign: SignArgs,
    /// The node.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// One subcommand per transaction.
#[derive(Debug, Subcommand)]
pub enum Kind {
    /// Move tokens to another account.
    #[command(after_help = "Example:
  deai tx transfer --to ADDR --amount 1000000000000000000000 --key .deai/dev.key")]
    Transfer(TransferArgs),
    /// Bond tokens as stake.
    #[command(after_help = "Example:
  deai tx stake --amount 200000000000000000000 --key op.key")]
    Stake(AmountArgs),
    /// Start unbonding stake (released after the unbonding delay).
    #[command(after_help = "Example:
  deai tx unstake --amount 200000000000000000000 --key op.key")]
    Unstake(AmountArgs),
    /// Bond tokens to a validator without running a node: they add to its stake for set choice
    /// and to its voting weight (unless you vote yourself), and earn a share of its emissions.
    #[command(after_help = "Example:
  deai tx delegate --validator ADDR --amount 100000000000000000000 --key .deai/dev.key")]
    Delegate(DelegateArgs),
    /// Start unbonding a delegation (released after the unbonding delay).
    #[command(after_help = "Example:
  deai tx undelegate --validator ADDR --amount 100000000000000000000 --key .deai/dev.key")]
    Undelegate(DelegateArgs),
    /// Register a dataset commitment with its consent policy.
    #[command(after_help = "Example:
  deai tx dataset-register --file mine.ds --purpose digit-recognition --epsilon-max 8 \\
      --expiry-height 1000000 --key .deai/dev.key")]
    DatasetRegister(DatasetRegisterArgs),
    /// Replace a dataset's consent policy (owner only).
    #[command(after_help = "Example:
  deai tx consent-update --dataset 1 --purpose digit-recognition --epsilon-max 4 \\
      --expiry-height 2000000 --key .deai/dev.key")]
    ConsentUpdate(ConsentUpdateArgs),
    /// Revoke all consent for a dataset (owner only).
    #[command(after_help = "Example:
  deai tx consent-revoke --dataset 1 --key .deai/dev.key")]
    ConsentRevoke(DatasetIdArgs),
    /// Create a training task, moving its reward into escrow.
    #[command(after_help = "Example:
  deai tx task-create --purpose digit-recognition --model-spec HASH --dataset 1 --dataset 2 \\
      --rounds 20 --noise-multiplier 1.1 --delta 0.00001 --reward 1000000000000000000000 \\
      --key creator.key")]
    TaskCreate(TaskCreateArgs),
    /// Cancel a task and refund its unspent escrow (creator only).
    #[command(after_help = "Example:
  deai tx task-cancel --task 1 --key creator.key")]
    TaskCancel(TaskIdArgs),
    /// Register a trained model with its lineage and metrics.
    #[command(after_help = "Example:
  deai tx model-register --model-hash HASH --task 1 --metric accuracy=0.93 --key coord/node.key")]
    ModelRegister(ModelRegisterArgs),
    /// Close a round that passed its deadline without a result as failed (any sender).
    #[command(after_help = "Example:
  deai tx round-expire --task 1 --round 3 --key .deai/dev.key")]
    RoundExpire(RoundExpireArgs),
    /// Challenge one claim of a round's result, locking `challenge_deposit` (any sender):
    /// validators re-check it and vote; upheld slashes the coordinator's bond.
    #[command(after_help = "Examples:
  deai tx round-challenge --task 1 --round 3 --claim group-sum:0 --key me.key
  deai tx round-challenge --task 1 --round 3 --claim model --key me.key
  deai tx round-challenge --task 1 --round 3 --claim score:2 --key me.key")]
    RoundChallenge(RoundChallengeArgs),
    /// Vote on a pending round challenge (a validator of the epoch it was filed in).
    #[command(after_help = "Example:
  deai tx challenge-vote --task 1 --challenge 1 --upheld true --key validator/node.key")]
    ChallengeVote(ChallengeVoteArgs),
}

/// `round-challenge`.
#[derive(Debug, Clone, clap::Args)]
pub struct RoundChallengeArgs {
    /// The task.
    #[arg(long)]
    pub task: u64,
    /// The completed round.
    #[arg(long)]
    pub round: u32,
    /// What is wrong: `group-sum:G`, `aggregate`, `model` or `score:G` (G = the group's index in
    /// the round's plan, from 0).
    #[arg(long, value_parser = parse_claim)]
    pub claim: deai_ledger::Claim,
}

/// `challenge-vote`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChallengeVoteArgs {
    /// The task.
    #[arg(long)]
    pub task: u64,
    /// The challenge's number within the task (from 1).
    #[arg(long)]
    pub challenge: u32,
    /// Whether the claim is wrong (or its blobs cannot be fetched).
    #[arg(long, action = clap::ArgAction::Set)]
    pub upheld: bool,
}

/// `group-sum:G`, `aggregate`, `model` or `score:G`.
fn parse_claim(s: &str) -> Result<deai_ledger::Claim, String> {
    use deai_ledger::Claim;
    let group = |g: &str| {
        g.parse::<u32>()
            .map_err(|_| format!("{s}: the group after ':' must be a number, e.g. group-sum:0"))
    };
    match s.split_once(':') {
        None if s == "aggregate" => Ok(Claim::Aggregate),
        None if s == "model" => Ok(Claim::Model),
        Some(("group-sum", g)) => Ok(Claim::GroupSum { group: group(g)? }),
        Some(("score", g)) => Ok(Claim::Score { group: group(g)? }),
        _ => Err(format!(
            "{s}: expected group-sum:G, aggregate, model or score:G"
        )),
    }
}

/// `transfer`.
#[derive(Debug, Clone, clap::Args)]
pub struct TransferArgs {
    /// Recipient address (hex).
    #[arg(long, value_parser = parse_address)]
    pub to: Address,
    /// Amount, base units.
    #[arg(long)]
    pub amount: u128,
}

/// A delegation: to whom, how much.
#[derive(Debug, Clone, clap::Args)]
pub struct DelegateArgs {
    /// The validator's account address (hex; `deai validator list` shows them).
    #[arg(long, value_parser = parse_address)]
    pub validator: Address,
    /// Amount, base units.
    #[arg(long)]
    pub amount: u128,
}

/// An amount.
#[derive(Debug, Clone, clap::Args)]
pub struct AmountArgs {
    /// Amount, base units.
    #[arg(long)]
    pub amount: u128,
}

/// A consent policy. `--purpose`, `--epsilon-max` and `--expiry-height` are required, checked by
/// [`Self::policy`] rather than by clap so that `dataset import` can take the same flags only
/// with `--register`.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// An allowed purpose (repeat for several); required.
    #[arg(long = "purpose")]
    pub purposes: Vec<String>,
    /// An allowed task creator (repeat for several; none: any creator).
    #[arg(long = "creator", value_parser = parse_address)]
    pub creators: Vec<Address>,
    /// Smallest task reward accepted, base units.
    #[arg(long, default_value_t = 0)]
    pub reward_min: u128,
    /// Largest ε (DP budget) accepted, decimal (e.g. 8 or 2.5); required.
    #[arg(long, value_parser = parse_epsilon)]
    pub epsilon_max: Option<u64>,
    /// Height after which the consent lapses; required.
    #[arg(long)]
    pub expiry_height: Option<u64>,
    /// Largest ε one round may spend on the dataset, decimal (the ledger enforces it; none: no
    /// per-round cap).
    #[arg(long, value_parser = parse_epsilon)]
    pub epsilon_round_max: Option<u64>,
    /// Smallest DP noise multiplier σ accepted, decimal, e.g. 1.1 (the owner's node enforces it
    /// against the task spec; none: no floor).
    #[arg(long, value_parser = parse_sigma)]
    pub sigma_min: Option<u64>,
}

impl PolicyArgs {
    /// Whether any policy flag was given.
    pub fn given(&self) -> bool {
        !self.purposes.is_empty()
            || !self.creators.is_empty()
            || self.reward_min != 0
            || self.epsilon_max.is_some()
            || self.expiry_height.is_some()
            || self.epsilon_round_max.is_some()
            || self.sigma_min.is_some()
    }

    /// The ledger's form, or which required flags are missing.
    pub fn policy(&self) -> anyhow::Result<ConsentPolicy> {
        let missing: Vec<&str> = [
            ("--purpose", self.purposes.is_empty()),
            ("--epsilon-max", self.epsilon_max.is_none()),
            ("--expiry-height", self.expiry_height.is_none()),
        ]
        .into_iter()
        .filter_map(|(flag, absent)| absent.then_some(flag))
        .collect();
        if !missing.is_empty() {
            anyhow::bail!(
                "a consent policy needs {} (e.g. --purpose digit-recognition --epsilon-max 8 --expiry-height 1000000)",
                missing.join(", ")
            );
        }
        Ok(ConsentPolicy {
            purposes: self.purposes.clone(),
            creators: (!self.creators.is_empty()).then(|| self.creators.clone()),
            reward_min: self.reward_min,
            epsilon_max: self.epsilon_max.unwrap_or_default(),
            expiry_height: self.expiry_height.unwrap_or_default(),
            epsilon_round_max: self.epsilon_round_max.unwrap_or(0),
            noise_multiplier_min: self.sigma_min.unwrap_or(0),
            royalty_bps_min: 0,
        })
    }
}

/// `dataset-register`.
#[derive(Debug, Clone, clap::Args)]
pub struct DatasetRegisterArgs {
    /// BLAKE3 commitment of the data (hex); or use --file.
    #[arg(long, value_parser = parse_digest, required_unless_present = "file")]
    pub commitment: Option<Digest>,
    /// Commit to this file's contents, salted (the file never leaves this machine): the salt is
    /// read from `FILE.salt`, or drawn from the OS RNG and written there first. Keep it with the
    /// data: the owner node needs it to match the ledger's commitment.
    #[arg(long, conflicts_with = "commitment")]
    pub file: Option<std::path::PathBuf>,
    /// Number of samples (with --file: read from the file, and checked if given).
    #[arg(long, required_unless_present = "file")]
    pub samples: Option<u64>,
    /// Schema tag (`deai schema list`); with --file the file must parse as it.
    #[arg(long, default_value = "digits-8x8")]
    pub schema: String,
    /// The consent policy.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// `consent-update`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsentUpdateArgs {
    /// The dataset id.
    #[arg(long)]
    pub dataset: u64,
    /// The new consent policy.
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// A dataset id.
#[derive(Debug, Clone, clap::Args)]
pub struct DatasetIdArgs {
    /// The dataset id.
    #[arg(long)]
    pub dataset: u64,
}

/// `task-create`.
#[derive(Debug, Clone, clap::Args)]
pub struct TaskCreateArgs {
    /// The purpose, matched against datasets' consent policies.
    #[arg(long)]
    pub purpose: String,
    /// Hash of the model specification (hex).
    #[arg(long, value_parser = parse_digest)]
    pub model_spec: Digest,
    /// A dataset the task may train on (repeat for several).
    #[arg(long = "dataset")]
    pub datasets: Vec<u64>,
    /// Training rounds.
    #[arg(long)]
    pub rounds: u32,
    /// The spec's noise multiplier σ: the task's ε schedule (what each dataset is charged per
    /// round it takes part in) is computed from it, the rounds and δ.
    #[arg(long)]
    pub noise_multiplier: f64,
    /// DP budget ε, decimal (default: what a dataset taking part in every round is charged).
    #[arg(long, value_parser = parse_epsilon)]
    pub epsilon: Option<u64>,
    /// DP budget δ, decimal (e.g. 0.00001 or 1e-5).
    #[arg(long, value_parser = parse_delta)]
    pub delta: u64,
    /// Reward moved into escrow, base units.
    #[arg(long)]
    pub reward: u128,
}

/// A task id.
#[derive(Debug, Clone, clap::Args)]
pub struct TaskIdArgs {
    /// The task id.
    #[arg(long)]
    pub task: u64,
}

/// `model-register`.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelRegisterArgs {
    /// BLAKE3 hash of the model's weights (hex).
    #[arg(long, value_parser = parse_digest)]
    pub model_hash: Digest,
    /// The task it came from.
    #[arg(long)]
    pub task: u64,
    /// The model it was trained from.
    #[arg(long)]
    pub parent: Option<u64>,
    /// A metric as `name=value` with a decimal value (repeat for several), e.g. `accuracy=0.93`.
    #[arg(long = "metric", value_parser = parse_metric)]
    pub metrics: Vec<Metric>,
}

/// `round-expire`.
#[derive(Debug, Clone, clap::Args)]
pub struct RoundExpireArgs {
    /// The task.
    #[arg(long)]
    pub task: u64,
    /// The open round past its deadline.
    #[arg(long)]
    pub round: u32,
}

/// The task with its ε schedule computed from σ, δ and the rounds (the schedule an owner's
/// node recomputes from the spec and refuses to train under if it is lower).
fn task_create(a: &TaskCreateArgs) -> anyhow::Result<TaskCreate> {
    if !(a.noise_multiplier.is_finite() && a.noise_multiplier > 0.0) {
        anyhow::bail!(
            "--noise-multiplier {} must be a positive number (the spec's σ)",
            a.noise_multiplier
        );
    }
    let delta = a.delta as f64 / DELTA_SCALE as f64;
    let schedule = deai_node::fed::privacy::schedule_for(a.noise_multiplier, delta, a.rounds)
        .map_err(|e| anyhow::anyhow!("ε schedule: {e}"))?;
    let needed = schedule.last().map_or(0, |s| s.epsilon);
    let epsilon = a.epsilon.unwrap_or(needed);
    if epsilon < needed {
        anyhow::bail!(
            "--epsilon {} is below {} (what a dataset taking part in all {} rounds at σ = {} is charged); raise it, lower --rounds or raise --noise-multiplier",
            epsilon as f64 / EPSILON_SCALE as f64,
            needed as f64 / EPSILON_SCALE as f64,
            a.rounds,
            a.noise_multiplier
        );
    }
    Ok(TaskCreate {
        purpose: a.purpose.clone(),
        model_spec: a.model_spec,
        datasets: a.datasets.clone(),
        rounds: a.rounds,
        epsilon,
        epsilon_schedule: schedule,
        delta: a.delta,
        reward: a.reward,
    })
}

impl Kind {
    /// The transaction body and a short name for reports.
    pub fn body(&self) -> anyhow::Result<(&'static str, TxBody)> {
        Ok(match self {
            Self::Transfer(a) => (
                "transfer",
                TxBody::Transfer(Transfer {
                    to: a.to,
                    amount: a.amount,
                }),
            ),
            Self::Stake(a) => ("stake", TxBody::Stake(Stake { amount: a.amount })),
            Self::Unstake(a) => ("unstake", TxBody::Unstake(Unstake { amount: a.amount })),
            Self::Delegate(a) => (
                "delegate",
                TxBody::Delegate(Delegate {
                    validator: a.validator,
                    amount: a.amount,
                }),
            ),
            Self::Undelegate(a) => (
                "undelegate",
                TxBody::Undelegate(Undelegate {
                    validator: a.validator,
                    amount: a.amount,
                }),
            ),
            Self::DatasetRegister(a) => (
                "dataset register",
                TxBody::DatasetRegister(dataset_register(a)?),
            ),
            Self::ConsentUpdate(a) => (
                "consent update",
                TxBody::ConsentUpdate(ConsentUpdate {
                    dataset: a.dataset,
                    policy: a.policy.policy()?,
                }),
            ),
            Self::ConsentRevoke(a) => (
                "consent revoke",
                TxBody::ConsentRevoke(ConsentRevoke { dataset: a.dataset }),
            ),
            Self::TaskCreate(a) => ("task create", TxBody::TaskCreate(task_create(a)?)),
            Self::TaskCancel(a) => (
                "task cancel",
                TxBody::TaskCancel(TaskCancel { task: a.task }),
            ),
            Self::ModelRegister(a) => (
                "model register",
                TxBody::ModelRegister(ModelRegister {
                    model_hash: a.model_hash,
                    task: a.task,
                    parent: a.parent,
                    metrics: a.metrics.clone(),
                }),
            ),
            Self::RoundExpire(a) => (
                "round expire",
                TxBody::RoundExpire(RoundExpire {
                    task: a.task,
                    round: a.round,
                }),
            ),
            Self::RoundChallenge(a) => (
                "round challenge",
                TxBody::RoundChallenge(RoundChallenge {
                    task: a.task,
                    round: a.round,
                    claim: a.claim,
                }),
            ),
            Self::ChallengeVote(a) => (
                "challenge vote",
                TxBody::ChallengeVote(ChallengeVote {
                    task: a.task,
                    challenge: a.challenge,
                    upheld: a.upheld,
                }),
            ),
        })
    }
}

/// The commitment salt of the dataset file at `path`: the one in `path.salt`, or a fresh one
/// written there (synced) before anything is sent, so a registered commitment always has its
/// salt on disk.
fn file_salt(path: &std::path::Path) -> anyhow::Result<Digest> {
    use deai_node::roles::serve::{read_salt_file, salt_path};
    if let Some(salt) = read_salt_file(path)? {
        return Ok(salt);
    }
    let salt = deai_node::roles::setup::fresh_salt();
    let out = salt_path(path);
    let write = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&out)?;
        f.write_all(format!("{salt}\n").as_bytes())?;
        f.sync_all()
    };
    write().map_err(|e| anyhow::anyhow!("cannot write the salt file {}: {e}", out.display()))?;
    eprintln!(
        "commitment salt written to {} (keep it with the data)",
        out.display()
    );
    Ok(salt)
}

/// The dataset file at `path`, decoded and checked against `schema`: what an owner node would
/// load, so nothing is registered that no node could train on.
fn read_dataset_file(
    path: &std::path::Path,
    schema: &deai_node::fed::schema::Schema,
) -> anyhow::Result<(Vec<u8>, deai_learn::data::Dataset)> {
    let bytes =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let data = deai_node::fed::data::decode(&bytes, &Default::default()).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a dataset file ({e}); make one from a CSV with `deai dataset import`",
            path.display()
        )
    })?;
    schema
        .check(&data)
        .map_err(|e| anyhow::anyhow!("{} does not fit its schema: {e}", path.display()))?;
    Ok((bytes, data))
}

fn dataset_register(a: &DatasetRegisterArgs) -> anyhow::Result<DatasetRegister> {
    let schema = deai_node::fed::schema::find(&a.schema)?;
    let (commitment, samples) = match (&a.commitment, &a.file) {
        (Some(c), _) => (
            *c,
            a.samples
                .ok_or_else(|| anyhow::anyhow!("--commitment needs --samples"))?,
        ),
        (None, Some(path)) => {
            let (bytes, data) = read_dataset_file(path, schema)?;
            let n = data.len() as u64;
            if let Some(given) = a.samples.filter(|&s| s != n) {
                anyhow::bail!("--samples {given}, but {} holds {n}", path.display());
            }
            let salt = file_salt(path)?;
            (
                deai_ledger::dataset_commitment(&salt, &Digest::hash(&bytes)),
                n,
            )
        }
        (None, None) => anyhow::bail!("give --commitment or --file"),
    };
    Ok(DatasetRegister {
        commitment,
        samples,
        schema: schema.name.to_string(),
        policy: a.policy.policy()?,
    })
}

/// Signs and sends one transaction kind; used by `deai tx` and the `dataset`/`task`/`model` groups.
pub fn send_kind(kind: &Kind, sign: &SignArgs, node: &NodeArgs) -> anyhow::Result<()> {
    // Before the body: registering from a file writes its salt file first.
    if let Kind::DatasetRegister(DatasetRegisterArgs { policy, .. })
    | Kind::ConsentUpdate(ConsentUpdateArgs { policy, .. }) = kind
        && let Some(expiry) = policy.expiry_height
    {
        check_expiry(expiry, node)?;
    }
    let (what, body) = kind.body()?;
    let sent = block_on(send(node, sign, body))??;
    report_sent(node.json, what, &sent)
}

/// Refuses a consent whose expiry height the chain has already reached: the ledger would take it,
/// and it would admit no task from the start.
pub fn check_expiry(expiry_height: u64, node: &NodeArgs) -> anyhow::Result<()> {
    let height = block_on(node.client().status())??.height;
    if expiry_height <= height {
        anyhow::bail!(
            "--expiry-height {expiry_height} has passed (the chain is at height {height}): consent would lapse at once; give a later height"
        );
    }
    Ok(())
}

/// Runs `deai tx`.
pub fn run(args: Args) -> anyhow::Result<()> {
    send_kind(&args.kind, &args.sign, &args.node)
}

/// Parses a 64-hex-character address.
pub fn parse_address(s: &str) -> Result<Address, String> {
    s.parse::<Address>()
        .map_err(|e| format!("not an address (64 hex characters): {e}"))
}

fn parse_digest(s: &str) -> Result<Digest, String> {
    s.parse::<Digest>()
        .map_err(|e| format!("not a 32-byte hash (64 hex characters): {e}"))
}

/// Parses a non-negative decimal such as `2.5` into an integer scaled by `scale` (a power of ten),
/// exactly: no float on the way, and more decimals than the scale holds is an error.
pub fn parse_fixed(s: &str, scale: u64) -> Result<u64, String> {
    let v = parse_decimal(s, u128::from(scale))?;
    u64::try_from(v).map_err(|_| format!("{s:?} is too large"))
}

/// Parses a decimal number of tokens into base units, exactly (`"12.5"`, `"0.000000000000000001"`).
pub fn parse_tokens(s: &str) -> Result<u128, String> {
    parse_decimal(s, deai_ledger::TOKEN)
}

/// `mantissa` with its decimal point moved `exp` places right, as (integer digits, fraction
/// digits): `("1", "", -5)` is `("0", "00001")`.
fn shift_point(int: &str, frac: &str, exp: i32) -> (String, String) {
    let all = format!("{int}{frac}");
    let point = int.len() as i64 + i64::from(exp);
    if point <= 0 {
        let zeros = "0".repeat(point.unsigned_abs() as usize);
        return ("0".into(), format!("{zeros}{all}"));
    }
    let point = point as usize;
    if point >= all.len() {
        return (
            format!("{all}{}", "0".repeat(point - all.len())),
            String::new(),
        );
    }
    (all[..point].to_string(), all[point..].to_string())
}

fn parse_decimal(s: &str, scale: u128) -> Result<u128, String> {
    let digits = scale.ilog10() as usize;
    let not_a_number = || format!("{s:?} is not a non-negative decimal number");
    // Scientific notation (`1e-5`, `2.5E3`) is the same number written shorter: the point moves.
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        None => (s, 0),
        Some((m, e)) => {
            let exp: i32 = e.parse().map_err(|_| not_a_number())?;
            if exp.unsigned_abs() > 60 {
                return Err(format!("{s:?} is out of range"));
            }
            (m, exp)
        }
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() && frac.is_empty() || !all_digits(int) || !all_digits(frac) {
        return Err(not_a_number());
    }
    let (int, frac) = shift_point(int, frac, exp);
    let frac = frac.trim_end_matches('0');
    let (int, frac) = (int.as_str(), frac);
    if frac.len() > digits {
        return Err(format!("{s:?} has more than {digits} decimals"));
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| format!("{s:?} is too large"))?
    };
    let frac_val: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| format!("{s:?} is malformed"))?
    };
    let frac_scaled = frac_val * 10u128.pow((digits - frac.len()) as u32);
    int.checked_mul(scale)
        .and_then(|v| v.checked_add(frac_scaled))
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn parse_epsilon(s: &str) -> Result<u64, String> {
    parse_fixed(s, EPSILON_SCALE)
}

fn parse_sigma(s: &str) -> Result<u64, String> {
    parse_fixed(s, NOISE_SCALE)
}

fn parse_delta(s: &str) -> Result<u64, String> {
    parse_fixed(s, DELTA_SCALE)
}

fn parse_metric(s: &str) -> Result<Metric, String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} must be name=value"))?;
    let (neg, digits) = value
        .strip_prefix('-')
        .map_or((false, value), |v| (true, v));
    let v = parse_fixed(digits, METRIC_SCALE as u64)?;
    let v = i64::try_from(v).map_err(|_| format!("{s:?}: value too large"))?;
    Ok(Metric {
        name: name.to_string(),
        value: if neg { -v } else { v },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_commitment_is_salted_and_its_salt_kept_beside_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("data.bin");
        std::fs::write(&file, b"some dataset bytes").expect("writes");
        let first = file_salt(&file).expect("draws a salt");
        let salt_file = deai_node::roles::serve::salt_path(&file);
        assert!(
            salt_file.exists(),
            "the salt is on disk before anything is sent"
        );
        assert_eq!(file_salt(&file).expect("reads it back"), first);
        let content = Digest::hash(b"some dataset bytes");
        let salted = deai_ledger::dataset_commitment(&first, &content);
        assert_ne!(
            salted, content,
            "a guess of the file cannot be checked without the salt"
        );
        // The owner node computes the same commitment from the same files.
        let loaded = deai_node::roles::serve::read_salt_file(&file).expect("reads");
        assert_eq!(loaded, Some(first));
        std::fs::write(&salt_file, "not hex").expect("writes");
        assert!(
            file_salt(&file).is_err(),
            "a damaged salt file is an error, not a new salt"
        );
    }

    #[test]
    fn claims_parse_by_name_and_group() {
        use deai_ledger::Claim;
        assert_eq!(parse_claim("group-sum:2"), Ok(Claim::GroupSum { group: 2 }));
        assert_eq!(parse_claim("score:0"), Ok(Claim::Score { group: 0 }));
        assert_eq!(parse_claim("aggregate"), Ok(Claim::Aggregate));
        assert_eq!(parse_claim("model"), Ok(Claim::Model));
        for bad in ["group-sum", "score:x", "model:1", "sum:1", ""] {
            assert!(parse_claim(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fixed_point_parsing_is_exact() {
        assert_eq!(parse_fixed("2.5", 1_000_000), Ok(2_500_000));
        assert_eq!(parse_fixed("0.000001", 1_000_000), Ok(1));
        assert_eq!(parse_fixed("8", 1_000_000), Ok(8_000_000));
        assert_eq!(parse_fixed(".5", 1_000_000), Ok(500_000));
        assert!(parse_fixed("0.0000001", 1_000_000).is_err());
        assert!(parse_fixed("-1", 1_000_000).is_err());
        assert_eq!(parse_fixed("1e-5", 1_000_000_000_000), Ok(10_000_000));
        assert_eq!(parse_fixed("2.5E3", 1_000_000), Ok(2_500_000_000));
        assert_eq!(parse_fixed("1e-6", 1_000_000), Ok(1));
        assert!(
            parse_fixed("1e-7", 1_000_000).is_err(),
            "finer than the scale"
        );
        assert!(parse_fixed("1e", 1_000_000).is_err());
        assert!(parse_fixed("e5", 1_000_000).is_err());
        assert!(parse_fixed("1e999", 1_000_000).is_err());
        assert_eq!(
            parse_fixed("0.50", 1),
            Err("\"0.50\" has more than 0 decimals".into())
        );
        assert!(parse_fixed("", 1_000_000).is_err());
        assert!(parse_fixed("99999999999999999999", 1_000_000).is_err());
    }

    #[test]
    fn policy_flags_take_human_units() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            policy: PolicyArgs,
        }
        let base = ["deai", "--purpose", "health", "--epsilon-max", "8"];
        let cli = Cli::parse_from(base.iter().chain(&["--expiry-height", "9"]));
        let p = cli.policy.policy().expect("complete");
        assert_eq!((p.epsilon_round_max, p.noise_multiplier_min), (0, 0));
        let flags = [
            "--expiry-height",
            "9",
            "--epsilon-round-max",
            "0.5",
            "--sigma-min",
            "1.1",
        ];
        let p = Cli::parse_from(base.iter().chain(&flags))
            .policy
            .policy()
            .expect("complete");
        let partial = Cli::parse_from(base).policy.policy();
        assert!(
            partial
                .expect_err("no expiry")
                .to_string()
                .contains("--expiry-height")
        );
        assert_eq!(p.epsilon_round_max, 500_000);
        assert_eq!(p.noise_multiplier_min, 1_100_000);
    }

    #[test]
    fn metrics_parse_with_sign() {
        let m = parse_metric("loss=-0.25").expect("parse");
        assert_eq!((m.name.as_str(), m.value), ("loss", -250_000));
        assert!(parse_metric("accuracy").is_err());
    }
}
