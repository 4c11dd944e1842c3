"""The gateway's watch on its engine: a late heartbeat from an engine that still runs (a thread
starved on an overloaded host) is counted and routing goes on; an engine that failed stops the
gateway."""

from __future__ import annotations

import pytest

from sor.errors import EngineCrashedError
from sor.fix.config import SessionConfig
from sor.fix.gateway import Gateway
from sor.fix.gateway import runner


@pytest.fixture
def gateway(tmp_path):
    sessions = [SessionConfig(name="OMS", role="acceptor", application="oms",
                              begin_string="FIX.4.4", sender_comp_id="SOR", target_comp_id="OMS",
                              host="127.0.0.1", port=0, store_dir="fix")]
    with Gateway(None, sessions, state_dir=tmp_path / "state") as started:
        yield started


def _late_heartbeat(*_: object) -> None:
    raise EngineCrashedError("engine 'sor' has not heartbeaten for 1500 ms (timeout 1000 ms)")


def test_a_late_heartbeat_of_a_running_engine_is_counted_and_the_gateway_goes_on(
        gateway, monkeypatch) -> None:
    monkeypatch.setattr(gateway.engine, "check", _late_heartbeat)
    status = gateway.engine.status()
    monkeypatch.setattr(gateway.engine, "status",
                        lambda: {**status, "heartbeat_age_ms": 1500.0})
    gateway._housekeeping()
    assert gateway.error is None
    assert gateway.core.counters["engine_heartbeat_late"] == 1


def test_an_engine_stalled_past_the_limit_or_failed_stops_the_gateway(gateway,
                                                                       monkeypatch) -> None:
    monkeypatch.setattr(gateway.engine, "check", _late_heartbeat)
    status = gateway.engine.status()
    monkeypatch.setattr(gateway.engine, "status", lambda: {
        **status, "heartbeat_age_ms": runner.ENGINE_STALL_LIMIT_S * 1000 + 1})
    gateway._housekeeping()
    assert isinstance(gateway.error, EngineCrashedError)
    gateway.error = None
    monkeypatch.setattr(gateway.engine, "status", lambda: {**status, "state": "failed"})
    gateway._housekeeping()
    assert isinstance(gateway.error, EngineCrashedError)
