"""Control of the C++ engine: start it as a thread of this process or as its own pinned
process, attach to it by name, feed its input rings, read its order and audit rings, read its
counters, and update its parameters while it runs.

The engine owns seven shared-memory segments named after ``engine.name`` in the configuration:
``<name>.control`` (state, heartbeat, counters, the seqlock parameter block) and the rings
``<name>.md``, ``<name>.cmd``, ``<name>.exec`` (into the engine) and ``<name>.order``,
``<name>.audit``, ``<name>.decision`` (out of it). An :class:`Engine` takes the far end of each ring on first use,
so different processes can feed different rings (a feed handler the market data, the FIX
gateway the executions).
"""

from __future__ import annotations

import datetime
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from sor import _core
from sor.config import ConfigChange, ConfigStore, RouterConfig, default_config
from sor.config.model import OverflowPolicy, StaleSegmentPolicy
from sor.errors import EngineCrashedError, EngineError, UsageError
from sor.ring import (
    AUDIT_RECORD_DTYPE,
    DECISION_RECORD_DTYPE,
    COMMAND_DTYPE,
    EXEC_REPORT_DTYPE,
    MD_EVENT_DTYPE,
    ORDER_INTENT_DTYPE,
    Ring,
)

EngineState = _core.EngineState
RiskState = _core.RiskState
CommandKind = _core.CommandKind
ExecKind = _core.ExecKind
AuditKind = _core.AuditKind
RejectReason = _core.RejectReason
ModelGuardReason = _core.ModelGuardReason
ModelMode = _core.ModelMode

OperatorListener = Callable[[dict[str, Any]], None]
"""``listener(event)`` with event ``{ts_ns, operator, action, reason, detail}``."""

# ring key -> (segment key, dtype, role the control plane takes)
_RINGS: dict[str, tuple[str, np.dtype, str]] = {
    "market_data": ("market_data", MD_EVENT_DTYPE, "producer"),
    "commands": ("commands", COMMAND_DTYPE, "producer"),
    "executions": ("executions", EXEC_REPORT_DTYPE, "producer"),
    "orders": ("orders", ORDER_INTENT_DTYPE, "consumer"),
    "audit": ("audit", AUDIT_RECORD_DTYPE, "consumer"),
    "decisions": ("decisions", DECISION_RECORD_DTYPE, "consumer"),
}

# model name -> engine slot (sor::ModelSlot)
MODEL_SLOTS: dict[str, int] = {"fill_probability": 0, "adverse_move": 1, "market_impact": 2,
                               "action_value": 3}
TimeInForce = _core.TimeInForce

_IDLE = {"spin": _core.IdleStrategy.SPIN, "yield": _core.IdleStrategy.YIELD,
         "sleep": _core.IdleStrategy.SLEEP, "backoff": _core.IdleStrategy.BACKOFF}


def today_utc() -> int:
    """Returns today's UTC date as yyyymmdd (the trading day a configured 0 stands for)."""
    today = datetime.datetime.now(datetime.timezone.utc).date()
    return today.year * 10_000 + today.month * 100 + today.day


def engine_params(config: RouterConfig, *, trading_day: int | None = None,
                  model_fallback_reason: int = 0, model_enable_generation: int = 0,
                  ) -> dict[str, Any]:
    """Returns the engine parameter block for `config` (risk limits, accounts, model guard,
    fees, idle strategy). `trading_day` is used when the configuration says 0 (default: today's
    UTC date); the two model_* values are the engine handle's, not the configuration's."""
    risk = config.risk
    guard = config.guardrails
    fees = [0.0] * 64
    enabled = 0
    for venue in config.venues:
        fees[venue.venue_id] = venue.fees.taker_fee_usd_per_share + venue.fees.routing_fee_usd_per_share
        if venue.enabled:
            enabled |= 1 << venue.venue_id
    credit = [0.0] * _core.MAX_ACCOUNTS
    position = [0] * _core.MAX_ACCOUNTS
    credit[0] = risk.default_credit_limit_usd
    position[0] = risk.default_max_position_shares
    accounts = 1
    for account_id, account in enumerate(risk.accounts, start=1):
        credit[account_id] = account.credit_limit_usd
        position[account_id] = account.max_position_shares
        accounts |= 1 << account_id
    ranges = (guard.fill_probability_range, guard.adverse_move_bps_range,
              guard.market_impact_bps_range, guard.action_value_range)
    day = risk.trading_day or (trading_day if trading_day else today_utc())
    return {
        "risk_state": risk.state,
        "max_order_quantity_shares": risk.max_order_quantity_shares,
        "max_parent_quantity_shares": risk.max_parent_quantity_shares,
        "max_open_orders": risk.max_open_orders,
        "max_orders_per_second": risk.max_orders_per_second,
        "price_band_bps": float(risk.price_band_bps),
        "idle_sleep_ns": config.engine.idle_sleep_ns,
        "price_tick_usd": config.price_tick_usd,
        "max_order_notional_usd": risk.max_order_notional_usd,
        "max_gross_notional_usd": risk.max_gross_notional_usd,
        "enabled_venue_mask": enabled,
        "idle_strategy": _IDLE[config.engine.idle_strategy.value],
        "taker_fee_usd_per_share": fees,
        "max_parent_notional_usd": risk.max_parent_notional_usd,
        "max_messages_per_second": risk.max_messages_per_second,
        "max_participation_rate": risk.max_participation_rate,
        "participation_allowance_shares": risk.participation_allowance_shares,
        "reference_collar_bps": risk.reference_collar_bps,
        "reference_price_ticks": {i.instrument_id: i.reference_price_ticks
                                  for i in config.instruments if i.reference_price_ticks > 0},
        "restricted_instruments": sorted(config.instrument(symbol).instrument_id
                                         for symbol in risk.restricted_symbols),
        "account_enabled_mask": accounts,
        "account_credit_limit_usd": credit,
        "account_max_position_shares": position,
        "trading_day": int(day),
        "model_output_min": [float(low) for low, _ in ranges],
        "model_output_max": [float(high) for _, high in ranges],
        "model_latency_budget_ns": int(round(guard.latency_budget_us * 1_000)),
        "model_latency_breaches": guard.latency_breaches,
        "model_fallback_reason": ModelGuardReason(int(model_fallback_reason)),
        "model_enable_generation": int(model_enable_generation),
    }


def feature_options(config: RouterConfig, settings: Any = None) -> Any:
    """Returns the feature-engine options of the engine for `config`: its venues (dark pools
    without a feed get an L3 book that only sees their prints) with their fees and latency,
    and `settings` (``sor.features.FeatureSettings``, e.g. the GARCH fit the models were
    trained with; None takes the defaults)."""
    from sor.features.engine import build_options

    venues = []
    for v in config.venues:
        venues.append(_core.FeatureVenueSpec(
            int(v.venue_id), lit=bool(v.lit),
            book_type=v.book_type if v.book_type is not None else _core.BookType.L3,
            maker_fee_usd_per_share=v.fees.maker_fee_usd_per_share,
            taker_fee_usd_per_share=v.fees.taker_fee_usd_per_share,
            midpoint_fee_usd_per_share=v.fees.taker_fee_usd_per_share,
            latency_ns=int(v.ack_latency_ns)))
    return build_options(venues, price_tick_usd=config.price_tick_usd,
                         max_instruments=max(i.instrument_id for i in config.instruments) + 1,
                         settings=settings)


def engine_options(config: RouterConfig, *, cpu: int | None = None, name: str | None = None,
                   reserve_orders: int = 1 << 16, max_parents: int = 4096,
                   drain_timeout_s: float = 2.0, feature_settings: Any = None,
                   policy: str | None = None, policy_params: dict[str, float] | None = None,
                   decision_interval_s: float = 1.0, trading_day: int | None = None,
                   client_order_capacity: int = 1 << 20) -> dict[str, Any]:
    """Returns the engine creation options for `config` (`cpu`/`name` override the file).

    With a hosted `policy`, the model guard's fallback policy comes from ``[guardrails]``."""
    settings = config.engine
    pin = settings.cpu if cpu is None else cpu
    rings = {}
    for key in ("md", "command", "exec", "order", "audit"):
        overflow = getattr(settings, f"{key}_ring_overflow_policy")
        rings[key] = (getattr(settings, f"{key}_ring_capacity_records"),
                      _core.OverflowPolicy.SPIN if overflow is OverflowPolicy.SPIN
                      else _core.OverflowPolicy.REFUSE,
                      settings.overflow_spin_limit_ns)
    return {
        "name": name or settings.name,
        "venues": [(v.venue_id, v.book_type if v.book_type is not None else _core.BookType.L3,
                    v.lit) for v in config.venues],
        "max_instruments": max(i.instrument_id for i in config.instruments) + 1,
        "reserve_orders": reserve_orders,
        "max_parents": max_parents,
        "rings": {"market_data": rings["md"], "commands": rings["command"],
                  "executions": rings["exec"], "orders": rings["order"], "audit": rings["audit"],
                  "decisions": (4096, _core.OverflowPolicy.REFUSE, 0)},
        "features": feature_options(config, feature_settings),
        "instruments": [(i.instrument_id, float(i.average_daily_volume_shares),
                         float(i.implied_volatility_annual), int(i.lot_size_shares))
                        for i in config.instruments],
        "policy": policy,
        "policy_params": {str(k): float(v) for k, v in (policy_params or {}).items()},
        "fallback_policy": config.guardrails.fallback_policy if policy else None,
        "fallback_policy_params": {str(k): float(v)
                                   for k, v in config.guardrails.fallback_policy_params},
        "client_order_capacity": int(client_order_capacity),
        "decision_interval_ns": int(round(decision_interval_s * 1e9)),
        "takeover_stale": settings.stale_segment_policy is StaleSegmentPolicy.TAKEOVER,
        "cpu": -1 if pin is None else int(pin),
        "sched_fifo": settings.sched_fifo,
        "sched_priority": settings.sched_priority,
        "lock_memory": settings.mlockall,
        "drain_timeout_ns": int(drain_timeout_s * 1e9),
        "params": engine_params(config, trading_day=trading_day),
    }


class Engine:
    """The router's engine, run here (a thread, GIL released) or attached to by name.

    ``Engine(config)`` owns the engine: ``start()`` creates its segments and starts its loop
    on a thread of this process (pinned to ``engine.cpu`` when set), ``stop()`` drains and
    removes them. ``Engine.attach(name)`` reaches an engine running in another process
    (``sor engine --name NAME``); ``stop()`` then asks it to stop. Both are context managers.
    """

    def __init__(self, config: RouterConfig | None = None, *, name: str | None = None,
                 cpu: int | None = None, reserve_orders: int = 1 << 16,
                 max_parents: int = 4096, models: Any = None, policy: str | None = None,
                 policy_params: dict[str, float] | None = None,
                 decision_interval_s: float = 1.0, client_order_capacity: int = 1 << 20) -> None:
        self._store = ConfigStore(config if config is not None else default_config())
        self._client_order_capacity = int(client_order_capacity)
        self._name = name or self._store.current.engine.name
        self._cpu = cpu
        self._reserve_orders = reserve_orders
        self._max_parents = max_parents
        self._core: Any = None
        self._control: Any = None
        self._rings: dict[str, Ring] = {}
        self._owner = True
        # models: a ModelRegistry or its folder, loaded (validated) now, installed at start
        self._models: dict[str, Any] = {}
        self._feature_settings: Any = None
        # the hosted execution policy: the arguments, else the configuration's [engine] policy
        # (None or "": the built-in liquidity taker); checked here
        settings = self._store.current.engine
        if policy is None and settings.policy:
            policy = settings.policy
            policy_params = dict(settings.policy_params) if policy_params is None else policy_params
            decision_interval_s = settings.decision_interval_ms / 1000.0
        self._policy = policy or None
        self._policy_params = dict(policy_params or {})
        self._decision_interval_s = float(decision_interval_s)
        if policy is not None:
            _core.make_policy(policy, {str(k): float(v) for k, v in self._policy_params.items()})
        # name -> {"version", "sha256"} of each installed model (version None when it did not
        # come from a registry); the registry folder the models came from
        self._model_versions: dict[str, dict[str, Any]] = {}
        self._models_lock = threading.RLock()
        self.models_registry: Any = None
        """The ModelRegistry the models were loaded from (None: none given)."""
        if models is not None:
            from sor.models.registry import ModelRegistry

            registry = models if isinstance(models, ModelRegistry) else ModelRegistry(models)
            self.models_registry = registry
            self._feature_settings = registry.feature_settings()
            _, snapshot = registry.snapshot()
            for name in sorted(snapshot["models"]):
                if name not in MODEL_SLOTS:
                    continue
                entry = registry.entry(name, data=snapshot)
                self._models[name] = registry.load(name, data=snapshot)
                self._model_versions[name] = {"version": entry.version, "sha256": entry.sha256}
        self._command_ids = itertools.count(1)
        self._trading_day: int | None = None
        self._params_lock = threading.RLock()
        self.on_operator_event: list[OperatorListener] = []
        """Listeners called with ``{ts_ns, operator, action, reason, detail}`` for every
        operator action (risk state, model re-enable, forced fallback, configuration change)."""
        self._store.add_listener(self._publish_update)

    @classmethod
    def attach(cls, name: str, config: RouterConfig | None = None) -> Engine:
        """Attaches to the running engine `name` (started with ``sor engine --name NAME``).

        `config` is the configuration the engine runs (used by :meth:`update_config`); by
        default the embedded one.
        """
        engine = cls(config, name=name)
        engine._owner = False
        engine._control = _core.EngineControl.attach(name)
        engine._store.set_running(True)
        engine.check()
        return engine

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The engine name (prefix of its shared-memory segments)."""
        return self._name

    @property
    def config(self) -> RouterConfig:
        """The configuration in force."""
        return self._store.current

    @property
    def config_store(self) -> ConfigStore:
        """The configuration store the engine follows."""
        return self._store

    def _create(self) -> None:
        self._trading_day = self._store.current.risk.trading_day or today_utc()
        options = engine_options(self._store.current, cpu=self._cpu, name=self._name,
                                 reserve_orders=self._reserve_orders, max_parents=self._max_parents,
                                 feature_settings=self._feature_settings, policy=self._policy,
                                 policy_params=self._policy_params,
                                 decision_interval_s=self._decision_interval_s,
                                 trading_day=self._trading_day,
                                 client_order_capacity=self._client_order_capacity)
        self._core = _core.EngineCore(options)
        self._control = _core.EngineControl.attach(self._name)
        with self._models_lock:
            for name, model in self._models.items():
                self._core.set_model(MODEL_SLOTS[name], model.evaluator)

    def start(self) -> Engine:
        """Creates the segments and starts the loop on a thread of this process."""
        if not self._owner:
            raise UsageError(f"engine {self._name!r} was attached, not created here; it runs in "
                             f"process {self._control.engine_pid}")
        if self._core is not None:
            raise UsageError(f"engine {self._name!r} is already started")
        self._create()
        try:
            self._core.start_thread()
        except BaseException:
            self._teardown()
            raise
        self._store.set_running(True)
        return self

    def run_foreground(self, on_ready: Callable[[Engine], None] | None = None) -> None:
        """Creates the segments and runs the loop on this thread until SIGTERM/SIGINT or stop.

        This is ``sor engine``: the process is the engine. `on_ready` is called once the
        segments exist (before the loop starts).
        """
        if self._core is not None:
            raise UsageError(f"engine {self._name!r} is already started")
        self._create()
        self._store.set_running(True)
        try:
            if on_ready is not None:
                on_ready(self)
            self._core.run_foreground()
        finally:
            self._store.set_running(False)
            self._teardown()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stops the engine after it drains its input rings; an attached handle waits for it."""
        if self._control is None:
            return
        if self._owner:
            if self._core is not None:
                self._core.request_stop()
                self._core.join()
            self._teardown()
            return
        self._control.request_stop()
        deadline = time.monotonic() + timeout_s
        while self._control.state not in (EngineState.STOPPED, EngineState.FAILED):
            if not self._control.engine_alive():
                break
            if time.monotonic() > deadline:
                raise EngineError(f"engine {self._name!r} did not stop within {timeout_s} s "
                                  f"(state {self._control.state.name.lower()})")
            time.sleep(0.005)
        self.close()

    def _teardown(self) -> None:
        self._store.set_running(False)
        for ring in self._rings.values():
            ring.close()
        self._rings.clear()
        if self._control is not None:
            self._control.close()
            self._control = None
        core, self._core = self._core, None
        if core is not None:
            core.unlink_segments()
            del core  # the destructor unmaps and removes the control segment

    def close(self) -> None:
        """Releases this handle (an owner stops its engine first)."""
        if self._owner:
            self.stop()
            return
        for ring in self._rings.values():
            ring.close()
        self._rings.clear()
        if self._control is not None:
            self._control.close()
            self._control = None

    def __enter__(self) -> Engine:
        if self._owner and self._core is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- state --------------------------------------------------------------------------

    def _require_control(self) -> Any:
        if self._control is None:
            raise UsageError(f"engine {self._name!r} is not started or attached")
        return self._control

    @property
    def state(self) -> str:
        """created, starting, running, draining, stopped or failed."""
        return self._require_control().state.name.lower()

    def check(self) -> None:
        """Raises EngineCrashedError when the engine died or stopped heartbeating while running."""
        control = self._require_control()
        state = control.state
        if state == EngineState.FAILED:
            raise EngineCrashedError(f"engine {self._name!r} failed to start: {control.last_error}")
        if state in (EngineState.STOPPED, EngineState.CREATED):
            return
        if not control.engine_alive():
            raise EngineCrashedError(
                f"engine {self._name!r} (process {control.engine_pid}) died while "
                f"{state.name.lower()}; its rings keep what it had not consumed")
        timeout_ns = self._store.current.engine.heartbeat_timeout_ms * 1_000_000
        age = control.heartbeat_age_ns
        if age > timeout_ns:
            raise EngineCrashedError(
                f"engine {self._name!r} (process {control.engine_pid}) has not heartbeaten for "
                f"{age / 1e6:.0f} ms (timeout {timeout_ns / 1e6:.0f} ms)")

    def status(self) -> dict[str, Any]:
        """Returns state, process, pinning, heartbeat age, parameter version and counters."""
        control = self._require_control()
        counters = control.counters()
        counters["risk_state"] = counters["risk_state"].name.lower()
        counters["model_mode"] = counters["model_mode"].name.lower()
        counters["model_guard_reason"] = counters["model_guard_reason"].name
        return {
            "name": self._name,
            "state": control.state.name.lower(),
            "engine_pid": control.engine_pid,
            "pinned_cpu": None if control.pinned_cpu < 0 else control.pinned_cpu,
            "sched_fifo": control.sched_fifo,
            "memory_locked": control.memory_locked,
            "heartbeat_age_ms": control.heartbeat_age_ns / 1e6,
            "last_error": control.last_error,
            "params_version": control.params()["version"],
            "counters": counters,
        }

    def counters(self) -> dict[str, Any]:
        """Returns the engine counters (events, commands, child orders, rejects, ...)."""
        return self.status()["counters"]

    def ring_stats(self) -> dict[str, dict[str, Any]]:
        """Returns the shared counters of each ring (written, read, refused, pids)."""
        return {key: self._ring(key).stats() for key in _RINGS}

    def params(self) -> dict[str, Any]:
        """Returns the parameter block the engine reads (a consistent seqlock snapshot)."""
        return dict(self._require_control().params())

    # --- configuration ------------------------------------------------------------------

    def _publish_update(self, new: RouterConfig, changes: list[ConfigChange], version: int) -> None:
        if self._control is not None:
            with self._params_lock:
                running = self._control.params()
                self._control.write_params(engine_params(
                    new, trading_day=running["trading_day"],
                    model_fallback_reason=int(running["model_fallback_reason"]),
                    model_enable_generation=running["model_enable_generation"]))

    def _publish_params(self, wait_s: float, **overrides: Any) -> None:
        control = self._require_control()
        with self._params_lock:
            params = control.params()
            params.update(overrides)
            control.write_params(params)
        if wait_s > 0:
            self.wait_params_applied(timeout_s=wait_s)

    def _operator_event(self, operator: str, action: str, reason: str, detail: str) -> None:
        event = {"ts_ns": time.time_ns(), "operator": operator, "action": action,
                 "reason": reason, "detail": detail}
        for listener in list(self.on_operator_event):
            listener(event)

    @staticmethod
    def _who_and_why(operator: Any, reason: Any) -> tuple[str, str]:
        for name, value in (("operator", operator), ("reason", reason)):
            if not isinstance(value, str) or not value.strip():
                raise UsageError(f"{name} must be a non-empty string (who acted and why are "
                                 f"audited), got {value!r}")
        return operator.strip(), reason.strip()

    def update_config(self, change: RouterConfig | Callable[[RouterConfig], RouterConfig],
                      *, operator: str | None = None, reason: str | None = None,
                      wait_s: float = 1.0) -> list[ConfigChange]:
        """Validates and applies a new configuration to the running engine; returns the changes.

        A refused change (bad value, restart-only key) raises ConfigError and the engine keeps
        its parameters. When the engine runs, waits up to `wait_s` for it to apply them. With
        an `operator`, the change is reported to the :attr:`on_operator_event` listeners.
        """
        changes = self._store.update(change)
        if changes and self._control is not None and wait_s > 0:
            self.wait_params_applied(timeout_s=wait_s)
        if changes and operator is not None:
            self._operator_event(str(operator), "update_config", str(reason or ""),
                                 "; ".join(str(item) for item in changes))
        return changes

    # --- operator control ---------------------------------------------------------------

    def set_risk_state(self, state: Any, *, operator: str, reason: str,
                       wait_s: float = 1.0) -> None:
        """Sets the risk state (RiskState, its name or its number): ACTIVE, REDUCING or
        HALTED; publishes it and waits until the loop applied it. Who and why go to the
        :attr:`on_operator_event` listeners."""
        operator, reason = self._who_and_why(operator, reason)
        new_state = _risk_state(state)
        previous = self._store.current.risk.state
        self._store.update(lambda c: c.replace(risk=c.risk.replace(state=new_state)))
        if self._control is not None and wait_s > 0:
            self.wait_params_applied(timeout_s=wait_s)
        self._operator_event(operator, "risk_state", reason, f"{previous.name} -> {new_state.name}")

    def halt(self, *, operator: str, reason: str) -> None:
        """HALTED: cancels every open child of every parent and refuses anything new."""
        self.set_risk_state(RiskState.HALTED, operator=operator, reason=reason)

    def reduce(self, *, operator: str, reason: str) -> None:
        """REDUCING: only orders that reduce an account's position go out."""
        self.set_risk_state(RiskState.REDUCING, operator=operator, reason=reason)

    def resume(self, *, operator: str, reason: str) -> None:
        """ACTIVE: normal routing; halted parents resume."""
        self.set_risk_state(RiskState.ACTIVE, operator=operator, reason=reason)

    def enable_model(self, *, operator: str, reason: str, wait_s: float = 1.0) -> None:
        """Clears the model guard's latched trip and any forced fallback, so the hosted
        policy's models route again; waits until the loop applied it."""
        operator, reason = self._who_and_why(operator, reason)
        generation = self._require_control().params()["model_enable_generation"]
        self._publish_params(wait_s, model_fallback_reason=0,
                             model_enable_generation=generation + 1)
        self._operator_event(operator, "enable_model", reason, "")

    def force_fallback(self, reason: Any, detail: str = "", *, operator: str = "model_guard",
                       wait_s: float = 1.0) -> None:
        """Switches routing to the fallback policy for `reason` (a non-zero ModelGuardReason,
        its name or number) until :meth:`enable_model`; waits until the loop applied it."""
        code = _guard_reason(reason)
        if code == ModelGuardReason.NONE:
            raise UsageError("force_fallback needs a reason other than NONE")
        self._publish_params(wait_s, model_fallback_reason=int(code))
        self._operator_event(str(operator), "force_fallback", code.name, str(detail))

    def model_status(self) -> dict[str, Any]:
        """Returns ``{"mode", "reason", "trips", "policy", "fallback_policy"}``: mode
        ``"model"``, ``"fallback"`` or ``"none"`` (the hosted policy uses no model), reason a
        ModelGuardReason name ("NONE" when routing on the models)."""
        counters = self._require_control().counters()
        return {
            "mode": counters["model_mode"].name.lower(),
            "reason": counters["model_guard_reason"].name,
            "trips": int(counters["model_guard_trips"]),
            "policy": self._policy,
            "fallback_policy": self._store.current.guardrails.fallback_policy
            if self._policy else None,
        }

    def wait_params_applied(self, timeout_s: float = 1.0) -> int:
        """Waits until the loop runs on the latest parameter version; returns it."""
        control = self._require_control()
        target = control.params()["version"]
        deadline = time.monotonic() + timeout_s
        while control.counters()["params_version"] < target:
            if control.state != EngineState.RUNNING:
                return target  # read at the next start or drain
            if time.monotonic() > deadline:
                raise EngineError(f"engine {self._name!r} did not apply parameter version "
                                  f"{target} within {timeout_s} s")
            time.sleep(0.0005)
        return target

    # --- data plane ---------------------------------------------------------------------

    def _ring(self, key: str) -> Ring:
        ring = self._rings.get(key)
        if ring is None:
            segment, dtype, role = _RINGS[key]
            name = _core.engine_segment_names(self._name)[segment]
            ring = Ring.attach(name, dtype, role=role, stale="takeover")
            self._rings[key] = ring
        return ring

    def ring(self, key: str) -> Ring:
        """Returns this handle's end of ring `key` (market_data, commands, executions, orders, audit)."""
        if key not in _RINGS:
            raise UsageError(f"ring must be one of {sorted(_RINGS)}, got {key!r}")
        self._require_control()
        return self._ring(key)

    def release_rings(self) -> None:
        """Gives up this handle's ring ends, so another process or thread can take them."""
        for ring in self._rings.values():
            ring.close()
        self._rings.clear()

    def publish_market_data(self, events: np.ndarray) -> int:
        """Writes market-data events (MD_EVENT_DTYPE) to the md ring; returns how many fit."""
        return self.ring("market_data").write(events)

    def send_executions(self, reports: np.ndarray) -> int:
        """Writes execution reports (EXEC_REPORT_DTYPE) to the exec ring; returns how many fit."""
        return self.ring("executions").write(reports)

    def send_commands(self, commands: np.ndarray) -> int:
        """Writes commands (COMMAND_DTYPE) to the command ring; returns how many fit."""
        return self.ring("commands").write(commands)

    def _command(self, kind: Any, **fields: Any) -> int:
        record = np.zeros(1, COMMAND_DTYPE)
        command_id = next(self._command_ids) + (os.getpid() << 32)
        record["ts_ns"] = time.time_ns()
        record["command_id"] = command_id
        record["kind"] = int(kind)
        for key, value in fields.items():
            record[key] = value
        if self.send_commands(record) != 1:
            raise EngineError(f"command ring of engine {self._name!r} is full; command refused")
        return command_id

    def submit_parent(self, parent_order_id: int, instrument: str | int, side: str,
                      quantity_shares: int, *, limit_price_ticks: int = 0,
                      venues: Iterable[str | int] | None = None, urgency: int = 0,
                      end_time_ns: int = 0, account_id: int = 0,
                      client_order_hash: int = 0) -> int:
        """Sends a new parent order; returns the command id echoed in the audit trail.

        `account_id` selects the account's limits (0: the default account) and a non-zero
        `client_order_hash` is checked against the day's set of ClOrdID hashes."""
        config = self._store.current
        instrument_id = config.instrument(instrument).instrument_id
        side_value = {"buy": 1, "sell": 2}.get(str(side).lower())
        if side_value is None:
            raise UsageError(f"side must be 'buy' or 'sell', got {side!r}")
        mask = 0
        for venue in venues or ():
            mask |= 1 << config.venue(venue).venue_id
        return self._command(CommandKind.NEW_PARENT, parent_order_id=parent_order_id,
                             instrument_id=instrument_id, side=side_value,
                             quantity=quantity_shares, limit_price_ticks=limit_price_ticks,
                             venue_mask=mask, urgency=urgency, end_time_ns=end_time_ns,
                             account_id=account_id, client_order_hash=client_order_hash)

    def cancel_parent(self, parent_order_id: int) -> int:
        """Stops working a parent order; returns the command id."""
        return self._command(CommandKind.CANCEL_PARENT, parent_order_id=parent_order_id)

    def amend_parent(self, parent_order_id: int, quantity_shares: int,
                     limit_price_ticks: int = 0) -> int:
        """Changes a parent's quantity and limit; returns the command id."""
        return self._command(CommandKind.AMEND_PARENT, parent_order_id=parent_order_id,
                             quantity=quantity_shares, limit_price_ticks=limit_price_ticks)

    def set_account_state(self, account_id: int, instrument: str | int, position_shares: int,
                          filled_notional_usd: float) -> int:
        """Sets (not adds) an account's position in an instrument and its filled notional
        today (ACCOUNT_STATE, e.g. restored from a journal after a restart); returns the
        command id."""
        instrument_id = self._store.current.instrument(instrument).instrument_id
        return self._command(CommandKind.ACCOUNT_STATE, account_id=int(account_id),
                             instrument_id=instrument_id, position_shares=int(position_shares),
                             notional_usd=float(filled_notional_usd))

    def read_orders(self, max_records: int = 1 << 16) -> np.ndarray:
        """Reads child-order intents (ORDER_INTENT_DTYPE) from the order ring."""
        return self.ring("orders").read(max_records)

    def read_audit(self, max_records: int = 1 << 16) -> np.ndarray:
        """Reads audit records (AUDIT_RECORD_DTYPE) from the audit ring."""
        return self.ring("audit").read(max_records)

    def read_decisions(self, max_records: int = 1 << 12) -> np.ndarray:
        """Reads decision records (DECISION_RECORD_DTYPE: candidate, feature row, model
        outputs, risk verdict) from the decision ring."""
        return self.ring("decisions").read(max_records)

    # --- models ---------------------------------------------------------------------------

    def set_model(self, name: str, model: Any) -> None:
        """Installs a validated ``sor.models.TreeModel`` as model `name` (fill_probability,
        adverse_move, market_impact); None removes it. The swap is atomic: the engine's next
        decision uses the new model and none is ever half-installed. A model for another
        feature schema is refused (SchemaMismatchError) and the previous one keeps running."""
        from sor.errors import SchemaMismatchError
        from sor.features import FEATURE_SCHEMA

        if name not in MODEL_SLOTS:
            raise UsageError(f"model name must be one of {sorted(MODEL_SLOTS)}, got {name!r}")
        if model is not None and model.schema_hash != FEATURE_SCHEMA.version_hash:
            raise SchemaMismatchError(FEATURE_SCHEMA.version_hash, model.schema_hash)
        with self._models_lock:
            if self._core is not None:
                self._core.set_model(MODEL_SLOTS[name],
                                     None if model is None else model.evaluator)
            if model is None:
                self._models.pop(name, None)
                self._model_versions.pop(name, None)
            else:
                self._models[name] = model
                self._model_versions[name] = {"version": None, "sha256": model.sha256}

    def swap_models(self, models: dict[str, Any],
                    versions: dict[str, int | None] | None = None) -> dict[str, int]:
        """Replaces several models while the engine runs: every model is checked first (name,
        feature schema; a ``sor.models.TreeModel`` validated by the registry, or None to take
        the slot out of use), then all are installed as one set (``EngineCore.set_models``: a
        seqlock the engine's decision re-reads, so every decision uses all old or all new
        models; nothing is dropped or paused; each record's ``model_generation`` says which).
        On an error nothing changes. `versions` gives the registry version of each
        model (kept in ``model_versions``). Returns the new swap generation of each slot
        (``model_generation`` in decision records)."""
        from sor.errors import SchemaMismatchError
        from sor.features import FEATURE_SCHEMA

        for name, model in models.items():
            if name not in MODEL_SLOTS:
                raise UsageError(f"model name must be one of {sorted(MODEL_SLOTS)}, got {name!r}")
            if model is not None and model.schema_hash != FEATURE_SCHEMA.version_hash:
                raise SchemaMismatchError(FEATURE_SCHEMA.version_hash, model.schema_hash)
            if model is not None and not hasattr(model, "evaluator"):
                raise UsageError(f"model {name!r} is not a sor.models.TreeModel")
        versions = versions or {}
        ordered = sorted(models, key=MODEL_SLOTS.__getitem__)
        with self._models_lock:
            if self._core is not None:
                self._core.set_models([(MODEL_SLOTS[name], None if models[name] is None
                                        else models[name].evaluator) for name in ordered])
            for name in ordered:
                model = models[name]
                if model is None:
                    self._models.pop(name, None)
                    self._model_versions.pop(name, None)
                else:
                    self._models[name] = model
                    self._model_versions[name] = {"version": versions.get(name),
                                                  "sha256": model.sha256}
            generations = self.model_generations()
        return {name: generations[name] for name in ordered}

    def model_generations(self) -> dict[str, int]:
        """Returns the swap generation of each model slot (0 before the first install; the
        value decision records carry in ``model_generation``)."""
        if self._control is None:
            return {name: 0 for name in MODEL_SLOTS}
        generations = self._control.counters()["model_generation"]
        return {name: int(generations[slot]) for name, slot in MODEL_SLOTS.items()}

    @property
    def model_versions(self) -> dict[str, dict[str, Any]]:
        """The installed models: name -> ``{"version", "sha256"}`` (version None when the
        model was not installed from a registry)."""
        with self._models_lock:
            return {name: dict(v) for name, v in self._model_versions.items()}

    def load_models(self, registry: Any = None) -> dict[str, Any]:
        """Loads every model of a registry (default: the shipped one), validating all of them
        (file hash, feature schema, tree graph, parity with onnxruntime) before installing
        any; on an error nothing changes. Returns the installed models by name."""
        from sor.models.registry import ModelRegistry

        registry = registry if isinstance(registry, ModelRegistry) else ModelRegistry(registry)
        _, snapshot = registry.snapshot()
        names = [name for name in sorted(snapshot["models"]) if name in MODEL_SLOTS]
        loaded = {name: registry.load(name, data=snapshot) for name in names}
        self.swap_models(loaded, {name: registry.entry(name, data=snapshot).version
                                  for name in names})
        return dict(self._models)

    @property
    def models(self) -> dict[str, Any]:
        """The installed models by name (``sor.models.TreeModel``)."""
        return dict(self._models)

    def wait_idle(self, timeout_s: float = 5.0) -> None:
        """Waits until the engine has consumed everything in its input rings."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.check()
            if all(len(self._ring(key)) == 0 for key in ("market_data", "commands", "executions")):
                return
            if time.monotonic() > deadline:
                raise EngineError(f"engine {self._name!r} did not drain its input rings within "
                                  f"{timeout_s} s")
            time.sleep(0.0005)

    def __repr__(self) -> str:
        state = self.state if self._control is not None else "not started"
        return f"<sor.Engine {self._name!r} {state}>"


def _risk_state(state: Any) -> Any:
    if isinstance(state, RiskState):
        return state
    if isinstance(state, str) and state.upper() in RiskState.__members__:
        return RiskState.__members__[state.upper()]
    if isinstance(state, int) and not isinstance(state, bool) and 0 <= state <= 2:
        return RiskState(state)
    raise UsageError(f"risk state must be one of {', '.join(RiskState.__members__)} (or 0-2), "
                     f"got {state!r}")


def _guard_reason(reason: Any) -> Any:
    if isinstance(reason, ModelGuardReason):
        return reason
    if isinstance(reason, str) and reason.upper() in ModelGuardReason.__members__:
        return ModelGuardReason.__members__[reason.upper()]
    if isinstance(reason, int) and not isinstance(reason, bool) and 0 <= reason <= 8:
        return ModelGuardReason(reason)
    raise UsageError(f"model guard reason must be one of "
                     f"{', '.join(ModelGuardReason.__members__)}, got {reason!r}")


__all__ = ["Engine", "engine_options", "engine_params", "today_utc", "EngineState", "RiskState",
           "CommandKind", "ExecKind", "AuditKind", "RejectReason", "ModelGuardReason",
           "ModelMode", "OperatorListener"]
