//! Whole-protocol properties: masks cancel, aborts below threshold, the classic
//! lying-about-dropouts attack, uniformity of masked inputs, and isolation of bad clients.
// Tests assert on values they construct; `expect` documents why each step must succeed.

use std::collections::BTreeMap;
use std::sync::Arc;

use deai_secagg::client::{Client, ClientError, ClientPhase};
use deai_secagg::config::RoundConfig;
use deai_secagg::msg::{ClientBody, ServerBody, ServerMsg, ShareKind};
use deai_secagg::params::Params;
use deai_secagg::server::{Server, ServerError};
use deai_secagg::sim::{Fault, SimError, SimSpec, Step, run_round};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn spec(n: u32, k: u32, t: u32, dim: u32, seed: u64, faults: BTreeMap<u32, Fault>) -> SimSpec {
    let params = Params {
        clients: n,
        degree: k,
        threshold: t,
    };
    let mut spec = SimSpec::with_dropout(params, dim, 0.0, seed);
    spec.faults = faults;
    spec.verify = true;
    spec
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![Just(Step::Advert), Just(Step::Shares), Just(Step::Masked)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Complete graph: the round succeeds exactly when at least `t` masked inputs arrive, and
    /// then the unmasked sum equals the survivors' plain sum and re-verifies publicly.
    #[test]
    fn masks_cancel_iff_enough_survivors(
        n in 4u32..11,
        t_frac in 0.2f64..1.0,
        drops in proptest::collection::btree_map(0u32..11, step_strategy(), 0..8),
        seed in any::<u64>(),
    ) {
        let t = ((f64::from(n) * t_frac) as u32).clamp(2, n);
        let faults: BTreeMap<u32, Fault> = drops.into_iter().filter(|(c, _)| *c < n).map(|(c, s)| (c, Fault::Drop(s))).collect();
        let survivors = n - faults.len() as u32;
        match run_round(&spec(n, n - 1, t, 24, seed, faults)) {
            Ok(r) => {
                prop_assert!(survivors >= t);
                prop_assert!(r.exact && r.verified == Some(true));
                prop_assert_eq!(r.record.survivors.len() as u32, survivors);
            }
            Err(SimError::Aborted(ServerError::TooFewClients { need, .. })) => {
                prop_assert!(survivors < t, "aborted with {} survivors, t = {}", survivors, t);
                prop_assert_eq!(need, t as usize);
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }

    /// Sparse Harary graphs with dropouts at every step, the unmasking step included: whenever
    /// the round completes it is exact; otherwise it fails with a threshold error, never another.
    #[test]
    fn sparse_rounds_are_exact_or_fail_cleanly(
        n in 8u32..24,
        drops in proptest::collection::btree_map(0u32..24, prop_oneof![step_strategy(), Just(Step::Unmask)], 0..5),
        seed in any::<u64>(),
    ) {
        let faults = drops.into_iter().filter(|(c, _)| *c < n).map(|(c, s)| (c, Fault::Drop(s))).collect();
        match run_round(&spec(n, 6, 3, 16, seed, faults)) {
            Ok(r) => prop_assert!(r.exact && r.verified == Some(true)),
            Err(SimError::Aborted(ServerError::TooFewClients { .. } | ServerError::TooFewShares { .. })) => {}
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }
}

#[test]
fn round_aborts_below_threshold() {
    let faults = (0..4).map(|c| (c, Fault::Drop(Step::Masked))).collect();
    let err = run_round(&spec(8, 7, 5, 8, 1, faults)).expect_err("4 survivors < t = 5");
    assert!(matches!(
        err,
        SimError::Aborted(ServerError::TooFewClients {
            have: 4,
            need: 5,
            ..
        })
    ));
}

#[test]
fn bad_messages_exclude_only_their_sender() {
    for step in Step::ALL {
        for fault in [Fault::Truncate(step), Fault::WrongRound(step)] {
            let faults = [(3, fault)].into_iter().collect();
            let r = run_round(&spec(12, 6, 3, 16, 5, faults)).expect("one bad client is tolerated");
            assert!(r.exact, "{fault:?}");
            assert_eq!(r.excluded, vec![3], "{fault:?}");
            let in_sum = r.record.survivors.contains(&3);
            // Excluded before its masked input arrived: out of the sum; at unmasking its input
            // is already in and only its shares are ignored.
            assert_eq!(in_sum, step == Step::Unmask, "{fault:?}");
            assert_eq!(r.record.survivors.len(), if in_sum { 12 } else { 11 });
        }
    }
}

#[test]
fn rounds_are_deterministic_across_thread_counts() {
    let faults: BTreeMap<u32, Fault> = [
        (1, Fault::Drop(Step::Masked)),
        (6, Fault::Drop(Step::Shares)),
    ]
    .into_iter()
    .collect();
    let s = spec(16, 6, 3, 40, 9, faults);
    let a = run_round(&s).expect("round");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let b = pool.install(|| run_round(&s)).expect("round");
    assert_eq!(a.aggregate, b.aggregate);
    assert_eq!(a.record, b.record);
    assert_eq!(a.masked_inputs, b.masked_inputs);
}

/// Chi-square statistic of the top 8 bits of `bits`-bit words against uniform.
fn chi_square_top_byte(words: &[u32], bits: u32) -> f64 {
    let mut counts = [0u64; 256];
    for w in words {
        counts[(w >> (bits - 8)) as usize & 0xff] += 1;
    }
    let expected = words.len() as f64 / 256.0;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// A masked input looks uniform mod 2^b, even with its self mask stripped (the pairwise masks
/// alone hide it); the same test flags the input itself, and an input with no pairwise mask
/// left once the self mask is known.
#[test]
fn masked_inputs_are_indistinguishable_from_uniform() {
    let r = run_round(&spec(10, 4, 3, 16_383, 11, BTreeMap::new())).expect("round");
    let bits = r.modulus_bits;
    // df = 255: mean 255, sd ≈ 22.6; 400 is > 6 sd (false alarm < 1e-6).
    let limit = 400.0;
    let masked = &r.masked_inputs[0];
    assert!(chi_square_top_byte(masked, bits) < limit);
    let mut only_pairwise = masked.clone();
    deai_secagg::prg::apply_mask(
        &mut only_pairwise,
        &r.record.self_seeds[0],
        deai_secagg::prg::Sign::Sub,
    );
    deai_secagg::sim::reduce(&mut only_pairwise, bits);
    assert!(chi_square_top_byte(&only_pairwise, bits) < limit);
    // The sum of all masked inputs minus all self masks is the plain sum: not uniform.
    assert!(chi_square_top_byte(&r.aggregate, bits) > 10.0 * limit);
}

struct Manual {
    config: Arc<RoundConfig>,
    clients: Vec<Client>,
    rngs: Vec<ChaCha20Rng>,
    server: Server,
}

impl Manual {
    /// A round on the complete graph of `n` clients driven by hand up to the unmasking request.
    fn up_to_unmask(n: u32, t: u32) -> (Self, Vec<ServerMsg>) {
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let params = Params {
            clients: n,
            degree: n - 1,
            threshold: t,
        };
        let config = Arc::new(
            RoundConfig::new(
                3,
                params,
                8,
                20,
                [4; 32],
                keys.iter().map(SigningKey::verifying_key).collect(),
            )
            .expect("config"),
        );
        let mut rngs: Vec<ChaCha20Rng> = (0..n)
            .map(|i| ChaCha20Rng::seed_from_u64(u64::from(i)))
            .collect();
        let clients = (0..n)
            .map(|i| {
                Client::new(
                    config.clone(),
                    i,
                    &keys[i as usize],
                    vec![i; 8],
                    &mut rngs[i as usize],
                )
                .expect("client")
            })
            .collect();
        let server = Server::new(config.clone());
        let mut m = Self {
            config,
            clients,
            rngs,
            server,
        };
        for _ in 0..3 {
            m.uplink();
            m.server.advance().expect("step");
            let msgs: Vec<ServerMsg> = std::iter::from_fn(|| m.server.poll_transmit()).collect();
            if let Some(ServerBody::Unmask(_)) = msgs.first().map(|x| &x.body) {
                return (m, msgs);
            }
            for msg in msgs {
                let to = msg.to as usize;
                m.clients[to]
                    .handle(msg, &mut m.rngs[to])
                    .expect("honest step");
            }
        }
        unreachable!("three steps lead to the unmasking request")
    }

    fn uplink(&mut self) {
        for c in &mut self.clients {
            while let Some(msg) = c.poll_transmit() {
                self.server.handle(c.id(), msg).expect("honest message");
            }
        }
    }
}

/// The server lies to some holders that client 0 dropped, to get shares of both its self-mask
/// seed and its mask key. Each holder reveals one kind only, answers once, and refuses a
/// request that calls itself dropped; with `2t > holders` the server cannot reach `t` of both.
#[test]
fn lying_about_dropouts_reveals_one_kind_per_holder() {
    let (n, t) = (7u32, 4u32);
    let (mut m, honest) = Manual::up_to_unmask(n, t);
    let mut kinds_of_zero = Vec::new();
    for msg in honest {
        let to = msg.to;
        let ServerBody::Unmask(all) = &msg.body else {
            panic!("unmask request expected")
        };
        let lie = (1..=3).contains(&to);
        let survivors: Vec<u32> = all.iter().copied().filter(|&c| !(lie && c == 0)).collect();
        let req = ServerMsg {
            round: msg.round,
            to,
            body: ServerBody::Unmask(survivors),
        };
        m.clients[to as usize]
            .handle(req.clone(), &mut m.rngs[to as usize])
            .expect("a consistent-looking request");
        let reply = m.clients[to as usize].poll_transmit().expect("shares");
        let ClientBody::Unmask(shares) = reply.body else {
            panic!("unmask reply expected")
        };
        let about_zero: Vec<ShareKind> = shares
            .iter()
            .filter(|s| s.owner == 0)
            .map(|s| s.kind)
            .collect();
        assert_eq!(
            about_zero.len(),
            1,
            "exactly one share about client 0 from {to}"
        );
        assert_eq!(
            about_zero[0],
            if lie {
                ShareKind::MaskKey
            } else {
                ShareKind::SelfMask
            }
        );
        kinds_of_zero.push(about_zero[0]);
        // Asking again with the opposite story gets nothing.
        let again = ServerMsg {
            round: msg.round,
            to,
            body: ServerBody::Unmask((0..n).collect()),
        };
        assert_eq!(
            m.clients[to as usize].handle(again, &mut m.rngs[to as usize]),
            Err(ClientError::WrongPhase(ClientPhase::Done))
        );
        assert!(m.clients[to as usize].poll_transmit().is_none());
    }
    let keys = kinds_of_zero
        .iter()
        .filter(|k| **k == ShareKind::MaskKey)
        .count();
    let seeds = kinds_of_zero.len() - keys;
    assert!(
        keys < t as usize || seeds < t as usize,
        "2t > n holders: never t of both"
    );
    assert_eq!(m.config.threshold(), t as usize);
}

#[test]
fn client_refuses_requests_that_drop_itself_or_fall_below_threshold() {
    let (mut m, honest) = Manual::up_to_unmask(6, 4);
    let round = honest[0].round;
    let without_self = ServerMsg {
        round,
        to: 2,
        body: ServerBody::Unmask(vec![0, 1, 3, 4, 5]),
    };
    assert_eq!(
        m.clients[2].handle(without_self, &mut m.rngs[2]),
        Err(ClientError::BadSurvivors(2))
    );
    assert_eq!(m.clients[2].phase(), ClientPhase::Aborted);
    let too_few = ServerMsg {
        round,
        to: 3,
        body: ServerBody::Unmask(vec![1, 3, 5]),
    };
    assert_eq!(
        m.clients[3].handle(too_few, &mut m.rngs[3]),
        Err(ClientError::TooFewHolders { have: 3, need: 4 })
    );
    let unknown = ServerMsg {
        round,
        to: 4,
        body: ServerBody::Unmask(vec![0, 1, 4, 9]),
    };
    assert_eq!(
        m.clients[4].handle(unknown, &mut m.rngs[4]),
        Err(ClientError::BadSurvivors(9))
    );
    for c in [2, 3, 4] {
        assert!(
            m.clients[c].poll_transmit().is_none(),
            "client {c} revealed nothing"
        );
    }
}
