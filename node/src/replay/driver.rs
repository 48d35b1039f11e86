//! Sending the events across the cluster while nodes come and go, then the agreement wait and
//! the check.
//!
//! Each node has a worker thread that owns it and writes its events through its API, in the
//! order the driver hands them over (bounded queues, so a slow node holds the driver back
//! rather than piling up work). Churn steps travel through the same queues, so that a node is
//! switched off exactly between the events the schedule says. A stopped node's events wait in
//! its worker until it is started again.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tracing::debug;

use super::check::{check_node, Difference};
use super::cluster::{Cluster, NodeProc};
use super::schedule::{Churn, Schedule};
use super::write;
use super::{ReplayError, Result};
use crate::import::{GroundTruth, ImportEvent};

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// The seed for the churn schedule and the authors' nodes.
    pub seed: u64,
    /// Events per second across the cluster; `None` sends them as fast as the nodes take them.
    pub speed: Option<f64>,
    /// The share of the replay one node spends offline (see [`Schedule::draw`]).
    pub offline_fraction: f64,
    /// The longest wait, after the last event, for every node to agree.
    pub agreement_timeout: Duration,
    /// Set from elsewhere (a Ctrl-C handler) to stop the replay early with
    /// [`ReplayError::Interrupted`].
    pub stop: Arc<AtomicBool>,
}

/// Where a replay stands, for a progress display.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Events handed to the nodes.
    pub sent: usize,
    /// Events a node confirmed (written to its disk).
    pub confirmed: usize,
    /// Events in all.
    pub total: usize,
    /// The nodes (1-based) offline or stopped right now.
    pub down: Vec<usize>,
}

/// What a replay measured and found.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// Events sent.
    pub events: usize,
    /// Nodes.
    pub nodes: usize,
    /// From the first event sent to the last one confirmed.
    pub replay_time: Duration,
    /// Events confirmed per second over that time, across the nodes.
    pub events_per_second: f64,
    /// From the last event confirmed to every node holding the same changes.
    pub agreement_time: Duration,
    /// Events each node wrote.
    pub per_node: Vec<usize>,
    /// The churn schedule, one line per step.
    pub schedule: Vec<String>,
    /// Events during which each node was offline or stopped.
    pub down_events: Vec<usize>,
    /// Writes a node refused, with the reason (each one a failure of the run).
    pub write_errors: Vec<String>,
    /// Every difference from the ground truth, over all nodes.
    pub differences: Vec<Difference>,
}

impl ReplayReport {
    /// Whether the run passed: every write taken, and no difference on any node.
    pub fn passed(&self) -> bool {
        self.write_errors.is_empty() && self.differences.is_empty()
    }
}

/// The node (0-based) an original author's events go through: fixed by the seed and the alias.
pub fn node_of(seed: u64, nodes: usize, author: &str) -> usize {
    let digest = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(author.as_bytes())
        .finalize();
    let n = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    (n % nodes.max(1) as u64) as usize
}

enum Job {
    Write(Box<ImportEvent>),
    Churn(Churn),
    Finish,
}

/// What a worker hands back.
struct Worker {
    node: NodeProc,
    topic: String,
    written: usize,
    errors: Vec<String>,
    confirmed: Arc<AtomicUsize>,
}

impl Worker {
    /// Writes a batch through the node's API; every refusal is recorded.
    fn send(&mut self, batch: &[ImportEvent]) {
        if batch.is_empty() {
            return;
        }
        match self.node.call(&write::request(&self.topic, batch)) {
            Ok(outcome) => {
                for refused in outcome["refused"].as_array().into_iter().flatten() {
                    self.errors.push(format!("{}: {refused}", self.node.name));
                }
                let present = outcome["present"].as_u64().unwrap_or(0);
                if present > 0 {
                    self.errors.push(format!(
                        "{}: {present} events were already there",
                        self.node.name
                    ));
                }
            }
            Err(e) => self.errors.push(e.to_string()),
        }
        self.written += batch.len();
        self.confirmed.fetch_add(batch.len(), Ordering::Relaxed);
    }
}

fn work(mut worker: Worker, jobs: Receiver<Job>) -> Result<Worker> {
    let mut held: Vec<ImportEvent> = Vec::new();
    let mut next: Option<Job> = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        match job {
            Job::Write(event) => {
                let mut batch = vec![*event];
                while batch.len() < write::MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(Job::Write(event)) => batch.push(*event),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if worker.node.is_running() {
                    worker.send(&batch);
                } else {
                    held.extend(batch);
                }
            }
            Job::Churn(Churn::Offline) => worker.node.set_offline(true)?,
            Job::Churn(Churn::Online) => worker.node.set_offline(false)?,
            Job::Churn(Churn::Stop) => worker.node.stop()?,
            Job::Churn(Churn::Start) => {
                worker.node.start()?;
                debug!(node = %worker.node.name, held = held.len(), "writing what waited");
                for chunk in std::mem::take(&mut held).chunks(write::MAX_BATCH) {
                    worker.send(chunk);
                }
            }
            Job::Finish => break,
        }
    }
    worker.node.start()?;
    worker.node.set_offline(false)?;
    for chunk in held.chunks(write::MAX_BATCH) {
        worker.send(chunk);
    }
    Ok(worker)
}

/// Replays `events` (in time order, as [`crate::import::read`] gives them) across `cluster` with churn, waits
/// for agreement, and checks every node against `truth`. Returns the cluster, every node
/// running and online, and the report; `progress` is called as events are confirmed.
pub fn replay(
    cluster: Cluster,
    events: &[ImportEvent],
    truth: &GroundTruth,
    config: &ReplayConfig,
    mut progress: impl FnMut(&Progress),
) -> Result<(Cluster, ReplayReport)> {
    let Cluster { nodes, topic } = cluster;
    let n = nodes.len();
    let schedule = Schedule::draw(config.seed, n, events.len(), config.offline_fraction);
    let confirmed = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for node in nodes {
        let (tx, rx) = sync_channel::<Job>(64);
        let worker = Worker {
            topic: topic.clone(),
            written: 0,
            errors: Vec::new(),
            confirmed: confirmed.clone(),
            node,
        };
        let handle = thread::Builder::new()
            .name(format!("replay {}", worker.node.name))
            .spawn(move || work(worker, rx))
            .map_err(super::io("start a replay worker"))?;
        senders.push(tx);
        handles.push(handle);
    }
    let gone = |i: usize| ReplayError::Process(format!("node {}'s worker stopped early", i + 1));
    let mut down = vec![false; n];
    let mut steps = schedule.steps.iter().peekable();
    let started = Instant::now();
    let mut last_report = Instant::now();
    let posts = write::post_ids(events);
    let interrupted = || config.stop.load(Ordering::Relaxed);
    for (i, event) in events.iter().enumerate() {
        if interrupted() {
            // Dropping the senders ends the workers; their nodes stop as they drop.
            drop(senders);
            for handle in handles {
                let _ = handle.join();
            }
            return Err(ReplayError::Interrupted);
        }
        while let Some(step) = steps.next_if(|s| s.at <= i) {
            down[step.node] = matches!(step.churn, Churn::Offline | Churn::Stop);
            debug!(?step, "churn");
            senders[step.node]
                .send(Job::Churn(step.churn))
                .map_err(|_| gone(step.node))?;
        }
        if let Some(speed) = config.speed.filter(|s| *s > 0.0) {
            let due = started + Duration::from_secs_f64(i as f64 / speed);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        let target = node_of(config.seed, n, &event.alias);
        senders[target]
            .send(Job::Write(Box::new(event.clone())))
            .map_err(|_| gone(target))?;
        if last_report.elapsed() >= Duration::from_millis(100) {
            last_report = Instant::now();
            progress(&Progress {
                sent: i + 1,
                confirmed: confirmed.load(Ordering::Relaxed),
                total: events.len(),
                down: down_list(&down),
            });
        }
    }
    for step in steps {
        let _ = senders[step.node].send(Job::Churn(step.churn));
    }
    for sender in &senders {
        let _ = sender.send(Job::Finish);
    }
    drop(senders);
    let mut nodes = Vec::with_capacity(n);
    let mut per_node = Vec::with_capacity(n);
    let mut write_errors = Vec::new();
    for (i, handle) in handles.into_iter().enumerate() {
        let worker = handle.join().map_err(|_| gone(i))??;
        per_node.push(worker.written);
        write_errors.extend(worker.errors);
        nodes.push(worker.node);
    }
    let replay_time = started.elapsed();
    progress(&Progress {
        sent: events.len(),
        confirmed: confirmed.load(Ordering::Relaxed),
        total: events.len(),
        down: Vec::new(),
    });
    let cluster = Cluster { nodes, topic };
    let agreement_time = cluster.wait_agreement(config.agreement_timeout, &config.stop)?;
    let mut differences = Vec::new();
    for node in &cluster.nodes {
        differences.extend(check_node(node, &cluster.topic, &posts, truth)?);
    }
    let report = ReplayReport {
        events: events.len(),
        nodes: n,
        replay_time,
        events_per_second: events.len() as f64 / replay_time.as_secs_f64().max(1e-9),
        agreement_time,
        per_node,
        schedule: schedule.describe(),
        down_events: (0..n).map(|i| schedule.down_events(i)).collect(),
        write_errors,
        differences,
    };
    Ok((cluster, report))
}

fn down_list(down: &[bool]) -> Vec<usize> {
    down.iter()
        .enumerate()
        .filter(|(_, d)| **d)
        .map(|(i, _)| i + 1)
        .collect()
}
