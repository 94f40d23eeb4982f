//! Prints the markdown table of `docs/secagg.md`: our `k`, `t` and corrupt-neighbour bound `c`
//! next to the values published by Google's production parameter finder (σ = 40, η = 20), and
//! whether the published pair meets the semi-malicious bound `2t > k + 1 + c` (with `c` the
//! same σ = 40 quantile at the published `k`).

use deai_secagg::params::{Adversary, Params, corrupt_neighbours_bound};

/// (n, corrupt, dropout, adversary, published k, published t), from
/// `google-parfait/federated-compute` `fcp/secagg/server/graph_parameter_finder_test.cc`.
const PUBLISHED: &[(u32, f64, f64, Adversary, u32, u32)] = &[
    (100, 0.45, 0.45, Adversary::SemiHonest, 92, 46),
    (1000, 0.45, 0.45, Adversary::SemiHonest, 822, 417),
    (10, 0.33, 0.33, Adversary::SemiHonest, 8, 4),
    (100, 0.33, 0.33, Adversary::SemiHonest, 68, 34),
    (1000, 0.33, 0.33, Adversary::SemiHonest, 286, 150),
    (10000, 0.33, 0.33, Adversary::SemiHonest, 422, 221),
    (100000, 0.33, 0.33, Adversary::SemiHonest, 480, 251),
    (100, 0.05, 0.33, Adversary::SemiHonest, 28, 6),
    (1000, 0.05, 0.33, Adversary::SemiHonest, 72, 24),
    (10000, 0.05, 0.33, Adversary::SemiHonest, 86, 29),
    (100, 0.33, 0.05, Adversary::SemiHonest, 34, 29),
    (1000, 0.33, 0.05, Adversary::SemiHonest, 78, 60),
    (100, 0.05, 0.05, Adversary::SemiHonest, 12, 6),
    (1000, 0.05, 0.05, Adversary::SemiHonest, 30, 17),
    (10000, 0.05, 0.05, Adversary::SemiHonest, 34, 20),
    (1000000, 0.05, 0.05, Adversary::SemiHonest, 38, 22),
    (1000, 0.0, 0.33, Adversary::SemiHonest, 38, 2),
    (100, 0.3, 0.3, Adversary::SemiMalicious, 92, 62),
    (1000, 0.3, 0.3, Adversary::SemiMalicious, 872, 584),
    (10000, 0.3, 0.3, Adversary::SemiMalicious, 4822, 3230),
    (100, 0.05, 0.33, Adversary::SemiMalicious, 72, 39),
    (1000, 0.05, 0.33, Adversary::SemiMalicious, 398, 223),
    (100, 0.33, 0.05, Adversary::SemiMalicious, 42, 37),
    (1000, 0.33, 0.05, Adversary::SemiMalicious, 132, 109),
    (100, 0.05, 0.05, Adversary::SemiMalicious, 16, 11),
    (1000, 0.05, 0.05, Adversary::SemiMalicious, 52, 37),
    (10000, 0.05, 0.05, Adversary::SemiMalicious, 62, 44),
];

fn main() {
    println!(
        "| n | corrupt | dropout | server | k (ours) | t (ours) | c (ours) | k (published) | t (published) | published 2t > k+1+c |"
    );
    println!("|---:|---:|---:|---|---:|---:|---:|---:|---:|---|");
    for &(n, c, d, adversary, k, t) in PUBLISHED {
        let ours = Params::for_threat_model(n, c, d, 40, 20, adversary);
        let (ok, ot, oc) = ours.map_or((0, 0, 0), |p| {
            (p.degree, p.threshold, p.corrupt_neighbours_max)
        });
        let published_c = corrupt_neighbours_bound(n, c, k, 40);
        let meets = match adversary {
            Adversary::SemiHonest => "n/a".to_string(),
            Adversary::SemiMalicious if 2 * t > k + 1 + published_c => "yes".to_string(),
            Adversary::SemiMalicious => format!("no (c = {published_c})"),
        };
        println!("| {n} | {c} | {d} | {adversary:?} | {ok} | {ot} | {oc} | {k} | {t} | {meets} |");
    }
}
