//! Why this validator votes nil on a block because of its peg part: below the duties that find it and the
//! validity judge that reports it.

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
