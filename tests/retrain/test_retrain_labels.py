"""Labels of the live children (sor.retrain.labels) against a slow Python reference that
rebuilds the NBBO by hand from the stored quotes; simulate_day's files; idempotent storage."""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np
import pytest

from sor.errors import RetrainError


def _reference(store: Any, fill_horizon_s: float, move_horizon_s: float) -> dict[tuple, dict]:
    """Returns the labels per (run, child) computed with plain loops."""
    quotes = store.read("quotes").to_pylist()
    children = store.read("children").to_pylist()
    decisions = store.read("decisions", columns=["run", "ts_ns", "now_ns"]).to_pylist()
    by_venue: dict[tuple[str, str], list[tuple[int, Any, Any]]] = {}
    for q in quotes:
        by_venue.setdefault((q["instrument"], q["venue"]), []).append(
            (q["ts_event"], q["bid_price_ticks"], q["ask_price_ticks"]))
    for rows in by_venue.values():
        rows.sort(key=lambda r: r[0])

    def mid(instrument: str, t: int) -> float:
        bids, asks = [], []
        for (symbol, _venue), rows in by_venue.items():
            if symbol != instrument:
                continue
            times = [r[0] for r in rows]
            k = bisect.bisect_right(times, t) - 1
            # the last of the rows at that time (ties: the as-of join may take any; the
            # store's quotes have one row per time and venue)
            if k >= 0:
                if rows[k][1] is not None:
                    bids.append(rows[k][1])
                if rows[k][2] is not None:
                    asks.append(rows[k][2])
        if not bids or not asks:
            return math.nan
        bid, ask = max(bids), min(asks)
        return (bid + ask) / 2 if 0 < bid < ask else math.nan

    clock: dict[str, dict[int, int]] = {}
    for d in decisions:
        runs = clock.setdefault(d["run"], {})
        runs[d["ts_ns"]] = min(runs.get(d["ts_ns"], d["now_ns"]), d["now_ns"])

    def market_time(run: str, wall: int) -> float:
        points = sorted(clock[run].items())
        walls = [p[0] for p in points]
        k = bisect.bisect_right(walls, wall) - 1
        if k < 0:
            return math.nan
        w0, m0 = points[k]
        j = bisect.bisect_left(walls, wall)
        if j >= len(points) or points[j][0] == w0 or points[j][1] <= m0:
            return m0 + (wall - w0)
        w1, m1 = points[j]
        return m0 + (wall - w0) / (w1 - w0) * (m1 - m0)

    out = {}
    for c in children:
        if not (c["done"] or c["filled"]):
            continue
        m0 = mid(c["instrument"], c["now_ns"])
        m1 = mid(c["instrument"], c["now_ns"] + int(move_horizon_s * 1e9))
        move = c["side"] * (m1 - m0) / m0 * 1e4
        filled = False
        if c["filled_in_full_ns"] > 0 and c["filled_quantity"] >= c["child_quantity"]:
            filled = market_time(c["run"], c["filled_in_full_ns"]) - c["now_ns"] <= \
                fill_horizon_s * 1e9
        take = c["order_type"] == 0 and c["filled_quantity"] > 0
        out[(c["run"], c["child_order_id"])] = {
            "mid": m0, "move": move, "filled": filled, "impact": move if take else math.nan}
    return out


def test_simulated_day_files(simulated_store: dict[str, Any]) -> None:
    from sor.feed.itch import decode
    from sor.monitor.journal import read_journal

    day = simulated_store["day"]
    assert day.trading_day == "2023-11-15"
    assert sorted(day.itch_paths) == ["BATS", "EDGX", "IEXG", "XNAS"]  # lit venues only
    journal = read_journal(day.journal_path)
    metadata = journal.runs[0].header["metadata"]
    assert metadata["trading_day"] == day.trading_day
    assert metadata["venues"]["4"] == "DARK" and metadata["instruments"]["0"] == "AAPL"
    assert journal.summary()["children_sent"] == day.children > 0
    batch = decode(day.itch_paths["XNAS"].read_bytes())
    assert [e.symbol for e in batch.directory][:1] == ["AAPL"]
    # every event the router saw was written: the venue's events plus directory and system
    assert len(batch.events) == day.market_events["XNAS"] + len(batch.directory) + 2


def test_ingest_twice_stores_once(simulated_store: dict[str, Any]) -> None:
    first, second = simulated_store["first"], simulated_store["second"]
    assert {r.status for r in first} == {"ingested"}
    assert {r.status for r in second} == {"unchanged"}
    store = simulated_store["store"]
    children = store.read("children")
    assert children.num_rows == simulated_store["day"].children
    assert len(set(zip(children.column("run").to_pylist(),
                       children.column("child_order_id").to_pylist()))) == children.num_rows


@pytest.mark.slow
def test_labels_match_python_reference(simulated_store: dict[str, Any]) -> None:
    from sor.retrain.labels import label_children

    store = simulated_store["store"]
    table = label_children(store, fill_horizon_s=10.0, move_horizon_s=10.0, write=False)
    reference = _reference(store, 10.0, 10.0)
    assert table.num_rows == len(reference) > 50
    rows = table.to_pylist()
    moves = 0
    for row in rows:
        expected = reference[(row["run"], row["child_order_id"])]
        assert row["mid_ticks"] == pytest.approx(expected["mid"], nan_ok=True)
        assert row["adverse_move_bps"] == pytest.approx(expected["move"], nan_ok=True,
                                                        abs=1e-9)
        assert row["impact_bps"] == pytest.approx(expected["impact"], nan_ok=True, abs=1e-9)
        assert row["filled"] == expected["filled"]
        moves += row["adverse_move_bps"] != 0
    filled = np.array([r["filled"] for r in rows])
    # the labels are informative: some children filled in time, some not, some mids moved
    assert 0 < filled.mean() < 1
    assert moves > 0
    # a shorter fill horizon can only turn filled children into unfilled ones
    short = label_children(store, fill_horizon_s=0.5, move_horizon_s=10.0, write=False)
    assert sum(short.column("filled").to_pylist()) < filled.sum()


def test_labels_written_idempotently(simulated_store: dict[str, Any]) -> None:
    from sor.retrain.labels import label_children

    store = simulated_store["store"]
    first = label_children(store)
    before = store.read("labelled").num_rows
    label_children(store)
    assert store.read("labelled").num_rows == before == first.num_rows
    assert {"filled", "adverse_move_bps", "impact_bps", "adv_shares"} <= \
        set(store.read("labelled").column_names)
    adv = store.read("labelled").column("adv_shares").to_numpy()
    assert np.all(adv == simulated_store["day"].adv_shares)


def test_labels_of_an_empty_store_name_what_is_missing(tmp_path: Any) -> None:
    from sor.retrain.labels import label_children
    from sor.store import DataStore

    with pytest.raises(RetrainError, match="children"):
        label_children(DataStore(tmp_path / "empty"))
