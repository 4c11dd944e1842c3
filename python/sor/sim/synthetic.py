"""Synthetic L3 order flow and the L2 stream it implies."""

from __future__ import annotations

import numpy as np

from sor import _core


def synthetic_order_flow(
    *,
    seed: int = 1,
    event_count: int = 100_000,
    venue_count: int = 1,
    instrument_count: int = 1,
    start_price_ticks: int = 10_000,
    start_ts_ns: int = 1_700_000_000_000_000_000,
    mean_gap_ns: float = 2_000.0,
    target_orders: int = 2_000,
) -> np.ndarray:
    """Returns a valid L3 stream over venues ``0..venue_count-1``: adds near the touch, full and
    partial cancels, executions at the front of the best level and cancel-replaces, around a
    random-walk fundamental price per instrument, with per-venue sequence numbers from 1."""
    return _core.generate_order_flow(
        seed=seed, event_count=event_count, venue_count=venue_count,
        instrument_count=instrument_count, start_price_ticks=start_price_ticks,
        start_ts_ns=start_ts_ns, mean_gap_ns=mean_gap_ns, target_orders=target_orders)


def level_updates(events: np.ndarray) -> np.ndarray:
    """Returns the price-level (LEVEL) stream a valid L3 stream implies, one event per changed
    level, with per-venue sequence numbers from 1."""
    return _core.to_level_updates(events)
