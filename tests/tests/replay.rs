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
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/history-meta")
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
        stdout.lines().any(|l| l == "differences: 0") && stdout.lines().any(|l| l == "refused writes: 0"),
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
