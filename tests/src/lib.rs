//! Test support: real `catchment` processes, each on its own data directory.
//!
//! A [`Node`] is one data directory and, while it runs, one `catchment up` process listening on
//! 127.0.0.1 only, with mDNS off. Every other command goes through [`Node::run`] and its
//! wrappers, which reach the running node's API exactly as a person's `catchment` would (or the
//! store itself when the node is stopped). Every wait is bounded: a command that does not end
//! within [`COMMAND_TIMEOUT`] is killed and the test fails, naming it.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod netns;

/// The longest a single CLI command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a node may take to start (api.json written) or to stop after SIGTERM.
pub const START_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The `catchment` binary: `$CATCHMENT_BIN`, else `<target>/<profile>/catchment` beside this
/// test binary (which sits in `<target>/<profile>/deps/`). When that one is missing, or older
/// than a source file of the crates it is built from (as after `cargo test -p catchment-tests`
/// following an edit), it is built once with `cargo build -p catchment-cli --bin catchment`.
pub fn catchment_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("CATCHMENT_BIN").filter(|b| !b.is_empty()) {
            let bin = PathBuf::from(bin);
            assert!(
                bin.is_file(),
                "CATCHMENT_BIN={} is not a file",
                bin.display()
            );
            return bin;
        }
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test binary lives in <target>/<profile>/deps");
        let bin = profile_dir.join("catchment");
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the tests crate sits in the workspace");
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let sources = [
            "cli",
            "node",
            "protocol",
            "crdt",
            "Cargo.toml",
            "Cargo.lock",
        ]
        .iter()
        .filter_map(|p| newest(&workspace.join(p)))
        .max();
        if built.is_some_and(|built| sources.is_none_or(|s| s <= built)) {
            return bin;
        }
        let target_dir = profile_dir.parent().expect("a target directory");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_string(),
            Some(other) => other.to_string(),
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .current_dir(workspace)
            .args([
                "build",
                "-p",
                "catchment-cli",
                "--bin",
                "catchment",
                "--profile",
            ])
            .arg(&profile)
            .arg("--target-dir")
            .arg(target_dir);
        let output = output_within(command, Duration::from_secs(900), "cargo build catchment");
        assert!(
            output.status.success() && bin.is_file(),
            "building {} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        bin
    })
}

/// The newest modification time of a file, or of the files under a directory (`target`
/// excepted).
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name() != "target")
        .filter_map(|entry| newest(&entry.path()))
        .max()
}

/// Polls `probe` every 100 ms until it returns `Ok` or `timeout` passes; then panics with
/// `what` and the last reason the probe gave.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match probe() {
            Ok(value) => return value,
            Err(reason) if start.elapsed() >= timeout => {
                panic!("{what}: still not so after {timeout:?}:\n{reason}")
            }
            Err(_) => thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Sends a signal to a process with `kill(1)`.
fn signal(pid: u32, name: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs a command to its end, killing it and panicking if it takes longer than `timeout`.
pub fn output_within(mut command: Command, timeout: Duration, what: &str) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(output) => output.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            signal(pid, "KILL");
            panic!("{what}: no answer within {timeout:?}; killed it")
        }
    }
}

/// One data directory, and its `catchment up` process while it runs.
pub struct Node {
    /// A name for messages ("A", "B", ...).
    pub name: String,
    /// The data directory.
    pub home: PathBuf,
    /// The node's stderr, appended to by every start.
    pub log: PathBuf,
    /// Extra arguments for `up` (e.g. `--dial ADDR`), used by every (re)start.
    pub up_args: Vec<String>,
    /// Where `up` listens (default `/ip4/127.0.0.1/tcp/0`).
    pub listen: String,
    /// A network namespace (made by the test) that the node and every command run in.
    pub netns: Option<String>,
    child: Option<Child>,
}

impl Node {
    /// Makes `dir/<name lowercased>` a data directory with a member key and display `name`.
    pub fn init(dir: &Path, name: &str) -> Node {
        let node = Node {
            name: name.to_string(),
            home: dir.join(name.to_lowercase()),
            log: dir.join(format!("{}.log", name.to_lowercase())),
            up_args: Vec::new(),
            listen: "/ip4/127.0.0.1/tcp/0".to_string(),
            netns: None,
            child: None,
        };
        node.ok(&["init", "--name", name]);
        node
    }

    /// The process id of the running node, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether this test started the node and has not stopped it.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts `catchment up` on 127.0.0.1 with mDNS off and a 1 s sync interval, and waits
    /// until its API is up (api.json names this very process).
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the node's log");
        let child = self
            .command()
            .arg("--home")
            .arg(&self.home)
            .args([
                "up",
                "--listen",
                &self.listen,
                "--no-mdns",
                "--sync-interval",
                "1",
            ])
            .args(&self.up_args)
            .env_remove("CATCHMENT_HOME")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{}: `catchment up` does not start: {e}", self.name));
        let pid = child.id();
        self.child = Some(child);
        let name = self.name.clone();
        wait_for(&format!("{name}'s API is up"), START_STOP_TIMEOUT, || {
            if let Some(status) = self.exited() {
                panic!(
                    "{name}: `catchment up` exited ({status}) while starting; log:\n{}",
                    self.log_tail()
                );
            }
            match self.endpoint() {
                Some(endpoint) if endpoint["pid"].as_u64() == Some(u64::from(pid)) => Ok(()),
                other => Err(format!("api.json: {other:?}; log:\n{}", self.log_tail())),
            }
        });
    }

    /// The node's api.json, if there is one.
    pub fn endpoint(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.home.join("api.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The running node's API port.
    pub fn api_port(&self) -> u16 {
        let endpoint = self
            .endpoint()
            .unwrap_or_else(|| panic!("{} has no api.json", self.name));
        endpoint["port"].as_u64().expect("a port") as u16
    }

    /// The API token.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.home.join("api.token"))
            .expect("api.token")
            .trim()
            .to_string()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// Waits (bounded) for the process to end after a signal.
    fn reap(&mut self, how: &str) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + START_STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the node") {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} did not stop within {START_STOP_TIMEOUT:?} after {how}; log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the node with SIGTERM and checks that it stopped cleanly (exit 0, api.json gone).
    pub fn stop(&mut self) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{} is not running", self.name));
        assert!(signal(pid, "TERM"), "kill -TERM {pid} failed");
        let status = self.reap("SIGTERM");
        assert!(
            status.success(),
            "{} did not stop cleanly on SIGTERM ({status}); log:\n{}",
            self.name,
            self.log_tail()
        );
        assert!(
            self.endpoint().is_none(),
            "{} left api.json behind after a clean stop",
            self.name
        );
    }

    /// Kills the node with SIGKILL: no chance to flush or clean up (api.json stays behind).
    pub fn kill(&mut self) {
        let pid = self
            .pid()
            .unwrap_or_else(|| panic!("{} is not running", self.name));
        assert!(signal(pid, "KILL"), "kill -KILL {pid} failed");
        let status = self.reap("SIGKILL");
        assert!(!status.success(), "{} exited by itself", self.name);
    }

    /// Stops the node with SIGTERM and starts it again.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// `catchment`, run inside the node's network namespace if it has one.
    fn command(&self) -> Command {
        match &self.netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns]).arg(catchment_bin());
                command
            }
            None => Command::new(catchment_bin()),
        }
    }

    /// Runs `catchment --home HOME ARGS...` to its end (bounded).
    pub fn run(&self, args: &[&str]) -> Output {
        let mut command = self.command();
        command
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .env_remove("CATCHMENT_HOME");
        output_within(
            command,
            COMMAND_TIMEOUT,
            &format!("{}: catchment {}", self.name, args.join(" ")),
        )
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{}: `catchment {}` failed: {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }

    /// Runs a command with `--json` that must succeed, and parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        self.try_json(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs a command with `--json`; its JSON, or why there is none.
    pub fn try_json(&self, args: &[&str]) -> Result<Value, String> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        if !out.status.success() {
            return Err(format!(
                "{}: `catchment {}` failed: {}",
                self.name,
                all.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "{}: `catchment {}` printed no JSON ({e}): {}",
                self.name,
                all.join(" "),
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs a command that must fail with one `error: ...` line; returns that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert!(
            !out.status.success(),
            "{}: `catchment {}` should have failed; it printed {}",
            self.name,
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{}: `catchment {}`: not a one-line error: {err}",
            self.name,
            args.join(" ")
        );
        err
    }

    /// This node's member id (hex).
    pub fn member_id(&self) -> String {
        self.json(&["whoami"])["member"]
            .as_str()
            .expect("a member id")
            .to_string()
    }

    /// The running node's first listening address, with its PeerId: what a peer dials.
    pub fn address(&self) -> String {
        let peers = self.json(&["peers"]);
        let me = peers["me"].as_str().expect("a PeerId");
        let listening = peers["listening"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{} listens nowhere: {peers}", self.name));
        assert!(
            listening.starts_with("/ip4/127.0.0.1/"),
            "{} listens on {listening}, not loopback",
            self.name
        );
        format!("{listening}/p2p/{me}")
    }

    /// The last 40 lines of the node's log.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
