"""Peak memory of reading one export in different shapes:
`python -m benchmarks.read_memory` (from the checkout).

The same generated deals (`funnel generate`) as a CSV file and as an XLSX workbook (inline
strings, as streaming writers save them), a workbook whose formula column was filled down to
the sheet's last row (1,048,576), and the CSV beside a stray 2 GiB sparse file. Each is read
and validated (`read_inputs`, `check_inputs`: what a run holds before any figure) in a fresh
process under `/usr/bin/time -v`, which gives its peak resident memory and wall time; the
ratio is against the CSV's. Nothing here is a test: it prints a table for the README.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import polars as pl

from funnel_reports.flows.generate import GenerateSpec, generate_exports

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE = "http://schemas.openxmlformats.org/package/2006"
SHEET_ROWS = 1_048_576
READ = (
    "import sys; from pathlib import Path; "
    "from funnel_reports.flows.io.exports import read_inputs; "
    "from funnel_reports.transforms.staging.checks import check_inputs; "
    "from funnel_reports.transforms.funnel_model import RunSettings; "
    "c = check_inputs(read_inputs(Path(sys.argv[1]), RunSettings(timezone='Asia/Shanghai'))); "
    "print(c.quality['opportunities']['rows_read'], c.quality['opportunities']['rows_valid'])"
)


def column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def escaped(column: pl.Expr) -> pl.Expr:
    return (
        column.str.replace_all("&", "&amp;", literal=True)
        .str.replace_all("<", "&lt;", literal=True)
        .str.replace_all(">", "&gt;", literal=True)
    )


# the workbook's parts besides its one sheet
SMALL_PARTS = {
    "[Content_Types].xml": (
        f'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="{PACKAGE}/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PACKAGE}/'
        f'relationships"><Relationship Id="rId1" Type="{RELS}/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN}" '
        f'xmlns:r="{RELS}"><sheets><sheet name="opportunities" sheetId="1" r:id="rId1"/>'
        "</sheets></workbook>"
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="{PACKAGE}/'
        f'relationships"><Relationship Id="rId1" Type="{RELS}/worksheet" '
        'Target="worksheets/sheet1.xml"/></Relationships>'
    ),
}


def rows_xml(frame: pl.DataFrame, letters: list[str], *, fill_down: bool) -> pl.Series:
    """Each row of `frame` as a sheet row of inline strings (from sheet row 2), with the
    formula cell after the last column when `fill_down`."""
    width = frame.width
    row = pl.int_range(2, frame.height + 2).cast(pl.String)

    def cell(i: int, value: pl.Expr) -> pl.Expr:
        return pl.when(value.is_not_null()).then(
            pl.concat_str(
                pl.lit(f'<c r="{letters[i]}'),
                row,
                pl.lit('" t="inlineStr"><is><t>'),
                escaped(value),
                pl.lit("</t></is></c>"),
            )
        )

    fill = (
        [
            pl.concat_str(
                pl.lit(f'<c r="{letters[width]}'), row, pl.lit('" t="str"><f>""</f><v></v></c>')
            )
        ]
        if fill_down
        else []
    )
    return frame.select(
        pl.concat_str(
            pl.lit('<row r="'),
            row,
            pl.lit('">'),
            pl.concat_str(
                [cell(i, pl.col(c)) for i, c in enumerate(frame.columns)], ignore_nulls=True
            ),
            *fill,
            pl.lit("</row>"),
        ).alias("xml")
    )["xml"]


def write_workbook(csv: Path, path: Path, *, fill_down: bool) -> None:
    """The CSV's rows as one sheet of inline strings; with `fill_down`, a formula column after
    the header's last one holds an empty text in every row to the sheet's last."""
    frame = pl.read_csv(csv, infer_schema=False)
    width = frame.width
    letters = [column_letters(i) for i in range(width + 1)]
    body = rows_xml(frame, letters, fill_down=fill_down)
    header = "".join(
        f'<c r="{letters[i]}1" t="inlineStr"><is><t>{xml_escape(name)}</t></is></c>'
        for i, name in enumerate(frame.columns)
    )
    last = SHEET_ROWS if fill_down else frame.height + 1
    tail = (
        "".join(
            f'<row r="{r}"><c r="{letters[width]}{r}" t="str"><f>""</f><v></v></c></row>'
            for r in range(frame.height + 2, SHEET_ROWS + 1)
        )
        if fill_down
        else ""
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as book:
        for name, text in SMALL_PARTS.items():
            book.writestr(name, text)
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN}">'
                f'<dimension ref="A1:{letters[width - (0 if fill_down else 1)]}{last}"/>'
                f'<sheetData><row r="1">{header}</row>'.encode()
            )
            for start in range(0, body.len(), 50_000):
                sheet.write("".join(body.slice(start, 50_000).to_list()).encode())
            sheet.write(f"{tail}</sheetData></worksheet>".encode())


def measured(folder: Path) -> dict[str, str]:
    """Peak resident memory and wall time of reading and validating the folder, in a fresh
    process."""
    done = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-c", READ, str(folder)],
        capture_output=True,
        text=True,
        check=True,
    )
    fields = dict(line.strip().rsplit(": ", 1) for line in done.stderr.splitlines() if ": " in line)
    return {
        "peak_mib": f"{int(fields['Maximum resident set size (kbytes)']) / 1024:,.0f}",
        "wall": fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"],
        "rows": done.stdout.strip(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--work", default="out/read-memory")
    args = parser.parse_args(argv)
    work = Path(args.work)
    source = work / "generated"
    if not (source / "opportunities.csv").exists():
        generate_exports(
            source, GenerateSpec(opportunities=args.deals, followups_per_opportunity=0)
        )
    cases = {
        "CSV": work / "csv",
        "XLSX": work / "xlsx",
        "XLSX, a formula filled down to row 1,048,576": work / "xlsx-filled",
        "CSV beside a stray 2 GiB sparse file": work / "csv-sparse",
    }
    for folder in cases.values():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    shutil.copy(source / "opportunities.csv", cases["CSV"])
    write_workbook(source / "opportunities.csv", cases["XLSX"] / "deals.xlsx", fill_down=False)
    write_workbook(
        source / "opportunities.csv",
        cases["XLSX, a formula filled down to row 1,048,576"] / "deals.xlsx",
        fill_down=True,
    )
    shutil.copy(source / "opportunities.csv", cases["CSV beside a stray 2 GiB sparse file"])
    with (cases["CSV beside a stray 2 GiB sparse file"] / "notes.csv").open("wb") as stray:
        stray.write(b"id,text\n")
        stray.truncate(2 << 30)
    baseline = None
    print("| export | file bytes | peak MiB | × CSV | wall | rows read, valid |")
    print("|---|---:|---:|---:|---:|---|")
    for label, folder in cases.items():
        result = measured(folder)
        peak = float(result["peak_mib"].replace(",", ""))
        baseline = baseline or peak
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(
            f"| {label} | {size:,} | {result['peak_mib']} | {peak / baseline:.2f} | "
            f"{result['wall']} | {result['rows']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
