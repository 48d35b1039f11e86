//! How a replay event becomes a request to a node's API.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::events::{Action, ReplayEvent};

/// The contribution id a source key maps to: the same on every node, so that a record about a
/// post can be written before the post has arrived.
pub fn id_for(source: &str, key: &str) -> String {
    let digest = Sha256::new()
        .chain_update(source.as_bytes())
        .chain_update([0u8])
        .chain_update(key.as_bytes())
        .finalize();
    hex::encode(&digest[..8])
}

/// The contribution id an event creates, if it creates one.
pub fn contribution_id(source: &str, event: &ReplayEvent) -> Option<String> {
    matches!(event.action, Action::Post { .. }).then(|| id_for(source, &event.key))
}

/// The API request that writes `event` on behalf of its original author.
pub fn request(topic: &str, source: &str, event: &ReplayEvent) -> Value {
    json!({"op": "import_record", "topic": topic, "source": source, "record": event})
}
