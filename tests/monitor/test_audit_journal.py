"""The audit journal: round trips, torn last frames at every byte, damaged frames in the
middle, layout checks, a process killed while writing, concurrent writers, DuckDB queries and
the retraining rows."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from monitor_records import (CANCELLED, CHILD_ORDER, EXECUTION, FILL, REJECTED, audit,
                             decisions)
from sor import _core
from sor.errors import (AuditJournalCorruptError, AuditJournalError, AuditJournalLayoutError,
                        UsageError)
from sor.features import FEATURE_SCHEMA
from sor.monitor import journal as j
from sor.monitor.journal import AuditJournal, read_journal, read_run
from sor.ring import AUDIT_RECORD_DTYPE, DECISION_RECORD_DTYPE

HEAD = 9  # u32 length, u32 crc32, u8 type


def frame_offsets(path: Path) -> list[tuple[int, int]]:
    """Returns (start, end) of every frame of a journal file (parsed here independently)."""
    data = path.read_bytes()
    (length,) = struct.unpack_from("<I", data, 12)
    offset = 20 + length
    frames = []
    while offset < len(data):
        (size,) = struct.unpack_from("<I", data, offset)
        frames.append((offset, offset + HEAD + size))
        offset += HEAD + size
    return frames


def write_sample(path: Path) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    d1, d2 = decisions(3, seed=1), decisions(2, start_sequence=4, seed=2)
    a1 = audit([(CHILD_ORDER, 1, 1_000_100, 100, 0, 0), (EXECUTION, 1, 1_000_100, 100, FILL, 0)])
    with AuditJournal(path) as journal:
        journal.append_decisions(d1)
        journal.append_audit(a1)
        first = journal.append_event("operator", operator="alice", action="halt",
                                     reason="test", state=_core.RiskState.HALTED,
                                     count=np.int64(3))
        journal.append_decisions(d2)
        second = journal.append_event("guard_trip", reason="FEATURE_DRIFT", psi=0.7)
    return np.concatenate([d1, d2]), a1, [first, second]


def test_round_trip_keeps_every_record_and_event(tmp_path: Path) -> None:
    path = tmp_path / "run.sorj"
    d, a, events = write_sample(path)
    contents = read_journal(path)
    assert contents.decisions.dtype == DECISION_RECORD_DTYPE
    assert contents.decisions.tobytes() == d.tobytes()
    assert contents.audit.tobytes() == a.tobytes()
    assert contents.events == [
        {"ts_ns": events[0]["ts_ns"], "kind": "operator", "operator": "alice",
         "action": "halt", "reason": "test", "state": "HALTED", "count": 3},
        {"ts_ns": events[1]["ts_ns"], "kind": "guard_trip", "reason": "FEATURE_DRIFT",
         "psi": 0.7}]
    assert contents.torn_bytes == 0 and contents.skipped == []
    summary = contents.summary()
    assert summary["decisions"] == 5 and summary["children_sent"] == 5
    assert summary["audit_by_kind"] == {"CHILD_ORDER": 1, "EXECUTION": 1}
    assert summary["events_by_kind"] == {"operator": 1, "guard_trip": 1}


def test_a_directory_reads_every_run_in_order(tmp_path: Path) -> None:
    first = AuditJournal.new_run(tmp_path / "audit")
    first.append_decisions(decisions(2))
    first.close()
    time.sleep(0.001)
    second = AuditJournal(tmp_path / "audit")  # an existing directory: a new run file
    second.append_decisions(decisions(3, start_sequence=1, seed=5))
    second.close()
    assert first.path != second.path
    contents = read_journal(tmp_path / "audit")
    assert [r.path for r in contents.runs] == [first.path, second.path]
    assert len(contents.decisions) == 5
    runs = contents.query("select run, count(*) as n from decisions group by run order by run")
    assert runs.column("n").to_pylist() == [2, 3]
    assert runs.column("run").to_pylist() == sorted([first.run_id, second.run_id])


def test_a_torn_last_frame_is_skipped_at_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "run.sorj"
    d, a, _ = write_sample(path)
    data = path.read_bytes()
    frames = frame_offsets(path)
    assert len(frames) == 5
    last_start, last_end = frames[-1]
    assert last_end == len(data)
    # every cut inside the last frame (its head and its payload) leaves the first 4 frames
    torn = tmp_path / "torn.sorj"
    for cut in range(last_start + 1, last_end):
        torn.write_bytes(data[:cut])
        contents = read_journal(torn)
        assert contents.decisions.tobytes() == d.tobytes()
        assert contents.audit.tobytes() == a.tobytes()
        assert len(contents.events) == 1
        assert contents.torn_bytes == cut - last_start
        assert contents.torn_runs == 1
    # and a cut inside the decisions frame before it loses that frame and what follows
    start, end = frames[-2]
    for cut in range(start + 1, end, 97):
        torn.write_bytes(data[:cut])
        contents = read_journal(torn)
        assert len(contents.decisions) == 3 and len(contents.events) == 1


def test_reopening_cuts_a_torn_tail_and_appends_after_it(tmp_path: Path) -> None:
    path = tmp_path / "run.sorj"
    d, _, _ = write_sample(path)
    data = path.read_bytes()
    start, _ = frame_offsets(path)[-1]
    path.write_bytes(data[:start + 5])
    with AuditJournal(path) as journal:
        assert journal.torn_tail_bytes == 5
        journal.append_decisions(decisions(1, start_sequence=6))
    contents = read_journal(path)
    assert contents.torn_bytes == 0
    assert contents.decisions["sequence"].tolist() == [1, 2, 3, 4, 5, 6]
    assert [e["kind"] for e in contents.events] == ["operator"]


def test_a_damaged_frame_in_the_middle_is_an_error_naming_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "run.sorj"
    d, a, _ = write_sample(path)
    data = bytearray(path.read_bytes())
    start, end = frame_offsets(path)[1]  # the audit frame
    data[start + HEAD + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(AuditJournalCorruptError) as raised:
        read_journal(path)
    assert raised.value.offset == start
    assert raised.value.damaged_bytes == end - start
    assert str(start) in str(raised.value)
    with pytest.raises(AuditJournalCorruptError):
        AuditJournal(path)  # not appended to either
    contents = read_journal(path, on_corrupt="skip")
    assert contents.skipped == [(str(path), start, end - start)]
    assert contents.decisions.tobytes() == d.tobytes()
    assert len(contents.audit) == 0
    assert len(contents.events) == 2


def test_a_bad_crc_on_the_last_frame_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "run.sorj"
    write_sample(path)
    data = bytearray(path.read_bytes())
    start, end = frame_offsets(path)[-1]
    data[start + 4] ^= 0x01  # its CRC
    path.write_bytes(bytes(data))
    contents = read_journal(path)
    assert contents.torn_bytes == end - start
    assert len(contents.events) == 1


def _header(**changes) -> bytes:
    header = {"format": "sor.audit_journal", "format_version": 1, "run_id": "x",
              "created_ns": 1, "pid": 1, "host": "h", **j.layout(), "metadata": {}}
    header.update(changes)
    body = json.dumps(header).encode()
    return struct.pack("<8sHHII", j.MAGIC, 1, 0, len(body), zlib.crc32(body)) + body


def test_a_file_with_another_layout_is_refused_naming_the_difference(tmp_path: Path) -> None:
    path = tmp_path / "other.sorj"
    layout = j.layout()
    other = json.loads(json.dumps(layout["record_types"]))
    other["DECISIONS"]["itemsize"] = 320
    other["DECISIONS"]["descr"] = other["DECISIONS"]["descr"][:-1]
    path.write_bytes(_header(record_types=other))
    with pytest.raises(AuditJournalLayoutError, match="DECISIONS records were written with "
                                                      "another layout \\(320 bytes"):
        read_journal(path)
    with pytest.raises(AuditJournalLayoutError):
        AuditJournal(path)
    path.write_bytes(_header(feature_schema={"hash": "0123456789abcdef"}))
    with pytest.raises(AuditJournalLayoutError, match="feature schema 0123456789abcdef"):
        read_journal(path)
    good = _header()
    path.write_bytes(good[:8] + struct.pack("<H", 2) + good[10:])
    with pytest.raises(AuditJournalLayoutError, match="format version 2"):
        read_journal(path)
    path.write_bytes(b"NOTAJRNL" + good[8:])
    with pytest.raises(AuditJournalLayoutError, match="not an audit journal"):
        read_journal(path)
    path.write_bytes(good[:-3] + b"}}}")
    with pytest.raises(AuditJournalLayoutError, match="CRC"):
        read_journal(path)
    path.write_bytes(good[:30])  # a header torn while the run was created
    contents = read_journal(path)
    assert len(contents.decisions) == 0 and contents.torn_bytes == 30


def test_bad_appends_are_refused_and_nothing_is_lost(tmp_path: Path) -> None:
    journal = AuditJournal(tmp_path / "run.sorj")
    journal.append_decisions(decisions(2))
    with pytest.raises(UsageError, match="DECISIONS rows must have dtype"):
        journal.append_decisions(np.zeros(2, AUDIT_RECORD_DTYPE))
    with pytest.raises(UsageError, match="cannot be journaled"):
        journal.append_event("operator", who=object())
    with pytest.raises(UsageError, match="non-empty string"):
        journal.append_event("")
    journal.append_audit(np.zeros(0, AUDIT_RECORD_DTYPE))  # nothing to do
    journal.close()
    with pytest.raises(AuditJournalError, match="closed"):
        journal.append_event("late")
    assert len(read_journal(journal.path).decisions) == 2
    with pytest.raises(AuditJournalError, match="no audit journal"):
        read_journal(tmp_path / "missing.sorj")


def test_appends_are_buffered_until_a_flush(tmp_path: Path) -> None:
    journal = AuditJournal(tmp_path / "run.sorj", flush_interval_s=3600, flush_bytes=1 << 30)
    header_size = os.path.getsize(journal.path)
    journal.append_decisions(decisions(10))
    journal.append_event("operator", action="x")
    assert os.path.getsize(journal.path) == header_size  # no system call yet
    assert journal.stats()["pending_bytes"] == 10 * 384 + 2 * HEAD + \
        len(b'{"ts_ns":1700000000000000000,"kind":"operator","action":"x"}')
    journal.flush()
    assert journal.stats()["flushes"] == 1 and journal.stats()["pending_bytes"] == 0
    assert len(read_run(journal.path).decisions) == 10  # readable while open
    small = AuditJournal(tmp_path / "small.sorj", flush_bytes=1)
    small.append_decisions(decisions(1))
    assert small.stats()["flushes"] == 1  # flushed by size at the append
    small.close()
    journal.close()


def test_large_batches_split_into_frames(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(j, "RECORDS_PER_FRAME", 7)
    d = decisions(30)
    with AuditJournal(tmp_path / "run.sorj") as journal:
        journal.append_decisions(d)
    assert len(frame_offsets(tmp_path / "run.sorj")) == 5
    assert read_journal(tmp_path / "run.sorj").decisions.tobytes() == d.tobytes()


def test_concurrent_writers_interleave_whole_frames(tmp_path: Path) -> None:
    journal = AuditJournal(tmp_path / "run.sorj", flush_bytes=4096)
    per_thread, batches = 13, 40

    def write(thread: int) -> None:
        for batch in range(batches):
            start = 1 + thread * 10_000 + batch * per_thread
            journal.append_decisions(decisions(per_thread, start_sequence=start, seed=start))
            journal.append_event("tick", thread=thread, batch=batch)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    journal.close()
    contents = read_journal(journal.path)
    assert len(contents.decisions) == 4 * batches * per_thread
    sequences = contents.decisions["sequence"].astype(np.int64)
    for t in range(4):
        mine = sequences[(sequences > t * 10_000) & (sequences <= (t + 1) * 10_000)]
        assert mine.tolist() == list(range(t * 10_000 + 1, t * 10_000 + 1 + batches * per_thread))
    assert len(contents.events) == 4 * batches


WRITER = """
import sys
sys.path.insert(0, sys.argv[2])
from monitor_records import decisions
from sor.monitor.journal import AuditJournal
journal = AuditJournal(sys.argv[1], flush_interval_s=0)
sequence = 1
print("ready", flush=True)
while True:
    journal.append_decisions(decisions(50, start_sequence=sequence, seed=sequence))
    journal.append_event("batch", last=sequence + 49)
    sequence += 50
"""


@pytest.mark.slow
def test_a_process_killed_while_writing_leaves_a_readable_prefix(tmp_path: Path) -> None:
    path = tmp_path / "killed.sorj"
    # the writer imports the same sor as this process (installed, or the source tree with its
    # built extension), never the source tree of a clean clone, which has no extension
    import sor

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(sor.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    for attempt in range(3):
        if path.exists():
            path.unlink()
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(path),
                                    str(Path(__file__).parent)], stdout=subprocess.PIPE,
                                   env=env)
        try:
            assert process.stdout.readline().strip() == b"ready"
            time.sleep(0.3 + 0.1 * attempt)
            os.kill(process.pid, signal.SIGKILL)
        finally:
            process.wait(10)
            process.stdout.close()
        contents = read_journal(path)  # a torn tail at most, never damage in the middle
        sequences = contents.decisions["sequence"].tolist()
        assert len(sequences) >= 50
        assert sequences == list(range(1, len(sequences) + 1))
        assert len(sequences) % 50 == 0  # whole frames only
        for i in range(len(sequences) // 50):
            assert contents.decisions[i * 50:(i + 1) * 50].tobytes() == \
                decisions(50, start_sequence=1 + 50 * i, seed=1 + 50 * i).tobytes()
        lasts = [e["last"] for e in contents.events]
        assert lasts == list(range(50, 50 * len(lasts) + 1, 50))
        assert len(sequences) // 50 - len(lasts) in (0, 1)


def test_sql_over_the_three_tables(tmp_path: Path) -> None:
    path = tmp_path / "run.sorj"
    d = decisions(6, venue_ids=np.array([0, 1, 1, 2, 2, 2]), quantity=200)
    d["risk_reason"][5] = int(_core.RejectReason.MAX_ORDER_NOTIONAL)
    d["flags"][5] = 0
    d["child_order_id"][5] = 0
    a = audit([(CHILD_ORDER, c, 1_000_100, 200, 0, v) for c, v in [(1, 0), (2, 1), (3, 1),
                                                                      (4, 2), (5, 2)]] +
              [(EXECUTION, 2, 1_000_100, 200, FILL, 1), (EXECUTION, 4, 1_000_090, 50, FILL, 2),
               (EXECUTION, 4, 0, 0, CANCELLED, 2)])
    with AuditJournal(path) as journal:
        journal.append_decisions(d)
        journal.append_audit(a)
        journal.append_event("operator", operator="bob", action="halt", reason="drill")
    contents = read_journal(path)
    table = contents.to_arrow()["decisions"]
    assert table.num_rows == 6
    for name in ("now_ns", "child_quantity", "venue_id", "side", "arrival_mid_ticks",
                 "fill_probability", "action_value", "risk_reason", "risk_reason_name",
                 "inference_ns", *FEATURE_SCHEMA.names):
        assert name in table.column_names
    assert table.column("nbbo.spread_bps").to_pylist() == pytest.approx(
        d["features"][:, FEATURE_SCHEMA.index("nbbo.spread_bps")].tolist())
    per_venue = contents.query(
        'select venue_id, count(*) as children, sum(child_quantity) as shares from decisions '
        'where child_sent group by venue_id order by venue_id')
    assert per_venue.to_pydict() == {"venue_id": [0, 1, 2], "children": [1, 2, 2],
                                     "shares": [200, 400, 400]}
    rejected = contents.query("select risk_reason_name from decisions where risk_reason > 0")
    assert rejected.column(0).to_pylist() == ["MAX_ORDER_NOTIONAL"]
    filled = contents.query(
        "select d.child_order_id, sum(a.value_b) as filled from decisions d join audit a "
        "on a.child_order_id = d.child_order_id and a.run = d.run "
        "where a.kind_name = 'EXECUTION' and a.reference = 2 group by 1 order by 1")
    assert filled.to_pydict() == {"child_order_id": [2, 4], "filled": [200, 50]}
    spread = contents.query('select avg("nbbo.spread_bps") from decisions').column(0)[0].as_py()
    assert spread == pytest.approx(float(d["features"][:, 13].astype(np.float64).mean()), rel=1e-6)
    operator = contents.query("select json_extract_string(data, '$.operator') from events "
                              "where kind = 'operator'")
    assert operator.column(0).to_pylist() == ["bob"]
    with pytest.raises(UsageError, match="query failed"):
        contents.query("select nothing from nowhere")


def test_training_rows_join_each_sent_child_with_its_executions(tmp_path: Path) -> None:
    d = decisions(4, quantity=300, fill_probability=np.array([0.9, 0.5, 0.2, 0.7]),
                  venue_ids=np.array([0, 1, 2, 3]), side=int(_core.Side.SELL))
    unsent = decisions(1, start_sequence=5, sent=False)
    a = audit([(CHILD_ORDER, c, 1_000_100, 300, 0, 0) for c in (1, 2, 3, 4)] + [
        (EXECUTION, 1, 0, 0, int(_core.ExecKind.ACK), 0),
        (EXECUTION, 1, 1_000_100, 100, FILL, 0),
        (EXECUTION, 1, 1_000_200, 200, FILL, 0),   # child 1: filled in full in two fills
        (EXECUTION, 2, 1_000_000, 120, FILL, 1),
        (EXECUTION, 2, 0, 0, CANCELLED, 1),        # child 2: 120 of 300, then cancelled
        (EXECUTION, 3, 0, 0, REJECTED, 2),         # child 3: rejected
        (EXECUTION, 4, 1_000_000, 100, FILL, 3),   # child 4: still open
        (EXECUTION, 99, 1_000_000, 100, FILL, 3),  # another child, not in the decisions
    ])
    with AuditJournal(tmp_path / "run.sorj") as journal:
        journal.append_decisions(np.concatenate([d, unsent]))
        journal.append_audit(a)
    contents = read_journal(tmp_path / "run.sorj")
    rows = contents.training_rows()
    assert rows["child_order_id"].tolist() == [1, 2, 3]
    assert rows["filled_quantity"].tolist() == [300, 120, 0]
    assert rows["fill_fraction"].tolist() == pytest.approx([1.0, 0.4, 0.0])
    assert rows["filled"].tolist() == [True, False, False]
    assert rows["avg_fill_price_ticks"][:2].tolist() == pytest.approx(
        [(100 * 1_000_100 + 200 * 1_000_200) / 300, 1_000_000])
    assert np.isnan(rows["avg_fill_price_ticks"][2])
    assert rows["side"].tolist() == [-1, -1, -1]
    assert rows["fill_probability"].tolist() == pytest.approx([0.9, 0.5, 0.2])
    ts = {int(r["sequence"]): int(r["ts_ns"]) for r in a}
    assert rows["filled_in_full_ns"].tolist() == [ts[7], 0, 0]
    assert rows["done_ns"].tolist() == [ts[7], ts[9], ts[10]]
    for name in FEATURE_SCHEMA.names:
        assert np.array_equal(rows[name], d["features"][:3, FEATURE_SCHEMA.index(name)])
    everything = contents.training_rows(finished_only=False)
    assert everything["child_order_id"].tolist() == [1, 2, 3, 4]
    assert everything["done"].tolist() == [True, True, True, False]
    assert everything["filled_quantity"].tolist()[3] == 100


@pytest.mark.slow
def test_a_real_session_journals_queries_and_trains(tmp_path: Path, routed) -> None:
    d, a = routed.decisions, routed.audit
    assert len(d) > 20 and len(a) > 50
    with AuditJournal.new_run(tmp_path / "audit") as journal:
        for start in range(0, len(d), 37):
            journal.append_decisions(d[start:start + 37])
        for start in range(0, len(a), 101):
            journal.append_audit(a[start:start + 101])
    contents = read_journal(tmp_path / "audit")
    assert contents.decisions.tobytes() == d.tobytes()
    assert contents.audit.tobytes() == a.tobytes()
    sent = int(np.count_nonzero(d["flags"] & 4))
    assert contents.query("select count(*) from decisions where child_sent").column(0)[0] \
        .as_py() == sent
    children = contents.query("select count(*) from audit where kind_name = 'CHILD_ORDER'")
    assert children.column(0)[0].as_py() == sent
    rows = contents.training_rows(finished_only=False)
    assert len(rows["child_order_id"]) == sent
    fills = a[(a["kind"] == EXECUTION) & (a["reference"] == FILL)]
    assert int(rows["filled_quantity"].sum()) == int(fills["value_b"].sum())
    assert np.all(rows["filled_quantity"] <= rows["child_quantity"])
    assert np.all((rows["fill_probability"] >= 0) & (rows["fill_probability"] <= 1))
    done = contents.training_rows()
    assert 0 < len(done["child_order_id"]) <= sent
    assert np.all(done["done_ns"] > 0)


def test_record_dtypes_match_the_engine() -> None:
    assert DECISION_RECORD_DTYPE.itemsize == 384 and AUDIT_RECORD_DTYPE.itemsize == 64
    layout = j.layout()
    assert layout["record_types"]["DECISIONS"]["itemsize"] == 384
    assert layout["feature_schema"]["hash"] == FEATURE_SCHEMA.version_hash
