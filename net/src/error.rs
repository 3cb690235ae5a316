//! The one error type of the net crate.
//!
//! Every failure the node can see from the transport (start-up, a request that did not get an answer, a
//! message over a size cap, the network task having stopped) is a variant here, with the context that
//! identifies it (peer, sizes, address).

use libp2p::gossipsub::{PublishError, SubscriptionError};
use libp2p::request_response::OutboundFailure;
use libp2p::{Multiaddr, PeerId, TransportError};

/// Errors returned by [`crate::Network`] and [`crate::NetHandle`].
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The gossipsub configuration was rejected by libp2p (its config builder's error, or the text its
    /// behaviour and peer-score setters return, boxed as they come).
    #[error("invalid gossipsub config: {0}")]
    GossipConfig(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The node's key is not a valid libp2p identity.
    #[error("node key as libp2p identity: {0}")]
    Identity(#[source] libp2p::identity::DecodingError),
    /// Building the transport (TCP + noise + yamux) failed.
    #[error("cannot build transport: {0}")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Listening on the configured address failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: Multiaddr,
        #[source]
        source: ListenFailure,
    },
    /// Subscribing to a configured topic failed.
    #[error("cannot subscribe to topic {topic}: {source}")]
    Subscribe {
        topic: String,
        #[source]
        source: SubscriptionError,
    },
    /// A payload is over the configured cap; nothing was sent.
    #[error("{what} of {len} bytes exceeds the cap of {max} bytes")]
    TooLarge { what: &'static str, len: usize, max: usize },
    /// Gossipsub refused to publish (no subscribed peers yet, queues full).
    #[error("cannot publish on topic {topic}: {source}")]
    Publish {
        topic: String,
        #[source]
        source: PublishError,
    },
    /// The same content was published or received on this topic within the duplicate cache time: it is
    /// out already (or coming), and gossipsub would not send it again. Normal, not a failure to act on.
    #[error("same content on topic {topic} already published or received recently")]
    Duplicate { topic: String },
    /// A request to a peer failed (dial failure, timeout, connection closed, oversized or garbled response).
    #[error("request to peer {peer} failed: {source}")]
    Request {
        peer: PeerId,
        #[source]
        source: RequestFailure,
    },
    /// The network task is gone (shut down or crashed); the handle is useless from now on.
    #[error("network task has stopped")]
    Stopped,
}

/// Why listening on the configured address failed.
#[derive(Debug, thiserror::Error)]
pub enum ListenFailure {
    /// The transport refused the address.
    #[error(transparent)]
    Transport(#[from] TransportError<std::io::Error>),
    /// The listener failed.
    #[error(transparent)]
    Listener(std::io::Error),
    /// The listener closed before it had an address.
    #[error("listener closed")]
    Closed(#[source] Option<std::io::Error>),
    /// The swarm ended before the listener had an address.
    #[error("swarm ended")]
    SwarmEnded,
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum RequestFailure {
    /// libp2p's request-response failed: dial failure, timeout, connection closed, oversized or garbled
    /// response.
    #[error(transparent)]
    Outbound(#[from] OutboundFailure),
    /// No answer came within the handle's outer bound (a lost answer).
    #[error("timed out")]
    TimedOut,
    /// The network task shut down with the request pending.
    #[error("network shut down")]
    ShutDown,
}
