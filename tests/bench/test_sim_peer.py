"""The nautilus_trader peer for ``sor bench sim``: conversion keeps the stream, the engine and the
strategy see every delta, the books end where a slow reference says, the figures are consistent.

nautilus_trader comes with the ``bench`` extra, which the README's test command installs.
"""

from __future__ import annotations

import builtins
import math

import numpy as np
import pytest

import nautilus_trader
from nautilus_trader.model.enums import BookAction, OrderSide

from sor.bench import sim_peer
from sor.bench.peers import ADD, ASK, BID, CANCEL, DELETE, EXECUTE, REPLACE

EVENTS = 20_000
VENUES = 5


@pytest.fixture(scope="module")
def stream() -> np.ndarray:
    return sim_peer.comparable_stream(seed=11, event_count=EVENTS, venue_count=VENUES)


@pytest.fixture(scope="module")
def result(stream) -> sim_peer.NautilusBacktestResult:
    return sim_peer.run_nautilus_backtest(stream)


def expected_deltas(events: np.ndarray) -> int:
    """One delta per event, two for a cancel-replace (DELETE old id, ADD new id)."""
    return len(events) + int((events["kind"] == REPLACE).sum())


def reference_top(events: np.ndarray) -> dict[str, int | None]:
    """Slow, obviously-correct top of book of one venue's L3 events."""
    orders: dict[int, list[int]] = {}
    for e in events.tolist():
        _, _, _, oid, rel, px, qty, _, _, kind, side, _ = e
        if kind == ADD:
            orders[oid] = [side, px, qty]
        elif kind in (CANCEL, EXECUTE):
            orders[oid][2] -= qty
            if orders[oid][2] <= 0:
                del orders[oid]
        elif kind == DELETE:
            del orders[oid]
        elif kind == REPLACE:
            orders[rel] = [orders.pop(oid)[0], px, qty]
    levels: dict[tuple[int, int], int] = {}
    for side, px, qty in orders.values():
        levels[(side, px)] = levels.get((side, px), 0) + qty
    bid = max((p for s, p in levels if s == BID), default=None)
    ask = min((p for s, p in levels if s == ASK), default=None)
    return {
        "bid_price_ticks": bid,
        "bid_quantity": levels[(BID, bid)] if bid is not None else 0,
        "ask_price_ticks": ask,
        "ask_quantity": levels[(ASK, ask)] if ask is not None else 0,
    }


def test_stream_is_the_synthetic_flow_over_five_venues(stream):
    assert len(stream) == EVENTS
    assert sorted(np.unique(stream["venue_id"]).tolist()) == list(range(VENUES))
    again = sim_peer.comparable_stream(seed=11, event_count=EVENTS, venue_count=VENUES)
    assert again.tobytes() == stream.tobytes()


def test_conversion_preserves_the_stream(stream):
    per_venue = sim_peer.convert_stream(stream)
    assert sorted(per_venue) == list(range(VENUES))
    for venue_id, deltas in per_venue.items():
        events = stream[stream["venue_id"] == venue_id]
        assert len(deltas) == expected_deltas(events)
        iid = sim_peer.instrument_id(venue_id)
        assert all(d.instrument_id == iid for d in deltas)
        assert str(iid) == f"AAPL.{sim_peer.VENUE_CODES[venue_id]}"
        # every delta carries its event's timestamps and sequence number (ts_init = ts_recv)
        per_event = 1 + (events["kind"] == REPLACE).astype(np.int64)
        assert [d.ts_init for d in deltas] == np.repeat(events["ts_recv"], per_event).tolist()
        assert [d.ts_event for d in deltas] == np.repeat(events["ts_event"], per_event).tolist()
        assert [d.sequence for d in deltas] == np.repeat(events["sequence"], per_event).tolist()
        first = events[0]
        d0 = deltas[0]
        assert int(first["kind"]) == ADD
        assert d0.action == BookAction.ADD
        assert d0.ts_event == int(first["ts_event"]) and d0.ts_init == int(first["ts_recv"])
        assert d0.sequence == int(first["sequence"])
        assert d0.order.order_id == int(first["order_id"])
        assert d0.order.side == (OrderSide.BUY if int(first["side"]) == BID else OrderSide.SELL)
        assert d0.order.price.as_double() == pytest.approx(int(first["price_ticks"]) * 0.01)
        assert d0.order.size.as_double() == int(first["quantity"])
        # a cancel-replace becomes DELETE of the old id then ADD of the new one, at its price
        rep_index = int(np.flatnonzero(events["kind"] == REPLACE)[0])
        rep = events[rep_index]
        at = rep_index + int((events["kind"][:rep_index] == REPLACE).sum())
        old, new = deltas[at], deltas[at + 1]
        assert (old.action, old.order.order_id) == (BookAction.DELETE, int(rep["order_id"]))
        assert (new.action, new.order.order_id) == (BookAction.ADD, int(rep["related_id"]))
        assert new.order.price.as_double() == pytest.approx(int(rep["price_ticks"]) * 0.01)
        assert new.order.size.as_double() == int(rep["quantity"])


def test_backtest_sees_every_delta(stream, result):
    per_venue = [expected_deltas(stream[stream["venue_id"] == v]) for v in range(VENUES)]
    assert result.venue_count == VENUES
    assert result.venue_ids == tuple(range(VENUES))
    assert result.deltas_per_venue == tuple(per_venue)
    assert result.event_count == sum(per_venue)
    assert result.source_event_count == EVENTS
    assert result.subscribed
    assert result.strategy_delta_count == result.event_count


def test_books_end_where_the_reference_does(stream, result):
    for venue_id, top in zip(result.venue_ids, result.final_tops):
        assert top == reference_top(stream[stream["venue_id"] == venue_id]), venue_id


def test_figures_are_consistent(result):
    assert result.run_seconds > 0 and result.setup_seconds > 0 and result.convert_seconds > 0
    assert result.events_per_second > 0
    assert math.isclose(result.events_per_second, result.event_count / result.run_seconds)
    assert math.isclose(result.source_events_per_second, result.source_event_count / result.run_seconds)
    assert result.nautilus_version == nautilus_trader.__version__
    assert result.peak_rss_bytes >= result.rss_loaded_bytes > 0
    report = result.as_dict()
    assert report["event_count"] == result.event_count
    assert report["deltas_per_venue"] == list(result.deltas_per_venue)
    assert report["events_per_second"] == result.events_per_second


def test_without_subscription_the_exchanges_still_get_every_delta(stream):
    small = stream[:4_000]
    res = sim_peer.run_nautilus_backtest(small, subscribe=False)
    assert not res.subscribed
    assert res.strategy_delta_count == 0
    assert res.final_tops == ()
    assert res.event_count == expected_deltas(small)
    assert math.isclose(res.events_per_second, res.event_count / res.run_seconds)


def test_two_engines_in_one_process(stream):
    # nautilus keeps process-wide state (logging, clocks): a second engine must run as well
    small = stream[:2_000]
    a = sim_peer.run_nautilus_backtest(small)
    b = sim_peer.run_nautilus_backtest(small)
    assert a.event_count == b.event_count == a.strategy_delta_count == b.strategy_delta_count
    assert a.final_tops == b.final_tops


def test_missing_nautilus_names_the_fix(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.split(".")[0] == "nautilus_trader":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install \"\.\[bench\]\""):
        sim_peer.run_nautilus_backtest(np.zeros(0, sim_peer.peers.MD_EVENT))
