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
            assert!(range.federation.is_none(), "no headers, no federation entry");
            return ranges;
        }
        assert!(range.headers.len() as u64 <= client.max_range());
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
    let ranges = follow(&f, &mut client).await;
    assert_eq!(client.tip(), tip);
    assert!(ranges >= 2, "{tip} headers come in ranges of at most {}", client.max_range());

    let c = f.client();
    // The cap: a bigger count gets the chain's federation_change_min_lead headers; 0 is the genesis.
    let capped = c.get_headers(Height(1), Some(1_000)).await.unwrap();
    assert_eq!(capped.headers.len() as u64, client.max_range());
    // (A `from` of 0 is refused with -8: `bad_calls_have_the_documented_codes` in api.rs.)

    // A proved balance, and every way to lie about it.
    let honest = c.get_account(acct(2), Some(true)).await.unwrap();
    assert_eq!(honest.balance, Amount::from_sat(1_000_007_000));
    honest.verify(&client).expect("the honest answer verifies");
    assert!(c.get_account(acct(2), None).await.unwrap().proof.is_none(), "no proof unless asked");

    let mut inflated = honest.clone();
    inflated.balance = Amount::from_sat(5_000_000_000);
    assert!(matches!(inflated.verify(&client), Err(VerifyError::Differs { field: "balance_sat", .. })));

    let mut forged = honest.clone();
    let proof = forged.proof.as_mut().unwrap();
    let account = ledger::Account { balance: Amount::from_sat(5_000_000_000), nonce: honest.nonce };
    proof.entries[0].value = Some(hex::encode(borsh::to_vec(&account).unwrap()));
    forged.balance = account.balance;
    let err = forged.verify(&client).expect_err("a forged entry fails its proof");
    assert!(matches!(err, VerifyError::Light(light::LightError::EntryProof { .. })), "{err}");

    let mut rerooted = honest.clone();
    rerooted.proof.as_mut().unwrap().state_root = StateRoot(Hash32([3; 32]));
    assert!(matches!(rerooted.verify(&client), Err(VerifyError::StateRoot { .. })));

    let mut ahead = honest.clone();
    ahead.proof.as_mut().unwrap().height = tip.next();
    assert!(matches!(ahead.verify(&client), Err(VerifyError::Light(light::LightError::UnknownHeight { .. }))));

    let mut bare = honest.clone();
    bare.proof = None;
    assert!(matches!(bare.verify(&client), Err(VerifyError::NoProof)));
}

#[tokio::test]
async fn a_proved_peg_in_status_says_what_the_ledger_recorded() {
    let f = Fixture::start().await;
    let mut client = LightClient::from_genesis(&f.backend.chain);
    follow(&f, &mut client).await;
    // A deposit the ledger never recorded: its absence is proved, and a node claiming it minted is caught.
    let outpoint = format!("{}:0", "ab".repeat(32));
    let status = f.client().get_peg_status(outpoint, Some(true)).await.unwrap();
    assert_eq!(status.verify(&client).expect("absence is proved"), None);
    let mut minted = status.clone();
    minted.stage = rpc::types::PegInStage::Minted;
    minted.minted_at = Some(Height(1));
    assert!(matches!(minted.verify(&client), Err(VerifyError::Differs { field: "stage", .. })));
}
