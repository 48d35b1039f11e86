//! Idle cost: an eleventh node, in a process of its own, in the topic of the propagation run
//! and connected to all ten of its nodes, watched while nothing happens.

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use catchment_node::ops::Request;
use catchment_node::runtime::NetRequest;

use crate::node::{self, wait_for, ChildNode};
use crate::propagation::Cluster;
use crate::report::{ms, Report};
use crate::{describe, synced_peers, NODES, SETTLE_BOUND};

/// What the quiet window showed.
pub struct Idle {
    window: Duration,
    peers: usize,
    cpu: Duration,
    cpu_ticks: Duration,
    rss_kb: u64,
    hwm_kb: u64,
    sync_bytes: u64,
    hub_cpu: Duration,
    leaf_cpu: Duration,
    process_cpu: Duration,
    /// Connected peers the status shows no finished session with, at the window's start and
    /// end.
    unsynced: [usize; 2],
    /// Whether it still held what node 0 holds at the end.
    same_after: bool,
}

/// An eleventh node, in its own process, joins and connects to all ten; then it is watched
/// for `window` while nothing happens.
pub fn idle(cluster: &Cluster, dir: &Path, window: Duration) -> Result<Idle> {
    let child = ChildNode::start("idle", &dir.join("idle"), &dir.join("idle.log"))?;
    let measured = watch_idle(cluster, &child, window);
    let stopped = child.stop();
    let idle = measured?;
    stopped?;
    Ok(idle)
}

/// Joins, connects and settles the idle node, then watches it (and nodes 0 and 1) for
/// `window`.
fn watch_idle(cluster: &Cluster, child: &ChildNode, window: Duration) -> Result<Idle> {
    child.api.call(&Request::Join {
        invite: cluster.invite.clone(),
    })?;
    for node in &cluster.nodes[1..] {
        child.api.network(&NetRequest::Dial {
            address: node.api.address()?,
        })?;
    }
    let topic = &cluster.topic;
    // Connected to all ten and holding what node 0 holds. (Not "synced with all ten" by the
    // status: a session whose changes another peer delivered first ends without recording
    // `last_sync`, until the next tick.)
    wait_for(
        "the idle node is connected to all ten and holds the topic",
        SETTLE_BOUND,
        Duration::from_millis(200),
        || {
            let status = child.api.network(&NetRequest::Status)?;
            let connected = status["connected"].as_u64() == Some(NODES as u64);
            let same = child.api.digest(topic)? == cluster.nodes[0].api.digest(topic)?;
            Ok((connected && same).then_some(()))
        },
    )
    .map_err(|e| e.context(describe(&[("idle", &child.api)], topic)))?;
    // Let the sessions the joins and dials started finish everywhere.
    thread::sleep(Duration::from_secs(3));

    let peers = child.api.network(&NetRequest::Status)?["connected"]
        .as_u64()
        .unwrap_or(0) as usize;
    let unsynced_before = peers - synced_peers(&child.api, topic)?.min(peers);
    let bytes = |(sent, received): (u64, u64)| sent + received;
    let bytes_before = bytes(child.api.sync_bytes()?);
    let (cpu, ticks) = (child.cpu()?, child.cpu_ticks()?);
    let (hub, leaf) = (cluster.nodes[0].cpu(), cluster.nodes[1].cpu());
    let process = node::tasks_cpu("/proc/self")?;
    let started = Instant::now();
    thread::sleep(window);
    let window = started.elapsed();
    let (cpu, cpu_ticks) = (child.cpu()? - cpu, child.cpu_ticks()? - ticks);
    let (hub_cpu, leaf_cpu) = (cluster.nodes[0].cpu() - hub, cluster.nodes[1].cpu() - leaf);
    let process_cpu = node::tasks_cpu("/proc/self")? - process;
    let sync_bytes = bytes(child.api.sync_bytes()?) - bytes_before;
    let unsynced_after = peers - synced_peers(&child.api, topic)?.min(peers);
    let same_after = child.api.digest(topic)? == cluster.nodes[0].api.digest(topic)?;
    Ok(Idle {
        window,
        peers,
        cpu,
        cpu_ticks,
        rss_kb: child.status_kb("VmRSS")?,
        hwm_kb: child.status_kb("VmHWM")?,
        sync_bytes,
        hub_cpu,
        leaf_cpu,
        process_cpu,
        unsynced: [unsynced_before, unsynced_after],
        same_after,
    })
}

/// The idle rows.
pub fn report_idle(report: &mut Report, idle: &Idle) {
    let pct = |cpu: Duration| cpu.as_secs_f64() / idle.window.as_secs_f64() * 100.0;
    let secs = idle.window.as_secs_f64();
    report
        .row(
            "idle.cpu",
            format!("idle node, {} peers: CPU over {secs:.0} s", idle.peers),
            pct(idle.cpu),
            "% core",
        )
        .note(format!(
            "{:.1} ms, every thread (schedstat); user+system in 10 ms ticks: {:.0} ms",
            ms(idle.cpu),
            ms(idle.cpu_ticks)
        ));
    report
        .row(
            "idle.rss",
            "idle node: resident memory",
            idle.rss_kb as f64 / 1024.0,
            "MB",
        )
        .note(format!("peak {:.1} MB", idle.hwm_kb as f64 / 1024.0));
    report.row(
        "idle.sync_bytes",
        format!("idle node: sync bytes both ways over {secs:.0} s"),
        idle.sync_bytes as f64 / 1024.0,
        "KB",
    );
    report
        .row(
            "idle.unsynced",
            "idle node: connected peers with no last_sync, at start",
            idle.unsynced[0] as f64,
            "peers",
        )
        .note(format!(
            "{} at the end; same digest as node 0 at the start, {} at the end",
            idle.unsynced[1],
            if idle.same_after { "and" } else { "NOT" }
        ));
    report
        .row(
            "idle.hub_thread",
            "node 0 (10 peers): its thread's CPU",
            pct(idle.hub_cpu),
            "% core",
        )
        .note("in this process; its store's threads not included");
    report
        .row(
            "idle.leaf_thread",
            "node 1 (2 peers): its thread's CPU",
            pct(idle.leaf_cpu),
            "% core",
        )
        .note("in this process; its store's threads not included");
    report
        .row(
            "idle.process_per_node",
            "this process (10 nodes) CPU / 10",
            pct(idle.process_cpu) / NODES as f64,
            "% core",
        )
        .note("every thread: nodes, stores, event readers");
}
