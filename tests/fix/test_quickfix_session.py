"""Interop at the session level with QuickFIX (the `quickfix` package, an independent engine):
a QuickFIX initiator logs on to our acceptor and our initiator logs on to a QuickFIX acceptor,
in FIX 4.2 and 4.4, exchanging application messages, heartbeats and logouts; and sequence gaps
left by a restart of either side are recovered by resend requests, each resent message
delivered once.

QuickFIX runs in a child process driven over stdin/stdout (JSON lines): its python engine can
crash in ``Acceptor.stop`` when a peer disconnects at the same moment (a race in
``SocketServer::close``), and a child process can also be killed with SIGKILL for a restart.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from conftest import RecordingApplication, ReactorThread, sending_time

from sor.fix.codec import FixMessage, parse
from sor.fix.session import FixSession

try:
    import quickfix  # noqa: F401  (the child process runs it; the `test` extra installs it)
except ImportError as error:  # pragma: no cover
    raise ImportError("the QuickFIX interop tests need the quickfix package: "
                      "pip install -e '.[test]'") from error

TIMEOUT_S = 10.0

PEER_SCRIPT = textwrap.dedent('''
    """A QuickFIX endpoint driven over stdin/stdout with JSON lines."""
    import json, sys, threading
    import quickfix as fix

    settings_path, role, echo = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
    output_lock = threading.Lock()

    def emit(**event):
        with output_lock:
            sys.stdout.write(json.dumps(event) + "\\n")
            sys.stdout.flush()

    def msg_type(message):
        return message.getHeader().getField(35)

    class Peer(fix.Application):
        session_id = None
        def onCreate(self, session_id):
            Peer.session_id = fix.SessionID(session_id.getBeginString().getString(),
                                            session_id.getSenderCompID().getString(),
                                            session_id.getTargetCompID().getString())
        def onLogon(self, session_id):
            emit(event="logon")
        def onLogout(self, session_id):
            emit(event="logout")
        def toAdmin(self, message, session_id):
            emit(event="admin_out", msg_type=msg_type(message))
        def fromAdmin(self, message, session_id):
            emit(event="admin_in", msg_type=msg_type(message))
        def toApp(self, message, session_id):
            pass
        def fromApp(self, message, session_id):
            emit(event="app", raw=message.toString())
            if echo:
                reply = fix.Message()
                reply.getHeader().setField(fix.MsgType(msg_type(message)))
                for tag, value in fields_of(message):
                    reply.setField(int(tag), value)
                fix.Session.sendToTarget(reply, session_id)

    HEADER = {8, 9, 35, 49, 56, 34, 52, 43, 97, 122, 10}

    def fields_of(message):
        text = message.toString()
        pairs = [item.split("=", 1) for item in text.split("\\x01") if item]
        return [(tag, value) for tag, value in pairs if int(tag) not in HEADER]

    settings = fix.SessionSettings(settings_path)
    store_factory = fix.FileStoreFactory(settings)
    log_factory = fix.FileLogFactory(settings)
    application = Peer()
    engine_type = fix.SocketInitiator if role == "initiator" else fix.SocketAcceptor
    engine = engine_type(application, store_factory, settings, log_factory)
    engine.start()
    emit(event="started")
    for line in sys.stdin:
        command = json.loads(line)
        if command["cmd"] == "send":
            message = fix.Message()
            message.getHeader().setField(fix.MsgType(command["msg_type"]))
            for tag, value in command["fields"]:
                message.setField(int(tag), str(value))
            fix.Session.sendToTarget(message, Peer.session_id)
        elif command["cmd"] == "logout":
            fix.Session.lookupSession(Peer.session_id).logout()
        elif command["cmd"] == "stop":
            break
    engine.stop()
    emit(event="stopped")
''')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def data_dictionary(begin_string: str) -> str | None:
    """Returns the QuickFIX data dictionary shipped with the package, if installed."""
    path = os.path.join(sys.prefix, "share", "quickfix", begin_string.replace(".", "") + ".xml")
    return path if os.path.exists(path) else None


class QuickFixPeer:
    """A QuickFIX SocketInitiator or SocketAcceptor (FileStore in ``directory``) running in a
    child process; records its events (logons, logouts, admin and application messages)."""

    def __init__(self, directory, *, role: str, begin_string: str, sender: str, target: str,
                 port: int, heartbeat_s: int = 30, echo: bool = False) -> None:
        os.makedirs(directory, exist_ok=True)
        dictionary = data_dictionary(begin_string)
        lines = ["[DEFAULT]", f"ConnectionType={role}", "StartTime=00:00:00",
                 "EndTime=00:00:00", f"FileStorePath={directory}/store",
                 f"FileLogPath={directory}/log", "ReconnectInterval=1", "LogoutTimeout=2",
                 "ValidateUserDefinedFields=N"]
        if dictionary:
            lines += ["UseDataDictionary=Y", f"DataDictionary={dictionary}"]
        else:
            lines += ["UseDataDictionary=N"]
        lines += ["", "[SESSION]", f"BeginString={begin_string}", f"SenderCompID={sender}",
                  f"TargetCompID={target}"]
        if role == "initiator":
            lines += ["SocketConnectHost=127.0.0.1", f"SocketConnectPort={port}",
                      f"HeartBtInt={heartbeat_s}"]
        else:
            lines += [f"SocketAcceptPort={port}", "SocketReuseAddress=Y"]
        self.settings_path = os.path.join(directory, "quickfix.cfg")
        with open(self.settings_path, "w") as file:
            file.write("\n".join(lines) + "\n")
        self.script_path = os.path.join(directory, "quickfix_peer.py")
        with open(self.script_path, "w") as file:
            file.write(PEER_SCRIPT)
        self.role = role
        self.echo = echo
        self.process: subprocess.Popen | None = None
        self.events: list[dict] = []
        self.condition = threading.Condition()
        self.reader: threading.Thread | None = None

    def start(self) -> QuickFixPeer:
        self.process = subprocess.Popen(
            [sys.executable, self.script_path, self.settings_path, self.role,
             "1" if self.echo else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.reader = threading.Thread(target=self._read, args=(self.process,), daemon=True)
        self.reader.start()
        self.wait_for(lambda: self.count("started") == 1)
        return self

    def _read(self, process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self.condition:
                self.events.append(json.loads(line))
                self.condition.notify_all()

    def count(self, event: str, msg_type: str | None = None) -> int:
        with self.condition:
            return sum(1 for e in self.events if e["event"] == event
                       and (msg_type is None or e.get("msg_type") == msg_type))

    @property
    def app_messages(self) -> list[FixMessage]:
        with self.condition:
            return [parse(e["raw"].encode()) for e in self.events if e["event"] == "app"]

    def wait_for(self, predicate, timeout: float = TIMEOUT_S) -> None:
        with self.condition:
            assert self.condition.wait_for(predicate, timeout), (
                f"QuickFIX condition not met; events: {self.events[-10:]}")

    def command(self, **command) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def send(self, msg_type: str, fields: list[tuple[int, object]]) -> None:
        self.command(cmd="send", msg_type=msg_type, fields=[[t, str(v)] for t, v in fields])

    def logout(self) -> None:
        self.command(cmd="logout")

    def kill(self) -> None:
        """Kills the QuickFIX process with SIGKILL (its FileStore stays as it was)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(TIMEOUT_S)
            self._finish()

    def stop(self) -> None:
        """Stops QuickFIX (logout, then exit); kills it if it does not exit in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.command(cmd="stop")
                self.process.wait(TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait(TIMEOUT_S)
        self._finish()

    def _finish(self) -> None:
        assert self.process is not None
        if self.reader is not None:
            self.reader.join(TIMEOUT_S)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.process = None


@pytest.fixture
def quickfix_endpoints():
    endpoints: list[QuickFixPeer] = []
    yield endpoints
    for endpoint in endpoints:
        endpoint.stop()


def new_order(order_id: str, begin_string: str) -> list[tuple[int, object]]:
    fields: list[tuple[int, object]] = [(11, order_id), (55, "MSFT"), (54, 1), (38, 100),
                                        (40, 2), (44, "10.5"), (60, sending_time())]
    if begin_string == "FIX.4.2":
        fields.append((21, 1))
    return fields


def test_quickfix_initiator_logs_on_to_our_acceptor(quickfix_endpoints, harness, begin_string,
                                                    tmp_path):
    """QuickFIX SocketInitiator -> our acceptor: logon, application messages echoed both ways,
    heartbeats (HeartBtInt 1) both ways, logout initiated by QuickFIX."""
    session, app, port = harness.acceptor(begin_string=begin_string, sender_comp_id="SOR",
                                          target_comp_id="CLIENT", reset_on_logon=False)
    client = QuickFixPeer(tmp_path / "qf", role="initiator", begin_string=begin_string,
                          sender="CLIENT", target="SOR", port=port, heartbeat_s=1)
    quickfix_endpoints.append(client.start())
    client.wait_for(lambda: client.count("logon") == 1)
    app.wait_for(lambda: app.logons == 1)
    assert session.heartbeat_interval_s == 1
    for index in range(3):
        client.send("D", new_order(f"O{index}", begin_string))
    client.wait_for(lambda: len(client.app_messages) == 3)
    assert [m.get(11) for m in client.app_messages] == ["O0", "O1", "O2"]
    assert [m.get(11) for m in app.messages] == ["O0", "O1", "O2"]
    client.wait_for(lambda: client.count("admin_in", "0") >= 2)    # our heartbeats
    client.wait_for(lambda: client.count("admin_out", "0") >= 2)   # theirs, accepted by us
    assert client.count("admin_in", "3") == 0                      # no reject either way
    client.logout()
    app.wait_for(lambda: len(app.logouts) == 1)
    client.wait_for(lambda: client.count("logout") == 1)
    assert client.count("admin_in", "5") == 1                      # our Logout answer


def test_our_initiator_logs_on_to_quickfix_acceptor(quickfix_endpoints, harness, begin_string,
                                                    tmp_path):
    """Our initiator -> QuickFIX SocketAcceptor: logon, application messages echoed by
    QuickFIX, heartbeats, logout initiated by us and answered by QuickFIX."""
    port = free_port()
    venue = QuickFixPeer(tmp_path / "qf", role="acceptor", begin_string=begin_string,
                         sender="VENUE", target="SOR", port=port, echo=True)
    quickfix_endpoints.append(venue.start())
    app = RecordingApplication(echo=False)
    session = harness.session(harness.config(name="VENUE", role="initiator",
                                             begin_string=begin_string, sender_comp_id="SOR",
                                             target_comp_id="VENUE", port=port,
                                             heartbeat_interval_s=1, reset_on_logon=False),
                              app)
    harness.reactor_thread.start()
    harness.reactor_thread.call(lambda: harness.reactor.connect(session))
    app.wait_for(lambda: app.logons == 1, timeout=TIMEOUT_S)
    venue.wait_for(lambda: venue.count("logon") == 1)
    for index in range(3):
        harness.reactor_thread.call(
            lambda index=index: session.send("D", new_order(f"C{index}", begin_string)))
    app.wait_for(lambda: len(app.messages) == 3)
    assert [m.get(11) for m in app.messages] == ["C0", "C1", "C2"]
    assert [m.get(11) for m in venue.app_messages] == ["C0", "C1", "C2"]
    venue.wait_for(lambda: venue.count("admin_in", "0") >= 2)
    venue.wait_for(lambda: venue.count("admin_out", "0") >= 2)
    assert venue.count("admin_in", "3") == 0
    harness.reactor_thread.call(lambda: session.logout("done"))
    app.wait_for(lambda: len(app.logouts) == 1)
    venue.wait_for(lambda: venue.count("logout") == 1)
    assert app.logouts[0] == "logout"          # QuickFIX answered (no timeout)


@pytest.mark.slow
def test_gap_after_our_acceptor_restarts_is_recovered_once(quickfix_endpoints, harness,
                                                           begin_string, tmp_path):
    """Our acceptor goes away; QuickFIX stores two orders meanwhile; our acceptor restarts on
    the same store; QuickFIX's next Logon is too high, we ask for the gap, and QuickFIX's
    PossDup resends reach our application once each."""
    config = harness.config(begin_string=begin_string, sender_comp_id="SOR",
                            target_comp_id="CLIENT", reset_on_logon=False)
    first_app = RecordingApplication()
    first = FixSession(config, first_app)
    first_reactor = ReactorThread(timer_interval_s=0.02)
    port = first_reactor.reactor.listen("127.0.0.1", 0, [first])
    first_reactor.start()
    client = QuickFixPeer(tmp_path / "qf", role="initiator", begin_string=begin_string,
                          sender="CLIENT", target="SOR", port=port, heartbeat_s=30)
    quickfix_endpoints.append(client.start())
    try:
        client.wait_for(lambda: client.count("logon") == 1)
        client.send("D", new_order("BEFORE", begin_string))
        client.wait_for(lambda: len(client.app_messages) == 1)
    finally:
        first_reactor.stop()          # our process goes away: sockets closed
        first.close()
    client.wait_for(lambda: client.count("logout") == 1)
    client.send("D", new_order("AWAY1", begin_string))
    client.send("D", new_order("AWAY2", begin_string))

    second_app = RecordingApplication()
    second = harness.session(config, second_app)
    assert (second.next_sender_seq_num, second.next_target_seq_num) == (3, 3)
    harness.reactor_thread.call(lambda: harness.reactor.listen("127.0.0.1", port, [second]))
    harness.reactor_thread.start()
    second_app.wait_for(lambda: len(second_app.messages) == 2, timeout=15)
    assert [(m.get(11), m.poss_dup) for m in second_app.messages] == [("AWAY1", True),
                                                                        ("AWAY2", True)]
    client.wait_for(lambda: len(client.app_messages) == 3)
    assert [m.get(11) for m in client.app_messages] == ["BEFORE", "AWAY1", "AWAY2"]
    client.send("D", new_order("AFTER", begin_string))
    second_app.wait_for(lambda: len(second_app.messages) == 3)
    assert [m.get(11) for m in second_app.messages] == ["AWAY1", "AWAY2", "AFTER"]


@pytest.mark.slow
def test_gap_after_quickfix_acceptor_is_killed_and_restarted_is_recovered_once(
        quickfix_endpoints, harness, begin_string, tmp_path):
    """The QuickFIX acceptor is killed (SIGKILL); our initiator stores two orders meanwhile;
    QuickFIX restarts on its FileStore, our reconnect Logon is too high for it, it asks for
    the gap and our PossDup resends (with OrigSendingTime) reach its application once each."""
    port = free_port()
    venue = QuickFixPeer(tmp_path / "qf", role="acceptor", begin_string=begin_string,
                         sender="VENUE", target="SOR", port=port)
    venue.start()
    app = RecordingApplication(echo=False)
    session = harness.session(harness.config(name="VENUE", role="initiator",
                                             begin_string=begin_string, sender_comp_id="SOR",
                                             target_comp_id="VENUE", port=port,
                                             reset_on_logon=False, reconnect_interval_s=0.3),
                              app)
    harness.reactor_thread.start()
    harness.reactor_thread.call(lambda: harness.reactor.connect(session))
    app.wait_for(lambda: app.logons == 1, timeout=TIMEOUT_S)
    harness.reactor_thread.call(lambda: session.send("D", new_order("BEFORE", begin_string)))
    venue.wait_for(lambda: len(venue.app_messages) == 1)
    venue.kill()
    app.wait_for(lambda: len(app.logouts) == 1, timeout=TIMEOUT_S)
    for order_id in ("AWAY1", "AWAY2"):
        harness.reactor_thread.call(
            lambda order_id=order_id: session.send("D", new_order(order_id, begin_string)))

    restarted = QuickFixPeer(tmp_path / "qf", role="acceptor", begin_string=begin_string,
                             sender="VENUE", target="SOR", port=port)
    quickfix_endpoints.append(restarted.start())
    app.wait_for(lambda: app.logons == 2, timeout=TIMEOUT_S)
    harness.reactor_thread.call(lambda: session.send("D", new_order("AFTER", begin_string)))

    def received() -> list[FixMessage]:
        # SIGKILL may land before QuickFIX persisted its inbound number for BEFORE: then BEFORE
        # comes again, as a PossDup, which is what FIX guarantees (at least once, flagged).
        messages = restarted.app_messages
        assert all(m.poss_dup for m in messages if m.get(11) == "BEFORE")
        return [m for m in messages if m.get(11) != "BEFORE"]

    restarted.wait_for(lambda: len(received()) == 3, timeout=15)
    messages = received()
    assert [(m.get(11), m.poss_dup) for m in messages] == [("AWAY1", True), ("AWAY2", True),
                                                           ("AFTER", False)]
    assert messages[0].get(122) and messages[1].get(122)    # OrigSendingTime on resends
    time.sleep(0.3)
    assert len(received()) == 3                             # each delivered once
