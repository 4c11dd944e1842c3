"""`sor train-rl`: the learned routing policy, trained in the C++ simulator through the routing
environment (``sor/Routing-v0``) by fitted Q-iteration with boosted trees, exported to ONNX and
published into the model registry as ``action_value`` (run by the ``rl`` policy).

Rounds: round 0 collects episodes with a uniformly random feasible action; each later round
collects with an epsilon-greedy policy on the current Q; after every round FQI refits Q on all
transitions so far. Each round's greedy policy is backtested on validation seeds (never the
training seeds nor the backtest seeds 9001+) and the best round is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from sor.errors import ModelError, UsageError
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


def _collect(task: tuple[Any, ...]) -> dict[str, Any]:
    """Runs one episode; returns its transitions and return."""
    from sor.backtest.runner import SHIPPED, _models_for
    from sor.models import load_tree_model
    from sor.rl.routing import RoutingEnv

    scenario, market_seed, epsilon, q_bytes, kwargs, rng_seed = task[:6]
    models = task[6] if len(task) > 6 else SHIPPED
    evaluator = None
    if q_bytes is not None:
        key = str(hash(q_bytes))
        if key not in _WORKER_Q:
            _WORKER_Q.clear()
            _WORKER_Q[key] = load_tree_model(q_bytes, expected_schema_hash=None).evaluator
        evaluator = _WORKER_Q[key]
    env = RoutingEnv(scenario, models=SHIPPED if models == SHIPPED else _models_for(models),
                     **kwargs)
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


@dataclass
class RlTrainResult:
    """What one RL training produced: the card, the best round's Q as ONNX bytes and the
    reference rows of its parity check (what ``ModelRegistry.stage``/``publish`` take)."""

    card: dict[str, Any]
    onnx_bytes: bytes
    reference_rows: np.ndarray


def _describe_collect(task: tuple[Any, ...]) -> str:
    return f"RL collection episode scenario={task[0]} seed={task[1]} epsilon={task[2]:g}"


def _describe_validation(task: tuple[Any, ...]) -> str:
    return f"RL validation backtest policy=rl regime={task[0]} seed={task[1]}"


def _validate(task: tuple[Any, ...]) -> float:
    """Runs one validation backtest of the greedy policy; returns its shortfall in bps."""
    from sor.backtest.runner import run_episode

    scenario, seed, params, episode_spec, models = task
    return _is_bps(run_episode("rl", params, scenario, seed, spec=episode_spec, models=models))


def train_rl_model(spec: RlTrainSpec, *, console: Any = None, client: Any = None,
                   models: Any = "shipped") -> RlTrainResult:
    """Trains the policy (see the module documentation) without publishing it; returns the
    card, the best round's ONNX bytes and reference rows. ``models`` are the supervised models
    the routing environment and the validation backtests use: "shipped", a registry folder
    or a mapping name -> ONNX bytes. With a ``distributed.Client`` the episodes and the
    validation backtests run as Dask tasks (the same episodes and results as locally)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sor.backtest.runner import EpisodeSpec, portable_models
    from sor.models import load_tree_model, xgboost_to_onnx
    from sor.models.train import code_revision

    started = time.time()
    kwargs = _env_kwargs(spec)
    parts: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    q_bytes: bytes | None = None
    episode_spec = EpisodeSpec(quantity=spec.quantity, horizon_s=spec.horizon_s)
    base_models = models_as_onnx_bytes(models)
    collect_models = portable_models(models)
    validation_params = {"child_shares": spec.child_shares,
                         "decision_interval_s": spec.decision_interval_s}
    shared_base: Any = base_models
    if client is not None:
        from sor.scale import run_tasks

        # ship the supervised models to each worker once, not with every task
        shared_base = client.scatter([base_models], broadcast=True, hash=False)[0]
        if isinstance(collect_models, dict):
            collect_models = shared_base
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with contextlib.ExitStack() as stack:
        progress = stack.enter_context(Progress(*columns, console=console))
        pool = None
        if client is None and spec.workers > 1:
            pool = stack.enter_context(mp.get_context("spawn").Pool(spec.workers))
        for round_index in range(spec.rounds):
            epsilon = spec.epsilon_for(round_index)
            tasks = []
            for k in range(spec.episodes_per_round):
                scenario = spec.scenarios[k % len(spec.scenarios)]
                seed = spec.train_seed_base + round_index * spec.episodes_per_round + k
                tasks.append((scenario, seed, epsilon, q_bytes, kwargs, seed, collect_models))
            bar = progress.add_task(f"round {round_index} episodes (epsilon {epsilon:g})",
                                    total=len(tasks))
            if client is not None:
                collected = run_tasks(client, _collect, tasks, describe=_describe_collect,
                                      on_result=lambda *_: progress.advance(bar),
                                      key_prefix="sor-rl-collect")
            else:
                collected = []
                for part in (pool.imap(_collect, tasks) if pool is not None
                             else map(_collect, tasks)):
                    collected.append(part)
                    progress.advance(bar)
            parts.extend(collected)
            returns = [part["return"] for part in collected]
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
            validation = [(scenario, seed, validation_params, episode_spec, None)
                          for scenario in spec.scenarios for seed in spec.validation_seeds]
            if client is not None:
                shared_q = client.scatter([q_bytes], broadcast=True, hash=False)[0]
                validation = [(*v[:4], shared_base, shared_q) for v in validation]
                shortfalls = run_tasks(client, _validate_with_q, validation,
                                       describe=_describe_validation,
                                       on_result=lambda *_: progress.advance(val_bar),
                                       key_prefix="sor-rl-validate")
            else:
                with_q = {**base_models, "action_value": q_bytes}
                shortfalls = []
                for v in validation:
                    shortfalls.append(_validate((*v[:4], with_q)))
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
        "supervised_models": {name: hashlib.sha256(data).hexdigest()
                              for name, data in sorted(base_models.items())
                              if name != "action_value"},
        "code": code_revision(),
        "reproduce": "sor train-rl",
        "training_seconds": round(time.time() - started, 1),
    }
    if client is not None:
        from sor.scale import worker_count

        card["fit"] = {"backend": "dask tasks (collection, validation)",
                       "dask_workers": worker_count(client)}
    return RlTrainResult(card, best["onnx"], best["reference"])


def train_rl(spec: RlTrainSpec, registry_dir: str | Path | None = None, *,
             console: Any = None, publish: bool = True, client: Any = None,
             models: Any = "shipped") -> dict[str, Any]:
    """Trains the policy (see ``train_rl_model``); returns its model card. Publishes the best
    round's Q into the registry as ``action_value`` unless ``publish`` is False (then
    ``train_rl_model`` also gives the ONNX bytes)."""
    from sor.models.registry import ModelRegistry

    result = train_rl_model(spec, console=console, client=client, models=models)
    if not publish:
        return result.card
    registry = ModelRegistry(registry_dir)
    entry = registry.publish("action_value", result.onnx_bytes, result.card, render_rl_card,
                             result.reference_rows)
    return registry.card(entry.name)


def _validate_with_q(task: tuple[Any, ...]) -> float:
    scenario, seed, params, episode_spec, base, q_bytes = task
    return _validate((scenario, seed, params, episode_spec, {**base, "action_value": q_bytes}))


def models_as_onnx_bytes(models: Any) -> dict[str, bytes]:
    """Returns name -> ONNX bytes of ``models`` ("shipped", a registry folder: its models in
    use; a mapping name -> bytes as is; None: {})."""
    import os

    from sor.backtest.runner import SHIPPED, portable_models
    from sor.models.registry import ModelRegistry

    portable = portable_models(models)
    if portable is None:
        return {}
    if isinstance(portable, dict):
        return dict(portable)
    registry = ModelRegistry(None if portable == SHIPPED else os.fspath(portable))
    out = {}
    for name in registry.names():
        path = registry.path(name)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != registry.entry(name).sha256:
            raise ModelError(f"model {name!r} file {path} does not have the SHA-256 its "
                             "registry records: the file changed or is corrupt")
        out[name] = data
    return out


def _sweep_value(key: str, text: str, current: Any) -> Any:
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise UsageError(f"sweep value {text!r} of {key} is not a boolean")
        return text.lower() in ("true", "1")
    if isinstance(current, tuple):
        kind = type(current[0]) if current else str
        return tuple(kind(v) for v in text.split("+") if v)
    try:
        return type(current)(text)
    except ValueError:
        raise UsageError(f"sweep value {text!r} of {key} is not a {type(current).__name__}"
                         ) from None


def parse_sweep(items: Sequence[str], base: RlTrainSpec) -> dict[str, list[Any]]:
    """Parses ``["fqi.rounds=50,100", "epsilon=1+0.3,1+0.5"]`` into a grid (key -> values,
    typed like the spec's field; tuple values joined with '+'). Keys are fields of
    ``RlTrainSpec`` or ``fqi.<field of FqiSpec>``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, eq, values = item.partition("=")
        key = key.strip()
        if not eq or not values.strip():
            raise UsageError(f"bad sweep {item!r}: use KEY=V1,V2 (e.g. fqi.rounds=50,100)")
        current = _spec_value(base, key)
        grid[key] = [_sweep_value(key, v.strip(), current) for v in values.split(",") if v.strip()]
    return grid


def _spec_value(spec: RlTrainSpec, key: str) -> Any:
    owner, _, name = key.rpartition(".")
    if owner not in ("", "fqi"):
        raise UsageError(f"unknown sweep key {key!r}: use a field of RlTrainSpec or fqi.<field>")
    target = spec.fqi if owner == "fqi" else spec
    if name not in type(target).__dataclass_fields__ or (owner == "" and name == "fqi"):
        fields = sorted(f for f in RlTrainSpec.__dataclass_fields__ if f != "fqi")
        fields += sorted(f"fqi.{f}" for f in FqiSpec.__dataclass_fields__)
        raise UsageError(f"unknown sweep key {key!r}; keys: {', '.join(fields)}")
    return getattr(target, name)


def spec_at(base: RlTrainSpec, point: dict[str, Any]) -> RlTrainSpec:
    """Returns ``base`` with the values of one grid point (``fqi.`` keys set the FQI spec)."""
    from dataclasses import replace

    top = {k: v for k, v in point.items() if "." not in k}
    fqi = {k.split(".", 1)[1]: v for k, v in point.items() if k.startswith("fqi.")}
    for key in point:
        _spec_value(base, key)
    return replace(base, **top, fqi=replace(base.fqi, **fqi))


def _sweep_task(task: tuple[Any, ...]) -> dict[str, Any]:
    import io

    from rich.console import Console

    point, spec, models = task
    result = train_rl_model(spec, console=Console(file=io.StringIO()), models=models)
    return {"point": point, "validation_mean_is_bps":
            result.card["metrics_test"]["validation_mean_is_bps"],
            "onnx_bytes": result.onnx_bytes, "reference_rows": result.reference_rows,
            "card": result.card}


def rl_sweep(client: Any, base_spec: RlTrainSpec, grid: dict[str, list[Any]], *,
             models: Any = "shipped",
             on_point: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Runs one RL training (``train_rl_model``, nothing published) per point of ``grid``
    (key -> values; every combination) as a Dask task each, episodes collected inside the task
    with one process; returns per point, in grid order, ``{"point", "validation_mean_is_bps",
    "onnx_bytes", "reference_rows", "card"}``. A failing point raises ScaleOutError naming
    it."""
    import itertools
    from dataclasses import replace

    from sor.backtest.runner import portable_models
    from sor.scale import run_tasks

    if not grid or any(not values for values in grid.values()):
        raise UsageError(f"a sweep needs at least one value per key, got {grid}")
    keys = list(grid)
    points = [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    shared = portable_models(models)
    tasks = [(point, replace(spec_at(base_spec, point), workers=1), shared) for point in points]
    return run_tasks(client, _sweep_task, tasks,
                     describe=lambda task: f"RL sweep point {task[0]}",
                     on_result=(lambda _n, row: on_point(row)) if on_point else None,
                     key_prefix="sor-rl-sweep")


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
