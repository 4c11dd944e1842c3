"""The console page in headless Chromium (Debian's chromium and chromium-driver, installed by
the fixtures when missing) against a real running engine: the page shows the engine, the
kill switch pressed with an operator and a reason halts it (open children cancelled, new
parents refused), resume brings it back, validation errors of the API are shown in the page,
and a lost server is shown as such.

``SOR_CONSOLE_SCREENSHOT=/path/console.png`` saves a screenshot of the halted page.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from console_browser import engine_config
from test_console_control import book_events, fills_for

from sor.engine import AuditKind, Engine, RejectReason
from sor.models.registry import default_models_dir
from sor.monitor.console import EngineConsoleControl


def risk_state(engine) -> str:
    return str(engine.counters()["risk_state"]).upper()


def working_parent(engine, control) -> np.ndarray:
    """Submits parent 7 (buy 800 AAPL) into a book of 900 offered; fills its first child and
    leaves two open; returns the children (observed by the control)."""
    engine.publish_market_data(book_events())
    engine.submit_parent(7, "AAPL", "buy", 800)
    engine.wait_idle()
    orders = engine.read_orders()
    assert len(orders) == 3
    control.observe_orders(orders)
    fills = fills_for(orders[:1])
    assert engine.send_executions(fills) == 1
    engine.wait_idle()
    control.observe_executions(fills)
    control.observe_audit(engine.read_audit())
    return orders


def test_page_shows_the_running_engine_its_venues_and_live_charts(engine, control,
                                                                   open_console) -> None:
    working_parent(engine, control)
    page = open_console(control)
    page.wait_text("router-name", engine.name)
    assert page.text("engine-state") == "running"
    assert page.text("risk-state") == "ACTIVE"
    assert "badge-active" in page.element("risk-state").get_attribute("class")
    assert page.text("model-mode") in ("MODEL", "FALLBACK", "NO MODEL")
    page.wait_text("connection", "LIVE")
    rows = page.driver.execute_script(
        "return Array.from(document.querySelectorAll('#venues tbody tr')).map("
        "r => Array.from(r.cells).map(c => c.textContent));")
    assert [row[0] for row in rows] == [v.name for v in engine.config.venues]
    xnas = rows[0]
    assert xnas[4:8] == ["1", "1", "100.0%", "300"]  # orders, fills, fill rate, filled shares
    assert page.text("kpi-filled") == "300" and page.text("kpi-orders") == "3"
    assert "7" in page.text("parents") and "AAPL" in page.text("parents")
    # the charts draw from successive polls
    page.wait(lambda: page.console_model()["points"] >= 3, "fewer than 3 polls recorded")
    assert int(page.element("chart-filled").get_attribute("data-points")) >= 3
    assert page.history()[-1]["filled"] == 300
    assert page.element("resume").get_attribute("disabled") == "true"  # already ACTIVE
    assert page.browser_errors() == []


def test_kill_switch_in_the_browser_halts_the_engine_and_resume_restarts_it(
        engine, control, open_console) -> None:
    children = working_parent(engine, control)
    page = open_console(control)
    page.wait_text("risk-state", "ACTIVE")

    page.press("kill-switch", "alice", "runaway algo in AAPL")
    page.wait_text("risk-state", "HALTED")
    assert "badge-halted" in page.element("risk-state").get_attribute("class")
    assert not page.dialog_open()
    assert "by alice" in page.text("risk-detail") and "runaway algo in AAPL" in page.text("risk-detail")
    # the engine is halted: its counters say so, the two open children are cancelled and a
    # new parent is refused
    assert risk_state(engine) == "HALTED"
    engine.wait_idle()
    cancels = engine.read_orders()
    assert sorted(cancels["child_order_id"].tolist()) == sorted(children["child_order_id"][1:].tolist())
    assert set(cancels["action"].tolist()) == {2}  # OrderAction.CANCEL
    engine.submit_parent(8, "AAPL", "buy", 100)
    engine.wait_idle()
    audit = engine.read_audit()
    control.observe_audit(audit)
    refused = audit[audit["kind"] == int(AuditKind.COMMAND_REJECTED)]
    assert refused["parent_order_id"].tolist() == [8]
    assert refused["reason"].tolist() == [int(RejectReason.HALTED)]
    assert len(engine.read_orders()) == 0
    # the event log shows the operator's action, newest first, in red
    page.wait(lambda: any("alice" in text for _, text in page.events()), "no kill switch event")
    severity, text = next(e for e in page.events() if "alice" in e[1])
    assert severity == "critical" and "HALTED" in text and "runaway algo in AAPL" in text
    screenshot = os.environ.get("SOR_CONSOLE_SCREENSHOT")
    if screenshot:
        page.screenshot(screenshot)

    page.press("resume", "alice", "root cause fixed")
    page.wait_text("risk-state", "ACTIVE")
    assert risk_state(engine) == "ACTIVE"
    page.wait(lambda: "root cause fixed" in page.events()[0][1], "no resume event on top")
    assert page.events()[0][0] == "info"
    assert page.browser_errors() == []


def test_api_validation_errors_are_shown_in_the_dialog(engine, control, open_console) -> None:
    page = open_console(control)
    page.press("kill-switch", "alice", "")
    page.wait(page.form_error, "no error shown for an empty reason")
    assert page.form_error() == "400: reason must not be empty"
    assert page.dialog_open()
    page.fill(operator="", reason="drill")
    page.wait(lambda: "operator" in page.form_error(), "no error shown for an empty operator")
    assert page.form_error() == "400: operator must not be empty"
    page.element("cancel").click()
    assert not page.dialog_open()
    assert risk_state(engine) == "ACTIVE"
    assert page.text("risk-state") == "ACTIVE"


def test_token_is_asked_for_and_a_wrong_one_is_shown(engine, control, open_console) -> None:
    page = open_console(control, token="s3cret")
    page.press("reduce", "carol", "drill", token="wrong")
    page.wait(page.form_error, "no error shown for a wrong token")
    assert page.form_error() == "403: wrong token"
    assert risk_state(engine) == "ACTIVE"
    page.fill(token="s3cret")
    page.wait_text("risk-state", "REDUCING")
    assert risk_state(engine) == "REDUCING"


def test_a_lost_server_is_shown(engine, control, open_console) -> None:
    page = open_console(control)
    page.wait_text("connection", "LIVE")
    page.server.close()
    page.wait(lambda: "STALE" in page.text("connection"), "the page never noticed", timeout_s=6)
    assert page.text("risk-state") == "ACTIVE"  # the last known state stays on screen


@pytest.fixture
def model_engine(engine_name):
    """A running engine hosting the ML router with the shipped models."""
    engine = Engine(engine_config(engine_name), models=default_models_dir(),
                    policy="ml_router").start()
    try:
        yield engine
    finally:
        engine.stop()


def test_a_fallback_is_shown_and_the_model_re_enabled_from_the_page(model_engine,
                                                                    open_console) -> None:
    with EngineConsoleControl(model_engine) as control:
        page = open_console(control)
        page.wait_text("model-mode", "MODEL")
        assert "policy ml_router" in page.text("model-reason")
        assert page.element("enable-model").get_attribute("disabled") == "true"
        model_engine.force_fallback("FEATURE_DRIFT", "PSI 0.31 on spread_bps",
                                    operator="drift_guard")
        page.wait_text("model-mode", "FALLBACK")
        assert "badge-fallback" in page.element("model-mode").get_attribute("class")
        reason = page.text("model-reason")
        assert "FEATURE_DRIFT: PSI 0.31 on spread_bps" in reason
        assert f"on {model_engine.model_status()['fallback_policy']}" in reason
        page.wait(lambda: any("drift_guard" in text for _, text in page.events()),
                  "no fallback event")
        severity, text = next(e for e in page.events() if "drift_guard" in e[1])
        assert severity == "warning" and "FEATURE_DRIFT" in text

        page.press("enable-model", "alice", "drift was a feed glitch")
        page.wait_text("model-mode", "MODEL")
        assert model_engine.model_status()["mode"] == "model"
        # the operator's event, and (once a poll sees the engine back on its models) the mode change
        page.wait(lambda: any("drift was a feed glitch" in text for _, text in page.events()),
                  "no re-enable event")
        assert page.element("enable-model").get_attribute("disabled") == "true"
        assert page.browser_errors() == []
