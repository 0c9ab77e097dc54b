"""The `funnel` command: run, demo, validate, generate. Each runs a Prefect flow.

Exit status: 0 on success, 2 on unusable input (one line on standard error naming the file,
what was found and what was expected), 1 on anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from schemas.vocabulary import LANGUAGES, SOURCE_CHOICES

PREFECT_DEFAULTS = {
    # A temporary Prefect server starts with each run when no API URL is set; on a fresh
    # PREFECT_HOME its migrations take about 20 s, right at Prefect's default time-out.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="funnel", description="Sales funnel reports.")
    root.add_argument(
        "--verbose",
        action="store_true",
        help="show Prefect's own log lines, with tracebacks of failed tasks",
    )
    commands = root.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="report one month (2024-06) or quarter (2024-Q2)")
    run.add_argument("--input", required=True, type=Path, help="folder of canonical CSV exports")
    run.add_argument("--period", required=True, help="2024-06 or 2024-Q2")
    run.add_argument("--out", required=True, type=Path, help="output folder")
    run.add_argument("--config", type=Path, help="funnel.toml")
    run.add_argument("--lang", choices=LANGUAGES, help="report language (default: config)")
    run.add_argument("--source", choices=SOURCE_CHOICES, help="export layout (default: detected)")
    run.add_argument("--target", type=float, help="won amount to reach in the period")

    demo = commands.add_parser("demo", help="monthly and quarterly reports of the sample data")
    demo.add_argument("--out", type=Path, default=Path("out"), help="output folder (./out)")
    demo.add_argument("--lang", choices=LANGUAGES, help="report language")

    check = commands.add_parser("validate", help="check exports without running the report")
    check.add_argument("--input", required=True, type=Path)
    check.add_argument("--config", type=Path)
    check.add_argument("--source", choices=SOURCE_CHOICES, help="export layout (default: detected)")

    gen = commands.add_parser("generate", help="write synthetic canonical exports")
    gen.add_argument("--out", required=True, type=Path)
    gen.add_argument("--opportunities", required=True, type=int)
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument("--followups-per-opportunity", type=float, default=5.0)
    gen.add_argument(
        "--updates-per-opportunity",
        type=float,
        default=0.0,
        help="extra history rows per deal that restate its stage (CRM change log rows)",
    )
    return root


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()  # before Prefect is imported: its start-up counts
    args = parser().parse_args(argv)
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)
    # Prefect's run logs (with tracebacks of failed tasks) stay off the console unless asked
    # for, so that an error is the one line below; Prefect reads this when it sets up logging.
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if args.verbose else "CRITICAL")
    return run_command(args, started)


def run_command(args: argparse.Namespace, started: float) -> int:
    from flows import commands
    from flows.io.config import ConfigError
    from transforms.periods import PeriodError
    from transforms.staging.layout import UnusableInputError

    try:
        if args.command == "run":
            commands.run_report(
                args.input,
                args.period,
                args.out,
                args.config,
                args.lang,
                args.source,
                args.target,
                started=started,
            )
        elif args.command == "demo":
            commands.demo(args.out, args.lang, started=started)
        elif args.command == "validate":
            return commands.validate_exports(args.input, args.config, args.source)
        else:
            commands.generate(
                args.out,
                args.opportunities,
                args.seed,
                args.followups_per_opportunity,
                args.updates_per_opportunity,
            )
    except (UnusableInputError, ConfigError, PeriodError) as error:
        print(f"funnel: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # one clear line, never a traceback
        print(f"funnel: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
