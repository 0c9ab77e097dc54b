"""Speed and memory of each step at growing sizes: `python -m benchmarks.benchmark`;
`--fan-out` measures many reports of one export on each task runner.

For each size it generates canonical exports with `funnel generate` (10 follow-ups and
about 5 stage-history rows per deal) unless `--work` already holds them, then measures, each
in a fresh process with its wall time and peak memory:

- `bare read`: polars alone reading the three CSV files as text;
- the report flow's steps (read + validate, derive, compute, render HTML + PDF), the functions
  inside its tasks, with the peak memory over them (`--no-steps` leaves them out);
- `core`: the project computing the core figures (read + validate, derive, and the marts of
  `funnel`, `conversion`, `dwell`, `stalls`, the stage win probabilities, the weighted
  pipeline and `kpis`: `project_core_figures`);
- `DuckDB`: the same figures computed in DuckDB SQL from the same CSV files, read included
  (`tests.oracle.duckdb_figures`; DuckDB uses every core unless `--duckdb-threads`);
- the whole `funnel run` as a user runs it, Prefect included, twice (`--no-run` leaves it
  out): the faster time is shown, and the two metrics.json must be the same bytes.

It prints one row per size: rows, bare read, read + validate, derive, compute, render, peak
MiB of the steps, `funnel run` and its peak MiB, read + validate + derive + compute as a
multiple of the bare read (`x read`), the core figures' time and peak MiB in the project and in
DuckDB, the ratio project / DuckDB, read + validate as a multiple of the bare read
(`valid/read`), whether the two sets of figures agree, and whether the two runs wrote the
same metrics.json (`rerun same`). Under the row come each step's
time and peak memory and the parts of the core figures (`core: ...`, then `core figures:
project ... / DuckDB ... = ...x`, with the CPU time of each, all threads: on a shared machine
it varies less than the wall time). Integers must agree exactly, floats to a relative 1e-9,
nulls as nulls; on any disagreement it prints the figure and key that differ (`DISAGREE
<figure>.<key>: project ... DuckDB ...`) and exits with status 1, as it does when the reruns
differ. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SIZES = (10_000, 100_000, 1_000_000)
PERIOD = "2026-09"
# about 5 stage-history rows per deal: ~2.6 stage entries (most deals leak early) + updates
UPDATES_PER_OPPORTUNITY = 2.4
# the checkout: each measurement's fresh process imports this module (and the DuckDB oracle
# in tests/oracle) from there
CHECKOUT = Path(__file__).resolve().parents[1]


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
    try:
        import duckdb

        duckdb_version = f", DuckDB {duckdb.__version__}"
    except ImportError:
        duckdb_version = ""
    return (
        f"{model}, {os.cpu_count()} cores, {memory} GiB, {platform.machine()}, "
        f"Python {platform.python_version()}, polars {pl.__version__}{duckdb_version}"
    )


def peak_mib() -> float:
    """The peak memory since the last call. On Linux the high-water mark is reset to the
    current resident size after reading it (/proc/self/clear_refs); elsewhere this is the
    process's peak so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return peak


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare_read(folder: str) -> dict[str, float]:
    import polars as pl

    started = time.perf_counter()
    rows = sum(
        pl.read_csv(Path(folder) / f"{t}.csv", infer_schema=False).height
        for t in ("opportunities", "stage_history", "followups")
    )
    return {"seconds": time.perf_counter() - started, "peak_mib": peak_mib(), "rows": rows}


def benchmark_settings():  # -> RunSettings (imported late: each measurement imports its own)
    """The settings of the sample's funnel.toml, which `funnel run` is given here too."""
    from funnel_reports.flows.io.config import settings_from_toml
    from funnel_reports.flows.io.resources import SAMPLE_CONFIG

    return settings_from_toml(SAMPLE_CONFIG)


def pipeline_steps(folder: str) -> dict[str, dict[str, float]]:
    """The report flow's own steps (the functions of its tasks), timed one by one; the peak
    memory is the process's after each."""
    from funnel_reports.flows.report_flow import compute_metrics, read_and_check, render_report
    from funnel_reports.transforms.periods import parse_period

    settings = benchmark_settings()
    period = parse_period(PERIOD, settings.timezone)
    peak_mib()
    timings: dict[str, float] = {}
    peaks: dict[str, float] = {}
    checked, read = read_and_check.fn(Path(folder), settings)
    timings["read_validate"], peaks["read_validate"] = sum(read.values()), peak_mib()
    metrics = compute_metrics.fn(
        checked, period, target_override=None, report=None, company_rates=None, timings=timings
    ).metrics
    peaks["compute"] = peak_mib()
    render_report.fn(metrics, checked, timings, period.label)
    peaks["render"] = peak_mib()
    timings["render"] = timings.pop("render_html") + timings.pop("render_pdf")
    return {
        name: {"seconds": seconds, "peak_mib": peaks.get(name, peaks["compute"])}
        for name, seconds in timings.items()
    }


def core_marts(
    opportunities, derived, followups, *, period, settings, history_available: bool
) -> dict[str, Any]:
    """The core figures of `derived` (`transforms.intermediate.derived.DerivedTables`) as
    metrics.json holds them (`FigureInputs.core`, the rates and probabilities), keyed as
    metrics.json; and the deal states at the period end by state."""
    import polars as pl

    from funnel_reports.transforms.metrics_document import FigureInputs, rows, single_row
    from funnel_reports.transforms.periods import Window

    inputs = FigureInputs(
        opportunities,
        derived,
        followups,
        window=Window(period, settings.window_months),
        settings=settings,
        history_available=history_available,
    )
    core = inputs.core
    return {
        "deal_states": inputs.states.group_by("state")
        .agg(pl.len().alias("count"), pl.col("amount_at").sum())
        .sort("state")
        .collect()
        .to_dicts(),
        "funnel": rows(core.funnel),
        "conversion": rows(core.conversion),
        "dwell": rows(core.dwell),
        "stalls": single_row(core.stalls),
        "forecast": {
            "stage_probabilities": inputs.probabilities.to_dicts(),
            "p_bar": inputs.rates.p_bar,
            "resolved_in_window": inputs.resolved,
            **single_row(core.pipeline),
        },
        "kpis": single_row(core.kpis),
    }


def project_core_figures(folder: str, period: str = PERIOD) -> dict[str, Any]:
    """The core figures computed by the project's own functions (read + validate as the flow's
    tasks do, derive, the core marts), timed, with the peak memory over them and the rows
    validation quarantined."""
    from funnel_reports.flows.report_flow import read_and_check
    from funnel_reports.schemas.vocabulary import FOLLOWUPS, OPPORTUNITIES, STAGE_HISTORY
    from funnel_reports.transforms.metrics_document import derived_at
    from funnel_reports.transforms.periods import parse_period

    settings = benchmark_settings()
    report_period = parse_period(period, settings.timezone)
    peak_mib()
    cpu_started, started = cpu_seconds(), time.perf_counter()
    checked, _ = read_and_check.fn(Path(folder), settings)
    read_validate = time.perf_counter() - started
    tables = checked.tables
    derive_started = time.perf_counter()
    derived = derived_at(
        tables[OPPORTUNITIES],
        tables[STAGE_HISTORY],
        period=report_period,
        settings=checked.settings.metrics,
    )
    derive = time.perf_counter() - derive_started
    marts_started = time.perf_counter()
    figures = core_marts(
        tables[OPPORTUNITIES],
        derived,
        tables[FOLLOWUPS],
        period=report_period,
        settings=checked.settings.metrics,
        history_available=checked.history_available,
    )
    marts = time.perf_counter() - marts_started
    figures = {
        "rows": {name: quality["rows_valid"] for name, quality in checked.quality.items()},
        **figures,
    }
    return {
        "seconds": time.perf_counter() - started,
        "read_validate": read_validate,
        "derive": derive,
        "marts": marts,
        "cpu_seconds": cpu_seconds() - cpu_started,
        "peak_mib": peak_mib(),
        "rows_quarantined": sum(q["rows_quarantined"] for q in checked.quality.values()),
        "figures": figures,
    }


def duckdb_core_figures(
    folder: str, threads: int | None = None, period: str = PERIOD
) -> dict[str, Any]:
    """The core figures computed in DuckDB SQL from the same CSV files, read included, timed,
    with the peak memory over them."""
    import duckdb  # noqa: F401  (imported before the clock starts, as polars is)

    from funnel_reports.transforms.periods import parse_period
    from tests.oracle.duckdb_figures import core_figures

    settings = benchmark_settings()
    report_period = parse_period(period, settings.timezone)
    timings: dict[str, float] = {}
    peak_mib()
    cpu_started, started = cpu_seconds(), time.perf_counter()
    figures = core_figures(Path(folder), report_period, settings, threads=threads, timings=timings)
    return {
        "seconds": time.perf_counter() - started,
        **timings,
        "cpu_seconds": cpu_seconds() - cpu_started,
        "peak_mib": peak_mib(),
        "figures": figures,
    }


# list items are named by the first of these keys they hold
ITEM_KEYS = ("stage", "state", "from", "reason", "owner", "opportunity_id")
RELATIVE_TOLERANCE = 1e-9


def disagreements(project: Any, other: Any, where: str = "") -> list[str]:
    """Where two sets of figures differ: integers exactly, floats to a relative 1e-9, nulls as
    nulls, text and flags exactly, lists item by item; one line per difference."""

    def differ(why: str) -> list[str]:
        return [f"{where or 'figures'}: {why}"]

    if isinstance(project, dict) and isinstance(other, dict):
        found = []
        for key in list(project) + [k for k in other if k not in project]:
            if key not in other or key not in project:
                side = "DuckDB" if key not in other else "the project"
                found += [f"{where}.{key}".lstrip(".") + f": missing in {side}'s figures"]
            else:
                found += disagreements(project[key], other[key], f"{where}.{key}".lstrip("."))
        return found
    if isinstance(project, list) and isinstance(other, list):
        if len(project) != len(other):
            return differ(f"{len(project)} items in the project's, {len(other)} in DuckDB's")
        found = []
        for i, (a, b) in enumerate(zip(project, other, strict=True)):
            name = next((f"{k}={a[k]}" for k in ITEM_KEYS if isinstance(a, dict) and k in a), i)
            found += disagreements(a, b, f"{where}[{name}]")
        return found
    numbers = (int, float)
    if (
        isinstance(project, numbers)
        and isinstance(other, numbers)
        and not isinstance(project, bool)
        and not isinstance(other, bool)
    ):
        if isinstance(project, int) and isinstance(other, int):
            same = project == other
        else:
            same = math.isclose(project, other, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0)
        return [] if same else differ(f"project {project!r}, DuckDB {other!r}")
    if project != other or type(project) is not type(other):
        return differ(f"project {project!r}, DuckDB {other!r}")
    return []


def in_fresh_process(function: str, folder: Path, **arguments: Any) -> dict:
    code = (
        "import json, benchmarks.benchmark as b; "
        f"print(json.dumps(b.{function}({str(folder.resolve())!r}, **{arguments!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=CHECKOUT
    )
    if done.returncode:
        sys.exit(f"{function}({str(folder)!r}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def local_server(work: Path):
    """A long-lived local Prefect server, as the README asks a workstation to run
    (`prefect server start`), on 127.0.0.1 with its own home under `work`: yields the
    environment that points `funnel` at it, and stops it afterwards."""
    import os
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    prefect = Path(sys.executable).parent / "prefect"
    server = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{api}/health", timeout=2) as answer,
            ):
                if answer.status == 200:
                    break
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("the local Prefect server did not start")
            time.sleep(0.5)
        yield {**env, "PREFECT_API_URL": api}
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def funnel_command(arguments: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """One `funnel` command as a user types it, in its own process: wall time, exit status,
    the lines it wrote on standard error, and the peak memory of the largest child so far."""
    funnel = Path(sys.executable).parent / "funnel"
    started = time.perf_counter()
    done = subprocess.run([str(funnel), *arguments], capture_output=True, text=True, env=env)
    return {
        "seconds": time.perf_counter() - started,
        "status": done.returncode,
        "stderr_lines": len(done.stderr.splitlines()),
        "peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def whole_run(folder: str, out: str = "run", api: str | None = None) -> dict[str, Any]:
    """`funnel run` as a user runs it, in its own process (against the Prefect server at
    `api`, else with its temporary one): wall time, peak memory and the SHA-256 of the
    metrics.json it wrote (two runs must write the same bytes)."""
    import hashlib
    import os

    from funnel_reports.flows.io.resources import SAMPLE_CONFIG

    out_dir = Path(folder).parent / f"{out}-{Path(folder).name}"
    arguments = ["run", "--input", folder, "--period", PERIOD, "--out", str(out_dir)]
    env = {**os.environ, "PREFECT_API_URL": api} if api else None
    run = funnel_command([*arguments, "--config", str(SAMPLE_CONFIG)], env)
    if run["status"]:
        sys.exit(f"funnel run on {folder} failed with status {run['status']}")
    metrics = out_dir / PERIOD / "metrics.json"
    return {**run, "metrics_sha256": hashlib.sha256(metrics.read_bytes()).hexdigest()}


def mistakes(work: Path) -> dict[str, list[str]]:
    """Commands with a usage, settings or layout mistake, as users make them."""
    from funnel_reports.flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR

    work.mkdir(parents=True, exist_ok=True)
    typo = work / "typo.toml"
    typo.write_text('[source]\ntimezone = "Asia/Shanghai"\n[report]\nwindow_month = 12\n')
    stray = work / "not-an-export"
    stray.mkdir(exist_ok=True)
    (stray / "notes.csv").write_text("when,what\n2026-09-01,call\n")
    sample, out = str(SAMPLE_DIR), str(work / "mistakes-out")
    run = ["run", "--out", out, "--input", sample]
    return {
        "no such --input": [
            "run",
            "--input",
            str(work / "absent"),
            "--period",
            PERIOD,
            "--out",
            out,
        ],
        "malformed --period": [*run, "--period", "2026-13"],
        "missing --config": [*run, "--period", PERIOD, "--config", str(work / "absent.toml")],
        "mistyped funnel.toml key": [*run, "--period", PERIOD, "--config", str(typo)],
        "no layout fits": ["run", "--input", str(stray), "--period", PERIOD, "--out", out],
        "validate a mistyped key": ["validate", "--input", sample, "--config", str(typo)],
        "unknown option": [*run, "--period", PERIOD, "--langauge", "en"],
        "sample config, wrong --source": [
            *run,
            "--period",
            PERIOD,
            "--config",
            str(SAMPLE_CONFIG),
            "--source",
            "hubspot",
        ],
    }


def commands(args: argparse.Namespace) -> int:
    """Each mistake's answer (time, status, lines), then the sample's `funnel run` three
    times against a long-lived local server: the goals of the commands people type."""
    from funnel_reports.flows.io.resources import SAMPLE_CONFIG, SAMPLE_DIR

    problems = 0
    print(f"{'mistake':<32} {'seconds':>7} {'exit':>4} {'lines':>5}")
    for name, arguments in mistakes(args.work).items():
        answer = funnel_command(arguments)
        fine = answer["status"] == 2 and answer["stderr_lines"] == 1
        problems += not fine
        print(
            f"{name:<32} {answer['seconds']:>6.2f}s {answer['status']:>4} "
            f"{answer['stderr_lines']:>5}" + ("" if fine else "  NOT exit 2 with one line"),
            flush=True,
        )
    with local_server(args.work) as env:
        out = args.work / "sample-run"
        runs = [
            funnel_command(
                [
                    *("run", "--input", str(SAMPLE_DIR), "--period", PERIOD),
                    *("--out", str(out), "--config", str(SAMPLE_CONFIG)),
                ],
                env,
            )
            for _ in range(3)
        ]
    problems += any(r["status"] for r in runs)
    print(
        "sample funnel run against a running local server: "
        + ", ".join(f"{r['seconds']:.2f}s" for r in runs),
        flush=True,
    )
    return problems


FAN_OUT_RUNNERS = {
    "1 process": ["--runner", "process", "--workers", "1"],
    "2 processes": ["--runner", "process", "--workers", "2"],
    "local Dask, 2 workers": ["--runner", "dask", "--workers", "2"],
}


def report_set_config(folder: Path, reports: int) -> Path:
    """The sample's funnel.toml with `reports` [[reports]]: one per owner, region, industry
    of the generated export (in that order), as teams, regions and business units."""
    from funnel_reports.flows.generate import INDUSTRIES, OWNERS, REGIONS
    from funnel_reports.flows.io.resources import SAMPLE_CONFIG

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
    from funnel_reports.transforms.periods import parse_period

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
    from funnel_reports.flows.generate import GenerateSpec, generate_exports

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
            "import json, benchmarks.benchmark as b; "
            "print(json.dumps(b.fan_out_run("
            f"{str(folder.resolve())!r}, {str(config.resolve())!r}, {str(out.resolve())!r}, "
            f"{runner!r}, {args.months})))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CHECKOUT
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        each = r["seconds"] / r["reports"]
        print(
            f"{runner:<22} {r['reports']:>7} {r['seconds']:>8.1f}s {each:>9.2f}s "
            f"{r['peak_mib']:>9,.0f} {r['read']:>9.1f}s {r['per_report']:>11.1f}s "
            f"{r['read'] / (r['read'] + r['per_report']):>9.1%}",
            flush=True,
        )


COLUMNS = (  # (heading, width)
    ("deals", 9),
    ("rows", 11),
    ("bare read", 9),
    ("read+valid", 10),
    ("derive", 7),
    ("compute", 7),
    ("render", 7),
    ("peak MiB", 8),
    ("funnel run", 10),
    ("run MiB", 7),
    ("x read", 6),
    ("core", 7),
    ("core MiB", 8),
    ("DuckDB", 7),
    ("DuckDB MiB", 10),
    ("proj/DuckDB", 11),
    ("valid/read", 10),
    ("agree", 5),
    ("rerun same", 10),
)
ABSENT = "—"


def table_row(values: list[str]) -> str:
    return " ".join(f"{v:>{width}}" for v, (_, width) in zip(values, COLUMNS, strict=True))


def measure(size: int, folder: Path, args: argparse.Namespace) -> int:
    """Every measurement of one export, printed as a row and its details; the number of
    figures that disagree, plus one when two runs wrote different metrics.json."""

    def seconds(value: float | None) -> str:
        return ABSENT if value is None else f"{value:.2f}s"

    def mib(value: float | None) -> str:
        return ABSENT if value is None else f"{value:,.0f}"

    def times(value: float | None) -> str:  # two decimals: a goal of 1.0x is not met at 1.04x
        return ABSENT if value is None else f"{value:.2f}x"

    bare = in_fresh_process("bare_read", folder)
    steps = None if args.no_steps else in_fresh_process("pipeline_steps", folder)
    core = in_fresh_process("project_core_figures", folder)
    duck = in_fresh_process("duckdb_core_figures", folder, threads=args.duckdb_threads)
    runs = (
        []
        if args.no_run
        else [in_fresh_process("whole_run", folder, out=o, api=args.api) for o in "ab"]
    )
    run = min(runs, key=lambda r: r["seconds"]) if runs else None
    same = None if not runs else len({r["metrics_sha256"] for r in runs}) == 1
    problems = disagreements(core["figures"], duck["figures"])
    read_validate = steps["read_validate"]["seconds"] if steps else core["read_validate"]
    step = {name: (steps[name]["seconds"] if steps else None) for name in ("derive", "compute")}
    validate_compute = (
        sum(steps[s]["seconds"] for s in ("read_validate", "derive", "compute")) if steps else None
    )
    print(
        table_row(
            [
                f"{size:,}",
                f"{bare['rows']:,}",
                seconds(bare["seconds"]),
                seconds(read_validate),
                seconds(step["derive"]),
                seconds(step["compute"]),
                seconds(steps["render"]["seconds"] if steps else None),
                mib(max(s["peak_mib"] for s in steps.values()) if steps else None),
                seconds(run["seconds"] if run else None),
                mib(run["peak_mib"] if run else None),
                times(validate_compute / bare["seconds"] if steps else None),
                seconds(core["seconds"]),
                mib(core["peak_mib"]),
                seconds(duck["seconds"]),
                mib(duck["peak_mib"]),
                times(core["seconds"] / duck["seconds"]),
                times(read_validate / bare["seconds"]),
                "no" if problems else "yes",
                ABSENT if same is None else ("yes" if same else "NO"),
            ]
        ),
        flush=True,
    )
    print_details(steps, core, duck, problems, runs, same)
    return len(problems) + (same is False)


def print_details(
    steps: dict[str, dict[str, float]] | None,
    core: dict[str, Any],
    duck: dict[str, Any],
    problems: list[str],
    runs: list[dict[str, Any]],
    same: bool | None,
) -> None:
    """The lines under a size's row: each step, the parts of the core figures side by side,
    each figure that disagrees, and the two runs."""
    for name, figures in (steps or {}).items():
        print(
            f"          {name:<14} {figures['seconds']:8.2f}s  peak memory in the step "
            f"{figures['peak_mib']:8,.0f} MiB"
        )
    print(
        f"          core: project read+validate {core['read_validate']:.2f}s, derive "
        f"{core['derive']:.2f}s, core marts {core['marts']:.2f}s; DuckDB read "
        f"{duck['read']:.2f}s, derived tables and figures {duck['compute']:.2f}s"
    )
    print(
        f"          core figures: project {core['seconds']:.2f}s (CPU {core['cpu_seconds']:.2f}s, "
        f"{core['peak_mib']:,.0f} MiB) / DuckDB {duck['seconds']:.2f}s (CPU "
        f"{duck['cpu_seconds']:.2f}s, {duck['peak_mib']:,.0f} MiB) = "
        f"{core['seconds'] / duck['seconds']:.2f}x, "
        + (f"{len(problems)} figures DISAGREE" if problems else "the figures agree"),
        flush=True,
    )
    for problem in problems:
        print(f"          DISAGREE {problem}", flush=True)
    if runs:
        print(
            "          funnel run: "
            + ", ".join(f"{r['seconds']:.2f}s ({r['peak_mib']:,.0f} MiB)" for r in runs)
            + (", metrics.json identical" if same else ", metrics.json DIFFERS between the runs"),
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--work", type=Path, default=Path("out/benchmark"))
    parser.add_argument(
        "--no-run", action="store_true", help="leave out the whole `funnel run` (Prefect)"
    )
    parser.add_argument(
        "--no-steps", action="store_true", help="leave out the report flow's steps (render too)"
    )
    parser.add_argument(
        "--no-commands",
        action="store_true",
        help="leave out the mistakes' answers and the sample's run",
    )
    parser.add_argument(
        "--duckdb-threads", type=int, default=None, help="DuckDB's threads (default: every core)"
    )
    parser.add_argument(
        "--fan-out", action="store_true", help="reports x months over one export, per runner"
    )
    parser.add_argument("--deals", type=int, default=100_000, help="with --fan-out")
    parser.add_argument("--reports", type=int, default=20, help="with --fan-out")
    parser.add_argument("--months", type=int, default=12, help="with --fan-out")
    args = parser.parse_args(argv)

    print(f"machine: {machine()}")
    if args.fan_out:
        fan_out(args)
        return 0
    problems = 0 if args.no_commands else commands(args)
    print(table_row([heading for heading, _ in COLUMNS]), flush=True)
    with contextlib.ExitStack() as stack:
        env = None if args.no_run else stack.enter_context(local_server(args.work))
        args.api = env["PREFECT_API_URL"] if env else None
        problems += each_size(args)
    if problems:
        print(
            f"{problems} problems: figures that disagree with DuckDB's, reruns that differ, "
            "or mistakes not answered with exit 2 and one line",
            flush=True,
        )
        return 1
    return 0


def generated_export(work: Path, size: int) -> Path:
    """The benchmarks' generated export of `size` deals in `work/exports-<size>` (seed 3,
    10 follow-ups and UPDATES_PER_OPPORTUNITY history rows each), written once and kept."""
    from funnel_reports.flows.generate import GenerateSpec, generate_exports

    folder = work / f"exports-{size}"
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
    return folder


def each_size(args: argparse.Namespace) -> int:
    """Every measurement at each size of `--sizes`; the problems found."""
    problems = 0
    for size in (int(s) for s in args.sizes.split(",")):
        problems += measure(size, generated_export(args.work, size), args)
    return problems


if __name__ == "__main__":
    sys.exit(main())
