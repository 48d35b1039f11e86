//! Propagation: how long a contribution takes to reach every node of a star of ten, against
//! bare gossipsub in the same topology.

use std::collections::HashSet;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use catchment_crdt::schema::{Draft, Profile};
use catchment_crdt::Keypair;
use catchment_node::ops::Request;
use catchment_node::{Engine, SledBackend};
use catchment_protocol::{envelope, sync as wire};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::gossip::Star;
use crate::node::{self, wait_for, Events, LocalNode};
use crate::report::{ms, Report, Samples};
use crate::{
    contribution, create_topic, invite, post, synced_peers, NODES, SETTLE_BOUND, SYNC_INTERVAL,
};

/// How long a message may take to reach every node before it counts as missed.
const DELIVERY_BOUND: Duration = Duration::from_secs(5);

// Targets from the issue.
const ALL_P50_TARGET_MS: f64 = 20.0;
const ALL_P99_TARGET_MS: f64 = 100.0;

/// The size of one contribution's change as gossip carries it (the envelope, sealed), taken
/// from a real engine on a scratch store: the payload size of the bare gossipsub run.
pub fn sealed_contribution_size(dir: &Path) -> Result<usize> {
    let backend = SledBackend::open(dir)?;
    let mut engine = Engine::open(Box::new(backend), Keypair::generate());
    let profile = Profile {
        name: "n0".into(),
        about: String::new(),
    };
    let topic = engine.create_topic("netbench", &profile)?;
    // The second contribution of a journal: a change with a dependency, like most.
    for i in 0..2 {
        let text = contribution(i);
        let draft = Draft {
            title: text.title,
            body: text.body,
            tags: text.tags,
            ..Draft::default()
        };
        engine.post(&topic, text.kind, draft)?;
    }
    let (_, change) = engine
        .take_accepted()
        .pop()
        .context("a post accepted no change")?;
    let key = engine.topic_key(&topic)?.context("a new topic has a key")?;
    Ok(wire::seal(&key, &envelope::encode(&change)).len())
}

/// What one propagation run measured.
pub struct Propagation {
    /// Per message: from the publish (our nodes: the post's API reply) until the last other
    /// node had it; a missed message counts as [`DELIVERY_BOUND`].
    all: Vec<Duration>,
    /// Per message and receiving node.
    each: Vec<Duration>,
    /// Messages some node did not get within [`DELIVERY_BOUND`].
    missed: usize,
    /// Receptions stamped before the publish returned (counted as zero).
    early: usize,
    /// Our nodes: the post's API round trip.
    replies: Vec<Duration>,
    /// Our nodes: from sending the post's request until the last other node had it.
    all_from_request: Vec<Duration>,
}

impl Propagation {
    fn new() -> Propagation {
        Propagation {
            all: Vec::new(),
            each: Vec::new(),
            missed: 0,
            early: 0,
            replies: Vec::new(),
            all_from_request: Vec::new(),
        }
    }

    /// Records one message sent at `sent` by `from`, given when each node had it.
    fn record(&mut self, from: usize, sent: Instant, heard: &[Option<Instant>]) {
        let mut last = Duration::ZERO;
        let mut missed = false;
        for (node, at) in heard.iter().enumerate() {
            if node == from {
                continue;
            }
            match at {
                Some(at) => {
                    if *at < sent {
                        self.early += 1;
                    }
                    let took = at.saturating_duration_since(sent);
                    self.each.push(took);
                    last = last.max(took);
                }
                None => missed = true,
            }
        }
        if missed {
            self.missed += 1;
            last = DELIVERY_BOUND;
        }
        self.all.push(last);
    }
}

/// Waits (at most until `deadline`) until every node but `from` has a message; `probe(node)`
/// says when that node had it. Returns what is known at the end.
fn await_all(
    nodes: usize,
    from: usize,
    deadline: Instant,
    probe: impl Fn(usize) -> Option<Instant>,
) -> Vec<Option<Instant>> {
    let mut heard = vec![None; nodes];
    loop {
        for (node, at) in heard.iter_mut().enumerate() {
            if node != from && at.is_none() {
                *at = probe(node);
            }
        }
        let complete = heard
            .iter()
            .enumerate()
            .all(|(node, at)| node == from || at.is_some());
        if complete || Instant::now() >= deadline {
            return heard;
        }
        // The stamps come from the threads that received; polling late does not shift them.
        thread::sleep(Duration::from_micros(500));
    }
}

/// The posting node of each message, seeded.
fn senders(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(0..NODES)).collect()
}

/// Bare gossipsub: ten swarms, `posts` messages of `size` bytes from the same senders.
pub fn bare_gossip(posts: usize, size: usize, seed: u64) -> Result<Propagation> {
    let star = Star::start(NODES)?;
    let mut result = Propagation::new();
    let measured = (|| {
        // Warm up as our nodes do: one message from each swarm, not counted.
        let warm = NODES as u64;
        for from in 0..NODES {
            let index = from as u64;
            let sent = star.publish(from, index, size)?;
            await_all(star.len(), from, sent + DELIVERY_BOUND, |n| {
                star.heard(n, index)
            });
        }
        for (i, from) in senders(posts, seed).into_iter().enumerate() {
            let index = warm + i as u64;
            let sent = star.publish(from, index, size)?;
            let heard = await_all(star.len(), from, sent + DELIVERY_BOUND, |n| {
                star.heard(n, index)
            });
            result.record(from, sent, &heard);
        }
        Ok(())
    })();
    star.stop();
    measured.map(|()| result)
}

/// The ten nodes of the propagation run, in one topic.
pub struct Cluster {
    /// Node 0 (the topic's creator) first.
    pub nodes: Vec<LocalNode>,
    events: Vec<Events>,
    /// The topic's id (hex).
    pub topic: String,
    /// The invite every other node joined with.
    pub invite: String,
}

impl Cluster {
    /// Node 0 creates the topic and one invite; the others start and join with it.
    pub fn start(dir: &Path) -> Result<Cluster> {
        let config = || node::config(Vec::new(), SYNC_INTERVAL);
        let hub = LocalNode::start("n0", &dir.join("n0"), config())?;
        let topic = create_topic(&hub.api)?;
        let invite = invite(&hub.api, &topic)?;
        let mut nodes = vec![hub];
        for i in 1..NODES {
            let name = format!("n{i}");
            nodes.push(LocalNode::start(&name, &dir.join(&name), config())?);
        }
        let events = nodes
            .iter()
            .map(|n| n.api.events())
            .collect::<Result<Vec<_>>>()?;
        for node in &nodes[1..] {
            node.api.call(&Request::Join {
                invite: invite.clone(),
            })?;
        }
        let cluster = Cluster {
            nodes,
            events,
            topic,
            invite,
        };
        wait_for(
            "every node has synced the topic with node 0",
            SETTLE_BOUND,
            Duration::from_millis(100),
            || {
                for (i, node) in cluster.nodes.iter().enumerate() {
                    let wanted = if i == 0 { NODES - 1 } else { 1 };
                    if synced_peers(&node.api, &cluster.topic)? < wanted {
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            },
        )?;
        Ok(cluster)
    }

    /// Posts contribution `i` from node `from` and waits (bounded) until every other node has
    /// it; returns when the reply came, when each node had it, and the API round trip.
    fn post_and_wait(
        &self,
        from: usize,
        i: usize,
    ) -> Result<(Instant, Vec<Option<Instant>>, Duration)> {
        let bases: Vec<usize> = self.events.iter().map(Events::count).collect();
        let journal = format!("journal/{}/", self.nodes[from].member);
        let asked = Instant::now();
        self.nodes[from]
            .api
            .call(&post(&self.topic, &contribution(i)))?;
        let replied = Instant::now();
        let heard = await_all(self.nodes.len(), from, replied + DELIVERY_BOUND, |n| {
            self.events[n].first_after(bases[n], |seen| {
                !seen.local && seen.doc.starts_with(&journal)
            })
        });
        Ok((replied, heard, replied - asked))
    }

    /// Waits (bounded) until every node shows the same digest of the topic.
    fn await_same_digest(&self) -> Result<()> {
        wait_for(
            "every node holds the same changes",
            SETTLE_BOUND,
            Duration::from_millis(100),
            || {
                let digests = self
                    .nodes
                    .iter()
                    .map(|n| n.api.digest(&self.topic))
                    .collect::<Result<HashSet<_>>>()?;
                Ok((digests.len() == 1).then_some(()))
            },
        )
    }

    /// Stops every node.
    pub fn stop(self) -> Result<()> {
        for node in self.nodes {
            node.stop()?;
        }
        Ok(())
    }
}

/// Ours: the cluster's nodes post one at a time.
pub fn our_propagation(cluster: &Cluster, posts: usize, seed: u64) -> Result<Propagation> {
    // Warm up: one post from each node, not counted. Besides letting the meshes form, this
    // brings every member's admission to every node (a node that lacks the author's admission
    // holds the post pending and syncs with the peer it came from).
    for from in 0..NODES {
        cluster.post_and_wait(from, from)?;
    }
    cluster.await_same_digest()?;
    let mut result = Propagation::new();
    for (i, from) in senders(posts, seed).into_iter().enumerate() {
        let (replied, heard, reply) = cluster.post_and_wait(from, NODES + i)?;
        result.record(from, replied, &heard);
        result.replies.push(reply);
        // Every other node had it: the sender's own slot is the only one empty.
        let complete = heard.iter().filter(|at| at.is_none()).count() == 1;
        if let (true, Some(last)) = (complete, heard.iter().flatten().max()) {
            let asked = replied - reply;
            result
                .all_from_request
                .push(last.saturating_duration_since(asked));
        }
    }
    Ok(result)
}

/// The propagation rows: ours, bare gossipsub's, and their ratios.
pub fn report_propagation(report: &mut Report, ours: &Propagation, bare: &Propagation) {
    let (all, bare_all) = (
        Samples::new(ours.all.clone()),
        Samples::new(bare.all.clone()),
    );
    let (each, bare_each) = (
        Samples::new(ours.each.clone()),
        Samples::new(bare.each.clone()),
    );
    let n = all.len();
    report
        .row(
            "prop.all.p50",
            "post reply -> all 9 other nodes have it, median",
            ms(all.p50()),
            "ms",
        )
        .below(ALL_P50_TARGET_MS)
        .note(format!("{n} posts, one at a time"));
    report
        .row(
            "prop.all.p99",
            "post reply -> all 9 other nodes have it, p99",
            ms(all.p99()),
            "ms",
        )
        .below(ALL_P99_TARGET_MS)
        .note(format!("max {:.1} ms", ms(all.max())));
    report
        .row(
            "prop.bare.p50",
            "bare gossipsub: publish -> all 9 have it, median",
            ms(bare_all.p50()),
            "ms",
        )
        .note(format!("{} messages, same senders", bare_all.len()));
    report
        .row(
            "prop.bare.p99",
            "bare gossipsub: publish -> all 9 have it, p99",
            ms(bare_all.p99()),
            "ms",
        )
        .note(format!("max {:.1} ms", ms(bare_all.max())));
    report.row(
        "prop.ratio.p50",
        "ours / bare gossipsub, median to all",
        ms(all.p50()) / ms(bare_all.p50()),
        "x",
    );
    report.row(
        "prop.ratio.p99",
        "ours / bare gossipsub, p99 to all",
        ms(all.p99()) / ms(bare_all.p99()),
        "x",
    );
    report
        .row(
            "prop.one.p50",
            "post reply -> one other node has it, median",
            ms(each.p50()),
            "ms",
        )
        .note(format!(
            "p99 {:.2} ms; bare gossipsub median {:.2} ms, p99 {:.2} ms",
            ms(each.p99()),
            ms(bare_each.p50()),
            ms(bare_each.p99())
        ));
    report
        .row(
            "prop.missed",
            "posts some node lacked after 5 s",
            ours.missed as f64,
            "posts",
        )
        .note(format!(
            "bare gossipsub: {}; counted as 5,000 ms above",
            bare.missed
        ));
    report
        .row(
            "prop.early",
            "receptions stamped before the post's reply",
            ours.early as f64,
            "",
        )
        .note("counted as 0 ms");
    let replies = Samples::new(ours.replies.clone());
    if !ours.all_from_request.is_empty() {
        let from_request = Samples::new(ours.all_from_request.clone());
        report
            .row(
                "prop.all_from_request.p50",
                "post request -> all 9 other nodes have it, median",
                ms(from_request.p50()),
                "ms",
            )
            .note(format!(
                "p99 {:.2} ms; includes the post's own flush",
                ms(from_request.p99())
            ));
    }
    report
        .row(
            "prop.post.p50",
            "a post's API round trip (flush included), median",
            ms(replies.p50()),
            "ms",
        )
        .note(format!(
            "p99 {:.2} ms; not in the figures above",
            ms(replies.p99())
        ));
}
