//! Local writes: each makes one change on the cached document, signs it with the member key,
//! and passes it through [`Engine::ingest`], the same path as a change from a peer.
//!
//! The checks here only give clear errors early (an unknown parent, a non-admin hiding
//! something); validation stays the authority. None of these flush: call [`Engine::commit`]
//! before confirming a write to anyone.

use std::collections::BTreeMap;

use automerge::transaction::Transaction;
use automerge::{AutomergeError, ChangeHash};
use catchment_crdt::membership::Status;
use catchment_crdt::schema::{
    normalise_tags, AdmissionClaim, Ask, Contribution, Draft, Edit, Kind, Profile, Role, Weights,
    MAX_BODY, MAX_NAME, MAX_TAG, MAX_TAGS, MAX_TITLE,
};
use catchment_crdt::{
    charter, genesis, ids, journal, DocId, MemberId, SignedChange, TopicId, JOURNAL_ROLLOVER,
};

use crate::engine::{Engine, Outcome};
use crate::error::{EngineError, Result};

/// How far ahead a deadline or an expiry may lie: 100 years.
pub const MAX_HORIZON: i64 = 100 * 366 * 24 * 3600 * 1000;
/// The largest score weight an admin may set.
pub const MAX_WEIGHT: i64 = 1_000;

fn bad(message: impl Into<String>) -> EngineError {
    EngineError::BadInput(message.into())
}

/// Checks the fields of a draft or an edit.
pub(crate) fn check_text(
    title: Option<&str>,
    body: Option<&str>,
    tags: Option<&[String]>,
) -> Result<()> {
    if let Some(title) = title {
        if title.len() > MAX_TITLE {
            return Err(bad(format!(
                "title is {} bytes; the limit is {MAX_TITLE}",
                title.len()
            )));
        }
        if title.contains('\n') {
            return Err(bad("title must be one line"));
        }
    }
    if let Some(body) = body {
        if body.len() > MAX_BODY {
            return Err(bad(format!(
                "body is {} bytes; the limit is {MAX_BODY}",
                body.len()
            )));
        }
    }
    if let Some(tags) = tags {
        let tags = normalise_tags(tags);
        if tags.len() > MAX_TAGS {
            return Err(bad(format!("{} tags; the limit is {MAX_TAGS}", tags.len())));
        }
        for tag in &tags {
            let ok = tag.len() <= MAX_TAG
                && tag
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_.+#".contains(c));
            if !ok {
                return Err(bad(format!(
                    "tag {tag:?} is not allowed: up to {MAX_TAG} letters, digits and - _ . + #"
                )));
            }
        }
    }
    Ok(())
}

impl Engine {
    /// Makes one change to `doc` and ingests it. Returns the change's hash, or `None` when
    /// the write changed nothing (the value was already so).
    pub(crate) fn write<F>(
        &mut self,
        topic: &TopicId,
        doc: DocId,
        f: F,
    ) -> Result<Option<ChangeHash>>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
    {
        let now = self.now();
        let made = self.with_doc(topic, &doc, |d| genesis::try_transact_logged(d, now, f))??;
        let Some((change, patches)) = made else {
            return Ok(None);
        };
        let signed = SignedChange::sign(&self.key, topic, doc, &change);
        self.ingest_prepared(topic, signed, Some(patches)).map(Some)
    }

    fn ingest_local(&mut self, topic: &TopicId, signed: SignedChange) -> Result<ChangeHash> {
        self.ingest_prepared(topic, signed, None)
    }

    /// Ingests a change made here through the same validation as any other; `patches` say
    /// what it touched when it is already in the cached document.
    fn ingest_prepared(
        &mut self,
        topic: &TopicId,
        signed: SignedChange,
        patches: Option<Vec<automerge::Patch>>,
    ) -> Result<ChangeHash> {
        self.add_topic(topic)?;
        let doc = signed.doc;
        match self.ingest_one(topic, &signed, patches)? {
            Outcome::Accepted(hash) => {
                if self.pending_count(topic)? > 0 {
                    // Something waiting may have needed this.
                    self.retry_pending(topic, &mut crate::engine::Ingested::default())?;
                }
                Ok(hash)
            }
            Outcome::Duplicate => Err(EngineError::BadInput(
                "this change is already stored".into(),
            )),
            Outcome::Rejected(rejection) => Err(rejection.into()),
            Outcome::Pending(_) => {
                self.forget_doc(topic, &doc)?;
                Err(EngineError::NotMember(
                    "this change waits for the topic's charter from a peer".into(),
                ))
            }
        }
    }

    /// Creates a topic with this member as its admin, and starts this member's journal.
    pub fn create_topic(&mut self, name: &str, profile: &Profile) -> Result<TopicId> {
        let name = name.trim();
        if name.is_empty() {
            return Err(bad("a topic needs a name"));
        }
        if name.len() > MAX_TITLE {
            return Err(bad(format!(
                "topic name is {} bytes; the limit is {MAX_TITLE}",
                name.len()
            )));
        }
        let now = self.now();
        let (topic, _, genesis_change) = genesis::create_topic(&self.key, name, now)?;
        // The topic key is recorded before the genesis, so a stored topic made here has one.
        self.add_topic_with_key(&topic, crate::topic_key::generate())?;
        self.ingest_local(&topic, genesis_change)?;
        let claim = AdmissionClaim::Role {
            charter_heads: vec![topic.genesis_hash()],
        };
        self.start_journal(&topic, 0, Some(&claim))?;
        if !profile.name.is_empty() || !profile.about.is_empty() {
            self.write(&topic, self.journal0(), |tx| {
                journal::set_profile(tx, profile)
            })?;
        }
        Ok(topic)
    }

    pub(crate) fn start_journal(
        &mut self,
        topic: &TopicId,
        n: u32,
        claim: Option<&AdmissionClaim>,
    ) -> Result<()> {
        let now = self.now();
        let (_, signed) = genesis::start_journal(&self.key, topic, n, claim, now)?;
        self.ingest_local(topic, signed)?;
        Ok(())
    }

    pub(crate) fn journal0(&self) -> DocId {
        DocId::Journal {
            member: self.me,
            n: 0,
        }
    }

    /// Fails unless this node's member is an admitted member of `topic`.
    pub(crate) fn require_member(&mut self, topic: &TopicId) -> Result<Option<Role>> {
        let me = self.me;
        let state = self.state(topic)?;
        match state.status(&me) {
            Some(Status::Admitted(role)) => Ok(Some(role)),
            Some(status) => Err(EngineError::NotMember(status.describe())),
            // A role without an admission yet: the first write opens the journal.
            None => match state.charter_view.roles.get(&me) {
                Some(role) if !state.charter_view.removed.contains_key(&me) => Ok(Some(*role)),
                _ => Err(EngineError::NotMember("no admission here".into())),
            },
        }
    }

    pub(crate) fn require_admin(&mut self, topic: &TopicId, action: &'static str) -> Result<()> {
        let me = self.me;
        self.require_member(topic)?;
        if !self.state(topic)?.charter_view.is_admin(&me) {
            return Err(EngineError::NotAdmin(action));
        }
        Ok(())
    }

    /// The journal new entries go to, starting the next one when the current one is full.
    pub(crate) fn current_journal(&mut self, topic: &TopicId) -> Result<DocId> {
        let me = self.me;
        let n = match self.state(topic)?.my_journal {
            Some(n) => Some(n),
            None => self
                .doc_ids(topic)?
                .into_iter()
                .filter_map(|d| match d {
                    DocId::Journal { member, n } if member == me => Some(n),
                    _ => None,
                })
                .max(),
        };
        let Some(n) = n else {
            // A role in the charter but no journal yet (topic creation was interrupted, or an
            // admin gave this member a role): open journal 0 with a role claim.
            let state = self.state(topic)?;
            if !state.charter_view.roles.contains_key(&me) {
                return Err(EngineError::NotMember("no journal here".into()));
            }
            let claim = AdmissionClaim::Role {
                charter_heads: state.charter.get_heads(),
            };
            self.start_journal(topic, 0, Some(&claim))?;
            return Ok(DocId::Journal { member: me, n: 0 });
        };
        let doc = DocId::Journal { member: me, n };
        self.state(topic)?.my_journal = Some(n);
        if self.with_doc(topic, &doc, |d| journal::entry_count(d))? < JOURNAL_ROLLOVER {
            return Ok(doc);
        }
        self.start_journal(topic, n + 1, None)?;
        self.state(topic)?.my_journal = Some(n + 1);
        Ok(DocId::Journal {
            member: me,
            n: n + 1,
        })
    }

    /// Posts a contribution; returns its id.
    pub fn post(&mut self, topic: &TopicId, kind: Kind, draft: Draft) -> Result<String> {
        self.require_member(topic)?;
        check_text(Some(&draft.title), Some(&draft.body), Some(&draft.tags))?;
        match kind {
            Kind::Idea | Kind::Question | Kind::Review if draft.title.trim().is_empty() => {
                return Err(bad(format!("{} needs a title", kind.with_article())));
            }
            Kind::Answer | Kind::Comment if draft.body.trim().is_empty() => {
                return Err(bad(format!("{} needs a body", kind.with_article())));
            }
            _ => {}
        }
        match (&kind, &draft.parent) {
            (Kind::Answer | Kind::Comment, None) => {
                return Err(bad(format!(
                    "{} needs --parent: the contribution it replies to",
                    kind.with_article()
                )));
            }
            (_, Some(parent)) => {
                let parent = self.contribution(topic, parent)?;
                if kind == Kind::Answer && parent.kind != Kind::Question {
                    return Err(bad(format!(
                        "{} is {}, not a question: answers go to questions",
                        parent.id,
                        parent.kind.with_article()
                    )));
                }
            }
            _ => {}
        }
        if let Some(ask) = &draft.ask {
            let now = self.now();
            let state = self.state(topic)?;
            let Some(open) = state.charter_view.asks.get(ask) else {
                return Err(bad(format!(
                    "no ask {ask:?} in this topic (see `catchment ask list`)"
                )));
            };
            if open.deadline < now {
                return Err(bad(format!(
                    "the ask {:?} closed at its deadline",
                    open.title
                )));
            }
        }
        let id = ids::new_entry_id();
        let created = self.now();
        let doc = self.current_journal(topic)?;
        self.write(topic, doc, |tx| {
            journal::put_contribution(tx, &id, kind, &draft, created)
        })?;
        Ok(id)
    }

    /// The visible contribution with exactly this id.
    pub(crate) fn contribution(&mut self, topic: &TopicId, id: &str) -> Result<Contribution> {
        let record = self
            .record(topic, id)?
            .ok_or_else(|| EngineError::UnknownContribution(id.to_string()))?;
        if !self.is_shown(topic, &record)? {
            return Err(EngineError::UnknownContribution(id.to_string()));
        }
        Ok(record)
    }

    fn own_contribution(
        &mut self,
        topic: &TopicId,
        id: &str,
        action: &'static str,
    ) -> Result<Contribution> {
        let record = self.contribution(topic, id)?;
        if record.author != self.me {
            return Err(EngineError::NotAuthor(record.id, action));
        }
        Ok(record)
    }

    /// Edits one of this member's contributions.
    pub fn edit(&mut self, topic: &TopicId, id: &str, edit: Edit) -> Result<()> {
        self.require_member(topic)?;
        check_text(
            edit.title.as_deref(),
            edit.body.as_deref(),
            edit.tags.as_deref(),
        )?;
        if edit.title.is_none() && edit.body.is_none() && edit.tags.is_none() {
            return Err(bad("nothing to edit: give --title, --body or --tags"));
        }
        let record = self.own_contribution(topic, id, "edit it")?;
        let needs_title = matches!(record.kind, Kind::Idea | Kind::Question | Kind::Review);
        if needs_title && edit.title.as_ref().is_some_and(|t| t.trim().is_empty()) {
            return Err(bad(format!("{} needs a title", record.kind.with_article())));
        }
        let needs_body = matches!(record.kind, Kind::Answer | Kind::Comment);
        if needs_body && edit.body.as_ref().is_some_and(|b| b.trim().is_empty()) {
            return Err(bad(format!("{} needs a body", record.kind.with_article())));
        }
        let at = self.now();
        let doc = DocId::Journal {
            member: self.me,
            n: record.journal,
        };
        self.write(topic, doc, |tx| {
            journal::edit_contribution(tx, &record.id, &edit, at)
        })?;
        Ok(())
    }

    /// Retracts one of this member's contributions: hidden everywhere, history kept.
    pub fn retract(&mut self, topic: &TopicId, id: &str) -> Result<()> {
        self.require_member(topic)?;
        let record = self.own_contribution(topic, id, "retract it")?;
        let at = self.now();
        let doc = DocId::Journal {
            member: self.me,
            n: record.journal,
        };
        self.write(topic, doc, |tx| journal::retract(tx, &record.id, at))?;
        Ok(())
    }

    /// Endorses a contribution: +1, -1, or 0 to withdraw.
    pub fn endorse(&mut self, topic: &TopicId, id: &str, value: i8) -> Result<()> {
        self.require_member(topic)?;
        if !(-1..=1).contains(&value) {
            return Err(bad("an endorsement is +1, -1 or 0"));
        }
        let record = self.contribution(topic, id)?;
        if record.author == self.me && record.alias.is_none() {
            return Err(bad("you cannot endorse your own contribution"));
        }
        // One endorsement per contribution: change it where it already is.
        let existing = self.endorsement(topic, &record.id, &self.me.clone())?;
        let doc = match existing {
            Some(e) => DocId::Journal {
                member: self.me,
                n: e.journal,
            },
            None => self.current_journal(topic)?,
        };
        self.write(topic, doc, |tx| journal::endorse(tx, &record.id, value))?;
        Ok(())
    }

    /// Thanks a member; returns the kudos id.
    pub fn kudos(
        &mut self,
        topic: &TopicId,
        to: &MemberId,
        note: &str,
        about: Option<&str>,
    ) -> Result<String> {
        self.require_member(topic)?;
        if *to == self.me {
            return Err(bad("you cannot give kudos to yourself"));
        }
        if !self.state(topic)?.is_visible(to) {
            return Err(EngineError::UnknownMember(to.short()));
        }
        if note.trim().is_empty() {
            return Err(bad("kudos need a note: say what the thanks are for"));
        }
        check_text(None, Some(note), None)?;
        let about = match about {
            Some(id) => Some(self.contribution(topic, id)?.id),
            None => None,
        };
        let id = ids::new_entry_id();
        let created = self.now();
        let doc = self.current_journal(topic)?;
        self.write(topic, doc, |tx| {
            journal::put_kudos(tx, &id, to, note, about.as_deref(), created)
        })?;
        Ok(id)
    }

    /// Accepts an answer to one of this member's questions.
    pub fn accept(&mut self, topic: &TopicId, answer: &str) -> Result<()> {
        self.require_member(topic)?;
        let answer = self.contribution(topic, answer)?;
        let Some(parent) = answer
            .parent
            .clone()
            .filter(|_| answer.kind == Kind::Answer)
        else {
            return Err(bad(format!(
                "{} is {}, not an answer",
                answer.id,
                answer.kind.with_article()
            )));
        };
        let question = self.own_contribution(topic, &parent, "accept an answer to it")?;
        let doc = DocId::Journal {
            member: self.me,
            n: question.journal,
        };
        self.write(topic, doc, |tx| {
            journal::accept(tx, &question.id, &answer.id)
        })?;
        Ok(())
    }

    /// Sets this member's profile in the config's topics: every topic it is a member of.
    pub fn set_profile(&mut self, profile: &Profile) -> Result<usize> {
        if profile.name.len() > MAX_NAME {
            return Err(bad(format!(
                "name is {} bytes; the limit is {MAX_NAME}",
                profile.name.len()
            )));
        }
        check_text(None, Some(&profile.about), None)?;
        let mut written = 0;
        for topic in self.topic_ids()? {
            if self.require_member(&topic).is_ok() {
                self.write(&topic, self.journal0(), |tx| {
                    journal::set_profile(tx, profile)
                })?;
                written += 1;
            }
        }
        Ok(written)
    }

    /// Opens an ask (admins); returns its id.
    pub fn create_ask(
        &mut self,
        topic: &TopicId,
        title: &str,
        body: &str,
        deadline: i64,
    ) -> Result<String> {
        self.require_admin(topic, "open an ask")?;
        check_text(Some(title), Some(body), None)?;
        if title.trim().is_empty() {
            return Err(bad("an ask needs a title"));
        }
        if deadline <= self.now() {
            return Err(bad("the deadline must be in the future"));
        }
        if deadline > self.now().saturating_add(MAX_HORIZON) {
            return Err(bad("the deadline must be within 100 years"));
        }
        let ask = Ask {
            id: ids::new_entry_id(),
            title: title.to_string(),
            body: body.to_string(),
            deadline,
            created: self.now(),
            by: self.me,
        };
        self.write(topic, DocId::Charter, |tx| charter::put_ask(tx, &ask))?;
        Ok(ask.id)
    }

    /// Hides another member's contribution (admins), with a reason shown to admins; `None`
    /// shows it again.
    pub fn hide(&mut self, topic: &TopicId, id: &str, reason: Option<&str>) -> Result<String> {
        self.require_admin(topic, "hide a contribution")?;
        let record = self
            .record(topic, id)?
            .ok_or_else(|| EngineError::UnknownContribution(id.to_string()))?;
        let me = self.me;
        let at = self.now();
        match reason {
            Some(reason) => {
                if reason.trim().is_empty() {
                    return Err(bad("give a reason for hiding it"));
                }
                self.write(topic, DocId::Charter, |tx| {
                    charter::set_hidden(tx, &record.id, Some((reason, &me, at)))
                })?
            }
            None => {
                if !self
                    .state(topic)?
                    .charter_view
                    .hidden
                    .contains_key(&record.id)
                {
                    return Err(bad(format!("{} is not hidden", record.id)));
                }
                self.write(topic, DocId::Charter, |tx| {
                    charter::set_hidden(tx, &record.id, None)
                })?
            }
        };
        Ok(record.id)
    }

    /// Sets the score weights (admins).
    pub fn set_weights(&mut self, topic: &TopicId, weights: &Weights) -> Result<()> {
        self.require_admin(topic, "change the score weights")?;
        for name in Weights::NAMES {
            let value = weights.get(name).unwrap_or(0);
            if !(0..=MAX_WEIGHT).contains(&value) {
                return Err(bad(format!(
                    "weight {name} is {value}: weights are whole numbers from 0 to {MAX_WEIGHT}"
                )));
            }
        }
        self.write(topic, DocId::Charter, |tx| {
            charter::set_weights(tx, weights)
        })?;
        Ok(())
    }

    /// Changes a member's role (admins).
    pub fn set_role(&mut self, topic: &TopicId, member: &MemberId, role: Role) -> Result<()> {
        self.require_admin(topic, "change roles")?;
        if !self.state(topic)?.admissions.contains_key(member) {
            return Err(EngineError::UnknownMember(member.short()));
        }
        let charter = &self.state(topic)?.charter_view;
        let admins = charter.roles.keys().filter(|m| charter.is_admin(m)).count();
        if role != Role::Admin && charter.is_admin(member) && admins <= 1 {
            return Err(bad(
                "this is the topic's only admin: make another member admin first",
            ));
        }
        self.write(topic, DocId::Charter, |tx| {
            charter::set_role(tx, member, Some(role))
        })?;
        Ok(())
    }

    /// Removes a member (admins), pinning its journals at the heads this node holds.
    pub fn remove_member(&mut self, topic: &TopicId, member: &MemberId) -> Result<()> {
        self.require_admin(topic, "remove members")?;
        if *member == self.me {
            return Err(bad("you cannot remove yourself"));
        }
        // Only an admitted member is removed: a removal keeps what it wrote visible, which a
        // quarantined or refused member's journals must not become.
        match self.state(topic)?.status(member) {
            Some(Status::Admitted(_)) => {}
            None => return Err(EngineError::UnknownMember(member.short())),
            Some(Status::Quarantined(_)) => {
                return Err(bad(format!(
                    "{} waits for an admin's decision: refuse the admission instead \
                     (`catchment member refuse`)",
                    member.short()
                )))
            }
            Some(status) => {
                return Err(bad(format!(
                    "{} is already {}",
                    member.short(),
                    status.describe()
                )))
            }
        }
        let mut pins = BTreeMap::new();
        for doc in self.doc_ids(topic)? {
            if doc.journal_owner() == Some(*member) {
                pins.insert(doc, self.with_doc(topic, &doc, |d| d.get_heads())?);
            }
        }
        let (me, at) = (self.me, self.now());
        self.write(topic, DocId::Charter, |tx| {
            charter::remove_member(tx, member, &pins, &me, at)
        })?;
        Ok(())
    }
}
