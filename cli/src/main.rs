//! `catchment`: the command line of a Catchment node.
//!
//! Every command goes through the running node's local API when `catchment up` runs for the
//! data directory, and opens the store directly otherwise (see `client.rs`). Reads print for
//! people by default and JSON with `--json`; writes print what they did only after the store
//! is flushed, so what is confirmed is on disk.

mod client;
mod demo;
mod import;
mod render;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use catchment_crdt::schema::{Kind, Role};
use catchment_node::ops::Request;
use catchment_node::runtime::{NetRequest, NodeConfig};
use catchment_node::Home;
use clap::{Args, Parser, Subcommand};
use client::Client;

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
    /// Three local nodes replay a real community's history with one away for part of it,
    /// check they agree with the source, and keep node 1 running (no set-up needed).
    Demo(demo::DemoArgs),
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
    /// Run the node in the foreground: network, sync and the local API (Ctrl-C stops it).
    Up(UpArgs),
    /// Open the running node's web UI in the default browser, logged in (prints the URL too).
    Open {
        /// Print the one-time URL without starting a browser.
        #[arg(long)]
        no_browser: bool,
    },
    /// Per topic: the peers, when each was last in sync, and whether our heads equal theirs.
    Status,
    /// Connected and remembered peers, and this node's addresses.
    Peers,
    /// Drop every connection and stop dialling (on), or reconnect (off).
    Offline {
        /// on or off.
        switch: OnOff,
    },
    /// Members of a topic and their roles.
    Member {
        #[command(subcommand)]
        action: MemberAction,
    },
    /// Create, list and revoke invites to a topic.
    Invite {
        #[command(subcommand)]
        action: InviteAction,
    },
    /// Join a topic with an invite; works with nobody else online.
    Join {
        /// The invite string (catchment1...; "-" reads standard input).
        invite: String,
    },
    /// Import an existing community (admins): `import stackexchange DIR --topic T`.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Imported authors' aliases: list them, link one to a member (admins), unlink it.
    Alias {
        #[command(subcommand)]
        action: AliasAction,
    },
}

#[derive(Debug, Subcommand)]
enum ImportSource {
    /// A Stack Exchange data dump folder (Posts.xml, Comments.xml, Votes.xml, ...).
    Stackexchange {
        /// The dump folder.
        dir: PathBuf,
        /// The source's name, which makes re-imports add nothing twice (default: the folder's
        /// name).
        #[arg(long)]
        source: Option<String>,
        /// Questions with any of these tags become ideas (comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "TAG,...")]
        as_idea: Vec<String>,
        #[command(flatten)]
        topic: TopicArg,
    },
}

#[derive(Debug, Subcommand)]
enum AliasAction {
    /// Imported authors, their contributions, and the members they are linked to.
    List {
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Link an imported author's alias to a member (admins): its record follows the member.
    Link {
        /// The alias, e.g. user12.
        alias: String,
        /// Member: a key prefix or a display name.
        member: String,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Unlink an alias (admins): its records count for the alias again.
    Unlink {
        /// The alias.
        alias: String,
        #[command(flatten)]
        topic: TopicArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
struct UpArgs {
    /// Swarm listen address (repeatable), e.g. /ip4/127.0.0.1/tcp/4001.
    #[arg(long = "listen", value_name = "MULTIADDR")]
    listen: Vec<String>,
    /// The local API's port on 127.0.0.1 (default: any free port).
    #[arg(long, default_value_t = 0)]
    api_port: u16,
    /// Do not look for peers on the LAN with mDNS.
    #[arg(long)]
    no_mdns: bool,
    /// An address to dial at start (repeatable).
    #[arg(long = "dial", value_name = "MULTIADDR")]
    dial: Vec<String>,
    /// Seconds between anti-entropy rounds with each peer.
    #[arg(long, default_value_t = 30)]
    sync_interval: u64,
    /// Run as an always-on seed: relay for others, with a small server's limits.
    #[arg(long)]
    seed: bool,
    /// Offer the relay service to peers behind NAT (always on with --seed).
    #[arg(long)]
    relay: bool,
    /// An address where others reach this node that it cannot see itself, e.g. a server's
    /// public /ip4/203.0.113.7/tcp/4001 behind a port forward (repeatable).
    #[arg(long = "external", value_name = "MULTIADDR")]
    external: Vec<String>,
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
    /// Remove a member (admins): what they wrote so far stays, anything later is refused.
    Remove {
        /// Member: a key prefix or a display name.
        member: String,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Admissions waiting for an admin's decision (an invite over its limit, or revoked).
    Pending {
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Admit a member whose admission waits for a decision (admins).
    Admit {
        /// Member: a key prefix or a display name.
        member: String,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Refuse a member whose admission waits for a decision (admins).
    Refuse {
        /// Member: a key prefix or a display name.
        member: String,
        #[command(flatten)]
        topic: TopicArg,
    },
}

#[derive(Debug, Subcommand)]
enum InviteAction {
    /// Create an invite (admins): prints the invite string and its QR code.
    Create {
        /// The role it gives: member or admin.
        #[arg(long, default_value = "member")]
        role: Role,
        /// When it expires: a duration ("7d", "36h"), a date ("2026-12-31"), or "never".
        #[arg(long, default_value = "7d")]
        expires: String,
        /// How many members it admits (default: no limit); later ones wait for an admin.
        #[arg(long)]
        uses: Option<u32>,
        #[command(flatten)]
        topic: TopicArg,
    },
    /// The invites created on this node, with how many members used each.
    List {
        #[command(flatten)]
        topic: TopicArg,
    },
    /// Revoke an invite (admins); members already admitted with it stay.
    Revoke {
        /// Invite id (or a unique prefix), as `invite list` shows it.
        invite: String,
        #[command(flatten)]
        topic: TopicArg,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The store's own log lines would double our one-line errors; CATCHMENT_LOG overrides.
    // A running node says what a person running it wants to see (listening, peers, sync).
    let default = if matches!(cli.command, Command::Up(_)) {
        "warn,catchment_node=info,sled=off,libp2p_kad=error"
    } else {
        "warn,sled=off"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CATCHMENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
    let time = humantime::parse_rfc3339_weak(&stamp).map_err(|_| {
        anyhow!("deadline {text:?} is neither a duration (7d, 36h) nor a date (2026-12-31, 2026-12-31 17:00) in UTC")
    })?;
    Ok(time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0))
}

fn parse_weights(set: &[String]) -> Result<Vec<(String, i64)>> {
    set.iter()
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| anyhow!("--set takes NAME=VALUE, got {pair:?}"))?;
            let value: i64 = value
                .trim()
                .parse()
                .map_err(|_| anyhow!("weight {name:?} must be a whole number, got {value:?}"))?;
            Ok((name.trim().to_string(), value))
        })
        .collect()
}

/// Turns the command line into a request.
fn request(command: Command) -> Result<Request> {
    Ok(match command {
        Command::Init { .. }
        | Command::Demo(_)
        | Command::Up(_)
        | Command::Open { .. }
        | Command::Status
        | Command::Peers
        | Command::Offline { .. } => {
            unreachable!("handled in run")
        }
        Command::Whoami => Request::Whoami,
        Command::Profile {
            action: Some(ProfileAction::Set { name, about }),
            ..
        } => Request::SetProfile { name, about },
        Command::Profile {
            action: None,
            member,
            topic,
        } => Request::Profile {
            topic: topic.topic,
            member,
        },
        Command::Topic { action } => match action {
            TopicAction::Create { name } => Request::TopicCreate { name },
            TopicAction::List => Request::TopicList,
            TopicAction::Show { topic } => Request::TopicShow { topic },
            TopicAction::Weights { set, topic } => Request::Weights {
                topic: topic.topic,
                set: parse_weights(&set)?,
            },
        },
        Command::Post(args) => Request::Post {
            topic: args.topic.topic,
            kind: args.kind,
            title: args.title,
            body: read_body(args.body)?,
            tags: args.tags,
            parent: args.parent,
            ask: args.ask,
        },
        Command::Edit {
            id,
            title,
            body,
            tags,
            topic,
        } => Request::Edit {
            topic: topic.topic,
            id,
            title,
            body: body.map(read_body).transpose()?,
            tags,
        },
        Command::Retract { id, topic } => Request::Retract {
            topic: topic.topic,
            id,
        },
        Command::Endorse {
            id,
            down,
            withdraw,
            topic,
        } => {
            let value = if withdraw {
                0
            } else if down {
                -1
            } else {
                1
            };
            Request::Endorse {
                topic: topic.topic,
                id,
                value,
            }
        }
        Command::Kudos {
            member,
            note,
            about,
            topic,
        } => Request::Kudos {
            topic: topic.topic,
            member,
            note,
            about,
        },
        Command::Accept { answer, topic } => Request::Accept {
            topic: topic.topic,
            answer,
        },
        Command::Ask {
            action:
                AskAction::Create {
                    title,
                    body,
                    deadline,
                    topic,
                },
        } => {
            let now = catchment_node::engine::system_now();
            Request::AskCreate {
                topic: topic.topic,
                title,
                body: read_body(body)?,
                deadline: parse_deadline(&deadline, now)?,
            }
        }
        Command::Ask {
            action: AskAction::List { topic },
        } => Request::AskList { topic: topic.topic },
        Command::Hide {
            id,
            reason,
            undo,
            topic,
        } => Request::Hide {
            topic: topic.topic,
            id,
            reason: if undo { None } else { reason },
        },
        Command::Feed {
            kind,
            tag,
            ask,
            author,
            limit,
            topic,
        } => Request::Feed {
            topic: topic.topic,
            kind,
            tag,
            ask,
            author,
            limit,
        },
        Command::Show { id, topic } => Request::Show {
            topic: topic.topic,
            id,
        },
        Command::Leaderboard { topic } => Request::Leaderboard { topic: topic.topic },
        Command::Member {
            action: MemberAction::List { topic },
        } => Request::MemberList { topic: topic.topic },
        Command::Member {
            action:
                MemberAction::Role {
                    member,
                    role,
                    topic,
                },
        } => Request::MemberRole {
            topic: topic.topic,
            member,
            role,
        },
        Command::Member {
            action: MemberAction::Remove { member, topic },
        } => Request::MemberRemove {
            topic: topic.topic,
            member,
        },
        Command::Member {
            action: MemberAction::Pending { topic },
        } => Request::MemberPending { topic: topic.topic },
        Command::Member {
            action: MemberAction::Admit { member, topic },
        } => Request::MemberAdmit {
            topic: topic.topic,
            member,
        },
        Command::Member {
            action: MemberAction::Refuse { member, topic },
        } => Request::MemberRefuse {
            topic: topic.topic,
            member,
        },
        Command::Invite {
            action:
                InviteAction::Create {
                    role,
                    expires,
                    uses,
                    topic,
                },
        } => {
            let now = catchment_node::engine::system_now();
            Request::InviteCreate {
                topic: topic.topic,
                role,
                expires: parse_expiry(&expires, now)?,
                uses,
                // A running node fills in where it listens; an invite made with no node
                // running carries none, and the joiner finds the inviter by mDNS or `--dial`.
                addresses: Vec::new(),
            }
        }
        Command::Invite {
            action: InviteAction::List { topic },
        } => Request::InviteList { topic: topic.topic },
        Command::Invite {
            action: InviteAction::Revoke { invite, topic },
        } => Request::InviteRevoke {
            topic: topic.topic,
            invite,
        },
        Command::Join { invite } => Request::Join {
            invite: read_body(invite)?,
        },
        Command::Import { .. } => bail!("an import runs as a session of requests"),
        Command::Alias {
            action: AliasAction::List { topic },
        } => Request::AliasList { topic: topic.topic },
        Command::Alias {
            action:
                AliasAction::Link {
                    alias,
                    member,
                    topic,
                },
        } => Request::AliasLink {
            topic: topic.topic,
            alias,
            member: Some(member),
        },
        Command::Alias {
            action: AliasAction::Unlink { alias, topic },
        } => Request::AliasLink {
            topic: topic.topic,
            alias,
            member: None,
        },
    })
}

/// An invite's expiry: a duration or a date as for an ask's deadline, or "never".
fn parse_expiry(text: &str, now: i64) -> Result<Option<i64>> {
    if matches!(text.trim(), "never" | "none") {
        return Ok(None);
    }
    parse_deadline(text, now).map(Some).map_err(|_| {
        anyhow!("--expires {text:?} is not a duration (7d, 36h), a date (2026-12-31) or \"never\"")
    })
}

fn parse_addresses(list: &[String]) -> Result<Vec<catchment_node::runtime::Multiaddr>> {
    list.iter()
        .map(|a| {
            let address: catchment_node::runtime::Multiaddr = a
                .parse()
                .map_err(|e| anyhow!("not a multiaddr {a:?}: {e}"))?;
            if a.starts_with("/dns") {
                bail!("{a:?}: DNS names are not supported; give an /ip4 or /ip6 address");
            }
            Ok(address)
        })
        .collect()
}

/// Runs the node until Ctrl-C or SIGTERM.
fn up(home: Home, args: UpArgs) -> Result<()> {
    let settings = home.config()?.network;
    let mut config = NodeConfig {
        mdns: !args.no_mdns && settings.mdns,
        api_port: args.api_port,
        seed: args.seed || settings.seed,
        relay: args.relay || settings.relay,
        ..NodeConfig::default()
    };
    if !args.listen.is_empty() {
        config.listen = parse_addresses(&args.listen)?;
    } else if !settings.listen.is_empty() {
        config.listen = parse_addresses(&settings.listen)
            .map_err(|e| anyhow!("config.toml [network] listen: {e}"))?;
    }
    config.dial = parse_addresses(&args.dial)?;
    config.external = parse_addresses(&args.external)?;
    config.external.extend(
        parse_addresses(&settings.external)
            .map_err(|e| anyhow!("config.toml [network] external: {e}"))?,
    );
    config.dial.extend(
        parse_addresses(&settings.dial).map_err(|e| anyhow!("config.toml [network] dial: {e}"))?,
    );
    if args.sync_interval == 0 {
        bail!("--sync-interval must be at least 1 second");
    }
    config.sync_interval = std::time::Duration::from_secs(args.sync_interval);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("a SIGTERM handler installs");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        catchment_node::runtime::run(home, config, shutdown).await
    })?;
    Ok(())
}

/// Opens the web UI logged in: a one-time URL (a minute, single use) in the default browser.
fn open_ui(client: &Client, no_browser: bool) -> Result<()> {
    let url = client.login_url()?;
    emit(&format!("{url}\n"));
    if !no_browser {
        if let Err(e) = webbrowser::open(&url) {
            eprintln!("could not start a browser ({e}): open the URL above within a minute");
        }
    }
    Ok(())
}

/// Prints to standard output; a reader that went away (`| head`) is not an error.
pub(crate) fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn network(client: &Client, request: NetRequest, json: bool) -> Result<()> {
    let value = client.network(request.clone())?;
    if json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?));
    } else {
        emit(&render::network(&request, &value));
    }
    Ok(())
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Demo(args) = cli.command {
        return demo::run(args);
    }
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
    let home = Home::open(&dir)?;
    let command = match cli.command {
        Command::Up(args) => return up(home, args),
        Command::Open { no_browser } => return open_ui(&Client::new(home), no_browser),
        Command::Status => return network(&Client::new(home), NetRequest::Status, cli.json),
        Command::Peers => return network(&Client::new(home), NetRequest::Peers, cli.json),
        Command::Offline { switch } => {
            let on = switch == OnOff::On;
            return network(&Client::new(home), NetRequest::Offline { on }, cli.json);
        }
        command => command,
    };
    let client = Client::new(home);
    if let Command::Import {
        source:
            ImportSource::Stackexchange {
                dir,
                source,
                as_idea,
                topic,
            },
    } = command
    {
        let args = import::ImportArgs {
            dir: &dir,
            topic: topic.topic,
            source,
            as_idea,
            json: cli.json,
        };
        emit(&import::stackexchange(&client, args)?);
        return Ok(());
    }
    let request = request(command)?;
    let value = client.call(request.clone())?;
    if cli.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&value)?));
    } else {
        emit(&render::response(&request, value)?);
    }
    Ok(())
}
