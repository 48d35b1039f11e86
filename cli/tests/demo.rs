//! `catchment demo --exit`: three nodes replay the bundled sample with one away for part of
//! it, and the convergence check passes. Run from an empty directory, with its own TMPDIR, to
//! show that it needs no file of the repository and leaves nothing behind.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The longest the demo may take in a debug build on a busy machine.
const TIMEOUT: Duration = Duration::from_secs(600);

#[test]
fn demo_replays_the_sample_converges_and_cleans_up() {
    let cwd = tempfile::tempdir().expect("a temp dir");
    let tmp = tempfile::tempdir().expect("a temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_catchment"))
        .args(["demo", "--exit"])
        .current_dir(cwd.path())
        .env("TMPDIR", tmp.path())
        .env_remove("CATCHMENT_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the demo") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`catchment demo --exit` did not end within {TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(100));
    };
    let out = out_reader.join().expect("stdout");
    let err = err_reader.join().expect("stderr");
    assert!(
        status.success(),
        "the demo failed ({status}):\n{out}\n{err}"
    );
    assert!(
        out.contains("Convergence check: PASS"),
        "no passing check in:\n{out}\n{err}"
    );
    assert!(
        out.contains("Leaderboard on node 1"),
        "no leaderboard:\n{out}"
    );
    let away = out
        .lines()
        .any(|l| l.contains("goes offline") || l.contains("is stopped"));
    assert!(away, "no node went away during the demo:\n{out}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read TMPDIR")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "the demo left {left:?} behind in its TMPDIR"
    );
}
