"""sor.ring under stress: millions of stamped records between two threads and two processes
(nothing lost, reordered or torn), a full ring, a dead peer, kill -9 of the producer
mid-stream, layout and record mismatches, stale segments, views and closed handles.

No test asserts a time; the heartbeat timeout is a parameter of the state it judges."""

from __future__ import annotations

import itertools
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ring_records import RECORD_DTYPE, consume, fill, make, produce, verify
from sor.errors import RingError, UsageError
from sor.ring import MD_EVENT_DTYPE, RING_LAYOUT_VERSION, Ring

SHM = Path("/dev/shm")
PREFIX = f"sor-test-py-{os.getpid()}-"
_names = itertools.count()


def ring_name(tag: str) -> str:
    """A segment name unique to this process and test."""
    return f"{PREFIX}{tag}-{next(_names)}"


def our_segments() -> set[str]:
    return {p.name for p in SHM.iterdir() if p.name.startswith(PREFIX)}


@pytest.fixture(autouse=True)
def no_segment_leaks():
    """Every test removes the segments it made; a leftover fails the test (and is removed)."""
    before = our_segments()
    yield
    leaked = our_segments() - before
    for name in leaked:
        Ring.unlink(name)
    assert not leaked, f"segments left in /dev/shm: {sorted(leaked)}"


def peer(*args: str, stdin: bool = False) -> subprocess.Popen:
    """Starts `python -m ring_records ARGS` seeing the same sor package as this process."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, "-m", "ring_records", *args], env=env, text=True,
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen, timeout: float = 60) -> None:
    """Waits for a peer and fails with its stderr unless it exited 0."""
    try:
        _, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"peer did not finish: {err}") from None
    assert process.returncode == 0, err


def wait_for_line(process: subprocess.Popen, expected: str) -> None:
    line = process.stdout.readline().strip()
    if line != expected:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"peer said {line!r}, expected {expected!r}: {err}")


# ----------------------------------------------------------------------------- the records


def test_stamped_records_detect_loss_reorder_and_tearing():
    records = make(100, 50)
    assert verify(records, 100) == 150
    with pytest.raises(AssertionError, match="lost or reordered"):
        verify(np.delete(records, 7), 100)
    with pytest.raises(AssertionError, match="lost or reordered"):
        verify(records[::-1].copy(), 100)
    torn = records.copy()
    torn["payload"][20, 3] ^= np.uint64(1)
    with pytest.raises(AssertionError, match="record 120 is torn"):
        verify(torn, 100)


# ----------------------------------------------------------------------------- stress


def test_two_threads_exchange_millions_in_order_intact():
    count = 4_000_000
    name = ring_name("threads")
    with Ring.create(name, RECORD_DTYPE, 1 << 10, role="producer") as producer, \
            Ring.attach(name, RECORD_DTYPE, role="consumer") as consumer:
        failure: list[BaseException] = []

        def run_producer() -> None:
            try:
                produce(producer, 0, count, batch=2048)
            except BaseException as error:  # reported by the main thread
                failure.append(error)

        thread = threading.Thread(target=run_producer)
        thread.start()
        try:
            assert consume(consumer, 0, count) == count
        finally:
            thread.join()
        assert not failure, failure
        stats = consumer.stats()
        assert stats["written_records"] == stats["read_records"] == count
        assert len(consumer) == 0


def test_producer_process_to_consumer_process():
    count = 3_000_000
    name = ring_name("proc-in")
    with Ring.create(name, RECORD_DTYPE, 1 << 11, role="consumer") as consumer:
        producer = peer("produce", name, str(count))
        try:
            assert consume(consumer, 0, count, producer=producer) == count
        finally:
            finish(producer)
        stats = consumer.stats()
        assert stats["written_records"] == stats["read_records"] == count
        assert consumer.peer_state() == "closed"


def test_this_process_produces_for_a_consumer_process():
    count = 3_000_000
    name = ring_name("proc-out")
    with Ring.create(name, RECORD_DTYPE, 1 << 11, role="producer") as producer:
        consumer = peer("consume", name, str(count))
        try:
            assert produce(producer, 0, count) == count
        finally:
            finish(consumer)  # the consumer verified every record or exited non-zero
        stats = producer.stats()
        assert stats["written_records"] == stats["read_records"] == count
        assert producer.peer_state() == "closed"


# ----------------------------------------------------------------------------- a full ring


def test_full_ring_refuse_policy_counts_exactly_the_refused_records():
    name = ring_name("refuse")
    with Ring.create(name, RECORD_DTYPE, 8, role="producer") as producer, \
            Ring.attach(name, RECORD_DTYPE, role="consumer") as consumer:
        assert producer.write(make(0, 20)) == 8
        stats = producer.stats()
        assert (stats["refused_records"], stats["full_events"]) == (12, 1)
        assert producer.write(make(8, 3)) == 0
        assert len(producer.claim(5)) == 0
        stats = producer.stats()
        assert (stats["refused_records"], stats["full_events"]) == (15, 2)
        assert stats["overflow_policy"] == "refuse"
        verify(consumer.read(), 0)
        assert producer.write(make(8, 3)) == 3
        verify(consumer.read(), 8)
        assert consumer.stats()["written_records"] == 11


def test_full_ring_spin_policy_waits_for_a_slow_consumer():
    name = ring_name("spin-wait")
    count = 64
    with Ring.create(name, RECORD_DTYPE, 8, role="producer", overflow="spin",
                     spin_limit_ns=30_000_000_000) as producer, \
            Ring.attach(name, RECORD_DTYPE, role="consumer") as consumer:
        received: list[np.ndarray] = []

        def slow_consumer() -> None:
            got = 0
            while got < count:
                time.sleep(0.002)
                records = consumer.read(3)
                received.append(records)
                got += len(records)

        thread = threading.Thread(target=slow_consumer)
        thread.start()
        written = producer.write(make(0, count))  # the GIL is released while it spins
        thread.join()
        assert written == count
        assert verify(np.concatenate(received), 0) == count
        stats = producer.stats()
        assert (stats["refused_records"], stats["full_events"]) == (0, 0)
        assert stats["overflow_policy"] == "spin"


def test_full_ring_spin_policy_refuses_and_counts_when_nobody_reads():
    name = ring_name("spin-bound")
    with Ring.create(name, RECORD_DTYPE, 8, role="producer", overflow="spin",
                     spin_limit_ns=20_000_000) as producer, \
            Ring.attach(name, RECORD_DTYPE, role="consumer") as consumer:
        assert producer.write(make(0, 12)) == 8
        stats = producer.stats()
        assert (stats["refused_records"], stats["full_events"]) == (4, 1)
        verify(consumer.read(), 0)


# ----------------------------------------------------------------------------- peers


def test_peer_state_absent_alive_stalled_then_dead_after_exit_without_close():
    name = ring_name("dead")
    with Ring.create(name, RECORD_DTYPE, 64, role="consumer") as consumer:
        assert consumer.peer_state() == "absent"
        holder = peer("hold", name, stdin=True)
        try:
            wait_for_line(holder, "ready")
            assert consumer.peer_state() == "alive"
            assert consumer.stats()["producer_pid"] == holder.pid
            time.sleep(0.2)  # the holder is alive but silent
            assert consumer.peer_state(heartbeat_timeout_s=0.05) == "stalled"
            assert consumer.peer_state(heartbeat_timeout_s=60) == "alive"
            holder.stdin.write("exit\n")
            holder.stdin.flush()
        finally:
            finish(holder)
        # Reaped (finish waited), so the pid no longer exists; the role was never released.
        assert consumer.peer_state() == "dead"
        assert consumer.end_state("producer") == "dead"
        verify(consumer.read(), 0)


def test_peer_state_closed_after_a_clean_close():
    name = ring_name("closed")
    with Ring.create(name, RECORD_DTYPE, 64, role="consumer") as consumer:
        holder = peer("hold", name, stdin=True)
        try:
            wait_for_line(holder, "ready")
            holder.stdin.write("close\n")
            holder.stdin.flush()
        finally:
            finish(holder)
        assert consumer.peer_state() == "closed"
        assert consumer.stats()["producer_pid"] == 0
        verify(consumer.read(), 0)
        # A closed role is free: a new producer takes it without any takeover.
        with Ring.attach(name, RECORD_DTYPE, role="producer") as producer:
            assert consumer.peer_state() == "alive"
            producer.write(make(10, 5))
        verify(consumer.read(), 10)
        assert consumer.stats()["producer_takeovers"] == 0


def test_kill_9_of_the_producer_mid_stream_loses_nothing_published():
    name = ring_name("kill9")
    with Ring.create(name, RECORD_DTYPE, 1 << 12, role="consumer") as consumer:
        producer = peer("produce-forever", name)
        try:
            sequence = consume(consumer, 0, 300_000, producer=producer)
        finally:
            producer.send_signal(signal.SIGKILL)
            producer.communicate(timeout=30)
        assert producer.returncode == -signal.SIGKILL
        # Whatever was published before the kill is there, contiguous and intact.
        while len(records := consumer.read()):
            sequence = verify(records, sequence)
        stats = consumer.stats()
        assert stats["written_records"] == stats["read_records"] == sequence
        assert consumer.peer_state() == "dead"

        with pytest.raises(RingError) as refused:
            Ring.attach(name, RECORD_DTYPE, role="producer")
        assert refused.value.status == "stale"
        assert f"dead process {producer.pid}" in str(refused.value)

        with Ring.attach(name, RECORD_DTYPE, role="producer", stale="takeover") as successor:
            assert consumer.peer_state() == "alive"
            assert consumer.stats()["producer_takeovers"] == 1
            for _ in range(100):  # the ring holds 4096 records: alternate in chunks
                resumed = produce(successor, sequence, 1000)
                sequence = consume(consumer, sequence, 1000)
                assert sequence == resumed
        assert consumer.peer_state() == "closed"


# ----------------------------------------------------------------------------- mismatches


def _set_layout_version(name: str, version: int) -> int:
    with open(SHM / name, "r+b") as segment:
        segment.seek(8)
        (old,) = struct.unpack("<I", segment.read(4))
        segment.seek(8)
        segment.write(struct.pack("<I", version))
    return old


def test_layout_version_mismatch_is_refused_naming_both_versions():
    name = ring_name("version")
    with Ring.create(name, RECORD_DTYPE, 16, role="producer"):
        assert _set_layout_version(name, RING_LAYOUT_VERSION + 98) == RING_LAYOUT_VERSION
        with pytest.raises(RingError) as refused:
            Ring.attach(name, RECORD_DTYPE, role="consumer")
        assert refused.value.status == "layout_mismatch"
        message = str(refused.value)
        assert f"layout version {RING_LAYOUT_VERSION + 98}" in message
        assert f"reads version {RING_LAYOUT_VERSION}" in message
        _set_layout_version(name, RING_LAYOUT_VERSION)
        Ring.attach(name, RECORD_DTYPE, role="consumer").close()


def test_bad_magic_is_a_layout_mismatch():
    name = ring_name("magic")
    with Ring.create(name, RECORD_DTYPE, 16, role="producer"):
        with open(SHM / name, "r+b") as segment:
            segment.write(b"NOTARING")
        with pytest.raises(RingError, match="bad magic") as refused:
            Ring.attach(name, RECORD_DTYPE, role="consumer")
        assert refused.value.status == "layout_mismatch"


def test_record_size_and_type_mismatch_are_refused():
    assert MD_EVENT_DTYPE.itemsize == RECORD_DTYPE.itemsize  # same size, different record type
    name = ring_name("record")
    with Ring.create(name, RECORD_DTYPE, 16, role="producer"):
        with pytest.raises(RingError) as refused:
            Ring.attach(name, np.dtype([("a", "<u8"), ("b", "<u8")]), role="consumer")
        assert refused.value.status == "record_mismatch"
        assert "of 64 bytes, expected type 0 of 16 bytes" in str(refused.value)
        with pytest.raises(RingError) as refused:
            Ring.attach(name, MD_EVENT_DTYPE, role="consumer")
        assert refused.value.status == "record_mismatch"
    md_name = ring_name("md")
    with Ring.create(md_name, MD_EVENT_DTYPE, 16, role="producer") as md_ring:
        # A raw dtype of the right size may read any ring (it is opaque bytes).
        with Ring.attach(md_name, RECORD_DTYPE, role="consumer") as raw:
            md_ring.write(np.zeros(2, dtype=MD_EVENT_DTYPE))
            assert len(raw.read()) == 2


def test_role_taken_in_use_and_not_found():
    name = ring_name("roles")
    with Ring.create(name, RECORD_DTYPE, 16, role="producer"):
        with pytest.raises(RingError) as refused:
            Ring.attach(name, RECORD_DTYPE, role="producer")
        assert refused.value.status == "role_taken"
        assert f"process {os.getpid()}" in str(refused.value)
        with pytest.raises(RingError) as refused:
            Ring.attach(name, RECORD_DTYPE, role="producer", stale="takeover")
        assert refused.value.status == "role_taken"  # takeover is only of dead processes
        with Ring.attach(name, RECORD_DTYPE, role="consumer"):
            with pytest.raises(RingError) as refused:
                Ring.attach(name, RECORD_DTYPE, role="consumer")
            assert refused.value.status == "role_taken"
        with Ring.attach(name, RECORD_DTYPE, role="observer") as observer:
            assert observer.stats()["producer_pid"] == os.getpid()
        with pytest.raises(RingError) as refused:
            Ring.create(name, RECORD_DTYPE, 16)
        assert refused.value.status == "in_use"
    with pytest.raises(RingError) as refused:
        Ring.attach(name, RECORD_DTYPE)
    assert refused.value.status == "not_found"


@pytest.mark.parametrize("bad_name", ["", "a/b", "..", "with space", "x" * 201])
def test_invalid_names_are_refused(bad_name):
    with pytest.raises(RingError) as refused:
        Ring.create(bad_name, RECORD_DTYPE, 16)
    assert refused.value.status == "invalid_argument"
    with pytest.raises(RingError) as refused:
        Ring.attach(bad_name, RECORD_DTYPE)
    assert refused.value.status == "invalid_argument"


@pytest.mark.parametrize("capacity", [0, 1, 3, 1000, (1 << 32) + 1])
def test_invalid_capacities_are_refused(capacity):
    with pytest.raises(RingError) as refused:
        Ring.create(ring_name("capacity"), RECORD_DTYPE, capacity)
    assert refused.value.status == "invalid_argument"
    assert "power of two" in str(refused.value)


def test_invalid_dtype_and_policy_names_are_usage_errors():
    with pytest.raises(UsageError, match="multiple of 8 bytes"):
        Ring.create(ring_name("dtype"), np.dtype("<u4"), 16)
    with pytest.raises(UsageError, match="role must be one of"):
        Ring.create(ring_name("role"), RECORD_DTYPE, 16, role="writer")
    with pytest.raises(UsageError, match="overflow must be one of"):
        Ring.create(ring_name("overflow"), RECORD_DTYPE, 16, overflow="block")
    with pytest.raises(UsageError, match="stale must be one of"):
        Ring.attach(ring_name("stale"), RECORD_DTYPE, stale="ignore")


def test_stale_segment_of_a_dead_creator_refused_then_taken_over():
    name = ring_name("stale")
    creator = peer("create-and-die", name)
    wait_for_line(creator, f"created {name}")
    finish(creator)
    try:
        assert (SHM / name).exists()
        with pytest.raises(RingError) as refused:
            Ring.create(name, RECORD_DTYPE, 8)
        assert refused.value.status == "stale"
        assert f"dead process {creator.pid}" in str(refused.value)
        with Ring.create(name, RECORD_DTYPE, 32, role="producer", stale="takeover") as fresh:
            assert fresh.capacity_records == 32
            assert fresh.stats()["creator_pid"] == os.getpid()
            assert fresh.stats()["written_records"] == 0
        assert not (SHM / name).exists()
    finally:
        Ring.unlink(name)


# ----------------------------------------------------------------------------- views, closing


def test_claim_gives_writable_slots_and_peek_read_only_records():
    name = ring_name("views")
    with Ring.create(name, RECORD_DTYPE, 8, role="producer") as producer, \
            Ring.attach(name, RECORD_DTYPE, role="consumer") as consumer:
        assert len(consumer.peek()) == 0
        slots = producer.claim(5)
        assert len(slots) == 5 and slots.flags.writeable and slots.dtype == RECORD_DTYPE
        fill(slots[:3], 0)
        assert len(consumer.peek()) == 0  # claimed is not published
        producer.publish(3)
        with pytest.raises(UsageError, match="exceeds the slots claimed"):
            producer.publish(6)
        seen = consumer.peek(10)
        assert len(seen) == 3 and not seen.flags.writeable
        with pytest.raises(ValueError):
            seen["sequence"][0] = 99
        verify(seen, 0)
        with pytest.raises(UsageError, match="exceeds the records peeked"):
            consumer.release(4)
        consumer.release(3)
        # Slots run to the end of the ring at most; the rest comes after the wrap.
        assert producer.write(make(3, 5)) == 5  # indices 3..7
        assert len(consumer.peek(2)) == 2
        consumer.release(2)
        slots = producer.claim(8)
        assert len(slots) == 5  # indices 8..12 wrap to slots 0..4; 5..7 are still unread
        fill(slots, 8)
        producer.publish(5)
        first = consumer.peek()
        assert len(first) == 3  # slots 5..7, up to the end of the ring
        verify(first, 5)
        consumer.release(3)
        verify(consumer.peek(), 8)


def test_wrong_end_and_closed_handles_raise_usage_errors():
    name = ring_name("closed-handle")
    producer = Ring.create(name, RECORD_DTYPE, 8, role="producer")
    consumer = Ring.attach(name, RECORD_DTYPE, role="consumer")
    with pytest.raises(UsageError, match="needs the consumer end"):
        producer.read()
    with pytest.raises(UsageError, match="needs the producer end"):
        consumer.write(make(0, 1))
    with pytest.raises(UsageError, match="must have dtype"):
        producer.write(np.zeros(1, dtype=MD_EVENT_DTYPE))
    producer.write(make(0, 2))
    view = consumer.peek()
    consumer.close()
    assert consumer.closed and "closed" in repr(consumer)
    for call in (consumer.read, consumer.peek, consumer.stats, consumer.peer_state,
                 consumer.heartbeat, lambda: len(consumer), lambda: consumer.release(1)):
        with pytest.raises(UsageError, match="is closed"):
            call()
    verify(view, 0)  # a view handed out before close still reads mapped memory
    assert producer.peer_state() == "closed"
    producer.close()
    with pytest.raises(UsageError, match="is closed"):
        producer.write(make(2, 1))
    producer.close()  # closing twice is harmless
    assert not (SHM / name).exists()
