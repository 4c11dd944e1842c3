"""The audit journal: every decision, every engine audit record and every operator or guard
event of a router run, in one crash-safe append-only file, queryable later with DuckDB and the
input of retraining.

File layout (little-endian)::

    header  magic b"SORAUDJ1" | u16 format version (1) | u16 0 | u32 n | u32 crc32 | n bytes JSON
    frame   u32 length | u32 crc32 | u8 type | payload (length bytes)
    frame   ...

The JSON header names the run, its creation time and process, the feature schema (hash and
names) and, for each record type, the numpy dtype description and item size the rows were
written with; a reader refuses a file whose layout differs from its own
(:class:`sor.errors.AuditJournalLayoutError`). A frame's CRC-32 (zlib) covers the type byte and
the payload. Types: ``DECISIONS`` (raw ``DecisionRecord`` rows, 384 bytes each),
``ENGINE_AUDIT`` (raw ``AuditRecord`` rows, 64 bytes each), ``EVENT`` (one JSON object:
operator actions, guard trips, configuration changes, session up/down).

Crash safety. Frames are only appended. A crash (``kill -9``, power loss) can tear the last
write: on read, a bad frame with no valid frame after it is a torn tail; it is skipped and
counted (:attr:`JournalContents.torn_bytes`), and reopening the file for appending cuts it
off. A bad frame *followed* by a valid one means damage in the middle (a disk error, an edit):
by default reading raises :class:`sor.errors.AuditJournalCorruptError` naming the offset;
``on_corrupt="skip"`` skips to the next valid frame and reports every skipped region in
:attr:`JournalContents.skipped`.

Cost on the caller's thread. An append copies the rows into a buffer (no system call); the
buffer goes to the file with one ``os.write`` when it holds ``flush_bytes``, when the oldest
buffered frame is older than ``flush_interval_s`` (checked at the next append), or on
:meth:`AuditJournal.flush`. ``sync="fsync"`` also fsyncs every flush (survives a power loss).
"""

from __future__ import annotations

import datetime as _datetime
import enum
import json
import os
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

import numpy as np

from sor import _core
from sor.errors import (
    AuditJournalCorruptError,
    AuditJournalError,
    AuditJournalLayoutError,
    UsageError,
)
from sor.features import FEATURE_SCHEMA
from sor.ring import AUDIT_RECORD_DTYPE, DECISION_RECORD_DTYPE

MAGIC = b"SORAUDJ1"
FORMAT_VERSION = 1
FILE_SUFFIX = ".sorj"
MAX_FRAME_PAYLOAD_BYTES = 64 << 20
MAX_EVENT_BYTES = 1 << 20
RECORDS_PER_FRAME = 16_384

_FILE_HEAD = struct.Struct("<8sHHII")
_FRAME_HEAD = struct.Struct("<IIB")


class FrameType(enum.IntEnum):
    """What a frame holds."""

    DECISIONS = 1      # raw DecisionRecord rows (DECISION_RECORD_DTYPE)
    ENGINE_AUDIT = 2   # raw AuditRecord rows (AUDIT_RECORD_DTYPE)
    EVENT = 3          # one JSON object: {"ts_ns", "kind", ...fields}


_RECORD_DTYPES: dict[FrameType, np.dtype] = {
    FrameType.DECISIONS: np.dtype(DECISION_RECORD_DTYPE),
    FrameType.ENGINE_AUDIT: np.dtype(AUDIT_RECORD_DTYPE),
}

# decision flags (sor::DecisionFlag)
DECISION_ROW_REFUSED = 1
DECISION_NON_FINITE_ROW = 2
DECISION_CHILD_SENT = 4

MODEL_SLOT_NAMES = ("fill_probability", "adverse_move", "market_impact", "action_value")


def _descr(dtype: np.dtype) -> Any:
    """Returns the dtype description in its JSON form (tuples become lists)."""
    return json.loads(json.dumps(np.dtype(dtype).descr))


def layout() -> dict[str, Any]:
    """Returns the record layout this code writes and reads (the header's layout part)."""
    return {
        "record_types": {
            frame_type.name: {"type": int(frame_type), "itemsize": int(dtype.itemsize),
                              "descr": _descr(dtype)}
            for frame_type, dtype in _RECORD_DTYPES.items()},
        "event_encoding": "json",
        "feature_schema": {"hash": FEATURE_SCHEMA.version_hash, "size": FEATURE_SCHEMA.size,
                           "names": list(FEATURE_SCHEMA.names)},
    }


def _encode_header(run_id: str, metadata: dict[str, Any]) -> bytes:
    header = {"format": "sor.audit_journal", "format_version": FORMAT_VERSION,
              "run_id": run_id, "created_ns": time.time_ns(), "pid": os.getpid(),
              "host": socket.gethostname(), **layout(), "metadata": metadata}
    body = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return _FILE_HEAD.pack(MAGIC, FORMAT_VERSION, 0, len(body), zlib.crc32(body)) + body


def _frame_head(frame_type: FrameType, payload: bytes | memoryview) -> bytes:
    """Returns the head of a frame holding `payload` (length, CRC-32, type)."""
    crc = zlib.crc32(payload, zlib.crc32(bytes((int(frame_type),))))
    return _FRAME_HEAD.pack(len(payload), crc, int(frame_type))


class _Header:
    """A parsed file header: its JSON and the offset of the first frame (-1: torn header)."""

    def __init__(self, data: dict[str, Any] | None, end: int) -> None:
        self.data = data or {}
        self.end = end


def _parse_header(data: bytes | memoryview, path: str) -> _Header:
    size = len(data)
    if size < len(MAGIC):
        if bytes(data[:size]) != MAGIC[:size]:
            raise AuditJournalLayoutError(path, "not an audit journal (bad magic)")
        return _Header(None, -1)
    magic, version, _, length, crc = (_FILE_HEAD.unpack_from(data, 0) if size >= _FILE_HEAD.size
                                      else (bytes(data[:8]), None, 0, 0, 0))
    if magic != MAGIC:
        raise AuditJournalLayoutError(path, f"not an audit journal (magic {bytes(magic)!r}, "
                                            f"expected {MAGIC!r})")
    if version is None:
        return _Header(None, -1)
    if version != FORMAT_VERSION:
        raise AuditJournalLayoutError(path, f"file format version {version}; this code reads "
                                            f"version {FORMAT_VERSION}")
    end = _FILE_HEAD.size + length
    if end > size:
        return _Header(None, -1)  # the header itself was torn: the run wrote nothing
    body = bytes(data[_FILE_HEAD.size:end])
    if zlib.crc32(body) != crc:
        raise AuditJournalLayoutError(path, "the file header fails its CRC check")
    try:
        header = json.loads(body)
    except ValueError as error:
        raise AuditJournalLayoutError(path, f"the file header is not JSON: {error}") from None
    _check_layout(header, path)
    return _Header(header, end)


def _check_layout(header: dict[str, Any], path: str) -> None:
    ours = layout()
    theirs = header.get("record_types", {})
    for name, mine in ours["record_types"].items():
        found = theirs.get(name)
        if found is None:
            raise AuditJournalLayoutError(path, f"the header does not describe {name} records")
        if found.get("type") != mine["type"] or found.get("itemsize") != mine["itemsize"] or \
                found.get("descr") != mine["descr"]:
            raise AuditJournalLayoutError(
                path, f"{name} records were written with another layout ({found.get('itemsize')}"
                      f" bytes, fields {_field_names(found.get('descr'))}); this code reads "
                      f"{mine['itemsize']} bytes, fields {_field_names(mine['descr'])}")
    schema = header.get("feature_schema", {})
    if schema.get("hash") != ours["feature_schema"]["hash"]:
        raise AuditJournalLayoutError(
            path, f"decision rows were written under feature schema {schema.get('hash')}, this "
                  f"code uses {ours['feature_schema']['hash']}")


def _field_names(descr: Any) -> list[str]:
    try:
        return [entry[0] for entry in descr]
    except (TypeError, IndexError):
        return []


def _frame_end(data: bytes | memoryview, offset: int) -> int:
    """Returns the end offset of a valid frame at `offset`, or -1."""
    if offset + _FRAME_HEAD.size > len(data):
        return -1
    length, crc, frame_type = _FRAME_HEAD.unpack_from(data, offset)
    if not _plausible(frame_type, length):
        return -1
    start = offset + _FRAME_HEAD.size
    end = start + length
    if end > len(data):
        return -1
    if zlib.crc32(data[start:end], zlib.crc32(bytes((frame_type,)))) != crc:
        return -1
    return end


def _plausible(frame_type: int, length: int) -> bool:
    if frame_type == FrameType.EVENT:
        return 0 < length <= MAX_EVENT_BYTES
    dtype = _RECORD_DTYPES.get(frame_type)  # type: ignore[call-overload]
    return dtype is not None and 0 < length <= MAX_FRAME_PAYLOAD_BYTES and \
        length % dtype.itemsize == 0


def _next_valid_frame(data: bytes, start: int) -> int:
    """Returns the offset of the first valid frame at or after `start`, or -1."""
    if start + _FRAME_HEAD.size > len(data):
        return -1
    raw = np.frombuffer(data, dtype=np.uint8)
    type_bytes = raw[start + 8:]
    candidates = np.flatnonzero((type_bytes >= 1) & (type_bytes <= 3)) + start
    if len(candidates) == 0:
        return -1
    # length field of each candidate (4 unaligned little-endian bytes)
    lengths = (raw[candidates].astype(np.uint64) | raw[candidates + 1].astype(np.uint64) << 8 |
               raw[candidates + 2].astype(np.uint64) << 16 |
               raw[candidates + 3].astype(np.uint64) << 24)
    fits = candidates + _FRAME_HEAD.size + lengths.astype(np.int64) <= len(data)
    for offset in candidates[fits & (lengths > 0)].tolist():
        if _frame_end(data, offset) > 0:
            return offset
    return -1


@dataclass
class _Scan:
    frames: list[tuple[FrameType, int, int]]  # type, payload start, payload end
    valid_end: int
    torn_bytes: int
    skipped: list[tuple[int, int]]  # (offset, bytes) of damaged regions skipped


def _scan_frames(data: bytes, start: int, path: str, on_corrupt: str) -> _Scan:
    view = memoryview(data)
    frames: list[tuple[FrameType, int, int]] = []
    skipped: list[tuple[int, int]] = []
    offset = start
    while offset < len(data):
        end = _frame_end(view, offset)
        if end > 0:
            frames.append((FrameType(data[offset + 8]), offset + _FRAME_HEAD.size, end))
            offset = end
            continue
        following = _next_valid_frame(data, offset + 1)
        if following < 0:
            return _Scan(frames, offset, len(data) - offset, skipped)
        if on_corrupt == "error":
            raise AuditJournalCorruptError(path, offset, following - offset)
        skipped.append((offset, following - offset))
        offset = following
    return _Scan(frames, offset, 0, skipped)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, enum.Enum):
        return value.name
    if hasattr(value, "name") and hasattr(value, "__int__"):  # pybind11 enums
        return str(value.name)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def new_run_path(directory: str | os.PathLike[str]) -> Path:
    """Returns a fresh journal path in `directory`: ``audit-<UTC time>-<pid>.sorj`` (names
    sort in time order)."""
    now = _datetime.datetime.now(_datetime.timezone.utc)
    stamp = now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond:06d}Z"
    return Path(directory) / f"audit-{stamp}-{os.getpid()}{FILE_SUFFIX}"


class AuditJournal:
    """One run's audit journal, open for appending.

    ``AuditJournal(path)``: `path` is the journal file, or an existing directory in which a new
    run file is created (see :func:`new_run_path`; :meth:`new_run` also creates the directory).
    An existing file is checked (layout) and appended to after cutting a torn tail off. Appends
    are thread-safe. A context manager; :meth:`close` flushes.
    """

    def __init__(self, path: str | os.PathLike[str], *, sync: Literal["write", "fsync"] = "write",
                 flush_bytes: int = 1 << 20, flush_interval_s: float = 0.1,
                 run_id: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        if sync not in ("write", "fsync"):
            raise UsageError(f"sync must be 'write' or 'fsync', got {sync!r}")
        if flush_bytes < 0 or not flush_interval_s >= 0:
            raise UsageError("flush_bytes and flush_interval_s must be >= 0")
        target = Path(path)
        if target.is_dir():
            target = new_run_path(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._path = str(target)
        self._fsync = sync == "fsync"
        self._flush_bytes = int(flush_bytes)
        self._flush_interval_ns = int(flush_interval_s * 1e9)
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._buffered_since_ns = 0
        self._torn_tail_bytes = 0
        self._counts = {frame_type: 0 for frame_type in FrameType}
        self._written_bytes = 0
        self._flushes = 0
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                self._run_id = run_id or target.stem
                header = _encode_header(self._run_id, dict(metadata or {}))
                _write_all(fd, header)
                os.fsync(fd)
                _fsync_directory(target.parent)
                self._size = len(header)
            else:
                self._size = self._reopen(fd, size)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _reopen(self, fd: int, size: int) -> int:
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
        header = _parse_header(data, self._path)
        if header.end < 0:
            raise AuditJournalLayoutError(self._path, "the file header is torn (the run that "
                                                      "created it wrote nothing); remove the file")
        self._run_id = str(header.data.get("run_id", Path(self._path).stem))
        scan = _scan_frames(data, header.end, self._path, "error")
        if scan.torn_bytes:
            os.ftruncate(fd, scan.valid_end)
            os.fsync(fd)
        self._torn_tail_bytes = scan.torn_bytes
        os.lseek(fd, scan.valid_end, os.SEEK_SET)
        return scan.valid_end

    @classmethod
    def new_run(cls, directory: str | os.PathLike[str], **options: Any) -> AuditJournal:
        """Creates `directory` when missing and opens a new run file in it."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        return cls(new_run_path(directory), **options)

    @property
    def path(self) -> str:
        """The journal file."""
        return self._path

    @property
    def run_id(self) -> str:
        """The run's id (the file name's stem unless given)."""
        return self._run_id

    @property
    def closed(self) -> bool:
        """True after close()."""
        return self._fd < 0

    @property
    def torn_tail_bytes(self) -> int:
        """Bytes of a torn last write cut off when an existing file was reopened."""
        return self._torn_tail_bytes

    def stats(self) -> dict[str, Any]:
        """Returns what was appended (decision and audit rows, events), bytes written,
        bytes still buffered and the number of flushes (write system calls)."""
        with self._lock:
            return {"decisions": self._counts[FrameType.DECISIONS],
                    "audit": self._counts[FrameType.ENGINE_AUDIT],
                    "events": self._counts[FrameType.EVENT],
                    "size_bytes": self._size, "written_bytes": self._written_bytes,
                    "pending_bytes": len(self._buffer), "flushes": self._flushes}

    # --- appending ----------------------------------------------------------------------

    def append_decisions(self, records: np.ndarray) -> None:
        """Buffers decision records (DECISION_RECORD_DTYPE, as read from the decision ring)."""
        self._append_rows(FrameType.DECISIONS, records)

    def append_audit(self, records: np.ndarray) -> None:
        """Buffers engine audit records (AUDIT_RECORD_DTYPE, as read from the audit ring)."""
        self._append_rows(FrameType.ENGINE_AUDIT, records)

    def append_event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Buffers one event ``{"ts_ns", "kind", **fields}`` (``ts_ns`` now unless given);
        returns it. Values must be JSON-serialisable (numpy scalars and enums are converted)."""
        if not isinstance(kind, str) or not kind:
            raise UsageError(f"event kind must be a non-empty string, got {kind!r}")
        event = {"ts_ns": int(fields.pop("ts_ns", None) or time.time_ns()), "kind": kind, **fields}
        try:
            payload = json.dumps(event, separators=(",", ":"), default=_json_default,
                                 allow_nan=True).encode()
        except (TypeError, ValueError) as error:
            raise UsageError(f"event {kind!r} cannot be journaled: {error}") from None
        if len(payload) > MAX_EVENT_BYTES:
            raise UsageError(f"event {kind!r} is {len(payload)} bytes of JSON, more than "
                             f"{MAX_EVENT_BYTES}")
        self._append_payloads(FrameType.EVENT, (payload,), 1)
        return event

    def _append_rows(self, frame_type: FrameType, records: np.ndarray) -> None:
        dtype = _RECORD_DTYPES[frame_type]
        array = np.asarray(records)
        if array.dtype != dtype:
            raise UsageError(f"{frame_type.name} rows must have dtype {dtype.descr!r}, got "
                             f"{array.dtype}")
        if array.ndim != 1:
            raise UsageError(f"{frame_type.name} rows must be a 1-d array, got shape "
                             f"{array.shape}")
        if len(array) == 0:
            return
        array = np.ascontiguousarray(array)
        raw = memoryview(array).cast("B")
        step = RECORDS_PER_FRAME * dtype.itemsize
        self._append_payloads(frame_type, (raw[i:i + step] for i in range(0, len(raw), step)),
                              len(array))

    def _append_payloads(self, frame_type: FrameType, payloads: Iterable[bytes | memoryview],
                         count: int) -> None:
        with self._lock:
            if self._fd < 0:
                raise AuditJournalError(f"audit journal {self._path} is closed")
            now = time.monotonic_ns()
            if not self._buffer:
                self._buffered_since_ns = now
            for payload in payloads:
                self._buffer += _frame_head(frame_type, payload)
                self._buffer += payload
            self._counts[frame_type] += count
            if len(self._buffer) >= self._flush_bytes or \
                    now - self._buffered_since_ns >= self._flush_interval_ns:
                self._flush_locked()

    # --- writing ------------------------------------------------------------------------

    def flush(self) -> None:
        """Writes every buffered frame to the file with one write (and fsyncs with
        sync='fsync')."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._buffer or self._fd < 0:
            return
        data = bytes(self._buffer)
        self._buffer.clear()
        try:
            _write_all(self._fd, data)
        except OSError as error:
            # the frames written before the error are whole or a torn tail; the rest is lost
            raise AuditJournalError(f"audit journal {self._path}: write failed: "
                                    f"{error.strerror or error}") from None
        self._size += len(data)
        self._written_bytes += len(data)
        self._flushes += 1
        if self._fsync:
            os.fsync(self._fd)

    def sync(self) -> None:
        """Flushes and fsyncs, whatever the sync mode."""
        with self._lock:
            self._flush_locked()
            if self._fd >= 0:
                os.fsync(self._fd)

    def close(self) -> None:
        """Flushes and closes the file (idempotent)."""
        with self._lock:
            if self._fd < 0:
                return
            try:
                self._flush_locked()
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> AuditJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else "open"
        return f"<sor.monitor.AuditJournal {self._path!r} {state}>"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --- reading ------------------------------------------------------------------------------


@dataclass
class JournalRun:
    """One journal file as read: its header, records, and what was torn or skipped."""

    path: str
    run_id: str
    header: dict[str, Any]
    decisions: np.ndarray
    audit: np.ndarray
    events: list[dict[str, Any]]
    torn_bytes: int = 0
    skipped: list[tuple[int, int]] = field(default_factory=list)


def read_run(path: str | os.PathLike[str], *,
             on_corrupt: Literal["error", "skip"] = "error") -> JournalRun:
    """Reads one journal file (not changed). A torn last frame is skipped and counted in
    ``torn_bytes``; damage in the middle raises AuditJournalCorruptError, or with
    ``on_corrupt="skip"`` is skipped and listed in ``skipped`` as (offset, bytes)."""
    if on_corrupt not in ("error", "skip"):
        raise UsageError(f"on_corrupt must be 'error' or 'skip', got {on_corrupt!r}")
    text = os.fspath(path)
    try:
        with open(text, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise AuditJournalError(f"cannot read audit journal {text}: "
                                f"{error.strerror or error}") from None
    header = _parse_header(data, text)
    run_id = str(header.data.get("run_id", Path(text).stem))
    if header.end < 0:
        return JournalRun(text, run_id, {}, np.zeros(0, DECISION_RECORD_DTYPE),
                          np.zeros(0, AUDIT_RECORD_DTYPE), [], torn_bytes=len(data))
    scan = _scan_frames(data, header.end, text, on_corrupt)
    parts: dict[FrameType, list[np.ndarray]] = {FrameType.DECISIONS: [],
                                               FrameType.ENGINE_AUDIT: []}
    events: list[dict[str, Any]] = []
    for frame_type, start, end in scan.frames:
        if frame_type == FrameType.EVENT:
            try:
                event = json.loads(data[start:end])
            except ValueError:
                event = {"kind": "undecodable", "offset": start - _FRAME_HEAD.size}
            events.append(event if isinstance(event, dict) else {"kind": "undecodable",
                                                                 "value": event})
        else:
            parts[frame_type].append(np.frombuffer(data, dtype=_RECORD_DTYPES[frame_type],
                                                   count=(end - start) //
                                                   _RECORD_DTYPES[frame_type].itemsize,
                                                   offset=start))
    decisions = (np.concatenate(parts[FrameType.DECISIONS]) if parts[FrameType.DECISIONS]
                 else np.zeros(0, DECISION_RECORD_DTYPE))
    audit = (np.concatenate(parts[FrameType.ENGINE_AUDIT]) if parts[FrameType.ENGINE_AUDIT]
             else np.zeros(0, AUDIT_RECORD_DTYPE))
    return JournalRun(text, run_id, header.data, decisions, audit, events,
                      torn_bytes=scan.torn_bytes, skipped=scan.skipped)


def journal_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Returns the journal files of a directory (``*.sorj``), oldest run first (by name, which
    starts with the UTC creation time)."""
    return sorted(Path(directory).glob(f"*{FILE_SUFFIX}"))


def read_journal(path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                 on_corrupt: Literal["error", "skip"] = "error") -> JournalContents:
    """Reads a journal file, a directory of them (every run, oldest first) or a list of files;
    returns their records (see :func:`read_run` for torn and damaged frames)."""
    if isinstance(path, (str, os.PathLike)):
        target = Path(path)
        if target.is_dir():
            files = journal_files(target)
        elif target.exists():
            files = [target]
        else:
            raise AuditJournalError(f"no audit journal at {target}")
    else:
        files = [Path(p) for p in path]
    runs = [read_run(f, on_corrupt=on_corrupt) for f in files]
    runs.sort(key=lambda r: (int(r.header.get("created_ns", 0)), r.path))
    return JournalContents(runs)


class JournalContents:
    """The records of one or more runs: ``decisions`` and ``audit`` (numpy, the ring dtypes),
    ``events`` (dicts), ``runs`` (per file), and tables for SQL (:meth:`to_arrow`,
    :meth:`query`)."""

    def __init__(self, runs: list[JournalRun]) -> None:
        self.runs = runs
        self.decisions = (np.concatenate([r.decisions for r in runs]) if runs
                          else np.zeros(0, DECISION_RECORD_DTYPE))
        self.audit = (np.concatenate([r.audit for r in runs]) if runs
                      else np.zeros(0, AUDIT_RECORD_DTYPE))
        self.events = [e for r in runs for e in r.events]
        self._tables: dict[str, Any] | None = None

    @property
    def torn_bytes(self) -> int:
        """Bytes of torn last frames skipped, over every run."""
        return sum(r.torn_bytes for r in self.runs)

    @property
    def torn_runs(self) -> int:
        """Runs whose last frame was torn."""
        return sum(1 for r in self.runs if r.torn_bytes)

    @property
    def skipped(self) -> list[tuple[str, int, int]]:
        """Damaged regions skipped (with on_corrupt='skip'): (path, offset, bytes)."""
        return [(r.path, offset, size) for r in self.runs for offset, size in r.skipped]

    def summary(self) -> dict[str, Any]:
        """Returns counts: runs, decisions (sent, risk-rejected, model-routed), audit records by
        kind, events by kind, torn and skipped bytes, and the time span."""
        d, a = self.decisions, self.audit
        kinds = _enum_names(_core.AuditKind)
        audit_by_kind: dict[str, int] = {}
        for value, count in zip(*np.unique(a["kind"], return_counts=True)):
            name = kinds.get(int(value), str(int(value)))
            audit_by_kind[name] = int(count)
        events_by_kind: dict[str, int] = {}
        for event in self.events:
            kind = str(event.get("kind"))
            events_by_kind[kind] = events_by_kind.get(kind, 0) + 1
        stamps = [x for x in (d["ts_ns"], a["ts_ns"]) if len(x)]
        first = min(int(s.min()) for s in stamps) if stamps else None
        last = max(int(s.max()) for s in stamps) if stamps else None
        return {"runs": len(self.runs), "files": [r.path for r in self.runs],
                "decisions": int(len(d)),
                "children_sent": int(np.count_nonzero(d["flags"] & DECISION_CHILD_SENT)),
                "risk_rejected": int(np.count_nonzero(d["risk_reason"])),
                "model_routed": int(np.count_nonzero(d["model_mask"])),
                "audit": int(len(a)), "audit_by_kind": audit_by_kind,
                "events": len(self.events), "events_by_kind": events_by_kind,
                "first_ts_ns": first, "last_ts_ns": last,
                "torn_bytes": self.torn_bytes, "torn_runs": self.torn_runs,
                "skipped": self.skipped}

    # --- tables -------------------------------------------------------------------------

    def to_arrow(self) -> dict[str, Any]:
        """Returns pyarrow tables ``decisions`` (flattened: context fields, model outputs by
        name (null when the slot did not run), risk verdict, one column per feature name),
        ``audit`` (with ``kind_name``, ``reason_name``) and ``events`` (``ts_ns``, ``kind``,
        ``data`` as JSON text); each has a ``run`` column."""
        if self._tables is None:
            self._tables = {"decisions": decisions_table(self.runs),
                            "audit": audit_table(self.runs), "events": events_table(self.runs)}
        return self._tables

    def connect(self) -> Any:
        """Returns a DuckDB in-memory connection with the tables ``decisions``, ``audit`` and
        ``events`` registered."""
        import duckdb

        connection = duckdb.connect()
        for name, table in self.to_arrow().items():
            connection.register(name, table)
        return connection

    def query(self, sql: str) -> Any:
        """Runs `sql` (DuckDB) over the tables ``decisions``, ``audit`` and ``events``; returns
        the result as a pyarrow table. Bad SQL raises UsageError with DuckDB's message."""
        import duckdb

        connection = self.connect()
        try:
            relation = connection.sql(sql)
            if relation is None:  # a statement without rows
                import pyarrow as pa

                return pa.table({})
            # DuckDB 2.x names it to_arrow_table, 1.x arrow
            fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
            return fetch()
        except duckdb.Error as error:
            raise UsageError(f"query failed: {error}") from None
        finally:
            connection.close()

    def training_rows(self, *, finished_only: bool = True) -> dict[str, np.ndarray]:
        """Returns the training rows of the sent children (see :func:`training_rows`)."""
        return training_rows(self, finished_only=finished_only)

    def __repr__(self) -> str:
        return (f"<sor.monitor.JournalContents {len(self.runs)} runs, {len(self.decisions)} "
                f"decisions, {len(self.audit)} audit records, {len(self.events)} events>")


def _enum_names(enum_type: Any) -> dict[int, str]:
    return {int(v): k for k, v in enum_type.__members__.items()}


def _run_column(runs: list[JournalRun], attribute: str) -> Any:
    import pyarrow as pa

    values = [r.run_id for r in runs]
    lengths = [len(getattr(r, attribute)) for r in runs]
    indices = np.repeat(np.arange(len(runs), dtype=np.int32), lengths)
    return pa.DictionaryArray.from_arrays(pa.array(indices, pa.int32()),
                                          pa.array(values, pa.string())).cast(pa.string())


def _names(values: np.ndarray, names: dict[int, str]) -> Any:
    import pyarrow as pa

    return pa.array([names.get(int(v), str(int(v))) for v in values.tolist()], pa.string())


def decisions_table(runs: list[JournalRun]) -> Any:
    """Returns the decisions of `runs` as a flat pyarrow table."""
    import pyarrow as pa

    d = (np.concatenate([r.decisions for r in runs]) if runs
         else np.zeros(0, DECISION_RECORD_DTYPE))
    columns: dict[str, Any] = {"run": _run_column(runs, "decisions")}
    for name in ("ts_ns", "sequence", "parent_order_id", "child_order_id", "md_events",
                 "inference_ns"):
        columns[name] = pa.array(d[name])
    context = d["context"]
    for name in context.dtype.names:
        if name != "reserved":
            columns[name] = pa.array(context[name])
    mask = d["model_mask"]
    for slot, name in enumerate(MODEL_SLOT_NAMES):
        ran = (mask >> slot) & 1 == 1
        columns[name] = pa.array(np.ascontiguousarray(d["model_output"][:, slot]), pa.float32(),
                                 mask=~ran)
    columns["model_mask"] = pa.array(mask)
    columns["risk_reason"] = pa.array(d["risk_reason"])
    columns["risk_reason_name"] = _names(d["risk_reason"], _enum_names(_core.RejectReason))
    columns["row_status"] = pa.array(d["row_status"])
    columns["flags"] = pa.array(d["flags"])
    columns["child_sent"] = pa.array((d["flags"] & DECISION_CHILD_SENT) != 0)
    features = d["features"]
    for k, name in enumerate(FEATURE_SCHEMA.names):
        columns[name] = pa.array(np.ascontiguousarray(features[:, k]))
    return pa.table(columns)


def audit_table(runs: list[JournalRun]) -> Any:
    """Returns the engine audit records of `runs` as a pyarrow table."""
    import pyarrow as pa

    a = np.concatenate([r.audit for r in runs]) if runs else np.zeros(0, AUDIT_RECORD_DTYPE)
    columns: dict[str, Any] = {"run": _run_column(runs, "audit")}
    for name in a.dtype.names:
        columns[name] = pa.array(a[name])
    columns["kind_name"] = _names(a["kind"], _enum_names(_core.AuditKind))
    reject_names = _enum_names(_core.RejectReason)
    kind = a["kind"]
    rejected = np.isin(kind, [int(_core.AuditKind.COMMAND_REJECTED),
                              int(_core.AuditKind.RISK_REJECT)])
    columns["reason_name"] = pa.array(
        [reject_names.get(int(r), str(int(r))) if is_reject else None
         for r, is_reject in zip(a["reason"].tolist(), rejected.tolist())], pa.string())
    return pa.table(columns)


def events_table(runs: list[JournalRun]) -> Any:
    """Returns the events of `runs` as a pyarrow table (``data``: the whole event as JSON)."""
    import pyarrow as pa

    rows = [(r.run_id, e) for r in runs for e in r.events]
    return pa.table({
        "run": pa.array([run for run, _ in rows], pa.string()),
        "ts_ns": pa.array([int(e.get("ts_ns", 0) or 0) for _, e in rows], pa.int64()),
        "kind": pa.array([str(e.get("kind", "")) for _, e in rows], pa.string()),
        "data": pa.array([json.dumps(e, separators=(",", ":")) for _, e in rows], pa.string()),
    })


# --- retraining ---------------------------------------------------------------------------


def training_rows(contents: JournalContents, *, finished_only: bool = True
                  ) -> dict[str, np.ndarray]:
    """Returns one row per child the engine sent, joined with its executions from the audit
    records of the same run: the feature columns under their schema names and ``run``,
    ``child_order_id``, ``parent_order_id``, ``venue_id``, ``order_type``, ``side`` (+1 buy,
    -1 sell), ``child_quantity``, ``price_ticks``, ``sent_ns`` (the decision), the model outputs
    by name, and the outcome: ``filled_quantity``, ``fill_fraction``, ``filled`` (in full),
    ``avg_fill_price_ticks`` (NaN without fills), ``filled_in_full_ns`` (0: never),
    ``done_ns`` (the child's last report: filled in full, cancelled or rejected; 0: still open)
    and ``done``. With `finished_only`, children still open are left out. Column names follow
    the training dataset (``sor.models.dataset``) where they mean the same."""
    fill, cancelled, rejected = (int(_core.ExecKind.FILL), int(_core.ExecKind.CANCELLED),
                                 int(_core.ExecKind.REJECTED))
    execution = int(_core.AuditKind.EXECUTION)
    parts: list[dict[str, np.ndarray]] = []
    empty = JournalRun("", "", {}, np.zeros(0, DECISION_RECORD_DTYPE),
                       np.zeros(0, AUDIT_RECORD_DTYPE), [])
    for run in contents.runs or [empty]:
        d = run.decisions
        d = d[((d["flags"] & DECISION_CHILD_SENT) != 0) & (d["child_order_id"] != 0)]
        # a child id is sent once per run; keep the first record if a file was replayed
        ids, first = np.unique(d["child_order_id"], return_index=True)
        d = d[np.sort(first)]
        ids = d["child_order_id"]
        n = len(d)
        filled = np.zeros(n, np.int64)
        notional = np.zeros(n, np.float64)
        full_ns = np.zeros(n, np.int64)
        done_ns = np.zeros(n, np.int64)
        quantity = d["context"]["child_quantity"].astype(np.int64)
        a = run.audit
        a = a[(a["kind"] == execution) & np.isin(a["child_order_id"], ids)]
        a = a[np.argsort(a["sequence"], kind="stable")]
        if n and len(a):
            order = np.argsort(ids, kind="stable")
            where = order[np.searchsorted(ids, a["child_order_id"], sorter=order)]
            is_fill = a["reference"] == fill
            qty = np.where(is_fill, a["value_b"], 0).astype(np.int64)
            np.add.at(filled, where, qty)
            np.add.at(notional, where, qty.astype(np.float64) * a["value_a"].astype(np.float64))
            cumulative = _grouped_cumsum(where, qty, n)
            reaches = is_fill & (cumulative >= quantity[where]) & (qty > 0)
            ended = reaches | np.isin(a["reference"], [cancelled, rejected])
            for mask, out in ((reaches, full_ns), (ended, done_ns)):
                hits = np.flatnonzero(mask)
                # the first such record per child
                rows, first_hit = np.unique(where[hits], return_index=True)
                out[rows] = a["ts_ns"][hits[first_hit]]
        context = d["context"]
        with np.errstate(invalid="ignore", divide="ignore"):
            average = np.where(filled > 0, notional / np.maximum(filled, 1), np.nan)
        part: dict[str, np.ndarray] = {
            name: np.ascontiguousarray(d["features"][:, k])
            for k, name in enumerate(FEATURE_SCHEMA.names)}
        part.update({
            "run": np.array([run.run_id] * n, dtype=object),
            "child_order_id": ids.astype(np.uint64),
            "parent_order_id": d["parent_order_id"].astype(np.uint64),
            "venue_id": context["venue_id"].astype(np.int16),
            "order_type": context["order_type"].astype(np.int8),
            "side": np.where(context["side"] == int(_core.Side.BUY), 1, -1).astype(np.int8),
            "child_quantity": quantity,
            "price_ticks": context["child_price_ticks"].astype(np.int64),
            "sent_ns": d["ts_ns"].astype(np.int64),
            "filled_quantity": filled,
            "fill_fraction": filled / np.maximum(quantity, 1),
            "filled": filled >= quantity,
            "avg_fill_price_ticks": average,
            "filled_in_full_ns": full_ns,
            "done_ns": done_ns,
            "done": done_ns > 0,
        })
        for slot, name in enumerate(MODEL_SLOT_NAMES):
            ran = (d["model_mask"] >> slot) & 1 == 1
            part[name] = np.where(ran, d["model_output"][:, slot], np.nan).astype(np.float32)
        if finished_only:
            keep = part["done"]
            part = {k: v[keep] for k, v in part.items()}
        parts.append(part)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _grouped_cumsum(groups: np.ndarray, values: np.ndarray, group_count: int) -> np.ndarray:
    """Returns, for each element, the running sum of `values` within its group (in order)."""
    order = np.argsort(groups, kind="stable")
    sorted_values = values[order]
    running = np.cumsum(sorted_values)
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    base = np.r_[0, running[starts[1:] - 1]] if len(values) else np.zeros(0, running.dtype)
    offsets = np.repeat(base, np.diff(np.r_[starts, len(values)])) if len(values) else base
    out = np.empty_like(running)
    out[order] = running - offsets
    return out


__all__ = ["AuditJournal", "JournalContents", "JournalRun", "FrameType", "read_journal",
           "read_run", "journal_files", "new_run_path", "training_rows", "layout",
           "decisions_table", "audit_table", "events_table", "MAGIC", "FORMAT_VERSION",
           "FILE_SUFFIX", "MODEL_SLOT_NAMES"]
