//! The kill test (DESIGN.md invariant 5): a writing process is killed with SIGKILL many times at
//! random moments; after every kill the store must open, hold every contribution (and edit)
//! that was ever confirmed, agree with its own documents, and read the same when opened twice.
//!
//! `CATCHMENT_KILL_ROUNDS` sets the number of rounds (default 25) and `CATCHMENT_KILL_SEED`
//! the seed of the random moments (default: a fixed one, printed).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use automerge::Automerge;
use catchment_crdt::{journal, validate, DocId};
use catchment_node::query::{FeedFilter, Item};
use catchment_node::{Engine, Home, SledBackend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DEFAULT_ROUNDS: usize = 25;
const DEFAULT_SEED: u64 = 0x6b69_6c6c;
/// The longest wait for a writer's first confirmed write.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest wait for a killed writer's output to end.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        _ => default,
    }
}

/// Everything the writers ever confirmed.
#[derive(Default)]
struct Promises {
    /// Contribution id -> body length.
    posts: BTreeMap<String, usize>,
    /// Contribution id -> the latest confirmed edit, as (round, seq).
    edits: BTreeMap<String, (u64, u64)>,
}

impl Promises {
    /// Records one line of a writer's output; returns whether it confirmed a new contribution.
    fn record(&mut self, line: &str) -> Result<bool, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["ready"] => Ok(false),
            ["confirmed", id, body] => {
                let body = body.parse().map_err(|_| format!("bad line {line:?}"))?;
                if self.posts.insert(id.to_string(), body).is_some() {
                    return Err(format!("{id} was confirmed twice"));
                }
                Ok(true)
            }
            ["edited", id, round, seq] => {
                let at = (
                    round.parse().map_err(|_| format!("bad line {line:?}"))?,
                    seq.parse().map_err(|_| format!("bad line {line:?}"))?,
                );
                let latest = self.edits.entry(id.to_string()).or_insert(at);
                *latest = (*latest).max(at);
                Ok(false)
            }
            _ => Err(format!("unexpected line from the writer: {line:?}")),
        }
    }
}

/// What one opening of the store shows, for comparing two openings.
#[derive(PartialEq, Eq, Debug)]
struct View {
    feed: String,
    heads: String,
    counts: BTreeMap<&'static str, usize>,
}

/// A child process that is killed if the test stops early.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running writer and the thread reading its output.
struct Writer {
    child: Running,
    lines: Receiver<String>,
    reader: JoinHandle<usize>,
}

fn spawn_writer(home: &Path, round: usize, seed: u64, stderr: &Path) -> Writer {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kill_writer"))
        .arg(home)
        .arg(round.to_string())
        .arg(seed.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(stderr).expect("create the writer's stderr file"))
        .spawn()
        .expect("start kill_writer");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    // Sends every complete line; returns how many bytes of an unfinished last line it dropped.
    let reader = thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match stdout.read_line(&mut line) {
                Ok(0) => return 0,
                Ok(n) if !line.ends_with('\n') => return n,
                Ok(_) => {
                    if tx.send(line.trim_end().to_string()).is_err() {
                        return 0;
                    }
                }
                Err(e) => panic!("reading the writer's output: {e}"),
            }
        }
    });
    Writer {
        child: Running(child),
        lines,
        reader,
    }
}

/// Opens the store, checks every promise, and returns what it shows. With `full`, also reads
/// the thread of every confirmed contribution and checks the index against the documents
/// replayed from their whole logs (whose heads it then reports); otherwise the heads are the
/// engine's own (snapshot plus log). Panics, naming the round, on any failure.
fn check(home_dir: &Path, promises: &Promises, round: usize, full: bool) -> View {
    let fail = |what: String| -> ! { panic!("round {round}: {what}") };
    let home = Home::open(home_dir).unwrap_or_else(|e| fail(format!("the home did not open: {e}")));
    let backend = SledBackend::open(&home.store_dir())
        .unwrap_or_else(|e| fail(format!("the store did not open: {e}")));
    let key = home
        .keypair()
        .unwrap_or_else(|e| fail(format!("the key did not load: {e}")));
    let mut engine = Engine::open(Box::new(backend), key);
    let topic = engine
        .resolve_topic(None)
        .unwrap_or_else(|e| fail(format!("no topic after a kill: {e}")));

    // Every confirmed contribution is in the feed, whole, with its latest confirmed edit (or a
    // later one that reached the disk unconfirmed).
    let feed = engine
        .feed(
            &topic,
            &FeedFilter {
                limit: usize::MAX,
                ..FeedFilter::default()
            },
        )
        .unwrap_or_else(|e| fail(format!("the feed did not read: {e}")));
    let by_id: HashMap<&str, &Item> = feed.iter().map(|item| (item.id.as_str(), item)).collect();
    for (id, body) in &promises.posts {
        let Some(item) = by_id.get(id.as_str()) else {
            fail(format!(
                "confirmed contribution {id} is missing ({} in the feed)",
                feed.len()
            ))
        };
        if item.body.len() != *body {
            fail(format!(
                "confirmed contribution {id} has a body of {} bytes, not {body}",
                item.body.len()
            ));
        }
        if let Some(&(r, s)) = promises.edits.get(id) {
            let at = item.title.strip_prefix("edited ").and_then(|rest| {
                let (r, s) = rest.split_once(' ')?;
                Some((r.parse::<u64>().ok()?, s.parse::<u64>().ok()?))
            });
            if at.is_none_or(|at| at < (r, s)) {
                fail(format!(
                    "the confirmed edit {r}.{s} of {id} is lost: its title is {:?}",
                    item.title
                ));
            }
        }
        if full {
            match engine.thread(&topic, id) {
                Ok(thread) if thread.item.id == *id => {}
                Ok(thread) => fail(format!("the thread of {id} shows {}", thread.item.id)),
                Err(e) => fail(format!(
                    "the thread of confirmed contribution {id} did not read: {e}"
                )),
            }
        }
    }
    let counts = engine
        .counts(&topic)
        .unwrap_or_else(|e| fail(format!("the counts did not read: {e}")));
    if counts["contributions"] < promises.posts.len() {
        fail(format!(
            "{} contributions indexed, {} confirmed",
            counts["contributions"],
            promises.posts.len()
        ));
    }
    let feed_json = serde_json::to_string(&feed).expect("items serialise");
    if !full {
        let heads = engine
            .heads(&topic)
            .unwrap_or_else(|e| fail(format!("the heads did not read: {e}")));
        return View {
            feed: feed_json,
            heads: format!("{heads:?}"),
            counts,
        };
    }

    // The index agrees with the documents: every contribution the journals hold is indexed as
    // the journals say, and nothing else is.
    let changes = engine
        .changes(&topic)
        .unwrap_or_else(|e| fail(format!("the changes did not read: {e}")));
    let mut docs: BTreeMap<DocId, Vec<automerge::Change>> = BTreeMap::new();
    for signed in &changes {
        let change = validate::decode(&signed.bytes)
            .unwrap_or_else(|e| fail(format!("a stored change: {e}")));
        docs.entry(signed.doc).or_default().push(change);
    }
    let mut in_docs = BTreeSet::new();
    let mut heads = BTreeMap::new();
    for (doc_id, doc_changes) in docs {
        let mut doc = Automerge::new();
        validate::apply(&mut doc, doc_changes)
            .unwrap_or_else(|e| fail(format!("{doc_id:?} does not load: {e}")));
        heads.insert(doc_id, doc.get_heads());
        let DocId::Journal { member, n } = doc_id else {
            continue;
        };
        for id in journal::all_entries(&doc).contributions {
            let Some(c) = journal::read_contribution(&doc, member, n, &id) else {
                continue;
            };
            let Some(item) = by_id.get(id.as_str()) else {
                fail(format!(
                    "contribution {id} is in journal {n} but not in the index"
                ))
            };
            if (
                &item.title,
                &item.body,
                item.kind,
                &item.parent,
                item.edited,
            ) != (&c.title, &c.body, c.kind, &c.parent, c.edited)
            {
                fail(format!(
                    "the index holds contribution {id} as {:?}, journal {n} as {:?}",
                    item.title, c.title
                ));
            }
            in_docs.insert(id);
        }
    }
    if let Some(extra) = by_id.keys().find(|id| !in_docs.contains(**id)) {
        fail(format!("contribution {extra} is indexed but in no journal"));
    }

    if counts["changes"] != changes.len() {
        fail(format!(
            "{} changes stored but {} in the logs",
            counts["changes"],
            changes.len()
        ));
    }
    View {
        feed: feed_json,
        heads: format!("{heads:?}"),
        counts,
    }
}

#[test]
fn confirmed_writes_survive_sigkill() {
    use std::os::unix::process::ExitStatusExt;

    let rounds: usize = env_number("CATCHMENT_KILL_ROUNDS", DEFAULT_ROUNDS);
    let seed: u64 = env_number("CATCHMENT_KILL_SEED", DEFAULT_SEED);
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let started = Instant::now();
    let mut promises = Promises::default();
    let (mut early_kills, mut partial_lines, mut check_time) = (0, 0, Duration::ZERO);

    for round in 0..rounds {
        let stderr_path = dir.path().join(format!("writer-{round}.stderr"));
        let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let Writer {
            mut child,
            lines,
            reader,
        } = spawn_writer(&home, round, rng.gen(), &stderr_path);
        let mut confirmed_now = 0;
        let mut take = |line: String, promises: &mut Promises| match promises.record(&line) {
            Ok(new) => confirmed_now += usize::from(new),
            Err(e) => panic!("round {round}: {e}"),
        };

        // Mostly, kill at a random moment of writing; sometimes (never in the first round, which
        // creates the topic) at a random moment of starting up: opening the store, recovery.
        let early = round > 0 && rng.gen_bool(0.2);
        if early {
            early_kills += 1;
            thread::sleep(Duration::from_millis(rng.gen_range(0..=60)));
        } else {
            let deadline = Instant::now() + START_TIMEOUT;
            loop {
                match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(line) => {
                        let confirms = line.starts_with("confirmed");
                        take(line, &mut promises);
                        if confirms {
                            break;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        panic!("round {round}: no confirmed write within {START_TIMEOUT:?}; stderr: {}", stderr());
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        let status = child.0.wait().expect("wait for the writer");
                        panic!("round {round}: the writer stopped ({status}) before confirming; stderr: {}", stderr());
                    }
                }
            }
            thread::sleep(Duration::from_millis(rng.gen_range(20..=400)));
        }
        // SIGKILL on unix.
        child.0.kill().expect("kill the writer");
        let status = child.0.wait().expect("wait for the writer");
        if status.signal() != Some(9) && !status.success() {
            panic!(
                "round {round}: the writer failed ({status}); stderr: {}",
                stderr()
            );
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => take(line, &mut promises),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("round {round}: the writer's output did not end")
                }
            }
        }
        partial_lines += usize::from(reader.join().expect("the reader thread") > 0);

        let t = Instant::now();
        let first = check(&home, &promises, round, true);
        let second = check(&home, &promises, round, false);
        check_time += t.elapsed();
        assert_eq!(
            first.counts, second.counts,
            "round {round}: two openings count differently"
        );
        assert!(
            first.heads == second.heads,
            "round {round}: the heads replayed from the logs ({}) differ from the engine's ({})",
            first.heads,
            second.heads
        );
        assert!(
            first.feed == second.feed,
            "round {round}: two openings of the same store show different feeds"
        );
        eprintln!(
            "round {round}: {} kill, {confirmed_now} confirmed now, {} in all, {} contributions stored",
            if early { "startup" } else { "writing" },
            promises.posts.len(),
            first.counts["contributions"],
        );
    }

    println!(
        "kill test: {rounds} rounds ({early_kills} killed at startup), {} contributions and {} edits confirmed, \
         {partial_lines} half-written lines, {:.1?} in all ({:.1?} checking), seed {seed}",
        promises.posts.len(),
        promises.edits.len(),
        started.elapsed(),
        check_time,
    );
    assert!(
        rounds == 0 || !promises.posts.is_empty(),
        "no write was ever confirmed"
    );
}
