//! The topics page: the topics held here, creating one, and joining one with an invite.

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::given;
use crate::ops::Request;
use crate::ui::layout::{error_page, field_error, shell, typed, when, Ctx, Failed, Nav};
use crate::ui::{html as respond, Fields, UiState};

/// `GET /`.
pub(crate) async fn index(State(state): State<Arc<UiState>>) -> Response {
    render(&state, None).await
}

async fn render(state: &UiState, failed: Option<Failed>) -> Response {
    let ctx = match Ctx::load(state, None).await {
        Ok(ctx) => ctx,
        Err(e) => return error_page(state, e).await,
    };
    let f = failed.as_ref();
    let content = html! {
        section aria-labelledby="your-topics" {
            h2 #your-topics { "Your topics" }
            @if ctx.topics.is_empty() {
                p { "No topics yet. Create one, or join one with an invite from a colleague." }
            } @else {
                ul.topics {
                    @for t in &ctx.topics {
                        li {
                            a href=(format!("/t/{}", t.id)) { (t.name) }
                            span.meta { " · " (t.status) " · " (t.members) " members · created " (when(t.created)) }
                        }
                    }
                }
            }
        }
        div.columns {
            section aria-labelledby="create-heading" {
                h2 #create-heading { "Create a topic" }
                form method="post" action="/topics" {
                    (field_error(f, "create", "form"))
                    label for="create-name" { "Name" }
                    input #create-name name="name" required maxlength="200" value=(typed(f, "create", "name"))
                        aria-invalid=[f.filter(|f| f.form == "create").map(|_| "true")]
                        aria-describedby=[f.filter(|f| f.form == "create").map(|_| "create-name-error")];
                    (field_error(f, "create", "name"))
                    button type="submit" { "Create" }
                }
            }
            section aria-labelledby="join-heading" {
                h2 #join-heading { "Join a topic" }
                form method="post" action="/join" {
                    label for="join-invite" { "Invite" }
                    p.hint { "Paste the invite you were given; it starts with catchment1." }
                    textarea #join-invite name="invite" rows="4" required
                        aria-invalid=[f.filter(|f| f.form == "join").map(|_| "true")]
                        aria-describedby=[f.filter(|f| f.form == "join").map(|_| "join-invite-error")] {
                        (typed(f, "join", "invite"))
                    }
                    (field_error(f, "join", "invite"))
                    button type="submit" { "Join" }
                }
            }
        }
    };
    let status = if failed.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(status, shell(&ctx, "Topics", Nav::Topics, content))
}

/// `POST /topics`: create a topic.
pub(crate) async fn create(
    State(state): State<Arc<UiState>>,
    Form(fields): Form<Fields>,
) -> Response {
    let name = given(&fields, "name").unwrap_or_default();
    match state.call(Request::TopicCreate { name }).await {
        Ok(value) => {
            Redirect::to(&format!("/t/{}", value["id"].as_str().unwrap_or(""))).into_response()
        }
        Err(e) => {
            let failed = Failed::new("create", fields, &[], e.to_string());
            let failed = Failed {
                field: "name",
                ..failed
            };
            render(&state, Some(failed)).await
        }
    }
}

/// `POST /join`: join a topic with a pasted invite.
pub(crate) async fn join(
    State(state): State<Arc<UiState>>,
    Form(fields): Form<Fields>,
) -> Response {
    // Pasted invites often carry line breaks or spaces from where they were copied.
    let invite: String = fields
        .get("invite")
        .map(|i| i.split_whitespace().collect())
        .unwrap_or_default();
    if invite.is_empty() {
        let failed = Failed::new("join", fields, &[], "paste an invite first".into());
        return render(
            &state,
            Some(Failed {
                field: "invite",
                ..failed
            }),
        )
        .await;
    }
    match state.call(Request::Join { invite }).await {
        Ok(value) => {
            let id = value["id"].as_str().unwrap_or("");
            Redirect::to(&format!("/t/{id}")).into_response()
        }
        Err(e) => {
            let failed = Failed::new(
                "join",
                fields,
                &[],
                format!("this invite does not work: {e}"),
            );
            render(
                &state,
                Some(Failed {
                    field: "invite",
                    ..failed
                }),
            )
            .await
        }
    }
}
