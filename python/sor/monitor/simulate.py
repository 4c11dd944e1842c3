"""Live-like decision and audit records without FIX: the engine (its hosted policy and models)
routes parent orders into a simulated market whose venues answer its children.

Each step of ``step_s`` simulated seconds the market runs, the market data the router would
have received by then goes to the engine's market-data ring (in ``ts_recv`` order), the
engine's child orders and cancels go to the simulated venues, and the venues' reports come
back to the engine as execution reports. What the engine writes to its decision and audit
rings is collected. This is the harness that measured the drift guard's defaults
(docs/monitoring.md) and gives the monitor's tests real records; it is not a backtester
(``sor.backtest`` is, with its own metrics).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from sor import _core
from sor.ring import EXEC_REPORT_DTYPE

_NS = 1_000_000_000

_ORDER_TYPE = {int(_core.TimeInForce.IOC): int(_core.SimOrderType.IOC),
               int(_core.TimeInForce.POST_ONLY): int(_core.SimOrderType.POST_ONLY),
               int(_core.TimeInForce.MIDPOINT_PEG): int(_core.SimOrderType.MIDPOINT_PEG),
               int(_core.TimeInForce.DAY): int(_core.SimOrderType.LIMIT)}
_REPORT = {int(_core.SimReportKind.ACK): int(_core.ExecKind.ACK),
           int(_core.SimReportKind.FILL): int(_core.ExecKind.FILL),
           int(_core.SimReportKind.CANCELLED): int(_core.ExecKind.CANCELLED),
           int(_core.SimReportKind.REJECTED): int(_core.ExecKind.REJECTED)}
_NEW, _CANCEL = int(_core.OrderAction.NEW), int(_core.OrderAction.CANCEL)


@dataclass
class RoutedSession:
    """What the engine wrote while routing: decision and audit records, its last status, and
    the parents sent (id, side, quantity, submit time in simulated ns)."""

    decisions: np.ndarray
    audit: np.ndarray
    status: dict[str, Any]
    parents: list[tuple[int, str, int, int]] = field(default_factory=list)
    wall_seconds: float = 0.0
    session_start_ns: int = 0
    venue_names: dict[int, str] = field(default_factory=dict)
    lit_venues: tuple[int, ...] = ()
    instrument_names: dict[int, str] = field(default_factory=dict)
    adv_shares: float = 0.0


def router_config(name: str, *, adv_shares: float = 0.0) -> Any:
    """Returns the embedded configuration with every venue order by order (the simulator's
    default market publishes every lit venue that way), loose order limits, an engine that
    sleeps when idle and tolerates a starved thread (a shared test host), and instrument 0's
    average daily volume set to `adv_shares` (when > 0)."""
    from sor.config import default_config, with_changes

    changes: dict[str, Any] = {"venues[IEXG].book_type": "L3", "engine.name": name,
                               "risk.max_open_orders": 10_000,
                               "risk.max_orders_per_second": 100_000,
                               "risk.max_parent_quantity_shares": 10_000_000,
                               "risk.max_order_notional_usd": 100_000_000.0,
                               "risk.max_gross_notional_usd": 1e12,
                               "risk.default_credit_limit_usd": 1e12,
                               "engine.idle_strategy": "sleep", "engine.idle_sleep_ns": 20_000,
                               "engine.heartbeat_timeout_ms": 30_000}
    if adv_shares > 0:
        changes["instruments[AAPL].average_daily_volume_shares"] = int(round(adv_shares))
    return with_changes(default_config(), changes)


def _scenario_adv(registry: Any, scenario: str) -> float:
    """Returns the scenario's ADV the shipped models were trained with (0 when unknown)."""
    if registry is None:
        return 0.0
    try:
        card = registry.card("fill_probability")
    except Exception:  # noqa: BLE001 - a registry without that model: the config's default
        return 0.0
    return float(card.get("data", {}).get("adv_shares", {}).get(scenario, 0.0))


def route_session(scenario: str = "default", seed: int = 1, *, minutes: float = 30.0,
                  start_offset_s: float = 600.0, parent_quantity: int = 100_000,
                  parent_horizon_s: float = 300.0, policy: str = "ml_router",
                  models: Any = "shipped", step_s: float = 0.1, name: str | None = None,
                  on_step: Callable[[np.ndarray, np.ndarray], None] | None = None,
                  on_market_data: Callable[[np.ndarray], None] | None = None
                  ) -> RoutedSession:
    """Runs `minutes` of simulated routing on `scenario` (market `seed`): after
    `start_offset_s` of market warm-up, one parent of `parent_quantity` shares at a time with
    a deadline `parent_horizon_s` later (buy, sell, buy, ...), the next when the previous
    finishes. `models`: "shipped" (the shipped registry), a ModelRegistry, or None. `on_step`
    gets each step's new decision and audit records (a monitor can follow them live);
    `on_market_data` each batch of market data events published to the engine (what the
    router saw, in ``ts_recv`` order)."""
    from sor.engine import Engine
    from sor.models.registry import ModelRegistry
    from sor.sim import Market

    registry = ModelRegistry() if models == "shipped" else models
    name = name or f"sorsim{os.getpid()}"
    started = time.monotonic()
    decisions: list[np.ndarray] = []
    audit: list[np.ndarray] = []
    parents: list[tuple[int, str, int, int]] = []
    adv = _scenario_adv(registry, scenario)
    config = router_config(name, adv_shares=adv)
    with Market(scenario, seed=seed, record_events=True, record_trades=False) as market, \
            Engine(config, models=registry, policy=policy) as engine:
        venue_ids = [int(v.venue_id) for v in market.spec.venues]
        venue_names = {int(v.venue_id): str(v.name) for v in market.spec.venues}
        lit_venues = tuple(int(v.venue_id) for v in market.spec.venues
                           if v.kind == _core.SimVenueKind.LIT)
        instrument_names = {int(i.instrument_id): str(i.symbol) for i in config.instruments}
        step = int(step_s * _NS)
        start = market.session_start_ns
        first_parent = start + int(start_offset_s * _NS)
        end = first_parent + int(minutes * 60 * _NS)
        held: np.ndarray | None = None
        child_parent: dict[int, int] = {}
        next_parent_id = 1
        working: int | None = None
        t = start
        while t < end:
            t += step
            market.run_until(t)
            parts = [b for b in (market.events(v) for v in venue_ids) if len(b)]
            if held is not None:
                parts.insert(0, held)
            held = None
            if parts:
                pending = np.concatenate(parts)
                pending = pending[np.argsort(pending["ts_recv"], kind="stable")]
                cut = int(np.searchsorted(pending["ts_recv"], t, side="right"))
                _publish(engine, pending[:cut])
                if on_market_data is not None and cut:
                    on_market_data(pending[:cut])
                if cut < len(pending):
                    held = pending[cut:]
            if working is None and t >= first_parent:
                side = "buy" if next_parent_id % 2 else "sell"
                engine.submit_parent(next_parent_id, 0, side, parent_quantity,
                                     end_time_ns=t + int(parent_horizon_s * _NS))
                parents.append((next_parent_id, side, parent_quantity, t))
                working = next_parent_id
                next_parent_id += 1
            engine.wait_idle(30)
            orders = engine.read_orders()
            for order in orders:
                child = int(order["child_order_id"])
                if order["action"] == _NEW:
                    child_parent[child] = int(order["parent_order_id"])
                    market.submit(int(order["venue_id"]), int(order["side"]),
                                  int(order["quantity"]), price_ticks=int(order["price_ticks"]),
                                  order_type=_ORDER_TYPE[int(order["time_in_force"])],
                                  instrument_id=int(order["instrument_id"]),
                                  client_order_id=child)
                elif order["action"] == _CANCEL:
                    market.cancel(child)
            reports = market.reports()
            known = np.isin(reports["kind"], list(_REPORT)) & \
                np.isin(reports["client_order_id"], list(child_parent))
            reports = reports[known]
            if len(reports):
                execs = np.zeros(len(reports), EXEC_REPORT_DTYPE)
                execs["ts_event"] = reports["ts_event"]
                execs["ts_recv"] = reports["ts_recv"]
                execs["child_order_id"] = reports["client_order_id"]
                execs["parent_order_id"] = [child_parent[int(c)] for c in
                                            reports["client_order_id"].tolist()]
                execs["last_price_ticks"] = reports["price_ticks"]
                execs["last_quantity"] = np.where(
                    reports["kind"] == int(_core.SimReportKind.FILL), reports["quantity"], 0)
                execs["leaves_quantity"] = reports["leaves_quantity"]
                execs["instrument_id"] = reports["instrument_id"]
                execs["venue_id"] = reports["venue_id"]
                execs["kind"] = [_REPORT[int(k)] for k in reports["kind"].tolist()]
                execs["side"] = reports["side"]
                written = 0
                while written < len(execs):
                    written += engine.send_executions(execs[written:])
                engine.wait_idle(30)
            new_decisions = engine.read_decisions()
            new_audit = engine.read_audit()
            if len(new_decisions):
                decisions.append(new_decisions)
            if len(new_audit):
                audit.append(new_audit)
                done = new_audit[(new_audit["kind"] == int(_core.AuditKind.PARENT_DONE)) |
                                 (new_audit["kind"] == int(_core.AuditKind.COMMAND_REJECTED))]
                if working is not None and np.any(done["parent_order_id"] == working):
                    working = None
            if on_step is not None:
                on_step(new_decisions, new_audit)
        status = engine.status()
    from sor.ring import AUDIT_RECORD_DTYPE, DECISION_RECORD_DTYPE

    return RoutedSession(
        np.concatenate(decisions) if decisions else np.zeros(0, DECISION_RECORD_DTYPE),
        np.concatenate(audit) if audit else np.zeros(0, AUDIT_RECORD_DTYPE),
        status, parents, time.monotonic() - started, session_start_ns=int(start),
        venue_names=venue_names, lit_venues=lit_venues, instrument_names=instrument_names,
        adv_shares=float(adv))


def _publish(engine: Any, events: np.ndarray) -> None:
    written = 0
    while written < len(events):
        written += engine.publish_market_data(events[written:])
        if written < len(events):
            time.sleep(0.0005)


__all__ = ["route_session", "router_config", "RoutedSession"]
