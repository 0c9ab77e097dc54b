from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _prefect(prefect_server):
    """Every test here runs real Prefect flows."""
    yield
