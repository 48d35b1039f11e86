//! Real nodes for the network benchmark, and the only way the benchmark talks to them: their
//! local API.
//!
//! A [`LocalNode`] is `catchment_node::runtime::run` on its own OS thread with a one-worker
//! (current-thread) tokio runtime, as `catchment up` runs it, in this process. A [`ChildNode`]
//! is the same in a process of its own (`netbench __node HOME`), so that its CPU time and
//! resident memory can be read from `/proc` apart from everything else. Both listen on
//! 127.0.0.1 only, with mDNS off.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use catchment_node::ops::Request;
use catchment_node::runtime::{self, Multiaddr, NetRequest, NodeConfig};
use catchment_node::Home;
use serde::Serialize;
use serde_json::Value;

/// The longest a node may take to start (its api.json written) or to stop.
const START_STOP: Duration = Duration::from_secs(30);
/// The longest one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// The most lines one event stream is read for (a bound, far above what a run produces).
const MAX_EVENT_LINES: usize = 10_000_000;

/// How every benchmark node runs: loopback only, no mDNS, any free ports.
pub fn config(dial: Vec<Multiaddr>, sync_interval: Duration) -> NodeConfig {
    NodeConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("a valid multiaddr")],
        api_port: 0,
        mdns: false,
        dial,
        sync_interval,
        // The DHT, relay client, DCUtR and AutoNAT are on in every node, as in `catchment up`.
        seed: false,
        relay: false,
        external: Vec::new(),
    }
}

/// Polls `probe` every `every` until it gives a value, for at most `timeout`.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe()? {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            bail!("{what}: not so after {timeout:?}");
        }
        thread::sleep(every);
    }
}

// ---------------------------------------------------------------------------------------------
// The local API.

/// A client of one node's local API.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Api {
    /// The API of the node running for `home`, at `port`.
    pub fn new(home: &Home, port: u16) -> Result<Api> {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(CALL_TIMEOUT))
            .build()
            .into();
        Ok(Api {
            base: format!("http://127.0.0.1:{port}"),
            token: home.api_token()?,
            agent,
        })
    }

    fn post(&self, path: &str, body: &impl Serialize) -> Result<Value> {
        let mut response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", &format!("Bearer {}", self.token))
            .send_json(body)
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let value: Value = response
            .body_mut()
            .read_json()
            .with_context(|| format!("POST {path} answered {status} with no JSON"))?;
        if !status.is_success() {
            bail!("POST {path} answered {status}: {value}");
        }
        Ok(value)
    }

    /// `POST /api/call`.
    pub fn call(&self, request: &Request) -> Result<Value> {
        self.post("/api/call", request)
    }

    /// `POST /api/network`.
    pub fn network(&self, request: &NetRequest) -> Result<Value> {
        self.post("/api/network", request)
    }

    /// The status's `sync_bytes_sent` and `sync_bytes_received`.
    pub fn sync_bytes(&self) -> Result<(u64, u64)> {
        let status = self.network(&NetRequest::Status)?;
        let field = |name: &str| {
            status[name]
                .as_u64()
                .with_context(|| format!("no {name} in the status: {status}"))
        };
        Ok((field("sync_bytes_sent")?, field("sync_bytes_received")?))
    }

    /// The topic's `digest` from `topic_show`.
    pub fn digest(&self, topic: &str) -> Result<String> {
        let view = self.call(&Request::TopicShow {
            topic: Some(topic.to_string()),
        })?;
        view["digest"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("no digest in topic_show: {view}"))
    }

    /// Where a peer dials this node: its first listening address with its PeerId.
    pub fn address(&self) -> Result<String> {
        let peers = self.network(&NetRequest::Peers)?;
        let me = peers["me"].as_str().context("no PeerId in peers")?;
        let listening = peers["listening"][0]
            .as_str()
            .with_context(|| format!("the node listens nowhere: {peers}"))?;
        Ok(format!("{listening}/p2p/{me}"))
    }

    /// Subscribes to `GET /api/events`; the subscription holds once this returns.
    pub fn events(&self) -> Result<Events> {
        // No timeout: the stream stays open for the node's life.
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let response = agent
            .get(format!("{}/api/events", self.base))
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()
            .context("GET /api/events")?;
        if !response.status().is_success() {
            bail!("GET /api/events answered {}", response.status());
        }
        let events = Events::default();
        let log = events.log.clone();
        let reader = BufReader::new(response.into_body().into_reader());
        thread::Builder::new()
            .name("netbench-events".into())
            .spawn(move || read_events(reader, &log))?;
        Ok(events)
    }
}

// ---------------------------------------------------------------------------------------------
// The event stream.

/// A `change` event, stamped when its line was read.
#[derive(Debug, Clone)]
pub struct Seen {
    /// When the line arrived.
    pub at: Instant,
    /// The document, e.g. `journal/<member hex>/0`.
    pub doc: String,
    /// Written on that node (not received).
    pub local: bool,
}

/// The `change` events one node has sent so far, in order.
#[derive(Clone, Default)]
pub struct Events {
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Events {
    /// How many have arrived.
    pub fn count(&self) -> usize {
        self.log.lock().expect("event log").len()
    }

    /// When the first event from index `from` on that `pick` accepts arrived.
    pub fn first_after(&self, from: usize, pick: impl Fn(&Seen) -> bool) -> Option<Instant> {
        let log = self.log.lock().expect("event log");
        log.get(from..)?.iter().find(|s| pick(s)).map(|s| s.at)
    }
}

/// Reads server-sent events until the stream ends (the node stopped) or the bound is reached,
/// keeping every `change`.
fn read_events(reader: impl BufRead, log: &Mutex<Vec<Seen>>) {
    let mut name = String::new();
    for line in reader.lines().take(MAX_EVENT_LINES) {
        let Ok(line) = line else { return };
        let at = Instant::now();
        if let Some(event) = line.strip_prefix("event:") {
            name = event.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            if name != "change" {
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(data.trim()) else {
                continue;
            };
            let seen = Seen {
                at,
                doc: value["doc"].as_str().unwrap_or_default().to_string(),
                local: value["local"].as_bool().unwrap_or(true),
            };
            log.lock().expect("event log").push(seen);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A node on a thread of this process.

/// A node running on its own thread here.
pub struct LocalNode {
    /// Its name ("n0", "a", ...).
    pub name: String,
    /// Its data directory.
    pub home: Home,
    /// Its API.
    pub api: Api,
    /// Its member id (hex).
    pub member: String,
    /// The id of the thread it runs on.
    pub tid: u32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl LocalNode {
    /// Starts a node on `dir` (initialised with the display name `name` if new) and waits
    /// until its API answers.
    pub fn start(name: &str, dir: &Path, config: NodeConfig) -> Result<LocalNode> {
        let (home, _) = Home::init(dir, Some(name))?;
        // A stale api.json would name the wrong port: this process's pid is every node's.
        home.clear_endpoint();
        // Made here, before the node reads it, so that two threads never race to make it.
        home.api_token()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (tell_tid, tid) = mpsc::channel();
        let node_home = home.clone();
        let thread = thread::Builder::new()
            .name(format!("node-{name}"))
            .stack_size(8 << 20)
            .spawn(move || {
                let _ = tell_tid.send(thread_id());
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime
                    .block_on(runtime::run(node_home, config, async {
                        let _ = stopped.await;
                    }))
                    .map_err(|e| e.to_string())
            })?;
        let tid = tid
            .recv_timeout(START_STOP)
            .context("the node's thread did not start")?;
        let port = wait_for(
            &format!("{name}'s API is up"),
            START_STOP,
            Duration::from_millis(10),
            || {
                if thread.is_finished() {
                    bail!("{name} stopped while starting");
                }
                Ok(home.endpoint().map(|e| e.port))
            },
        );
        let port = match port {
            Ok(port) => port,
            Err(e) => {
                let _ = stop.send(());
                return match thread.join() {
                    Ok(Err(reason)) => Err(e.context(reason)),
                    _ => Err(e),
                };
            }
        };
        let api = Api::new(&home, port)?;
        let whoami = api.call(&Request::Whoami)?;
        let member = whoami["member"]
            .as_str()
            .context("whoami names no member")?
            .to_string();
        Ok(LocalNode {
            name: name.to_string(),
            home,
            api,
            member,
            tid,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// CPU time of the node's thread so far.
    pub fn cpu(&self) -> Duration {
        thread_cpu(self.tid)
    }

    /// Stops the node and waits (bounded) for its thread to end.
    pub fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let thread = self.thread.take().context("not running")?;
        let deadline = Instant::now() + START_STOP;
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                bail!("{} did not stop within {START_STOP:?}", self.name);
            }
            thread::sleep(Duration::from_millis(10));
        }
        match thread.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow!("{} failed: {e}", self.name)),
            Err(_) => Err(anyhow!("{} panicked", self.name)),
        }
    }
}

impl Drop for LocalNode {
    fn drop(&mut self) {
        // Tell it to stop; a node that was not stopped with `stop` is not waited for.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// This thread's id, as `/proc/self/task/<tid>` names it.
fn thread_id() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time of one of this process's threads (zero where the kernel does not say).
pub fn thread_cpu(tid: u32) -> Duration {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// A node in a process of its own.

/// A node running as `netbench __node HOME`: a process of its own.
pub struct ChildNode {
    /// Its API.
    pub api: Api,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl ChildNode {
    /// Initialises `dir`, starts the node there and waits until its API is up. The node's
    /// log goes to `log`.
    pub fn start(name: &str, dir: &Path, log: &Path) -> Result<ChildNode> {
        let (home, _) = Home::init(dir, Some(name))?;
        home.clear_endpoint();
        home.api_token()?;
        let log = std::fs::File::create(log)?;
        let mut child = Command::new(std::env::current_exe()?)
            .arg("__node")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting netbench __node")?;
        let stdin = child.stdin.take();
        let pid = child.id();
        let port = wait_for(
            &format!("{name}'s API is up"),
            START_STOP,
            Duration::from_millis(10),
            || {
                if let Some(status) = child.try_wait()? {
                    bail!("{name} exited while starting ({status})");
                }
                Ok(home.endpoint().filter(|e| e.pid == pid).map(|e| e.port))
            },
        );
        let port = match port {
            Ok(port) => port,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(ChildNode {
            api: Api::new(&home, port)?,
            child,
            stdin,
        })
    }

    /// The process's CPU time so far, from the scheduler, in nanoseconds: the sum over its
    /// threads alive now.
    pub fn cpu(&self) -> Result<Duration> {
        tasks_cpu(&format!("/proc/{}", self.child.id()))
    }

    /// The process's user + system CPU time so far, every thread, in clock ticks of 10 ms.
    pub fn cpu_ticks(&self) -> Result<Duration> {
        process_cpu(&format!("/proc/{}/stat", self.child.id()))
    }

    /// A field of the process's `/proc/PID/status` in kB (`VmRSS`, `VmHWM`).
    pub fn status_kb(&self, field: &str) -> Result<u64> {
        status_kb(&format!("/proc/{}/status", self.child.id()), field)
    }

    /// Closes its stdin (it stops cleanly on that) and waits, bounded; kills it past the bound.
    pub fn stop(mut self) -> Result<()> {
        drop(self.stdin.take());
        let deadline = Instant::now() + START_STOP;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the child node exited with {status}");
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the child node did not stop within {START_STOP:?}; killed it");
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `netbench __node HOME`: runs a node on HOME until stdin closes.
pub fn child_main(args: &[String]) -> Result<()> {
    let dir = PathBuf::from(args.first().context("__node needs a data directory")?);
    let home = Home::open(&dir)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    thread::spawn(move || {
        // Blocks until the parent closes its end (or goes away).
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = stop.send(());
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(runtime::run(
        home,
        config(Vec::new(), Duration::from_secs(30)),
        async {
            let _ = stopped.await;
        },
    ))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// /proc.

/// User + system CPU time from a `/proc/.../stat` file (clock ticks of 10 ms: Linux's
/// USER_HZ is 100).
pub fn process_cpu(path: &str) -> Result<Duration> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // The command name may hold spaces: the fields after it start with the state (field 3).
    let after = stat
        .rsplit_once(')')
        .with_context(|| format!("{path}: no command name"))?
        .1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .with_context(|| format!("{path}: too few fields"))?
            .parse()
            .with_context(|| format!("{path}: not a number"))
    };
    // utime and stime are fields 14 and 15: indexes 11 and 12 after the name.
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

/// The CPU time of every thread of a process that is alive now (`/proc/PID` or `/proc/self`),
/// from each thread's `schedstat`, in nanoseconds.
pub fn tasks_cpu(process: &str) -> Result<Duration> {
    let tasks = format!("{process}/task");
    let mut total = Duration::ZERO;
    for task in std::fs::read_dir(&tasks).with_context(|| format!("reading {tasks}"))? {
        let schedstat = task?.path().join("schedstat");
        // A thread that ended meanwhile has no file any more.
        if let Ok(text) = std::fs::read_to_string(schedstat) {
            if let Some(ns) = text.split_whitespace().next().and_then(|n| n.parse().ok()) {
                total += Duration::from_nanos(ns);
            }
        }
    }
    Ok(total)
}

/// A `kB` field of a `/proc/.../status` file.
pub fn status_kb(path: &str, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .with_context(|| format!("no {field} in {path}"))?;
    let kb = line[field.len() + 1..].trim().trim_end_matches("kB").trim();
    Ok(kb.parse()?)
}
