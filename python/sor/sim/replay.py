"""Replay market: recorded L3 streams (one per venue) replayed as the market, with the agent's
orders inserted at a queue position after an order-entry latency, and an optional transient
impact model on top. The rules live in the C++ core (cpp/src/replay.cpp) and are described in
docs/sim-replay.md.

The recorded flow does not react to the agent: the impact model shifts the prices the agent's
orders meet, not the recorded orders. That is the limit of replay and why the full simulator
exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Literal

import numpy as np

from sor import _core
from sor.errors import SimulationError, UsageError

QueueModelName = Literal["conservative", "proportional", "optimistic", "fifo"]
ImpactModelName = Literal["none", "propagator"]
QuoteViewName = Literal["venue", "agent"]

_QUEUE_MODELS = {"conservative": _core.QueueModel.CONSERVATIVE,
                 "proportional": _core.QueueModel.PROPORTIONAL,
                 "optimistic": _core.QueueModel.OPTIMISTIC, "fifo": _core.QueueModel.FIFO}
_IMPACT_MODELS = {"none": _core.ImpactModel.NONE, "propagator": _core.ImpactModel.PROPAGATOR}
_VIEWS = {"venue": _core.QuoteView.VENUE, "agent": _core.QuoteView.AGENT}
_ORDER_TYPES = {"limit": _core.SimOrderType.LIMIT, "market": _core.SimOrderType.MARKET,
                "ioc": _core.SimOrderType.IOC, "post_only": _core.SimOrderType.POST_ONLY,
                "midpoint_peg": _core.SimOrderType.MIDPOINT_PEG}
_SIDES = {"buy": 1, "sell": 2}
_NOT_RESTING = -1


@dataclass(frozen=True)
class ReplayVenue:
    """Latencies, fees and price grid of one replayed venue.

    Every latency gets a deterministic jitter drawn uniformly from ``[0, latency_jitter_ns]``
    (seeded by ``ReplayOptions.seed``); a venue's order entry, reports and market data are
    each first-in first-out, so jitter never reorders one channel. Fees are USD per share,
    negative for a rebate.
    """

    order_entry_latency_ns: int = 0
    ack_latency_ns: int = 0
    market_data_latency_ns: int = 0
    latency_jitter_ns: int = 0
    maker_fee_usd_per_share: float = 0.0
    taker_fee_usd_per_share: float = 0.0
    tick_size_ticks: int = 1


@dataclass(frozen=True)
class PropagatorImpact:
    """Transient propagator impact, in ticks, of the agent's taking orders:
    ``I(t) = sum_i sign_i * eta_ticks * (q_i / daily_volume_shares) ** delta *
    ((1 - permanent_fraction) * (1 + (t - t_i) / t0_ns) ** -beta + permanent_fraction)``."""

    eta_ticks: float = 1.0
    delta: float = 0.5
    beta: float = 0.5
    t0_ns: float = 1_000_000.0
    permanent_fraction: float = 0.0
    daily_volume_shares: float = 1_000_000.0


@dataclass(frozen=True)
class ReplayOptions:
    """Everything a replay market is configured with. Venue ``v`` is ``venues[v]``."""

    venues: tuple[ReplayVenue, ...] = (ReplayVenue(),)
    queue_model: QueueModelName = "conservative"
    impact_model: ImpactModelName = "none"
    propagator: PropagatorImpact = field(default_factory=PropagatorImpact)
    seed: int = 1

    def __post_init__(self) -> None:
        if self.queue_model not in _QUEUE_MODELS:
            raise UsageError(f"queue_model must be one of {sorted(_QUEUE_MODELS)}, "
                             f"not {self.queue_model!r}")
        if self.impact_model not in _IMPACT_MODELS:
            raise UsageError(f"impact_model must be one of {sorted(_IMPACT_MODELS)}, "
                             f"not {self.impact_model!r}")
        if not isinstance(self.venues, tuple) or not all(
                isinstance(v, ReplayVenue) for v in self.venues):
            raise UsageError("venues must be a tuple of ReplayVenue")
        if not isinstance(self.propagator, PropagatorImpact):
            raise UsageError("propagator must be a PropagatorImpact")
        if not 0 <= int(self.seed) < 1 << 64:
            raise UsageError(f"seed must fit 64 unsigned bits, not {self.seed}")


def agent_orders(count: int) -> np.ndarray:
    """Returns ``count`` zeroed records of ``agent_order_dtype`` to fill in."""
    return np.zeros(count, dtype=_core.agent_order_dtype)


def agent_order(*, ts_send: int, client_order_id: int, side: Literal["buy", "sell"],
                quantity: int, price_ticks: int = 0,
                type: Literal["limit", "market", "ioc", "post_only", "midpoint_peg"] = "limit",
                venue_id: int = 0, instrument_id: int = 0, tag: int = 0,
                min_quantity: int = 0) -> np.ndarray:
    """Returns one agent order as a one-record ``agent_order_dtype`` array."""
    if side not in _SIDES:
        raise UsageError(f"side must be 'buy' or 'sell', not {side!r}")
    if type not in _ORDER_TYPES:
        raise UsageError(f"type must be one of {sorted(_ORDER_TYPES)}, not {type!r}")
    record = agent_orders(1)
    record["ts_send"] = ts_send
    record["client_order_id"] = client_order_id
    record["side"] = _SIDES[side]
    record["quantity"] = quantity
    record["price_ticks"] = price_ticks
    record["type"] = int(_ORDER_TYPES[type])
    record["venue_id"] = venue_id
    record["instrument_id"] = instrument_id
    record["tag"] = tag
    record["min_quantity"] = min_quantity
    return record


class ReplayMarket:
    """A recorded multi-venue market replayed with the agent's orders inserted into it.

    Load every venue's stream first (``streams`` or :meth:`load` / :meth:`load_itch`), then
    alternate :meth:`submit` / :meth:`cancel` and :meth:`run_until`, reading what came back
    with :meth:`drain_reports`. Bad orders are answered by REJECTED reports naming the
    reason (``_core.SimRejectReason``), and the replay goes on; a bad recorded stream raises
    :class:`sor.errors.SimulationError` from :meth:`load`, naming the event.
    """

    def __init__(self, streams: Mapping[int, np.ndarray] | None = None, *,
                 options: ReplayOptions | None = None) -> None:
        options = ReplayOptions() if options is None else options
        if not isinstance(options, ReplayOptions):
            raise UsageError("options must be a ReplayOptions")
        self._options = options
        self._market: _core.ReplayMarket | None = _core.ReplayMarket(
            venues=[asdict(v) for v in options.venues],
            queue_model=_QUEUE_MODELS[options.queue_model],
            impact_model=_IMPACT_MODELS[options.impact_model],
            propagator=asdict(options.propagator), seed=int(options.seed))
        for venue_id, events in (streams or {}).items():
            self.load(venue_id, events)

    @classmethod
    def from_itch(cls, streams: Mapping[int, bytes | bytearray | memoryview], *,
                  options: ReplayOptions | None = None, session_date_ns: int = 0,
                  instruments: Mapping[str, int] | None = None) -> ReplayMarket:
        """Builds a market from ITCH 5.0 file-framed bytes per venue (see :meth:`load_itch`)."""
        market = cls(options=options)
        for venue_id, data in streams.items():
            market.load_itch(venue_id, data, session_date_ns=session_date_ns,
                             instruments=instruments)
        return market

    @property
    def options(self) -> ReplayOptions:
        """The options the market was built with."""
        return self._options

    def _open(self) -> _core.ReplayMarket:
        if self._market is None:
            raise UsageError("the replay market is closed")
        return self._market

    def load(self, venue_id: int, events: np.ndarray) -> None:
        """Loads a venue's recorded L3 stream (``md_event_dtype``, sorted by ts_event, every
        event applying to an L3 book). Venues merge by ts_event, ties in load order then input
        order. Raises SimulationError naming the first bad event; nothing is kept then."""
        if not 0 <= int(venue_id) <= 0xFF:
            raise SimulationError(f"venue {venue_id} is not configured",
                                  reason="unknown_venue", venue_id=int(venue_id))
        failure = self._open().load(int(venue_id), events)
        if failure is not None:
            reason, index, message = failure
            raise SimulationError(f"venue {venue_id}: {message}", reason=reason,
                                  venue_id=int(venue_id), index=int(index))

    def load_itch(self, venue_id: int, data: bytes | bytearray | memoryview, *,
                  session_date_ns: int = 0, instruments: Mapping[str, int] | None = None) -> None:
        """Decodes ITCH 5.0 file-framed bytes with :func:`sor.feed.itch.decode` (venue_id set
        to ``venue_id``) and loads the events. Raises FeedDecodeError for bad bytes."""
        from sor.feed import itch

        batch = itch.decode(data, venue_id=int(venue_id), session_date_ns=session_date_ns,
                            instruments=instruments)
        self.load(venue_id, batch.events)

    def submit(self, orders: np.ndarray) -> None:
        """Sends ``agent_order_dtype`` orders in array order, each at its ``ts_send`` (or now,
        when earlier: counted in ``counters['late_sends']``)."""
        self._open().submit(np.ascontiguousarray(orders).reshape(-1))

    def cancel(self, client_order_id: int, ts_send: int) -> None:
        """Sends a cancel of the agent's order; it travels with the venue's order-entry latency
        and may lose the race to a fill (then a REJECTED report says UNKNOWN_ORDER)."""
        self._open().cancel(int(client_order_id), int(ts_send))

    def run_until(self, ts_ns: int) -> None:
        """Processes recorded events and the agent's orders at the venues up to ts_ns."""
        self._open().run_until(int(ts_ns))

    def drain_reports(self) -> np.ndarray:
        """Returns the reports received by now (ts_recv <= now) as ``sim_report_dtype``, in
        ts_recv order; each is returned once."""
        return self._open().drain_reports()

    def quote(self, venue_id: int, instrument_id: int = 0, *,
              view: QuoteViewName = "venue") -> _core.Nbbo:
        """Returns one venue's best bid and ask (zeros when a side is empty). ``view="venue"``
        is what an order arriving now meets (recorded book minus the shares the agent took,
        shifted by the impact); ``view="agent"`` is the raw recorded book the agent has
        received, one market-data latency behind."""
        return self._open().quote(int(venue_id), int(instrument_id), _view(view))

    def nbbo(self, instrument_id: int = 0, *, view: QuoteViewName = "venue") -> _core.Nbbo:
        """Returns the best bid and ask across venues, with the venues at each (see quote)."""
        return self._open().nbbo(int(instrument_id), _view(view))

    def impact_ticks(self, instrument_id: int = 0) -> float:
        """Returns the impact of the agent's trades on the instrument now, in ticks."""
        return float(self._open().impact_ticks(int(instrument_id)))

    def shares_ahead(self, client_order_id: int) -> int | None:
        """Returns the recorded shares ahead of the agent's resting order, None when it does
        not rest."""
        ahead = int(self._open().shares_ahead(int(client_order_id)))
        return None if ahead == _NOT_RESTING else ahead

    def leaves_quantity(self, client_order_id: int) -> int | None:
        """Returns the open quantity of the agent's order at its venue, None when not open."""
        leaves = int(self._open().leaves_quantity(int(client_order_id)))
        return None if leaves == _NOT_RESTING else leaves

    @property
    def now(self) -> int:
        """The replay clock in ns (the last run_until time)."""
        return int(self._open().now)

    @property
    def next_event_ts(self) -> int | None:
        """ts_event of the next recorded event, None when every stream is done."""
        ts = int(self._open().next_event_ts)
        return None if ts == np.iinfo(np.int64).max else ts

    @property
    def pending_reports(self) -> int:
        """Reports generated and not yet drained (some may not be received yet)."""
        return int(self._open().pending_reports)

    @property
    def counters(self) -> dict[str, int]:
        """Counters: recorded_events, orders_submitted, orders_rejected, cancels_submitted,
        cancels_rejected, fills, shares_taken, shares_made, late_sends, reports_emitted."""
        return dict(self._open().counters)

    def close(self) -> None:
        """Releases the books and streams; further calls raise UsageError."""
        self._market = None

    def __enter__(self) -> ReplayMarket:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _view(view: str) -> _core.QuoteView:
    try:
        return _VIEWS[view]
    except KeyError:
        raise UsageError(f"view must be 'venue' or 'agent', not {view!r}") from None


__all__ = ["ReplayMarket", "ReplayOptions", "ReplayVenue", "PropagatorImpact", "agent_order",
           "agent_orders"]
