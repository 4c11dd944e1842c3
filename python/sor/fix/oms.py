"""A small OMS: one FIX initiator session to the router that sends parent orders, cancels and
replaces, and collects the ExecutionReports and OrderCancelRejects that answer them, order by
order. Used by ``sor demo``, the tests and the benchmarks.

The session runs on its own reactor thread; every method here may be called from any thread.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from sor.errors import UsageError
from sor.fix import codec
from sor.fix.config import SessionConfig
from sor.fix.reactor import Reactor
from sor.fix.session import Application, FixSession

_SIDES = {"buy": "1", "sell": "2", "short": "5", "sell_short": "5", "short_exempt": "6",
          "1": "1", "2": "2", "5": "5", "6": "6"}
_DONE = frozenset(("2", "3", "4", "8", "C"))


class Report:
    """One ExecutionReport (35=8) or OrderCancelReject (35=9) from the router, parsed."""

    __slots__ = ("msg_type", "seq_num", "poss_dup", "cl_ord_id", "orig_cl_ord_id", "order_id",
                 "exec_id", "exec_type", "ord_status", "quantity", "last_quantity",
                 "last_price", "cum_quantity", "leaves_quantity", "avg_price", "text",
                 "ord_rej_reason", "cxl_rej_reason", "response_to", "last_market", "liquidity",
                 "received_ns", "raw")

    def __init__(self, message: Any, received_ns: int) -> None:
        get = message.get
        self.msg_type = message.msg_type
        self.seq_num = message.seq_num
        self.poss_dup = message.poss_dup
        self.cl_ord_id = get(11)
        self.orig_cl_ord_id = get(41)
        self.order_id = get(37)
        self.exec_id = get(17)
        self.exec_type = get(150)
        self.ord_status = get(39)
        self.quantity = _int(get(38))
        self.last_quantity = _int(get(32))
        self.last_price = get(31)
        self.cum_quantity = _int(get(14))
        self.leaves_quantity = _int(get(151))
        self.avg_price = get(6)
        self.text = get(58)
        self.ord_rej_reason = _int(get(103), None)
        self.cxl_rej_reason = _int(get(102), None)
        self.response_to = _int(get(434), None)
        self.last_market = get(30)                 # the venue of a fill (LastMkt)
        self.liquidity = _int(get(851), None)      # 1 added, 2 removed (FIX 4.4 sessions)
        self.received_ns = received_ns
        self.raw = message.raw

    @property
    def is_fill(self) -> bool:
        """Returns whether the report carries an execution (4.4 ExecType F, 4.2 1 or 2)."""
        return self.msg_type == "8" and self.exec_type in ("F", "1", "2")

    def __repr__(self) -> str:
        what = f"150={self.exec_type}" if self.msg_type == "8" else "35=9"
        return (f"<Report {what} 39={self.ord_status} 11={self.cl_ord_id} 14={self.cum_quantity} "
                f"151={self.leaves_quantity} 6={self.avg_price} 17={self.exec_id}>")


def _int(text: str | None, default: Any = 0) -> Any:
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        return int(float(text))


class OrderView:
    """What the OMS knows of one of its orders, from the reports it received."""

    def __init__(self, cl_ord_id: str, symbol: str, side: str, quantity: int) -> None:
        self.cl_ord_id = cl_ord_id            # the first ClOrdID (the key)
        self.current_cl_ord_id = cl_ord_id    # the latest accepted ClOrdID (after replaces)
        self.symbol = symbol
        self.side = side
        self.quantity = quantity
        self.order_id: str | None = None
        self.ord_status: str | None = None
        self.cum_quantity = 0
        self.leaves_quantity = quantity
        self.avg_price: str | None = None
        self.fills: list[tuple[int, str]] = []     # (LastQty, LastPx)
        self.exec_ids: list[str] = []
        self.reports: list[Report] = []
        self.cancel_rejects: list[Report] = []
        self.duplicate_exec_ids = 0

    @property
    def done(self) -> bool:
        """Returns whether the order reached a final status (filled, cancelled, done for day,
        rejected, expired)."""
        return self.ord_status in _DONE

    @property
    def filled_quantity(self) -> int:
        """Returns the sum of LastQty over the fills received."""
        return sum(q for q, _ in self.fills)

    def __repr__(self) -> str:
        return (f"<OrderView {self.cl_ord_id} 39={self.ord_status} {self.cum_quantity}/"
                f"{self.quantity} avg={self.avg_price} fills={len(self.fills)}>")


class OmsClient(Application):
    """An OMS initiator session to the router (see the module docstring).

    ``OmsClient(host, port)`` logs on as SenderCompID ``sender_comp_id`` to ``target_comp_id``;
    `store_dir` keeps its message store (a temporary folder, removed by close(), when None).
    ``start()`` connects on a reactor thread; use as a context manager or call close().
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9878, *,
                 sender_comp_id: str = "OMS", target_comp_id: str = "SOR",
                 begin_string: str = "FIX.4.4", store_dir: str | os.PathLike[str] | None = None,
                 reset_on_logon: bool = False, heartbeat_interval_s: int = 30,
                 reconnect_interval_s: float = 0.2, config: SessionConfig | None = None,
                 cl_ord_id_prefix: str | None = None) -> None:
        self._temporary = None
        if config is None:
            if store_dir is None:
                self._temporary = tempfile.mkdtemp(prefix="sor-oms-")
                store_dir = self._temporary
            config = SessionConfig(name=f"{sender_comp_id}-{target_comp_id}", role="initiator",
                                   begin_string=begin_string, sender_comp_id=sender_comp_id,
                                   target_comp_id=target_comp_id, host=host, port=int(port),
                                   heartbeat_interval_s=heartbeat_interval_s,
                                   reset_on_logon=reset_on_logon, store_dir=os.fspath(store_dir),
                                   reconnect_interval_s=reconnect_interval_s)
        self.config = config
        self.reactor = Reactor()
        self.session = FixSession(config, self)
        self._lock = threading.Condition()
        self._orders: dict[str, OrderView] = {}
        self._roots: dict[str, str] = {}
        self._by_order_id: dict[str, str] = {}
        self.reports: list[Report] = []
        self.business_rejects: list[Any] = []
        self.session_rejects: list[Any] = []
        self.logons = 0
        self._prefix = cl_ord_id_prefix or f"O{time.time_ns() // 1_000_000 % 10**9}-"
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self.listeners: list[Callable[[Report], None]] = []

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> OmsClient:
        """Connects to the router on a reactor thread; returns self."""
        if self._thread is not None:
            raise UsageError("the OMS client is already started")
        self.reactor.connect(self.session)
        self._thread = threading.Thread(target=self.reactor.run, name="sor-oms", daemon=True)
        self._thread.start()
        return self

    def wait_logged_on(self, timeout_s: float = 10.0) -> None:
        """Waits until the session is logged on; raises TimeoutError."""
        self.wait_for(lambda: self.session.is_logged_on, timeout_s, "logon")

    def close(self, logout_timeout_s: float = 2.0) -> None:
        """Logs out, stops the reactor thread and closes the session (and a temporary store)."""
        if self._thread is not None:
            done = threading.Event()

            def logout() -> None:
                if self.session.is_logged_on:
                    self.session.logout("OMS client closing")
                done.set()

            self.reactor.call_soon_threadsafe(logout)
            done.wait(2.0)
            deadline = time.monotonic() + logout_timeout_s
            while self.session.connected and time.monotonic() < deadline:
                time.sleep(0.01)
            self.reactor.stop()
            self._thread.join()
            self._thread = None
        self.reactor.close()
        self.session.close()
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def __enter__(self) -> OmsClient:
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- sending ----------------------------------------------------------------------------

    def send(self, msg_type: str, body: Iterable[tuple[int, Any]]) -> None:
        """Sends an application message on the reactor thread (stored while not logged on)."""
        fields = list(body)
        self.reactor.call_soon_threadsafe(lambda: self.session.send(msg_type, fields))

    def next_cl_ord_id(self) -> str:
        """Returns a fresh ClOrdID."""
        return f"{self._prefix}{next(self._ids)}"

    def new_order(self, symbol: str, side: str, quantity: int, *, price: str | float | None = None,
                  cl_ord_id: str | None = None, time_in_force: str | None = None,
                  expire_time_ns: int | None = None, urgency: int | None = None,
                  target_strategy: int | None = None,
                  extra: Iterable[tuple[int, Any]] = ()) -> str:
        """Sends a NewOrderSingle (limit when `price` is given, else market); returns its
        ClOrdID. `side` is buy, sell, short, short_exempt or a FIX code."""
        side_code = _SIDES.get(str(side).lower())
        if side_code is None:
            raise UsageError(f"side must be one of {sorted(_SIDES)}, got {side!r}")
        cl_ord_id = cl_ord_id or self.next_cl_ord_id()
        body: list[tuple[int, Any]] = [(11, cl_ord_id), (21, "1"), (55, symbol),
                                       (54, side_code), (38, quantity),
                                       (40, "1" if price is None else "2")]
        if price is not None:
            body.append((44, str(price)))
        if time_in_force is not None:
            body.append((59, time_in_force))
        if expire_time_ns is not None:
            body.append((126, codec.format_utc_timestamp(int(expire_time_ns))))
        if urgency is not None:
            body.append((7928, int(urgency)))
        if target_strategy is not None:
            body.append((847, int(target_strategy)))
        body.append((60, codec.format_utc_timestamp(time.time_ns())))
        body += list(extra)
        with self._lock:
            self._orders[cl_ord_id] = OrderView(cl_ord_id, symbol, side_code, int(quantity))
            self._roots[cl_ord_id] = cl_ord_id
        self.send("D", body)
        return cl_ord_id

    def cancel(self, cl_ord_id: str, *, new_cl_ord_id: str | None = None) -> str:
        """Sends an OrderCancelRequest for order `cl_ord_id` (any of its ClOrdIDs); returns the
        request's ClOrdID."""
        view = self.order(cl_ord_id)
        request = new_cl_ord_id or self.next_cl_ord_id()
        with self._lock:
            self._roots[request] = view.cl_ord_id
        self.send("F", [(41, view.current_cl_ord_id), (11, request), (55, view.symbol),
                        (54, view.side), (38, view.quantity),
                        (60, codec.format_utc_timestamp(time.time_ns()))])
        return request

    def replace(self, cl_ord_id: str, quantity: int, *, price: str | float | None = None,
                new_cl_ord_id: str | None = None) -> str:
        """Sends an OrderCancelReplaceRequest (new quantity, limit `price` or market); returns
        the request's ClOrdID."""
        view = self.order(cl_ord_id)
        request = new_cl_ord_id or self.next_cl_ord_id()
        with self._lock:
            self._roots[request] = view.cl_ord_id
        body: list[tuple[int, Any]] = [(41, view.current_cl_ord_id), (11, request), (21, "1"),
                                       (55, view.symbol), (54, view.side), (38, int(quantity)),
                                       (40, "1" if price is None else "2")]
        if price is not None:
            body.append((44, str(price)))
        body.append((60, codec.format_utc_timestamp(time.time_ns())))
        self.send("G", body)
        return request

    # --- reports ----------------------------------------------------------------------------

    def order(self, cl_ord_id: str) -> OrderView:
        """Returns the view of the order one of whose ClOrdIDs is `cl_ord_id`."""
        with self._lock:
            root = self._roots.get(cl_ord_id)
            if root is None:
                raise UsageError(f"no order with ClOrdID {cl_ord_id!r}")
            return self._orders[root]

    @property
    def orders(self) -> list[OrderView]:
        """Every order sent, in order."""
        with self._lock:
            return list(self._orders.values())

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 10.0,
                 what: str = "condition") -> None:
        """Waits until `predicate()` is true (checked on every report); raises TimeoutError."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"OMS client: no {what} within {timeout_s} s")
                self._lock.wait(min(remaining, 0.05))

    def wait_done(self, cl_ord_id: str, timeout_s: float = 10.0) -> OrderView:
        """Waits until the order reaches a final status; returns its view."""
        view = self.order(cl_ord_id)
        self.wait_for(lambda: view.done, timeout_s, f"final report for {cl_ord_id}")
        return view

    # --- Application ------------------------------------------------------------------------

    def on_logon(self, session: Any) -> None:
        """Counts the logon and wakes waiters."""
        with self._lock:
            self.logons += 1
            self._lock.notify_all()

    def on_logout(self, session: Any, reason: str) -> None:
        """Wakes waiters."""
        with self._lock:
            self._lock.notify_all()

    def on_session_reject(self, session: Any, message: Any) -> None:
        """Keeps the session-level Reject."""
        with self._lock:
            self.session_rejects.append(message)
            self._lock.notify_all()

    def on_message(self, session: Any, message: Any) -> None:
        """Applies an ExecutionReport or OrderCancelReject to its order's view."""
        if message.msg_type == "j":
            with self._lock:
                self.business_rejects.append(message)
                self._lock.notify_all()
            return
        if message.msg_type not in ("8", "9"):
            return
        report = Report(message, time.time_ns())
        with self._lock:
            self.reports.append(report)
            root = self._roots.get(report.cl_ord_id or "") or \
                self._roots.get(report.orig_cl_ord_id or "") or \
                self._by_order_id.get(report.order_id or "")
            view = self._orders.get(root) if root else None
            if view is not None:
                self._apply(view, report)
            self._lock.notify_all()
        for listener in self.listeners:
            listener(report)

    def _apply(self, view: OrderView, report: Report) -> None:
        view.reports.append(report)
        if report.msg_type == "9":
            view.cancel_rejects.append(report)
            return
        if report.exec_id in view.exec_ids:
            view.duplicate_exec_ids += 1
            return
        view.exec_ids.append(report.exec_id)
        if report.order_id and report.order_id != "NONE":
            view.order_id = report.order_id
            self._by_order_id[report.order_id] = view.cl_ord_id
        view.ord_status = report.ord_status
        view.cum_quantity = report.cum_quantity
        view.leaves_quantity = report.leaves_quantity
        view.avg_price = report.avg_price
        if report.is_fill:
            view.fills.append((report.last_quantity, report.last_price or "0"))
        if report.exec_type == "5":
            view.current_cl_ord_id = report.cl_ord_id or view.current_cl_ord_id
            view.quantity = report.quantity


__all__ = ["OmsClient", "OrderView", "Report"]
