//! Partitioners: which training samples each client holds.
//!
//! Every partitioner returns, for each client id, indices into the training set; every index
//! appears at most once, and for `iid`, `shards` and the skews every index appears exactly once.
//! Random partitioners draw from [`crate::rng::stream`] seeded by the run's seed.

use rand::seq::SliceRandom;
use rand_distr::{Distribution, Gamma};

use crate::error::{LearnError, Result};
use crate::rng;

/// How to split the training set.
#[derive(Debug, Clone, PartialEq)]
pub enum Partition {
    /// Sample `j` goes to client `j % clients`.
    Iid,
    /// Sort by label (stable), cut into `2 * clients` near-equal shards, client `c` gets shards
    /// `c` and `c + clients` (McMahan et al. 2017).
    Shards,
    /// Per-class Dirichlet(`alpha`) label skew.
    Dirichlet(f64),
    /// Client sizes drawn from Dirichlet(`alpha`), samples otherwise IID.
    Quantity(f64),
    /// The data's own grouping (e.g. Shakespeare speaking roles), given by the loader.
    Natural,
}

impl std::str::FromStr for Partition {
    type Err = LearnError;

    fn from_str(s: &str) -> Result<Self> {
        let alpha = |v: &str| -> Result<f64> {
            match v.parse::<f64>() {
                Ok(a) if a > 0.0 && a.is_finite() => Ok(a),
                _ => Err(LearnError::config(
                    "partition",
                    s,
                    "ALPHA must be a positive number",
                )),
            }
        };
        match s.split_once(':') {
            None if s == "iid" => Ok(Self::Iid),
            None if s == "shards" => Ok(Self::Shards),
            None if s == "natural" => Ok(Self::Natural),
            Some(("dirichlet", a)) => Ok(Self::Dirichlet(alpha(a)?)),
            Some(("quantity", a)) => Ok(Self::Quantity(alpha(a)?)),
            _ => Err(LearnError::config(
                "partition",
                s,
                "expected iid, shards, dirichlet:ALPHA, quantity:ALPHA or natural",
            )),
        }
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Iid => write!(f, "iid"),
            Self::Shards => write!(f, "shards"),
            Self::Dirichlet(a) => write!(f, "dirichlet:{a}"),
            Self::Quantity(a) => write!(f, "quantity:{a}"),
            Self::Natural => write!(f, "natural"),
        }
    }
}

/// Splits samples with `labels` among `clients` clients.
pub fn split(
    partition: &Partition,
    labels: &[u32],
    classes: usize,
    clients: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    if clients == 0 || clients > labels.len() {
        let reason = format!(
            "need 1..={} clients for {} samples",
            labels.len(),
            labels.len()
        );
        return Err(LearnError::config("clients", clients, reason));
    }
    match partition {
        Partition::Iid => Ok(iid(labels.len(), clients)),
        Partition::Shards => Ok(shards(labels, clients, 2)),
        Partition::Dirichlet(alpha) => dirichlet(labels, classes, clients, *alpha, seed),
        Partition::Quantity(alpha) => quantity(labels.len(), clients, *alpha, seed),
        Partition::Natural => Err(LearnError::config(
            "partition",
            "natural",
            "only data sets with their own grouping (shakespeare) support it",
        )),
    }
}

/// Sample `j` to client `j % clients`.
pub fn iid(n: usize, clients: usize) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::with_capacity(n / clients + 1); clients];
    for j in 0..n {
        out[j % clients].push(j);
    }
    out
}

/// Pathological non-IID: label-sorted shards, `per_client` of them to each client.
pub fn shards(labels: &[u32], clients: usize, per_client: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&i| labels[i]); // stable: ties stay in original order
    let count = clients * per_client;
    let (base, extra) = (order.len() / count, order.len() % count);
    let mut bounds = Vec::with_capacity(count + 1);
    bounds.push(0);
    for s in 0..count {
        let size = base + usize::from(s < extra);
        bounds.push(bounds[s] + size);
    }
    (0..clients)
        .map(|c| {
            (0..per_client)
                .flat_map(|k| {
                    let s = c + k * clients;
                    order[bounds[s]..bounds[s + 1]].iter().copied()
                })
                .collect()
        })
        .collect()
}

/// Draws a Dirichlet(`alpha`) vector of length `k`.
fn dirichlet_draw(rng: &mut rng::Rng, alpha: f64, k: usize) -> Vec<f64> {
    let gamma = Gamma::new(alpha, 1.0).expect("alpha checked positive by the parser");
    let draws: Vec<f64> = (0..k).map(|_| gamma.sample(rng).max(1e-300)).collect();
    let total: f64 = draws.iter().sum();
    draws.into_iter().map(|d| d / total).collect()
}

/// Cuts `items` into consecutive pieces proportional to `shares`.
fn cut(items: &[usize], shares: &[f64], out: &mut [Vec<usize>]) {
    let mut acc = 0.0;
    let mut start = 0;
    for (c, share) in shares.iter().enumerate() {
        acc += share;
        let end = if c + 1 == shares.len() {
            items.len()
        } else {
            ((acc * items.len() as f64).round() as usize).clamp(start, items.len())
        };
        out[c].extend_from_slice(&items[start..end]);
        start = end;
    }
}

/// Per-class label skew: each class is split among clients by a fresh Dirichlet(`alpha`) draw.
/// Redraws (up to 100 times) until every client holds at least one sample.
pub fn dirichlet(
    labels: &[u32],
    classes: usize,
    clients: usize,
    alpha: f64,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    let mut rng = rng::stream("deai-learn/partition/dirichlet", &[seed]);
    for _ in 0..100 {
        let mut out = vec![Vec::new(); clients];
        for class in 0..classes as u32 {
            let mut members: Vec<usize> =
                (0..labels.len()).filter(|&i| labels[i] == class).collect();
            members.shuffle(&mut rng);
            cut(
                &members,
                &dirichlet_draw(&mut rng, alpha, clients),
                &mut out,
            );
        }
        if out.iter().all(|c| !c.is_empty()) {
            out.iter_mut().for_each(|c| c.sort_unstable());
            return Ok(out);
        }
    }
    Err(LearnError::config(
        "partition",
        format!("dirichlet:{alpha}"),
        "some client stays empty",
    ))
}

/// Quantity skew: client sizes from Dirichlet(`alpha`), at least one sample each.
pub fn quantity(n: usize, clients: usize, alpha: f64, seed: u64) -> Result<Vec<Vec<usize>>> {
    let mut rng = rng::stream("deai-learn/partition/quantity", &[seed]);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    // One sample each first, the rest by the drawn shares, so nobody is empty.
    let mut out: Vec<Vec<usize>> = order[..clients].iter().map(|&i| vec![i]).collect();
    cut(
        &order[clients..],
        &dirichlet_draw(&mut rng, alpha, clients),
        &mut out,
    );
    out.iter_mut().for_each(|c| c.sort_unstable());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn covers_once(parts: &[Vec<usize>], n: usize) -> bool {
        let mut all: Vec<usize> = parts.iter().flatten().copied().collect();
        all.sort_unstable();
        all == (0..n).collect::<Vec<_>>()
    }

    #[test]
    fn digits_shards_match_the_task() {
        let labels: Vec<u32> = (0..1438).map(|i| (i * 7 % 10) as u32).collect();
        let parts = shards(&labels, 100, 2);
        assert!(covers_once(&parts, 1438));
        // 200 shards: the first 38 have 8 samples, the rest 7.
        assert_eq!(parts[0].len(), 8 + 7);
        assert_eq!(parts[37].len(), 8 + 7);
        assert_eq!(parts[38].len(), 7 + 7);
        let iid = iid(1438, 100);
        assert_eq!((iid[37].len(), iid[38].len()), (15, 14));
        assert_eq!(iid[3][..2], [3, 103]);
    }

    proptest! {
        #[test]
        fn partitions_cover_every_sample_once(
            labels in proptest::collection::vec(0u32..5, 20..200),
            clients in 1usize..20,
            seed in 0u64..1000,
        ) {
            prop_assume!(clients <= labels.len());
            for p in [Partition::Iid, Partition::Shards, Partition::Quantity(0.5)] {
                let parts = split(&p, &labels, 5, clients, seed).expect("valid config");
                prop_assert_eq!(parts.len(), clients);
                prop_assert!(covers_once(&parts, labels.len()), "{p}");
            }
            if let Ok(parts) = split(&Partition::Dirichlet(1.0), &labels, 5, clients, seed) {
                prop_assert!(covers_once(&parts, labels.len()));
                prop_assert!(parts.iter().all(|c| !c.is_empty()));
            }
        }
    }

    #[test]
    fn parses_names() {
        assert_eq!(
            "dirichlet:0.5".parse::<Partition>().ok(),
            Some(Partition::Dirichlet(0.5))
        );
        assert!("dirichlet:-1".parse::<Partition>().is_err());
        assert!("bogus".parse::<Partition>().is_err());
    }
}
