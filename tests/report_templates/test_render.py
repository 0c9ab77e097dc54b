"""Rendering: WeasyPrint fetches nothing outside the templates; number formats."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from funnel_reports.report_templates import formatting as fmt
from funnel_reports.report_templates.render import render_pdf


class CountingHandler(BaseHTTPRequestHandler):
    requests: ClassVar[list[str]] = []

    def do_GET(self):
        CountingHandler.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/svg+xml")
        self.end_headers()
        self.wfile.write(b"<svg xmlns='http://www.w3.org/2000/svg' width='5' height='5'/>")

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    server = HTTPServer(("127.0.0.1", 0), CountingHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    CountingHandler.requests = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_pdf_rendering_fetches_nothing_from_outside(local_server, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET", encoding="utf-8")
    html = (
        f'<p>hello</p><img src="{local_server}/pixel.svg">'
        f'<link rel="stylesheet" href="{local_server}/style.css">'
        f'<link rel="attachment" href="{secret.as_uri()}">'
        f'<img src="{secret.as_uri()}">'
    )
    pdf = render_pdf(html)
    assert pdf.startswith(b"%PDF")
    assert CountingHandler.requests == []
    assert b"TOP SECRET" not in pdf and b"secret.txt" not in pdf


def test_pdf_rendering_still_reads_data_urls():
    svg = "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='9' height='9'/>"
    assert render_pdf(f'<img src="{svg}">').startswith(b"%PDF")


@pytest.mark.parametrize(
    ("value", "lang", "expected"),
    [
        (1_091_000, "en", "1.09M"),
        (2_700, "en", "3k"),
        (950, "en", "950"),
        (1_091_000, "zh", "109.1万"),
        (250_000_000, "zh", "2.5亿"),
        (None, "en", "–"),
    ],
)
def test_compact_amounts(value, lang, expected):
    assert fmt.compact_amount(value, lang) == expected


def test_rates_and_missing_values():
    assert fmt.percent(0.1549) == "15%"
    assert fmt.percent(0.1549, 1) == "15.5%"
    assert fmt.points(0.042) == "+4.2 pp"
    assert fmt.percent(None) == fmt.days(None) == fmt.amount(float("nan")) == "–"


def test_free_text_is_cut_to_a_readable_length():
    assert fmt.clip("Budget  approval") == "Budget approval"
    assert fmt.clip("a\nb   c") == "a b c"
    long = fmt.clip("x" * 5_000_000)
    assert len(long) == fmt.TEXT_LIMIT and long.endswith("…")
    assert fmt.clip(None) == fmt.NOT_AVAILABLE
