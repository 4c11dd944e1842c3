"""RouterMetrics: the exposition parses back (prometheus_client.parser) with the values the
records imply, from built records and from a real routed session."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor_records import (ACK, CANCELLED, CHILD_ORDER, EXECUTION, FILL, REJECTED, SELL, audit,
                             decisions)
from sor import _core
from sor.monitor.metrics import RollingWindow, RouterMetrics

VENUES = {0: "XNAS", 1: "BATS", 2: "EDGX", 3: "IEXG", 4: "DARK"}


def samples(metrics: RouterMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Returns every sample of the exposition by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(metrics_samples: dict, name: str, **labels: str) -> float:
    return metrics_samples[(name, tuple(sorted(labels.items())))]


def test_counters_per_venue_and_reason_from_audit_records() -> None:
    metrics = RouterMetrics(venue_names=VENUES)
    a = audit([
        (CHILD_ORDER, 1, 1_000_100, 300, 0, 0), (CHILD_ORDER, 2, 1_000_100, 200, 0, 1),
        (CHILD_ORDER, 3, 1_000_100, 100, 0, 1),
        (EXECUTION, 1, 0, 0, ACK, 0), (EXECUTION, 1, 1_000_100, 100, FILL, 0),
        (EXECUTION, 1, 1_000_200, 200, FILL, 0), (EXECUTION, 2, 1_000_000, 50, FILL, 1),
        (EXECUTION, 2, 0, 0, CANCELLED, 1), (EXECUTION, 3, 0, 0, REJECTED, 1),
        (int(_core.AuditKind.RISK_REJECT), 0, 1_000_100, 100, 0, 2),
        (int(_core.AuditKind.RISK_REJECT), 0, 1_000_100, 100, 0, 2),
        (int(_core.AuditKind.COMMAND_ACCEPTED), 0, 0, 0, 7, 0),
        (int(_core.AuditKind.COMMAND_REJECTED), 0, 0, 0, 8, 0),
        (int(_core.AuditKind.PARENT_DONE), 0, 350, 1, 7, 0),
    ])
    a["reason"][9:11] = [int(_core.RejectReason.PRICE_BAND), int(_core.RejectReason.HALTED)]
    a["reason"][12] = int(_core.RejectReason.DUPLICATE_PARENT)
    metrics.observe_audit(a)
    metrics.observe_audit(a[:1])  # counters add up over batches
    s = samples(metrics)
    assert value(s, "sor_child_orders_total", venue="XNAS") == 2
    assert value(s, "sor_child_orders_total", venue="BATS") == 2
    assert value(s, "sor_fills_total", venue="XNAS") == 2
    assert value(s, "sor_fills_total", venue="BATS") == 1
    assert value(s, "sor_filled_shares_total", venue="XNAS") == 300
    assert value(s, "sor_filled_shares_total", venue="BATS") == 50
    assert value(s, "sor_venue_rejects_total", venue="BATS") == 1
    assert value(s, "sor_venue_cancels_total", venue="BATS") == 1
    assert value(s, "sor_risk_rejects_total", reason="price_band") == 1
    assert value(s, "sor_risk_rejects_total", reason="halted") == 1
    assert value(s, "sor_commands_total", result="accepted") == 1
    assert value(s, "sor_commands_total", result="rejected") == 1
    assert value(s, "sor_command_rejects_total", reason="duplicate_parent") == 1
    assert value(s, "sor_parents_done_total", how="cancelled") == 1
    # one acknowledged child: its latency is the ack's audit time minus the child's
    assert value(s, "sor_venue_ack_latency_seconds_count", venue="XNAS") == 1
    ack = float(a["ts_ns"][3] - a["ts_ns"][0]) / 1e9
    assert value(s, "sor_venue_ack_latency_seconds_sum", venue="XNAS") == pytest.approx(ack)
    assert value(s, "sor_venue_ack_latency_quantile_seconds", venue="XNAS",
                 quantile="0.99") == pytest.approx(ack)


def test_latency_histograms_and_window_quantiles() -> None:
    metrics = RouterMetrics(window=1000)
    rng = np.random.default_rng(3)
    latencies_ns = rng.lognormal(np.log(50_000), 0.6, 5000)
    for chunk in np.array_split(latencies_ns, 17):
        metrics.observe_order_latency_ns(chunk)
    s = samples(metrics)
    assert value(s, "sor_order_path_latency_seconds_count") == 5000
    assert value(s, "sor_order_path_latency_seconds_sum") == pytest.approx(latencies_ns.sum() / 1e9)
    # cumulative buckets: le=1e-4 counts the latencies up to 100 us
    assert value(s, "sor_order_path_latency_seconds_bucket", le="0.0001") == \
        int(np.count_nonzero(latencies_ns <= 100_000))
    assert value(s, "sor_order_path_latency_seconds_bucket", le="+Inf") == 5000
    window = np.sort(latencies_ns[-1000:]) / 1e9  # the last 1000 observations
    for q, rank in (("0.5", 500), ("0.99", 990), ("0.999", 999)):
        assert value(s, "sor_order_path_latency_quantile_seconds", quantile=q) == \
            pytest.approx(window[rank - 1])


def test_rolling_window_keeps_the_newest_values() -> None:
    window = RollingWindow(5)
    assert all(math.isnan(q) for q in window.quantiles())
    window.extend(np.arange(3))
    window.extend(np.arange(3, 12))  # more than fits, across the wrap
    assert len(window) == 5
    assert window.quantiles((0.0, 1.0)) == [7.0, 11.0]
    window.extend(np.array([100.0]))
    assert window.quantiles((0.0, 0.5, 1.0)) == [8.0, 10.0, 100.0]


def test_implementation_shortfall_against_arrival() -> None:
    metrics = RouterMetrics()
    buy = decisions(2, parent_order_id=1, arrival_mid_ticks=1_000_000.0)
    sell = decisions(1, start_sequence=3, parent_order_id=2, side=SELL,
                     arrival_mid_ticks=2_000_000.0)
    metrics.observe_decisions(np.concatenate([buy, sell]))
    fills = np.concatenate([
        audit([(EXECUTION, 1, 1_000_200, 100, FILL, 0), (EXECUTION, 2, 1_000_100, 300, FILL, 0)],
              parent_order_id=1),
        audit([(EXECUTION, 3, 1_999_000, 200, FILL, 1)], start_sequence=3, parent_order_id=2)])
    metrics.observe_audit(fills)
    # buy: paid (200*100 + 100*300) ticks over arrival; sell: sold 1000 ticks under, 200 shares
    cost = (200 * 100 + 100 * 300) + 1_000 * 200
    notional = 1_000_000 * 400 + 2_000_000 * 200
    expected = cost / notional * 1e4
    assert metrics.shortfall_bps() == pytest.approx(expected)
    assert metrics.parent_shortfall_bps(1) == pytest.approx(
        ((200 * 100 + 100 * 300) / 400) / 1_000_000 * 1e4)
    assert metrics.parent_shortfall_bps(2) == pytest.approx(1_000 / 2_000_000 * 1e4)
    s = samples(metrics)
    assert value(s, "sor_implementation_shortfall_bps") == pytest.approx(expected)
    assert value(s, "sor_implementation_shortfall_filled_shares") == 600
    # a finished parent stays in the total
    metrics.observe_audit(audit([(int(_core.AuditKind.PARENT_DONE), 0, 400, 0, 0, 0)],
                                start_sequence=9, parent_order_id=1))
    assert metrics.parent_shortfall_bps(1) is None
    assert metrics.shortfall_bps() == pytest.approx(expected)
    # a price improvement is a negative cost
    better = RouterMetrics()
    better.observe_decisions(buy)
    better.observe_audit(audit([(EXECUTION, 1, 999_900, 100, FILL, 0)]))
    assert better.shortfall_bps() == pytest.approx(-1.0)


def test_health_gauges_from_engine_and_gateway_status() -> None:
    metrics = RouterMetrics()
    engine_status = {"name": "sor", "state": "running", "heartbeat_age_ms": 12.5,
                     "params_version": 4,
                     "counters": {"open_orders": 7, "active_parents": 3, "risk_state": "halted",
                                  "model_mode": 1}}
    gateway_status = {"incarnation": 2, "counters": {}, "live_parents": [{}, {}],
                      "open_children": 5, "waiting_parents": 0,
                      "sessions": {"OMS": {"state": "active"}, "XNAS": {"state": "disconnected"}}}
    metrics.update_status({"engine": engine_status, "gateway": gateway_status})
    s = samples(metrics)
    assert value(s, "sor_engine_up") == 1
    assert value(s, "sor_engine_state", state="running") == 1
    assert value(s, "sor_engine_state", state="failed") == 0
    assert value(s, "sor_engine_heartbeat_age_seconds") == pytest.approx(0.0125)
    assert value(s, "sor_engine_params_version") == 4
    assert value(s, "sor_engine_open_orders") == 7
    assert value(s, "sor_engine_active_parents") == 3
    assert value(s, "sor_risk_state") == 2
    assert value(s, "sor_model_mode") == 1
    assert value(s, "sor_gateway_open_children") == 5
    assert value(s, "sor_gateway_live_parents") == 2
    assert value(s, "sor_fix_session_up", session="OMS") == 1
    assert value(s, "sor_fix_session_up", session="XNAS") == 0
    metrics.update_status(dict(engine_status, state="failed"))  # an Engine.status() alone
    s = samples(metrics)
    assert value(s, "sor_engine_up") == 0 and value(s, "sor_engine_state", state="failed") == 1


def test_guard_trips_from_the_engine_and_the_monitor() -> None:
    from sor.monitor.guards import ModelGuardReason

    metrics = RouterMetrics()
    kind = getattr(_core.AuditKind, "MODEL_GUARD", None)
    if kind is not None:
        metrics.observe_audit(audit([(int(kind), 0, 1, 7, 0, 0), (int(kind), 0, 2, 7, 0, 0)]))
    metrics.observe_guard_trip(ModelGuardReason.FEATURE_DRIFT)
    s = samples(metrics)
    assert value(s, "sor_guard_monitor_trips_total", reason="feature_drift") == 1
    if kind is not None:
        assert value(s, "sor_model_guard_trips_total", reason="feature_drift") == 1
        assert value(s, "sor_model_guard_reenables_total") == 1


def test_scraping_while_feeding_from_another_thread() -> None:
    metrics = RouterMetrics()
    d = decisions(50)
    stop = threading.Event()
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            while not stop.is_set():
                list(text_string_to_metric_families(metrics.exposition().decode()))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=scrape)
    thread.start()
    try:
        for _ in range(200):
            metrics.observe_decisions(d)
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert value(samples(metrics), "sor_decisions_total", outcome="sent") == 200 * 50


@pytest.mark.slow
def test_values_from_a_real_routed_session(routed) -> None:
    d, a = routed.decisions, routed.audit
    metrics = RouterMetrics(venue_names=VENUES)
    for start in range(0, max(len(d), len(a)), 64):  # as the reactor would, poll by poll
        metrics.observe_decisions(d[start:start + 64])
        metrics.observe_audit(a[start:start + 64])
    metrics.update_status(routed.status)
    s = samples(metrics)
    sent = d[(d["flags"] & 4) != 0]
    children = a[a["kind"] == CHILD_ORDER]
    fills = a[(a["kind"] == EXECUTION) & (a["reference"] == FILL)]
    for venue_id, name in VENUES.items():
        n = int(np.count_nonzero(children["venue_id"] == venue_id))
        if n:
            assert value(s, "sor_child_orders_total", venue=name) == n
        f = fills[fills["venue_id"] == venue_id]
        if len(f):
            assert value(s, "sor_fills_total", venue=name) == len(f)
            assert value(s, "sor_filled_shares_total", venue=name) == int(f["value_b"].sum())
    assert value(s, "sor_decisions_total", outcome="sent") == len(sent)
    assert value(s, "sor_decision_inference_seconds_count") == \
        int(np.count_nonzero(d["inference_ns"] > 0))
    p50 = value(s, "sor_decision_inference_quantile_seconds", quantile="0.5")
    assert p50 == pytest.approx(np.quantile(d["inference_ns"][d["inference_ns"] > 0], 0.5,
                                            method="inverted_cdf") / 1e9)
    # the shortfall from the records, computed here the obvious way
    cost = notional = 0.0
    for parent_id, side, _, _ in routed.parents:
        arrival = float(d[d["parent_order_id"] == parent_id]["context"]["arrival_mid_ticks"][0])
        mine = fills[fills["parent_order_id"] == parent_id]
        shares = mine["value_b"].astype(float)
        cost += (1 if side == "buy" else -1) * float(np.sum((mine["value_a"] - arrival) * shares))
        notional += arrival * float(shares.sum())
    assert notional > 0
    assert value(s, "sor_implementation_shortfall_bps") == pytest.approx(cost / notional * 1e4)
    # the status was taken while the engine ran
    assert value(s, "sor_engine_up") == 1
    assert value(s, "sor_engine_open_orders") == routed.status["counters"]["open_orders"]
    assert value(s, "sor_engine_params_version") == routed.status["params_version"]
