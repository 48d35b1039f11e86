//! Import benchmark: the whole shared Stack Exchange dump into a fresh node, as
//! `catchment import stackexchange` does it (batches of 1,000 events, a flush after each).
//!
//! Each run is a fresh process (this binary re-runs itself with `--one`), so that its peak
//! resident memory is the import's alone. Prints per run and the median of the runs: rows read
//! per second (the dump's XML rows, the reader alone and the whole import), records written per
//! second, peak resident memory (VmHWM), and the store's size per 1,000 contributions.
//!
//! ```sh
//! cargo run --release -p catchment-tests --bin importbench            # 3 runs
//! cargo run --release -p catchment-tests --bin importbench -- --runs 5 --dir PATH
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use catchment_crdt::schema::Profile;
use catchment_node::import::{self, ImportOutcome, Options};
use catchment_node::store::scan;
use catchment_node::{Engine, Home, SledBackend};
use serde_json::{json, Value};

fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/history-meta")
}

fn proc_status(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no {field} in /proc/self/status"))
}

fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// One import in this process; prints its figures as JSON.
fn one(dir: &Path) -> Result<Value> {
    let start = Instant::now();
    let options = Options::for_dir(dir);
    let plan = import::read(dir, &options)?;
    let read_s = start.elapsed().as_secs_f64();
    let rows = plan.total_rows();

    let home_dir = tempfile::tempdir()?;
    let (home, _) = Home::init(home_dir.path(), Some("bench"))?;
    let backend = SledBackend::open(&home.store_dir())?;
    let mut engine = Engine::open(Box::new(backend), home.keypair()?);
    let profile = Profile {
        name: "bench".into(),
        about: String::new(),
    };
    let topic = engine.create_topic("import bench", &profile)?;
    engine.commit()?;

    let write_start = Instant::now();
    let mut total = ImportOutcome::default();
    for batch in plan.events.chunks(1_000) {
        total.add(engine.import(&topic, batch)?);
        engine.commit()?;
    }
    let write_s = write_start.elapsed().as_secs_f64();
    let all_s = start.elapsed().as_secs_f64();
    if !total.refused.is_empty() {
        bail!(
            "{} events refused: {:?}",
            total.refused.len(),
            total.refused.first()
        );
    }
    let counts = engine.counts(&topic)?;
    let contributions = counts["contributions"] as u64;
    let sled_bytes = engine.backend().size_on_disk()?;
    // What the store holds, by key tag (keys and values, before sled's own overhead).
    let mut by_tag: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for item in scan(engine.backend(), &[]) {
        let (k, v) = item?;
        let tag = (k.first().copied().unwrap_or(b'?') as char).to_string();
        *by_tag.entry(tag).or_default() += (k.len() + v.len()) as u64;
    }
    let logical: u64 = by_tag.values().sum();
    let hwm_kb = proc_status("VmHWM")?;
    drop(engine);
    let files_bytes = dir_bytes(&home.store_dir())?;

    Ok(json!({
        "rows": rows,
        "events": plan.events.len(),
        "written": total.written,
        "changes": total.changes,
        "contributions": contributions,
        "votes": total.written_by.get("vote").copied().unwrap_or(0),
        "read_s": read_s,
        "write_s": write_s,
        "all_s": all_s,
        "rows_per_s_read": rows as f64 / read_s,
        "rows_per_s_all": rows as f64 / all_s,
        "records_per_s_write": total.written as f64 / write_s,
        "peak_rss_mb": hwm_kb as f64 / 1024.0,
        "store_files_mb": files_bytes as f64 / 1e6,
        "store_sled_mb": sled_bytes as f64 / 1e6,
        "store_logical_mb": logical as f64 / 1e6,
        "store_logical_by_tag_kb": by_tag.iter().map(|(t, b)| (t.clone(), b / 1000)).collect::<std::collections::BTreeMap<_, _>>(),
        "logical_kb_per_1000_contributions": logical as f64 / 1e3 / contributions as f64 * 1000.0,
        "store_kb_per_1000_contributions": files_bytes as f64 / 1e3 / contributions as f64 * 1000.0,
    }))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir = default_dir();
    let mut runs = 3usize;
    let mut only_one = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = PathBuf::from(args.next().context("--dir needs a path")?),
            "--runs" => runs = args.next().context("--runs needs a number")?.parse()?,
            "--one" => only_one = true,
            other => bail!("unknown argument {other:?}: expected --dir PATH, --runs N"),
        }
    }
    if !dir.join("Posts.xml").is_file() {
        bail!("no dump at {}: give --dir", dir.display());
    }
    if only_one {
        println!("{}", one(&dir)?);
        return Ok(());
    }

    let exe = std::env::current_exe()?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "import of {} ({runs} runs, load average {})",
        dir.display(),
        load.trim()
    );
    let mut results = Vec::new();
    for i in 0..runs.max(1) {
        let out = Command::new(&exe)
            .arg("--one")
            .arg("--dir")
            .arg(&dir)
            .output()?;
        if !out.status.success() {
            bail!("run {i} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let value: Value = serde_json::from_slice(&out.stdout)?;
        println!("run {}: {value}", i + 1);
        results.push(value);
    }
    let figure = |name: &str| {
        let mut values: Vec<f64> = results.iter().filter_map(|r| r[name].as_f64()).collect();
        median(&mut values)
    };
    let first = &results[0];
    println!(
        "dump: {} rows; {} events written as {} signed changes ({} contributions, {} votes)",
        first["rows"], first["written"], first["changes"], first["contributions"], first["votes"]
    );
    println!("median of {} runs:", results.len());
    println!(
        "  read the dump (XML + HTML to Markdown): {:>9.0} rows/s  ({:.2} s)",
        figure("rows_per_s_read"),
        figure("read_s")
    );
    println!(
        "  write (sign, validate, store, index):    {:>9.0} records/s ({:.2} s)",
        figure("records_per_s_write"),
        figure("write_s")
    );
    println!(
        "  whole import:                            {:>9.0} rows/s  ({:.2} s)",
        figure("rows_per_s_all"),
        figure("all_s")
    );
    println!(
        "  peak resident memory (VmHWM):            {:>9.1} MB",
        figure("peak_rss_mb")
    );
    println!(
        "  store on disk (files / sled's count):    {:>9.1} MB / {:.1} MB",
        figure("store_files_mb"),
        figure("store_sled_mb")
    );
    println!(
        "  store per 1,000 contributions:           {:>9.0} KB on disk, {:.0} KB of keys and values",
        figure("store_kb_per_1000_contributions"),
        figure("logical_kb_per_1000_contributions")
    );
    println!(
        "  keys and values by tag, KB (run 1):      {}",
        first["store_logical_by_tag_kb"]
    );
    Ok(())
}
