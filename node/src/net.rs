//! The libp2p side of a node: the transport key, the swarm's behaviours, and the sync
//! protocol's framing.
//!
//! The swarm runs on the device's own transport key, never the member key, so that the network
//! layer does not reveal who is a member. Behaviours: identify, ping, gossipsub (signed by the
//! transport key, manual validation, message id = hash of the sealed payload), a
//! request-response protocol for sync sessions, mDNS (optional), Kademlia under our own
//! protocol name ([`KAD_PROTOCOL`], never the public IPFS DHT), the circuit relay v2 client
//! (and its server on seeds and members that offer it), DCUtR hole punching, AutoNAT, and
//! connection limits. What each of the newer ones is for lives in `discovery.rs` and
//! `relay.rs`.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::swarm::{behaviour::toggle::Toggle, NetworkBehaviour};
use libp2p::{
    autonat, connection_limits, dcutr, gossipsub, identify, identity, kad, mdns, ping, relay,
    request_response, StreamProtocol,
};
use sha2::{Digest, Sha256};

/// The sync protocol's name.
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/catchment/sync/2");
/// The identify protocol's name.
pub const IDENTIFY_PROTOCOL: &str = "/catchment/id/1";
/// The largest sync request accepted: the protocol's own limit.
pub const MAX_REQUEST: usize = catchment_protocol::sync::MAX_REQUEST_BYTES;
/// The largest sync response accepted: the protocol's own limit.
pub const MAX_RESPONSE: usize = catchment_protocol::sync::MAX_RESPONSE_BYTES;
/// The Kademlia protocol's name: our own DHT, apart from the public IPFS one.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/catchment/kad/1");
/// The largest gossip message.
pub const MAX_GOSSIP: usize = 300 * 1024;

/// All the behaviours of a node's swarm.
#[derive(NetworkBehaviour)]
#[behaviour(to_swarm = "BehaviourEvent")]
pub struct Behaviour {
    /// Learns peers' addresses and protocols.
    pub identify: identify::Behaviour,
    /// Keeps liveness.
    pub ping: ping::Behaviour,
    /// Pushes new changes at once.
    pub gossipsub: gossipsub::Behaviour,
    /// Sync sessions (anti-entropy).
    pub sync: request_response::Behaviour<SyncCodec>,
    /// Finds peers on the LAN.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// The DHT: finds a topic's members beyond the LAN by its rendezvous key.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Reserves slots on relays and dials through them (off only in bare test swarms).
    pub relay_client: Toggle<relay::client::Behaviour>,
    /// Relays for others (seeds, and members that offer it).
    pub relay: Toggle<relay::Behaviour>,
    /// Upgrades a relayed connection to a direct one by hole punching.
    pub dcutr: dcutr::Behaviour,
    /// Asks peers to dial back, to learn whether this node is reachable.
    pub autonat: autonat::v1::Behaviour,
    /// Caps connections (tighter on a seed).
    pub limits: connection_limits::Behaviour,
}

/// What a node's behaviours are built with.
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Find peers on the LAN with mDNS.
    pub mdns: bool,
    /// Relay for others (circuit relay v2 server).
    pub relay_server: bool,
    /// Run with a small server's limits (see [`crate::relay::Limits`]).
    pub seed: bool,
}

/// What the behaviours report to the event loop. Events are handled as they come, one at a
/// time, so their size does not matter.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum BehaviourEvent {
    /// From identify.
    Identify(identify::Event),
    /// From ping.
    Ping(ping::Event),
    /// From gossipsub.
    Gossipsub(gossipsub::Event),
    /// From the sync protocol.
    Sync(request_response::Event<Vec<u8>, Vec<u8>>),
    /// From mDNS.
    Mdns(mdns::Event),
    /// From Kademlia.
    Kad(kad::Event),
    /// From the relay client.
    RelayClient(relay::client::Event),
    /// From the relay server.
    Relay(relay::Event),
    /// From DCUtR.
    Dcutr(dcutr::Event),
    /// From AutoNAT.
    Autonat(autonat::v1::Event),
}

impl From<std::convert::Infallible> for BehaviourEvent {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

macro_rules! from_event {
    ($($variant:ident: $event:ty),* $(,)?) => {
        $(impl From<$event> for BehaviourEvent {
            fn from(event: $event) -> Self {
                BehaviourEvent::$variant(event)
            }
        })*
    };
}

from_event! {
    Identify: identify::Event,
    Ping: ping::Event,
    Gossipsub: gossipsub::Event,
    Sync: request_response::Event<Vec<u8>, Vec<u8>>,
    Mdns: mdns::Event,
    Kad: kad::Event,
    RelayClient: relay::client::Event,
    Relay: relay::Event,
    Dcutr: dcutr::Event,
    Autonat: autonat::v1::Event,
}

impl Behaviour {
    /// Builds the behaviours for a transport key, with no relay client (a swarm built without
    /// the relay transport, as in tests).
    pub fn new(key: &identity::Keypair, mdns_on: bool) -> io::Result<Self> {
        let options = NetOptions {
            mdns: mdns_on,
            ..NetOptions::default()
        };
        Self::counting(key, &options, None, Arc::default())
    }

    /// Builds the behaviours for a transport key; the sync protocol adds the bytes of every
    /// frame it writes and reads to `sync_bytes`.
    pub fn counting(
        key: &identity::Keypair,
        options: &NetOptions,
        relay_client: Option<relay::client::Behaviour>,
        sync_bytes: Arc<SyncBytes>,
    ) -> io::Result<Self> {
        let mdns_on = options.mdns;
        let peer_id = key.public().to_peer_id();
        let gossip_config = gossipsub::ConfigBuilder::default()
            .heartbeat_interval(Duration::from_millis(700))
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .max_transmit_size(MAX_GOSSIP)
            .message_id_fn(|message| {
                gossipsub::MessageId::from(Sha256::digest(&message.data)[..20].to_vec())
            })
            .build()
            .map_err(|e| io::Error::other(e.to_string()))?;
        let gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )
        .map_err(io::Error::other)?;
        let sync = request_response::Behaviour::with_codec(
            SyncCodec { bytes: sync_bytes },
            [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
        );
        let mdns = if mdns_on {
            Some(mdns::tokio::Behaviour::new(
                mdns::Config::default(),
                peer_id,
            )?)
        } else {
            None
        };
        Ok(Behaviour {
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL.into(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new()),
            gossipsub,
            sync,
            mdns: mdns.into(),
            kad: crate::discovery::kademlia(peer_id),
            relay_client: relay_client.into(),
            relay: options
                .relay_server
                .then(|| crate::relay::server(peer_id, options.seed))
                .into(),
            dcutr: dcutr::Behaviour::new(peer_id),
            autonat: crate::relay::autonat(peer_id),
            limits: connection_limits::Behaviour::new(
                crate::relay::Limits::for_node(options.seed).connections(),
            ),
        })
    }
}

/// Bytes of the sync frames a node wrote and read, length prefixes included; a frame counts
/// once it has been written or read whole.
#[derive(Debug, Default)]
pub struct SyncBytes {
    sent: AtomicU64,
    received: AtomicU64,
}

impl SyncBytes {
    /// Bytes written: requests and responses.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Bytes read: requests and responses.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Frames sync messages as a u32 length and the bytes, with size limits; the messages
/// themselves are `catchment_protocol::sync`'s. Every connection's copy counts into the same
/// [`SyncBytes`].
#[derive(Debug, Clone, Default)]
pub struct SyncCodec {
    bytes: Arc<SyncBytes>,
}

impl SyncCodec {
    async fn read<T: futures::AsyncRead + Unpin + Send>(
        &self,
        io: &mut T,
        max: usize,
    ) -> io::Result<Vec<u8>> {
        let frame = read_frame(io, max).await?;
        self.bytes
            .received
            .fetch_add(4 + frame.len() as u64, Ordering::Relaxed);
        Ok(frame)
    }

    async fn write<T: futures::AsyncWrite + Unpin + Send>(
        &self,
        io: &mut T,
        bytes: &[u8],
    ) -> io::Result<()> {
        write_frame(io, bytes).await?;
        self.bytes
            .sent
            .fetch_add(4 + bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

async fn read_frame<T: futures::AsyncRead + Unpin + Send>(
    io: &mut T,
    max: usize,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("sync frame of {len} bytes is over {max}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn write_frame<T: futures::AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: &[u8],
) -> io::Result<()> {
    io.write_all(&(bytes.len() as u32).to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        self.read(io, MAX_REQUEST).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let packed = self.read(io, MAX_RESPONSE).await?;
        inflate(&packed, MAX_RESPONSE)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        self.write(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: futures::AsyncWrite + Unpin + Send,
    {
        self.write(io, &deflate(&res)).await
    }
}

/// Responses carry batches of changes, which compress well together (signatures aside, the
/// changes of one journal share most of their structure and words); each change alone does not.
fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// Inflates a response, refusing one that would grow past `max` (a small frame must not
/// unpack into a huge one).
fn inflate(packed: &[u8], max: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(packed)
        .take(max as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("sync response inflates past {max} bytes"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use request_response::Codec;

    #[test]
    fn whole_frames_are_counted_each_way() {
        futures::executor::block_on(async {
            let bytes = Arc::new(SyncBytes::default());
            let mut codec = SyncCodec {
                bytes: bytes.clone(),
            };
            let mut wire = Cursor::new(Vec::new());
            codec
                .write_request(&SYNC_PROTOCOL, &mut wire, vec![7; 10])
                .await
                .unwrap();
            codec
                .write_response(&SYNC_PROTOCOL, &mut wire, vec![8; 100])
                .await
                .unwrap();
            // The response travels deflated: 100 equal bytes pack into a few.
            let response_frame = 4 + deflate(&[8; 100]).len() as u64;
            assert!(response_frame < 104);
            assert_eq!((bytes.sent(), bytes.received()), (14 + response_frame, 0));

            let mut wire = Cursor::new(wire.into_inner());
            let request = codec.read_request(&SYNC_PROTOCOL, &mut wire).await.unwrap();
            let response = codec
                .read_response(&SYNC_PROTOCOL, &mut wire)
                .await
                .unwrap();
            assert_eq!((request.len(), response.len()), (10, 100));
            assert_eq!(bytes.received(), 14 + response_frame);

            // A frame over the limit is refused before it is read, and not counted.
            let mut over = (MAX_REQUEST as u32 + 1).to_be_bytes().to_vec();
            over.extend_from_slice(&[0; 16]);
            let mut wire = Cursor::new(over);
            assert!(codec.read_request(&SYNC_PROTOCOL, &mut wire).await.is_err());
            assert_eq!(bytes.received(), 14 + response_frame);

            // A small response that would inflate past the limit is refused.
            let bomb = deflate(&vec![0; MAX_RESPONSE + 1]);
            assert!(bomb.len() < 64 * 1024);
            assert!(inflate(&bomb, MAX_RESPONSE).is_err());
        });
    }
}
