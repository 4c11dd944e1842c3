"""The persistent message store of a FIX session: sequence numbers and sent messages.

A store is a directory with two files:

``seqnums``
    64 bytes, memory-mapped: magic ``SORFIXSQ``, layout version, generation, next sender and
    next target sequence numbers, creation time. Each number is one aligned 8-byte word written
    in place, so a process killed at any instant leaves either the old or the new value.
``messages``
    a memory-mapped log of the application messages sent, one record each:
    ``<u32 payload length><u32 CRC-32><u32 generation><u64 sequence number><payload>``; the
    CRC covers generation, sequence number and payload, and the header is written last. The
    file is preallocated (``posix_fallocate``) in growing chunks and zero past the last record.
    On open the log is scanned; the first record that is torn or fails its CRC ends it and its
    bytes are zeroed (a crash can only tear the last record). Records of an older generation
    (before a :meth:`MessageStore.reset`) are ignored.

With ``sync="write"`` (the default) every change is in the kernel's page cache (shared
mappings) before the call returns, so a ``kill -9`` loses nothing that was stored, at no system
call per message; with ``sync="fsync"`` every change is
also flushed to the device (survives a power loss; costs a disk flush per message).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import struct
import time
import zlib
from types import TracebackType

from sor.errors import FixStoreError

_MAGIC = b"SORFIXSQ"
_LAYOUT_VERSION = 1
_SEQNUMS_SIZE = 64
# magic, layout version, generation, next sender, next target, creation time (ns)
_SEQNUMS = struct.Struct("<8sIIQQQ")
_GENERATION_OFFSET = 12
_SENDER_OFFSET = 16
_TARGET_OFFSET = 24
_CREATED_OFFSET = 32
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_RECORD_HEAD = struct.Struct("<II")      # payload length, CRC-32
_RECORD_TAIL = struct.Struct("<IQ")      # generation, sequence number (covered by the CRC)
_RECORD_HEADER_BYTES = _RECORD_HEAD.size + _RECORD_TAIL.size
_MAX_RECORD_BYTES = 1 << 26
_LOG_INITIAL_BYTES = 1 << 20
_LOG_GROWTH_CAP_BYTES = 64 << 20

SYNC_MODES = ("write", "fsync")
"""``write``: survives a process kill; ``fsync``: also survives a power loss."""

_log = logging.getLogger("sor.fix.store")


class MessageStore:
    """Sequence numbers and sent messages of one FIX session, persisted in a directory."""

    def __init__(self, path: str | os.PathLike[str], sync: str = "write") -> None:
        if sync not in SYNC_MODES:
            raise FixStoreError(f"sync must be one of {', '.join(SYNC_MODES)}, not {sync!r}",
                                path=os.fspath(path))
        self.path = os.fspath(path)
        self.sync = sync
        self._fsync = sync == "fsync"
        self._seq_fd = -1
        self._log_fd = -1
        self._map: mmap.mmap | None = None
        self._log_map: mmap.mmap | None = None
        self._index: dict[int, tuple[int, int]] = {}
        self._log_end = 0
        self._log_capacity = 0
        self._generation = 0
        self._tail_prefix = b""
        try:
            os.makedirs(self.path, exist_ok=True)
            self._open_seqnums()
            self._open_log()
        except OSError as error:
            self.close()
            raise FixStoreError(f"cannot open the store: {error.strerror or error}",
                                path=self.path) from None
        except FixStoreError:
            self.close()
            raise

    # -- opening ------------------------------------------------------------------------------

    def _open_seqnums(self) -> None:
        seq_path = os.path.join(self.path, "seqnums")
        if not os.path.exists(seq_path):
            temporary = seq_path + ".new"
            with open(temporary, "wb") as file:
                file.write(_SEQNUMS.pack(_MAGIC, _LAYOUT_VERSION, 1, 1, 1, time.time_ns())
                           .ljust(_SEQNUMS_SIZE, b"\0"))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, seq_path)
            self._fsync_directory()
        self._seq_fd = os.open(seq_path, os.O_RDWR)
        try:
            fcntl.flock(self._seq_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FixStoreError("the store is in use by another session or process",
                                    path=self.path) from None
            raise
        if os.fstat(self._seq_fd).st_size != _SEQNUMS_SIZE:
            raise FixStoreError(f"{seq_path} is not {_SEQNUMS_SIZE} bytes long; not a sor FIX "
                                f"store", path=self.path)
        self._map = mmap.mmap(self._seq_fd, _SEQNUMS_SIZE)
        magic, version, _generation, sender, target, _created = _SEQNUMS.unpack_from(self._map)
        if magic != _MAGIC or version != _LAYOUT_VERSION:
            raise FixStoreError(f"{seq_path} has magic {magic!r} version {version}; expected "
                                f"{_MAGIC!r} version {_LAYOUT_VERSION}", path=self.path)
        if sender < 1 or target < 1:
            raise FixStoreError(f"{seq_path} holds impossible sequence numbers (next sender "
                                f"{sender}, next target {target})", path=self.path)

    def _open_log(self) -> None:
        log_path = os.path.join(self.path, "messages")
        self._log_fd = os.open(log_path, os.O_RDWR | os.O_CREAT, 0o644)
        size = os.fstat(self._log_fd).st_size
        if size < _LOG_INITIAL_BYTES:
            self._grow_file(_LOG_INITIAL_BYTES)
            size = _LOG_INITIAL_BYTES
        self._log_map = mmap.mmap(self._log_fd, size)
        data = self._log_map
        generation = self._generation = self.generation
        offset = 0
        while offset + _RECORD_HEADER_BYTES <= size:
            length, crc = _RECORD_HEAD.unpack_from(data, offset)
            end = offset + _RECORD_HEADER_BYTES + length
            if length > _MAX_RECORD_BYTES or end > size:
                break
            tail_start = offset + _RECORD_HEAD.size
            if zlib.crc32(data[tail_start:end]) != crc:
                break
            record_generation, seq_num = _RECORD_TAIL.unpack_from(data, tail_start)
            if record_generation == generation:
                self._index[seq_num] = (offset + _RECORD_HEADER_BYTES, length)
            offset = end
        # Past the last good record the log must be zeros (preallocated space); anything else
        # is a record torn by a crash (or corruption): zero it so that it can never be read.
        used = len(data[offset:].rstrip(b"\0")) if offset < size else 0
        if used:
            _log.warning("store %s: the message log ends with %d bytes of a torn or corrupt "
                         "record at offset %d; dropped", self.path, used, offset)
            data[offset:offset + used] = bytes(used)
            data.flush()
        self._log_end = offset
        self._log_capacity = size
        self._tail_prefix = _U32.pack(generation)

    def _grow_file(self, size: int) -> None:
        try:
            os.posix_fallocate(self._log_fd, 0, size)  # real blocks: no SIGBUS on a full disk
        except OSError as error:
            raise FixStoreError(f"cannot grow the message log to {size} bytes: "
                                f"{error.strerror or error}", path=self.path) from None

    def _make_room(self, record_bytes: int) -> None:
        if self._log_map is None:
            raise FixStoreError("the store is closed", path=self.path)
        needed = self._log_end + record_bytes
        capacity = self._log_capacity
        while capacity < needed:
            capacity += min(max(capacity, _LOG_INITIAL_BYTES), _LOG_GROWTH_CAP_BYTES)
        self._grow_file(capacity)
        self._log_map.resize(capacity)
        self._log_capacity = capacity

    def _fsync_directory(self) -> None:
        directory = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    # -- sequence numbers ---------------------------------------------------------------------

    @property
    def next_sender_seq_num(self) -> int:
        """Returns the sequence number of the next message we send."""
        return _U64.unpack_from(self._mapped(), _SENDER_OFFSET)[0]

    @property
    def next_target_seq_num(self) -> int:
        """Returns the sequence number we expect on the next message we receive."""
        return _U64.unpack_from(self._mapped(), _TARGET_OFFSET)[0]

    @property
    def generation(self) -> int:
        """Returns how many times the store was reset (a new FIX session each time)."""
        return _U32.unpack_from(self._mapped(), _GENERATION_OFFSET)[0]

    @property
    def creation_time_ns(self) -> int:
        """Returns when the store was created (Unix time, ns)."""
        return _SEQNUMS.unpack_from(self._mapped())[5]

    def set_next_sender_seq_num(self, seq_num: int) -> None:
        """Persists the sequence number of the next message we send."""
        if seq_num < 1:
            raise FixStoreError(f"next sender sequence number must be >= 1, not {seq_num}",
                                path=self.path)
        _U64.pack_into(self._mapped(), _SENDER_OFFSET, seq_num)
        if self._fsync:
            self._map.flush()

    def set_next_target_seq_num(self, seq_num: int) -> None:
        """Persists the sequence number we expect on the next message we receive."""
        if seq_num < 1:
            raise FixStoreError(f"next target sequence number must be >= 1, not {seq_num}",
                                path=self.path)
        _U64.pack_into(self._mapped(), _TARGET_OFFSET, seq_num)
        if self._fsync:
            self._map.flush()

    # -- messages -----------------------------------------------------------------------------

    def append(self, seq_num: int, raw: bytes) -> None:
        """Stores a sent message under its sequence number and persists ``seq_num + 1`` as the
        next sender sequence number; returns once both are in the kernel (or on the device)."""
        length = len(raw)
        start = self._log_end
        end = start + _RECORD_HEADER_BYTES + length
        if end > self._log_capacity:
            self._make_room(_RECORD_HEADER_BYTES + length)
        log_map = self._log_map
        tail = self._tail_prefix + _U64.pack(seq_num)
        log_map[start + _RECORD_HEADER_BYTES:end] = raw
        log_map[start + 8:start + _RECORD_HEADER_BYTES] = tail
        # The header (length, CRC) goes last: a record is never valid before its body is there.
        _RECORD_HEAD.pack_into(log_map, start, length, zlib.crc32(raw, zlib.crc32(tail)))
        self._index[seq_num] = (start + _RECORD_HEADER_BYTES, length)
        self._log_end = end
        _U64.pack_into(self._map, _SENDER_OFFSET, seq_num + 1)
        if self._fsync:
            page = start - start % mmap.PAGESIZE
            log_map.flush(page, end - page)
            self._map.flush()

    def get_messages(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """Returns the stored messages with ``begin <= seq_num <= end`` as (seq_num, raw), in
        sequence order (sequence numbers of messages not stored, such as admin messages, are
        absent)."""
        log_map = self._log_map
        if log_map is None:
            raise FixStoreError("the store is closed", path=self.path)
        index = self._index
        if end < begin:
            return []
        if end - begin + 1 <= len(index):
            seq_nums = [seq for seq in range(begin, end + 1) if seq in index]
        else:
            seq_nums = sorted(seq for seq in index if begin <= seq <= end)
        messages = []
        for seq in seq_nums:
            offset, length = index[seq]
            messages.append((seq, log_map[offset:offset + length]))
        return messages

    @property
    def message_count(self) -> int:
        """Returns how many sent messages the store holds."""
        return len(self._index)

    def reset(self) -> None:
        """Starts a new session: sequence numbers 1 and 1, every stored message dropped."""
        mapped = self._mapped()
        # The generation moves first: from then on, old records are ignored even if the
        # truncation below never happens (crash).
        self._generation = (self._generation + 1) & 0xFFFFFFFF
        self._tail_prefix = _U32.pack(self._generation)
        _U32.pack_into(mapped, _GENERATION_OFFSET, self._generation)
        _U64.pack_into(mapped, _SENDER_OFFSET, 1)
        _U64.pack_into(mapped, _TARGET_OFFSET, 1)
        _U64.pack_into(mapped, _CREATED_OFFSET, time.time_ns())
        mapped.flush()
        # Old records are ignored from here on (other generation); zero them so the log
        # restarts at offset 0.
        log_map = self._log_map
        if self._log_end:
            log_map[0:self._log_end] = bytes(self._log_end)
            if self._fsync:
                log_map.flush()
        self._index.clear()
        self._log_end = 0

    # -- lifetime -----------------------------------------------------------------------------

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            raise FixStoreError("the store is closed", path=self.path)
        return self._map

    @property
    def closed(self) -> bool:
        """Returns True once :meth:`close` ran."""
        return self._map is None

    def close(self) -> None:
        """Flushes and closes the files (idempotent)."""
        self._log_capacity = 0  # append() then finds no room and reports the store closed
        if self._log_map is not None:
            try:
                self._log_map.flush()
            finally:
                self._log_map.close()
                self._log_map = None
        if self._map is not None:
            try:
                self._map.flush()
            finally:
                self._map.close()
                self._map = None
        for name in ("_log_fd", "_seq_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)  # closing the seqnums descriptor releases the lock
                setattr(self, name, -1)

    def __enter__(self) -> MessageStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return f"MessageStore({self.path!r}, closed)"
        return (f"MessageStore({self.path!r}, next_sender={self.next_sender_seq_num}, "
                f"next_target={self.next_target_seq_num}, messages={self.message_count})")


__all__ = ["MessageStore", "SYNC_MODES"]
