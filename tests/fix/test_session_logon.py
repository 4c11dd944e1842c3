"""Acceptor logon, numbered by the FIX session test cases (1S) and QuickFIX's acceptance test
definitions (test/definitions/server/fix42/1*.def); real TCP with a raw-socket client."""

from __future__ import annotations

from conftest import build_raw, sending_time, wait_until

from sor.fix.session import SessionState


def test_1S_a_valid_logon_with_correct_seq_num(harness, begin_string):
    """1S-a / 1a_ValidLogonWithCorrectMsgSeqNum: the acceptor answers the Logon (same
    HeartBtInt, EncryptMethod 0); a Logout is answered and the connection closed."""
    session, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    answer = client.logon(heartbeat_s=30)
    assert answer.seq_num == 1 and answer.get(98) == "0" and answer.get(108) == "30"
    assert 141 not in answer
    app.wait_for(lambda: app.logons == 1)
    assert session.state is SessionState.ACTIVE and session.heartbeat_interval_s == 30
    client.send("5")
    logout = client.expect("5")
    assert logout.seq_num == 2
    assert client.expect_disconnect() == []
    app.wait_for(lambda: app.logouts == ["logout"])
    wait_until(lambda: session.state is SessionState.DISCONNECTED)


def test_1S_a_valid_logon_with_seq_num_too_high_sends_resend_request(harness, begin_string):
    """1S-a / 1a_ValidLogonMsgSeqNumTooHigh: Logon answered first, then ResendRequest 1..0."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon(seq=5)
    resend = client.expect("2", tag_7=1, tag_16=0)
    assert resend.seq_num == 2
    client.send("5", seq=6)
    assert client.expect("5").seq_num == 3
    client.expect_disconnect()


def test_1S_b_duplicate_identity_is_disconnected_without_a_message(harness):
    """1S-b / 1b_DuplicateIdentity, AlreadyLoggedOn: a second Logon with the same CompIDs while
    the first connection is up is closed without any message; the first one stays up."""
    _, _, port = harness.acceptor()
    first = harness.client(port)
    first.logon()
    second = harness.client(port)
    second.send("A", [(98, 0), (108, 30)])
    assert second.expect_disconnect() == []
    assert first.ping().seq_num == 2
    first.send("5")
    first.expect("5")
    first.expect_disconnect()


def test_1S_c_unknown_comp_ids_are_disconnected_without_a_message(harness):
    """1S-c / 1c_InvalidTargetCompID, 1c_InvalidSenderCompID: unconfigured CompIDs."""
    _, app, port = harness.acceptor()
    bad_target = harness.client(port, target="DLSI")
    bad_target.send("A", [(98, 0), (108, 30)])
    assert bad_target.expect_disconnect() == []
    bad_sender = harness.client(port, sender="WT")
    bad_sender.send("A", [(98, 0), (108, 30)])
    assert bad_sender.expect_disconnect() == []
    assert app.logons == 0


def test_1S_c_begin_string_of_no_configured_session_is_disconnected(harness):
    """1d_InvalidLogonWrongBeginString: FIX.3.9 matches no session: closed, no message."""
    _, _, port = harness.acceptor()
    client = harness.client(port, begin_string="FIX.3.9")
    client.send("A", [(98, 0), (108, 30)])
    assert client.expect_disconnect() == []


def test_1S_d_logon_with_bad_sending_time_gets_logout_and_disconnect(harness, begin_string):
    """1S-d / 1d_InvalidLogonBadSendingTime: an invalid Logon gets a Logout naming the error,
    then the connection is closed."""
    session, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.send_raw(build_raw([(8, begin_string), (35, "A"), (34, 1), (49, "TW"),
                               (52, "20010101-00:00:00"), (56, "ISLD"), (98, 0), (108, 30)]))
    messages = client.expect_disconnect()
    assert [m.msg_type for m in messages] == ["5"]
    assert messages[0].get(58) == "SendingTime accuracy problem"
    wait_until(lambda: session.state is SessionState.DISCONNECTED)
    assert app.logons == 0


def test_1S_d_logon_without_heartbeat_interval_is_refused(harness, begin_string):
    """1S-d: a Logon without HeartBtInt (108) is invalid: Logout, disconnect."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.send("A", [(98, 0)])
    messages = client.expect_disconnect()
    assert [m.msg_type for m in messages] == ["5"]
    assert "Required tag missing (108)" in messages[0].get(58)
    assert app.logons == 0


def test_1S_d_logon_with_invalid_body_length_is_disconnected(harness):
    """1d_InvalidLogonLengthInvalid: a Logon whose BodyLength is wrong is garbled before any
    session exists: the connection is closed."""
    _, app, port = harness.acceptor()
    client = harness.client(port)
    client.send_raw(build_raw(client.header("A") + [(98, 0), (108, 30)], body_length=40))
    assert client.expect_disconnect() == []
    assert app.logons == 0


def test_1S_e_first_message_not_a_logon_is_disconnected(harness, begin_string):
    """1S-e / 1e_NotLogonMessage: the first message is a Heartbeat: logged, disconnected."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.send("0")
    assert client.expect_disconnect() == []
    assert app.logons == 0


def test_logon_timeout_closes_a_silent_connection(harness):
    """A connection that never sends a Logon is closed after logon_timeout_s."""
    _, _, port = harness.acceptor(logon_timeout_s=0.3)
    client = harness.client(port)
    assert client.expect_disconnect(timeout=3) == []


def test_reset_seq_num_flag_resets_both_sides_and_is_echoed(harness, begin_string):
    """Logon with 141=Y: both sides restart at 1 and the answer carries 141=Y, even when the
    acceptor does not reset on every logon."""
    session, app, port = harness.acceptor(begin_string=begin_string, reset_on_logon=False)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("D", [(11, "A1"), (21, 1), (55, "X"), (54, 1), (60, sending_time()), (40, 1)])
    client.expect("D")
    client.send("5")
    client.expect("5")
    client.expect_disconnect()
    assert session.next_sender_seq_num == 4 and session.next_target_seq_num == 4
    again = harness.client(port, begin_string=begin_string)
    answer = again.logon(reset=True)
    assert answer.seq_num == 1 and answer.get(141) == "Y"
    assert again.ping().seq_num == 2
    assert session.store.message_count == 0


def test_without_reset_the_next_logon_continues_the_sequence(harness, begin_string):
    """reset_on_logon = false: a reconnecting peer continues the sequence numbers; starting
    again at 1 is MsgSeqNum too low."""
    session, app, port = harness.acceptor(begin_string=begin_string, reset_on_logon=False)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("5")
    client.expect("5")
    client.expect_disconnect()
    again = harness.client(port, begin_string=begin_string)
    again.next_seq = 3
    assert again.logon().seq_num == 3
    again.send("5")
    again.expect("5")
    again.expect_disconnect()
    late = harness.client(port, begin_string=begin_string)
    late.send("A", [(98, 0), (108, 30)], seq=1)
    messages = late.expect_disconnect()
    assert [m.get(58) for m in messages] == ["MsgSeqNum too low, expecting 5 but received 1"]


def test_several_sessions_share_a_port_matched_by_comp_ids(harness, begin_string):
    """Two acceptor sessions on one port: each Logon reaches the session of its CompIDs."""
    first = harness.session(harness.config(name="A", begin_string=begin_string,
                                           target_comp_id="TW"))
    second = harness.session(harness.config(name="B", begin_string=begin_string,
                                            target_comp_id="XY"))
    port = harness.reactor.listen("127.0.0.1", 0, [first, second])
    harness.reactor_thread.start()
    one = harness.client(port, begin_string=begin_string, sender="TW")
    two = harness.client(port, begin_string=begin_string, sender="XY")
    one.logon()
    two.logon()
    assert one.ping("1").seq_num == 2 and two.ping("2").seq_num == 2
    assert first.is_logged_on and second.is_logged_on
