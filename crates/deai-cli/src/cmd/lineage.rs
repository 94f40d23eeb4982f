//! `deai lineage model <id>`: the model's tree — task, rounds, contributing datasets and their
//! owners, rewards paid, ε spent — and its ancestors'.

use clap::Subcommand;
use deai_node::audit::lineage::{self, Lineage};

use super::common::block_on;

/// Arguments of `deai lineage`.
pub type Args = super::common::NodeGroup<Which>;

/// The lineage subcommands.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// A registered model, back through every task and parent model.
    #[command(after_help = "Example:\n  deai lineage model 1")]
    Model {
        /// The model id.
        id: u64,
    },
}

/// Runs `deai lineage`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Which::Model { id } = args.which;
    let client = args.node.client();
    let tree = block_on(async move { lineage::fetch(&client, id).await })??;
    crate::output::emit(args.node.json, &tree, |t| print_tree(t, 0))
}

fn print_tree(l: &Lineage, depth: usize) {
    let pad = "  ".repeat(depth);
    let t = &l.task;
    let metrics: Vec<String> = l
        .metrics
        .iter()
        .map(|(k, v)| format!("{k} {v:.4}"))
        .collect();
    println!(
        "{pad}model {} ({}) registered at height {} by {}  [{}]",
        l.model,
        short(&l.model_hash.to_string()),
        l.registered_height,
        short(&l.owner.to_string()),
        metrics.join(", ")
    );
    println!(
        "{pad}└─ task {} \"{}\": {} of {} rounds, ε spent {} of {} (δ {}), reward {} paid {} refund {} tokens",
        t.id,
        t.purpose,
        t.rounds.len(),
        t.rounds_planned,
        t.epsilon_spent_decimal,
        t.epsilon_budget_decimal,
        t.delta_spent_decimal,
        crate::output::tokens(t.reward),
        crate::output::tokens(t.paid),
        crate::output::tokens(t.refund)
    );
    for r in &t.rounds {
        let dropped = if r.dropped.is_empty() {
            String::new()
        } else {
            format!(", dropped {:?}", r.dropped)
        };
        let expired = if r.expired {
            " (expired: no result)"
        } else {
            ""
        };
        println!(
            "{pad}   round {:>3}: selected {:?} of {} eligible, in aggregate {:?}{dropped}, ε {}{expired}",
            r.number, r.selected, r.eligible, r.survivors, r.epsilon_decimal
        );
    }
    for c in &l.datasets {
        println!(
            "{pad}   dataset {:>3} of {}: {} rounds, score {:.4}, paid {} tokens{}",
            c.dataset,
            short(&c.owner.to_string()),
            c.rounds,
            c.score_total,
            crate::output::tokens(c.reward),
            if c.revoked {
                " (consent since revoked)"
            } else {
                ""
            }
        );
    }
    if let Some(parent) = &l.parent {
        println!("{pad}   trained from:");
        print_tree(parent, depth + 2);
    }
}

fn short(hex: &str) -> String {
    hex.chars().take(12).collect()
}
