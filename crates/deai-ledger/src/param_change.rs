//! Governance changes to [`Params`]: which parameters a proposal may change, and how a change
//! by name is applied and checked.
//!
//! A change names a parameter by its genesis-file name and gives the new value as a canonical
//! decimal string. It is applied through the parameters' own serde form, so every parameter a
//! later version adds is governable without a line here, and checked by [`Params::validate`],
//! the rules a genesis must satisfy: a proposal can never set what a genesis could not. A few
//! parameters stay fixed at genesis ([`FIXED_AT_GENESIS`]), each for a stated reason.

use crate::params::Params;

/// Why a decoding bound stays fixed.
const DECODE: &str = "it bounds how transactions and blocks decode, and light clients, providers \
                      and agents decode with the genesis value";

/// Parameters no proposal may change, with the reason.
pub const FIXED_AT_GENESIS: &[(&str, &str)] = &[
    (
        "epoch_blocks",
        "the consensus layer's epocher (commonware marshal) has a fixed epoch length, and the \
         epoch of every past height is computed from it",
    ),
    ("tx_bytes_max", DECODE),
    ("block_txs_max", DECODE),
    ("block_bytes_max", DECODE),
    ("chain_id_bytes_max", DECODE),
    ("string_bytes_max", DECODE),
    ("dataset_purposes_max", DECODE),
    ("consent_creators_max", DECODE),
    ("task_datasets_max", DECODE),
    ("model_metrics_max", DECODE),
    ("receipt_output_bytes_max", DECODE),
    ("dispute_model_bytes_max", DECODE),
    ("dispute_input_bytes_max", DECODE),
    ("offer_endpoint_bytes_max", DECODE),
];

impl Params {
    /// Every parameter by name with its value as a decimal string, in name order.
    pub fn named_values(&self) -> Vec<(String, String)> {
        let value = serde_json::to_value(self).expect("params serialize");
        let Some(object) = value.as_object() else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = object
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect();
        out.sort();
        out
    }

    /// The names a proposal may change, in name order.
    pub fn governable() -> Vec<String> {
        Params::default()
            .named_values()
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| !FIXED_AT_GENESIS.iter().any(|(f, _)| f == name))
            .collect()
    }

    /// This parameter set with `name` set to `value`, checked as a genesis would be.
    ///
    /// Errors (as text for the transaction's receipt): an unknown or fixed name, a value that
    /// is not a canonical unsigned decimal or does not fit the parameter, or a set that breaks
    /// a rule of [`Params::validate`].
    pub fn with_change(&self, name: &str, value: &str) -> Result<Params, String> {
        if let Some((_, why)) = FIXED_AT_GENESIS.iter().find(|(f, _)| *f == name) {
            return Err(format!("{name} is fixed at genesis: {why}"));
        }
        let parsed: u128 = value
            .parse()
            .map_err(|_| format!("{value:?} is not an unsigned decimal"))?;
        if parsed.to_string() != value {
            return Err(format!(
                "{value:?} is not canonical (write {parsed}: no sign, no leading zeros)"
            ));
        }
        let mut json = serde_json::to_value(self).expect("params serialize");
        let slot = json
            .as_object_mut()
            .and_then(|o| o.get_mut(name))
            .ok_or_else(|| format!("no parameter named {name:?}"))?;
        *slot = match slot {
            serde_json::Value::String(_) => serde_json::Value::String(value.to_string()),
            _ => {
                let n =
                    u64::try_from(parsed).map_err(|_| format!("{value} does not fit {name}"))?;
                serde_json::Value::from(n)
            }
        };
        let changed: Params =
            serde_json::from_value(json).map_err(|_| format!("{value} does not fit {name}"))?;
        changed.validate().map_err(|e| e.to_string())?;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_sets_one_parameter_and_keeps_the_others() {
        let p = Params::default();
        let q = p.with_change("fee_min", "7").expect("governable");
        assert_eq!(q.fee_min, 7);
        assert_eq!(
            Params {
                fee_min: p.fee_min,
                ..q.clone()
            },
            p
        );
        let q = p.with_change("gov_quorum_bps", "5000").expect("governable");
        assert_eq!(q.gov_quorum_bps, 5_000);
    }

    #[test]
    fn changes_a_genesis_could_not_hold_are_refused() {
        let p = Params::default();
        for (name, value, why) in [
            ("epoch_blocks", "10", "fixed at genesis"),
            ("tx_bytes_max", "9000", "fixed at genesis"),
            ("no_such", "1", "no parameter"),
            ("fee_min", "-1", "not an unsigned decimal"),
            ("fee_min", "07", "not canonical"),
            ("gov_quorum_bps", "4294967296", "does not fit"),
            ("gov_quorum_bps", "10001", "at most 10000"),
            ("gov_threshold_bps", "10000", "below 10000"),
            ("round_timeout_blocks", "0", "positive"),
            ("offer_unbond_blocks", "5", "must exceed"),
            ("royalty_floor_bps", "10001", "at most 10000"),
            (
                "challenge_emission_reward",
                "5000000000000000000",
                "never pays",
            ),
        ] {
            let err = p.with_change(name, value).expect_err(name);
            assert!(err.contains(why), "{name}={value}: {err}");
        }
    }

    #[test]
    fn every_parameter_is_governable_or_fixed_with_a_reason() {
        let all = Params::default().named_values();
        let governable = Params::governable();
        assert_eq!(governable.len() + FIXED_AT_GENESIS.len(), all.len());
        assert!(governable.iter().any(|n| n == "dispute_bond"));
        assert!(governable.iter().any(|n| n == "emission_per_block"));
    }
}
