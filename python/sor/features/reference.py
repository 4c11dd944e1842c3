"""A slow, obvious reference for the decision-row features, used only by tests.

Everything is recomputed from the event history with plain Python and numpy: the books are
re-derived from the events (dicts of orders and levels), the trade-flow windows filter the event
list, every NBBO mid sample is read from the re-derived books, realized volatility sums the
squares of the samples in the window, the GARCH recursion runs from the first boundary, and the
fill-rate and latency averages are closed-form weighted sums over the whole history. It shares
no code with the C++ engine; the parity tests compare the two feature by feature.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sor.features.schema import FEATURE_SCHEMA

_ADD, _MODIFY, _REPLACE, _CANCEL, _DELETE, _EXECUTE, _TRADE, _CLEAR, _LEVEL = 1, 2, 3, 4, 5, 6, 7, 8, 9
_BUY, _SELL = 1, 2
_PRINTABLE = 1
_NS_PER_S = 1_000_000_000
_FLOW_WINDOWS_NS = (1 * _NS_PER_S, 10 * _NS_PER_S, 60 * _NS_PER_S)
_VOL_WINDOWS_NS = (300 * _NS_PER_S, 1_800 * _NS_PER_S)


@dataclass
class ReferenceInputs:
    """What the engine was told besides market data, in the order it was told."""

    adv_shares: dict[int, float] = field(default_factory=dict)
    implied_annual: dict[int, float] = field(default_factory=dict)
    child_done: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    latency_samples: list[tuple[int, int]] = field(default_factory=list)


class _VenueBook:
    """Resting orders (L3) or levels (L2) of one venue, every instrument."""

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}           # id -> [instrument, side, price, qty]
        self.levels: dict[tuple[int, int], dict[int, int]] = defaultdict(dict)

    def _change(self, instrument: int, side: int, price: int, delta: int) -> None:
        level = self.levels[(instrument, side)]
        level[price] = level.get(price, 0) + delta
        if level[price] == 0:
            del level[price]

    def apply(self, e: Any) -> None:
        kind = int(e["kind"])
        instrument = int(e["instrument_id"])
        if kind == _ADD:
            order = [instrument, int(e["side"]), int(e["price_ticks"]), int(e["quantity"])]
            self.orders[int(e["order_id"])] = order
            self._change(order[0], order[1], order[2], order[3])
        elif kind in (_MODIFY, _REPLACE):
            old = self.orders.pop(int(e["order_id"]))
            self._change(old[0], old[1], old[2], -old[3])
            new_id = int(e["related_id"]) if kind == _REPLACE else int(e["order_id"])
            order = [old[0], old[1], int(e["price_ticks"]), int(e["quantity"])]
            self.orders[new_id] = order
            self._change(order[0], order[1], order[2], order[3])
        elif kind in (_CANCEL, _EXECUTE):
            order = self.orders[int(e["order_id"])]
            quantity = int(e["quantity"])
            order[3] -= quantity
            self._change(order[0], order[1], order[2], -quantity)
            if order[3] == 0:
                del self.orders[int(e["order_id"])]
        elif kind == _DELETE:
            order = self.orders.pop(int(e["order_id"]))
            self._change(order[0], order[1], order[2], -order[3])
        elif kind == _CLEAR:
            for order_id in [k for k, o in self.orders.items() if o[0] == instrument]:
                del self.orders[order_id]
            for side in (_BUY, _SELL):
                self.levels[(instrument, side)] = {}
        elif kind == _LEVEL:
            level = self.levels[(instrument, int(e["side"]))]
            if int(e["quantity"]) == 0:
                level.pop(int(e["price_ticks"]), None)
            else:
                level[int(e["price_ticks"])] = int(e["quantity"])

    def sorted_levels(self, instrument: int, side: int) -> list[tuple[int, int]]:
        """Returns (price, shares) best first."""
        level = self.levels.get((instrument, side), {})
        return sorted(level.items(), reverse=(side == _BUY))


class _Market:
    """Every venue's re-derived book."""

    def __init__(self, options: Any) -> None:
        self.venues = list(options.venues)
        self.books = {int(v.venue_id): _VenueBook() for v in self.venues}
        self.lit = {int(v.venue_id): bool(v.lit) for v in self.venues}

    def nbbo(self, instrument: int) -> tuple[int, int, int, int]:
        """Returns (bid, bid shares, ask, ask shares) across lit venues, 0s when absent."""
        bids: dict[int, int] = defaultdict(int)
        asks: dict[int, int] = defaultdict(int)
        for venue_id, book in self.books.items():
            if not self.lit[venue_id]:
                continue
            for side, into in ((_BUY, bids), (_SELL, asks)):
                levels = book.sorted_levels(instrument, side)
                if levels:
                    into[levels[0][0]] += levels[0][1]
        bid = max(bids) if bids else 0
        ask = min(asks) if asks else 0
        return bid, bids.get(bid, 0), ask, asks.get(ask, 0)

    def mid(self, instrument: int) -> float:
        bid, _, ask, _ = self.nbbo(instrument)
        return (bid + ask) / 2 if bid > 0 and ask > 0 else 0.0

    def consolidated_depth(self, instrument: int, side: int, levels: int = 5) -> list[int]:
        """Returns the shares at the best `levels` consolidated lit prices, best first."""
        totals: dict[int, int] = defaultdict(int)
        for venue_id, book in self.books.items():
            if self.lit[venue_id]:
                for price, shares in book.sorted_levels(instrument, side):
                    totals[price] += shares
        prices = sorted(totals, reverse=(side == _BUY))[:levels]
        return [totals[p] for p in prices] + [0] * (levels - len(prices))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator != 0 else 0.0


def reference_rows(options: Any, events: np.ndarray, contexts: np.ndarray,
                   inputs: ReferenceInputs | None = None) -> np.ndarray:
    """Returns float64 rows ``[n, FEATURE_SCHEMA.size]``: for each context, the features after
    the events with ``ts_recv <= now_ns`` (``events`` sorted by ts_recv, all valid)."""
    inputs = inputs or ReferenceInputs()
    market = _Market(options)
    known = set(market.books)
    interval = int(options.vol_sample_interval_ns)
    recv = events["ts_recv"]
    # mids[instrument]: (first boundary, last boundary, mid) runs; the mid at a boundary is the
    # NBBO mid after every event with ts_recv < boundary (boundary index * interval)
    mids: dict[int, list[tuple[int, int, float]]] = defaultdict(list)
    # instrument -> first boundary at or after its first event (its GARCH recursion starts there)
    started: dict[int, int] = {}
    next_boundary: int | None = None

    def sample_through(t_ns: int) -> None:
        """Samples every boundary <= t_ns not sampled yet, from the books as they are now."""
        nonlocal next_boundary
        assert next_boundary is not None
        last = t_ns // interval
        if last >= next_boundary:
            for instrument in started:
                mids[instrument].append((next_boundary, last, market.mid(instrument)))
            next_boundary = last + 1

    out = np.zeros((contexts.size, FEATURE_SCHEMA.size))
    applied = 0
    for n in np.argsort(contexts["now_ns"], kind="stable"):
        c = contexts[n]
        now = int(c["now_ns"])
        stop = int(np.searchsorted(recv, now, side="right"))
        while applied < stop:
            e = events[applied]
            applied += 1
            instrument = int(e["instrument_id"])
            if int(e["venue_id"]) not in known or instrument >= options.max_instruments:
                continue
            t = int(e["ts_recv"])
            first = -(-t // interval)  # ceil
            if next_boundary is None:
                next_boundary = first
            started.setdefault(instrument, first)
            sample_through(t)  # boundaries up to t see the books before this event
            market.books[int(e["venue_id"])].apply(e)
        if next_boundary is not None:
            sample_through(now)
        out[n] = _row(options, market, events[:applied], c, mids, started, inputs)
    return out


def _returns_bps(samples: np.ndarray) -> np.ndarray:
    """Returns the log return in bps of each sample against the last earlier sample with a
    mid; 0 where either has none."""
    if samples.size == 0:
        return np.zeros(0)
    positions = np.arange(samples.size)
    last_valid = np.maximum.accumulate(np.where(samples > 0, positions, -1))
    previous_position = np.concatenate([[-1], last_valid[:-1]])
    previous = np.where(previous_position >= 0, samples[np.maximum(previous_position, 0)], 0.0)
    ok = (samples > 0) & (previous > 0)
    out = np.zeros(samples.size)
    out[ok] = 1e4 * np.log(samples[ok] / previous[ok])
    return out


def _row(options: Any, market: _Market, events: np.ndarray, c: Any,
         mids: dict[int, list[tuple[int, int, float]]], started: dict[int, int],
         inputs: ReferenceInputs) -> np.ndarray:
    row = np.zeros(FEATURE_SCHEMA.size)

    def put(name: str, value: float) -> None:
        row[FEATURE_SCHEMA.index(name)] = value

    instrument = int(c["instrument_id"])
    venue_id = int(c["venue_id"])
    venue = next(v for v in options.venues if int(v.venue_id) == venue_id)
    side = int(c["side"])
    buy = side == _BUY
    sign = 1.0 if buy else -1.0
    near, far = (_BUY, _SELL) if buy else (_SELL, _BUY)
    now = int(c["now_ns"])
    adv = inputs.adv_shares.get(instrument, options.default_adv_shares)
    arrival = float(c["arrival_mid_ticks"])

    bid, bid_shares, ask, ask_shares = market.nbbo(instrument)
    two_sided = bid > 0 and ask > 0
    mid = (bid + ask) / 2 if two_sided else 0.0
    near_price, far_price = (bid, ask) if buy else (ask, bid)
    near_shares, far_shares = (bid_shares, ask_shares) if buy else (ask_shares, bid_shares)
    reference_mid = mid if mid > 0 else arrival

    def fee_bps(fee: float) -> float:
        return fee / (reference_mid * options.price_tick_usd) * 1e4 if reference_mid > 0 else 0.0

    # order
    put("order.side", sign)
    put("order.quantity_remaining_fraction", int(c["remaining_quantity"]) / int(c["parent_quantity"]))
    elapsed = (int(c["end_ns"]) - now) / (int(c["end_ns"]) - int(c["start_ns"]))
    put("order.time_remaining_fraction", min(max(elapsed, 0.0), 1.0))
    put("order.parent_adv_fraction", int(c["parent_quantity"]) / adv)
    if mid > 0 and arrival > 0:
        put("order.mid_move_since_arrival_bps", sign * (mid - arrival) / arrival * 1e4)

    # child
    order_type = int(c["order_type"])
    quantity = int(c["child_quantity"])
    put("child.order_type", order_type)
    put("child.quantity_shares", quantity)
    bucket = 0 if quantity <= 100 else 1 if quantity <= 500 else 2 if quantity <= 2000 else \
        3 if quantity <= 10000 else 4
    put("child.size_bucket", bucket)
    put("child.adv_fraction", quantity / adv)
    price = float(c["child_price_ticks"])
    if price == 0:
        price = [float(far_price), float(near_price), mid][order_type]
    if price > 0 and near_price > 0:
        put("child.price_offset_ticks", price - near_price if buy else near_price - price)
    fees = [venue.taker_fee_usd_per_share, venue.maker_fee_usd_per_share,
            venue.midpoint_fee_usd_per_share]
    put("child.fee_bps", fee_bps(fees[order_type]))

    # consolidated book
    put("nbbo.two_sided", 1.0 if two_sided else 0.0)
    if two_sided:
        put("nbbo.spread_ticks", ask - bid)
        put("nbbo.spread_bps", (ask - bid) / mid * 1e4)
    put("nbbo.imbalance_top", _ratio(near_shares - far_shares, near_shares + far_shares))
    near_depth = market.consolidated_depth(instrument, near)
    far_depth = market.consolidated_depth(instrument, far)
    weighted_near = sum(q / (k + 1) for k, q in enumerate(near_depth))
    weighted_far = sum(q / (k + 1) for k, q in enumerate(far_depth))
    put("book.imbalance_depth", _ratio(weighted_near - weighted_far, weighted_near + weighted_far))
    for k in range(5):
        put(f"book.near_depth_{k + 1}", near_depth[k])
        put(f"book.far_depth_{k + 1}", far_depth[k])

    # trade flow: filter the event list by bucket-aligned window
    width = int(options.flow_bucket_ns)
    is_print = (np.isin(events["kind"], (_EXECUTE, _TRADE)) &
                ((events["flags"] & _PRINTABLE) != 0) &
                (events["instrument_id"] == instrument) &
                np.isin(events["venue_id"], list(market.books)))
    bucket_of = events["ts_recv"] // width
    current = now // width

    def window(window_ns: int, only_venue: int | None = None) -> tuple[int, int, int]:
        n = window_ns // width
        mask = is_print & (bucket_of >= current - n + 1) & (bucket_of <= current)
        if only_venue is not None:
            mask &= events["venue_id"] == only_venue
        shares = events["quantity"][mask].astype(np.int64)
        resting = events["side"][mask]
        return (int(shares[resting == _SELL].sum()), int(shares[resting == _BUY].sum()),
                int(shares.sum()))

    for name, window_ns in zip(("1s", "10s", "60s"), _FLOW_WINDOWS_NS):
        buys, sells, _ = window(window_ns)
        put(f"flow.imbalance_{name}", sign * _ratio(buys - sells, buys + sells))
    volume_60s = window(_FLOW_WINDOWS_NS[2])[2]
    put("flow.volume_60s_shares", volume_60s)

    # volatility: every sample since the instrument's first event
    realized = [0.0, 0.0]
    garch = options.garch
    variance = garch.initial_variance_bps2 if garch.initial_variance_bps2 > 0 else \
        garch.omega_bps2 / (1 - garch.alpha - garch.beta)
    if instrument in started:
        interval = int(options.vol_sample_interval_ns)
        every = int(garch.sample_interval_ns) // interval
        first, last = started[instrument], now // interval
        samples = np.zeros(max(last - first + 1, 0))  # the mid at boundaries first..last
        for lo, hi, m in mids[instrument]:
            lo, hi = max(lo, first), min(hi, last)
            if lo <= hi:
                samples[lo - first:hi - first + 1] = m
        squares = _returns_bps(samples) ** 2
        for k, window_ns in enumerate(_VOL_WINDOWS_NS):
            count = window_ns // interval
            realized[k] = math.sqrt(squares[max(squares.size - count, 0):].sum())
        garch_positions = [b - first for b in range(first, last + 1) if b % every == 0]
        for r in _returns_bps(samples[garch_positions]):
            variance = garch.omega_bps2 + garch.alpha * r * r + garch.beta * variance
    put("vol.realized_5m_bps", realized[0])
    put("vol.realized_30m_bps", realized[1])
    put("vol.garch_bps", math.sqrt(variance))
    if instrument in inputs.implied_annual:
        put("vol.implied_annual", inputs.implied_annual[instrument])
        put("vol.implied_available", 1.0)

    # candidate venue
    put("venue.is_dark", 0.0 if venue.lit else 1.0)
    if venue.lit:
        book = market.books[venue_id]
        near_levels = book.sorted_levels(instrument, near)
        far_levels = book.sorted_levels(instrument, far)
        venue_near_price, venue_near_shares = near_levels[0] if near_levels else (0, 0)
        venue_far_price, venue_far_shares = far_levels[0] if far_levels else (0, 0)
        if near_levels and far_levels:
            bid_price, ask_price = (venue_near_price, venue_far_price) if buy else \
                (venue_far_price, venue_near_price)
            put("venue.spread_ticks", ask_price - bid_price)
        put("venue.at_nbbo_near", 1.0 if near_levels and venue_near_price == near_price else 0.0)
        put("venue.at_nbbo_far", 1.0 if far_levels and venue_far_price == far_price else 0.0)
        put("venue.near_touch_shares", venue_near_shares)
        put("venue.far_touch_shares", venue_far_shares)
        put("venue.imbalance_top", _ratio(venue_near_shares - venue_far_shares,
                                          venue_near_shares + venue_far_shares))
        put("venue.near_depth5_shares", sum(q for _, q in near_levels[:5]))
        put("venue.far_depth5_shares", sum(q for _, q in far_levels[:5]))
    buys, sells, _ = window(_FLOW_WINDOWS_NS[1], venue_id)
    put("venue.flow_imbalance_10s", sign * _ratio(buys - sells, buys + sells))
    venue_volume = window(_FLOW_WINDOWS_NS[2], venue_id)[2]
    put("venue.volume_60s_shares", venue_volume)
    put("venue.volume_share_60s", _ratio(venue_volume, volume_60s))

    decay = 0.5 ** (1.0 / options.fill_rate_half_life_orders)
    history = [filled / q for v, s, t, q, filled in inputs.child_done
               if v == venue_id and s == side and t == order_type and
               (0 if q <= 100 else 1 if q <= 500 else 2 if q <= 2000 else 3 if q <= 10000 else 4)
               == bucket]
    ages = range(len(history) - 1, -1, -1)
    filled_weight = sum(decay ** age * f for age, f in zip(ages, history))
    order_weight = sum(decay ** age for age in range(len(history)))
    prior_weight = options.fill_rate_prior_weight_orders
    total = order_weight + prior_weight
    put("venue.fill_rate", (filled_weight + options.fill_rate_prior * prior_weight) / total
        if total > 0 else options.fill_rate_prior)

    w = options.latency_ewma_weight
    samples_ns = [x for v, x in inputs.latency_samples if v == venue_id]
    count = len(samples_ns)
    latency = (1 - w) ** count * venue.latency_ns + sum(
        w * (1 - w) ** (count - 1 - k) * x for k, x in enumerate(samples_ns))
    put("venue.latency_us", latency / 1000.0)
    put("venue.maker_fee_bps", fee_bps(venue.maker_fee_usd_per_share))
    put("venue.taker_fee_bps", fee_bps(venue.taker_fee_usd_per_share))
    put("venue.midpoint_fee_bps", fee_bps(venue.midpoint_fee_usd_per_share))
    return row
