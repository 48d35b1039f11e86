//! Identifiers: topics, documents and entries.

use std::fmt;
use std::str::FromStr;

use automerge::ChangeHash;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::keys::MemberId;

/// A topic's self-certifying id: the hash of its signed genesis change.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TopicId(pub [u8; 32]);

impl TopicId {
    /// Full lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, enough to tell topics apart on one node.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// The genesis change's hash, which this id is.
    pub fn genesis_hash(&self) -> ChangeHash {
        ChangeHash(self.0)
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicId({})", self.short())
    }
}

/// The text is not a topic id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a topic id: expected 64 hex digits, got {0:?}")]
pub struct BadTopicId(pub String);

impl FromStr for TopicId {
    type Err = BadTopicId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| BadTopicId(s.to_string()))?;
        Ok(TopicId(bytes))
    }
}

/// One of a topic's documents.
///
/// The charter is written by admins only; journal `n` of a member is written only by that
/// member's devices. Journals roll over to `n + 1` once they hold [`crate::JOURNAL_ROLLOVER`]
/// entries, so that no document grows big.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DocId {
    /// The admins' document.
    Charter,
    /// A member's journal number `n`.
    Journal {
        /// Whose journal.
        member: MemberId,
        /// Its number, from 0.
        n: u32,
    },
}

/// The bytes are not a document id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a document id")]
pub struct BadDocId;

impl DocId {
    /// A compact, order-preserving encoding, used in signatures and store keys.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            DocId::Charter => vec![0],
            DocId::Journal { member, n } => {
                let mut out = Vec::with_capacity(37);
                out.push(1);
                out.extend_from_slice(&member.0);
                out.extend_from_slice(&n.to_be_bytes());
                out
            }
        }
    }

    /// Reads [`DocId::to_bytes`] back.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, BadDocId> {
        match bytes {
            [0] => Ok(DocId::Charter),
            [1, rest @ ..] if rest.len() == 36 => {
                let mut member = [0u8; 32];
                member.copy_from_slice(&rest[..32]);
                let n = u32::from_be_bytes([rest[32], rest[33], rest[34], rest[35]]);
                Ok(DocId::Journal {
                    member: MemberId(member),
                    n,
                })
            }
            _ => Err(BadDocId),
        }
    }

    /// The member whose journal this is, if it is one.
    pub fn journal_owner(&self) -> Option<MemberId> {
        match self {
            DocId::Charter => None,
            DocId::Journal { member, .. } => Some(*member),
        }
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Charter => f.write_str("charter"),
            DocId::Journal { member, n } => write!(f, "journal/{}/{n}", member.to_hex()),
        }
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocId::Charter => f.write_str("charter"),
            DocId::Journal { member, n } => write!(f, "journal/{}/{n}", member.short()),
        }
    }
}

impl FromStr for DocId {
    type Err = BadDocId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "charter" {
            return Ok(DocId::Charter);
        }
        let rest = s.strip_prefix("journal/").ok_or(BadDocId)?;
        let (member, n) = rest.split_once('/').ok_or(BadDocId)?;
        Ok(DocId::Journal {
            member: member.parse().map_err(|_| BadDocId)?,
            n: n.parse().map_err(|_| BadDocId)?,
        })
    }
}

/// A new entry id (contribution, kudos, ask): 16 random hex digits.
///
/// 64 random bits make ids unique without coordination; should two authors ever draw the same
/// one, the views keep the entry of the smaller member id, the same on every node.
pub fn new_entry_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Whether `s` has the shape of an entry id.
pub fn is_entry_id(s: &str) -> bool {
    s.len() == 16
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;

    #[test]
    fn doc_id_round_trips() {
        let member = Keypair::generate().member_id();
        for doc in [DocId::Charter, DocId::Journal { member, n: 7 }] {
            assert_eq!(DocId::from_bytes(&doc.to_bytes()).unwrap(), doc);
            assert_eq!(doc.to_string().parse::<DocId>().unwrap(), doc);
        }
        assert!(DocId::from_bytes(&[1, 2, 3]).is_err());
        assert!("journal/xx/1".parse::<DocId>().is_err());
    }

    #[test]
    fn entry_ids_have_their_shape() {
        let id = new_entry_id();
        assert!(is_entry_id(&id));
        assert_ne!(id, new_entry_id());
        assert!(!is_entry_id("0123"));
    }
}
