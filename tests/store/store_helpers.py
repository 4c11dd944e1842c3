"""Shared helpers of the store tests: real journals (the engine routing in the simulator),
simulated market data, a slow Python top-of-book reference, and a snapshot of a store's
files."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from sor import _core

VENUE_NAMES = {0: "XNAS", 1: "BATS", 2: "EDGX", 3: "IEXG", 4: "DARK"}
TRADING_DAY = "2023-11-15"  # the simulator's session date (session start 14:30 UTC)
METADATA = {"trading_day": TRADING_DAY,
            "venues": {str(k): v for k, v in VENUE_NAMES.items()},
            "instruments": {"0": "AAPL"}}
DAY_NS = 86_400 * 1_000_000_000


def routed(seed: int = 3, minutes: float = 2.0, name: str = "sorstore") -> Any:
    """Returns a real routed session (engine + shipped models + simulated venues)."""
    from sor.monitor.simulate import route_session

    return route_session("default", seed=seed, minutes=minutes, start_offset_s=60.0,
                         parent_quantity=60_000, parent_horizon_s=120.0, step_s=0.5, name=name)


def write_journal(path: Path, session: Any, *, metadata: dict[str, Any] | None,
                  decisions: slice = slice(None), audit: slice = slice(None),
                  run_id: str | None = None) -> Path:
    """Writes (or appends to) a journal with part of a session's records and one event."""
    from sor.monitor import AuditJournal

    with AuditJournal(path, metadata=metadata, run_id=run_id) as journal:
        journal.append_decisions(session.decisions[decisions])
        journal.append_audit(session.audit[audit])
        journal.append_event("operator_action", action="note", operator="test", reason="x")
    return path


def market_events(seconds: float = 60.0, seed: int = 1) -> tuple[dict[int, np.ndarray], int]:
    """Returns the simulated default market's events per lit venue over `seconds` and the
    session's UTC midnight (ns)."""
    from sor.sim import Market

    with Market("default", seed=seed, record_events=True, record_trades=False) as market:
        market.run_until(market.session_start_ns + int(seconds * 1e9))
        events = {v: market.events(v) for v in range(4)}
        midnight = market.session_start_ns - market.session_start_ns % DAY_NS
    return events, midnight


def reference_tops(events: np.ndarray, book_type: str) -> list[tuple[int, ...]]:
    """Returns the top-of-book changes of one venue and instrument, computed slowly in Python
    independently of the C++ books: after each group of events sharing a ts_recv, (ts_recv,
    bid price, bid quantity, ask price, ask quantity) when it changed (None: empty side)."""
    buy, sell = int(_core.Side.BUY), int(_core.Side.SELL)
    kinds = _core.EventKind
    orders: dict[int, list[int]] = {}  # order id -> [side, price, quantity]
    levels: dict[int, dict[int, int]] = {buy: {}, sell: {}}
    out: list[tuple[int, ...]] = []
    last = None
    events = events[np.argsort(events["ts_recv"], kind="stable")]
    rows = events.tolist()
    names = events.dtype.names
    for k, raw in enumerate(rows):
        e = dict(zip(names, raw))
        kind = e["kind"]
        if book_type == "L2":
            if kind == int(kinds.LEVEL):
                side_levels = levels[e["side"]]
                if e["quantity"] == 0:
                    side_levels.pop(e["price_ticks"], None)
                else:
                    side_levels[e["price_ticks"]] = e["quantity"]
        elif kind == int(kinds.ADD):
            orders[e["order_id"]] = [e["side"], e["price_ticks"], e["quantity"]]
        elif kind in (int(kinds.CANCEL), int(kinds.EXECUTE)):
            order = orders[e["order_id"]]
            order[2] -= e["quantity"]
            if order[2] <= 0:
                del orders[e["order_id"]]
        elif kind == int(kinds.DELETE):
            del orders[e["order_id"]]
        elif kind == int(kinds.REPLACE):
            side = orders.pop(e["order_id"])[0]
            orders[e["related_id"]] = [side, e["price_ticks"], e["quantity"]]
        if k + 1 < len(rows) and rows[k + 1][1] == raw[1]:
            continue  # same ts_recv: one group
        if book_type == "L3":
            levels = {buy: {}, sell: {}}
            for side, price, quantity in orders.values():
                levels[side][price] = levels[side].get(price, 0) + quantity
        bid = max(levels[buy]) if levels[buy] else None
        ask = min(levels[sell]) if levels[sell] else None
        top = (bid, levels[buy][bid] if bid is not None else 0,
               ask, levels[sell][ask] if ask is not None else 0)
        if top != last:
            last = top
            out.append((int(raw[1]), *top))
    return out


def snapshot(root: Path) -> dict[str, str]:
    """Returns every file under `root` (but the lock file) with the SHA-256 of its bytes."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "_lock"}
