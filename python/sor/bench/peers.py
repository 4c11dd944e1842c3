"""Peer order books for ``sor bench book``: hftbacktest and nautilus_trader.

Each ``run_*`` function takes the benchmark's L3 and L2 streams (numpy arrays of
the ``MD_EVENT`` dtype below, mirroring the C++ ``sor::MdEvent``), converts them
to the peer's own objects/arrays *before* any timing, then measures:

* per-update latency: a clock read on each side of the peer call(s) that apply
  one stream event, minus the measured overhead of an empty timed pair
  (clamped at 0); reported as p50/p99/p99.9/mean in nanoseconds;
* throughput: a separate, untimed pass over the whole stream on a fresh book,
  one clock read on each side of the loop.

A warm-up pass over a prefix of the stream runs first on a throwaway book.
Each result also carries the peer's final top of book so the caller can check
that the peer reached the same state as sor's own books.

Stream kinds: 1 ADD, 3 REPLACE, 4 CANCEL (partial), 5 DELETE, 6 EXECUTE,
8 CLEAR, 9 LEVEL (L2: set size at side/price; 0 removes). Side 1 bid, 2 ask.
"""

from __future__ import annotations

import gc
import time
from decimal import Decimal
from importlib import metadata
from typing import Any

import numpy as np

MD_EVENT = np.dtype(
    [
        ("ts_event", "<i8"),
        ("ts_recv", "<i8"),
        ("sequence", "<u8"),
        ("order_id", "<u8"),
        ("related_id", "<u8"),
        ("price_ticks", "<i8"),
        ("quantity", "<i8"),
        ("instrument_id", "<u4"),
        ("venue_id", "u1"),
        ("kind", "u1"),
        ("side", "u1"),
        ("flags", "u1"),
    ]
)

ADD, REPLACE, CANCEL, DELETE, EXECUTE, CLEAR, LEVEL = 1, 3, 4, 5, 6, 8, 9
BID, ASK = 1, 2

_INSTALL_HINT = 'pip install "sor[bench]" (or pip install ".[bench]" from a checkout)'
_PEERS = {"hftbacktest": "hftbacktest", "nautilus_trader": "nautilus_trader"}
_WARMUP_EVENTS = 20_000
_OVERHEAD_SAMPLES = 200_000


# --------------------------------------------------------------------------------------------
# shared helpers


def peer_versions() -> dict[str, str | None]:
    """Installed versions of the peer packages (None when not installed)."""
    out: dict[str, str | None] = {}
    for name, dist in _PEERS.items():
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _require(module: str) -> None:
    try:
        __import__(module)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"the {module} peer for `sor bench book` is not installed: {_INSTALL_HINT}",
            name=module,
        ) from exc


def _check_stream(events: np.ndarray | None, what: str) -> np.ndarray | None:
    if events is None:
        return None
    events = np.asarray(events)
    missing = [n for n in MD_EVENT.names if events.dtype.names is None or n not in events.dtype.names]
    if missing:
        raise ValueError(f"{what} stream lacks MdEvent fields {missing}")
    if len(events) == 0:
        raise ValueError(f"{what} stream is empty")
    if events.dtype != MD_EVENT:  # the converters unpack rows positionally: normalise the layout
        out = np.empty(len(events), dtype=MD_EVENT)
        for name in MD_EVENT.names:
            out[name] = events[name]
        events = out
    return events


def _tick_decimals(tick_size: float) -> int:
    """Decimal places needed to write tick_size exactly (0.01 -> 2, 0.0001 -> 4, 1 -> 0)."""
    dec = Decimal(repr(float(tick_size))).normalize()
    exp = dec.as_tuple().exponent
    return max(0, -int(exp)) if isinstance(exp, int) else 0


def _summary(lat_ns: np.ndarray, overhead_ns: int) -> dict[str, Any]:
    lat = np.maximum(lat_ns.astype(np.int64) - int(overhead_ns), 0)
    p50, p99, p999 = np.percentile(lat, [50.0, 99.0, 99.9])
    return {
        "p50_ns": float(p50),
        "p99_ns": float(p99),
        "p999_ns": float(p999),
        "mean_ns": float(lat.mean()) if len(lat) else 0.0,
    }


def _py_timer_overhead_ns(n: int = _OVERHEAD_SAMPLES) -> int:
    """Median cost of an empty ``perf_counter_ns()`` pair, as used in the timed loops."""
    pc = time.perf_counter_ns
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        t0 = pc()
        t1 = pc()
        out[i] = t1 - t0
    return int(np.median(out))


def _top(bid_px, bid_qty, ask_px, ask_qty) -> dict[str, int | None]:
    return {
        "bid_price_ticks": bid_px,
        "bid_quantity": int(bid_qty) if bid_px is not None else 0,
        "ask_price_ticks": ask_px,
        "ask_quantity": int(ask_qty) if ask_px is not None else 0,
    }


class _GcPaused:
    """Keep the cyclic GC out of the timed regions (the peers' own work allocates nothing cyclic)."""

    def __enter__(self):
        self._was = gc.isenabled()
        gc.collect()
        gc.disable()

    def __exit__(self, *exc):
        if self._was:
            gc.enable()


# --------------------------------------------------------------------------------------------
# nautilus_trader


def _nautilus_convert_l3(events: np.ndarray, tick_size: float) -> list:
    """MdEvents -> per-event OrderBookDelta, or a (DELETE, ADD) tuple for a replace."""
    from nautilus_trader.model.data import BookOrder, OrderBookDelta
    from nautilus_trader.model.enums import BookAction, OrderSide
    from nautilus_trader.model.objects import FIXED_PRECISION, Price, Quantity

    iid = _nautilus_instrument_id()
    prec = _tick_decimals(tick_size)
    raw_per_tick = int(Decimal(repr(float(tick_size))) * (10**FIXED_PRECISION))
    qty_scale = 10**FIXED_PRECISION
    sides = {BID: OrderSide.BUY, ASK: OrderSide.SELL}
    A_ADD, A_UPD, A_DEL = BookAction.ADD, BookAction.UPDATE, BookAction.DELETE
    live: dict[int, list] = {}  # order_id -> [side, price_ticks, qty]
    out: list = []

    def delta(action, side, px, qty, oid, ts_ev, ts_rc, seq):
        order = BookOrder(
            sides[side], Price.from_raw(px * raw_per_tick, prec), Quantity.from_raw(qty * qty_scale, 0), oid
        )
        return OrderBookDelta(iid, action, order, 0, seq, ts_ev, ts_rc)

    for ev in events.tolist():
        ts_ev, ts_rc, seq, oid, rel, px, qty, _iid, _ven, kind, side, _fl = ev
        if kind == ADD:
            live[oid] = [side, px, qty]
            out.append(delta(A_ADD, side, px, qty, oid, ts_ev, ts_rc, seq))
        elif kind in (CANCEL, EXECUTE):
            o = live[oid]
            o[2] -= qty
            if o[2] > 0:
                out.append(delta(A_UPD, o[0], o[1], o[2], oid, ts_ev, ts_rc, seq))
            else:
                del live[oid]
                out.append(delta(A_DEL, o[0], o[1], 0, oid, ts_ev, ts_rc, seq))
        elif kind == DELETE:
            o = live.pop(oid)
            out.append(delta(A_DEL, o[0], o[1], 0, oid, ts_ev, ts_rc, seq))
        elif kind == REPLACE:
            o = live.pop(oid)
            live[rel] = [o[0], px, qty]
            out.append(
                (
                    delta(A_DEL, o[0], o[1], 0, oid, ts_ev, ts_rc, seq),
                    delta(A_ADD, o[0], px, qty, rel, ts_ev, ts_rc, seq),
                )
            )
        elif kind == CLEAR:
            live.clear()
            out.append(OrderBookDelta.clear(iid, seq, ts_ev, ts_rc))
        else:
            raise ValueError(f"kind {kind} is not an L3 event")
    return out


def _nautilus_convert_l2(events: np.ndarray, tick_size: float) -> list:
    """LEVEL MdEvents -> OrderBookDelta: ADD for a new level, UPDATE for a known one, DELETE at 0."""
    from nautilus_trader.model.data import BookOrder, OrderBookDelta
    from nautilus_trader.model.enums import BookAction, OrderSide
    from nautilus_trader.model.objects import FIXED_PRECISION, Price, Quantity

    iid = _nautilus_instrument_id()
    prec = _tick_decimals(tick_size)
    raw_per_tick = int(Decimal(repr(float(tick_size))) * (10**FIXED_PRECISION))
    qty_scale = 10**FIXED_PRECISION
    sides = {BID: OrderSide.BUY, ASK: OrderSide.SELL}
    levels: set[tuple[int, int]] = set()
    out: list = []
    for ev in events.tolist():
        ts_ev, ts_rc, seq, _oid, _rel, px, qty, _iid, _ven, kind, side, _fl = ev
        if kind == CLEAR:
            levels.clear()
            out.append(OrderBookDelta.clear(iid, seq, ts_ev, ts_rc))
            continue
        if kind != LEVEL:
            raise ValueError(f"kind {kind} is not an L2 event")
        key = (side, px)
        if qty == 0:
            levels.discard(key)
            action = BookAction.DELETE
        elif key in levels:
            action = BookAction.UPDATE
        else:
            levels.add(key)
            action = BookAction.ADD
        order = BookOrder(sides[side], Price.from_raw(px * raw_per_tick, prec), Quantity.from_raw(qty * qty_scale, 0), 0)
        out.append(OrderBookDelta(iid, action, order, 0, seq, ts_ev, ts_rc))
    return out


def _nautilus_instrument_id():
    from nautilus_trader.model.identifiers import InstrumentId

    return InstrumentId.from_str("SOR.BENCH")


def _nautilus_new_book(book_type):
    from nautilus_trader.model.book import OrderBook

    return OrderBook(_nautilus_instrument_id(), book_type)


def _nautilus_feed_timed(book, items: list) -> np.ndarray:
    apply = book.apply_delta
    pc = time.perf_counter_ns
    lat = np.empty(len(items), dtype=np.int64)
    with _GcPaused():
        for i, item in enumerate(items):
            if type(item) is tuple:  # replace: DELETE old id, ADD new id
                d0, d1 = item
                t0 = pc()
                apply(d0)
                apply(d1)
                t1 = pc()
            else:
                t0 = pc()
                apply(item)
                t1 = pc()
            lat[i] = t1 - t0
    return lat


def _nautilus_feed_untimed(book, items: list) -> int:
    apply = book.apply_delta
    with _GcPaused():
        t0 = time.perf_counter_ns()
        for item in items:
            if type(item) is tuple:
                apply(item[0])
                apply(item[1])
            else:
                apply(item)
        t1 = time.perf_counter_ns()
    return t1 - t0


def _nautilus_top(book, tick_size: float) -> dict[str, int | None]:
    from nautilus_trader.model.objects import FIXED_PRECISION

    raw_per_tick = int(Decimal(repr(float(tick_size))) * (10**FIXED_PRECISION))

    def level(levels):
        # best_bid_size()/best_ask_size() give the first order's size on an L3_MBO book,
        # so read the aggregated size of the best level instead.
        if not levels:
            return None, 0
        lv = levels[0]
        return int(lv.price.raw) // raw_per_tick, round(lv.size())

    bid_px, bid_qty = level(book.bids())
    ask_px, ask_qty = level(book.asks())
    return _top(bid_px, bid_qty, ask_px, ask_qty)


def run_nautilus(
    l3_events: np.ndarray | None,
    l2_events: np.ndarray | None,
    *,
    tick_size: float = 0.01,
    repeat: int = 1,
) -> dict[str, Any]:
    """Run the streams through nautilus_trader's ``OrderBook`` (L3_MBO and L2_MBP).

    Per-update latency is measured around ``OrderBook.apply_delta`` (two calls for a
    replace: DELETE of the old id then ADD of the new one). With ``repeat`` > 1 the
    timed pass runs that many times on fresh books; latency samples are pooled and
    throughput is the median of the untimed passes.
    """
    _require("nautilus_trader")
    from nautilus_trader.model.enums import BookType

    l3_events = _check_stream(l3_events, "L3")
    l2_events = _check_stream(l2_events, "L2")
    version = peer_versions()["nautilus_trader"]
    overhead = _py_timer_overhead_ns()
    result: dict[str, Any] = {"version": version, "timer_overhead_ns": overhead, "tick_size": tick_size}

    plans = []
    if l3_events is not None:
        plans.append(("l3", BookType.L3_MBO, _nautilus_convert_l3, l3_events, "L3_MBO"))
    if l2_events is not None:
        plans.append(("l2", BookType.L2_MBP, _nautilus_convert_l2, l2_events, "L2_MBP"))

    for key, book_type, convert, events, bt_name in plans:
        items = convert(events, tick_size)
        # warm-up on a throwaway book (a prefix of the stream is a valid stream)
        _nautilus_feed_timed(_nautilus_new_book(book_type), items[:_WARMUP_EVENTS])
        lats, elapsed, top = [], [], None
        for _ in range(max(1, int(repeat))):
            book = _nautilus_new_book(book_type)
            lats.append(_nautilus_feed_timed(book, items))
            top = _nautilus_top(book, tick_size)
            book2 = _nautilus_new_book(book_type)
            elapsed.append(_nautilus_feed_untimed(book2, items))
            if _nautilus_top(book2, tick_size) != top:
                raise RuntimeError("nautilus_trader: timed and untimed passes ended in different states")
        n = len(items)
        ns = float(np.median(elapsed))
        batch = _nautilus_batch(book_type, items, tick_size, top, n)
        api = (
            f"nautilus_trader.model.book.OrderBook(InstrumentId, BookType.{bt_name}).apply_delta(OrderBookDelta)"
            " per event; "
            + (
                "ADD/UPDATE(remaining size)/DELETE; replace = apply_delta(DELETE old id) + apply_delta(ADD new id)"
                if key == "l3"
                else "LEVEL -> ADD (new level) / UPDATE (known level) / DELETE (size 0)"
            )
        )
        result[key] = {
            **_summary(np.concatenate(lats), overhead),
            "events": n,
            "throughput_per_s": n / (ns / 1e9) if ns > 0 else float("inf"),
            "per_update": "measured",
            "api": api,
            "version": version,
            "timer_overhead_ns": overhead,
            "final_top": top,
            "batch": batch,
        }
    return result


def _nautilus_batch(book_type, items: list, tick_size: float, top: dict, n: int) -> dict[str, Any]:
    """The whole stream as one ``OrderBookDeltas`` through ``apply_deltas``: amortised only."""
    from nautilus_trader.model.data import OrderBookDeltas

    flat = [d for it in items for d in (it if type(it) is tuple else (it,))]
    deltas = OrderBookDeltas(_nautilus_instrument_id(), flat)
    book = _nautilus_new_book(book_type)
    with _GcPaused():
        t0 = time.perf_counter_ns()
        book.apply_deltas(deltas)
        t1 = time.perf_counter_ns()
    if _nautilus_top(book, tick_size) != top:
        raise RuntimeError("nautilus_trader: apply_deltas ended in a different state from apply_delta")
    ns = t1 - t0
    return {
        "api": "OrderBook.apply_deltas(OrderBookDeltas(instrument_id, <every delta of the stream>)), one call",
        "per_update": "amortised",
        "mean_ns": ns / n,
        "throughput_per_s": n / (ns / 1e9) if ns > 0 else float("inf"),
        "events": n,
    }


# --------------------------------------------------------------------------------------------
# hftbacktest

_HBT_JIT: dict[str, Any] = {}


def _hbt_jit() -> dict[str, Any]:
    """Compile (once) the numba helpers that drive the backtester event by event."""
    if _HBT_JIT:
        return _HBT_JIT
    import ctypes
    import ctypes.util

    from numba import njit

    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    clock_gettime = libc.clock_gettime
    clock_gettime.argtypes = [ctypes.c_int, ctypes.c_uint64]
    clock_gettime.restype = ctypes.c_int
    CLOCK_MONOTONIC = 1  # what time.perf_counter_ns reads on Linux
    FAR = 1 << 62

    @njit
    def now(buf):
        clock_gettime(CLOCK_MONOTONIC, buf.ctypes.data)
        return buf[0] * 1_000_000_000 + buf[1]

    @njit
    def overhead(buf, n):
        out = np.empty(n, np.int64)
        for i in range(n):
            a = now(buf)
            b = now(buf)
            out[i] = b - a
        return out

    @njit
    def feed_timed(hbt, counts, lat, buf):
        # counts[i] = hftbacktest rows making up stream event i (2 for a replace)
        bad = 0
        for i in range(counts.shape[0]):
            t0 = now(buf)
            for _ in range(counts[i]):
                rc = hbt.wait_next_feed(False, FAR)
                if rc != 2 and rc != 1:
                    bad = rc
            t1 = now(buf)
            lat[i] = t1 - t0
        return bad

    @njit
    def feed_untimed(hbt, counts, buf):
        bad = 0
        t0 = now(buf)
        for i in range(counts.shape[0]):
            for _ in range(counts[i]):
                rc = hbt.wait_next_feed(False, FAR)
                if rc != 2 and rc != 1:
                    bad = rc
        t1 = now(buf)
        return t1 - t0, bad

    @njit
    def top(hbt):
        d = hbt.depth(0)
        return d.best_bid_tick, d.best_bid_qty, d.best_ask_tick, d.best_ask_qty

    _HBT_JIT.update(now=now, overhead=overhead, feed_timed=feed_timed, feed_untimed=feed_untimed, top=top)
    return _HBT_JIT


def _hbt_convert_l3(events: np.ndarray, tick_size: float) -> tuple[np.ndarray, np.ndarray]:
    """MdEvents -> hftbacktest L3 rows (LOCAL_EVENT only) and rows-per-stream-event counts.

    ADD -> ADD_ORDER_EVENT; partial CANCEL/EXECUTE -> MODIFY_ORDER_EVENT with the
    remaining size at the same price; full CANCEL/EXECUTE and DELETE ->
    CANCEL_ORDER_EVENT; REPLACE -> CANCEL_ORDER_EVENT(old) + ADD_ORDER_EVENT(new);
    CLEAR -> DEPTH_CLEAR_EVENT. Timestamps are a strictly increasing counter so
    that each ``wait_next_feed`` call consumes exactly one row.
    """
    from hftbacktest.types import (
        ADD_ORDER_EVENT,
        BUY_EVENT,
        CANCEL_ORDER_EVENT,
        DEPTH_CLEAR_EVENT,
        LOCAL_EVENT,
        MODIFY_ORDER_EVENT,
        SELL_EVENT,
        event_dtype,
    )

    side_flag = {BID: BUY_EVENT, ASK: SELL_EVENT}
    add_f, mod_f, cxl_f = ADD_ORDER_EVENT | LOCAL_EVENT, MODIFY_ORDER_EVENT | LOCAL_EVENT, CANCEL_ORDER_EVENT | LOCAL_EVENT
    n = len(events)
    n_rows = n + int(np.count_nonzero(events["kind"] == REPLACE))
    rows = np.zeros(n_rows, dtype=event_dtype)
    counts = np.ones(n, dtype=np.int64)
    ev_col = np.empty(n_rows, np.uint64)
    px_col = np.empty(n_rows, np.int64)
    qty_col = np.empty(n_rows, np.int64)
    oid_col = np.empty(n_rows, np.uint64)
    live: dict[int, list] = {}  # order_id -> [side, price_ticks, qty]
    r = 0

    def put(flag: int, side: int, px: int, qty: int, oid: int) -> None:
        nonlocal r
        ev_col[r], px_col[r], qty_col[r], oid_col[r] = flag | side_flag.get(side, 0), px, qty, oid
        r += 1

    for i, ev in enumerate(events.tolist()):
        _ts_ev, _ts_rc, _seq, oid, rel, px, qty, _iid, _ven, kind, side, _fl = ev
        if kind == ADD:
            live[oid] = [side, px, qty]
            put(add_f, side, px, qty, oid)
        elif kind in (CANCEL, EXECUTE):
            o = live[oid]
            o[2] -= qty
            if o[2] > 0:
                put(mod_f, o[0], o[1], o[2], oid)
            else:
                del live[oid]
                put(cxl_f, o[0], o[1], 0, oid)
        elif kind == DELETE:
            o = live.pop(oid)
            put(cxl_f, o[0], o[1], 0, oid)
        elif kind == REPLACE:
            o = live.pop(oid)
            live[rel] = [o[0], px, qty]
            put(cxl_f, o[0], o[1], 0, oid)
            put(add_f, o[0], px, qty, rel)
            counts[i] = 2
        elif kind == CLEAR:
            live.clear()
            put(DEPTH_CLEAR_EVENT | LOCAL_EVENT, 0, 0, 0, 0)
        else:
            raise ValueError(f"kind {kind} is not an L3 event")
    assert r == n_rows
    rows["ev"] = ev_col
    # px = ticks * tick_size; hftbacktest recovers the tick as round(px / tick_size)
    rows["px"] = px_col.astype(np.float64) * tick_size
    rows["qty"] = qty_col.astype(np.float64)
    rows["order_id"] = oid_col
    rows["exch_ts"] = rows["local_ts"] = np.arange(1, n_rows + 1, dtype=np.int64)
    return rows, counts


def _hbt_convert_l2(events: np.ndarray, tick_size: float) -> tuple[np.ndarray, np.ndarray]:
    """LEVEL MdEvents -> DEPTH_EVENT rows (LOCAL_EVENT only): qty is the level's new size, 0 removes it."""
    from hftbacktest.types import BUY_EVENT, DEPTH_CLEAR_EVENT, DEPTH_EVENT, LOCAL_EVENT, SELL_EVENT, event_dtype

    kinds = events["kind"]
    bad = ~np.isin(kinds, (LEVEL, CLEAR))
    if bad.any():
        raise ValueError(f"kind {int(kinds[bad][0])} is not an L2 event")
    n = len(events)
    rows = np.zeros(n, dtype=event_dtype)
    side_flag = np.where(events["side"] == BID, BUY_EVENT, SELL_EVENT).astype(np.uint64)
    rows["ev"] = np.where(
        kinds == LEVEL, np.uint64(DEPTH_EVENT | LOCAL_EVENT) | side_flag, np.uint64(DEPTH_CLEAR_EVENT | LOCAL_EVENT)
    )
    rows["px"] = events["price_ticks"].astype(np.float64) * tick_size
    rows["qty"] = events["quantity"].astype(np.float64)
    rows["exch_ts"] = rows["local_ts"] = np.arange(1, n + 1, dtype=np.int64)
    return rows, np.ones(n, dtype=np.int64)


def _hbt_backtester(rows: np.ndarray, tick_size: float, l3: bool):
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    asset = (
        BacktestAsset()
        .data(rows)
        .linear_asset(1.0)
        .constant_order_latency(0, 0)
        .no_partial_fill_exchange()
        .tick_size(tick_size)
        .lot_size(1.0)
    )
    asset = asset.l3_fifo_queue_model() if l3 else asset.risk_adverse_queue_model()
    return HashMapMarketDepthBacktest([asset])


def _hbt_top(jit, hbt) -> dict[str, int | None]:
    bid_t, bid_q, ask_t, ask_q = jit["top"](hbt)
    # an empty side reports the sentinel tick i64::MIN (bids) / i64::MAX (asks)
    bid = None if bid_t <= np.iinfo(np.int64).min + 1 or bid_q == 0 else int(bid_t)
    ask = None if ask_t >= np.iinfo(np.int64).max - 1 or ask_q == 0 else int(ask_t)
    return _top(bid, round(bid_q), ask, round(ask_q))


def run_hftbacktest(
    l3_events: np.ndarray | None,
    l2_events: np.ndarray | None,
    *,
    tick_size: float = 0.01,
) -> dict[str, Any]:
    """Run the streams through hftbacktest's ``HashMapMarketDepth`` inside its backtester.

    hftbacktest (2.x) exposes no Python call that applies one update to a depth
    object; its depths are driven by the backtester from an event array. The
    closest per-update call a user has is ``wait_next_feed`` on a
    ``HashMapMarketDepthBacktest`` whose rows carry only ``LOCAL_EVENT`` (so only
    the local, strategy-visible book is updated; no exchange-side replica) with
    strictly increasing timestamps, so each call applies exactly one row. It is
    called from a numba ``@njit`` loop (compiled before timing) with a
    ``clock_gettime(CLOCK_MONOTONIC)`` read on each side: per-update latency is
    therefore measured, and includes the backtester's own event-loop bookkeeping.
    """
    _require("hftbacktest")
    l3_events = _check_stream(l3_events, "L3")
    l2_events = _check_stream(l2_events, "L2")
    version = peer_versions()["hftbacktest"]
    jit = _hbt_jit()
    buf = np.zeros(2, dtype=np.int64)
    jit["overhead"](buf, 10)  # compile
    overhead = int(np.median(jit["overhead"](buf, _OVERHEAD_SAMPLES)))
    result: dict[str, Any] = {"version": version, "timer_overhead_ns": overhead, "tick_size": tick_size}

    plans = []
    if l3_events is not None:
        plans.append(("l3", True, _hbt_convert_l3, l3_events))
    if l2_events is not None:
        plans.append(("l2", False, _hbt_convert_l2, l2_events))

    for key, is_l3, convert, events in plans:
        rows, counts = convert(events, tick_size)
        # warm-up (and numba compilation) on a throwaway backtester fed a prefix
        n_warm = min(len(counts), _WARMUP_EVENTS)
        warm_rows = np.ascontiguousarray(rows[: int(counts[:n_warm].sum())])
        warm = _hbt_backtester(warm_rows, tick_size, is_l3)
        jit["feed_timed"](warm, counts[:n_warm], np.empty(n_warm, np.int64), buf)
        warm.close()

        hbt = _hbt_backtester(rows, tick_size, is_l3)
        lat = np.empty(len(counts), dtype=np.int64)
        with _GcPaused():
            bad = jit["feed_timed"](hbt, counts, lat, buf)
        top = _hbt_top(jit, hbt)
        hbt.close()
        if bad:
            raise RuntimeError(f"hftbacktest: wait_next_feed returned {bad}")

        hbt2 = _hbt_backtester(rows, tick_size, is_l3)
        with _GcPaused():
            elapsed, bad = jit["feed_untimed"](hbt2, counts, buf)
        top2 = _hbt_top(jit, hbt2)
        hbt2.close()
        if bad:
            raise RuntimeError(f"hftbacktest: wait_next_feed returned {bad}")
        if top2 != top:
            raise RuntimeError("hftbacktest: timed and untimed passes ended in different states")

        n = len(counts)
        flags = (
            "ADD_ORDER_EVENT / MODIFY_ORDER_EVENT(remaining size) / CANCEL_ORDER_EVENT; "
            "replace = CANCEL_ORDER_EVENT(old) + ADD_ORDER_EVENT(new), two calls"
            if is_l3
            else "DEPTH_EVENT (qty = new level size, 0 removes)"
        )
        result[key] = {
            **_summary(lat, overhead),
            "events": n,
            "rows": len(rows),
            "throughput_per_s": n / (elapsed / 1e9) if elapsed > 0 else float("inf"),
            "per_update": "measured",
            "api": (
                "hftbacktest.HashMapMarketDepthBacktest([BacktestAsset().data(rows)"
                + (".l3_fifo_queue_model()" if is_l3 else ".risk_adverse_queue_model()")
                + ".no_partial_fill_exchange().tick_size(t).lot_size(1.0)]).wait_next_feed(False, timeout)"
                " per row from a numba @njit loop; rows in hftbacktest.types.event_dtype with LOCAL_EVENT|"
                "BUY_EVENT/SELL_EVENT and " + flags
            ),
            "version": version,
            "timer_overhead_ns": overhead,
            "final_top": top,
        }
    return result
