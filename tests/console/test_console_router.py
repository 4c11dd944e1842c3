"""The console of the full router in headless Chromium: a Gateway over the simulated venues
(sor.fix.venue: FIX acceptors over a real-time market, UDP market data) with the ML router
working a parent from an OMS; the kill switch pressed in the page with an operator and a
reason cancels the children resting at the venues, tells the OMS who halted and why, refuses
new orders, and RESUME in the page lets the parent work again."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fix"))  # the FIX tests' harness
from gateway_support import LiveRouters, wait_until  # noqa: E402


@pytest.fixture
def make_live(tmp_path):
    routers = LiveRouters(tmp_path)
    yield routers.make
    routers.close()


def open_at_venues(venues) -> list[str]:
    return venues.call(lambda: [o.cl_ord_id for o in venues.core.open_orders()])


def test_the_kill_switch_in_the_browser_halts_the_router(make_live, open_console) -> None:
    gateway, venues, oms = make_live()
    page = open_console(gateway)
    page.wait_text("router-name", gateway.engine.name)
    page.wait(lambda: all(row["session"] == "active" for row in page.console_model()["last"]["venues"]),
              "venue sessions up on the page")
    deadline = time.time_ns() + 60 * 10**9
    # a buy limited at the bid side: the policy posts or pegs, so its children rest
    parent = oms.new_order("AAPL", "buy", 20_000, price="100.00", time_in_force="6",
                           expire_time_ns=deadline)
    wait_until(lambda: len(open_at_venues(venues)) > 0, 20, "children resting at the venues")
    page.wait(lambda: parent in page.text("parents"), "the parent on the page")

    page.press("kill-switch", "alice", "runaway algo in AAPL")
    page.wait_text("risk-state", "HALTED")
    assert "by alice" in page.text("risk-detail")
    assert gateway.console_state()["risk"]["state"] == "HALTED"
    assert gateway.engine.counters()["risk_state"] == "halted"
    wait_until(lambda: not open_at_venues(venues), 10, "the venues' books without our orders")
    view = oms.order(parent)
    oms.wait_for(lambda: any(r.exec_type == "D" for r in view.reports), 5, "the halt report")
    assert [r for r in view.reports if r.exec_type == "D"][-1].text == \
        "routing HALTED by alice: runaway algo in AAPL"
    refused = oms.new_order("AAPL", "buy", 100, price="100.00")
    oms.wait_done(refused, 5)
    assert oms.order(refused).ord_status == "8"
    page.wait(lambda: any("alice" in text and severity == "critical"
                          for severity, text in page.events()), "the kill switch event")
    sent = gateway.status()["counters"]["children_sent"]

    page.press("resume", "alice", "root cause fixed")
    page.wait_text("risk-state", "ACTIVE")
    wait_until(lambda: gateway.status()["counters"]["children_sent"] > sent, 20,
               "children after the resume")
    assert not view.done
    assert page.browser_errors() == []
