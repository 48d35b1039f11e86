//! The engine end to end, with several members whose engines exchange changes directly (the
//! network's job, from the next layer up): convergence, recognition rules, moderation,
//! removal, quarantine, reopening and rebuilding the index.

use catchment_crdt::membership::{Quarantine, Status};
use catchment_crdt::schema::{Draft, Edit, Kind, Profile, Role};
use catchment_crdt::views::Recipient;
use catchment_crdt::{MemberId, TopicId};
use catchment_node::query::FeedFilter;
use catchment_node::store::{layout, scan};
use catchment_node::{Engine, EngineError, Home, SledBackend};
use tempfile::TempDir;

struct Node {
    _dir: TempDir,
    path: std::path::PathBuf,
    engine: Engine,
}

fn node(name: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let engine = open(&path, name);
    Node {
        _dir: dir,
        path,
        engine,
    }
}

fn open(path: &std::path::Path, name: &str) -> Engine {
    let (home, _) = Home::init(path, Some(name)).unwrap();
    let backend = SledBackend::open(&home.store_dir()).unwrap();
    Engine::open(Box::new(backend), home.keypair().unwrap())
}

fn profile(name: &str) -> Profile {
    Profile {
        name: name.into(),
        about: String::new(),
    }
}

/// Sends every change `from` holds to `to`, as anti-entropy will.
fn send(from: &mut Node, to: &mut Node, topic: &TopicId) {
    let changes = from.engine.changes(topic).unwrap();
    let report = to.engine.ingest(topic, changes).unwrap();
    assert!(
        report.rejected.is_empty(),
        "rejected: {:?}",
        report.rejected
    );
    to.engine.commit().unwrap();
}

fn sync(a: &mut Node, b: &mut Node, topic: &TopicId) {
    send(a, b, topic);
    send(b, a, topic);
}

fn draft(title: &str, body: &str) -> Draft {
    Draft {
        title: title.into(),
        body: body.into(),
        ..Draft::default()
    }
}

fn reply(parent: &str, body: &str) -> Draft {
    Draft {
        body: body.into(),
        parent: Some(parent.into()),
        ..Draft::default()
    }
}

/// A topic created by `a`, joined by `b` with an invite.
fn two_members() -> (Node, Node, TopicId) {
    let mut a = node("Ada");
    let mut b = node("Bo");
    let topic = a
        .engine
        .create_topic("Platform team", &profile("Ada"))
        .unwrap();
    a.engine.commit().unwrap();
    let (grant, secret) = a
        .engine
        .create_invite(&topic, Role::Member, None, Some(1))
        .unwrap();
    send(&mut a, &mut b, &topic);
    b.engine.join(&grant, &secret, &profile("Bo")).unwrap();
    b.engine.commit().unwrap();
    send(&mut b, &mut a, &topic);
    (a, b, topic)
}

fn views(engine: &mut Engine, topic: &TopicId) -> serde_json::Value {
    let feed = engine
        .feed(
            topic,
            &FeedFilter {
                limit: 1000,
                ..FeedFilter::default()
            },
        )
        .unwrap();
    let board = engine.leaderboard(topic).unwrap();
    let threads: Vec<_> = feed
        .iter()
        .map(|i| engine.thread(topic, &i.id).unwrap())
        .collect();
    serde_json::json!({ "feed": feed, "board": board, "threads": threads })
}

fn recognition(
    engine: &mut Engine,
    topic: &TopicId,
    member: &MemberId,
) -> catchment_crdt::views::Recognition {
    engine
        .recognition(topic)
        .unwrap()
        .into_iter()
        .find(|(r, _)| *r == Recipient::Member(*member))
        .map(|(_, rec)| rec)
        .unwrap_or_default()
}

#[test]
fn two_members_converge_with_the_same_views() {
    let (mut a, mut b, topic) = two_members();
    let (ma, mb) = (a.engine.me(), b.engine.me());

    let q = b
        .engine
        .post(
            &topic,
            Kind::Question,
            draft("Why is CI slow?", "40 minutes"),
        )
        .unwrap();
    send(&mut b, &mut a, &topic);
    let ans = a
        .engine
        .post(&topic, Kind::Answer, reply(&q, "Cache the target dir"))
        .unwrap();
    a.engine.endorse(&topic, &q, 1).unwrap();
    send(&mut a, &mut b, &topic);
    b.engine.accept(&topic, &ans).unwrap();
    b.engine
        .kudos(&topic, &ma, "thanks for the cache tip", Some(&ans))
        .unwrap();
    b.engine
        .post(&topic, Kind::Comment, reply(&ans, "worked, 12 minutes now"))
        .unwrap();
    sync(&mut a, &mut b, &topic);

    assert_eq!(
        a.engine.heads(&topic).unwrap(),
        b.engine.heads(&topic).unwrap()
    );
    assert_eq!(views(&mut a.engine, &topic), views(&mut b.engine, &topic));

    let ra = recognition(&mut a.engine, &topic, &ma);
    assert_eq!(ra.counts.get(&Kind::Answer), Some(&1));
    assert_eq!((ra.accepted, ra.kudos, ra.endorsement), (1, 1, 0));
    let rb = recognition(&mut a.engine, &topic, &mb);
    assert_eq!(rb.counts.get(&Kind::Question), Some(&1));
    assert_eq!(rb.counts.get(&Kind::Comment), Some(&1));
    assert_eq!(rb.endorsement, 1);
    // Default weights: answer 3 + accepted 10 + kudos 5; question 2 + comment 1 + endorsement 2.
    assert_eq!((ra.score, rb.score), (18, 5));

    let thread = a.engine.thread(&topic, &q).unwrap();
    assert_eq!(thread.item.accepted.as_deref(), Some(ans.as_str()));
    assert_eq!(thread.replies[0].item.id, ans);
    assert_eq!(thread.replies[0].replies.len(), 1);
}

#[test]
fn answers_rank_accepted_first_then_by_score() {
    let (mut a, mut b, topic) = two_members();
    let mut c = node("Cy");
    let (grant, secret) = a
        .engine
        .create_invite(&topic, Role::Member, None, None)
        .unwrap();
    send(&mut a, &mut c, &topic);
    c.engine.join(&grant, &secret, &profile("Cy")).unwrap();
    send(&mut c, &mut a, &topic);

    let q = a
        .engine
        .post(&topic, Kind::Question, draft("Which cache?", ""))
        .unwrap();
    sync(&mut a, &mut b, &topic);
    sync(&mut a, &mut c, &topic);
    let first = b
        .engine
        .post(&topic, Kind::Answer, reply(&q, "sccache"))
        .unwrap();
    let second = c
        .engine
        .post(&topic, Kind::Answer, reply(&q, "a shared target dir"))
        .unwrap();
    sync(&mut b, &mut a, &topic);
    sync(&mut c, &mut a, &topic);
    sync(&mut a, &mut b, &topic);
    b.engine.endorse(&topic, &second, 1).unwrap();
    send(&mut b, &mut a, &topic);

    let order: Vec<String> = a
        .engine
        .thread(&topic, &q)
        .unwrap()
        .replies
        .into_iter()
        .map(|t| t.item.id)
        .collect();
    assert_eq!(
        order,
        vec![second.clone(), first.clone()],
        "higher score first"
    );
    a.engine.accept(&topic, &first).unwrap();
    let order: Vec<String> = a
        .engine
        .thread(&topic, &q)
        .unwrap()
        .replies
        .into_iter()
        .map(|t| t.item.id)
        .collect();
    assert_eq!(order, vec![first, second], "accepted first");
}

#[test]
fn retracted_and_hidden_contributions_stop_counting() {
    let (mut a, mut b, topic) = two_members();
    let mb = b.engine.me();
    let idea = b
        .engine
        .post(&topic, Kind::Idea, draft("Nightly builds", ""))
        .unwrap();
    let other = b
        .engine
        .post(&topic, Kind::Idea, draft("Spam-ish", ""))
        .unwrap();
    send(&mut b, &mut a, &topic);
    a.engine.endorse(&topic, &idea, 1).unwrap();
    assert_eq!(
        recognition(&mut a.engine, &topic, &mb)
            .counts
            .get(&Kind::Idea),
        Some(&2)
    );
    assert_eq!(recognition(&mut a.engine, &topic, &mb).endorsement, 1);

    a.engine.hide(&topic, &other, Some("off topic")).unwrap();
    assert_eq!(
        recognition(&mut a.engine, &topic, &mb)
            .counts
            .get(&Kind::Idea),
        Some(&1)
    );
    let thread = a.engine.thread(&topic, &other).unwrap();
    assert_eq!(
        thread.item.hidden.as_deref(),
        Some("off topic"),
        "admins see the reason"
    );
    send(&mut a, &mut b, &topic);
    assert!(matches!(
        b.engine.thread(&topic, &other),
        Err(EngineError::UnknownContribution(_))
    ));
    assert!(matches!(
        b.engine.hide(&topic, &idea, Some("x")),
        Err(EngineError::NotAdmin(_))
    ));

    b.engine.retract(&topic, &idea).unwrap();
    send(&mut b, &mut a, &topic);
    let rec = recognition(&mut a.engine, &topic, &mb);
    assert_eq!((rec.counts.get(&Kind::Idea), rec.endorsement), (None, 0));
    let feed = a.engine.feed(&topic, &FeedFilter::default()).unwrap();
    assert!(feed.iter().all(|i| i.id != idea && i.id != other));

    a.engine.hide(&topic, &other, None).unwrap();
    assert_eq!(
        recognition(&mut a.engine, &topic, &mb)
            .counts
            .get(&Kind::Idea),
        Some(&1)
    );
}

#[test]
fn edits_and_endorsement_changes_are_last_writer_wins() {
    let (mut a, mut b, topic) = two_members();
    let idea = b
        .engine
        .post(&topic, Kind::Idea, draft("Old title", "body"))
        .unwrap();
    send(&mut b, &mut a, &topic);
    assert!(matches!(
        a.engine.edit(
            &topic,
            &idea,
            Edit {
                title: Some("mine now".into()),
                ..Edit::default()
            }
        ),
        Err(EngineError::NotAuthor(..))
    ));
    b.engine
        .edit(
            &topic,
            &idea,
            Edit {
                title: Some("New title".into()),
                tags: Some(vec!["CI".into()]),
                ..Edit::default()
            },
        )
        .unwrap();
    a.engine.endorse(&topic, &idea, 1).unwrap();
    a.engine.endorse(&topic, &idea, 1).unwrap(); // the same again changes nothing, and is fine
    a.engine.endorse(&topic, &idea, -1).unwrap();
    sync(&mut a, &mut b, &topic);
    let item = b.engine.thread(&topic, &idea).unwrap().item;
    assert_eq!(
        (item.title.as_str(), item.tags.clone(), item.score),
        ("New title", vec!["ci".to_string()], -1)
    );
    let by_tag = b
        .engine
        .feed(
            &topic,
            &FeedFilter {
                tag: Some("#ci".into()),
                ..FeedFilter::default()
            },
        )
        .unwrap();
    assert_eq!(by_tag.len(), 1);
}

#[test]
fn reopening_gives_the_same_views() {
    let (mut a, mut b, topic) = two_members();
    for i in 0..40 {
        let id = b
            .engine
            .post(&topic, Kind::Idea, draft(&format!("idea {i}"), ""))
            .unwrap();
        if i % 3 == 0 {
            send(&mut b, &mut a, &topic);
            a.engine.endorse(&topic, &id, 1).unwrap();
        }
    }
    sync(&mut a, &mut b, &topic);
    let before = views(&mut a.engine, &topic);
    let heads = a.engine.heads(&topic).unwrap();
    let path = a.path.clone();
    drop(a.engine);
    let mut reopened = open(&path, "Ada");
    assert_eq!(reopened.heads(&topic).unwrap(), heads);
    assert_eq!(views(&mut reopened, &topic), before);
}

fn index_dump(engine: &Engine, topic: &TopicId) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for tag in layout::INDEX_TAGS {
        for item in scan(engine.backend(), &layout::prefix(tag, topic)) {
            out.push(item.unwrap());
        }
    }
    out
}

#[test]
fn rebuilding_the_index_gives_the_same_index() {
    let (mut a, mut b, topic) = two_members();
    let q = a
        .engine
        .post(&topic, Kind::Question, draft("q", ""))
        .unwrap();
    send(&mut a, &mut b, &topic);
    let ans = b.engine.post(&topic, Kind::Answer, reply(&q, "a")).unwrap();
    b.engine
        .kudos(&topic, &a.engine.me(), "thanks", None)
        .unwrap();
    b.engine
        .set_profile(&Profile {
            name: "Bo B.".into(),
            about: "builds".into(),
        })
        .unwrap();
    send(&mut b, &mut a, &topic);
    a.engine.accept(&topic, &ans).unwrap();
    a.engine.endorse(&topic, &ans, 1).unwrap();
    let idea = b
        .engine
        .post(&topic, Kind::Idea, draft("retract me", ""))
        .unwrap();
    b.engine.retract(&topic, &idea).unwrap();
    send(&mut b, &mut a, &topic);

    let before = index_dump(&a.engine, &topic);
    let views_before = views(&mut a.engine, &topic);
    catchment_node::index::rebuild(&mut a.engine, &topic).unwrap();
    assert_eq!(index_dump(&a.engine, &topic), before);
    assert_eq!(views(&mut a.engine, &topic), views_before);
}

#[test]
fn journals_roll_over_and_keep_everything() {
    let mut a = node("Ada");
    let topic = a.engine.create_topic("Big", &profile("Ada")).unwrap();
    let mut ids = Vec::new();
    for i in 0..600 {
        ids.push(
            a.engine
                .post(&topic, Kind::Idea, draft(&format!("idea {i}"), ""))
                .unwrap(),
        );
    }
    a.engine.commit().unwrap();
    let me = a.engine.me();
    let journals: Vec<u32> = a
        .engine
        .doc_ids(&topic)
        .unwrap()
        .into_iter()
        .filter_map(|d| match d {
            catchment_crdt::DocId::Journal { member, n } if member == me => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(journals, vec![0, 1, 2]);
    let feed = a
        .engine
        .feed(
            &topic,
            &FeedFilter {
                limit: 1000,
                ..FeedFilter::default()
            },
        )
        .unwrap();
    assert_eq!(feed.len(), 600);
    // An edit goes to the journal holding the contribution, wherever that is.
    a.engine
        .edit(
            &topic,
            &ids[3],
            Edit {
                body: Some("edited".into()),
                ..Edit::default()
            },
        )
        .unwrap();
    assert_eq!(
        a.engine.thread(&topic, &ids[3]).unwrap().item.body,
        "edited"
    );
}

#[test]
fn a_removed_members_later_changes_are_refused_and_earlier_ones_stay() {
    let (mut a, mut b, topic) = two_members();
    let mb = b.engine.me();
    let kept = b
        .engine
        .post(&topic, Kind::Idea, draft("before removal", ""))
        .unwrap();
    send(&mut b, &mut a, &topic);
    a.engine.remove_member(&topic, &mb).unwrap();
    // B, not yet aware, keeps writing.
    let late = b
        .engine
        .post(&topic, Kind::Idea, draft("after removal", ""))
        .unwrap();
    let changes = b.engine.changes(&topic).unwrap();
    let report = a.engine.ingest(&topic, changes).unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert!(matches!(report.rejected[0], catchment_crdt::Rejection::BeyondRemoval(m) if m == mb));
    assert!(a.engine.thread(&topic, &kept).is_ok());
    assert!(a.engine.thread(&topic, &late).is_err());

    send(&mut a, &mut b, &topic);
    assert!(matches!(
        b.engine.post(&topic, Kind::Idea, draft("x", "")),
        Err(EngineError::NotMember(_))
    ));
}

#[test]
fn a_one_use_invite_admits_one_and_quarantines_the_other_everywhere() {
    let mut a = node("Ada");
    let topic = a.engine.create_topic("T", &profile("Ada")).unwrap();
    let (grant, secret) = a
        .engine
        .create_invite(&topic, Role::Member, None, Some(1))
        .unwrap();
    let mut b = node("Bo");
    let mut c = node("Cy");
    send(&mut a, &mut b, &topic);
    send(&mut a, &mut c, &topic);
    b.engine.join(&grant, &secret, &profile("Bo")).unwrap();
    c.engine.join(&grant, &secret, &profile("Cy")).unwrap();
    b.engine
        .post(&topic, Kind::Idea, draft("from b", ""))
        .unwrap();
    c.engine
        .post(&topic, Kind::Idea, draft("from c", ""))
        .unwrap();
    sync(&mut b, &mut a, &topic);
    sync(&mut c, &mut a, &topic);
    sync(&mut a, &mut b, &topic);

    let statuses = |n: &mut Node| -> Vec<Status> {
        n.engine
            .members(&topic)
            .unwrap()
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    };
    let (sa, sb, sc) = (statuses(&mut a), statuses(&mut b), statuses(&mut c));
    assert_eq!(sa, sb);
    assert_eq!(sa, sc);
    let quarantined = sa
        .iter()
        .filter(|s| **s == Status::Quarantined(Quarantine::OverLimit))
        .count();
    assert_eq!((sa.len(), quarantined), (3, 1));
    // The quarantined member's idea is kept but not shown: one idea is visible.
    let feed = a.engine.feed(&topic, &FeedFilter::default()).unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(a.engine.counts(&topic).unwrap()["contributions"], 2);
}

#[test]
fn bad_requests_get_errors_that_name_the_problem() {
    let (mut a, _b, topic) = two_members();
    let err = a
        .engine
        .post(
            &topic,
            Kind::Answer,
            Draft {
                body: "x".into(),
                ..Draft::default()
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("--parent"), "{err}");
    let err = a
        .engine
        .post(&topic, Kind::Answer, reply("0123456789abcdef", "x"))
        .unwrap_err();
    assert!(err.to_string().contains("0123456789abcdef"), "{err}");
    let idea = a.engine.post(&topic, Kind::Idea, draft("i", "")).unwrap();
    let err = a
        .engine
        .post(&topic, Kind::Answer, reply(&idea, "x"))
        .unwrap_err();
    assert!(err.to_string().contains("not a question"), "{err}");
    let err = a
        .engine
        .post(&topic, Kind::Idea, draft(&"x".repeat(400), ""))
        .unwrap_err();
    assert!(err.to_string().contains("title"), "{err}");
    let err = a.engine.endorse(&topic, &idea, 1).unwrap_err();
    assert!(err.to_string().contains("own"), "{err}");
    assert!(matches!(
        a.engine.resolve_topic(Some("nope")),
        Err(EngineError::UnknownTopic(_))
    ));
    // Nothing stored was lost by any of that.
    assert_eq!(
        a.engine.feed(&topic, &FeedFilter::default()).unwrap().len(),
        1
    );
}

#[test]
fn an_interrupted_topic_creation_recovers_on_the_next_write() {
    let mut a = node("Ada");
    // Only the genesis reached the store (as if the process died right after it).
    let key = catchment_crdt::Keypair::from_bytes(
        &Home::open(&a.path).unwrap().keypair().unwrap().to_bytes(),
    );
    let (topic, _, genesis) =
        catchment_crdt::genesis::create_topic(&key, "Half made", 1_000).unwrap();
    a.engine.ingest(&topic, vec![genesis]).unwrap();
    let idea = a
        .engine
        .post(&topic, Kind::Idea, draft("still works", ""))
        .unwrap();
    assert_eq!(
        a.engine.feed(&topic, &FeedFilter::default()).unwrap()[0].id,
        idea
    );
    assert!(matches!(
        a.engine.members(&topic).unwrap()[0].1,
        Status::Admitted(Role::Admin)
    ));
}

#[test]
fn an_admin_invite_becomes_a_charter_role_once_an_admin_sees_it() {
    let mut a = node("Ada");
    let mut b = node("Bo");
    let topic = a.engine.create_topic("T", &profile("Ada")).unwrap();
    let (grant, secret) = a
        .engine
        .create_invite(&topic, Role::Admin, None, Some(1))
        .unwrap();
    send(&mut a, &mut b, &topic);
    b.engine.join(&grant, &secret, &profile("Bo")).unwrap();
    // Before an admin writes the role, the grant alone does not open the charter.
    assert!(b
        .engine
        .create_ask(&topic, "Ideas?", "", b.engine.now() + 86_400_000)
        .is_err());
    send(&mut b, &mut a, &topic);
    assert_eq!(a.engine.settle_admin_invites(&topic).unwrap(), 1);
    assert_eq!(
        a.engine.settle_admin_invites(&topic).unwrap(),
        0,
        "settled once"
    );
    send(&mut a, &mut b, &topic);
    b.engine
        .create_ask(&topic, "Ideas?", "", b.engine.now() + 86_400_000)
        .unwrap();
    send(&mut b, &mut a, &topic);
    assert_eq!(a.engine.asks(&topic).unwrap().len(), 1);
}

#[test]
fn a_batch_touching_more_documents_than_the_cache_holds_is_ingested_whole() {
    use catchment_crdt::invite::prove_admission;
    use catchment_crdt::schema::AdmissionClaim;
    use catchment_crdt::{genesis, journal, DocId, Keypair, SignedChange};

    let mut a = node("Ada");
    let topic = a.engine.create_topic("Busy", &profile("Ada")).unwrap();
    let (grant, secret) = a
        .engine
        .create_invite(&topic, Role::Member, None, None)
        .unwrap();
    let mut changes = a.engine.changes(&topic).unwrap();
    let mut authors = Vec::new();
    for i in 0..80 {
        let key = Keypair::generate();
        let member = key.member_id();
        let claim = AdmissionClaim::Invite {
            grant: grant.to_bytes(),
            proof: prove_admission(&secret, &topic, &member).to_vec(),
        };
        let (mut doc, first) =
            genesis::start_journal(&key, &topic, 0, Some(&claim), 1_000).unwrap();
        let id = format!("{i:016x}");
        let post = genesis::transact(&mut doc, 2_000, |tx| {
            journal::put_contribution(tx, &id, Kind::Idea, &draft(&format!("idea {i}"), ""), 2_000)
        })
        .unwrap();
        changes.push(first);
        changes.push(SignedChange::sign(
            &key,
            &topic,
            DocId::Journal { member, n: 0 },
            &post,
        ));
        authors.push((key, doc));
    }
    let total = changes.len();
    let mut b = node("Bo");
    let report = b.engine.ingest(&topic, changes).unwrap();
    assert_eq!(
        (report.accepted.len(), report.rejected.len(), report.pending),
        (total, 0, 0)
    );
    let feed = b
        .engine
        .feed(
            &topic,
            &FeedFilter {
                limit: 500,
                ..FeedFilter::default()
            },
        )
        .unwrap();
    assert_eq!(feed.len(), 80);

    // The first journals were let go of by the cache; their heads must still follow what is
    // written to them, and match what the store gives a fresh engine.
    let heads = b.engine.heads(&topic).unwrap();
    for (i, (key, doc)) in authors.iter_mut().take(3).enumerate() {
        let id = format!("{:016x}", 1000 + i);
        let post = genesis::transact(doc, 3_000, |tx| {
            journal::put_contribution(tx, &id, Kind::Idea, &draft("later", ""), 3_000)
        })
        .unwrap();
        let signed = SignedChange::sign(
            key,
            &topic,
            DocId::Journal {
                member: key.member_id(),
                n: 0,
            },
            &post,
        );
        let report = b.engine.ingest(&topic, vec![signed]).unwrap();
        assert_eq!(report.accepted, vec![post.hash()]);
    }
    b.engine.commit().unwrap();
    let after = b.engine.heads(&topic).unwrap();
    let moved = heads
        .iter()
        .filter(|(doc, h)| after.get(*doc) != Some(*h))
        .count();
    assert_eq!(moved, 3, "three journals got a change");
    let path = b.path.clone();
    drop(b.engine);
    assert_eq!(open(&path, "Bo").heads(&topic).unwrap(), after);
}

#[test]
fn a_large_batch_checks_signatures_on_threads_with_the_same_verdicts() {
    use catchment_crdt::invite::prove_admission;
    use catchment_crdt::schema::AdmissionClaim;
    use catchment_crdt::validate::Rejection;
    use catchment_crdt::{genesis, journal, DocId, Keypair, SignedChange};

    let mut a = node("Ada");
    let topic = a.engine.create_topic("Busy", &profile("Ada")).unwrap();
    let (grant, secret) = a
        .engine
        .create_invite(&topic, Role::Member, None, None)
        .unwrap();
    let mut changes = a.engine.changes(&topic).unwrap();
    let mut forged = 0;
    for i in 0..40 {
        let key = Keypair::generate();
        let member = key.member_id();
        let claim = AdmissionClaim::Invite {
            grant: grant.to_bytes(),
            proof: prove_admission(&secret, &topic, &member).to_vec(),
        };
        let (mut doc, first) =
            genesis::start_journal(&key, &topic, 0, Some(&claim), 1_000).unwrap();
        let id = format!("{i:016x}");
        let post = genesis::transact(&mut doc, 2_000, |tx| {
            journal::put_contribution(tx, &id, Kind::Idea, &draft(&format!("idea {i}"), ""), 2_000)
        })
        .unwrap();
        changes.push(first);
        let mut signed = SignedChange::sign(&key, &topic, DocId::Journal { member, n: 0 }, &post);
        if i % 5 == 0 {
            signed.signature[i % 64] ^= 0x10;
            forged += 1;
        }
        changes.push(signed);
    }
    let total = changes.len();
    assert!(total > 64, "large enough to be checked on threads");

    // One batch (signatures checked ahead, on threads) and one change at a time (each checked
    // by validation itself) reach the same verdicts.
    let mut whole = node("Bo");
    let report = whole.engine.ingest(&topic, changes.clone()).unwrap();
    assert_eq!(
        (report.accepted.len(), report.rejected.len(), report.pending),
        (total - forged, forged, 0)
    );
    assert!(report
        .rejected
        .iter()
        .all(|r| *r == Rejection::BadSignature));
    let mut single = node("Cy");
    let mut one_by_one = Vec::new();
    for change in changes {
        let report = single.engine.ingest(&topic, vec![change]).unwrap();
        one_by_one.extend(report.accepted);
        assert!(report
            .rejected
            .iter()
            .all(|r| *r == Rejection::BadSignature));
    }
    let mut accepted = report.accepted;
    accepted.sort();
    one_by_one.sort();
    assert_eq!(accepted, one_by_one);
    assert_eq!(
        whole.engine.heads(&topic).unwrap(),
        single.engine.heads(&topic).unwrap()
    );
}

#[test]
fn admins_cannot_break_their_topic() {
    let (mut a, _b, topic) = two_members();
    let me = a.engine.me();
    let err = a.engine.set_role(&topic, &me, Role::Member).unwrap_err();
    assert!(err.to_string().contains("only admin"), "{err}");
    let mut weights = a.engine.charter(&topic).unwrap().weights;
    weights.kudos = i64::MAX;
    let err = a.engine.set_weights(&topic, &weights).unwrap_err();
    assert!(err.to_string().contains("from 0 to"), "{err}");
    let far = a.engine.now() + 200 * 366 * 24 * 3600 * 1000;
    let err = a.engine.create_ask(&topic, "Forever", "", far).unwrap_err();
    assert!(err.to_string().contains("100 years"), "{err}");
    // Whatever weights a peer's charter carries, scores saturate instead of overflowing.
    let mut rec = catchment_crdt::views::Recognition::default();
    rec.counts.insert(Kind::Idea, 3);
    let huge = catchment_crdt::Weights {
        idea: i64::MAX,
        ..Default::default()
    };
    rec.rescore(&huge);
    assert_eq!(rec.score, i64::MAX);
}
