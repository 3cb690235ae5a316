//! The BFT consensus core: Tendermint (Buchman, Kwon, Milosevic 2018) as a pure state machine.
//!
//! It owns the safety of finality: no two honest validators decide different blocks at one height. It does
//! no IO, reads no clock and draws no randomness; the host feeds it inputs and carries out its outputs.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub use primitives::{Height, Round, ValidatorIndex};
