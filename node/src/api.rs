//! The local HTTP API: everything the command line does, for the local user only.
//!
//! Bound to 127.0.0.1. Every request must carry the token from the data directory
//! (`Authorization: Bearer <token>`), a `Host` of `127.0.0.1:<port>` or `localhost:<port>`, and
//! no `Origin` other than the API's own, so that a web page in the user's browser cannot drive
//! the node. See `docs/api.md`.
//!
//! * `POST /api/call`: an [`ops::Request`] as JSON; the response is its result, or
//!   `{"error": "..."}` with a 4xx/5xx status.
//! * `POST /api/network`: a [`NetRequest`] (status, peers, offline switch, dial).
//! * `GET /api/events`: server-sent events of accepted changes, peers and sync sessions.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Request as HttpRequest, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;

use crate::ops;
use crate::runtime::{Command, Event, NetRequest};

/// What the API's handlers share.
pub struct ApiState {
    /// The node's command channel.
    pub commands: mpsc::Sender<Command>,
    /// Events for the stream.
    pub events: broadcast::Sender<Event>,
    /// The token every request must carry.
    pub token: String,
    /// The port it listens on (for the Host and Origin checks).
    pub port: u16,
}

/// The API's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/call", post(call))
        .route("/api/network", post(network))
        .route("/api/events", get(events))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Host, Origin and token checks, before anything else runs.
pub(crate) async fn guard(
    State(state): State<Arc<ApiState>>,
    request: HttpRequest,
    next: Next,
) -> Response {
    let headers = request.headers();
    let allowed_hosts = [
        format!("127.0.0.1:{}", state.port),
        format!("localhost:{}", state.port),
    ];
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !allowed_hosts.iter().any(|h| h == host) {
        return error(
            StatusCode::FORBIDDEN,
            format!("host {host:?} is not this node's API"),
        );
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !allowed_hosts
            .iter()
            .any(|h| origin == format!("http://{h}"))
        {
            return error(
                StatusCode::FORBIDDEN,
                format!("requests from origin {origin:?} are refused"),
            );
        }
    }
    let expected = format!("Bearer {}", state.token);
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    // Compare in constant time: the token is the only secret between a local process and the node.
    let matches = given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !matches {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API token (see api.token in the data directory)",
        );
    }
    next.run(request).await
}

async fn ask(
    state: &ApiState,
    command: impl FnOnce(oneshot::Sender<Result<Value, String>>) -> Command,
) -> Response {
    let (reply, answer) = oneshot::channel();
    if state.commands.send(command(reply)).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down");
    }
    match answer.await {
        Ok(Ok(value)) => Json(value).into_response(),
        Ok(Err(message)) => error(StatusCode::BAD_REQUEST, message),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "the node is shutting down"),
    }
}

async fn call(State(state): State<Arc<ApiState>>, body: axum::body::Bytes) -> Response {
    let request: ops::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("not a request: {e}")),
    };
    ask(&state, |reply| Command::Call { request, reply }).await
}

async fn network(State(state): State<Arc<ApiState>>, body: axum::body::Bytes) -> Response {
    let request: NetRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("not a network request: {e}"),
            )
        }
    };
    ask(&state, |reply| Command::Network { request, reply }).await
}

async fn events(
    State(state): State<Arc<ApiState>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let stream = BroadcastStream::new(state.events.subscribe()).filter_map(|event| {
        let event = event.ok()?;
        let data = serde_json::to_string(&event).ok()?;
        Some(Ok(SseEvent::default().event(event.name()).data(data)))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
