//! How datasets, tasks and models read for a person: a table row per entity for `list`, labelled
//! fields for `show`, in natural units (tokens, ε, accuracy as decimals), hashes and addresses
//! short unless `--full`. `--json` prints the ledger's entity unchanged instead.

use deai_ledger::{DELTA_SCALE, Dataset, METRIC_SCALE, Model, NOISE_SCALE, Task};

use crate::output::{decimal, epsilon, short, tokens};

/// An entity with a human form.
pub trait Listed {
    /// Column names of `list`.
    const HEADERS: &'static [&'static str];
    /// One `list` row.
    fn row(&self, full: bool) -> Vec<String>;
    /// `show`'s labelled fields, in order.
    fn fields(&self, full: bool) -> Vec<(&'static str, String)>;
}

fn hex(full: bool, s: impl ToString) -> String {
    let s = s.to_string();
    if full { s } else { short(&s) }
}

fn ids(v: &[u64]) -> String {
    if v.is_empty() {
        return "-".into();
    }
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

impl Listed for Dataset {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "OWNER",
        "SCHEMA",
        "SAMPLES",
        "PURPOSES",
        "EPS SPENT",
        "EPS MAX",
        "EXPIRY",
        "CONSENT",
    ];

    fn row(&self, full: bool) -> Vec<String> {
        vec![
            self.id.to_string(),
            hex(full, self.owner),
            self.schema.clone(),
            self.samples.to_string(),
            self.policy.purposes.join(","),
            epsilon(self.epsilon_spent),
            epsilon(self.policy.epsilon_max),
            self.policy.expiry_height.to_string(),
            if self.revoked { "revoked" } else { "given" }.into(),
        ]
    }

    fn fields(&self, full: bool) -> Vec<(&'static str, String)> {
        let p = &self.policy;
        vec![
            ("dataset", self.id.to_string()),
            ("owner", hex(full, self.owner)),
            ("schema", self.schema.clone()),
            ("samples", self.samples.to_string()),
            ("commitment", hex(full, self.commitment)),
            (
                "registered at",
                format!("height {}", self.registered_height),
            ),
            (
                "consent",
                if self.revoked { "revoked" } else { "given" }.into(),
            ),
            ("  purposes", p.purposes.join(", ")),
            (
                "  creators",
                p.creators.as_ref().map_or("any".into(), |c| {
                    c.iter()
                        .map(|a| hex(full, a))
                        .collect::<Vec<_>>()
                        .join(", ")
                }),
            ),
            ("  reward min", format!("{} tokens", tokens(p.reward_min))),
            ("  ε max", epsilon(p.epsilon_max)),
            (
                "  ε per round max",
                if p.epsilon_round_max == 0 {
                    "none".into()
                } else {
                    epsilon(p.epsilon_round_max)
                },
            ),
            (
                "  σ min",
                if p.noise_multiplier_min == 0 {
                    "none".into()
                } else {
                    decimal(u128::from(p.noise_multiplier_min), u128::from(NOISE_SCALE))
                },
            ),
            ("  expires", format!("height {}", p.expiry_height)),
            ("ε spent", epsilon(self.epsilon_spent)),
            ("history", format!("{} entries", self.history.len())),
        ]
    }
}

impl Listed for Task {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "STATUS",
        "PURPOSE",
        "ROUNDS",
        "DATASETS",
        "EPS SPENT",
        "EPS BUDGET",
        "REWARD",
        "MODEL",
    ];

    fn row(&self, _full: bool) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.status.name().into(),
            self.purpose.clone(),
            format!("{}/{}", self.round_log.len(), self.rounds),
            self.datasets.len().to_string(),
            epsilon(self.epsilon_spent),
            epsilon(self.epsilon),
            tokens(self.reward),
            self.final_model.map_or("-".into(), |m| m.to_string()),
        ]
    }

    fn fields(&self, full: bool) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("task", self.id.to_string()),
            ("status", self.status.name().into()),
            ("creator", hex(full, self.creator)),
            (
                "coordinator",
                self.coordinator
                    .map_or("the creator".into(), |c| hex(full, c)),
            ),
            ("purpose", self.purpose.clone()),
            ("model spec", hex(full, self.model_spec)),
            ("datasets", ids(&self.datasets)),
            (
                "rounds",
                format!("{} of {} opened", self.round_log.len(), self.rounds),
            ),
            (
                "ε",
                format!(
                    "{} spent of {}",
                    epsilon(self.epsilon_spent),
                    epsilon(self.epsilon)
                ),
            ),
            (
                "δ",
                format!(
                    "{} spent of {}",
                    decimal(u128::from(self.delta_spent), u128::from(DELTA_SCALE)),
                    decimal(u128::from(self.delta), u128::from(DELTA_SCALE))
                ),
            ),
            (
                "reward",
                format!(
                    "{} tokens ({} still in escrow)",
                    tokens(self.reward),
                    tokens(self.escrow)
                ),
            ),
            ("created at", format!("height {}", self.created_height)),
            (
                "model",
                self.final_model.map_or("-".into(), |m| m.to_string()),
            ),
        ];
        for r in &self.round_log {
            let what = match (&r.outcome, r.expired_height) {
                (Some(o), _) => format!(
                    "{}/{} in the aggregate, closed at height {}",
                    o.survivors.len(),
                    r.selected.len(),
                    o.closed_height
                ),
                (None, Some(h)) => format!("expired at height {h}"),
                (None, None) => format!("open since height {}", r.opened_height),
            };
            f.push((
                "round",
                format!("{:>3}: {what}, ε {}", r.number, epsilon(r.epsilon)),
            ));
        }
        f
    }
}

fn metrics(m: &Model) -> String {
    if m.metrics.is_empty() {
        return "-".into();
    }
    m.metrics
        .iter()
        .map(|x| {
            let v = decimal(u128::from(x.value.unsigned_abs()), METRIC_SCALE as u128);
            let sign = if x.value < 0 { "-" } else { "" };
            format!("{}={sign}{v}", x.name)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Listed for Model {
    const HEADERS: &'static [&'static str] = &["ID", "TASK", "PARENT", "HASH", "METRICS"];

    fn row(&self, full: bool) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.task.to_string(),
            self.parent.map_or("-".into(), |p| p.to_string()),
            hex(full, self.model_hash),
            metrics(self),
        ]
    }

    fn fields(&self, full: bool) -> Vec<(&'static str, String)> {
        vec![
            ("model", self.id.to_string()),
            ("task", self.task.to_string()),
            ("parent", self.parent.map_or("-".into(), |p| p.to_string())),
            ("owner", hex(full, self.owner)),
            ("weights hash", hex(full, self.model_hash)),
            ("metrics", metrics(self)),
            (
                "registered at",
                format!("height {}", self.registered_height),
            ),
            ("history", format!("{} entries", self.history.len())),
        ]
    }
}

impl Listed for deai_ledger::Offer {
    const HEADERS: &'static [&'static str] = &[
        "ID",
        "MODEL",
        "STATUS",
        "PRICE",
        "BOND",
        "ROYALTY %",
        "PROVIDER",
        "ENDPOINT",
    ];

    fn row(&self, full: bool) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.model.to_string(),
            self.status.name().into(),
            crate::output::amount(self.price_per_query),
            crate::output::amount(self.bond),
            decimal(u128::from(self.royalty_bps), 100),
            hex(full, self.provider),
            self.endpoint.clone(),
        ]
    }

    fn fields(&self, full: bool) -> Vec<(&'static str, String)> {
        vec![
            ("offer", self.id.to_string()),
            ("model", self.model.to_string()),
            ("status", self.status.name().into()),
            ("provider", hex(full, self.provider)),
            ("endpoint", self.endpoint.clone()),
            ("quantized hash", hex(full, self.quant_hash)),
            ("ops per query", self.ops.to_string()),
            (
                "price per query",
                crate::output::amount(self.price_per_query),
            ),
            ("bond", crate::output::amount(self.bond)),
            (
                "royalty",
                format!(
                    "{} % to {} contributors",
                    decimal(u128::from(self.royalty_bps), 100),
                    self.contributors.len()
                ),
            ),
            ("created at", format!("height {}", self.created_height)),
            ("history", format!("{} entries", self.history.len())),
        ]
    }
}

impl Listed for deai_ledger::Channel {
    const HEADERS: &'static [&'static str] = &[
        "ID", "OFFER", "STATUS", "DEPOSIT", "CLAIMED", "EXPIRY", "PAYER",
    ];

    fn row(&self, full: bool) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.offer.to_string(),
            channel_status(self).into(),
            crate::output::amount(self.deposit),
            crate::output::amount(self.claimed),
            self.expiry_height.to_string(),
            hex(full, self.payer),
        ]
    }

    fn fields(&self, full: bool) -> Vec<(&'static str, String)> {
        vec![
            ("channel", self.id.to_string()),
            ("offer", self.offer.to_string()),
            ("status", channel_status(self).into()),
            ("payer", hex(full, self.payer)),
            ("provider", hex(full, self.provider)),
            ("deposit", crate::output::amount(self.deposit)),
            ("claimed", crate::output::amount(self.claimed)),
            ("opened at", format!("height {}", self.opened_height)),
            ("expires at", format!("height {}", self.expiry_height)),
            ("disputed", ids(&self.disputed)),
        ]
    }
}

fn channel_status(c: &deai_ledger::Channel) -> &'static str {
    match c.status {
        deai_ledger::ChannelStatus::Open => "open",
        deai_ledger::ChannelStatus::Closed => "closed",
    }
}

/// Prints `items` as a table (or "no WHAT").
pub fn print_table<T: Listed>(what: &str, items: &[T], full: bool) {
    if items.is_empty() {
        crate::output::write_stdout(format_args!("no {what}\n"));
        return;
    }
    let mut table = crate::table::Table::new(T::HEADERS);
    for item in items {
        table.row(item.row(full));
    }
    crate::output::write_stdout(format_args!("{}", table.render()));
}
