//! The yardstick for propagation: bare gossipsub, nothing else.
//!
//! Ten libp2p swarms whose only behaviour is gossipsub, over the node's transport (TCP with
//! Noise and yamux, `nodelay`), each on its own thread with a one-worker tokio runtime, all
//! star-connected to swarm 0 like the benchmark's nodes. gossipsub is configured as the node
//! configures it (`catchment_node::net`: 700 ms heartbeat, strict signing, message id = hash
//! of the data, 300 KiB limit) except that messages are not validated by the application:
//! there is no opening, no validation, no storage; a swarm forwards what it receives at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, Swarm};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::node::wait_for;

/// The gossipsub topic every swarm joins.
const TOPIC: &str = "netbench";

enum Command {
    /// Publish `size` bytes carrying `index`; answer with the moment `publish` returned.
    Publish {
        index: u64,
        size: usize,
        reply: mpsc::Sender<Result<Instant, String>>,
    },
}

struct Swarmer {
    commands: tokio::sync::mpsc::UnboundedSender<Command>,
    /// When each message (by index) arrived here.
    heard: Arc<Mutex<HashMap<u64, Instant>>>,
    /// Peers in this swarm's mesh for the topic, updated every 100 ms.
    mesh: Arc<AtomicUsize>,
    thread: JoinHandle<()>,
}

/// Ten (or any number of) bare gossipsub swarms, star-connected.
pub struct Star {
    swarms: Vec<Swarmer>,
}

impl Star {
    /// Starts `n` swarms (swarm 0 first; the others dial it) and waits, bounded, until every
    /// swarm's mesh holds all its peers: swarm 0 the `n - 1` others, each other swarm 0.
    pub fn start(n: usize) -> Result<Star> {
        let (hub, address) = spawn(None)?;
        let address = address
            .recv_timeout(Duration::from_secs(30))
            .context("swarm 0 is not listening")?;
        let mut swarms = vec![hub];
        for _ in 1..n {
            swarms.push(spawn(Some(address.clone()))?.0);
        }
        let star = Star { swarms };
        wait_for(
            "every bare gossipsub mesh is complete",
            Duration::from_secs(30),
            Duration::from_millis(50),
            || {
                let hub = star.swarms[0].mesh.load(Ordering::Relaxed) == n - 1;
                let leaves = star.swarms[1..]
                    .iter()
                    .all(|s| s.mesh.load(Ordering::Relaxed) == 1);
                Ok((hub && leaves).then_some(()))
            },
        )?;
        Ok(star)
    }

    /// Publishes message `index` of `size` bytes from swarm `from`; when `publish` returned.
    pub fn publish(&self, from: usize, index: u64, size: usize) -> Result<Instant> {
        let (reply, answer) = mpsc::channel();
        self.swarms[from]
            .commands
            .send(Command::Publish { index, size, reply })
            .map_err(|_| anyhow!("swarm {from} has stopped"))?;
        answer
            .recv_timeout(Duration::from_secs(10))
            .context("no answer to a publish")?
            .map_err(|e| anyhow!("publish from swarm {from}: {e}"))
    }

    /// When swarm `at` received message `index`, if it has.
    pub fn heard(&self, at: usize, index: u64) -> Option<Instant> {
        self.swarms[at]
            .heard
            .lock()
            .expect("heard")
            .get(&index)
            .copied()
    }

    /// How many swarms.
    pub fn len(&self) -> usize {
        self.swarms.len()
    }

    /// Stops every swarm and waits for its thread.
    pub fn stop(self) {
        for swarm in self.swarms {
            drop(swarm.commands);
            let _ = swarm.thread.join();
        }
    }
}

fn config() -> Result<gossipsub::Config> {
    gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(700))
        .validation_mode(gossipsub::ValidationMode::Strict)
        .max_transmit_size(300 * 1024)
        .message_id_fn(|message| {
            gossipsub::MessageId::from(Sha256::digest(&message.data)[..20].to_vec())
        })
        .build()
        .map_err(|e| anyhow!("gossipsub config: {e}"))
}

fn build() -> Result<Swarm<gossipsub::Behaviour>> {
    let config = config()?;
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|key| {
            gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)
                .map_err(|e| Box::<dyn std::error::Error + Send + Sync>::from(e.to_string()))
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build())
}

/// Starts one swarm on its own thread; the receiver gets its first listening address.
fn spawn(dial: Option<Multiaddr>) -> Result<(Swarmer, mpsc::Receiver<Multiaddr>)> {
    let (commands, mut inbox) = tokio::sync::mpsc::unbounded_channel();
    let (tell_address, address) = mpsc::channel();
    let heard = Arc::new(Mutex::new(HashMap::new()));
    let mesh = Arc::new(AtomicUsize::new(0));
    let (thread_heard, thread_mesh) = (heard.clone(), mesh.clone());
    let thread = thread::Builder::new()
        .name("bare-gossipsub".into())
        .stack_size(8 << 20)
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => return eprintln!("netbench: a tokio runtime: {e}"),
            };
            runtime.block_on(async move {
                let mut swarm = match build() {
                    Ok(swarm) => swarm,
                    Err(e) => return eprintln!("netbench: a bare swarm: {e:#}"),
                };
                let topic = IdentTopic::new(TOPIC);
                let listen = "/ip4/127.0.0.1/tcp/0".parse().expect("a valid multiaddr");
                if let Err(e) = swarm.listen_on(listen) {
                    return eprintln!("netbench: a bare swarm cannot listen: {e}");
                }
                if let Err(e) = swarm.behaviour_mut().subscribe(&topic) {
                    return eprintln!("netbench: a bare swarm cannot subscribe: {e}");
                }
                if let Some(address) = dial {
                    if let Err(e) = swarm.dial(address) {
                        return eprintln!("netbench: a bare swarm cannot dial: {e}");
                    }
                }
                let mut tell_address = Some(tell_address);
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tokio::select! {
                        command = inbox.recv() => {
                            let Some(Command::Publish { index, size, reply }) = command else {
                                break;
                            };
                            let mut data = vec![0u8; size.max(8)];
                            rand::thread_rng().fill_bytes(&mut data[8..]);
                            data[..8].copy_from_slice(&index.to_le_bytes());
                            let published = swarm
                                .behaviour_mut()
                                .publish(topic.clone(), data)
                                .map(|_| Instant::now())
                                .map_err(|e| e.to_string());
                            let _ = reply.send(published);
                        }
                        event = swarm.select_next_some() => match event {
                            SwarmEvent::NewListenAddr { address, .. } => {
                                if let Some(tell) = tell_address.take() {
                                    let _ = tell.send(address);
                                }
                            }
                            SwarmEvent::Behaviour(gossipsub::Event::Message { message, .. }) => {
                                let at = Instant::now();
                                if let Some(index) = message.data.get(..8) {
                                    let index = u64::from_le_bytes(index.try_into().expect("8 bytes"));
                                    thread_heard.lock().expect("heard").insert(index, at);
                                }
                            }
                            _ => {}
                        },
                        _ = tick.tick() => {
                            let peers = swarm.behaviour().mesh_peers(&topic.hash()).count();
                            thread_mesh.store(peers, Ordering::Relaxed);
                        }
                    }
                }
            });
        })?;
    Ok((
        Swarmer {
            commands,
            heard,
            mesh,
            thread,
        },
        address,
    ))
}
