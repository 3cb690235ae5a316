//! The dashboard in a real browser (headless Chromium over the DevTools protocol) against a real local
//! federation (4 validators with their own regtest bitcoinds, 1 full node): the page loads with no console
//! error, shows the node's height and follows it live, shows the federation in force (epoch, validators,
//! threshold, no pending change, sweep complete), finds a block by height, says clearly what is wrong
//! with bad search input, and follows a peg-in made during the test to "minted" and a peg-out to
//! "broadcast". It measures what the open page costs the node (HTTP requests and calls per second) and
//! saves a screenshot in the test's output dir (`$DASHBOARD_TEST_OUT`, default
//! `<target>/tmp/dashboard/`).

use bitcoin::Amount;
use ledger::{UserTx, UserTxKind};
use primitives::{AccountId, Keypair};
use rpc::client::SidechainApiClient;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testnet::browser::{chromium_available, Browser};
use testnet::btc_wallet::{broadcast, BtcWallet};
use testnet::federation::{Federation, FederationConfig};

mod common;

use common::{mine, register, sponsor_account, N};

async fn wait_anchor(fed: &Federation, at_least: u64, bound: Duration) {
    let c = fed.nodes[0].client().expect("client");
    let deadline = Instant::now() + bound;
    while u64::from(c.get_blockchain_info().await.expect("info").btc_anchor.height.get()) < at_least {
        assert!(Instant::now() < deadline, "anchor below {at_least} after {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn balance(fed: &Federation, who: AccountId) -> Amount {
    fed.nodes[0].client().expect("client").get_account(who, None).await.expect("getaccount").balance
}

/// Where the screenshot goes.
fn out_dir() -> PathBuf {
    let dir = std::env::var_os("DASHBOARD_TEST_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard"));
    std::fs::create_dir_all(&dir).expect("output dir");
    dir
}

/// Types `text` into the search box and submits it; returns what the page showed: the detail title or
/// the error message.
async fn search(page: &Browser, text: &str) -> (String, String) {
    let js = format!(
        "(() => {{ document.getElementById('detail').hidden = true; document.getElementById('search-error').hidden = true; \
         const i = document.getElementById('search-input'); i.value = {}; \
         document.getElementById('search-form').requestSubmit(); return true; }})()",
        serde_json::to_string(text).expect("json string")
    );
    page.eval(&js).await.expect("submit");
    let shown = page
        .wait_for(
            &format!("an answer to the search {:?}", text.chars().take(30).collect::<String>()),
            "(() => { const d = document.getElementById('detail'), e = document.getElementById('search-error'); \
             if (!d.hidden) return ['detail', document.getElementById('detail-title').textContent + '\\n' + \
             document.getElementById('detail-body').textContent]; \
             if (!e.hidden) return ['error', e.textContent]; return null; })()",
            Duration::from_secs(20),
        )
        .await
        .expect("search answered");
    (shown[0].as_str().unwrap_or_default().to_string(), shown[1].as_str().unwrap_or_default().to_string())
}

async fn page_height(page: &Browser) -> u64 {
    let v = page.eval("Number(document.getElementById('height').textContent) || 0").await.expect("height");
    v.as_u64().unwrap_or(0)
}

/// The stage cell of a table row, by its data attribute (`null` while the row is not there).
fn stage_js(table: &str, attr: &str, key: &str) -> String {
    format!(
        "(() => {{ const r = [...document.querySelectorAll('#{table} tr[data-{attr}]')].find(r => r.dataset.{attr} === {key:?}); \
         return r ? r.querySelector('.stage').textContent : null; }})()"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_follows_the_chain_and_the_pegs_in_a_real_browser() {
    assert!(
        chromium_available(),
        "chromium is needed for the dashboard test: scripts/setup installs it (or set $CHROMIUM)"
    );
    let params = serde_json::json!({ "pegout_enabled": true, "pegout_interval": 5 });
    let mut fed = Federation::start(FederationConfig {
        genesis_params: Some(params),
        validators: 4,
        full_nodes: 1,
        bitcoind: true,
        env: vec![("RUST_LOG".into(), "info,libp2p=warn".into())],
        initial_accounts: vec![sponsor_account()],
        ..Default::default()
    })
    .expect("federation starts");
    fed.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.expect("blocks");

    let page = Browser::start(1400, 1800).await.expect("chromium starts");
    let url = fed.nodes[0].dashboard_url();
    page.navigate(&url).await.expect("navigate");

    // --- The height, live. ---
    page.wait_for("the height", "Number(document.getElementById('height').textContent) > 0", Duration::from_secs(30))
        .await
        .expect("the page shows a height");
    let shown = page_height(&page).await;
    let node = fed.nodes[0].height().await.expect("height");
    assert!(shown <= node && node - shown < 50, "page shows {shown}, node is at {node}");
    page.wait_for(
        "the height to increase",
        &format!("Number(document.getElementById('height').textContent) >= {}", shown + 3),
        Duration::from_secs(30),
    )
    .await
    .expect("the height increases");
    page.wait_for("live updates", "document.getElementById('live').dataset.state === 'live'", Duration::from_secs(20))
        .await
        .expect("the WebSocket subscription is live");

    // --- The federation: the set in force, no pending change, no sweep in flight, no emergency path. ---
    let c = fed.nodes[0].client().expect("client");
    let info = c.get_federation_info().await.expect("getfederationinfo");
    page.wait_for(
        "the federation panel",
        "document.getElementById('fed-sweep').textContent !== '…'",
        Duration::from_secs(20),
    )
    .await
    .expect("the federation panel is filled");
    let panel = page
        .eval(
            "Object.fromEntries(['fed-epoch', 'fed-since', 'fed-validators', 'fed-threshold', 'fed-address', \
             'fed-pending', 'fed-emergency', 'fed-sweep'].map(id => [id, document.getElementById(id).textContent]))",
        )
        .await
        .expect("eval");
    let shown = |id: &str| panel[id].as_str().unwrap_or_default().to_string();
    assert_eq!(shown("fed-epoch"), "0", "{panel}");
    assert_eq!(shown("fed-since"), format!("since height {}", info.changes.epoch_from_height.get()), "{panel}");
    assert_eq!(shown("fed-validators"), "4", "{panel}");
    assert_eq!(shown("fed-threshold"), "3-of-4", "{panel}");
    assert_eq!(shown("fed-address"), info.address, "{panel}");
    assert_eq!(shown("fed-pending"), "none", "{panel}");
    assert_eq!(shown("fed-emergency"), "none", "{panel}");
    assert_eq!(shown("fed-sweep"), "complete", "{panel}");
    assert!(info.changes.sweep_complete && info.changes.pending.is_none() && info.changes.emergency.is_none());
    let earlier = page.eval("document.querySelectorAll('#fed-wallets tr[data-epoch]').length").await.expect("eval");
    assert_eq!(earlier, 0, "no earlier wallet holds coins");

    // --- Search: a block by height; bad input gets a clear message. ---
    let hash2 = c.get_block_hash(primitives::Height(2)).await.expect("hash");
    let (kind, text) = search(&page, "2").await;
    assert_eq!(kind, "detail", "{text}");
    assert!(text.starts_with("Block 2") && text.contains(&hash2.to_string()), "{text}");
    let (kind, text) = search(&page, &hash2.to_string()).await;
    assert!(kind == "detail" && text.starts_with("Block 2"), "by hash: {text}");
    for (input, expect) in [
        ("hello <b>world</b>!", "Not something to search for"),
        (&"f".repeat(300), "Too long (300 characters)"),
        (&"ab".repeat(32), "Nothing found"),
        ("99999999999", "No block at height 99999999999"),
        ("", "Type a block height"),
    ] {
        let (kind, text) = search(&page, input).await;
        assert_eq!(kind, "error", "{input:?} showed {text}");
        assert!(text.contains(expect), "{input:?}: {text}");
    }
    // Markup typed into the box is shown as text, never rendered.
    assert_eq!(page.eval("document.querySelectorAll('#search-error b').length").await.expect("eval"), 0);

    // --- A peg-in made now: seen k/N while it gathers confirmations, then minted. ---
    let wallet = BtcWallet::from_seed(9);
    let utxo = wallet.mine_coinbases(&fed.bitcoinds[0], 1).expect("coinbase").remove(0);
    let tip = mine(&fed, 100);
    wait_anchor(&fed, tip - (N - 1), Duration::from_secs(120)).await;
    let user = Keypair::from_secret([51; 32]);
    let who = user.public().account_id();
    register(&fed, &user).await;
    let addr = c.get_pegin_address(who).await.expect("address");
    let address: bitcoin::Address<bitcoin::address::NetworkUnchecked> = addr.address.parse().expect("address");
    let deposit = Amount::from_sat(1_000_000);
    let tx =
        wallet.pay(&utxo, address.assume_checked().script_pubkey(), deposit, Amount::from_sat(1_000)).expect("pay");
    broadcast(&fed.bitcoinds[0], &tx).expect("broadcast");
    let outpoint = tx
        .output
        .iter()
        .position(|o| o.value == deposit)
        .map(|vout| format!("{}:{vout}", tx.compute_txid()))
        .expect("deposit output");
    mine(&fed, 2);
    let seen = page
        .wait_for("the peg-in row", &stage_js("pegins", "outpoint", &outpoint), Duration::from_secs(30))
        .await
        .expect("the deposit appears");
    assert_eq!(seen, Value::from(format!("seen 2/{N}")), "two confirmations of {N}");
    mine(&fed, N - 2);
    page.wait_for(
        "the peg-in to be minted",
        &format!("({}||'').startsWith('minted at')", stage_js("pegins", "outpoint", &outpoint)),
        Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {}", fed.nodes[0].process.log_tail(20)));
    let credited = balance(&fed, who).await;
    assert!(credited > Amount::ZERO && credited < deposit, "minted minus the peg-in fee: {credited}");

    // --- A peg-out: from burned to broadcast. ---
    let genesis = c.get_blockchain_info().await.expect("info").genesis_hash;
    let payee = BtcWallet::from_seed(52).script_pubkey();
    let amount = Amount::from_sat(300_000);
    let share = c.get_federation_info().await.expect("federation").pegout_batch_share_vbytes;
    let fee = ledger::pegout::pegout_fee(Amount::from_sat(100), 2, share, &payee);
    let burn = UserTx {
        signer: user.public(),
        nonce: 1,
        fee,
        kind: UserTxKind::PegOut { btc_script_pubkey: payee.to_bytes(), amount },
    }
    .sign(&user, &genesis);
    let burn_txid =
        c.send_raw_transaction(hex::encode(primitives::canonical_bytes(&burn))).await.expect("burn accepted");
    page.wait_for("the peg-out row", &stage_js("pegouts", "burn", &burn_txid.to_string()), Duration::from_secs(60))
        .await
        .expect("the burn appears");
    // Validators broadcast the batch once k shares are in state: wait until bitcoind has it in its mempool.
    let btc0 = &fed.bitcoinds[0];
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mempool: Vec<String> = btc0.call("getrawmempool", &[]).expect("mempool");
        let pays = mempool.iter().any(|txid| {
            let tx: Value =
                btc0.call("getrawtransaction", &[serde_json::json!(txid), serde_json::json!(true)]).expect("tx");
            tx["vout"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["scriptPubKey"]["hex"].as_str() == Some(&payee.to_hex_string()))
        });
        if pays {
            break;
        }
        assert!(Instant::now() < deadline, "no payout in the mempool: {}", fed.nodes[0].process.log_tail(30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The stage names `broadcast`, `bumped`, `confirmed`, `final` come with the peg-out stage rework; until it
    // lands the node says `signed` for a broadcast batch and `paid` once settled, so mine to settlement then.
    let at_least_broadcast = format!(
        "['broadcast','bumped','confirmed','final','paid'].includes({})",
        stage_js("pegouts", "burn", &burn_txid.to_string())
    );
    if page.wait_for("stage broadcast", &at_least_broadcast, Duration::from_secs(15)).await.is_err() {
        mine(&fed, N + 1);
    }
    let stage = page
        .wait_for("the peg-out to reach broadcast", &at_least_broadcast, Duration::from_secs(60))
        .await
        .map(|_| ())
        .map_err(|e| format!("{e}: {}", fed.nodes[0].process.log_tail(20)));
    stage.expect("peg-out stage at least broadcast");

    // --- What the open page costs the node, over a steady 20 s. ---
    let read = |v: &Value, k: &str| v[k].as_f64().unwrap_or(0.0);
    let before = page.eval("({...window.dashboardStats, now: Date.now()})").await.expect("stats");
    let h0 = fed.nodes[0].height().await.expect("height");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after = page.eval("({...window.dashboardStats, now: Date.now()})").await.expect("stats");
    let h1 = fed.nodes[0].height().await.expect("height");
    let secs = (read(&after, "now") - read(&before, "now")) / 1000.0;
    let http_per_s = (read(&after, "httpRequests") - read(&before, "httpRequests")) / secs;
    let calls_per_s = (read(&after, "calls") - read(&before, "calls")) / secs;
    let pushes_per_s = (read(&after, "wsMessages") - read(&before, "wsMessages")) / secs;
    let blocks_per_s = (h1 - h0) as f64 / secs;
    println!(
        "dashboard cost: {http_per_s:.2} HTTP requests/s carrying {calls_per_s:.2} calls/s, plus {pushes_per_s:.2} \
         WebSocket pushes/s, at {blocks_per_s:.2} blocks/s"
    );
    assert!(http_per_s <= 1.5, "the page refreshes at most every 2 s (2 batched requests): {http_per_s:.2}/s");
    assert!(calls_per_s <= 15.0, "{calls_per_s:.2} calls/s");

    // --- Everything on one screen (with a block's detail open), and no error on the way. ---
    let (kind, _) = search(&page, "2").await;
    assert_eq!(kind, "detail");
    let shot = out_dir().join("dashboard.png");
    page.screenshot(&shot).await.expect("screenshot");
    println!("dashboard screenshot: {}", shot.display());
    assert!(std::fs::metadata(&shot).map(|m| m.len() > 10_000).unwrap_or(false), "a real screenshot");
    let errors = page.errors();
    assert!(errors.is_empty(), "the page reported errors: {errors:#?}");
    let banners =
        page.eval("[...document.querySelectorAll('[data-banner]')].map(b => b.textContent)").await.expect("eval");
    assert_eq!(banners, serde_json::json!([]), "a healthy federation shows no banner");

    // --- Degraded: this node's bitcoind goes away; the page says so, and keeps following the chain. ---
    fed.bitcoinds[0].stop();
    let banner = page
        .wait_for(
            "the bitcoind banner",
            "[...document.querySelectorAll('[data-banner]')].map(b => b.textContent).find(t => t.includes('bitcoind is unreachable'))",
            Duration::from_secs(60),
        )
        .await
        .expect("a banner says bitcoind is unreachable");
    assert!(banner.as_str().unwrap_or_default().contains("Transfers go on"), "{banner}");
    let h = page_height(&page).await;
    page.wait_for(
        "the height to go on",
        &format!("Number(document.getElementById('height').textContent) > {h}"),
        Duration::from_secs(30),
    )
    .await
    .expect("blocks go on without bitcoind");
    page.screenshot(&out_dir().join("dashboard-bitcoind-unreachable.png")).await.expect("screenshot");

    // --- Its operator pauses this validator's peg signing: a banner and the signing line say so. ---
    let signing = c.pause_signing().await.expect("pausesigning");
    assert!(signing.paused, "{signing:?}");
    let banner = page
        .wait_for(
            "the signing pause banner",
            "[...document.querySelectorAll('[data-banner]')].map(b => b.textContent).find(t => t.includes('Peg signing is paused'))",
            Duration::from_secs(30),
        )
        .await
        .expect("a banner says signing is paused");
    assert!(banner.as_str().unwrap_or_default().contains("resumesigning"), "{banner}");
    let line = page.eval("document.getElementById('signing').textContent").await.expect("eval");
    assert!(line.as_str().unwrap_or_default().starts_with("PAUSED"), "{line}");
    c.resume_signing().await.expect("resumesigning");
    assert!(page.errors().is_empty(), "the page reported errors: {:#?}", page.errors());
    drop(page);
    for n in &mut fed.nodes {
        assert!(n.process.is_running(), "{} stopped: {}", n.name, n.process.log_tail(20));
    }
}
