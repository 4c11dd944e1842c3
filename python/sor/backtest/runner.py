"""Backtest episodes and grids of them.

An episode is one parent order worked by one execution policy in one simulated market
(``scenario``, ``seed``): the C++ backtester (``_core.run_backtest``) runs the market, feeds the
router's book and features in ``ts_recv`` order, calls the policy on its decision grid, sends
its children, sweeps the remainder at the deadline and records every child, fill and true mid.
Policies are compared *paired*: every policy runs on the same seeds with the same side and
size, so they face the same exogenous market (news, informed traders, regimes) until their own
orders change it. docs/backtest.md describes the episode, the metrics and the statistics.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from sor import _core
from sor.errors import UsageError

_NS = 1_000_000_000

FILL_DTYPE = _core.backtest_fill_dtype
"""numpy dtype of one fill of an episode (``sor::BacktestFill``)."""
CHILD_DTYPE = _core.backtest_child_dtype
"""numpy dtype of one child order of an episode (``sor::BacktestChild``)."""
MID_DTYPE = _core.mid_sample_dtype
"""numpy dtype of one true NBBO sample (``sor::MidSample``)."""

DEFAULT_REGIMES = ("calm", "volatile", "toxic_venue", "dark_rich")
"""Scenarios a grid runs by default (``default`` may be added)."""
DEFAULT_QUANTITY_SHARES = 100_000
"""Default parent size: about 1% of the volume the shipped scenarios print in 30 minutes."""
DEFAULT_HORIZON_S = 300.0
"""Default time to the deadline after arrival."""
SHIPPED = "shipped"
"""``models=SHIPPED`` loads the shipped model registry (fill probability, adverse move, impact)."""


@dataclass(frozen=True)
class EpisodeSpec:
    """The parent order and the clock of one episode (everything but policy, market and seed).
    ``side`` None alternates by seed: buy on even seeds, sell on odd ones."""

    side: str | None = None
    quantity: int = DEFAULT_QUANTITY_SHARES
    horizon_s: float = DEFAULT_HORIZON_S
    start_offset_s: float = 600.0
    decision_interval_s: float = 1.0
    markout_tail_s: float = 60.0
    limit_price_ticks: int = 0
    finish_at_horizon: bool = True
    lot_shares: int = 0

    def __post_init__(self) -> None:
        if self.side not in (None, "buy", "sell"):
            raise UsageError(f"side must be 'buy', 'sell' or None (alternate), got {self.side!r}")
        if self.quantity <= 0:
            raise UsageError(f"quantity must be > 0 shares, got {self.quantity}")
        for name in ("horizon_s", "decision_interval_s"):
            if not getattr(self, name) > 0:
                raise UsageError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.start_offset_s < 0 or self.markout_tail_s < 0:
            raise UsageError("start_offset_s and markout_tail_s must be >= 0")

    def side_for(self, seed: int) -> str:
        """Returns the side of the parent on ``seed`` (the same for every policy)."""
        if self.side is not None:
            return self.side
        return "buy" if seed % 2 == 0 else "sell"


@dataclass
class Episode:
    """One parent order worked by one policy on one seed: the records and the scalars."""

    policy: str
    params: dict[str, float]
    scenario: str
    seed: int
    side: int                      # +1 buy, -1 sell.
    quantity: int                  # Parent shares.
    fills: np.ndarray              # FILL_DTYPE, arrival order.
    children: np.ndarray           # CHILD_DTYPE, id order.
    mids: np.ndarray               # MID_DTYPE, every 100 ms from arrival - 60 s to end + tail.
    arrival_mid_ticks: float       # Router-view NBBO mid at arrival (the IS benchmark).
    end_mid_ticks: float           # True NBBO mid when the last child finished.
    start_ns: int
    end_ns: int
    finished_ns: int
    filled: int
    fees_usd: float
    market_vwap_ticks: float       # Tape VWAP over [start, end] without our trades.
    market_volume_shares: int      # Tape volume over [start, end] without our trades.
    price_tick_usd: float
    venue_names: dict[int, str]
    counters: dict[str, int]
    extra: dict[str, Any] = field(default_factory=dict)


_MODEL_CACHE: dict[str, Any] = {}


def shipped_models() -> dict[str, Any]:
    """Returns the shipped models by name (``_core.TreeEnsemble``), loaded once per process;
    {} when the registry has none."""
    if "models" not in _MODEL_CACHE:
        from sor.models.registry import MODEL_NAMES, ModelRegistry

        registry = ModelRegistry()
        names = set(registry.names())
        wanted = (*MODEL_NAMES, "action_value")  # action_value: the learned (rl) policy
        _MODEL_CACHE["models"] = {n: registry.load(n).evaluator for n in wanted if n in names}
    return _MODEL_CACHE["models"]


def _registry_data() -> tuple[Any, dict[str, float]]:
    if "registry" not in _MODEL_CACHE:
        from sor.models.registry import ModelRegistry

        registry = ModelRegistry()
        settings = registry.feature_settings()
        adv: dict[str, float] = {}
        try:
            adv = dict(registry.card("fill_probability").get("data", {}).get("adv_shares", {}))
        except (UsageError, OSError, ValueError):
            adv = {}
        _MODEL_CACHE["registry"] = (settings, adv)
    return _MODEL_CACHE["registry"]


def _feature_options(settings: Any) -> Any:
    """Core FeatureOptions with the settings' values and no venues (the backtester derives the
    venues, fees, latencies and tick from the market)."""
    from sor.features.engine import FeatureSettings

    options = _core.FeatureOptions()
    if settings is None:
        return options
    for name in FeatureSettings.__dataclass_fields__:
        if name in ("max_instruments", "garch"):
            continue
        setattr(options, name, getattr(settings, name))
    if settings.garch is not None:
        options.garch = settings.garch.to_core()
    return options


ModelsArgument = Any
"""What ``models`` may be: None, ``SHIPPED``, a registry folder (str or Path: its models in
use), a mapping name -> ONNX bytes, or a mapping name -> ``TreeEnsemble`` (this process only:
those do not pickle)."""


def _is_onnx_bytes(value: Any) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


def _onnx_evaluator(name: str, data: bytes) -> Any:
    """Returns the evaluator of ONNX ``data``, loaded and validated once per process (cached
    by SHA-256)."""
    import hashlib

    key = "onnx:" + hashlib.sha256(data).hexdigest()
    if key not in _MODEL_CACHE:
        from sor.features import FEATURE_SCHEMA
        from sor.models.onnx_trees import load_tree_model

        model = load_tree_model(bytes(data), expected_schema_hash=FEATURE_SCHEMA.version_hash,
                                feature_names=FEATURE_SCHEMA.names)
        _MODEL_CACHE[key] = model.evaluator
    return _MODEL_CACHE[key]


def _registry_models(root: Any) -> dict[str, Any]:
    """Returns the models in use of the registry folder ``root`` by name, loaded once per
    process and registry state (cached by the SHA-256 of its ``registry.json``)."""
    import hashlib
    from pathlib import Path

    from sor.models.registry import REGISTRY_FILE, ModelRegistry

    path = Path(root).expanduser().resolve()
    index = path / REGISTRY_FILE
    try:
        digest = hashlib.sha256(index.read_bytes()).hexdigest()
    except OSError as exc:
        raise UsageError(f"models must be {SHIPPED!r}, a model registry folder or a mapping of "
                         f"name to ONNX bytes; cannot read {index}: {exc.strerror or exc}"
                         ) from None
    key = f"registry:{path}:{digest}"
    if key not in _MODEL_CACHE:
        registry = ModelRegistry(path)
        _MODEL_CACHE[key] = {n: registry.load(n).evaluator for n in registry.names()}
    return _MODEL_CACHE[key]


def _models_for(models: ModelsArgument) -> dict[str, Any] | None:
    """Returns the evaluators (``TreeEnsemble`` by name) ``models`` stands for, or None."""
    import os

    if models is None:
        return None
    if isinstance(models, str) and models == SHIPPED:
        return shipped_models() or None
    if isinstance(models, (str, os.PathLike)):
        return _registry_models(models) or None
    if isinstance(models, Mapping):
        wrong = {str(n): type(v).__name__ for n, v in models.items()
                 if not _is_onnx_bytes(v) and not isinstance(v, _core.TreeEnsemble)}
        if wrong:
            raise UsageError(f"models must map names to ONNX bytes or TreeEnsemble, got {wrong}")
        return {str(name): _onnx_evaluator(str(name), value) if _is_onnx_bytes(value) else value
                for name, value in models.items()} or None
    raise UsageError(f"models must be None, {SHIPPED!r}, a registry folder or a mapping of name "
                     f"to ONNX bytes or TreeEnsemble, got {type(models).__name__}")


def portable_models(models: ModelsArgument) -> ModelsArgument:
    """Returns ``models`` in a form that can be sent to other processes (None, ``SHIPPED``, a
    registry path as str, or name -> ONNX bytes); UsageError for in-process evaluators."""
    import os

    if models is None or (isinstance(models, str) and models == SHIPPED):
        return models
    if isinstance(models, (str, os.PathLike)):
        return os.fspath(models)
    if isinstance(models, Mapping):
        wrong = sorted(str(n) for n, v in models.items() if not _is_onnx_bytes(v))
        if wrong:
            raise UsageError(f"models {wrong} are loaded evaluators, which cannot be sent to "
                             "worker processes: give them as ONNX bytes or a registry folder, "
                             "or run with workers=1 and no Dask client")
        return {str(n): bytes(v) for n, v in models.items()}
    raise UsageError(f"models must be None, {SHIPPED!r}, a registry folder or a mapping of name "
                     f"to ONNX bytes, got {type(models).__name__}")


def backtest_spec(scenario: str, seed: int, spec: EpisodeSpec, *,
                  feature_settings: Any = SHIPPED, adv_shares: float | None = None
                  ) -> tuple[Any, Any, Any, str]:
    """Returns the core ``BacktestSpec`` of one episode (market of ``scenario`` with ``seed``,
    the parent of ``spec``, the feature settings and ADV), the market spec, the scenario and
    the parent's side."""
    from sor.sim.scenario import load_scenario

    if isinstance(feature_settings, str):
        if feature_settings != SHIPPED:
            raise UsageError(f"feature_settings must be a FeatureSettings, None or {SHIPPED!r}")
        settings = _registry_data()[0]
    else:
        settings = feature_settings
    loaded = load_scenario(scenario)
    market = loaded.market_spec(seed=int(seed))
    core_spec = _core.BacktestSpec()
    core_spec.market = market
    side = spec.side_for(int(seed))
    core_spec.side = _core.Side.BUY if side == "buy" else _core.Side.SELL
    core_spec.quantity = int(spec.quantity)
    core_spec.limit_price_ticks = int(spec.limit_price_ticks)
    core_spec.start_offset_ns = int(round(spec.start_offset_s * _NS))
    core_spec.horizon_ns = int(round(spec.horizon_s * _NS))
    core_spec.decision_interval_ns = int(round(spec.decision_interval_s * _NS))
    core_spec.markout_tail_ns = int(round(spec.markout_tail_s * _NS))
    core_spec.finish_at_horizon = bool(spec.finish_at_horizon)
    core_spec.lot_shares = int(spec.lot_shares)
    core_spec.features = _feature_options(settings)
    adv = adv_shares if adv_shares is not None else _registry_data()[1].get(loaded.name, 0.0)
    core_spec.adv_shares = float(adv or 0.0)
    return core_spec, market, loaded, side


def run_episode(policy: str, params: Mapping[str, float] | None, scenario: str, seed: int, *,
                spec: EpisodeSpec | None = None, models: ModelsArgument = None,
                feature_settings: Any = SHIPPED, adv_shares: float | None = None,
                **spec_fields: Any) -> Episode:
    """Runs one episode of ``policy`` (a ``_core.make_policy`` name) with ``params`` on
    ``scenario`` with market seed ``seed``. The parent is ``spec`` (or ``EpisodeSpec`` built
    from keywords such as ``quantity=``, ``horizon_s=``, ``side=``). ``models``: None (default),
    ``SHIPPED`` for the shipped models, a registry folder (its models in use), a mapping name
    -> ONNX bytes (loaded and validated once per process) or name -> ``TreeEnsemble``. ``feature_settings``: the
    shipped models' feature settings (GARCH fit; default), a ``FeatureSettings`` or None.
    ``adv_shares`` defaults to the scenario's ADV recorded with the shipped models."""
    if spec is None:
        spec = EpisodeSpec(**spec_fields)
    elif spec_fields:
        raise UsageError("give either spec= or EpisodeSpec keywords, not both")
    params = {str(k): float(v) for k, v in (params or {}).items()}
    core_spec, market, loaded, side = backtest_spec(scenario, seed, spec,
                                                    feature_settings=feature_settings,
                                                    adv_shares=adv_shares)
    policy_object = _core.make_policy(policy, params)
    result = _core.run_backtest(core_spec, policy_object, _models_for(models))
    return Episode(
        policy=policy, params=params, scenario=loaded.name, seed=int(seed),
        side=1 if side == "buy" else -1, quantity=int(spec.quantity),
        fills=result["fills"], children=result["children"], mids=result["mids"],
        arrival_mid_ticks=float(result["arrival_mid_ticks"]),
        end_mid_ticks=float(result["end_mid_ticks"]), start_ns=int(result["start_ns"]),
        end_ns=int(result["end_ns"]), finished_ns=int(result["finished_ns"]),
        filled=int(result["filled"]), fees_usd=float(result["fees_usd"]),
        market_vwap_ticks=float(result["market_vwap_ticks"]),
        market_volume_shares=int(result["market_volume_shares"]),
        price_tick_usd=float(result["price_tick_usd"]),
        venue_names={int(v.venue_id): str(v.name) for v in market.venues},
        counters=dict(result["counters"]),
        extra={"true_arrival_mid_ticks": float(result["true_arrival_mid_ticks"]),
               "own_tape_volume_shares": int(result["own_tape_volume_shares"]),
               "adv_shares": float(result["adv_shares"])})


# --- grids ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyChoice:
    """A policy of a grid: factory name, parameters and the label it is reported under."""

    name: str
    params: tuple[tuple[str, float], ...] = ()
    label: str = ""

    @property
    def key(self) -> str:
        """Returns the label (the name when no label was given)."""
        return self.label or self.name


def parse_policies(text: str) -> tuple[PolicyChoice, ...]:
    """Parses ``"best_price,twap:slices=60"`` into policy choices (``name[:k=v[;k=v]]``; a
    choice with parameters is labelled ``name(k=v,...)``)."""
    choices = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, _, rest = part.partition(":")
        params = []
        for item in filter(None, (p.strip() for p in rest.split(";"))):
            key, eq, value = item.partition("=")
            try:
                if not eq:
                    raise ValueError
                params.append((key.strip(), float(value)))
            except ValueError:
                raise UsageError(f"bad policy parameter {item!r} in {part!r}: use name:key=value"
                                 ) from None
        label = name if not params else \
            f"{name}({','.join(f'{k}={v:g}' for k, v in params)})"
        choices.append(PolicyChoice(name.strip(), tuple(params), label))
    if not choices:
        raise UsageError(f"empty policy list {text!r}")
    labels = [c.key for c in choices]
    if len(set(labels)) != len(labels):
        raise UsageError(f"policy list {text!r} names a policy twice")
    return tuple(choices)


def _grid_task(task: tuple[Any, ...]) -> dict[str, Any]:
    from sor.backtest.metrics import episode_metrics

    choice, scenario, seed, spec, models, penalty_bps = task
    episode = run_episode(choice.name, dict(choice.params), scenario, seed, spec=spec,
                          models=models)
    row = episode_metrics(episode, unfilled_penalty_bps=penalty_bps)
    row["policy_name"] = choice.name
    row["policy"] = choice.key
    row["regime"] = scenario
    return row


def _describe_grid_task(task: tuple[Any, ...]) -> str:
    choice, scenario, seed = task[0], task[1], task[2]
    return f"backtest episode policy={choice.key} regime={scenario} seed={seed}"


def run_grid(policies: Sequence[PolicyChoice], regimes: Sequence[str], seeds: Sequence[int], *,
             spec: EpisodeSpec = EpisodeSpec(), workers: int = 2,
             models: ModelsArgument = SHIPPED, unfilled_penalty_bps: float = 50.0,
             progress: Callable[[dict[str, Any]], None] | None = None,
             client: Any = None) -> list[dict[str, Any]]:
    """Runs every policy on every regime and seed (paired: same seeds, sides and sizes) in
    ``workers`` processes (spawned; 1 runs here), or as Dask tasks on ``client``'s cluster
    when one is given; returns one metrics row per episode (``metrics.episode_metrics`` plus
    ``policy`` and ``regime``) in grid order, the same rows either way. ``models``: None,
    ``SHIPPED``, a registry folder or a mapping name -> ONNX bytes (each process loads them
    once); a mapping of loaded evaluators only with ``workers=1`` and no client. ``progress``
    is called with each row as it completes. A failing Dask task raises ScaleOutError naming
    its policy, regime and seed."""
    if workers < 1:
        raise UsageError(f"workers must be at least 1, got {workers}")
    local = client is None and (workers == 1 or len(regimes) * len(seeds) * len(policies) == 1)
    if not local:
        models = portable_models(models)
    tasks = [(choice, regime, int(seed), spec, models, unfilled_penalty_bps)
             for regime in regimes for seed in seeds for choice in policies]
    rows: list[dict[str, Any] | None] = [None] * len(tasks)
    if client is not None:
        from sor.scale import run_tasks

        if isinstance(models, dict):  # ship the ONNX bytes to each worker once, not per task
            shared = client.scatter([models], broadcast=True, hash=False)[0]
            tasks = [(*task[:4], shared, *task[5:]) for task in tasks]
        return run_tasks(client, _grid_task, tasks, describe=_describe_grid_task,
                         on_result=(lambda _n, row: progress(row)) if progress else None,
                         key_prefix="sor-backtest")
    if local:
        for n, task in enumerate(tasks):
            rows[n] = _grid_task(task)
            if progress:
                progress(rows[n])
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context,
                                 initializer=_worker_init) as pool:
            futures = {pool.submit(_grid_task, task): n for n, task in enumerate(tasks)}
            for future in as_completed(futures):
                row = future.result()
                rows[futures[future]] = row
                if progress:
                    progress(row)
    return [r for r in rows if r is not None]


def _worker_init() -> None:
    # Two noisy cores: keep each worker's numeric libraries single-threaded.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def available_policies() -> tuple[str, ...]:
    """Returns the policy names the core's factory knows."""
    return tuple(_core.policy_names())


def check_policies(policies: Iterable[PolicyChoice]) -> None:
    """Raises PolicyConfigError for a choice the factory refuses (before any episode runs)."""
    for choice in policies:
        _core.make_policy(choice.name, dict(choice.params))


def finite(value: float) -> float | None:
    """Returns the value, or None when it is NaN or infinite (JSON has no NaN)."""
    return float(value) if math.isfinite(value) else None
