"""Vectorised execution environments: ``make_vector_env`` builds Gymnasium's own
``SyncVectorEnv`` or ``AsyncVectorEnv`` of ``ExecutionEnv``; ``VectorExecutionEnv`` is the
native one, which steps its environments in one process and, with ``threads > 1``, in a thread
pool (the simulator releases the GIL while it runs, so the markets advance in parallel).

All of them autoreset in Gymnasium's default "next step" mode: the step after an episode ended
resets that environment and returns its first observation with reward 0. The native one also
returns ``info`` as arrays (one row per environment, with Gymnasium's ``_name`` masks) and
offers ``action_masks()`` of shape (num_envs, actions)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from sor.errors import UsageError
from sor.rl.env import ExecutionEnv, ExecutionEnvConfig


def _factory(config: ExecutionEnvConfig) -> Any:
    def make() -> ExecutionEnv:
        return ExecutionEnv(config)
    return make


def make_vector_env(num_envs: int, config: ExecutionEnvConfig | None = None, *,
                    vectorization_mode: str = "sync", **config_overrides: Any) -> VectorEnv:
    """Returns ``num_envs`` ExecutionEnvs as a Gymnasium vector env: ``"sync"``
    (SyncVectorEnv), ``"async"`` (AsyncVectorEnv, one process each) or ``"native"``
    (VectorExecutionEnv). Keywords replace fields of ``config``."""
    if num_envs < 1:
        raise UsageError(f"num_envs must be at least 1, got {num_envs}")
    base = config if config is not None else ExecutionEnvConfig()
    if config_overrides:
        base = ExecutionEnvConfig(**{**base.__dict__, **config_overrides})
    if vectorization_mode == "sync":
        return gymnasium.vector.SyncVectorEnv([_factory(base) for _ in range(num_envs)])
    if vectorization_mode == "async":
        return gymnasium.vector.AsyncVectorEnv([_factory(base) for _ in range(num_envs)])
    if vectorization_mode == "native":
        return VectorExecutionEnv(num_envs, base)
    raise UsageError(f"vectorization_mode must be 'sync', 'async' or 'native', "
                     f"got {vectorization_mode!r}")


class VectorExecutionEnv(VectorEnv):
    """``num_envs`` ExecutionEnvs stepped together in this process (in a pool of ``threads``
    threads when ``threads > 1``). ``reset(seed=s)`` seeds environment i with ``s + i``, as
    Gymnasium's vector envs do, so it matches a SyncVectorEnv step for step."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int, config: ExecutionEnvConfig | None = None, *,
                 threads: int = 0, **config_overrides: Any) -> None:
        if num_envs < 1:
            raise UsageError(f"num_envs must be at least 1, got {num_envs}")
        base = config if config is not None else ExecutionEnvConfig()
        if config_overrides:
            base = ExecutionEnvConfig(**{**base.__dict__, **config_overrides})
        self.envs = [ExecutionEnv(base) for _ in range(num_envs)]
        self.num_envs = num_envs
        first = self.envs[0]
        self.schema = first.schema
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(first.observation_space, num_envs)
        self.action_space = batch_space(first.action_space, num_envs)
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self._observations = np.zeros((num_envs,) + first.observation_space.shape, np.float32)
        self._rewards = np.zeros(num_envs, np.float64)
        self._terminated = np.zeros(num_envs, bool)
        self._truncated = np.zeros(num_envs, bool)
        self._needs_reset = np.zeros(num_envs, bool)
        self._infos: list[dict[str, Any]] = [{} for _ in range(num_envs)]

    def _map(self, function: Any, items: Sequence[Any]) -> list[Any]:
        if self._pool is None:
            return [function(item) for item in items]
        return list(self._pool.map(function, items))

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Resets every environment; returns the stacked observations and infos."""
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise UsageError(f"expected {self.num_envs} seeds, got {len(seeds)}")

        def reset_one(i: int) -> None:
            observation, info = self.envs[i].reset(seed=seeds[i], options=options)
            self._observations[i] = observation
            self._infos[i] = info

        self._map(reset_one, range(self.num_envs))
        self._needs_reset[:] = False
        return self._observations.copy(), self._stack_infos()

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                          dict[str, Any]]:
        """Steps every environment with its action (resetting those whose episode ended on
        the previous step); returns stacked observations, rewards, terminated, truncated,
        infos."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise UsageError(f"expected actions of shape ({self.num_envs},), got {actions.shape}")

        def step_one(i: int) -> None:
            env = self.envs[i]
            if self._needs_reset[i]:
                observation, info = env.reset()
                reward, terminated, truncated = 0.0, False, False
            else:
                observation, reward, terminated, truncated, info = env.step(int(actions[i]))
            self._observations[i] = observation
            self._rewards[i] = reward
            self._terminated[i] = terminated
            self._truncated[i] = truncated
            self._infos[i] = info

        self._map(step_one, range(self.num_envs))
        self._needs_reset[:] = self._terminated | self._truncated
        return (self._observations.copy(), self._rewards.copy(), self._terminated.copy(),
                self._truncated.copy(), self._stack_infos())

    def action_masks(self) -> np.ndarray:
        """Returns the valid-action masks, shape (num_envs, actions), 1 = valid."""
        return np.stack([env.action_masks() for env in self.envs])

    def close_extras(self, **kwargs: Any) -> None:
        """Closes every environment and the thread pool."""
        for env in self.envs:
            env.close()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _stack_infos(self) -> dict[str, Any]:
        stacked: dict[str, Any] = {}
        present = np.ones(self.num_envs, bool)
        for key in self._infos[0]:
            stacked[key] = np.array([info[key] for info in self._infos])
            stacked[f"_{key}"] = present.copy()
        return stacked
