"""Delivery as Prefect tasks and a flow: mail a report that is on disk, once per recipient, and
tell [delivery] ops when a scheduled run fails.

The report flow calls `deliver_report` after its folder is published (`funnel run --deliver`,
or a deployment run with `deliver`); `funnel deliver` runs `funnel_deliver` on a report written
earlier; `notify_ops` is the report flow's failure hook.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from prefect import Flow, flow, task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import FlowRun
from prefect.logging import get_logger
from prefect.states import State

from flows.errors import one_line, retry_when
from flows.io.config import ConfigError, delivery_from_toml, period_from_label, settings_from_toml
from flows.io.mail import (
    DELIVERY_RECORD,
    DeliverySettings,
    TransientDeliveryError,
    already_sent,
    delivery_record,
    ops_message,
    report_message,
    send_message,
    sent_entry,
    sha256_bytes,
)
from flows.io.outputs import write_json
from report_templates.mail import mail_content
from transforms.funnel_model import FunnelModel
from transforms.staging.layout import UnusableInputError


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


def deliver_report(
    report_dir: Path, delivery: DeliverySettings, *, funnel: FunnelModel, resend: bool = False
) -> dict[str, Any]:
    """Mail the report in `report_dir` to the recipients it was not sent to yet (all of them
    with `resend`), and record the send in its delivery.json."""
    try:
        metrics = json.loads((report_dir / "metrics.json").read_text(encoding="utf-8"))
        manifest = json.loads((report_dir / "manifest.json").read_text(encoding="utf-8"))
        pdf = (report_dir / "report.pdf").read_bytes()
    except FileNotFoundError as error:
        raise UnusableInputError(
            f"{report_dir}: holds no finished report ({Path(error.filename).name} is missing); "
            "write it with funnel run first"
        ) from None
    pdf_sha256 = sha256_bytes(pdf)
    sent = set() if resend else already_sent(report_dir, pdf_sha256)
    to = [a for a in delivery.to if a not in sent]
    cc = [a for a in delivery.cc if a not in sent]
    if not to and not cc:
        print(f"funnel deliver {report_dir}: already sent to every recipient; nothing sent")
        return {"sent": False, "to": [], "cc": []}
    content = mail_content(metrics, lang=manifest["lang"], funnel=funnel)
    message = report_message(
        settings=delivery,
        recipients=(to, cc),
        subject=content.subject,
        text=content.text,
        html=content.html,
        pdf=pdf,
        pdf_name=content.pdf_name,
    )
    send_with_retries(message, delivery)
    record = delivery_record(report_dir)
    record["sends"].append(sent_entry(message, pdf_sha256))
    write_json(report_dir / DELIVERY_RECORD, record)
    print(f"funnel deliver {report_dir}: sent to {', '.join(to + cc)}")
    return {"sent": True, "to": to, "cc": cc}


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
    config = flow_run.parameters.get("config")
    try:
        delivery = delivery_from_toml(Path(config) if config else None)
    except ConfigError as error:
        logger.warning("no ops mail for the failed run %s: %s", flow_run.name, error)
        return
    if not delivery.ops:
        return
    error = state.result(raise_on_failure=False)
    line = one_line(error)[1] if isinstance(error, BaseException) else str(state.message)
    parameters = ", ".join(f"{k}={v}" for k, v in sorted(flow_run.parameters.items()))
    message = ops_message(
        settings=delivery,
        subject=f"{flow_run.name} failed",
        text=f"{line}\n\nflow run: {flow_run.name} ({flow_run.id})\nparameters: {parameters}\n",
    )
    try:
        send_with_retries(message, delivery)
    except Exception as failure:  # the run has failed already; say why the mail did not go
        logger.error("ops mail for %s not sent: %s", flow_run.name, one_line(failure)[1])
