//! `GET /v1/proposals`, `/v1/proposals/{id}` and `/v1/governance`: proposals with their live
//! tallies, the treasury and emissions, and which parameters a proposal may change.
//!
//! The progress figures are computed here from the ledger's own tally and rules
//! ([`Tally::outcome`]), so a client shows what the ledger will decide without re-implementing
//! it.

use axum::{
    Json,
    extract::{Path, Query, State},
};
use deai_ledger::{BPS_SCALE, Params, Proposal, ProposalStatus, Tally};

use super::types::{
    BlockDecisionView, ErrorBody, FixedParamView, GovernanceView, ProposalDetailView, ProposalView,
    VoteView,
};
use super::{ApiError, AppState, parse};

/// The governance and economics parameters `GET /v1/governance` names in `rules`: those whose
/// names start with one of these prefixes, or are one of these names.
const RULE_PREFIXES: [&str; 2] = ["gov_", "emission_"];
const RULE_NAMES: [&str; 4] = [
    "validator_commission_bps",
    "coordinator_round_reward",
    "dataset_bond",
    "task_epsilon_max",
];

/// Filters of `GET /v1/proposals`.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ProposalFilter {
    /// Only proposals in this status: `voting`, `passed`, `rejected`, `vetoed`, `no_quorum` or
    /// `executed`.
    status: Option<String>,
}

/// Every proposal, newest first, with its live tally and progress; optionally of one status.
#[utoipa::path(get, path = "/v1/proposals", tag = "governance", params(ProposalFilter),
    responses((status = 200, body = Vec<ProposalView>), (status = 400, body = ErrorBody)))]
pub(super) async fn proposals(
    State(app): State<AppState>,
    Query(filter): Query<ProposalFilter>,
) -> Result<Json<Vec<ProposalView>>, ApiError> {
    let status = filter.status.as_deref().map(parse_status).transpose()?;
    let mut views: Vec<ProposalView> = app.chain.read_state(|s| {
        s.proposals()
            .filter(|p| status.is_none_or(|st| p.status == st))
            .map(|p| summary(p, s.height(), s.params()))
            .collect()
    });
    // The ledger keeps them by id, and ids grow: newest first is the reverse.
    views.reverse();
    Ok(Json(views))
}

/// One proposal: the summary, what it does, its description hash and every vote with its weight.
#[utoipa::path(get, path = "/v1/proposals/{id}", tag = "governance",
    params(("id" = u64, Path, description = "proposal id")),
    responses((status = 200, body = ProposalDetailView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(super) async fn proposal(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ProposalDetailView>, ApiError> {
    let id = parse::number("a proposal id", &id)?;
    app.chain
        .read_state(|s| s.proposal(id).map(|p| detail(p, s.height(), s.params())))
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "proposal_not_found",
                format!("no proposal with id {id}; GET /v1/proposals lists them"),
            )
        })
}

/// The treasury and emissions, the governance rules, the parameters a proposal may change
/// (and those it may not, with why) and every block decision.
#[utoipa::path(get, path = "/v1/governance", tag = "governance",
    responses((status = 200, body = GovernanceView)))]
pub(super) async fn governance(State(app): State<AppState>) -> Json<GovernanceView> {
    Json(app.chain.read_state(|s| {
        let params = s.params().clone();
        let treasury = deai_ledger::treasury();
        GovernanceView {
            height: s.height(),
            treasury,
            treasury_balance: s.account(&treasury).balance,
            emitted: s.emitted(),
            emission_pool: s.emission_pool(),
            rules: params
                .named_values()
                .into_iter()
                .filter(|(name, _)| is_rule(name))
                .collect(),
            governable: Params::governable(),
            fixed: deai_ledger::FIXED_AT_GENESIS
                .iter()
                .map(|(name, reason)| FixedParamView {
                    name: (*name).to_string(),
                    reason: (*reason).to_string(),
                })
                .collect(),
            block_decisions: s
                .block_decisions()
                .map(|d| BlockDecisionView {
                    target: d.target.path(),
                    blocked: d.blocked,
                    reason: d.reason,
                })
                .collect(),
            params,
        }
    }))
}

fn is_rule(name: &str) -> bool {
    RULE_PREFIXES.iter().any(|p| name.starts_with(p)) || RULE_NAMES.contains(&name)
}

/// Parses a status filter by its wire name.
fn parse_status(s: &str) -> Result<ProposalStatus, ApiError> {
    ProposalStatus::parse(s).ok_or_else(|| {
        let names: Vec<&str> = ProposalStatus::ALL
            .into_iter()
            .map(ProposalStatus::name)
            .collect();
        ApiError::bad_request(
            "bad_status",
            format!("status {s:?}: use one of {}", names.join(", ")),
        )
    })
}

/// `part` as basis points of `whole` (0 when `whole` is 0), rounded down and at most
/// [`BPS_SCALE`], without overflow for any amounts.
fn bps(part: u128, whole: u128) -> u32 {
    if whole == 0 {
        return 0;
    }
    let scale = u128::from(BPS_SCALE);
    let part = part.min(whole);
    let ratio = match part.checked_mul(scale) {
        Some(scaled) => scaled / whole,
        // Amounts this large lose nothing that shows in basis points by dividing first.
        None => part / (whole / scale),
    };
    u32::try_from(ratio.min(scale)).unwrap_or(BPS_SCALE)
}

/// The summary of `p` read at `height` under `params`.
fn summary(p: &Proposal, height: u64, params: &Params) -> ProposalView {
    let tally: Tally = p.current_tally();
    let (quorum, threshold, veto) = (
        params.gov_quorum_bps,
        params.gov_threshold_bps,
        params.gov_veto_bps,
    );
    ProposalView {
        height,
        id: p.id,
        kind: p.kind.name().to_string(),
        proposer: p.proposer,
        deposit: p.deposit,
        start_height: p.start_height,
        end_height: p.end_height,
        blocks_left: p.end_height.saturating_sub(height),
        status: p.status,
        tally,
        tally_final: p.tally.is_some(),
        voted_bps: bps(tally.voted(), tally.power),
        yes_bps: bps(tally.yes, tally.yes + tally.no + tally.veto),
        veto_share_bps: bps(tally.veto, tally.voted()),
        quorum_bps: quorum,
        threshold_bps: threshold,
        veto_bps: veto,
        outcome: tally.outcome(quorum, threshold, veto),
        executable_from: p.executable_from,
        executable_until: p.executable_until,
        executed_at: p.executed_at,
    }
}

/// The full view of `p` read at `height` under `params`.
fn detail(p: &Proposal, height: u64, params: &Params) -> ProposalDetailView {
    let weights = p.power.weights(&p.votes);
    ProposalDetailView {
        summary: summary(p, height, params),
        proposal: p.kind.clone(),
        description: p.description,
        votes: p
            .votes
            .iter()
            .map(|(voter, choice)| VoteView {
                voter: *voter,
                choice: *choice,
                weight: weights.get(voter).copied().unwrap_or(0),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_points_round_down_and_never_overflow() {
        assert_eq!(bps(0, 0), 0);
        assert_eq!(bps(1, 3), 3_333);
        assert_eq!(bps(3, 3), 10_000);
        assert_eq!(bps(5, 3), 10_000);
        assert!((4_999..=5_000).contains(&bps(u128::MAX / 2, u128::MAX)));
        assert_eq!(bps(u128::MAX, u128::MAX), 10_000);
    }

    #[test]
    fn every_status_filter_parses_by_its_wire_name() {
        for st in ProposalStatus::ALL {
            assert_eq!(parse_status(st.name()).expect("known"), st);
        }
        let err = parse_status("open").expect_err("unknown");
        assert_eq!(err.code, "bad_status");
        assert!(err.message.contains("no_quorum"), "{}", err.message);
    }

    #[test]
    fn rules_name_the_governance_and_economics_parameters() {
        let rules: Vec<String> = Params::default()
            .named_values()
            .into_iter()
            .map(|(n, _)| n)
            .filter(|n| is_rule(n))
            .collect();
        for name in ["gov_quorum_bps", "emission_per_block", "task_epsilon_max"] {
            assert!(rules.iter().any(|r| r == name), "{name} in {rules:?}");
        }
        assert!(!rules.iter().any(|r| r == "fee_min"));
    }
}
