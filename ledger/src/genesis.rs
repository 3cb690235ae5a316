//! The genesis: the chain's identity, first validator set, parameters and (test networks only) initial
//! balances. Its hash is in every signature, so a transaction or vote of one chain is void on another.
//!
//! Invariant owned here: a [`Chain`] can only be built from a genesis that passed [`Genesis::validate`];
//! everything downstream (execution, mempool) takes a `&Chain` and may rely on it.
//!
//! It sits low (every rule reads the parameters), above only the validator types ([`crate::validators`]) and
//! the state's fee-pool id; the first state, which needs the federation and peg records, is written above
//! it by [`crate::genesis_state`].

use crate::btc_anchor::BtcAnchor;
use crate::codec;
use crate::state::fee_pool_id;
use crate::validators::FederationEpoch;
pub use crate::validators::GenesisValidator;
use bitcoin::Amount;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{canonical_bytes, tagged_hash, AccountId, GenesisHash, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub mod custody;
pub use custody::GenesisCustody;

/// Tag of the genesis hash.
pub const GENESIS_TAG: &str = "sidechain/genesis";
/// Longest accepted chain id.
pub const MAX_CHAIN_ID_LEN: usize = 64;

/// The genesis document (JSON or TOML on disk; borsh for its hash).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Genesis {
    /// Human-readable chain name, e.g. `fedpeg-regtest-1`.
    pub chain_id: String,
    /// Time of genesis; the first block's time must be later.
    pub genesis_time_ms: u64,
    /// The Bitcoin block the federation starts watching from; the first anchor may not go below it.
    pub btc_anchor: BtcAnchor,
    /// The validator set; a validator's `ValidatorIndex` is its position in this list.
    pub validators: Vec<GenesisValidator>,
    /// Protocol parameters.
    #[serde(default)]
    pub params: Params,
    /// The emergency keys of the federation wallet (see [`EmergencyKeys`]); `None` makes a plain k-of-n
    /// wallet, which a real federation should not run: losing n - k + 1 peg keys would freeze every BTC.
    #[serde(default)]
    pub emergency: Option<EmergencyKeys>,
    /// Balances at genesis. **Test networks only**: on a real chain the list is empty and all supply
    /// comes from peg-ins; the reserves check counts these balances as supply all the same, so a
    /// non-empty list shows up as a reserve deficit.
    #[serde(default)]
    pub initial_accounts: Vec<InitialAccount>,
    /// How the federation holds BTC (wsh unless the genesis says taproot). The last field on purpose: the
    /// wsh wallet writes no byte of it ([`custody::codec`]), so older genesis files keep their hash.
    #[serde(default)]
    #[borsh(serialize_with = "custody::codec::serialize", deserialize_with = "custody::codec::deserialize")]
    pub custody: GenesisCustody,
}

/// The emergency path of every federation wallet: `threshold` of `keys` may spend a federation output once
/// it is `delay` Bitcoin blocks deep. The keys are held offline, apart from the validators; the federation
/// refreshes its outputs `Params::refresh_margin` blocks before they reach the delay, so the path opens only
/// if the federation stops working. It stays the same across federation changes.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct EmergencyKeys {
    /// Signatures an emergency spend needs.
    pub threshold: u32,
    /// The emergency keys (compressed secp256k1).
    #[borsh(serialize_with = "codec::peg_keys::serialize", deserialize_with = "codec::peg_keys::deserialize")]
    pub keys: Vec<bitcoin::PublicKey>,
    /// BIP68 relative lock in Bitcoin blocks (1 to 65535; Liquid uses 4032, four weeks).
    pub delay: u32,
}

impl EmergencyKeys {
    /// As the peg crate takes it.
    pub fn recovery(&self) -> peg::Recovery {
        peg::Recovery { threshold: self.threshold as usize, keys: self.keys.clone(), delay: self.delay }
    }
}

/// A genesis balance (a table rather than a tuple so TOML can write it as `[[initial_accounts]]`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct InitialAccount {
    /// The account.
    pub account: AccountId,
    /// Its balance.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub balance: Amount,
}

/// Protocol parameters. Peg parameters are placeholders until the peg is implemented; their defaults
/// are what a test network should use.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    /// Largest encoded size of a block's transactions, in bytes.
    pub block_max_bytes: u32,
    /// Most transactions in a block.
    pub block_max_txs: u32,
    /// Smallest fee of a user transaction.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub min_fee: Amount,
    /// Confirmations (N) a Bitcoin block needs before it can be an anchor.
    pub pegin_confirmations: u32,
    /// Most Bitcoin blocks an anchor may advance in one sidechain block.
    pub max_anchor_step: u32,
    /// A peg-out batch is built every this many sidechain blocks.
    pub pegout_interval: u64,
    /// Bitcoin blocks before an unconfirmed batch is fee-bumped.
    pub pegout_bump_after: u32,
    /// Smallest deposit that is minted.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub pegin_min_amount: Amount,
    /// Smallest peg-out.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub pegout_min_amount: Amount,
    /// Blocks a deposit registration stays live (renewed by every mint to it).
    pub registration_ttl: u64,
    /// BTC fee rate (sat/vB) the peg-in fee is charged at: the fee is the cost of spending one deposit
    /// input at this rate. The floor of the agreed peg-out rate once validators vote on it.
    pub pegin_fee_rate_sat_vb: u64,
    /// Whether `PegOut` burns are accepted (on by default; a federation may start a chain with peg-outs
    /// off, e.g. until its members have funded the fee pool).
    pub pegout_enabled: bool,
    /// A fee-rate vote counts towards the agreed rate for this many blocks after the block that carried it.
    pub fee_vote_max_age: u64,
    /// With emergency keys: a federation output is refreshed (swept to the federation again) once the
    /// anchor is this many Bitcoin blocks short of its emergency delay. Must leave time for the sweep to
    /// be signed, confirmed and anchored.
    pub refresh_margin: u32,
    /// Fewest sidechain blocks between the block that accepts a federation change and the height it takes
    /// effect at: time for the new validators to connect and for operators to see it coming.
    pub federation_change_min_lead: u64,
    /// Sidechain blocks after a federation change during which deposits to the previous wallet's addresses
    /// are still watched and minted by the proposers; after it, they come in through `claimpegin`.
    pub deposit_window: u64,
    /// Least fee of a `RegisterDeposit` (to the fee pool, as any fee). A registration grows state, the
    /// watchers' script lists and their rescans, so it is never free; an account with no balance pegs in
    /// through `claimpegin` instead, which needs no registration.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub registration_fee: Amount,
    /// Circuit breaker: the most that payout batches built within `pegout_limit_window` BTC blocks (by their
    /// block's anchor height) may pay to burners. Burns past it wait in the queue; a burn above it is refused.
    #[borsh(serialize_with = "codec::amount::serialize", deserialize_with = "codec::amount::deserialize")]
    pub pegout_limit: Amount,
    /// The breaker's rolling window in BTC blocks; 0 turns the breaker off (`pegout_limit` is then unused).
    pub pegout_limit_window: u32,
}

/// Most BTC blocks the peg-out limit's window may span (four weeks): bounds what the window keeps in state.
pub const MAX_PEGOUT_LIMIT_WINDOW: u32 = 4032;

impl Default for Params {
    fn default() -> Self {
        Params {
            block_max_bytes: 4 * 1024 * 1024,
            block_max_txs: 10_000,
            min_fee: Amount::from_sat(100),
            pegin_confirmations: 6,
            max_anchor_step: 10,
            pegout_interval: 10,
            pegout_bump_after: 3,
            pegin_min_amount: Amount::from_sat(10_000),
            pegout_min_amount: Amount::from_sat(10_000),
            registration_ttl: 10_000,
            pegin_fee_rate_sat_vb: 2,
            pegout_enabled: true,
            fee_vote_max_age: 100,
            refresh_margin: 144,
            federation_change_min_lead: 5,
            deposit_window: 1_000,
            registration_fee: Amount::from_sat(1_000),
            pegout_limit: Amount::from_int_btc(10),
            pegout_limit_window: 144,
        }
    }
}

/// Why a genesis was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// Empty, too long, or not printable ASCII.
    #[error("chain id {0:?} must be 1 to 64 printable ascii characters")]
    BadChainId(String),
    /// No validators.
    #[error("genesis has no validators")]
    NoValidators,
    /// More validators than a `ValidatorIndex` can number.
    #[error("{count} validators, at most {max}")]
    TooManyValidators {
        /// How many.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A consensus key that is not an ed25519 point.
    #[error("validator {index}: consensus key {key} is not a valid ed25519 key")]
    BadConsensusKey {
        /// Position in the list.
        index: usize,
        /// The key.
        key: PublicKey,
    },
    /// An uncompressed peg key.
    #[error("validator {index}: peg key must be compressed")]
    UncompressedPegKey {
        /// Position in the list.
        index: usize,
    },
    /// Two validators with one consensus key.
    #[error("validators {first} and {second} share consensus key {key}")]
    DuplicateConsensusKey {
        /// Earlier position.
        first: usize,
        /// Later position.
        second: usize,
        /// The key.
        key: PublicKey,
    },
    /// Two validators with one peg key.
    #[error("validators {first} and {second} share peg key {key}")]
    DuplicatePegKey {
        /// Earlier position.
        first: usize,
        /// Later position.
        second: usize,
        /// The key.
        key: bitcoin::PublicKey,
    },
    /// Power zero.
    #[error("validator {index} has zero power")]
    ZeroPower {
        /// Position in the list.
        index: usize,
    },
    /// Total power does not fit a u64.
    #[error("total validator power overflows u64")]
    PowerOverflow,
    /// Empty p2p address.
    #[error("validator {index} has an empty p2p address")]
    EmptyP2pAddr {
        /// Position in the list.
        index: usize,
    },
    /// A parameter out of range.
    #[error("parameter {name} = {value} is invalid: {why}")]
    BadParam {
        /// Field name.
        name: &'static str,
        /// Its value, printed.
        value: String,
        /// The rule.
        why: &'static str,
    },
    /// An account listed twice.
    #[error("initial account {0} listed twice")]
    DuplicateAccount(AccountId),
    /// The fee pool cannot be given a genesis balance.
    #[error("initial account {0} is the fee pool")]
    FeePoolAccount(AccountId),
    /// Zero balance.
    #[error("initial account {0} has a zero balance")]
    ZeroBalance(AccountId),
    /// Initial supply above 21 million BTC.
    #[error("initial supply exceeds 21 million btc")]
    SupplyTooLarge,
    /// The peg keys do not make a federation wallet.
    #[error("the validators' peg keys do not make a federation wallet: {0}")]
    BadFederation(#[from] peg::FederationError),
    /// The wallet's spending figures (input size, peg-in fee) cannot be worked out.
    #[error("the validators' peg keys do not make a federation wallet: {0}")]
    FederationFigures(#[from] peg::PegError),
    /// A taproot genesis whose DKG transcript does not make the federation's FROST group.
    #[error("taproot custody: {0}")]
    BadTranscript(#[from] custody::TranscriptError),
    /// A federation change on a taproot chain: the new set's key generation on chain is not built yet, and
    /// a change must never leave the coins with a key nobody generated.
    #[error("a taproot federation cannot change its members yet (its new key generation is not built)")]
    TaprootChangeNotSupported,
}

/// The federation's signing threshold for `n` peg keys: the consensus quorum `n - f` with
/// `f = (n - 1) / 3` (2f+1 when n = 3f+1): f lost keys cannot freeze the wallet, f bad ones cannot spend.
pub fn federation_threshold(n: usize) -> usize {
    n - n.saturating_sub(1) / 3
}

impl Genesis {
    /// `tagged_hash("sidechain/genesis", canonical_bytes(genesis))`.
    pub fn hash(&self) -> GenesisHash {
        GenesisHash(tagged_hash(GENESIS_TAG, &[&canonical_bytes(self)]))
    }

    /// Checks everything a node relies on; the first problem found is returned.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let id_ok = !self.chain_id.is_empty()
            && self.chain_id.len() <= MAX_CHAIN_ID_LEN
            && self.chain_id.bytes().all(|b| b.is_ascii_graphic());
        if !id_ok {
            return Err(GenesisError::BadChainId(self.chain_id.clone()));
        }
        validate_validator_list(&self.validators)?;
        self.params.validate()?;
        if let Some(e) = &self.emergency {
            if e.delay <= self.params.refresh_margin || self.params.refresh_margin <= self.params.pegin_confirmations {
                return Err(GenesisError::BadParam {
                    name: "refresh_margin",
                    value: self.params.refresh_margin.to_string(),
                    why: "above pegin_confirmations and below the emergency delay",
                });
            }
        }
        self.validate_accounts()
    }

    fn validate_accounts(&self) -> Result<(), GenesisError> {
        let mut seen = BTreeSet::new();
        let mut supply = Amount::ZERO;
        for a in &self.initial_accounts {
            if a.account == fee_pool_id() {
                return Err(GenesisError::FeePoolAccount(a.account));
            }
            if !seen.insert(a.account) {
                return Err(GenesisError::DuplicateAccount(a.account));
            }
            if a.balance == Amount::ZERO {
                return Err(GenesisError::ZeroBalance(a.account));
            }
            supply = supply
                .checked_add(a.balance)
                .filter(|s| *s <= Amount::MAX_MONEY)
                .ok_or(GenesisError::SupplyTooLarge)?;
        }
        Ok(())
    }
}

/// Checks a validator list (the genesis set or a proposed federation): not empty, at most `u16::MAX`,
/// valid and distinct consensus keys, compressed and distinct peg keys, non-zero power that sums within a
/// u64, a p2p address each.
pub fn validate_validator_list(validators: &[GenesisValidator]) -> Result<(), GenesisError> {
    if validators.is_empty() {
        return Err(GenesisError::NoValidators);
    }
    let max = usize::from(u16::MAX);
    if validators.len() > max {
        return Err(GenesisError::TooManyValidators { count: validators.len(), max });
    }
    let mut total: u64 = 0;
    for (index, v) in validators.iter().enumerate() {
        if ed25519_dalek::VerifyingKey::from_bytes(&v.consensus_key.0).is_err() {
            return Err(GenesisError::BadConsensusKey { index, key: v.consensus_key });
        }
        if !v.peg_key.compressed {
            return Err(GenesisError::UncompressedPegKey { index });
        }
        if v.power == 0 {
            return Err(GenesisError::ZeroPower { index });
        }
        if v.p2p_addr.trim().is_empty() {
            return Err(GenesisError::EmptyP2pAddr { index });
        }
        total = total.checked_add(v.power).ok_or(GenesisError::PowerOverflow)?;
        for (first, w) in validators[..index].iter().enumerate() {
            if w.consensus_key == v.consensus_key {
                return Err(GenesisError::DuplicateConsensusKey { first, second: index, key: v.consensus_key });
            }
            if w.peg_key.inner == v.peg_key.inner {
                return Err(GenesisError::DuplicatePegKey { first, second: index, key: v.peg_key });
            }
        }
    }
    Ok(())
}

impl Params {
    /// Range checks.
    pub fn validate(&self) -> Result<(), GenesisError> {
        fn bad(name: &'static str, value: impl ToString, why: &'static str) -> GenesisError {
            GenesisError::BadParam { name, value: value.to_string(), why }
        }
        if self.block_max_bytes < 1024 {
            return Err(bad("block_max_bytes", self.block_max_bytes, "at least 1024"));
        }
        if self.block_max_txs == 0 {
            return Err(bad("block_max_txs", self.block_max_txs, "at least 1"));
        }
        if self.min_fee > Amount::MAX_MONEY {
            return Err(bad("min_fee", self.min_fee, "at most 21 million btc"));
        }
        if self.pegin_confirmations == 0 {
            return Err(bad("pegin_confirmations", 0, "at least 1"));
        }
        if self.max_anchor_step == 0 {
            return Err(bad("max_anchor_step", 0, "at least 1"));
        }
        if self.pegout_interval == 0 {
            return Err(bad("pegout_interval", 0, "at least 1"));
        }
        if self.pegout_bump_after == 0 {
            return Err(bad("pegout_bump_after", 0, "at least 1"));
        }
        if self.registration_ttl < 2 {
            return Err(bad("registration_ttl", self.registration_ttl, "at least 2"));
        }
        if self.pegin_fee_rate_sat_vb > 10_000 {
            return Err(bad("pegin_fee_rate_sat_vb", self.pegin_fee_rate_sat_vb, "at most 10000"));
        }
        if self.fee_vote_max_age == 0 {
            return Err(bad("fee_vote_max_age", 0, "at least 1"));
        }
        if self.refresh_margin == 0 {
            return Err(bad("refresh_margin", 0, "at least 1"));
        }
        if self.federation_change_min_lead < 2 {
            return Err(bad("federation_change_min_lead", self.federation_change_min_lead, "at least 2"));
        }
        if self.registration_fee < self.min_fee.max(Amount::ONE_SAT) || self.registration_fee > Amount::MAX_MONEY {
            return Err(bad(
                "registration_fee",
                self.registration_fee,
                "at least min_fee and 1 sat, at most 21 million btc",
            ));
        }
        if self.pegout_limit_window > MAX_PEGOUT_LIMIT_WINDOW {
            return Err(bad("pegout_limit_window", self.pegout_limit_window, "at most 4032 (0 turns the limit off)"));
        }
        if self.pegout_limit_window > 0
            && (self.pegout_limit < self.pegout_min_amount || self.pegout_limit > Amount::MAX_MONEY)
        {
            return Err(bad(
                "pegout_limit",
                self.pegout_limit,
                "at least pegout_min_amount (no burn could ever be paid), at most 21 million btc",
            ));
        }
        Ok(())
    }
}

/// A validated genesis with its hash computed once. Execution and mempool checks take a `&Chain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// Shared: a genesis may list many test accounts, and nodes clone the chain into every task.
    genesis: std::sync::Arc<Genesis>,
    genesis_hash: GenesisHash,
    federation: peg::Federation,
    /// Taproot custody: the genesis federation's FROST group, computed from the genesis transcript.
    frost_group: Option<std::sync::Arc<peg::frost::PublicKeyPackage>>,
    pegin_fee: Amount,
    deposit_input_vbytes: u64,
    genesis_supply: Amount,
}

impl Chain {
    /// Validates `genesis` and hashes it.
    pub fn new(genesis: Genesis) -> Result<Self, GenesisError> {
        genesis.validate()?;
        let genesis_hash = genesis.hash();
        let keys: Vec<bitcoin::PublicKey> = genesis.validators.iter().map(|v| v.peg_key).collect();
        let threshold = federation_threshold(keys.len());
        let frost_group = genesis.custody.group(&keys, threshold)?;
        let federation = wallet_of(&genesis, threshold, keys, frost_group.as_ref())?;
        let rate = bitcoin::FeeRate::from_sat_per_vb(genesis.params.pegin_fee_rate_sat_vb).ok_or_else(|| {
            GenesisError::BadParam {
                name: "pegin_fee_rate_sat_vb",
                value: genesis.params.pegin_fee_rate_sat_vb.to_string(),
                why: "overflows",
            }
        })?;
        let deposit_input_vbytes = peg::fee::planned_input_vbytes(&federation)?;
        let pegin_fee = rate
            .fee_vb(deposit_input_vbytes)
            .ok_or(peg::PegError::FeeOverflow { vbytes: deposit_input_vbytes, rate })?;
        // `validate` checked the sum stays within 21 million BTC.
        let genesis_supply = genesis.initial_accounts.iter().map(|a| a.balance).sum();
        Ok(Chain {
            genesis: std::sync::Arc::new(genesis),
            genesis_hash,
            federation,
            frost_group: frost_group.map(std::sync::Arc::new),
            pegin_fee,
            deposit_input_vbytes,
            genesis_supply,
        })
    }

    /// The genesis federation wallet (epoch 0): `wsh(sortedmulti(k, K_1..K_n))` over the genesis validators'
    /// peg keys, k = n - f, with the emergency branch if the genesis has emergency keys; with taproot
    /// custody the `tr()` wallet of the genesis DKG's group key ([`GenesisCustody`]). The wallet of a later
    /// epoch is [`Chain::wallet`].
    pub fn genesis_wallet(&self) -> &peg::Federation {
        &self.federation
    }

    /// The wallet of federation epoch `epoch`: its validators' peg keys at its threshold, with this chain's
    /// emergency branch.
    pub fn wallet(&self, epoch: &FederationEpoch) -> Result<peg::Federation, GenesisError> {
        if epoch.epoch == 0 {
            return Ok(self.federation.clone());
        }
        if self.frost_group.is_some() {
            return Err(GenesisError::TaprootChangeNotSupported);
        }
        let keys = epoch.validators.iter().map(|v| v.peg_key).collect();
        wallet_of(&self.genesis, epoch.peg_threshold as usize, keys, None)
    }

    /// The FROST group of federation epoch `epoch` (taproot custody; `None` for the wsh wallet).
    pub fn frost_group(&self, epoch: &FederationEpoch) -> Option<&peg::frost::PublicKeyPackage> {
        match epoch.epoch {
            0 => self.frost_group.as_deref(),
            _ => None,
        }
    }

    /// The peg-in fee at `sat_per_vb` for a deposit to `wallet`: the cost of spending one of its deposit
    /// inputs at that rate, never below the genesis floor ([`Chain::pegin_fee`]).
    pub fn pegin_fee_in(&self, wallet: &peg::Federation, sat_per_vb: u64) -> Amount {
        let vbytes = peg::fee::planned_input_vbytes(wallet).unwrap_or(self.deposit_input_vbytes);
        let fee = Amount::from_sat(vbytes.saturating_mul(sat_per_vb));
        fee.min(Amount::MAX_MONEY).max(self.pegin_fee)
    }

    /// The peg-in fee at the chain's floor rate (`pegin_fee_rate_sat_vb`): one deposit input's size at it.
    /// What a mint charges is [`Chain::pegin_fee_at`] the agreed rate, never less than this.
    pub fn pegin_fee(&self) -> Amount {
        self.pegin_fee
    }

    /// The peg-in fee at `sat_per_vb`: the cost of spending one deposit input at that rate.
    pub fn pegin_fee_at(&self, sat_per_vb: u64) -> Amount {
        let fee = Amount::from_sat(self.deposit_input_vbytes.saturating_mul(sat_per_vb));
        fee.min(Amount::MAX_MONEY).max(self.pegin_fee)
    }

    /// The balances the genesis created (test networks only; zero on a real chain): supply no BTC backs.
    pub fn genesis_supply(&self) -> Amount {
        self.genesis_supply
    }

    /// The genesis document.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Its hash.
    pub fn genesis_hash(&self) -> &GenesisHash {
        &self.genesis_hash
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.genesis.params
    }
}

/// The wallet over `keys` at `threshold`, with the genesis's emergency branch if it has one: taproot over
/// `group` when there is one, `wsh` otherwise.
///
/// A taproot wallet is planned for the key path (one FROST signature an input); a batch that gives the key
/// path up is planned for the leaf from then on ([`crate::frost_records::batch_wallet`]).
fn wallet_of(
    genesis: &Genesis,
    threshold: usize,
    keys: Vec<bitcoin::PublicKey>,
    group: Option<&peg::frost::PublicKeyPackage>,
) -> Result<peg::Federation, GenesisError> {
    let recovery = genesis.emergency.as_ref().map(EmergencyKeys::recovery);
    let built = match (group, recovery) {
        (Some(group), recovery) => peg::Federation::taproot(group, threshold, keys, recovery),
        (None, Some(r)) => peg::Federation::with_recovery(threshold, keys, r),
        (None, None) => peg::Federation::new(threshold, keys),
    };
    Ok(built?)
}

#[cfg(test)]
mod tests;
