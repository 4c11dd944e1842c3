"""Fitted Q-iteration with gradient-boosted trees over decision rows.

The routing environment (``sor.rl.routing``) describes every action of a decision by its
decision row (``sor.features`` schema: the state plus the candidate child), so one regressor
``Q(row)`` values every action. FQI fits it on logged transitions:

    Q_0(s, a)     = r (or the logged return-to-go G, when the episodes were logged whole)
    Q_{k+1}(s, a) = r + gamma * max_{a' feasible in s'} Q_k(s', a')      (0 after the last step)

with XGBoost (Ernst, Geurts & Wehenkel 2005 used extremely randomised trees; boosted trees
play the same role). Rewards are minus the implementation shortfall of the step in bps of the
parent's arrival notional, fees included, so an episode's return is minus its total shortfall.
The final Q is exported to ONNX like the supervised models and run by the C++ evaluator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

from sor.errors import UsageError


@dataclass(frozen=True)
class FqiSpec:
    """Settings of fitted Q-iteration."""

    iterations: int = 6
    gamma: float = 1.0
    rounds: int = 150
    max_depth: int = 6
    learning_rate: float = 0.1
    subsample: float = 0.8
    min_child_weight: float = 10.0
    threads: int = 2
    random_state: int = 3

    def __post_init__(self) -> None:
        if self.iterations < 1 or not 0 < self.gamma <= 1 or self.rounds < 1:
            raise UsageError(f"invalid FQI spec: {self}")


@dataclass
class Transitions:
    """Logged transitions: the row of the action taken, its reward, the rows and feasibility
    of every action at the next decision, and whether the episode ended."""

    rows: np.ndarray          # float32 [N, F]
    rewards: np.ndarray       # float64 [N]
    next_rows: np.ndarray     # float32 [N, A, F]
    next_feasible: np.ndarray # bool [N, A]
    done: np.ndarray          # bool [N]
    returns_to_go: np.ndarray | None = None  # float64 [N]: sum of rewards from here on

    def __post_init__(self) -> None:
        n = len(self.rows)
        if not (len(self.rewards) == len(self.next_rows) == len(self.next_feasible)
                == len(self.done) == n):
            raise UsageError("transition arrays differ in length")

    @classmethod
    def concatenate(cls, parts: list[Transitions]) -> Transitions:
        """Returns the transitions of ``parts`` one after the other."""
        arrays = [np.concatenate([getattr(p, f) for p in parts])
                  for f in ("rows", "rewards", "next_rows", "next_feasible", "done")]
        returns = (np.concatenate([p.returns_to_go for p in parts])
                   if all(p.returns_to_go is not None for p in parts) else None)
        return cls(*arrays, returns_to_go=returns)


def _fit(x: np.ndarray, y: np.ndarray, spec: FqiSpec) -> Any:
    import xgboost as xgb

    model = xgb.XGBRegressor(n_estimators=spec.rounds, max_depth=spec.max_depth,
                             learning_rate=spec.learning_rate, subsample=spec.subsample,
                             min_child_weight=spec.min_child_weight, tree_method="hist",
                             n_jobs=spec.threads, random_state=spec.random_state)
    model.fit(x, y, verbose=False)
    return model.get_booster()


def max_next_value(booster: Any, data: Transitions) -> np.ndarray:
    """Returns max over the feasible next actions of Q(s', a') (0 where the episode ended or
    nothing is feasible)."""
    n, a, f = data.next_rows.shape
    values = np.asarray(booster.inplace_predict(data.next_rows.reshape(n * a, f)),
                        dtype=np.float64).reshape(n, a)
    values = np.where(data.next_feasible, values, -np.inf)
    best = values.max(axis=1)
    best[~np.isfinite(best)] = 0.0
    best[data.done] = 0.0
    return best


def fitted_q_iteration(data: Transitions, spec: FqiSpec = FqiSpec(),
                       on_iteration: Callable[[int, dict[str, float]], None] | None = None
                       ) -> tuple[Any, list[dict[str, float]]]:
    """Runs FQI; returns the last Q booster and per-iteration statistics (mean target, mean
    Bellman residual on the data, change of the greedy next values)."""
    if len(data.rows) == 0:
        raise UsageError("no transitions to learn from")
    # Monte Carlo returns of the behaviour policy (when logged) start the iteration with the
    # whole horizon in view; the iterations then improve on the behaviour policy.
    targets = (data.returns_to_go if data.returns_to_go is not None else data.rewards
               ).astype(np.float64)
    booster = _fit(data.rows, targets.astype(np.float32), spec)
    history: list[dict[str, float]] = []
    previous = np.zeros(len(targets))
    for k in range(1, spec.iterations + 1):
        nxt = max_next_value(booster, data)
        targets = data.rewards + spec.gamma * nxt
        stats = {"iteration": float(k), "mean_target": float(targets.mean()),
                 "mean_abs_change": float(np.mean(np.abs(nxt - previous)))}
        previous = nxt
        booster = _fit(data.rows, targets.astype(np.float32), spec)
        fitted = np.asarray(booster.inplace_predict(data.rows), dtype=np.float64)
        stats["bellman_rmse"] = float(np.sqrt(np.mean((fitted - targets) ** 2)))
        history.append(stats)
        if on_iteration is not None:
            on_iteration(k, stats)
    return booster, history


def spec_dict(spec: FqiSpec) -> dict[str, Any]:
    """Returns the spec as JSON-ready data (for the model card)."""
    return asdict(spec)
