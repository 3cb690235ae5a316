//! Pending peg-in claims (`claimpegin`): which ones this node keeps for its bitcoind follower to check and
//! for proposers to mint.
//!
//! Why its own admission rule: a claim costs its sender nothing, so one shared list that keeps whatever
//! came first lets any peer fill it with bogus claims and refuse the real ones. The rule here:
//! - claims submitted through this node's own RPC have their own capacity ([`ClaimLimits::local`]); gossip
//!   can never crowd them out, and they are never evicted;
//! - each peer holds at most [`ClaimLimits::per_peer`] unverified claims; a further one from it evicts
//!   its own oldest unverified one, so a flooding peer only churns its own slots;
//! - one outpoint holds at most [`ClaimLimits::per_outpoint`] claims (another recipient or block); a further
//!   one evicts the oldest unverified gossip claim for that outpoint, or is refused if it came by gossip
//!   (our own RPC's claims are only bounded by their own capacity);
//! - when gossip's capacity ([`ClaimLimits::gossip`]) is full, the oldest unverified gossip claim is
//!   evicted; claims our bitcoind verified are never evicted (if all are verified, the newcomer is refused);
//! - a claim our bitcoind rejected is dropped at once ([`ClaimStore::apply_verdicts`]), and the same claim
//!   from gossip is refused while the follower remembers the rejection.
//!
//! Invariant owned here: the store never holds more than `local + gossip` claims, and nothing gossip sends
//! removes a local or a verified claim.

use crate::pegin::PegClaim;
use net::PeerId;
use primitives::Height;
use std::collections::{HashMap, HashSet};

/// Where a claim came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimSource {
    /// This node's own RPC (an operator or wallet of this node).
    Local,
    /// Gossip, forwarded to us by this peer.
    Peer(PeerId),
}

/// Capacities of the claim store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimLimits {
    /// Claims submitted through our RPC.
    pub local: usize,
    /// Claims received by gossip.
    pub gossip: usize,
    /// Unverified gossip claims attributed to one peer.
    pub per_peer: usize,
    /// Claims for one outpoint (different recipients or blocks), whatever their source.
    pub per_outpoint: usize,
}

impl Default for ClaimLimits {
    fn default() -> Self {
        ClaimLimits { local: 256, gossip: crate::pegin::MAX_PENDING_CLAIMS, per_peer: 32, per_outpoint: 2 }
    }
}

/// Why a claim was not kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// This exact claim is pending already.
    #[error("a claim for this deposit is already pending")]
    AlreadyPending,
    /// Our bitcoind rejected this exact claim recently.
    #[error("our bitcoind rejected this claim")]
    Rejected,
    /// The outpoint has as many claims as it may, none of them evictable.
    #[error("{0} claims for this outpoint are pending")]
    OutpointFull(usize),
    /// No room, and nothing evictable.
    #[error("{0} claims pending; try again later")]
    Full(usize),
}

#[derive(Clone, Debug)]
struct Entry {
    source: ClaimSource,
    /// Tip height when it was added.
    added: Height,
    /// Admission order (oldest first when evicting).
    seq: u64,
    /// Our bitcoind confirmed it.
    verified: bool,
}

impl Entry {
    fn evictable(&self) -> bool {
        !self.verified && matches!(self.source, ClaimSource::Peer(_))
    }
}

/// What an accepted claim did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Added {
    /// Claims evicted to make room (unverified gossip claims only).
    pub evicted: Vec<PegClaim>,
}

/// The pending claims; see the module docs.
#[derive(Debug, Default)]
pub struct ClaimStore {
    limits: ClaimLimits,
    entries: HashMap<PegClaim, Entry>,
    seq: u64,
}

impl ClaimStore {
    /// An empty store with these capacities.
    pub fn new(limits: ClaimLimits) -> Self {
        ClaimStore { limits, entries: HashMap::new(), seq: 0 }
    }

    /// Pending claims.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether this exact claim is pending.
    pub fn contains(&self, claim: &PegClaim) -> bool {
        self.entries.contains_key(claim)
    }

    /// The pending claims in the order the follower should check them: ours first, then oldest first.
    pub fn list(&self) -> Vec<PegClaim> {
        let mut all: Vec<(&PegClaim, &Entry)> = self.entries.iter().collect();
        all.sort_by_key(|(_, e)| (matches!(e.source, ClaimSource::Peer(_)), e.seq));
        all.into_iter().map(|(c, _)| c.clone()).collect()
    }

    /// Admits `claim` from `source` at tip height `tip`. `rejected`: our bitcoind rejected this exact
    /// claim recently (only gossip is refused for it; our own RPC may ask again, and it is checked again).
    pub fn add(
        &mut self,
        claim: PegClaim,
        source: ClaimSource,
        tip: Height,
        rejected: bool,
    ) -> Result<Added, ClaimError> {
        if let Some(e) = self.entries.get(&claim) {
            // Our own RPC submitting a claim gossip brought: it becomes ours (never evicted) if there is room.
            if source == ClaimSource::Local && e.source != ClaimSource::Local && self.count_local() < self.limits.local
            {
                if let Some(e) = self.entries.get_mut(&claim) {
                    e.source = ClaimSource::Local;
                }
                return Ok(Added { evicted: Vec::new() });
            }
            return Err(ClaimError::AlreadyPending);
        }
        // Every eviction is planned first, so a refused claim evicts nothing.
        let mut victims: Vec<PegClaim> = Vec::new();
        match source {
            ClaimSource::Local => {
                if self.count_local() >= self.limits.local {
                    return Err(ClaimError::Full(self.count_local()));
                }
            }
            ClaimSource::Peer(peer) => {
                if rejected {
                    return Err(ClaimError::Rejected);
                }
                let from_peer = |e: &Entry| e.evictable() && e.source == ClaimSource::Peer(peer);
                if self.entries.values().filter(|e| from_peer(e)).count() >= self.limits.per_peer {
                    let Some(c) = self.oldest(&victims, |_, e| from_peer(e)) else {
                        return Err(ClaimError::Full(self.count_gossip()));
                    };
                    victims.push(c);
                }
            }
        }
        let outpoint = claim.outpoint;
        let same_outpoint = self.entries.keys().filter(|c| c.outpoint == outpoint && !victims.contains(c)).count();
        if same_outpoint >= self.limits.per_outpoint {
            match self.oldest(&victims, |c, e| c.outpoint == outpoint && e.evictable()) {
                Some(c) => victims.push(c),
                // Our own RPC's claims are bounded by their own capacity: a wrong claim of ours (another
                // recipient, a block our bitcoind does not know) must not keep our right one out.
                None if source == ClaimSource::Local => {}
                None => return Err(ClaimError::OutpointFull(same_outpoint)),
            }
        }
        if matches!(source, ClaimSource::Peer(_)) && self.count_gossip() - victims.len() >= self.limits.gossip {
            let Some(c) = self.oldest(&victims, |_, e| e.evictable()) else {
                return Err(ClaimError::Full(self.count_gossip()));
            };
            victims.push(c);
        }
        for v in &victims {
            self.entries.remove(v);
        }
        self.seq += 1;
        self.entries.insert(claim, Entry { source, added: tip, seq: self.seq, verified: false });
        Ok(Added { evicted: victims })
    }

    /// Marks what our bitcoind confirmed (`verified`; a claim no longer in it, after a reorg, is unverified
    /// again) and drops what it rejected. Returns whether anything changed.
    pub fn apply_verdicts(&mut self, verified: &HashSet<PegClaim>, rejected: &HashSet<PegClaim>) -> bool {
        let before = self.entries.len();
        self.entries.retain(|c, _| !rejected.contains(c));
        let mut changed = self.entries.len() != before;
        for (c, e) in self.entries.iter_mut() {
            let now = verified.contains(c);
            changed |= e.verified != now;
            e.verified = now;
        }
        changed
    }

    /// Keeps only the claims for which `keep(claim, height it was added at)` holds (a commit drops minted
    /// claims and those pending too long). Returns whether anything was dropped.
    pub fn retain(&mut self, mut keep: impl FnMut(&PegClaim, Height) -> bool) -> bool {
        let before = self.entries.len();
        self.entries.retain(|c, e| keep(c, e.added));
        self.entries.len() != before
    }

    fn count_local(&self) -> usize {
        self.entries.values().filter(|e| e.source == ClaimSource::Local).count()
    }

    fn count_gossip(&self) -> usize {
        self.entries.len() - self.count_local()
    }

    /// The oldest claim `which` selects that is not already in `skip`.
    fn oldest(&self, skip: &[PegClaim], which: impl Fn(&PegClaim, &Entry) -> bool) -> Option<PegClaim> {
        self.entries
            .iter()
            .filter(|(c, e)| which(c, e) && !skip.contains(c))
            .min_by_key(|(_, e)| e.seq)
            .map(|(c, _)| c.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash as _;
    use ledger::BtcOutPoint;
    use primitives::{AccountId, Hash32};

    fn claim(n: u32, recipient: u8) -> PegClaim {
        PegClaim {
            outpoint: BtcOutPoint { txid: bitcoin::Txid::from_byte_array([(n % 251) as u8; 32]), vout: n },
            recipient: AccountId(Hash32([recipient; 32])),
            btc_block: bitcoin::BlockHash::from_byte_array([1; 32]),
        }
    }

    fn small() -> ClaimLimits {
        ClaimLimits { local: 4, gossip: 8, per_peer: 3, per_outpoint: 2 }
    }

    const TIP: Height = Height(5);

    #[test]
    fn one_peer_flooding_only_churns_its_own_slots() {
        let mut store = ClaimStore::new(small());
        let (honest, attacker) = (PeerId::random(), PeerId::random());
        store.add(claim(1, 1), ClaimSource::Peer(honest), TIP, false).expect("kept");
        for n in 100..1100 {
            store.add(claim(n, 9), ClaimSource::Peer(attacker), TIP, false).expect("its own oldest is evicted");
        }
        assert!(store.contains(&claim(1, 1)), "the honest peer's claim stays");
        assert_eq!(store.len(), 1 + 3, "the attacker holds its quota, no more");
        assert!(store.contains(&claim(1099, 9)) && !store.contains(&claim(1096, 9)));
    }

    #[test]
    fn gossip_never_crowds_out_local_claims_and_local_has_its_own_room() {
        let mut store = ClaimStore::new(small());
        store.add(claim(1, 1), ClaimSource::Local, TIP, false).expect("kept");
        // Many peers (sybils) fill gossip's capacity many times over.
        for n in 100..400 {
            let _ = store.add(claim(n, 9), ClaimSource::Peer(PeerId::random()), TIP, false);
        }
        assert!(store.contains(&claim(1, 1)));
        assert_eq!(store.len(), 1 + 8, "gossip is capped at its capacity");
        // Local submissions still find room while gossip is full.
        for n in 2..=4 {
            store.add(claim(n, 1), ClaimSource::Local, TIP, false).expect("reserved room");
        }
        assert_eq!(store.add(claim(5, 1), ClaimSource::Local, TIP, false), Err(ClaimError::Full(4)));
        assert_eq!(store.len(), 4 + 8);
    }

    #[test]
    fn when_full_the_oldest_unverified_gossip_claim_goes_never_a_verified_one() {
        let mut store = ClaimStore::new(ClaimLimits { per_peer: 100, ..small() });
        let peer = PeerId::random();
        for n in 0..8 {
            store.add(claim(n, 1), ClaimSource::Peer(peer), TIP, false).expect("room");
        }
        // Claims 0 and 1 (the oldest) are verified by our bitcoind.
        let verified: HashSet<PegClaim> = [claim(0, 1), claim(1, 1)].into();
        assert!(store.apply_verdicts(&verified, &HashSet::new()));
        let added = store.add(claim(8, 1), ClaimSource::Peer(PeerId::random()), TIP, false).expect("evicts");
        assert_eq!(added.evicted, vec![claim(2, 1)], "the oldest unverified one");
        assert!(store.contains(&claim(0, 1)) && store.contains(&claim(1, 1)));
        // All verified: nothing evictable, the newcomer is refused.
        let all: HashSet<PegClaim> = store.list().into_iter().collect();
        store.apply_verdicts(&all, &HashSet::new());
        assert_eq!(store.add(claim(9, 1), ClaimSource::Peer(peer), TIP, false), Err(ClaimError::Full(8)));
    }

    /// The global bound against Sybil peer ids (one claim each, many ids): the per-peer bound does nothing
    /// then, but the flood only churns unverified gossip slots; a verified claim and our RPC's room stay.
    #[test]
    fn a_sybil_flood_keeps_room_for_rpc_claims_and_never_evicts_verified_ones() {
        let mut store = ClaimStore::new(small());
        store.add(claim(1, 1), ClaimSource::Peer(PeerId::random()), TIP, false).expect("kept");
        store.apply_verdicts(&[claim(1, 1)].into(), &HashSet::new());
        for n in 100..1100 {
            store.add(claim(n, 9), ClaimSource::Peer(PeerId::random()), TIP, false).expect("evicts bogus ones only");
        }
        assert!(store.contains(&claim(1, 1)), "the verified claim survives");
        assert_eq!(store.len(), 8, "gossip stays at its capacity");
        for n in 2..=5 {
            store.add(claim(n, 1), ClaimSource::Local, TIP, false).expect("our RPC's own room");
        }
        assert_eq!(store.len(), 4 + 8);
        // A real claim arriving by gossip during the flood still gets in (evicting the oldest bogus one).
        let added = store.add(claim(6, 1), ClaimSource::Peer(PeerId::random()), TIP, false).expect("room");
        assert_eq!(added.evicted.len(), 1);
        assert!(store.contains(&claim(6, 1)));
    }

    #[test]
    fn a_rejected_claim_is_dropped_at_once_and_refused_from_gossip() {
        let mut store = ClaimStore::new(small());
        let peer = PeerId::random();
        store.add(claim(1, 1), ClaimSource::Peer(peer), TIP, false).expect("kept");
        store.add(claim(2, 1), ClaimSource::Local, TIP, false).expect("kept");
        let rejected: HashSet<PegClaim> = [claim(1, 1), claim(2, 1)].into();
        assert!(store.apply_verdicts(&HashSet::new(), &rejected));
        assert!(store.is_empty(), "both dropped, not kept for the TTL");
        assert_eq!(store.add(claim(1, 1), ClaimSource::Peer(peer), TIP, true), Err(ClaimError::Rejected));
        // Our own RPC may ask again (the bitcoind may have caught up); it is checked again.
        assert!(store.add(claim(1, 1), ClaimSource::Local, TIP, true).is_ok());
    }

    #[test]
    fn one_outpoint_takes_at_most_two_slots_and_a_duplicate_is_one_entry() {
        let mut store = ClaimStore::new(ClaimLimits { per_peer: 100, ..small() });
        let peer = PeerId::random();
        store.add(claim(1, 1), ClaimSource::Peer(peer), TIP, false).expect("kept");
        assert_eq!(
            store.add(claim(1, 1), ClaimSource::Peer(PeerId::random()), TIP, false),
            Err(ClaimError::AlreadyPending)
        );
        store.add(claim(1, 2), ClaimSource::Peer(peer), TIP, false).expect("a second recipient");
        let added = store.add(claim(1, 3), ClaimSource::Peer(peer), TIP, false).expect("evicts the oldest variant");
        assert_eq!(added.evicted, vec![claim(1, 1)]);
        assert_eq!(store.len(), 2);
        // Verified and local variants are never evicted for another variant.
        store.apply_verdicts(&[claim(1, 2)].into(), &HashSet::new());
        store.add(claim(1, 4), ClaimSource::Local, TIP, false).expect("evicts the unverified gossip variant");
        assert!(store.contains(&claim(1, 2)) && store.contains(&claim(1, 4)) && !store.contains(&claim(1, 3)));
        assert_eq!(store.add(claim(1, 5), ClaimSource::Peer(peer), TIP, false), Err(ClaimError::OutpointFull(2)));
        // Our own RPC is not refused by its own earlier (perhaps wrong) claims for the outpoint.
        store.add(claim(1, 6), ClaimSource::Local, TIP, false).expect("local room");
        assert_eq!(store.add(claim(1, 7), ClaimSource::Peer(peer), TIP, false), Err(ClaimError::OutpointFull(3)));
    }

    #[test]
    fn a_refused_claim_evicts_nothing() {
        let mut store = ClaimStore::new(ClaimLimits { per_peer: 1, ..small() });
        let (peer, other) = (PeerId::random(), PeerId::random());
        store.add(claim(7, 1), ClaimSource::Peer(peer), TIP, false).expect("kept");
        store.add(claim(1, 1), ClaimSource::Local, TIP, false).expect("kept");
        store.add(claim(1, 2), ClaimSource::Peer(other), TIP, false).expect("kept");
        store.apply_verdicts(&[claim(1, 2)].into(), &HashSet::new());
        // The outpoint is full of unevictable claims: refused, and the peer's earlier claim stays.
        assert_eq!(store.add(claim(1, 3), ClaimSource::Peer(peer), TIP, false), Err(ClaimError::OutpointFull(2)));
        assert!(store.contains(&claim(7, 1)));
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn our_rpc_adopts_a_claim_gossip_brought_so_it_can_no_longer_be_evicted() {
        let mut store = ClaimStore::new(ClaimLimits { gossip: 1, ..small() });
        store.add(claim(1, 1), ClaimSource::Peer(PeerId::random()), TIP, false).expect("kept");
        store.add(claim(1, 1), ClaimSource::Local, TIP, false).expect("adopted");
        assert_eq!(store.list(), vec![claim(1, 1)]);
        // Gossip's single slot is free again and a newcomer takes it without evicting ours.
        let added = store.add(claim(2, 1), ClaimSource::Peer(PeerId::random()), TIP, false).expect("room");
        assert!(added.evicted.is_empty());
        assert_eq!(store.list(), vec![claim(1, 1), claim(2, 1)], "ours first, then gossip");
    }

    #[test]
    fn retain_drops_by_age_or_state() {
        let mut store = ClaimStore::new(small());
        store.add(claim(1, 1), ClaimSource::Local, Height(1), false).expect("kept");
        store.add(claim(2, 1), ClaimSource::Local, Height(9), false).expect("kept");
        assert!(store.retain(|_, added| added.get() >= 5));
        assert_eq!(store.list(), vec![claim(2, 1)]);
        assert!(!store.retain(|_, _| true));
    }
}
