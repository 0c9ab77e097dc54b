"""Delivery as Prefect tasks and a flow: mail a report that is on disk, once per recipient, and
tell [delivery] ops when a scheduled run fails.

The report flow calls `deliver_report` after its folder is published (`funnel run --deliver`,
or a deployment run with `deliver`); `funnel deliver` runs `funnel_deliver` on a report written
earlier; `notify_ops` is the report flow's failure hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from prefect import Flow, flow, task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import FlowRun
from prefect.logging import get_logger
from prefect.states import State

from funnel_reports.flows.errors import one_line, retry_when
from funnel_reports.flows.io.config import (
    ConfigError,
    delivery_from_toml,
    period_from_label,
    settings_from_toml,
)
from funnel_reports.flows.io.ledger import (
    DELIVERED,
    UNCERTAIN,
    Ledger,
    LedgerJournal,
    content_key,
    delivery_lock,
    recipients_of,
)
from funnel_reports.flows.io.mail import (
    DeliverySettings,
    PermanentDeliveryError,
    RecordError,
    TransientDeliveryError,
    UncertainDeliveryError,
    address_key,
    ops_message,
    parse_address,
    report_message,
    send_message,
    transmit,
)
from funnel_reports.flows.io.outputs import finished_report
from funnel_reports.flows.progress import to_run_log
from funnel_reports.flows.requests import ReportRequest, request_of
from funnel_reports.report_templates.mail import MailContent, mail_content
from funnel_reports.transforms.funnel_model import FunnelModel

DELIVERY_ERRORS = (
    TransientDeliveryError,
    PermanentDeliveryError,
    UncertainDeliveryError,
    RecordError,
)


@task(
    cache_policy=NONE,
    persist_result=False,
    retry_condition_fn=retry_when(TransientDeliveryError),  # not after a 5xx refusal
)
def send_mail(message: EmailMessage, settings: DeliverySettings) -> None:
    send_message(message, settings)


def send_with_retries(message: EmailMessage, settings: DeliverySettings) -> None:
    """Send as a task that retries transient failures after [delivery] retry_delays_seconds."""
    delays = list(settings.retry_delays_seconds)
    send_mail.with_options(retries=len(delays), retry_delay_seconds=delays)(message, settings)


@task(
    cache_policy=NONE,
    persist_result=False,
    retry_condition_fn=retry_when(TransientDeliveryError),  # never after DATA went unanswered
)
def send_report_mail(
    journal: LedgerJournal,
    message: EmailMessage,
    recipients: list[str],
    settings: DeliverySettings,
) -> None:
    """Send the message to those of `recipients` the ledger says it has not reached (each
    attempt reads what the ones before it recorded)."""
    todo = journal.outstanding(recipients)
    if todo:
        transmit(message, todo, settings, journal)


@dataclass(frozen=True)
class Recipient:
    role: str  # to or cc
    text: str  # as funnel.toml has it
    address: str  # the addr-spec

    @property
    def key(self) -> str:
        return address_key(self.address)


def recipients(delivery: DeliverySettings) -> list[Recipient]:
    """[delivery] to and cc, parsed, each address once (To before Cc)."""
    seen: dict[str, Recipient] = {}
    for role, texts in (("to", delivery.to), ("cc", delivery.cc)):
        for text in texts:
            recipient = Recipient(role, text, parse_address(text).addr_spec)
            seen.setdefault(recipient.key, recipient)
    return list(seen.values())


def tell_ops(ledger: Ledger, delivery: DeliverySettings) -> str:
    """Mail [delivery] ops of the uncertain sends they have not heard of; what was done."""
    unreported = ledger.unreported()
    if not unreported:
        return ""
    if not delivery.ops:
        return "; no [delivery] ops to tell"
    lines = [
        f"The delivery of {ledger.folder} is uncertain: the SMTP server may or may not have "
        "the message. It is not sent again unless someone runs funnel deliver with --resend "
        "(which mails every recipient again). Ask the recipients, or read the server's log.",
        "",
    ]
    for entry in unreported:
        lines += [
            f"recipients: {', '.join(recipients_of(entry))}",
            f"why: {entry.get('why')}",
            f"message: {entry.get('subject')} {entry.get('message_id')}",
            f"since: {entry.get('started_at')}",
            "",
        ]
    lines.append(f"record: {ledger.path}")
    message = ops_message(
        settings=delivery,
        subject=f"Delivery uncertain: {unreported[0].get('subject')}",
        text="\n".join(lines) + "\n",
    )
    try:
        send_with_retries(message, delivery)
    except Exception as failure:  # the delivery's own line says it all the same
        return f"; ops not told ({one_line(failure)[1]})"
    for entry in unreported:
        entry["reported_to_ops"] = datetime.now(UTC).isoformat(timespec="seconds")
    ledger.save("ops were told, but {path} could not record it ({error})")
    return f"; told {', '.join(delivery.ops)}"


@dataclass
class Sending:
    """What one attempt to mail a report did: to whom it went, what each recipient's copy
    is now (`held`: delivered or uncertain, by address key), the error that stopped it, and
    who was still to be sent it when it began (`pending`)."""

    sent: list[Recipient]
    held: dict[str, str]
    failure: Exception | None
    pending: list[Recipient]


def send_once(
    ledger: Ledger,
    wanted: list[Recipient],
    content: MailContent,
    files: dict[str, bytes],
    delivery: DeliverySettings,
    *,
    resend: bool,
) -> Sending:
    """One message carrying `files` (report.pdf, report.xlsx: by file name) to the
    recipients in `wanted` whose copy of this content the ledger does not hold (every one
    with `resend`), its intent and outcome recorded; held with the lock."""
    key = content_key(files)
    held = {} if resend else ledger.held(key)
    pending = [r for r in wanted if r.key not in held]
    if not pending:
        ledger.skipped(key, [r.address for r in wanted])
        return Sending([], held, None, pending)
    message = report_message(
        settings=delivery,
        recipients=(
            [r.text for r in pending if r.role == "to"],
            [r.text for r in pending if r.role == "cc"],
        ),
        subject=content.subject,
        text=content.text,
        html=content.html,
        attachments=[
            (content.names[name.removeprefix("report.")], data) for name, data in files.items()
        ],
    )
    journal = LedgerJournal(ledger, message, key)
    delays = list(delivery.retry_delays_seconds)
    failure: Exception | None = None
    try:
        send_report_mail.with_options(retries=len(delays), retry_delay_seconds=delays)(
            journal, message, [r.address for r in pending], delivery
        )
    except DELIVERY_ERRORS as error:
        failure = error
    reached = ledger.reached(journal.message_id)
    sent = [r for r in pending if reached.get(r.key) == DELIVERED]
    held |= {r.key: UNCERTAIN for r in pending if reached.get(r.key) == UNCERTAIN}
    return Sending(sent, held, failure, pending)


def said(line: str) -> None:
    """What a delivery did, on standard output and in the Prefect run's log (where ops see
    whether a scheduled run mailed its report or found nothing to send)."""
    print(line)
    to_run_log(line)


def deliver_report(
    report_dir: Path, delivery: DeliverySettings, *, funnel: FunnelModel, resend: bool = False
) -> dict[str, Any]:
    """Mail the report in `report_dir` to the recipients it has not reached yet (all of them
    with `resend`), each once, recording every transaction in its delivery.json first.

    A recipient whose copy the server accepted is never sent this PDF again, nor one whose
    copy is uncertain (the link was lost during DATA, or a deliverer stopped after recording
    its intent): those are reported to [delivery] ops and said in the error line."""
    metrics, manifest, files = finished_report(report_dir, delivery.attach)
    content = mail_content(metrics, lang=manifest["lang"], funnel=funnel, attach=delivery.attach)
    wanted = recipients(delivery)
    with delivery_lock(report_dir):
        ledger = Ledger(report_dir)
        ledger.settle_stopped()
        outcome = send_once(ledger, wanted, content, files, delivery, resend=resend)
        told = tell_ops(ledger, delivery)
    sent, held, failure, pending = outcome.sent, outcome.held, outcome.failure, outcome.pending
    if sent:
        said(f"funnel deliver {report_dir}: sent to {', '.join(r.address for r in sent)}")
    uncertain = [r.address for r in wanted if held.get(r.key) == UNCERTAIN]
    reached_too = f"; sent to {', '.join(r.address for r in sent)}" if sent else ""
    if uncertain:
        also = (
            f"; and {failure}"
            if failure and not isinstance(failure, UncertainDeliveryError)
            else ""
        )
        raise UncertainDeliveryError(
            f"{report_dir}: delivery to {', '.join(uncertain)} is uncertain (the server may or "
            "may not have the message; see delivery.json): not sent again without --resend"
            f"{told}{reached_too}{also}"
        )
    if failure is not None:
        raise type(failure)(f"{failure}{reached_too}")
    if not pending:
        said(f"funnel deliver {report_dir}: already sent to every recipient; nothing sent")
    return {
        "sent": bool(sent),
        "to": [r.address for r in sent if r.role == "to"],
        "cc": [r.address for r in sent if r.role == "cc"],
    }


@flow(name="funnel-deliver")
def funnel_deliver(
    out_dir: str, period: str, config: str | None = None, resend: bool = False
) -> dict[str, Any]:
    """Mail the report of `period` in OUT/<period>/ to [delivery]'s recipients."""
    path = Path(config) if config else None
    settings = settings_from_toml(path)
    delivery = delivery_from_toml(path)
    label = period_from_label(period, settings.timezone).label
    return deliver_report(Path(out_dir) / label, delivery, funnel=settings.funnel, resend=resend)


def notify_ops(flow: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
    """A failed run of a deployment (a scheduled run) mails its one-line error to [delivery]
    ops; runs from the command line say it on the console instead."""
    logger = get_logger("funnel.ops")
    if flow_run.deployment_id is None:
        return
    request = request_of(ReportRequest, flow_run.parameters)
    try:
        delivery = delivery_from_toml(request.config if request else None)
    except ConfigError as error:
        logger.warning("no ops mail for the failed run %s: %s", flow_run.name, error)
        return
    if not delivery.ops:
        return
    error = state.result(raise_on_failure=False)
    line = one_line(error)[1] if isinstance(error, BaseException) else str(state.message)
    asked = request.model_dump(mode="json") if request else flow_run.parameters
    parameters = ", ".join(f"{k}={v}" for k, v in sorted(asked.items()))
    message = ops_message(
        settings=delivery,
        subject=f"{flow_run.name} failed",
        text=f"{line}\n\nflow run: {flow_run.name} ({flow_run.id})\nparameters: {parameters}\n",
    )
    try:
        send_with_retries(message, delivery)
    except Exception as failure:  # the run has failed already; say why the mail did not go
        logger.error("ops mail for %s not sent: %s", flow_run.name, one_line(failure)[1])
