//! The OpenRPC document served by `rpc.discover` (<https://spec.open-rpc.org>, 1.2.6): every method with
//! its parameters, result schema and error codes, so explorers and other-language clients need not read
//! Rust.
//!
//! Why it cannot drift from the code:
//! - each method's parameter and result types come from the [`SidechainApi`](crate::api) trait itself:
//!   a table entry names the trait's client method (`Api::get_block_hash`) and the compiler reads the
//!   types off its signature (an entry with the wrong number of parameters does not compile);
//! - every schema is derived from the Rust types by `schemars` (`#[derive(JsonSchema)]`, with
//!   `#[schemars(with = ...)]` where serde writes a field in another form, such as amounts in sat and
//!   Bitcoin hashes in display order), so a renamed field or a new variant changes the document with it;
//! - `rpc/tests/openrpc.rs` checks that the document lists exactly the methods the server registers and
//!   that real results validate against their schemas.
//!
//! Written by hand is only what no type says: each method's summary, its parameter names and
//! descriptions, the name of its result and the error codes it answers.
//!
//! Schemas are shared through `components/schemas` and `$ref` rather than inlined: the same types
//! (hashes, `TxInfo`, `ValidatorInfo`, ...) recur across methods, and a client generator turns each
//! component into one named type. They are JSON Schema draft 7, the dialect of OpenRPC 1.x, and describe
//! what the server writes (a field a result always carries is required, even where serde has a default).

use crate::api::SidechainApiClient;
use crate::errors;
use jsonrpsee::core::client::{Error as ClientError, Subscription};
use jsonrpsee::http_client::HttpClient;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// The name of the discovery method.
pub const DISCOVER: &str = "rpc.discover";

/// Where the shared schemas are, as a JSON pointer into the document.
const SCHEMAS: &str = "/components/schemas";

/// A client of the trait: jsonrpsee generates its methods from the one `#[rpc]` trait, so their
/// signatures are the API's.
type Api = HttpClient;

/// A parameter's name and description; its type comes from the trait.
struct P(&'static str, &'static str);

/// An error a method may answer: code, message, and `data` when it carries one.
struct E(i32, &'static str, Option<&'static str>);

/// What the table says about a method besides its types.
struct M {
    name: &'static str,
    summary: &'static str,
    result: &'static str,
    errors: &'static [E],
}

fn m(name: &'static str, summary: &'static str, result: &'static str, errors: &'static [E]) -> M {
    M { name, summary, result, errors }
}

const INTERNAL: E = E(errors::INTERNAL_ERROR, "node storage read failed", None);
const BAD_PARAM: E = E(errors::INVALID_PARAMS, "parameter of the wrong type or format", None);
const OUT_OF_RANGE: E = E(errors::INVALID_PARAMETER, "block height out of range", None);

/// The methods, in the order the document lists them.
fn table(d: &mut Doc) {
    d.m0(
        Api::get_blockchain_info,
        m(
            "getblockchaininfo",
            "chain id, genesis, tip, anchor, peg status and reserve, minimum fee, node status",
            "info",
            &[INTERNAL],
        ),
    );
    d.m0(
        Api::get_block_count,
        m("getblockcount", "height of the newest committed block (0: only the genesis)", "height", &[INTERNAL]),
    );
    d.m1(
        Api::get_block_hash,
        [P("height", "block height, 1..=tip")],
        m("getblockhash", "hash of the block at a height", "hash", &[OUT_OF_RANGE, BAD_PARAM, INTERNAL]),
    );
    d.m2(
        Api::get_block,
        [
            P("block", "height or block hash"),
            P("verbosity", "0: hex of the canonical borsh block; 1 (default): JSON with txids; 2: JSON with full txs"),
        ],
        m(
            "getblock",
            "a block by height or hash, with its commit certificate (a hex string at verbosity 0)",
            "block",
            &[E(errors::NOT_FOUND, "block not found", None), OUT_OF_RANGE, BAD_PARAM, INTERNAL],
        ),
    );
    d.m1(
        Api::get_commit,
        [P("height", "block height, 1..=tip")],
        m(
            "getcommit",
            "the commit certificate of the block at a height",
            "commit",
            &[OUT_OF_RANGE, BAD_PARAM, INTERNAL],
        ),
    );
    d.m1(
        Api::get_transaction,
        [P("txid", "transaction id")],
        m(
            "gettransaction",
            "a transaction from the mempool or a block, with where it is",
            "transaction",
            &[E(errors::NOT_FOUND, "transaction not found", None), BAD_PARAM, INTERNAL],
        ),
    );
    d.m2(
        Api::get_account,
        [
            P("account", "account id (hash of the owner's ed25519 key)"),
            P("prove", "true: also return the state entries the answer rests on, with proofs (default false)"),
        ],
        m(
            "getaccount",
            "balance and nonce at the tip; unknown accounts are zero with nonce 0; with prove, the proved entry",
            "account",
            &[BAD_PARAM, INTERNAL],
        ),
    );
    d.m2(
        Api::get_headers,
        [P("from", "first height, at least 1"), P("count", "at most 1000, the default")],
        m(
            "getheaders",
            "certified headers from a height, with proved federation entries: a light client's chain",
            "headers",
            &[E(errors::INVALID_PARAMETER, "from is 0", None), BAD_PARAM, INTERNAL],
        ),
    );
    d.m4(
        Api::list_transactions,
        [
            P("account", "account id (hash of the owner's ed25519 key)"),
            P("count", "at most 1000, default 100"),
            P("skip", "newest entries to skip, default 0"),
            P("prove", "true: each entry carries its transaction and branch to the block's transaction root"),
        ],
        m(
            "listtransactions",
            "what committed transactions did to an account, newest first: transfers, registration, burns, mints, payouts",
            "history",
            &[
                E(errors::INVALID_PARAMETER, "count above 1000", None),
                E(errors::MISC_ERROR, "this node keeps no account history", None),
                BAD_PARAM,
                INTERNAL,
            ],
        ),
    );
    d.m1(
        Api::send_raw_transaction,
        [P("hex", "hex of the canonical borsh SignedUserTx")],
        m(
            "sendrawtransaction",
            "submit a signed transaction; returns its txid",
            "txid",
            &[
                E(errors::DESERIALIZATION_ERROR, "tx decode failed", None),
                E(errors::VERIFY_REJECTED, "transaction rejected: <mempool reason>", None),
                E(errors::VERIFY_REJECTED, "transaction rejected: <duplicate>", Some("duplicate")),
                E(
                    errors::VERIFY_REJECTED,
                    "transaction rejected: <registration still live>",
                    Some("registration_still_live"),
                ),
                INTERNAL,
            ],
        ),
    );
    d.m0(Api::get_mempool_info, m("getmempoolinfo", "mempool size", "info", &[INTERNAL]));
    d.m0(Api::get_raw_mempool, m("getrawmempool", "txids in the mempool", "txids", &[INTERNAL]));
    d.m0(Api::get_peer_info, m("getpeerinfo", "connected peers", "peers", &[INTERNAL]));
    d.m0(Api::get_network_info, m("getnetworkinfo", "our peer id, listen addresses, connections", "info", &[INTERNAL]));
    d.m0(Api::get_validators, m("getvalidators", "the validator set", "validators", &[INTERNAL]));
    d.m0(Api::get_evidence, m("getevidence", "equivocation evidence", "evidence", &[INTERNAL]));
    d.m0(
        Api::get_federation_info,
        m(
            "getfederationinfo",
            "the federation wallet: descriptor, threshold, script, address, peg-in rules and fee, peg totals",
            "federation",
            &[INTERNAL],
        ),
    );
    d.m1(
        Api::get_pegin_address,
        [P("account", "the recipient account id")],
        m(
            "getpeginaddress",
            "the deposit address bound to an account",
            "address",
            &[E(errors::INVALID_PARAMS, "invalid params: not an account id", None), INTERNAL],
        ),
    );
    d.m2(
        Api::get_peg_status,
        [
            P("outpoint", "the deposit output, txid:vout as bitcoin-cli shows it"),
            P("prove", "true: also return the state entries the answer rests on, with proofs (default false)"),
        ],
        m(
            "getpegstatus",
            "where a deposit is: unknown, seen, claim_pending, claim_rejected, minted or below_minimum",
            "status",
            &[E(errors::INVALID_PARAMETER, "expected a Bitcoin outpoint as txid:vout", None), BAD_PARAM, INTERNAL],
        ),
    );
    d.m0(
        Api::get_reserve_proof,
        m(
            "getreserveproof",
            "the reserves at the tip (BTC held, supply, unpaid burns, fee pool, federation outputs) with proofs \
             against the state root",
            "reserves",
            &[INTERNAL],
        ),
    );
    d.m2(
        Api::list_pegouts,
        [P("count", "at most 1000, default 100"), P("skip", "newest burns to skip, default 0")],
        m(
            "listpegouts",
            "burns (peg-outs) newest first with their stage",
            "pegouts",
            &[E(errors::INVALID_PARAMETER, "count above 1000", None), BAD_PARAM, INTERNAL],
        ),
    );
    d.m2(
        Api::get_pegout_status,
        [
            P("burn_txid", "the sidechain txid of the PegOut transaction (64 hex digits)"),
            P("prove", "true: also return the state entries the answer rests on, with proofs (default false)"),
        ],
        m(
            "getpegoutstatus",
            "one burn's status by its sidechain txid, as a listpegouts entry (getpegstatus is for BTC outpoints)",
            "pegout",
            &[
                E(errors::INVALID_PARAMETER, "not a sidechain txid (64 hex digits)", None),
                E(errors::NOT_FOUND, "no committed burn with that txid", None),
                BAD_PARAM,
                INTERNAL,
            ],
        ),
    );
    d.m3(
        Api::claim_pegin,
        [
            P("outpoint", "the deposit output, txid:vout"),
            P("recipient", "the account the deposit address was derived for (64 hex digits)"),
            P("btc_block_hash", "the BTC block holding the deposit, as bitcoin-cli shows it"),
        ],
        m(
            "claimpegin",
            "claim a deposit whose registration was missed or expired; validators check it against their bitcoinds",
            "claim",
            &[
                E(errors::INVALID_PARAMETER, "malformed outpoint, account id or block hash", None),
                E(errors::ALREADY_IN_CHAIN, "claim not needed: already minted, or a claim is already pending", None),
                E(errors::VERIFY_REJECTED, "claim rejected: too many claims pending", None),
                BAD_PARAM,
                INTERNAL,
            ],
        ),
    );
    d.m1(
        Api::approve_federation_change,
        [P("proposal", "validators, peg_threshold, activation_height")],
        m(
            "approvefederationchange",
            "operator: this validator's approval of a federation change (validators of the set in force only)",
            "approval",
            &[
                E(errors::VERIFY_REJECTED, "refused: not a validator, or the proposed set is not acceptable", None),
                BAD_PARAM,
                INTERNAL,
            ],
        ),
    );
    d.m1(
        Api::submit_federation_change,
        [P("change", "{proposal, approvals}")],
        m(
            "submitfederationchange",
            "a federation change with 2f+1 approvals: checked against the tip and relayed for the next block",
            "txid",
            &[
                E(errors::VERIFY_REJECTED, "refused: too few approvals, a change pending, too soon, a bad set", None),
                BAD_PARAM,
                INTERNAL,
            ],
        ),
    );
    d.m2(
        Api::resume_peg,
        [P("btc_height", "the BTC block's height"), P("btc_hash", "the BTC block's hash, as bitcoin-cli shows it")],
        m(
            "resumepeg",
            "operator: vote to resume the halted peg from a BTC block (validators only; 2f+1 votes resume it)",
            "result",
            &[
                E(errors::INVALID_PARAMETER, "malformed block hash", None),
                E(errors::VERIFY_REJECTED, "refused: not a validator, or the peg is not halted", None),
                BAD_PARAM,
                INTERNAL,
            ],
        ),
    );
    d.m0(
        Api::pause_signing,
        m(
            "pausesigning",
            "operator: this validator releases no peg signature share until resumesigning (kept across restarts)",
            "signing",
            &[INTERNAL],
        ),
    );
    d.m0(
        Api::resume_signing,
        m("resumesigning", "operator: resume this validator's peg signing after pausesigning", "signing", &[INTERNAL]),
    );
    d.m0(
        Api::get_consensus_state,
        m("getconsensusstate", "round, step and lock of the height being decided", "state", &[INTERNAL]),
    );
    d.m0(
        Api::get_bitcoin_view,
        m(
            "getbitcoinview",
            "this node's bitcoind: reachable, best height, lag behind the anchor, deposits in flight with \
             confirmations",
            "view",
            &[INTERNAL],
        ),
    );
    d.subscription(
        Api::subscribe_new_blocks,
        m(
            "subscribenewblocks",
            "WebSocket only: notifications `subscribenewblocks` with a BlockSummary per committed block",
            "subscription",
            &[],
        ),
        "unsubscribenewblocks",
    );
    // Served by the server beside the trait (`server::rpc_module`); its result is this document.
    d.methods.push(method_json(m(DISCOVER, "this document", "openrpc", &[]), vec![], json!({ "type": "object" })));
}

/// The document under construction: the schema generator (which collects the shared schemas) and the
/// methods so far.
struct Doc {
    generator: SchemaGenerator,
    methods: Vec<Value>,
}

impl Doc {
    /// The schema of `T`: a `$ref` to `components/schemas` for named types, inline for the others.
    fn schema<T: JsonSchema>(&mut self) -> Value {
        let mut schema = self.generator.subschema_for::<T>();
        for transform in self.generator.transforms_mut() {
            transform.transform(&mut schema);
        }
        schema.to_value()
    }

    fn param<A: JsonSchema + DeserializeOwned>(&mut self, p: P) -> Value {
        // A parameter that accepts null may be left out: jsonrpsee reads a missing one as null.
        let required = serde_json::from_value::<A>(Value::Null).is_err();
        json!({ "name": p.0, "description": p.1, "required": required, "schema": self.schema::<A>() })
    }

    fn push<R: JsonSchema>(&mut self, m: M, params: Vec<Value>) {
        let result = self.schema::<R>();
        self.methods.push(method_json(m, params, result));
    }

    fn m0<F, R>(&mut self, _: F, m: M)
    where
        F: AsyncFn(&Api) -> Result<R, ClientError>,
        R: JsonSchema,
    {
        self.push::<R>(m, vec![]);
    }

    fn m1<F, A, R>(&mut self, _: F, [a]: [P; 1], m: M)
    where
        F: AsyncFn(&Api, A) -> Result<R, ClientError>,
        A: JsonSchema + DeserializeOwned,
        R: JsonSchema,
    {
        let params = vec![self.param::<A>(a)];
        self.push::<R>(m, params);
    }

    fn m2<F, A, B, R>(&mut self, _: F, [a, b]: [P; 2], m: M)
    where
        F: AsyncFn(&Api, A, B) -> Result<R, ClientError>,
        A: JsonSchema + DeserializeOwned,
        B: JsonSchema + DeserializeOwned,
        R: JsonSchema,
    {
        let params = vec![self.param::<A>(a), self.param::<B>(b)];
        self.push::<R>(m, params);
    }

    fn m3<F, A, B, C, R>(&mut self, _: F, [a, b, c]: [P; 3], m: M)
    where
        F: AsyncFn(&Api, A, B, C) -> Result<R, ClientError>,
        A: JsonSchema + DeserializeOwned,
        B: JsonSchema + DeserializeOwned,
        C: JsonSchema + DeserializeOwned,
        R: JsonSchema,
    {
        let params = vec![self.param::<A>(a), self.param::<B>(b), self.param::<C>(c)];
        self.push::<R>(m, params);
    }

    fn m4<F, A, B, C, D, R>(&mut self, _: F, [a, b, c, d]: [P; 4], m: M)
    where
        F: AsyncFn(&Api, A, B, C, D) -> Result<R, ClientError>,
        A: JsonSchema + DeserializeOwned,
        B: JsonSchema + DeserializeOwned,
        C: JsonSchema + DeserializeOwned,
        D: JsonSchema + DeserializeOwned,
        R: JsonSchema,
    {
        let params = vec![self.param::<A>(a), self.param::<B>(b), self.param::<C>(c), self.param::<D>(d)];
        self.push::<R>(m, params);
    }

    /// A subscription and its unsubscribe method; the notifications' schema comes from the item type.
    fn subscription<F, T>(&mut self, _: F, m: M, unsubscribe: &'static str)
    where
        F: AsyncFn(&Api) -> Result<Subscription<T>, ClientError>,
        T: JsonSchema,
    {
        // jsonrpsee's subscription ids: integers with the server's default id provider, strings with others.
        let id = json!({ "type": ["integer", "string"], "description": "the subscription id" });
        let notification = json!({ "method": m.name, "schema": self.schema::<T>() });
        let mut sub = method_json(m, vec![], id.clone());
        sub["x-notification"] = notification;
        self.methods.push(sub);
        let param = json!({ "name": "subscription", "description": "the id returned on subscribing", "required": true, "schema": id });
        let done = M { name: unsubscribe, summary: "end a subscription", result: "unsubscribed", errors: &[] };
        self.methods.push(method_json(done, vec![param], json!({ "type": "boolean" })));
    }
}

fn method_json(m: M, params: Vec<Value>, result: Value) -> Value {
    let errors: Vec<Value> = m
        .errors
        .iter()
        .map(|E(code, message, data)| match data {
            Some(data) => json!({ "code": code, "message": message, "data": data }),
            None => json!({ "code": code, "message": message }),
        })
        .collect();
    json!({
        "name": m.name,
        "summary": m.summary,
        "paramStructure": "by-position",
        "params": params,
        "result": { "name": m.result, "schema": result },
        "errors": errors,
    })
}

/// The whole document.
pub fn document() -> Value {
    let settings = SchemaSettings::draft07().for_serialize().with(|s| s.definitions_path = SCHEMAS.into());
    let mut d = Doc { generator: settings.into_generator(), methods: Vec::new() };
    table(&mut d);
    let schemas = d.generator.take_definitions(true);
    json!({
        "openrpc": "1.2.6",
        "info": {
            "title": "sidechaind JSON-RPC",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Federated two-way-peg sidechain node. HTTP and WebSocket on one port; HTTP basic \
                auth with the cookie (<datadir>/.cookie) or an rpcauth user. Bitcoin outpoints and hashes are shown \
                as bitcoin-cli shows them. Peg-out: listpegouts, getpegoutstatus.",
        },
        "methods": d.methods,
        "components": { "schemas": schemas },
    })
}

/// The method names the document lists.
pub fn method_names(doc: &Value) -> Vec<String> {
    doc["methods"]
        .as_array()
        .map(|ms| ms.iter().filter_map(|m| m["name"].as_str().map(String::from)).collect())
        .unwrap_or_default()
}
