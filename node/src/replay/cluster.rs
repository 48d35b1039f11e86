//! Real `catchment up` processes on 127.0.0.1, each in its own data directory, in one topic.
//!
//! Each node listens on a fixed loopback port chosen free at the start, so that a restarted
//! node comes back at the same address and its peers' redials find it. Every node dials every
//! other, so that one node going offline partitions nobody else.

use std::fs::OpenOptions;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tracing::debug;

use super::{io, ReplayError, Result};
use crate::home::Home;

/// How long a node may take to start (its API up) or stop.
pub const START_STOP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// What a cluster is made of.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The `catchment` binary each node runs.
    pub bin: PathBuf,
    /// The directory that holds every node's data directory and log.
    pub dir: PathBuf,
    /// How many nodes.
    pub nodes: usize,
    /// Seconds between anti-entropy sessions (`up --sync-interval`).
    pub sync_interval: u64,
    /// The topic's name.
    pub topic_name: String,
}

/// A free TCP port on 127.0.0.1 (the operating system's choice, released at once).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("find a free port"))?
        .port();
    Ok(port)
}

/// One node: its data directory, its process while it runs, and its API.
pub struct NodeProc {
    /// "node 1", "node 2", ...
    pub name: String,
    /// The data directory.
    pub home: PathBuf,
    /// Where its process writes its log.
    pub log: PathBuf,
    /// Its libp2p port on 127.0.0.1.
    pub p2p_port: u16,
    /// Its PeerId, once known.
    pub peer_id: Option<String>,
    /// Addresses to dial at every start (the other nodes).
    pub dial: Vec<String>,
    bin: PathBuf,
    sync_interval: u64,
    child: Option<Child>,
    api: Option<(u16, String)>,
    agent: ureq::Agent,
}

impl NodeProc {
    /// Makes `dir/<slug>` a data directory with a member key named `name`.
    fn init(bin: &Path, dir: &Path, index: usize, sync_interval: u64) -> Result<NodeProc> {
        let name = format!("node {}", index + 1);
        let home = dir.join(format!("node{}", index + 1));
        Home::init(&home, Some(&format!("Replay node {}", index + 1)))
            .map_err(|e| ReplayError::Process(format!("{name}: {e}")))?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(CALL_TIMEOUT))
            .build()
            .into();
        Ok(NodeProc {
            name,
            log: dir.join(format!("node{}.log", index + 1)),
            home,
            p2p_port: free_port()?,
            peer_id: None,
            dial: Vec::new(),
            bin: bin.to_path_buf(),
            sync_interval,
            child: None,
            api: None,
            agent,
        })
    }

    /// Whether its process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The API's address, while it runs.
    pub fn api_address(&self) -> Option<String> {
        self.api
            .as_ref()
            .map(|(port, _)| format!("127.0.0.1:{port}"))
    }

    /// The address peers dial (needs the PeerId, known after the first start).
    pub fn address(&self) -> Option<String> {
        self.peer_id
            .as_ref()
            .map(|p| format!("/ip4/127.0.0.1/tcp/{}/p2p/{p}", self.p2p_port))
    }

    /// Starts `catchment up` and waits (bounded) until its API answers.
    pub fn start(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Ok(());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(io(format!("open {}", self.log.display())))?;
        let log2 = log.try_clone().map_err(io("clone a log file"))?;
        let mut command = Command::new(&self.bin);
        command
            .arg("--home")
            .arg(&self.home)
            .args(["up", "--listen"])
            .arg(format!("/ip4/127.0.0.1/tcp/{}", self.p2p_port))
            .args(["--no-mdns", "--sync-interval"])
            .arg(self.sync_interval.to_string());
        for address in &self.dial {
            command.arg("--dial").arg(address);
        }
        // A process group of its own: a Ctrl-C at the terminal reaches whoever runs the
        // cluster, which stops the nodes in order, rather than killing them under it.
        let child = command
            .process_group(0)
            .env_remove("CATCHMENT_HOME")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(io(format!("{}: start `catchment up`", self.name)))?;
        let pid = child.id();
        self.child = Some(child);
        let home = Home::open(&self.home)
            .map_err(|e| ReplayError::Process(format!("{}: {e}", self.name)))?;
        let deadline = Instant::now() + START_STOP_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(ReplayError::Process(format!(
                    "{}: `catchment up` exited ({status}) while starting; see {}",
                    self.name,
                    self.log.display()
                )));
            }
            if let Some(endpoint) = home.endpoint().filter(|e| e.pid == pid) {
                let token = home.api_token().map_err(|e| {
                    ReplayError::Process(format!("{}: the API token: {e}", self.name))
                })?;
                self.api = Some((endpoint.port, token));
                break;
            }
            if Instant::now() >= deadline {
                return Err(ReplayError::Process(format!(
                    "{}: its API was not up after {START_STOP_TIMEOUT:?}; see {}",
                    self.name,
                    self.log.display()
                )));
            }
            thread::sleep(Duration::from_millis(50));
        }
        if self.peer_id.is_none() {
            let peers = self.network(&json!({"op": "peers"}))?;
            self.peer_id = peers["me"].as_str().map(str::to_string);
        }
        debug!(node = %self.name, "started");
        Ok(())
    }

    /// Stops the process with SIGTERM (it flushes and removes api.json) and waits for it.
    pub fn stop(&mut self) -> Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        self.api = None;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + START_STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => break,
                Ok(Some(status)) => {
                    return Err(ReplayError::Process(format!(
                        "{} did not stop cleanly ({status}); see {}",
                        self.name,
                        self.log.display()
                    )))
                }
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ReplayError::Process(format!(
                        "{} did not stop within {START_STOP_TIMEOUT:?} of SIGTERM",
                        self.name
                    )));
                }
            }
        }
        debug!(node = %self.name, "stopped");
        Ok(())
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let op = body["op"].as_str().unwrap_or("?").to_string();
        let fail = |message: String| ReplayError::Api {
            node: self.name.clone(),
            op: op.clone(),
            message,
        };
        let Some((port, token)) = &self.api else {
            return Err(fail("the node is not running".into()));
        };
        let mut response = self
            .agent
            .post(&format!("http://127.0.0.1:{port}{path}"))
            .header("Authorization", &format!("Bearer {token}"))
            .send_json(body)
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let value: Value = response
            .body_mut()
            .read_json()
            .map_err(|e| fail(format!("answered {status} with no JSON: {e}")))?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(fail(
                value["error"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_string(),
            ))
        }
    }

    /// Calls `POST /api/call` with an operation (`ops::Request` as JSON).
    pub fn call(&self, request: &Value) -> Result<Value> {
        self.post("/api/call", request)
    }

    /// Calls `POST /api/network` (status, peers, offline, dial).
    pub fn network(&self, request: &Value) -> Result<Value> {
        self.post("/api/network", request)
    }

    /// Switches the node's network off or on (the process keeps running and writing).
    pub fn set_offline(&self, on: bool) -> Result<()> {
        self.network(&json!({"op": "offline", "on": on}))?;
        debug!(node = %self.name, offline = on, "offline switch");
        Ok(())
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if self.child.is_some() && self.stop().is_err() {
            if let Some(mut child) = self.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Running nodes in one topic, every one of them an admin.
pub struct Cluster {
    /// The nodes; node 1 created the topic.
    pub nodes: Vec<NodeProc>,
    /// The topic's id (hex).
    pub topic: String,
}

impl Cluster {
    /// Initialises and starts the nodes, creates the topic on node 1, invites the others with
    /// the admin role, and waits (bounded) until each holds the admin role and all are
    /// connected.
    pub fn start(config: &ClusterConfig) -> Result<Cluster> {
        if config.nodes == 0 {
            return Err(ReplayError::Input(
                "a cluster needs at least one node".into(),
            ));
        }
        std::fs::create_dir_all(&config.dir)
            .map_err(io(format!("create {}", config.dir.display())))?;
        let mut nodes = (0..config.nodes)
            .map(|i| NodeProc::init(&config.bin, &config.dir, i, config.sync_interval))
            .collect::<Result<Vec<_>>>()?;
        for node in &mut nodes {
            node.start()?;
        }
        let created = nodes[0].call(&json!({"op": "topic_create", "name": config.topic_name}))?;
        let topic = created["id"]
            .as_str()
            .ok_or_else(|| ReplayError::Input(format!("topic_create answered {created}")))?
            .to_string();
        if nodes.len() > 1 {
            let invite = nodes[0].call(&json!({
                "op": "invite_create", "topic": topic, "role": "admin",
                "expires": null, "uses": null,
            }))?;
            let invite = invite["invite"]
                .as_str()
                .ok_or_else(|| ReplayError::Input(format!("invite_create answered {invite}")))?
                .to_string();
            for node in &nodes[1..] {
                node.call(&json!({"op": "join", "invite": invite}))?;
            }
        }
        // Every node dials every other now, and at every restart.
        let addresses: Vec<Option<String>> = nodes.iter().map(NodeProc::address).collect();
        for (i, node) in nodes.iter_mut().enumerate() {
            node.dial = addresses
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .filter_map(|(_, a)| a.clone())
                .collect();
            for address in &node.dial {
                node.network(&json!({"op": "dial", "address": address}))?;
            }
        }
        let cluster = Cluster { nodes, topic };
        cluster.wait_admins(START_STOP_TIMEOUT)?;
        Ok(cluster)
    }

    /// Waits until every node sees itself as an admin of the topic in the charter it holds
    /// (the role an admin invite grants counts for imports only once it is in the charter).
    fn wait_admins(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut waiting = Vec::new();
            for node in &self.nodes {
                let topics = node.call(&json!({"op": "topic_list"}))?;
                let summary = topics
                    .as_array()
                    .and_then(|t| t.iter().find(|t| t["id"] == self.topic.as_str()));
                let status = summary.map(|t| t["status"].as_str().unwrap_or("").to_string());
                let admin = summary.is_some_and(|t| t["admin"] == true);
                if status.as_deref() != Some("admin") || !admin {
                    waiting.push(format!("{}: {status:?}", node.name));
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ReplayError::NoAgreement {
                    seconds: timeout.as_secs(),
                    detail: format!("not yet admins: {}", waiting.join(", ")),
                });
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Brings every node back: started and online.
    pub fn all_up(&mut self) -> Result<()> {
        for node in &mut self.nodes {
            node.start()?;
            node.set_offline(false)?;
        }
        Ok(())
    }

    /// Each node's digest of the topic and its pending count; `None` for a stopped node.
    pub fn digests(&self) -> Result<Vec<Option<(String, u64)>>> {
        self.nodes
            .iter()
            .map(|node| {
                if !node.is_running() {
                    return Ok(None);
                }
                let show = node.call(&json!({"op": "topic_show", "topic": self.topic}))?;
                let status = node.network(&json!({"op": "status"}))?;
                let pending = status["topics"]
                    .as_array()
                    .and_then(|t| t.iter().find(|t| t["topic"] == self.topic.as_str()))
                    .and_then(|t| t["pending"].as_u64())
                    .unwrap_or(0);
                Ok(Some((
                    show["digest"].as_str().unwrap_or("").to_string(),
                    pending,
                )))
            })
            .collect()
    }

    /// Waits (bounded) until every node runs and holds the same changes with nothing pending.
    pub fn wait_agreement(&self, timeout: Duration, stop: &AtomicBool) -> Result<Duration> {
        let start = Instant::now();
        loop {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(ReplayError::Interrupted);
            }
            let digests = self.digests()?;
            let first = digests.first().cloned().flatten();
            let agreed = first.as_ref().is_some_and(|(d, _)| {
                digests
                    .iter()
                    .all(|x| x.as_ref().is_some_and(|(e, p)| e == d && *p == 0))
            });
            if agreed {
                return Ok(start.elapsed());
            }
            if start.elapsed() >= timeout {
                let detail = self
                    .nodes
                    .iter()
                    .zip(&digests)
                    .map(|(n, d)| match d {
                        Some((d, p)) => {
                            format!("{}: {} ({p} pending)", n.name, &d[..d.len().min(12)])
                        }
                        None => format!("{}: stopped", n.name),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(ReplayError::NoAgreement {
                    seconds: timeout.as_secs(),
                    detail,
                });
            }
            thread::sleep(Duration::from_millis(250));
        }
    }
}
