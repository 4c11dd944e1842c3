"""GARCH(1,1) fitted offline with the ``arch`` package, for the engine's online recursion.

The engine steps ``variance = omega + alpha * r^2 + beta * variance`` at each boundary of
``sample_interval_ns`` with ``r`` the NBBO mid log return over the interval in bps, and reports
``sqrt(variance)`` as ``vol.garch_bps``. :func:`fit_garch` estimates those parameters from a
mid series (or returns) sampled on the same interval.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from sor import _core
from sor.errors import SorError

MIN_RETURNS = 100
"""Fewest returns fit_garch accepts: below that the likelihood is too flat to say anything."""

_NS_PER_S = 1_000_000_000


class GarchFitError(SorError, ValueError):
    """GARCH parameters could not be estimated (too little data, a constant series, no
    convergence)."""


@dataclass(frozen=True)
class GarchParams:
    """GARCH(1,1) parameters of the mid return per ``sample_interval_ns``, in bps."""

    omega_bps2: float
    alpha: float
    beta: float
    sample_interval_ns: int
    initial_variance_bps2: float = 0.0
    observations: int = 0
    log_likelihood: float | None = None

    @property
    def persistence(self) -> float:
        """Returns alpha + beta (< 1 for a stationary process)."""
        return self.alpha + self.beta

    @property
    def unconditional_variance_bps2(self) -> float:
        """Returns omega / (1 - alpha - beta), the long-run variance (inf when not stationary)."""
        return self.omega_bps2 / (1.0 - self.persistence) if self.persistence < 1 else math.inf

    def to_core(self) -> _core.GarchParams:
        """Returns the core parameter block the engine is built with."""
        core = _core.GarchParams()
        core.omega_bps2 = float(self.omega_bps2)
        core.alpha = float(self.alpha)
        core.beta = float(self.beta)
        core.sample_interval_ns = int(self.sample_interval_ns)
        core.initial_variance_bps2 = float(self.initial_variance_bps2)
        return core


def returns_bps(mids: np.ndarray) -> np.ndarray:
    """Returns the log returns of a positive mid series in bps (one fewer than the mids)."""
    mids = np.asarray(mids, dtype=np.float64)
    if mids.ndim != 1 or np.any(~np.isfinite(mids)) or np.any(mids <= 0):
        raise GarchFitError("mids must be a 1-D series of finite prices > 0")
    return 1e4 * np.diff(np.log(mids))


def fit_garch(mids: np.ndarray | None = None, *, returns: np.ndarray | None = None,
              sample_interval_s: float = 60.0) -> GarchParams:
    """Fits a zero-mean GARCH(1,1) by maximum likelihood (``arch_model(..., mean="Zero",
    vol="GARCH", p=1, q=1)``) to the returns of ``mids`` sampled every ``sample_interval_s``
    (or to ``returns`` in bps, already on that grid). The initial variance is the sample
    variance. Raises GarchFitError with too few returns, a constant series, or no convergence.
    """
    if (mids is None) == (returns is None):
        raise GarchFitError("give exactly one of mids or returns")
    r = returns_bps(mids) if mids is not None else np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or not np.all(np.isfinite(r)):
        raise GarchFitError("returns must be a 1-D series of finite values in bps")
    if r.size < MIN_RETURNS:
        raise GarchFitError(f"need at least {MIN_RETURNS} returns to fit GARCH(1,1), got {r.size}")
    if not np.any(r != 0):
        raise GarchFitError("the returns are all zero: the mid never moved")
    interval_ns = int(round(sample_interval_s * _NS_PER_S))
    if interval_ns <= 0:
        raise GarchFitError(f"sample_interval_s must be > 0, got {sample_interval_s}")

    from arch import arch_model  # imported lazily: arch pulls in scipy and statsmodels

    model = arch_model(r, mean="Zero", vol="GARCH", p=1, q=1, rescale=False)
    with warnings.catch_warnings():
        # A failed optimisation is reported through convergence_flag, checked below.
        warnings.simplefilter("ignore")
        result = model.fit(disp="off", show_warning=False)
    if result.convergence_flag != 0:
        raise GarchFitError(f"the optimiser did not converge (flag {result.convergence_flag}): "
                            "too little or too irregular data")
    params = result.params
    return GarchParams(omega_bps2=float(params["omega"]), alpha=float(params["alpha[1]"]),
                       beta=float(params["beta[1]"]), sample_interval_ns=interval_ns,
                       initial_variance_bps2=float(np.var(r)), observations=int(r.size),
                       log_likelihood=float(result.loglikelihood))


def simulate_garch(params: GarchParams, count: int, *, seed: int = 0) -> np.ndarray:
    """Returns ``count`` returns in bps drawn from the GARCH(1,1) process (normal shocks),
    started at the unconditional variance; for tests and studies."""
    if params.persistence >= 1:
        raise GarchFitError("alpha + beta must be < 1 to simulate a stationary process")
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal(count)
    out = np.empty(count)
    variance = params.unconditional_variance_bps2
    for k in range(count):
        out[k] = math.sqrt(variance) * shocks[k]
        variance = params.omega_bps2 + params.alpha * out[k] ** 2 + params.beta * variance
    return out
