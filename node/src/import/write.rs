//! Writing import events: the engine's local write path, in batches.
//!
//! Events whose record is already in the topic are counted and left alone (the ids are
//! derived from the source, so a second import of the same source writes nothing). The rest
//! are written in as few changes as the journal allows: up to [`MAX_ENTRIES`] entries or
//! [`MAX_TEXT`] bytes of text per change, each change signed by this node's member, marked with
//! the charter heads at which it is an admin (each entry carries them), and passed through [`Engine::ingest`]-style
//! validation like any change. Accepts are written last, into the journal that holds each
//! question. Nothing here flushes: call [`Engine::commit`] before reporting the import done.

use std::collections::{BTreeMap, HashSet};

use catchment_crdt::ids::is_entry_id;
use catchment_crdt::schema::{Draft, Kind, MAX_NAME};
use catchment_crdt::{journal, DocId, TopicId, JOURNAL_ROLLOVER};
use serde::{Deserialize, Serialize};

use super::{Action, ImportEvent};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::local::check_text;
use crate::store::layout;

/// The most entries written in one change.
pub const MAX_ENTRIES: usize = 128;
/// The most bytes of titles and bodies written in one change (a change may be 256 KiB).
pub const MAX_TEXT: usize = 128 * 1024;

/// What one call of [`Engine::import`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportOutcome {
    /// Events written by this call.
    pub written: u64,
    /// Events whose record was already in the topic: nothing written.
    pub present: u64,
    /// Events refused: their source key and why.
    pub refused: Vec<(String, String)>,
    /// Signed changes made.
    pub changes: u64,
    /// Events written, by what they wrote: `question`, `idea`, `answer`, `comment`, `vote`,
    /// `accept`.
    pub written_by: BTreeMap<String, u64>,
}

impl ImportOutcome {
    /// Adds another call's outcome to this one.
    pub fn add(&mut self, other: ImportOutcome) {
        self.written += other.written;
        self.present += other.present;
        self.refused.extend(other.refused);
        self.changes += other.changes;
        for (what, n) in other.written_by {
            *self.written_by.entry(what).or_default() += n;
        }
    }
}

/// Checks an event's fields; the error says what is wrong.
fn check_event(event: &ImportEvent) -> Result<()> {
    let bad = |m: String| EngineError::BadInput(m);
    if !is_entry_id(&event.id) {
        return Err(bad(format!(
            "record id {:?} is not 16 hex digits",
            event.id
        )));
    }
    let alias = event.alias.trim();
    if alias.is_empty() || alias.len() > MAX_NAME || alias.chars().any(char::is_control) {
        return Err(bad(format!(
            "alias {:?} must be 1 to {MAX_NAME} bytes of printable text",
            event.alias
        )));
    }
    match &event.action {
        Action::Contribute {
            kind,
            title,
            body,
            tags,
            parent,
        } => {
            check_text(Some(title), Some(body), Some(tags))?;
            if let Some(parent) = parent {
                if !is_entry_id(parent) {
                    return Err(bad(format!("parent id {parent:?} is not 16 hex digits")));
                }
            } else if matches!(kind, Kind::Answer | Kind::Comment) {
                return Err(bad(format!("{} needs a parent", kind.with_article())));
            }
        }
        Action::Endorse {
            contribution,
            value,
        } => {
            if !is_entry_id(contribution) {
                return Err(bad(format!(
                    "contribution id {contribution:?} is not 16 hex digits"
                )));
            }
            if *value != 1 && *value != -1 {
                return Err(bad(format!("a vote is +1 or -1, not {value}")));
            }
        }
        Action::Accept { question, answer } => {
            if *question != event.id || !is_entry_id(answer) {
                return Err(bad(
                    "an accept names its question as its id, and an answer".into()
                ));
            }
        }
    }
    Ok(())
}

/// What an event writes, as counted in [`ImportOutcome::written_by`].
fn label(event: &ImportEvent) -> &'static str {
    match &event.action {
        Action::Contribute { kind, .. } => kind.as_str(),
        Action::Endorse { .. } => "vote",
        Action::Accept { .. } => "accept",
    }
}

fn text_len(event: &ImportEvent) -> usize {
    match &event.action {
        Action::Contribute { title, body, .. } => title.len() + body.len(),
        _ => 0,
    }
}

impl Engine {
    /// Writes import events into `topic`, signed by this node's member, which must be an admin
    /// of the topic. Each record carries its event's alias. Events already imported (same
    /// record id) are counted as present and not written again. Does not flush: call
    /// [`Engine::commit`] before confirming.
    ///
    /// An event may refer to a record that is not written yet (a vote dated before its post);
    /// the views count it once that record arrives. An accept needs its question imported by
    /// this member already (in this call or before), and is refused otherwise.
    pub fn import(&mut self, topic: &TopicId, events: &[ImportEvent]) -> Result<ImportOutcome> {
        self.require_admin(topic, "import")?;
        let mut out = ImportOutcome::default();
        let mut entries = Vec::new();
        let mut accepts = Vec::new();
        let mut seen = HashSet::new();
        for event in events {
            if let Err(e) = check_event(event) {
                out.refused.push((event.key.clone(), e.to_string()));
                continue;
            }
            if !seen.insert(event.key.as_str()) {
                out.present += 1;
                continue;
            }
            let present = match &event.action {
                Action::Contribute { .. } => self.record(topic, &event.id)?.is_some(),
                Action::Endorse { .. } => self
                    .backend()
                    .get(&layout::key(layout::VOTE, topic, &[event.id.as_bytes()]))?
                    .is_some(),
                Action::Accept { .. } => {
                    accepts.push(event);
                    continue;
                }
            };
            if present {
                out.present += 1;
            } else {
                entries.push(event);
            }
        }

        let heads = self.state(topic)?.charter.get_heads();
        let mut rest: &[&ImportEvent] = &entries;
        while !rest.is_empty() {
            let doc = self.current_journal(topic)?;
            let held = self.with_doc(topic, &doc, |d| journal::entry_count(d))?;
            let room = JOURNAL_ROLLOVER.saturating_sub(held).clamp(1, MAX_ENTRIES);
            let mut take = 0;
            let mut text = 0;
            while take < rest.len().min(room) {
                text += text_len(rest[take]);
                if take > 0 && text > MAX_TEXT {
                    break;
                }
                take += 1;
            }
            let (chunk, tail) = rest.split_at(take);
            self.write(topic, doc, |tx| {
                for event in chunk {
                    put_entry(tx, event, &heads)?;
                }
                Ok(())
            })?;
            tracing::debug!(topic = %topic.short(), entries = take, "import batch written");
            out.changes += 1;
            out.written += take as u64;
            for event in chunk {
                *out.written_by.entry(label(event).into()).or_default() += 1;
            }
            rest = tail;
        }

        // Accepts go to the journal holding each question, one change per journal.
        let me = self.me();
        let mut by_journal: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
        for event in accepts {
            let Action::Accept { question, answer } = &event.action else {
                continue;
            };
            let Some(record) = self.record(topic, question)? else {
                out.refused
                    .push((event.key.clone(), "its question is not imported".into()));
                continue;
            };
            if record.author != me || record.kind != Kind::Question {
                out.refused.push((
                    event.key.clone(),
                    "its question is not a question this member imported".into(),
                ));
                continue;
            }
            if record.accepted.as_deref() == Some(answer.as_str()) {
                out.present += 1;
                continue;
            }
            by_journal
                .entry(record.journal)
                .or_default()
                .push((question.clone(), answer.clone()));
        }
        for (n, pairs) in by_journal {
            let doc = DocId::Journal { member: me, n };
            self.write(topic, doc, |tx| {
                for (question, answer) in &pairs {
                    journal::accept(tx, question, answer)?;
                }
                Ok(())
            })?;
            out.changes += 1;
            out.written += pairs.len() as u64;
            *out.written_by.entry("accept".into()).or_default() += pairs.len() as u64;
        }
        Ok(out)
    }
}

/// Puts one contribution or vote into an open transaction.
fn put_entry<T: automerge::transaction::Transactable>(
    tx: &mut T,
    event: &ImportEvent,
    admin_at: &[automerge::ChangeHash],
) -> std::result::Result<(), automerge::AutomergeError> {
    match &event.action {
        Action::Contribute {
            kind,
            title,
            body,
            tags,
            parent,
        } => {
            let draft = Draft {
                title: title.clone(),
                body: body.clone(),
                tags: tags.clone(),
                parent: parent.clone(),
                ask: None,
                alias: Some(event.alias.trim().to_string()),
            };
            journal::put_imported(tx, &event.id, *kind, &draft, event.at, admin_at)
        }
        Action::Endorse {
            contribution,
            value,
        } => journal::put_vote(
            tx,
            &event.id,
            contribution,
            *value,
            event.alias.trim(),
            admin_at,
        ),
        Action::Accept { .. } => Ok(()),
    }
}
