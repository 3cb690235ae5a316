//! The state of taproot batches' key-path signing (issue 23): each batch's session record, the wallet its
//! next version is planned with, the session restored from state (what execution runs a message through and
//! what a signer reads its packages from), and the Bitcoin transaction of a signed version. The rules that
//! change it are in [`crate::frost_signing`].

use crate::batch_records::BatchRecord;
use crate::error::TxError;
use crate::frost_tx::FrostTxError;
use crate::genesis::Chain;
use crate::state::{StateError, StateKey, StateReader};
use crate::validators::FederationEpoch;
use bitcoin::hashes::Hash as _;
use borsh::{BorshDeserialize, BorshSerialize};
use peg::frost::session::{Session, SessionRules, Snapshot, SnapshotState};
use peg::frost::wire::{COMMITMENTS_BYTES, SHARE_BYTES};

/// Blocks each phase of an attempt stays open (commitments from the attempt's start, shares from the block
/// that fixed the signers).
pub const FROST_PHASE_BLOCKS: u64 = 6;

/// The session rules for a wallet of `n` peg keys at threshold `k`: [`FROST_PHASE_BLOCKS`] a phase and
/// `n - k + 2` attempts.
pub fn session_rules(n: usize, k: usize) -> SessionRules {
    let attempts = n.saturating_sub(k).saturating_add(2);
    SessionRules { timeout: FROST_PHASE_BLOCKS, max_attempts: u32::try_from(attempts).unwrap_or(u32::MAX) }
}

/// Where a session is ([`SnapshotState`] in state).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum SessionStage {
    /// Collecting commitments.
    Committing = 0,
    /// Collecting the chosen signers' shares.
    Sharing = 1,
    /// Signed: one BIP340 signature per input.
    Signed(Vec<[u8; 64]>) = 2,
    /// The key path was given up.
    FallBack = 3,
}

/// The key-path signing of a taproot batch (`StateKey::FrostSession`): its current session, and whether
/// the batch fell back to the leaf.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct FrostSessionRecord {
    /// The version the session signs.
    #[borsh(
        serialize_with = "crate::codec::btc_hash::serialize",
        deserialize_with = "crate::codec::btc_hash::deserialize"
    )]
    pub version: bitcoin::Txid,
    /// The batch gave up the key path: this version and every later one are signed in the leaf.
    pub fell_back: bool,
    /// The current attempt.
    pub attempt: u32,
    /// The height the current phase started at.
    pub phase_started: u64,
    /// The attempt's commitments in arrival order: (signer, one per input).
    pub commitments: Vec<(u16, Vec<[u8; COMMITMENTS_BYTES]>)>,
    /// The attempt's checked shares: (signer, one per input).
    pub shares: Vec<(u16, Vec<[u8; SHARE_BYTES]>)>,
    /// Signers excluded from this batch.
    pub excluded: Vec<u16>,
    /// Where the session is.
    pub stage: SessionStage,
}

impl FrostSessionRecord {
    /// A new session for `version`, opened at `height`.
    pub(crate) fn open(version: bitcoin::Txid, height: u64) -> Self {
        FrostSessionRecord {
            version,
            fell_back: false,
            attempt: 0,
            phase_started: height,
            commitments: Vec::new(),
            shares: Vec::new(),
            excluded: Vec::new(),
            stage: SessionStage::Committing,
        }
    }

    /// Drops what a finished session no longer needs (its last attempt's commitments and shares): the
    /// record stays small in state once the version is signed or given up.
    pub(crate) fn trim(&mut self) {
        self.commitments.clear();
        self.shares.clear();
    }

    /// As the peg crate's session takes it.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            attempt: self.attempt,
            phase_started: self.phase_started,
            commitments: wide(&self.commitments),
            shares: wide(&self.shares),
            excluded: self.excluded.iter().map(|s| usize::from(*s)).collect(),
            state: match &self.stage {
                SessionStage::Committing => SnapshotState::Committing,
                SessionStage::Sharing => SnapshotState::Sharing,
                SessionStage::Signed(s) => SnapshotState::Signed(s.clone()),
                SessionStage::FallBack => SnapshotState::FallBack,
            },
        }
    }

    /// Takes `snapshot`'s progress (signer indices fit a `u16`: they are positions in a validator list).
    pub(crate) fn update(&mut self, snapshot: Snapshot) {
        self.attempt = snapshot.attempt;
        self.phase_started = snapshot.phase_started;
        self.commitments = narrow(snapshot.commitments);
        self.shares = narrow(snapshot.shares);
        self.excluded = snapshot.excluded.into_iter().map(|s| s as u16).collect();
        self.stage = match snapshot.state {
            SnapshotState::Committing => SessionStage::Committing,
            SnapshotState::Sharing => SessionStage::Sharing,
            SnapshotState::Signed(s) => SessionStage::Signed(s),
            SnapshotState::FallBack => SessionStage::FallBack,
        };
    }
}

fn wide<T: Clone>(v: &[(u16, Vec<T>)]) -> Vec<(usize, Vec<T>)> {
    v.iter().map(|(s, x)| (usize::from(*s), x.clone())).collect()
}

fn narrow<T>(v: Vec<(usize, Vec<T>)>) -> Vec<(u16, Vec<T>)> {
    v.into_iter().map(|(s, x)| (s as u16, x)).collect()
}

/// The key-path signing record of batch `id`, if it is a taproot batch whose signing was opened.
pub fn frost_session<S: StateReader>(state: &S, id: u64) -> Result<Option<FrostSessionRecord>, StateError> {
    crate::batch_records::read(state, StateKey::FrostSession(id))
}

/// The wallet batch `id`'s next version is planned with: the epoch's wallet, planned for the leaf once the
/// batch fell back from the key path.
pub fn batch_wallet<S: StateReader>(
    chain: &Chain,
    state: &S,
    epoch: &FederationEpoch,
    id: u64,
) -> Result<peg::Federation, TxError> {
    let wallet = chain.wallet(epoch).map_err(TxError::wallet)?;
    if chain.frost_group(epoch).is_some() && frost_session(state, id)?.is_some_and(|s| s.fell_back) {
        return Ok(wallet.planned_for(peg::SpendPath::Leaf));
    }
    Ok(wallet)
}

/// The session of `record`'s current version in `epoch`, brought to `stored`'s progress: what execution
/// runs a message through, and what a signer reads its signing packages from.
pub fn restore_session(
    chain: &Chain,
    epoch: &FederationEpoch,
    record: &BatchRecord,
    stored: &FrostSessionRecord,
) -> Result<Session, FrostTxError> {
    let id = record.id;
    let group = chain.frost_group(epoch).ok_or(FrostTxError::NotKeyPath(id))?;
    if stored.fell_back || stored.version != record.txid {
        return Err(FrostTxError::NotKeyPath(id));
    }
    let wallet = chain.wallet(epoch).map_err(|_| FrostTxError::KeyPath(id))?;
    let tx = record.unsigned().map_err(|_| FrostTxError::KeyPath(id))?;
    let batch = peg::key_path::KeyPathBatch::new(&wallet, *chain.genesis_hash().as_bytes(), &tx, &record.peg_inputs())
        .map_err(|_| FrostTxError::KeyPath(id))?;
    let rules = session_rules(epoch.validators.len(), epoch.peg_threshold as usize);
    Session::restore(record.txid.to_byte_array(), group.clone(), rules, batch.inputs().to_vec(), &stored.snapshot())
        .map_err(|source| FrostTxError::Session { batch: id, source })
}

/// Why a signed batch version could not be finished into a Bitcoin transaction.
#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    /// The version's unsigned transaction cannot be rebuilt from committed state.
    #[error("cannot rebuild the unsigned transaction: {0}")]
    Unsigned(#[from] StateError),
    /// The recorded shares do not combine into a valid transaction.
    #[error("cannot combine the shares: {0}")]
    Shares(#[from] peg::shares::ShareError),
    /// The key-path signatures do not make a valid transaction.
    #[error("cannot finish the key-path spend: {0}")]
    KeyPath(#[from] peg::key_path::KeyPathError),
    /// A key-path signature that is not 64 bytes of BIP340.
    #[error("a recorded key-path signature is not a BIP340 signature")]
    BadKeyPathSignature,
}

/// The Bitcoin transaction of `version` of batch `id` (signed: see [`BatchVersion::is_signed`]) over
/// `wallet`: the key-path spend from the group's share, or the leaf (or wsh) witnesses from the signers'
/// shares. Checked by Bitcoin's interpreter either way.
///
/// [`BatchVersion::is_signed`]: crate::batch_records::BatchVersion::is_signed
pub fn finalize_version(
    chain: &Chain,
    wallet: &peg::Federation,
    id: u64,
    version: &crate::batch_records::BatchVersion,
) -> Result<bitcoin::Transaction, FinalizeError> {
    let unsigned = version.unsigned(id)?;
    let genesis = *chain.genesis_hash().as_bytes();
    let inputs = crate::batch_records::to_peg_inputs(&version.inputs);
    if let Some(signatures) = version.key_path_signatures() {
        let signatures = signatures
            .iter()
            .map(|s| bitcoin::taproot::Signature::from_slice(s).map_err(|_| FinalizeError::BadKeyPathSignature))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(peg::key_path::KeyPathBatch::new(wallet, genesis, &unsigned, &inputs)?.finalize(&signatures)?);
    }
    let secp = bitcoin::secp256k1::Secp256k1::verification_only();
    let shares: Vec<peg::shares::Share> = version
        .shares
        .iter()
        .map(|(v, s)| peg::shares::Share { signer: v.as_usize(), signatures: s.clone() })
        .collect();
    Ok(peg::shares::finalize_batch(&secp, wallet, genesis, &unsigned, &inputs, &shares)?)
}

/// Refuses a leaf share for a taproot version that is signed by key path (see the module docs).
pub fn check_leaf_share_allowed<S: StateReader>(
    state: &S,
    chain: &Chain,
    epoch: &FederationEpoch,
    record: &BatchRecord,
) -> Result<(), TxError> {
    if chain.frost_group(epoch).is_none() {
        return Ok(());
    }
    match frost_session(state, record.id)? {
        Some(s) if s.fell_back && s.version != record.txid => Ok(()),
        _ => Err(FrostTxError::LeafShareOnKeyPath(record.id).into()),
    }
}
