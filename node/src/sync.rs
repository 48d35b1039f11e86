//! The engine's side of anti-entropy (the protocol is `catchment_protocol::sync`): answering a
//! peer's requests ([`Engine::serve`]), and on the requesting side making the proof
//! ([`Engine::proof`]), planning what to ask for ([`Engine::plan`]), telling when two nodes
//! agree ([`Engine::in_sync`]) and storing what arrives ([`Engine::receive`]).
//!
//! Everything here is plain function calls over the store; the network layer carries the
//! messages. A session is stateless on the serving side: every request proves membership
//! again, and every `Changes` request says where the requester stands (its heads), so a session
//! dropped half way resumes from whatever arrived.
//!
//! What is served, and so what is advertised in `Heads`:
//!
//! * the charter;
//! * the journals of admitted members;
//! * a removed member's journals up to the heads its removal pinned (and only those of them
//!   this node holds): changes past the pins are refused by every node that knows the removal,
//!   so relaying them would only get this node scored down;
//! * never the journals of a quarantined or refused member (kept, not relayed: DESIGN.md,
//!   invariant 3).
//!
//! A requester is served only if it proves, for this connection, that it holds the key of a
//! member this node sees as admitted (a member with a charter role counts, as it does for local
//! writes). Every other refusal, an unknown tag included, reads the same ([`NOT_SERVED`]), so
//! a non-member cannot even tell whether this node holds the topic.

use std::collections::{BTreeMap, HashSet};

use automerge::ChangeHash;
use catchment_crdt::membership::Status;
use catchment_crdt::validate::Rejection;
use catchment_crdt::{DocId, MemberId, TopicId};
use catchment_protocol::envelope;
use catchment_protocol::sync::{
    DocHeads, Hash, Proof, SyncRequest, SyncResponse, Want, MAX_CHANGES_BYTES,
};
use tracing::{debug, warn};

use crate::engine::{Engine, Ingested};
use crate::error::Result;
use crate::store::layout;

/// The one refusal a peer gets when it is not served a topic, whatever the reason: unknown
/// tag, a proof that does not verify, or a member who is not admitted here.
pub const NOT_SERVED: &str = "not served: no topic here admits this proof";
/// How a refusal that tells a proven member its own standing begins.
pub const STANDING_PREFIX: &str = "your standing in this topic: ";
/// The refusal when this node failed to read its own store after admitting the peer.
pub const FAILED: &str = "the peer could not read its store; try again later";

/// How much of a document this node relays.
enum Relay {
    /// Everything it holds.
    All,
    /// The changes up to these heads (a removed member's pinned heads that are here).
    UpTo(Vec<ChangeHash>),
    /// Nothing.
    Nothing,
}

impl Engine {
    /// A proof that this node's member asks about `topic` over the connection from `requester`
    /// to `responder` (their libp2p PeerIds as bytes), carrying this member's admission when
    /// it has one, so that a peer that has not seen this member yet can check it first.
    pub fn proof(&mut self, topic: &TopicId, requester: &[u8], responder: &[u8]) -> Result<Proof> {
        let admission = self.admission_envelope(topic, &self.me)?;
        Ok(Proof::sign(
            &self.key, topic, admission, requester, responder,
        ))
    }

    /// The stored envelope of a member's admission: the first change logged in its journal 0.
    fn admission_envelope(&self, topic: &TopicId, member: &MemberId) -> Result<Option<Vec<u8>>> {
        let journal0 = layout::doc(&DocId::Journal {
            member: *member,
            n: 0,
        });
        let first = layout::key(layout::LOG, topic, &[&journal0, &0u64.to_be_bytes()]);
        let Some(hash) = self.backend.get(&first)? else {
            return Ok(None);
        };
        Ok(self
            .backend
            .get(&layout::key(layout::CHANGE, topic, &[&hash]))?)
    }

    /// Answers a peer's sync request. `requester` is the peer's PeerId and `responder` this
    /// node's, as bytes, as the transport authenticated them. Never fails: a failure turns into
    /// [`SyncResponse::Refused`]. Writes made here (an admission the proof brought) are flushed
    /// before the answer, like everything this node advertises.
    pub fn serve(
        &mut self,
        request: SyncRequest,
        requester: &[u8],
        responder: &[u8],
    ) -> SyncResponse {
        self.standing_told = None;
        let topic = match self.admit_requester(&request, requester, responder) {
            Ok(Some(topic)) => topic,
            Ok(None) => {
                return match self.standing_told.take() {
                    Some(standing) => refused(&standing),
                    None => refused(NOT_SERVED),
                }
            }
            Err(e) => {
                warn!(error = %e, "sync request failed before membership was settled");
                return refused(NOT_SERVED);
            }
        };
        // Heads are advertised and changes sent only once they are on disk (invariant 5).
        let answer = self.commit().and_then(|()| match request {
            SyncRequest::Heads { .. } => Ok(SyncResponse::Heads {
                docs: self.served_heads(&topic)?,
            }),
            SyncRequest::Changes {
                wants, max_bytes, ..
            } => self.served_changes(&topic, &wants, max_bytes),
        });
        answer.unwrap_or_else(|e| {
            warn!(topic = %topic.short(), error = %e, "serving a sync request failed");
            refused(FAILED)
        })
    }

    /// Finds the topic by its tag and checks the proof and the member's standing; `None` when
    /// the requester is not to be served.
    fn admit_requester(
        &mut self,
        request: &SyncRequest,
        requester: &[u8],
        responder: &[u8],
    ) -> Result<Option<TopicId>> {
        let Some(topic) = self.topic_by_tag(request.tag())? else {
            debug!(tag = ?request.tag(), "sync refused: unknown topic tag");
            return Ok(None);
        };
        let proof = request.proof();
        if let Err(e) = proof.verify(&topic, requester, responder) {
            debug!(topic = %topic.short(), error = %e, "sync refused: bad proof");
            return Ok(None);
        }
        let member = proof.member;

        // A member this node has not heard of yet brings its admission: it is validated like
        // any other change, then the member's standing is read again.
        if self.state(&topic)?.status(&member).is_none() {
            if let Some(admission) = &proof.admission {
                self.ingest_admission(&topic, &member, admission)?;
            }
        }

        let state = self.state(&topic)?;
        let admitted = match state.status(&member) {
            Some(Status::Admitted(_)) => true,
            Some(_) => false,
            // An admin gave this member a role before it opened its journal.
            None => {
                state.charter_view.roles.contains_key(&member)
                    && !state.charter_view.removed.contains_key(&member)
            }
        };
        if !admitted {
            debug!(
                topic = %topic.short(),
                member = %member.short(),
                status = ?state.status(&member),
                "sync refused: not an admitted member"
            );
            // A member that proved itself but waits for an admin (or was refused or removed)
            // is told its standing, so that its own node can say so; nobody else learns it.
            if let Some(status) = state.status(&member) {
                self.standing_told = Some(format!("{STANDING_PREFIX}{}", status.describe()));
            }
            return Ok(None);
        }
        Ok(Some(topic))
    }

    /// Ingests the admission a proof carries, if it is one: the first change of the member's
    /// own journal 0. Anything else in its place is ignored.
    fn ingest_admission(&mut self, topic: &TopicId, member: &MemberId, bytes: &[u8]) -> Result<()> {
        let Ok(signed) = envelope::decode(bytes) else {
            debug!(member = %member.short(), "the proof's admission does not decode");
            return Ok(());
        };
        if signed.doc
            != (DocId::Journal {
                member: *member,
                n: 0,
            })
        {
            debug!(member = %member.short(), doc = ?signed.doc, "the proof's admission is not its journal 0");
            return Ok(());
        }
        let report = self.ingest(topic, vec![signed])?;
        debug!(
            topic = %topic.short(),
            member = %member.short(),
            accepted = report.accepted.len(),
            rejected = ?report.rejected,
            "admission from a sync proof"
        );
        Ok(())
    }

    /// How much of `doc` this node relays (see the module docs).
    fn relay(&mut self, topic: &TopicId, doc: &DocId) -> Result<Relay> {
        let Some(owner) = doc.journal_owner() else {
            return Ok(Relay::All);
        };
        let state = self.state(topic)?;
        if let Some(removal) = state.charter_view.removed.get(&owner) {
            let pins = removal.pins.get(doc).cloned().unwrap_or_default();
            let mut here = Vec::with_capacity(pins.len());
            for pin in pins {
                if self.holds_change(topic, &pin.0)? {
                    here.push(pin);
                }
            }
            here.sort();
            return Ok(if here.is_empty() {
                Relay::Nothing
            } else {
                Relay::UpTo(here)
            });
        }
        Ok(match state.status(&owner) {
            Some(Status::Admitted(_)) => Relay::All,
            _ => Relay::Nothing,
        })
    }

    /// Whether this node stores the change.
    fn holds_change(&self, topic: &TopicId, hash: &Hash) -> Result<bool> {
        Ok(self
            .backend
            .get(&layout::key(layout::CHANGE, topic, &[hash]))?
            .is_some())
    }

    /// Whether this node stores any change of the document.
    fn holds_doc(&self, topic: &TopicId, doc: &DocId) -> Result<bool> {
        Ok(self
            .backend
            .get(&layout::key(layout::DOC, topic, &[&layout::doc(doc)]))?
            .is_some())
    }

    /// The heads of every document this node relays, by document.
    fn served_heads(&mut self, topic: &TopicId) -> Result<Vec<DocHeads>> {
        let mut out = Vec::new();
        for doc in self.doc_ids(topic)? {
            let heads = match self.relay(topic, &doc)? {
                Relay::All => self.doc_heads(topic, &doc)?,
                Relay::UpTo(pins) => pins,
                Relay::Nothing => continue,
            };
            if !heads.is_empty() {
                out.push(DocHeads {
                    doc,
                    heads: heads.into_iter().map(|h| h.0).collect(),
                });
            }
        }
        Ok(out)
    }

    /// The stored envelopes of the wanted documents' changes that the requester lacks, in the
    /// order the wants name the documents and dependencies first within each, up to the budget.
    fn served_changes(
        &mut self,
        topic: &TopicId,
        wants: &[Want],
        max_bytes: u32,
    ) -> Result<SyncResponse> {
        let budget = max_bytes.min(MAX_CHANGES_BYTES) as usize;
        let mut changes: Vec<Vec<u8>> = Vec::new();
        let mut size = 0;
        let mut seen = HashSet::new();
        for want in wants {
            // A document named twice is served once: repeats cost work and bring nothing.
            if !seen.insert(want.doc) || !self.holds_doc(topic, &want.doc)? {
                continue;
            }
            let relay = self.relay(topic, &want.doc)?;
            if matches!(relay, Relay::Nothing) {
                continue;
            }
            let hashes = self.with_doc(topic, &want.doc, |doc| {
                // Heads this node does not know say nothing about what the requester lacks.
                let have: Vec<ChangeHash> = want
                    .have
                    .iter()
                    .map(|h| ChangeHash(*h))
                    .filter(|h| doc.get_change_meta_by_hash(h).is_some())
                    .collect();
                // The changes not in the ancestry of `have`, in the order they were applied
                // here (dependencies first); the same set as `get_changes`, without rebuilding
                // the changes' bytes, which the store holds with their signatures.
                let mut hashes: Vec<ChangeHash> = doc
                    .get_changes_meta(&have)
                    .into_iter()
                    .map(|meta| meta.hash)
                    .collect();
                if let Relay::UpTo(pins) = &relay {
                    let beyond: HashSet<ChangeHash> = doc
                        .get_changes_meta(pins)
                        .into_iter()
                        .map(|meta| meta.hash)
                        .collect();
                    hashes.retain(|h| !beyond.contains(h));
                }
                hashes
            })?;
            for hash in hashes {
                let key = layout::key(layout::CHANGE, topic, &[&hash.0]);
                let Some(bytes) = self.backend.get(&key)? else {
                    // Not stored, so what follows may depend on it: leave the rest of this
                    // document for another session.
                    warn!(topic = %topic.short(), doc = ?want.doc, "a loaded change is not in the store");
                    break;
                };
                if !changes.is_empty() && size + bytes.len() > budget {
                    return Ok(SyncResponse::Changes {
                        changes,
                        more: true,
                    });
                }
                size += bytes.len();
                changes.push(bytes);
            }
        }
        Ok(SyncResponse::Changes {
            changes,
            more: false,
        })
    }

    /// What to ask a peer for, given the heads it advertised: every document where one of its
    /// heads is not stored here, with this node's heads of it, charter first, then each
    /// member's journals in number order (so admissions come before what needs them).
    ///
    /// A document can stay wanted when what the peer sends cannot be applied here (it waits
    /// for something the peer does not serve): a driver stops a session once a round stores
    /// nothing new.
    pub fn plan(&mut self, topic: &TopicId, their: &[DocHeads]) -> Result<Vec<Want>> {
        let mut wants = BTreeMap::new();
        for entry in their {
            if wants.contains_key(&entry.doc) {
                continue;
            }
            let mut lacking = false;
            for head in &entry.heads {
                if !self.holds_change(topic, head)? {
                    lacking = true;
                    break;
                }
            }
            if !lacking {
                continue;
            }
            let have = if self.holds_doc(topic, &entry.doc)? {
                self.doc_heads(topic, &entry.doc)?
            } else {
                Vec::new()
            };
            wants.insert(
                entry.doc,
                Want {
                    doc: entry.doc,
                    have: have.into_iter().map(|h| h.0).collect(),
                },
            );
        }
        Ok(wants.into_values().collect())
    }

    /// Whether this node's heads of every document it relays are exactly the peer's.
    pub fn in_sync(&mut self, topic: &TopicId, their: &[DocHeads]) -> Result<bool> {
        let ours = self.served_heads(topic)?;
        Ok(by_doc(&ours) == by_doc(their))
    }

    /// Validates and stores changes a peer sent (envelopes), then flushes. Envelopes that do
    /// not decode are counted as rejected with the rest.
    pub fn receive(&mut self, topic: &TopicId, changes: Vec<Vec<u8>>) -> Result<Ingested> {
        let mut signed = Vec::with_capacity(changes.len());
        let mut undecodable = Vec::new();
        for bytes in changes {
            match envelope::decode(&bytes) {
                Ok(change) => signed.push(change),
                Err(e) => undecodable.push(Rejection::Undecodable(e.to_string())),
            }
        }
        let mut report = self.ingest(topic, signed)?;
        report.rejected.extend(undecodable);
        self.commit()?;
        Ok(report)
    }
}

fn refused(reason: &str) -> SyncResponse {
    SyncResponse::Refused {
        reason: reason.to_string(),
    }
}

/// Heads by document, sorted, leaving out documents without any.
fn by_doc(docs: &[DocHeads]) -> BTreeMap<DocId, Vec<Hash>> {
    docs.iter()
        .filter(|d| !d.heads.is_empty())
        .map(|d| {
            let mut heads = d.heads.clone();
            heads.sort_unstable();
            heads.dedup();
            (d.doc, heads)
        })
        .collect()
}
