"""sor.fix.reactor: timers, pollers, cross-thread calls, stop/close, partial writes and a slow
peer, argument checks."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from conftest import FixTestClient, Harness, RecordingApplication, wait_until

from sor.errors import FixSessionError
from sor.fix.reactor import Reactor


def test_call_later_runs_in_time_order_and_cancel_stops_a_call():
    with Reactor() as reactor:
        calls = []
        reactor.call_later(0.03, lambda: calls.append("late"))
        reactor.call_later(0.0, lambda: calls.append("now"))
        cancelled = reactor.call_later(0.01, lambda: calls.append("cancelled"))
        cancelled.cancel()
        reactor.call_later(0.05, reactor.stop)
        reactor.run(timeout_s=5)
        assert calls == ["now", "late"]


def test_run_returns_on_stop_when_and_on_timeout():
    with Reactor() as reactor:
        passes = []
        reactor.add_poller(lambda: passes.append(1) or 0)
        reactor.run(stop_when=lambda: len(passes) >= 10)
        assert len(passes) == 10
        reactor.run(timeout_s=0.05)
        assert len(passes) > 10
        assert not reactor.running


def test_busy_poll_counts_work_and_never_sleeps_between_passes():
    with Reactor(busy_poll=True) as reactor:
        work = {"passes": 0}

        def poller() -> int:
            work["passes"] += 1
            return 0

        reactor.add_poller(poller)
        reactor.run(stop_when=lambda: work["passes"] >= 2000)
        reactor.remove_poller(poller)
        reactor.run(timeout_s=0.01)
        assert work["passes"] == 2000


def test_call_soon_threadsafe_and_stop_from_another_thread():
    reactor = Reactor(idle_wait_s=10.0, timer_interval_s=10.0)
    thread = threading.Thread(target=reactor.run)
    thread.start()
    try:
        done = threading.Event()
        seen = []
        reactor.call_soon_threadsafe(lambda: (seen.append(threading.current_thread()),
                                              done.set()))
        assert done.wait(5)
        assert seen == [thread]
        reactor.stop()
        thread.join(5)
        assert not thread.is_alive()
    finally:
        reactor.stop()
        thread.join(5)
        reactor.close()


def test_callbacks_that_raise_do_not_stop_the_loop(caplog):
    with Reactor() as reactor:
        calls = []
        reactor.call_later(0.0, lambda: 1 / 0)
        reactor.call_later(0.01, lambda: calls.append("after"))
        reactor.call_later(0.02, reactor.stop)
        reactor.run(timeout_s=5)
        assert calls == ["after"]
        assert "ZeroDivisionError" in caplog.text


def test_argument_checks(harness):
    initiator = harness.session(harness.config(name="I", role="initiator"))
    acceptor = harness.session(harness.config(name="A"))
    twin = harness.session(harness.config(name="B"))
    reactor = harness.reactor
    with pytest.raises(FixSessionError, match="is an initiator"):
        reactor.listen("127.0.0.1", 0, [initiator])
    with pytest.raises(FixSessionError, match="is an acceptor"):
        reactor.connect(acceptor)
    with pytest.raises(FixSessionError, match="CompIDs ISLD->TW of session A"):
        reactor.listen("127.0.0.1", 0, [acceptor, twin])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(FixSessionError, match="cannot listen"):
            reactor.listen("127.0.0.1", taken.getsockname()[1], [acceptor])


def test_unknown_comp_ids_are_logged_by_the_reactor(harness, caplog):
    _, _, port = harness.acceptor()
    with caplog.at_level(logging.WARNING, logger="sor.fix.reactor"):
        client = harness.client(port, sender="NOBODY")
        client.send("A", [(98, 0), (108, 30)])
        assert client.expect_disconnect() == []
    assert "Logon from unknown session FIX.4.2 49=NOBODY 56=ISLD" in caplog.text


def test_a_slow_reader_gets_everything_in_order_after_partial_writes(harness):
    """The peer stops reading while 40,000 messages are sent: the kernel takes part of them,
    the rest waits in the connection's buffer; once the peer reads, every message arrives
    whole and in sequence."""
    session, _, port = harness.acceptor()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    client = FixTestClient(port, sock=sock)
    harness.clients.append(client)
    client.logon()
    count = 40_000
    body = [(58, "x" * 200)]
    harness.reactor_thread.call(lambda: [session.send("B", body) for _ in range(count)])
    seq_nums = [client.expect("B", timeout=20).seq_num for _ in range(count)]
    assert seq_nums == list(range(2, count + 2))
    assert client.ping().seq_num == count + 2


def test_a_peer_that_lets_too_much_pile_up_is_disconnected(tmp_path):
    harness = Harness(tmp_path, max_outbound_bytes=1 << 20)
    try:
        session, app, port = harness.acceptor()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        client = FixTestClient(port, sock=sock)
        harness.clients.append(client)
        client.logon()
        harness.reactor_thread.call(
            lambda: [session.send("B", [(58, "x" * 1000)]) for _ in range(20_000)])
        app.wait_for(lambda: len(app.logouts) == 1, timeout=10)
        assert "slow peer" in app.logouts[0]
        assert session.store.message_count == 20_000     # stored all the same
    finally:
        harness.close()


def test_close_tells_connected_sessions(harness):
    session, app, port = harness.acceptor()
    client = harness.client(port)
    client.logon()
    harness.reactor_thread.stop()
    assert app.logouts == ["reactor closed"]
    assert client.expect_disconnect() == []
    assert not session.connected
    harness.reactor.close()                                 # idempotent


def test_connect_from_another_thread_while_running(harness):
    """connect() called off the reactor thread hands the work to the loop."""
    _, acceptor_app, port = harness.acceptor()
    app = RecordingApplication(echo=False)
    initiator = harness.session(harness.config(name="I", role="initiator",
                                               sender_comp_id="TW", target_comp_id="ISLD",
                                               port=port), app)
    harness.reactor.connect(initiator)
    app.wait_for(lambda: app.logons == 1)
    acceptor_app.wait_for(lambda: acceptor_app.logons == 1)
    wait_until(lambda: initiator.is_logged_on)
