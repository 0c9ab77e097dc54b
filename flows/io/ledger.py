"""delivery.json, the record of a report's sends, and the lock that lets one deliverer at a time
mail a report.

The record is the truth and is written first: a transaction's intent (state `sending`, with
the recipients the server accepted) is on disk before DATA, and its outcome after the server's
reply: `delivered` (250), `failed` (nothing delivered), `uncertain` (the link was lost during
DATA, or a `sending` left by a deliverer that stopped), `refused` (every recipient refused, no
DATA). Each write replaces the file in one step and reaches the disk (temporary file, fsync,
os.replace, fsync of the folder). Addresses are addr-specs, compared case-insensitively.

The lock is `fcntl.flock` on `.delivery.lock` in the report folder: a deliverer, and a run
publishing a new report over it (which carries delivery.json over), waits for it up to
LOCK_WAIT_SECONDS, then says another deliverer is at work.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from funnel_reports.flows.io.mail import (
    DELIVERY_RECORD,
    RecordError,
    Refusals,
    TransientDeliveryError,
    address_key,
    reply_text,
    sha256_bytes,
)
from funnel_reports.flows.io.outputs import publish_folder, replace_file, write_json
from funnel_reports.transforms.staging.layout import UnusableInputError

SENDING, DELIVERED, UNCERTAIN, FAILED, REFUSED, SKIPPED = (
    "sending",
    "delivered",
    "uncertain",
    "failed",
    "refused",
    "skipped",  # a delivery that found every recipient already holding this PDF
)
HELD = (SENDING, DELIVERED, UNCERTAIN)  # a recipient of these is never sent the PDF again
LOCK_WAIT_SECONDS = 600.0
STOPPED = (
    "the deliverer stopped after recording its intent and before recording the server's "
    "reply (killed, or its machine or disk failed)"
)


class DeliveryBusyError(TransientDeliveryError):
    """Another deliverer held the report's lock for longer than LOCK_WAIT_SECONDS."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


LOCK_FILE = ".delivery.lock"


def acquire(descriptor: int, report_dir: Path, deadline: float, wait: float) -> None:
    """flock the open lock file, polling until `deadline`; DeliveryBusyError after it."""
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip()
                raise DeliveryBusyError(
                    f"{report_dir}: another deliverer ({holder or 'unknown'}) has been at work "
                    f"on it for over {wait:g} s; nothing sent; try again once it is done"
                ) from None
            time.sleep(0.1)


def same_file(descriptor: int, path: Path) -> bool:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (found.st_dev, found.st_ino)


@contextmanager
def delivery_lock(report_dir: Path, wait_seconds: float | None = None) -> Iterator[None]:
    """Hold the report folder's delivery lock, `<folder>/.delivery.lock` (waiting up to
    LOCK_WAIT_SECONDS for it). A rewrite of the report swaps the folder under this lock; a
    deliverer that was waiting on the folder swapped out locks the new one instead."""
    wait = LOCK_WAIT_SECONDS if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + wait
    path = report_dir / LOCK_FILE
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # as the umask says
        try:
            acquire(descriptor, report_dir, deadline, wait)
        except BaseException:
            os.close(descriptor)
            raise
        if same_file(descriptor, path):
            break
        os.close(descriptor)  # the folder was replaced while we waited
    try:
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"pid {os.getpid()} since {now()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def damaged(path: Path, what: str) -> UnusableInputError:
    return UnusableInputError(
        f"{path}: the record of this report's sends is damaged ({what}); nothing sent. "
        "Repair it from a backup, or move it aside to mail the report to every recipient again"
    )


def read_ledger(path: Path) -> dict[str, Any]:
    """delivery.json as a document ({"sends": []} when there is none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"sends": []}
    except UnicodeDecodeError as error:
        raise damaged(path, f"not UTF-8: {error.reason}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise damaged(
            path, f"not valid JSON: {error.msg}: line {error.lineno} column {error.colno}"
        ) from None
    sends = document.get("sends") if isinstance(document, dict) else None
    if not isinstance(sends, list) or not all(
        isinstance(s, dict) and isinstance(s.get("to", []), list) for s in sends
    ):
        raise damaged(path, 'expected {"sends": [...]}, one object per send')
    return document


def write_ledger(path: Path, document: dict[str, Any]) -> None:
    """Replace delivery.json in one step, on disk before returning."""
    replace_file(path, json.dumps(document, ensure_ascii=False, indent=2) + "\n", durable=True)


def recipients_of(entry: dict[str, Any]) -> list[str]:
    """The addr-specs an entry was sent to. Entries written before states were kept hold
    header fragments split at commas (`"Doe` and `Jane" <jane@…>`): joined and parsed again."""
    parts = [*entry.get("to", []), *entry.get("cc", [])]
    return [address for _, address in getaddresses([", ".join(parts)]) if "@" in address]


def reached(entries: list[dict[str, Any]]) -> dict[str, str]:
    """Each recipient of these sends with `delivered`, or `uncertain` (no delivered one)."""
    states: dict[str, str] = {}
    for entry in entries:
        state = entry.get("state", DELIVERED)  # the first records held sends only
        if state not in HELD:
            continue
        for address in recipients_of(entry):
            key = address_key(address)
            if states.get(key) != DELIVERED:
                states[key] = DELIVERED if state == DELIVERED else UNCERTAIN
    return states


def refusal_code(reply: str) -> int:
    try:
        return int(reply[:3])
    except ValueError:
        return 0


class Ledger:
    """delivery.json of a report folder, read once and written after each change (only under
    the folder's delivery lock)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / DELIVERY_RECORD
        for left in folder.glob(f".{DELIVERY_RECORD}.*"):  # a killed writer's temporary file
            left.unlink(missing_ok=True)
        self.document = read_ledger(self.path)

    @property
    def sends(self) -> list[dict[str, Any]]:
        return self.document["sends"]

    def save(self, failure: str) -> None:
        """Write the record; RecordError saying `failure` (with the cause) when it cannot."""
        try:
            write_ledger(self.path, self.document)
        except OSError as error:
            cause = f"{type(error).__name__}: {error}"
            raise RecordError(
                failure.replace("{path}", str(self.path)).replace("{error}", cause)
            ) from None

    def settle_stopped(self) -> list[dict[str, Any]]:
        """A `sending` under the lock was left by a deliverer that stopped: uncertain."""
        stopped = [s for s in self.sends if s.get("state") == SENDING]
        for entry in stopped:
            entry |= {"state": UNCERTAIN, "why": STOPPED, "settled_at": now()}
        if stopped:
            self.save("{path}: could not record an interrupted send as uncertain ({error})")
        return stopped

    def held(self, content_sha256: str) -> dict[str, str]:
        """Recipients (keys) of this very content (`content_key`) that are never sent it again
        without --resend: each with `delivered` or `uncertain`. A ledger written before the
        mail could carry the workbook keyed the PDF alone as `pdf_sha256`: the same key."""
        return reached([s for s in self.sends if sent_content(s) == content_sha256])

    def reached(self, message_id: str) -> dict[str, str]:
        """The recipients (keys) one message reached, or may have: delivered or uncertain."""
        return reached(self.of_message(message_id))

    def of_message(self, message_id: str) -> list[dict[str, Any]]:
        return [s for s in self.sends if s.get("message_id") == message_id]

    def skipped(self, content_sha256: str, recipients: list[str]) -> None:
        """Record a delivery that sent nothing: every recipient holds this content already."""
        self.sends.append(
            {
                "state": SKIPPED,
                "content_sha256": content_sha256,
                "recipients": recipients,
                "why": "already sent to every recipient (--resend sends it again)",
                "at": now(),
            }
        )
        self.save("nothing was sent, and {path} could not record it ({error})")

    def unreported(self) -> list[dict[str, Any]]:
        """Uncertain sends that ops have not been told of yet."""
        return [
            s for s in self.sends if s.get("state") == UNCERTAIN and not s.get("reported_to_ops")
        ]


def content_key(attachments: Mapping[str, bytes]) -> str:
    """The ledger's key of what a message carries (file name -> bytes): the PDF's SHA-256
    when it carries report.pdf alone (as every ledger kept it before a mail could carry the
    workbook), else the SHA-256 of each file's name and SHA-256, a line each."""
    if list(attachments) == ["report.pdf"]:
        return sha256_bytes(attachments["report.pdf"])
    lines = "".join(f"{name} {sha256_bytes(data)}\n" for name, data in attachments.items())
    return sha256_bytes(lines.encode())


def sent_content(entry: dict[str, Any]) -> str | None:
    """The content key an entry records (`pdf_sha256` in a ledger from before the key)."""
    return entry.get("content_sha256", entry.get("pdf_sha256"))


class LedgerJournal:
    """The transactions of one message, recorded in the ledger as they happen."""

    def __init__(self, ledger: Ledger, message: EmailMessage, content_sha256: str) -> None:
        self.ledger = ledger
        self.message_id = str(message["Message-ID"])
        self.subject = str(message["Subject"])
        self.content_sha256 = content_sha256
        cc = message["Cc"].addresses if message["Cc"] else ()
        self.cc = {address_key(a.addr_spec) for a in cc}
        self.current: dict[str, Any] = {}

    def outstanding(self, recipients: list[str]) -> list[str]:
        """Those of `recipients` this message has not reached, nor may reach: not accepted
        (or possibly accepted) before, nor refused for good."""
        done = set()
        for entry in self.ledger.of_message(self.message_id):
            if entry.get("state") in HELD:
                done |= {address_key(a) for a in recipients_of(entry)}
            done |= {
                address_key(a)
                for a, reply in entry.get("refused", {}).items()
                if refusal_code(reply) >= 500
            }
        return [a for a in recipients if address_key(a) not in done]

    def entry(self, state: str, accepted: list[str]) -> dict[str, Any]:
        return {
            "state": state,
            "started_at": now(),
            "to": [a for a in accepted if address_key(a) not in self.cc],
            "cc": [a for a in accepted if address_key(a) in self.cc],
            "subject": self.subject,
            "message_id": self.message_id,
            "content_sha256": self.content_sha256,
        }

    def intent(self, accepted: list[str]) -> None:
        self.current = self.entry(SENDING, accepted)
        self.ledger.sends.append(self.current)
        self.ledger.save("{path}: could not record the send before DATA ({error}); nothing sent")

    def delivered(self, accepted: list[str], refused: Refusals) -> None:
        started = self.current["started_at"]
        self.current |= self.entry(DELIVERED, accepted) | {"started_at": started, "sent_at": now()}
        if refused:
            self.current["refused"] = replies(refused)
        self.ledger.save(
            f"sent to {', '.join(accepted)}, but {{path}} could not record it ({{error}}); "
            "it holds them as uncertain: a rerun sends them nothing without --resend"
        )

    def failed(self, reply: str, refused: Refusals) -> None:
        self.current |= {"state": FAILED, "reply": reply, "ended_at": now()}
        self.ledger.save("nothing sent, and {path} could not record it ({error})")

    def uncertain(self, why: str) -> None:
        self.current |= {"state": UNCERTAIN, "why": why, "ended_at": now()}
        self.ledger.save(
            f"the link was lost during DATA ({why}), and {{path}} could not record it "
            "({error}); it holds the recipients as uncertain all the same"
        )

    def refused(self, refused: Refusals) -> None:
        entry = self.entry(REFUSED, []) | {"refused": replies(refused)}
        self.ledger.sends.append(entry)
        self.ledger.save("nothing sent, and {path} could not record the refusal ({error})")


def replies(refused: Refusals) -> dict[str, str]:
    return {a: f"{code} {reply_text(reply)}" for a, (code, reply) in refused.items()}


def publish_report_folder(staging: Path, report_dir: Path, manifest: dict[str, Any]) -> None:
    """A report written in `staging` becomes `report_dir`: the manifest last, then the whole
    folder swapped in (with the record of the sends of the report it replaces, under the
    delivery lock, so that no deliverer writes the record between copy and swap)."""
    write_json(staging / "manifest.json", manifest)
    try:
        os.rename(staging, report_dir)  # no report there yet: no record to carry over
        return
    except OSError as error:
        if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
    with delivery_lock(report_dir):
        if (report_dir / DELIVERY_RECORD).exists():
            shutil.copy2(report_dir / DELIVERY_RECORD, staging / DELIVERY_RECORD)
        publish_folder(staging, report_dir)
