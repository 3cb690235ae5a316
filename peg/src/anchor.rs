//! When a validator accepts a new BTC anchor, and which anchor a proposer asks for.
//!
//! Why a pure function over a trait: anchor acceptance is external validity ("does my bitcoind agree?"), not
//! execution, so it runs only on validators and only against their own bitcoind. Keeping the rule here, over
//! the two questions it needs ([`BitcoinView`]: best height, hash at a height in the best chain), means the
//! rule is tested without a bitcoind and the node only has to answer those questions.
//!
//! The rule (DESIGN.md, "The Bitcoin view"): a new anchor `(h, H)` replaces the previous `(p, P)` only if
//! - `p <= h <= p + max_step` (never backwards, never a big jump);
//! - my bitcoind's best chain has `H` at `h`, with at least N confirmations (`best - h + 1 >= N`);
//! - my bitcoind's best chain still has `P` at `p`: since both are in one chain, `P` is an ancestor of `H`.
//!   If `P` is gone, Bitcoin reorganised deeper than N under the anchor: that is reported as such, because
//!   f+1 such reports halt the peg.
//!
//! Keeping the anchor unchanged is always accepted and asks bitcoind nothing, so transfers go on when
//! bitcoind is down, lagging or disagreeing. Every rejection says why in words a node operator understands.

use bitcoin::BlockHash;

/// A validator's view of its own bitcoind's best chain. `None` means "I don't know" (bitcoind unreachable,
/// or no block at that height in its best chain).
pub trait BitcoinView {
    /// Height of the best chain tip, or `None` if bitcoind cannot be asked.
    fn best_height(&self) -> Option<u32>;
    /// Hash of the best-chain block at `height`, or `None` if there is none (or bitcoind cannot be asked).
    fn hash_at(&self, height: u32) -> Option<BlockHash>;
}

/// Why a validator refuses a proposed anchor move (it prevotes nil and logs this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnchorRejection {
    /// bitcoind did not answer.
    #[error("my bitcoind is unreachable: cannot check a new BTC anchor")]
    BitcoindUnavailable,
    /// bitcoind has not reached the proposed height yet.
    #[error("my bitcoind is behind: its best height is {best}, the BTC anchor is at height {anchor}")]
    BitcoindBehind {
        /// My bitcoind's best height.
        best: u32,
        /// The height of the anchor it was asked about (proposed or previous).
        anchor: u32,
    },
    /// The proposed anchor is below the previous one.
    #[error("the BTC anchor went backwards, from height {prev} to {proposed}")]
    WentBackwards {
        /// The previous anchor height.
        prev: u32,
        /// The proposed anchor height.
        proposed: u32,
    },
    /// A different block at the previous anchor's height: a switch to another branch.
    #[error("the BTC anchor at height {height} was replaced by another block ({prev} -> {proposed})")]
    SwitchedBranch {
        /// The height of both anchors.
        height: u32,
        /// The previous anchor's hash.
        prev: BlockHash,
        /// The proposed hash.
        proposed: BlockHash,
    },
    /// The anchor moved more than `max_step` blocks.
    #[error("the BTC anchor moved too far: from height {prev} to {proposed}, at most {max_step} blocks allowed")]
    MovedTooFar {
        /// The previous anchor height.
        prev: u32,
        /// The proposed anchor height.
        proposed: u32,
        /// The most an anchor may move in one block.
        max_step: u32,
    },
    /// The proposed block is not deep enough in my bitcoind's best chain.
    #[error("the proposed BTC anchor at height {height} has {confirmations} confirmations on my bitcoind, {required} required")]
    NotEnoughConfirmations {
        /// The proposed anchor height.
        height: u32,
        /// Its confirmations on my bitcoind.
        confirmations: u32,
        /// N.
        required: u32,
    },
    /// My bitcoind's best chain has another block at the proposed height.
    #[error(
        "the proposed BTC anchor {proposed} at height {height} is not in my bitcoind's best chain (it has {ours})"
    )]
    NotInBestChain {
        /// The proposed anchor height.
        height: u32,
        /// The proposed hash.
        proposed: BlockHash,
        /// What my bitcoind has at that height.
        ours: BlockHash,
    },
    /// The previous anchor left my bitcoind's best chain: a reorg deeper than N (peg must halt on f+1 reports).
    #[error("deep BTC reorg: the anchored block {anchored} at height {height} is no longer in my bitcoind's best chain (it has {ours})")]
    PreviousAnchorReorged {
        /// The previous anchor height.
        height: u32,
        /// The previous anchor hash.
        anchored: BlockHash,
        /// What my bitcoind has at that height.
        ours: BlockHash,
    },
}

/// Checks that `anchor` is in my bitcoind's best chain; returns its confirmation count.
///
/// Used for the previous anchor on every move, and by the node to detect (and report) a deep reorg.
pub fn check_in_best_chain(view: &impl BitcoinView, anchor: (u32, BlockHash)) -> Result<u32, AnchorRejection> {
    let (height, hash) = anchor;
    let best = view.best_height().ok_or(AnchorRejection::BitcoindUnavailable)?;
    if height > best {
        return Err(AnchorRejection::BitcoindBehind { best, anchor: height });
    }
    // A best chain has a block at every height up to its tip, so `None` here means bitcoind stopped
    // answering: never report that as a reorg (f+1 reorg reports halt the peg).
    match view.hash_at(height) {
        Some(ours) if ours == hash => Ok(best - height + 1),
        Some(ours) => Err(AnchorRejection::PreviousAnchorReorged { height, anchored: hash, ours }),
        None => Err(AnchorRejection::BitcoindUnavailable),
    }
}

/// The anchor-acceptance rule: may the anchor move from `prev` to `proposed`? See the module docs.
///
/// `min_confirmations` of 0 is treated as 1 (the block must exist).
pub fn check_anchor_move(
    view: &impl BitcoinView,
    prev: (u32, BlockHash),
    proposed: (u32, BlockHash),
    min_confirmations: u32,
    max_step: u32,
) -> Result<(), AnchorRejection> {
    if proposed == prev {
        return Ok(());
    }
    let ((p, prev_hash), (h, hash)) = (prev, proposed);
    if h < p {
        return Err(AnchorRejection::WentBackwards { prev: p, proposed: h });
    }
    if h == p {
        return Err(AnchorRejection::SwitchedBranch { height: h, prev: prev_hash, proposed: hash });
    }
    if h - p > max_step {
        return Err(AnchorRejection::MovedTooFar { prev: p, proposed: h, max_step });
    }
    // The previous anchor first: a deep reorg is the finding that matters most and must be reported.
    check_in_best_chain(view, prev)?;
    let best = view.best_height().ok_or(AnchorRejection::BitcoindUnavailable)?;
    if h > best {
        return Err(AnchorRejection::BitcoindBehind { best, anchor: h });
    }
    match view.hash_at(h) {
        Some(ours) if ours == hash => {}
        Some(ours) => return Err(AnchorRejection::NotInBestChain { height: h, proposed: hash, ours }),
        None => return Err(AnchorRejection::BitcoindUnavailable),
    }
    let confirmations = best - h + 1;
    let required = min_confirmations.max(1);
    if confirmations < required {
        return Err(AnchorRejection::NotEnoughConfirmations { height: h, confirmations, required });
    }
    Ok(())
}

/// The anchor a proposer asks for: the highest best-chain block with at least N confirmations, at most
/// `max_step` above `prev`. `None` means "keep `prev`": nothing new is deep enough, bitcoind is unreachable,
/// or `prev` left the best chain (a deep reorg; see [`check_in_best_chain`]).
///
/// Whatever it returns passes [`check_anchor_move`] against the same view.
pub fn choose_anchor(
    view: &impl BitcoinView,
    prev: (u32, BlockHash),
    min_confirmations: u32,
    max_step: u32,
) -> Option<(u32, BlockHash)> {
    check_in_best_chain(view, prev).ok()?;
    let best = view.best_height()?;
    let deepest_allowed = (best + 1).checked_sub(min_confirmations.max(1))?;
    let height = deepest_allowed.min(prev.0.saturating_add(max_step));
    if height <= prev.0 {
        return None;
    }
    let hash = view.hash_at(height)?;
    check_anchor_move(view, prev, (height, hash), min_confirmations, max_step).ok()?;
    Some((height, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    /// An in-memory best chain: `chain[i]` is the block at height i; `down` makes bitcoind unreachable.
    struct Chain {
        chain: Vec<BlockHash>,
        down: bool,
    }

    fn h(tag: u8, height: u32) -> BlockHash {
        let mut b = [tag; 32];
        b[..4].copy_from_slice(&height.to_le_bytes());
        BlockHash::from_byte_array(b)
    }

    impl Chain {
        fn new(tip: u32) -> Self {
            Chain { chain: (0..=tip).map(|i| h(0xa, i)).collect(), down: false }
        }
        /// Replaces every block from `from` up with blocks of another branch, up to `tip`.
        fn reorg(&mut self, from: u32, tip: u32) {
            self.chain.truncate(from as usize);
            self.chain.extend((from..=tip).map(|i| h(0xb, i)));
        }
        fn at(&self, height: u32) -> (u32, BlockHash) {
            (height, self.chain[height as usize])
        }
    }

    impl BitcoinView for Chain {
        fn best_height(&self) -> Option<u32> {
            if self.down {
                return None;
            }
            u32::try_from(self.chain.len()).ok()?.checked_sub(1)
        }
        fn hash_at(&self, height: u32) -> Option<BlockHash> {
            if self.down {
                return None;
            }
            self.chain.get(height as usize).copied()
        }
    }

    const N: u32 = 6;
    const STEP: u32 = 10;

    #[test]
    fn accepts_a_deep_enough_move_in_the_best_chain() {
        let c = Chain::new(120); // tip 120: height 115 has 6 confirmations
        let prev = c.at(110);
        assert_eq!(check_anchor_move(&c, prev, c.at(115), N, STEP), Ok(()));
        assert_eq!(check_anchor_move(&c, prev, c.at(111), N, STEP), Ok(()));
        assert_eq!(
            check_anchor_move(&c, prev, c.at(116), N, STEP),
            Err(AnchorRejection::NotEnoughConfirmations { height: 116, confirmations: 5, required: 6 })
        );
    }

    #[test]
    fn keeping_the_anchor_needs_no_bitcoind() {
        let mut c = Chain::new(50);
        let prev = c.at(40);
        c.down = true;
        assert_eq!(check_anchor_move(&c, prev, prev, N, STEP), Ok(()));
        assert_eq!(check_anchor_move(&c, prev, (41, h(0xa, 41)), N, STEP), Err(AnchorRejection::BitcoindUnavailable));
        assert_eq!(choose_anchor(&c, prev, N, STEP), None);
    }

    #[test]
    fn rejects_backwards_sideways_and_big_jumps() {
        let c = Chain::new(200);
        let prev = c.at(100);
        assert_eq!(
            check_anchor_move(&c, prev, c.at(99), N, STEP),
            Err(AnchorRejection::WentBackwards { prev: 100, proposed: 99 })
        );
        let other = h(0xb, 100);
        assert_eq!(
            check_anchor_move(&c, prev, (100, other), N, STEP),
            Err(AnchorRejection::SwitchedBranch { height: 100, prev: prev.1, proposed: other })
        );
        assert_eq!(
            check_anchor_move(&c, prev, c.at(111), N, STEP),
            Err(AnchorRejection::MovedTooFar { prev: 100, proposed: 111, max_step: STEP })
        );
        assert_eq!(check_anchor_move(&c, prev, c.at(110), N, STEP), Ok(()));
    }

    #[test]
    fn rejects_what_my_bitcoind_does_not_have() {
        let c = Chain::new(105);
        let prev = c.at(100);
        assert_eq!(
            check_anchor_move(&c, prev, (108, h(0xa, 108)), N, STEP),
            Err(AnchorRejection::BitcoindBehind { best: 105, anchor: 108 })
        );
        let fork = h(0xb, 103);
        assert_eq!(
            check_anchor_move(&c, c.at(95), (100, h(0xb, 100)), N, STEP),
            Err(AnchorRejection::NotInBestChain { height: 100, proposed: h(0xb, 100), ours: c.chain[100] })
        );
        assert!(matches!(
            check_anchor_move(&c, prev, (103, fork), N, STEP),
            Err(AnchorRejection::NotInBestChain { height: 103, .. })
        ));
    }

    #[test]
    fn detects_a_reorg_below_the_anchor() {
        let mut c = Chain::new(130);
        let prev = c.at(120);
        c.reorg(118, 140);
        let err = check_anchor_move(&c, prev, c.at(125), N, STEP).expect_err("deep reorg");
        assert_eq!(err, AnchorRejection::PreviousAnchorReorged { height: 120, anchored: prev.1, ours: h(0xb, 120) });
        assert!(err.to_string().contains("deep BTC reorg"), "{err}");
        assert_eq!(check_in_best_chain(&c, prev), Err(err));
        assert_eq!(choose_anchor(&c, prev, N, STEP), None);
        // A reorg above the anchor is harmless.
        let mut c = Chain::new(130);
        c.reorg(125, 140);
        assert_eq!(check_in_best_chain(&c, prev), Ok(21));
        assert_eq!(choose_anchor(&c, prev, N, STEP), Some(c.at(130)));
    }

    /// bitcoind answers the tip height but then fails every block lookup.
    struct Flaky(u32);

    impl BitcoinView for Flaky {
        fn best_height(&self) -> Option<u32> {
            Some(self.0)
        }
        fn hash_at(&self, _: u32) -> Option<BlockHash> {
            None
        }
    }

    #[test]
    fn a_failing_lookup_is_unavailability_not_a_reorg() {
        let prev = (100, h(0xa, 100));
        assert_eq!(check_in_best_chain(&Flaky(120), prev), Err(AnchorRejection::BitcoindUnavailable));
        assert_eq!(
            check_anchor_move(&Flaky(120), prev, (110, h(0xa, 110)), N, STEP),
            Err(AnchorRejection::BitcoindUnavailable)
        );
        assert_eq!(choose_anchor(&Flaky(120), prev, N, STEP), None);
    }

    #[test]
    fn chooses_the_highest_deep_enough_block_within_the_step() {
        let c = Chain::new(120);
        // 115 is the deepest with 6 confirmations.
        assert_eq!(choose_anchor(&c, c.at(110), N, STEP), Some(c.at(115)));
        // Bounded by the step.
        assert_eq!(choose_anchor(&c, c.at(100), N, STEP), Some(c.at(110)));
        // Nothing new deep enough: keep.
        assert_eq!(choose_anchor(&c, c.at(115), N, STEP), None);
        assert_eq!(choose_anchor(&Chain::new(3), (0, h(0xa, 0)), N, STEP), None);
        // N = 0 behaves as N = 1: the tip.
        assert_eq!(choose_anchor(&c, c.at(115), 0, STEP), Some(c.at(120)));
        // Whatever is chosen is accepted by the same view.
        for prev in 90..=120 {
            if let Some(a) = choose_anchor(&c, c.at(prev), N, STEP) {
                assert_eq!(check_anchor_move(&c, c.at(prev), a, N, STEP), Ok(()));
            }
        }
    }
}
