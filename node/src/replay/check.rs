//! Checking one node's views against the ground truth.
//!
//! Reads the node's whole feed (every post and comment, with its score, parent and accepted
//! answer) and its leaderboard (per alias, contributions by kind), both through its local API,
//! and lists every difference from the ground truth: per post, per original author, totals.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::cluster::NodeProc;
use super::events::{AuthorTruth, GroundTruth, PostTruth, Totals};
use super::{ReplayError, Result};

/// One way a node differs from the ground truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The node.
    pub node: String,
    /// What differs, and how.
    pub what: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.node, self.what)
    }
}

/// What a node shows, reduced to what the ground truth says.
#[derive(Debug, Default)]
pub struct Observed {
    /// Per post source key.
    pub posts: BTreeMap<String, PostTruth>,
    /// Per alias.
    pub authors: BTreeMap<String, AuthorTruth>,
    /// Totals.
    pub totals: Totals,
    /// Contributions shown whose id no source key maps to.
    pub unknown: Vec<String>,
    /// Contributions credited to a member rather than an alias.
    pub unaliased: usize,
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Reads a node's views. `keys` maps contribution ids to source keys.
pub fn observe(node: &NodeProc, topic: &str, keys: &HashMap<String, String>) -> Result<Observed> {
    let feed = node.call(&json!({"op": "feed", "topic": topic, "limit": usize::MAX / 2}))?;
    let items = feed
        .as_array()
        .ok_or_else(|| ReplayError::Input(format!("{}: the feed is not a list", node.name)))?;
    let mut seen = Observed::default();
    let key_of = |id: &Value| id.as_str().and_then(|id| keys.get(id)).cloned();
    for item in items {
        let Some(key) = key_of(&item["id"]) else {
            seen.unknown.push(item["id"].as_str().unwrap_or("?").to_string());
            continue;
        };
        if item["author"]["alias"] != true {
            seen.unaliased += 1;
        }
        match item["kind"].as_str() {
            Some("question") | Some("idea") => {
                seen.totals.questions += 1;
                let accepted = item["accepted"].as_str().and_then(|a| keys.get(a)).cloned();
                if accepted.is_some() {
                    seen.totals.accepted += 1;
                }
                let post = seen.posts.entry(key).or_default();
                post.score = item["score"].as_i64().unwrap_or(0);
                post.accepted = accepted;
            }
            Some("answer") => {
                seen.totals.answers += 1;
                seen.posts.entry(key).or_default().score = item["score"].as_i64().unwrap_or(0);
            }
            Some("comment") => seen.totals.comments += 1,
            _ => {}
        }
        if let Some(parent) = key_of(&item["parent"]) {
            let post = seen.posts.entry(parent).or_default();
            match item["kind"].as_str() {
                Some("answer") => post.answers += 1,
                Some("comment") => post.comments += 1,
                _ => {}
            }
        }
    }
    seen.totals.score = seen.posts.values().map(|p| p.score).sum();
    let board = node.call(&json!({"op": "leaderboard", "topic": topic}))?;
    for row in board["rows"].as_array().into_iter().flatten() {
        let counts = &row["recognition"]["counts"];
        let author = AuthorTruth {
            questions: u(&counts["question"]) + u(&counts["idea"]),
            answers: u(&counts["answer"]),
            comments: u(&counts["comment"]),
        };
        if row["who"]["alias"] == true {
            let alias = row["who"]["name"].as_str().unwrap_or("?").to_string();
            seen.authors.insert(alias, author);
        } else if author != AuthorTruth::default() {
            seen.unaliased += 1;
        }
    }
    Ok(seen)
}

fn describe_post(p: &PostTruth) -> String {
    format!(
        "score {}, accepted {}, {} answers, {} comments",
        p.score,
        p.accepted.as_deref().unwrap_or("none"),
        p.answers,
        p.comments
    )
}

fn describe_author(a: &AuthorTruth) -> String {
    format!(
        "{} questions, {} answers, {} comments",
        a.questions, a.answers, a.comments
    )
}

/// Every difference between what `node` shows and the ground truth.
pub fn check_node(
    node: &NodeProc,
    topic: &str,
    keys: &HashMap<String, String>,
    truth: &GroundTruth,
) -> Result<Vec<Difference>> {
    let seen = observe(node, topic, keys)?;
    let mut out = Vec::new();
    let mut differ = |what: String| {
        out.push(Difference {
            node: node.name.clone(),
            what,
        })
    };
    for (key, expected) in &truth.posts {
        match seen.posts.get(key) {
            Some(got) if got == expected => {}
            Some(got) => differ(format!(
                "post {key}: shows {}; the source says {}",
                describe_post(got),
                describe_post(expected)
            )),
            None => differ(format!(
                "post {key}: missing; the source says {}",
                describe_post(expected)
            )),
        }
    }
    for key in seen.posts.keys().filter(|k| !truth.posts.contains_key(*k)) {
        differ(format!("post {key}: shown, but not a post of the source"));
    }
    for (alias, expected) in &truth.authors {
        let got = seen.authors.get(alias).cloned().unwrap_or_default();
        if &got != expected {
            differ(format!(
                "author {alias}: shows {}; the source says {}",
                describe_author(&got),
                describe_author(expected)
            ));
        }
    }
    for (alias, got) in &seen.authors {
        if !truth.authors.contains_key(alias) && *got != AuthorTruth::default() {
            differ(format!(
                "author {alias}: shows {}, but wrote nothing in the source",
                describe_author(got)
            ));
        }
    }
    if seen.totals != truth.totals {
        differ(format!(
            "totals: shows {:?}; the source says {:?}",
            seen.totals, truth.totals
        ));
    }
    if !seen.unknown.is_empty() {
        differ(format!(
            "{} contributions not from the source, e.g. {}",
            seen.unknown.len(),
            seen.unknown[0]
        ));
    }
    if seen.unaliased > 0 {
        differ(format!(
            "{} records credited to a member instead of their original author",
            seen.unaliased
        ));
    }
    Ok(out)
}
