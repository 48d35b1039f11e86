//! Invites end to end on the engine: joining offline with the charter an invite carries,
//! refusing expired, revoked and altered invites, and settling quarantined admissions on every
//! node. Nodes exchange changes directly (`Engine::changes` into `Engine::ingest`), as
//! anti-entropy will.

use catchment_crdt::charter::Decision;
use catchment_crdt::membership::{Quarantine, Status};
use catchment_crdt::schema::{Draft, Kind, Profile, Role};
use catchment_crdt::{MemberId, Rejection, TopicId};
use catchment_node::query::FeedFilter;
use catchment_node::{Engine, EngineError, Home, SledBackend};
use catchment_protocol::invite::{Invite, InviteError, PREFIX};
use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

struct Node {
    _dir: TempDir,
    engine: Engine,
}

fn node(name: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let (home, _) = Home::init(dir.path(), Some(name)).unwrap();
    let backend = SledBackend::open(&home.store_dir()).unwrap();
    let engine = Engine::open(Box::new(backend), home.keypair().unwrap());
    Node { _dir: dir, engine }
}

/// A node whose clock reads `at` (milliseconds since the epoch).
fn node_at(name: &str, at: i64) -> Node {
    let mut n = node(name);
    n.engine.set_clock(move || at);
    n
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

/// Sends every change `from` holds to `to`; none may be refused.
fn send(from: &mut Node, to: &mut Node, topic: &TopicId) {
    let changes = from.engine.changes(topic).unwrap();
    let report = to.engine.ingest(topic, changes).unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    to.engine.commit().unwrap();
}

/// Brings every node to the same changes.
fn sync_all(nodes: &mut [&mut Node], topic: &TopicId) {
    for _ in 0..2 {
        for i in 0..nodes.len() {
            for j in 0..nodes.len() {
                if i != j {
                    let changes = nodes[i].engine.changes(topic).unwrap();
                    let report = nodes[j].engine.ingest(topic, changes).unwrap();
                    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
                }
            }
        }
    }
}

fn status(n: &mut Node, topic: &TopicId, member: &MemberId) -> Option<Status> {
    n.engine.standing(topic, member).unwrap()
}

fn visible_ideas(n: &mut Node, topic: &TopicId) -> usize {
    n.engine.feed(topic, &FeedFilter::default()).unwrap().len()
}

/// A topic on an admin node whose clock reads 1,000, and an invite string to it.
fn topic_with_invite(uses: Option<u32>) -> (Node, TopicId, String) {
    let mut a = node_at("Ada", 1_000);
    let topic = a
        .engine
        .create_topic("Platform team", &profile("Ada"))
        .unwrap();
    let invite = a
        .engine
        .issue_invite(&topic, Role::Member, None, uses, &[])
        .unwrap();
    a.engine.commit().unwrap();
    assert!(invite.carries_charter);
    (a, topic, invite.text)
}

/// Re-encodes an invite's bytes after `alter` with a correct checksum, as a forger would.
fn forge(text: &str, alter: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut bytes = BASE32_NOPAD
        .decode(text[PREFIX.len()..].to_uppercase().as_bytes())
        .unwrap();
    bytes.truncate(bytes.len() - 4);
    alter(&mut bytes);
    let checksum = Sha256::digest(&bytes);
    bytes.extend_from_slice(&checksum[..4]);
    format!("{PREFIX}{}", BASE32_NOPAD.encode(&bytes).to_lowercase())
}

#[test]
fn a_joiner_posts_offline_with_the_charter_from_the_invite() {
    let (mut a, topic, invite) = topic_with_invite(None);

    // B has never heard from A: everything it needs is in the string.
    let mut b = node_at("Bo", 2_000);
    let joined = b.engine.join_invite(&invite, &profile("Bo")).unwrap();
    assert_eq!(joined, topic);
    let posted = b.engine.post(&topic, Kind::Idea, idea("Cache CI")).unwrap();
    b.engine.commit().unwrap();

    let mb = b.engine.me();
    assert_eq!(
        status(&mut b, &topic, &mb),
        Some(Status::Admitted(Role::Member))
    );
    assert_eq!(b.engine.topics().unwrap()[0].status, "member");
    assert_eq!(
        b.engine.feed(&topic, &FeedFilter::default()).unwrap()[0].id,
        posted
    );
    assert_eq!(
        b.engine.topic_key(&topic).unwrap(),
        a.engine.topic_key(&topic).unwrap(),
        "the joiner keeps the topic key the invite carried"
    );
    assert!(b.engine.topic_key(&topic).unwrap().is_some());

    // When they meet, A accepts all of it.
    send(&mut b, &mut a, &topic);
    assert_eq!(
        status(&mut a, &topic, &mb),
        Some(Status::Admitted(Role::Member))
    );
    assert_eq!(visible_ideas(&mut a, &topic), 1);
    let listed = a.engine.invites(&topic).unwrap();
    assert_eq!((listed.len(), listed[0].used), (1, 1));

    // Joining again is refused, naming why.
    let again = b.engine.join_invite(&invite, &profile("Bo")).unwrap_err();
    assert!(matches!(again, EngineError::AlreadyMember(_)), "{again}");
}

#[test]
fn an_expired_invite_is_refused_before_anything_is_stored() {
    let mut a = node_at("Ada", 1_000);
    let topic = a.engine.create_topic("T", &profile("Ada")).unwrap();
    let invite = a
        .engine
        .issue_invite(&topic, Role::Member, Some(5_000), None, &[])
        .unwrap();

    let mut late = node_at("Bo", 6_000);
    let err = late
        .engine
        .join_invite(&invite.text, &profile("Bo"))
        .unwrap_err();
    assert!(matches!(err, EngineError::InviteExpired(_)), "{err}");
    assert!(err.to_string().contains("expired"), "{err}");
    assert!(late.engine.topic_ids().unwrap().is_empty());

    let mut in_time = node_at("Cy", 5_000);
    in_time
        .engine
        .join_invite(&invite.text, &profile("Cy"))
        .unwrap();
    assert!(!a.engine.invites(&topic).unwrap()[0].expired);
    a.engine.set_clock(|| 6_000);
    assert!(a.engine.invites(&topic).unwrap()[0].expired);
}

#[test]
fn a_revoked_invite_is_refused() {
    let (mut a, topic, invite) = topic_with_invite(None);
    let id = a.engine.invites(&topic).unwrap()[0].id.clone();
    let (revoked, kept) = a.engine.revoke_invite(&topic, &id[..6]).unwrap();
    assert_eq!(revoked.to_hex(), id);
    assert!(kept.is_empty());
    assert!(a.engine.invites(&topic).unwrap()[0].revoked);
    let again = a.engine.revoke_invite(&topic, &id).unwrap_err();
    assert!(again.to_string().contains("already revoked"), "{again}");

    // B holds the charter with the revocation (from A, or any member) before it joins.
    let mut b = node_at("Bo", 2_000);
    send(&mut a, &mut b, &topic);
    let err = b.engine.join_invite(&invite, &profile("Bo")).unwrap_err();
    assert!(matches!(err, EngineError::InviteRevoked), "{err}");
    let mb = b.engine.me();
    assert_eq!(status(&mut b, &topic, &mb), None);
}

#[test]
fn an_invite_revoked_while_someone_joined_offline_quarantines_only_them() {
    let (mut a, topic, invite) = topic_with_invite(None);
    let mut b = node_at("Bo", 2_000);
    let mut c = node_at("Cy", 3_000);
    b.engine.join_invite(&invite, &profile("Bo")).unwrap();
    c.engine.join_invite(&invite, &profile("Cy")).unwrap();
    c.engine.post(&topic, Kind::Idea, idea("from c")).unwrap();

    // A sees B's admission, then revokes; C's admission was not seen and is quarantined.
    send(&mut b, &mut a, &topic);
    let id = a.engine.invites(&topic).unwrap()[0].id.clone();
    let (_, kept) = a.engine.revoke_invite(&topic, &id).unwrap();
    assert_eq!(kept.into_iter().collect::<Vec<_>>(), vec![b.engine.me()]);
    sync_all(&mut [&mut a, &mut b, &mut c], &topic);

    let (mb, mc) = (b.engine.me(), c.engine.me());
    for n in [&mut a, &mut b, &mut c] {
        assert_eq!(status(n, &topic, &mb), Some(Status::Admitted(Role::Member)));
        assert_eq!(
            status(n, &topic, &mc),
            Some(Status::Quarantined(Quarantine::Revoked))
        );
        assert_eq!(visible_ideas(n, &topic), 0);
    }
    assert_eq!(
        c.engine.topics().unwrap()[0].status,
        "quarantined (invite revoked)"
    );
}

#[test]
fn altered_invites_are_refused_and_leave_nothing_behind() {
    let (_a, _topic, invite) = topic_with_invite(None);
    let mut b = node("Bo");
    let mut refuse = |text: &str| -> EngineError {
        let err = b.engine.join_invite(text, &profile("Bo")).unwrap_err();
        assert!(b.engine.topic_ids().unwrap().is_empty(), "{err}");
        err
    };

    assert!(matches!(
        refuse("hello"),
        EngineError::BadInvite(InviteError::Prefix)
    ));
    let mut typo: Vec<char> = invite.chars().collect();
    let i = PREFIX.len() + 30;
    typo[i] = if typo[i] == 'a' { 'b' } else { 'a' };
    let typo: String = typo.into_iter().collect();
    assert!(matches!(
        refuse(&typo),
        EngineError::BadInvite(InviteError::Checksum)
    ));
    let newer = forge(&invite, |bytes| bytes[0] = 2);
    assert!(matches!(
        refuse(&newer),
        EngineError::BadInvite(InviteError::Version(2))
    ));
    let cut = forge(&invite, |bytes| bytes.truncate(bytes.len() - 10));
    assert!(matches!(
        refuse(&cut),
        EngineError::BadInvite(InviteError::Malformed(_))
    ));

    // A member's role raised to admin: the grant's signature no longer holds.
    let mut raised = Invite::decode(&invite).unwrap();
    raised.grant.role = Role::Admin;
    let err = refuse(&raised.encode());
    assert!(
        matches!(err, EngineError::BadInvite(InviteError::Tampered(_))),
        "{err}"
    );
    assert!(err.to_string().contains("tampered"), "{err}");

    // Another topic's charter in place of this one's: validation refuses it.
    let (_other_admin, _other, other_invite) = topic_with_invite(None);
    let mut swapped = Invite::decode(&invite).unwrap();
    swapped.charter = Invite::decode(&other_invite).unwrap().charter;
    let err = refuse(&swapped.encode());
    assert!(
        matches!(err, EngineError::BadInvite(InviteError::Tampered(_))),
        "{err}"
    );

    // The genuine invite still works afterwards.
    b.engine.join_invite(&invite, &profile("Bo")).unwrap();
}

#[test]
fn a_one_use_invite_used_twice_offline_is_settled_the_same_everywhere() {
    let (mut a, topic, invite) = topic_with_invite(Some(1));
    let mut b = node_at("Bo", 2_000);
    let mut c = node_at("Cy", 3_000);
    b.engine.join_invite(&invite, &profile("Bo")).unwrap();
    c.engine.join_invite(&invite, &profile("Cy")).unwrap();
    b.engine.post(&topic, Kind::Idea, idea("from b")).unwrap();
    c.engine.post(&topic, Kind::Idea, idea("from c")).unwrap();
    sync_all(&mut [&mut a, &mut b, &mut c], &topic);

    // B claimed the earlier join time: B is admitted, C waits, on every node.
    let (mb, mc) = (b.engine.me(), c.engine.me());
    for n in [&mut a, &mut b, &mut c] {
        assert_eq!(status(n, &topic, &mb), Some(Status::Admitted(Role::Member)));
        assert_eq!(
            status(n, &topic, &mc),
            Some(Status::Quarantined(Quarantine::OverLimit))
        );
        assert_eq!(visible_ideas(n, &topic), 1);
        assert_eq!(
            n.engine.counts(&topic).unwrap()["contributions"],
            2,
            "nothing is deleted"
        );
    }

    // C's own node says so, and C cannot contribute meanwhile.
    assert_eq!(
        c.engine.topics().unwrap()[0].status,
        "quarantined (invite over its use limit)"
    );
    assert_eq!(
        c.engine.profile(&topic, &mc).unwrap().status,
        "quarantined (invite over its use limit)"
    );
    let err = c.engine.post(&topic, Kind::Idea, idea("more")).unwrap_err();
    assert!(err.to_string().contains("quarantined"), "{err}");

    // A sees what waits, and how the invite was used.
    let pending = a.engine.pending_admissions(&topic).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].member.id, mc.to_hex());
    assert_eq!(
        pending[0].status,
        Status::Quarantined(Quarantine::OverLimit)
    );
    let listed = a.engine.invites(&topic).unwrap();
    assert_eq!((listed[0].used, listed[0].quarantined), (2, 1));

    // Only admins decide; an admitted member cannot be "refused" (removal is for that) and a
    // quarantined one cannot be "removed" (that would show what it wrote).
    let err = b.engine.decide(&topic, &mc, Decision::Admit).unwrap_err();
    assert!(matches!(err, EngineError::NotAdmin(_)), "{err}");
    let err = a.engine.decide(&topic, &mb, Decision::Refuse).unwrap_err();
    assert!(err.to_string().contains("member remove"), "{err}");
    let err = a.engine.remove_member(&topic, &mc).unwrap_err();
    assert!(err.to_string().contains("member refuse"), "{err}");

    // The admin admits C: admitted everywhere, and C's idea shows.
    assert_eq!(
        a.engine.decide(&topic, &mc, Decision::Admit).unwrap(),
        Status::Admitted(Role::Member)
    );
    sync_all(&mut [&mut a, &mut b, &mut c], &topic);
    for n in [&mut a, &mut b, &mut c] {
        assert_eq!(status(n, &topic, &mc), Some(Status::Admitted(Role::Member)));
        assert_eq!(visible_ideas(n, &topic), 2);
        assert!(n.engine.pending_admissions(&topic).unwrap().is_empty());
    }
    c.engine.post(&topic, Kind::Idea, idea("more")).unwrap();
}

#[test]
fn a_refused_admission_stays_stored_and_unshown() {
    let (mut a, topic, invite) = topic_with_invite(Some(1));
    let mut b = node_at("Bo", 2_000);
    let mut c = node_at("Cy", 3_000);
    b.engine.join_invite(&invite, &profile("Bo")).unwrap();
    c.engine.join_invite(&invite, &profile("Cy")).unwrap();
    c.engine.post(&topic, Kind::Idea, idea("from c")).unwrap();
    sync_all(&mut [&mut a, &mut b, &mut c], &topic);

    let mc = c.engine.me();
    assert_eq!(
        a.engine.decide(&topic, &mc, Decision::Refuse).unwrap(),
        Status::Refused
    );
    let err = a.engine.decide(&topic, &mc, Decision::Refuse).unwrap_err();
    assert!(err.to_string().contains("already refused"), "{err}");
    sync_all(&mut [&mut a, &mut b, &mut c], &topic);
    for n in [&mut a, &mut b, &mut c] {
        assert_eq!(status(n, &topic, &mc), Some(Status::Refused));
        assert_eq!(visible_ideas(n, &topic), 0);
        assert_eq!(n.engine.counts(&topic).unwrap()["contributions"], 1);
    }
    assert_eq!(c.engine.topics().unwrap()[0].status, "refused");
}

#[test]
fn a_removed_members_later_changes_are_refused() {
    let (mut a, topic, invite) = topic_with_invite(None);
    let mut b = node_at("Bo", 2_000);
    b.engine.join_invite(&invite, &profile("Bo")).unwrap();
    let kept = b.engine.post(&topic, Kind::Idea, idea("before")).unwrap();
    send(&mut b, &mut a, &topic);

    let mb = b.engine.me();
    a.engine.remove_member(&topic, &mb).unwrap();
    let err = a.engine.remove_member(&topic, &mb).unwrap_err();
    assert!(err.to_string().contains("already removed"), "{err}");

    // B, not yet aware, keeps writing; A refuses what comes after the removal.
    b.engine.post(&topic, Kind::Idea, idea("after")).unwrap();
    let report = a
        .engine
        .ingest(&topic, b.engine.changes(&topic).unwrap())
        .unwrap();
    assert!(
        matches!(report.rejected.as_slice(), [Rejection::BeyondRemoval(m)] if *m == mb),
        "{report:?}"
    );
    let feed = a.engine.feed(&topic, &FeedFilter::default()).unwrap();
    assert_eq!(
        feed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [kept.as_str()]
    );

    send(&mut a, &mut b, &topic);
    assert_eq!(b.engine.topics().unwrap()[0].status, "removed");
}

#[test]
fn only_admins_invite_and_revoke() {
    let (mut a, topic, invite) = topic_with_invite(None);
    let mut b = node_at("Bo", 2_000);
    b.engine.join_invite(&invite, &profile("Bo")).unwrap();
    let err = b
        .engine
        .issue_invite(&topic, Role::Member, None, None, &[])
        .unwrap_err();
    assert!(matches!(err, EngineError::NotAdmin(_)), "{err}");
    let id = a.engine.invites(&topic).unwrap()[0].id.clone();
    let err = b.engine.revoke_invite(&topic, &id).unwrap_err();
    assert!(matches!(err, EngineError::NotAdmin(_)), "{err}");
    // Invites are recorded where they are made; other nodes list none.
    assert!(b.engine.invites(&topic).unwrap().is_empty());
    let err = a.engine.revoke_invite(&topic, "ffff").unwrap_err();
    assert!(matches!(err, EngineError::UnknownInvite(_)), "{err}");
}

#[test]
fn an_invite_without_the_charter_waits_for_a_peer() {
    let mut a = node_at("Ada", 1_000);
    let topic = a
        .engine
        .create_topic("Big charter", &profile("Ada"))
        .unwrap();
    // Asks make the charter larger than an invite carries.
    for i in 0..20 {
        a.engine
            .create_ask(&topic, &format!("ask {i}"), &"x".repeat(1_000), 9_000_000)
            .unwrap();
    }
    let invite = a
        .engine
        .issue_invite(&topic, Role::Member, None, None, &[])
        .unwrap();
    assert!(!invite.carries_charter);

    let mut b = node_at("Bo", 2_000);
    let err = b
        .engine
        .join_invite(&invite.text, &profile("Bo"))
        .unwrap_err();
    assert!(matches!(err, EngineError::CharterMissing), "{err}");
    assert!(b.engine.topic_ids().unwrap().is_empty());

    // Once a peer has sent the charter, the same invite works.
    send(&mut a, &mut b, &topic);
    b.engine.join_invite(&invite.text, &profile("Bo")).unwrap();
    b.engine.post(&topic, Kind::Idea, idea("in")).unwrap();
}
