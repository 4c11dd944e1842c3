"""The observation schema of the execution environment: one named, ordered list of features with
their units, scales and bounds, and a version hash over all of it.

This is the single definition used by training (``sor.rl.ExecutionEnv`` builds its observation
``Box`` from it) and by serving (a policy carries ``schema.version_hash`` and is refused when
the hash differs). Every feature is ``clip(raw_value_in_unit * scale, low, high)``; the
``description`` of each feature says how the raw value is measured. Book features are
side-relative: "far" is the side the parent order takes from (the ask for a buy), "near" the
side it would join passively (the bid for a buy), so a sell is the mirror image of a buy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sor.errors import UsageError

SCHEMA_NAME = "sor.rl.execution"
# Bump when a formula changes without a name, unit, scale or bound changing (the hash covers those).
SCHEMA_REVISION = 1


@dataclass(frozen=True)
class Feature:
    """One observation feature: ``clip(raw * scale, low, high)`` where raw is in ``unit``."""

    name: str
    unit: str
    scale: float
    low: float
    high: float
    description: str


@dataclass(frozen=True)
class ObservationSchema:
    """The ordered features of an observation vector, and the hash that identifies them."""

    name: str
    revision: int
    features: tuple[Feature, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Returns the feature names in observation order."""
        return tuple(f.name for f in self.features)

    @property
    def size(self) -> int:
        """Returns the number of features."""
        return len(self.features)

    @property
    def low(self) -> np.ndarray:
        """Returns the lower bounds, float32, in observation order."""
        return np.array([f.low for f in self.features], dtype=np.float32)

    @property
    def high(self) -> np.ndarray:
        """Returns the upper bounds, float32, in observation order."""
        return np.array([f.high for f in self.features], dtype=np.float32)

    @property
    def scale(self) -> np.ndarray:
        """Returns the scales (raw unit to feature value), float64, in observation order."""
        return np.array([f.scale for f in self.features], dtype=np.float64)

    @property
    def version_hash(self) -> str:
        """Returns 16 hex digits of SHA-256 over the name, revision and every feature's name,
        unit, scale and bounds, in order."""
        text = "\n".join([self.name, str(self.revision)] +
                         [f"{f.name}|{f.unit}|{f.scale!r}|{f.low!r}|{f.high!r}"
                          for f in self.features])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def index(self, name: str) -> int:
        """Returns the position of feature ``name``; raises UsageError naming close matches."""
        for position, feature in enumerate(self.features):
            if feature.name == name:
                return position
        close = [n for n in self.names if name.split(".")[-1] in n][:5]
        raise UsageError(f"no feature {name!r} in schema {self.name}; similar: {close}")

    def as_dict(self, observation: np.ndarray) -> dict[str, float]:
        """Returns ``{name: value}`` for one observation vector (for reading and debugging)."""
        if observation.shape != (self.size,):
            raise UsageError(f"expected an observation of shape ({self.size},), "
                             f"got {observation.shape}")
        return {name: float(value) for name, value in zip(self.names, observation)}


def _global_features(depth_levels: int) -> list[Feature]:
    features = [
        Feature("side", "sign", 1.0, -1.0, 1.0,
                "+1 for a buy parent order, -1 for a sell."),
        Feature("parent_quantity_log10_lots", "log10 round lots", 1.0, 0.0, 7.0,
                "log10 of the parent quantity in round lots (lot_shares)."),
        Feature("time_remaining_fraction", "fraction", 1.0, 0.0, 1.0,
                "Decision steps left before the horizon over the episode's steps."),
        Feature("quantity_remaining_fraction", "fraction", 1.0, 0.0, 1.0,
                "Parent shares not yet filled over the parent quantity."),
        Feature("open_quantity_fraction", "fraction", 1.0, 0.0, 1.0,
                "Shares in our open child orders (resting or in flight) over the parent."),
        Feature("schedule_deviation", "fraction", 1.0, -1.0, 1.0,
                "Executed fraction minus elapsed time fraction: > 0 ahead of a linear schedule."),
        Feature("shortfall_bps", "bps of arrival notional", 0.01, -10.0, 10.0,
                "Implementation shortfall so far (fills vs the arrival mid, plus fees), in bps "
                "of the parent's arrival notional, times 0.01."),
        Feature("mid_move_bps", "bps of the arrival mid", 0.1, -20.0, 20.0,
                "Move of the NBBO mid since arrival, in bps, signed so > 0 is against us "
                "(up for a buy), times 0.1."),
        Feature("spread_grid_ticks", "grid ticks", 1.0, 0.0, 20.0,
                "NBBO spread in ticks of the finest lit quoting grid (20 when one-sided)."),
        Feature("touch_imbalance", "fraction", 1.0, -1.0, 1.0,
                "(near - far) / (near + far) of the NBBO sizes, all lit venues."),
        Feature("volatility_bps_per_sqrt_s", "bps per sqrt(second)", 1.0, 0.0, 20.0,
                "Realised volatility of the NBBO mid over the trailing window: sqrt(sum of "
                "squared mid returns in bps / window seconds)."),
    ]
    for side in ("far", "near"):
        for level in range(1, depth_levels + 1):
            features.append(Feature(
                f"{side}_depth_level_{level}", "parent quantities", 1.0, 0.0, 20.0,
                f"Displayed shares on all lit venues at the {side} touch"
                f"{'' if level == 1 else f' + {level - 1} grid ticks (away from the spread)'}"
                ", over the parent quantity."))
    return features


def _venue_features(venue: str) -> list[Feature]:
    return [
        Feature(f"{venue}.take_fee_bps", "bps of the arrival mid", 1.0, -5.0, 5.0,
                "Fee per share of a TAKE child here (taker fee, or the midpoint fee in a dark "
                "pool) in bps of the arrival mid price."),
        Feature(f"{venue}.post_fee_bps", "bps of the arrival mid", 1.0, -5.0, 5.0,
                "Fee per share of a POST child here (maker fee; negative is a rebate; 0 in a "
                "dark pool where POST is not allowed)."),
        Feature(f"{venue}.mid_fee_bps", "bps of the arrival mid", 1.0, -5.0, 5.0,
                "Fee per share of a MID child here (the midpoint fee)."),
        Feature(f"{venue}.latency_ms", "milliseconds", 1.0, 0.0, 10.0,
                "Order-entry plus acknowledgement latency of the venue (base, no jitter)."),
        Feature(f"{venue}.is_dark", "flag", 1.0, 0.0, 1.0, "1 for a dark pool, 0 for lit."),
        Feature(f"{venue}.fill_rate", "fraction", 1.0, 0.0, 1.0,
                "Exponentially weighted filled fraction of our finished child orders here "
                "(0.5 before the first one finishes)."),
        Feature(f"{venue}.far_touch_parent_quantity", "parent quantities", 1.0, 0.0, 20.0,
                "Shares this venue displays at the NBBO far price over the parent quantity "
                "(0 when its best is worse, and in a dark pool)."),
        Feature(f"{venue}.near_touch_parent_quantity", "parent quantities", 1.0, 0.0, 20.0,
                "Shares this venue displays at the NBBO near price over the parent quantity."),
        Feature(f"{venue}.has_open_order", "flag", 1.0, 0.0, 1.0,
                "1 when we have an open child order on this venue."),
    ]


def execution_observation_schema(venue_names: Sequence[str],
                                 depth_levels: int = 3) -> ObservationSchema:
    """Returns the schema for a market with ``venue_names`` (in venue-id order) and
    ``depth_levels`` consolidated price levels per side."""
    if depth_levels < 1:
        raise UsageError(f"depth_levels must be at least 1, got {depth_levels}")
    if len(set(venue_names)) != len(venue_names) or not venue_names:
        raise UsageError(f"venue names must be distinct and not empty, got {list(venue_names)}")
    features = _global_features(depth_levels)
    for venue in venue_names:
        features.extend(_venue_features(venue))
    return ObservationSchema(SCHEMA_NAME, SCHEMA_REVISION, tuple(features))

