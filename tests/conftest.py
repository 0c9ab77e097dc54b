"""Test-wide settings: Prefect runs against one session-wide test server, started on demand."""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")  # as the CLI: errors are one line
# every metrics.json a test's run writes is checked against schemas/metrics.schema.json (the
# runs in subprocesses too): a key docs/metrics.md does not define fails the run
from funnel_reports.schemas.metrics_schema import CHECK_ENVIRONMENT

os.environ[CHECK_ENVIRONMENT] = "1"

import pytest


@pytest.fixture(scope="session")
def prefect_server():
    """One Prefect test server for the whole run (it costs ~13 s to start)."""
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=90),
        temporary_settings(updates={"flows.heartbeat_frequency": None}),
    ):
        yield
