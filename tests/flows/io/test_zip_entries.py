"""A zip copied with one entry changed: the others' compressed bytes as they were, the
archive whole for zipfile and for `unzip -t`."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from funnel_reports.flows.io.zip_entries import data_start, with_entry

ENTRIES = {"a.xml": b"<a>" + b"x" * 5000 + b"</a>", "b/core.xml": b"<when>now</when>", "c": b"c"}


class Unseekable:
    """A file that zipfile cannot seek in, so it follows each entry with a data descriptor,
    as a streaming writer does."""

    def __init__(self, path: Path):
        self.file = path.open("wb")

    def write(self, data: bytes) -> int:
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def archive(path: Path, *, streamed: bool) -> Path:
    target = Unseekable(path) if streamed else path
    with zipfile.ZipFile(target, "w") as out:  # type: ignore[arg-type]
        for name, content in ENTRIES.items():
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            method = zipfile.ZIP_STORED if name == "c" else zipfile.ZIP_DEFLATED
            out.writestr(info, content, compress_type=method)
    if streamed:
        target.close()  # type: ignore[union-attr]
    return path


def raw_entries(path: Path) -> dict[str, bytes]:
    """Each entry's compressed bytes as stored."""
    with zipfile.ZipFile(path) as read, path.open("rb") as file:
        raw = {}
        for entry in read.infolist():
            file.seek(data_start(file, entry))
            raw[entry.filename] = file.read(entry.compress_size)
        return raw


@pytest.mark.parametrize("streamed", [False, True])
def test_one_entry_is_changed_and_the_others_are_copied_as_they_were(tmp_path, streamed):
    source = archive(tmp_path / "in.zip", streamed=streamed)
    if streamed:
        with zipfile.ZipFile(source) as read:
            assert all(entry.flag_bits & 0x08 for entry in read.infolist())
    target = tmp_path / "out.zip"
    with_entry(source, target, "b/core.xml", lambda xml: xml.replace(b"now", b"2024-06-30"))
    with zipfile.ZipFile(target) as read:
        assert read.testzip() is None
        assert read.namelist() == list(ENTRIES)
        assert read.read("b/core.xml") == b"<when>2024-06-30</when>"
        assert read.read("a.xml") == ENTRIES["a.xml"]
        assert read.read("c") == b"c"
        assert {e.filename: e.date_time for e in read.infolist()} == dict.fromkeys(
            ENTRIES, (1980, 1, 1, 0, 0, 0)
        )
    before, after = raw_entries(source), raw_entries(target)
    assert after["a.xml"] == before["a.xml"] and after["c"] == before["c"]
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", str(target)], check=True, capture_output=True)


def test_the_same_archive_and_edit_give_the_same_bytes(tmp_path):
    source = archive(tmp_path / "in.zip", streamed=False)
    for name in ("one.zip", "two.zip"):
        with_entry(source, tmp_path / name, "c", lambda content: content * 3)
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_an_entry_the_archive_lacks_is_an_error(tmp_path):
    source = archive(tmp_path / "in.zip", streamed=False)
    with pytest.raises(KeyError):
        with_entry(source, tmp_path / "out.zip", "docProps/core.xml", lambda xml: xml)
