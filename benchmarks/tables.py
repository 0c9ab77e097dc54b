"""What the rows behind the figures cost: `python -m benchmarks.tables`.

It generates a canonical export of `--opportunities` deals (100,000 by default, about 5
stage-history rows and 10 follow-ups each, as `benchmarks.benchmark` does; `--work` keeps
it), then runs `funnel run` for one month in fresh processes, `--repeat` times each (the
fastest is shown), with the sample's settings and `[report] outputs`:

- `pdf, html`: the report alone;
- `pdf, html, parquet, xlsx`: the report with the deal-level tables and the workbook;

and prints the two wall times, what the tables add as a share of the first, each step's
seconds from the manifest (`tables` and `write` are where they go) and the tables' own steps
as a share of the first (steady where two wall times differ by noise), the rows of each table
and the size of each file. Then LibreOffice reads every sheet of the workbook
(`soffice --headless --convert-to csv`, when installed): its time, and each table's rows as
read (over the sheets it goes on in, past 1,048,575 rows) against the table's. Nothing here
is a test.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.benchmark import PERIOD, funnel_command, generated_export, machine

OUTPUTS = {"report": '["pdf", "html"]', "report and tables": '["pdf", "html", "parquet", "xlsx"]'}
# LibreOffice's CSV filter: comma, double quote, UTF-8, from row 1, every sheet (-1) to a file
EVERY_SHEET_AS_CSV = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"


def timed_run(folder: Path, work: Path, name: str, outputs: str, repeat: int) -> dict:
    """The fastest of `repeat` runs of the period with these outputs, and its manifest."""
    from funnel_reports.flows.io.resources import SAMPLE_CONFIG

    config = work / f"{name.replace(' ', '-')}.toml"
    config.write_text(
        SAMPLE_CONFIG.read_text(encoding="utf-8") + f"outputs = {outputs}\n", encoding="utf-8"
    )
    out = work / f"out-{name.replace(' ', '-')}"
    best = None
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        arguments = ["run", "--input", str(folder), "--period", PERIOD, "--out", str(out)]
        run = funnel_command([*arguments, "--config", str(config), "--allow-stale"])
        if run["status"]:
            sys.exit(f"funnel run ({name}) failed with status {run['status']}")
        best = run if best is None or run["seconds"] < best["seconds"] else best
    report = out / PERIOD
    manifest = json.loads((report / "manifest.json").read_text(encoding="utf-8"))
    return {**(best or {}), "folder": report, "manifest": manifest}


def libreoffice_reads(workbook: Path, rows: dict[str, int]) -> None:
    """Every sheet of `workbook` as LibreOffice reads it, timed, against the table's rows."""
    soffice = shutil.which("soffice")
    if soffice is None:
        print("LibreOffice: not installed (apt-get install libreoffice-calc-nogui)")
        return
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        subprocess.run(
            [
                soffice,
                "--headless",
                "--convert-to",
                EVERY_SHEET_AS_CSV,
                "--outdir",
                scratch,
                str(workbook),
            ],
            check=True,
            capture_output=True,
        )
        seconds = time.perf_counter() - started
        print(f"LibreOffice read every sheet in {seconds:.1f} s:")
        for name, height in rows.items():
            read = sheet_rows(Path(scratch), workbook.stem, name)
            print(
                f"  {name:<14} {height:>10,} rows, read {read if read is not None else 'none':>10}"
            )


def sheet_rows(folder: Path, stem: str, table: str) -> int | None:
    """The rows LibreOffice wrote for `table`: its sheet's CSV and those of the sheets it
    goes on in (`<table>_2`, ...), each less its header; None without its sheet."""
    parts = [folder / f"{stem}-{table}.csv"]
    parts += sorted(folder.glob(f"{stem}-{table}_[0-9]*.csv"))
    if not parts[0].exists():
        return None
    return sum(sum(1 for _ in part.open(encoding="utf-8")) - 1 for part in parts)


def table_rows(report: Path) -> dict[str, int]:
    """Each table's rows (its Parquet file), and the size of every file the tables make."""
    import polars as pl

    rows = {}
    print("  files:")
    for path in sorted((report / "tables").glob("*.parquet")):
        rows[path.stem] = pl.scan_parquet(path).select(pl.len()).collect().item()
        print(
            f"    tables/{path.name:<22} {rows[path.stem]:>10,} rows "
            f"{path.stat().st_size / 2**20:8.1f} MiB"
        )
    workbook = report / "report.xlsx"
    print(f"    {workbook.name:<29} {'':>15} {workbook.stat().st_size / 2**20:8.1f} MiB")
    return rows


def tables_steps(plain: dict, full: dict) -> float:
    """What the tables' own steps took in `full`'s run, from the two manifests: computing
    them, and the write step less the report alone's."""
    plain_steps, full_steps = plain["timings_seconds"]["steps"], full["timings_seconds"]["steps"]
    return full_steps.get("tables", 0.0) + full_steps["write"] - plain_steps["write"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--work", type=Path, help="a folder that keeps the export between runs")
    args = parser.parse_args(argv)
    print(machine())
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        folder = generated_export(work, args.opportunities)
        runs = {
            name: timed_run(folder, work, name, outputs, args.repeat)
            for name, outputs in OUTPUTS.items()
        }
        plain, full = runs["report"], runs["report and tables"]
        added = full["seconds"] - plain["seconds"]
        print(f"\n{args.opportunities:,} deals, {PERIOD}: funnel run, fastest of {args.repeat}")
        for name, run in runs.items():
            print(f"  {name:<18} {run['seconds']:7.1f} s  peak {run['peak_mib']:7.0f} MiB")
        print(
            f"  the tables add {added:.1f} s, {added / plain['seconds']:.0%} of the report's run "
            "(goal: under 25 %)"
        )
        steps = full["manifest"]["timings_seconds"]["steps"]
        print("  steps: " + ", ".join(f"{step} {seconds:.2f} s" for step, seconds in steps.items()))
        own = tables_steps(plain["manifest"], full["manifest"])
        print(
            f"  the tables' own steps (computing them, and the write step's difference): "
            f"{own:.2f} s, {own / plain['seconds']:.0%} of the report's run (the two wall "
            "times also differ by the runs' noise)"
        )
        rows = table_rows(full["folder"])
        libreoffice_reads(full["folder"] / "report.xlsx", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
