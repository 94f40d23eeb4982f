//! Protocol messages and their canonical binary encoding.
//!
//! Encoded with the one codec ([`crate::wire`]: big-endian, varint counts). Every message starts
//! with a tag byte, the round (`u64`) and the client id (`u32`: the sender of a client message,
//! the recipient of a server message). Lists of per-peer items are strictly
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
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, FixedSize, Read, ReadExt as _, Write};

use crate::wire::{
    DecodeError, check_ascending, count_size, decode_all, encode_vec, read_count, read_ids,
    read_items, read_words, words_size, write_count, write_words,
};

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
/// Tag, round and peer id.
const HEADER_BYTES: usize = 1 + 8 + 4;

impl Write for Advert {
    fn write(&self, buf: &mut impl BufMut) {
        self.from.write(buf);
        self.cipher_pk.write(buf);
        self.mask_pk.write(buf);
        self.seed_commitment.write(buf);
        self.signature.write(buf);
    }
}

impl FixedSize for Advert {
    const SIZE: usize = ADVERT_BYTES;
}

impl Read for Advert {
    type Cfg = ();
    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, DecodeError> {
        Ok(Self {
            from: u32::read(buf)?,
            cipher_pk: <[u8; 32]>::read(buf)?,
            mask_pk: <[u8; 32]>::read(buf)?,
            seed_commitment: <[u8; 32]>::read(buf)?,
            signature: <[u8; 64]>::read(buf)?,
        })
    }
}

fn write_list<T>(list: &[T], buf: &mut impl BufMut, mut item: impl FnMut(&T, &mut dyn BufMut)) {
    write_count(list.len(), buf);
    for x in list {
        item(x, &mut *buf);
    }
}

fn write_sealed(list: &[SealedShares], buf: &mut impl BufMut) {
    write_list(list, buf, |s, b| {
        b.put_u32(s.peer);
        b.put_slice(&s.ciphertext);
    });
}

fn read_sealed(buf: &mut impl Buf, limits: &Limits) -> Result<Vec<SealedShares>, DecodeError> {
    let n = read_count(buf, limits.clients as usize, SEALED_ITEM_BYTES)?;
    let list = read_items(buf, n, |b| {
        Ok(SealedShares {
            peer: u32::read(b)?,
            ciphertext: <[u8; SEALED_BYTES]>::read(b)?,
        })
    })?;
    check_ascending("shares", list.iter().map(|s| s.peer))?;
    Ok(list)
}

fn write_signatures(list: &[SignatureBy], buf: &mut impl BufMut) {
    write_list(list, buf, |(signer, signature), b| {
        b.put_u32(*signer);
        b.put_slice(signature);
    });
}

fn read_signatures(buf: &mut impl Buf, limits: &Limits) -> Result<Vec<SignatureBy>, DecodeError> {
    let n = read_count(buf, limits.clients as usize, SIGNATURE_ITEM_BYTES)?;
    let list = read_items(buf, n, |b| Ok((u32::read(b)?, <[u8; 64]>::read(b)?)))?;
    check_ascending("signatures", list.iter().map(|(id, _)| *id))?;
    Ok(list)
}

fn read_revealed(buf: &mut impl Buf, limits: &Limits) -> Result<Vec<RevealedShare>, DecodeError> {
    let n = read_count(buf, limits.clients as usize, REVEALED_BYTES)?;
    let list = read_items(buf, n, |b| {
        let owner = u32::read(b)?;
        let kind = match u8::read(b)? {
            0 => ShareKind::SelfMask,
            1 => ShareKind::MaskKey,
            tag => return Err(DecodeError::InvalidEnum(tag)),
        };
        Ok(RevealedShare {
            owner,
            kind,
            value: <[u8; SHARE_BYTES]>::read(b)?,
        })
    })?;
    check_ascending("revealed shares", list.iter().map(|s| s.owner))?;
    Ok(list)
}

impl Write for ClientMsg {
    fn write(&self, buf: &mut impl BufMut) {
        let tag = match &self.body {
            ClientBody::Advert(_) => 0u8,
            ClientBody::Shares(_) => 1,
            ClientBody::Masked { .. } => 2,
            ClientBody::ConsistencySig(_) => 3,
            ClientBody::Unmask(_) => 4,
        };
        buf.put_u8(tag);
        buf.put_u64(self.round);
        buf.put_u32(self.from);
        match &self.body {
            ClientBody::Advert(a) => a.write(buf),
            ClientBody::Shares(list) => write_sealed(list, buf),
            ClientBody::Masked { vector, signature } => {
                write_words(vector, buf);
                buf.put_slice(signature);
            }
            ClientBody::ConsistencySig(signature) => buf.put_slice(signature),
            ClientBody::Unmask(list) => write_list(list, buf, |s, b| {
                b.put_u32(s.owner);
                b.put_u8(s.kind as u8);
                b.put_slice(&s.value);
            }),
        }
    }
}

impl EncodeSize for ClientMsg {
    fn encode_size(&self) -> usize {
        HEADER_BYTES
            + match &self.body {
                ClientBody::Advert(_) => ADVERT_BYTES,
                ClientBody::Shares(l) => count_size(l.len()) + l.len() * SEALED_ITEM_BYTES,
                ClientBody::Masked { vector, .. } => words_size(vector) + 64,
                ClientBody::ConsistencySig(_) => 64,
                ClientBody::Unmask(l) => count_size(l.len()) + l.len() * REVEALED_BYTES,
            }
    }
}

impl Read for ClientMsg {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, limits: &Limits) -> Result<Self, DecodeError> {
        let tag = u8::read(buf)?;
        let round = u64::read(buf)?;
        let from = u32::read(buf)?;
        let body = match tag {
            0 => {
                let advert = Advert::read(buf)?;
                if advert.from != from {
                    return Err(DecodeError::Invalid(
                        "advert",
                        "sender differs from message's",
                    ));
                }
                ClientBody::Advert(advert)
            }
            1 => ClientBody::Shares(read_sealed(buf, limits)?),
            2 => ClientBody::Masked {
                vector: read_words(buf, limits.vector_len as usize)?,
                signature: <[u8; 64]>::read(buf)?,
            },
            3 => ClientBody::ConsistencySig(<[u8; 64]>::read(buf)?),
            4 => ClientBody::Unmask(read_revealed(buf, limits)?),
            tag => return Err(DecodeError::InvalidEnum(tag)),
        };
        Ok(Self { round, from, body })
    }
}

impl ClientMsg {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode_vec(self)
    }

    /// Decodes one message, enforcing `limits`, ascending lists and no trailing bytes.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        decode_all(bytes, |b| Self::read_cfg(b, limits))
    }
}

impl Write for ServerMsg {
    fn write(&self, buf: &mut impl BufMut) {
        let tag = match &self.body {
            ServerBody::Neighbours(_) => 0u8,
            ServerBody::Shares(_) => 1,
            ServerBody::Consistency(_) => 2,
            ServerBody::Unmask { .. } => 3,
        };
        buf.put_u8(tag);
        buf.put_u64(self.round);
        buf.put_u32(self.to);
        match &self.body {
            ServerBody::Neighbours(list) => write_list(list, buf, |a, mut b| a.write(&mut b)),
            ServerBody::Shares(list) => write_sealed(list, buf),
            ServerBody::Consistency(ids) => write_words(ids, buf),
            ServerBody::Unmask {
                survivors,
                signatures,
            } => {
                write_words(survivors, buf);
                write_signatures(signatures, buf);
            }
        }
    }
}

impl EncodeSize for ServerMsg {
    fn encode_size(&self) -> usize {
        HEADER_BYTES
            + match &self.body {
                ServerBody::Neighbours(l) => count_size(l.len()) + l.len() * ADVERT_BYTES,
                ServerBody::Shares(l) => count_size(l.len()) + l.len() * SEALED_ITEM_BYTES,
                ServerBody::Consistency(ids) => words_size(ids),
                ServerBody::Unmask {
                    survivors,
                    signatures,
                } => {
                    words_size(survivors)
                        + count_size(signatures.len())
                        + signatures.len() * SIGNATURE_ITEM_BYTES
                }
            }
    }
}

impl Read for ServerMsg {
    type Cfg = Limits;
    fn read_cfg(buf: &mut impl Buf, limits: &Limits) -> Result<Self, DecodeError> {
        let tag = u8::read(buf)?;
        let round = u64::read(buf)?;
        let to = u32::read(buf)?;
        let clients = limits.clients as usize;
        let body = match tag {
            0 => {
                let n = read_count(buf, clients, ADVERT_BYTES)?;
                let list = read_items(buf, n, |b| Advert::read(b))?;
                check_ascending("adverts", list.iter().map(|a| a.from))?;
                ServerBody::Neighbours(list)
            }
            1 => ServerBody::Shares(read_sealed(buf, limits)?),
            2 => ServerBody::Consistency(read_ids(buf, "survivors", clients)?),
            3 => ServerBody::Unmask {
                survivors: read_ids(buf, "survivors", clients)?,
                signatures: read_signatures(buf, limits)?,
            },
            tag => return Err(DecodeError::InvalidEnum(tag)),
        };
        Ok(Self { round, to, body })
    }
}

impl ServerMsg {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        encode_vec(self)
    }

    /// Decodes one message, enforcing `limits`, ascending lists and no trailing bytes.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Self, DecodeError> {
        decode_all(bytes, |b| Self::read_cfg(b, limits))
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
            prop_assert_eq!(bytes.len(), msg.encode_size());
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
            prop_assert_eq!(bytes.len(), msg.encode_size());
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
            assert_eq!(
                ServerMsg::decode(&msg.encode(), &LIMITS).expect("decodes"),
                msg
            );
        }
    }

    #[test]
    fn huge_counts_and_disorder_are_rejected() {
        let bytes = ClientMsg {
            round: 1,
            from: 0,
            body: ClientBody::Masked {
                vector: vec![1, 2],
                signature: [0; 64],
            },
        }
        .encode();
        // A count far above the limit and the input, in place of the vector's count of 2.
        let mut huge = bytes[..HEADER_BYTES].to_vec();
        write_count(u32::MAX as usize, &mut huge);
        huge.extend_from_slice(&bytes[HEADER_BYTES + 1..]);
        assert!(matches!(
            ClientMsg::decode(&huge, &LIMITS),
            Err(DecodeError::InvalidLength(_))
        ));
        let unsorted = ServerMsg {
            round: 1,
            to: 0,
            body: ServerBody::Consistency(vec![5, 5]),
        }
        .encode();
        assert!(matches!(
            ServerMsg::decode(&unsorted, &LIMITS),
            Err(DecodeError::Invalid("survivors", _))
        ));
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
            Err(DecodeError::InvalidLength(_))
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
        assert!(matches!(
            ServerMsg::decode(&unsorted_signers, &LIMITS),
            Err(DecodeError::Invalid("signatures", _))
        ));
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
            Err(DecodeError::InvalidLength(_))
        ));
    }
}
