"""A router killed with kill -9 while children are working, then restarted: `sor router` runs
as a subprocess between an OMS client and test venues (FIX acceptors in this process). The OMS
must receive every execution once (CumQty equal to what the venues executed, no duplicate
ExecID), orphaned children must be cancelled at the venues, live parents must resume and
finish, and sequence numbers must continue."""

from __future__ import annotations

import collections
import os
import select
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from gateway_support import VenueSet, book_events, wait_until
from sor.config import default_config, save, with_changes
from sor.engine import Engine
from sor.fix.oms import OmsClient

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sessions_toml(oms_port: int, venues: VenueSet) -> str:
    lines = ["[defaults]", 'store_dir = "fix"', "", "[[sessions]]", 'name = "OMS"',
             'role = "acceptor"', 'application = "oms"', 'begin_string = "FIX.4.4"',
             'sender_comp_id = "SOR"', 'target_comp_id = "OMS"', 'host = "127.0.0.1"',
             f"port = {oms_port}", ""]
    for name, port in venues.ports.items():
        lines += ["[[sessions]]", f'name = "{name}"', 'role = "initiator"',
                  'application = "venue"', f'venue = "{name}"', 'begin_string = "FIX.4.4"',
                  'sender_comp_id = "SOR"', f'target_comp_id = "{name}"', 'host = "127.0.0.1"',
                  f"port = {port}", "reconnect_interval_s = 0.2", ""]
    return "\n".join(lines)


class RouterProcess:
    """`sor router` as a subprocess; start() waits for its ready line."""

    def __init__(self, args: list[str], log_path: str) -> None:
        self.args = args
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.ready_line = ""

    def start(self, timeout_s: float = 60.0) -> str:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "sor.cli", "router", *self.args],
                                        stdout=subprocess.PIPE, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + timeout_s
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.process.poll() is not None:
                raise AssertionError(f"sor router did not start: {open(self.log_path).read()}")
            ready, _, _ = select.select([self.process.stdout], [], [], remaining)
            if ready:
                line += os.read(self.process.stdout.fileno(), 4096)
        self.ready_line = line.decode()
        return self.ready_line

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process.stdout.close()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            if self.process is not None and not self.process.stdout.closed:
                self.process.stdout.close()
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


@pytest.fixture
def harness(tmp_path):
    venues = VenueSet(str(tmp_path / "venues"), ("XNAS", "BATS"), mode="rest")
    engine_name = f"sorrst{os.getpid() % 100000}"
    config = with_changes(default_config(), {
        "engine.name": engine_name, "engine.idle_strategy": "yield",
        "risk.max_open_orders": 10_000, "risk.max_orders_per_second": 100_000})
    save(config, tmp_path / "router.toml")
    oms_port = _free_port()
    (tmp_path / "sessions.toml").write_text(_sessions_toml(oms_port, venues))
    router = RouterProcess(["--config", str(tmp_path / "router.toml"),
                            "--fix", str(tmp_path / "sessions.toml"),
                            "--state-dir", str(tmp_path / "state"), "--market-data", "none",
                            "--console-port", "0"],
                           str(tmp_path / "router.log"))
    oms = OmsClient(port=oms_port, store_dir=str(tmp_path / "oms"), reconnect_interval_s=0.1)
    handles: list[Engine] = []

    def publish(events) -> None:
        """Publishes market data into the router's engine (attached by name)."""
        if not handles:
            handles.append(Engine.attach(engine_name, config))
        engine = handles[-1]
        assert engine.publish_market_data(events) == len(events)
        ring = engine.ring("market_data")  # the router holds the other input rings
        wait_until(lambda: len(ring) == 0, 10, "the engine to apply the market data")

    def reattach() -> None:
        for engine in handles:
            engine.close()
        handles.clear()

    yield venues, router, oms, publish, reattach
    reattach()
    oms.close()
    router.stop()
    venues.close()


def _open_orders(venue) -> list[str]:
    return [cl for cl, order in venue.orders.items() if order.open]


def test_kill_9_with_children_working_then_restart_loses_and_doubles_nothing(harness):
    venues, router, oms, publish, reattach = harness
    xnas, bats = venues.venues["XNAS"], venues.venues["BATS"]
    ready = router.start()
    assert "incarnation 1 " in ready
    oms.start()
    oms.wait_logged_on()
    wait_until(lambda: all(v.session.is_logged_on for v in venues.venues.values()), 10,
               "router logons at the venues")
    publish(book_events([(0, 1_000_100, 300), (1, 1_000_200, 300)]))
    first = oms.new_order("AAPL", "buy", 400, price="100.05")
    wait_until(lambda: len(xnas.orders) == 1 and len(bats.orders) == 1, 10, "first children")
    second = oms.new_order("AAPL", "buy", 600, price="100.05")
    wait_until(lambda: len(xnas.orders) == 2 and len(bats.orders) == 2, 10, "second children")
    (x1, x2), (b1, b2) = list(xnas.orders), list(bats.orders)
    assert (xnas.orders[x1].quantity, bats.orders[b1].quantity) == (300, 100)
    venues.call(lambda: xnas.fill(x1, 100, "100.01"))
    venues.call(lambda: bats.fill(b2, 50, "100.02"))
    oms.wait_for(lambda: oms.order(first).cum_quantity == 100
                 and oms.order(second).cum_quantity == 50, 10, "fills before the kill")
    seq_before = max(r.seq_num for r in oms.reports)

    router.kill()  # children are working at both venues
    assert len(_open_orders(xnas)) == 2 and len(_open_orders(bats)) == 2
    # while the router is down the venues keep executing: the reports wait in their stores
    venues.call(lambda: bats.fill(b1, 100, "100.02"))   # first's BATS child completes
    venues.call(lambda: xnas.fill(x2, 30, "100.01"))
    for venue in (xnas, bats):
        venue.mode = "fill"  # new children fill at once
    reattach()

    ready = router.start()
    assert "incarnation 2 (2 live parents, 4 orphaned children recovered)" in ready
    # one order per parent: new liquidity at the top goes to one parent (whichever resumed)
    publish(book_events([(0, 1_000_000, 1000), (0, 1_000_000, 1000)], first_order_id=100))
    done_first = oms.wait_done(first, 30)
    done_second = oms.wait_done(second, 30)

    # every execution reached the OMS once, and CumQty is what the venues executed
    assert done_first.cum_quantity == 400 and done_first.ord_status == "2"
    assert done_second.cum_quantity == 600 and done_second.ord_status == "2"
    venue_fills = collections.Counter((q, p) for v in venues.venues.values() for _, q, p in v.fills)
    oms_fills = collections.Counter(f for view in (done_first, done_second) for f in view.fills)
    assert oms_fills == venue_fills
    assert sum(q * c for (q, _), c in venue_fills.items()) == 1000
    exec_ids = [r.exec_id for r in oms.reports if r.msg_type == "8"]
    assert len(exec_ids) == len(set(exec_ids))
    assert done_first.duplicate_exec_ids == 0 and done_second.duplicate_exec_ids == 0
    for view in (done_first, done_second):
        notional = sum(Decimal(p) * q for q, p in view.fills)
        assert Decimal(view.avg_price) == (notional / view.cum_quantity).quantize(Decimal("1e-8"))
        cums = [r.cum_quantity for r in view.reports if r.is_fill]
        assert cums == sorted(cums) and len(set(cums)) == len(cums)  # no fill counted twice
    # the orphans were cancelled: nothing of the first incarnation is open at a venue
    for venue in (xnas, bats):
        orphans = [o for cl, o in venue.orders.items() if cl.startswith("1.")]
        assert orphans and not any(o.open for o in orphans)
        cancels = [m for m in venue.received if m.msg_type == "F"]
        assert all(m.get(11).split(".c")[1].startswith("2-") for m in cancels)
    assert xnas.orders[x1].status == "4" and xnas.orders[x1].cum_quantity == 100
    assert bats.orders[b1].status == "2"  # filled while the router was down: nothing to cancel
    # the parents resumed with new children of the second incarnation
    assert any(cl.startswith("2.") for v in (xnas, bats) for cl in v.orders)
    # sequence numbers continued on the OMS session: no reset, no gap left
    after = [r.seq_num for r in oms.reports if r.seq_num > seq_before]
    assert after and min(after) == seq_before + 1
    assert [r.seq_num for r in oms.reports] == sorted(r.seq_num for r in oms.reports)
    assert oms.logons == 2
