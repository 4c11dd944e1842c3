"""sor.rl.ExecutionEnv: Gymnasium's checker, reproducibility, the reward identity, action
decoding, parent completion, observation bounds, the schema, and baseline sanity."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from sor import _core
from sor.errors import ConfigError, UsageError
from sor.rl import (
    ENV_ID,
    WAIT,
    ExecutionEnv,
    ExecutionEnvConfig,
    OrderStyle,
    TwapPolicy,
    WaitPolicy,
    execution_observation_schema,
    run_episode,
)

# Small episodes keep the file fast: 4-8 decisions of 5 s after a few seconds of warm-up.
SMALL = dict(horizon_range_s=(20.0, 40.0), warm_up_range_s=(2.0, 5.0),
             parent_quantity_range_shares=(1_000, 8_000))
IOC = int(_core.SimOrderType.IOC)
POST_ONLY = int(_core.SimOrderType.POST_ONLY)
MIDPOINT_PEG = int(_core.SimOrderType.MIDPOINT_PEG)
REMOVED = int(_core.SimLiquidity.REMOVED)


def small_env(**overrides: object) -> ExecutionEnv:
    return ExecutionEnv(ExecutionEnvConfig(**{**SMALL, **overrides}))


def random_episode(env: ExecutionEnv, seed: int, *, options: dict | None = None):
    """Plays one episode choosing uniformly among the valid actions; returns everything seen."""
    rng = np.random.default_rng(seed)
    observation, info = env.reset(seed=seed, options=options)
    observations, rewards, infos = [observation], [], [info]
    done = False
    while not done:
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        observation, reward, terminated, truncated, info = env.step(action)
        assert truncated is False
        observations.append(observation)
        rewards.append(reward)
        infos.append(info)
        done = terminated
    return observations, rewards, infos


def shortfall_from_fills(env: ExecutionEnv) -> float:
    """Implementation shortfall in bps recomputed from the fill log, independently of the env."""
    fills = env.fills()
    mid = env.arrival_mid2_ticks / 2
    tick_usd = env.market.spec.price_tick_usd
    side = env.episode.side
    cost_usd = (side * (fills["quantity"] * (fills["price_ticks"] - mid)).sum() * tick_usd
                + fills["fee_usd"].sum())
    return cost_usd / (env.episode.parent_quantity * mid * tick_usd) * 1e4


def test_passes_gymnasium_env_checker():
    env = gymnasium.make(ENV_ID, **SMALL)
    try:
        check_env(env.unwrapped)
    finally:
        env.close()


def test_same_seed_gives_identical_episodes():
    first, second = small_env(), small_env()
    for seed in (3, 11):
        obs_a, rewards_a, infos_a = random_episode(first, seed)
        obs_b, rewards_b, infos_b = random_episode(second, seed)
        assert len(obs_a) == len(obs_b)
        for a, b in zip(obs_a, obs_b):
            assert np.array_equal(a, b)
        assert rewards_a == rewards_b
        assert [i["shortfall_bps"] for i in infos_a] == [i["shortfall_bps"] for i in infos_b]
        assert np.array_equal(first.fills(), second.fills())
    other, _, _ = random_episode(second, 12)
    assert not np.array_equal(other[0], obs_a[0])


def test_config_seed_seeds_the_first_reset():
    a = small_env(seed=5)
    b = small_env(seed=5)
    assert a.reset()[1]["parent_quantity"] == b.reset()[1]["parent_quantity"]
    assert a.episode == b.episode


@pytest.mark.parametrize("finish_at_horizon", [True, False])
def test_rewards_sum_to_minus_the_shortfall(finish_at_horizon):
    env = small_env(finish_at_horizon=finish_at_horizon)
    for seed in range(4):
        _, rewards, infos = random_episode(env, seed)
        final = infos[-1]
        assert sum(rewards) == pytest.approx(-final["shortfall_bps"], rel=1e-12, abs=1e-12)
        if final["remaining_quantity"] == 0:
            assert sum(rewards) == pytest.approx(-shortfall_from_fills(env), rel=1e-9, abs=1e-12)
        step_costs = sum(i["step_cost_usd"] for i in infos[1:])
        assert step_costs == pytest.approx(final["shortfall_usd"], rel=1e-12, abs=1e-9)


def test_unfilled_remainder_is_charged_at_the_final_mid_plus_the_penalty():
    env = small_env(finish_at_horizon=False, unfilled_penalty_bps=25.0)
    _, info = env.reset(seed=2, options={"side": "buy", "parent_quantity": 3_000})
    total = 0.0
    done = False
    while not done:
        _, reward, done, _, info = env.step(WAIT)
        total += reward
    assert info["filled_quantity"] == 0 and info["remaining_quantity"] == 3_000
    nbbo = env.market.nbbo()
    final_mid = (int(nbbo["bid_price_ticks"]) + int(nbbo["ask_price_ticks"])) / 2
    arrival = info["arrival_mid_ticks"]
    expected_bps = (final_mid - arrival) / arrival * 1e4 + 25.0
    assert -total == pytest.approx(expected_bps, rel=1e-9, abs=1e-9)


def test_parent_always_completes_when_finishing_at_the_horizon():
    env = small_env()
    for seed in range(6):
        _, _, infos = random_episode(env, seed)
        final = infos[-1]
        assert final["filled_quantity"] == final["parent_quantity"]
        assert final["open_quantity"] == 0 and env.market.open_orders == 0
        assert final["step"] <= final["horizon_steps"]
        assert int(env.fills()["quantity"].sum()) == final["parent_quantity"]
        assert env.market.counters()["book_errors"] == 0
    result = run_episode(env, WaitPolicy(), seed=9, options={"parent_quantity": 50_000})
    assert result.swept_quantity == 50_000 == result.parent_quantity
    assert result.steps == env.episode.horizon_steps


def test_observations_stay_inside_the_box():
    env = small_env(parent_quantity_range_shares=(100, 30_000))
    for seed in range(6):
        observations, _, _ = random_episode(env, seed)
        for observation in observations:
            assert observation.dtype == np.float32
            assert env.observation_space.contains(observation)


def test_step_after_the_end_or_before_reset_is_refused():
    env = small_env()
    with pytest.raises(UsageError):
        env.step(WAIT)
    random_episode(env, 1)
    with pytest.raises(UsageError):
        env.step(WAIT)


def test_actions_round_trip_through_the_encoding():
    env = small_env()
    venues = len(env.venue_names)
    sizes = len(env.config.size_fractions)
    assert env.action_space.n == 1 + venues * len(OrderStyle) * sizes
    assert env.decode_action(WAIT).is_wait
    seen = set()
    for venue in range(venues):
        for style in OrderStyle:
            for bucket in range(sizes):
                action = env.encode_action(venue, style, bucket)
                decoded = env.decode_action(action)
                got = (decoded.venue_index, decoded.style, decoded.size_bucket)
                assert got == (venue, style, bucket)
                seen.add(action)
    assert seen == set(range(1, env.action_space.n))
    with pytest.raises(UsageError):
        env.decode_action(env.action_space.n)


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_actions_decode_to_the_intended_orders(side):
    env = small_env()
    _, info = env.reset(seed=4, options={"side": side, "parent_quantity": 4_000})
    nbbo = env.market.nbbo()
    bid, ask = int(nbbo["bid_price_ticks"]), int(nbbo["ask_price_ticks"])
    far, near = (ask, bid) if side == "buy" else (bid, ask)
    sign = 1 if side == "buy" else -1
    xnas, dark = env.venue_names.index("XNAS"), env.venue_names.index("DARK")
    fractions = env.config.size_fractions
    for bucket, fraction in enumerate(fractions):
        order = env.child_order(env.encode_action(xnas, OrderStyle.TAKE, bucket))
        expected_quantity = min(4_000, max(100, round(fraction * 4_000 / 100) * 100))
        got = (order.venue_id, order.side, order.order_type, order.price_ticks, order.quantity)
        assert got == (0, sign, IOC, far, expected_quantity)
    post = env.child_order(env.encode_action(xnas, OrderStyle.POST, 2))
    assert (post.order_type, post.price_ticks, post.quantity) == (POST_ONLY, near, 1_000)
    dark_take = env.child_order(env.encode_action(dark, OrderStyle.TAKE, 4))
    assert (dark_take.venue_id, dark_take.order_type, dark_take.price_ticks) == (4, IOC, far)
    dark_mid = env.child_order(env.encode_action(dark, OrderStyle.MID, 1))
    assert (dark_mid.order_type, dark_mid.price_ticks, dark_mid.quantity) == (MIDPOINT_PEG, 0, 400)
    mask = info["action_mask"]
    assert mask[WAIT] == 1
    assert not any(mask[env.encode_action(dark, OrderStyle.POST, b)] for b in range(len(fractions)))
    assert all(mask[env.encode_action(xnas, OrderStyle.MID, b)] for b in range(len(fractions)))
    assert env.child_order(env.encode_action(dark, OrderStyle.POST, 0)) is None

    # Sending it: the info names the order, and its fills took liquidity on XNAS within the limit.
    action = env.encode_action(xnas, OrderStyle.TAKE, 4)
    _, _, _, _, info = env.step(action)
    assert (info["order_venue_id"], info["order_type"], info["order_price_ticks"],
            info["order_quantity"]) == (0, IOC, far, 4_000)
    fills = env.fills()
    assert len(fills) > 0
    assert set(fills["venue_id"].tolist()) == {0}
    assert set(fills["liquidity"].tolist()) == {REMOVED}
    assert all(sign * (p - far) <= 0 for p in fills["price_ticks"].tolist())


def test_lit_midpoint_pegs_are_valid_only_when_allowed():
    env = small_env()
    _, info = env.reset(seed=4)
    action = env.encode_action(env.venue_names.index("XNAS"), OrderStyle.MID, 0)
    assert info["action_mask"][action] == 1
    assert env.child_order(action).order_type == MIDPOINT_PEG
    masked = small_env(allow_lit_midpoint_peg=False)
    _, info = masked.reset(seed=4)
    assert info["action_mask"][action] == 0


def test_masked_actions_are_treated_as_wait_and_flagged():
    env = small_env()
    _, info = env.reset(seed=6)
    dark_post = env.encode_action(env.venue_names.index("DARK"), OrderStyle.POST, 0)
    _, _, _, _, info = env.step(dark_post)
    assert info["invalid_action"] is True and info["order_venue_id"] == -1
    _, _, _, _, info = env.step(WAIT)
    assert info["invalid_action"] is False


def test_stale_passive_orders_are_cancelled_and_fill_rates_learned():
    env = small_env(passive_order_lifetime_steps=1, horizon_range_s=(60.0, 60.0))
    observation, info = env.reset(seed=8, options={"side": "buy", "parent_quantity": 5_000})
    xnas = env.venue_names.index("XNAS")
    open_flag = env.schema.index("XNAS.has_open_order")
    fill_rate = env.schema.index("XNAS.fill_rate")
    assert observation[fill_rate] == pytest.approx(0.5)
    # One lot posted at the near touch lives one step: filled or cancelled, it is done by the
    # next decision, and its outcome moves the venue's fill rate away from the 0.5 prior.
    observation, _, _, _, info = env.step(env.encode_action(xnas, OrderStyle.POST, 0))
    assert info["order_type"] == POST_ONLY
    assert info["open_quantity"] == 0 and observation[open_flag] == 0.0
    assert env.market.open_orders == 0
    assert observation[fill_rate] != pytest.approx(0.5)


def test_information_in_the_observation_matches_the_state():
    env = small_env(horizon_range_s=(30.0, 30.0))
    observation, info = env.reset(seed=10, options={"side": "sell", "parent_quantity": 2_000})
    values = env.schema.as_dict(observation)
    assert values["side"] == -1.0
    assert values["time_remaining_fraction"] == 1.0
    assert values["quantity_remaining_fraction"] == 1.0
    assert values["parent_quantity_log10_lots"] == pytest.approx(np.log10(20))
    assert values["DARK.is_dark"] == 1.0 and values["XNAS.is_dark"] == 0.0
    mid_usd = info["arrival_mid_ticks"] * env.market.spec.price_tick_usd
    assert values["XNAS.take_fee_bps"] == pytest.approx(0.0030 / mid_usd * 1e4, rel=1e-6)
    observation, _, _, _, info = env.step(WAIT)
    values = env.schema.as_dict(observation)
    assert values["time_remaining_fraction"] == pytest.approx(5 / 6)
    assert values["schedule_deviation"] == pytest.approx(-1 / 6)


def test_schema_names_bounds_and_hash():
    env = small_env()
    schema = env.schema
    assert len(set(schema.names)) == schema.size == env.observation_space.shape[0]
    assert np.array_equal(schema.low, env.observation_space.low)
    assert np.all(schema.low < schema.high)
    same = execution_observation_schema(env.venue_names, env.config.depth_levels)
    assert same.version_hash == schema.version_hash and len(schema.version_hash) == 16
    deeper = execution_observation_schema(env.venue_names, env.config.depth_levels + 1)
    renamed = execution_observation_schema(("A", "B", "C", "D", "E"), env.config.depth_levels)
    assert len({schema.version_hash, deeper.version_hash, renamed.version_hash}) == 3
    with pytest.raises(UsageError, match="similar"):
        schema.index("XNAS.fill")
    with pytest.raises(UsageError):
        execution_observation_schema(["A", "A"])


def test_bad_configuration_and_options_are_refused():
    with pytest.raises(ConfigError, match="horizon_range_s"):
        ExecutionEnvConfig(horizon_range_s=(10.0, 5.0))
    with pytest.raises(ConfigError, match="size_fractions"):
        ExecutionEnvConfig(size_fractions=(0.0, 1.0))
    with pytest.raises(ConfigError, match="longer than the session"):
        ExecutionEnv(horizon_range_s=(60.0, 30_000.0))
    env = small_env()
    with pytest.raises(UsageError, match="unknown reset option"):
        env.reset(seed=1, options={"quantity": 5})
    with pytest.raises(UsageError, match="side"):
        env.reset(seed=1, options={"side": "long"})


def test_twap_spreads_fills_and_sweeping_costs_more_for_larger_parents():
    env = small_env(horizon_range_s=(60.0, 60.0))
    twap = TwapPolicy(env)
    run_episode(env, twap, seed=1, options={"parent_quantity": 6_000})
    assert len(set(env.fills()["step"].tolist())) >= 6
    # Everything at once: a one-step horizon and the sweep takes the whole parent. Walking
    # deeper into the books costs more, so the shortfall grows with the size, seed by seed.
    small, large = [], []
    for seed in range(3):
        for quantity, out in ((5_000, small), (150_000, large)):
            result = run_episode(env, WaitPolicy(), seed=seed,
                                 options={"parent_quantity": quantity, "horizon_s": 5.0})
            out.append(result.shortfall_bps)
    assert all(s < big for s, big in zip(small, large))
    assert np.mean(large) > 0
