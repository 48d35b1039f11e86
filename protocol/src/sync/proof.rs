//! The membership proof a peer shows before it is told anything about a topic.
//!
//! The member signs, with its member key,
//!
//! ```text
//! "catchment/proof/v1" || topic id (32) || u32 length || requester PeerId bytes
//!                                       || u32 length || responder PeerId bytes
//! ```
//!
//! Binding the proof to both ends of the connection (the libp2p PeerIds, which the transport
//! authenticates) means a proof shown to one peer is worthless to anyone else: a responder that
//! receives it cannot replay it to a third node, because that node's PeerId differs. The
//! PeerIds are lengths and bytes as the network layer gives them; this module does not parse
//! them.
//!
//! A proof names the member, not the device: today one device is one member. With linked
//! devices, the proof will carry the device key and its certificate instead.

use catchment_crdt::keys::KeyError;
use catchment_crdt::{Keypair, MemberId, TopicId};
use serde::{Deserialize, Serialize};

const DOMAIN: &[u8] = b"catchment/proof/v1";

/// Proof that the peer at the other end holds a member's key, made for one connection.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The member the peer speaks for.
    pub member: MemberId,
    /// The envelope of the member's admission (the first change of its journal 0), so that a
    /// responder that has not seen this member yet can validate its admission first. `None`
    /// when the member holds a role from the charter and has no journal yet.
    pub admission: Option<Vec<u8>>,
    /// The member key's signature over [`proof_message`].
    #[serde(with = "signature_bytes")]
    pub signature: [u8; 64],
}

impl std::fmt::Debug for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proof")
            .field("member", &self.member)
            .field("admission", &self.admission.as_ref().map(Vec::len))
            .finish_non_exhaustive()
    }
}

/// Why a proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The member id is not a usable ed25519 key (not on the curve, or weak).
    #[error("the proof's member is not a usable key: {0}")]
    BadKey(KeyError),
    /// The signature does not verify for this topic and these two peers.
    #[error("the proof does not verify for this topic and connection")]
    BadSignature,
}

/// What a proof's signature covers.
pub fn proof_message(topic: &TopicId, requester: &[u8], responder: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(DOMAIN.len() + 32 + 8 + requester.len() + responder.len());
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(&topic.0);
    for peer in [requester, responder] {
        // The lengths keep the two ids apart: no split of the bytes reads as another pair.
        message.extend_from_slice(&(peer.len() as u32).to_be_bytes());
        message.extend_from_slice(peer);
    }
    message
}

impl Proof {
    /// Signs a proof that `key`'s member asks `responder` about `topic` from `requester`.
    pub fn sign(
        key: &Keypair,
        topic: &TopicId,
        admission: Option<Vec<u8>>,
        requester: &[u8],
        responder: &[u8],
    ) -> Self {
        Proof {
            member: key.member_id(),
            admission,
            signature: key.sign(&proof_message(topic, requester, responder)),
        }
    }

    /// Checks the signature, strictly, for `topic` on the connection from `requester` to
    /// `responder`. Whether the member belongs to the topic is the caller's question.
    pub fn verify(
        &self,
        topic: &TopicId,
        requester: &[u8],
        responder: &[u8],
    ) -> Result<(), ProofError> {
        self.member
            .verify(&proof_message(topic, requester, responder), &self.signature)
            .map_err(|e| match e {
                KeyError::BadSignature => ProofError::BadSignature,
                other => ProofError::BadKey(other),
            })
    }
}

/// A 64-byte signature as serde bytes (serde derives stop at 32-element arrays).
mod signature_bytes {
    use std::fmt;

    use serde::de::{Error, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(signature: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(signature)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        d.deserialize_bytes(SignatureVisitor)
    }

    struct SignatureVisitor;

    impl<'de> Visitor<'de> for SignatureVisitor {
        type Value = [u8; 64];

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a 64-byte signature")
        }

        fn visit_bytes<E: Error>(self, bytes: &[u8]) -> Result<[u8; 64], E> {
            bytes
                .try_into()
                .map_err(|_| E::invalid_length(bytes.len(), &self))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; 64], A::Error> {
            let mut out = [0u8; 64];
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(i, &self))?;
            }
            if seq.next_element::<u8>()?.is_some() {
                return Err(A::Error::invalid_length(65, &self));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_PEER: &[u8] = b"peer-alice";
    const BOB_PEER: &[u8] = b"peer-bob";

    #[test]
    fn a_proof_verifies_only_where_it_was_made_for() {
        let key = Keypair::generate();
        let topic = TopicId([3; 32]);
        let proof = Proof::sign(&key, &topic, Some(vec![1, 2]), ALICE_PEER, BOB_PEER);
        assert_eq!(proof.member, key.member_id());
        assert_eq!(proof.verify(&topic, ALICE_PEER, BOB_PEER), Ok(()));

        let carol = b"peer-carol".as_slice();
        for (topic, requester, responder) in [
            (TopicId([4; 32]), ALICE_PEER, BOB_PEER),
            (topic, BOB_PEER, ALICE_PEER),
            (topic, ALICE_PEER, carol),
            (topic, carol, BOB_PEER),
        ] {
            assert_eq!(
                proof.verify(&topic, requester, responder),
                Err(ProofError::BadSignature)
            );
        }

        // Someone else's key under the same signature.
        let forged = Proof {
            member: Keypair::generate().member_id(),
            ..proof.clone()
        };
        assert_eq!(
            forged.verify(&topic, ALICE_PEER, BOB_PEER),
            Err(ProofError::BadSignature)
        );
    }

    #[test]
    fn peer_ids_cannot_be_shifted_between_the_two_ends() {
        let topic = TopicId([3; 32]);
        assert_ne!(
            proof_message(&topic, b"ab", b"c"),
            proof_message(&topic, b"a", b"bc")
        );
    }

    #[test]
    fn weak_keys_are_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let proof = Proof {
            member: MemberId(identity),
            admission: None,
            signature: [0; 64],
        };
        assert_eq!(
            proof.verify(&TopicId([0; 32]), ALICE_PEER, BOB_PEER),
            Err(ProofError::BadKey(KeyError::WeakKey))
        );
    }
}
