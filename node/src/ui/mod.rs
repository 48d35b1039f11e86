//! The web UI, served by `catchment up` on the same loopback server as the local API.
//!
//! Pages are rendered on the server (maud templates) from the same operations the command
//! line uses: every read and write is an [`ops::Request`] or a [`NetRequest`] sent to the
//! node's event loop, exactly as `POST /api/call` does. A little CSS and script of our own
//! ride in the binary; the script only refreshes the open feed and shows notifications from
//! the UI's event stream.
//!
//! Who may use it: requests must carry the API's `Host` (`127.0.0.1:<port>` or
//! `localhost:<port>`) and, apart from `/login` and `/assets/`, a session cookie obtained by
//! redeeming a one-time code ([`session`]). Forms are protected against cross-site requests by
//! the cookie's `SameSite=Strict` and by refusing any `POST` whose `Origin` is not the UI's
//! own. A Content-Security-Policy allows only our own script and styles.

mod layout;
pub mod markdown;
mod notify;
mod pages;
pub mod session;
pub mod svg;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Query, Request as HttpRequest, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::Markup;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::api::{self, ApiState};
use crate::ops::Request;
use crate::runtime::{Command, NetRequest};

pub use session::Sessions;

/// The form fields of a submitted form.
pub(crate) type Fields = HashMap<String, String>;

/// What the UI's handlers share.
pub struct UiState {
    api: Arc<ApiState>,
    sessions: Sessions,
    notices: notify::Notices,
}

/// Errors the UI shows to a person.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The node refused or could not carry out an operation.
    #[error("{0}")]
    Node(String),
    /// A page that does not exist.
    #[error("there is no such page")]
    NotFound,
}

impl UiState {
    fn cookie_name(&self) -> String {
        format!("catchment_session_{}", self.api.port)
    }

    /// Executes an operation on the node, as `POST /api/call` does.
    pub(crate) async fn call(&self, request: Request) -> Result<Value, UiError> {
        self.send(|reply| Command::Call { request, reply }).await
    }

    /// Executes an operation and reads its answer as `T`.
    pub(crate) async fn call_as<T: DeserializeOwned>(
        &self,
        request: Request,
    ) -> Result<T, UiError> {
        let value = self.call(request).await?;
        serde_json::from_value(value).map_err(|e| UiError::Node(format!("unexpected answer: {e}")))
    }

    /// A network request, as `POST /api/network` does.
    pub(crate) async fn net(&self, request: NetRequest) -> Result<Value, UiError> {
        self.send(|reply| Command::Network { request, reply }).await
    }

    async fn send(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<Value, String>>) -> Command,
    ) -> Result<Value, UiError> {
        let stopping = || UiError::Node("the node is shutting down".into());
        let (reply, answer) = oneshot::channel();
        self.api
            .commands
            .send(command(reply))
            .await
            .map_err(|_| stopping())?;
        answer.await.map_err(|_| stopping())?.map_err(UiError::Node)
    }
}

/// The API's routes together with the UI's, on one server.
pub fn app(api_state: Arc<ApiState>) -> Router {
    let state = Arc::new(UiState {
        api: api_state.clone(),
        sessions: Sessions::default(),
        notices: notify::Notices::default(),
    });
    notify::spawn(state.clone());

    let login_code = Router::new()
        .route("/api/login-code", post(login_code))
        .layer(middleware::from_fn_with_state(
            api_state.clone(),
            api::guard,
        ))
        .with_state(state.clone());

    let pages = Router::new()
        .route("/", get(pages::topics::index))
        .route("/topics", post(pages::topics::create))
        .route("/join", post(pages::topics::join))
        .route("/network", get(pages::network::page))
        .route("/network/offline", post(pages::network::offline))
        .route("/notifications", get(pages::network::notifications))
        .route("/events", get(notify::events))
        .route("/t/{topic}", get(pages::feed::page))
        .route("/t/{topic}/items", get(pages::feed::items))
        .route("/t/{topic}/post", post(pages::feed::post))
        .route("/t/{topic}/asks", get(pages::feed::asks))
        .route("/t/{topic}/c/{id}", get(pages::thread::page))
        .route("/t/{topic}/c/{id}/edit", post(pages::thread::edit))
        .route("/t/{topic}/c/{id}/retract", post(pages::thread::retract))
        .route("/t/{topic}/c/{id}/endorse", post(pages::thread::endorse))
        .route("/t/{topic}/c/{id}/accept", post(pages::thread::accept))
        .route("/t/{topic}/m/{member}", get(pages::people::profile))
        .route("/t/{topic}/m/{member}/kudos", post(pages::people::kudos))
        .route("/t/{topic}/leaderboard", get(pages::people::leaderboard))
        .route("/t/{topic}/admin", get(pages::admin::page))
        .route("/t/{topic}/admin/{action}", post(pages::admin::act))
        .route("/login", get(login))
        .route("/assets/app.css", get(css))
        .route("/assets/app.js", get(js))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state);

    api::router(api_state).merge(login_code).merge(pages)
}

/// `POST /api/login-code` (with the API token): a one-time code and the URL that redeems it.
async fn login_code(State(state): State<Arc<UiState>>) -> Response {
    let code = state.sessions.issue_code(Instant::now());
    let url = format!("http://127.0.0.1:{}/login?code={code}", state.api.port);
    Json(json!({ "url": url, "expires_in": session::CODE_LIFETIME.as_secs() })).into_response()
}

/// `GET /login?code=...`: a valid code becomes a session cookie.
async fn login(
    State(state): State<Arc<UiState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let code = query.get("code").map(String::as_str).unwrap_or("");
    let Some(session) = state.sessions.redeem(code, Instant::now()) else {
        return layout::bare(
            StatusCode::UNAUTHORIZED,
            "This login link does not work",
            "It was used already, or it is more than a minute old. Run `catchment open` again \
             for a fresh one.",
        );
    };
    let cookie = format!(
        "{}={session}; HttpOnly; SameSite=Strict; Path=/",
        state.cookie_name()
    );
    let mut response = Redirect::to("/").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn session_cookie<'a>(request: &'a HttpRequest, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Paths that need no session: logging in, and the stylesheet and script.
fn is_open(path: &str) -> bool {
    path == "/login" || path.starts_with("/assets/")
}

/// The refusal for a request that fails the Host, Origin (for writes) or session check.
fn check(state: &UiState, request: &HttpRequest) -> Option<Response> {
    let port = state.api.port;
    let allowed = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    let header_of = |name| {
        request
            .headers()
            .get(name)
            .and_then(|h: &HeaderValue| h.to_str().ok())
            .unwrap_or("")
    };
    let host = header_of(header::HOST);
    if !allowed.iter().any(|h| h == host) {
        return Some(layout::bare(
            StatusCode::FORBIDDEN,
            "Wrong address",
            "This page is served only as 127.0.0.1 or localhost.",
        ));
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let origin = header_of(header::ORIGIN);
        if !allowed.iter().any(|h| origin == format!("http://{h}")) {
            tracing::debug!(origin, "form refused: foreign or missing origin");
            return Some(layout::bare(
                StatusCode::FORBIDDEN,
                "Refused",
                "This form was not sent from the node's own pages.",
            ));
        }
    }
    if !is_open(request.uri().path()) {
        let valid = session_cookie(request, &state.cookie_name())
            .is_some_and(|s| state.sessions.check(s, Instant::now()));
        if !valid {
            return Some(layout::bare(
                StatusCode::UNAUTHORIZED,
                "Not logged in",
                "Run `catchment open` in a terminal: it opens this page logged in.",
            ));
        }
    }
    None
}

/// Host, Origin (for writes) and session checks; then security headers on every answer.
async fn guard(State(state): State<Arc<UiState>>, request: HttpRequest, next: Next) -> Response {
    if let Some(refusal) = check(&state, &request) {
        return refusal;
    }
    let open = is_open(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Same-origin keeps the `Origin` header on our own form posts; nothing leaves.
        (header::REFERRER_POLICY, "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !open {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/app.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/app.js"),
    )
        .into_response()
}

/// A page as an HTML answer.
pub(crate) fn html(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// Where to go back to after a form: a path on this server, else `fallback`.
pub(crate) fn back_to(fields: &Fields, fallback: String) -> String {
    match fields.get("back") {
        Some(back) if back.starts_with('/') && !back.starts_with("//") && !back.contains('\\') => {
            back.clone()
        }
        _ => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_go_back_only_to_this_server() {
        let fallback = || "/t/abc".to_string();
        let with = |back: &str| Fields::from([("back".to_string(), back.to_string())]);
        assert_eq!(back_to(&with("/t/abc/c/12"), fallback()), "/t/abc/c/12");
        for outside in [
            "//evil.example/x",
            "https://evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
        ] {
            assert_eq!(back_to(&with(outside), fallback()), "/t/abc", "{outside}");
        }
        assert_eq!(back_to(&Fields::new(), fallback()), "/t/abc");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let request = HttpRequest::builder()
            .header(header::COOKIE, "a=1; catchment_session_80=s3cret; b=2")
            .body(axum::body::Body::empty())
            .expect("a request");
        assert_eq!(
            session_cookie(&request, "catchment_session_80"),
            Some("s3cret")
        );
        assert_eq!(session_cookie(&request, "catchment_session_81"), None);
    }
}
