"""Market data over UDP: the datagram format, the live stream in sequence, a snapshot for a
receiver that joins late (its books equal the venues' books level by level), recovery by
resubscription after a lost datagram or a lost tail or a publisher restart, garbled datagrams
counted and ignored, and the engine's md ring as the sink. The simulated market runs on
virtual time; the datagrams cross real sockets on localhost (through a lossy relay where a
test needs to lose some)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

import numpy as np
import pytest

import sor
from sor.book import MD_EVENT_DTYPE, ConsolidatedBook, VenueSpec
from sor.engine import Engine
from sor.feed import udp
from sor.feed.udp import (
    DatagramKind,
    GarbledDatagramError,
    MdPublisher,
    MdReceiver,
    book_sink,
    decode_datagram,
    encode_datagram,
)
from sor.fix.venue.feed import VenueFeed
from sor.fix.venue.mapping import real_time_market, venue_map

START_NS = 1_795_186_800_000_000_000


def specs(mapping) -> list:
    return [VenueSpec(v.venue_id, v.book_type if v.lit else sor.BookType.L3, v.lit)
            for v in mapping.venues]


def same_books(a: ConsolidatedBook, b: ConsolidatedBook, instruments: int, venue_ids) -> None:
    for instrument in range(instruments):
        for side in (sor.Side.BUY, sor.Side.SELL):
            x, y = a.depth(side, 100_000, instrument), b.depth(side, 100_000, instrument)
            assert np.array_equal(x["price_ticks"], y["price_ticks"])
            assert np.array_equal(x["venue_quantity"], y["venue_quantity"])
            assert len(x["price_ticks"]) > 5
    for venue_id in venue_ids:
        for instrument in range(instruments):
            for side in (sor.Side.BUY, sor.Side.SELL):
                x = a.venue_book(venue_id).depth(side, 100_000, instrument)
                y = b.venue_book(venue_id).depth(side, 100_000, instrument)
                assert np.array_equal(x, y), f"venue {venue_id} instrument {instrument} {side}"


class Relay:
    """A UDP relay between a receiver and a publisher that can drop or inject datagrams."""

    def __init__(self, publisher: tuple[str, int]) -> None:
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.front.setblocking(False)
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.back.setblocking(False)
        self.publisher = publisher
        self.receiver: tuple[str, int] | None = None
        self.drop: Callable[[bytes], bool] = lambda data: False
        self.dropped: list[bytes] = []

    @property
    def address(self) -> tuple[str, int]:
        return self.front.getsockname()

    def pump(self) -> None:
        while True:
            try:
                data, self.receiver = self.front.recvfrom(2048)
            except BlockingIOError:
                break
            self.back.sendto(data, self.publisher)
        while True:
            try:
                data, _ = self.back.recvfrom(2048)
            except BlockingIOError:
                break
            if self.drop(data):
                self.dropped.append(data)
            elif self.receiver is not None:
                self.front.sendto(data, self.receiver)

    def inject(self, data: bytes) -> None:
        self.front.sendto(data, self.receiver)

    def close(self) -> None:
        self.front.close()
        self.back.close()


class Harness:
    """The default venues on virtual time, their feed, a publisher, and a reference book
    that applies every published event directly."""

    def __init__(self, seed: int = 4) -> None:
        self.mapping = venue_map()
        self.market = real_time_market(self.mapping, start_ns=START_NS, seed=seed)
        self.feed = VenueFeed(self.market, self.mapping)
        self.publisher = MdPublisher(self.feed.snapshot, heartbeat_interval_s=0.02)
        self.reference = ConsolidatedBook(specs(self.mapping))
        self.published = 0
        self.pollers: list[Callable[[], int]] = []

    def step(self, seconds: float = 0.002, passes: int = 1) -> None:
        for _ in range(passes):
            self.market.run_until(self.market.now_ns + int(seconds * 1e9))
            events = self.feed.collect()
            self.reference.apply(events)
            self.publisher.publish(events)
            self.published += len(events)
            self.publisher.poll()
            for poll in self.pollers:
                poll()

    def until(self, condition: Callable[[], bool], limit: int = 5000) -> None:
        for _ in range(limit):
            if condition():
                return
            self.step()
            time.sleep(0.0002)
        raise AssertionError("condition not reached")

    def close(self) -> None:
        self.publisher.close()
        self.market.close()


@pytest.fixture
def harness() -> Harness:
    h = Harness()
    h.step(0.5)  # the opening books, before anyone subscribes
    yield h
    h.close()


@pytest.fixture
def receiver_for(harness: Harness):
    made = []

    def make(address=None, sink=None, **options) -> tuple[MdReceiver, ConsolidatedBook]:
        book = ConsolidatedBook(specs(harness.mapping))
        receiver = MdReceiver(address or harness.publisher.address, sink or book_sink(book),
                              **options)
        harness.pollers.append(receiver.poll)
        made.append(receiver)
        return receiver, book

    yield make
    for receiver in made:
        receiver.close()


def test_datagram_round_trip_and_size_bound() -> None:
    events = np.zeros(udp.RECORDS_PER_DATAGRAM, MD_EVENT_DTYPE)
    events["sequence"] = np.arange(1, len(events) + 1)
    events["kind"] = 1
    data = encode_datagram(DatagramKind.DATA, 77, 1000, records=events)
    assert len(data) <= udp.MAX_DATAGRAM_BYTES
    d = decode_datagram(data)
    assert (d.kind, d.count, d.session_id, d.sequence) == (DatagramKind.DATA, len(events), 77, 1000)
    assert np.array_equal(d.records, events)
    begin = decode_datagram(encode_datagram(DatagramKind.SNAPSHOT_BEGIN, 77, 5,
                                            subheader=(9, 3, 50, 0),
                                            venue_sequences={0: 12, 3: 4}))
    assert begin.subheader == (9, 3, 50, 0) and begin.venue_sequences == {0: 12, 3: 4}
    with pytest.raises(sor.errors.UsageError):
        encode_datagram(DatagramKind.DATA, 1, 1, records=np.zeros(udp.RECORDS_PER_DATAGRAM + 2,
                                                                     MD_EVENT_DTYPE))


@pytest.mark.parametrize("data,why", [
    (b"SORM", "shorter"),
    (b"XXXX" + bytes(20), "magic"),
    (udp.HEADER.pack(b"SORM", 9, 1, 0, 0, 0), "version"),
    (udp.HEADER.pack(b"SORM", 1, 99, 0, 0, 0), "kind"),
    (udp.HEADER.pack(b"SORM", 1, 1, 2, 0, 0) + bytes(64), "needs 128"),
    (udp.HEADER.pack(b"SORM", 1, 2, 0, 0, 0) + b"x", "HEARTBEAT"),
    (udp.HEADER.pack(b"SORM", 1, 4, 1, 0, 0) + bytes(10), "sub-header"),
])
def test_garbled_datagrams_are_refused_with_a_reason(data: bytes, why: str) -> None:
    with pytest.raises(GarbledDatagramError, match=why):
        decode_datagram(data)


def test_live_stream_in_sequence_with_receive_stamps(harness: Harness) -> None:
    got: list[np.ndarray] = []
    stamp = [0]

    def clock() -> int:
        stamp[0] += 1
        return START_NS + stamp[0]

    receiver = MdReceiver(harness.publisher.address, lambda e: got.append(e.copy()), clock=clock)
    harness.pollers.append(receiver.poll)
    try:
        harness.until(lambda: receiver.live)
        snapshot_events = sum(len(g) for g in got)
        first_live = harness.publisher.next_sequence
        harness.step(0.01, passes=50)
        for _ in range(20):
            receiver.poll()
        live = np.concatenate(got)[snapshot_events:]
        assert len(live) == harness.publisher.next_sequence - first_live > 200
        assert receiver.expected_sequence == harness.publisher.next_sequence
        for venue_id in np.unique(live["venue_id"]):
            sequences = live["sequence"][live["venue_id"] == venue_id].astype(np.int64)
            assert np.all(np.diff(sequences) == 1), f"venue {venue_id} has a hole"
        # ts_recv is the receiver's clock at the read, not the venue's time.
        assert np.all(live["ts_recv"] > START_NS) and np.all(live["ts_recv"] < START_NS + 10**6)
        assert np.all(np.diff(live["ts_recv"].astype(np.int64)) >= 0)
        assert receiver.stats["gaps"] == 0 and receiver.stats["garbled"] == 0
    finally:
        receiver.close()


def test_late_receiver_gets_equal_books_from_the_snapshot(harness: Harness, receiver_for) -> None:
    harness.step(0.01, passes=100)  # a second of trading after the open
    receiver, book = receiver_for()
    harness.until(lambda: receiver.live)
    assert receiver.stats["snapshots"] == 1 and receiver.stats["snapshot_events"] > 1000
    same_books(harness.reference, book, 3, [0, 1, 2, 3])
    # ... and to the simulator's own books, level by level (IEXG through its L2 feed).
    for venue_id in (0, 1, 2, 3):
        for instrument in range(3):
            for side in (sor.Side.BUY, sor.Side.SELL):
                simulated = harness.market.core.levels(venue_id, instrument, side, 100_000)
                received = book.venue_book(venue_id).depth(side, 100_000, instrument)
                for name in ("price_ticks", "quantity", "order_count"):
                    assert np.array_equal(simulated[name], received[name]), (venue_id, name)
    # L3 venues: order by order, each order at its place in the queue.
    for venue_id in (0, 1, 2):
        assert book.venue_book(venue_id).order_count == harness.reference.venue_book(venue_id).order_count
        for instrument in range(3):
            for side in (sor.Side.BUY, sor.Side.SELL):
                resting = harness.market.core.resting_orders(venue_id, instrument, side)
                for order_id in resting["order_id"][::97].tolist():
                    ours = book.venue_book(venue_id).order(order_id)
                    theirs = harness.reference.venue_book(venue_id).order(order_id)
                    assert ours == theirs and ours is not None
    harness.step(0.01, passes=100)
    for _ in range(10):
        receiver.poll()
    same_books(harness.reference, book, 3, [0, 1, 2, 3])


def test_lost_datagram_is_a_gap_and_the_receiver_resubscribes(harness: Harness, receiver_for) -> None:
    relay = Relay(harness.publisher.address)
    harness.pollers.insert(0, relay.pump)
    try:
        receiver, book = receiver_for(relay.address)
        harness.until(lambda: receiver.live)
        lose = [True]

        def drop(data: bytes) -> bool:
            if lose[0] and decode_datagram(data).kind is DatagramKind.DATA:
                lose[0] = False
                return True
            return False

        relay.drop = drop
        harness.step(0.01, passes=5)
        harness.until(lambda: receiver.stats["gaps"] == 1 and receiver.live)
        assert len(relay.dropped) == 1 and receiver.stats["resubscribes"] == 1
        harness.step(0.01, passes=50)
        for _ in range(10):
            relay.pump()
            receiver.poll()
        # The receiving book checks sequences: it accepted the renumbered stream with no gap.
        same_books(harness.reference, book, 3, [0, 1, 2, 3])
    finally:
        relay.close()


def test_lost_tail_is_found_by_the_heartbeat(harness: Harness, receiver_for) -> None:
    relay = Relay(harness.publisher.address)
    harness.pollers.insert(0, relay.pump)
    try:
        receiver, book = receiver_for(relay.address)
        harness.until(lambda: receiver.live)
        relay.drop = lambda data: decode_datagram(data).kind is DatagramKind.DATA
        harness.step(0.01)  # the last data before a quiet spell is lost
        relay.drop = lambda data: False
        expected = receiver.expected_sequence
        for _ in range(200):  # nothing more is published: only heartbeats
            harness.publisher.poll()
            relay.pump()
            receiver.poll()
            if receiver.stats["gaps"]:
                break
            time.sleep(0.001)
        assert receiver.stats["gaps"] == 1 and expected < harness.publisher.next_sequence
        harness.until(lambda: receiver.live)
        same_books(harness.reference, book, 3, [0, 1, 2, 3])
    finally:
        relay.close()


def test_garbled_datagram_is_counted_and_ignored(harness: Harness, receiver_for) -> None:
    relay = Relay(harness.publisher.address)
    harness.pollers.insert(0, relay.pump)
    try:
        receiver, book = receiver_for(relay.address)
        harness.until(lambda: receiver.live)
        relay.inject(b"SORM\x01\x01\x05\x00" + bytes(16) + b"not 5 records")
        relay.inject(b"\x00" * 300)
        harness.step(0.01, passes=20)
        for _ in range(5):
            relay.pump()
            receiver.poll()
        assert receiver.stats["garbled"] == 2
        assert receiver.stats["resubscribes"] == 0 and receiver.live
        same_books(harness.reference, book, 3, [0, 1, 2, 3])
    finally:
        relay.close()


def test_lost_snapshot_parts_are_asked_again(harness: Harness, receiver_for) -> None:
    relay = Relay(harness.publisher.address)
    harness.pollers.insert(0, relay.pump)
    try:
        lost = {3, 64, 65, 200}

        def drop(data: bytes) -> bool:
            d = decode_datagram(data)
            if d.kind is DatagramKind.SNAPSHOT_PART and d.subheader[1] in lost:
                lost.discard(d.subheader[1])
                return True
            return False

        relay.drop = drop
        receiver, book = receiver_for(relay.address, retry_s=0.005)
        harness.until(lambda: receiver.live)
        assert len(relay.dropped) == 4 and receiver.stats["resubscribes"] == 0
        same_books(harness.reference, book, 3, [0, 1, 2, 3])
    finally:
        relay.close()


def test_publisher_restart_is_followed(harness: Harness, receiver_for) -> None:
    receiver, book = receiver_for(keepalive_s=0.01)
    harness.until(lambda: receiver.live)
    address = harness.publisher.address
    harness.publisher.close()
    harness.publisher = MdPublisher(harness.feed.snapshot, host=address[0], port=address[1],
                                    heartbeat_interval_s=0.02)
    harness.step(0.01, passes=5)
    harness.until(lambda: receiver.live and receiver.stats["session_changes"] == 1)
    harness.step(0.01, passes=5)
    for _ in range(5):
        receiver.poll()
    same_books(harness.reference, book, 3, [0, 1, 2, 3])


def test_slow_sink_loses_nothing(harness: Harness, receiver_for) -> None:
    book = ConsolidatedBook(specs(harness.mapping))
    calls = [0]

    def sink(events: np.ndarray) -> int:
        calls[0] += 1
        take = min(len(events), 500)
        book.apply(events[:take])
        return take

    receiver, _ = receiver_for(sink=sink)
    harness.until(lambda: receiver.live)
    harness.step(0.01, passes=30)
    for _ in range(200):
        receiver.poll()
    assert calls[0] > 30 and receiver.stats["overflows"] == 0
    same_books(harness.reference, book, 3, [0, 1, 2, 3])


def test_subscribers_are_bounded(harness: Harness) -> None:
    publisher = MdPublisher(harness.feed.snapshot, max_subscribers=1)
    first = MdReceiver(publisher.address, lambda e: None)
    second = MdReceiver(publisher.address, lambda e: None, subscribe_timeout_s=60)
    try:
        for _ in range(100):
            publisher.poll()
            first.poll()
            second.poll()
            if first.live:
                break
        assert first.live and not second.live
        assert publisher.subscriber_count == 1 and publisher.stats["refused_subscribers"] == 1
    finally:
        first.close()
        second.close()
        publisher.close()


def test_engine_md_ring_is_the_sink(harness: Harness) -> None:
    name = f"sorudp{os.getpid()}"
    with Engine(name=name) as engine:
        relay = Relay(harness.publisher.address)
        harness.pollers.insert(0, relay.pump)
        receiver = MdReceiver(relay.address, engine.publish_market_data)
        harness.pollers.append(receiver.poll)
        try:
            harness.until(lambda: receiver.live)
            lose = [True]

            def drop(data: bytes) -> bool:
                if lose[0] and decode_datagram(data).kind is DatagramKind.DATA:
                    lose[0] = False
                    return True
                return False

            relay.drop = drop
            harness.step(0.01, passes=5)
            harness.until(lambda: receiver.stats["gaps"] == 1 and receiver.live)
            harness.step(0.01, passes=20)
            delivered = receiver.stats["events"] + receiver.stats["snapshot_events"]
            deadline = time.monotonic() + 5
            while engine.counters()["md_events"] < delivered and time.monotonic() < deadline:
                receiver.poll()
                time.sleep(0.01)
            counters = engine.counters()
            assert counters["md_events"] == delivered
            assert counters["md_rejected"] == 0, "the engine's books saw no gap and no bad event"
        finally:
            receiver.close()
            relay.close()
