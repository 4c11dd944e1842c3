"""Restarts: a session started again on its store resumes its sequence numbers and answers a
resend request for messages sent before the restart; an acceptor process killed with SIGKILL
in the middle of a session and started again loses nothing, and messages the peer sent while
it was down are recovered by resend request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from conftest import FixTestClient, RecordingApplication, ReactorThread, app_body, sending_time

from sor.fix.session import FixSession


def order(order_id: str) -> list[tuple[int, object]]:
    return [(11, order_id), (21, 1), (55, "MSFT"), (54, 1), (38, 100), (40, 1),
            (60, sending_time())]


def test_restarted_session_resumes_numbers_and_resends_old_messages(harness, begin_string):
    config = harness.config(begin_string=begin_string, reset_on_logon=False)
    first = FixSession(config, RecordingApplication())
    first_reactor = ReactorThread(timer_interval_s=0.02)
    port = first_reactor.reactor.listen("127.0.0.1", 0, [first])
    first_reactor.start()
    client = FixTestClient(port, begin_string=begin_string)
    try:
        client.logon()
        echoes = []
        for index in range(3):
            client.send("D", order(f"O{index}"))
            echoes.append(client.expect("D"))
        assert [m.seq_num for m in echoes] == [2, 3, 4]
    finally:
        client.close()                 # no Logout: the connection just drops
        first_reactor.stop()
        first.close()

    second_app = RecordingApplication()
    second = harness.session(config, second_app)
    assert (second.next_sender_seq_num, second.next_target_seq_num) == (5, 5)
    port = harness.reactor_thread.call(
        lambda: harness.reactor.listen("127.0.0.1", 0, [second]))
    harness.reactor_thread.start()
    again = harness.client(port, begin_string=begin_string)
    again.next_seq = 5
    assert again.logon().seq_num == 5
    again.send("2", [(7, 2), (16, 4)])
    for original in echoes:
        resent = again.expect("D", tag_43="Y")
        assert resent.seq_num == original.seq_num
        assert resent.get(122) == original.get(52)
        assert app_body(resent) == app_body(original)
    assert again.ping().seq_num == 6


ACCEPTOR_SCRIPT = textwrap.dedent("""
    import sys
    from sor.fix.config import SessionConfig
    from sor.fix.reactor import Reactor
    from sor.fix.session import Application, FixSession

    HEADER = {8, 9, 35, 49, 56, 34, 52, 43, 97, 122, 10}

    class Echo(Application):
        def on_message(self, session, message):
            session.send(message.msg_type,
                         [(t, v) for t, v in message.fields() if t not in HEADER])

    store_dir, begin_string, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    config = SessionConfig(name="OMS", role="acceptor", begin_string=begin_string,
                           sender_comp_id="ISLD", target_comp_id="TW", port=port,
                           store_dir=store_dir)
    session = FixSession(config, Echo())
    reactor = Reactor()
    print(reactor.listen("127.0.0.1", port, [session]), flush=True)
    reactor.run()
""")


class AcceptorProcess:
    """Our acceptor with an echo application in a child process (killed with SIGKILL)."""

    def __init__(self, tmp_path, begin_string: str, port: int = 0) -> None:
        script = tmp_path / "acceptor.py"
        script.write_text(ACCEPTOR_SCRIPT)
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "stores"), begin_string, str(port)],
            stdout=subprocess.PIPE, text=True, env=environment)
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def test_acceptor_killed_mid_session_restarts_without_losing_anything(tmp_path, begin_string):
    """kill -9 of the acceptor process with a session up: on restart the session resumes
    both numbers; an order the peer sent while it was down (seq 5) is asked for when the
    peer's Logon (seq 6) arrives and processed; the echoes sent before the kill are resent on
    request. Answers leave only after the inbound number is persisted, so a message whose
    echo the peer saw is never asked for again."""
    acceptor = AcceptorProcess(tmp_path, begin_string)
    clients: list[FixTestClient] = []
    try:
        client = FixTestClient(acceptor.port, begin_string=begin_string)
        clients.append(client)
        client.logon()
        echoes = []
        for index in range(3):
            client.send("D", order(f"O{index}"))
            echoes.append(client.expect("D"))
        acceptor.kill()
        assert client.expect_disconnect() == []
        while_down = order("WHILE_DOWN")        # seq 5, sent while down: never arrives

        acceptor = AcceptorProcess(tmp_path, begin_string, port=acceptor.port)
        again = FixTestClient(acceptor.port, begin_string=begin_string)
        clients.append(again)
        again.next_seq = 6
        logon = again.logon()
        assert logon.seq_num == 5                           # Logon 1, echoes 2-4
        again.expect("2", tag_7=5, tag_16=0)
        again.send("D", while_down, seq=5, poss_dup=True,
                   orig_sending_time_ns=time.time_ns() - 1_000_000_000)
        echo = again.expect("D", tag_11="WHILE_DOWN")
        assert echo.seq_num == 7                            # Logon 5, ResendRequest 6
        again.send("2", [(7, 2), (16, 4)])
        for original in echoes:
            resent = again.expect("D", tag_43="Y")
            assert (resent.seq_num, resent.get(11)) == (original.seq_num, original.get(11))
            assert resent.get(122) == original.get(52)
        assert again.ping().seq_num == 8
    finally:
        for client in clients:
            client.close()
        acceptor.kill()
