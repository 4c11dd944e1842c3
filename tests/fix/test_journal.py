"""The order-state journal: records round-trip, a torn tail is detected and cut off at any
byte, damage in the middle is refused, and a writer killed with SIGKILL leaves a journal that
reads back whole up to its last flush."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from sor.errors import JournalCorruptError, JournalError, UsageError
from sor.fix import journal
from sor.fix.journal import SCHEMAS, Journal, RecordKind


def _sample(kind: RecordKind, k: int) -> tuple:
    values = []
    for i, (_, code) in enumerate(SCHEMAS[kind]):
        if code == "q":
            values.append((k * 1_000_003 + i) * (-1 if i % 3 == 2 else 1))
        elif code == "s":
            values.append(f"text-{k}-{i}-é")
        else:
            values.append(bytes([k % 256, 1, 0, 255]) * (i + 1))
    return tuple(values)


def _write_all(path, rounds: int = 3) -> list[tuple[RecordKind, tuple]]:
    written = []
    with Journal(path) as j:
        for k in range(rounds):
            for kind in RecordKind:
                values = _sample(kind, k)
                j.append(kind, *values)
                written.append((kind, values))
            j.flush()
    return written


def test_every_record_kind_round_trips(tmp_path):
    path = tmp_path / "state" / "journal"
    written = _write_all(path)
    with Journal(path) as j:
        assert j.torn_tail_bytes == 0
        got = [(r.kind, tuple(r.fields.values())) for r in j.records]
        assert [r.fields.keys() for r in j.records] == [
            dict.fromkeys(name for name, _ in SCHEMAS[kind]).keys() for kind, _ in written]
    assert got == written
    records, torn = journal.read(path)
    assert torn == 0 and len(records) == len(written)
    assert records[1].fields["ts_ns"] == written[1][1][1]  # PARENT_NEW field by name
    assert records[1].ts_ns == written[1][1][1]


def test_appends_after_reopen_follow_the_old_records(tmp_path):
    path = tmp_path / "journal"
    with Journal(path) as j:
        j.append(RecordKind.INCARNATION, 1, 10, 100)
    with Journal(path) as j:
        assert [r.incarnation for r in j.records] == [1]
        j.append(RecordKind.INCARNATION, 2, 20, 200)
        assert j.pending_bytes > 0
        j.flush()
        assert j.pending_bytes == 0
    with Journal(path) as j:
        assert [r.incarnation for r in j.records] == [1, 2]


def test_unflushed_records_are_not_in_the_file(tmp_path):
    path = tmp_path / "journal"
    j = Journal(path)
    j.append(RecordKind.PARENT_DONE, 5, 1)
    assert os.path.getsize(path) == 0
    j.flush()
    size = os.path.getsize(path)
    assert size == j.size_bytes > 0
    j.close()


def test_a_torn_tail_is_cut_off_at_every_byte(tmp_path):
    path = tmp_path / "journal"
    _write_all(path, rounds=1)
    data = path.read_bytes()
    records, _ = journal.scan(data)
    last = records[-1].offset
    for cut in range(last + 1, len(data)):
        torn = tmp_path / f"torn-{cut}"
        torn.write_bytes(data[:cut])
        with Journal(torn) as j:
            assert len(j.records) == len(records) - 1
            assert j.torn_tail_bytes == cut - last
            j.append(RecordKind.PARENT_DONE, 77, 2)
        with Journal(torn) as j:  # the new record follows the cut, the file reads whole
            assert j.torn_tail_bytes == 0
            assert j.records[-1].kind is RecordKind.PARENT_DONE
            assert j.records[-1].parent_order_id == 77


def test_a_bad_crc_on_the_last_frame_is_a_torn_tail(tmp_path):
    path = tmp_path / "journal"
    _write_all(path, rounds=1)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40
    path.write_bytes(bytes(data))
    with Journal(path) as j:
        assert len(j.records) == len(RecordKind) - 1
        assert j.torn_tail_bytes > 0


def test_damage_in_the_middle_is_refused_and_names_the_offset(tmp_path):
    path = tmp_path / "journal"
    _write_all(path, rounds=2)
    data = bytearray(path.read_bytes())
    records, _ = journal.scan(bytes(data))
    victim = records[3]
    data[victim.offset + 14] ^= 0xFF  # a payload byte: the CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match=f"offset {victim.offset}") as info:
        Journal(path)
    assert info.value.offset == victim.offset
    assert path.read_bytes() == bytes(data)  # nothing was cut


def test_bad_appends_and_use_after_close_are_refused(tmp_path):
    j = Journal(tmp_path / "journal")
    with pytest.raises(UsageError, match="PARENT_DONE takes 2 fields"):
        j.append(RecordKind.PARENT_DONE, 1)
    j.close()
    with pytest.raises(JournalError, match="closed"):
        j.append(RecordKind.PARENT_DONE, 1, 0)
    with pytest.raises(UsageError, match="sync"):
        Journal(tmp_path / "other", sync="sometimes")


def test_fsync_mode_writes_through(tmp_path):
    path = tmp_path / "journal"
    with Journal(path, sync="fsync") as j:
        j.append(RecordKind.INCARNATION, 3, 4, 5)
        j.flush()
        assert journal.read(path)[0][0].incarnation == 3


_WRITER = """
import sys
from sor.fix.journal import Journal, RecordKind
with Journal(sys.argv[1]) as j:
    n = 0
    while True:
        for _ in range(1 + n % 7):
            j.append(RecordKind.CHILD_EXECUTION, 1, n, 2, 100, 1_000_000 + n, 0, n, f"E{n}")
            n += 1
        j.flush()
        if n > 200 and n % 50 < 7:
            print(n, flush=True)
"""


def test_a_writer_killed_with_sigkill_leaves_every_flushed_record(tmp_path):
    path = tmp_path / "journal"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    process = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], env=env,
                               stdout=subprocess.PIPE, text=True)
    try:
        reported = int(process.stdout.readline())
        time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stdout.close()
    with Journal(path) as j:
        numbers = [r.child_order_id for r in j.records]
    assert len(numbers) >= reported
    assert numbers == list(range(len(numbers)))  # no gap, no duplicate, in order
    assert all(r.exec_id == f"E{r.child_order_id}" for r in journal.read(path)[0])
