from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from tests.flows.mailbox import Mailbox, free_port


@pytest.fixture(autouse=True)
def _prefect(prefect_server):
    """Every test here runs real Prefect flows."""
    yield


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        logging.getLogger("mail.log").disabled = False
        controller.stop()
