"""Thin exports (docs/metrics.md, issue 14): which stages a deal was seen in, the figures that
rest on skipped stages only, and the figures an export cannot give."""

from __future__ import annotations

from dataclasses import replace

from tests.helpers import SETTINGS, by_key, history, metrics_for, opp, opportunities, path, step

# A CRM that records only its first stage, "engaging" (qualified) and the outcome, with two
# dates per deal, the period 2024-06: A sits in lead, B in qualified; C was won (no stage
# between qualified and won is ever recorded); D was lost while qualified, E while a lead.
THIN = opportunities(
    opp("A", "lead", "2024-06-01"),
    opp("B", "qualified", "2024-06-02"),
    opp("C", "won", "2024-06-03", closed_at="2024-06-20", amount=100),
    opp("D", "qualified", "2024-06-04", status="lost", closed_at="2024-06-21"),
    opp("E", "lead", "2024-06-05", status="lost", closed_at="2024-06-22"),
)


def test_stages_no_deal_was_seen_in_are_not_observed_and_folded_out():
    m = metrics_for(THIN)
    stages = by_key(m["stages"], "id")
    assert [s for s in stages if stages[s]["observed"]] == ["lead", "qualified", "won"]
    assert [s for s in stages if stages[s]["shown"]] == ["lead", "qualified", "won"]
    assert m["observed_funnel"]["folded"] == ["proposal", "negotiation", "retention"]


def test_stages_carry_their_labels_in_both_languages():
    """metrics.json holds no text in the report's language, so each stage gives both."""
    labels = [(s["id"], s["label_en"], s["label_zh"]) for s in metrics_for(THIN)["stages"]]
    assert labels == [(s.id, s.label_en, s.label_zh) for s in SETTINGS.metrics.funnel.stages]
    assert labels[0] == ("lead", "Lead acquired", "线索获取")


def test_conversion_rows_through_an_unobserved_stage_are_inferred():
    m = metrics_for(THIN)
    inferred = {(r["from"], r["to"]): r["inferred"] for r in m["conversion"]}
    assert inferred == {
        ("lead", "qualified"): False,
        ("qualified", "proposal"): True,
        ("proposal", "negotiation"): True,
        ("negotiation", "won"): True,
        ("won", "retention"): True,
    }
    # the 100 % that nobody observed is still in metrics.json, marked
    assert step(m, "proposal", "negotiation")["cohort_rate"] == 1.0


def test_the_observed_funnel_converts_straight_from_qualified_to_won():
    """Cohort of qualified in W: B (open), C (won, skipping to won), D (lost): advanced 1,
    lost 1, open 1. Entries in P: qualified 3 (B, C, D), won 1 (C)."""
    rows = metrics_for(THIN)["observed_funnel"]["conversion"]
    assert [(r["from"], r["to"]) for r in rows] == [("lead", "qualified"), ("qualified", "won")]
    qualified_won = rows[1]
    assert (
        qualified_won["cohort_size"],
        qualified_won["advanced"],
        qualified_won["lost"],
        qualified_won["open"],
    ) == (3, 1, 1, 1)
    assert qualified_won["cohort_rate"] == 1 / 3
    assert qualified_won["resolved_rate"] == 0.5
    assert qualified_won["flow_rate"] == 1 / 3
    assert qualified_won["inferred"] is False


def test_win_probabilities_of_unobserved_stages_are_flagged():
    probabilities = by_key(metrics_for(THIN)["forecast"]["stage_probabilities"])
    flagged = {stage: row["insufficient_history"] for stage, row in probabilities.items()}
    # every stage is under 20 resolved deals here; proposal and negotiation also unobserved
    assert flagged == dict.fromkeys(["lead", "qualified", "proposal", "negotiation"], True)
    many = replace(SETTINGS, min_resolved_for_p_win=1)
    probabilities = by_key(metrics_for(THIN, settings=many)["forecast"]["stage_probabilities"])
    flagged = {stage: row["insufficient_history"] for stage, row in probabilities.items()}
    assert flagged == {"lead": False, "qualified": False, "proposal": True, "negotiation": True}


def test_a_stage_after_won_that_no_deal_entered_is_not_measurable():
    m = metrics_for(THIN)
    won_retention = step(m, "won", "retention")
    assert [won_retention[k] for k in ("flow_rate", "cohort_rate", "is_immature")] == [None] * 3
    assert {
        "figure": "conversion.won.retention",
        "reason": "never_entered",
        "needs": "retention",
    } in m["not_measurable"]


def test_a_funnel_named_in_funnel_toml_shows_every_stage():
    named = replace(SETTINGS, funnel=replace(SETTINGS.funnel, named=True))
    m = metrics_for(THIN, settings=named)
    assert all(s["shown"] for s in m["stages"])
    assert m["observed_funnel"]["folded"] == []
    assert len(m["observed_funnel"]["conversion"]) == len(m["conversion"])
    # still marked: nobody was seen in proposal or negotiation
    assert step(m, "proposal", "negotiation")["inferred"] is True


def test_history_rows_make_a_stage_observed():
    """F's history records proposal; only negotiation and retention stay unseen."""
    opps = opportunities(
        *[opp(r["opportunity_id"], r["stage"], "2024-06-01") for r in THIN.to_dicts()[:2]],
        opp("F", "won", "2024-06-01", closed_at="2024-06-15"),
    )
    rows = path("F", ("lead", "2024-06-01"), ("proposal", "2024-06-05"), ("won", "2024-06-15"))
    m = metrics_for(opps, history(*rows))
    assert m["observed_funnel"]["folded"] == ["negotiation", "retention"]


def test_an_export_without_a_stall_reason_column_has_no_compliance_rate():
    """B has sat in qualified for 29 days at as_of (2024-07-01): stalled, without a reason."""
    recorded = metrics_for(THIN)["stalls"]
    assert (recorded["stalled_count"], recorded["compliance_rate"]) == (2, 0.0)
    m = metrics_for(THIN, not_recorded=("opportunities.stall_reason",))
    assert m["stalls"]["stalled_count"] == 2
    assert (m["stalls"]["compliance_rate"], m["stalls"]["missing_reason_count"]) == (None, None)
    assert all(row["compliance_rate"] is None for row in m["stalls"]["by_owner"])
    assert {
        "figure": "stalls.compliance_rate",
        "reason": "not_recorded",
        "needs": "opportunities.stall_reason",
    } in m["not_measurable"]


def test_an_export_without_follow_ups_has_no_follow_up_figures():
    recorded = metrics_for(THIN)["followups"]
    assert recorded["silent_open_deals"] == 2  # A and B: no touch in 14 days, none at all
    followups = metrics_for(THIN, not_recorded=("followups",))["followups"]
    assert followups == {
        "touches_in_period": None,
        "touches_per_open_deal": None,
        "channel_mix": [],
        "silent_days": 14,
        "silent_open_deals": None,
        "silent_open_amount": None,
        "overdue_next_actions": None,
        "won_vs_lost": [],
    }


def test_follow_ups_without_due_dates_have_no_overdue_next_actions():
    m = metrics_for(THIN, not_recorded=("followups.next_action_due",))
    assert m["followups"]["overdue_next_actions"] is None
    assert m["followups"]["silent_open_deals"] == 2
    # a reopening is never recorded (`pipeline_movement`), whatever the export
    assert [f["figure"] for f in m["not_measurable"] if f["reason"] == "not_recorded"] == [
        "pipeline_movement.reopened_count",
        "followups.overdue_next_actions",
    ]


def test_the_shown_funnel_counts_each_step_of_the_stages_it_keeps():
    """Proposal is never recorded: A and B go lead → qualified → negotiation, then A is
    lost there and B won. The shown funnel folds proposal out, and its negotiation → won
    step is the full funnel's: cohort 2, advanced 1 (B), lost 1 (A), 50 %. (It once joined
    the counts by stage position, and read proposal's cohort there: 2 of 2, 100 %.)"""
    deals = opportunities(
        opp("A", "negotiation", "2024-06-01", status="lost", closed_at="2024-06-20"),
        opp("B", "won", "2024-06-01", closed_at="2024-06-21", amount=100),
    )
    entries = history(
        *(
            (deal, stage, day)
            for deal in ("A", "B")
            for stage, day in (
                ("lead", "2024-06-01"),
                ("qualified", "2024-06-05"),
                ("negotiation", "2024-06-10"),
            )
        ),
        ("B", "won", "2024-06-21"),
    )
    m = metrics_for(deals, entries)
    assert m["observed_funnel"]["folded"] == ["proposal", "retention"]
    shown = {(r["from"], r["to"]): r for r in m["observed_funnel"]["conversion"]}
    step = shown[("negotiation", "won")]
    assert (step["cohort_size"], step["advanced"], step["lost"]) == (2, 1, 1)
    assert step["cohort_rate"] == 0.5
    full = {(r["from"], r["to"]): r for r in m["conversion"]}[("negotiation", "won")]
    assert {k: step[k] for k in ("cohort_size", "advanced", "lost", "cohort_rate")} == {
        k: full[k] for k in ("cohort_size", "advanced", "lost", "cohort_rate")
    }
    assert shown[("qualified", "negotiation")]["cohort_rate"] == 1.0
