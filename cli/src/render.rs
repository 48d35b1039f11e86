//! Text output for people.

use std::fmt::Write;

use anyhow::Result;
use catchment_crdt::schema::{Ask, Kind};
use catchment_crdt::Weights;
use catchment_node::invites::{InviteView, PendingAdmission};
use catchment_node::ops::{MemberView, Request, TopicView};
use catchment_node::query::{Item, Leaderboard, ProfileView, Thread, TopicSummary, Who};
use qrcode::render::unicode;
use qrcode::{EcLevel, QrCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

fn parse<T: DeserializeOwned>(value: Value) -> Result<T> {
    Ok(serde_json::from_value(value)?)
}

fn text(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The text for a request's response.
pub fn response(request: &Request, value: Value) -> Result<String> {
    let now = catchment_node::engine::system_now();
    Ok(match request {
        Request::Whoami => {
            let name = text(&value, "name");
            let name = if name.is_empty() {
                "(no name: set one with `catchment profile set --name`)".to_string()
            } else {
                name
            };
            format!(
                "{name} ({})\nmember {}\n",
                text(&value, "short"),
                text(&value, "member")
            )
        }
        Request::SetProfile { .. } => {
            let name = text(&value, "name");
            let name = if name.is_empty() {
                "(no name)".to_string()
            } else {
                name
            };
            format!("Profile set in {} topic(s): {name}\n", value["topics"])
        }
        Request::Profile { .. } => profile(&parse(value)?),
        Request::TopicCreate { .. } => {
            format!(
                "Created topic {:?}\nid {}\n",
                text(&value, "name"),
                text(&value, "id")
            )
        }
        Request::TopicList => topics(&parse::<Vec<TopicSummary>>(value)?),
        Request::TopicShow { .. } => topic(&parse(value)?),
        Request::Weights { .. } => weights(&parse(value)?),
        Request::Post { kind, .. } => format!("Posted {kind} {}\n", text(&value, "id")),
        Request::Edit { .. } => format!("Edited {}\n", text(&value, "id")),
        Request::Retract { .. } => {
            format!(
                "Retracted {}: hidden everywhere, its history kept\n",
                text(&value, "id")
            )
        }
        Request::Endorse { value: v, .. } => match v {
            0 => format!("Withdrew your endorsement of {}\n", text(&value, "id")),
            1 => format!("Endorsed {} (+1)\n", text(&value, "id")),
            _ => format!("Endorsed {} (-1)\n", text(&value, "id")),
        },
        Request::Kudos { .. } => format!("Kudos to {}\n", parse::<Who>(value["to"].clone())?),
        Request::Accept { .. } => format!("Accepted answer {}\n", text(&value, "id")),
        Request::AskCreate { deadline, .. } => {
            format!(
                "Opened ask {}, closing {}\n",
                text(&value, "id"),
                time(*deadline)
            )
        }
        Request::AskList { .. } => asks(&parse::<Vec<Ask>>(value)?, now),
        Request::Hide { reason, .. } => match reason {
            Some(_) => format!("Hidden: {}\n", text(&value, "id")),
            None => format!("Shown again: {}\n", text(&value, "id")),
        },
        Request::Feed { .. } => feed(&parse::<Vec<Item>>(value)?),
        Request::Show { .. } => thread(&parse(value)?),
        Request::Leaderboard { .. } => leaderboard(&parse(value)?),
        Request::MemberList { .. } => members(&parse::<Vec<MemberView>>(value)?),
        Request::MemberRole { role, .. } => {
            format!("{} is now {role}\n", parse::<Who>(value["member"].clone())?)
        }
        Request::MemberRemove { .. } => format!(
            "Removed {}: what they wrote so far stays; anything later is refused\n",
            parse::<Who>(value["member"].clone())?
        ),
        Request::MemberPending { .. } => pending(&parse::<Vec<PendingAdmission>>(value)?),
        Request::MemberAdmit { .. } | Request::MemberRefuse { .. } => format!(
            "{} is now {}\n",
            parse::<Who>(value["member"].clone())?,
            text(&value, "status")
        ),
        Request::InviteCreate { .. } => invite(&value),
        Request::InviteList { .. } => invites(&parse::<Vec<InviteView>>(value)?, now),
        Request::InviteRevoke { .. } => format!(
            "Revoked invite {}; {} member(s) already admitted with it stay\n",
            text(&value, "short"),
            value["kept"]
        ),
        Request::Join { .. } => format!(
            "Joined {:?} (you: {})\nid {}\n",
            text(&value, "name"),
            value["status"].as_str().unwrap_or("not admitted yet"),
            text(&value, "id")
        ),
        Request::Import { .. } => {
            let outcome: catchment_node::import::ImportOutcome = parse(value)?;
            format!(
                "Imported {} record(s); {} already there; {} refused\n",
                outcome.written,
                outcome.present,
                outcome.refused.len()
            )
        }
        Request::AliasLink { alias, member, .. } => match member {
            Some(_) => format!(
                "Linked {:?} to member {}: its records now count for that member\n",
                alias.trim(),
                text(&value, "member")
            ),
            None => format!(
                "Unlinked {:?}: its records count for the alias again\n",
                alias.trim()
            ),
        },
        Request::AliasList { .. } => aliases(&parse::<Vec<_>>(value)?),
    })
}

/// Imported authors' aliases, with their links and contributions.
fn aliases(list: &[catchment_node::import::AliasView]) -> String {
    if list.is_empty() {
        return "No imported authors in this topic\n".to_string();
    }
    let mut out = String::new();
    for a in list {
        let counts: Vec<String> = a
            .counts
            .iter()
            .map(|(kind, n)| format!("{n} {kind}{}", if *n == 1 { "" } else { "s" }))
            .collect();
        let link = match &a.member {
            Some(who) => format!("linked to {who}"),
            None => "imported, not linked".to_string(),
        };
        let _ = writeln!(out, "{:<24} {link:<32} {}", a.alias, counts.join(", "));
    }
    out
}

/// A new invite: what it allows, the string on a line of its own, and its QR code.
fn invite(value: &Value) -> String {
    let mut out = String::new();
    let uses = match value["uses"].as_u64() {
        Some(1) => "1 use".to_string(),
        Some(n) => format!("{n} uses"),
        None => "no use limit".to_string(),
    };
    let expires = match value["expires"].as_i64() {
        Some(ms) => format!("expires {}", time(ms)),
        None => "never expires".to_string(),
    };
    let _ = writeln!(
        out,
        "Invite {} to {:?}: {}, {uses}, {expires}\n",
        text(value, "short"),
        text(value, "name"),
        text(value, "role"),
    );
    let string = text(value, "invite");
    let _ = writeln!(out, "{string}\n");
    match qr(&string) {
        Some(code) => {
            let _ = writeln!(out, "{code}\n");
        }
        None => out.push_str("(too long for a QR code: share the text)\n\n"),
    }
    if value["carries_charter"].as_bool() == Some(false) {
        out.push_str(
            "The topic's charter was too large to fit: whoever joins waits for a member to be \
             reachable.\n",
        );
    }
    out.push_str("They join with `catchment join <invite>`; it works with nobody else online.\n");
    out
}

/// The invite as a QR code drawn with half-block characters, or `None` if it is too long.
///
/// The uppercase form is encoded: the QR alphanumeric mode holds upper-case letters and
/// digits, 5.5 bits a character instead of 8, and invites decode in any case. Light modules are
/// drawn as blocks so that the code reads on a terminal's dark background.
fn qr(invite: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(invite.to_uppercase(), EcLevel::L).ok()?;
    Some(
        code.render::<unicode::Dense1x2>()
            .dark_color(unicode::Dense1x2::Light)
            .light_color(unicode::Dense1x2::Dark)
            .build(),
    )
}

/// A time in UTC, to the minute.
pub fn time(ms: i64) -> String {
    // Times are claims from peers: anything past what the calendar formatter shows (year 9999)
    // is shown as such rather than trusted to format.
    const LAST: i64 = 253_402_300_799_000;
    if ms > LAST {
        return "after the year 9999".to_string();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    let text = humantime::format_rfc3339_seconds(t).to_string();
    let text = text.get(..16).map(|s| s.replace('T', " ")).unwrap_or(text);
    format!("{text} UTC")
}

/// Text from peers, made safe for a terminal: control characters (escape sequences, carriage
/// returns, and in one-line fields newlines) become spaces.
pub fn clean(text: &str, multiline: bool) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && !(multiline && (c == '\n' || c == '\t')) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn first_line(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn headline(item: &Item) -> String {
    if item.title.is_empty() {
        first_line(&clean(&item.body, true), 72)
    } else {
        clean(&item.title, false)
    }
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

pub fn topics(topics: &[TopicSummary]) -> String {
    if topics.is_empty() {
        return "No topics yet: create one with `catchment topic create NAME`.\n".into();
    }
    let mut out = String::new();
    for t in topics {
        let _ = writeln!(
            out,
            "{}  {}  ({} members; you: {})",
            &t.id[..8],
            clean(&t.name, false),
            t.members,
            t.status
        );
    }
    out
}

pub fn feed(items: &[Item]) -> String {
    if items.is_empty() {
        return "Nothing here yet.\n".into();
    }
    let mut out = String::new();
    for item in items {
        let mut marks = vec![signed(item.score)];
        if item.replies > 0 {
            marks.push(format!("{} replies", item.replies));
        }
        if item.kind == Kind::Question && item.accepted.is_some() {
            marks.push("answered".into());
        }
        let _ = writeln!(
            out,
            "{}  {:<8}  {}  [{}]",
            item.id,
            item.kind.as_str(),
            headline(item),
            marks.join(", ")
        );
        let mut meta = format!("    by {} · {}", item.author, time(item.created));
        if !item.tags.is_empty() {
            let tags: Vec<String> = item.tags.iter().map(|t| format!("#{t}")).collect();
            let _ = write!(meta, " · {}", tags.join(" "));
        }
        if let Some(parent) = &item.parent {
            let _ = write!(meta, " · re {parent}");
        }
        let _ = writeln!(out, "{meta}");
    }
    out
}

fn thread_into(out: &mut String, thread: &Thread, depth: usize) {
    let pad = "    ".repeat(depth);
    let item = &thread.item;
    let mut marks = vec![signed(item.score)];
    if item.kind == Kind::Answer && item.accepted.is_some() {
        marks.push("accepted".into());
    }
    if item.retracted {
        marks.push("retracted".into());
    }
    if let Some(reason) = &item.hidden {
        marks.push(format!("hidden: {reason}"));
    }
    let title = if item.title.is_empty() {
        String::new()
    } else {
        format!("  {}", clean(&item.title, false))
    };
    let _ = writeln!(
        out,
        "{pad}{} {}{title}  [{}]",
        item.kind.as_str(),
        item.id,
        marks.join(", ")
    );
    let mut meta = format!("{pad}by {} · {}", item.author, time(item.created));
    if let Some(edited) = item.edited {
        let _ = write!(meta, " · edited {}", time(edited));
    }
    if !item.tags.is_empty() {
        let tags: Vec<String> = item.tags.iter().map(|t| format!("#{t}")).collect();
        let _ = write!(meta, " · {}", tags.join(" "));
    }
    let _ = writeln!(out, "{meta}");
    for line in clean(&item.body, true).lines() {
        let _ = writeln!(out, "{pad}  {line}");
    }
    let _ = writeln!(out);
    for reply in &thread.replies {
        thread_into(out, reply, depth + 1);
    }
}

pub fn thread(thread: &Thread) -> String {
    let mut out = String::new();
    thread_into(&mut out, thread, 0);
    out
}

pub fn weights(w: &Weights) -> String {
    let mut out = String::from("Score = ");
    let parts: Vec<String> = Weights::NAMES
        .iter()
        .map(|name| format!("{} × {name}", w.get(name).unwrap_or(0)))
        .collect();
    out.push_str(&parts.join(" + "));
    out.push_str("\n(endorsement: net +1/-1 received from others; kudos: received from others; accepted: answers accepted by another asker)\n");
    out
}

pub fn leaderboard(board: &Leaderboard) -> String {
    let mut out = String::new();
    if board.rows.is_empty() {
        out.push_str("No recognition yet.\n");
    }
    for row in &board.rows {
        let r = &row.recognition;
        let counts: Vec<String> = r
            .counts
            .iter()
            .map(|(k, n)| format!("{n} {}", k.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "{:>3}. {:<36} score {:>5}   {} · endorsement {} · kudos {} · accepted {}",
            row.rank,
            row.who.to_string(),
            r.score,
            counts.join(", "),
            signed(r.endorsement),
            r.kudos,
            r.accepted
        );
    }
    out.push('\n');
    out.push_str(&weights(&board.weights));
    out
}

pub fn profile(p: &ProfileView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", p.who);
    if !p.who.alias {
        let _ = writeln!(out, "member {}", p.who.id);
    }
    if !p.about.is_empty() {
        let _ = writeln!(out, "{}", clean(&p.about, false));
    }
    let _ = writeln!(out, "status: {}", p.status);
    let r = &p.recognition;
    let rank = if p.rank == 0 {
        "unranked".to_string()
    } else {
        format!("rank {}", p.rank)
    };
    let _ = writeln!(out, "score {} ({rank})", r.score);
    for kind in Kind::ALL {
        let _ = write!(
            out,
            "{} {}s  ",
            r.counts.get(&kind).copied().unwrap_or(0),
            kind.as_str()
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "endorsement received {} · kudos {} · accepted answers {}",
        signed(r.endorsement),
        r.kudos,
        r.accepted
    );
    if !p.kudos.is_empty() {
        let _ = writeln!(out, "\nKudos:");
        for k in &p.kudos {
            let _ = writeln!(
                out,
                "  from {} · {}: {}",
                k.from,
                time(k.created),
                clean(&k.note, false)
            );
        }
    }
    if !p.recent.is_empty() {
        let _ = writeln!(out, "\nRecent:");
        out.push_str(&feed(&p.recent));
    }
    out
}

pub fn members(members: &[MemberView]) -> String {
    let mut out = String::new();
    for m in members {
        let _ = writeln!(out, "{:<40} {}", m.member.to_string(), m.status.describe());
    }
    out
}

pub fn pending(pending: &[PendingAdmission]) -> String {
    if pending.is_empty() {
        return "No admission waits for a decision.\n".into();
    }
    let mut out = String::new();
    for p in pending {
        let invite = p.invite.as_deref().unwrap_or("none");
        let _ = writeln!(
            out,
            "{:<40} {} · invite {invite} · joined {}",
            p.member.to_string(),
            p.status.describe(),
            time(p.joined)
        );
    }
    out.push_str("\nAdmins decide with `catchment member admit` or `catchment member refuse`.\n");
    out
}

pub fn invites(invites: &[InviteView], now: i64) -> String {
    if invites.is_empty() {
        return "No invites created on this node: create one with `catchment invite create`.\n"
            .into();
    }
    let mut out = String::new();
    for i in invites {
        let limit = i.uses.map(|n| n.to_string()).unwrap_or_else(|| "∞".into());
        let mut state = vec![format!("used {} of {limit}", i.used)];
        if i.quarantined > 0 {
            state.push(format!("{} waiting for a decision", i.quarantined));
        }
        state.push(match i.expires {
            Some(ms) if ms < now => format!("expired {}", time(ms)),
            Some(ms) => format!("expires {}", time(ms)),
            None => "never expires".into(),
        });
        if i.revoked {
            state.push("revoked".into());
        }
        let _ = writeln!(
            out,
            "{}  {:<6}  created {}  ({})",
            i.short,
            i.role.as_str(),
            time(i.created),
            state.join(", ")
        );
    }
    out
}

pub fn asks(asks: &[Ask], now: i64) -> String {
    if asks.is_empty() {
        return "No asks.\n".into();
    }
    let mut out = String::new();
    for ask in asks {
        let state = if ask.deadline < now { "closed" } else { "open" };
        let _ = writeln!(
            out,
            "{}  {}  ({state}, deadline {})",
            ask.id,
            ask.title,
            time(ask.deadline)
        );
    }
    out
}

pub fn topic(view: &TopicView) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}\nid {}\ncreated {}",
        clean(&view.name, false),
        view.id,
        time(view.created)
    );
    let count = |name: &str| view.counts.get(name).copied().unwrap_or(0);
    let _ = writeln!(
        out,
        "{} contributions · {} endorsements · {} kudos · {} changes",
        count("contributions"),
        count("endorsements"),
        count("kudos"),
        count("changes")
    );
    let _ = writeln!(out, "\nMembers:");
    out.push_str(&members(&view.members));
    if !view.asks.is_empty() {
        let _ = writeln!(out, "\nAsks:");
        for ask in &view.asks {
            let _ = writeln!(
                out,
                "{}  {}  (deadline {})",
                ask.id,
                clean(&ask.title, false),
                time(ask.deadline)
            );
        }
    }
    let _ = writeln!(out);
    out.push_str(&weights(&view.weights));
    out
}

fn ago(ms: i64, now: i64) -> String {
    let secs = ((now - ms).max(0) / 1000) as u64;
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        _ => format!("{}h ago", secs / 3600),
    }
}

/// One line on how this node is reached: seed or not, what AutoNAT says, relays, hole punches.
fn reachability(value: &Value) -> String {
    let r = &value["reachability"];
    let relays = r["relays"].as_array().map_or(0, Vec::len);
    format!(
        "{}reachability: {} · listening through {relays} relay(s) · hole punches: {} succeeded, {} failed",
        if value["seed"].as_bool() == Some(true) { "seed · " } else { "" },
        r["nat"].as_str().unwrap_or("unknown"),
        r["hole_punches"]["succeeded"],
        r["hole_punches"]["failed"],
    )
}

/// The text for a network request's response.
pub fn network(request: &catchment_node::runtime::NetRequest, value: &Value) -> String {
    use catchment_node::runtime::NetRequest;
    let now = catchment_node::engine::system_now();
    let mut out = String::new();
    match request {
        NetRequest::Status => {
            let offline = value["offline"].as_bool().unwrap_or(false);
            let _ = writeln!(
                out,
                "{} · {} peer(s) connected",
                if offline { "offline: saved here, will sync when you go online" } else { "online" },
                value["connected"]
            );
            let _ = writeln!(out, "{}", reachability(value));
            for topic in value["topics"].as_array().into_iter().flatten() {
                let _ = writeln!(out, "\n{} ({}) · you: {}", text(topic, "name"), &text(topic, "topic")[..8], text(topic, "status"));
                let pending = topic["pending"].as_u64().unwrap_or(0);
                if pending > 0 {
                    let _ = writeln!(out, "  {pending} change(s) waiting for what they depend on");
                }
                let peers = topic["peers"].as_array().cloned().unwrap_or_default();
                if peers.is_empty() {
                    let _ = writeln!(out, "  no peer yet");
                }
                for peer in peers {
                    let id = text(&peer, "peer");
                    let short = &id[id.len().saturating_sub(8)..];
                    let state = if !peer["refused"].is_null() {
                        format!("refused: {}", text(&peer, "refused"))
                    } else if peer["heads_equal"].as_bool() == Some(true) {
                        "in agreement".to_string()
                    } else {
                        "heads differ".to_string()
                    };
                    let last = peer["last_sync"].as_i64().map(|t| format!("last in sync {}", ago(t, now))).unwrap_or_else(|| "never in sync".into());
                    let link = match peer["reach"].as_str() {
                        Some(reach) if peer["connected"].as_bool() == Some(true) => format!("connected, {reach}"),
                        _ if peer["connected"].as_bool() == Some(true) => "connected".to_string(),
                        _ => "not connected".to_string(),
                    };
                    let _ = writeln!(out, "  peer …{short}  {link} · {state} · {last}");
                }
            }
        }
        NetRequest::Peers => {
            let _ = writeln!(out, "this node: {}", text(value, "me"));
            let _ = writeln!(out, "{}", reachability(value));
            for address in value["listening"].as_array().into_iter().flatten() {
                let _ = writeln!(out, "  listening on {}", address.as_str().unwrap_or(""));
            }
            for peer in value["peers"].as_array().into_iter().flatten() {
                let link = match peer["reach"].as_str() {
                    Some(reach) if peer["connected"].as_bool() == Some(true) => format!("connected ({reach})"),
                    _ if peer["connected"].as_bool() == Some(true) => "connected".to_string(),
                    _ => "known".to_string(),
                };
                let addresses: Vec<&str> = peer["addresses"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                let _ = writeln!(out, "{}  {link}  {}", text(peer, "peer"), addresses.join(" "));
            }
        }
        NetRequest::Offline { on: true } => out.push_str("Offline: connections dropped; what you write is saved here and syncs when you go online.\n"),
        NetRequest::Offline { on: false } => out.push_str("Online: reconnecting to known peers.\n"),
        NetRequest::Dial { address } => {
            let _ = writeln!(out, "Dialling {address}");
        }
    }
    out
}
