"""The Python model guards: they watch the engine's decision and audit records and switch
routing to the fallback policy (through ``trip``) when the models stop describing the market.

- **Fill-rate collapse.** Over the last ``fill_rate_window_children`` finished model-routed
  children (children whose decision ran the fill-probability model), the realised fill
  fraction (mean of filled / quantity) against the mean predicted ``fill_probability`` of the
  same children: trips when realised / predicted < ``fill_rate_floor_ratio`` with at least
  ``fill_rate_min_children`` children.
- **Venue concentration.** Over the last ``concentration_window_children`` model-routed
  children sent, the share of their shares on one venue: trips above
  ``concentration_max_share`` with at least ``concentration_min_children`` children.
- **Feature drift.** The population stability index (``sor.monitor.profile``) of the feature
  rows of the last ``drift_window_decisions`` model-routed decisions against the training
  profile, per monitored feature (``drift_features``; empty: the profile's default set): trips
  when the window is full and any feature's PSI exceeds ``drift_psi_threshold``.

Each guard trips once: it calls ``trip(reason, detail)`` and stays tripped (its window frozen)
until :meth:`ModelGuardMonitor.rearm`, which the router calls when an operator re-enables the
model; rearming also empties the windows, so the model is judged on fresh data. A ``trip`` that
raises leaves the guard armed (it fires again on the next records).

Feed it from one thread (the gateway's reactor); the executions of a child whose decision
record has not arrived yet are kept (bounded) and applied when it arrives, so the decision and
audit rings may be drained on their own schedules.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from typing import Any, Callable

import numpy as np

from sor import _core
from sor.errors import UsageError
from sor.monitor.journal import DECISION_CHILD_SENT, DECISION_NON_FINITE_ROW, DECISION_ROW_REFUSED
from sor.monitor.profile import FeatureProfile, psi

_MAX_TRACKED_CHILDREN = 1 << 17
_EXECUTION = int(_core.AuditKind.EXECUTION)
_FILL = int(_core.ExecKind.FILL)
_ENDED = (int(_core.ExecKind.CANCELLED), int(_core.ExecKind.REJECTED))
_FILL_PROBABILITY_SLOT = 0


ModelGuardReason = _core.ModelGuardReason
"""Why routing went to the fallback policy (``sor::ModelGuardReason``; ``sor.engine``'s)."""

TripCallback = Callable[[ModelGuardReason, str], Any]

MEASURED_DEFAULTS: dict[str, Any] = {
    "fill_rate_window_children": 200, "fill_rate_min_children": 100,
    "fill_rate_floor_ratio": 0.5,
    "concentration_window_children": 200, "concentration_min_children": 200,
    "concentration_max_share": 0.8,
    "drift_window_decisions": 1000, "drift_psi_threshold": 1.0, "drift_features": (),
}
"""The guard settings measured on the shipped models (docs/monitoring.md): none trips in 60
simulated minutes of any shipped scenario but the drift guard in the volatile one."""

SETTING_NAMES = (
    "fill_rate_enabled", "fill_rate_window_children", "fill_rate_min_children",
    "fill_rate_floor_ratio", "concentration_enabled", "concentration_window_children",
    "concentration_min_children", "concentration_max_share", "drift_enabled",
    "drift_window_decisions", "drift_psi_threshold", "drift_features")
"""The ``GuardrailSettings`` attributes the monitor reads."""


def _check_settings(settings: Any) -> None:
    missing = [name for name in SETTING_NAMES if not hasattr(settings, name)]
    if missing:
        raise UsageError(f"guard settings lack {missing} (expected GuardrailSettings)")
    for name in ("fill_rate_window_children", "concentration_window_children",
                 "drift_window_decisions"):
        if int(getattr(settings, name)) < 1:
            raise UsageError(f"{name} must be >= 1, got {getattr(settings, name)}")
    if not 0 < float(settings.concentration_max_share) <= 1:
        raise UsageError(f"concentration_max_share must be in (0, 1], got "
                         f"{settings.concentration_max_share}")
    if not float(settings.fill_rate_floor_ratio) >= 0:
        raise UsageError(f"fill_rate_floor_ratio must be >= 0, got "
                         f"{settings.fill_rate_floor_ratio}")
    if not float(settings.drift_psi_threshold) > 0:
        raise UsageError(f"drift_psi_threshold must be > 0, got {settings.drift_psi_threshold}")


class _Child:
    __slots__ = ("venue_id", "quantity", "predicted", "filled")

    def __init__(self, venue_id: int, quantity: int, predicted: float) -> None:
        self.venue_id = venue_id
        self.quantity = quantity
        self.predicted = predicted
        self.filled = 0


class ModelGuardMonitor:
    """The fill-rate, concentration and drift guards (see the module docs)."""

    def __init__(self, settings: Any, profile: FeatureProfile | None,
                 trip: TripCallback) -> None:
        self._lock = threading.RLock()
        self._trip = trip
        self._profile = profile
        self._children: OrderedDict[int, _Child] = OrderedDict()
        self._early: OrderedDict[int, list[Any]] = OrderedDict()  # executions before decisions
        self._tripped: dict[str, dict[str, Any] | None] = {
            "fill_rate": None, "concentration": None, "drift": None}
        self._settings: Any = None
        self.update_settings(settings)

    # --- settings -----------------------------------------------------------------------

    def update_settings(self, settings: Any) -> None:
        """Takes new settings (live): windows are resized keeping their newest entries."""
        _check_settings(settings)
        names = tuple(settings.drift_features) or (
            self._profile.default_features if self._profile is not None else ())
        if settings.drift_enabled:
            if self._profile is None:
                raise UsageError("the drift guard is enabled but no feature profile was given")
            if not names:
                raise UsageError("the drift guard is enabled but no feature is monitored "
                                 "(drift_features is empty and the profile has no default set)")
            self._profile.columns(names)  # every name must be profiled
        with self._lock:
            old = self._settings
            self._settings = settings
            fill_window = int(settings.fill_rate_window_children)
            concentration_window = int(settings.concentration_window_children)
            drift_window = int(settings.drift_window_decisions)
            if old is None:
                self._fill: deque[tuple[float, float]] = deque(maxlen=fill_window)
                self._sent: deque[tuple[int, int]] = deque(maxlen=concentration_window)
                self._venue_shares: dict[int, int] = {}
            else:
                self._fill = deque(self._fill, maxlen=fill_window)
                if self._sent.maxlen != concentration_window:
                    self._sent = deque(self._sent, maxlen=concentration_window)
                    self._venue_shares = {}
                    for venue, shares in self._sent:
                        self._venue_shares[venue] = self._venue_shares.get(venue, 0) + shares
            if old is None or tuple(old.drift_features) != tuple(settings.drift_features) or \
                    int(old.drift_window_decisions) != drift_window or \
                    bool(old.drift_enabled) != bool(settings.drift_enabled):
                self._drift_names = tuple(names) if settings.drift_enabled else ()
                self._drift_columns = (self._profile.columns(self._drift_names)
                                       if self._drift_names and self._profile is not None else [])
                self._drift_bins = [self._profile.features[n] for n in self._drift_names] \
                    if self._profile is not None else []
                self._drift_rows = np.zeros((drift_window, len(self._drift_columns)), np.int16)
                self._drift_counts = [np.zeros(len(b.fractions), np.int64)
                                      for b in self._drift_bins]
                self._drift_filled = 0
                self._drift_next = 0
                self._drift_psi: dict[str, float] = {}
        self._evaluate()

    @property
    def settings(self) -> Any:
        """The settings in force."""
        return self._settings

    # --- feeding ------------------------------------------------------------------------

    def observe_decisions(self, records: np.ndarray) -> None:
        """Takes decision records (DECISION_RECORD_DTYPE): model-routed children sent are
        followed (fill rate, concentration); model-routed feature rows feed the drift window."""
        if len(records) == 0:
            return
        routed = records[records["model_mask"] != 0]
        if len(routed) == 0:
            return
        with self._lock:
            sent = routed[((routed["flags"] & DECISION_CHILD_SENT) != 0) &
                          (routed["child_order_id"] != 0)]
            if len(sent):
                self._observe_sent(sent)
            good = ((routed["flags"] & (DECISION_ROW_REFUSED | DECISION_NON_FINITE_ROW)) == 0) & \
                (routed["row_status"] == 0)
            if self._drift_columns and self._tripped["drift"] is None and np.any(good):
                self._observe_rows(routed["features"][good])
        self._evaluate()

    def _observe_sent(self, sent: np.ndarray) -> None:
        context = sent["context"]
        has_prediction = (sent["model_mask"] >> _FILL_PROBABILITY_SLOT) & 1 == 1
        predicted = sent["model_output"][:, _FILL_PROBABILITY_SLOT]
        frozen = self._tripped["concentration"] is not None
        for child_id, venue, quantity, with_p, p in zip(
                sent["child_order_id"].tolist(), context["venue_id"].tolist(),
                context["child_quantity"].tolist(), has_prediction.tolist(), predicted.tolist()):
            if with_p and math.isfinite(p):
                child = _Child(venue, quantity, p)
                self._children[child_id] = child
                if len(self._children) > _MAX_TRACKED_CHILDREN:
                    self._children.popitem(last=False)
                early = self._early.pop(child_id, None)
                if early is not None:
                    child.filled = early[0]
                    self._finish_if_done(child_id, child, ended=early[1])
            if not frozen:
                if len(self._sent) == self._sent.maxlen:
                    old_venue, old_shares = self._sent[0]
                    self._venue_shares[old_venue] -= old_shares
                self._sent.append((venue, quantity))
                self._venue_shares[venue] = self._venue_shares.get(venue, 0) + quantity

    def _observe_rows(self, rows: np.ndarray) -> None:
        window = len(self._drift_rows)
        rows = rows[-window:]
        bins = np.empty((len(rows), len(self._drift_columns)), np.int16)
        for j, (column, feature) in enumerate(zip(self._drift_columns, self._drift_bins)):
            bins[:, j] = feature.bin_indices(rows[:, column])
        # ring: before it is full the rows occupy [0, filled) and the next slot is `filled`
        slots = (self._drift_next + np.arange(len(bins))) % window
        evicted = self._drift_rows[slots[slots < self._drift_filled]]
        for j, counts in enumerate(self._drift_counts):
            size = len(counts)
            counts -= np.bincount(evicted[:, j], minlength=size)[:size]
            counts += np.bincount(bins[:, j], minlength=size)[:size]
        self._drift_rows[slots] = bins
        self._drift_filled = min(window, self._drift_filled + len(bins))
        self._drift_next = int((self._drift_next + len(bins)) % window)

    def observe_audit(self, records: np.ndarray) -> None:
        """Takes engine audit records (AUDIT_RECORD_DTYPE): executions of followed children
        finish them into the fill-rate window."""
        if len(records) == 0:
            return
        executions = records[records["kind"] == _EXECUTION]
        if len(executions) == 0:
            return
        with self._lock:
            for child_id, report, quantity in zip(executions["child_order_id"].tolist(),
                                                  executions["reference"].tolist(),
                                                  executions["value_b"].tolist()):
                child = self._children.get(child_id)
                if child is None:
                    # its decision may come in a later batch (the decision ring is drained on
                    # its own schedule): keep what happened to it, bounded
                    early = self._early.setdefault(child_id, [0, False])
                    if report == _FILL:
                        early[0] += quantity
                    elif report in _ENDED:
                        early[1] = True
                    if len(self._early) > _MAX_TRACKED_CHILDREN:
                        self._early.popitem(last=False)
                    continue
                if report == _FILL:
                    child.filled += quantity
                elif report not in _ENDED:
                    continue
                self._finish_if_done(child_id, child, ended=report in _ENDED)
        self._evaluate()

    def _finish_if_done(self, child_id: int, child: _Child, *, ended: bool) -> None:
        if not ended and child.filled < child.quantity:
            return
        del self._children[child_id]
        if self._tripped["fill_rate"] is None:
            self._fill.append((child.predicted, min(1.0, child.filled / max(child.quantity, 1))))

    # --- judging ------------------------------------------------------------------------

    def _fill_rate_values(self) -> dict[str, Any]:
        count = len(self._fill)
        predicted = sum(p for p, _ in self._fill) / count if count else math.nan
        realised = sum(r for _, r in self._fill) / count if count else math.nan
        ratio = realised / predicted if count and predicted > 0 else math.nan
        return {"children": count, "predicted": predicted, "realised": realised, "ratio": ratio}

    def _concentration_values(self) -> dict[str, Any]:
        total = sum(self._venue_shares.values())
        if not self._sent or total <= 0:
            return {"children": len(self._sent), "venue_id": None, "share": math.nan}
        venue, shares = max(self._venue_shares.items(), key=lambda kv: kv[1])
        return {"children": len(self._sent), "venue_id": venue, "share": shares / total}

    def _drift_values(self) -> dict[str, Any]:
        if self._drift_filled == 0:
            return {"rows": 0, "psi": {}, "feature": None, "max_psi": math.nan}
        values = {name: psi(b.fractions, counts / self._drift_filled)
                  for name, b, counts in zip(self._drift_names, self._drift_bins,
                                             self._drift_counts)}
        worst = max(values, key=values.__getitem__)
        return {"rows": self._drift_filled, "psi": values, "feature": worst,
                "max_psi": values[worst]}

    def _evaluate(self) -> None:
        fires: list[tuple[str, ModelGuardReason, str, dict[str, Any]]] = []
        with self._lock:
            s = self._settings
            if s.fill_rate_enabled and self._tripped["fill_rate"] is None:
                v = self._fill_rate_values()
                if v["children"] >= max(1, int(s.fill_rate_min_children)) and \
                        v["ratio"] < float(s.fill_rate_floor_ratio):
                    fires.append(("fill_rate", ModelGuardReason.FILL_RATE_COLLAPSE,
                                  f"fill rate collapse: realised fill {v['realised']:.3f} vs "
                                  f"predicted {v['predicted']:.3f} (ratio {v['ratio']:.3f} < "
                                  f"floor {float(s.fill_rate_floor_ratio):.3f}) over the last "
                                  f"{v['children']} model-routed children", v))
            if s.concentration_enabled and self._tripped["concentration"] is None:
                v = self._concentration_values()
                if v["children"] >= max(1, int(s.concentration_min_children)) and \
                        v["share"] > float(s.concentration_max_share):
                    fires.append(("concentration", ModelGuardReason.VENUE_CONCENTRATION,
                                  f"venue concentration: {v['share']:.1%} of the shares of the "
                                  f"last {v['children']} model-routed children went to venue "
                                  f"{v['venue_id']} (max {float(s.concentration_max_share):.1%})",
                                  v))
            if s.drift_enabled and self._drift_columns and self._tripped["drift"] is None and \
                    self._drift_filled == len(self._drift_rows):
                v = self._drift_values()
                self._drift_psi = v["psi"]
                if v["max_psi"] > float(s.drift_psi_threshold):
                    over = ", ".join(f"{n} {p:.3f}" for n, p in sorted(
                        v["psi"].items(), key=lambda kv: -kv[1])
                        if p > float(s.drift_psi_threshold))
                    fires.append(("drift", ModelGuardReason.FEATURE_DRIFT,
                                  f"feature drift: PSI {over} > {float(s.drift_psi_threshold):.3f}"
                                  f" over the last {v['rows']} model-routed decisions", v))
        for guard, reason, detail, values in fires:
            with self._lock:
                if self._tripped[guard] is not None:
                    continue
            self._trip(reason, detail)  # raises: the guard stays armed
            with self._lock:
                self._tripped[guard] = {"reason": reason.name, "detail": detail,
                                        "values": values}

    # --- operator -----------------------------------------------------------------------

    @property
    def tripped(self) -> bool:
        """True while any guard is tripped."""
        with self._lock:
            return any(v is not None for v in self._tripped.values())

    def rearm(self) -> None:
        """Re-arms every guard and empties the windows (called on operator re-enable)."""
        with self._lock:
            self._tripped = {key: None for key in self._tripped}
            self._fill.clear()
            self._sent.clear()
            self._venue_shares = {}
            self._children.clear()
            self._early.clear()
            self._drift_rows[:] = 0
            for counts in self._drift_counts:
                counts[:] = 0
            self._drift_filled = 0
            self._drift_next = 0
            self._drift_psi = {}

    def status(self) -> dict[str, Any]:
        """Returns per guard: enabled, tripped (with reason and detail), the window's values
        and the limit, for the console."""
        with self._lock:
            s = self._settings
            fill = self._fill_rate_values()
            concentration = self._concentration_values()
            drift = self._drift_values() if self._drift_columns else \
                {"rows": 0, "psi": {}, "feature": None, "max_psi": math.nan}
            return {
                "tripped": any(v is not None for v in self._tripped.values()),
                "fill_rate": {"enabled": bool(s.fill_rate_enabled),
                              "tripped": self._tripped["fill_rate"],
                              **fill, "window": int(s.fill_rate_window_children),
                              "min_children": int(s.fill_rate_min_children),
                              "floor_ratio": float(s.fill_rate_floor_ratio),
                              "following": len(self._children)},
                "concentration": {"enabled": bool(s.concentration_enabled),
                                  "tripped": self._tripped["concentration"],
                                  **concentration,
                                  "window": int(s.concentration_window_children),
                                  "min_children": int(s.concentration_min_children),
                                  "max_share": float(s.concentration_max_share)},
                "drift": {"enabled": bool(s.drift_enabled), "tripped": self._tripped["drift"],
                          **drift, "window": len(self._drift_rows),
                          "features": list(self._drift_names),
                          "threshold": float(s.drift_psi_threshold)},
            }


def feature_names(settings: Any, profile: FeatureProfile | None) -> tuple[str, ...]:
    """Returns the features the drift guard watches under `settings` and `profile`."""
    names = tuple(getattr(settings, "drift_features", ()) or ())
    if names:
        return names
    return profile.default_features if profile is not None else ()


__all__ = ["ModelGuardMonitor", "ModelGuardReason", "SETTING_NAMES", "MEASURED_DEFAULTS",
           "feature_names"]
