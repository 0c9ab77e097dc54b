"""Dated snapshot folders (issue 21, point 5): a close is dated by the deal's own close date
where the snapshots allow it, by the snapshot that first shows it otherwise, and a close that
nothing dates is counted, never placed in a period."""

from __future__ import annotations

from datetime import UTC, datetime

from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.schemas import reasons
from funnel_reports.schemas.vocabulary import FOLLOWUPS, OPPORTUNITIES, STAGE_HISTORY
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.metrics_document import period_metrics
from funnel_reports.transforms.periods import parse_period
from funnel_reports.transforms.staging.checks import check_inputs

SETTINGS = RunSettings()  # UTC: a snapshot folder's date is that day's midnight UTC
HEADER = "opportunity_id,stage,status,created_at,closed_at,amount"
# Three snapshots a month apart, mid-month, so a snapshot's month is not its close date's:
# A won 03-20, before the first snapshot; H won before it too, its close date only in the
#   later snapshots; E won before it with no close date in any snapshot.
# B open on 04-15, won on 05-15 with its close date 04-28 between the two.
# C open on 04-15, lost on 05-15 with a close date 06-03 after the later snapshot.
# D open on 04-15, lost on 05-15 with a close date 04-01 before the earlier snapshot.
# W first seen 05-15 open, won on 06-15 with a close date 06-20 after that snapshot.
# F open throughout.
SNAPSHOTS = {
    "2024-04-15": [
        "A,won,won,2024-01-10,2024-03-20,100",
        "H,won,won,2024-01-20,,80",
        "E,won,won,2024-02-15,,70",
        "B,proposal,open,2024-02-01,,200",
        "C,proposal,open,2024-02-05,,300",
        "D,qualified,open,2024-02-10,,400",
        "F,lead,open,2024-03-05,,10",
    ],
    "2024-05-15": [
        "A,won,won,2024-01-10,2024-03-20,100",
        "H,won,won,2024-01-20,2024-02-25,80",
        "E,won,won,2024-02-15,,70",
        "B,won,won,2024-02-01,2024-04-28,200",
        "C,lost,lost,2024-02-05,2024-06-03,300",
        "D,qualified,lost,2024-02-10,2024-04-01,400",
        "W,negotiation,open,2024-03-01,,500",
        "F,lead,open,2024-03-05,,10",
    ],
    "2024-06-15": [
        "A,won,won,2024-01-10,2024-03-20,100",
        "H,won,won,2024-01-20,2024-02-25,80",
        "E,won,won,2024-02-15,,70",
        "B,won,won,2024-02-01,2024-04-28,200",
        "C,lost,lost,2024-02-05,2024-06-03,300",
        "D,qualified,lost,2024-02-10,2024-04-01,400",
        "W,won,won,2024-03-01,2024-06-20,500",
        "F,lead,open,2024-03-05,,10",
    ],
}


def checked_snapshots(tmp_path):
    for day, rows in SNAPSHOTS.items():
        folder = tmp_path / "exports" / day
        folder.mkdir(parents=True)
        (folder / "opportunities.csv").write_text(
            "\n".join([HEADER, *rows]) + "\n", encoding="utf-8"
        )
    return check_inputs(read_inputs(tmp_path / "exports", SETTINGS))


def metrics_of(checked, label: str):
    period = parse_period(label, SETTINGS.timezone)
    tables = checked.tables
    return period_metrics(
        tables[OPPORTUNITIES],
        tables[STAGE_HISTORY],
        tables[FOLLOWUPS],
        period=period,
        settings=checked.settings.metrics,
        history_available=checked.history_available,
        not_recorded=checked.not_recorded,
    )


def monthly(checked) -> dict[str, tuple[int, float, int]]:
    """(won count, won amount, lost count) per month 2024-01 .. 2024-06, each as of its end."""
    trend = metrics_of(checked, "2024-06")["trend"]
    return {row["label"]: (row["won_count"], row["won_amount"], row["lost_count"]) for row in trend}


def test_a_deal_closed_before_the_first_snapshot_is_won_at_its_own_close_date(tmp_path):
    months = monthly(checked_snapshots(tmp_path))
    assert months["2024-03"][:2] == (1, 100.0)  # A, closed 03-20, not the snapshot's 04-15
    assert months["2024-02"][:2] == (1, 80.0)  # H: its close date is in a later snapshot


def test_a_close_between_two_snapshots_is_dated_by_its_close_date_between_them(tmp_path):
    months = monthly(checked_snapshots(tmp_path))
    assert months["2024-04"][:2] == (1, 200.0)  # B, won 04-28, seen won on 05-15 only


def test_a_close_date_outside_the_two_snapshots_gives_way_to_the_later_snapshot(tmp_path):
    checked = checked_snapshots(tmp_path)
    months = monthly(checked)
    assert months["2024-05"] == (0, 0.0, 2)  # C (06-03 is after 05-15), D (04-01 before 04-15)
    assert months["2024-06"] == (1, 500.0, 0)  # W, seen won on 06-15, its date 06-20 after it
    closed = {r["opportunity_id"]: r["closed_at"] for r in checked.tables[OPPORTUNITIES].to_dicts()}
    assert closed["C"] == closed["D"] == datetime(2024, 5, 15, tzinfo=UTC)
    assert closed["W"] == datetime(2024, 6, 15, tzinfo=UTC)


def test_a_close_nothing_dates_is_counted_and_in_no_period(tmp_path):
    checked = checked_snapshots(tmp_path)
    months = monthly(checked)
    # E is in no month's won or lost count: every win is A, H, B or W
    assert sum(won for won, _, _ in months.values()) == 4
    assert sum(amount for _, amount, _ in months.values()) == 880.0
    quality = checked.quality[OPPORTUNITIES]
    assert {"reason": reasons.CLOSED_DATE_UNKNOWN, "rows": 1} in quality["reasons"]
    quarantined = checked.quarantine[OPPORTUNITIES]
    assert quarantined["opportunity_id"].to_list() == ["E"]
    assert quarantined["_reasons"].to_list() == [reasons.CLOSED_DATE_UNKNOWN]
    # nor open: from its first snapshot on, the open pipeline is what was seen open
    june = metrics_of(checked, "2024-06")
    assert (june["totals"]["open_count"], june["totals"]["open_amount"]) == (1, 10.0)  # F


def test_snapshot_counts_reconcile(tmp_path):
    checked = checked_snapshots(tmp_path)
    opps, history = checked.quality[OPPORTUNITIES], checked.quality[STAGE_HISTORY]
    assert (opps["rows_read"], opps["rows_valid"], opps["rows_quarantined"]) == (8, 7, 1)
    # every observed row is a history row; E's three go with their deal
    assert (history["rows_read"], history["rows_valid"], history["rows_quarantined"]) == (23, 20, 3)
    for table in (opps, history):
        assert table["rows_read"] == table["rows_valid"] + table["rows_quarantined"]
        for f in table["files"]:
            assert f["rows_read"] == f["rows_valid"] + f["rows_quarantined"]
    totals = metrics_of(checked, "2024-06")["totals"]
    # 8 deals read: 4 won, 2 lost, 1 open, 1 closed at a date nothing tells
    assert (totals["won_count"], totals["lost_count"], totals["open_count"]) == (4, 2, 1)
    assert totals["won_count"] + totals["lost_count"] + totals["open_count"] + 1 == 8


def test_a_run_of_an_earlier_month_sees_only_what_its_end_holds(tmp_path):
    april = metrics_of(checked_snapshots(tmp_path), "2024-04")
    # as of 05-01: A, H and B won (their own dates); C, D, W and F open (W in the first stage:
    # nothing was seen of it before 05-15)
    assert (april["totals"]["won_count"], april["totals"]["won_amount"]) == (3, 380.0)
    assert (april["totals"]["lost_count"], april["totals"]["open_count"]) == (0, 4)


def test_each_snapshot_file_counts_its_own_rows_in_the_input_files(tmp_path):
    # the appendix's and the manifest's input files: a snapshot file's rows are observations,
    # stage-history rows (7, 8 and 8 rows; E's row in each is quarantined with its deal),
    # whatever order the tables' counts come in
    files = {f["name"]: f for f in checked_snapshots(tmp_path).files}
    assert {
        name: (f["rows"], f["rows_valid"], f["rows_quarantined"]) for name, f in files.items()
    } == {
        "2024-04-15/opportunities.csv": (7, 6, 1),
        "2024-05-15/opportunities.csv": (8, 7, 1),
        "2024-06-15/opportunities.csv": (8, 7, 1),
    }


def test_a_deal_won_from_the_open_stage_it_keeps_is_won_in_the_snapshots(tmp_path):
    # Pipedrive keeps the stage a deal was won from: P is "proposal" and won in the second
    # snapshot, with its close date 2024-05-02 between the two; it used to stay open for ever
    for day, rows in {
        "2024-04-15": ["P,proposal,open,2024-02-01,,600"],
        "2024-05-15": ["P,proposal,won,2024-02-01,2024-05-02,600"],
    }.items():
        folder = tmp_path / "exports" / day
        folder.mkdir(parents=True)
        (folder / "opportunities.csv").write_text(
            "\n".join([HEADER, *rows]) + "\n", encoding="utf-8"
        )
    checked = check_inputs(read_inputs(tmp_path / "exports", SETTINGS))
    kpis = metrics_of(checked, "2024-05")["kpis"]
    assert (kpis["won_count"], kpis["won_amount"], kpis["open_count"]) == (1, 600.0, 0)
    assert metrics_of(checked, "2024-04")["kpis"]["open_count"] == 1
