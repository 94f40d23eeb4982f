//! A round's plan, recomputed identically by the coordinator, every owner and any verifier from
//! public inputs ([`RoundInfo`] and the [`TaskSpec`]): the scoring groups, the secure-aggregation
//! configuration of each group, the quantizer and the noise each owner adds.
//!
//! # Groups
//!
//! The selected datasets are ranked by `BLAKE3("deai/fed/groups/v1" || seed || id u64 BE)` (ties
//! by id) and cut in that order into `g = ⌊n / group_size_min⌋` groups whose sizes differ by at
//! most one, so each has at least `group_size_min` members; members are listed ascending and a
//! member's SecAgg client id is its position. The seed is the ledger's round seed, fresh every
//! round, so groups are redrawn each round and no one picks their group.
//!
//! # Secure aggregation per group
//!
//! Each group runs its own SecAgg+ instance, so the coordinator learns the group sums (which
//! scoring needs) and nothing finer. Parameters come from
//! [`Params::for_threat_model`] (at most [`CORRUPT_FRACTION`] corrupt, [`DROPOUT_FRACTION`]
//! dropping, semi-malicious server, 40/20 bits) where those fractions of the group are at least
//! one client each and the analysis finds a graph; smaller groups (the usual case: fewer than
//! 5) take the complete graph (`k = n − 1`) with threshold `t = ⌈2n/3⌉`: a majority, so a server lying about dropouts cannot collect both kinds of a
//! client's shares, and a group of 4 survives one dropout. The ledger's single
//! [`SecAggParams`] records `n` = datasets selected, `t` = the smallest group threshold (the
//! fewest survivors any completed group has) and `k = max(largest group degree, t)`.
//!
//! # Noise
//!
//! The coordinator sees every completed group's sum, so each group sum must carry DP noise on its
//! own. A completed group has at least `r_g` survivors ([`survivors_required`]: all but the
//! `⌊DROPOUT_FRACTION · n_g⌋` dropouts the threat model allows, at least one, and never fewer
//! than the threshold `t_g`; every honest member refuses to sign a shorter survivor list), of
//! which up to `c_g = ⌊CORRUPT_FRACTION · n_g⌋` may collude with the coordinator and subtract
//! their own noise. With `m = min_g (r_g − c_g)`, each owner adds `N(0, (σC)²/m)` per
//! coordinate, so every released
//! group sum (and the round's total) carries noise of standard deviation at least `σC` from
//! honest owners alone: the Gaussian mechanism for sensitivity `C` under the stated threat model.
//! (Calibrating for `m = t` instead, as before, left a group of 8 with `√(2/3)·σC ≈ 0.82·σC`
//! of honest noise once one member colluded.)

use std::collections::BTreeMap;
use std::sync::Arc;

use deai_learn::model::ModelKind;
use deai_ledger::{Digest, SecAggParams};
use deai_secagg::config::RoundConfig;
use deai_secagg::params::{Adversary, Params};
use deai_secagg::quant::Quantizer;
use ed25519_dalek::VerifyingKey;

use super::{FedError, RoundInfo, TaskSpec};

/// Fraction of a group assumed to collude with the coordinator (threat-model parameters).
pub const CORRUPT_FRACTION: f64 = 0.2;
/// Fraction of a group assumed to drop out.
pub const DROPOUT_FRACTION: f64 = 0.2;
/// The quantizer's range is `C + QUANT_RANGE_STDS · noise std`: a noised coordinate falls
/// outside (and is clamped) with probability below 10⁻⁴.
pub const QUANT_RANGE_STDS: f64 = 4.0;

/// One scoring group and its secure-aggregation round.
#[derive(Debug, Clone)]
pub struct Group {
    /// Position among the round's groups.
    pub index: u32,
    /// Dataset ids, ascending; a member's SecAgg client id is its position here.
    pub members: Vec<u64>,
    /// Graph degree and threshold.
    pub params: Params,
    /// Survivors its members require before they help unmask it ([`survivors_required`]).
    pub survivors_required: u32,
    /// The SecAgg configuration every member and the coordinator use.
    pub config: Arc<RoundConfig>,
}

/// Everything about a round that follows from public inputs.
#[derive(Debug, Clone)]
pub struct RoundPlan {
    /// The model architecture.
    pub kind: ModelKind,
    /// The groups, in rank order.
    pub groups: Vec<Group>,
    /// Clipping range and levels of every owner's quantized update.
    pub quantizer: Quantizer,
    /// The fewest survivors a completed group sum has (`min_g t_g`).
    pub survivors_min: u32,
    /// `m`: the fewest honest survivors a completed group sum has (`min_g (r_g − c_g)`).
    pub honest_min: u32,
    /// Standard deviation of each owner's per-coordinate noise, `σC/√m`.
    pub noise_std: f64,
    /// What `RoundOpen` records.
    pub secagg: SecAggParams,
    /// Dataset id → (group index, SecAgg client id).
    pub position: BTreeMap<u64, (usize, u32)>,
}

fn tagged_hash(tag: &[u8], info: &RoundInfo, extra: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(tag);
    h.update(&info.task.to_be_bytes());
    h.update(&info.round.to_be_bytes());
    h.update(&info.seed.0);
    h.update(extra);
    *h.finalize().as_bytes()
}

/// Deals `selected` into groups of at least `group_size_min` (see the module docs). `selected`
/// must hold at least `group_size_min` ids; the output does not depend on their order.
pub fn assign(seed: &Digest, selected: &[u64], group_size_min: u32) -> Vec<Vec<u64>> {
    let mut ranked: Vec<([u8; 32], u64)> = selected
        .iter()
        .map(|&id| {
            let mut h = blake3::Hasher::new();
            h.update(b"deai/fed/groups/v1");
            h.update(&seed.0);
            h.update(&id.to_be_bytes());
            (*h.finalize().as_bytes(), id)
        })
        .collect();
    ranked.sort_unstable();
    let mut it = ranked.into_iter().map(|(_, id)| id);
    group_sizes(selected.len(), group_size_min)
        .into_iter()
        .map(|size| {
            let mut members: Vec<u64> = it.by_ref().take(size).collect();
            members.sort_unstable();
            members
        })
        .collect()
}

/// Sizes of the groups `n` selected datasets form: `⌊n / group_size_min⌋` groups (at least
/// one), the first `n mod g` one larger. Depends on nothing else, so the SecAgg parameters a
/// `RoundOpen` records are known before the ledger fixes the round seed.
pub fn group_sizes(n: usize, group_size_min: u32) -> Vec<usize> {
    let g = (n / group_size_min.max(1) as usize).max(1);
    let (base, extra) = (n / g, n % g);
    (0..g).map(|i| base + usize::from(i < extra)).collect()
}

/// What `RoundOpen.secagg` records for `n` selected datasets (see the module docs).
pub fn secagg_params(n: usize, group_size_min: u32) -> SecAggParams {
    let params: Vec<Params> = group_sizes(n, group_size_min)
        .into_iter()
        .map(|size| group_params(size as u32))
        .collect();
    let t = params.iter().map(|p| p.threshold).min().unwrap_or(1);
    let degree_max = params.iter().map(|p| p.degree).max().unwrap_or(1);
    SecAggParams {
        n: n as u32,
        k: degree_max.max(t),
        t,
    }
}

/// Members of a group of `n` assumed to collude with the coordinator: `⌊CORRUPT_FRACTION · n⌋`.
pub fn colluders(n: u32) -> u32 {
    (CORRUPT_FRACTION * f64::from(n) + 1e-9).floor() as u32
}

/// Survivors `r` a group of `n` must keep for its honest members to sign the survivor list
/// and unmask it: all but the dropouts the threat model allows (`⌊DROPOUT_FRACTION · n⌋`, at
/// least one), and never fewer than the SecAgg threshold. An owner refuses a shorter list, so
/// every completed group sum holds at least `r` updates: a large group's noise is then sized for
/// the 80 % that must survive rather than for the threshold of a sparse graph, which is far
/// lower (a group of 100 has `t` = 42 but `r` = 80).
pub fn survivors_required(n: u32) -> u32 {
    let may_drop = ((DROPOUT_FRACTION * f64::from(n) + 1e-9).floor() as u32).max(1);
    group_params(n).threshold.max(n.saturating_sub(may_drop))
}

/// `m = min_g (r_g − c_g)` for `n` selected datasets ([`survivors_required`] less the
/// colluders): the fewest honest owners whose noise is in any completed group sum (at least 1).
pub fn honest_survivors_min(n: usize, group_size_min: u32) -> u32 {
    group_sizes(n, group_size_min)
        .into_iter()
        .map(|size| {
            let size = size as u32;
            survivors_required(size).saturating_sub(colluders(size))
        })
        .min()
        .unwrap_or(1)
        .max(1)
}

/// Degree and threshold for a group of `n` (see the module docs for the fallback).
pub fn group_params(n: u32) -> Params {
    // The analysis rounds `fraction × n` down: below one corrupt client and one dropout it
    // would plan for neither (a group of 4 got a ring with threshold 2), so small groups
    // take the complete graph instead.
    let whole = |fraction: f64| (fraction * f64::from(n) + 1e-9).floor() >= 1.0;
    if !(whole(CORRUPT_FRACTION) && whole(DROPOUT_FRACTION)) {
        return complete_graph(n);
    }
    let analysed = Params::for_threat_model(
        n,
        CORRUPT_FRACTION,
        DROPOUT_FRACTION,
        40,
        20,
        Adversary::SemiMalicious,
    );
    match analysed {
        Ok(p) if p.threshold <= p.degree => p,
        _ => complete_graph(n),
    }
}

/// Every member neighbours every other; a two-thirds majority reconstructs. With `c =
/// ⌊0.2n⌋` colluders among the `n − 1` neighbours, `2⌈2n/3⌉ ≥ 4n/3 > n + c = k + 1 + c`: the
/// malicious-model bound holds.
fn complete_graph(n: u32) -> Params {
    Params {
        clients: n,
        degree: n.saturating_sub(1),
        threshold: (2 * n).div_ceil(3),
        corrupt_neighbours_max: colluders(n).min(n.saturating_sub(1)),
    }
}

/// Each owner's noise std and the quantizer of a round that selected `n` datasets: the noise
/// is sized so the least number of honest survivors a group can have still adds `σ·C`, and the
/// quantizer's range covers the clipped update plus that noise.
pub fn noise_and_quantizer(spec: &TaskSpec, n: usize) -> Result<(f64, Quantizer), FedError> {
    let honest_min = honest_survivors_min(n, spec.group_size_min);
    let clip = f64::from(spec.clip_norm);
    let noise_std = spec.noise_multiplier * clip / f64::from(honest_min).sqrt();
    let range = clip + QUANT_RANGE_STDS * noise_std;
    Ok((
        noise_std,
        Quantizer::new(range as f32, spec.quant_level_bits)?,
    ))
}

impl RoundPlan {
    /// Builds the plan; fails if the spec is invalid, the selection is malformed, a selected
    /// dataset has no identity, or fewer than `group_size_min` datasets were selected.
    pub fn new(spec: &TaskSpec, info: &RoundInfo) -> Result<Self, FedError> {
        spec.validate()?;
        let kind = spec.model_kind()?;
        if info.selected.windows(2).any(|w| w[0] >= w[1]) {
            return Err(FedError::Selection(
                "selected ids must be strictly ascending".into(),
            ));
        }
        let n = info.selected.len();
        if n < spec.group_size_min as usize {
            return Err(FedError::TooFewSelected {
                got: n,
                need: spec.group_size_min,
            });
        }
        if n > super::spec::DATASETS_MAX as usize {
            return Err(FedError::Selection(format!("{n} datasets selected")));
        }
        let secagg = secagg_params(n, spec.group_size_min);
        let survivors_min = secagg.t;
        let honest_min = honest_survivors_min(n, spec.group_size_min);
        let (noise_std, quantizer) = noise_and_quantizer(spec, n)?;
        let vector_len = u32::try_from(kind.num_params() + 1)
            .map_err(|_| FedError::Selection("model too large for SecAgg".into()))?;
        let mut groups = Vec::new();
        let mut position = BTreeMap::new();
        for (g, members) in assign(&info.seed, &info.selected, spec.group_size_min)
            .into_iter()
            .enumerate()
        {
            for (i, id) in members.iter().enumerate() {
                position.insert(*id, (g, i as u32));
            }
            groups.push(Group::new(info, g, members, &quantizer, vector_len)?);
        }
        Ok(Self {
            kind,
            groups,
            quantizer,
            survivors_min,
            honest_min,
            noise_std,
            secagg,
            position,
        })
    }
}

impl Group {
    /// Group `g` of the round: its SecAgg round id and graph seed are bound to the task,
    /// round, round seed and group index, so adverts signed for one group or round are
    /// worthless in any other.
    fn new(
        info: &RoundInfo,
        g: usize,
        members: Vec<u64>,
        quantizer: &Quantizer,
        vector_len: u32,
    ) -> Result<Self, FedError> {
        let params = group_params(members.len() as u32);
        let identities = members
            .iter()
            .map(|id| {
                info.identities
                    .get(id)
                    .copied()
                    .ok_or(FedError::NoIdentity(*id))
            })
            .collect::<Result<Vec<VerifyingKey>, _>>()?;
        let extra = (g as u64).to_be_bytes();
        let round_id = tagged_hash(b"deai/fed/secagg-round/v1", info, &extra);
        let round_id = u64::from_be_bytes(round_id[..8].try_into().expect("8 bytes"));
        let config = RoundConfig::new(
            round_id,
            params,
            vector_len,
            quantizer.modulus_bits(params.clients, 1)?,
            tagged_hash(b"deai/fed/graph/v1", info, &extra),
            identities,
        )?;
        Ok(Self {
            index: g as u32,
            survivors_required: survivors_required(members.len() as u32),
            members,
            params,
            config: Arc::new(config),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_stable_balanced_and_seeded() {
        let ids: Vec<u64> = (10..20).collect();
        let seed = Digest([3; 32]);
        let a = assign(&seed, &ids, 4);
        assert_eq!(a.len(), 2);
        assert!(
            a.iter()
                .all(|g| g.len() == 5 && g.windows(2).all(|w| w[0] < w[1]))
        );
        let mut all: Vec<u64> = a.concat();
        all.sort_unstable();
        assert_eq!(all, ids);
        let mut rev = ids.clone();
        rev.reverse();
        assert_eq!(assign(&seed, &rev, 4), a, "input order does not matter");
        assert_ne!(
            assign(&Digest([4; 32]), &ids, 4),
            a,
            "the seed redraws groups"
        );
        let sizes: Vec<usize> = assign(&seed, &(0..11).collect::<Vec<_>>(), 3)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [4, 4, 3]);
        assert_eq!(assign(&seed, &ids[..3], 4).len(), 1);
    }

    #[test]
    fn small_groups_use_the_complete_graph_with_a_two_thirds_threshold() {
        for (n, t) in [(3, 2), (4, 3), (5, 4)] {
            let p = group_params(n);
            assert_eq!((p.degree, p.threshold), (n - 1, t), "n = {n}");
        }
        // From one corrupt client and one dropout on, the SecAgg+ analysis gives sparse graphs.
        // A group of 8 got k = 4, t = 3 before the malicious-model bound was corrected: with one
        // corrupt neighbour, 3 + 3 shares of both of a client's secrets could be collected.
        let p = group_params(8);
        assert_eq!((p.degree, p.threshold), (6, 5));
        let p = secagg_params(8, 4);
        assert_eq!((p.n, p.k, p.t), (8, 3, 3));
        assert_eq!(group_sizes(11, 3), [4, 4, 3]);
        let p = secagg_params(20, 8);
        assert!(
            p.n == 20 && p.k < 9,
            "two groups of 10: sparse graphs (k < 9): {p:?}"
        );
        for (n, m) in [(3, 3), (7, 3), (50, 4), (200, 50)] {
            let p = secagg_params(n, m);
            assert!(
                1 <= p.t && p.t <= p.k && p.k <= p.n,
                "ledger bounds for {n}/{m}: {p:?}"
            );
        }
        let big = group_params(200);
        assert!(big.degree < 199 && big.threshold <= big.degree, "{big:?}");
    }

    /// The malicious-model bound for every group size a round can have (3 to 1,000), whether
    /// the analysis or the complete-graph fallback picked the parameters: `2t > k + 1 + c`, so
    /// no split of a member's `k + 1` share holders (its own share included) gives a coordinator
    /// with `c` corrupt neighbours `t` shares of both of its secrets; `t ≤ k + 1`; and the
    /// honest noise of a completed group is at least `σC`.
    #[test]
    fn every_group_size_meets_the_malicious_bound_and_the_noise_floor() {
        for n in 3..=1000u32 {
            let p = group_params(n);
            let (k, t, c) = (p.degree, p.threshold, p.corrupt_neighbours_max);
            assert!(2 * t > k + 1 + c, "n = {n}: k = {k}, t = {t}, c = {c}");
            assert!(t <= k + 1 && k < n, "n = {n}: {p:?}");
            assert!(t > colluders(n), "n = {n}: colluders alone reach t");
        }
        for (selected, group_min) in [(8, 4), (8, 8), (20, 8), (30, 10), (100, 25), (999, 3)] {
            // Each owner adds variance (σC)²/m; every completed group has at least m honest
            // survivors, so its honest noise has variance at least (σC)².
            let m = honest_survivors_min(selected, group_min);
            for size in group_sizes(selected, group_min) {
                let size = size as u32;
                let required = survivors_required(size);
                assert!(required >= group_params(size).threshold && required < size);
                let honest = required - colluders(size);
                assert!(honest >= m, "{selected}/{group_min}: group of {size}");
            }
        }
        // A group of 8 (one colluder, one dropout allowed) calibrates for 6 honest survivors; a
        // group of 4 still survives one dropout; a group of 100 needs 80 (its threshold is 42).
        assert_eq!(honest_survivors_min(8, 8), 6);
        assert_eq!(survivors_required(4), 3);
        assert_eq!(
            (group_params(100).threshold, survivors_required(100)),
            (42, 80)
        );
    }
}
