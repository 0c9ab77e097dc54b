"""Exactly once per recipient: `funnel deliver` against misbehaving SMTP servers (aiosmtpd on
127.0.0.1 with handlers that answer badly, drop the link, or hold a reply until the test has
killed the client with SIGKILL). Each recipient ends with one copy of the report, or the
ledger (delivery.json) says the copy is uncertain and a rerun sends none."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from funnel_reports.flows.cli import main
from funnel_reports.flows.io import ledger as ledger_module
from funnel_reports.flows.io.resources import SAMPLE_DIR
from tests.flows.mailbox import Mailbox, config, free_port

pytestmark = pytest.mark.heavy  # deliverers killed at each SMTP step, in processes

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2026-09"
RECIPIENTS = ("ceo@example.com", "cfo@example.com")
OPS = ["ops@example.com"]


@pytest.fixture(scope="module")
def made(tmp_path_factory, prefect_server) -> Path:
    """One report on disk (not mailed), copied into each test's OUT."""
    folder = tmp_path_factory.mktemp("made")
    toml = config(folder, free_port())
    argv = ["run", "--input", str(SAMPLE_DIR), "--config", str(toml), "--period", PERIOD]
    assert main([*argv, "--out", str(folder / "out")]) == 0
    return folder / "out" / PERIOD


@pytest.fixture
def out(tmp_path, made) -> Path:
    shutil.copytree(made, tmp_path / "out" / PERIOD)
    return tmp_path / "out"


@contextmanager
def serving(handler: Mailbox, **options) -> Iterator[int]:
    """A real SMTP server on 127.0.0.1 for the block, stopped after it."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        handler.release.set()  # a held reply must not keep the server from stopping
        controller.stop()


def settings(tmp_path: Path, port: int, extra: str = "", **replace: str) -> Path:
    """The tests' funnel.toml for this server, with [delivery] keys replaced or added."""
    toml = config(tmp_path, port)
    text = toml.read_text(encoding="utf-8")
    for key, value in replace.items():
        start = text.index(f"\n{key} = ")
        end = text.index("\n", start + 1)
        text = text[:start] + f"\n{key} = {value}" + text[end:]
    toml.write_text(text + extra, encoding="utf-8")
    return toml


def deliver(out: Path, toml: Path, *extra: str) -> int:
    return main(["deliver", "--out", str(out), "--period", PERIOD, "--config", str(toml), *extra])


def deliverer(out: Path, toml: Path) -> subprocess.Popen[str]:
    """`funnel deliver` in a process of its own (to be killed), against the tests' Prefect."""
    from prefect.settings import get_current_settings

    env = {**os.environ, "PREFECT_API_URL": str(get_current_settings().api.url)}
    argv = ["deliver", "--out", str(out), "--period", PERIOD, "--config", str(toml)]
    return subprocess.Popen(
        [sys.executable, "-m", "funnel_reports.flows.cli", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def copies(mailbox: Mailbox, address: str) -> int:
    """How many copies of the report the server accepted for `address`."""
    return sum(
        address in [a.lower() for a in envelope] and any(message.iter_attachments())
        for envelope, message in zip(mailbox.envelopes, mailbox.messages, strict=True)
    )


def ledger(out: Path) -> list[dict]:
    path = out / PERIOD / "delivery.json"
    return json.loads(path.read_text(encoding="utf-8"))["sends"] if path.exists() else []


def states(out: Path) -> dict[str, str]:
    """Each recipient's latest state in the ledger."""
    found = {}
    for entry in ledger(out):
        for address in (*entry.get("to", []), *entry.get("cc", [])):
            found[address] = entry.get("state", "delivered")
    return found


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


class Server(Mailbox):
    """The tests' mailbox, counting sessions (EHLO) and keeping what it accepts."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions = 0
        self.release = threading.Event()  # lets a held reply go
        self.holding = threading.Event()  # set once a reply is held

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def hold(self) -> None:
        self.holding.set()
        while not self.release.is_set():
            await asyncio.sleep(0.02)


class QuitWith421(Server):
    """250 to DATA, then 421 to QUIT."""

    async def handle_QUIT(self, server, session, envelope):
        return "421 4.3.2 closing, bye"


class DropAfterData(Server):
    """Keeps the message, then drops the link before answering DATA (the first time)."""

    dropped = False

    async def handle_DATA(self, server, session, envelope):
        status = await super().handle_DATA(server, session, envelope)
        if not self.dropped:
            self.dropped = True
            server.transport.abort()
        return status


class RefuseOne(Server):
    """550 to RCPT for one address."""

    refused = "cfo@example.com"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() == self.refused:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class RecipientLimit(Server):
    """452 to every RCPT past the second of a transaction (a relay's per-message limit)."""

    limit = 2

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= self.limit:
            return "452 4.5.3 too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class Holding(Server):
    """Holds its reply to one command (RCPT, DATA after keeping the message, or QUIT) until
    released: the test kills the client meanwhile."""

    def __init__(self, step: str) -> None:
        super().__init__()
        self.step = step
        self.held = False

    async def hold_once(self, step: str) -> None:
        if self.step == step and not self.held:
            self.held = True
            await self.hold()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await self.hold_once("RCPT")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        status = await super().handle_DATA(server, session, envelope)
        await self.hold_once("DATA")
        return status

    async def handle_QUIT(self, server, session, envelope):
        await self.hold_once("QUIT")
        return "221 Bye"


class Slow(Server):
    """Takes a while to answer DATA (two deliverers at once overlap)."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(4)
        return await super().handle_DATA(server, session, envelope)


def test_a_421_to_quit_after_the_250_is_a_delivery(tmp_path, out, capsys):
    server = QuitWith421()
    with serving(server) as port:
        toml = settings(tmp_path, port)
        assert deliver(out, toml) == 0, capsys.readouterr().err
        assert deliver(out, toml) == 0
    assert [copies(server, a) for a in RECIPIENTS] == [1, 1]
    assert states(out) == dict.fromkeys(RECIPIENTS, "delivered")
    message = server.messages[0]
    assert message["Date"] is not None and message["Date"].datetime.tzinfo is not None


def test_a_link_lost_during_data_is_uncertain_reported_and_never_resent(tmp_path, out, capsys):
    server = DropAfterData()
    with serving(server) as port:
        toml = settings(tmp_path, port)
        assert deliver(out, toml) == 1
        line = one_error_line(capsys)
        assert "uncertain" in line and "--resend" in line and "ops@example.com" in line, line
        assert deliver(out, toml) == 1  # a rerun: still uncertain, nothing sent
        assert "uncertain" in one_error_line(capsys)
        assert [copies(server, a) for a in RECIPIENTS] == [1, 1]
        assert states(out) == dict.fromkeys(RECIPIENTS, "uncertain")
        # ops heard of it once
        notices = [m for m, e in zip(server.messages, server.envelopes, strict=True) if e == OPS]
        assert len(notices) == 1 and "uncertain" in str(notices[0]["Subject"]).lower()
        assert "--resend" in notices[0].get_content()
        # --resend is the one way to send it again
        assert deliver(out, toml, "--resend") == 0
        assert [copies(server, a) for a in RECIPIENTS] == [2, 2]


def test_one_refused_recipient_leaves_the_other_mailed_once_and_recorded(tmp_path, out, capsys):
    server = RefuseOne()
    with serving(server) as port:
        toml = settings(tmp_path, port)
        assert deliver(out, toml) == 1
        line = one_error_line(capsys)
        assert "cfo@example.com (550" in line and "sent to ceo@example.com" in line, line
        assert server.attempts == 1  # a 5xx is not retried
        assert deliver(out, toml) == 1  # cfo is tried again, ceo is not mailed again
        assert (copies(server, "ceo@example.com"), copies(server, "cfo@example.com")) == (1, 0)
    assert states(out)["ceo@example.com"] == "delivered"


def test_a_recipient_limit_sends_the_rest_in_further_transactions(tmp_path, out, capsys):
    many = [f"exec{n}@example.com" for n in range(5)]
    server = RecipientLimit()
    with serving(server) as port:
        toml = settings(tmp_path, port, to=json.dumps(many[:3]), cc=json.dumps(many[3:]))
        assert deliver(out, toml) == 0, capsys.readouterr().err
        assert deliver(out, toml) == 0
    assert [copies(server, a) for a in many] == [1] * 5
    assert [len(e) for e in server.envelopes] == [2, 2, 1]
    assert len({m["Message-ID"] for m in server.messages}) == 1  # one message, 3 envelopes
    assert states(out) == dict.fromkeys(many, "delivered")


def test_no_starttls_offered_is_permanent(tmp_path, out, capsys):
    server = Server()
    with serving(server) as port:  # offers no STARTTLS
        toml = settings(tmp_path, port, security='"starttls"')
        assert deliver(out, toml) == 1
        assert "STARTTLS" in one_error_line(capsys)
    assert (server.sessions, server.attempts) == (1, 0)


def test_an_address_needing_smtputf8_is_permanent_where_it_is_not_offered(tmp_path, out, capsys):
    server = Server()
    with serving(server, enable_SMTPUTF8=False) as port:
        toml = settings(tmp_path, port, to='["josé@example.com"]')
        assert deliver(out, toml) == 1
        assert "SMTPUTF8" in one_error_line(capsys)
        assert (server.sessions, server.attempts) == (1, 0)
    server = Server()
    with serving(server, enable_SMTPUTF8=True) as port:
        toml = settings(tmp_path, port, to='["josé@example.com"]')
        assert deliver(out, toml) == 0
        assert deliver(out, toml) == 0
    assert copies(server, "josé@example.com") == 1


def test_a_display_name_with_a_comma_is_one_recipient_mailed_once(tmp_path, out, capsys):
    server = Server()
    with serving(server) as port:
        toml = settings(tmp_path, port, to='["\\"Doe, Jane\\" <Jane@Example.com>"]', cc="[]")
        # a record written before addresses were parsed: the header split at its comma
        pdf = (out / PERIOD / "report.pdf").read_bytes()
        old = {"to": ['"Doe', 'Jane" <jane@example.com>'], "cc": []}
        old |= {"pdf_sha256": hashlib.sha256(pdf).hexdigest(), "message_id": "<old@x>"}
        (out / PERIOD / "delivery.json").write_text(json.dumps({"sends": [old]}))
        assert deliver(out, toml) == 0
        assert "already sent" in capsys.readouterr().out
        (out / PERIOD / "delivery.json").unlink()
        assert deliver(out, toml) == 0
        assert deliver(out, toml) == 0
    assert copies(server, "jane@example.com") == 1
    assert server.messages[0]["To"] == '"Doe, Jane" <Jane@Example.com>'


def test_a_damaged_ledger_is_named_in_one_line(tmp_path, out, capsys):
    server = Server()
    with serving(server) as port:
        toml = settings(tmp_path, port)
        assert deliver(out, toml) == 0
        record = out / PERIOD / "delivery.json"
        record.write_text(record.read_text(encoding="utf-8")[:40], encoding="utf-8")
        capsys.readouterr()
        assert deliver(out, toml) == 2
        line = one_error_line(capsys)
        assert str(record) in line and "move it aside" in line, line
    assert [copies(server, a) for a in RECIPIENTS] == [1, 1]


def test_a_full_disk_after_the_send_sends_no_second_copy(tmp_path, out, capsys, monkeypatch):
    server = Server()
    replace = os.replace

    def full_once_sent(source, target, *args, **kwargs):
        if Path(target).name == "delivery.json" and server.messages:
            raise OSError(errno.ENOSPC, "No space left on device")
        return replace(source, target, *args, **kwargs)

    with serving(server) as port:
        toml = settings(tmp_path, port)
        monkeypatch.setattr(os, "replace", full_once_sent)
        assert deliver(out, toml) == 1
        line = one_error_line(capsys)
        assert "No space left" in line and "sent to" in line, line
        monkeypatch.setattr(os, "replace", replace)
        assert deliver(out, toml) == 1  # the intent on disk: uncertain, nothing sent
        assert "uncertain" in one_error_line(capsys)
    assert [copies(server, a) for a in RECIPIENTS] == [1, 1]


@pytest.mark.parametrize(
    ("to", "said"),
    [
        ('"ceo@example.com"', "Input should be a valid list"),
        ('["ceo@example.com, cfo@example.com"]', "expected one email address"),
    ],
)
def test_a_to_that_is_not_a_list_of_addresses_is_refused_in_one_line(
    tmp_path, out, capsys, to, said
):
    toml = settings(tmp_path, free_port(), to=to)
    assert deliver(out, toml) == 2
    line = one_error_line(capsys)
    assert "[delivery" in line and said in line, line


@pytest.mark.parametrize("step", ["RCPT", "DATA", "QUIT"])
def test_a_deliverer_killed_at_any_step_is_never_followed_by_a_second_copy(
    tmp_path, out, capsys, step
):
    server = Holding(step)
    with serving(server) as port:
        toml = settings(tmp_path, port)
        killed = deliverer(out, toml)
        try:
            assert server.holding.wait(timeout=120), killed.communicate(timeout=60)
        finally:
            killed.send_signal(signal.SIGKILL)
            killed.communicate()
        server.release.set()
        time.sleep(0.2)  # the held reply goes to a closed socket
        accepted = [copies(server, a) for a in RECIPIENTS]
        assert accepted == ([1, 1] if step != "RCPT" else [0, 0])
        status = deliver(out, toml)
        assert deliver(out, toml) == status
    assert [copies(server, a) for a in RECIPIENTS] == [1, 1]
    if step == "DATA":  # the server kept it but the client never heard its reply
        assert status == 1 and "uncertain" in capsys.readouterr().err
        assert states(out) == dict.fromkeys(RECIPIENTS, "uncertain")
    else:
        assert status == 0
        assert states(out) == dict.fromkeys(RECIPIENTS, "delivered")


def test_two_deliverers_at_once_send_one_copy_each(tmp_path, out):
    server = Slow()
    with serving(server) as port:
        toml = settings(tmp_path, port)
        runs = [deliverer(out, toml) for _ in range(2)]
        results = [run.communicate(timeout=300) for run in runs]
        assert [run.returncode for run in runs] == [0, 0], results
    assert [copies(server, a) for a in RECIPIENTS] == [1, 1]
    said = sorted(stdout.strip().splitlines()[-1].split(": ", 1)[1] for stdout, _ in results)
    assert said == [
        "already sent to every recipient; nothing sent",
        f"sent to {', '.join(RECIPIENTS)}",
    ]


def test_one_teams_failure_never_stops_the_others_mail(tmp_path, capsys):
    server = Server()
    with serving(server) as port:
        toml = settings(
            tmp_path,
            port,
            extra="""
[[reports]]
name = "east"
filter = { region = ["East China"] }
to = ["east-head@example.com"]

[[reports]]
name = "south"
title = "South\\r\\nBcc: evil@example.com /../../etc"
filter = { region = "South China" }
to = ["south-head@example.com"]
""",
        )
        out = tmp_path / "out"
        damaged = out / "east" / PERIOD
        damaged.mkdir(parents=True)
        (damaged / "delivery.json").write_text('{"sends": [{"to": ["east', encoding="utf-8")
        argv = ["run", "--input", str(SAMPLE_DIR), "--config", str(toml), "--period", PERIOD]
        status = main([*argv, "--out", str(out), "--reports", "east,south", "--deliver"])
    captured = capsys.readouterr()
    assert status == 1
    failures = captured.err.strip().splitlines()
    assert len(failures) == 1 and failures[0].startswith("funnel: east 2026-09: "), failures
    assert str(damaged / "delivery.json") in failures[0]
    assert copies(server, "south-head@example.com") == 1
    assert all("evil@example.com" not in e for e in server.envelopes)
    [message] = server.messages
    assert "\n" not in message["Subject"] and "South Bcc: evil@example.com" in message["Subject"]
    name = next(message.iter_attachments()).get_filename()
    assert "/" not in name and ".." not in name and name.endswith(".pdf"), name


def test_a_deliverer_waits_a_bounded_time_for_another(tmp_path, out, capsys, monkeypatch):
    server = Server()
    with serving(server) as port, open(out / PERIOD / ".delivery.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another deliverer at work
        monkeypatch.setattr(ledger_module, "LOCK_WAIT_SECONDS", 0.5)
        assert deliver(out, settings(tmp_path, port)) == 1
        line = one_error_line(capsys)
        assert "another deliverer" in line and "nothing sent" in line, line
    assert server.sessions == 0
