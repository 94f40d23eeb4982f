//! `deai dataset import`: a CSV of one's own data into the node's dataset format, checked against
//! its schema, with its commitment salt beside it; registered on the ledger and added to an owner
//! node's config in the same step when asked.

use std::path::{Path, PathBuf};

use deai_node::{
    config::{DatasetFile, NODE_KEY_FILE, NodeConfig},
    fed::{self, schema},
    roles::{self, RoleContext},
};
use serde::Serialize;

use super::{
    common::{NodeArgs, SignArgs, block_on},
    tx::PolicyArgs,
};

/// Arguments of `deai dataset import`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai dataset import --csv mine.csv --label-column label --dir .deai-owner \\
      --register --purpose digit-recognition --epsilon-max 50 --expiry-height 1000000")]
pub struct ImportArgs {
    /// The CSV: one sample per row, numbers only, with or without a header row.
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// The label column: its header name, or its number (1 is the first column).
    #[arg(long, value_name = "NAME|N")]
    pub label_column: String,
    /// The schema the data follows (`deai schema list`).
    #[arg(long, default_value = "digits-8x8")]
    pub schema: String,
    /// An owner node's data directory: the dataset file goes into DIR/datasets/, registration is
    /// signed with DIR's node key, and the registered dataset is added to DIR/config.toml (a
    /// running owner node picks it up within seconds and announces it to its coordinators).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Where to write the dataset file (default: DIR/datasets/NAME.ds with --dir, else beside the
    /// CSV with the extension .ds). Refused if it exists.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Register a commitment to it on the ledger under the consent policy given by the flags
    /// below (the data never leaves this machine).
    #[arg(long)]
    pub register: bool,
    /// The consent policy (with --register).
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Signing (with --register; default with --dir: DIR's node key).
    #[command(flatten)]
    pub sign: SignArgs,
}

/// What an import did.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The CSV read.
    pub csv: String,
    /// Its schema.
    pub schema: String,
    /// Samples read.
    pub samples: usize,
    /// Samples per label, label `i` at index `i`.
    pub label_counts: Vec<u64>,
    /// Whether the first row was a header.
    pub header: bool,
    /// The dataset file written.
    pub file: String,
    /// Its commitment salt's file (keep it with the data).
    pub salt_file: String,
    /// The salted commitment registered (or to register), hex.
    pub commitment: String,
    /// The ledger id, when registered.
    pub dataset: Option<u64>,
    /// The registering transaction and its height.
    pub tx: Option<String>,
    /// Its height.
    pub height: Option<u64>,
    /// The owner config that now lists it, when `--dir` was given and it was registered.
    pub config: Option<String>,
}

fn default_out(args: &ImportArgs) -> PathBuf {
    let stem = args
        .csv
        .file_stem()
        .map_or_else(|| "data".into(), |s| s.to_string_lossy().into_owned());
    match &args.dir {
        Some(dir) => dir.join("datasets").join(format!("{stem}.ds")),
        None => args.csv.with_extension("ds"),
    }
}

/// Writes `bytes` to a new file `path` (never over an existing one), synced.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", parent.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                "{} exists; choose another --out, or remove it (and its .salt) first",
                path.display()
            ),
            _ => anyhow::anyhow!("cannot create {}: {e}", path.display()),
        })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// Runs `deai dataset import`.
pub fn run(args: ImportArgs, node: &NodeArgs) -> anyhow::Result<()> {
    let schema = schema::find(&args.schema)?;
    let text = std::fs::read(&args.csv)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.csv.display()))?;
    let imported = fed::import::from_csv(&text, schema, &args.label_column)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.csv.display()))?;
    let key_file = match (&args.sign.key, &args.dir) {
        (Some(k), _) => Some(k.clone()),
        (None, Some(dir)) => Some(dir.join(NODE_KEY_FILE)),
        (None, None) => None,
    };
    let policy = match (args.register, args.policy.given()) {
        (true, _) => Some(args.policy.policy()?),
        (false, true) => anyhow::bail!(
            "consent flags without --register: add --register to register the dataset, or drop them"
        ),
        (false, false) => None,
    };
    // Everything that can be refused without writing is checked first: a refused import leaves
    // no file behind.
    let config = match (&args.dir, policy.is_some()) {
        (Some(dir), true) => Some(NodeConfig::load(dir).map_err(|e| {
            anyhow::anyhow!(
                "--dir {}: {e}; make an owner node there first with `deai init --role owner`",
                dir.display()
            )
        })?),
        _ => None,
    };
    let signer = match (&policy, &key_file) {
        (Some(_), Some(k)) => Some(deai_node::keyfile::read(k)?),
        (Some(_), None) => {
            anyhow::bail!("--register signs with a key: give --key FILE or --dir DIR")
        }
        (None, _) => None,
    };
    if let Some(p) = &policy {
        super::tx::check_expiry(p.expiry_height, node)?;
    }

    let out = args.out.clone().unwrap_or_else(|| default_out(&args));
    let bytes = fed::data::encode(&imported.data);
    write_new(&out, &bytes)?;
    let salt = roles::setup::fresh_salt();
    let salt_file = roles::serve::salt_path(&out);
    if let Err(e) = write_new(&salt_file, format!("{salt}\n").as_bytes()) {
        let _ = std::fs::remove_file(&out);
        return Err(e);
    }
    let commitment = roles::setup::salted_commitment(&salt, &imported.data);
    let mut report = Report {
        csv: args.csv.display().to_string(),
        schema: schema.name.to_string(),
        samples: imported.data.len(),
        label_counts: schema.label_counts(&imported.data),
        header: imported.header,
        file: out.display().to_string(),
        salt_file: salt_file.display().to_string(),
        commitment: commitment.to_string(),
        dataset: None,
        tx: None,
        height: None,
        config: None,
    };
    if let (Some(policy), Some(key)) = (policy, signer) {
        let client = node.client();
        let data = imported.data.clone();
        let applied = block_on(async move {
            let ctx = RoleContext::connect(key, client).await?;
            let fin = roles::send_tx(
                &ctx,
                deai_ledger::TxBody::DatasetRegister(deai_ledger::tx::DatasetRegister {
                    commitment: roles::setup::salted_commitment(&salt, &data),
                    samples: data.len() as u64,
                    schema: schema.name.into(),
                    policy,
                }),
            )
            .await?;
            let id = roles::setup::created_id(&fin.receipt, "dataset_registered")?;
            anyhow::Ok((id, fin))
        })
        .and_then(|r| r);
        // Nothing was registered: take the files back, so the same command can simply be run
        // again once the cause is fixed.
        let applied = applied.inspect_err(|_| {
            let _ = std::fs::remove_file(&out);
            let _ = std::fs::remove_file(&salt_file);
        })?;
        report.dataset = Some(applied.0);
        report.tx = Some(applied.1.receipt.tx_id.to_string());
        report.height = Some(applied.1.height);
        if let (Some(dir), Some(mut cfg)) = (&args.dir, config) {
            let file = out
                .strip_prefix(dir)
                .map_or_else(|_| std::path::absolute(&out), |p| Ok(p.to_path_buf()))?;
            cfg.roles.datasets.push(DatasetFile {
                id: applied.0,
                file,
                salt: None,
                key: None,
            });
            cfg.save(dir).map_err(|e| {
                anyhow::anyhow!(
                    "dataset {} is registered, but {} could not be updated: {e}; add it under [[roles.datasets]] by hand",
                    applied.0,
                    dir.display()
                )
            })?;
            report.config = Some(
                dir.join(deai_node::config::CONFIG_FILE)
                    .display()
                    .to_string(),
            );
        }
    }
    crate::output::emit(node.json, &report, print)
}

fn print(r: &Report) {
    println!(
        "imported {} samples of {} from {}{}",
        r.samples,
        r.schema,
        r.csv,
        if r.header {
            " (header row skipped)"
        } else {
            ""
        }
    );
    let mut labels = String::from("  label  ");
    let mut counts = String::from("  samples");
    for (label, n) in r.label_counts.iter().enumerate() {
        let width = n.to_string().len().max(label.to_string().len()) + 2;
        labels.push_str(&format!("{label:>width$}"));
        counts.push_str(&format!("{n:>width$}"));
    }
    println!("{labels}\n{counts}");
    println!("  dataset file  {}", r.file);
    println!("  salt          {} (keep it with the data)", r.salt_file);
    match (r.dataset, &r.tx, r.height) {
        (Some(id), Some(tx), Some(h)) => {
            println!(
                "registered dataset {id} (tx {}, height {h})",
                crate::output::short(tx)
            );
            match &r.config {
                Some(c) => {
                    println!("  listed in {c}: a running owner node picks it up within seconds")
                }
                None => println!(
                    "  to serve it, list it in an owner node's config.toml: [[roles.datasets]] id = {id}, file = \"{}\"",
                    r.file
                ),
            }
        }
        _ => println!(
            "not registered; register it with: deai dataset register --file {} --schema {} --purpose ... --epsilon-max ... --expiry-height ... --key KEY",
            r.file, r.schema
        ),
    }
}
