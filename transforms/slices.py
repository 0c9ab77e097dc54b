"""A report of the report set as a slice of the validated tables: the deals whose segment
columns hold one of the report's values, with their history and follow-ups; and the rules
that tell a team's report from the company roll-up (its language, its target)."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from funnel_reports.schemas.vocabulary import OPPORTUNITIES
from funnel_reports.transforms.funnel_model import COMPANY, ReportSpec


class EmptySliceError(ValueError):
    """A report whose filter matches no deal of the export."""


def slice_tables(tables: Mapping[str, pl.DataFrame], spec: ReportSpec) -> dict[str, pl.DataFrame]:
    """The report's deals and their rows in every other table (all of them without a filter);
    values match as written, ignoring surrounding spaces. EmptySliceError if no deal does."""
    if not spec.filter:
        return dict(tables)
    opportunities = tables[OPPORTUNITIES]
    matches = pl.all_horizontal(
        pl.col(column).str.strip_chars().is_in([v.strip() for v in values]).fill_null(False)
        for column, values in spec.filter.items()
    )
    deals = opportunities.filter(matches)
    if deals.height == 0:
        wanted = "; ".join(f"{c} = {', '.join(v)}" for c, v in spec.filter.items())
        raise EmptySliceError(
            f"report {spec.name}: its filter ({wanted}) matches none of the "
            f"{opportunities.height} deals of the export; check the values in [[reports]]"
        )
    ids = deals["opportunity_id"]
    return {
        name: deals
        if name == OPPORTUNITIES
        else table.filter(pl.col("opportunity_id").is_in(ids.implode()))
        for name, table in tables.items()
    }


def is_team(report: ReportSpec | None) -> bool:
    """A report of [[reports]]: a slice of the export, not the company roll-up (nor the
    plain report, None)."""
    return report is not None and report.name != COMPANY


def report_language(report: ReportSpec | None, *, given: str | None, configured: str) -> str:
    """A report's language: the one given on the command line, else the report's own, else
    the configuration's."""
    return given or (report.lang if report else None) or configured


def report_target(
    report: ReportSpec | None,
    period_label: str,
    company_targets: Mapping[str, float],
    override: float | None = None,
) -> float | None:
    """The won amount a report aims at in a period: `override` (--target) when given, else
    a team's own [[reports]] target, or [targets] for the company."""
    if override is not None:
        return override
    if report is not None and is_team(report):
        return report.targets.get(period_label)
    return company_targets.get(period_label)
