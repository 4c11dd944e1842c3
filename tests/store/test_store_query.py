"""Reading the store: DuckDB queries from Python and the CLI, ls totals against the Parquet
files, write_dataset (what sor retrain uses for labelled) and its errors."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sor import _core
from sor.cli import main
from sor.errors import StoreError
from sor.store import DataStore
from store_helpers import METADATA, TRADING_DAY, VENUE_NAMES, write_journal


@pytest.fixture()
def filled_store(tmp_path, session_records, market):
    events, _ = market
    store = DataStore(tmp_path / "store")
    store.ingest_journal(write_journal(tmp_path / "run.sorj", session_records,
                                       metadata=METADATA))
    store.ingest_events(events[2][:3000], venue_names=VENUE_NAMES, instrument_names={0: "AAPL"})
    return store


def fills_per_venue(session_records) -> dict[str, int]:
    audit = session_records.audit
    fills = audit[(audit["kind"] == int(_core.AuditKind.EXECUTION)) &
                  (audit["reference"] == int(_core.ExecKind.FILL))]
    venues, counts = np.unique(fills["venue_id"], return_counts=True)
    return {VENUE_NAMES[int(v)]: int(c) for v, c in zip(venues, counts)}


def test_query_from_python(filled_store, session_records):
    table = filled_store.query("SELECT venue, count(*) AS fills FROM executions "
                               "WHERE kind_name = 'FILL' GROUP BY venue ORDER BY venue")
    assert dict(zip(table.column("venue").to_pylist(), table.column("fills").to_pylist())) == \
        fills_per_venue(session_records)
    joined = filled_store.query(
        "SELECT count(*) AS n FROM children c JOIN decisions d "
        "ON c.run = d.run AND c.child_order_id = d.child_order_id AND d.child_sent")
    assert joined.column("n")[0].as_py() == filled_store.read("children").num_rows
    dates = filled_store.query("SELECT DISTINCT date FROM quotes").column("date").to_pylist()
    assert dates == [datetime.date(2023, 11, 15)]
    with filled_store.connect() as connection:
        names = {row[0] for row in connection.execute("SHOW TABLES").fetchall()}
    assert names == {"market_data", "quotes", "decisions", "executions", "children", "events"}


def test_query_errors_name_the_problem(filled_store, tmp_path):
    with pytest.raises(StoreError, match="labelled.*datasets in the store: children"):
        filled_store.query("SELECT * FROM labelled")
    with pytest.raises(StoreError, match="query failed: Parser Error"):
        filled_store.query("SELEC 1")
    with pytest.raises(StoreError, match="no dataset 'labelled'.*market_data"):
        filled_store.read("labelled")
    with pytest.raises(StoreError, match="none"):
        DataStore(tmp_path / "empty").query("SELECT * FROM quotes")


def test_ls_totals_equal_the_parquet_files(filled_store):
    listing = filled_store.ls()
    files = sorted(filled_store.root.rglob("*.parquet"))
    assert sum(row["files"] for row in listing) == len(files)
    assert sum(row["rows"] for row in listing) == sum(pq.read_metadata(f).num_rows
                                                      for f in files)
    assert sum(row["bytes"] for row in listing) == sum(f.stat().st_size for f in files)
    for row in listing:
        paths = filled_store.files(row["dataset"], dates=[row["date"]],
                                   instruments=[row["instrument"]], venues=[row["venue"]])
        assert len(paths) == row["files"]
        assert sum(pq.read_metadata(p).num_rows for p in paths) == row["rows"]
        assert all(f"date={row['date']}/instrument={row['instrument']}/venue={row['venue']}"
                   in p.as_posix() for p in paths)


def test_cli_ingest_ls_query(tmp_path, session_records, market, capsys, monkeypatch):
    journal = write_journal(tmp_path / "run.sorj", session_records, metadata=METADATA)
    events, midnight = market
    from sor.feed import itch

    feed = tmp_path / "feed.itch"
    feed.write_bytes(itch.encode(events[0][:2000], directory={0: "AAPL"},
                                 session_date_ns=midnight))
    store = tmp_path / "store"
    assert main(["data", "ingest", str(journal), str(feed), "--store", str(store),
                 "--venue", "XNAS", "--date", TRADING_DAY]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(" ingested " in line for line in lines)
    assert lines[1].startswith("itch-") and "market_data=2001" in lines[1]
    monkeypatch.setenv("SOR_STORE", str(store))  # the default store
    assert main(["data", "ingest", str(journal)]) == 0
    assert " unchanged " in capsys.readouterr().out
    assert main(["data", "ls"]) == 0
    out = capsys.readouterr().out.splitlines()
    total = out[-1].split()
    listing = DataStore(store).ls()
    assert total[0] == "total" and int(total[2]) == sum(r["rows"] for r in listing)
    assert main(["data", "ls", "--dataset", "quotes"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 + 1 + 1
    sql = ("SELECT venue, count(*) AS fills FROM executions WHERE kind_name = 'FILL' "
           "GROUP BY venue ORDER BY venue")
    assert main(["data", "query", sql, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["venue"]: r["fills"] for r in rows} == fills_per_venue(session_records)
    assert main(["data", "query", sql, "--format", "csv"]) == 0
    csv_lines = capsys.readouterr().out.splitlines()
    assert csv_lines[0] == "venue,fills" and len(csv_lines) == 1 + len(rows)
    assert main(["data", "query", "SELECT * FROM market_data", "--limit", "3"]) == 0
    table_out = capsys.readouterr().out.splitlines()
    assert len(table_out) == 2 + 3 + 1 and "more rows" in table_out[-1]
    assert main(["data", "query", "SELECT * FROM nothing_here"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sor: error: query failed") and "market_data" in err
    assert main(["data", "ingest", str(tmp_path / "missing.sorj")]) == 2
    assert "missing.sorj" in capsys.readouterr().err


def labelled_table(n: int, shift: float = 0.0) -> pa.Table:
    rows = np.arange(n)
    return pa.table({
        "child_order_id": pa.array(rows.astype(np.uint64)),
        "adverse_move_bps": pa.array(rows * 0.5 + shift),
        "date": pa.array([datetime.date(2023, 11, 15), datetime.date(2023, 11, 16)] * (n // 2),
                         pa.date32()),
        "instrument": pa.array(["AAPL"] * n),
        "venue": pa.array(["XNAS", "BATS"] * (n // 2)),
    })


def test_write_dataset_is_idempotent(tmp_path):
    store = DataStore(tmp_path / "store")
    first = store.write_dataset("labelled", labelled_table(10), source_id="labels-run1")
    assert first.status == "ingested" and first.rows == {"labelled": 10}
    assert {(r["date"], r["venue"], r["rows"]) for r in store.ls("labelled")} == \
        {("2023-11-15", "XNAS", 5), ("2023-11-16", "BATS", 5)}
    again = store.write_dataset("labelled", labelled_table(10), source_id="labels-run1")
    assert again.status == "unchanged"
    changed = store.write_dataset("labelled", labelled_table(6, shift=1.0),
                                  source_id="labels-run1")
    assert changed.status == "replaced"
    table = store.read("labelled", dates=["2023-11-15"])
    assert table.num_rows == 3 and set(table.column("venue").to_pylist()) == {"XNAS"}
    assert sorted(table.column("adverse_move_bps").to_pylist()) == [1.0, 2.0, 3.0]
    other = store.write_dataset("labelled", labelled_table(4), source_id="labels-run2")
    assert other.status == "ingested"
    assert store.query("SELECT count(*) AS n FROM labelled").column("n")[0].as_py() == 10
    with pytest.raises(StoreError, match="partition columns \\['venue'\\]"):
        store.write_dataset("labelled", labelled_table(4).drop_columns(["venue"]),
                            source_id="x")
    with pytest.raises(StoreError, match="dataset name"):
        store.write_dataset("_sources", labelled_table(4), source_id="x")
    bad_venue = labelled_table(2).set_column(4, "venue", pa.array(["A/B", "C"]))
    with pytest.raises(StoreError, match="A/B"):
        store.write_dataset("labelled", bad_venue, source_id="x")
    assert {s["source_id"] for s in store.sources()} == {"labels-run1", "labels-run2"}
