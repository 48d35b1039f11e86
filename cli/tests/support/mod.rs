//! Running the `catchment` binary on a home, for the command-line tests.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `catchment --home HOME ARGS...`.
pub fn catchment(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_catchment"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("CATCHMENT_HOME")
        .output()
        .expect("the binary runs")
}

/// Runs a command that must succeed; returns its standard output.
pub fn ok(home: &Path, args: &[&str]) -> String {
    let out = catchment(home, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a read with `--json` and parses what it prints.
pub fn json(home: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(home, &all)).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
}

/// Runs a command that must fail; returns what it printed on standard error, trimmed.
pub fn failure(home: &Path, args: &[&str]) -> String {
    let out = catchment(home, args);
    assert!(!out.status.success(), "{args:?} should have failed");
    String::from_utf8(out.stderr).unwrap().trim().to_string()
}
