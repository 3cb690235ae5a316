//! RocksDB storage: blocks, commit certificates, the state tree and the consensus WAL, on disk.
//!
//! Invariants owned here:
//! - A committed block, its certificate, the state tree nodes and values it wrote, and the new tip go in
//!   **one** synced `WriteBatch`: after a crash at any instant the store holds either all of height `h`
//!   or none of it, so a restarted node resumes exactly at its tip.
//! - The consensus WAL is appended with `sync = true` before the caller sends anything, and is only
//!   trimmed for heights that are committed.
//!
//! Key layout (all integers big-endian so that byte order is numeric order):
//! `blocks`: height -> block bytes · `hashes`: block hash -> height · `certs`: height -> certificate bytes ·
//! `jmt_nodes`: borsh(NodeKey) -> borsh(Node) · `jmt_values`: key hash ‖ version -> `borsh(Option<value>)` ·
//! `meta`: name -> value · `wal`: sequence -> entry bytes · `txs`: txid -> height ‖ index in block ·
//! `registrations`: account -> height of its first `RegisterDeposit` (the watcher's script list: the state
//! tree cannot be iterated, so this side index is written in the same batch as the block that registers) ·
//! `history`: account ‖ height ‖ index in block ‖ entry number -> `borsh(HistoryEntry)` (the account history,
//! `ledger::history`), and the key `indexed_to` -> the height through which it is complete and the entries'
//! format version. The mark lives
//! in the same column family, so dropping the family drops the mark and the node rebuilds it from blocks.

use ledger::history::HistoryEntry;
use ledger::jmt::storage::{LeafNode, Node, NodeKey, TreeReader};
use ledger::jmt::{KeyHash, OwnedValue, Version};
use ledger::WriteSet;
use primitives::{AccountId, BlockId, GenesisHash, Hash32, Height, TxId};
use rocksdb::{ColumnFamilyDescriptor, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use std::path::{Path, PathBuf};

const CF_BLOCKS: &str = "blocks";
const CF_HASHES: &str = "hashes";
const CF_CERTS: &str = "certs";
const CF_JMT_NODES: &str = "jmt_nodes";
const CF_JMT_VALUES: &str = "jmt_values";
const CF_META: &str = "meta";
const CF_WAL: &str = "wal";
/// Blocks the WAL's entries name (by block id): see [`Store::wal_keep_block`].
const CF_WAL_BLOCKS: &str = "wal_blocks";
const CF_TXS: &str = "txs";
const CF_REGISTRATIONS: &str = "registrations";
/// The account history's column family (public so a test can drop it and watch the node rebuild it).
pub const CF_HISTORY: &str = "history";
const ALL_CFS: [&str; 11] = [
    CF_BLOCKS,
    CF_HASHES,
    CF_CERTS,
    CF_JMT_NODES,
    CF_JMT_VALUES,
    CF_META,
    CF_WAL,
    CF_WAL_BLOCKS,
    CF_TXS,
    CF_REGISTRATIONS,
    CF_HISTORY,
];
const HISTORY_INDEXED_TO: &[u8] = b"indexed_to";
/// The version of the history entries' encoding, kept beside the mark: a node whose stored entries are of
/// another version reads its mark as absent and rebuilds them all.
const HISTORY_FORMAT: u8 = 1;

const META_TIP: &[u8] = b"tip";
const META_GENESIS: &[u8] = b"genesis_hash";
const META_SIGNING_PAUSED: &[u8] = b"signing_paused";

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process (or this one) holds the datadir.
    #[error("datadir {0} is in use by another sidechaind (RocksDB lock held); stop it or use another --datadir")]
    Locked(PathBuf),
    /// RocksDB could not open the database.
    #[error("cannot open database at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    /// The datadir could not be created.
    #[error("cannot create datadir {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A read or write failed.
    #[error("database {op} failed: {source}")]
    Db {
        op: &'static str,
        #[source]
        source: rocksdb::Error,
    },
    /// A stored value has the wrong length: the store was written by something else or is damaged.
    #[error("corrupt {what} in database: {len} bytes, want {want}")]
    BadLength { what: &'static str, len: usize, want: usize },
    /// A stored value does not decode: the store was written by something else or is damaged.
    #[error("corrupt {what} in database{}: {source}", .height.map(|h| format!(" at height {h}")).unwrap_or_default())]
    Undecodable {
        what: &'static str,
        /// The block height it is stored under, when it is.
        height: Option<Height>,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// The database belongs to another chain.
    #[error("database was created for genesis {found}, but this node runs genesis {expected}; use another --datadir")]
    WrongGenesis { expected: GenesisHash, found: GenesisHash },
    /// A commit that does not extend the tip by one.
    #[error("commit of height {got} does not extend tip {tip:?}")]
    NotNextHeight { tip: Option<Height>, got: Height },
}

/// Whether opening failed because the database's `LOCK` file is held (by another process, or by this one).
///
/// The only place this module reads an error's text, and why: rust-rocksdb's [`rocksdb::Error::kind`]
/// reports a held lock as a plain [`ErrorKind::IOError`](rocksdb::ErrorKind::IOError), like any other IO
/// failure; RocksDB itself says which only in the message (`While lock file: <path>/LOCK: Resource temporarily
/// unavailable` from another process, `lock hold by current process` from this one). Checking the lock
/// ourselves is no way out: RocksDB takes a POSIX `fcntl` lock, which an `flock` does not see. The tests pin
/// the wording down (`lock_detection` below for this process, `a_locked_datadir_is_a_clear_error` in
/// `tests/storage.rs`, and `daemon_cli` for a second daemon), so a RocksDB upgrade that changes it fails
/// there, not in front of an operator.
fn is_lock_held(e: &rocksdb::Error) -> bool {
    let msg = e.as_ref();
    e.kind() == rocksdb::ErrorKind::IOError
        && (msg.contains("lock") || msg.contains("Resource temporarily unavailable"))
}

fn db_err(op: &'static str) -> impl FnOnce(rocksdb::Error) -> StoreError {
    move |source| StoreError::Db { op, source }
}

/// One committed height, ready to be written atomically.
pub struct CommitBatch<'a> {
    /// Its height.
    pub height: Height,
    /// Its block hash.
    pub hash: BlockId,
    /// The encoded block.
    pub block: &'a [u8],
    /// The encoded commit certificate (empty for genesis).
    pub cert: &'a [u8],
    /// The state changes its execution produced (tree version = height).
    pub state: &'a WriteSet,
    /// Ids of the block's transactions, in block order (for the transaction index).
    pub txids: &'a [TxId],
    /// Accounts whose deposit address the block registers (for the watcher's script list).
    pub registrations: &'a [AccountId],
    /// The account history entries the block makes (`ledger::history::block_history`), or `None` when the
    /// node keeps no history (the index's mark then stays where it was).
    pub history: Option<&'a [(AccountId, HistoryEntry)]>,
}

/// The node's database.
pub struct Store {
    db: DB,
    path: PathBuf,
    latest: LatestValues,
}

/// The newest value of recently read or written state keys, so that reads of the current state (mempool
/// admission, block building and execution, RPC) skip RocksDB's reverse seek, the node's largest state
/// cost at saturation (an iterator per read: 11% of a validator's CPU under `scripts/bench`, perf).
///
/// Invariant: every entry is the newest version of its key that the database holds. [`Store::commit`]
/// writes first, then records every value of the batch (the newest by construction) and raises `newest`
/// to its version. A read fills an entry only if (1) it read at or above `newest`, so no version above
/// what it found was recorded, and (2) nothing was recorded or cleared since its lookup missed (the
/// `generation`), so no commit wrote the key between its read and its fill. A read above `newest` (a
/// commit not recorded yet) is not answered from the cache. Full: cleared (a new generation).
#[derive(Default)]
struct LatestValues(std::sync::Mutex<LatestInner>);

#[derive(Default)]
struct LatestInner {
    /// The version of the last recorded commit; nothing is answered or filled before the first.
    newest: Option<Version>,
    /// Bumped by every record and clear: a fill must come from a lookup of the same generation.
    generation: u64,
    values: std::collections::HashMap<KeyHash, (Version, Option<OwnedValue>)>,
}

/// What the cache says of a key at a version.
enum Lookup {
    /// The value (`None`: deleted).
    Known(Option<OwnedValue>),
    /// Read the database, then offer what it holds to [`LatestValues::fill`] with this generation.
    Miss { generation: u64 },
}

/// Entries kept (about 200 bytes each with an account's value): about 13 MB at most.
const LATEST_VALUES_CAP: usize = 65_536;

impl LatestValues {
    fn lock(&self) -> std::sync::MutexGuard<'_, LatestInner> {
        // A panic while holding the lock (an allocation failure) could leave a commit half-recorded:
        // forget everything rather than trust it.
        self.0.lock().unwrap_or_else(|poisoned| {
            let mut inner = poisoned.into_inner();
            inner.values.clear();
            inner.newest = None;
            inner.generation = inner.generation.wrapping_add(1);
            inner
        })
    }

    /// The newest value of `key_hash` at `max_version`, if the cache is sure of it.
    fn get(&self, max_version: Version, key_hash: &KeyHash) -> Lookup {
        let inner = self.lock();
        let miss = Lookup::Miss { generation: inner.generation };
        if inner.newest.is_none_or(|newest| max_version > newest) {
            return miss;
        }
        match inner.values.get(key_hash) {
            Some((version, value)) if *version <= max_version => Lookup::Known(value.clone()),
            _ => miss,
        }
    }

    /// Offers what a read at `max_version`, after a miss of `generation`, found in the database.
    fn fill(&self, generation: u64, max_version: Version, key_hash: KeyHash, found: (Version, Option<OwnedValue>)) {
        let mut inner = self.lock();
        let stale = inner.generation != generation || inner.newest.is_none_or(|newest| max_version < newest);
        if stale || inner.values.contains_key(&key_hash) {
            return;
        }
        inner.make_room();
        inner.values.insert(key_hash, found);
    }

    /// Records what a commit of the state at `version` just wrote, in version order (the last value of a
    /// key is its newest). A commit that does not fit clears the cache first and records what fits: a key
    /// left out then has no entry at all, never an old one (a large genesis is not copied whole).
    fn record<'a>(
        &self,
        version: Version,
        written: impl ExactSizeIterator<Item = (Version, &'a KeyHash, &'a Option<OwnedValue>)>,
    ) {
        let mut inner = self.lock();
        inner.generation = inner.generation.wrapping_add(1);
        if inner.values.len().saturating_add(written.len()) > LATEST_VALUES_CAP {
            inner.values.clear();
        }
        let mut newest = inner.newest.map_or(version, |n| n.max(version));
        for (at, key_hash, value) in written {
            newest = newest.max(at);
            if inner.values.len() < LATEST_VALUES_CAP || inner.values.contains_key(key_hash) {
                inner.values.insert(*key_hash, (at, value.clone()));
            }
        }
        inner.newest = Some(newest);
    }
}

impl LatestInner {
    fn make_room(&mut self) {
        if self.values.len() >= LATEST_VALUES_CAP {
            self.values.clear();
            self.generation = self.generation.wrapping_add(1);
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database under `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_open_files(512);
        let cfs = ALL_CFS.iter().map(|n| ColumnFamilyDescriptor::new(*n, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|source| {
            if is_lock_held(&source) {
                StoreError::Locked(path.to_path_buf())
            } else {
                StoreError::Open { path: path.to_path_buf(), source }
            }
        })?;
        Ok(Store { db, path: path.to_path_buf(), latest: LatestValues::default() })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn cf(&self, name: &'static str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("every column family is created in Store::open")
    }

    fn synced() -> WriteOptions {
        let mut w = WriteOptions::default();
        w.set_sync(true);
        w
    }

    /// Binds the database to a genesis on first use; refuses a database of another chain afterwards.
    pub fn check_genesis(&self, genesis: &GenesisHash) -> Result<(), StoreError> {
        match self.db.get_cf(self.cf(CF_META), META_GENESIS).map_err(db_err("read genesis"))? {
            None => self
                .db
                .put_cf_opt(self.cf(CF_META), META_GENESIS, genesis.as_bytes(), &Self::synced())
                .map_err(db_err("write genesis")),
            Some(found) => {
                let found = GenesisHash(Hash32(found.as_slice().try_into().map_err(|_| StoreError::BadLength {
                    what: "genesis hash",
                    len: found.len(),
                    want: 32,
                })?));
                if &found == genesis {
                    Ok(())
                } else {
                    Err(StoreError::WrongGenesis { expected: *genesis, found })
                }
            }
        }
    }

    /// The highest committed height (`Some(0)` once genesis state is written).
    pub fn tip(&self) -> Result<Option<Height>, StoreError> {
        self.db
            .get_cf(self.cf(CF_META), META_TIP)
            .map_err(db_err("read tip"))?
            .map(|b| decode_u64(&b, "tip").map(Height))
            .transpose()
    }

    /// Writes height `batch.height` (block, certificate, state, tip) in one synced batch.
    pub fn commit(&self, batch: &CommitBatch<'_>) -> Result<(), StoreError> {
        let tip = self.tip()?;
        let expected = tip.map(Height::next).unwrap_or(Height(0));
        if batch.height != expected {
            return Err(StoreError::NotNextHeight { tip, got: batch.height });
        }
        let mut wb = WriteBatch::default();
        let h = batch.height.get().to_be_bytes();
        wb.put_cf(self.cf(CF_BLOCKS), h, batch.block);
        wb.put_cf(self.cf(CF_HASHES), batch.hash.as_bytes(), h);
        wb.put_cf(self.cf(CF_CERTS), h, batch.cert);
        for (i, id) in batch.txids.iter().enumerate() {
            let mut loc = [0u8; 12];
            loc[..8].copy_from_slice(&h);
            loc[8..].copy_from_slice(&(i as u32).to_be_bytes());
            wb.put_cf(self.cf(CF_TXS), id.as_bytes(), loc);
        }
        for account in batch.registrations {
            wb.put_cf(self.cf(CF_REGISTRATIONS), account.0.as_bytes(), h);
        }
        if let Some(entries) = batch.history {
            self.put_history(&mut wb, batch.height, entries);
        }
        self.put_state(&mut wb, batch.state);
        wb.put_cf(self.cf(CF_META), META_TIP, h);
        self.db.write_opt(wb, &Self::synced()).map_err(db_err("commit block"))?;
        let written = batch.state.tree.node_batch.values().iter().map(|((version, k), v)| (*version, k, v));
        self.latest.record(batch.state.version, written);
        Ok(())
    }

    fn put_history(&self, wb: &mut WriteBatch, height: Height, entries: &[(AccountId, HistoryEntry)]) {
        let cf = self.cf(CF_HISTORY);
        // Several entries of one transaction for one account (a transfer to oneself, burns paid together)
        // are told apart by their number, in block order.
        let mut number: std::collections::HashMap<(AccountId, u32), u32> = std::collections::HashMap::new();
        for (account, entry) in entries {
            let n = number.entry((*account, entry.index)).or_default();
            wb.put_cf(cf, history_key(account, height, entry.index, *n), borsh_bytes(entry));
            *n += 1;
        }
        let mut mark = [0u8; 9];
        mark[..8].copy_from_slice(&height.get().to_be_bytes());
        mark[8] = HISTORY_FORMAT;
        wb.put_cf(cf, HISTORY_INDEXED_TO, mark);
    }

    /// Writes the history entries of the committed block at `height` (rebuilding the index); `sync` makes
    /// this and every earlier write durable (a rebuild syncs its last block only: a crash before that
    /// resumes from an earlier mark, and rewriting an entry writes the same key and bytes).
    pub fn index_history(
        &self,
        height: Height,
        entries: &[(AccountId, HistoryEntry)],
        sync: bool,
    ) -> Result<(), StoreError> {
        let mut wb = WriteBatch::default();
        self.put_history(&mut wb, height, entries);
        let opts = if sync { Self::synced() } else { WriteOptions::default() };
        self.db.write_opt(wb, &opts).map_err(db_err("write history"))
    }

    /// The height through which the account history is complete; `None` if it was never built, its column
    /// family was dropped, or its entries are of another format (all to be rebuilt).
    pub fn history_indexed_to(&self) -> Result<Option<Height>, StoreError> {
        let mark = self.db.get_cf(self.cf(CF_HISTORY), HISTORY_INDEXED_TO).map_err(db_err("read history mark"))?;
        Ok(match mark.as_deref() {
            Some([h @ .., HISTORY_FORMAT]) if h.len() == 8 => Some(Height(decode_u64(h, "history mark")?)),
            _ => None,
        })
    }

    /// `account`'s history, newest first: `count` entries after skipping the `skip` newest.
    pub fn account_history(
        &self,
        account: &AccountId,
        skip: usize,
        count: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let prefix = account.0.as_bytes();
        let mut seek = [0xffu8; HISTORY_KEY_LEN];
        seek[..32].copy_from_slice(prefix);
        let from = IteratorMode::From(&seek, Direction::Reverse);
        let (mut out, mut skipped) = (Vec::new(), 0);
        for item in self.db.iterator_cf(self.cf(CF_HISTORY), from) {
            let (k, v) = item.map_err(db_err("read history"))?;
            if out.len() == count || !k.starts_with(prefix) || k.len() != HISTORY_KEY_LEN {
                break;
            }
            if skipped < skip {
                skipped += 1;
                continue;
            }
            out.push(borsh::from_slice(&v).map_err(|source| StoreError::Undecodable {
                what: "history entry",
                height: None,
                source,
            })?);
        }
        Ok(out)
    }

    fn put_state(&self, wb: &mut WriteBatch, ws: &WriteSet) {
        for (key, node) in ws.tree.node_batch.nodes() {
            wb.put_cf(self.cf(CF_JMT_NODES), borsh_bytes(key), borsh_bytes(node));
        }
        for ((version, key_hash), value) in ws.tree.node_batch.values() {
            wb.put_cf(self.cf(CF_JMT_VALUES), value_key(key_hash, *version), borsh_bytes(value));
        }
    }

    /// Every account that ever registered a deposit address (live or expired), in key order.
    pub fn registered_accounts(&self) -> Result<Vec<AccountId>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_REGISTRATIONS), IteratorMode::Start) {
            let (k, _) = item.map_err(db_err("read registrations"))?;
            let bytes: [u8; 32] = k.as_ref().try_into().map_err(|_| StoreError::BadLength {
                what: "registration key",
                len: k.len(),
                want: 32,
            })?;
            out.push(AccountId(Hash32(bytes)));
        }
        Ok(out)
    }

    /// The encoded block at `height`.
    pub fn block(&self, height: Height) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(CF_BLOCKS), height.get().to_be_bytes()).map_err(db_err("read block"))
    }

    /// The encoded commit certificate of `height`.
    pub fn cert(&self, height: Height) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.cf(CF_CERTS), height.get().to_be_bytes()).map_err(db_err("read certificate"))
    }

    /// The height of the block with hash `hash`.
    pub fn height_of(&self, hash: &BlockId) -> Result<Option<Height>, StoreError> {
        self.db
            .get_cf(self.cf(CF_HASHES), hash.as_bytes())
            .map_err(db_err("read block index"))?
            .map(|b| decode_u64(&b, "block index").map(Height))
            .transpose()
    }

    /// Where a committed transaction is: its block height and its index in the block.
    pub fn tx_location(&self, txid: &TxId) -> Result<Option<(Height, u32)>, StoreError> {
        match self.db.get_cf(self.cf(CF_TXS), txid.as_bytes()).map_err(db_err("read tx index"))? {
            None => Ok(None),
            Some(b) if b.len() == 12 => {
                let h = decode_u64(&b[..8], "tx index height")?;
                let i = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
                Ok(Some((Height(h), i)))
            }
            Some(b) => Err(StoreError::BadLength { what: "tx index", len: b.len(), want: 12 }),
        }
    }

    /// Appends a consensus WAL entry and syncs it to disk before returning.
    pub fn wal_append(&self, entry: &[u8]) -> Result<u64, StoreError> {
        let next = self.wal_last_seq()?.map_or(0, |s| s + 1);
        self.db
            .put_cf_opt(self.cf(CF_WAL), next.to_be_bytes(), entry, &Self::synced())
            .map_err(db_err("wal append"))?;
        Ok(next)
    }

    fn wal_last_seq(&self) -> Result<Option<u64>, StoreError> {
        match self.db.iterator_cf(self.cf(CF_WAL), IteratorMode::End).next() {
            None => Ok(None),
            Some(Ok((k, _))) => decode_u64(&k, "wal sequence").map(Some),
            Some(Err(e)) => Err(StoreError::Db { op: "wal scan", source: e }),
        }
    }

    /// Every WAL entry in append order.
    pub fn wal_entries(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.db
            .iterator_cf(self.cf(CF_WAL), IteratorMode::Start)
            .map(|r| r.map(|(_, v)| v.to_vec()).map_err(db_err("wal read")))
            .collect()
    }

    /// The versions of peg-out batch `batch` this validator signed: (unsigned txid, inputs spent).
    pub fn signed_batch_versions(&self, batch: u64) -> Result<Vec<SignedVersion>, StoreError> {
        match self.db.get_cf(self.cf(CF_META), signed_key(batch)).map_err(db_err("read signed batches"))? {
            None => Ok(Vec::new()),
            Some(b) => borsh::from_slice(&b).map_err(|source| StoreError::Undecodable {
                what: "signed batch versions",
                height: None,
                source,
            }),
        }
    }

    /// Records, synced, that this validator signs `version` of `batch` (before the share leaves the node).
    pub fn record_signed_batch_version(&self, batch: u64, version: SignedVersion) -> Result<(), StoreError> {
        let mut all = self.signed_batch_versions(batch)?;
        if !all.contains(&version) {
            all.push(version);
        }
        self.db
            .put_cf_opt(self.cf(CF_META), signed_key(batch), borsh_bytes(&all), &Self::synced())
            .map_err(db_err("write signed batches"))
    }

    /// When (ms since the Unix epoch) an operator paused this validator's peg signing; `None`: not paused.
    pub fn signing_paused_since(&self) -> Result<Option<u64>, StoreError> {
        self.db
            .get_cf(self.cf(CF_META), META_SIGNING_PAUSED)
            .map_err(db_err("read signing pause"))?
            .map(|b| decode_u64(&b, "signing pause"))
            .transpose()
    }

    /// Records, synced, the operator's signing switch (`Some(ms)`: paused since then; `None`: resumed), so
    /// a restart (or a kill -9) never unpauses a validator silently.
    pub fn set_signing_paused_since(&self, since_ms: Option<u64>) -> Result<(), StoreError> {
        let cf = self.cf(CF_META);
        match since_ms {
            Some(ms) => self.db.put_cf_opt(cf, META_SIGNING_PAUSED, ms.to_be_bytes(), &Self::synced()),
            None => self.db.delete_cf_opt(cf, META_SIGNING_PAUSED, &Self::synced()),
        }
        .map_err(db_err("write signing pause"))
    }

    /// Keeps, synced, the block (`encoded`) with id `id` that a WAL entry about to be written names: our
    /// proposal, the value we locked on or hold as valid. After a restart the node can then propose it
    /// again; without it, a federation that crashed whole after locking on a block would wait forever for
    /// a body none of its members kept.
    pub fn wal_keep_block(&self, id: &BlockId, encoded: &[u8]) -> Result<(), StoreError> {
        self.db
            .put_cf_opt(self.cf(CF_WAL_BLOCKS), id.as_bytes(), encoded, &Self::synced())
            .map_err(db_err("wal keep block"))
    }

    /// The blocks kept with the WAL ([`Store::wal_keep_block`]).
    pub fn wal_blocks(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.db
            .iterator_cf(self.cf(CF_WAL_BLOCKS), IteratorMode::Start)
            .map(|r| r.map(|(_, v)| v.to_vec()).map_err(db_err("wal blocks read")))
            .collect()
    }

    /// Deletes every WAL entry and the blocks kept with them (after the height they belong to is committed).
    pub fn wal_clear(&self) -> Result<(), StoreError> {
        let mut wb = WriteBatch::default();
        for cf in [CF_WAL, CF_WAL_BLOCKS] {
            for r in self.db.iterator_cf(self.cf(cf), IteratorMode::Start) {
                let (k, _) = r.map_err(db_err("wal scan"))?;
                wb.delete_cf(self.cf(cf), k);
            }
        }
        self.db.write_opt(wb, &Self::synced()).map_err(db_err("wal clear"))
    }
}

/// One peg-out batch version a validator signed: its unsigned txid and the outputs it spends (stored as the
/// borsh pair `(txid bytes, inputs)` it was before the txid had a type).
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct SignedVersion {
    /// Its unsigned txid.
    #[borsh(
        serialize_with = "ledger::codec::btc_hash::serialize",
        deserialize_with = "ledger::codec::btc_hash::deserialize"
    )]
    pub txid: bitcoin::Txid,
    /// The inputs it spends.
    pub inputs: Vec<ledger::BtcOutPoint>,
}

fn signed_key(batch: u64) -> Vec<u8> {
    let mut k = b"signed-batch/".to_vec();
    k.extend_from_slice(&batch.to_be_bytes());
    k
}

fn borsh_bytes<T: borsh::BorshSerialize>(v: &T) -> Vec<u8> {
    borsh::to_vec(v).expect("borsh serialization into a Vec cannot fail")
}

fn decode_u64(b: &[u8], what: &'static str) -> Result<u64, StoreError> {
    let arr: [u8; 8] = b.try_into().map_err(|_| StoreError::BadLength { what, len: b.len(), want: 8 })?;
    Ok(u64::from_be_bytes(arr))
}

fn value_key(key_hash: &KeyHash, version: Version) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&key_hash.0);
    k[32..].copy_from_slice(&version.to_be_bytes());
    k
}

impl TreeReader for Store {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        match self.db.get_cf(self.cf(CF_JMT_NODES), borsh_bytes(node_key))? {
            None => Ok(None),
            Some(b) => Ok(Some(borsh::from_slice(&b)?)),
        }
    }

    fn get_value_option(&self, max_version: Version, key_hash: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
        let generation = match self.latest.get(max_version, &key_hash) {
            Lookup::Known(value) => return Ok(value),
            Lookup::Miss { generation } => generation,
        };
        let seek = value_key(&key_hash, max_version);
        let mut it = self.db.iterator_cf(self.cf(CF_JMT_VALUES), IteratorMode::From(&seek, Direction::Reverse));
        match it.next() {
            Some(Ok((k, v))) if k.len() == 40 && k[..32] == key_hash.0 => {
                let value: Option<OwnedValue> = borsh::from_slice(&v)?;
                let version = u64::from_be_bytes(k[32..].try_into()?);
                self.latest.fill(generation, max_version, key_hash, (version, value.clone()));
                Ok(value)
            }
            Some(Err(e)) => Err(e.into()),
            _ => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only jmt's restore and migration paths call this; the node uses neither.
        anyhow::bail!("get_rightmost_leaf is not supported by the node store (no jmt restore/migration)")
    }
}

const HISTORY_KEY_LEN: usize = 32 + 8 + 4 + 4;

/// `account ‖ height ‖ index ‖ number`, big-endian: an account's entries are contiguous and in block order.
fn history_key(account: &AccountId, height: Height, index: u32, number: u32) -> [u8; HISTORY_KEY_LEN] {
    let mut k = [0u8; HISTORY_KEY_LEN];
    k[..32].copy_from_slice(account.0.as_bytes());
    k[32..40].copy_from_slice(&height.get().to_be_bytes());
    k[40..44].copy_from_slice(&index.to_be_bytes());
    k[44..].copy_from_slice(&number.to_be_bytes());
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered_key(i: u64) -> [u8; 32] {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&i.to_be_bytes());
        key[8] = 0xAA;
        key
    }

    #[test]
    fn latest_values_answer_only_for_versions_they_are_sure_of() {
        let (k, k2) = (KeyHash([1; 32]), KeyHash([2; 32]));
        let cache = LatestValues::default();
        let known = |max: Version, key: &KeyHash| match cache.get(max, key) {
            Lookup::Known(v) => Some(v),
            Lookup::Miss { .. } => None,
        };
        let generation = |max: Version, key: &KeyHash| match cache.get(max, key) {
            Lookup::Known(_) => panic!("expected a miss"),
            Lookup::Miss { generation } => generation,
        };
        // Nothing is known, and nothing is filled, before the first recorded commit.
        let g = generation(9, &k);
        cache.fill(g, 9, k, (9, Some(b"a".to_vec())));
        assert_eq!(known(9, &k), None);
        cache.record(5, [(5, &k, &Some(b"a".to_vec()))].into_iter());
        assert_eq!(known(5, &k), Some(Some(b"a".to_vec())));
        assert_eq!(known(4, &k), None, "the entry is newer than the read");
        assert_eq!(known(6, &k), None, "above the last recorded commit: maybe not written yet");
        // A read below the newest commit may have missed a newer version: not filled.
        let g = generation(4, &k2);
        cache.fill(g, 4, k2, (3, Some(b"b".to_vec())));
        assert_eq!(known(5, &k2), None);
        let g = generation(5, &k2);
        cache.fill(g, 5, k2, (3, Some(b"b".to_vec())));
        assert_eq!(known(5, &k2), Some(Some(b"b".to_vec())));
        assert_eq!(known(3, &k2), Some(Some(b"b".to_vec())));
        assert_eq!(known(2, &k2), None);
        // A commit replaces; a late fill from an older read (its miss was of generation `g`) does not undo
        // it; a deletion is known.
        cache.record(6, [(6, &k2, &None)].into_iter());
        cache.fill(g, 6, k2, (3, Some(b"b".to_vec())));
        assert_eq!(known(6, &k2), Some(None));
        // A read that raced a commit is refused even when the commit's entry is gone again (a clear), and
        // even when it read at the version that commit recorded.
        let k3 = KeyHash([3; 32]);
        let g = generation(7, &k3);
        cache.record(7, [(7, &k3, &Some(b"new".to_vec()))].into_iter());
        cache.lock().values.clear();
        cache.fill(g, 7, k3, (2, Some(b"old".to_vec())));
        assert_eq!(known(7, &k3), None);
        // A commit that writes nothing still moves `newest`: what is known at 7 is then known at 8.
        let g = generation(7, &k);
        cache.fill(g, 7, k, (5, Some(b"a".to_vec())));
        assert_eq!(known(7, &k), Some(Some(b"a".to_vec())));
        assert_eq!(known(8, &k), None);
        cache.record(8, std::iter::empty());
        assert_eq!(known(8, &k), Some(Some(b"a".to_vec())));
        // A commit larger than the cache: cleared, then filled with what fits, none of it stale.
        let many: Vec<(Version, KeyHash, Option<OwnedValue>)> =
            (0..LATEST_VALUES_CAP as u64 + 10).map(|i| (9, KeyHash(numbered_key(i)), Some(vec![1]))).collect();
        cache.record(9, many.iter().map(|(v, key, value)| (*v, key, value)));
        assert_eq!(known(9, &k), None, "cleared: the old entry is gone, not kept");
        assert_eq!(cache.lock().values.len(), LATEST_VALUES_CAP);
    }

    #[test]
    fn lock_detection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = Store::open(dir.path()).expect("first open");
        assert!(matches!(Store::open(dir.path()), Err(StoreError::Locked(_))), "a held lock is Locked");
        // Another IO failure is not a lock: a database path under a regular file.
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"x").expect("write");
        match Store::open(&file.join("db")) {
            Err(StoreError::Open { source, .. }) => assert!(!is_lock_held(&source), "{source}"),
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("opened a database under a file"),
        }
    }
}
