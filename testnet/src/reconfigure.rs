//! Federation changes on a running local federation, as operators make them: a proposal naming the new
//! validators (their consensus keys, peg keys and p2p addresses), each approver's `approvefederationchange`
//! on its own node, and `submitfederationchange` with 2f+1 approvals.

use crate::federation::{Federation, FederationError};
use primitives::{Height, TxId};
use rpc::client::SidechainApiClient;

fn rpc_error(node: &str) -> impl Fn(jsonrpsee::core::ClientError) -> FederationError + '_ {
    move |e| FederationError::Rpc { node: node.to_string(), reason: e.to_string() }
}

/// Node `i` as a validator record of power 1 (its keys from `sidechaind init`, its p2p port).
pub fn member(fed: &Federation, i: usize) -> Result<ledger::GenesisValidator, FederationError> {
    let n = &fed.nodes[i];
    let bad = |what: &str| FederationError::Rpc { node: n.name.clone(), reason: format!("bad {what} from init") };
    let consensus_key: primitives::PublicKey =
        serde_json::from_value(serde_json::Value::String(n.consensus_key.clone())).map_err(|_| bad("consensus key"))?;
    let peg_key: bitcoin::PublicKey = n.peg_key.parse().map_err(|_| bad("peg key"))?;
    Ok(ledger::GenesisValidator {
        consensus_key,
        peg_key,
        p2p_addr: format!("/ip4/127.0.0.1/tcp/{}", n.p2p_port),
        power: 1,
    })
}

/// The proposal that nodes `members` validate from `activation_height` with a `threshold`-of-n wallet.
pub fn proposal(
    fed: &Federation,
    members: &[usize],
    threshold: u32,
    activation_height: u64,
) -> Result<ledger::FederationProposal, FederationError> {
    Ok(ledger::FederationProposal {
        validators: members.iter().map(|&i| member(fed, i)).collect::<Result<_, _>>()?,
        peg_threshold: threshold,
        activation_height: Height(activation_height),
    })
}

/// Each of `approvers` (nodes of validators in force) approves `proposal` on its own node.
pub async fn approvals(
    fed: &Federation,
    proposal: &ledger::FederationProposal,
    approvers: &[usize],
) -> Result<Vec<ledger::Approval>, FederationError> {
    let mut out = Vec::new();
    for &i in approvers {
        let n = &fed.nodes[i];
        out.push(n.client()?.approve_federation_change(proposal.clone()).await.map_err(rpc_error(&n.name))?);
    }
    Ok(out)
}

/// Approves `proposal` by `approvers` and submits it through node `via`; returns its txid.
pub async fn change_federation(
    fed: &Federation,
    proposal: &ledger::FederationProposal,
    approvers: &[usize],
    via: usize,
) -> Result<TxId, FederationError> {
    let approvals = approvals(fed, proposal, approvers).await?;
    let change = ledger::ReconfigureTx { proposal: proposal.clone(), approvals };
    let n = &fed.nodes[via];
    n.client()?.submit_federation_change(change).await.map_err(rpc_error(&n.name))
}
