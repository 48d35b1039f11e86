//! Invites as people use them: real `catchment` processes on separate homes, with no network.
//! Where two homes must exchange changes (the network's job), the test opens their stores
//! directly between commands.

mod support;

use std::path::Path;
use std::process::Command;

use catchment_crdt::schema::Role;
use catchment_node::{Engine, Home, SledBackend};
use catchment_protocol::invite::{Invite, PREFIX};
use data_encoding::BASE32_NOPAD;

use sha2::{Digest, Sha256};
use support::{failure, json, ok};

/// Runs a command that must fail, and returns its error, which must be one line.
fn fails(home: &Path, args: &[&str]) -> String {
    let err = failure(home, args);
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    err
}

fn init(home: &Path, name: &str) {
    ok(home, &["init", "--name", name]);
}

/// Gives every home every change the others hold, as sync will (no process runs meanwhile).
fn exchange(homes: &[&Path], topic: &str) {
    let mut engines: Vec<Engine> = homes
        .iter()
        .map(|dir| {
            let home = Home::open(dir).unwrap();
            let backend = SledBackend::open(&home.store_dir()).unwrap();
            Engine::open(Box::new(backend), home.keypair().unwrap())
        })
        .collect();
    let topic: catchment_crdt::TopicId = topic.parse().unwrap();
    for _ in 0..2 {
        for from in 0..engines.len() {
            let changes = engines[from].changes(&topic).unwrap();
            for (to, engine) in engines.iter_mut().enumerate() {
                if to != from {
                    let report = engine.ingest(&topic, changes.clone()).unwrap();
                    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
                }
            }
        }
    }
    for engine in &engines {
        engine.commit().unwrap();
    }
}

/// The invite string in `invite create`'s text output: the line of its own.
fn printed_invite(text: &str) -> String {
    text.lines()
        .find(|line| line.starts_with(PREFIX))
        .unwrap_or_else(|| panic!("no invite line in:\n{text}"))
        .to_string()
}

/// Re-encodes an invite's bytes after `alter`, with a correct checksum.
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
fn a_member_joins_with_the_printed_invite_and_posts_with_nobody_online() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("ada"), dir.path().join("bo"));
    init(&a, "Ada");
    init(&b, "Bo");
    let topic = json(&a, &["topic", "create", "Platform team"]);
    let topic_id = topic["id"].as_str().unwrap();

    let text = ok(&a, &["invite", "create", "--uses", "3"]);
    assert!(
        text.contains("Platform team") && text.contains("3 uses"),
        "{text}"
    );
    assert!(
        text.contains('█') || text.contains('▀'),
        "a QR code: {text}"
    );
    let invite = printed_invite(&text);

    // B joins from the string alone (A's process is gone: nobody is online) and posts.
    let joined = ok(&b, &["join", &invite]);
    assert!(
        joined.starts_with("Joined \"Platform team\" (you: member)"),
        "{joined}"
    );
    assert!(joined.contains(topic_id), "{joined}");
    let idea = json(&b, &["post", "idea", "--title", "Cache the target dir"]);
    let topics = json(&b, &["topic", "list"]);
    assert_eq!(topics[0]["id"], topic_id);
    assert_eq!(topics[0]["name"], "Platform team");
    assert_eq!(topics[0]["status"], "member");
    assert_eq!(json(&b, &["feed"])[0]["id"], idea["id"]);
    let err = fails(&b, &["join", &invite]);
    assert!(err.contains("already in this topic"), "{err}");

    // Only admins invite.
    let err = fails(&b, &["invite", "create"]);
    assert!(
        err.contains("only an admin of this topic may create invites"),
        "{err}"
    );

    // A lists the invite; once A has B's changes, it counts B.
    let listed = json(&a, &["invite", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        (listed[0]["used"].as_u64(), listed[0]["uses"].as_u64()),
        (Some(0), Some(3))
    );
    exchange(&[&a, &b], topic_id);
    assert_eq!(json(&a, &["invite", "list"])[0]["used"], 1);
    let text = ok(&a, &["invite", "list"]);
    assert!(text.contains("used 1 of 3"), "{text}");
    assert_eq!(json(&a, &["feed"])[0]["id"], idea["id"]);

    // Revoking keeps B, who was already admitted with it.
    let short = listed[0]["short"].as_str().unwrap();
    let revoked = ok(&a, &["invite", "revoke", &short[..5]]);
    assert!(
        revoked.contains("1 member(s) already admitted"),
        "{revoked}"
    );
    assert!(json(&a, &["invite", "list"])[0]["revoked"]
        .as_bool()
        .unwrap());
    let members = json(&a, &["member", "list"]);
    assert!(members
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["status"]["status"] == "admitted"));
}

#[test]
fn bad_invites_get_one_line_errors_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("ada"), dir.path().join("bo"));
    init(&a, "Ada");
    init(&b, "Bo");
    ok(&a, &["topic", "create", "T"]);
    let invite = json(&a, &["invite", "create"])["invite"]
        .as_str()
        .unwrap()
        .to_string();

    let mut typo: Vec<char> = invite.chars().collect();
    let i = PREFIX.len() + 40;
    typo[i] = if typo[i] == 'a' { 'b' } else { 'a' };
    let typo: String = typo.into_iter().collect();
    let mut raised = Invite::decode(&invite).unwrap();
    raised.grant.role = Role::Admin;
    let cases = [
        ("join me please".to_string(), "not a Catchment invite"),
        (format!("{invite}!"), "characters that do not belong"),
        (typo, "checksum does not match"),
        (
            invite[..invite.len() - 16].to_string(),
            "checksum does not match",
        ),
        (
            forge(&invite, |bytes| bytes[0] = 9),
            "invite format 9 is newer",
        ),
        (
            forge(&invite, |bytes| bytes.truncate(bytes.len() - 7)),
            "malformed",
        ),
        (raised.encode(), "tampered with"),
    ];
    for (text, expected) in cases {
        let err = fails(&b, &["join", &text]);
        assert!(err.contains(expected), "{expected:?}: {err}");
    }
    assert_eq!(json(&b, &["topic", "list"]), serde_json::json!([]));

    let err = fails(&a, &["join", &invite]);
    assert!(err.contains("already in this topic (admin)"), "{err}");

    // An invite past its expiry is refused by the joiner's clock, and leaves no topic behind.
    let short_lived = json(&a, &["invite", "create", "--expires", "2s"])["invite"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(2_100));
    let err = fails(&b, &["join", &short_lived]);
    assert!(err.contains("invite expired on"), "{err}");
    assert_eq!(json(&b, &["topic", "list"]), serde_json::json!([]));
    let err = fails(&a, &["invite", "create", "--expires", "soonish"]);
    assert!(err.contains("--expires"), "{err}");

    // The genuine one still works, read from standard input.
    let mut child = Command::new(env!("CARGO_BIN_EXE_catchment"))
        .arg("--home")
        .arg(&b)
        .args(["join", "-"])
        .env_remove("CATCHMENT_HOME")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{}\n{}\n", &invite[..50], &invite[50..]).as_bytes())
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
}

#[test]
fn a_quarantined_member_is_told_and_an_admin_settles_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("ada"),
        dir.path().join("bo"),
        dir.path().join("cy"),
    );
    init(&a, "Ada");
    init(&b, "Bo");
    init(&c, "Cy");
    let topic = json(&a, &["topic", "create", "T"]);
    let topic_id = topic["id"].as_str().unwrap();
    let invite = json(
        &a,
        &["invite", "create", "--uses", "1", "--expires", "never"],
    );
    assert!(invite["expires"].is_null());
    let invite = invite["invite"].as_str().unwrap();

    // Two people use a one-use invite while nobody is online; both may post at once.
    ok(&b, &["join", invite]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    ok(&c, &["join", invite]);
    ok(&c, &["post", "idea", "--title", "from Cy"]);
    exchange(&[&a, &b, &c], topic_id);

    // Cy joined last: its node says it waits, and it cannot post meanwhile.
    let text = ok(&c, &["topic", "list"]);
    assert!(
        text.contains("you: quarantined (invite over its use limit)"),
        "{text}"
    );
    let err = fails(&c, &["post", "idea", "--title", "more"]);
    assert!(err.contains("quarantined"), "{err}");
    assert!(ok(&c, &["profile"]).contains("status: quarantined (invite over its use limit)"));

    // The admin sees what waits and why, and admits Cy.
    let pending = json(&a, &["member", "pending"]);
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_eq!(pending[0]["member"]["name"], "Cy");
    assert_eq!(pending[0]["status"]["detail"], "over_limit");
    let text = ok(&a, &["member", "pending"]);
    assert!(
        text.contains("Cy") && text.contains("invite over its use limit"),
        "{text}"
    );
    let err = fails(&b, &["member", "admit", "Cy"]);
    assert!(err.contains("only an admin"), "{err}");
    let err = fails(&a, &["member", "remove", "Cy"]);
    assert!(err.contains("member refuse"), "{err}");
    let admitted = ok(&a, &["member", "admit", "Cy"]);
    assert!(admitted.contains("is now member"), "{admitted}");
    assert_eq!(json(&a, &["member", "pending"]), serde_json::json!([]));
    exchange(&[&a, &b, &c], topic_id);
    assert_eq!(json(&c, &["topic", "list"])[0]["status"], "member");
    assert_eq!(json(&b, &["feed"]).as_array().unwrap().len(), 1);

    // Removing a member: what they wrote stays.
    let removed = ok(&a, &["member", "remove", "Cy"]);
    assert!(removed.starts_with("Removed Cy"), "{removed}");
    assert_eq!(json(&a, &["feed"]).as_array().unwrap().len(), 1);
    let err = fails(&a, &["member", "refuse", "Cy"]);
    assert!(err.contains("was removed"), "{err}");
}
