"""Read one export file (CSV in any common encoding and delimiter, or XLSX) as string rows.

Each sheet or CSV becomes a `SourceTable`: its header as written, its rows as strings with
`_row` (1, 2, ... in file order) and `_line` (the line or spreadsheet row the record starts on,
the header being line 1). Anything that makes a file unusable raises UnusableInputError.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import charset_normalizer
import polars as pl

from schemas import reasons
from schemas.vocabulary import READ_REASON
from transforms.staging.layout import SourceTable, UnusableInputError

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
EXCEL_SUFFIXES = (".xlsx", ".xlsm", ".xls")
DELIMITERS = (",", ";", "\t", "|")


def sha256_of(path: Path) -> str:
    return scan_file(path)[0]


def decode(path: Path, data: bytes, forced: str | None = None) -> tuple[str, str]:
    """The text and its encoding: `forced` when `[source.parse] encoding` sets one; else UTF-8
    (with or without BOM) or UTF-16 with BOM, and failing those the encoding charset-normalizer
    detects (`detected_encodings`)."""
    if forced is not None:
        codec = "utf-8-sig" if codecs.lookup(forced).name == "utf-8" else forced
        try:
            return data.decode(codec), forced
        except UnicodeDecodeError as error:
            raise UnusableInputError(
                f"{path}: cannot be read as {forced} (byte {error.start} is "
                f"0x{data[error.start]:02x}), the encoding set in [source.parse] encoding; "
                "remove the setting to have it detected, or save the file as CSV UTF-8 or XLSX"
            ) from None
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[len(codecs.BOM_UTF8) :].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as error:
            at = error.start + len(codecs.BOM_UTF8)
            raise UnusableInputError(
                f"{path}: starts like UTF-8 text (byte order mark) but byte {at} is "
                f"0x{data[at]:02x}; save it as CSV UTF-8 or XLSX"
            ) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as error:
            raise UnusableInputError(
                f"{path}: starts like UTF-16 text but byte {error.start} cannot be read"
            ) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        for encoding in detected_encodings(data):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                continue
        raise UnusableInputError(
            f"{path}: is not UTF-8 or UTF-16 text and its encoding cannot be detected (byte "
            f"{utf8_error.start} is 0x{data[utf8_error.start]:02x}); set it in funnel.toml "
            '([source.parse] encoding = "latin-1", say), or save it as CSV UTF-8 or XLSX'
        ) from None


# GBK/GB18030 (the Chinese teams' Excel) and Windows-1252 (Latin-1, as Salesforce's Data
# Export writes it in many orgs, and its quotes and dashes): preferred when they read the
# bytes as cleanly as any other encoding. GB18030 decodes almost any bytes, so it is never
# taken on that alone: Latin-1 text read as GB18030 is mojibake that the detector measures.
PREFERRED_ENCODINGS = ("gb18030", "cp1252")


def detected_encodings(data: bytes) -> list[str]:
    """The encodings charset-normalizer finds for bytes that are not UTF-8, most likely first:
    the least chaotic reading wins, and on a tie GB18030, then Windows-1252, then the rest
    (a short file says little: its Latin-1 letters read as well in Windows-1250, its GBK as
    well in Big5), then as the detector ranks them."""
    preferred = charset_normalizer.from_bytes(data, cp_isolation=list(PREFERRED_ENCODINGS))
    anything = charset_normalizer.from_bytes(data)
    ranked = sorted(
        (round(match.chaos, 3), group, position, match.encoding)
        for group, matches in enumerate((preferred, anything))
        for position, match in enumerate(matches)  # the detector's own order: coherence
    )
    return list(dict.fromkeys(encoding for *_, encoding in ranked))


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header line into the most columns (quotes respected)."""
    first_line = text.split("\n", 1)[0]
    best, best_count = ",", 0
    for delimiter in DELIMITERS:
        count = len(next(csv.reader([first_line], delimiter=delimiter), []))
        if count > best_count:
            best, best_count = delimiter, count
    return best


def check_header(path: Path, header: list[str]) -> list[str]:
    names = [h.strip() for h in header]
    if not any(names):
        raise UnusableInputError(f"{path}: has no header row; expected column names on line 1")
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise UnusableInputError(
            f"{path}: the header repeats column(s) {', '.join(repeated)}; each column must appear "
            "once"
        )
    return names


def line_numbers(rows: pl.DataFrame, columns: list[str], first_line: int) -> pl.Expr:
    """The line each record starts on, counting line breaks inside quoted values."""
    breaks = (
        pl.sum_horizontal([pl.col(c).str.count_matches("\n").fill_null(0) for c in columns])
        if columns
        else 0
    )
    return (pl.lit(first_line) + (pl.lit(1) + breaks).cum_sum().shift(1, fill_value=0)).cast(
        pl.Int64
    )


HEAD_BYTES = 1 << 20  # enough for the header line and the encoding and delimiter checks
UTF8_ENCODINGS = ("utf-8", "utf-8-sig")


def head_encoding(head: bytes) -> str:
    """The encoding the first bytes suggest (`other`: neither UTF-8 nor UTF-16, detected by
    `decode`); a UTF-8 guess is confirmed by polars later."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "other"
    return "utf-8"


def scan_file(path: Path) -> tuple[str, int, bool]:
    """The file's SHA-256, its number of line-feed bytes and whether it ends with one, in one
    streaming pass."""
    digest, breaks, block = hashlib.sha256(), 0, b""
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
            breaks += block.count(b"\n")
    return digest.hexdigest(), breaks, block.endswith(b"\n")


RAGGED_ERROR = "found more fields than defined"  # polars, on a record wider than the header


def polars_csv(
    source: Path | bytes, delimiter: str, header: list[str], *, ragged: bool = False
) -> pl.DataFrame:
    """The records as strings under the header's names. A record with fewer fields than the
    header is filled with nulls; one with more raises, unless `ragged`, where it is cut to the
    header's width (`field_counts` tells which)."""
    return pl.read_csv(
        source,
        separator=delimiter,
        infer_schema=False,
        has_header=True,
        new_columns=header,
        truncate_ragged_lines=ragged,
    )


def read_records(
    source: Path | bytes, delimiter: str, header: list[str]
) -> tuple[pl.DataFrame, bool]:
    """The records and whether none is wider than the header: one pass for a well-formed file,
    a second one, cutting the wide records, for a file that has some."""
    try:
        return polars_csv(source, delimiter, header), True
    except pl.exceptions.ComputeError as error:
        if RAGGED_ERROR not in str(error):
            raise
    return polars_csv(source, delimiter, header, ragged=True), False


def unreadable_csv(path: Path, error: Exception, delimiter: str) -> UnusableInputError:
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    return UnusableInputError(
        f"{path}: is not a readable CSV ({message}); expected one header row and rows with "
        f"the same number of '{delimiter}'-separated values"
    )


def field_counts(
    source: Path | bytes, delimiter: str, lines: pl.Series | None = None
) -> pl.Series | None:
    """How many fields each record has (the header first), one record a line, counted by
    polars; None when a quote opens a value that goes on past its line (or stands inside
    one), which only the CSV grammar can follow (`csv_field_counts`). With `lines` (0-based
    line numbers, the header being 0), only those lines are counted, in their order."""
    d = re.escape(delimiter)
    quoted = rf'(^|{d})"(?:[^"]|"")*"({d}|$)'  # a whole quoted value, within the line
    scanned = pl.scan_lines(source, name="line")
    if lines is not None:
        scanned = scanned.with_row_index("_i").filter(pl.col("_i").is_in(lines.implode()))
    counted = (
        scanned.select(
            # twice: the delimiter that closes one quoted value opens the next
            pl.col("line")
            .str.strip_suffix("\r")
            .str.replace_all(quoted, "${1}q${2}")
            .str.replace_all(quoted, "${1}q${2}")
        )
        .select(
            pl.col("line").str.contains('"', literal=True).alias("open"),
            pl.when(pl.col("line").str.strip_chars() != "")
            .then(pl.col("line").str.count_matches(delimiter, literal=True) + 1)
            .cast(pl.Int64)
            .alias("fields"),
        )
        .collect()
    )
    open_values = counted["open"] if lines is not None else counted["open"][1:]
    return None if open_values.any() else counted["fields"]  # the header's own is known


def short_record_counts(
    source: Path | bytes, delimiter: str, rows: pl.DataFrame, header: list[str]
) -> pl.Series | None:
    """Fields per record (the header first) of a file read strictly, one record a line: only
    a record ending in a null can have fewer fields than the header, so only those lines are
    counted. None when a quote makes the lines no guide (`field_counts`)."""
    width = pl.Series("fields", [len(header)] * (rows.height + 1), dtype=pl.Int64)
    short = rows.select(pl.arg_where(pl.col(header[-1]).is_null()) + 1).to_series()
    if short.len() == 0:
        return width
    counts = field_counts(source, delimiter, short)
    if counts is None or counts.len() != short.len():
        return None
    return width.scatter(short, counts)


def csv_field_counts(text: str, delimiter: str) -> pl.Series:
    """How many fields each record has, by the CSV grammar (quoted line breaks, stray quotes);
    null for an empty line."""
    return pl.Series(
        "fields",
        [len(r) if r else None for r in csv.reader(io.StringIO(text), delimiter=delimiter)],
        dtype=pl.Int64,
    )


def with_field_check(
    path: Path, rows: pl.DataFrame, fields: pl.Series, header: list[str]
) -> pl.DataFrame:
    """The rows with `_read_reason` where a record's fields do not match the header's; a file
    where no record does is refused."""
    counts = fields[1:]
    if counts.len() != rows.height:  # the readings disagree on where records end: no verdict
        return rows
    wrong = counts.is_not_null() & (counts != len(header))
    if not wrong.any():
        return rows
    if rows.height and wrong.sum() == counts.is_not_null().sum():
        found = ", ".join(str(n) for n in counts.filter(wrong).unique().sort().head(5))
        raise UnusableInputError(
            f"{path}: no row has the header's {len(header)} fields (rows have {found}); "
            "expected one value per column in every row"
        )
    reason = pl.format(reasons.WRONG_FIELD_COUNT, pl.lit(counts), pl.lit(len(header)))
    return rows.with_columns(pl.when(wrong).then(reason).alias(READ_REASON))


def csv_layout(path: Path, text: str) -> tuple[str, list[str], list[str]]:
    """The delimiter, the header as written and the checked header, from the file's start."""
    if not text.strip():
        raise UnusableInputError(f"{path}: is empty; expected a header row and data rows")
    delimiter = sniff_delimiter(text)
    raw_header = next(csv.reader(io.StringIO(text), delimiter=delimiter))
    return delimiter, raw_header, check_header(path, raw_header)


def one_line_each(raw_header: list[str], rows: pl.DataFrame, record_breaks: int) -> bool:
    """Whether every record, the header's included, is one line (no value holds a break)."""
    header_lines = 1 + sum(h.count("\n") for h in raw_header)
    return record_breaks == header_lines - 1 + rows.height


def checked_records(
    path: Path,
    source: Path | bytes,
    delimiter: str,
    header: list[str],
    *,
    single_lines: Callable[[pl.DataFrame], bool],
    text: Callable[[], str],
) -> pl.DataFrame:
    """The file's records, with `_read_reason` on each whose field count is not the header's.

    A well-formed file is read once: read strictly, only a record ending in nulls can be
    short, and only those lines are counted. Otherwise the lines are counted, and where a
    quote makes them no guide the CSV grammar counts (`text()` is the whole file). polars'
    errors (an unreadable file) go to the caller."""
    rows, strict = read_records(source, delimiter, header)
    fields = (
        short_record_counts(source, delimiter, rows, header)
        if strict and single_lines(rows)
        else field_counts(source, delimiter)
    )
    if fields is None or fields.len() != rows.height + 1:  # the grammar decides
        fields = csv_field_counts(text(), delimiter)
    return with_field_check(path, rows, fields, header)


def read_csv_file(path: Path, forced: str | None = None) -> SourceTable:
    """A UTF-8 file goes to polars straight from disk (hashed and line-counted alongside, in
    a second thread); other encodings, or UTF-8 that breaks past the first megabyte, are
    decoded in Python and handed over as UTF-8. `forced` is `[source.parse] encoding`."""
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except OSError as error:
        raise UnusableInputError(f"{path}: cannot be read ({error.strerror})") from None
    encoding = head_encoding(head)
    if forced is not None and codecs.lookup(forced).name != "utf-8":
        encoding = forced  # decoded in Python below
    if encoding in UTF8_ENCODINGS:
        head_text = head.decode("utf-8", errors="ignore").removeprefix("\ufeff")
        delimiter, raw_header, header = csv_layout(path, head_text)
        with ThreadPoolExecutor(max_workers=1) as pool:
            scanned = pool.submit(scan_file, path)

            def single_lines(rows: pl.DataFrame) -> bool:
                _, breaks, ends_with_break = scanned.result()
                return one_line_each(raw_header, rows, breaks - ends_with_break)

            try:
                rows = checked_records(
                    path,
                    path,
                    delimiter,
                    header,
                    single_lines=single_lines,
                    text=lambda: (
                        path.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
                    ),
                )
            except pl.exceptions.PolarsError as error:
                if "utf-8" not in str(error):
                    raise unreadable_csv(path, error, delimiter) from None
                rows = None
            sha256, breaks, ends_with_break = scanned.result()
        if rows is not None:
            return _source_table(
                path, sha256, encoding, delimiter, raw_header, rows, breaks - ends_with_break
            )
    data = path.read_bytes()
    text, encoding = decode(path, data, forced)
    delimiter, raw_header, header = csv_layout(path, text)
    utf8 = text.encode("utf-8")
    breaks = text.count("\n") - text.endswith("\n")
    try:
        rows = checked_records(
            path,
            utf8,
            delimiter,
            header,
            single_lines=lambda rows: one_line_each(raw_header, rows, breaks),
            text=lambda: text,
        )
    except pl.exceptions.PolarsError as error:
        raise unreadable_csv(path, error, delimiter) from None
    digest = hashlib.sha256(data).hexdigest()
    return _source_table(path, digest, encoding, delimiter, raw_header, rows, breaks)


def _source_table(
    path: Path,
    sha256: str,
    encoding: str,
    delimiter: str,
    raw_header: list[str],
    rows: pl.DataFrame,
    record_breaks: int,
) -> SourceTable:
    """The rows numbered, with the line each starts on (cheap when no value holds a break);
    `record_breaks` counts the line feeds between the file's first and last record."""
    header = rows.columns
    header_lines = 1 + sum(h.count("\n") for h in raw_header)
    lines = (
        (pl.col("_row") + header_lines).cast(pl.Int64)  # no line break inside any value
        if one_line_each(raw_header, rows, record_breaks)
        else line_numbers(rows, header, header_lines + 1)
    )
    rows = rows.with_row_index("_row", offset=1).with_columns(lines.alias("_line"))
    return SourceTable(path, None, sha256, encoding, delimiter, header, rows)


def read_excel_file(path: Path) -> list[SourceTable]:
    try:
        sheets = pl.read_excel(path, sheet_id=0, infer_schema_length=0)
    except Exception as error:  # the engine raises its own types for broken files
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UnusableInputError(f"{path}: is not a readable workbook ({message})") from None
    digest = sha256_of(path)
    tables = []
    for sheet, frame in sheets.items():
        if frame.width == 0:
            continue
        header = check_header(path, frame.columns)
        rows = (
            frame.rename(dict(zip(frame.columns, header, strict=True)))
            .with_row_index("_row", offset=1)
            .with_columns((pl.col("_row") + 1).cast(pl.Int64).alias("_line"))
        )
        tables.append(SourceTable(path, sheet, digest, "xlsx", None, header, rows))
    return tables


def read_source_file(path: Path, encoding: str | None = None) -> list[SourceTable]:
    """Every table in a file: one for a CSV (in `encoding` when given), one per non-empty sheet
    for a workbook."""
    if path.suffix.lower() in EXCEL_SUFFIXES:
        return read_excel_file(path)
    return [read_csv_file(path, encoding)]


def export_files(folder: Path) -> list[Path]:
    """The CSV and spreadsheet files directly in a folder, by name."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in CSV_SUFFIXES + EXCEL_SUFFIXES
        and not p.name.startswith((".", "~$"))
    )
