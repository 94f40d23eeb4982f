//! `deai secagg`: secure-aggregation parameters and tools.

use clap::Subcommand;
use deai_secagg::params::{Adversary, Params};
use serde::Serialize;

/// Arguments of `deai secagg`.
pub type Args = super::common::Group<Which>;

/// The `deai secagg` tools.
#[derive(Debug, Subcommand)]
pub enum Which {
    /// Graph degree k and Shamir threshold t for a threat model (the SecAgg+ analysis).
    Params(ParamsArgs),
}

/// Arguments of `deai secagg params`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  deai secagg params --clients 100 --corrupt 0.33 --dropout 0.33 --malicious")]
pub struct ParamsArgs {
    /// Clients starting the round.
    #[arg(long)]
    pub clients: u32,
    /// Fraction of clients that may collude with the server.
    #[arg(long, default_value_t = 0.05)]
    pub corrupt: f64,
    /// Fraction of clients that may drop out.
    #[arg(long, default_value_t = 0.1)]
    pub dropout: f64,
    /// The server may lie about who dropped (semi-malicious) instead of only colluding.
    #[arg(long)]
    pub malicious: bool,
    /// Security: the server learns more than the sum with probability < 2^-bits.
    #[arg(long, default_value_t = 40)]
    pub security_bits: u32,
    /// Correctness: the round fails with probability < 2^-bits.
    #[arg(long, default_value_t = 20)]
    pub correctness_bits: u32,
    /// Print one JSON object instead of a human summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct ParamsOut {
    clients: u32,
    corrupt: f64,
    dropout: f64,
    adversary: Adversary,
    security_bits: u32,
    correctness_bits: u32,
    k: u32,
    t: u32,
    /// Corrupt neighbours tolerated (the bound's `c`: `t > c`, and `2t > k + 1 + c` against a
    /// semi-malicious server).
    c: u32,
}

/// Runs `deai secagg`.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.which {
        Which::Params(a) => params(a),
    }
}

fn params(a: ParamsArgs) -> anyhow::Result<()> {
    let adversary = if a.malicious {
        Adversary::SemiMalicious
    } else {
        Adversary::SemiHonest
    };
    let p = Params::for_threat_model(
        a.clients,
        a.corrupt,
        a.dropout,
        a.security_bits,
        a.correctness_bits,
        adversary,
    )?;
    let out = ParamsOut {
        clients: a.clients,
        corrupt: a.corrupt,
        dropout: a.dropout,
        adversary,
        security_bits: a.security_bits,
        correctness_bits: a.correctness_bits,
        k: p.degree,
        t: p.threshold,
        c: p.corrupt_neighbours_max,
    };
    crate::output::emit(a.json, &out, |o| {
        println!(
            "{} clients, corrupt {}, dropout {}, {} server (σ={}, η={}): degree k = {}, threshold t = {} of {} holders, at most c = {} corrupt neighbours",
            o.clients,
            o.corrupt,
            o.dropout,
            match o.adversary {
                Adversary::SemiHonest => "semi-honest",
                Adversary::SemiMalicious => "malicious",
            },
            o.security_bits,
            o.correctness_bits,
            o.k,
            o.t,
            o.k + 1,
            o.c
        );
    })
}
