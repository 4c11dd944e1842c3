"""The routing environment: a Gymnasium environment over the C++ backtester whose episode
return is minus the backtest's implementation shortfall."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from sor.backtest.metrics import implementation_shortfall
from sor.errors import UsageError
from sor.features import FEATURE_SCHEMA
from sor.rl.routing import RoutingEnv

KW = dict(quantity=20_000, horizon_s=60.0, decision_interval_s=5.0, start_offset_s=120.0)


def _play(env, seed, choose):
    rows, info = env.reset(options={"market_seed": seed})
    total, steps = 0.0, 0
    while True:
        action = choose(rows, info["action_mask"])
        rows, reward, terminated, truncated, info = env.step(action)
        total += reward
        steps += 1
        assert not truncated
        if terminated:
            return total, steps, info


def test_the_return_is_minus_the_shortfall_and_episodes_repeat():
    env = RoutingEnv("calm", **KW)
    assert env.observation_space.shape == (env.action_count, FEATURE_SCHEMA.size)
    rng = np.random.default_rng(0)
    pick = lambda rows, mask: int(rng.choice(np.flatnonzero(mask)))  # noqa: E731
    total, steps, info = _play(env, 31, pick)
    result = info["result"]
    assert steps == 12 and result["filled"] == KW["quantity"]
    fills = result["fills"]
    side = 1 if env.episode_spec.side_for(31) == "buy" else -1
    shortfall = implementation_shortfall(
        side, KW["quantity"], fills["price_ticks"], fills["quantity"],
        float(fills["fee_usd"].sum()), result["arrival_mid_ticks"], result["end_mid_ticks"],
        result["price_tick_usd"])
    assert total == pytest.approx(-shortfall["is_bps"], abs=1e-9)
    rng = np.random.default_rng(0)
    again, _, info2 = _play(env, 31, pick)
    assert again == total and info2["result"]["fills"].tolist() == fills.tolist()


def test_masks_and_bad_actions():
    env = RoutingEnv("calm", **KW)
    rows, info = env.reset(options={"market_seed": 32})
    assert info["action_mask"][0]  # waiting is always possible
    assert rows.dtype == np.float32 and np.all(np.isfinite(rows))
    with pytest.raises(UsageError, match="action must be in"):
        env.step(env.action_count)
    total, steps, info = _play(env, 32, lambda rows, mask: 0)  # always wait: all swept
    assert info["result"]["fills"]["swept"].all()


def test_registered_with_gymnasium():
    from gymnasium.utils.env_checker import check_env

    env = gymnasium.make("sor/Routing-v0", scenario="calm", **KW)
    check_env(env.unwrapped, skip_render_check=True)
