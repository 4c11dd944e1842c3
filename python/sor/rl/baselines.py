"""Baseline policies for ``ExecutionEnv``: simple, fixed rules that read the observation by
feature name (through the env's schema) and return an action index. They are sanity checks for
the reward and benchmarks for learned policies, not good execution algorithms.

A policy is called as ``policy(observation, info) -> action`` with what ``reset``/``step``
returned; ``run_episode`` plays one episode with any such callable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from sor.rl.env import WAIT, ExecutionEnv, OrderStyle

Policy = Callable[[np.ndarray, Mapping[str, Any]], int]


@dataclass(frozen=True)
class EpisodeResult:
    """What one episode of a policy came to."""

    total_reward: float       # Sum of the step rewards (minus the shortfall in bps).
    shortfall_bps: float      # The env's implementation shortfall at the end.
    steps: int                # Decision steps taken.
    swept_quantity: int       # Shares the horizon sweep had to take.
    parent_quantity: int      # Shares of the parent order.


def run_episode(env: ExecutionEnv, policy: Policy, *, seed: int | None = None,
                options: Mapping[str, Any] | None = None) -> EpisodeResult:
    """Plays one episode of ``policy`` in ``env`` and returns its result."""
    observation, info = env.reset(seed=seed, options=options)
    total, steps, done = 0.0, 0, False
    while not done:
        observation, reward, terminated, truncated, info = env.step(policy(observation, info))
        total += reward
        steps += 1
        done = terminated or truncated
    return EpisodeResult(total, float(info["shortfall_bps"]), steps, int(info["swept_quantity"]),
                         int(info["parent_quantity"]))


class WaitPolicy:
    """Never sends anything: with ``finish_at_horizon`` the horizon sweep takes the whole
    parent, so over a one-step horizon this is "everything at once"."""

    def __call__(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        """Returns WAIT."""
        return WAIT


class _TakingPolicy:
    def __init__(self, env: ExecutionEnv) -> None:
        self.env = env
        schema = env.schema
        self._dark_index = [schema.index(f"{name}.is_dark") for name in env.venue_names]
        self._touch_index = [schema.index(f"{name}.far_touch_parent_quantity")
                             for name in env.venue_names]
        self._fee_index = [schema.index(f"{name}.take_fee_bps") for name in env.venue_names]
        self._fractions = np.array(env.config.size_fractions)

    def _lit_venues(self, observation: np.ndarray) -> list[int]:
        return [i for i, index in enumerate(self._dark_index) if observation[index] < 0.5]

    def _take(self, venue_index: int, bucket: int, mask: np.ndarray) -> int:
        action = self.env.encode_action(venue_index, OrderStyle.TAKE, bucket)
        return action if mask[action] else WAIT


class TwapPolicy(_TakingPolicy):
    """TWAP-like: every step takes about remaining / steps-left (the nearest size bucket) with
    a marketable IOC on the lit venue with the lowest take fee that shows size at the far
    touch (the larger touch on a tie)."""

    def __call__(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        """Returns the TAKE action of this step's slice, or WAIT when nothing is offered."""
        steps_left = max(1, int(info["horizon_steps"]) - int(info["step"]))
        bucket = int(np.argmin(np.abs(self._fractions - 1.0 / steps_left)))
        offered = [i for i in self._lit_venues(observation)
                   if observation[self._touch_index[i]] > 0]
        if not offered:
            return WAIT
        venue = min(offered, key=lambda i: (observation[self._fee_index[i]],
                                            -observation[self._touch_index[i]]))
        return self._take(venue, bucket, np.asarray(info["action_mask"]))


class ImmediatePolicy(_TakingPolicy):
    """As fast as the touch allows: every step takes all that is not yet filled or working
    with a marketable IOC on the lit venue showing the most at the far touch."""

    def __call__(self, observation: np.ndarray, info: Mapping[str, Any]) -> int:
        """Returns the 100% TAKE action on the deepest far touch."""
        lit = self._lit_venues(observation)
        venue = max(lit, key=lambda i: observation[self._touch_index[i]])
        return self._take(venue, len(self._fractions) - 1, np.asarray(info["action_mask"]))

