//! Whole-protocol properties: masks cancel, aborts below threshold, the classic
//! lying-about-dropouts attack, uniformity of masked inputs, and isolation of bad clients.
// Tests assert on values they construct; `expect` documents why each step must succeed.

use std::collections::BTreeMap;
use std::sync::Arc;

use deai_secagg::client::{Client, ClientError, ClientPhase};
use deai_secagg::config::RoundConfig;
use deai_secagg::msg::{ClientBody, ServerBody, ServerMsg, ShareKind, Step};
use deai_secagg::params::Params;
use deai_secagg::server::ServerPhase;
use deai_secagg::server::{Server, ServerError};
use deai_secagg::sim::{Fault, SimError, SimSpec, run_round};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn spec(n: u32, k: u32, t: u32, dim: u32, seed: u64, faults: BTreeMap<u32, Fault>) -> SimSpec {
    let params = Params {
        clients: n,
        degree: k,
        threshold: t,
        corrupt_neighbours_max: 0,
    };
    let mut spec = SimSpec::with_dropout(params, dim, 0.0, seed);
    spec.faults = faults;
    spec.verify = true;
    spec
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Advert),
        Just(Step::Shares),
        Just(Step::Masked),
        Just(Step::Consistency),
        Just(Step::Unmask)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Complete graph, dropouts at every step: the round succeeds exactly when at least `t`
    /// masked inputs arrive (those are the survivors, whoever drops after) and at least `t`
    /// clients sign the survivor list and reveal; then the unmasked sum equals the survivors'
    /// plain sum and re-verifies publicly.
    #[test]
    fn masks_cancel_iff_enough_survivors(
        n in 4u32..11,
        t_frac in 0.2f64..1.0,
        drops in proptest::collection::btree_map(0u32..11, step_strategy(), 0..8),
        seed in any::<u64>(),
    ) {
        let t = ((f64::from(n) * t_frac) as u32).clamp(2, n);
        let faults: BTreeMap<u32, Fault> = drops.into_iter().filter(|(c, _)| *c < n).map(|(c, s)| (c, Fault::Drop(s))).collect();
        let gone_by = |step: Step| n - faults.values().filter(|f| matches!(f, Fault::Drop(s) if *s <= step)).count() as u32;
        let (in_sum, signers, revealers) = (gone_by(Step::Masked), gone_by(Step::Consistency), gone_by(Step::Unmask));
        match run_round(&spec(n, n - 1, t, 24, seed, faults)) {
            Ok(r) => {
                prop_assert!(revealers >= t);
                prop_assert!(r.exact && r.verified == Some(true));
                prop_assert_eq!(r.record.survivors.len() as u32, in_sum);
                prop_assert_eq!(r.record.consistency.len() as u32, signers);
            }
            Err(SimError::Aborted(ServerError::TooFewClients { need, .. })) => {
                prop_assert!(signers < t, "aborted with {} signers, t = {}", signers, t);
                prop_assert_eq!(need, t as usize);
            }
            Err(SimError::Aborted(ServerError::TooFewShares { need, .. })) => {
                prop_assert!(revealers < t && signers >= t, "{} revealers, t = {}", revealers, t);
                prop_assert_eq!(need, t as usize);
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }

    /// Sparse Harary graphs with dropouts at every step, the consistency and unmasking steps
    /// included: whenever the round completes it is exact and re-verifies; otherwise it fails
    /// with a threshold error, never another.
    #[test]
    fn sparse_rounds_are_exact_or_fail_cleanly(
        n in 8u32..24,
        drops in proptest::collection::btree_map(0u32..24, step_strategy(), 0..5),
        seed in any::<u64>(),
    ) {
        let faults: BTreeMap<u32, Fault> = drops.into_iter().filter(|(c, _)| *c < n).map(|(c, s)| (c, Fault::Drop(s))).collect();
        let early = faults.values().filter(|f| matches!(f, Fault::Drop(s) if *s <= Step::Masked)).count();
        match run_round(&spec(n, 6, 3, 16, seed, faults)) {
            Ok(r) => {
                prop_assert!(r.exact && r.verified == Some(true));
                // Late dropouts stay in the sum; only early ones (and clients pruned for too
                // few live neighbours, which needs early dropouts around them) leave it.
                if early == 0 {
                    prop_assert_eq!(r.record.survivors.len() as u32, n);
                }
            }
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
            // Excluded before its masked input arrived: out of the sum; at the consistency or
            // unmasking step its input is already in and only its later messages are ignored.
            assert_eq!(in_sum, step >= Step::Consistency, "{fault:?}");
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
    /// A round on the complete graph of `n` clients driven by hand up to the survivor lists of
    /// the consistency step (returned undelivered).
    fn up_to_consistency(n: u32, t: u32) -> (Self, Vec<ServerMsg>) {
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let params = Params {
            clients: n,
            degree: n - 1,
            threshold: t,
            corrupt_neighbours_max: 0,
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
            if m.server.phase() == ServerPhase::CollectConsistency {
                return (m, msgs);
            }
            for msg in msgs {
                let to = msg.to as usize;
                m.clients[to]
                    .handle_server_msg(msg, &mut m.rngs[to])
                    .expect("honest step");
            }
        }
        unreachable!("three steps lead to the consistency step")
    }

    fn uplink(&mut self) {
        for c in &mut self.clients {
            while let Some(msg) = c.poll_transmit() {
                self.server
                    .handle_client_msg(c.id(), msg)
                    .expect("honest message");
            }
        }
    }

    /// Delivers `list` as client `to`'s survivor list and returns its signature, if it signs.
    fn sign(&mut self, to: u32, list: Vec<u32>) -> Option<[u8; 64]> {
        let msg = ServerMsg {
            round: self.config.round,
            to,
            body: ServerBody::Consistency(list),
        };
        self.clients[to as usize]
            .handle_server_msg(msg, &mut self.rngs[to as usize])
            .ok()?;
        match self.clients[to as usize].poll_transmit()?.body {
            ClientBody::ConsistencySig(sig) => Some(sig),
            other => panic!("signature expected, got {other:?}"),
        }
    }
}

/// The server lies to some holders that client 0 dropped, to get shares of both its self-mask
/// seed and its mask key. Each holder signs the one list it is shown and reveals only for a
/// list that `t` holders signed: with `n = 7`, `t = 4`, the "alive" side (four clients)
/// reveals self-mask shares of 0, the "dropped" side (three) cannot get four signatures and
/// reveals nothing. Each answers once.
#[test]
fn lying_about_dropouts_reveals_one_kind_per_holder() {
    let (n, t) = (7u32, 4u32);
    let (mut m, honest) = Manual::up_to_consistency(n, t);
    let ServerBody::Consistency(all) = honest[0].body.clone() else {
        panic!("survivor list expected")
    };
    let without_zero: Vec<u32> = all.iter().copied().filter(|&c| c != 0).collect();
    let lie = |c: u32| c >= 4;
    let mut sigs: BTreeMap<(bool, u32), [u8; 64]> = BTreeMap::new();
    for c in 0..n {
        let list = if lie(c) { &without_zero } else { &all };
        let sig = m.sign(c, list.clone()).expect("a consistent-looking list");
        sigs.insert((lie(c), c), sig);
    }
    let mut kinds_of_zero = Vec::new();
    for to in 0..n {
        let side = lie(to);
        let signatures: Vec<(u32, [u8; 64])> = sigs
            .iter()
            .filter(|((s, _), _)| *s == side)
            .map(|((_, c), sig)| (*c, *sig))
            .collect();
        let survivors = if side {
            without_zero.clone()
        } else {
            all.clone()
        };
        let req = ServerMsg {
            round: m.config.round,
            to,
            body: ServerBody::Unmask {
                survivors,
                signatures,
            },
        };
        let result =
            m.clients[to as usize].handle_server_msg(req.clone(), &mut m.rngs[to as usize]);
        if side {
            assert_eq!(
                result,
                Err(ClientError::TooFewSignatures { have: 3, need: 4 })
            );
            assert!(m.clients[to as usize].poll_transmit().is_none());
            continue;
        }
        assert_eq!(result, Ok(()));
        let reply = m.clients[to as usize].poll_transmit().expect("shares");
        let ClientBody::Unmask(shares) = reply.body else {
            panic!("unmask reply expected")
        };
        let about_zero: Vec<ShareKind> = shares
            .iter()
            .filter(|s| s.owner == 0)
            .map(|s| s.kind)
            .collect();
        assert_eq!(about_zero, vec![ShareKind::SelfMask], "from {to}");
        kinds_of_zero.extend(about_zero);
        // Asking again gets nothing.
        assert_eq!(
            m.clients[to as usize].handle_server_msg(req, &mut m.rngs[to as usize]),
            Err(ClientError::WrongPhase(ClientPhase::Done))
        );
        assert!(m.clients[to as usize].poll_transmit().is_none());
    }
    let keys = kinds_of_zero
        .iter()
        .filter(|k| **k == ShareKind::MaskKey)
        .count();
    assert_eq!((kinds_of_zero.len() - keys, keys), (4, 0));
    assert_eq!(m.config.threshold(), t as usize);
}

#[test]
fn client_refuses_lists_that_drop_itself_or_fall_below_threshold() {
    let (mut m, _) = Manual::up_to_consistency(6, 4);
    let round = m.config.round;
    let mut ask = |to: u32, list: Vec<u32>| {
        let msg = ServerMsg {
            round,
            to,
            body: ServerBody::Consistency(list),
        };
        m.clients[to as usize].handle_server_msg(msg, &mut m.rngs[to as usize])
    };
    assert_eq!(
        ask(2, vec![0, 1, 3, 4, 5]),
        Err(ClientError::BadSurvivors(2))
    );
    assert_eq!(
        ask(3, vec![1, 3, 5]),
        Err(ClientError::TooFewHolders { have: 3, need: 4 })
    );
    assert_eq!(ask(4, vec![0, 1, 4, 9]), Err(ClientError::BadSurvivors(9)));
    assert_eq!(ask(5, vec![0, 5, 1, 4]), Err(ClientError::BadSurvivors(1)));
    for c in [2, 3, 4, 5] {
        assert_eq!(m.clients[c].phase(), ClientPhase::Aborted);
        assert!(
            m.clients[c].poll_transmit().is_none(),
            "client {c} signed nothing"
        );
    }
}

/// A client that drops after its masked input (at the consistency step) is a survivor: its
/// input is in the sum and its self seed is rebuilt from its holders' shares.
#[test]
fn dropout_at_consistency_keeps_the_input_in_the_sum() {
    let faults = [
        (3, Fault::Drop(Step::Consistency)),
        (5, Fault::Drop(Step::Unmask)),
    ]
    .into_iter()
    .collect();
    let r = run_round(&spec(12, 6, 3, 16, 8, faults)).expect("round");
    assert!(r.exact && r.verified == Some(true));
    assert_eq!(r.record.survivors, (0..12).collect::<Vec<_>>());
    let signers: Vec<u32> = r.record.consistency.iter().map(|(c, _)| *c).collect();
    assert!(!signers.contains(&3) && signers.contains(&5));
    assert_eq!(signers.len(), 11);
}
