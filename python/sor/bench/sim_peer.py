"""The nautilus_trader peer for ``sor bench sim``: its ``BacktestEngine`` over a comparable stream.

``sor bench sim`` reports sor's simulator in events per second over a multi-venue L3 stream.
The peer a user would otherwise pick for an event-driven multi-venue backtest is
nautilus_trader's ``BacktestEngine``. This module runs it over the same kind of stream:

* the stream is ``sor.sim.synthetic_order_flow(seed, event_count, venue_count)`` (L3 adds,
  cancels, deletes, executions and cancel-replaces, one instrument on each venue);
* each venue becomes a nautilus venue (a ``SimulatedExchange`` with an ``L3_MBO`` book in its
  matching engine) with its own instrument ``AAPL.<venue>``, and each MdEvent becomes
  ``OrderBookDelta`` objects for that instrument (``sor.bench.peers`` does the per-event
  conversion; a cancel-replace is a DELETE of the old id and an ADD of the new one, so there
  are slightly more deltas than MdEvents);
* a minimal strategy subscribes to the L3 deltas of every instrument (so the data engine keeps
  its own managed book per instrument and publishes every delta to the strategy, as a router
  reading books would have it) and counts its callbacks;
* only ``engine.run()`` is timed. Conversion to nautilus objects is not (a nautilus user loads
  them from a catalog); building the engine and adding the data is timed separately.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from sor.bench import peers

_INSTALL_HINT = 'pip install ".[bench]" from a checkout (or pip install "sor[bench]")'
#: MIC-style venue codes for venue ids 0, 1, 2, ...; further venues are named V5, V6, ...
VENUE_CODES = ("XNAS", "BATS", "ARCX", "IEXG", "EDGX", "XNYS", "MEMX", "EDGA")
SYMBOL = "AAPL"
TICK_SIZE = 0.01


@dataclass(frozen=True)
class NautilusBacktestResult:
    """One timed ``BacktestEngine.run()`` over a converted stream."""

    event_count: int  # OrderBookDelta objects fed to the engine (the throughput unit)
    venue_count: int
    run_seconds: float  # engine.run(), perf_counter on each side
    setup_seconds: float  # BacktestEngine(...), venues, instruments, strategy, add_data
    events_per_second: float  # event_count / run_seconds
    nautilus_version: str
    source_event_count: int = 0  # MdEvents in the stream (a cancel-replace is 2 deltas)
    strategy_delta_count: int = 0  # deltas the strategy received (0 when subscribe=False)
    subscribed: bool = True
    venue_ids: tuple[int, ...] = ()  # sor venue ids, in the order of the per-venue fields
    deltas_per_venue: tuple[int, ...] = ()
    convert_seconds: float = 0.0  # MdEvent -> OrderBookDelta, not part of either figure above
    rss_before_bytes: int = 0  # process resident set size before conversion
    rss_loaded_bytes: int = 0  # ... after conversion and setup (the data held in memory)
    peak_rss_bytes: int = 0  # the process's peak resident set size so far (VmHWM), after the run
    final_tops: tuple[dict, ...] = ()  # per venue, the data engine's managed book (subscribe=True)

    @property
    def source_events_per_second(self) -> float:
        """MdEvents of the source stream per second of ``run()`` (replaces count once)."""
        return self.source_event_count / self.run_seconds if self.run_seconds > 0 else float("inf")

    @property
    def loaded_bytes_per_event(self) -> float:
        """Resident memory the loaded stream costs per delta (conversion plus engine copies)."""
        return (self.rss_loaded_bytes - self.rss_before_bytes) / max(self.event_count, 1)

    def as_dict(self) -> dict[str, Any]:
        """Returns the result as plain JSON-ready data, derived figures included."""
        out = {name: getattr(self, name) for name in self.__dataclass_fields__}
        out["venue_ids"] = list(self.venue_ids)
        out["deltas_per_venue"] = list(self.deltas_per_venue)
        out["final_tops"] = list(self.final_tops)
        out["source_events_per_second"] = self.source_events_per_second
        out["loaded_bytes_per_event"] = self.loaded_bytes_per_event
        return out


def comparable_stream(seed: int, event_count: int, venue_count: int = 5) -> np.ndarray:
    """Returns the L3 stream both simulators are measured on (``sor.sim.synthetic_order_flow``)."""
    from sor.sim import synthetic_order_flow

    return synthetic_order_flow(seed=seed, event_count=event_count, venue_count=venue_count)


def venue_code(venue_id: int) -> str:
    """Returns the nautilus venue name used for a sor venue id."""
    return VENUE_CODES[venue_id] if venue_id < len(VENUE_CODES) else f"V{venue_id}"


def instrument_id(venue_id: int):
    """Returns the nautilus ``InstrumentId`` of the stream's instrument on a sor venue."""
    from nautilus_trader.model.identifiers import InstrumentId

    return InstrumentId.from_str(f"{SYMBOL}.{venue_code(venue_id)}")


def _require_nautilus() -> str:
    try:
        import nautilus_trader
    except ModuleNotFoundError as exc:  # an ImportError, caught as such by `sor bench`
        raise ModuleNotFoundError(
            f"the nautilus_trader peer for `sor bench sim` is not installed: {_INSTALL_HINT}",
            name="nautilus_trader",
        ) from exc
    return str(nautilus_trader.__version__)


def _rss_bytes(field: str = "VmRSS") -> int:
    """Returns a memory figure of this process from /proc/self/status (0 where unavailable)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def convert_stream(events: np.ndarray) -> dict[int, list]:
    """Returns ``{venue_id: [OrderBookDelta, ...]}`` for instrument ``AAPL.<venue>``, in stream order.

    Each venue's events are converted on their own (order ids live in a venue's book) with
    ``sor.bench.peers._nautilus_convert_l3``; its cancel-replace pairs are flattened in order and
    the deltas re-addressed from the converter's fixed instrument to the venue's instrument.
    """
    _require_nautilus()
    from nautilus_trader.model.data import OrderBookDelta

    events = peers._check_stream(events, "L3")
    out: dict[int, list] = {}
    for venue_id in np.unique(events["venue_id"]).tolist():
        iid = instrument_id(venue_id)
        items = peers._nautilus_convert_l3(events[events["venue_id"] == venue_id], TICK_SIZE)
        deltas = []
        append = deltas.append
        for item in items:
            for d in item if type(item) is tuple else (item,):
                append(OrderBookDelta(iid, d.action, d.order, d.flags, d.sequence, d.ts_event, d.ts_init))
        del items
        out[int(venue_id)] = deltas
    return out


_STRATEGY: dict[str, Any] = {}


def _strategy_class():
    """Builds (once) the counting strategy; nautilus is an optional import."""
    if _STRATEGY:
        return _STRATEGY["cls"], _STRATEGY["config"]
    from nautilus_trader.config import StrategyConfig
    from nautilus_trader.model.enums import BookType
    from nautilus_trader.trading.strategy import Strategy

    class DeltaCounterConfig(StrategyConfig, frozen=True):
        instrument_ids: tuple[str, ...] = ()

    class DeltaCounter(Strategy):
        """Subscribes to L3 deltas on every instrument and counts the callbacks."""

        def __init__(self, config: DeltaCounterConfig) -> None:
            super().__init__(config)
            self.delta_count = 0

        def on_start(self) -> None:
            from nautilus_trader.model.identifiers import InstrumentId

            for iid in self.config.instrument_ids:
                self.subscribe_order_book_deltas(InstrumentId.from_str(iid), book_type=BookType.L3_MBO)

        def on_order_book_deltas(self, deltas) -> None:
            # The data engine runs with buffer_deltas=False, so every OrderBookDelta is
            # published alone: one callback per delta.
            self.delta_count += 1

    _STRATEGY["cls"], _STRATEGY["config"] = DeltaCounter, DeltaCounterConfig
    return DeltaCounter, DeltaCounterConfig


def _equity(venue: str):
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
    from nautilus_trader.model.instruments import Equity
    from nautilus_trader.model.objects import Price, Quantity

    return Equity(
        instrument_id=InstrumentId(Symbol(SYMBOL), Venue(venue)),
        raw_symbol=Symbol(SYMBOL),
        currency=USD,
        price_precision=2,  # TICK_SIZE
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
    )


def _new_engine():
    from nautilus_trader.backtest.engine import BacktestEngine
    from nautilus_trader.config import BacktestEngineConfig, DataEngineConfig, LoggingConfig

    return BacktestEngine(
        config=BacktestEngineConfig(
            logging=LoggingConfig(bypass_logging=True),
            data_engine=DataEngineConfig(buffer_deltas=False),
            run_analysis=False,
        )
    )


def _populate(engine, per_venue: dict[int, list], subscribe: bool):
    """Adds the venues, instruments, strategy and data; returns the strategy (or None)."""
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.enums import AccountType, BookType, OmsType
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Money

    venues = sorted(per_venue)
    instrument_ids = []
    for venue_id in venues:
        code = venue_code(venue_id)
        engine.add_venue(
            venue=Venue(code),
            oms_type=OmsType.NETTING,
            account_type=AccountType.CASH,
            starting_balances=[Money(1_000_000, USD)],
            book_type=BookType.L3_MBO,
        )
        instrument = _equity(code)
        engine.add_instrument(instrument)
        instrument_ids.append(str(instrument.id))
    strategy = None
    if subscribe:
        cls, config_cls = _strategy_class()
        strategy = cls(config_cls(instrument_ids=tuple(instrument_ids)))
        engine.add_strategy(strategy)
    for i, venue_id in enumerate(venues):
        # Each venue's deltas are in its own ts_init (= ts_recv) order; the last call sorts the
        # whole stream by ts_init (a stable sort, so a venue's own order is kept).
        engine.add_data(per_venue[venue_id], validate=True, sort=i == len(venues) - 1)
    return strategy


def run_nautilus_backtest(events: np.ndarray, *, subscribe: bool = True) -> NautilusBacktestResult:
    """Runs nautilus_trader's ``BacktestEngine`` over ``events`` (an L3 MdEvent stream) and
    returns its throughput in deltas per second of ``engine.run()``.

    Raises ImportError (with the install command) when nautilus_trader is missing.
    """
    version = _require_nautilus()
    import nautilus_trader.backtest.engine  # noqa: F401  (imported before the memory baseline)
    import nautilus_trader.model.data  # noqa: F401

    rss_before = _rss_bytes()
    t0 = time.perf_counter()
    per_venue = convert_stream(events)
    convert_seconds = time.perf_counter() - t0
    venue_ids = tuple(sorted(per_venue))
    deltas_per_venue = tuple(len(per_venue[v]) for v in venue_ids)
    delta_count = sum(deltas_per_venue)

    t0 = time.perf_counter()
    engine = _new_engine()
    try:
        strategy = _populate(engine, per_venue, subscribe)
        setup_seconds = time.perf_counter() - t0
        del per_venue  # the engine holds the deltas now
        rss_loaded = _rss_bytes()
        was_enabled = gc.isenabled()
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            engine.run()
            run_seconds = time.perf_counter() - t0
        finally:
            if was_enabled:
                gc.enable()
        strategy_count = strategy.delta_count if strategy is not None else 0
        final_tops = ()
        if subscribe:
            final_tops = tuple(peers._nautilus_top(engine.cache.order_book(instrument_id(v)), TICK_SIZE)
                               for v in venue_ids)
        peak = _rss_bytes("VmHWM")
    finally:
        engine.dispose()
    if subscribe and strategy_count != delta_count:
        raise RuntimeError(f"nautilus_trader: the strategy saw {strategy_count} of {delta_count} deltas")
    return NautilusBacktestResult(
        event_count=delta_count,
        venue_count=len(deltas_per_venue),
        run_seconds=run_seconds,
        setup_seconds=setup_seconds,
        events_per_second=delta_count / run_seconds if run_seconds > 0 else float("inf"),
        nautilus_version=version,
        source_event_count=int(len(events)),
        strategy_delta_count=strategy_count,
        subscribed=subscribe,
        venue_ids=venue_ids,
        deltas_per_venue=deltas_per_venue,
        final_tops=final_tops,
        convert_seconds=convert_seconds,
        rss_before_bytes=rss_before,
        rss_loaded_bytes=rss_loaded,
        peak_rss_bytes=peak,
    )


def _main() -> None:  # pragma: no cover - a manual measurement entry point
    import argparse
    import json

    parser = argparse.ArgumentParser(description="nautilus_trader BacktestEngine over sor's L3 stream")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--venues", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-subscribe", action="store_true")
    args = parser.parse_args()
    stream = comparable_stream(args.seed, args.events, args.venues)
    result = run_nautilus_backtest(stream, subscribe=not args.no_subscribe)
    print(json.dumps({"pid": os.getpid(), **result.as_dict()}, indent=2))


if __name__ == "__main__":  # pragma: no cover
    _main()
