//! Key derivation, share encryption, the self-seed commitment and the three signed statements.
//!
//! All derived keys are BLAKE3 `derive_key` outputs under a context string naming their use,
//! over the X25519 shared secret and the round and client ids, so a key never serves two
//! purposes, two rounds or two directions. Share encryption keys are used for exactly one
//! message, which is why the ChaCha20-Poly1305 nonce can be fixed at zero.
//!
//! A client signs three statements with its ed25519 identity, each behind its own domain tag and
//! bound to the round and its id: its advert (both public keys and the commitment to its
//! self-mask seed), the BLAKE3 hash of its masked input, and the survivor list of the
//! consistency step. Verification is strict (no malleable encodings); lists of signatures are
//! checked with ed25519 batch verification, falling back to one by one only to name a culprit.
//! Secrets and the intermediate values derived from them are wiped when dropped (`Zeroizing`).
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::msg::Advert;

const PAIRWISE_CONTEXT: &str = "deai-secagg 2026-11 pairwise mask seed";
const SHARE_KEY_CONTEXT: &str = "deai-secagg 2026-11 share encryption key";
const SEED_COMMITMENT_CONTEXT: &str = "deai-secagg 2026-12 self-mask seed commitment";
// The advert gained the seed commitment in 2026-12: a new tag, so no old signature verifies.
const ADVERT_DOMAIN: &[u8] = b"deai-secagg 2026-12 key advertisement";
const MASKED_DOMAIN: &[u8] = b"deai-secagg 2026-12 masked input";
const CONSISTENCY_DOMAIN: &[u8] = b"deai-secagg 2026-12 consistency survivors";

/// Bytes of AEAD tag added to each encrypted share.
pub const TAG_BYTES: usize = 16;

/// X25519 (RFC 7748) of `secret` and `peer`, computed on the Edwards form: for a `peer` on the
/// curve, the clamped scalar times either lift of its `u`-coordinate (curve25519-dalek's vector
/// backend, about a quarter faster here than the Montgomery ladder, and a client does two
/// agreements per neighbour); for a `peer` on the twist, the ladder. Bit-identical to
/// `secret.diffie_hellman(peer)` (tested), constant time in the secret.
pub fn agree(secret: &StaticSecret, peer: &PublicKey) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(match MontgomeryPoint(peer.to_bytes()).to_edwards(0) {
        Some(point) => {
            // The scalar's byte copy is wiped here; `mul_clamped` takes its own copy by value,
            // which lives in its stack frame only.
            let scalar = Zeroizing::new(secret.to_bytes());
            point.mul_clamped(*scalar).to_montgomery().to_bytes()
        }
        None => secret.diffie_hellman(peer).to_bytes(),
    })
}

/// The pairwise mask seed of clients `a` and `b` (same for both) in `round`.
pub fn pairwise_seed(
    secret: &StaticSecret,
    peer: &PublicKey,
    round: u64,
    a: u32,
    b: u32,
) -> Zeroizing<[u8; 32]> {
    let mut material = Zeroizing::new([0u8; 32 + 8 + 4 + 4]);
    material[..32].copy_from_slice(agree(secret, peer).as_ref());
    material[32..40].copy_from_slice(&round.to_be_bytes());
    material[40..44].copy_from_slice(&a.min(b).to_be_bytes());
    material[44..].copy_from_slice(&a.max(b).to_be_bytes());
    Zeroizing::new(blake3::derive_key(PAIRWISE_CONTEXT, material.as_ref()))
}

/// The commitment to client `from`'s self-mask seed that its advert carries: binding (BLAKE3
/// collision resistance) and hiding (the seed is 256 uniform bits), so that anyone can check
/// a self seed the server reconstructs without learning it before.
pub fn seed_commitment(round: u64, from: u32, seed: &[u8; 32]) -> [u8; 32] {
    let mut material = Zeroizing::new([0u8; 8 + 4 + 32]);
    material[..8].copy_from_slice(&round.to_be_bytes());
    material[8..12].copy_from_slice(&from.to_be_bytes());
    material[12..].copy_from_slice(seed);
    blake3::derive_key(SEED_COMMITMENT_CONTEXT, material.as_ref())
}

/// The X25519 agreement between two clients' cipher keys: one Diffie-Hellman per neighbour,
/// used to seal the shares sent to it and to open the shares received from it (the key derived
/// for each message also binds its direction).
pub struct ShareChannel {
    // The agreement opens this round's shares: wiped when the channel is dropped.
    shared: Zeroizing<[u8; 32]>,
}

impl ShareChannel {
    /// The channel between `secret`'s owner and the owner of `peer`.
    pub fn new(secret: &StaticSecret, peer: &PublicKey) -> Self {
        Self {
            shared: agree(secret, peer),
        }
    }

    fn cipher(&self, round: u64, from: u32, to: u32) -> ChaCha20Poly1305 {
        // The agreement's copy and the derived key are wiped as well when they go out of scope.
        let mut material = Zeroizing::new([0u8; 32 + 8 + 4 + 4]);
        material[..32].copy_from_slice(self.shared.as_ref());
        material[32..40].copy_from_slice(&round.to_be_bytes());
        material[40..44].copy_from_slice(&from.to_be_bytes());
        material[44..].copy_from_slice(&to.to_be_bytes());
        let key = Zeroizing::new(blake3::derive_key(SHARE_KEY_CONTEXT, material.as_ref()));
        ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
    }

    /// Encrypts `plaintext` from client `from` to client `to`.
    pub fn seal(&self, round: u64, from: u32, to: u32, plaintext: &[u8]) -> Vec<u8> {
        let aad = share_aad(round, from, to);
        self.cipher(round, from, to)
            .encrypt(
                Nonce::from_slice(&[0; 12]),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("ChaCha20-Poly1305 encryption of a short message cannot fail")
    }

    /// Decrypts a share sent by `from` to `to`; `None` if it was not sealed by the peer for us.
    /// The plaintext (share values) is wiped when dropped.
    pub fn open(
        &self,
        round: u64,
        from: u32,
        to: u32,
        ciphertext: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let aad = share_aad(round, from, to);
        self.cipher(round, from, to)
            .decrypt(
                Nonce::from_slice(&[0; 12]),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }
}

fn share_aad(round: u64, from: u32, to: u32) -> [u8; 16] {
    let mut aad = [0u8; 16];
    aad[..8].copy_from_slice(&round.to_be_bytes());
    aad[8..12].copy_from_slice(&from.to_be_bytes());
    aad[12..].copy_from_slice(&to.to_be_bytes());
    aad
}

fn advert_message(
    round: u64,
    from: u32,
    cipher_pk: &[u8; 32],
    mask_pk: &[u8; 32],
    seed_commitment: &[u8; 32],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(ADVERT_DOMAIN.len() + 8 + 4 + 96);
    m.extend_from_slice(ADVERT_DOMAIN);
    m.extend_from_slice(&round.to_be_bytes());
    m.extend_from_slice(&from.to_be_bytes());
    m.extend_from_slice(cipher_pk);
    m.extend_from_slice(mask_pk);
    m.extend_from_slice(seed_commitment);
    m
}

/// Signs a key advertisement: both public keys and the self-seed commitment.
pub fn sign_advert(
    key: &SigningKey,
    round: u64,
    from: u32,
    cipher_pk: &[u8; 32],
    mask_pk: &[u8; 32],
    seed_commitment: &[u8; 32],
) -> [u8; 64] {
    key.sign(&advert_message(
        round,
        from,
        cipher_pk,
        mask_pk,
        seed_commitment,
    ))
    .to_bytes()
}

/// Checks an advert's signature by `key`, the identity of `advert.from`.
pub fn verify_advert(key: &VerifyingKey, round: u64, advert: &Advert) -> bool {
    let m = advert_message(
        round,
        advert.from,
        &advert.cipher_pk,
        &advert.mask_pk,
        &advert.seed_commitment,
    );
    key.verify_strict(&m, &Signature::from_bytes(&advert.signature))
        .is_ok()
}

/// Checks the adverts' signatures (`identity(from)` gives each sender's key) in one batch;
/// on failure, names the first advert whose signature fails alone.
pub fn verify_adverts<'a>(
    round: u64,
    adverts: &[Advert],
    identity: impl Fn(u32) -> &'a VerifyingKey,
) -> Result<(), u32> {
    let messages: Vec<Vec<u8>> = adverts
        .iter()
        .map(|a| advert_message(round, a.from, &a.cipher_pk, &a.mask_pk, &a.seed_commitment))
        .collect();
    let items: Vec<(u32, &[u8], [u8; 64])> = adverts
        .iter()
        .zip(&messages)
        .map(|(a, m)| (a.from, m.as_slice(), a.signature))
        .collect();
    verify_all(&items, identity)
}

fn masked_message(round: u64, from: u32, hash: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(MASKED_DOMAIN.len() + 8 + 4 + 32);
    m.extend_from_slice(MASKED_DOMAIN);
    m.extend_from_slice(&round.to_be_bytes());
    m.extend_from_slice(&from.to_be_bytes());
    m.extend_from_slice(hash);
    m
}

/// Signs client `from`'s masked input, given as its [`crate::hash_vector`].
pub fn sign_masked(key: &SigningKey, round: u64, from: u32, hash: &[u8; 32]) -> [u8; 64] {
    key.sign(&masked_message(round, from, hash)).to_bytes()
}

/// Checks a masked input's signature (`hash` is its [`crate::hash_vector`]).
pub fn verify_masked(
    key: &VerifyingKey,
    round: u64,
    from: u32,
    hash: &[u8; 32],
    signature: &[u8; 64],
) -> bool {
    key.verify_strict(
        &masked_message(round, from, hash),
        &Signature::from_bytes(signature),
    )
    .is_ok()
}

/// Checks `(from, hash, signature)` masked-input signatures in one batch; on failure, names
/// the first that fails alone.
pub fn verify_masked_all<'a>(
    round: u64,
    items: &[(u32, [u8; 32], [u8; 64])],
    identity: impl Fn(u32) -> &'a VerifyingKey,
) -> Result<(), u32> {
    let messages: Vec<Vec<u8>> = items
        .iter()
        .map(|(from, hash, _)| masked_message(round, *from, hash))
        .collect();
    let items: Vec<(u32, &[u8], [u8; 64])> = items
        .iter()
        .zip(&messages)
        .map(|((from, _, sig), m)| (*from, m.as_slice(), *sig))
        .collect();
    verify_all(&items, identity)
}

/// The statement of the consistency step: the signer and the survivor list it was shown. The
/// list enters through its BLAKE3 hash, so a verifier hashes a long list once for all signers.
fn consistency_message(round: u64, signer: u32, survivors_hash: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(CONSISTENCY_DOMAIN.len() + 8 + 4 + 32);
    m.extend_from_slice(CONSISTENCY_DOMAIN);
    m.extend_from_slice(&round.to_be_bytes());
    m.extend_from_slice(&signer.to_be_bytes());
    m.extend_from_slice(survivors_hash);
    m
}

/// BLAKE3 of a survivor list (count, then ids big-endian), as the consistency statement
/// binds it.
pub fn survivors_hash(survivors: &[u32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(survivors.len() as u64).to_be_bytes());
    for id in survivors {
        hasher.update(&id.to_be_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// Signs, as client `signer`, the survivor list of the consistency step.
pub fn sign_consistency(key: &SigningKey, round: u64, signer: u32, survivors: &[u32]) -> [u8; 64] {
    key.sign(&consistency_message(
        round,
        signer,
        &survivors_hash(survivors),
    ))
    .to_bytes()
}

/// Checks one consistency signature by `signer` on the list whose [`survivors_hash`] is given.
pub fn verify_consistency(
    key: &VerifyingKey,
    round: u64,
    signer: u32,
    survivors_hash: &[u8; 32],
    signature: &[u8; 64],
) -> bool {
    key.verify_strict(
        &consistency_message(round, signer, survivors_hash),
        &Signature::from_bytes(signature),
    )
    .is_ok()
}

/// Checks `(signer, signature)` consistency signatures on one survivor list in one batch; on
/// failure, names the first that fails alone.
pub fn verify_consistency_all<'a>(
    round: u64,
    survivors: &[u32],
    signatures: &[(u32, [u8; 64])],
    identity: impl Fn(u32) -> &'a VerifyingKey,
) -> Result<(), u32> {
    let hash = survivors_hash(survivors);
    let messages: Vec<Vec<u8>> = signatures
        .iter()
        .map(|(signer, _)| consistency_message(round, *signer, &hash))
        .collect();
    let items: Vec<(u32, &[u8], [u8; 64])> = signatures
        .iter()
        .zip(&messages)
        .map(|((signer, sig), m)| (*signer, m.as_slice(), *sig))
        .collect();
    verify_all(&items, identity)
}

/// Batch verification of `(signer, message, signature)`; a failing batch is re-checked one by
/// one (strictly) to name the first bad signer. The batch equation (ed25519-dalek: random
/// linear combination of the cofactorless equations) can accept what a strict check refuses
/// only for a small-order twist of a genuine signature on the same statement, or a weak key
/// its owner chose: a relay cannot make a signer appear to sign a statement it did not.
fn verify_all<'a>(
    items: &[(u32, &[u8], [u8; 64])],
    identity: impl Fn(u32) -> &'a VerifyingKey,
) -> Result<(), u32> {
    if items.is_empty() {
        return Ok(());
    }
    let messages: Vec<&[u8]> = items.iter().map(|(_, m, _)| *m).collect();
    let signatures: Vec<Signature> = items
        .iter()
        .map(|(_, _, s)| Signature::from_bytes(s))
        .collect();
    let keys: Vec<VerifyingKey> = items.iter().map(|(id, _, _)| *identity(*id)).collect();
    if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
        return Ok(());
    }
    for ((id, m, _), (sig, key)) in items.iter().zip(signatures.iter().zip(&keys)) {
        if key.verify_strict(m, sig).is_err() {
            return Err(*id);
        }
    }
    // Unreachable in practice (strictly valid signatures satisfy every linear combination of
    // their equations); refused all the same, attributed to the first signer.
    Err(items[0].0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn pairwise_seed_is_symmetric_and_round_bound() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let a = StaticSecret::random_from_rng(&mut rng);
        let b = StaticSecret::random_from_rng(&mut rng);
        let (pa, pb) = (PublicKey::from(&a), PublicKey::from(&b));
        assert_eq!(
            *pairwise_seed(&a, &pb, 1, 4, 9),
            *pairwise_seed(&b, &pa, 1, 9, 4)
        );
        assert_ne!(
            *pairwise_seed(&a, &pb, 1, 4, 9),
            *pairwise_seed(&a, &pb, 2, 4, 9)
        );
    }

    proptest::proptest! {
        /// The Edwards-form agreement equals the Montgomery ladder for any secret and any
        /// 32 bytes as the peer's key (about half of them are on the twist).
        #[test]
        fn agreement_equals_the_ladder(secret: [u8; 32], peer: [u8; 32]) {
            let (secret, peer) = (StaticSecret::from(secret), PublicKey::from(peer));
            proptest::prop_assert_eq!(*agree(&secret, &peer), secret.diffie_hellman(&peer).to_bytes());
        }
    }

    #[test]
    fn agreement_equals_the_ladder_on_special_points() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let secret = StaticSecret::random_from_rng(&mut rng);
        // Small-order points (from RFC 7748 errata / libsodium's blocklist), u = 0, 1, p - 1,
        // and non-canonical encodings of them.
        let mut specials: Vec<[u8; 32]> = vec![[0; 32], [0xff; 32]];
        let mut one = [0u8; 32];
        one[0] = 1;
        specials.push(one);
        let mut p_minus_1 = [0xff; 32];
        p_minus_1[0] = 0xec;
        p_minus_1[31] = 0x7f;
        specials.push(p_minus_1);
        let mut p_plus_1 = [0xff; 32];
        p_plus_1[0] = 0xee;
        p_plus_1[31] = 0x7f;
        specials.push(p_plus_1);
        specials.push(hex_bytes(
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        ));
        specials.push(hex_bytes(
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        ));
        for u in specials {
            let peer = PublicKey::from(u);
            assert_eq!(
                *agree(&secret, &peer),
                secret.diffie_hellman(&peer).to_bytes(),
                "{u:02x?}"
            );
        }
    }

    fn hex_bytes(h: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("hex");
        }
        out
    }

    #[test]
    fn share_opens_only_for_its_recipient_and_direction() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let a = StaticSecret::random_from_rng(&mut rng);
        let b = StaticSecret::random_from_rng(&mut rng);
        let (pa, pb) = (PublicKey::from(&a), PublicKey::from(&b));
        let (ab, ba) = (ShareChannel::new(&a, &pb), ShareChannel::new(&b, &pa));
        let ct = ab.seal(7, 1, 2, b"hello");
        assert_eq!(
            ba.open(7, 1, 2, &ct).as_deref().map(Vec::as_slice),
            Some(&b"hello"[..])
        );
        assert_eq!(ba.open(7, 2, 1, &ct), None);
        assert_eq!(ba.open(8, 1, 2, &ct), None);
        // Both directions over one agreement, each with its own key.
        let back = ba.seal(7, 2, 1, b"hello");
        assert_ne!(back, ct);
        assert_eq!(
            ab.open(7, 2, 1, &back).as_deref().map(Vec::as_slice),
            Some(&b"hello"[..])
        );
        let stranger = StaticSecret::random_from_rng(&mut rng);
        assert_eq!(ShareChannel::new(&stranger, &pa).open(7, 1, 2, &ct), None);
    }

    #[test]
    fn advert_signature_binds_round_keys_and_commitment() {
        let key = SigningKey::from_bytes(&[5; 32]);
        let signature = sign_advert(&key, 3, 1, &[1; 32], &[2; 32], &[3; 32]);
        let advert = Advert {
            from: 1,
            cipher_pk: [1; 32],
            mask_pk: [2; 32],
            seed_commitment: [3; 32],
            signature,
        };
        let vk = key.verifying_key();
        assert!(verify_advert(&vk, 3, &advert));
        assert!(!verify_advert(&vk, 4, &advert));
        let swapped = Advert {
            cipher_pk: [2; 32],
            mask_pk: [1; 32],
            ..advert.clone()
        };
        assert!(!verify_advert(&vk, 3, &swapped));
        let recommitted = Advert {
            seed_commitment: [4; 32],
            ..advert.clone()
        };
        assert!(!verify_advert(&vk, 3, &recommitted));
        assert_eq!(
            verify_adverts(3, std::slice::from_ref(&advert), |_| &vk),
            Ok(())
        );
        assert_eq!(verify_adverts(3, &[advert, recommitted], |_| &vk), Err(1));
    }

    #[test]
    fn seed_commitment_binds_round_client_and_seed() {
        let c = seed_commitment(1, 2, &[3; 32]);
        assert_ne!(c, seed_commitment(2, 2, &[3; 32]));
        assert_ne!(c, seed_commitment(1, 3, &[3; 32]));
        assert_ne!(c, seed_commitment(1, 2, &[4; 32]));
    }

    /// A consistency signature does not transfer to another round, list, or signer, and a
    /// batch names the bad one.
    #[test]
    fn consistency_signature_binds_round_list_and_signer() {
        let keys: Vec<SigningKey> = (0..3u8)
            .map(|i| SigningKey::from_bytes(&[i + 1; 32]))
            .collect();
        let vks: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
        let list = [0, 1, 2];
        let sig = sign_consistency(&keys[1], 7, 1, &list);
        let h = survivors_hash(&list);
        assert!(verify_consistency(&vks[1], 7, 1, &h, &sig));
        assert!(!verify_consistency(&vks[1], 8, 1, &h, &sig));
        assert!(!verify_consistency(
            &vks[1],
            7,
            1,
            &survivors_hash(&[0, 1]),
            &sig
        ));
        assert!(!verify_consistency(&vks[2], 7, 2, &h, &sig));
        let good: Vec<(u32, [u8; 64])> = (0..3u32)
            .map(|i| (i, sign_consistency(&keys[i as usize], 7, i, &list)))
            .collect();
        assert_eq!(
            verify_consistency_all(7, &list, &good, |i| &vks[i as usize]),
            Ok(())
        );
        let mut replayed = good.clone();
        replayed[2].1 = sign_consistency(&keys[2], 6, 2, &list);
        assert_eq!(
            verify_consistency_all(7, &list, &replayed, |i| &vks[i as usize]),
            Err(2)
        );
    }

    #[test]
    fn masked_signature_binds_round_client_and_hash() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let vk = key.verifying_key();
        let sig = sign_masked(&key, 1, 4, &[5; 32]);
        assert!(verify_masked(&vk, 1, 4, &[5; 32], &sig));
        assert!(!verify_masked(&vk, 2, 4, &[5; 32], &sig));
        assert!(!verify_masked(&vk, 1, 3, &[5; 32], &sig));
        assert!(!verify_masked(&vk, 1, 4, &[6; 32], &sig));
        assert_eq!(verify_masked_all(1, &[(4, [5; 32], sig)], |_| &vk), Ok(()));
        assert_eq!(verify_masked_all(1, &[(4, [6; 32], sig)], |_| &vk), Err(4));
    }
}
