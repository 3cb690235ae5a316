//! Configuration of the transport: identity, addresses, size caps, timings and scoring weights.
//!
//! Owns the defaults: every cap has a finite value (1 MiB gossip and requests, 16 MiB responses), so no
//! peer-controlled length is ever trusted beyond them.

use std::time::Duration;

use libp2p::{identity::Keypair, Multiaddr};

/// One mebibyte.
pub const MIB: usize = 1024 * 1024;

/// How bootstrap peers are re-dialed when not connected: exponential from `min` up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// First delay after a failed dial.
    pub min: Duration,
    /// Largest delay between two dial attempts.
    pub max: Duration,
}

/// Node-level peer scoring: points lost per kind of misbehaviour, and when a peer gets banned.
///
/// A peer starts at score 0. Misbehaviour subtracts points; the score recovers toward 0 by
/// `recovery_per_sec` every second. At `score <= -ban_threshold` the peer is disconnected and refused for
/// `ban_duration`, after which its score restarts at 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreConfig {
    /// Points lost when the node reports [`crate::Verdict::Reject`] for a gossip this peer forwarded.
    pub reject_penalty: u32,
    /// Points lost per [`crate::NetHandle::penalize`] call.
    pub penalize_penalty: u32,
    /// Points lost when the peer sends an undecodable or oversized request/response frame.
    pub garbage_penalty: u32,
    /// Ban when the score reaches `-ban_threshold`.
    pub ban_threshold: u32,
    /// How long a banned peer is refused.
    pub ban_duration: Duration,
    /// Points recovered per second (toward 0).
    pub recovery_per_sec: u32,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            reject_penalty: 10,
            penalize_penalty: 25,
            garbage_penalty: 25,
            ban_threshold: 100,
            ban_duration: Duration::from_secs(600),
            recovery_per_sec: 1,
        }
    }
}

/// Everything [`crate::Network::start`] needs.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// The node's ed25519 identity (derived by the node from its node key); its public key is the PeerId.
    pub keypair: Keypair,
    /// Where to listen, e.g. `/ip4/127.0.0.1/tcp/0`.
    pub listen: Multiaddr,
    /// Peers dialed at start and re-dialed with [`Backoff`] whenever not connected. May carry `/p2p/<id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Gossip topics to subscribe to.
    pub topics: Vec<String>,
    /// Largest gossip payload (application bytes) published or accepted.
    pub max_gossip_bytes: usize,
    /// Largest request payload sent or read.
    pub max_request_bytes: usize,
    /// Largest response payload sent or read.
    pub max_response_bytes: usize,
    /// How long a request may wait for its response.
    pub request_timeout: Duration,
    /// Gossipsub heartbeat; short because the network is small and latency matters more than chatter.
    pub heartbeat: Duration,
    /// Bootstrap re-dial backoff.
    pub redial: Backoff,
    /// Node-level peer scoring.
    pub scoring: ScoreConfig,
    /// Most simultaneous connections (in + out).
    pub max_connections: u32,
    /// Capacity of the event channel to the node; when full, gossip and requests are dropped (and logged).
    pub event_buffer: usize,
}

impl NetConfig {
    /// A config with the default caps and timings, no bootstrap peers and no topics.
    pub fn new(keypair: Keypair, listen: Multiaddr) -> Self {
        Self {
            keypair,
            listen,
            bootstrap: Vec::new(),
            topics: Vec::new(),
            max_gossip_bytes: MIB,
            max_request_bytes: MIB,
            max_response_bytes: 16 * MIB,
            request_timeout: Duration::from_secs(10),
            heartbeat: Duration::from_millis(300),
            redial: Backoff { min: Duration::from_millis(500), max: Duration::from_secs(30) },
            scoring: ScoreConfig::default(),
            max_connections: 64,
            event_buffer: 1024,
        }
    }
}
