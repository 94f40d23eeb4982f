//! Bucketing (Karimireddy, He & Jaggi, ICLR 2022): shuffle the round's replies, average them in
//! buckets of `s`, and hand the bucket means to a robust rule.
//!
//! Averaging pairs of honest updates from different clients shrinks their spread (the non-IID
//! heterogeneity robust rules mistake for attacks) while an attacker still spoils at most the one
//! bucket it lands in. The shuffle is a pure function of the round and its clients (replayable);
//! a deployment facing adaptive attackers would key it with a server secret.

use rand::seq::SliceRandom;

use super::{Failure, Reply, Sampling, Strategy, checked_params};
use crate::error::{LearnError, Result};
use crate::params::WeightedSum;
use crate::rng;

/// A robust rule applied to bucket means.
pub struct Bucketing {
    inner: Box<dyn Strategy>,
    size: usize,
}

impl Bucketing {
    /// Buckets of `size` replies (the last may be smaller) fed to `inner`.
    pub fn new(inner: Box<dyn Strategy>, size: usize) -> Self {
        Self {
            inner,
            size: size.max(1),
        }
    }
}

/// The bucket means of `replies` (sample-weighted), each carrying its members' sample count.
pub fn bucket_means(round: u64, replies: &[Reply], len: usize, size: usize) -> Result<Vec<Reply>> {
    let models = checked_params(replies, len)?;
    if models.is_empty() {
        return Err(LearnError::NoReplies { round });
    }
    let ids: Vec<u64> = std::iter::once(round)
        .chain(replies.iter().map(|r| r.client))
        .collect();
    let mut order: Vec<usize> = (0..replies.len()).collect();
    order.shuffle(&mut rng::stream("deai-learn/bucketing", &ids));
    Ok(order
        .chunks(size.max(1))
        .enumerate()
        .map(|(b, members)| {
            let mut sum = WeightedSum::new(len);
            let mut samples = 0;
            for &i in members {
                sum.add(models[i], replies[i].samples as f64);
                samples += replies[i].samples;
            }
            Reply {
                client: b as u64,
                params: sum.mean().expect("a bucket has a member"),
                samples,
                loss_before: None,
            }
        })
        .collect())
}

impl Strategy for Bucketing {
    fn name(&self) -> String {
        format!("bucketed({})-{}", self.size, self.inner.name())
    }

    fn sampling(&self) -> Sampling {
        self.inner.sampling()
    }

    fn aggregate_train(
        &mut self,
        round: u64,
        global: &[f32],
        replies: Vec<Reply>,
        failures: &[Failure],
    ) -> Result<Vec<f32>> {
        // The trait's own `aggregate_train` feeds a streaming rule through accept/finish.
        let buckets = bucket_means(round, &replies, global.len(), self.size)?;
        self.inner.aggregate_train(round, global, buckets, failures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::tests::reply;

    #[test]
    fn buckets_keep_the_weighted_mean_and_every_sample() {
        let replies: Vec<Reply> = (0..7)
            .map(|c| reply(c, vec![c as f32, -(c as f32)], 1 + c))
            .collect();
        let buckets = bucket_means(3, &replies, 2, 2).expect("valid");
        assert_eq!(buckets.len(), 4);
        let total: u64 = buckets.iter().map(|b| b.samples).sum();
        assert_eq!(total, replies.iter().map(|r| r.samples).sum::<u64>());
        let mean = |rs: &[Reply]| {
            let mut s = WeightedSum::new(2);
            rs.iter().for_each(|r| s.add(&r.params, r.samples as f64));
            s.mean().expect("non-empty")
        };
        let (a, b) = (mean(&replies), mean(&buckets));
        assert!(
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5),
            "{a:?} {b:?}"
        );
        // Deterministic per round, different across rounds.
        let again = bucket_means(3, &replies, 2, 2).expect("valid");
        assert_eq!(buckets, again);
        let other = bucket_means(4, &replies, 2, 2).expect("valid");
        assert!((0..9).any(|r| bucket_means(r, &replies, 2, 2).expect("valid") != other));
    }
}
