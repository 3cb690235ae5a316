//! Serving sync requests (`GetBlocks`, `GetBlock`) to peers without letting them slow consensus, and
//! fairly, so Sybil peers cannot starve an honest node that is catching up.
//!
//! Why: a request costs the asker a few bytes and the server up to a response of many megabytes read from
//! disk and decoded. Answered on the consensus loop without a limit, one peer asking in a tight loop delays
//! every vote this node handles. So each peer has a token bucket ([`RequestLimiter`]): over it, the peer
//! gets [`crate::wire::Response::Busy`] and nothing is read; a peer that keeps asking after being refused is
//! scored down. A spent allowance outlives a disconnect (only refilled buckets are dropped), so
//! reconnecting does not buy a fresh burst. A granted `GetBlocks` is read from the store (committed blocks never change) on a blocking
//! thread, never on the loop, at most [`MAX_SERVING`] at once, and capped at [`RESPONSE_BYTES`].
//!
//! Fairness: per-peer buckets do nothing against many peer ids, each within its rate, that together keep
//! every serving slot taken (a shared "first come" cap then answers the honest syncing node `Busy` forever).
//! So slots go through a [`FairQueue`]: a peer has at most one request served or waiting at a time, requests
//! wait (at most [`MAX_WAITING`]) instead of being refused when the slots are full, and a freed slot goes to
//! the waiting peer served *least recently*; a peer never served counts as served when it was first seen,
//! so a stream of fresh (or reconnecting) peer ids queues behind peers that have waited longer instead of
//! ahead of them. A full queue makes room for a peer served less recently than its worst entry. The history
//! outlives a disconnect (bounded by [`HISTORY`]), so reconnecting does not reset a peer's turn. An honest
//! peer thus waits at most about one turn of the peers asking, however many ids an attacker brings.
//!
//! Invariant owned here: per peer, at most `burst + rate * t` requests are served in any span `t`, at most
//! one at a time; one answer never carries more than [`RESPONSE_BYTES`] of blocks (or a single block, which
//! always fits the transport's cap).

use crate::chain::FullBlock;
use crate::storage::{Store, StoreError};
use consensus::CommitCertificate;
use primitives::Height;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// Bytes of blocks one `GetBlocks` answer carries at most (beyond a first block, which always goes).
pub const RESPONSE_BYTES: usize = 8 * net::MIB;

/// Sync answers being read at once, from all peers together (each holds a blocking thread).
pub const MAX_SERVING: usize = 4;

/// Sync requests waiting for a serving slot, at most (one per peer).
pub const MAX_WAITING: usize = 64;

/// Requests a peer may make in a burst.
pub const BURST: u32 = 16;

/// Requests a peer may make per second, sustained. An honest node asks one at a time and waits for the
/// answer and for committing it, far below this.
pub const PER_SEC: u32 = 8;

/// Refusals in a row after which a peer is scored down (once per this many): an honest node that was
/// refused waits for the next tip announcement before asking again, so it never gets near this.
pub const REFUSALS_BEFORE_PENALTY: u32 = 8;

/// Peers whose allowance [`RequestLimiter`] keeps at most (a bucket is a few dozen bytes).
pub const MAX_TRACKED: usize = 4096;

/// One peer's allowance.
#[derive(Clone, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    refused_in_a_row: u32,
}

/// What the limiter says about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowance {
    /// Serve it.
    Granted,
    /// Refuse it (answer `Busy`).
    Refused,
    /// Refuse it and score the peer down: it keeps asking after refusals.
    RefusedPenalize,
}

/// A token bucket per peer: `burst` tokens, refilled at `per_sec`; each request takes one.
#[derive(Debug)]
pub struct RequestLimiter<K> {
    burst: f64,
    per_sec: f64,
    buckets: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> RequestLimiter<K> {
    /// A limiter allowing `burst` requests at once and `per_sec` sustained, per peer.
    pub fn new(burst: u32, per_sec: u32) -> Self {
        RequestLimiter { burst: f64::from(burst.max(1)), per_sec: f64::from(per_sec), buckets: HashMap::new() }
    }

    /// Takes a token for one request of `peer` at `now`.
    pub fn check(&mut self, peer: &K, now: Instant) -> Allowance {
        if self.buckets.len() >= MAX_TRACKED && !self.buckets.contains_key(peer) {
            self.prune_to(now, MAX_TRACKED - 1);
        }
        let burst = self.burst;
        let b = self.buckets.entry(peer.clone()).or_insert(Bucket { tokens: burst, last: now, refused_in_a_row: 0 });
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.refused_in_a_row = 0;
            return Allowance::Granted;
        }
        b.refused_in_a_row = b.refused_in_a_row.saturating_add(1);
        if b.refused_in_a_row.is_multiple_of(REFUSALS_BEFORE_PENALTY) {
            Allowance::RefusedPenalize
        } else {
            Allowance::Refused
        }
    }

    /// Drops the buckets that have refilled to the burst: they allow what a new peer's does (only the count
    /// of refusals in a row is lost, and a peer with a full bucket is granted anyway). Called when a peer disconnects, instead of
    /// forgetting that peer: a peer that spent its burst and reconnects (or comes back under the same id)
    /// still has an empty bucket, so disconnecting does not buy a fresh burst. What stays are the peers that
    /// asked within the last `burst / per_sec` seconds; beyond [`MAX_TRACKED`] of them the least recently
    /// seen is dropped (it can then ask one burst early, once).
    pub fn prune(&mut self, now: Instant) {
        self.prune_to(now, MAX_TRACKED);
    }

    /// [`Self::prune`], then the least recently seen until at most `max` are left.
    fn prune_to(&mut self, now: Instant, max: usize) {
        let (burst, per_sec) = (self.burst, self.per_sec);
        self.buckets.retain(|_, b| {
            let refilled = b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * per_sec;
            refilled < burst
        });
        while self.buckets.len() > max {
            let Some(oldest) = self.buckets.iter().min_by_key(|(_, b)| b.last).map(|(k, _)| k.clone()) else { break };
            self.buckets.remove(&oldest);
        }
    }

    /// Peers tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no peer is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

/// What [`FairQueue::offer`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer<K, T> {
    /// A slot was free: serve it now (and call [`FairQueue::done`] when finished).
    Serve(T),
    /// It waits for a slot; [`FairQueue::done`] hands it out.
    Queued,
    /// Not taken (answer `Busy`): the peer already has a request served or waiting, or every waiting peer
    /// was served less recently.
    Refused(T),
    /// It waits, in place of this waiting request of a peer served more recently (answer that one `Busy`).
    Displaced(K, T),
}

/// Peers whose turn history [`FairQueue`] keeps, at most: beyond it the one with the oldest stamp not
/// being served or waiting is dropped (it is then stamped anew if it comes back, which only ranks it later).
pub const HISTORY: usize = 4096;

/// Serving slots shared fairly between peers; see the module docs. Pure: the caller runs what it is handed.
#[derive(Debug)]
pub struct FairQueue<K, T> {
    max_serving: usize,
    max_waiting: usize,
    serving: HashSet<K>,
    /// In arrival order.
    waiting: Vec<(K, T)>,
    /// Each known peer's stamp: the tick of its last grant, or of when it was first seen if never served.
    /// Lower is more deserving. Ticks are unique, so stamps never tie.
    stamps: HashMap<K, u64>,
    /// The same stamps, oldest first: what [`HISTORY`] evicts from.
    by_stamp: BTreeMap<u64, K>,
    ticks: u64,
}

impl<K: Hash + Eq + Clone, T> FairQueue<K, T> {
    /// At most `max_serving` served at once (at least one) and `max_waiting` waiting.
    pub fn new(max_serving: usize, max_waiting: usize) -> Self {
        FairQueue {
            max_serving: max_serving.max(1),
            max_waiting,
            serving: HashSet::new(),
            waiting: Vec::new(),
            stamps: HashMap::new(),
            by_stamp: BTreeMap::new(),
            ticks: 0,
        }
    }

    /// Lower is more deserving: served (or, if never served, first seen) longer ago.
    fn rank(&self, peer: &K) -> u64 {
        self.stamps.get(peer).copied().unwrap_or(u64::MAX)
    }

    /// Stamps `peer` with a fresh tick (its old stamp, if any, replaced).
    fn stamp(&mut self, peer: &K) {
        let tick = self.ticks;
        self.ticks = self.ticks.saturating_add(1);
        if let Some(old) = self.stamps.insert(peer.clone(), tick) {
            self.by_stamp.remove(&old);
        }
        self.by_stamp.insert(tick, peer.clone());
    }

    /// A peer seen for the first time is ranked as if served now: behind everyone who waited longer.
    fn see(&mut self, peer: &K) {
        if self.stamps.contains_key(peer) {
            return;
        }
        self.stamp(peer);
        if self.stamps.len() > HISTORY {
            let evict = self
                .by_stamp
                .iter()
                .find(|(_, p)| !self.serving.contains(*p) && !self.waiting.iter().any(|(w, _)| w == *p))
                .map(|(t, p)| (*t, p.clone()));
            if let Some((tick, old)) = evict {
                self.by_stamp.remove(&tick);
                self.stamps.remove(&old);
            }
        }
    }

    fn grant(&mut self, peer: K) {
        self.stamp(&peer);
        self.serving.insert(peer);
    }

    /// A request `item` of `peer`.
    pub fn offer(&mut self, peer: K, item: T) -> Offer<K, T> {
        if self.serving.contains(&peer) || self.waiting.iter().any(|(p, _)| *p == peer) {
            return Offer::Refused(item);
        }
        self.see(&peer);
        if self.serving.len() < self.max_serving && self.waiting.is_empty() {
            self.grant(peer);
            return Offer::Serve(item);
        }
        if self.waiting.len() < self.max_waiting {
            self.waiting.push((peer, item));
            return Offer::Queued;
        }
        // Full: the waiting peer with the newest stamp gives way to a peer with an older one.
        let worst = (0..self.waiting.len()).max_by_key(|i| self.rank(&self.waiting[*i].0));
        match worst {
            Some(i) if self.rank(&peer) < self.rank(&self.waiting[i].0) => {
                let (out, out_item) = self.waiting.remove(i);
                self.waiting.push((peer, item));
                Offer::Displaced(out, out_item)
            }
            _ => Offer::Refused(item),
        }
    }

    /// `peer`'s request finished: its slot goes to the waiting peer with the oldest stamp, returned to run.
    pub fn done(&mut self, peer: &K) -> Option<(K, T)> {
        self.serving.remove(peer);
        if self.serving.len() >= self.max_serving {
            return None;
        }
        let best = (0..self.waiting.len()).min_by_key(|i| self.rank(&self.waiting[*i].0))?;
        let (next, item) = self.waiting.remove(best);
        self.grant(next.clone());
        Some((next, item))
    }

    /// A disconnected peer: its waiting request is returned (to drop). Its stamp is kept (bounded by
    /// [`HISTORY`]): forgetting it would let a reconnecting peer jump the queue.
    pub fn forget(&mut self, peer: &K) -> Option<T> {
        let at = self.waiting.iter().position(|(p, _)| p == peer)?;
        Some(self.waiting.remove(at).1)
    }

    /// Peers whose stamp is kept.
    pub fn known(&self) -> usize {
        self.stamps.len()
    }

    /// Requests being served.
    pub fn serving(&self) -> usize {
        self.serving.len()
    }

    /// Requests waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// A sync answer to compute off the loop: called with `true` to serve it, `false` to answer `Busy`.
pub type Job = Box<dyn FnOnce(bool) + Send>;

/// Runs [`Job`]s on blocking threads through a [`FairQueue`]: what the node's loop hands its granted
/// requests to. Cloning shares the queue.
#[derive(Clone)]
pub struct SyncServer<K> {
    queue: Arc<Mutex<FairQueue<K, Job>>>,
}

impl<K: Hash + Eq + Clone + Send + 'static> SyncServer<K> {
    /// [`MAX_SERVING`] slots, [`MAX_WAITING`] waiting.
    pub fn new() -> Self {
        SyncServer { queue: Arc::new(Mutex::new(FairQueue::new(MAX_SERVING, MAX_WAITING))) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FairQueue<K, Job>> {
        // A job panicking while the lock is held cannot leave the queue half-updated (no job runs under it).
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Serves `job` for `peer` now, later, or answers it `Busy` (see [`FairQueue::offer`]).
    pub fn submit(&self, peer: K, job: Job) {
        let offer = self.lock().offer(peer.clone(), job);
        match offer {
            Offer::Serve(job) => self.run(peer, job),
            Offer::Queued => {}
            Offer::Refused(job) | Offer::Displaced(_, job) => job(false),
        }
    }

    fn run(&self, peer: K, job: Job) {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            job(true);
            let next = this.lock().done(&peer);
            if let Some((peer, job)) = next {
                this.run(peer, job);
            }
        });
    }

    /// A disconnected peer: its waiting request is dropped unanswered (the peer is gone); its turn history
    /// is kept (see [`FairQueue::forget`]).
    pub fn forget(&self, peer: &K) {
        let _ = self.lock().forget(peer);
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> Default for SyncServer<K> {
    fn default() -> Self {
        Self::new()
    }
}

/// The job answering `req` from `store` as of `tip` through `respond`.
pub fn answer_job(store: Arc<Store>, tip: Height, req: crate::wire::Request, respond: net::Responder) -> Job {
    use crate::wire::{Request, Response, MAX_BLOCKS_PER_RESPONSE};
    Box::new(move |serve: bool| {
        if !serve {
            let _ = respond.send(crate::wire::encode(&Response::Busy));
            return;
        }
        let answer = match req {
            Request::GetBlocks { from, max } => {
                read_blocks(&store, from, tip, max.min(MAX_BLOCKS_PER_RESPONSE)).map(Response::Blocks)
            }
            Request::GetBlock { hash } => store.height_of(&hash).and_then(|h| match h {
                Some(h) if h <= tip => {
                    read_blocks(&store, h, h, 1).map(|mut b| Response::Block(b.pop().map(|(fb, _)| Box::new(fb))))
                }
                _ => Ok(Response::Block(None)),
            }),
        };
        match answer {
            Ok(answer) => {
                let _ = respond.send(crate::wire::encode(&answer));
            }
            // The loop meets the same store on its next write and stops there; the asker just times out.
            Err(e) => tracing::error!(error = %e, "cannot read blocks to serve"),
        }
    })
}

/// Reads committed blocks `from..` (at most `max`, none above `tip`) with their certificates, stopping
/// before the answer would exceed `budget` bytes (a first block always goes). `read(h)` returns the raw
/// stored block and certificate at `h`.
pub fn collect_blocks(
    mut read: impl FnMut(Height) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError>,
    from: Height,
    tip: Height,
    max: u32,
    budget: usize,
) -> Result<Vec<(FullBlock, CommitCertificate)>, StoreError> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut h = from.max(Height(1));
    while h <= tip && (out.len() as u32) < max {
        let Some((block, cert)) = read(h)? else { break };
        bytes = bytes.saturating_add(block.len() + cert.len());
        if bytes > budget && !out.is_empty() {
            break;
        }
        let fb: FullBlock = borsh::from_slice(&block).map_err(|source| StoreError::Undecodable {
            what: "block",
            height: Some(h),
            source,
        })?;
        let cert: CommitCertificate = borsh::from_slice(&cert).map_err(|source| StoreError::Undecodable {
            what: "certificate",
            height: Some(h),
            source,
        })?;
        out.push((fb, cert));
        h = h.next();
    }
    Ok(out)
}

/// [`collect_blocks`] over the store.
pub fn read_blocks(
    store: &Store,
    from: Height,
    tip: Height,
    max: u32,
) -> Result<Vec<(FullBlock, CommitCertificate)>, StoreError> {
    let read = |h| match (store.block(h)?, store.cert(h)?) {
        (Some(b), Some(c)) => Ok(Some((b, c))),
        _ => Ok(None),
    };
    collect_blocks(read, from, tip, max, RESPONSE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::{BlockId, GenesisHash, StateRoot};
    use std::time::Duration;

    #[test]
    fn a_peer_gets_its_burst_then_the_refill_rate_and_no_more() {
        let t0 = Instant::now();
        let mut lim = RequestLimiter::new(4, 2);
        let granted = (0..10).filter(|_| lim.check(&"a", t0) == Allowance::Granted).count();
        assert_eq!(granted, 4, "the burst");
        // Over 10 s of asking 100 times a second, 2 per second get through.
        let mut served = 0;
        for i in 1..=1000u64 {
            if lim.check(&"a", t0 + Duration::from_millis(10 * i)) == Allowance::Granted {
                served += 1;
            }
        }
        assert!((19..=21).contains(&served), "sustained rate: {served} in 10 s");
    }

    #[test]
    fn peers_have_separate_buckets_and_tokens_do_not_pile_up() {
        let t0 = Instant::now();
        let mut lim = RequestLimiter::new(2, 1);
        assert_eq!(lim.check(&"greedy", t0), Allowance::Granted);
        assert_eq!(lim.check(&"greedy", t0), Allowance::Granted);
        assert_ne!(lim.check(&"greedy", t0), Allowance::Granted);
        assert_eq!(lim.check(&"other", t0), Allowance::Granted, "another peer is not affected");
        // An hour idle refills to the burst, not to 3600.
        let later = t0 + Duration::from_secs(3600);
        let granted = (0..10).filter(|_| lim.check(&"greedy", later) == Allowance::Granted).count();
        assert_eq!(granted, 2);
        // Spent, then disconnected: pruning keeps the spent bucket and drops the refilled one.
        lim.prune(later);
        assert_eq!(lim.len(), 1);
        lim.prune(later + Duration::from_secs(2));
        assert!(lim.is_empty(), "refilled buckets are the same as new ones");
    }

    /// Reconnecting (the service prunes on every disconnect) does not refill a spent allowance.
    #[test]
    fn a_peer_that_reconnects_does_not_get_a_fresh_burst() {
        let t0 = Instant::now();
        let mut lim = RequestLimiter::new(4, 1);
        let mut granted = 0;
        for i in 0..100u64 {
            let now = t0 + Duration::from_millis(10 * i);
            if lim.check(&"a", now) == Allowance::Granted {
                granted += 1;
            }
            lim.prune(now);
        }
        assert_eq!(granted, 4, "one burst over 1 s of asking and reconnecting, not one per reconnect");
    }

    #[test]
    fn the_tracked_peers_are_bounded_by_dropping_the_least_recently_seen() {
        let t0 = Instant::now();
        let mut lim = RequestLimiter::new(2, 1);
        for i in 0..MAX_TRACKED as u64 + 10 {
            // Each spends its burst at a later instant, so none has refilled when the next one arrives.
            let now = t0 + Duration::from_micros(i);
            lim.check(&i, now);
            lim.check(&i, now);
        }
        assert_eq!(lim.len(), MAX_TRACKED);
        let now = t0 + Duration::from_micros(MAX_TRACKED as u64 + 10);
        assert_eq!(lim.check(&(MAX_TRACKED as u64 + 9), now), Allowance::Refused, "the newest is still tracked");
        assert_eq!(lim.check(&0, now), Allowance::Granted, "the oldest was dropped");
    }

    #[test]
    fn only_a_peer_that_keeps_asking_after_refusals_is_penalized() {
        let t0 = Instant::now();
        let mut lim = RequestLimiter::new(1, 1);
        assert_eq!(lim.check(&"a", t0), Allowance::Granted);
        let verdicts: Vec<Allowance> = (0..2 * REFUSALS_BEFORE_PENALTY).map(|_| lim.check(&"a", t0)).collect();
        let penalties = verdicts.iter().filter(|v| **v == Allowance::RefusedPenalize).count();
        assert_eq!(penalties, 2, "one penalty per {REFUSALS_BEFORE_PENALTY} refusals in a row");
        assert!(verdicts.iter().all(|v| *v != Allowance::Granted));
        // An honest asker: refused once, then waits for a token, never penalized.
        let mut lim = RequestLimiter::new(1, 1);
        let mut t = t0;
        for _ in 0..100 {
            let v = lim.check(&"b", t);
            assert_ne!(v, Allowance::RefusedPenalize);
            t += if v == Allowance::Granted { Duration::from_millis(10) } else { Duration::from_secs(1) };
        }
    }

    /// 50 greedy peers, each asking again the moment its answer is done (and retrying every refusal at
    /// once), against one honest peer that asks once and retries only when refused: the honest peer is
    /// served within one turn of the greedy ones.
    #[test]
    fn fifty_greedy_peers_cannot_keep_an_honest_peer_from_being_served() {
        const GREEDY: u32 = 50;
        const HONEST: u32 = 1_000;
        let mut q: FairQueue<u32, u32> = FairQueue::new(MAX_SERVING, MAX_WAITING);
        let mut running: std::collections::VecDeque<u32> = std::collections::VecDeque::new();
        let offer =
            |q: &mut FairQueue<u32, u32>, running: &mut std::collections::VecDeque<u32>, p: u32| match q.offer(p, p) {
                Offer::Serve(_) => {
                    running.push_back(p);
                    true
                }
                Offer::Queued | Offer::Displaced(..) => true,
                Offer::Refused(_) => false,
            };
        // The greedy peers come first and take every slot; then the honest one asks.
        for p in 0..GREEDY {
            assert!(offer(&mut q, &mut running, p));
        }
        assert_eq!((q.serving(), q.waiting()), (MAX_SERVING, GREEDY as usize - MAX_SERVING));
        let mut honest_in = offer(&mut q, &mut running, HONEST);
        // A second request of a peer already in is refused: one at a time per peer.
        assert_eq!(q.offer(0, 0), Offer::Refused(0));
        let mut answers = 0usize;
        let served_at = loop {
            assert!(answers < 10 * GREEDY as usize, "the honest peer was never served");
            let done = running.pop_front().expect("something is being served");
            answers += 1;
            if done == HONEST {
                break answers;
            }
            if let Some((next, _)) = q.done(&done) {
                running.push_back(next);
            }
            // The greedy peer asks again at once, before the honest one can retry.
            offer(&mut q, &mut running, done);
            if !honest_in {
                honest_in = offer(&mut q, &mut running, HONEST);
            }
        };
        assert!(served_at <= (GREEDY as usize) + 2 * MAX_SERVING, "served after {served_at} answers");
        assert!(q.serving() <= MAX_SERVING && q.waiting() <= MAX_WAITING);
    }

    #[test]
    fn a_full_queue_makes_room_for_a_peer_served_less_recently() {
        let mut q: FairQueue<u32, u32> = FairQueue::new(1, 2);
        assert_eq!(q.offer(1, 1), Offer::Serve(1));
        assert_eq!(q.offer(2, 2), Offer::Queued);
        assert_eq!(q.offer(3, 3), Offer::Queued);
        // A newcomer counts as served when first seen: later than everyone waiting, so it pushes no one out.
        assert_eq!(q.offer(4, 4), Offer::Refused(4));
        assert_eq!(q.done(&1), Some((2, 2)));
        assert_eq!(q.done(&2), Some((3, 3)));
        assert_eq!(q.offer(1, 1), Offer::Queued);
        assert_eq!(q.offer(2, 2), Offer::Queued);
        // 4 was first seen before 2 was last served: it displaces 2, but a brand-new peer displaces no one.
        assert_eq!(q.offer(4, 4), Offer::Displaced(2, 2));
        assert_eq!(q.offer(5, 5), Offer::Refused(5));
        // The slot goes to the peer served longest ago (1), then to 4.
        assert_eq!(q.done(&3), Some((1, 1)));
        assert_eq!(q.done(&1), Some((4, 4)));
        // A disconnected peer's waiting request is handed back, but its history is kept: 3, served before 5
        // was first seen, reconnects and still goes before 5 (a reset history would put it level with 5).
        assert_eq!(q.offer(3, 3), Offer::Queued);
        assert_eq!(q.forget(&3), Some(3));
        assert_eq!(q.waiting(), 0);
        assert_eq!(q.offer(5, 5), Offer::Queued);
        assert_eq!(q.offer(3, 3), Offer::Queued);
        assert_eq!(q.done(&4), Some((3, 3)));
        assert_eq!(q.done(&3), Some((5, 5)));
    }

    /// An attacker brings a stream of fresh peer ids (three per answer, each disconnecting once served) and
    /// a pool of ids that reconnect after every answer; an honest peer that asks again after each answer
    /// (and after each refusal) keeps being served within one turn of the queue, and the history stays
    /// bounded.
    #[test]
    fn fresh_and_reconnecting_ids_cannot_starve_a_peer_served_before() {
        const HONEST: u64 = u64::MAX;
        const POOL: u64 = 68;
        let mut q: FairQueue<u64, u64> = FairQueue::new(MAX_SERVING, MAX_WAITING);
        let mut running: std::collections::VecDeque<u64> = std::collections::VecDeque::new();
        let mut fresh = POOL;
        let offer =
            |q: &mut FairQueue<u64, u64>, running: &mut std::collections::VecDeque<u64>, p: u64| match q.offer(p, p) {
                Offer::Serve(_) => {
                    running.push_back(p);
                    true
                }
                Offer::Queued | Offer::Displaced(..) => true,
                Offer::Refused(_) => false,
            };
        // The honest peer is served once first; then the pool fills every slot.
        assert!(offer(&mut q, &mut running, HONEST));
        for p in 0..POOL {
            offer(&mut q, &mut running, p);
        }
        let mut honest_in = true;
        let (mut since, mut worst_gap, mut honest_served) = (0usize, 0usize, 0usize);
        for _ in 0..(3 * HISTORY) {
            let done = running.pop_front().expect("something is being served");
            if let Some((next, _)) = q.done(&done) {
                running.push_back(next);
            }
            since += 1;
            if done == HONEST {
                honest_served += 1;
                worst_gap = worst_gap.max(since);
                since = 0;
                honest_in = false;
            } else {
                // The attacker's peer disconnects and reconnects (pool) or is replaced by new ids.
                let _ = q.forget(&done);
                if done < POOL {
                    offer(&mut q, &mut running, done);
                }
            }
            for _ in 0..3 {
                offer(&mut q, &mut running, fresh);
                fresh += 1;
            }
            if !honest_in {
                honest_in = offer(&mut q, &mut running, HONEST);
            }
        }
        let bound = MAX_WAITING + 2 * MAX_SERVING;
        assert!(worst_gap <= bound, "the honest peer waited {worst_gap} answers (bound {bound})");
        assert!(honest_served >= 3 * HISTORY / bound, "served only {honest_served} times");
        assert!(q.known() <= HISTORY, "history grew to {}", q.known());
        assert!(q.serving() <= MAX_SERVING && q.waiting() <= MAX_WAITING);
    }

    fn stored(h: Height) -> (Vec<u8>, Vec<u8>) {
        let header = ledger::BlockHeader {
            genesis_hash: GenesisHash(primitives::Hash32([0; 32])),
            height: h,
            prev_hash: BlockId(primitives::Hash32([0; 32])),
            time_ms: 0,
            proposer: primitives::ValidatorIndex(0),
            btc_anchor: ledger::BtcAnchor::default(),
            tx_root: primitives::Hash32([0; 32]),
            state_root: StateRoot(primitives::Hash32([0; 32])),
            last_commit_hash: primitives::Hash32([0; 32]),
        };
        let fb = FullBlock { block: ledger::Block { header, txs: Vec::new() }, last_commit: None };
        let cert = CommitCertificate {
            height: h,
            round: primitives::Round(0),
            value: BlockId(primitives::Hash32([0; 32])),
            signatures: Vec::new(),
        };
        (crate::wire::encode(&fb), crate::wire::encode(&cert))
    }

    #[test]
    fn an_answer_stops_at_the_tip_the_count_and_the_byte_budget() {
        let read = |h: Height| Ok(Some(stored(h)));
        let all = collect_blocks(read, Height(0), Height(10), 64, usize::MAX).expect("read");
        assert_eq!(all.len(), 10, "height 0 is not served and nothing above the tip");
        assert_eq!(all[0].0.height(), Height(1));
        let few = collect_blocks(read, Height(3), Height(10), 4, usize::MAX).expect("read");
        assert_eq!(few.iter().map(|(b, _)| b.height().get()).collect::<Vec<_>>(), vec![3, 4, 5, 6]);
        let one = stored(Height(1));
        let per = one.0.len() + one.1.len();
        let capped = collect_blocks(read, Height(1), Height(10), 64, 3 * per).expect("read");
        assert_eq!(capped.len(), 3);
        // A first block over the budget still goes, alone.
        let first = collect_blocks(read, Height(1), Height(10), 64, 1).expect("read");
        assert_eq!(first.len(), 1);
        // A gap ends the answer.
        let gap = |h: Height| Ok(if h == Height(4) { None } else { Some(stored(h)) });
        assert_eq!(collect_blocks(gap, Height(1), Height(10), 64, usize::MAX).expect("read").len(), 3);
        // Garbage in the store is an error, not a panic.
        let bad = |_| Ok(Some((vec![1, 2, 3], vec![])));
        assert!(matches!(
            collect_blocks(bad, Height(1), Height(10), 64, usize::MAX),
            Err(StoreError::Undecodable { .. })
        ));
    }
}
