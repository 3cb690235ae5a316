//! The measurements `scripts/bench` makes (`sidechain-bench` runs them): an open-loop load generator
//! ([`load`]), the same-run bounds each figure is divided by ([`bounds`]), peg-in latency on real bitcoinds
//! ([`pegin`]), the peg-out and peg-in costs of the deterministic batch builder ([`peg_costs`]), memory of a
//! process ([`rss`]), the latency curve as SVG ([`plot`]) and what taproot custody saves ([`custody`]).
//!
//! Why a library module and not all in the binary: each piece is small enough to read alone, and the
//! binary is then only the order of the run and the table.

pub mod bounds;
pub mod custody;
pub mod load;
pub mod pegin;
pub mod plot;

use anyhow::{Context, Result};

/// One line of the table: measure, figure, bound, ratio.
pub type Row = (String, String, String, String);

/// Peak and current resident memory of a process in MiB (`VmHWM`, `VmRSS` of `/proc/<pid>/status`).
pub fn rss(pid: &str) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<f64> {
        status.lines().find_map(|l| l.strip_prefix(key)?.trim().strip_suffix("kB")?.trim().parse::<f64>().ok())
    };
    Some((kib("VmHWM:")? / 1024.0, kib("VmRSS:")? / 1024.0))
}

/// The P2WPKH script the bench's payouts go to.
fn payout_script() -> bitcoin::ScriptBuf {
    use bitcoin::hashes::Hash as _;
    bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20]))
}

/// Planned vbytes of batches paying 1, 10 and 100 P2WPKH burns of 50,000 sat from one 100 BTC deposit of
/// `fed` at `rate`.
pub(crate) fn batch_vbytes(fed: &peg::Federation, genesis: [u8; 32], rate: bitcoin::FeeRate) -> Result<Vec<u64>> {
    use bitcoin::hashes::Hash as _;
    let coin = peg::BatchInput {
        outpoint: bitcoin::OutPoint { txid: bitcoin::Txid::from_byte_array([1; 32]), vout: 0 },
        amount: bitcoin::Amount::from_btc(100.0)?,
        tweak: Some([9; 32]),
    };
    let mut out = Vec::new();
    for n in [1usize, 10, 100] {
        let payouts =
            vec![peg::Payout { script_pubkey: payout_script(), amount: bitcoin::Amount::from_sat(50_000) }; n];
        let plan =
            peg::plan_batch(fed, genesis, &[coin], &payouts, rate, peg::BatchLimits::STANDARD, &fed.script_pubkey())?;
        out.push(plan.vbytes);
    }
    Ok(out)
}

/// Peg costs of this federation's shape (3-of-4, the bench's): vbytes of peg-out batches of 1, 10 and 100
/// P2WPKH payouts from the deterministic builder, the marginal vbytes per payout next to the payout output's
/// own size, and the peg-in fee next to what spending one deposit input costs at the same rate.
pub fn peg_costs() -> Result<(Vec<Row>, serde_json::Value)> {
    let chain = ledger::Chain::new(ledger::testkit::genesis(4, 0, bitcoin::Amount::ZERO))?;
    let fed = chain.genesis_wallet();
    let rate = bitcoin::FeeRate::from_sat_per_vb(chain.params().pegin_fee_rate_sat_vb).context("fee rate")?;
    let input_vb = peg::input_vbytes(fed.descriptor())?;
    let payout_script = payout_script();
    let sizes: Vec<(usize, u64)> =
        [1usize, 10, 100].into_iter().zip(batch_vbytes(fed, *chain.genesis_hash().as_bytes(), rate)?).collect();
    let marginal = (sizes[2].1 - sizes[1].1) as f64 / 90.0;
    let output_vb = peg::output_vbytes(&payout_script);
    let fee = chain.pegin_fee().to_sat();
    let input_cost = rate.fee_vb(input_vb).context("fee")?.to_sat();
    let rows = vec![
        (
            "peg-out batch vbytes".to_string(),
            format!("1: {} vB, 10: {} vB, 100: {} vB", sizes[0].1, sizes[1].1, sizes[2].1),
            "-".to_string(),
            "-".to_string(),
        ),
        (
            "peg-out marginal payout".to_string(),
            format!("{marginal:.1} vB per extra P2WPKH payout"),
            format!("P2WPKH output {output_vb} vB"),
            format!("{:.3}", marginal / output_vb as f64),
        ),
        (
            "peg-in fee vs input cost".to_string(),
            format!("{fee} sat per deposit"),
            format!("{input_vb} vB input at {} sat/vB = {input_cost} sat", chain.params().pegin_fee_rate_sat_vb),
            format!("{:.3}", fee as f64 / input_cost as f64),
        ),
    ];
    let json = serde_json::json!({
        "batch_vbytes": sizes.iter().map(|(n, v)| serde_json::json!({"payouts": n, "vbytes": v})).collect::<Vec<_>>(),
        "marginal_vbytes_per_payout": marginal,
        "payout_output_vbytes": output_vb,
        "pegin_fee_sat": fee,
        "deposit_input_vbytes": input_vb,
        "deposit_input_cost_sat": input_cost,
    });
    Ok((rows, json))
}
