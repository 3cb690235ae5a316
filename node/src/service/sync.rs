//! Sync, both ways, off the consensus loop: the peer book (who is connected, the tip each announced), the
//! one block-range request in flight, fetching a decided block we lack, and serving peers' requests within
//! their rate (see [`crate::sync_serve`] for the limiter and the fair serving queue).
//!
//! Requests run on their own tasks; their answers come back through [`SyncDriver::next_result`] as a
//! [`Fetched`]. What to commit is the event loop's business: the driver never touches the chain.

use crate::chain::FullBlock;
use crate::storage::Store;
use crate::sync_serve::{Allowance, RequestLimiter, SyncServer};
use crate::wire::{self, Request, Response, MAX_BLOCKS_PER_RESPONSE};
use consensus::CommitCertificate;
use net::{NetHandle, PeerId};
use primitives::{BlockId, Height};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info_span, Instrument};

/// Why a sync request got no usable answer (logged; the next tip announcement asks again).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The request failed (timeout, disconnect, refused).
    #[error(transparent)]
    Request(#[from] net::NetError),
    /// The answer is not a [`Response`].
    #[error("undecodable response: {0}")]
    Undecodable(#[source] std::io::Error),
    /// A block-range request answered with a single block (no honest node does that).
    #[error("a block-range request answered with a single block")]
    WrongAnswer,
}

/// A block-range request's answer as [`SyncDriver::next_result`] expects it. Only `Blocks` or `Busy` answer
/// one: a peer sending a single block instead must not leave the request "in flight" for ever (a fetched
/// block does not end it), which would stop this node from syncing from anyone again.
fn range_answer(res: Result<Response, SyncError>) -> Result<Response, SyncError> {
    match res {
        Ok(Response::Block(_)) => Err(SyncError::WrongAnswer),
        other => other,
    }
}

/// A peer's answer, as the event loop uses it.
pub enum Fetched {
    /// No usable answer (asked again on the next tip announcement).
    Failed(SyncError),
    /// The peer is over its serving capacity.
    Busy,
    /// A block asked for by hash (a decided block we lack), or `None` when the peer lacks it too.
    Block(Option<Box<FullBlock>>),
    /// Certified blocks from the height asked for, by height; `full`: the peer may have more.
    Blocks { blocks: BTreeMap<Height, (FullBlock, CommitCertificate)>, full: bool },
}

type SyncResult = (PeerId, Result<Response, SyncError>);

/// See the module docs.
pub struct SyncDriver {
    net: NetHandle,
    peers: HashSet<PeerId>,
    /// Each connected peer's announced tip, with its id as text (the status shows it after every event).
    peer_heights: HashMap<PeerId, (String, Height)>,
    best_peer_height: Height,
    in_flight: bool,
    results: (mpsc::Sender<SyncResult>, mpsc::Receiver<SyncResult>),
    limiter: RequestLimiter<PeerId>,
    serving: SyncServer<PeerId>,
}

impl SyncDriver {
    /// A driver on `net`, serving within [`crate::sync_serve`]'s rates.
    pub fn new(net: NetHandle) -> Self {
        Self {
            net,
            peers: HashSet::new(),
            peer_heights: HashMap::new(),
            best_peer_height: Height(0),
            in_flight: false,
            results: mpsc::channel(16),
            limiter: RequestLimiter::new(crate::sync_serve::BURST, crate::sync_serve::PER_SEC),
            serving: SyncServer::new(),
        }
    }

    /// A peer connected.
    pub fn connected(&mut self, peer: PeerId) {
        self.peers.insert(peer);
    }

    /// A peer left: its tip, rate and serving slots go.
    pub fn disconnected(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
        self.peer_heights.remove(peer);
        self.limiter.prune(Instant::now());
        self.serving.forget(peer);
    }

    /// A peer announced its tip.
    pub fn heard_tip(&mut self, peer: PeerId, height: Height) {
        self.best_peer_height = self.best_peer_height.max(height);
        if self.peers.contains(&peer) {
            self.peer_heights.entry(peer).or_insert_with(|| (peer.to_string(), height)).1 = height;
        }
    }

    /// Asks `peer` for the certified blocks from `from` on, unless a request is in flight already.
    pub fn request_blocks(&mut self, peer: PeerId, from: Height) {
        if self.in_flight {
            return;
        }
        self.in_flight = true;
        let net = self.net.clone();
        let tx = self.results.0.clone();
        let req = wire::encode(&Request::GetBlocks { from, max: MAX_BLOCKS_PER_RESPONSE });
        tokio::spawn(
            async move {
                let res = match net.request(peer, req).await {
                    Ok(bytes) => wire::decode::<Response>(&bytes).map_err(SyncError::Undecodable),
                    Err(e) => Err(SyncError::Request(e)),
                };
                let _ = tx.send((peer, range_answer(res))).await;
            }
            .instrument(info_span!("sync", %peer)),
        );
    }

    /// Asks connected peers in turn for the block `hash` (decided here, not held); the first that has it
    /// answers through [`Self::next_result`].
    pub fn fetch_block(&self, hash: BlockId) {
        let net = self.net.clone();
        let tx = self.results.0.clone();
        let peers: Vec<PeerId> = self.peers.iter().copied().collect();
        tokio::spawn(async move {
            for peer in peers {
                if let Ok(bytes) = net.request(peer, wire::encode(&Request::GetBlock { hash })).await {
                    if let Ok(Response::Block(Some(b))) = wire::decode::<Response>(&bytes) {
                        let _ = tx.send((peer, Ok(Response::Block(Some(b))))).await;
                        return;
                    }
                }
            }
        });
    }

    /// The next answer to one of our requests.
    pub async fn next_result(&mut self) -> (PeerId, Fetched) {
        let Some((peer, res)) = self.results.1.recv().await else {
            // We hold a sender: the channel never closes.
            return std::future::pending().await;
        };
        let fetched = match res {
            Err(e) => Fetched::Failed(e),
            Ok(Response::Busy) => Fetched::Busy,
            Ok(Response::Block(b)) => return (peer, Fetched::Block(b)),
            Ok(Response::Blocks(blocks)) => {
                let full = blocks.len() as u32 == MAX_BLOCKS_PER_RESPONSE;
                Fetched::Blocks { blocks: blocks.into_iter().map(|(fb, c)| (fb.height(), (fb, c))).collect(), full }
            }
        };
        // A block-range answer (or its failure) ends the request in flight; a fetched block does not.
        self.in_flight = false;
        (peer, fetched)
    }

    /// Answers a peer's request within its rate: a block still being decided from `held` (memory), anything
    /// else from `store` on a blocking thread with slots shared fairly between peers. Committed blocks never
    /// change: what is at or below `tip` can be read while the loop goes on.
    pub fn answer(
        &mut self,
        peer: PeerId,
        req: Request,
        respond: net::Responder,
        held: impl FnOnce(&BlockId) -> Option<FullBlock>,
        store: Arc<Store>,
        tip: Height,
    ) {
        match self.limiter.check(&peer, Instant::now()) {
            Allowance::Granted => {}
            refused => {
                debug!(%peer, "sync request over the peer's rate: refused");
                if refused == Allowance::RefusedPenalize {
                    self.penalize(peer, "sync requests far over the rate limit");
                }
                let _ = respond.send(wire::encode(&Response::Busy));
                return;
            }
        }
        if let Request::GetBlock { hash } = &req {
            if let Some(fb) = held(hash) {
                let _ = respond.send(wire::encode(&Response::Block(Some(Box::new(fb)))));
                return;
            }
        }
        let job = crate::sync_serve::answer_job(store, tip, req, respond);
        self.serving.submit(peer, job);
    }

    /// Scores `peer` down for `why` (a bad request, an invalid block served).
    pub fn penalize(&self, peer: PeerId, why: &str) {
        if let Err(e) = self.net.penalize(peer, why) {
            debug!(%peer, error = %e, "penalty not delivered");
        }
    }

    /// Connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The highest tip a peer announced.
    pub fn best_peer_height(&self) -> Height {
        self.best_peer_height
    }

    /// The tip each connected peer last announced.
    pub fn peer_heights(&self) -> impl Iterator<Item = (&str, &Height)> {
        self.peer_heights.values().map(|(name, height)| (name.as_str(), height))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_request_answered_with_one_block_fails_so_sync_is_not_stuck_in_flight() {
        assert!(matches!(range_answer(Ok(Response::Block(None))), Err(SyncError::WrongAnswer)));
        assert!(matches!(range_answer(Ok(Response::Busy)), Ok(Response::Busy)));
        assert!(matches!(range_answer(Ok(Response::Blocks(Vec::new()))), Ok(Response::Blocks(_))));
    }
}
