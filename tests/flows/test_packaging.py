"""A plain (not editable) `pip install .`, as a Prefect worker image does it, run from a folder
outside the checkout: the templates, the presets and the sample must come with the package."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.heavy  # a fresh virtualenv and the installed command

REPO = Path(__file__).resolve().parents[2]


def development_modules() -> tuple[str, ...]:
    """The modules of pyproject's `dev` extra (stub packages import nothing), and pytest's
    own: the installed command must not import one of them."""
    extra = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [re.split(r"[<>=\[ ]", spec)[0] for spec in extra["optional-dependencies"]["dev"]]
    return ("_pytest", *(n.replace("-", "_") for n in names if not n.startswith("types-")))


DEV_ONLY = development_modules()
NO_DEV_DEPENDENCIES = f"""
import sys

class NoDevDependencies:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {DEV_ONLY!r}:
            raise ModuleNotFoundError(f"{{name}}: a development dependency", name=name)
        return None

sys.meta_path.insert(0, NoDevDependencies())
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtualenv holding a wheel-style install of the project. Its dependencies are
    the test environment's own (a .pth file points at their site-packages, whose editable
    finder for this project is not loaded from there), so only the project itself is new;
    the development dependencies among them cannot be imported (`NO_DEV_DEPENDENCIES`), as
    on a worker that installed the package alone."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "no_dev_dependencies.py").write_text(NO_DEV_DEPENDENCIES)
    (site / "no_dev_dependencies.pth").write_text("import no_dev_dependencies\n")
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return venv


def run_installed(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed `funnel`, against the tests' Prefect server (no temporary one to start)."""
    from prefect.settings import get_current_settings

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PREFECT_API_URL"] = str(get_current_settings().api.url)
    return subprocess.run(
        [str(venv / "bin" / "funnel"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_the_install_holds_the_code_and_its_files(installed, tmp_path):
    probe = (
        "import funnel_reports.flows as flows, funnel_reports.report_templates as report_templates;"
        "import funnel_sample, json;"
        "from funnel_reports.flows.io.config import PRESETS_FILE;"
        "print(json.dumps([flows.__file__, report_templates.__file__, str(PRESETS_FILE),"
        " funnel_sample.__file__]))"
    )
    done = subprocess.run(
        [str(installed / "bin" / "python"), "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    for path in json.loads(done.stdout):
        assert str(installed) in path and str(REPO) not in path, path
    site = next((installed / "lib").glob("python3*/site-packages"))
    for shipped in (
        "funnel_reports/report_templates/report.html.j2",
        "funnel_reports/report_templates/charts.html.j2",
        "funnel_reports/report_templates/report.css",
        "funnel_reports/report_templates/labels.toml",
        "funnel_reports/schemas/presets.toml",
        "funnel_sample/funnel.toml",
        "funnel_sample/sample/opportunities.csv",
        "funnel_sample/sample/stage_history.csv",
        "funnel_sample/sample/followups.csv",
    ):
        assert (site / shipped).is_file(), shipped


def test_the_install_cannot_import_a_development_dependency(installed, tmp_path):
    for name in ("hypothesis", "duckdb", "pytest"):
        probe = subprocess.run(
            [str(installed / "bin" / "python"), "-c", f"import {name}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        assert probe.returncode == 1 and "a development dependency" in probe.stderr, name


def test_demo_and_run_work_from_another_folder(installed, tmp_path):
    demo = run_installed(installed, "demo", "--out", "out", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    for period in ("2026-09", "2026-Q3"):
        folder = tmp_path / "out" / period
        assert (folder / "report.pdf").read_bytes().startswith(b"%PDF")
        assert "Sales funnel report" in (folder / "report.html").read_text(encoding="utf-8")
    sample = next((installed / "lib").glob("python3*/site-packages")) / "funnel_sample"
    run = run_installed(
        installed,
        "run",
        "--input",
        str(sample / "sample"),
        "--config",
        str(sample / "funnel.toml"),
        "--period",
        "2026-08",
        "--lang",
        "zh",
        "--out",
        "runs",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    metrics = json.loads((tmp_path / "runs" / "2026-08" / "metrics.json").read_text("utf-8"))
    assert metrics["kpis"]["won_count"] > 0
    assert "销售漏斗" in (tmp_path / "runs" / "2026-08" / "report.html").read_text("utf-8")
