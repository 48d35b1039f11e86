//! `catchment import stackexchange DIR`: reads a dump, writes it in batches with a progress
//! bar, and reports what was imported and what was skipped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::{bail, Result};
use catchment_node::import::{self, ImportEvent, ImportOutcome, Options, Plan};
use catchment_node::ops::Request;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};

use crate::client::Client;

/// The most events sent in one request (each request is one group commit).
const BATCH_EVENTS: usize = 1_000;
/// The most bytes of text in one request: a running node's API takes 2 MiB bodies, and JSON
/// escaping can double text.
const BATCH_TEXT: usize = 512 * 1024;

/// What `catchment import stackexchange` was asked to do.
pub struct ImportArgs<'a> {
    /// The dump folder.
    pub dir: &'a Path,
    /// The topic.
    pub topic: Option<String>,
    /// The source name (default: the folder's name).
    pub source: Option<String>,
    /// Tags whose questions become ideas.
    pub as_idea: Vec<String>,
    /// Print JSON.
    pub json: bool,
}

fn text_len(event: &ImportEvent) -> usize {
    match &event.action {
        import::Action::Contribute { title, body, .. } => title.len() + body.len() + 200,
        _ => 200,
    }
}

/// Splits the events into requests of at most [`BATCH_EVENTS`] events and [`BATCH_TEXT`]
/// bytes.
fn batches(events: &[ImportEvent]) -> Vec<&[ImportEvent]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < events.len() {
        let mut end = start;
        let mut text = 0;
        while end < events.len() && end - start < BATCH_EVENTS {
            text += text_len(&events[end]);
            if end > start && text > BATCH_TEXT {
                break;
            }
            end += 1;
        }
        out.push(&events[start..end]);
        start = end;
    }
    out
}

/// With no `--source`, the source name is the folder's name, so the same dump in a renamed or
/// copied folder would be imported a second time. Refuses that: when the first contribution of
/// the dump is already in the topic (same author alias, time and title) under another id, an
/// earlier import used another source name.
fn refuse_a_second_source(
    session: &mut crate::client::Session<'_>,
    topic: &Option<String>,
    plan: &Plan,
) -> Result<()> {
    let Some((event, kind, title)) = plan.events.iter().find_map(|e| match &e.action {
        import::Action::Contribute { kind, title, .. } => Some((e, *kind, title)),
        _ => None,
    }) else {
        return Ok(());
    };
    // Everything of that kind by that author: the dump's oldest is at the end of the feed.
    let feed = match session.call(Request::Feed {
        topic: topic.clone(),
        kind: Some(kind),
        tag: None,
        ask: None,
        author: Some(event.alias.clone()),
        limit: 100_000,
    }) {
        Ok(feed) => feed,
        // No such alias in the topic yet (or no readable feed): nothing imported before.
        Err(_) => return Ok(()),
    };
    let earlier = feed.as_array().into_iter().flatten().find(|item| {
        item["created"].as_i64() == Some(event.at)
            && item["title"].as_str() == Some(title.as_str())
            && item["id"].as_str() != Some(event.id.as_str())
    });
    if let Some(item) = earlier {
        bail!(
            "this dump seems imported into the topic before under another source name: \
             {}'s {:?} is there as {}; re-run with the --source used then to resume that \
             import, or give --source NAME to import it again on purpose",
            event.alias,
            title,
            item["id"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

/// Runs the import and returns what to print.
pub fn stackexchange(client: &Client, args: ImportArgs<'_>) -> Result<String> {
    let mut options = Options::for_dir(args.dir);
    let named = args.source.is_some();
    if let Some(source) = args.source {
        options.source = source.trim().to_string();
    }
    options.as_idea = args.as_idea;
    let plan = import::read(args.dir, &options)?;

    let mut session = client.session()?;
    if !named {
        refuse_a_second_source(&mut session, &args.topic, &plan)?;
    }
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(plan.events.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events ({per_sec}, {eta} left)")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("importing {}", plan.source));
    let mut total = ImportOutcome::default();
    for batch in batches(&plan.events) {
        let value = session.call(Request::Import {
            topic: args.topic.clone(),
            events: batch.to_vec(),
        });
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                bar.abandon();
                return Err(e);
            }
        };
        let outcome: ImportOutcome = serde_json::from_value(value)?;
        total.add(outcome);
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();

    if args.json {
        return Ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&report_json(&plan, &total))?
        ));
    }
    Ok(report(&plan, &total))
}

fn report_json(plan: &Plan, total: &ImportOutcome) -> Value {
    json!({
        "source": plan.source,
        "rows": plan.rows,
        "missing": plan.missing,
        "imported": total.written_by,
        "already_there": total.present,
        "refused": total.refused,
        "skipped": plan.skipped,
    })
}

/// The final report for people.
fn report(plan: &Plan, total: &ImportOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Imported {} record(s) from {} ({} rows read)",
        total.written,
        plan.source,
        plan.total_rows()
    );
    let order = ["question", "idea", "answer", "comment", "vote", "accept"];
    for what in order {
        if let Some(n) = total.written_by.get(what) {
            let _ = writeln!(out, "  {n:>7} {what}{}", if *n == 1 { "" } else { "s" });
        }
    }
    if total.present > 0 {
        let _ = writeln!(
            out,
            "Already there from an earlier import of {}: {} (nothing written twice)",
            plan.source, total.present
        );
    }
    if !total.refused.is_empty() {
        let mut why: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, reason) in &total.refused {
            *why.entry(reason.as_str()).or_default() += 1;
        }
        let _ = writeln!(out, "Refused {}:", total.refused.len());
        for (reason, n) in why {
            let _ = writeln!(out, "  {n:>7} {reason}");
        }
    }
    if !plan.missing.is_empty() {
        let _ = writeln!(out, "Not in the folder: {}", plan.missing.join(", "));
    }
    if plan.total_skipped() > 0 {
        let _ = writeln!(out, "Skipped {} row(s):", plan.total_skipped());
        for (reason, skipped) in &plan.skipped {
            let _ = writeln!(out, "  {:>7} {reason}", skipped.count);
            if reason.starts_with("malformed") {
                for example in &skipped.examples {
                    let _ = writeln!(out, "          {example}");
                }
            }
        }
    }
    out
}
