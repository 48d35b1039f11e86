//! Importing an existing community: the Stack Exchange data dump, read as a stream of import
//! events, and the write path that turns events into signed records.
//!
//! The pieces, in the order they run:
//!
//! 1. [`stackexchange::read`] reads a dump folder (`Posts.xml`, `Comments.xml`, `Votes.xml`,
//!    `Users.xml`, ...; any may be missing) with a streaming XML reader ([`xml::Rows`]) and
//!    returns a [`Plan`]: the [`ImportEvent`]s in time order, and what was skipped and why.
//! 2. [`crate::Engine::import`] writes events through the engine's local write path: each
//!    batch is one signed change to the writer's journal, validated like any other change.
//!    Only an admin imports; every record carries its original author's alias.
//! 3. [`truth::ground_truth`] computes, straight from the dump files, what the views must show
//!    once everything is imported: per post its score, accepted answer, answers and comments;
//!    per original author their questions, answers and comments; the totals.
//!
//! Every event has a stable source key (`post:123`, `comment:45`, `vote:678`,
//! `accept:123`) and the id of the record it writes is derived from the source name and that
//! key ([`record_id`]). Importing the same source again, on this node or on another, writes the
//! same ids, so nothing is added twice; and an event can name a record that is not written yet
//! (a vote dated before its post) because the id is known in advance.
//!
//! Events are independent of the node that writes them: a replay can hand each event to the
//! node its author is assigned to, and that node writes it with [`crate::Engine::import`] (or
//! [`crate::ops::Request::Import`] through its local API), provided that node's member is an
//! admin of the topic.

use std::path::PathBuf;

use catchment_crdt::schema::Kind;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub mod alias;
pub mod stackexchange;
pub mod truth;
mod write;
pub mod xml;

pub use alias::AliasView;
pub use stackexchange::{read, Options, Plan};
pub use truth::{ground_truth, AuthorTruth, GroundTruth, PostTruth};
pub use write::ImportOutcome;

/// What went wrong reading a dump.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The folder does not exist or is not a folder.
    #[error("{0}: no such folder")]
    NoFolder(PathBuf),
    /// None of the dump's files is in the folder.
    #[error(
        "{0}: no Stack Exchange dump files here (expected Posts.xml, Comments.xml, Votes.xml ...)"
    )]
    Empty(PathBuf),
    /// A file could not be read.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// A file is not well-formed XML.
    #[error("{path}, line {line}: malformed XML: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line (1-based).
        line: u64,
        /// What the XML reader said.
        reason: String,
    },
    /// An option is not usable.
    #[error("{0}")]
    BadOption(String),
}

/// One thing to write: a contribution, a vote or an accept, with its original author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportEvent {
    /// The stable source key: `post:123`, `comment:45`, `vote:678` or `accept:123` (the
    /// question's post id).
    pub key: String,
    /// The id of the record it writes: the contribution, the vote, or for an accept the
    /// question. See [`record_id`].
    pub id: String,
    /// The original time, milliseconds since the epoch (UTC).
    pub at: i64,
    /// The original author's alias (`user12`); for a vote, the anonymous voter's own alias.
    pub alias: String,
    /// What to write.
    pub action: Action,
}

/// What an import event writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// A contribution (question, idea, answer or comment).
    Contribute {
        /// Its kind.
        kind: Kind,
        /// Title (questions and ideas).
        title: String,
        /// Markdown body.
        body: String,
        /// Tags.
        tags: Vec<String>,
        /// The id of the contribution it answers or comments on.
        parent: Option<String>,
    },
    /// A vote: +1 (up) or -1 (down) on a contribution.
    Endorse {
        /// The id of the contribution voted on.
        contribution: String,
        /// +1 or -1.
        value: i8,
    },
    /// The question's author accepted an answer.
    Accept {
        /// The question's id (the event's `id`).
        question: String,
        /// The accepted answer's id.
        answer: String,
    },
}

impl ImportEvent {
    /// The ids of the records this event refers to besides its own: a parent, the
    /// contribution voted on, or the question and answer of an accept.
    pub fn refers_to(&self) -> Vec<&str> {
        match &self.action {
            Action::Contribute { parent, .. } => parent.iter().map(String::as_str).collect(),
            Action::Endorse { contribution, .. } => vec![contribution.as_str()],
            Action::Accept { question, answer } => vec![question.as_str(), answer.as_str()],
        }
    }
}

/// The id of the record written for source key `key` of source `source`: 16 hex digits of
/// SHA-256 over both, so that every import of the same source writes the same ids.
pub fn record_id(source: &str, key: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"catchment/import/v1\0");
    hasher.update(source.as_bytes());
    hasher.update([0]);
    hasher.update(key.as_bytes());
    hex::encode(&hasher.finalize()[..8])
}

/// The alias shown for a dump's user id: `user12`.
pub fn user_alias(user_id: &str) -> String {
    format!("user{user_id}")
}

/// The alias of a row with no user id, from its display name (`anonymous` if it has none).
pub fn name_alias(display_name: Option<&str>) -> String {
    let name: String = display_name
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(60)
        .collect();
    if name.is_empty() {
        "anonymous".to_string()
    } else {
        name
    }
}

/// The alias of the anonymous voter who cast vote `vote_id`: every vote its own voter.
pub fn voter_alias(vote_id: &str) -> String {
    format!("voter{vote_id}")
}
