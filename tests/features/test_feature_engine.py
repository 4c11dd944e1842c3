"""The FeatureEngine wrapper and the engine's documented behaviour: construction from the router
configuration and from scenarios, fallbacks on empty and one-sided books (never NaN), refused
contexts and setter values, hand-checked values, and the handle's lifetime."""

from __future__ import annotations

import numpy as np
import pytest
from feature_streams import feature_venues

from sor import BookIntegrityError, SequenceGapError, UsageError
from sor.book import MD_EVENT_DTYPE
from sor.config import default_config
from sor.features import (
    FEATURE_SCHEMA,
    ChildOrderType,
    FeatureEngine,
    FeatureError,
    build_options,
    empty_contexts,
)

T0 = 1_700_000_000_000_000_000
BUY, SELL = 1, 2


def engine() -> FeatureEngine:
    return FeatureEngine(build_options(feature_venues(), price_tick_usd=0.01, max_instruments=2))


def event(kind, venue, side, price, quantity, order_id=0, ts=T0, sequence=0, flags=0):
    e = np.zeros(1, dtype=MD_EVENT_DTYPE)
    e["kind"], e["venue_id"], e["side"], e["price_ticks"] = kind, venue, side, price
    e["quantity"], e["order_id"], e["ts_recv"], e["ts_event"] = quantity, order_id, ts, ts
    e["sequence"], e["flags"] = sequence, flags
    return e


def context(side=BUY, venue=0, order_type=0, price=0, quantity=300, arrival=0.0, now=T0):
    c = empty_contexts(1)
    c["now_ns"], c["start_ns"], c["end_ns"] = now, now - 100, now + 300
    c["side"], c["venue_id"], c["order_type"] = side, venue, order_type
    c["child_price_ticks"], c["child_quantity"], c["arrival_mid_ticks"] = price, quantity, arrival
    c["parent_quantity"], c["remaining_quantity"] = 10_000, 2_500
    return c


def row(e: FeatureEngine, c) -> dict[str, float]:
    values = e.rows(c)[0]
    assert np.all(np.isfinite(values))
    return FEATURE_SCHEMA.as_dict(values)


def test_empty_book_gives_the_fallbacks():
    with engine() as e:
        for order_type in range(3):
            for venue in range(4):
                for arrival in (0.0, 1_000.0):
                    r = row(e, context(order_type=order_type, venue=venue, arrival=arrival))
                    assert r["nbbo.two_sided"] == 0 and r["nbbo.spread_ticks"] == 0
                    assert r["order.mid_move_since_arrival_bps"] == 0
                    assert r["child.price_offset_ticks"] == 0
                    assert r["vol.realized_5m_bps"] == 0 and r["vol.garch_bps"] == 0
                    assert r["flow.imbalance_1s"] == 0 and r["venue.volume_share_60s"] == 0
                    assert r["venue.fill_rate"] == 0.5
                    # fees need a reference price: the arrival mid, else none
                    assert (r["child.fee_bps"] == 0) == (arrival == 0 or
                                                         (venue == 2 and order_type == 1))
        r = row(e, context(venue=0, arrival=1_000.0))
        assert r["venue.taker_fee_bps"] == pytest.approx(0.003 / 10.0 * 1e4)   # 3 bps of $10
        assert r["venue.latency_us"] == 90.0
        assert r["order.time_remaining_fraction"] == pytest.approx(0.75)
        assert r["order.quantity_remaining_fraction"] == 0.25


def test_one_sided_book_gives_the_fallbacks():
    with engine() as e:
        e.apply(np.concatenate([event(1, 0, BUY, 990, 500, order_id=1),
                                event(1, 1, BUY, 989, 300, order_id=2)]))
        buy = row(e, context(side=BUY, order_type=1))      # joins the bid
        sell = row(e, context(side=SELL, order_type=0))    # takes the bid
        assert buy["nbbo.two_sided"] == 0 and buy["nbbo.spread_bps"] == 0
        assert buy["nbbo.imbalance_top"] == 1.0 and sell["nbbo.imbalance_top"] == -1.0
        assert buy["book.near_depth_1"] == 500 and buy["book.near_depth_2"] == 300
        assert buy["book.far_depth_1"] == 0 and sell["book.far_depth_2"] == 300
        assert buy["book.imbalance_depth"] == 1.0
        assert buy["child.price_offset_ticks"] == 0        # post at the near touch
        assert sell["child.price_offset_ticks"] == 0       # the near touch (the ask) is missing
        assert buy["venue.spread_ticks"] == 0 and buy["venue.at_nbbo_near"] == 1
        assert buy["order.mid_move_since_arrival_bps"] == 0
        explicit = row(e, context(side=BUY, order_type=1, price=985))
        assert explicit["child.price_offset_ticks"] == -5  # behind the bid


def test_hand_checked_two_sided_values():
    with engine() as e:
        e.apply(np.concatenate([
            event(1, 0, BUY, 990, 500, order_id=1, sequence=1),
            event(1, 0, SELL, 1_010, 100, order_id=2, sequence=2),
            event(1, 1, SELL, 1_000, 300, order_id=3, sequence=1),
            event(6, 1, SELL, 0, 200, order_id=3, sequence=2, flags=1),     # a buyer takes 200
            event(7, 3, BUY, 995, 400, sequence=1, flags=1),                # dark: a seller
            event(7, 3, 0, 995, 1_000, sequence=2, flags=1),                # dark: no side
        ]))
        r = row(e, context(side=BUY, venue=1, order_type=2, arrival=990.0))
        assert r["nbbo.spread_ticks"] == 10 and r["nbbo.two_sided"] == 1
        assert r["nbbo.spread_bps"] == pytest.approx(10 / 995 * 1e4, rel=1e-6)
        assert r["nbbo.imbalance_top"] == pytest.approx((500 - 100) / 600)
        assert r["child.price_offset_ticks"] == 5          # the mid is 5 ticks above the bid
        assert r["order.mid_move_since_arrival_bps"] == pytest.approx(5 / 990 * 1e4, rel=1e-6)
        assert r["flow.imbalance_1s"] == pytest.approx((200 - 400) / 600)
        assert r["flow.volume_60s_shares"] == 1_600
        assert r["venue.volume_60s_shares"] == 200 and r["venue.flow_imbalance_10s"] == 1.0
        assert r["venue.volume_share_60s"] == pytest.approx(0.125)
        assert r["venue.at_nbbo_far"] == 1 and r["venue.far_touch_shares"] == 100
        assert r["child.fee_bps"] == pytest.approx(0.001 / 9.95 * 1e4, rel=1e-6)
        sell = row(e, context(side=SELL, venue=1))
        assert sell["flow.imbalance_1s"] == pytest.approx(-r["flow.imbalance_1s"])
        # a minute later every window is empty
        later = row(e, context(now=T0 + 61_000_000_000))
        assert later["flow.volume_60s_shares"] == 0 and later["flow.imbalance_60s"] == 0


def test_setters_change_their_features():
    with engine() as e:
        e.set_adv(0, 50_000)
        e.set_implied_volatility(0, 0.35)
        e.on_latency_sample(0, 190_000)
        for _ in range(3):
            e.on_child_done(0, BUY, ChildOrderType.TAKE, 300, 300)
        r = row(e, context())
        assert r["order.parent_adv_fraction"] == pytest.approx(0.2)
        assert r["vol.implied_annual"] == pytest.approx(0.35) and r["vol.implied_available"] == 1
        assert r["venue.latency_us"] == pytest.approx(100.0)          # 0.9 * 90 + 0.1 * 190
        assert r["venue.fill_rate"] > 0.5
        other_bucket = row(e, context(quantity=5_000))
        assert other_bucket["venue.fill_rate"] == 0.5
        e.clear_implied_volatility(0)
        assert row(e, context())["vol.implied_available"] == 0


@pytest.mark.parametrize("field, value, status", [
    ("venue_id", 9, "unknown_venue"), ("instrument_id", 2, "unknown_instrument"),
    ("side", 0, "invalid_side"), ("order_type", 3, "invalid_order_type"),
    ("child_quantity", 0, "invalid_quantity"), ("remaining_quantity", 20_000, "invalid_quantity"),
    ("end_ns", T0 - 100, "invalid_time"), ("child_price_ticks", -1, "invalid_price"),
    ("arrival_mid_ticks", float("nan"), "invalid_price"),
])
def test_bad_contexts_are_refused_by_row(field, value, status):
    with engine() as e:
        contexts = np.concatenate([context(), context(), context()])
        contexts[field][1] = value
        with pytest.raises(FeatureError) as raised:
            e.rows(contexts)
        assert raised.value.status == status and raised.value.index == 1


@pytest.mark.parametrize("call, status", [
    (lambda e: e.set_adv(0, 0.0), "invalid_value"),
    (lambda e: e.set_adv(7, 1.0), "unknown_instrument"),
    (lambda e: e.set_implied_volatility(0, -0.1), "invalid_value"),
    (lambda e: e.on_latency_sample(9, 1), "unknown_venue"),
    (lambda e: e.on_latency_sample(0, -1), "invalid_value"),
    (lambda e: e.on_child_done(0, BUY, 0, 100, 101), "invalid_quantity"),
    (lambda e: e.on_child_done(0, 0, 0, 100, 1), "invalid_side"),
])
def test_bad_setter_values_are_refused(call, status):
    with engine() as e, pytest.raises(FeatureError) as raised:
        call(e)
    assert raised.value.status == status and raised.value.index is None


def test_apply_reports_book_rejections():
    with engine() as e:
        bad = np.concatenate([event(1, 0, BUY, 990, 500, order_id=1),
                              event(5, 0, BUY, 990, 0, order_id=99),   # unknown order
                              event(1, 0, SELL, 1_010, 100, order_id=2)])
        with pytest.raises(BookIntegrityError) as raised:
            e.apply(bad)
        assert raised.value.index == 1 and raised.value.status == "unknown_order"
        assert e.apply(bad[2:]) == 1
    with engine() as e:
        assert e.apply(bad, strict=False) == 2 and e.rejected == 1
        with pytest.raises(SequenceGapError):
            e.apply(np.concatenate([event(1, 1, BUY, 990, 5, order_id=7, sequence=1),
                                    event(1, 1, BUY, 990, 5, order_id=8, sequence=3)]))


def test_replay_builds_rows_in_context_order():
    events = np.concatenate([event(1, 0, BUY, 990, 500, order_id=1, ts=T0),
                             event(1, 0, BUY, 991, 100, order_id=2, ts=T0 + 10)])
    contexts = np.concatenate([context(now=T0 + 10), context(now=T0), context(now=T0 - 1)])
    with engine() as e:
        rows = e.replay(events, contexts)
    depth = rows[:, FEATURE_SCHEMA.index("book.near_depth_1")]
    assert depth.tolist() == [100, 500, 0]
    with engine() as e, pytest.raises(UsageError, match="sorted"):
        e.replay(events[::-1], contexts)


def test_closed_engine_refuses_calls():
    e = engine()
    e.close()
    with pytest.raises(UsageError, match="closed"):
        e.rows(context())


def test_built_from_the_router_configuration():
    config = default_config()
    with FeatureEngine.from_config(config, midpoint_fee_usd_per_share={"XNAS": 0.0015}) as e:
        venues = {v.venue_id: v for v in e.options.venues}
        assert len(venues) == len(config.venues)
        assert venues[4].lit is False and venues[3].book_type.name == "L2"
        assert venues[0].midpoint_fee_usd_per_share == 0.0015
        assert venues[1].midpoint_fee_usd_per_share == venues[1].taker_fee_usd_per_share
        assert venues[3].latency_ns == 800_000
        assert e.options.max_instruments == 3
        e.on_latency_sample("IEXG", 800_000)
        with pytest.raises(UsageError, match="XNYS"):
            e.on_latency_sample("XNYS", 1)


def test_built_from_a_scenario():
    with FeatureEngine.from_scenario("default") as e:
        venues = {v.venue_id: v for v in e.options.venues}
        assert venues[4].lit is False
        assert venues[0].latency_ns == 40_000 + 90_000
        assert e.options.price_tick_usd == 0.0001
