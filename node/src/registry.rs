//! The registry of watched deposit scripts and the claims: which scripts the Bitcoin follower scans for
//! (every registered recipient's deposit script in each epoch whose deposits a block must still mint), and a
//! user's claim of a deposit the scans missed.
//!
//! Why its own module: the follower needs these and nothing else of the peg-in rules, and the rules need
//! the follower's snapshot; with the registry below both, data flows one way (registry -> follower ->
//! peg-in rules).

use ledger::{Block, BtcOutPoint, Chain, Tx, UserTxKind};
use primitives::{AccountId, Height};

/// The deposit descriptor bound to `recipient` in `wallet` on this chain (its script, address and text follow).
pub fn deposit_descriptor(
    chain: &Chain,
    wallet: &peg::Federation,
    recipient: &AccountId,
) -> Result<peg::Descriptor, peg::PegError> {
    wallet.deposit_descriptor(*chain.genesis_hash().as_bytes(), recipient.0 .0)
}

/// The wallet of every epoch, and of those whose deposits are watched at `height`.
pub fn epoch_wallets(
    chain: &Chain,
    fs: &ledger::FederationState,
    height: Height,
) -> (Vec<(u32, peg::Federation)>, Vec<u32>) {
    let all = fs
        .epochs
        .iter()
        .filter_map(|e| match chain.wallet(e) {
            Ok(w) => Some((e.epoch, w)),
            Err(err) => {
                // Cannot happen: a proposal's wallet is built before it is accepted.
                tracing::error!(epoch = e.epoch, error = %err, "cannot build an epoch's wallet");
                None
            }
        })
        .collect();
    let watched = fs.watched_at(height, chain.params().deposit_window).map(|e| e.epoch).collect();
    (all, watched)
}

/// Accounts whose deposit address `block` registers, in block order.
pub fn registrations_in(block: &Block) -> Vec<AccountId> {
    block
        .txs
        .iter()
        .filter_map(|t| match t {
            Tx::User(s) if s.tx.kind == UserTxKind::RegisterDeposit => Some(s.tx.sender()),
            _ => None,
        })
        .collect()
}

/// Most claims a node keeps pending at once.
pub const MAX_PENDING_CLAIMS: usize = 1024;

/// Blocks a claim stays pending without being minted before it is dropped.
pub const CLAIM_TTL_BLOCKS: u64 = 2000;

/// `claimpegin`: mint the deposit at `outpoint` in BTC block `btc_block` to `recipient`, for deposits whose
/// registration was missed or had expired. Anyone may claim (the mint can only go to the recipient the
/// script is bound to); validators check it against their own bitcoind exactly as a registered deposit.
#[derive(Clone, Debug, PartialEq, Eq, Hash, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct PegClaim {
    /// The deposit output.
    pub outpoint: BtcOutPoint,
    /// The account the deposit address was derived for.
    pub recipient: AccountId,
    /// The BTC block holding the deposit.
    #[borsh(
        serialize_with = "ledger::codec::btc_hash::serialize",
        deserialize_with = "ledger::codec::btc_hash::deserialize"
    )]
    pub btc_block: bitcoin::BlockHash,
}

/// Which scripts the follower watches: each registered account's deposit script in every watched epoch's
/// wallet, and those wallets' plain scripts. Keeps every epoch's wallet too, for claims.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    /// Bumped by every change to the watched scripts: a scan made with an older version may have missed
    /// deposits.
    pub version: u64,
    /// The watched scripts.
    pub maps: peg::ScriptMaps,
    /// Every epoch's wallet (a claim may name a deposit to any of them).
    pub wallets: Vec<(u32, peg::Federation)>,
    /// The epochs watched.
    watched: Vec<u32>,
    /// Every registered account.
    accounts: std::collections::BTreeSet<AccountId>,
}

impl Registry {
    /// The registry for the state `fs` at `height`, watching `accounts`.
    pub fn new(chain: &Chain, fs: &ledger::FederationState, height: Height, accounts: &[AccountId]) -> Self {
        let mut r = Registry::default();
        r.set_epochs(chain, fs, height);
        r.add(chain, accounts);
        r
    }

    /// Whether [`Registry::set_epochs`] would change anything (cheap: builds no wallet).
    pub fn epochs_changed(&self, chain: &Chain, fs: &ledger::FederationState, height: Height) -> bool {
        let watched: Vec<u32> = fs.watched_at(height, chain.params().deposit_window).map(|e| e.epoch).collect();
        watched != self.watched || fs.epochs.len() != self.wallets.len()
    }

    /// Follows a federation change or the end of a deposit window: `true` when the watched scripts changed.
    pub fn set_epochs(&mut self, chain: &Chain, fs: &ledger::FederationState, height: Height) -> bool {
        if !self.epochs_changed(chain, fs, height) {
            return false;
        }
        let (wallets, watched) = epoch_wallets(chain, fs, height);
        self.wallets = wallets;
        self.watched = watched;
        self.maps = peg::ScriptMaps::default();
        for (epoch, w) in self.watched_wallets() {
            self.maps.plain.insert(w.script_pubkey(), epoch);
        }
        let accounts: Vec<AccountId> = std::mem::take(&mut self.accounts).into_iter().collect();
        self.add(chain, &accounts);
        self.version += 1;
        true
    }

    fn watched_wallets(&self) -> Vec<(u32, peg::Federation)> {
        self.wallets.iter().filter(|(e, _)| self.watched.contains(e)).cloned().collect()
    }

    /// Adds the deposit scripts of each account not yet known; returns how many scripts were new.
    pub fn add(&mut self, chain: &Chain, accounts: &[AccountId]) -> usize {
        let mut added = 0;
        let wallets = self.watched_wallets();
        for account in accounts {
            self.accounts.insert(*account);
            for (epoch, w) in &wallets {
                match deposit_descriptor(chain, w, account) {
                    Ok(d) => {
                        if self.maps.deposits.insert(d.script_pubkey(), (account.0 .0, *epoch)).is_none() {
                            added += 1;
                        }
                    }
                    // Cannot happen for a genesis that passed validation; never worth stopping the node.
                    Err(e) => tracing::error!(%account, error = %e, "cannot derive a deposit script"),
                }
            }
        }
        self.version += added as u64;
        added
    }

    /// The epoch whose deposit script for `recipient` is `script`, among every epoch's wallet.
    pub fn claim_epoch(&self, chain: &Chain, recipient: &AccountId, script: &bitcoin::Script) -> Option<u32> {
        self.wallets.iter().find_map(|(epoch, w)| {
            deposit_descriptor(chain, w, recipient).ok().filter(|d| d.script_pubkey() == *script).map(|_| *epoch)
        })
    }
}

impl peg::DepositLookup for Registry {
    fn deposit_target(&self, script_pubkey: &bitcoin::Script) -> Option<([u8; 32], u32)> {
        self.maps.deposit_target(script_pubkey)
    }

    fn federation_epoch(&self, script_pubkey: &bitcoin::Script) -> Option<u32> {
        self.maps.federation_epoch(script_pubkey)
    }
}
