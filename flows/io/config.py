"""Read `funnel.toml` into `RunSettings`; every key is optional and falls back to the defaults."""

from __future__ import annotations

import re
import tomllib
from datetime import datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows.io.mail import SMTP_SECURITY, DeliverySettings
from schemas.canonical import TABLE_MODELS, column_types
from schemas.vocabulary import (
    CLOSED_BEFORE_CREATED,
    DATE_ORDERS,
    LANGUAGES,
    OPPORTUNITIES,
    SEGMENT_DIMENSIONS,
    SOURCE_CHOICES,
    STATUSES,
    TABLES,
)
from transforms.funnel_model import (
    COMPANY,
    DEFAULT_STAGES,
    FunnelModel,
    Lookup,
    ParseOptions,
    ReportSpec,
    RunSettings,
    SourceSettings,
    Stage,
)
from transforms.periods import Period, PeriodError, parse_period, resolve_period
from transforms.staging.presets import Preset, presets_from_document

# the export layouts ship inside the schemas package
PRESETS_FILE = files("schemas") / "presets.toml"


class ConfigError(Exception):
    """A funnel.toml that cannot be used; the message names the file and the key."""


def _stage(entry: dict[str, Any], path: Path) -> Stage:
    try:
        return Stage(
            id=str(entry["id"]),
            label_en=str(entry.get("label_en", entry["id"])),
            label_zh=str(entry.get("label_zh", entry.get("label_en", entry["id"]))),
            stall_days=entry.get("stall_days"),
            aliases=tuple(str(a) for a in entry.get("aliases", ())),
        )
    except KeyError:
        raise ConfigError(f"{path}: every [[funnel.stages]] entry needs an id") from None


def parse_options(source: dict[str, Any], path: Path | None) -> ParseOptions:
    """[source.parse] knobs and the [source.stages] / [source.status] / [source.channels] maps."""
    knobs = source.get("parse", {})
    order = knobs.get("date_order")
    if order is not None and str(order).upper() not in DATE_ORDERS:
        raise ConfigError(
            f"{path}: [source.parse] date_order {order!r}: expected one of {', '.join(DATE_ORDERS)}"
        )
    statuses = {str(k): str(v) for k, v in source.get("status", {}).items()}
    bad = {v for v in statuses.values() if v not in STATUSES}
    if bad:
        raise ConfigError(
            f"{path}: [source.status] maps to {sorted(bad)}: expected open, won or lost"
        )
    closed = knobs.get("closed_before_created")
    if closed is not None and closed not in CLOSED_BEFORE_CREATED:
        raise ConfigError(
            f"{path}: [source.parse] closed_before_created {closed!r}: expected "
            "'quarantine' or 'keep'"
        )
    return ParseOptions(
        closed_before_created=closed,
        date_order=str(order).upper() if order else None,
        decimal=str(knobs.get("decimal", ".")),
        thousands=str(knobs.get("thousands", ",")),
        stages={str(k): str(v) for k, v in source.get("stages", {}).items()},
        statuses=statuses,
        channels={str(k): str(v) for k, v in source.get("channels", {}).items()},
    )


def source_settings(
    source: dict[str, Any], path: Path | None, forced: str | None
) -> SourceSettings:
    """[source] preset, [source.files] and [source.columns.<table>] (header or list of headers)."""
    preset = forced or str(source.get("preset", "auto"))
    if preset not in SOURCE_CHOICES:
        raise ConfigError(
            f"{path or 'source'}: preset {preset!r} is not one of {', '.join(SOURCE_CHOICES)}"
        )
    columns = {}
    for table, mapping in source.get("columns", {}).items():
        if table not in TABLES:
            raise ConfigError(
                f"{path}: [source.columns.{table}] is not a table; expected one of "
                f"{', '.join(TABLES)}"
            )
        columns[table] = {
            str(k): tuple([v] if isinstance(v, str) else [str(x) for x in v])
            for k, v in mapping.items()
        }
    files = {str(k): str(v) for k, v in source.get("files", {}).items()}
    for table in files:
        if table not in TABLES:
            raise ConfigError(
                f"{path}: [source.files] {table!r} is not a table; expected one of "
                f"{', '.join(TABLES)}"
            )
    stage_dates = source.get("stage_dates", {})
    if not isinstance(stage_dates, dict) or not all(
        isinstance(v, str) and v.strip() for v in stage_dates.values()
    ):
        raise ConfigError(
            f'{path}: [source.stage_dates]: expected stage = "<date column>" lines, for '
            'example qualified = "engage_date"'
        )
    return SourceSettings(
        preset=preset,
        files=files,
        columns=columns,
        stage_dates={str(k): str(v) for k, v in stage_dates.items()},
        lookups=lookups_of(source.get("lookups", {}), f"{path}: [source.lookups"),
    )


def lookups_of(section: dict[str, Any], where: str) -> tuple[Lookup, ...]:
    """[source.lookups.<name>] (and a preset's lookups): file (a name or a list of names), on,
    key, and [source.lookups.<name>.columns] canonical column = the side file's header."""
    lookups = []
    for name, entry in section.items():
        files = entry.get("file") if isinstance(entry, dict) else None
        columns = entry.get("columns", {}) if isinstance(entry, dict) else {}
        fields = [entry.get(k) for k in ("on", "key")] if isinstance(entry, dict) else [None]
        unknown = sorted(set(columns) - set(column_types(TABLE_MODELS[OPPORTUNITIES])))
        if not files or not all(isinstance(f, str) and f for f in fields) or not columns or unknown:
            raise ConfigError(
                f'{where}.{name}]: expected file = "Account.csv", on = "<opportunities '
                f'column>", key = "<its column>" and [source.lookups.{name}.columns] lines '
                "canonical column = its header"
                + (f" ({', '.join(unknown)} is not an opportunities column)" if unknown else "")
            )
        lookups.append(
            Lookup(
                name=str(name),
                files=tuple([files] if isinstance(files, str) else [str(f) for f in files]),
                on=str(entry["on"]),
                key=str(entry["key"]),
                columns={str(k): str(v) for k, v in columns.items()},
            )
        )
    return tuple(lookups)


def targets(section: dict[str, Any], path: Path | None) -> dict[str, float]:
    """[targets]: period label = won amount, e.g. "2024-06" = 500000."""
    result = {}
    for label, amount in section.items():
        try:
            period = parse_period(str(label))
        except PeriodError:
            raise ConfigError(
                f"{path}: [targets] {label!r} is not a period like 2024-06 or 2024-Q2"
            ) from None
        if not isinstance(amount, int | float) or amount <= 0:
            raise ConfigError(
                f"{path}: [targets] {label!r} = {amount!r}: expected a positive amount"
            )
        result[period.label] = float(amount)
    return result


REPORT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def report_specs(entries: list[dict[str, Any]], path: Path | None) -> tuple[ReportSpec, ...]:
    """[[reports]]: each a name (its folder), a filter on segment columns (a value or a list
    of values each), and optionally a title, lang, to (recipients) and target per period."""
    specs: list[ReportSpec] = []
    for entry in entries:
        name = str(entry.get("name", ""))
        where = f"{path}: [[reports]] {name!r}"
        if not REPORT_NAME.match(name) or name == COMPANY:
            raise ConfigError(
                f"{where}: a report needs a name of lower-case letters, digits, '-' or '_' "
                f"(it names its folder), other than {COMPANY!r} (the whole export)"
            )
        if name in {s.name for s in specs}:
            raise ConfigError(f"{where}: two reports have this name")
        raw_filter = entry.get("filter", {})
        unknown = sorted(set(raw_filter) - set(SEGMENT_DIMENSIONS))
        if unknown or not raw_filter:
            raise ConfigError(
                f"{where}: filter {', '.join(unknown) or '(none)'}: expected one or more of "
                f"{', '.join(SEGMENT_DIMENSIONS)}"
            )
        lang = entry.get("lang")
        if lang is not None and lang not in LANGUAGES:
            raise ConfigError(f"{where}: lang {lang!r}: expected 'en' or 'zh'")
        specs.append(
            ReportSpec(
                name=name,
                title=entry.get("title"),
                filter={
                    column: tuple(str(v) for v in ([value] if isinstance(value, str) else value))
                    for column, value in raw_filter.items()
                },
                lang=lang,
                to=tuple(str(a) for a in entry.get("to", ())),
                targets=targets(entry.get("target", {}), path),
            )
        )
    return tuple(specs)


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
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: is not valid TOML ({error})") from None


def delivery_from_toml(path: Path | None) -> DeliverySettings:
    """[delivery]: the SMTP server, the sender and the recipients. The password is never read
    from the file: it comes from FUNNEL_SMTP_PASSWORD or a Prefect Secret block."""
    section = read_toml(path).get("delivery")
    if not section:
        raise ConfigError(
            f"{path or 'funnel.toml'}: has no [delivery] section to send reports with"
        )
    if "password" in section:
        raise ConfigError(
            f"{path}: [delivery] password: secrets never go in a file; set FUNNEL_SMTP_PASSWORD "
            "or name a Prefect Secret block in password_block"
        )
    security = str(section.get("security", "starttls"))
    if security not in SMTP_SECURITY:
        raise ConfigError(
            f"{path}: [delivery] security {security!r}: expected one of {', '.join(SMTP_SECURITY)}"
        )
    missing = [key for key in ("smtp_host", "sender", "to") if not section.get(key)]
    if missing:
        raise ConfigError(f"{path}: [delivery] needs {', '.join(missing)}")
    return DeliverySettings(
        smtp_host=str(section["smtp_host"]),
        smtp_port=int(section.get("smtp_port", {"ssl": 465}.get(security, 587))),
        security=security,
        username=section.get("username"),
        password_block=section.get("password_block"),
        sender=str(section["sender"]),
        to=tuple(str(a) for a in section["to"]),
        cc=tuple(str(a) for a in section.get("cc", ())),
        ops=tuple(str(a) for a in section.get("ops", ())),
        timeout_seconds=float(section.get("timeout_seconds", 30)),
        ca_file=section.get("ca_file"),
        retry_delays_seconds=tuple(
            float(d)
            for d in section.get("retry_delays_seconds", DeliverySettings.retry_delays_seconds)
        ),
    )


def settings_from_toml(
    path: Path | None, *, lang: str | None = None, preset: str | None = None
) -> RunSettings:
    """Settings from a funnel.toml (None: all defaults); `lang` overrides [report].lang and
    `preset` overrides [source].preset."""
    document = read_toml(path)
    funnel_doc = document.get("funnel", {})
    source = document.get("source", {})
    report = document.get("report", {})
    stages = (
        tuple(_stage(s, path) for s in funnel_doc["stages"])
        if "stages" in funnel_doc
        else DEFAULT_STAGES
    )
    defaults = RunSettings()
    try:
        funnel = FunnelModel(
            stages, won_stage=funnel_doc.get("won_stage", "won"), named="stages" in funnel_doc
        )
    except ValueError as error:
        raise ConfigError(f"{path}: {error}") from None
    timezone = source.get("timezone", defaults.timezone)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{path}: [source] timezone {timezone!r} is not a known time zone "
            "(expected an IANA name such as 'UTC' or 'Asia/Shanghai')"
        ) from None
    chosen_lang = lang or report.get("lang", defaults.lang)
    if chosen_lang not in LANGUAGES:
        raise ConfigError(f"report language {chosen_lang!r}: expected 'en' or 'zh'")
    return RunSettings(
        funnel=funnel,
        timezone=timezone,
        parse=parse_options(source, path),
        source=source_settings(source, path, preset),
        targets=targets(document.get("targets", {}), path),
        currency=source.get("currency", defaults.currency),
        window_months=int(funnel_doc.get("window_months", defaults.window_months)),
        lang=chosen_lang,
        reports=report_specs(document.get("reports", []), path),
    )


def period_from_label(label: str, timezone: str) -> Period:
    """The period a label names, `last-month` and `last-quarter` as of today in `timezone`."""
    today = datetime.now(ZoneInfo(timezone)).date()
    return resolve_period(label, today=today, timezone=timezone)


@cache
def load_presets() -> dict[str, Preset]:
    """The known export layouts: canonical (the data contract itself) and schemas/presets.toml."""
    return presets_from_document(tomllib.loads(PRESETS_FILE.read_text(encoding="utf-8")))
