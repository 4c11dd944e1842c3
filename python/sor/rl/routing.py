"""The routing environment: the C++ backtester stepped one decision at a time, as a Gymnasium
environment (``gymnasium.make("sor/Routing-v0")``).

One episode is one parent order in one simulated market (a scenario and a seed). At each
decision (every ``decision_interval_s``) the observation holds one decision row per action
(``sor.features`` schema: the market and order state plus that action's candidate child), so
an action-value model ``Q(row)`` can score every action; ``info["action_mask"]`` marks the
feasible ones. Action 0 waits; the others send one child of a venue x order type (take,
post-only, midpoint peg), sized to at least an even share of what is left. The reward is minus
the step's implementation shortfall in bps of the parent's arrival notional, fees included;
at the horizon the remainder is swept and charged to the last step, so the return of an
episode is minus its total shortfall (the backtest metric). The same action set runs in the
backtester and the engine as the ``rl`` policy (``cpp/include/sor/rl_policy.hpp``).
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from sor import _core
from sor.backtest.runner import SHIPPED, EpisodeSpec, backtest_spec, shipped_models
from sor.errors import UsageError
from sor.features import FEATURE_SCHEMA


class RoutingEnv(gymnasium.Env):
    """One parent order per episode; see the module documentation."""

    metadata = {"render_modes": []}

    def __init__(self, scenario: str = "default", *, quantity: int = 100_000,
                 horizon_s: float = 300.0, decision_interval_s: float = 5.0,
                 child_shares: float = 2000.0, passive_lifetime_s: float = 10.0,
                 start_offset_s: float = 600.0, side: str | None = None,
                 models: Any = SHIPPED, seed_range: tuple[int, int] = (1, 1_000_000)) -> None:
        self.scenario = scenario
        self.episode_spec = EpisodeSpec(side=side, quantity=quantity, horizon_s=horizon_s,
                                decision_interval_s=decision_interval_s,
                                start_offset_s=start_offset_s, markout_tail_s=0.0)
        self.actions = {"child_shares": float(child_shares),
                        "passive_lifetime_s": float(passive_lifetime_s),
                        "decision_interval_s": float(decision_interval_s)}
        self._models = shipped_models() if models == SHIPPED else models
        if seed_range[0] > seed_range[1]:
            raise UsageError(f"seed_range must be (low, high), got {seed_range}")
        self.seed_range = seed_range
        probe = self._core_for(seed_range[0])
        self.action_count = int(probe.action_count)
        bound = float(np.finfo(np.float32).max)  # rows are finite; their scale is the schema's
        self.observation_space = spaces.Box(-bound, bound, (self.action_count, FEATURE_SCHEMA.size),
                                            dtype=np.float32)
        self.action_space = spaces.Discrete(self.action_count)
        self._core: Any = None
        self.market_seed: int | None = None
        self._mask = np.zeros(self.action_count, dtype=bool)

    def _core_for(self, market_seed: int) -> Any:
        core_spec, _, _, _ = backtest_spec(self.scenario, market_seed, self.episode_spec)
        return _core.RlEnvironmentCore(core_spec, self.actions, self._models)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Starts a new parent; ``options={"market_seed": N}`` picks the market, otherwise it
        is drawn from ``seed_range`` with the environment's generator."""
        super().reset(seed=seed)
        options = options or {}
        if "market_seed" in options:
            market_seed = int(options["market_seed"])
        else:
            market_seed = int(self.np_random.integers(self.seed_range[0], self.seed_range[1] + 1))
        self.market_seed = market_seed
        self._core = self._core_for(market_seed)
        rows, feasible = self._core.reset()
        self._mask = np.asarray(feasible, dtype=bool)
        return rows, {"action_mask": self._mask.copy(), "market_seed": market_seed}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Acts; an infeasible action waits. Returns (rows, reward_bps, terminated, False,
        info with the action mask, and the episode's result when it ended)."""
        if self._core is None:
            raise UsageError("call reset() before step()")
        index = int(action)
        if not 0 <= index < self.action_count:
            raise UsageError(f"action must be in [0, {self.action_count}), got {action!r}")
        invalid = not self._mask[index]
        rows, feasible, reward, done = self._core.step(index)
        self._mask = np.asarray(feasible, dtype=bool)
        info: dict[str, Any] = {"action_mask": self._mask.copy(), "invalid_action": invalid}
        if done:
            info["result"] = self._core.result()
        return rows, float(reward), bool(done), False, info

