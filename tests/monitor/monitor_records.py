"""Record builders for the monitor tests: decision and audit arrays with the ring dtypes, guard
settings (GuardrailSettings), and a real routed session."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from sor import _core
from sor.features import FEATURE_SCHEMA
from sor.ring import AUDIT_RECORD_DTYPE, DECISION_RECORD_DTYPE

EXECUTION = int(_core.AuditKind.EXECUTION)
CHILD_ORDER = int(_core.AuditKind.CHILD_ORDER)
FILL, ACK = int(_core.ExecKind.FILL), int(_core.ExecKind.ACK)
CANCELLED, REJECTED = int(_core.ExecKind.CANCELLED), int(_core.ExecKind.REJECTED)
BUY, SELL = int(_core.Side.BUY), int(_core.Side.SELL)
SENT = 4


def guard_settings(**changes: Any) -> Any:
    """Returns GuardrailSettings with the measured guard defaults (MEASURED_DEFAULTS) and
    `changes`."""
    from sor.config import GuardrailSettings
    from sor.monitor.guards import MEASURED_DEFAULTS

    return dataclasses.replace(GuardrailSettings(), **{**MEASURED_DEFAULTS, **changes})


def decisions(count: int, *, start_sequence: int = 1, seed: int = 0, sent: bool = True,
              model_mask: int = 0b1111, venue_ids: Any = 0, quantity: int = 100,
              fill_probability: Any = 0.5, parent_order_id: int = 1, side: int = BUY,
              arrival_mid_ticks: float = 1_000_000.0, features: np.ndarray | None = None,
              first_child_id: int | None = None) -> np.ndarray:
    """Returns `count` decision records: children sent (ids from `first_child_id`, default the
    sequence), venues and predicted fill probabilities given per record or once."""
    rng = np.random.default_rng(seed)
    d = np.zeros(count, DECISION_RECORD_DTYPE)
    sequence = np.arange(start_sequence, start_sequence + count, dtype=np.uint64)
    d["sequence"] = sequence
    d["ts_ns"] = 1_700_000_000_000_000_000 + sequence.astype(np.int64) * 1_000_000
    d["parent_order_id"] = parent_order_id
    first = start_sequence if first_child_id is None else first_child_id
    if sent:
        d["child_order_id"] = np.arange(first, first + count, dtype=np.uint64)
        d["flags"] = SENT
    d["inference_ns"] = rng.integers(2_000, 50_000, count)
    c = d["context"]
    c["venue_id"] = venue_ids
    c["child_quantity"] = quantity
    c["parent_quantity"] = 10_000
    c["remaining_quantity"] = 10_000
    c["side"] = side
    c["arrival_mid_ticks"] = arrival_mid_ticks
    c["child_price_ticks"] = 1_000_100
    d["model_mask"] = model_mask
    out = np.full((count, 4), np.nan, np.float32)
    out[:, 0] = fill_probability
    out[:, 1:] = rng.normal(size=(count, 3))
    for slot in range(4):
        out[:, slot] = np.where((model_mask >> slot) & 1, out[:, slot], np.nan)
    d["model_output"] = out
    d["features"] = features if features is not None else \
        rng.normal(size=(count, FEATURE_SCHEMA.size)).astype(np.float32)
    return d


def audit(rows: list[tuple[int, int, int, int, int, int]], *, start_sequence: int = 1,
          parent_order_id: int = 1) -> np.ndarray:
    """Returns audit records from (kind, child_order_id, value_a, value_b, reference, venue)."""
    a = np.zeros(len(rows), AUDIT_RECORD_DTYPE)
    for i, (kind, child, value_a, value_b, reference, venue) in enumerate(rows):
        a[i]["sequence"] = start_sequence + i
        a[i]["ts_ns"] = 1_700_000_000_000_000_000 + (start_sequence + i) * 1_000_000
        a[i]["parent_order_id"] = parent_order_id
        a[i]["child_order_id"] = child
        a[i]["kind"] = kind
        a[i]["value_a"] = value_a
        a[i]["value_b"] = value_b
        a[i]["reference"] = reference
        a[i]["venue_id"] = venue
    return a


def fills_for(d: np.ndarray, filled_fraction: np.ndarray, *, price_ticks: int = 1_000_100,
              start_sequence: int = 1) -> np.ndarray:
    """Returns audit EXECUTION records that fill each child of `d` to `filled_fraction` of its
    quantity (rounded down) and then cancel what is left (nothing when filled in full)."""
    rows = []
    for record, fraction in zip(d, np.broadcast_to(filled_fraction, len(d))):
        quantity = int(record["context"]["child_quantity"])
        child = int(record["child_order_id"])
        venue = int(record["context"]["venue_id"])
        filled = int(quantity * float(fraction))
        if filled:
            rows.append((EXECUTION, child, price_ticks, filled, FILL, venue))
        if filled < quantity:
            rows.append((EXECUTION, child, 0, 0, CANCELLED, venue))
    return audit(rows, start_sequence=start_sequence,
                 parent_order_id=int(d["parent_order_id"][0]) if len(d) else 1)


def routed_session(name: str) -> Any:
    """Returns a real routed session (see sor.monitor.simulate.route_session)."""
    from sor.monitor.simulate import route_session

    return route_session("default", seed=3, minutes=1.5, start_offset_s=120.0,
                         parent_quantity=60_000, parent_horizon_s=120.0, name=name)
