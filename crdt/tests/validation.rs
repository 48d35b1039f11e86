//! What `validate` accepts and refuses in a single change, whoever wrote it: the ordinary flow
//! of valid changes, then signatures, author keys, the bytes themselves (size, decoding,
//! equivocation; also as property tests over random and bit-flipped bytes) and changes that wait
//! for their dependencies.
//!
//! Every change goes through the same path a node uses for local and remote changes alike (see
//! `support::Topic`), and a refused change is never applied.

mod support;

use std::collections::BTreeMap;

use automerge::{ActorId, Automerge};
use catchment_crdt::charter;
use catchment_crdt::genesis;
use catchment_crdt::journal;
use catchment_crdt::keys::KeyError;
use catchment_crdt::membership::Status;
use catchment_crdt::schema::{Draft, Endorsement, Kind, Profile, Role, Weights};
use catchment_crdt::validate::{self, Admission, Rejection, Wait, MAX_CHANGE_BYTES};
use catchment_crdt::{DocId, MemberId, SignedChange, TopicId};
use proptest::prelude::*;

use support::*;

// ---------------------------------------------------------------------------------------------
// 1. The ordinary flow.

#[test]
fn creator_and_invitee_write_valid_changes() {
    let creator = key(1);
    let mut topic = found(&creator, "Platform team ideas");
    assert_eq!(topic.view.name, "Platform team ideas");
    assert_eq!(topic.view.creator, Some(creator.member_id()));
    assert!(topic.view.is_admin(&creator.member_id()));
    assert_eq!(topic.view.weights, Weights::default());

    let question = post(&topic, &creator, &entry(1), Kind::Question, None, T0 + 10);
    assert_eq!(topic.ingest(&question), Outcome::Valid(None));
    let journal = &topic.journals[&journal_of(&creator, 0)];
    let read = journal::read_contribution(journal, creator.member_id(), 0, &entry(1)).unwrap();
    assert_eq!(read.kind, Kind::Question);
    assert_eq!(read.author, creator.member_id());
    assert_eq!(read.tags, vec!["build", "ci"]);
    assert_eq!(read.created, T0 + 10);

    let invitee = key(2);
    let (grant, invite) = grant(&topic, &creator, Some(5), Some(T0 + 1_000_000));
    let first = invite_journal(&topic.id, &invitee, &grant, &invite, T0 + 20);
    assert_eq!(
        topic.ingest(&first),
        Outcome::Valid(Some(Admission {
            member: invitee.member_id(),
            role: Role::Member,
            invite: Some(invite.member_id()),
            uses: Some(5),
            joined: T0 + 20,
        }))
    );

    let answer = post(
        &topic,
        &invitee,
        &entry(2),
        Kind::Answer,
        Some(&entry(1)),
        T0 + 30,
    );
    assert_eq!(topic.ingest(&answer), Outcome::Valid(None));
    let profile = Profile {
        name: "Ada".into(),
        about: "Builds the builds.".into(),
    };
    let set_profile = topic.write(&invitee, journal_of(&invitee, 0), T0 + 40, |tx| {
        journal::set_profile(tx, &profile)
    });
    assert_eq!(topic.ingest(&set_profile), Outcome::Valid(None));
    let endorse = topic.write(&invitee, journal_of(&invitee, 0), T0 + 50, |tx| {
        journal::endorse(tx, &entry(1), 1)
    });
    assert_eq!(topic.ingest(&endorse), Outcome::Valid(None));

    let derived = topic.derive();
    assert_eq!(derived.contributions.len(), 2);
    assert_eq!(
        derived
            .contributions
            .iter()
            .find(|c| c.id == entry(2))
            .unwrap()
            .parent,
        Some(entry(1))
    );
    assert_eq!(derived.profiles[&invitee.member_id()], profile);
    assert_eq!(
        derived.endorsements,
        vec![Endorsement {
            contribution: entry(1),
            endorser: invitee.member_id(),
            value: 1,
            journal: 0,
            alias: None,
        }]
    );
    assert_eq!(
        topic.statuses(),
        BTreeMap::from([
            (creator.member_id(), Status::Admitted(Role::Admin)),
            (invitee.member_id(), Status::Admitted(Role::Member)),
        ])
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Signatures.

#[test]
fn signatures_must_verify_for_this_topic_and_document() {
    let creator = key(1);
    let other = key(2);
    let mut topic = found(&creator, "t");
    let signed = post(&topic, &creator, &entry(1), Kind::Idea, None, T0 + 1);
    let change = validate::decode(&signed.bytes).unwrap();
    let heads = topic.heads();

    let refused = Outcome::Invalid(Rejection::BadSignature);
    for byte in [0, 31, 32, 63] {
        let mut flipped = signed.clone();
        flipped.signature[byte] ^= 0x01;
        assert_eq!(
            topic.ingest(&flipped),
            refused,
            "signature byte {byte} flipped"
        );
    }
    let missing = SignedChange {
        signature: [0; 64],
        ..signed.clone()
    };
    assert_eq!(topic.ingest(&missing), refused);

    let other_topic = SignedChange::sign(&creator, &TopicId([9; 32]), signed.doc, &change);
    assert_eq!(topic.ingest(&other_topic), refused);

    let for_journal_1 = SignedChange::sign(&creator, &topic.id, journal_of(&creator, 1), &change);
    let misdirected = SignedChange {
        doc: signed.doc,
        ..for_journal_1
    };
    assert_eq!(topic.ingest(&misdirected), refused);
    let redirected = SignedChange {
        doc: journal_of(&creator, 1),
        ..signed.clone()
    };
    assert_eq!(topic.ingest(&redirected), refused);
    let to_charter = SignedChange {
        doc: DocId::Charter,
        ..signed.clone()
    };
    assert_eq!(topic.ingest(&to_charter), refused);

    let by_another_key = SignedChange::sign(&other, &topic.id, signed.doc, &change);
    assert_eq!(topic.ingest(&by_another_key), refused);

    assert_eq!(topic.heads(), heads, "a refused change is never applied");
    assert_eq!(topic.ingest(&signed), Outcome::Valid(None));
}

/// The verdict on `signed` through `validate_decoded`, with `change` as its decoding and
/// `signature` as check 3 done beforehand.
fn judge_decoded(
    topic: &Topic,
    signed: &SignedChange,
    change: automerge::Change,
    signature: Option<validate::SignatureCheck>,
) -> Result<(), Rejection> {
    let empty = Automerge::new();
    let target = topic.journals.get(&signed.doc).unwrap_or(&empty);
    let admitted = |m: &MemberId| topic.admissions.contains_key(m);
    let ctx = validate::Context {
        topic: topic.id,
        charter: &topic.charter,
        charter_view: &topic.view,
        admitted: &admitted,
    };
    match validate::validate_decoded(&ctx, target, &|_| false, signed, change, signature) {
        validate::Verdict::Valid(_) => Ok(()),
        validate::Verdict::Invalid(rejection) => Err(rejection),
        validate::Verdict::Pending(wait) => panic!("pending: {wait:?}"),
    }
}

#[test]
fn a_signature_checked_beforehand_counts_only_for_its_own_change() {
    let creator = key(1);
    let topic = found(&creator, "t");
    let signed = post(&topic, &creator, &entry(1), Kind::Idea, None, T0 + 1);
    let change = validate::decode(&signed.bytes).unwrap();
    let check = |s: &SignedChange, t: &TopicId| {
        validate::SignatureCheck::start(t, s, &validate::decode(&s.bytes).unwrap()).verify()
    };

    // Checked beforehand or here: the same verdict.
    assert_eq!(judge_decoded(&topic, &signed, change.clone(), None), Ok(()));
    let good = check(&signed, &topic.id);
    assert_eq!(
        judge_decoded(&topic, &signed, change.clone(), Some(good)),
        Ok(())
    );

    // A good check handed in beside a forged signature, or beside the same change signed for
    // another topic or document, is not used: the signature is checked again and refused.
    let mut flipped = signed.clone();
    flipped.signature[40] ^= 0x01;
    let good = check(&signed, &topic.id);
    assert_eq!(
        judge_decoded(&topic, &flipped, change.clone(), Some(good)),
        Err(Rejection::BadSignature)
    );
    let other_topic = SignedChange::sign(&creator, &TopicId([9; 32]), signed.doc, &change);
    let made_elsewhere = check(&other_topic, &TopicId([9; 32]));
    assert_eq!(
        judge_decoded(&topic, &other_topic, change.clone(), Some(made_elsewhere)),
        Err(Rejection::BadSignature)
    );
    let good = check(&signed, &topic.id);
    let redirected = SignedChange {
        doc: journal_of(&creator, 1),
        ..signed.clone()
    };
    let redirected_change = validate::decode(&redirected.bytes).unwrap();
    assert_eq!(
        judge_decoded(&topic, &redirected, redirected_change, Some(good)),
        Err(Rejection::BadSignature)
    );

    // A failed check counts for its own change only, too.
    let bad = check(&flipped, &topic.id);
    assert_eq!(
        judge_decoded(&topic, &flipped, change.clone(), Some(bad)),
        Err(Rejection::BadSignature)
    );
    let bad = check(&flipped, &topic.id);
    assert_eq!(
        judge_decoded(&topic, &signed, change.clone(), Some(bad)),
        Ok(())
    );

    // A decoded change that is not the signed bytes is refused.
    let another = post(&topic, &creator, &entry(2), Kind::Idea, None, T0 + 2);
    let another_change = validate::decode(&another.bytes).unwrap();
    assert!(matches!(
        judge_decoded(&topic, &signed, another_change, None),
        Err(Rejection::Undecodable(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// 3. Author keys.

/// A change whose actor id is `actor`, starting the journal 0 of `owner`.
fn change_by_actor(actor: &[u8], owner: MemberId) -> automerge::Change {
    let mut doc = Automerge::new().with_actor(ActorId::from(actor));
    genesis::transact(&mut doc, T0, |tx| journal::init(tx, &owner, 0, None, T0)).unwrap()
}

#[test]
fn weak_and_malformed_author_keys_are_refused() {
    let creator = key(1);
    let mut topic = found(&creator, "t");

    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut order_two = [0xff; 32];
    order_two[0] = 0xec;
    order_two[31] = 0x7f;
    // Under the identity key, (R = identity, s = 0) passes a lax check for every message.
    let mut lax_forgery = [0u8; 64];
    lax_forgery[0] = 1;
    for weak in [identity, [0u8; 32], order_two] {
        let owner = MemberId(weak);
        let change = change_by_actor(&weak, owner);
        for signature in [lax_forgery, [0; 64], creator.sign(b"anything")] {
            let signed = SignedChange {
                doc: DocId::Journal {
                    member: owner,
                    n: 0,
                },
                bytes: change.raw_bytes().to_vec(),
                signature,
            };
            assert_eq!(topic.ingest(&signed), Outcome::Invalid(Rejection::WeakKey));
        }
    }

    let not_a_point = (2u8..=255)
        .map(|b| {
            let mut bytes = [0u8; 32];
            bytes[0] = b;
            bytes
        })
        .find(|bytes| MemberId(*bytes).verifying_key() == Err(KeyError::NotAKey))
        .expect("some small y is not on the curve");
    let short_actor = [7u8; 16];
    for actor in [&not_a_point[..], &short_actor[..]] {
        let change = change_by_actor(actor, creator.member_id());
        let signed = SignedChange {
            doc: journal_of(&creator, 0),
            bytes: change.raw_bytes().to_vec(),
            signature: [0; 64],
        };
        assert_eq!(topic.ingest(&signed), Outcome::Invalid(Rejection::NotAKey));
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Bytes.

#[test]
fn oversized_and_garbage_bytes_are_refused() {
    let creator = key(1);
    let mut topic = found(&creator, "t");
    let doc = journal_of(&creator, 0);

    let oversized = SignedChange {
        doc,
        bytes: vec![0x85; MAX_CHANGE_BYTES + 1],
        signature: [0; 64],
    };
    assert_eq!(
        topic.ingest(&oversized),
        Outcome::Invalid(Rejection::TooLarge {
            size: MAX_CHANGE_BYTES + 1,
            max: MAX_CHANGE_BYTES
        })
    );

    // A real change just over the limit, and the same change deflated to a few kilobytes.
    let body = "a".repeat(MAX_CHANGE_BYTES);
    let big = topic.write(&creator, doc, T0 + 1, |tx| {
        let draft = Draft {
            body: body.clone(),
            ..Draft::default()
        };
        journal::put_contribution(tx, &entry(1), Kind::Idea, &draft, T0 + 1)
    });
    assert!(matches!(
        topic.ingest(&big),
        Outcome::Invalid(Rejection::TooLarge { size, max: MAX_CHANGE_BYTES }) if size == big.bytes.len()
    ));
    let mut change = automerge::Change::from_bytes(big.bytes.clone()).unwrap();
    let deflated = SignedChange {
        bytes: change.bytes().into_owned(),
        ..big.clone()
    };
    assert!(deflated.bytes.len() < MAX_CHANGE_BYTES / 10);
    assert!(matches!(
        topic.ingest(&deflated),
        Outcome::Invalid(Rejection::Undecodable(_))
    ));

    let valid = post(&topic, &creator, &entry(2), Kind::Idea, None, T0 + 2);
    let mut trailing = valid.bytes.clone();
    trailing.push(0);
    let mut checksum = valid.bytes.clone();
    checksum[5] ^= 0x40;
    let garbage: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"not an automerge change".to_vec(),
        vec![0x85, 0x6f, 0x4a, 0x83],
        valid.bytes[..valid.bytes.len() - 3].to_vec(),
        trailing,
        checksum,
        topic.charter.save(),
        vec![0xff; 1000],
    ];
    for bytes in garbage {
        let signed = SignedChange {
            bytes,
            ..valid.clone()
        };
        let outcome = topic.ingest(&signed);
        assert!(
            matches!(outcome, Outcome::Invalid(Rejection::Undecodable(_))),
            "{outcome:?}"
        );
    }
    assert_eq!(topic.ingest(&valid), Outcome::Valid(None));
}

/// Two changes with one author and one sequence number (a key used on two devices, or a
/// dishonest member): both sign and validate, and `apply` refuses the second without panicking.
#[test]
fn an_equivocating_change_is_refused_when_applied() {
    let creator = key(1);
    let mut topic = found(&creator, "t");
    let one = post(&topic, &creator, &entry(1), Kind::Idea, None, T0 + 1);
    let other = post(&topic, &creator, &entry(2), Kind::Idea, None, T0 + 1);
    assert!(is_valid(&topic.judge(&one)));
    assert!(is_valid(&topic.judge(&other)));
    accept(&mut topic, &one);

    let mut journal = topic.journals[&journal_of(&creator, 0)].clone();
    let change = validate::decode(&other.bytes).unwrap();
    assert!(matches!(
        validate::apply(&mut journal, vec![change]),
        Err(Rejection::Apply(_))
    ));
    assert_eq!(journal.get_heads(), vec![hash_of(&one)]);
}

// ---------------------------------------------------------------------------------------------
// 5. Dependencies.

#[test]
fn changes_wait_for_their_dependencies() {
    let a = key(1);
    let mut topic = found(&a, "t");
    let (genesis, opening) = (topic.log[0].clone(), topic.log[1].clone());

    let c1 = post(&topic, &a, &entry(1), Kind::Idea, None, T0 + 1);
    accept(&mut topic, &c1);
    let c2 = post(&topic, &a, &entry(2), Kind::Idea, None, T0 + 2);
    accept(&mut topic, &c2);
    let x1 = topic.write(&a, DocId::Charter, T0 + 3, |tx| {
        charter::set_name(tx, "one")
    });
    accept(&mut topic, &x1);
    let x2 = topic.write(&a, DocId::Charter, T0 + 4, |tx| {
        charter::set_name(tx, "two")
    });
    accept(&mut topic, &x2);

    let mut fresh = Topic::new(topic.id);
    // The creator's admission names the genesis, which is not here yet.
    assert_eq!(
        fresh.ingest(&opening),
        Outcome::Pending(Wait::Charter(vec![topic.id.genesis_hash()]))
    );
    assert_eq!(
        fresh.ingest(&x1),
        Outcome::Pending(Wait::Deps(vec![topic.id.genesis_hash()]))
    );
    accept(&mut fresh, &genesis);
    accept(&mut fresh, &opening);

    assert_eq!(
        fresh.ingest(&c2),
        Outcome::Pending(Wait::Deps(vec![hash_of(&c1)]))
    );
    assert_eq!(fresh.ingest(&c1), Outcome::Valid(None));
    assert_eq!(fresh.ingest(&c2), Outcome::Valid(None));
    assert_eq!(
        fresh.ingest(&x2),
        Outcome::Pending(Wait::Deps(vec![hash_of(&x1)]))
    );
    assert_eq!(fresh.ingest(&x1), Outcome::Valid(None));
    assert_eq!(fresh.ingest(&x2), Outcome::Valid(None));

    assert_eq!(fresh.view.name, "two");
    assert_eq!(fresh.derive(), topic.derive());
}

// ---------------------------------------------------------------------------------------------
// 6. Bytes, at random.

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// No bytes make validation panic, and none that are not a change pass for one.
    #[test]
    fn arbitrary_bytes_never_validate(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let creator = key(1);
        let mut topic = found(&creator, "t");
        let heads = topic.heads();
        let signed = SignedChange { doc: journal_of(&creator, 0), bytes, signature: [0; 64] };
        let outcome = topic.ingest(&signed);
        prop_assert!(matches!(outcome, Outcome::Invalid(Rejection::Undecodable(_))), "{:?}", outcome);
        prop_assert_eq!(topic.heads(), heads);
    }

    /// Flipping any bit of a signed change's bytes makes it undecodable; nothing is applied.
    #[test]
    fn a_flipped_bit_never_validates(at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let creator = key(1);
        let mut topic = found(&creator, "t");
        let signed = post(&topic, &creator, &entry(1), Kind::Idea, None, T0 + 1);
        let heads = topic.heads();
        let mut flipped = signed.clone();
        let at = at.index(flipped.bytes.len());
        flipped.bytes[at] ^= 1 << bit;
        let outcome = topic.ingest(&flipped);
        // Magic and chunk type fail to parse; any other flip leaves a checksum that no longer
        // matches the hash of what follows it.
        prop_assert!(
            matches!(outcome, Outcome::Invalid(Rejection::Undecodable(_))),
            "byte {}: {:?}", at, outcome
        );
        prop_assert_eq!(topic.heads(), heads);
        prop_assert_eq!(topic.ingest(&signed), Outcome::Valid(None));
    }
}
