//! Anti-entropy: the messages with which one peer pulls from another the changes it lacks.
//!
//! Gossip pushes new changes at once but may drop some; a sync session makes sure. It is a pull
//! over a request-response stream, stateless on the responder's side, and each peer runs its own
//! session against the other (on every connection to a peer of the topic, and periodically):
//!
//! 1. The requester sends [`SyncRequest::Heads`]: the topic's [`TopicTag`] (the topic is never
//!    named by its id on the wire) and a [`Proof`] that it holds a member key, bound to this
//!    connection's two PeerIds.
//! 2. The responder finds the topic by its tag, verifies the proof and checks that the member is
//!    admitted; if it does not know the member yet, it first validates the admission the proof
//!    carries like any other change. Anything wrong, unknown tag included, gets the same
//!    [`SyncResponse::Refused`], which says nothing about the topic. Otherwise it answers
//!    [`SyncResponse::Heads`]: the heads of every document it serves.
//! 3. The requester compares them with its own. For each document where some remote head is not
//!    here, it sends a [`Want`] with its own heads of that document, in
//!    [`SyncRequest::Changes`] with a byte budget.
//! 4. The responder answers [`SyncResponse::Changes`]: the signed change envelopes of those
//!    documents that are not in the ancestry of the requester's heads, dependencies first, up to
//!    the budget (at least one change), and `more` when it stopped early.
//! 5. The requester validates and stores them (the same validation as everything else), then
//!    plans again against the same heads and asks again, until nothing is wanted or a round
//!    brings nothing new.
//!
//! A session dropped half way loses nothing: what arrived is stored, and the next session's
//! wants start from the requester's heads, so nothing is sent twice except the changes that
//! were in flight. Unlike Automerge's own sync protocol, every change travels with its signature
//! and is validated before it is applied (see `PITFALLS.md`).
//!
//! Every message starts with a version byte ([`VERSION`]); decoding checks the size limit
//! before reading anything, refuses unknown versions, and then reads the postcard body.
//!
//! The topic key also names the gossipsub topic and seals gossip payloads: see [`seal`],
//! [`open`] and [`gossip_topic`].

mod proof;
mod secret;

use catchment_crdt::DocId;
use serde::{Deserialize, Serialize};

pub use proof::{proof_message, Proof, ProofError};
pub use secret::{
    gossip_topic, open, seal, SealError, TopicTag, MAX_PLAINTEXT, MAX_SEALED, NONCE_BYTES,
    SEAL_OVERHEAD, SEAL_VERSION,
};

/// The sync message version this code writes and reads.
pub const VERSION: u8 = 1;
/// The largest request read: a proof with its admission, and the wants.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// The largest response read: the heads of every document, or a batch of changes.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// The largest change budget a responder honours; a budget over it is cut down to it, so that
/// a batch plus the one change allowed past the budget stays under [`MAX_RESPONSE_BYTES`].
pub const MAX_CHANGES_BYTES: u32 = 4 * 1024 * 1024;

/// An Automerge change hash, as raw bytes.
pub type Hash = [u8; 32];

/// What the requester asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// The heads of every document the responder serves.
    Heads {
        /// Which topic.
        tag: TopicTag,
        /// That the requester is a member, for this connection.
        proof: Proof,
    },
    /// Changes of some documents.
    Changes {
        /// Which topic.
        tag: TopicTag,
        /// That the requester is a member, for this connection.
        proof: Proof,
        /// The documents wanted, in the order to send them (the charter first, then each
        /// member's journals in number order, so that admissions arrive before what needs
        /// them).
        wants: Vec<Want>,
        /// A budget for the envelopes' bytes; the responder sends at least one change, and
        /// never more than [`MAX_CHANGES_BYTES`].
        max_bytes: u32,
    },
}

impl SyncRequest {
    /// The topic the request is about.
    pub fn tag(&self) -> &TopicTag {
        match self {
            SyncRequest::Heads { tag, .. } | SyncRequest::Changes { tag, .. } => tag,
        }
    }

    /// The requester's proof of membership.
    pub fn proof(&self) -> &Proof {
        match self {
            SyncRequest::Heads { proof, .. } | SyncRequest::Changes { proof, .. } => proof,
        }
    }
}

/// One document the requester wants changes of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Want {
    /// The document.
    pub doc: DocId,
    /// The requester's current heads of it (empty if it holds none of it): the responder sends
    /// what is not in their ancestry.
    pub have: Vec<Hash>,
}

/// A document's heads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocHeads {
    /// The document.
    pub doc: DocId,
    /// Its heads, sorted.
    pub heads: Vec<Hash>,
}

/// What the responder answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The heads of every document served, by document.
    Heads {
        /// Each document and its heads.
        docs: Vec<DocHeads>,
    },
    /// Changes, as signed change envelopes.
    Changes {
        /// Envelopes (see [`crate::envelope`]), dependencies first within each document.
        changes: Vec<Vec<u8>>,
        /// The budget ran out before everything wanted was sent: ask again.
        more: bool,
    },
    /// Nothing is served. A refusal about membership reads the same whether or not the
    /// responder holds the topic.
    Refused {
        /// Why, for the requester's logs.
        reason: String,
    },
}

/// Why bytes are not a sync message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Nothing at all.
    #[error("empty sync message")]
    Empty,
    /// Over the size limit.
    #[error("sync message of {size} bytes is over the limit of {max}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Another version of the protocol.
    #[error("sync message version {0} is not supported (this node speaks version {VERSION})")]
    Version(u8),
    /// The body does not decode.
    #[error("sync message is malformed: {0}")]
    Malformed(String),
}

/// Encodes a request: the version byte, then the postcard body.
pub fn encode_request(request: &SyncRequest) -> Vec<u8> {
    encode(request)
}

/// Decodes a request, refusing more than [`MAX_REQUEST_BYTES`] before reading it.
pub fn decode_request(bytes: &[u8]) -> Result<SyncRequest, MessageError> {
    decode(bytes, MAX_REQUEST_BYTES)
}

/// Encodes a response: the version byte, then the postcard body.
pub fn encode_response(response: &SyncResponse) -> Vec<u8> {
    encode(response)
}

/// Decodes a response, refusing more than [`MAX_RESPONSE_BYTES`] before reading it.
pub fn decode_response(bytes: &[u8]) -> Result<SyncResponse, MessageError> {
    decode(bytes, MAX_RESPONSE_BYTES)
}

fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut out = vec![VERSION];
    // SAFETY: these messages hold no maps or floats; postcard encodes them into a Vec always.
    let body = postcard::to_stdvec(message).expect("sync messages always encode");
    out.extend_from_slice(&body);
    out
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, MessageError> {
    if bytes.len() > max {
        return Err(MessageError::TooLarge {
            size: bytes.len(),
            max,
        });
    }
    let (&version, body) = bytes.split_first().ok_or(MessageError::Empty)?;
    if version != VERSION {
        return Err(MessageError::Version(version));
    }
    let (message, rest) =
        postcard::take_from_bytes(body).map_err(|e| MessageError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(MessageError::Malformed(format!(
            "{} bytes after the message",
            rest.len()
        )));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use catchment_crdt::{Keypair, MemberId, TopicId};
    use proptest::prelude::*;

    use super::*;

    fn doc_id() -> impl Strategy<Value = DocId> {
        prop_oneof![
            Just(DocId::Charter),
            (any::<[u8; 32]>(), any::<u32>()).prop_map(|(m, n)| DocId::Journal {
                member: MemberId(m),
                n
            }),
        ]
    }

    fn hashes() -> impl Strategy<Value = Vec<Hash>> {
        proptest::collection::vec(any::<Hash>(), 0..4)
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    fn proof() -> impl Strategy<Value = Proof> {
        (
            any::<[u8; 32]>(),
            proptest::option::of(bytes(300)),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
        )
            .prop_map(|(member, admission, s1, s2)| {
                let mut signature = [0u8; 64];
                signature[..32].copy_from_slice(&s1);
                signature[32..].copy_from_slice(&s2);
                Proof {
                    member: MemberId(member),
                    admission,
                    signature,
                }
            })
    }

    fn request() -> impl Strategy<Value = SyncRequest> {
        let want = (doc_id(), hashes()).prop_map(|(doc, have)| Want { doc, have });
        prop_oneof![
            (any::<[u8; 32]>(), proof()).prop_map(|(tag, proof)| SyncRequest::Heads {
                tag: TopicTag(tag),
                proof
            }),
            (
                any::<[u8; 32]>(),
                proof(),
                proptest::collection::vec(want, 0..6),
                any::<u32>()
            )
                .prop_map(|(tag, proof, wants, max_bytes)| SyncRequest::Changes {
                    tag: TopicTag(tag),
                    proof,
                    wants,
                    max_bytes
                }),
        ]
    }

    fn response() -> impl Strategy<Value = SyncResponse> {
        let heads = (doc_id(), hashes()).prop_map(|(doc, heads)| DocHeads { doc, heads });
        prop_oneof![
            proptest::collection::vec(heads, 0..6).prop_map(|docs| SyncResponse::Heads { docs }),
            (proptest::collection::vec(bytes(200), 0..6), any::<bool>())
                .prop_map(|(changes, more)| SyncResponse::Changes { changes, more }),
            ".{0,40}".prop_map(|reason| SyncResponse::Refused { reason }),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(request in request()) {
            let bytes = encode_request(&request);
            prop_assert_eq!(bytes[0], VERSION);
            prop_assert_eq!(decode_request(&bytes).unwrap(), request);
        }

        #[test]
        fn responses_round_trip(response in response()) {
            prop_assert_eq!(decode_response(&encode_response(&response)).unwrap(), response);
        }

        #[test]
        fn garbage_never_panics(body in bytes(512)) {
            let _ = decode_request(&body);
            let _ = decode_response(&body);
            let versioned: Vec<u8> = [VERSION].into_iter().chain(body).collect();
            let _ = decode_request(&versioned);
            let _ = decode_response(&versioned);
        }

        #[test]
        fn cut_messages_are_refused(request in request(), cut in any::<prop::sample::Index>()) {
            let bytes = encode_request(&request);
            let cut = cut.index(bytes.len());
            prop_assert!(decode_request(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn names_what_is_wrong() {
        let key = Keypair::generate();
        let request = SyncRequest::Heads {
            tag: TopicTag::of(&[1; 32]),
            proof: Proof::sign(&key, &TopicId([2; 32]), None, b"a", b"b"),
        };
        let bytes = encode_request(&request);
        assert_eq!(decode_request(&[]), Err(MessageError::Empty));

        let mut newer = bytes.clone();
        newer[0] = VERSION + 1;
        assert_eq!(
            decode_request(&newer),
            Err(MessageError::Version(VERSION + 1))
        );

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode_request(&trailing),
            Err(MessageError::Malformed(_))
        ));
        assert!(matches!(
            decode_request(&bytes[..bytes.len() - 1]),
            Err(MessageError::Malformed(_))
        ));

        let huge = vec![VERSION; MAX_REQUEST_BYTES + 1];
        assert_eq!(
            decode_request(&huge),
            Err(MessageError::TooLarge {
                size: MAX_REQUEST_BYTES + 1,
                max: MAX_REQUEST_BYTES
            })
        );
    }

    #[test]
    fn a_long_length_prefix_does_not_allocate_it() {
        // Changes response claiming 2^32 envelopes, with nothing behind the claim.
        let mut bytes = vec![VERSION, 1, 0xff, 0xff, 0xff, 0xff, 0x0f];
        bytes.extend_from_slice(&[0; 16]);
        assert!(matches!(
            decode_response(&bytes),
            Err(MessageError::Malformed(_))
        ));
    }

    #[test]
    fn a_decoded_proof_still_verifies() {
        let key = Keypair::generate();
        let topic = TopicId([9; 32]);
        let request = SyncRequest::Changes {
            tag: TopicTag::of(&[1; 32]),
            proof: Proof::sign(&key, &topic, Some(vec![1; 40]), b"req", b"resp"),
            wants: vec![Want {
                doc: DocId::Charter,
                have: vec![[5; 32]],
            }],
            max_bytes: 16 * 1024,
        };
        let back = decode_request(&encode_request(&request)).unwrap();
        assert_eq!(back.proof().verify(&topic, b"req", b"resp"), Ok(()));
        assert_eq!(back.tag(), &TopicTag::of(&[1; 32]));
    }
}
