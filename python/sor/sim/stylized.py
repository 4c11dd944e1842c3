"""Stylized facts of a simulated market, measured on plain numpy arrays.

The simulator is judged by the statistics real equity markets show (see docs/sim-validation.md
for each estimator, band and reference): heavy-tailed returns, volatility clustering, spread and
depth distributions of a large-tick liquid stock, queue depletion, and the square-root law of
metaorder impact. Every function here works on arrays, so it can equally be pointed at replayed
market data.

Inputs:

* quote samples, :data:`QUOTE_SAMPLE_DTYPE`, one record per tick of a regular clock: the NBBO
  prices (int64 ticks) and the shares at them (int64). A side with zero shares is empty; such
  samples are one-sided and are left out of spread and mid-price statistics.
* depth, two int64 arrays ``bid_depth`` and ``ask_depth`` of shape ``(samples, levels)``:
  column ``k`` holds the shares resting ``k`` ticks away from that side's best price (column 0
  is the best queue; a price with nothing resting counts as 0 shares).
* trades, ``sor._core.sim_trade_dtype`` records (``aggressor_side`` 0 none, 1 buy, 2 sell).
* metaorders, :data:`METAORDER_DTYPE`, one record per metaorder of an impact experiment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sor.errors import UsageError

NANOSECONDS_PER_MINUTE = 60_000_000_000

QUOTE_SAMPLE_DTYPE = np.dtype([
    ("ts_ns", "<i8"),            # Sample time, nanoseconds since the epoch (regular clock).
    ("bid_price_ticks", "<i8"),  # Best bid (NBBO).
    ("ask_price_ticks", "<i8"),  # Best ask (NBBO).
    ("bid_quantity", "<i8"),     # Shares at the best bid; 0 when the bid side is empty.
    ("ask_quantity", "<i8"),     # Shares at the best ask; 0 when the ask side is empty.
])
"""One NBBO sample of a regular clock."""

METAORDER_DTYPE = np.dtype([
    ("quantity", "<i8"),                # Q: shares the metaorder executed.
    ("side", "u1"),                     # 1 buy, 2 sell (as sor Side).
    ("market_volume", "<i8"),           # V: shares the market traded over the reference window.
    ("daily_volatility_ticks", "<f8"),  # sigma: daily standard deviation of the mid, in ticks.
    ("impact_ticks", "<f8"),            # Mid move over the execution, times +1 buy / -1 sell.
])
"""One metaorder of an impact experiment. ``impact_ticks`` is signed by side, so a metaorder
that pushed the price the way it traded has a positive impact; single metaorders are noisy and
may well be negative."""


# --- bands and checks -------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """An acceptance interval ``lower <= value <= upper``; ``None`` leaves that end open."""

    lower: float | None = None
    upper: float | None = None

    def contains(self, value: float) -> bool:
        """Returns whether ``value`` lies in the band (NaN never does)."""
        if math.isnan(value):
            return False
        if self.lower is not None and value < self.lower:
            return False
        return not (self.upper is not None and value > self.upper)

    def describe(self) -> str:
        """Returns the band as text, e.g. ``[0.4, 0.7]`` or ``>= 1``."""
        if self.lower is not None and self.upper is not None:
            return f"[{format_number(self.lower)}, {format_number(self.upper)}]"
        if self.lower is not None:
            return f">= {format_number(self.lower)}"
        if self.upper is not None:
            return f"<= {format_number(self.upper)}"
        return "any"


@dataclass(frozen=True)
class Check:
    """One statistic, its band and the verdict. ``band`` is ``None`` for a figure reported for
    information only (its ``passes`` is ``None`` then)."""

    name: str
    description: str
    value: float
    band: Band | None

    @property
    def passes(self) -> bool | None:
        """Returns whether the value lies in its band, or ``None`` without a band."""
        return None if self.band is None else self.band.contains(self.value)

    @property
    def verdict(self) -> str:
        """Returns ``PASS``, ``FAIL`` or ``INFO``."""
        return {True: "PASS", False: "FAIL", None: "INFO"}[self.passes]


def _all_pass(checks: tuple[Check, ...]) -> bool:
    return all(check.passes is not False for check in checks)


@dataclass(frozen=True)
class AcceptanceBands:
    """The bands a simulated large-tick liquid stock must meet; docs/sim-validation.md says why
    each one is what it is."""

    excess_kurtosis: Band = Band(lower=1.0)
    hill_tail_index: Band = Band(lower=2.0, upper=6.0)
    return_autocorrelation_beyond_first_lag_floor: float = 0.1
    absolute_return_autocorrelation_lag_one: Band = Band(lower=0.1)
    absolute_return_far_lag_mean_in_significance_levels: float = 1.0
    spread_one_tick_share: Band = Band(lower=0.5, upper=1.0)
    spread_mean_ticks: Band = Band(lower=1.0, upper=2.0)
    spread_crossed_or_locked_share: Band = Band(upper=0.01)
    one_sided_share: Band = Band(upper=0.01)
    depth_peak_level: Band = Band(lower=1.0)
    depth_best_to_peak_ratio: Band = Band(lower=0.2, upper=1.0)
    depletions_per_minute: Band = Band(lower=0.1, upper=100.0)
    queue_before_depletion_to_mean_queue: Band = Band(lower=0.0, upper=0.75)
    impact_exponent: Band = Band(lower=0.4, upper=0.7)


DEFAULT_BANDS = AcceptanceBands()


class ImpactFitError(UsageError):
    """The square-root impact fit cannot be made: a bin of Q/V has a non-positive mean impact
    (``bin_index``, zero-based from the smallest Q/V) or there is too little data."""

    def __init__(self, message: str, *, bin_index: int | None = None) -> None:
        self.bin_index = bin_index
        super().__init__(message)


# --- input checks and basic series ------------------------------------------------------------


def _require_fields(records: np.ndarray, dtype: np.dtype, what: str) -> None:
    if not isinstance(records, np.ndarray) or records.dtype.names is None:
        raise UsageError(f"{what} must be a numpy structured array with fields {dtype.names}")
    missing = [name for name in dtype.names if name not in records.dtype.names]
    if missing:
        raise UsageError(f"{what} lacks the fields {missing}; expected {dtype.names}")
    if records.ndim != 1:
        raise UsageError(f"{what} must be one-dimensional, got shape {records.shape}")


def _validate_quotes(quotes: np.ndarray, minimum_samples: int = 2) -> None:
    _require_fields(quotes, QUOTE_SAMPLE_DTYPE, "quotes")
    if len(quotes) < minimum_samples:
        raise UsageError(f"quotes has {len(quotes)} samples; at least {minimum_samples} are needed")
    if np.any(np.diff(quotes["ts_ns"]) <= 0):
        raise UsageError("quotes ts_ns must be strictly increasing")


def _two_sided(quotes: np.ndarray) -> np.ndarray:
    return (quotes["bid_quantity"] > 0) & (quotes["ask_quantity"] > 0)


def sample_interval_ns(quotes: np.ndarray) -> int:
    """Returns the clock period of a quote series; raises :class:`UsageError` unless every
    sample follows the previous one by the same number of nanoseconds."""
    _validate_quotes(quotes)
    gaps = np.diff(quotes["ts_ns"])
    if np.any(gaps != gaps[0]):
        raise UsageError(f"quotes are not on a regular clock: gaps range from {int(gaps.min())} "
                         f"to {int(gaps.max())} ns")
    return int(gaps[0])


def mid_price_ticks(quotes: np.ndarray) -> np.ndarray:
    """Returns the mid price in ticks (float64, half-ticks possible) of every sample. A
    one-sided sample carries the last two-sided mid forward; samples before the first two-sided
    one are NaN."""
    _validate_quotes(quotes, minimum_samples=1)
    two_sided = _two_sided(quotes)
    mid = np.full(len(quotes), np.nan)
    mid[two_sided] = (quotes["bid_price_ticks"][two_sided]
                      + quotes["ask_price_ticks"][two_sided]) / 2.0
    last_valid = np.maximum.accumulate(np.where(two_sided, np.arange(len(quotes)), -1))
    filled = np.where(last_valid >= 0, mid[np.maximum(last_valid, 0)], np.nan)
    return filled


def mid_log_returns(quotes: np.ndarray, horizon_ns: int) -> np.ndarray:
    """Returns the non-overlapping log returns of the mid price over ``horizon_ns`` (a whole
    multiple of the clock period), skipping the leading samples that have no mid yet."""
    interval_ns = sample_interval_ns(quotes)
    if horizon_ns <= 0 or horizon_ns % interval_ns:
        raise UsageError(f"horizon_ns={horizon_ns} must be a positive multiple of the quote "
                         f"sample interval ({interval_ns} ns)")
    mid = mid_price_ticks(quotes)
    mid = mid[~np.isnan(mid)]
    if np.any(mid <= 0):
        raise UsageError("mid price must be positive to take logarithms")
    step = horizon_ns // interval_ns
    sampled = mid[::step]
    if len(sampled) < 2:
        raise UsageError(f"quotes span less than one horizon of {horizon_ns} ns")
    return np.diff(np.log(sampled))


def _returns_array(returns: np.ndarray, minimum: int, what: str = "returns") -> np.ndarray:
    values = np.asarray(returns, dtype=np.float64)
    if values.ndim != 1:
        raise UsageError(f"{what} must be one-dimensional, got shape {values.shape}")
    if len(values) < minimum:
        raise UsageError(f"{what} has {len(values)} values; at least {minimum} are needed")
    if not np.all(np.isfinite(values)):
        raise UsageError(f"{what} contains NaN or infinite values")
    if np.all(values == values[0]):
        raise UsageError(f"{what} are constant (zero variance): the price never moved over the "
                         "horizon, so no distribution statistic is defined")
    return values


# --- heavy tails ------------------------------------------------------------------------------


def excess_kurtosis(returns: np.ndarray) -> float:
    """Returns the sample excess kurtosis ``m4 / m2**2 - 3`` (0 for a Gaussian)."""
    values = _returns_array(returns, minimum=4)
    centred = values - values.mean()
    second = np.mean(centred ** 2)
    return float(np.mean(centred ** 4) / second ** 2 - 3.0)


@dataclass(frozen=True)
class HillEstimate:
    """Hill's estimate of the tail index alpha of ``|returns|`` from its ``tail_count`` largest
    values above ``threshold``; ``standard_error`` is the asymptotic ``alpha / sqrt(k)``."""

    tail_index: float
    standard_error: float
    tail_count: int
    threshold: float


def hill_tail_index(values: np.ndarray, tail_fraction: float = 0.025, *,
                    minimum_tail_count: int = 10) -> HillEstimate:
    """Returns Hill's (1975) estimator of the tail index of ``|values|`` over the largest
    ``tail_fraction`` of them: ``1 / mean(log(x_(i) / x_(k+1)))`` for the ``k`` largest."""
    if not 0.0 < tail_fraction < 0.5:
        raise UsageError(f"tail_fraction={tail_fraction} must lie in (0, 0.5)")
    magnitudes = np.abs(_returns_array(values, minimum=2, what="values"))
    tail_count = int(tail_fraction * len(magnitudes))
    if tail_count < minimum_tail_count:
        raise UsageError(f"a tail fraction of {tail_fraction} of {len(magnitudes)} values keeps "
                         f"{tail_count} in the tail; at least {minimum_tail_count} are needed "
                         "(use more data or a larger fraction)")
    ordered = np.sort(magnitudes)[::-1]
    threshold = float(ordered[tail_count])
    if threshold <= 0.0:
        raise UsageError(f"the {tail_count + 1}-th largest |value| is 0 (too many zero returns "
                         "for this tail fraction); use a longer horizon or a smaller fraction")
    mean_log_excess = float(np.mean(np.log(ordered[:tail_count] / threshold)))
    if mean_log_excess <= 0.0:
        raise UsageError("the largest values are all equal; the Hill estimator is undefined")
    tail_index = 1.0 / mean_log_excess
    return HillEstimate(tail_index=tail_index, standard_error=tail_index / math.sqrt(tail_count),
                        tail_count=tail_count, threshold=threshold)


@dataclass(frozen=True)
class StudentTFit:
    """Maximum-likelihood Student-t fit: ``degrees_of_freedom`` (capped at the search bound),
    ``location`` and ``scale`` in the units of the data."""

    degrees_of_freedom: float
    location: float
    scale: float
    log_likelihood: float


def _student_t_given_dof(values: np.ndarray, dof: float,
                         iterations: int) -> tuple[float, float, float]:
    location = float(np.median(values))
    scale = float(np.std(values)) or 1.0
    for _ in range(iterations):  # EM for location and scale with the dof fixed
        standardized_square = ((values - location) / scale) ** 2
        weights = (dof + 1.0) / (dof + standardized_square)
        location = float(np.sum(weights * values) / np.sum(weights))
        scale = math.sqrt(float(np.mean(weights * (values - location) ** 2)))
    log_likelihood = len(values) * (math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)
                                    - 0.5 * math.log(dof * math.pi) - math.log(scale))
    standardized_square = ((values - location) / scale) ** 2
    log_likelihood -= (dof + 1) / 2 * float(np.sum(np.log1p(standardized_square / dof)))
    return location, scale, log_likelihood


def fit_student_t(returns: np.ndarray, *, maximum_degrees_of_freedom: float = 100.0,
                  grid_points: int = 48, iterations: int = 40) -> StudentTFit:
    """Returns the maximum-likelihood Student-t fit, profiling the likelihood over a
    log-spaced grid of degrees of freedom in ``[1, maximum_degrees_of_freedom]``."""
    values = _returns_array(returns, minimum=10)
    best: StudentTFit | None = None
    for dof in np.geomspace(1.0, maximum_degrees_of_freedom, grid_points):
        location, scale, log_likelihood = _student_t_given_dof(values, float(dof), iterations)
        if best is None or log_likelihood > best.log_likelihood:
            best = StudentTFit(float(dof), location, scale, log_likelihood)
    assert best is not None
    return best


@dataclass(frozen=True)
class HeavyTails:
    """Heavy-tail figures of a return series and their checks."""

    return_count: int
    excess_kurtosis: float
    hill: HillEstimate
    student_t: StudentTFit
    checks: tuple[Check, ...]

    @property
    def passes(self) -> bool:
        """Returns whether every banded check passes."""
        return _all_pass(self.checks)


def heavy_tails(returns: np.ndarray, *, tail_fraction: float = 0.025,
                bands: AcceptanceBands = DEFAULT_BANDS) -> HeavyTails:
    """Returns the excess kurtosis, the Hill tail index of ``|returns|`` and a Student-t fit,
    judged against ``bands`` (excess kurtosis and Hill index; the t fit is informative)."""
    values = _returns_array(returns, minimum=20)
    kurtosis = excess_kurtosis(values)
    hill = hill_tail_index(values, tail_fraction)
    student_t = fit_student_t(values)
    checks = (
        Check("excess_kurtosis", "excess kurtosis of returns (0 for a Gaussian)", kurtosis,
              bands.excess_kurtosis),
        Check("hill_tail_index", f"Hill tail index of |returns|, top {tail_fraction:.1%} "
              f"(k={hill.tail_count})", hill.tail_index, bands.hill_tail_index),
        Check("student_t_degrees_of_freedom", "Student-t maximum-likelihood degrees of freedom",
              student_t.degrees_of_freedom, None),
    )
    return HeavyTails(len(values), kurtosis, hill, student_t, checks)


# --- volatility clustering --------------------------------------------------------------------


def autocorrelation(values: np.ndarray, maximum_lag: int) -> np.ndarray:
    """Returns the sample autocorrelation at lags ``0..maximum_lag`` (lag 0 is 1), with the
    usual biased estimator ``sum((x_t - m)(x_{t+k} - m)) / sum((x_t - m)**2)``."""
    series = _returns_array(values, minimum=2, what="values")
    if not 1 <= maximum_lag < len(series):
        raise UsageError(f"maximum_lag={maximum_lag} must lie in [1, {len(series) - 1}]")
    centred = series - series.mean()
    denominator = float(np.dot(centred, centred))
    return np.array([1.0] + [float(np.dot(centred[:-lag], centred[lag:])) / denominator
                             for lag in range(1, maximum_lag + 1)])


@dataclass(frozen=True)
class VolatilityClustering:
    """Autocorrelations of returns and of their absolute values at lags ``0..maximum_lag``,
    the white-noise significance level ``2/sqrt(n)`` and the checks."""

    return_count: int
    maximum_lag: int
    return_autocorrelation: np.ndarray = field(repr=False)
    absolute_return_autocorrelation: np.ndarray = field(repr=False)
    significance_level: float
    checks: tuple[Check, ...]

    @property
    def passes(self) -> bool:
        """Returns whether every banded check passes."""
        return _all_pass(self.checks)


def volatility_clustering(returns: np.ndarray, *, maximum_lag: int = 20,
                          bands: AcceptanceBands = DEFAULT_BANDS) -> VolatilityClustering:
    """Returns the autocorrelation of returns (should vanish beyond the first lag) and of
    absolute returns (should be positive at lag 1 and still positive, above the white-noise
    level ``2/sqrt(n)`` on average, over the far half of the lags), judged against ``bands``."""
    values = _returns_array(returns, minimum=max(20, 2 * maximum_lag))
    return_acf = autocorrelation(values, maximum_lag)
    absolute_acf = autocorrelation(np.abs(values), maximum_lag) \
        if np.ptp(np.abs(values)) > 0 else np.zeros(maximum_lag + 1)
    significance = 2.0 / math.sqrt(len(values))
    linear_floor = max(bands.return_autocorrelation_beyond_first_lag_floor, 2.0 * significance)
    beyond_first = float(np.max(np.abs(return_acf[2:]))) if maximum_lag >= 2 else 0.0
    significant_share = float(np.mean(absolute_acf[1:] > significance))
    far_first_lag = maximum_lag // 2 + 1
    far_mean = float(np.mean(absolute_acf[far_first_lag:]))
    far_floor = significance * bands.absolute_return_far_lag_mean_in_significance_levels
    checks = (
        Check("return_autocorrelation_lag_1", "autocorrelation of returns at lag 1",
              float(return_acf[1]), None),
        Check("return_autocorrelation_beyond_lag_1",
              f"max |autocorrelation of returns| over lags 2..{maximum_lag}", beyond_first,
              Band(upper=linear_floor)),
        Check("absolute_return_autocorrelation_lag_1",
              "autocorrelation of |returns| at lag 1", float(absolute_acf[1]),
              bands.absolute_return_autocorrelation_lag_one),
        Check("absolute_return_far_lag_mean_autocorrelation",
              f"mean autocorrelation of |returns| over lags {far_first_lag}..{maximum_lag}",
              far_mean, Band(lower=far_floor)),
        Check("absolute_return_significant_lag_share",
              f"share of lags 1..{maximum_lag} where autocorrelation of |returns| > 2/sqrt(n)",
              significant_share, None),
    )
    return VolatilityClustering(len(values), maximum_lag, return_acf, absolute_acf,
                                significance, checks)


# --- spread and depth -------------------------------------------------------------------------


@dataclass(frozen=True)
class SpreadDistribution:
    """Distribution of the NBBO spread in ticks over two-sided samples: ``spread_values`` and
    ``spread_shares`` list each observed spread and the share of samples at it."""

    sample_count: int
    two_sided_count: int
    one_tick_share: float
    mean_ticks: float
    percentiles_ticks: dict[int, float]
    spread_values: np.ndarray = field(repr=False)
    spread_shares: np.ndarray = field(repr=False)
    checks: tuple[Check, ...]

    @property
    def passes(self) -> bool:
        """Returns whether every banded check passes."""
        return _all_pass(self.checks)


def spread_distribution(quotes: np.ndarray, *,
                        bands: AcceptanceBands = DEFAULT_BANDS) -> SpreadDistribution:
    """Returns the share of time the spread is one tick, its mean and percentiles (50, 90, 99),
    the crossed-or-locked and one-sided shares, judged against ``bands``."""
    _validate_quotes(quotes, minimum_samples=1)
    two_sided = _two_sided(quotes)
    if not np.any(two_sided):
        raise UsageError("no quote sample has both a bid and an ask")
    spread = (quotes["ask_price_ticks"] - quotes["bid_price_ticks"])[two_sided]
    values, counts = np.unique(spread, return_counts=True)
    shares = counts / len(spread)
    one_tick = float(np.mean(spread == 1))
    mean = float(np.mean(spread))
    percentiles = {p: float(np.percentile(spread, p)) for p in (50, 90, 99)}
    one_sided_share = 1.0 - float(np.mean(two_sided))
    checks = (
        Check("spread_one_tick_share", "share of two-sided samples with a one-tick spread",
              one_tick, bands.spread_one_tick_share),
        Check("spread_mean_ticks", "mean spread in ticks", mean, bands.spread_mean_ticks),
        Check("spread_p90_ticks", "90th percentile of the spread in ticks", percentiles[90], None),
        Check("spread_crossed_or_locked_share", "share of two-sided samples with spread <= 0",
              float(np.mean(spread <= 0)), bands.spread_crossed_or_locked_share),
        Check("one_sided_share", "share of samples with an empty bid or ask side",
              one_sided_share, bands.one_sided_share),
    )
    return SpreadDistribution(len(quotes), int(two_sided.sum()), one_tick, mean, percentiles,
                              values.astype(np.int64), shares, checks)


@dataclass(frozen=True)
class DepthProfile:
    """Mean shares resting ``k`` ticks from the best, per side and averaged over both sides."""

    levels: int
    mean_bid_depth: np.ndarray = field(repr=False)
    mean_ask_depth: np.ndarray = field(repr=False)
    mean_depth: np.ndarray = field(repr=False)
    peak_level: int
    checks: tuple[Check, ...]

    @property
    def passes(self) -> bool:
        """Returns whether every banded check passes."""
        return _all_pass(self.checks)


def depth_profile(bid_depth: np.ndarray, ask_depth: np.ndarray, *,
                  bands: AcceptanceBands = DEFAULT_BANDS) -> DepthProfile:
    """Returns the mean depth by distance from the best and whether its shape is a hump or
    increasing (deepest level beyond the best, best queue not negligible), per ``bands``."""
    bid = np.asarray(bid_depth)
    ask = np.asarray(ask_depth)
    if bid.ndim != 2 or ask.shape != bid.shape:
        raise UsageError(f"bid_depth and ask_depth must be 2-D arrays of one shape (samples, "
                         f"levels); got {bid.shape} and {ask.shape}")
    if bid.shape[0] == 0 or bid.shape[1] < 2:
        raise UsageError(f"depth needs at least one sample and two levels; got shape {bid.shape}")
    if np.any(bid < 0) or np.any(ask < 0):
        raise UsageError("depth quantities must be non-negative")
    mean_bid = bid.mean(axis=0, dtype=np.float64)
    mean_ask = ask.mean(axis=0, dtype=np.float64)
    mean = (mean_bid + mean_ask) / 2.0
    if not np.any(mean > 0):
        raise UsageError("the book is empty at every level of every sample")
    peak = int(np.argmax(mean))
    checks = (
        Check("depth_peak_level", "distance in ticks from the best of the deepest mean level",
              float(peak), bands.depth_peak_level),
        Check("depth_best_to_peak_ratio", "mean best-queue depth / mean depth at the peak",
              float(mean[0] / mean[peak]), bands.depth_best_to_peak_ratio),
        Check("depth_mean_best_queue_shares", "mean shares at the best (both sides)",
              float(mean[0]), None),
    )
    return DepthProfile(bid.shape[1], mean_bid, mean_ask, mean, peak, checks)


# --- queue depletion --------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueDepletion:
    """Best-queue depletions seen in a quote series: a best bid that falls or a best ask that
    rises means the queue at the old best emptied. ``queue_before_depletion`` holds the queue
    size at the last sample before each depletion; ``price_change_durations_ns`` the times
    between successive changes of a best price (both sides pooled)."""

    duration_minutes: float
    depletion_count: int
    depletions_per_minute: float
    queue_before_depletion: np.ndarray = field(repr=False)
    mean_best_queue: float
    price_change_durations_ns: np.ndarray = field(repr=False)
    checks: tuple[Check, ...]

    @property
    def passes(self) -> bool:
        """Returns whether every banded check passes."""
        return _all_pass(self.checks)


def queue_depletion(quotes: np.ndarray, *,
                    bands: AcceptanceBands = DEFAULT_BANDS) -> QueueDepletion:
    """Returns depletion events per minute, the queue sizes right before depletion against the
    mean best queue, and the durations between best-price changes, judged against ``bands``.
    Only consecutive two-sided samples are compared."""
    interval_ns = sample_interval_ns(quotes)
    two_sided = _two_sided(quotes)
    if not np.any(two_sided):
        raise UsageError("no quote sample has both a bid and an ask")
    both = two_sided[:-1] & two_sided[1:]
    bid, ask = quotes["bid_price_ticks"], quotes["ask_price_ticks"]
    bid_depleted = both & (bid[1:] < bid[:-1])
    ask_depleted = both & (ask[1:] > ask[:-1])
    before = np.concatenate([quotes["bid_quantity"][:-1][bid_depleted],
                             quotes["ask_quantity"][:-1][ask_depleted]]).astype(np.int64)
    duration_minutes = (int(quotes["ts_ns"][-1]) - int(quotes["ts_ns"][0])) / NANOSECONDS_PER_MINUTE
    count = int(bid_depleted.sum() + ask_depleted.sum())
    per_minute = count / duration_minutes
    mean_queue = float(np.mean(np.concatenate([quotes["bid_quantity"][two_sided],
                                               quotes["ask_quantity"][two_sided]])))
    durations = []
    for prices in (bid, ask):
        changed = np.flatnonzero(both & (prices[1:] != prices[:-1])) + 1
        durations.append(np.diff(quotes["ts_ns"][changed]))
    price_change_durations = np.sort(np.concatenate(durations)).astype(np.int64)
    ratio = float(np.median(before)) / mean_queue if count and mean_queue > 0 else float("nan")
    mean_duration_s = float(np.mean(price_change_durations)) / 1e9 if len(price_change_durations) \
        else float("nan")
    one_interval_share = float(np.mean(price_change_durations == interval_ns)) \
        if len(price_change_durations) else float("nan")
    checks = (
        Check("depletions_per_minute", "best-queue depletions per minute (both sides)",
              per_minute, bands.depletions_per_minute),
        Check("queue_before_depletion_to_mean_queue",
              "median queue before depletion / mean best queue", ratio,
              bands.queue_before_depletion_to_mean_queue),
        Check("best_price_change_mean_duration_seconds",
              "mean time between changes of a best price, seconds", mean_duration_s, None),
        Check("best_price_change_one_sample_share",
              "share of best-price changes one sample apart (sampling resolution)",
              one_interval_share, None),
    )
    return QueueDepletion(duration_minutes, count, per_minute, before, mean_queue,
                          price_change_durations, checks)


# --- order flow -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeSigns:
    """Autocorrelation of trade signs (+1 buyer-initiated, -1 seller-initiated) at lags
    ``0..maximum_lag``; reported for information (long memory of order flow)."""

    trade_count: int
    trades_per_minute: float
    sign_autocorrelation: np.ndarray = field(repr=False)
    checks: tuple[Check, ...]

    @property
    def passes(self) -> bool:
        """Returns whether every banded check passes (there are none: informative only)."""
        return _all_pass(self.checks)


def trade_signs(trades: np.ndarray, *, maximum_lag: int = 20) -> TradeSigns:
    """Returns the trade-sign autocorrelation of ``sim_trade_dtype`` records in time order,
    leaving out trades without an aggressor side (dark crosses)."""
    if not isinstance(trades, np.ndarray) or trades.dtype.names is None or not {
            "ts_event", "aggressor_side", "quantity"} <= set(trades.dtype.names):
        raise UsageError("trades must be sim_trade_dtype records (ts_event, aggressor_side, ...)")
    ordered = trades[np.argsort(trades["ts_event"], kind="stable")]
    side = ordered["aggressor_side"]
    signs = np.select([side == 1, side == 2], [1.0, -1.0], 0.0)
    signs = signs[signs != 0]
    if len(signs) <= maximum_lag + 1:
        raise UsageError(f"trades has {len(signs)} signed trades; more than {maximum_lag + 1} "
                         "are needed")
    if np.all(signs == signs[0]):
        raise UsageError("every trade has the same aggressor side; sign autocorrelation is "
                         "undefined")
    span_ns = int(ordered["ts_event"][-1]) - int(ordered["ts_event"][0])
    span_minutes = span_ns / NANOSECONDS_PER_MINUTE
    per_minute = len(ordered) / span_minutes if span_minutes > 0 else float("nan")
    acf = autocorrelation(signs, maximum_lag)
    checks = (
        Check("trades_per_minute", "trades per minute (all venues)", per_minute, None),
        Check("trade_sign_autocorrelation_lag_1", "autocorrelation of trade signs at lag 1",
              float(acf[1]), None),
        Check(f"trade_sign_autocorrelation_lag_{maximum_lag}",
              f"autocorrelation of trade signs at lag {maximum_lag}", float(acf[maximum_lag]),
              None),
    )
    return TradeSigns(len(signs), per_minute, acf, checks)


# --- square-root impact -----------------------------------------------------------------------


@dataclass(frozen=True)
class ImpactFit:
    """Fit of ``log(mean(I / sigma)) = log(Y) + delta * log(Q / V)`` over bins of Q/V.

    ``bin_participation`` is the geometric mean of Q/V in each bin, ``bin_mean_normalized_impact``
    the mean of I/sigma, ``bin_standard_error`` its standard error, ``bin_counts`` the
    metaorders per bin. ``exponent_confidence_interval`` is the percentile bootstrap interval
    at ``confidence`` over metaorders (bin edges fixed); ``bootstrap_failures`` counts resamples
    that left a bin empty or non-positive and were dropped.
    """

    exponent: float
    exponent_confidence_interval: tuple[float, float]
    confidence: float
    prefactor: float
    r_squared: float
    metaorder_count: int
    negative_impact_share: float
    bin_participation: np.ndarray = field(repr=False)
    bin_mean_normalized_impact: np.ndarray = field(repr=False)
    bin_standard_error: np.ndarray = field(repr=False)
    bin_counts: np.ndarray = field(repr=False)
    participation: np.ndarray = field(repr=False)
    normalized_impact: np.ndarray = field(repr=False)
    bootstrap_samples: int
    bootstrap_failures: int
    checks: tuple[Check, ...]

    @property
    def passes(self) -> bool:
        """Returns whether every banded check passes."""
        return _all_pass(self.checks)


def _line_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    total = float(np.sum((y - y.mean()) ** 2))
    r_squared = 1.0 - float(np.sum(residual ** 2)) / total if total > 0 else 1.0
    return float(slope), float(intercept), r_squared


def fit_square_root_impact(metaorders: np.ndarray, *, bin_count: int = 10,
                           bootstrap_samples: int = 1000, confidence: float = 0.95,
                           seed: int = 0, bands: AcceptanceBands = DEFAULT_BANDS) -> ImpactFit:
    """Returns the impact exponent delta, its bootstrap interval, the prefactor Y and R² from
    :data:`METAORDER_DTYPE` records. Metaorders are split into ``bin_count`` equal-count bins of
    Q/V; impacts divided by sigma are averaged within each bin first (single impacts are noisy
    and may be negative) and the log of the bin means is fitted by least squares against the
    log of the bins' geometric-mean Q/V. Raises :class:`ImpactFitError` naming the bin when a
    bin mean is not positive."""
    _require_fields(metaorders, METAORDER_DTYPE, "metaorders")
    if bin_count < 3:
        raise ImpactFitError(f"bin_count={bin_count}: at least 3 bins are needed to fit a line")
    if len(metaorders) < 2 * bin_count:
        raise ImpactFitError(f"{len(metaorders)} metaorders for {bin_count} bins; at least "
                             f"{2 * bin_count} are needed")
    quantity = metaorders["quantity"].astype(np.float64)
    volume = metaorders["market_volume"].astype(np.float64)
    sigma = metaorders["daily_volatility_ticks"].astype(np.float64)
    impact = metaorders["impact_ticks"].astype(np.float64)
    if np.any(quantity <= 0) or np.any(volume <= 0):
        raise ImpactFitError("metaorder quantity and market_volume must be positive")
    if not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
        raise ImpactFitError("daily_volatility_ticks must be positive and finite")
    if not np.all(np.isfinite(impact)):
        raise ImpactFitError("impact_ticks contains NaN or infinite values")
    if not np.all(np.isin(metaorders["side"], (1, 2))):
        raise ImpactFitError("metaorder side must be 1 (buy) or 2 (sell)")
    participation = quantity / volume
    normalized = impact / sigma
    log_participation = np.log(participation)
    order = np.argsort(participation, kind="stable")
    bin_of = np.empty(len(order), dtype=np.int64)
    bin_of[order] = np.arange(len(order)) * bin_count // len(order)
    counts = np.bincount(bin_of, minlength=bin_count)
    x = np.bincount(bin_of, weights=log_participation, minlength=bin_count) / counts
    means = np.bincount(bin_of, weights=normalized, minlength=bin_count) / counts
    for index in range(bin_count):
        if means[index] <= 0:
            members = participation[bin_of == index]
            raise ImpactFitError(
                f"bin {index} (Q/V from {members.min():.3g} to {members.max():.3g}, "
                f"{counts[index]} metaorders) has mean impact/sigma {means[index]:.3g} <= 0; "
                "its log is undefined: use more metaorders or fewer bins", bin_index=index)
    squares = np.bincount(bin_of, weights=normalized ** 2, minlength=bin_count) / counts
    population_variance = np.maximum(squares - means ** 2, 0.0)
    standard_error = np.sqrt(population_variance / np.maximum(counts - 1, 1))
    exponent, intercept, r_squared = _line_fit(x, np.log(means))

    rng = np.random.default_rng(seed)
    exponents = []
    failures = 0
    for _ in range(bootstrap_samples):
        pick = rng.integers(0, len(order), len(order))
        picked_bins = bin_of[pick]
        sample_counts = np.bincount(picked_bins, minlength=bin_count)
        if np.any(sample_counts == 0):
            failures += 1
            continue
        sample_means = np.bincount(picked_bins, weights=normalized[pick], minlength=bin_count)
        if np.any(sample_means <= 0):
            failures += 1
            continue
        sample_x = np.bincount(picked_bins, weights=log_participation[pick], minlength=bin_count)
        sample_fit = _line_fit(sample_x / sample_counts, np.log(sample_means / sample_counts))
        exponents.append(sample_fit[0])
    if bootstrap_samples and len(exponents) < bootstrap_samples / 2:
        raise ImpactFitError(f"{failures} of {bootstrap_samples} bootstrap resamples had a "
                             "non-positive bin mean; the fit is too fragile (use more metaorders "
                             "or fewer bins)")
    if exponents:
        tail = (1.0 - confidence) / 2.0 * 100.0
        low, high = np.percentile(exponents, [tail, 100.0 - tail])
        interval = (float(low), float(high))
    else:
        interval = (float("nan"), float("nan"))
    checks = (
        Check("impact_exponent", "fitted delta in I = Y sigma (Q/V)^delta", exponent,
              bands.impact_exponent),
        Check("impact_exponent_ci_low", f"{confidence:.0%} bootstrap interval, low end",
              interval[0], None),
        Check("impact_exponent_ci_high", f"{confidence:.0%} bootstrap interval, high end",
              interval[1], None),
        Check("impact_prefactor", "prefactor Y", math.exp(intercept), None),
        Check("impact_fit_r_squared", "R² of the log-log fit over bins", r_squared, None),
    )
    return ImpactFit(exponent, interval, confidence, math.exp(intercept), r_squared,
                     len(metaorders), float(np.mean(impact < 0)), np.exp(x), means,
                     standard_error, counts, participation, normalized, bootstrap_samples,
                     failures, checks)


# --- everything at once -----------------------------------------------------------------------


@dataclass(frozen=True)
class StylizedFacts:
    """Every stylized-fact summary of one simulation run. ``impact`` and ``trade_signs`` are
    ``None`` when those inputs were not given."""

    return_horizon_ns: int
    returns: np.ndarray = field(repr=False)
    heavy_tails: HeavyTails
    volatility_clustering: VolatilityClustering
    spread: SpreadDistribution
    depth: DepthProfile
    queue_depletion: QueueDepletion
    trade_signs: TradeSigns | None
    impact: ImpactFit | None

    @property
    def sections(self) -> tuple[tuple[str, object], ...]:
        """Returns ``(title, summary)`` pairs of the summaries present, in report order."""
        pairs = [("Heavy tails", self.heavy_tails),
                 ("Volatility clustering", self.volatility_clustering),
                 ("Spread", self.spread), ("Depth profile", self.depth),
                 ("Queue depletion", self.queue_depletion),
                 ("Order flow", self.trade_signs), ("Square-root impact", self.impact)]
        return tuple((title, summary) for title, summary in pairs if summary is not None)

    @property
    def checks(self) -> tuple[Check, ...]:
        """Returns every check of every summary."""
        return tuple(check for _, summary in self.sections for check in summary.checks)

    @property
    def passes(self) -> bool:
        """Returns whether every banded check passes."""
        return _all_pass(self.checks)


def stylized_facts(quotes: np.ndarray, bid_depth: np.ndarray, ask_depth: np.ndarray, *,
                   trades: np.ndarray | None = None, metaorders: np.ndarray | None = None,
                   return_horizon_ns: int = NANOSECONDS_PER_MINUTE, tail_fraction: float = 0.025,
                   maximum_lag: int = 20, impact_bin_count: int = 10,
                   bootstrap_samples: int = 1000, seed: int = 0,
                   bands: AcceptanceBands = DEFAULT_BANDS) -> StylizedFacts:
    """Returns every stylized-fact summary of a run: returns are mid log returns over
    ``return_horizon_ns`` (one minute by default)."""
    returns = mid_log_returns(quotes, return_horizon_ns)
    return StylizedFacts(
        return_horizon_ns=return_horizon_ns,
        returns=returns,
        heavy_tails=heavy_tails(returns, tail_fraction=tail_fraction, bands=bands),
        volatility_clustering=volatility_clustering(returns, maximum_lag=maximum_lag, bands=bands),
        spread=spread_distribution(quotes, bands=bands),
        depth=depth_profile(bid_depth, ask_depth, bands=bands),
        queue_depletion=queue_depletion(quotes, bands=bands),
        trade_signs=None if trades is None else trade_signs(trades, maximum_lag=maximum_lag),
        impact=None if metaorders is None else fit_square_root_impact(
            metaorders, bin_count=impact_bin_count, bootstrap_samples=bootstrap_samples,
            seed=seed, bands=bands),
    )


def format_number(value: float) -> str:
    """Returns a number as short, deterministic text (4 significant digits)."""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if math.isnan(value):
        return "nan"
    if value == int(value) and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4g}"


