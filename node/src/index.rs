//! The index: derived views kept in the store and updated as changes arrive.
//!
//! After a journal change is applied, the entries it touched (found by diffing the journal's
//! heads before and after) are read again and written to the index: contributions (with feed
//! and reply keys), endorsements, kudos and the profile. A removed member's journals are read
//! at the heads its removal pinned. After a charter change the charter is read whole. These
//! writes go into the batch that stores the change, so a crash never parts the two. The
//! index is a pure function of the documents: [`rebuild`] drops it and derives it again.

use automerge::{Automerge, ChangeHash, ReadDoc};
use catchment_crdt::journal::{self, Touched};
use catchment_crdt::schema::{Contribution, Endorsement, Kudos};
use catchment_crdt::validate::Admission;
use catchment_crdt::{CharterView, DocId, MemberId, TopicId};

use crate::engine::Engine;
use crate::error::Result;
use crate::store::{decode, encode, layout, scan, Backend, Batch};

/// Records an accepted admission, into `batch`.
pub(crate) fn record_admission(
    engine: &mut Engine,
    topic: &TopicId,
    admission: Admission,
    batch: &mut Batch,
) -> Result<()> {
    batch.put(
        layout::key(layout::ADMISSION, topic, &[&admission.member.0]),
        encode(&admission),
    );
    let state = engine.state(topic)?;
    state.admissions.insert(admission.member, admission);
    let charter = state.charter_view.clone();
    refresh(engine, topic, &charter)
}

/// Reads the charter again after a change to it; the index writes go into `batch`.
pub(crate) fn charter_changed(
    engine: &mut Engine,
    topic: &TopicId,
    batch: &mut Batch,
) -> Result<()> {
    let state = engine.state(topic)?;
    let old = std::mem::replace(&mut state.charter_view, CharterView::read(&state.charter));
    batch.put(
        layout::prefix(layout::CHARTER, topic),
        encode(&state.charter_view),
    );
    refresh(engine, topic, &old)?;

    // A new removal pins the member's journals: index them again at the pinned heads.
    let newly_removed: Vec<MemberId> = {
        let state = engine.state(topic)?;
        state
            .charter_view
            .removed
            .keys()
            .filter(|m| !old.removed.contains_key(m))
            .copied()
            .collect()
    };
    for member in newly_removed {
        for doc in engine.doc_ids(topic)? {
            if doc.journal_owner() == Some(member) {
                reindex_doc(engine, topic, &doc, batch)?;
            }
        }
    }
    Ok(())
}

fn refresh(engine: &mut Engine, topic: &TopicId, _old: &CharterView) -> Result<()> {
    let state = engine.state(topic)?;
    let before = state.statuses.clone();
    state.statuses = catchment_crdt::membership::statuses(&state.charter_view, &state.admissions);
    if before != state.statuses {
        tracing::debug!(topic = %topic.short(), "member statuses changed");
    }
    Ok(())
}

/// Indexes what a journal change touched, into `batch`; `before` are the journal's heads
/// before it.
/// Indexes what a journal change touched.
pub(crate) fn journal_changed(
    engine: &mut Engine,
    topic: &TopicId,
    doc: &DocId,
    touched: journal::Touched,
    batch: &mut Batch,
) -> Result<()> {
    if removed_pins(engine, topic, doc)?.is_some() {
        return reindex_doc(engine, topic, doc, batch);
    }
    let (backend, automerge) = engine.doc_and_backend(topic, doc)?;
    write_entries(backend, batch, topic, doc, automerge, &touched)
}

/// For a removed member's journal: the pinned heads (empty if the journal is not pinned).
fn removed_pins(
    engine: &mut Engine,
    topic: &TopicId,
    doc: &DocId,
) -> Result<Option<Vec<ChangeHash>>> {
    let Some(owner) = doc.journal_owner() else {
        return Ok(None);
    };
    let state = engine.state(topic)?;
    Ok(state
        .charter_view
        .removed
        .get(&owner)
        .map(|removal| removal.pins.get(doc).cloned().unwrap_or_default()))
}

/// Indexes a whole journal again, into `batch`: every entry it holds, read at the pinned heads
/// if its member was removed.
pub(crate) fn reindex_doc(
    engine: &mut Engine,
    topic: &TopicId,
    doc: &DocId,
    batch: &mut Batch,
) -> Result<()> {
    let pins = removed_pins(engine, topic, doc)?;
    let (touched, effective) = engine.with_doc(topic, doc, |d| {
        let touched = journal::all_entries(d);
        let effective = match &pins {
            None => Ok(d.fork()),
            Some(pins) if pins.is_empty() => Ok(Automerge::new()),
            Some(pins) => {
                let present = pins.iter().all(|h| d.get_change_by_hash(h).is_some());
                if present {
                    d.fork_at(pins)
                } else {
                    Ok(d.fork())
                }
            }
        };
        (touched, effective)
    })?;
    let effective = effective?;
    write_entries(engine.backend(), batch, topic, doc, &effective, &touched)
}

/// Reads a record as it will be once `batch` is written.
fn read<T: serde::de::DeserializeOwned>(
    backend: &dyn Backend,
    batch: &Batch,
    key: &[u8],
) -> Result<Option<T>> {
    let bytes = match batch.pending(key) {
        Some(pending) => pending.map(<[u8]>::to_vec),
        None => backend.get(key)?,
    };
    Ok(match bytes {
        Some(bytes) => Some(decode(key, &bytes)?),
        None => None,
    })
}

/// Adds to `batch` the index entries of what `touched` names in a journal.
fn write_entries(
    backend: &dyn Backend,
    batch: &mut Batch,
    topic: &TopicId,
    doc_id: &DocId,
    doc: &Automerge,
    touched: &Touched,
) -> Result<()> {
    let DocId::Journal { member, n } = *doc_id else {
        return Ok(());
    };

    for id in &touched.contributions {
        let key = layout::key(layout::CONTRIBUTION, topic, &[id.as_bytes()]);
        let old: Option<Contribution> = read(backend, batch, &key)?;
        let new = journal::read_contribution(doc, member, n, id);
        if let Some(old) = &old {
            // Two authors drew the same id: the smaller member id keeps it, on every node.
            if old.author != member && old.author < member {
                continue;
            }
            batch.delete(layout::feed(topic, old.created, &old.id));
            if let Some(parent) = &old.parent {
                batch.delete(layout::key(
                    layout::CHILD,
                    topic,
                    &[parent.as_bytes(), old.id.as_bytes()],
                ));
            }
        }
        match new {
            Some(c) => {
                batch.put(layout::feed(topic, c.created, &c.id), Vec::new());
                if let Some(parent) = &c.parent {
                    batch.put(
                        layout::key(layout::CHILD, topic, &[parent.as_bytes(), c.id.as_bytes()]),
                        Vec::new(),
                    );
                }
                batch.put(key, encode(&c));
            }
            None if old.is_some() => batch.delete(key),
            None => {}
        }
    }

    for contribution in &touched.endorsements {
        let key = layout::key(
            layout::ENDORSEMENT,
            topic,
            &[contribution.as_bytes(), &member.0],
        );
        let old: Option<Endorsement> = read(backend, batch, &key)?;
        // One endorsement per member and contribution: the latest journal holding one wins.
        if old.as_ref().is_some_and(|o| o.journal > n) {
            continue;
        }
        match journal::read_endorsement(doc, member, n, contribution) {
            Some(e) => batch.put(key, encode(&e)),
            None if old.is_some() => batch.delete(key),
            None => {}
        }
    }

    for id in &touched.votes {
        let locator = layout::key(layout::VOTE, topic, &[id.as_bytes()]);
        let old: Option<Endorsement> = read(backend, batch, &locator)?;
        // Two admins imported the same vote: the smaller member id keeps it, on every node.
        if old.as_ref().is_some_and(|o| o.endorser < member) {
            continue;
        }
        if let Some(old) = &old {
            batch.delete(layout::key(
                layout::ENDORSEMENT,
                topic,
                &[old.contribution.as_bytes(), id.as_bytes()],
            ));
        }
        match journal::read_vote(doc, member, n, id) {
            Some(v) => {
                batch.put(
                    layout::key(
                        layout::ENDORSEMENT,
                        topic,
                        &[v.contribution.as_bytes(), id.as_bytes()],
                    ),
                    encode(&v),
                );
                batch.put(locator, encode(&v));
            }
            None if old.is_some() => batch.delete(locator),
            None => {}
        }
    }

    for id in &touched.kudos {
        let key = layout::key(layout::KUDOS, topic, &[id.as_bytes()]);
        match journal::read_kudos(doc, member, id) {
            Some(k) => batch.put(key, encode(&k)),
            None => {
                let old: Option<Kudos> = read(backend, batch, &key)?;
                if old.is_some_and(|o| o.from == member) {
                    batch.delete(key);
                }
            }
        }
    }

    if touched.profile && n == 0 {
        let key = layout::key(layout::PROFILE, topic, &[&member.0]);
        batch.put(key, encode(&journal::read_profile(doc)));
    }
    Ok(())
}

/// Drops the topic's index and derives it again from the documents.
pub fn rebuild(engine: &mut Engine, topic: &TopicId) -> Result<()> {
    let mut batch = Batch::default();
    for tag in layout::INDEX_TAGS {
        for item in scan(engine.backend(), &layout::prefix(tag, topic)) {
            batch.delete(item?.0);
        }
    }
    engine.backend.write(batch)?;
    engine.topics.remove(topic);

    // Admissions come from validating each journal's first change again.
    let changes = engine.changes(topic)?;
    engine.state(topic)?.admissions.clear();
    let firsts: Vec<_> = changes
        .into_iter()
        .filter(|c| matches!(c.doc, DocId::Journal { n: 0, .. }))
        .collect();
    for signed in firsts {
        let Ok(change) = catchment_crdt::validate::decode(&signed.bytes) else {
            continue;
        };
        if !change.deps().is_empty() {
            continue;
        }
        let state = engine.state(topic)?;
        let admitted = |_: &MemberId| false;
        let ctx = catchment_crdt::Context {
            topic: *topic,
            charter: &state.charter,
            charter_view: &state.charter_view,
            admitted: &admitted,
        };
        let empty = Automerge::new();
        if let catchment_crdt::Verdict::Valid(accepted) =
            catchment_crdt::validate(&ctx, &empty, &signed)
        {
            if let Some(admission) = accepted.admission {
                let mut batch = Batch::default();
                batch.put(
                    layout::key(layout::ADMISSION, topic, &[&admission.member.0]),
                    encode(&admission),
                );
                engine.backend.write(batch)?;
                engine
                    .state(topic)?
                    .admissions
                    .insert(admission.member, admission);
            }
        }
    }
    let mut batch = Batch::default();
    charter_changed(engine, topic, &mut batch)?;
    engine.backend.write(batch)?;
    for doc in engine.doc_ids(topic)? {
        if doc != DocId::Charter {
            let mut batch = Batch::default();
            reindex_doc(engine, topic, &doc, &mut batch)?;
            engine.backend.write(batch)?;
        }
    }
    Ok(())
}
