"""Our initiator against a raw-socket acceptor written in the test: FIX session test cases 1B
(logon from the initiator side), reconnects, and 16 (messages sent while disconnected reach
the peer after the next logon)."""

from __future__ import annotations

import socket
import time

import pytest
from conftest import FixTestClient, RecordingApplication, build_raw, wait_until

from sor.fix.session import SessionState


class RawAcceptor:
    """A listening socket; each accepted connection becomes a FixTestClient playing the
    acceptor (SenderCompID VENUE, TargetCompID SOR)."""

    def __init__(self, begin_string: str) -> None:
        self.begin_string = begin_string
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.peers: list[FixTestClient] = []

    def accept(self, timeout: float = 5.0) -> FixTestClient:
        self.sock.settimeout(timeout)
        connection, _ = self.sock.accept()
        peer = FixTestClient(0, sock=connection, begin_string=self.begin_string,
                             sender="VENUE", target="SOR")
        self.peers.append(peer)
        return peer

    def close(self) -> None:
        for peer in self.peers:
            peer.close()
        self.sock.close()


@pytest.fixture
def venue(begin_string):
    acceptor = RawAcceptor(begin_string)
    yield acceptor
    acceptor.close()


def initiator(harness, venue, application=None, **overrides):
    values = dict(name="VENUE", role="initiator", begin_string=venue.begin_string,
                  sender_comp_id="SOR", target_comp_id="VENUE", port=venue.port,
                  heartbeat_interval_s=30, reset_on_logon=False)
    values.update(overrides)
    app = application if application is not None else RecordingApplication(echo=False)
    session = harness.session(harness.config(**values), app)
    harness.reactor_thread.start()
    harness.reactor_thread.call(lambda: harness.reactor.connect(session))
    return session, app


def test_1B_a_b_c_initiator_connects_and_logs_on(harness, venue):
    """1B-a/b/c: connect, send Logon (EncryptMethod 0, HeartBtInt), accept the answer."""
    session, app = initiator(harness, venue, heartbeat_interval_s=7)
    peer = venue.accept()
    logon = peer.expect("A")
    assert logon.seq_num == 1 and logon.get(98) == "0" and logon.get(108) == "7"
    assert session.state is SessionState.LOGON_SENT
    peer.send("A", [(98, 0), (108, 7)])
    app.wait_for(lambda: app.logons == 1)
    assert session.is_logged_on
    peer.send("1", [(112, "HELLO")])
    assert peer.expect("0", tag_112="HELLO").seq_num == 2


def test_1B_a_reset_on_logon_sends_reset_seq_num_flag(harness, venue):
    """reset_on_logon = true: the Logon carries 141=Y and both sides start at 1."""
    session, app = initiator(harness, venue, reset_on_logon=True)
    peer = venue.accept()
    peer.expect("A", tag_141="Y")
    peer.send("A", [(98, 0), (108, 30), (141, "Y")])
    app.wait_for(lambda: app.logons == 1)
    assert peer.ping().seq_num == 2


def test_1B_c_logon_answer_too_high_sends_resend_request(harness, venue):
    """1B-c: the acceptor's Logon numbered 5 -> ResendRequest 1..0."""
    session, app = initiator(harness, venue)
    peer = venue.accept()
    peer.expect("A")
    peer.send("A", [(98, 0), (108, 30)], seq=5)
    peer.expect("2", tag_7=1, tag_16=0)
    app.wait_for(lambda: app.logons == 1)
    for seq in range(1, 5):
        peer.send("0", seq=seq, poss_dup=True, orig_sending_time_ns=time.time_ns())
    peer.next_seq = 6
    assert peer.ping().seq_num == 3
    wait_until(lambda: session.next_target_seq_num == 7)


def test_1B_d_invalid_logon_answer_gets_logout_and_disconnect(harness, venue):
    """1B-d: a Logon answer with the wrong CompIDs: Logout naming the error, disconnect."""
    session, app = initiator(harness, venue)
    peer = venue.accept()
    peer.expect("A")
    peer.send("A", [(98, 0), (108, 30)], sender="OTHER")
    messages = peer.expect_disconnect()
    assert [(m.msg_type, m.get(58)) for m in messages] == [("5", "CompID problem")]
    assert app.logons == 0


def test_1B_e_first_message_not_a_logon_gets_logout_and_disconnect(harness, venue):
    """1B-e: the acceptor answers with a Heartbeat: 'first message not a logon' is logged,
    Logout, disconnect."""
    session, app = initiator(harness, venue)
    peer = venue.accept()
    peer.expect("A")
    peer.send("0")
    messages = peer.expect_disconnect()
    assert [(m.msg_type, m.get(58)) for m in messages] == [("5", "First message not a logon")]


def test_logon_refused_by_logout_then_reconnect(harness, venue):
    """The acceptor answers the Logon with a Logout: the initiator disconnects, then
    reconnects after reconnect_interval_s and logs on."""
    session, app = initiator(harness, venue, reconnect_interval_s=0.2)
    peer = venue.accept()
    peer.expect("A")
    peer.send("5", [(58, "not now")])
    peer.expect_disconnect()
    again = venue.accept(timeout=3)
    again.next_seq = 2
    again.expect("A")
    again.send("A", [(98, 0), (108, 30)])
    app.wait_for(lambda: app.logons == 1)


def test_reconnects_after_the_connection_drops(harness, venue):
    """A dropped connection is reconnected; sequence numbers continue."""
    session, app = initiator(harness, venue, reconnect_interval_s=0.2)
    peer = venue.accept()
    peer.expect("A")
    peer.send("A", [(98, 0), (108, 30)])
    app.wait_for(lambda: app.logons == 1)
    peer.close()
    app.wait_for(lambda: len(app.logouts) == 1)
    again = venue.accept(timeout=3)
    logon = again.expect("A")
    assert logon.seq_num == 2
    again.next_seq = 2
    again.send("A", [(98, 0), (108, 30)])
    app.wait_for(lambda: app.logons == 2)


def test_logon_timeout_disconnects(harness, venue):
    """No Logon answer within logon_timeout_s: disconnect (and reconnect later)."""
    session, app = initiator(harness, venue, logon_timeout_s=0.3, reconnect_interval_s=0.2)
    peer = venue.accept()
    peer.expect("A")
    assert peer.expect_disconnect(timeout=3) == []
    venue.accept(timeout=3).expect("A")


def test_16_messages_sent_while_disconnected_are_resent_after_logon(harness, venue):
    """16: messages sent while down are stored; the next Logon (numbered after them) makes the
    peer ask for them, and they arrive as PossDup with their OrigSendingTime."""
    session, app = initiator(harness, venue, reconnect_interval_s=0.2)
    peer = venue.accept()
    peer.expect("A")
    peer.send("A", [(98, 0), (108, 30)])
    app.wait_for(lambda: app.logons == 1)
    peer.close()
    app.wait_for(lambda: len(app.logouts) == 1)
    sent = harness.reactor_thread.call(
        lambda: [session.send("D", [(11, f"C{i}"), (55, "X"), (54, 1), (38, 100), (40, 1)])
                 for i in range(3)])
    assert sent == [2, 3, 4]
    again = venue.accept(timeout=3)
    logon = again.expect("A")
    assert logon.seq_num == 5
    again.next_seq = 2
    again.send("A", [(98, 0), (108, 30)])
    again.send("2", [(7, 2), (16, 0)])
    for seq in (2, 3, 4):
        resent = again.expect("D", tag_43="Y", tag_11=f"C{seq - 2}")
        assert resent.seq_num == seq and 122 in resent
    again.expect("4", tag_36=6)     # the Logon 5 is gap-filled


def test_messages_sent_before_the_logon_answer_go_out_after_it(harness, venue):
    """Messages stored after our Logon but before its answer are sent (PossDup) as soon as the
    session is logged on."""
    session, app = initiator(harness, venue)
    peer = venue.accept()
    peer.expect("A")
    harness.reactor_thread.call(lambda: session.send("D", [(11, "EARLY"), (55, "X")]))
    peer.send("A", [(98, 0), (108, 30)])
    early = peer.expect("D", tag_11="EARLY", tag_43="Y")
    assert early.seq_num == 2


def test_garbled_logon_answer_disconnects(harness, venue):
    """A garbled message before the logon completed ends the connection."""
    session, app = initiator(harness, venue)
    peer = venue.accept()
    peer.expect("A")
    peer.send_raw(build_raw(peer.header("A") + [(98, 0), (108, 30)], check=0))
    peer.expect_disconnect()
    assert app.logons == 0
