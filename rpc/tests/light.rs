//! `getheaders` and proved answers over the real server: a light client follows the test chain from its
//! genesis through the typed client, believes a proved balance, and refuses each way the answer can lie.

mod common;

use bitcoin::Amount;
use common::{acct, Fixture};
use light::LightClient;
use primitives::{Hash32, Height, StateRoot};
use rpc::api::SidechainApiClient;
use rpc::types::VerifyError;

async fn follow(f: &Fixture, client: &mut LightClient) -> usize {
    let c = f.client();
    let mut ranges = 0;
    loop {
        let range = c.get_headers(client.tip().next(), None).await.expect("getheaders");
        if range.headers.is_empty() {
            return ranges;
        }
        let last = range.headers.last().expect("not empty");
        assert!(last.federation.is_some(), "the last header of an answer carries the federation entry");
        client.extend(&range.decode().expect("decodes")).expect("an honest range");
        ranges += 1;
    }
}

#[tokio::test]
async fn a_light_client_follows_the_served_headers_and_believes_only_proved_answers() {
    let f = Fixture::start().await;
    for _ in 0..7 {
        f.backend.commit_block(Vec::new());
    }
    let tip = f.backend.tip_block().block.header.height;
    let mut client = LightClient::from_genesis(&f.backend.chain);
    assert_eq!(follow(&f, &mut client).await, 1, "one answer holds them all");
    assert_eq!(client.tip(), tip);

    let c = f.client();
    // Federation entries every federation_change_min_lead heights and on the last header; count honoured.
    let lead = client.max_range();
    let all = c.get_headers(Height(1), Some(5_000)).await.unwrap();
    let with_entry: Vec<u64> = all.headers.iter().filter(|h| h.federation.is_some()).map(|h| h.height.get()).collect();
    let want: Vec<u64> = (1..=tip.get()).filter(|h| h % lead == 0 || *h == tip.get()).collect();
    assert_eq!(with_entry, want);
    let mut stepwise = LightClient::from_genesis(&f.backend.chain);
    while stepwise.tip() < tip {
        let r = c.get_headers(stepwise.tip().next(), Some(2)).await.unwrap();
        assert_eq!(r.headers.len() as u64, (tip.get() - stepwise.tip().get()).min(2));
        stepwise.extend(&r.decode().unwrap()).expect("small answers are followed too");
    }
    assert!(c.get_headers(tip.next(), None).await.unwrap().headers.is_empty(), "nothing past the tip");
    // (A `from` of 0 is refused with -8: `bad_calls_have_the_documented_codes` in api.rs.)

    // A proved balance, and every way to lie about it.
    let honest = c.get_account(acct(2), Some(true)).await.unwrap();
    assert_eq!(honest.balance, Amount::from_sat(1_000_007_000));
    honest.verify(&client, &acct(2)).expect("the honest answer verifies");
    let err = honest.verify(&client, &acct(3)).expect_err("an answer about another account");
    assert!(matches!(err, VerifyError::Differs { field: "account", .. }), "{err}");
    assert!(c.get_account(acct(2), None).await.unwrap().proof.is_none(), "no proof unless asked");

    let mut inflated = honest.clone();
    inflated.balance = Amount::from_sat(5_000_000_000);
    assert!(matches!(inflated.verify(&client, &acct(2)), Err(VerifyError::Differs { field: "balance_sat", .. })));
    let mut shown = honest.clone();
    shown.balance_btc = "1000.00000000".into();
    assert!(matches!(shown.verify(&client, &acct(2)), Err(VerifyError::Differs { field: "balance_btc", .. })));

    let mut forged = honest.clone();
    let proof = forged.proof.as_mut().unwrap();
    let account = ledger::Account { balance: Amount::from_sat(5_000_000_000), nonce: honest.nonce };
    proof.entries[0].value = Some(hex::encode(borsh::to_vec(&account).unwrap()));
    forged.balance = account.balance;
    let err = forged.verify(&client, &acct(2)).expect_err("a forged entry fails its proof");
    assert!(matches!(err, VerifyError::Light(light::LightError::EntryProof { .. })), "{err}");

    let mut rerooted = honest.clone();
    rerooted.proof.as_mut().unwrap().state_root = StateRoot(Hash32([3; 32]));
    assert!(matches!(rerooted.verify(&client, &acct(2)), Err(VerifyError::StateRoot { .. })));

    let mut ahead = honest.clone();
    ahead.proof.as_mut().unwrap().height = tip.next();
    assert!(matches!(
        ahead.verify(&client, &acct(2)),
        Err(VerifyError::Light(light::LightError::UnknownHeight { .. }))
    ));

    let mut bare = honest.clone();
    bare.proof = None;
    assert!(matches!(bare.verify(&client, &acct(2)), Err(VerifyError::NoProof)));
}

#[tokio::test]
async fn a_proved_peg_in_status_says_what_the_ledger_recorded() {
    let f = Fixture::start().await;
    let mut client = LightClient::from_genesis(&f.backend.chain);
    follow(&f, &mut client).await;
    // A deposit the ledger never recorded: its absence is proved, and a node claiming it minted is caught.
    let text = format!("{}:0", "ab".repeat(32));
    let outpoint: bitcoin::OutPoint = text.parse().unwrap();
    let status = f.client().get_peg_status(text, Some(true)).await.unwrap();
    let proved = status.verify(&client, &outpoint).expect("absence is proved");
    assert_eq!((proved.minted_at, proved.stage), (None, status.stage));
    for lie in [
        |s: &mut rpc::types::PegInStatus| s.minted_at = Some(Height(1)),
        |s: &mut rpc::types::PegInStatus| s.stage = rpc::types::PegInStage::Minted,
        |s: &mut rpc::types::PegInStatus| s.stage = rpc::types::PegInStage::BelowMinimum,
    ] {
        let mut minted = status.clone();
        lie(&mut minted);
        assert!(matches!(minted.verify(&client, &outpoint), Err(VerifyError::Differs { field: "stage", .. })));
    }
    let other: bitcoin::OutPoint = format!("{}:1", "ab".repeat(32)).parse().unwrap();
    assert!(matches!(status.verify(&client, &other), Err(VerifyError::Differs { field: "outpoint", .. })));
}

#[tokio::test]
async fn a_proved_history_entry_says_only_what_its_transaction_says() {
    let f = Fixture::start().await;
    let mut client = LightClient::from_genesis(&f.backend.chain);
    follow(&f, &mut client).await;
    let entries = f.client().list_transactions(acct(2), None, None, Some(true)).await.unwrap();
    let received =
        entries.iter().find(|e| matches!(e.kind, rpc::types::HistoryKindInfo::Received { .. })).expect("one");
    assert_eq!(received.verify(&client, &acct(2)).expect("an honest entry"), Vec::<&str>::new());
    // The same entry claimed for another account, from another sender, or for another transaction.
    assert!(matches!(received.verify(&client, &acct(3)), Err(VerifyError::Differs { field: "kind", .. })));
    let mut from = received.clone();
    if let rpc::types::HistoryKindInfo::Received { from: f, .. } = &mut from.kind {
        *f = acct(3);
    }
    assert!(matches!(from.verify(&client, &acct(2)), Err(VerifyError::Differs { field: "from", .. })));
    let mut moved = received.clone();
    moved.height = moved.height.next();
    assert!(moved.verify(&client, &acct(2)).is_err(), "another block");
    let mut bare = received.clone();
    bare.proof = None;
    assert!(matches!(bare.verify(&client, &acct(2)), Err(VerifyError::NoProof)));
}
