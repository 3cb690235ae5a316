//! The bridge: the node half of the peg, between the Bitcoin follower and the event loop.
//!
//! - [`duties`]: what this validator adds to blocks and objects to in others' ([`PegDuties`]);
//! - [`signing`]: which peg-out batch versions it signs and which k shares complete ([`BatchSigner`]);
//! - [`frost`]: its FROST commitments and shares for taproot key-path signing, and its nonce store.
//!
//! Both read committed state and the follower's snapshot and return what they want done; neither reaches
//! back into the service. (Named `bridge` rather than `peg` so the `peg` crate keeps its name in paths.)

pub mod duties;
pub mod frost;
mod objection;
pub mod signing;

pub use duties::{FollowerLinks, PegDuties, PegSummary};
pub use objection::BlockObjection;
pub use signing::BatchSigner;
