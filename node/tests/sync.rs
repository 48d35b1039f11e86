//! Anti-entropy between engines, driven by plain function calls: each request and response
//! goes through the wire codec, as the network layer will carry them. Three members write
//! apart (enough to roll their journals over), then pull from one another in sessions with a
//! small byte budget, one of them dropped half way and resumed later, until every node holds
//! the same changes and shows the same views. Non-members, removed members and forged proofs
//! are refused and learn nothing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use catchment_crdt::invite::Grant;
use catchment_crdt::membership::{Quarantine, Status};
use catchment_crdt::schema::{Draft, Kind, Profile, Role};
use catchment_crdt::{DocId, Keypair, TopicId};
use catchment_node::query::FeedFilter;
use catchment_node::sync::NOT_SERVED;
use catchment_node::{Engine, Home, SledBackend};
use catchment_protocol::sync::{
    decode_request, decode_response, encode_request, encode_response, DocHeads, Proof, SyncRequest,
    SyncResponse, TopicTag, Want,
};
use tempfile::TempDir;

/// The byte budget of each `Changes` request.
const BUDGET: u32 = 16 * 1024;
/// Contributions each member writes while apart: past one journal's 256 entries.
const APART: usize = 300;

struct Node {
    _dir: TempDir,
    engine: Engine,
    /// The member key the engine signs with.
    key: Keypair,
    /// Stands in for the libp2p PeerId bytes of this node's transport key.
    peer: Vec<u8>,
}

/// One clock for every node, one millisecond per reading: runs are repeatable.
fn node(name: &str, clock: &Arc<AtomicI64>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let (home, _) = Home::init(dir.path(), Some(name)).unwrap();
    let backend = SledBackend::open(&home.store_dir()).unwrap();
    let mut engine = Engine::open(Box::new(backend), home.keypair().unwrap());
    let clock = clock.clone();
    engine.set_clock(move || clock.fetch_add(1, Ordering::SeqCst));
    Node {
        _dir: dir,
        engine,
        key: home.keypair().unwrap(),
        peer: format!("peer-{name}").into_bytes(),
    }
}

fn profile(name: &str) -> Profile {
    Profile {
        name: name.into(),
        about: String::new(),
    }
}

fn idea(title: &str) -> Draft {
    Draft {
        title: title.into(),
        ..Draft::default()
    }
}

/// Sends the charter the way an invite carries it, then joins with the invite's grant and
/// records the topic key.
fn join(admin: &mut Node, joiner: &mut Node, topic: &TopicId, uses: Option<u32>) {
    let (grant, secret) = admin
        .engine
        .create_invite(topic, Role::Member, None, uses)
        .unwrap();
    invite(admin, joiner, topic, &grant, &secret);
}

fn invite(admin: &mut Node, joiner: &mut Node, topic: &TopicId, grant: &Grant, secret: &Keypair) {
    let charter: Vec<_> = admin
        .engine
        .changes(topic)
        .unwrap()
        .into_iter()
        .filter(|c| c.doc == DocId::Charter)
        .collect();
    joiner.engine.ingest(topic, charter).unwrap();
    let key = admin.engine.topic_key(topic).unwrap().unwrap();
    joiner.engine.add_topic_with_key(topic, key).unwrap();
    let name = String::from_utf8_lossy(&joiner.peer).to_string();
    joiner.engine.join(grant, secret, &profile(&name)).unwrap();
    joiner.engine.commit().unwrap();
}

/// Carries a request to `to` and its answer back through the wire codec.
fn ask(from: &Node, to: &mut Node, request: SyncRequest) -> SyncResponse {
    let request = decode_request(&encode_request(&request)).unwrap();
    let response = to.engine.serve(request, &from.peer, &to.peer);
    decode_response(&encode_response(&response)).unwrap()
}

fn heads_request(from: &mut Node, to: &Node, topic: &TopicId) -> SyncRequest {
    let key = from.engine.topic_key(topic).unwrap().unwrap();
    SyncRequest::Heads {
        tag: TopicTag::of(&key),
        proof: from.engine.proof(topic, &from.peer, &to.peer).unwrap(),
    }
}

fn changes_request(from: &mut Node, to: &Node, topic: &TopicId, wants: Vec<Want>) -> SyncRequest {
    let key = from.engine.topic_key(topic).unwrap().unwrap();
    SyncRequest::Changes {
        tag: TopicTag::of(&key),
        proof: from.engine.proof(topic, &from.peer, &to.peer).unwrap(),
        wants,
        max_bytes: BUDGET,
    }
}

/// What one pull session did.
#[derive(Debug, Default)]
struct Pulled {
    /// `Changes` responses received.
    rounds: usize,
    /// Changes accepted.
    accepted: usize,
    /// Whether some response said `more`.
    more_seen: bool,
    /// The requester agrees with the responder's heads at the end.
    in_sync: bool,
}

/// `from` pulls what it lacks from `to`; with `stop_after` it drops the session after that
/// many `Changes` responses. Every change received must be new and valid.
fn pull(from: &mut Node, to: &mut Node, topic: &TopicId, stop_after: Option<usize>) -> Pulled {
    let mut pulled = Pulled::default();
    let request = heads_request(from, to, topic);
    let SyncResponse::Heads { docs } = ask(from, to, request) else {
        panic!("a member is served its topic's heads");
    };
    loop {
        let wants = from.engine.plan(topic, &docs).unwrap();
        if wants.is_empty() {
            break;
        }
        let request = changes_request(from, to, topic, wants);
        let SyncResponse::Changes { changes, more } = ask(from, to, request) else {
            panic!("a member is served changes");
        };
        pulled.rounds += 1;
        pulled.more_seen |= more;
        let report = from.engine.receive(topic, changes).unwrap();
        assert!(
            report.rejected.is_empty(),
            "rejected: {:?}",
            report.rejected
        );
        assert_eq!(report.duplicates, 0, "a change was sent twice");
        pulled.accepted += report.accepted.len();
        if stop_after == Some(pulled.rounds) {
            return pulled;
        }
        assert!(!report.accepted.is_empty(), "a round brought nothing new");
    }
    pulled.in_sync = from.engine.in_sync(topic, &docs).unwrap();
    pulled
}

fn views(engine: &mut Engine, topic: &TopicId) -> serde_json::Value {
    let feed = engine
        .feed(
            topic,
            &FeedFilter {
                limit: 10_000,
                ..FeedFilter::default()
            },
        )
        .unwrap();
    let board = engine.leaderboard(topic).unwrap();
    serde_json::json!({ "feed": feed, "board": board })
}

/// Every stored change, by its bytes.
fn stored(engine: &Engine, topic: &TopicId) -> BTreeSet<Vec<u8>> {
    engine
        .changes(topic)
        .unwrap()
        .into_iter()
        .map(|c| c.bytes)
        .collect()
}

fn served_heads(from: &mut Node, to: &mut Node, topic: &TopicId) -> Vec<DocHeads> {
    let request = heads_request(from, to, topic);
    match ask(from, to, request) {
        SyncResponse::Heads { docs } => docs,
        other => panic!("expected heads, got {other:?}"),
    }
}

/// A member that proved itself but is not admitted is refused and told its standing, and
/// nothing else.
fn assert_told(response: SyncResponse, standing: &str) {
    assert_eq!(
        response,
        SyncResponse::Refused {
            reason: format!("{}{standing}", catchment_node::sync::STANDING_PREFIX)
        }
    );
}

fn assert_refused(response: SyncResponse) {
    assert_eq!(
        response,
        SyncResponse::Refused {
            reason: NOT_SERVED.into()
        }
    );
}

#[test]
fn three_members_converge_through_interrupted_sessions() {
    let clock = Arc::new(AtomicI64::new(1_700_000_000_000));
    let (mut a, mut b, mut c) = (node("ada", &clock), node("bo", &clock), node("cy", &clock));
    let topic = a
        .engine
        .create_topic("Platform team", &profile("ada"))
        .unwrap();
    a.engine.commit().unwrap();
    join(&mut a, &mut b, &topic, Some(1));
    join(&mut a, &mut c, &topic, Some(1));
    // The creator has not seen either admission: the first proof each shows carries it.
    let docs = a.engine.doc_ids(&topic).unwrap();
    assert!(!docs
        .iter()
        .any(|d| d.journal_owner() == Some(b.engine.me())));

    // The genesis is the charter's only change: each node's count past it is its own.
    let charter = 1;
    let mut total = charter + 1;
    for (i, n) in [&mut a, &mut b, &mut c].into_iter().enumerate() {
        for k in 0..APART {
            let kind = if k % 3 == 0 {
                Kind::Question
            } else {
                Kind::Idea
            };
            n.engine
                .post(&topic, kind, idea(&format!("node {i} item {k}")))
                .unwrap();
        }
        n.engine.commit().unwrap();
        total += n.engine.changes(&topic).unwrap().len() - charter;
        let me = n.engine.me();
        assert!(
            n.engine
                .doc_ids(&topic)
                .unwrap()
                .contains(&DocId::Journal { member: me, n: 1 }),
            "the journal rolled over"
        );
    }

    // Bo pulls from Ada and the session drops after the first batch.
    let before = stored(&b.engine, &topic);
    let first = pull(&mut b, &mut a, &topic, Some(1));
    assert!(first.more_seen && first.accepted > 0, "{first:?}");
    let after_drop = stored(&b.engine, &topic);

    // Meanwhile Ada writes more; then Bo's next session resumes where the first stopped.
    a.engine
        .post(&topic, Kind::Idea, idea("written while Bo was away"))
        .unwrap();
    a.engine.commit().unwrap();
    let resumed = pull(&mut b, &mut a, &topic, None);
    assert!(resumed.rounds > 1, "a 16 KiB budget takes several rounds");
    // Bo now holds all Ada holds, each change received exactly once over the two sessions.
    let (ada, bo) = (stored(&a.engine, &topic), stored(&b.engine, &topic));
    assert!(after_drop.is_subset(&bo) && ada.is_subset(&bo));
    assert_eq!(
        first.accepted + resumed.accepted,
        ada.difference(&before).count()
    );
    // Bo holds more (its own journals): only once Ada pulls too do the two agree.
    assert!(!resumed.in_sync);
    assert!(pull(&mut a, &mut b, &topic, None).in_sync);
    assert!(pull(&mut b, &mut a, &topic, None).in_sync);

    // Every pair pulls both ways until all agree.
    for _ in 0..2 {
        for (x, y) in [(0, 1), (1, 2), (0, 2)] {
            let mut nodes = [&mut a, &mut b, &mut c];
            let (left, right) = nodes.split_at_mut(y);
            let (from, to) = (&mut *left[x], &mut *right[0]);
            pull(from, to, &topic, None);
            pull(to, from, &topic, None);
        }
    }
    let all = stored(&a.engine, &topic);
    assert_eq!(all.len(), total);
    assert_eq!(all, stored(&b.engine, &topic));
    assert_eq!(all, stored(&c.engine, &topic));
    let heads = a.engine.heads(&topic).unwrap();
    assert_eq!(heads, b.engine.heads(&topic).unwrap());
    assert_eq!(heads, c.engine.heads(&topic).unwrap());
    let view = views(&mut a.engine, &topic);
    assert_eq!(view["feed"].as_array().unwrap().len(), 3 * APART + 1);
    assert_eq!(view, views(&mut b.engine, &topic));
    assert_eq!(view, views(&mut c.engine, &topic));
    for n in [&mut a, &mut b, &mut c] {
        assert_eq!(n.engine.pending_count(&topic).unwrap(), 0);
    }
    let theirs = served_heads(&mut c, &mut b, &topic);
    assert!(c.engine.in_sync(&topic, &theirs).unwrap());
    assert!(c.engine.plan(&topic, &theirs).unwrap().is_empty());

    // Work that refers across members travels the same way.
    let question = view["feed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "question" && i["author"]["id"] == a.engine.me().to_hex())
        .map(|i| i["id"].as_str().unwrap().to_string());
    let question = question.expect("Ada asked questions");
    b.engine
        .post(
            &topic,
            Kind::Answer,
            Draft {
                body: "cache the target dir".into(),
                parent: Some(question.clone()),
                ..Draft::default()
            },
        )
        .unwrap();
    c.engine.endorse(&topic, &question, 1).unwrap();
    let (bo_id, cy_id) = (b.engine.me(), c.engine.me());
    a.engine.kudos(&topic, &bo_id, "thanks", None).unwrap();
    for n in [&mut a, &mut b, &mut c] {
        n.engine.commit().unwrap();
    }
    pull(&mut b, &mut a, &topic, None);
    pull(&mut b, &mut c, &topic, None);
    pull(&mut a, &mut b, &topic, None);
    pull(&mut c, &mut b, &topic, None);
    let view = views(&mut a.engine, &topic);
    assert_eq!(view, views(&mut b.engine, &topic));
    assert_eq!(view, views(&mut c.engine, &topic));

    // Ada removes Cy. Once Bo has the removal, neither serves Cy any more.
    a.engine.remove_member(&topic, &cy_id).unwrap();
    a.engine.commit().unwrap();
    pull(&mut b, &mut a, &topic, None);
    let request = heads_request(&mut c, &a, &topic);
    assert_told(ask(&c, &mut a, request), "removed");
    let request = heads_request(&mut c, &b, &topic);
    assert_told(ask(&c, &mut b, request), "removed");
}

#[test]
fn outsiders_and_forged_proofs_learn_nothing() {
    let clock = Arc::new(AtomicI64::new(1_700_000_000_000));
    let (mut a, mut b) = (node("ada", &clock), node("bo", &clock));
    let topic = a
        .engine
        .create_topic("Platform team", &profile("ada"))
        .unwrap();
    a.engine.commit().unwrap();
    join(&mut a, &mut b, &topic, None);
    a.engine
        .post(&topic, Kind::Idea, idea("secret plan"))
        .unwrap();
    a.engine.commit().unwrap();
    let key = a.engine.topic_key(&topic).unwrap().unwrap();
    let tag = TopicTag::of(&key);

    // A tag this node does not hold: the refusal every other case must look like.
    let mut eve = node("eve", &clock);
    let nobody = SyncRequest::Heads {
        tag: TopicTag::of(&[0; 32]),
        proof: eve.engine.proof(&topic, &eve.peer, &a.peer).unwrap(),
    };
    assert_refused(ask(&eve, &mut a, nobody));

    // A stranger holding the leaked topic key, with a fresh member key.
    let stranger = SyncRequest::Heads {
        tag,
        proof: eve.engine.proof(&topic, &eve.peer, &a.peer).unwrap(),
    };
    assert_refused(ask(&eve, &mut a, stranger));
    let wants = vec![Want {
        doc: DocId::Charter,
        have: Vec::new(),
    }];
    let stranger = SyncRequest::Changes {
        tag,
        proof: eve.engine.proof(&topic, &eve.peer, &a.peer).unwrap(),
        wants,
        max_bytes: BUDGET,
    };
    assert_refused(ask(&eve, &mut a, stranger));

    // A member of another topic, whose proof carries its admission there.
    let other = eve
        .engine
        .create_topic("Eve's own", &profile("eve"))
        .unwrap();
    eve.engine.commit().unwrap();
    let elsewhere = eve.engine.proof(&other, &eve.peer, &a.peer).unwrap();
    assert!(elsewhere.admission.is_some());
    // Signed by Eve for this topic and connection, carrying her admission to the other one:
    // validated, and refused (its signature names the other topic).
    let eves_elsewhere = Proof::sign(
        &eve.key,
        &topic,
        elsewhere.admission.clone(),
        &eve.peer,
        &a.peer,
    );
    // Signed by another key, carrying Eve's admission: not the signer's, so ignored.
    let not_even_hers = Proof::sign(
        &Keypair::generate(),
        &topic,
        elsewhere.admission.clone(),
        &eve.peer,
        &a.peer,
    );
    let changes_before = a.engine.changes(&topic).unwrap().len();
    let pending_before = a.engine.pending_count(&topic).unwrap();
    for proof in [elsewhere, eves_elsewhere, not_even_hers] {
        assert_refused(ask(&eve, &mut a, SyncRequest::Heads { tag, proof }));
    }
    let own_key = eve.engine.topic_key(&other).unwrap().unwrap();
    let own_tag = SyncRequest::Heads {
        tag: TopicTag::of(&own_key),
        proof: eve.engine.proof(&other, &eve.peer, &a.peer).unwrap(),
    };
    assert_refused(ask(&eve, &mut a, own_tag));
    // Nothing of the other topic was taken in.
    assert_eq!(a.engine.changes(&topic).unwrap().len(), changes_before);
    assert_eq!(a.engine.pending_count(&topic).unwrap(), pending_before);
    assert_eq!(a.engine.topic_ids().unwrap(), vec![topic]);

    // Bo's proof, made for the connection Bo -> Ada, is worthless anywhere else.
    let bo_to_ada = b.engine.proof(&topic, &b.peer, &a.peer).unwrap();
    let replayed = SyncRequest::Heads {
        tag,
        proof: bo_to_ada.clone(),
    };
    let response = a.engine.serve(replayed.clone(), &eve.peer, &a.peer);
    assert_refused(response);
    let response = a.engine.serve(replayed.clone(), &b.peer, &eve.peer);
    assert_refused(response);
    let mut tampered = bo_to_ada;
    tampered.signature[0] ^= 1;
    assert_refused(ask(
        &b,
        &mut a,
        SyncRequest::Heads {
            tag,
            proof: tampered,
        },
    ));
    // On the connection it was made for it is served.
    assert!(matches!(
        a.engine.serve(replayed, &b.peer, &a.peer),
        SyncResponse::Heads { .. }
    ));
}

#[test]
fn quarantined_journals_are_kept_but_not_relayed() {
    let clock = Arc::new(AtomicI64::new(1_700_000_000_000));
    let mut a = node("ada", &clock);
    let (mut b, mut q) = (node("bo", &clock), node("quinn", &clock));
    let topic = a
        .engine
        .create_topic("Platform team", &profile("ada"))
        .unwrap();
    a.engine.commit().unwrap();

    // One invite with a single use, used twice: the later join is quarantined.
    let (grant, secret) = a
        .engine
        .create_invite(&topic, Role::Member, None, Some(1))
        .unwrap();
    invite(&mut a, &mut b, &topic, &grant, &secret);
    invite(&mut a, &mut q, &topic, &grant, &secret);
    q.engine.post(&topic, Kind::Idea, idea("hello?")).unwrap();
    q.engine.commit().unwrap();

    // Ada learns of Bo first, then Quinn's proof brings Quinn's admission: quarantined.
    pull(&mut b, &mut a, &topic, None);
    let request = heads_request(&mut q, &a, &topic);
    assert_told(
        ask(&q, &mut a, request),
        "quarantined (invite over its use limit)",
    );
    let (bo_id, quinn) = (b.engine.me(), q.engine.me());
    assert_eq!(
        a.engine
            .members(&topic)
            .unwrap()
            .into_iter()
            .find(|(who, _)| who.id == quinn.to_hex())
            .map(|(_, status)| status),
        Some(Status::Quarantined(Quarantine::OverLimit))
    );
    // Quinn's journals reach Ada some other way (gossip, say): kept, not advertised, not sent.
    let own = q.engine.changes(&topic).unwrap();
    a.engine.ingest(&topic, own).unwrap();
    a.engine.commit().unwrap();
    let quinn0 = DocId::Journal {
        member: quinn,
        n: 0,
    };
    assert!(a.engine.doc_ids(&topic).unwrap().contains(&quinn0));
    let theirs = served_heads(&mut b, &mut a, &topic);
    assert!(theirs.iter().all(|d| d.doc.journal_owner() != Some(quinn)));
    assert!(theirs.iter().any(|d| d.doc.journal_owner() == Some(bo_id)));
    let request = changes_request(
        &mut b,
        &a,
        &topic,
        vec![Want {
            doc: quinn0,
            have: Vec::new(),
        }],
    );
    assert_eq!(
        ask(&b, &mut a, request),
        SyncResponse::Changes {
            changes: Vec::new(),
            more: false
        }
    );
    pull(&mut a, &mut b, &topic, None);
    assert!(pull(&mut b, &mut a, &topic, None).in_sync);
    assert!(!b.engine.doc_ids(&topic).unwrap().contains(&quinn0));
}
