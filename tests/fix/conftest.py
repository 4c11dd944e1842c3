"""Shared fixtures of the FIX tests: a raw-socket FIX test client (sends arbitrary bytes, reads
framed responses), a reactor running on its own thread, and acceptor/initiator harnesses
built from SessionConfig with stores in tmp_path."""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pytest

from sor.fix.codec import FixFramer, FixMessage, FrameStatus, encode, parse
from sor.fix.config import SessionConfig
from sor.fix.reactor import Reactor
from sor.fix.session import Application, FixSession

SOH = b"\x01"
HEADER_TAGS = frozenset({8, 9, 35, 49, 56, 34, 52, 43, 97, 122, 10})
TIMEOUT_S = 5.0


def checksum(data: bytes) -> bytes:
    """Returns the CheckSum (10) field of ``data`` (everything before it)."""
    return b"10=%03d\x01" % (sum(data) % 256)


def build_raw(fields: Iterable[tuple[Any, Any]], *, body_length: int | None = None,
              check: int | None = None) -> bytes:
    """Returns a FIX frame from ``fields`` (8 first, without 9 and 10): BodyLength and CheckSum
    are computed unless given (to build wrong ones)."""
    items = [(str(tag).encode(), value if isinstance(value, bytes) else str(value).encode())
             for tag, value in fields]
    head = items[0][0] + b"=" + items[0][1] + SOH
    body = b"".join(tag + b"=" + value + SOH for tag, value in items[1:])
    length = len(body) if body_length is None else body_length
    message = head + b"9=" + str(length).encode() + SOH + body
    if check is None:
        return message + checksum(message)
    return message + b"10=%03d\x01" % check


def app_body(message: FixMessage) -> list[tuple[int, bytes]]:
    """Returns the body fields of ``message`` (standard header and trailer removed)."""
    return [(tag, value) for tag, value in message.fields() if tag not in HEADER_TAGS]


class FixTestClient:
    """A FIX counterparty over a raw TCP socket: builds and sends any bytes, reads framed
    messages back. Keeps its own outbound sequence number (``next_seq``)."""

    def __init__(self, port: int, *, begin_string: str = "FIX.4.2", sender: str = "TW",
                 target: str = "ISLD", host: str = "127.0.0.1",
                 sock: socket.socket | None = None) -> None:
        self.sock = sock if sock is not None else socket.create_connection((host, port),
                                                                            timeout=TIMEOUT_S)
        self.begin_string = begin_string
        self.sender = sender
        self.target = target
        self.next_seq = 1
        self.framer = FixFramer()
        self.pending: collections.deque[FixMessage] = collections.deque()
        self.received: list[FixMessage] = []
        self.eof = False

    # -- sending --------------------------------------------------------------------------

    def message(self, msg_type: str, body: Sequence[tuple[int, Any]] = (), *,
                seq: int | None = None, sending_time_ns: int | None = None,
                poss_dup: bool = False, orig_sending_time_ns: int = 0,
                begin_string: str | None = None, sender: str | None = None,
                target: str | None = None) -> bytes:
        """Returns an encoded message; consumes ``next_seq`` unless ``seq`` is given."""
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        return encode(begin_string or self.begin_string, msg_type, sender or self.sender,
                      target or self.target, seq,
                      time.time_ns() if sending_time_ns is None else sending_time_ns,
                      list(body), poss_dup=poss_dup, orig_sending_time_ns=orig_sending_time_ns)

    def send(self, msg_type: str, body: Sequence[tuple[int, Any]] = (), **options: Any) -> bytes:
        """Encodes and sends a message; returns its bytes."""
        raw = self.message(msg_type, body, **options)
        self.sock.sendall(raw)
        return raw

    def send_raw(self, data: bytes) -> None:
        """Sends bytes as they are."""
        self.sock.sendall(data)

    def header(self, msg_type: str, seq: int | None = None) -> list[tuple[Any, Any]]:
        """Returns the standard header fields (8, 35, 49, 56, 34, 52) for :func:`build_raw`;
        consumes ``next_seq`` unless ``seq`` is given."""
        if seq is None:
            seq = self.next_seq
            self.next_seq += 1
        return [(8, self.begin_string), (35, msg_type), (49, self.sender), (56, self.target),
                (34, seq), (52, sending_time())]

    def logon(self, heartbeat_s: int = 30, *, reset: bool = False,
              seq: int | None = None) -> FixMessage:
        """Sends a Logon and returns the Logon answer."""
        body: list[tuple[int, Any]] = [(98, 0), (108, heartbeat_s)]
        if reset:
            body.append((141, "Y"))
        self.send("A", body, seq=seq)
        return self.expect("A")

    def ping(self, test_req_id: str = "PING") -> FixMessage:
        """Sends a TestRequest and returns the Heartbeat that answers it (proves the session
        is up and shows its next outbound sequence number)."""
        self.send("1", [(112, test_req_id)])
        heartbeat = self.expect("0")
        assert heartbeat.get(112) == test_req_id
        return heartbeat

    # -- receiving ------------------------------------------------------------------------

    def receive(self, timeout: float = TIMEOUT_S) -> FixMessage | None:
        """Returns the next message, or None when the connection closed first; fails on a
        timeout or a malformed frame."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no message within {timeout} s "
                                     f"(received so far: {[m.msg_type for m in self.received]})")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                continue
            for status, frame in self.framer.feed(data):
                assert status == FrameStatus.OK, f"malformed frame from the session: {frame!r}"
                message = parse(frame)
                self.pending.append(message)
                self.received.append(message)
        return self.pending.popleft()

    def expect(self, msg_type: str, timeout: float = TIMEOUT_S, **fields: Any) -> FixMessage:
        """Returns the next message, asserting its MsgType and any ``tag_<n>=value`` fields."""
        message = self.receive(timeout)
        assert message is not None, f"connection closed while expecting 35={msg_type}"
        assert message.msg_type == msg_type, (
            f"expected 35={msg_type}, received {message.raw.replace(SOH, b'|')!r}")
        for name, value in fields.items():
            tag = int(name.removeprefix("tag_"))
            assert message.get(tag) == str(value), (
                f"tag {tag}: expected {value!r} in {message.raw.replace(SOH, b'|')!r}")
        assert message.begin_string == self.begin_string
        assert message.sender_comp_id == self.target and message.target_comp_id == self.sender
        return message

    def expect_disconnect(self, timeout: float = TIMEOUT_S) -> list[FixMessage]:
        """Waits for the session to close the connection; returns the messages received
        before the close."""
        messages = []
        while True:
            message = self.receive(timeout)
            if message is None:
                return messages
            messages.append(message)

    def close(self) -> None:
        """Closes the socket."""
        try:
            self.sock.close()
        except OSError:
            pass


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
    """Polls ``predicate()`` until it holds (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def sending_time(offset_s: float = 0.0) -> str:
    """Returns a SendingTime (UTCTimestamp with ms) ``offset_s`` from now."""
    ns = time.time_ns() + int(offset_s * 1e9)
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1_000_000:03d}"


class RecordingApplication(Application):
    """Records every callback; with ``echo`` it sends each application message back with the
    same type and body (as QuickFIX's acceptance test server does), skipping a PossResend
    (97=Y) whose ClOrdID (11) it has already seen (the application-level check of 19a)."""

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.logons = 0
        self.logouts: list[str] = []
        self.messages: list[FixMessage] = []
        self.session_rejects: list[FixMessage] = []
        self.seen_ids: set[str] = set()
        self.condition = threading.Condition()

    def _record(self, action: Callable[[], None]) -> None:
        with self.condition:
            action()
            self.condition.notify_all()

    def on_logon(self, session: FixSession) -> None:
        def bump() -> None:
            self.logons += 1
        self._record(bump)

    def on_logout(self, session: FixSession, reason: str) -> None:
        self._record(lambda: self.logouts.append(reason))

    def on_message(self, session: FixSession, message: FixMessage) -> None:
        self._record(lambda: self.messages.append(message))
        order_id = message.get(11)
        if message.get(97) == "Y" and order_id in self.seen_ids:
            return
        if order_id is not None:
            self.seen_ids.add(order_id)
        if self.echo:
            session.send(message.msg_type, app_body(message))

    def on_session_reject(self, session: FixSession, message: FixMessage) -> None:
        self._record(lambda: self.session_rejects.append(message))

    def wait_for(self, predicate: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
        """Waits until ``predicate()`` holds (fails after ``timeout``)."""
        with self.condition:
            assert self.condition.wait_for(predicate, timeout), "condition not met in time"


class ReactorThread:
    """A Reactor looping on a daemon thread; :meth:`call` runs a function on that thread."""

    def __init__(self, **options: Any) -> None:
        self.reactor = Reactor(**options)
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self.reactor.run, name="fix-reactor",
                                           daemon=True)
            self.thread.start()

    def call(self, fn: Callable[[], Any], timeout: float = TIMEOUT_S) -> Any:
        """Runs ``fn`` on the reactor thread and returns its result (or raises its error)."""
        if self.thread is None:
            return fn()
        done = threading.Event()
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = fn()
            except BaseException as error:  # handed back to the caller
                outcome["error"] = error
            finally:
                done.set()

        self.reactor.call_soon_threadsafe(run)
        assert done.wait(timeout), "the reactor thread did not run the call"
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("value")

    def stop(self) -> None:
        if self.thread is not None:
            self.reactor.stop()
            self.thread.join(TIMEOUT_S)
            assert not self.thread.is_alive(), "the reactor thread did not stop"
            self.thread = None
        self.reactor.close()


class Harness:
    """Sessions on a reactor thread, with stores in a temporary directory."""

    def __init__(self, tmp_path: Any, **reactor_options: Any) -> None:
        self.tmp_path = tmp_path
        options = dict(timer_interval_s=0.02, linger_s=0.5)
        options.update(reactor_options)
        self.reactor_thread = ReactorThread(**options)
        self.sessions: list[FixSession] = []
        self.clients: list[FixTestClient] = []

    @property
    def reactor(self) -> Reactor:
        return self.reactor_thread.reactor

    def config(self, name: str = "OMS", **overrides: Any) -> SessionConfig:
        values: dict[str, Any] = dict(name=name, role="acceptor", begin_string="FIX.4.2",
                                      sender_comp_id="ISLD", target_comp_id="TW",
                                      host="127.0.0.1", port=0, store_dir=str(self.tmp_path),
                                      reset_on_logon=True, logout_timeout_s=1.0,
                                      logon_timeout_s=2.0, reconnect_interval_s=0.2)
        values.update(overrides)
        return SessionConfig(**values)

    def session(self, config: SessionConfig, application: Application | None = None,
                **options: Any) -> FixSession:
        session = FixSession(config, application, **options)
        self.sessions.append(session)
        return session

    def acceptor(self, application: Application | None = None,
                 **overrides: Any) -> tuple[FixSession, RecordingApplication, int]:
        """Returns a listening acceptor session (TW -> ISLD by default), its application and
        its port; starts the reactor thread."""
        app = application if application is not None else RecordingApplication()
        session = self.session(self.config(**overrides), app)
        port = self.reactor_thread.call(
            lambda: self.reactor.listen("127.0.0.1", 0, [session]))
        self.reactor_thread.start()
        return session, app, port

    def client(self, port: int, **options: Any) -> FixTestClient:
        client = FixTestClient(port, **options)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.reactor_thread.stop()
        for session in self.sessions:
            session.close()


@pytest.fixture
def harness(tmp_path):
    """Returns a Harness; everything it started is stopped at the end of the test."""
    fixture = Harness(tmp_path)
    yield fixture
    fixture.close()


@pytest.fixture(params=["FIX.4.2", "FIX.4.4"])
def begin_string(request):
    """Runs a test once per FIX version."""
    return request.param


@pytest.fixture
def reactor_thread():
    """Returns a ReactorThread (not started); stopped and closed at the end of the test."""
    thread = ReactorThread(timer_interval_s=0.02)
    yield thread
    thread.stop()


@pytest.fixture
def make_router(tmp_path):
    """Starts routers with the guardrail harness (gateway_support.GuardRouter); closes them."""
    from gateway_support import GuardRouter

    routers = []

    def make(**options) -> GuardRouter:
        router = GuardRouter(tmp_path / f"r{len(routers)}", **options)
        routers.append(router)
        return router

    yield make
    for router in routers:
        router.close()
