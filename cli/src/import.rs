//! `catchment import stackexchange DIR`: reads a dump, writes it in batches with a progress
//! bar, and reports what was imported and what was skipped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use anyhow::Result;
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

/// Runs the import and returns what to print.
pub fn stackexchange(client: &Client, args: ImportArgs<'_>) -> Result<String> {
    let mut options = Options::for_dir(args.dir);
    if let Some(source) = args.source {
        options.source = source.trim().to_string();
    }
    options.as_idea = args.as_idea;
    let plan = import::read(args.dir, &options)?;

    let mut session = client.session()?;
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
