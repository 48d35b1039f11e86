//! `catchment demo`: three local nodes replay a real community's history, with one of them
//! away for part of it, then check that every node shows what the source says.
//!
//! Needs no set-up: the sample (a trimmed Stack Exchange dump, CC BY-SA, by the site's
//! contributors) is inside the binary, the nodes run as child processes of this binary in
//! temporary data directories on 127.0.0.1, and everything is removed at the end.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use catchment_node::ops::Request;
use catchment_node::replay::{self, Cluster, ClusterConfig, ReplayConfig};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::render;

/// A line to standard output; a reader that went away (`| head`) is not an error.
macro_rules! say {
    ($($arg:tt)*) => {
        crate::emit(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// The bundled sample: (file name, contents).
const SAMPLE: [(&str, &str); 6] = [
    ("Posts.xml", include_str!("../demo/history-meta/Posts.xml")),
    (
        "Comments.xml",
        include_str!("../demo/history-meta/Comments.xml"),
    ),
    ("Votes.xml", include_str!("../demo/history-meta/Votes.xml")),
    ("Users.xml", include_str!("../demo/history-meta/Users.xml")),
    ("Tags.xml", include_str!("../demo/history-meta/Tags.xml")),
    (
        "LICENCE.md",
        include_str!("../demo/history-meta/LICENCE.md"),
    ),
];

/// The source name the demo's records are imported under.
const SOURCE: &str = "history-meta";

/// `catchment demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop after the check instead of keeping node 1 running (exit status 1 if it failed).
    #[arg(long)]
    exit: bool,
    /// Events per second across the nodes (default: as fast as they take them).
    #[arg(long)]
    speed: Option<f64>,
    /// Seed for who goes offline when.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn write_sample(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (name, text) in SAMPLE {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// Runs the demo. A Ctrl-C (or SIGTERM) at any moment stops the nodes and removes the
/// temporary directory before the demo exits.
pub fn run(args: DemoArgs) -> Result<()> {
    if args.speed.is_some_and(|s| !(s > 0.0 && s.is_finite())) {
        bail!("--speed must be a positive number of events per second");
    }
    let stop = watch_for_ctrl_c()?;
    match demo(args, stop.clone()) {
        Err(_) if stop.load(Ordering::Relaxed) => {
            say!("Interrupted: the nodes are stopped and their data removed.");
            std::process::exit(130);
        }
        other => other,
    }
}

fn demo(args: DemoArgs, stop: Arc<AtomicBool>) -> Result<()> {
    let interrupted = || -> Result<()> {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        Ok(())
    };
    let temp = tempfile::Builder::new()
        .prefix("catchment-demo.")
        .tempdir()
        .context("make a temporary directory")?;
    let data = temp.path().join(SOURCE);
    write_sample(&data)?;
    let (_source, events, truth) = replay::source::load(&data)?;
    let bin = std::env::current_exe().context("find this binary")?;
    say!(
        "Catchment demo: 3 nodes on 127.0.0.1 replay {} events of a real community",
        events.len()
    );
    say!("(a sample of the History meta site's public dump, CC BY-SA, by the site's contributors)");
    say!("Data directories in {}", temp.path().display());
    let cluster = Cluster::start(&ClusterConfig {
        bin: bin.clone(),
        dir: temp.path().join("nodes"),
        nodes: 3,
        sync_interval: 1,
        topic_name: "History meta (sample)".into(),
    })?;
    interrupted()?;
    say!("Node 1 created the topic; nodes 2 and 3 joined by invite (as admins, to import).");
    let bar = ProgressBar::new(events.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events, {per_sec} {msg}")
            .expect("a valid template"),
    );
    let config = ReplayConfig {
        seed: args.seed,
        speed: args.speed,
        offline_fraction: 1.0 / 3.0,
        agreement_timeout: Duration::from_secs(60),
        stop: stop.clone(),
    };
    let (cluster, report) = replay::replay(cluster, &events, &truth, &config, |p| {
        bar.set_position(p.confirmed as u64);
        bar.set_message(match p.down.as_slice() {
            [] => String::new(),
            down => format!(
                "· away: {}",
                down.iter()
                    .map(|n| format!("node {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    })?;
    bar.finish_and_clear();
    for line in &report.schedule {
        say!("  {line}");
    }
    say!(
        "Replayed {} events in {:.1} s ({:.0} events/s); every node agreed {:.1} s after the last.",
        report.events,
        report.replay_time.as_secs_f64(),
        report.events_per_second,
        report.agreement_time.as_secs_f64()
    );
    if report.passed() {
        say!(
            "Convergence check: PASS. All 3 nodes show what the source says: {} posts (score, \
             accepted answer, answers, comments), {} authors (questions, answers, comments) \
             and the totals.",
            truth.posts.len(),
            truth.authors.len()
        );
    } else {
        say!(
            "Convergence check: FAIL. {} refused writes, {} differences:",
            report.write_errors.len(),
            report.differences.len()
        );
        for line in report.write_errors.iter().take(10) {
            say!("  refused: {line}");
        }
        for difference in report.differences.iter().take(20) {
            say!("  {difference}");
        }
    }
    let node1 = &cluster.nodes[0];
    let request = Request::Leaderboard {
        topic: Some(cluster.topic.clone()),
    };
    let mut board = node1.call(&json!({"op": "leaderboard", "topic": cluster.topic}))?;
    if let Some(rows) = board["rows"].as_array_mut() {
        rows.truncate(10);
    }
    say!("\nLeaderboard on node 1 (top 10):");
    crate::emit(&render::response(&request, board)?);
    if args.exit {
        if !report.passed() {
            bail!("the convergence check failed");
        }
        return Ok(());
    }
    interrupted()?;
    let api = node1.api_address().unwrap_or_default();
    say!("\nThe 3 nodes keep running; node 1:");
    say!(
        "  API  http://{api}/api/call  (token in {})",
        node1.home.join("api.token").display()
    );
    say!(
        "  UI   {} --home {} open",
        bin.display(),
        node1.home.display()
    );
    say!(
        "  CLI  {} --home {} feed",
        bin.display(),
        node1.home.display()
    );
    say!("Press Ctrl-C to stop; everything above is removed then.");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
    }
    say!("Stopping the nodes.");
    drop(cluster);
    drop(temp);
    Ok(())
}

/// A flag that Ctrl-C or SIGTERM sets, from a thread of its own, so that the demo can stop its
/// nodes and remove its files instead of dying with them running.
fn watch_for_ctrl_c() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Registered here, before any node starts, so that no signal finds the default action.
    let mut term = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    })?;
    let mut int = runtime.block_on(async {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
    })?;
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("demo signals".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            flag.store(true, Ordering::Relaxed);
        })
        .context("start the signal watcher")?;
    Ok(stop)
}
