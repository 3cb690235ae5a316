//! What nodes say to each other: gossip messages, requests and responses, in the canonical encoding.
//!
//! Invariant owned here: decoding never trusts a length or a count from the peer beyond the byte limits
//! the transport already enforces, and every decode failure is an error value (the peer is scored down),
//! never a panic.

use crate::chain::FullBlock;
use borsh::{BorshDeserialize, BorshSerialize};
use consensus::{CommitCertificate, SignedProposal, SignedVote};
use ledger::SignedUserTx;
use primitives::{BlockId, Height};

/// Gossip topic of proposals and votes.
pub const TOPIC_CONSENSUS: &str = "sidechain/consensus/1";
/// Gossip topic of user transactions.
pub const TOPIC_TXS: &str = "sidechain/txs/1";
/// Gossip topic of tip announcements (how a lagging node learns it must sync).
pub const TOPIC_STATUS: &str = "sidechain/status/1";

/// Most blocks one sync response carries.
pub const MAX_BLOCKS_PER_RESPONSE: u32 = 64;

/// What travels on a gossip topic: a message and how many times its sender has re-sent it. Gossip ids
/// are content hashes, so a re-send (needed when peers missed the first copy, e.g. before they were
/// connected) must differ in content; the count does that and is otherwise ignored.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Frame {
    /// 0 for the first send.
    pub resend: u32,
    /// The message.
    pub body: Gossip,
}

/// A gossip message.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub enum Gossip {
    /// A signed proposal with the block it proposes.
    Proposal {
        /// The proposer's signed proposal.
        proposal: SignedProposal,
        /// The block whose hash is the proposal's value.
        block: Box<FullBlock>,
    },
    /// A prevote or precommit.
    Vote(SignedVote),
    /// A user transaction.
    Tx(SignedUserTx),
    /// "My committed tip is `height`."
    Status {
        /// The sender's tip.
        height: Height,
    },
    /// A peg-in claim (`claimpegin`): validators check it against their bitcoind.
    Claim(crate::pegin::PegClaim),
    /// A signature share or a federation change for the federation pool (see `fed_pool`).
    Fed(ledger::Tx),
}

/// A request to one peer.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub enum Request {
    /// Committed blocks with their certificates from `from` on, at most `max`.
    GetBlocks {
        /// First height wanted.
        from: Height,
        /// Most blocks wanted.
        max: u32,
    },
    /// A block that was proposed (committed or not) by hash.
    GetBlock {
        /// Its hash.
        hash: BlockId,
    },
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub enum Response {
    /// Consecutive committed blocks from the requested height (possibly none).
    Blocks(Vec<(FullBlock, CommitCertificate)>),
    /// The block, if known.
    Block(Option<Box<FullBlock>>),
    /// Not served now: the asker is over its request rate, or the node is serving too many answers
    /// (see `sync_serve`). Ask again later.
    Busy,
}

/// Encodes any wire value.
pub fn encode<T: BorshSerialize>(v: &T) -> Vec<u8> {
    borsh::to_vec(v).expect("borsh serialization into a Vec cannot fail")
}

/// Decodes a wire value, requiring that all bytes are used.
pub fn decode<T: BorshDeserialize>(bytes: &[u8]) -> Result<T, std::io::Error> {
    borsh::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        for bytes in [&b""[..], &[0xff; 3], &[0u8; 10], &[1, 2, 3, 4, 5, 6, 7]] {
            assert!(decode::<Frame>(bytes).is_err());
            assert!(decode::<Request>(bytes).is_err());
        }
        // A huge claimed vector length is refused without allocating it.
        let mut lie = vec![0u8]; // Response::Blocks
        lie.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode::<Response>(&lie).is_err());
        let ok = encode(&Request::GetBlocks { from: Height(3), max: 10 });
        assert!(matches!(decode::<Request>(&ok), Ok(Request::GetBlocks { from: Height(3), max: 10 })));
        let mut trailing = ok.clone();
        trailing.push(0);
        assert!(decode::<Request>(&trailing).is_err());
    }
}
