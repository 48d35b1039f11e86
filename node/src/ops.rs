//! Every operation a person can ask of a node, as one serialisable [`Request`], and the one
//! function that carries it out.
//!
//! The command line builds a `Request` and either executes it on the store itself, when no
//! node runs, or sends it to the running node's local API, which executes it the same way.
//! Names, id prefixes and "me" are resolved here, so both paths accept the same input.

use std::collections::BTreeMap;

use catchment_crdt::charter::Decision;
use catchment_crdt::membership::Status;
use catchment_crdt::schema::{Ask, Draft, Edit, Kind, Profile, Role, Weights};
use catchment_crdt::TopicId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::home::Home;
use crate::query::{FeedFilter, Who};

/// An operation, with what a person typed for topics, ids and members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// This member's id and name.
    Whoami,
    /// Set the display name and about line.
    SetProfile {
        /// New name.
        name: Option<String>,
        /// New about line.
        about: Option<String>,
    },
    /// A member's profile.
    Profile {
        /// Topic.
        topic: Option<String>,
        /// Member ("me" when absent).
        member: Option<String>,
    },
    /// Create a topic.
    TopicCreate {
        /// Its name.
        name: String,
    },
    /// The topics.
    TopicList,
    /// A topic's charter and counts.
    TopicShow {
        /// Topic.
        topic: Option<String>,
    },
    /// Show or set the score weights.
    Weights {
        /// Topic.
        topic: Option<String>,
        /// Weights to set.
        set: Vec<(String, i64)>,
    },
    /// Post a contribution.
    Post {
        /// Topic.
        topic: Option<String>,
        /// Kind.
        kind: Kind,
        /// Title.
        title: String,
        /// Body.
        body: String,
        /// Tags.
        tags: Vec<String>,
        /// Parent id or prefix.
        parent: Option<String>,
        /// Ask id.
        ask: Option<String>,
    },
    /// Edit own contribution.
    Edit {
        /// Topic.
        topic: Option<String>,
        /// Id or prefix.
        id: String,
        /// New title.
        title: Option<String>,
        /// New body.
        body: Option<String>,
        /// New tags.
        tags: Option<Vec<String>>,
    },
    /// Retract own contribution.
    Retract {
        /// Topic.
        topic: Option<String>,
        /// Id or prefix.
        id: String,
    },
    /// Endorse (+1, -1, 0).
    Endorse {
        /// Topic.
        topic: Option<String>,
        /// Id or prefix.
        id: String,
        /// -1, 0 or +1.
        value: i8,
    },
    /// Give kudos.
    Kudos {
        /// Topic.
        topic: Option<String>,
        /// Member.
        member: String,
        /// Note.
        note: String,
        /// Contribution id or prefix.
        about: Option<String>,
    },
    /// Accept an answer.
    Accept {
        /// Topic.
        topic: Option<String>,
        /// Answer id or prefix.
        answer: String,
    },
    /// Open an ask.
    AskCreate {
        /// Topic.
        topic: Option<String>,
        /// Title.
        title: String,
        /// Body.
        body: String,
        /// Deadline (ms since the epoch).
        deadline: i64,
    },
    /// The asks.
    AskList {
        /// Topic.
        topic: Option<String>,
    },
    /// Hide (with a reason) or show again (without).
    Hide {
        /// Topic.
        topic: Option<String>,
        /// Id or prefix.
        id: String,
        /// Reason; `None` shows it again.
        reason: Option<String>,
    },
    /// The feed.
    Feed {
        /// Topic.
        topic: Option<String>,
        /// Only this kind.
        kind: Option<Kind>,
        /// Only this tag.
        tag: Option<String>,
        /// Only this ask.
        ask: Option<String>,
        /// Only this member.
        author: Option<String>,
        /// How many.
        limit: usize,
    },
    /// A thread.
    Show {
        /// Topic.
        topic: Option<String>,
        /// Id or prefix.
        id: String,
    },
    /// The leaderboard.
    Leaderboard {
        /// Topic.
        topic: Option<String>,
    },
    /// Members and their standing.
    MemberList {
        /// Topic.
        topic: Option<String>,
    },
    /// Change a member's role.
    MemberRole {
        /// Topic.
        topic: Option<String>,
        /// Member.
        member: String,
        /// New role.
        role: Role,
    },
    /// Remove a member (admins): what it wrote so far stays, anything later is refused.
    MemberRemove {
        /// Topic.
        topic: Option<String>,
        /// Member.
        member: String,
    },
    /// Admissions waiting for an admin's decision, with the reason.
    MemberPending {
        /// Topic.
        topic: Option<String>,
    },
    /// Admit a quarantined (or refused) admission (admins).
    MemberAdmit {
        /// Topic.
        topic: Option<String>,
        /// Member.
        member: String,
    },
    /// Refuse a quarantined admission (admins).
    MemberRefuse {
        /// Topic.
        topic: Option<String>,
        /// Member.
        member: String,
    },
    /// Issue an invite (admins); the response carries the invite string.
    InviteCreate {
        /// Topic.
        topic: Option<String>,
        /// The role it gives.
        role: Role,
        /// Expiry (ms since the epoch); `None` never expires.
        expires: Option<i64>,
        /// How many members it admits; `None` for no limit.
        uses: Option<u32>,
        /// Where this node can be reached (multiaddrs), carried in the invite.
        #[serde(default)]
        addresses: Vec<String>,
    },
    /// The invites issued here, with how many members used each.
    InviteList {
        /// Topic.
        topic: Option<String>,
    },
    /// Revoke an invite (admins).
    InviteRevoke {
        /// Topic.
        topic: Option<String>,
        /// Invite id or a unique prefix.
        invite: String,
    },
    /// Write imported records (admins): events from a dump reader or a replay.
    Import {
        /// Topic.
        topic: Option<String>,
        /// The events, written in order.
        events: Vec<crate::import::ImportEvent>,
    },
    /// Link an imported author's alias to a member (admins), or unlink it.
    AliasLink {
        /// Topic.
        topic: Option<String>,
        /// The alias (`user12`).
        alias: String,
        /// The member; `None` unlinks.
        member: Option<String>,
    },
    /// Imported authors' aliases, with their links and contributions.
    AliasList {
        /// Topic.
        topic: Option<String>,
    },
    /// Join a topic with an invite string.
    Join {
        /// The invite string (`catchment1...`).
        invite: String,
    },
}

impl Request {
    /// Whether the request changes anything (and so must be flushed before it is confirmed).
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Request::Whoami
                | Request::Profile { .. }
                | Request::TopicList
                | Request::TopicShow { .. }
                | Request::AskList { .. }
                | Request::Feed { .. }
                | Request::Show { .. }
                | Request::Leaderboard { .. }
                | Request::MemberList { .. }
                | Request::MemberPending { .. }
                | Request::InviteList { .. }
                | Request::AliasList { .. }
        ) && !matches!(self, Request::Weights { set, .. } if set.is_empty())
    }
}

/// A member with its standing, as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberView {
    /// Who.
    pub member: Who,
    /// Standing.
    pub status: Status,
}

/// A topic's charter, members and counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicView {
    /// Id (hex).
    pub id: String,
    /// Name.
    pub name: String,
    /// Claimed creation time.
    pub created: i64,
    /// Score weights.
    pub weights: Weights,
    /// Members.
    pub members: Vec<MemberView>,
    /// Asks.
    pub asks: Vec<Ask>,
    /// Counts of contributions, endorsements, kudos, members and changes.
    pub counts: BTreeMap<String, usize>,
    /// Hex SHA-256 over every document's id and sorted heads, as this node stores them: two
    /// nodes with the same digest hold the same changes of the topic.
    pub digest: String,
}

fn topic(engine: &mut Engine, typed: &Option<String>) -> Result<TopicId> {
    engine.resolve_topic(typed.as_deref())
}

/// [`TopicView::digest`]: every (document id, sorted heads) of the topic, in document order.
fn heads_digest(engine: &mut Engine, topic: &TopicId) -> Result<String> {
    let mut hasher = Sha256::new();
    for (doc, mut heads) in engine.heads(topic)? {
        heads.sort();
        let doc = doc.to_bytes();
        hasher.update((doc.len() as u32).to_be_bytes());
        hasher.update(&doc);
        hasher.update((heads.len() as u32).to_be_bytes());
        for head in heads {
            hasher.update(head.0);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

fn to_value<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("views always serialise")
}

/// Admits or refuses a member's admission; the response names the member and its standing.
fn decide(engine: &mut Engine, topic: &TopicId, typed: &str, decision: Decision) -> Result<Value> {
    let member = engine.resolve_member(topic, typed)?;
    let status = engine.decide(topic, &member, decision)?;
    Ok(json!({ "member": engine.who(topic, &member)?, "status": status.describe() }))
}

/// Carries out a request. Writes are not flushed here: the caller commits (once per request,
/// or once per group of requests) before it confirms anything.
pub fn execute(engine: &mut Engine, home: &Home, request: Request) -> Result<Value> {
    Ok(match request {
        Request::Whoami => {
            let me = engine.me();
            let config = home
                .config()
                .map_err(|e| EngineError::BadInput(e.to_string()))?;
            json!({ "member": me.to_hex(), "short": me.short(), "name": config.name, "about": config.about })
        }
        Request::SetProfile { name, about } => {
            if name.is_none() && about.is_none() {
                return Err(EngineError::BadInput(
                    "nothing to set: give --name or --about".into(),
                ));
            }
            let mut config = home
                .config()
                .map_err(|e| EngineError::BadInput(e.to_string()))?;
            if let Some(name) = name {
                config.name = name.trim().to_string();
            }
            if let Some(about) = about {
                config.about = about.trim().to_string();
            }
            let profile = Profile {
                name: config.name.clone(),
                about: config.about.clone(),
            };
            let topics = engine.set_profile(&profile)?;
            engine.commit()?;
            home.save_config(&config)
                .map_err(|e| EngineError::BadInput(e.to_string()))?;
            json!({ "name": config.name, "about": config.about, "topics": topics })
        }
        Request::Profile { topic: t, member } => {
            let topic = topic(engine, &t)?;
            let typed = member.as_deref().unwrap_or("me");
            match engine.resolve_member(&topic, typed) {
                Ok(member) => to_value(&engine.profile(&topic, &member)?),
                Err(e) => match engine.known_alias(&topic, typed)? {
                    Some(alias) => to_value(&engine.alias_profile(&topic, &alias)?),
                    None => return Err(e),
                },
            }
        }
        Request::TopicCreate { name } => {
            let config = home
                .config()
                .map_err(|e| EngineError::BadInput(e.to_string()))?;
            let profile = Profile {
                name: config.name,
                about: config.about,
            };
            let id = engine.create_topic(&name, &profile)?;
            json!({ "id": id.to_hex(), "name": name.trim() })
        }
        Request::TopicList => to_value(&engine.topics()?),
        Request::TopicShow { topic: t } => {
            let id = topic(engine, &t)?;
            let charter = engine.charter(&id)?;
            let members = engine
                .members(&id)?
                .into_iter()
                .map(|(member, status)| MemberView { member, status })
                .collect();
            let counts = engine
                .counts(&id)?
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            to_value(&TopicView {
                id: id.to_hex(),
                name: charter.name,
                created: charter.created,
                weights: charter.weights,
                members,
                asks: engine.asks(&id)?,
                counts,
                digest: heads_digest(engine, &id)?,
            })
        }
        Request::Weights { topic: t, set } => {
            let id = topic(engine, &t)?;
            if !set.is_empty() {
                let mut weights = engine.charter(&id)?.weights;
                for (name, value) in &set {
                    if !weights.set(name.trim(), *value) {
                        return Err(EngineError::BadInput(format!(
                            "no weight named {name:?}: expected one of {}",
                            Weights::NAMES.join(", ")
                        )));
                    }
                }
                engine.set_weights(&id, &weights)?;
            }
            to_value(&engine.charter(&id)?.weights)
        }
        Request::Post {
            topic: t,
            kind,
            title,
            body,
            tags,
            parent,
            ask,
        } => {
            let id = topic(engine, &t)?;
            let parent = parent.map(|p| engine.resolve_id(&id, &p)).transpose()?;
            let ask = ask.map(|a| engine.resolve_ask(&id, &a)).transpose()?;
            let draft = Draft {
                title: title.trim().to_string(),
                body,
                tags,
                parent,
                ask,
                alias: None,
            };
            let posted = engine.post(&id, kind, draft)?;
            json!({ "id": posted, "kind": kind })
        }
        Request::Edit {
            topic: t,
            id,
            title,
            body,
            tags,
        } => {
            let topic = topic(engine, &t)?;
            let id = engine.resolve_id(&topic, &id)?;
            engine.edit(&topic, &id, Edit { title, body, tags })?;
            json!({ "id": id })
        }
        Request::Retract { topic: t, id } => {
            let topic = topic(engine, &t)?;
            let id = engine.resolve_id(&topic, &id)?;
            engine.retract(&topic, &id)?;
            json!({ "id": id })
        }
        Request::Endorse {
            topic: t,
            id,
            value,
        } => {
            let topic = topic(engine, &t)?;
            let id = engine.resolve_id(&topic, &id)?;
            engine.endorse(&topic, &id, value)?;
            json!({ "id": id, "value": value })
        }
        Request::Kudos {
            topic: t,
            member,
            note,
            about,
        } => {
            let topic = topic(engine, &t)?;
            let to = engine.resolve_member(&topic, &member)?;
            let about = about.map(|a| engine.resolve_id(&topic, &a)).transpose()?;
            let id = engine.kudos(&topic, &to, note.trim(), about.as_deref())?;
            json!({ "id": id, "to": engine.who(&topic, &to)? })
        }
        Request::Accept { topic: t, answer } => {
            let topic = topic(engine, &t)?;
            let answer = engine.resolve_id(&topic, &answer)?;
            engine.accept(&topic, &answer)?;
            json!({ "id": answer })
        }
        Request::AskCreate {
            topic: t,
            title,
            body,
            deadline,
        } => {
            let topic = topic(engine, &t)?;
            let id = engine.create_ask(&topic, title.trim(), &body, deadline)?;
            json!({ "id": id, "deadline": deadline })
        }
        Request::AskList { topic: t } => {
            let topic = topic(engine, &t)?;
            to_value(&engine.asks(&topic)?)
        }
        Request::Hide {
            topic: t,
            id,
            reason,
        } => {
            let topic = topic(engine, &t)?;
            let id = engine.resolve_id(&topic, &id)?;
            let shown = reason.is_none();
            let id = engine.hide(&topic, &id, reason.as_deref())?;
            json!({ "id": id, "hidden": !shown })
        }
        Request::Feed {
            topic: t,
            kind,
            tag,
            ask,
            author,
            limit,
        } => {
            let topic = topic(engine, &t)?;
            let ask = ask.map(|a| engine.resolve_ask(&topic, &a)).transpose()?;
            // An author is a member, or else an imported author's alias.
            let (author, alias) = match author {
                None => (None, None),
                Some(typed) => match engine.resolve_member(&topic, &typed) {
                    Ok(member) => (Some(member), None),
                    Err(e) => match engine.known_alias(&topic, &typed)? {
                        Some(alias) => (None, Some(alias)),
                        None => return Err(e),
                    },
                },
            };
            let filter = FeedFilter {
                kind,
                tag,
                ask,
                author,
                alias,
                limit,
            };
            to_value(&engine.feed(&topic, &filter)?)
        }
        Request::Show { topic: t, id } => {
            let topic = topic(engine, &t)?;
            let id = engine.resolve_id(&topic, &id)?;
            to_value(&engine.thread(&topic, &id)?)
        }
        Request::Leaderboard { topic: t } => {
            let topic = topic(engine, &t)?;
            to_value(&engine.leaderboard(&topic)?)
        }
        Request::MemberList { topic: t } => {
            let topic = topic(engine, &t)?;
            let members: Vec<MemberView> = engine
                .members(&topic)?
                .into_iter()
                .map(|(member, status)| MemberView { member, status })
                .collect();
            to_value(&members)
        }
        Request::MemberRole {
            topic: t,
            member,
            role,
        } => {
            let topic = topic(engine, &t)?;
            let member = engine.resolve_member(&topic, &member)?;
            engine.set_role(&topic, &member, role)?;
            json!({ "member": engine.who(&topic, &member)?, "role": role })
        }
        Request::MemberRemove { topic: t, member } => {
            let topic = topic(engine, &t)?;
            let member = engine.resolve_member(&topic, &member)?;
            engine.remove_member(&topic, &member)?;
            json!({ "member": engine.who(&topic, &member)? })
        }
        Request::MemberPending { topic: t } => {
            let topic = topic(engine, &t)?;
            to_value(&engine.pending_admissions(&topic)?)
        }
        Request::MemberAdmit { topic: t, member } => {
            let topic = topic(engine, &t)?;
            decide(engine, &topic, &member, Decision::Admit)?
        }
        Request::MemberRefuse { topic: t, member } => {
            let topic = topic(engine, &t)?;
            decide(engine, &topic, &member, Decision::Refuse)?
        }
        Request::InviteCreate {
            topic: t,
            role,
            expires,
            uses,
            addresses,
        } => {
            let topic = topic(engine, &t)?;
            let new = engine.issue_invite(&topic, role, expires, uses, &addresses)?;
            json!({
                "invite": new.text,
                "id": new.issued.invite.to_hex(),
                "short": new.issued.invite.short(),
                "topic": topic.to_hex(),
                "name": engine.charter(&topic)?.name,
                "role": role,
                "expires": expires,
                "uses": uses,
                "carries_charter": new.carries_charter,
            })
        }
        Request::InviteList { topic: t } => {
            let topic = topic(engine, &t)?;
            to_value(&engine.invites(&topic)?)
        }
        Request::InviteRevoke { topic: t, invite } => {
            let topic = topic(engine, &t)?;
            let (invite, kept) = engine.revoke_invite(&topic, &invite)?;
            json!({ "id": invite.to_hex(), "short": invite.short(), "kept": kept.len() })
        }
        Request::Import { topic: t, events } => {
            let topic = topic(engine, &t)?;
            to_value(&engine.import(&topic, &events)?)
        }
        Request::AliasLink {
            topic: t,
            alias,
            member,
        } => {
            let topic = topic(engine, &t)?;
            let member = member
                .map(|m| engine.resolve_member(&topic, &m))
                .transpose()?;
            engine.link_alias(&topic, &alias, member.as_ref())?;
            json!({ "alias": alias.trim(), "member": member.map(|m| m.to_hex()) })
        }
        Request::AliasList { topic: t } => {
            let topic = topic(engine, &t)?;
            to_value(&engine.aliases(&topic)?)
        }
        Request::Join { invite } => {
            let config = home
                .config()
                .map_err(|e| EngineError::BadInput(e.to_string()))?;
            let profile = Profile {
                name: config.name,
                about: config.about,
            };
            let topic = engine.join_invite(&invite, &profile)?;
            // Where the inviter was: dialled now by a running node, and at the next start.
            let addresses = catchment_protocol::invite::Invite::decode(&invite)
                .map(|i| i.addresses)
                .unwrap_or_default();
            engine.add_dial_hints(&topic, &addresses)?;
            let me = engine.me();
            let status = engine.standing(&topic, &me)?;
            json!({
                "id": topic.to_hex(),
                "name": engine.charter(&topic)?.name,
                "status": status.map(|s| s.describe()),
                "addresses": addresses,
            })
        }
    })
}
