//! `catchment import stackexchange` and `catchment alias` as a person runs them.

mod support;

use std::path::Path;

use support::{failure, json, ok};

fn dump(dir: &Path) {
    let posts = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<posts>\n\
  <row Id=\"1\" PostTypeId=\"1\" AcceptedAnswerId=\"2\" CreationDate=\"2020-01-01T10:00:00.000\" \
Body=\"&lt;p&gt;Why &lt;em&gt;so&lt;/em&gt; slow?&lt;/p&gt;\" OwnerUserId=\"12\" Title=\"Slow builds\" \
Tags=\"&lt;build&gt;\" />\n\
  <row Id=\"2\" PostTypeId=\"2\" ParentId=\"1\" CreationDate=\"2020-01-01T11:00:00.000\" \
Body=\"&lt;p&gt;Use a cache.&lt;/p&gt;\" OwnerUserId=\"13\" />\n\
  <row Id=\"3\" PostTypeId=\"5\" CreationDate=\"2020-01-01T11:00:00.000\" Body=\"wiki\" />\n\
</posts>\n";
    let votes = "<votes>\n\
  <row Id=\"20\" PostId=\"2\" VoteTypeId=\"2\" CreationDate=\"2020-01-01T00:00:00.000\" />\n\
  <row Id=\"21\" PostId=\"9\" VoteTypeId=\"2\" CreationDate=\"2020-01-01T00:00:00.000\" />\n\
</votes>\n";
    std::fs::write(dir.join("Posts.xml"), posts).unwrap();
    std::fs::write(dir.join("Votes.xml"), votes).unwrap();
    std::fs::write(
        dir.join("Badges.xml"),
        "<badges>\n  <row Id=\"1\" UserId=\"12\" />\n</badges>\n",
    )
    .unwrap();
}

#[test]
fn an_admin_imports_a_dump_once_and_sees_its_authors_as_aliases() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("team-meta");
    std::fs::create_dir(&dir).unwrap();
    dump(&dir);
    let home = home.path();
    ok(home, &["init", "--name", "Ada"]);
    ok(home, &["topic", "create", "Platform"]);

    let dir_arg = dir.to_str().unwrap();
    let report = ok(
        home,
        &["import", "stackexchange", dir_arg, "--topic", "Platform"],
    );
    assert!(
        report.contains("Imported 4 record(s) from team-meta"),
        "{report}"
    );
    assert!(
        report.contains("1 question") && report.contains("1 answer"),
        "{report}"
    );
    assert!(
        report.contains("1 vote") && report.contains("1 accept"),
        "{report}"
    );
    assert!(
        report.contains("1 vote on a post not in the dump"),
        "{report}"
    );
    assert!(report.contains("1 badge: not imported"), "{report}");
    assert!(report.contains("1 tag wiki post: not imported"), "{report}");
    assert!(
        report.contains("Not in the folder: Comments.xml"),
        "{report}"
    );

    // Again: nothing new.
    let again = json(
        home,
        &["import", "stackexchange", dir_arg, "--topic", "Platform"],
    );
    assert_eq!(again["imported"], serde_json::json!({}));
    assert_eq!(again["already_there"], 4);
    assert_eq!(
        again["skipped"]["vote on a post not in the dump"]["count"],
        1
    );

    let board = ok(home, &["leaderboard"]);
    assert!(board.contains("user13, imported"), "{board}");
    assert!(board.contains("user12, imported"), "{board}");
    let feed = json(home, &["feed"]);
    let question = feed
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "question")
        .unwrap();
    let shown = ok(home, &["show", question["id"].as_str().unwrap()]);
    assert!(shown.contains("by user12, imported"), "{shown}");
    assert!(
        shown.contains("Why *so* slow?") || shown.contains("Why _so_ slow?"),
        "{shown}"
    );
    let profile = ok(home, &["profile", "user13"]);
    assert!(
        profile.contains("user13, imported") && profile.contains("1 answers"),
        "{profile}"
    );

    // Linked to Ada, the answer's recognition is Ada's.
    let aliases = ok(home, &["alias", "list"]);
    assert!(
        aliases.contains("user13") && aliases.contains("imported, not linked"),
        "{aliases}"
    );
    ok(home, &["alias", "link", "user13", "me"]);
    let board = ok(home, &["leaderboard"]);
    assert!(
        !board.contains("user13, imported") && board.contains("Ada"),
        "{board}"
    );
    assert!(ok(home, &["alias", "list"]).contains("linked to Ada"));
    ok(home, &["alias", "unlink", "user13"]);
    assert!(ok(home, &["leaderboard"]).contains("user13, imported"));

    // The same dump in a renamed folder is refused rather than imported twice; naming the
    // source on purpose imports it again.
    let copy = data.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    dump(&copy);
    let copy_arg = copy.to_str().unwrap();
    let err = failure(
        home,
        &["import", "stackexchange", copy_arg, "--topic", "Platform"],
    );
    assert!(
        err.contains("imported into the topic before under another source name")
            && err.contains("--source"),
        "{err}"
    );
    assert_eq!(json(home, &["feed"]).as_array().unwrap().len(), 2);
    let twice = json(
        home,
        &[
            "import",
            "stackexchange",
            copy_arg,
            "--topic",
            "Platform",
            "--source",
            "second",
        ],
    );
    assert_eq!(twice["imported"]["question"], 1);
    assert_eq!(json(home, &["feed"]).as_array().unwrap().len(), 4);
}

#[test]
fn bad_dumps_fail_with_one_line_and_keep_what_is_stored() {
    let home = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["init", "--name", "Ada"]);
    ok(home, &["topic", "create", "Platform"]);

    let missing = data.path().join("nope");
    let err = failure(
        home,
        &["import", "stackexchange", missing.to_str().unwrap()],
    );
    assert!(
        err.contains("no such folder") && !err.contains('\n'),
        "{err}"
    );
    let err = failure(
        home,
        &["import", "stackexchange", data.path().to_str().unwrap()],
    );
    assert!(
        err.contains("no Stack Exchange dump files") && !err.contains('\n'),
        "{err}"
    );

    dump(data.path());
    ok(
        home,
        &["import", "stackexchange", data.path().to_str().unwrap()],
    );
    let before = json(home, &["topic", "show"])["counts"].clone();
    let posts = std::fs::read_to_string(data.path().join("Posts.xml")).unwrap();
    std::fs::write(
        data.path().join("Posts.xml"),
        posts.replace("</posts>", "</post>"),
    )
    .unwrap();
    let err = failure(
        home,
        &["import", "stackexchange", data.path().to_str().unwrap()],
    );
    assert!(
        err.contains("Posts.xml, line 6: malformed XML") && !err.contains('\n'),
        "{err}"
    );
    assert_eq!(json(home, &["topic", "show"])["counts"], before);
}
