"""Write a run's outputs: metrics.json, manifest.json, quarantine CSVs, the reports.

Whole or nothing: a run writes into a hidden sibling folder of `OUT/<period>/` and swaps it in
only once every file is there (`publish_folder`), so a killed run leaves the previous report
as it was, and a first run killed leaves only a hidden `.<period>.partial-*` folder (removed by
the next run).
"""

from __future__ import annotations

import ctypes
import errno
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from funnel_reports.flows.io.workbook import EXCEL_ROWS
from funnel_reports.flows.io.zip_entries import with_entry
from funnel_reports.schemas.metrics_schema import CHECK_ENVIRONMENT, schema_errors
from funnel_reports.transforms.staging.layout import UnusableInputError

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def formula_safe(column: pl.Expr) -> pl.Expr:
    """Text that a spreadsheet will not run as a formula: risky cells get a leading apostrophe."""
    pattern = "^[" + "".join("\\" + c if c in "-+" else c for c in FORMULA_PREFIXES) + "]"
    return pl.when(column.str.contains(pattern)).then(pl.lit("'") + column).otherwise(column)


def formula_safe_name(name: str) -> str:
    """A column name (an export's own header) as `formula_safe` writes a cell."""
    return f"'{name}" if name.startswith(FORMULA_PREFIXES) else name


def formula_safe_text(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` as a spreadsheet may show it: every text column (String, Categorical, Enum) as
    `formula_safe` text, and the column names as `formula_safe_name` writes them."""
    text = [
        c
        for c, dtype in frame.schema.items()
        if dtype.base_type() in (pl.String, pl.Categorical, pl.Enum)
    ]
    return frame.with_columns(
        formula_safe(pl.col(c).cast(pl.String)).alias(c) for c in text
    ).rename(formula_safe_name)


FLOAT_DECIMALS = 6


def json_ready(value: Any) -> Any:
    """Strict, reproducible JSON values: NaN and infinities become null, and floats are rounded
    to 6 decimals, so that the last bits of a parallel sum never change a rerun's file."""
    if isinstance(value, float):
        return round(value, FLOAT_DECIMALS) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def read_json(path: Path) -> Any:
    """The document in a JSON file; None when it is absent or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json(path: Path, document: dict[str, Any]) -> None:
    """The document as JSON, replacing the file in one step (never half-written)."""
    text = json.dumps(json_ready(document), ensure_ascii=False, indent=2, default=str) + "\n"
    replace_file(path, text)


# the process's umask, read once: a temporary file is made 0600, the file it becomes is made
# as any other file the run writes (metrics.json readable by the team like report.pdf)
UMASK = os.umask(0)
os.umask(UMASK)


def replace_file(path: Path, text: str, *, durable: bool = False) -> None:
    """`text` as the file at `path`, replaced in one step with the permissions the umask
    gives a new file; `durable`: on disk (file and folder synced) before returning."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(descriptor, 0o666 & ~UMASK)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    if durable:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


PARTIAL = ".partial-"


def _partial_prefix(final: Path) -> str:
    return f".{final.name}{PARTIAL}"


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_folder(final: Path) -> Path:
    """A new hidden sibling of `final` for one run's outputs (`.<name>.partial-<pid>-<random>`);
    folders that runs no longer alive left behind are removed first."""
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = _partial_prefix(final)
    for abandoned in final.parent.glob(f"{prefix}*"):
        pid = abandoned.name.removeprefix(prefix).split("-", 1)[0]
        if pid.isdigit() and not _is_running(int(pid)):
            shutil.rmtree(abandoned, ignore_errors=True)
    return _new_partial(final)


def _new_partial(final: Path) -> Path:
    """A new hidden sibling named after this process (made like any folder, with the umask)."""
    folder = final.parent / f"{_partial_prefix(final)}{os.getpid()}-{secrets.token_hex(4)}"
    folder.mkdir()
    return folder


RENAME_EXCHANGE = 2
AT_FDCWD = -100


def exchange(first: Path, second: Path) -> bool:
    """Swap two folders in one step (Linux renameat2 RENAME_EXCHANGE); False where the system
    or the file system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE):
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            return False
        raise OSError(code, os.strerror(code), str(first), None, str(second))
    return True


def publish_folder(staging: Path, final: Path) -> None:
    """`staging` becomes `final` in one step; the folder it replaces is then removed.

    Two runs publishing the same folder at once each swap in a complete set: the last one
    stays. Where folders cannot be exchanged in one step, the old folder is moved aside first
    (a kill in that instant leaves the old report in a hidden `.partial-` folder).
    """
    try:
        os.rename(staging, final)  # no report there yet (or an empty folder)
        return
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    if not exchange(staging, final):
        aside = _new_partial(final)
        os.rename(final, aside / final.name)
        os.rename(staging, final)
        staging = aside
    shutil.rmtree(staging, ignore_errors=True)


def store_tables(folder: Path, tables: dict[str, pl.DataFrame]) -> Path:
    """Validated tables as Parquet files in `folder` (for the workers of a fan-out, which read
    them with `stored_tables` instead of receiving a copy per task)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.write_parquet(folder / f"{name}.parquet", statistics=False)
    return folder


def stored_tables(folder: Path) -> dict[str, pl.DataFrame]:
    return {path.stem: pl.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}


def work_folder(out_dir: Path) -> Path:
    """A new hidden folder beside the reports for a run's intermediate files (the caller
    removes it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".work-", dir=out_dir))


def write_quarantine(out_dir: Path, quarantine: dict[str, pl.DataFrame]) -> list[str]:
    """quarantine/<table>.csv for each table with quarantined rows, formula-safe; returns the
    paths."""
    folder = out_dir / "quarantine"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, rows in quarantine.items():
        path = folder / f"{name}.csv"
        if rows.height:
            formula_safe_text(rows).write_csv(path)
            written.append(str(path.relative_to(out_dir)))
        elif path.exists():
            path.unlink()
    return written


def sheet_parts(name: str, frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
    """`frame` as the sheets that hold it: `name`, then `name_2`, ... when it has more rows
    than a sheet (never cut short)."""
    rows = EXCEL_ROWS - 1  # a sheet's rows, less its header's
    if frame.height <= rows:
        return [(name, frame)]
    return [
        (name if i == 0 else f"{name}_{i + 1}", frame.slice(i * rows, rows))
        for i in range((frame.height + rows - 1) // rows)
    ]


def write_workbook(path: Path, tables: dict[str, pl.DataFrame], *, created: datetime) -> None:
    """`tables` as the sheets of one Excel workbook, in their order, each with a bold header
    row that stays in view and a filter: text cells are text (never a formula, number or
    link) and formula-safe as the quarantine CSVs are, so that a sheet saved as CSV runs
    nothing either. Written by rust_xlsxwriter (through rustpy-xlsxwriter), some ten times
    as fast as xlsxwriter (README: What the workbook costs). The same tables make the same
    bytes: the workbook says it was `created` then (the period's end), not when it was
    written, so a rerun's mail is recognised as already sent."""
    import rustpy_xlsxwriter  # only a run that writes the workbook needs it

    sheets = []
    widths = {}
    formats = {}
    for name, frame in tables.items():
        safe = formula_safe_text(frame)
        safe = safe.with_columns(sheet_text(pl.col(pl.String)))
        width, number_formats = column_widths(safe), column_formats(safe)
        for sheet, part in sheet_parts(name, safe):
            sheets.append((sheet, part))
            widths[sheet], formats[sheet] = width, number_formats
    written = path.with_name(f".{path.name}.unstamped")
    try:
        rustpy_xlsxwriter.write_worksheets(
            sheets,
            str(written),
            freeze_panes={"general": {"row": 1, "col": 0}},
            bold_headers=True,
            autofilter={sheet: True for sheet, _ in sheets},
            column_widths=widths,
            column_formats=formats,
        )
        with_entry(written, path, CORE_PROPERTIES, created_at(created))
    finally:
        written.unlink(missing_ok=True)


# the workbook's document properties, where its creation time is
CORE_PROPERTIES = "docProps/core.xml"
CREATION_TIMES = re.compile(rb"(<dcterms:(?:created|modified)\b[^>]*>)[^<]*(?=</dcterms:)")


def created_at(created: datetime) -> Callable[[bytes], bytes]:
    """An edit of docProps/core.xml: the workbook created, and last modified, at `created`
    (in UTC when it has a time zone)."""
    utc = created.astimezone(UTC) if created.tzinfo else created
    stamp = utc.strftime("%Y-%m-%dT%H:%M:%SZ").encode()

    def edit(xml: bytes) -> bytes:
        dated, found = CREATION_TIMES.subn(lambda match: match[1] + stamp, xml)
        if found != 2:
            raise RuntimeError(f"{CORE_PROPERTIES}: {found} creation times, expected 2")
        return dated

    return edit


# the longest text an Excel cell holds; a longer one is cut there, with an ellipsis (its
# Parquet file keeps it whole)
CELL_CHARACTERS = 32_767


def sheet_text(column: pl.Expr) -> pl.Expr:
    """Text that fits an Excel cell: cut at CELL_CHARACTERS, the last one an ellipsis."""
    return (
        pl.when(column.str.len_chars() > CELL_CHARACTERS)
        .then(column.str.slice(0, CELL_CHARACTERS - 1) + pl.lit("\u2026"))
        .otherwise(column)
    )


# how dates and instants show (a float shows as it is: 1091000, 0.16, 38.548)
DATE_FORMATS = {pl.Date: "yyyy-mm-dd", pl.Datetime: "yyyy-mm-dd hh:mm:ss"}


def column_formats(frame: pl.DataFrame) -> dict[str, Any]:
    """The number format of each date and instant column, by its name."""
    import rustpy_xlsxwriter

    return {
        column: rustpy_xlsxwriter.Format().set_num_format(DATE_FORMATS[dtype.base_type()])
        for column, dtype in frame.schema.items()
        if dtype.base_type() in DATE_FORMATS
    }


def column_widths(frame: pl.DataFrame) -> dict[str, float]:
    """Each column's width in characters: its header's or its first 1,000 values' longest
    (8 at least) and 2 more, 60 at most."""
    longest = frame.head(1000).select(
        pl.col(c).cast(pl.String).str.len_chars().max().fill_null(0) for c in frame.columns
    )
    return {
        column: float(min(60, max(8, len(column), longest[column][0] or 0) + 2))
        for column in frame.columns
    }


def write_tables(
    folder: Path, tables: dict[str, pl.DataFrame], outputs: tuple[str, ...], *, created: datetime
) -> list[str]:
    """The deal-level tables in `folder`: `tables/<name>.parquet` each, and `report.xlsx`,
    as `outputs` asks; returns their paths within it."""
    written = []
    if "parquet" in outputs:
        (folder / "tables").mkdir(exist_ok=True)
        for name, frame in tables.items():
            frame.write_parquet(folder / "tables" / f"{name}.parquet")
            written.append(f"tables/{name}.parquet")
    if "xlsx" in outputs:
        write_workbook(folder / "report.xlsx", tables, created=created)
        written.append("report.xlsx")
    return written


class MetricsSchemaError(RuntimeError):
    """A metrics.json that breaks schemas/metrics.schema.json: a bug of this program."""


def check_against_schema(path: Path) -> None:
    """`path` (a metrics.json as written) holds to its schema, else MetricsSchemaError with
    the first place it breaks it."""
    errors = schema_errors(json.loads(path.read_text(encoding="utf-8")))
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise MetricsSchemaError(f"{path}: breaks schemas/metrics.schema.json at {errors[0]}{more}")


def write_report_files(folder: Path, report: Any) -> list[str]:
    """A report's files in `folder` (its staging folder): metrics.json, the quarantine CSVs,
    and what its `outputs` ask of report.html, report.pdf, the tables' Parquet files and
    report.xlsx; returns their paths within it. `report` is a `report_flow.Report`."""
    write_json(folder / "metrics.json", report.metrics)
    if os.environ.get(CHECK_ENVIRONMENT):
        check_against_schema(folder / "metrics.json")
    written = ["metrics.json"]
    if report.html is not None:
        (folder / "report.html").write_text(report.html, encoding="utf-8")
        written.append("report.html")
    if report.pdf is not None:
        (folder / "report.pdf").write_bytes(report.pdf)
        written.append("report.pdf")
    period_end = datetime.fromisoformat(report.metrics["period"]["end"])
    written += write_tables(folder, report.tables, report.outputs, created=period_end)
    return [*written, *write_quarantine(folder, report.quarantine)]


def record_command_time(manifests: list[dict[str, Any]], command: str, started: float) -> None:
    """Add the whole command's wall time to each manifest it wrote.

    `outside_report_flows` is what the report flows' own timings do not see: Python and Prefect
    imports, the temporary Prefect server's start-up, and the parent flow (for demo).
    """
    total = time.perf_counter() - started
    in_flows = sum(m["timings_seconds"]["flow_total"] for m in manifests)
    for manifest in manifests:
        path = Path(manifest["out_dir"]) / "manifest.json"
        document = json.loads(path.read_text(encoding="utf-8"))
        document["timings_seconds"]["command"] = {
            "name": command,
            "total": round(total, 4),
            "outside_report_flows": round(total - in_flows, 4),
        }
        write_json(path, document)


def finished_report(
    report_dir: Path, attach: tuple[str, ...] = ("pdf",)
) -> tuple[dict[str, Any], dict[str, Any], dict[str, bytes]]:
    """The metrics, manifest and the files a mail of the report in `report_dir` carries
    (`attach`: report.pdf, report.xlsx, by file name); stops with one line when the folder
    holds no finished report, or not the file to attach."""
    try:
        metrics = json.loads((report_dir / "metrics.json").read_text(encoding="utf-8"))
        manifest = json.loads((report_dir / "manifest.json").read_text(encoding="utf-8"))
        files = {f"report.{kind}": (report_dir / f"report.{kind}").read_bytes() for kind in attach}
    except FileNotFoundError as error:
        raise UnusableInputError(
            f"{report_dir}: holds no finished report ({Path(error.filename).name} is missing); "
            "write it with funnel run first"
        ) from None
    return metrics, manifest, files
