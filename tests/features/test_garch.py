"""fit_garch recovers the parameters of a simulated GARCH(1,1) series, refuses data it cannot fit,
and its parameters drive the engine's recursion."""

from __future__ import annotations

import numpy as np
import pytest

from sor.features import GarchFitError, GarchParams, fit_garch, returns_bps, simulate_garch

TRUE = GarchParams(omega_bps2=2.0, alpha=0.1, beta=0.85, sample_interval_ns=60_000_000_000)


def test_fit_recovers_simulated_parameters():
    returns = simulate_garch(TRUE, 4_000, seed=2)
    fitted = fit_garch(returns=returns, sample_interval_s=60.0)
    assert fitted.alpha == pytest.approx(TRUE.alpha, abs=0.04)
    assert fitted.beta == pytest.approx(TRUE.beta, abs=0.06)
    assert fitted.persistence == pytest.approx(TRUE.persistence, abs=0.03)
    assert fitted.unconditional_variance_bps2 == pytest.approx(
        TRUE.unconditional_variance_bps2, rel=0.35)
    assert fitted.sample_interval_ns == 60_000_000_000 and fitted.observations == 4_000
    assert fitted.initial_variance_bps2 == pytest.approx(np.var(returns))
    core = fitted.to_core()
    assert (core.alpha, core.beta, core.sample_interval_ns) == (
        fitted.alpha, fitted.beta, fitted.sample_interval_ns)


def test_fit_from_a_mid_series():
    returns = simulate_garch(TRUE, 600, seed=5)
    mids = 1_000_000.0 * np.exp(np.concatenate([[0.0], np.cumsum(returns)]) / 1e4)
    assert np.allclose(returns_bps(mids), returns)
    fitted = fit_garch(mids, sample_interval_s=60.0)
    assert 0 <= fitted.alpha and 0 <= fitted.beta and fitted.persistence < 1


@pytest.mark.parametrize("arguments, message", [
    (dict(returns=np.ones(50)), "at least 100 returns"),
    (dict(returns=np.zeros(500)), "never moved"),
    (dict(returns=np.full(200, np.nan)), "finite"),
    (dict(mids=np.array([100.0, -1.0, 101.0])), "prices > 0"),
    (dict(), "exactly one"),
    (dict(returns=np.ones(200), sample_interval_s=0.0), "sample_interval_s"),
])
def test_fit_refuses_data_it_cannot_fit(arguments, message):
    mids = arguments.pop("mids", None)
    with pytest.raises(GarchFitError, match=message):
        fit_garch(mids, **arguments)


def test_simulation_needs_a_stationary_process():
    with pytest.raises(GarchFitError, match="< 1"):
        simulate_garch(GarchParams(1.0, 0.5, 0.5, 60_000_000_000), 10)
