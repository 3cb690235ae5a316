//! Transaction checks and block execution: the state transition function every node re-runs.
//!
//! Invariants owned here:
//! - execution reads only the previous state version and the block (no clock, no bitcoind, no IO);
//! - a block is all or nothing: one invalid transaction makes the whole block invalid (validators
//!   prevote nil), never a partial application;
//! - value is conserved: every debit has an equal credit (the recipient, or the fee pool for fees), and
//!   arithmetic is checked, so an overflow makes a transaction invalid instead of panicking.

use crate::block::{Block, BlockHeader, BtcAnchor};
use crate::genesis::{Chain, GenesisValidator};
use crate::halt::{peg_halt, PegHalt};
use crate::state::{
    build_write_set, fee_pool_id, Account, ChainMeta, Snapshot, StateError, StateKey, StateReader, WriteSet,
};
use crate::tx::{tx_root, BtcOutPoint, EvidenceRecord, EvidenceTx, SignedUserTx, Tx, UserTx, UserTxKind};
use bitcoin::Amount;
use jmt::storage::TreeReader;
use primitives::{
    canonical_bytes, verify_batch, AccountId, BtcHeight, Hash32, Height, PublicKey, Round, Signature, SignatureError,
    ValidatorIndex,
};
use std::collections::BTreeMap;

impl TxError {
    /// An epoch's wallet (or a figure derived from it) could not be had.
    pub fn wallet(e: impl Into<WalletError>) -> Self {
        TxError::Wallet(Box::new(e.into()))
    }
}

impl From<crate::federation::ProposalError> for TxError {
    fn from(e: crate::federation::ProposalError) -> Self {
        TxError::BadProposal(Box::new(e))
    }
}

/// Why an epoch's wallet, or a figure derived from it, could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// The wallet does not build from the epoch's keys.
    #[error(transparent)]
    Build(#[from] crate::genesis::GenesisError),
    /// Its spending cost could not be worked out.
    #[error(transparent)]
    Peg(#[from] peg::PegError),
    /// Its batch sizes could not be worked out.
    #[error(transparent)]
    Batch(#[from] peg::BatchError),
}

/// Why a user transaction is not valid against a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The signature does not verify (wrong key, wrong chain, altered transaction).
    #[error("bad signature: {0}")]
    BadSignature(#[from] SignatureError),
    /// A transfer of nothing.
    #[error("transfer amount must be positive")]
    ZeroAmount,
    /// Fee under the chain's minimum.
    #[error("fee {fee} is below the minimum {min}")]
    FeeTooLow {
        /// Offered fee.
        fee: Amount,
        /// `Params::min_fee`.
        min: Amount,
    },
    /// Nonce is not the account's next nonce (too low: replay; too high: gap).
    #[error("account {account}: expected nonce {expected}, got {got}")]
    BadNonce {
        /// Sender.
        account: AccountId,
        /// The account's nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// `amount + fee` does not fit in an amount.
    #[error("amount {amount} plus fee {fee} overflows")]
    AmountOverflow {
        /// Transfer amount.
        amount: Amount,
        /// Fee.
        fee: Amount,
    },
    /// The sender cannot pay `amount + fee`.
    #[error("account {account}: balance {balance} is less than the {needed} needed")]
    InsufficientBalance {
        /// Sender.
        account: AccountId,
        /// Its balance.
        balance: Amount,
        /// `amount + fee`.
        needed: Amount,
    },
    /// A credit would take a balance above 21 million BTC.
    #[error("account {account}: crediting {amount} would exceed 21 million btc")]
    BalanceOverflow {
        /// Account credited.
        account: AccountId,
        /// Credit.
        amount: Amount,
    },
    /// The sender's nonce is at `u64::MAX`.
    #[error("account {0}: nonce exhausted")]
    NonceExhausted(AccountId),
    /// Evidence against an index outside the validator set.
    #[error("evidence names validator {offender}, but there are {validators} validators")]
    UnknownOffender {
        /// The named offender.
        offender: ValidatorIndex,
        /// Size of the set.
        validators: usize,
    },
    /// The same equivocation is already recorded.
    #[error("evidence against validator {offender} at height {height} round {round} is already recorded")]
    EvidenceAlreadyRecorded {
        /// The offender.
        offender: ValidatorIndex,
        /// Height.
        height: Height,
        /// Round.
        round: Round,
    },
    /// A deposit registration refreshed while more than half its life is left.
    #[error(
        "account {account}: its deposit address is registered until height {expires_at}; refresh it after half of that"
    )]
    RegistrationStillLive {
        /// The account.
        account: AccountId,
        /// Last live height.
        expires_at: Height,
    },
    /// A mint of a deposit at or below the genesis anchor (before the federation watched).
    #[error("deposit in BTC block {btc_height} is at or below the genesis anchor {genesis}")]
    MintBeforeGenesisAnchor {
        /// The deposit's BTC height.
        btc_height: BtcHeight,
        /// The genesis anchor's height.
        genesis: BtcHeight,
    },
    /// A mint of a deposit the anchor does not cover yet.
    #[error("deposit in BTC block {btc_height} is above the anchor {anchor}")]
    MintAboveAnchor {
        /// The deposit's BTC height.
        btc_height: BtcHeight,
        /// The anchor's height.
        anchor: BtcHeight,
    },
    /// An early item (of the BTC block right above the anchor) naming another block than the earlier
    /// early items of that height (see [`mod@crate::peg_cursor`]).
    #[error("early peg item of BTC block {} at height {}, but the early items so far are of block {}", btc_block.hash, btc_block.height, cursor.hash)]
    EarlyItemOffCursor {
        /// The block the item names.
        btc_block: BtcAnchor,
        /// The block of the earlier early items.
        cursor: BtcAnchor,
    },
    /// A mint naming a block at the anchor's height that is not the anchored block.
    #[error("deposit block {btc_block} is not the anchored block {anchor}")]
    MintNotInAnchoredChain {
        /// The block named.
        btc_block: Hash32,
        /// The anchor.
        anchor: Hash32,
    },
    /// A mint of zero or more than 21 million BTC.
    #[error("deposit amount {0} is not a valid bitcoin amount")]
    BadMintAmount(Amount),
    /// The outpoint was minted (or recorded) before: exactly once.
    #[error("deposit {}:{} was already recorded at height {at}", outpoint.txid, outpoint.vout)]
    AlreadyMinted {
        /// The deposit.
        outpoint: BtcOutPoint,
        /// Where it was recorded.
        at: Height,
    },
    /// A peg total would exceed 21 million BTC.
    #[error("peg totals would exceed 21 million btc")]
    PegTotalOverflow,
    /// A settlement of a batch that is not in flight, or of another version than its current one.
    #[error("peg-out batch {batch} is not in flight with that version")]
    NotInFlight {
        /// The batch.
        batch: u64,
    },
    /// A settlement in a BTC block the anchor does not cover.
    #[error("batch confirmation in BTC block {btc_height} is above the anchor {anchor}")]
    SettleAboveAnchor {
        /// Its BTC height.
        btc_height: BtcHeight,
        /// The anchor.
        anchor: BtcHeight,
    },
    /// A mint of an output of a peg-out batch still in flight (its settlement must come first, in the same
    /// block or earlier).
    #[error("that output belongs to peg-out batch {batch}, which is not settled yet")]
    MintOfBatchOutput {
        /// The batch.
        batch: u64,
    },
    /// Peg-outs are not enabled on this chain yet.
    #[error("peg-outs are not enabled on this chain (params.pegout_enabled is false)")]
    PegOutDisabled,
    /// A `Federation` mint must credit the fee pool (nobody else can be bound to the plain script).
    #[error("a mint of an output to the plain federation script must credit the fee pool, not {recipient}")]
    FederationMintRecipient {
        /// The recipient named.
        recipient: AccountId,
    },
    /// A peg-out to the federation's own plain script (of any epoch): the BTC would come back to the
    /// federation bound to nobody.
    #[error(
        "that payout script is the federation wallet of epoch {epoch}; to move coins on the sidechain, transfer them"
    )]
    PayoutToFederation {
        /// The epoch whose wallet it is.
        epoch: u32,
    },
    /// A payout script Bitcoin would not relay, or one the federation does not pay.
    #[error("unsupported payout script {0}: use a P2PKH, P2SH, P2WPKH, P2WSH or P2TR address")]
    UnsupportedPayoutScript(String),
    /// A payout below the minimum or the dust limit.
    #[error("peg-out of {amount} is below the minimum {min}")]
    PegOutBelowMinimum {
        /// Requested.
        amount: Amount,
        /// The larger of `pegout_min_amount` and the script's dust limit.
        min: Amount,
    },
    /// A mint while peg operations are halted.
    #[error("peg operations are halted (a Bitcoin reorg removed the anchor); nothing is minted until ResumePeg")]
    PegHalted,
    /// A validator transaction from outside the validator set.
    #[error("validator {validator} does not exist ({validators} validators)")]
    UnknownValidator {
        /// The named signer.
        validator: ValidatorIndex,
        /// Size of the set.
        validators: usize,
    },
    /// A validator transaction made for another height.
    #[error("validator transaction for height {tx_height} in block {block}")]
    ValidatorTxWrongHeight {
        /// Its height.
        tx_height: Height,
        /// The block's.
        block: Height,
    },
    /// A reorg report about another anchor than the one in force.
    #[error("reorg report about anchor {} but the anchor in force is {}", reported.height, in_force.height)]
    ReportNotForAnchorInForce {
        /// What it reports.
        reported: BtcAnchor,
        /// The anchor in force.
        in_force: BtcAnchor,
    },
    /// The validator already reported (or voted to resume).
    #[error("validator {validator} already said so")]
    AlreadyVoted {
        /// The validator.
        validator: ValidatorIndex,
    },
    /// Signatures for a batch that does not exist.
    #[error("no peg-out batch {0}")]
    UnknownBatch(u64),
    /// Signatures for a version of a batch that is not its current one.
    #[error("signatures for another version of peg-out batch {batch} than its current one")]
    NotCurrentBatchVersion {
        /// The batch.
        batch: u64,
    },
    /// The batch already has k signatures.
    #[error("peg-out batch {0} is already signed by a threshold of validators")]
    BatchAlreadySigned(u64),
    /// A signature share that does not verify.
    #[error("bad signature share for peg-out batch {batch}: {reason}")]
    BadBatchShare {
        /// The batch.
        batch: u64,
        /// What was wrong.
        reason: String,
    },
    /// A resume vote while the peg runs.
    #[error("the peg is not halted")]
    PegNotHalted,
    /// A mint of an output the federation already holds (a settled batch's change, or a recorded deposit).
    #[error("output {}:{} is already held by the federation", outpoint.txid, outpoint.vout)]
    AlreadyHeld {
        /// The output.
        outpoint: BtcOutPoint,
    },
    /// A fee-rate vote of zero or above the maximum.
    #[error("fee-rate vote of {sat_per_vb} sat/vB: must be 1 to {max}")]
    BadFeeRateVote {
        /// The vote.
        sat_per_vb: u64,
        /// `fee_rate::MAX_FEE_RATE`.
        max: u64,
    },
    /// A federation change while another waits for its height.
    #[error("a federation change is already pending (takes effect at height {activation_height})")]
    ChangeAlreadyPending {
        /// When the pending one takes effect.
        activation_height: Height,
    },
    /// A federation change whose height is too close (or past).
    #[error("federation change at height {activation_height} is too soon: the earliest is {earliest}")]
    ActivationTooSoon {
        /// Proposed.
        activation_height: Height,
        /// This block plus `federation_change_min_lead`.
        earliest: Height,
    },
    /// The proposed set is not acceptable.
    #[error("bad federation proposal: {0}")]
    BadProposal(Box<crate::federation::ProposalError>),
    /// An approval whose signature does not verify.
    #[error("approval by validator {validator} is invalid: {reason}")]
    BadApproval {
        /// Who it names.
        validator: ValidatorIndex,
        /// Why.
        reason: String,
    },
    /// Approvals of two thirds of the power or less.
    #[error("federation change approved by power {power} of {total}: needs more than two thirds (2f+1)")]
    NotEnoughApprovals {
        /// Power of the valid approvals.
        power: u64,
        /// Total power of the set in force.
        total: u64,
    },
    /// An epoch's wallet does not build (a guard: proposals are checked when accepted).
    #[error("federation wallet: {0}")]
    Wallet(Box<WalletError>),
    /// Only signature shares and federation changes travel through the federation pool.
    #[error("not a signature share or a federation change")]
    NotAPoolTx,
    /// A federation epoch that does not exist.
    #[error("no federation epoch {0}")]
    UnknownEpoch(u32),
    /// A share by someone who is not a signer of the batch's wallet.
    #[error("signer {signer} is not in the {signers} peg keys of peg-out batch {batch}'s wallet")]
    UnknownSigner {
        /// The batch.
        batch: u64,
        /// The named signer.
        signer: ValidatorIndex,
        /// Keys in that wallet.
        signers: usize,
    },
    /// The state could not be read (not a verdict on the transaction).
    #[error(transparent)]
    State(#[from] StateError),
    /// A federation-change approval given under an earlier (or later) epoch than the one in force: a
    /// replayed or stale change. The approvers must approve again under the set in force.
    #[error(
        "approval by validator {validator} was given under federation epoch {approved_in}, but epoch {in_force} is in force: approve again"
    )]
    StaleApproval {
        /// Who it names.
        validator: ValidatorIndex,
        /// The epoch the approval names (and was signed for).
        approved_in: u32,
        /// The epoch in force.
        in_force: u32,
    },
    /// A `RegisterDeposit` paying less than the genesis `registration_fee`. An account without the fee pegs
    /// in through `claimpegin`, which needs no registration.
    #[error("registration fee {fee} is below the registration fee {min}; without a balance, claim the deposit instead (claimpegin)")]
    RegistrationFeeTooLow {
        /// The fee paid.
        fee: Amount,
        /// `Params::registration_fee`.
        min: Amount,
    },
    /// A burn larger than the whole rolling peg-out limit: it could never be paid, and would block the
    /// queue behind it forever.
    #[error("peg-out of {amount} is above the rolling peg-out limit of {limit} per {window} BTC blocks: split it")]
    PegOutAboveLimit {
        /// The burn's amount.
        amount: Amount,
        /// `Params::pegout_limit`.
        limit: Amount,
        /// `Params::pegout_limit_window`.
        window: u32,
    },
    /// A burn's fee below its share of a batch: `min_fee` plus, at twice the agreed rate, the whole batch that
    /// would pay it alone (one input, its payout, the change), so a lone burn never waits on unrelated fee
    /// income (see [`crate::pegout`]).
    #[error(
        "peg-out fee {fee} is below {min}: min_fee plus a lone batch of {batch_vbytes} vB at twice the agreed \
         {sat_per_vb} sat/vB"
    )]
    PegOutFeeTooLow {
        /// The fee paid.
        fee: Amount,
        /// The least fee accepted.
        min: Amount,
        /// The size of the lone batch the fee pays for.
        batch_vbytes: u64,
        /// The agreed rate it is priced at (twice this).
        sat_per_vb: u64,
    },
}

/// Why a block is not valid on top of the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The block belongs to another chain.
    #[error("block is for genesis {got}, this chain is {expected}")]
    WrongGenesis {
        /// Our genesis hash.
        expected: Hash32,
        /// The header's.
        got: Hash32,
    },
    /// Not the next height.
    #[error("expected height {expected}, got {got}")]
    WrongHeight {
        /// Next height.
        expected: Height,
        /// The header's.
        got: Height,
    },
    /// Time did not move forward.
    #[error("block time {got_ms} ms is not after the previous {prev_ms} ms")]
    TimeNotIncreasing {
        /// Previous block's time.
        prev_ms: u64,
        /// This block's.
        got_ms: u64,
    },
    /// Proposer index outside the validator set.
    #[error("proposer {proposer} is not among the {validators} validators")]
    UnknownProposer {
        /// The header's proposer.
        proposer: ValidatorIndex,
        /// Size of the set.
        validators: usize,
    },
    /// Anchor height went down.
    #[error("btc anchor height {got} is below the previous anchor {prev}")]
    AnchorBackwards {
        /// Previous anchor height.
        prev: BtcHeight,
        /// This block's.
        got: BtcHeight,
    },
    /// Anchor moved too far at once.
    #[error("btc anchor moved from {prev} to {got}, more than {max} blocks")]
    AnchorStepTooLarge {
        /// Previous anchor height.
        prev: BtcHeight,
        /// This block's.
        got: BtcHeight,
        /// `Params::max_anchor_step`.
        max: u32,
    },
    /// Same anchor height, different hash.
    #[error("btc anchor at height {height} changed hash from {prev} to {got}")]
    AnchorHashChanged {
        /// The height.
        height: BtcHeight,
        /// Previous hash.
        prev: Hash32,
        /// This block's.
        got: Hash32,
    },
    /// More transactions than allowed.
    #[error("{count} transactions, at most {max}")]
    TooManyTxs {
        /// How many.
        count: usize,
        /// `Params::block_max_txs`.
        max: u32,
    },
    /// Transactions too large in total.
    #[error("transactions take {bytes} bytes, at most {max}")]
    TooLarge {
        /// Encoded size of the transaction list.
        bytes: usize,
        /// `Params::block_max_bytes`.
        max: u32,
    },
    /// `tx_root` does not match the body.
    #[error("header tx root {header} does not match the transactions' {computed}")]
    TxRootMismatch {
        /// In the header.
        header: Hash32,
        /// From the body.
        computed: Hash32,
    },
    /// `state_root` does not match the execution.
    #[error("header state root {header} does not match the executed {computed}")]
    StateRootMismatch {
        /// In the header.
        header: Hash32,
        /// After execution.
        computed: Hash32,
    },
    /// A transaction whose signature does not verify.
    #[error("tx {index} ({txid}): {source}")]
    BadSignature {
        /// Position in the block.
        index: usize,
        /// Its id.
        txid: Hash32,
        /// Why.
        source: SignatureError,
    },
    /// A transaction that does not apply.
    #[error("tx {index} ({txid}): {source}")]
    InvalidTx {
        /// Position in the block.
        index: usize,
        /// Its id.
        txid: Hash32,
        /// Why.
        source: TxError,
    },
    /// The state could not be read or written (not a verdict on the block).
    #[error(transparent)]
    State(#[from] StateError),
    /// The anchor moved while peg operations are halted.
    #[error("peg operations are halted: the anchor must stay at {} (got {})", kept.height, got.height)]
    AnchorWhileHalted {
        /// The anchor in force.
        kept: BtcAnchor,
        /// The header's.
        got: BtcAnchor,
    },
    /// The anchor reaches the height of the early items' block (the peg cursor) with another block.
    #[error("early peg items were of BTC block {} at height {}; the anchor may move only to it, got {} at {}", cursor.hash, cursor.height, got.hash, got.height)]
    AnchorOffCursor {
        /// The early items' block.
        cursor: BtcAnchor,
        /// The header's anchor.
        got: BtcAnchor,
    },
    /// The block after a resume does not take the agreed anchor.
    #[error("the peg resumes from anchor {} but the header says {}", agreed.height, got.height)]
    ResumeAnchorMismatch {
        /// What 2f+1 validators agreed.
        agreed: BtcAnchor,
        /// The header's.
        got: BtcAnchor,
    },
    /// Building the peg-out batch due at this height failed on state (not on the block's contents).
    #[error("building the peg-out batch: {source}")]
    Batch {
        /// Why.
        source: TxError,
    },
    /// The block would leave the federation owing more than it holds: `supply + unpaid_burns` above
    /// `btc_held` (plus the genesis supply of test networks). No block may break the reserve promise.
    #[error("reserve broken: supply {supply} + unpaid burns {unpaid_burns} exceeds btc held {btc_held} + genesis supply {genesis_supply}")]
    ReserveBroken {
        /// Supply after the block.
        supply: Amount,
        /// Unpaid burns after the block.
        unpaid_burns: Amount,
        /// BTC held after the block.
        btc_held: Amount,
        /// The genesis balances (zero on a real chain).
        genesis_supply: Amount,
    },
}

impl BlockError {
    /// `true` when the block itself is invalid (prevote nil); `false` when the local state failed.
    pub fn is_invalid_block(&self) -> bool {
        match self {
            BlockError::State(_) => false,
            BlockError::InvalidTx { source, .. } => !matches!(source, TxError::State(_)),
            BlockError::Batch { source } => !matches!(source, TxError::State(_)),
            _ => true,
        }
    }
}

/// The result of one applied transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction.
    pub txid: Hash32,
    /// Who paid (`None` for evidence, which nobody pays for).
    pub sender: Option<AccountId>,
    /// Fee credited to the fee pool.
    pub fee: Amount,
}

/// What executing a block produced. Persist `write_set` atomically with the block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecutionOutcome {
    /// Root after the block (equals `write_set.root`).
    pub state_root: Hash32,
    /// The writes, at version = block height.
    pub write_set: WriteSet,
    /// One receipt per transaction, in block order.
    pub receipts: Vec<Receipt>,
    /// The chain meta written by this block.
    pub meta: ChainMeta,
}

/// A state with uncommitted changes on top (a block being executed, or a mempool's pending view).
pub struct Overlay<'a, S> {
    base: &'a S,
    accounts: BTreeMap<AccountId, Account>,
    /// Every other changed key (evidence, peg state), as borsh bytes.
    pub(crate) writes: BTreeMap<StateKey, Vec<u8>>,
    /// The spendable federation outputs once changed, kept decoded: every mint adds one, and re-encoding
    /// the whole set per mint made a BTC block of many outputs cost quadratic time to plan (a cheap flood
    /// would stall round-0 proposals). Encoded once, by reads of its key and by [`Overlay::into_changes`].
    pub(crate) spendable: Option<crate::batching::SpendableUtxos>,
}

impl<'a, S: StateReader> Overlay<'a, S> {
    /// No changes yet.
    pub fn new(base: &'a S) -> Self {
        Overlay { base, accounts: BTreeMap::new(), writes: BTreeMap::new(), spendable: None }
    }

    /// Current view of an account (a missing account is empty).
    pub fn account(&self, id: &AccountId) -> Result<Account, StateError> {
        match self.accounts.get(id) {
            Some(a) => Ok(*a),
            None => Ok(self.base.get_account(id)?.unwrap_or_default()),
        }
    }

    /// The sender of `tx` after paying `amount + fee` and using its nonce (not written yet): checks the
    /// nonce, the balance and overflow. Every user transaction starts here.
    pub(crate) fn debited_sender(&self, tx: &UserTx, amount: Amount) -> Result<(AccountId, Account), TxError> {
        let from = tx.sender();
        let mut sender = self.account(&from)?;
        if tx.nonce != sender.nonce {
            return Err(TxError::BadNonce { account: from, expected: sender.nonce, got: tx.nonce });
        }
        let needed = amount.checked_add(tx.fee).ok_or(TxError::AmountOverflow { amount, fee: tx.fee })?;
        sender.balance = sender.balance.checked_sub(needed).ok_or(TxError::InsufficientBalance {
            account: from,
            balance: sender.balance,
            needed,
        })?;
        sender.nonce = sender.nonce.checked_add(1).ok_or(TxError::NonceExhausted(from))?;
        Ok((from, sender))
    }

    pub(crate) fn put_account(&mut self, id: AccountId, account: Account) {
        self.accounts.insert(id, account);
    }

    /// Applies a user transaction whose signature was already checked. All or nothing: on error the
    /// overlay is unchanged.
    pub fn apply_user_tx(&mut self, chain: &Chain, signed: &SignedUserTx) -> Result<Receipt, TxError> {
        match signed.tx.kind {
            UserTxKind::Transfer { to, amount } => self.apply_transfer(chain, signed, to, amount),
            UserTxKind::RegisterDeposit => self.apply_register(chain, signed),
            UserTxKind::PegOut { ref btc_script_pubkey, amount } => {
                crate::pegout_limit::check_burn_amount(chain.params(), amount)?;
                self.apply_pegout(chain, signed, btc_script_pubkey, amount)
            }
        }
    }

    fn apply_transfer(
        &mut self,
        chain: &Chain,
        signed: &SignedUserTx,
        to: AccountId,
        amount: Amount,
    ) -> Result<Receipt, TxError> {
        let tx = &signed.tx;
        if amount == Amount::ZERO {
            return Err(TxError::ZeroAmount);
        }
        let min = chain.params().min_fee;
        if tx.fee < min {
            return Err(TxError::FeeTooLow { fee: tx.fee, min });
        }
        let (from, sender) = self.debited_sender(tx, amount)?;
        // Credits read through the debits above, so a self-transfer only costs the fee.
        let mut recipient = if to == from { sender } else { self.account(&to)? };
        recipient.balance = credit(to, recipient.balance, amount)?;
        let pool_id = fee_pool_id();
        let mut pool = if pool_id == to { recipient } else { self.account(&pool_id)? };
        pool.balance = credit(pool_id, pool.balance, tx.fee)?;
        // Everything checked: now write, sender first so a self-transfer keeps the credited value.
        self.accounts.insert(from, sender);
        self.accounts.insert(to, recipient);
        self.accounts.insert(pool_id, pool);
        Ok(Receipt { txid: signed.txid(), sender: Some(from), fee: tx.fee })
    }

    /// Records equivocation evidence (its proof already verified by the node). Refused when the offender
    /// is not a validator or the same (offender, height, round) is already recorded.
    pub fn apply_evidence(&mut self, chain: &Chain, ev: &EvidenceTx, included_at: Height) -> Result<Receipt, TxError> {
        let federation = crate::federation::federation_state(chain, self)?;
        let validators = federation.at_height(ev.height).validators.len();
        if ev.offender.as_usize() >= validators {
            return Err(TxError::UnknownOffender { offender: ev.offender, validators });
        }
        let key = StateKey::Evidence { offender: ev.offender, height: ev.height, round: ev.round };
        if self.writes.contains_key(&key) || self.base.get_raw(&key)?.is_some() {
            return Err(TxError::EvidenceAlreadyRecorded { offender: ev.offender, height: ev.height, round: ev.round });
        }
        let txid = ev.txid();
        let record = EvidenceRecord { offender: ev.offender, height: ev.height, round: ev.round, included_at, txid };
        self.writes.insert(key, canonical_bytes(&record));
        Ok(Receipt { txid, sender: None, fee: Amount::ZERO })
    }

    /// The changed accounts and other keys as state writes (accounts first, then by key).
    pub fn into_changes(mut self) -> Vec<(StateKey, Option<Vec<u8>>)> {
        if let Some(set) = self.spendable.take() {
            self.writes.insert(StateKey::SpendableUtxos, canonical_bytes(&set));
        }
        let accounts = self.accounts.into_iter().map(|(id, a)| (StateKey::Account(id), Some(canonical_bytes(&a))));
        accounts.chain(self.writes.into_iter().map(|(k, v)| (k, Some(v)))).collect()
    }
}

impl<S: StateReader> StateReader for Overlay<'_, S> {
    fn get_raw(&self, key: &StateKey) -> Result<Option<Vec<u8>>, StateError> {
        match key {
            StateKey::Account(id) => match self.accounts.get(id) {
                Some(a) => Ok(Some(canonical_bytes(a))),
                None => self.base.get_raw(key),
            },
            StateKey::ChainMeta => self.base.get_raw(key),
            StateKey::SpendableUtxos if self.spendable.is_some() => Ok(self.spendable.as_ref().map(canonical_bytes)),
            _ => match self.writes.get(key) {
                Some(v) => Ok(Some(v.clone())),
                None => self.base.get_raw(key),
            },
        }
    }
}

pub(crate) fn credit(account: AccountId, balance: Amount, amount: Amount) -> Result<Amount, TxError> {
    balance.checked_add(amount).filter(|b| *b <= Amount::MAX_MONEY).ok_or(TxError::BalanceOverflow { account, amount })
}

/// Mempool admission: is `tx` valid as the next transaction of its sender on top of `state`?
/// Checks the signature, amount, fee, nonce and balance; changes nothing.
pub fn check_tx<S: StateReader>(chain: &Chain, state: &S, tx: &SignedUserTx) -> Result<(), TxError> {
    tx.verify_signature(chain.genesis_hash())?;
    Overlay::new(state).apply_user_tx(chain, tx).map(|_| ())
}

/// Verifies every signature of `txs`: one batch, then one by one only to name the first bad one.
///
/// `validators` is the set in force for the block (validator transactions name a position in it).
pub fn verify_tx_signatures(chain: &Chain, validators: &[GenesisValidator], txs: &[Tx]) -> Result<(), BlockError> {
    if txs.is_empty() {
        return Ok(());
    }
    let items: Vec<(PublicKey, Vec<u8>, Signature)> = txs
        .iter()
        .filter_map(|t| match t {
            Tx::User(s) => Some((s.tx.signer, s.tx.signing_bytes(chain.genesis_hash()), s.signature)),
            // Its signatures are consensus signatures, checked by the node (see `EvidenceTx`).
            Tx::Evidence(_) => None,
            // Unsigned: BTC facts the proposer asserts and validators check against bitcoind.
            Tx::Mint(_) | Tx::Settle(_) => None,
            // Carry their own authority (approvals, ECDSA shares), checked by execution.
            Tx::Reconfigure(_) | Tx::PegShare(_) => None,
            // An unknown signer is refused by execution (`UnknownValidator`).
            Tx::Validator(v) => validators
                .get(v.tx.validator.as_usize())
                .map(|g| (g.consensus_key, v.tx.signing_bytes(chain.genesis_hash()), v.signature)),
        })
        .collect();
    if verify_batch(&items).is_ok() {
        return Ok(());
    }
    for (index, t) in txs.iter().enumerate() {
        let checked = match t {
            Tx::User(s) => s.verify_signature(chain.genesis_hash()),
            Tx::Validator(v) => match validators.get(v.tx.validator.as_usize()) {
                Some(g) => g.consensus_key.verify(
                    primitives::SignDomain::ValidatorTx,
                    chain.genesis_hash(),
                    &canonical_bytes(&v.tx),
                    &v.signature,
                ),
                None => Ok(()),
            },
            _ => Ok(()),
        };
        if let Err(source) = checked {
            return Err(BlockError::BadSignature { index, txid: t.txid(), source });
        }
    }
    // Batch and single verification disagree only for crafted small-order keys or signatures (see
    // docs/PROTOCOL.md); the batch verdict decides, deterministically on every node.
    Err(BlockError::BadSignature { index: 0, txid: txs[0].txid(), source: SignatureError::BatchInvalid(txs.len()) })
}

/// The header fields a proposer chooses; `tx_root` and `state_root` are computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockTemplate {
    /// Height of the new block.
    pub height: Height,
    /// Hash of the previous header.
    pub prev_hash: Hash32,
    /// Proposer's time.
    pub time_ms: u64,
    /// Proposer's index.
    pub proposer: ValidatorIndex,
    /// Anchor after this block.
    pub btc_anchor: BtcAnchor,
    /// Hash of the previous block's commit certificate.
    pub last_commit_hash: Hash32,
}

/// Checks the header against the previous state's chain meta, peg halt and the parameters; returns the new
/// meta.
#[allow(clippy::too_many_arguments)]
fn check_header(
    chain: &Chain,
    validators: usize,
    prev: &ChainMeta,
    halt: &PegHalt,
    cursor: Option<&crate::peg_cursor::PegCursor>,
    genesis_hash: &Hash32,
    height: Height,
    time_ms: u64,
    proposer: ValidatorIndex,
    anchor: &BtcAnchor,
) -> Result<ChainMeta, BlockError> {
    if genesis_hash != chain.genesis_hash() {
        return Err(BlockError::WrongGenesis { expected: *chain.genesis_hash(), got: *genesis_hash });
    }
    let expected = prev.height.next();
    if height != expected {
        return Err(BlockError::WrongHeight { expected, got: height });
    }
    if time_ms <= prev.time_ms {
        return Err(BlockError::TimeNotIncreasing { prev_ms: prev.time_ms, got_ms: time_ms });
    }
    if proposer.as_usize() >= validators {
        return Err(BlockError::UnknownProposer { proposer, validators });
    }
    if let Some(agreed) = halt.resume_to {
        if *anchor != agreed {
            return Err(BlockError::ResumeAnchorMismatch { agreed, got: *anchor });
        }
        return Ok(ChainMeta { height, time_ms, btc_anchor: *anchor });
    }
    if halt.is_halted() && *anchor != prev.btc_anchor {
        return Err(BlockError::AnchorWhileHalted { kept: prev.btc_anchor, got: *anchor });
    }
    let (p, g) = (prev.btc_anchor.height, anchor.height);
    if g < p {
        return Err(BlockError::AnchorBackwards { prev: p, got: g });
    }
    let max = chain.params().max_anchor_step;
    if g.get() - p.get() > max {
        return Err(BlockError::AnchorStepTooLarge { prev: p, got: g, max });
    }
    if g == p && anchor.hash != prev.btc_anchor.hash {
        return Err(BlockError::AnchorHashChanged { height: g, prev: prev.btc_anchor.hash, got: anchor.hash });
    }
    crate::peg_cursor::check_anchor(cursor, anchor)
        .map_err(|cursor| BlockError::AnchorOffCursor { cursor, got: *anchor })?;
    Ok(ChainMeta { height, time_ms, btc_anchor: *anchor })
}

/// What the previous block left that the header is checked against.
struct Previous {
    meta: ChainMeta,
    halt: PegHalt,
    cursor: Option<crate::peg_cursor::PegCursor>,
    validators: usize,
}

/// The chain meta, the peg halt, the peg cursor and the number of validators in force after the previous
/// block.
fn previous_meta<R: TreeReader>(chain: &Chain, store: &R, height: Height) -> Result<Previous, BlockError> {
    let Some(prev_height) = height.prev() else {
        return Err(BlockError::WrongHeight { expected: Height(1), got: height });
    };
    let snap = Snapshot::new(store, prev_height.get());
    let meta = snap.chain_meta()?.ok_or_else(|| {
        BlockError::State(StateError::MissingVersion {
            version: prev_height.get(),
            reason: "no chain meta: genesis state not written".into(),
        })
    })?;
    let validators = crate::federation::federation_state(chain, &snap)?.in_force().validators.len();
    Ok(Previous { meta, halt: peg_halt(&snap)?, cursor: crate::peg_cursor::peg_cursor(&snap)?, validators })
}

/// Limits, signatures, then every transaction in order; returns the outcome at version `meta.height`.
fn run_txs<R: TreeReader>(
    chain: &Chain,
    store: &R,
    prev_anchor: &BtcAnchor,
    meta: ChainMeta,
    txs: &[Tx],
) -> Result<ExecutionOutcome, BlockError> {
    let params = chain.params();
    if txs.len() > params.block_max_txs as usize {
        return Err(BlockError::TooManyTxs { count: txs.len(), max: params.block_max_txs });
    }
    let bytes = txs_encoded_len(txs);
    if bytes > params.block_max_bytes as usize {
        return Err(BlockError::TooLarge { bytes, max: params.block_max_bytes });
    }
    let version = meta.height.get();
    let prev = Snapshot::new(store, version.saturating_sub(1));
    let federation = crate::federation::federation_state(chain, &prev)?;
    verify_tx_signatures(chain, &federation.in_force().validators, txs)?;
    let mut overlay = Overlay::new(&prev);
    let halt = peg_halt(&prev)?;
    let resuming = halt.resume_to.is_some();
    if resuming {
        // This block took the agreed anchor: the resume is complete.
        overlay.writes.insert(StateKey::PegHalt, canonical_bytes(&PegHalt { resume_to: None, ..halt }));
    }
    // The anchor reached the early items' block (the header rule made it that very block), or the peg
    // resumes from an agreed anchor: early items are no longer early.
    if crate::peg_cursor::peg_cursor(&prev)?.is_some_and(|c| resuming || meta.btc_anchor.height >= c.btc_block.height) {
        overlay.clear_peg_cursor()?;
    }
    let mut receipts = Vec::with_capacity(txs.len());
    for (index, t) in txs.iter().enumerate() {
        let applied = match t {
            Tx::User(s) => overlay.apply_user_tx(chain, s),
            Tx::Evidence(e) => overlay.apply_evidence(chain, e, meta.height),
            Tx::Mint(m) => overlay.apply_mint(chain, m, &meta),
            Tx::Settle(s) => overlay.apply_settle(s, &meta),
            Tx::Validator(v) => overlay.apply_validator_tx(chain, v, &meta, prev_anchor),
            Tx::Reconfigure(r) => overlay.apply_reconfigure(chain, r, &meta),
            Tx::PegShare(p) => overlay.apply_peg_share(chain, &meta, p),
        };
        let receipt = applied.map_err(|source| BlockError::InvalidTx { index, txid: t.txid(), source })?;
        receipts.push(receipt);
    }
    overlay.update_agreed_fee_rate(chain, &meta)?;
    overlay.bump_stuck_batches(chain, &meta).map_err(|source| BlockError::Batch { source })?;
    overlay.build_batch_if_due(chain, &meta).map_err(|source| BlockError::Batch { source })?;
    overlay.build_sweeps_if_due(chain, &meta).map_err(|source| BlockError::Batch { source })?;
    overlay.activate_pending_federation(chain, &meta)?;
    check_reserve(chain, &overlay)?;
    let mut changes = overlay.into_changes();
    changes.push((StateKey::ChainMeta, Some(canonical_bytes(&meta))));
    let write_set = build_write_set(store, version, changes)?;
    Ok(ExecutionOutcome { state_root: write_set.root, write_set, receipts, meta })
}

/// The reserve promise after a block: `supply + unpaid_burns <= btc_held + genesis supply`.
fn check_reserve<S: StateReader>(chain: &Chain, state: &S) -> Result<(), BlockError> {
    let t = state.peg_totals()?;
    let genesis_supply = chain.genesis_supply();
    let owed = t.supply.checked_add(t.unpaid_burns);
    let backed = t.btc_held.checked_add(genesis_supply);
    match (owed, backed) {
        (Some(owed), Some(backed)) if owed <= backed => Ok(()),
        _ => Err(BlockError::ReserveBroken {
            supply: t.supply,
            unpaid_burns: t.unpaid_burns,
            btc_held: t.btc_held,
            genesis_supply,
        }),
    }
}

/// Encoded size of the transaction list as in a block (4-byte length, then each transaction).
pub fn txs_encoded_len(txs: &[Tx]) -> usize {
    4 + txs.iter().map(Tx::encoded_len).sum::<usize>()
}

/// Validates and executes `block` on top of the state at version `height - 1` in `store`.
///
/// Checks, in order: genesis hash, height, time, proposer, anchor rules, tx count and size, tx root,
/// signatures (batched), each transaction, and finally the header's state root against the result.
/// On success the caller persists `outcome.write_set` atomically with the block.
pub fn execute_block<R: TreeReader>(chain: &Chain, store: &R, block: &Block) -> Result<ExecutionOutcome, BlockError> {
    let h = &block.header;
    let p = previous_meta(chain, store, h.height)?;
    let meta = check_header(
        chain,
        p.validators,
        &p.meta,
        &p.halt,
        p.cursor.as_ref(),
        &h.genesis_hash,
        h.height,
        h.time_ms,
        h.proposer,
        &h.btc_anchor,
    )?;
    let computed = block.compute_tx_root();
    if computed != h.tx_root {
        return Err(BlockError::TxRootMismatch { header: h.tx_root, computed });
    }
    let outcome = run_txs(chain, store, &p.meta.btc_anchor, meta, &block.txs)?;
    if outcome.state_root != h.state_root {
        return Err(BlockError::StateRootMismatch { header: h.state_root, computed: outcome.state_root });
    }
    Ok(outcome)
}

/// Builds the proposer's block from chosen transactions (e.g. from [`crate::select_txs`]): executes
/// them and fills in `tx_root` and `state_root`.
pub fn build_block<R: TreeReader>(
    chain: &Chain,
    store: &R,
    template: BlockTemplate,
    txs: Vec<Tx>,
) -> Result<(Block, ExecutionOutcome), BlockError> {
    let p = previous_meta(chain, store, template.height)?;
    let meta = check_header(
        chain,
        p.validators,
        &p.meta,
        &p.halt,
        p.cursor.as_ref(),
        chain.genesis_hash(),
        template.height,
        template.time_ms,
        template.proposer,
        &template.btc_anchor,
    )?;
    let outcome = run_txs(chain, store, &p.meta.btc_anchor, meta, &txs)?;
    let ids: Vec<Hash32> = txs.iter().map(Tx::txid).collect();
    let header = BlockHeader {
        genesis_hash: *chain.genesis_hash(),
        height: template.height,
        prev_hash: template.prev_hash,
        time_ms: template.time_ms,
        proposer: template.proposer,
        btc_anchor: template.btc_anchor,
        tx_root: tx_root(&ids),
        state_root: outcome.state_root,
        last_commit_hash: template.last_commit_hash,
    };
    Ok((Block { header, txs }, outcome))
}

#[cfg(test)]
mod tests;
