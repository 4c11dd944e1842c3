"""The engine as a thread of this process and as its own process: lifecycle, the pipeline on
real rings, parameters through the seqlock block, commands, crashes and segment hygiene."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from sor.config import default_config
from sor.engine import AuditKind, Engine, RejectReason
from sor.errors import ConfigError, EngineCrashedError, EngineError
from sor.ring import EXEC_REPORT_DTYPE, MD_EVENT_DTYPE


def shm_entries(prefix: str) -> list[str]:
    return sorted(name for name in os.listdir("/dev/shm") if name.startswith(prefix))


def mapped_shm_count() -> int:
    with open("/proc/self/maps") as maps:
        return sum(1 for line in maps if "/dev/shm/" in line)


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    prefix = f"sortest{os.getpid()}{request.node.name[-12:].replace('[', '').replace(']', '')}"
    yield prefix
    assert shm_entries(prefix) == [], "segments leaked"


def book_events() -> np.ndarray:
    """Bids at 100.00 and offers at 100.01 (XNAS, BATS) and 100.02 (EDGX), 300 shares each."""
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


def audit_kinds(records: np.ndarray) -> list[str]:
    return [AuditKind(int(k)).name for k in records["kind"]]


def test_thread_engine_routes_a_parent_and_audits_every_step(name: str) -> None:
    with Engine(name=name) as engine:
        assert engine.state == "running"
        assert engine.publish_market_data(book_events()) == 5
        engine.submit_parent(7, "AAPL", "buy", 800)
        engine.wait_idle()
        orders = engine.read_orders()
        # The arrival sweep takes the cheapest all-in offers first: XNAS and BATS at 100.01
        # (both 0.0030 taker fee), then EDGX at 100.02 for the rest.
        assert orders["venue_id"].tolist() == [0, 1, 2]
        assert orders["price_ticks"].tolist() == [1_000_100, 1_000_100, 1_000_200]
        assert orders["quantity"].tolist() == [300, 300, 200]
        assert set(orders["parent_order_id"].tolist()) == {7}
        assert len(set(orders["child_order_id"].tolist())) == 3

        fills = np.zeros(3, EXEC_REPORT_DTYPE)
        fills["kind"] = 2
        fills["child_order_id"] = orders["child_order_id"]
        fills["parent_order_id"] = 7
        fills["last_price_ticks"] = orders["price_ticks"]
        fills["last_quantity"] = orders["quantity"]
        assert engine.send_executions(fills) == 3
        engine.wait_idle()
        audit = engine.read_audit()
        assert audit["sequence"].tolist() == list(range(1, len(audit) + 1))
        kinds = audit_kinds(audit)
        assert kinds[0] == "PARAMS_APPLIED"
        assert kinds.count("CHILD_ORDER") == 3 and kinds.count("EXECUTION") == 3
        assert kinds[-1] == "PARENT_DONE" and audit[-1]["value_a"] == 800
        counters = engine.counters()
        assert counters["md_events"] == 5 and counters["child_orders"] == 3
        assert counters["filled_quantity"] == 800 and counters["open_orders"] == 0
        assert counters["active_parents"] == 0


def test_new_liquidity_at_the_top_is_taken_and_book_errors_are_audited(name: str) -> None:
    with Engine(name=name) as engine:
        engine.publish_market_data(book_events())
        engine.submit_parent(9, "AAPL", "buy", 10_000, limit_price_ticks=1_000_100)
        engine.wait_idle()
        assert engine.read_orders()["quantity"].tolist() == [300, 300]  # EDGX is above the limit
        new = book_events()[:1].copy()
        new[0]["side"] = 2
        new[0]["price_ticks"] = 1_000_100
        new[0]["order_id"] = 555
        bad = new.copy()
        bad[0]["kind"] = 5  # delete of an order the book does not have
        bad[0]["order_id"] = 999_999
        engine.publish_market_data(np.concatenate([bad, new]))
        engine.wait_idle()
        orders = engine.read_orders()
        assert orders["quantity"].tolist() == [300] and orders["venue_id"].tolist() == [0]
        audit = engine.read_audit()
        errors = audit[audit["kind"] == int(AuditKind.BOOK_ERROR)]
        assert len(errors) == 1 and errors[0]["reference"] == 0
        assert engine.counters()["md_rejected"] == 1


def test_parameters_reach_the_running_engine_and_bad_ones_are_refused(name: str) -> None:
    with Engine(name=name) as engine:
        engine.publish_market_data(book_events())
        before = engine.params()
        with pytest.raises(ConfigError, match="max_order_quantity_shares"):
            engine.update_config(lambda c: c.replace(risk=c.risk.replace(max_order_quantity_shares=-5)))
        with pytest.raises(ConfigError, match="restart-only"):
            engine.update_config(lambda c: c.replace(engine=c.engine.replace(md_ring_capacity_records=1024)))
        assert engine.params() == before
        assert engine.config_store.version == 0

        changes = engine.update_config(
            lambda c: c.replace(risk=c.risk.replace(max_order_quantity_shares=100)))
        assert [c.key for c in changes] == ["risk.max_order_quantity_shares"]
        assert engine.params()["version"] == before["version"] + 1
        assert engine.counters()["params_version"] == before["version"] + 1
        engine.submit_parent(1, "AAPL", "buy", 250)
        engine.wait_idle()
        assert engine.read_orders()["quantity"].tolist() == [100, 100, 50]

        engine.update_config(lambda c: c.replace(risk=c.risk.replace(state="HALTED")))
        engine.read_audit()
        engine.submit_parent(2, "AAPL", "buy", 100)
        engine.wait_idle()
        audit = engine.read_audit()
        rejected = audit[audit["kind"] == int(AuditKind.COMMAND_REJECTED)]
        assert [RejectReason(int(r)).name for r in rejected["reason"]] == ["HALTED"]
        assert engine.counters()["risk_state"] == "halted"


def test_commands_are_answered_in_the_audit_trail(name: str) -> None:
    with Engine(name=name) as engine:
        engine.publish_market_data(book_events())
        unknown = engine.cancel_parent(404)
        engine.submit_parent(5, "AAPL", "sell", 100, limit_price_ticks=2_000_000)  # rests
        duplicate = engine.submit_parent(5, "AAPL", "sell", 100)
        too_big = engine.submit_parent(6, "AAPL", "sell", 10**9)
        engine.wait_idle()
        engine.halt(operator="test", reason="the halted parent is refused")
        halted = engine.submit_parent(8, "AAPL", "buy", 100)
        engine.wait_idle()
        engine.resume(operator="test", reason="back to routing")
        engine.amend_parent(5, 200, 2_000_000)
        engine.cancel_parent(5)
        engine.wait_idle()
        audit = engine.read_audit()
        reasons = {int(r["reference"]): RejectReason(int(r["reason"])).name
                   for r in audit[audit["kind"] == int(AuditKind.COMMAND_REJECTED)]}
        assert reasons == {unknown: "UNKNOWN_PARENT", duplicate: "DUPLICATE_PARENT",
                           too_big: "MAX_PARENT_QUANTITY", halted: "HALTED"}
        done = audit[audit["kind"] == int(AuditKind.PARENT_DONE)]
        assert done["parent_order_id"].tolist() == [5] and done["value_b"].tolist() == [1]
        assert engine.read_orders().size == 0  # the sell limit was never marketable
        assert engine.counters()["risk_state"] == "active"


def test_cancelled_parent_cancels_its_open_children_and_is_done_when_they_are(name: str) -> None:
    with Engine(name=name) as engine:
        engine.publish_market_data(book_events())
        engine.submit_parent(7, "AAPL", "buy", 800)
        engine.wait_idle()
        children = engine.read_orders()
        assert len(children) == 3
        engine.cancel_parent(7)
        engine.amend_parent(7, 900)  # refused: the parent is winding down
        engine.wait_idle()
        cancels = engine.read_orders()
        assert cancels["action"].tolist() == [2, 2, 2]
        assert sorted(cancels["child_order_id"]) == sorted(children["child_order_id"])
        audit = engine.read_audit()
        assert "PARENT_DONE" not in audit_kinds(audit)  # children still open at the venues
        assert audit[audit["kind"] == int(AuditKind.COMMAND_REJECTED)]["reason"].tolist() == [
            int(RejectReason.UNKNOWN_PARENT)]
        reports = np.zeros(3, EXEC_REPORT_DTYPE)
        reports["child_order_id"] = children["child_order_id"]
        reports["parent_order_id"] = 7
        reports["kind"] = [2, 3, 3]  # the first child filled 300 before its cancel arrived
        reports["last_price_ticks"] = [1_000_100, 0, 0]
        reports["last_quantity"] = [300, 0, 0]
        engine.send_executions(reports[:2])
        engine.wait_idle()
        assert "PARENT_DONE" not in audit_kinds(engine.read_audit())
        engine.send_executions(reports[2:])
        engine.wait_idle()
        done = engine.read_audit()
        done = done[done["kind"] == int(AuditKind.PARENT_DONE)]
        assert done["value_a"].tolist() == [300] and done["value_b"].tolist() == [1]
        assert engine.counters()["active_parents"] == 0 and engine.counters()["open_orders"] == 0


def test_parent_with_an_end_time_expires_with_a_horizon_sweep_on_the_feature_clock(
        name: str) -> None:
    with Engine(name=name) as engine:
        events = book_events()
        events["ts_recv"] = events["ts_event"] = 1_000_000_000
        engine.publish_market_data(events)
        engine.submit_parent(3, "AAPL", "buy", 800, limit_price_ticks=1_000_100,
                             end_time_ns=2_000_000_000)
        engine.submit_parent(4, "AAPL", "sell", 100, limit_price_ticks=2_000_000)  # no end
        engine.wait_idle()
        children = engine.read_orders()
        assert children["quantity"].tolist() == [300, 300]

        def report(orders: np.ndarray, kind: int, quantity: int) -> None:
            reports = np.zeros(len(orders), EXEC_REPORT_DTYPE)
            reports["child_order_id"] = orders["child_order_id"]
            reports["parent_order_id"] = 3
            reports["kind"] = kind
            reports["last_price_ticks"] = orders["price_ticks"]
            reports["last_quantity"] = quantity
            engine.send_executions(reports)
            engine.wait_idle()

        later = events[:1].copy()  # a new bid far away moves the feature clock past the end
        later["order_id"] = 9_000
        later["price_ticks"] = 999_000
        later["ts_recv"] = later["ts_event"] = 2_000_000_001
        engine.publish_market_data(later)
        engine.wait_idle()
        assert engine.read_orders()["action"].tolist() == [2, 2]  # cancels first
        report(children, 3, 0)
        # then the horizon sweep takes the venues' tops within the limit
        sweep = engine.read_orders()
        assert sweep["action"].tolist() == [1, 1] and sweep["time_in_force"].tolist() == [1, 1]
        assert sweep["quantity"].tolist() == [300, 300]
        gone = events[1:3].copy()  # the offers it took leave the books
        gone["kind"] = 5
        gone["ts_recv"] = gone["ts_event"] = 2_000_000_002
        engine.publish_market_data(gone)
        report(sweep, 2, 300)
        assert engine.read_orders().size == 0  # nothing left within the limit
        audit = engine.read_audit()
        done = audit[audit["kind"] == int(AuditKind.PARENT_DONE)]
        assert done["parent_order_id"].tolist() == [3] and done["value_b"].tolist() == [2]
        assert done["value_a"].tolist() == [600]
        assert engine.counters()["active_parents"] == 1  # parent 4 has no end time


def test_risk_stage_refuses_children_outside_the_price_band(name: str) -> None:
    config = default_config()
    config = config.replace(risk=config.risk.replace(price_band_bps=5.0))
    with Engine(config, name=name) as engine:
        events = book_events()
        events[3]["price_ticks"] = 1_002_000  # EDGX offer 20 bps above the mid
        engine.publish_market_data(events)
        engine.submit_parent(3, "AAPL", "buy", 900)
        engine.wait_idle()
        assert engine.read_orders()["venue_id"].tolist() == [0, 1]
        audit = engine.read_audit()
        risk = audit[audit["kind"] == int(AuditKind.RISK_REJECT)]
        assert [RejectReason(int(r)).name for r in risk["reason"]] == ["PRICE_BAND"]
        assert risk[0]["venue_id"] == 2 and engine.counters()["risk_rejects"] == 1


def test_start_stop_many_times_leaks_no_segments_or_mappings(name: str) -> None:
    mapped = mapped_shm_count()
    fds = len(os.listdir("/proc/self/fd"))
    for round_number in range(40):
        engine = Engine(name=name, reserve_orders=1024).start()
        engine.publish_market_data(book_events())
        engine.wait_idle()
        assert engine.counters()["md_events"] == 5
        engine.stop()
        assert shm_entries(name) == [], f"round {round_number}"
    assert mapped_shm_count() == mapped
    assert len(os.listdir("/proc/self/fd")) == fds


def test_pinning_and_setup_failures_are_reported(name: str) -> None:
    with Engine(name=name, cpu=0) as engine:
        assert engine.status()["pinned_cpu"] == 0
    with pytest.raises(EngineError, match="cannot pin the engine to cpu 1000"):
        Engine(name=name, cpu=1000).start()
    assert shm_entries(name) == []


def test_second_engine_of_the_same_name_is_refused(name: str) -> None:
    with Engine(name=name):
        with pytest.raises(EngineError, match="already exists"):
            Engine(name=name).start()


def engine_process(name: str, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, "-m", "sor.cli", "engine", "--name", name, *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    assert f"sor engine {name}" in line, process.stderr.read()
    return process


def attach_when_running(name: str) -> Engine:
    for _ in range(2000):
        engine = Engine.attach(name)
        if engine.state == "running":
            return engine
        engine.close()
        time.sleep(0.005)
    raise AssertionError("engine never ran")


@pytest.mark.slow
def test_engine_process_attached_from_this_process_and_stopped_by_sigterm(name: str) -> None:
    with engine_process(name, "--cpu", "1") as process:
        engine = attach_when_running(name)
        status = engine.status()
        assert status["engine_pid"] == process.pid and status["pinned_cpu"] == 1
        engine.publish_market_data(book_events())
        engine.submit_parent(11, "AAPL", "buy", 400)
        engine.wait_idle()
        assert engine.read_orders()["quantity"].tolist() == [300, 100]
        engine.update_config(lambda c: c.replace(risk=c.risk.replace(max_open_orders=7)))
        assert engine.params()["max_open_orders"] == 7
        engine.close()
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
        assert process.returncode == 0 and "stopped" in out
    assert shm_entries(name) == []


@pytest.mark.slow
def test_killed_engine_process_is_detected_and_its_segments_taken_over(name: str) -> None:
    with engine_process(name) as process:
        engine = attach_when_running(name)
        engine.publish_market_data(book_events())
        engine.wait_idle()
        process.kill()
        process.communicate()
    with pytest.raises(EngineCrashedError, match=f"process {process.pid}.* died"):
        engine.check()
    engine.close()
    assert shm_entries(name)  # left behind by the crash
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    refused = subprocess.run([sys.executable, "-m", "sor.cli", "engine", "--name", name],
                             capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 2
    assert f"dead process {process.pid}" in refused.stderr
    with engine_process(name, "--takeover") as replacement:
        engine = attach_when_running(name)
        assert engine.status()["engine_pid"] == replacement.pid
        engine.stop()
        replacement.communicate(timeout=20)
        assert replacement.returncode == 0
    assert shm_entries(name) == []


def test_order_rate_limit_refuses_the_excess(name: str) -> None:
    config = default_config()
    config = config.replace(risk=config.risk.replace(max_orders_per_second=2))
    with Engine(config, name=name) as engine:
        engine.publish_market_data(book_events())
        engine.submit_parent(4, "AAPL", "buy", 900)
        engine.wait_idle()
        assert engine.read_orders()["venue_id"].tolist() == [0, 1]
        risk = engine.read_audit()
        risk = risk[risk["kind"] == int(AuditKind.RISK_REJECT)]
        assert [RejectReason(int(r)).name for r in risk["reason"]] == ["ORDER_RATE"]


@pytest.mark.slow
def test_engine_process_with_sched_fifo_and_locked_memory(name: str, tmp_path) -> None:
    from sor.config import save

    config = default_config()
    # A sleeping idle strategy, so a real-time loop cannot monopolise a core of the test host.
    config = config.replace(engine=config.engine.replace(
        sched_fifo=True, sched_priority=10, mlockall=True, idle_strategy="sleep",
        idle_sleep_ns=200_000))
    path = tmp_path / "fifo.toml"
    save(config, path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen([sys.executable, "-m", "sor.cli", "engine", "--config", str(path),
                           "--name", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env) as process:
        process.stdout.readline()
        engine = None
        for _ in range(2000):
            try:
                engine = Engine.attach(name)
            except EngineError:  # a refused start removes the segments
                engine = None
                break
            if engine.state not in ("created", "starting"):
                break
            engine.close()
            time.sleep(0.005)
        if engine is not None and engine.state == "running":
            status = engine.status()
            assert status["sched_fifo"] and status["memory_locked"]
            engine.stop()
            process.communicate(timeout=20)
            assert process.returncode == 0
        else:
            # Without CAP_SYS_NICE / RLIMIT_RTPRIO the engine refuses to start, saying why.
            if engine is not None:
                engine.close()
            _, err = process.communicate(timeout=20)
            assert process.returncode == 2
            assert "SCHED_FIFO" in err or "mlockall" in err
    assert shm_entries(name) == []
