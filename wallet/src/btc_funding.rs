//! Paying BTC on regtest from a key the CLI owns (`sidechain-cli pegin --fund`): the IO half of
//! [`peg::funding`].
//!
//! Why it exists: the Bitcoin Core we build has no wallet, so to make a deposit on regtest someone has to
//! mine coins, find them, and sign a spend. The signing is [`peg::funding`]'s (pure, shared with the test
//! harness); this module is the rest: a small bitcoind JSON-RPC client, the key file, and [`fund_regtest`].
//!
//! - [`BitcoindClient`]: jsonrpsee's HTTP client with HTTP Basic auth (user and password, or bitcoind's
//!   cookie file) and a bound on every call. Failures are sorted into what a user can act on: unreachable,
//!   timed out, credentials refused, an RPC error, or an answer we cannot read. Nothing here panics on what
//!   bitcoind answers.
//! - The key file ([`load_or_create_key`], `btc-funding.key`): 32 random bytes as hex, created with mode
//!   0600 when missing and never overwritten, so the coins mined to it stay spendable across runs.
//! - [`fund_regtest`]: refuses any chain but regtest (it mines blocks, which is only free there), spends the
//!   key's mature coins, mines one more coinbase and matures it when they are not enough, and broadcasts the
//!   payment. It never confirms the payment: that is left to the caller, who decides how many blocks to mine.
//!
//! Where new coins come from, and why the maturing blocks pay the key too: a coinbase can be spent only
//! once it has 100 confirmations (`COINBASE_MATURITY`), so funding mines one block to the key and 99 more on
//! top. Those 99 blocks are also mined to the key rather than burnt: regtest halves the block subsidy every
//! 150 blocks, so a chain that grows by 100 blocks per payment pays less than 1 BTC per coinbase after about
//! eight payments. Mined to the key, the 99 coinbases mature one per block as the chain grows (the caller
//! confirms each payment), and later payments usually find them, and the change of earlier payments, with
//! `scantxoutset` and mine nothing. Coins already spent by a transaction in the mempool (an unconfirmed
//! earlier payment) are left out (`gettxspendingprevout`), so a new payment never replaces an old one.

use bitcoin::{Address, Amount, Block, BlockHash, FeeRate, Network, OutPoint, TxOut, Txid};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{transport, HttpClient, HttpClientBuilder};
use peg::funding::{Fee, FundingKey, Utxo};
use rpc::fsutil;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The name of the key file in the CLI's directory.
pub const KEY_FILE_NAME: &str = "btc-funding.key";

/// Confirmations a coinbase needs before it can be spent (Bitcoin consensus).
pub const COINBASE_MATURITY: u64 = 100;

/// The fee rate of funding payments: above Core's default minimum relay rate, and cheap.
pub const FEE_RATE: FeeRate = FeeRate::from_sat_per_vb_u32(2);

/// Why funding failed.
#[derive(Debug, thiserror::Error)]
pub enum FundingError {
    /// The URL cannot be used.
    #[error("bad bitcoind RPC URL {url}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The user name or password cannot be sent in an HTTP header.
    #[error("bitcoind credentials contain characters not allowed in an http header")]
    BadCredentials,
    /// bitcoind's cookie file could not be read (bitcoind not started, or another datadir or network).
    #[error("cannot read bitcoind cookie file {path}: {reason}")]
    Cookie {
        /// The cookie file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// No connection (nothing listens there, refused, reset).
    #[error("bitcoind at {url} is unreachable ({method}): {detail}")]
    Unreachable {
        /// The URL.
        url: String,
        /// The RPC method.
        method: &'static str,
        /// What the transport reported.
        detail: String,
    },
    /// Connected, but no answer within the bound.
    #[error("bitcoind at {url} did not answer {method} within {timeout:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The RPC method.
        method: &'static str,
        /// The bound.
        timeout: Duration,
    },
    /// bitcoind refused the credentials (HTTP 401) or our address (HTTP 403, `rpcallowip`).
    #[error(
        "bitcoind at {url} refused our credentials (HTTP {status}): check the RPC user and password or cookie file"
    )]
    Auth {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// bitcoind is not on regtest: funding mines blocks, which only regtest allows for free.
    #[error("bitcoind is on chain {chain:?}, not regtest: funding by mining is only possible on regtest")]
    NotRegtest {
        /// What `getblockchaininfo` says.
        chain: String,
    },
    /// The payee is an address of another network.
    #[error("{address} is not a regtest address")]
    WrongNetwork {
        /// The address.
        address: String,
    },
    /// bitcoind answered the call with a JSON-RPC error (e.g. the transaction was rejected).
    #[error("bitcoind {method} failed: {message} (code {code})")]
    Rpc {
        /// The RPC method.
        method: &'static str,
        /// bitcoind's error code.
        code: i32,
        /// bitcoind's message.
        message: String,
    },
    /// bitcoind answered something we cannot read.
    #[error("unexpected answer from bitcoind {method}: {detail}")]
    BadAnswer {
        /// The RPC method.
        method: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// The payment could not be built (not enough coins, dust amount, ...).
    #[error("building the payment: {0}")]
    Build(#[from] peg::funding::FundingError),
    /// The key file could not be read or created.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
}

/// Why the key file could not be read or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("btc funding key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// Not 64 hex digits of a valid secp256k1 secret.
    #[error("btc funding key file {path} is not valid: {why}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

/// Loads the funding key from `path`, creating it (32 random bytes as hex, mode 0600) if it is missing.
/// An existing file is never overwritten: it may hold the only key to coins.
pub fn load_or_create_key(path: &Path) -> Result<FundingKey, KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.to_path_buf(), source };
    match std::fs::metadata(path) {
        Ok(_) => return load_key(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    // A random 32-byte string is a valid secret except with probability about 2^-128; retry a few times
    // rather than assume it.
    let (key, secret) = (0..8)
        .map(|_| fsutil::random_bytes::<32>())
        .find_map(|bytes| FundingKey::from_secret_bytes(bytes).ok().map(|key| (key, bytes)))
        .ok_or_else(|| KeyFileError::Corrupt {
            path: path.to_path_buf(),
            why: "the random source gave no valid secp256k1 secret".into(),
        })?;
    match fsutil::write_private(path, format!("{}\n", hex::encode(secret)).as_bytes(), true) {
        Ok(()) => Ok(key),
        // Another process created it first: theirs is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_key(path),
        Err(e) => Err(io(e)),
    }
}

/// Loads the funding key from `path`.
pub fn load_key(path: &Path) -> Result<FundingKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io { path: path.to_path_buf(), source })?;
    let corrupt = |why: &str| KeyFileError::Corrupt { path: path.to_path_buf(), why: why.into() };
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret).map_err(|_| corrupt("expected 64 hex digits"))?;
    FundingKey::from_secret_bytes(secret).map_err(|_| corrupt("not a valid secp256k1 secret"))
}

/// How to authenticate to bitcoind.
#[derive(Clone, Debug)]
pub enum BitcoindAuth {
    /// `rpcuser`/`rpcpassword` (or an `rpcauth` user).
    UserPass {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// bitcoind's cookie file (`<datadir>/regtest/.cookie` on regtest), read once when the client is made.
    CookieFile(PathBuf),
}

/// A minimal bitcoind JSON-RPC client: the calls funding needs, each bounded by a timeout.
pub struct BitcoindClient {
    url: String,
    timeout: Duration,
    http: HttpClient,
}

impl std::fmt::Debug for BitcoindClient {
    // Not the http client's: its headers hold the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitcoindClient").field("url", &self.url).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl BitcoindClient {
    /// The default bound on one call (mining 100 regtest blocks takes well under a second).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    /// A client for `url` (e.g. `http://127.0.0.1:18443`). No call is made yet.
    pub fn new(url: &str, auth: &BitcoindAuth, timeout: Duration) -> Result<BitcoindClient, FundingError> {
        let (user, password) = match auth {
            BitcoindAuth::UserPass { user, password } => (user.clone(), password.clone()),
            BitcoindAuth::CookieFile(path) => read_cookie(path)?,
        };
        let bad_url = |reason: String| FundingError::BadUrl { url: url.to_string(), reason };
        let header = http::HeaderValue::from_str(&rpc::auth::basic_auth_header(&user, &password))
            .map_err(|_| FundingError::BadCredentials)?;
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, header);
        let http = HttpClientBuilder::default()
            .set_headers(headers)
            .request_timeout(timeout)
            .max_response_size(64 * 1024 * 1024)
            .build(url)
            .map_err(|e| bad_url(e.to_string()))?;
        Ok(BitcoindClient { url: url.to_string(), timeout, http })
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Calls `method` and reads its result as `T`.
    pub async fn call<T: DeserializeOwned>(&self, method: &'static str, params: Vec<Value>) -> Result<T, FundingError> {
        let value: Value = self.http.request(method, params).await.map_err(|e| self.client_error(method, e))?;
        serde_json::from_value(value).map_err(|e| FundingError::BadAnswer { method, detail: e.to_string() })
    }

    fn client_error(&self, method: &'static str, e: ClientError) -> FundingError {
        let url = self.url.clone();
        match e {
            ClientError::Call(obj) => {
                FundingError::Rpc { method, code: obj.code(), message: obj.message().to_string() }
            }
            ClientError::RequestTimeout => FundingError::Timeout { url, method, timeout: self.timeout },
            ClientError::Transport(err) => match err.downcast_ref::<transport::Error>() {
                Some(transport::Error::Rejected { status_code: status @ (401 | 403) }) => {
                    FundingError::Auth { url, status: *status }
                }
                Some(transport::Error::Rejected { status_code }) => {
                    FundingError::BadAnswer { method, detail: format!("HTTP status {status_code}") }
                }
                _ => FundingError::Unreachable { url, method, detail: error_chain(err.as_ref()) },
            },
            ClientError::ParseError(e) => FundingError::BadAnswer { method, detail: e.to_string() },
            other => FundingError::BadAnswer { method, detail: other.to_string() },
        }
    }
}

/// An error and its sources on one line ("client error (Connect): tcp connect error: Connection refused").
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    std::iter::successors(Some(err), |e| e.source()).map(|e| e.to_string()).collect::<Vec<_>>().join(": ")
}

fn read_cookie(path: &Path) -> Result<(String, String), FundingError> {
    let cookie = |reason: String| FundingError::Cookie { path: path.to_path_buf(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| cookie(e.to_string()))?;
    let (user, password) = text.trim().split_once(':').ok_or_else(|| cookie("expected user:password".into()))?;
    Ok((user.to_string(), password.to_string()))
}

/// Pays `amount` to `to` from `key` on a regtest bitcoind and returns the txid of the broadcast payment
/// (unconfirmed: the caller mines or waits for the blocks it needs). Mines (one coinbase to the key, matured
/// by 99 blocks also to the key) only when the key's spendable coins do not cover the payment.
pub async fn fund_regtest(
    client: &BitcoindClient,
    key: &FundingKey,
    to: &Address,
    amount: Amount,
) -> Result<Txid, FundingError> {
    ensure_regtest(client).await?;
    if !to.as_unchecked().is_valid_for_network(Network::Regtest) {
        return Err(FundingError::WrongNetwork { address: to.to_string() });
    }
    let fee = Fee::Rate(FEE_RATE);
    let mut coins = spendable_coins(client, key).await?;
    let tx = match key.pay(&coins, to.script_pubkey(), amount, fee) {
        Ok(tx) => tx,
        Err(peg::funding::FundingError::InsufficientFunds { available, .. }) => {
            tracing::info!(%available, %amount, "funding key has too little; mining a coinbase to it");
            coins.push(mine_mature_coinbase(client, key).await?);
            key.pay(&coins, to.script_pubkey(), amount, fee)?
        }
        Err(e) => return Err(e.into()),
    };
    let hex = bitcoin::consensus::encode::serialize_hex(&tx);
    let txid: Txid = client.call("sendrawtransaction", vec![json!(hex)]).await?;
    if txid != tx.compute_txid() {
        return Err(FundingError::BadAnswer { method: "sendrawtransaction", detail: format!("returned txid {txid}") });
    }
    tracing::info!(%txid, %amount, to = %to, "funding payment broadcast");
    Ok(txid)
}

/// Fails unless bitcoind runs on regtest.
pub async fn ensure_regtest(client: &BitcoindClient) -> Result<(), FundingError> {
    let info: Value = client.call("getblockchaininfo", vec![]).await?;
    let chain = info["chain"]
        .as_str()
        .ok_or_else(|| FundingError::BadAnswer { method: "getblockchaininfo", detail: "no chain".into() })?;
    if chain != "regtest" {
        return Err(FundingError::NotRegtest { chain: chain.to_string() });
    }
    Ok(())
}

/// The key's confirmed coins that can be spent in the next block: mature, and not spent in the mempool.
pub async fn spendable_coins(client: &BitcoindClient, key: &FundingKey) -> Result<Vec<Utxo>, FundingError> {
    const SCAN: &str = "scantxoutset";
    let bad = |detail: String| FundingError::BadAnswer { method: SCAN, detail };
    let descriptor = format!("addr({})", key.address(Network::Regtest));
    let scan: Value = client.call(SCAN, vec![json!("start"), json!([descriptor])]).await?;
    let tip = scan["height"].as_u64().ok_or_else(|| bad("no height".into()))?;
    let unspents = scan["unspents"].as_array().ok_or_else(|| bad("no unspents".into()))?;
    let ours = key.script_pubkey();
    let mut coins = Vec::with_capacity(unspents.len());
    for u in unspents {
        let txid: Txid = u["txid"].as_str().and_then(|s| s.parse().ok()).ok_or_else(|| bad(format!("txid in {u}")))?;
        let vout = u["vout"].as_u64().and_then(|v| u32::try_from(v).ok()).ok_or_else(|| bad(format!("vout in {u}")))?;
        let value = u["amount"]
            .as_f64()
            .and_then(|btc| Amount::from_btc(btc).ok())
            .ok_or_else(|| bad(format!("amount in {u}")))?;
        let height = u["height"].as_u64().ok_or_else(|| bad(format!("height in {u}")))?;
        let coinbase = u["coinbase"].as_bool().ok_or_else(|| bad(format!("coinbase flag in {u}")))?;
        if u["scriptPubKey"].as_str() != Some(ours.to_hex_string().as_str()) {
            return Err(bad(format!("{txid}:{vout} does not pay the funding key")));
        }
        // A coinbase at height h may be spent in block h + 100 at the earliest; the next block is tip + 1.
        if coinbase && (tip + 1).saturating_sub(height) < COINBASE_MATURITY {
            continue;
        }
        coins.push(Utxo { outpoint: OutPoint { txid, vout }, txout: TxOut { value, script_pubkey: ours.clone() } });
    }
    let spent = spent_in_mempool(client, &coins).await?;
    coins.retain(|c| !spent.contains(&c.outpoint));
    Ok(coins)
}

/// Which of `coins` a mempool transaction already spends.
async fn spent_in_mempool(client: &BitcoindClient, coins: &[Utxo]) -> Result<BTreeSet<OutPoint>, FundingError> {
    const METHOD: &str = "gettxspendingprevout";
    if coins.is_empty() {
        return Ok(BTreeSet::new());
    }
    let outputs: Vec<Value> =
        coins.iter().map(|c| json!({ "txid": c.outpoint.txid.to_string(), "vout": c.outpoint.vout })).collect();
    let answer: Vec<Value> = client.call(METHOD, vec![Value::Array(outputs)]).await?;
    let mut spent = BTreeSet::new();
    for a in answer.iter().filter(|a| a.get("spendingtxid").is_some()) {
        let txid = a["txid"].as_str().and_then(|s| s.parse().ok());
        let vout = a["vout"].as_u64().and_then(|v| u32::try_from(v).ok());
        let (Some(txid), Some(vout)) = (txid, vout) else {
            return Err(FundingError::BadAnswer { method: METHOD, detail: format!("entry {a}") });
        };
        spent.insert(OutPoint { txid, vout });
    }
    Ok(spent)
}

/// Mines one block to the key, then `COINBASE_MATURITY - 1` more (also to the key, see the module docs),
/// and returns the first block's coinbase output, now spendable in the next block.
async fn mine_mature_coinbase(client: &BitcoindClient, key: &FundingKey) -> Result<Utxo, FundingError> {
    const MINE: &str = "generatetoaddress";
    let address = key.address(Network::Regtest).to_string();
    let hashes: Vec<BlockHash> = client.call(MINE, vec![json!(1), json!(address)]).await?;
    let hash = *hashes.first().ok_or_else(|| FundingError::BadAnswer { method: MINE, detail: "no block".into() })?;
    // The raw block: exact amounts in satoshis, and rust-bitcoin's parsing.
    let hex: String = client.call("getblock", vec![json!(hash.to_string()), json!(0)]).await?;
    let bad = |detail: String| FundingError::BadAnswer { method: "getblock", detail };
    let block: Block =
        bitcoin::consensus::encode::deserialize_hex(&hex).map_err(|e| bad(format!("block {hash}: {e}")))?;
    let coinbase = block.txdata.first().ok_or_else(|| bad(format!("block {hash} has no transactions")))?;
    let coin = key
        .owned_outputs(coinbase)
        .into_iter()
        .next()
        .ok_or_else(|| bad(format!("the coinbase of block {hash} does not pay the funding key")))?;
    let _: Vec<BlockHash> = client.call(MINE, vec![json!(COINBASE_MATURITY - 1), json!(address)]).await?;
    tracing::info!(block = %hash, value = %coin.txout.value, "mined and matured a coinbase to the funding key");
    Ok(coin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_private_created_once_and_loads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(KEY_FILE_NAME);
        let key = load_or_create_key(&path).expect("create");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.trim().len(), 64);
        let again = load_or_create_key(&path).expect("load");
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text, "never overwritten");
    }

    #[test]
    fn corrupt_key_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(KEY_FILE_NAME);
        std::fs::write(&path, "not hex\n").expect("write");
        assert!(matches!(load_or_create_key(&path), Err(KeyFileError::Corrupt { .. })));
        std::fs::write(&path, "00".repeat(32)).expect("write");
        assert!(matches!(load_or_create_key(&path), Err(KeyFileError::Corrupt { .. })), "zero is not a key");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "00".repeat(32), "left as it was");
    }

    #[tokio::test]
    async fn nothing_listening_is_unreachable() {
        // Bind a port, then free it: nothing listens there any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let auth = BitcoindAuth::UserPass { user: "u".into(), password: "p".into() };
        let client =
            BitcoindClient::new(&format!("http://127.0.0.1:{port}"), &auth, Duration::from_secs(5)).expect("client");
        let err = ensure_regtest(&client).await.expect_err("nothing listens");
        assert!(matches!(err, FundingError::Unreachable { method: "getblockchaininfo", .. }), "{err:?}");
    }

    #[test]
    fn missing_cookie_and_bad_url_are_clear() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cookie = BitcoindAuth::CookieFile(dir.path().join(".cookie"));
        assert!(matches!(
            BitcoindClient::new("http://127.0.0.1:1", &cookie, Duration::from_secs(1)),
            Err(FundingError::Cookie { .. })
        ));
        let auth = BitcoindAuth::UserPass { user: "u".into(), password: "p".into() };
        assert!(matches!(
            BitcoindClient::new("not a url", &auth, Duration::from_secs(1)),
            Err(FundingError::BadUrl { .. })
        ));
    }
}
