//! Durable storage behind a small interface.
//!
//! Everything Catchment keeps lives in one ordered key space, written in atomic batches:
//! a [`Backend`] needs only point reads, ordered prefix scans, atomic batch writes and a
//! flush that makes them durable. [`SledBackend`] is the implementation in use; another
//! embedded store (redb, say) fits behind the same five methods. [`layout`] says which key
//! holds what.

use std::path::Path;

use thiserror::Error;

/// A storage failure, in words for the person running the node.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be opened.
    #[error("cannot open the store at {path}: {reason}")]
    Open {
        /// Where.
        path: String,
        /// What the database said.
        reason: String,
    },
    /// A read or write failed.
    #[error("store error: {0}")]
    Io(String),
    /// A stored value does not decode: the store is damaged or from a newer version.
    #[error("stored record {key} does not decode: {reason}")]
    Corrupt {
        /// Which key, in hex.
        key: String,
        /// What was wrong.
        reason: String,
    },
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// Writes applied together or not at all. A later write to the same key replaces an earlier
/// one in the batch.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    at: std::collections::HashMap<Vec<u8>, usize>,
}

impl Batch {
    fn set(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        match self.at.get(&key) {
            Some(&i) => self.ops[i].1 = value,
            None => {
                self.at.insert(key.clone(), self.ops.len());
                self.ops.push((key, value));
            }
        }
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.set(key, Some(value));
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.set(key, None);
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// How many writes.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// What this batch writes to `key`: `Some(None)` if it deletes it, `None` if it does not
    /// touch it.
    pub fn pending(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.at.get(key).map(|&i| self.ops[i].1.as_deref())
    }
}

/// Key-value pairs from a scan.
pub type Entries<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a>;

/// The storage interface.
pub trait Backend: Send + Sync {
    /// Reads one key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every key that starts with `prefix`, from `start` (inclusive; at least `prefix`), in
    /// byte order.
    fn scan_from(&self, prefix: &[u8], start: &[u8]) -> Entries<'_>;
    /// Applies every write of the batch atomically.
    fn write(&self, batch: Batch) -> Result<(), StoreError>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Bytes used on disk.
    fn size_on_disk(&self) -> Result<u64, StoreError>;
}

/// Scans every key that starts with `prefix`.
pub fn scan<'a>(backend: &'a dyn Backend, prefix: &[u8]) -> Entries<'a> {
    backend.scan_from(prefix, prefix)
}

/// The sled-backed store.
pub struct SledBackend {
    db: sled::Db,
}

/// sled's page cache: large enough for a desktop's working set, far below sled's 1 GiB default.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

impl SledBackend {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(500))
            .open()
            .map_err(|e| StoreError::Open {
                path: dir.display().to_string(),
                reason: match e {
                    // sled folds the lock's own error into its message: only a lock held
                    // elsewhere (EWOULDBLOCK) means another process.
                    sled::Error::Io(io)
                        if io.kind() == std::io::ErrorKind::WouldBlock
                            || (io.to_string().contains("could not acquire lock")
                                && io.to_string().contains("WouldBlock")) =>
                    {
                        "it is in use by another catchment process (a running node, or another \
                         command right now)"
                            .into()
                    }
                    sled::Error::Corruption { .. } => "the store is damaged".into(),
                    other => other.to_string(),
                },
            })?;
        Ok(SledBackend { db })
    }
}

impl Backend for SledBackend {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn scan_from(&self, prefix: &[u8], start: &[u8]) -> Entries<'_> {
        let prefix = prefix.to_vec();
        let start = if start < prefix.as_slice() {
            prefix.clone()
        } else {
            start.to_vec()
        };
        Box::new(
            self.db
                .range(start..)
                .take_while(move |item| match item {
                    Ok((k, _)) => k.starts_with(&prefix),
                    Err(_) => true,
                })
                .map(|item| {
                    item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                        .map_err(StoreError::from)
                }),
        )
    }

    fn write(&self, batch: Batch) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for (key, value) in batch.ops.into_iter() {
            match value {
                Some(v) => b.insert(key, v),
                None => b.remove(key),
            }
        }
        self.db.apply_batch(b)?;
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.db.size_on_disk()?)
    }
}

/// Where each record lives in the key space. Every key but the first starts with a tag byte
/// and the topic id, so that one topic's records sit together.
pub mod layout {
    use catchment_crdt::{DocId, MemberId, TopicId};

    /// `t` + topic: the topic's local record (name, when joined).
    pub const TOPIC: u8 = b't';
    /// `c` + topic + change hash: the signed change.
    pub const CHANGE: u8 = b'c';
    /// `l` + topic + doc + sequence: the hash of the doc's n-th stored change, in the order
    /// they were applied (so dependencies always come first).
    pub const LOG: u8 = b'l';
    /// `s` + topic + doc: a saved snapshot of the document and how much of its log it covers.
    pub const SNAPSHOT: u8 = b's';
    /// `d` + topic + doc: the document's log length.
    pub const DOC: u8 = b'd';
    /// `h` + topic: addresses to dial for the topic (an invite's).
    pub const HINT: u8 = b'h';
    /// `p` + topic + peer id: addresses of a peer that served the topic.
    pub const PEER: u8 = b'p';
    /// `i` + topic + invite key: an invite this node issued (never its secret). Local, not
    /// derived: a rebuild of the index keeps it.
    pub const INVITE: u8 = b'i';
    /// Index: `C` + topic + contribution id: the contribution as last read.
    pub const CONTRIBUTION: u8 = b'C';
    /// Index: `F` + topic + inverted creation time + id: the feed, newest first.
    pub const FEED: u8 = b'F';
    /// Index: `P` + topic + parent id + child id: replies.
    pub const CHILD: u8 = b'P';
    /// Index: `E` + topic + contribution id + endorser: the endorsement; for an imported
    /// vote, `E` + topic + contribution id + vote id.
    pub const ENDORSEMENT: u8 = b'E';
    /// Index: `W` + topic + vote id: an imported vote, so that a rewrite finds its old key.
    pub const VOTE: u8 = b'W';
    /// Index: `K` + topic + kudos id: the kudos.
    pub const KUDOS: u8 = b'K';
    /// Index: `A` + topic + member: the accepted admission.
    pub const ADMISSION: u8 = b'A';
    /// Index: `R` + topic + member: the member's profile.
    pub const PROFILE: u8 = b'R';
    /// Index: `V` + topic: the charter as last read.
    pub const CHARTER: u8 = b'V';

    /// The tags of the derived index, which a rebuild drops and writes anew.
    pub const INDEX_TAGS: [u8; 9] = [
        CONTRIBUTION,
        FEED,
        CHILD,
        ENDORSEMENT,
        VOTE,
        KUDOS,
        ADMISSION,
        PROFILE,
        CHARTER,
    ];

    /// `tag` + topic.
    pub fn prefix(tag: u8, topic: &TopicId) -> Vec<u8> {
        let mut key = Vec::with_capacity(80);
        key.push(tag);
        key.extend_from_slice(&topic.0);
        key
    }

    /// `tag` + topic + each part.
    pub fn key(tag: u8, topic: &TopicId, parts: &[&[u8]]) -> Vec<u8> {
        let mut key = prefix(tag, topic);
        for part in parts {
            key.extend_from_slice(part);
        }
        key
    }

    /// A document's part of a key.
    pub fn doc(doc: &DocId) -> Vec<u8> {
        doc.to_bytes()
    }

    /// A member's part of a key.
    pub fn member(member: &MemberId) -> &[u8] {
        &member.0
    }

    /// The feed key: newest first.
    pub fn feed(topic: &TopicId, created: i64, id: &str) -> Vec<u8> {
        let inverted = u64::MAX - (created.max(0) as u64);
        key(FEED, topic, &[&inverted.to_be_bytes(), id.as_bytes()])
    }
}

/// Encodes a record for the store.
pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("records always encode")
}

/// Decodes a stored record, naming the key if it does not decode.
pub fn decode<T: serde::de::DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        key: hex::encode(key),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_scans_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledBackend::open(dir.path()).unwrap();
            let mut batch = Batch::default();
            batch.put(b"a1".to_vec(), b"x".to_vec());
            batch.put(b"a2".to_vec(), b"y".to_vec());
            batch.put(b"b1".to_vec(), b"z".to_vec());
            store.write(batch).unwrap();
            store.flush().unwrap();
            let keys: Vec<_> = scan(&store, b"a").map(|r| r.unwrap().0).collect();
            assert_eq!(keys, vec![b"a1".to_vec(), b"a2".to_vec()]);
            let from: Vec<_> = store.scan_from(b"a", b"a2").map(|r| r.unwrap().0).collect();
            assert_eq!(from, vec![b"a2".to_vec()]);
        }
        let store = SledBackend::open(dir.path()).unwrap();
        assert_eq!(store.get(b"b1").unwrap(), Some(b"z".to_vec()));
    }

    #[test]
    fn a_second_open_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledBackend::open(dir.path()).unwrap();
        let err = SledBackend::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("cannot open the store"), "{err}");
    }
}
