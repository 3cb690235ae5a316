//! The node's side of the transport: a cloneable command handle and the events it receives.
//!
//! Invariant: the node never touches libp2p state directly; every action is a [`Command`] processed in
//! order by the single network task, and every answer (request result, peer list) comes back on a oneshot,
//! so a stopped task turns into [`NetError::Stopped`] rather than a hang.

use libp2p::{gossipsub::MessageId, request_response::ResponseChannel, Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::error::{NetError, RequestFailure};

/// The node's judgement of a gossip message after decoding and validating it.
///
/// Nothing is forwarded to other peers until the node reports [`Verdict::Accept`]; every received
/// [`NetEvent::Gossip`] must get exactly one verdict, or it lingers in gossipsub's cache for a few heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it to the mesh.
    Accept,
    /// Invalid (bad signature, undecodable, provably wrong): drop it and score the forwarding peer down.
    Reject,
    /// Not useful but not malicious (stale height, already known): drop it without penalty.
    Ignore,
}

/// A connected peer as seen by the transport.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// The peer's identity.
    pub peer_id: PeerId,
    /// Remote address of one live connection (for inbound connections, an ephemeral port).
    pub addr: Multiaddr,
    /// Listen addresses the peer announced via identify (empty until identify completes).
    pub listen_addrs: Vec<Multiaddr>,
    /// Node-level score: 0 is clean, negative after misbehaviour; banned at `-ban_threshold`.
    pub score: i64,
    /// Gossipsub's own peer score (includes the node-level score as its application component).
    pub gossip_score: Option<f64>,
}

/// What the transport tells the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A gossip message on a subscribed topic, not yet forwarded: answer with
    /// [`NetHandle::report_validation`]`(msg_id, source, verdict)`.
    Gossip {
        /// The topic it arrived on.
        topic: String,
        /// Content-derived id (sha256 of topic and data).
        msg_id: MessageId,
        /// The peer that forwarded it to us (not necessarily its author); the one penalized on Reject.
        source: PeerId,
        /// The application bytes, at most `max_gossip_bytes`.
        data: Vec<u8>,
    },
    /// A request from a peer; answer through `respond` (dropping it makes the request fail remotely).
    Request {
        /// Who asked.
        peer: PeerId,
        /// The request bytes, at most `max_request_bytes`.
        data: Vec<u8>,
        /// Where the response goes.
        respond: Responder,
    },
    /// First connection to a peer established.
    PeerConnected(PeerId, Multiaddr),
    /// Last connection to a peer closed.
    PeerDisconnected(PeerId),
}

/// Instructions from handles to the network task.
#[derive(Debug)]
pub(crate) enum Command {
    Publish { topic: String, data: Vec<u8>, done: oneshot::Sender<Result<MessageId, NetError>> },
    Validation { msg_id: MessageId, source: PeerId, verdict: Verdict },
    Request { peer: PeerId, data: Vec<u8>, done: oneshot::Sender<Result<Vec<u8>, NetError>> },
    Respond { channel: ResponseChannel<Vec<u8>>, data: Vec<u8> },
    Penalize { peer: PeerId, reason: String },
    Peers { done: oneshot::Sender<Vec<PeerInfo>> },
    Dial { addr: Multiaddr },
    Isolate { peers: std::collections::HashSet<PeerId> },
    Shutdown { done: oneshot::Sender<()> },
}

/// Answers one [`NetEvent::Request`]. Consumed by [`Responder::send`].
#[derive(Debug)]
pub struct Responder {
    pub(crate) channel: ResponseChannel<Vec<u8>>,
    pub(crate) commands: mpsc::UnboundedSender<Command>,
}

impl Responder {
    /// Sends `data` as the response. Over `max_response_bytes` the write fails and the requester gets an
    /// error (logged here); the caller is expected to keep responses within the cap.
    pub fn send(self, data: Vec<u8>) -> Result<(), NetError> {
        self.commands.send(Command::Respond { channel: self.channel, data }).map_err(|_| NetError::Stopped)
    }
}

/// Cloneable handle to the running network task.
#[derive(Debug, Clone)]
pub struct NetHandle {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) request_timeout: std::time::Duration,
}

impl NetHandle {
    fn send(&self, cmd: Command) -> Result<(), NetError> {
        self.commands.send(cmd).map_err(|_| NetError::Stopped)
    }

    /// Publishes `data` on `topic` to all subscribed peers. Fails when no peer is subscribed yet, when the
    /// same content was published recently (content-hash ids), or over `max_gossip_bytes`.
    pub async fn publish(&self, topic: &str, data: Vec<u8>) -> Result<MessageId, NetError> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Publish { topic: topic.to_owned(), data, done })?;
        rx.await.map_err(|_| NetError::Stopped)?
    }

    /// Reports the node's verdict on a received gossip message; see [`Verdict`].
    pub fn report_validation(&self, msg_id: MessageId, source: PeerId, verdict: Verdict) -> Result<(), NetError> {
        self.send(Command::Validation { msg_id, source, verdict })
    }

    /// Sends a request to a connected `peer` and waits (bounded by the request timeout) for its response.
    pub async fn request(&self, peer: PeerId, data: Vec<u8>) -> Result<Vec<u8>, NetError> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Request { peer, data, done })?;
        // libp2p enforces the timeout too; this outer bound only guards against a lost answer.
        let bound = self.request_timeout + std::time::Duration::from_secs(1);
        match tokio::time::timeout(bound, rx).await {
            Ok(answer) => answer.map_err(|_| NetError::Stopped)?,
            Err(_) => Err(NetError::Request { peer, source: RequestFailure::TimedOut }),
        }
    }

    /// Scores `peer` down for node-level misbehaviour (e.g. an invalid block body, a useless sync answer);
    /// past the ban threshold it is disconnected and refused for a while.
    pub fn penalize(&self, peer: PeerId, reason: &str) -> Result<(), NetError> {
        self.send(Command::Penalize { peer, reason: reason.to_owned() })
    }

    /// Currently connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        let (done, rx) = oneshot::channel();
        self.send(Command::Peers { done })?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Dials `addr` once (no re-dial; put long-lived peers in `bootstrap`). Failures are logged.
    pub fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.send(Command::Dial { addr })
    }

    /// Cuts this node off from exactly `peers` (replacing the previous set): their connections are closed,
    /// they are neither dialed nor accepted, until a later call leaves them out; then bootstrap peers among
    /// them are re-dialed at once. For fault tests (a network partition made of dropped links); an empty
    /// set heals. Bans are kept apart: healing never lifts a ban.
    pub fn set_isolated(&self, peers: std::collections::HashSet<PeerId>) -> Result<(), NetError> {
        self.send(Command::Isolate { peers })
    }

    /// Stops the network task; returns once the swarm (listener and connections) has been dropped.
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.send(Command::Shutdown { done }).is_ok() {
            let _ = rx.await;
        }
    }
}
