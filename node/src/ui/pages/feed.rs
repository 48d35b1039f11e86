//! The feed of a topic with its filters and word search, posting, and the asks.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use catchment_crdt::schema::{Ask, Kind};
use maud::{html, Markup};

use super::{card, given, tags, urlencode};
use crate::engine::system_now;
use crate::ops::{MemberView, Request};
use crate::query::Item;
use crate::ui::layout::{
    self, error_id, error_page, field_error, shell, typed, when, Ctx, Failed, Nav,
};
use crate::ui::{back_to, html as respond, Fields, UiError, UiState};

/// How many contributions a feed page shows.
const SHOWN: usize = 50;
/// How many of the newest contributions a word search looks through.
const SEARCHED: usize = 2000;

/// The feed's filters, as in the page's query string.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filters {
    kind: Option<Kind>,
    tag: Option<String>,
    ask: Option<String>,
    author: Option<String>,
    words: Vec<String>,
    text: HashMap<String, String>,
}

impl Filters {
    fn from(query: HashMap<String, String>) -> Result<Filters, UiError> {
        let get = |k: &str| {
            query
                .get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let kind = match get("kind") {
            None => None,
            Some(k) => Some(
                serde_json::from_value(serde_json::Value::String(k.clone())).map_err(|_| {
                    UiError::Node(format!("there is no kind of contribution called {k:?}"))
                })?,
            ),
        };
        let words = get("q")
            .map(|q| q.split_whitespace().map(str::to_lowercase).collect())
            .unwrap_or_default();
        Ok(Filters {
            kind,
            tag: get("tag"),
            ask: get("ask"),
            author: get("author"),
            words,
            text: query,
        })
    }

    fn value(&self, name: &str) -> String {
        self.text.get(name).cloned().unwrap_or_default()
    }

    /// The query string that reproduces these filters.
    fn query(&self) -> String {
        let mut parts = Vec::new();
        for key in ["kind", "tag", "ask", "author", "q"] {
            let value = self.value(key);
            if !value.trim().is_empty() {
                parts.push(format!("{key}={}", urlencode(value.trim())));
            }
        }
        parts.join("&")
    }

    fn matches(&self, item: &Item) -> bool {
        let text = format!("{} {} {}", item.title, item.body, item.tags.join(" ")).to_lowercase();
        self.words.iter().all(|w| text.contains(w.as_str()))
    }
}

async fn load_items(state: &UiState, topic: &str, filters: &Filters) -> Result<Vec<Item>, UiError> {
    let limit = if filters.words.is_empty() {
        SHOWN
    } else {
        SEARCHED
    };
    let items: Vec<Item> = state
        .call_as(Request::Feed {
            topic: Some(topic.to_string()),
            kind: filters.kind,
            tag: filters.tag.clone(),
            ask: filters.ask.clone(),
            author: filters.author.clone(),
            limit,
        })
        .await?;
    Ok(items
        .into_iter()
        .filter(|i| filters.matches(i))
        .take(SHOWN)
        .collect())
}

fn list(ctx: &Ctx, items: &[Item], back: &str, filtered: bool) -> Markup {
    let base = ctx.base();
    html! {
        @if items.is_empty() {
            p.empty { @if filtered { "Nothing matches these filters." } @else { "Nothing here yet: be the first to post." } }
        }
        @for item in items {
            (card(&base, &ctx.me, item, back))
        }
    }
}

/// `GET /t/{topic}`: the feed.
pub(crate) async fn page(
    State(state): State<Arc<UiState>>,
    Path(topic): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    match Filters::from(query) {
        Ok(filters) => render(&state, &topic, filters, None).await,
        Err(e) => error_page(&state, e).await,
    }
}

/// `GET /t/{topic}/items`: the feed's list alone, for the page to refresh itself.
pub(crate) async fn items(
    State(state): State<Arc<UiState>>,
    Path(topic): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let result = async {
        let filters = Filters::from(query)?;
        let ctx = Ctx::load(&state, Some(&topic)).await?;
        let items = load_items(&state, &ctx.topic_id(), &filters).await?;
        let back = back_of(&ctx, &filters);
        Ok::<_, UiError>(list(&ctx, &items, &back, !filters.query().is_empty()).into_string())
    }
    .await;
    match result {
        Ok(body) => Html(body).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

fn back_of(ctx: &Ctx, filters: &Filters) -> String {
    let query = filters.query();
    if query.is_empty() {
        ctx.base()
    } else {
        format!("{}?{query}", ctx.base())
    }
}

fn options(selected: &str, choices: &[(String, String)]) -> Markup {
    html! {
        @for (value, label) in choices {
            option value=(value) selected[value == selected] { (label) }
        }
    }
}

/// The form to post an idea, a question or a review (answers and comments are posted from a
/// thread).
pub(crate) fn post_form(ctx: &Ctx, asks: &[Ask], f: Option<&Failed>, ask: Option<&str>) -> Markup {
    let now = system_now();
    let kind = typed(f, "post", "kind");
    let chosen_ask = if f.is_some_and(|f| f.form == "post") {
        typed(f, "post", "ask")
    } else {
        ask.unwrap_or("").to_string()
    };
    let invalid = |field: &str| error_id(f, "post", field);
    html! {
        form.post method="post" action=(format!("{}/post", ctx.base())) {
            input type="hidden" name="form" value="post";
            (field_error(f, "post", "form"))
            div.row {
                div {
                    label for="post-kind" { "Kind" }
                    select #post-kind name="kind" {
                        (options(&kind, &[("idea".into(), "Idea".into()), ("question".into(), "Question".into()), ("review".into(), "Review".into())]))
                    }
                }
                div.grow {
                    label for="post-title" { "Title" }
                    input #post-title name="title" maxlength="300" value=(typed(f, "post", "title"))
                        aria-invalid=[invalid("title").map(|_| "true")] aria-describedby=[invalid("title")];
                    (field_error(f, "post", "title"))
                }
            }
            label for="post-body" { "Text " span.hint { "(Markdown)" } }
            textarea #post-body name="body" rows="4" aria-invalid=[invalid("body").map(|_| "true")] aria-describedby=[invalid("body")] { (typed(f, "post", "body")) }
            (field_error(f, "post", "body"))
            div.row {
                div.grow {
                    label for="post-tags" { "Tags " span.hint { "(separated by commas)" } }
                    input #post-tags name="tags" value=(typed(f, "post", "tags")) aria-invalid=[invalid("tag").map(|_| "true")] aria-describedby=[invalid("tag")];
                    (field_error(f, "post", "tag"))
                }
                div {
                    label for="post-ask" { "In answer to an ask" }
                    select #post-ask name="ask" aria-invalid=[invalid("ask").map(|_| "true")] aria-describedby=[invalid("ask")] {
                        option value="" { "(none)" }
                        @for a in asks.iter().filter(|a| a.deadline > now) {
                            option value=(a.id) selected[a.id == chosen_ask] { (a.title) }
                        }
                    }
                    (field_error(f, "post", "ask"))
                }
            }
            button type="submit" { "Post" }
        }
    }
}

pub(crate) async fn render(
    state: &UiState,
    topic: &str,
    filters: Filters,
    failed: Option<Failed>,
) -> Response {
    let loaded = async {
        let ctx = Ctx::load(state, Some(topic)).await?;
        let t = Some(ctx.topic_id());
        let asks: Vec<Ask> = state.call_as(Request::AskList { topic: t.clone() }).await?;
        let members: Vec<MemberView> = state.call_as(Request::MemberList { topic: t }).await?;
        let items = load_items(state, &ctx.topic_id(), &filters).await;
        Ok::<_, UiError>((ctx, asks, members, items))
    }
    .await;
    let (ctx, asks, members, items) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return error_page(state, e).await,
    };
    let base = ctx.base();
    let back = back_of(&ctx, &filters);
    let query = filters.query();
    let f = failed.as_ref();
    let kinds: Vec<(String, String)> = std::iter::once((String::new(), "All kinds".to_string()))
        .chain(Kind::ALL.iter().map(|k| (k.to_string(), k.to_string())))
        .collect();
    let ask_choices: Vec<(String, String)> =
        std::iter::once((String::new(), "Any ask".to_string()))
            .chain(asks.iter().map(|a| (a.id.clone(), a.title.clone())))
            .collect();
    let author_choices: Vec<(String, String)> =
        std::iter::once((String::new(), "Anyone".to_string()))
            .chain(members.iter().filter(|m| m.status.is_visible()).map(|m| {
                let name = if m.member.name.is_empty() {
                    m.member.short.clone()
                } else {
                    format!("{} ({})", m.member.name, m.member.short)
                };
                (m.member.id.clone(), name)
            }))
            .collect();
    let content = html! {
        details.compose open[f.is_some_and(|f| f.form == "post")] {
            summary { "New idea, question or review" }
            (post_form(&ctx, &asks, f, filters.ask.as_deref()))
        }
        form.filters method="get" action=(base) role="search" {
            div {
                label for="f-q" { "Search" }
                input #f-q type="search" name="q" value=(filters.value("q")) placeholder="words in title, text or tags";
            }
            div {
                label for="f-kind" { "Kind" }
                select #f-kind name="kind" { (options(&filters.value("kind"), &kinds)) }
            }
            div {
                label for="f-tag" { "Tag" }
                input #f-tag name="tag" value=(filters.value("tag")) size="10";
            }
            div {
                label for="f-ask" { "Ask" }
                select #f-ask name="ask" { (options(&filters.value("ask"), &ask_choices)) }
            }
            div {
                label for="f-author" { "Author" }
                select #f-author name="author" { (options(&filters.value("author"), &author_choices)) }
            }
            div.actions {
                button type="submit" { "Filter" }
                @if !query.is_empty() { " " a href=(base) { "Clear" } }
            }
        }
        @if !filters.words.is_empty() {
            p.hint { "Searching the newest " (SEARCHED) " contributions that match the filters." }
        }
        @match &items {
            Ok(items) => {
                section #feed-list aria-live="polite" aria-label="Contributions"
                    data-live=(format!("{base}/items{}", if query.is_empty() { String::new() } else { format!("?{query}") })) {
                    (list(&ctx, items, &back, !query.is_empty()))
                }
            }
            Err(e) => { p.error role="alert" { (layout::sentence(&e.to_string())) } }
        }
    };
    let title = ctx
        .topic
        .as_ref()
        .map(|t| t.name.clone())
        .unwrap_or_default();
    let status = if failed.is_some() || items.is_err() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(status, shell(&ctx, &title, Nav::Feed, content))
}

/// `POST /t/{topic}/post`: post a contribution. Ideas, questions and reviews come from the
/// feed; answers and comments from a thread (`parent`), responses to asks from either.
pub(crate) async fn post(
    State(state): State<Arc<UiState>>,
    Path(topic): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let kind_text = given(&fields, "kind").unwrap_or_else(|| "idea".into());
    let kind: Option<Kind> = serde_json::from_value(serde_json::Value::String(kind_text)).ok();
    let parent = given(&fields, "parent");
    let form = if parent.is_some() { "reply" } else { "post" };
    let result = match kind {
        None => Err(UiError::Node("choose a kind of contribution".into())),
        Some(kind) => {
            state
                .call(Request::Post {
                    topic: Some(topic.clone()),
                    kind,
                    title: fields.get("title").cloned().unwrap_or_default(),
                    body: fields.get("body").cloned().unwrap_or_default(),
                    tags: tags(&fields.get("tags").cloned().unwrap_or_default()),
                    parent: parent.clone(),
                    ask: given(&fields, "ask"),
                })
                .await
        }
    };
    match result {
        Ok(value) => {
            let id = value["id"].as_str().unwrap_or("");
            let target = match &parent {
                Some(_) => format!("{}#c-{id}", back_to(&fields, format!("/t/{topic}"))),
                None => back_to(&fields, format!("/t/{topic}")),
            };
            Redirect::to(&target).into_response()
        }
        Err(e) => {
            let message = e.to_string();
            let failed = Failed::new(
                form,
                fields.clone(),
                &["title", "body", "tag", "ask", "parent"],
                message,
            );
            match parent {
                Some(parent) => super::thread::render(&state, &topic, &parent, Some(failed)).await,
                None => render(&state, &topic, Filters::default(), Some(failed)).await,
            }
        }
    }
}

/// `GET /t/{topic}/asks`: the asks, open ones first, each with a form to respond before its
/// deadline.
pub(crate) async fn asks(State(state): State<Arc<UiState>>, Path(topic): Path<String>) -> Response {
    let loaded = async {
        let ctx = Ctx::load(&state, Some(&topic)).await?;
        let asks: Vec<Ask> = state
            .call_as(Request::AskList {
                topic: Some(ctx.topic_id()),
            })
            .await?;
        Ok::<_, UiError>((ctx, asks))
    }
    .await;
    let (ctx, asks) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return error_page(&state, e).await,
    };
    let now = system_now();
    let base = ctx.base();
    let (open, closed): (Vec<&Ask>, Vec<&Ask>) = asks.iter().partition(|a| a.deadline > now);
    let content = html! {
        @if asks.is_empty() {
            p { "No asks yet." @if ctx.admin() { " Open one on the " a href=(format!("{base}/admin#asks")) { "admin page" } "." } }
        }
        @for ask in open.iter().chain(closed.iter()) {
            article.ask id=(format!("ask-{}", ask.id)) {
                h2 { (ask.title) }
                p.meta {
                    @if ask.deadline > now { "Open, closes " (when(ask.deadline)) } @else { "Closed " (when(ask.deadline)) }
                    " · " a href=(format!("{base}?ask={}", ask.id)) { "See the responses" }
                }
                div.body { (layout::body(&ask.body)) }
                @if ask.deadline > now {
                    details {
                        summary { "Respond with an idea" }
                        form method="post" action=(format!("{base}/post")) {
                            input type="hidden" name="kind" value="idea";
                            input type="hidden" name="ask" value=(ask.id);
                            input type="hidden" name="back" value=(format!("{base}?ask={}", ask.id));
                            label for=(format!("ask-{}-title", ask.id)) { "Title" }
                            input id=(format!("ask-{}-title", ask.id)) name="title" required maxlength="300";
                            label for=(format!("ask-{}-body", ask.id)) { "Text" }
                            textarea id=(format!("ask-{}-body", ask.id)) name="body" rows="3" {}
                            button type="submit" { "Respond" }
                        }
                    }
                }
            }
        }
    };
    respond(StatusCode::OK, shell(&ctx, "Asks", Nav::Asks, content))
}
