"""Read one export file (CSV in any common encoding and delimiter, or XLSX) as string rows.

Each sheet or CSV becomes a `SourceTable`: its header as written, its rows as strings with
`_row` (1, 2, ... in file order) and `_line` (the line or spreadsheet row the record starts on,
the header being line 1). A file is first read by its header only (`read_headers`); the files
a table needs are then read whole (`read_rows`), each checked against `Limits` before any of
its rows is read. Anything that makes a file unusable raises UnusableInputError.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import charset_normalizer
import numpy as np
import polars as pl

from funnel_reports.flows.io import workbook
from funnel_reports.schemas import reasons
from funnel_reports.schemas.vocabulary import READ_REASON
from funnel_reports.transforms.funnel_model import SourceSettings
from funnel_reports.transforms.staging.checks import rows_numbered
from funnel_reports.transforms.staging.layout import SourceTable, UnusableInputError

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
WORKBOOK_SUFFIXES = (".xlsx", ".xlsm")  # zip packages of XML, read part by part
EXCEL_SUFFIXES = (*WORKBOOK_SUFFIXES, ".xls")
DELIMITERS = (",", ";", "\t", "|")
CSV_FIELD_LIMIT = csv.field_size_limit()


@dataclass(frozen=True)
class Limits:
    """What a file may hold, checked before it is read ([source] in funnel.toml)."""

    max_file_bytes: int = SourceSettings.max_file_bytes
    max_rows: int = SourceSettings.max_rows
    max_columns: int = SourceSettings.max_columns

    @classmethod
    def of(cls, source: SourceSettings) -> Limits:
        return cls(source.max_file_bytes, source.max_rows, source.max_columns)


def over_limit(where: str, found: str, limit: int, unit: str, key: str) -> UnusableInputError:
    """A file over a limit: what it holds, the limit, and the funnel.toml key that raises it."""
    return UnusableInputError(
        f"{where}: {found}, over the limit of {limit:,} {unit}; raise [source] {key} in "
        "funnel.toml to read it"
    )


# (path, inode, size, modification time) -> SHA-256: a file is hashed once per process,
# whether the run's fingerprint or its reader asks first
_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def digest_key(path: Path) -> tuple[str, int, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)


PIECE_BYTES = 16 << 20  # the piece of a file looked at a time


def file_pieces(path: Path, size: int) -> Iterator[np.ndarray]:
    """The bytes of a file of `size` bytes, a piece at a time, each read into the same buffer
    (a mapped file would count whole in the process's resident memory): a piece is valid
    until the next one is asked for."""
    buffer = bytearray(min(size, PIECE_BYTES))
    with path.open("rb", buffering=0) as handle:
        while length := handle.readinto(buffer):
            yield np.frombuffer(buffer, np.uint8, length)


def sha256_of(path: Path) -> str:
    """The file's SHA-256, hashed once per process while the file stays the same."""
    key = digest_key(path)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        for piece in file_pieces(path, key[2]):
            digest.update(piece)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


@dataclass(frozen=True)
class Decoded:
    """A file's text, its encoding, and whether some bytes did not decode (each became
    U+FFFD, and the rows holding one are quarantined: `with_undecodable`)."""

    text: str
    encoding: str
    replaced: bool = False


# what text never holds: C0 controls but tab, line breaks, vertical tab and form feed; C1
# controls; private-use characters (GB18030 reads many byte pairs as such)
IMPLAUSIBLE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ue000-\uf8ff]")


def implausible(text: str) -> int:
    """How many characters of a decoded text no export holds, when more than one in a
    thousand of them are (else 0)."""
    found = len(IMPLAUSIBLE.findall(text))
    return found if found * 1000 > len(text) else 0


def utf8_verdict(data: bytes) -> tuple[str, int, int]:
    """The bytes read as UTF-8 (an invalid sequence as U+FFFD), how many sequences were
    invalid, and how many bytes the valid multi-byte characters took beyond one each."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd") - data.count(b"\xef\xbf\xbd")
    return text, bad, len(data) - len(text)


def decode(path: Path, data: bytes, forced: str | None = None) -> Decoded:
    """The text and its encoding: `forced` when `[source.parse] encoding` sets one (every
    byte must fit it); else UTF-8 (with or without BOM) or UTF-16 with BOM, where a byte that
    does not decode is U+FFFD and its row is quarantined; a file whose few invalid bytes sit
    among many valid UTF-8 characters is UTF-8 the same way. Failing those, the encodings
    charset-normalizer detects (`detected_encodings`), each taken only if it reads every
    byte as plausible text; a file that none reads so is refused with what each gave."""
    if forced is not None:
        codec = "utf-8-sig" if codecs.lookup(forced).name == "utf-8" else forced
        try:
            return Decoded(data.decode(codec), forced)
        except UnicodeDecodeError as error:
            raise UnusableInputError(
                f"{path}: cannot be read as {forced} (byte {error.start} is "
                f"0x{data[error.start]:02x}), the encoding set in [source.parse] encoding; "
                "remove the setting to have it detected, or save it as CSV UTF-8 or XLSX"
            ) from None
    if data.startswith(codecs.BOM_UTF8):
        text, bad, _ = utf8_verdict(data[len(codecs.BOM_UTF8) :])
        return Decoded(text, "utf-8-sig", bad > 0)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = data.decode("utf-16", errors="replace")
        return Decoded(text, "utf-16", "\ufffd" in text)
    text, bad, good = utf8_verdict(data)
    if bad == 0 or good >= 2 * bad:  # UTF-8, with a few bytes that are not
        return Decoded(text, "utf-8", bad > 0)
    at = text.index("\ufffd")
    first = len(text[:at].encode("utf-8"))
    tried = [f"utf-8: byte {first} is 0x{data[first]:02x}"]
    for encoding in detected_encodings(data):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as error:
            tried.append(f"{encoding}: byte {error.start} is 0x{data[error.start]:02x}")
            continue
        if count := implausible(text):
            tried.append(f"{encoding}: {count:,} control or private-use characters")
            continue
        return Decoded(text, encoding)
    if len(tried) == 1:
        tried.append("no other encoding detected")
    raise UnusableInputError(
        f"{path}: reads as no plausible text in the encodings tried ({'; '.join(tried)}); set "
        '[source.parse] encoding in funnel.toml ("latin-1", say), or save it as CSV UTF-8 or '
        "XLSX"
    )


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
    """The delimiter that splits the header line into the most columns (quotes respected; a
    delimiter that leaves a field longer than csv's limit splits nothing)."""
    first_line = text.split("\n", 1)[0]
    best, best_count = ",", 0
    for delimiter in DELIMITERS:
        try:
            count = len(next(csv.reader([first_line], delimiter=delimiter), []))
        except csv.Error:
            continue
        if count > best_count:
            best, best_count = delimiter, count
    return best


def check_header(path: Path | str, header: list[str], limits: Limits) -> list[str]:
    names = [h.strip() for h in header]
    if not any(names):
        raise UnusableInputError(f"{path}: has no header row; expected column names on line 1")
    if len(names) > limits.max_columns:
        raise over_limit(
            str(path),
            f"its header has {len(names):,} columns",
            limits.max_columns,
            "columns",
            "max_columns",
        )
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


def reads_as_utf8(encoding: str, forced: str | None) -> bool:
    """Whether a file whose bytes read as `encoding` goes to polars straight from disk: UTF-8,
    unless `[source.parse] encoding` (`forced`) names another."""
    return encoding in UTF8_ENCODINGS and (forced is None or codecs.lookup(forced).name == "utf-8")


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


@dataclass(frozen=True)
class Scan:
    """What `precheck`'s pass over a CSV file's bytes counted: its line feeds and whether it
    ends with one, and (when asked) its delimiter and quote bytes."""

    breaks: int
    ends_with_break: bool
    delimiters: int | None = None  # None: not counted
    quotes: int | None = None


RAGGED_ERROR = "found more fields than defined"  # polars, on a record wider than the header


def polars_csv(
    source: Path | bytes,
    delimiter: str,
    header: list[str],
    *,
    ragged: bool = False,
    columns: list[str] | None = None,
) -> pl.DataFrame:
    """The records as strings under the header's names. A record with fewer fields than the
    header is filled with nulls; one with more raises, unless `ragged`, where it is cut to the
    header's width (`field_counts` tells which). With `columns`, only those are read, and a
    wider record no longer raises (`projected_records` checks the width another way)."""
    return pl.read_csv(
        source,
        separator=delimiter,
        infer_schema=False,
        has_header=True,
        new_columns=header,
        truncate_ragged_lines=ragged,
        columns=None if columns is None else [header.index(c) for c in columns],
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


def csv_field_counts(text: str, delimiter: str, path: Path) -> pl.Series:
    """How many fields each record has, by the CSV grammar (quoted line breaks, stray quotes);
    null for an empty line."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        counts = [len(r) if r else None for r in reader]
    except csv.Error as error:
        raise UnusableInputError(
            f"{path}: line {reader.line_num} is not readable CSV ({error}); expected one "
            f"header row and rows with the same number of '{delimiter}'-separated values"
        ) from None
    return pl.Series("fields", counts, dtype=pl.Int64)


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


HEADER_BYTES = 16 << 20  # the most a header line may take


def csv_layout(path: Path, text: str, limits: Limits) -> tuple[str, list[str], list[str], int]:
    """The delimiter, the header as written, the checked header, and how many characters of
    `text` the header record takes, from the file's start."""
    if not text.strip():
        raise UnusableInputError(f"{path}: is empty; expected a header row and data rows")
    delimiter = sniff_delimiter(text)
    stream = io.StringIO(text)
    try:
        raw_header = next(csv.reader(stream, delimiter=delimiter))
    except csv.Error as error:
        if "field limit" in str(error):
            raise UnusableInputError(
                f"{path}: a field of its header is longer than {CSV_FIELD_LIMIT:,} characters "
                "(csv's field limit); expected column names on line 1"
            ) from None
        raise UnusableInputError(
            f"{path}: its header is not readable CSV ({error}); expected column names on line 1"
        ) from None
    return delimiter, raw_header, check_header(path, raw_header, limits), stream.tell()


@dataclass(frozen=True)
class Head:
    """What the start of a CSV file says: its encoding, delimiter and header, and the text
    of its first records (what its first bytes hold after the header)."""

    encoding: str
    delimiter: str
    raw_header: list[str]
    header: list[str]
    first_records: str = ""


def forced_error(path: Path, forced: str, data: bytes, error: UnicodeDecodeError) -> Exception:
    return UnusableInputError(
        f"{path}: cannot be read as {forced} (byte {error.start} is "
        f"0x{data[error.start]:02x}), the encoding set in [source.parse] encoding; "
        "remove the setting to have it detected, or save it as CSV UTF-8 or XLSX"
    )


def head_text(path: Path, head: bytes, forced: str | None, whole: bool) -> tuple[str, str]:
    """The encoding and text of a file's first bytes (`whole`: all of it)."""
    if forced is not None:
        codec = "utf-8-sig" if codecs.lookup(forced).name == "utf-8" else forced
        try:
            return forced, codecs.getincrementaldecoder(codec)().decode(head, final=whole)
        except UnicodeDecodeError as error:
            raise forced_error(path, forced, head, error) from None
    encoding = head_encoding(head)
    if encoding in UTF8_ENCODINGS:  # a character cut at the end reads as U+FFFD
        return encoding, head.decode("utf-8", errors="replace").removeprefix("\ufeff")
    if encoding == "utf-16":
        return encoding, head.decode("utf-16", errors="replace")
    cut = head if whole or b"\n" not in head else head[: head.rindex(b"\n") + 1]
    decoded = decode(path, cut)
    return decoded.encoding, decoded.text


def csv_head(path: Path, forced: str | None, limits: Limits) -> Head:
    """The encoding, delimiter and header of a CSV file, from as few of its first bytes as
    the header takes (a megabyte, more for a longer header, at most `HEADER_BYTES`)."""
    try:
        size = path.stat().st_size
        want = HEAD_BYTES
        while True:
            with path.open("rb") as handle:
                head = handle.read(want)
            whole = len(head) >= size
            encoding, text = head_text(path, head, forced, whole)
            delimiter, raw_header, header, used = csv_layout(path, text, limits)
            if whole or used < len(text):
                break
            if want >= HEADER_BYTES:
                raise UnusableInputError(
                    f"{path}: its header line is longer than {HEADER_BYTES:,} bytes; expected "
                    "column names on line 1"
                )
            want *= 4
    except OSError as error:
        raise UnusableInputError(f"{path}: cannot be read ({error.strerror})") from None
    if "\ufffd" in "".join(raw_header):
        label = "utf-8" if encoding in UTF8_ENCODINGS else encoding
        raise UnusableInputError(
            f"{path}: its header holds bytes that are not {label} text; save it as CSV UTF-8 "
            "or XLSX"
        )
    return Head(encoding, delimiter, raw_header, header, text[used:])


def nul_refusal(path: Path, at: int) -> UnusableInputError:
    return UnusableInputError(
        f"{path}: holds NUL bytes (the first at byte {at}): a file with a hole, or not a "
        "text export; expected CSV text or an XLSX workbook"
    )


@dataclass(frozen=True)
class Start:
    """What a CSV file's first piece says: whether a quote is in it (a file of plain values
    has none), and whether the file may hold more rows than half of `max_rows` (its size
    over the piece's bytes per line break), when its rows are counted before it is read."""

    quoted: bool
    near_row_limit: bool


def precheck(path: Path, head: Head, limits: Limits) -> Start:
    """Before a CSV file is read: its apparent size (a sparse file's too) within
    `max_file_bytes`, and no NUL byte in its first piece (a hole, or a file that is not
    text: never in UTF-8 or single-byte text). The rest of the file is `scan_file`'s."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise over_limit(
            str(path), f"{size:,} bytes", limits.max_file_bytes, "bytes", "max_file_bytes"
        )
    with path.open("rb") as handle:
        piece = np.frombuffer(handle.read(PIECE_BYTES), np.uint8)
    if piece.size and not wide_encoding(head) and piece.min() == 0:
        raise nul_refusal(path, int(np.argmin(piece)))
    breaks = int(np.count_nonzero(piece == 10))
    lines = size * breaks / piece.size if breaks else size  # no break yet: at most one a byte
    return Start(bool(np.count_nonzero(piece == 34)), lines > limits.max_rows / 2)


def wide_encoding(head: Head) -> bool:
    return codecs.lookup(head.encoding).name.startswith(("utf-16", "utf-32"))


def scan_file(
    path: Path, head: Head, limits: Limits, *, count_fields: bool = False
) -> tuple[Scan, str]:
    """One pass over a CSV file's bytes (`file_pieces`): no NUL byte, its lines (within
    `max_rows`), with `count_fields` its delimiter and quote bytes; and its SHA-256, hashed
    in the same pass unless this process has it already (`sha256_of`)."""
    key = digest_key(path)
    digest = None if key in _DIGESTS else hashlib.sha256()
    wide = wide_encoding(head)
    breaks, delimiters, quotes, last, at = 0, 0, 0, b"", 0
    # a delimiter wider than a byte is not counted: its file is read whole
    mark = ord(head.delimiter) if count_fields and len(head.delimiter.encode()) == 1 else None
    for piece in file_pieces(path, key[2]):
        if digest is not None:
            digest.update(piece)
        if not wide and piece.min() == 0:
            raise nul_refusal(path, at + int(np.argmin(piece)))
        breaks += int(np.count_nonzero(piece == 10))
        if mark is not None:
            delimiters += int(np.count_nonzero(piece == mark))
            quotes += int(np.count_nonzero(piece == 34))
        last, at = bytes(piece[-1:]), at + piece.size
    if digest is not None:
        _DIGESTS[key] = digest.hexdigest()
    header_lines = 1 + sum(h.count("\n") for h in head.raw_header)
    lines = breaks + (last not in (b"\n", b"")) - header_lines
    if lines > limits.max_rows:
        raise over_limit(
            str(path), f"{lines:,} lines after its header", limits.max_rows, "rows", "max_rows"
        )
    if mark is None:
        return Scan(breaks, last == b"\n"), _DIGESTS[key]
    return Scan(breaks, last == b"\n", delimiters, quotes), _DIGESTS[key]


def with_undecodable(rows: pl.DataFrame, header: list[str], encoding: str) -> pl.DataFrame:
    """The rows with `_read_reason` where a value holds a byte that did not decode (U+FFFD),
    unless the reader has a reason for the row already."""
    got = pl.coalesce(
        [pl.when(pl.col(c).str.contains("\ufffd", literal=True)).then(pl.col(c)) for c in header]
    )
    label = "utf-8" if encoding == "utf-8-sig" else encoding
    reason = pl.when(got.is_not_null()).then(pl.format(reasons.UNDECODABLE, pl.lit(label), got))
    existing = [pl.col(READ_REASON)] if READ_REASON in rows.columns else []
    return rows.with_columns(pl.coalesce([*existing, reason]).alias(READ_REASON))


def one_line_each(raw_header: list[str], rows: pl.DataFrame, record_breaks: int) -> bool:
    """Whether every record, the header's included, is one line (no value holds a break)."""
    header_lines = 1 + sum(h.count("\n") for h in raw_header)
    return record_breaks == header_lines - 1 + rows.height


def checked_records(
    path: Path, source: Path | bytes, head: Head, record_breaks: int, text: Callable[[], str]
) -> pl.DataFrame:
    """The file's records, with `_read_reason` on each whose field count is not the header's;
    `record_breaks` counts the line feeds between its first and last record.

    A well-formed file is read once: read strictly, only a record ending in nulls can be
    short, and only those lines are counted. Otherwise the lines are counted, and where a
    quote makes them no guide the CSV grammar counts (`text()` is the whole file). polars'
    errors (an unreadable file) go to the caller."""
    delimiter, header = head.delimiter, head.header
    rows, strict = read_records(source, delimiter, header)
    fields = (
        short_record_counts(source, delimiter, rows, header)
        if strict and one_line_each(head.raw_header, rows, record_breaks)
        else field_counts(source, delimiter)
    )
    if fields is None or fields.len() != rows.height + 1:  # the grammar decides
        fields = csv_field_counts(text(), delimiter, path)
    return with_field_check(path, rows, fields, header)


def projected_records(
    path: Path, head: Head, columns: list[str], scan: Callable[[], Scan]
) -> pl.DataFrame | None:
    """Only `columns` of a UTF-8 file's records (and its last column, whose null tells a
    short record), when its bytes show that every record is one line of plain values: no
    quote anywhere, a line per record, and as many delimiters as the records' fields ask (a
    wider record would add some). `scan` gives the counts of its bytes, asked for once the
    columns are read (the pass runs beside the read). None otherwise (or when the bytes
    were not counted): the caller reads the whole file."""
    header, delimiter = head.header, head.delimiter
    read = [h for h in header if h in columns or h == header[-1]]
    try:
        rows = polars_csv(path, delimiter, header, columns=read)
    except pl.exceptions.ComputeError as error:  # a wider record, met by a read of every column
        if RAGGED_ERROR not in str(error):
            raise
        return None
    counted = scan()
    if counted.quotes != 0 or counted.delimiters is None:
        return None
    if not one_line_each(head.raw_header, rows, counted.breaks - counted.ends_with_break):
        return None
    fields = short_record_counts(path, delimiter, rows, header)
    if fields is None or counted.delimiters != int((fields - 1).sum()):
        return None
    return with_field_check(path, rows, fields, header)


def utf8_records(
    path: Path, head: Head, projected: list[str] | None, scan: Callable[[], Scan]
) -> pl.DataFrame | None:
    """A UTF-8 file's records, read by polars straight from disk: only the `projected`
    columns when the file is plain one-line records (`projected_records`), else every
    column, checked. None when polars finds bytes that are not UTF-8 (the file is decoded in
    Python instead). `scan` waits for the pass over the file's bytes."""
    try:
        if projected is not None:
            rows = projected_records(path, head, projected, scan)
            if rows is not None:
                return rows
        whole = path.read_bytes
        return checked_records(
            path,
            path,
            head,
            scan().breaks - scan().ends_with_break,
            lambda: whole().decode("utf-8", errors="replace").removeprefix("\ufeff"),
        )
    except pl.exceptions.PolarsError as error:
        scan()  # what the bytes say (NUL bytes, too many rows) is the clearer refusal
        if "utf-8" not in str(error):
            raise unreadable_csv(path, error, head.delimiter) from None
        return None


def read_csv_file(
    path: Path, forced: str | None, limits: Limits, columns: list[str] | None = None
) -> SourceTable:
    """A CSV file whole, once `precheck` passes. A UTF-8 file goes to polars straight from
    disk while a second thread counts and hashes its bytes (`scan_file`; first, for a file
    that may hold more rows than `max_rows` allows); other encodings, or UTF-8 with bytes
    that are not, are decoded in Python and handed over as UTF-8 (`decoded_records`).
    `forced` is `[source.parse] encoding`.

    With `columns`, the table keeps only those (the others are `unread`), and a file of
    plain one-line records has only those parsed (`projected_records`)."""
    head = csv_head(path, forced, limits)
    narrower = columns is not None and not set(head.header) <= set(columns)
    start = precheck(path, head, limits)
    utf8 = reads_as_utf8(head.encoding, forced)
    with ThreadPoolExecutor(max_workers=1) as pool:
        scanning = pool.submit(scan_file, path, head, limits, count_fields=narrower)

        def scan() -> Scan:
            return scanning.result()[0]

        if start.near_row_limit:  # counted before it is read: it may be over max_rows
            scan()
        # only some columns, unless a quote in the first piece says the file is not plain
        projected = columns if narrower and not start.quoted else None
        rows = utf8_records(path, head, projected, scan) if utf8 else None
        counted, sha256 = scanning.result()  # the limits hold before any file is decoded
    if rows is None:
        head, rows, breaks = decoded_records(path, forced, limits)
    else:
        breaks = counted.breaks - counted.ends_with_break
    return without_unread(_source_table(path, sha256, head.encoding, head, rows, breaks), columns)


def decoded_records(
    path: Path, forced: str | None, limits: Limits
) -> tuple[Head, pl.DataFrame, int]:
    """A file in another encoding than UTF-8 (or with bytes UTF-8 cannot read), decoded in
    Python: its head, its records (a row holding an undecodable byte has a `_read_reason`)
    and the line feeds between its first and last record."""
    decoded = decode(path, path.read_bytes(), forced)
    text, encoding = decoded.text, decoded.encoding
    delimiter, raw_header, header, _ = csv_layout(path, text, limits)
    head = Head(encoding, delimiter, raw_header, header)
    breaks = text.count("\n") - text.endswith("\n")
    try:
        rows = checked_records(path, text.encode("utf-8"), head, breaks, lambda: text)
    except pl.exceptions.PolarsError as error:
        raise unreadable_csv(path, error, delimiter) from None
    if decoded.replaced:
        rows = with_undecodable(rows, header, encoding)
    return head, rows, breaks


def without_unread(table: SourceTable, columns: list[str] | None) -> SourceTable:
    """The table without the header's columns that are not in `columns` (all kept: None)."""
    if columns is None:
        return table
    unread = tuple(h for h in table.header if h not in columns)
    return replace(table, frame=table.rows.drop(unread, strict=False), unread=unread)


def _source_table(
    path: Path,
    sha256: str,
    encoding: str,
    head: Head,
    rows: pl.DataFrame,
    record_breaks: int,
) -> SourceTable:
    """The rows numbered, with the line each starts on (cheap when no value holds a break);
    `record_breaks` counts the line feeds between the file's first and last record."""
    header, raw_header = head.header, head.raw_header
    header_lines = 1 + sum(h.count("\n") for h in raw_header)
    lines = (
        (pl.col("_row") + header_lines).cast(pl.Int64)  # no line break inside any value
        if one_line_each(raw_header, rows, record_breaks)
        else line_numbers(rows, header, header_lines + 1)
    )
    rows = rows.with_row_index("_row", offset=1).with_columns(lines.alias("_line"))
    return SourceTable(path, None, sha256, encoding, head.delimiter, header, rows)


# a workbook that is no zip, a part that does not inflate or fails its checksum
WORKBOOK_ERRORS = (workbook.WorkbookError, zipfile.BadZipFile, zlib.error, EOFError)


def workbook_error(path: Path, error: Exception) -> UnusableInputError:
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    return UnusableInputError(f"{path}: is not a readable workbook ({message})")


def workbook_headers(path: Path, limits: Limits) -> list[SourceTable]:
    """Every sheet with a value, by its header only."""
    try:
        book = workbook.read_book(path)
        headers = [(s, workbook.sheet_header(book, s, limits.max_columns)) for s in book.sheets]
    except WORKBOOK_ERRORS as error:
        raise workbook_error(path, error) from None
    return [
        SourceTable(
            path,
            sheet.name,
            "",
            "xlsx",
            None,
            check_header(f"{path}[{sheet.name}]", header.names, limits),
            None,
        )
        for sheet, header in headers
        if header is not None
    ]


def sheet_rows_said(book: workbook.Book, sheet: workbook.Sheet) -> tuple[int, str]:
    """A sheet's rows, its header's included, as its `<dimension>` says them (else its
    `<row>` elements counted), and how they were told."""
    spanned = workbook.dimension_rows(book, sheet)
    if spanned:
        return spanned[0], f"its <dimension> {spanned[1]}"
    return workbook.counted_rows(book, sheet), "counted"


def workbook_table(table: SourceTable, limits: Limits) -> SourceTable:
    """A sheet whole, once what its workbook says of it passes the limits: its XML
    uncompressed (and the shared strings'), and its rows (its `<dimension>`, else counted)."""
    path, where = table.path, f"{table.path}[{table.sheet}]"
    try:
        book = workbook.read_book(path)
        sheet = next(s for s in book.sheets if s.name == table.sheet)
        for size, what in ((sheet.size, "of sheet XML"), (book.shared_size, "of shared strings")):
            if size > limits.max_file_bytes:
                raise over_limit(
                    where,
                    f"{size:,} bytes {what} uncompressed",
                    limits.max_file_bytes,
                    "bytes",
                    "max_file_bytes",
                )
        rows, how = sheet_rows_said(book, sheet)
        if rows > workbook.EXCEL_ROWS:
            raise UnusableInputError(
                f"{where}: {rows - 1:,} rows after its header ({how}), more than a worksheet "
                f"holds ({workbook.EXCEL_ROWS:,}); expected a workbook Excel can open"
            )
        if rows - 1 > limits.max_rows:
            raise over_limit(
                where,
                f"{rows - 1:,} rows after its header ({how})",
                limits.max_rows,
                "rows",
                "max_rows",
            )
        header = workbook.sheet_header(book, sheet, limits.max_columns)
        if header is None or check_header(where, header.names, limits) != table.header:
            raise UnusableInputError(f"{where}: changed while it was read; read it again")
        frame = workbook.sheet_rows(book, sheet, header, limits.max_rows)
    except workbook.TooManyRows as error:
        raise over_limit(where, f"{error} (read)", limits.max_rows, "rows", "max_rows") from None
    except WORKBOOK_ERRORS as error:
        raise workbook_error(path, error) from None
    rows_frame = frame.with_row_index("_row", offset=1).rename(
        dict(zip(header.names, table.header, strict=True))
    )
    return replace(table, sha256=sha256_of(path), frame=rows_frame)


def legacy_workbook(path: Path, limits: Limits) -> list[SourceTable]:
    """An .xls workbook (at most 65,536 rows a sheet), whole: its apparent size is checked."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise over_limit(
            str(path), f"{size:,} bytes", limits.max_file_bytes, "bytes", "max_file_bytes"
        )
    try:
        sheets = pl.read_excel(path, sheet_id=0, infer_schema_length=0)
    except Exception as error:  # the engine raises its own types for broken files
        raise workbook_error(path, error) from None
    digest = sha256_of(path)
    tables = []
    for sheet, frame in sheets.items():
        if frame.width == 0:
            continue
        header = check_header(f"{path}[{sheet}]", frame.columns, limits)
        rows = (
            frame.rename(dict(zip(frame.columns, header, strict=True)))
            .with_row_index("_row", offset=1)
            .with_columns((pl.col("_row") + 1).cast(pl.Int64).alias("_line"))
        )
        tables.append(SourceTable(path, sheet, digest, "xlsx", None, header, rows))
    return tables


def read_headers(
    path: Path, encoding: str | None = None, limits: Limits | None = None
) -> list[SourceTable]:
    """Every table in a file by its header only: one for a CSV (in `encoding` when given),
    one per sheet with a value for a workbook. Reads no row past the header (an .xls
    workbook, small by its format, is read whole)."""
    limits = limits or Limits()
    suffix = path.suffix.lower()
    if suffix in WORKBOOK_SUFFIXES:
        return workbook_headers(path, limits)
    if suffix in EXCEL_SUFFIXES:
        return legacy_workbook(path, limits)
    head = csv_head(path, encoding, limits)
    return [SourceTable(path, None, "", head.encoding, head.delimiter, head.header, None)]


def holds_records(table: SourceTable, encoding: str | None, limits: Limits) -> bool:
    """Whether a table read by its header has a record after it, from the file's first bytes
    (a CSV's first megabyte, a sheet's `<dimension>` or its first rows): what a header-only
    export lacks, told without reading it."""
    if table.sheet is not None:
        try:
            book = workbook.read_book(table.path)
            sheet = next(s for s in book.sheets if s.name == table.sheet)
            return sheet_rows_said(book, sheet)[0] > 1
        except WORKBOOK_ERRORS as error:
            raise workbook_error(table.path, error) from None
    if table.frame is not None:
        return table.frame.height > 0
    head = csv_head(table.path, encoding, limits)
    records = csv.reader(io.StringIO(head.first_records), delimiter=head.delimiter)
    try:
        return any(any(v.strip() for v in record) for record in records)
    except csv.Error:
        return True  # the reader will say what is wrong with it


def read_rows(
    table: SourceTable,
    encoding: str | None = None,
    limits: Limits | None = None,
    columns: list[str] | None = None,
) -> SourceTable:
    """A table read by its header, now whole (each file checked against `limits` first),
    keeping only `columns` of its header (the others are `unread`). An .xls workbook, read
    whole with its header, keeps every column."""
    if table.frame is not None:
        return table
    limits = limits or Limits()
    if table.sheet is not None:
        return without_unread(workbook_table(table, limits), columns)
    whole = read_csv_file(table.path, encoding, limits, columns)
    if whole.header != table.header:
        raise UnusableInputError(
            f"{table.path}: its header reads differently from its start "
            f"({', '.join(table.header)}) and whole ({', '.join(whole.header)}); set "
            "[source.parse] encoding in funnel.toml"
        )
    return replace(whole, folder=table.folder)


def read_again(
    table: SourceTable, rows: pl.Series, encoding: str | None, limits: Limits
) -> pl.DataFrame:
    """The `unread` columns of a table's records numbered `rows` (its `_row`), read again
    from the file, in the order of `rows`; a file that changed since it was read stops the
    run. A UTF-8 CSV is streamed through polars, which keeps only those records (a few
    quarantined rows of a 10-million-row file cost a pass, not the file's text); a sheet, or
    a CSV polars cannot read as UTF-8, is read whole again, as it was read."""
    if sha256_of(table.path) != table.sha256:
        raise UnusableInputError(f"{table.path}: changed while it was read; read it again")
    if table.sheet is None and table.delimiter and reads_as_utf8(table.encoding, encoding):
        try:
            return streamed_records(table, table.delimiter, rows)
        except pl.exceptions.ComputeError:  # bytes that are not UTF-8: decoded in Python
            pass
    again = (
        workbook_table(replace(table, frame=None, unread=()), limits)
        if table.sheet is not None
        else read_csv_file(table.path, encoding, limits, list(table.unread))
    )
    return rows_numbered(again.rows.select(table.unread), rows)


def streamed_records(table: SourceTable, delimiter: str, rows: pl.Series) -> pl.DataFrame:
    """The `unread` columns of a CSV's records numbered `rows`, in their order: polars
    streams the file and keeps only those records."""
    wanted = (
        pl.scan_csv(
            table.path,
            separator=delimiter,
            infer_schema=False,
            has_header=True,
            new_columns=table.header,
            truncate_ragged_lines=True,
        )
        .with_row_index("_row", offset=1)
        .filter(pl.col("_row").is_in(rows.cast(pl.UInt32).implode()))
        .select("_row", *table.unread)
        .collect(engine="streaming")
    )
    order = pl.DataFrame({"_row": rows.cast(pl.UInt32)})
    return order.join(wanted, on="_row", how="left", maintain_order="left").drop("_row")


def read_source_file(
    path: Path, encoding: str | None = None, limits: Limits | None = None
) -> list[SourceTable]:
    """Every table in a file, whole."""
    return [read_rows(t, encoding, limits) for t in read_headers(path, encoding, limits)]


def export_files(folder: Path) -> list[Path]:
    """The CSV and spreadsheet files directly in a folder, by name."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in CSV_SUFFIXES + EXCEL_SUFFIXES
        and not p.name.startswith((".", "~$"))
    )
