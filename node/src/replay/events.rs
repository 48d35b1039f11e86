//! What a replay sends, and what every node must show at the end.
//!
//! A replay event is one record of the source, keyed by the source's own id (a post's id, a
//! comment's id, a vote's id), written on behalf of its original author (an alias). The ground
//! truth is computed from the source alone, never from a node.

use std::collections::{BTreeMap, HashMap};

use catchment_crdt::schema::Kind;
use serde::{Deserialize, Serialize};

/// What an event writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// A contribution (question, idea, answer, comment); `parent` is a source key.
    Post {
        /// Its kind.
        kind: Kind,
        /// Title (empty for answers and comments).
        title: String,
        /// Markdown body.
        body: String,
        /// Tags.
        tags: Vec<String>,
        /// The source key of the post it answers or comments on.
        parent: Option<String>,
    },
    /// An up (+1) or down (-1) vote on the post with source key `target`.
    Vote {
        /// The post voted on.
        target: String,
        /// +1 or -1.
        value: i8,
    },
    /// The question's author accepts an answer.
    Accept {
        /// The question's source key.
        question: String,
        /// The answer's source key.
        answer: String,
    },
}

/// One record of the source, to be written on behalf of its original author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayEvent {
    /// When it happened in the source (ms since the epoch; votes are cut to the day).
    pub at: i64,
    /// The source's stable key for this record (unique among all records).
    pub key: String,
    /// The original author's alias (the question's author for an acceptance).
    pub author: String,
    /// What it writes.
    pub action: Action,
}

impl ReplayEvent {
    /// The source key of the post this event is about, if any.
    pub fn target(&self) -> Option<&str> {
        match &self.action {
            Action::Post { parent, .. } => parent.as_deref(),
            Action::Vote { target, .. } => Some(target),
            Action::Accept { question, .. } => Some(question),
        }
    }
}

/// Puts events in the order a replay sends them: by time, where an event about a post is
/// never before that post (dates cut to the day can put a vote before the post it is about),
/// and an acceptance never before its answer. Ties keep the source's order.
pub fn replay_order(mut events: Vec<ReplayEvent>) -> Vec<ReplayEvent> {
    events.sort_by_key(|e| e.at);
    // Posts come before what refers to them once clamped, so resolve targets in time order;
    // a target later in the list (dated after its reply) is clamped on a second pass.
    let mut at_of: HashMap<String, i64> = HashMap::new();
    for e in &events {
        if matches!(e.action, Action::Post { .. }) {
            at_of.insert(e.key.clone(), e.at);
        }
    }
    for _ in 0..3 {
        let mut changed = false;
        for e in &mut events {
            let mut need = e.target().and_then(|t| at_of.get(t)).copied();
            if let Action::Accept { answer, .. } = &e.action {
                need = need.max(at_of.get(answer).copied());
            }
            if let Some(need) = need.filter(|n| *n > e.at) {
                e.at = need;
                changed = true;
                if matches!(e.action, Action::Post { .. }) {
                    at_of.insert(e.key.clone(), need);
                }
            }
        }
        if !changed {
            break;
        }
    }
    // Equal times: posts before what refers to them, parents before children.
    let rank = |e: &ReplayEvent| match &e.action {
        Action::Post { parent: None, .. } => 0,
        Action::Post { .. } => 1,
        Action::Vote { .. } => 2,
        Action::Accept { .. } => 3,
    };
    events.sort_by_key(|e| (e.at, rank(e)));
    events
}

/// What the source says of one post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostTruth {
    /// Up votes minus down votes.
    pub score: i64,
    /// For a question, the source key of its accepted answer.
    pub accepted: Option<String>,
    /// Answers to it.
    pub answers: u64,
    /// Comments on it.
    pub comments: u64,
}

/// What the source says of one original author.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorTruth {
    /// Questions (or ideas) asked.
    pub questions: u64,
    /// Answers given.
    pub answers: u64,
    /// Comments written.
    pub comments: u64,
}

/// Totals over the whole source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Questions (and ideas).
    pub questions: u64,
    /// Answers.
    pub answers: u64,
    /// Comments.
    pub comments: u64,
    /// Sum of every post's score.
    pub score: i64,
    /// Questions with an accepted answer.
    pub accepted: u64,
}

/// Everything a node must show at the end, computed from the source alone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Per post source key (questions and answers).
    pub posts: BTreeMap<String, PostTruth>,
    /// Per original author's alias.
    pub authors: BTreeMap<String, AuthorTruth>,
    /// Totals.
    pub totals: Totals,
}
