//! The engine: every change, made here or received, goes through [`Engine::ingest`].
//!
//! Ingesting a change means: skip it if stored already; load its document; run
//! [`catchment_crdt::validate`]; if valid, apply it, then write the signed change, its place in
//! the document's log and the index entries it touched in one atomic batch. A pending change
//! waits in a bounded per-topic queue and is retried whenever something else is accepted.
//! Local writes make the change on the cached document, sign it, and ingest it the same way;
//! [`Engine::commit`] then flushes, and only then is the write confirmed to the caller.
//!
//! Documents are loaded when needed (latest snapshot plus the log after it) and kept in a
//! small cache; the views are read from the index in the store, so opening a node loads no
//! journal at all.

use std::collections::{BTreeMap, HashMap};

use automerge::{Automerge, ChangeHash, ReadDoc};
use catchment_crdt::charter::CharterView;
use catchment_crdt::membership::{self, Status};
use catchment_crdt::validate::{self, Admission, Rejection, SignatureCheck, Verdict, Wait};
use catchment_crdt::{journal, DocId, Keypair, MemberId, SignedChange, TopicId};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::error::Result;
use crate::index;
use crate::store::{decode, encode, layout, scan, Backend, Batch, StoreError};
use catchment_protocol::envelope;

/// Documents kept loaded per topic.
const DOC_CACHE: usize = 64;
/// Pending changes kept per topic; the oldest are dropped beyond it (anti-entropy brings them
/// again).
pub const MAX_PENDING: usize = 10_000;
/// A document is snapshotted every this many logged changes.
const SNAPSHOT_EVERY: u64 = 128;

/// A topic as this node records it locally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    /// The id.
    pub id: TopicId,
    /// When this node learned of it.
    pub added: i64,
    /// The topic key (gossip name, sync tag, payload sealing), known to members only: made
    /// where the topic was created, taken from the invite where it was joined. `None` for a
    /// topic known only from changes that arrived, or created before topics had keys: such a
    /// topic has no key until an invite brings it (see `crate::topic_key`).
    pub key: Option<[u8; 32]>,
}

/// The record written before topics had keys.
#[derive(Deserialize)]
struct TopicRecordV0 {
    id: TopicId,
    added: i64,
}

impl TopicRecord {
    /// Reads a stored record, including one written before topics had keys.
    pub(crate) fn decode(key: &[u8], bytes: &[u8]) -> Result<Self, StoreError> {
        decode(key, bytes).or_else(|e| match decode::<TopicRecordV0>(key, bytes) {
            Ok(old) => Ok(TopicRecord {
                id: old.id,
                added: old.added,
                key: None,
            }),
            Err(_) => Err(e),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    log_len: u64,
    bytes: Vec<u8>,
}

/// What happened to a batch of changes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// Changes accepted and stored.
    pub accepted: Vec<ChangeHash>,
    /// Changes already stored.
    pub duplicates: usize,
    /// Changes waiting for something.
    pub pending: usize,
    /// Changes refused, with the reason.
    pub rejected: Vec<Rejection>,
}

/// One topic's loaded state.
pub(crate) struct TopicState {
    pub(crate) charter: Automerge,
    pub(crate) charter_view: CharterView,
    pub(crate) admissions: BTreeMap<MemberId, Admission>,
    pub(crate) statuses: BTreeMap<MemberId, Status>,
    docs: HashMap<DocId, Automerge>,
    /// When each loaded document was last asked for (a tick of `uses`), for eviction.
    last_used: HashMap<DocId, u64>,
    uses: u64,
    log_len: HashMap<DocId, u64>,
    /// The heads of every journal loaded since the topic was, kept when the document is
    /// evicted: what is stored changes only through `log_change`, which updates them, so
    /// comparing heads with peers never reloads a document.
    heads: HashMap<DocId, Vec<ChangeHash>>,
    pending: Vec<SignedChange>,
    /// The newest journal of this node's member, once looked up.
    pub(crate) my_journal: Option<u32>,
}

impl TopicState {
    pub(crate) fn status(&self, member: &MemberId) -> Option<Status> {
        self.statuses.get(member).copied()
    }

    pub(crate) fn is_visible(&self, member: &MemberId) -> bool {
        self.status(member).is_some_and(|s| s.is_visible())
    }

    /// The loaded document a change belongs to.
    fn doc(&self, doc: &DocId) -> &Automerge {
        match doc {
            DocId::Charter => &self.charter,
            _ => &self.docs[doc],
        }
    }

    /// Runs validation on a change against this topic as loaded; `staged` names changes of
    /// the same document validated earlier in a batch but not yet applied.
    fn validate(
        &self,
        topic: &TopicId,
        signed: &SignedChange,
        change: automerge::Change,
        signature: Option<SignatureCheck>,
        staged: &dyn Fn(&ChangeHash) -> bool,
    ) -> Verdict {
        let admitted = |m: &MemberId| self.admissions.contains_key(m);
        let ctx = validate::Context {
            topic: *topic,
            charter: &self.charter,
            charter_view: &self.charter_view,
            admitted: &admitted,
        };
        validate::validate_decoded(
            &ctx,
            self.doc(&signed.doc),
            staged,
            signed,
            change,
            signature,
        )
    }

    fn refresh_statuses(&mut self) {
        self.statuses = membership::statuses(&self.charter_view, &self.admissions);
    }
}

/// Changes validated but not yet applied, per document.
#[derive(Default)]
struct Stage {
    docs: BTreeMap<DocId, Staged>,
    hashes: std::collections::HashSet<ChangeHash>,
    admissions: Vec<Admission>,
    count: usize,
}

#[derive(Default)]
struct Staged {
    changes: Vec<(automerge::Change, SignedChange)>,
    hashes: std::collections::HashSet<ChangeHash>,
}

/// Changes applied and written together at most.
const STAGE_LIMIT: usize = 512;

pub(crate) enum Outcome {
    Accepted(ChangeHash),
    Duplicate,
    Pending(Wait),
    Rejected(Rejection),
}

/// Changes in a batch from which their signatures are checked on several threads.
const PARALLEL_FROM: usize = 32;
/// Threads that check signatures at most (the calling one included).
const VERIFY_THREADS: usize = 4;

/// A change of a batch, decoded, with its signature checked if it decoded.
type Prepared = (
    SignedChange,
    std::result::Result<automerge::Change, Rejection>,
    Option<SignatureCheck>,
);

/// Decodes every change of a batch and, for a large batch, checks their signatures (check 3
/// of validation, the costliest) on up to [`VERIFY_THREADS`] threads. Each check is the same
/// pure function of the change, its signature and its author's key, so which thread runs it
/// changes no verdict; validation uses a check only for the exact change it was made for.
/// A small batch is left to validation, which checks each signature itself.
///
/// Why not ed25519-dalek's `verify_batch` (one multiscalar equation for the whole batch)? It
/// would have to accept exactly what `verify_strict` accepts, whatever batch a change
/// arrives in, and it does not: (1) it never refuses a small-order R or A, nor an R whose
/// encoding is not canonical (it decompresses R; `verify_strict` compares the recomputed R
/// with the signature's bytes); (2) it checks `sum z_i (R_i - s_i B + k_i A_i) = 0`
/// without the cofactor, with 128-bit weights z_i drawn from a transcript of the whole
/// batch: a signature whose defect `R_i - s_i B + k_i A_i` is a nonzero torsion point T
/// (R or A of mixed order) passes whenever z_i is a multiple of T's order (probability 1/2
/// for order 2), and since z_i depends on the other changes of the batch, one node would
/// accept such a change and another refuse it; a sender can also grind the batch until it
/// passes. (1) can be checked cheaply beforehand, but ruling out (2) needs each R to be in
/// the prime-order subgroup (`[l]R = 0`), a full scalar multiplication per signature that
/// costs about what batching saves. The other way round holds (every strictly valid batch
/// passes), so a failed batch could fall back to `verify_strict`; it is the false passes
/// that cannot be allowed. Checking each signature with `verify_strict`, spread over
/// threads, keeps the verdicts exactly those of `verify_strict`.
fn decode_and_verify(
    topic: &TopicId,
    changes: Vec<SignedChange>,
    known: &dyn Fn(&DocId, &ChangeHash) -> bool,
) -> Vec<Prepared> {
    let decoded: Vec<_> = changes
        .into_iter()
        .map(|signed| {
            let change = validate::decode(&signed.bytes);
            (signed, change)
        })
        .collect();
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let threads = *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(VERIFY_THREADS)
    });
    if decoded.len() < PARALLEL_FROM || threads < 2 {
        return decoded.into_iter().map(|(s, c)| (s, c, None)).collect();
    }
    // Keys are read (and remembered) on this thread; the strict verifications are spread.
    let pending: Vec<_> = decoded
        .iter()
        .map(|(signed, change)| {
            change
                .as_ref()
                .ok()
                .filter(|c| !known(&signed.doc, &c.hash()))
                .map(|c| SignatureCheck::start(topic, signed, c))
        })
        .collect();
    let chunk = pending.len().div_ceil(threads);
    let mut pending = pending.into_iter();
    let mut parts: Vec<Vec<_>> = Vec::with_capacity(threads);
    for _ in 0..threads {
        parts.push(pending.by_ref().take(chunk).collect());
    }
    let verify = |part: Vec<Option<validate::PendingSignature>>| -> Vec<Option<SignatureCheck>> {
        part.into_iter().map(|p| p.map(|p| p.verify())).collect()
    };
    let mut parts = parts.into_iter();
    let mine = parts.next().unwrap_or_default();
    let checks: Vec<Option<SignatureCheck>> = std::thread::scope(|scope| {
        let others: Vec<_> = parts
            .map(|part| {
                let len = part.len();
                let spawned = std::thread::Builder::new()
                    .name("verify".into())
                    .spawn_scoped(scope, move || verify(part));
                (len, spawned)
            })
            .collect();
        let mut checks = verify(mine);
        for (len, other) in others {
            // A thread that could not start or panicked leaves its changes to be checked by
            // validation.
            match other.map(|handle| handle.join()) {
                Ok(Ok(part)) => checks.extend(part),
                _ => checks.extend(std::iter::repeat_with(|| None).take(len)),
            }
        }
        checks
    });
    decoded
        .into_iter()
        .zip(checks.into_iter().chain(std::iter::repeat_with(|| None)))
        .map(|((signed, change), check)| (signed, change, check))
        .collect()
}

/// Reads a stored change: the same envelope as on the wire.
fn decode_change(key: &[u8], bytes: &[u8]) -> Result<SignedChange> {
    envelope::decode(bytes).map_err(|e| {
        StoreError::Corrupt {
            key: hex::encode(key),
            reason: e.to_string(),
        }
        .into()
    })
}

/// The engine over one store and one member key.
pub struct Engine {
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) key: Keypair,
    pub(crate) me: MemberId,
    pub(crate) topics: HashMap<TopicId, TopicState>,
    /// Changes accepted since the last [`Engine::take_accepted`], for gossip and events.
    accepted: Vec<(TopicId, SignedChange)>,
    /// Set while serving a sync request from a member that is not admitted: its standing.
    pub(crate) standing_told: Option<String>,
    clock: Box<dyn Fn() -> i64 + Send>,
}

/// Milliseconds since the epoch, from the system clock.
pub fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Engine {
    /// Opens the engine over a store, acting as `key`'s member.
    pub fn open(backend: Box<dyn Backend>, key: Keypair) -> Self {
        let me = key.member_id();
        Engine {
            backend,
            key,
            me,
            topics: HashMap::new(),
            accepted: Vec::new(),
            standing_told: None,
            clock: Box::new(system_now),
        }
    }

    /// Replaces the clock (milliseconds since the epoch); for tests and replays.
    pub fn set_clock(&mut self, clock: impl Fn() -> i64 + Send + 'static) {
        self.clock = Box::new(clock);
    }

    /// The current time by this engine's clock.
    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    /// This node's member.
    pub fn me(&self) -> MemberId {
        self.me
    }

    /// The store.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Makes every write so far durable. Writes are confirmed to users only after this.
    pub fn commit(&self) -> Result<()> {
        Ok(self.backend.flush()?)
    }

    /// Every topic this node holds.
    pub fn topic_ids(&self) -> Result<Vec<TopicId>> {
        let mut out = Vec::new();
        for item in scan(self.backend(), &[layout::TOPIC]) {
            let (k, v) = item?;
            out.push(TopicRecord::decode(&k, &v)?.id);
        }
        Ok(out)
    }

    pub(crate) fn state(&mut self, topic: &TopicId) -> Result<&mut TopicState> {
        if !self.topics.contains_key(topic) {
            let state = self.load_topic(topic)?;
            self.topics.insert(*topic, state);
        }
        Ok(self.topics.get_mut(topic).expect("inserted above"))
    }

    fn load_topic(&self, topic: &TopicId) -> Result<TopicState> {
        let charter = self.load_doc(topic, &DocId::Charter)?;
        let charter_view = CharterView::read(&charter);
        let mut admissions = BTreeMap::new();
        for item in scan(self.backend(), &layout::prefix(layout::ADMISSION, topic)) {
            let (k, v) = item?;
            let admission: Admission = decode(&k, &v)?;
            admissions.insert(admission.member, admission);
        }
        let mut state = TopicState {
            charter,
            charter_view,
            admissions,
            statuses: BTreeMap::new(),
            docs: HashMap::new(),
            last_used: HashMap::new(),
            uses: 0,
            log_len: HashMap::new(),
            heads: HashMap::new(),
            pending: Vec::new(),
            my_journal: None,
        };
        state.refresh_statuses();
        Ok(state)
    }

    /// Loads a document from its latest snapshot and the log after it.
    pub(crate) fn load_doc(&self, topic: &TopicId, doc: &DocId) -> Result<Automerge> {
        let doc_key = layout::doc(doc);
        let snapshot_key = layout::key(layout::SNAPSHOT, topic, &[&doc_key]);
        let (mut automerge, from) = match self.backend.get(&snapshot_key)? {
            Some(bytes) => {
                let snapshot: Snapshot = decode(&snapshot_key, &bytes)?;
                (Automerge::load(&snapshot.bytes)?, snapshot.log_len)
            }
            None => (Automerge::new(), 0),
        };
        let log_prefix = layout::key(layout::LOG, topic, &[&doc_key]);
        let start = layout::key(layout::LOG, topic, &[&doc_key, &from.to_be_bytes()]);
        let mut changes = Vec::new();
        for item in self.backend.scan_from(&log_prefix, &start) {
            let (_, hash) = item?;
            let change_key = layout::key(layout::CHANGE, topic, &[&hash]);
            let bytes = self
                .backend
                .get(&change_key)?
                .ok_or_else(|| StoreError::Corrupt {
                    key: hex::encode(&change_key),
                    reason: "logged change missing".into(),
                })?;
            let signed = decode_change(&change_key, &bytes)?;
            changes.push(validate::decode(&signed.bytes)?);
        }
        validate::apply(&mut automerge, changes)?;
        automerge.set_actor(automerge::ActorId::from(self.me.0));
        Ok(automerge)
    }

    fn stored_log_len(&self, topic: &TopicId, doc: &DocId) -> Result<u64> {
        let key = layout::key(layout::DOC, topic, &[&layout::doc(doc)]);
        Ok(match self.backend.get(&key)? {
            Some(bytes) => decode(&key, &bytes)?,
            None => 0,
        })
    }

    /// Every document of a topic this node holds.
    pub fn doc_ids(&self, topic: &TopicId) -> Result<Vec<DocId>> {
        let prefix = layout::prefix(layout::DOC, topic);
        let mut out = Vec::new();
        for item in scan(self.backend(), &prefix) {
            let (k, _) = item?;
            if let Ok(doc) = DocId::from_bytes(&k[prefix.len()..]) {
                out.push(doc);
            }
        }
        Ok(out)
    }

    /// Heads of every document of a topic, for comparing nodes.
    pub fn heads(&mut self, topic: &TopicId) -> Result<BTreeMap<DocId, Vec<ChangeHash>>> {
        let mut out = BTreeMap::new();
        for doc in self.doc_ids(topic)? {
            let heads = self.doc_heads(topic, &doc)?;
            out.insert(doc, heads);
        }
        Ok(out)
    }

    /// A document's heads, loading it only if it was never loaded since its topic was.
    pub(crate) fn doc_heads(&mut self, topic: &TopicId, doc: &DocId) -> Result<Vec<ChangeHash>> {
        if let Some(heads) = self.state(topic)?.heads.get(doc) {
            return Ok(heads.clone());
        }
        self.with_doc(topic, doc, |d| d.get_heads())
    }

    /// Runs `f` on a loaded document.
    pub(crate) fn with_doc<T>(
        &mut self,
        topic: &TopicId,
        doc: &DocId,
        f: impl FnOnce(&mut Automerge) -> T,
    ) -> Result<T> {
        self.ensure_doc(topic, doc)?;
        let state = self.topics.get_mut(topic).expect("ensured");
        let automerge = match doc {
            DocId::Charter => &mut state.charter,
            _ => state.docs.get_mut(doc).expect("ensured"),
        };
        Ok(f(automerge))
    }

    fn ensure_doc(&mut self, topic: &TopicId, doc: &DocId) -> Result<()> {
        let state = self.state(topic)?;
        if *doc == DocId::Charter {
            return Ok(());
        }
        state.uses += 1;
        let tick = state.uses;
        if state.docs.contains_key(doc) {
            state.last_used.insert(*doc, tick);
            return Ok(());
        }
        let loaded = self.load_doc(topic, doc)?;
        let state = self.topics.get_mut(topic).expect("loaded");
        state.heads.insert(*doc, loaded.get_heads());
        if state.docs.len() >= DOC_CACHE {
            // Evict the document least recently asked for, one we do not write to if there is
            // one: it reloads from the store when needed again. A batch being ingested asks
            // for its documents with every change, so they stay.
            let me = self.me;
            let last_used = &state.last_used;
            let age = |d: &&DocId| last_used.get(*d).copied().unwrap_or(0);
            let victim = state
                .docs
                .keys()
                .filter(|d| d.journal_owner() != Some(me))
                .min_by_key(age)
                .or_else(|| state.docs.keys().min_by_key(age))
                .copied();
            if let Some(victim) = victim {
                state.docs.remove(&victim);
                state.last_used.remove(&victim);
            }
        }
        state.docs.insert(*doc, loaded);
        state.last_used.insert(*doc, tick);
        Ok(())
    }

    /// The store and a loaded document at once.
    pub(crate) fn doc_and_backend(
        &mut self,
        topic: &TopicId,
        doc: &DocId,
    ) -> Result<(&dyn Backend, &Automerge)> {
        self.ensure_doc(topic, doc)?;
        let state = &self.topics[topic];
        let automerge = match doc {
            DocId::Charter => &state.charter,
            _ => &state.docs[doc],
        };
        Ok((self.backend.as_ref(), automerge))
    }

    /// Drops a cached document so that the next use reloads it from the store.
    pub(crate) fn forget_doc(&mut self, topic: &TopicId, doc: &DocId) -> Result<()> {
        if *doc == DocId::Charter {
            let charter = self.load_doc(topic, doc)?;
            if let Some(state) = self.topics.get_mut(topic) {
                state.charter = charter;
            }
        } else if let Some(state) = self.topics.get_mut(topic) {
            state.docs.remove(doc);
            state.last_used.remove(doc);
            state.heads.remove(doc);
        }
        Ok(())
    }

    /// Records a topic locally (before its genesis is ingested).
    pub(crate) fn add_topic(&mut self, topic: &TopicId) -> Result<()> {
        let key = layout::prefix(layout::TOPIC, topic);
        if self.backend.get(&key)?.is_none() {
            let mut batch = Batch::default();
            batch.put(
                key,
                encode(&TopicRecord {
                    id: *topic,
                    added: self.now(),
                    key: None,
                }),
            );
            self.backend.write(batch)?;
        }
        Ok(())
    }

    /// Validates and stores a batch of changes of one topic, from anywhere. Pending changes
    /// wait and are retried as others arrive. Call [`Engine::commit`] before confirming.
    ///
    /// Journal changes are validated one by one (a change may depend on one earlier in the
    /// batch), then each journal's valid changes are applied in one Automerge call and written,
    /// with their index entries, in one atomic store batch: applying a batch costs a fraction
    /// of applying its changes one at a time.
    pub fn ingest(&mut self, topic: &TopicId, changes: Vec<SignedChange>) -> Result<Ingested> {
        self.add_topic(topic)?;
        let mut report = Ingested::default();
        let waiting = self.ingest_all(topic, changes, &mut report)?;
        let state = self.state(topic)?;
        // One copy of each waiting change.
        for signed in waiting {
            if !state
                .pending
                .iter()
                .any(|p| p.bytes == signed.bytes && p.doc == signed.doc)
            {
                state.pending.push(signed);
            }
        }
        if !report.accepted.is_empty() {
            self.retry_pending(topic, &mut report)?;
        }
        let state = self.state(topic)?;
        if state.pending.len() > MAX_PENDING {
            let excess = state.pending.len() - MAX_PENDING;
            warn!(topic = %topic.short(), excess, "pending queue full: dropping the oldest changes");
            state.pending.drain(..excess);
        }
        report.pending = state.pending.len();
        Ok(report)
    }

    /// Ingests `changes`; returns those that wait.
    fn ingest_all(
        &mut self,
        topic: &TopicId,
        changes: Vec<SignedChange>,
        report: &mut Ingested,
    ) -> Result<Vec<SignedChange>> {
        let mut waiting = Vec::new();
        let mut stage = Stage::default();
        // Changes a loaded document already holds are duplicates: no need to check them.
        let loaded = self.topics.get(topic);
        let known = |doc: &DocId, hash: &ChangeHash| {
            loaded.is_some_and(|state| match doc {
                DocId::Charter => state.charter.get_change_by_hash(hash).is_some(),
                _ => state
                    .docs
                    .get(doc)
                    .is_some_and(|d| d.get_change_by_hash(hash).is_some()),
            })
        };
        let decoded = decode_and_verify(topic, changes, &known);
        for (signed, change, signature) in decoded {
            let outcome = self.stage_one(topic, &signed, change, signature, &mut stage, report)?;
            match outcome {
                Some(Outcome::Accepted(hash)) => report.accepted.push(hash),
                Some(Outcome::Duplicate) => report.duplicates += 1,
                Some(Outcome::Pending(wait)) => {
                    debug!(topic = %topic.short(), ?wait, "change pending");
                    waiting.push(signed);
                }
                Some(Outcome::Rejected(rejection)) => {
                    debug!(topic = %topic.short(), %rejection, "change rejected");
                    report.rejected.push(rejection);
                }
                None => {}
            }
            if stage.count >= STAGE_LIMIT {
                self.commit_stage(topic, &mut stage, report)?;
            }
        }
        self.commit_stage(topic, &mut stage, report)?;
        Ok(waiting)
    }

    pub(crate) fn retry_pending(&mut self, topic: &TopicId, report: &mut Ingested) -> Result<()> {
        loop {
            let queue = std::mem::take(&mut self.state(topic)?.pending);
            if queue.is_empty() {
                return Ok(());
            }
            let before = report.accepted.len();
            let mut retry = Ingested::default();
            let still = self.ingest_all(topic, queue, &mut retry)?;
            report.accepted.extend(retry.accepted);
            report.rejected.extend(retry.rejected);
            self.state(topic)?.pending = still;
            if report.accepted.len() == before {
                return Ok(());
            }
        }
    }

    /// Changes waiting for something, per topic.
    pub fn pending_count(&mut self, topic: &TopicId) -> Result<usize> {
        Ok(self.state(topic)?.pending.len())
    }

    /// Validates a change; a valid journal change is staged (`None`), anything else decided
    /// at once.
    fn stage_one(
        &mut self,
        topic: &TopicId,
        signed: &SignedChange,
        change: std::result::Result<automerge::Change, Rejection>,
        signature: Option<SignatureCheck>,
        stage: &mut Stage,
        report: &mut Ingested,
    ) -> Result<Option<Outcome>> {
        let change = match change {
            Ok(change) => change,
            Err(rejection) => return Ok(Some(Outcome::Rejected(rejection))),
        };
        let hash = change.hash();
        if stage.hashes.contains(&hash) {
            return Ok(Some(Outcome::Duplicate));
        }
        // Charter changes and a removed member's changes read documents as they stand:
        // everything staged goes first, then they take the one-at-a-time path.
        let removed = signed.doc.journal_owner().is_some_and(|m| {
            self.state(topic)
                .is_ok_and(|s| s.charter_view.removed.contains_key(&m))
        });
        if signed.doc == DocId::Charter || removed {
            self.commit_stage(topic, stage, report)?;
            return self.ingest_one(topic, signed, None).map(Some);
        }

        self.ensure_doc(topic, &signed.doc)?;
        let state = self.topics.get_mut(topic).expect("ensured");
        // A loaded document holds exactly the stored changes (local writes take the other
        // path), so it answers "stored already?" without a store read.
        if state.doc(&signed.doc).get_change_by_hash(&hash).is_some() {
            return Ok(Some(Outcome::Duplicate));
        }
        let staged = stage.docs.get(&signed.doc);
        let in_stage = |h: &ChangeHash| staged.is_some_and(|s| s.hashes.contains(h));
        let accepted = match state.validate(topic, signed, change, signature, &in_stage) {
            Verdict::Valid(accepted) => accepted,
            Verdict::Pending(wait) => return Ok(Some(Outcome::Pending(wait))),
            Verdict::Invalid(rejection) => return Ok(Some(Outcome::Rejected(rejection))),
        };
        let accepted = *accepted;
        if let Some(admission) = accepted.admission {
            // Later changes of this member in the batch count it as admitted.
            state.admissions.insert(admission.member, admission.clone());
            stage.admissions.push(admission);
        }
        stage.hashes.insert(hash);
        stage.count += 1;
        let staged = stage.docs.entry(signed.doc).or_default();
        staged.hashes.insert(hash);
        staged.changes.push((accepted.change, signed.clone()));
        Ok(None)
    }

    /// Applies and writes everything staged: per document one apply, then one store batch.
    fn commit_stage(
        &mut self,
        topic: &TopicId,
        stage: &mut Stage,
        report: &mut Ingested,
    ) -> Result<()> {
        if stage.count == 0 {
            return Ok(());
        }
        let staged = std::mem::take(stage);
        let mut batch = Batch::default();
        let mut fallback = Vec::new();
        let mut written = Vec::new();
        for (doc_id, entries) in staged.docs {
            let (changes, signeds): (Vec<_>, Vec<_>) = entries.changes.into_iter().unzip();
            let hashes: Vec<ChangeHash> = changes.iter().map(automerge::Change::hash).collect();
            // Staged changes are not applied yet, so a document the cache let go of since is
            // reloaded in exactly the state they were validated against.
            self.ensure_doc(topic, &doc_id)?;
            let state = self.topics.get_mut(topic).expect("ensured");
            let doc = state.docs.get_mut(&doc_id).expect("ensured");
            let patches = match validate::apply_logged(doc, changes) {
                Ok(patches) => patches,
                Err(rejection) => {
                    // One of them does not apply: take them one at a time to find which.
                    debug!(topic = %topic.short(), doc = ?doc_id, %rejection, "batch apply failed");
                    self.forget_doc(topic, &doc_id)?;
                    fallback.extend(signeds);
                    continue;
                }
            };
            for (signed, hash) in signeds.iter().zip(&hashes) {
                self.log_change(topic, signed, *hash, &mut batch)?;
            }
            index::journal_changed(
                self,
                topic,
                &doc_id,
                journal::touched_by(&patches),
                &mut batch,
            )?;
            written.extend(hashes.into_iter().zip(signeds));
        }
        for admission in staged.admissions {
            index::record_admission(self, topic, admission, &mut batch)?;
        }
        if let Err(e) = self.backend.write(batch) {
            // The loaded state holds changes the store does not: load it again when needed.
            self.topics.remove(topic);
            return Err(e.into());
        }
        for (hash, signed) in written {
            report.accepted.push(hash);
            if self.accepted.len() < MAX_PENDING {
                self.accepted.push((*topic, signed));
            }
        }
        for signed in fallback {
            match self.ingest_one(topic, &signed, None)? {
                Outcome::Accepted(hash) => report.accepted.push(hash),
                Outcome::Duplicate => report.duplicates += 1,
                Outcome::Pending(_) => self.state(topic)?.pending.push(signed),
                Outcome::Rejected(rejection) => report.rejected.push(rejection),
            }
        }
        Ok(())
    }

    /// Adds a change, its place in its document's log, and a snapshot when one is due.
    fn log_change(
        &mut self,
        topic: &TopicId,
        signed: &SignedChange,
        hash: ChangeHash,
        batch: &mut Batch,
    ) -> Result<()> {
        batch.put(
            layout::key(layout::CHANGE, topic, &[&hash.0]),
            envelope::encode(signed),
        );
        let known = self
            .topics
            .get(topic)
            .and_then(|s| s.log_len.get(&signed.doc).copied());
        let log_len = match known {
            Some(n) => n,
            None => self.stored_log_len(topic, &signed.doc)?,
        };
        let doc_key = layout::doc(&signed.doc);
        batch.put(
            layout::key(layout::LOG, topic, &[&doc_key, &log_len.to_be_bytes()]),
            hash.0.to_vec(),
        );
        batch.put(
            layout::key(layout::DOC, topic, &[&doc_key]),
            encode(&(log_len + 1)),
        );
        let state = self.topics.get_mut(topic).expect("loaded");
        state.log_len.insert(signed.doc, log_len + 1);
        let doc = match signed.doc {
            DocId::Charter => &state.charter,
            _ => &state.docs[&signed.doc],
        };
        if signed.doc != DocId::Charter {
            state.heads.insert(signed.doc, doc.get_heads());
        }
        if (log_len + 1) % SNAPSHOT_EVERY == 0 {
            let snapshot = Snapshot {
                log_len: log_len + 1,
                bytes: doc.save(),
            };
            batch.put(
                layout::key(layout::SNAPSHOT, topic, &[&doc_key]),
                encode(&snapshot),
            );
        }
        Ok(())
    }

    /// Validates, applies and writes one change. `patches`: what a local change (already in
    /// the cached document) touched, from its transaction.
    pub(crate) fn ingest_one(
        &mut self,
        topic: &TopicId,
        signed: &SignedChange,
        patches: Option<Vec<automerge::Patch>>,
    ) -> Result<Outcome> {
        let change = match validate::decode(&signed.bytes) {
            Ok(change) => change,
            Err(rejection) => return Ok(Outcome::Rejected(rejection)),
        };
        let hash = change.hash();
        let change_key = layout::key(layout::CHANGE, topic, &[&hash.0]);
        if self.backend.get(&change_key)?.is_some() {
            return Ok(Outcome::Duplicate);
        }
        self.ensure_doc(topic, &signed.doc)?;

        let state = self.topics.get_mut(topic).expect("ensured");
        let accepted = match state.validate(topic, signed, change, None, &|_| false) {
            Verdict::Valid(accepted) => accepted,
            Verdict::Pending(wait) => return Ok(Outcome::Pending(wait)),
            Verdict::Invalid(rejection) => {
                // A local change already sits in the cached document: drop it.
                if state.doc(&signed.doc).get_change_by_hash(&hash).is_some() {
                    self.forget_doc(topic, &signed.doc)?;
                }
                return Ok(Outcome::Rejected(rejection));
            }
        };

        let doc = match signed.doc {
            DocId::Charter => &mut state.charter,
            _ => state.docs.get_mut(&signed.doc).expect("ensured"),
        };
        let touched = if doc.get_change_by_hash(&hash).is_some() {
            match patches {
                Some(patches) => journal::touched_by(&patches),
                None => journal::touched(doc, accepted.change.deps(), &[hash]),
            }
        } else {
            match validate::apply_logged(doc, vec![accepted.change]) {
                Ok(patches) => journal::touched_by(&patches),
                Err(rejection) => {
                    self.forget_doc(topic, &signed.doc)?;
                    return Ok(Outcome::Rejected(rejection));
                }
            }
        };

        let mut batch = Batch::default();
        self.log_change(topic, signed, hash, &mut batch)?;

        // The index entries go into the same batch: a crash (even an unflushed write that
        // reaches the disk) leaves the change with its index entries, or neither.
        let mut indexed = Ok(());
        if let Some(admission) = accepted.admission {
            indexed = index::record_admission(self, topic, admission, &mut batch);
        }
        let written = indexed
            .and_then(|()| match signed.doc {
                DocId::Charter => index::charter_changed(self, topic, &mut batch),
                DocId::Journal { .. } => {
                    index::journal_changed(self, topic, &signed.doc, touched, &mut batch)
                }
            })
            .and_then(|()| Ok(self.backend.write(batch)?));
        if let Err(e) = written {
            // The loaded state holds a change the store does not: load it again when needed.
            self.topics.remove(topic);
            return Err(e);
        }
        if self.accepted.len() < MAX_PENDING {
            self.accepted.push((*topic, signed.clone()));
        }
        Ok(Outcome::Accepted(hash))
    }

    /// The changes accepted (made here or received) since the last call, oldest first; at most
    /// [`MAX_PENDING`] are kept between calls.
    pub fn take_accepted(&mut self) -> Vec<(TopicId, SignedChange)> {
        std::mem::take(&mut self.accepted)
    }

    /// Every stored signed change of a topic, in log order per document.
    pub fn changes(&self, topic: &TopicId) -> Result<Vec<SignedChange>> {
        let mut out = Vec::new();
        for doc in self.doc_ids(topic)? {
            let prefix = layout::key(layout::LOG, topic, &[&layout::doc(&doc)]);
            for item in scan(self.backend(), &prefix) {
                let (_, hash) = item?;
                let key = layout::key(layout::CHANGE, topic, &[&hash]);
                if let Some(bytes) = self.backend.get(&key)? {
                    out.push(decode_change(&key, &bytes)?);
                }
            }
        }
        Ok(out)
    }
}
