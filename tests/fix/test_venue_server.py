"""The venue server end to end over TCP: a FIX client built from sor.fix.session (initiator
sessions on their own reactor thread, as the router's gateway has them) sends takes,
post-only, midpoint, cancel and replace orders to the real-time simulated venues; a
disconnect cancels the resting orders and the Canceled reports arrive after the next logon;
bad messages are refused with the session left up; market data reaches a receiver."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sor
from sor.book import ConsolidatedBook, VenueSpec
from sor.feed.udp import MdReceiver, book_sink
from sor.fix.config import SessionConfig
from sor.fix.reactor import Reactor
from sor.fix.session import Application, FixSession
from sor.fix.venue.server import VenueServer, default_venue_sessions

TIMEOUT_S = 10.0


class Recorder(Application):
    """Keeps every message and callback of one client session."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logons = 0
        self.logouts: list[str] = []
        self.condition = threading.Condition()

    def _note(self, action: Callable[[], None]) -> None:
        with self.condition:
            action()
            self.condition.notify_all()

    def on_logon(self, session: FixSession) -> None:
        def bump() -> None:
            self.logons += 1
        self._note(bump)

    def on_logout(self, session: FixSession, reason: str) -> None:
        self._note(lambda: self.logouts.append(reason))

    def on_message(self, session: FixSession, message: Any) -> None:
        self._note(lambda: self.messages.append(message))

    def on_session_reject(self, session: FixSession, message: Any) -> None:
        self._note(lambda: self.messages.append(message))

    def wait(self, predicate: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
        with self.condition:
            assert self.condition.wait_for(predicate, timeout), (
                f"not met in time; messages: {[m.raw for m in self.messages]}")

    def for_id(self, cl_ord_id: str) -> list[Any]:
        with self.condition:
            return [m for m in self.messages if m.get(11) == cl_ord_id]


class Client:
    """The router side: one initiator session per venue on a reactor thread."""

    def __init__(self, server: VenueServer | tuple[str, int], store_dir: Path,
                 venues=("XNAS", "DARK"), begin_string: str = "FIX.4.4") -> None:
        self.reactor = Reactor(idle_wait_s=0.001)
        self.apps: dict[str, Recorder] = {}
        self.sessions: dict[str, FixSession] = {}
        begin = {venue: begin_string for venue in venues}
        if isinstance(server, VenueServer):
            begin.update({c.venue: c.begin_string for c in server.session_configs})
        for venue in venues:
            host, port = server if isinstance(server, tuple) else server.fix_address(venue)
            config = SessionConfig(name=f"client-{venue}", role="initiator",
                                   begin_string=begin[venue], sender_comp_id="SOR",
                                   target_comp_id=venue, host=host, port=port,
                                   store_dir=str(store_dir), reconnect_interval_s=0.2)
            self.apps[venue] = Recorder()
            self.sessions[venue] = FixSession(config, self.apps[venue])
        self.thread = threading.Thread(target=self.reactor.run, daemon=True)
        self.thread.start()
        for session in self.sessions.values():
            self.reactor.connect(session)
        for app in self.apps.values():
            app.wait(lambda app=app: app.logons >= 1)
        self._ids = 0

    def send(self, venue: str, msg_type: str, body: list[tuple[int, Any]]) -> None:
        session = self.sessions[venue]
        self.reactor.call_soon_threadsafe(lambda: session.send(msg_type, body))

    def new_id(self) -> str:
        self._ids += 1
        return f"T{time.time_ns() % 10**9}-{self._ids}"

    def order(self, venue: str, **fields: Any) -> str:
        cl_ord_id = self.new_id()
        body = {11: cl_ord_id, 55: "AAPL", 54: "1", 38: 100, 40: "2", 59: "0"}
        body.update({int(k[1:]): v for k, v in fields.items()})
        body[60] = sor_time()
        self.send(venue, "D", [(t, v) for t, v in body.items() if v is not None])
        return cl_ord_id

    def close(self) -> None:
        self.reactor.stop()
        self.thread.join()
        self.reactor.close()
        for session in self.sessions.values():
            session.close()


def sor_time() -> str:
    ns = time.time_ns()
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns // 10**6 % 1000:03d}"


def px(ticks: int) -> str:
    return str(Decimal(ticks) / 10_000)


@pytest.fixture
def server() -> VenueServer:
    with VenueServer(fix_port=0, md_port=0, seed=21, begin_string="FIX.4.4") as running:
        yield running


@pytest.fixture
def client(server: VenueServer, tmp_path: Path):
    made = Client(server, tmp_path / "client")
    yield made
    made.close()


def book(server: VenueServer, venue: str, side: str, depth: int = 2):
    return server.call(lambda: server.market.levels(venue, side, depth, 0))


def test_take_over_tcp_fills(server: VenueServer, client: Client) -> None:
    asks = book(server, "XNAS", "sell")
    size = int(asks["quantity"][0])
    cl = client.order("XNAS", _59="3", _38=size + 200, _44=px(int(asks["price_ticks"][1])))
    app = client.apps["XNAS"]
    app.wait(lambda: any(m.get(39) in ("2", "4") for m in app.for_id(cl)))
    reports = app.for_id(cl)
    assert reports[0].get(150) == "0"
    fills = [m for m in reports if m.get(150) == "F"]
    assert fills and sum(int(m.get(32)) for m in fills) == int(reports[-1].get(14))
    assert all(m.get(851) == "2" and m.get(17) and m.get(37) and m.get(60) for m in fills)
    assert len({m.get(17) for m in reports}) == len(reports)


def test_post_only_replace_cancel_over_tcp(server: VenueServer, client: Client) -> None:
    bid = int(book(server, "XNAS", "buy")["price_ticks"][0])
    app = client.apps["XNAS"]
    cl = client.order("XNAS", _18="6", _38=500, _44=px(bid - 300))
    app.wait(lambda: len(app.for_id(cl)) == 1)
    assert app.for_id(cl)[0].get(150) == "0"
    replace = client.new_id()
    client.send("XNAS", "G", [(41, cl), (11, replace), (55, "AAPL"), (54, "1"), (38, 300),
                              (40, "2"), (44, px(bid - 400)), (60, sor_time())])
    app.wait(lambda: len(app.for_id(replace)) == 1)
    replaced = app.for_id(replace)[0]
    assert replaced.get(150) == "5" and replaced.get(41) == cl and replaced.get(151) == "300"
    assert Decimal(replaced.get(44)) == Decimal(px(bid - 400))
    cancel = client.new_id()
    client.send("XNAS", "F", [(41, replace), (11, cancel), (55, "AAPL"), (54, "1"),
                              (60, sor_time())])
    app.wait(lambda: len(app.for_id(cancel)) == 1)
    done = app.for_id(cancel)[0]
    assert done.get(150) == "4" and done.get(39) == "4" and done.get(41) == replace
    assert server.call(lambda: len(server.core.open_orders())) == 0


def test_midpoint_and_rejects_keep_the_session_up(server: VenueServer, client: Client) -> None:
    app = client.apps["XNAS"]
    peg = client.order("XNAS", _40="P", _18="M", _44=None)
    bad = client.order("XNAS", _44="100.005")
    app.wait(lambda: app.for_id(peg) and app.for_id(bad))
    assert app.for_id(peg)[0].get(150) == "0" and app.for_id(peg)[0].get(40) == "P"
    rejected = app.for_id(bad)[0]
    assert rejected.get(150) == "8" and "(44)" in rejected.get(58)
    # An unsupported message type and a message without ClOrdID: rejected, session stays up.
    client.send("XNAS", "H", [(11, "Q1"), (55, "AAPL"), (54, "1")])
    client.send("XNAS", "D", [(55, "AAPL"), (54, "1"), (38, 100), (40, "2"), (44, "1")])
    app.wait(lambda: any(m.msg_type == "j" for m in app.messages)
             and any(m.msg_type == "3" for m in app.messages))
    session_reject = next(m for m in app.messages if m.msg_type == "3")
    assert session_reject.get(371) == "11"
    dark = client.order("DARK", _40="P", _18="M", _44=None, _38=200, _110=100)
    client.apps["DARK"].wait(lambda: client.apps["DARK"].for_id(dark))
    assert client.apps["DARK"].for_id(dark)[0].get(150) == "0"
    assert client.sessions["XNAS"].is_logged_on


def test_disconnect_cancels_resting_orders(server: VenueServer, tmp_path: Path) -> None:
    client = Client(server, tmp_path / "client", venues=("XNAS",))
    try:
        bid = int(book(server, "XNAS", "buy")["price_ticks"][0])
        app = client.apps["XNAS"]
        ids = [client.order("XNAS", _18="6", _44=px(bid - 100 * k)) for k in (3, 4)]
        app.wait(lambda: all(app.for_id(i) for i in ids))
        assert server.call(lambda: len(server.core.open_orders("XNAS"))) == 2
    finally:
        client.close()  # drops the TCP connection without a Logout
    deadline = time.monotonic() + TIMEOUT_S
    while server.call(lambda: len(server.core.open_orders("XNAS"))) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.call(lambda: len(server.core.open_orders("XNAS"))) == 0
    assert server.call(lambda: server.market.open_orders) == 0
    # The router comes back (same store): the Canceled reports arrive by resend.
    again = Client(server, tmp_path / "client", venues=("XNAS",))
    try:
        app = again.apps["XNAS"]
        app.wait(lambda: all(any(m.get(150) == "4" for m in app.for_id(i)) for i in ids))
    finally:
        again.close()


def test_embedded_sessions_speak_fix42_on_lit_venues(tmp_path: Path) -> None:
    sessions = [c.replace(port=0) for c in default_venue_sessions(store_dir=str(tmp_path / "v"))]
    assert {c.venue: c.begin_string for c in sessions} == {
        "XNAS": "FIX.4.2", "BATS": "FIX.4.2", "EDGX": "FIX.4.2", "IEXG": "FIX.4.2",
        "DARK": "FIX.4.4"}
    with VenueServer(sessions, md_port=0, seed=3) as server:
        client = Client(server, tmp_path / "client", venues=("XNAS",))
        try:
            asks = book(server, "XNAS", "sell")
            cl = client.order("XNAS", _59="3", _38=int(asks["quantity"][0]) + 100,
                              _44=px(int(asks["price_ticks"][1])))
            app = client.apps["XNAS"]
            app.wait(lambda: any(m.get(39) in ("2", "4") for m in app.for_id(cl)))
            reports = app.for_id(cl)
            assert all(m.get(20) == "0" for m in reports)
            assert {m.get(150) for m in reports} & {"1", "2"} and "F" not in {m.get(150) for m in reports}
        finally:
            client.close()


def test_market_data_reaches_a_receiver(server: VenueServer) -> None:
    specs = [VenueSpec(v.venue_id, v.book_type if v.lit else sor.BookType.L3, v.lit)
             for v in server.mapping.venues]
    received = ConsolidatedBook(specs)
    stamps: list[np.ndarray] = []
    sink = book_sink(received)

    def keep(events: np.ndarray) -> int:
        stamps.append(events[["ts_event", "ts_recv", "sequence"]].copy())
        return sink(events)

    with MdReceiver(server.md_address, keep) as receiver:
        receiver.start_thread()
        deadline = time.monotonic() + TIMEOUT_S
        while receiver.stats["events"] < 500 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert receiver.live and receiver.stats["gaps"] == 0
    live = np.concatenate(stamps)
    live = live[live["sequence"] != 0]
    # Venue time and receive time are on the same (wall) clock; a receipt follows its event.
    delay = live["ts_recv"].astype(np.int64) - live["ts_event"].astype(np.int64)
    assert np.all(delay >= 0) and np.median(delay) < 1e9
    nbbo = received.nbbo(0)
    assert 0 < nbbo.bid_price_ticks < nbbo.ask_price_ticks


def test_sor_venues_command(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "sor.cli", "venues", "--fix-port", "0",
                                "--md-port", "0", "--summary-s", "0.2"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                              daemon=True)
    reader.start()

    def expect(pattern: str) -> re.Match:
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no line matching {pattern!r}")

    try:
        opened = expect(r"venues open: XNAS, BATS, EDGX, IEXG, DARK on FIX 127\.0\.0\.1:(\d+)")
        client = Client(("127.0.0.1", int(opened.group(1))), tmp_path / "client", venues=("BATS",),
                        begin_string="FIX.4.2")
        try:
            expect(r"BATS logon \(FIX\.4\.2")
            expect(r"md [\d,]+ events \([\d,]+/s\).*logged on: BATS")
        finally:
            client.close()
        expect(r"BATS logout")
        process.send_signal(signal.SIGTERM)
        expect(r"closed after [\d,]+ md events")
        assert process.wait(TIMEOUT_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(TIMEOUT_S)
        process.stdout.close()
