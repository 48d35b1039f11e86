//! Convergence: nodes that receive the same changes in any order, batching or repetition end
//! with the same documents and the same derived views.
//!
//! A scenario is a random sequence of steps (joins, posts, edits, endorsements, kudos, promotions,
//! charter edits, ...) by a few members, each writing on its own copies of its documents; its
//! changes are then delivered to fresh nodes shuffled, repeated and batched.

mod support;

use std::collections::BTreeSet;

use automerge::transaction::Transaction;
use automerge::{ActorId, Automerge, AutomergeError};
use catchment_crdt::charter;
use catchment_crdt::genesis;
use catchment_crdt::invite::{prove_admission, Grant};
use catchment_crdt::journal;
use catchment_crdt::membership::{Quarantine, Status};
use catchment_crdt::schema::{AdmissionClaim, Ask, Draft, Edit, Kind, Profile, Role, Weights};
use catchment_crdt::validate::Admission;
use catchment_crdt::{CharterView, DocId, Keypair, MemberId, SignedChange, TopicId};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use support::*;

/// The creator plus invitees.
const MEMBERS: u8 = 4;

/// One step of a scenario; indices are reduced modulo what exists when the step runs.
#[derive(Debug, Clone)]
enum Op {
    /// An invitee joins with its own invite from an admin, or with the shared one-use one.
    Join {
        member: u8,
        issuer: u8,
        shared: bool,
    },
    Post {
        actor: u8,
        kind: Kind,
        pick: u8,
    },
    Edit {
        actor: u8,
        pick: u8,
    },
    Retract {
        actor: u8,
        pick: u8,
    },
    Endorse {
        actor: u8,
        pick: u8,
        value: i8,
    },
    Kudos {
        actor: u8,
        to: u8,
        pick: Option<u8>,
    },
    Accept {
        actor: u8,
        pick: u8,
    },
    Profile {
        actor: u8,
    },
    Rollover {
        actor: u8,
    },
    Promote {
        actor: u8,
        member: u8,
    },
    Weight {
        actor: u8,
        which: u8,
        value: i8,
    },
    Ask {
        actor: u8,
    },
    Hide {
        actor: u8,
        pick: u8,
    },
    /// An admin merges the other admins' charter copies into its own.
    Sync {
        actor: u8,
    },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop::sample::select(Kind::ALL.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    let m = || 0..MEMBERS;
    prop_oneof![
        4 => (1..MEMBERS, m(), any::<bool>())
            .prop_map(|(member, issuer, shared)| Op::Join { member, issuer, shared }),
        6 => (m(), kind(), any::<u8>()).prop_map(|(actor, kind, pick)| Op::Post { actor, kind, pick }),
        2 => (m(), any::<u8>()).prop_map(|(actor, pick)| Op::Edit { actor, pick }),
        1 => (m(), any::<u8>()).prop_map(|(actor, pick)| Op::Retract { actor, pick }),
        3 => (m(), any::<u8>(), -1i8..=1)
            .prop_map(|(actor, pick, value)| Op::Endorse { actor, pick, value }),
        2 => (m(), m(), any::<Option<u8>>()).prop_map(|(actor, to, pick)| Op::Kudos { actor, to, pick }),
        2 => (m(), any::<u8>()).prop_map(|(actor, pick)| Op::Accept { actor, pick }),
        1 => m().prop_map(|actor| Op::Profile { actor }),
        1 => m().prop_map(|actor| Op::Rollover { actor }),
        3 => (m(), m()).prop_map(|(actor, member)| Op::Promote { actor, member }),
        3 => (m(), any::<u8>(), any::<i8>()).prop_map(|(actor, which, value)| Op::Weight { actor, which, value }),
        1 => m().prop_map(|actor| Op::Ask { actor }),
        1 => (m(), any::<u8>()).prop_map(|(actor, pick)| Op::Hide { actor, pick }),
        1 => m().prop_map(|actor| Op::Sync { actor }),
    ]
}

/// One member's device: its journals and, while an admin, its copy of the charter.
struct Writer {
    key: Keypair,
    joined: bool,
    journals: Vec<Automerge>,
    charter: Option<Automerge>,
}

impl Writer {
    /// Writes to journal `n`; `None` when the write changed nothing (e.g. the same
    /// endorsement again), as Automerge then makes no change.
    fn commit<F>(&mut self, topic: &TopicId, n: usize, at: i64, f: F) -> Option<SignedChange>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
    {
        let change = unchanged_is_none(genesis::transact(&mut self.journals[n], at, f))?;
        Some(SignedChange::sign(
            &self.key,
            topic,
            journal_of(&self.key, n as u32),
            &change,
        ))
    }

    /// Writes to this admin's copy of the charter.
    fn commit_charter<F>(&mut self, topic: &TopicId, at: i64, f: F) -> Option<SignedChange>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), AutomergeError>,
    {
        let charter = self.charter.as_mut().expect("an admin's charter");
        let change = unchanged_is_none(genesis::transact(charter, at, f))?;
        Some(SignedChange::sign(
            &self.key,
            topic,
            DocId::Charter,
            &change,
        ))
    }
}

fn unchanged_is_none(made: Result<automerge::Change, AutomergeError>) -> Option<automerge::Change> {
    match made {
        Ok(change) => Some(change),
        Err(AutomergeError::Fail) => None,
        Err(e) => panic!("transaction failed: {e}"),
    }
}

/// A contribution as the scenario wrote it.
struct Written {
    id: String,
    author: usize,
    journal: usize,
    kind: Kind,
    parent: Option<String>,
}

/// Every change of a scenario, in the order they were made.
struct Scenario {
    topic: TopicId,
    changes: Vec<SignedChange>,
    written: Vec<Written>,
    retracted: BTreeSet<String>,
    writers: Vec<Writer>,
}

fn build(ops: &[Op]) -> Scenario {
    let mut writers: Vec<Writer> = (0..MEMBERS)
        .map(|i| Writer {
            key: key(10 + i),
            joined: false,
            journals: Vec::new(),
            charter: None,
        })
        .collect();
    let (topic, charter, genesis_change) = genesis::create_topic(&writers[0].key, "t", T0).unwrap();
    let claim = AdmissionClaim::Role {
        charter_heads: charter.get_heads(),
    };
    let (journal, opening) =
        genesis::start_journal(&writers[0].key, &topic, 0, Some(&claim), T0).unwrap();
    let (shared, shared_invite) = Grant::issue(
        &writers[0].key,
        topic,
        Role::Member,
        None,
        Some(1),
        T0,
        charter.get_heads(),
    );
    writers[0].joined = true;
    writers[0].journals.push(journal);
    writers[0].charter = Some(charter);

    let mut changes = vec![genesis_change, opening];
    let mut written: Vec<Written> = Vec::new();
    let mut retracted = BTreeSet::new();
    let mut next_id = 0u64;
    let mut fresh_id = || {
        next_id += 1;
        entry(next_id)
    };

    for (step, op) in ops.iter().enumerate() {
        let at = T0 + 1_000 * (step as i64 + 1);
        let index = |i: u8| (i % MEMBERS) as usize;
        let actor = match op {
            Op::Join { member, .. } => index(*member),
            Op::Post { actor, .. }
            | Op::Edit { actor, .. }
            | Op::Retract { actor, .. }
            | Op::Endorse { actor, .. }
            | Op::Kudos { actor, .. }
            | Op::Accept { actor, .. }
            | Op::Profile { actor }
            | Op::Rollover { actor }
            | Op::Promote { actor, .. }
            | Op::Weight { actor, .. }
            | Op::Ask { actor }
            | Op::Hide { actor, .. }
            | Op::Sync { actor } => index(*actor),
        };
        if !matches!(op, Op::Join { .. }) && !writers[actor].joined {
            continue;
        }
        let is_admin = writers[actor].charter.is_some();
        let current = writers[actor].journals.len().saturating_sub(1);
        let signed = match op {
            Op::Join {
                issuer,
                shared: use_shared,
                ..
            } => {
                if writers[actor].joined {
                    continue;
                }
                let issuer = if writers[index(*issuer)].charter.is_some() {
                    index(*issuer)
                } else {
                    0
                };
                let heads = writers[issuer].charter.as_ref().unwrap().get_heads();
                let (grant, invite) = if *use_shared {
                    (
                        shared.clone(),
                        Keypair::from_bytes(&shared_invite.to_bytes()),
                    )
                } else {
                    Grant::issue(
                        &writers[issuer].key,
                        topic,
                        Role::Member,
                        None,
                        None,
                        at,
                        heads,
                    )
                };
                let w = &mut writers[actor];
                let claim = AdmissionClaim::Invite {
                    grant: grant.to_bytes(),
                    proof: prove_admission(&invite, &topic, &w.key.member_id()).to_vec(),
                };
                let (journal, first) =
                    genesis::start_journal(&w.key, &topic, 0, Some(&claim), at).unwrap();
                w.joined = true;
                w.journals.push(journal);
                Some(first)
            }
            Op::Post { kind, pick, .. } => {
                let questions: Vec<&Written> = written
                    .iter()
                    .filter(|w| w.kind == Kind::Question)
                    .collect();
                let (kind, parent) = match kind {
                    Kind::Answer if questions.is_empty() => (Kind::Idea, None),
                    Kind::Answer => (
                        Kind::Answer,
                        Some(questions[*pick as usize % questions.len()].id.clone()),
                    ),
                    Kind::Comment if !written.is_empty() => (
                        Kind::Comment,
                        Some(written[*pick as usize % written.len()].id.clone()),
                    ),
                    other => (*other, None),
                };
                let id = fresh_id();
                let draft = Draft {
                    title: format!("{kind} at {step}"),
                    body: format!("body {step}"),
                    tags: vec![format!("t{}", step % 3)],
                    parent: parent.clone(),
                    ..Draft::default()
                };
                let signed = writers[actor].commit(&topic, current, at, |tx| {
                    journal::put_contribution(tx, &id, kind, &draft, at)
                });
                if signed.is_some() {
                    written.push(Written {
                        id,
                        author: actor,
                        journal: current,
                        kind,
                        parent,
                    });
                }
                signed
            }
            Op::Edit { pick, .. } | Op::Retract { pick, .. } => {
                let own: Vec<&Written> = written.iter().filter(|w| w.author == actor).collect();
                if own.is_empty() {
                    continue;
                }
                let target = own[*pick as usize % own.len()];
                let (id, n) = (target.id.clone(), target.journal);
                if matches!(op, Op::Retract { .. }) {
                    let signed =
                        writers[actor].commit(&topic, n, at, |tx| journal::retract(tx, &id, at));
                    if signed.is_some() {
                        retracted.insert(id);
                    }
                    signed
                } else {
                    let edit = Edit {
                        title: Some(format!("edited at {step}")),
                        body: None,
                        tags: Some(vec![format!("e{}", step % 2)]),
                    };
                    writers[actor].commit(&topic, n, at, |tx| {
                        journal::edit_contribution(tx, &id, &edit, at)
                    })
                }
            }
            Op::Endorse { pick, value, .. } => {
                if written.is_empty() {
                    continue;
                }
                let id = written[*pick as usize % written.len()].id.clone();
                writers[actor].commit(&topic, current, at, |tx| journal::endorse(tx, &id, *value))
            }
            Op::Kudos { to, pick, .. } => {
                let to = if writers[index(*to)].joined {
                    index(*to)
                } else {
                    actor
                };
                let to = writers[to].key.member_id();
                let about = pick
                    .filter(|_| !written.is_empty())
                    .map(|p| written[p as usize % written.len()].id.clone());
                let id = fresh_id();
                writers[actor].commit(&topic, current, at, |tx| {
                    journal::put_kudos(tx, &id, &to, "thanks", about.as_deref(), at)
                })
            }
            Op::Accept { pick, .. } => {
                let choices: Vec<(String, usize, String)> = written
                    .iter()
                    .filter(|q| q.author == actor && q.kind == Kind::Question)
                    .flat_map(|q| {
                        written
                            .iter()
                            .filter(|a| {
                                a.parent.as_deref() == Some(q.id.as_str()) && a.kind == Kind::Answer
                            })
                            .map(|a| (q.id.clone(), q.journal, a.id.clone()))
                    })
                    .collect();
                if choices.is_empty() {
                    continue;
                }
                let (question, n, answer) = choices[*pick as usize % choices.len()].clone();
                writers[actor].commit(&topic, n, at, |tx| journal::accept(tx, &question, &answer))
            }
            Op::Profile { .. } => {
                let profile = Profile {
                    name: format!("member {actor} at {step}"),
                    about: String::new(),
                };
                writers[actor].commit(&topic, 0, at, |tx| journal::set_profile(tx, &profile))
            }
            Op::Rollover { .. } => {
                let n = writers[actor].journals.len() as u32;
                let (journal, first) =
                    genesis::start_journal(&writers[actor].key, &topic, n, None, at).unwrap();
                writers[actor].journals.push(journal);
                Some(first)
            }
            Op::Promote { member, .. } => {
                let member = index(*member);
                if !is_admin || !writers[member].joined || writers[member].charter.is_some() {
                    continue;
                }
                let id = writers[member].key.member_id();
                let signed = writers[actor].commit_charter(&topic, at, |tx| {
                    charter::set_role(tx, &id, Some(Role::Admin))
                });
                let copy = writers[actor]
                    .charter
                    .clone()
                    .unwrap()
                    .with_actor(ActorId::from(id.0));
                writers[member].charter = Some(copy);
                signed
            }
            Op::Weight { which, value, .. } => {
                if !is_admin {
                    continue;
                }
                let mut weights =
                    CharterView::read(writers[actor].charter.as_ref().unwrap()).weights;
                weights.set(
                    Weights::NAMES[*which as usize % Weights::NAMES.len()],
                    *value as i64,
                );
                writers[actor].commit_charter(&topic, at, |tx| charter::set_weights(tx, &weights))
            }
            Op::Ask { .. } => {
                if !is_admin {
                    continue;
                }
                let ask = Ask {
                    id: fresh_id(),
                    title: format!("ask {step}"),
                    body: String::new(),
                    deadline: at + 1_000_000,
                    created: at,
                    by: writers[actor].key.member_id(),
                };
                writers[actor].commit_charter(&topic, at, |tx| charter::put_ask(tx, &ask))
            }
            Op::Hide { pick, .. } => {
                if !is_admin || written.is_empty() {
                    continue;
                }
                let id = written[*pick as usize % written.len()].id.clone();
                let by = writers[actor].key.member_id();
                writers[actor].commit_charter(&topic, at, |tx| {
                    charter::set_hidden(tx, &id, Some(("off topic", &by, at)))
                })
            }
            Op::Sync { .. } => {
                if !is_admin {
                    continue;
                }
                let others: Vec<Automerge> = writers
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != actor)
                    .filter_map(|(_, w)| w.charter.clone())
                    .collect();
                let mine = writers[actor].charter.as_mut().unwrap();
                for mut other in others {
                    mine.merge(&mut other).unwrap();
                }
                continue;
            }
        };
        changes.extend(signed);
    }
    Scenario {
        topic,
        changes,
        written,
        retracted,
        writers,
    }
}

/// Delivers `changes` to a fresh node: shuffled, some repeated, in batches of random sizes,
/// retrying what waits until nothing more applies. Fails on any refusal or leftover.
fn deliver(topic: TopicId, changes: &[SignedChange], seed: u64) -> Result<Topic, String> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut queue = changes.to_vec();
    for _ in 0..rng.gen_range(0..=changes.len() / 2) {
        queue.push(changes[rng.gen_range(0..changes.len())].clone());
    }
    queue.shuffle(&mut rng);

    let mut node = Topic::new(topic);
    loop {
        let mut waiting = Vec::new();
        let mut progress = false;
        let mut rest = &queue[..];
        while !rest.is_empty() {
            let (batch, tail) = rest.split_at(rng.gen_range(1..=6).min(rest.len()));
            for (signed, outcome) in batch.iter().zip(node.ingest_batch(batch)) {
                match outcome {
                    Outcome::Valid(_) => progress = true,
                    Outcome::Pending(_) => waiting.push(signed.clone()),
                    Outcome::Invalid(rejection) => {
                        return Err(format!("{signed:?} refused: {rejection}"));
                    }
                }
            }
            rest = tail;
        }
        if waiting.is_empty() {
            return Ok(node);
        }
        if !progress {
            let waits: Vec<_> = waiting.iter().map(|s| node.judge(s)).collect();
            return Err(format!("{} changes still wait: {waits:?}", waiting.len()));
        }
        waiting.shuffle(&mut rng);
        queue = waiting;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Nodes that get the same changes, however ordered, batched and repeated, hold the same
    /// documents and derive the same views.
    #[test]
    fn every_delivery_order_converges(
        ops in prop::collection::vec(op(), 1..80),
        seeds in prop::collection::vec(any::<u64>(), 3),
    ) {
        let scenario = build(&ops);

        // In the order written, one at a time, every change is valid at once.
        let mut reference = Topic::new(scenario.topic);
        for signed in &scenario.changes {
            let outcome = reference.ingest(signed);
            prop_assert!(outcome.is_valid(), "{:?}: {:?}", signed, outcome);
        }
        let expected = reference.derive();

        // The reference holds what the writers wrote.
        for writer in scenario.writers.iter().filter(|w| w.joined) {
            for (n, journal) in writer.journals.iter().enumerate() {
                let doc = journal_of(&writer.key, n as u32);
                prop_assert_eq!(&expected.heads[&doc], &journal.get_heads());
            }
            prop_assert!(expected.admissions.contains_key(&writer.key.member_id()));
        }
        let ids: BTreeSet<&str> = expected.contributions.iter().map(|c| c.id.as_str()).collect();
        let written: BTreeSet<&str> = scenario.written.iter().map(|w| w.id.as_str()).collect();
        prop_assert_eq!(ids, written);
        let retracted: BTreeSet<String> =
            expected.contributions.iter().filter(|c| c.retracted).map(|c| c.id.clone()).collect();
        prop_assert_eq!(&retracted, &scenario.retracted);
        for w in &scenario.written {
            let c = expected.contributions.iter().find(|c| c.id == w.id).unwrap();
            prop_assert_eq!((c.author, c.journal as usize, c.kind), (scenario.writers[w.author].key.member_id(), w.journal, w.kind));
            prop_assert_eq!(&c.parent, &w.parent);
        }
        // Of those who joined with the shared one-use invite, the earliest is admitted and
        // the others wait for an admin, unless an admin gave them a role.
        let mut shared: Vec<&Admission> = expected.admissions.values().filter(|a| a.uses == Some(1)).collect();
        shared.sort_by_key(|a| (a.joined, a.member));
        let over_limit: BTreeSet<MemberId> = shared
            .iter()
            .skip(1)
            .map(|a| a.member)
            .filter(|m| !expected.charter.roles.contains_key(m))
            .collect();
        let quarantined: BTreeSet<MemberId> = expected
            .statuses
            .iter()
            .filter(|(_, s)| **s == Status::Quarantined(Quarantine::OverLimit))
            .map(|(m, _)| *m)
            .collect();
        prop_assert_eq!(quarantined, over_limit);

        for seed in seeds {
            let node = deliver(scenario.topic, &scenario.changes, seed);
            prop_assert!(node.is_ok(), "seed {}: {}", seed, node.err().unwrap_or_default());
            prop_assert_eq!(&node.unwrap().derive(), &expected, "seed {}", seed);
        }
    }
}
