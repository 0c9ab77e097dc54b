"""XLSX workbooks read part by part, in memory bounded by what they hold.

A sheet's XML is decompressed a megabyte at a time and each piece is cut into rows and cells
by polars' string expressions, then laid out as the header's columns: the sheet is never
held whole, and a cell far from the others (a stray value in row 1,048,576 or column XFD)
costs what that cell costs, not the rectangle up to it. What can be known before reading is
checked first (`Sheet.size`, the sheet XML uncompressed, and `Sheet.dimension`).

Values read as a spreadsheet shows them, as text: shared and inline strings, numbers as
written (`1000`, `1000.5`), numbers with a date format as `YYYY-MM-DD HH:MM:SS`, booleans as
`true` / `false`, errors (`#N/A`) as blank. The header is the first row with a value, from
its first to its last value; rows without a value under the header are blank lines, not
records.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from html import unescape
from pathlib import Path

import polars as pl

EXCEL_ROWS = 1_048_576  # what a worksheet holds
CHUNK_BYTES = 1 << 20  # decompressed XML per piece
RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
DATE_FORMAT_IDS = frozenset([*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)])
EPOCH_1900 = datetime(1899, 12, 30)
EPOCH_1904 = datetime(1904, 1, 1)
UNNAMED = "__UNNAMED__{}"  # a blank header cell between named ones (as fastexcel names it)
NUMBER_AS_WRITTEN = r"^-?\d+(?:\.\d+)?$"


class WorkbookError(Exception):
    """A workbook that cannot be read as one; the message says what is wrong."""


class TooManyRows(WorkbookError):
    """A sheet holding more records than the limit its `<dimension>` passed."""


@dataclass(frozen=True)
class Sheet:
    name: str
    part: str  # the zip member holding its XML
    size: int  # its XML, uncompressed (the zip's own record)


@dataclass(frozen=True)
class Book:
    path: Path
    sheets: list[Sheet]
    shared_part: str | None
    shared_size: int
    date_styles: frozenset[int]  # cell style indices whose number format is a date
    epoch: datetime


@dataclass(frozen=True)
class Header:
    """A sheet's header: the row it is on and the columns (0-based) from its first value to
    its last."""

    row: int
    first: int
    names: list[str]


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class Parts:
    """The parts of an open workbook archive, found by name whatever their case."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.members = {info.filename.lstrip("/").lower(): info for info in archive.infolist()}

    def member(self, name: str) -> zipfile.ZipInfo | None:
        return self.members.get(name.lstrip("/").lower())

    def xml(self, name: str) -> ET.Element:
        info = self.member(name)
        if info is None:
            raise WorkbookError(f"it has no part {name}")
        if info.file_size > 64 << 20:
            raise WorkbookError(f"its part {name} is {info.file_size:,} bytes")
        return ET.fromstring(self.archive.read(info))

    def targets(self, rels: str, base: str) -> dict[str, tuple[str, str]]:
        """A relationships part: id -> (kind, the target part's name)."""
        if self.member(rels) is None:
            return {}
        return {
            rel.get("Id", ""): (
                local(rel.get("Type", "")).rsplit("/", 1)[-1],
                posixpath.normpath(
                    rel.get("Target", "").lstrip("/")
                    if rel.get("Target", "").startswith("/")
                    else posixpath.join(base, rel.get("Target", ""))
                ),
            )
            for rel in self.xml(rels).iter(RELATIONSHIPS)
        }

    def worksheets(self, workbook: ET.Element, rels: dict[str, tuple[str, str]]) -> list[Sheet]:
        """The workbook's worksheets, in its order (chart sheets and missing parts left out)."""
        sheets = []
        for element in workbook.iter():
            if local(element.tag) != "sheet":
                continue
            rel = next((v for k, v in element.attrib.items() if local(k) == "id"), "")
            kind, target = rels.get(rel, ("", ""))
            info = self.member(target)
            if kind == "worksheet" and info is not None:
                sheets.append(Sheet(element.get("name", target), info.filename, info.file_size))
        return sheets


def read_book(path: Path) -> Book:
    """The sheets of a workbook and what reading their cells needs (shared strings, date
    styles, the date system), from its small parts."""
    try:
        with zipfile.ZipFile(path) as archive:
            parts = Parts(archive)
            office = next(
                (
                    t
                    for kind, t in parts.targets("_rels/.rels", "").values()
                    if kind == "officeDocument"
                ),
                "xl/workbook.xml",
            )
            base = posixpath.dirname(office)
            rels = parts.targets(
                posixpath.join(base, "_rels", posixpath.basename(office) + ".rels"), base
            )
            workbook = parts.xml(office)
            sheets = parts.worksheets(workbook, rels)
            date1904 = any(
                local(e.tag) == "workbookPr" and e.get("date1904", "").lower() in ("1", "true")
                for e in workbook.iter()
            )
            shared = next((t for kind, t in rels.values() if kind == "sharedStrings"), None)
            shared_info = parts.member(shared) if shared else None
            styles = next((t for kind, t in rels.values() if kind == "styles"), None)
            date_styles = (
                date_style_indices(parts.xml(styles))
                if styles and parts.member(styles)
                else frozenset()
            )
    except (zipfile.BadZipFile, ET.ParseError, OSError, KeyError) as error:
        raise WorkbookError(str(error) or type(error).__name__) from None
    return Book(
        path,
        sheets,
        shared_info.filename if shared_info else None,
        shared_info.file_size if shared_info else 0,
        date_styles,
        EPOCH_1904 if date1904 else EPOCH_1900,
    )


def is_date_format(code: str) -> bool:
    """Whether a number format shows a date or a time: d, m, y, h or s outside quoted text,
    escapes and [brackets] (colours, conditions, locales)."""
    bare = re.sub(r'"[^"]*"|\\.|\[[^\]]*\]|_.|\*.', "", code)
    return bare.lower() != "general" and re.search(r"[dmyhs]", bare, re.IGNORECASE) is not None


def date_style_indices(styles: ET.Element) -> frozenset[int]:
    custom = {
        int(f.get("numFmtId", "-1")): is_date_format(f.get("formatCode", ""))
        for f in styles.iter()
        if local(f.tag) == "numFmt"
    }
    cell_xfs = next((e for e in styles.iter() if local(e.tag) == "cellXfs"), None)
    if cell_xfs is None:
        return frozenset()
    found = []
    for index, xf in enumerate(x for x in cell_xfs if local(x.tag) == "xf"):
        format_id = int(xf.get("numFmtId", "0"))
        if custom.get(format_id, format_id in DATE_FORMAT_IDS):
            found.append(index)
    return frozenset(found)


def pieces(path: Path, part: str, start: bytes) -> Iterator[bytes]:
    """The part's XML, decompressed a megabyte at a time, each piece ending where an element
    `start` opens (`<row`, `<si`), so that no row or string is cut; namespace prefixes
    dropped (`<x:c>` is `<c>`)."""
    with zipfile.ZipFile(path) as archive, archive.open(part) as stream:
        rest, prefix = b"", None
        while True:
            block = stream.read(CHUNK_BYTES)
            data = rest + block
            if prefix is None and (found := re.search(rb"<(\w+:)?(?:worksheet|sst)\b", data)):
                prefix = found.group(1) or b""
            if prefix:
                data = data.replace(b"<" + prefix, b"<").replace(b"</" + prefix, b"</")
            if not block:
                if data:
                    yield data
                return
            cut = data.rfind(start)
            if cut <= 0:
                rest = data
                continue
            rest = data[cut:]
            yield data[:cut]


def xml_text(text: pl.Expr) -> pl.Expr:
    """Text as XML escapes it: the five named entities (numeric ones and Excel's `_xHHHH_`
    are rare: `decoded`)."""
    return (
        text.str.replace_all("&lt;", "<", literal=True)
        .str.replace_all("&gt;", ">", literal=True)
        .str.replace_all("&quot;", '"', literal=True)
        .str.replace_all("&apos;", "'", literal=True)
        .str.replace_all("&amp;", "&", literal=True)
    )


def unescape_value(value: str) -> str:
    """Text as written in the XML, read in one pass: every character reference, then Excel's
    `_xHHHH_` escapes (`_x005F_` is a literal underscore, so `_x005F_x0041_` reads `_x0041_`)."""
    text = unescape(value) if "&" in value else value
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


def decoded(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """`column`, text as written in the XML, read once: the named entities by expression, and
    the values with a numeric reference or an `_xHHHH_` escape (rare: a control character, a
    character XML cannot hold) value by distinct value, from the written text (decoding the
    named entities first would read `&amp;#39;`, a written `&#39;`, as an apostrophe)."""
    odd = pl.col(column).str.contains(r"&#|_x[0-9A-Fa-f]{4}_")
    if not frame.select(pl.col(column).str.contains("&", literal=True).any() | odd.any()).item():
        return frame
    readable = (
        frame.filter(odd)
        .select(pl.col(column).unique())
        .with_columns(
            pl.col(column).map_elements(unescape_value, return_dtype=pl.String).alias("__unescaped")
        )
    )
    return (
        frame.join(readable, on=column, how="left", maintain_order="left")
        .with_columns(pl.coalesce("__unescaped", xml_text(pl.col(column))).alias(column))
        .drop("__unescaped")
    )


def runs_text(xml: pl.Expr) -> pl.Expr:
    """The text of a string item (`<si>` or `<is>`): its `<t>` runs joined, phonetic guides
    (`<rPh>`) left out."""
    return (
        xml.str.replace_all(r"(?s)<rPh\b.*?</rPh>", "")
        .str.extract_all(r"(?s)<t\b[^>]*?(?:/>|>.*?</t>)")
        .list.eval(
            pl.element().str.replace(r"(?s)^<t\b[^>]*?(?:/>|>)", "").str.replace("</t>$", "")
        )
        .list.join("")
    )


def shared_strings(book: Book, count: int | None = None) -> pl.Series:
    """The workbook's shared strings in order (the first `count` of them, or all)."""
    if book.shared_part is None:
        return pl.Series("text", [], dtype=pl.String)
    parts, found = [], 0
    for piece in pieces(book.path, book.shared_part, b"<si"):
        items = (
            pl.DataFrame({"x": [piece.decode("utf-8", errors="replace")]})
            .select(pl.col("x").str.split("<si").list.slice(1).alias("si"))
            .explode("si")
            .filter(pl.col("si").is_not_null())
            .select(runs_text(pl.col("si")).alias("text"))
        )
        items = decoded(items, "text")
        parts.append(items["text"])
        found += items.height
        if count is not None and found >= count:
            break
    return pl.concat(parts) if parts else pl.Series("text", [], dtype=pl.String)


# a cell as Excel, LibreOffice, openpyxl and xlsxwriter write it: its reference, style and
# type in that order, then a formula, a value or an inline string of one run; any other
# shape takes the general reading of `general_cells`
COMMON_CELL = (
    r'^[ \t\r\n]*r="([A-Z]{1,3})([0-9]+)"(?:[ \t\r\n]+s="([0-9]+)")?'
    r'(?:[ \t\r\n]+t="([a-zA-Z]+)")?[^>/]*(?:/>|>(?:<f(?:[ \t\r\n][^>]*)?(?:/>|>[^<]*</f>))?'
    r"(?:<v>([^<]*)</v>|<is><t(?:[ \t\r\n][^>]*)?>([^<]*)</t></is>)?</c>)"
)
CELL_ATTRIBUTES = {
    "letters": r'^(?:[^>]*?[ \t\r\n])?r="([A-Z]{1,3})[0-9]+"',
    "t": r'^(?:[^>]*?[ \t\r\n])?t="([a-zA-Z]+)"',
    "s": r'^(?:[^>]*?[ \t\r\n])?s="([0-9]+)"',
}
# rows and cells start at a control character XML text cannot hold, so a plain split finds
# them (`<c` also starts `<color>` inside a rich string, `<row` `<rowBreaks>`)
ROW_MARK, CELL_MARK = "\x02", "\x01"
CELL_SCHEMA = {
    "row": pl.Int64,
    "col": pl.Int64,
    "t": pl.String,
    "s": pl.Int64,
    "v": pl.String,
    "inline": pl.String,
}


@cache
def column_numbers() -> tuple[pl.Series, pl.Series]:
    """Every column's letters (A … XFD) and its number, 0-based."""
    letters = [chr(65 + i) for i in range(26)]
    names = [
        *letters,
        *(a + b for a in letters for b in letters),
        *(a + b + c for a in letters for b in letters for c in letters),
    ][:16_384]
    return pl.Series(names, dtype=pl.String), pl.Series(range(len(names)), dtype=pl.Int64)


def column_index(letters: pl.Expr) -> pl.Expr:
    """A column (0-based) from a cell reference's letters (`AB` is 27)."""
    names, numbers = column_numbers()
    return letters.replace_strict(names, numbers, default=None, return_dtype=pl.Int64)


ODD_TAGS = re.compile(rb"<(?:c|row)[>/\t\n\r]")  # `<c>`, `<row/>`: split at marks instead


def piece_rows(piece: bytes, last_row: int | None) -> tuple[pl.DataFrame, str, int | None]:
    """The rows of a piece of sheet XML: `row` (the sheet row, 1-based) and `xml`; the text
    a cell starts at; and the number of the piece's last row. A row without `r=""` follows
    the one before it (`last_row` for the piece's first: None when not known yet, and then
    a piece with such a row gives no rows and None)."""
    row_at, cell_at = "<row ", "<c "
    if ODD_TAGS.search(piece):
        for tag, mark in ((b"<row", ROW_MARK.encode()), (b"<c", CELL_MARK.encode())):
            for follow in (b" ", b">", b"/", b"\t", b"\n", b"\r"):
                piece = piece.replace(tag + follow, mark + follow)
        row_at, cell_at = ROW_MARK, CELL_MARK
    rows = (
        pl.DataFrame({"piece": [piece.decode("utf-8", errors="replace")]})
        .select(pl.col("piece").str.split(row_at).list.slice(1).alias("xml"))
        .explode("xml")
        .filter(pl.col("xml").is_not_null())
        .with_row_index("ordinal", offset=1)
        .with_columns(
            pl.col("xml")
            .str.extract(r'^(?:[^>]*?[ \t\r\n])?r="([0-9]+)"')
            .cast(pl.Int64)
            .alias("r")
        )
    )
    empty = pl.DataFrame(schema={"row": pl.Int64, "xml": pl.String})
    if rows.height == 0:
        return empty, cell_at, last_row
    if last_row is None and rows["r"].null_count():
        return empty, cell_at, None
    ordinal = pl.col("ordinal").cast(pl.Int64)
    rows = rows.select(
        (ordinal + (pl.col("r") - ordinal).forward_fill().fill_null(last_row or 0)).alias("row"),
        "xml",
    )
    return rows, cell_at, int(rows["row"].max() or last_row or 0)


def row_cells(rows: pl.DataFrame, cell_at: str) -> pl.DataFrame:
    """The cells of `piece_rows`' rows: `row`, `col` (0-based), `t`, `s`, `v` (the `<v>`
    text) and `inline` (an `<is>` string's text)."""
    cells = (
        rows.select("row", pl.col("xml").str.split(cell_at).list.slice(1).alias("c"))
        .explode("c")
        .filter(pl.col("c").is_not_null())
    )
    if cells.height == 0:
        return pl.DataFrame(schema=CELL_SCHEMA)
    common = common_cells(cells.get_column("c"))
    return general_cells(cells) if common is None else common


def common_cells(cells: pl.Series) -> pl.DataFrame | None:
    """Cells in the common shape (`COMMON_CELL`), each with its row from its reference;
    None when one is not."""
    common = cells.to_frame("c").select(pl.col("c").str.extract_groups(COMMON_CELL)).unnest("c")
    if common["1"].null_count():
        return None
    return common.select(
        pl.col("2").cast(pl.Int64).alias("row"),
        column_index(pl.col("1")).alias("col"),
        pl.col("4").alias("t"),
        pl.col("3").cast(pl.Int64).alias("s"),
        pl.col("5").alias("v"),
        pl.col("6").alias("inline"),
    )


def quick_cells(piece: bytes) -> pl.DataFrame | None:
    """The cells of a piece of sheet XML when every one is in the common shape, split at
    `<c ` with no row to number (each cell's reference gives it); None otherwise."""
    if ODD_TAGS.search(piece):
        return None
    cells = (
        pl.DataFrame({"piece": [piece.decode("utf-8", errors="replace")]})
        .select(pl.col("piece").str.split("<c ").list.slice(1).alias("c"))
        .explode("c")
        .filter(pl.col("c").is_not_null())
        .get_column("c")
    )
    if cells.len() == 0:
        return pl.DataFrame(schema=CELL_SCHEMA)
    return common_cells(cells)


def piece_cells(piece: bytes, last_row: int) -> tuple[pl.DataFrame, int]:
    """The cells of a piece of sheet XML (`row_cells`) and the number of its last row."""
    rows, cell_at, last = piece_rows(piece, last_row)
    return row_cells(rows, cell_at), last if last is not None else last_row


def general_cells(cells: pl.DataFrame) -> pl.DataFrame:
    """`piece_cells`'s reading of cells of any shape: attributes in any order, a cell without
    a reference (it follows the one before it in its row), rich inline strings."""
    cells = cells.with_columns(
        pl.int_range(pl.len()).over("row").cast(pl.Int64).alias("position"),
        *[pl.col("c").str.extract(p).alias(n) for n, p in CELL_ATTRIBUTES.items()],
        pl.col("c").str.extract(r"(?s)<v>(.*?)</v>").alias("v"),
        pl.when(pl.col("c").str.contains("<is>", literal=True))
        .then(runs_text(pl.col("c").str.extract(r"(?s)<is>(.*?)</is>")))
        .alias("inline"),
    )
    offset = column_index(pl.col("letters")) - pl.col("position")
    return cells.select(
        "row",
        (pl.col("position") + offset.forward_fill().over("row").fill_null(0)).alias("col"),
        "t",
        pl.col("s").cast(pl.Int64),
        "v",
        "inline",
    )


def shared_text(indices: pl.Series, strings: pl.Series) -> pl.Series:
    """The shared strings at these indices (null where an index is not one)."""
    if strings.len() == 0:
        return pl.Series([None] * indices.len(), dtype=pl.String)
    valid = indices.is_between(0, strings.len() - 1)
    found = strings.gather(indices.fill_null(0).clip(0, strings.len() - 1))
    return pl.select(pl.when(valid).then(found)).to_series()


def number_text(book: Book) -> pl.Expr:
    """A number cell as a spreadsheet shows it: a date (`2024-06-01 14:05:07`) when its style
    formats one, else the number as written (`1000`, `1000.5`, without trailing zeros)."""
    number = pl.col("v").str.strip_chars()
    serial = number.cast(pl.Float64, strict=False)
    # Excel's 1900 system counts a 29 February 1900 that never was: before it, a day more
    days = serial + 1 if book.epoch == EPOCH_1900 else serial
    days = pl.when(serial < 60).then(days).otherwise(serial)
    as_date = (
        (
            pl.lit(book.epoch).cast(pl.Datetime("ms"))
            + pl.duration(milliseconds=(days * 86_400_000).round(0).cast(pl.Int64))
        )
        .dt.strftime("%Y-%m-%d %H:%M:%S%.3f")
        .str.strip_suffix(".000")
    )
    plain = (
        pl.when(number.str.contains(NUMBER_AS_WRITTEN))
        .then(number.str.replace(r"(\.[0-9]*?)0+$", "$1").str.strip_suffix("."))
        .when(serial.is_not_null() & (serial.abs() < 1e15) & (serial == serial.round(0)))
        .then(serial.cast(pl.Int64).cast(pl.String))
        .otherwise(serial.cast(pl.String))
    )
    if not book.date_styles:
        return plain
    is_date = pl.col("s").is_in(pl.Series(sorted(book.date_styles), dtype=pl.Int64).implode())
    return pl.when(is_date & serial.is_not_null()).then(as_date).otherwise(plain)


def cell_values(cells: pl.DataFrame, book: Book, strings: pl.Series) -> pl.DataFrame:
    """`row`, `col` and `value`: each cell as text, as a spreadsheet shows it. Text cells
    and number cells are read apart, each only as its kind needs."""
    kind = pl.col("t").fill_null("n")
    texts = cells.filter(kind.is_in(["s", "inlineStr", "str"]))
    if texts.height:
        indices = texts.select(pl.col("v").str.strip_chars().cast(pl.Int64, strict=False))
        texts = texts.with_columns(shared_text(indices.to_series(), strings).alias("shared"))
        # the text of an inline or formula cell, escaped as XML writes it
        written = pl.coalesce(pl.col("inline"), pl.col("v")).alias("written")
        texts = decoded(texts.with_columns(written), "written").select(
            "row",
            "col",
            pl.when(kind == "s").then(pl.col("shared")).otherwise(pl.col("written")).alias("value"),
        )
    numbers = cells.filter(kind == "n").select("row", "col", number_text(book).alias("value"))
    others = cells.filter(~kind.is_in(["s", "inlineStr", "str", "n"])).select(
        "row",
        "col",
        pl.when(kind == "b")
        .then(
            pl.col("v")
            .str.strip_chars()
            .replace_strict(["1", "0"], ["true", "false"], default=None)
        )
        .when(kind == "d")
        .then(pl.col("v").str.strip_chars())
        .alias("value"),  # errors (#N/A) read as blank
    )
    parts = [
        p
        for p in (texts.select("row", "col", "value") if texts.height else None, numbers, others)
        if p is not None and p.height
    ]
    if not parts:
        return pl.DataFrame(schema={"row": pl.Int64, "col": pl.Int64, "value": pl.String})
    return pl.concat(parts)


def sheet_header(book: Book, sheet: Sheet, max_columns: int) -> Header | None:
    """The first row with a value, from its first value to its last; None for an empty
    sheet. Reads no further than the piece that holds that row (and the shared strings it
    names)."""
    last_row = 0
    for piece in sheet_pieces(book, sheet):
        cells, last_row = piece_cells(piece, last_row)
        named = cells.filter(pl.col("t") == "s").select(
            pl.col("v").str.strip_chars().cast(pl.Int64, strict=False).max()
        )
        top = named.item() if cells.height else None
        strings = (
            shared_strings(book, top + 1) if top is not None else pl.Series([], dtype=pl.String)
        )
        values = cell_values(cells, book, strings).filter(
            pl.col("value").str.strip_chars().str.len_bytes() > 0
        )
        if values.height == 0:
            continue
        first_row = values["row"].min()
        row = values.filter(pl.col("row") == first_row)
        first, last = int(row["col"].min()), int(row["col"].max())
        width = last - first + 1
        if width > max_columns:
            return Header(int(first_row), first, [""] * width)  # refused for its width
        named_cells = dict(zip(row["col"], row["value"], strict=True))
        names = [named_cells.get(c) or UNNAMED.format(c - first) for c in range(first, last + 1)]
        return Header(int(first_row), first, names)
    return None


def sheet_pieces(book: Book, sheet: Sheet) -> Iterator[bytes]:
    """The sheet's `<sheetData>` a piece at a time (`pieces`), nothing before or after it."""
    for piece in pieces(book.path, sheet.part, b"<row"):
        start = piece.find(b"<sheetData")
        if start >= 0:
            piece = piece[start:]
        end = piece.find(b"</sheetData>")
        if end >= 0:
            yield piece[:end]
            return
        yield piece


DIMENSION = re.compile(rb'<(?:\w+:)?dimension\b[^>]*?\bref="([A-Z]*)(\d*)(?::([A-Z]*)(\d+))?"')


def dimension_rows(book: Book, sheet: Sheet) -> tuple[int, str] | None:
    """The rows the sheet's `<dimension ref=…>` spans, and the ref; None without one."""
    with zipfile.ZipFile(book.path) as archive, archive.open(sheet.part) as stream:
        head = stream.read(64 << 10)
    found = DIMENSION.search(head)
    if found is None or not found.group(2):
        return None
    first = int(found.group(2))
    last = int(found.group(4)) if found.group(4) else first
    ref = found.group(0).split(b'ref="')[1].rstrip(b'"').decode()
    return last - first + 1, ref


def counted_rows(book: Book, sheet: Sheet) -> int:
    """How many `<row>` elements the sheet holds, counted in one pass over its XML."""
    rows = 0
    for piece in sheet_pieces(book, sheet):
        rows += len(re.findall(rb"<row[\s>/]", piece))
    return rows


Records = tuple[pl.DataFrame | None, int | None]


@dataclass(frozen=True)
class SheetReader:
    """Cuts a sheet's pieces into records under its header (`records`)."""

    book: Book
    header: Header
    strings: pl.Series

    def records(self, piece: bytes, last_row: int | None) -> Records:
        """The piece's records and its last row; (None, None) when it needs the last row of
        the piece before it, not known yet."""
        cells = quick_cells(piece)
        if cells is None:
            return self.records_of_rows(piece, last_row)
        last = int(cells["row"].max() or 0) if cells.height else last_row
        if last is None:  # no cell: count its rows the slow way
            return self.records_of_rows(piece, last_row)
        return self.wide(cells), last

    def records_of_rows(self, piece: bytes, last_row: int | None) -> Records:
        rows, cell_at, last = piece_rows(piece, last_row)
        if last is None:
            return None, None
        return self.wide(row_cells(rows, cell_at)), last

    def wide(self, cells: pl.DataFrame) -> pl.DataFrame | None:
        """The cells below the header as records (`_line`, then a column per header name);
        None when no row shows a value (a formula showing nothing is no record)."""
        header, width = self.header, len(self.header.names)
        cells = cells.filter(pl.col("row") > header.row)
        values = (
            cell_values(
                cells.filter(pl.col("col").is_between(header.first, header.first + width - 1)),
                self.book,
                self.strings,
            )
            .filter(pl.col("value").is_not_null())
            .with_columns((pl.col("col") - header.first).cast(pl.String))
        )
        shown = values.filter(pl.col("value").str.strip_chars().str.len_bytes() > 0)
        if shown.height == 0:
            return None
        values = values.join(shown.select("row").unique(), on="row", how="semi")
        wide = values.pivot(on="col", index="row", values="value", aggregate_function="first")
        return wide.sort("row").select(
            pl.col("row").cast(pl.Int64).alias("_line"),
            *[
                (pl.col(c) if c in wide.columns else pl.lit(None, dtype=pl.String)).alias(name)
                for c, name in zip(map(str, range(width)), header.names, strict=True)
            ],
        )


def sheet_rows(book: Book, sheet: Sheet, header: Header, max_rows: int) -> pl.DataFrame:
    """The sheet's records under its header, as text, with `_line` (the sheet row). Raises
    TooManyRows past `max_rows` records. Pieces are cut into rows in order, and their cells
    read two at a time (polars works outside the GIL), at most a few pieces in memory."""
    reader = SheetReader(book, header, shared_strings(book))
    parts: list[pl.DataFrame] = []
    count, last_row = 0, 0

    def keep(piece: bytes, done: Records) -> None:
        """Each piece in order: read again now where it needed the row before it."""
        nonlocal count, last_row
        part, last = done if done[1] is not None else reader.records(piece, last_row)
        last_row = last if last is not None else last_row
        if part is None:
            return
        count += part.height
        if count > max_rows:
            raise TooManyRows(f"more than {max_rows:,} rows after its header")
        parts.append(part)

    pending: deque[tuple[bytes, Future[Records]]] = deque()
    with ThreadPoolExecutor(max_workers=2) as pool:
        for i, piece in enumerate(sheet_pieces(book, sheet)):
            pending.append((piece, pool.submit(reader.records, piece, 0 if i == 0 else None)))
            if len(pending) > 2:
                done_piece, future = pending.popleft()
                keep(done_piece, future.result())
        while pending:
            done_piece, future = pending.popleft()
            keep(done_piece, future.result())
    schema = {"_line": pl.Int64, **dict.fromkeys(header.names, pl.String)}
    frame = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
    return frame.select(*header.names, "_line")
