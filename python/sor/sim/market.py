"""The multi-venue market simulator from Python: build it from a scenario, advance time, trade
in it as an agent, and read what it recorded (trades, quote samples, ITCH feeds)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from sor import _core
from sor.errors import SorError
from sor.sim.scenario import Scenario, load_scenario

AGENT_ORDER_DTYPE = _core.agent_order_dtype
SIM_REPORT_DTYPE = _core.sim_report_dtype
SIM_TRADE_DTYPE = _core.sim_trade_dtype
QUOTE_SAMPLE_DTYPE = _core.quote_sample_dtype

OrderType = _core.SimOrderType
ReportKind = _core.SimReportKind
RejectReason = _core.SimRejectReason
Liquidity = _core.SimLiquidity

_NS_PER_S = 1_000_000_000


class MarketClosedError(SorError):
    """The simulator was used after close()."""


class Market:
    """One simulated market. ``Market("calm", seed=7)`` or ``Market(load_scenario(path))``;
    keyword overrides set any ``market`` or ``recording`` key (``record_feeds=True``).

    The clock starts at the open with the books at their expected depth. Orders sent with
    ``submit`` reach their venue after that venue's order-entry latency; reports come back
    after its ack latency and are read with ``reports()``."""

    def __init__(self, scenario: Scenario | str | Path = "default", *, seed: int | None = None,
                 **overrides: Any) -> None:
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.spec = self.scenario.market_spec(seed=seed, **overrides)
        self._core: Any = _core.MarketSimulatorCore(self.spec)
        self._venues = {v.name: v for v in self.spec.venues}
        self._venue_by_id = {int(v.venue_id): v for v in self.spec.venues}
        self._client_ids = itertools.count(1)

    # --- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Frees the simulator (books, recordings); later calls raise MarketClosedError."""
        self._core = None

    def __enter__(self) -> Market:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def core(self) -> Any:
        """The ``_core.MarketSimulatorCore`` (raises once closed)."""
        if self._core is None:
            raise MarketClosedError("the market simulator is closed")
        return self._core

    # --- time -----------------------------------------------------------------------------

    @property
    def now_ns(self) -> int:
        """The simulation clock, epoch nanoseconds."""
        return int(self.core.now)

    @property
    def session_start_ns(self) -> int:
        """The open, epoch nanoseconds."""
        return int(self.spec.session_start_ns)

    @property
    def session_end_ns(self) -> int:
        """The close, epoch nanoseconds."""
        return int(self.core.session_end)

    def run_until(self, ts_ns: int) -> None:
        """Processes every event up to ``ts_ns`` (the GIL is released meanwhile)."""
        self.core.run_until(int(ts_ns))

    def run_for(self, seconds: float) -> None:
        """Advances the clock by ``seconds``."""
        self.run_until(self.now_ns + int(seconds * _NS_PER_S))

    def run_session(self) -> int:
        """Runs to the close; returns the number of market events generated."""
        return int(self.core.run_session())

    # --- the agent ------------------------------------------------------------------------

    def venue_id(self, venue: str | int) -> int:
        """Returns the id of a venue given by name or id; raises KeyError naming the choices."""
        if isinstance(venue, str):
            if venue not in self._venues:
                raise KeyError(f"no venue {venue!r}; venues: {sorted(self._venues)}")
            return int(self._venues[venue].venue_id)
        if int(venue) not in self._venue_by_id:
            raise KeyError(f"no venue id {venue}; ids: {sorted(self._venue_by_id)}")
        return int(venue)

    def submit(self, venue: str | int, side: str | _core.Side, quantity: int, *,
               price_ticks: int = 0, order_type: Any = OrderType.LIMIT, min_quantity: int = 0,
               instrument_id: int = 0, tag: int = 0, client_order_id: int | None = None,
               ts_send_ns: int | None = None) -> int:
        """Sends one order now (or at ``ts_send_ns``); returns its client order id. Invalid
        orders are not refused here: the venue rejects them with a report naming the reason."""
        order = np.zeros(1, dtype=AGENT_ORDER_DTYPE)
        client = next(self._client_ids) if client_order_id is None else int(client_order_id)
        order["ts_send"] = self.now_ns if ts_send_ns is None else int(ts_send_ns)
        order["client_order_id"] = client
        order["price_ticks"] = int(price_ticks)
        order["quantity"] = int(quantity)
        order["min_quantity"] = int(min_quantity)
        order["tag"] = int(tag)
        order["instrument_id"] = int(instrument_id)
        order["venue_id"] = self.venue_id(venue) if isinstance(venue, str) else int(venue)
        order["type"] = int(order_type)
        order["side"] = _side(side)
        self.core.submit(order)
        return client

    def submit_orders(self, orders: np.ndarray) -> None:
        """Sends a batch of ``AGENT_ORDER_DTYPE`` records (client ids are the caller's)."""
        self.core.submit(np.ascontiguousarray(orders))

    def cancel(self, client_order_id: int, *, ts_send_ns: int | None = None) -> None:
        """Sends a cancel; a report says cancelled, or rejected as unknown when it came late."""
        self.core.cancel(int(client_order_id), self.now_ns if ts_send_ns is None else int(ts_send_ns))

    def reports(self) -> np.ndarray:
        """Returns the reports received by now (``SIM_REPORT_DTYPE``), oldest first."""
        return self.core.take_reports()

    @property
    def open_orders(self) -> int:
        """Agent orders still open (in flight or resting)."""
        return int(self.core.open_agent_orders)

    # --- what the market looks like -------------------------------------------------------

    def nbbo(self, instrument_id: int = 0) -> np.void:
        """Returns the consolidated best bid and offer across lit venues (``nbbo_dtype``)."""
        return self.core.nbbo(instrument_id)[0]

    def levels(self, venue: str | int, side: str | _core.Side, depth: int = 10,
               instrument_id: int = 0) -> np.ndarray:
        """Returns up to ``depth`` price levels of a lit venue's book, best first."""
        return self.core.levels(self.venue_id(venue), instrument_id, _core.Side(_side(side)), depth)

    def hidden_quantity(self, venue: str | int, side: str | _core.Side,
                        instrument_id: int = 0) -> int:
        """Returns hidden background shares resting in a dark pool (ground truth; an agent
        only learns about them through its fills)."""
        return int(self.core.hidden_quantity(self.venue_id(venue), instrument_id,
                                             _core.Side(_side(side))))

    def fundamental_ticks(self, instrument_id: int = 0) -> float:
        """Returns the hidden fundamental value (ground truth for studies, not for agents)."""
        return float(self.core.fundamental(instrument_id))

    @property
    def regime(self) -> str:
        """Name of the current regime."""
        return str(self.spec.regimes[self.core.regime].name)

    def counters(self) -> dict[str, int]:
        """Returns the run's counters (events, trades, news, agent fills, book_errors...)."""
        return dict(self.core.counters())

    # --- recordings -----------------------------------------------------------------------

    def trades(self) -> np.ndarray:
        """Returns and forgets the trades recorded so far (``SIM_TRADE_DTYPE``)."""
        return self.core.take_trades()

    def quotes(self) -> tuple[np.ndarray, np.ndarray]:
        """Returns and forgets the quote samples (``QUOTE_SAMPLE_DTYPE``) and their depth,
        shape (samples, 2, levels): [:, 0] bids and [:, 1] asks by grid ticks from the best."""
        return self.core.take_quotes()

    def feed(self, venue: str | int) -> bytes:
        """Returns and forgets a venue's ITCH 5.0 bytes (file framing) written so far; needs
        ``record_feeds=True``."""
        return self.core.take_feed(self.venue_id(venue))

    def events(self, venue: str | int) -> np.ndarray:
        """Returns and forgets a venue's MdEvents so far; needs ``record_events=True``."""
        return self.core.take_events(self.venue_id(venue))


def _side(side: str | _core.Side | int) -> int:
    if isinstance(side, str):
        lowered = side.lower()
        if lowered in ("buy", "b"):
            return int(_core.Side.BUY)
        if lowered in ("sell", "s"):
            return int(_core.Side.SELL)
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    return int(side)
