"""The router's metrics in the Prometheus text format (``prometheus_client``, own registry).

Fed from what the router already reads: decision records (``observe_decisions``), engine
audit records (``observe_audit``), the gateway's order-path latencies
(``observe_order_latency_ns``) and status dicts (``update_status``). Every name starts with
``sor_``; docs/monitoring.md lists them.

Latencies are histograms (``_bucket``/``_sum``/``_count``) and, beside each, a gauge family
``<name>_quantile_seconds{quantile="0.5"|"0.99"|"0.999"}``: exact quantiles (nearest rank,
numpy ``inverted_cdf``) over a rolling window of the last ``window`` observations (10,000 by
default), computed when scraped.

Implementation shortfall against arrival, live: per parent, the arrival mid and side come from
its decision records' context, the fills from the audit EXECUTION records; the gauge is
``sum(side * (fill price - arrival mid) * shares) / sum(arrival mid * shares) * 1e4`` over every
parent seen (notional-weighted, bps, > 0 is a cost).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from sor import _core
from sor.monitor.journal import DECISION_CHILD_SENT

QUANTILES = (0.5, 0.99, 0.999)
LATENCY_BUCKETS_S = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3,
                     5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_MAX_TRACKED = 1 << 18

_AUDIT = {name: int(value) for name, value in _core.AuditKind.__members__.items()}
_EXEC = {name: int(value) for name, value in _core.ExecKind.__members__.items()}
_REJECT_NAMES = {int(v): k.lower() for k, v in _core.RejectReason.__members__.items()}
_RISK_STATE_NAMES = {int(v): k.lower() for k, v in _core.RiskState.__members__.items()}
_ENGINE_STATES = ("created", "starting", "running", "draining", "stopped", "failed")
_PARENT_DONE_HOW = {0: "filled", 1: "cancelled", 2: "expired", 3: "stopped_by_risk"}
_MODEL_MODES = {"model": 0, "fallback": 1, "none": 2}
_RISK_STATES = {"active": 0, "reducing": 1, "halted": 2}
_BUY = int(_core.Side.BUY)


def _guard_reason_names() -> dict[int, str]:
    from sor.monitor.guards import ModelGuardReason

    return {int(v): k.lower() for k, v in ModelGuardReason.__members__.items()}


class RollingWindow:
    """The last `capacity` observations, for exact quantiles."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._values = np.zeros(int(capacity), np.float64)
        self._count = 0
        self._next = 0

    def extend(self, values: np.ndarray) -> None:
        """Adds observations (the oldest fall out)."""
        values = np.asarray(values, dtype=np.float64)[-len(self._values):]
        n = len(values)
        if n == 0:
            return
        end = self._next + n
        if end <= len(self._values):
            self._values[self._next:end] = values
        else:
            split = len(self._values) - self._next
            self._values[self._next:] = values[:split]
            self._values[:n - split] = values[split:]
        self._next = end % len(self._values)
        self._count = min(self._count + n, len(self._values))

    def __len__(self) -> int:
        return self._count

    def quantiles(self, quantiles: Sequence[float] = QUANTILES) -> list[float]:
        """Returns the exact quantiles (nearest rank) of the window; NaN when it is empty."""
        if self._count == 0:
            return [float("nan")] * len(quantiles)
        return [float(x) for x in np.quantile(self._values[:self._count], quantiles,
                                              method="inverted_cdf")]


class BatchHistogram:
    """A labelled latency histogram fed in batches (numpy), with its rolling-window quantile
    gauges; a prometheus_client collector."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (), *,
                 buckets: Sequence[float] = LATENCY_BUCKETS_S, window: int = 10_000) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.bounds = np.asarray(buckets, dtype=np.float64)
        self.window = int(window)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], tuple[np.ndarray, list[float], RollingWindow]] = {}

    def observe_many(self, values: Any, labels: Sequence[str] = ()) -> None:
        """Adds observations (seconds) to the series of `labels`."""
        values = np.asarray(values, dtype=np.float64).ravel()
        values = values[np.isfinite(values)]
        if len(values) == 0:
            return
        key = tuple(str(x) for x in labels)
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {key}")
        counts = np.bincount(np.searchsorted(self.bounds, values, side="left"),
                             minlength=len(self.bounds) + 1)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = (np.zeros(len(self.bounds) + 1, np.int64), [0.0],
                          RollingWindow(self.window))
                self._series[key] = series
            series[0][:] += counts
            series[1][0] += float(values.sum())
            series[2].extend(values)

    def count(self, labels: Sequence[str] = ()) -> int:
        """Returns the observations of a series."""
        with self._lock:
            series = self._series.get(tuple(str(x) for x in labels))
            return int(series[0].sum()) if series else 0

    def quantiles(self, labels: Sequence[str] = ()) -> list[float]:
        """Returns the window quantiles (QUANTILES) of a series."""
        with self._lock:
            series = self._series.get(tuple(str(x) for x in labels))
            return series[2].quantiles() if series else [float("nan")] * len(QUANTILES)

    def describe(self) -> list[Any]:
        """Returns the metric families without samples (for the registry's name check)."""
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames),
                GaugeMetricFamily(self._quantile_name, self._quantile_doc,
                                  labels=(*self.labelnames, "quantile"))]

    @property
    def _quantile_name(self) -> str:
        return self.name[:-len("_seconds")] + "_quantile_seconds" \
            if self.name.endswith("_seconds") else self.name + "_quantile"

    @property
    def _quantile_doc(self) -> str:
        return (f"{self.documentation}: exact quantiles (nearest rank) of the last "
                f"{self.window} observations")

    def collect(self) -> Iterable[Any]:
        """Yields the histogram and its quantile gauges."""
        histogram = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        gauges = GaugeMetricFamily(self._quantile_name, self._quantile_doc,
                                   labels=(*self.labelnames, "quantile"))
        with self._lock:
            for key, (counts, total, window) in sorted(self._series.items()):
                cumulative = np.cumsum(counts)
                buckets = [(_le(b), float(c)) for b, c in zip(self.bounds, cumulative[:-1])]
                buckets.append(("+Inf", float(cumulative[-1])))
                histogram.add_metric(list(key), buckets, total[0])
                for q, value in zip(QUANTILES, window.quantiles()):
                    gauges.add_metric([*key, _le(q)], value)
        yield histogram
        yield gauges


def _le(value: float) -> str:
    return repr(float(value))


class _Shortfall:
    """Per-parent arrival, side and fills; notional-weighted implementation shortfall."""

    def __init__(self) -> None:
        self.parents: OrderedDict[int, list[float]] = OrderedDict()
        # done parents folded in: sum side*(px - arrival)*q, sum arrival*q, shares
        self.closed = [0.0, 0.0, 0.0]

    def _parent(self, parent_id: int) -> list[float]:
        entry = self.parents.get(parent_id)
        if entry is None:
            # side (0 unknown), arrival mid (0 unknown), shares, price*shares
            entry = [0.0, 0.0, 0.0, 0.0]
            self.parents[parent_id] = entry
            if len(self.parents) > _MAX_TRACKED:
                self.parents.popitem(last=False)
        return entry

    def context(self, parent_ids: np.ndarray, sides: np.ndarray, arrivals: np.ndarray) -> None:
        for parent_id, side, arrival in zip(parent_ids.tolist(), sides.tolist(),
                                            arrivals.tolist()):
            entry = self._parent(parent_id)
            if entry[1] == 0.0 and arrival > 0:
                entry[0] = 1.0 if side == _BUY else -1.0
                entry[1] = float(arrival)

    def fills(self, parent_ids: np.ndarray, prices: np.ndarray, quantities: np.ndarray) -> None:
        for parent_id, price, quantity in zip(parent_ids.tolist(), prices.tolist(),
                                              quantities.tolist()):
            entry = self._parent(parent_id)
            entry[2] += quantity
            entry[3] += float(price) * quantity

    def done(self, parent_ids: np.ndarray) -> None:
        for parent_id in parent_ids.tolist():
            entry = self.parents.get(parent_id)
            if entry is not None and entry[1] > 0:
                del self.parents[parent_id]
                self.closed[0] += entry[0] * (entry[3] - entry[1] * entry[2])
                self.closed[1] += entry[1] * entry[2]
                self.closed[2] += entry[2]

    def parent_bps(self, parent_id: int) -> float | None:
        entry = self.parents.get(parent_id)
        if entry is None or entry[1] <= 0 or entry[2] <= 0:
            return None
        return entry[0] * (entry[3] / entry[2] - entry[1]) / entry[1] * 1e4

    def total(self) -> tuple[float, float]:
        """Returns (shortfall bps, filled shares) over every parent with a known arrival."""
        cost, notional, shares = self.closed
        for side, arrival, filled, value in self.parents.values():
            if arrival > 0 and filled > 0:
                cost += side * (value - arrival * filled)
                notional += arrival * filled
                shares += filled
        return (cost / notional * 1e4 if notional > 0 else 0.0), shares


class RouterMetrics:
    """The router's Prometheus metrics (own CollectorRegistry); thread-safe: the reactor feeds
    it, the console's HTTP thread scrapes it."""

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 venue_names: Mapping[int, str] | None = None, window: int = 10_000) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._venue_names = {int(k): str(v) for k, v in (venue_names or {}).items()}
        self._lock = threading.Lock()
        self._guard_names = _guard_reason_names()
        self._shortfall = _Shortfall()
        self._child_sent_ns: OrderedDict[int, int] = OrderedDict()
        r = self.registry
        self.order_latency = BatchHistogram(
            "sor_order_path_latency_seconds",
            "Order path latency, parent NewOrderSingle received to its first child sent",
            window=window)
        self.inference_latency = BatchHistogram(
            "sor_decision_inference_seconds",
            "Decision row building plus model evaluation per decision (inference_ns)",
            window=window)
        self.ack_latency = BatchHistogram(
            "sor_venue_ack_latency_seconds",
            "Child order written by the engine to its venue acknowledgement applied by the "
            "engine", ("venue",), window=window)
        for collector in (self.order_latency, self.inference_latency, self.ack_latency):
            r.register(collector)
        self.decisions = Counter("sor_decisions", "Decision records by outcome",
                                 ("outcome",), registry=r)
        self.model_routed = Counter("sor_model_routed_decisions",
                                    "Decisions on which at least one model ran", registry=r)
        self.child_orders = Counter("sor_child_orders", "Child orders sent, per venue",
                                    ("venue",), registry=r)
        self.fills = Counter("sor_fills", "Fills of child orders, per venue", ("venue",),
                             registry=r)
        self.filled_shares = Counter("sor_filled_shares", "Shares filled, per venue", ("venue",),
                                     registry=r)
        self.venue_rejects = Counter("sor_venue_rejects",
                                     "Child orders rejected by their venue, per venue",
                                     ("venue",), registry=r)
        self.venue_cancels = Counter("sor_venue_cancels",
                                     "Child orders ended by the venue without (further) fills "
                                     "(cancelled, expired IOC), per venue", ("venue",), registry=r)
        self.risk_rejects = Counter("sor_risk_rejects",
                                    "Child orders refused by the engine's risk stage, per reason",
                                    ("reason",), registry=r)
        self.commands = Counter("sor_commands", "Engine commands, accepted or rejected",
                                ("result",), registry=r)
        self.command_rejects = Counter("sor_command_rejects",
                                       "Engine commands rejected, per reason", ("reason",),
                                       registry=r)
        self.parents_done = Counter("sor_parents_done", "Parent orders finished, per outcome",
                                    ("how",), registry=r)
        self.guard_trips = Counter("sor_model_guard_trips",
                                   "Model guard trips (routing switched to the fallback "
                                   "policy), per reason, as audited by the engine", ("reason",),
                                   registry=r)
        self.guard_reenables = Counter("sor_model_guard_reenables",
                                       "Model routing re-enabled after a trip", registry=r)
        self.monitor_trips = Counter("sor_guard_monitor_trips",
                                     "Trips raised by the Python model guards (fill rate, "
                                     "concentration, drift), per reason", ("reason",), registry=r)
        self.risk_state_changes = Counter("sor_risk_state_changes",
                                          "Risk state changes, per new state", ("state",),
                                          registry=r)
        self.book_errors = Counter("sor_book_errors", "Market-data events the engine refused",
                                   registry=r)
        self.ring_overflows = Counter("sor_ring_overflows",
                                      "Records the engine could not write to an output ring",
                                      registry=r)
        self.unknown_executions = Counter("sor_unknown_executions",
                                          "Execution reports for children the engine does not "
                                          "know", registry=r)
        self.shortfall_gauge = Gauge("sor_implementation_shortfall_bps",
                                   "Implementation shortfall of the filled shares against each "
                                   "parent's arrival mid, notional-weighted over the parents of "
                                   "this run, bps (> 0 is a cost)", registry=r)
        self.shortfall_shares = Gauge("sor_implementation_shortfall_filled_shares",
                                      "Filled shares the shortfall covers", registry=r)
        self.engine_up = Gauge("sor_engine_up", "1 when the engine runs", registry=r)
        self.engine_state = Gauge("sor_engine_state", "1 for the engine's current state",
                                  ("state",), registry=r)
        self.heartbeat_age = Gauge("sor_engine_heartbeat_age_seconds",
                                   "Age of the engine's last heartbeat", registry=r)
        self.open_orders = Gauge("sor_engine_open_orders", "Child orders open in the engine",
                                 registry=r)
        self.active_parents = Gauge("sor_engine_active_parents",
                                    "Parent orders the engine works", registry=r)
        self.params_version = Gauge("sor_engine_params_version",
                                    "Parameter block version the engine runs on", registry=r)
        self.risk_state = Gauge("sor_risk_state", "Risk state: 0 active, 1 reducing, 2 halted",
                                registry=r)
        self.model_mode = Gauge("sor_model_mode",
                                "Model mode: 0 model, 1 fallback (guard tripped), 2 none",
                                registry=r)
        self.gateway_open_children = Gauge("sor_gateway_open_children",
                                           "Child orders the gateway knows open", registry=r)
        self.gateway_live_parents = Gauge("sor_gateway_live_parents",
                                          "Parent orders the gateway works", registry=r)
        self.session_up = Gauge("sor_fix_session_up", "1 when the FIX session is logged on",
                                ("session",), registry=r)
        self.shortfall_gauge.set_function(lambda: self._shortfall_value()[0])
        self.shortfall_shares.set_function(lambda: self._shortfall_value()[1])

    # --- labels -------------------------------------------------------------------------

    def venue_label(self, venue_id: int) -> str:
        """Returns the label of a venue: its configured name, else its id."""
        return self._venue_names.get(int(venue_id), str(int(venue_id)))

    # --- feeding ------------------------------------------------------------------------

    def observe_order_latency_ns(self, nanoseconds: int | float | np.ndarray) -> None:
        """Records order-path latencies (parent received to first child sent), nanoseconds."""
        self.order_latency.observe_many(np.asarray(nanoseconds, dtype=np.float64) / 1e9)

    def observe_decisions(self, records: np.ndarray) -> None:
        """Counts decision records (DECISION_RECORD_DTYPE) and takes their inference latency and
        their parents' arrival context."""
        if len(records) == 0:
            return
        sent = (records["flags"] & DECISION_CHILD_SENT) != 0
        rejected = records["risk_reason"] != 0
        with self._lock:
            outcomes = (("sent", int(sent.sum())), ("risk_rejected", int(rejected.sum())),
                        ("not_sent", int((~sent & ~rejected).sum())))
            for outcome, count in outcomes:
                if count:
                    self.decisions.labels(outcome).inc(count)
            routed = int(np.count_nonzero(records["model_mask"]))
            if routed:
                self.model_routed.inc(routed)
            inference = records["inference_ns"]
            self.inference_latency.observe_many(inference[inference > 0] / 1e9)
            context = records["context"]
            known = context["arrival_mid_ticks"] > 0
            if np.any(known):
                parents, first = np.unique(records["parent_order_id"][known], return_index=True)
                self._shortfall.context(parents, context["side"][known][first],
                                        context["arrival_mid_ticks"][known][first])

    def observe_audit(self, records: np.ndarray) -> None:
        """Counts engine audit records (AUDIT_RECORD_DTYPE): children, fills, rejects, commands,
        guard trips, parent ends; feeds the shortfall and the venue ack latency."""
        if len(records) == 0:
            return
        kind = records["kind"]
        with self._lock:
            self._count_by_venue(records[kind == _AUDIT["CHILD_ORDER"]], self.child_orders)
            children = records[kind == _AUDIT["CHILD_ORDER"]]
            for child_id, ts in zip(children["child_order_id"].tolist(),
                                    children["ts_ns"].tolist()):
                self._child_sent_ns[child_id] = ts
            while len(self._child_sent_ns) > _MAX_TRACKED:
                self._child_sent_ns.popitem(last=False)
            executions = records[kind == _AUDIT["EXECUTION"]]
            unknown = executions["reason"] != 0
            if np.any(unknown):
                self.unknown_executions.inc(int(unknown.sum()))
            executions = executions[~unknown]
            report = executions["reference"]
            fills = executions[report == _EXEC["FILL"]]
            self._count_by_venue(fills, self.fills)
            self._count_by_venue(fills, self.filled_shares, weights=fills["value_b"])
            self._count_by_venue(executions[report == _EXEC["REJECTED"]], self.venue_rejects)
            self._count_by_venue(executions[report == _EXEC["CANCELLED"]], self.venue_cancels)
            self._shortfall.fills(fills["parent_order_id"], fills["value_a"], fills["value_b"])
            acks = executions[report == _EXEC["ACK"]]
            for venue in np.unique(acks["venue_id"]).tolist():
                of_venue = acks[acks["venue_id"] == venue]
                latencies = []
                for child_id, ts in zip(of_venue["child_order_id"].tolist(),
                                        of_venue["ts_ns"].tolist()):
                    sent = self._child_sent_ns.pop(child_id, None)
                    if sent is not None and ts >= sent:
                        latencies.append((ts - sent) / 1e9)
                self.ack_latency.observe_many(latencies, (self.venue_label(venue),))
            self._count_reasons(records[kind == _AUDIT["RISK_REJECT"]]["reason"],
                                self.risk_rejects, _REJECT_NAMES)
            accepted = int(np.count_nonzero(kind == _AUDIT["COMMAND_ACCEPTED"]))
            rejected = records[kind == _AUDIT["COMMAND_REJECTED"]]
            if accepted:
                self.commands.labels("accepted").inc(accepted)
            if len(rejected):
                self.commands.labels("rejected").inc(len(rejected))
                self._count_reasons(rejected["reason"], self.command_rejects, _REJECT_NAMES)
            done = records[kind == _AUDIT["PARENT_DONE"]]
            self._count_reasons(done["value_b"], self.parents_done, _PARENT_DONE_HOW)
            self._shortfall.done(done["parent_order_id"])
            guard = records[kind == _AUDIT.get("MODEL_GUARD", -1)]
            self._count_reasons(guard[guard["value_a"] == 1]["value_b"], self.guard_trips,
                                self._guard_names)
            reenabled = int(np.count_nonzero(guard["value_a"] == 2))
            if reenabled:
                self.guard_reenables.inc(reenabled)
            states = records[kind == _AUDIT["RISK_STATE"]]
            self._count_reasons(states["value_a"], self.risk_state_changes, _RISK_STATE_NAMES)
            if len(states):
                self.risk_state.set(float(states["value_a"][-1]))
            errors = int(np.count_nonzero(kind == _AUDIT["BOOK_ERROR"]))
            if errors:
                self.book_errors.inc(errors)
            overflows = int(np.count_nonzero(kind == _AUDIT["RING_OVERFLOW"]))
            if overflows:
                self.ring_overflows.inc(overflows)

    def observe_guard_trip(self, reason: Any) -> None:
        """Counts a trip raised by a Python model guard (ModelGuardReason)."""
        self.monitor_trips.labels(self._guard_names.get(int(reason), str(int(reason)))).inc()

    def update_status(self, status: Mapping[str, Any]) -> None:
        """Sets the health gauges from a status dict: ``Engine.status()`` (state,
        heartbeat_age_ms, params_version, counters: open_orders, active_parents, risk_state,
        model_mode), ``Gateway.status()`` (open_children, live_parents, sessions), or a dict
        holding them under ``"engine"`` and ``"gateway"``. Keys absent leave their gauge."""
        engine = status.get("engine") if isinstance(status.get("engine"), Mapping) else \
            (status if "heartbeat_age_ms" in status else None)
        gateway = status.get("gateway") if isinstance(status.get("gateway"), Mapping) else \
            (status if "sessions" in status or "open_children" in status else None)
        if engine is not None:
            self._engine_status(engine)
        if gateway is not None:
            if "open_children" in gateway:
                self.gateway_open_children.set(float(gateway["open_children"]))
            if "live_parents" in gateway:
                live = gateway["live_parents"]
                self.gateway_live_parents.set(float(len(live) if isinstance(live, (list, tuple))
                                                    else live))
            for name, session in (gateway.get("sessions") or {}).items():
                state = session.get("state") if isinstance(session, Mapping) else session
                self.session_up.labels(str(name)).set(1.0 if str(state) == "active" else 0.0)
            if isinstance(gateway.get("engine"), Mapping):
                self._engine_status(gateway["engine"])

    def _engine_status(self, engine: Mapping[str, Any]) -> None:
        state = engine.get("state")
        if state is not None:
            state = str(getattr(state, "name", state)).lower()
            self.engine_up.set(1.0 if state == "running" else 0.0)
            for name in _ENGINE_STATES:
                self.engine_state.labels(name).set(1.0 if name == state else 0.0)
        if "heartbeat_age_ms" in engine:
            self.heartbeat_age.set(float(engine["heartbeat_age_ms"]) / 1e3)
        if "params_version" in engine:
            self.params_version.set(float(engine["params_version"]))
        counters = engine.get("counters") or {}
        for key, gauge in (("open_orders", self.open_orders),
                           ("active_parents", self.active_parents)):
            if key in counters:
                gauge.set(float(counters[key]))
        for key, gauge, names in (("risk_state", self.risk_state, _RISK_STATES),
                                  ("model_mode", self.model_mode, _MODEL_MODES)):
            value = counters.get(key, engine.get(key))
            if value is None:
                continue
            if isinstance(value, str):
                if value.lower() in names:
                    gauge.set(float(names[value.lower()]))
            else:
                gauge.set(float(int(value)))

    # --- reading ------------------------------------------------------------------------

    def _shortfall_value(self) -> tuple[float, float]:
        with self._lock:
            return self._shortfall.total()

    def shortfall_bps(self) -> float:
        """Returns the live implementation shortfall against arrival, bps (0 with no fills)."""
        return self._shortfall_value()[0]

    def parent_shortfall_bps(self, parent_order_id: int) -> float | None:
        """Returns one working parent's shortfall against its arrival mid, bps (None before a
        fill or without an arrival mid; parents that finished are folded into the total)."""
        with self._lock:
            return self._shortfall.parent_bps(int(parent_order_id))

    def exposition(self) -> bytes:
        """Returns every metric in the Prometheus text format (version 0.0.4)."""
        return generate_latest(self.registry)

    # --- helpers ------------------------------------------------------------------------

    def _count_by_venue(self, records: np.ndarray, counter: Counter,
                        weights: np.ndarray | None = None) -> None:
        if len(records) == 0:
            return
        venues = records["venue_id"]
        for venue in np.unique(venues).tolist():
            selected = venues == venue
            amount = int(weights[selected].sum()) if weights is not None else \
                int(selected.sum())
            if amount:
                counter.labels(self.venue_label(venue)).inc(amount)

    @staticmethod
    def _count_reasons(values: np.ndarray, counter: Counter, names: Mapping[int, str]) -> None:
        if len(values) == 0:
            return
        for value, count in zip(*np.unique(values, return_counts=True)):
            counter.labels(names.get(int(value), str(int(value)))).inc(int(count))


__all__ = ["RouterMetrics", "BatchHistogram", "RollingWindow", "QUANTILES",
           "LATENCY_BUCKETS_S"]
