//! The ground truth of a dump, computed straight from its files with no import in between:
//! what every node's views must show once the whole dump is imported or replayed.
//!
//! It reads the files again and counts on its own (sharing only the parsing of a row's
//! fields with the importer, so that a malformed row is left out of both):
//!
//! * per imported post (questions and answers whose question is in the dump): its score (up
//!   votes minus down votes), its accepted answer, its number of answers and of comments;
//! * per original author (alias): questions (ideas included), answers, comments;
//! * the totals.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::stackexchange::{check_dir, comment_row, post_row, vote_row};
use super::xml::Rows;
use super::ImportError;

/// What the views must show for one post.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostTruth {
    /// The post's id in the dump.
    pub post: u64,
    /// 1 question, 2 answer.
    pub post_type: u8,
    /// Up votes minus down votes.
    pub score: i64,
    /// The accepted answer's post id (questions), if that answer is in the dump.
    pub accepted: Option<u64>,
    /// Answers in the dump (questions).
    pub answers: u64,
    /// Comments in the dump.
    pub comments: u64,
}

/// What the views must show for one original author.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorTruth {
    /// Questions (or ideas) asked.
    pub questions: u64,
    /// Answers given.
    pub answers: u64,
    /// Comments written.
    pub comments: u64,
}

/// The ground truth of a dump.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Per imported post, by its dump id.
    pub posts: BTreeMap<u64, PostTruth>,
    /// Per original author's alias.
    pub authors: BTreeMap<String, AuthorTruth>,
    /// Questions (ideas included).
    pub questions: u64,
    /// Answers.
    pub answers: u64,
    /// Comments.
    pub comments: u64,
    /// Up and down votes on imported posts.
    pub votes: u64,
    /// Questions with an accepted answer.
    pub accepted: u64,
}

/// Computes the ground truth of the dump in `dir`.
pub fn ground_truth(dir: &Path) -> Result<GroundTruth, ImportError> {
    check_dir(dir)?;
    let mut truth = GroundTruth::default();

    // Posts: every question, then the answers whose question is here.
    let mut questions = HashSet::new();
    let mut answers = Vec::new();
    let mut accepted_of = Vec::new();
    if let Some(rows) = Rows::open(&dir.join("Posts.xml"))? {
        for row in rows {
            let Ok(post) = post_row(&row?) else { continue };
            match post.kind {
                1 => {
                    questions.insert(post.id);
                    if let Some(a) = post.accepted {
                        accepted_of.push((post.id, a));
                    }
                    truth
                        .authors
                        .entry(post.alias.clone())
                        .or_default()
                        .questions += 1;
                    truth.questions += 1;
                    truth.posts.insert(
                        post.id,
                        PostTruth {
                            post: post.id,
                            post_type: 1,
                            ..PostTruth::default()
                        },
                    );
                }
                2 => answers.push(post),
                _ => {}
            }
        }
    }
    let mut parent_of = HashMap::new();
    for post in answers {
        let Some(parent) = post.parent.filter(|p| questions.contains(p)) else {
            continue;
        };
        parent_of.insert(post.id, parent);
        truth.authors.entry(post.alias.clone()).or_default().answers += 1;
        truth.answers += 1;
        if let Some(q) = truth.posts.get_mut(&parent) {
            q.answers += 1;
        }
        truth.posts.insert(
            post.id,
            PostTruth {
                post: post.id,
                post_type: 2,
                ..PostTruth::default()
            },
        );
    }
    for (question, answer) in accepted_of {
        if parent_of.get(&answer) == Some(&question) {
            if let Some(q) = truth.posts.get_mut(&question) {
                q.accepted = Some(answer);
                truth.accepted += 1;
            }
        }
    }

    if let Some(rows) = Rows::open(&dir.join("Comments.xml"))? {
        for row in rows {
            let Ok((_, post, _, alias)) = comment_row(&row?) else {
                continue;
            };
            if let Some(p) = truth.posts.get_mut(&post) {
                p.comments += 1;
                truth.authors.entry(alias).or_default().comments += 1;
                truth.comments += 1;
            }
        }
    }

    if let Some(rows) = Rows::open(&dir.join("Votes.xml"))? {
        for row in rows {
            let Ok((_, post, vote_type, _)) = vote_row(&row?) else {
                continue;
            };
            let value = match vote_type {
                2 => 1,
                3 => -1,
                _ => continue,
            };
            if let Some(p) = truth.posts.get_mut(&post) {
                p.score += value;
                truth.votes += 1;
            }
        }
    }
    Ok(truth)
}
