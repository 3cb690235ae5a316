//! Keeps `docs/PROTOCOL.md` honest: every `- name: <hex>` line of its worked example must equal what
//! the code computes. Change the encoding and this test tells you which lines of the doc to update.

use bitcoin::Amount;
use primitives::{canonical_bytes, tagged_hash, AccountId, GenesisHash, Hash32, Keypair, TxId};
use sidechain_ledger::{fee_pool_id, tx_root, StateKey, Tx, UserTx, UserTxKind};
use std::collections::BTreeMap;

fn doc_values() -> BTreeMap<String, String> {
    // The runtime value first: a test binary reused from a clone at another path must read this tree.
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    let path = format!("{dir}/../docs/PROTOCOL.md");
    let text = std::fs::read_to_string(&path).expect("docs/PROTOCOL.md exists");
    let example = text.split("## Worked example").nth(1).expect("PROTOCOL.md has a '## Worked example' section");
    example
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('`').to_string()))
        .filter(|(_, v)| !v.is_empty() && v.chars().all(|c| c.is_ascii_hexdigit()))
        .collect()
}

fn code_values() -> Vec<(&'static str, String)> {
    let secret: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
    let key = Keypair::from_secret(secret);
    let genesis_hash = GenesisHash(Hash32([0x42; 32]));
    let to = AccountId(Hash32([0xab; 32]));
    let tx = UserTx {
        signer: key.public(),
        nonce: 7,
        fee: Amount::from_sat(1_000),
        kind: UserTxKind::Transfer { to, amount: Amount::from_sat(50_000) },
    };
    let tx_bytes = canonical_bytes(&tx);
    let signing = tx.signing_bytes(&genesis_hash);
    let signed = tx.sign(&key, &genesis_hash);
    signed.verify_signature(&genesis_hash).expect("example signature verifies");
    let block_tx = Tx::User(signed.clone());
    let sender = key.public().account_id();
    vec![
        ("secret_key", hex::encode(secret)),
        ("public_key", hex::encode(key.public().0)),
        ("account_id", sender.0.to_hex()),
        ("genesis_hash", genesis_hash.to_hex()),
        ("recipient", to.0.to_hex()),
        ("tx_bytes", hex::encode(&tx_bytes)),
        ("signing_bytes", hex::encode(&signing)),
        ("signature", hex::encode(signed.signature.0)),
        ("signed_tx_bytes", hex::encode(canonical_bytes(&signed))),
        ("block_tx_bytes", hex::encode(canonical_bytes(&block_tx))),
        ("txid", signed.txid().to_hex()),
        ("tx_root_one", tx_root(&[signed.txid()]).to_hex()),
        ("tx_root_two", tx_root(&[signed.txid(), TxId(Hash32([0x11; 32]))]).to_hex()),
        ("tx_root_empty", tx_root(&[]).to_hex()),
        ("fee_pool_id", fee_pool_id().0.to_hex()),
        ("account_state_key", hex::encode(canonical_bytes(&StateKey::Account(sender)))),
        ("account_key_hash", hex::encode(StateKey::Account(sender).key_hash().0)),
        ("tagged_hash_abc", tagged_hash("sidechain/txid", &[b"abc"]).to_hex()),
    ]
}

#[test]
fn protocol_doc_example_matches_the_code() {
    let doc = doc_values();
    let code = code_values();
    let mut wrong = Vec::new();
    for (name, value) in &code {
        if doc.get(*name) != Some(value) {
            wrong.push(format!("- {name}: `{value}`"));
        }
    }
    assert!(wrong.is_empty(), "docs/PROTOCOL.md drifted; these lines should read:\n{}", wrong.join("\n"));
}
