"""The `funnel` command: run, backfill, deliver, serve, demo, validate, generate. Each runs a
Prefect flow (serve serves them).

Exit status: 0 on success, 2 on unusable input (one line on standard error naming the file,
what was found and what was expected), 1 on anything else.
"""

from __future__ import annotations

import argparse
import gc
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from funnel_reports.schemas.vocabulary import LANGUAGES, SOURCE_CHOICES
from funnel_reports.transforms.periods import GRAINS

PREFECT_DEFAULTS = {
    # A temporary Prefect server starts with each run when no API URL is set; on a fresh
    # PREFECT_HOME its migrations take about 20 s, right at Prefect's default time-out.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


ALLOW_STALE = "report periods that end more than stale_after_days after the export's data"


class OneLineParser(argparse.ArgumentParser):
    """A usage mistake is one line on standard error and exit status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"funnel: {self.prog.removeprefix('funnel ')}: {message}\n")


def said_outputs(outputs: list[str]) -> list[str]:
    """A report folder's files as the console says them: the tables' Parquet files as one
    entry (`tables/ (6 Parquet files)`)."""
    tables = [name for name in outputs if name.startswith("tables/")]
    said = [name for name in outputs if name not in tables]
    if tables:
        said.insert(len(said) - 1, f"tables/ ({len(tables)} Parquet files)")
    return said


def positive_amount(text: str) -> float:
    """A command-line amount: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive amount")
    return value


def at_least_one(text: str) -> int:
    """A command-line count of at least one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 1 or more")
    return value


def parser() -> argparse.ArgumentParser:
    root = OneLineParser(prog="funnel", description="Sales funnel reports.")
    root.add_argument(
        "--verbose",
        action="store_true",
        help="show Prefect's own log lines, with tracebacks of failed tasks",
    )
    root.add_argument(
        "--progress",
        action="store_true",
        help="say each step on standard error (the default when it is a terminal)",
    )
    commands = root.add_subparsers(dest="command", required=True)
    add_report_commands(commands)
    add_other_commands(commands)
    return root


def add_report_commands(commands: Any) -> None:
    """`funnel run` and `funnel backfill`: the arguments of the flows' requests."""
    run = commands.add_parser("run", help="report one month (2024-06) or quarter (2024-Q2)")
    run.add_argument("--input", required=True, type=Path, help="folder of canonical CSV exports")
    run.add_argument("--period", required=True, help="2024-06 or 2024-Q2")
    run.add_argument("--out", required=True, type=Path, help="output folder")
    run.add_argument("--config", type=Path, help="funnel.toml")
    run.add_argument("--lang", choices=LANGUAGES, help="report language (default: config)")
    run.add_argument("--source", choices=SOURCE_CHOICES, help="export layout (default: detected)")
    run.add_argument("--target", type=positive_amount, help="won amount to reach in the period")
    run.add_argument(
        "--reports", help="all, or report names ([[reports]] in funnel.toml, and company)"
    )
    add_runner_arguments(run)
    run.add_argument("--deliver", action="store_true", help="mail the report ([delivery])")
    run.add_argument("--allow-stale", action="store_true", help=ALLOW_STALE)
    run.add_argument("--resend", action="store_true", help="with --deliver: mail it again")

    back = commands.add_parser("backfill", help="one report per period of a range")
    back.add_argument("--input", required=True, type=Path, help="folder of exports")
    back.add_argument("--from", dest="first", required=True, help="first period: 2024-01")
    back.add_argument("--to", dest="last", required=True, help="last period: 2024-12")
    back.add_argument("--out", required=True, type=Path, help="output folder")
    back.add_argument("--grain", choices=GRAINS, default="month", help="month (default)")
    back.add_argument("--force", action="store_true", help="rewrite reports that are current")
    back.add_argument("--allow-stale", action="store_true", help=ALLOW_STALE)
    back.add_argument("--config", type=Path, help="funnel.toml")
    back.add_argument("--lang", choices=LANGUAGES, help="report language (default: config)")
    back.add_argument("--source", choices=SOURCE_CHOICES, help="export layout (default: detected)")
    back.add_argument(
        "--reports", help="all, or report names ([[reports]] in funnel.toml, and company)"
    )
    add_runner_arguments(back)


def add_other_commands(commands: Any) -> None:
    """`funnel deliver`, `serve`, `demo`, `validate` and `generate`."""
    send = commands.add_parser("deliver", help="mail a report already on disk ([delivery])")
    send.add_argument("--out", required=True, type=Path, help="the output folder of funnel run")
    send.add_argument("--period", required=True, help="2024-06, 2024-Q2, last-month, ...")
    send.add_argument("--config", type=Path, help="funnel.toml with a [delivery] section")
    send.add_argument("--resend", action="store_true", help="send even to earlier recipients")

    serve = commands.add_parser(
        "serve", help="serve the monthly and quarterly deployments (needs PREFECT_API_URL)"
    )
    serve.add_argument("--input", required=True, type=Path, help="folder of exports")
    serve.add_argument("--out", required=True, type=Path, help="output folder")
    serve.add_argument("--config", type=Path, help="funnel.toml (time zone, [delivery])")
    serve.add_argument("--lang", choices=LANGUAGES, help="report language (default: config)")
    serve.add_argument("--deliver", action="store_true", help="mail each report ([delivery])")

    demo = commands.add_parser("demo", help="monthly and quarterly reports of the sample data")
    demo.add_argument("--out", type=Path, default=Path("out"), help="output folder (./out)")
    demo.add_argument("--lang", choices=LANGUAGES, help="report language")

    check = commands.add_parser("validate", help="check exports without running the report")
    check.add_argument("--input", required=True, type=Path)
    check.add_argument("--config", type=Path)
    check.add_argument("--source", choices=SOURCE_CHOICES, help="export layout (default: detected)")

    gen = commands.add_parser("generate", help="write synthetic canonical exports")
    gen.add_argument("--out", required=True, type=Path)
    gen.add_argument("--opportunities", required=True, type=at_least_one)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--followups-per-opportunity", type=float, default=5.0)
    gen.add_argument(
        "--updates-per-opportunity",
        type=float,
        default=0.0,
        help="extra history rows per deal that restate its stage (CRM change log rows)",
    )
    gen.add_argument(
        "--push-close-dates",
        action="store_true",
        help="reps move an open deal's expected close date on by a month when it comes near",
    )
    gen.add_argument(
        "--forecast-categories",
        action="store_true",
        help="a CRM forecast category on every deal and history row (commit in negotiation, "
        "best case in proposal, pipeline before)",
    )
    gen.add_argument(
        "--amount-sigma",
        type=float,
        default=0.7,
        help="the spread of deal amounts (lognormal sigma; 1.4 for a right-skewed mix)",
    )
    gen.add_argument(
        "--quarter-end-push",
        type=float,
        default=0.0,
        help="the share of wins in a quarter's first two months held to its last month",
    )


RUNNERS = ("process", "dask")


def add_runner_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--runner",
        choices=RUNNERS,
        default="process",
        help="where the reports run: local processes (default) or Dask",
    )
    command.add_argument(
        "--address", help="with --runner dask: an existing scheduler (tcp://host:8786)"
    )
    command.add_argument(
        "--workers", type=at_least_one, default=2, help="local processes, or local Dask workers (2)"
    )


def task_runner(args: argparse.Namespace) -> Any:
    """The Prefect task runner the reports fan out on: a local process pool, an existing Dask
    scheduler (--address), or a local Dask cluster of --workers processes."""
    if args.runner == "dask":
        from prefect_dask import DaskTaskRunner

        if args.address:
            return DaskTaskRunner(address=args.address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": args.workers, "processes": True, "threads_per_worker": 1}
        )
    from prefect.task_runners import ProcessPoolTaskRunner

    return ProcessPoolTaskRunner(max_workers=args.workers)


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()  # before Prefect is imported: its start-up counts
    args = parser().parse_args(argv)
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Prefect's run logs (with tracebacks of failed tasks) stay off the console unless asked
    # for, so that an error is the one line below, but always reach the run's log on the
    # server (what a run did, a mail sent or skipped among it, is read there); Prefect reads
    # these when it sets up logging. `funnel serve` is a service: its log (each run started,
    # finished or failed) is its output.
    quiet = not (args.verbose or args.command == "serve")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    if quiet:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        if not os.environ.get("PREFECT_API_URL"):
            # a temporary server: the run's log ends with it, and logs still on their way
            # when it stops would each print an error
            os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error" if quiet else "info")
    with progress_on_console(args.progress or (sys.stderr.isatty() and not args.verbose)):
        return run_command(args, started)


@contextmanager
def progress_on_console(shown: bool) -> Iterator[None]:
    """While the command runs, print the runs' progress lines (flows.progress) on standard
    error, when `shown`."""
    progress = logging.getLogger("funnel.progress")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("funnel: %(message)s"))
    if shown:
        progress.addHandler(handler)
        progress.setLevel(logging.INFO)
        progress.propagate = False
    try:
        yield
    finally:
        progress.removeHandler(handler)


@contextmanager
def prefect_api() -> Iterator[None]:
    """The Prefect API the command's flows report to: the running server PREFECT_API_URL
    names (`prefect server start --background`: see the README), else one temporary server
    for the whole command, which the processes of a task runner share instead of each
    starting its own. A command's flow runs send no heartbeats: each would add about a
    second at the flow's end, and a run started from the console is watched there."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    quiet = temporary_settings(updates={"flows.heartbeat_frequency": None})
    if PREFECT_API_URL.value():
        with quiet:
            yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=int(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
    try:
        with quiet, temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield
    finally:
        server.stop()


def check_arguments(args: argparse.Namespace) -> None:
    """Mistakes in funnel.toml (any section), the periods and the input folder's layout (its
    files' headers), answered before Prefect starts."""
    from funnel_reports.flows.io.config import period_from_label, settings_from_toml
    from funnel_reports.flows.io.exports import check_layout

    settings = settings_from_toml(
        getattr(args, "config", None), preset=getattr(args, "source", None)
    )
    for label in (getattr(args, name, None) for name in ("period", "first", "last")):
        if label is not None:
            period_from_label(label, settings.timezone)
    input_dir = getattr(args, "input", None)
    if input_dir is not None and args.command != "validate":  # validate reads it all anyway
        check_layout(input_dir, settings)


def run_command(args: argparse.Namespace, started: float) -> int:
    from funnel_reports.flows.errors import one_line

    try:
        check_arguments(args)
        if args.command == "validate":  # a check, not a job: no Prefect
            from funnel_reports.flows.validate import validation

            print_validation(validation(args.input, args.config, args.source))
            return 0  # quarantined rows are not an error
        if args.command == "serve":
            from funnel_reports.flows.serve import serve_reports

            serve_reports(args.input, args.out, args.config, args.lang, args.deliver)
            return 0
        with prefect_api():
            return run_flow(args, started)
    except Exception as error:  # one clear line, never a traceback
        status, line = one_line(error)
        print(f"funnel: {line}", file=sys.stderr)
        return status


def run_flow(args: argparse.Namespace, started: float) -> int:
    from funnel_reports.flows import commands
    from funnel_reports.flows.delivery import funnel_deliver
    from funnel_reports.flows.io.outputs import record_command_time

    if args.command == "run" and not args.reports:
        from funnel_reports.flows.report_flow import funnel_report
        from funnel_reports.flows.requests import ReportRequest

        request = ReportRequest(
            **asked_alike(args),
            period=args.period,
            target=args.target,
            deliver=args.deliver,
            resend=args.resend,
        )
        manifests = [funnel_report(**dict(request))]
    elif args.command in ("run", "backfill"):
        return print_backfill(run_backfill(args))
    elif args.command == "deliver":
        funnel_deliver(
            out_dir=str(args.out),
            period=args.period,
            config=str(args.config) if args.config else None,
            resend=args.resend,
        )
        return 0
    elif args.command == "demo":
        manifests = commands.funnel_demo(out_dir=str(args.out), lang=args.lang)
    else:
        counts = commands.generate_flow(
            out_dir=str(args.out),
            opportunities=args.opportunities,
            seed=args.seed,
            followups_per_opportunity=args.followups_per_opportunity,
            updates_per_opportunity=args.updates_per_opportunity,
            close_date_pushes=args.push_close_dates,
            forecast_categories=args.forecast_categories,
            amount_sigma=args.amount_sigma,
            quarter_end_push=args.quarter_end_push,
        )
        print(f"wrote {args.out}: " + ", ".join(f"{n} {t} rows" for t, n in counts.items()))
        return 0
    record_command_time(manifests, f"funnel {args.command}", started)
    for manifest in manifests:
        print(f"wrote {manifest['out_dir']}: {', '.join(said_outputs(manifest['outputs']))}")
    return 0


def run_backfill(args: argparse.Namespace) -> list[dict[str, Any]]:
    """`funnel backfill`, and `funnel run --reports` (one period, every report it names,
    always written): the backfill flow on the chosen task runner."""
    from funnel_reports.flows.backfill_flow import funnel_backfill
    from funnel_reports.flows.io.config import ConfigError
    from funnel_reports.flows.requests import BackfillRequest

    if args.command == "run":
        if args.target is not None:
            raise ConfigError(
                "--target sets one report's target; with --reports, set each "
                "report's in funnel.toml ([[reports]] target, [targets])"
            )
        request = BackfillRequest(
            **asked_alike(args),
            first=args.period,
            last=args.period,
            grain=None,
            force=True,
            reports=args.reports,
            deliver=args.deliver,
            resend=args.resend,
        )
    else:
        request = BackfillRequest(
            **asked_alike(args),
            first=args.first,
            last=args.last,
            grain=args.grain,
            force=args.force,
            reports=args.reports,
        )
    return funnel_backfill.with_options(task_runner=task_runner(args))(**dict(request))


def asked_alike(args: argparse.Namespace) -> dict[str, Any]:
    """What `run` and `backfill` ask alike (`ExportRequest`), from their arguments."""
    return {
        "input_dir": args.input,
        "out_dir": args.out,
        "config": args.config,
        "lang": args.lang,
        "source": args.source,
        "allow_stale": args.allow_stale,
    }


def print_backfill(rows: list[dict[str, Any]]) -> int:
    """The summary of `funnel backfill` and `funnel run --reports` (`backfill_lines`), each
    failure's line on standard error. Returns the exit status: 1 if any failed."""
    from funnel_reports.report_templates.console import backfill_lines

    summary, failures = backfill_lines(rows)
    print("\n".join(summary))
    for line in failures:
        print(line, file=sys.stderr)
    return 1 if failures else 0


def print_validation(summary: dict[str, Any]) -> None:
    """`funnel validate`'s report (`validation_lines`)."""
    from funnel_reports.report_templates.console import validation_lines

    print("\n".join(validation_lines(summary)))


def command() -> NoReturn:
    """The `funnel` command: `main`, then an exit that skips the garbage collector's last
    pass over every object Prefect, polars and WeasyPrint made (0.7 s after a sample run,
    of about 6): the exit functions still run and the streams are flushed."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    command()
