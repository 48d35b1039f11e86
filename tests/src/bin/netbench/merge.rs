//! Reconnect merge: two nodes write offline, then meet again; how long until they agree, and
//! how many bytes their sync sessions cost against the changes they exchanged, deflated.

use std::collections::HashSet;
use std::io::Write as _;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use catchment_crdt::{SignedChange, TopicId};
use catchment_node::ops::Request;
use catchment_node::runtime::NetRequest;
use catchment_node::{Engine, Home, SledBackend};
use catchment_protocol::envelope;

use crate::corpus::Text;
use crate::node::{self, wait_for, Api, LocalNode};
use crate::report::{number, Report};
use crate::{create_topic, describe, invite, post, synced_peers, SETTLE_BOUND, SYNC_INTERVAL};

/// Client threads per node writing the offline contributions.
pub const WRITERS: usize = 4;

// Targets from the issue.
const MERGE_TARGET_S: f64 = 5.0;
const MERGE_BYTES_RATIO_TARGET: f64 = 2.0;

/// What the merge measured.
pub struct Merge {
    per_side: usize,
    writing: Duration,
    time: Duration,
    /// Sync bytes A wrote and B wrote, from reconnect until 1 s after the digests agreed.
    sent: [u64; 2],
    /// Sync bytes A read and B read, over the same span.
    received: [u64; 2],
    /// Sync bytes written by both when the digests agreed.
    sent_at_equal: u64,
    exchanged: [usize; 2],
    raw: usize,
    deflated: usize,
}

/// Every signed change a stopped node's store holds for the topic.
fn stored_changes(home: &Home, topic: &TopicId) -> Result<Vec<SignedChange>> {
    let backend = SledBackend::open(&home.store_dir())?;
    let engine = Engine::open(Box::new(backend), home.keypair()?);
    Ok(engine.changes(topic)?)
}

/// Writes `count` contributions (the texts from `first` on, round the list) through `api`
/// from [`WRITERS`] threads at once.
fn write_many(api: &Api, topic: &str, texts: &[Text], first: usize, count: usize) -> Result<()> {
    thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                scope.spawn(move || -> Result<()> {
                    for i in (w..count).step_by(WRITERS) {
                        api.call(&post(topic, &texts[(first + i) % texts.len()]))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for writer in writers {
            writer.join().expect("a writer thread panicked")?;
        }
        Ok(())
    })
}

/// The size of `bytes` deflated (raw DEFLATE, level 6).
fn deflate(bytes: &[u8]) -> Result<usize> {
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?.len())
}

/// Two nodes in one topic, offline writes of `per_side` contributions on each (the texts of
/// `texts`), then the reconnection, measured.
pub fn merge(
    dir: &Path,
    per_side: usize,
    texts: &[Text],
    progress: &dyn Fn(&str),
) -> Result<Merge> {
    let config = || node::config(Vec::new(), SYNC_INTERVAL);
    let a = LocalNode::start("a", &dir.join("a"), config())?;
    let topic = create_topic(&a.api)?;
    let invite = invite(&a.api, &topic)?;
    let b = LocalNode::start("b", &dir.join("b"), config())?;
    b.api.call(&Request::Join { invite })?;
    wait_for(
        "a and b have synced",
        SETTLE_BOUND,
        Duration::from_millis(100),
        || {
            let synced = synced_peers(&a.api, &topic)? == 1 && synced_peers(&b.api, &topic)? == 1;
            Ok((synced && a.api.digest(&topic)? == b.api.digest(&topic)?).then_some(()))
        },
    )?;

    // What both hold before going offline, read from their stores; then they start again.
    // Each listens on a new port now, so the addresses they remember of each other are stale:
    // b dials a's new one, as a person would, and they sync before going offline.
    let id: TopicId = topic.parse().context("a topic id")?;
    let (home_a, home_b) = (a.home.clone(), b.home.clone());
    a.stop()?;
    b.stop()?;
    let mut before: HashSet<Vec<u8>> = HashSet::new();
    for home in [&home_a, &home_b] {
        before.extend(stored_changes(home, &id)?.into_iter().map(|c| c.bytes));
    }
    let a = LocalNode::start("a", &dir.join("a"), config())?;
    let b = LocalNode::start("b", &dir.join("b"), config())?;
    b.api.network(&NetRequest::Dial {
        address: a.api.address()?,
    })?;
    wait_for(
        "a and b have synced again after starting",
        SETTLE_BOUND,
        Duration::from_millis(100),
        || {
            Ok(
                (synced_peers(&a.api, &topic)? == 1 && synced_peers(&b.api, &topic)? == 1)
                    .then_some(()),
            )
        },
    )
    .map_err(|e| e.context(describe(&[("a", &a.api), ("b", &b.api)], &topic)))?;
    for node in [&a, &b] {
        node.api.network(&NetRequest::Offline { on: true })?;
    }
    wait_for(
        "a and b are offline",
        SETTLE_BOUND,
        Duration::from_millis(50),
        || {
            let connected = |api: &Api| -> Result<u64> {
                Ok(api.network(&NetRequest::Status)?["connected"]
                    .as_u64()
                    .unwrap_or(u64::MAX))
            };
            Ok((connected(&a.api)? == 0 && connected(&b.api)? == 0).then_some(()))
        },
    )?;

    progress(&format!(
        "writing {per_side} contributions on each of a and b, offline, {WRITERS} writers each"
    ));
    let started = Instant::now();
    thread::scope(|scope| -> Result<()> {
        let (a, b, topic) = (&a.api, &b.api, &topic);
        let on_a = scope.spawn(move || write_many(a, topic, texts, 0, per_side));
        let on_b = scope.spawn(move || write_many(b, topic, texts, per_side, per_side));
        on_a.join().expect("a's writers panicked")?;
        on_b.join().expect("b's writers panicked")?;
        Ok(())
    })?;
    let writing = started.elapsed();

    progress("reconnecting a and b");
    let base = [a.api.sync_bytes()?, b.api.sync_bytes()?];
    let started = Instant::now();
    for node in [&a, &b] {
        node.api.network(&NetRequest::Offline { on: false })?;
    }
    let time = wait_for(
        "a and b hold the same changes after reconnecting",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || {
            let same = a.api.digest(&topic)? == b.api.digest(&topic)?;
            Ok(same.then(|| started.elapsed()))
        },
    )
    .map_err(|e| e.context(describe(&[("a", &a.api), ("b", &b.api)], &topic)))?;
    let at_equal = [a.api.sync_bytes()?, b.api.sync_bytes()?];
    // The sessions end with one more exchange of heads each way: count them too.
    thread::sleep(Duration::from_secs(1));
    let settled = [a.api.sync_bytes()?, b.api.sync_bytes()?];
    a.stop()?;
    b.stop()?;

    progress("reading both stores");
    let after_a = stored_changes(&home_a, &id)?;
    let after_b: HashSet<Vec<u8>> = stored_changes(&home_b, &id)?
        .into_iter()
        .map(|c| c.bytes)
        .collect();
    ensure!(
        after_a.len() == after_b.len() && after_a.iter().all(|c| after_b.contains(&c.bytes)),
        "a and b show the same digest but hold different changes ({} and {})",
        after_a.len(),
        after_b.len()
    );
    let a_member = home_a.keypair()?.member_id();
    let mut exchanged = [0, 0];
    let mut concatenated = Vec::new();
    for change in after_a.iter().filter(|c| !before.contains(&c.bytes)) {
        let from_a = change.doc.journal_owner() == Some(a_member);
        exchanged[usize::from(!from_a)] += 1;
        concatenated.extend_from_slice(&envelope::encode(change));
    }
    Ok(Merge {
        per_side,
        writing,
        time,
        sent: [settled[0].0 - base[0].0, settled[1].0 - base[1].0],
        received: [settled[0].1 - base[0].1, settled[1].1 - base[1].1],
        sent_at_equal: (at_equal[0].0 - base[0].0) + (at_equal[1].0 - base[1].0),
        exchanged,
        raw: concatenated.len(),
        deflated: deflate(&concatenated)?,
    })
}

/// The merge's rows.
pub fn report_merge(report: &mut Report, m: &Merge) {
    let kb = |bytes: f64| bytes / 1024.0;
    let total = (m.sent[0] + m.sent[1]) as f64;
    report
        .row(
            "merge.write.rate",
            "offline writes through the API, both nodes at once",
            (2 * m.per_side) as f64 / m.writing.as_secs_f64(),
            "/s",
        )
        .note(format!(
            "{} contributions each, {WRITERS} client threads per node (group commit)",
            m.per_side
        ));
    report
        .row(
            "merge.time",
            "offline off -> both show the same digest",
            m.time.as_secs_f64(),
            "s",
        )
        .below(MERGE_TARGET_S)
        .note("polled every 100 ms");
    report
        .row(
            "merge.changes",
            "changes exchanged",
            (m.exchanged[0] + m.exchanged[1]) as f64,
            "changes",
        )
        .note(format!(
            "a -> b {}, b -> a {}",
            m.exchanged[0], m.exchanged[1]
        ));
    report
        .row(
            "merge.bytes",
            "sync bytes written, both ways",
            kb(total),
            "KB",
        )
        .note(format!(
            "a wrote {} KB, b wrote {} KB; read {} KB, {} KB; {} KB by the equal digest",
            number(kb(m.sent[0] as f64)),
            number(kb(m.sent[1] as f64)),
            number(kb(m.received[0] as f64)),
            number(kb(m.received[1] as f64)),
            number(kb(m.sent_at_equal as f64))
        ));
    report
        .row(
            "merge.raw",
            "the exchanged changes' envelopes, concatenated",
            kb(m.raw as f64),
            "KB",
        )
        .note(format!("sync bytes / this = {:.2}", total / m.raw as f64));
    report.row(
        "merge.deflated",
        "the same, deflated (level 6)",
        kb(m.deflated as f64),
        "KB",
    );
    report
        .row(
            "merge.ratio",
            "sync bytes / exchanged changes deflated",
            total / m.deflated as f64,
            "x",
        )
        .below(MERGE_BYTES_RATIO_TARGET);
}
