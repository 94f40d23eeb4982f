//! A malicious coordinator against real owner rounds and the public verifier, in one process.
//!
//! Each test plays one attack from the malicious-coordinator review with the production
//! [`OwnerRound`] and [`verify_round`]; each attack must end in a named refusal by the owner or
//! a named mismatch in verification. The attacks that need the ledger or HTTP (re-invites,
//! undercharged ε, a σ below an owner's floor, a frozen round) are in
//! `tests/it/roles_edges.rs`; the SecAgg-level ones (split survivor stories, forged consistency
//! signatures, the threshold bound) in `deai-secagg/tests/it/adversary.rs`.

use std::collections::BTreeMap;

use deai_ledger::Digest;
use deai_secagg::client::ClientError;
use deai_secagg::hash_vector;
use deai_secagg::msg::{ServerBody, ServerMsg};

use super::coordinator::CoordinatorRound;
use super::harness::tests::{baseline, check_with, first_round, owners, spec};
use super::record::{GroupResult, RecordLimits, RoundRecord, masked_blob, masked_words};
use super::verify::{Mismatch, RecordedRound};
use super::{FedError, OwnerRound, TaskSpec};

/// Starts every selected owner's round and hands its advert to `coordinator`.
fn join(
    spec: &TaskSpec,
    info: &crate::RoundInfo,
    global: &[f32],
    owners: &[crate::harness::Owner],
    coordinator: &mut CoordinatorRound,
) -> BTreeMap<u64, OwnerRound> {
    let mut live = BTreeMap::new();
    for o in owners.iter().filter(|o| info.selected.contains(&o.dataset)) {
        let seed = [o.dataset as u8; 32];
        let mut state = OwnerRound::start(spec, info, o.dataset, &o.data, global, &o.key, seed)
            .expect("starts");
        let advert = state.poll_transmit().expect("an advert");
        coordinator
            .handle_client_msg(o.dataset, &advert)
            .expect("advert");
        live.insert(o.dataset, state);
    }
    live
}

/// The coordinator forwards no shares to one owner, so that owner's masked input would carry
/// only its self mask (which its neighbours reveal when told it is alive): the owner refuses
/// the short list and sends nothing more.
#[test]
fn an_owner_refuses_a_short_share_list() {
    let spec = spec();
    let (owners, _) = owners(10);
    let (info, global) = first_round(&spec, &owners);
    let mut coordinator = CoordinatorRound::new(&spec, &info, global.clone()).expect("plan");
    let mut live = join(&spec, &info, &global, &owners, &mut coordinator);
    coordinator.advance().expect("neighbours");
    while let Some((id, bytes)) = coordinator.poll_transmit() {
        let owner = live.get_mut(&id).expect("a live owner");
        owner.handle_server_msg(&bytes).expect("honest");
        let reply = owner.poll_transmit().expect("shares");
        coordinator.handle_client_msg(id, &reply).expect("shares");
    }
    coordinator.advance().expect("shares");
    let victim = info.selected[0];
    let limits = coordinator.plan().groups[coordinator.plan().position[&victim].0]
        .config
        .limits();
    let (_, honest) = std::iter::from_fn(|| coordinator.poll_transmit())
        .find(|(id, _)| *id == victim)
        .expect("the victim is sent its shares");
    let honest = ServerMsg::decode(&honest, &limits).expect("decodes");
    let empty = ServerMsg {
        body: ServerBody::Shares(Vec::new()),
        ..honest
    };
    let owner = live.get_mut(&victim).expect("live");
    let err = owner
        .handle_server_msg(&empty.encode())
        .expect_err("refused");
    assert!(
        matches!(
            err,
            FedError::Client(ClientError::TooFewSharers { have: 1, .. })
        ),
        "{err}"
    );
    // The owner aborted: it answers nothing from now on.
    assert!(owner.handle_server_msg(&empty.encode()).is_err());
    assert!(owner.poll_transmit().is_none());
}

/// The coordinator asks a group of 10 to sign a survivor list of 7: enough for the SecAgg
/// threshold (6), but more dropouts than the threat model allows (2), so the honest noise in
/// the sum could fall below what each owner was calibrated for. The owner refuses to sign.
#[test]
fn an_owner_refuses_to_sign_a_list_with_more_dropouts_than_the_threat_model_allows() {
    let spec = TaskSpec {
        datasets_per_round: 10,
        group_size_min: 10,
        ..spec()
    };
    let (owners, _) = owners(10);
    let (info, global) = first_round(&spec, &owners);
    let mut coordinator = CoordinatorRound::new(&spec, &info, global.clone()).expect("plan");
    let group = coordinator.plan().groups[0].clone();
    assert_eq!((group.params.threshold, group.survivors_required), (6, 8));
    let mut live = join(&spec, &info, &global, &owners, &mut coordinator);
    let limits = group.config.limits();
    // Neighbours, shares, masked inputs: relayed honestly until the consistency request.
    loop {
        coordinator.advance().expect("an honest step");
        let outgoing: Vec<(u64, Vec<u8>)> =
            std::iter::from_fn(|| coordinator.poll_transmit()).collect();
        let consistency = outgoing.iter().find_map(|(id, bytes)| {
            let msg = ServerMsg::decode(bytes, &limits).expect("decodes");
            matches!(msg.body, ServerBody::Consistency(_)).then_some((*id, msg))
        });
        if let Some((victim, msg)) = consistency {
            let ServerBody::Consistency(all) = &msg.body else {
                unreachable!("matched above")
            };
            assert_eq!(all.len(), 10);
            let me = group
                .members
                .iter()
                .position(|&d| d == victim)
                .expect("member") as u32;
            let mut short: Vec<u32> = all.iter().copied().filter(|&c| c != me).take(6).collect();
            short.push(me);
            short.sort_unstable();
            let forged = ServerMsg {
                body: ServerBody::Consistency(short),
                ..msg
            };
            let owner = live.get_mut(&victim).expect("live");
            let err = owner
                .handle_server_msg(&forged.encode())
                .expect_err("refused");
            assert!(
                matches!(err, FedError::TooFewSurvivors { have: 7, need: 8 }),
                "{err}"
            );
            assert!(owner.poll_transmit().is_none(), "it signed nothing");
            return;
        }
        for (id, bytes) in outgoing {
            let owner = live.get_mut(&id).expect("a live owner");
            owner.handle_server_msg(&bytes).expect("honest");
            if let Some(reply) = owner.poll_transmit() {
                coordinator
                    .handle_client_msg(id, &reply)
                    .expect("honest reply");
            }
        }
    }
}

const LIMITS: RecordLimits = RecordLimits {
    datasets_max: 64,
    vector_len_max: 1 << 20,
};

/// The coordinator swaps one survivor's masked input for another vector (any group sum, hence
/// any scores and payouts, can be made this way), and rewrites the record and the recorded
/// hashes to match. Verification names the unsigned input.
#[test]
fn a_substituted_masked_input_fails_verification() {
    let report = baseline();
    let o = &report.rounds[0].outcome;
    let mut recorded = RecordedRound::from(&o.round_result(1, 1));
    let mut record = RoundRecord::decode(&o.record.1, &LIMITS).expect("decodes");
    let g = record
        .groups
        .iter()
        .position(|g| matches!(g.result, GroupResult::Done(_)))
        .expect("a group completed");
    let members = record.groups[g].members.clone();
    let modulus = (1u64 << record.groups[g].modulus_bits) - 1;
    let GroupResult::Done(u) = &mut record.groups[g].result else {
        unreachable!("checked above")
    };
    let victim = members[u.survivors[0] as usize];
    let at = recorded
        .survivors
        .iter()
        .position(|&d| d == victim)
        .expect("a survivor");
    let len = o.masked[at].1.len() / 4;
    let mut words = masked_words(&o.masked[at].1, len).expect("words");
    words[0] = ((u64::from(words[0]) + 12345) & modulus) as u32;
    let forged = masked_blob(&words);
    let forged_hash = Digest(hash_vector(&words));
    assert_eq!(
        forged_hash,
        Digest::hash(&forged),
        "the blob hash is the vector hash"
    );
    u.masked_hashes[0] = forged_hash.0;
    let bytes = record.encode();
    let mut blobs = report.blobs.clone();
    blobs.insert(forged_hash, forged);
    let record_hash = Digest::hash(&bytes);
    blobs.insert(record_hash, bytes);
    recorded.masked_updates[at] = forged_hash;
    recorded.unmasking = record_hash;
    let m = check_with(report, &blobs, &recorded);
    assert!(
        m.iter().any(|x| matches!(x, Mismatch::GroupSum { reason, .. } if reason.contains("is not the one it signed"))),
        "{m:?}"
    );
}
