//! Making the changes that start a topic and a journal.
//!
//! Both helpers build a change in a fresh document with the author's key as actor, then sign
//! it; the caller passes it through [`crate::validate::validate`] like any other change.

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge, AutomergeError, ReadDoc};

use crate::charter;
use crate::ids::{DocId, TopicId};
use crate::journal;
use crate::keys::Keypair;
use crate::schema::AdmissionClaim;
use crate::signed::SignedChange;

/// A new, empty document whose changes are written by `key`.
pub fn new_doc(key: &Keypair) -> Automerge {
    Automerge::new().with_actor(ActorId::from(key.member_id().0))
}

/// Makes one change to `doc` inside a transaction and returns it unsigned.
pub fn transact<F>(
    doc: &mut Automerge,
    time: i64,
    f: F,
) -> Result<automerge::Change, AutomergeError>
where
    F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>,
{
    try_transact(doc, time, f)?.ok_or(AutomergeError::Fail)
}

/// Like [`transact`], but a transaction that changes nothing (setting a value it already
/// has) gives `None` rather than an error.
pub fn try_transact<F>(
    doc: &mut Automerge,
    time: i64,
    f: F,
) -> Result<Option<automerge::Change>, AutomergeError>
where
    F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>,
{
    let done = doc
        .transact_with(|_| CommitOptions::default().with_time(time), f)
        .map_err(|failure| failure.error)?;
    match done.hash {
        Some(hash) => doc
            .get_change_by_hash(&hash)
            .map(Some)
            .ok_or(AutomergeError::Fail),
        None => Ok(None),
    }
}

/// Like [`try_transact`], and also returns the patches the change made.
pub fn try_transact_logged<F>(
    doc: &mut Automerge,
    time: i64,
    f: F,
) -> Result<Option<(automerge::Change, Vec<automerge::Patch>)>, AutomergeError>
where
    F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>,
{
    let mut done = doc
        .transact_and_log_patches_with(|_| CommitOptions::default().with_time(time), f)
        .map_err(|failure| failure.error)?;
    let Some(hash) = done.hash else {
        return Ok(None);
    };
    let patches = doc.make_patches(&mut done.patch_log);
    let change = doc.get_change_by_hash(&hash).ok_or(AutomergeError::Fail)?;
    Ok(Some((change, patches)))
}

/// Creates a topic: the genesis change of its charter. The topic id is the change's hash.
pub fn create_topic(
    key: &Keypair,
    name: &str,
    now: i64,
) -> Result<(TopicId, Automerge, SignedChange), AutomergeError> {
    let mut doc = new_doc(key);
    let change = transact(&mut doc, now, |tx| {
        charter::init(tx, name, &key.member_id(), now)
    })?;
    let topic = TopicId(change.hash().0);
    let signed = SignedChange::sign(key, &topic, DocId::Charter, &change);
    Ok((topic, doc, signed))
}

/// Starts journal `n` of `key`'s member; journal 0 carries the admission claim.
pub fn start_journal(
    key: &Keypair,
    topic: &TopicId,
    n: u32,
    admission: Option<&AdmissionClaim>,
    now: i64,
) -> Result<(Automerge, SignedChange), AutomergeError> {
    let mut doc = new_doc(key);
    let member = key.member_id();
    let change = transact(&mut doc, now, |tx| {
        journal::init(tx, &member, n, admission, now)
    })?;
    let signed = SignedChange::sign(key, topic, DocId::Journal { member, n }, &change);
    Ok((doc, signed))
}
