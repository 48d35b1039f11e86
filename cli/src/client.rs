//! Where the command line's requests go: the running node's local API when one runs for this
//! data directory (sled allows one process per store), else the store itself.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use catchment_node::ops::{self, Request};
use catchment_node::runtime::NetRequest;
use catchment_node::{Engine, Home, SledBackend};
use serde::Serialize;
use serde_json::Value;

/// Sends requests to the node, or executes them on the store.
pub struct Client {
    home: Home,
}

enum Remote {
    /// The node answered (with a result or an error).
    Answered(Result<Value>),
    /// Nobody listens at the recorded endpoint: the node is gone.
    Gone,
}

impl Client {
    pub fn new(home: Home) -> Self {
        Client { home }
    }

    fn post<T: Serialize>(&self, path: &str, body: &T) -> Option<Remote> {
        let endpoint = self.home.endpoint()?;
        let token = match self.home.api_token() {
            Ok(token) => token,
            Err(e) => return Some(Remote::Answered(Err(e.into()))),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let url = format!("http://127.0.0.1:{}{path}", endpoint.port);
        let response = agent
            .post(&url)
            .header("Authorization", &format!("Bearer {token}"))
            .send_json(body);
        let mut response = match response {
            Ok(response) => response,
            Err(ureq::Error::Io(_)) | Err(ureq::Error::ConnectionFailed) => {
                return Some(Remote::Gone)
            }
            Err(e) => return Some(Remote::Answered(Err(anyhow!("the node's API: {e}")))),
        };
        let status = response.status();
        let value: Value = match response.body_mut().read_json() {
            Ok(value) => value,
            Err(e) => {
                return Some(Remote::Answered(Err(anyhow!(
                    "the node's API answered {status} with no JSON: {e}"
                ))))
            }
        };
        if status.is_success() {
            Some(Remote::Answered(Ok(value)))
        } else {
            let message = value["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_string();
            Some(Remote::Answered(Err(anyhow!(message))))
        }
    }

    /// Carries out a request, through the running node if there is one.
    pub fn call(&self, request: Request) -> Result<Value> {
        match self.post("/api/call", &request) {
            Some(Remote::Answered(result)) => return result,
            Some(Remote::Gone) => self.home.clear_endpoint(),
            None => {}
        }
        let backend = SledBackend::open(&self.home.store_dir())?;
        let mut engine = Engine::open(Box::new(backend), self.home.keypair()?);
        let writes = request.writes();
        let value = ops::execute(&mut engine, &self.home, request)?;
        if writes {
            // Confirm only what is on disk.
            engine.commit()?;
        }
        Ok(value)
    }

    /// A session for many requests in a row: through the running node if there is one, else
    /// on the store opened once (each write still committed before its answer).
    pub fn session(&self) -> Result<Session<'_>> {
        if self.home.endpoint().is_some() {
            // A probe that changes nothing tells whether the node still runs.
            match self.post("/api/call", &Request::Whoami) {
                Some(Remote::Answered(_)) => return Ok(Session::Remote(self)),
                Some(Remote::Gone) | None => self.home.clear_endpoint(),
            }
        }
        let backend = SledBackend::open(&self.home.store_dir())?;
        let engine = Engine::open(Box::new(backend), self.home.keypair()?);
        Ok(Session::Local(Box::new(engine), &self.home))
    }

    /// A one-time URL that opens the running node's web UI logged in (valid for a minute).
    pub fn login_url(&self) -> Result<String> {
        match self.post("/api/login-code", &serde_json::json!({})) {
            Some(Remote::Answered(result)) => {
                let value = result?;
                value["url"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow!("the node's API answered without a login URL"))
            }
            Some(Remote::Gone) | None => {
                self.home.clear_endpoint();
                bail!("no node is running for this data directory: start one with `catchment up`")
            }
        }
    }

    /// A request only a running node can answer.
    pub fn network(&self, request: NetRequest) -> Result<Value> {
        match self.post("/api/network", &request) {
            Some(Remote::Answered(result)) => result,
            Some(Remote::Gone) | None => {
                self.home.clear_endpoint();
                bail!("no node is running for this data directory: start one with `catchment up`")
            }
        }
    }
}

/// Requests carried out one after another (see [`Client::session`]).
pub enum Session<'a> {
    /// Through the running node's API.
    Remote(&'a Client),
    /// On the store, opened once.
    Local(Box<Engine>, &'a Home),
}

impl Session<'_> {
    /// Carries out a request; a write is on disk when this returns.
    pub fn call(&mut self, request: Request) -> Result<Value> {
        match self {
            Session::Remote(client) => match client.post("/api/call", &request) {
                Some(Remote::Answered(result)) => result,
                Some(Remote::Gone) | None => {
                    bail!("the running node stopped: run the command again")
                }
            },
            Session::Local(engine, home) => {
                let writes = request.writes();
                let value = ops::execute(engine, home, request)?;
                if writes {
                    engine.commit()?;
                }
                Ok(value)
            }
        }
    }
}
