"""What the `funnel` command says on the console, in English: the summary of a backfill or
a report set, and `funnel validate`'s report. The CLI prints these lines; the words are
here, beside the report's and the mail's (narrative.py, mail.py)."""

from __future__ import annotations

import re
from typing import Any

from funnel_reports.report_templates.narrative import stage_mapping_line
from funnel_reports.schemas.vocabulary import FAILED, REPORT_STATUSES


def backfill_lines(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The summary of `funnel backfill` and `funnel run --reports`: a line per report and
    period with its status and headline figures, and the counts; and each failure's one line
    (for standard error)."""

    def amount(value: float | None) -> str:
        return "" if value is None else f"{value:,.0f}"

    def rate(value: float | None) -> str:
        return "" if value is None else f"{value:.1%}"

    width = max((len(r["report"]) for r in rows if r["report"]), default=0)
    width = max(width, len("report")) if width else 0
    report = (lambda name: f"{name or '':<{width}} ") if width else (lambda name: "")
    lines = [
        f"{report('report')}{'period':<9} {'status':<8} {'won amount':>14} {'win rate':>9} "
        f"{'seconds':>8}"
    ]
    lines += [
        f"{report(row['report'])}{row['period']:<9} {row['status']:<8} "
        f"{amount(row['won_amount']):>14} {rate(row['win_rate']):>9} {row['seconds']:>8.1f}"
        for row in rows
    ]
    counts = {s: sum(r["status"] == s for r in rows) for s in REPORT_STATUSES}
    lines.append(", ".join(f"{n} {status}" for status, n in counts.items()))
    failures = [
        f"funnel: {row['report'] + ' ' if row['report'] else ''}{row['period']}: {row['error']}"
        for row in rows
        if row["status"] == FAILED
    ]
    return lines, failures


def lookalike_sentence(lookalike: dict[str, Any]) -> str:
    """Why a file that looks like a table is not used."""
    by = "its name" if lookalike["by"] == "name" else "its headers"
    why = (
        f"it lacks {', '.join(lookalike['missing'])}"
        if lookalike["missing"]
        else f"{lookalike['table']} come from {lookalike['used_instead']}"
    )
    return f"{lookalike['file']} looks like {lookalike['table']} by {by} but is not used: {why}"


UNKNOWN_STAGES_SHOWN = 10  # per table, most rows first; metrics.json lists them all


def on_one_line(text: str) -> str:
    """A reason as one line of the summary: a line break in a value shown as ⏎."""
    return text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎")


CERTAIN_ENCODINGS = ("utf-8", "utf-8-sig", "utf-16")  # the file says so (BOM, or valid UTF-8)


def encoding_origin(entry: dict[str, Any], summary: dict[str, Any]) -> str:
    """How a file's encoding was chosen, when not by the file itself."""
    if summary["encoding_set"]:
        return " (set in [source.parse] encoding)"
    return "" if entry["encoding"] in CERTAIN_ENCODINGS else " (detected)"


SNAPSHOT_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})/(.+)$")
EXAMPLES_SHOWN = 2


def snapshot_files_merged(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-file entries of `funnel validate` with the files of dated snapshot folders taken
    together, one entry per table and file name (`2024-02-01 … 2024-07-01/deals.csv`): counts
    summed, reasons merged by category, examples naming their file; entries of no rows left
    out (every deal's latest row is its opportunity: older snapshots hold none)."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    kept: list[dict[str, Any]] = []
    for entry in files:
        match = SNAPSHOT_FILE.match(entry["file"])
        if not match:
            kept.append(entry)
            continue
        folder, name = match.groups()
        group = merged.get((entry["table"], name))
        if group is None:
            group = merged[(entry["table"], name)] = {
                **entry,
                "folders": [],
                "reasons": [],
                "rows_read": 0,
                "rows_valid": 0,
                "rows_quarantined": 0,
            }
            kept.append(group)
        group["folders"].append(folder)
        for key in ("rows_read", "rows_valid", "rows_quarantined"):
            group[key] += entry[key]
        for reason in entry["reasons"]:
            same = next((r for r in group["reasons"] if r["category"] == reason["category"]), None)
            examples = [
                {**e, "_line": f"{folder}/{name} line {e['_line']}"} for e in reason["examples"]
            ]
            if same is None:
                group["reasons"].append({**reason, "examples": examples})
            else:
                same["rows"] += reason["rows"]
                same["examples"] = (same["examples"] + examples)[:EXAMPLES_SHOWN]
    for group in merged.values():
        first, last = min(group["folders"]), max(group["folders"])
        name = SNAPSHOT_FILE.match(group["file"]).group(2)  # type: ignore[union-attr]
        count = len(group["folders"])
        group["file"] = f"{first} … {last}/{name}" if count > 1 else f"{first}/{name}"
        group["table"] = f"{group['table']}, {count} snapshot{'s' if count > 1 else ''}"
        group["reasons"].sort(key=lambda r: (-r["rows"], r["category"]))
    return [entry for entry in kept if entry["rows_read"] or "folders" not in entry]


def validation_lines(summary: dict[str, Any]) -> list[str]:
    """`funnel validate`'s report: the layout, files not used, the side files joined and
    stage values to map (`layout_lines`), and per file its counts and top reasons with
    example lines (`file_lines`)."""
    return layout_lines(summary) + [
        line
        for entry in snapshot_files_merged(summary["files"])
        for line in file_lines(entry, summary)
    ]


def layout_lines(summary: dict[str, Any]) -> list[str]:
    """The layout, the files not used and why, the side files joined, the stage values to
    map (each with the funnel.toml line that maps it)."""
    lines = [f"source: {summary['source']}"]
    if summary["ignored"]:
        lines.append(f"not used: {', '.join(summary['ignored'])}")
    for lookalike in summary["lookalikes"]:
        lines.append(f"warning: {lookalike_sentence(lookalike)}")
    for lookup in summary["lookups"]:
        filled = ", ".join(f"{column} {n}" for column, n in lookup["filled"].items())
        lines.append(
            f"{lookup['file']} joined on {lookup['on']}: {lookup['matched']} matched, "
            f"{lookup['unmatched']} matching nothing, {lookup['without_key']} without a key "
            f"(filled: {filled})"
        )
    for table, unknowns in summary["unknown_stages"].items():
        for unknown in unknowns[:UNKNOWN_STAGES_SHOWN]:
            lines.append(
                f"unknown stage in {table}: {unknown['value']!r} ({unknown['rows']} "
                f"row{'s' if unknown['rows'] != 1 else ''} quarantined); to map it, add under "
                "[source.stages] in funnel.toml: "
                f"{stage_mapping_line(unknown)}"
            )
        if more := unknowns[UNKNOWN_STAGES_SHOWN:]:
            rows = sum(unknown["rows"] for unknown in more)
            lines.append(
                f"… and {len(more)} more unknown stage values in {table} ({rows} "
                f"row{'s' if rows != 1 else ''} quarantined)"
            )
    return lines


def file_lines(entry: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    """A file's counts, its encoding, and its top reasons with example lines."""
    lines = [
        f"{entry['file']} ({entry['table']}): read {entry['rows_read']}, "
        f"valid {entry['rows_valid']}, quarantined {entry['rows_quarantined']}"
    ]
    if entry["encoding"]:  # a CSV file's (workbooks have none)
        lines.append(f"  encoding: {entry['encoding']}{encoding_origin(entry, summary)}")
    for reason in entry["reasons"]:
        lines.append(f"  {reason['rows']} × {on_one_line(reason['category'])}")
        for example in reason["examples"]:
            line = example["_line"]
            where = line if isinstance(line, str) else f"line {line}"
            lines.append(f"      {where}: {on_one_line(example['reasons'])}")
    return lines
