//! `deai agent`: buy answers for a folder of inputs within a budget, checking a sample of them
//! by re-execution and disputing a provider that lies (the library is `deai_node::agent`).

use std::path::PathBuf;

use deai_node::agent::{Agent, Job, Report};

use super::common::{NodeArgs, SignArgs, block_on};
use crate::output::amount;

/// Arguments of `deai agent`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai agent --input digits/ --purpose digit-recognition --accuracy-min 0.9 --budget 100000 \\
      --key .deai/dev.key")]
pub struct Args {
    /// The inputs: a directory of .png/.json/.txt/.bin files, or one file.
    #[arg(long)]
    pub input: PathBuf,
    /// Only models trained for this purpose (the task's).
    #[arg(long)]
    pub purpose: Option<String>,
    /// Only this model.
    #[arg(long)]
    pub model: Option<u64>,
    /// Smallest recorded validation accuracy accepted, 0..=1.
    #[arg(long)]
    pub accuracy_min: Option<f64>,
    /// Highest price per query accepted, base units.
    #[arg(long)]
    pub price_max: Option<u128>,
    /// Most the job may lock in channel deposits, base units.
    #[arg(long)]
    pub budget: u128,
    /// Share of answers re-executed locally (at least one per request).
    #[arg(long, default_value_t = 0.05)]
    pub check_share: f64,
    /// Queries per request.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Lifetime of the channels it opens, blocks.
    #[arg(long, default_value_t = 1_000)]
    pub blocks: u64,
    /// Seeds which answers are checked.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Read images as dark ink on a light background.
    #[arg(long)]
    pub invert: bool,
    /// Signing (the payer's key).
    #[command(flatten)]
    pub sign: SignArgs,
    /// The node.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// Runs `deai agent`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.check_share) {
        anyhow::bail!("--check-share {} must be between 0 and 1", args.check_share);
    }
    let key = deai_node::keyfile::read(args.sign.key_file()?)?;
    let job = Job {
        purpose: args.purpose.clone(),
        model: args.model,
        accuracy_min: args.accuracy_min,
        price_max: args.price_max,
        budget: args.budget,
        check_share: args.check_share,
        batch: args.batch,
        channel_blocks: args.blocks,
        seed: args.seed,
    };
    let input = args.input.clone();
    let invert = args.invert;
    let prepare = move |m: &deai_infer::QuantModel| {
        Ok(crate::query_input::read(&input, m, invert)?
            .into_iter()
            .map(|q| (q.name, q.bytes))
            .collect())
    };
    let bar = crate::progress::bar(args.node.json, 0, "answers");
    let node = args.node.client();
    let report = block_on(async {
        let agent = Agent::new(node, key).await?;
        let mut progress = |done: usize, total: usize| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        };
        agent.run(&job, &prepare, &mut progress).await
    })??;
    bar.finish_and_clear();
    print_report(&args.node, &report)
}

fn print_report(node: &NodeArgs, report: &Report) -> anyhow::Result<()> {
    crate::output::emit(node.json, report, |r| {
        println!(
            "answered {} of {} inputs; {} queries paid, {} in all; {} answers re-executed; {} matching offers",
            r.answered,
            r.inputs,
            r.queries,
            amount(r.paid),
            r.checked,
            r.offers_matching
        );
        for u in &r.used {
            println!(
                "  offer {} (model {}, channel {}): {} queries at {}, {} checked, {} wrong{}",
                u.offer,
                u.model,
                u.channel,
                u.queries,
                amount(u.price),
                u.checked,
                u.mismatches,
                u.dropped
                    .as_deref()
                    .map(|d| format!("; dropped: {d}"))
                    .unwrap_or_default()
            );
        }
        for d in &r.disputes {
            println!(
                "  dispute of offer {} receipt {}/{}: {}",
                d.offer,
                d.channel,
                d.sequence,
                if d.upheld {
                    format!(
                        "upheld; bond slashed, {} to this account, {} burned",
                        amount(d.reward),
                        amount(d.burned)
                    )
                } else {
                    "rejected".into()
                }
            );
        }
    })
}
