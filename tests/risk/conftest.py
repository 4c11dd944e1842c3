"""Fixtures of the risk tests: a unique engine name whose segments must all be gone after."""

from __future__ import annotations

import os

import pytest

from risk_harness import shm_entries


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    prefix = f"sr{os.getpid()}{request.node.name[-12:].replace('[', '').replace(']', '')}"
    yield prefix
    assert shm_entries(prefix) == [], "segments leaked"
