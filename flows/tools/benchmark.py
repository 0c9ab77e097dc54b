"""Speed and memory of each step at growing sizes: `python -m flows.tools.benchmark`;
`--fan-out` measures many reports of one export on each task runner.

For each size it generates canonical exports with `funnel generate` (10 follow-ups and
about 5 stage-history rows per deal), then, each in a fresh process: polars alone reading
the three CSV files; the pipeline's steps (read + validate, derive, compute, render HTML +
PDF) with their wall time and peak memory; and the whole
`funnel run` as a user runs it (Prefect included). It prints a table; nothing here is a
test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

SIZES = (10_000, 100_000, 1_000_000)
PERIOD = "2026-09"
TIMEZONE = "Asia/Shanghai"
# about 5 stage-history rows per deal: ~2.6 stage entries (most deals leak early) + updates
UPDATES_PER_OPPORTUNITY = 2.4


def machine() -> str:
    """CPU model, cores, memory and software versions, for the record."""
    import os

    import polars as pl

    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in info.splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    memory = (
        next(
            (
                int(line.split()[1]) // 1024 // 1024
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            ),
            0,
        )
        if Path("/proc/meminfo").exists()
        else 0
    )
    return (
        f"{model}, {os.cpu_count()} cores, {memory} GiB, {platform.machine()}, "
        f"Python {platform.python_version()}, polars {pl.__version__}"
    )


def peak_mib() -> float:
    """The peak memory since the last call. On Linux the high-water mark is reset to the
    current resident size after reading it (/proc/self/clear_refs); elsewhere this is the
    process's peak so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return peak


def bare_read(folder: str) -> dict[str, float]:
    import polars as pl

    started = time.perf_counter()
    rows = sum(
        pl.read_csv(Path(folder) / f"{t}.csv", infer_schema=False).height
        for t in ("opportunities", "stage_history", "followups")
    )
    return {"seconds": time.perf_counter() - started, "peak_mib": peak_mib(), "rows": rows}


def pipeline_steps(folder: str) -> dict[str, dict[str, float]]:
    """The report flow's own steps (the functions inside its tasks), timed one by one."""
    from flows.report_flow import load_inputs, validate
    from report_templates.context import report_context
    from report_templates.render import render_html, render_pdf
    from schemas.vocabulary import FOLLOWUPS, OPPORTUNITIES, STAGE_HISTORY
    from transforms.funnel_model import RunSettings
    from transforms.intermediate.derived import derive_tables
    from transforms.metrics_document import funnel_metrics
    from transforms.periods import parse_period

    steps: dict[str, dict[str, float]] = {}

    def step(name: str, started: float) -> None:
        steps[name] = {"seconds": time.perf_counter() - started, "peak_mib": peak_mib()}

    settings = RunSettings(timezone=TIMEZONE, currency="CNY")
    period = parse_period(PERIOD, TIMEZONE)
    peak_mib()
    started = time.perf_counter()
    checked = validate.fn(load_inputs.fn(Path(folder), settings))
    step("read_validate", started)
    tables = checked.tables
    started = time.perf_counter()
    derived = derive_tables(
        tables[OPPORTUNITIES], tables[STAGE_HISTORY], as_of=period.end, funnel=settings.funnel
    )
    step("derive", started)
    started = time.perf_counter()
    metrics = funnel_metrics(
        tables[OPPORTUNITIES],
        derived,
        tables[FOLLOWUPS],
        period=period,
        settings=checked.settings,
        history_available=checked.history_available,
    )
    metrics |= {"data_quality": checked.quality, "source": checked.source}
    step("compute", started)
    started = time.perf_counter()
    context = report_context(metrics, input_files=checked.files, lang="en", funnel=settings.funnel)
    render_pdf(render_html(context))
    step("render", started)
    return steps


def in_fresh_process(function: str, folder: Path) -> dict:
    code = (
        f"import json, flows.tools.benchmark as b; print(json.dumps(b.{function}({str(folder)!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def whole_run(folder: str) -> dict[str, float]:
    """`funnel run` as a user runs it, in its own process: wall time and peak memory."""
    from flows.io.resources import SAMPLE_CONFIG

    funnel = Path(sys.executable).parent / "funnel"
    out = Path(folder).parent / f"run-{Path(folder).name}"
    started = time.perf_counter()
    arguments = ["run", "--input", folder, "--period", PERIOD, "--out", str(out)]
    subprocess.run(
        [str(funnel), *arguments, "--config", str(SAMPLE_CONFIG)],
        check=True,
        capture_output=True,
    )
    return {
        "seconds": time.perf_counter() - started,
        "peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


FAN_OUT_RUNNERS = {
    "1 process": ["--runner", "process", "--workers", "1"],
    "2 processes": ["--runner", "process", "--workers", "2"],
    "local Dask, 2 workers": ["--runner", "dask", "--workers", "2"],
}


def report_set_config(folder: Path, reports: int) -> Path:
    """The sample's funnel.toml with `reports` [[reports]]: one per owner, region, industry
    of the generated export (in that order), as teams, regions and business units."""
    from flows.io.resources import SAMPLE_CONFIG
    from flows.tools.generate import INDUSTRIES, OWNERS, REGIONS

    filters = [
        *(("owner", v) for v in OWNERS),
        *(("region", v) for v in REGIONS),
        *(("industry", v) for v in INDUSTRIES),
    ][:reports]
    entries = "".join(
        f'\n[[reports]]\nname = "r{i:02d}"\nfilter = {{ {column} = {json.dumps(value)} }}\n'
        for i, (column, value) in enumerate(filters)
    )
    path = folder / f"funnel-{reports}-reports.toml"
    path.write_text(SAMPLE_CONFIG.read_text(encoding="utf-8") + entries, encoding="utf-8")
    return path


def fan_out_run(folder: str, config: str, out: str, runner: str, months: int) -> dict:
    """`funnel backfill --reports all` over `months` months as a user runs it, in its own
    process: wall time, the largest process's peak memory, and from the manifests the time
    spent reading once against the time spent per report."""
    funnel = Path(sys.executable).parent / "funnel"
    from transforms.periods import parse_period

    first = parse_period(PERIOD).shifted(1 - months).label
    arguments = ["backfill", "--input", folder, "--from", first, "--to", PERIOD, "--out", out]
    started = time.perf_counter()
    subprocess.run(
        [str(funnel), *arguments, "--config", config, "--reports", "all", "--force"]
        + FAN_OUT_RUNNERS[runner],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    manifests = [json.loads(p.read_text()) for p in Path(out).glob("*/*/manifest.json")]
    steps = [m["timings_seconds"]["steps"] for m in manifests]
    read = steps[0]["load"] + steps[0]["validate"]
    per_report = sum(v for s in steps for k, v in s.items() if k not in ("load", "validate"))
    return {
        "seconds": seconds,
        "peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "reports": len(manifests),
        "read": read,
        "per_report": per_report,
    }


def fan_out(args: argparse.Namespace) -> None:
    """The fan-out benchmark: `--reports` reports x `--months` months over one export."""
    from flows.tools.generate import GenerateSpec, generate_exports

    folder = args.work / f"exports-{args.deals}"
    if not (folder / "followups.csv").exists():
        generate_exports(
            folder,
            GenerateSpec(
                opportunities=args.deals,
                seed=3,
                followups_per_opportunity=10,
                updates_per_opportunity=UPDATES_PER_OPPORTUNITY,
            ),
        )
    config = report_set_config(args.work, args.reports)
    print(
        f"fan-out: {args.reports} reports and the company, {args.months} months, "
        f"{args.deals:,} deals"
    )
    print(
        f"{'runner':<22} {'reports':>7} {'wall':>9} {'per report':>10} {'peak MiB':>9} "
        f"{'read once':>10} {'report work':>12} {'read share':>10}"
    )
    for runner in FAN_OUT_RUNNERS:
        out = args.work / f"fan-out-{runner.split()[0]}-{runner.split()[1]}"
        code = (
            "import json, flows.tools.benchmark as b; print(json.dumps(b.fan_out_run("
            f"{str(folder)!r}, {str(config)!r}, {str(out)!r}, {runner!r}, {args.months})))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        each = r["seconds"] / r["reports"]
        print(
            f"{runner:<22} {r['reports']:>7} {r['seconds']:>8.1f}s {each:>9.2f}s "
            f"{r['peak_mib']:>9,.0f} {r['read']:>9.1f}s {r['per_report']:>11.1f}s "
            f"{r['read'] / (r['read'] + r['per_report']):>9.1%}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--work", type=Path, default=Path("out/benchmark"))
    parser.add_argument(
        "--fan-out", action="store_true", help="reports x months over one export, per runner"
    )
    parser.add_argument("--deals", type=int, default=100_000, help="with --fan-out")
    parser.add_argument("--reports", type=int, default=20, help="with --fan-out")
    parser.add_argument("--months", type=int, default=12, help="with --fan-out")
    args = parser.parse_args(argv)
    from flows.tools.generate import GenerateSpec, generate_exports

    print(f"machine: {machine()}")
    if args.fan_out:
        fan_out(args)
        return 0
    header = (
        f"{'deals':>9} {'rows':>11} {'bare read':>10} {'read+valid':>11} {'derive':>8} "
        f"{'compute':>8} {'render':>8} {'peak MiB':>9} {'funnel run':>11} {'run MiB':>8} "
        f"{'x read':>7}"
    )
    print(header)
    for size in (int(s) for s in args.sizes.split(",")):
        folder = args.work / f"exports-{size}"
        if not (folder / "followups.csv").exists():
            generate_exports(
                folder,
                GenerateSpec(
                    opportunities=size,
                    seed=3,
                    followups_per_opportunity=10,
                    updates_per_opportunity=UPDATES_PER_OPPORTUNITY,
                ),
            )
        bare = in_fresh_process("bare_read", folder)
        steps = in_fresh_process("pipeline_steps", folder)
        run = in_fresh_process("whole_run", folder)
        validate_compute = sum(steps[s]["seconds"] for s in ("read_validate", "derive", "compute"))
        print(
            f"{size:>9,} {bare['rows']:>11,} {bare['seconds']:>9.2f}s "
            f"{steps['read_validate']['seconds']:>10.2f}s {steps['derive']['seconds']:>7.2f}s "
            f"{steps['compute']['seconds']:>7.2f}s {steps['render']['seconds']:>7.2f}s "
            f"{max(s['peak_mib'] for s in steps.values()):>9,.0f} {run['seconds']:>10.2f}s "
            f"{run['peak_mib']:>8,.0f} "
            f"{validate_compute / bare['seconds']:>6.1f}x",
            flush=True,
        )
        for name, figures in steps.items():
            print(
                f"          {name:<14} {figures['seconds']:8.2f}s  peak memory in the step "
                f"{figures['peak_mib']:8,.0f} MiB",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
