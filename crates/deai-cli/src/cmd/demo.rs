//! `deai demo`: the main job. For now a scripted walk through the ledger on an embedded
//! single-validator node over real HTTP: fund two accounts, register a dataset with a consent policy,
//! create a task with escrow, register a model, revoke consent, prove an entry against a finalized
//! root, and audit the whole chain by replaying it from genesis.

use std::time::{Duration, Instant};

use deai_ledger::{
    ConsentPolicy, Digest, EPSILON_SCALE, METRIC_SCALE, Metric, SignedTx, TOKEN, Tx, TxBody,
    tx::{ConsentRevoke, DatasetRegister, ModelRegister, TaskCreate, Transfer},
};
use deai_node::{client::Client, config::NodeConfig};
use ed25519_dalek::SigningKey;
use serde::Serialize;
use serde_json::Value;

/// Arguments of `deai demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Keep the node's data directory here instead of a temporary one.
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

/// One step of the walk.
#[derive(Debug, Serialize)]
pub struct Step {
    /// What happened.
    pub what: String,
    /// The transaction, when the step was one.
    pub tx: Option<String>,
    /// The block it finalized in.
    pub height: Option<u64>,
}

/// What the demo reports.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Finalized height at the end.
    pub height: u64,
    /// State root at the end.
    pub state_root: String,
    /// The registered dataset's id.
    pub dataset_id: u64,
    /// The task's id.
    pub task_id: u64,
    /// The model's id.
    pub model_id: u64,
    /// Whether the dataset's inclusion proof verified against a finalized root.
    pub proof_ok: bool,
    /// Whether replaying the chain from genesis reproduced every state root.
    pub verify_ok: bool,
    /// Whole run, seconds.
    pub wall_s: f64,
}

/// Runs `deai demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let tmp = tempfile::tempdir()?;
    let dir = args.dir.clone().unwrap_or_else(|| tmp.path().join("node"));
    let dev = SigningKey::from_bytes(&[1u8; 32]);
    let owner = SigningKey::from_bytes(&[2u8; 32]);
    let creator = SigningKey::from_bytes(&[3u8; 32]);
    deai_node::init::init_with(&dir, NodeConfig::default(), |g| {
        g.balances = vec![(deai_node::keyfile::address(&dev), 1_000_000 * TOKEN)];
    })?;
    let bar = crate::progress::bar(args.json, 9, "demo");
    let walk_bar = bar.clone();
    let mut report = deai_node::run::with_embedded(&dir, |node| async move {
        let client = Client::new(format!("http://{}", node.http_addr));
        walk(&client, [&dev, &owner, &creator], &walk_bar).await
    })?;
    bar.finish_and_clear();
    report.wall_s = started.elapsed().as_secs_f64();
    crate::output::emit(args.json, &report, |r| {
        println!(
            "deai demo: a walk through the ledger on one validator ({:.1} s)",
            r.wall_s
        );
        for (i, s) in r.steps.iter().enumerate() {
            let at = s
                .height
                .map(|h| format!("  [block {h}]"))
                .unwrap_or_default();
            println!("  {:>2}. {}{at}", i + 1, s.what);
        }
        println!("  final height {}  state root {}", r.height, r.state_root);
        println!(
            "  inclusion proof: {}",
            if r.proof_ok { "valid" } else { "INVALID" }
        );
        println!(
            "  ledger verify:   {}",
            if r.verify_ok {
                "OK, every root reproduced from genesis"
            } else {
                "FAILED"
            }
        );
    })?;
    anyhow::ensure!(
        report.proof_ok && report.verify_ok,
        "the demo's checks failed"
    );
    Ok(())
}

struct Walker<'a> {
    client: &'a Client,
    chain_id: String,
    steps: Vec<Step>,
    bar: &'a indicatif::ProgressBar,
}

impl Walker<'_> {
    /// Signs, submits and waits for one transaction; fails if it did not apply.
    async fn send(
        &mut self,
        key: &SigningKey,
        body: TxBody,
        what: String,
    ) -> anyhow::Result<Value> {
        let sender = deai_node::keyfile::address(key);
        let acct: Value = self.client.get(&format!("/v1/accounts/{sender}")).await?;
        let nonce = acct["account"]["nonce"].as_u64().unwrap_or(0);
        let tx = SignedTx::sign(
            Tx {
                chain_id: self.chain_id.clone(),
                sender,
                nonce,
                fee: TOKEN / 1000,
                body,
            },
            key,
        );
        let id = self.client.submit(&tx).await?;
        let fin = self.client.wait_final(&id, Duration::from_secs(30)).await?;
        anyhow::ensure!(fin["applied"] == true, "{what} did not apply: {fin}");
        self.steps.push(Step {
            what,
            tx: Some(id.to_string()),
            height: fin["height"].as_u64(),
        });
        self.bar.inc(1);
        Ok(fin)
    }
}

async fn walk(
    client: &Client,
    keys: [&SigningKey; 3],
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Report> {
    let [dev, owner, creator] = keys;
    let status = client.status().await?;
    let chain_id = status["chain_id"].as_str().unwrap_or_default().to_string();
    let mut w = Walker {
        client,
        chain_id,
        steps: Vec::new(),
        bar,
    };
    let (owner_addr, creator_addr) = (
        deai_node::keyfile::address(owner),
        deai_node::keyfile::address(creator),
    );
    for (to, name) in [(owner_addr, "data owner"), (creator_addr, "task creator")] {
        let body = TxBody::Transfer(Transfer {
            to,
            amount: 10_000 * TOKEN,
        });
        w.send(
            dev,
            body,
            format!("dev account funds the {name} {to} with 10000 tokens"),
        )
        .await?;
    }
    let data = include_bytes!("demo.rs");
    let policy = ConsentPolicy {
        purposes: vec!["digit-recognition".into()],
        creators: None,
        reward_min: 100 * TOKEN,
        epsilon_max: 8 * EPSILON_SCALE,
        expiry_height: 1_000_000,
    };
    let body = TxBody::DatasetRegister(DatasetRegister {
        commitment: Digest(*blake3::hash(data).as_bytes()),
        samples: 180,
        schema: "digits-8x8".into(),
        policy,
    });
    let fin = w
        .send(
            owner,
            body,
            "data owner registers a dataset commitment with a consent policy".into(),
        )
        .await?;
    let dataset_id = created_id(&fin, "dataset")?;
    let body = TxBody::TaskCreate(TaskCreate {
        purpose: "digit-recognition".into(),
        model_spec: Digest(*blake3::hash(b"mlp 64-128-10").as_bytes()),
        datasets: vec![dataset_id],
        rounds: 20,
        epsilon: 4 * EPSILON_SCALE,
        delta: deai_ledger::DELTA_SCALE / 100_000,
        reward: 1_000 * TOKEN,
    });
    let fin = w
        .send(
            creator,
            body,
            "task creator posts a task with 1000 tokens in escrow".into(),
        )
        .await?;
    let task_id = created_id(&fin, "task")?;
    let body = TxBody::ModelRegister(ModelRegister {
        model_hash: Digest(*blake3::hash(b"demo model weights").as_bytes()),
        task: task_id,
        parent: None,
        metrics: vec![Metric {
            name: "accuracy".into(),
            value: 93 * METRIC_SCALE / 100,
        }],
    });
    let fin = w
        .send(
            creator,
            body,
            "task creator registers the trained model with its lineage".into(),
        )
        .await?;
    let model_id = created_id(&fin, "model")?;
    let body = TxBody::ConsentRevoke(ConsentRevoke {
        dataset: dataset_id,
    });
    w.send(
        owner,
        body,
        format!("data owner revokes consent for dataset {dataset_id}"),
    )
    .await?;
    let proof_ok = prove_dataset(client, dataset_id).await?;
    w.steps.push(Step {
        what: format!("light client checks dataset {dataset_id}'s inclusion proof"),
        tx: None,
        height: None,
    });
    bar.inc(1);
    let audit = deai_node::audit::verify_chain(client, |_, _| {}).await?;
    w.steps.push(Step {
        what: format!("audit replays {} blocks from genesis", audit.blocks),
        tx: None,
        height: None,
    });
    bar.inc(1);
    let status = client.status().await?;
    Ok(Report {
        steps: w.steps,
        height: status["height"].as_u64().unwrap_or(0),
        state_root: status["state_root"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        dataset_id,
        task_id,
        model_id,
        proof_ok,
        verify_ok: audit.ok,
        wall_s: 0.0,
    })
}

/// The id of the entity a transaction created, read from its receipt's events.
fn created_id(fin: &Value, kind: &str) -> anyhow::Result<u64> {
    let events = fin["receipt"]["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let created = match kind {
        "dataset" => "dataset_registered",
        "task" => "task_created",
        _ => "model_registered",
    };
    events
        .iter()
        .find(|e| e["type"] == created)
        .and_then(|e| e["id"].as_u64())
        .ok_or_else(|| anyhow::anyhow!("no {kind} id in the receipt's events: {}", fin["receipt"]))
}

async fn prove_dataset(client: &Client, id: u64) -> anyhow::Result<bool> {
    let answer: Value = client.get(&format!("/v1/proofs/dataset/{id}")).await?;
    let height = answer["height"].as_u64().unwrap_or(0);
    let proof: deai_ledger::Proof = serde_json::from_value(answer["proof"].clone())?;
    let block: Value = client.get(&format!("/v1/blocks/{height}")).await?;
    let root: Digest = block["state_root"].as_str().unwrap_or_default().parse()?;
    Ok(deai_ledger::verify_proof(&root, &proof).is_ok())
}
