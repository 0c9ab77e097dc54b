"""Issue 21: three exports as a new user has them, end to end against a plain-Python reading.

Stand-ins for three real exports nobody on the project has seen, written here with the csv
module from a seeded `random.Random`, each with the quirks real ones have:

- a Salesforce org's Data Export: `Opportunity.csv` in ISO-8859-1, every field quoted, amounts
  in MXN, COP, PEN and USD, `CurrencyType.csv` beside it (units per one USD), `Account.csv`;
  deals imported into the org after they closed (CreatedDate after CloseDate), open deals with
  overdue close dates, deals without an amount;
- HubSpot deals pulled through the API into dated snapshot folders (`exports/2024-02-01/` …
  `exports/2024-07-01/`), by property name, written the way pandas writes `str(None)`; deals
  closed before the first snapshot appear closed in it with their real `closedate`; amounts
  set or changed as a deal moves on;
- a Dynamics 365 opportunity export saved from Excel as CSV (UTF-8 with BOM, display-name
  headers, no GUID column, `$12,500.00` amounts, US dates with AM/PM), read with the
  README's `[source.composite_ids]`.

Each is run through `funnel run` exactly as the README tells a user to, and metrics.json is
compared with an independent reading of the same files (csv + datetime only, no project
code) for a month in the middle of the export and its last month: won, lost and open deals
and amounts in the report currency, and the data-quality counts.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from funnel_reports.flows.cli import main

EXPORTED = datetime(2024, 7, 1, 9, 15, tzinfo=UTC)  # when the exports were taken
FIRST = datetime(2024, 1, 2, tzinfo=UTC)
LAST_CREATED = datetime(2024, 6, 27, 16, 40, tzinfo=UTC)
PERIODS = ("2024-03", "2024-06")  # a month in the middle, and the export's last full month

# ---------------------------------------------------------------------------------------------
# One simulated sales process, shared by the three stand-ins (each writes it its own way)


@dataclass
class Deal:
    number: int
    created: datetime
    entries: list[datetime]  # entry into open stage 0, 1, ... (before the export)
    outcome: str  # won | lost | open (at the export)
    close: datetime  # the close (won/lost), or the expected close (open)
    amount: float | None  # in USD
    changes: dict[int, float | None] = field(default_factory=dict)  # stage -> amount then


def simulate(rng: random.Random, n: int, *, same_day_closes: int = 0) -> list[Deal]:
    """n deals created over 2024-01..2024-06, some won, some lost, some still open at the
    export (a few past their expected close date). The first deal is created late in June and
    the second closed late in June, so the export reaches the end of June."""
    deals = []
    span = int((LAST_CREATED - FIRST).total_seconds())
    for i in range(n):
        created = FIRST + timedelta(seconds=rng.randrange(span))
        if i == 0:
            created = LAST_CREATED
        furthest = rng.choices([0, 1, 2, 3], [0.3, 0.3, 0.2, 0.2])[0]
        entries = [created]
        for _ in range(furthest):
            entries.append(entries[-1] + timedelta(hours=rng.uniform(30, 480)))
        entries = [t for t in entries if t < EXPORTED]
        outcome = rng.choices(["won", "lost", "open"], [0.4, 0.35, 0.25])[0]
        close = entries[-1] + timedelta(hours=rng.uniform(20, 600))
        if i == 1:
            outcome, close = "won", datetime(2024, 6, 28, 15, 5, tzinfo=UTC)
            created = min(created, close - timedelta(days=3))
            entries = [created, *(t for t in entries[1:] if created < t < close)]
        if i in (2, 3, 4):  # quick deals of early January, closed that month
            created = datetime(2024, 1, 2 + 3 * i, 10 + i, 5 * i, tzinfo=UTC)
            entries = [created]
            outcome, close = ("won", "lost", "won")[i - 2], created + timedelta(days=4 * i)
        if outcome != "open" and close >= EXPORTED:
            outcome = "open"
        base = rng.randrange(2_000, 90_000, 50)
        amount = None if rng.random() < 0.06 else float(base)
        deals.append(Deal(i, created, entries, outcome, close, amount))
    # a few deals closed the day they were logged (the CRM was filled in at signing)
    closed = [d for d in deals if d.outcome != "open" and len(d.entries) == 1 and d.number > 4]
    closed.sort(key=lambda d: d.created.month not in (3, 6))  # in the months compared
    for deal in closed[:same_day_closes]:
        deal.close = deal.created.replace(hour=min(deal.created.hour + 2, 23), minute=0)
    return deals


# ---------------------------------------------------------------------------------------------
# The independent reading: csv + datetime, the README's definitions


@dataclass(frozen=True)
class Row:
    """A deal as the plain reading sees it (amount in the report currency)."""

    key: str
    created: datetime
    status: str  # won | lost | open
    closed: datetime | None
    amount: float | None


def month_bounds(period: str) -> tuple[datetime, datetime]:
    year, month = map(int, period.split("-"))
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def expected_kpis(rows: list[Row], period: str, amount_at=None) -> dict[str, float]:
    """Won and lost in the period (by close date), and the deals open at its end: created
    before it, not closed before it. `amount_at(row, end)` gives a deal's amount at the end
    (default: its own)."""
    start, end = month_bounds(period)
    amount_at = amount_at or (lambda row, _end: row.amount)
    won = [r for r in rows if r.status == "won" and start <= r.closed < end]
    lost = [r for r in rows if r.status == "lost" and start <= r.closed < end]
    still_open = [
        r for r in rows if r.created < end and not (r.status != "open" and r.closed < end)
    ]
    return {
        "won_count": len(won),
        "won_amount": sum(amount_at(r, end) or 0.0 for r in won),
        "lost_count": len(lost),
        "open_count": len(still_open),
        "open_amount": sum(amount_at(r, end) or 0.0 for r in still_open),
    }


def read_csv(path: Path, encoding: str) -> list[dict[str, str]]:
    with path.open(encoding=encoding, newline="") as f:
        return list(csv.DictReader(f))


def check_kpis(metrics: dict, expected: dict[str, float]) -> None:
    got = {key: metrics["kpis"][key] for key in expected}
    assert got == {k: pytest.approx(v, rel=1e-9) for k, v in expected.items()}


def check_quality(metrics: dict, table: str, read: int, bad: int) -> None:
    """The table's rows read, and rows_read = rows_valid + rows_quarantined with the rows made
    bad quarantined."""
    quality = metrics["data_quality"][table]
    assert (quality["rows_read"], quality["rows_valid"], quality["rows_quarantined"]) == (
        read,
        read - bad,
        bad,
    )


def quarantined(out: Path, table: str) -> dict[int, str]:
    """The quarantine file's lines and reasons."""
    path = out / "quarantine" / f"{table}.csv"
    if not path.exists():
        return {}
    return {int(r["_line"]): r["_reasons"] for r in read_csv(path, "utf-8-sig")}


# ---------------------------------------------------------------------------------------------
# Running the command, as a user does


def run(*args: str) -> tuple[int, str, str]:
    """`funnel ...` through flows.cli.main, with its standard output and error (the warnings
    Python would print there included: pytest would otherwise keep them to itself)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("default")
        status = main(list(args))
    shown = "".join(
        warnings.formatwarning(w.message, w.category, w.filename, w.lineno) for w in caught
    )
    return status, out.getvalue(), err.getvalue() + shown


def report(input_dir: Path, out: Path, period: str, *config: str) -> dict:
    status, _, err = run(
        "run", "--input", str(input_dir), "--period", period, "--out", str(out), *config
    )
    assert status == 0, err
    return json.loads((out / period / "metrics.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# 1. Salesforce Data Export


SF_OPEN = [
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
]
SF_RATES = {"USD": 1.0, "MXN": 17.0842, "COP": 3912.5, "PEN": 3.7251}
SF_ACCOUNTS = [
    ("Muñoz y Asociados", "Consulting", "Ciudad de México"),
    ("São Paulo Comércio Ltda.", "Retail", "São Paulo"),
    ("Señor Café S.A.C.", "Food & Beverage", "Lima"),
    ("Distribuidora Peñalolén", "Wholesale", "Santiago"),
    ("Industrias Gómez", "Manufacturing", "Medellín"),
    ("Acme Corporation", "Manufacturing", "Austin"),
    ("Café Olé Bogotá", "Food & Beverage", "Bogotá"),
    ("Construcciones Ibáñez", "Construction", "Monterrey"),
]
SF_TOPICS = ["Renovación", "Expansão", "Pedido", "Licencias"]
SF_BAD_AMOUNT = (-4500.0, -120.0)  # negative amounts (credit notes) on two rows


def sf_id(rng: random.Random, prefix: str) -> str:
    chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "5g0000" + "".join(rng.choice(chars) for _ in range(9))


def write_salesforce(folder: Path, *, seed: int = 2101, n: int = 120) -> None:
    rng = random.Random(seed)
    deals = simulate(rng, n, same_day_closes=3)
    folder.mkdir(parents=True)
    accounts = [(sf_id(rng, "001"), *a) for a in SF_ACCOUNTS]
    owners = [sf_id(rng, "005") for _ in range(4)]
    with (folder / "Account.csv").open("w", encoding="iso-8859-1", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(["Id", "Name", "Industry", "BillingCity", "IsDeleted"])
        for account in accounts:
            w.writerow([*account, "false"])
    with (folder / "CurrencyType.csv").open("w", encoding="iso-8859-1", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(["Id", "IsoCode", "ConversionRate", "DecimalPlaces", "IsActive", "IsCorporate"])
        for code, rate in SF_RATES.items():
            places = 0 if code == "COP" else 2
            w.writerow(
                [sf_id(rng, "01L"), code, f"{rate:.6f}", places, "true", str(code == "USD").lower()]
            )
    header = [
        "Id",
        "AccountId",
        "Name",
        "StageName",
        "Amount",
        "CurrencyIsoCode",
        "CloseDate",
        "CreatedDate",
        "IsClosed",
        "IsWon",
        "Probability",
        "OwnerId",
    ]
    imported = [d for d in deals if d.outcome != "open"][5:9]
    for deal in imported:  # migrated from the old CRM after they closed: CreatedDate later
        deal.created = datetime(2024, 6, 20, 9, 12, rng.randrange(60), tzinfo=UTC)
    with (folder / "Opportunity.csv").open("w", encoding="iso-8859-1", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_ALL)
        w.writerow(header)
        for deal in deals:
            account = rng.choice(accounts)
            code = rng.choices(list(SF_RATES), [0.25, 0.4, 0.2, 0.15])[0]
            amount = "" if deal.amount is None else f"{round(deal.amount * SF_RATES[code]):d}"
            if deal.number in (17, 61):
                amount = f"{SF_BAD_AMOUNT[deal.number == 61]:.2f}"
            stage = SF_OPEN[min(2 * (len(deal.entries) - 1) + rng.randrange(2), 7)]
            probability = {
                "won": (100, "Closed Won"),
                "lost": (0, "Closed Lost"),
                "open": (10 * (SF_OPEN.index(stage) + 1), stage),
            }[deal.outcome]
            w.writerow(
                [
                    sf_id(rng, "006"),
                    account[0],
                    f"{account[1]} - {rng.choice(SF_TOPICS)}",
                    probability[1],
                    amount,
                    code,
                    deal.close.date().isoformat(),
                    deal.created.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                    str(deal.outcome != "open").lower(),
                    str(deal.outcome == "won").lower(),
                    probability[0],
                    rng.choice(owners),
                ]
            )


def salesforce_rows(folder: Path) -> tuple[list[Row], dict[int, str]]:
    """Opportunity.csv read plainly, amounts / the CurrencyType rate; the rows with a negative
    amount are bad (line -> reason)."""
    rates = {
        r["IsoCode"]: float(r["ConversionRate"])
        for r in read_csv(folder / "CurrencyType.csv", "iso-8859-1")
    }
    rows, bad = [], {}
    for line, r in enumerate(read_csv(folder / "Opportunity.csv", "iso-8859-1"), start=2):
        amount = float(r["Amount"]) / rates[r["CurrencyIsoCode"]] if r["Amount"] else None
        if amount is not None and amount < 0:
            bad[line] = "amount: negative value"
            continue
        status = "won" if r["IsWon"] == "true" else "lost" if r["IsClosed"] == "true" else "open"
        close = datetime.combine(date.fromisoformat(r["CloseDate"]), datetime.min.time(), UTC)
        created = datetime.strptime(r["CreatedDate"], "%Y-%m-%dT%H:%M:%S.%f%z")
        rows.append(Row(r["Id"], created, status, close if status != "open" else None, amount))
    return rows, bad


@pytest.fixture(scope="module")
def salesforce(tmp_path_factory, prefect_server):
    folder = tmp_path_factory.mktemp("salesforce") / "export"
    write_salesforce(folder)
    out = folder.parent / "out"
    return folder, out, {period: report(folder, out, period) for period in PERIODS}


@pytest.mark.parametrize("period", PERIODS)
def test_salesforce_data_export_matches_a_plain_reading(salesforce, period):
    folder, out, metrics = salesforce
    m = metrics[period]
    rows, bad = salesforce_rows(folder)
    assert m["source"]["preset"] == "salesforce"
    check_kpis(m, expected_kpis(rows, period))
    # every deal's currency converted at its CurrencyType rate, into USD
    raw = read_csv(folder / "Opportunity.csv", "iso-8859-1")
    deals = Counter(r["CurrencyIsoCode"] for r in raw)
    currency = m["source"]["currency"]
    assert (currency["report_currency"], currency["rates_from"]) == ("USD", "CurrencyType.csv")
    assert {
        c["currency"]: (c["deals"], c["rate_min"], c["rate_max"]) for c in currency["converted"]
    } == {code: (n, SF_RATES[code], SF_RATES[code]) for code, n in deals.items()}
    # the export's latest record; deals imported after they closed (CloseDate on a day before
    # CreatedDate's) are moved back, those closed the day they were created are not
    latest = max(max(r.created, r.closed or r.created) for r in rows)
    assert m["data_as_of"]["date"] == latest.date().isoformat()
    moved = sum(1 for r in rows if r.closed and r.closed.date() < r.created.date())
    assert m["data_quality"]["opportunities"]["notes"] == [
        {"note": "created_at moved back to closed_at (closed before created)", "rows": moved}
    ]
    check_quality(m, "opportunities", len(rows) + len(bad), len(bad))
    reasons = quarantined(out / period, "opportunities")
    assert set(reasons) == set(bad)
    assert all(reason.startswith(bad[line]) for line, reason in reasons.items())


def test_salesforce_without_its_currency_table_stops_naming_each_currency(
    salesforce, tmp_path, prefect_server
):
    folder, _, _ = salesforce
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("Opportunity.csv", "Account.csv"):
        (bare / name).write_bytes((folder / name).read_bytes())
    status, out, err = run(
        "run", "--input", str(bare), "--period", "2024-06", "--out", str(tmp_path / "out")
    )
    assert status == 2
    assert out == "" and len(err.strip().splitlines()) == 1, err
    counts = Counter(r["CurrencyIsoCode"] for r in read_csv(folder / "Opportunity.csv", "latin-1"))
    listed = dict(re.findall(r"([A-Z]{3}) (\d+) deals?", err))
    assert listed == {code: str(n) for code, n in counts.items()}
    assert "CurrencyType.csv" in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# 2. HubSpot deals pulled through the API into dated snapshot folders

HS_OPEN = [
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
]
HS_SNAPSHOTS = [date(2024, month, 1) for month in range(2, 8)]
HS_HEADER = [
    "hs_object_id",
    "dealname",
    "dealstage",
    "pipeline",
    "amount",
    "createdate",
    "closedate",
    "hs_lastmodifieddate",
    "deal_currency_code",
    "hubspot_owner_id",
]


def hs_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def hs_number(x: float | None) -> str:
    return "None" if x is None else (f"{x:.1f}" if x % 1 else f"{x:.0f}")


def write_hubspot(folder: Path, *, seed: int = 2102, n: int = 90) -> list[str]:
    """Monthly snapshots of every deal created before the snapshot date, in its state then.
    Returns the ids of the deals first seen closed without a close date (bad)."""
    rng = random.Random(seed)
    deals = simulate(rng, n)
    ids = {d.number: str(rng.randrange(10**10, 2 * 10**10)) for d in deals}
    owners = [str(rng.randrange(10**7, 10**8)) for _ in range(5)]
    owner_of = {d.number: rng.choice(owners) for d in deals}
    for deal in deals:  # the amount is set, or changed, as deals reach a proposal
        if len(deal.entries) > 2 and deal.amount is not None and rng.random() < 0.4:
            first = None if rng.random() < 0.5 else float(rng.randrange(2_000, 90_000, 50))
            deal.changes = {0: first, 2: deal.amount}
    # won deals whose closedate the API gave as None: one won before any snapshot saw it open
    # (closed, date unknown), one seen open, then won (dated by the snapshot that shows it)
    at = [datetime.combine(s, datetime.min.time(), UTC) for s in HS_SNAPSHOTS]
    won = [d for d in deals if d.outcome == "won" and d.number > 1]
    unseen = [d.number for d in won if not any(d.created < s <= d.close for s in at)][:1]
    seen_open = [d.number for d in won if any(d.created < s <= d.close for s in at)][-1:]
    undated = unseen + seen_open
    for snapshot in HS_SNAPSHOTS:
        at = datetime.combine(snapshot, datetime.min.time(), UTC)
        path = folder / snapshot.isoformat() / "deals.csv"
        path.parent.mkdir(parents=True)
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(HS_HEADER)
            for deal in deals:
                if deal.created >= at:
                    continue
                reached = [t for t in deal.entries if t < at]
                is_closed = deal.outcome != "open" and deal.close < at
                stage = ("closed" + deal.outcome) if is_closed else HS_OPEN[len(reached) - 1]
                amount = deal.amount
                for k, value in sorted(deal.changes.items()):
                    if k < len(reached) and not is_closed:
                        amount = value
                changed = deal.close if is_closed else reached[-1]
                closedate = hs_time(deal.close) if is_closed else "None"
                if deal.number in undated:
                    closedate = "None"
                w.writerow(
                    [
                        ids[deal.number],
                        f"Deal {deal.number} – {rng.choice(['Renewal', 'New business', 'Upsell'])}",
                        stage,
                        "default",
                        hs_number(amount),
                        hs_time(deal.created),
                        closedate,
                        hs_time(changed + timedelta(minutes=rng.randrange(1, 600))),
                        "USD",
                        owner_of[deal.number],
                    ]
                )
    return [ids[n] for n in unseen]


@dataclass(frozen=True)
class Seen:
    snapshot: datetime
    stage: str
    amount: float | None
    closedate: datetime | None


def hubspot_rows(folder: Path) -> tuple[list[Row], dict[str, list[Seen]], set[str]]:
    """The latest snapshot read plainly (its closedate dates each close; without one, the
    first snapshot showing the deal closed), each deal's observations in every snapshot, and
    the deals already closed when first seen, without a close date (bad)."""

    def stamp(text: str) -> datetime | None:
        return None if text == "None" else datetime.fromisoformat(text.replace("Z", "+00:00"))

    seen: dict[str, list[Seen]] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        at = datetime.combine(date.fromisoformat(sub.name), datetime.min.time(), UTC)
        for r in read_csv(sub / "deals.csv", "utf-8"):
            amount = None if r["amount"] == "None" else float(r["amount"])
            obs = Seen(at, r["dealstage"], amount, stamp(r["closedate"]))
            seen.setdefault(r["hs_object_id"], []).append(obs)
    latest = sorted(p for p in folder.iterdir() if p.is_dir())[-1]
    rows, undated = [], set()
    for r in read_csv(latest / "deals.csv", "utf-8"):
        status = {"closedwon": "won", "closedlost": "lost"}.get(r["dealstage"], "open")
        closedate = stamp(r["closedate"])
        observed = seen[r["hs_object_id"]]
        if status != "open" and closedate is None:  # closed by the first snapshot showing it
            if observed[0].stage.startswith("closed"):
                undated.add(r["hs_object_id"])
                continue
            closedate = next(o.snapshot for o in observed if o.stage.startswith("closed"))
        amount = None if r["amount"] == "None" else float(r["amount"])
        rows.append(Row(r["hs_object_id"], stamp(r["createdate"]), status, closedate, amount))
    return rows, seen, undated


def hubspot_amount(seen: dict[str, list[Seen]]):
    """The README's point-in-time amount: the latest amount recorded before the period end
    (a snapshot row is known at its snapshot's date, the one first showing a close at the
    deal's close date), else the deal's current amount."""

    def amount_at(row: Row, end: datetime) -> float | None:
        known = []
        for i, obs in enumerate(seen[row.key]):
            closes = obs.stage.startswith("closed") and (
                i == 0 or not seen[row.key][i - 1].stage.startswith("closed")
            )
            at = row.closed if closes else obs.snapshot
            if at < end and obs.amount is not None:
                known.append((at, obs.amount))
        return max(known)[1] if known else row.amount

    return amount_at


@pytest.fixture(scope="module")
def hubspot(tmp_path_factory, prefect_server):
    folder = tmp_path_factory.mktemp("hubspot") / "exports"
    undated = write_hubspot(folder)
    out = folder.parent / "out"
    return folder, out, undated, {period: report(folder, out, period) for period in PERIODS}


@pytest.mark.parametrize("period", PERIODS)
def test_hubspot_snapshots_match_a_plain_reading(hubspot, period):
    folder, out, undated_ids, metrics = hubspot
    m = metrics[period]
    rows, seen, undated = hubspot_rows(folder)
    assert undated == set(undated_ids)
    assert m["source"]["preset"] == "hubspot"
    check_kpis(m, expected_kpis(rows, period, hubspot_amount(seen)))
    assert m["data_as_of"]["date"] == max(p.name for p in folder.iterdir())  # the latest pull
    check_quality(m, "opportunities", len(rows) + len(undated), len(undated))
    # every snapshot row is a history row; the undated deal's go with it
    history_read = sum(len(obs) for obs in seen.values())
    check_quality(m, "stage_history", history_read, sum(len(seen[key]) for key in undated))
    reasons = quarantined(out / period, "opportunities")
    assert len(reasons) == len(undated)
    assert all(r.startswith("closed_at: closed, date unknown") for r in reasons.values())


def test_hubspot_deals_closed_before_the_first_snapshot_keep_their_close_month(hubspot):
    folder, _, _, metrics = hubspot
    rows, _, _ = hubspot_rows(folder)
    january = [r for r in rows if r.status == "won" and r.closed < datetime(2024, 2, 1, tzinfo=UTC)]
    assert january  # the stand-in has some
    trend = {t["label"]: t for t in metrics["2024-06"]["trend"]}
    for period in ("2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"):
        expected = expected_kpis(rows, period)["won_count"]
        assert trend[period]["won_count"] == expected, period


# ---------------------------------------------------------------------------------------------
# 3. Dynamics 365 opportunity export, saved from Excel as CSV

DYN_HEADER = [
    "Topic",
    "Potential Customer",
    "Est. Close Date",
    "Est. Revenue",
    "Actual Revenue",
    "Actual Close Date",
    "Status",
    "Status Reason",
    "Pipeline Phase",
    "Probability",
    "Owner",
    "Created On",
    "Currency",
]
DYN_PHASES = ["1-Qualify", "2-Develop", "3-Propose", "4-Close"]
DYN_CONFIG = '[source.composite_ids]\nopportunity_id = ["Created On", "Topic", "Owner"]\n'


def us_date(d: date) -> str:
    return f"{d.month}/{d.day}/{d.year}"


def us_time(t: datetime) -> str:
    return f"{us_date(t.date())} {t.strftime('%I:%M %p').lstrip('0')}"


def dollars(x: float | None) -> str:
    return "" if x is None else f"${x:,.2f}"


def write_dynamics(folder: Path, *, seed: int = 2103, n: int = 100) -> list[int]:
    """The export, and funnel.toml beside it; returns the lines of the repeated row."""
    rng = random.Random(seed)
    deals = simulate(rng, n, same_day_closes=3)
    owners = ["Dana Lee", "Amaury Pérez", "Nguyễn Thu Hà", "Chris O'Neil"]
    customers = ["Contoso Ltd", "Fabrikam, Inc.", "Adventure Works", "Northwind Traders"]
    topics = ["ERP rollout", "Licences renewal", "Support plan", "Cloud migration", "Training"]
    folder.mkdir(parents=True)
    rows = []
    for deal in deals:
        phase = DYN_PHASES[min(len(deal.entries) - 1, 3)]
        closed = deal.outcome != "open"
        actual = None
        if deal.outcome == "won":  # the close dialog's Actual Revenue: the estimate, or less
            actual = deal.amount if rng.random() < 0.7 else round((deal.amount or 0) * 0.9, 2)
        rows.append(
            [
                f"{rng.choice(topics)} {deal.number}",
                rng.choice(customers),
                us_date(deal.close.date()),
                dollars(deal.amount),
                dollars(actual),
                us_date(deal.close.date()) if closed else "",
                deal.outcome.capitalize(),
                {"won": "Won", "lost": rng.choice(["Canceled", "Out-Sold"])}.get(
                    deal.outcome, "In Progress"
                ),
                phase,
                {"won": 100, "lost": 0}.get(deal.outcome, 20 * (DYN_PHASES.index(phase) + 1)),
                rng.choice(owners),
                us_time(deal.created),
                "US Dollar",
            ]
        )
    repeated = 40
    rows.insert(repeated + 1, list(rows[repeated]))  # the same deal exported twice
    with (folder / "All Opportunities 7-1-2024 9-15-03 AM.csv").open(
        "w", encoding="utf-8-sig", newline=""
    ) as f:
        w = csv.writer(f)
        w.writerow(DYN_HEADER)
        w.writerows(rows)
    return [repeated + 2, repeated + 3]


def dynamics_rows(folder: Path) -> tuple[list[Row], dict[int, str]]:
    """The export read plainly: amounts without the $ and commas (a won deal's Actual Revenue
    when it has one, else Est. Revenue); a deal appearing twice is bad (line -> reason)."""
    (path,) = folder.glob("*.csv")
    raw = read_csv(path, "utf-8-sig")
    key = Counter((r["Created On"], r["Topic"], r["Owner"]) for r in raw)
    rows, bad = [], {}
    for line, r in enumerate(raw, start=2):
        if key[r["Created On"], r["Topic"], r["Owner"]] > 1:
            bad[line] = "opportunity_id:"
            continue
        status = r["Status"].lower()
        revenue = (
            r["Actual Revenue"] if status == "won" and r["Actual Revenue"] else r["Est. Revenue"]
        )
        amount = float(revenue.replace("$", "").replace(",", "")) if revenue else None
        created = datetime.strptime(r["Created On"], "%m/%d/%Y %I:%M %p").replace(tzinfo=UTC)
        closed = None
        if r["Actual Close Date"]:
            closed = datetime.strptime(r["Actual Close Date"], "%m/%d/%Y").replace(tzinfo=UTC)
        ident = " / ".join((r["Created On"], r["Topic"], r["Owner"]))
        rows.append(Row(ident, created, status, closed, amount))
    return rows, bad


@pytest.fixture(scope="module")
def dynamics(tmp_path_factory, prefect_server):
    folder = tmp_path_factory.mktemp("dynamics") / "export"
    repeated = write_dynamics(folder)
    config = folder.parent / "funnel.toml"
    config.write_text(DYN_CONFIG, encoding="utf-8")
    out = folder.parent / "out"
    metrics = {period: report(folder, out, period, "--config", str(config)) for period in PERIODS}
    return folder, out, repeated, metrics


@pytest.mark.parametrize("period", PERIODS)
def test_dynamics_export_matches_a_plain_reading(dynamics, period):
    folder, out, repeated, metrics = dynamics
    m = metrics[period]
    rows, bad = dynamics_rows(folder)
    assert sorted(bad) == repeated
    assert m["source"]["preset"] == "dynamics"
    expected = expected_kpis(rows, period)
    del expected["won_amount"]  # the next test
    check_kpis(m, expected)
    latest = max(max(r.created, r.closed or r.created) for r in rows)
    assert m["data_as_of"]["date"] == latest.date().isoformat()
    check_quality(m, "opportunities", len(rows) + len(bad), len(bad))
    reasons = quarantined(out / period, "opportunities")
    assert set(reasons) == set(bad)
    assert all("appears more than once" in reason for reason in reasons.values())


@pytest.mark.parametrize("period", PERIODS)
def test_dynamics_won_amount_is_the_actual_revenue_of_won_deals(dynamics, period):
    folder, _, _, metrics = dynamics
    rows, _ = dynamics_rows(folder)
    assert metrics[period]["kpis"]["won_amount"] == pytest.approx(
        expected_kpis(rows, period)["won_amount"], rel=1e-9
    )


# ---------------------------------------------------------------------------------------------
# funnel validate: the preset detected and the counts, in a few lines


def validate_counts(text: str) -> dict[str, tuple[int, int, int]]:
    """Per table, the rows read, valid and quarantined over its files' lines."""
    totals: dict[str, list[int]] = {}
    for table, *counts in re.findall(
        r"^\S.* \((\w+)(?:, \d+ snapshots?)?\): read (\d+), valid (\d+), quarantined (\d+)$",
        text,
        re.M,
    ):
        totals.setdefault(table, [0, 0, 0])
        totals[table] = [t + int(c) for t, c in zip(totals[table], counts, strict=True)]
    return {table: tuple(counts) for table, counts in totals.items()}


def test_validate_the_salesforce_export(salesforce):
    folder, _, _ = salesforce
    status, out, err = run("validate", "--input", str(folder))
    rows, bad = salesforce_rows(folder)
    assert status == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0].startswith("source: Salesforce")
    assert validate_counts(out) == {"opportunities": (len(rows) + len(bad), len(rows), len(bad))}
    assert f"{len(bad)} × amount: negative value" in out
    assert len(lines) <= 10, out


def test_validate_the_dynamics_export(dynamics):
    folder, _, _, _ = dynamics
    config = folder.parent / "funnel.toml"
    status, out, err = run("validate", "--input", str(folder), "--config", str(config))
    rows, bad = dynamics_rows(folder)
    assert status == 0 and err == "", err
    lines = out.splitlines()
    assert lines[0].startswith("source: Dynamics 365")
    assert validate_counts(out) == {"opportunities": (len(rows) + len(bad), len(rows), len(bad))}
    assert f"{len(bad)} × opportunity_id: value appears more than once" in out
    assert len(lines) <= 10, out


def test_validate_the_hubspot_snapshots_counts(hubspot):
    folder, _, _, _ = hubspot
    status, out, err = run("validate", "--input", str(folder))
    rows, seen, undated = hubspot_rows(folder)
    assert status == 0 and err == "", err
    assert out.startswith("source: HubSpot")
    assert "stage history from 6 dated snapshots (2024-02-01 … 2024-07-01)" in out
    history = sum(len(obs) for obs in seen.values())
    history_bad = sum(len(seen[key]) for key in undated)
    assert validate_counts(out) == {
        "opportunities": (len(rows) + len(undated), len(rows), len(undated)),
        "stage_history": (history, history - history_bad, history_bad),
    }


def test_validate_the_hubspot_snapshots_in_a_few_lines(hubspot):
    folder, _, _, _ = hubspot
    _, out, _ = run("validate", "--input", str(folder))
    assert len(out.splitlines()) <= 12, out
