"""Mail delivery against a real SMTP server (aiosmtpd on 127.0.0.1), through the real CLI."""

from __future__ import annotations

import io
import json
import logging
import ssl
import subprocess
from pathlib import Path

import polars as pl
from aiosmtpd.controller import Controller

from funnel_reports.flows.cli import main
from funnel_reports.flows.io.resources import SAMPLE_DIR
from tests.flows.mailbox import Mailbox, config, free_port


def run(tmp_path: Path, toml: Path, *extra: str) -> int:
    return main(
        [
            "run",
            "--input",
            str(SAMPLE_DIR),
            "--config",
            str(toml),
            "--period",
            "2026-09",
            "--out",
            str(tmp_path / "out"),
            "--deliver",
            *extra,
        ]
    )


def sends(tmp_path: Path) -> list[dict]:
    """The delivered sends in the report's ledger (it also records failed attempts)."""
    record = tmp_path / "out" / "2026-09" / "delivery.json"
    entries = json.loads(record.read_text(encoding="utf-8"))["sends"] if record.exists() else []
    return [entry for entry in entries if entry["state"] == "delivered"]


def test_a_report_is_mailed_once_with_its_pdf_and_again_only_with_resend(tmp_path, smtp):
    mailbox, port = smtp
    toml = config(tmp_path, port, lang="zh")
    assert run(tmp_path, toml) == 0
    assert len(mailbox.messages) == 1
    message = mailbox.messages[0]
    assert sorted(mailbox.envelopes[0]) == ["ceo@example.com", "cfo@example.com"]
    assert "2026-09" in message["Subject"] and "销售漏斗报告" in message["Subject"]
    assert (message["To"], message["Cc"]) == ("ceo@example.com", "cfo@example.com")
    assert message.get_content_type() == "multipart/mixed"
    bodies = message.get_body(preferencelist=("plain",)), message.get_body(("html",))
    assert all(b is not None for b in bodies)
    plain, html = (b.get_content() for b in bodies)
    assert "赢单率" in plain and "<table" in html
    attachment = next(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "销售漏斗报告 2026-09.pdf"
    assert b"filename*0*=utf-8''%E9%94%80" in mailbox.raw[0]  # RFC 2231, as sent
    pdf = (tmp_path / "out" / "2026-09" / "report.pdf").read_bytes()
    assert attachment.get_content() == pdf
    [sent] = sends(tmp_path)
    assert sent["message_id"] == message["Message-ID"]
    assert (sent["to"], sent["cc"]) == (["ceo@example.com"], ["cfo@example.com"])
    # the same report again: nothing is sent, and the record survives the rewrite of the folder
    assert run(tmp_path, toml) == 0
    assert len(mailbox.messages) == 1 and len(sends(tmp_path)) == 1
    deliver = ["deliver", "--out", str(tmp_path / "out"), "--period", "2026-09"]
    assert main([*deliver, "--config", str(toml)]) == 0
    assert len(mailbox.messages) == 1
    assert main([*deliver, "--config", str(toml), "--resend"]) == 0
    assert len(mailbox.messages) == 2 and len(sends(tmp_path)) == 2


def test_an_analysts_list_gets_the_workbook_and_a_changed_attachment_is_new_content(tmp_path, smtp):
    """[delivery] attach = ["xlsx"]: the mail carries report.xlsx alone, as the report folder
    holds it, named like the PDF would be, and the workbook's sheets read back. Mailing the
    PDF too afterwards is other content: sent again, once."""
    mailbox, port = smtp
    toml = config(tmp_path, port)
    toml.write_text(toml.read_text(encoding="utf-8") + 'attach = ["xlsx"]\n', encoding="utf-8")
    assert run(tmp_path, toml) == 0
    [message] = mailbox.messages
    [workbook] = message.iter_attachments()
    assert workbook.get_content_type() == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert workbook.get_filename() == "Sales funnel report 2026-09.xlsx"
    sent = workbook.get_content()
    assert sent == (tmp_path / "out" / "2026-09" / "report.xlsx").read_bytes()
    sheets = pl.read_excel(io.BytesIO(sent), sheet_id=0)
    assert list(sheets)[:2] == ["figures", "deals"] and sheets["figures"].height > 50
    assert "Sales funnel report 2026-09.xlsx" in message.get_body(("plain",)).get_content()
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('attach = ["xlsx"]', 'attach = ["pdf", "xlsx"]'),
        encoding="utf-8",
    )
    assert run(tmp_path, toml) == 0
    assert len(mailbox.messages) == 2
    assert [a.get_content_type() for a in mailbox.messages[1].iter_attachments()] == [
        "application/pdf",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ]
    assert run(tmp_path, toml) == 0
    assert len(mailbox.messages) == 2


def test_transient_refusals_are_retried_until_the_server_takes_the_message(tmp_path, smtp):
    mailbox, port = smtp
    mailbox.replies = ["451 4.3.0 try again later", "451 4.3.0 try again later"]
    assert run(tmp_path, config(tmp_path, port)) == 0
    assert (mailbox.attempts, len(mailbox.messages), len(sends(tmp_path))) == (3, 1, 1)


def test_a_permanent_refusal_is_not_retried_and_the_report_stays(tmp_path, smtp, capsys):
    mailbox, port = smtp
    mailbox.replies = ["550 5.7.1 relaying denied"] * 5
    assert run(tmp_path, config(tmp_path, port)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "550" in err[0] and "Traceback" not in err[0], err
    assert mailbox.attempts == 1 and mailbox.messages == []
    assert (tmp_path / "out" / "2026-09" / "report.pdf").is_file()
    assert sends(tmp_path) == []


def test_an_unreachable_server_fails_with_one_line_after_its_retries(tmp_path, capsys):
    toml = config(tmp_path, free_port())  # nothing listens there
    assert run(tmp_path, toml) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ConnectionRefusedError" in err[0], err
    assert (tmp_path / "out" / "2026-09" / "report.pdf").is_file()
    assert sends(tmp_path) == []


def test_a_password_in_the_file_is_refused(tmp_path, smtp, capsys):
    _, port = smtp
    toml = config(tmp_path, port)
    toml.write_text(toml.read_text(encoding="utf-8") + 'password = "hunter2"\n', encoding="utf-8")
    assert run(tmp_path, toml) == 2
    assert "secrets never go in a file" in capsys.readouterr().err


def test_starttls_with_the_servers_own_certificate(tmp_path, capsys):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        [
            *openssl,
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True
    )
    controller.start()
    try:
        toml = config(tmp_path, port)
        text = toml.read_text(encoding="utf-8").replace(
            'security = "none"', 'security = "starttls"'
        )
        toml.write_text(text + f'ca_file = "{cert}"\n', encoding="utf-8")
        assert run(tmp_path, toml) == 0
        assert len(mailbox.messages) == 1
        # without the CA the certificate is not trusted: refused at once, with one line (the
        # test server's own log of the failed handshake is kept off standard error)
        logging.getLogger("mail.log").disabled = True
        capsys.readouterr()
        toml.write_text(text, encoding="utf-8")
        assert run(tmp_path, toml, "--resend") == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "ca_file" in err[0], err
        assert len(mailbox.messages) == 1
    finally:
        logging.getLogger("mail.log").disabled = False
        controller.stop()


def test_contact_data_in_free_text_reaches_neither_the_report_nor_the_mail(tmp_path, smtp):
    mailbox, port = smtp
    exports = tmp_path / "in"
    exports.mkdir()
    (exports / "opportunities.csv").write_text(
        "opportunity_id,stage,created_at,status,customer_name,stall_reason,amount\n"
        'A,proposal,2026-09-01,open,"ACME, tel 13912345678",'
        '"waiting for li.wei@example.com, call +86 138-1234-5678",1000\n'
        "B,lead,2026-09-28,open,Beta Co,,500\n",
        encoding="utf-8",
    )
    toml = config(tmp_path, port)
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('timezone = "Asia/Shanghai"', 'timezone = "UTC"'),
        encoding="utf-8",
    )
    arguments = ["run", "--input", str(exports), "--config", str(toml), "--period", "2026-09"]
    assert main([*arguments, "--out", str(tmp_path / "out"), "--deliver"]) == 0
    folder = tmp_path / "out" / "2026-09"
    pdf_text = subprocess.run(
        ["pdftotext", str(folder / "report.pdf"), "-"], capture_output=True, text=True, check=True
    ).stdout
    message = mailbox.messages[0]
    shown = {
        "metrics.json": (folder / "metrics.json").read_text(encoding="utf-8"),
        "report.html": (folder / "report.html").read_text(encoding="utf-8"),
        "report.pdf": pdf_text,
        "mail": message.get_body(("plain",)).get_content()
        + message.get_body(("html",)).get_content(),
    }
    for where, text in shown.items():
        for raw in ("13912345678", "li.wei@", "1234-5678"):
            assert raw not in text, (where, raw)
    for where in ("metrics.json", "report.html", "report.pdf"):
        assert "139****5678" in shown[where] and "l***@example.com" in shown[where], where
