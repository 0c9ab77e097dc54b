"""Send a report by email: one message per report, the PDF attached, every send recorded.

The standard library's `email` and `smtplib` (ECOSYSTEM.md: prefect-email builds malformed
messages). Failures are sorted for the task's retries: a refused or dropped connection, a
time-out and a 4xx reply are transient; a 5xx reply is permanent.
"""

from __future__ import annotations

import hashlib
import json
import os
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

SMTP_SECURITY = ("none", "starttls", "ssl")
PASSWORD_VARIABLE = "FUNNEL_SMTP_PASSWORD"
DELIVERY_RECORD = "delivery.json"


@dataclass(frozen=True)
class DeliverySettings:
    """[delivery] of funnel.toml."""

    smtp_host: str
    sender: str
    to: tuple[str, ...]
    smtp_port: int = 587
    security: str = "starttls"
    username: str | None = None
    password_block: str | None = None  # a Prefect Secret block holding the password
    cc: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()  # who hears of a failed scheduled run
    timeout_seconds: float = 30.0
    ca_file: str | None = None  # a CA bundle for a server with its own certificate
    retry_delays_seconds: tuple[float, ...] = (2.0, 10.0, 60.0)  # a transient failure's retries


class TransientDeliveryError(Exception):
    """The server could not take the message now (retried)."""


class PermanentDeliveryError(Exception):
    """The server refused the message (not retried)."""


def smtp_password(settings: DeliverySettings) -> str | None:
    """FUNNEL_SMTP_PASSWORD, else the Prefect Secret block named in [delivery] password_block."""
    if os.environ.get(PASSWORD_VARIABLE):
        return os.environ[PASSWORD_VARIABLE]
    if settings.password_block:
        from prefect.blocks.system import Secret

        return str(Secret.load(settings.password_block).get())
    return None


def addressed(
    settings: DeliverySettings, subject: str, to: list[str], cc: list[str]
) -> EmailMessage:
    """A new message with its subject, sender, recipients and Message-ID."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    if to:
        message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Message-ID"] = make_msgid(domain=settings.sender.rsplit("@", 1)[-1].strip("> "))
    return message


def report_message(
    *,
    settings: DeliverySettings,
    recipients: tuple[list[str], list[str]],
    subject: str,
    text: str,
    html: str,
    pdf: bytes,
    pdf_name: str,
) -> EmailMessage:
    """A multipart/mixed message: the text and HTML bodies as alternatives, the PDF attached
    as application/pdf (a non-ASCII file name encoded as RFC 2231 says)."""
    message = addressed(settings, subject, *recipients)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=pdf_name)
    return message


def ops_message(*, settings: DeliverySettings, subject: str, text: str) -> EmailMessage:
    """A plain-text message to [delivery] ops (a failed scheduled run)."""
    message = addressed(settings, subject, list(settings.ops), [])
    message.set_content(text)
    return message


def send_message(message: EmailMessage, settings: DeliverySettings) -> None:
    """Hand the message to the SMTP server; TransientDeliveryError or PermanentDeliveryError
    when it does not take it."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    try:
        if settings.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=settings.timeout_seconds,
                context=context,
            )
        else:
            client = smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds
            )
        with client:
            if settings.security == "starttls":
                client.starttls(context=context)
            password = smtp_password(settings)
            if settings.username and password:
                client.login(settings.username, password)
            refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        kind = (
            TransientDeliveryError if all(400 <= c < 500 for c in codes) else PermanentDeliveryError
        )
        raise kind(f"{settings.smtp_host}: refused {', '.join(error.recipients)}") from None
    except smtplib.SMTPResponseException as error:
        reply = (
            error.smtp_error.decode("utf-8", "replace")
            if isinstance(error.smtp_error, bytes)
            else str(error.smtp_error)
        )
        kind = TransientDeliveryError if 400 <= error.smtp_code < 500 else PermanentDeliveryError
        raise kind(f"{settings.smtp_host} answered {error.smtp_code} {reply}") from None
    except ssl.SSLError as error:  # an untrusted certificate does not get better with time
        raise PermanentDeliveryError(
            f"{settings.smtp_host}:{settings.smtp_port}: TLS failed ({error.reason or error}); "
            "set [delivery] ca_file to the server's CA"
        ) from None
    except (OSError, smtplib.SMTPException) as error:
        raise TransientDeliveryError(
            f"{settings.smtp_host}:{settings.smtp_port}: {type(error).__name__}: {error}"
        ) from None
    if refused:
        raise PermanentDeliveryError(f"{settings.smtp_host}: refused {', '.join(refused)}")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def delivery_record(folder: Path) -> dict[str, Any]:
    """delivery.json of a report folder: every send so far."""
    path = folder / DELIVERY_RECORD
    if not path.exists():
        return {"sends": []}
    return json.loads(path.read_text(encoding="utf-8"))


def already_sent(folder: Path, pdf_sha256: str) -> set[str]:
    """The recipients this very PDF was sent to."""
    return {
        address
        for send in delivery_record(folder)["sends"]
        if send["pdf_sha256"] == pdf_sha256
        for address in (*send["to"], *send["cc"])
    }


def sent_entry(message: EmailMessage, pdf_sha256: str) -> dict[str, Any]:
    def addresses(header: str) -> list[str]:
        value = message.get(header)
        return [a.strip() for a in str(value).split(",")] if value else []

    return {
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "to": addresses("To"),
        "cc": addresses("Cc"),
        "subject": str(message["Subject"]),
        "message_id": str(message["Message-ID"]),
        "pdf_sha256": pdf_sha256,
    }
