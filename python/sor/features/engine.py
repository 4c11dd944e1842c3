"""The feature engine from Python: build it from the router configuration or a simulator
scenario, feed it market-data events, and read decision rows for candidate child orders.

The computations run in the C++ core (``sor::FeatureEngine``), the same code the engine runs
online, so rows built here for a training set equal the rows the router sees for the same
events. The engine owns a consolidated book: ``apply`` sends each event to the book and, when
the book takes it, to the feature state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sor import _core
from sor.errors import FeatureConfigError, UsageError
from sor.features.garch import GarchParams
from sor.features.schema import FEATURE_SCHEMA, FeatureSchema

DECISION_CONTEXT_DTYPE = _core.decision_context_dtype
"""numpy dtype of one candidate child order at one decision time (``sor::DecisionContext``)."""

ChildOrderType = _core.ChildOrderType

_CORE_DEFAULTS = _core.FeatureOptions()


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureSettings:
    """How the feature engine measures; the defaults are the core's (``sor::FeatureOptions``).

    ``max_instruments`` None takes the instrument count of the configuration or scenario.
    ``garch`` None leaves the GARCH feature at 0 until parameters are fitted (fit_garch).
    """

    max_instruments: int | None = None
    vol_sample_interval_ns: int = _CORE_DEFAULTS.vol_sample_interval_ns
    flow_bucket_ns: int = _CORE_DEFAULTS.flow_bucket_ns
    default_adv_shares: float = _CORE_DEFAULTS.default_adv_shares
    fill_rate_prior: float = _CORE_DEFAULTS.fill_rate_prior
    fill_rate_prior_weight_orders: float = _CORE_DEFAULTS.fill_rate_prior_weight_orders
    fill_rate_half_life_orders: float = _CORE_DEFAULTS.fill_rate_half_life_orders
    latency_ewma_weight: float = _CORE_DEFAULTS.latency_ewma_weight
    garch: GarchParams | None = None


def empty_contexts(count: int) -> np.ndarray:
    """Returns ``count`` zeroed decision contexts, ready to fill field by field."""
    return np.zeros(count, dtype=DECISION_CONTEXT_DTYPE)


def build_options(venues: Sequence[Any], *, price_tick_usd: float, max_instruments: int,
                  settings: FeatureSettings | None = None) -> Any:
    """Returns ``_core.FeatureOptions`` for these ``_core.FeatureVenueSpec`` venues; raises
    FeatureConfigError naming the first impossible value."""
    settings = settings or FeatureSettings()
    options = _core.FeatureOptions()
    try:
        options.venues = list(venues)
        options.price_tick_usd = float(price_tick_usd)
        options.max_instruments = int(settings.max_instruments or max_instruments)
        for field in dataclasses.fields(FeatureSettings):
            if field.name not in ("max_instruments", "garch"):
                setattr(options, field.name, getattr(settings, field.name))
    except (TypeError, ValueError) as error:
        raise FeatureConfigError(f"settings: {error}") from None
    if settings.garch is not None:
        options.garch = settings.garch.to_core()
    problem = _core.validate_feature_options(options)
    if problem:
        raise FeatureConfigError(problem)
    return options


class FeatureEngine:
    """Incremental features over a consolidated book; ``FeatureEngine.from_config(config)`` or
    ``FeatureEngine.from_scenario("default")``. Not thread-safe; ``close()`` frees it (or use it
    as a context manager)."""

    schema: FeatureSchema = FEATURE_SCHEMA

    def __init__(self, options: Any) -> None:
        self.options = options
        self._core: Any = _core.FeatureEngineCore(options)
        self.venue_ids = tuple(int(v.venue_id) for v in options.venues)
        self.venue_names: dict[str, int] = {}

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Any, settings: FeatureSettings | None = None, *,
                    midpoint_fee_usd_per_share: Mapping[str, float] | None = None,
                    ) -> FeatureEngine:
        """Builds the engine for a ``sor.config.RouterConfig``: its venues (lit/dark, book
        type, fees, ``ack_latency_ns`` as the configured order-to-ack latency) and price tick.
        The configuration has no midpoint fee; it is the taker fee unless
        ``midpoint_fee_usd_per_share`` names the venue."""
        mid_fees = dict(midpoint_fee_usd_per_share or {})
        unknown = set(mid_fees) - {v.name for v in config.venues}
        if unknown:
            raise FeatureConfigError(f"midpoint_fee_usd_per_share names unknown venues "
                                     f"{sorted(unknown)}", key="midpoint_fee_usd_per_share")
        venues = []
        for v in config.venues:
            venues.append(_core.FeatureVenueSpec(
                int(v.venue_id), lit=bool(v.lit),
                book_type=v.book_type if v.book_type is not None else _core.BookType.L3,
                maker_fee_usd_per_share=v.fees.maker_fee_usd_per_share,
                taker_fee_usd_per_share=v.fees.taker_fee_usd_per_share,
                midpoint_fee_usd_per_share=mid_fees.get(v.name, v.fees.taker_fee_usd_per_share),
                latency_ns=int(v.ack_latency_ns)))
        instruments = max((i.instrument_id for i in config.instruments), default=0) + 1
        engine = cls(build_options(venues, price_tick_usd=config.price_tick_usd,
                                   max_instruments=instruments, settings=settings))
        engine.venue_names = {v.name: int(v.venue_id) for v in config.venues}
        return engine

    @classmethod
    def from_scenario(cls, scenario: Any = "default",
                      settings: FeatureSettings | None = None) -> FeatureEngine:
        """Builds the engine for a simulated market: a scenario name, a ``Scenario``, or a
        ``sor.sim.Market``. Every simulated venue publishes order by order (L3); the
        configured latency is order entry plus ack (send to ack received)."""
        from sor.sim.market import Market
        from sor.sim.scenario import Scenario, load_scenario

        if isinstance(scenario, Market):
            spec = scenario.spec
        else:
            loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
            spec = loaded.market_spec()
        venues = []
        for v in spec.venues:
            venues.append(_core.FeatureVenueSpec(
                int(v.venue_id), lit=v.kind == _core.SimVenueKind.LIT, book_type=_core.BookType.L3,
                maker_fee_usd_per_share=v.maker_fee_usd_per_share,
                taker_fee_usd_per_share=v.taker_fee_usd_per_share,
                midpoint_fee_usd_per_share=v.midpoint_fee_usd_per_share,
                latency_ns=int(v.latency.order_entry_ns + v.latency.ack_ns)))
        engine = cls(build_options(venues, price_tick_usd=spec.price_tick_usd,
                                   max_instruments=int(spec.instrument_count), settings=settings))
        engine.venue_names = {v.name: int(v.venue_id) for v in spec.venues}
        return engine

    # --- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        """Frees the engine and its book; later calls raise UsageError."""
        self._core = None

    def __enter__(self) -> FeatureEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def core(self) -> Any:
        """The ``_core.FeatureEngineCore``; raises UsageError after close()."""
        if self._core is None:
            raise UsageError("the feature engine is closed")
        return self._core

    # --- market data and decisions --------------------------------------------------------

    def apply(self, events: np.ndarray, *, strict: bool = True) -> int:
        """Applies ``MD_EVENT_DTYPE`` events in order (ts_recv order across venues); returns how
        many the book took. ``strict`` raises BookIntegrityError/SequenceGapError at the first
        refused event (events before it stay applied); otherwise refused events are skipped
        and counted in ``rejected``."""
        return int(self.core.apply(np.ascontiguousarray(events), strict=strict))

    def rows(self, contexts: np.ndarray) -> np.ndarray:
        """Returns float32 rows ``[n, schema.size]`` for ``DECISION_CONTEXT_DTYPE`` contexts,
        read at the current state; raises FeatureError naming the first refused context."""
        return self.core.build_rows(np.ascontiguousarray(contexts))

    def replay(self, events: np.ndarray, contexts: np.ndarray, *, strict: bool = True,
               ) -> np.ndarray:
        """Builds the training rows of a recorded session: applies ``events`` (sorted by
        ts_recv) up to each context's ``now_ns`` (inclusive), then builds that context's row.
        Returns rows in the order of ``contexts``. Events later than the last context are not
        applied."""
        events = np.ascontiguousarray(events)
        recv = events["ts_recv"]
        if recv.size > 1 and np.any(np.diff(recv) < 0):
            raise UsageError("events must be sorted by ts_recv (merge venues with a stable sort)")
        contexts = np.ascontiguousarray(contexts)
        out = np.zeros((contexts.size, self.schema.size), dtype=np.float32)
        order = np.argsort(contexts["now_ns"], kind="stable")
        cuts = np.searchsorted(recv, contexts["now_ns"][order], side="right")
        done = 0
        start = 0
        while start < order.size:
            stop = start
            while stop < order.size and cuts[stop] == cuts[start]:
                stop += 1
            if cuts[start] > done:
                self.apply(events[done:cuts[start]], strict=strict)
                done = int(cuts[start])
            out[order[start:stop]] = self.rows(contexts[order[start:stop]])
            start = stop
        return out

    # --- what the engine is told ----------------------------------------------------------

    def _venue(self, venue: int | str) -> int:
        if isinstance(venue, str):
            if venue not in self.venue_names:
                raise UsageError(f"no venue {venue!r}; venues: {sorted(self.venue_names)}")
            return self.venue_names[venue]
        return int(venue)

    def on_child_done(self, venue: int | str, side: Any, order_type: Any, quantity: int,
                      filled_quantity: int) -> None:
        """Records the outcome of one of our child orders (venue.fill_rate)."""
        self.core.on_child_done(self._venue(venue), _core.Side(int(side)),
                                _core.ChildOrderType(int(order_type)), int(quantity),
                                int(filled_quantity))

    def on_latency_sample(self, venue: int | str, latency_ns: int) -> None:
        """Records one measured order-to-ack latency (venue.latency_us)."""
        self.core.on_latency_sample(self._venue(venue), int(latency_ns))

    def set_adv(self, instrument_id: int, adv_shares: float) -> None:
        """Sets the average daily volume of an instrument (order/child adv fractions)."""
        self.core.set_adv(int(instrument_id), float(adv_shares))

    def set_implied_volatility(self, instrument_id: int, annual: float) -> None:
        """Sets an instrument's implied volatility (annualised fraction)."""
        self.core.set_implied_volatility(int(instrument_id), float(annual))

    def clear_implied_volatility(self, instrument_id: int) -> None:
        """Clears an instrument's implied volatility."""
        self.core.clear_implied_volatility(int(instrument_id))

    @property
    def book(self) -> Any:
        """The owned ``ConsolidatedBook`` (read it; apply through the engine)."""
        return self.core.book

    @property
    def clock_ns(self) -> int:
        """The largest ts_recv applied (0 before the first event)."""
        return int(self.core.clock_ns)

    @property
    def rejected(self) -> int:
        """Events the book refused so far."""
        return int(self.core.rejected)
