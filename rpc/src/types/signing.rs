//! This validator's signing breakers (`getblockchaininfo.signing`, `pausesigning`, `resumesigning`).
//!
//! Why in the node status: a validator that withholds its peg signature shares (paused by its operator, or
//! refusing a batch its own state does not justify) still votes and proposes, so nothing else shows it;
//! operators and the dashboard must see it at a glance. Local to this node, not consensus.

use primitives::schema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One batch version this validator refuses to sign.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RefusalInfo {
    /// The batch id.
    pub batch: u64,
    /// The refused version's Bitcoin txid (as `bitcoin-cli` shows it).
    #[schemars(with = "schema::BtcHash")]
    pub btc_txid: String,
    /// The reason as a stable name (`unknown_script`, `burn_paid_twice`, `wrong_amount`, `fee_above_bound`,
    /// `reserve_short`, ...).
    pub kind: String,
    /// The reason for people.
    pub reason: String,
}

/// The signing breakers of this node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SigningInfo {
    /// An operator paused this validator's peg signing (`pausesigning`): it releases no signature share
    /// until `resumesigning`. Kept across restarts.
    pub paused: bool,
    /// Since when, milliseconds since the Unix epoch (null: not paused).
    pub paused_since_ms: Option<u64>,
    /// Batch versions the share-time check refused since the node started.
    pub refusals: u64,
    /// The versions it refuses now, with why.
    pub refused: Vec<RefusalInfo>,
}
