//! The pages, one module per area; each renders from operations sent to the node.

pub(crate) mod admin;
pub(crate) mod feed;
pub(crate) mod network;
pub(crate) mod people;
pub(crate) mod thread;
pub(crate) mod topics;

use maud::{html, Markup};

use super::layout::{self, when, who};
use crate::query::Item;

/// Endorsement buttons (+1, -1, withdraw) for someone else's contribution.
pub(crate) fn endorse_buttons(base: &str, item: &Item, back: &str) -> Markup {
    let action = format!("{base}/c/{}/endorse", item.id);
    let label = layout::label(item);
    html! {
        span.endorse {
            form.inline method="post" action=(action) {
                input type="hidden" name="value" value="1";
                input type="hidden" name="back" value=(back);
                button type="submit" .up aria-label=(format!("Endorse “{label}” +1")) { "+1" }
            }
            form.inline method="post" action=(action) {
                input type="hidden" name="value" value="-1";
                input type="hidden" name="back" value=(back);
                button type="submit" .down aria-label=(format!("Endorse “{label}” −1")) { "−1" }
            }
        }
    }
}

/// A contribution in a list: kind, title, body, author, time, tags, score and replies.
pub(crate) fn card(base: &str, me: &str, item: &Item, back: &str) -> Markup {
    let mine = item.author.id == me;
    html! {
        article.item id=(format!("c-{}", item.id)) data-id=(item.id) {
            header {
                span class=(format!("kind kind-{}", item.kind)) { (item.kind) }
                " "
                a.title href=(format!("{base}/c/{}", item.id)) { (layout::label(item)) }
                @if item.accepted.is_some() && item.kind == catchment_crdt::schema::Kind::Answer {
                    " " span.accepted { "accepted" }
                }
                @if item.accepted.is_some() && item.kind == catchment_crdt::schema::Kind::Question {
                    " " span.accepted { "answered" }
                }
            }
            div.body { (layout::body(&item.body)) }
            footer.meta {
                (who(base, &item.author)) " · " (when(item.created))
                @if item.edited.is_some() { " · edited" }
                @for tag in &item.tags {
                    " " a.tag href=(format!("{base}?tag={}", urlencode(tag))) { "#" (tag) }
                }
                " · " span.score title="net endorsement" { "score " (item.score) }
                " · " a href=(format!("{base}/c/{}", item.id)) { (item.replies) " " (if item.replies == 1 { "reply" } else { "replies" }) }
                @if !mine { " " (endorse_buttons(base, item, back)) }
            }
        }
    }
}

/// Percent-encodes a query value.
pub(crate) fn urlencode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Splits typed tags ("ci, build #perf") into a list.
pub(crate) fn tags(typed: &str) -> Vec<String> {
    typed
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|t| t.trim().trim_start_matches('#'))
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// A typed value, or `None` when blank.
pub(crate) fn given(fields: &super::Fields, name: &str) -> Option<String> {
    fields
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}
