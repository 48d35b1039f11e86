//! Reading the views from the index: topics, feed, threads, profiles and the leaderboard.
//!
//! What is shown: contributions that are neither retracted nor hidden, by members whose
//! status is visible (admitted, or removed with their journals pinned). Names come from each
//! member's profile, with the short form of the key beside them; imported records show their
//! original author's alias.

use std::collections::BTreeMap;

use catchment_crdt::membership::Status;
use catchment_crdt::schema::{Contribution, Endorsement, Kind, Kudos, Profile, Weights};
use catchment_crdt::views::{
    credited_to, endorsed_by, rank_answers, Recipient, Recognition, Tally,
};
use catchment_crdt::{MemberId, TopicId};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::store::{decode, layout, scan};

/// Who wrote or receives something, as shown to people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    /// Member id (hex), or for an unclaimed alias, the alias.
    pub id: String,
    /// The short form of the key (empty for an alias).
    pub short: String,
    /// Display name (or the alias).
    pub name: String,
    /// Whether this is an imported author's alias no member has claimed.
    pub alias: bool,
}

impl std::fmt::Display for Who {
    /// The name as a member chose it, with control characters (terminal escapes, newlines)
    /// shown as spaces: a name must not rewrite the screen it is shown on.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name: String = self
            .name
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let this = Who {
            name,
            ..self.clone()
        };
        this.fmt_clean(f)
    }
}

impl Who {
    fn fmt_clean(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.alias, self.name.is_empty()) {
            (true, _) => write!(f, "{}, imported", self.name),
            (false, true) => write!(f, "({})", self.short),
            (false, false) => write!(f, "{} ({})", self.name, self.short),
        }
    }
}

/// A topic as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicSummary {
    /// Id (hex).
    pub id: String,
    /// Name.
    pub name: String,
    /// This member's standing.
    pub status: String,
    /// Whether the charter, as this node holds it, names this member an admin: what admin
    /// actions (invites, roles, imports) need. A member that joined with an admin invite is
    /// shown as an admin at once, but acts as one only once an admin's node has written the
    /// role into the charter and it has arrived here.
    #[serde(default)]
    pub admin: bool,
    /// Visible members.
    pub members: usize,
    /// Claimed creation time.
    pub created: i64,
}

/// A contribution as shown in a feed or a thread.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: Kind,
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Author.
    pub author: Who,
    /// Claimed creation time (ms).
    pub created: i64,
    /// Claimed last edit (ms).
    pub edited: Option<i64>,
    /// Parent id.
    pub parent: Option<String>,
    /// Ask id.
    pub ask: Option<String>,
    /// Net endorsement from others.
    pub score: i64,
    /// Visible replies.
    pub replies: usize,
    /// For a question, its accepted answer; for an answer, whether it is accepted.
    pub accepted: Option<String>,
    /// Shown to admins only: why an admin hid it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<String>,
    /// Retracted by its author (shown only by `show`).
    pub retracted: bool,
}

/// Filters for the feed.
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only with this tag.
    pub tag: Option<String>,
    /// Only for this ask.
    pub ask: Option<String>,
    /// Only by this member (its own records and those of the aliases linked to it).
    pub author: Option<MemberId>,
    /// Only by this imported author's alias.
    pub alias: Option<String>,
    /// At most this many (default 20).
    pub limit: usize,
}

/// A contribution with its replies: answers ranked (accepted first, then by score), then
/// comments oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Thread {
    /// The contribution.
    pub item: Item,
    /// Its replies.
    pub replies: Vec<Thread>,
}

/// One row of the leaderboard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Standing {
    /// 1-based rank.
    pub rank: usize,
    /// Who.
    pub who: Who,
    /// What they received.
    pub recognition: Recognition,
}

/// The leaderboard with the weights that made it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Leaderboard {
    /// The score's weights.
    pub weights: Weights,
    /// Ranked rows.
    pub rows: Vec<Standing>,
}

/// A member's profile in a topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProfileView {
    /// Who.
    pub who: Who,
    /// About line.
    pub about: String,
    /// Standing in the topic.
    pub status: String,
    /// Recognition received (rank 0 if none).
    pub rank: usize,
    /// What they received.
    pub recognition: Recognition,
    /// Kudos received, newest first.
    pub kudos: Vec<KudosView>,
    /// Recent contributions, newest first.
    pub recent: Vec<Item>,
}

/// Kudos as shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KudosView {
    /// From whom.
    pub from: Who,
    /// The note.
    pub note: String,
    /// About which contribution.
    pub contribution: Option<String>,
    /// Claimed time.
    pub created: i64,
}

impl Engine {
    /// Resolves what a person typed for a topic: a unique id prefix or an exact name. With
    /// nothing typed, the only topic.
    pub fn resolve_topic(&mut self, typed: Option<&str>) -> Result<TopicId> {
        let ids = self.topic_ids()?;
        let Some(typed) = typed.map(str::trim) else {
            return match ids.as_slice() {
                [] => Err(EngineError::NoTopic),
                [only] => Ok(*only),
                _ => Err(EngineError::ChooseTopic),
            };
        };
        let lower = typed.to_lowercase();
        let by_id: Vec<TopicId> = ids
            .iter()
            .filter(|t| !lower.is_empty() && t.to_hex().starts_with(&lower))
            .copied()
            .collect();
        if let [only] = by_id.as_slice() {
            return Ok(*only);
        }
        if by_id.len() > 1 {
            return Err(EngineError::AmbiguousTopic(typed.to_string()));
        }
        let mut by_name = Vec::new();
        for id in ids {
            if self.state(&id)?.charter_view.name.to_lowercase() == lower {
                by_name.push(id);
            }
        }
        match by_name.as_slice() {
            [only] => Ok(*only),
            [] => Err(EngineError::UnknownTopic(typed.to_string())),
            _ => Err(EngineError::AmbiguousTopic(typed.to_string())),
        }
    }

    /// Resolves a contribution id or a unique prefix of one.
    pub fn resolve_id(&mut self, topic: &TopicId, typed: &str) -> Result<String> {
        let typed = typed.trim().to_lowercase();
        if typed.is_empty() || !typed.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(EngineError::UnknownContribution(typed));
        }
        let prefix = layout::key(layout::CONTRIBUTION, topic, &[typed.as_bytes()]);
        let base = layout::prefix(layout::CONTRIBUTION, topic).len();
        let mut found = Vec::new();
        for item in scan(self.backend(), &prefix).take(2) {
            let (k, _) = item?;
            found.push(String::from_utf8_lossy(&k[base..]).into_owned());
        }
        match found.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(EngineError::UnknownContribution(typed)),
            _ => Err(EngineError::AmbiguousContribution(typed)),
        }
    }

    /// Resolves an ask id or a unique prefix of one.
    pub fn resolve_ask(&mut self, topic: &TopicId, typed: &str) -> Result<String> {
        let typed = typed.trim().to_lowercase();
        let asks = &self.state(topic)?.charter_view.asks;
        let found: Vec<&String> = asks
            .keys()
            .filter(|id| !typed.is_empty() && id.starts_with(&typed))
            .collect();
        match found.as_slice() {
            [only] => Ok((*only).clone()),
            [] => Err(EngineError::BadInput(format!(
                "no ask {typed:?} in this topic (see `catchment ask list`)"
            ))),
            _ => Err(EngineError::BadInput(format!(
                "{typed:?} matches several asks: give more of its id"
            ))),
        }
    }

    /// Resolves a member: "me", a unique key prefix, or an exact display name.
    pub fn resolve_member(&mut self, topic: &TopicId, typed: &str) -> Result<MemberId> {
        let typed = typed.trim();
        if typed == "me" {
            return Ok(self.me);
        }
        let lower = typed.to_lowercase();
        let members: Vec<MemberId> = self.state(topic)?.admissions.keys().copied().collect();
        let by_key: Vec<MemberId> = members
            .iter()
            .filter(|m| !lower.is_empty() && m.to_hex().starts_with(&lower))
            .copied()
            .collect();
        if let [only] = by_key.as_slice() {
            return Ok(*only);
        }
        if by_key.len() > 1 {
            return Err(EngineError::AmbiguousMember(typed.to_string()));
        }
        let mut by_name = Vec::new();
        for m in members {
            if self.profile_of(topic, &m)?.name.to_lowercase() == lower {
                by_name.push(m);
            }
        }
        match by_name.as_slice() {
            [only] => Ok(*only),
            [] => Err(EngineError::UnknownMember(typed.to_string())),
            _ => Err(EngineError::AmbiguousMember(typed.to_string())),
        }
    }

    /// The indexed record of a contribution, shown or not.
    pub(crate) fn record(&self, topic: &TopicId, id: &str) -> Result<Option<Contribution>> {
        let key = layout::key(layout::CONTRIBUTION, topic, &[id.as_bytes()]);
        match self.backend.get(&key)? {
            Some(bytes) => Ok(Some(decode(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn endorsement(
        &self,
        topic: &TopicId,
        id: &str,
        endorser: &MemberId,
    ) -> Result<Option<Endorsement>> {
        let key = layout::key(layout::ENDORSEMENT, topic, &[id.as_bytes(), &endorser.0]);
        match self.backend.get(&key)? {
            Some(bytes) => Ok(Some(decode(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// Whether a contribution is shown: not retracted, not hidden, by a visible author.
    pub(crate) fn is_shown(&mut self, topic: &TopicId, c: &Contribution) -> Result<bool> {
        let state = self.state(topic)?;
        Ok(!c.retracted
            && !state.charter_view.hidden.contains_key(&c.id)
            && state.is_visible(&c.author))
    }

    fn profile_of(&self, topic: &TopicId, member: &MemberId) -> Result<Profile> {
        let key = layout::key(layout::PROFILE, topic, &[&member.0]);
        match self.backend.get(&key)? {
            Some(bytes) => Ok(decode(&key, &bytes)?),
            None => Ok(Profile::default()),
        }
    }

    /// How a member is shown.
    pub fn who(&self, topic: &TopicId, member: &MemberId) -> Result<Who> {
        Ok(Who {
            id: member.to_hex(),
            short: member.short(),
            name: self.profile_of(topic, member)?.name,
            alias: false,
        })
    }

    fn who_recipient(&self, topic: &TopicId, recipient: &Recipient) -> Result<Who> {
        match recipient {
            Recipient::Member(m) => self.who(topic, m),
            Recipient::Alias(alias) => Ok(Who {
                id: alias.clone(),
                short: String::new(),
                name: alias.clone(),
                alias: true,
            }),
        }
    }

    /// The topics this node holds.
    pub fn topics(&mut self) -> Result<Vec<TopicSummary>> {
        let me = self.me;
        let mut out = Vec::new();
        for id in self.topic_ids()? {
            let state = self.state(&id)?;
            out.push(TopicSummary {
                id: id.to_hex(),
                name: state.charter_view.name.clone(),
                status: state
                    .status(&me)
                    .map(|s| s.describe())
                    .unwrap_or_else(|| "not admitted".into()),
                admin: state.charter_view.is_admin(&me),
                members: state.statuses.values().filter(|s| s.is_visible()).count(),
                created: state.charter_view.created,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The charter as last read.
    pub fn charter(&mut self, topic: &TopicId) -> Result<catchment_crdt::CharterView> {
        Ok(self.state(topic)?.charter_view.clone())
    }

    /// Every member with an accepted admission, and their standing.
    pub fn members(&mut self, topic: &TopicId) -> Result<Vec<(Who, Status)>> {
        let statuses = self.state(topic)?.statuses.clone();
        statuses
            .iter()
            .map(|(m, s)| Ok((self.who(topic, m)?, *s)))
            .collect()
    }

    fn score(&mut self, topic: &TopicId, c: &Contribution) -> Result<i64> {
        let prefix = layout::key(layout::ENDORSEMENT, topic, &[c.id.as_bytes()]);
        let state = self.state(topic)?;
        let recipient = credited_to(&state.charter_view, c);
        let mut score = 0;
        for item in scan(self.backend(), &prefix) {
            let (k, v) = item?;
            let e: Endorsement = decode(&k, &v)?;
            let charter = &self.topics[topic].charter_view;
            if e.contribution != c.id || endorsed_by(charter, &e) == recipient {
                continue;
            }
            if self.topics[topic].is_visible(&e.endorser) {
                score += e.value as i64;
            }
        }
        Ok(score)
    }

    fn children(&mut self, topic: &TopicId, id: &str) -> Result<Vec<Contribution>> {
        let prefix = layout::key(layout::CHILD, topic, &[id.as_bytes()]);
        let mut out = Vec::new();
        let keys: Vec<Vec<u8>> = scan(self.backend(), &prefix)
            .map(|r| r.map(|(k, _)| k))
            .collect::<Result<_, _>>()?;
        for k in keys {
            let child = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if let Some(c) = self.record(topic, &child)? {
                if c.parent.as_deref() == Some(id) && self.is_shown(topic, &c)? {
                    out.push(c);
                }
            }
        }
        Ok(out)
    }

    fn item(&mut self, topic: &TopicId, c: Contribution) -> Result<Item> {
        let score = self.score(topic, &c)?;
        let replies = self.children(topic, &c.id)?.len();
        let state = self.state(topic)?;
        let author = match credited_to(&state.charter_view, &c) {
            Recipient::Alias(alias) => Who {
                id: alias.clone(),
                short: String::new(),
                name: alias,
                alias: true,
            },
            Recipient::Member(m) => self.who(topic, &m)?,
        };
        let me = self.me;
        let state = self.state(topic)?;
        let hidden = if state.charter_view.is_admin(&me) {
            state
                .charter_view
                .hidden
                .get(&c.id)
                .map(|h| h.reason.clone())
        } else {
            None
        };
        let accepted = match c.kind {
            Kind::Question => c.accepted.clone(),
            Kind::Answer => {
                let parent = match &c.parent {
                    Some(p) => self.record(topic, p)?,
                    None => None,
                };
                parent.and_then(|q| q.accepted).filter(|a| *a == c.id)
            }
            _ => None,
        };
        Ok(Item {
            id: c.id,
            kind: c.kind,
            title: c.title,
            body: c.body,
            tags: c.tags,
            author,
            created: c.created,
            edited: c.edited,
            parent: c.parent,
            ask: c.ask,
            score,
            replies,
            accepted,
            hidden,
            retracted: c.retracted,
        })
    }

    /// The feed, newest first.
    pub fn feed(&mut self, topic: &TopicId, filter: &FeedFilter) -> Result<Vec<Item>> {
        let limit = if filter.limit == 0 { 20 } else { filter.limit };
        let prefix = layout::prefix(layout::FEED, topic);
        let tag = filter
            .tag
            .as_ref()
            .map(|t| t.trim_start_matches('#').to_lowercase());
        self.state(topic)?;
        let mut out = Vec::new();
        let mut start = prefix.clone();
        loop {
            // Read keys in small batches so that no store iterator is held across lookups.
            let batch: Vec<Vec<u8>> = self
                .backend
                .scan_from(&prefix, &start)
                .take(64)
                .map(|r| r.map(|(k, _)| k))
                .collect::<Result<_, _>>()?;
            let Some(last) = batch.last() else { break };
            start = last.clone();
            start.push(0);
            for k in &batch {
                let id = String::from_utf8_lossy(&k[prefix.len() + 8..]).into_owned();
                let Some(c) = self.record(topic, &id)? else {
                    continue;
                };
                let credited = credited_to(&self.topics[topic].charter_view, &c);
                if filter.kind.is_some_and(|k| k != c.kind)
                    || filter
                        .author
                        .is_some_and(|a| credited != Recipient::Member(a))
                    || filter
                        .alias
                        .as_ref()
                        .is_some_and(|a| c.alias.as_ref() != Some(a))
                    || filter
                        .ask
                        .as_ref()
                        .is_some_and(|a| c.ask.as_ref() != Some(a))
                    || tag.as_ref().is_some_and(|t| !c.tags.contains(t))
                    || !self.is_shown(topic, &c)?
                {
                    continue;
                }
                out.push(self.item(topic, c)?);
                if out.len() >= limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// A contribution with its replies. Retracted ones are shown as such; hidden ones only to
    /// admins.
    pub fn thread(&mut self, topic: &TopicId, id: &str) -> Result<Thread> {
        let me = self.me;
        let record = self
            .record(topic, id)?
            .ok_or_else(|| EngineError::UnknownContribution(id.to_string()))?;
        let state = self.state(topic)?;
        let hidden = state.charter_view.hidden.contains_key(&record.id);
        if !state.is_visible(&record.author) || (hidden && !state.charter_view.is_admin(&me)) {
            return Err(EngineError::UnknownContribution(id.to_string()));
        }
        self.thread_of(topic, record, 0)
    }

    fn thread_of(&mut self, topic: &TopicId, record: Contribution, depth: usize) -> Result<Thread> {
        let mut children = if depth < 8 {
            self.children(topic, &record.id)?
        } else {
            Vec::new()
        };
        let accepted = if record.kind == Kind::Question {
            record.accepted.clone()
        } else {
            None
        };
        let mut answers = Vec::new();
        let mut others = Vec::new();
        for c in children.drain(..) {
            let score = self.score(topic, &c)?;
            if c.kind == Kind::Answer && record.kind == Kind::Question {
                answers.push((c, score));
            } else {
                others.push(c);
            }
        }
        rank_answers(&mut answers, accepted.as_deref(), |(c, s)| {
            (c.id.as_str(), *s, c.created)
        });
        others.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        let mut replies = Vec::new();
        for c in answers.into_iter().map(|(c, _)| c).chain(others) {
            replies.push(self.thread_of(topic, c, depth + 1)?);
        }
        Ok(Thread {
            item: self.item(topic, record)?,
            replies,
        })
    }

    /// Recognition of everyone in the topic, ranked.
    pub fn leaderboard(&mut self, topic: &TopicId) -> Result<Leaderboard> {
        let ranked = self.recognition(topic)?;
        let weights = self.state(topic)?.charter_view.weights;
        let mut rows = Vec::with_capacity(ranked.len());
        for (i, (recipient, recognition)) in ranked.into_iter().enumerate() {
            rows.push(Standing {
                rank: i + 1,
                who: self.who_recipient(topic, &recipient)?,
                recognition,
            });
        }
        Ok(Leaderboard { weights, rows })
    }

    /// The recognition fold over the whole index.
    pub fn recognition(&mut self, topic: &TopicId) -> Result<Vec<(Recipient, Recognition)>> {
        self.state(topic)?;
        let state = &self.topics[topic];
        let backend = self.backend.as_ref();
        let charter = &state.charter_view;
        let mut tally = Tally::default();
        let mut accepted = Vec::new();
        for item in scan(backend, &layout::prefix(layout::CONTRIBUTION, topic)) {
            let (k, v) = item?;
            let c: Contribution = decode(&k, &v)?;
            if c.retracted || charter.hidden.contains_key(&c.id) || !state.is_visible(&c.author) {
                continue;
            }
            if let (Kind::Question, Some(answer)) = (c.kind, &c.accepted) {
                accepted.push((c.id.clone(), answer.clone()));
            }
            tally.contribution(charter, &c);
        }
        for item in scan(backend, &layout::prefix(layout::ENDORSEMENT, topic)) {
            let (k, v) = item?;
            let e: Endorsement = decode(&k, &v)?;
            if state.is_visible(&e.endorser) {
                tally.endorsement(charter, &e);
            }
        }
        for item in scan(backend, &layout::prefix(layout::KUDOS, topic)) {
            let (k, v) = item?;
            let kudos: Kudos = decode(&k, &v)?;
            if state.is_visible(&kudos.from) && state.is_visible(&kudos.to) {
                tally.kudos(&kudos);
            }
        }
        for (question, answer) in accepted {
            tally.accepted(&question, &answer);
        }
        Ok(tally.finish(&charter.weights))
    }

    /// A member's profile in a topic.
    pub fn profile(&mut self, topic: &TopicId, member: &MemberId) -> Result<ProfileView> {
        let status = self
            .state(topic)?
            .status(member)
            .ok_or_else(|| EngineError::UnknownMember(member.short()))?;
        let ranked = self.recognition(topic)?;
        let (rank, recognition) = ranked
            .into_iter()
            .enumerate()
            .find(|(_, (r, _))| *r == Recipient::Member(*member))
            .map(|(i, (_, rec))| (i + 1, rec))
            .unwrap_or_default();
        let mut kudos = Vec::new();
        let all: Vec<Kudos> = scan(self.backend(), &layout::prefix(layout::KUDOS, topic))
            .map(|r| r.and_then(|(k, v)| decode::<Kudos>(&k, &v)))
            .collect::<Result<_, _>>()?;
        for k in all
            .into_iter()
            .filter(|k| k.to == *member && k.from != *member)
        {
            if self.state(topic)?.is_visible(&k.from) {
                kudos.push(KudosView {
                    from: self.who(topic, &k.from)?,
                    note: k.note,
                    contribution: k.contribution,
                    created: k.created,
                });
            }
        }
        kudos.sort_by_key(|k| std::cmp::Reverse(k.created));
        let recent = self.feed(
            topic,
            &FeedFilter {
                author: Some(*member),
                limit: 10,
                ..FeedFilter::default()
            },
        )?;
        Ok(ProfileView {
            who: self.who(topic, member)?,
            about: self.profile_of(topic, member)?.about,
            status: status.describe(),
            rank,
            recognition,
            kudos,
            recent,
        })
    }

    /// Asks of the topic, soonest deadline first.
    pub fn asks(&mut self, topic: &TopicId) -> Result<Vec<catchment_crdt::schema::Ask>> {
        let mut asks: Vec<_> = self
            .state(topic)?
            .charter_view
            .asks
            .values()
            .cloned()
            .collect();
        asks.sort_by(|a, b| a.deadline.cmp(&b.deadline).then(a.id.cmp(&b.id)));
        Ok(asks)
    }

    /// Counts of what the index holds, for status and benchmarks.
    pub fn counts(&self, topic: &TopicId) -> Result<BTreeMap<&'static str, usize>> {
        let mut out = BTreeMap::new();
        for (name, tag) in [
            ("contributions", layout::CONTRIBUTION),
            ("endorsements", layout::ENDORSEMENT),
            ("kudos", layout::KUDOS),
            ("members", layout::ADMISSION),
            ("changes", layout::CHANGE),
        ] {
            out.insert(
                name,
                scan(self.backend(), &layout::prefix(tag, topic)).count(),
            );
        }
        Ok(out)
    }
}
