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
//! | -32603 | the node failed to read its own storage ([`BackendError`](crate::backend::BackendError)) |
//! | -32010 | a batch longer than the configured limit (jsonrpsee) |
//! | -5     | `RPC_INVALID_ADDRESS_OR_KEY`: no block, transaction or commit with that hash/height is known |
//! | -8     | `RPC_INVALID_PARAMETER`: a well-formed parameter out of range (height above the tip, verbosity 3), or a peg parameter that does not parse (an outpoint that is not `txid:vout`) |
//! | -22    | `RPC_DESERIALIZATION_ERROR`: raw transaction hex that does not decode |
//! | -26    | `RPC_VERIFY_REJECTED`: the mempool refused the transaction, or the node refused a peg-in claim; the message says why |
//! | -27    | `RPC_VERIFY_ALREADY_IN_CHAIN`: a peg-in claim for a deposit already minted, or already claimed and pending |

use jsonrpsee::types::ErrorObjectOwned;
use primitives::{Hash32, Height};

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

/// No block with this hash.
pub fn block_not_found(hash: &Hash32) -> ErrorObjectOwned {
    err(NOT_FOUND, format!("block not found: no block with hash {hash}"))
}

/// No transaction with this id in the mempool or the chain.
pub fn tx_not_found(txid: &Hash32) -> ErrorObjectOwned {
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

/// The mempool refused the transaction.
pub fn tx_rejected(reason: &str) -> ErrorObjectOwned {
    err(VERIFY_REJECTED, format!("transaction rejected: {reason}"))
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
