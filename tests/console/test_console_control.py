"""EngineConsoleControl over a real engine: the console_state() shape of the contract, the
venue and parent tables from what the ring owner observed, operator actions with who and why,
and changes made outside the console."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sor.errors import UsageError
from sor.monitor.console import EngineConsoleControl, to_json_value
from sor.monitor.console.control import MODEL_GUARD_REASONS, RISK_STATE_NAMES, enum_name
from sor.ring import EXEC_REPORT_DTYPE, MD_EVENT_DTYPE

# docs/guardrails.md, "Console": the keys every control object's console_state() carries
CONTRACT = {
    "router": {"name", "engine_state", "heartbeat_age_ms", "uptime_s"},
    "risk": {"state", "operator", "reason", "changed_ns"},
    "model": {"mode", "reason", "detail", "since_ns", "policy", "fallback_policy", "trips"},
    "venues": {"venue_id", "name", "kind", "session", "enabled", "orders", "fills",
               "filled_shares", "rejects", "risk_rejects", "fill_rate", "route_share"},
    "parents": {"cl_ord_id", "symbol", "side", "quantity", "cum_quantity", "avg_px",
                "ord_status", "is_bps"},
    "totals": {"filled_shares", "notional_usd", "is_bps", "orders", "fills", "risk_rejects"},
    "events": {"ts_ns", "kind", "severity", "text"},
}


def check_contract(state: dict) -> None:
    assert isinstance(state["ts_ns"], int)
    for key, fields in CONTRACT.items():
        value = state[key]
        rows = value if isinstance(value, list) else [value]
        for row in rows:
            assert fields <= set(row), (key, fields - set(row))
    json.dumps(to_json_value(state), allow_nan=False)


def book_events() -> np.ndarray:
    """Offers at 100.01 on XNAS and BATS and 100.02 on EDGX (300 shares each), bids below."""
    rows = [(0, 1, 1_000_000), (0, 2, 1_000_100), (1, 2, 1_000_100), (2, 2, 1_000_200),
            (1, 1, 999_900)]
    events = np.zeros(len(rows), MD_EVENT_DTYPE)
    for i, (venue, side, price) in enumerate(rows):
        events[i]["kind"] = 1
        events[i]["venue_id"] = venue
        events[i]["side"] = side
        events[i]["price_ticks"] = price
        events[i]["quantity"] = 300
        events[i]["order_id"] = 100 + i
    return events


def fills_for(orders: np.ndarray, quantity: np.ndarray | None = None) -> np.ndarray:
    fills = np.zeros(len(orders), EXEC_REPORT_DTYPE)
    fills["kind"] = 2
    fills["child_order_id"] = orders["child_order_id"]
    fills["parent_order_id"] = orders["parent_order_id"]
    fills["instrument_id"] = orders["instrument_id"]
    fills["venue_id"] = orders["venue_id"]
    fills["side"] = orders["side"]
    fills["last_price_ticks"] = orders["price_ticks"]
    fills["last_quantity"] = orders["quantity"] if quantity is None else quantity
    return fills


def test_state_has_the_contract_shape_before_anything_was_observed(engine, control) -> None:
    state = control.console_state()
    check_contract(state)
    assert state["router"]["name"] == engine.name and state["router"]["engine_state"] == "running"
    assert state["risk"]["state"] == "ACTIVE"
    assert state["parents"] == [] and state["events"] == []
    # nothing observed: the per-venue numbers are unknown, not zero
    assert {v["orders"] for v in state["venues"]} == {None}
    assert state["totals"]["orders"] == 0 and state["totals"]["fills"] is None


def test_observed_orders_and_fills_fill_the_venue_and_parent_tables(engine, control) -> None:
    engine.publish_market_data(book_events())
    engine.submit_parent(7, "AAPL", "buy", 800)
    engine.wait_idle()
    orders = engine.read_orders()
    assert orders["venue_id"].tolist() == [0, 1, 2]
    control.observe_orders(orders)
    fills = fills_for(orders[:2])  # XNAS and BATS fill, EDGX rests
    assert engine.send_executions(fills) == 2
    engine.wait_idle()
    control.observe_executions(fills)
    control.observe_audit(engine.read_audit())
    state = control.console_state()
    check_contract(state)
    venues = {v["name"]: v for v in state["venues"]}
    assert venues["XNAS"]["orders"] == 1 and venues["XNAS"]["fills"] == 1
    assert venues["XNAS"]["filled_shares"] == 300 and venues["XNAS"]["fill_rate"] == 1.0
    assert venues["EDGX"]["orders"] == 1 and venues["EDGX"]["fills"] == 0
    assert venues["EDGX"]["fill_rate"] == 0.0
    assert venues["XNAS"]["route_share"] == pytest.approx(1 / 3)
    assert venues["DARK"]["orders"] == 0 and venues["DARK"]["route_share"] == 0.0
    [parent] = state["parents"]
    assert parent["cl_ord_id"] == "7" and parent["symbol"] == "AAPL" and parent["side"] == "buy"
    assert parent["cum_quantity"] == 600
    assert parent["avg_px"] == pytest.approx(100.01)
    totals = state["totals"]
    assert totals["orders"] == 3 and totals["fills"] == 2
    assert totals["filled_shares"] == engine.counters()["filled_quantity"] == 600
    assert totals["notional_usd"] == pytest.approx(600 * 100.01)


def test_actions_through_the_control_reach_the_engine_with_who_and_why(engine, control) -> None:
    control.set_risk_state("HALTED", operator="alice", reason="runaway algo")
    state = control.console_state()
    assert str(engine.counters()["risk_state"]).upper() == "HALTED"
    assert state["risk"]["state"] == "HALTED"
    assert (state["risk"]["operator"], state["risk"]["reason"]) == ("alice", "runaway algo")
    assert state["events"][0]["severity"] == "critical"
    assert "alice" in state["events"][0]["text"] and "runaway algo" in state["events"][0]["text"]
    assert "(was ACTIVE)" in state["events"][0]["text"]
    control.set_risk_state("ACTIVE", operator="alice", reason="fixed")
    state = control.console_state()
    assert state["risk"]["state"] == "ACTIVE"
    assert [e["severity"] for e in state["events"]] == ["info", "critical"]  # newest first
    # the engine's own records of the changes, as the audit ring's reader passes them
    control.observe_audit(engine.read_audit())
    texts = [e["text"] for e in control.console_state()["events"]]
    assert texts[:2] == ["engine applied risk state ACTIVE (was HALTED)",
                         "engine applied risk state HALTED (was ACTIVE)"]


def test_a_change_made_through_another_handle_is_noticed(engine, control) -> None:
    from sor.engine import Engine

    assert control.console_state()["risk"]["state"] == "ACTIVE"
    other = Engine.attach(engine.name, engine.config)
    try:
        other.set_risk_state("HALTED", operator="zed", reason="from another process")
    finally:
        other.close()
    state = control.console_state()
    assert state["risk"]["state"] == "HALTED"
    assert state["risk"]["operator"] is None
    assert state["risk"]["reason"] == "changed outside this console"
    assert state["events"][0]["severity"] == "critical"
    assert state["events"][0]["text"] == "risk state HALTED (changed outside this console)"


def test_actions_on_the_engine_itself_are_seen_with_who_and_why(engine, control) -> None:
    engine.set_risk_state("REDUCING", operator="bob", reason="limit breach upstream")
    state = control.console_state()
    assert state["risk"]["state"] == "REDUCING"
    assert state["risk"]["operator"] == "bob"
    assert state["events"][0]["severity"] == "warning" and "bob" in state["events"][0]["text"]


def test_event_log_is_bounded_and_checked(engine) -> None:
    with EngineConsoleControl(engine, max_events=3) as control:
        for i in range(5):
            control.add_event("note", f"note {i}")
        texts = [e["text"] for e in control.console_state()["events"]]
        assert texts == ["note 4", "note 3", "note 2"]
        with pytest.raises(UsageError, match="severity"):
            control.add_event("note", "x", severity="loud")
    assert control._on_operator_event not in engine.on_operator_event  # closed: not listening
    with pytest.raises(UsageError, match="max_events"):
        EngineConsoleControl(engine, max_events=0)


def test_enum_names_from_every_form() -> None:
    from sor.engine import RiskState

    assert enum_name(RiskState.HALTED, RISK_STATE_NAMES) == "HALTED"
    assert enum_name(2, RISK_STATE_NAMES) == "HALTED"
    assert enum_name("halted", RISK_STATE_NAMES) == "HALTED"
    assert enum_name(4, MODEL_GUARD_REASONS) == "LATENCY_BUDGET"
    assert enum_name(99, MODEL_GUARD_REASONS) == "99"
    assert enum_name(None, MODEL_GUARD_REASONS) is None
