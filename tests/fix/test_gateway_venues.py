"""End to end with the simulated venues of sor.fix.venue (FIX acceptors over a real-time
market, UDP market data): parent orders from the OMS client are worked by the router through
real venue sessions, and what the OMS is told equals what the venues executed; then the router
is killed with kill -9 while children work and restarted, and still nothing is lost or doubled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from gateway_support import state_dir, wait_until
from sor.config import default_config, save, with_changes
from sor.fix import journal
from sor.fix.config import SessionConfig
from sor.fix.gateway import Gateway
from sor.fix.oms import OmsClient
from sor.fix.venue.server import VenueServer


def _config(name: str):
    return with_changes(default_config(), {
        "engine.name": name, "engine.idle_strategy": "yield",
        "risk.max_open_orders": 10_000, "risk.max_orders_per_second": 100_000,
        "risk.max_order_notional_usd": 10_000_000.0})


def _router_sessions(venues: VenueServer, oms_port: int = 0) -> list[SessionConfig]:
    sessions = [SessionConfig(name="OMS", role="acceptor", application="oms",
                              sender_comp_id="SOR", target_comp_id="OMS", host="127.0.0.1",
                              port=oms_port, store_dir="fix")]
    for config in venues.session_configs:
        venue = config.venue or config.sender_comp_id
        host, port = venues.fix_address(venue)
        sessions.append(SessionConfig(
            name=venue, role="initiator", application="venue", venue=venue,
            begin_string=config.begin_string, sender_comp_id=config.target_comp_id,
            target_comp_id=config.sender_comp_id, host=host, port=port, store_dir="fix",
            reconnect_interval_s=0.2))
    return sessions


def _venue_truth(venues: VenueServer, children: list[tuple[str, str]]) -> tuple[int, int]:
    """Returns (shares, notional in price ticks x shares) the venues executed for `children`
    ((venue, ClOrdID) pairs)."""
    def read():
        shares = notional = 0
        for venue, cl_ord_id in children:
            order = venues.core.order(venue, cl_ord_id)
            if order is not None:
                shares += order.cum_qty
                notional += order.notional_ticks
        return shares, notional

    return venues.call(read)


def _children_by_parent(gateway: Gateway) -> dict[int, list[tuple[str, str]]]:
    """Returns each parent's children as (venue, ClOrdID), read on the reactor thread."""
    import threading

    out: dict[int, list[tuple[str, str]]] = {}
    done = threading.Event()

    def read() -> None:
        core = gateway.core
        for child in core.children.values():
            if child.parent is not None:
                out.setdefault(child.parent.parent_order_id, []).append(
                    (core.venue_names[child.venue_id], child.cl_ord_id))
        done.set()

    gateway.call_soon(read)
    assert done.wait(5)
    return out


def test_parents_are_worked_through_the_simulated_venues(tmp_path):
    config = _config(f"sore2e{os.getpid() % 100000}")
    with VenueServer(router_config=config, fix_port=0, md_port=0, seed=11) as venues:
        gateway = Gateway(config, _router_sessions(venues), state_dir=state_dir(tmp_path),
                          market_data=venues.md_address)
        gateway.start_thread()
        try:
            wait_until(lambda: all(s.is_logged_on for s in gateway.sessions.values()
                                   if s.config.application == "venue"), 10, "venue logons")
            wait_until(lambda: gateway.market_data_receiver.live, 10, "market data")
            with OmsClient(port=gateway.oms_port, store_dir=str(tmp_path / "oms")) as oms:
                oms.wait_logged_on()
                deadline = time.time_ns() + 6 * 10**9
                buy = oms.new_order("AAPL", "buy", 1500, time_in_force="6",
                                    expire_time_ns=deadline)
                sell = oms.new_order("MSFT", "sell", 1200, time_in_force="6",
                                     expire_time_ns=deadline)
                views = [oms.wait_done(buy, 30), oms.wait_done(sell, 30)]
                status = gateway.status()
                children = _children_by_parent(gateway)
        finally:
            gateway.close()
        tick = Decimal("0.0001")
        for view in views:
            assert view.ord_status in ("2", "3"), view
            assert view.cum_quantity > 0 and view.duplicate_exec_ids == 0
            shares, notional = _venue_truth(venues, children[int(view.order_id)])
            assert view.cum_quantity == shares == view.filled_quantity
            exact = (Decimal(notional) * tick / shares).quantize(Decimal("1e-8"))
            assert Decimal(view.avg_price) == exact
        assert status["counters"]["venue_unknown_orders"] == 0
        assert status["counters"]["children_rejected_venue_down"] == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _toml(sessions: list[SessionConfig]) -> str:
    lines = []
    for config in sessions:
        lines += ["[[sessions]]"]
        for key in ("name", "role", "application", "venue", "begin_string", "sender_comp_id",
                    "target_comp_id", "host", "store_dir"):
            lines.append(f'{key} = "{getattr(config, key)}"')
        lines += [f"port = {config.port}",
                  f"reconnect_interval_s = {config.reconnect_interval_s}", ""]
    return "\n".join(lines)


def _start_router(args: list[str], log_path: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "sor.cli", "router", *args],
                                   stdout=subprocess.PIPE, stderr=log, env=env, text=True)
    line = process.stdout.readline()
    assert line.startswith("sor router:"), open(log_path).read()
    return process


@pytest.mark.slow
def test_kill_9_with_the_ml_router_working_children_at_the_simulated_venues(tmp_path):
    config = _config(f"sork9{os.getpid() % 100000}")
    save(config, tmp_path / "router.toml")
    # the venues keep a dead router's orders open: the restarted router must cancel them
    with VenueServer(router_config=config, fix_port=0, md_port=0, seed=5,
                     cancel_on_disconnect=False) as venues:
        oms_port = _free_port()
        (tmp_path / "sessions.toml").write_text(_toml(_router_sessions(venues, oms_port)))
        host, port = venues.md_address
        args = ["--config", str(tmp_path / "router.toml"), "--fix", str(tmp_path / "sessions.toml"),
                "--state-dir", str(tmp_path / "state"), "--policy", "ml_router",
                "--market-data", f"{host}:{port}", "--console-port", "0"]
        router = _start_router(args, str(tmp_path / "router.log"))
        oms = OmsClient(port=oms_port, store_dir=str(tmp_path / "oms"), reconnect_interval_s=0.1)
        try:
            oms.start().wait_logged_on(30)
            # a limit at the bid side: the policy can only post or peg, so its children rest
            deadline = time.time_ns() + 25 * 10**9  # room for a restart on a loaded machine
            parent = oms.new_order("AAPL", "buy", 20_000, price="100.00", time_in_force="6",
                                   expire_time_ns=deadline)
            # kill it as soon as its first children rest at the venues
            wait_until(lambda: venues.call(lambda: len(venues.core.open_orders())) > 0, 20,
                       "children resting at the venues")
            router.send_signal(signal.SIGKILL)
            open_before = venues.call(lambda: [(o.venue, o.cl_ord_id)
                                               for o in venues.core.open_orders()])
            router.wait(10)
            router.stdout.close()
            assert open_before and all(cl.startswith("1.") for _, cl in open_before)
            router = _start_router(args, str(tmp_path / "router.log"))
            view = oms.wait_done(parent, 60)
        finally:
            oms.close()
            router.send_signal(signal.SIGTERM)
            router.wait(20)
            router.stdout.close()
        # every child the router sent, from its journal; what each did, from the venues
        records, _ = journal.read(tmp_path / "state" / "journal")
        names = {v.venue_id: v.name for v in config.venues}
        sent = [(names[r.venue_id], f"{r.incarnation}.{r.child_order_id}") for r in records
                if r.kind is journal.RecordKind.CHILD_SENT]

        def read():
            orders = [(cl, venues.core.order(venue, cl)) for venue, cl in sent]
            return [(cl, o.cum_qty, o.notional_ticks, o.open) for cl, o in orders
                    if o is not None]

        truth = venues.call(read)
    assert view.ord_status in ("2", "3") and view.duplicate_exec_ids == 0
    exec_ids = [r.exec_id for r in oms.reports if r.msg_type == "8"]
    assert len(exec_ids) == len(set(exec_ids))
    shares = sum(q for _, q, _, _ in truth)
    notional = sum(n for _, _, n, _ in truth)
    assert view.cum_quantity == shares == view.filled_quantity > 0
    assert Decimal(view.avg_price) == (Decimal(notional) * Decimal("0.0001") / shares).quantize(
        Decimal("1e-8"))
    # nothing of either incarnation is left open at the venues: the children open at the kill
    # were cancelled by the restarted router (these venues keep a dead session's orders), and
    # the parent worked on with children of the second incarnation until its deadline
    assert not any(is_open for _, _, _, is_open in truth)
    assert {cl for _, cl in open_before} <= {cl for cl, _, _, _ in truth}
    assert any(cl.startswith("2.") for cl, _, _, _ in truth)
