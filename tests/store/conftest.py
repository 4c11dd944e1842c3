"""Fixtures of the store tests: one real routed session and simulated market data, shared by
the session (each takes about a second)."""

from __future__ import annotations

import os

import pytest

from store_helpers import market_events, routed


@pytest.fixture(scope="session")
def session_records():
    """A real session: the engine with the shipped models routes parents for 2 simulated
    minutes."""
    return routed(name=f"sorstore{os.getpid()}")


@pytest.fixture(scope="session")
def market():
    """The simulated default market's events per lit venue over 60 s, and its UTC midnight."""
    return market_events(60.0)
