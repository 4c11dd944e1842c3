"""The simplefix peer of the FIX benchmarks: it must do the same work as sor.fix.codec, byte for
byte, and run a real session, or the ratios would compare different things."""

from __future__ import annotations

from conftest import RecordingApplication

from sor.bench.fix_peer import SIMPLEFIX_CODEC, SimplefixFramer
from sor.fix import codec

NOW_NS = 1_795_200_000_123_000_000
BODY = [(11, "C1.42"), (55, "AAPL"), (54, "1"), (38, 300), (40, "2"), (44, "187.25"),
        (59, "3"), (60, "20261121-15:00:00.123")]


def test_peer_encodes_and_parses_what_sor_does() -> None:
    ours = codec.encode("FIX.4.4", "D", "SOR", "XNAS", 42, NOW_NS, BODY)
    theirs = SIMPLEFIX_CODEC.encode("FIX.4.4", "D", "SOR", "XNAS", 42, NOW_NS, BODY)
    assert theirs == ours
    resent = dict(poss_dup=True, orig_sending_time_ns=NOW_NS - 5_000_000)
    assert (SIMPLEFIX_CODEC.encode("FIX.4.2", "D", "SOR", "XNAS", 7, NOW_NS, BODY, **resent)
            == codec.encode("FIX.4.2", "D", "SOR", "XNAS", 7, NOW_NS, BODY, **resent))
    parsed, reference = SIMPLEFIX_CODEC.parse(ours), codec.parse(ours)
    assert parsed.fields() == reference.fields()
    for name in ("msg_type", "seq_num", "begin_string", "sender_comp_id", "target_comp_id",
                 "poss_dup"):
        assert getattr(parsed, name) == getattr(reference, name)
    assert parsed.get_price(44) == reference.get_price(44) == 1_872_500
    assert (SIMPLEFIX_CODEC.parse_utc_timestamp("20261121-15:00:00.123")
            == codec.parse_utc_timestamp("20261121-15:00:00.123"))


def test_peer_framer_splits_a_stream_like_sor_on_valid_input() -> None:
    stream = b"".join(codec.encode("FIX.4.4", "8", "XNAS", "SOR", n, NOW_NS, BODY)
                      for n in range(1, 6))
    for cut in (1, 7, 64, 200, len(stream)):
        ours, theirs = codec.FixFramer(), SimplefixFramer()
        got_ours, got_theirs = [], []
        for start in range(0, len(stream), cut):
            got_ours += ours.feed(stream[start:start + cut])
            got_theirs += theirs.feed(stream[start:start + cut])
        assert [f for _, f in got_theirs] == [f for _, f in got_ours] and len(got_ours) == 5


def test_a_session_runs_on_the_peer_codec(harness, begin_string) -> None:
    config = harness.config(begin_string=begin_string)
    app = RecordingApplication()
    session = harness.session(config, app, codec=SIMPLEFIX_CODEC)
    port = harness.reactor_thread.call(lambda: harness.reactor.listen("127.0.0.1", 0, [session]))
    harness.reactor_thread.start()
    client = harness.client(port, begin_string=begin_string)
    assert client.logon().seq_num == 1
    client.send("D", BODY)
    echoed = client.expect("D")
    assert echoed.get(11) == "C1.42" and echoed.get(44) == "187.25"
    app.wait_for(lambda: len(app.messages) == 1)
