"""sor.rl vector environments: Gymnasium's Sync and Async vector envs over ExecutionEnv, and the
native VectorExecutionEnv against SyncVectorEnv as its reference."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from sor.errors import UsageError
from sor.rl import ENV_ID, WAIT, ExecutionEnvConfig, VectorExecutionEnv, make_vector_env

CONFIG = ExecutionEnvConfig(horizon_range_s=(10.0, 25.0), warm_up_range_s=(2.0, 4.0),
                            parent_quantity_range_shares=(1_000, 6_000))


def play(vector_env, steps: int, seed: int = 0):
    """Steps with random valid actions; returns observations, rewards, dones, shortfalls."""
    rng = np.random.default_rng(seed)
    observations, info = vector_env.reset(seed=seed)
    seen, rewards, dones, shortfalls = [observations], [], [], []
    for _ in range(steps):
        actions = np.array([rng.choice(np.flatnonzero(row)) for row in info["action_mask"]])
        observations, reward, terminated, truncated, info = vector_env.step(actions)
        assert not truncated.any()
        seen.append(observations)
        rewards.append(reward)
        dones.append(terminated)
        shortfalls.append(info["shortfall_bps"])
    return np.array(seen), np.array(rewards), np.array(dones), np.array(shortfalls)


def test_sync_vector_env_steps_and_autoresets():
    env = make_vector_env(3, CONFIG, vectorization_mode="sync")
    try:
        observations, rewards, dones, _ = play(env, 14)
    finally:
        env.close()
    assert observations.shape == (15, 3, env.single_observation_space.shape[0])
    assert observations.dtype == np.float32
    assert all(env.observation_space.contains(o) for o in observations)
    assert dones.sum(axis=0).min() >= 1  # Every environment finished at least one parent.
    # Next-step autoreset: the step after a terminal one is a reset, with reward 0.
    after_done = np.zeros_like(dones)
    after_done[1:] = dones[:-1]
    assert np.all(rewards[after_done] == 0.0)


def test_native_vector_env_matches_sync_step_for_step():
    sync = make_vector_env(3, CONFIG, vectorization_mode="sync")
    native = make_vector_env(3, CONFIG, vectorization_mode="native")
    threaded = VectorExecutionEnv(3, CONFIG, threads=2)
    try:
        reference = play(sync, 12, seed=5)
        for candidate in (play(native, 12, seed=5), play(threaded, 12, seed=5)):
            for expected, got in zip(reference, candidate):
                assert np.array_equal(expected, got)
    finally:
        for env in (sync, native, threaded):
            env.close()


def test_native_vector_env_masks_and_info_arrays():
    env = VectorExecutionEnv(2, CONFIG)
    try:
        _, info = env.reset(seed=1)
        assert np.array_equal(env.action_masks(), info["action_mask"])
        assert info["action_mask"].shape == (2, env.single_action_space.n)
        assert info["_shortfall_bps"].all()
        _, _, _, _, info = env.step(np.array([WAIT, WAIT]))
        assert info["step"].tolist() == [1, 1]
        with pytest.raises(UsageError):
            env.step(np.array([WAIT]))
        with pytest.raises(UsageError):
            env.reset(seed=[1])
    finally:
        env.close()


def test_gymnasium_make_vec_and_async_vector_env():
    env = gymnasium.make_vec(ENV_ID, num_envs=2, vectorization_mode="sync",
                             horizon_range_s=(10.0, 10.0), warm_up_range_s=(2.0, 2.0))
    async_env = make_vector_env(2, CONFIG, vectorization_mode="async")
    sync_env = make_vector_env(2, CONFIG, vectorization_mode="sync")
    try:
        observations, _ = env.reset(seed=2)
        assert observations.shape == (2, env.single_observation_space.shape[0])
        env.step(np.array([WAIT, WAIT]))
        expected = play(sync_env, 6, seed=3)
        got = play(async_env, 6, seed=3)
        for a, b in zip(expected, got):
            assert np.array_equal(a, b)
    finally:
        for e in (env, async_env, sync_env):
            e.close()


def test_make_vector_env_refuses_bad_arguments():
    with pytest.raises(UsageError):
        make_vector_env(0, CONFIG)
    with pytest.raises(UsageError, match="vectorization_mode"):
        make_vector_env(2, CONFIG, vectorization_mode="ray")
