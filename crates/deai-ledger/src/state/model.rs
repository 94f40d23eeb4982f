//! Models: the hash of trained weights with their lineage (task and parent model) and metrics.

use crate::event::HistoryEntry;
use crate::types::{Address, Digest};
use bytes::BufMut;
use commonware_codec::Buf;
use commonware_codec::{EncodeSize, Error as CodecError, Read, Write};
use serde::{Deserialize, Serialize};

/// Checks a metric list against the parameters' limits (count and name length); every transaction
/// that carries metrics uses this one rule.
pub(crate) fn check_metrics(
    metrics: &[Metric],
    params: &crate::params::Params,
) -> Result<(), crate::error::TxError> {
    crate::error::TxError::limit("metrics", metrics.len(), params.model_metrics_max as usize)?;
    for m in metrics {
        crate::error::TxError::limit(
            "metric name",
            m.name.len(),
            params.string_bytes_max as usize,
        )?;
    }
    Ok(())
}

/// A named metric in fixed point ([`crate::METRIC_SCALE`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metric {
    /// Name (e.g. `"accuracy"`).
    pub name: String,
    /// Value · 1e6.
    pub value: i64,
}

impl Write for Metric {
    fn write(&self, buf: &mut impl BufMut) {
        crate::codec::write_str(&self.name, buf);
        self.value.write(buf);
    }
}

impl EncodeSize for Metric {
    fn encode_size(&self) -> usize {
        crate::codec::str_size(&self.name) + 8
    }
}

impl Read for Metric {
    /// Longest name, bytes.
    type Cfg = usize;
    fn read_cfg(buf: &mut impl Buf, max: &usize) -> Result<Self, CodecError> {
        Ok(Self {
            name: crate::codec::read_str(buf, *max)?,
            value: i64::read_cfg(buf, &())?,
        })
    }
}

/// A registered model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// Its id (from 1).
    pub id: u64,
    /// Who registered it (the task creator).
    pub owner: Address,
    /// BLAKE3 of the weights.
    pub model_hash: Digest,
    /// The task it came from.
    pub task: u64,
    /// The model it was trained from.
    pub parent: Option<u64>,
    /// Metrics, fixed point.
    pub metrics: Vec<Metric>,
    /// Height of registration.
    pub registered_height: u64,
    /// Hash chain over `history`.
    pub history_root: Digest,
    /// Everything that happened to this model.
    pub history: Vec<HistoryEntry>,
}

impl Model {
    /// The committed bytes (the state-tree leaf value).
    pub fn leaf_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        self.id.write(&mut out);
        self.owner.write(&mut out);
        self.model_hash.write(&mut out);
        self.task.write(&mut out);
        self.parent.write(&mut out);
        crate::codec::write_list(&self.metrics, &mut out);
        self.registered_height.write(&mut out);
        self.history_root.write(&mut out);
        out
    }
}
