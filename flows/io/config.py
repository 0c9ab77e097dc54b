"""Read `funnel.toml` into `RunSettings`; every key is optional and falls back to the defaults."""

from __future__ import annotations

import codecs
import difflib
import re
import tomllib
from collections.abc import Collection
from datetime import date, datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from funnel_reports.flows.io.mail import SMTP_SECURITY, DeliverySettings, parse_address
from funnel_reports.schemas.canonical import TABLE_MODELS, column_types
from funnel_reports.schemas.vocabulary import (
    ATTACHMENTS,
    AUTO,
    CLOSED_BEFORE_CREATED,
    COMPOSITE_ID_COLUMNS,
    COMPOSITE_ID_TABLES,
    DATE_ORDERS,
    FORECAST_CATEGORIES,
    LANGUAGES,
    LOST,
    OPPORTUNITIES,
    REPORT_OUTPUTS,
    SEGMENT_DIMENSIONS,
    SOURCE_CHOICES,
    STATUSES,
    TABLES,
)
from funnel_reports.transforms.funnel_model import (
    COMPANY,
    DEFAULT_STAGES,
    ExchangeRate,
    ExchangeRates,
    FunnelModel,
    Lookup,
    ParseOptions,
    ReportSpec,
    RunSettings,
    SourceSettings,
    Stage,
)
from funnel_reports.transforms.periods import Period, PeriodError, parse_period, resolve_period
from funnel_reports.transforms.staging.presets import Preset, presets_from_document

# the export layouts ship inside the schemas package
PRESETS_FILE = files("funnel_reports.schemas") / "presets.toml"


class ConfigError(Exception):
    """A funnel.toml that cannot be used; the message names the file and the key."""


# funnel.toml as typed models: every section refuses keys it does not know and values of the
# wrong type, so a typo stops the run instead of being obeyed as silence
class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


NonBlank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Headers = str | list[str]  # one input header, or several: the first non-blank one wins per row
Table = Literal[TABLES]
Segment = Literal[SEGMENT_DIMENSIONS]


def _iso_date(value: Any) -> Any:
    """A TOML date (`1990-01-01`) as it is, or the same written as a string."""
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("expected a date such as 1990-01-01") from None
    return value


class ParseSection(Section):
    """[source.parse]: how to read ambiguous values."""

    date_order: Annotated[str | None, AfterValidator(lambda v: v and v.upper())] = None
    decimal: str = "."
    thousands: str = ","
    closed_before_created: Literal[CLOSED_BEFORE_CREATED] | None = None
    encoding: str | None = None  # of every CSV file; None: detected per file
    # the dates an export can hold: from earliest_date to its date plus this many days
    earliest_date: Annotated[date, BeforeValidator(_iso_date)] = ParseOptions.earliest_date
    latest_after_export_days: Annotated[int, Field(ge=0, le=36_600)] = (
        ParseOptions.latest_after_export_days
    )

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str | None) -> str | None:
        try:
            known = value is None or codecs.lookup(value)._is_text_encoding
        except LookupError:
            known = False
        if not known:
            raise ValueError(
                "not a known encoding; expected a Python codec name such as latin-1, cp1252, "
                "gb18030 or utf-16"
            )
        return value

    @field_validator("date_order")
    @classmethod
    def _known_order(cls, value: str | None) -> str | None:
        if value is not None and value not in DATE_ORDERS:
            raise ValueError(f"expected one of {', '.join(DATE_ORDERS)}")
        return value


class LookupSection(Section):
    """[source.lookups.<name>]: a side file joined to the opportunities by a key."""

    file: Headers
    on: str
    key: str
    columns: dict[str, str]

    @field_validator("columns")
    @classmethod
    def _opportunity_columns(cls, columns: dict[str, str]) -> dict[str, str]:
        known = column_types(TABLE_MODELS[OPPORTUNITIES])
        unknown = [c for c in columns if c not in known]
        if unknown or not columns:
            hint = nearest_hint(unknown[0], known) if unknown else ""
            raise ValueError(
                f"{', '.join(unknown) or '(none)'}: expected lines canonical opportunities "
                f"column = the side file's header{hint}"
            )
        return columns


class SourceSection(Section):
    """[source]: which export layout, where, and how to read it."""

    preset: Literal[SOURCE_CHOICES] = AUTO
    timezone: str = "UTC"
    currency: str = "USD"
    parse: ParseSection = ParseSection()
    files: dict[Table, str] = {}
    columns: dict[Table, dict[str, Headers]] = {}
    stages: dict[str, str] = {}
    status: dict[str, Literal[STATUSES]] = {}
    channels: dict[str, str] = {}
    forecast_categories: dict[str, Literal[FORECAST_CATEGORIES]] = {}
    stage_dates: dict[
        str, Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    ] = {}
    lookups: dict[str, LookupSection] = {}
    # an id column built from several headers, joined (not the first non-blank of a list)
    composite_ids: dict[Literal[COMPOSITE_ID_COLUMNS], list[NonBlank]] = {}
    # what a file may hold, checked before it is read
    max_file_bytes: Annotated[int, Field(ge=1)] = SourceSettings.max_file_bytes
    max_rows: Annotated[int, Field(ge=1)] = SourceSettings.max_rows
    max_columns: Annotated[int, Field(ge=1)] = SourceSettings.max_columns

    @field_validator("composite_ids")
    @classmethod
    def _several_headers(cls, ids: dict[str, list[str]]) -> dict[str, list[str]]:
        for column, parts in ids.items():
            if len(parts) < 2:
                raise ValueError(
                    f"{column}: expected two or more headers to join (one header goes under "
                    f"[source.columns.{COMPOSITE_ID_TABLES[column]}])"
                )
        return ids

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, code: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise ValueError("expected an ISO 4217 code of three capital letters, such as USD")
        return code

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, timezone: str) -> str:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                "not a known time zone (expected an IANA name such as 'UTC' or 'Asia/Shanghai')"
            ) from None
        return timezone


class StageSection(Section):
    """One [[funnel.stages]] entry."""

    id: Annotated[str, StringConstraints(min_length=1)]
    label_en: str | None = None
    label_zh: str | None = None
    stall_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    aliases: list[str] = []


class FunnelSection(Section):
    """[funnel]: the stages, the won stage and the trailing window."""

    window_months: Annotated[int, Field(ge=1, le=120)] = RunSettings.window_months
    won_stage: str = "won"
    stages: Annotated[list[StageSection], Field(min_length=2, max_length=10)] | None = None


def _once_each(values: list[str]) -> list[str]:
    if len(set(values)) < len(values):
        raise ValueError(f"{values}: each at most once")
    return values


class ReportSection(Section):
    """[report]: the report language, how old an export may be for a period, and what a
    report folder holds besides metrics.json and manifest.json."""

    lang: Literal[LANGUAGES] = "en"
    stale_after_days: Annotated[int, Field(ge=0, le=3650)] = RunSettings.stale_after_days
    outputs: Annotated[list[Literal[REPORT_OUTPUTS]], AfterValidator(_once_each)] = list(
        REPORT_OUTPUTS
    )


# a target is a won amount to reach: finite and above zero (a target of 0 has nothing to
# decompose: leave the period out instead)
PeriodTargets = dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]]


def _one_address(text: str) -> str:
    parse_address(text)  # ValueError: not one address
    return text


EmailAddress = Annotated[str, AfterValidator(_one_address)]  # `"Doe, Jane" <jane@…>` is one


def _period_labels(targets: dict[str, float]) -> dict[str, float]:
    """[targets] keys are periods like 2024-06 or 2024-Q2 (normalised to their labels)."""
    result = {}
    for label, amount in targets.items():
        try:
            result[parse_period(label).label] = amount
        except PeriodError:
            raise ValueError(f"{label!r} is not a period like 2024-06 or 2024-Q2") from None
    return result


class ReportSetEntry(Section):
    """One [[reports]] entry: a report of the deals whose segment columns hold listed values."""

    name: str
    title: str | None = None
    filter: dict[Segment, Headers]
    lang: Literal[LANGUAGES] | None = None
    to: list[EmailAddress] = []
    target: Annotated[PeriodTargets, AfterValidator(_period_labels)] = {}

    @field_validator("name")
    @classmethod
    def _folder_name(cls, name: str) -> str:
        if not REPORT_NAME.match(name) or name == COMPANY:
            raise ValueError(
                "a report needs a name of lower-case letters, digits, '-' or '_' (it names its "
                f"folder), other than {COMPANY!r} (the whole export)"
            )
        return name

    @field_validator("filter")
    @classmethod
    def _some_filter(cls, value: dict[str, Headers]) -> dict[str, Headers]:
        if not value:
            raise ValueError(f"(none): expected one or more of {', '.join(SEGMENT_DIMENSIONS)}")
        return value


class DeliverySection(Section):
    """[delivery]: the SMTP server, the sender and the recipients (never the password)."""

    smtp_host: Annotated[str, StringConstraints(min_length=1)]
    smtp_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    security: Literal[SMTP_SECURITY] = "starttls"
    username: str | None = None
    password_block: str | None = None
    sender: EmailAddress
    to: Annotated[list[EmailAddress], Field(min_length=1)]
    cc: list[EmailAddress] = []
    ops: list[EmailAddress] = []
    timeout_seconds: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] = 30.0
    ca_file: str | None = None
    retry_delays_seconds: list[Annotated[float, Field(ge=0, le=3600, allow_inf_nan=False)]] = list(
        DeliverySettings.retry_delays_seconds
    )
    attach: Annotated[
        list[Literal[ATTACHMENTS]], Field(min_length=1), AfterValidator(_once_each)
    ] = list(DeliverySettings.attach)

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and "password" in data:
            raise ValueError(
                "password: secrets never go in a file; set FUNNEL_SMTP_PASSWORD or name a "
                "Prefect Secret block in password_block"
            )
        return data


class CurrencySection(Section):
    """[currency]: exchange rates, each as units of the currency per one unit of the report
    currency (`MXN = 17.25`: 17.25 pesos make one US dollar in a USD report)."""

    rates: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = {}

    @field_validator("rates")
    @classmethod
    def _codes(cls, rates: dict[str, float]) -> dict[str, float]:
        bad = [code for code in rates if not re.fullmatch(r"[A-Z]{3}", code)]
        if bad:
            raise ValueError(f"{bad[0]!r}: expected ISO 4217 codes of three capital letters")
        return rates


class FunnelToml(Section):
    """A whole funnel.toml; every section and key is optional."""

    source: SourceSection = SourceSection()
    funnel: FunnelSection = FunnelSection()
    report: ReportSection = ReportSection()
    targets: Annotated[PeriodTargets, AfterValidator(_period_labels)] = {}
    reports: list[ReportSetEntry] = []
    delivery: DeliverySection | None = None
    currency: CurrencySection = CurrencySection()

    @field_validator("reports")
    @classmethod
    def _distinct_names(cls, reports: list[ReportSetEntry]) -> list[ReportSetEntry]:
        names = [r.name for r in reports]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two reports have the name {twice[0]!r}")
        return reports

    @model_validator(mode="after")
    def _attach_what_is_written(self) -> FunnelToml:
        """A mail carries files of the report folder: each attachment must be written."""
        unwritten = (
            [a for a in self.delivery.attach if a not in self.report.outputs]
            if (self.delivery)
            else []
        )
        if unwritten:
            raise ValueError(
                f"[delivery] attach names {unwritten[0]!r}, which [report] outputs does not "
                f"write ({', '.join(self.report.outputs) or 'nothing'}): add it there"
            )
        return self


def nearest_hint(word: str, known: Collection[str], typed: str | None = None) -> str:
    """`; did you mean currency?` when a known word is close to `word` (as `typed`), else ``."""
    close = difflib.get_close_matches(typed or word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


def section_model(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model of the section at `loc` in a FunnelToml (None where it is not a model)."""
    model: Any = FunnelToml
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        model = next(
            (
                t
                for t in _leaf_types(field.annotation)
                if isinstance(t, type) and issubclass(t, BaseModel)
            ),
            None,
        )
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _leaf_types(annotation: Any) -> list[Any]:
    """The types inside an annotation (Optional, list, dict values, Annotated unwrapped)."""
    args = get_args(annotation)
    if not args:
        return [annotation]
    return [leaf for arg in args for leaf in _leaf_types(arg)]


def section_name(loc: tuple[Any, ...], document: dict[str, Any]) -> str:
    """`[source.parse]`, `[[funnel.stages]] #3`, `[[reports]] 'east'` or `top level` for the
    location of a section."""
    if not loc:
        return "top level"
    if not any(isinstance(p, int) for p in loc):
        brackets = 2 if isinstance(document.get(loc[0]), list) and len(loc) == 1 else 1
        return "[" * brackets + ".".join(str(p) for p in loc) + "]" * brackets
    at = next(i for i, p in enumerate(loc) if isinstance(p, int))
    table, index = ".".join(str(p) for p in loc[:at]), loc[at]
    entries = document.get(table, []) if at == 1 else []
    name = entries[index].get("name") if table == "reports" and index < len(entries) else None
    named = f"[[{table}]] {name!r}" if isinstance(name, str) else f"[[{table}]] #{index + 1}"
    within = ".".join(str(p) for p in loc[at + 1 :])
    return f"{named} {within}" if within else named


def table_depth(loc: tuple[Any, ...], document: dict[str, Any]) -> int:
    """How many parts of `loc` name TOML tables (and array entries) of the document: the rest
    is the key."""
    depth, value = 0, document
    for i, part in enumerate(loc):
        is_key = isinstance(value, dict) and part in value
        is_entry = isinstance(value, list) and isinstance(part, int) and part < len(value)
        if not (is_key or is_entry):
            break
        value = value[part]
        if isinstance(value, dict | list):
            depth = i + 1
    return depth


def settings_error(error: ValidationError, path: Path | None, document: dict[str, Any]) -> str:
    """The first mistake of a funnel.toml as one line: the file, the section, the key, what
    was found and what is expected (the nearest valid key for an unknown one)."""
    errors = error.errors()
    first, more = errors[0], len(errors) - 1
    loc = tuple(first["loc"])
    where = str(path or "funnel.toml")
    tail = f" (and {more} more mistake{'s' if more > 1 else ''})" if more else ""
    if first["type"] == "extra_forbidden":
        model = section_model(loc[:-1])
        known = list(model.model_fields) if model else []
        if len(loc) == 1:  # a section of its own
            hint = nearest_hint(str(loc[0]), [f"[{k}]" for k in known], f"[{loc[0]}]")
            return f"{where}: [{loc[0]}]: unknown section{hint or '; expected ' + ', '.join(known)}"
        hint = nearest_hint(str(loc[-1]), known) or f"; expected one of {', '.join(known)}"
        return f"{where}: {section_name(loc[:-1], document)} {loc[-1]}: unknown key{hint}{tail}"
    if loc and loc[-1] == "[key]":  # a map's key outside its vocabulary (a table, a segment)
        expected = re.findall(r"'([^']+)'", str(first.get("ctx", {}).get("expected", "")))
        hint = nearest_hint(str(loc[-2]), expected) or f"; expected one of {', '.join(expected)}"
        return f"{where}: {section_name(loc[:-2], document)} {loc[-2]}: unknown name{hint}{tail}"
    if first["type"] == "missing":
        return f"{where}: {section_name(loc[:-1], document)} needs {loc[-1]}{tail}"
    depth = table_depth(loc, document)
    section = section_name(loc[:depth], document)
    key = ".".join(str(p) for p in loc[depth:])
    message = str(first["msg"]).removeprefix("Value error, ")
    if not key:
        return f"{where}: {section}: {message}{tail}"
    scalar = isinstance(first.get("input"), str | int | float)
    found = f" = {first['input']!r}" if scalar else ""
    return f"{where}: {section} {key}{found}: {message}{tail}"


def read_settings(path: Path | None) -> FunnelToml:
    """funnel.toml as typed sections; a mistake is a ConfigError of one line."""
    document = read_toml(path)
    try:
        return FunnelToml.model_validate(document)
    except ValidationError as error:
        raise ConfigError(settings_error(error, path, document)) from None


def parse_options(parse: ParseSection, source: SourceSection) -> ParseOptions:
    """[source.parse] knobs and the [source.stages] / [source.status] / [source.channels] /
    [source.forecast_categories] maps."""
    return ParseOptions(
        closed_before_created=parse.closed_before_created,
        date_order=parse.date_order,
        encoding=parse.encoding,
        decimal=parse.decimal,
        thousands=parse.thousands,
        earliest_date=parse.earliest_date,
        latest_after_export_days=parse.latest_after_export_days,
        stages=dict(source.stages),
        statuses=dict(source.status),
        channels=dict(source.channels),
        forecast_categories=dict(source.forecast_categories),
    )


def headers(value: Headers) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def source_settings(source: SourceSection, forced: str | None) -> SourceSettings:
    """[source] preset, [source.files], [source.columns.<table>], stage dates and lookups."""
    return SourceSettings(
        preset=forced or source.preset,
        files=dict(source.files),
        columns={
            table: {column: headers(h) for column, h in mapping.items()}
            for table, mapping in source.columns.items()
        },
        stage_dates=dict(source.stage_dates),
        lookups=tuple(
            Lookup(
                name=name,
                files=headers(entry.file),
                on=entry.on,
                key=entry.key,
                columns=dict(entry.columns),
            )
            for name, entry in source.lookups.items()
        ),
        composite_ids={column: tuple(h) for column, h in source.composite_ids.items()},
        max_file_bytes=source.max_file_bytes,
        max_rows=source.max_rows,
        max_columns=source.max_columns,
    )


def configured_rates(section: CurrencySection, report_currency: str) -> ExchangeRates | None:
    """[currency.rates] as the run's rates (None when there are none): per one unit of the
    report currency, its base."""
    if not section.rates:
        return None
    return ExchangeRates(
        source="funnel.toml [currency.rates]",
        rates=tuple(ExchangeRate(code, rate) for code, rate in sorted(section.rates.items())),
        base=report_currency,
    )


REPORT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


# a report title and a stage label are cut to these lengths (on one line): a title of
# megabytes renders like any other
TITLE_LIMIT, LABEL_LIMIT = 80, 40


def clipped(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    line = " ".join(text[: limit * 4].split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def report_specs(entries: list[ReportSetEntry]) -> tuple[ReportSpec, ...]:
    """[[reports]]: each a name (its folder), a filter on segment columns (a value or a list
    of values each), and optionally a title, lang, to (recipients) and target per period."""
    return tuple(
        ReportSpec(
            name=entry.name,
            title=clipped(entry.title, TITLE_LIMIT) if entry.title else None,
            filter={column: headers(value) for column, value in entry.filter.items()},
            lang=entry.lang,
            to=tuple(entry.to),
            targets=dict(entry.target),
        )
        for entry in entries
    )


def chosen_reports(settings: RunSettings, reports: str) -> list[ReportSpec]:
    """`--reports all` (the company roll-up and every [[reports]] entry) or a comma-separated
    list of report names."""
    known = {COMPANY: ReportSpec(COMPANY), **{spec.name: spec for spec in settings.reports}}
    if reports.strip() == "all":
        return list(known.values())
    names = [name.strip() for name in reports.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ConfigError(
            f"--reports {reports}: {', '.join(unknown) or 'no name'} is not a report; expected "
            f"all, or names among {', '.join(known)} ([[reports]] in funnel.toml)"
        )
    return [known[name] for name in dict.fromkeys(names)]


def read_toml(path: Path | None) -> dict[str, Any]:
    """The document of a funnel.toml; empty for None."""
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not UTF-8 text (TOML files are UTF-8)") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: is not valid TOML ({error})") from None


def delivery_from_toml(path: Path | None) -> DeliverySettings:
    """[delivery]: the SMTP server, the sender and the recipients. The password is never read
    from the file: it comes from FUNNEL_SMTP_PASSWORD or a Prefect Secret block."""
    section = read_settings(path).delivery
    if section is None:
        raise ConfigError(
            f"{path or 'funnel.toml'}: has no [delivery] section to send reports with"
        )
    return DeliverySettings(
        smtp_host=section.smtp_host,
        smtp_port=section.smtp_port or {"ssl": 465}.get(section.security, 587),
        security=section.security,
        username=section.username,
        password_block=section.password_block,
        sender=section.sender,
        to=tuple(section.to),
        cc=tuple(section.cc),
        ops=tuple(section.ops),
        timeout_seconds=section.timeout_seconds,
        ca_file=section.ca_file,
        retry_delays_seconds=tuple(section.retry_delays_seconds),
        attach=tuple(section.attach),
    )


def settings_from_toml(
    path: Path | None, *, lang: str | None = None, preset: str | None = None
) -> RunSettings:
    """Settings from a funnel.toml (None: all defaults); `lang` overrides [report].lang and
    `preset` overrides [source].preset."""
    document = read_settings(path)
    funnel_doc, source = document.funnel, document.source
    stages = (
        tuple(
            Stage(
                id=s.id,
                label_en=clipped(s.label_en or s.id, LABEL_LIMIT),
                label_zh=clipped(s.label_zh or s.label_en or s.id, LABEL_LIMIT),
                stall_days=s.stall_days,
                aliases=tuple(s.aliases),
            )
            for s in funnel_doc.stages
        )
        if funnel_doc.stages is not None
        else DEFAULT_STAGES
    )
    try:
        funnel = FunnelModel(
            stages, won_stage=funnel_doc.won_stage, named=funnel_doc.stages is not None
        )
    except ValueError as error:
        raise ConfigError(f"{path}: [funnel] {error}") from None
    unknown = [(v, s) for v, s in source.stages.items() if s not in (*funnel.ids, LOST)]
    if unknown:
        value, stage = unknown[0]
        raise ConfigError(
            f"{path}: [source.stages] {value!r} = {stage!r}: this funnel has no stage {stage!r};"
            f" expected one of {', '.join(funnel.ids)} or lost"
        )
    chosen_lang = lang or document.report.lang
    if chosen_lang not in LANGUAGES:
        raise ConfigError(f"report language {chosen_lang!r}: expected 'en' or 'zh'")
    return RunSettings(
        funnel=funnel,
        timezone=source.timezone,
        parse=parse_options(source.parse, source),
        source=source_settings(source, preset),
        targets=dict(document.targets),
        currency=source.currency,
        currency_configured="currency" in source.model_fields_set,
        rates=configured_rates(document.currency, source.currency),
        window_months=funnel_doc.window_months,
        lang=chosen_lang,
        reports=report_specs(document.reports),
        stale_after_days=document.report.stale_after_days,
        outputs=tuple(document.report.outputs),
    )


def period_from_label(label: str, timezone: str) -> Period:
    """The period a label names, `last-month` and `last-quarter` as of today in `timezone`."""
    today = datetime.now(ZoneInfo(timezone)).date()
    return resolve_period(label, today=today, timezone=timezone)


@cache
def load_presets() -> dict[str, Preset]:
    """The known export layouts: canonical (the data contract itself) and schemas/presets.toml."""
    return presets_from_document(tomllib.loads(PRESETS_FILE.read_text(encoding="utf-8")))
