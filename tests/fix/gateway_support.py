"""Test counterparties for the gateway: FIX acceptor venues built on sor.fix.session that answer
child orders deterministically, a router configuration for tests, and market data for the
engine. Imported by tests/fix/test_gateway*.py and test_restart.py."""

from __future__ import annotations

import itertools
import os
import threading
import time
from decimal import Decimal
from typing import Any

import numpy as np

from sor.config import default_config, with_changes
from sor.fix.config import SessionConfig
from sor.fix.reactor import Reactor
from sor.fix.session import Application, FixSession
from sor.ring import MD_EVENT_DTYPE

VENUES = ("XNAS", "BATS", "EDGX", "IEXG", "DARK")


def router_config(engine_name: str):
    """Returns the embedded router configuration with its own engine name and loose limits."""
    return with_changes(default_config(), {
        "engine.name": engine_name, "engine.idle_strategy": "spin",
        "risk.max_open_orders": 10_000, "risk.max_orders_per_second": 100_000})


def book_events(asks: list[tuple[int, int, int]], bids: list[tuple[int, int, int]] = (),
                instrument_id: int = 0, first_order_id: int = 1,
                ts_ns: int | None = None) -> np.ndarray:
    """Returns add-order events: `asks`/`bids` are (venue_id, price_ticks, quantity)."""
    now = time.time_ns() if ts_ns is None else ts_ns
    rows = [(2, *a) for a in asks] + [(1, *b) for b in bids]
    events = np.zeros(len(rows), MD_EVENT_DTYPE)
    for i, (side, venue, price, quantity) in enumerate(rows):
        events[i]["ts_event"] = now
        events[i]["ts_recv"] = now
        events[i]["order_id"] = first_order_id + i
        events[i]["price_ticks"] = price
        events[i]["quantity"] = quantity
        events[i]["instrument_id"] = instrument_id
        events[i]["venue_id"] = venue
        events[i]["kind"] = 1
        events[i]["side"] = side
    return events


def clock_event(venue_id: int, ts_ns: int, sequence_order_id: int) -> np.ndarray:
    """Returns a trade print with no book effect that moves the engine's feature clock."""
    events = np.zeros(1, MD_EVENT_DTYPE)
    events[0]["ts_event"] = ts_ns
    events[0]["ts_recv"] = ts_ns
    events[0]["order_id"] = sequence_order_id
    events[0]["venue_id"] = venue_id
    events[0]["kind"] = 7
    return events


class VenueOrder:
    """One order as a test venue holds it."""

    def __init__(self, cl_ord_id: str, side: str, quantity: int, price: str | None,
                 time_in_force: str | None, order_type: str) -> None:
        self.cl_ord_id = cl_ord_id
        self.side = side
        self.quantity = quantity
        self.price = price
        self.time_in_force = time_in_force
        self.order_type = order_type
        self.cum_quantity = 0
        self.notional = Decimal(0)
        self.status = "0"
        self.order_id = ""

    @property
    def open(self) -> bool:
        """Returns whether the order can still fill."""
        return self.status in ("0", "1")


class TestVenue(Application):
    """A venue acceptor that answers child orders deterministically.

    mode ``fill``: acknowledges, then fills in `parts` executions at `fill_price` (default the
    order's limit); ``rest``: acknowledges only (``fill()`` executes later); ``reject``:
    rejects every order. Cancels cancel an open order, else are answered with an
    OrderCancelReject (unknown order). ``fills`` keeps every execution sent (venue truth).
    """

    __test__ = False

    def __init__(self, name: str, *, mode: str = "fill", parts: int = 2,
                 fill_price: str | None = None) -> None:
        self.name = name
        self.mode = mode
        self.parts = parts
        self.fill_price = fill_price
        self.answer_cancels = True   # False: OrderCancelRequests go unanswered
        self.cancel_ioc = False      # True: an IOC order left unfilled on arrival is cancelled
        self.orders: dict[str, VenueOrder] = {}
        self.received: list[Any] = []
        self.fills: list[tuple[str, int, str]] = []     # (ClOrdID, qty, price)
        self.session: FixSession | None = None
        self._exec_ids = itertools.count(1)
        self._order_ids = itertools.count(1)
        self._lock = threading.Lock()

    def _exec_id(self) -> str:
        return f"{self.name}-{time.time_ns() // 1000 % 10**12}-{next(self._exec_ids)}"

    def _report(self, order: VenueOrder, exec_type: str, *, cl_ord_id: str | None = None,
                orig: str | None = None, last_quantity: int = 0, last_price: str | None = None,
                text: str | None = None) -> None:
        assert self.session is not None
        v42 = self.session.config.begin_string == "FIX.4.2"
        body: list[tuple[int, Any]] = [(37, order.order_id), (11, cl_ord_id or order.cl_ord_id)]
        if orig:
            body.append((41, orig))
        body.append((17, self._exec_id()))
        if v42:
            body.append((20, "0"))
            if exec_type == "F":
                exec_type = "2" if order.status == "2" else "1"
        avg = (order.notional / order.cum_quantity) if order.cum_quantity else Decimal(0)
        body += [(150, exec_type), (39, order.status), (55, "AAPL"), (54, order.side),
                 (38, order.quantity)]
        if last_quantity:
            body += [(32, last_quantity), (31, last_price), (851, "2")]
        leaves = order.quantity - order.cum_quantity if order.open else 0
        body += [(151, leaves), (14, order.cum_quantity), (6, str(avg))]
        if text:
            body.append((58, text))
        self.session.send("8", body)

    def fill(self, cl_ord_id: str, quantity: int, price: str) -> None:
        """Executes `quantity` of an open order at `price` (call on the venue reactor)."""
        order = self.orders[cl_ord_id]
        quantity = min(quantity, order.quantity - order.cum_quantity)
        if quantity <= 0 or not order.open:
            return
        order.cum_quantity += quantity
        order.notional += Decimal(price) * quantity
        order.status = "2" if order.cum_quantity >= order.quantity else "1"
        with self._lock:
            self.fills.append((cl_ord_id, quantity, price))
        self._report(order, "F", last_quantity=quantity, last_price=price)

    def on_message(self, session: Any, message: Any) -> None:
        """Answers D, F and G."""
        self.received.append(message)
        msg_type = message.msg_type
        if msg_type == "D":
            order = VenueOrder(message.get(11), message.get(54), int(message.get(38)),
                               message.get(44), message.get(59), message.get(40))
            order.order_id = f"{self.name}{next(self._order_ids)}"
            self.orders[order.cl_ord_id] = order
            if self.mode == "reject":
                order.status = "8"
                self._report(order, "8", text="test venue rejects")
                return
            self._report(order, "0")
            if self.mode == "fill":
                price = self.fill_price or order.price or "100"
                remaining = order.quantity
                for k in range(self.parts):
                    part = remaining if k == self.parts - 1 else order.quantity // self.parts
                    self.fill(order.cl_ord_id, part, price)
                    remaining -= part
            if self.cancel_ioc and order.time_in_force == "3" and order.open:
                order.status = "4"
                self._report(order, "4", text="IOC: nothing to execute against")
        elif msg_type == "F":
            if not self.answer_cancels:
                return
            order = self.orders.get(message.get(41))
            if order is None or not order.open:
                session.send("9", [(37, order.order_id if order else "NONE"),
                                   (11, message.get(11)), (41, message.get(41)),
                                   (39, order.status if order else "8"), (434, "1"),
                                   (102, "1" if order is None else "0"),
                                   (58, "unknown order" if order is None else "too late")])
                return
            order.status = "4"
            self._report(order, "4", cl_ord_id=message.get(11), orig=message.get(41))
        elif msg_type == "G":
            order = self.orders.get(message.get(41))
            if order is None or not order.open:
                session.send("9", [(37, "NONE"), (11, message.get(11)), (41, message.get(41)),
                                   (39, "8"), (434, "2"), (102, "1")])
                return
            order.quantity = int(message.get(38))
            order.price = message.get(44)
            new = message.get(11)
            self.orders[new] = order
            order.cl_ord_id = new
            self._report(order, "5", orig=message.get(41))

    def filled_by_parent_child(self) -> int:
        """Returns the shares this venue executed."""
        with self._lock:
            return sum(q for _, q, _ in self.fills)


class VenueSet:
    """Test venues as FIX acceptors on one reactor thread, one port each."""

    __test__ = False

    def __init__(self, store_dir: str, names: tuple[str, ...] = VENUES, *,
                 begin_strings: dict[str, str] | None = None, **venue_options: Any) -> None:
        self.reactor = Reactor()
        self.venues: dict[str, TestVenue] = {}
        self.sessions: dict[str, FixSession] = {}
        self.ports: dict[str, int] = {}
        self.store_dir = store_dir
        self.begin_strings = begin_strings or {}
        for name in names:
            venue = TestVenue(name, **venue_options)
            config = SessionConfig(name=f"venue-{name}", role="acceptor",
                                   begin_string=self.begin_strings.get(name, "FIX.4.4"),
                                   sender_comp_id=name, target_comp_id="SOR", host="127.0.0.1",
                                   port=0, store_dir=store_dir)
            session = FixSession(config, venue)
            venue.session = session
            self.ports[name] = self.reactor.listen("127.0.0.1", 0, [session])
            self.venues[name] = venue
            self.sessions[name] = session
        self._thread = threading.Thread(target=self.reactor.run, name="test-venues", daemon=True)
        self._thread.start()

    def call(self, fn: Any) -> None:
        """Runs `fn` on the venues' reactor thread and waits for it."""
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        self.reactor.call_soon_threadsafe(run)
        assert done.wait(5.0), "venue reactor did not run the call"

    def router_sessions(self, oms: list[SessionConfig] | None = None,
                        names: tuple[str, ...] | None = None, *,
                        begin_string: str = "FIX.4.4") -> list[SessionConfig]:
        """Returns session configurations for a router: an OMS acceptor (port 0) and one
        initiator per venue to these acceptors (stores relative to the router's state)."""
        sessions = list(oms) if oms is not None else [
            SessionConfig(name="OMS", role="acceptor", application="oms", begin_string=begin_string,
                          sender_comp_id="SOR", target_comp_id="OMS", host="127.0.0.1", port=0,
                          store_dir="fix")]
        for name in names or tuple(self.venues):
            sessions.append(SessionConfig(
                name=name, role="initiator", application="venue", venue=name,
                begin_string=self.begin_strings.get(name, "FIX.4.4"), sender_comp_id="SOR",
                target_comp_id=name, host="127.0.0.1", port=self.ports[name], store_dir="fix",
                reconnect_interval_s=0.2))
        return sessions

    def close(self) -> None:
        """Stops the reactor and closes the sessions."""
        self.reactor.stop()
        self._thread.join(5)
        self.reactor.close()
        for session in self.sessions.values():
            session.close()

    def total_filled(self) -> int:
        """Returns the shares every venue executed."""
        return sum(v.filled_by_parent_child() for v in self.venues.values())


def wait_until(predicate: Any, timeout_s: float = 10.0, what: str = "condition") -> None:
    """Polls `predicate` until true; raises TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout_s} s")
        time.sleep(0.005)


def state_dir(tmp_path: Any, name: str = "router") -> str:
    """Returns a router state folder inside tmp_path."""
    path = os.path.join(str(tmp_path), name)
    os.makedirs(path, exist_ok=True)
    return path


_guard_names = itertools.count(1)


def guard_engine_name() -> str:
    """Returns an engine name unique in this test process."""
    return f"sorgd{os.getpid() % 100000}t{next(_guard_names)}"


class GuardRouter:
    """A gateway on a thread with test venues (sor.fix.session acceptors) and an OMS client
    (sor.fix.oms), on a router configuration with `changes` applied to the test one (risk
    limits, accounts, ...). `session_changes` updates the OMS acceptor's SessionConfig."""

    __test__ = False

    def __init__(self, tmp_path: Any, *, changes: dict[str, Any] | None = None,
                 venue_names: tuple[str, ...] = ("XNAS", "BATS"), mode: str = "fill",
                 parts: int = 1, oms_begin_string: str = "FIX.4.4",
                 session_changes: dict[str, Any] | None = None,
                 venue_session_changes: dict[str, Any] | None = None,
                 policy: str | None = None, policy_params: dict[str, float] | None = None,
                 models: Any = None, risk_report_interval_s: float = 5.0,
                 oms_store: str | None = None, start_oms: bool = True,
                 gateway_options: dict[str, Any] | None = None) -> None:
        from sor.fix.gateway import Gateway

        self.tmp_path = tmp_path
        self.venues = VenueSet(os.path.join(str(tmp_path), "venues"), venue_names, mode=mode,
                               parts=parts)
        sessions = self.venues.router_sessions(begin_string=oms_begin_string)
        self.sessions = []
        for config in sessions:
            if config.application == "oms" and session_changes:
                config = config.replace(**session_changes)
            if config.application == "venue" and venue_session_changes:
                config = config.replace(**venue_session_changes)
            self.sessions.append(config)
        self.state_dir = state_dir(tmp_path)
        self.engine_name = guard_engine_name()
        self.config = with_changes(router_config(self.engine_name), changes or {})
        self.options = {"policy": policy, "policy_params": policy_params, "models": models,
                        "risk_report_interval_s": risk_report_interval_s,
                        **(gateway_options or {})}
        self.gateway = Gateway(self.config, self.sessions, state_dir=self.state_dir,
                               **self.options)
        self.gateway.start_thread()
        wait_until(lambda: all(self.gateway.sessions[n].is_logged_on for n in venue_names), 10,
                   "venue logons")
        self.oms_begin_string = oms_begin_string
        self.oms_store = oms_store or os.path.join(str(tmp_path), "oms")
        self.oms: Any = None
        if start_oms:
            self.start_oms()

    def start_oms(self) -> Any:
        """Starts (again) the OMS client on its store; returns it."""
        from sor.fix.oms import OmsClient

        self.oms = OmsClient(port=self.gateway.oms_port, begin_string=self.oms_begin_string,
                             store_dir=self.oms_store).start()
        self.oms.wait_logged_on()
        return self.oms

    def book(self, asks, bids=(), first_order_id: int = 1, instrument_id: int = 0) -> None:
        """Publishes add orders to the engine and waits until it applied them."""
        engine = self.gateway.engine
        engine.wait_idle()
        engine.publish_market_data(book_events(asks, bids, instrument_id=instrument_id,
                                               first_order_id=first_order_id))
        engine.wait_idle()

    def restart(self) -> None:
        """Closes the gateway (what a kill leaves in its journal) and starts a new one on the
        same state folder; the OMS client reconnects with its store."""
        from sor.fix.gateway import Gateway

        if self.oms is not None:
            self.oms.close()
            self.oms = None
        self.gateway.close()
        self.gateway = Gateway(self.config, self.sessions, state_dir=self.state_dir,
                               **self.options)
        self.gateway.start_thread()
        wait_until(lambda: all(s.is_logged_on for s in self.gateway.sessions.values()
                               if s.config.application == "venue"), 10, "venue logons")
        self.start_oms()

    def reports_for(self, cl_ord_id: str) -> list[Any]:
        """Returns the reports the OMS got for order `cl_ord_id`."""
        return list(self.oms.order(cl_ord_id).reports)

    def close(self) -> None:
        """Stops the OMS client, the gateway and the venues."""
        if self.oms is not None:
            self.oms.close()
        self.gateway.close()
        self.venues.close()


def live_config(engine_name: str):
    """Returns the embedded router configuration for a router over the simulated venues."""
    return with_changes(default_config(), {
        "engine.name": engine_name, "engine.idle_strategy": "yield",
        "risk.max_open_orders": 10_000, "risk.max_orders_per_second": 100_000,
        "risk.max_messages_per_second": 100_000,
        "risk.max_order_notional_usd": 10_000_000.0})


def live_sessions(venues: Any) -> list[SessionConfig]:
    """Returns a router's sessions to a sor.fix.venue.VenueServer: an OMS acceptor (port 0)
    and one initiator per simulated venue."""
    sessions = [SessionConfig(name="OMS", role="acceptor", application="oms",
                              sender_comp_id="SOR", target_comp_id="OMS", host="127.0.0.1",
                              port=0, store_dir="fix")]
    for config in venues.session_configs:
        venue = config.venue or config.sender_comp_id
        host, port = venues.fix_address(venue)
        sessions.append(SessionConfig(
            name=venue, role="initiator", application="venue", venue=venue,
            begin_string=config.begin_string, sender_comp_id=config.target_comp_id,
            target_comp_id=config.sender_comp_id, host=host, port=port, store_dir="fix",
            reconnect_interval_s=0.2))
    return sessions


class LiveRouters:
    """Routers over the simulated venues (sor.fix.venue.VenueServer, real-time market, UDP
    market data), each with an OMS client; ``make()`` starts one, ``close()`` stops all."""

    __test__ = False

    def __init__(self, tmp_path: Any) -> None:
        self.tmp_path = tmp_path
        self.made: list[list[Any]] = []

    def make(self, policy: str | None = "ml_router", seed: int = 7,
             changes: dict[str, Any] | None = None,
             **gateway_options: Any) -> tuple[Any, Any, Any]:
        """Returns (gateway, venues, oms) started: a hosted policy with the shipped models,
        or the built-in taker when `policy` is None; `changes` apply to the configuration."""
        from sor.fix.gateway import Gateway
        from sor.fix.oms import OmsClient
        from sor.fix.venue.server import VenueServer
        from sor.models.registry import default_models_dir

        config = with_changes(live_config(guard_engine_name()), changes or {})
        venues = VenueServer(router_config=config, fix_port=0, md_port=0, seed=seed).start()
        entry: list[Any] = [venues, None, None]
        self.made.append(entry)
        gateway = Gateway(config, live_sessions(venues),
                          state_dir=state_dir(self.tmp_path, f"router{len(self.made)}"),
                          market_data=venues.md_address, policy=policy,
                          models=default_models_dir() if policy else None, **gateway_options)
        entry[1] = gateway
        gateway.start_thread()
        wait_until(lambda: all(s.is_logged_on for s in gateway.sessions.values()
                               if s.config.application == "venue"), 10, "venue logons")
        wait_until(lambda: gateway.market_data_receiver.live, 10, "market data")
        oms = OmsClient(port=gateway.oms_port,
                        store_dir=os.path.join(str(self.tmp_path), f"oms{len(self.made)}"))
        entry[2] = oms
        oms.start().wait_logged_on()
        return gateway, venues, oms

    def close(self) -> None:
        """Stops every OMS client, router and venue server made."""
        for venues, gateway, oms in self.made:
            if oms is not None:
                oms.close()
            if gateway is not None:
                gateway.close()
            venues.close()
        self.made.clear()
