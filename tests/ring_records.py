"""Stamped records for the ring stress tests, and the peer processes those tests start.

Every record carries its sequence number, six payload words derived from it and a checksum
over the sequence and the payload, so a lost, reordered or torn record is detected.

Run as a module, it plays one end of a ring in its own process:

    python -m ring_records produce NAME COUNT       attach as producer, write COUNT records
    python -m ring_records consume NAME COUNT       attach as consumer, read and verify COUNT
    python -m ring_records produce-forever NAME     write until killed
    python -m ring_records hold NAME                attach as producer, write 10 records, print
                                                    "ready", then on a stdin line "exit" leave
                                                    without closing (os._exit) or on "close"
                                                    close cleanly
    python -m ring_records create-and-die NAME      create the ring and os._exit without closing
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np

RECORD_DTYPE = np.dtype([("sequence", "<u8"), ("payload", "<u8", (6,)), ("checksum", "<u8")])
assert RECORD_DTYPE.itemsize == 64

_SALT = np.array([0xA5A5A5A5 << i for i in range(6)], dtype=np.uint64)
_MIX_START = np.uint64(0x9E3779B97F4A7C15)
_MIX_STEP = np.uint64(0x100000001B3)


def checksum(sequence: np.ndarray, payload: np.ndarray) -> np.ndarray:
    """Returns the checksum of each record's sequence and payload words (uint64 arithmetic)."""
    total = sequence * _MIX_START
    for i in range(payload.shape[1]):
        total = (total ^ payload[:, i]) * _MIX_STEP
    return total


def fill(records: np.ndarray, first_sequence: int) -> np.ndarray:
    """Fills `records` (any length, possibly a ring slot view) from `first_sequence` on."""
    sequence = np.arange(first_sequence, first_sequence + len(records), dtype=np.uint64)
    payload = sequence[:, None] ^ _SALT[None, :]
    records["sequence"] = sequence
    records["payload"] = payload
    records["checksum"] = checksum(sequence, payload)
    return records


def make(first_sequence: int, count: int) -> np.ndarray:
    """Returns `count` stamped records starting at `first_sequence`."""
    return fill(np.empty(count, dtype=RECORD_DTYPE), first_sequence)


def verify(records: np.ndarray, first_sequence: int) -> int:
    """Raises AssertionError unless `records` are the stamped records from `first_sequence`,
    in order and intact; returns the sequence number expected next."""
    n = len(records)
    expected = np.arange(first_sequence, first_sequence + n, dtype=np.uint64)
    sequence = records["sequence"]
    if not np.array_equal(sequence, expected):
        bad = int(np.flatnonzero(sequence != expected)[0])
        raise AssertionError(f"record {first_sequence + bad}: got sequence {int(sequence[bad])} "
                             "(lost or reordered)")
    payload = records["payload"]
    intact = (checksum(sequence, payload) == records["checksum"]) & np.all(
        payload == (sequence[:, None] ^ _SALT[None, :]), axis=1)
    if not intact.all():
        bad = int(np.flatnonzero(~intact)[0])
        raise AssertionError(f"record {first_sequence + bad} is torn (checksum or payload wrong)")
    return first_sequence + n


def produce(ring, first_sequence: int, count: int | None, batch: int = 4096,
            deadline_s: float = 120.0) -> int:
    """Writes `count` records (None: forever) in batches, alternating write() and
    claim()/publish(), retrying while the ring is full; returns the next sequence."""
    sequence = first_sequence
    end = None if count is None else first_sequence + count
    calls = 0
    deadline = time.monotonic() + deadline_s
    while end is None or sequence < end:
        want = batch if end is None else min(batch, end - sequence)
        want = 1 + (calls * 7919) % want  # varying batch sizes, so batches straddle the wrap
        calls += 1
        if calls % 2:
            written = ring.write(make(sequence, want))
        else:
            slots = ring.claim(want)
            fill(slots, sequence)
            ring.publish(len(slots))
            written = len(slots)
        sequence += written
        if written == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"ring {ring.name} stayed full at record {sequence}")
            os.sched_yield()
    return sequence


def consume(ring, first_sequence: int, count: int, *, producer: subprocess.Popen | None = None,
            deadline_s: float = 120.0) -> int:
    """Reads and verifies `count` records; returns the next sequence. Fails early if the
    producer process exits with an error."""
    sequence = first_sequence
    end = first_sequence + count
    deadline = time.monotonic() + deadline_s
    while sequence < end:
        records = ring.read(min(1 << 16, end - sequence))
        if len(records):
            sequence = verify(records, sequence)
            continue
        if producer is not None and producer.poll() not in (None, 0):
            raise AssertionError(f"producer failed: {producer.stderr.read() if producer.stderr else ''}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"ring {ring.name}: only {sequence - first_sequence} of {count} "
                               "records arrived")
        os.sched_yield()
    return sequence


def main(argv: list[str]) -> int:
    from sor.ring import Ring

    command, name = argv[0], argv[1]
    if command == "produce":
        with Ring.attach(name, RECORD_DTYPE, role="producer") as ring:
            produce(ring, 0, int(argv[2]))
    elif command == "consume":
        with Ring.attach(name, RECORD_DTYPE, role="consumer") as ring:
            consume(ring, 0, int(argv[2]))
    elif command == "produce-forever":
        ring = Ring.attach(name, RECORD_DTYPE, role="producer")
        produce(ring, 0, None, batch=512, deadline_s=600.0)
    elif command == "hold":
        ring = Ring.attach(name, RECORD_DTYPE, role="producer")
        ring.write(make(0, 10))
        print("ready", flush=True)
        order = sys.stdin.readline().strip()
        if order == "close":
            ring.close()
        sys.stdout.flush()
        os._exit(0)
    elif command == "create-and-die":
        ring = Ring.create(name, RECORD_DTYPE, 8, role="producer")  # held: no close, no unlink
        print(f"created {ring.name}", flush=True)
        os._exit(0)
    else:
        print(f"unknown command {command!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
