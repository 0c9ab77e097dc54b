"""Speed and memory of each step at growing sizes: `python -m flows.tools.benchmark`.

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
    from flows.report_flow import (
        compute,
        derive,
        load_inputs,
        render_report_html,
        render_report_pdf,
        validate,
    )
    from transforms.funnel_model import RunSettings
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
    started = time.perf_counter()
    derived = derive.fn(checked, period)
    step("derive", started)
    started = time.perf_counter()
    metrics = compute.fn(checked, derived, period, target=None)
    step("compute", started)
    started = time.perf_counter()
    render_report_pdf.fn(render_report_html.fn(metrics, checked.files, "en", settings.funnel))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--work", type=Path, default=Path("out/benchmark"))
    args = parser.parse_args(argv)
    from flows.tools.generate import GenerateSpec, generate_exports

    print(f"machine: {machine()}")
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
