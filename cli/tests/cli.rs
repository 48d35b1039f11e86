//! The `catchment` command as a person uses it: real processes on a temporary home.

mod support;

use std::path::Path;

use support::{failure, json, ok};

/// Runs a command that must fail, and returns its error.
fn fails(home: &Path, args: &[&str]) -> String {
    failure(home, args)
}

#[test]
fn init_keeps_its_key_and_whoami_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let first = ok(&home, &["init", "--name", "Ada"]);
    assert!(first.contains("Created"));
    let second = ok(&home, &["init"]);
    assert!(second.contains("Kept the existing member key"));
    let who = json(&home, &["whoami"]);
    assert_eq!(who["name"], "Ada");
    assert!(first.contains(who["member"].as_str().unwrap()));
    assert!(second.contains(who["member"].as_str().unwrap()));
    let text = ok(&home, &["whoami"]);
    assert!(
        text.starts_with(&format!("Ada ({})", who["short"].as_str().unwrap())),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.join("member.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_walk_through_with_every_read_command_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    ok(home, &["init", "--name", "Ada"]);
    let topic = json(home, &["topic", "create", "Platform team ideas"]);
    let topic_id = topic["id"].as_str().unwrap().to_string();

    let q = json(
        home,
        &[
            "post",
            "question",
            "--title",
            "How do we cut build time?",
            "--tags",
            "ci,Build",
        ],
    );
    let q = q["id"].as_str().unwrap().to_string();
    let a = json(
        home,
        &[
            "post",
            "answer",
            "--parent",
            &q[..6],
            "--body",
            "Cache the target dir",
        ],
    );
    let a = a["id"].as_str().unwrap().to_string();
    ok(
        home,
        &["post", "comment", "--parent", &a, "--body", "+1 to caching"],
    );
    ok(home, &["accept", &a]);
    ok(home, &["edit", &q, "--body", "CI takes 40 minutes"]);
    ok(
        home,
        &[
            "ask",
            "create",
            "--title",
            "Ideas to cut build time",
            "--deadline",
            "7d",
        ],
    );
    let asks = json(home, &["ask", "list"]);
    let ask = asks[0]["id"].as_str().unwrap().to_string();
    ok(
        home,
        &[
            "post",
            "idea",
            "--title",
            "Nightly full builds",
            "--ask",
            &ask,
        ],
    );
    ok(home, &["profile", "set", "--about", "builds things"]);

    let feed = json(home, &["feed"]);
    assert_eq!(feed.as_array().unwrap().len(), 4);
    assert_eq!(json(home, &["feed", "--kind", "question"])[0]["id"], q);
    assert_eq!(
        json(home, &["feed", "--tag", "build"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        json(home, &["feed", "--ask", &ask])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        json(home, &["feed", "--author", "me", "--limit", "2"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let thread = json(home, &["show", &q[..8]]);
    assert_eq!(thread["item"]["body"], "CI takes 40 minutes");
    assert_eq!(thread["item"]["accepted"], a);
    assert_eq!(thread["replies"][0]["item"]["id"], a);
    assert_eq!(thread["replies"][0]["replies"].as_array().unwrap().len(), 1);

    let board = json(home, &["leaderboard"]);
    // Accepting your own answer counts for nothing; 1 question, 1 answer, 1 comment, 1 idea.
    assert_eq!(board["rows"][0]["recognition"]["score"], 2 + 3 + 1 + 3);
    assert_eq!(board["rows"][0]["recognition"]["accepted"], 0);

    let profile = json(home, &["profile"]);
    assert_eq!(profile["about"], "builds things");
    assert_eq!(profile["status"], "admin");
    assert_eq!(json(home, &["topic", "list"])[0]["id"], topic_id);
    assert_eq!(
        json(home, &["topic", "show", &topic_id[..8]])["counts"]["contributions"],
        4
    );
    assert_eq!(
        json(home, &["topic", "weights", "--set", "comment=4"])["comment"],
        4
    );
    assert_eq!(
        json(home, &["leaderboard"])["rows"][0]["recognition"]["score"],
        2 + 3 + 4 + 3
    );
    assert_eq!(json(home, &["member", "list"]).as_array().unwrap().len(), 1);

    ok(home, &["retract", &a]);
    let feed = json(home, &["feed"]);
    assert_eq!(
        feed.as_array().unwrap().len(),
        3,
        "the answer is gone, its comment stays"
    );
    assert!(feed.as_array().unwrap().iter().all(|i| i["id"] != a));
    assert_eq!(
        json(home, &["show", &a])["item"]["retracted"],
        true,
        "history kept"
    );
    for args in [
        &["feed"][..],
        &["leaderboard"],
        &["show", &q],
        &["profile"],
        &["topic", "show"],
    ] {
        assert!(!ok(home, args).is_empty(), "{args:?} prints text");
    }
}

#[test]
fn wrong_input_gets_one_line_errors_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let err = fails(home, &["feed"]);
    assert!(err.contains("catchment init"), "{err}");
    ok(home, &["init"]);
    let err = fails(home, &["feed"]);
    assert!(err.contains("no topic yet"), "{err}");
    ok(home, &["topic", "create", "T"]);
    let idea = json(home, &["post", "idea", "--title", "keep me"]);
    let idea = idea["id"].as_str().unwrap();

    let cases: [(&[&str], &str); 9] = [
        (&["show", "ffffffffffff"], "no contribution"),
        (&["show", "not-hex"], "no contribution"),
        (&["post", "idea"], "needs a title"),
        (&["post", "answer", "--body", "x"], "--parent"),
        (
            &["post", "answer", "--body", "x", "--parent", idea],
            "not a question",
        ),
        (&["feed", "--topic", "nope"], "no topic matches"),
        (
            &["ask", "create", "--title", "t", "--deadline", "someday"],
            "deadline",
        ),
        (&["topic", "weights", "--set", "speed=3"], "no weight named"),
        (&["kudos", "nobody", "--note", "hi"], "no member"),
    ];
    for (args, expected) in cases {
        let err = fails(home, args);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{args:?}: {err}"
        );
    }
    // An edit cannot empty what a post must have.
    let question = json(home, &["post", "question", "--title", "why?"]);
    let question = question["id"].as_str().unwrap();
    let answer = json(
        home,
        &["post", "answer", "--parent", question, "--body", "because"],
    );
    let answer = answer["id"].as_str().unwrap();
    let err = fails(home, &["edit", answer, "--body", " "]);
    assert!(err.contains("an answer needs a body"), "{err}");
    let err = fails(home, &["edit", question, "--title", ""]);
    assert!(err.contains("needs a title"), "{err}");
    let shown = json(home, &["show", answer]);
    assert!(shown.to_string().contains("because"), "{shown}");

    // Arguments clap refuses also fail, naming the argument.
    let err = fails(home, &["post", "essay", "--title", "x"]);
    assert!(err.contains("essay"), "{err}");

    // A store held by another process: a clear error, and the data is intact afterwards.
    let store = home.join("store");
    let _lock = catchment_node::SledBackend::open(&store).unwrap();
    let err = fails(home, &["feed"]);
    assert!(err.contains("cannot open the store"), "{err}");
    drop(_lock);
    let feed = json(home, &["feed"]);
    assert!(
        feed.as_array().unwrap().iter().any(|c| c["id"] == idea),
        "{feed}"
    );
}

#[test]
fn an_unreadable_store_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    ok(home, &["init"]);
    std::fs::create_dir_all(home.join("store")).unwrap();
    std::fs::write(
        home.join("store").join("conf"),
        b"\xff\xfenot a sled config",
    )
    .unwrap();
    let err = fails(home, &["topic", "list"]);
    assert!(err.starts_with("error: cannot open the store at"), "{err}");
    assert_eq!(err.lines().count(), 1);
}
