//! `deai simulate`: a deterministic in-process federated-learning run (see `deai_learn::sim`).
//!
//! `--task NAME` starts from a reference task; every other flag overrides one part of it.

use anyhow::Context as _;
use deai_learn::attack::Attack;
use deai_learn::model::optim::Optimizer;
use deai_learn::sim::{self, DataSource, DpConfig, DpMode, Report, SimConfig};
use deai_learn::strategy::Sampling;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// Arguments of `deai simulate`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  deai simulate --task digits-100 --json
  deai simulate --task digits-100 --strategy krum --attack sign-flip --attackers 0.2 --plot curves.png")]
pub struct Args {
    /// Reference task to start from (`digits-100`).
    #[arg(long)]
    pub task: Option<String>,
    /// Data set: digits or fashion-mnist.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Keep only the first N train and test samples (fashion-mnist).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Partition: iid, shards, dirichlet:ALPHA, quantity:ALPHA.
    #[arg(long)]
    pub partition: Option<String>,
    /// Model: mlp, logistic, cnn.
    #[arg(long)]
    pub model: Option<String>,
    /// Clients in the federation.
    #[arg(long)]
    pub clients: Option<usize>,
    /// Clients per round.
    #[arg(long)]
    pub per_round: Option<usize>,
    /// Rounds.
    #[arg(long)]
    pub rounds: Option<u64>,
    /// Strategy (fedavg, fedavgm, fedprox, fedadagrad, fedadam, fedyogi, qfedavg, median,
    /// trimmed-mean, krum, multi-krum, bulyan, norm-clip, centered-clip); any rule also as
    /// RULE+momentum (server momentum 0.9) and bucketed-RULE (over means of random pairs).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Server learning rate (fedavgm, fedadagrad, fedadam, fedyogi).
    #[arg(long)]
    pub server_lr: Option<f32>,
    /// Run these strategies (comma-separated) on the same schedule and print a table.
    #[arg(long, value_delimiter = ',')]
    pub compare: Vec<String>,
    /// Local learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Local batch size.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Local epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Local optimiser: sgd or adam.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// SGD momentum.
    #[arg(long)]
    pub momentum: Option<f32>,
    /// Weight decay.
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// FedProx proximal weight used by every client.
    #[arg(long)]
    pub prox_mu: Option<f32>,
    /// Seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Attack: label-flip, sign-flip, scaling, gaussian, alie, ipm, free-rider.
    #[arg(long)]
    pub attack: Option<String>,
    /// Attacking clients: a count, or a fraction below 1 (e.g. 0.2).
    #[arg(long)]
    pub attackers: Option<f64>,
    /// Byzantine clients per round the robust rules assume (default: expected attackers).
    #[arg(long)]
    pub byzantine: Option<usize>,
    /// DP clipping norm (turns DP on).
    #[arg(long)]
    pub dp_clip: Option<f64>,
    /// DP noise multiplier σ.
    #[arg(long, default_value_t = 0.0)]
    pub dp_noise: f64,
    /// DP mechanism: server, client or adaptive.
    #[arg(long, default_value = "server")]
    pub dp_mode: String,
    /// δ for the reported ε.
    #[arg(long, default_value_t = 1e-5)]
    pub dp_delta: f64,
    /// Draw the accuracy and loss curves to this file: SVG or PNG by its extension.
    #[arg(long, value_parser = plot_path)]
    pub plot: Option<std::path::PathBuf>,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The configuration these flags describe.
    pub fn config(&self) -> anyhow::Result<SimConfig> {
        let mut c = match &self.task {
            Some(t) => SimConfig::task(t)?,
            None => SimConfig {
                task: "custom".into(),
                ..SimConfig::digits_100()
            },
        };
        if let Some(d) = &self.dataset {
            c.dataset = DataSource::from_name(d)?;
        }
        if let (Some(limit), DataSource::FashionMnist { .. }) = (self.limit, c.dataset) {
            c.dataset = DataSource::FashionMnist { limit: Some(limit) };
        }
        if let Some(p) = &self.partition {
            c.partition = p.parse()?;
        }
        set(&mut c.model, self.model.clone());
        set(&mut c.clients, self.clients);
        if let Some(k) = self.per_round {
            c.sampling = Sampling::count(k);
        }
        set(&mut c.rounds, self.rounds);
        set(&mut c.strategy, self.strategy.clone());
        c.server_lr = self.server_lr.or(c.server_lr);
        set(&mut c.local.lr, self.lr);
        set(&mut c.local.batch, self.batch);
        set(&mut c.local.epochs, self.epochs);
        set(&mut c.local.prox_mu, self.prox_mu);
        set(&mut c.seed, self.seed);
        c.local.optimizer = self.optimizer(c.local.optimizer)?;
        if let Some(a) = &self.attack {
            c.attack = Some(Attack::from_name(a)?);
            let n = self.attackers.unwrap_or(0.2);
            c.attackers = if n < 1.0 {
                (n * c.clients as f64).round() as usize
            } else {
                n as usize
            };
        }
        c.byzantine = self.byzantine.or(c.byzantine);
        if let Some(clip) = self.dp_clip {
            let mode = match self.dp_mode.as_str() {
                "server" => DpMode::ServerFixed,
                "client" => DpMode::ClientFixed,
                "adaptive" => DpMode::Adaptive,
                other => anyhow::bail!("--dp-mode {other:?}: expected server, client or adaptive"),
            };
            c.dp = Some(DpConfig {
                mode,
                clip,
                noise: self.dp_noise,
                delta: self.dp_delta,
            });
        }
        c.validate()?;
        Ok(c)
    }

    fn optimizer(&self, current: Optimizer) -> anyhow::Result<Optimizer> {
        let base = match self.optimizer.as_deref() {
            None => current,
            Some("sgd") => Optimizer::SGD,
            Some("adam") => Optimizer::ADAM,
            Some(other) => anyhow::bail!("--optimizer {other:?}: expected sgd or adam"),
        };
        Ok(match base {
            Optimizer::Sgd {
                momentum,
                weight_decay,
            } => Optimizer::Sgd {
                momentum: self.momentum.unwrap_or(momentum),
                weight_decay: self.weight_decay.unwrap_or(weight_decay),
            },
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay: self.weight_decay.unwrap_or(weight_decay),
            },
        })
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// A progress bar over `rounds`, hidden for `--json` or when stderr is not a terminal.
pub(crate) fn progress_bar(rounds: u64, json: bool, label: &str) -> ProgressBar {
    let bar = ProgressBar::new(rounds);
    if json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} rounds {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    bar
}

/// Runs `cfg` with a progress bar.
pub(crate) fn run_with_bar(cfg: &SimConfig, json: bool) -> anyhow::Result<Report> {
    let bar = progress_bar(cfg.rounds, json, &cfg.strategy);
    let report = sim::run(cfg, &mut |s| {
        bar.set_message(format!("acc {:.3}", s.accuracy));
        bar.inc(1);
    })
    .with_context(|| format!("simulating {} with {}", cfg.task, cfg.strategy))?;
    bar.finish_and_clear();
    Ok(report)
}

#[derive(Serialize)]
struct Comparison {
    runs: Vec<Report>,
}

/// Runs `deai simulate`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let cfg = args.config()?;
    if args.compare.is_empty() {
        let report = run_with_bar(&cfg, args.json)?;
        plot(&args, std::slice::from_ref(&report))?;
        return crate::output::emit(args.json, &report, print_report);
    }
    let mut runs = Vec::new();
    for name in &args.compare {
        let c = SimConfig {
            strategy: name.clone(),
            ..cfg.clone()
        };
        runs.push(run_with_bar(&c, args.json)?);
    }
    plot(&args, &runs)?;
    crate::output::emit(args.json, &Comparison { runs }, |c| print_table(&c.runs))
}

fn plot(args: &Args, runs: &[Report]) -> anyhow::Result<()> {
    let Some(path) = &args.plot else {
        return Ok(());
    };
    let series: Vec<crate::plot::Series> = runs
        .iter()
        .map(|r| crate::plot::Series {
            name: r.strategy.clone(),
            accuracy: r.per_round.iter().map(|s| s.accuracy).collect(),
            loss: r.per_round.iter().map(|s| s.loss).collect(),
        })
        .collect();
    let title = format!(
        "{} / {} / {}",
        runs[0].task, runs[0].dataset, runs[0].partition
    );
    let format = crate::plot::Format::of(path).context("the plot path names no known format")?;
    let bytes = crate::plot::curves(format, &title, &series)?;
    crate::files::write_atomically(path, &bytes)?;
    if !args.json {
        crate::output::write_stderr(format_args!(
            "accuracy and loss curves written to {}\n",
            path.display()
        ));
    }
    Ok(())
}

/// The `--plot` path: refused before training unless it names an SVG or PNG file in a folder
/// that exists, so a long run never ends in a plot that cannot be written.
fn plot_path(s: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::PathBuf::from(s);
    if crate::plot::Format::of(&path).is_none() {
        return Err(format!(
            "{s:?}: name a .svg or .png file (the plot's format comes from the extension)"
        ));
    }
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(format!(
            "{s:?}: the folder {} does not exist; create it or name another",
            dir.display()
        )),
        _ => Ok(path),
    }
}

fn print_report(r: &Report) {
    println!(
        "task {} ({} / {} / {}), strategy {}, seed {}",
        r.task, r.dataset, r.partition, r.model, r.strategy, r.seed
    );
    println!(
        "  final accuracy {:.4}  best {:.4}  final loss {:.4}",
        r.final_accuracy, r.best_accuracy, r.final_loss
    );
    println!(
        "  {} rounds in {:.3} s (median round {:.2} ms, whole run {:.3} s, {} threads)",
        r.rounds, r.rounds_s, r.median_round_ms, r.wall_s, r.threads
    );
    if let Some(eps) = r.epsilon {
        println!(
            "  DP: ε = {eps:.3} at δ = {:e} (RDP)",
            r.delta.unwrap_or_default()
        );
    }
    println!("  model hash {}", r.model_hash);
}

fn print_table(runs: &[Report]) {
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "strategy", "final", "best", "rounds_s"
    );
    for r in runs {
        println!(
            "{:<40} {:>10.4} {:>10.4} {:>10.3}",
            r.strategy, r.final_accuracy, r.best_accuracy, r.rounds_s
        );
    }
}
