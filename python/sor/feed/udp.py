"""Normalized market data over UDP on one host: a publisher (the simulated venues) sends every
venue's events as ``MD_EVENT_DTYPE`` records in sequence-numbered datagrams to its
subscribers; a receiver (the router) checks the sequence, stamps ``ts_recv`` with its wall
clock and hands the events to a sink (``Engine.publish_market_data``, ``ConsolidatedBook.apply``).

A receiver that starts (or restarts) in mid-session gets consistent books: it subscribes, the
publisher answers with a snapshot of every venue's book taken at a stated stream position,
the receiver pulls the snapshot in windows (flow control: nothing is blasted faster than it
is read) while it buffers the live stream, applies the snapshot and then the live stream from
that position. A gap in the live stream, a publisher restart (new session id) or a silent
publisher makes the receiver subscribe again. Every queue is bounded.

Datagram format (little-endian), at most ``MAX_DATAGRAM_BYTES`` = 1400 bytes::

    offset size  header (24 bytes), every datagram
         0    4  magic b"SORM"
         4    1  version (1)
         5    1  kind (DatagramKind)
         6    2  count: records (DATA, SNAPSHOT_PART) or venue entries (SNAPSHOT_BEGIN)
         8    8  session id of the publisher (its start time in ns; 0 from a receiver)
        16    8  sequence: DATA the stream sequence of the first record (records are numbered
                 1, 2, 3... across venues); HEARTBEAT the next sequence to be sent;
                 SNAPSHOT_BEGIN/PART the sequence the live stream continues from after the
                 snapshot; 0 from a receiver

    DATA            header + count x 64-byte MdEvent records (at most 21)
    HEARTBEAT       header only
    SNAPSHOT_BEGIN  header + (request_id u32, parts u32, events u32, 0 u32)
                           + count x (venue_id u32, 0 u32, last_venue_sequence u64)
    SNAPSHOT_PART   header + (request_id u32, part u32 (1-based), parts u32, 0 u32)
                           + count x MdEvent (at most 21)
    SUBSCRIBE       header + (request_id u32, 0, 0, 0)              receiver -> publisher
    SNAPSHOT_REQUEST header + (request_id u32, first_part u32, parts u32, 0)
    KEEPALIVE       header + (request_id u32, 0, 0, 0)              every keepalive_s
    UNSUBSCRIBE     header + (request_id u32, 0, 0, 0)

A snapshot holds, for each venue and instrument, a CLEAR followed by its book as events with
FLAG_SNAPSHOT and sequence 0: an L3 venue's resting orders as ADDs (best price first, time
priority within a price), an L2 venue's price levels as LEVELs. ``last_venue_sequence`` is
the venue sequence of the last event of that venue the snapshot includes.

Sequence numbers the sink sees: each venue's own sequence, as published, until the first
resubscription; after one, a venue's numbers are shifted so that they continue one by one
from the last number the sink got (snapshot events carry 0, which books do not check). The
engine's books therefore never see a gap they could not recover from.
"""

from __future__ import annotations

import enum
import errno
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sor.book import MD_EVENT_DTYPE
from sor.errors import UsageError

MAGIC = b"SORM"
VERSION = 1
HEADER = struct.Struct("<4sBBHQQ")
SUBHEADER = struct.Struct("<IIII")
VENUE_ENTRY = struct.Struct("<IIQ")
RECORD_BYTES = MD_EVENT_DTYPE.itemsize
MAX_DATAGRAM_BYTES = 1400
#: MdEvent records per DATA or SNAPSHOT_PART datagram.
RECORDS_PER_DATAGRAM = (MAX_DATAGRAM_BYTES - HEADER.size - SUBHEADER.size) // RECORD_BYTES
#: Snapshot parts a publisher sends for one request, and a receiver asks for at once.
MAX_PARTS_PER_REQUEST = 64
_FLAG_SNAPSHOT = 4

assert RECORD_BYTES == 64


class DatagramKind(enum.IntEnum):
    """What a datagram carries."""

    DATA = 1
    HEARTBEAT = 2
    SNAPSHOT_BEGIN = 3
    SNAPSHOT_PART = 4
    SUBSCRIBE = 16
    SNAPSHOT_REQUEST = 17
    KEEPALIVE = 18
    UNSUBSCRIBE = 19


_FROM_RECEIVER = {DatagramKind.SUBSCRIBE, DatagramKind.SNAPSHOT_REQUEST, DatagramKind.KEEPALIVE,
                  DatagramKind.UNSUBSCRIBE}


@dataclass(frozen=True)
class Datagram:
    """One decoded datagram: its header, sub-header (zeros when the kind has none) and
    payload (records as an ``MD_EVENT_DTYPE`` array, venue entries as a dict)."""

    kind: DatagramKind
    count: int
    session_id: int
    sequence: int
    subheader: tuple[int, int, int, int] = (0, 0, 0, 0)
    records: np.ndarray | None = None
    venue_sequences: dict[int, int] = field(default_factory=dict)


class GarbledDatagramError(ValueError):
    """A datagram that is not one of ours or is cut short; the message says what is wrong."""


def encode_datagram(kind: DatagramKind, session_id: int, sequence: int, *,
                    subheader: tuple[int, int, int, int] | None = None,
                    records: np.ndarray | None = None,
                    venue_sequences: Mapping[int, int] | None = None) -> bytes:
    """Returns the bytes of one datagram; raises UsageError when it would exceed
    MAX_DATAGRAM_BYTES."""
    parts = []
    count = 0
    if subheader is not None:
        parts.append(SUBHEADER.pack(*subheader))
    if venue_sequences is not None:
        count = len(venue_sequences)
        parts.extend(VENUE_ENTRY.pack(int(v), 0, int(s)) for v, s in sorted(venue_sequences.items()))
    if records is not None:
        if records.dtype != MD_EVENT_DTYPE:
            raise UsageError(f"records must be MD_EVENT_DTYPE, got {records.dtype}")
        count = len(records)
        parts.append(np.ascontiguousarray(records).tobytes())
    data = HEADER.pack(MAGIC, VERSION, int(kind), count, session_id, sequence) + b"".join(parts)
    if len(data) > MAX_DATAGRAM_BYTES:
        raise UsageError(f"datagram of {len(data)} bytes exceeds {MAX_DATAGRAM_BYTES}")
    return data


def decode_datagram(data: bytes | memoryview) -> Datagram:
    """Returns the datagram in ``data``; raises GarbledDatagramError naming what is wrong."""
    if len(data) < HEADER.size:
        raise GarbledDatagramError(f"{len(data)} bytes is shorter than the {HEADER.size}-byte header")
    magic, version, kind_value, count, session_id, sequence = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise GarbledDatagramError(f"magic {bytes(magic)!r} is not {MAGIC!r}")
    if version != VERSION:
        raise GarbledDatagramError(f"version {version} is not {VERSION}")
    try:
        kind = DatagramKind(kind_value)
    except ValueError:
        raise GarbledDatagramError(f"unknown kind {kind_value}") from None
    body = len(data) - HEADER.size
    if kind in (DatagramKind.DATA,):
        expected = count * RECORD_BYTES
        if body != expected:
            raise GarbledDatagramError(f"DATA with {count} records needs {expected} bytes after "
                                       f"the header, got {body}")
        records = np.frombuffer(bytes(data[HEADER.size:]), dtype=MD_EVENT_DTYPE)
        return Datagram(kind, count, session_id, sequence, records=records)
    if kind is DatagramKind.HEARTBEAT:
        if body != 0:
            raise GarbledDatagramError(f"HEARTBEAT carries {body} bytes after the header")
        return Datagram(kind, count, session_id, sequence)
    if body < SUBHEADER.size:
        raise GarbledDatagramError(f"{kind.name} needs a {SUBHEADER.size}-byte sub-header, "
                                   f"got {body} bytes")
    subheader = SUBHEADER.unpack_from(data, HEADER.size)
    rest = body - SUBHEADER.size
    offset = HEADER.size + SUBHEADER.size
    if kind is DatagramKind.SNAPSHOT_BEGIN:
        if rest != count * VENUE_ENTRY.size:
            raise GarbledDatagramError(f"SNAPSHOT_BEGIN with {count} venues needs "
                                       f"{count * VENUE_ENTRY.size} bytes of entries, got {rest}")
        venues = {}
        for n in range(count):
            venue_id, _, last = VENUE_ENTRY.unpack_from(data, offset + n * VENUE_ENTRY.size)
            venues[venue_id] = last
        return Datagram(kind, count, session_id, sequence, subheader, venue_sequences=venues)
    if kind is DatagramKind.SNAPSHOT_PART:
        if rest != count * RECORD_BYTES:
            raise GarbledDatagramError(f"SNAPSHOT_PART with {count} records needs "
                                       f"{count * RECORD_BYTES} bytes, got {rest}")
        records = np.frombuffer(bytes(data[offset:]), dtype=MD_EVENT_DTYPE)
        return Datagram(kind, count, session_id, sequence, subheader, records=records)
    if rest != 0:
        raise GarbledDatagramError(f"{kind.name} carries {rest} unexpected bytes")
    return Datagram(kind, count, session_id, sequence, subheader)


def _udp_socket(host: str, port: int, buffer_bytes: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, buffer_bytes)
        except OSError:  # pragma: no cover - the kernel caps it at rmem_max/wmem_max instead
            pass
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


Snapshot = tuple[np.ndarray, Mapping[int, int]]


@dataclass
class _Subscriber:
    address: tuple[str, int]
    request_id: int
    last_heard_ns: int
    parts: list[bytes] | None  # retained snapshot parts until the receiver goes live
    parts_taken_ns: int


class MdPublisher:
    """Sends normalized events to subscribers over UDP (one socket, unicast to each).

    ``snapshot()`` returns the snapshot events (CLEARs, then ADDs or LEVELs) and each venue's
    last published sequence; it is called from ``poll()`` on a SUBSCRIBE, so it must describe
    exactly the state after every event given to ``publish()`` so far (call both from the same
    thread). ``publish()`` sends events at once; ``poll()`` answers subscribers, sends
    heartbeats and drops subscribers that went silent."""

    def __init__(self, snapshot: Callable[[], Snapshot], *, host: str = "127.0.0.1",
                 port: int = 0, max_subscribers: int = 8, subscriber_timeout_s: float = 5.0,
                 heartbeat_interval_s: float = 0.25, socket_buffer_bytes: int = 1 << 22,
                 session_id: int | None = None) -> None:
        if max_subscribers < 1:
            raise UsageError(f"max_subscribers must be at least 1, not {max_subscribers}")
        self._snapshot = snapshot
        self._socket = _udp_socket(host, port, socket_buffer_bytes)
        self.session_id = int(session_id if session_id is not None else time.time_ns())
        self.next_sequence = 1
        self._subscribers: dict[tuple[str, int], _Subscriber] = {}
        self._max_subscribers = max_subscribers
        self._timeout_ns = int(subscriber_timeout_s * 1e9)
        self._heartbeat_ns = int(heartbeat_interval_s * 1e9)
        self._last_heartbeat_ns = 0
        self._buffer = bytearray(MAX_DATAGRAM_BYTES + 1)
        self.stats = {"events": 0, "datagrams": 0, "bytes": 0, "send_drops": 0,
                      "subscribes": 0, "snapshots": 0, "snapshot_events": 0,
                      "snapshot_parts_sent": 0, "refused_subscribers": 0, "expired": 0,
                      "garbled": 0}

    @property
    def address(self) -> tuple[str, int]:
        """Returns the (host, port) receivers subscribe to."""
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def subscriber_count(self) -> int:
        """Returns the number of live subscribers."""
        return len(self._subscribers)

    def publish(self, events: np.ndarray) -> int:
        """Numbers ``events`` on the stream and sends them to every subscriber; returns the
        number of datagrams built."""
        count = len(events)
        if count == 0:
            return 0
        if events.dtype != MD_EVENT_DTYPE:
            raise UsageError(f"events must be MD_EVENT_DTYPE, got {events.dtype}")
        events = np.ascontiguousarray(events)
        first = self.next_sequence
        self.next_sequence += count
        self.stats["events"] += count
        if not self._subscribers:
            return 0  # numbered all the same: a later snapshot states where the stream is
        datagrams = 0
        for start in range(0, count, RECORDS_PER_DATAGRAM):
            chunk = events[start:start + RECORDS_PER_DATAGRAM]
            data = (HEADER.pack(MAGIC, VERSION, DatagramKind.DATA, len(chunk), self.session_id,
                                first + start) + chunk.tobytes())
            datagrams += 1
            for subscriber in self._subscribers.values():
                self._send(data, subscriber.address)
        return datagrams

    def poll(self) -> int:
        """Reads subscriber requests and answers them, sends heartbeats and expires silent
        subscribers; returns the number of datagrams handled."""
        work = 0
        now = time.monotonic_ns()
        for _ in range(256):
            try:
                size, address = self._socket.recvfrom_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionRefusedError:  # pragma: no cover - ICMP from an old subscriber
                continue
            work += 1
            try:
                datagram = decode_datagram(memoryview(self._buffer)[:size])
                if datagram.kind not in _FROM_RECEIVER:
                    raise GarbledDatagramError(f"{datagram.kind.name} is not a request")
            except GarbledDatagramError:
                self.stats["garbled"] += 1
                continue
            self._on_request(datagram, (str(address[0]), int(address[1])), now)
        if now - self._last_heartbeat_ns >= self._heartbeat_ns:
            self._last_heartbeat_ns = now
            beat = encode_datagram(DatagramKind.HEARTBEAT, self.session_id, self.next_sequence)
            for subscriber in list(self._subscribers.values()):
                if now - subscriber.last_heard_ns > self._timeout_ns:
                    del self._subscribers[subscriber.address]
                    self.stats["expired"] += 1
                    continue
                if subscriber.parts is not None and now - subscriber.parts_taken_ns > self._timeout_ns:
                    subscriber.parts = None  # the receiver never finished: it will resubscribe
                self._send(beat, subscriber.address)
        return work

    def _on_request(self, datagram: Datagram, address: tuple[str, int], now: int) -> None:
        request_id = datagram.subheader[0]
        subscriber = self._subscribers.get(address)
        if datagram.kind is DatagramKind.SUBSCRIBE:
            if subscriber is None and len(self._subscribers) >= self._max_subscribers:
                self.stats["refused_subscribers"] += 1
                return
            self.stats["subscribes"] += 1
            events, venue_sequences = self._snapshot()
            parts = self._snapshot_parts(request_id, np.ascontiguousarray(events))
            self._subscribers[address] = _Subscriber(address, request_id, now, parts, now)
            self.stats["snapshots"] += 1
            self.stats["snapshot_events"] += len(events)
            begin = encode_datagram(DatagramKind.SNAPSHOT_BEGIN, self.session_id,
                                    self.next_sequence,
                                    subheader=(request_id, len(parts), len(events), 0),
                                    venue_sequences=venue_sequences)
            self._send(begin, address)
            return
        if subscriber is None:
            # A receiver of an earlier publisher on this port: a heartbeat tells it the
            # session changed, so it subscribes again without waiting to find us silent.
            self._send(encode_datagram(DatagramKind.HEARTBEAT, self.session_id,
                                       self.next_sequence), address)
            return
        if subscriber.request_id != request_id:
            return  # an old subscription's request; its receiver has moved on
        subscriber.last_heard_ns = now
        if datagram.kind is DatagramKind.SNAPSHOT_REQUEST:
            if subscriber.parts is None:
                return
            first, count = datagram.subheader[1], min(datagram.subheader[2], MAX_PARTS_PER_REQUEST)
            for data in subscriber.parts[max(first - 1, 0):max(first - 1, 0) + count]:
                self._send(data, address)
                self.stats["snapshot_parts_sent"] += 1
        elif datagram.kind is DatagramKind.KEEPALIVE:
            subscriber.parts = None  # live: the snapshot is no longer needed
        elif datagram.kind is DatagramKind.UNSUBSCRIBE:
            del self._subscribers[address]

    def _snapshot_parts(self, request_id: int, events: np.ndarray) -> list[bytes]:
        total = (len(events) + RECORDS_PER_DATAGRAM - 1) // RECORDS_PER_DATAGRAM
        parts = []
        for part, start in enumerate(range(0, len(events), RECORDS_PER_DATAGRAM), start=1):
            parts.append(encode_datagram(DatagramKind.SNAPSHOT_PART, self.session_id,
                                         self.next_sequence, subheader=(request_id, part, total, 0),
                                         records=events[start:start + RECORDS_PER_DATAGRAM]))
        return parts

    def _send(self, data: bytes, address: tuple[str, int]) -> None:
        try:
            self._socket.sendto(data, address)
        except OSError as e:
            # A full socket buffer or an unreachable receiver: the datagram is lost, and the
            # receiver recovers through its sequence check.
            if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.ECONNREFUSED):
                raise
            self.stats["send_drops"] += 1
            return
        self.stats["datagrams"] += 1
        self.stats["bytes"] += len(data)

    def close(self) -> None:
        """Closes the socket; subscribers notice the silence and resubscribe elsewhere."""
        self._socket.close()
        self._subscribers.clear()

    def __enter__(self) -> MdPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReceiverState(enum.Enum):
    """Where a receiver is in its subscription."""

    SUBSCRIBING = "subscribing"   # SUBSCRIBE sent, waiting for SNAPSHOT_BEGIN
    LOADING = "loading"           # pulling snapshot parts, buffering the live stream
    LIVE = "live"                 # applying the live stream
    CLOSED = "closed"


Sink = Callable[[np.ndarray], "int | None"]


class MdReceiver:
    """Receives a publisher's stream and writes it to ``sink`` (called with an
    ``MD_EVENT_DTYPE`` array; returns how many it took, None meaning all).

    ``poll()`` does all the work without blocking (a Reactor poller); ``start_thread()``
    runs it on a thread instead. ``ts_recv`` of every event is the wall-clock time its
    datagram was read (``clock``, epoch ns)."""

    def __init__(self, publisher: tuple[str, int], sink: Sink, *, host: str = "127.0.0.1",
                 port: int = 0, subscribe_timeout_s: float = 1.0, retry_s: float = 0.1,
                 stale_s: float = 2.0, keepalive_s: float = 1.0,
                 max_buffered_events: int = 1 << 16, socket_buffer_bytes: int = 1 << 22,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self._publisher = (socket.gethostbyname(publisher[0]), int(publisher[1]))
        self._sink = sink
        self._socket = _udp_socket(host, port, socket_buffer_bytes)
        self._clock = clock
        self._subscribe_timeout_ns = int(subscribe_timeout_s * 1e9)
        self._retry_ns = int(retry_s * 1e9)
        self._stale_ns = int(stale_s * 1e9)
        self._keepalive_ns = int(keepalive_s * 1e9)
        self._max_buffered = int(max_buffered_events)
        self._buffer = bytearray(MAX_DATAGRAM_BYTES + 1)
        self._request_id = 0
        self._session_id = 0
        self.state = ReceiverState.SUBSCRIBING
        self.expected_sequence = 0      # next stream sequence (LIVE)
        self._state_since_ns = 0
        self._last_heard_ns = 0
        self._last_keepalive_ns = 0
        self._continue_from = 0
        self._venue_sequences: dict[int, int] = {}
        self._parts: list[np.ndarray | None] = []
        self._parts_received = 0
        self._window_end = 0
        self._live_buffer: list[tuple[int, np.ndarray, int]] = []  # (first, records, read at)
        self._live_buffered = 0
        self._pending: np.ndarray | None = None  # events the sink did not take yet
        self._offset = np.zeros(256, dtype=np.uint64)
        self._last_out = np.zeros(256, dtype=np.uint64)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.stats = {"datagrams": 0, "events": 0, "snapshot_events": 0, "gaps": 0,
                      "duplicates": 0, "garbled": 0, "foreign": 0, "subscribes": 0,
                      "resubscribes": 0, "snapshots": 0, "overflows": 0, "stale": 0,
                      "session_changes": 0, "part_requests": 0}
        self._subscribe(self._clock(), first=True)

    # --- public -----------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        """Returns this receiver's (host, port)."""
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def live(self) -> bool:
        """Returns True once the snapshot is applied and the live stream flows."""
        return self.state is ReceiverState.LIVE

    def poll(self) -> int:
        """Reads what arrived, applies it, runs the timers; returns the work done (datagrams
        read plus events delivered)."""
        if self.state is ReceiverState.CLOSED:
            return 0
        work = self._flush_pending()
        for _ in range(512):
            try:
                size, address = self._socket.recvfrom_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionRefusedError:  # the publisher is not there (yet)
                continue
            now = self._clock()
            work += 1
            self.stats["datagrams"] += 1
            if (address[0], address[1]) != self._publisher:
                self.stats["foreign"] += 1
                continue
            try:
                datagram = decode_datagram(memoryview(self._buffer)[:size])
            except GarbledDatagramError:
                self.stats["garbled"] += 1
                continue
            work += self._on_datagram(datagram, now)
        self._timers(self._clock())
        return work

    def start_thread(self, idle_wait_s: float = 0.0005) -> None:
        """Runs ``poll()`` on a daemon thread until ``close()``."""
        if self._thread is not None:
            raise UsageError("the receiver thread is already running")

        def loop() -> None:
            while not self._stop.is_set():
                if self.poll() == 0:
                    self._stop.wait(idle_wait_s)

        self._thread = threading.Thread(target=loop, name="sor-md-receiver", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops the thread (if any), tells the publisher and closes the socket."""
        if self.state is ReceiverState.CLOSED:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._send(DatagramKind.UNSUBSCRIBE)
        self.state = ReceiverState.CLOSED
        self._socket.close()

    def __enter__(self) -> MdReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- subscription -------------------------------------------------------------------------

    def _send(self, kind: DatagramKind, a: int = 0, b: int = 0) -> None:
        data = encode_datagram(kind, 0, 0, subheader=(self._request_id, a, b, 0))
        try:
            self._socket.sendto(data, self._publisher)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.ENOBUFS, errno.ECONNREFUSED):
                raise

    def _subscribe(self, now: int, *, first: bool = False) -> None:
        self._request_id = (self._request_id + 1) & 0xFFFFFFFF or 1
        self.state = ReceiverState.SUBSCRIBING
        self._state_since_ns = now
        self._last_heard_ns = now
        self._parts = []
        self._parts_received = 0
        self._live_buffer = []
        self._live_buffered = 0
        self.stats["subscribes"] += 1
        if not first:
            self.stats["resubscribes"] += 1
        self._send(DatagramKind.SUBSCRIBE)

    def _missing_in_window(self) -> list[int]:
        first = max(self._window_end - MAX_PARTS_PER_REQUEST + 1, 1)
        return [k for k in range(first, self._window_end + 1) if self._parts[k - 1] is None]

    def _request_parts(self, now: int) -> None:
        """Asks for the missing parts of the current window (1-based part numbers), or for the
        next window when none is missing."""
        missing = self._missing_in_window()
        if not missing:
            self._next_window(now)
            return
        self._send(DatagramKind.SNAPSHOT_REQUEST, missing[0], missing[-1] - missing[0] + 1)
        self.stats["part_requests"] += 1
        self._state_since_ns = now

    def _next_window(self, now: int) -> None:
        if self._window_end >= len(self._parts):
            return
        self._window_end = min(self._window_end + MAX_PARTS_PER_REQUEST, len(self._parts))
        self._request_parts(now)

    def _timers(self, now: int) -> None:
        if self.state is ReceiverState.SUBSCRIBING:
            if now - self._state_since_ns >= self._subscribe_timeout_ns:
                self._subscribe(now)
        elif self.state is ReceiverState.LOADING:
            if now - self._state_since_ns >= self._retry_ns:
                self._request_parts(now)
            if now - self._last_heard_ns >= self._stale_ns:
                self.stats["stale"] += 1
                self._subscribe(now)
        elif self.state is ReceiverState.LIVE:
            if now - self._last_heard_ns >= self._stale_ns:
                self.stats["stale"] += 1
                self._subscribe(now)
            elif now - self._last_keepalive_ns >= self._keepalive_ns:
                self._last_keepalive_ns = now
                self._send(DatagramKind.KEEPALIVE)

    # --- datagrams ------------------------------------------------------------------------------

    def _on_datagram(self, d: Datagram, now: int) -> int:
        kind = d.kind
        if kind in _FROM_RECEIVER:
            self.stats["garbled"] += 1
            return 0
        if self.state is ReceiverState.SUBSCRIBING:
            if kind is DatagramKind.SNAPSHOT_BEGIN and d.subheader[0] == self._request_id:
                return self._on_begin(d, now)
            if kind is DatagramKind.DATA:
                self._buffer_live(d, now)
            return 0
        if d.session_id != self._session_id:
            if kind in (DatagramKind.DATA, DatagramKind.HEARTBEAT):
                self.stats["session_changes"] += 1
                self._subscribe(now)  # the publisher restarted
            return 0
        self._last_heard_ns = now
        if self.state is ReceiverState.LOADING:
            if kind is DatagramKind.SNAPSHOT_PART and d.subheader[0] == self._request_id:
                return self._on_part(d, now)
            if kind is DatagramKind.DATA:
                self._buffer_live(d, now)
            return 0
        # LIVE
        if kind is DatagramKind.DATA:
            return self._on_live(d.sequence, d.records, now)
        if kind is DatagramKind.HEARTBEAT and d.sequence > self.expected_sequence:
            self.stats["gaps"] += 1  # the tail of the stream was lost
            self._subscribe(now)
        return 0

    def _buffer_live(self, d: Datagram, now: int) -> None:
        if self._live_buffered + d.count > self._max_buffered:
            self.stats["overflows"] += 1
            self._subscribe(self._clock())
            return
        self._live_buffer.append((d.sequence, d.records, now))
        self._live_buffered += d.count

    def _on_begin(self, d: Datagram, now: int) -> int:
        _, parts, _, _ = d.subheader
        self._session_id = d.session_id
        self._continue_from = d.sequence
        self._venue_sequences = dict(d.venue_sequences)
        self._parts = [None] * parts
        self._parts_received = 0
        self._window_end = 0
        self._last_heard_ns = now
        self.state = ReceiverState.LOADING
        if parts == 0:
            return self._finish_snapshot(now)
        self._next_window(now)
        return 0

    def _on_part(self, d: Datagram, now: int) -> int:
        part = d.subheader[1]
        if not 1 <= part <= len(self._parts) or self._parts[part - 1] is not None:
            self.stats["duplicates"] += 1
            return 0
        self._parts[part - 1] = d.records
        self._parts_received += 1
        if self._parts_received == len(self._parts):
            return self._finish_snapshot(now)
        if part <= self._window_end and not self._missing_in_window():
            self._next_window(now)
        return 0

    def _finish_snapshot(self, now: int) -> int:
        parts = [p for p in self._parts if p is not None]
        events = (np.concatenate(parts) if parts else np.zeros(0, MD_EVENT_DTYPE)).copy()
        events["ts_recv"] = now
        events["sequence"] = 0
        events["flags"] |= _FLAG_SNAPSHOT
        # Venue numbers continue one by one from what the sink already has (see module doc).
        for venue_id, last in self._venue_sequences.items():
            if venue_id < 256:
                got = int(self._last_out[venue_id])
                self._offset[venue_id] = np.uint64(last - got if got and last >= got else 0)
        self._parts = []
        self.stats["snapshots"] += 1
        self.stats["snapshot_events"] += len(events)
        delivered = self._deliver(events)
        self.state = ReceiverState.LIVE
        self.expected_sequence = self._continue_from
        self._last_keepalive_ns = now
        self._send(DatagramKind.KEEPALIVE)  # tells the publisher it may drop the snapshot
        buffered, self._live_buffer, self._live_buffered = self._live_buffer, [], 0
        for first, records, read_at in buffered:
            if first + len(records) <= self.expected_sequence:
                continue  # already in the snapshot
            delivered += self._on_live(first, records, read_at)
            if self.state is not ReceiverState.LIVE:
                break
        return delivered

    def _on_live(self, first: int, records: np.ndarray, now: int) -> int:
        if first > self.expected_sequence:
            self.stats["gaps"] += 1
            self._subscribe(now)
            return 0
        skip = self.expected_sequence - first
        if skip >= len(records):
            self.stats["duplicates"] += 1
            return 0
        events = records[skip:].copy()
        self.expected_sequence = first + len(records)
        events["ts_recv"] = now
        sequenced = events["sequence"] != 0
        venues = events["venue_id"][sequenced]
        shifted = events["sequence"][sequenced] - self._offset[venues]
        events["sequence"][sequenced] = shifted
        np.maximum.at(self._last_out, venues, shifted)
        self.stats["events"] += len(events)
        return self._deliver(events)

    def _deliver(self, events: np.ndarray) -> int:
        if self._pending is not None:
            if len(self._pending) + len(events) > self._max_buffered:
                self.stats["overflows"] += 1
                self._pending = None
                self._subscribe(self._clock())
                return 0
            self._pending = np.concatenate([self._pending, events])
            return self._flush_pending()
        if len(events) == 0:
            return 0
        taken = self._sink(events)
        taken = len(events) if taken is None else int(taken)
        if taken < len(events):
            self._pending = events[taken:].copy()
        return taken

    def _flush_pending(self) -> int:
        if self._pending is None:
            return 0
        pending, self._pending = self._pending, None
        taken = self._sink(pending)
        taken = len(pending) if taken is None else int(taken)
        if taken < len(pending):
            self._pending = pending[taken:]
        return taken


def engine_sink(engine: Any) -> Sink:
    """Returns a sink writing to ``engine``'s md ring (``Engine.publish_market_data``)."""
    return engine.publish_market_data


def book_sink(book: Any) -> Sink:
    """Returns a sink applying events to a ``ConsolidatedBook`` (or any book with apply)."""

    def apply(events: np.ndarray) -> int:
        book.apply(events)
        return len(events)

    return apply
