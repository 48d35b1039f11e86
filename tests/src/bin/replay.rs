//! The replay harness: a Stack Exchange dump replayed as live traffic across real nodes while
//! they go offline and come back, then every node checked against the dump's ground truth.
//!
//! ```text
//! cargo run --release -p catchment-tests --bin replay -- ../shared/data/history-meta
//! cargo run --release -p catchment-tests --bin replay -- DIR --nodes 5 --seed 7 \
//!     --speed 500 --offline 0.33
//! ```
//!
//! Real `catchment up` processes on 127.0.0.1 (the binary beside this one, or `--catchment`),
//! each original author's events through one node (fixed by the seed), events in time order
//! at `--speed` events/s (default: as fast as the nodes take them). One node spends
//! `--offline` of the replay with its network off; the others except node 1 drop off once for
//! a shorter stretch, one of them as a stopped process (see `catchment_node::replay`). Prints
//! the schedule, the figures (events/s sustained across the nodes, time from the last event to
//! every node agreeing, the load average), and every difference from the ground truth (the
//! first `--show` and the count). Exit status 0 only with no difference and no refused write.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use catchment_node::replay::{self, Cluster, ClusterConfig, ReplayConfig};
use clap::Parser;

/// Replays a Stack Exchange dump across real nodes with churn and checks the result.
#[derive(Debug, Parser)]
#[command(name = "replay")]
struct Options {
    /// The dump's directory (Posts.xml, Comments.xml, Votes.xml, ...).
    dump: PathBuf,
    /// How many nodes.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Seed for the churn schedule and which node writes for whom.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Events per second across the nodes; 0 sends them as fast as the nodes take them.
    #[arg(long, default_value_t = 0.0)]
    speed: f64,
    /// The share of the replay one node spends offline.
    #[arg(long, default_value_t = 1.0 / 3.0)]
    offline: f64,
    /// The longest wait, after the last event, for every node to agree (seconds).
    #[arg(long, default_value_t = 180)]
    agreement_timeout: u64,
    /// How many differences to print.
    #[arg(long, default_value_t = 20)]
    show: usize,
    /// The `catchment` binary (default: the one beside this binary).
    #[arg(long)]
    catchment: Option<PathBuf>,
    /// Where the nodes' data directories go (default: a temporary directory, removed after).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn run(options: Options) -> Result<bool> {
    if options.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    if !(options.speed >= 0.0 && options.speed.is_finite()) {
        bail!("--speed must be 0 (as fast as possible) or a positive number of events/s");
    }
    if !(0.0..=1.0).contains(&options.offline) {
        bail!("--offline must be a fraction between 0 and 1");
    }
    if !options.dump.is_dir() {
        bail!("{} is not a directory", options.dump.display());
    }
    let catchment = match options.catchment {
        Some(path) => path,
        None => std::env::current_exe()
            .context("find this binary")?
            .with_file_name("catchment"),
    };
    if !catchment.is_file() {
        bail!(
            "no catchment binary at {} (build it with `cargo build -p catchment-cli`, or give --catchment)",
            catchment.display()
        );
    }
    let read_start = Instant::now();
    let (source, events, truth) = replay::source::load(&options.dump)?;
    println!(
        "{}: {} events, {} posts, {} authors (read in {:.2} s)",
        options.dump.display(),
        events.len(),
        truth.posts.len(),
        truth.authors.len(),
        read_start.elapsed().as_secs_f64()
    );
    let temp = tempfile::Builder::new()
        .prefix("catchment-replay.")
        .tempdir()?;
    let dir = options.dir.unwrap_or_else(|| temp.path().to_path_buf());
    let load_before = load_average();
    let cluster = Cluster::start(&ClusterConfig {
        bin: catchment,
        dir: dir.clone(),
        nodes: options.nodes,
        sync_interval: 1,
        topic_name: format!("Replay of {source}"),
    })?;
    println!("{} nodes up in {}", options.nodes, dir.display());
    let config = ReplayConfig {
        seed: options.seed,
        speed: (options.speed > 0.0).then_some(options.speed),
        offline_fraction: options.offline,
        agreement_timeout: Duration::from_secs(options.agreement_timeout),
        stop: Default::default(),
    };
    let mut last_print = Instant::now();
    let (cluster, report) = replay::replay(cluster, &events, &truth, &config, |p| {
        if last_print.elapsed() >= Duration::from_secs(5) {
            last_print = Instant::now();
            println!(
                "  {}/{} confirmed, nodes away: {:?}",
                p.confirmed, p.total, p.down
            );
        }
    })?;
    let load_after = load_average();
    for line in &report.schedule {
        println!("  {line}");
    }
    for (i, (written, down)) in report.per_node.iter().zip(&report.down_events).enumerate() {
        println!(
            "  node {}: wrote {written} events; away for {down} of {} events ({:.0} %)",
            i + 1,
            report.events,
            *down as f64 * 100.0 / report.events.max(1) as f64
        );
    }
    println!("figures ({} nodes, seed {}):", report.nodes, options.seed);
    println!(
        "  replay: {} events in {:.2} s: {:.0} events/s sustained across the nodes",
        report.events,
        report.replay_time.as_secs_f64(),
        report.events_per_second
    );
    println!(
        "  from the last event to every node agreeing: {:.2} s",
        report.agreement_time.as_secs_f64()
    );
    println!("  load average before / after: {load_before} / {load_after}");
    for error in report.write_errors.iter().take(options.show) {
        println!("refused write: {error}");
    }
    for difference in report.differences.iter().take(options.show) {
        println!("difference: {difference}");
    }
    println!("refused writes: {}", report.write_errors.len());
    println!("differences: {}", report.differences.len());
    drop(cluster);
    Ok(report.passed())
}

fn main() -> ExitCode {
    match run(Options::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::from(2)
        }
    }
}
