//! Peg-in latency on real bitcoinds: sidechain blocks from the moment a deposit's N-th confirmation is mined
//! to the block that mints it. The rule it measures: the next block that moves the BTC anchor over the
//! deposit must mint it, and an anchor may move as soon as a validator's bitcoind shows N confirmations, so
//! the goal is at most 2 blocks (one in flight when the block arrives, the next one mints).

use crate::btc_wallet::{broadcast, BtcWallet};
use crate::federation::{Federation, FederationConfig};
use anyhow::{ensure, Context, Result};
use bitcoin::Amount;
use ledger::{UserTx, UserTxKind};
use primitives::{AccountId, Height, Keypair};
use rpc::client::SidechainApiClient;
use rpc::types::{BlockTxs, GetBlockResult, TxKindInfo};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One deposit's latency.
#[derive(Clone, Debug)]
pub struct PegInSample {
    /// Sidechain height on validator 0 right after the N-th confirmation was mined.
    pub confirmed_at: u64,
    /// The block that minted it.
    pub minted_at: u64,
    /// Wall time from mining the N-th confirmation to seeing the mint.
    pub wall: Duration,
}

impl PegInSample {
    /// Blocks from the N-th confirmation to the mint.
    pub fn blocks(&self) -> u64 {
        self.minted_at.saturating_sub(self.confirmed_at)
    }
}

fn mine(fed: &Federation, n: u64) -> Result<u64> {
    fed.bitcoinds[0].mine(n)?;
    let h = fed.bitcoinds[0].height()?;
    for b in &fed.bitcoinds {
        b.wait_for_height(h, Duration::from_secs(30))?;
    }
    Ok(h)
}

async fn wait_anchor(fed: &Federation, at_least: u64, bound: Duration) -> Result<()> {
    let c = fed.nodes[0].client()?;
    let deadline = Instant::now() + bound;
    loop {
        let a = u64::from(c.get_blockchain_info().await?.btc_anchor.height.get());
        if a >= at_least {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "anchor at {a}, below {at_least} after {bound:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The height of the block (from `from` on) that mints `outpoint`, waiting up to `bound`.
async fn wait_mint(fed: &Federation, from: u64, outpoint: bitcoin::OutPoint, bound: Duration) -> Result<u64> {
    let c = fed.nodes[0].client()?;
    let deadline = Instant::now() + bound;
    let mut h = from;
    loop {
        let tip = c.get_block_count().await?.get();
        while h < tip {
            h += 1;
            let GetBlockResult::Json(b) = c.get_block(rpc::BlockRef::Height(Height(h)), Some(2)).await? else {
                anyhow::bail!("getblock verbosity 2 gave hex");
            };
            if let BlockTxs::Full(txs) = &b.tx {
                if txs
                    .iter()
                    .any(|t| matches!(&t.kind, TxKindInfo::Mint { btc_outpoint, .. } if *btc_outpoint == outpoint))
                {
                    return Ok(h);
                }
            }
        }
        ensure!(Instant::now() < deadline, "deposit {outpoint} not minted after {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn register(fed: &Federation, key: &Keypair) -> Result<()> {
    let c = fed.nodes[0].client()?;
    let genesis = c.get_blockchain_info().await?.genesis_hash;
    let fee = ledger::Params::default().registration_fee;
    let tx = UserTx { signer: key.public(), nonce: 0, fee, kind: UserTxKind::RegisterDeposit }.sign(key, &genesis);
    let txid = c.send_raw_transaction(hex::encode(primitives::canonical_bytes(&tx))).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.get_transaction(txid).await.map(|t| t.height.is_none()).unwrap_or(true) {
        ensure!(Instant::now() < deadline, "registration {txid} not committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The key of the user of deposit `i`.
fn user_key(i: u8) -> Keypair {
    Keypair::from_secret([0x50 + i; 32])
}

/// Starts 4 validators (each with its own regtest bitcoind) and makes `deposits` deposits one after the
/// other, each timed from its N-th confirmation to its mint.
pub async fn measure(sidechaind: PathBuf, deposits: u8) -> Result<(u64, Vec<PegInSample>)> {
    // Each user starts with exactly the registration fee (registrations are not free) and pays it.
    let fee = ledger::Params::default().registration_fee.to_sat();
    let fed = Federation::start(FederationConfig {
        binary: Some(sidechaind),
        validators: 4,
        full_nodes: 0,
        bitcoind: true,
        env: vec![("RUST_LOG".into(), "warn".into())],
        initial_accounts: (0..deposits).map(|i| (user_key(i).public().account_id().to_string(), fee)).collect(),
        ..Default::default()
    })?;
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(120)).await?;
    let c = fed.nodes[0].client()?;
    let n = u64::from(c.get_federation_info().await?.pegin_confirmations);
    let wallet = BtcWallet::from_seed(42);
    let utxos = wallet.mine_coinbases(&fed.bitcoinds[0], u64::from(deposits))?;
    let tip = mine(&fed, 100)?;
    wait_anchor(&fed, tip - (n - 1), Duration::from_secs(120)).await?;
    let mut samples = Vec::new();
    for (i, utxo) in utxos.iter().enumerate() {
        let user = user_key(i as u8);
        let recipient: AccountId = user.public().account_id();
        register(&fed, &user).await.context("registration")?;
        let addr = c.get_pegin_address(recipient).await?;
        let address: bitcoin::Address<bitcoin::address::NetworkUnchecked> = addr.address.parse()?;
        let tx = wallet.pay(
            utxo,
            address.assume_checked().script_pubkey(),
            Amount::from_sat(1_000_000),
            Amount::from_sat(1_000),
        )?;
        broadcast(&fed.bitcoinds[0], &tx)?;
        let deposit_height = mine(&fed, n - 1)? - (n - 2);
        // N-1 confirmations: let the anchor reach the deepest block it may cover, so what is timed next is
        // the peg-in's own latency and not the anchor catching up.
        wait_anchor(&fed, deposit_height - 1, Duration::from_secs(60)).await?;
        mine(&fed, 1)?;
        let mined = Instant::now();
        let confirmed_at = fed.nodes[0].height().await?;
        let outpoint = bitcoin::OutPoint { txid: tx.compute_txid(), vout: 0 };
        let minted_at = wait_mint(&fed, confirmed_at.saturating_sub(1), outpoint, Duration::from_secs(60)).await?;
        samples.push(PegInSample { confirmed_at, minted_at, wall: mined.elapsed() });
    }
    Ok((n, samples))
}
