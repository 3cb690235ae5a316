//! Paying BTC on regtest from a key the CLI owns (`sidechain-cli pegin --fund`): the IO half of
//! [`peg::funding`].
//!
//! Why it exists: the Bitcoin Core we build has no wallet, so to make a deposit on regtest someone has to
//! mine coins, find them, and sign a spend. The signing is [`peg::funding`]'s (pure, shared with the test
//! harness); this module is the rest: a small bitcoind JSON-RPC client, the key file, and [`fund_regtest`].
//!
//! - The bitcoind client is the project's one ([`btc_rpc::Client`], re-exported as [`BitcoindClient`]): user
//!   and password or bitcoind's cookie file, and a bound on every socket operation. Its failures are sorted
//!   into what a user can act on (unreachable, timed out, an RPC error, an answer we cannot read); refused
//!   credentials are [`FundingError::Auth`]. Nothing here panics on what bitcoind answers. Calls block:
//!   async callers run [`fund_regtest`] in `spawn_blocking`.
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

use bitcoin::{Address, Amount, FeeRate, Network, OutPoint, TxOut, Txid};
use peg::funding::{Fee, FundingKey, Utxo};
use rpc::fsutil;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use btc_rpc::{Auth as BitcoindAuth, Client as BitcoindClient};

/// The name of the key file in the CLI's directory.
pub const KEY_FILE_NAME: &str = "btc-funding.key";

/// Confirmations a coinbase needs before it can be spent (Bitcoin consensus).
pub const COINBASE_MATURITY: u64 = 100;

/// The fee rate of funding payments: above Core's default minimum relay rate, and cheap.
pub const FEE_RATE: FeeRate = FeeRate::from_sat_per_vb_u32(2);

/// The bound on each socket operation of a funding call (mining 100 regtest blocks takes well under a
/// second).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why funding failed.
#[derive(Debug, thiserror::Error)]
pub enum FundingError {
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
    /// Any other failure to configure, reach or understand bitcoind.
    #[error(transparent)]
    Bitcoind(btc_rpc::Error),
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
    /// The payment could not be built (not enough coins, dust amount, ...).
    #[error("building the payment: {0}")]
    Build(#[from] peg::funding::FundingError),
    /// The key file could not be read or created.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
}

impl From<btc_rpc::Error> for FundingError {
    fn from(e: btc_rpc::Error) -> Self {
        match e {
            btc_rpc::Error::Http { url, status: status @ (401 | 403), .. } => FundingError::Auth { url, status },
            other => FundingError::Bitcoind(other),
        }
    }
}

fn bad_answer(method: &str, detail: impl Into<String>) -> FundingError {
    FundingError::Bitcoind(btc_rpc::Error::bad_answer(method, detail))
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

/// A client for the bitcoind at `url` with [`DEFAULT_TIMEOUT`], its cookie file (if any) read now, so a
/// missing one is reported before anything is submitted.
pub fn connect(url: &str, auth: BitcoindAuth) -> Result<BitcoindClient, FundingError> {
    let client = BitcoindClient::new(url, auth, DEFAULT_TIMEOUT)?;
    client.connect()?;
    Ok(client)
}

/// Pays `amount` to `to` from `key` on a regtest bitcoind and returns the txid of the broadcast payment
/// (unconfirmed: the caller mines or waits for the blocks it needs). Mines (one coinbase to the key, matured
/// by 99 blocks also to the key) only when the key's spendable coins do not cover the payment. Blocks on
/// bitcoind's answers.
pub fn fund_regtest(
    client: &BitcoindClient,
    key: &FundingKey,
    to: &Address,
    amount: Amount,
) -> Result<Txid, FundingError> {
    ensure_regtest(client)?;
    if !to.as_unchecked().is_valid_for_network(Network::Regtest) {
        return Err(FundingError::WrongNetwork { address: to.to_string() });
    }
    let fee = Fee::Rate(FEE_RATE);
    let mut coins = spendable_coins(client, key)?;
    let tx = match key.pay(&coins, to.script_pubkey(), amount, fee) {
        Ok(tx) => tx,
        Err(peg::funding::FundingError::InsufficientFunds { available, .. }) => {
            tracing::info!(%available, %amount, "funding key has too little; mining a coinbase to it");
            coins.push(mine_mature_coinbase(client, key)?);
            key.pay(&coins, to.script_pubkey(), amount, fee)?
        }
        Err(e) => return Err(e.into()),
    };
    let txid = client.send_raw_transaction(&tx)?;
    if txid != tx.compute_txid() {
        return Err(bad_answer("sendrawtransaction", format!("returned txid {txid}")));
    }
    tracing::info!(%txid, %amount, to = %to, "funding payment broadcast");
    Ok(txid)
}

/// Fails unless bitcoind runs on regtest.
pub fn ensure_regtest(client: &BitcoindClient) -> Result<(), FundingError> {
    let chain = client.get_blockchain_info()?.chain;
    if chain != "regtest" {
        return Err(FundingError::NotRegtest { chain });
    }
    Ok(())
}

/// The key's confirmed coins that can be spent in the next block: mature, and not spent in the mempool.
pub fn spendable_coins(client: &BitcoindClient, key: &FundingKey) -> Result<Vec<Utxo>, FundingError> {
    const SCAN: &str = "scantxoutset";
    let descriptor = format!("addr({})", key.address(Network::Regtest));
    let scan = client.scan_tx_out_set(&[descriptor])?;
    let ours = key.script_pubkey();
    let mut coins = Vec::with_capacity(scan.unspents.len());
    for u in &scan.unspents {
        let txid: Txid = u.txid.parse().map_err(|_| bad_answer(SCAN, format!("txid in {u:?}")))?;
        let value = Amount::from_btc(u.amount).map_err(|_| bad_answer(SCAN, format!("amount in {u:?}")))?;
        if u.script_pubkey != ours.to_hex_string() {
            return Err(bad_answer(SCAN, format!("{txid}:{} does not pay the funding key", u.vout)));
        }
        // A coinbase at height h may be spent in block h + 100 at the earliest; the next block is tip + 1.
        if u.coinbase && (scan.height + 1).saturating_sub(u.height) < COINBASE_MATURITY {
            continue;
        }
        let outpoint = OutPoint { txid, vout: u.vout };
        coins.push(Utxo { outpoint, txout: TxOut { value, script_pubkey: ours.clone() } });
    }
    let spent = spent_in_mempool(client, &coins)?;
    coins.retain(|c| !spent.contains(&c.outpoint));
    Ok(coins)
}

/// Which of `coins` a mempool transaction already spends.
fn spent_in_mempool(client: &BitcoindClient, coins: &[Utxo]) -> Result<BTreeSet<OutPoint>, FundingError> {
    if coins.is_empty() {
        return Ok(BTreeSet::new());
    }
    let outpoints: Vec<OutPoint> = coins.iter().map(|c| c.outpoint).collect();
    let answer = client.get_tx_spending_prevout(&outpoints)?;
    let mut spent = BTreeSet::new();
    for a in answer.0.iter().filter(|a| a.spending_txid.is_some()) {
        let txid = a.txid.parse().map_err(|_| bad_answer("gettxspendingprevout", format!("entry {a:?}")))?;
        spent.insert(OutPoint { txid, vout: a.vout });
    }
    Ok(spent)
}

/// Mines one block to the key, then `COINBASE_MATURITY - 1` more (also to the key, see the module docs),
/// and returns the first block's coinbase output, now spendable in the next block.
fn mine_mature_coinbase(client: &BitcoindClient, key: &FundingKey) -> Result<Utxo, FundingError> {
    let address = key.address(Network::Regtest);
    let hash =
        *client.generate_to_address(1, &address)?.first().ok_or_else(|| bad_answer("generatetoaddress", "no block"))?;
    // The raw block: exact amounts in satoshis, and rust-bitcoin's parsing.
    let block = client.get_block(&hash)?;
    let bad = |detail: String| bad_answer("getblock", detail);
    let coinbase = block.txdata.first().ok_or_else(|| bad(format!("block {hash} has no transactions")))?;
    let coin = key
        .owned_outputs(coinbase)
        .into_iter()
        .next()
        .ok_or_else(|| bad(format!("the coinbase of block {hash} does not pay the funding key")))?;
    client.generate_to_address(COINBASE_MATURITY - 1, &address)?;
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

    #[test]
    fn nothing_listening_is_unreachable() {
        // Bind a port, then free it: nothing listens there any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let auth = BitcoindAuth::UserPass { user: "u".into(), password: "p".into() };
        let client = connect(&format!("http://127.0.0.1:{port}"), auth).expect("client");
        let err = ensure_regtest(&client).expect_err("nothing listens");
        assert!(
            matches!(&err, FundingError::Bitcoind(btc_rpc::Error::Unreachable { method, .. }) if method == "getblockchaininfo"),
            "{err:?}"
        );
    }

    #[test]
    fn missing_cookie_and_bad_url_are_clear() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cookie = BitcoindAuth::CookieFile(dir.path().join(".cookie"));
        assert!(matches!(
            connect("http://127.0.0.1:1", cookie),
            Err(FundingError::Bitcoind(btc_rpc::Error::Cookie { .. }))
        ));
        let auth = BitcoindAuth::UserPass { user: "u".into(), password: "p".into() };
        assert!(matches!(connect("not a url", auth), Err(FundingError::Bitcoind(btc_rpc::Error::BadUrl { .. }))));
    }
}
