//! The p2p transport of `sidechaind`: gossip and request-response over libp2p (TCP + noise + yamux).
//!
//! This crate knows topics and bytes, not blocks. The node starts it with [`Network::start`], receives
//! [`NetEvent`]s, decodes and validates them itself, and tells the transport the verdict
//! ([`NetHandle::report_validation`]); nothing received by gossip is forwarded before an
//! [`Verdict::Accept`]. The invariants owned here: every inbound message is size-capped before it is
//! buffered, misbehaving peers are scored down and banned past a threshold, and bootstrap peers are
//! re-dialed until they are back.
//!
//! # Usage from the node
//!
//! ```no_run
//! use sidechain_net::{Keypair, NetConfig, NetEvent, Network, Verdict};
//!
//! # async fn run(keypair: Keypair) -> Result<(), sidechain_net::NetError> {
//! let mut cfg = NetConfig::new(keypair, "/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr"));
//! cfg.topics = vec!["votes".into(), "txs".into(), "headers".into()];
//! let mut net = Network::start(cfg).await?;
//! while let Some(event) = net.events.recv().await {
//!     match event {
//!         NetEvent::Gossip { topic, msg_id, source, data } => {
//!             // Decode and check signatures first; only Accept forwards the message to other peers.
//!             let verdict = if !data.is_empty() && topic == "votes" { Verdict::Accept } else { Verdict::Reject };
//!             net.handle.report_validation(msg_id, source, verdict)?;
//!         }
//!         NetEvent::Request { peer, data, respond } => {
//!             let _ = (peer, data);
//!             respond.send(b"blocks...".to_vec())?;
//!         }
//!         NetEvent::PeerConnected(peer, addr) => tracing::info!(%peer, %addr, "up"),
//!         NetEvent::PeerDisconnected(peer) => tracing::info!(%peer, "down"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod behaviour;
pub mod codec;
pub mod config;
mod driver;
pub mod error;
mod handle;
mod recent;
mod redial;
mod score;

pub use behaviour::content_id;
pub use config::{Backoff, NetConfig, ScoreConfig, MIB};
pub use error::{ListenFailure, NetError, RequestFailure};
pub use handle::{NetEvent, NetHandle, PeerInfo, Responder, Verdict};
pub use recent::DUPLICATE_CACHE_TIME;
/// The peer id of the node whose libp2p identity is this ed25519 public key (`None` if it is not one).
pub fn peer_id_from_ed25519(public: &[u8; 32]) -> Option<PeerId> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(public).ok()?;
    Some(libp2p::identity::PublicKey::from(key).to_peer_id())
}

pub use libp2p::{gossipsub::MessageId, identity::Keypair, multiaddr::Protocol, Multiaddr, PeerId};

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use tokio::sync::mpsc;

/// What [`Network::start`] hands back to the node.
#[derive(Debug)]
pub struct Started {
    /// Commands to the network task.
    pub handle: NetHandle,
    /// Events from the network task.
    pub events: mpsc::Receiver<NetEvent>,
    /// This node's peer id (from the configured keypair).
    pub local_peer_id: PeerId,
    /// The addresses actually listened on (port 0 resolved).
    pub listen_addrs: Vec<Multiaddr>,
}

/// Entry point: starts the transport as a tokio task.
#[derive(Debug)]
pub struct Network;

impl Network {
    /// Builds the swarm, listens on `config.listen` (waiting until the listener reports its address), and
    /// spawns the network task, which dials the bootstrap peers right away. Must be called inside a tokio
    /// runtime.
    pub async fn start(config: NetConfig) -> Result<Started, NetError> {
        let mut swarm = behaviour::build_swarm(&config)?;
        let local_peer_id = *swarm.local_peer_id();
        let listen = config.listen.clone();
        let listen_err = |source: ListenFailure| NetError::Listen { addr: listen.clone(), source };
        swarm.listen_on(listen.clone()).map_err(|e| listen_err(e.into()))?;
        // The first event of a fresh swarm with one listener is its address (or the listener's failure).
        let mut listen_addrs = Vec::new();
        while listen_addrs.is_empty() {
            match swarm.next().await {
                Some(SwarmEvent::NewListenAddr { address, .. }) => listen_addrs.push(address),
                Some(SwarmEvent::ListenerClosed { reason, .. }) => {
                    return Err(listen_err(ListenFailure::Closed(reason.err())));
                }
                Some(SwarmEvent::ListenerError { error, .. }) => {
                    return Err(listen_err(ListenFailure::Listener(error)))
                }
                Some(_) => {}
                None => return Err(listen_err(ListenFailure::SwarmEnded)),
            }
        }
        tracing::info!(peer_id = %local_peer_id, addrs = ?listen_addrs, "network started");

        let (events_tx, events) = mpsc::channel(config.event_buffer.max(1));
        let (commands_tx, commands_rx) = mpsc::unbounded_channel();
        let handle = NetHandle { commands: commands_tx.clone(), request_timeout: config.request_timeout };
        let driver = driver::Driver::new(swarm, config, events_tx, commands_tx.downgrade());
        tokio::spawn(driver.run(commands_rx));
        Ok(Started { handle, events, local_peer_id, listen_addrs })
    }
}
