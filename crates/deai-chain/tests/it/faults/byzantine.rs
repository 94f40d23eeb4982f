//! The Byzantine validator: the chain's own engine under a validator key, with up to three
//! faults layered on, all on Commonware's simulated network.
//!
//! - Equivocation. The key's channels are split with the simulator's `split_with` (the same
//!   mechanism Commonware's Twins tests use) between the engine and a twin that signs with the
//!   same key: a second engine talking to other honest peers (two proposals and two sets of
//!   votes per view), or Commonware's `Conflicter` or `Nuller` actor (conflicting notarize and
//!   finalize votes, or nullify and finalize for one view).
//! - Withheld votes. The engine's outgoing votes of the chosen kinds are dropped inside a time
//!   window, by the split sender's forwarder.
//! - Tampered proposals. [`deai_chain::faults::tamper_proposals`] rewrites blocks the key
//!   proposes, inside a time window: blocks honest validators must refuse, or valid blocks with
//!   a transaction the ledger must reject. Each tampered proposal is recorded as a
//!   [`DeedRecord`], the ground truth the checks hold the honest chains against.
use super::plan::{Deed, Draw, Invalid, Plan, Twin, Window, Withheld};
use crate::common::*;
use commonware_codec::DecodeExt as _;
use commonware_consensus::simplex::{
    mocks::{conflicter, nuller},
    scheme::ed25519::Scheme,
    types::Vote,
};
use commonware_cryptography::{Digestible as _, Signer as _, blake3::Blake3};
use commonware_p2p::{
    Recipients,
    simulated::{Oracle, SplitOrigin, SplitTarget},
};
use commonware_runtime::{Clock as _, IoBuf, Supervisor as _};
use commonware_utils::{ordered::Set, sync::Mutex};
use deai_chain::{Block, BlockDigest, Channels, Config, Handle, channel};
use deai_ledger::{Address, Genesis, SignedTx, TxId};
use ed25519_dalek::SigningKey;
use std::{sync::Arc, time::Duration, time::SystemTime};

/// A proposal the Byzantine validator tampered with.
#[derive(Clone, Debug)]
pub(super) struct DeedRecord {
    pub(super) view: u64,
    pub(super) deed: Deed,
    /// The tampered block's digest.
    pub(super) digest: BlockDigest,
    /// The invalid transaction a tx-level deed added.
    pub(super) tx: Option<TxId>,
}

/// Accounts the Byzantine validator uses.
#[derive(Clone)]
pub(super) struct Accounts {
    /// Funded key the Byzantine validator controls (future-nonce and filler transactions).
    pub(super) mallory: SigningKey,
    /// An honest funded account it forges transfers from.
    pub(super) victim: Address,
    /// Where every forged or invalid transfer pays; its balance must stay zero.
    pub(super) thief: Address,
}

/// The running Byzantine validator.
pub(super) struct Byzantine {
    pub(super) deeds: Arc<Mutex<Vec<DeedRecord>>>,
    _tamper: Option<deai_chain::faults::Registration>,
}

/// Who each half of the split key talks to, and what the main half withholds.
struct Route {
    primary: Vec<PublicKey>,
    secondary: Vec<PublicKey>,
    withhold: Option<(Withheld, Window)>,
    clock: Ctx,
    start: SystemTime,
}

impl Route {
    fn elapsed(&self) -> Duration {
        self.clock
            .current()
            .duration_since(self.start)
            .unwrap_or_default()
    }

    /// Whether the main engine's vote `message` is dropped now.
    fn withholds(&self, message: &IoBuf) -> bool {
        let Some((what, window)) = self.withhold else {
            return false;
        };
        if !window.contains(self.elapsed()) {
            return false;
        }
        match Vote::<Scheme, BlockDigest>::decode(message.clone()) {
            Ok(Vote::Finalize(_)) => true,
            Ok(Vote::Notarize(_)) => what != Withheld::Finalize,
            Ok(Vote::Nullify(_)) => what == Withheld::All,
            Err(_) => false,
        }
    }
}

/// The forwarder of every split channel: one function, so every channel's sender has the same
/// type, as [`Channels`] requires.
fn forwarder(
    route: Arc<Route>,
    channel: u64,
) -> impl Fn(SplitOrigin, &Recipients<PublicKey>, &IoBuf) -> Option<Recipients<PublicKey>>
+ Send
+ Sync
+ Clone
+ 'static {
    move |origin, recipients, message| {
        let targets = match origin {
            SplitOrigin::Primary => &route.primary,
            SplitOrigin::Secondary => &route.secondary,
        };
        if channel == channel::VOTES && origin == SplitOrigin::Primary && route.withholds(message) {
            // Sent to nobody, rather than refused: the engine goes on as if it had voted.
            return Some(Recipients::Some(Vec::new()));
        }
        Some(match recipients {
            Recipients::All => Recipients::Some(targets.clone()),
            Recipients::Some(v) => {
                Recipients::Some(v.iter().filter(|p| targets.contains(p)).cloned().collect())
            }
            Recipients::One(p) if targets.contains(p) => Recipients::One(p.clone()),
            Recipients::One(_) => Recipients::Some(Vec::new()),
        })
    }
}

/// Hands each incoming message to the half (or halves) that talks to its sender.
fn router(
    route: Arc<Route>,
) -> impl Fn(&(PublicKey, IoBuf)) -> SplitTarget + Send + Sync + 'static {
    move |(from, _)| match (route.primary.contains(from), route.secondary.contains(from)) {
        (true, true) => SplitTarget::Both,
        (true, false) => SplitTarget::Primary,
        (false, true) => SplitTarget::Secondary,
        (false, false) => SplitTarget::None,
    }
}

/// Registers the chain's channels for `control`'s key and splits each between two halves.
async fn split_channels(
    context: &Ctx,
    oracle: &Oracle<PublicKey, Ctx>,
    me: &PublicKey,
    route: &Arc<Route>,
) -> (
    Channels<
        impl commonware_p2p::Sender<PublicKey = PublicKey>,
        impl commonware_p2p::Receiver<PublicKey = PublicKey>,
    >,
    Channels<
        impl commonware_p2p::Sender<PublicKey = PublicKey>,
        impl commonware_p2p::Receiver<PublicKey = PublicKey>,
    >,
) {
    let control = oracle.control(me.clone());
    let mut primary = Vec::new();
    let mut secondary = Vec::new();
    for ch in CHANNELS {
        let (sender, receiver) = control.register(ch, QUOTA).await.expect("register channel");
        let (sa, sb) = sender.split_with(forwarder(route.clone(), ch));
        let (ra, rb) = receiver.split_with(context.child("split"), router(route.clone()));
        primary.push((sa, ra));
        secondary.push((sb, rb));
    }
    (channels(primary), channels(secondary))
}

/// Starts the Byzantine validator `plan.byzantine` with the faults `plan` gives it.
pub(super) async fn start(
    context: &Ctx,
    oracle: &Oracle<PublicKey, Ctx>,
    cfg: Config,
    peers: &[PublicKey],
    plan: &Plan,
    accounts: Accounts,
    honest_txs: Arc<Mutex<Vec<SignedTx>>>,
) -> Byzantine {
    let me = cfg.signer.public_key();
    let keys_of = |v: &[usize]| v.iter().map(|&i| peers[i].clone()).collect::<Vec<_>>();
    let secondary = match &plan.twin {
        Twin::None => Vec::new(),
        Twin::Engine { secondary, .. }
        | Twin::Conflicter { secondary }
        | Twin::Nuller { secondary } => keys_of(secondary),
    };
    let start = context.current();
    let route = Arc::new(Route {
        primary: keys_of(&plan.primary()),
        secondary,
        withhold: plan.withhold,
        clock: context.child("withhold_clock"),
        start,
    });
    let (main, twin) = split_channels(context, oracle, &me, &route).await;
    let handle = deai_chain::start_with_network(
        context.child("byzantine"),
        cfg.clone(),
        main,
        oracle.manager(),
        oracle.control(me.clone()),
        Box::new(()),
    )
    .await
    .expect("byzantine validator starts");

    let scheme = || {
        let participants = Set::try_from(peers.to_vec()).expect("distinct validators");
        let namespace = deai_chain::faults::consensus_namespace(&cfg);
        Scheme::signer(&namespace, participants, cfg.signer.clone()).expect("a participant")
    };
    match &plan.twin {
        Twin::None => {}
        Twin::Engine { .. } => {
            let mut twin_cfg = cfg.clone();
            twin_cfg.partition_prefix = format!("{}-twin", cfg.partition_prefix);
            deai_chain::start_with_network(
                context.child("twin"),
                twin_cfg,
                twin,
                oracle.manager(),
                oracle.control(me.clone()),
                Box::new(()),
            )
            .await
            .expect("twin starts");
        }
        Twin::Conflicter { .. } => {
            conflicter::Conflicter::<_, Scheme, Blake3>::new(
                context.child("conflicter"),
                conflicter::Config { scheme: scheme() },
            )
            .start(twin.votes);
        }
        Twin::Nuller { .. } => {
            nuller::Nuller::<_, Scheme, Blake3>::new(
                context.child("nuller"),
                nuller::Config { scheme: scheme() },
            )
            .start(twin.votes);
        }
    }

    let deeds = Arc::new(Mutex::new(Vec::new()));
    let tamper = plan.invalid.clone().map(|invalid| {
        let mut tamperer = Tamperer {
            invalid,
            clock: context.child("tamper_clock"),
            start,
            draw: Draw::new(plan.seed ^ 0x7a3b),
            replica: handle.clone(),
            genesis: cfg.genesis.clone(),
            accounts,
            impostor: address_of(&peers[(plan.byzantine + 1) % peers.len()]),
            honest_txs,
            deeds: deeds.clone(),
            minted: 0,
        };
        deai_chain::faults::tamper_proposals(me.clone(), move |view, block| {
            tamperer.tamper(view, block)
        })
    });
    Byzantine {
        deeds,
        _tamper: tamper,
    }
}

pub(super) fn address_of(key: &PublicKey) -> Address {
    Address(key.as_ref().try_into().expect("ed25519 keys are 32 bytes"))
}

/// Rewrites the Byzantine validator's proposals (see [`Deed`]).
struct Tamperer {
    invalid: Invalid,
    clock: Ctx,
    start: SystemTime,
    draw: Draw,
    /// The Byzantine validator's own replica, for nonces.
    replica: Handle,
    genesis: Genesis,
    accounts: Accounts,
    /// Another validator, named as proposer by [`Deed::WrongProposer`].
    impostor: Address,
    honest_txs: Arc<Mutex<Vec<SignedTx>>>,
    deeds: Arc<Mutex<Vec<DeedRecord>>>,
    /// Transactions made up so far (keeps each one distinct).
    minted: u64,
}

/// A block's fields, to rebuild it with some changed.
struct Parts {
    parent: BlockDigest,
    height: u64,
    proposer: Address,
    root: deai_ledger::Digest,
    timestamp_ms: u64,
    entropy: [u8; 32],
    txs: Vec<SignedTx>,
}

impl Parts {
    fn of(b: &Block) -> Self {
        Self {
            parent: b.parent,
            height: b.height,
            proposer: b.proposer,
            root: b.parent_state_root,
            timestamp_ms: b.timestamp_ms,
            entropy: b.entropy,
            txs: b.txs().to_vec(),
        }
    }

    fn build(self) -> Block {
        Block::new(
            self.parent,
            self.height,
            self.proposer,
            self.root,
            self.timestamp_ms,
            self.entropy,
            self.txs,
        )
    }
}

impl Tamperer {
    fn tamper(&mut self, view: u64, block: Block) -> Block {
        let now = self
            .clock
            .current()
            .duration_since(self.start)
            .unwrap_or_default();
        if !self.invalid.window.contains(now) || !self.draw.percent(self.invalid.percent) {
            return block;
        }
        let deed = self.invalid.deeds[self.draw.below(self.invalid.deeds.len())];
        let mut parts = Parts::of(&block);
        let mut tx = None;
        match deed {
            Deed::WrongStateRoot => parts.root.0[0] ^= 0x80,
            Deed::WrongProposer => parts.proposer = self.impostor,
            Deed::WrongHeight => parts.height += 1,
            Deed::WrongParent => parts.parent = BlockDigest::from([0xa5; 32]),
            Deed::Oversized => {
                let max = self.genesis.params.block_txs_max as usize;
                while parts.txs.len() <= max {
                    let filler = self.mallory_tx(1_000_000);
                    parts.txs.push(filler);
                }
            }
            Deed::BadSignature => {
                let nonce = self.nonce_of(&self.accounts.victim);
                let amount = 1 + self.next_minted();
                let mut forged = transfer(
                    &self.genesis,
                    &self.accounts.mallory,
                    self.accounts.thief,
                    amount,
                    nonce,
                );
                forged.tx.sender = self.accounts.victim;
                tx = Some(forged);
            }
            Deed::FutureNonce => {
                let tx_ahead = self.mallory_tx(3);
                tx = Some(tx_ahead);
            }
            Deed::ReplayedNonce => {
                let spent: Vec<SignedTx> = self
                    .honest_txs
                    .lock()
                    .iter()
                    .filter(|t| t.tx.nonce < self.nonce_of(&t.tx.sender))
                    .cloned()
                    .collect();
                if spent.is_empty() {
                    return block; // nothing finalized yet to replay
                }
                tx = Some(spent[self.draw.below(spent.len())].clone());
            }
        }
        let tx_id = tx.as_ref().map(SignedTx::id);
        parts.txs.extend(tx);
        let tampered = parts.build();
        self.deeds.lock().push(DeedRecord {
            view,
            deed,
            digest: tampered.digest(),
            tx: tx_id,
        });
        tampered
    }

    fn nonce_of(&self, account: &Address) -> u64 {
        self.replica.read_state(|s| s.account(account).nonce)
    }

    fn next_minted(&mut self) -> u128 {
        self.minted += 1;
        u128::from(self.minted)
    }

    /// A correctly signed transfer from mallory to the thief, `ahead` nonces past mallory's
    /// next (and past every one it made up before, so each is distinct).
    fn mallory_tx(&mut self, ahead: u64) -> SignedTx {
        let mallory = crate::common::address(&self.accounts.mallory);
        let nonce = self.nonce_of(&mallory) + ahead + self.minted;
        let amount = self.next_minted();
        transfer(
            &self.genesis,
            &self.accounts.mallory,
            self.accounts.thief,
            amount,
            nonce,
        )
    }
}
