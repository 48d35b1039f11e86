//! Who may write what: only admitted members write journals, and only their own; only admins
//! change the charter, and a genesis must make its author the admin; a removal pins the removed
//! member's journals, so nothing beyond the pins is taken.

mod support;

use std::collections::BTreeMap;

use automerge::ActorId;
use catchment_crdt::charter;
use catchment_crdt::genesis;
use catchment_crdt::journal;
use catchment_crdt::membership::Status;
use catchment_crdt::schema::{AdmissionClaim, Ask, Draft, Edit, Kind, Profile, Role, Weights};
use catchment_crdt::validate::{self, Admission, Rejection, Wait};
use catchment_crdt::{DocId, SignedChange, TopicId};

use support::*;

// ---------------------------------------------------------------------------------------------
// 1. Membership.

#[test]
fn only_members_write_journals() {
    let creator = key(1);
    let stranger = key(3);
    let mut topic = found(&creator, "t");
    let genesis_heads = topic.charter.get_heads();
    let not_a_member = Outcome::Invalid(Rejection::NotAMember(stranger.member_id()));

    let (_, bare) = genesis::start_journal(&stranger, &topic.id, 0, None, T0 + 1).unwrap();
    assert_eq!(topic.ingest(&bare), not_a_member);

    let claim_at_genesis = role_journal(&topic, &stranger, T0 + 1);
    assert_eq!(topic.ingest(&claim_at_genesis), not_a_member);

    let (_, journal_1) = genesis::start_journal(&stranger, &topic.id, 1, None, T0 + 1).unwrap();
    assert_eq!(
        topic.ingest(&journal_1),
        Outcome::Pending(Wait::Admission(stranger.member_id()))
    );

    let no_heads = AdmissionClaim::Role {
        charter_heads: vec![],
    };
    let (_, no_heads) =
        genesis::start_journal(&stranger, &topic.id, 0, Some(&no_heads), T0 + 1).unwrap();
    assert_bad_admission(topic.ingest(&no_heads), "charter heads");
    assert!(topic
        .journals
        .keys()
        .all(|doc| doc.journal_owner() != Some(stranger.member_id())));

    // An admin gives the stranger a role; a claim naming that change waits until it is here.
    let give_role = topic.write(&creator, DocId::Charter, T0 + 2, |tx| {
        charter::set_role(tx, &stranger.member_id(), Some(Role::Member))
    });
    let role_heads = vec![hash_of(&give_role)];
    let claim = AdmissionClaim::Role {
        charter_heads: role_heads.clone(),
    };
    let (_, claim) = genesis::start_journal(&stranger, &topic.id, 0, Some(&claim), T0 + 3).unwrap();
    assert_eq!(
        topic.ingest(&claim),
        Outcome::Pending(Wait::Charter(role_heads))
    );
    assert_eq!(topic.ingest(&give_role), Outcome::Valid(None));

    // The claim is judged at the heads it names: at the genesis the stranger had no role.
    assert_eq!(topic.charter.get_heads(), vec![hash_of(&give_role)]);
    let old_claim = AdmissionClaim::Role {
        charter_heads: genesis_heads,
    };
    let (_, old_claim) =
        genesis::start_journal(&stranger, &topic.id, 0, Some(&old_claim), T0 + 3).unwrap();
    assert_eq!(topic.ingest(&old_claim), not_a_member);

    assert_eq!(
        topic.ingest(&claim),
        Outcome::Valid(Some(Admission {
            member: stranger.member_id(),
            role: Role::Member,
            invite: None,
            uses: None,
            joined: T0 + 3,
        }))
    );
    assert_eq!(topic.ingest(&journal_1), Outcome::Valid(None));
    assert_eq!(
        topic.statuses()[&stranger.member_id()],
        Status::Admitted(Role::Member)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Journal ownership.

#[test]
fn nobody_writes_another_members_journal() {
    let a = key(1);
    let b = key(2);
    let mut topic = found(&a, "t");
    join(&mut topic, &a, &b, T0 + 1);
    let idea = post(&topic, &a, &entry(1), Kind::Idea, None, T0 + 2);
    accept(&mut topic, &idea);
    let heads = topic.heads();

    let theirs = journal_of(&a, 0);
    let refused = Outcome::Invalid(Rejection::NotYourJournal {
        author: b.member_id(),
        owner: a.member_id(),
    });
    let contribution = topic.write(&b, theirs, T0 + 3, |tx| {
        journal::put_contribution(tx, &entry(2), Kind::Idea, &Draft::default(), T0 + 3)
    });
    assert_eq!(topic.ingest(&contribution), refused);
    let endorsement = topic.write(&b, theirs, T0 + 3, |tx| journal::endorse(tx, &entry(1), 1));
    assert_eq!(topic.ingest(&endorsement), refused);
    let profile = topic.write(&b, theirs, T0 + 3, |tx| {
        journal::set_profile(
            tx,
            &Profile {
                name: "not a".into(),
                about: String::new(),
            },
        )
    });
    assert_eq!(topic.ingest(&profile), refused);
    let edit = topic.write(&b, theirs, T0 + 3, |tx| {
        let edit = Edit {
            title: Some("defaced".into()),
            ..Edit::default()
        };
        journal::edit_contribution(tx, &entry(1), &edit, T0 + 3)
    });
    assert_eq!(topic.ingest(&edit), refused);
    let next_journal = topic.write(&b, journal_of(&a, 1), T0 + 3, |tx| {
        journal::init(tx, &a.member_id(), 1, None, T0 + 3)
    });
    assert_eq!(topic.ingest(&next_journal), refused);

    // Written under a's actor id but signed by b: the signature gives it away.
    let mut forged = topic.doc(theirs).with_actor(ActorId::from(a.member_id().0));
    let change = genesis::transact(&mut forged, T0 + 3, |tx| {
        journal::endorse(tx, &entry(1), -1)
    })
    .unwrap();
    let forged = SignedChange::sign(&b, &topic.id, theirs, &change);
    assert_eq!(
        topic.ingest(&forged),
        Outcome::Invalid(Rejection::BadSignature)
    );

    assert_eq!(topic.heads(), heads);
}

// ---------------------------------------------------------------------------------------------
// 3. The charter.

#[test]
fn only_admins_change_the_charter() {
    let a = key(1);
    let b = key(2);
    let mut topic = found(&a, "t");
    join(&mut topic, &a, &b, T0 + 1);
    let not_an_admin = Outcome::Invalid(Rejection::NotAnAdmin(b.member_id()));
    let ask = Ask {
        id: entry(7),
        title: "Cut build time".into(),
        body: "By Friday.".into(),
        deadline: T0 + 100_000,
        created: T0 + 5,
        by: b.member_id(),
    };
    let weights = Weights {
        kudos: 9,
        ..Weights::default()
    };

    let promote_self = topic.write(&b, DocId::Charter, T0 + 5, |tx| {
        charter::set_role(tx, &b.member_id(), Some(Role::Admin))
    });
    assert_eq!(topic.ingest(&promote_self), not_an_admin);
    let put_ask = topic.write(&b, DocId::Charter, T0 + 5, |tx| charter::put_ask(tx, &ask));
    assert_eq!(topic.ingest(&put_ask), not_an_admin);
    let set_weights = topic.write(&b, DocId::Charter, T0 + 5, |tx| {
        charter::set_weights(tx, &weights)
    });
    assert_eq!(topic.ingest(&set_weights), not_an_admin);
    let hide = topic.write(&b, DocId::Charter, T0 + 5, |tx| {
        charter::set_hidden(tx, &entry(1), Some(("spam", &b.member_id(), T0 + 5)))
    });
    assert_eq!(topic.ingest(&hide), not_an_admin);
    assert_eq!(topic.view.roles.get(&b.member_id()), None);

    let promote = topic.write(&a, DocId::Charter, T0 + 6, |tx| {
        charter::set_role(tx, &b.member_id(), Some(Role::Admin))
    });
    assert_eq!(topic.ingest(&promote), Outcome::Valid(None));
    assert!(topic.view.is_admin(&b.member_id()));

    // Admin rights are judged at a change's dependencies: b's earlier writes stay refused.
    assert_eq!(topic.ingest(&set_weights), not_an_admin);
    let set_weights = topic.write(&b, DocId::Charter, T0 + 7, |tx| {
        charter::set_weights(tx, &weights)
    });
    assert_eq!(topic.ingest(&set_weights), Outcome::Valid(None));
    assert_eq!(topic.view.weights.kudos, 9);
    let put_ask = topic.write(&b, DocId::Charter, T0 + 7, |tx| charter::put_ask(tx, &ask));
    assert_eq!(topic.ingest(&put_ask), Outcome::Valid(None));
    assert_eq!(topic.view.asks[&entry(7)], ask);

    // A charter change that depends on nothing is a second genesis, even from an admin.
    let mut root = genesis::new_doc(&a);
    let change =
        genesis::transact(&mut root, T0 + 8, |tx| charter::set_name(tx, "hijacked")).unwrap();
    let root = SignedChange::sign(&a, &topic.id, DocId::Charter, &change);
    assert_eq!(
        topic.ingest(&root),
        Outcome::Invalid(Rejection::NotAnAdmin(a.member_id()))
    );
    assert_eq!(topic.view.name, "t");
}

#[test]
fn a_genesis_must_make_its_author_the_admin() {
    let forger = key(5);
    let victim = key(6);
    let mut doc = genesis::new_doc(&forger);
    let change = genesis::transact(&mut doc, T0, |tx| {
        charter::init(tx, "in someone else's name", &victim.member_id(), T0)
    })
    .unwrap();
    let id = TopicId(change.hash().0);
    let signed = SignedChange::sign(&forger, &id, DocId::Charter, &change);
    let mut topic = Topic::new(id);
    assert!(matches!(
        topic.ingest(&signed),
        Outcome::Invalid(Rejection::BadGenesis(_))
    ));

    // Another topic's genesis is not this topic's: it is a root change by a non-admin.
    let (other, _, other_genesis) = genesis::create_topic(&victim, "other", T0).unwrap();
    let mut topic = found(&forger, "mine");
    assert_ne!(other, topic.id);
    let replayed = SignedChange::sign(
        &victim,
        &topic.id,
        DocId::Charter,
        &validate::decode(&other_genesis.bytes).unwrap(),
    );
    assert_eq!(
        topic.ingest(&replayed),
        Outcome::Invalid(Rejection::NotAnAdmin(victim.member_id()))
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Removal.

#[test]
fn a_removal_pins_the_members_journals() {
    let a = key(1);
    let m = key(2);
    let mut topic = found(&a, "t");
    let (grant, invite) = grant(&topic, &a, None, None);
    let first = invite_journal(&topic.id, &m, &grant, &invite, T0 + 1);
    accept(&mut topic, &first);
    let c1 = post(&topic, &m, &entry(1), Kind::Idea, None, T0 + 2);
    accept(&mut topic, &c1);
    let c2 = post(&topic, &m, &entry(2), Kind::Idea, None, T0 + 3);
    accept(&mut topic, &c2);
    let promote = topic.write(&a, DocId::Charter, T0 + 4, |tx| {
        charter::set_role(tx, &m.member_id(), Some(Role::Admin))
    });
    accept(&mut topic, &promote);

    let pins = BTreeMap::from([(journal_of(&m, 0), vec![hash_of(&c2)])]);
    let removal = topic.write(&a, DocId::Charter, T0 + 5, |tx| {
        charter::remove_member(tx, &m.member_id(), &pins, &a.member_id(), T0 + 5)
    });
    assert_eq!(topic.ingest(&removal), Outcome::Valid(None));
    assert_eq!(topic.view.removed[&m.member_id()].pins, pins);
    assert_eq!(topic.view.removed[&m.member_id()].by, a.member_id());
    assert!(!topic.view.is_admin(&m.member_id()));
    assert_eq!(topic.statuses()[&m.member_id()], Status::Removed);

    let beyond = Outcome::Invalid(Rejection::BeyondRemoval(m.member_id()));
    let c3 = post(&topic, &m, &entry(3), Kind::Idea, None, T0 + 6);
    assert_eq!(topic.ingest(&c3), beyond);
    let (_, journal_1) = genesis::start_journal(&m, &topic.id, 1, None, T0 + 6).unwrap();
    assert_eq!(topic.ingest(&journal_1), beyond);
    let rename = topic.write(&m, DocId::Charter, T0 + 6, |tx| {
        charter::set_name(tx, "mine now")
    });
    assert_eq!(
        topic.ingest(&rename),
        Outcome::Invalid(Rejection::NotAnAdmin(m.member_id()))
    );

    // A node that learns of the removal first still takes what the pins cover, even while the
    // pinned head itself is not there yet, and refuses what lies beyond.
    let mut late = Topic::new(topic.id);
    let (charter_changes, journal_changes): (Vec<_>, Vec<_>) = topic
        .log
        .iter()
        .partition(|signed| signed.doc == DocId::Charter);
    for signed in charter_changes {
        accept(&mut late, signed);
    }
    assert_eq!(late.charter.get_heads(), topic.charter.get_heads());
    for signed in [&first, &c1] {
        assert!(late.ingest(signed).is_valid(), "within the pins");
    }
    assert_eq!(
        late.journals[&journal_of(&m, 0)].get_heads(),
        vec![hash_of(&c1)]
    );
    for signed in journal_changes {
        assert!(late.ingest(signed).is_valid(), "within the pins");
    }
    assert_eq!(late.ingest(&c3), beyond);
    assert_eq!(
        late.journals[&journal_of(&m, 0)].get_heads(),
        vec![hash_of(&c2)]
    );
}
