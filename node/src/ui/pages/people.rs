//! People: a member's profile (contributions by kind, recognition, activity per week, kudos)
//! and the topic's leaderboard with the score's weights explained.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use catchment_crdt::schema::{Kind, Weights};
use catchment_crdt::views::Recognition;
use maud::{html, Markup, PreEscaped};

use super::card;
use crate::engine::system_now;
use crate::ops::Request;
use crate::query::{Item, Leaderboard, ProfileView};
use crate::ui::layout::{
    error_id, error_page, field_error, shell, typed, when, who, Ctx, Failed, Nav,
};
use crate::ui::svg;
use crate::ui::{back_to, html as respond, Fields, UiError, UiState};

/// Weeks shown in a profile's activity chart.
const WEEKS: usize = 12;

fn plural(kind: Kind, n: u64) -> String {
    let word = kind.as_str();
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// `GET /t/{topic}/m/{member}`.
pub(crate) async fn profile(
    State(state): State<Arc<UiState>>,
    Path((topic, member)): Path<(String, String)>,
) -> Response {
    render(&state, &topic, &member, None).await
}

async fn render(state: &UiState, topic: &str, member: &str, failed: Option<Failed>) -> Response {
    let loaded = async {
        let ctx = Ctx::load(state, Some(topic)).await?;
        let t = Some(ctx.topic_id());
        let profile: ProfileView = state
            .call_as(Request::Profile {
                topic: t.clone(),
                member: Some(member.to_string()),
            })
            .await?;
        let all: Vec<Item> = state
            .call_as(Request::Feed {
                topic: t,
                kind: None,
                tag: None,
                ask: None,
                author: Some(profile.who.id.clone()),
                limit: 5000,
            })
            .await?;
        Ok::<_, UiError>((ctx, profile, all))
    }
    .await;
    let (ctx, profile, all) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return error_page(state, e).await,
    };
    let base = ctx.base();
    let me = profile.who.id == ctx.me;
    let f = failed.as_ref();
    let rec = &profile.recognition;
    let times: Vec<i64> = all.iter().map(|i| i.created).collect();
    let weeks = svg::per_week(&times, system_now(), WEEKS);
    let name = if profile.who.name.is_empty() {
        profile.who.short.clone()
    } else {
        profile.who.name.clone()
    };
    let back = format!("{base}/m/{}", profile.who.id);
    let content = html! {
        p.meta {
            span.key { (profile.who.id) }
            " · " (profile.status)
            @if profile.rank > 0 { " · rank " (profile.rank) }
        }
        @if !profile.about.is_empty() { p.about { (profile.about) } }
        div.columns {
            section aria-labelledby="contributions" {
                h2 #contributions { "Contributions" }
                @if rec.counts.is_empty() { p { "None yet." } }
                ul.counts {
                    @for (kind, n) in &rec.counts { li { (plural(*kind, *n)) } }
                }
            }
            section aria-labelledby="recognition" {
                h2 #recognition { "Recognition received" }
                dl.recognition {
                    dt { "Score" } dd #score { (rec.score) }
                    dt { "Net endorsement" } dd #endorsement { (rec.endorsement) }
                    dt { "Kudos" } dd #kudos-count { (rec.kudos) }
                    dt { "Accepted answers" } dd { (rec.accepted) }
                }
                p.hint { a href=(format!("{base}/leaderboard")) { "How the score is made" } }
            }
        }
        section aria-labelledby="activity" {
            h2 #activity { "Contributions per week" }
            figure.chart { (PreEscaped(svg::week_chart(&weeks))) figcaption { "The last " (WEEKS) " weeks, this week on the right." } }
        }
        @if !me {
            section aria-labelledby="give-kudos" {
                h2 #give-kudos { "Give " (name) " kudos" }
                form method="post" action=(format!("{base}/m/{}/kudos", profile.who.id)) {
                    input type="hidden" name="back" value=(back);
                    (field_error(f, "kudos", "form"))
                    label for="kudos-note" { "Note" }
                    input #kudos-note name="note" maxlength="500" value=(typed(f, "kudos", "note"))
                        aria-invalid=[error_id(f, "kudos", "note").map(|_| "true")] aria-describedby=[error_id(f, "kudos", "note")];
                    (field_error(f, "kudos", "note"))
                    button type="submit" { "Give kudos" }
                }
            }
        }
        section aria-labelledby="kudos" {
            h2 #kudos { "Kudos" }
            @if profile.kudos.is_empty() { p { "No kudos yet." } }
            ul.kudos-list {
                @for k in &profile.kudos {
                    li {
                        (who(&base, &k.from)) ": " (k.note) " · " (when(k.created))
                        @if let Some(c) = &k.contribution { " · " a href=(format!("{base}/c/{c}")) { "for this" } }
                    }
                }
            }
        }
        section aria-labelledby="recent" {
            h2 #recent { "Recent contributions" }
            @for item in &profile.recent { (card(&base, &ctx.me, item, &back)) }
        }
    };
    let title = if me { format!("{name} (you)") } else { name };
    let status = if failed.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(
        status,
        shell(
            &ctx,
            &title,
            if me { Nav::Me } else { Nav::Leaderboard },
            content,
        ),
    )
}

/// `POST /t/{topic}/m/{member}/kudos`: kudos with a note, perhaps about a contribution.
pub(crate) async fn kudos(
    State(state): State<Arc<UiState>>,
    Path((topic, member)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    let about = super::given(&fields, "about");
    let request = Request::Kudos {
        topic: Some(topic.clone()),
        member: member.clone(),
        note: fields.get("note").cloned().unwrap_or_default(),
        about: about.clone(),
    };
    match state.call(request).await {
        Ok(_) => Redirect::to(&back_to(&fields, format!("/t/{topic}/m/{member}"))).into_response(),
        Err(e) => {
            let failed = Failed::new("kudos", fields, &["note"], e.to_string());
            match about {
                Some(about) => super::thread::render(&state, &topic, &about, Some(failed)).await,
                None => render(&state, &topic, &member, Some(failed)).await,
            }
        }
    }
}

fn explain(weights: &Weights) -> Markup {
    let parts = [
        ("idea", weights.idea, "per idea"),
        ("question", weights.question, "per question"),
        ("answer", weights.answer, "per answer"),
        ("review", weights.review, "per review"),
        ("comment", weights.comment, "per comment"),
        (
            "endorsement",
            weights.endorsement,
            "per point of net endorsement received from others",
        ),
        ("kudos", weights.kudos, "per kudos received"),
        (
            "accepted",
            weights.accepted,
            "per answer accepted by the question's author",
        ),
    ];
    html! {
        p { "Each member's score adds up what they gave and received, each times its weight. The topic's admins set the weights; every node computes the same score from the same changes." }
        table.weights {
            caption { "The weights" }
            thead { tr { th scope="col" { "What" } th scope="col" { "Points" } } }
            tbody {
                @for (name, w, what) in parts {
                    tr { td { (name) " — " (what) } td.num { (w) } }
                }
            }
        }
    }
}

fn breakdown(rec: &Recognition, weights: &Weights) -> String {
    let mut parts: Vec<String> = rec
        .counts
        .iter()
        .map(|(k, n)| format!("{n} {k} × {}", weights.for_kind(*k)))
        .collect();
    if rec.endorsement != 0 {
        parts.push(format!(
            "{} endorsement × {}",
            rec.endorsement, weights.endorsement
        ));
    }
    if rec.kudos != 0 {
        parts.push(format!("{} kudos × {}", rec.kudos, weights.kudos));
    }
    if rec.accepted != 0 {
        parts.push(format!("{} accepted × {}", rec.accepted, weights.accepted));
    }
    parts.join(" + ")
}

/// `GET /t/{topic}/leaderboard`.
pub(crate) async fn leaderboard(
    State(state): State<Arc<UiState>>,
    Path(topic): Path<String>,
) -> Response {
    let loaded = async {
        let ctx = Ctx::load(&state, Some(&topic)).await?;
        let board: Leaderboard = state
            .call_as(Request::Leaderboard {
                topic: Some(ctx.topic_id()),
            })
            .await?;
        Ok::<_, UiError>((ctx, board))
    }
    .await;
    let (ctx, board) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return error_page(&state, e).await,
    };
    let base = ctx.base();
    let content = html! {
        @if board.rows.is_empty() { p { "Nobody has been recognised yet." } }
        @else {
            div.scroll {
                table #leaderboard {
                    thead { tr {
                        th scope="col" { "Rank" } th scope="col" { "Member" }
                        th scope="col" { "Contributions" } th scope="col" { "Endorsement" }
                        th scope="col" { "Kudos" } th scope="col" { "Accepted" } th scope="col" { "Score" }
                    } }
                    tbody {
                        @for row in &board.rows {
                            tr data-member=(row.who.id) {
                                td.num { (row.rank) }
                                td { (who(&base, &row.who)) }
                                td { (row.recognition.counts.iter().map(|(k, n)| plural(*k, *n)).collect::<Vec<_>>().join(", ")) }
                                td.num { (row.recognition.endorsement) }
                                td.num { (row.recognition.kudos) }
                                td.num { (row.recognition.accepted) }
                                td.num.score title=(breakdown(&row.recognition, &board.weights)) { (row.recognition.score) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="how" {
            h2 #how { "How the score is made" }
            (explain(&board.weights))
        }
    };
    respond(
        StatusCode::OK,
        shell(&ctx, "Leaderboard", Nav::Leaderboard, content),
    )
}
