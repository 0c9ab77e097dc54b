"""Send a report by email: one message per report, the PDF attached, every send recorded.

The standard library's `email` and `smtplib` (ECOSYSTEM.md: prefect-email builds malformed
messages). A message goes out in as many SMTP transactions as the server asks for (a 452 to
some RCPT: the rest go in the next one), and each transaction is told to a `Journal` (the
report folder's delivery.json, `flows.io.ledger`): its intent before DATA, then what the server
answered. Once DATA is answered 250 the message is delivered, whatever QUIT says; a link lost
after DATA was sent and before its reply is uncertain (never resent blind). Failures before
DATA are sorted for the task's retries: a refused or dropped connection, a time-out and a 4xx
reply are transient; a 5xx reply, no STARTTLS offered when it is configured and no SMTPUTF8
offered when an address needs it are permanent.
"""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.errors import NonASCIILocalPartDefect
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol

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
    attach: tuple[str, ...] = ("pdf",)  # what of the report folder a mail carries


class TransientDeliveryError(Exception):
    """The server could not take the message now (retried)."""


class PermanentDeliveryError(Exception):
    """The server refused the message, or cannot take it as configured (not retried)."""


class UncertainDeliveryError(Exception):
    """The link was lost after DATA was sent and before the server answered: the server may
    or may not have the message (not retried, never resent without --resend)."""


class RecordError(Exception):
    """delivery.json could not be written (said with what was and was not sent)."""


def smtp_password(settings: DeliverySettings) -> str | None:
    """FUNNEL_SMTP_PASSWORD, else the Prefect Secret block named in [delivery] password_block."""
    if os.environ.get(PASSWORD_VARIABLE):
        return os.environ[PASSWORD_VARIABLE]
    if settings.password_block:
        from prefect.blocks.system import Secret

        return str(Secret.load(settings.password_block).get())
    return None


def parse_address(text: str) -> Address:
    """One address of funnel.toml, parsed as RFC 5322 says (`"Doe, Jane" <jane@example.com>`
    is one address, never split at its comma); ValueError when it is not exactly one."""
    if "\r" in text or "\n" in text:
        raise ValueError("an address holds no line break")
    header = policy.default.header_factory("To", text)
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    addresses = header.addresses
    if defects or len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise ValueError(
            'expected one email address, like ceo@example.com or "Doe, Jane" <jane@example.com>'
        )
    found = addresses[0]
    return Address(found.display_name, found.username, found.domain)


def address_key(address: str) -> str:
    """An addr-spec as compared: case-insensitive (lower case; not casefold, which would make
    straße@x and strasse@x one recipient)."""
    return address.lower()


def header_text(text: str) -> str:
    """Text for a header: no line breaks or control characters, whitespace as single spaces."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", text).split())


def addressed(
    settings: DeliverySettings, subject: str, to: Sequence[str], cc: Sequence[str]
) -> EmailMessage:
    """A new message with its subject, sender, recipients, date and Message-ID."""
    sender = parse_address(settings.sender)
    message = EmailMessage()
    message["Subject"] = header_text(subject)
    message["From"] = sender
    if to:
        message["To"] = [parse_address(a) for a in to]
    if cc:
        message["Cc"] = [parse_address(a) for a in cc]
    message["Date"] = format_datetime(datetime.now().astimezone())
    message["Message-ID"] = make_msgid(domain=sender.domain)
    return message


# the content types of the files a mail may carry, by their extension
ATTACHMENT_TYPES = {
    "pdf": ("application", "pdf"),
    "xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}


def report_message(
    *,
    settings: DeliverySettings,
    recipients: tuple[Sequence[str], Sequence[str]],
    subject: str,
    text: str,
    html: str,
    attachments: Sequence[tuple[str, bytes]],
) -> EmailMessage:
    """A multipart/mixed message: the text and HTML bodies as alternatives, then each
    attachment (its name, its bytes) with the content type of its extension, its file name
    as RFC 2231 says (`filename*=`) and, for the clients that read only that, as an RFC 2047
    `name=` of its Content-Type."""
    message = addressed(settings, subject, *recipients)
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    for name, data in attachments:
        maintype, subtype = ATTACHMENT_TYPES[name.rsplit(".", 1)[-1]]
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        attachment = message.get_payload()[-1]
        del attachment["Content-Type"]
        attachment.set_raw("Content-Type", named_content_type(f"{maintype}/{subtype}", name))
    return message


def named_content_type(content_type: str, name: str) -> str:
    """`application/pdf; name="…"`: an ASCII name as it is, any other as RFC 2047 encoded
    words (Outlook and some webmail show only this one), folded in lines of 78 characters so
    that the email package sends it as it is and does not rewrite it as RFC 2231 (nor fold
    it inside a long type: the workbook's starts on a line of its own)."""
    if name.isascii():
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        value = f'{content_type};\n name="{quoted}"'
    else:
        words = Header(name, "utf-8", maxlinelen=70).encode(linesep="\n")
        value = f'{content_type};\n name="{words}"'
    # "Content-Type: " and the type and ";" must fit in 78 characters
    return value if len(content_type) <= 62 else f"\n {value}"


def ops_message(*, settings: DeliverySettings, subject: str, text: str) -> EmailMessage:
    """A plain-text message to [delivery] ops (a failed scheduled run, an uncertain send)."""
    message = addressed(settings, subject, list(settings.ops), [])
    message.set_content(text)
    return message


def envelope_recipients(message: EmailMessage) -> list[str]:
    """The addr-specs of the message's To and Cc, each once (compared case-insensitively)."""
    seen: dict[str, str] = {}
    for name in ("To", "Cc"):
        for address in message[name].addresses if message[name] else ():
            seen.setdefault(address_key(address.addr_spec), address.addr_spec)
    return list(seen.values())


Refusals = dict[str, tuple[int, bytes]]


class Journal(Protocol):
    """Where the transactions of a message are recorded (delivery.json)."""

    def intent(self, accepted: list[str]) -> None:
        """Before DATA: the recipients the server accepted (recorded before returning)."""

    def delivered(self, accepted: list[str], refused: Refusals) -> None:
        """DATA was answered 250."""

    def failed(self, reply: str, refused: Refusals) -> None:
        """DATA was refused, or answered other than 250: nothing was delivered."""

    def uncertain(self, why: str) -> None:
        """The link was lost after DATA was sent and before its reply."""

    def refused(self, refused: Refusals) -> None:
        """Every recipient of a transaction was refused: no DATA."""


class NoJournal:
    """A message sent without a record (an ops notice)."""

    def intent(self, accepted: list[str]) -> None:
        pass

    def delivered(self, accepted: list[str], refused: Refusals) -> None:
        pass

    def failed(self, reply: str, refused: Refusals) -> None:
        pass

    def uncertain(self, why: str) -> None:
        pass

    def refused(self, refused: Refusals) -> None:
        pass


class _Recording:
    """An SMTP client that notes the recipients each RCPT accepted and tells the journal's
    intent just before DATA; `data_sent` says DATA went out, `data_reply` its final reply."""

    def begin(self, journal: Journal) -> None:
        self.journal = journal
        self.accepted: list[str] = []
        self.data_sent = False
        self.data_refused = False
        self.data_reply: tuple[int, bytes] | None = None

    def rcpt(self, recip: str, options: Sequence[str] = ()) -> tuple[int, bytes]:
        code, reply = super().rcpt(recip, options)  # type: ignore[misc]
        if code in (250, 251):
            self.accepted.append(recip)
        return code, reply

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.journal.intent(list(self.accepted))  # written and on disk before DATA
        self.data_sent = True
        try:
            reply = super().data(msg)  # type: ignore[misc]
        except smtplib.SMTPDataError:  # DATA itself refused: no content went
            self.data_refused = True
            raise
        self.data_reply = reply
        return reply


class RecordingSMTP(_Recording, smtplib.SMTP):
    pass


class RecordingSMTPSSL(_Recording, smtplib.SMTP_SSL):
    pass


def reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())


def by_code(code: int) -> type[Exception]:
    return TransientDeliveryError if 400 <= code < 500 else PermanentDeliveryError


def refusal_list(refused: Refusals) -> str:
    return ", ".join(f"{a} ({code} {reply_text(r)})" for a, (code, r) in refused.items())


def classified(error: Exception, settings: DeliverySettings) -> Exception:
    """A failure outside DATA as a transient or permanent delivery error."""
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    if isinstance(error, TransientDeliveryError | PermanentDeliveryError | RecordError):
        return error
    if isinstance(error, smtplib.SMTPNotSupportedError):  # no SMTPUTF8, AUTH, STARTTLS
        return PermanentDeliveryError(f"{where}: {' '.join(str(error).split())}")
    if isinstance(error, smtplib.SMTPResponseException):
        return by_code(error.smtp_code)(
            f"{settings.smtp_host} answered {error.smtp_code} {reply_text(error.smtp_error)}"
        )
    if isinstance(error, ssl.SSLError):  # an untrusted certificate does not get better with time
        return PermanentDeliveryError(
            f"{where}: TLS failed ({error.reason or error}); set [delivery] ca_file to the "
            "server's CA"
        )
    return TransientDeliveryError(f"{where}: {type(error).__name__}: {error}")


def connect(settings: DeliverySettings) -> _Recording:
    """A session with the server, secured and logged in as [delivery] says."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    try:
        client: _Recording
        if settings.security == "ssl":
            client = RecordingSMTPSSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=settings.timeout_seconds,
                context=context,
            )
        else:
            client = RecordingSMTP(
                settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds
            )
    except Exception as error:
        raise classified(error, settings) from None
    try:
        assert isinstance(client, smtplib.SMTP)
        client.ehlo()
        if settings.security == "starttls":
            if not client.has_extn("starttls"):
                raise PermanentDeliveryError(
                    f"{settings.smtp_host}:{settings.smtp_port} offers no STARTTLS and "
                    '[delivery] security is "starttls"; nothing sent in clear'
                )
            client.starttls(context=context)
            client.ehlo()
        password = smtp_password(settings)
        if settings.username and password:
            client.login(settings.username, password)
    except Exception as error:
        client.close()  # type: ignore[attr-defined]
        raise classified(error, settings) from None
    return client


def quit_quietly(client: smtplib.SMTP) -> None:
    """QUIT, whatever the server answers: what it accepted before stays delivered."""
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        pass
    finally:
        client.close()


def transaction(
    client: Any, message: EmailMessage, batch: list[str], settings: DeliverySettings
) -> tuple[list[str], Refusals]:
    """One MAIL/RCPT/DATA of the message to `batch`; the recipients the server accepted and
    those it refused (with their replies). Raises when nothing more can go in this session."""
    journal: Journal = client.journal
    try:
        refused: Refusals = client.send_message(message, to_addrs=batch)
    except smtplib.SMTPRecipientsRefused as error:
        journal.refused(error.recipients)
        if any(code == 421 for code, _ in error.recipients.values()):  # the server closed
            raise TransientDeliveryError(
                f"{settings.smtp_host}: refused {refusal_list(error.recipients)}"
            ) from None
        return [], dict(error.recipients)
    except smtplib.SMTPDataError as error:  # nothing delivered: DATA refused or not 250
        journal.failed(f"{error.smtp_code} {reply_text(error.smtp_error)}", {})
        raise by_code(error.smtp_code)(
            f"{settings.smtp_host} answered {error.smtp_code} {reply_text(error.smtp_error)}"
        ) from None
    except RecordError:
        raise
    except Exception as error:
        if client.data_sent and not client.data_refused and client.data_reply is None:
            why = f"{type(error).__name__}: {' '.join(str(error).split()) or 'no reply'}"
            journal.uncertain(why)
            raise UncertainDeliveryError(
                f"the link to {settings.smtp_host} was lost after DATA was sent ({why})"
            ) from None
        raise classified(error, settings) from None
    accepted = [a for a in batch if a not in refused]
    journal.delivered(accepted, refused)
    return accepted, refused


def transmit(
    message: EmailMessage,
    recipients: Sequence[str],
    settings: DeliverySettings,
    journal: Journal | None = None,
) -> None:
    """Send the message to `recipients` (addr-specs), each accepted recipient once: in as many
    transactions as the server needs (after a 452 to some RCPT, the rest go in the next, in
    batches no larger than it took). Raises TransientDeliveryError when some recipients could
    not be sent to now (4xx), PermanentDeliveryError when some were refused for good (5xx) or
    the server cannot take the message, UncertainDeliveryError when the link was lost during
    DATA."""
    client = connect(settings)
    assert isinstance(client, smtplib.SMTP)
    remaining, limit = list(recipients), 0
    for_good: Refusals = {}
    try:
        while remaining:
            batch = remaining[:limit] if limit else remaining
            client.begin(journal or NoJournal())
            accepted, refused = transaction(client, message, batch, settings)
            for_good |= {a: r for a, r in refused.items() if r[0] >= 500}
            later = [a for a in batch if a in refused and refused[a][0] < 500]
            if later and not accepted:
                raise TransientDeliveryError(
                    f"{settings.smtp_host}: refused {refusal_list({a: refused[a] for a in later})}"
                )
            if any(refused[a][0] == 452 for a in later):  # too many recipients: batches
                limit = len(accepted)
            remaining = later + remaining[len(batch) :]
    finally:
        quit_quietly(client)
    if for_good:
        raise PermanentDeliveryError(f"{settings.smtp_host}: refused {refusal_list(for_good)}")


def send_message(message: EmailMessage, settings: DeliverySettings) -> None:
    """Hand a message without a record (an ops notice) to the SMTP server."""
    transmit(message, envelope_recipients(message), settings)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
