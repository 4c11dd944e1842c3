"""Helpers for the risk tests: a real engine thread driven through its rings with a small book
(bids at 100.00; offers of 300 shares at 100.01 on XNAS and BATS and at 100.02 on EDGX), and
readers of what it answered."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from sor.config import default_config, with_changes
from sor.engine import AuditKind, Engine, RejectReason
from sor.ring import COMMAND_DTYPE, EXEC_REPORT_DTYPE, MD_EVENT_DTYPE

ASK = 1_000_100
EDGX_ASK = 1_000_200
BID = 1_000_000


def shm_entries(prefix: str) -> list[str]:
    return sorted(name for name in os.listdir("/dev/shm") if name.startswith(prefix))


def config(changes: dict[str, Any] | None = None, **risk: Any):
    """The default configuration with `changes` (key paths) and `risk` keys set."""
    values = {f"risk.{key}": value for key, value in risk.items()}
    values.update(changes or {})
    return with_changes(default_config(), values) if values else default_config()


def book_events(*, order_id: int = 100) -> np.ndarray:
    rows = [(0, 1, BID), (0, 2, ASK), (1, 2, ASK), (2, 2, EDGX_ASK), (1, 1, BID - 100)]
    events = np.zeros(len(rows), MD_EVENT_DTYPE)
    for i, (venue, side, price) in enumerate(rows):
        events[i]["kind"] = 1
        events[i]["venue_id"] = venue
        events[i]["side"] = side
        events[i]["price_ticks"] = price
        events[i]["quantity"] = 300
        events[i]["order_id"] = order_id + i
    return events


def add(venue: int, side: int, price: int, quantity: int, order_id: int,
        instrument: int = 0) -> np.ndarray:
    """One add event."""
    event = np.zeros(1, MD_EVENT_DTYPE)
    event["kind"] = 1
    event["venue_id"] = venue
    event["side"] = side
    event["price_ticks"] = price
    event["quantity"] = quantity
    event["order_id"] = order_id
    event["instrument_id"] = instrument
    return event


def trade(price: int, quantity: int, venue: int = 0, instrument: int = 0) -> np.ndarray:
    """One printable trade (no book effect)."""
    event = np.zeros(1, MD_EVENT_DTYPE)
    event["kind"] = 7
    event["flags"] = 1
    event["venue_id"] = venue
    event["price_ticks"] = price
    event["quantity"] = quantity
    event["instrument_id"] = instrument
    return event


class Run:
    """An engine with everything it wrote collected as it goes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.audit = np.zeros(0, dtype=engine.read_audit(0).dtype)
        self.orders = np.zeros(0, dtype=engine.read_orders(0).dtype)

    def settle(self) -> None:
        """Waits until the engine consumed its inputs and collects its outputs."""
        self.engine.wait_idle()
        time.sleep(0.005)
        self.engine.wait_idle()
        self.audit = np.concatenate([self.audit, self.engine.read_audit()])
        self.orders = np.concatenate([self.orders, self.engine.read_orders()])

    def publish(self, events: np.ndarray) -> None:
        assert self.engine.publish_market_data(events) == len(events)
        self.settle()

    def command(self, **fields: Any) -> int:
        """Writes one raw command; returns its id."""
        return self.engine._command(fields.pop("kind"), **fields)

    def kinds(self, kind: Any) -> np.ndarray:
        return self.audit[self.audit["kind"] == int(kind)]

    def answer(self, command_id: int) -> tuple[str, str, int, int]:
        """The audit answer to a command: (kind, reason, value_a, value_b)."""
        rows = self.audit[(self.audit["reference"] == command_id)
                          & np.isin(self.audit["kind"], [int(AuditKind.COMMAND_ACCEPTED),
                                                         int(AuditKind.COMMAND_REJECTED),
                                                         int(AuditKind.ACCOUNT_STATE)])]
        assert len(rows) == 1, rows
        row = rows[0]
        return (AuditKind(int(row["kind"])).name, RejectReason(int(row["reason"])).name,
                int(row["value_a"]), int(row["value_b"]))

    def risk_rejects(self, parent: int | None = None) -> list[tuple[str, int, int, int]]:
        """RISK_REJECT records: (reason, value_a, value_b, venue)."""
        rows = self.kinds(AuditKind.RISK_REJECT)
        if parent is not None:
            rows = rows[rows["parent_order_id"] == parent]
        return [(RejectReason(int(r["reason"])).name, int(r["value_a"]), int(r["value_b"]),
                 int(r["venue_id"])) for r in rows]

    def done(self, parent: int) -> tuple[int, int, str] | None:
        """PARENT_DONE of a parent: (filled, how, reason), None while it works."""
        rows = self.kinds(AuditKind.PARENT_DONE)
        rows = rows[rows["parent_order_id"] == parent]
        if len(rows) == 0:
            return None
        assert len(rows) == 1
        return (int(rows[0]["value_a"]), int(rows[0]["value_b"]),
                RejectReason(int(rows[0]["reason"])).name)

    def new_children(self, parent: int | None = None) -> np.ndarray:
        rows = self.orders[self.orders["action"] == 1]
        return rows if parent is None else rows[rows["parent_order_id"] == parent]

    def cancels(self) -> np.ndarray:
        return self.orders[self.orders["action"] == 2]

    def report(self, children: np.ndarray, kind: int, quantity: int | None = None,
               price: int | None = None) -> None:
        """Sends one execution report per child (2 fill in full, 3 cancelled)."""
        reports = np.zeros(len(children), EXEC_REPORT_DTYPE)
        reports["child_order_id"] = children["child_order_id"]
        reports["parent_order_id"] = children["parent_order_id"]
        reports["venue_id"] = children["venue_id"]
        reports["kind"] = kind
        if kind == 2:
            reports["last_quantity"] = children["quantity"] if quantity is None else quantity
            reports["last_price_ticks"] = children["price_ticks"] if price is None else price
            reports["leaves_quantity"] = 0 if quantity is None else \
                children["quantity"] - quantity
        assert self.engine.send_executions(reports) == len(reports)
        self.settle()


__all__ = ["ASK", "BID", "EDGX_ASK", "COMMAND_DTYPE", "Run", "add", "book_events", "config",
           "shm_entries", "trade"]
