//! The admin page of a topic: invites (with a QR code), members and their roles, pending
//! admissions, asks and the score's weights.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use catchment_crdt::membership::Status;
use catchment_crdt::schema::{Role, Weights};
use maud::{html, Markup, PreEscaped};
use serde_json::Value;

use super::given;
use crate::engine::system_now;
use crate::invites::{InviteView, PendingAdmission};
use crate::ops::{Request, TopicView};
use crate::ui::layout::{
    error_id, error_page, field_error, shell, typed, when, who, Ctx, Failed, Nav,
};
use crate::ui::{html as respond, svg, Fields, UiError, UiState};

const HOUR: i64 = 3600 * 1000;

/// `GET /t/{topic}/admin`.
pub(crate) async fn page_handler(state: &UiState, topic: &str) -> Response {
    render(state, topic, None, None).await
}

/// `GET /t/{topic}/admin`.
pub(crate) async fn page(State(state): State<Arc<UiState>>, Path(topic): Path<String>) -> Response {
    page_handler(&state, &topic).await
}

fn input(
    f: Option<&Failed>,
    form: &str,
    name: &str,
    label: &str,
    kind: &str,
    value: String,
) -> Markup {
    let id = format!("{form}-{name}");
    let value = if f.is_some_and(|f| f.form == form) {
        typed(f, form, name)
    } else {
        value
    };
    html! {
        label for=(id) { (label) }
        input id=(id) name=(name) type=(kind) value=(value)
            aria-invalid=[error_id(f, form, name).map(|_| "true")] aria-describedby=[error_id(f, form, name)];
        (field_error(f, form, name))
    }
}

fn invite_result(value: &Value) -> Markup {
    let text = value["invite"].as_str().unwrap_or("");
    html! {
        section.new-invite aria-labelledby="new-invite" {
            h2 #new-invite { "New invite" }
            p { "Give this to the person you invite; they paste it under “Join a topic”, or scan the code." }
            textarea #invite-text readonly rows="4" aria-label="The invite" { (text) }
            button type="button" data-copy="#invite-text" { "Copy" }
            @match svg::qr(text) {
                Some(qr) => { figure.qr { (PreEscaped(qr)) } }
                None => { p.hint { "This invite is too long for a QR code: copy the text." } }
            }
            p.meta {
                "Role " (value["role"].as_str().unwrap_or("member"))
                " · " @match value["expires"].as_i64() { Some(t) => { "expires " (when(t)) }, None => { "never expires" } }
                " · " @match value["uses"].as_u64() { Some(n) => { (n) " uses" }, None => { "no use limit" } }
            }
        }
    }
}

async fn render(
    state: &UiState,
    topic: &str,
    failed: Option<Failed>,
    created: Option<Value>,
) -> Response {
    let loaded = async {
        let ctx = Ctx::load(state, Some(topic)).await?;
        let t = Some(ctx.topic_id());
        let view: TopicView = state
            .call_as(Request::TopicShow { topic: t.clone() })
            .await?;
        let invites: Vec<InviteView> = state
            .call_as(Request::InviteList { topic: t.clone() })
            .await?;
        let pending: Vec<PendingAdmission> =
            state.call_as(Request::MemberPending { topic: t }).await?;
        Ok::<_, UiError>((ctx, view, invites, pending))
    }
    .await;
    let (ctx, view, invites, pending) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return error_page(state, e).await,
    };
    let f = failed.as_ref();
    let base = ctx.base();
    let now = system_now();
    let action = |a: &str| format!("{base}/admin/{a}");
    let weights = view.weights;
    let content = html! {
        @if !ctx.admin() {
            p.error role="alert" { "Only the topic's admins can change these; you can look." }
        }
        @if let Some(value) = &created { (invite_result(value)) }
        section #invites aria-labelledby="invites-heading" {
            h2 #invites-heading { "Invites" }
            form method="post" action=(action("invite")) {
                (field_error(f, "invite", "form"))
                div.row {
                    div {
                        label for="invite-role" { "Role" }
                        select #invite-role name="role" {
                            option value="member" selected[typed(f, "invite", "role") != "admin"] { "member" }
                            option value="admin" selected[typed(f, "invite", "role") == "admin"] { "admin" }
                        }
                    }
                    div { (input(f, "invite", "days", "Expires after (days, blank: never)", "number", "7".into())) }
                    div { (input(f, "invite", "uses", "Uses (blank: no limit)", "number", String::new())) }
                }
                button type="submit" #create-invite { "Create invite" }
            }
            @if !invites.is_empty() {
                div.scroll {
                    table.invites {
                        thead { tr { th { "Invite" } th { "Role" } th { "Expires" } th { "Used" } th { "State" } th { span.sr { "Action" } } } }
                        tbody {
                            @for i in &invites {
                                tr {
                                    td.key { (i.short) }
                                    td { (i.role) }
                                    td { @match i.expires { Some(t) => { (when(t)) }, None => { "never" } } }
                                    td { (i.used) @if let Some(u) = i.uses { " of " (u) } }
                                    td { @if i.revoked { "revoked" } @else if i.expired { "expired" } @else if i.uses.is_some_and(|u| i.used >= u as usize) { "used up" } @else { "valid" } }
                                    td { @if !i.revoked {
                                        form.inline method="post" action=(action("revoke")) {
                                            input type="hidden" name="invite" value=(i.id);
                                            button type="submit" .danger aria-label=(format!("Revoke invite {}", i.short)) { "Revoke" }
                                        }
                                    } }
                                }
                            }
                        }
                    }
                }
            }
            (field_error(f, "revoke", "form"))
        }
        section #members aria-labelledby="members-heading" {
            h2 #members-heading { "Members" }
            (field_error(f, "role", "form"))
            (field_error(f, "remove", "form"))
            div.scroll {
                table.members {
                    thead { tr { th { "Member" } th { "Standing" } th { "Role" } th { span.sr { "Remove" } } } }
                    tbody {
                        @for m in &view.members {
                            tr {
                                td { (who(&base, &m.member)) }
                                td { (m.status.describe()) }
                                td {
                                    @if let Status::Admitted(role) = m.status {
                                        form.inline method="post" action=(action("role")) {
                                            input type="hidden" name="member" value=(m.member.id);
                                            label.sr for=(format!("role-{}", m.member.id)) { "Role of " (m.member.name) }
                                            select id=(format!("role-{}", m.member.id)) name="role" {
                                                option value="member" selected[role == Role::Member] { "member" }
                                                option value="admin" selected[role == Role::Admin] { "admin" }
                                            }
                                            button type="submit" { "Set" }
                                        }
                                    }
                                }
                                td {
                                    @if matches!(m.status, Status::Admitted(_)) && m.member.id != ctx.me {
                                        form.inline method="post" action=(action("remove")) {
                                            input type="hidden" name="member" value=(m.member.id);
                                            button type="submit" .danger data-confirm="Remove this member? What they wrote stays." aria-label=(format!("Remove {}", m.member.name)) { "Remove" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !pending.is_empty() {
                h3 { "Waiting for an admin" }
                (field_error(f, "admit", "form"))
                ul {
                    @for p in &pending {
                        li {
                            (who(&base, &p.member)) " · " (p.status.describe())
                            @if let Some(inv) = &p.invite { " · invite " span.key { (inv) } }
                            " "
                            form.inline method="post" action=(action("admit")) { input type="hidden" name="member" value=(p.member.id); button type="submit" { "Admit" } }
                            form.inline method="post" action=(action("refuse")) { input type="hidden" name="member" value=(p.member.id); button type="submit" .danger { "Refuse" } }
                        }
                    }
                }
            }
        }
        section #asks aria-labelledby="asks-heading" {
            h2 #asks-heading { "Asks" }
            @for a in &view.asks {
                p { strong { (a.title) } " · " @if a.deadline > now { "closes " } @else { "closed " } (when(a.deadline)) }
            }
            form method="post" action=(action("ask")) {
                (field_error(f, "ask", "form"))
                (input(f, "ask", "title", "Title", "text", String::new()))
                label for="ask-body" { "What you are asking for" }
                textarea #ask-body name="body" rows="3" { (typed(f, "ask", "body")) }
                (input(f, "ask", "hours", "Open for (hours)", "number", "168".into()))
                button type="submit" { "Open the ask" }
            }
        }
        section #weights aria-labelledby="weights-heading" {
            h2 #weights-heading { "Score weights" }
            form method="post" action=(action("weights")) {
                (field_error(f, "weights", "form"))
                div.grid {
                    @for name in Weights::NAMES.iter().copied() {
                        div { (input(f, "weights", name, name, "number", weight(&weights, name).to_string())) }
                    }
                }
                button type="submit" { "Save weights" }
            }
        }
    };
    let status = if failed.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(status, shell(&ctx, "Admin", Nav::Admin, content))
}

fn weight(weights: &Weights, name: &str) -> i64 {
    let value = serde_json::to_value(weights).unwrap_or_default();
    value[name].as_i64().unwrap_or(0)
}

fn number(fields: &Fields, name: &str, what: &str) -> Result<Option<i64>, (&'static str, String)> {
    match given(fields, name) {
        None => Ok(None),
        Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
            (
                "form",
                format!("{what} must be a whole number, not {text:?}"),
            )
        }),
    }
}

/// `POST /t/{topic}/admin/{action}`: invite, revoke, role, remove, admit, refuse, ask,
/// weights.
pub(crate) async fn act(
    State(state): State<Arc<UiState>>,
    Path((topic, action)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let t = Some(topic.clone());
    let member = || fields.get("member").cloned().unwrap_or_default();
    let now = system_now();
    let (form, request): (&'static str, Result<Request, (&'static str, String)>) =
        match action.as_str() {
            "invite" => (
                "invite",
                (|| {
                    let days = number(&fields, "days", "Days").map_err(|(_, m)| ("days", m))?;
                    let uses = number(&fields, "uses", "Uses").map_err(|(_, m)| ("uses", m))?;
                    if days.is_some_and(|d| d <= 0) {
                        return Err((
                            "days",
                            "an invite must last at least one day; leave it blank to never expire"
                                .into(),
                        ));
                    }
                    let uses = match uses {
                        Some(u) if !(1..=1_000_000).contains(&u) => {
                            return Err((
                                "uses",
                                "uses must be at least 1; leave it blank for no limit".into(),
                            ))
                        }
                        u => u.map(|u| u as u32),
                    };
                    let role = if fields.get("role").map(String::as_str) == Some("admin") {
                        Role::Admin
                    } else {
                        Role::Member
                    };
                    Ok(Request::InviteCreate {
                        topic: t.clone(),
                        role,
                        expires: days.map(|d| now + d.saturating_mul(24 * HOUR)),
                        uses,
                        addresses: Vec::new(),
                    })
                })(),
            ),
            "revoke" => (
                "revoke",
                Ok(Request::InviteRevoke {
                    topic: t.clone(),
                    invite: fields.get("invite").cloned().unwrap_or_default(),
                }),
            ),
            "role" => (
                "role",
                Ok(Request::MemberRole {
                    topic: t.clone(),
                    member: member(),
                    role: if fields.get("role").map(String::as_str) == Some("admin") {
                        Role::Admin
                    } else {
                        Role::Member
                    },
                }),
            ),
            "remove" => (
                "remove",
                Ok(Request::MemberRemove {
                    topic: t.clone(),
                    member: member(),
                }),
            ),
            "admit" => (
                "admit",
                Ok(Request::MemberAdmit {
                    topic: t.clone(),
                    member: member(),
                }),
            ),
            "refuse" => (
                "admit",
                Ok(Request::MemberRefuse {
                    topic: t.clone(),
                    member: member(),
                }),
            ),
            "ask" => (
                "ask",
                (|| {
                    let hours = number(&fields, "hours", "Hours")
                        .map_err(|(_, m)| ("hours", m))?
                        .unwrap_or(0);
                    if hours <= 0 {
                        return Err(("hours", "an ask must stay open at least one hour".into()));
                    }
                    Ok(Request::AskCreate {
                        topic: t.clone(),
                        title: fields.get("title").cloned().unwrap_or_default(),
                        body: fields.get("body").cloned().unwrap_or_default(),
                        deadline: now + hours.saturating_mul(HOUR),
                    })
                })(),
            ),
            "weights" => (
                "weights",
                (|| {
                    let mut set = Vec::new();
                    for name in Weights::NAMES.iter().copied() {
                        if let Some(v) = number(&fields, name, name).map_err(|(_, m)| (name, m))? {
                            set.push((name.to_string(), v));
                        }
                    }
                    Ok(Request::Weights {
                        topic: t.clone(),
                        set,
                    })
                })(),
            ),
            _ => return error_page(&state, UiError::NotFound).await,
        };
    let request = match request {
        Ok(request) => request,
        Err((field, message)) => {
            let failed = Failed::new(form, fields, &[], message);
            return render(&state, &topic, Some(Failed { field, ..failed }), None).await;
        }
    };
    match state.call(request).await {
        Ok(value) if form == "invite" => render(&state, &topic, None, Some(value)).await,
        Ok(_) => Redirect::to(&format!("/t/{topic}/admin#{form}s")).into_response(),
        Err(e) => {
            let candidates: &[&'static str] = match form {
                "ask" => &["title", "body", "deadline"],
                "invite" => &["uses", "expir"],
                _ => &[],
            };
            let message = e.to_string();
            let weight = Weights::NAMES
                .iter()
                .copied()
                .find(|name| message.contains(&format!("weight {name} ")));
            let mut failed = Failed::new(form, fields, candidates, message);
            if let (Some(name), "weights") = (weight, form) {
                failed.field = name;
            }
            if failed.field == "expir" {
                failed.field = "days";
            }
            if failed.field == "deadline" {
                failed.field = "hours";
            }
            render(&state, &topic, Some(failed), None).await
        }
    }
}
