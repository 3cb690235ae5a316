//! Why a transaction or a block is refused: [`TxError`], [`WalletError`] and [`BlockError`].
//!
//! Why a module of its own: every execution rule, in whichever module (peg-ins, peg-outs, batches, the
//! federation, the halt), refuses with [`TxError`], and the block checks wrap it in [`BlockError`]. As part
//! of `execute.rs` the errors made every rule module and `execute.rs` need each other; here they sit above
//! only what they name (state, transactions, the genesis and proposal checks) and below every rule.
//! `crate::execute::*` re-exports them.

use crate::btc_anchor::BtcAnchor;
use crate::state::StateError;
use crate::tx::BtcOutPoint;
use bitcoin::Amount;
use primitives::{
    AccountId, BtcHeight, GenesisHash, Hash32, Height, Round, SignatureError, StateRoot, TxId, ValidatorIndex,
};

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
        btc_block: bitcoin::BlockHash,
        /// The anchor.
        anchor: bitcoin::BlockHash,
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
    #[error("bad signature share for peg-out batch {batch}: {source}")]
    BadBatchShare {
        /// The batch.
        batch: u64,
        /// What was wrong.
        #[source]
        source: Box<peg::shares::ShareError>,
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
    #[error("approval by validator {validator} is invalid: {source}")]
    BadApproval {
        /// Who it names.
        validator: ValidatorIndex,
        /// Why.
        #[source]
        source: primitives::SignatureError,
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
    /// Only signature shares, FROST messages and federation changes travel through the federation pool.
    #[error("not a signature share, a FROST message or a federation change")]
    NotAPoolTx,
    /// A federation epoch that does not exist.
    #[error("no federation epoch {0}")]
    UnknownEpoch(u32),
    /// A FROST signing message (or a leaf share for a key-path version) refused.
    #[error(transparent)]
    Frost(#[from] crate::frost_tx::FrostTxError),
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
        expected: GenesisHash,
        /// The header's.
        got: GenesisHash,
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
        prev: bitcoin::BlockHash,
        /// This block's.
        got: bitcoin::BlockHash,
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
        header: StateRoot,
        /// After execution.
        computed: StateRoot,
    },
    /// A transaction whose signature does not verify.
    #[error("tx {index} ({txid}): {source}")]
    BadSignature {
        /// Position in the block.
        index: usize,
        /// Its id.
        txid: TxId,
        /// Why.
        source: SignatureError,
    },
    /// A transaction that does not apply.
    #[error("tx {index} ({txid}): {source}")]
    InvalidTx {
        /// Position in the block.
        index: usize,
        /// Its id.
        txid: TxId,
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
