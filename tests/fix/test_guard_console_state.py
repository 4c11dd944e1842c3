"""The operator API of the gateway as the console reads it: console_state() has exactly the
contract's schema with figures from the engine's audit and decision records (orders, fills,
route share, implementation shortfall against the arrival mid), events(since) pages through
what happened, and operator actions need who and why and are safe from any thread."""

from __future__ import annotations

import json
import threading

import pytest

from gateway_support import GuardRouter, wait_until
from sor.errors import OperatorActionError

SCHEMA = {
    "router": {"name", "engine_state", "heartbeat_age_ms", "uptime_s"},
    "risk": {"state", "operator", "reason", "changed_ns"},
    "model": {"mode", "reason", "detail", "since_ns", "policy", "fallback_policy", "trips",
              "versions", "watching"},
    "totals": {"filled_shares", "notional_usd", "is_bps", "orders", "fills", "risk_rejects"},
}
VENUE_KEYS = {"venue_id", "name", "kind", "session", "enabled", "orders", "fills",
              "filled_shares", "rejects", "risk_rejects", "fill_rate", "route_share"}
PARENT_KEYS = {"cl_ord_id", "symbol", "side", "quantity", "cum_quantity", "avg_px",
               "ord_status", "is_bps"}


@pytest.fixture
def router(tmp_path):
    made = GuardRouter(tmp_path, venue_names=("XNAS", "BATS"))
    yield made
    made.close()


def test_console_state_has_the_contract_schema_and_the_routing_figures(router):
    # mid 100.00 at arrival (bid 99.99, ask 100.01); the buy fills 100 at 100.01 and 100 at
    # 100.02: average 100.015, 1.5 bps over the arrival mid
    router.book([(0, 1_000_100, 100), (1, 1_000_200, 100)], bids=[(0, 999_900, 100)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 200, price="100.05")
    assert router.oms.wait_done(cl_ord_id).cum_quantity == 200

    def state() -> dict:
        router.gateway.call_soon(router.gateway.core.drain_decisions)
        return router.gateway.console_state()

    wait_until(lambda: state()["parents"][0]["is_bps"] is not None
               and state()["totals"]["fills"] == 2, 5, "decisions and fills drained")
    current = state()
    assert set(current) == {"ts_ns", "router", "risk", "model", "venues", "parents", "totals",
                            "events"}
    for key, fields in SCHEMA.items():
        assert set(current[key]) == fields, key
    assert all(set(v) == VENUE_KEYS for v in current["venues"])
    assert all(set(p) == PARENT_KEYS for p in current["parents"])
    assert all(set(e) == {"ts_ns", "kind", "severity", "text"} for e in current["events"])
    json.dumps(current)  # plain values only: the console serves it as it is
    assert current["router"]["engine_state"] == "running"
    assert current["risk"]["state"] == "ACTIVE"
    parent = current["parents"][0]
    assert parent["cl_ord_id"] == cl_ord_id and parent["side"] == "buy"
    assert parent["ord_status"] == "filled" and parent["avg_px"] == pytest.approx(100.015)
    assert parent["is_bps"] == pytest.approx(1.5)
    assert current["totals"]["is_bps"] == pytest.approx(1.5)
    assert current["totals"]["filled_shares"] == 200
    assert current["totals"]["notional_usd"] == pytest.approx(20_003.0)
    venues = {v["name"]: v for v in current["venues"]}
    assert venues["XNAS"]["session"] == "active" and venues["EDGX"]["session"] is None
    assert venues["XNAS"]["route_share"] == venues["BATS"]["route_share"] == 0.5
    assert venues["XNAS"]["kind"] == "lit" and venues["DARK"]["kind"] == "dark"
    assert venues["EDGX"]["fill_rate"] is None


def test_operator_actions_need_who_and_why_and_page_as_events(router):
    gateway = router.gateway
    for operator, reason in (("", "x"), ("alice", ""), ("  ", "why"), (None, "why")):
        with pytest.raises(OperatorActionError):
            gateway.set_risk_state("HALTED", operator=operator, reason=reason)
    with pytest.raises(OperatorActionError, match="ACTIVE, REDUCING, HALTED"):
        gateway.set_risk_state("PAUSED", operator="alice", reason="x")
    assert gateway.status()["risk_state"] == "ACTIVE"
    first = gateway.events()
    mark = first[-1]["seq"] if first else 0
    # operator actions from several threads at once all land, in some order
    errors = []

    def act(k: int) -> None:
        try:
            state = ("REDUCING", "ACTIVE")[k % 2]
            gateway.set_risk_state(state, operator=f"op{k}", reason=f"drill {k}")
        except Exception as error:  # collected: a failure fails the test below
            errors.append(error)

    threads = [threading.Thread(target=act, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors
    new = gateway.events(mark)
    risk = [e for e in new if e["kind"] == "risk_state"]
    assert sorted(e["operator"] for e in risk) == [f"op{k}" for k in range(6)]
    assert [e["seq"] for e in new] == sorted(e["seq"] for e in new)
    assert gateway.events(new[-1]["seq"]) == []
    changes = gateway.update_config(lambda c: c.replace(
        risk=c.risk.replace(max_open_orders=321)), operator="erin", reason="more headroom")
    assert [str(c.key) for c in changes] == ["risk.max_open_orders"]
    assert gateway.engine.params()["max_open_orders"] == 321
    config_events = [e for e in gateway.events() if e["kind"] == "config"]
    assert config_events[-1]["operator"] == "erin" and "max_open_orders" in \
        config_events[-1]["text"]


def test_a_risk_state_set_through_the_configuration_is_followed_by_the_gateway(router):
    from sor.config import RiskState

    gateway = router.gateway
    gateway.update_config(lambda c: c.replace(risk=c.risk.replace(state=RiskState.HALTED)),
                          operator="frank", reason="config drill")
    wait_until(lambda: gateway.status()["gate_closed"], 5, "the gateway's gate to close")
    assert gateway.status()["risk_state"] == "HALTED"
    event = [e for e in gateway.events() if e["kind"] == "risk_state"][-1]
    assert event["operator"] == "frank" and event["reason"] == "config drill"
    assert gateway.console_state()["risk"]["state"] == "HALTED"
    gateway.resume(operator="frank", reason="drill over")
    assert not gateway.status()["gate_closed"]
    assert gateway.engine.config.risk.state == RiskState.ACTIVE
