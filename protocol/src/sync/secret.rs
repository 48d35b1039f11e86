//! What only a topic's members can compute from its topic key: the tag that names the topic in
//! sync requests, the gossipsub topic name, and the sealed (encrypted) form of gossip payloads.
//!
//! The topic key is 32 random bytes made when the topic is created and handed out only inside
//! invites. Everything here is derived from it with SHA-256 under a distinct domain string, so
//! no derived value reveals the key or another derived value, and none reveals the topic id.
//!
//! A sealed payload is
//!
//! ```text
//! version: u8 = 1
//! nonce: 24 random bytes
//! ciphertext: XChaCha20-Poly1305 of the plaintext (plaintext length + 16 bytes of tag)
//! ```
//!
//! under a key derived from the topic key, with the version byte as associated data. The
//! 192-bit nonce is drawn at random for every payload: at that size random nonces never repeat
//! in practice, so members need no counter to agree on.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use data_encoding::HEXLOWER;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::envelope;

const TAG_DOMAIN: &[u8] = b"catchment/topic-tag/v1";
const GOSSIP_DOMAIN: &[u8] = b"catchment/gossip/v1";
const SEAL_KEY_DOMAIN: &[u8] = b"catchment/seal-key/v1";

/// The sealed payload format this code writes.
pub const SEAL_VERSION: u8 = 1;
/// Bytes of the random nonce.
pub const NONCE_BYTES: usize = 24;
/// Bytes a sealed payload adds to its plaintext: version, nonce and authentication tag.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_BYTES + 16;
/// The largest plaintext [`open`] returns: one change envelope.
pub const MAX_PLAINTEXT: usize = envelope::MAX_ENVELOPE_BYTES;
/// The largest sealed payload [`open`] looks at.
pub const MAX_SEALED: usize = MAX_PLAINTEXT + SEAL_OVERHEAD;

/// How peers name a topic on the wire: SHA-256 of a domain string and the topic key.
///
/// Only members hold the key, so only they can compute the tag; the tag does not reveal the
/// topic id, and a node that does not hold the topic cannot tell which topic a tag stands for.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicTag(pub [u8; 32]);

impl TopicTag {
    /// The tag of the topic whose key is `key`.
    pub fn of(key: &[u8; 32]) -> Self {
        TopicTag(hash(TAG_DOMAIN, key))
    }
}

impl std::fmt::Debug for TopicTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TopicTag({})", hex(&self.0[..4]))
    }
}

/// The gossipsub topic name of the topic whose key is `key`: 64 lowercase hex digits of
/// SHA-256 over a domain string and the key.
pub fn gossip_topic(key: &[u8; 32]) -> String {
    hex(&hash(GOSSIP_DOMAIN, key))
}

/// Why a sealed payload does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Shorter than the version, nonce and tag alone.
    #[error("sealed payload of {0} bytes is too short to hold anything")]
    TooShort(usize),
    /// Over [`MAX_SEALED`].
    #[error("sealed payload of {size} bytes is over the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Written by another version of the format.
    #[error(
        "sealed payload version {0} is not supported (this node reads version {SEAL_VERSION})"
    )]
    Version(u8),
    /// Sealed under another key, or altered on the way.
    #[error("sealed payload does not open: another topic key, or altered on the way")]
    Forged,
}

/// Seals `plaintext` with the topic key: a fresh random nonce, XChaCha20-Poly1305.
///
/// Plaintexts over [`MAX_PLAINTEXT`] seal, but [`open`] refuses them: keep gossip payloads to
/// one change envelope.
pub fn seal(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ciphertext = cipher(key)
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &[SEAL_VERSION],
            },
        )
        // SAFETY: encryption fails only for plaintexts near 2^38 bytes, far beyond any payload.
        .expect("XChaCha20-Poly1305 encrypts any payload this size");
    let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
    out.push(SEAL_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

/// Opens a payload [`seal`]ed with the topic key, refusing oversized input before decrypting.
pub fn open(key: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() > MAX_SEALED {
        return Err(SealError::TooLarge {
            size: sealed.len(),
            max: MAX_SEALED,
        });
    }
    let Some((&version, rest)) = sealed.split_first() else {
        return Err(SealError::TooShort(0));
    };
    if version != SEAL_VERSION {
        return Err(SealError::Version(version));
    }
    if sealed.len() < SEAL_OVERHEAD {
        return Err(SealError::TooShort(sealed.len()));
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_BYTES);
    cipher(key)
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &[version],
            },
        )
        .map_err(|_| SealError::Forged)
}

/// The cipher under the sealing key, which is derived so that the topic key itself is never
/// used by two algorithms.
fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
    let derived = hash(SEAL_KEY_DOMAIN, key);
    XChaCha20Poly1305::new(Key::from_slice(&derived))
}

fn hash(domain: &[u8], key: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(domain);
    hasher.update(key);
    hasher.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn tags_and_gossip_names_depend_on_the_key_only() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(TopicTag::of(&a), TopicTag::of(&a));
        assert_ne!(TopicTag::of(&a), TopicTag::of(&b));
        let name = gossip_topic(&a);
        assert_eq!(name.len(), 64);
        assert!(name.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(name, gossip_topic(&b));
        // Distinct domains: the tag is not the gossip name in other clothes.
        assert_ne!(hex(&TopicTag::of(&a).0), name);
    }

    #[test]
    fn sealing_hides_and_authenticates() {
        let key = [7u8; 32];
        let sealed = seal(&key, b"a change envelope");
        assert_eq!(sealed.len(), SEAL_OVERHEAD + 17);
        assert_eq!(sealed[0], SEAL_VERSION);
        assert!(!sealed.windows(8).any(|w| w == b"a change"));
        assert_eq!(open(&key, &sealed).unwrap(), b"a change envelope");
        // The same plaintext twice seals differently (fresh nonces).
        assert_ne!(seal(&key, b"x"), seal(&key, b"x"));
        assert_eq!(open(&key, &seal(&key, b"")).unwrap(), b"");
    }

    #[test]
    fn names_why_a_payload_does_not_open() {
        let key = [7u8; 32];
        let sealed = seal(&key, b"hello");
        assert_eq!(open(&[8u8; 32], &sealed), Err(SealError::Forged));
        for at in [1, NONCE_BYTES + 1, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[at] ^= 1;
            assert_eq!(open(&key, &tampered), Err(SealError::Forged), "byte {at}");
        }
        let mut newer = sealed.clone();
        newer[0] = 2;
        assert_eq!(open(&key, &newer), Err(SealError::Version(2)));
        assert_eq!(open(&key, &[]), Err(SealError::TooShort(0)));
        assert_eq!(
            open(&key, &sealed[..SEAL_OVERHEAD - 1]),
            Err(SealError::TooShort(SEAL_OVERHEAD - 1))
        );
        assert_eq!(
            open(&key, &sealed[..sealed.len() - 1]),
            Err(SealError::Forged)
        );
        let big = seal(&key, &vec![0; MAX_PLAINTEXT + 1]);
        assert_eq!(
            open(&key, &big),
            Err(SealError::TooLarge {
                size: MAX_SEALED + 1,
                max: MAX_SEALED
            })
        );
        let largest = seal(&key, &vec![0; MAX_PLAINTEXT]);
        assert_eq!(open(&key, &largest).unwrap().len(), MAX_PLAINTEXT);
    }

    proptest! {
        #[test]
        fn seal_round_trips(key in any::<[u8; 32]>(), plaintext in proptest::collection::vec(any::<u8>(), 0..2048)) {
            prop_assert_eq!(open(&key, &seal(&key, &plaintext)).unwrap(), plaintext);
        }

        #[test]
        fn garbage_never_opens_or_panics(key in any::<[u8; 32]>(), bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            prop_assert!(open(&key, &bytes).is_err());
        }
    }
}
