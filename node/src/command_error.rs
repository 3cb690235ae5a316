//! Why the event loop refused a [`Command`](crate::service::Command): one typed answer for everything an RPC
//! or a test asks the service to do. It sits below the service and the bridge, which both answer commands
//! with it.
//!
//! Why one enum: the RPC backend turns each variant into its own error (and so its JSON-RPC code) by
//! matching on it, never on the message; the messages stay what an operator or wallet user reads.

use crate::fed_pool::PoolError;
use crate::mempool::MempoolError;
use ledger::{BtcOutPoint, PegInRecord};

/// The service's refusal of a command.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The event loop is gone (the node is stopping).
    #[error("node is shutting down")]
    ShuttingDown,
    /// The mempool refused the transaction.
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// The ledger recorded the deposit already (minted, or held below the minimum).
    #[error(
        "deposit {}:{} was already minted at height {}",
        outpoint.txid,
        outpoint.vout,
        record.minted_at
    )]
    AlreadyMinted {
        /// The deposit.
        outpoint: BtcOutPoint,
        /// The ledger's record of it.
        record: Box<PegInRecord>,
    },
    /// The claim store did not keep the claim (already pending, rejected by our bitcoind, no room).
    #[error(transparent)]
    Claim(#[from] crate::claims::ClaimError),
    /// Only a validator votes to resume the peg.
    #[error("this node is not a validator")]
    NotAValidator,
    /// Only a validator of the set in force approves a federation change.
    #[error("this node is not a validator of the set in force")]
    NotInSetInForce,
    /// A resume vote while the peg runs.
    #[error("the peg is not halted")]
    PegNotHalted,
    /// The proposed federation is not acceptable.
    #[error(transparent)]
    Proposal(#[from] ledger::ProposalError),
    /// The federation pool did not take the change.
    #[error(transparent)]
    FederationPool(#[from] PoolError),
    /// The state could not be read (not a verdict on the request).
    #[error(transparent)]
    State(#[from] ledger::StateError),
}
