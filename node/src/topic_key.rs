//! Topic keys: the 32 random bytes that only a topic's members hold.
//!
//! From the key come the topic's tag in sync requests, its gossipsub topic name and the key
//! that seals its gossip (see `catchment_protocol::sync`). The key is kept in the topic's local
//! record ([`TopicRecord::key`]):
//!
//! * [`Engine::create_topic`] makes a fresh key, before the genesis is stored;
//! * a joiner records the key its invite carries with [`Engine::add_topic_with_key`];
//! * a topic this node learned only from changes that arrived (or created before topics had
//!   keys) has no key, and none is invented for it: a key made up here would name a gossip
//!   topic and a tag no other member knows, and would silently cut this node off. Such a topic
//!   is served to nobody and gossips nowhere until an invite brings its key.
//!
//! A key once recorded is never replaced: an invite carrying another key for the same topic is
//! refused, since members with different keys could not find one another.

use catchment_crdt::TopicId;
use catchment_protocol::sync::TopicTag;
use rand::RngCore;

use crate::engine::{Engine, TopicRecord};
use crate::error::{EngineError, Result};
use crate::store::{encode, layout, scan, Batch};

/// A fresh topic key from the operating system's randomness.
pub fn generate() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

impl Engine {
    /// The topic's local record, if this node holds the topic.
    pub fn topic_record(&self, topic: &TopicId) -> Result<Option<TopicRecord>> {
        let key = layout::prefix(layout::TOPIC, topic);
        match self.backend.get(&key)? {
            Some(bytes) => Ok(Some(TopicRecord::decode(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The topic's key, if this node holds the topic and knows its key.
    pub fn topic_key(&self, topic: &TopicId) -> Result<Option<[u8; 32]>> {
        Ok(self.topic_record(topic)?.and_then(|record| record.key))
    }

    /// Records a topic together with its key (from an invite, or made by
    /// [`Engine::create_topic`]). Recording the same key again changes nothing; a topic already
    /// recorded without a key gets this one; a different key than the one recorded is refused.
    /// Call [`Engine::commit`] to make it durable.
    pub fn add_topic_with_key(&mut self, topic: &TopicId, key: [u8; 32]) -> Result<()> {
        let record = match self.topic_record(topic)? {
            Some(TopicRecord {
                key: Some(known), ..
            }) if known == key => return Ok(()),
            Some(TopicRecord { key: Some(_), .. }) => {
                return Err(EngineError::BadInput(format!(
                    "this node already holds topic {} with another topic key: the invite does not \
                     match the topic its members use",
                    topic.short()
                )))
            }
            Some(record) => TopicRecord {
                key: Some(key),
                ..record
            },
            None => TopicRecord {
                id: *topic,
                added: self.now(),
                key: Some(key),
            },
        };
        let mut batch = Batch::default();
        batch.put(layout::prefix(layout::TOPIC, topic), encode(&record));
        self.backend.write(batch)?;
        Ok(())
    }

    /// The topic held here whose tag is `tag`, if any: only topics with a known key have one.
    pub fn topic_by_tag(&self, tag: &TopicTag) -> Result<Option<TopicId>> {
        // TODO: this reads every topic record per request; keep a tag -> topic map in memory
        // once nodes hold more than a handful of topics.
        for item in scan(self.backend(), &[layout::TOPIC]) {
            let (k, v) = item?;
            let record = TopicRecord::decode(&k, &v)?;
            if record.key.is_some_and(|key| TopicTag::of(&key) == *tag) {
                return Ok(Some(record.id));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use catchment_crdt::schema::Profile;
    use catchment_crdt::Keypair;
    use serde::Serialize;

    use super::*;
    use crate::SledBackend;

    fn engine(dir: &tempfile::TempDir) -> Engine {
        let backend = SledBackend::open(dir.path()).unwrap();
        Engine::open(Box::new(backend), Keypair::generate())
    }

    #[test]
    fn a_created_topic_has_a_key_and_a_tag() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = engine(&dir);
        let topic = engine.create_topic("T", &Profile::default()).unwrap();
        let key = engine
            .topic_key(&topic)
            .unwrap()
            .expect("made with the topic");
        assert_eq!(
            engine.topic_by_tag(&TopicTag::of(&key)).unwrap(),
            Some(topic)
        );
        assert_eq!(engine.topic_by_tag(&TopicTag::of(&[0; 32])).unwrap(), None);
        // Another topic made here gets its own key.
        let other = engine.create_topic("U", &Profile::default()).unwrap();
        assert_ne!(engine.topic_key(&other).unwrap(), Some(key));
    }

    #[test]
    fn a_key_is_recorded_once_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = engine(&dir);
        let topic = TopicId([5; 32]);

        // Learned from changes only: no key is invented.
        engine.add_topic(&topic).unwrap();
        assert_eq!(engine.topic_key(&topic).unwrap(), None);
        let added = engine.topic_record(&topic).unwrap().unwrap().added;

        engine.add_topic_with_key(&topic, [1; 32]).unwrap();
        engine.add_topic_with_key(&topic, [1; 32]).unwrap();
        let record = engine.topic_record(&topic).unwrap().unwrap();
        assert_eq!((record.key, record.added), (Some([1; 32]), added));
        assert!(matches!(
            engine.add_topic_with_key(&topic, [2; 32]),
            Err(EngineError::BadInput(_))
        ));
        assert_eq!(engine.topic_key(&topic).unwrap(), Some([1; 32]));
        assert_eq!(engine.topic_ids().unwrap(), vec![topic]);
    }

    #[test]
    fn records_from_before_topic_keys_still_read() {
        #[derive(Serialize)]
        struct Old {
            id: TopicId,
            added: i64,
        }
        let dir = tempfile::tempdir().unwrap();
        let mut engine = engine(&dir);
        let topic = TopicId([6; 32]);
        let mut batch = Batch::default();
        batch.put(
            layout::prefix(layout::TOPIC, &topic),
            encode(&Old {
                id: topic,
                added: 42,
            }),
        );
        engine.backend().write(batch).unwrap();

        assert_eq!(engine.topic_ids().unwrap(), vec![topic]);
        assert_eq!(engine.topic_key(&topic).unwrap(), None);
        engine.add_topic_with_key(&topic, [3; 32]).unwrap();
        let record = engine.topic_record(&topic).unwrap().unwrap();
        assert_eq!((record.key, record.added), (Some([3; 32]), 42));
    }
}
