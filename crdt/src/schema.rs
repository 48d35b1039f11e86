//! The topic documents' schema: what the charter and the journals hold, and how to write and
//! read each record.
//!
//! Every field a single author edits is a scalar (last writer wins); no text or list objects,
//! which cost 5-10x more. A journal's root map holds:
//!
//! | key | value |
//! | --- | --- |
//! | `v`, `member`, `n` | schema version, owner (hex), journal number |
//! | `admission` | (journal 0 only) how the member was admitted: `grant` + `proof`, or `role` |
//! | `joined` | (journal 0 only) the time the member claims it joined |
//! | `profile` | `name`, `about` |
//! | `c` | contribution id -> map of `kind title body tags parent ask created edited retracted accepted alias` |
//! | `e` | contribution id -> endorsement value (-1, 0 or +1) |
//! | `ae` | (imports) entry id -> map of `contribution value alias admin_at`: an imported vote |
//!
//! An imported contribution also holds `admin_at`: the charter heads at which its writer was
//! an admin, which validation checks (only admins import).
//! | `k` | kudos id -> map of `to note contribution created` |
//!
//! The charter's root map holds `v`, `name`, `creator`, `created`, and the maps `roles`
//! (member -> `admin`/`member`), `weights`, `asks`, `hidden`, `revoked`, `removed` (with the
//! pinned heads of each journal), `decisions` (quarantined admissions) and `aliases`.

use std::fmt;
use std::str::FromStr;

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, ReadDoc, ROOT};
use serde::{Deserialize, Serialize};

use crate::keys::MemberId;

/// The version of the document schema this code writes.
pub const SCHEMA_VERSION: i64 = 1;
/// A journal rolls over to a new document once it holds this many entries.
pub const JOURNAL_ROLLOVER: usize = 256;
/// The longest title, in bytes.
pub const MAX_TITLE: usize = 300;
/// The longest body or note, in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// The most tags on one contribution.
pub const MAX_TAGS: usize = 10;
/// The longest tag, in bytes.
pub const MAX_TAG: usize = 40;
/// The longest display name, in bytes.
pub const MAX_NAME: usize = 80;

/// The kinds of contribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A proposal.
    Idea,
    /// A question that answers can solve.
    Question,
    /// An answer to a question.
    Answer,
    /// A review of another contribution or of outside work.
    Review,
    /// A comment on any contribution.
    Comment,
}

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 5] = [
        Kind::Idea,
        Kind::Question,
        Kind::Answer,
        Kind::Review,
        Kind::Comment,
    ];

    /// The lowercase name used everywhere.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Idea => "idea",
            Kind::Question => "question",
            Kind::Answer => "answer",
            Kind::Review => "review",
            Kind::Comment => "comment",
        }
    }
}

impl Kind {
    /// The name with its article: "an idea", "a question".
    pub fn with_article(&self) -> &'static str {
        match self {
            Kind::Idea => "an idea",
            Kind::Question => "a question",
            Kind::Answer => "an answer",
            Kind::Review => "a review",
            Kind::Comment => "a comment",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text names no kind of contribution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind {0:?}: expected idea, question, answer, review or comment")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// A member's role in a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Role {
    /// Contributes.
    Member = 1,
    /// Also writes the charter: roles, asks, moderation, weights, invites.
    Admin = 2,
}

impl Role {
    /// From its wire byte.
    pub fn from_u8(b: u8) -> Option<Role> {
        match b {
            1 => Some(Role::Member),
            2 => Some(Role::Admin),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text names no role.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected member or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            _ => Err(UnknownRole(s.to_string())),
        }
    }
}

/// A contribution as its journal holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// Unique id (16 hex digits).
    pub id: String,
    /// The member whose journal holds it.
    pub author: MemberId,
    /// The journal number it lives in.
    pub journal: u32,
    /// What kind of contribution.
    pub kind: Kind,
    /// Title (may be empty for answers and comments).
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Lowercase tags.
    pub tags: Vec<String>,
    /// The contribution this answers or comments on.
    pub parent: Option<String>,
    /// The ask it responds to.
    pub ask: Option<String>,
    /// Claimed creation time, milliseconds since the epoch.
    pub created: i64,
    /// Claimed time of the last edit.
    pub edited: Option<i64>,
    /// Retracted by its author: hidden, history kept.
    pub retracted: bool,
    /// For a question: the answer its author accepted.
    pub accepted: Option<String>,
    /// For imported records: the original author's alias.
    pub alias: Option<String>,
}

/// The fields of a new contribution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Tags (normalised on write).
    pub tags: Vec<String>,
    /// Parent contribution id.
    pub parent: Option<String>,
    /// Ask id.
    pub ask: Option<String>,
    /// Original author's alias, for imports.
    pub alias: Option<String>,
}

/// A change to an existing contribution; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
    /// New tags.
    pub tags: Option<Vec<String>>,
}

/// A member's +1 / -1 (or withdrawn 0) on a contribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endorsement {
    /// The contribution endorsed.
    pub contribution: String,
    /// Who endorsed.
    pub endorser: MemberId,
    /// -1, 0 or +1.
    pub value: i8,
    /// The endorser's journal that holds it.
    pub journal: u32,
    /// For an imported vote: the voter's alias (the endorser is then the importing admin).
    #[serde(default)]
    pub alias: Option<String>,
}

/// Thanks from one member to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kudos {
    /// Unique id.
    pub id: String,
    /// Who gives thanks.
    pub from: MemberId,
    /// Who is thanked.
    pub to: MemberId,
    /// The note.
    pub note: String,
    /// The contribution it is for, if any.
    pub contribution: Option<String>,
    /// Claimed time.
    pub created: i64,
}

/// A member's self-description.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Display name.
    pub name: String,
    /// A line about them.
    pub about: String,
}

/// How a member claims admission, as written first in its journal 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdmissionClaim {
    /// Holds a role in the charter at these heads (the creator, members added by an admin).
    Role {
        /// Charter heads at which the role is visible.
        charter_heads: Vec<automerge::ChangeHash>,
    },
    /// Proves possession of an invite's secret.
    Invite {
        /// The admin's grant, encoded.
        grant: Vec<u8>,
        /// The invite key's signature over the member id.
        proof: Vec<u8>,
    },
}

/// An admin's challenge or campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    /// Unique id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Deadline, milliseconds since the epoch.
    pub deadline: i64,
    /// Claimed creation time.
    pub created: i64,
    /// The admin who opened it.
    pub by: MemberId,
}

/// The weights of the recognition score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    /// Per idea.
    pub idea: i64,
    /// Per question.
    pub question: i64,
    /// Per answer.
    pub answer: i64,
    /// Per review.
    pub review: i64,
    /// Per comment.
    pub comment: i64,
    /// Per point of net endorsement received.
    pub endorsement: i64,
    /// Per kudos received.
    pub kudos: i64,
    /// Per accepted answer.
    pub accepted: i64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            idea: 3,
            question: 2,
            answer: 3,
            review: 3,
            comment: 1,
            endorsement: 2,
            kudos: 5,
            accepted: 10,
        }
    }
}

impl Weights {
    /// The names of the weights, as stored and as typed on the command line.
    pub const NAMES: [&'static str; 8] = [
        "idea",
        "question",
        "answer",
        "review",
        "comment",
        "endorsement",
        "kudos",
        "accepted",
    ];

    /// The weight of one contribution of `kind`.
    pub fn for_kind(&self, kind: Kind) -> i64 {
        match kind {
            Kind::Idea => self.idea,
            Kind::Question => self.question,
            Kind::Answer => self.answer,
            Kind::Review => self.review,
            Kind::Comment => self.comment,
        }
    }

    /// A weight by name.
    pub fn get(&self, name: &str) -> Option<i64> {
        Some(match name {
            "idea" => self.idea,
            "question" => self.question,
            "answer" => self.answer,
            "review" => self.review,
            "comment" => self.comment,
            "endorsement" => self.endorsement,
            "kudos" => self.kudos,
            "accepted" => self.accepted,
            _ => return None,
        })
    }

    /// Sets a weight by name; false if there is no such weight.
    pub fn set(&mut self, name: &str, value: i64) -> bool {
        let slot = match name {
            "idea" => &mut self.idea,
            "question" => &mut self.question,
            "answer" => &mut self.answer,
            "review" => &mut self.review,
            "comment" => &mut self.comment,
            "endorsement" => &mut self.endorsement,
            "kudos" => &mut self.kudos,
            "accepted" => &mut self.accepted,
            _ => return false,
        };
        *slot = value;
        true
    }
}

/// Normalises tags: trimmed, lowercase, no empty or repeated ones, sorted.
pub fn normalise_tags(tags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = tags
        .iter()
        .flat_map(|t| t.split([',', ' ']))
        .map(|t| t.trim().trim_start_matches('#').to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------------------------
// Small typed accessors over Automerge maps.

pub(crate) fn map_at(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key) {
        Ok(Some((automerge::Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

pub(crate) fn str_at(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key) {
        Ok(Some((value, _))) => value.as_str().map(str::to_string),
        _ => None,
    }
}

pub(crate) fn i64_at(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<i64> {
    match doc.get(obj, key) {
        Ok(Some((value, _))) => value.as_i64(),
        _ => None,
    }
}

pub(crate) fn bytes_at(doc: &impl ReadDoc, obj: &ObjId, key: &str) -> Option<Vec<u8>> {
    match doc.get(obj, key) {
        Ok(Some((value, _))) => value.as_bytes().map(<[u8]>::to_vec),
        _ => None,
    }
}

/// Finds or creates the map at `key` under `obj`.
pub(crate) fn ensure_map<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    key: &str,
) -> Result<ObjId, automerge::AutomergeError> {
    match tx.get(obj, key)? {
        Some((automerge::Value::Object(ObjType::Map), id)) => Ok(id),
        _ => tx.put_object(obj, key, ObjType::Map),
    }
}

pub(crate) fn root() -> ObjId {
    ROOT
}
