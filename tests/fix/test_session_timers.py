"""The session's clocks, driven without sockets or wall time: FixSession is fed bytes and timer
ticks with an explicit now_ns (test cases 4a, 6, logon and logout timeouts, 12)."""

from __future__ import annotations

import pytest

from sor.fix.codec import FixFramer, encode, parse
from sor.fix.config import SessionConfig
from sor.fix.session import Application, FixSession, SessionState

S = 1_000_000_000
T0 = 1_800_000_000 * S          # an arbitrary epoch instant (2027)


class Wire:
    """The transport seen by the session: what it wrote, and whether it closed."""

    def __init__(self) -> None:
        self.framer = FixFramer()
        self.sent: list = []
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sent.extend(parse(frame) for _, frame in self.framer.feed(data))

    def close(self) -> None:
        self.closed = True

    def types(self) -> list[str]:
        return [m.msg_type for m in self.sent]


class Recorder(Application):
    def __init__(self) -> None:
        self.logouts: list[str] = []

    def on_logout(self, session, reason):
        self.logouts.append(reason)


def acceptor(tmp_path, **overrides) -> tuple[FixSession, Wire, Recorder]:
    config = SessionConfig(**{**dict(name="T", sender_comp_id="ISLD", target_comp_id="TW",
                                     begin_string="FIX.4.4", store_dir=str(tmp_path),
                                     reset_on_logon=True), **overrides})
    app = Recorder()
    session = FixSession(config, app, clock=lambda: T0)
    wire = Wire()
    session.on_connect(wire.send, T0, wire.close)
    return session, wire, app


def peer(msg_type: str, seq: int, now: int, body=()) -> bytes:
    return encode("FIX.4.4", msg_type, "TW", "ISLD", seq, now, list(body))


@pytest.fixture
def logged_on(tmp_path):
    session, wire, app = acceptor(tmp_path)
    session.on_bytes(peer("A", 1, T0, [(98, 0), (108, 10)]), T0)
    assert session.is_logged_on and wire.types() == ["A"]
    yield session, wire, app
    session.close()


def test_4a_heartbeat_exactly_after_the_interval_of_outbound_silence(logged_on):
    session, wire, _ = logged_on
    session.on_timer(T0 + 10 * S - 1)
    assert wire.types() == ["A"]
    session.on_timer(T0 + 10 * S)
    assert wire.types() == ["A", "0"] and 112 not in wire.sent[-1]
    session.on_bytes(peer("0", 2, T0 + 11 * S), T0 + 11 * S)   # the peer talks: no test request
    session.on_timer(T0 + 19 * S)
    assert wire.types() == ["A", "0"]
    session.on_timer(T0 + 20 * S)
    assert wire.types() == ["A", "0", "0"]


def test_sending_resets_the_heartbeat_clock(logged_on):
    session, wire, _ = logged_on
    session.on_bytes(peer("1", 2, T0 + 5 * S, [(112, "X")]), T0 + 5 * S)   # answered at 5 s
    session.on_timer(T0 + 14 * S)
    assert wire.types() == ["A", "0"]
    session.on_timer(T0 + 15 * S)
    assert wire.types() == ["A", "0", "0"]


def test_6_test_request_at_1_2_and_disconnect_at_2_4_intervals(logged_on):
    session, wire, app = logged_on
    session.on_bytes(peer("0", 2, T0 + 1 * S), T0 + 1 * S)
    session.on_timer(T0 + 1 * S + 12 * S - 1)
    assert "1" not in wire.types()
    session.on_timer(T0 + 13 * S)
    assert wire.types()[-1] == "1" and wire.sent[-1].get(112) == "TEST"
    session.on_timer(T0 + 1 * S + 24 * S - 1)
    assert session.is_logged_on and wire.types().count("1") == 1
    session.on_timer(T0 + 25 * S)
    assert wire.closed and session.state is SessionState.DISCONNECTED
    assert "test request unanswered" in app.logouts[0]


def test_6_an_answered_test_request_keeps_the_session(logged_on):
    session, wire, _ = logged_on
    session.on_timer(T0 + 12 * S)
    assert wire.types()[-1] == "1"
    session.on_bytes(peer("0", 2, T0 + 13 * S, [(112, "TEST")]), T0 + 13 * S)
    session.on_timer(T0 + 30 * S)
    assert session.is_logged_on


def test_logon_timeout(tmp_path):
    session, wire, _ = acceptor(tmp_path, logon_timeout_s=3.0)
    session.on_timer(T0 + 3 * S - 1)
    assert session.state is SessionState.AWAITING_LOGON
    session.on_timer(T0 + 3 * S)
    assert wire.closed and session.state is SessionState.DISCONNECTED
    session.close()


def test_12_logout_timeout(logged_on):
    session, wire, app = logged_on
    session.logout("bye")
    assert session.state is SessionState.LOGOUT_SENT and wire.sent[-1].get(58) == "bye"
    session.on_timer(T0 + 2 * S - 1)
    assert not wire.closed
    session.on_timer(T0 + 2 * S)
    assert wire.closed and app.logouts == ["timed out waiting for the Logout answer"]


def test_heartbeat_interval_zero_disables_the_clock(tmp_path):
    session, wire, _ = acceptor(tmp_path)
    session.on_bytes(peer("A", 1, T0, [(98, 0), (108, 0)]), T0)
    session.on_timer(T0 + 3600 * S)
    assert wire.types() == ["A"] and session.is_logged_on
    session.close()


def test_sending_time_tolerance_is_inclusive(logged_on):
    """120 s away is accepted, 120.001 s is not (2o)."""
    session, wire, _ = logged_on
    session.on_bytes(peer("0", 2, T0 - 120 * S), T0)
    session.on_bytes(peer("1", 3, T0, [(112, "A")]), T0)
    assert wire.types() == ["A", "0"]
    session.on_bytes(peer("0", 4, T0 + 120 * S + 1_000_000), T0)
    assert wire.types() == ["A", "0", "3", "5"]
    assert wire.sent[-2].get(373) == "10"
