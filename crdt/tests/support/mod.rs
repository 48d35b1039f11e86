//! An in-memory topic for tests: the documents one node holds, fed through the same gate as a
//! node feeds them (`validate` first, then `apply`), with no store and no network.
//!
//! Local writes take the same path as remote changes: [`Topic::write`] makes and signs a change
//! on a copy of the document, and the test passes it to [`Topic::ingest`].

#![allow(dead_code)]

use std::collections::BTreeMap;

use automerge::transaction::Transaction;
use automerge::{ActorId, Automerge, AutomergeError, Change, ChangeHash};
use catchment_crdt::charter::CharterView;
use catchment_crdt::genesis;
use catchment_crdt::invite::{prove_admission, Grant};
use catchment_crdt::journal;
use catchment_crdt::membership::{self, Status};
use catchment_crdt::schema::{
    AdmissionClaim, Contribution, Draft, Endorsement, Kind, Kudos, Profile, Role,
};
use catchment_crdt::validate::{self, Admission, Context, Rejection, Verdict, Wait};
use catchment_crdt::views::{Recipient, Recognition, Tally};
use catchment_crdt::{DocId, Keypair, MemberId, SignedChange, TopicId};

/// A claimed time everything in the tests starts from (milliseconds since the epoch).
pub const T0: i64 = 1_700_000_000_000;

/// What ingesting one change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; with the admission it carried, if it was a member's first change.
    Valid(Option<Admission>),
    /// Not applied: waits for something.
    Pending(Wait),
    /// Not applied: refused.
    Invalid(Rejection),
}

impl Outcome {
    /// Whether the change was applied.
    pub fn is_valid(&self) -> bool {
        matches!(self, Outcome::Valid(_))
    }
}

/// The documents of one topic as one node holds them.
pub struct Topic {
    /// The topic.
    pub id: TopicId,
    /// The charter document.
    pub charter: Automerge,
    /// The charter read at its current heads.
    pub view: CharterView,
    /// Journals by document id.
    pub journals: BTreeMap<DocId, Automerge>,
    /// Accepted admissions.
    pub admissions: BTreeMap<MemberId, Admission>,
    /// Every change applied, in the order it was applied.
    pub log: Vec<SignedChange>,
}

impl Topic {
    /// A node that knows the topic's id and holds none of its documents.
    pub fn new(id: TopicId) -> Self {
        Topic {
            id,
            charter: Automerge::new(),
            view: CharterView::default(),
            journals: BTreeMap::new(),
            admissions: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    /// The document `doc` as this node holds it (empty when it holds none).
    pub fn doc(&self, doc: DocId) -> Automerge {
        match doc {
            DocId::Charter => self.charter.clone(),
            journal => self.journals.get(&journal).cloned().unwrap_or_default(),
        }
    }

    /// The verdict on `signed` against the documents as they stand; applies nothing.
    pub fn judge(&self, signed: &SignedChange) -> Verdict {
        let empty = Automerge::new();
        let target = match signed.doc {
            DocId::Charter => &self.charter,
            journal => self.journals.get(&journal).unwrap_or(&empty),
        };
        let admitted = |member: &MemberId| self.admissions.contains_key(member);
        let ctx = Context {
            topic: self.id,
            charter: &self.charter,
            charter_view: &self.view,
            admitted: &admitted,
        };
        validate::validate(&ctx, target, signed)
    }

    /// Validates and, when valid, applies one change.
    pub fn ingest(&mut self, signed: &SignedChange) -> Outcome {
        self.ingest_batch(std::slice::from_ref(signed))
            .pop()
            .expect("one outcome per change")
    }

    /// Validates every change of `batch` against the documents as they stand before the batch,
    /// then applies the valid ones together, one `apply` per document, as a node applies small
    /// batches of remote changes.
    pub fn ingest_batch(&mut self, batch: &[SignedChange]) -> Vec<Outcome> {
        let verdicts: Vec<Verdict> = batch.iter().map(|signed| self.judge(signed)).collect();

        let mut by_doc: BTreeMap<DocId, Vec<Change>> = BTreeMap::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        for (signed, verdict) in batch.iter().zip(verdicts) {
            let outcome = match verdict {
                Verdict::Valid(accepted) => {
                    if let Some(admission) = &accepted.admission {
                        self.admissions.insert(admission.member, admission.clone());
                    }
                    by_doc.entry(signed.doc).or_default().push(accepted.change);
                    self.log.push(signed.clone());
                    Outcome::Valid(accepted.admission)
                }
                Verdict::Pending(wait) => Outcome::Pending(wait),
                Verdict::Invalid(rejection) => Outcome::Invalid(rejection),
            };
            outcomes.push(outcome);
        }

        for (doc, changes) in by_doc {
            let target = match doc {
                DocId::Charter => &mut self.charter,
                journal => self.journals.entry(journal).or_default(),
            };
            validate::apply(target, changes).expect("a valid change applies");
            if doc == DocId::Charter {
                self.view = CharterView::read(&self.charter);
            }
        }
        outcomes
    }

    /// Makes one change to `doc` as `key`, on a copy of the document as this node holds it, and
    /// signs it. Nothing is applied: pass the change to [`Topic::ingest`].
    pub fn write<F>(&self, key: &Keypair, doc: DocId, time: i64, f: F) -> SignedChange
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
    {
        let mut copy = self.doc(doc).with_actor(ActorId::from(key.member_id().0));
        let change = genesis::transact(&mut copy, time, f).expect("the transaction commits");
        SignedChange::sign(key, &self.id, doc, &change)
    }

    /// The current heads of every document held.
    pub fn heads(&self) -> BTreeMap<DocId, Vec<ChangeHash>> {
        let mut heads: BTreeMap<DocId, Vec<ChangeHash>> = self
            .journals
            .iter()
            .map(|(doc, journal)| (*doc, journal.get_heads()))
            .collect();
        heads.insert(DocId::Charter, self.charter.get_heads());
        heads
    }

    /// Every member's standing.
    pub fn statuses(&self) -> BTreeMap<MemberId, Status> {
        membership::statuses(&self.view, &self.admissions)
    }

    /// Everything a node derives from the documents, in a canonical order.
    pub fn derive(&self) -> Derived {
        let mut contributions = Vec::new();
        let mut endorsements: BTreeMap<(MemberId, String), Endorsement> = BTreeMap::new();
        let mut kudos = Vec::new();
        let mut profiles = BTreeMap::new();

        for (doc_id, doc) in &self.journals {
            let DocId::Journal { member, n } = *doc_id else {
                continue;
            };
            let entries = journal::all_entries(doc);
            for id in &entries.contributions {
                contributions.extend(journal::read_contribution(doc, member, n, id));
            }
            for id in &entries.endorsements {
                // A member's latest journal holds its current endorsement of a contribution.
                if let Some(e) = journal::read_endorsement(doc, member, n, id) {
                    let key = (member, id.clone());
                    if endorsements
                        .get(&key)
                        .is_none_or(|old| old.journal < e.journal)
                    {
                        endorsements.insert(key, e);
                    }
                }
            }
            for id in &entries.kudos {
                kudos.extend(journal::read_kudos(doc, member, id));
            }
            if n == 0 {
                profiles.insert(member, journal::read_profile(doc));
            }
        }
        contributions
            .sort_by(|a, b| (a.author, a.journal, &a.id).cmp(&(b.author, b.journal, &b.id)));
        kudos.sort_by(|a, b| (a.from, &a.id).cmp(&(b.from, &b.id)));
        let endorsements: Vec<Endorsement> = endorsements.into_values().collect();

        let statuses = self.statuses();
        let visible = |m: &MemberId| statuses.get(m).is_some_and(Status::is_visible);
        let mut tally = Tally::default();
        let shown: Vec<&Contribution> = contributions
            .iter()
            .filter(|c| visible(&c.author) && !c.retracted && !self.view.hidden.contains_key(&c.id))
            .collect();
        for c in &shown {
            tally.contribution(&self.view, c);
        }
        for e in endorsements.iter().filter(|e| visible(&e.endorser)) {
            tally.endorsement(&self.view, e);
        }
        for k in kudos.iter().filter(|k| visible(&k.from)) {
            tally.kudos(k);
        }
        for question in &shown {
            if let Some(answer) = &question.accepted {
                tally.accepted(&question.id, answer);
            }
        }
        let ranking = tally.finish(&self.view.weights);

        Derived {
            heads: self.heads(),
            charter: self.view.clone(),
            admissions: self.admissions.clone(),
            statuses,
            contributions,
            endorsements,
            kudos,
            profiles,
            ranking,
        }
    }
}

/// Everything derived from a topic's documents, comparable between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// Heads per document.
    pub heads: BTreeMap<DocId, Vec<ChangeHash>>,
    /// The charter.
    pub charter: CharterView,
    /// Accepted admissions.
    pub admissions: BTreeMap<MemberId, Admission>,
    /// Members' standing.
    pub statuses: BTreeMap<MemberId, Status>,
    /// Every contribution, by author, journal and id.
    pub contributions: Vec<Contribution>,
    /// Current endorsements, by endorser and contribution.
    pub endorsements: Vec<Endorsement>,
    /// Every kudos, by giver and id.
    pub kudos: Vec<Kudos>,
    /// Profiles by member.
    pub profiles: BTreeMap<MemberId, Profile>,
    /// The recognition leaderboard.
    pub ranking: Vec<(Recipient, Recognition)>,
}

/// Whether a verdict lets the change through.
pub fn is_valid(verdict: &Verdict) -> bool {
    matches!(verdict, Verdict::Valid(_))
}

/// The hash of a signed change (which must decode).
pub fn hash_of(signed: &SignedChange) -> ChangeHash {
    validate::decode(&signed.bytes)
        .expect("the change decodes")
        .hash()
}

/// Journal `n` of `key`'s member.
pub fn journal_of(key: &Keypair, n: u32) -> DocId {
    DocId::Journal {
        member: key.member_id(),
        n,
    }
}

/// A deterministic key, so that member ids (and so tie-breaks) are the same on every run.
pub fn key(seed: u8) -> Keypair {
    Keypair::from_bytes(&[seed; 32])
}

/// Creates a topic as `creator`: ingests the genesis and the creator's journal 0 (claiming the
/// admin role the genesis gives), and checks both are valid.
pub fn found(creator: &Keypair, name: &str) -> Topic {
    let (id, _, genesis) = genesis::create_topic(creator, name, T0).expect("genesis");
    let mut topic = Topic::new(id);
    assert_eq!(topic.ingest(&genesis), Outcome::Valid(None));

    let outcome = topic.ingest(&role_journal(&topic, creator, T0));
    assert_eq!(
        outcome,
        Outcome::Valid(Some(Admission {
            member: creator.member_id(),
            role: Role::Admin,
            invite: None,
            uses: None,
            joined: T0,
        }))
    );
    topic
}

/// The first change of `key`'s journal 0, claiming a role at the topic's current charter heads.
pub fn role_journal(topic: &Topic, key: &Keypair, joined: i64) -> SignedChange {
    let claim = AdmissionClaim::Role {
        charter_heads: topic.charter.get_heads(),
    };
    genesis::start_journal(key, &topic.id, 0, Some(&claim), joined)
        .expect("journal")
        .1
}

/// An invite grant issued by `admin` at the topic's current charter heads.
pub fn grant(
    topic: &Topic,
    admin: &Keypair,
    uses: Option<u32>,
    expires: Option<i64>,
) -> (Grant, Keypair) {
    Grant::issue(
        admin,
        topic.id,
        Role::Member,
        expires,
        uses,
        T0,
        topic.charter.get_heads(),
    )
}

/// The first change of `joiner`'s journal 0, self-admitting with `grant` and its invite key.
pub fn invite_journal(
    topic: &TopicId,
    joiner: &Keypair,
    grant: &Grant,
    invite: &Keypair,
    joined: i64,
) -> SignedChange {
    let claim = AdmissionClaim::Invite {
        grant: grant.to_bytes(),
        proof: prove_admission(invite, topic, &joiner.member_id()).to_vec(),
    };
    genesis::start_journal(joiner, topic, 0, Some(&claim), joined)
        .expect("journal")
        .1
}

/// Admits `joiner` with a fresh unlimited invite from `admin`, and checks it is valid.
pub fn join(topic: &mut Topic, admin: &Keypair, joiner: &Keypair, joined: i64) {
    let (grant, invite) = grant(topic, admin, None, None);
    let first = invite_journal(&topic.id, joiner, &grant, &invite, joined);
    let outcome = topic.ingest(&first);
    assert!(outcome.is_valid(), "joining: {outcome:?}");
}

/// Entry id number `n`, in the shape entry ids have.
pub fn entry(n: u64) -> String {
    format!("{n:016x}")
}

/// `key` posts a contribution to its journal 0.
pub fn post(
    topic: &Topic,
    key: &Keypair,
    id: &str,
    kind: Kind,
    parent: Option<&str>,
    at: i64,
) -> SignedChange {
    let draft = Draft {
        title: format!("{kind} {id}"),
        body: "Some *markdown*.".into(),
        tags: vec!["#Build".into(), "ci".into()],
        parent: parent.map(str::to_string),
        ..Draft::default()
    };
    topic.write(key, journal_of(key, 0), at, |tx| {
        journal::put_contribution(tx, id, kind, &draft, at)
    })
}

/// Ingests `signed`, which must be valid.
pub fn accept(topic: &mut Topic, signed: &SignedChange) {
    let outcome = topic.ingest(signed);
    assert!(
        outcome.is_valid(),
        "expected a valid change, got {outcome:?}"
    );
}

/// Asserts a refused admission whose reason mentions `why`.
pub fn assert_bad_admission(outcome: Outcome, why: &str) {
    match outcome {
        Outcome::Invalid(Rejection::BadAdmission(reason)) => {
            assert!(
                reason.contains(why),
                "reason {reason:?} does not mention {why:?}"
            )
        }
        other => panic!("expected BadAdmission({why:?}), got {other:?}"),
    }
}
