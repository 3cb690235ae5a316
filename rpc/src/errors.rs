//! Every JSON-RPC error code this API returns, in one place, with the constructor that builds it.
//!
//! Why one module: a script that handles `-5` for "not found" must get `-5` from every method, and the
//! OpenRPC document and the tests name the same constants. Codes follow Bitcoin Core
//! (`src/rpc/protocol.h`) where Core has one, so tools written against Core read them the same way;
//! the JSON-RPC 2.0 codes (`-32700`..`-32600`) are produced by jsonrpsee itself for malformed requests.
//!
//! | code   | when |
//! |--------|------|
//! | -32700 | the body is not JSON, or not a JSON-RPC request object (jsonrpsee) |
//! | -32600 | an invalid request, e.g. an empty batch (jsonrpsee) |
//! | -32601 | unknown method (jsonrpsee) |
//! | -32602 | a parameter has the wrong JSON type or format, e.g. a hash that is not 64 hex digits (jsonrpsee; `data` says which) |
//! | -32603 | the node failed to read its own storage ([`BackendError`]) |
//! | -32010 | a batch longer than the configured limit (jsonrpsee) |
//! | -5     | `RPC_INVALID_ADDRESS_OR_KEY`: no block, transaction or commit with that hash/height is known |
//! | -8     | `RPC_INVALID_PARAMETER`: a well-formed parameter out of range (height above the tip, verbosity 3), or a peg parameter that does not parse (an outpoint that is not `txid:vout`) |
//! | -22    | `RPC_DESERIALIZATION_ERROR`: raw transaction hex that does not decode |
//! | -26    | `RPC_VERIFY_REJECTED`: the mempool refused the transaction, or the node refused a peg-in claim; the message says why |
//! | -27    | `RPC_VERIFY_ALREADY_IN_CHAIN`: a peg-in claim for a deposit already minted, or already claimed and pending |
//!
//! The backend's error variants become these codes in one place, [`backend_error`], [`submit_error`],
//! [`claim_error`] and [`operator_error`]; nothing here or in a client decides by a message's text. Where a
//! client needs more than the code (a -26 for a duplicate or for a registration that is still live is no
//! failure to `sidechain-cli pegin`), the error's `data` carries a [`TxRejectReason`].

use crate::backend::{BackendError, ClaimError, OperatorError, SubmitError};
use jsonrpsee::types::ErrorObjectOwned;
use primitives::{BlockId, Height, TxId};
use serde::{Deserialize, Serialize};

/// Bitcoin Core's `RPC_MISC_ERROR`: as Core answers for an index it does not keep (the account history).
pub const MISC_ERROR: i32 = -1;
/// Bitcoin Core's `RPC_INVALID_ADDRESS_OR_KEY`: used for unknown blocks, transactions and commits.
pub const NOT_FOUND: i32 = -5;
/// Bitcoin Core's `RPC_INVALID_PARAMETER`: a parameter that parses but is out of range.
pub const INVALID_PARAMETER: i32 = -8;
/// Bitcoin Core's `RPC_DESERIALIZATION_ERROR`: raw transaction bytes that do not decode.
pub const DESERIALIZATION_ERROR: i32 = -22;
/// Bitcoin Core's `RPC_VERIFY_REJECTED`: the mempool refused a transaction.
pub const VERIFY_REJECTED: i32 = -26;
/// Bitcoin Core's `RPC_VERIFY_ALREADY_IN_CHAIN`: a peg-in claim for a deposit already minted or pending.
pub const ALREADY_IN_CHAIN: i32 = -27;
/// JSON-RPC internal error: the node could not answer (storage failure, shutting down).
pub const INTERNAL_ERROR: i32 = jsonrpsee::types::error::INTERNAL_ERROR_CODE;
/// JSON-RPC invalid params (raised by jsonrpsee when a parameter does not deserialize).
pub const INVALID_PARAMS: i32 = jsonrpsee::types::error::INVALID_PARAMS_CODE;
/// JSON-RPC method not found (raised by jsonrpsee).
pub const METHOD_NOT_FOUND: i32 = jsonrpsee::types::error::METHOD_NOT_FOUND_CODE;
/// JSON-RPC parse error (raised by jsonrpsee).
pub const PARSE_ERROR: i32 = jsonrpsee::types::error::PARSE_ERROR_CODE;
/// JSON-RPC invalid request (raised by jsonrpsee).
pub const INVALID_REQUEST: i32 = jsonrpsee::types::error::INVALID_REQUEST_CODE;
/// jsonrpsee's "batch too large".
pub const BATCH_TOO_LARGE: i32 = jsonrpsee::types::error::TOO_BIG_BATCH_REQUEST_CODE;

/// An error object with `code` and a message for people.
pub fn err(code: i32, message: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message, None::<()>)
}

/// This node keeps no account history.
pub fn history_off() -> ErrorObjectOwned {
    err(MISC_ERROR, "this node keeps no account history (its config has [index] history = false)".into())
}

/// No block with this hash.
pub fn block_not_found(hash: &BlockId) -> ErrorObjectOwned {
    err(NOT_FOUND, format!("block not found: no block with hash {hash}"))
}

/// No transaction with this id in the mempool or the chain.
pub fn tx_not_found(txid: &TxId) -> ErrorObjectOwned {
    err(NOT_FOUND, format!("transaction not found: {txid} is neither in the mempool nor in a block"))
}

/// A block height above the tip (or the genesis, which is not a block).
pub fn height_out_of_range(height: Height, tip: Height) -> ErrorObjectOwned {
    let msg = if tip.get() == 0 {
        format!("block height {height} out of range: no block has been produced yet (height 0 is the genesis)")
    } else {
        format!(
            "block height {height} out of range: blocks are 1..={tip} (height 0 is the genesis, \
             see getblockchaininfo.genesis_hash)"
        )
    };
    err(INVALID_PARAMETER, msg)
}

/// A parameter value outside its allowed set.
pub fn invalid_parameter(message: String) -> ErrorObjectOwned {
    err(INVALID_PARAMETER, message)
}

/// Raw transaction hex that does not decode.
pub fn bad_tx_encoding(why: String) -> ErrorObjectOwned {
    err(DESERIALIZATION_ERROR, format!("tx decode failed: {why}"))
}

/// What kind of -26 `sendrawtransaction` answered, in the error's `data`: what a client may act on
/// without reading the message (which is for people and may change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxRejectReason {
    /// The same transaction is already in the mempool.
    Duplicate,
    /// A deposit registration refreshed while more than half its life is left.
    RegistrationStillLive,
    /// Any other reason; the message says which.
    Other,
}

impl TxRejectReason {
    /// The reason of a -26 error object, if it carries one.
    pub fn of(e: &ErrorObjectOwned) -> Option<TxRejectReason> {
        if e.code() != VERIFY_REJECTED {
            return None;
        }
        serde_json::from_str(e.data()?.get()).ok()
    }
}

/// The mempool refused the transaction.
pub fn tx_rejected(reason: &str, kind: TxRejectReason) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(VERIFY_REJECTED, format!("transaction rejected: {reason}"), Some(kind))
}

/// A peg-in claim for a deposit that is already minted or already pending; `reason` says which.
pub fn claim_already_known(reason: &str) -> ErrorObjectOwned {
    err(ALREADY_IN_CHAIN, format!("claim not needed: {reason}"))
}

/// The node refused a peg-in claim (e.g. too many pending).
pub fn claim_rejected(reason: &str) -> ErrorObjectOwned {
    err(VERIFY_REJECTED, format!("claim rejected: {reason}"))
}

/// The node could not answer.
pub fn internal(message: String) -> ErrorObjectOwned {
    err(INTERNAL_ERROR, message)
}

/// The node could not answer: -32603 with the reason.
pub fn backend_error(e: &BackendError) -> ErrorObjectOwned {
    internal(e.to_string())
}

/// `sendrawtransaction`'s refusals: -26 with a [`TxRejectReason`], or -32603 when the node could not check.
pub fn submit_error(e: &SubmitError) -> ErrorObjectOwned {
    let kind = match e {
        SubmitError::Backend(b) => return backend_error(b),
        SubmitError::Duplicate(_) => TxRejectReason::Duplicate,
        SubmitError::Invalid(ledger::TxError::RegistrationStillLive { .. }) => TxRejectReason::RegistrationStillLive,
        SubmitError::Invalid(_) | SubmitError::Policy(_) => TxRejectReason::Other,
    };
    tx_rejected(&e.to_string(), kind)
}

/// `claimpegin`'s refusals: -27 when the deposit is minted or claimed already, -26 otherwise, -32603 when
/// the node could not check.
pub fn claim_error(e: &ClaimError) -> ErrorObjectOwned {
    match e {
        ClaimError::AlreadyMinted { .. } | ClaimError::AlreadyPending { .. } => claim_already_known(&e.to_string()),
        ClaimError::Rejected(_) => claim_rejected(&e.to_string()),
        ClaimError::Backend(b) => backend_error(b),
    }
}

/// An operator method's refusal: -26 `<method> refused: <why>`, or -32603 when the node could not check.
pub fn operator_error(method: &str, e: &OperatorError) -> ErrorObjectOwned {
    match e {
        OperatorError::Refused(why) => err(VERIFY_REJECTED, format!("{method} refused: {why}")),
        OperatorError::Backend(b) => backend_error(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{refusal, Unsupported};
    use bitcoin::hashes::Hash as _;
    use ledger::BtcOutPoint;
    use primitives::AccountId;
    use primitives::Hash32;

    fn outpoint() -> BtcOutPoint {
        BtcOutPoint { txid: bitcoin::Txid::from_byte_array([7; 32]), vout: 1 }
    }

    #[test]
    fn backend_errors_are_internal() {
        let io = std::io::Error::other("disk on fire");
        for e in [BackendError::storage(io), BackendError::ShuttingDown] {
            assert_eq!(backend_error(&e).code(), INTERNAL_ERROR, "{e}");
        }
        assert_eq!(backend_error(&BackendError::ShuttingDown).message(), "node is shutting down");
    }

    #[test]
    fn submit_errors_map_to_codes_and_reasons() {
        let live =
            ledger::TxError::RegistrationStillLive { account: AccountId(Hash32([1; 32])), expires_at: Height(9) };
        let cases = [
            (SubmitError::Duplicate(TxId(Hash32([2; 32]))), VERIFY_REJECTED, Some(TxRejectReason::Duplicate)),
            (SubmitError::Invalid(live), VERIFY_REJECTED, Some(TxRejectReason::RegistrationStillLive)),
            (SubmitError::Invalid(ledger::TxError::ZeroAmount), VERIFY_REJECTED, Some(TxRejectReason::Other)),
            (
                SubmitError::Policy(refusal(std::io::Error::other("mempool full"))),
                VERIFY_REJECTED,
                Some(TxRejectReason::Other),
            ),
            (SubmitError::Backend(BackendError::ShuttingDown), INTERNAL_ERROR, None),
        ];
        for (e, code, reason) in cases {
            let obj = submit_error(&e);
            assert_eq!(obj.code(), code, "{e}");
            assert_eq!(TxRejectReason::of(&obj), reason, "{e}");
            if code == VERIFY_REJECTED {
                assert_eq!(obj.message(), format!("transaction rejected: {e}"));
            }
        }
        let obj = submit_error(&SubmitError::Duplicate(TxId(Hash32([2; 32]))));
        assert!(obj.message().contains("already in the mempool"), "{}", obj.message());
    }

    #[test]
    fn claim_errors_map_to_codes() {
        let minted = ClaimError::AlreadyMinted { outpoint: outpoint(), at: Height(4), held: false, mint_txid: None };
        let held = ClaimError::AlreadyMinted {
            outpoint: outpoint(),
            at: Height(4),
            held: true,
            mint_txid: Some(TxId(Hash32([3; 32]))),
        };
        let pending = ClaimError::AlreadyPending { outpoint: outpoint() };
        let full = ClaimError::Rejected(refusal(std::io::Error::other("256 claims pending; try again later")));
        let cases = [
            (minted, ALREADY_IN_CHAIN, "claim not needed: deposit "),
            (held, ALREADY_IN_CHAIN, "claim not needed: deposit "),
            (pending, ALREADY_IN_CHAIN, "claim not needed: deposit "),
            (full, VERIFY_REJECTED, "claim rejected: 256 claims pending"),
            (ClaimError::Backend(BackendError::ShuttingDown), INTERNAL_ERROR, "node is shutting down"),
        ];
        for (e, code, start) in cases {
            let obj = claim_error(&e);
            assert_eq!(obj.code(), code, "{e}");
            assert!(obj.message().starts_with(start), "{}", obj.message());
        }
        let shown = format!("{}:1", (Hash32([7; 32])));
        let minted = ClaimError::AlreadyMinted { outpoint: outpoint(), at: Height(4), held: false, mint_txid: None };
        assert_eq!(minted.to_string(), format!("deposit {shown} was already minted at height 4"));
        let pending = ClaimError::AlreadyPending { outpoint: outpoint() };
        assert_eq!(pending.to_string(), format!("deposit {shown}: a claim for this deposit is already pending"));
        let held = ClaimError::AlreadyMinted {
            outpoint: outpoint(),
            at: Height(4),
            held: true,
            mint_txid: Some(TxId(Hash32([3; 32]))),
        };
        assert!(held.to_string().contains("recorded (below the minimum, held) at height 4 (mint txid "), "{held}");
    }

    #[test]
    fn operator_errors_map_to_codes() {
        let e = OperatorError::Refused(refusal(Unsupported::RelayFederation));
        let obj = operator_error("submitfederationchange", &e);
        assert_eq!(obj.code(), VERIFY_REJECTED);
        assert_eq!(obj.message(), "submitfederationchange refused: this node cannot relay federation changes");
        let obj = operator_error("resumepeg", &OperatorError::Backend(BackendError::ShuttingDown));
        assert_eq!(obj.code(), INTERNAL_ERROR);
    }
}
