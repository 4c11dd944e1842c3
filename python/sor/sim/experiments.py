"""Experiments on the simulator: the metaorder (price impact) experiment and the day run that
feeds the stylized-facts report.

The metaorder experiment runs each seed twice or more: once with no agent (the baseline) and
once per metaorder size. News, informed traders and regimes come from their own random streams,
so the runs of one seed share their exogenous path; the impact of a metaorder is the difference
of the mid with and without it at the end of its execution (common random numbers), which
removes most of the news noise a single run would carry."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sor import _core
from sor.sim.market import Market, OrderType
from sor.sim.scenario import Scenario, load_scenario
from sor.sim.stylized import METAORDER_DTYPE

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class MetaorderExperiment:
    """How to run the metaorder experiment: sizes, seeds, timing and the execution schedule.

    Each metaorder is split into equal marketable IOC children every ``child_interval_s``
    over ``duration_s``, each sent to a venue at the NBBO with a limit ``collar_grid_ticks``
    beyond the touch; buy for even seeds, sell for odd ones."""

    scenario: str = "default"
    sizes_shares: tuple[int, ...] = (16_000, 32_000, 64_000, 128_000, 256_000, 512_000)
    seeds: tuple[int, ...] = tuple(range(1, 13))
    warmup_s: float = 60.0
    duration_s: float = 600.0
    child_interval_s: float = 10.0
    collar_grid_ticks: int = 10
    session_length_s: float = 900.0
    overrides: dict = field(default_factory=dict)


def _mid(market: Market) -> float:
    q = market.nbbo()
    return (int(q["bid_price_ticks"]) + int(q["ask_price_ticks"])) / 2.0


def _new_market(scenario: Scenario, seed: int, experiment: MetaorderExperiment) -> Market:
    return Market(scenario, seed=seed, quote_sample_interval_ns=0,
                  session_length_ns=int(experiment.session_length_s * _NS_PER_S),
                  **experiment.overrides)


def _baseline(scenario: Scenario, seed: int, experiment: MetaorderExperiment) -> tuple[float, float, int]:
    """Returns (mid at start, mid at end, shares traded in the window) with no agent."""
    with _new_market(scenario, seed, experiment) as market:
        market.run_for(experiment.warmup_s)
        market.trades()
        start = _mid(market)
        market.run_for(experiment.duration_s)
        volume = int(market.trades()["quantity"].sum())
        return start, _mid(market), volume


def _execute(scenario: Scenario, seed: int, quantity: int, side: str,
             experiment: MetaorderExperiment) -> tuple[float, int]:
    """Runs one metaorder; returns (mid at the end of execution, shares executed)."""
    with _new_market(scenario, seed, experiment) as market:
        lot = int(market.spec.flow.lot_shares)
        lit = [v for v in market.spec.venues if v.kind == _core.SimVenueKind.LIT]
        grid = {int(v.venue_id): int(v.tick_size_ticks) for v in lit}
        market.run_for(experiment.warmup_s)
        children = max(1, int(experiment.duration_s / experiment.child_interval_s))
        executed = 0
        for n in range(children):
            remaining_children = children - n
            target = quantity - executed
            child = max(lot, int(round(target / remaining_children / lot)) * lot)
            q = market.nbbo()
            mask = int(q["ask_venue_mask"] if side == "buy" else q["bid_venue_mask"])
            venues = [v for v in grid if mask & (1 << v)] or list(grid)
            venue = venues[0]
            touch = int(q["ask_price_ticks"] if side == "buy" else q["bid_price_ticks"])
            if touch > 0 and target > 0:
                collar = experiment.collar_grid_ticks * grid[venue]
                price = touch + collar if side == "buy" else max(touch - collar, grid[venue])
                market.submit(venue, side, min(child, target), price_ticks=price,
                              order_type=OrderType.IOC)
            market.run_for(experiment.child_interval_s)
            reports = market.reports()
            executed += int(reports["quantity"][reports["kind"] == int(_core.SimReportKind.FILL)].sum())
        return _mid(market), executed


def run_metaorder_experiment(experiment: MetaorderExperiment = MetaorderExperiment()) -> np.ndarray:
    """Runs every (seed, size) metaorder with its baseline; returns ``METAORDER_DTYPE`` records
    where V is the baseline market volume over the execution window and sigma the standard
    deviation of the baseline mid change over the window across seeds, scaled to a day."""
    scenario = load_scenario(experiment.scenario)
    rows = []
    baseline_moves = []
    for seed in experiment.seeds:
        side = "buy" if seed % 2 == 0 else "sell"
        sign = 1.0 if side == "buy" else -1.0
        start, end, volume = _baseline(scenario, seed, experiment)
        baseline_moves.append(end - start)
        for quantity in experiment.sizes_shares:
            mid_end, executed = _execute(scenario, seed, quantity, side, experiment)
            rows.append((executed, 1 if side == "buy" else 2, volume, sign * (mid_end - end)))
    window_sigma = float(np.std(baseline_moves, ddof=1)) if len(baseline_moves) > 1 else 0.0
    daily_sigma = window_sigma * np.sqrt(experiment.session_length_s / experiment.duration_s)
    out = np.zeros(len(rows), dtype=METAORDER_DTYPE)
    for n, (executed, side_code, volume, impact) in enumerate(rows):
        out[n] = (executed, side_code, volume, daily_sigma, impact)
    return out


@dataclass(frozen=True)
class DayRecording:
    """What one or more simulated sessions recorded, in the units the stylized-facts analysis
    expects: quote prices in grid ticks of the lit venues, depth by grid ticks from the best."""

    quotes: np.ndarray      # stylized.QUOTE_SAMPLE_DTYPE, prices in grid ticks.
    bid_depth: np.ndarray   # (samples, levels) shares.
    ask_depth: np.ndarray   # (samples, levels) shares.
    trades: np.ndarray      # SIM_TRADE_DTYPE.
    events: int             # Market events generated.
    grid_ticks: int         # Price ticks per grid tick.


def record_days(scenario: str = "default", seeds: tuple[int, ...] = (1,)) -> DayRecording:
    """Runs one session per seed and concatenates what they recorded (sessions are laid end to
    end on the clock so the quote series stays regular)."""
    from sor.sim.stylized import QUOTE_SAMPLE_DTYPE

    quotes, bids, asks, trades = [], [], [], []
    events = 0
    grid = 0
    offset = 0
    for seed in seeds:
        with Market(scenario, seed=seed) as market:
            grid = min(int(v.tick_size_ticks) for v in market.spec.venues
                       if v.kind == _core.SimVenueKind.LIT)
            events += market.run_session()
            q, depth = market.quotes()
            t = market.trades()
            interval = int(market.spec.quote_sample_interval_ns)
            if len(q) == 0:
                raise ValueError(f"scenario {scenario!r} records no quote samples "
                                 "(recording.quote_sample_interval_ns is 0)")
            shaped = np.zeros(len(q), dtype=QUOTE_SAMPLE_DTYPE)
            for name in QUOTE_SAMPLE_DTYPE.names:
                shaped[name] = q[name]
            shaped["ts_ns"] = q["ts_ns"] - q["ts_ns"][0] + offset
            shaped["bid_price_ticks"] = q["bid_price_ticks"] // grid
            shaped["ask_price_ticks"] = -((-q["ask_price_ticks"]) // grid)
            if quotes:
                # Sessions are chained at the previous close, so no overnight gap is a return.
                shift = int(quotes[-1]["bid_price_ticks"][-1]) - int(shaped["bid_price_ticks"][0])
                shaped["bid_price_ticks"] += shift
                shaped["ask_price_ticks"] += shift
            offset = int(shaped["ts_ns"][-1]) + interval
            t = t.copy()
            quotes.append(shaped)
            bids.append(depth[:, 0])
            asks.append(depth[:, 1])
            trades.append(t)
    return DayRecording(np.concatenate(quotes), np.concatenate(bids), np.concatenate(asks),
                        np.concatenate(trades), events, grid)
