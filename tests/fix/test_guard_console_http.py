"""The operator console served by the router process (Gateway(console_port=...)): its JSON
state is the gateway's console_state(), its kill switch halts the running router (the children
resting at the venues are cancelled), actions need the bearer token, and /metrics serves the
router's Prometheus metrics."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from gateway_support import GuardRouter, wait_until

TOKEN = "test-token-7f3a"


@pytest.fixture
def router(tmp_path):
    made = GuardRouter(tmp_path, venue_names=("XNAS",), mode="rest",
                       gateway_options={"console_port": 0, "console_token": TOKEN})
    yield made
    made.close()


def _request(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_consoles_kill_switch_halts_the_running_router(router):
    console = router.gateway.console
    assert console is not None and console.url.startswith("http://127.0.0.1:")
    router.book([(0, 1_000_100, 200)])
    cl_ord_id = router.oms.new_order("AAPL", "buy", 500, price="100.05")
    xnas = router.venues.venues["XNAS"]
    wait_until(lambda: len(xnas.orders) == 1, 5, "a child resting at XNAS")
    status, state = _request(console.url + "api/state")
    assert status == 200 and state["risk"]["state"] == "ACTIVE"
    assert [p["cl_ord_id"] for p in state["parents"]] == [cl_ord_id]
    halt = {"state": "HALTED", "operator": "alice", "reason": "console drill"}
    status, refused = _request(console.url + "api/risk-state", halt)
    assert status == 401 and router.gateway.status()["risk_state"] == "ACTIVE"
    status, answer = _request(console.url + "api/risk-state", halt, token=TOKEN)
    assert status == 200, answer
    wait_until(lambda: all(o.status == "4" for o in xnas.orders.values()), 5,
               "the child cancelled at the venue")
    _, state = _request(console.url + "api/state")
    assert state["risk"] == {"state": "HALTED", "operator": "alice", "reason": "console drill",
                             "changed_ns": state["risk"]["changed_ns"]}
    assert any(e["kind"] == "risk_state" and "alice" in e["text"] for e in state["events"])
    router.oms.wait_for(lambda: any(r.exec_type == "D" and r.text ==
                                    "routing HALTED by alice: console drill"
                                    for r in router.oms.order(cl_ord_id).reports), 5,
                        "the halt report at the OMS")

    def metrics() -> bytes:
        with urllib.request.urlopen(console.url + "metrics", timeout=10) as response:
            return response.read()

    # the metrics take the audit records at the housekeeping tick (every 0.5 s)
    wait_until(lambda: b'sor_child_orders_total{venue="XNAS"} 1.0' in metrics(), 5,
               "the child order in /metrics")
