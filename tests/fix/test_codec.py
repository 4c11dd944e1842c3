"""sor.fix.codec: parity with simplefix (encode and parse), the framer on split, corrupt, noisy
and oversized streams, UTCTimestamps and exact prices, and every error path."""

from __future__ import annotations

import datetime as dt
import pickle
from decimal import Decimal

import pytest
import simplefix
from simplefix.data import RAW_DATA_TAGS, RAW_LEN_TAGS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sor.errors import FixFieldError, FixParseError, UsageError
from sor.fix import codec
from sor.fix.codec import FixFramer, FrameStatus

SOH = b"\x01"
RESERVED = {8, 9, 10, 34, 35, 43, 49, 52, 56, 122}
# Length fields and their data fields (sor's FIX 4.x list and simplefix's FIX 5.0 one): a value
# of theirs must agree with its partner, so random values stay off them.
DATA_FIELDS = {90, 91, 93, 89, 95, 96, 212, 213, 348, 349, 350, 351, 352, 353, 354, 355, 356,
               357, 358, 359, 360, 361, 362, 363, 364, 365, 445, 446, 618, 619, 621, 622,
               *RAW_LEN_TAGS, *RAW_DATA_TAGS}
NS = 1_710_513_001_123_456_789  # 2024-03-15 14:30:01.123456789 UTC
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def wire(text: str) -> bytes:
    """Returns `text` with '|' as SOH, as bytes."""
    return text.replace("|", "\x01").encode()


def framed(body: str, begin_string: str = "FIX.4.4") -> bytes:
    """Builds a valid message around `body` by hand: BodyLength and CheckSum from first
    principles, independent of both codecs."""
    payload = wire(body)
    head = f"8={begin_string}|9={len(payload)}|".replace("|", "\x01").encode()
    message = head + payload
    return message + f"10={sum(message) % 256:03d}".encode() + SOH


def reference_timestamp(ns: int) -> str:
    """Returns the UTCTimestamp with milliseconds of `ns`, computed with datetime."""
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y%m%d-%H:%M:%S") + f".{rest // 1_000_000:03d}"


def simplefix_encode(begin_string, msg_type, sender, target, seq_num, sending_time_ns, body,
                     poss_dup=False, orig_sending_time_ns=0) -> bytes:
    message = simplefix.FixMessage()
    message.append_pair(8, begin_string)
    message.append_pair(35, msg_type)
    message.append_pair(49, sender)
    message.append_pair(56, target)
    message.append_pair(34, seq_num)
    # simplefix formats timestamps from datetime/float itself; pass the text explicitly.
    message.append_pair(52, reference_timestamp(sending_time_ns))
    if poss_dup:
        message.append_pair(43, "Y")
        message.append_pair(122, reference_timestamp(orig_sending_time_ns or sending_time_ns))
    for tag, value in body:
        message.append_pair(tag, value)
    return message.encode()


def simplefix_pairs(data: bytes) -> list[tuple[int, bytes]]:
    # sor's parser keeps empty values (the session layer rejects them with reason 4 and still
    # knows the message's MsgSeqNum); simplefix does so when asked.
    parser = simplefix.FixParser(allow_empty_values=True)
    parser.append_buffer(data)
    message = parser.get_message()
    assert message is not None
    return [(int(tag), value) for tag, value in message.pairs]


# ---- realistic messages ----------------------------------------------------------------------

EXECUTION_REPORT = [
    (37, "ORD-778812"), (11, "1.0000042"), (17, "EXEC-991"), (150, "F"), (39, "1"),
    (55, "AAPL"), (54, "1"), (38, 1000), (44, "187.25"), (32, 200), (31, "187.24"), (151, 800),
    (14, 200), (6, "187.24"), (60, "20240315-14:30:01.122"), (851, "2"), (30, "XNAS")]
NEW_ORDER_SINGLE = [
    (11, "3.1042"), (1, "ACC-1"), (21, "1"), (55, "MSFT"), (54, "2"),
    (60, "20240315-14:30:01.123"), (38, 300), (40, "2"), (44, "402.15"), (59, "3"),
    (18, "6"), (453, 2), (448, "DESK-A"), (447, "D"), (452, 1), (448, "TRADER-7"), (447, "D"),
    (452, 11), (7928, 200)]
REALISTIC = [
    ("FIX.4.4", "8", EXECUTION_REPORT),
    ("FIX.4.2", "8", EXECUTION_REPORT[:3] + [(20, "0")] + EXECUTION_REPORT[3:]),
    ("FIX.4.4", "D", NEW_ORDER_SINGLE),
    ("FIX.4.4", "A", [(98, 0), (108, 30), (141, "Y")]),
    ("FIX.4.2", "2", [(7, 17), (16, 0)]),
    ("FIX.4.4", "4", [(123, "Y"), (36, 42)]),
    ("FIX.4.4", "4", [(36, 7)]),
    ("FIX.4.4", "0", []),
    ("FIX.4.4", "1", [(112, "TEST-1")]),
    ("FIX.4.4", "3", [(45, 12), (371, 44), (372, "D"), (373, 6), (58, "Incorrect data format")]),
    ("FIX.4.4", "5", [(58, "Logout: done for the day")]),
    ("FIX.4.4", "F", [(41, "3.1042"), (11, "3.1043"), (55, "MSFT"), (54, "2"),
                      (60, "20240315-14:30:02.000"), (38, 300)]),
]


@pytest.mark.parametrize(("begin_string", "msg_type", "body"), REALISTIC,
                         ids=[f"{b}-{m}-{i}" for i, (b, m, _) in enumerate(REALISTIC)])
@pytest.mark.parametrize("poss_dup", [False, True])
def test_realistic_messages_match_simplefix(begin_string, msg_type, body, poss_dup):
    orig = NS - 5_000_000_000 if poss_dup else 0
    ours = codec.encode(begin_string, msg_type, "SOR", "VENUE1", 1042, NS, body,
                        poss_dup=poss_dup, orig_sending_time_ns=orig)
    theirs = simplefix_encode(begin_string, msg_type, "SOR", "VENUE1", 1042, NS, body,
                              poss_dup, orig)
    assert ours == theirs
    message = codec.parse(ours)
    assert message.fields() == simplefix_pairs(ours)
    assert message.raw is ours
    assert (message.begin_string, message.msg_type, message.seq_num) == (begin_string, msg_type,
                                                                          1042)
    assert (message.sender_comp_id, message.target_comp_id) == ("SOR", "VENUE1")
    assert message.poss_dup is poss_dup
    assert message.get(52) == "20240315-14:30:01.123"
    assert message.get(122) == ("20240315-14:29:56.123" if poss_dup else None)
    assert len(message) == len(body) + 8 + (2 if poss_dup else 0)
    frames = FixFramer().feed(ours)
    assert frames == [(FrameStatus.OK, ours)]


def test_repeating_group_values_keep_wire_order():
    data = codec.encode("FIX.4.4", "D", "SOR", "V", 1, NS, NEW_ORDER_SINGLE)
    message = codec.parse(data)
    assert message.get(448) == "DESK-A"
    assert message.get_all(448) == ["DESK-A", "TRADER-7"]
    assert message.count(448) == 2 and message.count(452) == 2 and message.count(9999) == 0
    assert message.get_int(453) == 2
    assert message.get_int(7928) == 200
    assert [tag for tag, _ in message.fields()].count(447) == 2


# ---- hypothesis parity -----------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x01"),
               min_size=1, max_size=30)
BODY_TAG = st.integers(1, 99_999).filter(lambda t: t not in RESERVED and t not in DATA_FIELDS)
VALUE = st.one_of(TEXT, st.integers(-(2**63), 2**63 - 1).map(str), st.integers(0, 10**12))
BODY = st.lists(st.tuples(BODY_TAG, VALUE), max_size=40)
# Groups: a count field, then the same tags repeated per entry.
GROUP = st.integers(1, 4).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(BODY_TAG, VALUE), min_size=1, max_size=4,
                         unique_by=lambda pair: pair[0])))
COMP_ID = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)


def _with_groups(body, groups):
    out = list(body)
    for count, entry in groups:
        out.append((453, count))
        for _ in range(count):
            out.extend(entry)
    return out


@FAST
@given(begin_string=st.sampled_from(["FIX.4.2", "FIX.4.4", "FIXT.1.1"]),
       msg_type=st.sampled_from(["D", "8", "F", "G", "9", "0", "A", "AE", "U1"]),
       sender=COMP_ID, target=COMP_ID, seq_num=st.integers(1, 2**40),
       sending_time_ns=st.integers(0, 2**62), body=BODY,
       groups=st.lists(GROUP, max_size=3), poss_dup=st.booleans())
def test_encode_and_parse_match_simplefix(begin_string, msg_type, sender, target, seq_num,
                                          sending_time_ns, body, groups, poss_dup):
    body = _with_groups(body, groups)
    ours = codec.encode(begin_string, msg_type, sender, target, seq_num, sending_time_ns, body,
                        poss_dup=poss_dup)
    theirs = simplefix_encode(begin_string, msg_type, sender, target, seq_num, sending_time_ns,
                              body, poss_dup)
    assert ours == theirs
    message = codec.parse(ours)
    assert message.fields() == simplefix_pairs(ours)
    assert message.seq_num == seq_num
    for tag, value in body:
        assert message.get(tag) == next(str(v) for t, v in body if t == tag)
        assert message.count(tag) == sum(1 for t, _ in body if t == tag)
        assert tag in message
    assert FixFramer().feed(ours) == [(FrameStatus.OK, ours)]


@FAST
@given(pairs=st.lists(st.tuples(st.integers(1, 999_999_999).filter(  # 10 ends a message
                                    lambda t: t not in DATA_FIELDS and t != 10),
                                st.binary(max_size=20).filter(lambda v: SOH not in v)),
                      min_size=1, max_size=60))
def test_parse_of_arbitrary_fields_matches_simplefix(pairs):
    # Any tag=value list (empty values, '=' in values, raw bytes) parses like simplefix.
    data = b"8=FIX.4.4\x01" + b"".join(b"%d=%s\x01" % (tag, value) for tag, value in pairs)
    data += b"10=000\x01"
    expected = [(8, b"FIX.4.4"), *pairs, (10, b"000")]
    assert codec.parse(data).fields() == expected == simplefix_pairs(data)


def test_data_fields_may_hold_soh_like_simplefix():
    data = framed("35=B|49=A|56=B|34=1|95=7|96=a|b=c|d|58=text|")
    message = codec.parse(data)
    assert message.get_bytes(96) == b"a\x01b=c\x01d"
    assert message.get(58) == "text"
    assert message.fields() == simplefix_pairs(data)
    encoded = codec.encode("FIX.4.4", "B", "A", "B", 1, NS, [(95, 7), (96, b"a\x01b=c\x01d")])
    assert codec.parse(encoded).get_bytes(96) == b"a\x01b=c\x01d"


# ---- FixMessage ------------------------------------------------------------------------------

def test_message_accessors():
    data = framed("35=8|49=V|56=S|34=77|43=Y|52=20240315-14:30:01.123|58=caf\u00e9|44=1.5|"
                  "38=-12|9000=x|9000=y|")
    message = codec.parse(data)
    assert message.poss_dup is True and message.seq_num == 77
    assert message.get(58) == "caf\u00e9"
    assert message.get_bytes(58) == "caf\u00e9".encode()
    assert message.get(9000) == "x" and message.get_all(9000) == ["x", "y"]
    assert message.get(1234) is None and message.get(1234, "-") == "-"
    assert message.get(tag=44, default=None) == "1.5"
    assert message.get_int(38) == -12 and message.get_int(1234, default=0) == 0
    assert message.get_int(-5) is None and message.get(10**30) is None
    assert 44 in message and 45 not in message and "44" not in message
    with pytest.raises(FixFieldError) as raised:
        message.get_int(44)
    assert raised.value.tag == 44 and raised.value.value == "1.5"
    assert "not an integer" in str(raised.value)
    with pytest.raises(TypeError):
        message.get("44")
    assert repr(message).startswith("FixMessage('8=FIX.4.4|9=") and repr(message).endswith("|')")
    clone = pickle.loads(pickle.dumps(message))
    assert clone.fields() == message.fields() and clone.raw == data
    assert codec.FixMessage(data).fields() == message.fields()
    assert codec.parse(bytearray(data)).fields() == message.fields()
    assert codec.parse(memoryview(data)).raw == data


def test_prices_and_equality_on_messages():
    data = codec.encode("FIX.4.4", "8", "V", "S", 9, NS, [(31, "187.25"), (44, "1.00005"),
                                                          (6, "x")])
    message = codec.parse(data)
    assert message.get_price(31) == 1_872_500
    assert message.get_price(31, tick_usd=0.01) == 18_725
    assert message.get_price(32) is None and message.get_price(32, 0) == 0
    with pytest.raises(FixFieldError, match="finer than the tick") as raised:
        message.get_price(44)
    assert raised.value.tag == 44 and raised.value.value == "1.00005"
    with pytest.raises(FixFieldError, match="not a FIX decimal"):
        message.get_price(6)
    with pytest.raises(UsageError, match="tick_usd"):
        message.get_price(31, tick_usd=0.0)
    with pytest.raises(TypeError):
        message.get_price(31, colour="red")
    same = codec.parse(bytes(data))
    assert same == message and not (same != message) and hash(same) == hash(message)
    assert message != codec.parse(HEARTBEAT) and message != data


def test_header_properties_default_when_absent():
    message = codec.parse(wire("58=x|34=abc|"))
    assert (message.msg_type, message.begin_string, message.sender_comp_id) == ("", "", "")
    assert message.seq_num == 0 and message.poss_dup is False


def test_messages_stay_independent():
    first = codec.parse(framed("35=0|49=A|56=B|34=1|"))
    kept = [codec.parse(framed(f"35=0|49=A|56=B|34={n}|")) for n in range(2, 50)]
    assert first.seq_num == 1
    assert [m.seq_num for m in kept] == list(range(2, 50))


@pytest.mark.parametrize(("data", "status", "offset"), [
    (b"", "empty", 0),
    (wire("8=FIX.4.4|=x|"), "empty_tag", 10),
    (wire("8=FIX.4.4||35=0|"), "empty_tag", 10),
    (wire("8=FIX.4.4|3a=0|"), "bad_tag", 10),
    (wire("8=FIX.4.4|035=0|"), "bad_tag", 10),
    (wire("8=FIX.4.4|0=0|"), "bad_tag", 10),
    (wire("8=FIX.4.4|35|"), "missing_equals", 10),
    (wire("8=FIX.4.4|35=0"), "unterminated", 10),
    (wire("8=FIX.4.4|95=9|96=ab|"), "bad_data_length", 15),
    (b"8=FIX.4.4\x01" + b"58=x\x01" * 600, "too_many_fields", 10 + 511 * 5),
], ids=["empty", "empty_tag", "empty_field", "letter_in_tag", "leading_zero", "tag_zero",
        "missing_equals", "unterminated", "bad_data_length", "too_many_fields"])
def test_parse_errors_name_status_and_offset(data, status, offset):
    with pytest.raises(FixParseError) as raised:
        codec.parse(data)
    assert raised.value.status == status
    assert raised.value.offset == offset
    assert f"at byte {offset}" in str(raised.value)
    again = pickle.loads(pickle.dumps(raised.value))
    assert (again.status, again.offset) == (status, offset)


def test_parse_refuses_non_bytes():
    with pytest.raises(UsageError):
        codec.parse("8=FIX.4.4\x01")


# ---- encode errors ---------------------------------------------------------------------------

def _encode(body, **kwargs):
    return codec.encode("FIX.4.4", "D", "SOR", "V", 1, NS, body, **kwargs)


@pytest.mark.parametrize(("body", "tag", "words"), [
    ([(58, "")], 58, "empty value"),
    ([(58, "a\x01b")], 58, "SOH"),
    ([(35, "D")], 35, "writes this tag itself"),
    ([(10, "000")], 10, "writes this tag itself"),
    ([(52, "x")], 52, "writes this tag itself"),
    ([(0, "x")], None, "between 1 and 999999999"),
    ([(1_000_000_000, "x")], None, "between 1 and 999999999"),
])
def test_encode_refuses_bad_fields(body, tag, words):
    with pytest.raises(FixFieldError) as raised:
        _encode(body)
    assert raised.value.tag == tag
    assert words in str(raised.value)


def test_encode_refuses_bad_values_and_headers():
    with pytest.raises(UsageError, match="not float"):
        _encode([(44, 187.25)])
    with pytest.raises(UsageError, match="pair"):
        _encode([(44,)])
    with pytest.raises(UsageError, match="tag must be an int"):
        _encode([("44", "1")])
    with pytest.raises(FixFieldError, match="max_message_bytes 64"):
        _encode([(58, "x" * 100)], max_message_bytes=64)
    with pytest.raises(FixFieldError) as raised:
        codec.encode("FIX.4.4", "", "SOR", "V", 1, NS, [])
    assert raised.value.tag == 35
    with pytest.raises(FixFieldError):
        codec.encode("FIX.4.4", "D", "S\x01R", "V", 1, NS, [])
    with pytest.raises(FixFieldError) as raised:
        codec.encode("FIX.4.4", "D", "SOR", "V", -1, NS, [])
    assert raised.value.tag == 34


def test_encode_value_types():
    data = _encode([(141, True), (142, False), (38, 10**20), (58, b"raw"), (59, bytearray(b"0"))])
    message = codec.parse(data)
    assert [message.get(t) for t in (141, 142, 38, 58, 59)] == ["Y", "N", str(10**20), "raw", "0"]
    assert codec.parse(_encode([(58, "a\udcff")])).get(58) == "a\udcff"  # surrogateescape
    assert _encode([(58, None), (55, "X"), (44, None)]) == _encode([(55, "X")])


# ---- framer ----------------------------------------------------------------------------------

HEARTBEAT = framed("35=0|49=A|56=B|34=2|52=20240315-14:30:02.000|")
REPORT = codec.encode("FIX.4.4", "8", "VENUE1", "SOR", 1042, NS, EXECUTION_REPORT)


def _feed(framer: FixFramer, data: bytes, cuts: list[int]) -> list[tuple[FrameStatus, bytes]]:
    frames = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        frames.extend(framer.feed(data[start:cut]))
        start = cut
        assert framer.buffered_bytes <= framer.capacity
    return _merged(frames)


def _merged(frames):
    """Joins error frames of one skip that arrived in separate feed calls."""
    out = []
    for status, data in frames:
        if out and status != FrameStatus.OK and out[-1][0] == status:
            out[-1] = (status, out[-1][1] + data)
        else:
            out.append((status, data))
    return out


def test_framer_handles_every_split_point():
    stream = REPORT + HEARTBEAT
    for cut in range(len(stream) + 1):
        assert _feed(FixFramer(), stream, [cut]) == [(FrameStatus.OK, REPORT),
                                                     (FrameStatus.OK, HEARTBEAT)]
    framer = FixFramer()
    assert _feed(framer, stream, list(range(len(stream)))) == [(FrameStatus.OK, REPORT),
                                                                (FrameStatus.OK, HEARTBEAT)]
    assert framer.buffered_bytes == 0


def test_framer_returns_concatenated_messages_in_order():
    messages = [codec.encode("FIX.4.4", "0", "A", "B", n, NS + n, []) for n in range(1, 200)]
    frames = FixFramer().feed(b"".join(messages))
    assert frames == [(FrameStatus.OK, m) for m in messages]


def test_framer_reports_a_bad_checksum_and_continues():
    bad = REPORT[:-4] + (b"000" if not REPORT.endswith(b"000\x01") else b"001") + SOH
    assert FixFramer().feed(bad + HEARTBEAT) == [(FrameStatus.BAD_CHECKSUM, bad),
                                                 (FrameStatus.OK, HEARTBEAT)]


@pytest.mark.parametrize("bad", [
    wire("8=FIX.4.4|9=12x|35=0|49=A|10=000|"),
    wire("8=FIX.4.4|9=|35=0|49=A|10=000|"),
    wire("8=FIX.4.4|35=0|49=A|56=B|10=000|"),
    REPORT.replace(b"\x019=", b"\x019=1", 1),
    REPORT.replace(b"\x019=", b"\x019=6", 1),
    REPORT.replace(b"\x019=2", b"\x019=1", 1),
    REPORT[:-30],
], ids=["not_a_number", "empty", "missing", "too_long_for_the_body", "far_too_long",
        "too_short", "truncated"])
def test_framer_reports_bad_body_lengths_and_resyncs(bad):
    # A BodyLength past the end of the message is found as soon as the next message starts
    # inside it: nothing waits for bytes that will never come.
    frames = _feed(FixFramer(), bad + HEARTBEAT + REPORT, [3, 50, 51, 200])
    assert frames == [(FrameStatus.BAD_BODY_LENGTH, bad), (FrameStatus.OK, HEARTBEAT),
                      (FrameStatus.OK, REPORT)]


def test_framer_skips_garbage_prefixes_and_interleaving():
    stream = b"\x00garbage 8=FI" + REPORT + b"\r\n" + HEARTBEAT + b"8=FOX|" + REPORT
    assert _feed(FixFramer(), stream, [5, 17, 100]) == [
        (FrameStatus.GARBLED, b"\x00garbage 8=FI"), (FrameStatus.OK, REPORT),
        (FrameStatus.GARBLED, b"\r\n"), (FrameStatus.OK, HEARTBEAT),
        (FrameStatus.GARBLED, b"8=FOX|"), (FrameStatus.OK, REPORT)]


def test_framer_skips_an_oversized_message_then_recovers():
    big = framed("35=B|49=A|56=B|34=3|58=" + "x" * 5000 + "|")
    framer = FixFramer(max_message_bytes=1024)
    frames = _feed(framer, big + REPORT, list(range(0, len(big) + len(REPORT), 700)))
    assert frames == [(FrameStatus.TOO_LONG, big), (FrameStatus.OK, REPORT)]
    assert framer.capacity <= 1024 + 64


def test_framer_clear_and_limits():
    framer = FixFramer()
    framer.feed(REPORT[:50])
    assert framer.buffered_bytes == 50
    framer.clear()
    assert framer.buffered_bytes == 0
    assert framer.feed(HEARTBEAT) == [(FrameStatus.OK, HEARTBEAT)]
    assert framer.max_message_bytes == 65536
    with pytest.raises(UsageError):
        FixFramer(max_message_bytes=0)
    with pytest.raises(UsageError):
        framer.feed("text")
    assert framer.feed(bytearray(HEARTBEAT)) == [(FrameStatus.OK, HEARTBEAT)]


NOISE = st.binary(max_size=60).filter(lambda b: b"8=FIX" not in b)


@FAST
@given(parts=st.lists(st.tuples(NOISE, st.sampled_from([REPORT, HEARTBEAT])), max_size=8),
       tail=NOISE, cuts=st.lists(st.integers(0, 1200), max_size=12))
def test_framer_recovers_every_message_embedded_in_noise(parts, tail, cuts):
    stream = b"".join(noise + message for noise, message in parts) + tail
    framer = FixFramer(max_message_bytes=512)
    frames = _feed(framer, stream, [c for c in cuts if c <= len(stream)])
    oks = [data for status, data in frames if status == FrameStatus.OK]
    assert oks == [message for _, message in parts]
    # Every byte is returned once, in order, except a held-back tail of an unfinished frame.
    returned = b"".join(data for _, data in frames)
    assert stream.startswith(returned)
    assert len(stream) - len(returned) == framer.buffered_bytes


@FAST
@given(data=st.binary(max_size=3000), chunk=st.integers(1, 400),
       sprinkle=st.lists(st.integers(0, 3000), max_size=10))
def test_framer_fuzz_never_raises_and_stays_bounded(data, chunk, sprinkle):
    stream = bytearray(data)
    for at in sprinkle:  # starts of messages make the framer try harder
        stream[at:at] = b"8=FIX.4.4\x019=" if at % 2 else b"8=FIX"
    framer = FixFramer(max_message_bytes=256)
    total = 0
    for start in range(0, len(stream), chunk):
        for status, frame in framer.feed(bytes(stream[start:start + chunk])):
            assert isinstance(status, FrameStatus)
            total += len(frame)
        assert framer.buffered_bytes <= framer.capacity == 256 + 64
    assert total + framer.buffered_bytes == len(stream)


def test_framer_agrees_with_simplefix_on_valid_streams():
    messages = [codec.encode("FIX.4.4", "8", "V", "S", n, NS, EXECUTION_REPORT[: n % 17])
                for n in range(1, 60)]
    parser = simplefix.FixParser()
    parser.append_buffer(b"".join(messages))
    theirs = []
    while (message := parser.get_message()) is not None:
        theirs.append([(int(t), v) for t, v in message.pairs])
    ours = [codec.parse(data).fields() for _, data in FixFramer().feed(b"".join(messages))]
    assert ours == theirs


def test_checksum_is_the_byte_sum():
    assert codec.checksum(REPORT[:-7]) == int(REPORT[-4:-1])
    assert codec.checksum(b"") == 0


# ---- timestamps ------------------------------------------------------------------------------

@FAST
@given(ns=st.one_of(st.integers(-(2**63), 2**63 - 1),
                    st.sampled_from([-(2**63), 2**63 - 1, -1, 0, -(2**63) + 999_999_999])))
def test_timestamps_round_trip_and_match_datetime(ns):
    seconds, rest = divmod(ns, 1_000_000_000)
    moment = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
    assert codec.format_utc_timestamp(ns, 0) == moment.strftime("%Y%m%d-%H:%M:%S")
    assert codec.format_utc_timestamp(ns) == reference_timestamp(ns)
    assert codec.format_utc_timestamp(ns, 6).endswith(f".{rest // 1000:06d}")
    assert codec.parse_utc_timestamp(codec.format_utc_timestamp(ns, 9)) == ns
    for digits, unit in ((0, 10**9), (3, 10**6), (6, 10**3)):
        text = codec.format_utc_timestamp(ns, digits)
        if ns - ns % unit < -(2**63):  # truncated below the first representable instant
            with pytest.raises(FixFieldError, match="int64"):
                codec.parse_utc_timestamp(text)
        else:
            assert codec.parse_utc_timestamp(text) == ns - ns % unit


def test_timestamp_examples_and_errors():
    assert codec.format_utc_timestamp(NS) == "20240315-14:30:01.123"
    assert codec.parse_utc_timestamp("20240315-14:30:01") == NS - NS % 10**9
    assert codec.parse_utc_timestamp(b"20240315-14:30:01.123456") == NS - NS % 1000
    assert codec.parse_utc_timestamp("20240229-23:59:60") == codec.parse_utc_timestamp(
        "20240301-00:00:00")  # a leap second reads as the next second
    with pytest.raises(UsageError):
        codec.format_utc_timestamp(NS, 2)
    for text, words in [("20230229-00:00:00", "day"), ("20231301-00:00:00", "month"),
                        ("20230101-24:00:00", "hour"), ("20230101-00:00:00.12", "UTCTimestamp"),
                        ("2023-01-01T00:00:00", "UTCTimestamp"), ("", "UTCTimestamp"),
                        ("99991231-23:59:59", "int64")]:
        with pytest.raises(FixFieldError, match=words) as raised:
            codec.parse_utc_timestamp(text, tag=52)
        assert raised.value.tag == 52 and raised.value.value == text
    with pytest.raises(FixFieldError) as raised:
        codec.parse_utc_timestamp("nope")
    assert raised.value.tag is None


# ---- prices ----------------------------------------------------------------------------------

@FAST
@given(ticks=st.integers(-(2**63), 2**63 - 1),
       tick=st.sampled_from(["0.0001", "0.01", "0.005", "0.25", "1", "0.000001"]))
def test_prices_round_trip_exactly(ticks, tick):
    amount = Decimal(ticks) * Decimal(tick)
    try:
        text = codec.price_to_fix(ticks, float(tick))
    except FixFieldError:
        assert abs(ticks * Decimal(tick).scaleb(-Decimal(tick).as_tuple().exponent)) >= 2**64
        return
    assert Decimal(text) == amount
    assert "e" not in text.lower() and not (("." in text) and text.endswith("0"))
    assert codec.price_from_fix(text, float(tick)) == ticks


def test_price_examples_and_errors():
    assert codec.price_to_fix(1_872_500) == "187.25"
    assert codec.price_to_fix(1_870_000) == "187"
    assert codec.price_to_fix(-5_000) == "-0.5"
    assert codec.price_to_fix(3, 0.005) == "0.015"
    assert codec.price_from_fix("187.25") == 1_872_500
    assert codec.price_from_fix(b"187.2500000") == 1_872_500
    assert codec.price_from_fix("0.015", 0.005) == 3
    with pytest.raises(FixFieldError, match="finer than the tick of 0.0001 USD") as raised:
        codec.price_from_fix("187.25001", tag=44)
    assert raised.value.tag == 44 and raised.value.value == "187.25001"
    assert "'187.25001'" in str(raised.value)
    with pytest.raises(FixFieldError, match="finer than the tick of 0.005"):
        codec.price_from_fix("0.012", 0.005)
    for bad in ["", "-", "1e3", "1.2.3", " 1", "NaN", "+1"]:
        with pytest.raises(FixFieldError, match="not a FIX decimal"):
            codec.price_from_fix(bad)
    with pytest.raises(FixFieldError, match="int64"):
        codec.price_from_fix("99999999999999999999")
    for tick in [0.0, -0.01, 1 / 3, float("nan")]:
        with pytest.raises(UsageError, match="tick_usd"):
            codec.price_to_fix(1, tick)
