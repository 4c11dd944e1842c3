"""A one-thread TCP event loop for FIX sessions: acceptors, initiators, timers, pollers.

Everything runs on the thread that calls :meth:`Reactor.run`: socket reads and writes, the
sessions' state machines and application callbacks, timers and pollers. Other threads talk to
it only through :meth:`Reactor.call_soon_threadsafe` (and :meth:`Reactor.stop`).

* Sockets are non-blocking with TCP_NODELAY. A session's ``send`` writes to the socket at once
  when nothing is queued; what the kernel does not take is kept in the connection's outbound
  buffer and written when the socket is writable (a peer that lets more than
  ``max_outbound_bytes`` pile up is disconnected).
* Several acceptor sessions may listen on one port: a new connection is matched to a session by
  the CompIDs of its Logon (the Logon's SenderCompID is the session's target_comp_id and its
  TargetCompID the session's sender_comp_id, BeginString equal). A connection whose first
  message is not a valid Logon of a configured, disconnected session is closed without a reply
  (logged to ``sor.fix.reactor``, or to the session's logger for a duplicate logon).
* Initiators connect, and reconnect every ``reconnect_interval_s`` while ``session.reconnect``.
* Closing a connection flushes what was sent, then shuts down the write side and drains input
  for up to ``linger_s`` so that the peer reads our last message (a Logout) before the FIN.
* With ``busy_poll=True`` the loop never sleeps (select with a zero timeout); otherwise it
  waits in select for at most ``idle_wait_s`` when a pass found no work (pollers that return a
  positive count mean work).
"""

from __future__ import annotations

import collections
import errno
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from sor.errors import FixParseError, FixSessionError
from sor.fix.codec import FixFramer, FrameStatus, parse
from sor.fix.session import FixSession, printable

_log = logging.getLogger("sor.fix.reactor")
_NS = 1_000_000_000
_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE


class Timer:
    """A call scheduled by :meth:`Reactor.call_later`; :meth:`cancel` stops it."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: float, callback: Callable[[], Any]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Stops the call from happening (no effect once it ran)."""
        self.cancelled = True


class _Listener:
    __slots__ = ("sock", "sessions", "address")

    def __init__(self, sock: socket.socket, sessions: list[FixSession],
                 address: tuple[str, int]) -> None:
        self.sock = sock
        self.sessions = sessions
        self.address = address


class _Connection:
    """One TCP connection: its socket, its session (once known) and its outbound buffer."""

    __slots__ = ("reactor", "sock", "session", "peer", "outbound", "state", "framer", "received",
                 "deadline", "listener", "mask", "initiator_session")

    def __init__(self, reactor: Reactor, sock: socket.socket, peer: Any) -> None:
        self.reactor = reactor
        self.sock = sock
        self.session: FixSession | None = None
        self.peer = peer
        self.outbound = bytearray()
        # connecting | identifying | open | failing | closing | draining | closed
        self.state = "open"
        self.framer: FixFramer | None = None
        self.received: bytearray | None = None
        self.deadline = 0.0
        self.listener: _Listener | None = None
        self.mask = 0
        self.initiator_session: FixSession | None = None

    def send(self, data: bytes) -> None:
        """Writes ``data`` now, or queues what the socket does not take."""
        if self.state != "open":
            return
        if self.outbound:
            self.outbound += data
            if len(self.outbound) > self.reactor.max_outbound_bytes:
                self._fail(f"outbound buffer above {self.reactor.max_outbound_bytes} bytes "
                           f"(slow peer)")
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            self._fail(f"send failed: {error.strerror or error}")
            return
        if sent < len(data):
            self.outbound += data[sent:]
            self.reactor._set_mask(self, _READ | _WRITE)

    def _fail(self, reason: str) -> None:
        # The caller is inside a session (maybe inside an application callback): the session
        # hears about the loss from the loop, not from under its own feet.
        self.state = "failing"
        self.reactor.call_later(0.0, lambda: self.reactor._lose(self, reason))

    def close_from_session(self) -> None:
        """The session asked to disconnect: flush, then close (the session already knows)."""
        self.session = None
        self.reactor._begin_close(self)


class Reactor:
    """A selectors-based event loop for FIX sessions on one thread."""

    def __init__(self, *, busy_poll: bool = False, idle_wait_s: float = 0.001,
                 timer_interval_s: float = 0.05, linger_s: float = 1.0,
                 max_outbound_bytes: int = 64 << 20) -> None:
        self.busy_poll = busy_poll
        self.idle_wait_s = idle_wait_s
        self.timer_interval_s = timer_interval_s
        self.linger_s = linger_s
        self.max_outbound_bytes = max_outbound_bytes
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._selector.register(self._wake_read, _READ, None)
        self._calls: collections.deque[Callable[[], Any]] = collections.deque()
        self._calls_lock = threading.Lock()
        self._timers: list[tuple[float, int, Timer]] = []
        self._timer_ids = itertools.count()
        self._pollers: list[Callable[[], int]] = []
        self._listeners: list[_Listener] = []
        self._connections: set[_Connection] = set()
        self._sessions: list[FixSession] = []
        self._initiators: dict[int, FixSession] = {}
        self._next_tick = 0.0
        self._stopping = False
        self._running = False
        self._closed = False
        self._thread: threading.Thread | None = None

    # -- public API ---------------------------------------------------------------------------

    def listen(self, host: str, port: int, sessions: list[FixSession]) -> int:
        """Accepts connections for ``sessions`` (acceptors) on host:port; returns the port bound
        (useful with port 0)."""
        self._check_open()
        identities: dict[tuple[str, str], str] = {}
        for session in sessions:
            if session.config.is_initiator:
                raise FixSessionError("is an initiator; listen() takes acceptors",
                                      session=session.name)
            identity = (session.config.sender_comp_id, session.config.target_comp_id)
            if identity in identities:
                raise FixSessionError(f"has the CompIDs {identity[0]}->{identity[1]} of session "
                                      f"{identities[identity]} on the same port",
                                      session=session.name)
            identities[identity] = session.name
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(64)
            sock.setblocking(False)
        except OSError as error:
            sock.close()
            raise FixSessionError(f"cannot listen on {host}:{port}: {error.strerror or error}",
                                  session=", ".join(s.name for s in sessions)) from None
        bound = sock.getsockname()
        listener = _Listener(sock, list(sessions), bound)
        self._listeners.append(listener)
        self._selector.register(sock, _READ, listener)
        for session in sessions:
            if session not in self._sessions:
                self._sessions.append(session)
        _log.info("listening on %s:%d for %s", bound[0], bound[1],
                  ", ".join(s.name for s in sessions))
        return bound[1]

    def connect(self, session: FixSession) -> None:
        """Connects an initiator session now, and again every ``reconnect_interval_s`` after
        each disconnect while ``session.reconnect`` (set True here)."""
        self._check_open()
        if not session.config.is_initiator:
            raise FixSessionError("is an acceptor; connect() takes initiators",
                                  session=session.name)
        session.reconnect = True
        self._initiators[id(session)] = session
        if session not in self._sessions:
            self._sessions.append(session)
        if threading.current_thread() is self._thread or not self._running:
            self._start_connect(session)
        else:
            self.call_soon_threadsafe(lambda: self._start_connect(session))

    def add_poller(self, fn: Callable[[], int]) -> None:
        """Calls ``fn()`` on every pass of the loop; it returns how much work it did (0: none)."""
        self._pollers.append(fn)

    def remove_poller(self, fn: Callable[[], int]) -> None:
        """Stops calling ``fn``."""
        self._pollers.remove(fn)

    def call_later(self, delay_s: float, fn: Callable[[], Any]) -> Timer:
        """Calls ``fn()`` on the loop after ``delay_s`` seconds; returns a cancellable Timer."""
        timer = Timer(time.monotonic() + max(0.0, delay_s), fn)
        heapq.heappush(self._timers, (timer.when, next(self._timer_ids), timer))
        return timer

    def call_soon_threadsafe(self, fn: Callable[[], Any]) -> None:
        """Calls ``fn()`` on the loop's thread as soon as possible; callable from any thread."""
        with self._calls_lock:
            self._calls.append(fn)
        try:
            self._wake_write.send(b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the pipe is full: the loop is already due to wake up
        except OSError:
            pass  # closed

    def run(self, stop_when: Callable[[], bool] | None = None,
            timeout_s: float | None = None) -> None:
        """Runs the loop on this thread until :meth:`stop`, ``stop_when()`` is true or
        ``timeout_s`` elapsed."""
        self._check_open()
        if self._running:
            raise FixSessionError("the reactor is already running")
        self._running = True
        self._stopping = False
        self._thread = threading.current_thread()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while not self._stopping:
                if stop_when is not None and stop_when():
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self._run_once(deadline)
        finally:
            self._running = False
            self._thread = None

    def stop(self) -> None:
        """Makes :meth:`run` return after the current pass; callable from any thread."""
        self._stopping = True
        self.call_soon_threadsafe(lambda: None)

    @property
    def running(self) -> bool:
        """Returns True while :meth:`run` is looping."""
        return self._running

    def close(self) -> None:
        """Closes every socket (sessions are told they are disconnected); idempotent. The
        sessions themselves and their stores stay open (their owner closes them)."""
        if self._closed:
            return
        if self._running and threading.current_thread() is not self._thread:
            raise FixSessionError("close() must run on the reactor thread or after run() "
                                  "returned")
        self._closed = True
        for session in self._sessions:
            session.reconnect = False
        for connection in list(self._connections):
            self._lose(connection, "reactor closed")
        for listener in self._listeners:
            self._unregister(listener.sock)
            listener.sock.close()
        self._listeners.clear()
        self._timers.clear()
        self._unregister(self._wake_read)
        self._wake_read.close()
        self._wake_write.close()
        self._selector.close()

    def __enter__(self) -> Reactor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- the loop -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise FixSessionError("the reactor is closed")

    def _run_once(self, deadline: float | None) -> None:
        work = 0
        for poller in self._pollers:
            try:
                work += poller() or 0
            except Exception:
                _log.exception("poller %r raised", poller)
        if self.busy_poll or work > 0 or self._calls:
            timeout = 0.0
        else:
            now = time.monotonic()
            timeout = self.idle_wait_s if self._pollers else max(self.timer_interval_s, 0.0)
            if self._timers:
                timeout = min(timeout, self._timers[0][0] - now)
            timeout = min(timeout, self._next_tick - now)
            if deadline is not None:
                timeout = min(timeout, deadline - now)
            timeout = max(timeout, 0.0)
        events = self._selector.select(timeout)
        if events:
            now_ns = time.time_ns()
            for key, mask in events:
                target = key.data
                if target is None:
                    self._drain_wake()
                elif type(target) is _Connection:
                    self._on_connection_event(target, mask, now_ns)
                else:
                    self._accept(target, now_ns)
        if self._calls:
            self._run_calls()
        monotonic = time.monotonic()
        timers = self._timers
        while timers and timers[0][0] <= monotonic:
            timer = heapq.heappop(timers)[2]
            if not timer.cancelled:
                try:
                    timer.callback()
                except Exception:
                    _log.exception("timer callback %r raised", timer.callback)
        if monotonic >= self._next_tick:
            self._next_tick = monotonic + self.timer_interval_s
            self._tick(monotonic)

    def _run_calls(self) -> None:
        with self._calls_lock:
            calls = list(self._calls)
            self._calls.clear()
        for call in calls:
            try:
                call()
            except Exception:
                _log.exception("call_soon_threadsafe callback %r raised", call)

    def _drain_wake(self) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _tick(self, monotonic: float) -> None:
        now_ns = time.time_ns()
        for session in self._sessions:
            if session.connected:
                try:
                    session.on_timer(now_ns)
                except Exception:
                    session.logger.exception("on_timer raised")
        for connection in list(self._connections):
            if connection.deadline and monotonic >= connection.deadline:
                if connection.state == "identifying":
                    _log.warning("connection from %s sent no Logon in time: closed",
                                 connection.peer)
                    self._close_socket(connection)
                elif connection.state in ("closing", "draining"):
                    self._close_socket(connection)

    # -- connections --------------------------------------------------------------------------

    def _configure(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _set_mask(self, connection: _Connection, mask: int) -> None:
        if connection.mask == mask:
            return
        if connection.mask:
            self._selector.modify(connection.sock, mask, connection)
        else:
            self._selector.register(connection.sock, mask, connection)
        connection.mask = mask

    def _unregister(self, sock: socket.socket) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    def _accept(self, listener: _Listener, now_ns: int) -> None:
        while True:
            try:
                sock, peer = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                _log.warning("accept on %s failed: %s", listener.address, error)
                return
            self._configure(sock)
            connection = _Connection(self, sock, peer)
            connection.state = "identifying"
            connection.listener = listener
            connection.framer = FixFramer(max(s.config.max_message_bytes
                                              for s in listener.sessions))
            connection.received = bytearray()
            connection.deadline = time.monotonic() + max(s.config.logon_timeout_s
                                                         for s in listener.sessions)
            self._connections.add(connection)
            self._set_mask(connection, _READ)
            _log.info("connection from %s:%d on port %d", peer[0], peer[1], listener.address[1])

    def _start_connect(self, session: FixSession) -> None:
        if self._closed or not session.reconnect or session.connected:
            return
        for connection in self._connections:
            if connection.initiator_session is session and connection.state == "connecting":
                return
        config = session.config
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._configure(sock)
        try:
            result = sock.connect_ex((config.host, config.port))
        except OSError as error:  # name resolution
            result = error.errno or errno.EHOSTUNREACH
        if result not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            sock.close()
            session.logger.warning("cannot connect to %s:%d: %s; retrying in %.1f s",
                                   config.host, config.port, errno.errorcode.get(result, result),
                                   config.reconnect_interval_s)
            self.call_later(config.reconnect_interval_s, lambda: self._start_connect(session))
            return
        connection = _Connection(self, sock, (config.host, config.port))
        connection.state = "connecting"
        connection.initiator_session = session
        self._connections.add(connection)
        self._set_mask(connection, _WRITE)

    def _on_connected(self, connection: _Connection, now_ns: int) -> None:
        session = connection.initiator_session
        assert session is not None
        error = connection.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            session.logger.warning("cannot connect to %s:%d: %s; retrying in %.1f s",
                                   *connection.peer, errno.errorcode.get(error, error),
                                   session.config.reconnect_interval_s)
            self._close_socket(connection)
            self._schedule_reconnect(session)
            return
        connection.state = "open"
        self._set_mask(connection, _READ)
        if session.connected:  # connected meanwhile by another path: keep the first
            self._close_socket(connection)
            return
        connection.session = session
        session.logger.info("TCP connected to %s:%d", *connection.peer)
        session.on_connect(connection.send, now_ns, connection.close_from_session)

    def _schedule_reconnect(self, session: FixSession) -> None:
        if session.reconnect and not self._closed and id(session) in self._initiators:
            self.call_later(session.config.reconnect_interval_s,
                            lambda: self._start_connect(session))

    def _on_connection_event(self, connection: _Connection, mask: int, now_ns: int) -> None:
        state = connection.state
        if state == "connecting":
            self._on_connected(connection, now_ns)
            return
        if mask & _WRITE and connection.outbound:
            self._flush(connection)
            if connection.state == "closed":
                return
        if mask & _READ:
            self._on_readable(connection, now_ns)

    def _flush(self, connection: _Connection) -> None:
        outbound = connection.outbound
        try:
            sent = connection.sock.send(outbound)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._lose(connection, f"send failed: {error.strerror or error}")
            return
        del outbound[:sent]
        if not outbound:
            if connection.state == "closing":
                self._shutdown_and_drain(connection)
            else:
                self._set_mask(connection, _READ)

    def _on_readable(self, connection: _Connection, now_ns: int) -> None:
        try:
            data = connection.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._lose(connection, f"receive failed: {error.strerror or error}")
            return
        if not data:
            if connection.state in ("closing", "draining"):
                self._close_socket(connection)
            else:
                self._lose(connection, "the peer closed the connection")
            return
        state = connection.state
        if state == "open":
            session = connection.session
            if session is not None:
                session.on_bytes(data, now_ns)
        elif state == "identifying":
            self._identify(connection, data, now_ns)
        # closing / draining: input is discarded

    def _identify(self, connection: _Connection, data: bytes, now_ns: int) -> None:
        assert connection.framer is not None and connection.received is not None
        assert connection.listener is not None
        connection.received += data
        peer = f"{connection.peer[0]}:{connection.peer[1]}"
        for status, frame in connection.framer.feed(data):
            if status != FrameStatus.OK:
                _log.warning("connection from %s: invalid first message (%s): %s; closed", peer,
                             FrameStatus(status).name, printable(frame[:200]))
                self._begin_close(connection)
                return
            try:
                logon = parse(frame)
            except FixParseError as error:
                _log.warning("connection from %s: garbled first message (%s): %s; closed", peer,
                             error, printable(frame[:200]))
                self._begin_close(connection)
                return
            if logon.msg_type != "A":
                _log.error("connection from %s: first message not a logon (35=%s): %s; closed",
                           peer, logon.msg_type, printable(frame[:200]))
                self._begin_close(connection)
                return
            session = self._match(connection.listener, logon)
            if session is None:
                _log.warning("connection from %s: Logon from unknown session %s 49=%s 56=%s; "
                             "closed without a reply", peer, logon.begin_string,
                             logon.sender_comp_id, logon.target_comp_id)
                self._begin_close(connection)
                return
            if session.connected:
                session.logger.error("Logon from %s while the session is connected (duplicate "
                                     "identity): the new connection is closed without a reply",
                                     peer)
                self._begin_close(connection)
                return
            received = bytes(connection.received)
            connection.state = "open"
            connection.framer = None
            connection.received = None
            connection.deadline = 0.0
            connection.session = session
            session.logger.info("Logon connection from %s", peer)
            session.on_connect(connection.send, now_ns, connection.close_from_session)
            session.on_bytes(received, now_ns)
            return

    @staticmethod
    def _match(listener: _Listener, logon: Any) -> FixSession | None:
        for session in listener.sessions:
            config = session.config
            if (config.target_comp_id == logon.sender_comp_id
                    and config.sender_comp_id == logon.target_comp_id
                    and config.begin_string == logon.begin_string):
                return session
        return None

    # -- closing ------------------------------------------------------------------------------

    def _begin_close(self, connection: _Connection) -> None:
        """Closes after the outbound buffer is flushed (graceful)."""
        if connection.state in ("closing", "draining", "closed"):
            return
        was_connecting = connection.state == "connecting"
        connection.state = "closing"
        connection.deadline = time.monotonic() + self.linger_s
        if was_connecting or not connection.outbound:
            self._shutdown_and_drain(connection)
        else:
            self._set_mask(connection, _READ | _WRITE)

    def _shutdown_and_drain(self, connection: _Connection) -> None:
        try:
            connection.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close_socket(connection)
            return
        connection.state = "draining"
        connection.deadline = time.monotonic() + self.linger_s
        self._set_mask(connection, _READ)

    def _lose(self, connection: _Connection, reason: str) -> None:
        """The connection is gone (or must go at once): close it and tell its session."""
        session = connection.session
        connection.session = None
        self._close_socket(connection)
        if session is not None:
            session.on_disconnect(reason=reason)

    def _close_socket(self, connection: _Connection) -> None:
        if connection.state == "closed":
            return
        connection.state = "closed"
        if connection.mask:
            self._unregister(connection.sock)
            connection.mask = 0
        try:
            connection.sock.close()
        except OSError:
            pass
        self._connections.discard(connection)
        session = connection.initiator_session
        if session is not None and connection.session is None:
            connection.initiator_session = None
            self._schedule_reconnect(session)


__all__ = ["Reactor", "Timer"]
