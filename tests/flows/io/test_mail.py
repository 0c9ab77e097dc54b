"""The report mail (flows/io/mail.py): addresses and headers, the message built, failures
sorted for the retries, and the send against a real SMTP server (aiosmtpd on 127.0.0.1), each
transaction recorded in a real delivery.json."""

from __future__ import annotations

import json
import smtplib
import ssl
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from pathlib import Path

import pytest

from funnel_reports.flows.io.ledger import Ledger, LedgerJournal
from funnel_reports.flows.io.mail import (
    DeliverySettings,
    PermanentDeliveryError,
    RecordError,
    TransientDeliveryError,
    UncertainDeliveryError,
    address_key,
    addressed,
    by_code,
    classified,
    envelope_recipients,
    header_text,
    ops_message,
    parse_address,
    refusal_list,
    reply_text,
    report_message,
    send_message,
    sha256_bytes,
    smtp_password,
    transmit,
)
from tests.flows.mailbox import free_port
from tests.flows.test_delivery_once import (
    DropAfterData,
    QuitWith421,
    RecipientLimit,
    RefuseOne,
    Server,
    serving,
)

SENDER = "Funnel reports <reports@example.com>"


@pytest.fixture(autouse=True)
def _prefect():
    """An SMTP server and files only: no Prefect flow runs here, so no test server."""
    yield


def delivery(port: int = 25, **options) -> DeliverySettings:
    """[delivery] for a server on 127.0.0.1 without TLS (the tests' servers offer none)."""
    asked = {"security": "none", "timeout_seconds": 5.0, **options}
    return DeliverySettings(
        smtp_host="127.0.0.1", smtp_port=port, sender=SENDER, to=("ceo@example.com",), **asked
    )


def report_to(
    *to: str,
    cc: tuple[str, ...] = (),
    pdf_name: str = "funnel 2024-06.pdf",
    also: tuple[tuple[str, bytes], ...] = (),
):
    return report_message(
        settings=delivery(),
        recipients=(list(to), list(cc)),
        subject="Funnel 2024-06",
        text="Won 2 deals.\n",
        html="<p>Won 2 deals.</p>\n",
        attachments=[(pdf_name, b"%PDF-1.7 stand-in"), *also],
    )


def journal_for(folder: Path, message) -> LedgerJournal:
    return LedgerJournal(Ledger(folder), message, sha256_bytes(b"%PDF-1.7 stand-in"))


def states(folder: Path) -> list[tuple[str, list[str], list[str]]]:
    sends = json.loads((folder / "delivery.json").read_text(encoding="utf-8"))["sends"]
    return [(s["state"], s["to"], s["cc"]) for s in sends]


# addresses and headers


def test_a_plain_address_parses_to_itself():
    assert parse_address("ceo@example.com") == Address("", "ceo", "example.com")


def test_a_display_name_with_a_comma_is_one_address():
    found = parse_address('"Doe, Jane" <Jane@Example.com>')
    assert (found.display_name, found.addr_spec) == ("Doe, Jane", "Jane@Example.com")


def test_a_non_ascii_local_part_is_an_address():
    assert parse_address("josé@example.com").addr_spec == "josé@example.com"


@pytest.mark.parametrize(
    "text",
    ["ceo@example.com, cfo@example.com", "ceo", "", "@example.com", "<ceo@>"],
    ids=["two", "no-domain", "empty", "no-user", "empty-domain"],
)
def test_anything_but_exactly_one_address_is_refused(text):
    with pytest.raises(ValueError, match="expected one email address"):
        parse_address(text)


def test_an_address_with_a_line_break_is_refused():
    with pytest.raises(ValueError, match="an address holds no line break"):
        parse_address("ceo@example.com\r\nBcc: evil@example.com")


def test_addresses_compare_case_insensitively():
    assert address_key("Jane.Doe@Example.COM") == "jane.doe@example.com"


def test_addresses_that_differ_in_more_than_case_stay_apart():
    """Case folding would make straße@ and strasse@ one recipient; lower case does not."""
    assert address_key("Straße@example.com") == "straße@example.com"
    assert address_key("straße@example.com") != address_key("strasse@example.com")


def test_header_text_has_no_line_breaks_controls_or_runs_of_spaces():
    assert header_text("South\r\nBcc: evil@example.com\t\x00 x\x7f ") == (
        "South Bcc: evil@example.com x"
    )


def test_a_new_message_is_addressed_dated_and_identified_by_the_senders_domain():
    message = addressed(delivery(), "Funnel\n2024-06", ["ceo@example.com"], ["cfo@example.com"])
    assert message["Subject"] == "Funnel 2024-06"
    assert (message["From"], message["To"], message["Cc"]) == (
        SENDER,
        "ceo@example.com",
        "cfo@example.com",
    )
    assert message["Date"].datetime.tzinfo is not None
    assert message["Message-ID"].startswith("<") and message["Message-ID"].endswith("@example.com>")


def test_a_message_without_cc_has_no_cc_header():
    message = addressed(delivery(), "Funnel 2024-06", ["ceo@example.com"], [])
    assert "Cc" not in message


def test_an_address_in_the_settings_that_is_not_one_stops_the_message():
    with pytest.raises(ValueError, match="expected one email address"):
        addressed(delivery(), "Funnel", ["ceo@example.com, cfo@example.com"], [])


# the messages


def test_a_report_message_has_both_bodies_and_the_pdf_attached():
    message = report_to("ceo@example.com", cc=("cfo@example.com",))
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_body(("plain",)).get_content() == "Won 2 deals.\n"
    assert message.get_body(("html",)).get_content() == "<p>Won 2 deals.</p>\n"
    [attachment] = message.iter_attachments()
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "funnel 2024-06.pdf"
    assert attachment.get_content() == b"%PDF-1.7 stand-in"


def test_a_message_for_analysts_carries_the_workbook_after_the_pdf():
    workbook = b"PK\x03\x04 stand-in"
    message = report_to("analyst@example.com", also=(("漏斗 2024-06.xlsx", workbook),))
    sent = message_from_bytes(message.as_bytes(policy=policy.SMTP), policy=policy.default)
    pdf, xlsx = sent.iter_attachments()
    assert pdf.get_content_type() == "application/pdf"
    assert xlsx.get_content_type() == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    assert xlsx.get_filename() == "漏斗 2024-06.xlsx"
    assert xlsx.get_content() == workbook


def test_a_non_ascii_pdf_name_is_encoded_as_rfc_2231_says():
    message = report_to("ceo@example.com", pdf_name="报告.pdf")
    # 报 is E6 8A A5 in UTF-8, 告 is E5 91 8A
    assert b"filename*=utf-8''%E6%8A%A5%E5%91%8A.pdf" in message.as_bytes()


def test_a_non_ascii_pdf_name_has_an_rfc_2047_name_for_older_clients():
    """Outlook before 2016 and some webmail read only Content-Type's name=: it carries the
    name as encoded words; a parser reading either parameter gets the same name back."""
    name = "销售漏斗报告 华东大区 2026-09.pdf"
    message = report_to("ceo@example.com", pdf_name=name)
    sent = message.as_bytes(policy=policy.SMTP)
    assert (
        b'name="=?utf-8?b?' in sent and b"\r\n" in sent and b"\n " not in sent.replace(b"\r\n", b"")
    )
    [attachment] = message_from_bytes(sent, policy=policy.default).iter_attachments()
    assert attachment.get_filename() == name  # from filename*= (RFC 2231)
    old = message_from_bytes(sent, policy=policy.compat32).get_payload()[-1]
    words = old.get_param("name")  # what a client that knows only RFC 2047 reads
    assert str(make_header(decode_header(words.replace("\r\n", "")))) == name
    assert attachment.get_content() == b"%PDF-1.7 stand-in"  # what report_to attached


def test_an_ascii_pdf_name_is_quoted_in_both_parameters():
    sent = report_to("ceo@example.com").as_bytes()
    [attachment] = message_from_bytes(sent, policy=policy.default).iter_attachments()
    assert attachment.get_param("name") == "funnel 2024-06.pdf"
    assert attachment.get_filename() == "funnel 2024-06.pdf"


def test_an_ops_message_is_plain_text_to_ops():
    message = ops_message(
        settings=delivery(ops=("ops@example.com", "oncall@example.com")),
        subject="run failed",
        text="funnel: failed\n",
    )
    assert message["To"] == "ops@example.com, oncall@example.com"
    assert "Cc" not in message
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "funnel: failed\n"


def test_the_envelope_is_to_then_cc_each_address_once():
    message = addressed(
        delivery(),
        "Funnel",
        ["ceo@example.com", "Jane <jane@example.com>"],
        ["CEO@Example.com", "cfo@example.com"],
    )
    assert envelope_recipients(message) == [
        "ceo@example.com",
        "jane@example.com",
        "cfo@example.com",
    ]


def test_the_sha256_of_a_pdf_is_its_hex_digest():
    """The digest of "abc" as FIPS 180-2 gives it."""
    assert sha256_bytes(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


# replies and failures


def test_a_reply_is_one_line_of_text_even_when_it_is_not_utf8():
    assert reply_text(b"5.1.1  no such\r\n user \xff") == "5.1.1 no such user \ufffd"
    assert reply_text("already text") == "already text"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (421, TransientDeliveryError),
        (452, TransientDeliveryError),
        (499, TransientDeliveryError),
        (500, PermanentDeliveryError),
        (554, PermanentDeliveryError),
    ],
)
def test_a_4xx_is_transient_and_a_5xx_permanent(code, kind):
    assert by_code(code) is kind


def test_refusals_are_listed_with_their_codes_and_replies():
    refused = {"a@example.com": (550, b"5.1.1 no such user"), "b@example.com": (452, b"later")}
    assert refusal_list(refused) == (
        "a@example.com (550 5.1.1 no such user), b@example.com (452 later)"
    )


@pytest.mark.parametrize(
    "error",
    [TransientDeliveryError("x"), PermanentDeliveryError("x"), RecordError("x")],
    ids=["transient", "permanent", "record"],
)
def test_an_error_already_sorted_is_kept_as_it_is(error):
    assert classified(error, delivery()) is error


def test_a_missing_extension_is_permanent_naming_the_server():
    error = smtplib.SMTPNotSupportedError("SMTP AUTH extension\n not supported by server.")
    found = classified(error, delivery(587))
    assert type(found) is PermanentDeliveryError
    assert str(found) == "127.0.0.1:587: SMTP AUTH extension not supported by server."


@pytest.mark.parametrize(
    ("code", "kind"), [(451, TransientDeliveryError), (530, PermanentDeliveryError)]
)
def test_a_reply_outside_data_is_sorted_by_its_code(code, kind):
    found = classified(smtplib.SMTPResponseException(code, b"5.7.0  go\r\n away"), delivery())
    assert type(found) is kind
    assert str(found) == f"127.0.0.1 answered {code} 5.7.0 go away"


def test_a_tls_failure_is_permanent_and_points_at_ca_file():
    with pytest.raises(ssl.SSLError) as raised:  # a real one, from the ssl module
        ssl.create_default_context().load_verify_locations(cadata="not a certificate")
    found = classified(raised.value, delivery(465))
    assert type(found) is PermanentDeliveryError
    assert str(found).startswith("127.0.0.1:465: TLS failed (")
    assert str(found).endswith("); set [delivery] ca_file to the server's CA")


def test_any_other_failure_is_transient_with_its_kind():
    found = classified(ConnectionRefusedError(111, "Connection refused"), delivery(2525))
    assert type(found) is TransientDeliveryError
    assert str(found) == "127.0.0.1:2525: ConnectionRefusedError: [Errno 111] Connection refused"


def test_the_password_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("FUNNEL_SMTP_PASSWORD", "s3cret")
    assert smtp_password(delivery(username="reports")) == "s3cret"


def test_no_password_anywhere_is_none(monkeypatch):
    monkeypatch.delenv("FUNNEL_SMTP_PASSWORD", raising=False)
    assert smtp_password(delivery(username="reports")) is None


# the send, against a real server


class ReadsTheRecord(Server):
    """Reads delivery.json when the message arrives, before it answers DATA."""

    def __init__(self, record: Path) -> None:
        super().__init__()
        self.record = record
        self.seen: list[list[dict]] = []

    async def handle_DATA(self, server, session, envelope):
        self.seen.append(json.loads(self.record.read_text(encoding="utf-8"))["sends"])
        return await super().handle_DATA(server, session, envelope)


class RefuseEveryone(Server):
    """450 to every RCPT: no mailbox can take it now."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "450 4.2.1 mailbox busy"


def test_an_ops_notice_reaches_its_recipients_once(smtp):
    mailbox, port = smtp
    message = addressed(delivery(port), "run failed", ["ops@example.com"], ["OPS@example.com"])
    message.set_content("funnel: failed\n")
    send_message(message, delivery(port))
    assert mailbox.envelopes == [["ops@example.com"]]
    assert mailbox.messages[0].get_content() == "funnel: failed\r\n"  # as the wire has it


def test_the_intent_is_on_disk_when_the_server_gets_the_message(tmp_path):
    server = ReadsTheRecord(tmp_path / "delivery.json")
    message = report_to("ceo@example.com", cc=("cfo@example.com",))
    with serving(server) as port:
        transmit(
            message,
            ["ceo@example.com", "cfo@example.com"],
            delivery(port),
            journal_for(tmp_path, message),
        )
    [[intent]] = server.seen
    assert (intent["state"], intent["to"], intent["cc"]) == (
        "sending",
        ["ceo@example.com"],
        ["cfo@example.com"],
    )
    assert states(tmp_path) == [("delivered", ["ceo@example.com"], ["cfo@example.com"])]
    assert server.envelopes == [["ceo@example.com", "cfo@example.com"]]


def test_a_421_to_quit_after_data_was_taken_is_still_a_delivery(tmp_path):
    server = QuitWith421()
    message = report_to("ceo@example.com")
    with serving(server) as port:
        transmit(message, ["ceo@example.com"], delivery(port), journal_for(tmp_path, message))
    assert states(tmp_path) == [("delivered", ["ceo@example.com"], [])]


def test_a_4xx_to_data_is_transient_and_recorded_as_failed(tmp_path):
    server = Server()
    server.replies = ["451 4.3.0 try again later"]
    message = report_to("ceo@example.com")
    with serving(server) as port, pytest.raises(TransientDeliveryError) as error:
        transmit(message, ["ceo@example.com"], delivery(port), journal_for(tmp_path, message))
    assert str(error.value) == "127.0.0.1 answered 451 4.3.0 try again later"
    assert states(tmp_path) == [("failed", ["ceo@example.com"], [])]
    assert server.messages == []


def test_a_5xx_to_data_is_permanent(tmp_path):
    server = Server()
    server.replies = ["554 5.7.1 rejected as spam"]
    message = report_to("ceo@example.com")
    with serving(server) as port, pytest.raises(PermanentDeliveryError) as error:
        transmit(message, ["ceo@example.com"], delivery(port), journal_for(tmp_path, message))
    assert str(error.value) == "127.0.0.1 answered 554 5.7.1 rejected as spam"


def test_a_link_lost_before_the_reply_to_data_is_uncertain(tmp_path):
    server = DropAfterData()
    message = report_to("ceo@example.com")
    with serving(server) as port, pytest.raises(UncertainDeliveryError) as error:
        transmit(message, ["ceo@example.com"], delivery(port), journal_for(tmp_path, message))
    assert str(error.value).startswith("the link to 127.0.0.1 was lost after DATA was sent (")
    assert states(tmp_path) == [("uncertain", ["ceo@example.com"], [])]
    assert len(server.messages) == 1  # the server kept it: never resent blind


def test_one_permanent_refusal_fails_the_send_after_the_others_got_it(tmp_path):
    server = RefuseOne()  # 550 to cfo@example.com
    message = report_to("ceo@example.com", cc=("cfo@example.com",))
    with serving(server) as port, pytest.raises(PermanentDeliveryError) as error:
        transmit(
            message,
            ["ceo@example.com", "cfo@example.com"],
            delivery(port),
            journal_for(tmp_path, message),
        )
    assert str(error.value) == "127.0.0.1: refused cfo@example.com (550 5.1.1 no such user)"
    assert server.envelopes == [["ceo@example.com"]]
    assert states(tmp_path) == [("delivered", ["ceo@example.com"], [])]


def test_every_recipient_refused_for_now_is_transient_and_recorded(tmp_path):
    server = RefuseEveryone()
    message = report_to("ceo@example.com")
    with serving(server) as port, pytest.raises(TransientDeliveryError) as error:
        transmit(message, ["ceo@example.com"], delivery(port), journal_for(tmp_path, message))
    assert str(error.value) == "127.0.0.1: refused ceo@example.com (450 4.2.1 mailbox busy)"
    assert states(tmp_path) == [("refused", [], [])]
    assert server.attempts == 0  # no DATA


def test_a_recipient_limit_sends_the_rest_in_batches_no_larger_than_it_took(tmp_path):
    many = [f"exec{n}@example.com" for n in range(5)]
    server = RecipientLimit()  # 452 to every RCPT past the second of a transaction
    message = report_to(*many)
    with serving(server) as port:
        transmit(message, many, delivery(port), journal_for(tmp_path, message))
    assert server.envelopes == [many[:2], many[2:4], many[4:]]
    assert [s for s, _, _ in states(tmp_path)] == ["delivered"] * 3
    assert len({m["Message-ID"] for m in server.messages}) == 1


def test_no_starttls_offered_where_it_is_asked_sends_nothing_in_clear():
    server = Server()
    with serving(server) as port, pytest.raises(PermanentDeliveryError) as error:
        transmit(
            report_to("ceo@example.com"), ["ceo@example.com"], delivery(port, security="starttls")
        )
    assert str(error.value) == (
        f'127.0.0.1:{port} offers no STARTTLS and [delivery] security is "starttls"; '
        "nothing sent in clear"
    )
    assert (server.sessions, server.attempts) == (1, 0)


def test_a_password_where_the_server_offers_no_login_is_permanent(monkeypatch):
    monkeypatch.setenv("FUNNEL_SMTP_PASSWORD", "s3cret")
    server = Server()
    with serving(server) as port, pytest.raises(PermanentDeliveryError) as error:
        transmit(report_to("ceo@example.com"), ["ceo@example.com"], delivery(port, username="r"))
    assert str(error.value) == f"127.0.0.1:{port}: SMTP AUTH extension not supported by server."
    assert server.attempts == 0


def test_a_username_without_a_password_does_not_log_in(monkeypatch):
    monkeypatch.delenv("FUNNEL_SMTP_PASSWORD", raising=False)
    server = Server()
    with serving(server) as port:
        transmit(report_to("ceo@example.com"), ["ceo@example.com"], delivery(port, username="r"))
    assert server.envelopes == [["ceo@example.com"]]


def test_an_address_needing_smtputf8_is_permanent_where_it_is_not_offered():
    server = Server()
    with (
        serving(server, enable_SMTPUTF8=False) as port,
        pytest.raises(PermanentDeliveryError, match="SMTPUTF8"),
    ):
        transmit(report_to("josé@example.com"), ["josé@example.com"], delivery(port))
    assert server.attempts == 0


def test_an_address_needing_smtputf8_goes_where_it_is_offered():
    server = Server()
    with serving(server, enable_SMTPUTF8=True) as port:
        transmit(report_to("josé@example.com"), ["josé@example.com"], delivery(port))
    assert server.envelopes == [["josé@example.com"]]


def test_no_server_listening_is_transient():
    port = free_port()  # nothing listens there
    with pytest.raises(TransientDeliveryError) as error:
        transmit(report_to("ceo@example.com"), ["ceo@example.com"], delivery(port))
    assert str(error.value).startswith(f"127.0.0.1:{port}: ConnectionRefusedError: ")
