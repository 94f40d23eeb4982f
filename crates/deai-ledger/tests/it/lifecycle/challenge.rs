//! Coordinator accountability (issue 16): a coordinator's bond, challenges of a round's claims,
//! the validators' stake-weighted votes, and settlement after the challenge window. The
//! validators' re-checking happens off the ledger (deai-node); here they vote as a test says.

use super::*;

/// Four validators of equal stake (keys 0, 7, 8, 9): three votes are past two thirds, two
/// are not.
const VALIDATORS: [usize; 4] = [0, 7, 8, 9];
const WINDOW: u64 = 20;
const VOTE_BLOCKS: u64 = 10;

/// [`H::with_task`]'s task 1 on a chain of four validators whose closed tasks wait `window`
/// blocks for challenges.
fn net(window: u64) -> H {
    let k = keys(10);
    let mut g = genesis(&k, test_params());
    g.validators = VALIDATORS.iter().map(|&i| (addr(&k[i]), STAKE)).collect();
    g.params.challenge_window_blocks = window;
    g.params.challenge_vote_blocks = VOTE_BLOCKS;
    let s = State::from_genesis(&g).unwrap();
    let mut h = H { k, s };
    for (i, owner) in [3, 4, 5].into_iter().enumerate() {
        h.ok(owner, dataset_register(i as u8, policy(&["health"], 1_000)));
    }
    h.ok(
        CREATOR,
        task_create(vec![1, 2, 3], "health", REWARD, TASK_EPS),
    );
    h.ok(CREATOR, set_coordinator(1, h.addr(COORD)));
    h.ok(CREATOR, commit(1));
    h
}

fn challenge(round: u32, claim: Claim) -> TxBody {
    TxBody::RoundChallenge(RoundChallenge {
        task: 1,
        round,
        claim,
    })
}

fn vote(challenge: u32, upheld: bool) -> TxBody {
    TxBody::ChallengeVote(ChallengeVote {
        task: 1,
        challenge,
        upheld,
    })
}

impl H {
    fn balance(&self, who: usize) -> u128 {
        self.s.account(&self.addr(who)).balance
    }

    /// A round of task 1 over all three datasets with `scores`.
    fn round(&mut self, scores: &[(u64, u64)]) {
        let round = self.s.task(1).unwrap().rounds_opened() + 1;
        self.open_drawing(COORD, 1, &[1, 2, 3]);
        self.ok(COORD, result(1, round, vec![1, 2, 3], scores));
    }

    fn supply_ok(&self) {
        let s = self.s.supply();
        assert_eq!(s.total, s.genesis, "{s:?}");
    }

    fn task(&self) -> &Task {
        self.s.task(1).unwrap()
    }
}

/// The coordinator lies in round 2 (its scores give everything to dataset 3); a stranger
/// challenges the round's first group sum; three of four validators uphold it. The bond is
/// slashed (half to the challenger, half into the escrow), round 2 earns nothing and is not
/// the task's model, and a frivolous challenge of the honest round 1 costs its challenger the
/// deposit. Rewards wait for the window; tokens are conserved throughout.
#[test]
fn a_lie_is_upheld_slashed_and_earns_nothing_and_a_frivolous_challenge_costs_its_deposit() {
    let mut h = net(WINDOW);
    let coord_start = h.balance(COORD);
    h.round(&[(1, 100_000), (2, 200_000)]);
    assert_eq!(h.balance(COORD), coord_start - COORDINATOR_BOND - 2);
    let t = h.task();
    assert_eq!(t.bonds.len(), 1);
    assert_eq!(t.bonds[0].rounds, vec![1]);
    assert_eq!(h.s.supply().bonds, COORDINATOR_BOND);
    h.round(&[(3, 900_000)]);
    let t = h.task();
    assert_eq!(t.bonds.len(), 2, "every round locks its own bond");
    assert_eq!(t.bonds[1].rounds, vec![2]);
    assert_eq!(h.s.supply().bonds, 2 * COORDINATOR_BOND);
    h.supply_ok();

    let stranger = h.balance(STRANGER);
    let out = h.ok(STRANGER, challenge(2, Claim::GroupSum { group: 0 }));
    let coord_addr = h.addr(COORD);
    assert!(out.receipts[0].events.iter().any(|e| matches!(
        e,
        Event::RoundChallenged { challenge: 1, round: 2, accused, .. } if *accused == coord_addr
    )));
    assert_eq!(h.balance(STRANGER), stranger - CHALLENGE_DEPOSIT - 1);
    // The same claim cannot be challenged twice at once.
    h.rejected(
        STRANGER,
        challenge(2, Claim::GroupSum { group: 0 }),
        "invalid_field",
    );
    // What each account's automatic voter is asked: only validators of the filing epoch that
    // have not voted, and nobody once the challenge is decided.
    let awaiting = |h: &H, who: usize| -> Vec<(u64, u32)> {
        let height = h.s.height() + 1;
        h.s.challenges_awaiting(&h.addr(who), height)
            .iter()
            .map(|(t, c)| (*t, c.id))
            .collect()
    };
    assert_eq!(awaiting(&h, VALIDATORS[0]), vec![(1, 1)]);
    assert!(awaiting(&h, STRANGER).is_empty(), "a stranger may not vote");
    h.ok(VALIDATORS[0], vote(1, true));
    assert!(awaiting(&h, VALIDATORS[0]).is_empty(), "it voted");
    assert_eq!(awaiting(&h, VALIDATORS[1]), vec![(1, 1)]);
    h.ok(VALIDATORS[1], vote(1, true));
    assert!(
        h.task().challenges[0].is_pending(),
        "half the stake decides nothing"
    );
    h.rejected(VALIDATORS[1], vote(1, true), "invalid_field");
    h.rejected(STRANGER, vote(1, true), "not_validator");
    let out = h.ok(VALIDATORS[2], vote(1, true));
    let reward = COORDINATOR_BOND / 2;
    assert!(out.receipts[0].events.iter().any(|e| *e
        == Event::ChallengeResolved {
            task: 1,
            challenge: 1,
            round: 2,
            verdict: Verdict::Upheld,
            slashed: COORDINATOR_BOND,
            reward,
            to_escrow: COORDINATOR_BOND - reward,
        }));
    h.rejected(VALIDATORS[3], vote(1, true), "challenge_not_pending");
    assert!(awaiting(&h, VALIDATORS[3]).is_empty(), "decided");
    assert_eq!(h.balance(STRANGER), stranger - 1 + reward);
    assert!(h.task().round_invalid(2) && !h.task().round_invalid(1));
    assert_eq!(h.task().escrow, REWARD + COORDINATOR_BOND - reward);
    assert_eq!(
        h.s.supply().bonds,
        COORDINATOR_BOND,
        "round 1's bond is untouched"
    );
    h.supply_ok();
    h.rejected(STRANGER, challenge(2, Claim::Model), "invalid_field");

    // Closing opens the window: nothing is paid yet.
    let owners: Vec<u128> = [3, 4, 5].map(|o| h.balance(o)).to_vec();
    let out = h.ok(CREATOR, close(1, SALT));
    let settle_from = h.s.height() + WINDOW;
    assert!(
        out.receipts[0]
            .events
            .iter()
            .all(|e| !matches!(e, Event::RewardPaid { .. } | Event::ModelRegistered { .. }))
    );
    assert_eq!(h.task().status, TaskStatus::Settling);
    assert_eq!(h.task().closing.as_ref().unwrap().settle_from, settle_from);
    // An honest round challenged in the window: rejected, the deposit goes to the coordinator.
    let coord = h.balance(COORD);
    h.ok(STRANGER, challenge(1, Claim::Score { group: 0 }));
    for v in &VALIDATORS[..3] {
        h.ok(*v, vote(2, false));
    }
    assert_eq!(h.task().challenges[1].verdict, Some(Verdict::Rejected));
    assert_eq!(h.balance(COORD), coord + CHALLENGE_DEPOSIT);
    assert_eq!(
        h.balance(STRANGER),
        stranger - 2 + reward - CHALLENGE_DEPOSIT
    );
    h.supply_ok();

    let left = settle_from - h.s.height() - 1;
    advance(&mut h.s, left);
    assert_eq!(h.task().status, TaskStatus::Settling);
    assert_eq!([3, 4, 5].map(|o| h.balance(o)).to_vec(), owners);
    let out = block(&mut h.s, Address([0xAB; 32]), vec![]);
    assert_eq!(h.task().status, TaskStatus::Closed);
    // Round 1's scores alone share the escrow (with the slashed half in it).
    let escrow = REWARD + COORDINATOR_BOND - reward;
    let expect = [escrow / 3, 2 * escrow / 3, 0];
    for (i, o) in [3, 4, 5].into_iter().enumerate() {
        assert_eq!(h.balance(o) - owners[i], expect[i], "owner {o}");
    }
    let model = h.s.model(h.task().final_model.unwrap()).unwrap();
    assert_eq!(
        model.model_hash,
        Digest::hash(&1u32.to_be_bytes()),
        "the last valid round's model"
    );
    assert!(
        out.events
            .iter()
            .any(|e| matches!(e, Event::TaskClosed { id: 1, .. }))
    );
    h.supply_ok();
    h.rejected(
        STRANGER,
        challenge(1, Claim::Aggregate),
        "challenge_window_closed",
    );
    // The task's entry, challenges and history included, is still what the root commits to.
    let root = h.s.root();
    let proof = h.s.prove(&StateKey::Task(1)).unwrap();
    verify_entry(&root, &proof, h.task()).unwrap();
    let mut forged = h.task().clone();
    forged.challenges[0].verdict = Some(Verdict::Rejected);
    assert!(verify_entry(&root, &proof, &forged).is_err());
}

/// Every round is backed by its own bond: a coordinator that lies in two rounds loses two bonds,
/// though both challenges come after the close, and gets back only the honest round's.
#[test]
fn two_lies_cost_two_bonds_however_late_they_are_challenged() {
    let mut h = net(WINDOW);
    let coord_start = h.balance(COORD);
    h.round(&[(1, 100_000)]);
    h.round(&[(2, 100_000)]);
    h.round(&[(3, 100_000)]);
    assert_eq!(h.s.supply().bonds, 3 * COORDINATOR_BOND);
    h.ok(CREATOR, close(1, SALT));
    let stranger = h.balance(STRANGER);
    for (n, round) in [(1, 2), (2, 3)] {
        h.ok(STRANGER, challenge(round, Claim::Score { group: 0 }));
        for v in &VALIDATORS[..3] {
            h.ok(*v, vote(n, true));
        }
        let c = &h.task().challenges[n as usize - 1];
        assert_eq!(c.verdict, Some(Verdict::Upheld));
    }
    let reward = COORDINATOR_BOND / 2;
    assert_eq!(h.balance(STRANGER), stranger - 2 + 2 * reward);
    assert_eq!(h.task().escrow, REWARD + 2 * (COORDINATOR_BOND - reward));
    h.supply_ok();
    advance(&mut h.s, WINDOW + 1);
    assert_eq!(h.task().status, TaskStatus::Closed);
    assert_eq!(
        h.balance(COORD),
        coord_start - 6 - 2 * COORDINATOR_BOND,
        "an open and a result fee per round, two bonds lost, round 1's back"
    );
    assert!(h.task().round_invalid(2) && h.task().round_invalid(3));
    h.supply_ok();
}

/// A challenge the validators do not decide holds the settlement until its voting ends, then
/// returns its deposit; the untouched bond goes back to the coordinator at settlement.
#[test]
fn an_undecided_challenge_returns_its_deposit_and_holds_the_settlement() {
    let mut h = net(2);
    let coord_start = h.balance(COORD);
    h.round(&[(1, 100_000)]);
    h.ok(CREATOR, close(1, SALT));
    let stranger = h.balance(STRANGER);
    h.ok(STRANGER, challenge(1, Claim::Model));
    let deadline = h.task().challenges[0].vote_deadline;
    h.ok(VALIDATORS[0], vote(1, true));
    advance(&mut h.s, 3);
    assert_eq!(
        h.task().status,
        TaskStatus::Settling,
        "a pending challenge holds it"
    );
    let left = deadline - h.s.height();
    let v1 = h.addr(VALIDATORS[1]);
    assert_eq!(h.s.challenges_awaiting(&v1, deadline).len(), 1);
    advance(&mut h.s, left);
    assert!(h.task().challenges[0].is_pending());
    assert!(
        h.s.challenges_awaiting(&v1, h.s.height() + 1).is_empty(),
        "a vote after the deadline would be refused"
    );
    advance(&mut h.s, 1);
    h.rejected(VALIDATORS[1], vote(1, true), "challenge_not_pending");
    assert_eq!(h.task().status, TaskStatus::Closed);
    assert_eq!(h.task().challenges[0].verdict, Some(Verdict::Undecided));
    assert_eq!(h.balance(STRANGER), stranger - 1);
    assert_eq!(h.balance(COORD), coord_start - 2, "its bond came back");
    assert!(h.task().history.iter().any(|e| matches!(
        e.event,
        Event::CoordinatorBondReleased {
            amount: COORDINATOR_BOND,
            ..
        }
    )));
    h.supply_ok();
}

/// What a challenge may name, and that a coordinator bonds again for its next round.
#[test]
fn challenges_name_completed_rounds_and_groups_that_exist() {
    let mut h = net(WINDOW);
    h.rejected(STRANGER, challenge(1, Claim::Model), "invalid_field");
    h.open_drawing(COORD, 1, &[1, 2, 3]);
    h.rejected(STRANGER, challenge(1, Claim::Model), "invalid_field");
    h.ok(COORD, result(1, 1, vec![1, 2, 3], &[(1, 100_000)]));
    h.rejected(
        STRANGER,
        challenge(1, Claim::GroupSum { group: 3 }),
        "invalid_field",
    );
    // Scores need the validation data, which only TaskClose reveals.
    h.rejected(
        STRANGER,
        challenge(1, Claim::Score { group: 0 }),
        "invalid_field",
    );
    h.ok(STRANGER, challenge(1, Claim::GroupSum { group: 2 }));
    for v in &VALIDATORS[..3] {
        h.ok(*v, vote(1, true));
    }
    let coord = h.balance(COORD);
    let out = h.open_drawing(COORD, 1, &[1, 2, 3]);
    assert!(out.receipts[0].events.iter().any(|e| matches!(
        e,
        Event::CoordinatorBonded {
            amount: COORDINATOR_BOND,
            ..
        }
    )));
    assert_eq!(h.balance(COORD), coord - COORDINATOR_BOND - 1);
    let t = h.task();
    assert_eq!(t.bonds.len(), 2);
    assert_eq!(
        (t.bonds[0].amount, t.bonds[1].rounds.as_slice()),
        (0, &[2][..])
    );
    assert_eq!(t.answerable_for(2), Some(h.addr(COORD)));
    h.supply_ok();
}

mod props {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// The coordinator opens the next round or reports the open one.
        Step {
            score: u64,
        },
        /// Anyone challenges a round (often one that cannot be).
        Challenge {
            round: u32,
            claim: u8,
            group: u32,
        },
        /// Validators (bit `i` of `voters`: `VALIDATORS[i]`; bit 4: a stranger) vote on a
        /// challenge in one block, each upheld or not by the same bit of `upheld`.
        Vote {
            voters: u8,
            challenge: u32,
            upheld: u8,
        },
        Close,
        Idle {
            blocks: u64,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..=SCORE_SCALE).prop_map(|score| Op::Step { score }),
            2 => (1u32..5, 0u8..4, 0u32..4)
                .prop_map(|(round, claim, group)| Op::Challenge { round, claim, group }),
            4 => (1u8..32, 1u32..3, prop_oneof![Just(0u8), Just(31u8), 0u8..32])
                .prop_map(|(voters, challenge, upheld)| Op::Vote { voters, challenge, upheld }),
            1 => Just(Op::Close),
            1 => (1u64..8).prop_map(|blocks| Op::Idle { blocks }),
        ]
    }

    fn bodies(h: &H, op: &Op) -> Vec<(usize, TxBody)> {
        if let Op::Vote {
            voters,
            challenge,
            upheld,
        } = *op
        {
            return (0..5)
                .filter(|i| voters & (1 << i) != 0)
                .map(|i| {
                    let who = VALIDATORS.get(i).copied().unwrap_or(STRANGER);
                    (who, vote(challenge, upheld & (1 << i) != 0))
                })
                .collect();
        }
        body(h, op).into_iter().collect()
    }

    fn body(h: &H, op: &Op) -> Option<(usize, TxBody)> {
        Some(match *op {
            Op::Step { score } => {
                let t = h.task();
                match t.open_round() {
                    Some(r) => {
                        let scores: Vec<(u64, u64)> =
                            r.selected.iter().map(|&d| (d, score / d)).collect();
                        (COORD, result(1, r.number, r.selected.clone(), &scores))
                    }
                    None => (COORD, open(&h.s, 1, 3)),
                }
            }
            Op::Challenge {
                round,
                claim,
                group,
            } => {
                let claim = match claim {
                    0 => Claim::GroupSum { group },
                    1 => Claim::Aggregate,
                    2 => Claim::Model,
                    _ => Claim::Score { group },
                };
                (STRANGER, challenge(round, claim))
            }
            Op::Vote { .. } => unreachable!("built by bodies"),
            Op::Close => (CREATOR, close(1, SALT)),
            Op::Idle { .. } => return None,
        })
    }

    /// Every token, counted from the entries rather than by `State::supply`.
    fn tokens(s: &State) -> u128 {
        let accounts: u128 = s
            .accounts()
            .map(|a| a.balance + a.staked + a.unbonding_total())
            .sum();
        let tasks: u128 = s
            .tasks()
            .map(|t| {
                let bonds: u128 = t.bonds.iter().map(|b| b.amount).sum();
                let deposits: u128 = t
                    .challenges
                    .iter()
                    .filter(|c| c.verdict.is_none())
                    .map(|c| c.deposit)
                    .sum();
                t.escrow + bonds + deposits
            })
            .sum();
        accounts + tasks + s.burned()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Random rounds, challenges, votes, closes and idle stretches on four validators with
        /// a random window: admission equals the block's verdict, tokens are conserved, a
        /// replica agrees, a state restored from a snapshot half-way goes on with the same
        /// roots, a settlement pays exactly the escrow and never for an invalid round, and a
        /// challenge is decided only by more than two thirds of the stake.
        #[test]
        fn challenges_conserve_tokens_and_replicas_agree(
            window in 0u64..12,
            ops in prop::collection::vec(op(), 1..40),
            restore_at in 0usize..40,
        ) {
            let mut h = net(window);
            let genesis = h.s.supply().genesis;
            let mut replica = h.s.clone();
            for (i, op) in ops.iter().enumerate() {
                if i == restore_at {
                    h.s = State::from_snapshot(h.s.snapshot()).unwrap();
                }
                let txs: Vec<SignedTx> = bodies(&h, op)
                    .into_iter()
                    .map(|(who, body)| h.tx(who, body))
                    .collect();
                let blocks = match op {
                    Op::Idle { blocks } => *blocks,
                    _ => 1,
                };
                for b in 0..blocks {
                    let txs = if b == 0 { txs.clone() } else { Vec::new() };
                    let admitted: Vec<_> = txs.iter().map(|tx| h.s.check_tx(tx)).collect();
                    let escrow = h.task().escrow;
                    let pre = h.s.clone();
                    let blk = next_block(&h.s, Address([0xAB; 32]), txs);
                    let out = h.s.apply_block(&blk);
                    prop_assert_eq!(&out, &replica.apply_block(&blk));
                    // Challenges whose voting ends before this block: the block start resolves
                    // them (undecided), so their claims may be challenged again in it.
                    let expiring = pre.task(1).is_some_and(|t| {
                        t.challenges
                            .iter()
                            .any(|c| c.is_pending() && c.vote_deadline <= pre.height())
                    });
                    for (a, r) in admitted.iter().zip(&out.receipts) {
                        // The block-start settlement may move state between admission and
                        // application only for challenges and votes at a boundary height:
                        // a window or a vote that closed, or a duplicate claim whose pending
                        // challenge expired.
                        if a.is_ok() != r.is_ok() {
                            let closed = matches!(
                                &r.result,
                                Err(TxError::ChallengeWindowClosed { .. } | TxError::ChallengeNotPending { .. })
                            );
                            let reopened = r.is_ok()
                                && expiring
                                && matches!(a, Err(TxError::InvalidField { field, .. }) if field == "claim");
                            prop_assert!(closed || reopened, "{:?} vs {:?}", a, r.result);
                        }
                    }
                    prop_assert_eq!(tokens(&h.s), genesis);
                    prop_assert_eq!(h.s.supply().total, genesis);
                    let (mut paid, mut closed) = (0u128, None);
                    for e in &out.events {
                        match e {
                            Event::RewardPaid { dataset, amount, .. } => {
                                paid += amount;
                                // A dataset is paid only if a valid round scored it.
                                let t = h.task();
                                prop_assert!(t.round_log.iter().any(|r| !t.round_invalid(r.number)
                                    && r.outcome.as_ref().is_some_and(|o| o.scores.iter().any(|s| s.dataset == *dataset && s.value > 0))));
                            }
                            Event::TaskClosed { paid: p, refund, .. } => closed = Some((*p, *refund)),
                            Event::ChallengeResolved { challenge, verdict, .. } if *verdict != Verdict::Undecided => {
                                let c = &h.task().challenges[*challenge as usize - 1];
                                let set = h.s.validator_set(c.epoch).unwrap();
                                let total: u128 = set.members.iter().map(|m| m.stake).sum();
                                let side: u128 = c.votes.iter()
                                    .filter(|v| v.upheld == (*verdict == Verdict::Upheld))
                                    .map(|_| STAKE).sum();
                                prop_assert!(side * 3 > total * 2);
                            }
                            _ => {}
                        }
                    }
                    if let Some((p, refund)) = closed {
                        // Escrow as it was before the block, plus what slashes added in it.
                        let slashed: u128 = out.events.iter().map(|e| match e {
                            Event::ChallengeResolved { to_escrow, .. } => *to_escrow,
                            _ => 0,
                        }).sum();
                        prop_assert_eq!(p, paid);
                        prop_assert_eq!(p + refund, escrow + slashed);
                        prop_assert!(pre.task(1).unwrap().status != TaskStatus::Closed);
                    }
                }
            }
        }
    }
}
