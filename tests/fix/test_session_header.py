"""Receiving the standard header and trailer: FIX session test cases 2a-2t and 3b-3c, with
QuickFIX's acceptance test definitions of the same numbers; acceptor over real TCP."""

from __future__ import annotations

from conftest import build_raw, sending_time, wait_until

from sor.fix.session import SessionState

ORDER = [(11, "ID"), (21, 3), (40, 1), (54, 1), (55, "INTC")]


def order(symbol: str = "INTC") -> list[tuple[int, object]]:
    return [(11, "ID"), (21, 3), (40, 1), (54, 1), (55, symbol), (60, sending_time())]


def test_2a_seq_num_as_expected_is_accepted(harness, begin_string):
    """2a_MsgSeqNumCorrect: messages in sequence are processed and counted."""
    session, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("D", order())
    echo = client.expect("D")
    assert echo.seq_num == 2 and echo.get(55) == "INTC"
    assert client.ping().seq_num == 3
    wait_until(lambda: session.next_target_seq_num == 4)


def test_2b_seq_num_too_high_sends_resend_request_and_queues(harness, begin_string):
    """2b_MsgSeqNumTooHigh: 10 when 5 is expected -> ResendRequest 5..0; the resent 5-9 fill
    the gap; the queued 10 is then processed; the Logout 11 is answered."""
    session, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    for _ in range(3):
        client.send("0")
    client.send("D", order("TEN"), seq=10)
    client.expect("2", tag_7=5, tag_16=0)
    for seq in range(5, 10):
        client.send("D", order(f"S{seq}"), seq=seq)
    symbols = [client.expect("D").get(55) for _ in range(6)]
    assert symbols == ["S5", "S6", "S7", "S8", "S9", "TEN"]   # in sequence order
    client.send("5", seq=11)
    assert client.expect("5").seq_num == 9
    client.expect_disconnect()


def test_2c_seq_num_too_low_without_poss_dup_logs_out_and_disconnects(harness, begin_string):
    """2c_MsgSeqNumTooLow: 2 again when 5 is expected -> Logout with the standard text."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    for _ in range(3):
        client.send("0")
    client.send("0", seq=2)
    messages = client.expect_disconnect()
    assert [(m.msg_type, m.get(58)) for m in messages] == [
        ("5", "MsgSeqNum too low, expecting 5 but received 2")]


def test_2d_3c_garbled_messages_are_ignored_without_consuming_a_seq_num(harness, begin_string):
    """2d_GarbledMessage / 3c_GarbledMessage: a message with a non-numeric tag is ignored; the
    corrected message with the same number is accepted; a later gap is recovered."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send_raw(build_raw([(8, begin_string), (35, "0"), (34, 2), ("4garbled9", "TW"),
                               (52, sending_time()), (56, "ISLD")]))
    client.send("0", seq=2)
    client.send_raw(build_raw([(8, begin_string), (35, "D"), (34, 3), ("49garbled", "TW"),
                               (52, sending_time()), (56, "ISLD")] + ORDER))
    client.send("0", seq=4)
    client.expect("2", tag_7=3, tag_16=0)
    client.send("D", order(), seq=3)
    client.expect("D")
    client.next_seq = 5
    assert client.ping().seq_num == 4
    assert [m.seq_num for m in app.messages] == [3]


def test_2e_poss_dup_already_received_is_ignored(harness, begin_string):
    """2e_PossDupAlreadyReceived: a PossDup copy of message 2 (with OrigSendingTime) is
    dropped; message 3 is processed."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    first = client.message("D", order())
    client.send_raw(first)
    client.expect("D")
    client.send("D", order(), seq=2, poss_dup=True, orig_sending_time_ns=1)
    client.send("D", order("NEXT"), seq=3)
    assert client.expect("D").get(55) == "NEXT"
    client.next_seq = 4
    assert client.ping().seq_num == 4
    assert [m.seq_num for m in app.messages] == [2, 3]


def test_2e_poss_dup_not_received_is_processed(harness, begin_string):
    """2e_PossDupNotReceived: a PossDup message with the expected number is processed once."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("0")
    client.send("0", seq=2, poss_dup=True, orig_sending_time_ns=1)
    client.send("D", order(), seq=3, poss_dup=True, orig_sending_time_ns=1)
    echo = client.expect("D")
    assert app.messages[0].poss_dup and app.messages[0].seq_num == 3
    client.next_seq = 4
    client.send("5")
    assert client.expect("5").seq_num == echo.seq_num + 1


def test_2f_poss_dup_orig_sending_time_after_sending_time_is_rejected(harness, begin_string):
    """2f_PossDupOrigSendingTimeTooHigh: Reject reason 10 'SendingTime accuracy problem',
    then Logout; the session ends when the peer answers."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("D", order())
    client.expect("D")
    client.send("D", order())
    client.expect("D")
    import time as _time
    now = _time.time_ns()
    client.send("D", order(), seq=2, sending_time_ns=now, poss_dup=True,
                orig_sending_time_ns=now + 10_000_000_000)
    reject = client.expect("3", tag_45=2, tag_58="SendingTime accuracy problem", tag_372="D",
                           tag_373=10)
    assert 371 not in reject
    client.expect("5")
    client.send("5", seq=4)
    client.expect_disconnect()


def test_2g_poss_dup_without_orig_sending_time_is_rejected(harness, begin_string):
    """2g_PossDupNoOrigSendingTime: Reject 'Required tag missing' RefTagID 122 reason 1; the
    inbound sequence number does not move."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("D", order())
    client.expect("D")
    client.send("D", order())
    client.expect("D")
    raw = build_raw([(8, begin_string), (35, "D"), (34, 2), (49, "TW"), (52, sending_time()),
                     (56, "ISLD"), (43, "Y")] + ORDER)
    client.send_raw(raw)
    client.expect("3", tag_45=2, tag_58="Required tag missing", tag_371=122, tag_372="D",
                  tag_373=1)
    assert client.ping().seq_num == 5
    client.send("5")
    assert client.expect("5").seq_num == 6
    client.expect_disconnect()


def test_2i_begin_string_value_unexpected_gets_logout(harness, begin_string):
    """2i_BeginStringValueUnexpected: Logout 'Incorrect BeginString'; the session ends on the
    peer's Logout, or after logout_timeout_s without one."""
    session, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("1", [(112, "id")], begin_string="FIX.4.1")
    client.expect("5", tag_58="Incorrect BeginString")
    client.send("5")
    client.expect_disconnect()
    silent = harness.client(port, begin_string=begin_string)
    silent.logon()
    silent.send("1", [(112, "id")], begin_string="FIX.4.1")
    silent.expect("5", tag_58="Incorrect BeginString")
    assert silent.expect_disconnect(timeout=3) == []


def test_2k_comp_id_does_not_match_profile(harness, begin_string):
    """2k_CompIDDoesNotMatchProfile: wrong SenderCompID, TargetCompID, or both: Reject reason 9
    'CompID problem', then Logout."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    for sender, target in (("WT", "ISLD"), ("TW", "DLSI"), ("WT", "DLSI")):
        client = harness.client(port, begin_string=begin_string)
        client.logon()
        client.send("D", order(), sender=sender, target=target)
        reject = client.expect("3", tag_45=2, tag_58="CompID problem", tag_372="D", tag_373=9)
        assert reject.seq_num == 2
        assert client.expect("5").seq_num == 3
        client.send("5")
        client.expect_disconnect()


def test_2m_body_length_value_not_correct_is_ignored(harness, begin_string):
    """2m_BodyLengthValueNotCorrect: a wrong BodyLength (too short, too long) makes a garbled
    message, ignored without consuming its number; the next message is too high and the
    resent one fills the gap."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send_raw(build_raw(client.header("D", seq=2) + order(), body_length=30))
    client.send("D", order("THREE"), seq=3)
    client.expect("2", tag_7=2, tag_16=0)
    client.send("D", order("TWO"), seq=2, poss_dup=True, orig_sending_time_ns=1)
    assert [client.expect("D").get(55) for _ in range(2)] == ["TWO", "THREE"]
    # too long: the framer ends the bad frame where the next message starts, so the next
    # message (5) is not lost; it is too high, and 4 comes again as a resend
    too_long = build_raw(client.header("D", seq=4) + order("FOUR"), body_length=111 + 80)
    client.send_raw(too_long + client.message("D", order("FIVE"), seq=5))
    client.expect("2", tag_7=4, tag_16=0)
    client.send("D", order("FOUR"), seq=4, poss_dup=True, orig_sending_time_ns=1)
    assert [client.expect("D").get(55) for _ in range(2)] == ["FOUR", "FIVE"]
    client.next_seq = 6
    assert client.ping().seq_num == 8   # Logon 1, ResendRequests 2 and 5, four echoes


def test_2o_sending_time_out_of_range_is_rejected_and_logged_out(harness, begin_string):
    """2o_SendingTimeValueOutOfRange: more than 120 s early or late: Reject reason 10, Logout."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    for offset in (-121, 121):
        client = harness.client(port, begin_string=begin_string)
        client.logon()
        client.send_raw(build_raw([(8, begin_string), (35, "0"), (34, 2), (49, "TW"),
                                   (52, sending_time(offset)), (56, "ISLD")]))
        client.expect("3", tag_45=2, tag_58="SendingTime accuracy problem", tag_372="0",
                      tag_373=10)
        assert client.expect("5").seq_num == 3
        client.send("5", seq=3)
        client.expect_disconnect()


def test_2q_msg_type_not_valid_is_rejected(harness, begin_string):
    """2q_MsgTypeNotValid: MsgType '*' -> Reject reason 11 'Invalid MsgType'; the number is
    consumed."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("*")
    client.expect("3", tag_45=2, tag_58="Invalid MsgType", tag_372="*", tag_373=11)
    client.send("5")
    assert client.expect("5").seq_num == 3
    client.expect_disconnect()


def test_2r_unregistered_msg_type_gets_business_reject(harness, begin_string):
    """2r_UnregisteredMsgType: a valid type the application does not support (the base
    Application) -> BusinessMessageReject 380=3 'Unsupported Message Type'."""
    from sor.fix.session import Application

    _, _, port = harness.acceptor(Application(), begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("8", [(37, "id"), (17, "id"), (20, 0), (150, 0), (39, 0), (55, "WLRI"),
                      (54, 1), (151, 100), (14, 0), (6, "0.0")])
    client.expect("j", tag_45=2, tag_58="Unsupported Message Type", tag_372="8", tag_380=3)
    client.send("5")
    assert client.expect("5").seq_num == 3


def test_2t_first_three_fields_out_of_order_are_garbled(harness, begin_string):
    """2t_FirstThreeFieldsOutOfOrder: MsgType not third (here 34 before 35) -> ignored, the
    number is not consumed."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send_raw(build_raw([(8, begin_string), (34, 2), (35, "0"), (49, "TW"),
                               (52, sending_time()), (56, "ISLD")]))
    assert client.ping().seq_num == 2


def test_3b_invalid_checksum_is_ignored(harness, begin_string):
    """3b_InvalidChecksum: a wrong CheckSum is ignored (number not consumed); a later gap is
    recovered by resend request."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    good = client.message("0", seq=2)
    client.send_raw(good[:-7] + b"10=256\x01")
    client.send_raw(good)
    bad = client.message("D", ORDER, seq=3)
    client.send_raw(bad[:-7] + b"10=%03d\x01" % ((int(bad[-4:-1]) + 1) % 256))
    client.send("0", seq=4)
    client.expect("2", tag_7=3, tag_16=0)
    client.send("D", order(), seq=3, poss_dup=True, orig_sending_time_ns=1)
    client.expect("D")
    client.next_seq = 5
    client.send("5")
    assert client.expect("5").seq_num == 4
    client.expect_disconnect()


def test_missing_seq_num_logs_out_and_disconnects(harness, begin_string):
    """A message without MsgSeqNum (34): Logout 'MsgSeqNum(34) missing' and disconnect."""
    session, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send_raw(build_raw([(8, begin_string), (35, "0"), (49, "TW"),
                               (52, sending_time()), (56, "ISLD")]))
    messages = client.expect_disconnect()
    assert [(m.msg_type, m.get(58)) for m in messages] == [("5", "MsgSeqNum(34) missing")]
    wait_until(lambda: session.state is SessionState.DISCONNECTED)
