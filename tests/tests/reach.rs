//! Beyond the LAN, end to end, with real `catchment up` processes, mDNS off: on 127.0.0.1, or in
//! network namespaces this test makes itself (never any other address).
//!
//! 1. DHT: five members, each started knowing only one other (a chain), find each other through
//!    the topic's rendezvous key and end connected to all the rest; a contribution from any
//!    reaches all; a member that knows only a non-member peer still finds its topic's members.
//! 2. NAT: A and B each behind its own masquerading NAT, S (a seed, not a member) reachable from
//!    both: A and B exchange contributions through S's relay; the test prints whether hole
//!    punching upgraded the connection. Without namespaces (not root, no `ip`), it fails saying
//!    so.
//! 3. Seed: A posts and goes away; B joins with A's invite while only the seed S is online and
//!    receives everything; B's contributions reach A when A comes back while B is gone.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use catchment_protocol::invite::Invite;
use catchment_tests::netns::Lab;
use catchment_tests::{wait_for, Node};
use serde_json::Value;

/// The longest wait for something to spread.
const TIMEOUT: Duration = Duration::from_secs(60);

fn post(node: &Node, topic: &str, title: &str) -> String {
    node.json(&["post", "idea", "--title", title, "--topic", topic])["id"]
        .as_str()
        .expect("a contribution id")
        .to_string()
}

fn has_all(node: &Node, topic: &str, ids: &BTreeSet<String>) -> Result<(), String> {
    let feed = node.try_json(&["feed", "--limit", "1000", "--topic", topic])?;
    let shown: BTreeSet<String> = feed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["id"].as_str().map(str::to_string))
        .collect();
    let missing: Vec<&String> = ids.difference(&shown).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("{} misses {missing:?}", node.name))
    }
}

/// The PeerIds a node's `status` shows in sync (served, not refused, connected) for a topic,
/// with how each is reached.
fn synced_peers(node: &Node, topic: &str) -> Result<Vec<(String, String)>, String> {
    let status = node.try_json(&["status"])?;
    let topic = status["topics"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["topic"] == topic)
        .ok_or_else(|| format!("{}'s status has no topic {topic}: {status}", node.name))?;
    Ok(topic["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["connected"] == true && p["refused"].is_null() && !p["last_sync"].is_null())
        .map(|p| {
            (
                p["peer"].as_str().unwrap_or("").to_string(),
                p["reach"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect())
}

fn peer_id(node: &Node) -> String {
    node.json(&["peers"])["me"]
        .as_str()
        .expect("a PeerId")
        .to_string()
}

/// Waits until `node` listens through the relay of the peer `relay`.
fn wait_for_relay(node: &Node, relay: &str) {
    wait_for(
        &format!("{} listens through {relay}'s relay", node.name),
        TIMEOUT,
        || {
            let peers = node.try_json(&["peers"])?;
            let relays = &peers["reachability"]["relays"];
            if relays
                .as_array()
                .is_some_and(|r| r.iter().any(|p| *p == relay))
            {
                Ok(())
            } else {
                Err(format!(
                    "{}'s reachability: {}",
                    node.name, peers["reachability"]
                ))
            }
        },
    );
}

/// The running node's address on a given IPv4 address, with its PeerId.
fn address_on(node: &Node, ip: &str) -> String {
    let peers = node.json(&["peers"]);
    let me = peers["me"].as_str().expect("a PeerId");
    let prefix = format!("/ip4/{ip}/tcp/");
    let listening = peers["listening"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|a| a.starts_with(&prefix))
        .unwrap_or_else(|| panic!("{} does not listen on {ip}: {peers}", node.name));
    format!("{listening}/p2p/{me}")
}

fn init(dir: &Path, name: &str) -> Node {
    Node::init(dir, name)
}

#[test]
fn members_find_each_other_through_the_dht_from_one_known_peer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut a = init(dir.path(), "A");
    let topic = a.json(&["topic", "create", "Platform team ideas"])["id"]
        .as_str()
        .expect("a topic id")
        .to_string();
    // Invites made with A stopped carry no address: the DHT is the only way to the others.
    let names = ["B", "C", "D", "E", "F"];
    let mut members = vec![];
    for name in names {
        let invite = a.json(&["invite", "create", "--topic", &topic])["invite"]
            .as_str()
            .expect("an invite")
            .to_string();
        assert!(Invite::decode(&invite)
            .expect("decodes")
            .addresses
            .is_empty());
        let node = init(dir.path(), name);
        node.json(&["join", &invite]);
        members.push(node);
    }
    let mut f = members.pop().expect("F");
    let mut n = init(dir.path(), "N"); // no topic: a DHT node only

    // A chain: B knows A, C knows B, D knows C, E knows D; N knows A; F knows only N.
    a.start();
    let mut previous = address_on(&a, "127.0.0.1");
    let a_address = previous.clone();
    for node in &mut members {
        node.up_args = vec!["--dial".into(), previous.clone()];
        node.start();
        previous = address_on(node, "127.0.0.1");
    }
    n.up_args = vec!["--dial".into(), a_address];
    n.start();
    f.up_args = vec!["--dial".into(), address_on(&n, "127.0.0.1")];
    f.start();
    let (b, c, d, e) = (&members[0], &members[1], &members[2], &members[3]);
    let five = [&a, b, c, d, e];

    // Each of the five ends in sync, directly, with the four others (the chain gave each one
    // or two): the rest came from the rendezvous key.
    let start = Instant::now();
    let ids: Vec<String> = five.iter().map(|node| peer_id(node)).collect();
    for (i, node) in five.iter().enumerate() {
        wait_for(
            &format!("{} is in sync with the four other members", node.name),
            TIMEOUT,
            || {
                let synced = synced_peers(node, &topic)?;
                let missing: Vec<&String> = ids
                    .iter()
                    .enumerate()
                    .filter(|(j, id)| *j != i && !synced.iter().any(|(p, _)| p == *id))
                    .map(|(_, id)| id)
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(format!(
                        "not yet in sync with {missing:?}; in sync with {synced:?}"
                    ))
                }
            },
        );
    }
    println!("five members found each other in {:.1?}", start.elapsed());

    // A contribution from any reaches all, F included.
    let mut expected = BTreeSet::new();
    for author in five.iter().chain([&&f]) {
        expected.insert(post(author, &topic, &format!("idea from {}", author.name)));
    }
    for node in five.iter().chain([&&f]) {
        wait_for(
            &format!("{} has every contribution", node.name),
            TIMEOUT,
            || has_all(node, &topic, &expected),
        );
    }

    // F knew only N, which is no member: it found members through the DHT.
    let synced = synced_peers(&f, &topic).expect("F's status");
    let n_id = peer_id(&n);
    assert!(
        !synced.is_empty() && synced.iter().all(|(p, _)| *p != n_id),
        "F should be in sync with members, never with N: {synced:?}"
    );
    println!(
        "F (knowing only a non-member) is in sync with {} members",
        synced.len()
    );
}

#[test]
fn a_seed_keeps_the_topic_for_a_joiner_while_the_inviter_is_away() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut a = init(dir.path(), "A");
    let mut s = init(dir.path(), "S");
    let mut b = init(dir.path(), "B");
    let topic = a.json(&["topic", "create", "Platform team ideas"])["id"]
        .as_str()
        .expect("a topic id")
        .to_string();
    a.start();
    s.up_args = vec!["--seed".into()];
    s.start();

    // The seed joins by invite, like anyone; A then reserves a slot on it.
    let invite = a.json(&["invite", "create", "--topic", &topic])["invite"]
        .as_str()
        .expect("an invite")
        .to_string();
    s.json(&["join", &invite]);
    let s_id = peer_id(&s);
    wait_for_relay(&a, &s_id);

    let mut from_a = BTreeSet::new();
    for i in 0..3 {
        from_a.insert(post(&a, &topic, &format!("A's idea {i}")));
    }
    wait_for("the seed has A's ideas", TIMEOUT, || {
        has_all(&s, &topic, &from_a)
    });

    // B's invite carries A's direct and relayed addresses (the relayed one names the seed).
    let invite = a.json(&["invite", "create", "--topic", &topic])["invite"]
        .as_str()
        .expect("an invite")
        .to_string();
    let carried = Invite::decode(&invite).expect("decodes").addresses;
    assert!(
        carried
            .iter()
            .any(|x| x.contains("/p2p-circuit/") && x.contains(&s_id)),
        "the invite should carry A's address through the seed: {carried:?}"
    );
    a.stop();

    // Only the seed is online: B joins and receives everything.
    b.start();
    let joined = b.json(&["join", &invite]);
    assert_eq!(joined["status"], "member", "{joined}");
    wait_for("B receives A's ideas from the seed", TIMEOUT, || {
        has_all(&b, &topic, &from_a)
    });
    let mut from_b = BTreeSet::new();
    for i in 0..2 {
        from_b.insert(post(&b, &topic, &format!("B's idea {i}")));
    }
    wait_for("the seed has B's ideas", TIMEOUT, || {
        has_all(&s, &topic, &from_b)
    });
    b.stop();

    // A comes back while B is gone, and gets B's ideas from the seed it remembered.
    a.start();
    wait_for("A receives B's ideas from the seed", TIMEOUT, || {
        has_all(&a, &topic, &from_b)
    });
    let status = s.json(&["status"]);
    assert_eq!(status["seed"], true, "{status}");
}

#[test]
fn members_behind_nat_reach_each_other_through_a_relay() {
    let lab = match Lab::new() {
        Ok(lab) => lab,
        Err(e) => panic!(
            "this test needs network namespaces (run as root with iproute2 and iptables): {e}"
        ),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut s = init(dir.path(), "S");
    let mut a = init(dir.path(), "A");
    let mut b = init(dir.path(), "B");
    for (node, netns) in [(&mut s, &lab.s), (&mut a, &lab.a), (&mut b, &lab.b)] {
        node.netns = Some(netns.clone());
        node.listen = "/ip4/0.0.0.0/tcp/4001".into();
    }

    // S: a seed with no topic, reachable from both sides; A and B each know only S.
    s.up_args = vec!["--seed".into()];
    s.start();
    let s_for_a = address_on(&s, lab.s_address_for_a());
    let s_for_b = address_on(&s, lab.s_address_for_b());
    let s_id = peer_id(&s);
    a.up_args = vec!["--dial".into(), s_for_a];
    b.up_args = vec!["--dial".into(), s_for_b];
    a.start();
    b.start();
    for node in [&a, &b] {
        wait_for_relay(node, &s_id);
    }

    // A's invite carries its relayed address; B joins through its running node.
    let topic = a.json(&["topic", "create", "Distributed team"])["id"]
        .as_str()
        .expect("a topic id")
        .to_string();
    let invite = a.json(&["invite", "create", "--topic", &topic])["invite"]
        .as_str()
        .expect("an invite")
        .to_string();
    let carried = Invite::decode(&invite).expect("decodes").addresses;
    assert!(
        carried.iter().any(|x| x.contains("/p2p-circuit/")),
        "A's invite should carry a relayed address: {carried:?}"
    );
    let joined = b.json(&["join", &invite]);
    assert_eq!(joined["status"], "member", "{joined}");

    let a_id = peer_id(&a);
    let b_id = peer_id(&b);
    let one = BTreeSet::from([post(&a, &topic, "from behind NAT A")]);
    wait_for("A's idea reaches B", TIMEOUT, || has_all(&b, &topic, &one));
    let two = BTreeSet::from([post(&b, &topic, "from behind NAT B")]);
    wait_for("B's idea reaches A", TIMEOUT, || has_all(&a, &topic, &two));

    // S holds no topic: what passed between A and B went through its relay, or through a hole.
    let reach_of = |node: &Node, other: &str| {
        synced_peers(node, &topic)
            .unwrap_or_default()
            .into_iter()
            .find(|(p, _)| p == other)
            .map(|(_, r)| r)
            .unwrap_or_else(|| "not connected".into())
    };
    // Give DCUtR its chance (it starts when the relayed connection does) before reporting.
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && reach_of(&a, &b_id) != "hole-punched" {
        std::thread::sleep(Duration::from_millis(500));
    }
    let (a_sees, b_sees) = (reach_of(&a, &b_id), reach_of(&b, &a_id));
    println!("A reaches B: {a_sees}; B reaches A: {b_sees}");
    println!(
        "hole punching {} the connection",
        if a_sees == "hole-punched" || b_sees == "hole-punched" {
            "upgraded"
        } else {
            "did not upgrade"
        }
    );
    for (name, reach) in [("A", &a_sees), ("B", &b_sees)] {
        assert!(
            ["relayed", "hole-punched"].contains(&reach.as_str()),
            "{name} should reach the other through S's relay or a punched hole, not {reach}"
        );
    }
    drop((a, b, s));
    drop(lab);
}
