//! The kill test's writer: posts contributions into a home's only topic until it is killed.
//!
//! Usage: `kill_writer HOME ROUND SEED`. It opens the home (initialising it and creating a
//! topic on first run), then loops: a group of one to eight writes (mostly new contributions
//! of varied kinds and sizes, some replies, some title edits), then `Engine::commit`, then one
//! line per write of the group on stdout, flushed:
//!
//! - `confirmed ID BODY_BYTES` for a new contribution;
//! - `edited ID ROUND SEQ` for an edit that set the title to `edited ROUND SEQ`.
//!
//! A line is printed only after the commit that made its write durable, so every printed line
//! is a promise the store must keep whatever happens next. `ready` is printed once the store is
//! open and the topic exists. It stops by itself after 20 000 writes or 60 seconds.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use catchment_crdt::schema::{Draft, Edit, Kind, Profile};
use catchment_node::{EngineError, Home, SledBackend};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const MAX_WRITES: usize = 20_000;
const MAX_TIME: Duration = Duration::from_secs(60);
const TAGS: [&str; 6] = ["rust", "storage", "crash", "sled", "design", "ux"];

/// One write of a group, remembered until its commit.
enum Done {
    Posted { id: String, kind: Kind, body: usize },
    Edited { id: String, seq: u64 },
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(home), Some(round), Some(seed)) = (args.next(), args.next(), args.next()) else {
        bail!("usage: kill_writer HOME ROUND SEED");
    };
    let home = PathBuf::from(home);
    let round: u64 = round.parse().context("ROUND must be a number")?;
    let seed: u64 = seed.parse().context("SEED must be a number")?;
    let mut rng = StdRng::seed_from_u64(seed);

    let (home, _) = Home::init(&home, None).context("opening the home")?;
    let backend = SledBackend::open(&home.store_dir()).context("opening the store")?;
    let mut engine = catchment_node::Engine::open(Box::new(backend), home.keypair()?);
    let topic = match engine.resolve_topic(None) {
        Ok(topic) => topic,
        Err(EngineError::NoTopic) => {
            let profile = Profile {
                name: "Kill Writer".into(),
                about: "writes until killed".into(),
            };
            let topic = engine.create_topic("Crash safety", &profile)?;
            engine.commit()?;
            topic
        }
        Err(e) => return Err(e).context("finding the topic"),
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(out, "ready")?;
    out.flush()?;

    // Contributions confirmed in this run, with their kinds: parents for replies and targets
    // for edits.
    let mut mine: Vec<(String, Kind)> = Vec::new();
    let started = Instant::now();
    let mut writes = 0usize;
    let mut seq = 0u64;
    while writes < MAX_WRITES && started.elapsed() < MAX_TIME {
        let group = if rng.gen_bool(0.7) {
            1
        } else {
            rng.gen_range(2..=8)
        };
        let mut done = Vec::with_capacity(group);
        for _ in 0..group {
            if !mine.is_empty() && rng.gen_bool(0.1) {
                let (id, _) = &mine[rng.gen_range(0..mine.len())];
                seq += 1;
                let edit = Edit {
                    title: Some(format!("edited {round} {seq}")),
                    body: None,
                    tags: None,
                };
                engine.edit(&topic, id, edit)?;
                done.push(Done::Edited {
                    id: id.clone(),
                    seq,
                });
            } else {
                let (kind, draft) = draft(&mut rng, round, writes, &mine);
                let body = draft.body.len();
                let id = engine.post(&topic, kind, draft)?;
                done.push(Done::Posted { id, kind, body });
            }
            writes += 1;
        }
        engine.commit()?;
        for d in done {
            match d {
                Done::Posted { id, kind, body } => {
                    writeln!(out, "confirmed {id} {body}")?;
                    mine.push((id, kind));
                }
                Done::Edited { id, seq } => writeln!(out, "edited {id} {round} {seq}")?,
            }
        }
        out.flush()?;
    }
    Ok(())
}

/// A new contribution: mostly ideas and questions, some reviews, comments and answers, with
/// bodies from empty to near the size limit.
fn draft(rng: &mut StdRng, round: u64, n: usize, mine: &[(String, Kind)]) -> (Kind, Draft) {
    let questions: Vec<&String> = mine
        .iter()
        .filter(|(_, k)| *k == Kind::Question)
        .map(|(id, _)| id)
        .collect();
    let roll = rng.gen_range(0..100);
    let (kind, parent) = if roll < 10 && !mine.is_empty() {
        (
            Kind::Comment,
            Some(mine[rng.gen_range(0..mine.len())].0.clone()),
        )
    } else if roll < 20 && !questions.is_empty() {
        (
            Kind::Answer,
            Some(questions[rng.gen_range(0..questions.len())].clone()),
        )
    } else if roll < 30 {
        (Kind::Review, None)
    } else if roll < 50 {
        (Kind::Question, None)
    } else {
        (Kind::Idea, None)
    };
    let size = match rng.gen_range(0..100) {
        0..=49 => rng.gen_range(0..200),
        50..=84 => rng.gen_range(200..4_000),
        85..=97 => rng.gen_range(4_000..20_000),
        _ => rng.gen_range(20_000..60_000),
    };
    let mut body = text(rng, size);
    if parent.is_some() && body.trim().is_empty() {
        body = format!("reply {round}.{n}");
    }
    let title_len = rng.gen_range(0..250);
    let title = format!(
        "post {round}.{n} {}",
        text(rng, title_len).replace('\n', " ")
    );
    let tags = (0..rng.gen_range(0..=3))
        .map(|_| TAGS[rng.gen_range(0..TAGS.len())].to_string())
        .collect();
    (
        kind,
        Draft {
            title: title.trim().to_string(),
            body,
            tags,
            parent,
            ..Draft::default()
        },
    )
}

/// `len` bytes of lowercase words, spaces and the odd newline.
fn text(rng: &mut StdRng, len: usize) -> String {
    let mut s = String::with_capacity(len);
    while s.len() < len {
        let c = match rng.gen_range(0..40) {
            0..=5 => ' ',
            6 => '\n',
            k => (b'a' + (k - 7) % 26) as char,
        };
        s.push(c);
    }
    s
}
