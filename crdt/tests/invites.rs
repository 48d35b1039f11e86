//! Admission by invite: a grant is checked (issuer, signature, expiry, topic, proof, charter
//! heads); an invite naming charter heads not yet here waits for them; and admissions beyond a
//! one-use invite or outside a revoked invite's list are quarantined until an admin decides.

mod support;

use std::collections::BTreeMap;

use catchment_crdt::charter::{self, Decision};
use catchment_crdt::genesis;
use catchment_crdt::invite::{prove_admission, Grant};
use catchment_crdt::journal;
use catchment_crdt::membership::{Quarantine, Status};
use catchment_crdt::schema::{AdmissionClaim, Draft, Kind, Role};
use catchment_crdt::validate::{self, Admission, Wait};
use catchment_crdt::{DocId, SignedChange, TopicId};

use support::*;

// ---------------------------------------------------------------------------------------------
// 1. Invites.

#[test]
fn invite_grants_are_checked() {
    let a = key(1);
    let b = key(2);
    let mut topic = found(&a, "t");
    join(&mut topic, &a, &b, T0 + 1);
    let id = topic.id;
    let joiner = key(3);

    // Signed by a member who is no admin.
    let (grant_b, invite_b) = grant(&topic, &b, None, None);
    grant_b.verify().unwrap();
    assert_bad_admission(
        topic.ingest(&invite_journal(&id, &joiner, &grant_b, &invite_b, T0 + 2)),
        "admin",
    );

    // Tampered with: raised to admin, or given a later expiry.
    let (good, invite) = grant(&topic, &a, Some(3), Some(T0 + 100));
    for (at, value) in [(65, Role::Admin as u8), (66, 0x7f)] {
        let mut bytes = good.to_bytes();
        bytes[at] = value;
        let claim = AdmissionClaim::Invite {
            grant: bytes,
            proof: prove_admission(&invite, &id, &joiner.member_id()).to_vec(),
        };
        let (_, first) = genesis::start_journal(&joiner, &id, 0, Some(&claim), T0 + 2).unwrap();
        assert_bad_admission(topic.ingest(&first), "signature");
    }
    let truncated = AdmissionClaim::Invite {
        grant: good.to_bytes()[..40].to_vec(),
        proof: vec![0; 64],
    };
    let (_, first) = genesis::start_journal(&joiner, &id, 0, Some(&truncated), T0 + 2).unwrap();
    assert_bad_admission(topic.ingest(&first), "malformed");

    // Expired: joined after the expiry.
    assert_bad_admission(
        topic.ingest(&invite_journal(&id, &joiner, &good, &invite, T0 + 101)),
        "expired",
    );

    // For another topic, signed by this topic's admin at this topic's heads.
    let elsewhere = TopicId([7; 32]);
    let (foreign, foreign_invite) = Grant::issue(
        &a,
        elsewhere,
        Role::Member,
        None,
        None,
        T0,
        topic.charter.get_heads(),
    );
    let claim = AdmissionClaim::Invite {
        grant: foreign.to_bytes(),
        proof: prove_admission(&foreign_invite, &id, &joiner.member_id()).to_vec(),
    };
    let (_, first) = genesis::start_journal(&joiner, &id, 0, Some(&claim), T0 + 2).unwrap();
    assert_bad_admission(topic.ingest(&first), "another topic");

    // A proof by another invite key, a proof for another member, a proof that is no signature.
    let (_, stray) = grant(&topic, &a, None, None);
    for proof in [
        prove_admission(&stray, &id, &joiner.member_id()).to_vec(),
        prove_admission(&invite, &id, &b.member_id()).to_vec(),
        prove_admission(&invite, &elsewhere, &joiner.member_id()).to_vec(),
        vec![1; 63],
    ] {
        let claim = AdmissionClaim::Invite {
            grant: good.to_bytes(),
            proof,
        };
        let (_, first) = genesis::start_journal(&joiner, &id, 0, Some(&claim), T0 + 2).unwrap();
        assert_bad_admission(topic.ingest(&first), "proof");
    }

    // A grant naming no charter heads can never admit anyone.
    let (headless, headless_invite) = Grant::issue(&a, id, Role::Member, None, None, T0, vec![]);
    let first = invite_journal(&id, &joiner, &headless, &headless_invite, T0 + 2);
    assert_bad_admission(topic.ingest(&first), "charter heads");

    assert!(!topic.admissions.contains_key(&joiner.member_id()));
    assert!(!topic.journals.contains_key(&journal_of(&joiner, 0)));

    // Joined exactly at the expiry is still in time.
    assert_eq!(
        topic.ingest(&invite_journal(&id, &joiner, &good, &invite, T0 + 100)),
        Outcome::Valid(Some(Admission {
            member: joiner.member_id(),
            role: Role::Member,
            invite: Some(invite.member_id()),
            uses: Some(3),
            joined: T0 + 100,
        }))
    );
}

#[test]
fn an_invite_naming_charter_heads_not_here_waits() {
    let a = key(1);
    let mut topic = found(&a, "t");
    let rename = topic.write(&a, DocId::Charter, T0 + 1, |tx| {
        charter::set_name(tx, "renamed")
    });
    let (grant, invite) = Grant::issue(
        &a,
        topic.id,
        Role::Member,
        None,
        None,
        T0 + 1,
        vec![hash_of(&rename)],
    );
    let joiner = key(3);
    let first = invite_journal(&topic.id, &joiner, &grant, &invite, T0 + 2);

    assert_eq!(
        topic.ingest(&first),
        Outcome::Pending(Wait::Charter(vec![hash_of(&rename)]))
    );

    // The joiner keeps writing on its own copy; that waits for the admission to apply.
    let mut own = genesis::new_doc(&joiner);
    own.apply_changes([validate::decode(&first.bytes).unwrap()])
        .unwrap();
    let change = genesis::transact(&mut own, T0 + 3, |tx| {
        journal::put_contribution(tx, &entry(1), Kind::Idea, &Draft::default(), T0 + 3)
    })
    .unwrap();
    let later = SignedChange::sign(&joiner, &topic.id, journal_of(&joiner, 0), &change);
    assert_eq!(
        topic.ingest(&later),
        Outcome::Pending(Wait::Deps(vec![hash_of(&first)]))
    );
    assert_eq!(topic.ingest(&rename), Outcome::Valid(None));
    assert!(topic.ingest(&first).is_valid());
    assert_eq!(topic.ingest(&later), Outcome::Valid(None));
    assert_eq!(
        topic.statuses()[&joiner.member_id()],
        Status::Admitted(Role::Member)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Membership statuses.

#[test]
fn a_one_use_invite_admits_the_earlier_joiner_and_quarantines_the_other() {
    let a = key(1);
    let mut topic = found(&a, "t");
    let (one_use, invite) = grant(&topic, &a, Some(1), None);
    // The earlier joiner has the larger member id, so time, not id, decides.
    let (p, q) = {
        let (x, y) = (key(2), key(3));
        if x.member_id() > y.member_id() {
            (x, y)
        } else {
            (y, x)
        }
    };
    let p_first = invite_journal(&topic.id, &p, &one_use, &invite, T0 + 10);
    let q_first = invite_journal(&topic.id, &q, &one_use, &invite, T0 + 20);

    let mut other = Topic::new(topic.id);
    for signed in topic.log.clone() {
        accept(&mut other, &signed);
    }
    for (node, order) in [
        (&mut topic, [&p_first, &q_first]),
        (&mut other, [&q_first, &p_first]),
    ] {
        for first in order {
            assert!(
                node.ingest(first).is_valid(),
                "an over-limit admission is still valid"
            );
        }
    }
    let expected = BTreeMap::from([
        (a.member_id(), Status::Admitted(Role::Admin)),
        (p.member_id(), Status::Admitted(Role::Member)),
        (q.member_id(), Status::Quarantined(Quarantine::OverLimit)),
    ]);
    assert_eq!(topic.statuses(), expected);
    assert_eq!(other.statuses(), expected);

    // With equal join times the smaller member id wins.
    let (tied, tied_invite) = grant(&topic, &a, Some(1), None);
    let (r, s) = {
        let (x, y) = (key(4), key(5));
        if x.member_id() < y.member_id() {
            (x, y)
        } else {
            (y, x)
        }
    };
    let id = topic.id;
    accept(
        &mut topic,
        &invite_journal(&id, &s, &tied, &tied_invite, T0 + 30),
    );
    accept(
        &mut topic,
        &invite_journal(&id, &r, &tied, &tied_invite, T0 + 30),
    );
    assert_eq!(
        topic.statuses()[&r.member_id()],
        Status::Admitted(Role::Member)
    );
    assert_eq!(
        topic.statuses()[&s.member_id()],
        Status::Quarantined(Quarantine::OverLimit)
    );

    // An admin's decision settles it either way.
    let admit = topic.write(&a, DocId::Charter, T0 + 40, |tx| {
        charter::decide(tx, &q.member_id(), Decision::Admit)
    });
    accept(&mut topic, &admit);
    let refuse = topic.write(&a, DocId::Charter, T0 + 41, |tx| {
        charter::decide(tx, &s.member_id(), Decision::Refuse)
    });
    accept(&mut topic, &refuse);
    assert_eq!(
        topic.statuses()[&q.member_id()],
        Status::Admitted(Role::Member)
    );
    assert_eq!(topic.statuses()[&s.member_id()], Status::Refused);
    assert_eq!(
        topic.statuses()[&p.member_id()],
        Status::Admitted(Role::Member)
    );
}

#[test]
fn a_revoked_invite_quarantines_admissions_it_did_not_list() {
    let a = key(1);
    let mut topic = found(&a, "t");
    let (grant, invite) = grant(&topic, &a, None, None);
    let (listed, unlisted) = (key(2), key(3));
    let id = topic.id;
    accept(
        &mut topic,
        &invite_journal(&id, &listed, &grant, &invite, T0 + 10),
    );

    let revoke = topic.write(&a, DocId::Charter, T0 + 20, |tx| {
        let seen = std::collections::BTreeSet::from([listed.member_id()]);
        charter::revoke_invite(tx, &invite.member_id(), &seen, T0 + 20)
    });
    accept(&mut topic, &revoke);
    assert_eq!(topic.view.revoked[&invite.member_id()].admitted.len(), 1);

    // Joined offline before it heard of the revocation: valid, but quarantined.
    let late = invite_journal(&topic.id, &unlisted, &grant, &invite, T0 + 15);
    assert!(topic.ingest(&late).is_valid());
    assert_eq!(
        topic.statuses()[&listed.member_id()],
        Status::Admitted(Role::Member)
    );
    assert_eq!(
        topic.statuses()[&unlisted.member_id()],
        Status::Quarantined(Quarantine::Revoked)
    );
    assert!(!topic.statuses()[&unlisted.member_id()].is_visible());

    let admit = topic.write(&a, DocId::Charter, T0 + 30, |tx| {
        charter::decide(tx, &unlisted.member_id(), Decision::Admit)
    });
    accept(&mut topic, &admit);
    assert_eq!(
        topic.statuses()[&unlisted.member_id()],
        Status::Admitted(Role::Member)
    );
    assert!(topic.statuses()[&unlisted.member_id()].is_visible());
}
