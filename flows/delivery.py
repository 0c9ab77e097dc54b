"""Delivery as Prefect tasks and a flow: mail a report that is on disk, once per recipient.

The report flow calls `deliver_report` after its folder is published (`funnel run --deliver`);
`funnel deliver` runs `funnel_deliver` on a report written earlier.
"""

from __future__ import annotations

import json
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prefect import Task, flow, task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from flows.io.config import delivery_from_toml, settings_from_toml
from flows.io.mail import (
    DELIVERY_RECORD,
    DeliverySettings,
    TransientDeliveryError,
    already_sent,
    delivery_record,
    report_message,
    send_message,
    sent_entry,
    sha256_bytes,
)
from flows.io.outputs import write_json
from report_templates.mail import mail_content
from transforms.funnel_model import FunnelModel
from transforms.periods import resolve_period
from transforms.staging.layout import UnusableInputError


def is_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a send only when the server may take it later (not after a 5xx refusal)."""
    return isinstance(state.result(raise_on_failure=False), TransientDeliveryError)


@task(cache_policy=NONE, persist_result=False, retry_condition_fn=is_transient)
def send_report_mail(message: EmailMessage, settings: DeliverySettings) -> None:
    send_message(message, settings)


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
    delays = list(delivery.retry_delays_seconds)
    send_report_mail.with_options(retries=len(delays), retry_delay_seconds=delays)(
        message, delivery
    )
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
    today = datetime.now(ZoneInfo(settings.timezone)).date()
    label = resolve_period(period, today=today, timezone=settings.timezone).label
    return deliver_report(Path(out_dir) / label, delivery, funnel=settings.funnel, resend=resend)
