//! The libp2p behaviour stack and swarm construction: what protocols the node speaks, with which limits.
//!
//! Invariant: every inbound byte stream is capped here: gossip by `max_transmit_size`, requests and
//! responses by [`RawCodec`], connection counts by `connection_limits`; banned peers are refused by the
//! block list before any protocol runs.

use libp2p::{
    allow_block_list, connection_limits,
    gossipsub::{self, MessageAuthenticity, MessageId, PeerScoreParams, PeerScoreThresholds, ValidationMode},
    identify, noise, ping,
    request_response::{self, ProtocolSupport},
    swarm::NetworkBehaviour,
    tcp, yamux, Swarm, SwarmBuilder,
};
use sha2::{Digest, Sha256};

use crate::{
    codec::{RawCodec, REQUEST_PROTOCOL},
    config::NetConfig,
    error::NetError,
};

/// Identify protocol version; peers announcing another one are still served (the log shows it). Version 2:
/// gossip is anonymous (see [`gossipsub`]), which version-1 nodes refuse.
pub const IDENTIFY_PROTOCOL: &str = "/sidechain/2";

/// Gossipsub framing overhead allowed on top of `max_gossip_bytes` (topic and protobuf framing).
const GOSSIP_OVERHEAD: usize = 4 * 1024;

/// The protocols of a sidechain node.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub limits: connection_limits::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    pub reqres: request_response::Behaviour<RawCodec>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
}

/// Message id: sha256 over topic and data, so the same content on the same topic collapses into one
/// message whoever publishes it, and the same bytes on another topic cannot pre-empt it.
pub fn content_id(topic: &str, data: &[u8]) -> MessageId {
    let mut h = Sha256::new();
    h.update((topic.len() as u64).to_be_bytes());
    h.update(topic.as_bytes());
    h.update(data);
    MessageId::from(h.finalize().to_vec())
}

/// Gossip is anonymous: no libp2p author signature, no sequence number. Every payload (transaction, vote,
/// proposal, share) carries its own ed25519 signature, checked by the node before anything is forwarded,
/// and the node judges and scores the peer that delivered a message (`propagation_source`), never its
/// claimed author. A libp2p signature would prove only which peer first published the bytes, which nothing
/// uses, and cost an ed25519 signing per publish and a verification per received message: 12% of a
/// validator's CPU at saturation in the release build (perf, `scripts/bench`). Ids are content hashes, so
/// duplicates still collapse.
fn gossipsub(cfg: &NetConfig) -> Result<gossipsub::Behaviour, NetError> {
    let config = gossipsub::ConfigBuilder::default()
        // Forward nothing until the node has validated it; refuse messages carrying author fields.
        .validation_mode(ValidationMode::Anonymous)
        // Without an author, our own bytes coming back (or the same bytes another node published: a
        // transaction submitted to several nodes) would be refused as self-origin and the peer that relayed
        // them marked invalid; they are ordinary duplicates.
        .allow_self_origin(true)
        .validate_messages()
        .message_id_fn(|m| content_id(m.topic.as_str(), &m.data))
        // The driver mirrors this cache to refuse duplicate publishes itself (see `recent`).
        .duplicate_cache_time(crate::recent::DUPLICATE_CACHE_TIME)
        .max_transmit_size(cfg.max_gossip_bytes.saturating_add(GOSSIP_OVERHEAD))
        .heartbeat_interval(cfg.heartbeat)
        // A federation of 4-10 nodes: a mesh of everyone we know, publish to every subscriber.
        .mesh_n_low(2)
        .mesh_n(4)
        .mesh_n_high(8)
        .mesh_outbound_min(1)
        .gossip_lazy(4)
        .flood_publish(true)
        .build()
        .map_err(|e| NetError::GossipConfig(e.into()))?;
    let mut behaviour = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)
        .map_err(|e| NetError::GossipConfig(e.into()))?;
    // Scoring is on so the node-level score (fed in as the application score) also steers the mesh.
    // All nodes may share one host in tests and small deployments: no IP colocation penalty.
    let params = PeerScoreParams { ip_colocation_factor_weight: 0.0, app_specific_weight: 1.0, ..Default::default() };
    let ban = -f64::from(cfg.scoring.ban_threshold);
    let thresholds = PeerScoreThresholds {
        gossip_threshold: ban * 0.4,
        publish_threshold: ban * 0.6,
        graylist_threshold: ban * 0.8,
        ..Default::default()
    };
    behaviour.with_peer_score(params, thresholds).map_err(|e| NetError::GossipConfig(e.into()))?;
    for topic in &cfg.topics {
        behaviour
            .subscribe(&gossipsub::IdentTopic::new(topic))
            .map_err(|source| NetError::Subscribe { topic: topic.clone(), source })?;
    }
    Ok(behaviour)
}

fn behaviour(cfg: &NetConfig) -> Result<Behaviour, NetError> {
    let codec = RawCodec { max_request: cfg.max_request_bytes, max_response: cfg.max_response_bytes };
    let reqres = request_response::Behaviour::with_codec(
        codec,
        [(REQUEST_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(cfg.request_timeout),
    );
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(cfg.max_connections))
        .with_max_pending_incoming(Some(cfg.max_connections))
        .with_max_established_per_peer(Some(2));
    Ok(Behaviour {
        blocked: allow_block_list::Behaviour::default(),
        limits: connection_limits::Behaviour::new(limits),
        gossipsub: gossipsub(cfg)?,
        reqres,
        identify: identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), cfg.keypair.public())
                .with_agent_version(format!("sidechaind/{}", env!("CARGO_PKG_VERSION"))),
        ),
        ping: ping::Behaviour::new(ping::Config::new()),
    })
}

/// Builds the swarm: TCP (nodelay) + noise + yamux, the behaviour above, a generous idle timeout.
pub fn build_swarm(cfg: &NetConfig) -> Result<Swarm<Behaviour>, NetError> {
    let behaviour = behaviour(cfg)?;
    let swarm = SwarmBuilder::with_existing_identity(cfg.keypair.clone())
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| NetError::Transport(e.into()))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| NetError::Transport(e.into()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(std::time::Duration::from_secs(60)))
        .build();
    Ok(swarm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_id_separates_topics_and_collapses_duplicates() {
        assert_eq!(content_id("votes", b"x"), content_id("votes", b"x"));
        assert_ne!(content_id("votes", b"x"), content_id("txs", b"x"));
        // The length prefix keeps topic/data boundaries unambiguous.
        assert_ne!(content_id("ab", b"c"), content_id("a", b"bc"));
    }
}
