"""The simulated venues' market data as the router receives it: each venue's events in the
form its feed has (order by order for an L3 venue, price levels for an L2 venue, trade prints
for a dark pool), with the router's instrument ids, and a snapshot of every book for a
receiver that joins in mid-session (``sor.feed.udp``).

An L2 venue's feed is built from the simulator's own book after each pass: every price level
whose size changed gets one LEVEL event (a conflated level feed: a level that changed and
changed back within one pass is not published), and its trades become TRADE prints (side of
the resting order, as ITCH prints carry).
"""

from __future__ import annotations

import numpy as np

from sor._core import BookType, EventKind, Side
from sor.book import FLAG_PRINTABLE, FLAG_SNAPSHOT, MD_EVENT_DTYPE
from sor.fix.venue.mapping import MappedVenue, VenueMap
from sor.sim.market import Market

_BUY, _SELL = int(Side.BUY), int(Side.SELL)


class VenueFeed:
    """Collects what the simulated venues published since the last call and keeps what is
    needed to snapshot them. Call ``collect()`` after every advance of the market and
    ``snapshot()`` between two of them (one thread)."""

    def __init__(self, market: Market, mapping: VenueMap) -> None:
        self._market = market
        self._mapping = mapping
        self._instrument_ids = mapping.instrument_id_table()
        self._instrument_count = len(mapping.symbols)
        self._l2 = [v for v in mapping.venues if v.book_type == BookType.L2]
        self._l2_ids = {v.venue_id for v in self._l2}
        # Published state of each L2 book: (venue, instrument, side) -> {price: (qty, orders)}.
        self._levels: dict[tuple[int, int, int], dict[int, tuple[int, int]]] = {}
        self.last_sequence: dict[int, int] = {v.venue_id: 0 for v in mapping.venues}
        self.events_collected = 0

    def collect(self) -> np.ndarray:
        """Returns the venues' new events (MD_EVENT_DTYPE, router instrument ids) in the order
        they happened."""
        parts = []
        trades = self._market.trades() if self._l2 else None
        for venue in self._mapping.venues:
            events = self._market.events(venue.venue_id)
            if venue.venue_id in self._l2_ids:
                prints = self._prints(trades[trades["venue_id"] == venue.venue_id])
                levels = self._level_changes(venue, events) if len(events) else prints[:0]
                both = np.concatenate([prints, levels])
                parts.append(self._sequence(venue, both[np.argsort(both["ts_event"], kind="stable")]))
                continue
            if len(events):
                self.last_sequence[venue.venue_id] = int(events["sequence"][-1])
                parts.append(events)
        parts = [p for p in parts if len(p)]
        if not parts:
            return np.zeros(0, MD_EVENT_DTYPE)
        events = np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
        if len(parts) > 1:
            events = events[np.argsort(events["ts_event"], kind="stable")]
        events["instrument_id"] = self._instrument_ids[events["instrument_id"]]
        self.events_collected += len(events)
        return events

    def snapshot(self) -> tuple[np.ndarray, dict[int, int]]:
        """Returns every venue's book as snapshot events (per venue and instrument a CLEAR,
        then resting orders as ADDs or levels as LEVELs) and each venue's last published
        sequence."""
        blocks = []
        for venue in self._mapping.venues:
            for index in range(self._instrument_count):
                blocks.append(_block(venue.venue_id, index, EventKind.CLEAR, 0,
                                     np.zeros(1, np.int64), np.zeros(1, np.int64),
                                     np.zeros(1, np.int64), np.zeros(1, np.int64)))
                for side in (_BUY, _SELL):
                    if venue.venue_id in self._l2_ids:
                        book = self._levels.get((venue.venue_id, index, side), {})
                        if book:
                            table = np.array([(p, q, c) for p, (q, c) in book.items()], np.int64)
                            blocks.append(_block(venue.venue_id, index, EventKind.LEVEL, side,
                                                 np.zeros(len(table), np.int64), table[:, 0],
                                                 table[:, 1], table[:, 2]))
                    elif venue.lit:
                        resting = self._market.core.resting_orders(venue.venue_id, index,
                                                                   Side(side))
                        if len(resting["order_id"]):
                            blocks.append(_block(venue.venue_id, index, EventKind.ADD, side,
                                                 resting["order_id"], resting["price_ticks"],
                                                 resting["quantity"],
                                                 np.zeros(len(resting["order_id"]), np.int64)))
        events = np.concatenate(blocks) if blocks else np.zeros(0, MD_EVENT_DTYPE)
        events["instrument_id"] = self._instrument_ids[events["instrument_id"]]
        events["ts_event"] = self._market.now_ns
        events["flags"] = FLAG_SNAPSHOT
        return events, dict(self.last_sequence)

    def _level_changes(self, venue: MappedVenue, events: np.ndarray) -> np.ndarray:
        ts_event = int(events["ts_event"][-1])
        changes = []
        for index in np.unique(events["instrument_id"]).tolist():
            for side in (_BUY, _SELL):
                levels = self._all_levels(venue.venue_id, index, side)
                now = {int(p): (int(q), int(c)) for p, q, c in
                       zip(levels["price_ticks"], levels["quantity"], levels["order_count"])}
                key = (venue.venue_id, index, side)
                before = self._levels.get(key, {})
                for price, value in now.items():
                    if before.get(price) != value:
                        changes.append((index, side, price, value[0], value[1]))
                for price in before.keys() - now.keys():
                    changes.append((index, side, price, 0, 0))
                self._levels[key] = now
        out = np.zeros(len(changes), MD_EVENT_DTYPE)
        if changes:
            table = np.array(changes, dtype=np.int64)
            out["instrument_id"] = table[:, 0]
            out["side"] = table[:, 1]
            out["price_ticks"] = table[:, 2]
            out["quantity"] = table[:, 3]
            out["related_id"] = table[:, 4]
            out["kind"] = int(EventKind.LEVEL)
            out["ts_event"] = ts_event
        return out

    def _all_levels(self, venue_id: int, index: int, side: int) -> np.ndarray:
        depth = 256
        while True:
            levels = self._market.core.levels(venue_id, index, Side(side), depth)
            if len(levels) < depth:
                return levels
            depth *= 4

    @staticmethod
    def _prints(trades: np.ndarray) -> np.ndarray:
        out = np.zeros(len(trades), MD_EVENT_DTYPE)
        if len(trades):
            aggressor = trades["aggressor_side"]
            out["side"] = np.where(aggressor == _BUY, _SELL, np.where(aggressor == _SELL, _BUY, 0))
            out["price_ticks"] = trades["price_ticks"]
            out["quantity"] = trades["quantity"]
            out["instrument_id"] = trades["instrument_id"]
            out["kind"] = int(EventKind.TRADE)
            out["flags"] = FLAG_PRINTABLE
            out["ts_event"] = trades["ts_event"]
        return out

    def _sequence(self, venue: MappedVenue, out: np.ndarray) -> np.ndarray:
        """Numbers an L2 venue's events on from its last published sequence."""
        if len(out):
            first = self.last_sequence[venue.venue_id] + 1
            out["sequence"] = np.arange(first, first + len(out), dtype=np.uint64)
            self.last_sequence[venue.venue_id] = first + len(out) - 1
            out["venue_id"] = venue.venue_id
            out["ts_recv"] = out["ts_event"]
        return out


def _block(venue_id: int, index: int, kind: EventKind, side: int, order_ids: np.ndarray,
           prices: np.ndarray, quantities: np.ndarray, related: np.ndarray) -> np.ndarray:
    """Returns snapshot events of one kind for one (venue, instrument index, side)."""
    out = np.zeros(len(prices), MD_EVENT_DTYPE)
    out["venue_id"] = venue_id
    out["instrument_id"] = index
    out["kind"] = int(kind)
    out["side"] = side
    out["order_id"] = order_ids
    out["price_ticks"] = prices
    out["quantity"] = quantities
    out["related_id"] = related
    return out
