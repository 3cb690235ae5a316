//! The authenticated state: a Jellyfish Merkle Tree (crate `jmt`) of borsh values under hashed keys.
//!
//! Why: every node must reach the same state root after a block whatever order it inserted things in,
//! and a wallet or explorer must be able to check one account against a root (inclusion proofs). A JMT
//! keyed by 32-byte key hashes gives both: its shape depends only on the set of keys.
//!
//! Invariants owned here:
//! - one key space: `key_hash = tagged_hash("sidechain/state-key", borsh(StateKey))`, where the first byte
//!   of `borsh(StateKey)` is the table (a stable enum tag) and the rest is the key in that table;
//! - one tree version per height: the state after block `h` is JMT version `h`; genesis is version 0;
//! - reads during execution go through [`StateReader`] and never see unflushed writes of other blocks.
//!
//! Persistence is not here: execution returns a [`WriteSet`] that the node writes atomically (RocksDB in
//! the node, [`MemStore`] in tests).

use crate::btc_anchor::BtcAnchor;
use crate::codec;
use crate::tx::BtcOutPoint;
use bitcoin::Amount;
use borsh::{BorshDeserialize, BorshSerialize};
use jmt::storage::{HasPreimage, LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{KeyHash, OwnedValue, RootHash, Version};
use primitives::{canonical_bytes, tagged_hash, AccountId, Hash32, Height, Round, StateRoot, TxId, ValidatorIndex};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Tag of state key hashes.
pub const STATE_KEY_TAG: &str = "sidechain/state-key";
/// Tag whose hash of the empty string is the fee pool's account id.
pub const FEE_POOL_TAG: &str = "sidechain/fee-pool";

/// The JMT hasher: plain SHA-256 (leaf = `SHA256("JMT::LeafNode" || key_hash || SHA256(value))`).
pub type TreeHasher = sha2::Sha256;
type Jmt<'a, R> = jmt::JellyfishMerkleTree<'a, R, TreeHasher>;

/// The account that receives every fee. Its id is a tagged hash with no known public key behind it, so
/// no signature can ever spend it; only protocol rules (Bitcoin fees of peg-outs, later) debit it.
/// Hashed once: every mint to the plain federation script names it (some 90,000 in a flooded BTC block).
pub fn fee_pool_id() -> AccountId {
    static ID: std::sync::OnceLock<AccountId> = std::sync::OnceLock::new();
    *ID.get_or_init(|| AccountId(tagged_hash(FEE_POOL_TAG, &[])))
}

/// A balance and the number of transactions the account has sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Account {
    /// Spendable balance.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub balance: Amount,
    /// The nonce the next transaction of this account must carry.
    pub nonce: u64,
}

/// Facts about the chain tip written by every block (so every height has its own tree version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ChainMeta {
    /// Height of the block that produced this state (0 at genesis).
    pub height: Height,
    /// Its time (genesis time at genesis).
    pub time_ms: u64,
    /// Its Bitcoin anchor (the genesis anchor at genesis).
    pub btc_anchor: BtcAnchor,
}

/// A key in the state tree: the enum tag is the table.
///
/// Tags: `0` accounts, `1` chain meta, `2` recorded equivocation evidence, `3` deposit registrations,
/// `4` peg-ins (every deposit outpoint ever minted or recorded, kept forever), `5` federation UTXOs,
/// `6` peg totals, `7` the peg halt, `8` burns, `9` burn ids by txid, `10` the peg-out queue, `11` batches, `12`
/// the batch index, `13` the spendable federation outputs, `14` fee-rate votes and the agreed rate, `15` the
/// federation epochs, `16` the peg-out limit's window, `17` the peg cursor, `18` taproot batches' key-path
/// signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, BorshSerialize, BorshDeserialize)]
pub enum StateKey {
    /// Tag 0: an [`Account`].
    Account(AccountId),
    /// Tag 1: the single [`ChainMeta`] value.
    ChainMeta,
    /// Tag 2: an [`EvidenceRecord`](crate::EvidenceRecord) for (offender, height, round).
    Evidence {
        /// The validator that signed twice.
        offender: ValidatorIndex,
        /// Height of the two messages.
        height: Height,
        /// Round of the two messages.
        round: Round,
    },
    /// Tag 3: the [`Registration`](crate::peg_records::Registration) of an account's deposit address.
    Registration(AccountId),
    /// Tag 4: the [`PegInRecord`](crate::peg_records::PegInRecord) of a deposit outpoint.
    PegIn(BtcOutPoint),
    /// Tag 5: a [`FederationUtxo`](crate::peg_records::FederationUtxo) the federation holds.
    FederationUtxo(BtcOutPoint),
    /// Tag 6: the single [`PegTotals`](crate::peg_records::PegTotals) value.
    PegTotals,
    /// Tag 7: the single [`PegHalt`](crate::halt::PegHalt) value.
    PegHalt,
    /// Tag 8: a [`BurnRecord`](crate::pegout::BurnRecord) by burn id.
    Burn(u64),
    /// Tag 9: the burn id of a burn transaction, by txid.
    BurnByTx(TxId),
    /// Tag 10: the single [`PegOutQueue`](crate::pegout::PegOutQueue) value.
    PegOutQueue,
    /// Tag 11: a [`BatchRecord`](crate::batching::BatchRecord) by batch id.
    Batch(u64),
    /// Tag 12: the single [`BatchIndex`](crate::batching::BatchIndex) value.
    BatchIndex,
    /// Tag 13: the single [`SpendableUtxos`](crate::batching::SpendableUtxos) value.
    SpendableUtxos,
    /// Tag 14: the single [`FeeRates`](crate::fee_rate::FeeRates) value.
    FeeRates,
    /// Tag 15: the single [`FederationState`](crate::federation::FederationState) value.
    Federation,
    /// Tag 16: the single [`PegOutWindow`](crate::pegout_limit::PegOutWindow) value (the peg-out limit's
    /// rolling window).
    PegOutWindow,
    /// Tag 17: the single [`PegCursor`](crate::peg_cursor::PegCursor) value, as an option (the BTC block
    /// above the anchor whose items went in early).
    PegCursor,
    /// Tag 18: a taproot batch's key-path signing
    /// ([`FrostSessionRecord`](crate::frost_signing::FrostSessionRecord)) by batch id.
    FrostSession(u64),
}

impl StateKey {
    /// `tagged_hash("sidechain/state-key", borsh(self))`: where the value sits in the tree.
    pub fn key_hash(&self) -> KeyHash {
        KeyHash(tagged_hash(STATE_KEY_TAG, &[&canonical_bytes(self)]).0)
    }
}

/// Why the state could not be read or updated. Not a verdict on a block: the caller retries or stops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The storage backend failed.
    #[error("state backend failed: {0}")]
    Backend(String),
    /// A stored value does not decode.
    #[error("stored value under {key:?} does not decode: {reason}")]
    Corrupt {
        /// The key read.
        key: StateKey,
        /// The decoder's message.
        reason: String,
    },
    /// The tree has no root at that version (not written yet, or pruned).
    #[error("no state at version {version}: {reason}")]
    MissingVersion {
        /// The version asked for.
        version: Version,
        /// The tree's message.
        reason: String,
    },
    /// The tree refused an update.
    #[error("state tree update at version {version} failed: {reason}")]
    Tree {
        /// The version being written.
        version: Version,
        /// The tree's message.
        reason: String,
    },
}

/// Read access to one version of the state. `Ok(None)`: not there; `Err`: the backend failed.
///
/// Execution and mempool checks are written against this trait. The node gets it for free for any
/// `jmt::storage::TreeReader` through [`Snapshot`]; a mempool can stack pending changes on top.
pub trait StateReader {
    /// The borsh bytes stored under `key`.
    fn get_raw(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError>;

    /// An account, or `None` if it never received anything.
    fn get_account(&self, id: &AccountId) -> Result<Option<Account>, StateError> {
        decode(StateKey::Account(*id), self.get_raw(&StateKey::Account(*id))?)
    }

    /// The chain meta, `None` only before genesis.
    fn chain_meta(&self) -> Result<Option<ChainMeta>, StateError> {
        decode(StateKey::ChainMeta, self.get_raw(&StateKey::ChainMeta)?)
    }

    /// Recorded evidence against `offender` at (`height`, `round`), if any.
    fn get_evidence(
        &self,
        offender: ValidatorIndex,
        height: Height,
        round: Round,
    ) -> Result<Option<crate::EvidenceRecord>, StateError> {
        let key = StateKey::Evidence { offender, height, round };
        decode(key, self.get_raw(&key)?)
    }

    /// The deposit registration of `account`, live or expired.
    fn get_registration(&self, account: &AccountId) -> Result<Option<crate::peg_records::Registration>, StateError> {
        let key = StateKey::Registration(*account);
        decode(key, self.get_raw(&key)?)
    }

    /// What happened to a deposit outpoint, if it was ever minted or recorded.
    fn get_pegin(&self, outpoint: &BtcOutPoint) -> Result<Option<crate::peg_records::PegInRecord>, StateError> {
        let key = StateKey::PegIn(*outpoint);
        decode(key, self.get_raw(&key)?)
    }

    /// A federation UTXO.
    fn get_federation_utxo(
        &self,
        outpoint: &BtcOutPoint,
    ) -> Result<Option<crate::peg_records::FederationUtxo>, StateError> {
        let key = StateKey::FederationUtxo(*outpoint);
        decode(key, self.get_raw(&key)?)
    }

    /// The peg totals (all zero before the first peg-in on a chain whose genesis predates them).
    fn peg_totals(&self) -> Result<crate::peg_records::PegTotals, StateError> {
        Ok(decode(StateKey::PegTotals, self.get_raw(&StateKey::PegTotals)?)?.unwrap_or_default())
    }
}

fn decode<T: BorshDeserialize>(key: StateKey, bytes: Option<Vec<u8>>) -> Result<Option<T>, StateError> {
    bytes.map(|b| borsh::from_slice(&b).map_err(|e| StateError::Corrupt { key, reason: e.to_string() })).transpose()
}

/// One version of the state over any JMT storage: values are read with
/// `TreeReader::get_value_option(version, key_hash)` (the newest value at or below `version`).
#[derive(Clone, Copy)]
pub struct Snapshot<'a, R> {
    reader: &'a R,
    version: Version,
}

impl<'a, R: TreeReader> Snapshot<'a, R> {
    /// The state after block `version` (0 = genesis).
    pub fn new(reader: &'a R, version: Version) -> Self {
        Snapshot { reader, version }
    }

    /// The version read.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The root hash of this version.
    pub fn root(&self) -> Result<StateRoot, StateError> {
        Jmt::new(self.reader)
            .get_root_hash(self.version)
            .map(|r| StateRoot(Hash32(r.0)))
            .map_err(|e| StateError::MissingVersion { version: self.version, reason: format!("{e:#}") })
    }

    /// The raw value under `key` with a proof against [`root`](Self::root) (an exclusion proof if
    /// there is none). For peg state and reserve proofs as well as accounts.
    pub fn prove(&self, key: &StateKey) -> Result<(Option<Vec<u8>>, StateProof), StateError> {
        let (value, proof) = Jmt::new(self.reader)
            .get_with_proof(key.key_hash(), self.version)
            .map_err(|e| StateError::MissingVersion { version: self.version, reason: format!("{e:#}") })?;
        Ok((value, StateProof(proof)))
    }

    /// An account with a proof against [`root`](Self::root) (an exclusion proof if it does not exist).
    pub fn prove_account(&self, id: &AccountId) -> Result<(Option<Account>, StateProof), StateError> {
        let key = StateKey::Account(*id);
        let (value, proof) = self.prove(&key)?;
        Ok((decode(key, value)?, proof))
    }
}

impl<R: TreeReader> StateReader for Snapshot<'_, R> {
    fn get_raw(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        self.reader.get_value_option(self.version, key.key_hash()).map_err(|e| StateError::Backend(format!("{e:#}")))
    }
}

/// A JMT proof that a key has a given value (or no value) under a state root. Borsh and serde encode
/// it, so RPC can return it and a light client can check it with [`StateProof::verify_account`].
#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct StateProof(pub jmt::proof::SparseMerkleProof<TreeHasher>);

/// Why a proof was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proof for {key:?} does not verify against root {root}: {reason}")]
pub struct ProofError {
    /// The key the proof was for.
    pub key: StateKey,
    /// The root it was checked against.
    pub root: StateRoot,
    /// The tree's message.
    pub reason: String,
}

impl StateProof {
    /// The proof's canonical bytes (borsh of jmt's `SparseMerkleProof`), for RPC.
    pub fn to_bytes(&self) -> Vec<u8> {
        borsh::to_vec(&self.0).unwrap_or_default()
    }

    /// Parses [`Self::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, borsh::io::Error> {
        borsh::from_slice(bytes).map(StateProof)
    }

    /// Checks that `key` holds exactly `value` (`None`: no entry) under `root`.
    pub fn verify(&self, root: StateRoot, key: &StateKey, value: Option<&[u8]>) -> Result<(), ProofError> {
        self.0.verify(RootHash(*root.as_bytes()), key.key_hash(), value).map_err(|e| ProofError {
            key: *key,
            root,
            reason: format!("{e:#}"),
        })
    }

    /// Checks that account `id` holds exactly `account` (`None`: does not exist) under `root`.
    pub fn verify_account(&self, root: StateRoot, id: &AccountId, account: Option<&Account>) -> Result<(), ProofError> {
        let bytes = account.map(canonical_bytes);
        self.verify(root, &StateKey::Account(*id), bytes.as_deref())
    }
}

/// Everything a node must persist, in one atomic write, to move the state to `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteSet {
    /// The new version (= the block height).
    pub version: Version,
    /// The root of that version.
    pub root: StateRoot,
    /// The changed entries with their keys in clear (the tree itself only knows key hashes), one per key,
    /// in the order execution wrote them (not sorted). `None` is a deletion. Also inside `tree.node_batch.values()`, keyed by hash.
    pub changes: Vec<(StateKey, Option<Vec<u8>>)>,
    /// The JMT's new nodes, new values (by `(version, key_hash)`) and the nodes that became stale at
    /// this version (for pruning).
    pub tree: TreeUpdateBatch,
}

/// Computes the tree update that writes `changes` as `version` on top of `version - 1`.
pub(crate) fn build_write_set<R: TreeReader>(
    reader: &R,
    version: Version,
    changes: Vec<(StateKey, Option<Vec<u8>>)>,
) -> Result<WriteSet, StateError> {
    let values: Vec<(KeyHash, Option<OwnedValue>)> = changes.iter().map(|(k, v)| (k.key_hash(), v.clone())).collect();
    let (root, tree) = Jmt::new(reader)
        .put_value_set(values, version)
        .map_err(|e| StateError::Tree { version, reason: format!("{e:#}") })?;
    Ok(WriteSet { version, root: StateRoot(Hash32(root.0)), changes, tree })
}

/// An in-memory JMT store: for tests, simulations and the node's unit tests. Not pruned.
#[derive(Clone, Debug, Default)]
pub struct MemStore {
    nodes: BTreeMap<NodeKey, Node>,
    values: BTreeMap<KeyHash, BTreeMap<Version, Option<OwnedValue>>>,
    preimages: BTreeMap<KeyHash, StateKey>,
    latest: Option<Version>,
}

impl MemStore {
    /// An empty store (before genesis).
    pub fn new() -> Self {
        Self::default()
    }

    /// Persists a write set (what the node does in one RocksDB batch).
    pub fn apply(&mut self, ws: &WriteSet) {
        for (k, n) in ws.tree.node_batch.nodes() {
            self.nodes.insert(k.clone(), n.clone());
        }
        for ((version, key_hash), value) in ws.tree.node_batch.values() {
            self.values.entry(*key_hash).or_default().insert(*version, value.clone());
        }
        for (k, _) in &ws.changes {
            self.preimages.insert(k.key_hash(), *k);
        }
        self.latest = Some(ws.version);
    }

    /// The newest version written, `None` before genesis.
    pub fn latest_version(&self) -> Option<Version> {
        self.latest
    }

    /// A read view of `version`.
    pub fn snapshot(&self, version: Version) -> Snapshot<'_, Self> {
        Snapshot::new(self, version)
    }

    /// Number of tree nodes held (all versions).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

impl TreeReader for MemStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.get(node_key).cloned())
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self.values.get(&key_hash).and_then(|h| h.range(..=max_version).next_back()).and_then(|(_, v)| v.clone()))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only used when restoring a tree from a snapshot, which the in-memory store never does.
        let mut best: Option<(NodeKey, LeafNode)> = None;
        for (k, n) in &self.nodes {
            if let Node::Leaf(leaf) = n {
                if best.as_ref().is_none_or(|(_, b)| leaf.key_hash() > b.key_hash()) {
                    best = Some((k.clone(), leaf.clone()));
                }
            }
        }
        Ok(best)
    }
}

impl HasPreimage for MemStore {
    fn preimage(&self, key_hash: KeyHash) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.preimages.get(&key_hash).map(canonical_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(n: u8) -> AccountId {
        AccountId(Hash32([n; 32]))
    }

    fn put(store: &MemStore, version: Version, items: &[(u8, u64)]) -> WriteSet {
        let changes = items
            .iter()
            .map(|(n, sats)| {
                let a = Account { balance: Amount::from_sat(*sats), nonce: 0 };
                (StateKey::Account(acct(*n)), Some(canonical_bytes(&a)))
            })
            .collect();
        build_write_set(store, version, changes).unwrap()
    }

    #[test]
    fn root_does_not_depend_on_insertion_order() {
        let items: Vec<(u8, u64)> = (1..=20).map(|n| (n, u64::from(n) * 7)).collect();
        let mut reversed = items.clone();
        reversed.reverse();
        let a = put(&MemStore::new(), 0, &items);
        let b = put(&MemStore::new(), 0, &reversed);
        assert_eq!(a.root, b.root);
        // Two blocks of halves reach the same root as one block with everything.
        let mut s = MemStore::new();
        let first = put(&s, 0, &reversed[..10]);
        s.apply(&first);
        let second = put(&s, 1, &reversed[10..]);
        assert_eq!(second.root, a.root);
    }

    #[test]
    fn reads_see_the_asked_version_and_proofs_verify() {
        let mut s = MemStore::new();
        let ws0 = put(&s, 0, &[(1, 100)]);
        s.apply(&ws0);
        let ws1 = put(&s, 1, &[(1, 50), (2, 50)]);
        s.apply(&ws1);
        assert_eq!(s.snapshot(0).get_account(&acct(1)).unwrap().unwrap().balance, Amount::from_sat(100));
        assert_eq!(s.snapshot(0).get_account(&acct(2)).unwrap(), None);
        let (a, proof) = s.snapshot(1).prove_account(&acct(2)).unwrap();
        let a = a.unwrap();
        assert_eq!(proof.verify_account(ws1.root, &acct(2), Some(&a)), Ok(()));
        let wrong = Account { balance: Amount::from_sat(51), ..a };
        assert!(proof.verify_account(ws1.root, &acct(2), Some(&wrong)).is_err());
        assert!(proof.verify_account(ws0.root, &acct(2), Some(&a)).is_err());
        // Exclusion proof for an account that does not exist.
        let (none, proof) = s.snapshot(1).prove_account(&acct(3)).unwrap();
        assert_eq!(none, None);
        assert_eq!(proof.verify_account(ws1.root, &acct(3), None), Ok(()));
        assert_eq!(s.snapshot(1).root().unwrap(), ws1.root);
        // Raw proofs work for any table.
        let (raw, proof) = s.snapshot(1).prove(&StateKey::Account(acct(1))).unwrap();
        let key = StateKey::Account(acct(1));
        assert_eq!(proof.verify(ws1.root, &key, raw.as_deref()), Ok(()));
        assert!(proof.verify(ws1.root, &key, None).is_err());
        assert!(matches!(s.snapshot(7).root(), Err(StateError::MissingVersion { version: 7, .. })));
    }

    #[test]
    fn corrupt_value_is_an_error() {
        let mut s = MemStore::new();
        let ws = build_write_set(&s, 0, vec![(StateKey::Account(acct(1)), Some(vec![1, 2]))]).unwrap();
        s.apply(&ws);
        assert!(matches!(s.snapshot(0).get_account(&acct(1)), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn table_tags_are_stable() {
        assert_eq!(canonical_bytes(&StateKey::Account(acct(1)))[0], 0);
        assert_eq!(canonical_bytes(&StateKey::ChainMeta), vec![1]);
        assert_eq!(canonical_bytes(&StateKey::PegCursor), vec![17]);
        assert_eq!(canonical_bytes(&StateKey::FrostSession(7))[..2], [18, 7]);
        assert_ne!(fee_pool_id(), acct(0));
    }
}
