//! The bridge: the node half of the peg, between the Bitcoin follower and the event loop.
//!
//! - [`duties`]: what this validator adds to blocks and objects to in others' ([`PegDuties`]);
//! - [`signing`]: which peg-out batch versions it signs and which k shares complete ([`BatchSigner`]).
//!
//! Both read committed state and the follower's snapshot and return what they want done; neither reaches
//! back into the service. (Named `bridge` rather than `peg` so the `peg` crate keeps its name in paths.)

pub mod duties;
pub mod signing;

pub use duties::{FollowerLinks, PegDuties};
pub use signing::BatchSigner;

/// Why this validator votes nil on a proposed block because of its peg part.
#[derive(Debug, thiserror::Error)]
pub enum BlockObjection {
    /// The block moves the anchor and this node has no bitcoind to check the move against.
    #[error("no bitcoind configured, so this validator cannot check anchor moves")]
    NoBitcoind,
    /// Our bitcoind does not confirm the proposed anchor move.
    #[error("cannot confirm the proposed BTC anchor: {0}")]
    Anchor(#[source] peg::AnchorRejection),
    /// The block's mints or settlements do not match what our bitcoind shows.
    #[error("the block's peg transactions do not match our bitcoind: {0}")]
    Peg(#[source] crate::pegin::PegObjection),
}
