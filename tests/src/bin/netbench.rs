//! The benchmark for the issue "The network on one LAN".
//!
//! Run it in release, on a quiet machine, where the figures mean something:
//!
//! ```text
//! cargo run --release -p catchment-tests --bin netbench
//! cargo run --release -p catchment-tests --bin netbench -- --quick    # a smoke-sized run
//! ```
//!
//! Every node is a real node (`catchment_node::runtime::run`, as `catchment up` runs it) on
//! 127.0.0.1 with mDNS off and the default 30 s sync interval, on its own thread with a
//! one-worker tokio runtime, on a data directory of its own in a temporary directory. The
//! benchmark drives the nodes only through their local APIs, like the command line.
//!
//! 1. **Propagation**: ten nodes; node 0 creates a topic and makes one invite, the nine others
//!    join with it (so they dial node 0: a star). Once every node has synced, one node at a
//!    time, chosen at random (seeded), posts a contribution; the time from the post's API
//!    reply until every other node has it (its `change` event, `"local":false`, on that node's
//!    `GET /api/events` stream, read by a thread per node) is one sample. The same is measured
//!    for bare gossipsub in the same topology with payloads of the same size (see
//!    `netbench/gossip.rs`), and our figures are shown as ratios to it.
//! 2. **Reconnect merge**: two nodes join one topic and go offline; each writes N
//!    contributions through its API (several client threads at once, so the node's group
//!    commit batches them), with the texts of a real community's posts and comments (see
//!    `netbench/corpus.rs`); then both go online, and the time until both show the same
//!    `digest` is measured, with the sync bytes each wrote (the node's `sync_bytes_sent`
//!    counter), compared with the changes exchanged (read from both stores once the nodes
//!    have stopped) concatenated and deflated at level 6.
//! 3. **Idle cost** (run right after 1, on its nodes): an eleventh node, in a process of its
//!    own, joins the topic and connects to all ten nodes; once it holds the topic and activity
//!    has stopped, its CPU time (every thread's `schedstat`, and user + system from
//!    `/proc/PID/stat`) and resident memory are read over a quiet window (30 s by default: one
//!    sync interval). The CPU time of node 0's and node 1's threads is shown beside it.
//!
//! Every loop runs a bounded number of times and every wait has a deadline.

#[path = "netbench/corpus.rs"]
mod corpus;
#[path = "netbench/gossip.rs"]
mod gossip;
#[path = "netbench/idle.rs"]
mod idle;
#[path = "netbench/merge.rs"]
mod merge;
#[path = "netbench/node.rs"]
mod node;
#[path = "netbench/propagation.rs"]
mod propagation;
#[path = "netbench/report.rs"]
mod report;

use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use catchment_crdt::schema::{Kind, Role};
use catchment_node::ops::Request;
use catchment_node::runtime::NetRequest;
use serde_json::Value;

use corpus::Text;
use node::Api;
use propagation::Cluster;
use report::Report;

/// Nodes in the propagation run.
const NODES: usize = 10;
/// How long the nodes may take to connect and sync after the joins.
const SETTLE_BOUND: Duration = Duration::from_secs(60);
/// The sync interval of every node: the default of `catchment up`.
const SYNC_INTERVAL: Duration = Duration::from_secs(30);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("__node") {
        node::child_main(&args[1..])
    } else {
        Options::parse(&args).and_then(run)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Options.

const USAGE: &str =
    "usage: netbench [--quick] [--posts N] [--contributions N] [--idle SECONDS] [--seed S]

  --quick            30 timed posts, 500 contributions per side, 5 s idle (for smoke tests)
  --posts N          contributions whose propagation is timed (default 200)
  --contributions N  contributions each of the two nodes writes while offline (default 5000)
  --idle SECONDS     how long the idle node is watched (default 30)
  --seed S           seed for the choice of posting nodes (default 1)
  --corpus DIR       a Stack Exchange dump (Posts.xml, Comments.xml) whose texts the merge
                     posts (default: shared/data/history-meta beside the workspace; synthetic
                     texts when it cannot be read)";

struct Options {
    quick: bool,
    posts: usize,
    contributions: usize,
    idle: Duration,
    seed: u64,
    corpus: PathBuf,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut quick = false;
        let (mut posts, mut contributions, mut idle, mut seed) = (None, None, None, 1);
        let mut corpus = corpus::default_dir();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = |what: &str| -> Result<u64> {
                let text = it.next().with_context(|| format!("{arg} needs {what}"))?;
                text.replace('_', "")
                    .parse()
                    .with_context(|| format!("{arg} needs {what}, not {text:?}"))
            };
            match arg.as_str() {
                "--quick" => quick = true,
                "--posts" => posts = Some(value("a number")? as usize),
                "--contributions" => contributions = Some(value("a number")? as usize),
                "--idle" => idle = Some(value("a number of seconds")?),
                "--seed" => seed = value("a number")?,
                "--corpus" => {
                    corpus = it.next().context("--corpus needs a directory")?.into();
                }
                "-h" | "--help" => {
                    println!("{USAGE}");
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            }
        }
        let options = Options {
            quick,
            posts: posts.unwrap_or(if quick { 30 } else { 200 }),
            contributions: contributions.unwrap_or(if quick { 500 } else { 5_000 }),
            idle: Duration::from_secs(idle.unwrap_or(if quick { 5 } else { 30 })),
            seed,
            corpus,
        };
        ensure!(
            (1..=10_000).contains(&options.posts),
            "--posts must be 1 to 10000"
        );
        ensure!(
            (merge::WRITERS..=100_000).contains(&options.contributions),
            "--contributions must be {} to 100000",
            merge::WRITERS
        );
        ensure!(
            (1..=600).contains(&options.idle.as_secs()),
            "--idle must be 1 to 600 seconds"
        );
        Ok(options)
    }
}

// ---------------------------------------------------------------------------------------------
// Contributions.

const TAGS: [&str; 6] = ["build", "cache", "rust", "docs", "infra", "testing"];

/// The `i`-th synthetic contribution: a title, a body of about 200 characters and two tags.
fn contribution(i: usize) -> Text {
    Text {
        kind: if i % 5 == 3 {
            Kind::Question
        } else {
            Kind::Idea
        },
        title: format!("Cache the outputs of build step {} ({i})", i % 97),
        body: format!(
            "Contribution {i}. We could cut the time of step {} by caching its outputs between \
             runs; measured locally it saves about {} seconds a run. Numbers follow.",
            i % 97,
            i % 53
        ),
        tags: vec![
            TAGS[i % TAGS.len()].to_string(),
            TAGS[(i / 3) % TAGS.len()].to_string(),
        ],
    }
}

/// A request that posts `text`.
fn post(topic: &str, text: &Text) -> Request {
    Request::Post {
        topic: Some(topic.to_string()),
        kind: text.kind,
        title: text.title.clone(),
        body: text.body.clone(),
        tags: text.tags.clone(),
        parent: None,
        ask: None,
    }
}

fn create_topic(api: &Api) -> Result<String> {
    let created = api.call(&Request::TopicCreate {
        name: "netbench".into(),
    })?;
    Ok(created["id"]
        .as_str()
        .context("topic_create gave no id")?
        .to_string())
}

/// A member invite with no use limit; the running node adds its addresses.
fn invite(api: &Api, topic: &str) -> Result<String> {
    let made = api.call(&Request::InviteCreate {
        topic: Some(topic.to_string()),
        role: Role::Member,
        expires: None,
        uses: None,
        addresses: Vec::new(),
    })?;
    Ok(made["invite"]
        .as_str()
        .context("invite_create gave no invite")?
        .to_string())
}

/// How many connected peers the node's status shows as having synced the topic with it
/// (a session that ended with nothing to fetch, and no refusal).
fn synced_peers(api: &Api, topic: &str) -> Result<usize> {
    let status = api.network(&NetRequest::Status)?;
    let Some(entry) = status["topics"]
        .as_array()
        .and_then(|topics| topics.iter().find(|t| t["topic"] == topic))
    else {
        return Ok(0);
    };
    let synced = |peer: &&Value| {
        peer["connected"] == true && !peer["last_sync"].is_null() && peer["refused"].is_null()
    };
    Ok(entry["peers"]
        .as_array()
        .map(|peers| peers.iter().filter(synced).count())
        .unwrap_or(0))
}

/// The nodes' network status and counts of the topic, to say why a wait failed.
fn describe(nodes: &[(&str, &Api)], topic: &str) -> String {
    let mut out = String::new();
    for (name, api) in nodes {
        let status = api.network(&NetRequest::Status);
        let counts = api.call(&Request::TopicShow {
            topic: Some(topic.to_string()),
        });
        out.push_str(&format!(
            "{name}: status {}; counts {}\n",
            status.map_or_else(|e| e.to_string(), |v| v.to_string()),
            counts.map_or_else(|e| e.to_string(), |v| v["counts"].to_string())
        ));
    }
    out
}

// ---------------------------------------------------------------------------------------------

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn run(options: Options) -> Result<()> {
    let started = Instant::now();
    let load_before = load_average();
    let progress = |what: &str| eprintln!("[{:7.1} s] {what}", started.elapsed().as_secs_f64());
    if cfg!(debug_assertions) {
        eprintln!("netbench: a debug build; run with --release for figures that mean something");
    }
    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    let mut report = Report::default();

    let payload = propagation::sealed_contribution_size(&dir.join("size"))?;
    progress(&format!(
        "bare gossipsub: {NODES} swarms, {} messages of {payload} bytes",
        options.posts
    ));
    let bare = propagation::bare_gossip(options.posts, payload, options.seed)?;

    progress(&format!("{NODES} nodes: create, invite, join, sync"));
    let cluster = Cluster::start(&dir.join("cluster"))?;
    progress(&format!("{} posts, one at a time", options.posts));
    let ours = propagation::our_propagation(&cluster, options.posts, options.seed)?;
    report.section("propagation: 10 nodes on 127.0.0.1, star around node 0");
    propagation::report_propagation(&mut report, &ours, &bare);

    progress(&format!(
        "an eleventh node joins and connects to all; then {} s of quiet",
        options.idle.as_secs()
    ));
    let quiet = idle::idle(&cluster, dir, options.idle)?;
    cluster.stop()?;

    progress("two nodes: join, stop, start, go offline");
    let (texts, corpus) = match corpus::load(&options.corpus) {
        Ok(texts) if !texts.is_empty() => {
            let bytes: usize = texts.iter().map(|t| t.title.len() + t.body.len()).sum();
            let about = format!(
                "{} posts and comments from {} (oldest first, round the list), {} bytes of \
                 title and body on average",
                texts.len(),
                options.corpus.display(),
                bytes / texts.len()
            );
            (texts, about)
        }
        outcome => {
            let why = outcome
                .err()
                .map_or("no text".to_string(), |e| format!("{e:#}"));
            let texts = (0..2 * options.contributions).map(contribution).collect();
            (texts, format!("synthetic, about 200 bytes each ({why})"))
        }
    };
    let merged = merge::merge(&dir.join("merge"), options.contributions, &texts, &progress)?;
    report.section("reconnect merge: two nodes, offline writes on both");
    merge::report_merge(&mut report, &merged);

    report.section("idle: a node in a topic with 10 peers, nothing happening");
    idle::report_idle(&mut report, &quiet);

    report.fact(
        "build",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
    );
    report.fact("quick", options.quick.to_string());
    report.fact(
        "cores",
        thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .to_string(),
    );
    report.fact(
        "nodes",
        "each on its own thread with a current-thread tokio runtime, in this process; the idle \
         node in a process of its own; 127.0.0.1, TCP, mDNS off, sync interval 30 s",
    );
    report.fact("seed", options.seed.to_string());
    report.fact("merge contributions", corpus);
    report.fact(
        "gossip payload",
        format!("{payload} bytes (one contribution's envelope, sealed)"),
    );
    report.fact(
        "load average (1/5/15 min) before, after",
        format!("{load_before}; {}", load_average()),
    );
    report.fact(
        "total time",
        format!("{:.1} s", started.elapsed().as_secs_f64()),
    );
    print!("{}", report.table());
    Ok(())
}
