"""Market data into the store: ITCH 5.0 files round trip field by field, quotes match a slow
Python top of book, L2 level events, bad ITCH files refused with nothing written."""

from __future__ import annotations

import numpy as np
import pytest

from sor import _core
from sor.book import MD_EVENT_DTYPE
from sor.errors import StoreError
from sor.feed import itch
from sor.store import DataStore
from store_helpers import TRADING_DAY, VENUE_NAMES, reference_tops, snapshot


def itch_file(tmp_path, events, midnight, name="XNAS-feed.itch"):
    path = tmp_path / name
    path.write_bytes(itch.encode(events, directory={0: "AAPL"}, session_date_ns=midnight))
    return path


def sorted_fields(table, names):
    order = np.argsort(table.column("sequence").to_numpy(), kind="stable")
    return {n: table.column(n).to_numpy()[order] for n in names}


def test_itch_round_trip_field_by_field(tmp_path, market):
    events, midnight = market
    path = itch_file(tmp_path, events[0], midnight)
    store = DataStore(tmp_path / "store")
    result = store.ingest_itch(path, venue="XNAS", date=TRADING_DAY)
    assert result.kind == "itch" and result.status == "ingested"
    assert result.source_id.startswith("itch-") and len(result.source_id) == 5 + 16
    decoded = itch.decode(path.read_bytes(), venue_id=0, session_date_ns=midnight).events
    table = store.read("market_data")
    assert table.num_rows == len(decoded) == result.rows["market_data"]
    stored = sorted_fields(table, MD_EVENT_DTYPE.names)
    for name in MD_EVENT_DTYPE.names:
        assert np.array_equal(stored[name], decoded[name]), name
    assert set(table.column("book_type").to_pylist()) == {"L3"}
    assert {(r["date"], r["instrument"], r["venue"]) for r in store.ls()} == \
        {(TRADING_DAY, "AAPL", "XNAS")}
    # the decoded book events are the simulator's (ITCH drops receive times and sides of
    # executions/cancels, and renumbers: the directory message comes first)
    book = decoded[decoded["kind"] != int(_core.EventKind.STATUS)]
    for name in ("ts_event", "order_id", "price_ticks", "quantity", "kind"):
        assert np.array_equal(book[name], events[0][name]), name


def test_quotes_match_a_python_top_of_book(tmp_path, market):
    events, _ = market
    sample = {v: events[v][:4000] for v in (0, 3)}
    store = DataStore(tmp_path / "store")
    store.ingest_events(np.concatenate(list(sample.values())), venue_names=VENUE_NAMES,
                        instrument_names={0: "AAPL"}, book_type="L3")
    for venue_id, venue_events in sample.items():
        quotes = store.read("quotes", venues=[VENUE_NAMES[venue_id]])
        quotes = quotes.sort_by([("ts_recv", "ascending")])
        got = list(zip(quotes.column("ts_recv").to_pylist(),
                       quotes.column("bid_price_ticks").to_pylist(),
                       quotes.column("bid_quantity").to_pylist(),
                       quotes.column("ask_price_ticks").to_pylist(),
                       quotes.column("ask_quantity").to_pylist()))
        expected = reference_tops(venue_events, "L3")
        assert len(got) > 100
        assert got == expected
        assert set(quotes.column("venue_id").to_pylist()) == {venue_id}


def level_events():
    """A small L2 feed: levels set, changed and removed on both sides."""
    level, buy, sell = int(_core.EventKind.LEVEL), int(_core.Side.BUY), int(_core.Side.SELL)
    rows = [(1, buy, 100_00, 300), (1, sell, 101_00, 200), (2, buy, 100_50, 100),
            (3, buy, 100_50, 0), (3, sell, 100_90, 50), (4, sell, 100_90, 0),
            (5, buy, 100_00, 700), (6, sell, 101_00, 0), (7, sell, 102_00, 10)]
    events = np.zeros(len(rows), MD_EVENT_DTYPE)
    base = 1_700_058_600_000_000_000
    for k, (t, side, price, quantity) in enumerate(rows):
        events[k] = (base + t * 1000, base + t * 1000 + 7, k + 1, 0, 1, price, quantity, 0, 3,
                     level, side, 0)
    return events


def test_l2_events_and_their_quotes(tmp_path):
    events = level_events()
    store = DataStore(tmp_path / "store")
    result = store.ingest_events(events, venue_names={3: "IEXG"}, instrument_names={0: "SPY"},
                                 book_type="L2")
    assert result.source_id.startswith("events-")
    table = store.read("market_data")
    assert set(table.column("book_type").to_pylist()) == {"L2"}
    quotes = store.read("quotes").sort_by([("ts_recv", "ascending")])
    got = list(zip(*(quotes.column(c).to_pylist() for c in
                     ("ts_recv", "bid_price_ticks", "bid_quantity", "ask_price_ticks",
                      "ask_quantity"))))
    assert got == reference_tops(events, "L2")
    # t=6: the only ask removed -> a null ask price
    assert any(row[3] is None and row[4] == 0 for row in got)
    assert {(r["instrument"], r["venue"]) for r in store.ls()} == {("SPY", "IEXG")}
    # the same array again: unchanged; other names: the source is rewritten
    assert store.ingest_events(events, venue_names={3: "IEXG"}, instrument_names={0: "SPY"},
                               book_type="L2").status == "unchanged"
    renamed = store.ingest_events(events, venue_names={3: "IEX"}, instrument_names={0: "SPY"},
                                  book_type="L2")
    assert renamed.status == "replaced"
    assert {r["venue"] for r in store.ls()} == {"IEX"}


def test_bad_itch_files_change_nothing(tmp_path, market):
    events, midnight = market
    store = DataStore(tmp_path / "store")
    good = itch_file(tmp_path, events[1][:2000], midnight, "BATS-2023-11-15.itch")
    first = store.ingest(good)  # venue and date from the file name
    assert first[0].status == "ingested"
    assert {(r["date"], r["venue"]) for r in store.ls()} == {(TRADING_DAY, "BATS")}
    before = snapshot(store.root)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.itch"
    truncated.write_bytes(data[: len(data) - 7])
    with pytest.raises(StoreError, match="truncated.itch.*ITCH decode failed"):
        store.ingest_itch(truncated, venue="BATS", date=TRADING_DAY)
    garbled = tmp_path / "garbled.itch"
    garbled.write_bytes(data[:100] + b"\x00\x05Zabcd" + data[100:])  # an unknown message
    with pytest.raises(StoreError, match="garbled.itch"):
        store.ingest_itch(garbled, venue="BATS", date=TRADING_DAY)
    with pytest.raises(StoreError, match="venue"):
        store.ingest_itch(good, venue="NOWHERE", date=TRADING_DAY)
    undated = tmp_path / "feed.itch"
    undated.write_bytes(data)
    with pytest.raises(StoreError, match="date"):
        store.ingest_itch(undated, venue="BATS")
    assert snapshot(store.root) == before
    # the same file again, and under another name: unchanged (same SHA-256, same options)
    assert store.ingest_itch(undated, venue="BATS", date=TRADING_DAY).status == "unchanged"
