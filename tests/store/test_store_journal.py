"""Journals into the store: rows and partitions, idempotent re-ingest, a grown run replaced,
a corrupt journal refused, recovery after a crash before the manifest, concurrent ingests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import sor
from sor import _core
from sor.errors import StoreError
from sor.monitor.journal import read_run, training_rows, JournalContents
from sor.store import DataStore
from store_helpers import METADATA, TRADING_DAY, VENUE_NAMES, snapshot, write_journal

JOURNAL_DATASETS = ("decisions", "executions", "children", "events")


def expected_counts(path: Path) -> dict[str, int]:
    run = read_run(path)
    executions = int(np.count_nonzero(run.audit["kind"] == int(_core.AuditKind.EXECUTION)))
    children = len(training_rows(JournalContents([run]), finished_only=False)["child_order_id"])
    return {"decisions": len(run.decisions), "executions": executions, "children": children,
            "events": len(run.events)}


def stored_counts(store: DataStore) -> dict[str, int]:
    return {name: int(store.query(f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py())
            for name in JOURNAL_DATASETS}


def test_journal_rows_and_partitions(tmp_path, session_records):
    path = write_journal(tmp_path / "run.sorj", session_records, metadata=METADATA)
    store = DataStore(tmp_path / "store")
    result = store.ingest_journal(path)
    run_id = read_run(path).run_id
    assert result.source_id == f"journal-{run_id}" and result.status == "ingested"
    assert result.rows == expected_counts(path)
    assert stored_counts(store) == expected_counts(path)
    assert result.rows["executions"] > 0 and result.rows["children"] > 0
    listing = store.ls()
    assert {row["date"] for row in listing} == {TRADING_DAY}
    assert {row["instrument"] for row in listing if row["dataset"] != "events"} == {"AAPL"}
    venues_used = {VENUE_NAMES[int(v)] for v in
                   session_records.decisions["context"]["venue_id"].tolist()}
    assert {row["venue"] for row in listing if row["dataset"] == "decisions"} == venues_used
    assert [(r["instrument"], r["venue"]) for r in listing if r["dataset"] == "events"] == \
        [("ALL", "ALL")]
    # each file's partition is the row's own venue and instrument
    check = store.query("SELECT count(*) AS bad FROM executions e WHERE e.venue <> CASE "
                        "e.venue_id WHEN 0 THEN 'XNAS' WHEN 1 THEN 'BATS' WHEN 2 THEN 'EDGX' "
                        "WHEN 3 THEN 'IEXG' WHEN 4 THEN 'DARK' END OR e.instrument <> 'AAPL'")
    assert check.column("bad")[0].as_py() == 0
    children = store.read("children", venues=["XNAS"])
    assert children.num_rows == int(np.count_nonzero(
        training_rows(JournalContents([read_run(path)]), finished_only=False)["venue_id"] == 0))
    assert set(children.column("venue").to_pylist()) == {"XNAS"}
    assert {"now_ns", "instrument_id", "filled", "sent_ns"} <= set(children.column_names)
    now = children.column("now_ns").to_numpy()
    assert np.all((now > 0) & (now // 86_400_000_000_000 == 19676))  # 2023-11-15, market time
    fills = store.query("SELECT kind_name, sum(quantity) AS q FROM executions GROUP BY 1")
    by_kind = dict(zip(fills.column("kind_name").to_pylist(), fills.column("q").to_pylist()))
    audit = session_records.audit
    fill_rows = audit[(audit["kind"] == int(_core.AuditKind.EXECUTION)) &
                      (audit["reference"] == int(_core.ExecKind.FILL))]
    assert int(by_kind["FILL"]) == int(fill_rows["value_b"].sum())


def test_journal_without_metadata_uses_fallbacks(tmp_path, session_records):
    path = write_journal(tmp_path / "bare.sorj", session_records, metadata=None)
    store = DataStore(tmp_path / "store")
    store.ingest_journal(path)
    listing = store.ls("decisions")
    # the UTC date of the market time (context.now_ns), ids for names
    assert {row["date"] for row in listing} == {TRADING_DAY}
    assert {row["instrument"] for row in listing} == {"id-0"}
    assert {row["venue"] for row in listing} <= {f"id-{v}" for v in range(5)}
    assert sum(row["rows"] for row in listing) == len(session_records.decisions)


def test_same_journal_twice_is_stored_once(tmp_path, session_records):
    path = write_journal(tmp_path / "run.sorj", session_records, metadata=METADATA)
    store = DataStore(tmp_path / "store")
    first = store.ingest_journal(path)
    before = snapshot(store.root)
    second = store.ingest_journal(path)
    third = store.ingest(tmp_path)  # the folder: the same file again
    assert second.status == "unchanged" and third[0].status == "unchanged"
    assert second.rows == first.rows and sorted(second.files) == sorted(first.files)
    assert snapshot(store.root) == before
    assert stored_counts(store) == first.rows


def test_grown_journal_replaces_its_rows(tmp_path, session_records):
    path = tmp_path / "run.sorj"
    d, a = session_records.decisions, session_records.audit
    write_journal(path, session_records, metadata=METADATA, decisions=slice(0, len(d) // 2),
                  audit=slice(0, len(a) // 2))
    store = DataStore(tmp_path / "store")
    first = store.ingest_journal(path)
    # the run goes on: the rest of its records are appended to the same file
    write_journal(path, session_records, metadata=METADATA, decisions=slice(len(d) // 2, None),
                  audit=slice(len(a) // 2, None))
    second = store.ingest_journal(path)
    assert second.source_id == first.source_id and second.status == "replaced"
    assert second.rows == expected_counts(path)
    assert second.rows["decisions"] == len(d) and second.rows["events"] == 2
    assert stored_counts(store) == second.rows
    assert len(store.sources()) == 1
    duplicates = store.query("SELECT count(*) AS n FROM (SELECT sequence FROM decisions "
                             "GROUP BY sequence HAVING count(*) > 1)")
    assert duplicates.column("n")[0].as_py() == 0


def test_corrupt_journal_changes_nothing(tmp_path, session_records):
    good = write_journal(tmp_path / "good.sorj", session_records, metadata=METADATA)
    store = DataStore(tmp_path / "store")
    store.ingest_journal(good)
    before = snapshot(store.root)
    # damage in the middle: a byte of the first frame's payload flipped, frames after it valid
    data = bytearray(good.read_bytes())
    bad = tmp_path / "bad.sorj"
    header = 20 + int.from_bytes(data[12:16], "little")  # magic, version, 0, n, crc32
    data[header + 20] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(StoreError) as error:
        store.ingest_journal(bad)
    assert str(bad) in str(error.value) and "corrupt" in str(error.value).lower()
    not_journal = tmp_path / "text.sorj"
    not_journal.write_text("hello, not a journal")
    with pytest.raises(StoreError, match="text.sorj"):
        store.ingest(not_journal)
    assert snapshot(store.root) == before


def test_crash_before_the_manifest_is_recovered(tmp_path, session_records, monkeypatch):
    path = write_journal(tmp_path / "run.sorj", session_records, metadata=METADATA)
    store = DataStore(tmp_path / "store")

    def crash(self, manifest_path, manifest):
        raise OSError("simulated crash before the manifest")

    monkeypatch.setattr(DataStore, "_write_manifest", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.ingest_journal(path)
    orphans = list(store.root.rglob("*.parquet"))
    assert orphans  # the files were written, the manifest not
    assert store.ls() == [] and store.sources() == []  # and nobody reads them
    monkeypatch.undo()
    result = store.ingest_journal(path)
    assert result.status == "ingested"
    assert stored_counts(store) == expected_counts(path)
    assert sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*.parquet")) \
        == sorted(result.files)

    # a crash while replacing a grown run: the old manifest is gone, the next ingest redoes it
    write_journal(path, session_records, metadata=METADATA, decisions=slice(0, 5),
                  audit=slice(0, 5))
    monkeypatch.setattr(DataStore, "_write_manifest", crash)
    with pytest.raises(OSError):
        store.ingest_journal(path)
    monkeypatch.undo()
    again = store.ingest_journal(path)
    assert again.status == "ingested" and stored_counts(store) == expected_counts(path)


_INGEST = """
import sys
from sor.store import DataStore
for result in DataStore(sys.argv[1]).ingest(sys.argv[2]):
    print(result.line())
"""


def test_concurrent_ingests_stay_consistent(tmp_path, session_records):
    folder = tmp_path / "runs"
    folder.mkdir()
    for k in range(3):
        write_journal(folder / f"run{k}.sorj", session_records, metadata=METADATA,
                      decisions=slice(k * 3, None), run_id=f"run{k}")
    store_root = tmp_path / "store"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(sor.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    processes = [subprocess.Popen([sys.executable, "-c", _INGEST, str(store_root), str(folder)],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out)
    statuses = sorted(line.split()[1] for out in outputs for line in out.splitlines())
    # every source stored by exactly one of the two processes
    assert statuses == ["ingested"] * 3 + ["unchanged"] * 3
    store = DataStore(store_root)
    assert len(store.sources()) == 3
    expected = {name: 0 for name in JOURNAL_DATASETS}
    for k in range(3):
        for name, count in expected_counts(folder / f"run{k}.sorj").items():
            expected[name] += count
    assert stored_counts(store) == expected
    files = sorted(store.root.rglob("*.parquet"))
    assert sum(pq.read_metadata(f).num_rows for f in files) == sum(expected.values())
    assert not [p for p in store.root.rglob(".*tmp-*")]
