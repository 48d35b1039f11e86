//! The benchmark binary runs end to end at a tiny size and prints every row.
//!
//! No timing is asserted here: the targets live in the bench's own output, which means
//! something only in a release build on a quiet machine.

use std::process::Command;

/// Every row the bench prints, in its table and in its JSON.
const ROWS: [&str; 33] = [
    "floor.sign",
    "floor.key",
    "floor.verify",
    "floor.decode",
    "floor.apply",
    "floor.transact",
    "floor.flush",
    "ref.diff",
    "ref.apply_logged",
    "ref.transact_logged",
    "ref.apply_each",
    "ref.apply_batch",
    "local.flush_each.rate",
    "local.flush_each.p50",
    "local.flush_each.p99",
    "local.flush_each.ratio",
    "local.group16.rate",
    "local.group16.p50",
    "local.group16.p99",
    "local.post.p50",
    "local.post.ratio",
    "local.commit.p50",
    "remote.rate",
    "remote.rate.cpu",
    "remote.rate.first10",
    "remote.rate.last10",
    "remote.batch.p50",
    "remote.per_change",
    "remote.ratio",
    "big.open",
    "big.rss",
    "big.size_per_1000",
    "big.logical",
];

/// Rows that carry a target, with its pass/fail.
const TARGETED: [&str; 10] = [
    "local.flush_each.rate",
    "local.flush_each.p99",
    "local.group16.rate",
    "local.group16.p99",
    "remote.rate",
    "big.open",
    "big.rss",
    "big.hwm",
    "big.post.p99",
    "big.hwm_after_posts",
];

fn bench(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(args)
        .output()
        .expect("start the bench");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    assert!(
        output.status.success(),
        "bench {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_table_has_every_row_with_its_target() {
    let out = bench(&["--contributions", "2000", "--quick"]);
    for row in ROWS.iter().chain(&TARGETED) {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{row} "))),
            "no row {row} in:\n{out}"
        );
    }
    for row in TARGETED {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{row} ")))
            .expect("found above");
        assert!(
            line.contains(" PASS ") || line.contains(" FAIL "),
            "row {row} has no verdict: {line}"
        );
    }
    let contributions = out
        .lines()
        .find(|l| l.starts_with("big.contributions "))
        .expect("a count of contributions");
    assert!(
        contributions.contains("2,000"),
        "the big topic holds 2,000 contributions: {contributions}"
    );
    assert!(
        out.contains("targets: "),
        "a summary of the targets:\n{out}"
    );
}

#[test]
fn json_output_parses_and_holds_every_row() {
    let out = bench(&["--contributions", "200", "--quick", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let rows = v["rows"].as_array().expect("rows");
    for id in ROWS.iter().chain(&TARGETED) {
        let row = rows
            .iter()
            .find(|r| r["id"] == *id)
            .unwrap_or_else(|| panic!("no row {id}"));
        assert!(
            row["value"].as_f64().is_some_and(f64::is_finite),
            "row {id} has a number: {row}"
        );
    }
    for id in TARGETED {
        let row = rows.iter().find(|r| r["id"] == id).expect("found above");
        assert!(
            row["pass"].is_boolean() && row["target"].is_string(),
            "row {id} has a target: {row}"
        );
    }
    assert_eq!(v["run"]["contributions"], "200");
}

#[test]
fn bad_arguments_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .arg("--frobnicate")
        .output()
        .expect("start the bench");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown argument"));
}
