"""Slow, obvious Python books with the same rules as the C++ books, for parity tests."""

from __future__ import annotations

from dataclasses import dataclass, field

ADD, MODIFY, REPLACE, CANCEL, DELETE, EXECUTE, TRADE, CLEAR, LEVEL, BROKEN, STATUS = range(1, 12)
BUY, SELL = 1, 2
MAX_INSTRUMENTS = 1 << 20


@dataclass
class _Sequence:
    expected: int = 0

    def check(self, seq: int) -> str:
        if seq == 0 or self.expected == 0 or seq == self.expected:
            return "ok"
        return "duplicate" if seq < self.expected else "sequence_gap"

    def commit(self, seq: int) -> None:
        if seq:
            self.expected = seq + 1


class _SequencedBook:
    """Venue check and sequence rules shared by both reference books."""

    def apply(self, e) -> str:
        if e["venue_id"] != self.venue_id:
            return "unknown_venue"
        s = self.seq.check(int(e["sequence"]))
        if s == "duplicate":
            return "ok"
        if s != "ok":
            return s
        s = self._change(e)
        if s == "ok":
            self.seq.commit(int(e["sequence"]))
        return s



@dataclass
class ReferenceL3Book(_SequencedBook):
    venue_id: int = 0
    allow_crossed: bool = False
    orders: dict = field(default_factory=dict)   # id -> [instrument, side, price, qty]
    queues: dict = field(default_factory=dict)   # (instrument, side, price) -> [ids in priority]
    seq: _Sequence = field(default_factory=_Sequence)
    executed: int = 0

    def _best(self, instrument: int, side: int):
        prices = [p for (i, s, p), q in self.queues.items() if i == instrument and s == side and q]
        if not prices:
            return None
        return max(prices) if side == BUY else min(prices)

    def _crosses(self, instrument: int, side: int, price: int) -> bool:
        if self.allow_crossed:
            return False
        other = self._best(instrument, SELL if side == BUY else BUY)
        if other is None:
            return False
        return price >= other if side == BUY else price <= other

    def _unlink(self, order_id: int) -> None:
        inst, side, price, _ = self.orders[order_id]
        key = (inst, side, price)
        self.queues[key].remove(order_id)
        if not self.queues[key]:
            del self.queues[key]

    def _link(self, order_id: int) -> None:
        inst, side, price, _ = self.orders[order_id]
        self.queues.setdefault((inst, side, price), []).append(order_id)

    def _change(self, e) -> str:
        kind, oid, side = int(e["kind"]), int(e["order_id"]), int(e["side"])
        price, qty, inst = int(e["price_ticks"]), int(e["quantity"]), int(e["instrument_id"])
        if kind == ADD:
            if side not in (BUY, SELL):
                return "invalid_side"
            if qty <= 0:
                return "invalid_quantity"
            if price <= 0:
                return "invalid_price"
            if oid in self.orders:
                return "duplicate_order"
            if inst >= MAX_INSTRUMENTS:
                return "unknown_instrument"
            if self._crosses(inst, side, price):
                return "crossed_book"
            self.orders[oid] = [inst, side, price, qty]
            self._link(oid)
            return "ok"
        if kind in (CANCEL, EXECUTE):
            if oid not in self.orders:
                return "unknown_order"
            order = self.orders[oid]
            if qty <= 0 or qty > order[3]:
                return "invalid_quantity"
            if kind == EXECUTE:
                self.executed += qty
            if qty == order[3]:
                self._unlink(oid)
                del self.orders[oid]
            else:
                order[3] -= qty
            return "ok"
        if kind == DELETE:
            if oid not in self.orders:
                return "unknown_order"
            self._unlink(oid)
            del self.orders[oid]
            return "ok"
        if kind == REPLACE:
            new_id = int(e["related_id"])
            if oid not in self.orders:
                return "unknown_order"
            if new_id != oid and new_id in self.orders:
                return "duplicate_order"
            if qty <= 0:
                return "invalid_quantity"
            if price <= 0:
                return "invalid_price"
            o_inst, o_side = self.orders[oid][0], self.orders[oid][1]
            if self._crosses(o_inst, o_side, price):
                return "crossed_book"
            self._unlink(oid)
            del self.orders[oid]
            self.orders[new_id] = [o_inst, o_side, price, qty]
            self._link(new_id)
            return "ok"
        if kind == MODIFY:
            if oid not in self.orders:
                return "unknown_order"
            if qty <= 0:
                return "invalid_quantity"
            if price <= 0:
                return "invalid_price"
            order = self.orders[oid]
            if price == order[2] and qty <= order[3]:
                order[3] = qty
                return "ok"
            if price != order[2] and self._crosses(order[0], order[1], price):
                return "crossed_book"
            self._unlink(oid)
            order[2], order[3] = price, qty
            self._link(oid)
            return "ok"
        if kind == CLEAR:
            if inst >= MAX_INSTRUMENTS:
                return "unknown_instrument"
            for oid2 in [k for k, o in self.orders.items() if o[0] == inst]:
                self._unlink(oid2)
                del self.orders[oid2]
            return "ok"
        if kind in (TRADE, BROKEN, STATUS):
            return "ok"
        return "invalid_kind"

    def depth(self, side: int, instrument: int = 0) -> list[tuple[int, int, int]]:
        rows = [(p, sum(self.orders[o][3] for o in q), len(q))
                for (i, s, p), q in self.queues.items() if i == instrument and s == side]
        return sorted(rows, reverse=(side == BUY))

    def queue_position(self, order_id: int) -> tuple[int, int]:
        inst, side, price, _ = self.orders[order_id]
        queue = self.queues[(inst, side, price)]
        ahead = queue[: queue.index(order_id)]
        return len(ahead), sum(self.orders[o][3] for o in ahead)


@dataclass
class ReferenceL2Book(_SequencedBook):
    venue_id: int = 0
    allow_crossed: bool = False
    levels: dict = field(default_factory=dict)  # (instrument, side, price) -> (qty, count)
    seq: _Sequence = field(default_factory=_Sequence)

    def _best(self, instrument: int, side: int):
        prices = [p for (i, s, p) in self.levels if i == instrument and s == side]
        if not prices:
            return None
        return max(prices) if side == BUY else min(prices)

    def _change(self, e) -> str:
        kind, side, price = int(e["kind"]), int(e["side"]), int(e["price_ticks"])
        qty, inst = int(e["quantity"]), int(e["instrument_id"])
        if kind == LEVEL:
            if side not in (BUY, SELL):
                return "invalid_side"
            if price <= 0:
                return "invalid_price"
            if qty < 0:
                return "invalid_quantity"
            if inst >= MAX_INSTRUMENTS:
                return "unknown_instrument"
            key = (inst, side, price)
            if qty == 0:
                if key not in self.levels:
                    return "unknown_level"
                del self.levels[key]
                return "ok"
            if key not in self.levels and not self.allow_crossed:
                other = self._best(inst, SELL if side == BUY else BUY)
                if other is not None and (price >= other if side == BUY else price <= other):
                    return "crossed_book"
            self.levels[key] = (qty, int(e["related_id"]) & 0xFFFFFFFF)
            return "ok"
        if kind == CLEAR:
            if inst >= MAX_INSTRUMENTS:
                return "unknown_instrument"
            for key in [k for k in self.levels if k[0] == inst]:
                del self.levels[key]
            return "ok"
        if kind in (TRADE, BROKEN, STATUS):
            return "ok"
        return "invalid_kind"

    def depth(self, side: int, instrument: int = 0) -> list[tuple[int, int, int]]:
        rows = [(p, q, c) for (i, s, p), (q, c) in self.levels.items()
                if i == instrument and s == side]
        return sorted(rows, reverse=(side == BUY))
