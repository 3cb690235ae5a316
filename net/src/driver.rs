//! The network task: one loop that owns the swarm, executes handle commands and turns swarm events into
//! node events, scores and bans.
//!
//! Invariant: nothing in this loop blocks on the node. Events are handed over with `try_send`; when the
//! node is behind, gossip is dropped (and reported as Ignore so gossipsub frees it) and requests are
//! dropped (the requester sees a failure), so pings, heartbeats and other peers keep flowing. Peer
//! misbehaviour (garbage frames, rejected gossip, node penalties) only ever changes scores and bans.

use std::{
    collections::{HashMap, HashSet},
    io,
    time::{Duration, Instant},
};

use futures::StreamExt;
use libp2p::{
    gossipsub::{self, IdentTopic, MessageAcceptance, PublishError},
    identify, ping,
    request_response::{self, OutboundRequestId},
    swarm::{dial_opts::DialOpts, ConnectionId, SwarmEvent},
    Multiaddr, PeerId, Swarm,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::{
    behaviour::{Behaviour, BehaviourEvent},
    codec::RequestFrame,
    config::NetConfig,
    error::{NetError, RequestFailure},
    handle::{Command, NetEvent, PeerInfo, Responder, Verdict},
    recent::{RecentIds, DUPLICATE_CACHE_TIME},
    redial::Redialer,
    score::{Penalty, Scoreboard},
};

/// Where the answer to one outbound request goes.
type ResponseTx = oneshot::Sender<Result<Vec<u8>, NetError>>;

/// How often the loop checks re-dials and score recovery.
const TICK: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct Peer {
    conns: Vec<(ConnectionId, Multiaddr)>,
    listen_addrs: Vec<Multiaddr>,
}

pub(crate) struct Driver {
    pub swarm: Swarm<Behaviour>,
    pub cfg: NetConfig,
    pub events: mpsc::Sender<NetEvent>,
    /// Weak, so the task stops once the node has dropped every handle and responder.
    pub commands_tx: mpsc::WeakUnboundedSender<Command>,
    pub redial: Redialer,
    pub scores: Scoreboard,
    peers: HashMap<PeerId, Peer>,
    pending: HashMap<OutboundRequestId, (PeerId, ResponseTx)>,
    last_recovery: Instant,
    /// Peers we are cut off from on purpose ([`crate::NetHandle::set_isolated`]): blocked like banned
    /// peers, but lifted only by the next set, never by a ban expiring.
    isolated: HashSet<PeerId>,
    /// Ids in gossipsub's duplicate cache (see [`crate::recent`]).
    recent: RecentIds,
}

impl Driver {
    pub fn new(
        swarm: Swarm<Behaviour>,
        cfg: NetConfig,
        events: mpsc::Sender<NetEvent>,
        commands_tx: mpsc::WeakUnboundedSender<Command>,
    ) -> Self {
        let now = Instant::now();
        Self {
            redial: Redialer::new(&cfg.bootstrap, cfg.redial, now),
            scores: Scoreboard::new(cfg.scoring),
            swarm,
            cfg,
            events,
            commands_tx,
            peers: HashMap::new(),
            pending: HashMap::new(),
            last_recovery: now,
            isolated: HashSet::new(),
            recent: RecentIds::new(DUPLICATE_CACHE_TIME),
        }
    }

    /// Runs until shutdown is requested or every handle is dropped.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let done = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown { done }) => break Some(done),
                    Some(cmd) => self.on_command(cmd),
                    None => break None,
                },
                _ = tick.tick() => self.on_tick(),
            }
        };
        info!(peer_id = %self.swarm.local_peer_id(), "network task stopping");
        for (_, (peer, tx)) in self.pending.drain() {
            let _ = tx.send(Err(NetError::Request { peer, source: RequestFailure::ShutDown }));
        }
        drop(self.swarm);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_recovery);
        if elapsed >= Duration::from_secs(1) {
            self.last_recovery = now;
            for peer in self.scores.tick(elapsed, now) {
                info!(%peer, "ban expired");
                if !self.isolated.contains(&peer) {
                    self.swarm.behaviour_mut().blocked.unblock_peer(peer);
                }
                self.swarm.behaviour_mut().gossipsub.set_application_score(&peer, 0.0);
            }
        }
        let peers = &self.peers;
        for (idx, addr, peer) in self.redial.due(now, |p| peers.contains_key(p)) {
            if peer.is_some_and(|p| self.isolated.contains(&p)) {
                // Stays due: dialed on the first tick after the isolation is lifted.
                continue;
            }
            if peer.is_some_and(|p| self.scores.is_banned(&p)) {
                self.redial.failed(idx, now);
                continue;
            }
            let opts = match peer {
                Some(p) => DialOpts::peer_id(p).addresses(vec![addr.clone()]).build(),
                None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
            };
            let conn = opts.connection_id();
            self.redial.dialing(idx, conn);
            debug!(%addr, "dialing bootstrap peer");
            if let Err(error) = self.swarm.dial(opts) {
                debug!(%addr, %error, "bootstrap dial did not start");
                self.redial.failed(idx, now);
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish { topic, data, done } => {
                let _ = done.send(self.publish(&topic, data));
            }
            Command::Validation { msg_id, source, verdict } => {
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Reject => MessageAcceptance::Reject,
                    Verdict::Ignore => MessageAcceptance::Ignore,
                };
                let known =
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(&msg_id, &source, acceptance);
                debug!(%msg_id, %source, ?verdict, known, "gossip validated");
                if verdict == Verdict::Reject {
                    self.penalize(source, self.cfg.scoring.reject_penalty, "gossip rejected by node");
                }
            }
            Command::Request { peer, data, done } => {
                if data.len() > self.cfg.max_request_bytes {
                    let max = self.cfg.max_request_bytes;
                    let _ = done.send(Err(NetError::TooLarge { what: "request", len: data.len(), max }));
                    return;
                }
                let id = self.swarm.behaviour_mut().reqres.send_request(&peer, RequestFrame::Bytes(data));
                self.pending.insert(id, (peer, done));
            }
            Command::Respond { channel, data } => {
                if self.swarm.behaviour_mut().reqres.send_response(channel, data).is_err() {
                    debug!("response dropped: requester gone or request timed out");
                }
            }
            Command::Penalize { peer, reason } => self.penalize(peer, self.cfg.scoring.penalize_penalty, &reason),
            Command::Peers { done } => {
                let _ = done.send(self.peer_infos());
            }
            Command::Dial { addr } => {
                if let Err(error) = self.swarm.dial(addr.clone()) {
                    warn!(%addr, %error, "dial failed");
                }
            }
            Command::Isolate { peers } => self.isolate(peers),
            Command::Shutdown { .. } => {} // handled by the loop
        }
    }

    fn isolate(&mut self, peers: HashSet<PeerId>) {
        let now = Instant::now();
        for peer in self.isolated.difference(&peers) {
            info!(%peer, "isolation lifted: peer allowed again");
            if !self.scores.is_banned(peer) {
                self.swarm.behaviour_mut().blocked.unblock_peer(*peer);
            }
            self.redial.reset(peer, now);
        }
        for peer in peers.difference(&self.isolated) {
            warn!(%peer, "FAULT: isolated from peer (its links are dropped and refused)");
            // Closes every connection to the peer and refuses new ones, as a ban does.
            self.swarm.behaviour_mut().blocked.block_peer(*peer);
        }
        self.isolated = peers;
    }

    fn publish(&mut self, topic: &str, data: Vec<u8>) -> Result<gossipsub::MessageId, NetError> {
        if data.len() > self.cfg.max_gossip_bytes {
            return Err(NetError::TooLarge { what: "gossip", len: data.len(), max: self.cfg.max_gossip_bytes });
        }
        // Refused here rather than by gossipsub, which would log a WARN for every one (see `recent`).
        let id = crate::behaviour::content_id(topic, &data);
        let now = Instant::now();
        if self.recent.contains(&id, now) {
            return Err(NetError::Duplicate { topic: topic.to_owned() });
        }
        let source = match self.swarm.behaviour_mut().gossipsub.publish(IdentTopic::new(topic), data) {
            Ok(published) => {
                self.recent.insert(published.clone(), now);
                return Ok(published);
            }
            Err(PublishError::Duplicate) => return Err(NetError::Duplicate { topic: topic.to_owned() }),
            Err(e @ PublishError::AllQueuesFull(_)) => {
                // Gossipsub cached the id before finding every queue full: a retry would be a duplicate.
                self.recent.insert(id, now);
                e
            }
            Err(other) => other,
        };
        Err(NetError::Publish { topic: topic.to_owned(), source })
    }

    fn penalize(&mut self, peer: PeerId, points: u32, reason: &str) {
        match self.scores.penalize(peer, points, Instant::now()) {
            Penalty::Scored(score) => {
                info!(%peer, score, points, reason, "peer penalized");
                self.swarm.behaviour_mut().gossipsub.set_application_score(&peer, score as f64);
            }
            Penalty::Banned(score) => {
                warn!(%peer, score, reason, ban_secs = self.cfg.scoring.ban_duration.as_secs(), "peer banned");
                self.swarm.behaviour_mut().gossipsub.set_application_score(&peer, score as f64);
                // Closes every connection to the peer and refuses new ones until the ban expires.
                self.swarm.behaviour_mut().blocked.block_peer(peer);
            }
            Penalty::AlreadyBanned => debug!(%peer, reason, "penalty for an already banned peer"),
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let gossip = &self.swarm.behaviour().gossipsub;
        self.peers
            .iter()
            .filter_map(|(id, p)| {
                let (_, addr) = p.conns.first()?;
                Some(PeerInfo {
                    peer_id: *id,
                    addr: addr.clone(),
                    listen_addrs: p.listen_addrs.clone(),
                    score: self.scores.score(id),
                    gossip_score: gossip.peer_score(id),
                })
            })
            .collect()
    }

    fn emit(&mut self, event: NetEvent) {
        match self.events.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => match event {
                NetEvent::Gossip { msg_id, source, topic, .. } => {
                    warn!(%msg_id, %source, topic, "node is behind: gossip dropped");
                    self.swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &msg_id,
                        &source,
                        MessageAcceptance::Ignore,
                    );
                }
                NetEvent::Request { peer, .. } => warn!(%peer, "node is behind: request dropped"),
                NetEvent::PeerConnected(peer, _) => warn!(%peer, "node is behind: connect event dropped"),
                NetEvent::PeerDisconnected(peer) => warn!(%peer, "node is behind: disconnect event dropped"),
            },
            Err(mpsc::error::TrySendError::Closed(_)) => debug!("event receiver dropped"),
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(ev)) => self.on_gossip(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Reqres(ev)) => self.on_reqres(ev),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                if info.protocol_version != crate::behaviour::IDENTIFY_PROTOCOL {
                    warn!(peer = %peer_id, version = info.protocol_version, "peer speaks another protocol version");
                }
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.listen_addrs = info.listen_addrs;
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, result: Err(error), .. })) => {
                debug!(%peer, %error, "ping failed");
            }
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::ConnectionEstablished { peer_id, connection_id, endpoint, num_established, .. } => {
                let addr = endpoint.get_remote_address().clone();
                let bootstrap = self.redial.established(connection_id, peer_id, Instant::now());
                self.peers.entry(peer_id).or_default().conns.push((connection_id, addr.clone()));
                debug!(peer = %peer_id, %addr, bootstrap, num_established = num_established.get(), "connection established");
                if num_established.get() == 1 {
                    info!(peer = %peer_id, %addr, "peer connected");
                    self.emit(NetEvent::PeerConnected(peer_id, addr));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, cause, .. } => {
                if let Some(p) = self.peers.get_mut(&peer_id) {
                    p.conns.retain(|(c, _)| *c != connection_id);
                }
                debug!(peer = %peer_id, cause = ?cause, num_established, "connection closed");
                if num_established == 0 {
                    self.peers.remove(&peer_id);
                    self.redial.disconnected(&peer_id, Instant::now());
                    info!(peer = %peer_id, "peer disconnected");
                    self.emit(NetEvent::PeerDisconnected(peer_id));
                }
            }
            SwarmEvent::OutgoingConnectionError { connection_id, peer_id, error } => {
                debug!(peer = ?peer_id, %error, "outgoing connection failed");
                self.redial.dial_failed(connection_id, Instant::now());
            }
            SwarmEvent::IncomingConnectionError { send_back_addr, error, peer_id, .. } => {
                // Garbage on the listen port ends here: the handshake fails, nothing else is touched. Logged
                // at info so an operator sees who is knocking (one line per connection, no payload).
                info!(remote = %send_back_addr, peer = ?peer_id, %error, "incoming connection failed");
            }
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::ListenerClosed { addresses, reason, .. } => {
                warn!(?addresses, ?reason, "listener closed");
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, ev: gossipsub::Event) {
        match ev {
            gossipsub::Event::Message { propagation_source, message_id, message } => {
                let topic = message.topic.as_str().to_owned();
                debug!(%message_id, source = %propagation_source, topic, len = message.data.len(), "gossip received");
                self.recent.insert(message_id.clone(), Instant::now());
                self.emit(NetEvent::Gossip {
                    topic,
                    msg_id: message_id,
                    source: propagation_source,
                    data: message.data,
                });
            }
            gossipsub::Event::GossipsubNotSupported { peer_id } => {
                debug!(peer = %peer_id, "peer does not speak gossipsub");
            }
            gossipsub::Event::SlowPeer { peer_id, failed_messages } => {
                warn!(peer = %peer_id, ?failed_messages, "slow gossip peer");
            }
            gossipsub::Event::Subscribed { peer_id, topic } => debug!(peer = %peer_id, %topic, "peer subscribed"),
            gossipsub::Event::Unsubscribed { peer_id, topic } => debug!(peer = %peer_id, %topic, "peer unsubscribed"),
        }
    }

    fn on_reqres(&mut self, ev: request_response::Event<RequestFrame, Vec<u8>>) {
        use request_response::{Event, Message, OutboundFailure};
        match ev {
            Event::Message {
                peer,
                message: Message::Request { request: RequestFrame::Oversized { len, max }, .. },
                ..
            } => {
                // Dropping the channel closes the stream: the requester gets an error, we read nothing more.
                warn!(%peer, len, max, "oversized request");
                self.penalize(peer, self.cfg.scoring.garbage_penalty, "oversized request");
            }
            Event::Message {
                peer,
                message: Message::Request { request: RequestFrame::Bytes(request), channel, .. },
                ..
            } => {
                debug!(%peer, len = request.len(), "request received");
                // No live sender means no handle is left: nobody could answer, let the request fail.
                if let Some(commands) = self.commands_tx.upgrade() {
                    let respond = Responder { channel, commands };
                    self.emit(NetEvent::Request { peer, data: request, respond });
                }
            }
            Event::Message { peer, message: Message::Response { request_id, response }, .. } => {
                debug!(%peer, len = response.len(), "response received");
                if let Some((_, done)) = self.pending.remove(&request_id) {
                    let _ = done.send(Ok(response));
                }
            }
            Event::OutboundFailure { peer, request_id, error, .. } => {
                warn!(%peer, %error, "request failed");
                // InvalidData is what the codec returns for a declared length over our cap: the peer's
                // fault. A truncated stream may be a crash or our own request refused; no penalty.
                if matches!(&error, OutboundFailure::Io(e) if e.kind() == io::ErrorKind::InvalidData) {
                    self.penalize(peer, self.cfg.scoring.garbage_penalty, "oversized response");
                }
                if let Some((_, done)) = self.pending.remove(&request_id) {
                    let _ = done.send(Err(NetError::Request { peer, source: error.into() }));
                }
            }
            // Read errors never get here (libp2p logs them at debug); oversized requests arrive as values.
            Event::InboundFailure { peer, error, .. } => debug!(%peer, %error, "inbound request failed"),
            Event::ResponseSent { .. } => {}
        }
    }
}
