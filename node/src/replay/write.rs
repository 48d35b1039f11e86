//! How replay events become requests to a node's API, and how contribution ids map back to
//! the dump's posts.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::import::{Action, ImportEvent};

/// The most events sent in one `import` call: a worker sends whatever has queued up for its
/// node, up to this many, so that a node that falls behind catches up in bigger batches.
pub const MAX_BATCH: usize = 64;

/// The API request that writes `events` on behalf of their original authors.
pub fn request(topic: &str, events: &[ImportEvent]) -> Value {
    json!({"op": "import", "topic": topic, "events": events})
}

/// Maps each contribution id the events create to the dump's post id (`post:123` -> 123), or
/// to `None` for a comment.
pub fn post_ids(events: &[ImportEvent]) -> HashMap<String, Option<u64>> {
    events
        .iter()
        .filter(|e| matches!(e.action, Action::Contribute { .. }))
        .map(|e| {
            let post = e.key.strip_prefix("post:").and_then(|n| n.parse().ok());
            (e.id.clone(), post)
        })
        .collect()
}
