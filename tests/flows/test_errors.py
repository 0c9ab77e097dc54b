"""How a failure is said (flows/errors.py): the exit status and one line for each kind of
error, and the retry condition of the delivery tasks, on real Prefect states (no server)."""

from __future__ import annotations

import pytest
from prefect import task
from prefect.client.schemas.objects import TaskRun
from prefect.states import Failed

from funnel_reports.flows.errors import one_line, retry_when
from funnel_reports.flows.io.config import ConfigError
from funnel_reports.flows.io.ledger import DeliveryBusyError
from funnel_reports.flows.io.mail import (
    PermanentDeliveryError,
    RecordError,
    TransientDeliveryError,
    UncertainDeliveryError,
)
from funnel_reports.transforms.freshness import StaleExportError
from funnel_reports.transforms.periods import PeriodError
from funnel_reports.transforms.staging.layout import UnusableInputError


@pytest.fixture(autouse=True)
def _prefect():
    """Errors and states only: no flow runs here, so no Prefect test server is started."""
    yield


@pytest.mark.parametrize(
    "kind", [TransientDeliveryError, PermanentDeliveryError, DeliveryBusyError]
)
def test_a_delivery_that_did_not_go_says_the_report_stays_on_disk(kind):
    assert one_line(kind("127.0.0.1 answered 550 relaying denied")) == (
        1,
        "not delivered (the report stays on disk): 127.0.0.1 answered 550 relaying denied",
    )


@pytest.mark.parametrize("kind", [UncertainDeliveryError, RecordError])
def test_an_uncertain_or_unrecorded_delivery_is_its_own_message_on_one_line(kind):
    assert one_line(kind("the link was lost\n  after DATA")) == (
        1,
        "the link was lost after DATA",
    )


@pytest.mark.parametrize("kind", [UnusableInputError, ConfigError, PeriodError, StaleExportError])
def test_an_input_config_or_period_that_cannot_be_used_is_status_2(kind):
    assert one_line(kind("funnel.toml: [delivery] to: expected a list")) == (
        2,
        "funnel.toml: [delivery] to: expected a list",
    )


def test_any_other_error_is_a_failure_named_by_its_kind():
    assert one_line(KeyError("amount")) == (1, "failed: KeyError: 'amount'")


def test_another_errors_message_is_put_on_one_line():
    assert one_line(RuntimeError("disk\nfull\t now")) == (1, "failed: RuntimeError: disk full now")


@task
def mail() -> None:
    """A task for the retry condition to be asked about (it is never run)."""


RUN = TaskRun(task_key="mail", dynamic_key="0")


def test_a_task_is_retried_after_a_failure_of_a_kind_named():
    retry = retry_when(TransientDeliveryError)
    assert retry(mail, RUN, Failed(data=TransientDeliveryError("451 try later"))) is True


def test_a_subclass_of_a_kind_named_is_retried_too():
    """Another deliverer at work (DeliveryBusyError) is a transient failure."""
    retry = retry_when(TransientDeliveryError)
    assert retry(mail, RUN, Failed(data=DeliveryBusyError("busy"))) is True


def test_a_task_is_not_retried_after_a_failure_of_another_kind():
    retry = retry_when(TransientDeliveryError)
    assert retry(mail, RUN, Failed(data=PermanentDeliveryError("550 no such user"))) is False
    assert retry(mail, RUN, Failed(data=UncertainDeliveryError("link lost"))) is False


def test_any_of_several_kinds_named_is_retried():
    retry = retry_when(TransientDeliveryError, RecordError)
    assert retry(mail, RUN, Failed(data=RecordError("disk full"))) is True


def test_a_failure_that_holds_no_error_of_its_own_is_not_retried():
    """A failed state without data: Prefect makes a FailedRun of its message."""
    failed = Failed(message="the worker was lost")
    assert retry_when(TransientDeliveryError)(mail, RUN, failed) is False


# Failing (a product bug, reported; left out of the commits)


def test_a_refusal_quoting_a_header_with_a_line_break_is_still_one_line():
    """A CSV header cell may hold a line break (`"stage<LF>name"`, as a wrapped header in
    Excel is saved): the layout refusal quotes the headers found, and the CLI prints
    `funnel: <line>` on two lines."""
    refusal = UnusableInputError(
        "in/opportunities.csv: no known export layout has all the opportunity columns it "
        "needs. Found: opportunity_id, stage\nname, status, created_at, amount."
    )
    status, line = one_line(refusal)
    assert status == 2
    assert "\n" not in line
