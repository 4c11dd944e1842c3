"""Single-producer single-consumer rings in POSIX shared memory (``/dev/shm``).

A ring carries fixed-size records of one numpy dtype (the record structs of ``types.hpp``:
:data:`MD_EVENT_DTYPE`, :data:`COMMAND_DTYPE`, :data:`EXEC_REPORT_DTYPE`,
:data:`ORDER_INTENT_DTYPE`, :data:`AUDIT_RECORD_DTYPE`, or any dtype whose size is a multiple
of 8 bytes). One process (or thread) holds the producer end and one the consumer end; both
are found by name. Layout and memory ordering are described in ``docs/rings.md``.

Zero-copy access: :meth:`Ring.claim` returns a writable view of free slots and
:meth:`Ring.publish` makes them visible; :meth:`Ring.peek` returns a read-only view of ready
records and :meth:`Ring.release` frees them. :meth:`Ring.write` and :meth:`Ring.read` copy.

Nothing is lost silently: a full ring refuses records by policy (``"refuse"`` at once, or
``"spin"`` up to ``spin_limit_ns``) and counts every refused record in :meth:`Ring.stats`.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from sor import _core

MD_EVENT_DTYPE: np.dtype = _core.md_event_dtype
COMMAND_DTYPE: np.dtype = _core.command_dtype
EXEC_REPORT_DTYPE: np.dtype = _core.exec_report_dtype
ORDER_INTENT_DTYPE: np.dtype = _core.order_intent_dtype
AUDIT_RECORD_DTYPE: np.dtype = _core.audit_record_dtype
DECISION_RECORD_DTYPE: np.dtype = _core.decision_record_dtype
RING_LAYOUT_VERSION: int = _core.RING_LAYOUT_VERSION

Role = Literal["producer", "consumer", "observer"]
Overflow = Literal["refuse", "spin"]
Stale = Literal["error", "takeover"]

_ROLES = {"producer": _core.RingRole.PRODUCER, "consumer": _core.RingRole.CONSUMER,
          "observer": _core.RingRole.OBSERVER}
_OVERFLOW = {"refuse": _core.OverflowPolicy.REFUSE, "spin": _core.OverflowPolicy.SPIN}
_STALE = {"error": _core.StalePolicy.ERROR, "takeover": _core.StalePolicy.TAKEOVER}


def _choice(table: dict[str, Any], value: str, what: str) -> Any:
    from sor.errors import UsageError

    try:
        return table[value]
    except (KeyError, TypeError):
        raise UsageError(f"{what} must be one of {sorted(table)}, got {value!r}") from None


class Ring:
    """One end of a shared-memory ring; a context manager that closes it."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    @classmethod
    def create(cls, name: str, dtype: np.dtype, capacity_records: int, *,
               role: Role = "producer", overflow: Overflow = "refuse",
               spin_limit_ns: int = 0, stale: Stale = "error") -> Ring:
        """Creates ring `name` and takes `role`; the segment is removed when this end closes.

        `stale` says what to do with a segment of the same name left by a dead process.
        """
        handle = _core.Ring.create(name, np.dtype(dtype), int(capacity_records),
                                   _choice(_ROLES, role, "role"),
                                   _choice(_OVERFLOW, overflow, "overflow"), int(spin_limit_ns),
                                   _choice(_STALE, stale, "stale"))
        return cls(handle)

    @classmethod
    def attach(cls, name: str, dtype: np.dtype, *, role: Role = "consumer",
               stale: Stale = "error") -> Ring:
        """Attaches to ring `name`, checking layout version and record dtype, and takes `role`.

        `stale` says what to do when the role is held by a dead process.
        """
        handle = _core.Ring.attach(name, np.dtype(dtype), _choice(_ROLES, role, "role"),
                                   _choice(_STALE, stale, "stale"))
        return cls(handle)

    @staticmethod
    def unlink(name: str) -> bool:
        """Removes segment `name` from /dev/shm; returns False when there was none."""
        return bool(_core.Ring.unlink(name))

    @property
    def name(self) -> str:
        """The segment name."""
        return self._handle.name

    @property
    def dtype(self) -> np.dtype:
        """The record dtype."""
        return self._handle.dtype

    @property
    def role(self) -> str:
        """The end this handle holds."""
        return self._handle.role.name.lower()

    @property
    def capacity_records(self) -> int:
        """The slot count."""
        return int(self._handle.capacity_records)

    @property
    def closed(self) -> bool:
        """True after close()."""
        return bool(self._handle.closed)

    def write(self, records: np.ndarray) -> int:
        """Copies `records` in, following the overflow policy; returns how many were written."""
        return int(self._handle.write(records))

    def claim(self, max_records: int) -> np.ndarray:
        """Returns a writable view of up to `max_records` contiguous free slots (maybe fewer)."""
        return self._handle.claim(int(max_records))

    def publish(self, count: int) -> None:
        """Makes the first `count` claimed slots visible to the consumer."""
        self._handle.publish(int(count))

    def count_refused(self, count: int) -> None:
        """Counts `count` records the caller dropped because the ring was full."""
        self._handle.count_refused(int(count))

    def read(self, max_records: int = 1 << 20) -> np.ndarray:
        """Copies out and frees up to `max_records` ready records."""
        return self._handle.read(int(max_records))

    def read_into(self, out: np.ndarray) -> int:
        """Copies ready records into `out` (up to its length); returns the count."""
        return int(self._handle.read_into(out))

    def peek(self, max_records: int = 1 << 20) -> np.ndarray:
        """Returns a read-only view of up to `max_records` contiguous ready records.

        The view stays valid until those records are released.
        """
        return self._handle.peek(int(max_records))

    def release(self, count: int) -> None:
        """Frees the first `count` records returned by peek."""
        self._handle.release(int(count))

    def __len__(self) -> int:
        return int(len(self._handle))

    def heartbeat(self) -> None:
        """Marks this end alive (write/read/publish/release also do)."""
        self._handle.heartbeat()

    def peer_state(self, heartbeat_timeout_s: float = 0.0) -> str:
        """Returns the other end's state: absent, alive, stalled, dead or closed.

        With a zero timeout the heartbeat age is not judged (only whether the process exists).
        """
        return self._handle.peer_state(int(heartbeat_timeout_s * 1e9)).name.lower()

    def end_state(self, end: Role, heartbeat_timeout_s: float = 0.0) -> str:
        """Returns the state of the given end (producer or consumer)."""
        return self._handle.end_state(_choice(_ROLES, end, "end"),
                                      int(heartbeat_timeout_s * 1e9)).name.lower()

    def stats(self) -> dict[str, Any]:
        """Returns the shared counters: written, read, refused records, pids, heartbeats."""
        return dict(self._handle.stats())

    def close(self) -> None:
        """Releases this end (and removes the segment if this handle created it)."""
        self._handle.close()

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else self.role
        return f"<sor.ring.Ring {self.name!r} {state} capacity={self.capacity_records}>"


__all__ = [
    "Ring", "MD_EVENT_DTYPE", "COMMAND_DTYPE", "EXEC_REPORT_DTYPE", "ORDER_INTENT_DTYPE",
    "AUDIT_RECORD_DTYPE", "DECISION_RECORD_DTYPE", "RING_LAYOUT_VERSION",
]
