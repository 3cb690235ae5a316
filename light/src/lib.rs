//! A light client: what a wallet checks so that it need not trust the node it asks.
//!
//! It starts from what the user already trusts, the genesis file (or a checkpoint: a height and the hash of
//! its block), and follows the header chain forward. Every header must name this chain, sit on the previous
//! one, and carry a commit certificate signed by more than two thirds of the validator set that decides its
//! height. A state entry (a balance, a peg-in record, a burn) is then believed only with a Jellyfish Merkle
//! proof against the state root of a header followed this way. Pure: the caller fetches header ranges
//! (`getheaders`) and proofs, and this crate judges them; a lie is a [`LightError`] naming what failed.
//!
//! **Where validator sets come from.** A federation change is a `Reconfigure` transaction; executing it
//! writes the `Federation` state entry (every epoch so far and the change pending), and the set switches at
//! the change's activation height, at least `federation_change_min_lead` blocks after the block that
//! accepted it. So the federation state after height `t` fixes the set of every height up to `t +
//! federation_change_min_lead` ([`ledger::FederationState::deciding`]), and headers carry, at least every
//! `federation_change_min_lead` heights, the `Federation` entry after them, proved against their own state
//! root: the client refuses a header further than that from the last entry it checked. Proving the entry
//! rather than shipping the `Reconfigure` transactions also proves absence: a node that hides a change
//! cannot make the client keep trusting the old set, because the certified state says the change is there.

use consensus::{CertificateError, CommitCertificate, ValidatorSet, ValidatorSetError};
use ledger::{BlockHeader, Chain, FederationEpoch, FederationState, ProofError, StateKey, StateProof};
use primitives::{BlockId, GenesisHash, Height, StateRoot};
use std::collections::BTreeMap;

#[cfg(test)]
mod tests;

/// A header with the commit certificate that made its block final, and perhaps the federation after it.
#[derive(Clone, Debug, PartialEq)]
pub struct CertifiedHeader {
    /// The header.
    pub header: BlockHeader,
    /// 2f+1 precommits for its hash.
    pub commit: CommitCertificate,
    /// The `Federation` entry after this block, proved against its state root (needed at least every
    /// `federation_change_min_lead` headers).
    pub federation: Option<ProvedValue>,
}

/// A state entry's value (`None`: the entry does not exist) with its proof against some state root.
#[derive(Clone, Debug, PartialEq)]
pub struct ProvedValue {
    /// borsh of the value.
    pub value: Option<Vec<u8>>,
    /// The Jellyfish Merkle proof of the value (or of its absence).
    pub proof: StateProof,
}

/// Consecutive certified headers (none when the node has nothing past the client's tip).
#[derive(Clone, Debug, PartialEq)]
pub struct HeaderRange {
    /// Headers, lowest first.
    pub headers: Vec<CertifiedHeader>,
}

/// Why an answer was not believed. Each names the height and the part that failed.
#[derive(Debug, thiserror::Error)]
pub enum LightError {
    /// A header of another chain.
    #[error("header {height}: belongs to chain {got}, not {expected}")]
    WrongChain {
        /// The header's height.
        height: Height,
        /// This chain's genesis hash.
        expected: GenesisHash,
        /// The genesis hash the header names.
        got: GenesisHash,
    },
    /// Headers must come in order, each the one after the client's tip.
    #[error("expected header {expected}, got header {got}")]
    NotNext {
        /// The height the client needs next.
        expected: Height,
        /// The height that came.
        got: Height,
    },
    /// The header does not sit on the previous one.
    #[error("header {height}: its parent is {got}, but the header followed at height {} is {expected}", height.get() - 1)]
    NotLinked {
        /// The header's height.
        height: Height,
        /// The hash of the previous header.
        expected: BlockId,
        /// The parent the header names.
        got: BlockId,
    },
    /// Block times strictly increase.
    #[error("header {height}: time {got_ms} ms is not after its parent's {parent_ms} ms")]
    TimeNotIncreasing {
        /// The header's height.
        height: Height,
        /// The parent's time.
        parent_ms: u64,
        /// The header's time.
        got_ms: u64,
    },
    /// The certificate decides another block.
    #[error("header {height}: its commit certificate is for height {cert_height}, block {cert_block}, not this header ({header_hash})")]
    CommitForOther {
        /// The header's height.
        height: Height,
        /// The certificate's height.
        cert_height: Height,
        /// The block the certificate decides.
        cert_block: BlockId,
        /// The header's hash.
        header_hash: BlockId,
    },
    /// The certificate does not carry 2f+1 valid precommits of the set deciding the height.
    #[error("header {height}: commit certificate: {source}")]
    Certificate {
        /// The header's height.
        height: Height,
        /// What the certificate check found.
        #[source]
        source: CertificateError,
    },
    /// The federation state names a validator set consensus cannot use.
    #[error("height {height}: the proved federation's validator set is unusable: {source}")]
    BadValidatorSet {
        /// The height it would decide.
        height: Height,
        /// Why.
        #[source]
        source: ValidatorSetError,
    },
    /// A header too far from the last proved federation entry to know the set that decides it.
    #[error(
        "header {height}: the last proved federation entry is from height {known_at}; a set is known only \
             {max} heights past it"
    )]
    FederationMissing {
        /// The header's height.
        height: Height,
        /// The height of the last proved federation entry.
        known_at: Height,
        /// `federation_change_min_lead`.
        max: u64,
    },
    /// The federation entry's proof fails against the last header's state root.
    #[error("header {height}: federation entry: {source}")]
    FederationProof {
        /// The header whose state root it was checked against.
        height: Height,
        /// The tree's verdict.
        #[source]
        source: ProofError,
    },
    /// The proved federation entry does not decode (or lists no epoch).
    #[error("header {height}: the proved federation entry does not decode")]
    FederationUndecodable {
        /// The header whose state it is.
        height: Height,
    },
    /// A checkpoint header whose hash is not the trusted one.
    #[error("checkpoint {height}: the node's header hashes to {got}, the trusted hash is {expected}")]
    CheckpointMismatch {
        /// The checkpoint's height.
        height: Height,
        /// The trusted hash.
        expected: BlockId,
        /// The served header's hash.
        got: BlockId,
    },
    /// A proof at a height the client has not followed (or the genesis, whose root it does not know).
    #[error("no certified header at height {height} (followed up to {tip})")]
    UnknownHeight {
        /// The height asked for.
        height: Height,
        /// The client's tip.
        tip: Height,
    },
    /// A transaction's branch does not lead to the certified transaction root.
    #[error("block {height}: transaction {index} of {count} ({txid}) is not under the certified transaction root")]
    TxNotIncluded {
        /// The block.
        height: Height,
        /// Its position, as the node says.
        index: u32,
        /// The block's transaction count, as the node says.
        count: u32,
        /// The transaction's id, computed from its bytes.
        txid: primitives::TxId,
    },
    /// A transaction whose bytes also read as another kind with the same id: which one the block holds
    /// cannot be told from the root.
    #[error("block {height}: transaction {txid} reads as more than one kind of transaction")]
    AmbiguousTx {
        /// The block.
        height: Height,
        /// The id.
        txid: primitives::TxId,
    },
    /// A state entry's proof fails against the certified state root.
    #[error("state at height {height}: {source}")]
    EntryProof {
        /// The header whose state root it was checked against.
        height: Height,
        /// The tree's verdict.
        #[source]
        source: ProofError,
    },
}

/// The consensus validator set of a federation epoch (what the node's consensus uses, by construction).
pub fn consensus_set(epoch: &FederationEpoch) -> Result<ValidatorSet, ValidatorSetError> {
    ValidatorSet::new(epoch.validators.iter().map(|v| (v.consensus_key, v.power)).collect())
}

/// The header chain as far as the client has checked it.
#[derive(Clone, Debug)]
pub struct LightClient {
    genesis_hash: GenesisHash,
    /// `federation_change_min_lead`: the longest range one federation entry vouches for.
    max_range: u64,
    tip: Height,
    tip_hash: BlockId,
    /// The tip's time (none at genesis).
    tip_time_ms: Option<u64>,
    /// The federation as last proved.
    federation: FederationState,
    /// The height whose state `federation` is (it fixes the sets up to `max_range` past it).
    federation_at: Height,
    /// The genesis federation: what an absent `Federation` entry means (no change ever).
    genesis_federation: FederationState,
    /// Every header checked so far (a wallet's session is short; a long-lived client would keep a window).
    headers: BTreeMap<Height, BlockHeader>,
}

impl LightClient {
    /// A client at the genesis of `chain` (read from the genesis file the user trusts).
    pub fn from_genesis(chain: &Chain) -> Self {
        LightClient {
            genesis_hash: *chain.genesis_hash(),
            max_range: chain.params().federation_change_min_lead,
            tip: Height(0),
            tip_hash: chain.genesis_hash().as_block_id(),
            tip_time_ms: None,
            federation: FederationState::genesis(chain),
            federation_at: Height(0),
            genesis_federation: FederationState::genesis(chain),
            headers: BTreeMap::new(),
        }
    }

    /// A client at a trusted checkpoint: the block at `height` whose hash is `hash`. `range` is the node's
    /// answer to `getheaders(height, 1)`; its header must hash to `hash` (its certificate is not needed: the
    /// hash is trusted), and its federation entry (which it must carry), proved against that header, gives the
    /// sets that follow.
    pub fn from_checkpoint(
        chain: &Chain,
        height: Height,
        hash: BlockId,
        range: HeaderRange,
    ) -> Result<Self, LightError> {
        let mut client = Self::from_genesis(chain);
        let Some(first) = range.headers.first() else {
            return Err(LightError::UnknownHeight { height, tip: Height(0) });
        };
        let header = &first.header;
        if header.height != height {
            return Err(LightError::NotNext { expected: height, got: header.height });
        }
        if header.hash() != hash {
            return Err(LightError::CheckpointMismatch { height, expected: hash, got: header.hash() });
        }
        if header.genesis_hash != client.genesis_hash {
            return Err(LightError::WrongChain { height, expected: client.genesis_hash, got: header.genesis_hash });
        }
        let entry = first.federation.as_ref().ok_or(LightError::FederationMissing {
            height,
            known_at: Height(0),
            max: client.max_range,
        })?;
        client.federation = proved_federation(&client.genesis_federation, header, entry)?;
        client.federation_at = height;
        client.accept(header.clone());
        Ok(client)
    }

    /// The genesis hash of the chain followed.
    pub fn genesis_hash(&self) -> &GenesisHash {
        &self.genesis_hash
    }

    /// The height of the last header checked (0: only the genesis).
    pub fn tip(&self) -> Height {
        self.tip
    }

    /// The time of the last header checked, milliseconds since the Unix epoch (none at genesis).
    pub fn tip_time_ms(&self) -> Option<u64> {
        self.tip_time_ms
    }

    /// `federation_change_min_lead`: how far past a proved federation entry the sets are known.
    pub fn max_range(&self) -> u64 {
        self.max_range
    }

    /// The federation as last proved (its epochs and any change pending).
    pub fn federation(&self) -> &FederationState {
        &self.federation
    }

    /// A header checked so far.
    pub fn header(&self, height: Height) -> Option<&BlockHeader> {
        self.headers.get(&height)
    }

    /// Checks `range` as the headers after the tip and moves the tip to its last header. All or nothing: on
    /// an error the client is unchanged. Returns how many headers it added.
    pub fn extend(&mut self, range: &HeaderRange) -> Result<usize, LightError> {
        let mut next = self.clone();
        for certified in &range.headers {
            let height = certified.header.height;
            next.check_chain(&certified.header)?;
            if height.get() > next.federation_at.get().saturating_add(next.max_range) {
                return Err(LightError::FederationMissing {
                    height,
                    known_at: next.federation_at,
                    max: next.max_range,
                });
            }
            next.check_commit(certified)?;
            if let Some(entry) = &certified.federation {
                next.federation = proved_federation(&self.genesis_federation, &certified.header, entry)?;
                next.federation_at = height;
            }
            next.accept(certified.header.clone());
        }
        *self = next;
        Ok(range.headers.len())
    }

    /// Checks that `key` holds `value` (`None`: no entry) in the state after the certified header at
    /// `height`, by `proof`.
    pub fn verify_entry(
        &self,
        height: Height,
        key: &StateKey,
        value: Option<&[u8]>,
        proof: &StateProof,
    ) -> Result<(), LightError> {
        let root = self.state_root(height)?;
        proof.verify(root, key, value).map_err(|source| LightError::EntryProof { height, source })
    }

    /// Checks that `tx` is transaction `index` of the `count` in the certified block at `height`, by
    /// `branch` (sibling hashes up to the transaction root, as `ledger::tx_branch` makes them).
    pub fn verify_tx(
        &self,
        height: Height,
        index: u32,
        count: u32,
        tx: &ledger::Tx,
        branch: &[primitives::Hash32],
    ) -> Result<(), LightError> {
        let header = self.headers.get(&height).ok_or(LightError::UnknownHeight { height, tip: self.tip })?;
        let txid = tx.txid();
        if ledger::txid_is_ambiguous(tx) {
            return Err(LightError::AmbiguousTx { height, txid });
        }
        match ledger::tx_root_from_branch(txid, index as usize, count as usize, branch) {
            Some(root) if root == header.tx_root => Ok(()),
            _ => Err(LightError::TxNotIncluded { height, index, count, txid }),
        }
    }

    /// The certified state root after `height`.
    pub fn state_root(&self, height: Height) -> Result<StateRoot, LightError> {
        self.headers.get(&height).map(|h| h.state_root).ok_or(LightError::UnknownHeight { height, tip: self.tip })
    }

    /// Chain, height, parent and time against the tip.
    fn check_chain(&self, header: &BlockHeader) -> Result<(), LightError> {
        let height = header.height;
        if header.genesis_hash != self.genesis_hash {
            return Err(LightError::WrongChain { height, expected: self.genesis_hash, got: header.genesis_hash });
        }
        if height != self.tip.next() {
            return Err(LightError::NotNext { expected: self.tip.next(), got: height });
        }
        if header.prev_hash != self.tip_hash {
            return Err(LightError::NotLinked { height, expected: self.tip_hash, got: header.prev_hash });
        }
        if let Some(parent_ms) = self.tip_time_ms.filter(|p| header.time_ms <= *p) {
            return Err(LightError::TimeNotIncreasing { height, parent_ms, got_ms: header.time_ms });
        }
        Ok(())
    }

    /// The certificate decides this header and carries 2f+1 of the set deciding its height.
    fn check_commit(&self, certified: &CertifiedHeader) -> Result<(), LightError> {
        let (header, commit) = (&certified.header, &certified.commit);
        let height = header.height;
        let header_hash = header.hash();
        if commit.height != height || commit.value != header_hash {
            return Err(LightError::CommitForOther {
                height,
                cert_height: commit.height,
                cert_block: commit.value,
                header_hash,
            });
        }
        let set = consensus_set(self.federation.deciding(height))
            .map_err(|source| LightError::BadValidatorSet { height, source })?;
        commit.verify(&set, &self.genesis_hash, height).map_err(|source| LightError::Certificate { height, source })
    }

    fn accept(&mut self, header: BlockHeader) {
        self.tip = header.height;
        self.tip_hash = header.hash();
        self.tip_time_ms = Some(header.time_ms);
        self.headers.insert(header.height, header);
    }
}

/// The federation after `header`, from its proved entry (absent: the genesis federation, never changed).
fn proved_federation(
    genesis: &FederationState,
    header: &BlockHeader,
    entry: &ProvedValue,
) -> Result<FederationState, LightError> {
    let height = header.height;
    entry
        .proof
        .verify(header.state_root, &StateKey::Federation, entry.value.as_deref())
        .map_err(|source| LightError::FederationProof { height, source })?;
    let Some(bytes) = &entry.value else { return Ok(genesis.clone()) };
    match borsh::from_slice::<FederationState>(bytes) {
        Ok(fs) if !fs.epochs.is_empty() => Ok(fs),
        _ => Err(LightError::FederationUndecodable { height }),
    }
}
