//! `--verify`: every answer the command prints is checked against the chain itself, not the node's word.
//!
//! The root of trust is the genesis file (or a checkpoint the user trusts). The CLI follows the certified
//! headers from there (`getheaders`, checked by the `light` crate: chain, links, and each commit
//! certificate against the validator set of its height, federation changes included) up to the node's tip
//! first, then asks for the answer with its proof and follows the few headers made meanwhile, and checks
//! the answer's state entries against the state root of the certified header at the answer's height.
//! Freshness: a node can still answer with an old state that verifies. The proved block must be at most
//! `--max-age` seconds old by this machine's clock (the rule that binds a lying node: block times are
//! certified), and at most `--max-lag` blocks behind the newest header the node itself serves (which only
//! catches a node that is careless about it). Each failure is an error naming what failed.

use anyhow::{bail, Context, Result};
use jsonrpsee::http_client::HttpClient;
use light::LightClient;
use primitives::{BlockId, Height};
use rpc::types::VerifyError;
use rpc::SidechainApiClient;
use serde::Serialize;
use std::path::PathBuf;

/// The flags of `--verify`.
#[derive(clap::Args, Clone, Debug)]
pub struct VerifyArgs {
    /// Check the answer against certified headers and state proofs instead of believing the node (for
    /// getaccount, getbalance, pegstatus, pegoutstatus). Needs --genesis.
    #[arg(long, global = true, requires = "genesis")]
    pub verify: bool,
    /// The chain's genesis file, the root of trust of --verify.
    #[arg(long, global = true, env = "SIDECHAIN_GENESIS")]
    pub genesis: Option<PathBuf>,
    /// Start from a block you trust instead of the genesis: HEIGHT:BLOCKHASH.
    #[arg(long, global = true, value_parser = parse_checkpoint)]
    pub checkpoint: Option<(Height, BlockId)>,
    /// Where --verify keeps the last header it checked (height and hash), to start from there next time
    /// instead of the genesis: a checkpoint this CLI verified itself. Not used by `history`, whose entries
    /// may be older.
    #[arg(long, global = true, env = "SIDECHAIN_LIGHT_TIP")]
    pub light_tip: Option<PathBuf>,
    /// Refuse a proved state whose block is older than this many seconds by this machine's clock.
    #[arg(long, global = true, default_value_t = 60)]
    pub max_age: u64,
    /// Refuse a proved state more than this many blocks behind the newest header the node serves (a lying
    /// node can hide newer headers: --max-age is the rule that binds it).
    #[arg(long, global = true, default_value_t = 10)]
    pub max_lag: u64,
}

/// A checkpoint argument that is not `HEIGHT:BLOCKHASH`.
#[derive(Debug, thiserror::Error)]
#[error("expected HEIGHT:BLOCKHASH (a block height, a colon, 64 hex digits), got {0:?}")]
pub struct BadCheckpoint(String);

fn parse_checkpoint(s: &str) -> Result<(Height, BlockId), BadCheckpoint> {
    let bad = || BadCheckpoint(s.to_string());
    let (h, hash) = s.split_once(':').ok_or_else(bad)?;
    Ok((Height(h.parse().map_err(|_| bad())?), BlockId(hash.parse().map_err(|_| bad())?)))
}

/// What `--verify` adds to an answer: where the proof stands.
#[derive(Clone, Debug, Serialize)]
pub struct Verified {
    /// The height whose state was proved.
    pub height: Height,
    /// The certified block at that height.
    pub block: BlockId,
    /// How old that block is by this machine's clock, in seconds.
    pub age_secs: u64,
    /// The newest header followed (the node's tip as it served it).
    pub followed_to: Height,
    /// Where the trust started: `genesis`, `checkpoint` or `saved tip` (`--light-tip`).
    pub trusted_from: &'static str,
}

impl Verified {
    /// One line for people.
    pub fn line(&self) -> String {
        format!(
            "verified: state at height {} (block {}, {} s old) under certified headers followed from the {} to \
             height {}",
            self.height, self.block, self.age_secs, self.trusted_from, self.followed_to
        )
    }
}

/// The last header a `--verify` run checked, as `--light-tip` keeps it.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
struct SavedTip {
    genesis_hash: primitives::GenesisHash,
    height: Height,
    hash: BlockId,
}

/// The light client of one command.
pub struct Verifier {
    light: LightClient,
    args: VerifyArgs,
    /// Where the trust starts: `genesis`, `checkpoint` or `saved tip`.
    trusted_from: &'static str,
    /// Whether to keep the tip in `--light-tip` when done.
    save_tip: bool,
}

impl Verifier {
    /// A verifier when `--verify` is on: the genesis file read, and the checkpoint (if any) checked; without
    /// one it starts at the tip `--light-tip` kept, if any.
    pub async fn start(args: &VerifyArgs, rpc: &HttpClient) -> Result<Option<Verifier>> {
        Self::start_with(args, rpc, true).await
    }

    /// As [`Verifier::start`], never from the saved tip (for answers about older blocks).
    pub async fn start_from_genesis(args: &VerifyArgs, rpc: &HttpClient) -> Result<Option<Verifier>> {
        Self::start_with(args, rpc, false).await
    }

    async fn start_with(args: &VerifyArgs, rpc: &HttpClient, from_saved: bool) -> Result<Option<Verifier>> {
        if !args.verify {
            return Ok(None);
        }
        let path = args.genesis.as_ref().context("--verify needs --genesis FILE")?;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the genesis {}", path.display()))?;
        let genesis: ledger::Genesis =
            serde_json::from_str(&text).with_context(|| format!("parsing the genesis {}", path.display()))?;
        let chain = ledger::Chain::new(genesis).with_context(|| format!("the genesis {}", path.display()))?;
        let saved = match (&args.light_tip, from_saved) {
            (Some(path), true) if path.exists() => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                let tip: SavedTip =
                    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
                (tip.genesis_hash == *chain.genesis_hash()).then_some((tip.height, tip.hash))
            }
            _ => None,
        };
        let (start, trusted_from) = match (args.checkpoint, saved) {
            (Some(c), _) => (Some(c), "checkpoint"),
            (None, Some(t)) => (Some(t), "saved tip"),
            (None, None) => (None, "genesis"),
        };
        let light = match start {
            None => LightClient::from_genesis(&chain),
            Some((height, hash)) => {
                let range = rpc.get_headers(height, Some(1)).await.map_err(crate::rpc_err)?;
                if range.headers.is_empty() {
                    bail!("the {trusted_from} is at height {height}, which this node does not have yet (behind?)");
                }
                let range = range.decode().with_context(|| format!("the {trusted_from} header"))?;
                LightClient::from_checkpoint(&chain, height, hash, range)
                    .with_context(|| format!("the {trusted_from}"))?
            }
        };
        let mut verifier = Verifier { light, args: args.clone(), trusted_from, save_tip: from_saved };
        // Up to the tip before the answer is asked for, so that following after it is short.
        verifier.follow(rpc, Height(0)).await?;
        Ok(Some(verifier))
    }

    /// Follows the node's headers until it serves no more (at least to `height`).
    async fn follow(&mut self, rpc: &HttpClient, height: Height) -> Result<()> {
        loop {
            let from = self.light.tip().next();
            let range = rpc.get_headers(from, Some(self.light.max_range())).await.map_err(crate::rpc_err)?;
            if range.headers.is_empty() {
                if self.light.tip() < height {
                    bail!("the node proves a state at height {height} but serves headers only to {}", self.light.tip());
                }
                return Ok(());
            }
            let range = range.decode().with_context(|| format!("the headers from height {from}"))?;
            self.light.extend(&range).with_context(|| format!("the headers from height {from}"))?;
        }
    }

    /// Follows the headers, runs `check` (an answer's `verify` against the light client) and applies the
    /// freshness rules to the proved height.
    pub async fn check<T>(
        &mut self,
        rpc: &HttpClient,
        height: Option<Height>,
        check: impl FnOnce(&LightClient) -> Result<T, VerifyError>,
    ) -> Result<(T, Verified)> {
        let height = height.context("the node sent no proof (it ignored prove = true)")?;
        self.follow(rpc, height).await?;
        let value = check(&self.light).context("the node's answer does not match the certified chain")?;
        let header = self.light.header(height).context("no certified header at the proved height")?;
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let age_secs = now_ms.saturating_sub(header.time_ms) / 1000;
        if age_secs > self.args.max_age {
            bail!(
                "stale: the proved state is from height {height}, whose block is {age_secs} s old (--max-age {})",
                self.args.max_age
            );
        }
        let lag = self.light.tip().get().saturating_sub(height.get());
        if lag > self.args.max_lag {
            bail!(
                "stale: the proved state is from height {height}, {lag} blocks behind the node's own tip {} \
                 (--max-lag {})",
                self.light.tip(),
                self.args.max_lag
            );
        }
        let verified = Verified {
            height,
            block: header.hash(),
            age_secs,
            followed_to: self.light.tip(),
            trusted_from: self.trusted_from,
        };
        self.save_tip()?;
        Ok((value, verified))
    }

    /// Keeps the tip in `--light-tip` (written whole, then renamed over the old one).
    fn save_tip(&self) -> Result<()> {
        let (Some(path), true) = (&self.args.light_tip, self.save_tip) else { return Ok(()) };
        let Some(header) = self.light.header(self.light.tip()) else { return Ok(()) };
        let tip = SavedTip { genesis_hash: *self.light.genesis_hash(), height: header.height, hash: header.hash() };
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&tip)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))?;
        Ok(())
    }

    /// Follows the headers past the newest entry and checks every entry of `account`'s history against
    /// its block; returns, per entry, the fields no proof covered (`["unverifiable"]` for a transaction
    /// whose bytes read as two kinds: a user can craft one, so it must not make the rest fail). Entries must
    /// come newest first without repeats. No freshness rule: entries are facts of the past (and whether the
    /// newest are missing, no proof can say: the index is the node's).
    pub async fn check_history(
        &mut self,
        rpc: &HttpClient,
        account: &primitives::AccountId,
        entries: &[rpc::types::HistoryEntryInfo],
    ) -> Result<(Height, Vec<Vec<&'static str>>)> {
        let newest = entries.iter().map(|e| e.height).max().unwrap_or(Height(0));
        self.follow(rpc, newest).await?;
        let mut unproved = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let at = || format!("history entry at height {} #{} (tx {})", e.height, e.index, e.txid);
            if let Some(prev) = i.checked_sub(1).map(|p| &entries[p]) {
                let bare = |x: &rpc::types::HistoryEntryInfo| {
                    let mut x = x.clone();
                    x.proof = None;
                    x
                };
                if (e.height, e.index) > (prev.height, prev.index) || bare(e) == bare(prev) {
                    bail!("{}: the node lists entries out of order or twice", at());
                }
            }
            match e.verify(&self.light, account) {
                Ok(fields) => unproved.push(fields),
                Err(VerifyError::Light(light::LightError::AmbiguousTx { .. })) => unproved.push(vec!["unverifiable"]),
                Err(err) => return Err(anyhow::Error::new(err).context(at())),
            }
        }
        Ok((self.light.tip(), unproved))
    }
}
