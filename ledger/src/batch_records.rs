//! Peg-out batches as state records: each batch with its versions and inputs, the index of batches in
//! flight, the spendable federation outputs, and their readers; [`Candidate`], a spendable output as batch
//! builders see it.
//!
//! Why apart from `batching.rs`: the overlay keeps the spendable set decoded ([`crate::overlay::Overlay`]),
//! and the coin rules ([`crate::economic`]) read it, while `batching.rs` builds and settles batches on top of
//! both. Inside `batching.rs` the records made the overlay, the coin rules and batching need one another.
//! `crate::batching::*` re-exports them.

use crate::state::{StateError, StateKey, StateReader};
use crate::tx::BtcOutPoint;
use bitcoin::Amount;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{AccountId, Hash32, Height};
use serde::{Deserialize, Serialize};

/// One input of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BatchInputRecord {
    /// The federation output spent.
    pub outpoint: BtcOutPoint,
    /// Its value.
    #[borsh(
        serialize_with = "crate::codec::amount::serialize",
        deserialize_with = "crate::codec::amount::deserialize"
    )]
    pub amount: Amount,
    /// Whose deposit tweak the keys need (`None`: the plain, untweaked script).
    pub tweak: Option<AccountId>,
}

/// What a batch is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    /// Pays queued burns.
    Payout,
    /// Moves outputs that near the emergency delay back to the federation, restarting their clock.
    Refresh,
    /// Moves an earlier epoch's outputs to the wallet in force after a federation change.
    Sweep,
}

/// A batch: which burns it pays and the unsigned transaction that pays them.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BatchRecord {
    /// Sequence number, from 0.
    pub id: u64,
    /// Payout, refresh or sweep.
    pub kind: BatchKind,
    /// The federation epoch whose wallet holds every input (whose keys sign).
    pub epoch: u32,
    /// Signatures that wallet needs.
    pub signers_needed: u32,
    /// The epoch whose wallet the change output pays (the one in force when the batch was built).
    pub change_epoch: u32,
    /// The block that built it.
    pub created_at: Height,
    /// The burns it pays, in output order.
    pub burns: Vec<u64>,
    /// The inputs, in transaction order.
    pub inputs: Vec<BatchInputRecord>,
    /// Change back to the federation (the last output), if any.
    #[borsh(
        serialize_with = "crate::codec::option_amount::serialize",
        deserialize_with = "crate::codec::option_amount::deserialize"
    )]
    pub change: Option<Amount>,
    /// The Bitcoin fee, paid by the fee pool.
    #[borsh(
        serialize_with = "crate::codec::amount::serialize",
        deserialize_with = "crate::codec::amount::deserialize"
    )]
    pub fee: Amount,
    /// Upper bound of the signed size the fee was priced on.
    pub vbytes: u64,
    /// The unsigned transaction, consensus-encoded.
    pub unsigned_tx: Vec<u8>,
    /// Its txid.
    #[borsh(
        serialize_with = "crate::codec::btc_hash::serialize",
        deserialize_with = "crate::codec::btc_hash::deserialize"
    )]
    #[serde(with = "crate::codec::btc_hash_json")]
    pub txid: bitcoin::Txid,
    /// Verified signature shares for this version, by signer (position in the epoch's validator list), in
    /// the order they were recorded.
    pub shares: Vec<(primitives::ValidatorIndex, Vec<Vec<u8>>)>,
    /// The anchor height of the block that recorded this version's k-th share: the bump clock.
    pub signed_at_anchor: Option<primitives::BtcHeight>,
    /// Earlier versions, oldest first. Each spends a subset of the inputs of every later one.
    pub earlier: Vec<BatchVersion>,
    /// The agreed fee rate (sat/vB) this version was priced at: the agreed rate when it was built or
    /// bumped, never below the previous version's; 0 reads as the chain's floor, as in
    /// [`crate::fee_rate::FeeRates`]. The share-time fee bound is taken against it (as well as the rate
    /// now), so a version an honest builder produced stays signable after the rate falls.
    #[serde(default)]
    pub priced_at_sat_vb: u64,
}

/// An earlier (fee-bumped) version of a batch, kept so it can still settle the batch if it is the one that
/// confirms, and so validators can keep broadcasting it until its successor is signed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BatchVersion {
    /// Its inputs, in transaction order.
    pub inputs: Vec<BatchInputRecord>,
    /// Its change, if any (the last output).
    #[borsh(
        serialize_with = "crate::codec::option_amount::serialize",
        deserialize_with = "crate::codec::option_amount::deserialize"
    )]
    pub change: Option<Amount>,
    /// Its Bitcoin fee.
    #[borsh(
        serialize_with = "crate::codec::amount::serialize",
        deserialize_with = "crate::codec::amount::deserialize"
    )]
    pub fee: Amount,
    /// Upper bound of its signed size.
    pub vbytes: u64,
    /// The unsigned transaction, consensus-encoded.
    pub unsigned_tx: Vec<u8>,
    /// Its txid.
    #[borsh(
        serialize_with = "crate::codec::btc_hash::serialize",
        deserialize_with = "crate::codec::btc_hash::deserialize"
    )]
    #[serde(with = "crate::codec::btc_hash_json")]
    pub txid: bitcoin::Txid,
    /// Its signature shares.
    pub shares: Vec<(primitives::ValidatorIndex, Vec<Vec<u8>>)>,
    /// The agreed fee rate it was priced at (see [`BatchRecord::priced_at_sat_vb`]).
    #[serde(default)]
    pub priced_at_sat_vb: u64,
}

/// The signer a key-path signature is recorded under in a version's `shares`: the FROST group of the batch's
/// wallet, whose one share (a 64-byte BIP340 signature per input) signs the version
/// ([`crate::frost_signing`]). No validator has this index (a list holds at most `u16::MAX` validators).
pub const GROUP_SIGNER: primitives::ValidatorIndex = primitives::ValidatorIndex(u16::MAX);

/// Most versions a batch may have (the first and its bumps): bounds what one batch keeps in state.
pub const MAX_BATCH_VERSIONS: usize = 8;

/// The relay increment every bump adds on top of the previous fee, per vbyte (Bitcoin Core's default
/// `incrementalrelayfee` of 1 sat/vB; later Core versions lowered it, so this satisfies both).
pub const INCREMENTAL_RELAY_SAT_VB: u64 = 1;

impl BatchRecord {
    /// The current version as a [`BatchVersion`].
    pub fn current_version(&self) -> BatchVersion {
        BatchVersion {
            inputs: self.inputs.clone(),
            change: self.change,
            fee: self.fee,
            vbytes: self.vbytes,
            unsigned_tx: self.unsigned_tx.clone(),
            txid: self.txid,
            shares: self.shares.clone(),
            priced_at_sat_vb: self.priced_at_sat_vb,
        }
    }

    /// Every version's txid, oldest first (the current one last).
    pub fn version_txids(&self) -> impl Iterator<Item = bitcoin::Txid> + '_ {
        self.earlier.iter().map(|v| v.txid).chain(std::iter::once(self.txid))
    }

    /// The version with `txid`, if it is one of this batch's.
    pub fn version(&self, txid: &bitcoin::Txid) -> Option<BatchVersion> {
        if *txid == self.txid {
            return Some(self.current_version());
        }
        self.earlier.iter().find(|v| v.txid == *txid).cloned()
    }

    /// How many times it was fee-bumped.
    pub fn bumps(&self) -> usize {
        self.earlier.len()
    }

    /// The unsigned transaction.
    pub fn unsigned(&self) -> Result<bitcoin::Transaction, StateError> {
        bitcoin::consensus::deserialize(&self.unsigned_tx)
            .map_err(|e| StateError::Corrupt { key: StateKey::Batch(self.id), reason: e.to_string() })
    }

    /// The inputs as the peg crate takes them.
    pub fn peg_inputs(&self) -> Vec<peg::BatchInput> {
        to_peg_inputs(&self.inputs)
    }

    /// The current version's signing as explorers show it: `"k/n"` shares of the signers needed, or
    /// `"key path"` once the FROST group signed it.
    pub fn signing_progress(&self) -> String {
        match self.current_version().key_path_signatures() {
            Some(_) => "key path".into(),
            None => format!("{}/{}", self.shares.len(), self.signers_needed),
        }
    }

    /// Whether the current version is signed: by key path (the group's share), or by enough signers'
    /// shares. It can be finalized and broadcast.
    pub fn is_signed(&self) -> bool {
        signed(&self.shares, self.signers_needed)
    }
}

/// Whether `shares` sign a version that needs `needed` signers' shares (or the group's one).
fn signed(shares: &[(primitives::ValidatorIndex, Vec<Vec<u8>>)], needed: u32) -> bool {
    shares.iter().any(|(s, _)| *s == GROUP_SIGNER) || shares.len() >= needed as usize
}

impl BatchVersion {
    /// Whether this version is signed, in a batch whose leaf or wsh versions need `needed` shares.
    pub fn is_signed(&self, needed: u32) -> bool {
        signed(&self.shares, needed)
    }

    /// The key-path signatures of this version, if the FROST group signed it.
    pub fn key_path_signatures(&self) -> Option<&[Vec<u8>]> {
        self.shares.iter().find(|(s, _)| *s == GROUP_SIGNER).map(|(_, sigs)| sigs.as_slice())
    }

    /// The unsigned transaction (`batch` names the record for the error).
    pub fn unsigned(&self, batch: u64) -> Result<bitcoin::Transaction, StateError> {
        bitcoin::consensus::deserialize(&self.unsigned_tx)
            .map_err(|e| StateError::Corrupt { key: StateKey::Batch(batch), reason: e.to_string() })
    }

    /// The inputs as the peg crate takes them.
    pub fn peg_inputs(&self) -> Vec<peg::BatchInput> {
        to_peg_inputs(&self.inputs)
    }
}

/// A plan's inputs as the ledger records them.
pub(crate) fn input_records(inputs: &[peg::BatchInput]) -> Vec<BatchInputRecord> {
    inputs
        .iter()
        .map(|i| BatchInputRecord {
            outpoint: BtcOutPoint::from_bitcoin(&i.outpoint),
            amount: i.amount,
            tweak: i.tweak.map(|t| AccountId(Hash32(t))),
        })
        .collect()
}

pub(crate) fn to_peg_inputs(inputs: &[BatchInputRecord]) -> Vec<peg::BatchInput> {
    inputs
        .iter()
        .map(|i| peg::BatchInput {
            outpoint: i.outpoint.to_bitcoin(),
            amount: i.amount,
            tweak: i.tweak.map(|t| t.0 .0),
        })
        .collect()
}

/// Batches in flight and the next id.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BatchIndex {
    /// The id the next batch gets.
    pub next_id: u64,
    /// Batches built and not yet settled, oldest first.
    pub in_flight: Vec<u64>,
}

/// Federation outputs no batch has reserved, sorted by outpoint: what the next batch may spend.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SpendableUtxos(pub Vec<BtcOutPoint>);

pub(crate) fn read<S: StateReader, T: BorshDeserialize>(state: &S, key: StateKey) -> Result<Option<T>, StateError> {
    state
        .get_raw(&key)?
        .map(|b| borsh::from_slice(&b).map_err(|e| StateError::Corrupt { key, reason: e.to_string() }))
        .transpose()
}

/// A batch by id.
pub fn batch<S: StateReader>(state: &S, id: u64) -> Result<Option<BatchRecord>, StateError> {
    read(state, StateKey::Batch(id))
}

/// The batch index (empty when never written).
pub fn batch_index<S: StateReader>(state: &S) -> Result<BatchIndex, StateError> {
    Ok(read(state, StateKey::BatchIndex)?.unwrap_or_default())
}

/// The spendable federation outputs (empty when never written).
pub fn spendable_utxos<S: StateReader>(state: &S) -> Result<SpendableUtxos, StateError> {
    Ok(read(state, StateKey::SpendableUtxos)?.unwrap_or_default())
}

/// A spendable federation output as batch builders see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// As the peg crate takes it.
    pub input: peg::BatchInput,
    /// The epoch whose wallet holds it.
    pub epoch: u32,
    /// The Bitcoin height it confirmed at (the emergency clock starts there).
    pub confirmed_at: primitives::BtcHeight,
}
