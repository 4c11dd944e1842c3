"""Messages with field errors: FIX session test cases 14a-14h and 15 (QuickFIX acceptance
definitions of the same numbers). Each Reject carries RefSeqNum, RefTagID, RefMsgType and
SessionRejectReason, and the rejected message consumes its sequence number."""

from __future__ import annotations

from conftest import build_raw, sending_time


def reject_of(client, message_fields, *, reason, ref_tag, text, ref_msg_type, begin_string):
    client.send_raw(build_raw(message_fields))
    reject = client.receive()
    assert reject is not None and reject.msg_type == "3", reject
    assert reject.get(58) == text
    assert reject.get(372) == ref_msg_type
    assert reject.get(371) == (None if ref_tag is None else str(ref_tag))
    if begin_string == "FIX.4.4" or reason <= 11:
        assert reject.get(373) == str(reason)
    else:
        assert 373 not in reject    # FIX 4.2 defines reasons 0-11 only
    return reject


def test_14a_invalid_tag_numbers_are_rejected(harness, begin_string):
    """14a_BadField: tags not in the specification (999, 5000) or not positive (0, -1) on a
    Heartbeat -> Reject reason 0 'Invalid tag number'; each consumes its number. A tag that is
    not a number at all is garbled instead (2d)."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    for tag in (999 if begin_string == "FIX.4.2" else 9999, 0, -1, 5000):
        reject = reject_of(client, client.header("0") + [(tag, "HI")], reason=0, ref_tag=tag,
                           text="Invalid tag number", ref_msg_type="0",
                           begin_string=begin_string)
        assert reject.get(45) == str(client.next_seq - 1)
    client.send("5")
    assert client.expect("5").seq_num == 6


def test_14b_required_field_missing(harness, begin_string):
    """14b_RequiredFieldMissing: TargetCompID (56) missing from the header -> Reject reason 1
    RefTagID 56; TestReqID missing from a TestRequest -> RefTagID 112."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    header = [field for field in client.header("0") if field[0] != 56]
    reject_of(client, header, reason=1, ref_tag=56, text="Required tag missing",
              ref_msg_type="0", begin_string=begin_string)
    reject_of(client, client.header("1"), reason=1, ref_tag=112, text="Required tag missing",
              ref_msg_type="1", begin_string=begin_string)
    assert client.ping().seq_num == 4


def test_14c_tag_not_defined_for_message_type(harness, begin_string):
    """14c_TagNotDefinedForMsgType: Symbol (55) on a Heartbeat -> Reject reason 2."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    reject_of(client, client.header("0") + [(55, "MSFT")], reason=2, ref_tag=55,
              text="Tag not defined for this message type", ref_msg_type="0",
              begin_string=begin_string)
    assert client.ping().seq_num == 3


def test_14d_tag_specified_without_value(harness, begin_string):
    """14d_TagSpecifiedWithoutValue: '56=' -> Reject reason 4 RefTagID 56."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    header = [(tag, "" if tag == 56 else value) for tag, value in client.header("0")]
    reject_of(client, header, reason=4, ref_tag=56, text="Tag specified without a value",
              ref_msg_type="0", begin_string=begin_string)
    assert client.ping().seq_num == 3


def test_14e_14f_incorrect_session_field_values(harness, begin_string):
    """14e/14f on session fields: GapFillFlag 'X' -> reason 5; BeginSeqNo 'abc' -> reason 6."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    reject_of(client, client.header("2") + [(7, "abc"), (16, 0)], reason=6, ref_tag=7,
              text="Incorrect data format for value", ref_msg_type="2",
              begin_string=begin_string)
    reject_of(client, client.header("4") + [(123, "X"), (36, 10)], reason=5, ref_tag=123,
              text="Value is incorrect (out of range) for this tag", ref_msg_type="4",
              begin_string=begin_string)
    client.next_seq = 3    # a rejected SequenceReset does not consume its number
    assert client.ping().seq_num == 4


def test_14g_header_body_trailer_out_of_order(harness, begin_string):
    """14g_HeaderBodyTrailerFieldsOutOfOrder: header fields after body fields -> Reject
    reason 14 RefTagID 34 (FIX 4.2 has no code 14: text only)."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    header = client.header("D")
    body = [(11, "id"), (21, 3), (40, 1), (54, 1), (55, "MSFT"), (60, sending_time())]
    reject_of(client, [header[0], header[1]] + body + header[4:5] + header[2:4] + header[5:],
              reason=14, ref_tag=34, text="Tag specified out of required order",
              ref_msg_type="D", begin_string=begin_string)
    header = client.header("D")
    reject_of(client, header[:2] + [(55, "MSFT")] + header[4:5] + header[2:4] + header[5:]
              + [(11, "id"), (21, 3), (40, 1), (54, 1), (60, sending_time())],
              reason=14, ref_tag=34, text="Tag specified out of required order",
              ref_msg_type="D", begin_string=begin_string)
    assert app.messages == []
    assert client.ping().seq_num == 4


def test_14h_repeated_tag(harness, begin_string):
    """14h_RepeatedTag: a header tag or an admin body tag twice -> Reject reason 13."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    header = client.header("0")
    reject_of(client, header + [(52, sending_time())], reason=13, ref_tag=52,
              text="Tag appears more than once", ref_msg_type="0", begin_string=begin_string)
    reject_of(client, client.header("1") + [(112, "A"), (112, "B")], reason=13, ref_tag=112,
              text="Tag appears more than once", ref_msg_type="1", begin_string=begin_string)
    assert client.ping().seq_num == 4


def test_15_header_and_body_fields_ordered_differently_are_accepted(harness, begin_string):
    """15_HeaderAndBodyFieldsOrderedDifferently: header fields in another order (after 35)
    and body fields in another order are accepted."""
    _, app, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send("D", [(11, "id"), (21, 3), (40, 1), (54, 1), (55, "MSFT"),
                      (60, sending_time())])
    client.expect("D")
    header = client.header("D")
    reordered = header[:2] + [header[2], header[4], header[3], header[5]]
    client.send_raw(build_raw(reordered + [(40, 1), (55, "MSFT"), (60, sending_time()),
                                           (54, 1), (21, 3), (11, "id")]))
    echo = client.expect("D")
    assert echo.seq_num == 3 and echo.get(55) == "MSFT"
    assert [m.seq_num for m in app.messages] == [2, 3]


def test_rejected_message_ahead_of_a_gap_still_counts(harness, begin_string):
    """A rejected message numbered above the expected one is counted once the gap is filled
    (and the gap is asked for at once)."""
    _, _, port = harness.acceptor(begin_string=begin_string)
    client = harness.client(port, begin_string=begin_string)
    client.logon()
    client.send_raw(build_raw(client.header("0", seq=3) + [(55, "X")]))
    client.expect("3", tag_45=3, tag_373=2)
    client.expect("2", tag_7=2, tag_16=0)
    client.send("0", seq=2)
    client.next_seq = 4
    assert client.ping().seq_num == 4
