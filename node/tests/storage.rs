//! The RocksDB store: atomic per-height commits, state readable through the ledger's trait, the WAL,
//! clear errors for a locked or foreign datadir, and consistency after a kill -9 in the middle of writes.

use bitcoin::hashes::Hash as _;
use bitcoin::Amount;
use ledger::testkit::{chain_and_store, transfer, user_key};
use ledger::{build_block, BlockTemplate, Chain, Snapshot, StateReader, Tx};
use node::storage::{CommitBatch, SignedVersion, Store, StoreError};
use primitives::{canonical_bytes, AccountId, BlockId, GenesisHash, Hash32, Height, StateRoot, TxId, ValidatorIndex};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn open_with_genesis(dir: &Path) -> (Chain, Store) {
    let (chain, _) = chain_and_store(4, 8, Amount::from_sat(1_000_000));
    let store = Store::open(dir).expect("open");
    node::chain::write_genesis(&chain, &store).expect("genesis");
    (chain, store)
}

/// Builds and commits the next block with one transfer from user `i % 8`; returns its state root.
fn commit_next(chain: &Chain, store: &Store) -> StateRoot {
    let tip = store.tip().expect("tip").expect("genesis committed");
    let height = tip.next();
    let sender = user_key((height.get() % 8) as u32);
    let nonce = height.get().saturating_sub(1) / 8;
    let to = user_key(((height.get() + 1) % 8) as u32).public().account_id();
    let tx = transfer(chain, &sender, nonce, to, Amount::from_sat(10), chain.params().min_fee);
    let template = BlockTemplate {
        height,
        prev_hash: BlockId::ZERO,
        time_ms: chain.genesis().genesis_time_ms + height.get(),
        proposer: ValidatorIndex(0),
        btc_anchor: chain.genesis().btc_anchor,
        last_commit_hash: Hash32::ZERO,
    };
    let (block, outcome) = build_block(chain, store, template, vec![Tx::User(tx)]).expect("valid block");
    let bytes = canonical_bytes(&block);
    let txids: Vec<TxId> = block.txs.iter().map(Tx::txid).collect();
    store
        .commit(&CommitBatch {
            height,
            hash: block.hash(),
            block: &bytes,
            cert: b"certificate",
            state: &outcome.write_set,
            txids: &txids,
            registrations: &[],
            history: None,
        })
        .expect("commit");
    assert_eq!(store.tx_location(&txids[0]).expect("index"), Some((height, 0)));
    outcome.state_root
}

#[test]
fn commits_are_readable_and_state_matches_the_roots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (chain, store) = open_with_genesis(dir.path());
    let mut roots = vec![];
    for _ in 0..20 {
        roots.push(commit_next(&chain, &store));
    }
    assert_eq!(store.tip().expect("tip"), Some(Height(20)));
    for (i, root) in roots.iter().enumerate() {
        let h = i as u64 + 1;
        assert_eq!(&Snapshot::new(&store, h).root().expect("root"), root);
        let block = store.block(Height(h)).expect("read").expect("present");
        let decoded: ledger::Block = borsh::from_slice(&block).expect("decodes");
        assert_eq!(store.height_of(&decoded.hash()).expect("index"), Some(Height(h)));
        assert_eq!(store.cert(Height(h)).expect("cert").as_deref(), Some(&b"certificate"[..]));
    }
    // Balances through the ledger's reader: total supply is conserved across 20 blocks of transfers.
    let snap = Snapshot::new(&store, 20);
    let total: u64 = (0..8)
        .map(|i| snap.get_account(&user_key(i).public().account_id()).expect("read").map_or(0, |a| a.balance.to_sat()))
        .sum::<u64>()
        + snap.get_account(&ledger::fee_pool_id()).expect("read").map_or(0, |a| a.balance.to_sat());
    assert_eq!(total, 8 * 1_000_000);
}

#[test]
fn a_commit_that_skips_a_height_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (chain, store) = open_with_genesis(dir.path());
    commit_next(&chain, &store);
    let ws = chain.genesis_state(&store).expect("a write set");
    let err = store
        .commit(&CommitBatch {
            height: Height(5),
            hash: BlockId(Hash32([9; 32])),
            block: b"x",
            cert: b"y",
            state: &ws,
            txids: &[TxId(Hash32([8; 32]))],
            registrations: &[],
            history: None,
        })
        .expect_err("height 5 does not extend tip 1");
    assert!(matches!(err, StoreError::NotNextHeight { got: Height(5), .. }), "{err}");
    assert_eq!(store.tip().expect("tip"), Some(Height(1)));
    assert_eq!(store.block(Height(5)).expect("read"), None);
    assert_eq!(store.tx_location(&TxId(Hash32([8; 32]))).expect("read"), None);
}

#[test]
fn reopening_keeps_everything_and_the_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = {
        let (chain, store) = open_with_genesis(dir.path());
        store.wal_append(b"vote-1").expect("wal");
        store.wal_append(b"vote-2").expect("wal");
        // The block a lock names is kept with the WAL (once per id), so a restart can propose it again.
        store.wal_keep_block(&primitives::BlockId(primitives::Hash32([5; 32])), b"block-5").expect("keep");
        store.wal_keep_block(&primitives::BlockId(primitives::Hash32([5; 32])), b"block-5").expect("keep");
        commit_next(&chain, &store)
    };
    let (_, store) = open_with_genesis(dir.path());
    assert_eq!(store.tip().expect("tip"), Some(Height(1)));
    assert_eq!(Snapshot::new(&store, 1).root().expect("root"), root);
    assert_eq!(store.wal_entries().expect("wal"), vec![b"vote-1".to_vec(), b"vote-2".to_vec()]);
    assert_eq!(store.wal_blocks().expect("wal blocks"), vec![b"block-5".to_vec()]);
    store.wal_clear().expect("clear");
    assert!(store.wal_entries().expect("wal").is_empty());
    assert!(store.wal_blocks().expect("wal blocks").is_empty(), "cleared with the WAL");
    assert_eq!(store.wal_append(b"again").expect("wal"), 0);
}

#[test]
fn a_locked_datadir_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Store::open(dir.path()).expect("first open");
    match Store::open(dir.path()) {
        Err(e @ StoreError::Locked(_)) => assert!(e.to_string().contains("in use"), "{e}"),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened a locked datadir twice"),
    }
}

#[test]
fn a_datadir_of_another_chain_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store.check_genesis(&GenesisHash(Hash32([1; 32]))).expect("first genesis binds");
    assert!(matches!(store.check_genesis(&GenesisHash(Hash32([2; 32]))), Err(StoreError::WrongGenesis { .. })));
}

const CHILD_ENV: &str = "SIDECHAIN_STORAGE_CRASH_CHILD_DB";

/// Not a test on its own: the child process of the crash test. It commits blocks as fast as it can and
/// prints each height after its commit returned, until it is killed.
#[test]
fn crash_child_writer() {
    let Some(path) = std::env::var_os(CHILD_ENV) else { return };
    let (chain, store) = open_with_genesis(Path::new(&path));
    loop {
        let root = commit_next(&chain, &store);
        let tip = store.tip().expect("tip").expect("some");
        println!("committed {} {}", tip.get(), root);
    }
}

#[test]
fn kill_minus_9_during_writes_leaves_a_consistent_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    for round in 0..3u64 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child_writer", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        // Wait (bounded) until it has acknowledged a few more commits, then kill it at whatever instant
        // it is in: most likely in the middle of the next write batch.
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel::<(u64, StateRoot)>();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("committed ") {
                    let mut it = rest.split(' ');
                    let h: u64 = it.next().and_then(|s| s.parse().ok()).expect("height");
                    let root: StateRoot = it.next().and_then(|s| s.parse().ok()).expect("root");
                    if tx.send((h, root)).is_err() {
                        break;
                    }
                }
            }
        });
        let mut acked = vec![];
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.len() < 5 + round as usize * 3 {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(a) => acked.push(a),
                Err(e) => panic!("child stopped acknowledging commits: {e} (after {} acks)", acked.len()),
            }
        }
        child.kill().expect("kill -9");
        child.wait().expect("reap");
        reader.join().expect("reader");
        acked.extend(rx.try_iter());

        // Reopen: every acknowledged commit is there with its exact state root, and the tip is whole.
        let (chain, store) = open_with_genesis(dir.path());
        let tip = store.tip().expect("tip").expect("genesis at least");
        for (h, root) in &acked {
            assert!(*h <= tip.get(), "acknowledged height {h} lost (tip {tip})");
            assert_eq!(&Snapshot::new(&store, *h).root().expect("root"), root);
        }
        for h in 1..=tip.get() {
            assert!(store.block(Height(h)).expect("read").is_some(), "block {h} missing below tip {tip}");
            assert!(store.cert(Height(h)).expect("read").is_some(), "cert {h} missing below tip {tip}");
        }
        assert_eq!(store.block(tip.next()).expect("read"), None, "nothing above the tip");
        // And it keeps working from there.
        commit_next(&chain, &store);
        assert_eq!(store.tip().expect("tip"), Some(tip.next()));
    }
}

#[test]
fn signed_batch_versions_survive_a_reopen() {
    let version = |n: u8, inputs| SignedVersion { txid: bitcoin::Txid::from_byte_array([n; 32]), inputs };
    let dir = tempfile::tempdir().expect("tempdir");
    let o = |n: u8| ledger::BtcOutPoint { txid: bitcoin::Txid::from_byte_array([n; 32]), vout: 1 };
    {
        let store = Store::open(&dir.path().join("db")).expect("open");
        assert!(store.signed_batch_versions(7).expect("read").is_empty());
        store.record_signed_batch_version(7, version(1, vec![o(1)])).expect("record");
        store.record_signed_batch_version(7, version(1, vec![o(1)])).expect("again: no duplicate");
        store.record_signed_batch_version(7, version(2, vec![o(1), o(2)])).expect("record");
    }
    let store = Store::open(&dir.path().join("db")).expect("reopen");
    let signed = store.signed_batch_versions(7).expect("read");
    assert_eq!(signed, vec![version(1, vec![o(1)]), version(2, vec![o(1), o(2)])]);
    assert!(store.signed_batch_versions(8).expect("read").is_empty());
}

/// The account history: an account's entries newest first and paged, other accounts' apart; the index
/// says how far it goes; dropping its column family drops the mark with it (so the node rebuilds it), and
/// the rest of the store is untouched.
#[test]
fn account_history_is_newest_first_paged_and_its_mark_goes_with_its_column_family() {
    use ledger::history::{HistoryEntry, HistoryKind};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let (a, b) = (AccountId(Hash32([1; 32])), AccountId(Hash32([2; 32])));
    let entry = |h: u64, index: u32, amount: u64| HistoryEntry {
        height: Height(h),
        index,
        txid: TxId(Hash32([h as u8; 32])),
        kind: HistoryKind::Received { from: b, amount: Amount::from_sat(amount) },
    };
    {
        let store = Store::open(&path).expect("open");
        assert_eq!(store.history_indexed_to().expect("mark"), None);
        store
            .index_history(Height(1), &[(a, entry(1, 0, 10)), (b, entry(1, 0, 11)), (a, entry(1, 3, 12))], false)
            .expect("h1");
        // Two entries of one transaction for one account (a transfer to oneself) both stay.
        store.index_history(Height(2), &[(a, entry(2, 0, 20)), (a, entry(2, 0, 21))], true).expect("h2");
        assert_eq!(store.history_indexed_to().expect("mark"), Some(Height(2)));
        let amounts = |skip, count| -> Vec<u64> {
            let got = store.account_history(&a, skip, count).expect("read");
            got.iter()
                .map(|e| match e.kind {
                    HistoryKind::Received { amount, .. } => amount.to_sat(),
                    _ => unreachable!("only receipts were written"),
                })
                .collect()
        };
        assert_eq!(amounts(0, 100), vec![21, 20, 12, 10], "newest first, later entries of a tx first");
        assert_eq!(amounts(1, 2), vec![20, 12]);
        assert_eq!(amounts(4, 10), Vec::<u64>::new());
        assert_eq!(amounts(0, 0), Vec::<u64>::new());
        assert_eq!(store.account_history(&b, 0, 10).expect("read"), vec![entry(1, 0, 11)]);
        assert!(store.account_history(&AccountId(Hash32([3; 32])), 0, 10).expect("read").is_empty());
        assert!(store.account_history(&AccountId(Hash32([0; 32])), 0, 10).expect("read").is_empty());
    }
    {
        let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).expect("list");
        let mut db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, &cfs).expect("raw open");
        db.drop_cf(node::storage::CF_HISTORY).expect("drop");
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.history_indexed_to().expect("mark"), None, "the mark went with the family");
    assert!(store.account_history(&a, 0, 10).expect("read").is_empty());
}
