"""The funnel model: the ordered stages a deal moves through, and the settings of a run.

Pure data: loaded from `funnel.toml` by `flows.config`, passed to every transform.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from funnel_reports.schemas.vocabulary import REPORT_OUTPUTS


@dataclass(frozen=True)
class Stage:
    """One funnel stage. `stall_days` is None for stages where a deal never stalls."""

    id: str
    label_en: str
    label_zh: str
    stall_days: int | None = None
    aliases: tuple[str, ...] = ()

    def label(self, lang: str) -> str:
        return self.label_zh if lang == "zh" else self.label_en


@dataclass(frozen=True)
class FunnelModel:
    """The ordered stages; `won_stage` is the first stage that counts as won. `named`: the
    stages were listed in funnel.toml (the report then shows each of them, even one no deal
    was ever seen in)."""

    stages: tuple[Stage, ...]
    won_stage: str = "won"
    named: bool = False

    def __post_init__(self) -> None:
        ids = [s.id for s in self.stages]
        if len(set(ids)) != len(ids):
            raise ValueError(f"stage ids must be unique, got {ids}")
        if self.won_stage not in ids:
            raise ValueError(f"won stage {self.won_stage!r} is not one of the stages {ids}")
        if ids.index(self.won_stage) == 0:
            raise ValueError("the won stage cannot be the first stage")

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.stages]

    @property
    def won_index(self) -> int:
        return self.ids.index(self.won_stage)

    @property
    def open_stages(self) -> tuple[Stage, ...]:
        """Stages before won: where a deal is open and can be lost."""
        return self.stages[: self.won_index]

    @property
    def open_ids(self) -> list[str]:
        return self.ids[: self.won_index]

    @property
    def won_ids(self) -> list[str]:
        """The won stage and every stage after it (post-sale stages count as won)."""
        return self.ids[self.won_index :]

    def index(self, stage_id: str) -> int:
        return self.ids.index(stage_id)

    def stage(self, stage_id: str) -> Stage:
        return self.stages[self.index(stage_id)]

    def shown_ids(self, observed: Collection[str]) -> list[str]:
        """The stages a report shows: every named stage; otherwise the first stage, the won
        stage and each stage some deal was seen in (`observed`)."""
        keep = {self.ids[0], self.won_stage, *observed}
        return [s for s in self.ids if self.named or s in keep]

    def folded(self, shown: Collection[str]) -> FunnelModel:
        """This funnel with only the `shown` stages (the first and the won stage among them)."""
        return replace(self, stages=tuple(s for s in self.stages if s.id in shown))


DEFAULT_STAGES = (
    Stage("lead", "Lead acquired", "线索获取", 7),
    Stage("qualified", "Needs confirmed", "需求确认", 7),
    Stage("proposal", "Proposal & quote", "方案报价", 7),
    Stage("negotiation", "Negotiation", "谈判推进", 7),
    Stage("won", "Signed", "成交签约", None),
    Stage("retention", "After-sales & retention", "售后维护", None),
)


@dataclass(frozen=True)
class ParseOptions:
    """How to read values as people typed them; extra value maps come from funnel.toml.

    `date_order` reads numeric dates like 03/04/24 (DMY, MDY or YMD); None infers it from the
    file's unambiguous dates (a first part over 12 means DMY, a second part over 12 MDY) and
    falls back to `default_date_order`.
    """

    date_order: str | None = None
    default_date_order: str = "DMY"
    decimal: str = "."
    thousands: str = ","
    # "quarantine" (the default) or "keep": a deal closed before it was created keeps its row,
    # with created_at moved back to closed_at (CRMs that stamp created_at on import)
    closed_before_created: str | None = None
    # the text encoding of every CSV file (a Python codec name); None: detected per file
    encoding: str | None = None
    # the dates an export can hold: none before `earliest_date`, none later than
    # `latest_after_export_days` after the export's date (`export_date`, set by the reader:
    # None reads no upper bound)
    earliest_date: date = date(1990, 1, 1)
    latest_after_export_days: int = 366
    export_date: date | None = None
    stages: Mapping[str, str] = field(default_factory=dict)
    statuses: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)
    forecast_categories: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Lookup:
    """A side file of the input folder joined to the opportunities by a key, filling canonical
    columns: `on` is the opportunities' header holding the key, `key` the side file's, and
    `columns` maps a canonical column to the side file's header. `files` are the names the
    side file may have (the first present is used)."""

    name: str
    files: tuple[str, ...]
    on: str
    key: str
    columns: Mapping[str, str]


@dataclass(frozen=True)
class SourceSettings:
    """Which export layout to read: a preset name (or "auto" / "custom"), files chosen per
    canonical table, custom column mappings (canonical column -> input headers), and the
    opportunities' columns holding the date a deal entered a stage (stage -> header), and
    ids built from several headers (id column -> headers, `[source.composite_ids]`)."""

    preset: str = "auto"
    files: Mapping[str, str] = field(default_factory=dict)
    columns: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    stage_dates: Mapping[str, str] = field(default_factory=dict)
    lookups: tuple[Lookup, ...] = ()
    composite_ids: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # what a file may hold before it is read ([source] max_file_bytes, max_rows, max_columns):
    # its apparent size (a workbook's sheet XML uncompressed), its rows after the header, its
    # header's columns; sized for a 10-million-row export on a machine of 24 GiB
    max_file_bytes: int = 4 << 30
    max_rows: int = 20_000_000
    max_columns: int = 2_000


@dataclass(frozen=True)
class ExchangeRate:
    """Units of `currency` per one unit of the rates' base currency, in force from `start`
    (None: always) until the next rate of the same currency starts."""

    currency: str
    per_base: float
    start: date | None = None


@dataclass(frozen=True)
class ExchangeRates:
    """The rates a run converts amounts with, and where they come from (`source`: a file of
    the export, or funnel.toml's [currency.rates]); `base` is the currency of rate 1."""

    source: str
    rates: tuple[ExchangeRate, ...]
    base: str | None = None

    @property
    def currencies(self) -> set[str]:
        return {r.currency for r in self.rates} | ({self.base} if self.base else set())


COMPANY = "company"  # the roll-up report: the whole export


@dataclass(frozen=True)
class ReportSpec:
    """One report of the report set ([[reports]] in funnel.toml): the deals whose segment
    columns hold one of the listed values (all of them for the company roll-up), with the
    report's own title, language, recipients and targets."""

    name: str  # its folder: OUT/<name>/<period>/
    title: str | None = None
    filter: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    lang: str | None = None
    to: tuple[str, ...] = ()
    targets: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricsSettings:
    """What the figures of a period depend on besides the data (`RunSettings.metrics`): the
    funnel, the time zone, the report currency, the window W and the statistical settings;
    never the language, the mail or the export's layout. `partial_history`: the history
    comes from columns of stage dates (`[source.stage_dates]`), which name some stages only."""

    funnel: FunnelModel = field(default_factory=lambda: FunnelModel(DEFAULT_STAGES))
    timezone: str = "UTC"
    currency: str = "USD"
    window_months: int = 12
    immature_open_share: float = 0.30
    smoothing_strength: float = 5.0
    min_resolved_for_p_win: int = 20
    partial_history: bool = False


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs besides the data: funnel, time zone, currency, window, language."""

    funnel: FunnelModel = field(default_factory=lambda: FunnelModel(DEFAULT_STAGES))
    timezone: str = "UTC"
    currency: str = "USD"  # the report currency
    # False when funnel.toml names no currency: an export in one other currency then sets it
    currency_configured: bool = False
    rates: ExchangeRates | None = None  # [currency.rates], else the export's own rates
    parse: ParseOptions = field(default_factory=ParseOptions)
    source: SourceSettings = field(default_factory=SourceSettings)
    targets: Mapping[str, float] = field(default_factory=dict)  # period label -> won amount
    window_months: int = 12
    lang: str = "en"
    # a period ending more than this many days after the export's latest record is refused,
    # unless `allow_stale` (funnel run --allow-stale)
    stale_after_days: int = 7
    allow_stale: bool = False
    immature_open_share: float = 0.30
    smoothing_strength: float = 5.0
    min_resolved_for_p_win: int = 20
    reports: tuple[ReportSpec, ...] = ()  # [[reports]], besides the company roll-up
    outputs: tuple[str, ...] = REPORT_OUTPUTS  # [report] outputs: what a report folder holds

    @property
    def metrics(self) -> MetricsSettings:
        """The settings the figures read."""
        return MetricsSettings(
            funnel=self.funnel,
            timezone=self.timezone,
            currency=self.currency,
            window_months=self.window_months,
            immature_open_share=self.immature_open_share,
            smoothing_strength=self.smoothing_strength,
            min_resolved_for_p_win=self.min_resolved_for_p_win,
            partial_history=bool(self.source.stage_dates),
        )
