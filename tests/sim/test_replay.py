"""The replay market: parity with a slow, obvious Python replay on synthetic flow, ITCH bytes
in gives the same reports as events in, and bad input is named."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import pytest

from sor import _core
from sor.errors import SimulationError, UsageError
from sor.feed import itch
from sor.sim import synthetic_order_flow
from sor.sim.replay import (PropagatorImpact, ReplayMarket, ReplayOptions, ReplayVenue,
                            agent_order, agent_orders)

ADD, MODIFY, REPLACE, CANCEL, DELETE, EXECUTE, TRADE, CLEAR, LEVEL, BROKEN, STATUS = range(1, 12)
BUY, SELL = 1, 2
LIMIT, MARKET, IOC, POST_ONLY, MIDPOINT_PEG = range(5)
ACK, FILL, CANCELLED, REJECTED = range(1, 5)
ADDED, REMOVED = 1, 2
R_UNKNOWN_VENUE, R_UNKNOWN_INSTRUMENT, R_BAD_QUANTITY, R_BAD_PRICE, R_BAD_SIDE = range(1, 6)
R_UNSUPPORTED, R_WOULD_TAKE, R_UNKNOWN_ORDER, R_DUPLICATE = range(6, 10)
FLAG_CROSS = 2
MASK = (1 << 64) - 1
INT64_MIN = -(1 << 63)
DAY_NS = 86_400 * 10**9
START_NS = 1_700_000_000_000_000_000
MIDNIGHT = START_NS // DAY_NS * DAY_NS


# --- the slow, obvious reference ----------------------------------------------------------

class Xoshiro:
    """xoshiro256** seeded by splitmix64, as sor::Random."""

    def __init__(self, seed: int) -> None:
        self.s = []
        for _ in range(4):
            seed = (seed + 0x9E3779B97F4A7C15) & MASK
            z = seed
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            self.s.append(z ^ (z >> 31))

    @staticmethod
    def _rotl(x: int, k: int) -> int:
        return ((x << k) | (x >> (64 - k))) & MASK

    def next(self) -> int:
        s = self.s
        result = (self._rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = self._rotl(s[3], 45)
        return result

    def below(self, n: int) -> int:
        return (self.next() * n) >> 64


class Book:
    """Orders and level totals of one venue; enough for a valid synthetic L3 stream."""

    def __init__(self) -> None:
        self.orders: dict[int, list[int]] = {}  # id -> [instrument, side, price, qty]
        self.levels: dict[tuple[int, int, int], int] = {}

    def level(self, instrument: int, side: int, price: int) -> int:
        return self.levels.get((instrument, side, price), 0)

    def _change(self, instrument: int, side: int, price: int, delta: int) -> None:
        key = (instrument, side, price)
        self.levels[key] = self.levels.get(key, 0) + delta
        if self.levels[key] == 0:
            del self.levels[key]

    def prices(self, instrument: int, side: int) -> list[int]:
        """Level prices of one side, best first."""
        prices = [p for (i, s, p) in self.levels if i == instrument and s == side]
        return sorted(prices, reverse=side == BUY)

    def apply(self, e) -> None:
        kind, oid = int(e["kind"]), int(e["order_id"])
        if kind == ADD:
            self.orders[oid] = [int(e["instrument_id"]), int(e["side"]), int(e["price_ticks"]),
                                int(e["quantity"])]
            self._change(*self.orders[oid][:3], int(e["quantity"]))
        elif kind in (EXECUTE, CANCEL, DELETE, REPLACE):
            o = self.orders[oid]
            gone = o[3] if kind in (DELETE, REPLACE) else int(e["quantity"])
            self._change(*o[:3], -gone)
            o[3] -= gone
            if o[3] == 0:
                del self.orders[oid]
            if kind == REPLACE:
                new = int(e["related_id"])
                self.orders[new] = [o[0], o[1], int(e["price_ticks"]), int(e["quantity"])]
                self._change(*self.orders[new][:3], int(e["quantity"]))
        else:
            assert kind in (TRADE, STATUS), kind


@dataclass
class Order:
    o: dict
    leaves: int = 0
    ahead: int = 0
    ahead_ids: frozenset = frozenset()
    open: bool = False
    resting: bool = False


@dataclass
class ReferenceReplay:
    """The replay rules of docs/sim-replay.md without impact, one obvious step at a time."""

    venues: tuple[ReplayVenue, ...]
    queue_model: str
    seed: int
    streams: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.venues)
        self.entry_rng = Xoshiro((self.seed * 3 + 1) & MASK)
        self.report_rng = Xoshiro((self.seed * 3 + 2) & MASK)
        self.books = [Book() for _ in range(n)]
        self.depleted: list[dict] = [{} for _ in range(n)]
        self.resting: list[list[int]] = [[] for _ in range(n)]
        self.instruments = [set() for _ in range(n)]
        self.last_arrival = [INT64_MIN] * n
        self.last_report = [INT64_MIN] * n
        self.orders: list[Order] = []
        self.sent: dict[int, int] = {}
        self.open: dict[int, int] = {}
        self.actions: list = []
        self.action_seq = 0
        self.reports: list = []
        self.report_seq = 0
        self.now = INT64_MIN
        self.events: list = []
        self.cursor = 0
        self.started = False

    def load(self, venue_id: int, events: np.ndarray) -> None:
        self.streams[venue_id] = events
        for e in events:
            if int(e["kind"]) != STATUS:
                self.instruments[venue_id].add(int(e["instrument_id"]))

    @staticmethod
    def _jitter(rng: Xoshiro, jitter_ns: int) -> int:
        return 0 if jitter_ns <= 0 else rng.below(jitter_ns + 1)

    def _emit(self, report: dict, has_venue: bool) -> None:
        v = report["venue_id"]
        if has_venue:
            vo = self.venues[v]
            report["ts_recv"] = max(self.last_report[v], report["ts_event"] + vo.ack_latency_ns
                                    + self._jitter(self.report_rng, vo.latency_jitter_ns))
            self.last_report[v] = report["ts_recv"]
        else:
            report["ts_recv"] = report["ts_event"]
        self.reports.append((report["ts_recv"], self.report_seq, report))
        self.report_seq += 1

    def _report(self, o: dict, kind: int, ts: int, *, price=None, quantity=0, leaves=0, fee=0.0,
                detail=0, has_venue=True) -> None:
        self._emit(dict(ts_event=ts, client_order_id=o["client_order_id"], tag=o["tag"],
                        price_ticks=o["price_ticks"] if price is None else price,
                        quantity=quantity, leaves_quantity=leaves, fee_usd=fee,
                        instrument_id=o["instrument_id"], venue_id=o["venue_id"], kind=kind,
                        side=o["side"], detail=detail), has_venue)

    def _fill(self, order: Order, ts: int, price: int, q: int, liquidity: int) -> None:
        if q <= 0:
            return
        order.leaves -= q
        vo = self.venues[order.o["venue_id"]]
        rate = vo.taker_fee_usd_per_share if liquidity == REMOVED else vo.maker_fee_usd_per_share
        self._report(order.o, FILL, ts, price=price, quantity=q, leaves=order.leaves,
                     fee=float(q) * rate, detail=liquidity)
        if order.leaves == 0:
            order.open = order.resting = False
            del self.open[order.o["client_order_id"]]

    def _visible(self, v: int, inst: int, side: int, price: int) -> int:
        return max(0, self.books[v].level(inst, side, price)
                   - self.depleted[v].get((inst, side, price), 0))

    def submit(self, record) -> None:
        o = {k: int(record[k]) for k in record.dtype.names}
        ts = max(o["ts_send"], self.now)
        if o["venue_id"] >= len(self.venues):
            self._report(o, REJECTED, ts, detail=R_UNKNOWN_VENUE, has_venue=False)
            return
        self.orders.append(Order(o))
        self.sent[o["client_order_id"]] = len(self.orders) - 1
        self._send(o["venue_id"], ts, len(self.orders) - 1, o["client_order_id"], False)

    def _send(self, v: int, ts: int, index: int, client_id: int, is_cancel: bool) -> None:
        vo = self.venues[v]
        arrival = max(self.last_arrival[v], ts + vo.order_entry_latency_ns
                      + self._jitter(self.entry_rng, vo.latency_jitter_ns))
        self.last_arrival[v] = arrival
        heapq.heappush(self.actions, (arrival, self.action_seq, index, client_id, v, is_cancel))
        self.action_seq += 1

    def cancel(self, client_id: int, ts: int) -> None:
        ts = max(ts, self.now)
        if client_id not in self.sent:
            o = dict(client_order_id=client_id, tag=0, price_ticks=0, instrument_id=0,
                     venue_id=0xFF, side=0)
            self._report(o, REJECTED, ts, detail=R_UNKNOWN_ORDER, has_venue=False)
            return
        index = self.sent[client_id]
        self._send(self.orders[index].o["venue_id"], ts, index, client_id, True)

    def run_until(self, ts: int) -> None:
        if not self.started:
            self.started = True
            merged = [e for v in self.streams for e in self.streams[v]]
            self.events = sorted(merged, key=lambda e: int(e["ts_event"]))  # stable
        if ts < self.now:
            return
        while True:
            recorded = int(self.events[self.cursor]["ts_event"]) if self.cursor < len(self.events) else None
            action = self.actions[0][0] if self.actions else None
            if recorded is None and action is None:
                break
            if min(x for x in (recorded, action) if x is not None) > ts:
                break
            if recorded is not None and (action is None or recorded <= action):
                self._recorded(self.events[self.cursor])
                self.cursor += 1
            else:
                self._action(heapq.heappop(self.actions))
        self.now = ts

    def drain(self) -> list[dict]:
        self.reports.sort(key=lambda r: (r[0], r[1]))
        ready = [r for r in self.reports if r[0] <= self.now]
        self.reports = self.reports[len(ready):]
        return [r[2] for r in ready]

    # -- the agent's orders at the venue --
    def _action(self, action) -> None:
        ts, _, index, client_id, v, is_cancel = action
        if is_cancel:
            target = self.open.get(client_id)
            if target is None or self.orders[target].o["venue_id"] != v:
                self._report(self.orders[index].o, REJECTED, ts, detail=R_UNKNOWN_ORDER)
                return
            order = self.orders[target]
            order.leaves, order.open, order.resting = 0, False, False
            del self.open[client_id]
            self._report(order.o, CANCELLED, ts)
            self.resting[v] = [i for i in self.resting[v] if self.orders[i].resting]
            return
        order = self.orders[index]
        o = order.o
        vo = self.venues[v]
        priced = o["type"] != MARKET
        reason = 0
        if o["instrument_id"] not in self.instruments[v]:
            reason = R_UNKNOWN_INSTRUMENT
        elif o["side"] not in (BUY, SELL):
            reason = R_BAD_SIDE
        elif o["quantity"] <= 0 or not 0 <= o["min_quantity"] <= o["quantity"]:
            reason = R_BAD_QUANTITY
        elif o["type"] >= MIDPOINT_PEG:
            reason = R_UNSUPPORTED
        elif priced and (o["price_ticks"] <= 0 or o["price_ticks"] % vo.tick_size_ticks):
            reason = R_BAD_PRICE
        elif o["client_order_id"] in self.open:
            reason = R_DUPLICATE
        side, inst, limit = o["side"], o["instrument_id"], o["price_ticks"]
        other = SELL if side == BUY else BUY

        def within(price: int) -> bool:
            return not priced or (price <= limit if side == BUY else price >= limit)

        levels = self.books[v].prices(inst, other) if reason == 0 else []
        if reason == 0 and o["type"] == POST_ONLY:
            for price in levels:
                if not within(price):
                    break
                if self._visible(v, inst, other, price) > 0:
                    reason = R_WOULD_TAKE
                    break
        if reason:
            self._report(o, REJECTED, ts, detail=reason)
            return
        order.open, order.leaves = True, o["quantity"]
        self.open[o["client_order_id"]] = index
        self._report(o, ACK, ts, leaves=order.leaves)
        for price in levels:
            if order.leaves == 0 or not within(price):
                break
            available = self._visible(v, inst, other, price)
            if available <= 0:
                continue
            q = min(available, order.leaves)
            key = (inst, other, price)
            self.depleted[v][key] = self.depleted[v].get(key, 0) + q
            for r in self.resting[v]:
                mine = self.orders[r]
                if (mine.resting and mine.o["instrument_id"] == inst and mine.o["side"] == other
                        and mine.o["price_ticks"] == price):
                    mine.ahead = max(0, mine.ahead - q)
            self._fill(order, ts, price, q, REMOVED)
        if order.leaves == 0:
            return
        if o["type"] in (LIMIT, POST_ONLY):
            order.resting = True
            order.ahead = self._visible(v, inst, side, limit)
            if self.queue_model == "fifo" and order.ahead > 0:
                order.ahead_ids = frozenset(oid for oid, rec in self.books[v].orders.items()
                                            if rec[:3] == [inst, side, limit])
            self.resting[v].append(index)
            return
        order.leaves, order.open = 0, False
        del self.open[o["client_order_id"]]
        self._report(o, CANCELLED, ts)

    # -- the recorded market --
    def _recorded(self, e) -> None:
        v, kind, inst, ts = int(e["venue_id"]), int(e["kind"]), int(e["instrument_id"]), int(e["ts_event"])
        book = self.books[v]
        old = before = None
        if kind in (EXECUTE, CANCEL, DELETE, REPLACE):
            old = list(book.orders[int(e["order_id"])])
            before = book.level(*old[:3])
        book.apply(e)
        if kind == ADD:
            self._crossing_add(v, inst, int(e["side"]), int(e["price_ticks"]), int(e["quantity"]), ts)
        elif kind == EXECUTE:
            self._level_reduced(v, inst, old[1], old[2], before, int(e["quantity"]), True, e, ts)
            price = int(e["price_ticks"]) or old[2]
            self._trade_through(v, inst, old[1], price, ts)
            self._drop_empty(v, inst, old[1], old[2])
        elif kind in (CANCEL, DELETE):
            q = int(e["quantity"]) if kind == CANCEL else old[3]
            self._level_reduced(v, inst, old[1], old[2], before, q, False, e, ts)
            self._drop_empty(v, inst, old[1], old[2])
        elif kind == REPLACE:
            self._level_reduced(v, inst, old[1], old[2], before, old[3], False, e, ts)
            self._drop_empty(v, inst, old[1], old[2])
            self._crossing_add(v, inst, old[1], int(e["price_ticks"]), int(e["quantity"]), ts)
        elif kind == TRADE and not int(e["flags"]) & FLAG_CROSS and int(e["side"]):
            self._trade_through(v, inst, int(e["side"]), int(e["price_ticks"]), ts)
        self.resting[v] = [i for i in self.resting[v] if self.orders[i].resting]

    def _drop_empty(self, v: int, inst: int, side: int, price: int) -> None:
        if self.books[v].level(inst, side, price) == 0:
            self.depleted[v].pop((inst, side, price), None)

    def _level_reduced(self, v, inst, side, price, level_before, q, execution, e, ts) -> None:
        key = (inst, side, price)
        depleted_before = self.depleted[v].get(key, 0)
        taken_back = min(q, depleted_before)
        if depleted_before:
            self.depleted[v][key] -= taken_back
            if self.depleted[v][key] == 0:
                del self.depleted[v][key]
        from_queue = q - taken_back
        visible_before = max(0, level_before - depleted_before)
        visible_after = self._visible(v, inst, side, price)
        ours_ahead = 0
        for index in self.resting[v]:
            order = self.orders[index]
            o = order.o
            if (not order.resting or o["instrument_id"] != inst or o["side"] != side
                    or o["price_ticks"] != price):
                continue
            if execution:
                reach = from_queue - order.ahead - ours_ahead
                order.ahead = max(0, order.ahead - from_queue)
                ours_ahead += order.leaves
                if reach > 0:
                    self._fill(order, ts, price, min(order.leaves, reach), ADDED)
            elif self.queue_model == "proportional" and visible_before > 0:
                order.ahead -= from_queue * order.ahead // visible_before
            elif self.queue_model == "optimistic":
                order.ahead = max(0, order.ahead - from_queue)
            elif self.queue_model == "fifo" and int(e["order_id"]) in order.ahead_ids:
                order.ahead = max(0, order.ahead - from_queue)
            order.ahead = min(order.ahead, visible_after)

    def _trade_through(self, v, inst, side, price, ts) -> None:
        for index in self.resting[v]:
            order = self.orders[index]
            o = order.o
            if not order.resting or o["instrument_id"] != inst or o["side"] != side:
                continue
            if (o["price_ticks"] > price) if side == BUY else (o["price_ticks"] < price):
                self._fill(order, ts, o["price_ticks"], order.leaves, ADDED)

    def _crossing_add(self, v, inst, side, price, quantity, ts) -> None:
        ours = SELL if side == BUY else BUY
        crossed = [i for i in self.resting[v]
                   if self.orders[i].resting and self.orders[i].o["instrument_id"] == inst
                   and self.orders[i].o["side"] == ours
                   and ((self.orders[i].o["price_ticks"] >= price) if ours == BUY
                        else (self.orders[i].o["price_ticks"] <= price))]
        crossed.sort(key=lambda i: -self.orders[i].o["price_ticks"] if ours == BUY
                     else self.orders[i].o["price_ticks"])
        left = quantity
        for index in crossed:
            if left == 0:
                break
            q = min(left, self.orders[index].leaves)
            self._fill(self.orders[index], ts, self.orders[index].o["price_ticks"], q, ADDED)
            left -= q
        if left < quantity:
            key = (inst, side, price)
            self.depleted[v][key] = self.depleted[v].get(key, 0) + quantity - left


# --- the scenario both replays run ---------------------------------------------------------

def venue_streams(flow: np.ndarray, venue_count: int) -> dict[int, np.ndarray]:
    return {v: flow[flow["venue_id"] == v] for v in range(venue_count)}


def agent_script(flow: np.ndarray, venue_count: int, count: int, seed: int) -> list:
    """Orders and cancels at fixed times, priced around the latest recorded add of the venue."""
    rng = np.random.default_rng(seed)
    ts_all = flow["ts_event"]
    times = np.sort(rng.integers(int(ts_all[50]), int(ts_all[-1]), size=count))
    script = []
    for k, ts in enumerate(times, start=1):
        v = int(rng.integers(venue_count))
        mine = flow[(flow["venue_id"] == v) & (flow["ts_event"] <= ts) & (flow["kind"] == ADD)]
        reference = int(mine["price_ticks"][-1])
        side = "buy" if rng.random() < 0.5 else "sell"
        offset = int(rng.integers(-3, 4))
        price = reference + offset if side == "buy" else reference - offset
        kind = rng.choice(["limit", "limit", "limit", "ioc", "market", "post_only"])
        quantity = int(rng.integers(1, 6)) * 100
        if rng.random() < 0.04:
            quantity = 0  # A bad order: rejected, the replay goes on.
        client_id = k if rng.random() > 0.03 else max(1, k - 1)  # Sometimes a duplicate id.
        script.append(("order", int(ts), agent_order(
            ts_send=int(ts), client_order_id=client_id, side=side, quantity=quantity,
            price_ticks=price, type=str(kind), venue_id=v, tag=1000 + k)))
        if rng.random() < 0.3:
            script.append(("cancel", int(ts) + int(rng.integers(0, 20_000)),
                           int(rng.integers(max(1, k - 5), k + 1))))
    return sorted(script, key=lambda step: step[1])


def run_script(market, script, end_ns: int) -> list[tuple]:
    reports = []
    for step, ts, payload in script:
        market.run_until(ts)
        reports.extend(_rows(market))
        if step == "order":
            market.submit(payload if isinstance(market, ReplayMarket) else payload[0])
        else:
            market.cancel(payload, ts)
    market.run_until(end_ns)
    reports.extend(_rows(market))
    return reports


def _rows(market) -> list[tuple]:
    if isinstance(market, ReplayMarket):
        drained = market.drain_reports()
        return [tuple(r[name].item() for name in _FIELDS) for r in drained]
    return [tuple(r[name] for name in _FIELDS) for r in market.drain()]


_FIELDS = ("ts_event", "ts_recv", "client_order_id", "tag", "price_ticks", "quantity",
           "leaves_quantity", "fee_usd", "instrument_id", "venue_id", "kind", "side", "detail")

VENUES = (
    ReplayVenue(order_entry_latency_ns=3_000, ack_latency_ns=2_000, market_data_latency_ns=1_000,
                latency_jitter_ns=1_500, maker_fee_usd_per_share=-0.0020,
                taker_fee_usd_per_share=0.0030),
    ReplayVenue(order_entry_latency_ns=8_000, ack_latency_ns=5_000, latency_jitter_ns=4_000,
                maker_fee_usd_per_share=0.0010, taker_fee_usd_per_share=-0.0005),
)


@pytest.fixture(scope="module")
def flow() -> np.ndarray:
    return synthetic_order_flow(seed=11, event_count=6_000, venue_count=2, target_orders=60)


@pytest.mark.parametrize("queue_model", ["conservative", "proportional", "optimistic", "fifo"])
def test_matches_the_reference_replay(flow, queue_model):
    script = agent_script(flow, 2, 150, seed=3)
    end = int(flow["ts_event"][-1]) + 1_000_000
    options = ReplayOptions(venues=VENUES, queue_model=queue_model, seed=42)
    with ReplayMarket(venue_streams(flow, 2), options=options) as market:
        got = run_script(market, script, end)
        counters = market.counters
    reference = ReferenceReplay(VENUES, queue_model, 42)
    for v, events in venue_streams(flow, 2).items():
        reference.load(v, events)
    expected = run_script(reference, script, end)
    assert got == expected
    kinds = {row[10] for row in got}
    assert {ACK, FILL, CANCELLED, REJECTED} <= kinds
    liquidity = {row[12] for row in got if row[10] == FILL}
    assert liquidity == {ADDED, REMOVED}
    assert counters["recorded_events"] == len(flow)
    assert counters["fills"] == sum(1 for row in got if row[10] == FILL)


def test_same_seed_same_reports_and_another_seed_other_latencies(flow):
    script = agent_script(flow, 2, 60, seed=5)
    end = int(flow["ts_event"][-1]) + 1_000_000

    def run(seed):
        options = ReplayOptions(venues=VENUES, seed=seed, impact_model="propagator")
        with ReplayMarket(venue_streams(flow, 2), options=options) as market:
            return run_script(market, script, end)

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_itch_bytes_replay_like_the_events(flow):
    streams = venue_streams(flow, 2)
    data = {v: itch.encode(events, session_date_ns=MIDNIGHT) for v, events in streams.items()}
    script = agent_script(flow, 2, 60, seed=9)
    end = int(flow["ts_event"][-1]) + 1_000_000
    options = ReplayOptions(venues=VENUES, queue_model="proportional")
    with ReplayMarket(streams, options=options) as from_events, \
            ReplayMarket.from_itch(data, options=options, session_date_ns=MIDNIGHT) as from_bytes:
        assert run_script(from_bytes, script, end) == run_script(from_events, script, end)
        assert from_bytes.counters["fills"] > 0


def test_a_resting_order_waits_for_the_shares_ahead():
    events = np.zeros(4, dtype=_core.md_event_dtype)
    rows = [(10, ADD, 1, BUY, 1000, 300), (11, ADD, 2, SELL, 1002, 200),
            (30, EXECUTE, 1, 0, 0, 250), (40, EXECUTE, 1, 0, 0, 50)]
    for i, (ts, kind, oid, side, price, qty) in enumerate(rows):
        events[i] = (ts, ts, 0, oid, 0, price, qty, 0, 0, kind, side, 0)
    with ReplayMarket({0: events}) as market:
        market.submit(agent_order(ts_send=20, client_order_id=1, side="buy", quantity=100,
                                  price_ticks=1000))
        market.run_until(20)
        assert market.shares_ahead(1) == 300
        market.run_until(30)
        assert market.shares_ahead(1) == 50
        assert market.nbbo().bid_price_ticks == 1000
        market.run_until(40)
        assert market.shares_ahead(1) == 0
        assert market.leaves_quantity(1) == 100
        reports = market.drain_reports()
        assert reports["kind"].tolist() == [ACK]
        assert market.next_event_ts is None


def test_impact_moves_the_prices_our_orders_meet(flow):
    options = ReplayOptions(impact_model="propagator",
                            propagator=PropagatorImpact(eta_ticks=50.0, t0_ns=1e12))
    with ReplayMarket({0: flow[flow["venue_id"] == 0]}, options=options) as market:
        ts = int(flow["ts_event"][2_000])
        market.run_until(ts)
        before = market.quote(0)
        market.submit(agent_order(ts_send=ts, client_order_id=1, side="buy", quantity=5_000,
                                  type="market"))
        market.run_until(ts)
        taken = market.counters["shares_taken"]
        assert 0 < taken < 5_000  # The market order swept the whole recorded ask side.
        assert market.impact_ticks() == pytest.approx(50.0 * (taken / 1e6) ** 0.5)
        after = market.quote(0)
        assert after.bid_price_ticks == before.bid_price_ticks + round(market.impact_ticks())
        assert market.quote(0, view="agent").bid_price_ticks == before.bid_price_ticks


def test_bad_streams_and_options_are_named(flow):
    events = flow[flow["venue_id"] == 0]
    with ReplayMarket(options=ReplayOptions(venues=(ReplayVenue(), ReplayVenue()))) as market:
        with pytest.raises(SimulationError, match="ts_event") as unsorted:
            market.load(0, events[::-1].copy())
        assert unsorted.value.reason == "unsorted" and unsorted.value.index == 1
        with pytest.raises(SimulationError, match="venue_id 0, not 1") as mismatch:
            market.load(1, events)
        assert mismatch.value.reason == "venue_mismatch"
        with pytest.raises(SimulationError, match="unknown_order") as rejected:
            market.load(0, events[5:].copy())
        assert rejected.value.reason == "book_rejected"
        with pytest.raises(SimulationError, match="not configured"):
            market.load(7, events)
        with pytest.raises(UsageError, match="dtype"):
            market.load(0, np.zeros(3))
        market.load(0, events)
        with pytest.raises(SimulationError, match="already has a stream"):
            market.load(0, events)
        market.run_until(int(events["ts_event"][10]))
        with pytest.raises(SimulationError, match="before the first run_until"):
            market.load(1, events[:0])
    with pytest.raises(UsageError, match=r"venues\[0\].ack_latency_ns"):
        ReplayMarket(options=ReplayOptions(venues=(ReplayVenue(ack_latency_ns=-1),)))
    with pytest.raises(UsageError, match="queue_model"):
        ReplayOptions(queue_model="lifo")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="propagator.delta"):
        ReplayMarket(options=ReplayOptions(propagator=PropagatorImpact(delta=2.0)))


def test_bad_orders_are_rejected_by_reason(flow):
    events = flow[flow["venue_id"] == 0]
    options = ReplayOptions(venues=(ReplayVenue(tick_size_ticks=5),))
    with ReplayMarket({0: events}, options=options) as market:
        ts = int(events["ts_event"][100])
        market.run_until(ts)
        orders = agent_orders(6)
        orders["ts_send"] = ts
        orders["client_order_id"] = np.arange(1, 7)
        orders["side"] = BUY
        orders["quantity"] = 100
        orders["price_ticks"] = 10_000
        orders["venue_id"][0] = 3
        orders["quantity"][1] = -5
        orders["price_ticks"][2] = 10_001
        orders["type"][3] = MIDPOINT_PEG
        orders["instrument_id"][4] = 4
        orders["side"][5] = 0
        market.submit(orders)
        market.cancel(99, ts)
        market.run_until(ts + 1)
        reports = market.drain_reports()
        reasons = {int(r["client_order_id"]): int(r["detail"]) for r in reports
                   if r["kind"] == REJECTED}
        assert reasons == {1: R_UNKNOWN_VENUE, 2: R_BAD_QUANTITY, 3: R_BAD_PRICE,
                           4: R_UNSUPPORTED, 5: R_UNKNOWN_INSTRUMENT, 6: R_BAD_SIDE,
                           99: R_UNKNOWN_ORDER}
        assert _core.SimRejectReason(reasons[4]).name == "UNSUPPORTED_TYPE"
        market.run_until(int(events["ts_event"][-1]))  # The replay goes on.
        assert market.counters["recorded_events"] == len(events)
    with pytest.raises(UsageError, match="closed"):
        market.run_until(0)
