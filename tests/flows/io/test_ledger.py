"""delivery.json and the delivery lock (flows/io/ledger.py), on real files in tmp_path: the
record read and written, what it says each recipient has, a message's transactions as they
are recorded, the lock held and waited for, and a report folder published over an old one."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

import pytest

from funnel_reports.flows.io.ledger import (
    STOPPED,
    DeliveryBusyError,
    Ledger,
    LedgerJournal,
    delivery_lock,
    publish_report_folder,
    reached,
    read_ledger,
    recipients_of,
    refusal_code,
    replies,
    write_ledger,
)
from funnel_reports.flows.io.mail import DeliverySettings, RecordError, addressed
from funnel_reports.transforms.staging.layout import UnusableInputError

SETTINGS = DeliverySettings(
    smtp_host="127.0.0.1", sender="Reports <reports@example.com>", to=("ceo@example.com",)
)


@pytest.fixture(autouse=True)
def _prefect():
    """Files only: these tests run no Prefect flow, so no test server is started."""
    yield


def message(to=("ceo@example.com",), cc=("cfo@example.com",), subject="Funnel 2024-06"):
    return addressed(SETTINGS, subject, list(to), list(cc))


def sends_on_disk(folder: Path) -> list[dict]:
    return json.loads((folder / "delivery.json").read_text(encoding="utf-8"))["sends"]


# read_ledger and write_ledger


def test_no_record_reads_as_no_sends(tmp_path):
    assert read_ledger(tmp_path / "delivery.json") == {"sends": []}


def test_a_record_is_read_as_written(tmp_path):
    path = tmp_path / "delivery.json"
    document = {"sends": [{"state": "delivered", "to": ["ceo@example.com"]}], "note": "kept"}
    path.write_text(json.dumps(document), encoding="utf-8")
    assert read_ledger(path) == document


def test_a_record_that_is_not_utf8_is_damaged(tmp_path):
    path = tmp_path / "delivery.json"
    path.write_bytes(b'{"sends": ["\xff"]}')
    with pytest.raises(UnusableInputError) as error:
        read_ledger(path)
    assert str(error.value).startswith(f"{path}: the record of this report's sends is damaged")
    assert "(not UTF-8: invalid start byte)" in str(error.value)
    assert "move it aside" in str(error.value)


def test_a_cut_record_is_damaged_naming_where_the_json_breaks(tmp_path):
    path = tmp_path / "delivery.json"
    path.write_text('{"sends": [\n  {"to": ["ceo', encoding="utf-8")
    with pytest.raises(UnusableInputError) as error:
        read_ledger(path)
    # the string opened at line 2, column 11 (`  {"to": ["ceo`) is never closed
    assert "(not valid JSON: Unterminated string" in str(error.value)
    assert "Unterminated string starting at: line 2 column 11)" in str(error.value)


@pytest.mark.parametrize(
    "document",
    [
        [],  # not an object
        {"send": []},  # no sends
        {"sends": {"to": ["ceo@example.com"]}},  # sends not a list
        {"sends": ["ceo@example.com"]},  # a send not an object
        {"sends": [{"to": "ceo@example.com"}]},  # its to not a list
    ],
    ids=["list", "no-sends", "sends-object", "send-string", "to-string"],
)
def test_a_record_of_another_shape_is_damaged(tmp_path, document):
    path = tmp_path / "delivery.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(UnusableInputError, match=r'expected \{"sends": \[\.\.\.\]\}'):
        read_ledger(path)


def test_a_written_record_is_indented_utf8_json_ending_in_a_newline(tmp_path):
    path = tmp_path / "delivery.json"
    write_ledger(path, {"sends": [{"subject": "销售漏斗 2024-06"}]})
    assert path.read_text(encoding="utf-8") == (
        '{\n  "sends": [\n    {\n      "subject": "销售漏斗 2024-06"\n    }\n  ]\n}\n'
    )
    assert [p.name for p in tmp_path.iterdir()] == ["delivery.json"]  # no temporary file left


# recipients_of, reached, refusal_code, replies


def test_an_entrys_recipients_are_its_to_then_its_cc():
    entry = {"to": ["ceo@example.com"], "cc": ["cfo@example.com", "Jane <jane@example.com>"]}
    assert recipients_of(entry) == ["ceo@example.com", "cfo@example.com", "jane@example.com"]


def test_an_old_entrys_header_fragments_are_joined_into_one_address():
    """Records from before states were kept split `"Doe, Jane" <jane@…>` at its comma."""
    entry = {"to": ['"Doe', 'Jane" <jane@example.com>'], "cc": []}
    assert recipients_of(entry) == ["jane@example.com"]


def test_an_entry_without_recipients_has_none():
    assert recipients_of({"state": "refused"}) == []


def test_delivered_wins_over_uncertain_whichever_comes_first():
    entries = [
        {"state": "delivered", "to": ["a@example.com"]},
        {"state": "uncertain", "to": ["a@example.com", "b@example.com"]},
        {"state": "delivered", "to": ["B@Example.com"]},
    ]
    assert reached(entries) == {"a@example.com": "delivered", "b@example.com": "delivered"}


def test_a_send_still_sending_counts_as_uncertain():
    assert reached([{"state": "sending", "cc": ["cfo@example.com"]}]) == {
        "cfo@example.com": "uncertain"
    }


def test_failed_and_refused_sends_reach_no_one():
    entries = [
        {"state": "failed", "to": ["a@example.com"]},
        {"state": "refused", "to": [], "refused": {"b@example.com": "550 no such user"}},
    ]
    assert reached(entries) == {}


def test_an_entry_without_a_state_is_a_delivery():
    """The first records held delivered sends only, without a state."""
    assert reached([{"to": ["ceo@example.com"]}]) == {"ceo@example.com": "delivered"}


@pytest.mark.parametrize(
    ("reply", "code"),
    [("550 5.1.1 no such user", 550), ("452", 452), ("", 0), ("oops", 0)],
)
def test_a_refusals_code_is_its_first_three_digits_or_zero(reply, code):
    assert refusal_code(reply) == code


def test_refusal_replies_are_recorded_as_one_line_of_text():
    refused = {"cfo@example.com": (550, b"5.1.1 no such\r\n  user")}
    assert replies(refused) == {"cfo@example.com": "550 5.1.1 no such user"}


# Ledger


def test_a_ledger_removes_a_killed_writers_temporary_files(tmp_path):
    (tmp_path / ".delivery.json.k2j4x").write_text("{", encoding="utf-8")
    (tmp_path / "report.pdf").write_bytes(b"%PDF")
    ledger = Ledger(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]
    assert ledger.sends == []


def test_a_ledger_that_cannot_be_written_says_so_with_its_path_and_cause(tmp_path):
    folder = tmp_path / "gone"
    folder.mkdir()
    ledger = Ledger(folder)
    folder.rmdir()
    with pytest.raises(RecordError) as error:
        ledger.save("{path}: could not record it ({error}); nothing sent")
    assert str(error.value).startswith(f"{folder / 'delivery.json'}: could not record it (")
    assert "FileNotFoundError: [Errno 2] No such file or directory" in str(error.value)
    assert str(error.value).endswith("); nothing sent")


def test_a_send_left_sending_is_settled_as_uncertain_on_disk(tmp_path):
    write_ledger(
        tmp_path / "delivery.json",
        {
            "sends": [
                {"state": "delivered", "to": ["a@example.com"]},
                {"state": "sending", "to": ["b@example.com"]},
            ]
        },
    )
    ledger = Ledger(tmp_path)
    [stopped] = ledger.settle_stopped()
    assert stopped["to"] == ["b@example.com"]
    [kept, settled] = sends_on_disk(tmp_path)
    assert kept == {"state": "delivered", "to": ["a@example.com"]}
    assert (settled["state"], settled["why"]) == ("uncertain", STOPPED)
    assert "settled_at" in settled


def test_nothing_to_settle_writes_nothing(tmp_path):
    ledger = Ledger(tmp_path)
    assert ledger.settle_stopped() == []
    assert not (tmp_path / "delivery.json").exists()


def test_held_recipients_are_those_of_this_very_pdf(tmp_path):
    write_ledger(
        tmp_path / "delivery.json",
        {
            "sends": [
                {"state": "delivered", "to": ["a@example.com"], "pdf_sha256": "old"},
                {"state": "uncertain", "to": ["b@example.com"], "pdf_sha256": "new"},
                {"state": "failed", "to": ["c@example.com"], "pdf_sha256": "new"},
            ]
        },
    )
    ledger = Ledger(tmp_path)
    assert ledger.held("new") == {"b@example.com": "uncertain"}
    assert ledger.held("old") == {"a@example.com": "delivered"}


def test_a_message_reached_those_of_its_own_sends(tmp_path):
    write_ledger(
        tmp_path / "delivery.json",
        {
            "sends": [
                {"state": "delivered", "to": ["a@example.com"], "message_id": "<1@x>"},
                {"state": "delivered", "to": ["b@example.com"], "message_id": "<2@x>"},
            ]
        },
    )
    assert Ledger(tmp_path).reached("<1@x>") == {"a@example.com": "delivered"}


def test_unreported_sends_are_the_uncertain_ones_ops_have_not_heard_of(tmp_path):
    sends = [
        {"state": "uncertain", "to": ["a@example.com"]},
        {"state": "uncertain", "to": ["b@example.com"], "reported_to_ops": "2024-07-01"},
        {"state": "delivered", "to": ["c@example.com"]},
    ]
    write_ledger(tmp_path / "delivery.json", {"sends": sends})
    assert Ledger(tmp_path).unreported() == [sends[0]]


# LedgerJournal: one message's transactions


def test_the_intent_is_on_disk_before_data_with_to_and_cc_apart(tmp_path):
    sent = message(to=("ceo@example.com",), cc=("CFO@example.com",))
    journal = LedgerJournal(Ledger(tmp_path), sent, "f00d")
    journal.intent(["ceo@example.com", "CFO@example.com"])
    [entry] = sends_on_disk(tmp_path)
    assert entry["state"] == "sending"
    assert (entry["to"], entry["cc"]) == (["ceo@example.com"], ["CFO@example.com"])
    assert (entry["subject"], entry["content_sha256"]) == ("Funnel 2024-06", "f00d")
    assert entry["message_id"] == sent["Message-ID"]


def test_a_delivery_completes_its_intent_keeping_when_it_started(tmp_path):
    journal = LedgerJournal(Ledger(tmp_path), message(), "f00d")
    journal.intent(["ceo@example.com", "cfo@example.com"])
    started = sends_on_disk(tmp_path)[0]["started_at"]
    journal.delivered(["ceo@example.com"], {"cfo@example.com": (550, b"5.1.1 no such user")})
    [entry] = sends_on_disk(tmp_path)
    assert entry["state"] == "delivered"
    assert (entry["to"], entry["cc"]) == (["ceo@example.com"], [])
    assert entry["started_at"] == started and "sent_at" in entry
    assert entry["refused"] == {"cfo@example.com": "550 5.1.1 no such user"}


def test_a_failed_data_records_the_servers_reply(tmp_path):
    journal = LedgerJournal(Ledger(tmp_path), message(), "f00d")
    journal.intent(["ceo@example.com"])
    journal.failed("451 4.3.0 try again later", {})
    [entry] = sends_on_disk(tmp_path)
    assert (entry["state"], entry["reply"]) == ("failed", "451 4.3.0 try again later")
    assert "ended_at" in entry


def test_a_link_lost_during_data_is_recorded_uncertain_with_why(tmp_path):
    journal = LedgerJournal(Ledger(tmp_path), message(), "f00d")
    journal.intent(["ceo@example.com"])
    journal.uncertain("SMTPServerDisconnected: no reply")
    [entry] = sends_on_disk(tmp_path)
    assert (entry["state"], entry["why"]) == ("uncertain", "SMTPServerDisconnected: no reply")


def test_a_transaction_refused_whole_is_an_entry_of_its_own(tmp_path):
    journal = LedgerJournal(Ledger(tmp_path), message(), "f00d")
    journal.refused({"ceo@example.com": (450, b"mailbox busy")})
    [entry] = sends_on_disk(tmp_path)
    assert (entry["state"], entry["to"], entry["cc"]) == ("refused", [], [])
    assert entry["refused"] == {"ceo@example.com": "450 mailbox busy"}


def test_outstanding_leaves_out_whom_this_message_reached_or_may_have(tmp_path):
    sent = message(to=("a@example.com", "b@example.com", "c@example.com"), cc=())
    journal = LedgerJournal(Ledger(tmp_path), sent, "f00d")
    journal.intent(["A@example.com"])
    journal.delivered(["A@example.com"], {})
    journal.intent(["b@example.com"])
    journal.uncertain("TimeoutError: no reply")
    assert journal.outstanding(["a@example.com", "b@example.com", "c@example.com"]) == [
        "c@example.com"
    ]


def test_outstanding_leaves_out_a_permanent_refusal_but_not_a_transient_one(tmp_path):
    sent = message(to=("a@example.com", "b@example.com"), cc=())
    journal = LedgerJournal(Ledger(tmp_path), sent, "f00d")
    journal.refused({"a@example.com": (550, b"no such user"), "b@example.com": (452, b"later")})
    assert journal.outstanding(["a@example.com", "b@example.com"]) == ["b@example.com"]


def test_outstanding_ignores_the_sends_of_another_message(tmp_path):
    ledger = Ledger(tmp_path)
    earlier = LedgerJournal(ledger, message(), "f00d")
    earlier.intent(["ceo@example.com"])
    earlier.delivered(["ceo@example.com"], {})
    assert LedgerJournal(ledger, message(), "f00d").outstanding(["ceo@example.com"]) == [
        "ceo@example.com"
    ]


def test_a_failed_transaction_leaves_its_recipients_outstanding(tmp_path):
    journal = LedgerJournal(Ledger(tmp_path), message(), "f00d")
    journal.intent(["ceo@example.com"])
    journal.failed("451 4.3.0 try again later", {})
    assert journal.outstanding(["ceo@example.com"]) == ["ceo@example.com"]


# delivery_lock


def test_the_lock_file_names_its_holder_while_held(tmp_path):
    with delivery_lock(tmp_path, wait_seconds=1):
        said = (tmp_path / ".delivery.lock").read_text(encoding="utf-8")
    assert said.startswith(f"pid {os.getpid()} since ")
    assert said.endswith("+00:00\n")


def test_a_second_deliverer_waits_then_gives_up_naming_the_first(tmp_path):
    with delivery_lock(tmp_path, wait_seconds=1):
        started = time.monotonic()
        with pytest.raises(DeliveryBusyError) as busy, delivery_lock(tmp_path, wait_seconds=0.3):
            pass
        waited = time.monotonic() - started
    assert 0.3 <= waited < 2
    assert str(busy.value).startswith(f"{tmp_path}: another deliverer (pid {os.getpid()} since ")
    assert str(busy.value).endswith(
        "has been at work on it for over 0.3 s; nothing sent; try again once it is done"
    )


def test_the_lock_is_free_again_once_released(tmp_path):
    with delivery_lock(tmp_path, wait_seconds=0):
        pass
    with delivery_lock(tmp_path, wait_seconds=0):
        pass  # no DeliveryBusyError


def test_a_deliverer_waiting_on_a_folder_swapped_out_locks_the_new_one(tmp_path):
    """The report is rewritten (its folder swapped) while a deliverer waits: the lock it then
    gets is the new folder's, not the old one's."""
    report = tmp_path / "2024-06"
    report.mkdir()
    holder = os.open(report / ".delivery.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    inside = threading.Event()

    def deliverer():
        with delivery_lock(report, wait_seconds=5):
            inside.set()

    waiting = threading.Thread(target=deliverer)
    waiting.start()
    try:
        time.sleep(0.15)  # the deliverer has opened the old lock file and polls it
        assert not inside.is_set()
        report.rename(tmp_path / "old")
        report.mkdir()
    finally:
        os.close(holder)  # releases the old folder's lock
    waiting.join(timeout=5)
    assert inside.is_set()
    assert (report / ".delivery.lock").read_text(encoding="utf-8").startswith("pid ")
    assert (tmp_path / "old" / ".delivery.lock").read_text(encoding="utf-8") == ""


# publish_report_folder


def staged(tmp_path: Path, mark: str) -> Path:
    folder = tmp_path / f".staging-{mark}"
    folder.mkdir()
    (folder / "report.pdf").write_text(mark, encoding="utf-8")
    return folder


def test_a_first_report_is_its_staging_folder_with_its_manifest(tmp_path):
    report = tmp_path / "2024-06"
    publish_report_folder(staged(tmp_path, "first"), report, {"period": "2024-06"})
    assert sorted(p.name for p in report.iterdir()) == ["manifest.json", "report.pdf"]
    assert json.loads((report / "manifest.json").read_text(encoding="utf-8")) == {
        "period": "2024-06"
    }


def test_a_rewritten_report_carries_over_the_record_of_its_sends(tmp_path):
    report = tmp_path / "2024-06"
    publish_report_folder(staged(tmp_path, "first"), report, {})
    record = '{"sends": [{"state": "delivered", "to": ["ceo@example.com"]}]}\n'
    (report / "delivery.json").write_text(record, encoding="utf-8")
    publish_report_folder(staged(tmp_path, "second"), report, {})
    assert (report / "report.pdf").read_text(encoding="utf-8") == "second"
    assert (report / "delivery.json").read_text(encoding="utf-8") == record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2024-06"]  # staging and old gone


def test_a_rewritten_report_never_sent_has_no_record(tmp_path):
    report = tmp_path / "2024-06"
    publish_report_folder(staged(tmp_path, "first"), report, {})
    publish_report_folder(staged(tmp_path, "second"), report, {})
    assert sorted(p.name for p in report.iterdir()) == ["manifest.json", "report.pdf"]
