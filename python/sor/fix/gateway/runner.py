"""The router process: the engine (embedded thread), the FIX sessions (OMS acceptors, one
initiator per venue) on one reactor, the gateway core between them, and its state folder.

The state folder holds the order-state journal (``journal``), the sessions' message stores
(a relative ``store_dir``/``store_path`` of a session is taken inside it) and a lock file that
keeps a second router off the same state.
"""

from __future__ import annotations

import collections
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

import numpy as np

from sor import _core
from sor.config import RouterConfig, default_config, load, with_changes
from sor.errors import EngineCrashedError, GatewayError, OperatorActionError
from sor.fix.config import SessionConfig, load_sessions, loads_sessions
from sor.fix.gateway.apps import OmsApplication, VenueApplication
from sor.fix.gateway.core import DEFAULT_RISK_REPORT_INTERVAL_S, DONE, GatewayCore
from sor.fix.journal import Journal
from sor.fix.reactor import Reactor
from sor.fix.session import FixSession

log = logging.getLogger("sor.fix.gateway")

HOUSEKEEPING_INTERVAL_S = 0.5
ENGINE_STALL_LIMIT_S = 30.0
"""An engine that still runs but has not heartbeaten for this long stops the gateway."""
MAX_EVENTS = 2000
"""Events the router keeps in memory for events() and the console (the audit journal has all)."""
CONSOLE_EVENTS = 50
CONSOLE_DONE_PARENTS = 100
OPERATOR_TIMEOUT_S = 10.0

_RISK_STATES = {k: int(v) for k, v in _core.RiskState.__members__.items()}
_RISK_STATE_NAMES = {v: k for k, v in _RISK_STATES.items()}
_GUARD_REASONS = {k: int(v) for k, v in _core.ModelGuardReason.__members__.items()}
_GUARD_NAMES = {v: k for k, v in _GUARD_REASONS.items()}


def risk_state_value(state: Any) -> int:
    """Returns a RiskState given as the enum, its value or its name (any case); raises
    OperatorActionError for anything else."""
    if isinstance(state, str):
        value = _RISK_STATES.get(state.strip().upper())
    else:
        try:
            value = int(state)
        except (TypeError, ValueError):
            value = None
        if value not in _RISK_STATE_NAMES:
            value = None
    if value is None:
        raise OperatorActionError(f"risk state must be one of {', '.join(_RISK_STATES)}, got "
                                  f"{state!r}")
    return value


def _who_and_why(operator: Any, reason: Any) -> tuple[str, str]:
    if not isinstance(operator, str) or not operator.strip():
        raise OperatorActionError("an operator action needs the operator's name (operator)")
    if not isinstance(reason, str) or not reason.strip():
        raise OperatorActionError("an operator action needs a reason (reason)")
    return operator.strip(), reason.strip()


def _enum_name(value: Any, names: dict[int, str]) -> str:
    if hasattr(value, "name"):
        return str(value.name)
    try:
        return names.get(int(value), str(value))
    except (TypeError, ValueError):
        return str(value)


def default_sessions() -> list[SessionConfig]:
    """Returns the embedded router sessions (``sor/config/default_fix.toml``)."""
    resource = resources.files("sor.config").joinpath("default_fix.toml")
    return loads_sessions(resource.read_text(encoding="utf-8"), source=str(resource))


_SIDE_NAMES = {"1": "buy", "2": "sell", "5": "sell", "6": "sell"}  # short sales are sells
_ORD_STATUS_NAMES = {"0": "new", "1": "partially_filled", "2": "filled", "3": "done_for_day",
                     "4": "canceled", "6": "pending_cancel", "8": "rejected", "A": "pending_new",
                     "C": "expired"}


def _in_state_dir(config: SessionConfig, state_dir: str) -> SessionConfig:
    if config.store_path:
        if os.path.isabs(config.store_path):
            return config
        return config.replace(store_path=os.path.join(state_dir, config.store_path))
    if os.path.isabs(config.store_dir):
        return config
    return config.replace(store_dir=os.path.join(state_dir, config.store_dir))


class Gateway:
    """The router: engine + gateway core + FIX sessions + reactor, with a state folder.

    ``Gateway(router_config, session_configs, state_dir=...)`` takes a RouterConfig (or a TOML
    path; None: the embedded configuration) and the session list (SessionConfig objects or a
    TOML path; None: the embedded ``default_fix.toml``). ``start()`` locks the state folder,
    starts the engine, replays the journal, opens the sessions (acceptors listen, initiators
    connect) and sends what recovery owes; ``run()`` runs the reactor on this thread until
    ``stop()``; ``start_thread()`` runs it on a new thread; ``close()`` logs the sessions out
    and releases everything. A context manager (``with Gateway(...) as g`` starts it).

    `market_data` feeds the engine's market-data ring from the reactor: a ``(host, port)``
    pair or ``"host:port"`` of a ``sor.feed.udp`` publisher (the simulated venues publish on
    127.0.0.1:9880; an ``MdReceiver`` is polled on every pass and closed with the gateway), or
    a factory called with the started engine that returns a poller (a callable returning the
    work it did). None: nothing feeds it here (another process may, by the engine's name).
    """

    def __init__(self, router_config: RouterConfig | str | os.PathLike[str] | None = None,
                 session_configs: Iterable[SessionConfig] | str | os.PathLike[str] | None = None,
                 *, state_dir: str | os.PathLike[str], models: Any = None,
                 policy: str | None = None, policy_params: dict[str, float] | None = None,
                 busy_poll: bool = False, journal_sync: str = "write",
                 spin_limit_ns: int = 200_000,
                 market_data: Any = None, codec: Any = None,
                 risk_report_interval_s: float = DEFAULT_RISK_REPORT_INTERVAL_S,
                 audit: bool = True, audit_dir: str | os.PathLike[str] | None = None,
                 metrics: Any = True, model_guards: bool = True,
                 console_port: int | None = None, console_host: str = "127.0.0.1",
                 console_token: str | None = None, watch_models: bool = False,
                 watch_interval_s: float = 1.0) -> None:
        if router_config is None:
            config = default_config()
        elif isinstance(router_config, RouterConfig):
            config = router_config
        else:
            config = load(router_config)
        # a router killed with kill -9 leaves its engine's segments behind: the restart takes
        # them over (an engine still alive under that name is refused all the same)
        self.config = with_changes(config, {"engine.stale_segment_policy": "takeover"})
        self.state_dir = os.path.abspath(os.fspath(state_dir))
        if session_configs is None:
            sessions = default_sessions()
        elif isinstance(session_configs, (str, os.PathLike)):
            sessions = load_sessions(session_configs)
        else:
            sessions = list(session_configs)
        self.session_configs = [_in_state_dir(s, self.state_dir) for s in sessions]
        self._venue_ids: dict[str, int] = {}
        for session in self.session_configs:
            if session.application == "venue":
                try:
                    venue = self.config.venue(session.venue)
                except Exception:
                    raise GatewayError(
                        f"session {session.name!r}: venue {session.venue!r} is not a venue of "
                        f"the router configuration "
                        f"({', '.join(v.name for v in self.config.venues)})") from None
                if int(venue.venue_id) in self._venue_ids.values():
                    raise GatewayError(f"session {session.name!r}: venue {venue.name} already has "
                                       f"a session")
                self._venue_ids[session.name] = int(venue.venue_id)
        self._models = models
        self._policy = policy
        self._policy_params = policy_params
        self._busy_poll = bool(busy_poll)
        self._journal_sync = journal_sync
        self._spin_limit_ns = int(spin_limit_ns)
        self._market_data = market_data
        self._codec = codec  # the sessions' codec (None: sor.fix.codec; the benchmark's peer)
        self.market_data_receiver: Any = None
        self.engine: Any = None
        self.core: GatewayCore | None = None
        self.reactor: Reactor | None = None
        self.journal: Journal | None = None
        self.sessions: dict[str, FixSession] = {}
        self.venue_applications: dict[int, VenueApplication] = {}
        self.listen_ports: dict[str, int] = {}
        self.recovery: dict[str, int] = {}
        self.error: BaseException | None = None
        self._risk_report_interval_s = float(risk_report_interval_s)
        self._audit = bool(audit)
        self.audit_dir = os.path.abspath(os.fspath(audit_dir)) if audit_dir is not None else \
            os.path.join(self.state_dir, "audit")
        self._metrics_option = metrics
        self._model_guards = bool(model_guards)
        self._console_options = (console_port, console_host, console_token)
        self._watch_models = (bool(watch_models), float(watch_interval_s))
        self.model_watcher: Any = None
        """The sor.models.watch.RegistryWatcher hot-swapping the registry's promotions into
        the engine (``watch_models=True`` and a registry given), or None."""
        self.audit_journal: Any = None
        """The run's sor.monitor.AuditJournal (decisions, engine audit, events), or None."""
        self.metrics: Any = None
        """The router's sor.monitor.RouterMetrics (Prometheus), or None."""
        self.guard_monitor: Any = None
        """The Python model guards (sor.monitor.ModelGuardMonitor), or None."""
        self.console: Any = None
        """The operator console (sor.monitor.console.ConsoleServer), or None."""
        self._latency_mark = 0
        self._drift_possible = False
        self._audit_pending: list[Any] = []
        self._lock_fd = -1
        self._thread: threading.Thread | None = None
        self._loop_thread: threading.Thread | None = None
        self._started = False
        self._started_ns = 0
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_EVENTS)
        self._event_seq = 0
        self._events_lock = threading.Lock()
        self.event_sinks: list[Callable[[str, dict[str, Any]], None]] = []
        """Called as sink(kind, fields) with every event (the audit journal's append_event)."""
        self.model_enable_listeners: list[Callable[[], None]] = []
        """Called when an operator re-enables the model (the Python guards re-arm)."""
        self._acting = False

    # --- lifecycle --------------------------------------------------------------------------

    def _lock(self) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        path = os.path.join(self.state_dir, "router.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise GatewayError(f"state folder {self.state_dir} is in use by another router "
                               f"(lock {path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def start(self) -> Gateway:
        """Starts the engine and the sessions and runs the recovery; returns self."""
        if self._started:
            raise GatewayError("the gateway is already started")
        self._started = True
        self._lock()
        try:
            self._start()
        except BaseException:
            self._release()
            raise
        return self

    def _start(self) -> None:
        from sor.engine import Engine

        self._started_ns = time.time_ns()
        self.engine = Engine(self.config, models=self._models, policy=self._policy,
                             policy_params=self._policy_params).start()
        self.engine.on_operator_event.append(self._on_operator_event)
        self.journal = Journal(os.path.join(self.state_dir, "journal"), sync=self._journal_sync)
        core = GatewayCore(self.config, self.engine, self.journal,
                           spin_limit_ns=self._spin_limit_ns,
                           risk_report_interval_s=self._risk_report_interval_s)
        core.event_listeners.append(self._record_event)
        self.core = core
        self.reactor = Reactor(busy_poll=self._busy_poll)
        oms_application = OmsApplication(core)
        for config in self.session_configs:
            if config.application == "venue":
                venue_id = self._venue_ids[config.name]
                application: Any = VenueApplication(core, venue_id)
                session = FixSession(config, application, codec=self._codec)
                application.session = session
                self.venue_applications[venue_id] = application
                core.add_venue_session(venue_id, session)
            else:
                session = FixSession(config, oms_application, codec=self._codec)
                core.add_oms_session(session)
            self.sessions[config.name] = session
        self.recovery = core.replay()
        if self.recovery["records"]:
            log.info("journal replayed: %s", self.recovery)
        self._start_monitoring()
        self._restore_controls()
        core.begin_recovery()
        groups: dict[tuple[str, int], list[FixSession]] = {}
        for name, session in self.sessions.items():
            if session.config.is_initiator:
                continue
            groups.setdefault((session.config.host, session.config.port), []).append(session)
        for (host, port), members in groups.items():
            bound = self.reactor.listen(host, port, members)
            for session in members:
                self.listen_ports[session.name] = bound
        for session in self.sessions.values():
            if session.config.is_initiator:
                self.reactor.connect(session)
        self.reactor.add_poller(core.poll)
        if self._market_data is not None:
            self.reactor.add_poller(self._market_data_poller(self._market_data))
        self.reactor.call_later(HOUSEKEEPING_INTERVAL_S, self._housekeeping)
        self._start_model_watcher()
        self._start_console()

    def _market_data_poller(self, spec: Any) -> Callable[[], int]:
        if callable(spec):
            return spec(self.engine)
        if isinstance(spec, str):
            host, _, port = spec.rpartition(":")
            try:
                spec = (host or "127.0.0.1", int(port))
            except ValueError:
                raise GatewayError(f"market data address must be host:port, got {spec!r}") from None
        from sor.feed.udp import MdReceiver

        self.market_data_receiver = MdReceiver(tuple(spec), self.engine.publish_market_data)
        return self.market_data_receiver.poll

    def _housekeeping(self) -> None:
        assert self.reactor is not None and self.core is not None
        try:
            self.engine.check()
        except EngineCrashedError as error:
            # a late heartbeat from an engine that still runs is a starved thread (an
            # overloaded host), not a crash: it is counted and the gateway goes on, up to a
            # hard limit; a failed or dead engine stops the gateway at once
            status = self.engine.status()
            alive = status["state"] == "running" and os.path.exists(
                f"/proc/{status['engine_pid']}")
            if alive and status["heartbeat_age_ms"] < ENGINE_STALL_LIMIT_S * 1000:
                self.core.counters["engine_heartbeat_late"] += 1
                log.warning("%s; the engine still runs, the gateway goes on", error)
            else:
                log.error("%s; the gateway stops", error)
                self.error = error
                self.reactor.stop()
                return
        self.core.retry_orphans()
        self.core.drain_decisions()
        self.core.flush_risk_reports()
        self.core.send_account_states()
        self.core.journal.flush()
        try:
            self._monitoring_tick()
        except Exception:  # metrics or the audit file must not stop routing
            log.exception("monitoring housekeeping failed")
        self.reactor.call_later(HOUSEKEEPING_INTERVAL_S, self._housekeeping)

    def add_poller(self, fn: Callable[[], int]) -> None:
        """Runs `fn` on every reactor pass (e.g. a market-data receiver)."""
        if self.reactor is None:
            raise GatewayError("start the gateway first")
        self.reactor.add_poller(fn)

    def call_soon(self, fn: Callable[[], Any]) -> None:
        """Runs `fn` on the reactor thread (callable from any thread)."""
        if self.reactor is None:
            raise GatewayError("start the gateway first")
        self.reactor.call_soon_threadsafe(fn)

    def run(self, timeout_s: float | None = None) -> None:
        """Runs the reactor on this thread until stop() (or `timeout_s`)."""
        if self.reactor is None:
            raise GatewayError("start the gateway first")
        self._loop_thread = threading.current_thread()
        self.reactor.run(timeout_s=timeout_s)
        if self.error is not None:
            raise GatewayError(f"the gateway stopped: {self.error}") from self.error

    def start_thread(self) -> threading.Thread:
        """Starts (when needed) and runs the reactor on a new thread; returns the thread."""
        if not self._started:
            self.start()
        assert self.reactor is not None
        reactor = self.reactor
        self._thread = threading.Thread(target=reactor.run, name="sor-gateway", daemon=True)
        self._loop_thread = self._thread
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Makes run() return (callable from any thread and from a signal handler)."""
        if self.reactor is not None:
            self.reactor.stop()

    def close(self, logout_timeout_s: float = 2.0) -> None:
        """Logs the sessions out, stops the reactor and the engine, flushes and closes the
        journal and the stores, and unlocks the state folder."""
        if not self._started:
            return
        if self.console is not None:  # no operator action while the router goes down
            try:
                self.console.close()
            except Exception:
                log.exception("closing the console")
            self.console = None
        self._stop_model_watcher()
        if self.core is not None:
            self.core.closing = True  # the router's own logouts cancel nothing
        reactor = self.reactor
        if reactor is not None:
            self.stop()
            if self._thread is not None:
                self._thread.join()
                self._thread = None
            try:
                live = [s for s in self.sessions.values() if s.is_logged_on]
                for session in live:
                    session.logout("router shutting down")
                if live:
                    reactor.run(stop_when=lambda: not any(s.connected for s in live),
                                timeout_s=logout_timeout_s)
            finally:
                reactor.close()
        self._release()

    def _release(self) -> None:
        self._stop_model_watcher()
        if self.console is not None:
            try:
                self.console.close()
            except Exception:
                log.exception("closing the console")
            self.console = None
        if self.market_data_receiver is not None:
            self.market_data_receiver.close()
            self.market_data_receiver = None
        for session in self.sessions.values():
            try:
                session.close()
            except Exception:
                log.exception("closing session %s", session.name)
        self.sessions.clear()
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        if self.audit_journal is not None:
            try:
                self.audit_journal.close()
            except Exception:
                log.exception("closing the audit journal %s", self.audit_journal.path)
            self.audit_journal = None
        if self.engine is not None:
            self.engine.stop()
            self.engine = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
        self._started = False

    def __enter__(self) -> Gateway:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- introspection ------------------------------------------------------------------------

    @property
    def oms_port(self) -> int:
        """The port the first OMS acceptor listens on."""
        for config in self.session_configs:
            if config.application == "oms" and config.name in self.listen_ports:
                return self.listen_ports[config.name]
        raise GatewayError("no OMS acceptor session")

    def status(self) -> dict[str, Any]:
        """Returns the core's status with each session's state and sequence numbers (taken on
        the reactor thread when it runs on another one)."""
        if self.core is None:
            return {"started": False}
        try:
            return self._on_reactor(self._status, timeout_s=5.0)
        except TimeoutError:
            return self._status()

    def _status(self) -> dict[str, Any]:
        assert self.core is not None
        status = self.core.status()
        status["sessions"] = {name: {"state": s.state.name.lower(),
                                     "next_sender_seq_num": s.next_sender_seq_num,
                                     "next_target_seq_num": s.next_target_seq_num}
                              for name, s in self.sessions.items()}
        status["recovery"] = dict(self.recovery)
        return status

    # --- monitoring: audit journal, metrics, Python model guards, console ------------------

    def _start_monitoring(self) -> None:
        """Opens the run's audit journal and the metrics, and arms the Python model guards;
        each is fed from the core's listeners on the reactor thread."""
        core = self._require_core()
        if self._audit:
            from sor.monitor import AuditJournal

            day = int(self.engine.params()["trading_day"])
            journal = AuditJournal.new_run(self.audit_dir, metadata={
                "engine": self.engine.name, "state_dir": self.state_dir,
                "incarnation": core.incarnation, "pid": os.getpid(),
                "trading_day": f"{day // 10_000:04d}-{day // 100 % 100:02d}-{day % 100:02d}",
                "venues": {str(int(v.venue_id)): v.name for v in self.config.venues},
                "instruments": {str(int(i.instrument_id)): i.symbol
                                for i in self.config.instruments},
                "models": self.engine.model_versions})
            self.audit_journal = journal
            core.audit_listeners.append(journal.append_audit)
            core.decision_listeners.append(journal.append_decisions)
            self.event_sinks.append(lambda kind, fields: journal.append_event(kind, **fields))
        if self._metrics_option is not False and self._metrics_option is not None:
            if self._metrics_option is True:
                from sor.monitor import RouterMetrics

                self.metrics = RouterMetrics(venue_names={int(v.venue_id): v.name
                                                          for v in self.config.venues})
            else:
                self.metrics = self._metrics_option
            core.decision_listeners.append(self.metrics.observe_decisions)
        if self._model_guards:
            from sor.monitor import ModelGuardMonitor

            profile = self._feature_profile()
            self._drift_possible = profile is not None
            self.guard_monitor = ModelGuardMonitor(self._guard_settings(self.config), profile,
                                                   self._on_guard_trip)
            core.decision_listeners.append(self.guard_monitor.observe_decisions)
            self.model_enable_listeners.append(self.guard_monitor.rearm)
        if self.metrics is not None or self.guard_monitor is not None:
            # the metrics and the guards take the audit records at the housekeeping tick, in
            # one batch: off the order path (the metrics cost some 60 us a call)
            core.audit_listeners.append(self._audit_pending.append)

    def _guard_settings(self, config: RouterConfig) -> Any:
        """Returns the configuration's guard settings, the drift guard off without a profile."""
        settings = config.guardrails
        if settings.drift_enabled and not self._drift_possible:
            settings = settings.replace(drift_enabled=False)
        return settings

    def _feature_profile(self) -> Any:
        """Returns the training feature profile of the models in use (the registry given, else
        the shipped one), None (drift guard off, logged) when there is none."""
        from sor.errors import FeatureProfileError, ModelError
        from sor.models.registry import ModelRegistry

        try:
            models = self._models
            registry = models if isinstance(models, ModelRegistry) else ModelRegistry(models)
            return registry.feature_profile()
        except (FeatureProfileError, ModelError, OSError) as error:
            log.warning("no feature profile for the drift guard (%s): it is off", error)
            return None

    def _on_guard_trip(self, reason: Any, detail: str) -> None:
        """A Python guard fired (inside a listener on the reactor): the fallback is forced
        after the listener returns."""
        if self.metrics is not None:
            self.metrics.observe_guard_trip(reason)
        value = int(reason)
        if self.reactor is None:
            return
        self.reactor.call_soon_threadsafe(lambda: self._guard_trip(value, detail))

    def _guard_trip(self, reason: int, detail: str) -> None:
        try:
            self._force_fallback(reason, detail)
        except Exception as error:
            log.exception("forcing the fallback for guard %s failed", reason)
            self._event("model_guard", "error", f"the fallback for "
                        f"{_GUARD_NAMES.get(reason, reason)} could not be forced: {error}")

    def _monitoring_tick(self) -> None:
        """Each housekeeping tick: new order-path latencies and the status to the metrics, the
        audit journal flushed."""
        core = self._require_core()
        if self._audit_pending:
            batch = np.concatenate(self._audit_pending)
            self._audit_pending.clear()
            if self.metrics is not None:
                self.metrics.observe_audit(batch)
            if self.guard_monitor is not None:
                self.guard_monitor.observe_audit(batch)
        if self.metrics is not None:
            samples, self._latency_mark = core.latency_since(self._latency_mark)
            if len(samples):
                self.metrics.observe_order_latency_ns(samples)
            self.metrics.update_status({"engine": self.engine.status(),
                                        "gateway": self._status()})
        if self.audit_journal is not None:
            self.audit_journal.flush()

    def _start_model_watcher(self) -> None:
        watch, interval_s = self._watch_models
        registry = getattr(self.engine, "models_registry", None)
        if not watch or registry is None:
            return
        from sor.models.watch import RegistryWatcher

        self.model_watcher = RegistryWatcher(self.engine, registry, interval_s=interval_s,
                                             on_event=self._on_model_event).start()
        log.info("watching the model registry %s every %.3g s", registry.root, interval_s)

    def _stop_model_watcher(self) -> None:
        watcher, self.model_watcher = self.model_watcher, None
        if watcher is not None:
            watcher.stop()

    def _on_model_event(self, event: dict[str, Any]) -> None:
        """A hot swap or a refused one (on the watcher's thread): an event on the reactor."""
        kind = str(event["kind"])
        fields = {k: v for k, v in event.items() if k not in ("kind", "ts_ns")}
        if kind == "models_swapped":
            changes = ", ".join(f"{name} v{c['from']} -> v{c['to']}"
                                for name, c in sorted(event["models"].items()))
            text = (f"models swapped: {changes} (promoted by {event.get('operator')}: "
                    f"{event.get('reason')}; loaded in {event['load_ms']:.0f} ms, installed in "
                    f"{event['install_us']:.0f} us)")
            severity = "info"
        else:
            text = (f"model swap refused: {event.get('name')} v{event.get('version')}: "
                    f"{event.get('error')}; the previous models keep running")
            severity = "error"
        reactor = self.reactor
        if reactor is not None and reactor.running and self._loop_thread is not None and \
                threading.current_thread() is not self._loop_thread:
            reactor.call_soon_threadsafe(lambda: self._event(kind, severity, text, **fields))
        else:
            self._event(kind, severity, text, **fields)

    def _start_console(self) -> None:
        port, host, token = self._console_options
        if port is None:
            return
        from sor.monitor.console import ConsoleServer

        self.console = ConsoleServer(self, host=host, port=int(port), metrics=self.metrics,
                                     token=token)
        self.console.start()
        log.info("operator console on %s", self.console.url)

    # --- operator control (thread-safe: each runs on the reactor thread) ------------------

    def _on_reactor(self, fn: Callable[[], Any], timeout_s: float = OPERATOR_TIMEOUT_S) -> Any:
        """Returns fn() run on the reactor thread (at once when called there or when the
        reactor does not run); its exception is raised here. TimeoutError when the reactor
        does not get to it within `timeout_s`."""
        reactor = self.reactor
        if reactor is None or not reactor.running or self._loop_thread is None or \
                threading.current_thread() is self._loop_thread:
            return fn()
        outcome: list[Any] = []
        done = threading.Event()

        def call() -> None:
            try:
                outcome.append((True, fn()))
            except BaseException as error:  # handed to the caller's thread
                outcome.append((False, error))
            finally:
                done.set()

        reactor.call_soon_threadsafe(call)
        if not done.wait(timeout_s):
            raise TimeoutError(f"the gateway's reactor did not run the call within {timeout_s} s")
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def _require_core(self) -> GatewayCore:
        if self.core is None:
            raise GatewayError("start the gateway first")
        return self.core

    def _record_event(self, kind: str, severity: str, text: str, **fields: Any) -> None:
        """Keeps an event (events(), the console) and hands it to the event sinks."""
        entry = {"ts_ns": time.time_ns(), "kind": kind, "severity": severity, "text": text,
                 **fields}
        with self._events_lock:
            self._event_seq += 1
            entry["seq"] = self._event_seq
            self._events.append(entry)
        payload = {k: v for k, v in entry.items() if k not in ("kind", "seq")}
        for sink in self.event_sinks:
            try:
                sink(kind, payload)
            except Exception:
                log.exception("event sink failed on %s", kind)

    def _event(self, kind: str, severity: str, text: str, **fields: Any) -> None:
        level = {"error": logging.ERROR, "warning": logging.WARNING}.get(severity, logging.INFO)
        log.log(level, "%s: %s", kind, text)
        self._record_event(kind, severity, text, **fields)

    def _on_operator_event(self, event: dict[str, Any]) -> None:
        """An operator action taken on the engine directly (not through this gateway, whose
        own actions make their own events): recorded with who and why."""
        if self.core is not None:
            self.core.note_engine_operator(str(event.get("operator") or ""),
                                           str(event.get("reason") or ""))
        if getattr(self, "_acting", False):
            return
        action = str(event.get("action", "operator"))
        detail = event.get("detail")
        text = (f"{action} by {event.get('operator')}: {event.get('reason')}"
                f"{f' ({detail})' if detail else ''}")
        fields = {"operator": event.get("operator"), "reason": event.get("reason"),
                  "action": action, "detail": None if detail is None else str(detail)}
        if self.reactor is not None and self.reactor.running and self._loop_thread is not None \
                and threading.current_thread() is not self._loop_thread:
            self.reactor.call_soon_threadsafe(lambda: self._event("operator", "warning", text,
                                                                  **fields))
        else:
            self._event("operator", "warning", text, **fields)

    def _engine_action(self, fn: Callable[[], Any]) -> Any:
        self._acting = True
        if self.core is not None:
            self.core.operator_acting = True
        try:
            return fn()
        finally:
            self._acting = False
            if self.core is not None:
                self.core.operator_acting = False

    def _restore_controls(self) -> None:
        """Puts the engine back in the risk state and model mode the journal holds (a halt or
        a tripped model guard survives a crash), or takes the configuration's state."""
        core = self._require_core()
        journaled = core.risk_changed_ns > 0
        if journaled:
            if core.risk_state != risk_state_value(self.engine.params()["risk_state"]):
                self._engine_action(lambda: self.engine.set_risk_state(
                    core.risk_state, operator=core.risk_operator or "router",
                    reason=f"restored after a restart: {core.risk_reason}"))
            if core.risk_state:
                self._event("risk_state", "warning",
                            f"routing {_RISK_STATE_NAMES[core.risk_state]} restored from the "
                            f"journal (set by {core.risk_operator}: {core.risk_reason})",
                            operator=core.risk_operator, reason=core.risk_reason,
                            state=_RISK_STATE_NAMES[core.risk_state])
        else:
            core.risk_state = risk_state_value(self.engine.params()["risk_state"])
            core.risk_operator = "configuration" if core.risk_state else ""
            core.risk_reason = "risk.state at start" if core.risk_state else ""
        if core.model_tripped:
            reason = core.model_guard_reason or _GUARD_REASONS["OPERATOR"]
            detail = f"restored after a restart: {core.model_detail}"
            core.model_tripped = False  # tripped again, with an event saying why
            self._force_fallback(reason, detail)

    def set_risk_state(self, state: Any, *, operator: str, reason: str) -> dict[str, Any]:
        """Sets the risk state (ACTIVE, REDUCING, HALTED: the enum, its value or its name)
        with who and why, and returns what was done. HALTED first closes the gateway's own
        gate (no child leaves; each is answered to the engine as rejected) and sends a cancel
        for every child known open, so the halt holds even when the engine does not answer;
        then the engine is told. Every working parent gets a restated report "routing <STATE>
        by <operator>: <reason>". Journaled: the state survives a restart."""
        value = risk_state_value(state)
        operator, reason = _who_and_why(operator, reason)
        return self._on_reactor(lambda: self._set_risk_state(value, operator, reason))

    def _set_risk_state(self, state: int, operator: str, reason: str) -> dict[str, Any]:
        core = self._require_core()
        engine_error = None
        if state == _RISK_STATES["HALTED"]:
            result = core.set_risk_state(state, operator, reason)
            try:
                self._engine_action(lambda: self.engine.set_risk_state(
                    state, operator=operator, reason=reason))
            except Exception as error:
                engine_error = f"{type(error).__name__}: {error}"
                self._event("risk_state", "error", f"the engine did not confirm HALTED "
                            f"({engine_error}); the gateway's gate is closed",
                            operator=operator, reason=reason)
        else:
            try:
                self._engine_action(lambda: self.engine.set_risk_state(
                    state, operator=operator, reason=reason))
            except Exception as error:
                raise GatewayError(f"the engine refused risk state "
                                   f"{_RISK_STATE_NAMES[state]}: {error}") from error
            result = core.set_risk_state(state, operator, reason)
        core.poll()
        return {"state": _RISK_STATE_NAMES[state],
                "previous": _RISK_STATE_NAMES.get(result["previous"], str(result["previous"])),
                "child_cancels": result["child_cancels"],
                "parents_told": result["parents_told"], "engine_error": engine_error}

    def halt(self, *, operator: str, reason: str) -> dict[str, Any]:
        """Sets HALTED (the kill switch); see set_risk_state."""
        return self.set_risk_state("HALTED", operator=operator, reason=reason)

    def reduce(self, *, operator: str, reason: str) -> dict[str, Any]:
        """Sets REDUCING; see set_risk_state."""
        return self.set_risk_state("REDUCING", operator=operator, reason=reason)

    def resume(self, *, operator: str, reason: str) -> dict[str, Any]:
        """Sets ACTIVE; see set_risk_state."""
        return self.set_risk_state("ACTIVE", operator=operator, reason=reason)

    def enable_model(self, *, operator: str, reason: str) -> dict[str, Any]:
        """Re-enables model routing after a guard trip (the engine's latch and any forced
        fallback are cleared; the Python guards are re-armed) with who and why; returns the
        model status."""
        operator, reason = _who_and_why(operator, reason)
        return self._on_reactor(lambda: self._enable_model(operator, reason))

    def _enable_model(self, operator: str, reason: str) -> dict[str, Any]:
        core = self._require_core()
        self._engine_action(lambda: self.engine.enable_model(operator=operator, reason=reason))
        for rearm in self.model_enable_listeners:
            rearm()
        core.operator_acting = True
        try:
            core.poll()  # the engine's MODEL_GUARD re-enabled record, when it was tripped
        finally:
            core.operator_acting = False
        core.model_enabled(operator, reason)
        return self._model_status()

    def force_fallback(self, reason: Any, detail: str) -> dict[str, Any]:
        """Sends routing to the fallback policy for `reason` (a ModelGuardReason: the Python
        guards and operators) until enable_model; returns the model status."""
        value = reason if isinstance(reason, int) else _GUARD_REASONS.get(
            getattr(reason, "name", str(reason)).upper())
        if value is None or value not in _GUARD_NAMES or value == 0:
            raise OperatorActionError(f"a fallback needs a ModelGuardReason other than NONE, "
                                      f"got {reason!r}")
        return self._on_reactor(lambda: self._force_fallback(int(value), str(detail)))

    def _force_fallback(self, reason: int, detail: str) -> dict[str, Any]:
        core = self._require_core()
        core.note_model_detail(detail)
        self._engine_action(lambda: self.engine.force_fallback(
            _core.ModelGuardReason(reason), detail))
        core.poll()  # the engine's MODEL_GUARD trip record
        core.note_model_detail("")
        core.model_trip(reason, detail)  # recorded even when the engine wrote none
        return self._model_status()

    def update_config(self, change: Any, *, operator: str, reason: str) -> list[Any]:
        """Validates and applies a configuration change (a RouterConfig or a function of
        the current one) to the running engine with who and why; returns the changes. A
        refused change raises ConfigError and nothing changes."""
        operator, reason = _who_and_why(operator, reason)
        return self._on_reactor(lambda: self._update_config(change, operator, reason))

    def _update_config(self, change: Any, operator: str, reason: str) -> list[Any]:
        core = self._require_core()
        changes = self._engine_action(lambda: self.engine.update_config(
            change, operator=operator, reason=reason))
        core.set_config(self.engine.config)
        self.config = self.engine.config
        if self.guard_monitor is not None:
            settings = self._guard_settings(self.config)
            if settings != self.guard_monitor.settings:
                self.guard_monitor.update_settings(settings)
        if changes:
            listed = "; ".join(str(c) for c in changes)
            self._event("config", "warning", f"configuration changed by {operator}: {reason}: "
                        f"{listed}", operator=operator, reason=reason,
                        changes=[str(c) for c in changes])
        return changes

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        """Returns the events kept in memory whose seq is above `since` (oldest first): each
        {seq, ts_ns, kind, severity, text, ...} with operator and reason on operator actions."""
        with self._events_lock:
            return [dict(e) for e in self._events if e["seq"] > since]

    def _model_status(self) -> dict[str, Any]:
        core = self._require_core()
        status = dict(self.engine.model_status())
        return {"mode": _enum_name(status.get("mode"),
                                   {0: "MODEL", 1: "FALLBACK", 2: "NONE"}).upper(),
                "reason": _enum_name(status.get("reason", 0), _GUARD_NAMES),
                "detail": core.model_detail, "since_ns": core.model_since_ns,
                "policy": status.get("policy"), "fallback_policy": status.get("fallback_policy"),
                "trips": int(status.get("trips", 0)),
                "versions": self.engine.model_versions,
                "watching": self.model_watcher is not None}

    def console_state(self) -> dict[str, Any]:
        """Returns what the operator console shows (docs/guardrails.md, console_state)."""
        return self._on_reactor(self._console_state, timeout_s=5.0)

    def _console_state(self) -> dict[str, Any]:
        core = self._require_core()
        now = time.time_ns()
        engine = self.engine.status()
        config = self.engine.config
        total_orders = sum(v.orders for v in core.venue_stats.values())
        venues = []
        for venue in config.venues:
            venue_id = int(venue.venue_id)
            stats = core._venue(venue_id)
            session = core.venue_sessions.get(venue_id)
            venues.append({
                "venue_id": venue_id, "name": venue.name,
                "kind": getattr(venue.kind, "value", str(venue.kind)),
                "session": session.state.value if session is not None else None,
                "enabled": bool(venue.enabled), "orders": stats.orders, "fills": stats.fills,
                "filled_shares": stats.filled_shares, "rejects": stats.rejects,
                "risk_rejects": stats.risk_rejects,
                "fill_rate": (stats.filled_shares / stats.ordered_shares
                              if stats.ordered_shares else None),
                "route_share": stats.orders / total_orders if total_orders else 0.0})
        tick = core.tick_usd
        live = [p for p in core.parents.values() if p.status != DONE]
        done = sorted((p for p in core.parents.values() if p.status == DONE),
                      key=lambda p: p.done_ns, reverse=True)[:CONSOLE_DONE_PARENTS]
        parents = []
        filled = 0
        notional_ticks = 0
        cost_ticks = 0.0
        arrival_ticks = 0.0
        for parent in core.parents.values():
            filled += parent.cum_quantity
            notional_ticks += parent.notional_ticks
            if parent.cum_quantity > 0 and parent.arrival_mid_ticks > 0:
                sign = 1.0 if parent.side == 1 else -1.0
                cost_ticks += sign * (parent.notional_ticks
                                      - parent.arrival_mid_ticks * parent.cum_quantity)
                arrival_ticks += parent.arrival_mid_ticks * parent.cum_quantity
        for parent in live + done:
            parents.append({
                "cl_ord_id": parent.cl_ord_id, "symbol": parent.symbol,
                "side": _SIDE_NAMES.get(parent.side_code, parent.side_code),
                "quantity": parent.quantity, "cum_quantity": parent.cum_quantity,
                "avg_px": (parent.notional_ticks * tick / parent.cum_quantity
                           if parent.cum_quantity else None),
                "ord_status": _ORD_STATUS_NAMES.get(parent.ord_status(), parent.ord_status()),
                "is_bps": parent.implementation_shortfall_bps()})
        with self._events_lock:
            recent = list(self._events)[-CONSOLE_EVENTS:]
        risk_name = _RISK_STATE_NAMES.get(core.risk_state, str(core.risk_state))
        return {
            "ts_ns": now,
            "router": {"name": self.engine.name, "engine_state": engine["state"],
                       "heartbeat_age_ms": engine["heartbeat_age_ms"],
                       "uptime_s": (now - self._started_ns) / 1e9},
            "risk": {"state": risk_name, "operator": core.risk_operator,
                     "reason": core.risk_reason, "changed_ns": core.risk_changed_ns},
            "model": self._model_status(),
            "venues": venues,
            "parents": parents,
            "totals": {"filled_shares": filled, "notional_usd": notional_ticks * tick,
                       "is_bps": cost_ticks / arrival_ticks * 1e4 if arrival_ticks else None,
                       "orders": total_orders,
                       "fills": sum(v.fills for v in core.venue_stats.values()),
                       "risk_rejects": core.counters["risk_rejects"]},
            "events": [{"ts_ns": e["ts_ns"], "kind": e["kind"], "severity": e["severity"],
                        "text": e["text"]} for e in recent]}

    def __repr__(self) -> str:
        return f"<sor.fix.gateway.Gateway {self.state_dir!r} started={self._started}>"


def run_router(router_config: Any = None, session_configs: Any = None, *, state_dir: str,
               policy: str | None = None, models: Any = None, busy_poll: bool = False,
               market_data: Any = None, audit_dir: str | None = None,
               console_port: int | None = None, console_host: str = "127.0.0.1",
               console_token: str | None = None, watch_models: bool = True,
               on_ready: Callable[[Gateway], None] | None = None) -> int:
    """Runs a router in the foreground until SIGTERM or SIGINT (``sor router``); returns 0.
    The audit journal goes to `audit_dir` (default ``<state_dir>/audit``); with a
    `console_port` (0: any free port) the operator console is served there. With
    `watch_models` (default) the registry's promotions and rollbacks are hot-swapped into the
    engine (``sor.models.watch.RegistryWatcher``)."""
    import signal

    gateway = Gateway(router_config, session_configs, state_dir=state_dir, policy=policy,
                      models=models, busy_poll=busy_poll, market_data=market_data,
                      audit_dir=audit_dir, console_port=console_port,
                      console_host=console_host, console_token=console_token,
                      watch_models=watch_models)
    previous = {}

    def on_signal(signum: int, frame: Any) -> None:
        gateway.stop()

    gateway.start()
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, on_signal)
        if on_ready is not None:
            on_ready(gateway)
        gateway.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        gateway.close()
    return 0
