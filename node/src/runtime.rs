//! The running node: one event loop that owns the engine and the swarm, fed by a bounded
//! command channel from the local API.
//!
//! * Commands from the API are executed in arrival order; those waiting together are committed
//!   with one flush (group commit) before any of them is answered, so nothing is confirmed
//!   before it is on disk. New local changes are then gossiped, sealed with the topic key.
//! * Gossip messages are opened, decoded and ingested through the same validation as local
//!   changes; the verdict is reported back to gossipsub (accept, reject, or ignore while
//!   pending), so only valid changes are forwarded.
//! * Anti-entropy: on every connection, and every `sync_interval`, a session per topic asks
//!   the peer for its heads (proving membership first), plans what is missing, and pulls it in
//!   bounded batches until nothing is missing. Both sides do this, so both end complete.
//! * Peers that served a topic are remembered and redialled with backoff; mDNS finds peers on
//!   the LAN; the DHT finds a topic's members beyond it (`discovery.rs`); relays, hole punching
//!   and AutoNAT reach peers behind NAT (`relay.rs`); the offline switch drops every connection
//!   and stops dialling.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use catchment_crdt::TopicId;
use catchment_protocol::envelope;
use catchment_protocol::sync::{self as wire, SyncRequest, SyncResponse};
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, TopicHash};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{identity, mdns, noise, tcp, yamux, PeerId, Swarm};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::api::ApiState;
use crate::discovery::{self, Discovery};
use crate::engine::{system_now, Engine, Ingested};
use crate::home::{Endpoint, Home};
use crate::net::{Behaviour, BehaviourEvent, NetOptions, SyncBytes};
use crate::ops::{self, Request};
use crate::relay::{self as reach, Links};
use crate::store::{decode, encode, layout, scan, Batch, SledBackend};

pub use libp2p::Multiaddr;

/// Commands waiting for the event loop; a full channel makes API callers wait.
const COMMAND_QUEUE: usize = 256;
/// Sync rounds per session before it stops (the next tick resumes).
const MAX_ROUNDS: u32 = 64;
/// The most bytes of changes asked for in one response.
const BATCH_BYTES: u32 = 1024 * 1024;
/// Longest wait between redials of a remembered peer.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How to run a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Swarm listen addresses.
    pub listen: Vec<Multiaddr>,
    /// The API's port on 127.0.0.1 (0: any free port).
    pub api_port: u16,
    /// Find peers on the LAN with mDNS.
    pub mdns: bool,
    /// Addresses to dial at start.
    pub dial: Vec<Multiaddr>,
    /// How often anti-entropy runs with each connected peer.
    pub sync_interval: Duration,
    /// Run as a seed: relay for others, a small server's limits, no relay reservations.
    pub seed: bool,
    /// Offer the relay service to others (always on for a seed).
    pub relay: bool,
    /// Addresses where others reach this node that it cannot see itself (a port forward, a
    /// public address): announced as they are.
    pub external: Vec<Multiaddr>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".parse().expect("valid"),
                "/ip4/0.0.0.0/udp/0/quic-v1".parse().expect("valid"),
            ],
            api_port: 0,
            mdns: true,
            dial: Vec::new(),
            sync_interval: Duration::from_secs(30),
            seed: false,
            relay: false,
            external: Vec::new(),
        }
    }
}

/// Requests about the network, answered by the running node only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum NetRequest {
    /// Per topic: peers, when each was last in sync, whether heads agree.
    Status,
    /// Connected and remembered peers.
    Peers,
    /// Drop all connections and stop dialling (`true`), or reconnect (`false`).
    Offline {
        /// The switch.
        on: bool,
    },
    /// Dial an address.
    Dial {
        /// A multiaddr.
        address: String,
    },
}

/// Something that happened, for the event stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A change was accepted.
    Change {
        /// Topic id (hex).
        topic: String,
        /// Document.
        doc: String,
        /// Made on this node (not received).
        local: bool,
    },
    /// A peer connected or left.
    Peer {
        /// Peer id.
        peer: String,
        /// Connected now.
        connected: bool,
    },
    /// A sync session finished a round with a peer.
    Sync {
        /// Peer id.
        peer: String,
        /// Topic id (hex).
        topic: String,
        /// Our heads equal theirs.
        in_sync: bool,
    },
}

impl Event {
    /// The event's name in the stream.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Change { .. } => "change",
            Event::Peer { .. } => "peer",
            Event::Sync { .. } => "sync",
        }
    }
}

/// A command for the event loop.
pub enum Command {
    /// Execute an operation.
    Call {
        /// The operation.
        request: Request,
        /// Where the result goes.
        reply: oneshot::Sender<Result<Value, String>>,
    },
    /// A network request.
    Network {
        /// The request.
        request: NetRequest,
        /// Where the result goes.
        reply: oneshot::Sender<Result<Value, String>>,
    },
}

/// What this node knows of a peer's copy of a topic.
#[derive(Debug, Clone, Default)]
struct TopicSync {
    /// Their heads at the last exchange.
    theirs: Vec<wire::DocHeads>,
    /// When a session last found nothing missing.
    last_sync: Option<i64>,
    /// Rounds in the current session.
    rounds: u32,
    /// The peer refused us (not a member there, or does not know us yet).
    refused: Option<String>,
}

#[derive(Debug, Default)]
struct PeerState {
    addresses: Vec<Multiaddr>,
    connected: bool,
    topics: BTreeMap<TopicId, TopicSync>,
}

#[derive(Debug)]
struct Backoff {
    next: Instant,
    delay: Duration,
}

struct Runtime {
    home: Home,
    engine: Engine,
    swarm: Swarm<Behaviour>,
    events: broadcast::Sender<Event>,
    config: NodeConfig,
    offline: bool,
    peers: HashMap<PeerId, PeerState>,
    requests: HashMap<OutboundRequestId, (PeerId, TopicId)>,
    subscribed: HashMap<TopicHash, TopicId>,
    backoff: HashMap<PeerId, Backoff>,
    /// When to dial the invites' addresses again while no peer is connected.
    hints: Backoff,
    /// Bytes of sync frames written and read, for `status`.
    sync_bytes: Arc<SyncBytes>,
    /// How each peer is reached; the relays this node listens through.
    links: Links,
    /// The DHT's announcements and lookups.
    discovery: Discovery,
    /// Dials of the addresses the user gave (`--dial`, `[network] dial`), whose failure is
    /// worth a warning: other dials fail quietly and are retried.
    given_dials: HashMap<ConnectionId, Multiaddr>,
}

/// Errors that stop a node from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory.
    #[error(transparent)]
    Home(#[from] crate::home::HomeError),
    /// The store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The network.
    #[error("network: {0}")]
    Network(String),
    /// The API's port.
    #[error("cannot listen for the API on 127.0.0.1:{port}: {reason}")]
    Api {
        /// The port.
        port: u16,
        /// Why.
        reason: String,
    },
}

/// Runs a node until `shutdown` resolves; flushes the store before returning.
pub async fn run(
    home: Home,
    config: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    let backend = SledBackend::open(&home.store_dir())?;
    let engine = Engine::open(Box::new(backend), home.keypair()?);
    let device = identity::Keypair::ed25519_from_bytes(home.device_key()?)
        .map_err(|e| StartError::Network(e.to_string()))?;
    let options = NetOptions {
        mdns: config.mdns,
        relay_server: config.relay || config.seed,
        seed: config.seed,
    };
    let sync_bytes = Arc::new(SyncBytes::default());
    let codec_bytes = sync_bytes.clone();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(device)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| StartError::Network(e.to_string()))?
        .with_quic()
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| StartError::Network(e.to_string()))?
        .with_behaviour(|key, relay_client| {
            Behaviour::counting(key, &options, Some(relay_client), codec_bytes)
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| StartError::Network(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
        .build();
    for address in &config.external {
        swarm.add_external_address(address.clone());
    }
    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|e| StartError::Network(format!("listen on {address}: {e}")))?;
    }

    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], config.api_port)))
            .await
            .map_err(|e| StartError::Api {
                port: config.api_port,
                reason: e.to_string(),
            })?;
    let port = listener
        .local_addr()
        .map_err(|e| StartError::Api {
            port: config.api_port,
            reason: e.to_string(),
        })?
        .port();
    let (commands, mut inbox) = mpsc::channel(COMMAND_QUEUE);
    let (events, _) = broadcast::channel(1024);
    let state = Arc::new(ApiState {
        commands,
        events: events.clone(),
        token: home.api_token()?,
        port,
    });
    let api = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, crate::ui::app(state)).await {
            warn!(error = %e, "the local API stopped");
        }
    });
    home.write_endpoint(&Endpoint {
        port,
        pid: std::process::id(),
    })?;
    info!(member = %home.keypair()?.member_id().short(), peer = %swarm.local_peer_id(), api = %format!("http://127.0.0.1:{port}"), "node running");

    let mut runtime = Runtime {
        home,
        engine,
        swarm,
        events,
        config,
        offline: false,
        peers: HashMap::new(),
        requests: HashMap::new(),
        subscribed: HashMap::new(),
        backoff: HashMap::new(),
        given_dials: HashMap::new(),
        hints: Backoff {
            next: Instant::now() + Duration::from_secs(2),
            delay: Duration::from_secs(2),
        },
        sync_bytes,
        links: Links::default(),
        discovery: Discovery::new(),
    };
    if runtime.config.seed {
        info!("running as a seed: relaying for others");
    }
    runtime.subscribe_all();
    runtime.load_remembered();
    for address in runtime.config.dial.clone() {
        runtime.dial_given(address);
    }

    let mut sync_tick = tokio::time::interval(runtime.config.sync_interval);
    sync_tick.tick().await;
    let mut dial_tick = tokio::time::interval(Duration::from_secs(2));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            Some(command) = inbox.recv() => {
                let mut batch = vec![command];
                while let Ok(more) = inbox.try_recv() {
                    batch.push(more);
                }
                runtime.handle_commands(batch);
            }
            event = runtime.swarm.select_next_some() => runtime.handle_swarm(event),
            _ = sync_tick.tick() => runtime.sync_all(),
            _ = dial_tick.tick() => {
                runtime.redial();
                runtime.discover();
                if !runtime.offline {
                    runtime.links.retry(&mut runtime.swarm, runtime.config.seed);
                }
            }
            _ = &mut shutdown => break,
        }
    }
    info!("stopping: flushing the store");
    if let Err(e) = runtime.engine.commit() {
        warn!(error = %e, "final flush failed");
    }
    runtime.home.clear_endpoint();
    api.abort();
    Ok(())
}

impl Runtime {
    fn emit(&self, event: Event) {
        let _ = self.events.send(event);
    }

    fn handle_commands(&mut self, batch: Vec<Command>) {
        let mut replies = Vec::with_capacity(batch.len());
        let mut wrote = false;
        for command in batch {
            match command {
                Command::Call { request, reply } => {
                    wrote |= request.writes();
                    let request = self.fill_in(request);
                    let result = ops::execute(&mut self.engine, &self.home, request)
                        .map_err(|e| e.to_string());
                    replies.push((reply, result));
                }
                Command::Network { request, reply } => {
                    let result = self.network(request);
                    replies.push((reply, result));
                }
            }
        }
        // Group commit: one flush for everything above, before any of it is confirmed.
        if wrote {
            if let Err(e) = self.engine.commit() {
                for (reply, _) in replies {
                    let _ = reply.send(Err(format!("the store could not flush: {e}")));
                }
                return;
            }
        }
        self.drain_accepted();
        self.subscribe_all();
        for (reply, result) in replies {
            if let Ok(value) = &result {
                self.dial_invite_addresses(value);
            }
            let _ = reply.send(result);
        }
    }

    /// Adds what only the running node knows to a request (its addresses, for invites).
    fn fill_in(&self, request: Request) -> Request {
        match request {
            Request::InviteCreate {
                topic,
                role,
                expires,
                uses,
                addresses,
            } if addresses.is_empty() => {
                let addresses = reach::invite_addresses(
                    *self.swarm.local_peer_id(),
                    self.swarm.external_addresses(),
                    self.swarm.listeners(),
                );
                Request::InviteCreate {
                    topic,
                    role,
                    expires,
                    uses,
                    addresses,
                }
            }
            other => other,
        }
    }

    /// A join's response names the inviter's addresses: dial them.
    fn dial_invite_addresses(&mut self, value: &Value) {
        let Some(addresses) = value.get("addresses").and_then(Value::as_array) else {
            return;
        };
        let addresses: Vec<Multiaddr> = addresses
            .iter()
            .filter_map(|a| a.as_str()?.parse().ok())
            .collect();
        for address in addresses {
            self.dial(address);
        }
    }

    /// Gossips the changes accepted from local writes.
    /// Emits an event for every change accepted since the last call, and gossips those this
    /// member wrote (changes from peers travel on by gossipsub's own forwarding, or by sync).
    fn drain_accepted(&mut self) {
        let me = self.engine.me();
        for (topic, change) in self.engine.take_accepted() {
            let local = catchment_crdt::validate::decode(&change.bytes)
                .ok()
                .and_then(|c| catchment_crdt::validate::author_of(&c).ok())
                == Some(me);
            self.emit(Event::Change {
                topic: topic.to_hex(),
                doc: change.doc.to_string(),
                local,
            });
            if !local {
                continue;
            }
            let Ok(Some(key)) = self.engine.topic_key(&topic) else {
                continue;
            };
            let sealed = wire::seal(&key, &envelope::encode(&change));
            let gossip = IdentTopic::new(wire::gossip_topic(&key));
            if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(gossip, sealed) {
                // No peer yet, or one not subscribed yet: anti-entropy brings it to them.
                debug!(topic = %topic.short(), error = %e, "gossip not sent");
            }
        }
    }

    fn subscribe_all(&mut self) {
        let Ok(topics) = self.engine.topic_ids() else {
            return;
        };
        for topic in topics {
            let Ok(Some(key)) = self.engine.topic_key(&topic) else {
                continue;
            };
            let gossip = IdentTopic::new(wire::gossip_topic(&key));
            if self.subscribed.contains_key(&gossip.hash()) {
                continue;
            }
            if self
                .swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(&gossip)
                .is_ok()
            {
                self.subscribed.insert(gossip.hash(), topic);
                // A new topic: sync it with everyone connected.
                let connected = self.connected_peers();
                for peer in connected {
                    self.start_session(peer, topic);
                }
            }
        }
    }

    fn dial(&mut self, address: Multiaddr) {
        if self.offline {
            return;
        }
        if let Err(e) = self.swarm.dial(address.clone()) {
            debug!(%address, error = %e, "dial failed");
        }
    }

    /// Dials an address the user gave, and says so if it fails.
    fn dial_given(&mut self, address: Multiaddr) {
        let options = DialOpts::from(address.clone());
        let id = options.connection_id();
        match self.swarm.dial(options) {
            Ok(()) => {
                self.given_dials.insert(id, address);
            }
            Err(e) => warn!(%address, error = %e, "cannot dial this address"),
        }
    }

    fn handle_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                // A seed is run to be reached where it listens: its relay hands these out.
                if self.config.seed
                    && !reach::is_relayed(&address)
                    && !reach::is_unspecified(&address)
                {
                    self.swarm.add_external_address(address);
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                self.given_dials.remove(&connection_id);
                if self.offline {
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return;
                }
                self.links.established(peer_id, connection_id, &endpoint);
                let state = self.peers.entry(peer_id).or_default();
                let address = endpoint.get_remote_address().clone();
                if !state.addresses.contains(&address) && endpoint.is_dialer() {
                    state.addresses.push(address);
                }
                if !state.connected {
                    state.connected = true;
                    info!(peer = %peer_id, "peer connected");
                    self.emit(Event::Peer {
                        peer: peer_id.to_string(),
                        connected: true,
                    });
                }
                self.backoff.remove(&peer_id);
                if let Ok(topics) = self.engine.topic_ids() {
                    for topic in topics {
                        self.start_session(peer_id, topic);
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.links.closed(peer_id, connection_id);
                if num_established > 0 {
                    return;
                }
                if let Some(state) = self.peers.get_mut(&peer_id) {
                    state.connected = false;
                    // Try to get it back (unless offline), starting soon and backing off.
                    if !state.addresses.is_empty() {
                        self.backoff.insert(
                            peer_id,
                            Backoff {
                                next: Instant::now() + Duration::from_secs(1),
                                delay: Duration::from_secs(1),
                            },
                        );
                    }
                }
                info!(peer = %peer_id, "peer lost");
                self.emit(Event::Peer {
                    peer: peer_id.to_string(),
                    connected: false,
                });
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id,
                connection_id,
                error,
            } => {
                if let Some(address) = self.given_dials.remove(&connection_id) {
                    warn!(%address, %error, "could not reach an address given to dial");
                }
                let Some(peer) = peer_id else { return };
                debug!(%peer, %error, "connection failed");
                let backoff = self.backoff.entry(peer).or_insert(Backoff {
                    next: Instant::now(),
                    delay: Duration::from_secs(1),
                });
                backoff.delay = (backoff.delay * 2).min(MAX_BACKOFF);
                backoff.next = Instant::now() + backoff.delay;
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    let state = self.peers.entry(peer).or_default();
                    if !state.addresses.contains(&address) {
                        state.addresses.push(address.clone());
                    }
                    if !state.connected && !self.offline {
                        debug!(%peer, %address, "found on the LAN");
                        let _ = self.swarm.dial(address);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(
                libp2p::identify::Event::Received { peer_id, info, .. },
            )) => {
                debug!(peer = %peer_id, protocols = ?info.protocols, "identified");
                discovery::identified(&mut self.swarm.behaviour_mut().kad, peer_id, &info);
                let state = self.peers.entry(peer_id).or_default();
                for address in &info.listen_addrs {
                    if !state.addresses.contains(address) && !reach::is_unspecified(address) {
                        state.addresses.push(address.clone());
                    }
                }
                if info.protocols.contains(&libp2p::relay::HOP_PROTOCOL_NAME) {
                    self.links.offer(
                        &mut self.swarm,
                        self.config.seed,
                        peer_id,
                        &info.listen_addrs,
                    );
                }
            }
            SwarmEvent::ListenerClosed { listener_id, .. } => {
                self.links.listener_closed(listener_id)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => {
                let me = *self.swarm.local_peer_id();
                for (topic, peer) in self.discovery.on_event(me, event) {
                    self.found(topic, peer);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => self.links.hole_punch(event),
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(
                libp2p::autonat::v1::Event::StatusChanged { new, .. },
            )) => self.links.nat_changed(new),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(
                libp2p::relay::client::Event::ReservationReqAccepted {
                    relay_peer_id,
                    renewal,
                    ..
                },
            )) => self.links.reserved(relay_peer_id, renewal),
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => {
                debug!(?event, "relay service")
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => {
                let verdict =
                    self.gossip_message(&message.topic, &message.data, propagation_source);
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.sync_event(event),
            _ => {}
        }
    }

    fn gossip_message(
        &mut self,
        topic: &TopicHash,
        data: &[u8],
        from: PeerId,
    ) -> MessageAcceptance {
        let Some(topic) = self.subscribed.get(topic).copied() else {
            return MessageAcceptance::Ignore;
        };
        let Ok(Some(key)) = self.engine.topic_key(&topic) else {
            return MessageAcceptance::Ignore;
        };
        let Ok(plain) = wire::open(&key, data) else {
            return MessageAcceptance::Reject;
        };
        let Ok(change) = envelope::decode(&plain) else {
            return MessageAcceptance::Reject;
        };
        let owner = change.doc.journal_owner();
        match self.engine.ingest(&topic, vec![change]) {
            Ok(report) => {
                let mut verdict = self.after_ingest(&topic, &report);
                // A quarantined or refused member's changes are kept, not relayed.
                if let (MessageAcceptance::Accept, Some(owner)) = (&verdict, owner) {
                    let shown = matches!(self.engine.standing(&topic, &owner), Ok(Some(s)) if s.is_visible());
                    if !shown {
                        verdict = MessageAcceptance::Ignore;
                    }
                }
                if report.pending > 0
                    && report.accepted.is_empty()
                    && report.rejected.is_empty()
                    && report.duplicates == 0
                {
                    // Something it depends on is missing: ask the sender.
                    self.start_session(from, topic);
                }
                if owner.is_none() && !report.accepted.is_empty() {
                    // A new charter can change who may be served (an admission settled, a
                    // member removed): sync now rather than at the next tick.
                    for peer in self.connected_peers() {
                        self.start_session(peer, topic);
                    }
                }
                verdict
            }
            Err(e) => {
                warn!(topic = %topic.short(), error = %e, "could not store a gossiped change");
                MessageAcceptance::Ignore
            }
        }
    }

    /// Commits what a received batch brought, emits events, and says how to treat the gossip.
    fn after_ingest(&mut self, topic: &TopicId, report: &Ingested) -> MessageAcceptance {
        if !report.accepted.is_empty() {
            match self.engine.settle_admin_invites(topic) {
                Ok(0) => {}
                Ok(n) => info!(topic = %topic.short(), n, "admin invites settled: roles written"),
                Err(e) => warn!(error = %e, "could not settle admin invites"),
            }
            if let Err(e) = self.engine.commit() {
                warn!(error = %e, "flush failed");
            }
        }
        self.drain_accepted();
        let _ = topic;
        if !report.rejected.is_empty() {
            MessageAcceptance::Reject
        } else if !report.accepted.is_empty() {
            MessageAcceptance::Accept
        } else {
            MessageAcceptance::Ignore
        }
    }

    fn start_session(&mut self, peer: PeerId, topic: TopicId) {
        if self.offline || !self.peers.get(&peer).is_some_and(|p| p.connected) {
            return;
        }
        // One session at a time per peer and topic: a slow peer would otherwise get a new
        // one every tick, each adding work to what already makes it slow.
        if self
            .requests
            .values()
            .any(|(p, t)| *p == peer && *t == topic)
        {
            debug!(%peer, topic = %topic.short(), "a sync session is still running; no new one");
            return;
        }
        if let Some(sync) = self
            .peers
            .get_mut(&peer)
            .and_then(|p| p.topics.get_mut(&topic))
        {
            sync.rounds = 0;
        }
        self.request_heads(peer, topic);
    }

    /// The topic's tag and this member's proof for a request to `peer`; `None` for a topic
    /// without a key here.
    fn credentials(
        &mut self,
        peer: PeerId,
        topic: TopicId,
    ) -> Option<(wire::TopicTag, wire::Proof)> {
        let key = self.engine.topic_key(&topic).ok()??;
        let me = *self.swarm.local_peer_id();
        let proof = self
            .engine
            .proof(&topic, &me.to_bytes(), &peer.to_bytes())
            .ok()?;
        Some((wire::TopicTag::of(&key), proof))
    }

    fn request_heads(&mut self, peer: PeerId, topic: TopicId) {
        if let Some((tag, proof)) = self.credentials(peer, topic) {
            self.send(peer, topic, SyncRequest::Heads { tag, proof });
        }
    }

    fn send(&mut self, peer: PeerId, topic: TopicId, request: SyncRequest) {
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, wire::encode_request(&request));
        self.requests.insert(id, (peer, topic));
    }

    fn sync_event(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        let me = *self.swarm.local_peer_id();
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let response = match wire::decode_request(&request) {
                    Ok(request) => self.engine.serve(request, &peer.to_bytes(), &me.to_bytes()),
                    Err(e) => SyncResponse::Refused {
                        reason: e.to_string(),
                    },
                };
                let _ = self.engine.commit();
                self.drain_accepted();
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, wire::encode_response(&response));
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some((_, topic)) = self.requests.remove(&request_id) else {
                    return;
                };
                match wire::decode_response(&response) {
                    Ok(response) => self.sync_response(peer, topic, response),
                    Err(e) => debug!(%peer, error = %e, "bad sync response"),
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.requests.remove(&request_id);
                debug!(%peer, %error, "sync request failed; the next session resumes");
            }
            _ => {}
        }
    }

    fn sync_response(&mut self, peer: PeerId, topic: TopicId, response: SyncResponse) {
        match response {
            SyncResponse::Refused { reason } => {
                if let Some(standing) = reason.strip_prefix(crate::sync::STANDING_PREFIX) {
                    warn!(%peer, topic = %topic.short(), %standing, "a peer says this member's admission is not settled");
                }
                debug!(%peer, topic = %topic.short(), %reason, "peer refused sync");
                let sync = self
                    .peers
                    .entry(peer)
                    .or_default()
                    .topics
                    .entry(topic)
                    .or_default();
                sync.refused = Some(reason);
            }
            SyncResponse::Heads { docs } => {
                let wants = match self.engine.plan(&topic, &docs) {
                    Ok(wants) => wants,
                    Err(e) => {
                        warn!(error = %e, "planning a sync failed");
                        return;
                    }
                };
                let in_sync = self.engine.in_sync(&topic, &docs).unwrap_or(false);
                let now = system_now();
                let sync = self
                    .peers
                    .entry(peer)
                    .or_default()
                    .topics
                    .entry(topic)
                    .or_default();
                sync.theirs = docs;
                sync.refused = None;
                if wants.is_empty() {
                    sync.last_sync = Some(now);
                    sync.rounds = 0;
                    self.remember(peer, topic);
                    self.emit(Event::Sync {
                        peer: peer.to_string(),
                        topic: topic.to_hex(),
                        in_sync,
                    });
                    return;
                }
                sync.rounds += 1;
                if sync.rounds > MAX_ROUNDS {
                    return;
                }
                if let Some((tag, proof)) = self.credentials(peer, topic) {
                    let max_bytes = BATCH_BYTES;
                    self.send(
                        peer,
                        topic,
                        SyncRequest::Changes {
                            tag,
                            proof,
                            wants,
                            max_bytes,
                        },
                    );
                }
            }
            SyncResponse::Changes { changes, .. } => {
                let progress = match self.engine.receive(&topic, changes) {
                    Ok(report) => {
                        self.after_ingest(&topic, &report);
                        if !report.rejected.is_empty() {
                            warn!(%peer, rejected = report.rejected.len(), "peer sent changes that do not validate");
                        }
                        !report.accepted.is_empty()
                    }
                    Err(e) => {
                        warn!(error = %e, "storing synced changes failed");
                        false
                    }
                };
                // Ask for heads again: either more is missing, or the session ends in
                // agreement. A round that stored nothing ends the session (what is missing
                // cannot come from this peer now); the next tick tries again.
                if progress {
                    self.request_heads(peer, topic);
                }
            }
        }
    }

    /// The peers with a live connection now.
    fn connected_peers(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, p)| p.connected)
            .map(|(id, _)| *id)
            .collect()
    }

    fn sync_all(&mut self) {
        let Ok(topics) = self.engine.topic_ids() else {
            return;
        };
        let connected = self.connected_peers();
        for peer in connected {
            for topic in &topics {
                self.start_session(peer, *topic);
            }
        }
    }

    /// Remembers a peer that served a topic, with its addresses.
    fn remember(&mut self, peer: PeerId, topic: TopicId) {
        let Some(state) = self.peers.get(&peer) else {
            return;
        };
        let addresses: Vec<String> = state
            .addresses
            .iter()
            .filter(|a| !reach::is_unspecified(a))
            .map(|a| a.to_string())
            .collect();
        if addresses.is_empty() {
            return;
        }
        let mut batch = Batch::default();
        batch.put(
            layout::key(layout::PEER, &topic, &[&peer.to_bytes()]),
            encode(&addresses),
        );
        if let Err(e) = self.engine.backend().write(batch) {
            debug!(error = %e, "could not remember a peer");
        }
    }

    fn load_remembered(&mut self) {
        let Ok(topics) = self.engine.topic_ids() else {
            return;
        };
        for topic in topics {
            for hint in self.engine.dial_hints(&topic).unwrap_or_default() {
                if let Ok(address) = hint.parse::<Multiaddr>() {
                    self.dial(address);
                }
            }
            let prefix = layout::prefix(layout::PEER, &topic);
            let entries: Vec<_> = scan(self.engine.backend(), &prefix)
                .filter_map(Result::ok)
                .collect();
            for (key, value) in entries {
                let Ok(peer) = PeerId::from_bytes(&key[prefix.len()..]) else {
                    continue;
                };
                let Ok(addresses) = decode::<Vec<String>>(&key, &value) else {
                    continue;
                };
                let state = self.peers.entry(peer).or_default();
                for address in addresses.iter().filter_map(|a| a.parse().ok()) {
                    if !state.addresses.contains(&address) {
                        state.addresses.push(address);
                    }
                }
                self.backoff.entry(peer).or_insert(Backoff {
                    next: Instant::now(),
                    delay: Duration::from_secs(1),
                });
            }
        }
    }

    /// Announces this node's topics in the DHT and looks their members up, when due.
    fn discover(&mut self) {
        if self.offline {
            return;
        }
        let topics: Vec<(TopicId, [u8; 32], usize)> = self
            .engine
            .topic_ids()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|topic| {
                let key = self.engine.topic_key(&topic).ok()??;
                let connected = self
                    .peers
                    .values()
                    .filter(|p| {
                        p.connected
                            && p.topics
                                .get(&topic)
                                .is_some_and(|s| s.refused.is_none() && s.last_sync.is_some())
                    })
                    .count();
                Some((topic, key, connected))
            })
            .collect();
        self.discovery
            .tick(&mut self.swarm.behaviour_mut().kad, &topics, Instant::now());
    }

    /// The DHT named a provider of a topic's rendezvous key: dial it unless connected. The
    /// addresses come from the DHT; the sync session that follows proves membership.
    fn found(&mut self, topic: TopicId, peer: PeerId) {
        if self.offline || self.swarm.is_connected(&peer) {
            return;
        }
        debug!(%peer, topic = %topic.short(), "the DHT names a member: dialling");
        let opts = DialOpts::peer_id(peer)
            .condition(libp2p::swarm::dial_opts::PeerCondition::DisconnectedAndNotDialing)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            debug!(%peer, error = %e, "cannot dial a peer the DHT named");
        }
    }

    /// How a peer is reached now ("direct", "relayed", "hole-punched"), if connected.
    fn reach(&self, peer: &PeerId) -> Option<&'static str> {
        self.links.reach(peer).map(reach::Reach::as_str)
    }

    /// Redials remembered peers whose backoff has passed.
    fn redial(&mut self) {
        if self.offline {
            return;
        }
        let now = Instant::now();
        // With nobody connected, the addresses invites carried are worth trying again.
        // Only while no peer is known by its addresses: a known peer's own redial must not
        // be skipped for a dial of an invite's (possibly stale) address to the same peer.
        let know_someone = self.peers.values().any(|p| !p.addresses.is_empty());
        if self.hints.next <= now && !know_someone && !self.peers.values().any(|p| p.connected) {
            self.hints.next = now + self.hints.delay;
            self.hints.delay = (self.hints.delay * 2).min(MAX_BACKOFF);
            let topics = self.engine.topic_ids().unwrap_or_default();
            for topic in topics {
                for hint in self.engine.dial_hints(&topic).unwrap_or_default() {
                    if let Ok(address) = hint.parse::<Multiaddr>() {
                        self.dial(address);
                    }
                }
            }
        }
        let due: Vec<PeerId> = self
            .backoff
            .iter()
            .filter(|(peer, b)| b.next <= now && !self.peers.get(peer).is_some_and(|p| p.connected))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in due {
            let addresses = self
                .peers
                .get(&peer)
                .map(|p| p.addresses.clone())
                .unwrap_or_default();
            if addresses.is_empty() {
                continue;
            }
            let opts = DialOpts::peer_id(peer).addresses(addresses).build();
            let _ = self.swarm.dial(opts);
            if let Some(b) = self.backoff.get_mut(&peer) {
                b.next = now + b.delay;
                b.delay = (b.delay * 2).min(MAX_BACKOFF);
            }
        }
    }

    fn network(&mut self, request: NetRequest) -> Result<Value, String> {
        match request {
            NetRequest::Status => self.status(),
            NetRequest::Peers => {
                let mut peers: Vec<Value> = self
                    .peers
                    .iter()
                    .map(|(id, p)| {
                        json!({
                            "peer": id.to_string(),
                            "connected": p.connected,
                            "reach": self.reach(id),
                            "addresses": p.addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                            "topics": p.topics.keys().map(|t| t.to_hex()).collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                peers.sort_by(|a, b| a["peer"].as_str().cmp(&b["peer"].as_str()));
                let listen: Vec<String> = self.swarm.listeners().map(|a| a.to_string()).collect();
                Ok(
                    json!({ "me": self.swarm.local_peer_id().to_string(), "listening": listen, "offline": self.offline, "seed": self.config.seed, "reachability": self.links.summary(), "peers": peers }),
                )
            }
            NetRequest::Offline { on } => {
                self.offline = on;
                if on {
                    let connected: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
                    for peer in connected {
                        let _ = self.swarm.disconnect_peer_id(peer);
                    }
                    info!("offline: connections dropped, not dialling");
                } else {
                    info!("online again");
                    // Invites joined while offline were never dialled: dial them now.
                    self.load_remembered();
                    for b in self.backoff.values_mut() {
                        b.next = Instant::now();
                        b.delay = Duration::from_secs(1);
                    }
                    let known: Vec<PeerId> = self.peers.keys().copied().collect();
                    for peer in known {
                        self.backoff.entry(peer).or_insert(Backoff {
                            next: Instant::now(),
                            delay: Duration::from_secs(1),
                        });
                    }
                    self.redial();
                }
                Ok(json!({ "offline": on }))
            }
            NetRequest::Dial { address } => {
                let address: Multiaddr = address
                    .parse()
                    .map_err(|e| format!("not an address {address:?}: {e}"))?;
                if self.offline {
                    return Err("the node is offline: `catchment offline off` first".into());
                }
                self.swarm
                    .dial(address.clone())
                    .map_err(|e| format!("cannot dial {address}: {e}"))?;
                Ok(json!({ "dialling": address.to_string() }))
            }
        }
    }

    fn status(&mut self) -> Result<Value, String> {
        let topics = self.engine.topics().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for summary in topics {
            let Ok(topic) = summary.id.parse::<TopicId>() else {
                continue;
            };
            let pending = self.engine.pending_count(&topic).unwrap_or(0);
            let mut peers = Vec::new();
            let entries: Vec<(PeerId, bool, TopicSync)> = self
                .peers
                .iter()
                .filter_map(|(id, p)| p.topics.get(&topic).map(|s| (*id, p.connected, s.clone())))
                .collect();
            for (peer, connected, sync) in entries {
                // A real comparison: our heads now against theirs at the last exchange.
                let agree = sync.refused.is_none()
                    && self.engine.in_sync(&topic, &sync.theirs).unwrap_or(false);
                peers.push(json!({
                    "peer": peer.to_string(),
                    "connected": connected,
                    "reach": self.reach(&peer),
                    "last_sync": sync.last_sync,
                    "heads_equal": agree,
                    "refused": sync.refused,
                }));
            }
            out.push(json!({ "topic": summary.id, "name": summary.name, "status": summary.status, "pending": pending, "peers": peers }));
        }
        let connected = self.peers.values().filter(|p| p.connected).count();
        Ok(json!({
            "offline": self.offline,
            "seed": self.config.seed,
            "reachability": self.links.summary(),
            "connected": connected,
            "sync_bytes_sent": self.sync_bytes.sent(),
            "sync_bytes_received": self.sync_bytes.received(),
            "topics": out,
        }))
    }
}
