"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, keeping what it accepts."""

from __future__ import annotations

import email
import socket
from email import policy
from email.message import EmailMessage
from pathlib import Path

from funnel_reports.flows.io.resources import SAMPLE_CONFIG


class Mailbox:
    """An SMTP handler that keeps every accepted message; `replies` are answered (in order)
    to DATA before it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[list[str]] = []
        self.raw: list[bytes] = []
        self.replies: list[str] = []
        self.attempts = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.attempts += 1
        if self.replies:
            return self.replies.pop(0)
        self.messages.append(
            email.message_from_bytes(envelope.original_content, policy=policy.default)
        )
        self.envelopes.append(list(envelope.rcpt_tos))
        self.raw.append(envelope.original_content)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def config(tmp_path: Path, port: int, lang: str = "en") -> Path:
    """The sample's funnel.toml with a [delivery] section for the test server."""
    path = tmp_path / "funnel.toml"
    path.write_text(
        SAMPLE_CONFIG.read_text(encoding="utf-8").replace('lang = "en"', f'lang = "{lang}"')
        + f"""
[delivery]
smtp_host = "127.0.0.1"
smtp_port = {port}
security = "none"
sender = "Funnel reports <reports@example.com>"
to = ["ceo@example.com"]
cc = ["cfo@example.com"]
ops = ["ops@example.com"]
retry_delays_seconds = [0.1, 0.2, 0.4]
""",
        encoding="utf-8",
    )
    return path
