//! Checking one node's views against the ground truth.
//!
//! Reads the node's whole feed (every question, answer and comment, with its score, parent and
//! accepted answer) and its leaderboard (per alias, contributions by kind), both through its
//! local API, and lists every difference from the ground truth computed from the dump: per
//! post, per original author, and the totals.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::cluster::NodeProc;
use super::{ReplayError, Result};
use crate::import::{AuthorTruth, GroundTruth};

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

/// What a node shows of one post.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostSeen {
    /// Net endorsement.
    pub score: i64,
    /// The accepted answer's post id.
    pub accepted: Option<u64>,
    /// Answers shown under it.
    pub answers: u64,
    /// Comments shown under it.
    pub comments: u64,
}

/// The totals a node shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Questions and ideas.
    pub questions: u64,
    /// Answers.
    pub answers: u64,
    /// Comments.
    pub comments: u64,
    /// Questions with an accepted answer.
    pub accepted: u64,
    /// The sum of every post's score.
    pub score: i64,
}

/// What a node shows, reduced to what the ground truth says.
#[derive(Debug, Default)]
pub struct Observed {
    /// Per post id of the dump.
    pub posts: BTreeMap<u64, PostSeen>,
    /// Per alias.
    pub authors: BTreeMap<String, AuthorTruth>,
    /// Totals.
    pub totals: Totals,
    /// Contributions shown that no event of the dump wrote.
    pub unknown: Vec<String>,
    /// Records credited to a member rather than an alias.
    pub unaliased: usize,
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Reads a node's views; `posts` maps contribution ids to dump post ids (`None`: a comment).
pub fn observe(
    node: &NodeProc,
    topic: &str,
    posts: &HashMap<String, Option<u64>>,
) -> Result<Observed> {
    let feed = node.call(&json!({"op": "feed", "topic": topic, "limit": 1_000_000_000u64}))?;
    let items = feed
        .as_array()
        .ok_or_else(|| ReplayError::Input(format!("{}: the feed is not a list", node.name)))?;
    let mut seen = Observed::default();
    let post_of = |id: &Value| id.as_str().and_then(|id| posts.get(id)).copied().flatten();
    for item in items {
        let id = item["id"].as_str().unwrap_or("?");
        if !posts.contains_key(id) {
            seen.unknown.push(id.to_string());
            continue;
        }
        if item["author"]["alias"] != true {
            seen.unaliased += 1;
        }
        let kind = item["kind"].as_str().unwrap_or("");
        match kind {
            "question" | "idea" => seen.totals.questions += 1,
            "answer" => seen.totals.answers += 1,
            "comment" => seen.totals.comments += 1,
            _ => {}
        }
        if let Some(post) = post_of(&item["id"]) {
            let score = item["score"].as_i64().unwrap_or(0);
            seen.totals.score += score;
            let entry = seen.posts.entry(post).or_default();
            entry.score = score;
            if matches!(kind, "question" | "idea") {
                entry.accepted = post_of(&item["accepted"]);
                if entry.accepted.is_some() {
                    seen.totals.accepted += 1;
                }
            }
        }
        if let Some(parent) = post_of(&item["parent"]) {
            let entry = seen.posts.entry(parent).or_default();
            match kind {
                "answer" => entry.answers += 1,
                "comment" => entry.comments += 1,
                _ => {}
            }
        }
    }
    let board = node.call(&json!({"op": "leaderboard", "topic": topic}))?;
    for row in board["rows"].as_array().into_iter().flatten() {
        let counts = &row["recognition"]["counts"];
        let author = AuthorTruth {
            questions: count(&counts["question"]) + count(&counts["idea"]),
            answers: count(&counts["answer"]),
            comments: count(&counts["comment"]),
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

fn describe_post(p: &PostSeen) -> String {
    let accepted = p
        .accepted
        .map(|a| format!("answer {a}"))
        .unwrap_or_else(|| "none".into());
    format!(
        "score {}, accepted {accepted}, {} answers, {} comments",
        p.score, p.answers, p.comments
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
    posts: &HashMap<String, Option<u64>>,
    truth: &GroundTruth,
) -> Result<Vec<Difference>> {
    let seen = observe(node, topic, posts)?;
    let mut out = Vec::new();
    let mut differ = |what: String| {
        out.push(Difference {
            node: node.name.clone(),
            what,
        })
    };
    let mut expected_totals = Totals {
        questions: truth.questions,
        answers: truth.answers,
        comments: truth.comments,
        accepted: truth.accepted,
        score: 0,
    };
    for (id, t) in &truth.posts {
        expected_totals.score += t.score;
        let expected = PostSeen {
            score: t.score,
            accepted: t.accepted,
            answers: t.answers,
            comments: t.comments,
        };
        match seen.posts.get(id) {
            Some(got) if *got == expected => {}
            Some(got) => differ(format!(
                "post {id}: shows {}; the dump says {}",
                describe_post(got),
                describe_post(&expected)
            )),
            None => differ(format!(
                "post {id}: missing; the dump says {}",
                describe_post(&expected)
            )),
        }
    }
    for id in seen.posts.keys().filter(|k| !truth.posts.contains_key(*k)) {
        differ(format!(
            "post {id}: shown, but not an imported post of the dump"
        ));
    }
    for (alias, expected) in &truth.authors {
        let got = seen.authors.get(alias).cloned().unwrap_or_default();
        if &got != expected {
            differ(format!(
                "author {alias}: shows {}; the dump says {}",
                describe_author(&got),
                describe_author(expected)
            ));
        }
    }
    for (alias, got) in &seen.authors {
        if !truth.authors.contains_key(alias) && *got != AuthorTruth::default() {
            differ(format!(
                "author {alias}: shows {}, but wrote nothing in the dump",
                describe_author(got)
            ));
        }
    }
    if seen.totals != expected_totals {
        differ(format!(
            "totals: shows {:?}; the dump says {:?}",
            seen.totals, expected_totals
        ));
    }
    if !seen.unknown.is_empty() {
        differ(format!(
            "{} contributions no event of the dump wrote, e.g. {}",
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
