//! The peg-in commands of `sidechain-cli`: `pegin` (register the wallet's deposit address, and on regtest
//! optionally pay it from a BTC key the CLI owns), `pegstatus` and `claimpegin`.
//!
//! Why `pegin` registers first: deposits are minted without a claim only to a registered (live) deposit
//! address, and the validators' watchers only scan for registered scripts. With `--fund` it also waits
//! (bounded) until the registration is in a block before paying, so the payment can never be scanned
//! before its script is watched.
//!
//! A registration costs the chain's registration fee (it grows every node's state and every watcher's
//! rescans, so it is never free). A wallet that cannot pay it, typically a new user's, is not stuck: the
//! address is the same (bound to the account, and only to it), and the deposit is minted through a claim
//! (`claimpegin <txid:vout> <BTC block hash>`, which anyone may submit once the deposit has its
//! confirmations and which can only mint to that account). `pegin` then prints the address and that claim.

use super::{funded_account, rpc_err, Cli};
use anyhow::{bail, Context, Result};
use bitcoin::address::NetworkUnchecked;
use bitcoin::{Address, Amount, BlockHash, Network, OutPoint, ScriptBuf, Txid};
use clap::Args;
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::HttpClient;
use primitives::{AccountId, GenesisHash, TxId};
use rpc::types::{btc_string, PegInStage, PegInStatus, TxStatus};
use rpc::{errors, SidechainApiClient};
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wallet::btc_funding::{self, BitcoindAuth, BitcoindClient};
use wallet::{parse_amount, Wallet};

/// How long `pegin --fund` waits for its registration to be in a block before paying.
const REGISTRATION_WAIT: Duration = Duration::from_secs(60);

/// Where the user's own bitcoind is (for `pegin --fund`, and `pegoutstatus --verify` checking the payout).
#[derive(Args, Debug)]
pub struct BitcoindArgs {
    /// bitcoind's JSON-RPC URL, e.g. http://127.0.0.1:18443.
    #[arg(long, env = "SIDECHAIN_BITCOIND_RPC_URL")]
    pub bitcoind_rpc_url: Option<String>,
    /// bitcoind RPC user (with --bitcoind-rpc-password; or use --bitcoind-rpc-cookie).
    #[arg(long, env = "SIDECHAIN_BITCOIND_RPC_USER", requires = "bitcoind_rpc_password")]
    pub bitcoind_rpc_user: Option<String>,
    /// bitcoind RPC password (prefer the environment variable: the command line is visible to others).
    #[arg(long, env = "SIDECHAIN_BITCOIND_RPC_PASSWORD", hide_env_values = true, requires = "bitcoind_rpc_user")]
    pub bitcoind_rpc_password: Option<String>,
    /// bitcoind's `.cookie` file (`<datadir>/regtest/.cookie`).
    #[arg(long, env = "SIDECHAIN_BITCOIND_RPC_COOKIE", conflicts_with = "bitcoind_rpc_user")]
    pub bitcoind_rpc_cookie: Option<PathBuf>,
}

impl BitcoindArgs {
    /// The client, or `None` when no URL is given; `needed_by` names the flag that wants one.
    fn client(&self, needed_by: &str) -> Result<Option<BitcoindClient>> {
        let Some(url) = self.bitcoind_rpc_url.as_deref() else { return Ok(None) };
        let auth = match (&self.bitcoind_rpc_cookie, &self.bitcoind_rpc_user, &self.bitcoind_rpc_password) {
            (Some(path), _, _) => BitcoindAuth::CookieFile(path.clone()),
            (None, Some(user), Some(password)) => {
                BitcoindAuth::UserPass { user: user.clone(), password: password.clone() }
            }
            _ => bail!("{needed_by} needs --bitcoind-rpc-user and --bitcoind-rpc-password, or --bitcoind-rpc-cookie"),
        };
        Ok(Some(btc_funding::connect(url, auth)?))
    }
}

/// Where `pegin --fund` finds a regtest bitcoind and the key that pays.
#[derive(Args, Debug)]
pub struct FundArgs {
    /// Pay the deposit address this much on regtest (`0.1btc`, `50000sat`) from the BTC funding key
    /// (coins are mined to it when it has too few). The payment is left unconfirmed: mine the blocks.
    #[arg(long)]
    pub fund: Option<String>,
    /// The bitcoind that pays (needed with --fund).
    #[command(flatten)]
    pub bitcoind: BitcoindArgs,
    /// The BTC funding key file (created, mode 0600, when missing; never overwritten). Default:
    /// `btc-funding.key` next to the wallet file.
    #[arg(long, env = "SIDECHAIN_BTC_KEY_FILE")]
    pub btc_key_file: Option<PathBuf>,
}

impl FundArgs {
    fn bitcoind(&self) -> Result<BitcoindClient> {
        self.bitcoind.client("--fund")?.context("--fund needs --bitcoind-rpc-url")
    }
}

/// What became of the `RegisterDeposit`.
#[derive(Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Registration {
    /// Accepted by the node's mempool.
    Submitted { txid: TxId },
    /// The node refused it because the registration is still live (or the same one is already pending).
    AlreadyRegistered { message: String },
    /// Not submitted: the wallet cannot pay the registration fee. The deposit is minted through a claim.
    ClaimNeeded {
        #[serde(rename = "balance_sat", with = "bitcoin::amount::serde::as_sat")]
        balance: Amount,
        #[serde(rename = "registration_fee_sat", with = "bitcoin::amount::serde::as_sat")]
        registration_fee: Amount,
    },
}

/// The BTC payment `--fund` made.
#[derive(Serialize)]
struct Funding {
    btc_txid: Txid,
    outpoint: OutPoint,
    #[serde(rename = "amount_sat", with = "bitcoin::amount::serde::as_sat")]
    amount: Amount,
}

/// `pegin`: register the wallet's deposit address, print it, and with `--fund` pay it on regtest.
pub async fn pegin(cli: &Cli, args: &FundArgs) -> Result<()> {
    // Check what --fund needs before anything is submitted.
    let fund = args.fund.as_deref().map(parse_amount).transpose()?;
    let bitcoind = if fund.is_some() { Some(args.bitcoind()?) } else { None };
    let wallet_path = cli.wallet_path()?;
    let wallet = Wallet::load(wallet_path)?;
    let account = wallet.account();
    let client = cli.client()?;
    let info = client.get_blockchain_info().await.map_err(rpc_err)?;
    let held = client.get_account(account, None).await.map_err(rpc_err)?;
    let address = client.get_pegin_address(account).await.map_err(rpc_err)?;
    let registration_fee = address.registration_fee;
    let registration = if held.balance < registration_fee {
        Registration::ClaimNeeded { balance: held.balance, registration_fee }
    } else {
        register(&client, &wallet, &info.genesis_hash, held.nonce, registration_fee).await?
    };
    let funding = match (fund, bitcoind) {
        (Some(amount), Some(bitcoind)) => {
            if let Registration::Submitted { txid } = &registration {
                wait_committed(&client, *txid).await?;
            }
            let key_path = match &args.btc_key_file {
                Some(p) => p.clone(),
                None => wallet_path.with_file_name(btc_funding::KEY_FILE_NAME),
            };
            let key = btc_funding::load_or_create_key(&key_path)?;
            let to = address
                .address
                .parse::<Address<NetworkUnchecked>>()
                .with_context(|| format!("the node's deposit address {} does not parse", address.address))?
                .require_network(Network::Regtest)
                .with_context(|| {
                    format!("--fund works on regtest only; the node shows {} addresses", address.network)
                })?;
            // bitcoind's client blocks: off the async runtime.
            let (btc_txid, vout) = tokio::task::spawn_blocking(move || -> Result<(Txid, u32)> {
                let btc_txid = btc_funding::fund_regtest(&bitcoind, &key, &to, amount)?;
                Ok((btc_txid, payment_vout(&bitcoind, btc_txid, &to.script_pubkey())?))
            })
            .await
            .context("the funding task failed")??;
            Some(Funding { btc_txid, outpoint: OutPoint { txid: btc_txid, vout }, amount })
        }
        _ => None,
    };
    let out = serde_json::json!({
        "account": account,
        "registration": registration,
        "address": address.address,
        "network": address.network,
        "confirmations_required": address.confirmations_required,
        "min_amount_sat": address.min_amount.to_sat(),
        "registration_fee_sat": registration_fee.to_sat(),
        "funding": funding,
    });
    cli.print(&out, || {
        let mut s = match &registration {
            Registration::Submitted { txid } => format!(
                "registered the deposit address of {account} (txid {txid}, fee {} sat)",
                registration_fee.to_sat()
            ),
            Registration::AlreadyRegistered { message } => {
                format!("the deposit address of {account} is already registered ({message})")
            }
            Registration::ClaimNeeded { balance, registration_fee } => claim_hint(
                account,
                *balance,
                *registration_fee,
                address.confirmations_required,
                funding.as_ref().map(|f| f.outpoint),
            ),
        };
        let how = match registration {
            Registration::ClaimNeeded { .. } => "by a claim",
            _ => "by itself",
        };
        s.push_str(&format!(
            "\ndeposit address {} ({})\nBTC sent there is minted to {account} {how} after {} confirmations \
             (deposits below {} sat are held, not minted)",
            address.address,
            address.network,
            address.confirmations_required,
            address.min_amount.to_sat()
        ));
        if let Some(f) = &funding {
            s.push_str(&format!(
                "\npaid {} BTC in {} (unconfirmed: mine {} blocks on regtest)\nfollow it with: sidechain-cli \
                 pegstatus {}",
                btc_string(f.amount),
                f.btc_txid,
                address.confirmations_required,
                f.outpoint
            ));
        }
        s
    })
}

/// Signs and submits the wallet's registration paying `fee`.
async fn register(
    client: &HttpClient,
    wallet: &Wallet,
    genesis_hash: &GenesisHash,
    nonce: u64,
    fee: Amount,
) -> Result<Registration> {
    let tx = wallet.register_deposit(genesis_hash, nonce, fee);
    let raw = hex::encode(borsh::to_vec(&tx).context("encoding the registration")?);
    match client.send_raw_transaction(raw).await {
        Ok(txid) => Ok(Registration::Submitted { txid }),
        // Registering again while the registration is live is refused by design, and the same registration
        // may already wait in the mempool: either way the address is (or is about to be) watched.
        Err(ClientError::Call(e))
            if matches!(
                errors::TxRejectReason::of(&e),
                Some(errors::TxRejectReason::RegistrationStillLive | errors::TxRejectReason::Duplicate)
            ) =>
        {
            Ok(Registration::AlreadyRegistered { message: e.message().to_string() })
        }
        Err(e) => Err(rpc_err(e)).context("submitting the deposit registration"),
    }
}

/// What a wallet without the registration fee does with its deposit: the claim, with what it needs.
fn claim_hint(account: AccountId, balance: Amount, fee: Amount, n: u32, outpoint: Option<OutPoint>) -> String {
    let outpoint = outpoint.map_or_else(|| "<txid:vout>".to_string(), |o| o.to_string());
    format!(
        "not registered: {account} holds {} sat, less than the registration fee of {} sat\n\
         the address below is still bound to {account} and only to it; BTC sent there is minted through a \
         claim: once the deposit has {n} confirmations, run\n  sidechain-cli claimpegin {outpoint} <BTC block hash>\n\
         (the hash of the BTC block holding the deposit, as `bitcoin-cli getrawtransaction <txid> true` shows it; \
         anyone may submit the claim, and the mint can only go to {account})",
        balance.to_sat(),
        fee.to_sat()
    )
}

/// Waits until `txid` is in a committed block, polling with a bound.
async fn wait_committed(client: &HttpClient, txid: TxId) -> Result<()> {
    let deadline = Instant::now() + REGISTRATION_WAIT;
    loop {
        match client.get_transaction(txid).await {
            Ok(t) if t.status == TxStatus::Committed => return Ok(()),
            // Not found yet (or in the mempool): it was just accepted, keep waiting.
            Ok(_) | Err(ClientError::Call(_)) => {}
            Err(e) => return Err(rpc_err(e)),
        }
        if Instant::now() >= deadline {
            bail!("the registration {txid} is not in a block after {REGISTRATION_WAIT:?}; not paying yet");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The output of the payment `txid` that pays `script`. `fund_regtest` puts the payment at output 0
/// (`peg::funding`: payment first, change second), but the transaction is what counts: it is read back
/// from bitcoind's mempool and its outputs matched against the deposit script.
fn payment_vout(bitcoind: &BitcoindClient, txid: Txid, script: &ScriptBuf) -> Result<u32> {
    let tx = bitcoind.get_raw_transaction(&txid).with_context(|| format!("reading back the payment {txid}"))?;
    let vout = tx
        .output
        .iter()
        .position(|o| o.script_pubkey == *script)
        .with_context(|| format!("payment {txid} has no output to the deposit address"))?;
    u32::try_from(vout).context("output index out of range")
}

/// `pegstatus <txid:vout>`.
pub async fn pegstatus(cli: &Cli, outpoint: OutPoint) -> Result<()> {
    let client = cli.client()?;
    let Some(mut verifier) = crate::verify::Verifier::start(&cli.verify, &client).await? else {
        let s = client.get_peg_status(outpoint.to_string(), None).await.map_err(rpc_err)?;
        return cli.print(&s, || describe_status(&s));
    };
    let s = client.get_peg_status(outpoint.to_string(), Some(true)).await.map_err(rpc_err)?;
    let at = s.proof.as_ref().map(|p| p.height);
    let (s, verified) = verifier.check(&client, at, |light| s.verify(light, &outpoint)).await?;
    let proved = match s.minted_at {
        Some(h) => format!("proved: the ledger recorded the deposit at height {h}"),
        None => "proved: the ledger has no record of this deposit yet (not minted); what this node's bitcoind \
                 shows of it is its own word"
            .to_string(),
    };
    cli.print_checked(&s, Some(&verified), || format!("{}\n{proved}", describe_status(&s)))
}

/// A person's reading of a [`PegInStatus`].
fn describe_status(s: &PegInStatus) -> String {
    let n = s.confirmations_required;
    let depth = match s.confirmations {
        Some(k) => format!("{k} of {n} confirmations"),
        None => format!("{n} confirmations needed"),
    };
    let block = match (s.btc_height, s.btc_block_hash) {
        (Some(h), Some(b)) => format!("BTC block {b} at height {h}"),
        _ => "an unknown BTC block".to_string(),
    };
    let mut out = format!("deposit {}: ", s.outpoint);
    out.push_str(&match s.stage {
        PegInStage::Unknown => "unknown to this node (only a validator's node, with its bitcoind, sees deposits \
                                before they are minted)"
            .to_string(),
        PegInStage::Seen => format!("seen in {block}, {depth}; minted when the sidechain anchor covers it"),
        PegInStage::ClaimPending => {
            format!("claim pending: this node's bitcoind confirmed it in {block} ({depth}); minted when the anchor covers it")
        }
        PegInStage::ClaimRejected => {
            format!("claim rejected by this node's bitcoind: {}", s.reason.as_deref().unwrap_or("no reason given"))
        }
        PegInStage::Minted => format!(
            "minted at height {} (time_ms {}) in {}: credited {} BTC, peg-in fee {} sat",
            s.minted_at.map_or_else(|| "?".into(), |h| h.to_string()),
            s.minted_time_ms.map_or_else(|| "?".into(), |t| t.to_string()),
            s.mint_txid.map_or_else(|| "?".into(), |t| t.to_string()),
            s.credited.map_or_else(|| "?".into(), btc_string),
            s.fee.map_or(0, Amount::to_sat)
        ),
        PegInStage::BelowMinimum => format!(
            "below the minimum: recorded at height {} and held by the federation, nothing credited",
            s.minted_at.map_or_else(|| "?".into(), |h| h.to_string())
        ),
    });
    if let (Some(r), Some(a)) = (s.recipient, s.amount) {
        out.push_str(&format!("\n{} BTC to {r}", btc_string(a)));
        if !matches!(s.stage, PegInStage::Seen | PegInStage::ClaimPending) {
            out.push_str(&format!(" in {block}"));
        }
    }
    if s.stage == PegInStage::Seen && s.registration_live == Some(false) {
        let hash = s.btc_block_hash.map_or_else(|| "<btc block hash>".into(), |h| h.to_string());
        out.push_str(&format!(
            "\nthe recipient's registration is not live, so it is not minted by itself: sidechain-cli claimpegin {} \
             {hash}",
            s.outpoint
        ));
    }
    if let (Some(reason), false) = (&s.reason, s.stage == PegInStage::ClaimRejected) {
        out.push_str(&format!("\na claim for it was rejected: {reason}"));
    }
    out
}

/// `claimpegin <txid:vout> <block hash> [--account]`.
pub async fn claimpegin(cli: &Cli, outpoint: OutPoint, block: BlockHash, account: Option<AccountId>) -> Result<()> {
    let recipient = match account {
        Some(a) => a,
        None => Wallet::load(cli.wallet_path()?)?.account(),
    };
    let r = cli
        .client()?
        .claim_pegin(outpoint.to_string(), recipient.to_string(), block.to_string())
        .await
        .map_err(rpc_err)?;
    cli.print(&r, || {
        format!(
            "claim for {} to {} submitted; validators check it against their bitcoinds\nfollow it with: \
             sidechain-cli pegstatus {}",
            r.outpoint, r.recipient, r.outpoint
        )
    })
}

/// The least fee a burn paying `script` must carry at `rate_sat_vb`: the ledger's own rule
/// (`ledger::pegout::pegout_fee`: `min_fee` plus the lone batch paying it at twice the rate), with the
/// node's figure for the batch around the payout output.
fn required_pegout_fee(
    min_fee: Amount,
    fed: &rpc::types::FederationInfo,
    rate_sat_vb: u64,
    script: &bitcoin::Script,
) -> Amount {
    ledger::pegout::pegout_fee(min_fee, rate_sat_vb, fed.pegout_batch_share_vbytes, script)
}

/// `pegout <address> <amount> [--fee]`: checks the address against the node's network, signs and submits a
/// `PegOut` with the wallet key.
pub async fn pegout(cli: &Cli, address: &str, amount: &str, fee: Option<&str>) -> Result<()> {
    let amount = parse_amount(amount)?;
    if amount == Amount::ZERO {
        bail!("amount must be positive");
    }
    let unchecked = address
        .trim()
        .parse::<Address<NetworkUnchecked>>()
        .with_context(|| format!("{address:?} is not a Bitcoin address"))?;
    let wallet = Wallet::load(cli.wallet_path()?)?;
    let client = cli.client()?;
    let fed = client.get_federation_info().await.map_err(rpc_err)?;
    let network: Network = fed
        .network
        .parse()
        .with_context(|| format!("the node reports an unknown Bitcoin network {:?}", fed.network))?;
    if !unchecked.is_valid_for_network(network) {
        bail!(
            "{address} is not an address on the node's Bitcoin network ({network}); refusing to peg out to it \
             (the coins would be burned for an address the federation cannot pay)"
        );
    }
    let btc_address = unchecked.assume_checked();
    let script = btc_address.script_pubkey();
    let info = client.get_blockchain_info().await.map_err(rpc_err)?;
    let required = required_pegout_fee(info.min_fee, &fed, fed.pegout_fee_rate_sat_vb, &script);
    let fee = match fee {
        Some(f) => {
            let f = parse_amount(f)?;
            if f < required {
                bail!(
                    "fee {} sat is below the least a peg-out to {btc_address} pays: {} sat",
                    f.to_sat(),
                    required.to_sat()
                );
            }
            f
        }
        // The agreed rate may rise by one step (an eighth, at least 1 sat/vB) before the burn is in a block:
        // price the default fee at that step so the burn does not turn too cheap on its way.
        None => {
            let rate = fed.pegout_fee_rate_sat_vb;
            let next = ledger::fee_rate::step_towards(rate, u64::MAX);
            required_pegout_fee(info.min_fee, &fed, next, &script)
        }
    };
    let account = funded_account(&client, &wallet, amount, fee).await?;
    let tx = wallet.pegout(&info.genesis_hash, account.nonce, script.to_bytes(), amount, fee);
    let raw = hex::encode(borsh::to_vec(&tx).context("encoding the transaction")?);
    let txid = client.send_raw_transaction(raw).await.map_err(rpc_err)?;
    let out = serde_json::json!({
        "burn_txid": txid,
        "btc_address": btc_address.to_string(),
        "network": network.to_string(),
        "amount_sat": amount.to_sat(),
        "fee_sat": fee.to_sat(),
        "nonce": account.nonce,
    });
    cli.print(&out, || {
        format!(
            "burned {} BTC (fee {} sat) to be paid to {btc_address} ({network})\nburn txid {txid}\n\
             follow it with: sidechain-cli pegoutstatus {txid}",
            btc_string(amount),
            fee.to_sat()
        )
    })
}

/// `pegoutstatus <burn txid>`: the burn's stage.
pub async fn pegoutstatus(cli: &Cli, txid: TxId, bitcoind: &BitcoindArgs) -> Result<()> {
    let own_bitcoind = bitcoind.client("checking the payout")?;
    if own_bitcoind.is_some() && !cli.verify.verify {
        bail!("checking the payout on your bitcoind (--bitcoind-rpc-url) goes with --verify");
    }
    let client = cli.client()?;
    let mut verifier = crate::verify::Verifier::start(&cli.verify, &client).await?;
    let prove = verifier.is_some().then_some(true);
    let s = match client.get_pegout_status(txid.to_string(), prove).await {
        Ok(s) => s,
        Err(ClientError::Call(obj)) if obj.code() == errors::NOT_FOUND && prove.is_some() => {
            bail!("the node says no committed burn has txid {txid}; --verify cannot check that (no proof of absence)")
        }
        Err(ClientError::Call(obj)) if obj.code() == errors::NOT_FOUND => {
            bail!("no committed burn has txid {txid} (a burn still in the mempool is not recorded yet)")
        }
        Err(e) => return Err(rpc_err(e)),
    };
    // Under --verify, what is printed is the status the proved records give (the node's answer agreeing).
    let (s, verified) = match verifier.as_mut() {
        None => (s, None),
        Some(v) => {
            // The network only names the proved script as an address: the user's own bitcoind says which,
            // else the node does.
            let network: Network = match &own_bitcoind {
                Some(b) => {
                    let chain = b.get_blockchain_info()?.chain;
                    Network::from_core_arg(&chain)
                        .with_context(|| format!("your bitcoind runs an unknown network {chain:?}"))?
                }
                None => {
                    let fed = client.get_federation_info().await.map_err(rpc_err)?;
                    fed.network
                        .parse()
                        .with_context(|| format!("the node reports an unknown Bitcoin network {:?}", fed.network))?
                }
            };
            let at = s.proof.as_ref().map(|p| p.height);
            let (proved, verified) = v.check(&client, at, |light| s.verify(light, &txid, network)).await?;
            (proved, Some(verified))
        }
    };
    let paid_on_your_bitcoind = match &own_bitcoind {
        Some(b) => Some(check_payout(b, &s)?),
        None => None,
    };
    let mut shown = serde_json::to_value(&s)?;
    if let (Some(p), Some(obj)) = (&paid_on_your_bitcoind, shown.as_object_mut()) {
        obj.insert("paid_on_your_bitcoind".into(), serde_json::to_value(p)?);
    }
    cli.print_checked(&shown, verified.as_ref(), || {
        let mut out = describe_pegout(&s);
        if let Some(p) = &paid_on_your_bitcoind {
            out.push_str(&format!(
                "\nchecked on your own bitcoind: BTC tx {} output {} pays {} sat, in block {} at height {} of its \
                 active chain",
                p.btc_txid,
                p.vout,
                s.amount.to_sat(),
                p.btc_block_hash,
                p.btc_height
            ));
        }
        out
    })
}

/// The payout as the user's own bitcoind shows it.
#[derive(Serialize)]
struct PaidOnBitcoin {
    btc_txid: Txid,
    vout: usize,
    btc_block_hash: BlockHash,
    btc_height: u32,
}

/// Checks on the user's own bitcoind that the proved payout is there: the block the proved burn record
/// names is the one at that height of its active chain, its transactions match the header's Merkle root,
/// and one of the batch's versions in it pays the burn's address exactly the burned amount.
fn check_payout(bitcoind: &BitcoindClient, s: &rpc::types::PegOutInfo) -> Result<PaidOnBitcoin> {
    let paid = s.paid_in.as_ref().context("the proved burn is not paid yet: no payout to check on Bitcoin")?;
    let hash: BlockHash = paid.btc_block_hash.parse().context("the proved BTC block hash")?;
    let active: BlockHash = bitcoind.call("getblockhash", &[serde_json::json!(paid.btc_height)])?;
    if active != hash {
        bail!(
            "your bitcoind's active chain has block {active} at height {}, not the paying block {hash}",
            paid.btc_height
        );
    }
    let block = bitcoind.get_block(&hash)?;
    if !block.check_merkle_root() {
        bail!("block {hash} from your bitcoind does not match its Merkle root");
    }
    let batch = s.batch.as_ref().context("a paid burn without its batch")?;
    let versions = std::iter::once(&batch.btc_txid)
        .chain(batch.earlier_btc_txids.iter())
        .map(|t| t.parse::<Txid>())
        .collect::<Result<Vec<_>, _>>()
        .context("a batch txid")?;
    let address = s.btc_address.as_deref().context("the burn pays a script that is not an address")?;
    let script =
        address.parse::<Address<NetworkUnchecked>>().context("the burn's address")?.assume_checked().script_pubkey();
    let tx = block
        .txdata
        .iter()
        .find(|t| versions.contains(&t.compute_txid()))
        .with_context(|| format!("no version of batch {} ({versions:?}) is in block {hash}", batch.id))?;
    let vout = tx.output.iter().position(|o| o.script_pubkey == script && o.value == s.amount).with_context(|| {
        format!("BTC tx {} pays {address} no output of {} sat", tx.compute_txid(), s.amount.to_sat())
    })?;
    Ok(PaidOnBitcoin { btc_txid: tx.compute_txid(), vout, btc_block_hash: hash, btc_height: paid.btc_height })
}

/// A person's reading of a peg-out's status.
fn describe_pegout(s: &rpc::types::PegOutInfo) -> String {
    {
        let mut out = format!(
            "burn {} ({}): {}\n{} BTC to {} (fee {} sat), burned at height {}",
            s.burn_id,
            s.burn_txid,
            s.stage,
            btc_string(s.amount),
            s.btc_address.as_deref().unwrap_or("(non-address script)"),
            s.fee.to_sat(),
            s.burned_at
        );
        match (&s.waiting, &s.wait) {
            (Some(w), _) => out.push_str(&format!("\n{w}")),
            (None, Some(w)) => out.push_str(&format!("\n{}", w.description)),
            (None, None) => {}
        }
        if let Some(b) = &s.batch {
            out.push_str(&format!(
                "\nbatch {} version {}: btc txid {}, signatures {}, fee {} sat, {} vbytes",
                b.id,
                b.version,
                b.btc_txid,
                b.signatures,
                b.fee.to_sat(),
                b.vbytes
            ));
            for (i, t) in b.earlier_btc_txids.iter().enumerate() {
                out.push_str(&format!("\n  replaced version {}: btc txid {t}", i + 1));
            }
        }
        if let Some(h) = s.confirmed_btc_height {
            out.push_str(&format!("\nconfirmed in BTC block {h} (final once the anchor covers it)"));
        }
        if let Some(p) = &s.paid_in {
            out.push_str(&format!("\npaid in BTC block {} {}", p.btc_height, p.btc_block_hash));
        }
        out
    }
}
