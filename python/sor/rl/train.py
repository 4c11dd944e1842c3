"""`sor train-rl`: the learned routing policy, trained in the C++ simulator through the routing
environment (``sor/Routing-v0``) by fitted Q-iteration with boosted trees, exported to ONNX and
published into the model registry as ``action_value`` (run by the ``rl`` policy).

Rounds: round 0 collects episodes with a uniformly random feasible action; each later round
collects with an epsilon-greedy policy on the current Q; after every round FQI refits Q on all
transitions so far. Each round's greedy policy is backtested on validation seeds (never the
training seeds nor the backtest seeds 9001+) and the best round is kept.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from sor.errors import UsageError
from sor.features import FEATURE_SCHEMA
from sor.rl.fqi import FqiSpec, Transitions, fitted_q_iteration


@dataclass(frozen=True)
class RlTrainSpec:
    """What `sor train-rl` does."""

    scenarios: tuple[str, ...] = ("calm", "volatile", "toxic_venue", "dark_rich")
    episodes_per_round: int = 200           # Per round, spread over the scenarios.
    rounds: int = 5                         # Collection rounds (0: random, then greedy).
    epsilon: tuple[float, ...] = (1.0, 0.3, 0.15)
    train_seed_base: int = 100_000          # Market seeds of training episodes start here.
    validation_seeds: tuple[int, ...] = tuple(range(5001, 5017))
    quantity: int = 100_000
    horizon_s: float = 300.0
    decision_interval_s: float = 5.0
    child_shares: float = 2000.0
    fqi: FqiSpec = field(default_factory=lambda: FqiSpec(iterations=12, rounds=200))
    workers: int = 2

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.episodes_per_round < 1 or not self.scenarios:
            raise UsageError(f"invalid RL training spec: {self}")

    def epsilon_for(self, round_index: int) -> float:
        """Returns the exploration rate of a collection round."""
        return self.epsilon[min(round_index, len(self.epsilon) - 1)]


def _env_kwargs(spec: RlTrainSpec) -> dict[str, Any]:
    return {"quantity": spec.quantity, "horizon_s": spec.horizon_s,
            "decision_interval_s": spec.decision_interval_s, "child_shares": spec.child_shares}


_WORKER_Q: dict[str, Any] = {}


def _collect(task: tuple[str, int, float, bytes | None, dict[str, Any], int]) -> dict[str, Any]:
    """Runs one episode; returns its transitions and return."""
    from sor.models import load_tree_model
    from sor.rl.routing import RoutingEnv

    scenario, market_seed, epsilon, q_bytes, kwargs, rng_seed = task
    evaluator = None
    if q_bytes is not None:
        key = str(hash(q_bytes))
        if key not in _WORKER_Q:
            _WORKER_Q.clear()
            _WORKER_Q[key] = load_tree_model(q_bytes, expected_schema_hash=None).evaluator
        evaluator = _WORKER_Q[key]
    env = RoutingEnv(scenario, models="shipped", **kwargs)
    rng = np.random.default_rng(rng_seed)
    rows, info = env.reset(options={"market_seed": market_seed})
    taken, rewards, next_rows, next_feasible, done = [], [], [], [], []
    while True:
        feasible = np.flatnonzero(info["action_mask"])
        if evaluator is None or rng.random() < epsilon:
            action = int(rng.choice(feasible))
        else:
            values = evaluator.predict(np.ascontiguousarray(rows[feasible]))
            action = int(feasible[int(np.argmax(values))])
        taken.append(rows[action].copy())
        rows, reward, terminated, _, info = env.step(action)
        rewards.append(reward)
        next_rows.append(rows.copy())
        next_feasible.append(info["action_mask"].copy())
        done.append(terminated)
        if terminated:
            break
    r = np.asarray(rewards, dtype=np.float64)
    return {"rows": np.asarray(taken, dtype=np.float32), "rewards": r,
            "next_rows": np.asarray(next_rows, dtype=np.float32),
            "next_feasible": np.asarray(next_feasible, dtype=bool),
            "done": np.asarray(done, dtype=bool),
            "returns_to_go": np.cumsum(r[::-1])[::-1].copy(),
            "return": float(r.sum()), "scenario": scenario}


def _pad(part: dict[str, Any], actions: int) -> dict[str, Any]:
    """Pads next-state rows to ``actions`` (scenarios may differ in venue count)."""
    n, a, f = part["next_rows"].shape
    if a == actions:
        return part
    rows = np.zeros((n, actions, f), dtype=np.float32)
    rows[:, :a] = part["next_rows"]
    feasible = np.zeros((n, actions), dtype=bool)
    feasible[:, :a] = part["next_feasible"]
    return {**part, "next_rows": rows, "next_feasible": feasible}


def train_rl(spec: RlTrainSpec, registry_dir: str | Path | None = None, *,
             console: Any = None, publish: bool = True) -> dict[str, Any]:
    """Trains the policy (see the module documentation); returns its model card. Publishes
    the best round's Q into the registry as ``action_value`` unless ``publish`` is False."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sor.backtest.runner import EpisodeSpec, run_episode, shipped_models
    from sor.models import load_tree_model, xgboost_to_onnx
    from sor.models.registry import ModelRegistry
    from sor.models.train import code_revision

    started = time.time()
    kwargs = _env_kwargs(spec)
    parts: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    q_bytes: bytes | None = None
    episode_spec = EpisodeSpec(quantity=spec.quantity, horizon_s=spec.horizon_s)
    models = dict(shipped_models())
    context = mp.get_context("spawn")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console) as progress, \
            context.Pool(max(1, spec.workers)) as pool:
        for round_index in range(spec.rounds):
            epsilon = spec.epsilon_for(round_index)
            tasks = []
            for k in range(spec.episodes_per_round):
                scenario = spec.scenarios[k % len(spec.scenarios)]
                seed = spec.train_seed_base + round_index * spec.episodes_per_round + k
                tasks.append((scenario, seed, epsilon, q_bytes, kwargs, seed))
            bar = progress.add_task(f"round {round_index} episodes (epsilon {epsilon:g})",
                                    total=len(tasks))
            returns = []
            for part in pool.imap(_collect, tasks):
                parts.append(part)
                returns.append(part["return"])
                progress.advance(bar)
            actions = max(p["next_rows"].shape[1] for p in parts)
            padded = [_pad(p, actions) for p in parts]
            data = Transitions.concatenate([Transitions(
                p["rows"], p["rewards"], p["next_rows"], p["next_feasible"], p["done"],
                p["returns_to_go"]) for p in padded])
            fit_bar = progress.add_task(f"round {round_index} fitted Q-iteration",
                                        total=spec.fqi.iterations)
            booster, fqi_history = fitted_q_iteration(
                data, spec.fqi, lambda k, _s, fit_bar=fit_bar: progress.update(fit_bar, completed=k))
            q_bytes = xgboost_to_onnx(booster, feature_count=FEATURE_SCHEMA.size,
                                      schema_hash=FEATURE_SCHEMA.version_hash,
                                      metadata={"sor.model_name": "action_value",
                                                "sor.model_kind": "regressor",
                                                "sor.label": "return_to_go_bps"})
            q_model = load_tree_model(q_bytes, expected_schema_hash=FEATURE_SCHEMA.version_hash,
                                      feature_names=FEATURE_SCHEMA.names,
                                      reference_rows=data.rows[:: max(1, len(data.rows) // 256)])
            val_bar = progress.add_task(f"round {round_index} validation backtests",
                                        total=len(spec.scenarios) * len(spec.validation_seeds))
            shortfalls = []
            with_q = {**models, "action_value": q_model.evaluator}
            for scenario in spec.scenarios:
                for seed in spec.validation_seeds:
                    episode = run_episode("rl", {"child_shares": spec.child_shares,
                                                 "decision_interval_s": spec.decision_interval_s},
                                          scenario, seed, spec=episode_spec, models=with_q)
                    shortfalls.append(_is_bps(episode))
                    progress.advance(val_bar)
            record = {"round": round_index, "epsilon": epsilon, "episodes": len(parts),
                      "transitions": int(len(data.rows)),
                      "behaviour_mean_return_bps": float(np.mean(returns)),
                      "validation_mean_is_bps": float(np.mean(shortfalls)),
                      "fqi": fqi_history}
            history.append(record)
            if best is None or record["validation_mean_is_bps"] < best["validation_mean_is_bps"]:
                best = {**record, "onnx": q_bytes, "model": q_model,
                        "reference": data.rows[:: max(1, len(data.rows) // 256)][:256]}
    assert best is not None
    card = {
        "kind": "regressor",
        "description": "Action value Q(row) of the learned routing policy: the expected sum of "
                       "future rewards (minus implementation shortfall, bps of arrival "
                       "notional) after taking the row's action; the rl policy acts greedily.",
        "label": {"column": "return_to_go_bps", "unit": "bps"},
        "feature_schema": {"name": "sor.features", "hash": FEATURE_SCHEMA.version_hash,
                           "size": FEATURE_SCHEMA.size},
        "trees": {"count": best["model"].tree_count, "max_depth": spec.fqi.max_depth},
        "algorithm": "fitted Q-iteration (boosted trees), Monte Carlo initialisation",
        "training": {**{k: v for k, v in asdict(spec).items() if k != "fqi"},
                     "fqi": asdict(spec.fqi), "rounds_run": history,
                     "best_round": best["round"]},
        "metrics_test": {"validation_mean_is_bps": best["validation_mean_is_bps"],
                         "validation_seeds": list(spec.validation_seeds)},
        "data": {"train": {"rows": best["transitions"], "seeds": [spec.train_seed_base],
                           "scenarios": list(spec.scenarios)},
                 "validation": {"rows": len(spec.validation_seeds) * len(spec.scenarios),
                                "seeds": list(spec.validation_seeds),
                                "scenarios": list(spec.scenarios)},
                 "test": {"rows": 0, "seeds": [], "scenarios": []}},
        "parity": {"onnxruntime_max_abs_diff": best["model"].parity.max_abs_difference,
                   "onnxruntime_rows": best["model"].parity.rows, "xgboost_max_abs_diff": 0.0},
        "code": code_revision(),
        "reproduce": "sor train-rl",
        "training_seconds": round(time.time() - started, 1),
    }
    if publish:
        registry = ModelRegistry(registry_dir)
        entry = registry.publish("action_value", best["onnx"], card, render_rl_card,
                                 best["reference"])
        card = registry.card(entry.name)
    return card


def _is_bps(episode: Any) -> float:
    from sor.backtest.metrics import episode_metrics

    return float(episode_metrics(episode)["is_bps"])


def render_rl_card(card: dict[str, Any]) -> str:
    """Returns the RL policy's model card as Markdown."""
    lines = [f"# Model card: {card['name']} v{card['version']}", "", card["description"], "",
             f"- algorithm: {card['algorithm']}",
             f"- feature schema hash `{card['feature_schema']['hash']}`; "
             f"{card['trees']['count']} trees of depth <= {card['trees']['max_depth']}",
             f"- ONNX SHA-256 `{card['onnx_sha256']}`",
             f"- code `{card['code']['git_commit']}`; reproduce with `{card['reproduce']}`",
             f"- best round {card['training']['best_round']}: validation mean IS "
             f"{card['metrics_test']['validation_mean_is_bps']:.3f} bps on seeds "
             f"{card['metrics_test']['validation_seeds']}", "",
             "| round | epsilon | episodes | transitions | behaviour return (bps) | "
             "validation IS (bps) |", "| --- | --- | --- | --- | --- | --- |"]
    for r in card["training"]["rounds_run"]:
        lines.append(f"| {r['round']} | {r['epsilon']:g} | {r['episodes']} | {r['transitions']} "
                     f"| {r['behaviour_mean_return_bps']:.3f} | "
                     f"{r['validation_mean_is_bps']:.3f} |")
    lines.append("")
    return "\n".join(lines)
