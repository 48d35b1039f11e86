//! The network benchmark runs end to end at its smallest size and prints every row.
//!
//! No timing is asserted: the figures mean something only in a release build on a quiet
//! machine, and they are the benchmark's own verdicts to print.

use std::process::Command;

/// Every row netbench prints.
const ROWS: [&str; 25] = [
    "prop.all.p50",
    "prop.all.p99",
    "prop.bare.p50",
    "prop.bare.p99",
    "prop.ratio.p50",
    "prop.ratio.p99",
    "prop.one.p50",
    "prop.missed",
    "prop.early",
    "prop.all_from_request.p50",
    "prop.post.p50",
    "merge.write.rate",
    "merge.time",
    "merge.changes",
    "merge.bytes",
    "merge.raw",
    "merge.deflated",
    "merge.ratio",
    "idle.cpu",
    "idle.rss",
    "idle.sync_bytes",
    "idle.unsynced",
    "idle.hub_thread",
    "idle.leaf_thread",
    "idle.process_per_node",
];

/// Rows that carry a target, and so a verdict.
const TARGETED: [&str; 4] = ["prop.all.p50", "prop.all.p99", "merge.time", "merge.ratio"];

#[test]
fn a_quick_run_prints_every_row() {
    let output = Command::new(env!("CARGO_BIN_EXE_netbench"))
        .arg("--quick")
        .output()
        .expect("start netbench");
    let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
    assert!(
        output.status.success(),
        "netbench --quick failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let row = |id: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no row {id} in:\n{stdout}"))
    };
    for id in ROWS {
        row(id);
    }
    for id in TARGETED {
        let line = row(id);
        assert!(
            line.contains(" PASS ") || line.contains(" FAIL "),
            "row {id} has no verdict: {line}"
        );
    }
    let changes = row("merge.changes");
    assert!(
        changes.contains("a -> b 50") && changes.contains("b -> a 50"),
        "each side sent its 500 contributions (and a journal or two): {changes}"
    );
    assert!(stdout.contains("targets: "), "a summary:\n{stdout}");
}

#[test]
fn bad_arguments_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_netbench"))
        .arg("--frobnicate")
        .output()
        .expect("start netbench");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown argument"));
}
