"""Shared fixtures of the monitor tests: guard settings (the GuardrailSettings attribute
names), record builders, and one real routed session (engine + shipped models + simulated
venues) whose decision and audit records several tests read."""

from __future__ import annotations

import os

import pytest

from monitor_records import routed_session


@pytest.fixture(scope="session")
def routed():
    """A real session: the engine hosting ml_router with the shipped models routes one parent
    into the simulated default market for 90 s (after a 2-minute warm-up)."""
    return routed_session(f"sormon{os.getpid()}")
