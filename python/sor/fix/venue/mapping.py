"""Which simulated venue is which router venue, and which simulated instrument is which symbol.

The simulator numbers its instruments 0..n-1 and names its venues in the scenario; the router
names venues and symbols in its configuration. ``venue_map`` checks that the two agree (venue
ids, names, lit or dark, price grid, price tick) and refuses to start on any mismatch, naming
it: a venue server quoting a different venue than the router believes would trade wrongly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sor._core import BookType
from sor.config import RouterConfig, default_config
from sor.errors import ConfigError
from sor.sim.market import Market
from sor.sim.scenario import Scenario, load_scenario


@dataclass(frozen=True)
class MappedVenue:
    """One venue as both sides know it."""

    venue_id: int
    name: str
    lit: bool
    book_type: Any               # BookType.L3 / L2 for a lit venue, None for a dark pool
    tick_size_ticks: int         # the venue's price grid (lit); 1 for a dark pool


@dataclass(frozen=True)
class VenueMap:
    """Venues, symbols and ids shared by the simulated market and the router configuration."""

    venues: tuple[MappedVenue, ...]
    symbols: tuple[str, ...]          # simulator instrument index -> symbol
    instrument_ids: tuple[int, ...]   # simulator instrument index -> router instrument id
    price_tick_usd: float

    def venue(self, name: str) -> MappedVenue:
        """Returns the venue called ``name``; raises KeyError naming the venues."""
        for venue in self.venues:
            if venue.name == name:
                return venue
        raise KeyError(f"no venue {name!r}; venues: {[v.name for v in self.venues]}")

    def instrument_index(self, symbol: str) -> int | None:
        """Returns the simulator's instrument index of ``symbol``, or None."""
        try:
            return self.symbols.index(symbol)
        except ValueError:
            return None

    def instrument_id_table(self) -> np.ndarray:
        """Returns simulator instrument index -> router instrument id as a uint32 array."""
        return np.asarray(self.instrument_ids, dtype=np.uint32)


def venue_map(router_config: RouterConfig | None = None,
              scenario: Scenario | str | Path = "default") -> VenueMap:
    """Returns the mapping between ``scenario``'s venues and ``router_config``'s venues and
    instruments; raises ConfigError naming every mismatch."""
    config = router_config if router_config is not None else default_config()
    scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    spec = scenario.market_spec()
    simulated = {int(v.venue_id): v for v in spec.venues}
    routed = {v.venue_id: v for v in config.venues}
    problems = []
    for venue_id in sorted(set(simulated) | set(routed)):
        sim, ours = simulated.get(venue_id), routed.get(venue_id)
        if sim is None:
            problems.append(f"router venue {ours.name} (id {venue_id}) is not in scenario "
                            f"{scenario.name!r}")
            continue
        if ours is None:
            problems.append(f"scenario venue {sim.name} (id {venue_id}) is not in the router "
                            "configuration")
            continue
        if sim.name != ours.name:
            problems.append(f"venue id {venue_id} is {sim.name} in scenario {scenario.name!r} "
                            f"but {ours.name} in the router configuration")
        sim_lit = int(sim.kind) == 0
        if sim_lit != ours.lit:
            problems.append(f"venue {ours.name} is {'lit' if sim_lit else 'dark'} in the scenario "
                            f"but {'lit' if ours.lit else 'dark'} in the router configuration")
    if abs(spec.price_tick_usd - config.price_tick_usd) > 1e-15:
        problems.append(f"price_tick_usd is {spec.price_tick_usd:g} in the scenario but "
                        f"{config.price_tick_usd:g} in the router configuration")
    instruments = sorted(config.instruments, key=lambda i: i.instrument_id)
    if not instruments:
        problems.append("the router configuration has no instrument")
    for instrument in instruments:
        for venue_id, sim in simulated.items():
            if int(sim.kind) == 0 and sim.tick_size_ticks != instrument.tick_size_ticks:
                problems.append(f"{instrument.symbol} has tick_size_ticks "
                                f"{instrument.tick_size_ticks} in the router configuration but "
                                f"venue {sim.name} quotes on a {sim.tick_size_ticks}-tick grid")
    if problems:
        raise ConfigError("the simulated venues do not match the router configuration: "
                          + "; ".join(problems), source=scenario.source)
    venues = tuple(
        MappedVenue(venue_id=v.venue_id, name=v.name, lit=v.lit,
                    book_type=v.book_type if v.lit else None,
                    tick_size_ticks=int(simulated[v.venue_id].tick_size_ticks) if v.lit else 1)
        for v in sorted(config.venues, key=lambda v: v.venue_id))
    return VenueMap(venues=venues, symbols=tuple(i.symbol for i in instruments),
                    instrument_ids=tuple(i.instrument_id for i in instruments),
                    price_tick_usd=float(config.price_tick_usd))


def real_time_market(mapping: VenueMap, scenario: Scenario | str | Path = "default", *,
                     seed: int | None = None, start_ns: int) -> Market:
    """Returns a simulated market for ``mapping`` opening at ``start_ns`` (epoch ns): one
    instrument per symbol, events recorded for the feeds, orders, cancels and replaces
    reaching each venue in the order they were sent (as over one FIX session)."""
    has_l2 = any(v.book_type == BookType.L2 for v in mapping.venues)
    return Market(scenario, seed=seed, session_start_ns=int(start_ns),
                  instrument_count=len(mapping.symbols), fifo_order_entry=True,
                  record_events=True, record_feeds=False, record_trades=has_l2,
                  quote_sample_interval_ns=0)
