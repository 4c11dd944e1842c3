"""Heartbeats, rejects, resend requests and sequence resets: FIX session test cases 4-11, 13,
19 and 20 (QuickFIX acceptance definitions of the same numbers); acceptor over real TCP."""

from __future__ import annotations

import time

from conftest import app_body, build_raw, sending_time

from sor.fix.session import SessionState


def order(symbol: str) -> list[tuple[int, object]]:
    return [(11, "ID"), (21, 3), (40, 1), (54, 1), (55, symbol), (60, sending_time())]


def test_4a_heartbeat_after_heartbeat_interval_of_silence(harness, begin_string):
    """4a_NoDataSentDuringHeartBtInt: with HeartBtInt 1 the acceptor sends Heartbeats (no
    TestReqID) while the peer answers with its own."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon(heartbeat_s=1)
    first = client.expect("0", timeout=3)
    assert first.seq_num == 2 and 112 not in first
    client.send("0")
    assert client.expect("0", timeout=3).seq_num == 3
    client.send("0")
    client.send("5")
    client.expect("5")


def test_4b_test_request_is_answered_with_its_id(harness, begin_string):
    """4b_ReceivedTestRequest: Heartbeat with the TestReqID."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("1", [(112, "HELLO")])
    client.expect("0", tag_112="HELLO")


def test_5_heartbeat_received_is_accepted(harness, begin_string):
    """5: a valid Heartbeat is accepted and consumes its number."""
    session, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("0")
    client.send("0")
    assert client.ping().seq_num == 2
    assert session.next_target_seq_num >= 4


def test_6_test_request_after_silence_then_disconnect(harness, begin_string):
    """6_SendTestRequest: heartbeats while the peer answers; after 1.2 x HeartBtInt of silence
    a TestRequest; an answer keeps the session; no answer -> disconnect (2.4 x HeartBtInt)."""
    session, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon(heartbeat_s=1)
    client.expect("0", timeout=3)
    test_request = client.expect("1", timeout=3)
    assert test_request.get(112) == "TEST"
    client.send("0", [(112, "TEST")])
    client.expect("0", timeout=3)
    client.expect("1", timeout=3)
    client.expect_disconnect(timeout=4)
    app.wait_for(lambda: len(app.logouts) == 1)
    assert "test request unanswered" in app.logouts[0]
    assert session.state is SessionState.DISCONNECTED


def test_7_reject_received_consumes_its_seq_num(harness, begin_string):
    """7_ReceiveRejectMessage: a Reject is passed to the application and counted."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("3", [(45, 1)])
    client.send("5")
    assert client.expect("5").seq_num == 2
    app.wait_for(lambda: len(app.session_rejects) == 1)
    assert app.session_rejects[0].get(45) == "1"


def test_8_resend_request_gap_fills_admin_and_resends_application(harness, begin_string):
    """8_AdminAndApplicationMessages: admin messages 2-4, application 5-6, admin 7-8,
    application 9; each ResendRequest is answered with gap fills for admin runs and PossDup
    copies (OrigSendingTime) of application messages; EndSeqNo 0 means infinity."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    for _ in range(3):
        client.send("1", [(112, "HELLO")])
        client.expect("0")
    originals = {}
    for symbol in ("INTC", "CDG"):
        client.send("D", order(symbol))
        echo = client.expect("D")
        originals[echo.seq_num] = echo
    for _ in range(2):
        client.send("1", [(112, "HELLO")])
        client.expect("0")
    client.send("D", order("IVP"))
    echo = client.expect("D")
    originals[echo.seq_num] = echo
    assert sorted(originals) == [5, 6, 9]

    def resend(begin: int, end: int) -> list[tuple[str, int, str | None]]:
        """Sends ResendRequest begin..end, then a TestRequest marking the end of the answer."""
        client.send("2", [(7, begin), (16, end)])
        client.send("1", [(112, "END")])
        answers: list[tuple[str, int, str | None]] = []
        while True:
            message = client.receive()
            if message.msg_type == "0" and message.get(112) == "END":
                return answers
            assert message.poss_dup and 122 in message
            if message.msg_type == "4":
                assert message.get(123) == "Y"
                answers.append(("4", message.seq_num, message.get(36)))
            else:
                original = originals[message.seq_num]
                assert message.get(122) == original.get(52)    # OrigSendingTime
                assert app_body(message) == app_body(original)
                answers.append(("D", message.seq_num, message.get(55)))

    assert resend(2, 4) == [("4", 2, "5")]                  # heartbeat 10 answers END
    assert resend(2, 6) == [("4", 2, "5"), ("D", 5, "INTC"), ("D", 6, "CDG")]
    assert resend(2, 8) == [("4", 2, "5"), ("D", 5, "INTC"), ("D", 6, "CDG"), ("4", 7, "9")]
    full = [("4", 2, "5"), ("D", 5, "INTC"), ("D", 6, "CDG"), ("4", 7, "9"), ("D", 9, "IVP")]
    assert resend(2, 9) == full
    assert resend(2, 0) == full + [("4", 10, "14")]        # 10-13 answered the END requests
    assert client.ping().seq_num == 15     # answers to resend requests take no new numbers
    client.send("5")
    assert client.expect("5").seq_num == 16


def test_8_trailing_admin_messages_end_with_a_gap_fill_to_the_next_number(harness,
                                                                          begin_string):
    """8_OnlyApplicationMessages / 8_OnlyAdminMessages: 1..0 after a trailing Heartbeat ends
    with a gap fill up to the next sequence number; only admin -> one gap fill from 1."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("2", [(7, 1), (16, 0)])
    gap_fill = client.expect("4", tag_36=2, tag_123="Y", tag_43="Y")
    assert gap_fill.seq_num == 1
    client.send("D", order("A"))
    client.expect("D")
    client.send("1", [(112, "X")])
    client.expect("0")
    client.send("2", [(7, 2), (16, 0)])
    resent = client.expect("D", tag_43="Y")
    assert resent.seq_num == 2
    gap_fill = client.expect("4", tag_36=4)
    assert gap_fill.seq_num == 3


def test_10_gap_fill_equal_to_expected_moves_the_sequence(harness, begin_string):
    """10_MsgSeqNumEqual: GapFill 2 -> 20; the next message is 20."""
    session, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("4", [(36, 20), (123, "Y")])
    client.next_seq = 20
    assert client.ping().seq_num == 2


def test_10_gap_fill_greater_than_expected_requests_resend(harness, begin_string):
    """10_MsgSeqNumGreater: GapFill numbered 10 when 2 is expected -> ResendRequest 2..0."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("4", [(36, 20), (123, "Y")], seq=10)
    client.send("1", [(112, "HELLO")], seq=20)
    client.expect("2", tag_7=2, tag_16=0)
    client.send("5", seq=2)
    assert client.expect("5").seq_num == 3


def test_10_gap_fill_less_than_expected(harness, begin_string):
    """10_MsgSeqNumLess: a PossDup GapFill numbered 1 is ignored; without PossDup it is 'too
    low': Logout and disconnect."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("4", [(36, 20), (123, "Y")], seq=1, poss_dup=True,
                orig_sending_time_ns=time.time_ns() - 1_000_000_000)
    assert client.ping().seq_num == 2
    client.send("4", [(36, 20), (123, "Y")], seq=1)
    messages = client.expect_disconnect()
    assert [(m.msg_type, m.get(58)) for m in messages] == [
        ("5", "MsgSeqNum too low, expecting 3 but received 1")]


def test_10_gap_fill_that_would_lower_the_number_is_rejected(harness, begin_string):
    """10e: GapFill with NewSeqNo <= MsgSeqNum -> Reject reason 5 (RefTagID 36)."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("4", [(36, 2), (123, "Y")])
    client.expect("3", tag_45=2, tag_371=36, tag_373=5)


def test_11_sequence_reset_reset(harness, begin_string):
    """11a_NewSeqNoGreater, 11b_NewSeqNoEqual, 11c_NewSeqNoLess: Reset mode ignores MsgSeqNum;
    a greater NewSeqNo moves the expected number, equal is accepted, less is rejected (reason
    5) without lowering it."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("4", [(36, 25)], seq=0)                     # 11a, GapFillFlag absent
    client.next_seq = 25
    assert client.ping().seq_num == 2
    client.send("4", [(36, 50), (123, "N")], seq=0)         # 11a, GapFillFlag N
    client.next_seq = 50
    assert client.ping().seq_num == 3
    client.send("4", [(36, 51)], seq=0)                     # 11b
    assert client.ping().seq_num == 4
    client.send("4", [(36, 1)], seq=0)                      # 11c
    client.expect("3", tag_58="Value is incorrect (out of range) for this tag", tag_372="4",
                  tag_373=5, tag_371=36)
    assert client.ping().seq_num == 6
    client.send("5")
    assert client.expect("5").seq_num == 7


def test_13b_unsolicited_logout_is_answered(harness, begin_string):
    """13b_UnsolicitedLogoutMessage: a Logout is answered with a Logout, then the connection
    closes."""
    session, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("5", [(58, "bye")])
    assert client.expect("5").seq_num == 2
    client.expect_disconnect()
    app.wait_for(lambda: app.logouts == ["logout: bye"])


def test_12_logout_initiated_by_the_session(harness, begin_string):
    """12: the application logs out; the peer's answer ends the session; without an answer
    the connection closes after logout_timeout_s."""
    session, app, port = harness.acceptor(begin_string=begin_string, logout_timeout_s=0.5)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    harness.reactor_thread.call(lambda: session.logout("end of day"))
    client.expect("5", tag_58="end of day")
    client.send("5")
    client.expect_disconnect()
    app.wait_for(lambda: len(app.logouts) == 1)
    silent = harness.client(port, begin_string=begin_string)
    silent.logon()
    harness.reactor_thread.call(lambda: session.logout())
    silent.expect("5")
    silent.expect_disconnect(timeout=3)
    app.wait_for(lambda: app.logouts[-1] == "timed out waiting for the Logout answer")


def test_19a_poss_resend_already_seen_is_left_to_the_application(harness, begin_string):
    """19a_PossResendMessageThatHasAlreadyBeenSent: the session delivers a PossResend (97=Y)
    message with its flag; the application sees the ClOrdID again and ignores it."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon(heartbeat_s=2)
    client.send("D", [(11, "id"), (21, 3), (40, 1), (54, 1), (55, "MSFT"),
                      (60, sending_time())])
    client.expect("D")
    client.send_raw(build_raw(client.header("D") + [(97, "Y"), (11, "id"), (21, 3), (40, 1),
                                                     (54, 1), (55, "MSFT"),
                                                     (60, sending_time())]))
    client.send("5")
    assert client.expect("5").seq_num == 3
    assert [m.get(97) for m in app.messages] == [None, "Y"]


def test_19b_poss_resend_not_seen_is_processed(harness, begin_string):
    """19b_PossResendMessageThatHasNotBeenSent: processed normally."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon(heartbeat_s=2)
    client.send_raw(build_raw(client.header("D") + [(97, "Y"), (11, "id"), (21, 3), (40, 1),
                                                     (54, 1), (55, "MSFT"),
                                                     (60, sending_time())]))
    echo = client.expect("D")
    assert echo.get(11) == "id"
    assert [m.get(97) for m in app.messages] == ["Y"]


def test_20_simultaneous_resend_request(harness, begin_string):
    """20_SimultaneousResendRequest: while our ResendRequest 4..0 is pending, the peer's
    ResendRequest 2..3 is answered at once; then the peer's resent messages fill our gap."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    for _ in range(2):
        client.send("D", order("INTC"))
        client.expect("D")
    client.send("0", seq=7)
    client.expect("2", tag_7=4, tag_16=0)
    client.send("2", [(7, 2), (16, 3)], seq=8)
    for seq in (2, 3):
        resent = client.expect("D", tag_43="Y")
        assert resent.seq_num == seq and 122 in resent
    for seq in (4, 5, 6):
        client.send("0", seq=seq, poss_dup=True, orig_sending_time_ns=time.time_ns())
    client.send("5", seq=9)
    assert client.expect("5").seq_num == 5
    client.expect_disconnect()
