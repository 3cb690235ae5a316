//! The OpenRPC document served by `rpc.discover` (<https://spec.open-rpc.org>): every method with its
//! parameters, result schema and error codes, so explorers and other-language clients need not read Rust.
//!
//! Hand-built rather than derived, to keep the wire names and units explicit; drift is caught by
//! tests that compare the method list with what the server registers and every result schema's
//! properties with the JSON the server actually returns.

use crate::errors;
use serde_json::{json, Value};

/// The name of the discovery method.
pub const DISCOVER: &str = "rpc.discover";

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn hex(len: usize) -> Value {
    json!({ "type": "string", "pattern": format!("^[0-9a-f]{{{len}}}$") })
}

fn array(item: &str) -> Value {
    json!({ "type": "array", "items": r(item) })
}

fn nullable(v: Value) -> Value {
    json!({ "oneOf": [v, { "type": "null" }] })
}

/// An object schema whose every property is required.
fn obj(props: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = props.iter().map(|(k, _)| *k).collect();
    let properties: serde_json::Map<String, Value> = props.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    json!({ "type": "object", "properties": properties, "required": required, "additionalProperties": false })
}

fn param(name: &str, required: bool, schema: Value, description: &str) -> Value {
    json!({ "name": name, "required": required, "schema": schema, "description": description })
}

fn error(code: i32, message: &str) -> Value {
    json!({ "code": code, "message": message })
}

fn method(name: &str, summary: &str, params: Vec<Value>, result_name: &str, result: Value, errs: Vec<Value>) -> Value {
    json!({
        "name": name,
        "summary": summary,
        "paramStructure": "by-position",
        "params": params,
        "result": { "name": result_name, "schema": result },
        "errors": errs,
    })
}

fn schemas() -> Value {
    let int = json!({ "type": "integer", "minimum": 0 });
    let string = json!({ "type": "string" });
    let boolean = json!({ "type": "boolean" });
    let tx_kind = json!({ "oneOf": [
        obj(&[("type", json!({ "const": "transfer" })), ("to", r("AccountId")), ("amount_sat", r("Sat"))]),
        obj(&[
            ("type", json!({ "const": "evidence" })),
            ("offender", int.clone()),
            ("height", r("Height")),
            ("round", int.clone()),
        ]),
        obj(&[("type", json!({ "const": "registerdeposit" }))]),
        obj(&[("type", json!({ "const": "pegout" })), ("btc_script_pubkey", string.clone()), ("amount_sat", r("Sat"))]),
        obj(&[
            ("type", json!({ "const": "reportreorg" })),
            ("validator", int.clone()),
            ("btc_height", int.clone()),
            ("btc_block_hash", hex(64)),
        ]),
        obj(&[
            ("type", json!({ "const": "settle" })),
            ("batch", int.clone()),
            ("btc_txid", hex(64)),
            ("btc_block_hash", hex(64)),
            ("btc_height", int.clone()),
        ]),
        obj(&[
            ("type", json!({ "const": "pegoutsignatures" })),
            ("validator", int.clone()),
            ("batch", int.clone()),
            ("btc_txid", hex(64)),
            ("inputs", int.clone()),
        ]),
        obj(&[
            ("type", json!({ "const": "reconfigure" })),
            ("activation_height", int.clone()),
            ("validators", int.clone()),
            ("peg_threshold", int.clone()),
            ("approvals", int.clone()),
        ]),
        obj(&[
            ("type", json!({ "const": "feeratevote" })),
            ("validator", int.clone()),
            ("sat_per_vb", int.clone()),
        ]),
        obj(&[
            ("type", json!({ "const": "resumepeg" })),
            ("validator", int.clone()),
            ("btc_height", int.clone()),
            ("btc_block_hash", hex(64)),
        ]),
        obj(&[
            ("type", json!({ "const": "mint" })),
            ("btc_outpoint", r("BtcOutPoint")),
            ("recipient", r("AccountId")),
            ("amount_sat", r("Sat")),
            ("btc_block_hash", hex(64)),
            ("btc_height", int.clone()),
        ]),
    ] });
    let nullable_sat = || nullable(r("Sat"));
    json!({
        "Hash32": hex(64),
        "AccountId": hex(64),
        "PublicKey": hex(64),
        "Signature": hex(128),
        "Height": int,
        "Sat": { "type": "integer", "minimum": 0, "description": "an amount in satoshis" },
        "BtcAnchor": obj(&[("height", int.clone()), ("hash", hex(64))]),
        "BtcOutPoint": { "type": "string", "pattern": "^[0-9a-f]{64}:[0-9]+$",
            "description": "a Bitcoin output as txid:vout, the txid as bitcoin-cli shows it" },
        "ChainPegInfo": obj(&[
            ("btc_held_sat", r("Sat")),
            ("supply_sat", r("Sat")),
            ("unpaid_burns_sat", r("Sat")),
            ("genesis_supply_sat", r("Sat")),
            ("reserve_ok", json!({ "type": "boolean",
                "description": "supply + unpaid_burns - genesis_supply <= btc_held (genesis balances of test networks are unbacked)" })),
            ("halted", json!({ "type": "boolean",
                "description": "peg halted after a Bitcoin reorg deeper than N, until 2f+1 validators vote resumepeg" })),
            ("uneconomic_coins", json!({ "type": "integer", "minimum": 0,
                "description": "held federation coins worth less than their spend costs at the agreed fee rate (left out of batches, sweeps and refreshes)" })),
            ("uneconomic_sat", r("Sat")),
        ]),
        "PegTotals": obj(&[
            ("btc_held_sat", r("Sat")),
            ("supply_sat", r("Sat")),
            ("minted_sat", r("Sat")),
            ("pegin_fees_sat", r("Sat")),
            ("below_minimum_sat", r("Sat")),
            ("deposits", int.clone()),
            ("unpaid_burns_sat", r("Sat")),
        ]),
        "PegInStatus": obj(&[
            ("outpoint", r("BtcOutPoint")),
            ("stage", json!({ "enum": ["unknown", "seen", "claim_pending", "claim_rejected", "minted", "below_minimum"] })),
            ("recipient", nullable(r("AccountId"))),
            ("amount_sat", nullable_sat()),
            ("btc_block_hash", nullable(hex(64))),
            ("btc_height", nullable(int.clone())),
            ("confirmations", nullable(int.clone())),
            ("confirmations_required", int.clone()),
            ("registration_live", nullable(boolean.clone())),
            ("reason", nullable(string.clone())),
            ("minted_at", nullable(r("Height"))),
            ("minted_time_ms", nullable(int.clone())),
            ("mint_txid", nullable(r("Hash32"))),
            ("credited_sat", nullable_sat()),
            ("fee_sat", nullable_sat()),
        ]),
        "ClaimPegInResult": obj(&[
            ("status", json!({ "enum": ["submitted"] })),
            ("outpoint", r("BtcOutPoint")),
            ("recipient", r("AccountId")),
            ("btc_block_hash", hex(64)),
        ]),
        "ChainInfo": obj(&[
            ("chain_id", string.clone()),
            ("genesis_hash", r("Hash32")),
            ("height", r("Height")),
            ("best_block_hash", r("Hash32")),
            ("time_ms", int.clone()),
            ("state_root", r("Hash32")),
            ("btc_anchor", r("BtcAnchor")),
            ("peg_status", json!({ "enum": ["active", "halted"] })),
            ("peg", r("ChainPegInfo")),
            ("min_fee_sat", r("Sat")),
            ("validator", boolean.clone()),
            ("syncing", boolean.clone()),
            ("alerts", json!({ "type": "array", "items": obj(&[
                ("kind", json!({ "enum": ["anchor_lag", "confirmed_batch_in_flight", "proposals_failing",
                    "pegout_stuck"] })),
                ("description", string.clone()),
            ]) })),
            ("signing", r("SigningInfo")),
        ]),
        "SigningInfo": obj(&[
            ("paused", boolean.clone()),
            ("paused_since_ms", nullable(int.clone())),
            ("refusals", int.clone()),
            ("refused", json!({ "type": "array", "items": obj(&[
                ("batch", int.clone()),
                ("btc_txid", hex(64)),
                ("kind", string.clone()),
                ("reason", string.clone()),
            ]) })),
        ]),
        "CommitInfo": obj(&[
            ("height", r("Height")),
            ("round", int.clone()),
            ("block_hash", r("Hash32")),
            ("signatures", json!({ "type": "array", "items":
                obj(&[("validator", int.clone()), ("signature", r("Signature"))]) })),
            ("hex", json!({ "type": "string", "pattern": "^([0-9a-f]{2})*$" })),
        ]),
        "TxInfo": obj(&[
            ("txid", r("Hash32")),
            ("hex", string.clone()),
            ("signer", nullable(r("PublicKey"))),
            ("from", nullable(r("AccountId"))),
            ("nonce", nullable(int.clone())),
            ("fee_sat", r("Sat")),
            ("kind", tx_kind),
            ("signature", nullable(r("Signature"))),
        ]),
        "BlockInfo": obj(&[
            ("hash", r("Hash32")),
            ("height", r("Height")),
            ("confirmations", int.clone()),
            ("genesis_hash", r("Hash32")),
            ("prev_hash", r("Hash32")),
            ("time_ms", int.clone()),
            ("proposer", int.clone()),
            ("btc_anchor", r("BtcAnchor")),
            ("tx_root", r("Hash32")),
            ("state_root", r("Hash32")),
            ("last_commit_hash", r("Hash32")),
            ("size", int.clone()),
            ("tx_count", int.clone()),
            ("tx", json!({ "oneOf": [
                { "type": "array", "items": r("Hash32"), "description": "verbosity 1" },
                { "type": "array", "items": r("TxInfo"), "description": "verbosity 2" },
            ] })),
            ("commit", r("CommitInfo")),
        ]),
        "TransactionInfo": obj(&[
            ("status", json!({ "enum": ["mempool", "committed"] })),
            ("height", nullable(r("Height"))),
            ("block_hash", nullable(r("Hash32"))),
            ("index", nullable(int.clone())),
            ("confirmations", int.clone()),
            ("tx", r("TxInfo")),
        ]),
        "AccountInfo": obj(&[
            ("account", r("AccountId")),
            ("balance_sat", r("Sat")),
            ("balance_btc", json!({ "type": "string", "pattern": "^[0-9]+\\.[0-9]{8}$" })),
            ("nonce", int.clone()),
        ]),
        "MempoolInfo": obj(&[("size", int.clone()), ("bytes", int.clone()), ("max_bytes", int.clone())]),
        "PeerInfo": obj(&[
            ("peer_id", string.clone()),
            ("addr", string.clone()),
            ("validator_index", nullable(int.clone())),
            ("height", nullable(r("Height"))),
            ("score", json!({ "type": "integer" })),
        ]),
        "NetworkInfo": obj(&[
            ("version", string.clone()),
            ("peer_id", string.clone()),
            ("listen_addrs", json!({ "type": "array", "items": string })),
            ("connections", int.clone()),
        ]),
        "ValidatorInfo": obj(&[
            ("index", int.clone()),
            ("consensus_key", r("PublicKey")),
            ("peg_key", hex(66)),
            ("power", int.clone()),
            ("p2p_addr", json!({ "type": "string" })),
        ]),
        "EvidenceInfo": obj(&[
            ("offender", int.clone()),
            ("height", r("Height")),
            ("round", int.clone()),
            ("kind", json!({ "enum": ["votes", "proposals"] })),
            ("hex", json!({ "type": "string" })),
        ]),
        "FederationInfo": obj(&[
            ("descriptor", string.clone()),
            ("threshold", int.clone()),
            ("keys", int.clone()),
            ("script_pubkey", string.clone()),
            ("address", string.clone()),
            ("network", string.clone()),
            ("pegin_confirmations", int.clone()),
            ("pegin_min_amount_sat", r("Sat")),
            ("pegin_fee_sat", r("Sat")),
            ("pegout_fee_rate_sat_vb", int.clone()),
            ("pegout_batch_share_vbytes", int.clone()),
            ("fee_rate_votes", json!({ "type": "array", "items": obj(&[
                ("validator", int.clone()),
                ("sat_per_vb", int.clone()),
                ("height", r("Height")),
            ]) })),
            ("peg_totals", r("PegTotals")),
            ("pegout_limit", nullable(obj(&[
                ("limit_sat", r("Sat")),
                ("window_btc_blocks", int.clone()),
                ("anchor_btc_height", int.clone()),
                ("used_sat", r("Sat")),
                ("available_sat", r("Sat")),
                ("head_waits_until_btc_height", nullable(int.clone())),
            ]))),
            ("epoch", int.clone()),
            ("epoch_from_height", r("Height")),
            ("validators", array("ValidatorInfo")),
            ("pending", nullable(obj(&[
                ("epoch", int.clone()),
                ("activation_height", r("Height")),
                ("peg_threshold", int.clone()),
                ("validators", array("ValidatorInfo")),
                ("descriptor", string.clone()),
            ]))),
            ("wallets", json!({ "type": "array", "items": obj(&[
                ("epoch", int.clone()),
                ("in_force", json!({ "type": "boolean" })),
                ("from_height", r("Height")),
                ("until_height", nullable(r("Height"))),
                ("deposit_window_ends", nullable(r("Height"))),
                ("address", string.clone()),
                ("utxos", int.clone()),
                ("amount_sat", r("Sat")),
                ("refresh_due", int.clone()),
                ("batches", json!({ "type": "array", "items": obj(&[
                    ("id", int.clone()),
                    ("kind", json!({ "enum": ["payout", "refresh", "sweep"] })),
                    ("btc_txid", hex(64)),
                    ("inputs", int.clone()),
                    ("signatures", string.clone()),
                    ("to_epoch", int.clone()),
                    ("fee_sat", r("Sat")),
                ]) })),
            ]) })),
            ("sweep_complete", json!({ "type": "boolean" })),
            ("emergency", nullable(obj(&[
                ("threshold", int.clone()),
                ("keys", json!({ "type": "array", "items": hex(66) })),
                ("delay_blocks", int.clone()),
                ("refresh_margin_blocks", int.clone()),
            ]))),
        ]),
        "FederationProposal": obj(&[
            ("validators", json!({ "type": "array", "items": obj(&[
                ("consensus_key", r("PublicKey")),
                ("peg_key", hex(66)),
                ("p2p_addr", string.clone()),
                ("power", int.clone()),
            ]) })),
            ("peg_threshold", int.clone()),
            ("activation_height", r("Height")),
        ]),
        "Approval": obj(&[("validator", int.clone()), ("epoch", int.clone()), ("signature", hex(128))]),
        "ReconfigureTx": obj(&[
            ("proposal", r("FederationProposal")),
            ("approvals", array("Approval")),
        ]),
        "ReserveProofInfo": obj(&[
            ("height", r("Height")),
            ("state_root", r("Hash32")),
            ("btc_held_sat", r("Sat")),
            ("supply_sat", r("Sat")),
            ("unpaid_burns_sat", r("Sat")),
            ("fee_pool_sat", r("Sat")),
            ("genesis_supply_sat", r("Sat")),
            ("reserve_ok", json!({ "type": "boolean" })),
            ("utxos", json!({ "type": "array", "items": obj(&[
                ("outpoint", r("BtcOutPoint")),
                ("amount_sat", r("Sat")),
                ("tweak", json!({ "oneOf": [r("AccountId"), { "type": "null" }], "description": "null: untweaked" })),
                ("epoch", int.clone()),
                ("spendable", json!({ "type": "boolean" })),
            ]) })),
            ("batches_in_flight", json!({ "type": "array", "items": { "type": "integer", "minimum": 0 } })),
            ("entries", json!({ "type": "array", "items": obj(&[
                ("key", json!({ "type": "string", "description": "borsh(StateKey), hex" })),
                ("value", json!({ "type": ["string", "null"], "description": "borsh(value), hex; null when absent" })),
                ("proof", json!({ "type": "string", "description": "borsh(jmt SparseMerkleProof), hex" })),
            ]) })),
        ]),
        "PegOutInfo": obj(&[
            ("burn_id", int.clone()),
            ("burn_txid", r("Hash32")),
            ("owner", r("AccountId")),
            ("btc_address", nullable(string.clone())),
            ("amount_sat", r("Sat")),
            ("fee_sat", r("Sat")),
            ("burned_at", r("Height")),
            (
                "stage",
                json!({ "enum": ["burned", "batched", "signed", "broadcast", "bumped", "confirmed", "final"] }),
            ),
            (
                "batch",
                nullable(obj(&[
                    ("id", int.clone()),
                    ("btc_txid", hex(64)),
                    ("signatures", json!({ "type": "string", "pattern": "^[0-9]+/[0-9]+$" })),
                    ("fee_sat", r("Sat")),
                    ("vbytes", int.clone()),
                    ("version", int.clone()),
                    ("earlier_btc_txids", json!({ "type": "array", "items": hex(64) })),
                ])),
            ),
            ("paid_in", nullable(obj(&[("btc_height", int.clone()), ("btc_block_hash", hex(64))]))),
            ("confirmed_btc_height", nullable(int.clone())),
            ("waiting", nullable(string.clone())),
            ("wait", nullable(obj(&[
                ("reason", json!({ "enum": ["next_batch", "peg_halted", "behind_full_batch", "rolling_limit",
                    "no_spendable_coin", "fee_pool_short", "below_dust", "batch_refused"] })),
                ("description", string.clone()),
                ("needs_operator", json!({ "type": "boolean" })),
                ("until_height", nullable(r("Height"))),
                ("until_btc_height", nullable(int.clone())),
                ("short_by_sat", nullable(int.clone())),
                ("reserved_by_batches", json!({ "type": "array", "items": int.clone() })),
            ]))),
        ]),
        "PegInAddressInfo": obj(&[
            ("recipient", r("AccountId")),
            ("address", string.clone()),
            ("script_pubkey", string.clone()),
            ("descriptor", string.clone()),
            ("network", string.clone()),
            ("confirmations_required", int.clone()),
            ("min_amount_sat", r("Sat")),
            ("registration_fee_sat", r("Sat")),
        ]),
        "ConsensusStateInfo": obj(&[
            ("height", r("Height")),
            ("round", int.clone()),
            ("step", json!({ "enum": ["unstarted", "propose", "prevote", "precommit", "commit"] })),
            ("locked_round", nullable(int.clone())),
            ("locked_block", nullable(r("Hash32"))),
            ("validator_index", nullable(int.clone())),
        ]),
        "BlockSummary": obj(&[
            ("hash", r("Hash32")),
            ("height", r("Height")),
            ("txs", int.clone()),
            ("time_ms", int),
        ]),
    })
}

/// The whole document.
pub fn document() -> Value {
    let out_of_range = || error(errors::INVALID_PARAMETER, "block height out of range");
    let bad_param = || error(errors::INVALID_PARAMS, "parameter of the wrong type or format");
    let internal = || error(errors::INTERNAL_ERROR, "node storage read failed");
    let height = || param("height", true, r("Height"), "block height, 1..=tip");
    let mut methods = vec![
        method(
            "getblockchaininfo",
            "chain id, genesis, tip, anchor, peg status and reserve, minimum fee, node status",
            vec![],
            "info",
            r("ChainInfo"),
            vec![internal()],
        ),
        method(
            "getblockcount",
            "height of the newest committed block (0: only the genesis)",
            vec![],
            "height",
            r("Height"),
            vec![internal()],
        ),
        method(
            "getblockhash",
            "hash of the block at a height",
            vec![height()],
            "hash",
            r("Hash32"),
            vec![out_of_range(), bad_param(), internal()],
        ),
        method(
            "getblock",
            "a block by height or hash, with its commit certificate",
            vec![
                param("block", true, json!({ "oneOf": [r("Height"), r("Hash32")] }), "height or block hash"),
                param(
                    "verbosity",
                    false,
                    json!({ "enum": [0, 1, 2] }),
                    "0: hex of the canonical borsh block; 1 (default): JSON with txids; 2: JSON with full txs",
                ),
            ],
            "block",
            json!({ "oneOf": [{ "type": "string", "description": "verbosity 0" }, r("BlockInfo")] }),
            vec![error(errors::NOT_FOUND, "block not found"), out_of_range(), bad_param(), internal()],
        ),
        method(
            "getcommit",
            "the commit certificate of the block at a height",
            vec![height()],
            "commit",
            r("CommitInfo"),
            vec![out_of_range(), bad_param(), internal()],
        ),
        method(
            "gettransaction",
            "a transaction from the mempool or a block, with where it is",
            vec![param("txid", true, r("Hash32"), "transaction id")],
            "transaction",
            r("TransactionInfo"),
            vec![error(errors::NOT_FOUND, "transaction not found"), bad_param(), internal()],
        ),
        method(
            "getaccount",
            "balance and nonce at the tip; unknown accounts are zero with nonce 0",
            vec![param("account", true, r("AccountId"), "account id (hash of the owner's ed25519 key)")],
            "account",
            r("AccountInfo"),
            vec![bad_param(), internal()],
        ),
        method(
            "sendrawtransaction",
            "submit a signed transaction; returns its txid",
            vec![param("hex", true, json!({ "type": "string" }), "hex of the canonical borsh SignedUserTx")],
            "txid",
            r("Hash32"),
            vec![
                error(errors::DESERIALIZATION_ERROR, "tx decode failed"),
                error(errors::VERIFY_REJECTED, "transaction rejected: <mempool reason>"),
                json!({ "code": errors::VERIFY_REJECTED, "message": "transaction rejected: <duplicate>", "data": "duplicate" }),
                json!({
                    "code": errors::VERIFY_REJECTED,
                    "message": "transaction rejected: <registration still live>",
                    "data": "registration_still_live"
                }),
                internal(),
            ],
        ),
        method("getmempoolinfo", "mempool size", vec![], "info", r("MempoolInfo"), vec![internal()]),
        method("getrawmempool", "txids in the mempool", vec![], "txids", array("Hash32"), vec![internal()]),
        method("getpeerinfo", "connected peers", vec![], "peers", array("PeerInfo"), vec![internal()]),
        method(
            "getnetworkinfo",
            "our peer id, listen addresses, connections",
            vec![],
            "info",
            r("NetworkInfo"),
            vec![internal()],
        ),
        method("getvalidators", "the validator set", vec![], "validators", array("ValidatorInfo"), vec![internal()]),
        method("getevidence", "equivocation evidence", vec![], "evidence", array("EvidenceInfo"), vec![internal()]),
        method(
            "getfederationinfo",
            "the federation wallet: descriptor, threshold, script, address, peg-in rules and fee, peg totals",
            vec![],
            "federation",
            r("FederationInfo"),
            vec![internal()],
        ),
        method(
            "getpeginaddress",
            "the deposit address bound to an account",
            vec![param("account", true, r("AccountId"), "the recipient account id")],
            "address",
            r("PegInAddressInfo"),
            vec![error(-32602, "invalid params: not an account id"), internal()],
        ),
        method(
            "getpegstatus",
            "where a deposit is: unknown, seen, claim_pending, claim_rejected, minted or below_minimum",
            vec![param("outpoint", true, r("BtcOutPoint"), "the deposit output, txid:vout as bitcoin-cli shows it")],
            "status",
            r("PegInStatus"),
            vec![error(errors::INVALID_PARAMETER, "expected a Bitcoin outpoint as txid:vout"), bad_param(), internal()],
        ),
        method(
            "getreserveproof",
            "the reserves at the tip (BTC held, supply, unpaid burns, fee pool, federation outputs) with proofs against the state root",
            vec![],
            "reserves",
            r("ReserveProofInfo"),
            vec![internal()],
        ),
        method(
            "listpegouts",
            "burns (peg-outs) newest first with their stage: queued, batched, signed or paid",
            vec![
                param("count", false, json!({ "type": "integer", "minimum": 0, "maximum": 1000 }), "default 100"),
                param("skip", false, json!({ "type": "integer", "minimum": 0 }), "newest burns to skip, default 0"),
            ],
            "pegouts",
            array("PegOutInfo"),
            vec![error(errors::INVALID_PARAMETER, "count above 1000"), bad_param(), internal()],
        ),
        method(
            "getpegoutstatus",
            "one burn's status by its sidechain txid, as a listpegouts entry (getpegstatus is for BTC outpoints)",
            vec![param("burn_txid", true, hex(64), "the sidechain txid of the PegOut transaction")],
            "pegout",
            r("PegOutInfo"),
            vec![
                error(errors::INVALID_PARAMETER, "not a sidechain txid (64 hex digits)"),
                error(errors::NOT_FOUND, "no committed burn with that txid"),
                bad_param(),
                internal(),
            ],
        ),
        method(
            "claimpegin",
            "claim a deposit whose registration was missed or expired; validators check it against their bitcoinds",
            vec![
                param("outpoint", true, r("BtcOutPoint"), "the deposit output, txid:vout"),
                param("recipient", true, r("AccountId"), "the account the deposit address was derived for"),
                param("btc_block_hash", true, hex(64), "the BTC block holding the deposit, as bitcoin-cli shows it"),
            ],
            "claim",
            r("ClaimPegInResult"),
            vec![
                error(errors::INVALID_PARAMETER, "malformed outpoint, account id or block hash"),
                error(errors::ALREADY_IN_CHAIN, "claim not needed: already minted, or a claim is already pending"),
                error(errors::VERIFY_REJECTED, "claim rejected: too many claims pending"),
                bad_param(),
                internal(),
            ],
        ),
        method(
            "approvefederationchange",
            "operator: this validator's approval of a federation change (validators of the set in force only)",
            vec![param("proposal", true, r("FederationProposal"), "validators, peg_threshold, activation_height")],
            "approval",
            r("Approval"),
            vec![
                error(errors::VERIFY_REJECTED, "refused: not a validator, or the proposed set is not acceptable"),
                bad_param(),
                internal(),
            ],
        ),
        method(
            "submitfederationchange",
            "a federation change with 2f+1 approvals: checked against the tip and relayed for the next block",
            vec![param("change", true, r("ReconfigureTx"), "{proposal, approvals}")],
            "txid",
            hex(64),
            vec![
                error(errors::VERIFY_REJECTED, "refused: too few approvals, a change pending, too soon, a bad set"),
                bad_param(),
                internal(),
            ],
        ),
        method(
            "resumepeg",
            "operator: vote to resume the halted peg from a BTC block (validators only; 2f+1 votes resume it)",
            vec![
                param("btc_height", true, json!({ "type": "integer", "minimum": 0 }), "the BTC block's height"),
                param("btc_hash", true, hex(64), "the BTC block's hash, as bitcoin-cli shows it"),
            ],
            "result",
            json!({"type": "string"}),
            vec![
                error(errors::INVALID_PARAMETER, "malformed block hash"),
                error(errors::VERIFY_REJECTED, "refused: not a validator, or the peg is not halted"),
                bad_param(),
                internal(),
            ],
        ),
        method(
            "pausesigning",
            "operator: this validator releases no peg signature share until resumesigning (kept across restarts)",
            vec![],
            "signing",
            r("SigningInfo"),
            vec![internal()],
        ),
        method(
            "resumesigning",
            "operator: resume this validator's peg signing after pausesigning",
            vec![],
            "signing",
            r("SigningInfo"),
            vec![internal()],
        ),
        method(
            "getconsensusstate",
            "round, step and lock of the height being decided",
            vec![],
            "state",
            r("ConsensusStateInfo"),
            vec![internal()],
        ),
        json!({
            "name": "subscribenewblocks",
            "summary": "WebSocket only: notifications `subscribenewblocks` with a BlockSummary per committed block",
            "paramStructure": "by-position",
            "params": [],
            "result": { "name": "subscription", "schema": { "type": "string" } },
            "x-notification": { "method": "subscribenewblocks", "schema": r("BlockSummary") },
        }),
        method(
            "unsubscribenewblocks",
            "end a subscribenewblocks subscription",
            vec![param("subscription", true, json!({ "type": "string" }), "id returned by subscribenewblocks")],
            "unsubscribed",
            json!({ "type": "boolean" }),
            vec![],
        ),
        method(DISCOVER, "this document", vec![], "openrpc", json!({ "type": "object" }), vec![]),
    ];
    methods.push(method(
        "getbitcoinview",
        "this node's bitcoind: reachable, best height, lag behind the anchor, deposits in flight with confirmations",
        vec![],
        "view",
        crate::dashboard::bitcoin_view_schema(),
        vec![internal()],
    ));
    json!({
        "openrpc": "1.2.6",
        "info": {
            "title": "sidechaind JSON-RPC",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Federated two-way-peg sidechain node. HTTP and WebSocket on one port; HTTP basic \
                auth with the cookie (<datadir>/.cookie) or an rpcauth user. Bitcoin outpoints and hashes are shown \
                as bitcoin-cli shows them. Peg-out: listpegouts, getpegoutstatus.",
        },
        "methods": methods,
        "components": { "schemas": schemas() },
    })
}

/// The method names the document lists.
pub fn method_names(doc: &Value) -> Vec<String> {
    doc["methods"]
        .as_array()
        .map(|ms| ms.iter().filter_map(|m| m["name"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}
