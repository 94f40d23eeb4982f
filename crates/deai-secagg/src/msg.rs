//! Protocol messages and their canonical binary encoding.
//!
//! Every message starts with a tag byte, the round (`u64`) and the client id (`u32`: the sender
//! of a client message, the recipient of a server message). Lists of per-peer items are strictly
//! ascending by peer id, so each message has exactly one encoding; decoding enforces this and the
//! bounds of [`Limits`], and re-encoding a decoded message gives back the same bytes.
//!
//! | tag | client sends ([`ClientBody`]) | server sends ([`ServerBody`]) |
//! |---:|---|---|
//! | 0 | `Advert` | `Neighbours` (adverts) |
//! | 1 | `Shares` (sealed, by recipient) | `Shares` (sealed, by sender) |
//! | 2 | `Masked` (vector, signature) | `Consistency` (survivors) |
//! | 3 | `ConsistencySig` (signature) | `Unmask` (survivors, signatures) |
//! | 4 | `Unmask` (revealed shares) | — |

use crate::shamir::SHARE_BYTES;
use crate::wire::{DecodeError, Reader, Writer, check_ascending};

/// Bytes of one encrypted share pair: two share values plus the AEAD tag.
pub const SEALED_BYTES: usize = 2 * SHARE_BYTES + crate::crypto::TAG_BYTES;

/// The five steps of a round from a client's side, in protocol order (what a client sends at
/// each; a driver that counts deadlines or injects faults names them).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Sending the key advert.
    Advert,
    /// Sending encrypted shares.
    Shares,
    /// Sending the masked input.
    Masked,
    /// Signing the survivor list.
    Consistency,
    /// Revealing shares.
    Unmask,
}

impl Step {
    /// All steps in protocol order.
    pub const ALL: [Step; 5] = [
        Step::Advert,
        Step::Shares,
        Step::Masked,
        Step::Consistency,
        Step::Unmask,
    ];
}

/// Bounds for decoding, from the round's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most peers a list may name.
    pub clients: u32,
    /// Most words in a masked vector.
    pub vector_len: u32,
}

/// A signer's client id and its ed25519 signature (of the consistency step's survivor list).
pub type SignatureBy = (u32, [u8; 64]);

/// A client's signed pair of X25519 public keys and commitment to its self-mask seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// The advertising client.
    pub from: u32,
    /// Key for encrypting shares to this client.
    pub cipher_pk: [u8; 32],
    /// Key for agreeing pairwise mask seeds.
    pub mask_pk: [u8; 32],
    /// [`crate::crypto::seed_commitment`] of the client's self-mask seed: whoever reconstructs
    /// the seed can be checked against it.
    pub seed_commitment: [u8; 32],
    /// ed25519 signature by the client's identity over round, id, both keys and the commitment.
    pub signature: [u8; 64],
}

/// Shares of one client's secrets encrypted to one neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedShares {
    /// The recipient (in a client's message) or the sender (in a server's message).
    pub peer: u32,
    /// ChaCha20-Poly1305 ciphertext of the self-mask-seed share and the mask-key share.
    pub ciphertext: [u8; SEALED_BYTES],
}

/// Which secret a revealed share belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShareKind {
    /// The self-mask seed of a client that survived.
    SelfMask,
    /// The pairwise mask key of a client that dropped.
    MaskKey,
}

/// One share revealed in the unmasking step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealedShare {
    /// Whose secret the share is of.
    pub owner: u32,
    /// Which of its secrets.
    pub kind: ShareKind,
    /// The share value.
    pub value: [u8; SHARE_BYTES],
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientBody {
    /// Step 0: the client's keys.
    Advert(Advert),
    /// Step 1: shares for each neighbour, ascending by recipient.
    Shares(Vec<SealedShares>),
    /// Step 2: the masked input, words mod 2^b, signed.
    Masked {
        /// The masked words.
        vector: Vec<u32>,
        /// ed25519 signature by the client's identity over round, id and
        /// [`crate::hash_vector`] of `vector` ([`crate::crypto::sign_masked`]).
        signature: [u8; 64],
    },
    /// Step 3: the client's signature on the survivor list of the consistency step
    /// ([`crate::crypto::sign_consistency`]).
    ConsistencySig([u8; 64]),
    /// Step 4: one share per neighbour (and itself), ascending by owner.
    Unmask(Vec<RevealedShare>),
}

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMsg {
    /// The round.
    pub round: u64,
    /// The sending client.
    pub from: u32,
    /// The content.
    pub body: ClientBody,
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerBody {
    /// The adverts of the recipient's neighbours that advertised, ascending.
    Neighbours(Vec<Advert>),
    /// Shares sent to the recipient by its neighbours that shared, ascending by sender.
    Shares(Vec<SealedShares>),
    /// All clients whose masked inputs are in the sum (`U3`, the same list for every
    /// recipient), ascending: the list each recipient is asked to sign.
    Consistency(Vec<u32>),
    /// The request to reveal shares.
    Unmask {
        /// The survivor list of the consistency step, again.
        survivors: Vec<u32>,
        /// The signatures on that list by the recipient's share holders (its neighbours and
        /// itself) that signed it, ascending by signer.
        signatures: Vec<(u32, [u8; 64])>,
    },
}

/// A message from the server to one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerMsg {
    /// The round.
    pub round: u64,
    /// The recipient.
    pub to: u32,
    /// The content.
    pub body: ServerBody,
}

const ADVERT_BYTES: usize = 4 + 32 + 32 + 32 + 64;
const SIGNATURE_ITEM_BYTES: usize = 4 + 64;
const SEALED_ITEM_BYTES: usize = 4 + SEALED_BYTES;
const REVEALED_BYTES: usize = 4 + 1 + SHARE_BYTES;

fn put_advert(out: &mut Vec<u8>, a: &Advert) {
    out.put_u32(a.from);
    out.extend_from_slice(&a.cipher_pk);
    out.extend_from_slice(&a.mask_pk);
    out.extend_from_slice(&a.seed_commitment);
    out.extend_from_slice(&a.signature);
}

fn read_advert(r: &mut Reader<'_>) -> Result<Advert, DecodeError> {
    Ok(Advert {
        from: r.u32()?,
        cipher_pk: r.array()?,
        mask_pk: r.array()?,
        seed_commitment: r.array()?,
        signature: r.array()?,
    })
}

fn put_ids(out: &mut Vec<u8>, ids: &[u32]) {
    out.put_count(ids.len());
    ids.iter().for_each(|id| out.put_u32(*id));
}

fn read_ids(
    r: &mut Reader<'_>,
    what: &'static str,
    limits: &Limits,
) -> Result<Vec<u32>, DecodeError> {
    let n = r.count(what, limits.clients, 4)?;
    let ids = (0..n).map(|_| r.u32()).collect::<Result<Vec<_>, _>>()?;
    check_ascending(what, ids.iter().copied())?;
    Ok(ids)
}

fn put_sealed(out: &mut Vec<u8>, list: &[SealedShares]) {
    out.put_count(list.len());
    for s in list {
        out.put_u32(s.peer);
        out.extend_from_slice(&s.ciphertext);
    }
}

fn read_sealed(r: &mut Reader<'_>, limits: &Limits) -> Result<Vec<SealedShares>, DecodeError> {
    let n = r.count("shares", limits.clients, SEALED_ITEM_BYTES)?;
    let list = (0..n)
        .map(|_| {
            Ok(SealedShares {
                peer: r.u32()?,
                ciphertext: r.array()?,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    check_ascending("shares", list.iter().map(|s| s.peer))?;
    Ok(list)
}

impl ClientMsg {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        let tag = match &self.body {
            ClientBody::Advert(_) => 0u8,
            ClientBody::Shares(_) => 1,
            ClientBody::Masked { .. } => 2,
            ClientBody::ConsistencySig(_) => 3,
            ClientBody::Unmask(_) => 4,
        };
        out.push(tag);
        out.put_u64(self.round);
        out.put_u32(self.from);
        match &self.body {
            ClientBody::Advert(a) => put_advert(&mut out, a),
            ClientBody::Shares(list) => put_sealed(&mut out, list),
            ClientBody::Masked { vector, signature } => {
                out.put_count(vector.len());
                out.put_words(vector);
                out.extend_from_slice(signature);
            }
            ClientBody::ConsistencySig(signature) => out.extend_from_slice(signature),
            ClientBody::Unmask(list) => {
                out.put_count(list.len());
                for s in list {
                    out.put_u32(s.owner);
                    out.push(s.kind as u8);
                    out.extend_from_slice(&s.value);
                }
            }
        }
        out
    }

    fn encoded_len_hint(&self) -> usize {
        13 + match &self.body {
            ClientBody::Advert(_) => ADVERT_BYTES,
            ClientBody::Shares(l) => 4 + l.len() * SEALED_ITEM_BYTES,
            ClientBody::Masked { vector, .. } => 4 + 4 * vector.len() + 64,
            ClientBody::ConsistencySig(_) => 64,
            ClientBody::Unmask(l) => 4 + l.len() * REVEALED_BYTES,
        }
    }

    /// Decodes one message, enforcing `limits`, ascending lists and no trailing bytes.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        let round = r.u64()?;
        let from = r.u32()?;
        let body = match tag {
            0 => {
                let advert = read_advert(&mut r)?;
                if advert.from != from {
                    return Err(DecodeError::Invalid("advert sender"));
                }
                ClientBody::Advert(advert)
            }
            1 => ClientBody::Shares(read_sealed(&mut r, limits)?),
            2 => {
                let n = r.count("masked vector", limits.vector_len, 4)?;
                let words = r.take(4 * n)?;
                let vector = words
                    .chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().expect("4-byte chunk")))
                    .collect();
                ClientBody::Masked {
                    vector,
                    signature: r.array()?,
                }
            }
            3 => ClientBody::ConsistencySig(r.array()?),
            4 => ClientBody::Unmask(read_revealed(&mut r, limits)?),
            tag => {
                return Err(DecodeError::Tag {
                    what: "client message",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(Self { round, from, body })
    }
}

fn read_revealed(r: &mut Reader<'_>, limits: &Limits) -> Result<Vec<RevealedShare>, DecodeError> {
    let n = r.count("revealed shares", limits.clients, REVEALED_BYTES)?;
    let list = (0..n)
        .map(|_| {
            let owner = r.u32()?;
            let kind = match r.u8()? {
                0 => ShareKind::SelfMask,
                1 => ShareKind::MaskKey,
                tag => {
                    return Err(DecodeError::Tag {
                        what: "share kind",
                        tag,
                    });
                }
            };
            Ok(RevealedShare {
                owner,
                kind,
                value: r.array()?,
            })
        })
        .collect::<Result<Vec<_>, DecodeError>>()?;
    check_ascending("revealed shares", list.iter().map(|s| s.owner))?;
    Ok(list)
}

impl ServerMsg {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let tag = match &self.body {
            ServerBody::Neighbours(_) => 0u8,
            ServerBody::Shares(_) => 1,
            ServerBody::Consistency(_) => 2,
            ServerBody::Unmask { .. } => 3,
        };
        out.push(tag);
        out.put_u64(self.round);
        out.put_u32(self.to);
        match &self.body {
            ServerBody::Neighbours(list) => {
                out.put_count(list.len());
                list.iter().for_each(|a| put_advert(&mut out, a));
            }
            ServerBody::Shares(list) => put_sealed(&mut out, list),
            ServerBody::Consistency(ids) => put_ids(&mut out, ids),
            ServerBody::Unmask {
                survivors,
                signatures,
            } => {
                put_ids(&mut out, survivors);
                out.put_count(signatures.len());
                for (signer, signature) in signatures {
                    out.put_u32(*signer);
                    out.extend_from_slice(signature);
                }
            }
        }
        out
    }

    /// Decodes one message, enforcing `limits`, ascending lists and no trailing bytes.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let tag = r.u8()?;
        let round = r.u64()?;
        let to = r.u32()?;
        let body = match tag {
            0 => {
                let n = r.count("adverts", limits.clients, ADVERT_BYTES)?;
                let list = (0..n)
                    .map(|_| read_advert(&mut r))
                    .collect::<Result<Vec<_>, _>>()?;
                check_ascending("adverts", list.iter().map(|a| a.from))?;
                ServerBody::Neighbours(list)
            }
            1 => ServerBody::Shares(read_sealed(&mut r, limits)?),
            2 => ServerBody::Consistency(read_ids(&mut r, "survivors", limits)?),
            3 => {
                let survivors = read_ids(&mut r, "survivors", limits)?;
                let n = r.count("signatures", limits.clients, SIGNATURE_ITEM_BYTES)?;
                let signatures = (0..n)
                    .map(|_| Ok((r.u32()?, r.array()?)))
                    .collect::<Result<Vec<(u32, [u8; 64])>, DecodeError>>()?;
                check_ascending("signatures", signatures.iter().map(|(id, _)| *id))?;
                ServerBody::Unmask {
                    survivors,
                    signatures,
                }
            }
            tag => {
                return Err(DecodeError::Tag {
                    what: "server message",
                    tag,
                });
            }
        };
        r.finish()?;
        Ok(Self { round, to, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: Limits = Limits {
        clients: 64,
        vector_len: 256,
    };

    fn signature(half: &[u8; 32]) -> [u8; 64] {
        let mut signature = [0x5a; 64];
        signature[..32].copy_from_slice(half);
        signature
    }

    fn server_msg() -> impl Strategy<Value = ServerMsg> {
        let ids = || proptest::collection::btree_set(0u32..64, 0..6);
        let body = prop_oneof![
            ids().prop_map(|ids| ServerBody::Neighbours(
                ids.into_iter()
                    .map(|from| Advert {
                        from,
                        cipher_pk: [from as u8; 32],
                        mask_pk: [2; 32],
                        seed_commitment: [3; 32],
                        signature: [4; 64],
                    })
                    .collect()
            )),
            ids().prop_map(|ids| ServerBody::Shares(
                ids.into_iter()
                    .map(|peer| SealedShares {
                        peer,
                        ciphertext: [peer as u8; SEALED_BYTES]
                    })
                    .collect()
            )),
            ids().prop_map(|ids| ServerBody::Consistency(ids.into_iter().collect())),
            (ids(), ids()).prop_map(|(survivors, signers)| ServerBody::Unmask {
                survivors: survivors.into_iter().collect(),
                signatures: signers.into_iter().map(|s| (s, [s as u8; 64])).collect(),
            }),
        ];
        (any::<u64>(), any::<u32>(), body).prop_map(|(round, to, body)| ServerMsg {
            round,
            to,
            body,
        })
    }

    fn client_msg() -> impl Strategy<Value = ClientMsg> {
        let body = prop_oneof![
            (
                any::<u32>(),
                any::<[u8; 32]>(),
                any::<[u8; 32]>(),
                any::<[u8; 32]>(),
                any::<[u8; 32]>()
            )
                .prop_map(|(from, c, m, commitment, s)| {
                    ClientBody::Advert(Advert {
                        from,
                        cipher_pk: c,
                        mask_pk: m,
                        seed_commitment: commitment,
                        signature: signature(&s),
                    })
                }),
            proptest::collection::btree_set(0u32..64, 0..5).prop_map(|ids| ClientBody::Shares(
                ids.into_iter()
                    .map(|peer| SealedShares {
                        peer,
                        ciphertext: [peer as u8; SEALED_BYTES]
                    })
                    .collect()
            )),
            (
                proptest::collection::vec(any::<u32>(), 0..256),
                any::<[u8; 32]>()
            )
                .prop_map(|(vector, s)| ClientBody::Masked {
                    vector,
                    signature: signature(&s)
                }),
            any::<[u8; 32]>().prop_map(|s| ClientBody::ConsistencySig(signature(&s))),
            proptest::collection::btree_set(0u32..64, 0..5).prop_map(|ids| ClientBody::Unmask(
                ids.into_iter()
                    .map(|owner| RevealedShare {
                        owner,
                        kind: if owner % 2 == 0 {
                            ShareKind::SelfMask
                        } else {
                            ShareKind::MaskKey
                        },
                        value: [owner as u8; SHARE_BYTES],
                    })
                    .collect()
            )),
        ];
        (any::<u64>(), any::<u32>(), body).prop_map(|(round, from, mut body)| {
            if let ClientBody::Advert(a) = &mut body {
                a.from = from;
            }
            ClientMsg { round, from, body }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn client_messages_round_trip(msg in client_msg()) {
            let bytes = msg.encode();
            let back = ClientMsg::decode(&bytes, &LIMITS).expect("own encoding decodes");
            prop_assert_eq!(&back, &msg);
            prop_assert_eq!(back.encode(), bytes);
        }

        /// Any strict prefix or any extension fails to decode (no panic, no partial accept).
        #[test]
        fn truncated_or_extended_is_rejected(msg in client_msg(), cut in any::<prop::sample::Index>()) {
            let bytes = msg.encode();
            let cut = cut.index(bytes.len());
            prop_assert!(ClientMsg::decode(&bytes[..cut], &LIMITS).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(ClientMsg::decode(&longer, &LIMITS).is_err());
        }

        #[test]
        fn server_messages_round_trip_and_reject_cuts(msg in server_msg(), cut in any::<prop::sample::Index>()) {
            let bytes = msg.encode();
            let back = ServerMsg::decode(&bytes, &LIMITS).expect("own encoding decodes");
            prop_assert_eq!(&back, &msg);
            prop_assert_eq!(back.encode(), bytes.clone());
            prop_assert!(ServerMsg::decode(&bytes[..cut.index(bytes.len())], &LIMITS).is_err());
            let mut longer = bytes;
            longer.push(0);
            prop_assert!(ServerMsg::decode(&longer, &LIMITS).is_err());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = ClientMsg::decode(&bytes, &LIMITS);
            let _ = ServerMsg::decode(&bytes, &LIMITS);
        }
    }

    #[test]
    fn server_messages_round_trip() {
        for body in [
            ServerBody::Neighbours(vec![Advert {
                from: 3,
                cipher_pk: [1; 32],
                mask_pk: [2; 32],
                seed_commitment: [5; 32],
                signature: [3; 64],
            }]),
            ServerBody::Shares(vec![SealedShares {
                peer: 1,
                ciphertext: [9; SEALED_BYTES],
            }]),
            ServerBody::Consistency(vec![1, 5, 9]),
            ServerBody::Unmask {
                survivors: vec![1, 5, 9],
                signatures: vec![(1, [1; 64]), (9, [9; 64])],
            },
        ] {
            let msg = ServerMsg {
                round: 4,
                to: 2,
                body,
            };
            assert_eq!(ServerMsg::decode(&msg.encode(), &LIMITS), Ok(msg));
        }
    }

    #[test]
    fn huge_counts_and_disorder_are_rejected() {
        let mut bytes = ClientMsg {
            round: 1,
            from: 0,
            body: ClientBody::Masked {
                vector: vec![1, 2],
                signature: [0; 64],
            },
        }
        .encode();
        bytes[13..17].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            ClientMsg::decode(&bytes, &LIMITS),
            Err(DecodeError::TooLong { .. })
        ));
        let unsorted = ServerMsg {
            round: 1,
            to: 0,
            body: ServerBody::Consistency(vec![5, 5]),
        }
        .encode();
        assert_eq!(
            ServerMsg::decode(&unsorted, &LIMITS),
            Err(DecodeError::Order {
                what: "survivors",
                value: 5
            })
        );
        let too_long = ClientMsg {
            round: 1,
            from: 0,
            body: ClientBody::Masked {
                vector: vec![0; 257],
                signature: [0; 64],
            },
        }
        .encode();
        assert!(matches!(
            ClientMsg::decode(&too_long, &LIMITS),
            Err(DecodeError::TooLong { .. })
        ));
        let unsorted_signers = ServerMsg {
            round: 1,
            to: 0,
            body: ServerBody::Unmask {
                survivors: vec![1, 2],
                signatures: vec![(2, [0; 64]), (1, [0; 64])],
            },
        }
        .encode();
        assert_eq!(
            ServerMsg::decode(&unsorted_signers, &LIMITS),
            Err(DecodeError::Order {
                what: "signatures",
                value: 1
            })
        );
        let too_many_signers = ServerMsg {
            round: 1,
            to: 0,
            body: ServerBody::Unmask {
                survivors: vec![],
                signatures: (0..65).map(|i| (i, [0; 64])).collect(),
            },
        }
        .encode();
        assert!(matches!(
            ServerMsg::decode(&too_many_signers, &LIMITS),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
