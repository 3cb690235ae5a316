//! The genesis: the chain's identity, first validator set, parameters and (test networks only) initial
//! balances. Its hash is in every signature, so a transaction or vote of one chain is void on another.
//!
//! Invariant owned here: a [`Chain`] can only be built from a genesis that passed [`Genesis::validate`];
//! everything downstream (execution, mempool) takes a `&Chain` and may rely on it.

use crate::block::BtcAnchor;
use crate::codec;
use crate::state::{build_write_set, fee_pool_id, Account, ChainMeta, StateError, StateKey, WriteSet};
use bitcoin::Amount;
use borsh::{BorshDeserialize, BorshSerialize};
use jmt::storage::TreeReader;
use primitives::{canonical_bytes, tagged_hash, AccountId, Hash32, Height, PublicKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

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
    /// Balances at genesis. **Test networks only**: on a real chain the list is empty and all supply
    /// comes from peg-ins; the reserves check counts these balances as supply all the same, so a
    /// non-empty list shows up as a reserve deficit.
    #[serde(default)]
    pub initial_accounts: Vec<InitialAccount>,
}

/// One validator of the genesis set.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GenesisValidator {
    /// ed25519 key signing proposals and votes.
    pub consensus_key: PublicKey,
    /// secp256k1 key (compressed) of the federation multisig.
    #[borsh(serialize_with = "codec::peg_key::serialize", deserialize_with = "codec::peg_key::deserialize")]
    pub peg_key: bitcoin::PublicKey,
    /// Where peers reach it, a libp2p multiaddr such as `/ip4/127.0.0.1/tcp/26656`.
    pub p2p_addr: String,
    /// Voting power, at least 1.
    pub power: u64,
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
}

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
    BadFederation(String),
}

/// The federation's signing threshold for `n` peg keys: the consensus quorum `n - f` with
/// `f = (n - 1) / 3` (2f+1 when n = 3f+1): f lost keys cannot freeze the wallet, f bad ones cannot spend.
pub fn federation_threshold(n: usize) -> usize {
    n - n.saturating_sub(1) / 3
}

impl Genesis {
    /// `tagged_hash("sidechain/genesis", canonical_bytes(genesis))`.
    pub fn hash(&self) -> Hash32 {
        tagged_hash(GENESIS_TAG, &[&canonical_bytes(self)])
    }

    /// Checks everything a node relies on; the first problem found is returned.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let id_ok = !self.chain_id.is_empty()
            && self.chain_id.len() <= MAX_CHAIN_ID_LEN
            && self.chain_id.bytes().all(|b| b.is_ascii_graphic());
        if !id_ok {
            return Err(GenesisError::BadChainId(self.chain_id.clone()));
        }
        self.validate_validators()?;
        self.params.validate()?;
        self.validate_accounts()
    }

    fn validate_validators(&self) -> Result<(), GenesisError> {
        if self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        let max = usize::from(u16::MAX);
        if self.validators.len() > max {
            return Err(GenesisError::TooManyValidators { count: self.validators.len(), max });
        }
        let mut total: u64 = 0;
        for (index, v) in self.validators.iter().enumerate() {
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
            for (first, w) in self.validators[..index].iter().enumerate() {
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
        Ok(())
    }
}

/// A validated genesis with its hash computed once. Execution and mempool checks take a `&Chain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    genesis: Genesis,
    genesis_hash: Hash32,
    federation: peg::Federation,
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
        let federation = peg::Federation::new(federation_threshold(keys.len()), keys)
            .map_err(|e| GenesisError::BadFederation(e.to_string()))?;
        let rate = bitcoin::FeeRate::from_sat_per_vb(genesis.params.pegin_fee_rate_sat_vb).ok_or_else(|| {
            GenesisError::BadParam {
                name: "pegin_fee_rate_sat_vb",
                value: genesis.params.pegin_fee_rate_sat_vb.to_string(),
                why: "overflows",
            }
        })?;
        let pegin_fee =
            peg::pegin_fee(federation.descriptor(), rate).map_err(|e| GenesisError::BadFederation(e.to_string()))?;
        let deposit_input_vbytes =
            peg::input_vbytes(federation.descriptor()).map_err(|e| GenesisError::BadFederation(e.to_string()))?;
        // `validate` checked the sum stays within 21 million BTC.
        let genesis_supply = genesis.initial_accounts.iter().map(|a| a.balance).sum();
        Ok(Chain { genesis, genesis_hash, federation, pegin_fee, deposit_input_vbytes, genesis_supply })
    }

    /// The federation wallet: `wsh(sortedmulti(k, K_1..K_n))` over the validators' peg keys, k = n - f.
    pub fn federation(&self) -> &peg::Federation {
        &self.federation
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
    pub fn genesis_hash(&self) -> &Hash32 {
        &self.genesis_hash
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.genesis.params
    }

    /// The state at genesis (version 0) as a write set over an empty store: the initial accounts and
    /// the chain meta (height 0, genesis time, genesis anchor).
    pub fn genesis_state<R: TreeReader>(&self, empty: &R) -> Result<WriteSet, StateError> {
        let meta =
            ChainMeta { height: Height(0), time_ms: self.genesis.genesis_time_ms, btc_anchor: self.genesis.btc_anchor };
        let mut changes: Vec<(StateKey, Option<Vec<u8>>)> = self
            .genesis
            .initial_accounts
            .iter()
            .map(|a| {
                let acct = Account { balance: a.balance, nonce: 0 };
                (StateKey::Account(a.account), Some(canonical_bytes(&acct)))
            })
            .collect();
        changes.push((StateKey::ChainMeta, Some(canonical_bytes(&meta))));
        changes.push((StateKey::PegTotals, Some(canonical_bytes(&crate::pegin::genesis_totals(self)))));
        changes.sort_by_key(|c| c.0);
        build_write_set(empty, 0, changes)
    }
}

#[cfg(test)]
mod tests;
