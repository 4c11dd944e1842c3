"""The console's control object over a bare ``sor.Engine`` (no FIX sessions, no OMS): what
``sor console --engine NAME`` serves for an engine running in another process, and what a
script driving an engine directly can show its operator.

The router's ``Gateway`` is the full control object (sessions, parents, shortfall); this one
knows what the engine's control segment tells: its state, heartbeat, counters, risk state and
model mode. The owner of the engine's rings may pass what it reads to ``observe_orders``,
``observe_executions`` and ``observe_audit`` to fill the venue table, the parent table and the
event log; the rings themselves are never read here (each ring has one consumer, and it is the
router's or the script's).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import numpy as np

from sor.errors import UsageError

# names of the engine's enums by value, as docs/guardrails.md fixes them (the bindings' enums
# are used when they exist; these cover plain ints from an older or foreign control object)
MODEL_MODES = {0: "MODEL", 1: "FALLBACK", 2: "NONE"}
MODEL_GUARD_REASONS = {0: "NONE", 1: "NON_FINITE_OUTPUT", 2: "OUTPUT_OUT_OF_RANGE",
                       3: "NON_FINITE_INPUT", 4: "LATENCY_BUDGET", 5: "FILL_RATE_COLLAPSE",
                       6: "VENUE_CONCENTRATION", 7: "FEATURE_DRIFT", 8: "OPERATOR"}
RISK_STATE_NAMES = {0: "ACTIVE", 1: "REDUCING", 2: "HALTED"}
_SEVERITY_OF_STATE = {"ACTIVE": "info", "REDUCING": "warning", "HALTED": "critical"}
_FILL, _REJECTED = 2, 4  # ExecKind
_NEW = 1  # OrderAction
_RISK_REJECT, _PARENT_DONE, _RISK_STATE, _MODEL_GUARD = 4, 6, 9, 11  # AuditKind


def enum_name(value: Any, names: dict[int, str]) -> str | None:
    """Returns the upper-case name of an enum value given as a bindings enum, a Python enum,
    an int or a string (None for None)."""
    if value is None:
        return None
    name = getattr(value, "name", None)
    if isinstance(name, str):
        return name.upper()
    if isinstance(value, str):
        return value.strip().upper()
    try:
        number = int(value)
    except (TypeError, ValueError):
        return str(value)
    return names.get(number, str(number))


def _reject_reason_name(value: int) -> str:
    from sor.engine import RejectReason

    try:
        return RejectReason(int(value)).name
    except ValueError:
        return str(int(value))


class EngineConsoleControl:
    """The console's control object for `engine` (a started or attached ``sor.Engine``):
    ``console_state()`` from its status, counters and model status; ``set_risk_state`` and
    ``enable_model`` go to the engine with the operator and reason. Keeps the last
    `max_events` events: operator actions (from the engine's ``on_operator_event``), changes
    of risk state, model mode and engine state it sees, and what ``observe_*`` was given."""

    def __init__(self, engine: Any, *, max_events: int = 500) -> None:
        if max_events < 1:
            raise UsageError(f"max_events must be at least 1, got {max_events}")
        self.engine = engine
        self._lock = threading.RLock()
        self._events: deque[dict[str, Any]] = deque(maxlen=int(max_events))
        self._risk: dict[str, Any] = {"state": None, "operator": None, "reason": None,
                                      "changed_ns": None}
        self._model: dict[str, Any] = {"mode": None, "reason": None, "detail": None,
                                       "since_ns": None}
        self._engine_state: str | None = None
        self._engine_risk_seen: str | None = None
        self._venues: dict[int, dict[str, int]] = {}
        self._parents: dict[int, dict[str, Any]] = {}
        self._children: dict[int, tuple[int, int]] = {}  # child id -> (venue, parent)
        self._totals = {"orders": 0, "fills": 0, "filled_shares": 0, "notional_usd": 0.0,
                        "risk_rejects": 0}
        self._observed = False
        self._listening = False
        listeners = getattr(engine, "on_operator_event", None)
        if isinstance(listeners, list):
            listeners.append(self._on_operator_event)
            self._listening = True

    def close(self) -> None:
        """Stops listening to the engine's operator events."""
        listeners = getattr(self.engine, "on_operator_event", None)
        if self._listening and isinstance(listeners, list) and self._on_operator_event in listeners:
            listeners.remove(self._on_operator_event)
        self._listening = False

    def __enter__(self) -> EngineConsoleControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- events -------------------------------------------------------------------------

    def add_event(self, kind: str, text: str, severity: str = "info",
                  ts_ns: int | None = None) -> None:
        """Appends an event to the log (severity info, warning or critical)."""
        if severity not in ("info", "warning", "critical"):
            raise UsageError(f"severity must be info, warning or critical, got {severity!r}")
        with self._lock:
            self._events.append({"ts_ns": int(ts_ns or time.time_ns()), "kind": kind,
                                  "severity": severity, "text": text})

    def _on_operator_event(self, event: dict[str, Any]) -> None:
        ts_ns = int(event.get("ts_ns") or time.time_ns())
        action = str(event.get("action", "operator"))
        operator = event.get("operator") or None
        reason = event.get("reason") or None
        detail = event.get("detail")
        detail = "" if detail is None else str(detail)
        who = f" by {operator}" if operator else ""
        state = _risk_state_of(action, detail)
        with self._lock:
            if state is not None:
                self._risk.update(state=state, operator=operator, reason=reason,
                                  changed_ns=ts_ns)
                self._engine_risk_seen = state
                severity = _SEVERITY_OF_STATE[state]
                text = f"risk state {state}{who}: {reason}"
                if "->" in detail:
                    before = detail.split("->")[0].strip()
                    text = f"risk state {state} (was {before}){who}: {reason}"
            elif action == "enable_model":
                severity = "info"
                text = f"model routing re-enabled{who}: {reason}"
            elif action == "force_fallback":
                # the engine passes the ModelGuardReason name as the reason
                severity = "warning"
                self._model["detail"] = detail or None
                text = f"routing forced to the fallback policy ({reason}){who}" + \
                    (f": {detail}" if detail else "")
            elif action == "update_config":
                severity = "warning"
                text = f"configuration changed{who}: {reason}" + (f" ({detail})" if detail else "")
            else:
                severity = "info"
                text = f"{action.replace('_', ' ')}{who}" + (f": {reason}" if reason else "") + \
                    (f" ({detail})" if detail else "")
            self._events.append({"ts_ns": ts_ns, "kind": action, "severity": severity,
                                 "text": text})

    # --- actions ------------------------------------------------------------------------

    def set_risk_state(self, state: Any, *, operator: str, reason: str) -> Any:
        """Sets the engine's risk state (ACTIVE, REDUCING, HALTED) for `operator` and
        `reason`; returns what the engine returns."""
        result = self.engine.set_risk_state(state, operator=operator, reason=reason)
        if not self._listening:  # an engine without listeners: record the action here
            self._on_operator_event({"ts_ns": time.time_ns(), "operator": operator,
                                     "action": "risk_state", "reason": reason,
                                     "detail": f"-> {enum_name(state, RISK_STATE_NAMES)}"})
        return result

    def enable_model(self, *, operator: str, reason: str) -> Any:
        """Clears the engine's model-guard latch (routing on the models again) for `operator`
        and `reason`; returns what the engine returns."""
        result = self.engine.enable_model(operator=operator, reason=reason)
        if not self._listening:
            self._on_operator_event({"ts_ns": time.time_ns(), "operator": operator,
                                     "action": "enable_model", "reason": reason, "detail": None})
        return result

    # --- what the ring owner read -------------------------------------------------------

    def observe_orders(self, intents: np.ndarray) -> None:
        """Counts child orders (ORDER_INTENT_DTYPE rows read from the order ring) by venue
        and parent."""
        with self._lock:
            self._observed = True
            for row in intents:
                if int(row["action"]) != _NEW:
                    continue
                venue_id, parent_id = int(row["venue_id"]), int(row["parent_order_id"])
                self._children[int(row["child_order_id"])] = (venue_id, parent_id)
                venue = self._venue(venue_id)
                venue["orders"] += 1
                venue["ordered_shares"] += int(row["quantity"])
                parent = self._parent(parent_id, int(row["instrument_id"]), int(row["side"]))
                parent["children"] += 1
                self._totals["orders"] += 1

    def observe_executions(self, reports: np.ndarray) -> None:
        """Counts fills and venue rejects (EXEC_REPORT_DTYPE rows sent to the exec ring) by
        venue and parent."""
        tick = float(self.engine.config.price_tick_usd)
        with self._lock:
            self._observed = True
            for row in reports:
                kind = int(row["kind"])
                venue_id = self._children.get(int(row["child_order_id"]),
                                              (int(row["venue_id"]), 0))[0]
                if kind == _FILL:
                    quantity = int(row["last_quantity"])
                    notional = quantity * int(row["last_price_ticks"]) * tick
                    venue = self._venue(venue_id)
                    venue["fills"] += 1
                    venue["filled_shares"] += quantity
                    parent = self._parent(int(row["parent_order_id"]), int(row["instrument_id"]),
                                          int(row["side"]))
                    parent["cum_quantity"] += quantity
                    parent["notional_usd"] += notional
                    self._totals["fills"] += 1
                    self._totals["filled_shares"] += quantity
                    self._totals["notional_usd"] += notional
                elif kind == _REJECTED:
                    self._venue(venue_id)["rejects"] += 1

    def observe_audit(self, records: np.ndarray) -> None:
        """Counts risk rejects by venue and logs risk-state changes, model-guard trips and
        parents stopped by risk (AUDIT_RECORD_DTYPE rows read from the audit ring)."""
        with self._lock:
            self._observed = True
            for row in records:
                kind = int(row["kind"])
                ts_ns = int(row["ts_ns"]) or time.time_ns()
                if kind == _RISK_REJECT:
                    self._venue(int(row["venue_id"]))["risk_rejects"] += 1
                elif kind == _RISK_STATE:
                    state = RISK_STATE_NAMES.get(int(row["value_a"]), str(int(row["value_a"])))
                    before = RISK_STATE_NAMES.get(int(row["value_b"]), str(int(row["value_b"])))
                    self._events.append({"ts_ns": ts_ns, "kind": "engine_risk_state",
                                         "severity": _SEVERITY_OF_STATE.get(state, "info"),
                                         "text": f"engine applied risk state {state} "
                                                 f"(was {before})"})
                elif kind == _MODEL_GUARD:
                    reason = MODEL_GUARD_REASONS.get(int(row["value_b"]), str(int(row["value_b"])))
                    if int(row["value_a"]) == 1:
                        self._events.append({"ts_ns": ts_ns, "kind": "model_guard",
                                             "severity": "critical",
                                             "text": f"model guard tripped ({reason}): routing "
                                                     f"on the fallback policy"})
                    else:
                        self._events.append({"ts_ns": ts_ns, "kind": "model_guard",
                                             "severity": "info",
                                             "text": "model re-enabled: routing on the models"})
                elif kind == _PARENT_DONE and int(row["value_b"]) == 3:
                    self._events.append({"ts_ns": ts_ns, "kind": "parent_stopped",
                                         "severity": "warning",
                                         "text": f"parent {int(row['parent_order_id'])} stopped "
                                                 f"by risk ({_reject_reason_name(row['reason'])})"})

    def _venue(self, venue_id: int) -> dict[str, int]:
        venue = self._venues.get(venue_id)
        if venue is None:
            venue = {"orders": 0, "ordered_shares": 0, "fills": 0, "filled_shares": 0,
                     "rejects": 0, "risk_rejects": 0}
            self._venues[venue_id] = venue
        return venue

    def _parent(self, parent_id: int, instrument_id: int, side: int) -> dict[str, Any]:
        parent = self._parents.get(parent_id)
        if parent is None:
            symbol = str(instrument_id)
            for instrument in self.engine.config.instruments:
                if int(instrument.instrument_id) == instrument_id:
                    symbol = instrument.symbol
            parent = {"cl_ord_id": str(parent_id), "symbol": symbol,
                      "side": {1: "buy", 2: "sell"}.get(side, str(side)), "children": 0,
                      "cum_quantity": 0, "notional_usd": 0.0}
            self._parents[parent_id] = parent
        return parent

    # --- the console's view -------------------------------------------------------------

    def console_state(self) -> dict[str, Any]:
        """Returns the console's view of the engine (docs/guardrails.md, "Console")."""
        engine = self.engine
        status = engine.status()
        counters = status["counters"]
        model_status = engine.model_status()
        params = engine.params()
        config = engine.config
        now = time.time_ns()
        engine_state = str(status["state"])
        risk_state = enum_name(counters.get("risk_state"), RISK_STATE_NAMES)
        mode = enum_name(model_status.get("mode"), MODEL_MODES)
        guard_reason = enum_name(model_status.get("reason"), MODEL_GUARD_REASONS)
        with self._lock:
            self._notice_changes(now, engine_state, risk_state, mode, guard_reason)
            risk = dict(self._risk, state=risk_state)
            model = {"mode": mode, "reason": guard_reason, "detail": self._model["detail"],
                     "since_ns": self._model["since_ns"],
                     "policy": model_status.get("policy"),
                     "fallback_policy": model_status.get("fallback_policy"),
                     "trips": model_status.get("trips")}
            venues = self._venue_rows(config, int(params.get("enabled_venue_mask", 0)))
            parents = [self._parent_row(p) for p in self._parents.values()]
            observed = self._observed
            totals = dict(self._totals) if observed else {
                "orders": None, "fills": None, "filled_shares": None, "notional_usd": None}
            events = list(reversed(self._events))
        totals["orders"] = int(counters.get("child_orders", 0))
        totals["filled_shares"] = int(counters.get("filled_quantity", 0))
        totals["risk_rejects"] = int(counters.get("risk_rejects", 0))
        totals["is_bps"] = None  # needs arrival prices: the router's gateway has them
        return {
            "ts_ns": now,
            "router": {"name": status["name"], "engine_state": engine_state,
                       "heartbeat_age_ms": status["heartbeat_age_ms"], "uptime_s": None,
                       "kind": "engine", "engine_pid": status.get("engine_pid"),
                       "params_version": status.get("params_version")},
            "risk": risk,
            "model": model,
            "venues": venues,
            "parents": parents,
            "totals": totals,
            "counters": {key: value for key, value in counters.items()
                         if isinstance(value, (int, float, str))},
            "events": events,
        }

    def _notice_changes(self, now: int, engine_state: str, risk_state: str | None,
                        mode: str | None, guard_reason: str | None) -> None:
        if self._engine_state is not None and engine_state != self._engine_state:
            severity = "info" if engine_state == "running" else "critical"
            self._events.append({"ts_ns": now, "kind": "engine_state", "severity": severity,
                                 "text": f"engine {engine_state} (was {self._engine_state})"})
        self._engine_state = engine_state
        seen = self._engine_risk_seen
        if risk_state is not None and seen is not None and risk_state != seen:
            # set by someone else (another handle on the engine, another process)
            self._risk.update(state=risk_state, operator=None,
                              reason="changed outside this console", changed_ns=now)
            self._events.append({"ts_ns": now, "kind": "risk_state",
                                 "severity": _SEVERITY_OF_STATE.get(risk_state, "info"),
                                 "text": f"risk state {risk_state} (changed outside this "
                                         f"console)"})
        self._engine_risk_seen = risk_state
        previous = self._model["mode"]
        if mode != previous:
            if previous is not None and mode == "FALLBACK":
                self._events.append({"ts_ns": now, "kind": "model_mode", "severity": "critical",
                                     "text": f"routing on the fallback policy ({guard_reason})"})
            elif previous == "FALLBACK" and mode == "MODEL":
                self._events.append({"ts_ns": now, "kind": "model_mode", "severity": "info",
                                     "text": "routing on the models again"})
            self._model.update(mode=mode, since_ns=now if previous is not None else None)
            if mode != "FALLBACK":
                self._model["detail"] = None
        self._model["reason"] = guard_reason

    def _venue_rows(self, config: Any, enabled_mask: int) -> list[dict[str, Any]]:
        rows = []
        observed = self._observed
        total_orders = sum(v["orders"] for v in self._venues.values())
        for venue in config.venues:
            venue_id = int(venue.venue_id)
            counts = self._venues.get(venue_id)
            row: dict[str, Any] = {
                "venue_id": venue_id, "name": venue.name,
                "kind": getattr(venue.kind, "value", str(venue.kind)),
                "session": None,  # a bare engine has no FIX sessions
                "enabled": bool(enabled_mask >> venue_id & 1),
            }
            if observed:
                counts = dict(counts or {"orders": 0, "ordered_shares": 0, "fills": 0,
                                         "filled_shares": 0, "rejects": 0, "risk_rejects": 0})
                ordered = counts.pop("ordered_shares")
                row.update(counts)
                row["fill_rate"] = counts["filled_shares"] / ordered if ordered else None
                row["route_share"] = counts["orders"] / total_orders if total_orders else None
            else:
                row.update(orders=None, fills=None, filled_shares=None, rejects=None,
                           risk_rejects=None, fill_rate=None, route_share=None)
            rows.append(row)
        return rows

    @staticmethod
    def _parent_row(parent: dict[str, Any]) -> dict[str, Any]:
        cum = parent["cum_quantity"]
        return {"cl_ord_id": parent["cl_ord_id"], "symbol": parent["symbol"],
                "side": parent["side"], "quantity": None, "cum_quantity": cum,
                "avg_px": parent["notional_usd"] / cum if cum else None,
                "ord_status": None, "is_bps": None, "children": parent["children"]}


def _risk_state_of(action: str, detail: str) -> str | None:
    """Returns the risk state an operator event set (None when it set none): the engine's
    ``risk_state`` events carry ``"PREVIOUS -> NEW"`` as their detail."""
    lowered = action.lower()
    named = {"halt": "HALTED", "reduce": "REDUCING", "resume": "ACTIVE"}
    if lowered in named:
        return named[lowered]
    if lowered in ("risk_state", "set_risk_state"):
        name = detail.rsplit("->", 1)[-1].strip().upper()
        if name in RISK_STATE_NAMES.values():
            return name
    return None
