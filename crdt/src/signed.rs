//! The signed change: an Automerge change with its author's signature beside it.
//!
//! The signature cannot live inside the change (the change hash covers every byte of it), so
//! it travels next to the change. It covers a domain tag, the topic id, the document id and the
//! change hash, so a change signed for one document or topic cannot be replayed into another.

use automerge::{Change, ChangeHash};
use serde::{Deserialize, Serialize};

use crate::ids::{DocId, TopicId};
use crate::keys::Keypair;

const DOMAIN: &[u8] = b"catchment/change/v1";

/// A change as it is stored and sent: the document it belongs to, the raw change bytes and the
/// author's signature.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedChange {
    /// The document the change belongs to.
    pub doc: DocId,
    /// The raw Automerge change chunk.
    #[serde(with = "serde_bytes_vec")]
    pub bytes: Vec<u8>,
    /// ed25519 signature over [`signing_message`].
    #[serde(with = "serde_sig")]
    pub signature: [u8; 64],
}

impl std::fmt::Debug for SignedChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedChange")
            .field("doc", &self.doc)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// What a change's signature covers.
pub fn signing_message(topic: &TopicId, doc: &DocId, hash: &ChangeHash) -> Vec<u8> {
    let doc = doc.to_bytes();
    let mut message = Vec::with_capacity(DOMAIN.len() + 32 + doc.len() + 32);
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(&topic.0);
    message.extend_from_slice(&doc);
    message.extend_from_slice(&hash.0);
    message
}

impl SignedChange {
    /// Signs `change` as a change to `doc` of `topic`.
    pub fn sign(key: &Keypair, topic: &TopicId, doc: DocId, change: &Change) -> Self {
        let signature = key.sign(&signing_message(topic, &doc, &change.hash()));
        SignedChange {
            doc,
            bytes: change.raw_bytes().to_vec(),
            signature,
        }
    }
}

mod serde_bytes_vec {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<u8>, A::Error> {
                let mut out = Vec::new();
                while let Some(b) = seq.next_element()? {
                    out.push(b);
                }
                Ok(out)
            }
        }
        d.deserialize_bytes(Visitor)
    }
}

mod serde_sig {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(sig: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(sig)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let bytes = super::serde_bytes_vec::deserialize(d)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a signature is 64 bytes"))
    }
}
