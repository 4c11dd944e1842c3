"""Metrics of one backtest episode, and the bootstrap statistics over episodes.

Signs: every cost is in basis points and > 0 is worse for us. ``side`` is +1 for a buy and -1
for a sell. docs/backtest.md gives each formula; the tests check each one against a slow,
obvious loop.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from sor import _core

MARKOUT_HORIZONS_S = (1.0, 10.0, 60.0)
"""Horizons of the fill markouts, seconds."""
DEFAULT_UNFILLED_PENALTY_BPS = 50.0
"""Charge on shares left unfilled at the end, bps of their arrival notional (as the RL env)."""

_ADDED = int(_core.SimLiquidity.ADDED)
_REMOVED = int(_core.SimLiquidity.REMOVED)
_MIDPOINT = int(_core.SimLiquidity.MIDPOINT)
_NS = 1_000_000_000


def _none_if_nan(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# --- per episode ----------------------------------------------------------------------------


def implementation_shortfall(side: int, quantity: int, prices_ticks: np.ndarray,
                             quantities: np.ndarray, fees_usd: float, arrival_mid_ticks: float,
                             end_mid_ticks: float, price_tick_usd: float, *,
                             unfilled_penalty_bps: float = DEFAULT_UNFILLED_PENALTY_BPS,
                             ) -> dict[str, float]:
    """Returns the implementation shortfall against the arrival mid in bps of the arrival
    notional (``quantity * arrival_mid``), fees included, with its parts:

    - ``price_bps``: sum(side * q * (price - arrival_mid)) over the fills;
    - ``fees_bps``: the fees paid (rebates negative);
    - ``unfilled_bps``: shares r left unfilled, charged side * r * (end_mid - arrival_mid)
      plus ``unfilled_penalty_bps`` of their arrival notional;
    - ``is_bps``: their sum."""
    prices = np.asarray(prices_ticks, dtype=np.float64)
    shares = np.asarray(quantities, dtype=np.float64)
    notional_usd = quantity * arrival_mid_ticks * price_tick_usd
    price_usd = float(side * np.sum(shares * (prices - arrival_mid_ticks))) * price_tick_usd
    remaining = quantity - float(shares.sum())
    unfilled_usd = 0.0
    if remaining > 0:
        move = (end_mid_ticks - arrival_mid_ticks) if math.isfinite(end_mid_ticks) else 0.0
        unfilled_usd = (side * remaining * move * price_tick_usd
                        + unfilled_penalty_bps * 1e-4 * remaining * arrival_mid_ticks
                        * price_tick_usd)
    scale = 1e4 / notional_usd
    parts = {"price_bps": price_usd * scale, "fees_bps": fees_usd * scale,
             "unfilled_bps": unfilled_usd * scale}
    parts["is_bps"] = parts["price_bps"] + parts["fees_bps"] + parts["unfilled_bps"]
    return parts


def vwap_slippage_bps(side: int, prices_ticks: np.ndarray, quantities: np.ndarray,
                      market_vwap_ticks: float) -> float:
    """Returns side * (our average price - market VWAP) / market VWAP in bps (> 0: we paid more
    than the market when buying, got less when selling); NaN without fills or market VWAP."""
    shares = np.asarray(quantities, dtype=np.float64)
    if shares.sum() <= 0 or not math.isfinite(market_vwap_ticks) or market_vwap_ticks <= 0:
        return math.nan
    average = float(np.sum(np.asarray(prices_ticks, dtype=np.float64) * shares) / shares.sum())
    return side * (average - market_vwap_ticks) / market_vwap_ticks * 1e4


def mid_at(mids: np.ndarray, ts_ns: np.ndarray | int) -> np.ndarray:
    """Returns the true mid of the latest sample at or before each time (NaN before the first
    sample or when that sample was one-sided)."""
    times = np.asarray(mids["ts_ns"])
    index = np.searchsorted(times, np.asarray(ts_ns, dtype=np.int64), side="right") - 1
    values = np.asarray(mids["mid_ticks"], dtype=np.float64)
    out = np.where(index >= 0, values[np.clip(index, 0, max(len(values) - 1, 0))], np.nan) \
        if len(values) else np.full(np.shape(index), np.nan)
    return out


def markouts_bps(side: int, fills: np.ndarray, mids: np.ndarray,
                 venue_names: Mapping[int, str] | None = None,
                 horizons_s: Sequence[float] = MARKOUT_HORIZONS_S) -> dict[str, dict[str, Any]]:
    """Returns quantity-weighted markouts per venue (and ``"all"``): for a fill at t,
    ``-side * (mid(t + h) - mid(t)) / mid(t)`` in bps, so > 0 means the mid moved against the
    fill (down after a buy, up after a sell: adverse selection). Fills whose mids are unknown
    (one-sided book, after the last sample) are left out; each venue also has ``shares``."""
    names = venue_names or {}
    if len(fills) == 0:
        return {}
    ts = np.asarray(fills["ts_ns"], dtype=np.int64)
    qty = np.asarray(fills["quantity"], dtype=np.float64)
    venue = np.asarray(fills["venue_id"])
    last_sample = int(mids["ts_ns"][-1]) if len(mids) else -1
    mid0 = mid_at(mids, ts)
    out: dict[str, dict[str, Any]] = {}
    groups = [("all", np.ones(len(fills), dtype=bool))]
    for v in sorted(set(venue.tolist())):
        groups.append((names.get(int(v), str(int(v))), venue == v))
    for label, mask in groups:
        entry: dict[str, Any] = {"shares": int(qty[mask].sum())}
        for h in horizons_s:
            later = ts + int(round(h * _NS))
            mid_h = mid_at(mids, later)
            move = -side * (mid_h - mid0) / mid0 * 1e4
            ok = mask & np.isfinite(move) & (later <= last_sample)
            weight = qty[ok].sum()
            entry[f"{h:g}s"] = float(np.sum(move[ok] * qty[ok]) / weight) if weight > 0 else None
        out[label] = entry
    return out


def fill_mix(fills: np.ndarray) -> dict[str, float]:
    """Returns the fractions of the filled shares that were swept at the horizon, taken
    aggressively (liquidity removed, not swept), executed at the midpoint, and passive
    (liquidity added); they sum to 1 (all 0 without fills)."""
    qty = np.asarray(fills["quantity"], dtype=np.float64) if len(fills) else np.zeros(0)
    total = qty.sum()
    if total <= 0:
        return {"passive": 0.0, "midpoint": 0.0, "aggressive": 0.0, "swept": 0.0}
    swept = np.asarray(fills["swept"], dtype=bool)
    liquidity = np.asarray(fills["liquidity"])
    return {
        "passive": float(qty[~swept & (liquidity == _ADDED)].sum() / total),
        "midpoint": float(qty[~swept & (liquidity == _MIDPOINT)].sum() / total),
        "aggressive": float(qty[~swept & (liquidity == _REMOVED)].sum() / total),
        "swept": float(qty[swept].sum() / total),
    }


def episode_metrics(episode: Any, *,
                    unfilled_penalty_bps: float = DEFAULT_UNFILLED_PENALTY_BPS) -> dict[str, Any]:
    """Returns the JSON-ready metrics of one ``runner.Episode`` (None where undefined)."""
    e = episode
    fills = e.fills
    prices = fills["price_ticks"] if len(fills) else np.zeros(0)
    shares = fills["quantity"] if len(fills) else np.zeros(0)
    shortfall = implementation_shortfall(
        e.side, e.quantity, prices, shares, e.fees_usd, e.arrival_mid_ticks, e.end_mid_ticks,
        e.price_tick_usd, unfilled_penalty_bps=unfilled_penalty_bps)
    filled = int(np.sum(shares))
    notional_usd = e.quantity * e.arrival_mid_ticks * e.price_tick_usd
    average = float(np.sum(prices * shares) / filled) if filled else math.nan
    children = e.children
    return {
        "policy": e.policy,
        "params": dict(e.params),
        "scenario": e.scenario,
        "seed": e.seed,
        "side": "buy" if e.side > 0 else "sell",
        "quantity": e.quantity,
        "filled": filled,
        "fill_rate": filled / e.quantity,
        "is_bps": shortfall["is_bps"],
        "is_price_bps": shortfall["price_bps"],
        "is_fees_bps": shortfall["fees_bps"],
        "is_unfilled_bps": shortfall["unfilled_bps"],
        "vwap_slippage_bps": _none_if_nan(vwap_slippage_bps(e.side, prices, shares,
                                                            e.market_vwap_ticks)),
        "participation": filled / (e.market_volume_shares + filled)
        if e.market_volume_shares + filled > 0 else None,
        "fees_usd": e.fees_usd,
        "fees_bps": e.fees_usd / notional_usd * 1e4,
        "fill_mix": fill_mix(fills),
        "markouts_bps": markouts_bps(e.side, fills, e.mids, e.venue_names),
        "arrival_mid_ticks": e.arrival_mid_ticks,
        "end_mid_ticks": _none_if_nan(e.end_mid_ticks),
        "average_price_ticks": _none_if_nan(average),
        "market_vwap_ticks": _none_if_nan(e.market_vwap_ticks),
        "market_volume_shares": e.market_volume_shares,
        "start_ns": e.start_ns,
        "completion_s": (int(fills["ts_ns"].max()) - e.start_ns) / _NS if len(fills) else None,
        "children": int(len(children)),
        "swept_children": int(np.sum(children["swept"])) if len(children) else 0,
        "counters": dict(e.counters),
    }


# --- statistics over episodes ---------------------------------------------------------------


def bootstrap_mean_ci(values: Sequence[float], *, resamples: int = 2000, seed: int = 0,
                      confidence: float = 0.95) -> dict[str, float]:
    """Returns the mean and its percentile bootstrap interval (``resamples`` resamples of the
    values with replacement, drawn from ``numpy.random.default_rng(seed)``)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return {"mean": float(x.mean()), "ci_low": float(low), "ci_high": float(high),
            "n": int(x.size)}


def paired_bootstrap_ci(values: Sequence[float], reference: Sequence[float], *,
                        resamples: int = 2000, seed: int = 0,
                        confidence: float = 0.95) -> dict[str, float]:
    """Returns the mean of the paired differences ``values - reference`` (same seeds, same
    order) and its bootstrap interval (seeds resampled, pairs kept together)."""
    a = np.asarray(values, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    return bootstrap_mean_ci(a - b, resamples=resamples, seed=seed, confidence=confidence)


def bootstrap_regime_average(samples: Sequence[np.ndarray], *, resamples: int = 2000,
                             seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """Returns the average over regimes of each regime's mean, with a bootstrap interval that
    resamples the seeds within every regime independently."""
    arrays = [np.asarray(s, dtype=np.float64) for s in samples if len(s)]
    if not arrays:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    for x in arrays:
        total += x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    averages = total / len(arrays)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(averages, [tail, 100 - tail])
    return {"mean": float(np.mean([x.mean() for x in arrays])), "ci_low": float(low),
            "ci_high": float(high), "n": int(sum(x.size for x in arrays))}


def relative_improvement_ci(candidate: Sequence[np.ndarray], baseline: Sequence[np.ndarray], *,
                            resamples: int = 2000, seed: int = 0,
                            confidence: float = 0.95) -> dict[str, float]:
    """Returns ``(B - C) / |B|`` with B and C the baseline's and the candidate's IS averaged over
    regimes (each regime's mean first), and its paired bootstrap interval: each resample draws
    the same seeds for both policies within every regime."""
    pairs = [(np.asarray(c, dtype=np.float64), np.asarray(b, dtype=np.float64))
             for c, b in zip(candidate, baseline) if len(c)]
    for c, b in pairs:
        if c.shape != b.shape:
            raise ValueError("candidate and baseline must have the same seeds in every regime")
    if not pairs:
        return {"improvement": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    rng = np.random.default_rng(seed)
    sum_c = np.zeros(resamples)
    sum_b = np.zeros(resamples)
    for c, b in pairs:
        index = rng.integers(0, c.size, size=(resamples, c.size))
        sum_c += c[index].mean(axis=1)
        sum_b += b[index].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = (sum_b - sum_c) / np.abs(sum_b)
    mean_b = float(np.mean([b.mean() for _, b in pairs]))
    mean_c = float(np.mean([c.mean() for c, _ in pairs]))
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return {"improvement": (mean_b - mean_c) / abs(mean_b) if mean_b != 0 else math.nan,
            "ci_low": float(low), "ci_high": float(high)}
