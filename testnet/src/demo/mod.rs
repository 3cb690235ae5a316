//! The demo `scripts/testnet` runs: a local federation (validators, each with its own regtest bitcoind,
//! and a full node, all real processes), and the user's path through it with the real `sidechain-cli`:
//! Alice, who holds only BTC, pegs in; the demo mines the confirmations and follows the deposit to its
//! mint; Alice pays Bob; balances, state roots and the reserve are read back from every node; Bob pegs out
//! part of it to a BTC address and the demo follows the burn until Bitcoin paid it; a summary table is
//! printed.
//!
//! Why the CLI and not the typed client: the demo is also the end-to-end check of what a user types, and
//! its `--json` output is parsed here, so a CLI that prints something else fails the demo.
//!
//! The invariants it checks: on every node, Alice holds exactly the deposit minus the peg-in fee, the
//! transfer and its fee, Bob holds the transfer, and the BTC the federation holds equals the whole supply
//! but the one genesis allocation (Alice's registration fee, now in the fee pool); after the peg-out, Bob's
//! BTC address holds exactly what he burned, nothing is owed, and the federation still holds exactly that.

mod pegout;

pub use pegout::PegOutReport;

use crate::federation::{sidechaind_path, Federation, FederationConfig, SidechainNode};
use anyhow::{bail, ensure, Context, Result};
use bitcoin::{Amount, OutPoint, Txid};
use rpc::client::SidechainApiClient;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one `sidechain-cli` call may take (`pegin --fund` waits up to 60 s for its registration).
const CLI_BOUND: Duration = Duration::from_secs(120);
/// How long the sidechain anchor may take to catch up with bitcoind before the deposit is confirmed.
const ANCHOR_BOUND: Duration = Duration::from_secs(60);
/// How long the deposit may take from its N-th confirmation to its mint.
const MINT_BOUND: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// Number of validators (3f+1).
    pub validators: usize,
    /// The `sidechaind` binary.
    pub sidechaind: PathBuf,
    /// The `sidechain-cli` binary.
    pub cli: PathBuf,
    /// BTC Alice deposits (`pegin --fund`: paid on regtest from the CLI's own BTC key).
    pub deposit: Amount,
    /// What Alice then sends Bob on the sidechain.
    pub transfer: Amount,
    /// What Bob then pegs out to his BTC address.
    pub pegout: Amount,
    /// Taproot custody (the default): the validators run the FROST key generation before the genesis, the
    /// federation holds BTC in `tr()` outputs and signs by key path; `false` runs the `wsh` wallet.
    pub taproot: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        let daemon = sidechaind_path();
        let cli = daemon.with_file_name("sidechain-cli");
        DemoOptions {
            validators: 4,
            sidechaind: daemon,
            cli,
            deposit: Amount::from_sat(50_000_000),
            transfer: Amount::from_sat(12_345_678),
            pegout: Amount::from_sat(5_000_000),
            taproot: true,
        }
    }
}

/// What the peg-in looked like.
#[derive(Clone, Debug)]
pub struct PegInReport {
    /// The BTC transaction that paid Alice's deposit address.
    pub btc_txid: Txid,
    /// The deposit output.
    pub outpoint: OutPoint,
    /// Its value on Bitcoin.
    pub deposit: Amount,
    /// Alice's deposit address.
    pub address: String,
    /// Confirmations (N) a deposit needs.
    pub confirmations_required: u64,
    /// Height of the BTC block holding the deposit.
    pub btc_height: u64,
    /// Sidechain height right after the N-th confirmation was mined.
    pub confirmed_at: u64,
    /// Sidechain height of the block that minted it.
    pub minted_at: u64,
    /// Wall time from mining the N-th confirmation to `pegstatus` showing the mint.
    pub mint_wall: Duration,
    /// What Alice was credited.
    pub credited: Amount,
    /// The peg-in fee (to the fee pool).
    pub fee: Amount,
    /// The stages `pegstatus` showed, in order, as printed.
    pub stages: Vec<String>,
}

impl PegInReport {
    /// Sidechain blocks from the N-th confirmation to the mint.
    pub fn latency_blocks(&self) -> u64 {
        self.minted_at.saturating_sub(self.confirmed_at)
    }
}

/// `getblockchaininfo.peg`, the same on every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserve {
    /// BTC the federation holds (as of the anchor).
    pub btc_held: Amount,
    /// Every balance on the sidechain, fee pool included.
    pub supply: Amount,
    /// The part of `supply` the genesis created (test networks only; nothing backs it).
    pub genesis_supply: Amount,
    /// Whether what the peg created is backed.
    pub reserve_ok: bool,
}

impl Reserve {
    /// The reserve in `getblockchaininfo`'s `peg` object.
    fn read(peg: &serde_json::Value) -> anyhow::Result<Self> {
        Ok(Reserve {
            btc_held: sat(&peg["btc_held_sat"], "peg.btc_held_sat in getblockchaininfo")?,
            supply: sat(&peg["supply_sat"], "peg.supply_sat in getblockchaininfo")?,
            genesis_supply: sat(&peg["genesis_supply_sat"], "peg.genesis_supply_sat in getblockchaininfo")?,
            reserve_ok: peg["reserve_ok"].as_bool().context("no peg.reserve_ok in getblockchaininfo")?,
        })
    }

    /// What the peg created: the supply beyond the genesis balances.
    pub fn pegged(&self) -> Amount {
        self.supply.checked_sub(self.genesis_supply).unwrap_or(Amount::ZERO)
    }
}

/// `0.5 BTC held vs 0.5 BTC pegged (supply 0.50001 BTC, of it 0.00001 BTC test-network genesis balances)`:
/// the promise compares what the peg created with what the federation holds, and says what it leaves out.
impl std::fmt::Display for Reserve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} BTC held vs {} BTC pegged (supply {} BTC, of it {} BTC test-network genesis balances)",
            self.btc_held.to_btc(),
            self.pegged().to_btc(),
            self.supply.to_btc(),
            self.genesis_supply.to_btc()
        )
    }
}

/// What the demo saw, for the summary and for tests.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// Alice's peg-in.
    pub pegin: PegInReport,
    /// The reserve after the transfer.
    pub reserve: Reserve,
    /// What Alice sent Bob.
    pub transfer: Amount,
    /// The transfer's txid.
    pub txid: String,
    /// Its fee.
    pub tx_fee: Amount,
    /// The height its block was committed at.
    pub tx_height: u64,
    /// Blocks from submission to the block that holds it (inclusive of that block).
    pub blocks_to_commit: u64,
    /// Wall time from submission to every node showing Bob's balance.
    pub commit_wall: Duration,
    /// Per node: (name, height, state root at the common height, Alice's balance, Bob's balance).
    pub nodes: Vec<(String, u64, String, u64, u64)>,
    /// The common height the state roots were compared at.
    pub compared_at: u64,
    /// Bob's peg-out.
    pub pegout: PegOutReport,
    /// The reserve after the peg-out.
    pub reserve_after_pegout: Reserve,
    /// Wall time of the whole demo.
    pub wall: Duration,
}

impl DemoReport {
    /// The last line of `scripts/testnet --exit`.
    pub fn ok_line(&self) -> String {
        let p = &self.pegin;
        format!(
            "demo ok: {} nodes agree at height {}, peg-in {} BTC (btc tx {}) minted at height {}, +{} blocks ({:.2}s) \
             after its {} confirmations, transfer {} committed at height {} ({} blocks, {:.2}s), peg-out {} BTC \
             (btc tx {}) broadcast +{} blocks after its burn, paid in BTC block {}, reserve {}, \
             demo {:.1}s",
            self.nodes.len(),
            self.compared_at,
            p.deposit.to_btc(),
            short(&p.btc_txid.to_string()),
            p.minted_at,
            p.latency_blocks(),
            p.mint_wall.as_secs_f64(),
            p.confirmations_required,
            short(&self.txid),
            self.tx_height,
            self.blocks_to_commit,
            self.commit_wall.as_secs_f64(),
            self.pegout.amount.to_btc(),
            short(&self.pegout.btc_txid),
            self.pegout.blocks_to_broadcast(),
            self.pegout.btc_height,
            self.reserve_after_pegout,
            self.wall.as_secs_f64()
        )
    }
}

fn short(s: &str) -> &str {
    &s[..16.min(s.len())]
}

/// Runs `sidechain-cli <args> --json` (bounded by `CLI_BOUND`) and parses its output.
pub async fn cli_json(cli: &Path, args: &[&str]) -> Result<Value> {
    let run = tokio::process::Command::new(cli).args(args).arg("--json").kill_on_drop(true).output();
    let out = tokio::time::timeout(CLI_BOUND, run)
        .await
        .with_context(|| format!("sidechain-cli {} did not finish within {CLI_BOUND:?}", args.join(" ")))?
        .with_context(|| format!("running {}", cli.display()))?;
    if !out.status.success() {
        bail!("sidechain-cli {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!("sidechain-cli {} printed no JSON: {}", args.join(" "), String::from_utf8_lossy(&out.stdout))
    })
}

/// `sidechain-cli` pointed at one node (its RPC URL and cookie).
struct NodeCli<'a> {
    bin: &'a Path,
    node: String,
    rpc: [String; 4],
}

impl<'a> NodeCli<'a> {
    fn new(bin: &'a Path, n: &SidechainNode) -> Self {
        let cookie = n.datadir.join(".cookie").display().to_string();
        NodeCli { bin, node: n.name.clone(), rpc: ["--rpc-url".into(), n.rpc_url(), "--rpc-cookie".into(), cookie] }
    }

    /// `sidechain-cli --rpc-url .. --rpc-cookie .. <args> --json`.
    async fn json(&self, args: &[&str]) -> Result<Value> {
        let all: Vec<&str> = self.rpc.iter().map(String::as_str).chain(args.iter().copied()).collect();
        cli_json(self.bin, &all).await.with_context(|| format!("on {}", self.node))
    }

    /// The wallet's balance in sats (`getbalance`).
    async fn balance(&self, wallet: &Path) -> Result<u64> {
        let v = self.json(&["--wallet", &wallet.display().to_string(), "getbalance"]).await?;
        v["balance_sat"].as_u64().with_context(|| format!("{}: no balance_sat in {v}", self.node))
    }
}

fn sat(v: &Value, what: &str) -> Result<Amount> {
    v.as_u64().map(Amount::from_sat).with_context(|| format!("no {what}"))
}

/// Prints a step the way the demo shows progress.
pub fn step(start: Instant, msg: impl AsRef<str>) {
    println!("[{:6.1}s] {}", start.elapsed().as_secs_f64(), msg.as_ref());
}

/// Brings the federation up and runs the user's path. The federation is returned so the caller can keep
/// it running (interactive mode) or drop it (which stops every process).
pub async fn run(opts: &DemoOptions, workdir: &Path) -> Result<(Federation, DemoReport)> {
    let start = Instant::now();
    for (what, p) in [("sidechaind", &opts.sidechaind), ("sidechain-cli", &opts.cli)] {
        if !p.is_file() {
            bail!("{what} not found at {} (build with `cargo build --workspace`)", p.display());
        }
    }
    let alice_wallet = workdir.join("alice.key");
    let bob_wallet = workdir.join("bob.key");
    let w = |p: &Path| p.display().to_string();
    let alice = cli_json(&opts.cli, &["--wallet", &w(&alice_wallet), "createwallet"]).await?;
    let bob = cli_json(&opts.cli, &["--wallet", &w(&bob_wallet), "createwallet"]).await?;
    let alice_id = alice["account"].as_str().context("createwallet printed no account")?.to_string();
    let bob_id = bob["account"].as_str().context("createwallet printed no account")?.to_string();
    step(start, format!("wallets: alice {alice_id}, bob {bob_id}"));

    // The demo's emergency keys (2 of 3, Liquid's 4032-block delay) come from fixed test seeds: a real
    // federation generates them offline and keeps them apart from every validator.
    fn demo_emergency_keys() -> Result<(u32, u32, Vec<bitcoin::secp256k1::SecretKey>)> {
        let secrets = (1..=3u8)
            .map(|i| bitcoin::secp256k1::SecretKey::from_slice(&[0xE0 + i; 32]))
            .collect::<Result<Vec<_>, _>>()
            .context("demo emergency key")?;
        Ok((2, 4032, secrets))
    }
    // Alice starts with just the registration fee (registering a deposit address is not free): her deposit
    // is then minted by itself, without a claim. (A wallet with nothing pegs in through `claimpegin`.)
    let registration_fee = ledger::Params::default().registration_fee.to_sat();
    let fed = Federation::start(FederationConfig {
        validators: opts.validators,
        full_nodes: 1,
        bitcoind: true,
        initial_accounts: vec![(alice_id.clone(), registration_fee)],
        binary: Some(opts.sidechaind.clone()),
        genesis_params: Some(serde_json::json!({ "pegout_enabled": true, "pegout_interval": 5 })),
        emergency: Some(demo_emergency_keys()?),
        taproot: opts.taproot,
        ..Default::default()
    })
    .context("starting the federation")?;
    step(
        start,
        format!(
            "federation: {} validators (each with its own regtest bitcoind, connected) + 1 full node in {}, {} custody",
            opts.validators,
            fed.path().display(),
            if opts.taproot { "taproot (FROST key generation run by the validators)" } else { "wsh" }
        ),
    );
    let all: Vec<usize> = (0..fed.nodes.len()).collect();
    fed.wait_height(&all, 2, Duration::from_secs(120)).await.context("waiting for the first blocks")?;
    step(start, format!("blocks are being committed (height {})", fed.nodes[0].height().await?));

    // Alice's wallet talks to validator 1's RPC; the regtest miner is bitcoind 0.
    let node = &fed.nodes[1.min(fed.nodes.len() - 1)];
    let user = NodeCli::new(&opts.cli, node);
    let info = user.json(&["getfederationinfo"]).await.context("getfederationinfo")?;
    let pegin_fee = sat(&info["pegin_fee_sat"], "pegin_fee_sat in getfederationinfo")?;
    step(
        start,
        format!(
            "federation wallet: {} of {} multisig {} (emergency path: {} of {} emergency keys after {} BTC \
             blocks); peg-in: {} confirmations, fee {} sat, minimum {} sat",
            info["threshold"],
            info["keys"],
            info["address"].as_str().unwrap_or("?"),
            info["emergency"]["threshold"],
            info["emergency"]["keys"].as_array().map_or(0, Vec::len),
            info["emergency"]["delay_blocks"],
            info["pegin_confirmations"],
            pegin_fee.to_sat(),
            info["pegin_min_amount_sat"]
        ),
    );
    let before = user.balance(&alice_wallet).await?;
    ensure!(
        before == registration_fee,
        "alice should start with the registration fee ({registration_fee} sat) on the sidechain, has {before} sat"
    );

    let pegin = pegin(opts, &fed, &user, &alice_wallet, start).await.context("peg-in")?;
    ensure!(
        pegin.fee == pegin_fee && pegin.credited == opts.deposit - pegin_fee,
        "peg-in credited {} with fee {} (expected {} with fee {})",
        pegin.credited,
        pegin.fee,
        opts.deposit - pegin_fee,
        pegin_fee
    );

    // Alice pays Bob through the same node with the CLI.
    let h0 = node.height().await?;
    let sent_at = Instant::now();
    let amount = format!("{}sat", opts.transfer.to_sat());
    let sent = user.json(&["--wallet", &w(&alice_wallet), "send", &bob_id, &amount]).await.context("send")?;
    let txid = sent["txid"].as_str().context("send printed no txid")?.to_string();
    let tx_fee = sat(&sent["fee_sat"], "fee_sat in send")?;
    step(start, format!("alice sent {} sat to bob (fee {} sat): txid {txid}", opts.transfer.to_sat(), tx_fee.to_sat()));

    // Every node, the full node included, shows Bob's balance.
    let deadline = Instant::now() + Duration::from_secs(60);
    let bob_account: primitives::AccountId = serde_json::from_value(serde_json::json!(bob_id))?;
    for n in &fed.nodes {
        loop {
            let client = n.client()?;
            if client.get_account(bob_account, None).await.map(|a| a.balance).unwrap_or(Amount::ZERO) == opts.transfer {
                break;
            }
            if Instant::now() > deadline {
                bail!("{} does not show bob's {} sat after 60 s", n.name, opts.transfer.to_sat());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let commit_wall = sent_at.elapsed();
    let tx = user.json(&["gettransaction", &txid]).await?;
    let tx_height = tx["height"].as_u64().context("gettransaction shows no height")?;
    step(start, format!("committed at height {tx_height}; every node shows bob's balance ({commit_wall:.2?})"));

    // Balances read back with the CLI, state roots compared at one height, the reserve on every node.
    let compared_at = {
        let mut m = u64::MAX;
        for n in &fed.nodes {
            m = m.min(n.height().await?);
        }
        m
    };
    let mut nodes = Vec::new();
    let mut reserves = Vec::new();
    for n in &fed.nodes {
        let c = NodeCli::new(&opts.cli, n);
        let block = n.client()?.get_block(rpc::api::BlockRef::Height(primitives::Height(compared_at)), Some(1)).await;
        let root = match block {
            Ok(rpc::types::GetBlockResult::Json(b)) => b.state_root.to_string(),
            other => bail!("{}: getblock {compared_at}: {other:?}", n.name),
        };
        nodes.push((
            n.name.clone(),
            n.height().await?,
            root,
            c.balance(&alice_wallet).await?,
            c.balance(&bob_wallet).await?,
        ));
        let peg = c.json(&["getblockchaininfo"]).await?["peg"].clone();
        let reserve = Reserve::read(&peg)?;
        reserves.push((n.name.clone(), reserve));
    }
    let first = &nodes[0];
    for n in &nodes[1..] {
        if n.2 != first.2 || n.3 != first.3 || n.4 != first.4 {
            bail!("{} disagrees with {}: {n:?} vs {first:?}", n.0, first.0);
        }
    }
    let alice_expected = opts.deposit - pegin.fee - opts.transfer - tx_fee;
    if first.3 != alice_expected.to_sat() || first.4 != opts.transfer.to_sat() {
        bail!(
            "balances are wrong: alice {} bob {} (expected {} = deposit {} - peg-in fee {} - transfer {} - fee {}, \
             and {})",
            first.3,
            first.4,
            alice_expected.to_sat(),
            opts.deposit.to_sat(),
            pegin.fee.to_sat(),
            opts.transfer.to_sat(),
            tx_fee.to_sat(),
            opts.transfer.to_sat()
        );
    }
    // Beyond the genesis allocation (Alice's registration fee) the deposit is the whole supply, and the
    // federation holds exactly it.
    let genesis = Amount::from_sat(registration_fee);
    let reserve = reserves[0].1;
    for (name, r) in &reserves {
        ensure!(
            *r == reserve
                && r.reserve_ok
                && r.btc_held == opts.deposit
                && r.genesis_supply == genesis
                && r.supply == opts.deposit + genesis,
            "{name}: reserve {r:?} (expected {} BTC held and supply, reserve ok)",
            opts.deposit.to_btc()
        );
    }
    step(start, format!("reserves on every node: {reserve}: reserve ok"));

    // Bob pegs out part of what Alice sent him, to his own BTC address.
    let bob_btc = crate::btc_wallet::BtcWallet::from_seed(0xb0).address();
    let bob_node = NodeCli::new(&opts.cli, node);
    let pegout = pegout::run(&fed, &bob_node, &bob_wallet, &bob_btc, opts.pegout, start).await.context("peg-out")?;
    let mut after = Vec::new();
    for n in &fed.nodes {
        let peg = NodeCli::new(&opts.cli, n).json(&["getblockchaininfo"]).await?["peg"].clone();
        let unpaid = sat(&peg["unpaid_burns_sat"], "peg.unpaid_burns_sat in getblockchaininfo")?;
        let r = Reserve::read(&peg)?;
        ensure!(
            unpaid == Amount::ZERO && r.reserve_ok && r.btc_held + genesis == r.supply,
            "{}: after the peg-out: {r:?}, unpaid burns {unpaid} (expected nothing owed and BTC held = supply \
             beyond the genesis)",
            n.name
        );
        ensure!(
            r.btc_held == opts.deposit - opts.pegout - pegout.btc_fee,
            "{}: BTC held {} is not the deposit less the payout and its Bitcoin fee",
            n.name,
            r.btc_held
        );
        after.push(r);
    }
    let reserve_after_pegout = after[0];
    step(start, format!("reserves after the peg-out on every node: {reserve_after_pegout}: reserve ok, nothing owed"));

    // Trust no node: Alice's balance and Bob's peg-out once more, each checked by `sidechain-cli --verify`
    // from the genesis file alone (certified headers, validator sets, state proofs).
    let genesis = fed.genesis_path.display().to_string();
    let verify = ["--verify", "--genesis", genesis.as_str()];
    let a = bob_node.json(&[&verify[..], &["--wallet", &w(&alice_wallet), "getbalance"]].concat()).await?;
    // Bob also checks the payout on a bitcoind of his own (here the miner's).
    let (url, rpc_user, password) = fed.bitcoinds.first().context("no bitcoind")?.rpc_credentials();
    let own = ["--bitcoind-rpc-url", &url, "--bitcoind-rpc-user", &rpc_user, "--bitcoind-rpc-password", &password];
    let b = bob_node.json(&[&verify[..], &["pegoutstatus", &pegout.burn_txid], &own[..]].concat()).await?;
    ensure!(
        b["stage"] == "final" && b["paid_in"].is_object() && b["amount_sat"].as_u64() == Some(opts.pegout.to_sat()),
        "the verified peg-out is not paid: {b}"
    );
    ensure!(b["paid_on_your_bitcoind"]["vout"].is_u64(), "the payout was not found on bitcoind: {b}");
    step(
        start,
        format!(
            "verified from the genesis by sidechain-cli --verify: alice's balance {} sat (state at height {}), bob's \
             peg-out paid in BTC block {} (state at height {}; BTC tx {} found on bitcoind); {} certified headers \
             followed",
            a["balance_sat"],
            a["verified"]["height"],
            b["paid_in"]["btc_height"],
            b["verified"]["height"],
            b["paid_on_your_bitcoind"]["btc_txid"].as_str().unwrap_or("?"),
            b["verified"]["followed_to"]
        ),
    );
    let report = DemoReport {
        pegin,
        pegout,
        reserve_after_pegout,
        reserve,
        transfer: opts.transfer,
        txid,
        tx_fee,
        tx_height,
        blocks_to_commit: tx_height.saturating_sub(h0),
        commit_wall,
        nodes,
        compared_at,
        wall: start.elapsed(),
    };
    Ok((fed, report))
}

/// Alice pegs in: `pegin --fund` registers her deposit address and pays it from the CLI's BTC key; the demo
/// (the regtest miner) mines the N confirmations on bitcoind 0 once the sidechain anchor has caught up with
/// bitcoind, and follows the deposit with `pegstatus` until it is minted.
async fn pegin(
    opts: &DemoOptions,
    fed: &Federation,
    user: &NodeCli<'_>,
    wallet: &Path,
    start: Instant,
) -> Result<PegInReport> {
    let miner = fed.bitcoinds.first().context("the federation has no bitcoind")?;
    let (url, rpc_user, password) = miner.rpc_credentials();
    let btc_before = miner.height()?;
    let fund = format!("{}btc", opts.deposit.to_btc());
    let p = user
        .json(&[
            "--wallet",
            &wallet.display().to_string(),
            "pegin",
            "--fund",
            &fund,
            "--bitcoind-rpc-url",
            &url,
            "--bitcoind-rpc-user",
            &rpc_user,
            "--bitcoind-rpc-password",
            &password,
        ])
        .await
        .context("sidechain-cli pegin --fund")?;
    let address = p["address"].as_str().context("pegin printed no address")?.to_string();
    let n = p["confirmations_required"].as_u64().context("pegin printed no confirmations_required")?;
    let btc_txid: Txid =
        p["funding"]["btc_txid"].as_str().context("pegin printed no funding.btc_txid")?.parse().context("btc_txid")?;
    let outpoint: OutPoint =
        p["funding"]["outpoint"].as_str().context("pegin printed no funding.outpoint")?.parse().context("outpoint")?;
    ensure!(outpoint.txid == btc_txid, "pegin's outpoint {outpoint} is not in its txid {btc_txid}");
    step(
        start,
        format!(
            "alice: pegin --fund {fund}: registration {} ({}); deposit address {address}",
            p["registration"]["status"].as_str().unwrap_or("?"),
            p["registration"]["txid"].as_str().unwrap_or("-"),
        ),
    );
    let btc_after = miner.height()?;
    step(
        start,
        format!(
            "alice: paid {} BTC from her BTC key in {btc_txid} (deposit {outpoint}, unconfirmed; bitcoind0 at \
             height {btc_after}{}); needs {n} confirmations",
            opts.deposit.to_btc(),
            match btc_after.saturating_sub(btc_before) {
                0 => String::new(),
                k => format!(", {k} blocks mined by the CLI to mature her BTC"),
            }
        ),
    );

    // Let the anchor reach the deepest block it may cover (tip - N + 1), so the latency measured below is
    // the peg-in's own and not the anchor catching up with the coins just mined.
    let caught_up = (btc_after + 1).saturating_sub(n);
    let deadline = Instant::now() + ANCHOR_BOUND;
    loop {
        let i = user.json(&["getblockchaininfo"]).await?;
        let anchor = i["btc_anchor"]["height"].as_u64().context("no btc_anchor.height in getblockchaininfo")?;
        if anchor >= caught_up {
            step(
                start,
                format!(
                    "sidechain anchor caught up with bitcoind: BTC height {anchor} (tip {btc_after} - N + 1) at \
                     sidechain height {}",
                    i["height"]
                ),
            );
            break;
        }
        if Instant::now() >= deadline {
            bail!("the sidechain anchor is at BTC height {anchor}, not {caught_up}, after {ANCHOR_BOUND:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut follow = PegStatusFollower { user, outpoint, n, start, last: String::new(), stages: Vec::new() };
    let s = follow.poll().await?;
    ensure!(s["stage"] == "unknown", "an unconfirmed deposit should be unknown to every node: {s}");

    // The regtest miner: N-1 confirmations on bitcoind 0 (seen, not minted), then the N-th.
    if n > 1 {
        let tip = mine(fed, n - 1)?;
        step(start, format!("miner: mined {} blocks on bitcoind0 (BTC height {tip}; every bitcoind has them)", n - 1));
        follow
            .until(ANCHOR_BOUND, |s| {
                ensure!(s["stage"] != "minted", "deposit {outpoint} minted before its {n}-th confirmation: {s}");
                Ok(s["stage"] == "seen" && s["confirmations"].as_u64() == Some(n - 1))
            })
            .await?;
    }
    let tip = mine(fed, 1)?;
    let mined_at = Instant::now();
    let confirmed_at = fed.nodes[1.min(fed.nodes.len() - 1)].height().await?;
    step(
        start,
        format!(
            "miner: mined the {n}th confirmation on bitcoind0 (BTC height {tip}) at sidechain height {confirmed_at}"
        ),
    );
    let minted = follow.until(MINT_BOUND, |s| Ok(s["stage"] == "minted")).await?;
    let stages = follow.stages;
    let mint_wall = mined_at.elapsed();
    let report = PegInReport {
        btc_txid,
        outpoint,
        deposit: opts.deposit,
        address,
        confirmations_required: n,
        btc_height: minted["btc_height"].as_u64().context("pegstatus shows no btc_height")?,
        confirmed_at,
        minted_at: minted["minted_at"].as_u64().context("pegstatus shows no minted_at")?,
        mint_wall,
        credited: sat(&minted["credited_sat"], "credited_sat in pegstatus")?,
        fee: sat(&minted["fee_sat"], "fee_sat in pegstatus")?,
        stages,
    };
    step(
        start,
        format!(
            "peg-in latency: N-th confirmation at sidechain height {}, minted at {} (+{} blocks, {:.2}s)",
            report.confirmed_at,
            report.minted_at,
            report.latency_blocks(),
            mint_wall.as_secs_f64()
        ),
    );
    Ok(report)
}

/// Mines `k` blocks on bitcoind 0 and waits until every bitcoind of the federation has them; returns the tip.
fn mine(fed: &Federation, k: u64) -> Result<u64> {
    let miner = fed.bitcoinds.first().context("the federation has no bitcoind")?;
    miner.mine(k)?;
    let tip = miner.height()?;
    for b in &fed.bitcoinds {
        b.wait_for_height(tip, Duration::from_secs(30))?;
    }
    Ok(tip)
}

/// Follows one deposit with `sidechain-cli pegstatus`, printing each new stage (with k/N confirmations).
struct PegStatusFollower<'a, 'b> {
    user: &'a NodeCli<'b>,
    outpoint: OutPoint,
    n: u64,
    start: Instant,
    last: String,
    stages: Vec<String>,
}

impl PegStatusFollower<'_, '_> {
    /// One `pegstatus`; prints it when it differs from the last one.
    async fn poll(&mut self) -> Result<Value> {
        let s = self.user.json(&["pegstatus", &self.outpoint.to_string()]).await?;
        let line = match (s["stage"].as_str().unwrap_or("?"), s["confirmations"].as_u64()) {
            ("minted", _) => format!(
                "minted at sidechain height {}: credited {} sat, peg-in fee {} sat",
                s["minted_at"], s["credited_sat"], s["fee_sat"]
            ),
            ("unknown", None) => "unknown (not in a BTC block yet)".to_string(),
            (stage, Some(k)) => format!("{stage}, {k}/{} confirmations (BTC block {})", self.n, s["btc_height"]),
            (stage, None) => stage.to_string(),
        };
        if line != self.last {
            step(self.start, format!("pegstatus {}: {line}", self.outpoint));
            self.stages.push(line.clone());
            self.last = line;
        }
        if let Some(bad @ ("below_minimum" | "claim_rejected")) = s["stage"].as_str() {
            bail!("deposit {} is {bad}, it will not be minted: {s}", self.outpoint);
        }
        Ok(s)
    }

    /// Polls (bounded) until `done` says so; returns that status.
    async fn until(&mut self, bound: Duration, done: impl Fn(&Value) -> Result<bool>) -> Result<Value> {
        let deadline = Instant::now() + bound;
        loop {
            let s = self.poll().await?;
            if done(&s)? {
                return Ok(s);
            }
            if Instant::now() >= deadline {
                bail!("deposit {}: still {} after {bound:?}", self.outpoint, self.last);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The summary table.
pub fn print_summary(r: &DemoReport) {
    println!();
    println!("{:<12} {:>8}  {:<18} {:>14} {:>14}", "node", "height", "state root @ h", "alice (sat)", "bob (sat)");
    for (name, h, root, a, b) in &r.nodes {
        println!("{name:<12} {h:>8}  {:<18} {a:>14} {b:>14}", short(root));
    }
    let p = &r.pegin;
    println!("state roots compared at height {}", r.compared_at);
    println!("{:<14}{} BTC to {}", "btc deposit", p.deposit.to_btc(), p.address);
    println!("{:<14}{} (deposit output {})", "btc txid", p.btc_txid, p.outpoint.vout);
    println!(
        "{:<14}{} (BTC block {}, mined by the demo on bitcoind0)",
        "confirmations", p.confirmations_required, p.btc_height
    );
    println!(
        "{:<14}height {}: credited {} sat, peg-in fee {} sat (N-th confirmation at height {}: +{} blocks, {:.2}s)",
        "mint",
        p.minted_at,
        p.credited.to_sat(),
        p.fee.to_sat(),
        p.confirmed_at,
        p.latency_blocks(),
        p.mint_wall.as_secs_f64()
    );
    println!(
        "{:<14}{} sat to bob, fee {} sat: txid {} in block {}",
        "transfer",
        r.transfer.to_sat(),
        r.tx_fee.to_sat(),
        r.txid,
        r.tx_height
    );
    println!("{:<14}{}: {}", "reserves", r.reserve, if r.reserve.reserve_ok { "reserve ok" } else { "SHORT" });
    let o = &r.pegout;
    println!(
        "{:<14}{} BTC to {} (fee {} sat): burn {} at height {}",
        "peg-out",
        o.amount.to_btc(),
        o.btc_address,
        o.fee.to_sat(),
        short(&o.burn_txid),
        o.burned_at
    );
    println!(
        "{:<14}{} broadcast at height {} (+{} blocks), BTC fee {} sat, paid in BTC block {}; received {} BTC",
        "batch",
        o.btc_txid,
        o.broadcast_at,
        o.blocks_to_broadcast(),
        o.btc_fee.to_sat(),
        o.btc_height,
        o.received.to_btc()
    );
    println!(
        "{:<14}{} after the peg-out: {}",
        "reserves",
        r.reserve_after_pegout,
        if r.reserve_after_pegout.reserve_ok { "reserve ok, nothing owed" } else { "SHORT" }
    );
}
