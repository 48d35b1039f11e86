//! The benchmark for the issue's performance targets.
//!
//! Run it in release, where the figures mean something:
//!
//! ```text
//! cargo run --release -p catchment-tests --bin bench                  # 100,000 contributions
//! cargo run --release -p catchment-tests --bin bench -- --contributions 2000 --quick
//! cargo run --release -p catchment-tests --bin bench -- --json       # one JSON object
//! ```
//!
//! What it measures, in one run, each against its target:
//!
//! 1. **floors**: bare ed25519 sign, key decompression and `verify_strict` (ed25519-dalek
//!    directly), bare Automerge decode, apply and transaction of one contribution change into
//!    a document of 200 contributions, and a bare one-key write + flush of the store. The
//!    figures of our own code are then shown as ratios to them.
//! 2. **local contributions confirmed**: `Engine::post` + `Engine::commit` per contribution
//!    on a real sled store in a temporary directory; then the same with group commit (a
//!    commit every 16 posts; a post's latency runs until the commit that covers it returns).
//! 3. **remote changes accepted**: many members (an admin, invites, joins) write the topic
//!    on their own engines; their signed changes are then ingested into a fresh engine in
//!    batches of 256, one commit per batch. This also builds the big topic.
//! 4. **a topic of N contributions** (100,000 by default): the bench runs itself again as a
//!    fresh process (`bench __open HOME`) so that the resident memory is the opened node's
//!    only, and times opening the store, resolving the topic and reading the first feed page
//!    of 20 items; it reports the store's size, and then times local posts into that topic.
//!
//! `--remote-only` runs step 3 alone; `--save-sources FILE` writes the source members'
//! changes to a file and `--sources FILE` ingests them from it instead of writing them again,
//! so that the ingest can be repeated on the same changes (before and after a change to the
//! code, or under a profiler).
//!
//! `--keep DIR` keeps the work files; `bench __open DIR/home POSTS` then repeats step 4 alone
//! (e.g. under a profiler). Besides the floors, a "reference" section times the Automerge
//! operations our design picks (diffing heads to find what a change touched, applying one
//! change per call) against their alternatives (a patch log, one call per batch).
//!
//! Every loop runs a fixed number of times. The page cache is warm when the fresh process
//! opens the store (the bench has just written it); nothing here drops the system's caches.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use automerge::transaction::CommitOptions;
use automerge::{Automerge, Change, PatchLog};
use catchment_crdt::schema::{Draft, Kind, Profile, Role};
use catchment_crdt::signed::signing_message;
use catchment_crdt::{genesis, journal, DocId, Keypair, SignedChange, TopicId, JOURNAL_ROLLOVER};
use catchment_node::query::FeedFilter;
use catchment_node::store::{Backend, Batch};
use catchment_node::{Engine, Home, SledBackend};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde_json::{json, Value};

/// Changes per `ingest` call when accepting remote changes.
const INGEST_BATCH: usize = 256;
/// Posts per commit in the group-commit run.
const GROUP: usize = 16;
/// Items on the first feed page.
const PAGE: usize = 20;
/// Contributions each source member writes at most (so that 100,000 need 50 members).
const PER_MEMBER: usize = 2_000;

// Targets from the issue.
const LOCAL_RATE_TARGET: f64 = 1_000.0;
const LOCAL_P99_TARGET_MS: f64 = 20.0;
const REMOTE_RATE_TARGET: f64 = 5_000.0;
const OPEN_TARGET_MS: f64 = 1_000.0;
const RSS_TARGET_MB: f64 = 300.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("__open") {
        open_child(&args[1..])
    } else {
        Options::parse(&args).and_then(run)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Options.

struct Options {
    contributions: usize,
    quick: bool,
    json: bool,
    threads: usize,
    keep: Option<PathBuf>,
    /// Measure the remote ingest only (no floors, local runs or fresh-process open).
    remote_only: bool,
    /// Write the source members' changes here after producing them.
    save_sources: Option<PathBuf>,
    /// Read the source members' changes from here instead of producing them.
    sources: Option<PathBuf>,
}

/// How many times each measured loop runs.
struct Sizes {
    floor_iters: usize,
    apply_iters: usize,
    flush_iters: usize,
    local_posts: usize,
    big_posts: usize,
}

const USAGE: &str = "usage: bench [--contributions N] [--quick] [--json] [--threads T] [--keep DIR]

  --contributions N  size of the big topic (default 100000; at least 100)
  --quick            fewer iterations of the floors and the local runs (for smoke tests)
  --json             print one JSON object instead of the table
  --threads T        threads that write the source members' changes (default: cores, max 4);
                     every measured part runs on one thread
  --keep DIR         write the work files into DIR (new or empty) and keep them; DIR/home is
                     then the big topic's data directory, for `bench __open DIR/home POSTS`
  --remote-only      measure only the remote ingest (step 3): no floors, local runs or open
  --save-sources F   write the produced source changes to file F (to replay them later)
  --sources F        ingest the source changes read from file F (from --save-sources)
                     instead of producing them; --contributions is then taken from F";

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let mut options = Options {
            contributions: 100_000,
            quick: false,
            json: false,
            threads: cores.min(4),
            keep: None,
            remote_only: false,
            save_sources: None,
            sources: None,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--contributions" => {
                    let value = it.next().context("--contributions needs a number")?;
                    options.contributions = value
                        .replace('_', "")
                        .parse()
                        .context("--contributions needs a number")?;
                }
                "--threads" => {
                    let value = it.next().context("--threads needs a number")?;
                    options.threads = value.parse().context("--threads needs a number")?;
                }
                "--keep" => {
                    let value = it.next().context("--keep needs a directory")?;
                    options.keep = Some(PathBuf::from(value));
                }
                "--save-sources" => {
                    let value = it.next().context("--save-sources needs a file")?;
                    options.save_sources = Some(PathBuf::from(value));
                }
                "--sources" => {
                    let value = it.next().context("--sources needs a file")?;
                    options.sources = Some(PathBuf::from(value));
                }
                "--remote-only" => options.remote_only = true,
                "--quick" => options.quick = true,
                "--json" => options.json = true,
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        ensure!(
            options.contributions >= 100,
            "--contributions must be at least 100"
        );
        ensure!(
            options.contributions <= 2_000_000,
            "--contributions must be at most 2000000"
        );
        options.threads = options.threads.clamp(1, 16);
        Ok(options)
    }

    fn sizes(&self) -> Sizes {
        if self.quick {
            Sizes {
                floor_iters: 300,
                apply_iters: 100,
                flush_iters: 50,
                local_posts: 160,
                big_posts: 32,
            }
        } else {
            Sizes {
                floor_iters: 5_000,
                apply_iters: 2_000,
                flush_iters: 1_000,
                local_posts: 3_000,
                big_posts: 500,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Samples and rows.

/// Durations of one operation, sorted.
struct Samples(Vec<Duration>);

impl Samples {
    fn new(mut v: Vec<Duration>) -> Samples {
        assert!(!v.is_empty(), "no samples");
        v.sort();
        Samples(v)
    }

    /// The nearest-rank percentile.
    fn pct(&self, p: f64) -> Duration {
        let rank = ((p / 100.0) * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    fn median(&self) -> Duration {
        self.pct(50.0)
    }

    fn p99(&self) -> Duration {
        self.pct(99.0)
    }

    fn max(&self) -> Duration {
        *self.0.last().expect("not empty")
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What a figure must be.
#[derive(Clone, Copy)]
enum Target {
    AtLeast(f64),
    Below(f64),
}

impl Target {
    fn passes(self, value: f64) -> bool {
        match self {
            Target::AtLeast(t) => value >= t,
            Target::Below(t) => value < t,
        }
    }

    fn describe(self, unit: &str) -> String {
        match self {
            Target::AtLeast(t) => format!(">= {} {unit}", number(t)),
            Target::Below(t) => format!("< {} {unit}", number(t)),
        }
    }
}

/// One line of the report.
struct Row {
    id: &'static str,
    what: String,
    value: f64,
    unit: &'static str,
    target: Option<Target>,
    note: String,
}

#[derive(Default)]
struct Report {
    sections: Vec<(&'static str, Vec<Row>)>,
    facts: Vec<(&'static str, String)>,
}

impl Report {
    fn section(&mut self, name: &'static str) {
        self.sections.push((name, Vec::new()));
    }

    fn row(
        &mut self,
        id: &'static str,
        what: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> &mut Row {
        let rows = &mut self.sections.last_mut().expect("a section first").1;
        rows.push(Row {
            id,
            what: what.into(),
            value,
            unit,
            target: None,
            note: String::new(),
        });
        rows.last_mut().expect("pushed")
    }

    fn fact(&mut self, name: &'static str, value: impl Into<String>) {
        self.facts.push((name, value.into()));
    }

    fn failures(&self) -> Vec<&Row> {
        self.sections
            .iter()
            .flat_map(|(_, rows)| rows)
            .filter(|r| r.target.is_some_and(|t| !t.passes(r.value)))
            .collect()
    }

    fn table(&self) -> String {
        let mut out = String::new();
        let width = self
            .sections
            .iter()
            .flat_map(|(_, r)| r)
            .map(|r| r.what.len())
            .max()
            .unwrap_or(10);
        let ids = self
            .sections
            .iter()
            .flat_map(|(_, r)| r)
            .map(|r| r.id.len())
            .max()
            .unwrap_or(10);
        for (name, rows) in &self.sections {
            let _ = writeln!(out, "\n== {name}");
            let _ = writeln!(
                out,
                "{:ids$}  {:width$}  {:>12} {:8}  {:>18}  {:6}  note",
                "id", "figure", "value", "unit", "target", "result"
            );
            for r in rows {
                let (target, verdict) = match r.target {
                    Some(t) => (
                        t.describe(r.unit),
                        if t.passes(r.value) { "PASS" } else { "FAIL" },
                    ),
                    None => ("-".to_string(), "-"),
                };
                let _ = writeln!(
                    out,
                    "{:ids$}  {:width$}  {:>12} {:8}  {:>18}  {:6}  {}",
                    r.id,
                    r.what,
                    number(r.value),
                    r.unit,
                    target,
                    verdict,
                    r.note
                );
            }
        }
        let _ = writeln!(out, "\n== run");
        for (name, value) in &self.facts {
            let _ = writeln!(out, "{name}: {value}");
        }
        let failures = self.failures();
        let targets = self
            .sections
            .iter()
            .flat_map(|(_, r)| r)
            .filter(|r| r.target.is_some())
            .count();
        let _ = writeln!(
            out,
            "\ntargets: {} of {targets} pass",
            targets - failures.len()
        );
        for r in failures {
            let _ = writeln!(
                out,
                "FAILED: {} ({}) = {} {}, target {}",
                r.id,
                r.what,
                number(r.value),
                r.unit,
                r.target.expect("has one").describe(r.unit)
            );
        }
        out
    }

    fn json(&self) -> Value {
        let rows: Vec<Value> = self
            .sections
            .iter()
            .flat_map(|(section, rows)| rows.iter().map(move |r| (section, r)))
            .map(|(section, r)| {
                json!({
                    "section": section,
                    "id": r.id,
                    "figure": r.what,
                    "value": r.value,
                    "unit": r.unit,
                    "target": r.target.map(|t| t.describe(r.unit)),
                    "pass": r.target.map(|t| t.passes(r.value)),
                    "note": r.note,
                })
            })
            .collect();
        let facts: serde_json::Map<String, Value> = self
            .facts
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        json!({ "rows": rows, "run": facts, "failed": self.failures().iter().map(|r| r.id).collect::<Vec<_>>() })
    }
}

impl Row {
    fn target(&mut self, target: Target) -> &mut Row {
        self.target = Some(target);
        self
    }

    fn note(&mut self, note: impl Into<String>) -> &mut Row {
        self.note = note.into();
        self
    }
}

/// A number with about four significant digits and thousands separators.
fn number(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let decimals = match v.abs() {
        a if a >= 1000.0 => 0,
        a if a >= 100.0 => 1,
        a if a >= 10.0 => 2,
        _ => 3,
    };
    let text = format!("{:.*}", decimals, v.abs());
    let (int, frac) = text
        .split_once('.')
        .map(|(i, f)| (i, Some(f)))
        .unwrap_or((&text, None));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if v < 0.0 { "-" } else { "" };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Test data.

const TAGS: [&str; 8] = [
    "build",
    "ci",
    "cache",
    "rust",
    "onboarding",
    "docs",
    "infra",
    "testing",
];

/// The `i`-th contribution a member writes: mostly ideas and questions, every tenth an answer
/// to the member's latest question and every tenth a comment on its latest contribution.
fn draft(i: usize, last: Option<&String>, last_question: Option<&String>) -> (Kind, Draft) {
    let body = format!(
        "Contribution {i}. We could cut the build time of step {} by caching its outputs between \
         runs; measured locally it saves about {} seconds per run. Details and numbers follow.",
        i % 97,
        i % 53
    );
    let tags = vec![
        TAGS[i % TAGS.len()].to_string(),
        TAGS[(i / 3) % TAGS.len()].to_string(),
    ];
    let (kind, parent) = match i % 10 {
        8 if last_question.is_some() => (Kind::Answer, last_question.cloned()),
        9 if last.is_some() => (Kind::Comment, last.cloned()),
        6 | 7 => (Kind::Question, None),
        _ => (Kind::Idea, None),
    };
    let title = match kind {
        Kind::Question => format!("How do we speed up step {} of the build?", i % 97),
        _ => format!("Cache the outputs of step {} ({i})", i % 97),
    };
    (
        kind,
        Draft {
            title,
            body,
            tags,
            parent,
            ..Draft::default()
        },
    )
}

/// Posts `n` contributions; returns each post's duration.
fn post_many(
    engine: &mut Engine,
    topic: &TopicId,
    n: usize,
    first: usize,
) -> Result<Vec<Duration>> {
    let mut last: Option<String> = None;
    let mut last_question: Option<String> = None;
    let mut times = Vec::with_capacity(n);
    for i in first..first + n {
        let (kind, draft) = draft(i, last.as_ref(), last_question.as_ref());
        let start = Instant::now();
        let id = engine.post(topic, kind, draft)?;
        times.push(start.elapsed());
        if kind == Kind::Question {
            last_question = Some(id.clone());
        }
        last = Some(id);
    }
    Ok(times)
}

/// Opens an engine on a new sled store in `dir`.
fn sled_engine(dir: &Path, key: Keypair) -> Result<Engine> {
    let backend =
        SledBackend::open(dir).with_context(|| format!("opening a store in {}", dir.display()))?;
    Ok(Engine::open(Box::new(backend), key))
}

fn profile(name: &str) -> Profile {
    Profile {
        name: name.to_string(),
        about: "benchmark member".to_string(),
    }
}

/// A journal document of `n` contributions, written one change per contribution as a member
/// does, and one more contribution change (unsigned) for it.
fn journal_with(key: &Keypair, n: usize) -> Result<(Automerge, Change)> {
    let mut doc = genesis::new_doc(key);
    let member = key.member_id();
    genesis::transact(&mut doc, 1, |tx| journal::init(tx, &member, 0, None, 1))?;
    for i in 0..n {
        let (kind, draft) = draft(i * 10, None, None);
        let id = format!("{:016x}", i as u64 + 1);
        genesis::transact(&mut doc, i as i64 + 2, |tx| {
            journal::put_contribution(tx, &id, kind, &draft, i as i64 + 2)
        })?;
    }
    let mut next = doc.clone();
    let (kind, draft) = draft(n * 10, None, None);
    let id = format!("{:016x}", n as u64 + 1);
    let change = genesis::transact(&mut next, n as i64 + 2, |tx| {
        journal::put_contribution(tx, &id, kind, &draft, n as i64 + 2)
    })?;
    Ok((doc, change))
}

// ---------------------------------------------------------------------------------------------
// 1. Floors.

struct Floors {
    sign: Samples,
    decompress: Samples,
    verify: Samples,
    decode: Samples,
    apply: Samples,
    transact: Samples,
    flush: Samples,
    diff: Samples,
    logged: Samples,
    transact_logged: Samples,
    one_by_one: Duration,
    batched: Duration,
    journal_changes: usize,
}

fn floors(sizes: &Sizes) -> Result<Floors> {
    let key = Keypair::generate();
    let (doc, change) = journal_with(&key, 200)?;
    let topic = TopicId([7; 32]);
    let doc_id = DocId::Journal {
        member: key.member_id(),
        n: 0,
    };
    let message = signing_message(&topic, &doc_id, &change.hash());
    let signing = SigningKey::from_bytes(&key.to_bytes());
    let public = signing.verifying_key().to_bytes();
    let verifying = signing.verifying_key();
    let signature = signing.sign(&message);

    let mut sign = Vec::with_capacity(sizes.floor_iters);
    let mut decompress = Vec::with_capacity(sizes.floor_iters);
    let mut verify = Vec::with_capacity(sizes.floor_iters);
    let mut decode = Vec::with_capacity(sizes.floor_iters);
    for _ in 0..sizes.floor_iters {
        let start = Instant::now();
        let s: Signature = signing.sign(std::hint::black_box(&message));
        sign.push(start.elapsed());
        std::hint::black_box(s);

        let start = Instant::now();
        let k = VerifyingKey::from_bytes(std::hint::black_box(&public));
        decompress.push(start.elapsed());
        ensure!(k.is_ok(), "the key decompresses");

        let start = Instant::now();
        let ok = verifying.verify_strict(std::hint::black_box(&message), &signature);
        verify.push(start.elapsed());
        ensure!(ok.is_ok(), "the signature verifies");

        let bytes = change.raw_bytes().to_vec();
        let start = Instant::now();
        let decoded = Change::from_bytes(bytes);
        decode.push(start.elapsed());
        ensure!(decoded.is_ok(), "the change decodes");
    }

    // Apply and transact into copies of the 200-contribution document; the copy is not timed.
    let mut apply = Vec::with_capacity(sizes.apply_iters);
    let mut transact = Vec::with_capacity(sizes.apply_iters);
    for i in 0..sizes.apply_iters {
        let mut copy = doc.clone();
        let changes = vec![change.clone()];
        let start = Instant::now();
        copy.apply_changes(changes)?;
        apply.push(start.elapsed());
        std::hint::black_box(&copy);

        let mut copy = doc.clone();
        let (kind, draft) = draft(i, None, None);
        let id = format!("{:016x}", 1_000_000 + i as u64);
        let start = Instant::now();
        let made = genesis::transact(&mut copy, 5, |tx| {
            journal::put_contribution(tx, &id, kind, &draft, 5)
        })?;
        transact.push(start.elapsed());
        std::hint::black_box(made);
    }

    // Where the engine's time goes besides the floors: finding what a change touched by
    // diffing the document's heads (as the index does), against logging patches while
    // applying; and one journal's changes applied one call each, against one call for all.
    let mut diff = Vec::with_capacity(sizes.apply_iters);
    let mut logged = Vec::with_capacity(sizes.apply_iters);
    let mut transact_logged = Vec::with_capacity(sizes.apply_iters);
    let mut with_change = doc.clone();
    with_change.apply_changes(vec![change.clone()])?;
    let after = with_change.get_heads();
    for _ in 0..sizes.apply_iters {
        let start = Instant::now();
        let patches = with_change.diff(change.deps(), &after);
        diff.push(start.elapsed());
        ensure!(!patches.is_empty(), "the diff finds the change");

        let mut copy = doc.clone();
        let changes = vec![change.clone()];
        let start = Instant::now();
        let mut log = PatchLog::active();
        copy.apply_changes_log_patches(changes, &mut log)?;
        let patches = copy.make_patches(&mut log);
        logged.push(start.elapsed());
        ensure!(!patches.is_empty(), "the patch log finds the change");

        // A local write: the transaction logs its own patches.
        let mut copy = doc.clone();
        let (kind, draft) = draft(7, None, None);
        let id = format!("{:016x}", 2_000_000u64);
        let start = Instant::now();
        let done = copy
            .transact_and_log_patches_with(
                |_| CommitOptions::default().with_time(5),
                |tx| journal::put_contribution(tx, &id, kind, &draft, 5),
            )
            .map_err(|f| f.error)?;
        let mut log = done.patch_log;
        let patches = copy.make_patches(&mut log);
        transact_logged.push(start.elapsed());
        ensure!(!patches.is_empty(), "the transaction logs its patches");
    }
    let (full, _) = journal_with(&key, JOURNAL_ROLLOVER)?;
    let all = full.get_changes(&[]);
    let rounds = if sizes.apply_iters >= 1_000 { 5 } else { 1 };
    let mut one_by_one = Duration::MAX;
    let mut batched = Duration::MAX;
    for _ in 0..rounds {
        let mut doc = Automerge::new();
        let start = Instant::now();
        for c in &all {
            doc.apply_changes(vec![c.clone()])?;
        }
        one_by_one = one_by_one.min(start.elapsed());
        let mut doc = Automerge::new();
        let changes = all.clone();
        let start = Instant::now();
        doc.apply_changes(changes)?;
        batched = batched.min(start.elapsed());
    }

    // One key written and flushed, on the same disk the engine benchmarks use.
    let dir = tempfile::tempdir()?;
    let store = SledBackend::open(dir.path())?;
    let value = vec![0x5a; change.raw_bytes().len() + 64];
    let mut flush = Vec::with_capacity(sizes.flush_iters);
    for i in 0..sizes.flush_iters {
        let mut batch = Batch::default();
        batch.put(format!("key-{i:08}").into_bytes(), value.clone());
        let start = Instant::now();
        store.write(batch)?;
        store.flush()?;
        flush.push(start.elapsed());
    }

    Ok(Floors {
        sign: Samples::new(sign),
        decompress: Samples::new(decompress),
        verify: Samples::new(verify),
        decode: Samples::new(decode),
        apply: Samples::new(apply),
        transact: Samples::new(transact),
        flush: Samples::new(flush),
        diff: Samples::new(diff),
        logged: Samples::new(logged),
        transact_logged: Samples::new(transact_logged),
        one_by_one,
        batched,
        journal_changes: all.len(),
    })
}

fn report_floors(report: &mut Report, f: &Floors) {
    report.section("floors: bare library operations, median per op");
    report
        .row(
            "floor.sign",
            "ed25519 sign (dalek)",
            us(f.sign.median()),
            "us",
        )
        .note(format!("p99 {:.1} us", us(f.sign.p99())));
    report
        .row(
            "floor.key",
            "ed25519 key decompress (dalek)",
            us(f.decompress.median()),
            "us",
        )
        .note(format!("p99 {:.1} us", us(f.decompress.p99())));
    report
        .row(
            "floor.verify",
            "ed25519 verify_strict (dalek)",
            us(f.verify.median()),
            "us",
        )
        .note(format!("p99 {:.1} us", us(f.verify.p99())));
    report
        .row(
            "floor.decode",
            "automerge Change::from_bytes",
            us(f.decode.median()),
            "us",
        )
        .note(format!("p99 {:.1} us", us(f.decode.p99())));
    report
        .row(
            "floor.apply",
            "automerge apply 1 change, doc of 200",
            us(f.apply.median()),
            "us",
        )
        .note(format!(
            "p99 {:.1} us; {:.0}/s",
            us(f.apply.p99()),
            1e6 / us(f.apply.median())
        ));
    report
        .row(
            "floor.transact",
            "automerge make 1 change, doc of 200",
            us(f.transact.median()),
            "us",
        )
        .note(format!("p99 {:.1} us", us(f.transact.p99())));
    report
        .row(
            "floor.flush",
            "sled write 1 key + flush",
            us(f.flush.median()),
            "us",
        )
        .note(format!("p99 {:.1} us", us(f.flush.p99())));

    report.section("reference: automerge costs our design chooses, median per op");
    report
        .row(
            "ref.diff",
            "diff(deps, heads) of 1 change, doc of 200",
            us(f.diff.median()),
            "us",
        )
        .note(format!(
            "what the index does per change; {:.1}x the apply",
            us(f.diff.median()) / us(f.apply.median())
        ));
    report
        .row(
            "ref.apply_logged",
            "apply 1 change + make_patches, doc of 200",
            us(f.logged.median()),
            "us",
        )
        .note(format!(
            "apply with a patch log instead of diff: {:.2}x the bare apply",
            us(f.logged.median()) / us(f.apply.median())
        ));
    report
        .row(
            "ref.transact_logged",
            "make 1 change + make_patches, doc of 200",
            us(f.transact_logged.median()),
            "us",
        )
        .note(format!(
            "a local write logging its patches: {:.2}x the bare make",
            us(f.transact_logged.median()) / us(f.transact.median())
        ));
    let n = f.journal_changes as f64;
    report
        .row(
            "ref.apply_each",
            "a full journal applied 1 change per call",
            us(f.one_by_one) / n,
            "us",
        )
        .note(format!(
            "per change, {} changes, best of the rounds",
            f.journal_changes
        ));
    report
        .row(
            "ref.apply_batch",
            "a full journal applied in 1 call",
            us(f.batched) / n,
            "us",
        )
        .note(format!(
            "per change; {:.1}x faster than 1 per call",
            f.one_by_one.as_secs_f64() / f.batched.as_secs_f64()
        ));
}

// ---------------------------------------------------------------------------------------------
// 2. Local contributions.

struct Local {
    per_commit: Samples,
    per_commit_wall: Duration,
    per_commit_cpu: Duration,
    group: Samples,
    group_wall: Duration,
    post_cpu: Samples,
    commit: Samples,
    posts: usize,
}

fn local(sizes: &Sizes) -> Result<Local> {
    let n = sizes.local_posts;

    // One commit per post.
    let dir = tempfile::tempdir()?;
    let mut engine = sled_engine(dir.path(), Keypair::generate())?;
    let topic = engine.create_topic("Local bench", &profile("Local"))?;
    engine.commit()?;
    let mut per_commit = Vec::with_capacity(n);
    let mut last: Option<String> = None;
    let mut last_question: Option<String> = None;
    let cpu = thread_cpu();
    let wall = Instant::now();
    for i in 0..n {
        let (kind, draft) = draft(i, last.as_ref(), last_question.as_ref());
        let start = Instant::now();
        let id = engine.post(&topic, kind, draft)?;
        engine.commit()?;
        per_commit.push(start.elapsed());
        if kind == Kind::Question {
            last_question = Some(id.clone());
        }
        last = Some(id);
    }
    let per_commit_wall = wall.elapsed();
    let per_commit_cpu = thread_cpu().saturating_sub(cpu);
    drop(engine);

    // Group commit: a commit every GROUP posts.
    let dir = tempfile::tempdir()?;
    let mut engine = sled_engine(dir.path(), Keypair::generate())?;
    let topic = engine.create_topic("Local bench", &profile("Local"))?;
    engine.commit()?;
    let mut group = Vec::with_capacity(n);
    let mut post_cpu = Vec::with_capacity(n);
    let mut commit = Vec::with_capacity(n / GROUP + 1);
    let mut last: Option<String> = None;
    let mut last_question: Option<String> = None;
    let mut starts = Vec::with_capacity(GROUP);
    let wall = Instant::now();
    for i in 0..n {
        let (kind, draft) = draft(i, last.as_ref(), last_question.as_ref());
        let start = Instant::now();
        let id = engine.post(&topic, kind, draft)?;
        post_cpu.push(start.elapsed());
        starts.push(start);
        if kind == Kind::Question {
            last_question = Some(id.clone());
        }
        last = Some(id);
        if starts.len() == GROUP || i + 1 == n {
            let before = Instant::now();
            engine.commit()?;
            let done = Instant::now();
            commit.push(done - before);
            group.extend(starts.drain(..).map(|s| done - s));
        }
    }
    let group_wall = wall.elapsed();

    Ok(Local {
        per_commit: Samples::new(per_commit),
        per_commit_wall,
        per_commit_cpu,
        group: Samples::new(group),
        group_wall,
        post_cpu: Samples::new(post_cpu),
        commit: Samples::new(commit),
        posts: n,
    })
}

fn report_local(report: &mut Report, l: &Local, f: &Floors) {
    let cpu_floor = f.transact.median() + f.sign.median() + f.decode.median() + f.verify.median();
    let confirm_floor = cpu_floor + f.flush.median();
    report.section("local contributions confirmed (post + commit on sled)");
    let rate = l.posts as f64 / l.per_commit_wall.as_secs_f64();
    report
        .row(
            "local.flush_each.rate",
            "commit per post: confirmed/s",
            rate,
            "/s",
        )
        .target(Target::AtLeast(LOCAL_RATE_TARGET))
        .note(format!(
            "{} posts in {:.2} s ({:.2} s on CPU of this thread)",
            l.posts,
            l.per_commit_wall.as_secs_f64(),
            l.per_commit_cpu.as_secs_f64()
        ));
    report
        .row(
            "local.flush_each.p50",
            "commit per post: latency median",
            ms(l.per_commit.median()),
            "ms",
        )
        .note(format!("max {:.2} ms", ms(l.per_commit.max())));
    report
        .row(
            "local.flush_each.p99",
            "commit per post: latency p99",
            ms(l.per_commit.p99()),
            "ms",
        )
        .target(Target::Below(LOCAL_P99_TARGET_MS));
    report
        .row(
            "local.flush_each.ratio",
            "commit per post: median / floor",
            us(l.per_commit.median()) / us(confirm_floor),
            "x",
        )
        .note(format!(
            "floor = make + sign + decode + verify + 1-key flush = {:.1} us",
            us(confirm_floor)
        ));

    let rate = l.posts as f64 / l.group_wall.as_secs_f64();
    report
        .row(
            "local.group16.rate",
            "group commit (16): confirmed/s",
            rate,
            "/s",
        )
        .target(Target::AtLeast(LOCAL_RATE_TARGET))
        .note(format!(
            "{} posts in {:.2} s",
            l.posts,
            l.group_wall.as_secs_f64()
        ));
    report
        .row(
            "local.group16.p50",
            "group commit (16): latency median",
            ms(l.group.median()),
            "ms",
        )
        .note(format!("max {:.2} ms", ms(l.group.max())));
    report
        .row(
            "local.group16.p99",
            "group commit (16): latency p99",
            ms(l.group.p99()),
            "ms",
        )
        .target(Target::Below(LOCAL_P99_TARGET_MS));
    report
        .row(
            "local.post.p50",
            "post alone (no flush): median",
            us(l.post_cpu.median()),
            "us",
        )
        .note(format!("p99 {:.0} us", us(l.post_cpu.p99())));
    report
        .row(
            "local.post.ratio",
            "post alone: median / floor",
            us(l.post_cpu.median()) / us(cpu_floor),
            "x",
        )
        .note(format!(
            "floor = make + sign + decode + verify = {:.1} us",
            us(cpu_floor)
        ));
    report
        .row(
            "local.commit.p50",
            "commit of 16 posts: median",
            ms(l.commit.median()),
            "ms",
        )
        .note(format!(
            "p99 {:.2} ms; 1-key flush floor {:.2} ms",
            ms(l.commit.p99()),
            ms(f.flush.median())
        ));
}

// ---------------------------------------------------------------------------------------------
// 3. Remote changes, and the big topic they make.

/// What the source members wrote.
struct Sources {
    admin_secret: [u8; 32],
    topic: TopicId,
    changes: Vec<SignedChange>,
    members: usize,
    wall: Duration,
}

/// The first bytes of a sources file.
const SOURCES_MAGIC: &[u8; 16] = b"catchment-src-v1";

impl Sources {
    /// Writes the sources to `path`: magic, admin secret, topic, members, contributions, then
    /// each change as a 4-byte length and its envelope.
    fn save(&self, path: &Path, contributions: usize) -> Result<()> {
        let mut out = Vec::with_capacity(self.changes.iter().map(|c| c.bytes.len() + 120).sum());
        out.extend_from_slice(SOURCES_MAGIC);
        out.extend_from_slice(&self.admin_secret);
        out.extend_from_slice(&self.topic.0);
        out.extend_from_slice(&(self.members as u64).to_le_bytes());
        out.extend_from_slice(&(contributions as u64).to_le_bytes());
        for change in &self.changes {
            let bytes = catchment_protocol::envelope::encode(change);
            out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
        std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
    }

    /// Reads sources written by [`Sources::save`]; returns them and the contribution count.
    fn load(path: &Path) -> Result<(Sources, usize)> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let bad = || anyhow::anyhow!("{} is not a sources file", path.display());
        let header = 16 + 32 + 32 + 8 + 8;
        ensure!(
            bytes.len() >= header && &bytes[..16] == SOURCES_MAGIC,
            "{} is not a sources file (written by --save-sources)",
            path.display()
        );
        let admin_secret: [u8; 32] = bytes[16..48].try_into()?;
        let topic = TopicId(bytes[48..80].try_into()?);
        let members = u64::from_le_bytes(bytes[80..88].try_into()?) as usize;
        let contributions = u64::from_le_bytes(bytes[88..96].try_into()?) as usize;
        let mut changes = Vec::new();
        let mut rest = &bytes[header..];
        while !rest.is_empty() {
            let len_bytes: [u8; 4] = rest.get(..4).ok_or_else(bad)?.try_into()?;
            let len = u32::from_le_bytes(len_bytes) as usize;
            let envelope = rest.get(4..4 + len).ok_or_else(bad)?;
            changes.push(
                catchment_protocol::envelope::decode(envelope)
                    .with_context(|| format!("a change in {}", path.display()))?,
            );
            rest = &rest[4 + len..];
        }
        Ok((
            Sources {
                admin_secret,
                topic,
                changes,
                members,
                wall: Duration::ZERO,
            },
            contributions,
        ))
    }
}

/// One member's share of the writing.
struct Job {
    key: Keypair,
    invite: Option<(catchment_crdt::invite::Grant, Keypair)>,
    posts: usize,
    first: usize,
}

/// Writes `total` contributions spread over members, each on its own engine and store;
/// returns their signed changes in an order a receiver can apply without waiting: the charter
/// and the admin's journals first, then each member's journals, each in its log order.
fn produce(total: usize, threads: usize, work: &Path) -> Result<Sources> {
    let wall = Instant::now();
    let members = total.div_ceil(PER_MEMBER).max(4);
    let admin_key = Keypair::generate();
    let admin_secret = admin_key.to_bytes();
    let admin_dir = work.join("source-admin");
    let mut admin = sled_engine(&admin_dir, admin_key)?;
    let topic = admin.create_topic("Platform team ideas", &profile("Admin"))?;
    let mut jobs = Vec::with_capacity(members - 1);
    for _ in 1..members {
        let invite = admin.create_invite(&topic, Role::Member, None, Some(1))?;
        jobs.push(Job {
            key: Keypair::generate(),
            invite: Some(invite),
            posts: 0,
            first: 0,
        });
    }
    let base = admin.changes(&topic)?;
    let mut first = 0;
    let share = |m: usize| total / members + usize::from(m < total % members);
    let admin_posts = share(0);
    first += admin_posts;
    for (m, job) in jobs.iter_mut().enumerate() {
        job.posts = share(m + 1);
        job.first = first;
        first += job.posts;
    }

    // The admin writes on this thread while the members write on the others.
    let queue = std::sync::Mutex::new(jobs);
    let results: Vec<Result<Vec<SignedChange>>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let queue = &queue;
                let base = &base;
                scope.spawn(move || -> Result<Vec<SignedChange>> {
                    let mut out = Vec::new();
                    // At most one job per member; the loop ends when the queue is empty.
                    for _ in 0..members {
                        let Some(job) = queue.lock().expect("queue").pop() else {
                            break;
                        };
                        out.extend(write_member(job, &topic, base, work, w)?);
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut admin_changes = || -> Result<Vec<SignedChange>> {
            post_many(&mut admin, &topic, admin_posts, 0)?;
            admin.commit()?;
            Ok(admin.changes(&topic)?)
        };
        let mut all = vec![admin_changes()];
        all.extend(workers.into_iter().map(|w| {
            w.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a writer panicked")))
        }));
        all
    });
    let mut changes = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        let mut part = result?;
        if i == 0 {
            part.sort_by_key(|c| c.doc);
        }
        changes.extend(part);
    }
    Ok(Sources {
        admin_secret,
        topic,
        changes,
        members,
        wall: wall.elapsed(),
    })
}

/// One member joins with its invite, writes its share and hands back its own changes.
fn write_member(
    job: Job,
    topic: &TopicId,
    base: &[SignedChange],
    work: &Path,
    worker: usize,
) -> Result<Vec<SignedChange>> {
    let me = job.key.member_id();
    let dir = work.join(format!("source-{}-{worker}", me.short()));
    let mut engine = sled_engine(&dir, job.key)?;
    let report = engine.ingest(topic, base.to_vec())?;
    ensure!(
        report.rejected.is_empty() && report.pending == 0,
        "the member takes the admin's changes: {report:?}"
    );
    let (grant, invite) = job.invite.context("a member needs an invite")?;
    engine.join(&grant, &invite, &profile(&format!("Member {}", me.short())))?;
    post_many(&mut engine, topic, job.posts, job.first)?;
    engine.commit()?;
    let mut own: Vec<SignedChange> = engine
        .changes(topic)?
        .into_iter()
        .filter(|c| c.doc.journal_owner() == Some(me))
        .collect();
    // Stable: each document's changes stay in log order.
    own.sort_by_key(|c| c.doc);
    drop(engine);
    std::fs::remove_dir_all(&dir).ok();
    Ok(own)
}

struct Remote {
    changes: usize,
    cpu: Duration,
    process_cpu: Duration,
    batches: Samples,
    wall: Duration,
    first_tenth_rate: f64,
    last_tenth_rate: f64,
    size_on_disk: u64,
    du: (u64, u64),
}

/// Ingests every change into a fresh engine in `home`, in batches, one commit per batch.
fn ingest_all(home: &Path, sources: &Sources) -> Result<Remote> {
    // The receiving node is the admin's: the fresh process can then post into the topic.
    std::fs::create_dir_all(home)?;
    let key_file = home.join("member.key");
    std::fs::write(
        &key_file,
        format!("{}\n", hex_encode(&sources.admin_secret)),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    }
    let (home, _) = Home::init(home, None)?;
    let mut engine = sled_engine(&home.store_dir(), home.keypair()?)?;

    let mut batches: Vec<Vec<SignedChange>> = sources
        .changes
        .chunks(INGEST_BATCH)
        .map(<[SignedChange]>::to_vec)
        .collect();
    let count = batches.len();
    let mut times = Vec::with_capacity(count);
    let mut accepted = 0;
    let cpu = thread_cpu();
    let process = process_cpu();
    let wall = Instant::now();
    for batch in batches.drain(..) {
        let size = batch.len();
        let start = Instant::now();
        let report = engine.ingest(&sources.topic, batch)?;
        engine.commit()?;
        times.push(start.elapsed());
        ensure!(
            report.rejected.is_empty(),
            "changes refused: {:?}",
            report.rejected
        );
        ensure!(
            report.accepted.len() == size,
            "{} of {size} changes accepted ({} pending)",
            report.accepted.len(),
            report.pending
        );
        accepted += size;
    }
    let wall = wall.elapsed();
    let cpu = thread_cpu().saturating_sub(cpu);
    let process_cpu = process_cpu().saturating_sub(process);
    ensure!(
        engine.pending_count(&sources.topic)? == 0,
        "changes left pending"
    );

    let tenth = (count / 10).max(1);
    let rate = |slice: &[Duration]| {
        let n: usize = slice.len() * INGEST_BATCH;
        n as f64 / slice.iter().sum::<Duration>().as_secs_f64()
    };
    let first_tenth_rate = rate(&times[..tenth]);
    // The last batch may be short: leave it out of the tail's rate.
    let tail_end = if count > tenth + 1 { count - 1 } else { count };
    let last_tenth_rate = rate(&times[tail_end.saturating_sub(tenth)..tail_end]);
    let size_on_disk = engine.backend().size_on_disk()?;
    engine.commit()?;
    drop(engine);
    Ok(Remote {
        changes: accepted,
        cpu,
        process_cpu,
        batches: Samples::new(times),
        wall,
        first_tenth_rate,
        last_tenth_rate,
        size_on_disk,
        du: du(&home.store_dir())?,
    })
}

fn report_remote(report: &mut Report, r: &Remote, f: Option<&Floors>, sources: &Sources) {
    let floor = f.map(|f| f.decode.median() + f.verify.median() + f.apply.median());
    report.section("remote changes accepted (ingest in batches of 256 + commit, sled)");
    let rate = r.changes as f64 / r.wall.as_secs_f64();
    report
        .row("remote.rate", "accepted/s, whole topic", rate, "/s")
        .target(Target::AtLeast(REMOTE_RATE_TARGET))
        .note(format!(
            "{} changes from {} members in {:.2} s",
            r.changes,
            sources.members,
            r.wall.as_secs_f64()
        ));
    report
        .row(
            "remote.rate.cpu",
            "accepted per CPU-second of the ingest thread",
            r.changes as f64 / r.cpu.as_secs_f64(),
            "/s",
        )
        .note(format!(
            "{:.2} s on CPU of {:.2} s wall; other threads (sled's, signature checks) not counted",
            r.cpu.as_secs_f64(),
            r.wall.as_secs_f64()
        ));
    report
        .row(
            "remote.rate.process_cpu",
            "accepted per CPU-second of the whole process",
            r.changes as f64 / r.process_cpu.as_secs_f64(),
            "/s",
        )
        .note(format!(
            "{:.2} s on CPU, every thread (signature checks, sled's threads) counted",
            r.process_cpu.as_secs_f64()
        ));
    report
        .row(
            "remote.rate.first10",
            "accepted/s, first tenth of batches",
            r.first_tenth_rate,
            "/s",
        )
        .note("while the topic is small");
    report
        .row(
            "remote.rate.last10",
            "accepted/s, last tenth of batches",
            r.last_tenth_rate,
            "/s",
        )
        .note(format!(
            "last / first = {:.2}",
            r.last_tenth_rate / r.first_tenth_rate
        ));
    report
        .row(
            "remote.batch.p50",
            "batch of 256 + commit: median",
            ms(r.batches.median()),
            "ms",
        )
        .note(format!(
            "p99 {:.1} ms, max {:.1} ms",
            ms(r.batches.p99()),
            ms(r.batches.max())
        ));
    let per_change = report.row(
        "remote.per_change",
        "time per accepted change",
        1e6 / rate,
        "us",
    );
    if let Some(floor) = floor {
        per_change.note(format!(
            "floor = decode + verify_strict + apply = {:.1} us",
            us(floor)
        ));
        report.row(
            "remote.ratio",
            "per change / floor",
            (1e6 / rate) / us(floor),
            "x",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. The big topic, opened by a fresh process.

/// What the fresh process measured.
struct Opened {
    open_ms: f64,
    resolve_ms: f64,
    feed_ms: f64,
    total_ms: f64,
    rss_kb: u64,
    hwm_kb: u64,
    items: usize,
    contributions: usize,
    count_ms: f64,
    size_on_disk: u64,
    post_p50_ms: f64,
    post_p99_ms: f64,
    post_rate: f64,
    hwm_after_posts_kb: u64,
    /// Per kind of record: name, how many, key + value bytes.
    logical: Vec<(String, u64, u64)>,
    base_rss_kb: u64,
}

fn open_in_child(home: &Path, posts: usize) -> Result<Opened> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .arg("__open")
        .arg(home)
        .arg(posts.to_string())
        .output()
        .context("running the bench's fresh process")?;
    ensure!(
        output.status.success(),
        "the fresh process failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout)?;
    let line = text
        .lines()
        .rfind(|l| l.starts_with('{'))
        .context("no figures from the fresh process")?;
    let v: Value = serde_json::from_str(line)?;
    let f = |k: &str| {
        v[k].as_f64()
            .with_context(|| format!("no {k} from the fresh process"))
    };
    Ok(Opened {
        open_ms: f("open_ms")?,
        resolve_ms: f("resolve_ms")?,
        feed_ms: f("feed_ms")?,
        total_ms: f("total_ms")?,
        rss_kb: f("rss_kb")? as u64,
        hwm_kb: f("hwm_kb")? as u64,
        items: f("items")? as usize,
        contributions: f("contributions")? as usize,
        count_ms: f("count_ms")?,
        size_on_disk: f("size_on_disk")? as u64,
        post_p50_ms: f("post_p50_ms")?,
        post_p99_ms: f("post_p99_ms")?,
        post_rate: f("post_rate")?,
        hwm_after_posts_kb: f("hwm_after_posts_kb")? as u64,
        logical: v["logical"]
            .as_array()
            .context("no logical sizes from the fresh process")?
            .iter()
            .filter_map(|e| Some((e[0].as_str()?.to_string(), e[1].as_u64()?, e[2].as_u64()?)))
            .collect(),
        base_rss_kb: f("base_rss_kb")? as u64,
    })
}

/// The fresh process: `bench __open HOME POSTS`. Prints one JSON line.
fn open_child(args: &[String]) -> Result<()> {
    let [home, posts] = args else {
        bail!("usage: bench __open HOME POSTS")
    };
    let posts: usize = posts.parse()?;
    let base_rss_kb = proc_status("VmRSS")?;

    let start = Instant::now();
    let home = Home::open(Path::new(home))?;
    let backend = SledBackend::open(&home.store_dir())?;
    let mut engine = Engine::open(Box::new(backend), home.keypair()?);
    let opened = Instant::now();
    let topic = engine.resolve_topic(None)?;
    let resolved = Instant::now();
    let items = engine.feed(
        &topic,
        &FeedFilter {
            limit: PAGE,
            ..FeedFilter::default()
        },
    )?;
    let fed = Instant::now();
    let rss_kb = proc_status("VmRSS")?;
    let hwm_kb = proc_status("VmHWM")?;
    ensure!(
        items.len() == PAGE,
        "the first feed page has {} items",
        items.len()
    );

    let count_start = Instant::now();
    let counts = engine.counts(&topic)?;
    let count_ms = ms(count_start.elapsed());
    let contributions = counts.get("contributions").copied().unwrap_or(0);

    // Local posts into the big topic, one commit each.
    let mut times = Vec::with_capacity(posts);
    let wall = Instant::now();
    let mut last: Option<String> = None;
    for i in 0..posts {
        // No answers here (no question of this run to answer); comments reply to the last post.
        let (kind, draft) = draft(i, last.as_ref(), None);
        let t = Instant::now();
        let id = engine.post(&topic, kind, draft)?;
        engine.commit()?;
        times.push(t.elapsed());
        last = Some(id);
    }
    let post_rate = posts as f64 / wall.elapsed().as_secs_f64().max(1e-9);
    let samples = Samples::new(if times.is_empty() {
        vec![Duration::ZERO]
    } else {
        times
    });
    let size_on_disk = engine.backend().size_on_disk()?;
    let logical = logical_sizes(engine.backend())?;
    let out = json!({
        "logical": logical,
        "open_ms": ms(opened - start),
        "resolve_ms": ms(resolved - opened),
        "feed_ms": ms(fed - resolved),
        "total_ms": ms(fed - start),
        "rss_kb": rss_kb,
        "hwm_kb": hwm_kb,
        "base_rss_kb": base_rss_kb,
        "items": items.len(),
        "contributions": contributions,
        "count_ms": count_ms,
        "size_on_disk": size_on_disk,
        "post_p50_ms": ms(samples.median()),
        "post_p99_ms": ms(samples.p99()),
        "post_rate": post_rate,
        "hwm_after_posts_kb": proc_status("VmHWM")?,
    });
    println!("{out}");
    Ok(())
}

fn report_big(report: &mut Report, o: &Opened, r: &Remote, n: usize, posts: usize) {
    report.section("a topic of N contributions, opened by a fresh process");
    report
        .row(
            "big.contributions",
            "contributions in the topic",
            o.contributions as f64,
            "",
        )
        .note(format!(
            "counted in {:.0} ms after the measurements below",
            o.count_ms
        ));
    report
        .row(
            "big.open",
            "open store + resolve topic + feed page",
            o.total_ms,
            "ms",
        )
        .target(Target::Below(OPEN_TARGET_MS))
        .note(format!(
            "open {:.1} + resolve {:.1} + feed {:.1} ms ({} items); warm page cache",
            o.open_ms, o.resolve_ms, o.feed_ms, o.items
        ));
    report
        .row(
            "big.rss",
            "resident memory after the feed page (VmRSS)",
            o.rss_kb as f64 / 1024.0,
            "MB",
        )
        .target(Target::Below(RSS_TARGET_MB))
        .note(format!(
            "{:.1} MB before opening",
            o.base_rss_kb as f64 / 1024.0
        ));
    report
        .row(
            "big.hwm",
            "peak resident memory so far (VmHWM)",
            o.hwm_kb as f64 / 1024.0,
            "MB",
        )
        .target(Target::Below(RSS_TARGET_MB));
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    report
        .row(
            "big.size",
            "store size: sled size_on_disk",
            mb(o.size_on_disk),
            "MB",
        )
        .note(format!(
            "just after ingest {:.1} MB; du: {:.1} MB allocated, {:.1} MB apparent",
            mb(r.size_on_disk),
            mb(r.du.0),
            mb(r.du.1)
        ));
    report.row(
        "big.size_per_1000",
        "store size per 1,000 contributions",
        mb(o.size_on_disk) * 1000.0 / n as f64,
        "MB",
    );
    let logical: u64 = o.logical.iter().map(|(_, _, bytes)| bytes).sum();
    let top: Vec<String> = o
        .logical
        .iter()
        .take(5)
        .map(|(name, count, bytes)| format!("{name} {count} = {:.1} MB", mb(*bytes)))
        .collect();
    report
        .row(
            "big.logical",
            "live keys + values in the store",
            mb(logical),
            "MB",
        )
        .note(format!(
            "size_on_disk / live = {:.1}; {}",
            o.size_on_disk as f64 / logical.max(1) as f64,
            top.join(", ")
        ));
    report
        .row(
            "big.post.rate",
            "post + commit into this topic: /s",
            o.post_rate,
            "/s",
        )
        .target(Target::AtLeast(LOCAL_RATE_TARGET))
        .note(format!("{posts} posts by the admin, one commit each"));
    report
        .row(
            "big.post.p99",
            "post + commit into this topic: p99",
            o.post_p99_ms,
            "ms",
        )
        .target(Target::Below(LOCAL_P99_TARGET_MS))
        .note(format!("median {:.2} ms", o.post_p50_ms));
    report
        .row(
            "big.hwm_after_posts",
            "peak resident memory after the posts (VmHWM)",
            o.hwm_after_posts_kb as f64 / 1024.0,
            "MB",
        )
        .target(Target::Below(RSS_TARGET_MB));
}

/// How many records of each kind the store holds and their bytes (keys + values), largest
/// first. Kinds are named by the key's first byte (see `catchment_node::store::layout`).
fn logical_sizes(backend: &dyn Backend) -> Result<Vec<(String, u64, u64)>> {
    let mut by_tag: BTreeMap<u8, (u64, u64)> = BTreeMap::new();
    for item in catchment_node::store::scan(backend, &[]) {
        let (k, v) = item?;
        let entry = by_tag.entry(k.first().copied().unwrap_or(0)).or_default();
        entry.0 += 1;
        entry.1 += (k.len() + v.len()) as u64;
    }
    let name = |tag: u8| match tag {
        b't' => "topic records".to_string(),
        b'c' => "signed changes".to_string(),
        b'l' => "log entries".to_string(),
        b's' => "snapshots".to_string(),
        b'd' => "log lengths".to_string(),
        b'C' => "index contributions".to_string(),
        b'F' => "index feed".to_string(),
        b'P' => "index replies".to_string(),
        b'E' => "index endorsements".to_string(),
        b'K' => "index kudos".to_string(),
        b'A' => "index admissions".to_string(),
        b'R' => "index profiles".to_string(),
        b'V' => "index charter".to_string(),
        other => format!("tag {:?}", other as char),
    };
    let mut out: Vec<(String, u64, u64)> = by_tag
        .into_iter()
        .map(|(tag, (count, bytes))| (name(tag), count, bytes))
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.2));
    Ok(out)
}

/// Time this thread has spent on a CPU (zero where the kernel does not say).
/// CPU time of the whole process, every thread (sled's and the engine's helpers) included.
fn process_cpu() -> Duration {
    // utime and stime, fields 14 and 15 of /proc/self/stat, in clock ticks of 1/100 s.
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let utime: u64 = fields.get(11)?.parse().ok()?;
            let stime: u64 = fields.get(12)?.parse().ok()?;
            Some(Duration::from_millis((utime + stime) * 10))
        })
        .unwrap_or_default()
}

fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|ns| ns.parse().ok()))
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn proc_status(field: &str) -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .with_context(|| format!("no {field} in /proc/self/status"))?;
    let kb = line[field.len() + 1..].trim().trim_end_matches("kB").trim();
    Ok(kb.parse()?)
}

/// Bytes allocated and apparent bytes of every file under `dir`.
fn du(dir: &Path) -> Result<(u64, u64)> {
    let mut allocated = 0;
    let mut apparent = 0;
    let mut stack = vec![dir.to_path_buf()];
    // Bounded: a store holds a handful of directories.
    for _ in 0..10_000 {
        let Some(d) = stack.pop() else { break };
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                apparent += meta.len();
                #[cfg(unix)]
                {
                    use std::os::unix::fs::MetadataExt;
                    allocated += meta.blocks() * 512;
                }
                #[cfg(not(unix))]
                {
                    allocated += meta.len();
                }
            }
        }
    }
    Ok((allocated, apparent))
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

// ---------------------------------------------------------------------------------------------

fn run(options: Options) -> Result<()> {
    let sizes = options.sizes();
    let mut report = Report::default();
    let load_before = load_average();
    let started = Instant::now();
    let progress = |what: &str| {
        if !options.json {
            eprintln!("[{:7.1} s] {what}", started.elapsed().as_secs_f64());
        }
    };
    if cfg!(debug_assertions) {
        eprintln!(
            "bench: this is a debug build; run with --release for figures that mean something"
        );
    }

    let f = if options.remote_only {
        None
    } else {
        progress("floors");
        let f = floors(&sizes)?;
        report_floors(&mut report, &f);
        progress("local contributions");
        let l = local(&sizes)?;
        report_local(&mut report, &l, &f);
        Some(f)
    };

    let temp = tempfile::tempdir()?;
    let work = match &options.keep {
        Some(dir) => {
            let empty = !dir.exists() || dir.read_dir()?.next().is_none();
            ensure!(
                empty,
                "--keep {} must be a new or an empty directory",
                dir.display()
            );
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => temp.path().to_path_buf(),
    };
    let (sources, contributions) = match &options.sources {
        Some(file) => {
            progress(&format!(
                "reading the source changes from {}",
                file.display()
            ));
            Sources::load(file)?
        }
        None => {
            progress(&format!(
                "writing {} contributions on the source members' engines",
                options.contributions
            ));
            let sources = produce(options.contributions, options.threads, &work)?;
            (sources, options.contributions)
        }
    };
    if let Some(file) = &options.save_sources {
        sources.save(file, contributions)?;
    }
    progress(&format!(
        "ingesting {} changes into a fresh engine",
        sources.changes.len()
    ));
    let home = work.join("home");
    let r = ingest_all(&home, &sources)?;
    report_remote(&mut report, &r, f.as_ref(), &sources);

    if !options.remote_only {
        progress("opening the topic in a fresh process");
        let o = open_in_child(&home, sizes.big_posts)?;
        ensure!(
            o.contributions >= contributions,
            "the topic holds {} contributions, not {}",
            o.contributions,
            contributions
        );
        report_big(&mut report, &o, &r, contributions, sizes.big_posts);
    }

    let mut counts = BTreeMap::new();
    for c in &sources.changes {
        *counts
            .entry(if c.doc == DocId::Charter {
                "charter"
            } else {
                "journal"
            })
            .or_insert(0usize) += 1;
    }
    report.fact(
        "build",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
    report.fact("contributions", contributions.to_string());
    report.fact("remote only", options.remote_only.to_string());
    report.fact("quick", options.quick.to_string());
    report.fact(
        "cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .to_string(),
    );
    report.fact("source members", sources.members.to_string());
    report.fact(
        "source changes",
        format!(
            "{} ({} charter, {} journal)",
            sources.changes.len(),
            counts.get("charter").unwrap_or(&0),
            counts.get("journal").unwrap_or(&0)
        ),
    );
    report.fact(
        "source writing",
        format!(
            "{:.1} s on {} threads (not a target)",
            sources.wall.as_secs_f64(),
            options.threads
        ),
    );
    report.fact(
        "load average (1/5/15 min) before, after",
        format!("{load_before}; {}", load_average()),
    );
    report.fact(
        "work dir",
        match &options.keep {
            Some(_) => format!("{} (kept: its home/ holds the big topic)", work.display()),
            None => format!("{} (removed)", work.display()),
        },
    );
    report.fact(
        "total time",
        format!("{:.1} s", started.elapsed().as_secs_f64()),
    );

    if options.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    Ok(())
}
