"""sor.feed.itch: round trips, streaming, every error path, and a cross-check against meatpy."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sor
from sor import _core
from sor.feed import itch

ADD, REPLACE, CANCEL, DELETE, EXECUTE, TRADE, BROKEN, STATUS = 1, 3, 4, 5, 6, 7, 10, 11
NONE, BUY, SELL = 0, 1, 2
PRINTABLE, CROSS = _core.FLAG_PRINTABLE, _core.FLAG_CROSS
MIDNIGHT = 1_700_000_000_000_000_000 - 1_700_000_000_000_000_000 % 86_400_000_000_000
U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)


def _event(kind: int, **fields: int) -> dict[str, int]:
    base = dict(order_id=0, related_id=0, price_ticks=0, quantity=0, side=NONE, flags=0)
    base.update(fields)
    base["kind"] = kind
    return base


# One strategy per message the encoder can write; fields a message does not carry stay 0.
EVENT_BODIES = st.one_of(
    st.builds(lambda o, s, q, p: _event(ADD, order_id=o, side=s, quantity=q, price_ticks=p),
              U64, st.sampled_from([BUY, SELL]), U32, U32),
    st.builds(lambda o, q, m: _event(EXECUTE, order_id=o, quantity=q, related_id=m,
                                     flags=PRINTABLE), U64, U32, U64),
    st.builds(lambda o, q, m, p, f: _event(EXECUTE, order_id=o, quantity=q, related_id=m,
                                           price_ticks=p, flags=f),
              U64, U32, U64, U32, st.sampled_from([0, PRINTABLE])),
    st.builds(lambda o, q: _event(CANCEL, order_id=o, quantity=q), U64, U32),
    st.builds(lambda o: _event(DELETE, order_id=o), U64),
    st.builds(lambda o, n, q, p: _event(REPLACE, order_id=o, related_id=n, quantity=q,
                                        price_ticks=p), U64, U64, U32, U32),
    st.builds(lambda o, s, q, p, m: _event(TRADE, order_id=o, side=s, quantity=q, price_ticks=p,
                                           related_id=m, flags=PRINTABLE),
              U64, st.sampled_from([BUY, SELL]), U32, U32, U64),
    st.builds(lambda c, q, p, m: _event(TRADE, order_id=ord(c), quantity=q, price_ticks=p,
                                        related_id=m, flags=CROSS | PRINTABLE),
              st.sampled_from("OCHI"), st.integers(0, 2**63 - 1), U32, U64),
    st.builds(lambda m: _event(BROKEN, related_id=m), U64),
)

TIMED_EVENTS = st.lists(
    st.tuples(EVENT_BODIES, st.integers(0, 2**48 - 1), st.integers(0, 0xFFFF)),
    min_size=0, max_size=40)


def make_events(bodies: list[tuple[dict[str, int], int, int]], *, venue_id: int = 0,
                first_sequence: int = 1, session_date_ns: int = MIDNIGHT) -> np.ndarray:
    events = np.zeros(len(bodies), dtype=_core.md_event_dtype)
    for i, (body, since_midnight, instrument_id) in enumerate(bodies):
        for name, value in body.items():
            events[name][i] = value
        events["ts_event"][i] = session_date_ns + since_midnight
        events["ts_recv"][i] = session_date_ns + since_midnight
        events["sequence"][i] = first_sequence + i
        events["instrument_id"][i] = instrument_id
        events["venue_id"][i] = venue_id
    return events


def sample_events() -> np.ndarray:
    bodies = [
        _event(ADD, order_id=11, side=BUY, quantity=100, price_ticks=1_234_500),
        _event(ADD, order_id=12, side=SELL, quantity=200, price_ticks=1_235_000),
        _event(EXECUTE, order_id=11, quantity=40, related_id=901, flags=PRINTABLE),
        _event(EXECUTE, order_id=12, quantity=10, related_id=902, price_ticks=1_234_900),
        _event(CANCEL, order_id=11, quantity=10),
        _event(REPLACE, order_id=12, related_id=13, quantity=150, price_ticks=1_235_100),
        _event(DELETE, order_id=13),
        _event(TRADE, order_id=14, side=BUY, quantity=300, price_ticks=1_234_700, related_id=903,
               flags=PRINTABLE),
        _event(TRADE, order_id=ord("O"), quantity=5_000_000_000, price_ticks=1_234_600,
               related_id=904, flags=CROSS | PRINTABLE),
        _event(BROKEN, related_id=903),
    ]
    return make_events([(body, 34_200_000_000_000 + i * 1000, 7)
                        for i, body in enumerate(bodies)])


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == _core.md_event_dtype
    assert actual.tobytes() == expected.tobytes(), (actual, expected)


def frame_offsets(stream: bytes) -> list[int]:
    offsets, pos = [], 0
    while pos < len(stream):
        offsets.append(pos)
        pos += 2 + struct.unpack_from(">H", stream, pos)[0]
    return offsets


# --- round trips ------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(TIMED_EVENTS, st.integers(0, 255))
def test_file_round_trip(bodies, venue_id):
    events = make_events(bodies, venue_id=venue_id)
    stream = itch.encode(events, session_date_ns=MIDNIGHT)
    assert isinstance(stream, bytes)
    batch = itch.decode(stream, venue_id=venue_id, session_date_ns=MIDNIGHT)
    assert_same(batch.events, events)


@settings(max_examples=60, deadline=None)
@given(TIMED_EVENTS, st.integers(1, 2**40), st.integers(72, 1500), st.integers(1, 50))
def test_moldudp64_round_trip(bodies, first_sequence, max_packet_bytes, max_messages):
    events = make_events(bodies, first_sequence=first_sequence)
    packets = itch.encode(events, framing="moldudp64", session_date_ns=MIDNIGHT,
                          first_sequence=first_sequence, max_packet_bytes=max_packet_bytes,
                          max_messages_per_packet=max_messages)
    assert isinstance(packets, list)
    assert all(len(p) <= max_packet_bytes for p in packets)
    assert all(struct.unpack_from(">H", p, 18)[0] <= max_messages for p in packets)
    batch = itch.decode(packets, framing="moldudp64", session_date_ns=MIDNIGHT)
    assert_same(batch.events, events)


@settings(max_examples=60, deadline=None)
@given(TIMED_EVENTS, st.data())
def test_streaming_in_random_chunks_equals_one_shot(bodies, data):
    events = make_events(bodies)
    stream = itch.encode(events, session_date_ns=MIDNIGHT)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    parts = []
    with itch.ItchDecoder(session_date_ns=MIDNIGHT) as decoder:
        for start, end in zip([0, *cuts], [*cuts, len(stream)]):
            parts.append(decoder.feed(stream[start:end]))
        decoder.finish()
    assert_same(np.concatenate([np.empty(0, _core.md_event_dtype), *parts]), events)
    assert_same(itch.decode(stream, session_date_ns=MIDNIGHT).events, events)


def test_status_messages_directory_and_counts():
    with itch.ItchWriter(session_date_ns=MIDNIGHT) as writer:
        writer.system_event("O", MIDNIGHT + 1)
        writer.stock_directory(7, "AAPL", round_lot_size=100, ts_event=MIDNIGHT + 2)
        writer.stock_directory(9, "MSFT", round_lot_size=50, ts_event=MIDNIGHT + 3,
                               market_category="G", financial_status="D")
        writer.write(sample_events())
        stream = writer.getvalue()
    batch = itch.decode(stream, session_date_ns=MIDNIGHT, ts_recv=5)
    events = batch.events
    assert list(events["sequence"]) == list(range(1, 14))
    assert events[0]["kind"] == STATUS and events[0]["related_id"] == ord("S")
    assert events[0]["order_id"] == ord("O")
    assert events[1]["kind"] == STATUS and events[1]["related_id"] == ord("R")
    assert events[1]["instrument_id"] == 7
    assert (events["ts_recv"] == 5).all()
    assert batch.directory == (
        itch.DirectoryEntry(7, "AAPL", 100, "Q", "N", 7),
        itch.DirectoryEntry(9, "MSFT", 50, "G", "D", 9),
    )
    assert batch.message_counts == {"S": 1, "R": 2, "A": 2, "E": 1, "C": 1, "X": 1, "U": 1,
                                    "D": 1, "P": 1, "Q": 1, "B": 1}
    assert batch.unmapped_messages == 0


def test_instrument_map_binds_locates_and_keeps_unmapped_messages():
    events = sample_events()
    events["instrument_id"][5:] = 9  # locate 9 is never named in the map
    stream = itch.encode(events, directory={7: "AAPL", 9: "ZZZZ"}, session_date_ns=MIDNIGHT)
    batch = itch.decode(stream, session_date_ns=MIDNIGHT, instruments={"AAPL": 1000})
    out = batch.events
    assert len(out) == 2 + len(events)
    assert list(out["sequence"]) == list(range(1, len(out) + 1))
    assert out[0]["instrument_id"] == 1000
    assert out[1]["instrument_id"] == itch.UNMAPPED_INSTRUMENT
    mapped = out[2:7]
    assert (mapped["instrument_id"] == 1000).all()
    assert list(mapped["kind"]) == list(events["kind"][:5])
    unmapped = out[7:]
    assert (unmapped["kind"] == STATUS).all()
    assert (unmapped["instrument_id"] == itch.UNMAPPED_INSTRUMENT).all()
    assert [chr(c) for c in unmapped["related_id"]] == ["U", "D", "P", "Q", "B"]
    assert batch.unmapped_messages == 1 + 5  # ZZZZ's directory message and its five events
    assert [e.instrument_id for e in batch.directory] == [1000, itch.UNMAPPED_INSTRUMENT]


# --- error paths -------------------------------------------------------------------------------

def expect_error(call, status: str, offset: int, events: np.ndarray) -> sor.FeedDecodeError:
    with pytest.raises(sor.FeedDecodeError) as info:
        call()
    error = info.value
    assert error.status == status
    assert error.offset == offset
    assert_same(error.events, events)
    assert error.reason
    return error


def test_truncated_file_stream():
    events = sample_events()
    stream = itch.encode(events, session_date_ns=MIDNIGHT)
    last = frame_offsets(stream)[-1]
    error = expect_error(lambda: itch.decode(stream[:-4], session_date_ns=MIDNIGHT),
                         "truncated", last, events[:-1])
    assert "inside a frame" in error.reason


def test_streaming_finish_reports_leftover_frame():
    events = sample_events()
    stream = itch.encode(events, session_date_ns=MIDNIGHT)
    decoder = itch.ItchDecoder(session_date_ns=MIDNIGHT)
    assert_same(decoder.feed(stream[:1]), events[:0])
    assert_same(decoder.feed(stream[1:-1]), events[:-1])
    expect_error(decoder.finish, "truncated", frame_offsets(stream)[-1], events[:0])
    decoder.close()
    with pytest.raises(sor.UsageError, match="closed"):
        decoder.feed(b"")


def test_unknown_message_type():
    events = sample_events()
    stream = bytearray(itch.encode(events, session_date_ns=MIDNIGHT))
    third = frame_offsets(bytes(stream))[2]
    stream[third + 2] = ord("Z")
    error = expect_error(lambda: itch.decode(bytes(stream), session_date_ns=MIDNIGHT),
                         "malformed", third, events[:2])
    assert "'Z'" in error.reason


def test_length_that_does_not_match_the_type():
    events = sample_events()
    stream = itch.encode(events[:1], session_date_ns=MIDNIGHT)
    bad = struct.pack(">H", 30) + b"A" + bytes(29)
    error = expect_error(lambda: itch.decode(stream + bad, session_date_ns=MIDNIGHT),
                         "malformed", len(stream), events[:1])
    assert error.reason == "message type 'A' must be 36 bytes, frame declares 30"


@pytest.mark.parametrize("index", [0, 7])  # an A and a P message
def test_side_that_is_not_buy_or_sell(index):
    events = sample_events()
    stream = bytearray(itch.encode(events, session_date_ns=MIDNIGHT))
    offset = frame_offsets(bytes(stream))[index]
    stream[offset + 2 + 19] = ord("X")
    error = expect_error(lambda: itch.decode(bytes(stream), session_date_ns=MIDNIGHT),
                         "malformed", offset, events[:index])
    assert "'X'" in error.reason and "side" in error.reason


def test_error_offsets_count_from_the_first_byte_ever_fed():
    events = sample_events()
    stream = bytearray(itch.encode(events, session_date_ns=MIDNIGHT))
    offset = frame_offsets(bytes(stream))[4]
    stream[offset + 2] = ord("?")
    decoder = itch.ItchDecoder(session_date_ns=MIDNIGHT)
    assert_same(decoder.feed(bytes(stream[:offset + 1])), events[:4])
    expect_error(lambda: decoder.feed(bytes(stream[offset + 1:])), "malformed", offset,
                 events[:0])
    # The decoder stops at the first error and keeps reporting it.
    expect_error(lambda: decoder.feed(b"\x00"), "malformed", offset, events[:0])


def test_moldudp64_count_that_runs_past_the_packet():
    events = sample_events()
    first, second = itch.encode(events, framing="moldudp64", session_date_ns=MIDNIGHT,
                                max_messages_per_packet=5)
    bad = bytearray(second)
    bad[18:20] = struct.pack(">H", 6)
    expect_error(lambda: itch.decode([first, bytes(bad)], framing="moldudp64",
                                     session_date_ns=MIDNIGHT),
                 "malformed", len(first) + len(bad), events)


def test_moldudp64_truncated_packet_and_message():
    events = sample_events()
    (packet,) = itch.encode(events[:2], framing="moldudp64", session_date_ns=MIDNIGHT)
    expect_error(lambda: itch.decode(packet[:15], framing="moldudp64"), "truncated", 0,
                 events[:0])
    expect_error(lambda: itch.decode(packet[:-1], framing="moldudp64",
                                     session_date_ns=MIDNIGHT),
                 "truncated", 20 + 38, events[:1])


def test_moldudp64_heartbeat_and_end_of_session():
    writer = itch.ItchWriter(framing="moldudp64", session="S1", first_sequence=50,
                             session_date_ns=MIDNIGHT)
    writer.write(sample_events()[:1])
    writer.end_session()
    packets = writer.getvalue()
    assert len(packets) == 2 and packets[1][18:20] == b"\xff\xff"
    heartbeat = b"S1        " + struct.pack(">QH", 51, 0)
    with itch.ItchDecoder(framing="moldudp64", session_date_ns=MIDNIGHT) as decoder:
        out = decoder.feed(packets[0])
        assert out["sequence"].tolist() == [50]
        assert len(decoder.feed(heartbeat)) == 0
        assert not decoder.end_of_session
        assert len(decoder.feed(packets[1])) == 0
        assert decoder.end_of_session


# --- misuse -------------------------------------------------------------------------------------

def test_usage_errors_name_the_problem():
    events = sample_events()
    with pytest.raises(sor.UsageError, match="dtype"):
        itch.encode(np.zeros(3, dtype=np.int64))
    with pytest.raises(sor.UsageError, match="contiguous"):
        itch.encode(np.concatenate([events, events])[::2])
    with pytest.raises(sor.UsageError, match="framing"):
        itch.decode(b"", framing="soup")
    with pytest.raises(sor.UsageError, match="contiguous"):
        itch.decode(memoryview(b"abcdef")[::2])
    with pytest.raises(sor.UsageError, match="symbol"):
        itch.decode(b"", instruments={"TOOLONGSYM": 1})
    status = events[:1].copy()
    status["kind"] = STATUS
    with pytest.raises(sor.UsageError, match="event 0 cannot be encoded"):
        itch.encode(status)
    early = events[:2].copy()
    early["ts_event"][1] = MIDNIGHT - 1
    with pytest.raises(sor.UsageError, match="event 1 cannot be encoded"):
        itch.encode(early, session_date_ns=MIDNIGHT)


# --- independent cross-check -------------------------------------------------------------------

def test_meatpy_reads_the_same_fields(tmp_path: Path):
    reader_module = pytest.importorskip("meatpy.itch50.itch50_message_reader")
    events = sample_events()
    with itch.ItchWriter(session_date_ns=MIDNIGHT) as writer:
        writer.system_event("O", MIDNIGHT + 5)
        writer.stock_directory(7, "AAPL", round_lot_size=100, ts_event=MIDNIGHT + 6)
        writer.write(events)
        stream = writer.getvalue()
    path = tmp_path / "session.itch"
    path.write_bytes(stream)
    ours = itch.decode(stream, session_date_ns=MIDNIGHT).events
    theirs = list(reader_module.ITCH50MessageReader().read_file(path))
    assert len(theirs) == len(ours)
    sides = {b"B": BUY, b"S": SELL}
    for mine, msg in zip(ours, theirs):
        kind = msg.type.decode()
        assert msg.stock_locate == mine["instrument_id"]
        assert msg.tracking_number == 0
        assert MIDNIGHT + msg.timestamp == mine["ts_event"]
        if kind in "SR":
            assert mine["kind"] == STATUS and mine["related_id"] == ord(kind)
        if kind == "S":
            assert msg.code == b"O"
        elif kind == "R":
            assert msg.stock == b"AAPL    " and msg.lotsize == 100
        elif kind == "A":
            assert (mine["kind"], mine["order_id"], mine["side"], mine["quantity"],
                    mine["price_ticks"]) == (ADD, msg.order_ref, sides[msg.bsindicator],
                                             msg.shares, msg.price)
        elif kind == "E":
            assert (mine["kind"], mine["order_id"], mine["quantity"], mine["related_id"],
                    mine["flags"]) == (EXECUTE, msg.order_ref, msg.shares, msg.match, PRINTABLE)
        elif kind == "C":
            assert (mine["kind"], mine["order_id"], mine["quantity"], mine["related_id"],
                    mine["price_ticks"]) == (EXECUTE, msg.order_ref, msg.shares, msg.match,
                                             msg.execution_price)
            assert bool(mine["flags"] & PRINTABLE) == (msg.printable == b"Y")
        elif kind == "X":
            assert (mine["kind"], mine["order_id"], mine["quantity"]) == (
                CANCEL, msg.order_ref, msg.canceled_shares)
        elif kind == "D":
            assert (mine["kind"], mine["order_id"]) == (DELETE, msg.order_ref)
        elif kind == "U":
            assert (mine["kind"], mine["order_id"], mine["related_id"], mine["quantity"],
                    mine["price_ticks"]) == (REPLACE, msg.original_ref, msg.new_ref, msg.shares,
                                             msg.price)
        elif kind == "P":
            assert (mine["kind"], mine["order_id"], mine["side"], mine["quantity"],
                    mine["price_ticks"], mine["related_id"]) == (
                TRADE, msg.order_ref, sides[msg.bsindicator], msg.shares, msg.price, msg.match)
            assert msg.stock == b"AAPL    "
        elif kind == "Q":
            assert (mine["kind"], mine["order_id"], mine["quantity"], mine["price_ticks"],
                    mine["related_id"], mine["flags"]) == (
                TRADE, msg.cross_type[0], msg.shares, msg.cross_price, msg.match,
                CROSS | PRINTABLE)
        elif kind == "B":
            assert (mine["kind"], mine["related_id"]) == (BROKEN, msg.match)
        else:
            pytest.fail(f"unexpected message type {kind!r}")
    assert [m.type.decode() for m in theirs] == list("SRAAECXUDPQB")
