//! `catchment`: the command line of a Catchment node.
//!
//! Every command opens the local store directly (the node's API arrives with the network).
//! Reads print for people by default and JSON with `--json`; writes print what they did only
//! after the store is flushed, so what is confirmed is on disk.

mod render;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use catchment_crdt::schema::{Draft, Edit, Kind, Profile, Role};
use catchment_crdt::TopicId;
use catchment_node::query::FeedFilter;
use catchment_node::{Engine, Home, SledBackend};
use clap::{Args, Parser, Subcommand};

/// Catchment: a peer-to-peer, local-first catchment for micro-contributions.
#[derive(Debug, Parser)]
#[command(name = "catchment", version, about, propagate_version = true)]
struct Cli {
    /// Data directory (default: $CATCHMENT_HOME, else the platform's data directory).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the data directory and this device's member key (never overwrites a key).
    Init {
        /// Your display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Show your member id and display name.
    Whoami,
    /// Show a member's profile in a topic, or set your own with `profile set`.
    #[command(args_conflicts_with_subcommands = true)]
    Profile {
        #[command(subcommand)]
        action: Option<ProfileAction>,
        /// Member: "me" (default), a key prefix, or a display name.
        member: Option<String>,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Create, list and inspect topics.
    Topic {
        #[command(subcommand)]
        action: TopicAction,
    },
    /// Post a contribution: idea, question, answer, review or comment.
    Post(PostArgs),
    /// Edit one of your contributions.
    Edit {
        /// Contribution id (or a unique prefix).
        id: String,
        /// New title.
        #[arg(long)]
        title: Option<String>,
        /// New body (Markdown; "-" reads standard input).
        #[arg(long)]
        body: Option<String>,
        /// New tags, comma-separated.
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Retract one of your contributions: hidden everywhere, history kept.
    Retract {
        /// Contribution id (or a unique prefix).
        id: String,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Endorse a contribution (+1), or with --down (-1), or withdraw with --withdraw.
    Endorse {
        /// Contribution id (or a unique prefix).
        id: String,
        /// A -1 instead of a +1.
        #[arg(long, conflicts_with = "withdraw")]
        down: bool,
        /// Withdraw your endorsement.
        #[arg(long)]
        withdraw: bool,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Thank a member, with a note, optionally for a contribution.
    Kudos {
        /// Member: a key prefix or a display name.
        member: String,
        /// What the thanks are for.
        #[arg(long)]
        note: String,
        /// The contribution the thanks are for.
        #[arg(long = "for", value_name = "ID")]
        about: Option<String>,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Accept an answer to your question.
    Accept {
        /// The answer's id (or a unique prefix).
        answer: String,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Open and list asks: challenges with a deadline.
    Ask {
        #[command(subcommand)]
        action: AskAction,
    },
    /// Hide a contribution (admins), with a reason shown to admins; --undo shows it again.
    Hide {
        /// Contribution id (or a unique prefix).
        id: String,
        /// Why.
        #[arg(long, required_unless_present = "undo")]
        reason: Option<String>,
        /// Show it again.
        #[arg(long, conflicts_with = "reason")]
        undo: bool,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// The topic's contributions, newest first.
    Feed {
        /// Only this kind.
        #[arg(long)]
        kind: Option<Kind>,
        /// Only with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only for this ask (id).
        #[arg(long)]
        ask: Option<String>,
        /// Only by this member.
        #[arg(long)]
        author: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// A contribution with its thread: answers (accepted first, then by score), comments.
    Show {
        /// Contribution id (or a unique prefix).
        id: String,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Recognition in the topic, ranked, with the score's weights.
    Leaderboard {
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Members of a topic and their roles.
    Member {
        #[command(subcommand)]
        action: MemberAction,
    },
}

#[derive(Debug, Args)]
struct TopicArg {
    /// Topic: a unique id prefix or its name (default: the only topic).
    #[arg(long, short = 't')]
    topic: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ProfileAction {
    /// Set your display name and about line (in every topic you are in).
    Set {
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// A line about you.
        #[arg(long)]
        about: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum TopicAction {
    /// Create a topic; you are its admin.
    Create {
        /// Its name, e.g. "Platform team ideas".
        name: String,
    },
    /// The topics on this node.
    List,
    /// A topic's charter: name, members, asks, weights.
    Show {
        /// Topic: a unique id prefix or its name (default: the only topic).
        topic: Option<String>,
    },
    /// Show or set (admins) the score's weights, e.g. --set kudos=5 --set answer=4.
    Weights {
        /// NAME=VALUE, for idea question answer review comment endorsement kudos accepted.
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
        #[command(flatten)]
        topic: TopicArg,
    },
}

#[derive(Debug, Args)]
struct PostArgs {
    /// idea, question, answer, review or comment.
    kind: Kind,
    /// Title (ideas, questions and reviews need one).
    #[arg(long, default_value = "")]
    title: String,
    /// Body in Markdown ("-" reads standard input).
    #[arg(long, default_value = "")]
    body: String,
    /// Tags, comma-separated.
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// What it replies to (answers and comments need one).
    #[arg(long)]
    parent: Option<String>,
    /// The ask it responds to.
    #[arg(long)]
    ask: Option<String>,
    #[command(flatten)]
    topic: TopicArg,
}

#[derive(Debug, Subcommand)]
enum AskAction {
    /// Open an ask (admins).
    Create {
        /// Title, e.g. "Ideas to cut build time".
        #[arg(long)]
        title: String,
        /// Details in Markdown.
        #[arg(long, default_value = "")]
        body: String,
        /// When it closes: a duration ("7d", "36h") or a date ("2026-12-31", "2026-12-31 17:00").
        #[arg(long)]
        deadline: String,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// The topic's asks.
    List {
        #[command(flatten)]
        topic: TopicArg,
    },
}

#[derive(Debug, Subcommand)]
enum MemberAction {
    /// Members and their standing.
    List {
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Change a member's role (admins).
    Role {
        /// Member: a key prefix or a display name.
        member: String,
        /// member or admin.
        role: Role,
        #[command(flatten)]
        topic: TopicArg,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The store's own log lines would double our one-line errors; CATCHMENT_LOG overrides.
    let filter = tracing_subscriber::EnvFilter::try_from_env("CATCHMENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sled=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let chain: Vec<String> = e.chain().map(|c| c.to_string()).collect();
            eprintln!("error: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}

struct Ctx {
    home: Home,
    json: bool,
}

impl Ctx {
    fn engine(&self) -> Result<Engine> {
        let backend = SledBackend::open(&self.home.store_dir())?;
        Ok(Engine::open(Box::new(backend), self.home.keypair()?))
    }

    fn print<T: serde::Serialize>(
        &self,
        value: &T,
        human: impl FnOnce(&T) -> String,
    ) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            print!("{}", human(value));
        }
        Ok(())
    }
}

fn read_body(body: String) -> Result<String> {
    if body == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the body from standard input")?;
        return Ok(text);
    }
    Ok(body)
}

fn topic(engine: &mut Engine, arg: &TopicArg) -> Result<TopicId> {
    Ok(engine.resolve_topic(arg.topic.as_deref())?)
}

fn run(cli: Cli) -> Result<()> {
    let dir = Home::resolve(cli.home.clone())?;
    if let Command::Init { name } = &cli.command {
        let (home, created) = Home::init(&dir, name.as_deref())?;
        let me = home.keypair()?.member_id();
        if created {
            println!("Created a member key in {}", home.dir().display());
        } else {
            println!("Kept the existing member key in {}", home.dir().display());
        }
        println!("member {me}");
        return Ok(());
    }
    let ctx = Ctx {
        home: Home::open(&dir)?,
        json: cli.json,
    };

    match cli.command {
        Command::Init { .. } => unreachable!("handled above"),
        Command::Whoami => {
            let me = ctx.home.keypair()?.member_id();
            let config = ctx.home.config()?;
            let value = serde_json::json!({ "member": me.to_hex(), "short": me.short(), "name": config.name, "about": config.about });
            ctx.print(&value, |_| {
                let name = if config.name.is_empty() {
                    "(no name: set one with `catchment profile set --name`)".to_string()
                } else {
                    config.name.clone()
                };
                format!("{name} ({})\nmember {}\n", me.short(), me.to_hex())
            })
        }
        Command::Profile {
            action: Some(ProfileAction::Set { name, about }),
            ..
        } => {
            if name.is_none() && about.is_none() {
                bail!("nothing to set: give --name or --about");
            }
            let mut config = ctx.home.config()?;
            if let Some(name) = name {
                config.name = name.trim().to_string();
            }
            if let Some(about) = about {
                config.about = about.trim().to_string();
            }
            let mut engine = ctx.engine()?;
            let topics = engine.set_profile(&Profile {
                name: config.name.clone(),
                about: config.about.clone(),
            })?;
            engine.commit()?;
            ctx.home.save_config(&config)?;
            println!(
                "Profile set in {topics} topic(s): {}",
                if config.name.is_empty() {
                    "(no name)"
                } else {
                    &config.name
                }
            );
            Ok(())
        }
        Command::Profile {
            action: None,
            member,
            topic: t,
        } => {
            let mut engine = ctx.engine()?;
            let topic = topic(&mut engine, &t)?;
            let member = engine.resolve_member(&topic, member.as_deref().unwrap_or("me"))?;
            let view = engine.profile(&topic, &member)?;
            ctx.print(&view, render::profile)
        }
        Command::Topic { action } => topic_command(&ctx, action),
        Command::Post(args) => {
            let mut engine = ctx.engine()?;
            let topic = topic(&mut engine, &args.topic)?;
            let parent = match &args.parent {
                Some(p) => Some(engine.resolve_id(&topic, p)?),
                None => None,
            };
            let draft = Draft {
                title: args.title.trim().to_string(),
                body: read_body(args.body)?,
                tags: args.tags,
                parent,
                ask: args.ask,
                alias: None,
            };
            let id = engine.post(&topic, args.kind, draft)?;
            engine.commit()?;
            ctx.print(&serde_json::json!({ "id": id, "kind": args.kind }), |_| {
                format!("Posted {} {id}\n", args.kind)
            })
        }
        Command::Edit {
            id,
            title,
            body,
            tags,
            topic: t,
        } => {
            let mut engine = ctx.engine()?;
            let topic = topic(&mut engine, &t)?;
            let id = engine.resolve_id(&topic, &id)?;
            let body = body.map(read_body).transpose()?;
            engine.edit(&topic, &id, Edit { title, body, tags })?;
            engine.commit()?;
            println!("Edited {id}");
            Ok(())
        }
        Command::Retract { id, topic: t } => {
            let mut engine = ctx.engine()?;
            let topic = topic(&mut engine, &t)?;
            let id = engine.resolve_id(&topic, &id)?;
            engine.retract(&topic, &id)?;
            engine.commit()?;
            println!("Retracted {id}: hidden everywhere, its history kept");
            Ok(())
        }
        Command::Endorse {
            id,
            down,
            withdraw,
            topic: t,
        } => {
            let mut engine = ctx.engine()?;
            let topic = topic(&mut engine, &t)?;
            let id = engine.resolve_id(&topic, &id)?;
            let value = if withdraw {
                0
            } else if down {
                -1
            } else {
                1
            };
            engine.endorse(&topic, &id, value)?;
            engine.commit()?;
            match value {
                0 => println!("Withdrew your endorsement of {id}"),
                1 => println!("Endorsed {id} (+1)"),
                _ => println!("Endorsed {id} (-1)"),
            }
            Ok(())
        }
        Command::Kudos {
            member,
            note,
            about,
            topic: t,
        } => {
            let mut engine = ctx.engine()?;
            let topic = topic(&mut engine, &t)?;
            let to = engine.resolve_member(&topic, &member)?;
            let about = about.map(|a| engine.resolve_id(&topic, &a)).transpose()?;
            engine.kudos(&topic, &to, note.trim(), about.as_deref())?;
            engine.commit()?;
            println!("Kudos to {}", engine.who(&topic, &to)?);
            Ok(())
        }
        Command::Accept { answer, topic: t } => {
            let mut engine = ctx.engine()?;
            let topic = topic(&mut engine, &t)?;
            let answer = engine.resolve_id(&topic, &answer)?;
            engine.accept(&topic, &answer)?;
            engine.commit()?;
            println!("Accepted answer {answer}");
            Ok(())
        }
        Command::Ask { action } => ask_command(&ctx, action),
        Command::Hide {
            id,
            reason,
            undo,
            topic: t,
        } => {
            let mut engine = ctx.engine()?;
            let topic = topic(&mut engine, &t)?;
            let id = engine.resolve_id(&topic, &id)?;
            let reason = if undo { None } else { reason };
            let id = engine.hide(&topic, &id, reason.as_deref())?;
            engine.commit()?;
            if undo {
                println!("Shown again: {id}");
            } else {
                println!("Hidden: {id}");
            }
            Ok(())
        }
        Command::Feed {
            kind,
            tag,
            ask,
            author,
            limit,
            topic: t,
        } => {
            let mut engine = ctx.engine()?;
            let topic = topic(&mut engine, &t)?;
            let author = author
                .map(|a| engine.resolve_member(&topic, &a))
                .transpose()?;
            let filter = FeedFilter {
                kind,
                tag,
                ask,
                author,
                limit,
            };
            let items = engine.feed(&topic, &filter)?;
            ctx.print(&items, |items| render::feed(items))
        }
        Command::Show { id, topic: t } => {
            let mut engine = ctx.engine()?;
            let topic = topic(&mut engine, &t)?;
            let id = engine.resolve_id(&topic, &id)?;
            let thread = engine.thread(&topic, &id)?;
            ctx.print(&thread, render::thread)
        }
        Command::Leaderboard { topic: t } => {
            let mut engine = ctx.engine()?;
            let topic = topic(&mut engine, &t)?;
            let board = engine.leaderboard(&topic)?;
            ctx.print(&board, render::leaderboard)
        }
        Command::Member { action } => member_command(&ctx, action),
    }
}

fn topic_command(ctx: &Ctx, action: TopicAction) -> Result<()> {
    let mut engine = ctx.engine()?;
    match action {
        TopicAction::Create { name } => {
            let config = ctx.home.config()?;
            let profile = Profile {
                name: config.name,
                about: config.about,
            };
            let topic = engine.create_topic(&name, &profile)?;
            engine.commit()?;
            ctx.print(
                &serde_json::json!({ "id": topic.to_hex(), "name": name.trim() }),
                |_| format!("Created topic {:?}\nid {}\n", name.trim(), topic.to_hex()),
            )
        }
        TopicAction::List => {
            let topics = engine.topics()?;
            ctx.print(&topics, |t| render::topics(t))
        }
        TopicAction::Show { topic } => {
            let id = engine.resolve_topic(topic.as_deref())?;
            let charter = engine.charter(&id)?;
            let members = engine.members(&id)?;
            let asks = engine.asks(&id)?;
            let counts = engine.counts(&id)?;
            let value = serde_json::json!({
                "id": id.to_hex(),
                "name": charter.name,
                "created": charter.created,
                "weights": charter.weights,
                "members": members.iter().map(|(w, s)| serde_json::json!({ "member": w, "status": s })).collect::<Vec<_>>(),
                "asks": asks,
                "counts": counts,
            });
            ctx.print(&value, |_| {
                render::topic(&id, &charter, &members, &asks, &counts)
            })
        }
        TopicAction::Weights { set, topic: t } => {
            let id = topic(&mut engine, &t)?;
            if !set.is_empty() {
                let mut weights = engine.charter(&id)?.weights;
                for pair in &set {
                    let (name, value) = pair
                        .split_once('=')
                        .ok_or_else(|| anyhow!("--set takes NAME=VALUE, got {pair:?}"))?;
                    let value: i64 = value.trim().parse().map_err(|_| {
                        anyhow!("weight {name:?} must be a whole number, got {value:?}")
                    })?;
                    if !weights.set(name.trim(), value) {
                        bail!(
                            "no weight named {name:?}: expected one of {}",
                            catchment_crdt::Weights::NAMES.join(", ")
                        );
                    }
                }
                engine.set_weights(&id, &weights)?;
                engine.commit()?;
            }
            let weights = engine.charter(&id)?.weights;
            ctx.print(&weights, render::weights)
        }
    }
}

fn parse_deadline(text: &str, now: i64) -> Result<i64> {
    let text = text.trim();
    if let Ok(duration) = humantime::parse_duration(text) {
        return Ok(now + duration.as_millis() as i64);
    }
    let stamp = if text.len() == 10 {
        format!("{text} 23:59:59")
    } else {
        text.to_string()
    };
    let time = humantime::parse_rfc3339_weak(&stamp)
        .map_err(|_| anyhow!("deadline {text:?} is neither a duration (7d, 36h) nor a date (2026-12-31, 2026-12-31 17:00) in UTC"))?;
    Ok(time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0))
}

fn ask_command(ctx: &Ctx, action: AskAction) -> Result<()> {
    let mut engine = ctx.engine()?;
    match action {
        AskAction::Create {
            title,
            body,
            deadline,
            topic: t,
        } => {
            let id = topic(&mut engine, &t)?;
            let deadline = parse_deadline(&deadline, engine.now())?;
            let ask = engine.create_ask(&id, title.trim(), &read_body(body)?, deadline)?;
            engine.commit()?;
            ctx.print(
                &serde_json::json!({ "id": ask, "deadline": deadline }),
                |_| format!("Opened ask {ask}, closing {}\n", render::time(deadline)),
            )
        }
        AskAction::List { topic: t } => {
            let id = topic(&mut engine, &t)?;
            let asks = engine.asks(&id)?;
            let now = engine.now();
            ctx.print(&asks, |asks| render::asks(asks, now))
        }
    }
}

fn member_command(ctx: &Ctx, action: MemberAction) -> Result<()> {
    let mut engine = ctx.engine()?;
    match action {
        MemberAction::List { topic: t } => {
            let id = topic(&mut engine, &t)?;
            let members = engine.members(&id)?;
            let value: Vec<_> = members
                .iter()
                .map(|(w, s)| serde_json::json!({ "member": w, "status": s }))
                .collect();
            ctx.print(&value, |_| render::members(&members))
        }
        MemberAction::Role {
            member,
            role,
            topic: t,
        } => {
            let id = topic(&mut engine, &t)?;
            let member = engine.resolve_member(&id, &member)?;
            engine.set_role(&id, &member, role)?;
            engine.commit()?;
            println!("{} is now {role}", engine.who(&id, &member)?);
            Ok(())
        }
    }
}
