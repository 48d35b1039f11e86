//! The Stack Exchange data dump: which rows become which events.
//!
//! | dump | becomes |
//! | --- | --- |
//! | `Posts.xml`, PostTypeId 1 | a question, or an idea when it has a tag given with `--as-idea` |
//! | `Posts.xml`, PostTypeId 2 | an answer to its ParentId |
//! | `Posts.xml`, other types (tag wikis ...) | skipped |
//! | a question's AcceptedAnswerId | an accept by the question's author |
//! | `Comments.xml` | a comment on its PostId |
//! | `Votes.xml`, VoteTypeId 2 / 3 | an endorsement +1 / -1, each by its own anonymous voter |
//! | `Votes.xml`, VoteTypeId 1 | dates the accept (the accept itself comes from the question) |
//! | `Votes.xml`, other types | skipped (moderation, favourites, bounties) |
//! | `Users.xml`, `Tags.xml` | counted; authors are known by alias and tags come with posts |
//! | `Badges.xml`, `PostLinks.xml` | skipped |
//!
//! Authors are aliases: `user<OwnerUserId>` / `user<UserId>`, or the row's display name when
//! it has no user id. HTML bodies become Markdown. A row that lacks a field it needs, or whose
//! field does not parse, is skipped and reported with its file and line; a file that is not
//! well-formed XML stops the reading with an error naming the file and line.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::UNIX_EPOCH;

use catchment_crdt::schema::{Kind, MAX_BODY, MAX_TAG, MAX_TAGS, MAX_TITLE};

use super::xml::{Row, Rows};
use super::{name_alias, record_id, user_alias, voter_alias, Action, ImportError, ImportEvent};

/// The files of a dump, in the order they are read.
pub const FILES: [&str; 7] = [
    "Posts.xml",
    "Comments.xml",
    "Votes.xml",
    "Users.xml",
    "Tags.xml",
    "Badges.xml",
    "PostLinks.xml",
];

/// How to read a dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// The source's name, part of every record id (default: the folder's name).
    pub source: String,
    /// Questions with any of these tags become ideas.
    pub as_idea: Vec<String>,
}

impl Options {
    /// Options for `dir` with its folder name as the source.
    pub fn for_dir(dir: &Path) -> Options {
        Options {
            source: source_name(dir),
            as_idea: Vec::new(),
        }
    }
}

/// The default source name of a dump folder: its last path component.
pub fn source_name(dir: &Path) -> String {
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dump".to_string())
}

/// Rows skipped for one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    /// How many.
    pub count: u64,
    /// The first few, as `File.xml line N` (and what is wrong, for malformed rows).
    pub examples: Vec<String>,
}

/// What a dump holds, ready to write.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The source name.
    pub source: String,
    /// The events, in time order (ties: questions, answers, comments, votes, accepts).
    pub events: Vec<ImportEvent>,
    /// Rows read per file; a missing file is absent.
    pub rows: BTreeMap<String, u64>,
    /// Files not in the folder.
    pub missing: Vec<String>,
    /// Rows not imported, by reason.
    pub skipped: BTreeMap<String, Skipped>,
}

impl Plan {
    fn skip(&mut self, reason: impl Into<String>, file: &str, line: u64, detail: Option<&str>) {
        let entry = self.skipped.entry(reason.into()).or_default();
        entry.count += 1;
        if entry.examples.len() < 10 {
            entry.examples.push(match detail {
                Some(d) => format!("{file} line {line}: {d}"),
                None => format!("{file} line {line}"),
            });
        }
    }

    /// Rows read in all files.
    pub fn total_rows(&self) -> u64 {
        self.rows.values().sum()
    }

    /// Rows skipped for any reason.
    pub fn total_skipped(&self) -> u64 {
        self.skipped.values().map(|s| s.count).sum()
    }
}

/// A post row's fields that the importer and the ground truth both use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRow {
    /// Id.
    pub id: u64,
    /// PostTypeId.
    pub kind: u8,
    /// ParentId (answers).
    pub parent: Option<u64>,
    /// AcceptedAnswerId (questions).
    pub accepted: Option<u64>,
    /// CreationDate, ms since the epoch.
    pub at: i64,
    /// The author's alias.
    pub alias: String,
}

/// Parses a dump date (`2011-10-11T19:42:20.713`, UTC) to milliseconds since the epoch.
pub fn parse_date(text: &str) -> Option<i64> {
    let time = humantime::parse_rfc3339_weak(text.trim()).ok()?;
    let ms = time.duration_since(UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

fn required<'a>(row: &'a Row, name: &str) -> Result<&'a str, String> {
    row.get(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| format!("no {name}"))
}

fn number(row: &Row, name: &str) -> Result<u64, String> {
    let text = required(row, name)?;
    text.trim()
        .parse()
        .map_err(|_| format!("{name} {text:?} is not a number"))
}

fn optional_number(row: &Row, name: &str) -> Result<Option<u64>, String> {
    match row.get(name).map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| format!("{name} {text:?} is not a number")),
    }
}

fn date(row: &Row) -> Result<i64, String> {
    let text = required(row, "CreationDate")?;
    parse_date(text).ok_or_else(|| format!("CreationDate {text:?} is not a date"))
}

/// The alias of a row's author: by user id, else by display name.
pub fn author_alias(row: &Row, id_attr: &str, name_attr: &str) -> String {
    match row.get(id_attr).map(str::trim).filter(|v| !v.is_empty()) {
        Some(id) => user_alias(id),
        None => name_alias(row.get(name_attr)),
    }
}

/// Reads the fields of a post row, or says what is wrong with it.
pub fn post_row(row: &Row) -> Result<PostRow, String> {
    Ok(PostRow {
        id: number(row, "Id")?,
        kind: u8::try_from(number(row, "PostTypeId")?).map_err(|_| "PostTypeId out of range")?,
        parent: optional_number(row, "ParentId")?,
        accepted: optional_number(row, "AcceptedAnswerId")?,
        at: date(row)?,
        alias: author_alias(row, "OwnerUserId", "OwnerDisplayName"),
    })
}

/// A comment row's fields: id, post, time, author alias.
pub fn comment_row(row: &Row) -> Result<(u64, u64, i64, String), String> {
    Ok((
        number(row, "Id")?,
        number(row, "PostId")?,
        date(row)?,
        author_alias(row, "UserId", "UserDisplayName"),
    ))
}

/// A vote row's fields: id, post, vote type, time.
pub fn vote_row(row: &Row) -> Result<(u64, u64, u64, i64), String> {
    Ok((
        number(row, "Id")?,
        number(row, "PostId")?,
        number(row, "VoteTypeId")?,
        date(row)?,
    ))
}

/// Opens a dump file; a missing one is noted in the plan.
fn open(dir: &Path, file: &str, plan: &mut Plan) -> Result<Option<Rows>, ImportError> {
    let rows = Rows::open(&dir.join(file))?;
    match rows {
        Some(_) => {
            plan.rows.insert(file.to_string(), 0);
        }
        None => plan.missing.push(file.to_string()),
    }
    Ok(rows)
}

/// Checks that `dir` is a folder holding at least one dump file.
pub fn check_dir(dir: &Path) -> Result<(), ImportError> {
    if !dir.is_dir() {
        return Err(ImportError::NoFolder(dir.to_path_buf()));
    }
    if !FILES.iter().any(|f| dir.join(f).exists()) {
        return Err(ImportError::Empty(dir.to_path_buf()));
    }
    Ok(())
}

/// Turns an HTML body into Markdown (plain text when the converter gives up).
pub fn markdown(html: &str) -> String {
    let converted = htmd::convert(html).unwrap_or_else(|_| html.to_string());
    let trimmed = converted.trim();
    clip(trimmed, MAX_BODY, "\n\n[cut short on import]")
}

/// Cuts `text` to at most `max` bytes on a character boundary, adding `mark` when it cuts.
fn clip(text: &str, max: usize, mark: &str) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max.saturating_sub(mark.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{mark}", &text[..end])
}

/// A post's title: one line, within the limit.
fn title(row: &Row) -> String {
    let one_line: String = row
        .get("Title")
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let clipped = clip(&one_line, MAX_TITLE, "…");
    if clipped.is_empty() {
        "(untitled)".to_string()
    } else {
        clipped
    }
}

/// A post's tags: `<a><b>` or `|a|b|`, lowercase, those a topic accepts.
pub fn tags(row: &Row) -> Vec<String> {
    let text = row.get("Tags").unwrap_or_default();
    let mut out: Vec<String> = text
        .split(['<', '>', '|'])
        .map(|t| t.trim().to_lowercase())
        .filter(|t| {
            !t.is_empty()
                && t.len() <= MAX_TAG
                && t.chars()
                    .all(|c| c.is_alphanumeric() || "-_.+#".contains(c))
        })
        .collect();
    out.dedup();
    out.truncate(MAX_TAGS);
    out
}

/// Why a vote type is not imported.
fn vote_skip_reason(vote_type: u64) -> String {
    let name = match vote_type {
        4 => "offensive",
        5 => "favourite",
        6 => "close",
        7 => "reopen",
        8 => "bounty start",
        9 => "bounty close",
        10 => "deletion",
        11 => "undeletion",
        12 => "spam",
        15 => "moderator review",
        16 => "approved edit",
        _ => "other",
    };
    format!("vote of type {vote_type} ({name}): only up and down votes are imported")
}

/// What the importer knows of an imported post.
struct Known {
    id: String,
    kind: Kind,
    at: i64,
    alias: String,
    parent: Option<u64>,
}

/// Reads a dump folder into a plan. Malformed rows are skipped and reported; a malformed file
/// is an error.
pub fn read(dir: &Path, options: &Options) -> Result<Plan, ImportError> {
    check_dir(dir)?;
    if options.source.trim().is_empty() {
        return Err(ImportError::BadOption("the source name is empty".into()));
    }
    let mut plan = Plan {
        source: options.source.clone(),
        ..Plan::default()
    };
    let as_idea: Vec<String> = options
        .as_idea
        .iter()
        .map(|t| t.trim().trim_start_matches('#').to_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let key_id = |key: &str| record_id(&options.source, key);

    // Posts: questions and ideas, then answers once every question is known.
    let mut posts: HashMap<u64, Known> = HashMap::new();
    let mut accepted: Vec<(u64, u64, u64)> = Vec::new(); // (question, answer, line)
    let mut answers: Vec<(PostRow, Row)> = Vec::new();
    if let Some(rows) = open(dir, "Posts.xml", &mut plan)? {
        for row in rows {
            let row = row?;
            *plan.rows.entry("Posts.xml".into()).or_default() += 1;
            let post = match post_row(&row) {
                Ok(p) => p,
                Err(why) => {
                    plan.skip("malformed row", "Posts.xml", row.line, Some(&why));
                    continue;
                }
            };
            match post.kind {
                1 => {
                    let tags = tags(&row);
                    let kind = if tags.iter().any(|t| as_idea.contains(t)) {
                        Kind::Idea
                    } else {
                        Kind::Question
                    };
                    if let Some(answer) = post.accepted {
                        accepted.push((post.id, answer, row.line));
                    }
                    let key = format!("post:{}", post.id);
                    let id = key_id(&key);
                    plan.events.push(ImportEvent {
                        key,
                        id: id.clone(),
                        at: post.at,
                        alias: post.alias.clone(),
                        action: Action::Contribute {
                            kind,
                            title: title(&row),
                            body: markdown(row.get("Body").unwrap_or_default()),
                            tags,
                            parent: None,
                        },
                    });
                    posts.insert(
                        post.id,
                        Known {
                            id,
                            kind,
                            at: post.at,
                            alias: post.alias,
                            parent: None,
                        },
                    );
                }
                2 => answers.push((post, row)),
                4 | 5 => plan.skip("tag wiki post: not imported", "Posts.xml", row.line, None),
                other => plan.skip(
                    format!("post of type {other}: not imported"),
                    "Posts.xml",
                    row.line,
                    None,
                ),
            }
        }
    }
    for (post, row) in answers {
        let Some(parent) = post
            .parent
            .and_then(|p| posts.get(&p).map(|k| (p, k.id.clone())))
        else {
            plan.skip(
                "answer to a question not in the dump",
                "Posts.xml",
                row.line,
                None,
            );
            continue;
        };
        let key = format!("post:{}", post.id);
        let id = key_id(&key);
        plan.events.push(ImportEvent {
            key,
            id: id.clone(),
            at: post.at,
            alias: post.alias.clone(),
            action: Action::Contribute {
                kind: Kind::Answer,
                title: String::new(),
                body: markdown(row.get("Body").unwrap_or_default()),
                tags: Vec::new(),
                parent: Some(parent.1),
            },
        });
        posts.insert(
            post.id,
            Known {
                id,
                kind: Kind::Answer,
                at: post.at,
                alias: post.alias,
                parent: Some(parent.0),
            },
        );
    }

    read_comments(dir, &mut plan, &posts, &key_id)?;
    let accept_dates = read_votes(dir, &mut plan, &posts, &key_id)?;

    // Accepts: the question's author accepts, once both posts exist.
    for (question, answer, line) in accepted {
        let (Some(q), Some(a)) = (posts.get(&question), posts.get(&answer)) else {
            plan.skip("accepted answer not in the dump", "Posts.xml", line, None);
            continue;
        };
        if a.kind != Kind::Answer || a.parent != Some(question) {
            plan.skip(
                "accepted answer is not an answer to the question",
                "Posts.xml",
                line,
                None,
            );
            continue;
        }
        if q.kind != Kind::Question {
            plan.skip(
                "accepted answer of an idea: ideas accept no answer",
                "Posts.xml",
                line,
                None,
            );
            continue;
        }
        let voted = accept_dates.get(&answer).copied().unwrap_or(a.at);
        plan.events.push(ImportEvent {
            key: format!("accept:{question}"),
            id: q.id.clone(),
            at: voted.max(a.at).max(q.at),
            alias: q.alias.clone(),
            action: Action::Accept {
                question: q.id.clone(),
                answer: a.id.clone(),
            },
        });
    }

    count_only(dir, &mut plan)?;
    plan.events
        .sort_by(|a, b| (a.at, rank(a), &a.key).cmp(&(b.at, rank(b), &b.key)));
    Ok(plan)
}

/// Tie order at equal times: posts before what refers to them.
fn rank(event: &ImportEvent) -> u8 {
    match &event.action {
        Action::Contribute { kind, .. } => match kind {
            Kind::Question | Kind::Idea | Kind::Review => 0,
            Kind::Answer => 1,
            Kind::Comment => 2,
        },
        Action::Endorse { .. } => 3,
        Action::Accept { .. } => 4,
    }
}

fn read_comments(
    dir: &Path,
    plan: &mut Plan,
    posts: &HashMap<u64, Known>,
    key_id: &dyn Fn(&str) -> String,
) -> Result<(), ImportError> {
    let Some(rows) = open(dir, "Comments.xml", plan)? else {
        return Ok(());
    };
    for row in rows {
        let row = row?;
        *plan.rows.entry("Comments.xml".into()).or_default() += 1;
        let (id, post, at, alias) = match comment_row(&row) {
            Ok(c) => c,
            Err(why) => {
                plan.skip("malformed row", "Comments.xml", row.line, Some(&why));
                continue;
            }
        };
        let Some(parent) = posts.get(&post) else {
            plan.skip(
                "comment on a post not in the dump",
                "Comments.xml",
                row.line,
                None,
            );
            continue;
        };
        let text = row.get("Text").unwrap_or_default().trim();
        let key = format!("comment:{id}");
        plan.events.push(ImportEvent {
            id: key_id(&key),
            key,
            at,
            alias,
            action: Action::Contribute {
                kind: Kind::Comment,
                title: String::new(),
                body: clip(text, MAX_BODY, "\n\n[cut short on import]"),
                tags: Vec::new(),
                parent: Some(parent.id.clone()),
            },
        });
    }
    Ok(())
}

/// Reads the votes; returns the dates of accept votes by answer.
fn read_votes(
    dir: &Path,
    plan: &mut Plan,
    posts: &HashMap<u64, Known>,
    key_id: &dyn Fn(&str) -> String,
) -> Result<HashMap<u64, i64>, ImportError> {
    let mut accept_dates = HashMap::new();
    let Some(rows) = open(dir, "Votes.xml", plan)? else {
        return Ok(accept_dates);
    };
    for row in rows {
        let row = row?;
        *plan.rows.entry("Votes.xml".into()).or_default() += 1;
        let (id, post, vote_type, at) = match vote_row(&row) {
            Ok(v) => v,
            Err(why) => {
                plan.skip("malformed row", "Votes.xml", row.line, Some(&why));
                continue;
            }
        };
        let value = match vote_type {
            2 => 1,
            3 => -1,
            1 => {
                accept_dates.insert(post, at);
                plan.skip(
                    "accept vote: the accept comes from the question's AcceptedAnswerId",
                    "Votes.xml",
                    row.line,
                    None,
                );
                continue;
            }
            other => {
                plan.skip(vote_skip_reason(other), "Votes.xml", row.line, None);
                continue;
            }
        };
        let Some(target) = posts.get(&post) else {
            plan.skip(
                "vote on a post not in the dump",
                "Votes.xml",
                row.line,
                None,
            );
            continue;
        };
        let key = format!("vote:{id}");
        plan.events.push(ImportEvent {
            id: key_id(&key),
            key,
            at,
            alias: voter_alias(&id.to_string()),
            action: Action::Endorse {
                contribution: target.id.clone(),
                value,
            },
        });
    }
    Ok(accept_dates)
}

/// Counts the rows of the files that are not imported as records.
fn count_only(dir: &Path, plan: &mut Plan) -> Result<(), ImportError> {
    for (file, reason) in [
        ("Users.xml", None),
        ("Tags.xml", None),
        ("Badges.xml", Some("badge: not imported")),
        ("PostLinks.xml", Some("post link: not imported")),
    ] {
        let Some(rows) = open(dir, file, plan)? else {
            continue;
        };
        for row in rows {
            let row = row?;
            *plan.rows.entry(file.into()).or_default() += 1;
            if let Some(reason) = reason {
                plan.skip(reason, file, row.line, None);
            }
        }
    }
    Ok(())
}
