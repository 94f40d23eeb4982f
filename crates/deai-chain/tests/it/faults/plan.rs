//! What one seed does: every fault, its victim and its timing, drawn from the seed before the
//! simulation starts, so a failing seed's plan prints in full and replays exactly.

use std::time::Duration;

/// Validators in the simulation; one is Byzantine, so f = 1.
pub(super) const VALIDATORS: usize = 4;

/// A small deterministic generator (SplitMix64): the plan must not depend on the runtime's RNG,
/// whose draws shift whenever the chain's code changes what it draws.
pub(super) struct Draw(u64);

impl Draw {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed ^ 0x6a09_e667_f3bc_c908)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0; the bias of a modulus this small is irrelevant here).
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub(super) fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }

    pub(super) fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }

    /// A uniformly shuffled copy of `items`.
    pub(super) fn shuffled<T: Clone>(&mut self, items: &[T]) -> Vec<T> {
        let mut v = items.to_vec();
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
        v
    }
}

/// How the network splits while partitioned (validator indices; the Byzantine one included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Partition {
    /// Two sides of two: neither holds a quorum of three.
    Halves([usize; 2], [usize; 2]),
    /// One validator cut off from the other three.
    Isolate(usize),
}

impl Partition {
    /// Whether `a` and `b` are on different sides.
    pub(super) fn separates(&self, a: usize, b: usize) -> bool {
        match self {
            Self::Halves(x, _) => x.contains(&a) != x.contains(&b),
            Self::Isolate(v) => (a == *v) != (b == *v),
        }
    }
}

/// A stretch of simulated time from the start of the run; `until: None` lasts to the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Window {
    pub(super) from: Duration,
    pub(super) until: Option<Duration>,
}

impl Window {
    pub(super) fn contains(&self, t: Duration) -> bool {
        t >= self.from && self.until.is_none_or(|u| t < u)
    }

    fn draw(d: &mut Draw) -> Self {
        let from = d.ms(0, 15_000);
        let until = (!d.percent(40)).then(|| from + d.ms(5_000, 30_000));
        Self { from, until }
    }
}

/// The Byzantine validator's second identity: another process signing with the same key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Twin {
    /// One process only.
    None,
    /// A second full validator (the chain's own engine) that talks to `secondary` while the
    /// first talks to `primary`: two proposals and two sets of votes for the same views.
    Engine {
        primary: Vec<usize>,
        secondary: Vec<usize>,
    },
    /// Commonware's `Conflicter` beside the validator: for every notarize or finalize vote it
    /// hears from `secondary`, it signs one for a random block and one for the real block.
    Conflicter { secondary: Vec<usize> },
    /// Commonware's `Nuller` beside the validator: for every notarize it hears from
    /// `secondary`, it signs both a nullify and a finalize for that view.
    Nuller { secondary: Vec<usize> },
}

/// Which of its own votes the Byzantine validator's main process does not send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Withheld {
    Finalize,
    NotarizeAndFinalize,
    All,
}

/// What a tampered proposal gets wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Deed {
    /// Invalid block: a parent state root this chain never had.
    WrongStateRoot,
    /// Invalid block: claims another validator as proposer (and its fees).
    WrongProposer,
    /// Invalid block: one transaction more than a block may hold.
    Oversized,
    /// Invalid block: a height that does not follow its parent.
    WrongHeight,
    /// Invalid block: a parent other than the one consensus named.
    WrongParent,
    /// Valid block, invalid transaction: a transfer from an honest account to a thief, signed
    /// by the wrong key.
    BadSignature,
    /// Valid block, invalid transaction: an honest transaction that already finalized, again.
    ReplayedNonce,
    /// Valid block, invalid transaction: a transfer to the thief with a nonce ahead of its
    /// sender's.
    FutureNonce,
}

impl Deed {
    pub(super) const ALL: [Deed; 8] = [
        Deed::WrongStateRoot,
        Deed::WrongProposer,
        Deed::Oversized,
        Deed::WrongHeight,
        Deed::WrongParent,
        Deed::BadSignature,
        Deed::ReplayedNonce,
        Deed::FutureNonce,
    ];

    /// Whether the block itself is invalid (no honest validator may finalize it), rather than
    /// valid with a transaction the ledger rejects.
    pub(super) fn invalidates_block(self) -> bool {
        !matches!(
            self,
            Deed::BadSignature | Deed::ReplayedNonce | Deed::FutureNonce
        )
    }

    /// The ledger's rejection code for the transaction a tx-level deed adds.
    pub(super) fn rejection(self) -> Option<&'static str> {
        match self {
            Deed::BadSignature => Some("bad_signature"),
            Deed::ReplayedNonce => Some("nonce_replayed"),
            Deed::FutureNonce => Some("nonce_future"),
            _ => None,
        }
    }
}

/// Tampering with the Byzantine validator's proposals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Invalid {
    pub(super) deeds: Vec<Deed>,
    /// Chance (in percent) that a proposal inside the window is tampered with.
    pub(super) percent: u64,
    pub(super) window: Window,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) seed: u64,
    pub(super) byzantine: usize,
    /// The honest validator crashed and restarted.
    pub(super) crashed: usize,
    pub(super) latency: Duration,
    pub(super) jitter: Duration,
    pub(super) success_percent: u64,
    pub(super) partition: Partition,
    pub(super) partition_at: Duration,
    pub(super) heal_at: Duration,
    pub(super) crash_at: Duration,
    pub(super) restart_at: Duration,
    pub(super) twin: Twin,
    pub(super) withhold: Option<(Withheld, Window)>,
    pub(super) invalid: Option<Invalid>,
    /// Honest transactions submitted before everything heals, and after.
    pub(super) txs_before: usize,
    pub(super) txs_after: usize,
}

impl Plan {
    pub(super) fn draw(seed: u64) -> Self {
        let mut d = Draw::new(seed);
        let order = d.shuffled(&[0, 1, 2, 3]);
        let byzantine = order[0];
        let honest: Vec<usize> = (0..VALIDATORS).filter(|&i| i != byzantine).collect();
        let crashed = honest[d.below(honest.len())];
        let partition = if d.percent(50) {
            let o = d.shuffled(&[0, 1, 2, 3]);
            Partition::Halves([o[0], o[1]], [o[2], o[3]])
        } else {
            Partition::Isolate(d.below(VALIDATORS))
        };
        let partition_at = d.ms(2_000, 10_000);
        let heal_at = partition_at + d.ms(4_000, 20_000);
        let crash_at = d.ms(1_000, 20_000);
        let restart_at = crash_at + d.ms(2_000, 15_000);
        let twin = Self::draw_twin(&mut d, &honest);
        let withhold = d.percent(50).then(|| {
            let what = [
                Withheld::Finalize,
                Withheld::NotarizeAndFinalize,
                Withheld::All,
            ];
            (what[d.below(3)], Window::draw(&mut d))
        });
        let invalid = d.percent(75).then(|| {
            let deeds: Vec<Deed> = Deed::ALL.into_iter().filter(|_| d.percent(50)).collect();
            Invalid {
                deeds: if deeds.is_empty() {
                    vec![Deed::ALL[d.below(Deed::ALL.len())]]
                } else {
                    deeds
                },
                percent: d.range(30, 100),
                window: Window::draw(&mut d),
            }
        });
        let mut plan = Self {
            seed,
            byzantine,
            crashed,
            latency: d.ms(5, 60),
            jitter: d.ms(1, 10),
            success_percent: d.range(88, 99),
            partition,
            partition_at,
            heal_at,
            crash_at,
            restart_at,
            twin,
            withhold,
            invalid,
            txs_before: d.range(6, 16) as usize,
            txs_after: d.range(3, 8) as usize,
        };
        // A seed whose Byzantine validator behaves tests nothing Byzantine.
        if plan.twin == Twin::None && plan.withhold.is_none() && plan.invalid.is_none() {
            plan.twin = Twin::Conflicter {
                secondary: honest.clone(),
            };
        }
        plan
    }

    fn draw_twin(d: &mut Draw, honest: &[usize]) -> Twin {
        let h = d.shuffled(honest);
        let some = |d: &mut Draw| -> Vec<usize> {
            let n = d.range(1, 3) as usize;
            let mut v = h[..n].to_vec();
            v.sort_unstable();
            v
        };
        match d.below(4) {
            0 => Twin::None,
            1 => {
                // Disjoint halves (the classic twin attack), overlapping halves, or both twins
                // in full view of everyone.
                let (mut primary, mut secondary) = match d.below(3) {
                    0 => (h[..2].to_vec(), h[2..].to_vec()),
                    1 => (h[..2].to_vec(), h[1..].to_vec()),
                    _ => (h.clone(), h.clone()),
                };
                primary.sort_unstable();
                secondary.sort_unstable();
                Twin::Engine { primary, secondary }
            }
            2 => Twin::Conflicter { secondary: some(d) },
            _ => Twin::Nuller { secondary: some(d) },
        }
    }

    /// When every fault but the Byzantine validator is over: links healed and the crashed
    /// validator back.
    pub(super) fn healed_at(&self) -> Duration {
        self.heal_at.max(self.restart_at)
    }

    /// The honest validators' indices.
    pub(super) fn honest(&self) -> Vec<usize> {
        (0..VALIDATORS).filter(|&i| i != self.byzantine).collect()
    }

    /// The honest peers the Byzantine validator's main process talks to.
    pub(super) fn primary(&self) -> Vec<usize> {
        match &self.twin {
            Twin::Engine { primary, .. } => primary.clone(),
            _ => self.honest(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweep is only as good as its spread: over a thousand seeds every fault shows up
    /// often, in every role, and plans differ from seed to seed.
    #[test]
    fn plans_cover_every_fault_and_role() {
        let plans: Vec<Plan> = (0..1000).map(Plan::draw).collect();
        let count = |f: &dyn Fn(&Plan) -> bool| plans.iter().filter(|p| f(p)).count();
        for i in 0..VALIDATORS {
            assert!(count(&|p| p.byzantine == i) > 150, "byzantine {i}");
            assert!(count(&|p| p.crashed == i) > 100, "crashed {i}");
        }
        for deed in Deed::ALL {
            let n = count(&|p| p.invalid.as_ref().is_some_and(|v| v.deeds.contains(&deed)));
            assert!(n > 250, "{deed:?} in {n} plans");
        }
        assert!(count(&|p| matches!(p.twin, Twin::Engine { .. })) > 150);
        assert!(count(&|p| matches!(p.twin, Twin::Conflicter { .. })) > 150);
        assert!(count(&|p| matches!(p.twin, Twin::Nuller { .. })) > 150);
        assert!(count(&|p| p.withhold.is_some()) > 400);
        assert!(count(&|p| matches!(p.partition, Partition::Halves(..))) > 400);
        assert!(count(&|p| p.partition == Partition::Isolate(p.byzantine)) > 50);
        assert!(count(&|p| p.crash_at < p.heal_at && p.restart_at > p.partition_at) > 200);
        assert!(
            plans.iter().all(|p| p.crashed != p.byzantine),
            "the crashed validator is honest"
        );
        assert_ne!(Plan::draw(1), Plan::draw(2));
        assert_eq!(Plan::draw(7), Plan::draw(7));
    }
}
