"""How well the next-period forecast does:
`python -m benchmarks.forecast`.

For generated exports of the given seeds, of three seeds of their own with skewed amounts, a
quarter-end season and both (`VARIANTS`), of copies whose open deals carry neither an amount
nor an expected close date, and of the sample in `data/`, it runs the report's forecast
as of the last full month and prints its backtest: every method's WAPE, bias, MAPE and
P10–P90 coverage over every past month end, the method used at each month end (picked from
the month ends before it), and the goals of issues 12 and 26 side by side. Nothing here is
a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from funnel_reports.flows.generate import GenerateSpec, generate_exports
from funnel_reports.flows.io.config import settings_from_toml
from funnel_reports.flows.io.exports import read_inputs
from funnel_reports.flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR
from funnel_reports.schemas.vocabulary import FOLLOWUPS, OPEN, OPPORTUNITIES, STAGE_HISTORY
from funnel_reports.transforms.funnel_model import RunSettings
from funnel_reports.transforms.metrics_document import period_metrics
from funnel_reports.transforms.periods import parse_period
from funnel_reports.transforms.staging.checks import validate_inputs

SEEDS = (101, 202, 303)
# exports of shapes the plain generator lacks, each of its own seed: right-skewed amounts
# (a few deals carry most of the amount), a quarter-end season (reps hold wins to the
# quarter's last month), and both, also without open-deal amounts
SKEWED, SEASONAL = {"amount_sigma": 1.4}, {"quarter_end_push": 0.6}
VARIANTS = (
    ("skewed amounts", 606, SKEWED),
    ("quarter-end season", 707, SEASONAL),
    ("skewed amounts and a quarter-end season", 808, SKEWED | SEASONAL),
)
OPPORTUNITIES_PER_EXPORT = 20_000
PERIOD = "2026-09"
TIMEZONE = "Asia/Shanghai"
NAIVE = ("last_period", "mean_last_3")


def backtest_of(folder: Path, settings: RunSettings, label: str = PERIOD) -> dict[str, Any]:
    """The forecast section of metrics.json for `label`, from the export in `folder`."""
    checked = validate_inputs(read_inputs(folder, settings))
    opportunities = checked[OPPORTUNITIES].valid
    history = checked[STAGE_HISTORY].valid
    period = parse_period(label, settings.timezone)
    metrics = period_metrics(
        opportunities,
        history,
        checked[FOLLOWUPS].valid,
        period=period,
        settings=settings.metrics,
        history_available=history.height > 0,
    )
    forecast: dict[str, Any] = metrics["forecast"]
    return forecast


def without_open_amounts_or_close_dates(source: Path, target: Path) -> Path:
    """A copy of a generated export whose open deals have no amount (nor in their history)
    and where no deal has an expected close date."""
    target.mkdir(parents=True, exist_ok=True)
    opportunities = pl.read_csv(source / "opportunities.csv", infer_schema=False)
    open_ids = opportunities.filter(pl.col("status") == OPEN)["opportunity_id"]
    opportunities.with_columns(
        pl.when(pl.col("status") == OPEN).then(None).otherwise(pl.col("amount")).alias("amount"),
        pl.lit(None, dtype=pl.String).alias("expected_close_date"),
    ).write_csv(target / "opportunities.csv")
    pl.read_csv(source / "stage_history.csv", infer_schema=False).with_columns(
        pl.when(pl.col("opportunity_id").is_in(open_ids.implode()))
        .then(None)
        .otherwise(pl.col("amount"))
        .alias("amount"),
        pl.lit(None, dtype=pl.String).alias("expected_close_date"),
    ).write_csv(target / "stage_history.csv")
    (target / "followups.csv").write_bytes((source / "followups.csv").read_bytes())
    return target


def score_rows(forecast: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    card = forecast["backtest"]
    used = {k: card[k] for k in ("wape", "bias", "mape", "coverage")} | {
        "origins": len(card["periods"])
    }
    return [("used at each month end", used)] + [
        (row["method"], row) for row in card["candidates"] + card["baselines"]
    ]


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:6.1f} %"


def better_than_naive(forecast: dict[str, Any], naive: str) -> tuple[float, float] | None:
    """How much smaller the absolute errors of the forecasts as used are than the `naive`
    baseline's, summed over the month ends (1 − Σ|used| / Σ|naive|), and the standard error
    of that share from the month ends' paired differences: a share within about two standard
    errors of 0 is a tie the month ends cannot tell apart."""
    pairs = [
        (abs(row["forecast"] - row["actual"]), abs(row["forecasts"][naive] - row["actual"]))
        for row in forecast["backtest"]["periods"]
        if row["forecast"] is not None and row["forecasts"].get(naive) is not None
    ]
    naive_error = sum(n for _, n in pairs)
    if len(pairs) < 2 or naive_error <= 0:
        return None
    differences = np.array([n - u for u, n in pairs])
    spread = float(differences.std(ddof=1)) * len(pairs) ** 0.5 / naive_error
    return float(differences.sum()) / naive_error, spread


def bias_error(forecast: dict[str, Any]) -> float | None:
    """The standard error of the bias of the forecasts as used (Σ(F − A) / ΣA) from the
    spread of the month ends' errors: a bias within about two of it is not told from 0."""
    rows = [r for r in forecast["backtest"]["periods"] if r["forecast"] is not None]
    won = sum(r["actual"] for r in rows)
    if len(rows) < 2 or won <= 0:
        return None
    errors = np.array([r["forecast"] - r["actual"] for r in rows])
    return float(errors.std(ddof=1)) * len(rows) ** 0.5 / won


def report(name: str, forecast: dict[str, Any]) -> dict[str, Any]:
    """Print one dataset's backtest table and return its goal figures."""
    card = forecast["backtest"]
    print(f"\n## {name}: forecast of {forecast['next_period_label']}")
    print(f"{'method':<28} {'month ends':>10} {'WAPE':>9} {'bias':>9} {'MAPE':>9} {'P10–P90':>9}")
    for method, row in score_rows(forecast):
        print(
            f"{method:<28} {row['origins']:>10} {percent(row['wape']):>9} "
            f"{percent(row['bias']):>9} {percent(row['mape']):>9} {percent(row['coverage']):>9}"
        )
    scores = {row["method"]: row for row in card["candidates"] + card["baselines"]}
    # a baseline without a score (nothing won in any backtested month) cannot be beaten
    naive = min(
        (m for m in NAIVE if scores[m]["wape"] is not None),
        key=lambda m: scores[m]["wape"],
        default=None,
    )
    picked = scores[forecast["method"]]
    print(
        f"picked now: {forecast['method']} → next period {forecast['next_period']:,.0f} "
        f"(open deals {forecast['next_period_components']['open_deals'] or 0:,.0f}, "
        f"new deals {forecast['next_period_components']['new_deals'] or 0:,.0f}; "
        f"P10–P90 {forecast['monte_carlo']['p10'] or 0:,.0f} – "
        f"{forecast['monte_carlo']['p90'] or 0:,.0f}); "
        f"{forecast['imputed_amount_count']} open deals priced at comparable deals' mean "
        f"({forecast['imputed_amount']:,.0f} in all)"
    )
    return {
        "name": name,
        "best_naive": None if naive is None else scores[naive]["wape"],
        "better": None if naive is None else better_than_naive(forecast, naive),
        "covered": sum(
            row["p10"] is not None and row["p10"] <= row["actual"] <= row["p90"]
            for row in card["periods"]
        ),
        "origins": len(card["periods"]),
        "used": card["wape"],
        "picked": picked["wape"],
        "bias": card["bias"],
        "bias_error": bias_error(forecast),
        "coverage": card["coverage"],
        "next_period": forecast["next_period"],
    }


def print_goals(goals: list[dict[str, Any]]) -> None:
    """The goals of issues 12 and 26, one export a line; the coverage of every export's month
    ends pooled (of 12 month ends only 9 or 10 lie within 70–90 %: at a true 80 % about half
    of all exports land outside by chance), and the aggregate bias, the exports' mean."""
    print("\n## goals: WAPE of the method used vs the better naive baseline (± one standard")
    print("## error of the month ends); |bias| ≤ 10 %; P10–P90 coverage 70–90 %")
    print(
        f"{'dataset':<52} {'naive':>8} {'used':>8} {'picked':>8} {'better':>13} "
        f"{'bias':>13} {'cover':>8}"
    )
    for g in goals:
        better = (
            "–"
            if g["better"] is None
            else f"{g['better'][0] * 100:.0f} ± {g['better'][1] * 100:.0f} %"
        )
        bias = "–" if g["bias"] is None else f"{g['bias'] * 100:.1f} %"
        if g["bias"] is not None and g["bias_error"] is not None:
            bias = f"{g['bias'] * 100:.1f} ± {g['bias_error'] * 100:.0f} %"
        print(
            f"{g['name']:<52} {percent(g['best_naive']):>8} {percent(g['used']):>8} "
            f"{percent(g['picked']):>8} {better:>13} {bias:>13} "
            f"{percent(g['coverage']):>8}"
        )
    covered, origins = sum(g["covered"] for g in goals), sum(g["origins"] for g in goals)
    if origins:
        print(
            f"P10–P90 coverage pooled: {covered} of {origins} month ends, {covered / origins:.0%}"
        )
    biases = [g["bias"] for g in goals if g["bias"] is not None]
    if biases:
        print(f"bias over the exports (each weighs alike): {sum(biases) / len(biases):.1%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument(
        "--variant-seeds",
        type=int,
        nargs=len(VARIANTS),
        default=[seed for _, seed, _ in VARIANTS],
        help="the seeds of the skewed, seasonal and skewed seasonal exports",
    )
    parser.add_argument("--opportunities", type=int, default=OPPORTUNITIES_PER_EXPORT)
    args = parser.parse_args(argv)
    settings = RunSettings(timezone=TIMEZONE, currency="CNY")
    goals = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in args.seeds:
            folder = Path(scratch) / f"seed-{seed}"
            generate_exports(folder, GenerateSpec(opportunities=args.opportunities, seed=seed))
            goals.append(
                report(
                    f"generated, {args.opportunities:,} deals, seed {seed}",
                    backtest_of(folder, settings),
                )
            )
        for (name, _, shape), seed in zip(VARIANTS, args.variant_seeds, strict=True):
            folder = Path(scratch) / f"variant-{seed}"
            spec = GenerateSpec(opportunities=args.opportunities, seed=seed, **shape)
            generate_exports(folder, spec)
            goals.append(report(f"seed {seed}, {name}", backtest_of(folder, settings)))
        goals.append(
            report(
                f"seed {args.variant_seeds[-1]} without open-deal amounts or close dates",
                backtest_of(
                    without_open_amounts_or_close_dates(folder, Path(scratch) / "bare-variant"),
                    settings,
                ),
            )
        )
        bare = without_open_amounts_or_close_dates(
            Path(scratch) / f"seed-{args.seeds[0]}", Path(scratch) / "bare"
        )
        goals.append(
            report(
                f"seed {args.seeds[0]} without open-deal amounts or close dates",
                backtest_of(bare, settings),
            )
        )
    goals.append(
        report(
            "the sample (data/sample)", backtest_of(SAMPLE_DIR, settings_from_toml(SAMPLE_CONFIG))
        )
    )
    print_goals(goals)
    return 0


if __name__ == "__main__":
    sys.exit(main())
