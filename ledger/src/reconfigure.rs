//! A federation change as a transaction carries it: the proposed set ([`FederationProposal`]), the members'
//! approvals ([`Approval`]) and the transaction ([`ReconfigureTx`]).
//!
//! Why apart from `federation.rs`: a block's transactions ([`crate::tx::Tx::Reconfigure`]) carry changes, and
//! the federation state is read from the state, which stores transactions' records. As part of
//! `federation.rs` these plain types made transactions, state and federation need one another; here they
//! need only the validator type. Checking a proposal ([`crate::federation::check_proposal`]) and applying
//! one stay above. `crate::federation::*` re-exports them.

use crate::validators::GenesisValidator;
use borsh::{BorshDeserialize, BorshSerialize};
use primitives::{canonical_bytes, tagged_hash, GenesisHash, Height, SignDomain, Signature, TxId, ValidatorIndex};
use serde::{Deserialize, Serialize};

/// Tag of a federation change's id.
pub const RECONFIGURE_TXID_TAG: &str = "sidechain/reconfigure-txid";

/// A proposed federation: who validates from `activation_height` on, and the wallet threshold.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct FederationProposal {
    /// The new validator list.
    pub validators: Vec<GenesisValidator>,
    /// Signatures the new wallet needs (`2f+1 <= k <= n - f` for the new n).
    pub peg_threshold: u32,
    /// The first height the new set decides.
    pub activation_height: Height,
}

impl FederationProposal {
    /// What an approval signs besides the domain and the genesis hash: `borsh((epoch, proposal))`, with
    /// `epoch` the number of the federation epoch in force whose member approves. Binding the epoch makes an
    /// approval worthless once that epoch is over: a change approved (or merely signed) under epoch `e` cannot
    /// be replayed under `e + 1`, even when the new set kept the same keys at the same indices.
    pub fn approval_body(&self, epoch: u32) -> Vec<u8> {
        let mut body = epoch.to_le_bytes().to_vec();
        body.extend(canonical_bytes(self));
        body
    }

    /// The exact bytes an approval under `epoch` signs (domain `FederationChange`, this chain's genesis
    /// hash, then [`Self::approval_body`]).
    pub fn signing_bytes(&self, genesis_hash: &GenesisHash, epoch: u32) -> Vec<u8> {
        primitives::signing_bytes(SignDomain::FederationChange, genesis_hash, &self.approval_body(epoch))
    }

    /// A validator's approval with its consensus key, as a member of epoch `epoch` (the one in force).
    pub fn approve(
        &self,
        validator: ValidatorIndex,
        epoch: u32,
        key: &primitives::Keypair,
        genesis_hash: &GenesisHash,
    ) -> Approval {
        let signature = key.sign(SignDomain::FederationChange, genesis_hash, &self.approval_body(epoch));
        Approval { validator, epoch, signature }
    }
}

/// One validator's signature on a proposal.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct Approval {
    /// Its index in the set in force.
    pub validator: ValidatorIndex,
    /// The epoch in force when it approved (signed): valid only while that epoch is in force.
    pub epoch: u32,
    /// By its consensus key, over [`FederationProposal::signing_bytes`] for `epoch`.
    pub signature: Signature,
}

/// A federation change with the approvals of 2f+1 (by power) of the set in force. Not signed as a whole:
/// the approvals are its authority, so any node may relay it and any proposer include it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
pub struct ReconfigureTx {
    /// The change.
    pub proposal: FederationProposal,
    /// Approvals by distinct validators of the set in force.
    pub approvals: Vec<Approval>,
}

impl ReconfigureTx {
    /// `tagged_hash("sidechain/reconfigure-txid", borsh(tx))`.
    pub fn txid(&self) -> TxId {
        TxId(tagged_hash(RECONFIGURE_TXID_TAG, &[&canonical_bytes(self)]))
    }
}
