//! The blocks proposed for the height being decided (and the next), kept so the node can judge a
//! proposal, commit the decided block and serve it to peers that missed it.
//!
//! Why its own admission rule: a proposal carries a whole block, and a Byzantine validator can sign as many
//! as it likes. One shared cap lets it fill the store with junk so the honest proposer's block is not kept,
//! and the chain stops (the core then waits for a block it never gets). So gossip is admitted per slot
//! `(height, round, proposer)`: only for the height being decided or the next, only for rounds at most
//! [`ROUND_LOOKAHEAD`] above ours, only from the proposer consensus expects for that `(height, round)`, and
//! at most [`PER_SLOT`] distinct blocks per slot (two: an equivocation needs two to be proven). A flood from
//! one validator can then only fill its own slots; the honest proposer's slot is its own. Blocks of a height
//! are dropped when it commits.
//!
//! A long stall (rounds climbing for hours) must not grow the store with the round either: only rounds
//! from [`ROUND_KEEP_BEHIND`] below ours are kept ([`ProposalStore::prune_rounds`], run on every admission):
//! older slots and their blocks go, except the values consensus still needs (its locked and valid values,
//! a decided value), which the caller names. Our own proposals (kept without a slot) are bounded by count,
//! [`MAX_UNSLOTTED`].
//!
//! Invariant owned here: what gossip can make this store hold is bounded by
//! `PER_SLOT * (ROUND_KEEP_BEHIND + ROUND_LOOKAHEAD + 1)` blocks for the height being decided (plus
//! [`MAX_UNSLOTTED`] of our own and the values named to keep) and
//! `PER_SLOT * (ROUND_LOOKAHEAD + 1)` for the next, whoever sends what and however long the height stalls.

use crate::chain::FullBlock;
use primitives::{BlockId, Height, Round, ValidatorIndex};
use std::collections::HashMap;

/// Rounds above our current one whose proposals are kept (messages of a round we have not reached yet
/// arrive when we lag a little; proposers re-send theirs, so later ones come again).
pub const ROUND_LOOKAHEAD: u32 = 8;

/// Rounds below our current one whose proposals are kept (a late proposal of a round just left can still
/// complete a polka others saw; values older than this that matter are the locked and valid ones, which the
/// caller keeps by name).
pub const ROUND_KEEP_BEHIND: u32 = 4;

/// Blocks kept without a slot (our own proposals, decided blocks), at most: the latest ones.
pub const MAX_UNSLOTTED: usize = 8;

/// Distinct blocks kept per `(height, round, proposer)`: one, and a second as equivocation evidence.
pub const PER_SLOT: usize = 2;

/// Who proposed what, where: the key of the admission rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The height the proposal is for.
    pub height: Height,
    /// Its round.
    pub round: Round,
    /// The validator that signed it.
    pub proposer: ValidatorIndex,
}

/// Where consensus is: the height being decided and its current round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The height being decided (tip + 1).
    pub height: Height,
    /// Our round at that height.
    pub round: Round,
}

impl Window {
    /// The lowest round kept at `height`.
    fn min_round(&self, height: Height) -> u32 {
        if height == self.height {
            self.round.get().saturating_sub(ROUND_KEEP_BEHIND)
        } else {
            0
        }
    }

    /// The highest round kept at `height` (`None`: the height is not kept at all).
    fn max_round(&self, height: Height) -> Option<u32> {
        if height == self.height {
            Some(self.round.get().saturating_add(ROUND_LOOKAHEAD))
        } else if height == self.height.next() {
            Some(ROUND_LOOKAHEAD)
        } else {
            None
        }
    }
}

/// Why a gossiped proposal was not kept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposalRefusal {
    /// Not for the height being decided or the next one.
    #[error("proposal for height {height} outside the window {current}..={current}+1")]
    OutsideHeights {
        /// The proposal's height.
        height: Height,
        /// The height being decided.
        current: Height,
    },
    /// Too many rounds behind ours.
    #[error("proposal for round {round} below round {min} at height {height}")]
    RoundTooOld {
        /// The proposal's height.
        height: Height,
        /// The proposal's round.
        round: Round,
        /// The lowest round kept at that height now.
        min: u32,
    },
    /// Too many rounds ahead of ours.
    #[error("proposal for round {round} beyond round {max} at height {height}")]
    RoundTooFar {
        /// The proposal's height.
        height: Height,
        /// The proposal's round.
        round: Round,
        /// The highest round kept at that height now.
        max: u32,
    },
    /// Signed by a validator that is not the proposer of that `(height, round)`.
    #[error("proposal by validator {proposer} for height {height} round {round}, whose proposer is {expected}")]
    NotProposer {
        /// The proposal's height.
        height: Height,
        /// The proposal's round.
        round: Round,
        /// Who signed it.
        proposer: ValidatorIndex,
        /// Who consensus expects.
        expected: ValidatorIndex,
    },
    /// The block is not the proposal's value, or not at its height.
    #[error("block {block} at height {block_height} is not the proposed value {value} at height {height}")]
    BlockMismatch {
        /// The proposal's value.
        value: BlockId,
        /// The proposal's height.
        height: Height,
        /// The block's hash.
        block: BlockId,
        /// The block's height.
        block_height: Height,
    },
    /// The proposer already has [`PER_SLOT`] distinct blocks for this `(height, round)`.
    #[error("validator {} already proposed {PER_SLOT} blocks for height {} round {}", .0.proposer, .0.height, .0.round)]
    SlotFull(Slot),
}

impl ProposalRefusal {
    /// Whether the sender provably misbehaves (signed for a slot that is not its own, or a block that
    /// does not match), rather than being early, late, or one equivocation too many.
    pub fn is_forged(&self) -> bool {
        matches!(self, Self::NotProposer { .. } | Self::BlockMismatch { .. })
    }
}

/// What an admitted proposal added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admitted {
    /// A block not held before for this slot.
    New,
    /// This slot already held this block (a re-send).
    Known,
}

/// Proposed blocks by hash, with the slots gossip filled.
#[derive(Debug, Default)]
pub struct ProposalStore {
    blocks: HashMap<BlockId, FullBlock>,
    slots: HashMap<Slot, Vec<BlockId>>,
    /// Blocks kept without a slot (ours, decided ones), oldest first, at most [`MAX_UNSLOTTED`].
    unslotted: std::collections::VecDeque<BlockId>,
}

impl ProposalStore {
    /// Admits a gossiped proposal of `value` for `slot`, carrying `block`, whose `(height, round)` consensus
    /// expects from `expected`; see the module docs for the rule.
    pub fn admit(
        &mut self,
        window: Window,
        expected: ValidatorIndex,
        slot: Slot,
        value: BlockId,
        block: FullBlock,
    ) -> Result<Admitted, ProposalRefusal> {
        let Some(max) = window.max_round(slot.height) else {
            return Err(ProposalRefusal::OutsideHeights { height: slot.height, current: window.height });
        };
        if slot.round.get() > max {
            return Err(ProposalRefusal::RoundTooFar { height: slot.height, round: slot.round, max });
        }
        let min = window.min_round(slot.height);
        if slot.round.get() < min {
            return Err(ProposalRefusal::RoundTooOld { height: slot.height, round: slot.round, min });
        }
        if slot.proposer != expected {
            return Err(ProposalRefusal::NotProposer {
                height: slot.height,
                round: slot.round,
                proposer: slot.proposer,
                expected,
            });
        }
        let hash = block.hash();
        if hash != value || block.height() != slot.height {
            return Err(ProposalRefusal::BlockMismatch {
                value,
                height: slot.height,
                block: hash,
                block_height: block.height(),
            });
        }
        let held = self.slots.entry(slot).or_default();
        if held.contains(&value) {
            return Ok(Admitted::Known);
        }
        if held.len() >= PER_SLOT {
            return Err(ProposalRefusal::SlotFull(slot));
        }
        held.push(value);
        self.blocks.entry(value).or_insert(block);
        Ok(Admitted::New)
    }

    /// Keeps a block that needs no admission: our own proposal, or the block a certificate decided.
    /// Dropped, like every other, when its height commits.
    pub fn insert(&mut self, hash: BlockId, block: FullBlock) {
        self.unslotted.retain(|h| *h != hash);
        self.unslotted.push_back(hash);
        self.blocks.insert(hash, block);
        while self.unslotted.len() > MAX_UNSLOTTED {
            let Some(old) = self.unslotted.pop_front() else { break };
            if !self.slots.values().any(|held| held.contains(&old)) {
                self.blocks.remove(&old);
            }
        }
    }

    /// Forgets the slots of the height being decided more than [`ROUND_KEEP_BEHIND`] rounds below ours and
    /// the blocks only they held, except `keep` (the values consensus still needs: locked, valid, decided).
    /// Blocks of other heights are left to [`Self::prune_committed`]; blocks kept without a slot (ours,
    /// decided ones) are bounded by [`MAX_UNSLOTTED`] instead (a value we re-propose moves to the back).
    pub fn prune_rounds(&mut self, window: Window, keep: &[BlockId]) {
        let min = window.min_round(window.height);
        let old = |slot: &Slot| slot.height == window.height && slot.round.get() < min;
        let dropped: Vec<BlockId> =
            self.slots.iter().filter(|(slot, _)| old(slot)).flat_map(|(_, held)| held.iter().copied()).collect();
        if dropped.is_empty() {
            return;
        }
        self.slots.retain(|slot, _| !old(slot));
        for hash in dropped {
            let still_needed = keep.contains(&hash)
                || self.unslotted.contains(&hash)
                || self.slots.values().any(|held| held.contains(&hash));
            if !still_needed {
                self.blocks.remove(&hash);
            }
        }
    }

    /// The block with this hash, if held.
    pub fn get(&self, hash: &BlockId) -> Option<&FullBlock> {
        self.blocks.get(hash)
    }

    /// Whether the block with this hash is held.
    pub fn contains_key(&self, hash: &BlockId) -> bool {
        self.blocks.contains_key(hash)
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Forgets every block and slot at or below the committed `tip`.
    pub fn prune_committed(&mut self, tip: Height) {
        self.blocks.retain(|_, fb| fb.height() > tip);
        self.slots.retain(|slot, _| slot.height > tip);
        let blocks = &self.blocks;
        self.unslotted.retain(|hash| blocks.contains_key(hash));
    }
}

/// A block of no transactions at `height` on a test chain (genesis `[7; 32]`); `salt` (its time) makes it
/// distinct. Not executable: for the stores and hosts that only hash and hold blocks.
#[cfg(test)]
pub(crate) fn test_block(height: u64, salt: u64) -> FullBlock {
    use primitives::{GenesisHash, Hash32, StateRoot};
    let header = ledger::BlockHeader {
        genesis_hash: GenesisHash(Hash32([7; 32])),
        height: Height(height),
        prev_hash: BlockId(Hash32([0; 32])),
        time_ms: salt,
        proposer: ValidatorIndex(0),
        btc_anchor: ledger::BtcAnchor::default(),
        tx_root: Hash32([0; 32]),
        state_root: StateRoot(Hash32([0; 32])),
        last_commit_hash: Hash32([0; 32]),
    };
    FullBlock { block: ledger::Block { header, txs: Vec::new() }, last_commit: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::Hash32;

    use super::test_block as block;

    /// Four validators, round robin from height + round (as `ValidatorSet::proposer` with equal weights).
    fn proposer(h: Height, r: Round) -> ValidatorIndex {
        ValidatorIndex(((h.get() + u64::from(r.get())) % 4) as u16)
    }

    fn offer(
        store: &mut ProposalStore,
        w: Window,
        h: u64,
        r: u32,
        by: u16,
        salt: u64,
    ) -> Result<Admitted, ProposalRefusal> {
        let (h, r) = (Height(h), Round(r));
        let fb = block(h.get(), salt);
        store.admit(w, proposer(h, r), Slot { height: h, round: r, proposer: ValidatorIndex(by) }, fb.hash(), fb)
    }

    #[test]
    fn a_flood_from_one_validator_cannot_keep_out_the_honest_proposal() {
        let mut store = ProposalStore::default();
        let w = Window { height: Height(10), round: Round(2) };
        let byzantine = 3u16;
        // Every slot it can sign for, at every height and round, many blocks each.
        let mut kept = 0;
        for h in 0..20u64 {
            for r in 0..2000u32 {
                for salt in 0..5u64 {
                    if offer(&mut store, w, h, r, byzantine, 1_000_000 + u64::from(r) * 10 + salt).is_ok() {
                        kept += 1;
                    }
                }
            }
        }
        // Only its own slots at heights 10 and 11, within the lookahead, two blocks each.
        let own_rounds_10 =
            (0..=2 + ROUND_LOOKAHEAD).filter(|r| proposer(Height(10), Round(*r)).get() == byzantine).count();
        let own_rounds_11 =
            (0..=ROUND_LOOKAHEAD).filter(|r| proposer(Height(11), Round(*r)).get() == byzantine).count();
        assert_eq!(kept, PER_SLOT * (own_rounds_10 + own_rounds_11));
        assert_eq!(store.len(), kept);
        // The honest proposer of the current round still gets its block in, and it stays.
        let honest = proposer(Height(10), Round(2)).get();
        assert_ne!(honest, byzantine);
        assert_eq!(offer(&mut store, w, 10, 2, honest, 42), Ok(Admitted::New));
        let fb = block(10, 42);
        assert!(store.contains_key(&fb.hash()));
        // And so does an honest proposer at the next height (round 0 there is the flooder's own).
        assert_eq!(proposer(Height(11), Round(0)).get(), byzantine);
        let next = proposer(Height(11), Round(1)).get();
        assert_eq!(offer(&mut store, w, 11, 1, next, 43), Ok(Admitted::New));
    }

    /// A stall of thousands of rounds with a proposal in every one: the store stays bounded, the current
    /// round's honest proposal still gets in, and the locked value from an early round is kept.
    #[test]
    fn a_long_stall_does_not_grow_the_store_with_the_round() {
        let mut store = ProposalStore::default();
        let locked = block(10, 7);
        let mut bound = 0;
        for r in 0..5_000u32 {
            let w = Window { height: Height(10), round: Round(r) };
            store.prune_rounds(w, &[locked.hash()]);
            let p = proposer(Height(10), Round(r)).get();
            // Two blocks in every round (the most a slot takes), the locked one among them in round 3.
            let salt = if r == 3 { 7 } else { 10_000 + u64::from(r) };
            offer(&mut store, w, 10, r, p, salt).expect("current round");
            offer(&mut store, w, 10, r, p, 20_000 + u64::from(r)).expect("second of the slot");
            if r % 4 == 0 {
                let own = block(10, 50_000 + u64::from(r));
                store.insert(own.hash(), own);
            }
            bound = bound.max(store.len());
        }
        let limit = PER_SLOT * (ROUND_KEEP_BEHIND + ROUND_LOOKAHEAD + 1) as usize + MAX_UNSLOTTED + 1;
        assert!(bound <= limit, "held {bound} blocks, more than {limit}");
        assert!(store.contains_key(&locked.hash()), "the locked value is kept");
        assert!(!store.contains_key(&block(10, 50_000).hash()), "our own early proposal aged out");
        assert!(store.contains_key(&block(10, 50_000 + 4_996).hash()), "our latest proposal is kept");
        assert!(!store.contains_key(&block(10, 10_100).hash()), "round 100's proposal is gone");
        let w = Window { height: Height(10), round: Round(4_999) };
        assert!(matches!(
            offer(&mut store, w, 10, 100, proposer(Height(10), Round(100)).get(), 1),
            Err(ProposalRefusal::RoundTooOld { .. })
        ));
    }

    #[test]
    fn each_rule_refuses_what_it_should() {
        let mut store = ProposalStore::default();
        let w = Window { height: Height(10), round: Round(0) };
        let p = |h, r| proposer(Height(h), Round(r)).get();
        assert!(matches!(offer(&mut store, w, 9, 0, p(9, 0), 1), Err(ProposalRefusal::OutsideHeights { .. })));
        assert!(matches!(offer(&mut store, w, 12, 0, p(12, 0), 1), Err(ProposalRefusal::OutsideHeights { .. })));
        let far = ROUND_LOOKAHEAD + 1;
        assert!(matches!(offer(&mut store, w, 10, far, p(10, far), 1), Err(ProposalRefusal::RoundTooFar { .. })));
        assert!(matches!(offer(&mut store, w, 11, far, p(11, far), 1), Err(ProposalRefusal::RoundTooFar { .. })));
        let wrong = (p(10, 0) + 1) % 4;
        let e = offer(&mut store, w, 10, 0, wrong, 1).unwrap_err();
        assert!(matches!(e, ProposalRefusal::NotProposer { .. }) && e.is_forged());
        // A block that is not the signed value.
        let fb = block(10, 1);
        let slot = Slot { height: Height(10), round: Round(0), proposer: ValidatorIndex(p(10, 0)) };
        let e = store.admit(w, slot.proposer, slot, BlockId(Hash32([9; 32])), fb.clone()).unwrap_err();
        assert!(matches!(e, ProposalRefusal::BlockMismatch { .. }) && e.is_forged());
        // Two distinct blocks per slot (evidence), a re-send is fine, a third is refused.
        assert_eq!(offer(&mut store, w, 10, 0, p(10, 0), 1), Ok(Admitted::New));
        assert_eq!(offer(&mut store, w, 10, 0, p(10, 0), 1), Ok(Admitted::Known));
        assert_eq!(offer(&mut store, w, 10, 0, p(10, 0), 2), Ok(Admitted::New));
        let e = offer(&mut store, w, 10, 0, p(10, 0), 3).unwrap_err();
        assert_eq!(e, ProposalRefusal::SlotFull(slot));
        assert!(!e.is_forged());
        assert!(!store.is_empty() && store.len() == 2);
    }

    #[test]
    fn a_commit_drops_its_height_and_frees_the_next_heights_slots_for_good_use() {
        let mut store = ProposalStore::default();
        let w = Window { height: Height(10), round: Round(0) };
        let p = |h, r| proposer(Height(h), Round(r)).get();
        offer(&mut store, w, 10, 0, p(10, 0), 1).expect("kept");
        offer(&mut store, w, 11, 0, p(11, 0), 1).expect("kept");
        let own = block(10, 99);
        store.insert(own.hash(), own.clone());
        store.prune_committed(Height(10));
        assert_eq!(store.len(), 1, "only height 11 is left");
        assert!(!store.contains_key(&own.hash()));
        assert!(store.get(&block(11, 1).hash()).is_some());
        // Height 11 is now the one being decided: its slot keeps what it had and counts it.
        let w = Window { height: Height(11), round: Round(0) };
        assert_eq!(offer(&mut store, w, 11, 0, p(11, 0), 1), Ok(Admitted::Known));
        assert_eq!(offer(&mut store, w, 11, 0, p(11, 0), 2), Ok(Admitted::New));
        assert!(offer(&mut store, w, 11, 0, p(11, 0), 3).is_err());
    }

    #[test]
    fn own_and_decided_blocks_need_no_slot() {
        let mut store = ProposalStore::default();
        let w = Window { height: Height(10), round: Round(0) };
        let p = proposer(Height(10), Round(0)).get();
        // The slot is full of someone's blocks; our own insert still lands.
        offer(&mut store, w, 10, 0, p, 1).expect("kept");
        offer(&mut store, w, 10, 0, p, 2).expect("kept");
        let mine = block(10, 3);
        store.insert(mine.hash(), mine.clone());
        assert_eq!(store.get(&mine.hash()), Some(&mine));
    }
}
