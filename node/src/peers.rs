//! Where to find a topic's peers before any has been met: the addresses an invite carried.

use catchment_crdt::TopicId;

use crate::engine::Engine;
use crate::error::Result;
use crate::store::{decode, encode, layout, Batch};

impl Engine {
    /// Remembers addresses (multiaddrs) to dial for a topic, e.g. the inviter's.
    pub fn add_dial_hints(&mut self, topic: &TopicId, addresses: &[String]) -> Result<()> {
        let mut hints = self.dial_hints(topic)?;
        for address in addresses {
            if !hints.contains(address) {
                hints.push(address.clone());
            }
        }
        let mut batch = Batch::default();
        batch.put(layout::prefix(layout::HINT, topic), encode(&hints));
        self.backend.write(batch)?;
        Ok(())
    }

    /// The addresses remembered for a topic.
    pub fn dial_hints(&self, topic: &TopicId) -> Result<Vec<String>> {
        let key = layout::prefix(layout::HINT, topic);
        match self.backend.get(&key)? {
            Some(bytes) => Ok(decode(&key, &bytes)?),
            None => Ok(Vec::new()),
        }
    }
}
