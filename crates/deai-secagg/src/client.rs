//! The client state machine.
//!
//! ```text
//! new ──► AwaitNeighbours ──Neighbours──► AwaitShares ──Shares──► AwaitUnmask ──Unmask──► Done
//!              (sent Advert)        (sent Shares)          (sent Masked)      (sent Unmask)
//! any error ──► Aborted (nothing more is ever sent)
//! ```
//!
//! Drive it with [`Client::handle`] for each server message and [`Client::poll_transmit`] after
//! each call (and after [`Client::new`]) until it returns `None`.
//!
//! Invariants that protect the client's input:
//! - it answers at most one unmasking request, and for each secret owner it reveals either the
//!   self-mask share (owner reported alive) or the mask-key share (owner reported dropped),
//!   never both;
//! - it reveals nothing if fewer than `t` of its share holders (itself included) survived;
//! - it refuses a request that reports itself as dropped, or names a client that never shared.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::config::RoundConfig;
use crate::crypto;
use crate::msg::{
    Advert, ClientBody, ClientMsg, RevealedShare, SealedShares, ServerBody, ServerMsg, ShareKind,
};
use crate::prg::{self, Sign};
use crate::shamir::{self, SHARE_BYTES, Share};

/// Where a client is in the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientPhase {
    /// Advert sent; waiting for the neighbours' adverts.
    AwaitNeighbours,
    /// Shares sent; waiting for the neighbours' shares.
    AwaitShares,
    /// Masked input sent; waiting for the unmasking request.
    AwaitUnmask,
    /// Shares revealed; the client's part is over.
    Done,
    /// The client stopped after an error and will send nothing more.
    Aborted,
}

/// Why a client refused a message or stopped.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The client id is not in the round.
    #[error("client id {me} not below {clients}")]
    UnknownId {
        /// This client's id.
        me: u32,
        /// Clients in the round.
        clients: u32,
    },
    /// The signing key is not the identity the configuration lists for this client.
    #[error("signing key does not match identity of client {0}")]
    WrongIdentity(u32),
    /// The input has the wrong length or a word at or above 2^b.
    #[error("input of {len} words (need {need}) or word out of range")]
    BadInput {
        /// Length given.
        len: usize,
        /// Length needed.
        need: u32,
    },
    /// The message is for another round or another client.
    #[error("message for round {round} client {to}")]
    Misaddressed {
        /// Round in the message.
        round: u64,
        /// Recipient in the message.
        to: u32,
    },
    /// The message does not fit the current phase.
    #[error("unexpected message in phase {0:?}")]
    WrongPhase(ClientPhase),
    /// An advert names a non-neighbour, repeats one, or has a bad signature.
    #[error("bad advert from client {0}")]
    BadAdvert(u32),
    /// Shares came from a client that is not an advertised neighbour, or out of order.
    #[error("unexpected shares from client {0}")]
    BadSharer(u32),
    /// Too few neighbours to reach the threshold.
    #[error("{have} share holders, threshold {need}")]
    TooFewHolders {
        /// Holders available (this client included).
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// The unmasking request names a client that did not share with us, or omits this client.
    #[error("inconsistent unmasking request naming client {0}")]
    BadSurvivors(u32),
}

struct Peer {
    channel: crypto::ShareChannel,
    mask_pk: PublicKey,
}

/// One client's side of a SecAgg+ round.
pub struct Client {
    config: Arc<RoundConfig>,
    me: u32,
    neighbours: Vec<u32>,
    input: Vec<u32>,
    cipher_sk: StaticSecret,
    mask_sk: StaticSecret,
    self_seed: [u8; 32],
    peers: BTreeMap<u32, Peer>,
    /// Shares this client holds, by owner (itself included); `None` if the ciphertext was bad.
    held: BTreeMap<u32, Option<[Share; 2]>>,
    phase: ClientPhase,
    outbox: VecDeque<ClientMsg>,
}

impl Client {
    /// Starts a round: draws fresh keys and the self-mask seed, and queues the advert.
    /// `input` is the quantized vector ([`crate::quant::Quantizer::quantize`]), words below 2^b.
    pub fn new<R: RngCore + CryptoRng>(
        config: Arc<RoundConfig>,
        me: u32,
        identity: &SigningKey,
        input: Vec<u32>,
        rng: &mut R,
    ) -> Result<Self, ClientError> {
        let clients = config.clients();
        if me >= clients {
            return Err(ClientError::UnknownId { me, clients });
        }
        if config.identities[me as usize] != identity.verifying_key() {
            return Err(ClientError::WrongIdentity(me));
        }
        let max = prg::modulus_mask(config.modulus_bits);
        if input.len() != config.vector_len as usize || input.iter().any(|&w| w > max) {
            return Err(ClientError::BadInput {
                len: input.len(),
                need: config.vector_len,
            });
        }
        let cipher_sk = StaticSecret::random_from_rng(&mut *rng);
        let mask_sk = StaticSecret::random_from_rng(&mut *rng);
        let mut self_seed = [0u8; 32];
        rng.fill_bytes(&mut self_seed);
        let cipher_pk = PublicKey::from(&cipher_sk).to_bytes();
        let mask_pk = PublicKey::from(&mask_sk).to_bytes();
        let signature = crypto::sign_advert(identity, config.round, me, &cipher_pk, &mask_pk);
        let advert = Advert {
            from: me,
            cipher_pk,
            mask_pk,
            signature,
        };
        let neighbours = config.graph().neighbours(me);
        let mut client = Self {
            config,
            me,
            neighbours,
            input,
            cipher_sk,
            mask_sk,
            self_seed,
            peers: BTreeMap::new(),
            held: BTreeMap::new(),
            phase: ClientPhase::AwaitNeighbours,
            outbox: VecDeque::new(),
        };
        client.send(ClientBody::Advert(advert));
        Ok(client)
    }

    /// The client's id.
    pub fn id(&self) -> u32 {
        self.me
    }

    /// The current phase.
    pub fn phase(&self) -> ClientPhase {
        self.phase
    }

    /// The next message to send to the server, if any.
    pub fn poll_transmit(&mut self) -> Option<ClientMsg> {
        self.outbox.pop_front()
    }

    /// Handles one server message. An error aborts the client (except after it is done, when
    /// the message is only refused): it will send nothing more this round.
    pub fn handle<R: RngCore + CryptoRng>(
        &mut self,
        msg: ServerMsg,
        rng: &mut R,
    ) -> Result<(), ClientError> {
        if self.phase == ClientPhase::Done || self.phase == ClientPhase::Aborted {
            return Err(ClientError::WrongPhase(self.phase));
        }
        let result = self.dispatch(msg, rng);
        if result.is_err() {
            self.phase = ClientPhase::Aborted;
            self.outbox.clear();
        }
        result
    }

    fn dispatch<R: RngCore + CryptoRng>(
        &mut self,
        msg: ServerMsg,
        rng: &mut R,
    ) -> Result<(), ClientError> {
        if msg.round != self.config.round || msg.to != self.me {
            return Err(ClientError::Misaddressed {
                round: msg.round,
                to: msg.to,
            });
        }
        match (self.phase, msg.body) {
            (ClientPhase::AwaitNeighbours, ServerBody::Neighbours(adverts)) => {
                self.on_neighbours(&adverts, rng)
            }
            (ClientPhase::AwaitShares, ServerBody::Shares(shares)) => self.on_shares(&shares),
            (ClientPhase::AwaitUnmask, ServerBody::Unmask(survivors)) => self.on_unmask(&survivors),
            (phase, _) => Err(ClientError::WrongPhase(phase)),
        }
    }

    fn send(&mut self, body: ClientBody) {
        self.outbox.push_back(ClientMsg {
            round: self.config.round,
            from: self.me,
            body,
        });
    }

    fn on_neighbours<R: RngCore + CryptoRng>(
        &mut self,
        adverts: &[Advert],
        rng: &mut R,
    ) -> Result<(), ClientError> {
        let round = self.config.round;
        for a in adverts {
            let known =
                self.neighbours.binary_search(&a.from).is_ok() && !self.peers.contains_key(&a.from);
            let identity = &self.config.identities[a.from.min(self.config.clients() - 1) as usize];
            if !known
                || !crypto::verify_advert(
                    identity,
                    round,
                    a.from,
                    &a.cipher_pk,
                    &a.mask_pk,
                    &a.signature,
                )
            {
                return Err(ClientError::BadAdvert(a.from));
            }
            let peer = Peer {
                channel: crypto::ShareChannel::new(&self.cipher_sk, &PublicKey::from(a.cipher_pk)),
                mask_pk: PublicKey::from(a.mask_pk),
            };
            self.peers.insert(a.from, peer);
        }
        let t = self.config.threshold();
        let holders: Vec<u32> = self
            .peers
            .keys()
            .copied()
            .chain([self.me])
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if holders.len() < t {
            return Err(ClientError::TooFewHolders {
                have: holders.len(),
                need: t,
            });
        }
        let xs: Vec<u32> = holders.iter().map(|&h| h + 1).collect();
        let seed_shares = shamir::split(&self.self_seed, t, &xs, rng);
        let key_shares = shamir::split(&self.mask_sk.to_bytes(), t, &xs, rng);
        let mut sealed = Vec::with_capacity(self.peers.len());
        for ((&holder, seed_share), key_share) in holders.iter().zip(seed_shares).zip(key_shares) {
            if holder == self.me {
                self.held.insert(self.me, Some([seed_share, key_share]));
                continue;
            }
            let mut plain = [0u8; 2 * SHARE_BYTES];
            plain[..SHARE_BYTES].copy_from_slice(&seed_share.value_bytes());
            plain[SHARE_BYTES..].copy_from_slice(&key_share.value_bytes());
            let peer = &self.peers[&holder];
            let ct = peer.channel.seal(round, self.me, holder, &plain);
            let ciphertext = ct.try_into().expect("sealed shares have a fixed size");
            sealed.push(SealedShares {
                peer: holder,
                ciphertext,
            });
        }
        self.phase = ClientPhase::AwaitShares;
        self.send(ClientBody::Shares(sealed));
        Ok(())
    }

    fn on_shares(&mut self, shares: &[SealedShares]) -> Result<(), ClientError> {
        let round = self.config.round;
        let mut last = None;
        for s in shares {
            let Some(peer) = self.peers.get(&s.peer).filter(|_| last < Some(s.peer)) else {
                return Err(ClientError::BadSharer(s.peer));
            };
            last = Some(s.peer);
            // A neighbour that sent an undecryptable share still masks with us, so we mask with
            // it too; we just hold no share of its secrets.
            let opened = peer
                .channel
                .open(round, s.peer, self.me, &s.ciphertext)
                .and_then(|plain| decode_share_pair(self.me + 1, &plain));
            self.held.insert(s.peer, opened);
        }
        let mut masked = std::mem::take(&mut self.input);
        prg::apply_mask(&mut masked, &self.self_seed, Sign::Add);
        for s in shares {
            let peer = &self.peers[&s.peer];
            let seed = crypto::pairwise_seed(&self.mask_sk, &peer.mask_pk, round, self.me, s.peer);
            prg::apply_mask(&mut masked, &seed, pair_sign(self.me, s.peer));
        }
        prg::reduce(&mut masked, self.config.modulus_bits);
        self.phase = ClientPhase::AwaitUnmask;
        self.send(ClientBody::Masked(masked));
        Ok(())
    }

    fn on_unmask(&mut self, survivors: &[u32]) -> Result<(), ClientError> {
        let mut last = None;
        for &s in survivors {
            if !self.held.contains_key(&s) || last >= Some(s) {
                return Err(ClientError::BadSurvivors(s));
            }
            last = Some(s);
        }
        if survivors.binary_search(&self.me).is_err() {
            return Err(ClientError::BadSurvivors(self.me));
        }
        let t = self.config.threshold();
        if survivors.len() < t {
            return Err(ClientError::TooFewHolders {
                have: survivors.len(),
                need: t,
            });
        }
        let revealed = self
            .held
            .iter()
            .filter_map(|(&owner, pair)| {
                let [seed_share, key_share] = pair.as_ref()?;
                let alive = survivors.binary_search(&owner).is_ok();
                let (kind, share) = if alive {
                    (ShareKind::SelfMask, seed_share)
                } else {
                    (ShareKind::MaskKey, key_share)
                };
                Some(RevealedShare {
                    owner,
                    kind,
                    value: share.value_bytes(),
                })
            })
            .collect();
        self.phase = ClientPhase::Done;
        self.send(ClientBody::Unmask(revealed));
        Ok(())
    }
}

/// The sign with which client `me` adds the mask it shares with `peer`: the lower id adds.
pub fn pair_sign(me: u32, peer: u32) -> Sign {
    if me < peer { Sign::Add } else { Sign::Sub }
}

fn decode_share_pair(x: u32, plain: &[u8]) -> Option<[Share; 2]> {
    let seed: &[u8; SHARE_BYTES] = plain.get(..SHARE_BYTES)?.try_into().ok()?;
    let key: &[u8; SHARE_BYTES] = plain.get(SHARE_BYTES..)?.try_into().ok()?;
    Some([
        Share::from_value_bytes(x, seed).ok()?,
        Share::from_value_bytes(x, key).ok()?,
    ])
}
