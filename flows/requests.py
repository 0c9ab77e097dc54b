"""What the flows are asked for: one typed request per flow, as the CLI, the deployments
(prefect.yaml, `funnel serve`) and the tests give it.

A flow's parameters are the request's fields, keyword-only and typed alike (a test holds
them equal), so that an operator can still override one of them (`prefect deployment run
funnel-report/monthly --param period=2026-09`); the flow makes them one request at its start.
Prefect validates the parameters of every run, so a key the flow does not know or a value of
the wrong kind fails a scheduled run at its start, with the key named."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from funnel_reports.schemas.vocabulary import LANGUAGES, SOURCE_CHOICES
from funnel_reports.transforms.periods import GRAINS

PERIOD_HELP = "2024-06, 2024-Q2, last-month or last-quarter"

Language = Literal[LANGUAGES]
Source = Literal[SOURCE_CHOICES]
Grain = Literal[GRAINS]
Amount = Annotated[float, Field(gt=0)]


class ExportRequest(BaseModel):
    """What every report run is asked: the exports, where the reports go, the settings
    (funnel.toml), the language and layout when not the configured or detected ones, and
    whether to mail them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_dir: Path = Field(description="folder of exports")
    out_dir: Path = Field(description="output folder")
    config: Path | None = Field(default=None, description="funnel.toml")
    lang: Language | None = Field(default=None, description="default: the config's")
    source: Source | None = Field(default=None, description="export layout (default: detected)")
    deliver: bool = Field(default=False, description="mail each report ([delivery])")
    resend: bool = Field(default=False, description="with deliver: to every recipient again")
    allow_stale: bool = Field(
        default=False, description="report a period the export does not reach"
    )


class ReportRequest(ExportRequest):
    """One report: a month or a quarter (`funnel run`, the deployments)."""

    period: str = Field(description=PERIOD_HELP)
    target: Amount | None = Field(
        default=None, description="won amount to reach (default: funnel.toml [targets])"
    )


class BackfillRequest(ExportRequest):
    """One report per period from `first` to `last` (`funnel backfill`), and per report of
    the report set with `reports` (`funnel run --reports`)."""

    first: str = Field(description=PERIOD_HELP)
    last: str = Field(description=PERIOD_HELP)
    grain: Grain | None = Field(
        default="month", description="month, quarter or both (None: the grain of first)"
    )
    force: bool = Field(default=False, description="rewrite reports that are current")
    reports: str | None = Field(
        default=None, description="all, or report names ([[reports]] and company)"
    )


def request_of(kind: type[ExportRequest], parameters: dict[str, Any]) -> ExportRequest | None:
    """The request a flow run's parameters make; None when they make none (the run itself
    says why)."""
    try:
        return kind.model_validate(parameters)
    except ValueError:
        return None
