"""Small valid multi-venue event streams for the feature tests, built from a list of abstract
actions (what hypothesis draws): two lit L3 venues, a lit L2 venue and a dark pool, two
instruments, gaps from nothing to many minutes so every window fills and expires."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sor import _core
from sor.book import MD_EVENT_DTYPE

L3_VENUES = (0, 1)
L2_VENUE = 2
DARK_VENUE = 3
INSTRUMENTS = 2
START_NS = 1_700_000_000_000_000_000
GAPS_NS = (0, 1_000, 1_000_000, 40_000_000, 300_000_000, 1_200_000_000, 7_000_000_000,
           45_000_000_000, 200_000_000_000, 700_000_000_000)
BUY, SELL, NONE = 1, 2, 0
ADD, MODIFY, REPLACE, CANCEL, DELETE, EXECUTE, TRADE, CLEAR, LEVEL = 1, 2, 3, 4, 5, 6, 7, 8, 9


def feature_venues() -> list:
    """Returns the venues of these streams as core feature venue specs."""
    def spec(venue_id: int, lit: bool, book_type: object, maker: float, taker: float,
             mid: float, latency_ns: int) -> object:
        return _core.FeatureVenueSpec(venue_id, lit=lit, book_type=book_type,
                                      maker_fee_usd_per_share=maker,
                                      taker_fee_usd_per_share=taker,
                                      midpoint_fee_usd_per_share=mid, latency_ns=latency_ns)
    return [spec(0, True, _core.BookType.L3, -0.002, 0.003, 0.0015, 90_000),
            spec(1, True, _core.BookType.L3, 0.0005, -0.0002, 0.001, 120_000),
            spec(2, True, _core.BookType.L2, 0.0, 0.0009, 0.0009, 800_000),
            spec(3, False, _core.BookType.L3, 0.001, 0.001, 0.001, 160_000)]


@dataclass
class _State:
    t: int = START_NS
    base: list[int] = field(default_factory=lambda: [1_000] * INSTRUMENTS)
    sequence: dict[int, int] = field(default_factory=lambda: {v: 0 for v in range(4)})
    next_id: int = 1
    orders: dict[int, dict[int, list[int]]] = field(
        default_factory=lambda: {v: {} for v in L3_VENUES})  # venue -> id -> [instr, side, px, qty]
    levels: dict[tuple[int, int], dict[int, int]] = field(default_factory=dict)  # (instr, side)


def _best(state: _State, venue: int, instrument: int, side: int) -> int:
    if venue == L2_VENUE:
        prices = list(state.levels.get((instrument, side), {}))
    else:
        prices = [o[2] for o in state.orders[venue].values() if o[0] == instrument and o[1] == side]
    if not prices:
        return 0
    return max(prices) if side == BUY else min(prices)


def _place(state: _State, venue: int, instrument: int, side: int, offset: int) -> int:
    """A price `offset` ticks from the base on `side`, never locking or crossing the venue."""
    base = state.base[instrument]
    price = base - 1 - offset if side == BUY else base + offset
    other = _best(state, venue, instrument, SELL if side == BUY else BUY)
    if other:
        price = min(price, other - 1) if side == BUY else max(price, other + 1)
    return max(price, 1)


def build_stream(actions: list[tuple[int, ...]]) -> np.ndarray:
    """Turns actions (gap, venue, op, side, offset, lots, pick, instrument) into valid events in
    ts_recv order."""
    state = _State()
    out = []
    for gap, venue, op, side_code, offset, lots, pick, instrument in actions:
        state.t += GAPS_NS[gap % len(GAPS_NS)]
        venue %= 4
        instrument %= INSTRUMENTS
        side = BUY if side_code % 2 == 0 else SELL
        quantity = 100 * (1 + lots % 30) + (7 if lots % 11 == 0 else 0)
        e = np.zeros(1, dtype=MD_EVENT_DTYPE)[0]
        e["ts_recv"] = state.t
        e["ts_event"] = state.t - 1_000
        e["venue_id"] = venue
        e["instrument_id"] = instrument
        op %= 10
        if op == 9:  # the fundamental moves; no event
            state.base[instrument] = max(50, state.base[instrument] + (offset % 7) - 3)
            continue
        if venue == DARK_VENUE or op == 8:
            e["kind"] = TRADE
            e["side"] = (BUY, SELL, NONE)[side_code % 3]
            e["price_ticks"] = state.base[instrument]
            e["quantity"] = quantity
            e["flags"] = 0 if pick % 9 == 0 else 1
        elif venue == L2_VENUE:
            levels = state.levels.setdefault((instrument, side), {})
            if op < 3 and levels:
                price = sorted(levels)[pick % len(levels)]
                e["quantity"] = 0
                del levels[price]
            else:
                price = _place(state, venue, instrument, side, offset % 5)
                e["quantity"] = quantity
                levels[price] = quantity
            e["kind"] = LEVEL
            e["side"] = side
            e["price_ticks"] = price
        else:
            book = state.orders[venue]
            mine = [k for k, o in book.items() if o[0] == instrument]
            if op == 7 and pick % 5 == 0:
                e["kind"] = CLEAR
                for k in mine:
                    del book[k]
            elif op < 3 or not mine:
                order_id = state.next_id
                state.next_id += 1
                price = _place(state, venue, instrument, side, offset % 5)
                book[order_id] = [instrument, side, price, quantity]
                e["kind"], e["order_id"], e["side"] = ADD, order_id, side
                e["price_ticks"], e["quantity"] = price, quantity
            else:
                order_id = mine[pick % len(mine)]
                order = book[order_id]
                e["order_id"] = order_id
                e["side"] = order[1]
                if op in (3, 4):  # execute or cancel part (or all) of it
                    take = min(order[3], quantity)
                    e["kind"] = EXECUTE if op == 3 else CANCEL
                    e["quantity"] = take
                    if op == 3:
                        e["flags"] = 0 if pick % 9 == 0 else 1
                        e["related_id"] = state.next_id
                        state.next_id += 1
                    order[3] -= take
                    if order[3] == 0:
                        del book[order_id]
                elif op == 5:
                    e["kind"] = DELETE
                    del book[order_id]
                else:  # modify in place or replace under a new id
                    del book[order_id]
                    price = _place(state, venue, instrument, order[1], offset % 5)
                    new_id = order_id
                    if op == 7:
                        new_id = state.next_id
                        state.next_id += 1
                        e["related_id"] = new_id
                    e["kind"] = MODIFY if op == 6 else REPLACE
                    e["price_ticks"], e["quantity"] = price, quantity
                    book[new_id] = [instrument, order[1], price, quantity]
        state.sequence[venue] += 1
        e["sequence"] = state.sequence[venue]
        out.append(e)
    return np.array(out, dtype=MD_EVENT_DTYPE)


def random_contexts(rng: np.random.Generator, events: np.ndarray, count: int,
                    venues: tuple[int, ...] = (0, 1, 2, 3), instruments: int = INSTRUMENTS,
                    ) -> np.ndarray:
    """Returns `count` random candidate children at times within and after the stream."""
    c = np.zeros(count, dtype=_core.decision_context_dtype)
    recv = events["ts_recv"] if events.size else np.array([START_NS])
    anchors = recv[rng.integers(0, recv.size, count)]
    # offsets from an event: inside, and on both sides of every window's edge
    extra = np.array([0, 1, 50_000_000, 900_000_000, 999_999_999, 1_000_000_000, 5_000_000_000,
                      9_999_999_999, 10_000_000_000, 59_999_999_999, 60_000_000_000,
                      60_100_000_000, 70_000_000_000, 299_999_999_999, 300_000_000_000,
                      301_000_000_000, 400_000_000_000, 1_799_999_999_999, 1_800_000_000_000,
                      1_801_000_000_000])
    c["now_ns"] = anchors + extra[rng.integers(0, extra.size, count)]
    c["start_ns"] = START_NS - 1_000_000_000
    c["end_ns"] = c["now_ns"] + rng.integers(-10**9, 10**12, count)
    c["end_ns"] = np.maximum(c["end_ns"], c["start_ns"] + 1)
    c["parent_quantity"] = rng.integers(100, 200_000, count)
    c["remaining_quantity"] = (c["parent_quantity"] * rng.random(count)).astype(np.int64)
    c["child_quantity"] = rng.choice([1, 100, 101, 500, 501, 2_000, 2_001, 10_000, 10_001, 55_000],
                                     count)
    c["child_price_ticks"] = np.where(rng.random(count) < 0.5, 0, rng.integers(900, 1_100, count))
    c["arrival_mid_ticks"] = np.where(rng.random(count) < 0.2, 0.0, rng.integers(950, 1_050, count))
    c["instrument_id"] = rng.integers(0, instruments, count)
    c["venue_id"] = rng.choice(venues, count)
    c["side"] = rng.integers(1, 3, count)
    c["order_type"] = rng.integers(0, 3, count)
    return c
