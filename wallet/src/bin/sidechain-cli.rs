//! `sidechain-cli`: a wallet (one ed25519 key in a 0600 file) and a client of sidechaind's JSON-RPC in
//! one binary. Human output by default, `--json` for scripts. Amounts always carry a unit (`1.5btc`,
//! `150000sat`).
//!
//! The peg commands (`pegin`, `pegstatus`, `claimpegin`, `pegout`, `pegoutstatus`) are in `sidechain-cli/peg.rs`,
//! the federation-change commands in `sidechain-cli/federation.rs`, the signing switch in `sidechain-cli/signing.rs`.

#[path = "sidechain-cli/federation.rs"]
mod federation;
#[path = "sidechain-cli/peg.rs"]
mod peg;
#[path = "sidechain-cli/signing.rs"]
mod signing;
#[path = "sidechain-cli/verify.rs"]
mod verify;

use anyhow::{bail, Context, Result};
use bitcoin::Amount;
use clap::{Parser, Subcommand};
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::HttpClient;
use primitives::{AccountId, Hash32, TxId};
use rpc::types::{
    btc_string, AccountInfo, BlockTxs, GetBlockResult, HistoryEntryInfo, HistoryKindInfo, TxInfo, TxKindInfo,
};
use rpc::{BlockRef, ClientAuth, SidechainApiClient};
use serde::Serialize;
use std::path::PathBuf;
use wallet::{parse_amount, Wallet};

#[derive(Parser)]
#[command(name = "sidechain-cli", version, about = "Wallet and JSON-RPC client for sidechaind")]
struct Cli {
    /// URL of sidechaind's JSON-RPC server.
    #[arg(long, global = true, env = "SIDECHAIN_RPC_URL", default_value = "http://127.0.0.1:18443")]
    rpc_url: String,
    /// Cookie file of the node (`<datadir>/.cookie`).
    #[arg(long, global = true, env = "SIDECHAIN_RPC_COOKIE", conflicts_with = "rpc_user")]
    rpc_cookie: Option<PathBuf>,
    /// rpcauth user name (with --rpc-password).
    #[arg(long, global = true, env = "SIDECHAIN_RPC_USER", requires = "rpc_password")]
    rpc_user: Option<String>,
    /// rpcauth password (prefer the SIDECHAIN_RPC_PASSWORD environment variable: the command line is
    /// visible to other users).
    #[arg(long, global = true, env = "SIDECHAIN_RPC_PASSWORD", hide_env_values = true, requires = "rpc_user")]
    rpc_password: Option<String>,
    /// Wallet key file (for createwallet, getaddress, getbalance, send, pegin; the default recipient of
    /// getpeginaddress and claimpegin).
    #[arg(long, global = true, env = "SIDECHAIN_WALLET")]
    wallet: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    verify: verify::VerifyArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new wallet key file (mode 0600); never overwrites an existing file.
    Createwallet,
    /// Print the wallet's account id (where others send to).
    Getaddress,
    /// Print the Bitcoin deposit address bound to the wallet's account (or to --account): BTC sent there
    /// is minted to that account after the required confirmations.
    Getpeginaddress {
        /// Another recipient account id (64 hex digits) instead of the wallet's.
        #[arg(long, value_parser = parse_account)]
        account: Option<AccountId>,
    },
    /// Show the federation's Bitcoin wallet: descriptor, threshold, address, peg-in rules, peg totals.
    Getfederationinfo,
    /// Register the wallet's deposit address (a RegisterDeposit paying the registration fee) and print it
    /// with the confirmations a deposit needs; a wallet that cannot pay the fee gets the address and the
    /// claim to submit instead. With --fund, also pay it on regtest and print the deposit's txid:vout.
    Pegin {
        #[command(flatten)]
        args: peg::FundArgs,
    },
    /// Show where a deposit is: unknown, seen, claim pending or rejected, minted, or below the minimum.
    Pegstatus {
        /// The deposit output, `txid:vout` as bitcoin-cli shows it.
        #[arg(value_parser = rpc::types::parse_btc_outpoint)]
        outpoint: bitcoin::OutPoint,
    },
    /// Claim a deposit whose registration was missed or had expired, for the wallet's account (or
    /// --account): validators check it against their bitcoinds and mint it.
    Claimpegin {
        /// The deposit output, `txid:vout` as bitcoin-cli shows it.
        #[arg(value_parser = rpc::types::parse_btc_outpoint)]
        outpoint: bitcoin::OutPoint,
        /// The BTC block holding it, as bitcoin-cli shows it.
        #[arg(value_parser = rpc::types::parse_btc_block_hash)]
        block: bitcoin::BlockHash,
        /// The recipient account id (64 hex digits) instead of the wallet's.
        #[arg(long, value_parser = parse_account)]
        account: Option<AccountId>,
    },
    /// Peg out: burn an amount (plus the fee) from the wallet's account and have the federation pay it to a
    /// Bitcoin address on the node's network.
    Pegout {
        /// The Bitcoin address to pay (must be on the node's network, see getfederationinfo).
        address: String,
        /// Amount with a unit: `0.01btc` or `1000000sat`; the address receives exactly this.
        amount: String,
        /// Fee with a unit (default: the least the chain accepts: min_fee + 2 * output vbytes * fee rate).
        #[arg(long)]
        fee: Option<String>,
    },
    /// Show where a peg-out is: queued, batched, signed or paid.
    Pegoutstatus {
        /// The sidechain txid of the burn (what pegout printed).
        #[arg(value_parser = rpc::types::parse_burn_txid)]
        txid: TxId,
        /// With --verify, also check the payout on your own bitcoind: the proved paying block is in its
        /// active chain and pays your address the amount.
        #[command(flatten)]
        bitcoind: peg::BitcoindArgs,
    },
    /// Print the wallet's balance and nonce.
    Getbalance,
    /// Send an amount to an account: builds, signs and submits a transfer.
    Send {
        /// Recipient account id (64 hex digits).
        #[arg(value_parser = parse_account)]
        to: AccountId,
        /// Amount with a unit: `1.5btc` or `150000sat`.
        amount: String,
        /// Fee with a unit (default: the chain's minimum fee).
        #[arg(long)]
        fee: Option<String>,
        /// Nonce to use (default: the account's committed nonce; set it to send again before the
        /// previous transaction is in a block).
        #[arg(long)]
        nonce: Option<u64>,
    },
    /// Show a block by height or hash.
    Getblock {
        /// Block height or block hash.
        block: BlockRef,
        /// 0: hex; 1: JSON with txids; 2: JSON with full transactions.
        #[arg(long, default_value_t = 1)]
        verbosity: u8,
    },
    /// Show the chain tip, anchor and node status.
    Getblockchaininfo,
    /// Show any account's balance and nonce.
    Getaccount {
        /// Account id (64 hex digits).
        #[arg(value_parser = parse_account)]
        account: AccountId,
    },
    /// List what committed transactions did to the wallet's account (or --account), newest first:
    /// transfers, deposit registration, burns, minted deposits and paid-out burns.
    History {
        /// Another account id (64 hex digits) instead of the wallet's.
        #[arg(long, value_parser = parse_account)]
        account: Option<AccountId>,
        /// How many entries (at most 1000).
        #[arg(long, default_value_t = 20)]
        count: u64,
        /// How many of the newest entries to skip (the next page).
        #[arg(long, default_value_t = 0)]
        skip: u64,
    },
    /// Show a transaction from the mempool or the chain.
    Gettransaction {
        /// Transaction id.
        txid: TxId,
    },
    /// Show the mempool's size.
    Getmempoolinfo,
    /// Operator: this validator's approval of a federation change (a JSON file: validators, peg_threshold,
    /// activation_height), signed by its node; prints the approval as JSON.
    Approvefederationchange {
        /// The proposal file.
        proposal: PathBuf,
    },
    /// Operator: stop this validator from releasing any peg signature share (batches, bumps, sweeps,
    /// refreshes) until resumesigning; consensus goes on. Kept across restarts.
    Pausesigning,
    /// Operator: let this validator sign peg transactions again after pausesigning.
    Resumesigning,
    /// Operator: submit a federation change with the approvals of 2f+1 validators in force.
    Submitfederationchange {
        /// The proposal file.
        proposal: PathBuf,
        /// Approval files (what approvefederationchange printed), one per validator.
        #[arg(required = true)]
        approvals: Vec<PathBuf>,
    },
}

/// An argument that is not an account id.
#[derive(Debug, thiserror::Error)]
#[error("expected an account id of 64 hex digits, got {0:?}")]
struct NotAnAccount(String);

fn parse_account(s: &str) -> Result<AccountId, NotAnAccount> {
    s.parse::<Hash32>().map(AccountId).map_err(|_| NotAnAccount(s.to_string()))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// One line for a transaction: what it does, who paid, the fee.
fn describe_tx(t: &TxInfo) -> String {
    let from = t.from.map_or_else(|| "-".to_string(), |f| f.to_string());
    match &t.kind {
        TxKindInfo::Transfer { to, amount } => format!(
            "transfer {} BTC from {from} to {to} (fee {} sat, nonce {})",
            btc_string(*amount),
            t.fee.to_sat(),
            t.nonce.unwrap_or_default()
        ),
        TxKindInfo::Evidence { offender, height, round } => {
            format!("evidence: validator {offender} signed twice at height {height} round {round}")
        }
        TxKindInfo::Pegout { btc_script_pubkey, amount } => format!(
            "peg-out of {} BTC to script {btc_script_pubkey} from {from} (fee {} sat)",
            btc_string(*amount),
            t.fee.to_sat()
        ),
        TxKindInfo::Registerdeposit => format!("register deposit address of {from} (fee {} sat)", t.fee.to_sat()),
        TxKindInfo::Reportreorg { validator, btc_height, .. } => {
            format!("validator {validator} reports BTC anchor {btc_height} reorganised away")
        }
        TxKindInfo::Settle { batch, btc_txid, btc_height, .. } => {
            format!("peg-out batch {batch} paid on Bitcoin: {btc_txid} in BTC block {btc_height}")
        }
        TxKindInfo::Pegoutsignatures { validator, batch, inputs, .. } => {
            format!("signer {validator} signs the {inputs} inputs of batch {batch}")
        }
        TxKindInfo::Frostsigning { validator, batch, attempt, round, inputs, .. } => {
            format!("signer {validator}'s FROST {round} for the {inputs} inputs of batch {batch}, attempt {attempt}")
        }
        TxKindInfo::Reconfigure { activation_height, validators, peg_threshold, approvals } => format!(
            "federation change to {validators} validators ({peg_threshold}-of-{validators} wallet) from height \
             {activation_height}, approved by {approvals}"
        ),
        TxKindInfo::Feeratevote { validator, sat_per_vb } => {
            format!("validator {validator} votes a Bitcoin fee rate of {sat_per_vb} sat/vB")
        }
        TxKindInfo::Resumepeg { validator, btc_height, btc_block_hash } => {
            format!("validator {validator} votes to resume the peg from BTC block {btc_height} {btc_block_hash}")
        }
        TxKindInfo::Mint { btc_outpoint, recipient, amount, btc_height, .. } => {
            format!(
                "mint {} BTC to {recipient} for deposit {btc_outpoint} (BTC block {btc_height})",
                btc_string(*amount)
            )
        }
    }
}

/// Shows an RPC error as `message (code N)` rather than jsonrpsee's debug form.
fn rpc_err(e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Call(obj) => anyhow::anyhow!("{} (rpc error {})", obj.message(), obj.code()),
        other => anyhow::anyhow!("rpc request failed: {other}"),
    }
}

impl Cli {
    fn client(&self) -> Result<HttpClient> {
        let auth = match (&self.rpc_cookie, &self.rpc_user, &self.rpc_password) {
            (Some(path), _, _) => ClientAuth::Cookie(path.clone()),
            (None, Some(user), Some(password)) => {
                ClientAuth::UserPass { user: user.clone(), password: password.clone() }
            }
            _ => bail!("no rpc credentials: pass --rpc-cookie <datadir>/.cookie or --rpc-user and --rpc-password"),
        };
        Ok(rpc::connect(&self.rpc_url, &auth)?)
    }

    fn wallet_path(&self) -> Result<&PathBuf> {
        self.wallet.as_ref().context("no wallet: pass --wallet FILE (or set SIDECHAIN_WALLET)")
    }

    /// Prints `value`, with what `--verify` checked when it did (a `verified` field in JSON, a last line
    /// for people).
    fn print_checked<T: Serialize>(
        &self,
        value: &T,
        verified: Option<&verify::Verified>,
        human: impl FnOnce() -> String,
    ) -> Result<()> {
        let Some(v) = verified else { return self.print(value, human) };
        let mut json = serde_json::to_value(value)?;
        if let Some(obj) = json.as_object_mut() {
            obj.remove("proof");
            obj.insert("verified".into(), serde_json::to_value(v)?);
        }
        self.print(&json, || format!("{}\n{}", human(), v.line()))
    }

    fn print<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value)?);
        } else {
            println!("{}", human());
        }
        Ok(())
    }
}

fn human_account(a: &AccountInfo) -> String {
    format!("account {}\nbalance {} BTC ({} sat)\nnonce   {}", a.account, a.balance_btc, a.balance.to_sat(), a.nonce)
}

/// One line per entry: where, what, how much (amounts in sat, Bitcoin values as bitcoin-cli shows them).
fn human_history(entries: &[HistoryEntryInfo]) -> String {
    if entries.is_empty() {
        return "no transactions".into();
    }
    let lines = entries.iter().map(|e| {
        let what = match &e.kind {
            HistoryKindInfo::Sent { to, amount, fee } => {
                format!("sent      -{} sat to {to} (fee {} sat)", amount.to_sat(), fee.to_sat())
            }
            HistoryKindInfo::Received { from, amount } => format!("received  +{} sat from {from}", amount.to_sat()),
            HistoryKindInfo::Registered { fee } => format!("registered deposit address (fee {} sat)", fee.to_sat()),
            HistoryKindInfo::Burned { burn_id, amount, fee, btc_address } => format!(
                "burned    -{} sat (burn {burn_id}, fee {} sat) to {}",
                amount.to_sat(),
                fee.to_sat(),
                btc_address.as_deref().unwrap_or("a non-address script")
            ),
            HistoryKindInfo::Minted { btc_outpoint, amount, credited, fee } => format!(
                "minted    +{} sat from deposit {btc_outpoint} of {} sat (peg-in fee {} sat)",
                credited.to_sat(),
                amount.to_sat(),
                fee.to_sat()
            ),
            HistoryKindInfo::PaidOut { burn_id, amount, btc_txid } => {
                format!("paid out  {} sat of burn {burn_id} in BTC tx {btc_txid}", amount.to_sat())
            }
        };
        format!("height {:>6} #{:<3} {what}  (tx {})", e.height, e.index, e.txid)
    });
    lines.collect::<Vec<_>>().join("\n")
}

/// `getaccount` / `getbalance`, verified under `--verify`.
async fn show_account(cli: &Cli, account: AccountId) -> Result<()> {
    let client = cli.client()?;
    let Some(mut verifier) = verify::Verifier::start(&cli.verify, &client).await? else {
        let a = client.get_account(account, None).await.map_err(rpc_err)?;
        return cli.print(&a, || human_account(&a));
    };
    let a = client.get_account(account, Some(true)).await.map_err(rpc_err)?;
    let at = a.proof.as_ref().map(|p| p.height);
    let (_, verified) = verifier.check(&client, at, |light| a.verify(light, &account)).await?;
    cli.print_checked(&a, Some(&verified), || human_account(&a))
}

async fn run(cli: Cli) -> Result<()> {
    let verifiable = matches!(
        cli.command,
        Command::Getbalance
            | Command::Getaccount { .. }
            | Command::Pegstatus { .. }
            | Command::Pegoutstatus { .. }
            | Command::History { .. }
    );
    if cli.verify.verify && !verifiable {
        bail!("--verify checks getaccount, getbalance, pegstatus, pegoutstatus and history; this command's answer has no proof");
    }
    match &cli.command {
        Command::Createwallet => {
            let path = cli.wallet_path()?;
            let w = Wallet::create(path)?;
            let out = serde_json::json!({ "wallet": path, "account": w.account(), "public_key": w.public_key() });
            cli.print(&out, || format!("created wallet {}\naccount {}", path.display(), w.account()))
        }
        Command::Getpeginaddress { account } => {
            let recipient = match account {
                Some(a) => *a,
                None => Wallet::load(cli.wallet_path()?)?.account(),
            };
            let a = cli.client()?.get_pegin_address(recipient).await.map_err(rpc_err)?;
            cli.print(&a, || {
                format!(
                    "{}\nsend BTC ({} network) to this address; it is minted to {} after {} confirmations \
                     (deposits below {} sat are recorded, not minted)",
                    a.address,
                    a.network,
                    a.recipient,
                    a.confirmations_required,
                    a.min_amount.to_sat()
                )
            })
        }
        Command::Getfederationinfo => {
            let f = cli.client()?.get_federation_info().await.map_err(rpc_err)?;
            cli.print(&f, || {
                format!(
                    "descriptor  {}\nthreshold   {} of {}\naddress     {} ({})\npeg-in      {} confirmations, \
                     minimum {} sat, fee {} sat\nbtc held    {} BTC ({} deposits, {} sat held below the minimum)\n\
                     supply      {} BTC (minted {} BTC, peg-in fees {} sat)\nepoch       {} since height {} ({} \
                     validators){}\nsweep       {}\nemergency   {}",
                    f.descriptor,
                    f.threshold,
                    f.keys,
                    f.address,
                    f.network,
                    f.pegin_confirmations,
                    f.pegin_min_amount.to_sat(),
                    f.pegin_fee.to_sat(),
                    btc_string(f.peg_totals.btc_held),
                    f.peg_totals.deposits,
                    f.peg_totals.below_minimum.to_sat(),
                    btc_string(f.peg_totals.supply),
                    btc_string(f.peg_totals.minted),
                    f.peg_totals.pegin_fees.to_sat(),
                    f.changes.epoch,
                    f.changes.epoch_from_height,
                    f.changes.validators.len(),
                    f.changes.pending.as_ref().map_or(String::new(), |p| format!(
                        "; epoch {} ({} validators, {}-of-{}) takes over at height {}",
                        p.epoch,
                        p.validators.len(),
                        p.peg_threshold,
                        p.validators.len(),
                        p.activation_height
                    )),
                    if f.changes.sweep_complete {
                        "complete: every coin is in the wallet in force".to_string()
                    } else {
                        f.changes
                            .wallets
                            .iter()
                            .filter(|w| !w.in_force)
                            .map(|w| format!("epoch {}: {} outputs, {} BTC", w.epoch, w.utxos, btc_string(w.amount)))
                            .collect::<Vec<_>>()
                            .join("; ")
                    },
                    f.changes.emergency.as_ref().map_or("none".to_string(), |e| format!(
                        "{} of {} keys after {} BTC blocks (refreshed {} blocks before)",
                        e.threshold,
                        e.keys.len(),
                        e.delay_blocks,
                        e.refresh_margin_blocks
                    ))
                ) + &format!(
                    "\npeg-out cap {}",
                    f.pegout_limit.as_ref().map_or("off".to_string(), |l| format!(
                        "{} BTC per {} BTC blocks: {} BTC used, {} BTC left{}",
                        btc_string(l.limit),
                        l.window_btc_blocks,
                        btc_string(l.used),
                        btc_string(l.available),
                        l.head_waits_until_btc_height
                            .map_or(String::new(), |h| format!("; the next burn waits until BTC height {h}"))
                    ))
                )
            })
        }
        Command::Approvefederationchange { proposal } => federation::approve(&cli, proposal).await,
        Command::Submitfederationchange { proposal, approvals } => federation::submit(&cli, proposal, approvals).await,
        Command::Pausesigning => signing::set_paused(&cli, true).await,
        Command::Resumesigning => signing::set_paused(&cli, false).await,
        Command::Pegin { args } => peg::pegin(&cli, args).await,
        Command::Pegstatus { outpoint } => peg::pegstatus(&cli, *outpoint).await,
        Command::Claimpegin { outpoint, block, account } => peg::claimpegin(&cli, *outpoint, *block, *account).await,
        Command::Pegout { address, amount, fee } => peg::pegout(&cli, address, amount, fee.as_deref()).await,
        Command::Pegoutstatus { txid, bitcoind } => peg::pegoutstatus(&cli, *txid, bitcoind).await,
        Command::Getaddress => {
            let w = Wallet::load(cli.wallet_path()?)?;
            cli.print(&serde_json::json!({ "account": w.account() }), || w.account().to_string())
        }
        Command::Getbalance => {
            let w = Wallet::load(cli.wallet_path()?)?;
            show_account(&cli, w.account()).await
        }
        Command::Getaccount { account } => show_account(&cli, *account).await,
        Command::History { account, count, skip } => {
            let account = match account {
                Some(a) => *a,
                None => Wallet::load(cli.wallet_path()?)?.account(),
            };
            let client = cli.client()?;
            let Some(mut verifier) = verify::Verifier::start_from_genesis(&cli.verify, &client).await? else {
                let entries =
                    client.list_transactions(account, Some(*count), Some(*skip), None).await.map_err(rpc_err)?;
                return cli.print(&entries, || human_history(&entries));
            };
            let mut entries =
                client.list_transactions(account, Some(*count), Some(*skip), Some(true)).await.map_err(rpc_err)?;
            let (followed_to, unproved) = verifier.check_history(&client, &account, &entries).await?;
            entries.iter_mut().for_each(|e| e.proof = None);
            let shown: Vec<serde_json::Value> = entries
                .iter()
                .zip(&unproved)
                .map(|(e, u)| {
                    let mut v = serde_json::to_value(e).unwrap_or_default();
                    v["unproved"] = serde_json::json!(u);
                    v
                })
                .collect();
            let out = serde_json::json!({ "entries": shown, "verified": { "followed_to": followed_to } });
            cli.print(&out, || {
                let lines: Vec<String> = human_history(&entries)
                    .lines()
                    .zip(unproved.iter().map(Some).chain(std::iter::repeat(None)))
                    .map(|(line, u)| match u {
                        Some(u) if !u.is_empty() => format!("{line}  [unproved: {}]", u.join(", ")),
                        _ => line.to_string(),
                    })
                    .collect();
                format!(
                    "{}\nverified: each entry's transaction is in its certified block (headers followed to height \
                     {followed_to}) and says what the entry says, but for the fields marked unproved; that no entry \
                     is missing is the node's word",
                    lines.join("\n")
                )
            })
        }
        Command::Send { to, amount, fee, nonce } => send(&cli, *to, amount, fee.as_deref(), *nonce).await,
        Command::Getblock { block, verbosity } => {
            let b = cli.client()?.get_block(*block, Some(*verbosity)).await.map_err(rpc_err)?;
            cli.print(&b, || match &b {
                GetBlockResult::Hex(h) => h.clone(),
                GetBlockResult::Json(b) => {
                    let mut s = format!(
                        "block {} at height {} ({} confirmations)\ntime_ms {}\nproposer {}\nstate_root {}\n\
                         btc anchor {} {}\ncommit: round {}, {} signatures\n{} transactions",
                        b.hash,
                        b.height,
                        b.confirmations,
                        b.time_ms,
                        b.proposer,
                        b.state_root,
                        b.btc_anchor.height,
                        b.btc_anchor.hash,
                        b.commit.round,
                        b.commit.signatures.len(),
                        b.tx_count
                    );
                    match &b.tx {
                        BlockTxs::Ids(ids) => ids.iter().for_each(|id| s.push_str(&format!("\n  {id}"))),
                        BlockTxs::Full(txs) => {
                            txs.iter().for_each(|t| s.push_str(&format!("\n  {}: {}", t.txid, describe_tx(t))))
                        }
                    }
                    s
                }
            })
        }
        Command::Getblockchaininfo => {
            let i = cli.client()?.get_blockchain_info().await.map_err(rpc_err)?;
            cli.print(&i, || {
                format!(
                    "chain       {}\ngenesis     {}\nheight      {}\nbest block  {}\nstate root  {}\n\
                     btc anchor  {} {}\npeg         {:?}, {} BTC held ({} BTC in {} coins not worth spending now), \
                     supply {} BTC ({} BTC from genesis), reserve {}\nmin fee     {} sat\nvalidator   {}\n\
                     syncing     {}\nsigning     {}",
                    i.chain_id,
                    i.genesis_hash,
                    i.height,
                    i.best_block_hash,
                    i.state_root,
                    i.btc_anchor.height,
                    i.btc_anchor.hash,
                    i.peg_status,
                    btc_string(i.peg.btc_held),
                    btc_string(i.peg.uneconomic),
                    i.peg.uneconomic_coins,
                    btc_string(i.peg.supply),
                    btc_string(i.peg.genesis_supply),
                    if i.peg.reserve_ok { "ok" } else { "SHORT" },
                    i.min_fee.to_sat(),
                    i.validator,
                    i.syncing,
                    signing::human(&i.signing)
                )
            })
        }
        Command::Gettransaction { txid } => {
            let t = cli.client()?.get_transaction(*txid).await.map_err(rpc_err)?;
            cli.print(&t, || {
                let place = match (t.height, t.block_hash) {
                    (Some(h), Some(b)) => format!("in block {b} at height {h} ({} confirmations)", t.confirmations),
                    _ => "in the mempool".to_string(),
                };
                format!("transaction {}\n{place}\n{}", t.tx.txid, describe_tx(&t.tx))
            })
        }
        Command::Getmempoolinfo => {
            let m = cli.client()?.get_mempool_info().await.map_err(rpc_err)?;
            cli.print(&m, || format!("{} transactions, {} bytes (limit {} bytes)", m.size, m.bytes, m.max_bytes))
        }
    }
}

/// The wallet's account, refused with the shortfall unless its balance covers `amount` plus `fee`.
async fn funded_account(client: &HttpClient, wallet: &Wallet, amount: Amount, fee: Amount) -> Result<AccountInfo> {
    let account = client.get_account(wallet.account(), None).await.map_err(rpc_err)?;
    let needed = amount.checked_add(fee).context("amount plus fee overflows")?;
    if account.balance < needed {
        bail!(
            "insufficient balance: {} BTC available, {} BTC needed (amount {} + fee {})",
            account.balance_btc,
            btc_string(needed),
            btc_string(amount),
            btc_string(fee)
        );
    }
    Ok(account)
}

async fn send(cli: &Cli, to: AccountId, amount: &str, fee: Option<&str>, nonce: Option<u64>) -> Result<()> {
    let amount = parse_amount(amount)?;
    if amount == Amount::ZERO {
        bail!("amount must be positive");
    }
    let wallet = Wallet::load(cli.wallet_path()?)?;
    let client = cli.client()?;
    let info = client.get_blockchain_info().await.map_err(rpc_err)?;
    let fee = match fee {
        Some(f) => parse_amount(f)?,
        None => info.min_fee,
    };
    let account = funded_account(&client, &wallet, amount, fee).await?;
    let nonce = nonce.unwrap_or(account.nonce);
    let tx = wallet.transfer(&info.genesis_hash, nonce, to, amount, fee);
    let raw = hex::encode(borsh::to_vec(&tx).context("encoding the transaction")?);
    let txid = client.send_raw_transaction(raw).await.map_err(rpc_err)?;
    let out = serde_json::json!({
        "txid": txid, "to": to, "amount_sat": amount.to_sat(), "fee_sat": fee.to_sat(), "nonce": nonce,
    });
    cli.print(&out, || format!("sent {} BTC to {to}, fee {} sat\ntxid {txid}", btc_string(amount), fee.to_sat()))
}
