//! A small internet made of Linux network namespaces, for tests that need NAT.
//!
//! ```text
//!  a (192.168.1.2) ── nat-a (192.168.1.1 | 10.1.1.2) ──┐
//!                                                      s (10.1.1.1, 10.1.2.1)
//!  b (192.168.2.2) ── nat-b (192.168.2.1 | 10.1.2.2) ──┘
//! ```
//!
//! `s` is the reachable side (a server, and the router between the two NATs); each `nat-*`
//! masquerades its private side behind its public address and drops connections that nobody
//! behind it opened, as a home router does. The namespaces get names unique to this process and
//! lab, so parallel runs do not collide, and [`Lab`]'s `Drop` deletes them (and so their veth
//! pairs and rules) even when the test fails. Only addresses inside these namespaces are used.
//!
//! Needs root, `ip` (iproute2) and `iptables`. When a namespace cannot be made, [`Lab::new`]
//! returns why, and the test fails saying so.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::output_within;

/// The namespaces of one lab.
pub struct Lab {
    /// The reachable server's namespace.
    pub s: String,
    /// A's namespace (behind nat-a).
    pub a: String,
    /// B's namespace (behind nat-b).
    pub b: String,
    /// The NATs' namespaces.
    nats: [String; 2],
}

/// Runs a command; `Err` with its output when it fails.
fn sh(args: &[&str]) -> Result<(), String> {
    let mut command = Command::new(args[0]);
    command.args(&args[1..]);
    let out = output_within(command, Duration::from_secs(30), &args.join(" "));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs a command inside a namespace.
fn within(netns: &str, args: &[&str]) -> Result<(), String> {
    let mut all = vec!["ip", "netns", "exec", netns];
    all.extend_from_slice(args);
    sh(&all)
}

impl Lab {
    /// Builds the lab, or says why it cannot be built here.
    pub fn new() -> Result<Lab, String> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "cm{}x{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        let name = |role: &str| format!("{tag}-{role}");
        let lab = Lab {
            s: name("s"),
            a: name("a"),
            b: name("b"),
            nats: [name("na"), name("nb")],
        };
        for tool in ["ip", "iptables"] {
            if Command::new(tool).arg("-V").output().is_err() {
                return Err(format!(
                    "`{tool}` is not installed (apt-get install iproute2 iptables)"
                ));
            }
        }
        // Made first, so that a failure part-way still deletes whatever was made.
        for netns in lab.all() {
            sh(&["ip", "netns", "add", netns])
                .map_err(|e| format!("cannot create network namespaces here: {e}"))?;
            within(netns, &["ip", "link", "set", "lo", "up"])?;
        }
        for (host, nat, side) in [(&lab.a, &lab.nats[0], 1), (&lab.b, &lab.nats[1], 2)] {
            lab.wire(host, nat, side)?;
        }
        within(
            &lab.s,
            &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"],
        )?;
        Ok(lab)
    }

    fn all(&self) -> [&String; 5] {
        [&self.s, &self.nats[0], &self.nats[1], &self.a, &self.b]
    }

    /// Wires `host` behind `nat`, and `nat` to `s`, for side 1 or 2.
    fn wire(&self, host: &str, nat: &str, side: u8) -> Result<(), String> {
        let private = format!("192.168.{side}");
        let public = format!("10.1.{side}");
        // host <-> nat (private side)
        sh(&[
            "ip", "link", "add", "lan", "netns", host, "type", "veth", "peer", "name", "lan",
            "netns", nat,
        ])?;
        // nat (public side) <-> s
        let s_end = format!("wan{side}");
        sh(&[
            "ip", "link", "add", "wan", "netns", nat, "type", "veth", "peer", "name", &s_end,
            "netns", &self.s,
        ])?;
        within(
            host,
            &[
                "ip",
                "addr",
                "add",
                &format!("{private}.2/24"),
                "dev",
                "lan",
            ],
        )?;
        within(host, &["ip", "link", "set", "lan", "up"])?;
        within(
            host,
            &[
                "ip",
                "route",
                "add",
                "default",
                "via",
                &format!("{private}.1"),
            ],
        )?;
        within(
            nat,
            &[
                "ip",
                "addr",
                "add",
                &format!("{private}.1/24"),
                "dev",
                "lan",
            ],
        )?;
        within(
            nat,
            &["ip", "addr", "add", &format!("{public}.2/24"), "dev", "wan"],
        )?;
        within(nat, &["ip", "link", "set", "lan", "up"])?;
        within(nat, &["ip", "link", "set", "wan", "up"])?;
        within(
            nat,
            &[
                "ip",
                "route",
                "add",
                "default",
                "via",
                &format!("{public}.1"),
            ],
        )?;
        within(
            &self.s,
            &[
                "ip",
                "addr",
                "add",
                &format!("{public}.1/24"),
                "dev",
                &s_end,
            ],
        )?;
        within(&self.s, &["ip", "link", "set", &s_end, "up"])?;
        within(nat, &["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])?;
        // A home router: masquerade outgoing, let in only what answers it.
        within(
            nat,
            &[
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "wan",
                "-j",
                "MASQUERADE",
            ],
        )?;
        within(
            nat,
            &[
                "iptables",
                "-A",
                "FORWARD",
                "-i",
                "wan",
                "-m",
                "conntrack",
                "--ctstate",
                "ESTABLISHED,RELATED",
                "-j",
                "ACCEPT",
            ],
        )?;
        within(
            nat,
            &["iptables", "-A", "FORWARD", "-i", "wan", "-j", "DROP"],
        )?;
        Ok(())
    }

    /// The address of `s` that A's side reaches.
    pub fn s_address_for_a(&self) -> &'static str {
        "10.1.1.1"
    }

    /// The address of `s` that B's side reaches.
    pub fn s_address_for_b(&self) -> &'static str {
        "10.1.2.1"
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for netns in self.all() {
            let _ = Command::new("ip").args(["netns", "del", netns]).output();
        }
    }
}
