//! Imported records: only an admin writes an alias, as of the charter heads it names, and the
//! verdict is the same whatever the admin's role became later.

mod support;

use catchment_crdt::charter;
use catchment_crdt::journal;
use catchment_crdt::schema::{Draft, Kind, Role};
use catchment_crdt::validate::{Rejection, Wait};
use support::*;

fn aliased(alias: &str) -> Draft {
    Draft {
        title: "Imported question".into(),
        body: "From the dump.".into(),
        alias: Some(alias.into()),
        ..Draft::default()
    }
}

#[test]
fn only_an_admin_at_the_named_heads_writes_aliased_records() {
    let admin = key(1);
    let member = key(2);
    let mut topic = found(&admin, "Imports");
    join(&mut topic, &admin, &member, T0 + 1);
    let heads = topic.charter.get_heads();

    // A member that is no admin: with or without a mark naming heads, refused.
    let unmarked = topic.write(&member, journal_of(&member, 0), T0 + 2, |tx| {
        journal::put_contribution(tx, &entry(1), Kind::Question, &aliased("user1"), T0)
    });
    assert_eq!(
        topic.ingest(&unmarked),
        Outcome::Invalid(Rejection::NotAnImporter(member.member_id()))
    );
    let marked = topic.write(&member, journal_of(&member, 0), T0 + 2, |tx| {
        journal::put_imported(tx, &entry(1), Kind::Question, &aliased("user1"), T0, &heads)
    });
    assert_eq!(
        topic.ingest(&marked),
        Outcome::Invalid(Rejection::NotAnImporter(member.member_id()))
    );
    let vote = topic.write(&member, journal_of(&member, 0), T0 + 2, |tx| {
        journal::put_vote(tx, &entry(2), &entry(1), 1, "voter7", &heads)
    });
    assert_eq!(
        topic.ingest(&vote),
        Outcome::Invalid(Rejection::NotAnImporter(member.member_id()))
    );

    // The admin without the mark: refused; with it: accepted.
    let unmarked = topic.write(&admin, journal_of(&admin, 0), T0 + 3, |tx| {
        journal::put_contribution(tx, &entry(1), Kind::Question, &aliased("user1"), T0)
    });
    assert_eq!(
        topic.ingest(&unmarked),
        Outcome::Invalid(Rejection::NotAnImporter(admin.member_id()))
    );
    let marked = topic.write(&admin, journal_of(&admin, 0), T0 + 3, |tx| {
        journal::put_imported(tx, &entry(1), Kind::Question, &aliased("user1"), T0, &heads)?;
        journal::put_vote(tx, &entry(2), &entry(1), -1, "voter7", &heads)
    });
    accept(&mut topic, &marked);
    let derived = topic.derive();
    let question = derived
        .contributions
        .iter()
        .find(|c| c.id == entry(1))
        .expect("the imported question");
    assert_eq!(question.alias.as_deref(), Some("user1"));
    let journal = topic.doc(journal_of(&admin, 0));
    let vote = journal::read_vote(&journal, admin.member_id(), 0, &entry(2)).expect("the vote");
    assert_eq!((vote.value, vote.alias.as_deref()), (-1, Some("voter7")));
}

#[test]
fn the_verdict_reads_the_named_heads_not_the_current_charter() {
    let admin = key(1);
    let other = key(3);
    let mut topic = found(&admin, "Imports");
    join(&mut topic, &admin, &other, T0 + 1);
    // `other` becomes admin, and these are the heads at which it is one.
    let promote = topic.write(&admin, catchment_crdt::DocId::Charter, T0 + 2, |tx| {
        charter::set_role(tx, &other.member_id(), Some(Role::Admin))
    });
    accept(&mut topic, &promote);
    let as_admin = topic.charter.get_heads();
    // Later it is made a member again.
    let demote = topic.write(&other, catchment_crdt::DocId::Charter, T0 + 3, |tx| {
        charter::set_role(tx, &other.member_id(), Some(Role::Member))
    });
    accept(&mut topic, &demote);

    // Records it imported while an admin stay valid on every node that sees them now.
    let imported = topic.write(&other, journal_of(&other, 0), T0 + 4, |tx| {
        journal::put_imported(
            tx,
            &entry(5),
            Kind::Question,
            &aliased("user5"),
            T0,
            &as_admin,
        )
    });
    accept(&mut topic, &imported);

    // Heads this node has not seen: the change waits for them.
    let unseen = automerge::ChangeHash([7; 32]);
    let waiting = topic.write(&admin, journal_of(&admin, 0), T0 + 5, |tx| {
        journal::put_imported(
            tx,
            &entry(6),
            Kind::Question,
            &aliased("user6"),
            T0,
            &[unseen],
        )
    });
    assert_eq!(
        topic.ingest(&waiting),
        Outcome::Pending(Wait::Charter(vec![unseen]))
    );
}
