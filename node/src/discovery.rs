//! Finding a topic's members beyond the LAN: our own Kademlia DHT and a rendezvous key.
//!
//! The DHT speaks [`crate::net::KAD_PROTOCOL`], so it never joins the public IPFS DHT; its
//! nodes are Catchment nodes (members of any topic, and seeds). It is bootstrapped from every
//! peer a node connects to: remembered peers, invite addresses, `--dial` addresses, mDNS finds.
//!
//! Members of a topic meet under its *rendezvous key*: SHA-256 over a domain-separation label
//! and the topic key ([`rendezvous_key`]). Only members hold the topic key, so only they can
//! compute it; the DHT nodes that store it see an opaque 32-byte key and the PeerIds (and
//! addresses) of the nodes that announce it, never the topic id, key or content. Each node
//! announces itself as a provider of each of its topics' keys and looks the providers up; a
//! provider it is not connected to is dialled, and the sync session that follows proves
//! membership both ways (a non-member that announces a key it learned gets refused). Peers that
//! served a topic are remembered by the runtime, as peers met any other way are.
//!
//! Lookups run every [`LOOKUP_SHORT`] while a topic has fewer than [`ENOUGH_PEERS`] members
//! connected, else every [`LOOKUP_LONG`]; announcements are repeated every [`ANNOUNCE`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use catchment_crdt::TopicId;
use libp2p::kad::{self, store::MemoryStore, GetProvidersOk, QueryId, QueryResult, RecordKey};
use libp2p::{identify, Multiaddr, PeerId};
use sha2::{Digest, Sha256};
use tracing::debug;

use crate::net::KAD_PROTOCOL;

/// The label hashed before the topic key (no other hash in Catchment starts with it).
const RENDEZVOUS_LABEL: &[u8] = b"catchment/rendezvous/v1\0";
/// Lookups while a topic lacks peers.
pub const LOOKUP_SHORT: Duration = Duration::from_secs(5);
/// Lookups once a topic has enough peers.
pub const LOOKUP_LONG: Duration = Duration::from_secs(120);
/// How often a node announces its topics again.
pub const ANNOUNCE: Duration = Duration::from_secs(10 * 60);
/// Connected members of a topic after which lookups slow down.
pub const ENOUGH_PEERS: usize = 8;
/// Addresses of one peer added to the routing table.
const MAX_ADDRESSES: usize = 8;

/// The DHT behaviour: our protocol name, bounded record store, server mode.
pub fn kademlia(peer_id: PeerId) -> kad::Behaviour<MemoryStore> {
    let mut config = kad::Config::new(KAD_PROTOCOL);
    config
        .set_query_timeout(Duration::from_secs(30))
        .set_provider_record_ttl(Some(Duration::from_secs(2 * 60 * 60)))
        .set_provider_publication_interval(Some(ANNOUNCE))
        .set_record_ttl(Some(Duration::from_secs(2 * 60 * 60)))
        .set_periodic_bootstrap_interval(Some(Duration::from_secs(5 * 60)));
    let store = MemoryStore::with_config(
        peer_id,
        kad::store::MemoryStoreConfig {
            max_records: 256,
            max_value_bytes: 4 * 1024,
            max_provided_keys: 1024,
            max_providers_per_key: 20,
        },
    );
    let mut kad = kad::Behaviour::with_config(peer_id, store, config);
    // Without a confirmed external address a node would stay a DHT client and answer no one;
    // on a LAN, or between members who dialled each other, every node should serve.
    kad.set_mode(Some(kad::Mode::Server));
    kad
}

/// Where a topic's members meet in the DHT: only holders of the topic key can compute it.
pub fn rendezvous_key(topic_key: &[u8; 32]) -> RecordKey {
    let mut hash = Sha256::new();
    hash.update(RENDEZVOUS_LABEL);
    hash.update(topic_key);
    RecordKey::new(&hash.finalize().as_slice())
}

/// The announcements and lookups of a node's topics.
#[derive(Debug)]
pub struct Discovery {
    /// Lookups in flight.
    lookups: HashMap<QueryId, TopicId>,
    /// When each topic was last announced and looked up.
    topics: HashMap<TopicId, (Option<Instant>, Instant)>,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery::new()
    }
}

impl Discovery {
    /// Nothing announced or looked up yet.
    pub fn new() -> Self {
        Discovery {
            lookups: HashMap::new(),
            topics: HashMap::new(),
        }
    }

    /// Announces and looks up the topics that are due. `topics`: each topic, its key, and how
    /// many of its members are connected now.
    pub fn tick(
        &mut self,
        kad: &mut kad::Behaviour<MemoryStore>,
        topics: &[(TopicId, [u8; 32], usize)],
        now: Instant,
    ) {
        for (topic, key, connected) in topics {
            let (announced, looked) = self
                .topics
                .entry(*topic)
                .or_insert((None, now - LOOKUP_LONG));
            let rendezvous = rendezvous_key(key);
            // Announce again until the table has peers (an announcement into an empty table
            // reaches no one), then every ANNOUNCE.
            let lonely = kad.kbuckets().all(|b| b.num_entries() == 0);
            if announced.is_none_or(|at| now.duration_since(at) >= ANNOUNCE) && !lonely {
                if let Err(e) = kad.start_providing(rendezvous.clone()) {
                    debug!(topic = %topic.short(), error = %e, "cannot announce a topic");
                }
                *announced = Some(now);
            }
            let every = if *connected < ENOUGH_PEERS {
                LOOKUP_SHORT
            } else {
                LOOKUP_LONG
            };
            if now.duration_since(*looked) >= every && !lonely {
                *looked = now;
                let query = kad.get_providers(rendezvous);
                self.lookups.insert(query, *topic);
            }
        }
    }

    /// A topic's first announcement waits for peers in the table: when the first arrive,
    /// announce and look up at the next tick.
    pub fn table_grew(&mut self) {
        for (announced, looked) in self.topics.values_mut() {
            if announced.is_none() {
                *looked = Instant::now() - LOOKUP_LONG;
            }
        }
    }

    /// Handles a DHT event; returns the providers found for a topic (never this node).
    pub fn on_event(&mut self, me: PeerId, event: kad::Event) -> Vec<(TopicId, PeerId)> {
        match event {
            kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            } => match result {
                QueryResult::GetProviders(Ok(GetProvidersOk::FoundProviders {
                    providers, ..
                })) => {
                    let Some(topic) = self.lookups.get(&id).copied() else {
                        return Vec::new();
                    };
                    providers
                        .into_iter()
                        .filter(|p| *p != me)
                        .map(|p| (topic, p))
                        .collect()
                }
                QueryResult::GetProviders(_) if step.last => {
                    self.lookups.remove(&id);
                    Vec::new()
                }
                QueryResult::GetProviders(Err(e)) => {
                    debug!(error = %e, "rendezvous lookup ended");
                    Vec::new()
                }
                QueryResult::StartProviding(Err(e)) => {
                    debug!(error = %e, "announcing a topic did not finish");
                    Vec::new()
                }
                _ => Vec::new(),
            },
            kad::Event::RoutingUpdated { is_new_peer, .. } => {
                if is_new_peer {
                    self.table_grew();
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

/// Adds a peer's listen addresses to the routing table when it speaks our DHT protocol (a peer
/// that dialled us is otherwise known to the DHT without an address).
pub fn identified(kad: &mut kad::Behaviour<MemoryStore>, peer: PeerId, info: &identify::Info) {
    if !info.protocols.contains(&KAD_PROTOCOL) {
        return;
    }
    for address in info
        .listen_addrs
        .iter()
        .filter(|a| routable(a))
        .take(MAX_ADDRESSES)
    {
        kad.add_address(&peer, address.clone());
    }
}

/// Whether an address is worth putting in the routing table (not 0.0.0.0 or ::).
fn routable(address: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    !address.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendezvous_key_needs_the_topic_key_and_is_not_it() {
        let a = rendezvous_key(&[1; 32]);
        assert_eq!(a, rendezvous_key(&[1; 32]));
        assert_ne!(a, rendezvous_key(&[2; 32]));
        assert_eq!(a.as_ref().len(), 32);
        // Not the bare hash of the key (domain-separated), and not the key itself.
        assert_ne!(a.as_ref(), Sha256::digest([1u8; 32]).as_slice());
        assert_ne!(a.as_ref(), &[1u8; 32][..]);
    }
}
