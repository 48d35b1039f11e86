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

/// Processes whose command line mentions `text` (the demo's nodes name their data directory).
fn processes_mentioning(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(text) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn ctrl_c_while_the_nodes_run_stops_them_and_removes_everything() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::sync::mpsc;

    let tmp = tempfile::tempdir().expect("a temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_catchment"))
        // Slow enough that the replay is still running when the signal comes.
        .args(["demo", "--speed", "20"])
        .env("TMPDIR", tmp.path())
        .env_remove("CATCHMENT_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the nodes did not start; the demo said:\n{seen:?}"));
        let started = line.starts_with("Node 1 created the topic");
        seen.push(line);
        if started {
            break;
        }
    }
    let tmp_path = tmp.path().to_string_lossy().into_owned();
    assert_eq!(
        processes_mentioning(&tmp_path)
            .iter()
            .filter(|p| p.contains(" up "))
            .count(),
        3,
        "three nodes should run in {tmp_path}"
    );

    // SIGINT to the demo alone, as `kill -INT` does; a terminal's Ctrl-C reaches only the demo
    // too, since its nodes run in process groups of their own.
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the demo") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop after Ctrl-C"
        );
        thread::sleep(Duration::from_millis(50));
    };
    let rest: Vec<String> = lines.try_iter().collect();
    assert_eq!(
        (status.code(), status.signal()),
        (Some(130), None),
        "a Ctrl-C ends the demo with status 130: {rest:?}"
    );
    assert!(
        rest.iter().any(|l| l.starts_with("Interrupted")),
        "the demo says it was interrupted: {rest:?}"
    );
    let running = processes_mentioning(&tmp_path);
    assert!(running.is_empty(), "still running: {running:?}");
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("read TMPDIR")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "the demo left {left:?} behind");
}
