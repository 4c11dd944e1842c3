"""Impossible feature-engine options are refused before anything is built, naming the option."""

from __future__ import annotations

import pytest
from feature_streams import feature_venues

from sor import _core
from sor.config import ConfigError
from sor.features import FeatureConfigError, FeatureEngine, FeatureSettings, GarchParams, build_options


def options(settings: FeatureSettings | None = None, venues=None, **overrides):
    built = build_options(feature_venues() if venues is None else venues, price_tick_usd=0.01,
                          max_instruments=2, settings=settings)
    for key, value in overrides.items():
        setattr(built, key, value)
    return built


def garch(**fields):
    base = dict(omega_bps2=1.0, alpha=0.1, beta=0.8, sample_interval_ns=60_000_000_000)
    return GarchParams(**{**base, **fields})


def dark_only():
    venue = feature_venues()[3]
    return [venue]


def duplicate_ids():
    venues = feature_venues()
    venues[1].venue_id = 0
    return venues


def bad_fee():
    venues = feature_venues()
    venues[2].taker_fee_usd_per_share = 0.5
    return venues


CASES = [
    ("venues", dict(venues=[])),
    ("venues", dict(venues=dark_only())),
    ("venues", dict(venues=duplicate_ids())),
    ("venues", dict(venues=bad_fee())),
    ("flow_bucket_ns", dict(settings=FeatureSettings(flow_bucket_ns=7_000_000))),
    ("flow_bucket_ns", dict(settings=FeatureSettings(flow_bucket_ns=300_000_000))),
    ("vol_sample_interval_ns", dict(settings=FeatureSettings(vol_sample_interval_ns=7_000_000_000))),
    ("vol_sample_interval_ns", dict(settings=FeatureSettings(vol_sample_interval_ns=1_000_000))),
    ("default_adv_shares", dict(settings=FeatureSettings(default_adv_shares=0.0))),
    ("fill_rate_prior", dict(settings=FeatureSettings(fill_rate_prior=1.5))),
    ("fill_rate_prior_weight_orders",
     dict(settings=FeatureSettings(fill_rate_prior_weight_orders=-1.0))),
    ("fill_rate_half_life_orders", dict(settings=FeatureSettings(fill_rate_half_life_orders=0.0))),
    ("latency_ewma_weight", dict(settings=FeatureSettings(latency_ewma_weight=0.0))),
    ("max_instruments", dict(settings=FeatureSettings(max_instruments=1 << 21))),
    ("max_instruments", dict(settings=FeatureSettings(max_instruments=1 << 20))),  # > 1 GiB
    ("garch.alpha", dict(settings=FeatureSettings(garch=garch(alpha=0.5, beta=0.5)))),
    ("garch.beta", dict(settings=FeatureSettings(garch=garch(beta=-0.1)))),
    ("garch.omega_bps2", dict(settings=FeatureSettings(garch=garch(omega_bps2=float("nan"))))),
    ("garch.sample_interval_ns",
     dict(settings=FeatureSettings(garch=garch(sample_interval_ns=1_500_000_000)))),
    ("garch.initial_variance_bps2",
     dict(settings=FeatureSettings(garch=garch(initial_variance_bps2=-1.0)))),
]


@pytest.mark.parametrize("option, arguments", CASES, ids=[f"{o}-{n}" for n, (o, _) in enumerate(CASES)])
def test_bad_options_are_refused_by_name(option, arguments):
    with pytest.raises(FeatureConfigError) as raised:
        options(**arguments)
    assert raised.value.option == option
    assert isinstance(raised.value, ConfigError)


def test_the_core_refuses_options_built_by_hand():
    built = options()
    built.price_tick_usd = 0.0
    assert "price_tick_usd" in _core.validate_feature_options(built)
    with pytest.raises(FeatureConfigError, match="price_tick_usd"):
        FeatureEngine(built)


def test_good_options_report_their_memory():
    built = options()
    assert _core.validate_feature_options(built) == ""
    # 2 instruments x (4 venues + 1) x 600 buckets x 24 bytes dominate
    assert 100_000 < _core.feature_state_bytes(built) < 1_000_000


def test_settings_of_the_wrong_type_are_refused():
    with pytest.raises(FeatureConfigError, match="settings"):
        options(FeatureSettings(flow_bucket_ns="fast"))  # type: ignore[arg-type]
