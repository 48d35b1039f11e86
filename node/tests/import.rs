//! The Stack Exchange importer end to end: the whole shared dump into a fresh node, every
//! number of the ground truth against the node's views, re-import, malformed and partial
//! dumps, and aliases linked to members.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use catchment_crdt::schema::{Kind, Profile, Role};
use catchment_crdt::views::Recipient;
use catchment_crdt::TopicId;
use catchment_node::import::{self, record_id, GroundTruth, Options, Plan};
use catchment_node::store::{layout, scan};
use catchment_node::{Engine, EngineError, Home, SledBackend};
use tempfile::TempDir;

/// The shared dump: `../shared/data/history-meta` beside the repository.
fn dump_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/history-meta")
        .canonicalize();
    match dir {
        Ok(dir) if dir.join("Posts.xml").is_file() => dir,
        _ => panic!(
            "the shared dump is missing: expected {}/../../shared/data/history-meta/Posts.xml \
             (the repository's shared folder must sit beside it)",
            env!("CARGO_MANIFEST_DIR")
        ),
    }
}

struct Node {
    _dir: TempDir,
    engine: Engine,
}

fn node(name: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let (home, _) = Home::init(dir.path(), Some(name)).unwrap();
    let backend = SledBackend::open(&home.store_dir()).unwrap();
    let engine = Engine::open(Box::new(backend), home.keypair().unwrap());
    Node { _dir: dir, engine }
}

fn admin_with_topic() -> (Node, TopicId) {
    let mut n = node("admin");
    let topic = n
        .engine
        .create_topic(
            "History meta",
            &Profile {
                name: "admin".into(),
                about: String::new(),
            },
        )
        .unwrap();
    (n, topic)
}

/// Imports a plan in batches of 2,000 events, committing after each, as the CLI does.
fn import_plan(engine: &mut Engine, topic: &TopicId, plan: &Plan) -> import::ImportOutcome {
    let mut total = import::ImportOutcome::default();
    for chunk in plan.events.chunks(2_000) {
        total.add(engine.import(topic, chunk).unwrap());
        engine.commit().unwrap();
    }
    total
}

/// Compares every number of the ground truth with the node's views; returns the differences.
fn differences(
    engine: &mut Engine,
    topic: &TopicId,
    source: &str,
    truth: &GroundTruth,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for (post, want) in &truth.posts {
        let id = record_id(source, &format!("post:{post}"));
        let thread = match engine.thread(topic, &id) {
            Ok(t) => t,
            Err(e) => {
                diffs.push(format!("post {post}: not shown ({e})"));
                continue;
            }
        };
        let item = &thread.item;
        if item.score != want.score {
            diffs.push(format!(
                "post {post}: score {} != {}",
                item.score, want.score
            ));
        }
        let answers = thread
            .replies
            .iter()
            .filter(|r| r.item.kind == Kind::Answer)
            .count();
        let comments = thread
            .replies
            .iter()
            .filter(|r| r.item.kind == Kind::Comment)
            .count();
        if answers as u64 != want.answers {
            diffs.push(format!(
                "post {post}: {answers} answers != {}",
                want.answers
            ));
        }
        if comments as u64 != want.comments {
            diffs.push(format!(
                "post {post}: {comments} comments != {}",
                want.comments
            ));
        }
        if want.post_type == 1 {
            let accepted = want
                .accepted
                .map(|a| record_id(source, &format!("post:{a}")));
            if item.accepted != accepted {
                diffs.push(format!(
                    "post {post}: accepted {:?} != {:?}",
                    item.accepted, accepted
                ));
            }
        }
    }

    let ranked = engine.recognition(topic).unwrap();
    let by_alias: BTreeMap<String, _> = ranked
        .into_iter()
        .filter_map(|(r, rec)| match r {
            Recipient::Alias(a) => Some((a, rec)),
            Recipient::Member(_) => None,
        })
        .collect();
    let count = |rec: Option<&catchment_crdt::views::Recognition>, kinds: &[Kind]| -> u64 {
        rec.map(|r| {
            kinds
                .iter()
                .map(|k| r.counts.get(k).copied().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
    };
    let (mut questions, mut answers, mut comments) = (0, 0, 0);
    for (alias, want) in &truth.authors {
        let rec = by_alias.get(alias);
        let got = (
            count(rec, &[Kind::Question, Kind::Idea]),
            count(rec, &[Kind::Answer]),
            count(rec, &[Kind::Comment]),
        );
        questions += got.0;
        answers += got.1;
        comments += got.2;
        if got != (want.questions, want.answers, want.comments) {
            diffs.push(format!(
                "{alias}: questions/answers/comments {got:?} != {:?}",
                (want.questions, want.answers, want.comments)
            ));
        }
    }
    if (questions, answers, comments) != (truth.questions, truth.answers, truth.comments) {
        diffs.push(format!(
            "totals {:?} != {:?}",
            (questions, answers, comments),
            (truth.questions, truth.answers, truth.comments)
        ));
    }
    let aliases_shown = by_alias.len();
    if aliases_shown != truth.authors.len() {
        diffs.push(format!(
            "{aliases_shown} aliases recognised != {} authors",
            truth.authors.len()
        ));
    }
    diffs
}

#[test]
fn the_whole_dump_imports_and_matches_its_ground_truth_and_a_rerun_adds_nothing() {
    let dir = dump_dir();
    let options = Options::for_dir(&dir);
    let plan = import::read(&dir, &options).unwrap();
    let truth = import::ground_truth(&dir).unwrap();
    assert_eq!(options.source, "history-meta");
    assert!(truth.questions > 700 && truth.answers > 1_000 && truth.comments > 4_000);
    assert!(plan.skipped["badge: not imported"].count > 9_000);
    assert!(plan.skipped["post link: not imported"].count > 400);

    let (mut admin, topic) = admin_with_topic();
    let outcome = import_plan(&mut admin.engine, &topic, &plan);
    assert!(
        outcome.refused.is_empty(),
        "refused: {:?}",
        &outcome.refused[..outcome.refused.len().min(5)]
    );
    assert_eq!(outcome.present, 0);
    assert_eq!(outcome.written, plan.events.len() as u64);
    assert_eq!(
        outcome.written,
        truth.questions + truth.answers + truth.comments + truth.votes + truth.accepted
    );

    let diffs = differences(&mut admin.engine, &topic, &options.source, &truth);
    assert!(
        diffs.is_empty(),
        "{} differences, first: {:#?}",
        diffs.len(),
        &diffs[..diffs.len().min(10)]
    );

    // The same source again: nothing new.
    let changes_before = admin.engine.counts(&topic).unwrap()["changes"];
    let again = import_plan(&mut admin.engine, &topic, &plan);
    assert_eq!(again.written, 0);
    assert_eq!(again.present, plan.events.len() as u64);
    assert_eq!(
        admin.engine.counts(&topic).unwrap()["changes"],
        changes_before
    );
}

/// Sends every change `from` holds to `to`, as anti-entropy will; all must be accepted.
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

/// A topic made by an admin and joined by a member with an invite.
fn admin_and_member() -> (Node, Node, TopicId) {
    let (mut admin, topic) = admin_with_topic();
    let mut member = node("Bo");
    let (grant, secret) = admin
        .engine
        .create_invite(&topic, Role::Member, None, Some(1))
        .unwrap();
    send(&mut admin, &mut member, &topic);
    let profile = Profile {
        name: "Bo".into(),
        about: String::new(),
    };
    member.engine.join(&grant, &secret, &profile).unwrap();
    member.engine.commit().unwrap();
    send(&mut member, &mut admin, &topic);
    (admin, member, topic)
}

/// Writes a small dump into `dir`: two questions (one accepted answer), comments and votes.
fn small_dump(dir: &Path) {
    let posts = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<posts>\n\
  <row Id=\"1\" PostTypeId=\"1\" AcceptedAnswerId=\"3\" CreationDate=\"2020-01-01T10:00:00.000\" \
Body=\"&lt;p&gt;Why &lt;b&gt;so&lt;/b&gt; slow?&lt;/p&gt;&#10;\" OwnerUserId=\"12\" Title=\"Slow builds\" \
Tags=\"&lt;build&gt;&lt;ci&gt;\" />\n\
  <row Id=\"2\" PostTypeId=\"1\" CreationDate=\"2020-01-02T10:00:00.000\" Body=\"&lt;p&gt;Idea&lt;/p&gt;\" \
OwnerDisplayName=\"Old Timer\" Title=\"Cache the toolchain\" Tags=\"|feature-request|\" />\n\
  <row Id=\"3\" PostTypeId=\"2\" ParentId=\"1\" CreationDate=\"2020-01-01T11:00:00.000\" \
Body=\"&lt;p&gt;Use a cache.&lt;/p&gt;\" OwnerUserId=\"13\" />\n\
  <row Id=\"4\" PostTypeId=\"2\" ParentId=\"1\" CreationDate=\"2020-01-01T12:00:00.000\" \
Body=\"&lt;p&gt;Buy faster disks.&lt;/p&gt;\" OwnerUserId=\"12\" />\n\
  <row Id=\"5\" PostTypeId=\"2\" ParentId=\"99\" CreationDate=\"2020-01-01T12:00:00.000\" Body=\"x\" OwnerUserId=\"14\" />\n\
  <row Id=\"6\" CreationDate=\"2020-01-01T12:00:00.000\" Body=\"no type\" OwnerUserId=\"14\" />\n\
</posts>\n";
    let comments = "<comments>\n\
  <row Id=\"10\" PostId=\"1\" Text=\"Which CI?\" CreationDate=\"2020-01-01T10:30:00.000\" UserId=\"13\" />\n\
  <row Id=\"11\" PostId=\"3\" Text=\"Thanks!\" CreationDate=\"2020-01-01T11:30:00.000\" UserId=\"12\" />\n\
  <row Id=\"12\" PostId=\"77\" Text=\"Lost\" CreationDate=\"2020-01-01T11:30:00.000\" UserId=\"12\" />\n\
</comments>\n";
    let votes = "<votes>\n\
  <row Id=\"20\" PostId=\"3\" VoteTypeId=\"2\" CreationDate=\"2020-01-01T00:00:00.000\" />\n\
  <row Id=\"21\" PostId=\"3\" VoteTypeId=\"2\" CreationDate=\"2020-01-01T00:00:00.000\" />\n\
  <row Id=\"22\" PostId=\"4\" VoteTypeId=\"3\" CreationDate=\"2020-01-02T00:00:00.000\" />\n\
  <row Id=\"23\" PostId=\"3\" VoteTypeId=\"1\" CreationDate=\"2020-01-02T00:00:00.000\" />\n\
  <row Id=\"24\" PostId=\"1\" VoteTypeId=\"5\" CreationDate=\"2020-01-02T00:00:00.000\" />\n\
  <row Id=\"25\" PostId=\"88\" VoteTypeId=\"2\" CreationDate=\"2020-01-02T00:00:00.000\" />\n\
</votes>\n";
    std::fs::write(dir.join("Posts.xml"), posts).unwrap();
    std::fs::write(dir.join("Comments.xml"), comments).unwrap();
    std::fs::write(dir.join("Votes.xml"), votes).unwrap();
}

#[test]
fn a_small_dump_maps_rows_to_records_and_reports_what_it_skipped() {
    let dir = tempfile::tempdir().unwrap();
    small_dump(dir.path());
    let options = Options {
        source: "small".into(),
        as_idea: vec!["feature-request".into()],
    };
    let plan = import::read(dir.path(), &options).unwrap();
    let skipped = |reason: &str| plan.skipped.get(reason).map(|s| s.count).unwrap_or(0);
    assert_eq!(skipped("answer to a question not in the dump"), 1);
    assert_eq!(skipped("comment on a post not in the dump"), 1);
    assert_eq!(skipped("vote on a post not in the dump"), 1);
    assert_eq!(skipped("malformed row"), 1);
    assert_eq!(
        plan.skipped["malformed row"].examples,
        vec!["Posts.xml line 8: no PostTypeId".to_string()]
    );
    assert_eq!(
        plan.missing.len(),
        4,
        "Users, Tags, Badges, PostLinks: {:?}",
        plan.missing
    );

    let (mut admin, topic) = admin_with_topic();
    let outcome = admin.engine.import(&topic, &plan.events).unwrap();
    admin.engine.commit().unwrap();
    assert!(outcome.refused.is_empty(), "{:?}", outcome.refused);
    assert_eq!(outcome.written_by["question"], 1);
    assert_eq!(outcome.written_by["idea"], 1);
    assert_eq!(outcome.written_by["answer"], 2);
    assert_eq!(outcome.written_by["comment"], 2);
    assert_eq!(outcome.written_by["vote"], 3);
    assert_eq!(outcome.written_by["accept"], 1);

    let question = admin
        .engine
        .thread(&topic, &record_id("small", "post:1"))
        .unwrap();
    assert_eq!(question.item.title, "Slow builds");
    assert_eq!(question.item.body, "Why **so** slow?");
    assert_eq!(question.item.tags, vec!["build", "ci"]);
    assert_eq!(question.item.author.to_string(), "user12, imported");
    assert_eq!(question.item.accepted, Some(record_id("small", "post:3")));
    // The accepted answer first, with its two up votes.
    assert_eq!(question.replies[0].item.id, record_id("small", "post:3"));
    assert_eq!(question.replies[0].item.score, 2);
    assert_eq!(question.replies[1].item.score, -1);
    let idea = admin
        .engine
        .thread(&topic, &record_id("small", "post:2"))
        .unwrap();
    assert_eq!(idea.item.kind, Kind::Idea);
    assert_eq!(idea.item.author.to_string(), "Old Timer, imported");

    // The ground truth agrees, with no import in between.
    let truth = import::ground_truth(dir.path()).unwrap();
    assert_eq!(
        (truth.questions, truth.answers, truth.comments, truth.votes),
        (2, 2, 2, 3)
    );
    assert_eq!(truth.posts[&1].accepted, Some(3));
    let diffs = differences(&mut admin.engine, &topic, "small", &truth);
    assert!(diffs.is_empty(), "{diffs:#?}");

    // The index of imported records is a function of the documents, like any other.
    let index = |engine: &Engine| -> Vec<(Vec<u8>, Vec<u8>)> {
        layout::INDEX_TAGS
            .iter()
            .flat_map(|tag| scan(engine.backend(), &layout::prefix(*tag, &topic)))
            .map(Result::unwrap)
            .collect()
    };
    let before = index(&admin.engine);
    assert!(before.iter().any(|(k, _)| k[0] == layout::VOTE));
    catchment_node::index::rebuild(&mut admin.engine, &topic).unwrap();
    assert_eq!(index(&admin.engine), before);
}

#[test]
fn a_malformed_file_names_its_line_and_keeps_what_was_imported() {
    let dir = tempfile::tempdir().unwrap();
    small_dump(dir.path());
    let options = Options {
        source: "small".into(),
        as_idea: vec![],
    };
    let (mut admin, topic) = admin_with_topic();
    let plan = import::read(dir.path(), &options).unwrap();
    admin.engine.import(&topic, &plan.events).unwrap();
    admin.engine.commit().unwrap();
    let before = admin.engine.counts(&topic).unwrap();

    // Line 3 loses a closing quote: the file is not well-formed from there on.
    let posts = std::fs::read_to_string(dir.path().join("Posts.xml")).unwrap();
    let broken = posts.replacen("Title=\"Slow builds\"", "Title=\"Slow builds", 1);
    std::fs::write(dir.path().join("Posts.xml"), broken).unwrap();
    let err = import::read(dir.path(), &options).unwrap_err().to_string();
    assert!(err.contains("Posts.xml") && err.contains("line 3"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
    assert!(import::ground_truth(dir.path()).is_err());
    assert_eq!(admin.engine.counts(&topic).unwrap(), before);
    assert!(admin
        .engine
        .thread(&topic, &record_id("small", "post:1"))
        .is_ok());
}

#[test]
fn a_dump_with_only_posts_and_votes_imports_and_matches_its_ground_truth() {
    let shared = dump_dir();
    let dir = tempfile::tempdir().unwrap();
    for file in ["Posts.xml", "Votes.xml"] {
        std::fs::copy(shared.join(file), dir.path().join(file)).unwrap();
    }
    let options = Options {
        source: "history-meta".into(),
        as_idea: vec![],
    };
    let plan = import::read(dir.path(), &options).unwrap();
    assert_eq!(plan.missing.len(), 5);
    let truth = import::ground_truth(dir.path()).unwrap();
    assert_eq!(truth.comments, 0);
    let (mut admin, topic) = admin_with_topic();
    let outcome = import_plan(&mut admin.engine, &topic, &plan);
    assert!(outcome.refused.is_empty());
    let diffs = differences(&mut admin.engine, &topic, "history-meta", &truth);
    assert!(diffs.is_empty(), "{:#?}", &diffs[..diffs.len().min(10)]);
}

#[test]
fn only_an_admin_imports_and_a_peer_accepts_what_an_admin_imported() {
    let dir = tempfile::tempdir().unwrap();
    small_dump(dir.path());
    let plan = import::read(dir.path(), &Options::for_dir(dir.path())).unwrap();
    let (mut admin, mut member, topic) = admin_and_member();

    let err = member.engine.import(&topic, &plan.events).unwrap_err();
    assert!(matches!(err, EngineError::NotAdmin(_)), "{err}");

    admin.engine.import(&topic, &plan.events).unwrap();
    admin.engine.commit().unwrap();
    send(&mut admin, &mut member, &topic);
    let source = import::stackexchange::source_name(dir.path());
    let truth = import::ground_truth(dir.path()).unwrap();
    let diffs = differences(&mut member.engine, &topic, &source, &truth);
    assert!(diffs.is_empty(), "{diffs:#?}");
}

#[test]
fn linking_an_alias_moves_its_recognition_to_the_member_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    small_dump(dir.path());
    let plan = import::read(dir.path(), &Options::for_dir(dir.path())).unwrap();
    let (mut admin, mut member, topic) = admin_and_member();
    admin.engine.import(&topic, &plan.events).unwrap();
    admin.engine.commit().unwrap();
    let bo = member.engine.me();

    let alias = Recipient::Alias("user13".into());
    let before = admin.engine.recognition(&topic).unwrap();
    let of = |ranked: &[(Recipient, catchment_crdt::views::Recognition)], who: &Recipient| {
        ranked
            .iter()
            .find(|(r, _)| r == who)
            .map(|(_, rec)| rec.clone())
    };
    let imported = of(&before, &alias).expect("user13 is recognised");
    assert_eq!(imported.counts[&Kind::Answer], 1);
    assert_eq!((imported.endorsement, imported.accepted), (2, 1));
    assert!(of(&before, &Recipient::Member(bo)).is_none());

    // Only an admin links; then the record follows Bo on both nodes.
    assert!(member
        .engine
        .link_alias(&topic, "user13", Some(&bo))
        .is_err());
    admin
        .engine
        .link_alias(&topic, "user13", Some(&bo))
        .unwrap();
    admin.engine.commit().unwrap();
    send(&mut admin, &mut member, &topic);
    for engine in [&mut admin.engine, &mut member.engine] {
        let after = engine.recognition(&topic).unwrap();
        assert!(of(&after, &alias).is_none());
        let bo_rec = of(&after, &Recipient::Member(bo)).expect("Bo is recognised");
        assert_eq!(bo_rec.counts, imported.counts);
        assert_eq!(
            (bo_rec.endorsement, bo_rec.accepted, bo_rec.score),
            (2, 1, imported.score)
        );
        let answer = engine
            .thread(&topic, &record_id(&plan.source, "post:3"))
            .unwrap();
        assert_eq!(answer.item.author.name, "Bo");
        assert!(!answer.item.author.alias);
        let profile = engine.profile(&topic, &bo).unwrap();
        assert_eq!(profile.recognition, bo_rec);
        assert!(profile.recent.iter().any(|i| i.id == answer.item.id));
    }

    // Unlinked, it stands on its own again.
    admin.engine.link_alias(&topic, "user13", None).unwrap();
    let again = admin.engine.recognition(&topic).unwrap();
    assert_eq!(of(&again, &alias), Some(imported));
    assert!(admin
        .engine
        .link_alias(&topic, "user404", Some(&bo))
        .is_err());
}
