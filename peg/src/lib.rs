//! The peg: everything that touches Bitcoin.
//!
//! All of it is pure and deterministic, re-run by every node: federation descriptor, deposit tweaks,
//! deposit scanning of a block it is handed, batch building, signature-share checks, script verification.
//! The IO (the bitcoind client and the follower that polls it) lives in the node; what the pure rules need
//! from it comes through small traits such as [`watcher::DepositLookup`], so they are tested without a
//! bitcoind and the node's IO with a real one.
//!
//! Peg-in building blocks, all pure: [`deposit`] (recipient-bound addresses), [`watcher`] (which outputs of a
//! BTC block are deposits), [`anchor`] (when a validator accepts a new BTC anchor) and [`fee`] (the peg-in fee).
//!
//! Peg-out: [`batch`] builds the deterministic peg-out batch and its fee bumps; [`signing`] signs and finalizes it;
//! [`shares`] makes, checks (in block execution) and combines the validators' signature shares of a batch.
//!
//! [`funding`] is the single-key P2WPKH wallet core that pays BTC on regtest (test funding, `pegin --fund`).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod anchor;
pub mod batch;
pub mod deposit;
pub mod error;
pub mod federation;
pub mod fee;
pub mod frost;
pub mod funding;
pub mod key_path;
pub mod recovery;
pub mod shares;
pub mod signing;
pub mod taproot;
pub mod verify;
pub mod watcher;

/// The descriptor type of federation and deposit wallets.
pub type Descriptor = miniscript::Descriptor<bitcoin::PublicKey>;

pub use anchor::{check_anchor_move, check_in_best_chain, choose_anchor, AnchorRejection, BitcoinView};
pub use batch::{
    bump_batch, lone_payout_vbytes, output_vbytes, plan_batch, plan_sweep, BatchError, BatchInput, BatchLimits,
    BatchPlan, Payout,
};
pub use deposit::{tweak_secret, DepositTweak, DEPOSIT_TWEAK_TAG};
pub use error::PegError;
pub use federation::{Custody, Federation, FederationError, SpendPath};
pub use fee::{input_vbytes, input_weight, pegin_fee};
pub use funding::{Fee, FundingError, FundingKey, Utxo};
pub use recovery::{Recovery, MAX_RECOVERY_DELAY};
pub use shares::{finalize_batch, sign_batch, verify_share, PreparedBatch, Share, ShareError};
pub use signing::{finalize, sign_all_inputs, sign_input, FinalizeError, SignError};
pub use verify::{verify_spends, ScriptCheckError};
pub use watcher::{scan_block, scan_transactions, BlockScan, Deposit, DepositLookup, FederationOutput, ScriptMaps};

#[cfg(test)]
mod test_fixtures;
