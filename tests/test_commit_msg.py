"""The commit-msg hook that `make setup` installs: a subject of at most 72 characters."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

HOOK = Path(__file__).resolve().parents[1] / ".githooks" / "commit-msg"


def verdict(tmp_path: Path, message: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "COMMIT_EDITMSG"
    path.write_text(message, encoding="utf-8")
    return subprocess.run([str(HOOK), str(path)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    "message",
    ["One change\n", "x" * 72 + "\n\nA body line may run on " + "y" * 100 + "\n"],
)
def test_a_subject_of_72_characters_or_fewer_passes(tmp_path, message):
    assert verdict(tmp_path, message).returncode == 0


def test_a_longer_subject_is_refused_with_its_length(tmp_path):
    answer = verdict(tmp_path, "x" * 73 + "\n")
    assert answer.returncode == 1
    assert "73 characters" in answer.stderr


def test_git_comments_are_not_the_subject(tmp_path):
    assert verdict(tmp_path, "# Please enter the commit message\nFix it\n").returncode == 0
    assert verdict(tmp_path, "# only a comment\n").returncode == 1
