//! Serving sync requests (`GetBlocks`, `GetBlock`) to peers without letting them slow consensus.
//!
//! Why: a request costs the asker a few bytes and the server up to a response of many megabytes read from
//! disk and decoded. Answered on the consensus loop without a limit, one peer asking in a tight loop delays
//! every vote this node handles. So each peer has a token bucket ([`RequestLimiter`]): over it, the peer
//! gets [`crate::wire::Response::Busy`] and nothing is read; a peer that keeps asking after being refused is
//! scored down. A granted `GetBlocks` is read from the store (committed blocks never change) on a blocking
//! thread, never on the loop, at most [`MAX_SERVING`] at once, and capped at [`RESPONSE_BYTES`].
//!
//! Invariant owned here: per peer, at most `burst + rate * t` requests are served in any span `t`, and one
//! answer never carries more than [`RESPONSE_BYTES`] of blocks (or a single block, which always fits the
//! transport's cap).

use crate::chain::FullBlock;
use crate::storage::{Store, StoreError};
use consensus::CommitCertificate;
use primitives::Height;
use std::collections::HashMap;
use std::hash::Hash;
use tokio::time::Instant;

/// Bytes of blocks one `GetBlocks` answer carries at most (beyond a first block, which always goes).
pub const RESPONSE_BYTES: usize = 8 * net::MIB;

/// Sync answers being read at once, from all peers together (each holds a blocking thread).
pub const MAX_SERVING: usize = 4;

/// Requests a peer may make in a burst.
pub const BURST: u32 = 16;

/// Requests a peer may make per second, sustained. An honest node asks one at a time and waits for the
/// answer and for committing it, far below this.
pub const PER_SEC: u32 = 8;

/// Refusals in a row after which a peer is scored down (once per this many): an honest node that was
/// refused waits for the next tip announcement before asking again, so it never gets near this.
pub const REFUSALS_BEFORE_PENALTY: u32 = 8;

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

    /// Forgets a peer (disconnected), so the map only holds connected peers.
    pub fn forget(&mut self, peer: &K) {
        self.buckets.remove(peer);
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
        let fb: FullBlock = borsh::from_slice(&block)
            .map_err(|e| StoreError::Corrupt { what: "block", reason: format!("height {h}: {e}") })?;
        let cert: CommitCertificate = borsh::from_slice(&cert)
            .map_err(|e| StoreError::Corrupt { what: "certificate", reason: format!("height {h}: {e}") })?;
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
        lim.forget(&"greedy");
        assert_eq!(lim.len(), 1);
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

    fn stored(h: Height) -> (Vec<u8>, Vec<u8>) {
        let header = ledger::BlockHeader {
            genesis_hash: primitives::Hash32([0; 32]),
            height: h,
            prev_hash: primitives::Hash32([0; 32]),
            time_ms: 0,
            proposer: primitives::ValidatorIndex(0),
            btc_anchor: ledger::BtcAnchor::default(),
            tx_root: primitives::Hash32([0; 32]),
            state_root: primitives::Hash32([0; 32]),
            last_commit_hash: primitives::Hash32([0; 32]),
        };
        let fb = FullBlock { block: ledger::Block { header, txs: Vec::new() }, last_commit: None };
        let cert = CommitCertificate {
            height: h,
            round: primitives::Round(0),
            value: primitives::Hash32([0; 32]),
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
        assert!(matches!(collect_blocks(bad, Height(1), Height(10), 64, usize::MAX), Err(StoreError::Corrupt { .. })));
    }
}
