//! Reaching peers behind NAT: relay reservations, the relay service's limits, AutoNAT, and how
//! each peer is reached.
//!
//! * Every node runs the circuit relay v2 client. When identify shows that a connected peer
//!   offers the relay service (a seed, or a member with `relay = true`), the node reserves a
//!   slot on it and listens through it (at most [`MAX_RELAYS`] relays): its relayed address
//!   `<relay>/p2p/<relay id>/p2p-circuit/p2p/<me>` then travels in its invites and identify
//!   answers, so a peer that cannot dial it directly dials it through the relay. A seed does not
//!   reserve: it is the reachable one.
//! * Over a relayed connection, DCUtR tries to punch a hole (both sides dial each other's
//!   observed addresses at once); when it works, a direct connection joins the relayed one.
//! * AutoNAT asks peers to dial back, so `status` can say whether this node is reachable.
//!
//! [`Links`] keeps, per peer, how each live connection was made, so that `status` and `peers`
//! can say how a peer is reached: directly, through a relay, or by a punched hole.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{autonat, connection_limits, dcutr, relay, Multiaddr, PeerId, Swarm};
use serde::Serialize;
use tracing::{debug, info};

use crate::net::Behaviour;

/// The most relays a node listens through at once.
pub const MAX_RELAYS: usize = 2;

/// Resource limits: generous on a desktop, sized for a small server on a seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Established connections in all.
    pub max_established: u32,
    /// Established incoming connections.
    pub max_incoming: u32,
    /// Incoming connections still in their handshake.
    pub max_pending_incoming: u32,
    /// Connections to one peer.
    pub max_per_peer: u32,
    /// Relay reservations held for others.
    pub max_reservations: usize,
    /// Relayed circuits open at once.
    pub max_circuits: usize,
    /// Relayed circuits open at once for one peer.
    pub max_circuits_per_peer: usize,
    /// How long one relayed circuit lives before the relay closes it.
    pub max_circuit_duration: Duration,
    /// How many bytes one relayed circuit carries before the relay closes it.
    pub max_circuit_bytes: u64,
}

impl Limits {
    /// The limits for a node: a seed's (`seed`) or a member's.
    pub fn for_node(seed: bool) -> Limits {
        if seed {
            // A small server (1 vCPU, 1 GB): each connection costs tens of KiB of buffers,
            // each circuit two connections' worth; these keep the worst case in the tens of MB.
            Limits {
                max_established: 512,
                max_incoming: 448,
                max_pending_incoming: 64,
                max_per_peer: 4,
                max_reservations: 128,
                max_circuits: 64,
                max_circuits_per_peer: 8,
                max_circuit_duration: Duration::from_secs(10 * 60),
                max_circuit_bytes: 16 * 1024 * 1024,
            }
        } else {
            Limits {
                max_established: 256,
                max_incoming: 192,
                max_pending_incoming: 32,
                max_per_peer: 8,
                max_reservations: 16,
                max_circuits: 16,
                max_circuits_per_peer: 4,
                max_circuit_duration: Duration::from_secs(5 * 60),
                max_circuit_bytes: 4 * 1024 * 1024,
            }
        }
    }

    /// The connection limits the swarm enforces.
    pub fn connections(&self) -> connection_limits::ConnectionLimits {
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(self.max_established))
            .with_max_established_incoming(Some(self.max_incoming))
            .with_max_pending_incoming(Some(self.max_pending_incoming))
            .with_max_established_per_peer(Some(self.max_per_peer))
    }
}

/// The relay service (circuit relay v2 server) with a node's limits.
pub fn server(peer_id: PeerId, seed: bool) -> relay::Behaviour {
    let limits = Limits::for_node(seed);
    let config = relay::Config {
        max_reservations: limits.max_reservations,
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        max_circuit_duration: limits.max_circuit_duration,
        max_circuit_bytes: limits.max_circuit_bytes,
        ..relay::Config::default()
    };
    let mut server = relay::Behaviour::new(peer_id, config);
    if seed {
        // A seed is run to be reachable: offer the service from the start. A member that
        // offers it (`--relay`) advertises it only once AutoNAT confirms an external address.
        server.set_status(Some(relay::Status::Enable));
    }
    server
}

/// AutoNAT (v1): probes through connected peers, and serves their probes.
pub fn autonat(peer_id: PeerId) -> autonat::v1::Behaviour {
    let config = autonat::v1::Config {
        boot_delay: Duration::from_secs(10),
        ..autonat::v1::Config::default()
    };
    autonat::v1::Behaviour::new(peer_id, config)
}

/// How a peer is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    /// Through a relay's circuit.
    Relayed,
    /// A direct connection.
    Direct,
    /// A direct connection opened by hole punching over a relayed one.
    HolePunched,
}

impl Reach {
    /// The word `status` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Relayed => "relayed",
            Reach::Direct => "direct",
            Reach::HolePunched => "hole-punched",
        }
    }
}

/// Whether an address goes through a relay.
pub fn is_relayed(address: &Multiaddr) -> bool {
    address.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// The addresses an invite carries to reach this node, best first, each ending with its id:
/// the addresses others confirmed or were told (`external`), then those through relays (they
/// work from behind any NAT), then the rest of what it listens on, loopback last. Invites keep
/// only the first [`catchment_protocol::invite::MAX_ADDRESSES`], so the order decides what a
/// joiner gets on a machine with many interfaces.
pub fn invite_addresses<'a>(
    me: PeerId,
    external: impl IntoIterator<Item = &'a Multiaddr>,
    listening: impl IntoIterator<Item = &'a Multiaddr>,
) -> Vec<String> {
    let rank = |address: &Multiaddr| {
        let loopback = address.iter().any(|p| match p {
            Protocol::Ip4(ip) => ip.is_loopback(),
            Protocol::Ip6(ip) => ip.is_loopback(),
            _ => false,
        });
        match (is_relayed(address), loopback) {
            (true, _) => 1,
            (false, false) => 2,
            (false, true) => 3,
        }
    };
    let mut ranked: Vec<(u8, String)> = external
        .into_iter()
        .map(|a| (0, a))
        .chain(listening.into_iter().map(|a| (rank(a), a)))
        .filter(|(_, a)| !is_unspecified(a))
        .map(|(rank, a)| {
            let text = match a.iter().last() {
                // A relayed listen address already ends with this node's id.
                Some(Protocol::P2p(_)) => a.to_string(),
                _ => format!("{a}/p2p/{me}"),
            };
            (rank, text)
        })
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    let mut seen = HashSet::new();
    ranked
        .into_iter()
        .filter_map(|(_, text)| seen.insert(text.clone()).then_some(text))
        .collect()
}

/// The live connections, how each was made, and the relays this node listens through.
#[derive(Debug, Default)]
pub struct Links {
    connections: HashMap<PeerId, HashMap<ConnectionId, Reach>>,
    /// The addresses this node dialled for its live direct connections.
    dialled: HashMap<ConnectionId, Multiaddr>,
    /// Connected peers that offer the relay service, and how to reach each.
    candidates: HashMap<PeerId, Multiaddr>,
    /// When relays without a listener were last asked again.
    retried: Option<Instant>,
    /// Connections DCUtR reported before the swarm did.
    punched: HashSet<ConnectionId>,
    /// Relays listened through: the relay and its listener.
    relays: HashMap<PeerId, ListenerId>,
    /// Relays whose reservation was accepted.
    reserved: HashSet<PeerId>,
    /// What AutoNAT says of this node.
    nat: Option<autonat::v1::NatStatus>,
    /// Hole punches that worked and that failed.
    punches: (u32, u32),
}

impl Links {
    /// A connection is up.
    pub fn established(&mut self, peer: PeerId, id: ConnectionId, endpoint: &ConnectedPoint) {
        if let ConnectedPoint::Dialer { address, .. } = endpoint {
            if !endpoint.is_relayed() {
                self.dialled.insert(id, address.clone());
            }
        }
        let reach = if self.punched.remove(&id) {
            Reach::HolePunched
        } else if endpoint.is_relayed() {
            Reach::Relayed
        } else {
            Reach::Direct
        };
        self.connections.entry(peer).or_default().insert(id, reach);
    }

    /// A connection is gone.
    pub fn closed(&mut self, peer: PeerId, id: ConnectionId) {
        self.dialled.remove(&id);
        if let Some(live) = self.connections.get_mut(&peer) {
            live.remove(&id);
            if live.is_empty() {
                self.connections.remove(&peer);
                self.candidates.remove(&peer);
            }
        }
    }

    /// How a peer is reached now: the best of its live connections.
    pub fn reach(&self, peer: &PeerId) -> Option<Reach> {
        self.connections.get(peer)?.values().copied().max()
    }

    /// What DCUtR reported.
    pub fn hole_punch(&mut self, event: dcutr::Event) {
        match event.result {
            Ok(id) => {
                self.punches.0 += 1;
                info!(peer = %event.remote_peer_id, "hole punched: a direct connection");
                match self
                    .connections
                    .get_mut(&event.remote_peer_id)
                    .and_then(|live| live.get_mut(&id))
                {
                    Some(reach) => *reach = Reach::HolePunched,
                    None => {
                        self.punched.insert(id);
                    }
                }
            }
            Err(e) => {
                self.punches.1 += 1;
                debug!(peer = %event.remote_peer_id, error = %e, "hole punching failed; staying relayed");
            }
        }
    }

    /// What AutoNAT concluded.
    pub fn nat_changed(&mut self, status: autonat::v1::NatStatus) {
        debug!(?status, "reachability");
        self.nat = Some(status);
    }

    /// A relay accepted (or renewed) this node's reservation.
    pub fn reserved(&mut self, relay: PeerId, renewal: bool) {
        if self.reserved.insert(relay) || !renewal {
            info!(%relay, "reachable through a relay");
        }
    }

    /// A listener closed: if it was a relay's, the slot is gone (a new one is asked for when
    /// the relay is identified again).
    pub fn listener_closed(&mut self, listener: ListenerId) {
        self.relays.retain(|relay, id| {
            let keep = *id != listener;
            if !keep {
                self.reserved.remove(relay);
                debug!(%relay, "relay listener closed");
            }
            keep
        });
    }

    /// A peer offers the relay service: reserve a slot on it and listen through it, unless this
    /// node is a seed or already listens through enough relays. It is reached the way this
    /// node dialled it, else at the first direct address it listens on.
    pub fn offer(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        seed: bool,
        relay: PeerId,
        listens: &[Multiaddr],
    ) {
        let dialled = self
            .connections
            .get(&relay)
            .into_iter()
            .flat_map(|live| live.keys())
            .find_map(|id| self.dialled.get(id).cloned());
        let address = dialled.or_else(|| {
            listens
                .iter()
                .find(|a| !is_relayed(a) && !is_unspecified(a))
                .cloned()
        });
        if let Some(address) = &address {
            self.candidates.insert(relay, address.clone());
        }
        self.listen_through(swarm, seed, relay, address);
    }

    /// Asks again, at most every 10 s, the connected relays whose slot was lost or refused.
    pub fn retry(&mut self, swarm: &mut Swarm<Behaviour>, seed: bool) {
        let now = Instant::now();
        if self
            .retried
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(10))
        {
            return;
        }
        self.retried = Some(now);
        let waiting: Vec<(PeerId, Multiaddr)> = self
            .candidates
            .iter()
            .filter(|(relay, _)| !self.relays.contains_key(relay))
            .map(|(relay, address)| (*relay, address.clone()))
            .collect();
        for (relay, address) in waiting {
            self.listen_through(swarm, seed, relay, Some(address));
        }
    }

    fn listen_through(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        seed: bool,
        relay: PeerId,
        address: Option<Multiaddr>,
    ) {
        if seed
            || self.relays.contains_key(&relay)
            || self.relays.len() >= MAX_RELAYS
            || !swarm.behaviour().relay_client.is_enabled()
        {
            return;
        }
        let Some(address) = address.filter(|a| !is_relayed(a)) else {
            return;
        };
        let circuit = strip_p2p(address)
            .with(Protocol::P2p(relay))
            .with(Protocol::P2pCircuit);
        match swarm.listen_on(circuit.clone()) {
            Ok(listener) => {
                debug!(%relay, address = %circuit, "asking a relay for a slot");
                self.relays.insert(relay, listener);
            }
            Err(e) => debug!(%relay, error = %e, "cannot listen through a relay"),
        }
    }

    /// For `status`: reachability, relays, hole punches.
    pub fn summary(&self) -> serde_json::Value {
        let nat = match &self.nat {
            Some(autonat::v1::NatStatus::Public(_)) => "public",
            Some(autonat::v1::NatStatus::Private) => "private",
            _ => "unknown",
        };
        let mut relays: Vec<String> = self.reserved.iter().map(PeerId::to_string).collect();
        relays.sort();
        serde_json::json!({
            "nat": nat,
            "relays": relays,
            "hole_punches": { "succeeded": self.punches.0, "failed": self.punches.1 },
        })
    }
}

/// Whether an address is a wildcard (0.0.0.0 or ::), which nobody can dial.
pub fn is_unspecified(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

/// An address without its trailing `/p2p/<id>`.
fn strip_p2p(mut address: Multiaddr) -> Multiaddr {
    if matches!(address.iter().last(), Some(Protocol::P2p(_))) {
        address.pop();
    }
    address
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::core::transport::PortUse;
    use libp2p::core::Endpoint;

    fn dialer(address: &str) -> ConnectedPoint {
        ConnectedPoint::Dialer {
            address: address.parse().unwrap(),
            role_override: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        }
    }

    #[test]
    fn a_peer_is_reached_by_its_best_connection() {
        let mut links = Links::default();
        let peer = PeerId::random();
        let relay = PeerId::random();
        let (relayed, direct) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
        );
        assert_eq!(links.reach(&peer), None);

        let circuit = format!("/ip4/10.0.0.1/tcp/1/p2p/{relay}/p2p-circuit/p2p/{peer}");
        links.established(peer, relayed, &dialer(&circuit));
        assert_eq!(links.reach(&peer), Some(Reach::Relayed));

        // DCUtR reports the punched connection before the swarm does.
        links.hole_punch(dcutr::Event {
            remote_peer_id: peer,
            result: Ok(direct),
        });
        links.established(peer, direct, &dialer("/ip4/10.0.0.2/tcp/2"));
        assert_eq!(links.reach(&peer), Some(Reach::HolePunched));

        links.closed(peer, direct);
        assert_eq!(links.reach(&peer), Some(Reach::Relayed));
        links.closed(peer, relayed);
        assert_eq!(links.reach(&peer), None);
        assert_eq!(links.summary()["hole_punches"]["succeeded"], 1);
    }

    #[test]
    fn invites_carry_external_then_relayed_then_other_addresses() {
        let me = PeerId::random();
        let relay = PeerId::random();
        let parse = |a: &str| a.parse::<Multiaddr>().unwrap();
        let external = [parse("/ip4/203.0.113.7/tcp/4001")];
        let listening = [
            parse("/ip4/127.0.0.1/tcp/4001"),
            parse("/ip4/0.0.0.0/tcp/4001"),
            parse("/ip4/192.168.1.5/tcp/4001"),
            parse(&format!(
                "/ip4/198.51.100.2/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{me}"
            )),
            parse("/ip4/203.0.113.7/tcp/4001"),
        ];
        assert_eq!(
            invite_addresses(me, &external, &listening),
            vec![
                format!("/ip4/203.0.113.7/tcp/4001/p2p/{me}"),
                format!("/ip4/198.51.100.2/tcp/4001/p2p/{relay}/p2p-circuit/p2p/{me}"),
                format!("/ip4/192.168.1.5/tcp/4001/p2p/{me}"),
                format!("/ip4/127.0.0.1/tcp/4001/p2p/{me}"),
            ]
        );
    }

    #[test]
    fn a_seed_is_tighter_than_a_member() {
        let (seed, member) = (Limits::for_node(true), Limits::for_node(false));
        assert!(seed.max_per_peer < member.max_per_peer);
        assert!(seed.max_reservations > member.max_reservations);
        assert!(is_relayed(
            &"/ip4/1.2.3.4/tcp/1/p2p-circuit".parse().unwrap()
        ));
        assert!(!is_relayed(&"/ip4/1.2.3.4/tcp/1".parse().unwrap()));
    }
}
