//! The signed change envelope: one Automerge change, the document it belongs to and its
//! author's signature, in a versioned binary frame.
//!
//! ```text
//! version: u8 = 1
//! doc id length: u8, then the doc id (see `DocId::to_bytes`: 1 byte for the charter,
//!     37 bytes for a journal: tag, member key, journal number)
//! signature: 64 bytes
//! change: the rest, the raw Automerge change chunk
//! ```
//!
//! Decoding checks the frame only (version, lengths, the size limit); whether the change is
//! acceptable is `catchment_crdt::validate`'s decision.

use catchment_crdt::validate::MAX_CHANGE_BYTES;
use catchment_crdt::{DocId, SignedChange};

/// The envelope version this code writes.
pub const VERSION: u8 = 1;
/// The largest envelope [`decode`] reads: the largest change plus room for the frame.
pub const MAX_ENVELOPE_BYTES: usize = MAX_CHANGE_BYTES + 128;

/// Why bytes are not an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Nothing at all.
    #[error("empty change envelope")]
    Empty,
    /// Written by a newer version.
    #[error("change envelope version {0} is not supported (this node reads version {VERSION})")]
    Version(u8),
    /// Ends before its fields do.
    #[error("change envelope ends early")]
    Truncated,
    /// The document id is not one.
    #[error("change envelope names no valid document")]
    BadDoc,
    /// Over the size limit.
    #[error("change envelope of {0} bytes is over the limit")]
    TooLarge(usize),
}

/// Encodes a signed change.
pub fn encode(change: &SignedChange) -> Vec<u8> {
    let doc = change.doc.to_bytes();
    let mut out = Vec::with_capacity(2 + doc.len() + 64 + change.bytes.len());
    out.push(VERSION);
    out.push(doc.len() as u8);
    out.extend_from_slice(&doc);
    out.extend_from_slice(&change.signature);
    out.extend_from_slice(&change.bytes);
    out
}

/// Decodes a signed change's envelope.
pub fn decode(bytes: &[u8]) -> Result<SignedChange, EnvelopeError> {
    if bytes.len() > MAX_ENVELOPE_BYTES {
        return Err(EnvelopeError::TooLarge(bytes.len()));
    }
    let (&version, rest) = bytes.split_first().ok_or(EnvelopeError::Empty)?;
    if version != VERSION {
        return Err(EnvelopeError::Version(version));
    }
    let (&doc_len, rest) = rest.split_first().ok_or(EnvelopeError::Truncated)?;
    let doc_len = doc_len as usize;
    if rest.len() < doc_len + 64 {
        return Err(EnvelopeError::Truncated);
    }
    let (doc, rest) = rest.split_at(doc_len);
    let doc = DocId::from_bytes(doc).map_err(|_| EnvelopeError::BadDoc)?;
    let (signature, change) = rest.split_at(64);
    Ok(SignedChange {
        doc,
        bytes: change.to_vec(),
        signature: signature.try_into().expect("split at 64"),
    })
}

#[cfg(test)]
mod tests {
    use catchment_crdt::{Keypair, MemberId};
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

    proptest! {
        #[test]
        fn round_trips(doc in doc_id(), bytes in proptest::collection::vec(any::<u8>(), 0..512), sig in any::<[u8; 32]>()) {
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&sig);
            let change = SignedChange { doc, bytes, signature };
            prop_assert_eq!(decode(&encode(&change)).unwrap(), change);
        }

        #[test]
        fn never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(decode(&[]), Err(EnvelopeError::Empty));
        assert_eq!(decode(&[2, 1, 0]), Err(EnvelopeError::Version(2)));
        assert_eq!(decode(&[1, 1, 0]), Err(EnvelopeError::Truncated));
        assert_eq!(
            decode(
                &[1, 3, 9, 9, 9]
                    .iter()
                    .copied()
                    .chain([0; 64])
                    .collect::<Vec<_>>()
            ),
            Err(EnvelopeError::BadDoc)
        );
        assert!(matches!(
            decode(&vec![1; MAX_CHANGE_BYTES + 1000]),
            Err(EnvelopeError::TooLarge(_))
        ));
        let key = Keypair::generate();
        let change = SignedChange {
            doc: DocId::Journal {
                member: key.member_id(),
                n: 3,
            },
            bytes: vec![1, 2, 3],
            signature: key.sign(b"x"),
        };
        assert_eq!(decode(&encode(&change)).unwrap(), change);
    }
}
