"""The kill switch against the simulated venues (sor.fix.venue: FIX acceptors over a
real-time market, UDP market data), with the ML router working a parent: HALTED cancels the
children resting at the venues (their books lose them), the OMS is told who halted and why,
new orders are refused until the operator resumes, and routing then goes on. The gateway's own
gate refuses children even when the engine keeps sending them."""

from __future__ import annotations

import threading
import time

import pytest

from gateway_support import LiveRouters, wait_until
from sor.fix.venue.server import VenueServer


@pytest.fixture
def make_live(tmp_path):
    routers = LiveRouters(tmp_path)
    yield routers.make
    routers.close()


def _open_at_venues(venues: VenueServer) -> list[str]:
    return venues.call(lambda: [o.cl_ord_id for o in venues.core.open_orders()])


@pytest.mark.slow
def test_the_kill_switch_cancels_resting_children_and_refuses_orders_until_resume(make_live):
    gateway, venues, oms = make_live()
    deadline = time.time_ns() + 60 * 10**9
    # a buy limited at the bid side: the policy posts or pegs, so its children rest
    parent = oms.new_order("AAPL", "buy", 20_000, price="100.00", time_in_force="6",
                           expire_time_ns=deadline)
    wait_until(lambda: len(_open_at_venues(venues)) > 0, 20, "children resting at the venues")
    result = gateway.set_risk_state("HALTED", operator="alice", reason="runaway test")
    assert result["state"] == "HALTED" and result["child_cancels"] >= 1
    assert result["engine_error"] is None
    wait_until(lambda: not _open_at_venues(venues), 10, "the venues' books without our orders")
    view = oms.order(parent)
    oms.wait_for(lambda: any(r.exec_type == "D" for r in view.reports), 5, "the halt report")
    halt_report = [r for r in view.reports if r.exec_type == "D"][-1]
    assert halt_report.text == "routing HALTED by alice: runaway test"
    assert halt_report.ord_status in ("0", "1")  # the parent is paused, not cancelled
    # nothing new while halted: orders refused with who and why, no child leaves
    refused = oms.new_order("AAPL", "buy", 100, price="100.00")
    oms.wait_done(refused, 5)
    assert oms.order(refused).ord_status == "8"
    assert oms.order(refused).reports[-1].text == "HALTED: routing HALTED by alice: runaway test"
    sent = gateway.status()["counters"]["children_sent"]
    time.sleep(1.5)  # the policy keeps deciding on the market data meanwhile
    assert gateway.status()["counters"]["children_sent"] == sent
    assert not _open_at_venues(venues)
    state = gateway.console_state()
    assert state["risk"] == {"state": "HALTED", "operator": "alice", "reason": "runaway test",
                             "changed_ns": state["risk"]["changed_ns"]}
    # back to ACTIVE: the parent works again
    gateway.resume(operator="alice", reason="fixed")
    wait_until(lambda: gateway.status()["counters"]["children_sent"] > sent, 20,
               "children after the resume")
    assert gateway.console_state()["risk"]["state"] == "ACTIVE"
    texts = [e["text"] for e in gateway.events() if e["kind"] == "risk_state"]
    assert texts[0].startswith("routing HALTED by alice: runaway test")
    assert texts[-1].startswith("routing ACTIVE by alice: fixed")
    assert not view.done


def test_the_gateways_gate_holds_even_when_the_engine_keeps_sending(make_live):
    """The gateway half of a halt alone (as when the engine does not answer): every child
    the engine still writes is answered to it as rejected and none reaches a venue."""
    gateway, venues, oms = make_live(policy=None)  # the built-in taker: it takes at once
    done = threading.Event()

    def close_gate() -> None:
        gateway.core.set_risk_state(2, "alice", "engine unresponsive")
        done.set()

    gateway.call_soon(close_gate)
    assert done.wait(5)
    assert gateway.engine.params()["risk_state"].name == "ACTIVE"  # the engine was not told
    parent = oms.new_order("AAPL", "buy", 300)  # a market order: the taker sends at once
    wait_until(lambda: gateway.status()["counters"]["children_rejected_halted"] > 0, 20,
               "a child refused by the gate")
    status = gateway.status()
    assert status["counters"]["children_sent"] == 0
    assert not _open_at_venues(venues)
    assert venues.stats()["orders"] == 0
    assert oms.order(parent).cum_quantity == 0
