"""Books against the slow reference books, on random streams (hypothesis), plus each error path."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_book import (ADD, BUY, CANCEL, CLEAR, DELETE, EXECUTE, LEVEL, MODIFY, REPLACE,
                            SELL, STATUS, TRADE, ReferenceL2Book, ReferenceL3Book)

import sor
import sor.sim
from sor.book import empty_events

L3_KINDS = [ADD, ADD, ADD, MODIFY, REPLACE, CANCEL, DELETE, EXECUTE, TRADE, STATUS, CLEAR, LEVEL, 0]

settings.register_profile("sor", deadline=None, max_examples=150,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sor")


def make_event(kind, order_id=0, side=0, price=0, qty=0, seq=0, venue=0, related=0, instrument=0):
    e = empty_events(1)
    e["kind"], e["order_id"], e["side"], e["price_ticks"] = kind, order_id, side, price
    e["quantity"], e["sequence"], e["venue_id"], e["related_id"] = qty, seq, venue, related
    e["instrument_id"] = instrument
    return e


@st.composite
def l3_streams(draw):
    """Random L3 events, mostly valid but with every kind of mistake mixed in."""
    n = draw(st.integers(1, 120))
    ids = st.integers(1, 12)
    rows = []
    seq = draw(st.integers(0, 3))
    for _ in range(n):
        kind = draw(st.sampled_from(L3_KINDS))
        if seq and draw(st.integers(0, 30)) != 0:
            seq += 1
        elif seq:
            seq += draw(st.sampled_from([-1, 0, 2]))
        rows.append(dict(
            kind=kind, order_id=draw(ids), related=draw(ids),
            side=draw(st.sampled_from([BUY, SELL, BUY, SELL, 0])),
            # Few distinct prices and sizes, so that events often hit resting orders' exact
            # price and size (priority rules) as well as everything else.
            price=draw(st.integers(98, 102) | st.integers(95, 105) | st.integers(-1, 0)),
            qty=draw(st.sampled_from([50, 100, 200]) | st.integers(1, 500) | st.integers(-5, 0)),
            seq=max(seq, 0), instrument=draw(st.sampled_from([0, 0, 0, 1])),
            venue=draw(st.sampled_from([0] * 20 + [1]))))
    return rows, draw(st.booleans())


def assert_same_l3(book, ref, instruments=(0, 1)):
    for instrument in instruments:
        for side in (sor.Side.BUY, sor.Side.SELL):
            got = [tuple(int(x) for x in row) for row in book.depth(side, 1000, instrument)]
            assert got == ref.depth(int(side), instrument)
    assert book.order_count == len(ref.orders)
    for order_id, (instrument, side, price, qty) in ref.orders.items():
        view = book.order(order_id)
        assert view is not None
        assert (view["instrument_id"], int(view["side"]), view["price_ticks"], view["quantity"]) == (
            instrument, side, price, qty)
        assert (view["orders_ahead"], view["quantity_ahead"]) == ref.queue_position(order_id)


@given(l3_streams())
def test_l3_book_matches_reference_event_by_event(stream):
    rows, allow_crossed = stream
    book = sor.L3Book(0, allow_crossed=allow_crossed)
    ref = ReferenceL3Book(allow_crossed=allow_crossed)
    for row in rows:
        e = make_event(**row)
        expected = ref.apply(e[0])
        if expected == "ok":
            assert book.apply(e) == 1
        else:
            error = sor.SequenceGapError if expected == "sequence_gap" else sor.BookIntegrityError
            with pytest.raises(error) as info:
                book.apply(e)
            assert info.value.status == expected
            assert info.value.index == 0
        assert book.expected_sequence == ref.seq.expected
        assert_same_l3(book, ref)
    assert book.stats["executed_quantity"] == ref.executed


@st.composite
def l2_streams(draw):
    n = draw(st.integers(1, 150))
    rows = []
    for i in range(n):
        kind = draw(st.sampled_from([LEVEL] * 8 + [CLEAR, TRADE, ADD]))
        rows.append(dict(kind=kind, side=draw(st.sampled_from([BUY, SELL, BUY, SELL, 0])),
                         price=draw(st.integers(95, 105) | st.just(0)),
                         qty=draw(st.integers(0, 900) | st.just(-1)),
                         related=draw(st.integers(0, 9)), seq=i + 1,
                         instrument=draw(st.sampled_from([0, 0, 1]))))
    return rows, draw(st.booleans())


@given(l2_streams())
def test_l2_book_matches_reference_event_by_event(stream):
    rows, allow_crossed = stream
    book = sor.L2Book(0, allow_crossed=allow_crossed)
    ref = ReferenceL2Book(allow_crossed=allow_crossed)
    for row in rows:
        e = make_event(**row)
        expected = ref.apply(e[0])
        if expected == "ok":
            book.apply(e)
        else:
            with pytest.raises(sor.SorError) as info:
                book.apply(e)
            assert info.value.status == expected
        for instrument in (0, 1):
            for side in (sor.Side.BUY, sor.Side.SELL):
                got = [tuple(int(x) for x in r) for r in book.depth(side, 1000, instrument)]
                assert got == ref.depth(int(side), instrument)


def test_batch_apply_of_a_long_synthetic_stream_matches_reference():
    events = sor.sim.synthetic_order_flow(seed=11, event_count=20_000, target_orders=300)
    book = sor.L3Book(0)
    ref = ReferenceL3Book()
    assert book.apply(events) == len(events)
    for e in events:
        assert ref.apply(e) == "ok"
    assert_same_l3(book, ref, instruments=(0,))
    levels = sor.sim.level_updates(events)
    l2 = sor.L2Book(0)
    assert l2.apply(levels) == len(levels)
    for side in (sor.Side.BUY, sor.Side.SELL):
        assert np.array_equal(l2.depth(side, 10_000)[["price_ticks", "quantity", "order_count"]],
                              book.depth(side, 10_000)[["price_ticks", "quantity", "order_count"]])


def test_consolidated_book_matches_per_venue_references():
    events = sor.sim.synthetic_order_flow(seed=5, event_count=30_000, venue_count=4,
                                          instrument_count=2, target_orders=200)
    specs = [sor.VenueSpec(0), sor.VenueSpec(1, sor.BookType.L3), sor.VenueSpec(2, lit=False),
             sor.VenueSpec(3, sor.BookType.L2)]
    book = sor.ConsolidatedBook(specs)
    l3_part = events[events["venue_id"] != 3]
    l2_part = sor.sim.level_updates(events[events["venue_id"] == 3])
    merged = np.concatenate([l3_part, l2_part])
    merged = merged[np.argsort(merged["ts_event"], kind="stable")]
    assert book.apply(merged) == len(merged)
    refs = {v: ReferenceL3Book(venue_id=v) for v in (0, 1, 2, 3)}
    for e in events:
        assert refs[int(e["venue_id"])].apply(e) == "ok"
    for instrument in (0, 1):
        lit = (0, 1, 3)
        for side, better in ((BUY, max), (SELL, min)):
            tops = {v: refs[v].depth(side, instrument)[0] for v in lit if refs[v].depth(side, instrument)}
            best = better(p for p, _, _ in tops.values())
            nbbo = book.nbbo(instrument)
            price = nbbo.bid_price_ticks if side == BUY else nbbo.ask_price_ticks
            qty = nbbo.bid_quantity if side == BUY else nbbo.ask_quantity
            mask = nbbo.bid_venue_mask if side == BUY else nbbo.ask_venue_mask
            assert price == best
            assert qty == sum(q for p, q, _ in tops.values() if p == best)
            assert sor.book.venues_in_mask(book, mask) == [v for v in lit if tops.get(v, (0,))[0] == best]
            # Depth by venue: merge of every lit venue's levels, best first.
            per_price: dict[int, dict[int, int]] = {}
            for v in lit:
                for p, q, _ in refs[v].depth(side, instrument):
                    per_price.setdefault(p, {})[v] = q
            prices = sorted(per_price, reverse=(side == BUY))[:8]
            depth = book.depth(sor.Side(side), 8, instrument)
            assert depth["price_ticks"].tolist() == prices
            assert depth["quantity"].tolist() == [sum(per_price[p].values()) for p in prices]
            positions = [0, 1, 2, 3]
            expected_matrix = [[per_price[p].get(v, 0) if v in lit else 0 for v in positions] for p in prices]
            assert depth["venue_quantity"].tolist() == expected_matrix
        quotes = book.protected_quotes(instrument)
        assert quotes["venue_id"].tolist() == [0, 1, 3]
        for q in quotes:
            bids, asks = refs[int(q["venue_id"])].depth(BUY, instrument), refs[int(q["venue_id"])].depth(SELL, instrument)
            assert (q["bid_price_ticks"], q["bid_quantity"]) == (bids[0][:2] if bids else (0, 0))
            assert (q["ask_price_ticks"], q["ask_quantity"]) == (asks[0][:2] if asks else (0, 0))
        with_dark = book.depth(sor.Side.BUY, 3, instrument, include_dark=True)
        assert with_dark["venue_quantity"].shape == (len(with_dark["price_ticks"]), 4)


# --- Every integrity error, through the batch API, names its index and changes nothing --------

def _seeded_book():
    book = sor.L3Book(0)
    events = empty_events(2)
    events[0] = make_event(ADD, 1, BUY, 100, 10, seq=1)[0]
    events[1] = make_event(ADD, 2, SELL, 102, 10, seq=2)[0]
    book.apply(events)
    return book


@pytest.mark.parametrize("bad, status", [
    (dict(kind=DELETE, order_id=77), "unknown_order"),
    (dict(kind=ADD, order_id=1, side=BUY, price=99, qty=5), "duplicate_order"),
    (dict(kind=ADD, order_id=3, side=BUY, price=99, qty=-5), "invalid_quantity"),
    (dict(kind=CANCEL, order_id=1, qty=11), "invalid_quantity"),
    (dict(kind=ADD, order_id=3, side=BUY, price=102, qty=5), "crossed_book"),
    (dict(kind=REPLACE, order_id=2, related=9, price=100, qty=5), "crossed_book"),
    (dict(kind=ADD, order_id=3, side=7, price=99, qty=5), "invalid_side"),
    (dict(kind=ADD, order_id=3, side=BUY, price=0, qty=5), "invalid_price"),
    (dict(kind=LEVEL, side=BUY, price=99, qty=5), "invalid_kind"),
    (dict(kind=ADD, order_id=3, side=BUY, price=99, qty=5, venue=4), "unknown_venue"),
])
def test_integrity_errors_name_the_event_and_leave_the_book_unchanged(bad, status):
    book = _seeded_book()
    batch = empty_events(3)
    batch[0] = make_event(ADD, 5, BUY, 99, 50, seq=3)[0]
    batch[1] = make_event(seq=4, **bad)[0]
    batch[2] = make_event(ADD, 6, BUY, 98, 50, seq=5)[0]
    with pytest.raises(sor.BookIntegrityError) as info:
        book.apply(batch)
    err = info.value
    assert isinstance(err, sor.SorError)
    assert (err.status, err.index) == (status, 1)
    assert f"event 1 rejected ({status})" in str(err)
    assert book.order_count == 3 and book.order(6) is None
    assert book.best_bid() == (100, 10) and book.best_ask() == (102, 10)
    assert book.expected_sequence == 4
    # Skip the bad event explicitly and carry on.
    book.resync(5)
    assert book.apply(batch[2:]) == 1


def test_sequence_gap_names_expected_and_received():
    book = _seeded_book()
    batch = empty_events(2)
    batch[0] = make_event(ADD, 5, BUY, 99, 50, seq=3)[0]
    batch[1] = make_event(ADD, 6, BUY, 98, 50, seq=7)[0]
    with pytest.raises(sor.SequenceGapError) as info:
        book.apply(batch)
    err = info.value
    assert (err.index, err.expected_sequence, err.received_sequence, err.venue_id) == (1, 4, 7, 0)
    assert "3 missing" in str(err)
    assert book.order(6) is None and book.order(5) is not None
    # A retransmitted duplicate is ignored and counted, not applied twice.
    assert book.apply(batch[:1]) == 1
    assert book.stats["duplicate_sequence"] == 1
    assert book.order_count == 3


def test_crossed_book_is_allowed_when_configured():
    book = sor.L3Book(0, allow_crossed=True)
    book.apply(make_event(ADD, 1, SELL, 100, 10))
    book.apply(make_event(ADD, 2, BUY, 101, 10))
    assert book.best_bid() == (101, 10) and book.best_ask() == (100, 10)


@pytest.mark.parametrize("events, message", [
    (np.zeros(3), "must have dtype"),
    (np.zeros((2, 2), dtype=sor.MD_EVENT_DTYPE), "one-dimensional"),
    (np.zeros(6, dtype=sor.MD_EVENT_DTYPE)[::2], "C-contiguous"),
])
def test_wrong_arrays_are_usage_errors(events, message):
    with pytest.raises(sor.UsageError, match=message):
        sor.L3Book().apply(events)


def test_consolidated_book_rejects_impossible_venue_lists():
    with pytest.raises(sor.UsageError, match="distinct"):
        sor.ConsolidatedBook([sor.VenueSpec(1), sor.VenueSpec(1)])
    with pytest.raises(sor.UsageError, match="at least one venue"):
        sor.ConsolidatedBook([])
    with pytest.raises(sor.UsageError, match="not in this book"):
        sor.ConsolidatedBook([sor.VenueSpec(1)]).venue_book(2)


def test_queue_position_and_orders_at():
    book = sor.L3Book(0)
    for i, qty in enumerate([100, 200, 300], start=1):
        book.apply(make_event(ADD, i, BUY, 100, qty))
    assert book.order(3)["orders_ahead"] == 2 and book.order(3)["quantity_ahead"] == 300
    assert book.orders_at(sor.Side.BUY, 100).tolist() == [1, 2, 3]
    book.apply(make_event(EXECUTE, 1, qty=100))
    assert book.order(3)["quantity_ahead"] == 200
    assert book.order(99) is None


def test_synthetic_flow_is_deterministic():
    a = sor.sim.synthetic_order_flow(seed=9, event_count=5_000, venue_count=3)
    b = sor.sim.synthetic_order_flow(seed=9, event_count=5_000, venue_count=3)
    c = sor.sim.synthetic_order_flow(seed=10, event_count=5_000, venue_count=3)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


@pytest.mark.parametrize("price, qty, keeps_priority", [
    (100, 100, True), (100, 60, True), (100, 101, False), (99, 100, False)])
def test_modify_keeps_priority_only_for_same_price_and_no_larger_size(price, qty, keeps_priority):
    book = sor.L3Book(0)
    ref = ReferenceL3Book()
    for e in (make_event(ADD, 1, BUY, 100, 100), make_event(ADD, 2, BUY, 100, 100),
              make_event(ADD, 3, BUY, 99, 100), make_event(MODIFY, 1, 0, price, qty)):
        book.apply(e)
        assert ref.apply(e[0]) == "ok"
    assert (book.order(1)["orders_ahead"] == 0) == keeps_priority
    assert_same_l3(book, ref, instruments=(0,))
