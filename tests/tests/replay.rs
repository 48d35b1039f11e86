//! The whole of the shared community dump replayed across five real nodes, one of them offline
//! for a third of the replay and another stopped and started again, then every node checked
//! against the dump's ground truth: no difference allowed.
//!
//! Runs the `replay` harness binary (`tests/src/bin/replay.rs`) as a process, as fast as the
//! nodes take the events.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use catchment_tests::{catchment_bin, output_within};

/// The shared dump, beside the repository.
fn dump() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/history-meta")
}

#[test]
fn the_whole_dump_replayed_across_five_nodes_with_churn_matches_the_ground_truth() {
    let dump = dump();
    assert!(
        dump.join("Posts.xml").is_file(),
        "the replay test needs the shared dump at {} (the repository's ../shared/data/history-meta)",
        dump.display()
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_replay"));
    command
        .arg(&dump)
        .args(["--nodes", "5", "--seed", "7", "--offline", "0.34"])
        .arg("--catchment")
        .arg(catchment_bin());
    let out = output_within(command, Duration::from_secs(900), "the replay harness");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the replay failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.lines().any(|l| l == "differences: 0")
            && stdout.lines().any(|l| l == "refused writes: 0"),
        "no clean check in the output:\n{stdout}"
    );
    // The schedule kept one node away for at least a third of the replay.
    let away = stdout
        .lines()
        .filter_map(|l| l.split("away for ").nth(1))
        .filter_map(|rest| {
            let mut words = rest.split_whitespace();
            let down: f64 = words.next()?.parse().ok()?;
            let total: f64 = words.nth(1)?.parse().ok()?;
            Some(down / total)
        })
        .fold(0.0, f64::max);
    assert!(
        away >= 1.0 / 3.0,
        "no node was away for a third of the replay:\n{stdout}"
    );
    println!("{stdout}");
}

/// The check is not blind: replaying the bundled sample with one vote and one comment left out,
/// every node shows a difference on exactly those posts, against the dump's ground truth.
#[test]
fn a_replay_missing_a_vote_and_a_comment_is_caught_on_every_node() {
    use catchment_node::import::Action;
    use catchment_node::replay::{self, Cluster, ClusterConfig, ReplayConfig};

    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cli/demo/history-meta");
    let (_, mut events, truth) = replay::source::load(&sample).expect("the sample reads");
    let post_of = |events: &[catchment_node::import::ImportEvent], id: &str| {
        events
            .iter()
            .find(|e| e.id == id && e.key.starts_with("post:"))
            .map(|e| e.key["post:".len()..].to_string())
            .expect("a post")
    };
    let vote = events
        .iter()
        .position(|e| matches!(e.action, Action::Endorse { .. }))
        .expect("a vote");
    let Action::Endorse { contribution, .. } = events.remove(vote).action else {
        unreachable!()
    };
    let voted = post_of(&events, &contribution);
    let comment = events
        .iter()
        .position(|e| {
            matches!(&e.action, Action::Contribute { parent: Some(p), .. }
                if e.key.starts_with("comment:") && *p != contribution)
        })
        .expect("a comment");
    let Action::Contribute {
        parent: Some(parent),
        ..
    } = events.remove(comment).action
    else {
        unreachable!()
    };
    let commented = post_of(&events, &parent);

    let dir = tempfile::tempdir().expect("a temp dir");
    let cluster = Cluster::start(&ClusterConfig {
        bin: catchment_bin().to_path_buf(),
        dir: dir.path().to_path_buf(),
        nodes: 2,
        sync_interval: 1,
        topic_name: "Sample".into(),
    })
    .expect("two nodes start");
    let config = ReplayConfig {
        seed: 3,
        speed: None,
        offline_fraction: 0.0,
        agreement_timeout: Duration::from_secs(120),
        stop: Default::default(),
    };
    let (_cluster, report) =
        replay::replay(cluster, &events, &truth, &config, |_| {}).expect("the replay runs");
    assert!(report.write_errors.is_empty(), "{:?}", report.write_errors);
    assert!(!report.passed());
    for node in ["node 1", "node 2"] {
        let about: Vec<String> = report
            .differences
            .iter()
            .filter(|d| d.node == node)
            .map(|d| d.what.clone())
            .collect();
        let post = |id: &str| about.iter().any(|w| w.starts_with(&format!("post {id}:")));
        assert!(
            post(&voted),
            "{node}: no difference on post {voted}: {about:#?}"
        );
        assert!(
            post(&commented),
            "{node}: no difference on post {commented}: {about:#?}"
        );
        assert!(
            about.iter().any(|w| w.starts_with("totals:")),
            "{node}: totals not flagged: {about:#?}"
        );
        let posts = about.iter().filter(|w| w.starts_with("post ")).count();
        assert!(
            posts <= 2,
            "{node}: more posts differ than were changed: {about:#?}"
        );
    }
}
