"""The router process: the engine (embedded thread), the FIX sessions (OMS acceptors, one
initiator per venue) on one reactor, the gateway core between them, and its state folder.

The state folder holds the order-state journal (``journal``), the sessions' message stores
(a relative ``store_dir``/``store_path`` of a session is taken inside it) and a lock file that
keeps a second router off the same state.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterable
from importlib import resources
from typing import Any

from sor.config import RouterConfig, default_config, load, with_changes
from sor.errors import EngineCrashedError, GatewayError
from sor.fix.config import SessionConfig, load_sessions, loads_sessions
from sor.fix.gateway.apps import OmsApplication, VenueApplication
from sor.fix.gateway.core import GatewayCore
from sor.fix.journal import Journal
from sor.fix.reactor import Reactor
from sor.fix.session import FixSession

log = logging.getLogger("sor.fix.gateway")

HOUSEKEEPING_INTERVAL_S = 0.5
ENGINE_STALL_LIMIT_S = 30.0
"""An engine that still runs but has not heartbeaten for this long stops the gateway."""


def default_sessions() -> list[SessionConfig]:
    """Returns the embedded router sessions (``sor/config/default_fix.toml``)."""
    resource = resources.files("sor.config").joinpath("default_fix.toml")
    return loads_sessions(resource.read_text(encoding="utf-8"), source=str(resource))


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
                 market_data: Any = None, codec: Any = None) -> None:
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
        self._lock_fd = -1
        self._thread: threading.Thread | None = None
        self._started = False

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

        self.engine = Engine(self.config, models=self._models, policy=self._policy,
                             policy_params=self._policy_params).start()
        self.journal = Journal(os.path.join(self.state_dir, "journal"), sync=self._journal_sync)
        core = GatewayCore(self.config, self.engine, self.journal,
                           spin_limit_ns=self._spin_limit_ns)
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
        self.core.journal.flush()
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
        reactor = self.reactor
        if reactor is not None and reactor.running and self._thread is not None and \
                threading.current_thread() is not self._thread:
            result: dict[str, Any] = {}
            done = threading.Event()

            def take() -> None:
                try:
                    result.update(self._status())
                finally:
                    done.set()

            reactor.call_soon_threadsafe(take)
            if done.wait(5.0):
                return result
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

    def __repr__(self) -> str:
        return f"<sor.fix.gateway.Gateway {self.state_dir!r} started={self._started}>"


def run_router(router_config: Any = None, session_configs: Any = None, *, state_dir: str,
               policy: str | None = None, models: Any = None, busy_poll: bool = False,
               market_data: Any = None,
               on_ready: Callable[[Gateway], None] | None = None) -> int:
    """Runs a router in the foreground until SIGTERM or SIGINT (``sor router``); returns 0."""
    import signal

    gateway = Gateway(router_config, session_configs, state_dir=state_dir, policy=policy,
                      models=models, busy_poll=busy_poll, market_data=market_data)
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
