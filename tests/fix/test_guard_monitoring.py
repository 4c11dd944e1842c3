"""The monitoring the router process runs around the gateway: the run's audit journal holds
every decision, engine audit record and event (operator actions with who and why), the
Prometheus metrics count orders, fills and latencies per venue, and a Python model guard that
fires switches routing to the fallback (an event, the engine's model status) until an operator
re-enables the model."""

from __future__ import annotations

import time

import pytest

from gateway_support import GuardRouter, LiveRouters, wait_until
from sor.monitor import read_journal


@pytest.fixture
def router(tmp_path):
    made = GuardRouter(tmp_path, venue_names=("XNAS", "BATS"))
    yield made
    made.close()


def test_the_audit_journal_and_the_metrics_follow_the_routing(router):
    gateway = router.gateway
    router.book([(0, 1_000_100, 100), (1, 1_000_200, 100)], bids=[(0, 999_900, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 200, price="100.05")
    assert router.oms.wait_done(cl_ord_id).cum_quantity == 200
    gateway.halt(operator="alice", reason="end of test")
    wait_until(lambda: b'sor_fills_total{venue="BATS"} 1.0' in gateway.metrics.exposition(), 5,
               "the fills in the metrics")
    text = gateway.metrics.exposition().decode()
    assert 'sor_child_orders_total{venue="XNAS"} 1.0' in text
    assert 'sor_filled_shares_total{venue="XNAS"} 100.0' in text
    # the order path's latency samples (one per order whose first child left while the
    # NewOrderSingle was handled) reach the histogram at the next housekeeping tick
    samples = len(gateway.core.order_path_latency_ns())
    wait_until(lambda: f"sor_order_path_latency_seconds_count {float(samples)}" in
               gateway.metrics.exposition().decode(), 5, "the order latency (housekeeping)")
    assert 'sor_fix_session_up{session="XNAS"} 1.0' in gateway.metrics.exposition().decode()
    path = gateway.audit_journal.path
    router.close()  # flushes and closes the journal
    contents = read_journal(path)
    kinds = contents.audit["kind"].tolist()
    assert kinds.count(3) == 2           # CHILD_ORDER
    assert len(contents.decisions) >= 2
    halts = [e for e in contents.events if e["kind"] == "risk_state"]
    assert halts and halts[0]["operator"] == "alice" and halts[0]["reason"] == "end of test"
    assert any(e["kind"] == "session" for e in contents.events)


@pytest.fixture
def make_live(tmp_path):
    routers = LiveRouters(tmp_path)
    yield routers.make
    routers.close()


@pytest.mark.slow
def test_a_python_guard_trip_forces_the_fallback_until_the_model_is_re_enabled(make_live):
    # a concentration guard that any routing trips: more than 30 % of 5 children's shares
    gateway, venues, oms = make_live(changes={
        "guardrails.concentration_window_children": 5,
        "guardrails.concentration_min_children": 5,
        "guardrails.concentration_max_share": 0.3,
        "guardrails.fill_rate_enabled": False, "guardrails.drift_enabled": False})
    deadline = time.time_ns() + 60 * 10**9
    oms.new_order("AAPL", "buy", 30_000, time_in_force="6", expire_time_ns=deadline)
    wait_until(lambda: gateway.engine.model_status()["mode"] == "fallback", 30,
               "the guard's fallback")
    status = gateway.engine.model_status()
    assert status["reason"] == "VENUE_CONCENTRATION"
    wait_until(lambda: any(e["kind"] == "model_guard" for e in gateway.events()), 5,
               "the trip's event")
    event = [e for e in gateway.events() if e["kind"] == "model_guard"][-1]
    assert event["severity"] == "error" and "venue concentration" in event["text"]
    assert gateway.guard_monitor.tripped
    assert "sor_guard_monitor_trips_total{reason=\"venue_concentration\"} 1.0" in \
        gateway.metrics.exposition().decode()
    gateway.enable_model(operator="dave", reason="reviewed the routing")
    assert gateway.engine.model_status()["mode"] == "model"
    assert not gateway.guard_monitor.tripped
