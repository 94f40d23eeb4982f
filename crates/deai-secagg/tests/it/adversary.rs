//! A malicious server against the protocol: it drives honest clients by hand, forges, withholds
//! and substitutes messages, and colludes with corrupt clients whose keys it holds.
// Tests assert on values they construct; `expect` documents why each step must succeed.

use std::collections::BTreeMap;
use std::sync::Arc;

use deai_secagg::client::{Client, ClientError, ClientPhase};
use deai_secagg::config::RoundConfig;
use deai_secagg::crypto;
use deai_secagg::msg::{ClientBody, ClientMsg, ServerBody, ServerMsg, ShareKind};
use deai_secagg::params::{Adversary, Params};
use deai_secagg::server::{Rejection, Server, ServerPhase, UnmaskRecord};
use deai_secagg::verify::{VerifyError, verify_aggregate};
use ed25519_dalek::SigningKey;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use rayon::prelude::*;

const ROUND: u64 = 3;

fn params(n: u32, k: u32, t: u32) -> Params {
    Params {
        clients: n,
        degree: k,
        threshold: t,
        corrupt_neighbours_max: 0,
    }
}

/// A round whose server side the test controls: honest clients, the real server up to where
/// the test takes over.
struct Round {
    config: Arc<RoundConfig>,
    keys: Vec<SigningKey>,
    clients: Vec<Client>,
    rngs: Vec<ChaCha20Rng>,
    server: Server,
    masked: BTreeMap<u32, Vec<u32>>,
}

impl Round {
    fn new(params: Params, seed: u64) -> Self {
        let n = params.clients;
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let config = Arc::new(
            RoundConfig::new(
                ROUND,
                params,
                8,
                20,
                [seed as u8; 32],
                keys.iter().map(SigningKey::verifying_key).collect(),
            )
            .expect("config"),
        );
        let mut rngs: Vec<ChaCha20Rng> = (0..n)
            .map(|i| ChaCha20Rng::seed_from_u64(seed * 1000 + u64::from(i)))
            .collect();
        let clients = (0..n)
            .map(|i| {
                let input = vec![i + 1; 8];
                Client::new(
                    config.clone(),
                    i,
                    &keys[i as usize],
                    input,
                    &mut rngs[i as usize],
                )
                .expect("client")
            })
            .collect();
        let server = Server::new(config.clone());
        Self {
            config,
            keys,
            clients,
            rngs,
            server,
            masked: BTreeMap::new(),
        }
    }

    /// Every queued client message to the server.
    fn uplink(&mut self) {
        for c in &mut self.clients {
            while let Some(msg) = c.poll_transmit() {
                if let ClientBody::Masked { vector, .. } = &msg.body {
                    self.masked.insert(c.id(), vector.clone());
                }
                self.server
                    .handle_client_msg(c.id(), msg)
                    .expect("honest message");
            }
        }
    }

    /// Closes a server step; returns its messages, undelivered.
    fn step(&mut self) -> Vec<ServerMsg> {
        self.uplink();
        self.server.advance().expect("step");
        std::iter::from_fn(|| self.server.poll_transmit()).collect()
    }

    fn deliver(&mut self, msgs: Vec<ServerMsg>) {
        for msg in msgs {
            let to = msg.to as usize;
            self.clients[to]
                .handle_server_msg(msg, &mut self.rngs[to])
                .expect("honest step");
        }
    }

    /// Honest up to the masked inputs; returns the consistency requests, undelivered.
    fn to_consistency(params: Params, seed: u64) -> (Self, Vec<ServerMsg>) {
        let mut r = Self::new(params, seed);
        for _ in 0..2 {
            let msgs = r.step();
            r.deliver(msgs);
        }
        let consistency = r.step();
        (r, consistency)
    }

    /// Honest up to the unmasking requests; returns them, undelivered.
    fn to_unmask(params: Params, seed: u64) -> (Self, Vec<ServerMsg>) {
        let (mut r, consistency) = Self::to_consistency(params, seed);
        r.deliver(consistency);
        let unmask = r.step();
        (r, unmask)
    }

    /// A whole honest round: the configuration, the record and the survivors' masked inputs.
    fn full_round(params: Params) -> (Arc<RoundConfig>, UnmaskRecord, Vec<Vec<u32>>) {
        let (mut r, unmask) = Self::to_unmask(params, 1);
        r.deliver(unmask);
        r.uplink();
        let aggregate = r.server.advance().expect("step").expect("aggregate");
        let masked = aggregate
            .record
            .survivors
            .iter()
            .map(|c| r.masked[c].clone())
            .collect();
        (r.config, aggregate.record, masked)
    }

    fn handle(&mut self, msg: ServerMsg) -> Result<(), ClientError> {
        let to = msg.to as usize;
        self.clients[to].handle_server_msg(msg, &mut self.rngs[to])
    }

    fn msg(&self, to: u32, body: ServerBody) -> ServerMsg {
        ServerMsg {
            round: self.config.round,
            to,
            body,
        }
    }
}

// --- (a), (b): what public verification catches -------------------------------------------

/// (a) The server replaces survivor 0's masked input by any vector and records its hash: the
/// input is not the one client 0 signed.
#[test]
fn substituted_masked_input_fails_verification() {
    let (config, mut record, mut masked) = Round::full_round(params(8, 4, 3));
    let victim = record.survivors[0];
    assert_eq!(
        verify_aggregate(&config, &record, &masked).map(|_| ()),
        Ok(())
    );
    masked[0] = vec![7; masked[0].len()];
    let honest_hash = record.masked_hashes[0];
    assert_eq!(
        verify_aggregate(&config, &record, &masked),
        Err(VerifyError::BadInput(victim)),
        "a swapped input under the old hash"
    );
    record.masked_hashes[0] = deai_secagg::hash_vector(&masked[0]);
    assert_eq!(
        verify_aggregate(&config, &record, &masked),
        Err(VerifyError::BadMaskedSignature(victim))
    );
    // Nor can the server sign for the client: another client's signature does not transfer.
    record.masked_hashes[0] = honest_hash;
    record.masked_signatures.swap(0, 1);
    let (_, _, honest) = Round::full_round(params(8, 4, 3));
    assert_eq!(
        verify_aggregate(&config, &record, &honest),
        Err(VerifyError::BadMaskedSignature(victim))
    );
}

/// (b) The server reports a wrong self seed for a survivor (which shifts the sum by a mask
/// of its choosing): the seed does not open the client's commitment.
#[test]
fn wrong_self_seed_fails_verification() {
    let (config, mut record, masked) = Round::full_round(params(8, 4, 3));
    let victim = record.survivors[2];
    record.self_seeds[2][0] ^= 1;
    assert_eq!(
        verify_aggregate(&config, &record, &masked),
        Err(VerifyError::BadSelfSeed(victim))
    );
}

/// The record's consistency signatures are checked too: dropped below `t`, or one forged.
#[test]
fn record_consistency_signatures_are_checked() {
    let (config, record, masked) = Round::full_round(params(8, 4, 3));
    assert_eq!(record.consistency.len(), 8);
    let mut forged = record.clone();
    forged.consistency[1].1[5] ^= 1;
    assert_eq!(
        verify_aggregate(&config, &forged, &masked),
        Err(VerifyError::BadConsistencySignature(1))
    );
    let mut few = record.clone();
    few.consistency.truncate(2);
    assert_eq!(
        verify_aggregate(&config, &few, &masked),
        Err(VerifyError::TooFewConsistencySignatures { have: 2, need: 3 })
    );
}

// --- (c): the short share list --------------------------------------------------------------

/// (c) The server forwards no shares (or fewer than `t - 1`) to client 0, which would then
/// mask with its self mask alone, and its holders would reveal that mask when told it is
/// alive. The client refuses: no masked input, nothing ever sent again.
#[test]
fn short_share_list_is_refused() {
    for keep in [0usize, 1] {
        let mut r = Round::new(params(8, 4, 3), 2);
        let adverts = r.step();
        r.deliver(adverts);
        let shares = r.step();
        for msg in shares {
            let to = msg.to;
            let mut msg = msg;
            if to == 0
                && let ServerBody::Shares(list) = &mut msg.body
            {
                list.truncate(keep);
            }
            let result = r.handle(msg);
            if to == 0 {
                assert_eq!(
                    result,
                    Err(ClientError::TooFewSharers {
                        have: keep + 1,
                        need: 3
                    })
                );
            } else {
                assert_eq!(result, Ok(()));
            }
        }
        assert_eq!(r.clients[0].phase(), ClientPhase::Aborted);
        assert!(r.clients[0].poll_transmit().is_none(), "no masked input");
        // What would have revealed it is never answered either.
        let late = r.msg(0, ServerBody::Consistency((0..8).collect()));
        assert_eq!(
            r.handle(late),
            Err(ClientError::WrongPhase(ClientPhase::Aborted))
        );
        assert!(r.clients[0].poll_transmit().is_none());
    }
}

/// The server forwards enough shares but keeps one neighbour's from client 0, then lists that
/// neighbour as a survivor (the neighbour's masked input pairs with 0's, 0's does not pair
/// with it; or, told it dropped, its mask key would strip 0's pairwise masks): client 0 refuses
/// to sign the list.
#[test]
fn withheld_partner_is_refused_at_consistency() {
    let mut r = Round::new(params(8, 4, 3), 3);
    let adverts = r.step();
    r.deliver(adverts);
    let mut withheld = None;
    for mut msg in r.step() {
        if msg.to == 0
            && let ServerBody::Shares(list) = &mut msg.body
        {
            withheld = Some(list.remove(0).peer);
        }
        r.handle(msg).expect("enough shares");
    }
    let withheld = withheld.expect("client 0 has neighbours");
    let all: Vec<u32> = (0..8).collect();
    let with_it = r.msg(0, ServerBody::Consistency(all.clone()));
    assert_eq!(r.handle(with_it), Err(ClientError::BadSurvivors(withheld)));
    assert!(r.clients[0].poll_transmit().is_none());
}

// --- (d): two stories about one client ------------------------------------------------------

/// The outcome of one two-story attack on client 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Loot {
    /// Shares of 0's self-mask seed the server holds (the corrupt holders' included).
    seeds: usize,
    /// Shares of 0's mask key.
    keys: usize,
}

/// The server shows the survivor list `alive` (everyone) to the honest clients in `story_a`
/// and `alive \ {0}` to the other honest clients; corrupt clients sign both lists; each
/// honest client that signed gets the unmasking request with every signature on its list
/// from its holders. Corrupt holders of 0 hand over both of their shares.
fn two_stories(p: Params, corrupt: &[u32], story_a: &[bool]) -> Loot {
    let (mut r, consistency) = Round::to_consistency(p, 4);
    let alive: Vec<u32> = match &consistency[0].body {
        ServerBody::Consistency(list) => list.clone(),
        other => panic!("consistency request expected, got {other:?}"),
    };
    assert_eq!(
        alive.len() as u32,
        p.clients,
        "everyone sent a masked input"
    );
    let dropped: Vec<u32> = alive.iter().copied().filter(|&c| c != 0).collect();
    let graph = r.config.graph();
    let list_of = |c: u32| {
        if story_a[c as usize] {
            &alive
        } else {
            &dropped
        }
    };
    // Consistency step: honest clients sign what they are shown (or refuse it).
    let mut signatures: BTreeMap<(u32, bool), [u8; 64]> = BTreeMap::new();
    for c in 0..p.clients {
        for a in [true, false] {
            let list = if a { &alive } else { &dropped };
            if corrupt.contains(&c) {
                let sig = crypto::sign_consistency(&r.keys[c as usize], ROUND, c, list);
                signatures.insert((c, a), sig);
            }
        }
        if corrupt.contains(&c) {
            continue;
        }
        let msg = r.msg(c, ServerBody::Consistency(list_of(c).clone()));
        if r.handle(msg).is_ok() {
            match r.clients[c as usize].poll_transmit().map(|m| m.body) {
                Some(ClientBody::ConsistencySig(sig)) => {
                    signatures.insert((c, story_a[c as usize]), sig);
                }
                other => panic!("signature expected, got {other:?}"),
            }
        }
    }
    // Unmasking: each honest signer gets its holders' signatures on its own list.
    let mut loot = Loot { seeds: 0, keys: 0 };
    let holders_of_0 = graph.neighbours(0);
    for &c in corrupt {
        if holders_of_0.contains(&c) {
            loot.seeds += 1;
            loot.keys += 1;
        }
    }
    for c in 0..p.clients {
        let a = story_a[c as usize];
        if corrupt.contains(&c) || !signatures.contains_key(&(c, a)) {
            continue;
        }
        let mut holders = graph.neighbours(c);
        holders.push(c);
        holders.sort_unstable();
        let sigs: Vec<(u32, [u8; 64])> = holders
            .into_iter()
            .filter_map(|h| Some((h, *signatures.get(&(h, a))?)))
            .collect();
        let body = ServerBody::Unmask {
            survivors: list_of(c).clone(),
            signatures: sigs,
        };
        let msg = r.msg(c, body);
        if r.handle(msg).is_err() {
            assert!(r.clients[c as usize].poll_transmit().is_none());
            continue;
        }
        let Some(ClientMsg {
            body: ClientBody::Unmask(shares),
            ..
        }) = r.clients[c as usize].poll_transmit()
        else {
            panic!("revealed shares expected from {c}");
        };
        for s in shares.iter().filter(|s| s.owner == 0) {
            match s.kind {
                ShareKind::SelfMask => loot.seeds += 1,
                ShareKind::MaskKey => loot.keys += 1,
            }
        }
    }
    loot
}

/// (d) For parameters from the threat model, with `c` corrupt neighbours of client 0 (the
/// most the parameters allow), the server tells every split of the honest clients two
/// stories about client 0 ("alive" to one side, "dropped" to the other). Whatever the split,
/// it never holds `t` shares of both of client 0's secrets. Sanity: telling everyone "alive"
/// yields 0's self seed (as an honest round does), so the harness can see a success.
#[test]
fn two_stories_never_yield_both_secrets() {
    for (n, corrupt, dropout) in [(8, 0.2, 0.2), (7, 0.3, 0.0), (10, 0.2, 0.1), (12, 0.3, 0.0)] {
        let p = Params::for_threat_model(n, corrupt, dropout, 40, 20, Adversary::SemiMalicious)
            .expect("feasible");
        let (k, t, c) = (p.degree, p.threshold, p.corrupt_neighbours_max);
        assert!(2 * t > k + 1 + c);
        let config_graph = Round::new(p, 4).config.graph();
        let bad: Vec<u32> = config_graph.neighbours(0)[..c as usize].to_vec();
        // Client 0 must hear "alive" (it refuses a list without itself); every other honest
        // client hears either story: 2^(n - 1 - c) splits, each a real run of the clients.
        let free: Vec<u32> = (1..n).filter(|x| !bad.contains(x)).collect();
        let results: Vec<(u32, Loot)> = (0..1u32 << free.len())
            .into_par_iter()
            .map(|mask| {
                let mut story_a = vec![true; n as usize];
                for (bit, &x) in free.iter().enumerate() {
                    story_a[x as usize] = mask & (1 << bit) != 0;
                }
                (mask, two_stories(p, &bad, &story_a))
            })
            .collect();
        let t = t as usize;
        for (mask, loot) in &results {
            assert!(
                loot.seeds < t || loot.keys < t,
                "n={n} k={k} t={t} c={c} split {mask:b}: {loot:?}"
            );
        }
        let everyone_alive = results.last().expect("splits").1;
        assert!(everyone_alive.seeds >= t, "n={n}: {everyone_alive:?}");
        let best = results
            .iter()
            .map(|(_, l)| l.seeds.min(l.keys))
            .max()
            .expect("splits");
        assert!(best < t, "n={n}: best split gets {best} of each");
    }
}

/// Each honest client signs one list and answers once: a second survivor list, or a second
/// unmasking request with the other story, gets nothing.
#[test]
fn a_client_signs_one_list_and_reveals_once() {
    let (mut r, consistency) = Round::to_consistency(params(6, 5, 4), 5);
    r.deliver(consistency);
    let again = r.msg(2, ServerBody::Consistency(vec![0, 2, 3, 4, 5]));
    assert_eq!(
        r.handle(again),
        Err(ClientError::WrongPhase(ClientPhase::AwaitUnmask))
    );
    assert!(r.clients[2].poll_transmit().is_none(), "a second signature");
    let (mut r, unmask) = Round::to_unmask(params(6, 5, 4), 5);
    let first = unmask.into_iter().find(|m| m.to == 2).expect("request");
    r.handle(first.clone()).expect("honest request");
    assert!(r.clients[2].poll_transmit().is_some());
    assert_eq!(
        r.handle(first),
        Err(ClientError::WrongPhase(ClientPhase::Done))
    );
    assert!(r.clients[2].poll_transmit().is_none());
}

// --- (e): forged and replayed consistency signatures ----------------------------------------

/// (e, server side) A client's consistency signature that is forged, replayed from another
/// round, made on another list, or copied from another client is rejected by name and the
/// client excluded; the round goes on with the others and the excluded client's input stays
/// in the sum (it is in the signed list).
#[test]
fn server_rejects_forged_and_replayed_consistency_signatures() {
    let (mut r, consistency) = Round::to_consistency(params(10, 9, 4), 6);
    let list = match &consistency[0].body {
        ServerBody::Consistency(l) => l.clone(),
        other => panic!("consistency expected, got {other:?}"),
    };
    r.deliver(consistency);
    let key = |c: u32| &r.keys[c as usize];
    let forgeries: [(u32, [u8; 64]); 4] = [
        (1, [7; 64]),
        (2, crypto::sign_consistency(key(2), ROUND + 1, 2, &list)),
        (3, crypto::sign_consistency(key(3), ROUND, 3, &list[1..])),
        (4, crypto::sign_consistency(key(5), ROUND, 5, &list)),
    ];
    for (c, sig) in forgeries {
        // The honest signature queued by the client is replaced by the forgery.
        let honest = r.clients[c as usize].poll_transmit().expect("signature");
        assert!(matches!(honest.body, ClientBody::ConsistencySig(_)));
        let forged = ClientMsg {
            body: ClientBody::ConsistencySig(sig),
            ..honest
        };
        assert_eq!(
            r.server.handle_client_msg(c, forged),
            Err(Rejection::BadConsistencySignature),
            "client {c}"
        );
    }
    let unmask = r.step();
    assert_eq!(r.server.phase(), ServerPhase::CollectUnmask);
    let asked: Vec<u32> = unmask.iter().map(|m| m.to).collect();
    assert_eq!(asked, vec![0, 5, 6, 7, 8, 9]);
    for m in &unmask {
        let ServerBody::Unmask { signatures, .. } = &m.body else {
            panic!("unmask expected")
        };
        assert!(signatures.iter().all(|(s, _)| ![1, 2, 3, 4].contains(s)));
    }
    r.deliver(unmask);
    r.uplink();
    let aggregate = r.server.advance().expect("step").expect("aggregate");
    assert_eq!(aggregate.record.survivors, (0..10).collect::<Vec<_>>());
    let expected: u32 = (1..=10).sum();
    assert_eq!(aggregate.sum, vec![expected; 8]);
    assert_eq!(
        r.server.excluded().keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
}

/// (e, client side) An unmasking request whose signatures are forged, replayed from another
/// list or round, from a client that is not a holder, too few, or for another list than the
/// one signed: refused by name, nothing revealed.
#[test]
fn client_rejects_bad_unmask_requests() {
    let p = params(10, 4, 3);
    let (r, unmask) = Round::to_unmask(p, 7);
    let graph = r.config.graph();
    let to = 0u32;
    let honest = unmask.into_iter().find(|m| m.to == to).expect("request");
    let ServerBody::Unmask {
        survivors,
        signatures,
    } = honest.body.clone()
    else {
        panic!("unmask expected")
    };
    let holder = graph.neighbours(to)[0];
    let at = signatures
        .iter()
        .position(|(s, _)| *s == holder)
        .expect("holder signed");
    let stranger = (0..10)
        .find(|c| *c != to && !graph.neighbours(to).contains(c))
        .expect("sparse graph");
    let key = &r.keys[holder as usize];
    let mut cases: Vec<(ServerBody, ClientError)> = Vec::new();
    let mut forged = signatures.clone();
    forged[at].1 = [9; 64];
    cases.push((
        ServerBody::Unmask {
            survivors: survivors.clone(),
            signatures: forged,
        },
        ClientError::BadConsistencySignature(holder),
    ));
    let other_list: Vec<u32> = survivors.iter().copied().filter(|&c| c != 9).collect();
    let mut replayed = signatures.clone();
    replayed[at].1 = crypto::sign_consistency(key, ROUND, holder, &other_list);
    cases.push((
        ServerBody::Unmask {
            survivors: survivors.clone(),
            signatures: replayed,
        },
        ClientError::BadConsistencySignature(holder),
    ));
    let mut old_round = signatures.clone();
    old_round[at].1 = crypto::sign_consistency(key, ROUND - 1, holder, &survivors);
    cases.push((
        ServerBody::Unmask {
            survivors: survivors.clone(),
            signatures: old_round,
        },
        ClientError::BadConsistencySignature(holder),
    ));
    let mut with_stranger = signatures.clone();
    let stranger_sig =
        crypto::sign_consistency(&r.keys[stranger as usize], ROUND, stranger, &survivors);
    with_stranger.push((stranger, stranger_sig));
    with_stranger.sort_by_key(|s| s.0);
    cases.push((
        ServerBody::Unmask {
            survivors: survivors.clone(),
            signatures: with_stranger,
        },
        ClientError::BadSigner(stranger),
    ));
    // Its own signature and one other: two, threshold three.
    let two: Vec<(u32, [u8; 64])> = signatures
        .iter()
        .filter(|(s, _)| *s == to || *s == holder)
        .copied()
        .collect();
    cases.push((
        ServerBody::Unmask {
            survivors: survivors.clone(),
            signatures: two,
        },
        ClientError::TooFewSignatures { have: 2, need: 3 },
    ));
    cases.push((
        ServerBody::Unmask {
            survivors: other_list,
            signatures: signatures.clone(),
        },
        ClientError::SurvivorsChanged,
    ));
    for (body, error) in cases {
        // A fresh round per case: a refusal aborts the client.
        let (mut r, _) = Round::to_unmask(p, 7);
        let msg = r.msg(to, body);
        assert_eq!(r.handle(msg), Err(error.clone()));
        assert!(
            r.clients[to as usize].poll_transmit().is_none(),
            "{error:?}"
        );
    }
    // Without its own signature relayed, the client still counts itself.
    let (mut r, _) = Round::to_unmask(p, 7);
    let without_own: Vec<(u32, [u8; 64])> = signatures
        .iter()
        .filter(|(s, _)| *s != to)
        .copied()
        .collect();
    let body = ServerBody::Unmask {
        survivors,
        signatures: without_own,
    };
    let msg = r.msg(to, body);
    assert_eq!(r.handle(msg), Ok(()));
}

// --- threshold checks on the server ---------------------------------------------------------

/// Five of client 0's six neighbours never advertise: with `t = 3`, client 0 has 1 < `t - 1`
/// live neighbour and could not share among enough holders, so the server leaves it out of
/// `U1` although it advertised: it gets no adverts, nobody gets its advert. Everyone the
/// server does write to gets at least `t - 1` adverts (pruning runs to a fixed point).
#[test]
fn server_leaves_out_clients_below_threshold() {
    let p = params(12, 6, 3);
    let mut r = Round::new(p, 8);
    let graph = r.config.graph();
    let silent: Vec<u32> = graph.neighbours(0)[..5].to_vec();
    for &c in &silent {
        assert!(r.clients[c as usize].poll_transmit().is_some(), "advert");
    }
    let adverts = r.step();
    let to: Vec<u32> = adverts.iter().map(|m| m.to).collect();
    assert!(!to.contains(&0) && !silent.iter().any(|c| to.contains(c)));
    for m in &adverts {
        let ServerBody::Neighbours(list) = &m.body else {
            panic!("adverts expected")
        };
        assert!(
            list.len() >= 3,
            "client {} got {} adverts",
            m.to,
            list.len()
        );
        assert!(
            list.iter().all(|a| to.contains(&a.from)),
            "only kept clients' adverts"
        );
    }
}
