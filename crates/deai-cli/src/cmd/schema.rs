//! `deai schema list`: the dataset schemas this build knows, for `dataset import` and tasks.

use clap::Subcommand;
use serde::Serialize;

/// Arguments of `deai schema`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub which: Which,
    /// Print one JSON document instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The schema subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Every schema: its tag, features, value range, labels.
    #[command(after_help = "Example:\n  deai schema list")]
    List,
}

#[derive(Serialize)]
struct View {
    name: &'static str,
    task_dataset: &'static str,
    features: usize,
    classes: usize,
    value_min: f32,
    value_max: f32,
    whole_numbers: bool,
    stored_scale: f32,
    description: &'static str,
}

/// Runs `deai schema`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Which::List = args.which;
    let views: Vec<View> = deai_node::fed::schema::SCHEMAS
        .iter()
        .map(|s| View {
            name: s.name,
            task_dataset: s.family,
            features: s.features,
            classes: s.classes,
            value_min: s.raw_min,
            value_max: s.raw_max,
            whole_numbers: s.integer,
            stored_scale: s.scale,
            description: s.description,
        })
        .collect();
    crate::output::emit(args.json, &views, |views| {
        let width = views.iter().map(|v| v.name.len()).max().unwrap_or(6).max(6);
        println!(
            "{:<width$}  {:>8}  {:>7}  {:>11}  description",
            "SCHEMA", "FEATURES", "LABELS", "VALUES"
        );
        for v in views {
            let values = format!("{}..={}", v.value_min, v.value_max);
            println!(
                "{:<width$}  {:>8}  {:>7}  {:>11}  {}",
                v.name,
                v.features,
                format!("0..={}", v.classes - 1),
                values,
                v.description
            );
        }
        println!(
            "CSV: one sample per row, the features in order and one label column; see docs/data.md"
        );
    })
}
