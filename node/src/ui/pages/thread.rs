//! A thread: the contribution, its answers ranked with the accepted one first, its comments;
//! and the actions on it (answer, comment, edit, retract, endorse, kudos, accept).

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use catchment_crdt::schema::Kind;
use maud::{html, Markup};

use super::{endorse_buttons, given, tags};
use crate::ops::Request;
use crate::query::{Item, Thread};
use crate::ui::layout::{
    self, error_id, error_page, field_error, shell, typed, when, who, Ctx, Failed, Nav,
};
use crate::ui::{back_to, html as respond, Fields, UiError, UiState};

/// `GET /t/{topic}/c/{id}`.
pub(crate) async fn page(
    State(state): State<Arc<UiState>>,
    Path((topic, id)): Path<(String, String)>,
) -> Response {
    render(&state, &topic, &id, None).await
}

struct View<'a> {
    ctx: &'a Ctx,
    root: &'a Item,
    back: String,
    failed: Option<&'a Failed>,
}

fn reply_form(v: &View, parent: &Item, kind: Kind, open: bool) -> Markup {
    let f = v.failed.filter(|f| {
        f.form == "reply"
            && f.fields.get("parent").map(String::as_str) == Some(parent.id.as_str())
            && f.fields.get("kind").map(String::as_str) == Some(kind.as_str())
    });
    let id = format!("reply-{}-{}", kind, parent.id);
    let what = if kind == Kind::Answer {
        "Answer"
    } else {
        "Comment"
    };
    html! {
        details.reply open[open || f.is_some()] {
            summary { (what) }
            form method="post" action=(format!("{}/post", v.ctx.base())) {
                input type="hidden" name="kind" value=(kind.as_str());
                input type="hidden" name="parent" value=(parent.id);
                input type="hidden" name="back" value=(v.back);
                (field_error(f, "reply", "form"))
                label for=(id) { "Your " (what.to_lowercase()) " " span.hint { "(Markdown)" } }
                textarea id=(id) name="body" rows="3" required
                    aria-invalid=[error_id(f, "reply", "body").map(|_| "true")] aria-describedby=[error_id(f, "reply", "body")] {
                    (typed(f, "reply", "body"))
                }
                (field_error(f, "reply", "body"))
                button type="submit" { "Post " (what.to_lowercase()) }
            }
        }
    }
}

fn kudos_form(v: &View, item: &Item) -> Markup {
    let f = v.failed.filter(|f| {
        f.form == "kudos" && f.fields.get("about").map(String::as_str) == Some(item.id.as_str())
    });
    let id = format!("kudos-{}", item.id);
    html! {
        details.kudos open[f.is_some()] {
            summary { "Kudos" }
            form method="post" action=(format!("{}/m/{}/kudos", v.ctx.base(), item.author.id)) {
                input type="hidden" name="about" value=(item.id);
                input type="hidden" name="back" value=(v.back);
                label for=(id) { "A note for " (if item.author.name.is_empty() { item.author.short.clone() } else { item.author.name.clone() }) }
                input id=(id) name="note" maxlength="500" value=(typed(f, "kudos", "note"))
                    aria-invalid=[error_id(f, "kudos", "note").map(|_| "true")] aria-describedby=[error_id(f, "kudos", "note")];
                (field_error(f, "kudos", "note"))
                button type="submit" { "Give kudos" }
            }
        }
    }
}

fn edit_form(v: &View, item: &Item) -> Markup {
    let f = v.failed.filter(|f| f.form == "edit");
    let value = |name: &str, current: String| {
        if f.is_some() {
            typed(f, "edit", name)
        } else {
            current
        }
    };
    let invalid = |field: &str| error_id(f, "edit", field);
    html! {
        details.edit open[f.is_some()] {
            summary { "Edit" }
            form method="post" action=(format!("{}/c/{}/edit", v.ctx.base(), item.id)) {
                (field_error(f, "edit", "form"))
                @if !matches!(item.kind, Kind::Answer | Kind::Comment) {
                    label for=(format!("edit-title-{}", item.id)) { "Title" }
                    input id=(format!("edit-title-{}", item.id)) name="title" maxlength="300" value=(value("title", item.title.clone()))
                        aria-invalid=[invalid("title").map(|_| "true")] aria-describedby=[invalid("title")];
                    (field_error(f, "edit", "title"))
                }
                label for=(format!("edit-body-{}", item.id)) { "Text" }
                textarea id=(format!("edit-body-{}", item.id)) name="body" rows="5"
                    aria-invalid=[invalid("body").map(|_| "true")] aria-describedby=[invalid("body")] { (value("body", item.body.clone())) }
                (field_error(f, "edit", "body"))
                label for=(format!("edit-tags-{}", item.id)) { "Tags" }
                input id=(format!("edit-tags-{}", item.id)) name="tags" value=(value("tags", item.tags.join(", ")))
                    aria-invalid=[invalid("tag").map(|_| "true")] aria-describedby=[invalid("tag")];
                (field_error(f, "edit", "tag"))
                button type="submit" { "Save" }
            }
        }
    }
}

fn actions(v: &View, item: &Item) -> Markup {
    let base = v.ctx.base();
    let mine = item.author.id == v.ctx.me;
    let root_mine = v.root.author.id == v.ctx.me;
    let can_accept = v.root.kind == Kind::Question
        && item.kind == Kind::Answer
        && item.parent.as_deref() == Some(v.root.id.as_str())
        && root_mine
        && !mine
        && v.root.accepted.as_deref() != Some(item.id.as_str());
    html! {
        div.actions {
            @if item.retracted {
            } @else if mine {
                (edit_form(v, item))
                form.inline method="post" action=(format!("{base}/c/{}/retract", item.id)) {
                    button type="submit" .danger data-confirm="Retract this contribution? It leaves every feed and count." { "Retract" }
                }
            } @else {
                (endorse_buttons(&base, item, &v.back))
                (kudos_form(v, item))
            }
            @if can_accept {
                form.inline method="post" action=(format!("{base}/c/{}/accept", item.id)) {
                    input type="hidden" name="back" value=(v.back);
                    button type="submit" .accept { "Accept this answer" }
                }
            }
        }
    }
}

fn entry(v: &View, thread: &Thread, depth: usize) -> Markup {
    let item = &thread.item;
    let base = v.ctx.base();
    let accepted = item.kind == Kind::Answer && item.accepted.as_deref() == Some(item.id.as_str());
    html! {
        article.entry.accepted-answer[accepted] id=(format!("c-{}", item.id)) data-id=(item.id) {
            header {
                span class=(format!("kind kind-{}", item.kind)) { (item.kind) }
                @if accepted { " " span.accepted { "accepted answer" } }
                @if item.retracted { " " span.retracted { "retracted" } }
                @if let Some(reason) = &item.hidden { " " span.retracted { "hidden: " (reason) } }
                @if depth > 0 && !item.title.is_empty() { " " strong { (item.title) } }
            }
            div.body { (layout::body(&item.body)) }
            footer.meta {
                (who(&base, &item.author)) " · " (when(item.created))
                @if let Some(edited) = item.edited { " · edited " (when(edited)) }
                @for tag in &item.tags { " " a.tag href=(format!("{base}?tag={}", super::urlencode(tag))) { "#" (tag) } }
                " · " span.score { "score " (item.score) }
            }
            (actions(v, item))
            @if !item.retracted && depth < 3 {
                @if depth == 0 && item.kind == Kind::Question { (reply_form(v, item, Kind::Answer, thread.replies.is_empty())) }
                (reply_form(v, item, Kind::Comment, false))
            }
            @if !thread.replies.is_empty() {
                div.replies {
                    @if depth == 0 && item.kind == Kind::Question {
                        @let answers = thread.replies.iter().filter(|r| r.item.kind == Kind::Answer).count();
                        h3 { (answers) " " (if answers == 1 { "answer" } else { "answers" }) }
                    }
                    @for reply in &thread.replies { (entry(v, reply, depth + 1)) }
                }
            }
        }
    }
}

/// Renders a thread, with a failed form's input and error if there is one.
pub(crate) async fn render(
    state: &UiState,
    topic: &str,
    id: &str,
    failed: Option<Failed>,
) -> Response {
    let loaded = async {
        let ctx = Ctx::load(state, Some(topic)).await?;
        let thread: Thread = state
            .call_as(Request::Show {
                topic: Some(ctx.topic_id()),
                id: id.to_string(),
            })
            .await?;
        Ok::<_, UiError>((ctx, thread))
    }
    .await;
    let (ctx, thread) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return error_page(state, e).await,
    };
    let view = View {
        ctx: &ctx,
        root: &thread.item,
        back: format!("{}/c/{}", ctx.base(), thread.item.id),
        failed: failed.as_ref(),
    };
    let mut title = layout::label(&thread.item);
    if thread.item.title.is_empty() {
        title = format!("{}: {title}", thread.item.kind);
    }
    let general = failed
        .as_ref()
        .filter(|f| matches!(f.form, "endorse" | "accept" | "retract"));
    let content = html! {
        @if let Some(f) = general {
            p.error role="alert" { (f.message) }
        }
        @if let Some(parent) = &thread.item.parent {
            p { a href=(format!("{}/c/{parent}", ctx.base())) { "↑ What this replies to" } }
        }
        (entry(&view, &thread, 0))
    };
    let status = if failed.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(status, shell(&ctx, &title, Nav::Feed, content))
}

async fn act(
    state: &UiState,
    topic: &str,
    id: &str,
    fields: Fields,
    form: &'static str,
    request: Request,
    next: String,
) -> Response {
    match state.call(request).await {
        Ok(_) => Redirect::to(&back_to(&fields, next)).into_response(),
        Err(e) => {
            let failed = Failed::new(form, fields, &["title", "body", "tag"], e.to_string());
            render(state, topic, id, Some(failed)).await
        }
    }
}

/// `POST /t/{topic}/c/{id}/edit`.
pub(crate) async fn edit(
    State(state): State<Arc<UiState>>,
    Path((topic, id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let request = Request::Edit {
        topic: Some(topic.clone()),
        id: id.clone(),
        title: fields.get("title").cloned(),
        body: fields.get("body").cloned(),
        tags: fields.get("tags").map(|t| tags(t)),
    };
    let next = format!("/t/{topic}/c/{id}");
    act(&state, &topic, &id, fields, "edit", request, next).await
}

/// `POST /t/{topic}/c/{id}/retract`.
pub(crate) async fn retract(
    State(state): State<Arc<UiState>>,
    Path((topic, id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let request = Request::Retract {
        topic: Some(topic.clone()),
        id: id.clone(),
    };
    let next = format!("/t/{topic}");
    act(&state, &topic, &id, fields, "retract", request, next).await
}

/// `POST /t/{topic}/c/{id}/endorse` with `value` 1, -1 or 0.
pub(crate) async fn endorse(
    State(state): State<Arc<UiState>>,
    Path((topic, id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let value: i8 = match given(&fields, "value").as_deref() {
        Some("1") | Some("+1") => 1,
        Some("-1") => -1,
        Some("0") => 0,
        _ => {
            return error_page(
                &state,
                UiError::Node("an endorsement is +1, -1 or 0".into()),
            )
            .await
        }
    };
    let request = Request::Endorse {
        topic: Some(topic.clone()),
        id: id.clone(),
        value,
    };
    let next = format!("/t/{topic}/c/{id}");
    act(&state, &topic, &id, fields, "endorse", request, next).await
}

/// `POST /t/{topic}/c/{id}/accept`: accept an answer to one's own question.
pub(crate) async fn accept(
    State(state): State<Arc<UiState>>,
    Path((topic, id)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let request = Request::Accept {
        topic: Some(topic.clone()),
        answer: id.clone(),
    };
    let next = format!("/t/{topic}/c/{id}");
    act(&state, &topic, &id, fields, "accept", request, next).await
}
