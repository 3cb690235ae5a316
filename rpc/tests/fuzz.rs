//! Fuzz targets of what RPC callers (and, for reserve proofs, RPC servers) send: `sendrawtransaction`'s
//! hex, the peg parameters of `claimpegin`/`getpegstatus`/`getpegoutstatus`/`resumepeg`, JSON parameters
//! (hashes, block refs, federation proposals and approvals), the HTTP headers the guard reads before any
//! method runs, and a `getreserveproof` answer as a user's client verifies it. Seeds are real values from
//! `ledger::testkit`. Short run in `cargo test`; `scripts/fuzz` for long runs.

use bitcoin::Amount;
use fuzzkit::Target;
use ledger::testkit::{self, transfer, user_key, validator_key};
use ledger::{Approval, FederationProposal, ReconfigureTx, SignedUserTx, UserTx, UserTxKind};
use primitives::{canonical_bytes, AccountId, Hash32, Height, ValidatorIndex};
use rpc::auth::{basic_auth_header, Cookie, Guard, RpcAuth};
use rpc::handlers::decode_raw_tx;
use rpc::types::{parse_account, parse_btc_block_hash, parse_btc_outpoint, parse_burn_txid, ReserveProofInfo};
use rpc::BlockRef;

#[global_allocator]
static ALLOC: fuzzkit::CountingAlloc = fuzzkit::CountingAlloc;

fn user_txs() -> Vec<SignedUserTx> {
    let chain = testkit::chain_and_store(4, 2, Amount::from_sat(1_000_000)).0;
    let (a, b) = (user_key(0), user_key(1));
    vec![
        transfer(&chain, &a, 3, b.public().account_id(), Amount::from_sat(700), Amount::from_sat(1_000)),
        UserTx { signer: b.public(), nonce: 0, fee: Amount::ZERO, kind: UserTxKind::RegisterDeposit }
            .sign(&b, chain.genesis_hash()),
    ]
}

fn json_params() -> Vec<Vec<u8>> {
    let chain = testkit::chain_and_store(4, 2, Amount::from_sat(1_000_000)).0;
    let proposal = FederationProposal {
        validators: chain.genesis().validators.clone(),
        peg_threshold: 3,
        activation_height: Height(40),
    };
    let approval = proposal.approve(ValidatorIndex(0), 0, &validator_key(0), chain.genesis_hash());
    let change = ReconfigureTx { proposal: proposal.clone(), approvals: vec![approval.clone()] };
    let hash = Hash32([0xab; 32]);
    vec![
        serde_json::to_vec(&proposal).expect("json"),
        serde_json::to_vec(&approval).expect("json"),
        serde_json::to_vec(&change).expect("json"),
        serde_json::to_vec(&hash).expect("json"),
        b"12".to_vec(),
        serde_json::to_vec(&user_txs()[0]).expect("json"),
    ]
}

fn reserve_proof_seed() -> Vec<u8> {
    let (chain, store) = testkit::chain_and_store(4, 2, Amount::from_sat(1_000_000));
    let v = store.latest_version().expect("genesis is stored");
    let proof = ledger::batching::reserve_proof(&store.snapshot(v)).expect("in-memory proof");
    let info = ReserveProofInfo::new(Height(v), &proof, chain.genesis_supply());
    info.verify().expect("an honest reserve proof verifies");
    serde_json::to_vec(&info).expect("json")
}

fn targets(cookie_dir: &std::path::Path) -> Vec<Target> {
    let txs = user_txs();
    let mut raw: Vec<Vec<u8>> = txs.iter().map(|t| hex::encode(canonical_bytes(t)).into_bytes()).collect();
    raw.push(format!("  {}\n", hex::encode(canonical_bytes(&txs[1]))).into_bytes());

    let txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
    let account = user_key(0).public().account_id().to_string();
    let peg = vec![format!("{txid}:0"), format!(" {txid}:4294967295 "), txid.to_string(), account];

    let cookie = Cookie::create(&cookie_dir.join(".cookie")).expect("cookie file");
    let (user, secret) = Cookie::read(&cookie_dir.join(".cookie")).expect("cookie");
    let rpcauth = RpcAuth::generate("alice", "hunter2");
    let guard = Guard::new(&cookie, vec![rpcauth.clone()], &["node.example".to_string()]);
    let headers = vec![
        format!("localhost:18443\nhttp://localhost:18443\n{}", basic_auth_header(&user, &secret)),
        format!("127.0.0.1\n\n{}", basic_auth_header("alice", "hunter2")),
        format!("[::1]:1\nhttp://node.example/\nBasic {}\n{}", "Zm9vOmJhcg==", rpcauth.to_line()),
    ];

    vec![
        Target::new("rpc_raw_tx", raw, |b| {
            if let Ok(tx) = decode_raw_tx(&String::from_utf8_lossy(b)) {
                let bytes = hex::decode(String::from_utf8_lossy(b).trim()).expect("it decoded");
                assert_eq!(canonical_bytes(&tx), bytes, "a second encoding of one transaction");
            }
        }),
        Target::new("rpc_peg_params", peg.into_iter().map(String::into_bytes).collect(), |b| {
            let s = String::from_utf8_lossy(b);
            let _ = parse_btc_outpoint(&s);
            let _ = parse_btc_block_hash(&s);
            let _ = parse_account(&s);
            let _ = parse_burn_txid(&s);
            let _ = s.parse::<Hash32>();
        }),
        Target::new("rpc_json_params", json_params(), |b| {
            let _ = serde_json::from_slice::<FederationProposal>(b);
            let _ = serde_json::from_slice::<ReconfigureTx>(b);
            let _ = serde_json::from_slice::<Approval>(b);
            let _ = serde_json::from_slice::<BlockRef>(b);
            let _ = serde_json::from_slice::<Hash32>(b);
            let _ = serde_json::from_slice::<AccountId>(b);
            let _ = serde_json::from_slice::<SignedUserTx>(b);
        }),
        // Lines: Host, Origin, Authorization, then an `rpcauth=` line.
        Target::new("rpc_http_guard", headers.into_iter().map(String::into_bytes).collect(), move |b| {
            let mut lines = b.split(|&c| c == b'\n');
            let mut map = http::HeaderMap::new();
            for name in [http::header::HOST, http::header::ORIGIN, http::header::AUTHORIZATION] {
                if let Some(v) = lines.next().and_then(|l| http::HeaderValue::from_bytes(l).ok()) {
                    map.insert(name, v);
                }
            }
            let _ = guard.check(&map, &http::Uri::from_static("/"));
            if let Some(line) = lines.next() {
                let _ = RpcAuth::parse(&String::from_utf8_lossy(line));
            }
        }),
        Target::new("rpc_reserve_proof", vec![reserve_proof_seed()], |b| {
            if let Ok(info) = serde_json::from_slice::<ReserveProofInfo>(b) {
                let _ = info.verify();
            }
        }),
    ]
}

#[test]
fn short_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    fuzzkit::short_run(&targets(dir.path()));
}

#[test]
#[ignore = "long run: scripts/fuzz"]
fn long_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    fuzzkit::long_run_from_env(&targets(dir.path()));
}

#[test]
fn seeds_are_accepted() {
    for tx in user_txs() {
        assert_eq!(decode_raw_tx(&hex::encode(canonical_bytes(&tx))).ok(), Some(tx));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let cookie = Cookie::create(&dir.path().join(".cookie")).expect("cookie file");
    let (user, secret) = Cookie::read(&dir.path().join(".cookie")).expect("cookie");
    let guard = Guard::new(&cookie, Vec::new(), &[]);
    let mut map = http::HeaderMap::new();
    map.insert(http::header::HOST, http::HeaderValue::from_static("localhost:18443"));
    map.insert(http::header::AUTHORIZATION, basic_auth_header(&user, &secret).parse().expect("ascii"));
    assert_eq!(guard.check(&map, &http::Uri::from_static("/")), Ok(()));
}
