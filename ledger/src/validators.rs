//! Who validates: one validator ([`GenesisValidator`]) and a federation epoch ([`FederationEpoch`], a set of
//! them with its wallet threshold and first height).
//!
//! Why a module of its own, near the bottom: the genesis lists validators, [`crate::genesis::Chain::wallet`]
//! builds an epoch's wallet, federation changes propose a new set and the federation state keeps the epochs.
//! As parts of `genesis.rs` and `federation.rs` they made those two files need each other; as plain data
//! they need nothing of the crate but the codec. `crate::genesis::GenesisValidator` and
//! `crate::federation::FederationEpoch` re-export them.

use crate::codec;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{Height, PublicKey};
use serde::{Deserialize, Serialize};

/// One validator of the genesis set.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct GenesisValidator {
    /// ed25519 key signing proposals and votes.
    pub consensus_key: PublicKey,
    /// secp256k1 key (compressed) of the federation multisig.
    #[borsh(serialize_with = "codec::peg_key::serialize", deserialize_with = "codec::peg_key::deserialize")]
    #[cfg_attr(feature = "schemars", schemars(with = "primitives::schema::BtcPublicKey"))]
    pub peg_key: bitcoin::PublicKey,
    /// Where peers reach it, a libp2p multiaddr such as `/ip4/127.0.0.1/tcp/26656`.
    pub p2p_addr: String,
    /// Voting power, at least 1.
    pub power: u64,
}

/// One federation: its validators (consensus keys, peg keys, addresses, power) and its wallet threshold.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct FederationEpoch {
    /// 0 for the genesis set, then one more per change.
    pub epoch: u32,
    /// The validators; a `ValidatorIndex` in this epoch is a position in this list.
    pub validators: Vec<GenesisValidator>,
    /// Signatures the epoch's wallet needs.
    pub peg_threshold: u32,
    /// The first height this set decides.
    pub from_height: Height,
}

impl FederationEpoch {
    /// Total voting power.
    pub fn total_power(&self) -> u64 {
        self.validators.iter().map(|v| v.power).fold(0, u64::saturating_add)
    }

    /// Whether `power` is more than two thirds of the total (2f+1).
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power()) * 2
    }

    /// The position of the validator with peg key `key`.
    pub fn peg_signer(&self, key: &bitcoin::PublicKey) -> Option<usize> {
        self.validators.iter().position(|v| v.peg_key.inner == key.inner)
    }
}
