"""Split a typed table into valid rows and quarantined rows, with every reason per row."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandera.polars as pa
import polars as pl
from pandera.config import ValidationDepth, config_context
from pandera.errors import SchemaErrors

from funnel_reports.schemas import reasons
from funnel_reports.schemas.vocabulary import PARSE_REASONS


@dataclass(frozen=True)
class ValidatedTable:
    """`valid` holds the canonical columns; `quarantined` holds `_row` and `reasons` (a list)."""

    name: str
    valid: pl.DataFrame
    quarantined: pl.DataFrame
    rows_read: int
    notes: tuple[dict[str, object], ...] = ()  # rows kept but changed, e.g. dates moved
    # per currency the amounts were in: deals and the rates used (opportunities only)
    currencies: tuple[dict[str, object], ...] = ()
    # per column, the cells that held None, NULL, N/A, NaN or - and were read as null
    null_words: Mapping[str, int] = field(default_factory=dict)

    @property
    def rows_valid(self) -> int:
        return self.valid.height

    @property
    def rows_quarantined(self) -> int:
        return self.quarantined.height


def _schema_reason(check: pl.Expr, column: pl.Expr, value: pl.Expr) -> pl.Expr:
    """A readable reason from a pandera failure case."""
    return (
        pl.when(check == "not_nullable")
        .then(pl.format(reasons.MISSING_REQUIRED, column))
        .when(check == "field_uniqueness")
        .then(pl.format(reasons.REPEATED_ID, column, value))
        .when(check.str.starts_with("isin"))
        .then(pl.format(reasons.NOT_ALLOWED, column, value))
        .when(check.str.starts_with("greater_than_or_equal_to"))
        .then(pl.format(reasons.NEGATIVE, column, value))
        .when(pl.col("schema_context") == "DataFrameSchema")
        .then(check)
        .otherwise(pl.format(reasons.FAILS_CHECK, column, check, value))
    )


def schema_reasons(typed: pl.DataFrame, model: type[pa.DataFrameModel]) -> pl.DataFrame:
    """`_row`, `reason` for every pandera failure of the typed rows.

    The frame goes to pandera as a LazyFrame with data checks switched on: validating the
    DataFrame itself makes polars realign every column's chunks first, a copy of the table.
    """
    columns = list(model.to_schema().columns)
    try:
        with config_context(validation_depth=ValidationDepth.SCHEMA_AND_DATA):
            model.validate(typed.lazy().select(columns), lazy=True).collect()
    except SchemaErrors as errors:
        cases = errors.failure_cases.filter(pl.col("index").is_not_null())
        rows = typed.lazy().select("_row").with_row_index("index").collect()
        return (
            cases.with_columns(pl.col("index").cast(pl.UInt32))
            .join(rows, on="index", how="inner")
            .select(
                "_row",
                _schema_reason(pl.col("check"), pl.col("column"), pl.col("failure_case")).alias(
                    "reason"
                ),
                pl.col("column").alias("_column"),
                pl.col("check").alias("_check"),
            )
        )
    return pl.DataFrame(
        schema={"_row": pl.Int64, "reason": pl.String, "_column": pl.String, "_check": pl.String}
    )


def validate_table(
    name: str,
    typed: pl.DataFrame,
    model: type[pa.DataFrameModel],
    rule_reasons: pl.DataFrame | None = None,
) -> ValidatedTable:
    """Rows with no reason are valid; the rest are quarantined with all their reasons.

    `typed` comes from `transforms.staging.parse.parse_table`; `rule_reasons` (`_row`,
    `reason`) adds rules that need other tables. A value already reported as unreadable is not
    reported again as missing.
    """
    parse = (
        typed.lazy()
        .select("_row", pl.col(PARSE_REASONS).alias("reason"))
        .explode("reason")
        .drop_nulls()
        .collect()
    )
    unreadable = parse.select("_row", pl.col("reason").str.extract(r"^([^: ]+)").alias("_column"))
    schema = (
        schema_reasons(typed, model)
        .join(
            unreadable.with_columns(pl.lit(True).alias("_dup")), on=["_row", "_column"], how="left"
        )
        .filter(~(pl.col("_check").eq("not_nullable") & pl.col("_dup").fill_null(False)))
        .select("_row", "reason")
    )
    parts = [parse.with_columns(pl.col("_row").cast(pl.Int64)), schema.cast({"_row": pl.Int64})]
    if rule_reasons is not None:
        parts.append(rule_reasons.select(pl.col("_row").cast(pl.Int64), "reason"))
    reasons = (
        pl.concat(parts)
        .unique(maintain_order=True)
        .group_by("_row", maintain_order=True)
        .agg(pl.col("reason").alias("reasons"))
        .sort("_row")
    )
    valid = (
        typed.lazy().join(reasons.lazy().select("_row"), on="_row", how="anti")
        if reasons.height
        else typed.lazy()
    ).drop(PARSE_REASONS)
    return ValidatedTable(
        name=name, valid=valid.collect(), quarantined=reasons, rows_read=typed.height
    )


GOT = " (got '"  # where a reason's trailing value starts


def category_rule(template: str) -> tuple[str, str] | None:
    """The pattern that finds a reason written from `template` and the category it becomes:
    the template with its column and kind filled in, its quoted value dropped (a trailing
    `(got '…')`) or said as `value`. None for a template that shows no value.

    The value is matched greedily between the template's fixed words, so an apostrophe, a
    quote or a line break in it changes nothing."""
    if "'{}" not in template:
        return None
    head, got, _ = template.partition(GOT)
    pattern, category, group = "", "", 0
    for i, part in enumerate(re.split(r"('\{\}'|\{\})", head)):
        if i % 2 == 0:
            pattern += re.escape(part)
            category += part
        elif part == "'{}'":
            pattern += "'.*'"
            category += "value"
        else:
            group += 1
            pattern += "(.*?)"
            category += f"${{{group}}}"
    if got:
        pattern += re.escape(GOT) + ".*'\\)"
    return f"(?s)^{pattern}$", category


CATEGORY_RULES = [
    rule
    for name, template in vars(reasons).items()
    if name.isupper() and isinstance(template, str) and (rule := category_rule(template))
]


def reason_category(reason: pl.Expr) -> pl.Expr:
    """A reason without the offending value, for counting (`created_at: cannot read as ...`,
    `opportunity_id: value is not in opportunities`); a reason no template of
    `schemas.reasons` wrote keeps its words but a trailing `(got '…')`."""
    category = reason.str.replace(r"(?s) \(got '.*'\)$", "")
    for pattern, replacement in reversed(CATEGORY_RULES):
        category = (
            pl.when(reason.str.contains(pattern))
            .then(reason.str.replace(pattern, replacement))
            .otherwise(category)
        )
    return category


def reason_counts(table: ValidatedTable) -> list[dict[str, object]]:
    """Quarantine reasons by category, most frequent first."""
    if table.quarantined.height == 0:
        return []
    return (
        table.quarantined.explode("reasons")
        .group_by(reason_category(pl.col("reasons")).alias("reason"))
        .agg(pl.len().alias("rows"))
        .sort(["rows", "reason"], descending=[True, False])
        .to_dicts()
    )
