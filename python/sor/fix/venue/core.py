"""The venues' order handling, independent of the transport: FIX application messages in
(NewOrderSingle, OrderCancelRequest, OrderCancelReplaceRequest, as anything with
``get(tag)``), FIX application messages out (ExecutionReport, OrderCancelReject, as
``(msg_type, [(tag, value), ...])`` bodies given to a send callback), a ``sor.sim`` market in
between.

Orders reach the simulated venue after its order-entry latency and in the order they were
sent (one session, as over TCP); reports come back after its ack latency. The simulator
decides everything (matching, queue priority, fills, rejects); this module validates the FIX
fields, keeps each order's FIX state (ClOrdID chain, CumQty, LeavesQty, AvgPx) and translates.

Order types (docs/fix.md): 40=2 59=3 IOC limit (take); 40=2 59=0 18=6 post-only day limit;
40=P 18=M midpoint peg, 44 its optional limit (59=0 rests, 59=3 crosses now or never, dark
pool only); 40=2 59=0 plain day limit; 40=1 market (lit, the rest is cancelled). A dark pool
executes every order at the NBBO midpoint (a limit caps it) and takes 110 MinQty.

Liquidity of a fill: LastLiquidityInd (851) 1 added / 2 removed, as docs/fix.md has it, in
both versions. FIX 4.2 has no tag 851 (it came with 4.3), so a strict FIX 4.2 peer (QuickFIX
with its 4.2 dictionary) rejects it; ``fix42_liquidity_tag=9730`` sends the US venues' FIX 4.2
dialect instead, TradeLiquidityIndicator (9730) A added / R removed.

Replace (G): a smaller quantity at the same price keeps the order's queue priority; a new
price or a larger quantity loses it (a new marketable price trades at once, except a
post-only order, whose replace is then refused). OrderQty is the new total: shares already
filled count toward it, and a quantity at or below CumQty ends the order.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from sor._core import SimOrderType, SimRejectReason, SimReportKind
from sor.errors import SorError
from sor.fix.codec import format_utc_timestamp, price_from_fix, price_to_fix
from sor.fix.venue.mapping import MappedVenue, VenueMap
from sor.sim.market import Market

FIX42 = "FIX.4.2"
FIX44 = "FIX.4.4"
_CANCEL_REQUESTED = 1          # SimReport.detail of a cancel that answers a cancel request
_NO_LIMIT_BUY = 1 << 50        # a dark IOC peg without a cap: the widest limit
_NO_LIMIT_SELL = 1

# OrdStatus (39) and ExecType (150)
PENDING_NEW, NEW, PARTIALLY_FILLED, FILLED, CANCELED, REPLACED, REJECTED = \
    "A", "0", "1", "2", "4", "5", "8"
_DONE = {FILLED, CANCELED, REJECTED}

# OrdRejReason (103); FIX 4.2 has only 0-8, so the others become 0 (broker/exchange option)
REJ_BROKER_OPTION, REJ_UNKNOWN_SYMBOL, REJ_EXCHANGE_CLOSED, REJ_DUPLICATE_ORDER = 0, 1, 2, 6
REJ_UNSUPPORTED, REJ_INCORRECT_QUANTITY, REJ_OTHER = 11, 13, 99
# CxlRejReason (102); 6 (duplicate ClOrdID) is FIX 4.4 only
CXL_TOO_LATE, CXL_UNKNOWN_ORDER, CXL_BROKER_OPTION, CXL_PENDING, CXL_DUPLICATE = 0, 1, 2, 3, 6

_SIM_REJECT_TEXT = {
    int(SimRejectReason.UNKNOWN_VENUE): (REJ_BROKER_OPTION, "unknown venue"),
    int(SimRejectReason.UNKNOWN_INSTRUMENT): (REJ_UNKNOWN_SYMBOL, "unknown Symbol (55)"),
    int(SimRejectReason.BAD_QUANTITY): (REJ_INCORRECT_QUANTITY,
                                        "OrderQty (38) or MinQty (110) refused by the venue"),
    int(SimRejectReason.BAD_PRICE): (REJ_OTHER, "Price (44) refused by the venue (not positive "
                                                "or not on its price grid)"),
    int(SimRejectReason.BAD_SIDE): (REJ_OTHER, "Side (54) refused by the venue"),
    int(SimRejectReason.UNSUPPORTED_TYPE): (REJ_UNSUPPORTED, "OrdType (40) not supported here"),
    int(SimRejectReason.WOULD_TAKE): (REJ_OTHER, "post-only (18=6) order would take liquidity"),
    int(SimRejectReason.UNKNOWN_ORDER): (REJ_BROKER_OPTION, "unknown order"),
    int(SimRejectReason.DUPLICATE_ORDER): (REJ_DUPLICATE_ORDER, "duplicate order"),
    int(SimRejectReason.NO_REFERENCE): (REJ_OTHER, "no two-sided NBBO to price a midpoint order"),
    int(SimRejectReason.SESSION_CLOSED): (REJ_EXCHANGE_CLOSED, "the market is closed"),
}


class MessageFields(Protocol):
    """An incoming message: ``FixMessage`` or any mapping from tag to text."""

    def get(self, tag: int, default: Any = None) -> Any: ...


Send = Callable[[str, str, list[tuple[int, Any]]], Any]


class VenueMessageError(SorError, ValueError):
    """A message the venue cannot answer at the application level (no ClOrdID to reference);
    the FIX layer answers it with a session-level Reject naming ``tag``."""

    def __init__(self, message: str, *, tag: int, reason: int = 1) -> None:
        super().__init__(message)
        self.tag = tag
        self.reason = reason  # SessionRejectReason: 1 required tag missing, 5 value incorrect


class _Refused(Exception):
    def __init__(self, text: str, reason: int) -> None:
        super().__init__(text)
        self.text = text
        self.reason = reason


@dataclass
class _Request:
    kind: str                 # "cancel" | "replace" | "internal" (cancel-on-disconnect)
    cl_ord_id: str
    orig_cl_ord_id: str
    order_qty: int = 0
    price_ticks: int = 0


@dataclass
class VenueOrder:
    """One order at a venue, as FIX sees it."""

    venue: str
    order_id: str
    client_order_id: int      # the simulator's id
    cl_ord_id: str
    symbol: str
    instrument_index: int
    side: str
    order_qty: int
    price_ticks: int          # 0: none (market, uncapped peg)
    ord_type: str
    time_in_force: str
    exec_inst: str
    min_qty: int
    sim_type: Any
    cum_qty: int = 0
    leaves_qty: int = 0
    notional_ticks: int = 0   # sum of fill quantity x fill price
    ord_status: str = PENDING_NEW
    took_at_ns: int = -1      # ts_event at which it arrived or was replaced (midpoint liquidity)
    requests: deque = field(default_factory=deque)

    @property
    def open(self) -> bool:
        """Returns True while the order can still fill."""
        return self.ord_status not in _DONE


class VenueCore:
    """Every simulated venue's order entry over one market.

    ``send(venue, msg_type, body)`` is called with each outgoing application message;
    ``on_message`` takes the venue's incoming ones; ``advance(now_ns)`` runs the market to
    ``now_ns`` and turns its reports into messages. ``clock()`` (epoch ns) stamps incoming
    orders and immediate answers; in real time it is the wall clock."""

    def __init__(self, market: Market, mapping: VenueMap, send: Send, *,
                 clock: Callable[[], int] = time.time_ns, begin_strings: dict[str, str] | None = None,
                 run_id: str | None = None, fix42_liquidity_tag: int = 851) -> None:
        if fix42_liquidity_tag not in (851, 9730):
            raise ValueError(f"fix42_liquidity_tag must be 851 or 9730, not {fix42_liquidity_tag}")
        self._fix42_liquidity_tag = fix42_liquidity_tag
        self.market = market
        self.mapping = mapping
        self._send = send
        self._clock = clock
        self._begin = {v.name: FIX44 for v in mapping.venues}
        self._begin.update(begin_strings or {})
        self._tick_usd = mapping.price_tick_usd
        self._run = run_id if run_id is not None else format(time.time_ns() // 1000 % (36 ** 6), "x")
        self._client_ids = itertools.count(1)
        self._exec_ids = itertools.count(1)
        self._by_client: dict[int, VenueOrder] = {}
        self._by_cl_ord_id: dict[str, dict[str, VenueOrder]] = {v.name: {} for v in mapping.venues}
        self._used_cl_ord_ids: dict[str, set[str]] = {v.name: set() for v in mapping.venues}
        self._by_order_id: dict[str, VenueOrder] = {}
        self.stats = {"orders": 0, "rejects": 0, "cancels": 0, "replaces": 0, "fills": 0,
                      "filled_shares": 0, "cancel_rejects": 0, "orphan_reports": 0,
                      "disconnect_cancels": 0}

    # --- sessions ------------------------------------------------------------------------

    def set_begin_string(self, venue: str, begin_string: str) -> None:
        """Sets the FIX version (``FIX.4.2`` or ``FIX.4.4``) of ``venue``'s messages."""
        if begin_string not in (FIX42, FIX44):
            raise ValueError(f"begin_string must be {FIX42} or {FIX44}, not {begin_string!r}")
        self.mapping.venue(venue)
        self._begin[venue] = begin_string

    def open_orders(self, venue: str | None = None) -> list[VenueOrder]:
        """Returns the open orders (of one venue, or all), oldest first."""
        return [o for o in self._by_client.values() if o.open and (venue is None or o.venue == venue)]

    def order(self, venue: str, cl_ord_id: str) -> VenueOrder | None:
        """Returns the order known at ``venue`` by ``cl_ord_id`` (any ClOrdID of its chain)."""
        return self._by_cl_ord_id.get(venue, {}).get(cl_ord_id)

    def cancel_all(self, venue: str) -> int:
        """Cancels every open order of ``venue`` (cancel on disconnect); returns how many.
        Each is answered by an unsolicited Canceled report, which the session keeps for the
        peer's next logon."""
        count = 0
        now = max(self._clock(), self.market.now_ns)
        for order in self.open_orders(venue):
            if any(r.kind == "internal" for r in order.requests):
                continue
            order.requests.append(_Request("internal", order.cl_ord_id, order.cl_ord_id))
            self.market.cancel(order.client_order_id, ts_send_ns=now)
            count += 1
        self.stats["disconnect_cancels"] += count
        return count

    # --- incoming ------------------------------------------------------------------------

    def on_message(self, venue: str, msg_type: str, message: MessageFields) -> bool:
        """Handles one application message from ``venue``'s session; returns False for a
        message type the venue does not take (the FIX layer answers with a business reject).
        Raises VenueMessageError when there is no ClOrdID to answer to."""
        if venue not in self._begin:
            raise KeyError(f"no venue {venue!r}")
        if msg_type == "D":
            self._new_order(venue, message)
        elif msg_type == "F":
            self._cancel(venue, message)
        elif msg_type == "G":
            self._replace(venue, message)
        else:
            return False
        return True

    def _new_order(self, venue_name: str, message: MessageFields) -> None:
        venue = self.mapping.venue(venue_name)
        cl_ord_id = _required_cl_ord_id(message)
        now = max(self._clock(), self.market.now_ns)
        echo = _echo(message)
        try:
            if cl_ord_id in self._used_cl_ord_ids[venue_name]:
                raise _Refused(f"duplicate ClOrdID (11) {cl_ord_id!r}: already used on this "
                               "session", REJ_DUPLICATE_ORDER)
            symbol = _text(message, 55, "Symbol")
            index = self.mapping.instrument_index(symbol)
            if index is None:
                raise _Refused(f"unknown Symbol (55) {symbol!r}; {venue_name} trades "
                               f"{', '.join(self.mapping.symbols)}", REJ_UNKNOWN_SYMBOL)
            side = _side(message)
            quantity = _quantity(message, 38, "OrderQty")
            ord_type = _text(message, 40, "OrdType")
            tif = message.get(59) or "0"
            exec_inst = " ".join(str(message.get(18) or "").split())
            min_qty = 0 if message.get(110) is None else _quantity(message, 110, "MinQty", zero=True)
            if min_qty > quantity:
                raise _Refused(f"MinQty (110) {min_qty} exceeds OrderQty (38) {quantity}",
                               REJ_INCORRECT_QUANTITY)
            sim_type, price = self._order_type(venue, message, ord_type, tif, exec_inst, side)
        except _Refused as refused:
            self._used_cl_ord_ids[venue_name].add(cl_ord_id)
            self._reject_order(venue_name, cl_ord_id, echo, refused.text, refused.reason, now)
            return
        client = next(self._client_ids)
        order = VenueOrder(venue=venue_name, order_id=f"{venue_name}-{self._run}-{client}",
                           client_order_id=client, cl_ord_id=cl_ord_id, symbol=symbol,
                           instrument_index=index, side=side, order_qty=quantity,
                           price_ticks=price, ord_type=ord_type, time_in_force=tif,
                           exec_inst=exec_inst, min_qty=min_qty, sim_type=sim_type,
                           leaves_qty=quantity)
        self._used_cl_ord_ids[venue_name].add(cl_ord_id)
        self._by_cl_ord_id[venue_name][cl_ord_id] = order
        self._by_client[client] = order
        self._by_order_id[order.order_id] = order
        self.stats["orders"] += 1
        sim_price = price
        if sim_type == SimOrderType.IOC and ord_type == "P" and price == 0:
            sim_price = _NO_LIMIT_BUY if side == "1" else _NO_LIMIT_SELL
        self.market.submit(venue.venue_id, "buy" if side == "1" else "sell", quantity,
                           price_ticks=sim_price, order_type=sim_type, min_quantity=min_qty,
                           instrument_id=index, client_order_id=client, ts_send_ns=now)

    def _order_type(self, venue: MappedVenue, message: MessageFields, ord_type: str, tif: str,
                    exec_inst: str, side: str) -> tuple[Any, int]:
        """Returns (simulator order type, limit price in ticks) or raises _Refused."""
        instructions = set(exec_inst.split())
        if tif not in ("0", "3"):
            raise _Refused(f"unsupported TimeInForce (59) {tif!r}; {venue.name} takes 0 (day) "
                           "and 3 (IOC)", REJ_UNSUPPORTED)
        unknown = instructions - {"6", "M"}
        if unknown:
            raise _Refused(f"unsupported ExecInst (18) {exec_inst!r}; {venue.name} takes 6 "
                           "(post-only) and M (midpoint peg)", REJ_UNSUPPORTED)
        if ord_type == "2":
            if "M" in instructions:
                raise _Refused("ExecInst (18) M (midpoint peg) needs OrdType (40) P, not 2",
                               REJ_UNSUPPORTED)
            price = self._price(venue, message, required=True, on_grid=venue.lit)
            if "6" in instructions:
                if tif != "0":
                    raise _Refused("post-only, ExecInst (18) 6, needs TimeInForce (59) 0 (day), "
                                   f"not {tif}", REJ_UNSUPPORTED)
                if not venue.lit:
                    raise _Refused(f"post-only (ExecInst 18=6) is not supported by dark pool "
                                   f"{venue.name}", REJ_UNSUPPORTED)
                return SimOrderType.POST_ONLY, price
            return (SimOrderType.IOC if tif == "3" else SimOrderType.LIMIT), price
        if ord_type == "P":
            if "M" not in instructions or "6" in instructions:
                raise _Refused("OrdType (40) P needs ExecInst (18) M (mid-price peg), got "
                               f"{exec_inst or 'none'!r}", REJ_UNSUPPORTED)
            price = self._price(venue, message, required=False, on_grid=False)
            if tif == "3":
                if venue.lit:
                    raise _Refused(f"a midpoint peg with TimeInForce (59) 3 (IOC) is only taken "
                                   f"by a dark pool, not by {venue.name}", REJ_UNSUPPORTED)
                return SimOrderType.IOC, price
            return SimOrderType.MIDPOINT_PEG, price
        if ord_type == "1":
            if not venue.lit:
                raise _Refused(f"market orders (40=1) are not supported by dark pool {venue.name}",
                               REJ_UNSUPPORTED)
            if instructions:
                raise _Refused(f"ExecInst (18) {exec_inst!r} does not apply to a market order",
                               REJ_UNSUPPORTED)
            return SimOrderType.MARKET, 0
        raise _Refused(f"unsupported OrdType (40) {ord_type!r}; {venue.name} takes 1 (market), "
                       "2 (limit) and P (pegged, with ExecInst 18=M)", REJ_UNSUPPORTED)

    def _price(self, venue: MappedVenue, message: MessageFields, *, required: bool,
               on_grid: bool) -> int:
        text = message.get(44)
        if text is None or text == "":
            if required:
                raise _Refused("missing Price (44), required for a limit order", REJ_OTHER)
            return 0
        try:
            price = price_from_fix(str(text), self._tick_usd)
        except (SorError, ValueError) as e:
            raise _Refused(f"Price (44) {text!r} is not a price in {self._tick_usd:g} USD ticks "
                           f"({e})", REJ_OTHER) from None
        if price <= 0:
            raise _Refused(f"Price (44) must be positive, got {text!r}", REJ_OTHER)
        if on_grid and price % venue.tick_size_ticks:
            grid = price_to_fix(venue.tick_size_ticks, self._tick_usd)
            raise _Refused(f"Price (44) {text} is not on {venue.name}'s price grid of {grid} "
                           "(sub-tick)", REJ_OTHER)
        return price

    def _find(self, venue: str, message: MessageFields) -> VenueOrder | None:
        orig = message.get(41)
        if orig:
            return self._by_cl_ord_id[venue].get(str(orig))
        order_id = message.get(37)
        order = self._by_order_id.get(str(order_id)) if order_id else None
        return order if order is not None and order.venue == venue else None

    def _request_checks(self, venue: str, message: MessageFields, response_to: str,
                        now: int) -> tuple[str, VenueOrder] | None:
        """Returns (ClOrdID, order) for a cancel or replace, or answers it with an
        OrderCancelReject and returns None."""
        cl_ord_id = _required_cl_ord_id(message)
        orig = str(message.get(41) or "")
        order = self._find(venue, message)
        used = cl_ord_id in self._used_cl_ord_ids[venue]
        self._used_cl_ord_ids[venue].add(cl_ord_id)
        if used:
            reason = CXL_DUPLICATE if self._begin[venue] == FIX44 else CXL_BROKER_OPTION
            self._cancel_reject(venue, cl_ord_id, orig, order, response_to, reason,
                                f"duplicate ClOrdID (11) {cl_ord_id!r}: already used on this "
                                "session", now)
            return None
        if order is None:
            what = f"OrigClOrdID (41) {orig!r}" if orig else f"OrderID (37) {message.get(37)!r}"
            if not orig and not message.get(37):
                what = "no OrigClOrdID (41) or OrderID (37)"
            self._cancel_reject(venue, cl_ord_id, orig, None, response_to, CXL_UNKNOWN_ORDER,
                                f"unknown order: {what}", now)
            return None
        problem = None
        side = message.get(54)
        symbol = message.get(55)
        if side is not None and str(side) != order.side:
            problem = f"Side (54) {side!r} does not match the order's {order.side!r}"
        elif symbol is not None and str(symbol) != order.symbol:
            problem = f"Symbol (55) {symbol!r} does not match the order's {order.symbol!r}"
        if problem:
            self._cancel_reject(venue, cl_ord_id, orig, order, response_to, CXL_BROKER_OPTION,
                                problem, now)
            return None
        if not order.open:
            self._cancel_reject(venue, cl_ord_id, orig, order, response_to, CXL_TOO_LATE,
                                f"too late: the order is {_STATUS_WORD[order.ord_status]}", now)
            return None
        return cl_ord_id, order

    def _cancel(self, venue: str, message: MessageFields) -> None:
        now = max(self._clock(), self.market.now_ns)
        checked = self._request_checks(venue, message, "1", now)
        if checked is None:
            return
        cl_ord_id, order = checked
        order.requests.append(_Request("cancel", cl_ord_id, str(message.get(41) or order.cl_ord_id)))
        self.market.cancel(order.client_order_id, ts_send_ns=now)

    def _replace(self, venue_name: str, message: MessageFields) -> None:
        now = max(self._clock(), self.market.now_ns)
        checked = self._request_checks(venue_name, message, "2", now)
        if checked is None:
            return
        cl_ord_id, order = checked
        orig = str(message.get(41) or order.cl_ord_id)
        venue = self.mapping.venue(venue_name)
        try:
            quantity = _quantity(message, 38, "OrderQty")
            ord_type = message.get(40)
            if ord_type is not None and str(ord_type) != order.ord_type:
                raise _Refused(f"OrdType (40) cannot change on a replace ({order.ord_type!r} to "
                               f"{ord_type!r}): cancel and send a new order", CXL_BROKER_OPTION)
            tif = message.get(59)
            if tif is not None and str(tif) != order.time_in_force:
                raise _Refused(f"TimeInForce (59) cannot change on a replace "
                               f"({order.time_in_force!r} to {tif!r})", CXL_BROKER_OPTION)
            exec_inst = message.get(18)
            if exec_inst is not None and " ".join(str(exec_inst).split()) != order.exec_inst:
                raise _Refused(f"ExecInst (18) cannot change on a replace ({order.exec_inst!r} "
                               f"to {exec_inst!r})", CXL_BROKER_OPTION)
            if order.ord_type == "2":
                price = self._price(venue, message, required=True, on_grid=venue.lit)
            elif order.ord_type == "P":
                price = self._price(venue, message, required=False, on_grid=False)
            else:
                price = 0
        except _Refused as refused:
            self._cancel_reject(venue_name, cl_ord_id, orig, order, "2", CXL_BROKER_OPTION,
                                refused.text, now)
            return
        order.requests.append(_Request("replace", cl_ord_id, orig, quantity, price))
        self.market.core.replace(order.client_order_id, quantity, price, now)

    # --- reports -------------------------------------------------------------------------

    def advance(self, now_ns: int) -> int:
        """Runs the market to ``now_ns`` and answers its reports; returns how many."""
        if now_ns > self.market.now_ns:
            self.market.run_until(now_ns)
        reports = self.market.reports()
        for report in reports:
            self._on_report(report)
        return len(reports)

    def _on_report(self, r: Any) -> None:
        order = self._by_client.get(int(r["client_order_id"]))
        if order is None:
            self.stats["orphan_reports"] += 1
            return
        kind = int(r["kind"])
        ts = int(r["ts_event"])
        if kind == int(SimReportKind.ACK):
            order.ord_status = NEW
            order.took_at_ns = ts
            self._report(order, NEW, ts)
        elif kind == int(SimReportKind.FILL):
            self._on_fill(order, r, ts)
        elif kind == int(SimReportKind.CANCELLED):
            self._on_cancelled(order, r, ts)
        elif kind == int(SimReportKind.REJECTED):
            self._on_rejected(order, r, ts)
        elif kind == int(SimReportKind.REPLACED):
            self._on_replaced(order, r, ts)
        else:
            self.stats["orphan_reports"] += 1

    def _on_fill(self, order: VenueOrder, r: Any, ts: int) -> None:
        quantity, price = int(r["quantity"]), int(r["price_ticks"])
        order.cum_qty += quantity
        order.notional_ticks += quantity * price
        order.leaves_qty = int(r["leaves_quantity"])
        order.ord_status = FILLED if order.leaves_qty == 0 else PARTIALLY_FILLED
        liquidity = int(r["detail"])
        if liquidity == 3:  # midpoint: removed when it crossed on arrival or on a replace
            liquidity = 2 if ts == order.took_at_ns else 1
        self.stats["fills"] += 1
        self.stats["filled_shares"] += quantity
        self._report(order, "F", ts, last_qty=quantity, last_px=price, liquidity=liquidity)

    def _on_cancelled(self, order: VenueOrder, r: Any, ts: int) -> None:
        order.leaves_qty = 0
        order.ord_status = CANCELED
        request = None
        if int(r["detail"]) == _CANCEL_REQUESTED and order.requests and \
                order.requests[0].kind in ("cancel", "internal"):
            request = order.requests.popleft()
        if request is not None and request.kind == "cancel":
            self.stats["cancels"] += 1
            self._report(order, CANCELED, ts, cl_ord_id=request.cl_ord_id,
                         orig_cl_ord_id=request.orig_cl_ord_id)
        else:  # IOC or market remainder, self-trade prevention, cancel on disconnect
            self._report(order, CANCELED, ts)

    def _on_rejected(self, order: VenueOrder, r: Any, ts: int) -> None:
        reason = int(r["detail"])
        if order.ord_status == PENDING_NEW:
            order.ord_status = REJECTED
            order.leaves_qty = 0
            code, text = _SIM_REJECT_TEXT.get(reason, (REJ_OTHER, f"refused ({reason})"))
            self._reject_order(order.venue, order.cl_ord_id, _echo_order(order, self._tick_usd), text, code, ts,
                               order_id=order.order_id)
            return
        if not order.requests:
            self.stats["orphan_reports"] += 1
            return
        request = order.requests.popleft()
        if request.kind == "internal":
            return  # our own cancel on disconnect came too late: the order is done already
        response_to = "1" if request.kind == "cancel" else "2"
        if reason == int(SimRejectReason.UNKNOWN_ORDER) or not order.open:
            code, text = CXL_TOO_LATE, f"too late: the order is {_STATUS_WORD[order.ord_status]}"
        else:
            code = CXL_BROKER_OPTION
            text = _SIM_REJECT_TEXT.get(reason, (0, f"refused ({reason})"))[1]
        self._cancel_reject(order.venue, request.cl_ord_id, request.orig_cl_ord_id, order,
                            response_to, code, text, ts)

    def _on_replaced(self, order: VenueOrder, r: Any, ts: int) -> None:
        if not order.requests or order.requests[0].kind != "replace":
            self.stats["orphan_reports"] += 1
            return
        request = order.requests.popleft()
        order.cl_ord_id = request.cl_ord_id
        self._by_cl_ord_id[order.venue][request.cl_ord_id] = order
        order.order_qty = request.order_qty
        order.price_ticks = request.price_ticks
        order.leaves_qty = int(r["leaves_quantity"])
        order.took_at_ns = ts
        if order.leaves_qty == 0:
            order.ord_status = FILLED
        else:
            order.ord_status = PARTIALLY_FILLED if order.cum_qty else NEW
        self.stats["replaces"] += 1
        self._report(order, REPLACED, ts, orig_cl_ord_id=request.orig_cl_ord_id)

    # --- outgoing ------------------------------------------------------------------------

    def _exec_id(self, venue: str) -> str:
        return f"{venue}-{self._run}-E{next(self._exec_ids)}"

    def _report(self, order: VenueOrder, exec_type: str, ts: int, *, last_qty: int = 0,
                last_px: int = 0, liquidity: int = 0, cl_ord_id: str | None = None,
                orig_cl_ord_id: str | None = None) -> None:
        fix42 = self._begin[order.venue] == FIX42
        if exec_type == "F" and fix42:
            exec_type = FILLED if order.leaves_qty == 0 else PARTIALLY_FILLED
        body: list[tuple[int, Any]] = [(37, order.order_id), (11, cl_ord_id or order.cl_ord_id)]
        if orig_cl_ord_id:
            body.append((41, orig_cl_ord_id))
        body.append((17, self._exec_id(order.venue)))
        if fix42:
            body.append((20, "0"))
        body += [(150, exec_type), (39, order.ord_status), (55, order.symbol), (54, order.side),
                 (38, order.order_qty), (40, order.ord_type)]
        if order.price_ticks:
            body.append((44, price_to_fix(order.price_ticks, self._tick_usd)))
        body.append((59, order.time_in_force))
        if order.exec_inst:
            body.append((18, order.exec_inst))
        if last_qty:
            body += [(32, last_qty), (31, price_to_fix(last_px, self._tick_usd))]
        body += [(151, order.leaves_qty if order.open else 0), (14, order.cum_qty),
                 (6, _average(order.notional_ticks, order.cum_qty, self._tick_usd))]
        if liquidity:
            if fix42 and self._fix42_liquidity_tag == 9730:
                body.append((9730, "A" if liquidity == 1 else "R"))
            else:
                body.append((851, liquidity))
        body.append((60, format_utc_timestamp(ts)))
        self._send(order.venue, "8", body)

    def _reject_order(self, venue: str, cl_ord_id: str, echo: dict[int, str], text: str,
                      reason: int, ts: int, *, order_id: str = "NONE") -> None:
        fix42 = self._begin[venue] == FIX42
        if fix42 and reason > 8:
            reason = REJ_BROKER_OPTION
        self.stats["rejects"] += 1
        body: list[tuple[int, Any]] = [(37, order_id), (11, cl_ord_id),
                                       (17, self._exec_id(venue))]
        if fix42:
            body.append((20, "0"))
        body += [(150, REJECTED), (39, REJECTED)]
        body += [(tag, echo[tag]) for tag in (55, 54, 38, 40, 44, 59, 18) if echo.get(tag)]
        body += [(151, 0), (14, 0), (6, "0"), (103, reason), (58, text),
                 (60, format_utc_timestamp(ts))]
        self._send(venue, "8", body)

    def _cancel_reject(self, venue: str, cl_ord_id: str, orig_cl_ord_id: str,
                       order: VenueOrder | None, response_to: str, reason: int, text: str,
                       ts: int) -> None:
        self.stats["cancel_rejects"] += 1
        body: list[tuple[int, Any]] = [
            (37, order.order_id if order else "NONE"), (11, cl_ord_id),
            (41, orig_cl_ord_id or (order.cl_ord_id if order else "NONE")),
            (39, order.ord_status if order and order.ord_status != PENDING_NEW else
             (PENDING_NEW if order else REJECTED)),
            (434, response_to), (102, reason), (58, text), (60, format_utc_timestamp(ts))]
        self._send(venue, "9", body)


_STATUS_WORD = {PENDING_NEW: "pending new", NEW: "new", PARTIALLY_FILLED: "partially filled",
                FILLED: "filled", CANCELED: "canceled", REJECTED: "rejected"}


def _required_cl_ord_id(message: MessageFields) -> str:
    value = message.get(11)
    if value is None or str(value) == "":
        raise VenueMessageError("missing ClOrdID (11)", tag=11, reason=1)
    return str(value)


def _text(message: MessageFields, tag: int, name: str) -> str:
    value = message.get(tag)
    if value is None or str(value) == "":
        raise _Refused(f"missing {name} ({tag})", REJ_OTHER)
    return str(value)


def _side(message: MessageFields) -> str:
    side = _text(message, 54, "Side")
    if side not in ("1", "2", "5", "6"):
        raise _Refused(f"Side (54) must be 1 (buy), 2 (sell), 5 or 6 (sell short), got {side!r}",
                       REJ_OTHER)
    return side


def _quantity(message: MessageFields, tag: int, name: str, *, zero: bool = False) -> int:
    text = _text(message, tag, name)
    try:
        value = Decimal(text)
        whole = value == value.to_integral_value()
    except ArithmeticError:
        whole = False
    if not whole or value < 0 or (value == 0 and not zero) or not value.is_finite():
        need = "zero or a positive" if zero else "a positive"
        raise _Refused(f"{name} ({tag}) must be {need} whole number of shares, got {text!r}",
                       REJ_INCORRECT_QUANTITY)
    return int(value)


def _echo(message: MessageFields) -> dict[int, str]:
    return {tag: str(message.get(tag)) for tag in (55, 54, 38, 40, 44, 59, 18)
            if message.get(tag) is not None}


def _echo_order(order: VenueOrder, tick_usd: float) -> dict[int, str]:
    echo = {55: order.symbol, 54: order.side, 38: str(order.order_qty), 40: order.ord_type,
            59: order.time_in_force, 18: order.exec_inst}
    if order.price_ticks:
        echo[44] = price_to_fix(order.price_ticks, tick_usd)
    return echo


def _average(notional_ticks: int, quantity: int, tick_usd: float) -> str:
    if quantity == 0:
        return "0"
    value = Decimal(notional_ticks) * Decimal(repr(tick_usd)) / Decimal(quantity)
    text = format(value.quantize(Decimal("0.00000001")).normalize(), "f")
    return text
