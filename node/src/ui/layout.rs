//! The page shell (header, navigation, offline notice), forms that remember what was typed,
//! and small formatting helpers shared by the pages.

use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::{html as respond, Fields, UiError, UiState};
use crate::engine::system_now;
use crate::ops::Request;
use crate::query::{Item, TopicSummary, Who};
use crate::runtime::NetRequest;

/// What every page shows around its content.
pub(crate) struct Ctx {
    /// This member's key (hex).
    pub me: String,
    /// This member's display name.
    pub my_name: String,
    /// Whether the node is offline.
    pub offline: bool,
    /// The topics held here.
    pub topics: Vec<TopicSummary>,
    /// The topic of this page.
    pub topic: Option<TopicSummary>,
    /// Notifications not yet seen.
    pub unread: usize,
}

impl Ctx {
    /// Loads who we are, the topics, the network switch and, for a topic page, its topic.
    pub async fn load(state: &UiState, topic: Option<&str>) -> Result<Ctx, UiError> {
        let me = state.call(Request::Whoami).await?;
        let topics: Vec<TopicSummary> = state.call_as(Request::TopicList).await?;
        let offline = state
            .net(NetRequest::Peers)
            .await
            .map(|v| v["offline"].as_bool().unwrap_or(false))
            .unwrap_or(false);
        let topic = match topic {
            None => None,
            Some(typed) => {
                let typed = typed.to_lowercase();
                let found = topics
                    .iter()
                    .find(|t| !typed.is_empty() && t.id.starts_with(&typed))
                    .cloned();
                Some(found.ok_or(UiError::NotFound)?)
            }
        };
        Ok(Ctx {
            me: me["member"].as_str().unwrap_or("").to_string(),
            my_name: me["name"].as_str().unwrap_or("").to_string(),
            offline,
            topics,
            topic,
            unread: state.notices.unread(),
        })
    }

    /// The topic's id; pages that call this loaded one.
    pub fn topic_id(&self) -> String {
        self.topic
            .as_ref()
            .map(|t| t.id.clone())
            .unwrap_or_default()
    }

    /// Whether this member is an admin of the page's topic.
    pub fn admin(&self) -> bool {
        self.topic.as_ref().is_some_and(|t| t.status == "admin")
    }

    /// The base path of the page's topic.
    pub fn base(&self) -> String {
        format!("/t/{}", self.topic_id())
    }
}

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Topics,
    Feed,
    Asks,
    Leaderboard,
    Me,
    Admin,
    Network,
    Notifications,
}

/// A whole page.
pub(crate) fn shell(ctx: &Ctx, title: &str, nav: Nav, content: Markup) -> Markup {
    let topic = ctx.topic.as_ref();
    let link = |entry: Nav, href: String, label: &str| {
        html! {
            a href=(href) aria-current=[(entry == nav).then_some("page")] { (label) }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Catchment" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body data-topic=[topic.map(|t| t.id.as_str())] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "Catchment" }
                    @if let Some(t) = topic {
                        span.topic-name { (t.name) }
                    }
                    nav aria-label="Main" {
                        (link(Nav::Topics, "/".into(), "Topics"))
                        @if let Some(t) = topic {
                            (link(Nav::Feed, format!("/t/{}", t.id), "Feed"))
                            (link(Nav::Asks, format!("/t/{}/asks", t.id), "Asks"))
                            (link(Nav::Leaderboard, format!("/t/{}/leaderboard", t.id), "Leaderboard"))
                            (link(Nav::Me, format!("/t/{}/m/me", t.id), "My profile"))
                            @if t.status == "admin" {
                                (link(Nav::Admin, format!("/t/{}/admin", t.id), "Admin"))
                            }
                        }
                        (link(Nav::Network, "/network".into(), if ctx.offline { "Network (offline)" } else { "Network" }))
                        a href="/notifications" aria-current=[(nav == Nav::Notifications).then_some("page")] {
                            "Notifications "
                            span #notice-count .badge hidden[ctx.unread == 0] { (ctx.unread) }
                        }
                    }
                }
                @if ctx.offline {
                    p.offline role="status" {
                        strong { "Offline." }
                        " What you post is saved here, and will sync when a peer is reachable. "
                        a href="/network" { "Go online" }
                    }
                }
                div #toasts aria-live="polite" {}
                main #main tabindex="-1" {
                    h1 { (title) }
                    (content)
                }
                footer {
                    "Signed in as " (if ctx.my_name.is_empty() { short(&ctx.me) } else { ctx.my_name.clone() })
                    " (" (short(&ctx.me)) ")"
                }
            }
        }
    }
}

/// A page with no navigation: login problems and refusals.
pub(crate) fn bare(status: StatusCode, title: &str, text: &str) -> Response {
    respond(
        status,
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · Catchment" }
                    link rel="stylesheet" href="/assets/app.css";
                }
                body { main #main { h1 { (title) } p { (text) } } }
            }
        },
    )
}

/// An error page inside the shell, or a bare one when even the shell could not load.
pub(crate) async fn error_page(state: &UiState, error: UiError) -> Response {
    let status = match error {
        UiError::NotFound => StatusCode::NOT_FOUND,
        UiError::Node(_) => StatusCode::BAD_REQUEST,
    };
    match Ctx::load(state, None).await {
        Ok(ctx) => respond(
            status,
            shell(
                &ctx,
                "Something went wrong",
                Nav::Topics,
                html! { p.error role="alert" { (sentence(&error.to_string())) } p { a href="/" { "Back to the topics" } } },
            ),
        ),
        Err(_) => bare(status, "Something went wrong", &error.to_string()),
    }
}

/// A form submission that failed: what was typed, and which field the error belongs to.
pub(crate) struct Failed {
    /// Which form on the page.
    pub form: &'static str,
    /// What was typed.
    pub fields: Fields,
    /// The field the error is about ("form" for the form as a whole).
    pub field: &'static str,
    /// The error, in words.
    pub message: String,
}

impl Failed {
    /// A failure of `form`; the field is the first of `fields` the message names, else the
    /// form as a whole.
    pub fn new(
        form: &'static str,
        fields: Fields,
        candidates: &[&'static str],
        message: String,
    ) -> Failed {
        let lower = message.to_lowercase();
        let field = candidates
            .iter()
            .find(|c| lower.contains(*c))
            .copied()
            .unwrap_or("form");
        Failed {
            form,
            fields,
            field,
            message: sentence(&message),
        }
    }
}

/// What was typed into `name` of `form` before a failed submit.
pub(crate) fn typed(failed: Option<&Failed>, form: &str, name: &str) -> String {
    failed
        .filter(|f| f.form == form)
        .and_then(|f| f.fields.get(name).cloned())
        .unwrap_or_default()
}

/// The error id for a field, if the failed form's error is about it.
pub(crate) fn error_id(failed: Option<&Failed>, form: &str, field: &str) -> Option<String> {
    failed
        .filter(|f| f.form == form && f.field == field)
        .map(|_| format!("{form}-{field}-error"))
}

/// The error next to a field (or at the top of the form, for `"form"`).
pub(crate) fn field_error(failed: Option<&Failed>, form: &str, field: &str) -> Markup {
    match failed.filter(|f| f.form == form && f.field == field) {
        Some(f) => {
            html! { p.error id=(format!("{form}-{field}-error")) role="alert" { (f.message) } }
        }
        None => html! {},
    }
}

/// A message as a sentence: capital first letter, final stop.
pub(crate) fn sentence(message: &str) -> String {
    let message = message.trim();
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?', ')']) {
        out.push('.');
    }
    out
}

/// The first eight hex digits of a key.
pub(crate) fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

/// A member's name with the short key beside it.
pub(crate) fn who(base: &str, who: &Who) -> Markup {
    let name = if who.name.is_empty() {
        short(&who.id)
    } else {
        who.name.clone()
    };
    html! {
        @if who.alias {
            span.who { (name) }
        } @else {
            a.who href=(format!("{base}/m/{}", who.id)) { (name) }
            " " span.key { (who.short) }
        }
    }
}

/// A time as "5 min ago" / "in 3 h", with the UTC time as a tooltip.
pub(crate) fn when(ms: i64) -> Markup {
    let now = system_now();
    let diff = (now - ms) / 1000;
    // Rounded to the nearest unit: an invite made for 7 days reads "in 7 days", not 6.
    let round = |unit: i64| (diff.abs() + unit / 2) / unit;
    let (n, unit, ago) = if diff.abs() < 60 {
        (0, "", true)
    } else if diff.abs() < 3600 {
        (round(60), "min", diff > 0)
    } else if diff.abs() < 48 * 3600 {
        (round(3600), "h", diff > 0)
    } else {
        (round(86400), "days", diff > 0)
    };
    let text = match (n, ago) {
        (0, _) => "just now".to_string(),
        (n, true) => format!("{n} {unit} ago"),
        (n, false) => format!("in {n} {unit}"),
    };
    html! { time datetime=(utc(ms)) title=(utc(ms)) { (text) } }
}

/// A time in UTC, to the second.
pub(crate) fn utc(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A contribution's body, rendered from Markdown as a safe subset.
pub(crate) fn body(text: &str) -> Markup {
    PreEscaped(super::markdown::render(text))
}

/// The label of a contribution: its title, or for untitled ones the start of its body.
pub(crate) fn label(item: &Item) -> String {
    if !item.title.is_empty() {
        return item.title.clone();
    }
    let text: String = item.body.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else if text.is_empty() {
        format!("({})", item.kind)
    } else {
        text
    }
}
