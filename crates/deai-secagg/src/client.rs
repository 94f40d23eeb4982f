//! The client state machine.
//!
//! ```text
//! new ─► AwaitNeighbours ─Neighbours─► AwaitShares ─Shares─► AwaitConsistency ─Consistency─► AwaitUnmask ─Unmask─► Done
//!       (sent Advert)          (sent Shares)      (sent Masked)          (sent ConsistencySig)       (sent Unmask)
//! any error ─► Aborted (nothing more is ever sent)
//! ```
//!
//! Drive it with [`Client::handle_server_msg`] for each server message and [`Client::poll_transmit`] after
//! each call (and after [`Client::new`]) until it returns `None`.
//!
//! The server is not trusted. What each step checks, with `t` the threshold and the client's
//! *holders* the neighbours it can exchange shares with plus itself:
//! - **Neighbours:** only graph neighbours, each once, with a valid signed advert; at least
//!   `t - 1` of them (else [`ClientError::TooFewHolders`]).
//! - **Shares:** only from advertised neighbours, ascending; at least `t - 1` of them (else
//!   [`ClientError::TooFewSharers`]). The client masks with exactly the neighbours that sent it
//!   shares (its *partners*), so this bounds from below the pairwise masks that hide its
//!   input: a server that forwards none would otherwise get an input hidden by its self mask
//!   alone, which the holders reveal when told the client is alive.
//! - **Consistency:** the survivor list must name the client itself, no neighbour that is not
//!   a partner, and at least `t` holders (partners and itself); the client then signs it. A
//!   server that hides a partner's shares from the client, or calls the client's partners
//!   dropped to learn their pairwise masks with it, is refused here.
//! - **Unmask:** the list must be the one the client signed, and at least `t` of its holders
//!   (itself included) must have signed that list, with valid signatures (else
//!   [`ClientError::SurvivorsChanged`], [`ClientError::BadSigner`],
//!   [`ClientError::BadConsistencySignature`] or [`ClientError::TooFewSignatures`]).
//!
//! Invariants that protect the client's input and its neighbours':
//! - it signs at most one survivor list and answers at most one unmasking request; for each
//!   partner it reveals either the self-mask share (partner listed) or the mask-key share (not
//!   listed), never both;
//! - every honest holder that reveals about a client did so for a list that `t` of its own
//!   holders signed; with `2t > k + 1 + c` ([`crate::params`]) the server cannot collect `t`
//!   "alive" shares and `t` "dropped" shares of one client;
//! - its secrets (X25519 keys, self-mask seed, input) are wiped once its masked input is sent;
//!   shares it holds are wiped when the client is dropped.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand_core::{CryptoRng, RngCore};
use thiserror::Error;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

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
    /// Masked input sent; waiting for the survivor list to sign.
    AwaitConsistency,
    /// Survivor list signed; waiting for the unmasking request and its signatures.
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
    /// Too few holders (neighbours that advertised, or that are listed as survivors, plus this
    /// client) to reach the threshold.
    #[error("{have} share holders, threshold {need}")]
    TooFewHolders {
        /// Holders available (this client included).
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// Too few neighbours sent shares: the masked input would carry too few pairwise masks.
    #[error("{have} clients shared with this one (itself included), threshold {need}")]
    TooFewSharers {
        /// Neighbours that sent shares, plus this client.
        have: usize,
        /// Threshold.
        need: usize,
    },
    /// The survivor list is unsorted, omits this client, or names a neighbour that did not
    /// share with it (or an id outside the round).
    #[error("inconsistent survivor list naming client {0}")]
    BadSurvivors(u32),
    /// The unmasking request's survivor list is not the one this client signed.
    #[error("unmasking request for a survivor list other than the one signed")]
    SurvivorsChanged,
    /// A consistency signature comes from a client that is not one of this client's holders on
    /// the list, or repeats one.
    #[error("consistency signature from client {0}, not a listed holder")]
    BadSigner(u32),
    /// A consistency signature does not verify on the signed list.
    #[error("consistency signature of client {0} does not verify")]
    BadConsistencySignature(u32),
    /// Too few of this client's holders signed the list.
    #[error("{have} holders signed the survivor list, threshold {need}")]
    TooFewSignatures {
        /// Valid signatures from holders (this client's own included).
        have: usize,
        /// Threshold.
        need: usize,
    },
}

struct Peer {
    channel: crypto::ShareChannel,
    mask_pk: PublicKey,
}

/// What the client needs only until its masked input is out: then wiped (the X25519 secret
/// by x25519-dalek's `Drop`, the seed and input by `Zeroizing`).
struct Secrets {
    input: Zeroizing<Vec<u32>>,
    mask_sk: StaticSecret,
    self_seed: Zeroizing<[u8; 32]>,
}

/// One client's side of a SecAgg+ round.
pub struct Client {
    config: Arc<RoundConfig>,
    me: u32,
    /// Signs the advert, the masked input and the survivor list; wiped on drop.
    identity: SigningKey,
    neighbours: Vec<u32>,
    /// Opens the share channels; wiped once they are open.
    cipher_sk: Option<StaticSecret>,
    secrets: Option<Secrets>,
    peers: BTreeMap<u32, Peer>,
    /// Shares this client holds, by owner (itself included); `None` if the ciphertext was bad.
    /// Its keys are the partners (neighbours that sent shares) and the client itself.
    held: BTreeMap<u32, Option<[Share; 2]>>,
    /// The survivor list this client signed.
    signed: Option<Vec<u32>>,
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
        let input = Zeroizing::new(input);
        let max = prg::modulus_mask(config.modulus_bits);
        if input.len() != config.vector_len as usize || input.iter().any(|&w| w > max) {
            return Err(ClientError::BadInput {
                len: input.len(),
                need: config.vector_len,
            });
        }
        let cipher_sk = StaticSecret::random_from_rng(&mut *rng);
        let mask_sk = StaticSecret::random_from_rng(&mut *rng);
        let mut self_seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(self_seed.as_mut());
        let cipher_pk = PublicKey::from(&cipher_sk).to_bytes();
        let mask_pk = PublicKey::from(&mask_sk).to_bytes();
        let seed_commitment = crypto::seed_commitment(config.round, me, &self_seed);
        let signature = crypto::sign_advert(
            identity,
            config.round,
            me,
            &cipher_pk,
            &mask_pk,
            &seed_commitment,
        );
        let advert = Advert {
            from: me,
            cipher_pk,
            mask_pk,
            seed_commitment,
            signature,
        };
        let neighbours = config.graph().neighbours(me);
        let mut client = Self {
            config,
            me,
            identity: identity.clone(),
            neighbours,
            cipher_sk: Some(cipher_sk),
            secrets: Some(Secrets {
                input,
                mask_sk,
                self_seed,
            }),
            peers: BTreeMap::new(),
            held: BTreeMap::new(),
            signed: None,
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
    pub fn handle_server_msg<R: RngCore + CryptoRng>(
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
            // Nothing more will be sent: the secrets are of no further use.
            self.cipher_sk = None;
            self.secrets = None;
            self.peers.clear();
            self.held.clear();
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
            (ClientPhase::AwaitConsistency, ServerBody::Consistency(survivors)) => {
                self.on_consistency(survivors)
            }
            (
                ClientPhase::AwaitUnmask,
                ServerBody::Unmask {
                    survivors,
                    signatures,
                },
            ) => self.on_unmask(&survivors, &signatures),
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

    fn secrets(&self) -> &Secrets {
        self.secrets
            .as_ref()
            .expect("secrets live until the masked input is sent")
    }

    fn on_neighbours<R: RngCore + CryptoRng>(
        &mut self,
        adverts: &[Advert],
        rng: &mut R,
    ) -> Result<(), ClientError> {
        let round = self.config.round;
        let mut last = None;
        for a in adverts {
            if self.neighbours.binary_search(&a.from).is_err() || last >= Some(a.from) {
                return Err(ClientError::BadAdvert(a.from));
            }
            last = Some(a.from);
        }
        let t = self.config.threshold();
        if adverts.len() + 1 < t {
            return Err(ClientError::TooFewHolders {
                have: adverts.len() + 1,
                need: t,
            });
        }
        let identities = &self.config.identities;
        crypto::verify_adverts(round, adverts, |c| &identities[c as usize])
            .map_err(ClientError::BadAdvert)?;
        // The channels hold the agreements: the cipher secret key is wiped after this.
        let cipher_sk = self
            .cipher_sk
            .take()
            .expect("the cipher key lives until the adverts arrive");
        let secrets = self.secrets();
        let peers: BTreeMap<u32, Peer> = adverts
            .iter()
            .map(|a| {
                let peer = Peer {
                    channel: crypto::ShareChannel::new(&cipher_sk, &PublicKey::from(a.cipher_pk)),
                    mask_pk: PublicKey::from(a.mask_pk),
                };
                (a.from, peer)
            })
            .collect();
        // Holders: the advertised neighbours and this client, ascending.
        let mut holders: Vec<u32> = peers.keys().copied().collect();
        let at = holders.partition_point(|&h| h < self.me);
        holders.insert(at, self.me);
        let xs: Vec<u32> = holders.iter().map(|&h| h + 1).collect();
        let seed_shares = shamir::split(&secrets.self_seed, t, &xs, rng);
        let mask_sk = Zeroizing::new(secrets.mask_sk.to_bytes());
        let key_shares = shamir::split(&mask_sk, t, &xs, rng);
        let mut sealed = Vec::with_capacity(peers.len());
        for ((&holder, seed_share), key_share) in holders.iter().zip(seed_shares).zip(key_shares) {
            if holder == self.me {
                self.held.insert(self.me, Some([seed_share, key_share]));
                continue;
            }
            let mut plain = Zeroizing::new([0u8; 2 * SHARE_BYTES]);
            plain[..SHARE_BYTES].copy_from_slice(seed_share.value_bytes().as_ref());
            plain[SHARE_BYTES..].copy_from_slice(key_share.value_bytes().as_ref());
            let ct = peers[&holder]
                .channel
                .seal(round, self.me, holder, plain.as_ref());
            let ciphertext = ct.try_into().expect("sealed shares have a fixed size");
            sealed.push(SealedShares {
                peer: holder,
                ciphertext,
            });
        }
        self.peers = peers;
        self.phase = ClientPhase::AwaitShares;
        self.send(ClientBody::Shares(sealed));
        Ok(())
    }

    fn on_shares(&mut self, shares: &[SealedShares]) -> Result<(), ClientError> {
        let round = self.config.round;
        let mut last = None;
        for s in shares {
            if !self.peers.contains_key(&s.peer) || last >= Some(s.peer) {
                return Err(ClientError::BadSharer(s.peer));
            }
            last = Some(s.peer);
        }
        let t = self.config.threshold();
        if shares.len() + 1 < t {
            return Err(ClientError::TooFewSharers {
                have: shares.len() + 1,
                need: t,
            });
        }
        for s in shares {
            // A neighbour that sent an undecryptable share still masks with us, so we mask with
            // it too; we just hold no share of its secrets.
            let opened = self.peers[&s.peer]
                .channel
                .open(round, s.peer, self.me, &s.ciphertext)
                .and_then(|plain| decode_share_pair(self.me + 1, &plain));
            self.held.insert(s.peer, opened);
        }
        let secrets = self
            .secrets
            .take()
            .expect("secrets live until the masked input is sent");
        let Secrets {
            mut input,
            mask_sk,
            self_seed,
            ..
        } = secrets;
        // The masked vector leaves the client: out of the `Zeroizing` wrapper, which is left
        // holding an empty vector.
        let mut masked = std::mem::take(&mut *input);
        prg::apply_mask(&mut masked, &self_seed, Sign::Add);
        for s in shares {
            let peer = &self.peers[&s.peer];
            let seed = crypto::pairwise_seed(&mask_sk, &peer.mask_pk, round, self.me, s.peer);
            prg::apply_mask(&mut masked, &seed, pair_sign(self.me, s.peer));
        }
        prg::reduce(&mut masked, self.config.modulus_bits);
        self.peers.clear();
        let hash = crate::unmask::hash_vector(&masked);
        let signature = crypto::sign_masked(&self.identity, round, self.me, &hash);
        self.phase = ClientPhase::AwaitConsistency;
        self.send(ClientBody::Masked {
            vector: masked,
            signature,
        });
        Ok(())
    }

    /// Holders of this client's secrets named in `survivors`: partners and itself.
    fn listed_holders(&self, survivors: &[u32]) -> usize {
        self.held
            .keys()
            .filter(|h| survivors.binary_search(h).is_ok())
            .count()
    }

    fn on_consistency(&mut self, survivors: Vec<u32>) -> Result<(), ClientError> {
        let clients = self.config.clients();
        let mut last = None;
        for &s in &survivors {
            let neighbour = self.neighbours.binary_search(&s).is_ok();
            // A listed neighbour must be a partner: a neighbour whose shares the server kept
            // from us masks with us (or not) in ways our own input does not match.
            if s >= clients || last >= Some(s) || (neighbour && !self.held.contains_key(&s)) {
                return Err(ClientError::BadSurvivors(s));
            }
            last = Some(s);
        }
        if survivors.binary_search(&self.me).is_err() {
            return Err(ClientError::BadSurvivors(self.me));
        }
        let t = self.config.threshold();
        let have = self.listed_holders(&survivors);
        if have < t {
            return Err(ClientError::TooFewHolders { have, need: t });
        }
        let signature =
            crypto::sign_consistency(&self.identity, self.config.round, self.me, &survivors);
        self.signed = Some(survivors);
        self.phase = ClientPhase::AwaitUnmask;
        self.send(ClientBody::ConsistencySig(signature));
        Ok(())
    }

    fn on_unmask(
        &mut self,
        survivors: &[u32],
        signatures: &[(u32, [u8; 64])],
    ) -> Result<(), ClientError> {
        let signed = self
            .signed
            .as_deref()
            .expect("a client awaiting the unmasking request has signed a list");
        if survivors != signed {
            return Err(ClientError::SurvivorsChanged);
        }
        let mut last = None;
        for &(signer, _) in signatures {
            let holder = self.held.contains_key(&signer);
            if !holder || signed.binary_search(&signer).is_err() || last >= Some(signer) {
                return Err(ClientError::BadSigner(signer));
            }
            last = Some(signer);
        }
        let identities = &self.config.identities;
        crypto::verify_consistency_all(self.config.round, signed, signatures, |c| {
            &identities[c as usize]
        })
        .map_err(ClientError::BadConsistencySignature)?;
        // This client signed the list itself, whether or not the server relays that signature.
        let own = usize::from(signatures.binary_search_by_key(&self.me, |s| s.0).is_err());
        let have = signatures.len() + own;
        let t = self.config.threshold();
        if have < t {
            return Err(ClientError::TooFewSignatures { have, need: t });
        }
        let revealed = self
            .held
            .iter()
            .filter_map(|(&owner, pair)| {
                let [seed_share, key_share] = pair.as_ref()?;
                let alive = signed.binary_search(&owner).is_ok();
                let (kind, share) = if alive {
                    (ShareKind::SelfMask, seed_share)
                } else {
                    (ShareKind::MaskKey, key_share)
                };
                Some(RevealedShare {
                    owner,
                    kind,
                    value: *share.value_bytes(),
                })
            })
            .collect();
        // Revealed shares are public now; the others must never be: wipe them all.
        self.held.clear();
        self.phase = ClientPhase::Done;
        self.send(ClientBody::Unmask(revealed));
        Ok(())
    }
}

/// The sign with which client `me` adds the mask it shares with `peer`: the lower id adds.
pub fn pair_sign(me: u32, peer: u32) -> Sign {
    if me < peer { Sign::Add } else { Sign::Sub }
}

fn decode_share_pair(x: u32, plain: &Zeroizing<Vec<u8>>) -> Option<[Share; 2]> {
    let seed: &[u8; SHARE_BYTES] = plain.get(..SHARE_BYTES)?.try_into().ok()?;
    let key: &[u8; SHARE_BYTES] = plain.get(SHARE_BYTES..)?.try_into().ok()?;
    Some([
        Share::from_value_bytes(x, seed).ok()?,
        Share::from_value_bytes(x, key).ok()?,
    ])
}
