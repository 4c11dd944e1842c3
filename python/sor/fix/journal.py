"""The router's order-state journal: an append-only file of framed records that lets a router
killed with ``kill -9`` restart without losing or double-counting anything.

Each record is one frame::

    magic u16 (0x4A53, "SJ") | version u16 (1) | length u32 | crc32 u32 | payload (length bytes)

little-endian, CRC-32 (zlib) over the payload. A payload is the record kind (u8), then the
kind's integer fields (int64 each, in schema order), then its text and byte fields (u16 length
and the bytes; text is UTF-8).

Reading stops at the first frame whose magic, length or CRC is wrong. When no valid frame
follows it, the bytes from there to the end are a torn tail (a write cut short by a crash or a
power loss): they are reported in :attr:`Journal.torn_tail_bytes` and cut off before the
journal is appended to. When a valid frame does follow, the file was damaged in the middle,
and opening it raises :class:`sor.errors.JournalCorruptError` naming the offset: nothing is
skipped silently.

Appends are buffered; :meth:`Journal.flush` writes every buffered record with one ``write``
(``sync="write"``: survives a process kill) and, with ``sync="fsync"``, also ``fsync``s
(survives a power loss). The gateway flushes before every outbound FIX message, so a record
always reaches the file before the message it describes leaves the process.
"""

from __future__ import annotations

import enum
import os
import struct
import zlib
from collections.abc import Iterator
from typing import Any, NamedTuple

from sor.errors import JournalCorruptError, JournalError, UsageError

MAGIC = 0x4A53
VERSION = 1
MAX_PAYLOAD_BYTES = 1 << 20
_HEADER = struct.Struct("<HHII")
_U16 = struct.Struct("<H")


class RecordKind(enum.IntEnum):
    """What a journal record says happened."""

    INCARNATION = 1        # the router started (incarnation, ts_ns, pid)
    PARENT_NEW = 2         # a parent order arrived from the OMS and went to the engine
    PARENT_ACCEPTED = 3    # the engine accepted it; the OMS got (or gets) ExecType New
    PARENT_REJECTED = 4    # the engine refused it; the OMS got (or gets) Rejected
    ENTRY_REJECTED = 5     # a NewOrderSingle failed validation; its ClOrdID is used
    CANCEL_REQUEST = 6     # the OMS asked to cancel a parent
    REPLACE_REQUEST = 7    # the OMS asked to replace a parent
    REPLACED = 8           # the replace took effect
    REQUEST_REJECTED = 9   # a cancel or replace was refused (OrderCancelReject)
    PARENT_DONE = 10       # the parent is finished (filled, cancelled, expired, rejected)
    CHILD_SENT = 11        # a child NewOrderSingle is about to go to a venue
    CHILD_CANCEL_SENT = 12  # a child OrderCancelRequest is about to go to a venue
    CHILD_EXECUTION = 13   # a venue reported a fill or the end of a child
    CHILD_REPLACED = 14    # a venue confirmed a child cancel/replace
    OMS_OUT = 15           # an application message about to be sent to the OMS (outbox)
    SESSION_LOGON = 16     # an OMS session logged on (what it sent before is delivered or gone)
    PARENT_ACCOUNT = 17    # the account (1) a parent named (after its PARENT_NEW; none: account 0)
    PARENT_STOPPED = 18    # the engine stopped a parent for a risk reason (before its PARENT_DONE)
    ROUTER_CANCEL = 19     # the router cancels a parent on its own (cancel on disconnect)
    RISK_STATE = 20        # an operator set the risk state (ACTIVE, REDUCING, HALTED)
    MODEL_GUARD = 21       # routing went to the fallback policy (tripped) or back to the model


# kind -> ((field name, type) ...); types: q = int64, s = UTF-8 text, b = bytes
SCHEMAS: dict[RecordKind, tuple[tuple[str, str], ...]] = {
    RecordKind.INCARNATION: (("incarnation", "q"), ("ts_ns", "q"), ("pid", "q")),
    RecordKind.PARENT_NEW: (
        ("parent_order_id", "q"), ("ts_ns", "q"), ("instrument_id", "q"), ("side", "q"),
        ("quantity", "q"), ("limit_price_ticks", "q"), ("end_time_ns", "q"), ("urgency", "q"),
        ("ord_type", "q"), ("time_in_force", "q"), ("target_strategy", "q"),
        ("session", "s"), ("cl_ord_id", "s"), ("symbol", "s"), ("side_code", "s")),
    RecordKind.PARENT_ACCEPTED: (("parent_order_id", "q"),),
    RecordKind.PARENT_REJECTED: (("parent_order_id", "q"), ("reason", "q")),
    RecordKind.ENTRY_REJECTED: (("session", "s"), ("cl_ord_id", "s")),
    RecordKind.CANCEL_REQUEST: (("parent_order_id", "q"), ("cl_ord_id", "s"),
                                ("orig_cl_ord_id", "s")),
    RecordKind.REPLACE_REQUEST: (("parent_order_id", "q"), ("quantity", "q"),
                                 ("limit_price_ticks", "q"), ("ord_type", "q"),
                                 ("cl_ord_id", "s"), ("orig_cl_ord_id", "s")),
    RecordKind.REPLACED: (("parent_order_id", "q"), ("quantity", "q"),
                          ("limit_price_ticks", "q"), ("ord_type", "q"), ("cl_ord_id", "s")),
    RecordKind.REQUEST_REJECTED: (("parent_order_id", "q"), ("response_to", "q"),
                                  ("cl_ord_id", "s")),
    RecordKind.PARENT_DONE: (("parent_order_id", "q"), ("how", "q")),
    RecordKind.CHILD_SENT: (
        ("incarnation", "q"), ("child_order_id", "q"), ("parent_order_id", "q"),
        ("venue_id", "q"), ("side", "q"), ("quantity", "q"), ("price_ticks", "q"),
        ("time_in_force", "q"), ("ts_ns", "q")),
    RecordKind.CHILD_CANCEL_SENT: (("incarnation", "q"), ("child_order_id", "q"),
                                   ("cl_ord_id", "s")),
    RecordKind.CHILD_EXECUTION: (
        ("incarnation", "q"), ("child_order_id", "q"), ("kind", "q"), ("last_quantity", "q"),
        ("last_price_ticks", "q"), ("leaves_quantity", "q"), ("ts_ns", "q"), ("exec_id", "s")),
    RecordKind.CHILD_REPLACED: (("incarnation", "q"), ("child_order_id", "q"),
                                ("quantity", "q"), ("price_ticks", "q")),
    RecordKind.OMS_OUT: (("sequence_number", "q"), ("session", "s"), ("msg_type", "s"),
                         ("body", "b")),
    RecordKind.SESSION_LOGON: (("next_sender_seq_num", "q"), ("next_target_seq_num", "q"),
                               ("session", "s")),
    RecordKind.PARENT_ACCOUNT: (("parent_order_id", "q"), ("account_id", "q"), ("account", "s")),
    RecordKind.PARENT_STOPPED: (("parent_order_id", "q"), ("reason", "q"), ("value_a", "q"),
                                ("value_b", "q"), ("text", "s")),
    RecordKind.ROUTER_CANCEL: (("parent_order_id", "q"), ("text", "s")),
    RecordKind.RISK_STATE: (("state", "q"), ("ts_ns", "q"), ("operator", "s"), ("reason", "s")),
    RecordKind.MODEL_GUARD: (("tripped", "q"), ("reason", "q"), ("ts_ns", "q"), ("detail", "s")),
}


class _Codec:
    __slots__ = ("kind", "names", "ints", "texts", "head")

    def __init__(self, kind: RecordKind, schema: tuple[tuple[str, str], ...]) -> None:
        self.kind = kind
        self.names = tuple(name for name, _ in schema)
        types = [t for _, t in schema]
        n = types.count("q")
        if types[:n] != ["q"] * n:
            raise UsageError(f"journal schema {kind.name}: integer fields must come first")
        self.ints = n
        self.texts = tuple(t for t in types[n:])
        self.head = struct.Struct("<B" + "q" * n)


_CODECS = {kind: _Codec(kind, schema) for kind, schema in SCHEMAS.items()}


class JournalRecord(NamedTuple):
    """One decoded record: its kind, its fields by name, and its offset in the file."""

    kind: RecordKind
    fields: dict[str, Any]
    offset: int

    def __getattr__(self, name: str) -> Any:  # record.quantity reads fields["quantity"]
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(name) from None


def encode_payload(kind: RecordKind, values: tuple[Any, ...]) -> bytes:
    """Returns the payload of a record of `kind` with field `values` in schema order."""
    codec = _CODECS[kind]
    if len(values) != len(codec.names):
        raise UsageError(f"journal record {kind.name} takes {len(codec.names)} fields "
                         f"({', '.join(codec.names)}), got {len(values)}")
    if not codec.texts:
        return codec.head.pack(kind, *values)
    parts = [codec.head.pack(kind, *values[:codec.ints])]
    for value, kind_code in zip(values[codec.ints:], codec.texts):
        data = value.encode() if kind_code == "s" else bytes(value)
        if len(data) > 0xFFFF:
            raise UsageError(f"journal record {kind.name}: a field of {len(data)} bytes is "
                             f"longer than 65535")
        parts.append(_U16.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def decode_payload(payload: bytes, offset: int = 0) -> JournalRecord:
    """Returns the record a payload holds; raises JournalError when it does not parse."""
    if not payload:
        raise JournalError(f"journal record at offset {offset}: empty payload")
    try:
        kind = RecordKind(payload[0])
    except ValueError:
        raise JournalError(f"journal record at offset {offset}: unknown kind "
                           f"{payload[0]}") from None
    codec = _CODECS[kind]
    try:
        values = list(codec.head.unpack_from(payload, 0))[1:]
        position = codec.head.size
        for kind_code in codec.texts:
            (size,) = _U16.unpack_from(payload, position)
            position += 2
            data = payload[position:position + size]
            if len(data) != size:
                raise struct.error("field runs past the payload")
            position += size
            values.append(data.decode() if kind_code == "s" else bytes(data))
    except (struct.error, UnicodeDecodeError) as error:
        raise JournalError(f"journal record {kind.name} at offset {offset} does not parse: "
                           f"{error}") from None
    if position != len(payload):
        raise JournalError(f"journal record {kind.name} at offset {offset}: "
                           f"{len(payload) - position} bytes left over")
    return JournalRecord(kind, dict(zip(codec.names, values)), offset)


def frame(payload: bytes) -> bytes:
    """Returns `payload` framed (magic, version, length, CRC-32)."""
    return _HEADER.pack(MAGIC, VERSION, len(payload), zlib.crc32(payload)) + payload


def _frame_at(data: bytes | memoryview, offset: int) -> int:
    """Returns the end offset of a valid frame at `offset`, or -1."""
    if offset + _HEADER.size > len(data):
        return -1
    magic, version, length, crc = _HEADER.unpack_from(data, offset)
    if magic != MAGIC or version != VERSION or length > MAX_PAYLOAD_BYTES:
        return -1
    end = offset + _HEADER.size + length
    if end > len(data) or zlib.crc32(data[offset + _HEADER.size:end]) != crc:
        return -1
    return end


def scan(data: bytes, path: str = "<journal>") -> tuple[list[JournalRecord], int]:
    """Returns the records of journal bytes `data` and the length of the valid prefix.

    Raises JournalCorruptError when a damaged frame is followed by a valid one.
    """
    view = memoryview(data)
    records: list[JournalRecord] = []
    offset = 0
    while offset < len(data):
        end = _frame_at(view, offset)
        if end < 0:
            break
        payload = bytes(view[offset + _HEADER.size:end])
        records.append(decode_payload(payload, offset))
        offset = end
    if offset < len(data):
        magic = _HEADER.pack(MAGIC, VERSION, 0, 0)[:4]
        probe = data.find(magic, offset + 1)
        while probe >= 0:
            if _frame_at(view, probe) > 0:
                raise JournalCorruptError(path, offset, len(data) - offset)
            probe = data.find(magic, probe + 1)
    return records, offset


class Journal:
    """An open journal file: the records it held when opened, and appends after them.

    ``Journal(path)`` creates the file (and its folder) when missing, reads every record,
    cuts off a torn tail and opens the file for appending. Use as a context manager or close().
    """

    def __init__(self, path: str | os.PathLike[str], *, sync: str = "write") -> None:
        if sync not in ("write", "fsync"):
            raise UsageError(f"sync must be 'write' or 'fsync', got {sync!r}")
        self._path = os.fspath(path)
        self._fsync = sync == "fsync"
        folder = os.path.dirname(self._path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read()
            self._records, valid = scan(data, self._path)
            self._torn_tail_bytes = len(data) - valid
            if self._torn_tail_bytes:
                os.ftruncate(fd, valid)
                os.fsync(fd)
            os.lseek(fd, valid, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._size = valid
        self._buffer: list[bytes] = []
        self._appended = 0

    @property
    def path(self) -> str:
        """The journal file."""
        return self._path

    @property
    def records(self) -> list[JournalRecord]:
        """The records the file held when it was opened, in order."""
        return self._records

    @property
    def torn_tail_bytes(self) -> int:
        """Bytes of a torn last write found (and cut off) when the file was opened."""
        return self._torn_tail_bytes

    @property
    def size_bytes(self) -> int:
        """Bytes in the file, flushed records included."""
        return self._size

    @property
    def appended_records(self) -> int:
        """Records appended since the file was opened (flushed or not)."""
        return self._appended

    @property
    def pending_bytes(self) -> int:
        """Bytes appended but not yet flushed."""
        return sum(len(b) for b in self._buffer)

    def append(self, kind: RecordKind, *values: Any) -> None:
        """Buffers a record of `kind` with field `values` in schema order (see SCHEMAS)."""
        if self._fd < 0:
            raise JournalError(f"journal {self._path} is closed")
        self._buffer.append(frame(encode_payload(kind, values)))
        self._appended += 1

    def flush(self) -> None:
        """Writes every buffered record to the file (one write; fsync when sync='fsync')."""
        if not self._buffer:
            return
        data = b"".join(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer.clear()
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._size += len(data)
        if self._fsync:
            os.fsync(self._fd)

    def sync(self) -> None:
        """Flushes and fsyncs, whatever the sync mode."""
        self.flush()
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        """Flushes and closes the file."""
        if self._fd < 0:
            return
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[JournalRecord]:
        return iter(self._records)

    def __repr__(self) -> str:
        return (f"<sor.fix.journal.Journal {self._path!r} {len(self._records)} records read, "
                f"{self._appended} appended>")


def read(path: str | os.PathLike[str]) -> tuple[list[JournalRecord], int]:
    """Returns the records of a journal file and its torn-tail byte count (the file is not
    changed)."""
    with open(path, "rb") as f:
        data = f.read()
    records, valid = scan(data, os.fspath(path))
    return records, len(data) - valid


__all__ = ["Journal", "JournalRecord", "RecordKind", "SCHEMAS", "read", "scan", "frame",
           "encode_payload", "decode_payload", "MAGIC", "VERSION"]
