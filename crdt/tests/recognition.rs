//! Recognition: how a `Tally` credits contributions, endorsements, kudos and accepted answers,
//! ignoring self-praise, and how it ranks recipients with equal scores.

mod support;

use std::collections::BTreeMap;

use catchment_crdt::schema::{Contribution, Endorsement, Kind, Kudos, Weights};
use catchment_crdt::views::{Recipient, Tally};
use catchment_crdt::{CharterView, Keypair};

use support::*;

fn contribution(author: &Keypair, id: u64, kind: Kind, parent: Option<u64>) -> Contribution {
    Contribution {
        id: entry(id),
        author: author.member_id(),
        journal: 0,
        kind,
        title: String::new(),
        body: String::new(),
        tags: Vec::new(),
        parent: parent.map(entry),
        ask: None,
        created: T0,
        edited: None,
        retracted: false,
        accepted: None,
        alias: None,
    }
}

fn endorsement(by: &Keypair, id: u64, value: i8) -> Endorsement {
    Endorsement {
        contribution: entry(id),
        endorser: by.member_id(),
        value,
        journal: 0,
        alias: None,
    }
}

fn kudos(from: &Keypair, to: &Keypair, id: u64) -> Kudos {
    Kudos {
        id: entry(id),
        from: from.member_id(),
        to: to.member_id(),
        note: "thanks".into(),
        contribution: None,
        created: T0,
    }
}

#[test]
fn recognition_ignores_self_praise_and_credits_accepted_answers() {
    let (a, b, c) = (key(1), key(2), key(3));
    let charter = CharterView::default();
    let weights = Weights::default();
    let mut tally = Tally::default();
    tally.contribution(&charter, &contribution(&a, 1, Kind::Idea, None));
    tally.contribution(&charter, &contribution(&a, 2, Kind::Question, None));
    tally.contribution(&charter, &contribution(&b, 3, Kind::Answer, Some(2)));
    tally.contribution(&charter, &contribution(&a, 4, Kind::Answer, Some(2)));
    tally.contribution(&charter, &contribution(&c, 5, Kind::Answer, Some(1)));

    tally.endorsement(&charter, &endorsement(&a, 1, 1)); // self: nothing
    tally.endorsement(&charter, &endorsement(&b, 1, 1));
    tally.endorsement(&charter, &endorsement(&c, 1, 1));
    tally.endorsement(&charter, &endorsement(&c, 3, -1));
    tally.endorsement(&charter, &endorsement(&b, 3, 1)); // self: nothing
    tally.endorsement(&charter, &endorsement(&a, 99, 1)); // unknown contribution: nothing
    tally.kudos(&kudos(&a, &a, 10)); // self: nothing
    tally.kudos(&kudos(&c, &a, 11));
    tally.kudos(&kudos(&a, &b, 12));
    tally.kudos(&kudos(&b, &b, 13)); // self: nothing

    tally.accepted(&entry(2), &entry(3)); // b's answer to a's question
    tally.accepted(&entry(2), &entry(4)); // a's own answer: nothing
    tally.accepted(&entry(1), &entry(5)); // not a question: nothing

    let ranking: BTreeMap<Recipient, _> = tally.finish(&weights).into_iter().collect();
    let a_rec = &ranking[&Recipient::Member(a.member_id())];
    assert_eq!(
        a_rec.counts,
        BTreeMap::from([(Kind::Idea, 1), (Kind::Question, 1), (Kind::Answer, 1)])
    );
    assert_eq!((a_rec.endorsement, a_rec.kudos, a_rec.accepted), (2, 1, 0));
    assert_eq!(a_rec.score, 3 + 2 + 3 + 2 * 2 + 5);
    let b_rec = &ranking[&Recipient::Member(b.member_id())];
    assert_eq!((b_rec.endorsement, b_rec.kudos, b_rec.accepted), (-1, 1, 1));
    assert_eq!(b_rec.score, 3 - 2 + 5 + 10);
    let c_rec = &ranking[&Recipient::Member(c.member_id())];
    assert_eq!((c_rec.endorsement, c_rec.kudos, c_rec.accepted), (0, 0, 0));
    assert_eq!(c_rec.score, 3);
}

#[test]
fn recognition_ties_rank_by_recipient() {
    let keys: Vec<Keypair> = (1..=4).map(key).collect();
    let charter = CharterView::default();
    let mut tally = Tally::default();
    // Fed in reverse order of member id, with equal records each.
    let mut by_id: Vec<&Keypair> = keys.iter().collect();
    by_id.sort_by_key(|k| std::cmp::Reverse(k.member_id()));
    for (n, k) in by_id.iter().enumerate() {
        tally.contribution(&charter, &contribution(k, n as u64, Kind::Review, None));
    }
    let mut imported = contribution(&keys[0], 50, Kind::Review, None);
    imported.alias = Some("jira:alice".into());
    tally.contribution(&charter, &imported);
    let top = contribution(&keys[3], 60, Kind::Comment, None);
    tally.contribution(&charter, &top);

    let ranking = tally.finish(&Weights::default());
    let order: Vec<Recipient> = ranking.iter().map(|(r, _)| r.clone()).collect();
    let mut tied: Vec<Recipient> = keys
        .iter()
        .filter(|k| k.member_id() != keys[3].member_id())
        .map(|k| Recipient::Member(k.member_id()))
        .collect();
    tied.sort();
    let mut expected = vec![Recipient::Member(keys[3].member_id())];
    expected.extend(tied);
    expected.push(Recipient::Alias("jira:alice".into()));
    assert_eq!(order, expected);
    assert_eq!(ranking[0].1.score, 3 + 1);
    assert!(ranking[1..].iter().all(|(_, rec)| rec.score == 3));
}
