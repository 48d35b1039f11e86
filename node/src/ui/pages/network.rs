//! The network page (peers, sync state per peer, the offline switch) and the notifications.

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde_json::Value;

use crate::runtime::NetRequest;
use crate::ui::layout::{error_page, shell, short, when, Ctx, Nav};
use crate::ui::{back_to, html as respond, Fields, UiError, UiState};

/// `GET /network`.
pub(crate) async fn page_handler(state: &UiState) -> Response {
    let loaded = async {
        let ctx = Ctx::load(state, None).await?;
        let status = state.net(NetRequest::Status).await?;
        let peers = state.net(NetRequest::Peers).await?;
        Ok::<_, UiError>((ctx, status, peers))
    }
    .await;
    let (ctx, status, peers) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return error_page(state, e).await,
    };
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let offline = ctx.offline;
    let content = html! {
        section.switch aria-labelledby="switch" {
            h2 #switch { "Connection" }
            @if offline {
                p #net-state { strong { "Offline." } " Nothing is sent or received. What you post is saved here, and will sync when a peer is reachable." }
                form method="post" action="/network/offline" {
                    input type="hidden" name="on" value="false";
                    button type="submit" #go-online { "Go online" }
                }
            } @else {
                p #net-state {
                    strong { "Online." } " "
                    @match status["connected"].as_u64().unwrap_or(0) { 1 => { "1 peer connected." }, n => { (n) " peers connected." } }
                }
                form method="post" action="/network/offline" {
                    input type="hidden" name="on" value="true";
                    button type="submit" #go-offline { "Go offline" }
                }
            }
        }
        section aria-labelledby="sync" {
            h2 #sync { "Sync per topic" }
            @for topic in list(&status["topics"]) {
                h3 { (text(&topic["name"])) }
                @let topic_peers = list(&topic["peers"]);
                @if topic_peers.is_empty() {
                    p { "No peer has synced this topic with us yet." }
                } @else {
                    div.scroll {
                        table.sync {
                            thead { tr { th scope="col" { "Peer" } th scope="col" { "Connected" } th scope="col" { "State" } th scope="col" { "Last in sync" } } }
                            tbody {
                                @for p in topic_peers {
                                    tr {
                                        td.key title=(text(&p["peer"])) { (short_peer(&text(&p["peer"]))) }
                                        td { (if p["connected"].as_bool().unwrap_or(false) { "yes" } else { "no" }) }
                                        td {
                                            @if let Some(refused) = p["refused"].as_str() { "refused: " (refused) }
                                            @else if p["heads_equal"].as_bool().unwrap_or(false) { span.ok { "in agreement" } }
                                            @else { "not in agreement yet" }
                                        }
                                        td { @match p["last_sync"].as_i64() { Some(t) => { (when(t)) }, None => { "never" } } }
                                    }
                                }
                            }
                        }
                    }
                }
                @let pending = topic["pending"].as_u64().unwrap_or(0);
                @if pending > 0 { p.hint { (pending) " changes wait for what they depend on." } }
            }
        }
        section aria-labelledby="peers" {
            h2 #peers { "Peers" }
            p { "This node: " span.key { (text(&peers["me"])) } }
            @let known = list(&peers["peers"]);
            @if known.is_empty() { p { "No peers known yet." } }
            ul.peers {
                @for p in known {
                    li {
                        span.key title=(text(&p["peer"])) { (short_peer(&text(&p["peer"]))) }
                        " · " (if p["connected"].as_bool().unwrap_or(false) { "connected" } else { "not connected" })
                        @for a in list(&p["addresses"]).iter().take(3) { " · " code { (text(a)) } }
                    }
                }
            }
            details {
                summary { "Where this node listens" }
                ul { @for a in list(&peers["listening"]) { li { code { (text(&a)) } } } }
            }
        }
        p.hint { "Sync bytes: " (status["sync_bytes_sent"].as_u64().unwrap_or(0)) " sent, " (status["sync_bytes_received"].as_u64().unwrap_or(0)) " received." }
    };
    respond(
        StatusCode::OK,
        shell(&ctx, "Network", Nav::Network, content),
    )
}

fn short_peer(peer: &str) -> String {
    let n = peer.len();
    if n > 12 {
        format!("…{}", &peer[n - 8..])
    } else {
        peer.to_string()
    }
}

/// `GET /network`.
pub(crate) async fn page(State(state): State<Arc<UiState>>) -> Response {
    page_handler(&state).await
}

/// `POST /network/offline` with `on` true or false.
pub(crate) async fn offline(
    State(state): State<Arc<UiState>>,
    Form(fields): Form<Fields>,
) -> Response {
    let on = fields.get("on").map(String::as_str) == Some("true");
    match state.net(NetRequest::Offline { on }).await {
        Ok(_) => Redirect::to(&back_to(&fields, "/network".into())).into_response(),
        Err(e) => error_page(&state, e).await,
    }
}

/// `GET /notifications`: what is new for this member, newest first.
pub(crate) async fn notifications(State(state): State<Arc<UiState>>) -> Response {
    let notices = state.notices.read();
    let mut ctx = match Ctx::load(&state, None).await {
        Ok(ctx) => ctx,
        Err(e) => return error_page(&state, e).await,
    };
    ctx.unread = 0;
    let content = html! {
        @if notices.is_empty() {
            p { "Nothing new since the node started. Answers to your questions, your accepted answers, endorsements and kudos for you, and asks closing within a day show here." }
        }
        ul.notices {
            @for n in &notices {
                li { a href=(n.link) { (n.text) } span.meta { " · " (n.topic_name) " · " (when(n.at)) } }
            }
        }
        p.hint { "Your key: " (short(&ctx.me)) }
    };
    respond(
        StatusCode::OK,
        shell(&ctx, "Notifications", Nav::Notifications, content),
    )
}
