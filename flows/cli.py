"""The `funnel` command: run, deliver, demo, validate, generate. Each runs a Prefect flow.

Exit status: 0 on success, 2 on unusable input (one line on standard error naming the file,
what was found and what was expected), 1 on anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

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
    run.add_argument("--deliver", action="store_true", help="mail the report ([delivery])")
    run.add_argument("--resend", action="store_true", help="with --deliver: mail it again")

    send = commands.add_parser("deliver", help="mail a report already on disk ([delivery])")
    send.add_argument("--out", required=True, type=Path, help="the output folder of funnel run")
    send.add_argument("--period", required=True, help="2024-06, 2024-Q2, last-month, ...")
    send.add_argument("--config", type=Path, help="funnel.toml with a [delivery] section")
    send.add_argument("--resend", action="store_true", help="send even to earlier recipients")

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
    from flows.delivery import funnel_deliver
    from flows.io.config import ConfigError
    from flows.io.mail import PermanentDeliveryError, TransientDeliveryError
    from flows.io.outputs import record_command_time
    from flows.report_flow import funnel_report
    from transforms.periods import PeriodError
    from transforms.staging.layout import UnusableInputError

    def optional(path: Path | None) -> str | None:
        return str(path) if path else None

    try:
        if args.command == "run":
            manifests = [
                funnel_report(
                    str(args.input),
                    args.period,
                    str(args.out),
                    optional(args.config),
                    args.lang,
                    args.source,
                    args.target,
                    deliver=args.deliver,
                    resend=args.resend,
                )
            ]
        elif args.command == "deliver":
            funnel_deliver(str(args.out), args.period, optional(args.config), args.resend)
            return 0
        elif args.command == "demo":
            manifests = commands.funnel_demo(str(args.out), args.lang)
        elif args.command == "validate":
            print_validation(
                commands.validate_flow(str(args.input), optional(args.config), args.source)
            )
            return 0  # quarantined rows are not an error
        else:
            counts = commands.generate_flow(
                str(args.out),
                args.opportunities,
                args.seed,
                args.followups_per_opportunity,
                args.updates_per_opportunity,
            )
            print(f"wrote {args.out}: " + ", ".join(f"{n} {t} rows" for t, n in counts.items()))
            return 0
        record_command_time(manifests, f"funnel {args.command}", started)
        for manifest in manifests:
            print(f"wrote {manifest['out_dir']}: {', '.join(manifest['outputs'])}")
    except (TransientDeliveryError, PermanentDeliveryError) as error:
        print(f"funnel: not delivered (the report stays on disk): {error}", file=sys.stderr)
        return 1
    except (UnusableInputError, ConfigError, PeriodError) as error:
        print(f"funnel: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # one clear line, never a traceback
        print(f"funnel: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


def print_validation(summary: dict[str, Any]) -> None:
    """`funnel validate`'s report: the layout, files not used, and per file its counts and top
    reasons with example lines."""
    print(f"source: {summary['source']}")
    if summary["ignored"]:
        print(f"not used: {', '.join(summary['ignored'])}")
    for entry in summary["files"]:
        print(
            f"{entry['file']} ({entry['table']}): read {entry['rows_read']}, "
            f"valid {entry['rows_valid']}, quarantined {entry['rows_quarantined']}"
        )
        for reason in entry["reasons"]:
            print(f"  {reason['rows']} × {reason['category']}")
            for example in reason["examples"]:
                print(f"      line {example['_line']}: {example['reasons']}")


if __name__ == "__main__":
    sys.exit(main())
