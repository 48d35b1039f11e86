//! Member keys: ed25519 identities that sign every change.
//!
//! A member is known by its 32-byte public key, which is also the Automerge actor id of every
//! change it writes. Verification is always strict (`verify_strict`), and weak (small-order)
//! keys are refused outright, so that one signature can never validate many messages.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Errors about keys and signatures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text is not 64 hex digits.
    #[error("not a member id: expected 64 hex digits, got {0:?}")]
    BadHex(String),
    /// The bytes are not a point on the curve.
    #[error("not a valid ed25519 public key")]
    NotAKey,
    /// The key has small order: signatures by it prove nothing.
    #[error("weak ed25519 public key refused")]
    WeakKey,
    /// The signature does not verify under strict rules.
    #[error("signature does not verify")]
    BadSignature,
}

/// Checked verifying keys remembered per thread by [`MemberId::verifying_key`].
pub const KEY_CACHE: usize = 4096;

thread_local! {
    static KEYS: std::cell::RefCell<std::collections::HashMap<[u8; 32], VerifyingKey>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// A member's public key, the identity everything else refers to.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MemberId(pub [u8; 32]);

impl MemberId {
    /// Full lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The short form shown beside names: the first 8 hex digits.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// The verifying key, refusing weak keys.
    ///
    /// Decompressing a key costs about a tenth of a signature check, and a topic's changes
    /// come from few authors, so keys that pass are remembered per thread (at most
    /// [`KEY_CACHE`] of them). The answer is a pure function of the 32 bytes, so the cache
    /// changes no verdict; refused keys are not remembered and are checked again each time.
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        if let Some(key) = KEYS.with(|k| k.borrow().get(&self.0).copied()) {
            return Ok(key);
        }
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::NotAKey)?;
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        KEYS.with(|k| {
            let mut keys = k.borrow_mut();
            if keys.len() >= KEY_CACHE {
                keys.clear();
            }
            keys.insert(self.0, key);
        });
        Ok(key)
    }

    /// Checks `signature` over `message` with strict verification.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), KeyError> {
        verify_with(&self.verifying_key()?, message, signature)
    }
}

/// Checks `signature` over `message` with strict verification, by a key already decompressed
/// and checked (see [`MemberId::verifying_key`]).
pub fn verify_with(
    key: &VerifyingKey,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), KeyError> {
    key.verify_strict(message, &Signature::from_bytes(signature))
        .map_err(|_| KeyError::BadSignature)
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId({})", self.short())
    }
}

impl FromStr for MemberId {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| KeyError::BadHex(s.to_string()))?;
        Ok(MemberId(bytes))
    }
}

/// A secret signing key: a member's, or an invite's.
pub struct Keypair(SigningKey);

impl Keypair {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        Keypair(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// Restores a key from its 32 secret bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        Keypair(SigningKey::from_bytes(secret))
    }

    /// The 32 secret bytes, for storing in the data directory.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn member_id(&self) -> MemberId {
        MemberId(self.0.verifying_key().to_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.member_id().short())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_short_form() {
        let id = Keypair::generate().member_id();
        let parsed: MemberId = id.to_hex().parse().unwrap();
        assert_eq!(parsed, id);
        assert_eq!(id.short().len(), 8);
        assert!(id.to_hex().starts_with(&id.short()));
        assert!("zz".parse::<MemberId>().is_err());
    }

    #[test]
    fn strict_verification() {
        let key = Keypair::generate();
        let sig = key.sign(b"hello");
        assert!(key.member_id().verify(b"hello", &sig).is_ok());
        assert_eq!(
            key.member_id().verify(b"hellO", &sig),
            Err(KeyError::BadSignature)
        );
    }

    #[test]
    fn remembered_keys_are_the_keys_and_refusals_are_not_remembered() {
        let id = Keypair::generate().member_id();
        let fresh = VerifyingKey::from_bytes(&id.0).unwrap();
        assert_eq!(id.verifying_key().unwrap(), fresh);
        assert_eq!(id.verifying_key().unwrap(), fresh, "from the cache");
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for _ in 0..2 {
            assert_eq!(
                MemberId(identity).verifying_key().unwrap_err(),
                KeyError::WeakKey
            );
        }
        // Past the bound the cache starts again and still answers right.
        for _ in 0..KEY_CACHE + 1 {
            Keypair::generate().member_id().verifying_key().unwrap();
        }
        assert_eq!(id.verifying_key().unwrap(), fresh);
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point (small order) encoded in compressed Edwards form.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            MemberId(identity).verifying_key().unwrap_err(),
            KeyError::WeakKey
        );
    }
}
