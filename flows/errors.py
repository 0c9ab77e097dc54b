"""How a failure is said: one line (never a traceback) and the exit status it maps to.

The CLI prints it; a failed scheduled run mails it to [delivery] ops. Task retries use
`retry_when` to retry only the failures that a later attempt can mend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from funnel_reports.flows.io.config import ConfigError
from funnel_reports.flows.io.mail import (
    PermanentDeliveryError,
    RecordError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from funnel_reports.transforms.freshness import StaleExportError
from funnel_reports.transforms.periods import PeriodError
from funnel_reports.transforms.staging.layout import UnusableInputError

if TYPE_CHECKING:  # Prefect's import costs seconds: a usage error answers without it
    from prefect import Task
    from prefect.client.schemas.objects import TaskRun
    from prefect.states import State

UNUSABLE_INPUT = 2  # an input, a config or a period that cannot be used at all (or too old)
FAILED = 1


def one_line(error: BaseException) -> tuple[int, str]:
    """The exit status and the one line that says what went wrong."""
    if isinstance(error, TransientDeliveryError | PermanentDeliveryError):
        return FAILED, f"not delivered (the report stays on disk): {error}"
    if isinstance(error, UncertainDeliveryError | RecordError):
        return FAILED, " ".join(str(error).split())
    if isinstance(error, UnusableInputError | ConfigError | PeriodError | StaleExportError):
        # one line even when it quotes a header cell that held a line break
        return UNUSABLE_INPUT, " ".join(str(error).splitlines())
    message = " ".join(str(error).split())
    return FAILED, f"failed: {type(error).__name__}: {message}"


def retry_when(
    *kinds: type[BaseException],
) -> Callable[[Task[..., Any], TaskRun, State[Any]], bool]:
    """A task's retry condition: retry only when it failed with one of `kinds`."""

    def condition(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
        return isinstance(state.result(raise_on_failure=False), kinds)

    return condition
