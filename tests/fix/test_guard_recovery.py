"""What the controls hold survives a restart: the gateway replays its journal and tells the
fresh engine each account's filled position and notional (ACCOUNT_STATE) before any parent
resumes, so credit and position limits count the fills of before the crash; a halt and a
tripped model guard come back as they were. Each restart is a new Gateway on the same state
folder (what a restarted process does; `test_restart.py` has the kill -9 version of the
crash)."""

from __future__ import annotations

import json
import os
import select
import signal
import time
import urllib.request

import pytest

from gateway_support import GuardRouter, VenueSet, wait_until
from sor.config import save, with_changes
from sor.fix.codec import parse

ACCOUNTS = [{"name": "ACCT1", "credit_limit_usd": 25_000.0, "max_position_shares": 400}]


def _rejected(router: GuardRouter, cl_ord_id: str):
    view = router.oms.wait_done(cl_ord_id, 5)
    return view.reports[-1]


def test_credit_and_position_used_before_a_restart_still_count(make_router):
    router = make_router(changes={"risk.accounts": ACCOUNTS}, venue_names=("XNAS",))
    router.book([(0, 1_000_100, 300)])
    first = router.oms.new_order("AAPL", "buy", 150, price="100.05", extra=[(1, "ACCT1")])
    assert router.oms.wait_done(first).cum_quantity == 150   # 15001.50 USD used
    assert router.gateway.core.account_totals() == {("ACCT1", 0): (150, 15_001.5)}
    router.restart()
    assert router.gateway.status()["counters"]["account_states_sent"] == 1
    # 100 more at 100.05 would take the day's credit to 25006.50 USD: refused
    router.book([(0, 1_000_100, 300)], first_order_id=20)
    second = router.oms.new_order("AAPL", "buy", 100, price="100.05", extra=[(1, "ACCT1")])
    report = _rejected(router, second)
    assert parse(report.raw).get(7929) == "CREDIT_LIMIT", report.text
    assert report.text.startswith("CREDIT_LIMIT: ") and "> limit 25000.00 (USD)" in report.text
    # within the credit, the position limit (400 shares) still counts the 150 bought
    third = router.oms.new_order("AAPL", "buy", 300, price="100.05", extra=[(1, "ACCT1")])
    report = _rejected(router, third)
    assert parse(report.raw).get(7929) in ("POSITION_LIMIT", "CREDIT_LIMIT"), report.text


def test_a_halt_and_a_tripped_model_guard_come_back_after_a_restart(make_router):
    from sor.models.registry import default_models_dir

    # a policy with models (with the built-in taker there is no model to fall back from)
    router = make_router(venue_names=("XNAS",), policy="ml_router",
                         models=default_models_dir())
    router.gateway.halt(operator="carol", reason="venue outage")
    router.gateway.force_fallback("OPERATOR", "carol: model under review")
    router.restart()
    gateway = router.gateway
    assert gateway.status()["risk_state"] == "HALTED"
    assert gateway.engine.params()["risk_state"].name == "HALTED"
    state = gateway.console_state()
    assert state["risk"]["operator"] == "carol" and state["risk"]["reason"] == "venue outage"
    assert state["model"]["mode"] == "FALLBACK"
    router.book([(0, 1_000_100, 100)])
    refused = router.oms.new_order("AAPL", "buy", 100, price="100.05")
    report = _rejected(router, refused)
    assert report.ord_status == "8" and report.text == "HALTED: routing HALTED by carol: venue outage"
    restored = [e["text"] for e in gateway.events() if e["kind"] == "risk_state"]
    assert any("restored from the journal" in text for text in restored)
    gateway.resume(operator="carol", reason="venue back")
    gateway.enable_model(operator="carol", reason="model reviewed")
    assert gateway.console_state()["model"]["mode"] == "MODEL"
    router.restart()
    assert router.gateway.status()["risk_state"] == "ACTIVE"
    assert router.gateway.console_state()["model"]["mode"] == "MODEL"


@pytest.fixture
def killable(tmp_path):
    """`sor router` as a subprocess (console on a free port) with ACCT1 configured, one test
    venue (fills at once) and an OMS client; yields (router, oms, publish)."""
    from gateway_support import book_events
    from sor.config import default_config
    from sor.engine import Engine
    from sor.fix.oms import OmsClient
    from test_restart import RouterProcess, _free_port, _sessions_toml

    venues = VenueSet(str(tmp_path / "venues"), ("XNAS",), mode="fill")
    engine_name = f"sorgk{os.getpid() % 100000}"
    config = with_changes(default_config(), {
        "engine.name": engine_name, "engine.idle_strategy": "yield",
        "risk.max_open_orders": 10_000, "risk.max_orders_per_second": 100_000,
        "risk.accounts": ACCOUNTS})
    save(config, tmp_path / "router.toml")
    oms_port = _free_port()
    (tmp_path / "sessions.toml").write_text(_sessions_toml(oms_port, venues))
    router = RouterProcess(["--config", str(tmp_path / "router.toml"),
                            "--fix", str(tmp_path / "sessions.toml"),
                            "--state-dir", str(tmp_path / "state"), "--market-data", "none",
                            "--console-port", "0"],
                           str(tmp_path / "router.log"))
    oms = OmsClient(port=oms_port, store_dir=str(tmp_path / "oms"), reconnect_interval_s=0.1)

    def publish(asks, first_order_id: int = 1) -> None:
        handle = Engine.attach(engine_name, config)
        try:
            events = book_events(asks, first_order_id=first_order_id)
            assert handle.publish_market_data(events) == len(events)
            ring = handle.ring("market_data")
            wait_until(lambda: len(ring) == 0, 10, "the engine to apply the market data")
        finally:
            handle.close()

    try:
        router.start()
        oms.start().wait_logged_on(30)
        wait_until(lambda: venues.venues["XNAS"].session.is_logged_on, 10, "the venue logon")
        yield router, oms, publish
    finally:
        oms.close()
        router.stop()
        venues.close()


def _kill_9_and_restart(router) -> None:
    router.process.send_signal(signal.SIGKILL)
    router.process.wait(10)
    router.process.stdout.close()
    router.start()


@pytest.mark.slow
def test_credit_used_before_a_kill_9_still_counts_after_the_restart(killable):
    router, oms, publish = killable
    publish([(0, 1_000_100, 300)])
    first = oms.new_order("AAPL", "buy", 150, price="100.05", extra=[(1, "ACCT1")])
    assert oms.wait_done(first, 10).cum_quantity == 150
    _kill_9_and_restart(router)
    publish([(0, 1_000_100, 300)], first_order_id=20)
    second = oms.new_order("AAPL", "buy", 100, price="100.05", extra=[(1, "ACCT1")])
    report = oms.wait_done(second, 10).reports[-1]
    assert parse(report.raw).get(7929) == "CREDIT_LIMIT", report.text
    assert report.ord_status == "8"


@pytest.mark.slow
def test_a_halt_from_the_console_survives_a_kill_9(killable):
    router, oms, publish = killable
    answer = _post(_console_url(router) + "api/risk-state",
                   {"state": "HALTED", "operator": "alice", "reason": "before the crash"})
    assert answer["ok"], answer
    _kill_9_and_restart(router)
    state = json.loads(urllib.request.urlopen(_console_url(router) + "api/state",
                                              timeout=10).read())
    assert state["risk"]["state"] == "HALTED" and state["risk"]["operator"] == "alice"
    publish([(0, 1_000_100, 300)])
    refused = oms.new_order("AAPL", "buy", 10, price="100.05")
    assert oms.wait_done(refused, 10).reports[-1].text == \
        "HALTED: routing HALTED by alice: before the crash"


def _console_url(router) -> str:
    """Returns the console URL `sor router` printed after its ready line."""
    text = router.ready_line
    deadline = time.monotonic() + 10
    while "operator console " not in text or "\n" not in text.split("operator console ", 1)[1]:
        assert time.monotonic() < deadline, text
        ready, _, _ = select.select([router.process.stdout], [], [], 0.5)
        if ready:
            text += os.read(router.process.stdout.fileno(), 4096).decode()
    return text.split("operator console ", 1)[1].split()[0]


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
