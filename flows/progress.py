"""What a run says as it goes: each step with its counts and seconds.

Every line goes to the Prefect run's log (the UI shows it beside the run) and to the
`funnel.progress` logger, which the CLI prints on standard error when asked (`--progress`, or
when standard error is a terminal), so that a long command shows where it is.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

PROGRESS = logging.getLogger("funnel.progress")


def to_run_log(message: str) -> None:
    """A line in the current Prefect run's log (nothing outside a run)."""
    with suppress(MissingContextError):
        get_run_logger().info(message)


def say(message: str) -> None:
    """One progress line: to the current Prefect run's log and to `funnel.progress`."""
    to_run_log(message)
    PROGRESS.info(message)


@contextmanager
def step(timings: dict[str, float], name: str, scope: str = "") -> Iterator[Callable[[str], None]]:
    """Time a step into `timings[name]` and say it when done, with the detail the step gives
    through the function it is handed (`note("400 rows")`)."""
    details: list[str] = []
    started = time.perf_counter()
    yield details.append
    seconds = time.perf_counter() - started
    timings[name] = round(seconds, 4)
    detail = f": {'; '.join(details)}" if details else ""
    say(f"{scope}{' ' if scope else ''}{name}{detail} ({seconds:.1f} s)")
