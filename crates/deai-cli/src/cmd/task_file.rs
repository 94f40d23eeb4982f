//! The task file `deai task create --spec` reads: a readable TOML description of a training task
//! (model, strategy, rounds, privacy, secure aggregation, validation set, reward), turned into the
//! canonical [`TaskSpec`] whose hash the ledger records. Every field left out takes the default
//! digits task's value; unknown fields are refused by name.

use std::path::{Path, PathBuf};

use deai_learn::data::Dataset;
use deai_ledger::{EPSILON_SCALE, TOKEN};
use deai_node::fed::{self, TaskSpec, schema};
use serde::Deserialize;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// Matched against datasets' consent policies.
    purpose: String,
    /// Tokens put in escrow, as a decimal (a string or a whole number).
    reward: Amount,
    /// The schema of the data (`deai schema list`).
    #[serde(default = "default_schema")]
    schema: String,
    /// Datasets the task may select; absent: every registered dataset of the schema whose
    /// consent admits the task.
    datasets: Option<Vec<u64>>,
    /// The coordinator node's API (default: `--coordinator`).
    coordinator: Option<String>,
    #[serde(default)]
    model: Model,
    #[serde(default)]
    training: Training,
    #[serde(default)]
    privacy: Privacy,
    #[serde(default)]
    secure_aggregation: SecureAggregation,
    validation: Validation,
}

fn default_schema() -> String {
    "digits-8x8".into()
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Amount {
    Whole(u64),
    Decimal(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Model {
    architecture: Option<String>,
    init_seed: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Training {
    rounds: Option<u32>,
    datasets_per_round: Option<u32>,
    local_epochs: Option<u32>,
    batch: Option<u32>,
    lr: Option<f32>,
    server_lr: Option<f32>,
    strategy: Option<String>,
    byzantine_groups: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Privacy {
    noise_multiplier: Option<f64>,
    clip_norm: Option<f32>,
    delta: Option<f64>,
    /// The ε budget; absent: what a dataset taking part in every round is charged.
    epsilon: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecureAggregation {
    group_size_min: Option<u32>,
    quant_level_bits: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Validation {
    /// A CSV of the schema, with `label_column`.
    csv: Option<PathBuf>,
    label_column: Option<String>,
    /// Or a dataset file (`deai dataset import`).
    file: Option<PathBuf>,
}

/// A task file, read and checked.
#[derive(Debug, Clone)]
pub struct TaskFile {
    /// The canonical spec (its hash goes on the ledger, its bytes to the coordinator).
    pub spec: TaskSpec,
    /// Purpose.
    pub purpose: String,
    /// Reward, base units.
    pub reward: u128,
    /// The ε budget, fixed point; `None`: what the schedule needs.
    pub epsilon: Option<u64>,
    /// The schema tag of the data.
    pub schema: &'static str,
    /// Datasets named, if any.
    pub datasets: Option<Vec<u64>>,
    /// The coordinator's API, if named.
    pub coordinator: Option<String>,
    /// The validation set (checked against the schema).
    pub validation: Dataset,
}

fn read_validation(
    v: &Validation,
    base: &Path,
    schema: &schema::Schema,
) -> anyhow::Result<Dataset> {
    let at = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    match (&v.csv, &v.file) {
        (Some(csv), None) => {
            let path = at(csv);
            let label = v.label_column.as_deref().ok_or_else(|| {
                anyhow::anyhow!("[validation] csv needs label_column (its header name or number)")
            })?;
            let bytes = std::fs::read(&path)
                .map_err(|e| anyhow::anyhow!("validation csv {}: {e}", path.display()))?;
            Ok(fed::import::from_csv(&bytes, schema, label)
                .map_err(|e| anyhow::anyhow!("validation csv {}: {e}", path.display()))?
                .data)
        }
        (None, Some(file)) => {
            let path = at(file);
            let bytes = std::fs::read(&path)
                .map_err(|e| anyhow::anyhow!("validation file {}: {e}", path.display()))?;
            let data = fed::data::decode(&bytes, &Default::default())
                .map_err(|e| anyhow::anyhow!("validation file {}: {e}", path.display()))?;
            schema
                .check(&data)
                .map_err(|e| anyhow::anyhow!("validation file {}: {e}", path.display()))?;
            Ok(data)
        }
        _ => anyhow::bail!("[validation] needs exactly one of csv (with label_column) or file"),
    }
}

impl TaskFile {
    /// Reads and checks the task file at `path` (relative paths inside it are relative to it).
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the task file {}: {e}", path.display()))?;
        Self::parse(&text, path.parent().unwrap_or(Path::new(".")))
            .map_err(|e| anyhow::anyhow!("task file {}: {e:#}", path.display()))
    }

    /// Parses task-file text; `base` is where its relative paths start.
    pub fn parse(text: &str, base: &Path) -> anyhow::Result<Self> {
        let f: File = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        let schema = schema::find(&f.schema)?;
        let mut spec = TaskSpec::digits_default();
        spec.dataset = schema.family.into();
        let m = f.model;
        let t = f.training;
        let p = f.privacy;
        let s = f.secure_aggregation;
        macro_rules! set {
            ($($field:ident <- $value:expr),* $(,)?) => {
                $(if let Some(v) = $value { spec.$field = v; })*
            };
        }
        set!(
            model <- m.architecture,
            init_seed <- m.init_seed,
            rounds <- t.rounds,
            datasets_per_round <- t.datasets_per_round,
            local_epochs <- t.local_epochs,
            batch <- t.batch,
            lr <- t.lr,
            server_lr <- t.server_lr,
            strategy <- t.strategy,
            byzantine_groups <- t.byzantine_groups,
            noise_multiplier <- p.noise_multiplier,
            clip_norm <- p.clip_norm,
            delta <- p.delta,
            group_size_min <- s.group_size_min,
            quant_level_bits <- s.quant_level_bits,
        );
        spec.validate()?;
        let reward = match f.reward {
            Amount::Whole(n) => u128::from(n) * TOKEN,
            Amount::Decimal(d) => {
                super::tx::parse_tokens(d.trim()).map_err(|e| anyhow::anyhow!("reward: {e}"))?
            }
        };
        let epsilon = p
            .epsilon
            .map(|e| {
                // A float's Display is its shortest exact decimal, never an exponent.
                super::tx::parse_fixed(&format!("{e}"), EPSILON_SCALE)
                    .map_err(|m| anyhow::anyhow!("[privacy] epsilon: {m}"))
            })
            .transpose()?;
        let needed = fed::privacy::schedule(&spec)?
            .last()
            .map_or(0, |step| step.epsilon);
        if let Some(e) = epsilon.filter(|&e| e < needed) {
            anyhow::bail!(
                "[privacy] epsilon {} is below {} (what a dataset taking part in all {} rounds at noise_multiplier {} is charged); raise it, lower rounds or raise noise_multiplier",
                e as f64 / EPSILON_SCALE as f64,
                needed as f64 / EPSILON_SCALE as f64,
                spec.rounds,
                spec.noise_multiplier
            );
        }
        let validation = read_validation(&f.validation, base, schema)?;
        Ok(Self {
            spec,
            purpose: f.purpose,
            reward,
            epsilon,
            schema: schema.name,
            datasets: f.datasets,
            coordinator: f.coordinator,
            validation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_validation(dir: &Path) {
        let s = schema::find("digits-8x8").expect("known");
        let split = fed::data::digits_split(4).expect("digits");
        std::fs::write(
            dir.join("val.csv"),
            fed::import::to_csv(&split.validation, s),
        )
        .expect("write");
    }

    #[test]
    fn a_short_file_is_the_default_task_with_its_overrides() {
        let dir = tempfile::tempdir().expect("tmp");
        write_validation(dir.path());
        let text = r#"
            purpose = "digit-recognition"
            reward = "12.5"
            [training]
            rounds = 3
            datasets_per_round = 4
            strategy = "fedadam"
            server_lr = 0.05
            [privacy]
            noise_multiplier = 1.1
            delta = 1e-5
            epsilon = 40
            [validation]
            csv = "val.csv"
            label_column = "label"
        "#;
        let t = TaskFile::parse(text, dir.path()).expect("parses");
        let mut expect = TaskSpec::digits_default();
        expect.rounds = 3;
        expect.datasets_per_round = 4;
        expect.strategy = "fedadam".into();
        expect.server_lr = 0.05;
        expect.noise_multiplier = 1.1;
        assert_eq!(t.spec, expect);
        assert_eq!(t.reward, 12 * TOKEN + TOKEN / 2);
        assert_eq!(t.epsilon, Some(40 * EPSILON_SCALE));
        assert_eq!(t.schema, "digits-8x8");
        assert_eq!(
            t.validation.len(),
            fed::data::digits_split(4).expect("d").validation.len()
        );
    }

    #[test]
    fn mistakes_are_named() {
        let dir = tempfile::tempdir().expect("tmp");
        write_validation(dir.path());
        let base = "purpose = \"p\"\nreward = 1\n";
        let val = "[validation]\ncsv = \"val.csv\"\nlabel_column = \"label\"\n";
        let err = |extra: &str| {
            TaskFile::parse(&format!("{base}{extra}{val}"), dir.path())
                .expect_err("refused")
                .to_string()
        };
        assert!(err("[training]\nround = 3\n").contains("round"));
        assert!(err("[training]\nrounds = 0\n").contains("rounds"));
        assert!(err("[privacy]\nepsilon = 0.5\n").contains("below"));
        assert!(err("schema = \"nope\"\n").contains("digits-8x8"));
        let no_label = TaskFile::parse(
            &format!("{base}[validation]\ncsv = \"val.csv\"\n"),
            dir.path(),
        )
        .expect_err("no label column");
        assert!(no_label.to_string().contains("label_column"), "{no_label}");
        assert_eq!(
            super::super::tx::parse_tokens("0.000000000000000001"),
            Ok(1)
        );
        assert_eq!(super::super::tx::parse_tokens("1e3"), Ok(1000 * TOKEN));
        assert!(
            super::super::tx::parse_tokens("1e-19").is_err(),
            "below a base unit"
        );
        assert!(super::super::tx::parse_tokens("-1").is_err());
    }
}
