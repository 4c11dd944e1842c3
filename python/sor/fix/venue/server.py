"""The venue server: one real-time simulated market, one FIX acceptor session per venue, and
the venues' market data over UDP, all on one reactor thread.

Real time: the market opens when the server starts (``session_start_ns`` = the wall clock,
epoch ns) and every pass of the reactor runs it to the wall clock (``run_until(now)``), so
every event's ``ts_event`` is comparable to the router's clock. The simulator never runs
ahead of the wall clock; a pass costs microseconds, so it keeps up with room to spare, and
after a stall (a paused process) it catches up in one pass whose events carry their own
simulated times. Passes come at least every ``idle_wait_s`` (0.5 ms by default) and at once
when a FIX message arrives; an order therefore reaches the simulated venue at its arrival
time plus the venue's simulated order-entry latency, and its reports leave within one pass
of the simulated ack latency.

Embedded defaults (``sor demo``, ``default_venues.toml``): each venue of the router
configuration listens on its own port of 127.0.0.1 (XNAS 9881, BATS 9882, EDGX 9883, IEXG 9884,
DARK 9885; the router's embedded initiators connect there) as SenderCompID = the venue name,
TargetCompID = "SOR", FIX 4.2 for the lit exchanges and FIX 4.4 for the dark pool, with stores
in a temporary folder; market data on udp 127.0.0.1:9880 (``DEFAULT_MD_PORT``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from sor.config import RouterConfig
from sor.errors import ConfigError, UsageError
from sor.feed.udp import MdPublisher
from sor.fix.config import SessionConfig, load_sessions
from sor.fix.reactor import Reactor
from sor.fix.session import Application, FixSession
from sor.fix.venue.core import VenueCore, VenueMessageError
from sor.fix.venue.feed import VenueFeed
from sor.fix.venue.mapping import VenueMap, real_time_market, venue_map
from sor.sim.scenario import Scenario

DEFAULT_MD_PORT = 9880
_log = logging.getLogger("sor.fix.venue")


def default_venue_sessions(*, host: str | None = None, port: int | None = None,
                           begin_string: str | None = None,
                           store_dir: str | None = None) -> list[SessionConfig]:
    """Returns the embedded venue sessions (``default_venues.toml``: one acceptor per venue),
    with ``host``, ``port`` (0: one free port shared by all), ``begin_string`` or
    ``store_dir`` replaced in every session when given."""
    text = (resources.files("sor.fix.venue") / "default_venues.toml").read_text()
    changes: dict[str, Any] = {k: v for k, v in (("host", host), ("port", port),
                                                 ("begin_string", begin_string),
                                                 ("store_dir", store_dir)) if v is not None}
    return [config.replace(**changes) if changes else config for config in load_sessions(text)]


class _VenueApplication(Application):
    """The FIX adapter of one venue's session: messages to the core, events to the server."""

    def __init__(self, server: VenueServer, venue: str) -> None:
        self._server = server
        self._venue = venue

    def on_logon(self, session: FixSession) -> None:
        self._server._on_logon(self._venue, session)

    def on_logout(self, session: FixSession, reason: str) -> None:
        self._server._on_logout(self._venue, reason)

    def on_message(self, session: FixSession, message: Any) -> None:
        core = self._server.core
        try:
            handled = core.on_message(self._venue, message.msg_type, message)
        except VenueMessageError as problem:
            session.reject(message, problem.reason, str(problem), ref_tag=problem.tag)
            return
        if not handled:
            session.business_reject(message, 3, f"{self._venue} takes NewOrderSingle (D), "
                                                "OrderCancelRequest (F) and "
                                                "OrderCancelReplaceRequest (G)")


class VenueServer:
    """The simulated venues as FIX acceptors with their market data (see the module doc).

    ``VenueServer()`` takes the embedded defaults; ``sessions`` is a session TOML file (or
    text, or SessionConfig list) whose acceptor sessions name their venue (``venue`` key, else
    their SenderCompID). ``start()`` runs it on a thread, ``run()`` in the calling thread
    until ``stop()``; ``close()`` frees everything. A context manager (start/close)."""

    def __init__(self, sessions: str | Path | Sequence[SessionConfig] | None = None, *,
                 router_config: RouterConfig | None = None,
                 scenario: Scenario | str | Path = "default", seed: int | None = None,
                 fix_host: str | None = None, fix_port: int | None = None,
                 begin_string: str | None = None, md_host: str = "127.0.0.1",
                 md_port: int = DEFAULT_MD_PORT, cancel_on_disconnect: bool = True,
                 idle_wait_s: float = 0.0005, summary_interval_s: float = 0.0,
                 log: Callable[[str], Any] | None = None, fix42_liquidity_tag: int = 851) -> None:
        self.mapping: VenueMap = venue_map(router_config, scenario)
        self._scenario = scenario
        self._seed = seed
        self._temp_store: str | None = None
        if sessions is None:
            self._temp_store = tempfile.mkdtemp(prefix="sor-venues-")
            configs = default_venue_sessions(store_dir=self._temp_store)
            names = {v.name for v in self.mapping.venues}
            configs = [c for c in configs if c.venue in names]  # a router with fewer venues
        elif isinstance(sessions, (str, Path)):
            configs = load_sessions(sessions)
        else:
            configs = list(sessions)
        changes = {k: v for k, v in (("host", fix_host), ("port", fix_port),
                                     ("begin_string", begin_string)) if v is not None}
        if changes:
            configs = [c.replace(**changes) for c in configs]
        self.session_configs = self._check_sessions(configs)
        self._md_address = (md_host, md_port)
        self._cancel_on_disconnect = cancel_on_disconnect
        self._fix42_liquidity_tag = fix42_liquidity_tag
        self._idle_wait_s = idle_wait_s
        self._summary_interval_s = summary_interval_s
        self._log = log
        self.core: VenueCore = None  # type: ignore[assignment]  # built by start()
        self.sessions: dict[str, FixSession] = {}
        self.fix_ports: dict[str, int] = {}
        self._reactor: Reactor | None = None
        self._publisher: MdPublisher | None = None
        self._feed: VenueFeed | None = None
        self._market: Any = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._closed = False
        self._stats = {"passes": 0, "max_pass_ns": 0, "events": 0, "logons": 0, "logouts": 0}
        self._summary_last = (0, 0)

    def _check_sessions(self, configs: list[SessionConfig]) -> list[SessionConfig]:
        seen: dict[str, str] = {}
        names = [v.name for v in self.mapping.venues]
        for config in configs:
            venue = config.venue or config.sender_comp_id
            if config.role != "acceptor":
                raise ConfigError(f"session {config.name!r} is an {config.role}; a venue session "
                                  "is an acceptor", key="role")
            if venue not in names:
                raise ConfigError(f"session {config.name!r} is for venue {venue!r}, which the "
                                  f"router configuration does not have ({', '.join(names)})",
                                  key="venue")
            if venue in seen:
                raise ConfigError(f"sessions {seen[venue]!r} and {config.name!r} are both for "
                                  f"venue {venue}", key="venue")
            seen[venue] = config.name
        if not configs:
            raise ConfigError("no venue session configured")
        return configs

    # --- addresses and state ----------------------------------------------------------------

    @property
    def md_address(self) -> tuple[str, int]:
        """Returns the (host, port) market-data receivers subscribe to (once started)."""
        if self._publisher is None:
            raise UsageError("the venue server is not started")
        return self._publisher.address

    def fix_address(self, venue: str | None = None) -> tuple[str, int]:
        """Returns the (host, port) ``venue``'s session listens on (default: the first)."""
        if not self.fix_ports:
            raise UsageError("the venue server is not started")
        for config in self.session_configs:
            if venue is None or (config.venue or config.sender_comp_id) == venue:
                return config.host, self.fix_ports[config.name]
        raise UsageError(f"no session for venue {venue!r}")

    @property
    def market(self) -> Any:
        """Returns the simulated market (read it on the server's thread, or after stop())."""
        return self._market

    def stats(self) -> dict[str, Any]:
        """Returns counters: passes, events published, datagrams, subscribers, orders, fills."""
        out = dict(self._stats)
        if self._publisher is not None:
            out.update({f"md_{k}": v for k, v in self._publisher.stats.items()})
            out["md_subscribers"] = self._publisher.subscriber_count
        if self.core is not None:
            out.update(self.core.stats)
            out["open_orders"] = len(self.core.open_orders())
        out["logged_on"] = sorted(v for v, s in self.sessions.items() if s.is_logged_on)
        return out

    # --- lifetime -----------------------------------------------------------------------------

    def _build(self) -> None:
        if self._closed:
            raise UsageError("the venue server is closed")
        if self._reactor is not None:
            raise UsageError("the venue server is already started")
        start_ns = time.time_ns()
        self._market = real_time_market(self.mapping, self._scenario, seed=self._seed,
                                        start_ns=start_ns)
        self._feed = VenueFeed(self._market, self.mapping)
        self.core = VenueCore(self._market, self.mapping, self._send,
                              run_id=format(start_ns // 1_000_000 % (36 ** 5), "x"),
                              fix42_liquidity_tag=self._fix42_liquidity_tag)
        self._publisher = MdPublisher(self._feed.snapshot, host=self._md_address[0],
                                      port=self._md_address[1])
        reactor = Reactor(idle_wait_s=self._idle_wait_s)
        self._reactor = reactor
        by_address: dict[tuple[str, int], list[FixSession]] = {}
        for config in self.session_configs:
            venue = config.venue or config.sender_comp_id
            session = FixSession(config, _VenueApplication(self, venue))
            self.sessions[venue] = session
            self.core.set_begin_string(venue, config.begin_string)
            by_address.setdefault((config.host, config.port), []).append(session)
        for (host, port), sessions in by_address.items():
            bound = reactor.listen(host, port, sessions)
            for session in sessions:
                self.fix_ports[session.name] = bound
        reactor.add_poller(self._poll)
        if self._summary_interval_s > 0:
            reactor.call_later(self._summary_interval_s, self._summary)
        self._say(f"venues open: {', '.join(self.sessions)} on FIX "
                  f"{', '.join(f'{h}:{self.fix_ports[s[0].name]}' for (h, _), s in by_address.items())}"
                  f", market data on udp {self.md_address[0]}:{self.md_address[1]} "
                  f"(scenario {self._market.scenario.name}, seed {self._market.spec.seed})")

    def start(self) -> VenueServer:
        """Starts the venues on a thread of this process; returns self once they listen."""
        self._build()

        def run() -> None:
            try:
                self._reactor.run()
            except BaseException as error:  # pragma: no cover - reported by stop()
                self._failure = error
                _log.exception("venue server crashed")

        self._thread = threading.Thread(target=run, name="sor-venues", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Runs the venues in this thread until ``stop()`` (e.g. from a signal handler)."""
        self._build()
        self._reactor.run()

    def stop(self) -> None:
        """Stops the loop (the sessions disconnect at close()); callable from any thread."""
        if self._reactor is not None:
            self._reactor.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
            self._thread = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise UsageError(f"the venue server stopped on an error: {failure}") from failure

    def close(self) -> None:
        """Stops, disconnects every session, closes sockets, stores and the market."""
        if self._closed:
            return
        try:
            self.stop()
        finally:
            self._closed = True
            if self._reactor is not None:
                self._reactor.close()
            for session in self.sessions.values():
                session.close()
            if self._publisher is not None:
                self._publisher.close()
            if self._market is not None:
                self._market.close()
            if self._temp_store is not None:
                shutil.rmtree(self._temp_store, ignore_errors=True)

    def __enter__(self) -> VenueServer:
        if self._reactor is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, fn: Callable[[], Any], timeout_s: float = 5.0) -> Any:
        """Runs ``fn()`` on the server's thread and returns its result (for tests and tools
        that read the market or the core while the server runs)."""
        if self._thread is None:
            return fn()
        done = threading.Event()
        box: list[Any] = []

        def call() -> None:
            try:
                box.append((True, fn()))
            except BaseException as error:  # noqa: BLE001 - handed to the caller
                box.append((False, error))
            done.set()

        self._reactor.call_soon_threadsafe(call)
        if not done.wait(timeout_s):
            raise UsageError(f"the venue server did not run the call within {timeout_s} s")
        ok, value = box[0]
        if not ok:
            raise value
        return value

    # --- the loop -------------------------------------------------------------------------------

    def _poll(self) -> int:
        t0 = time.time_ns()
        self.core.advance(t0)
        events = self._feed.collect()
        if len(events):
            self._publisher.publish(events)
            self._stats["events"] += len(events)
        work = self._publisher.poll()
        spent = time.time_ns() - t0
        self._stats["passes"] += 1
        if spent > self._stats["max_pass_ns"]:
            self._stats["max_pass_ns"] = spent
        # Market time is driven by the clock, not by backlog: report only socket work, so
        # the reactor waits idle_wait_s between passes instead of spinning.
        return work

    def _send(self, venue: str, msg_type: str, body: list[tuple[int, Any]]) -> None:
        self.sessions[venue].send(msg_type, body)

    def _on_logon(self, venue: str, session: FixSession) -> None:
        self._stats["logons"] += 1
        self._say(f"{venue} logon ({session.config.begin_string}, "
                  f"{session.config.sender_comp_id}<->{session.config.target_comp_id})")

    def _on_logout(self, venue: str, reason: str) -> None:
        self._stats["logouts"] += 1
        cancelled = self.core.cancel_all(venue) if self._cancel_on_disconnect else 0
        tail = f"; cancelling {cancelled} open order(s)" if cancelled else ""
        self._say(f"{venue} logout ({reason}){tail}")

    def _summary(self) -> None:
        stats = self.stats()
        events, t = stats["events"], time.monotonic()
        last_events, last_t = self._summary_last
        rate = f" ({(events - last_events) / (t - last_t):,.0f}/s)" if last_t else ""
        self._summary_last = (events, t)
        self._say(f"md {events:,} events{rate}, {stats['md_subscribers']} subscriber(s); "
                  f"orders {stats['orders']:,}, fills {stats['fills']:,} "
                  f"({stats['filled_shares']:,} shares), open {stats['open_orders']}, rejects "
                  f"{stats['rejects']}; logged on: {', '.join(stats['logged_on']) or 'none'}")
        if self._reactor is not None:
            self._reactor.call_later(self._summary_interval_s, self._summary)

    def _say(self, line: str) -> None:
        _log.info(line)
        if self._log is not None:
            self._log(line)
