//! Blocks: the header every validator signs a commit for, and the ordered transactions.
//!
//! Invariant owned here: the block hash is `tagged_hash("sidechain/block", borsh(header))` and the header
//! commits to the body through `tx_root` and to the resulting state through `state_root`. The commit
//! certificate is attached by the node (consensus crate); the ledger does not depend on consensus.

pub use crate::btc_anchor::BtcAnchor;
use crate::tx::{tx_root, Tx};
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{canonical_bytes, tagged_hash, BlockId, GenesisHash, Hash32, Height, StateRoot, TxId, ValidatorIndex};
use serde::{Deserialize, Serialize};

/// Tag of the block hash.
pub const BLOCK_TAG: &str = "sidechain/block";

/// The header. Field order is the signed and hashed order (see `docs/PROTOCOL.md`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Hash of the genesis (binds the block to one chain).
    pub genesis_hash: GenesisHash,
    /// 1 for the first block after genesis.
    pub height: Height,
    /// Hash of the previous header; the genesis hash at height 1 ([`GenesisHash::as_block_id`]).
    pub prev_hash: BlockId,
    /// Proposer's time, milliseconds since the Unix epoch; strictly increasing.
    pub time_ms: u64,
    /// Index of the proposer in the validator set.
    pub proposer: ValidatorIndex,
    /// Bitcoin anchor after this block.
    pub btc_anchor: BtcAnchor,
    /// [`tx_root`] of the transactions.
    pub tx_root: Hash32,
    /// State root after executing this block.
    pub state_root: StateRoot,
    /// Hash of the commit certificate of the previous block (computed by the consensus crate);
    /// [`Hash32::ZERO`] at height 1.
    pub last_commit_hash: Hash32,
}

impl BlockHeader {
    /// `tagged_hash("sidechain/block", canonical_bytes(header))`.
    pub fn hash(&self) -> BlockId {
        BlockId(tagged_hash(BLOCK_TAG, &[&canonical_bytes(self)]))
    }
}

/// A header and its transactions.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// Transactions, applied in order.
    pub txs: Vec<Tx>,
}

impl Block {
    /// The block hash (the header's hash).
    pub fn hash(&self) -> BlockId {
        self.header.hash()
    }

    /// The transaction root computed from the body (compare with `header.tx_root`).
    pub fn compute_tx_root(&self) -> Hash32 {
        let ids: Vec<TxId> = self.txs.iter().map(Tx::txid).collect();
        tx_root(&ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash as _;
    use primitives::BtcHeight;

    #[test]
    fn header_encoding_is_214_bytes_in_documented_order() {
        let h = BlockHeader {
            genesis_hash: GenesisHash(Hash32([1; 32])),
            height: Height(2),
            prev_hash: BlockId(Hash32([3; 32])),
            time_ms: 4,
            proposer: ValidatorIndex(5),
            btc_anchor: BtcAnchor { height: BtcHeight(6), hash: bitcoin::BlockHash::from_byte_array([7; 32]) },
            tx_root: Hash32([8; 32]),
            state_root: StateRoot(Hash32([9; 32])),
            last_commit_hash: Hash32([10; 32]),
        };
        let b = canonical_bytes(&h);
        assert_eq!(b.len(), 214);
        assert_eq!(&b[32..40], &2u64.to_le_bytes());
        assert_eq!(&b[80..82], &5u16.to_le_bytes());
        assert_eq!(&b[82..86], &6u32.to_le_bytes());
        assert_eq!(b[213], 10);
        assert_eq!(h.hash(), BlockId(tagged_hash(BLOCK_TAG, &[&b])));
    }
}
