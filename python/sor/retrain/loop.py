"""`sor retrain`: champion/challenger retraining on the live children in the store.

1. Labelled rows (``labelled``, from ``label_children``) are split by market time: the first
   ``train_fraction`` fit the trees, the next ``validation_fraction`` stop the boosting, the
   rest (the latest rows, never seen by the fit) are the held-out test rows.
2. Each supervised model (``sor.models.train.TARGETS``) gets a challenger fitted with
   ``fit_booster`` (here or on Dask), exported to ONNX and validated by the loader; the
   champion (the registry's version in use) is scored on the same test rows. A model with too
   few rows keeps its champion (recorded). Challengers are *staged* in the registry.
3. Optionally an RL challenger (``action_value``) is trained in the simulator with the
   supervised challengers (``train_rl_model``), and staged.
4. Held-out backtests: the champion set and the challenger set route the same parents on
   the same regimes and seeds (``spec.seeds``, disjoint from every training and validation
   seed), paired by (regime, seed), as Dask tasks when a client is given.
5. Decision: the challenger set is promoted (``registry.promote``, one history record) only
   when its mean paired IS improvement is at least ``min_improvement_bps`` and no model's
   held-out loss (Brier for the classifier, RMSE for the regressors) is worse than the
   champion's by more than ``metric_tolerance`` (relative); otherwise kept, with the reason.
6. The report (JSON and Markdown) goes to ``<registry>/retrain/<UTC time>.json|.md``.

The feature settings stay the champion registry's: the journal's rows were computed with them.
"""

from __future__ import annotations

import datetime as _datetime
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from sor.errors import RetrainError

_NS = 1_000_000_000
OPERATOR = "sor retrain"

# seeds used for training or validation anywhere in the project: probe days (calibration 0,
# train/validation/test 101-105), RL validation 5001-5016, backtest reports 9001+, RL
# collection 100000+
_RESERVED_SEEDS = (range(0, 1), range(101, 106), range(5001, 5017), range(9001, 9101))


def _default_rl() -> Any:
    from sor.rl.fqi import FqiSpec
    from sor.rl.train import RlTrainSpec

    return RlTrainSpec(scenarios=("default", "calm"), episodes_per_round=8, rounds=2,
                       validation_seeds=(5001, 5002), train_seed_base=200_000,
                       fqi=FqiSpec(iterations=4, rounds=60))


def _default_boosting() -> Any:
    from sor.models.train import BoostingSpec

    return BoostingSpec(max_rounds=200, early_stopping_rounds=20)


def _default_episode() -> Any:
    from sor.backtest.runner import EpisodeSpec

    return EpisodeSpec(quantity=100_000, horizon_s=300.0)


@dataclass(frozen=True)
class RetrainSpec:
    """What `sor retrain` does: the time split, the boosting, the RL challenger (None: no
    RL), the held-out backtests and the promotion rule."""

    train_fraction: float = 0.6            # Earliest rows: fit.
    validation_fraction: float = 0.2       # Next rows: early stopping; the rest: test.
    boosting: Any = field(default_factory=_default_boosting)
    min_train_rows: int = 100              # A model with fewer keeps its champion.
    min_eval_rows: int = 30                # Validation and test rows, likewise.
    rl: Any = field(default_factory=_default_rl)
    regimes: tuple[str, ...] = ("default", "calm", "volatile")
    seeds: tuple[int, ...] = tuple(range(7001, 7007))
    episode: Any = field(default_factory=_default_episode)
    warm_start: bool = True                # Boost on from each champion (else fit from scratch).
    min_improvement_bps: float = -0.5      # ml_router mean paired IS gain needed (non-inferiority).
    min_rl_improvement_bps: float = 0.0    # rl policy mean paired IS gain needed for action_value.
    metric_tolerance: float = 0.05         # Allowed relative held-out loss increase per model.
    min_loss_improvement: float = 0.002    # Some model's held-out loss must fall by this (relative).
    fill_horizon_s: float = 10.0
    move_horizon_s: float = 10.0

    def __post_init__(self) -> None:
        problems = []
        if not (0 < self.train_fraction < 1 and 0 < self.validation_fraction < 1
                and self.train_fraction + self.validation_fraction < 1):
            problems.append(f"need 0 < train_fraction, validation_fraction and their sum < 1, "
                            f"got {self.train_fraction}, {self.validation_fraction}")
        if not self.seeds or not self.regimes:
            problems.append("seeds and regimes must not be empty")
        reserved = set()
        for seeds in _RESERVED_SEEDS:
            reserved |= set(seeds)
        if self.rl is not None:
            reserved |= set(self.rl.validation_seeds)
            base = self.rl.train_seed_base
            reserved |= set(range(base, base + self.rl.rounds * self.rl.episodes_per_round))
        overlap = sorted(set(self.seeds) & reserved)
        if overlap:
            problems.append(f"held-out backtest seeds {overlap} are used for training or "
                            "validation elsewhere; use e.g. 7001+")
        if self.metric_tolerance < 0:
            problems.append(f"metric_tolerance must be >= 0, got {self.metric_tolerance}")
        if problems:
            raise RetrainError("invalid retrain spec: " + "; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        """Returns the spec as JSON-ready data."""
        out = asdict(self)
        out["rl"] = None if self.rl is None else asdict(self.rl)
        return json.loads(json.dumps(out, default=str))


@dataclass
class RetrainReport:
    """What one retraining measured and decided (``to_json``, ``to_markdown``)."""

    started_utc: str
    decision: str                               # "promoted" or "kept"
    reason: str
    rows: dict[str, Any]
    models: dict[str, dict[str, Any]]           # per model: champion/challenger metrics
    backtest: dict[str, Any]
    staged: dict[str, int]
    promoted: dict[str, int]
    history_record: dict[str, Any] | None
    spec: dict[str, Any]
    seconds: dict[str, float]
    dask_workers: int = 0
    paths: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Returns the report as JSON-ready data (NaN as null)."""
        return _clean(asdict(self))

    def to_markdown(self) -> str:
        """Returns the report as Markdown."""
        return render_report(self.to_json())


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# --- data -----------------------------------------------------------------------------------


def labelled_columns(store: Any, *, dates: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Returns the store's labelled rows (of `dates`) as numpy columns, in market-time order."""
    from sor.features import FEATURE_SCHEMA

    try:
        table = store.read("labelled", dates=list(dates) if dates is not None else None)
    except Exception as error:  # noqa: BLE001 - named below
        raise RetrainError(f"cannot read the labelled rows of the store at "
                           f"{getattr(store, 'root', store)}: {error}") from error
    if table.num_rows == 0:
        raise RetrainError(f"the store at {getattr(store, 'root', store)} has no labelled rows"
                           f"{'' if dates is None else ' for ' + ', '.join(dates)}")
    missing = [n for n in (*FEATURE_SCHEMA.names, "now_ns", "filled", "adverse_move_bps",
                           "impact_bps", "order_type", "filled_quantity")
               if n not in table.column_names]
    if missing:
        raise RetrainError(f"the labelled rows lack columns {missing[:5]}: relabel them")
    columns = {name: table.column(name).to_numpy(zero_copy_only=False)
               for name in table.column_names}
    order = np.argsort(columns["now_ns"], kind="stable")
    return {k: v[order] for k, v in columns.items()}


def time_split(data: dict[str, np.ndarray], spec: RetrainSpec) -> dict[str, np.ndarray]:
    """Returns boolean masks train/validation/test: the rows in market-time order cut at the
    spec's fractions (every row of one decision time lands in one split)."""
    times = data["now_ns"].astype(np.int64)
    n = len(times)
    cut1 = times[min(n - 1, int(n * spec.train_fraction))]
    cut2 = times[min(n - 1, int(n * (spec.train_fraction + spec.validation_fraction)))]
    return {"train": times < cut1, "validation": (times >= cut1) & (times < cut2),
            "test": times >= cut2}


def _matrix(data: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    from sor.features import FEATURE_SCHEMA

    return np.column_stack([np.asarray(data[name][mask], dtype=np.float32)
                            for name in FEATURE_SCHEMA.names]).astype(np.float32)


def _target_mask(target: Any, data: dict[str, np.ndarray]) -> np.ndarray:
    label = np.asarray(data[target.label], dtype=np.float64)
    mask = np.isfinite(label)
    if target.name == "market_impact":
        mask &= (data["order_type"] == 0) & (data["filled_quantity"] > 0)
    return mask


def _metrics(target: Any, predictions: np.ndarray, labels: np.ndarray, train_labels: np.ndarray,
             test: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, Any]:
    """Returns the held-out metrics of one model's predictions (train.py's metrics)."""
    from sor.models import metrics as m
    from sor.models.train import sqrt_law_baseline

    predictions = np.asarray(predictions, dtype=np.float64)
    if target.kind == "classifier":
        out = m.classifier_metrics(labels.astype(bool), predictions,
                                   float(np.mean(train_labels)))
        out["loss_name"], out["loss"] = "brier", out["brier"]
        return out
    baselines = {"zero": np.zeros(len(labels)),
                 "train_mean": np.full(len(labels), float(np.mean(train_labels)))}
    if target.name == "market_impact" and np.all(np.isfinite(test["adv_shares"][mask])) \
            and "vol.realized_30m_bps" in test:
        baselines["square_root_law_unit"] = sqrt_law_baseline(test, mask, 1.0)
    out = m.regressor_metrics(labels, predictions, baselines)
    out["loss_name"], out["loss"] = "rmse", out["rmse"]
    return out


def _split_summary(data: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, Any]:
    times = data["now_ns"][mask]
    dates = sorted({str(d) for d in data["date"][mask].tolist()}) if "date" in data else []
    return {"rows": int(mask.sum()), "dates": dates, "seeds": [],
            "scenarios": sorted({str(r) for r in data["run"][mask].tolist()})
            if "run" in data else [],
            "first_ns": int(times.min()) if len(times) else None,
            "last_ns": int(times.max()) if len(times) else None}


def render_challenger_card(card: dict[str, Any]) -> str:
    """Returns a challenger's model card as Markdown (train.py's card, its data described
    by dates and journal runs, and the champion's metrics on the same test rows)."""
    from sor.models.train import render_card

    text = render_card(card)
    champion = card.get("champion")
    if champion:
        text += (f"\n## Against the champion (same held-out rows)\n\n- champion "
                 f"{champion['name']} v{champion['version']}: {champion['loss_name']} "
                 f"{champion['loss']:.5f}; this model {card['metrics_test']['loss']:.5f}\n")
    return text


# --- the loop -------------------------------------------------------------------------------


def retrain(store: Any, registry: Any, spec: RetrainSpec = RetrainSpec(), *, client: Any = None,
            console: Any = None, dates: Sequence[str] | None = None, promote: bool = True,
            label: bool = True) -> RetrainReport:
    """Runs one champion/challenger retraining (module documentation) on `store`'s children
    against `registry` (a ModelRegistry or folder); returns the report, also written to
    ``<registry>/retrain/<UTC>.json|.md``. `label`: (re)label the children first;
    `promote=False` stages and reports without promoting."""
    from sor.features import FEATURE_SCHEMA
    from sor.models.export import stack_tree_models, xgboost_to_onnx
    from sor.models.onnx_trees import load_tree_model
    from sor.models.registry import MODEL_NAMES, ModelRegistry
    from sor.models.train import TARGETS, code_revision, fit_booster
    from sor.retrain.labels import label_children

    registry = registry if isinstance(registry, ModelRegistry) else ModelRegistry(registry)
    started = time.time()
    started_utc = _datetime.datetime.now(_datetime.timezone.utc)
    seconds: dict[str, float] = {}
    say = (lambda text: console.print(text)) if console is not None else (lambda text: None)
    names_in_use = set(registry.names())
    missing = [n for n in MODEL_NAMES if n not in names_in_use]
    if missing:
        raise RetrainError(f"the champion registry {registry.root} lacks {missing}: publish "
                           "the models in use first (sor train)")
    feature_settings = registry.feature_settings()
    from sor.models.dataset import settings_to_json

    settings_json = settings_to_json(feature_settings) if feature_settings is not None else None

    tick = time.time()
    if label:
        label_children(store, dates=dates, fill_horizon_s=spec.fill_horizon_s,
                       move_horizon_s=spec.move_horizon_s)
    data = labelled_columns(store, dates=dates)
    seconds["label_and_read"] = time.time() - tick
    splits = time_split(data, spec)
    rows = {"labelled": int(len(data["now_ns"])),
            **{name: _split_summary(data, mask) for name, mask in splits.items()}}
    say(f"labelled rows: {rows['labelled']} (train {rows['train']['rows']}, validation "
        f"{rows['validation']['rows']}, test {rows['test']['rows']})")

    champion_bytes = {name: registry.onnx_bytes(name) for name in registry.names()}
    challenger_bytes = dict(champion_bytes)
    models: dict[str, dict[str, Any]] = {}
    staged: dict[str, int] = {}
    tick = time.time()
    for target in TARGETS:
        mask = _target_mask(target, data)
        tr, va, te = (mask & splits[s] for s in ("train", "validation", "test"))
        counts = {"train": int(tr.sum()), "validation": int(va.sum()), "test": int(te.sum())}
        champion_entry = registry.entry(target.name)
        record: dict[str, Any] = {"rows": counts, "champion_version": champion_entry.version}
        models[target.name] = record
        if counts["train"] < spec.min_train_rows or counts["validation"] < spec.min_eval_rows \
                or counts["test"] < spec.min_eval_rows:
            record["challenger"] = None
            record["note"] = (f"too few rows (train {counts['train']} < {spec.min_train_rows} "
                              f"or validation/test < {spec.min_eval_rows}): champion kept")
            say(f"{target.name}: {record['note']}")
            continue
        train_y = np.asarray(data[target.label][tr], dtype=np.float32)
        train_x, valid_x, test_x = _matrix(data, tr), _matrix(data, va), _matrix(data, te)
        champion_model = registry.load(target.name)
        margin = None
        if spec.warm_start:
            # boost on from the champion: its margin is each row's starting score
            margin = {split: champion_margin(champion_model, target.kind, x)
                      for split, x in (("train", train_x), ("validation", valid_x),
                                       ("test", test_x))}
        valid_y = np.asarray(data[target.label][va], dtype=np.float32)
        booster, trees = fit_booster(target.kind, train_x, train_y, valid_x, valid_y,
                                     spec.boosting, client=client)
        starts = {"cold": _validation_loss(target.kind, booster, valid_x, valid_y, None)}
        if margin is not None:
            # boosting on cannot rescue a champion that is confidently wrong (its logits sit
            # where the gradients vanish): keep whichever start validates better
            warm, warm_trees = fit_booster(target.kind, train_x, train_y, valid_x, valid_y,
                                           spec.boosting, client=client,
                                           base_margin=(margin["train"], margin["validation"]))
            starts["warm"] = _validation_loss(target.kind, warm, valid_x, valid_y,
                                              margin["validation"])
            if starts["warm"] <= starts["cold"]:
                booster, trees = warm, warm_trees
            else:
                margin = None
        test_y = np.asarray(data[target.label][te], dtype=np.float64)
        reference = test_x[np.linspace(0, len(test_x) - 1, min(256, len(test_x))).astype(int)]
        metadata = {"sor.model_name": target.name, "sor.model_kind": target.kind,
                    "sor.label": target.label}
        onnx_bytes = xgboost_to_onnx(booster, feature_count=FEATURE_SCHEMA.size,
                                     schema_hash=FEATURE_SCHEMA.version_hash, metadata=metadata)
        if margin is not None:
            onnx_bytes = stack_tree_models(
                registry.onnx_bytes(target.name), onnx_bytes,
                metadata={**metadata, "sor.warm_start_from":
                          f"{target.name} v{champion_entry.version}"})
        loaded = load_tree_model(onnx_bytes, expected_schema_hash=FEATURE_SCHEMA.version_hash,
                                 feature_names=FEATURE_SCHEMA.names, reference_rows=reference)
        native = np.asarray(booster.inplace_predict(
            test_x, base_margin=None if margin is None else margin["test"]), dtype=np.float64)
        challenger_predictions = loaded.predict(test_x)
        export_gap = float(np.max(np.abs(native - challenger_predictions)))
        challenger_metrics = _metrics(target, challenger_predictions, test_y, train_y, data, te)
        champion_metrics = _metrics(target, champion_model.predict(test_x), test_y, train_y,
                                    data, te)
        card = {
            "kind": target.kind, "description": target.description,
            "label": {"column": target.label, "unit": target.unit},
            "feature_schema": {"name": "sor.features", "hash": FEATURE_SCHEMA.version_hash,
                               "size": FEATURE_SCHEMA.size},
            "trees": {"count": int(loaded.tree_count), "max_depth": spec.boosting.max_depth},
            "warm_start": ({"champion_version": champion_entry.version,
                            "champion_trees": int(champion_model.tree_count),
                            "added_trees": int(trees)} if margin is not None else None),
            "boosting": asdict(spec.boosting),
            "data": {"source": "live children (store 'labelled')",
                     "labels": {"fill_horizon_s": spec.fill_horizon_s,
                                "move_horizon_s": spec.move_horizon_s},
                     "train": _split_summary(data, tr),
                     "validation": _split_summary(data, va),
                     "test": _split_summary(data, te)},
            "metrics_test": challenger_metrics,
            "champion": {"name": target.name, "version": champion_entry.version,
                         "loss_name": champion_metrics["loss_name"],
                         "loss": champion_metrics["loss"], "metrics_test": champion_metrics},
            "parity": {"onnxruntime_max_abs_diff": loaded.parity.max_abs_difference,
                       "onnxruntime_rows": loaded.parity.rows,
                       "xgboost_max_abs_diff": export_gap},
            "code": code_revision(),
            "software": {"python": platform.python_version()},
            "reproduce": "sor retrain",
            "dask": client is not None,
        }
        if settings_json is not None:
            card["feature_settings"] = settings_json
        try:
            card["data"]["adv_shares"] = registry.card(target.name)["data"]["adv_shares"]
        except (KeyError, TypeError):
            pass
        entry = registry.stage(target.name, onnx_bytes, card, render_challenger_card,
                               reference)
        staged[target.name] = int(entry.version)
        challenger_bytes[target.name] = onnx_bytes
        record.update({"challenger_version": int(entry.version), "trees": int(trees),
                       "warm_start": margin is not None,
                       "validation_loss_by_start": {k: float(v) for k, v in starts.items()},
                       "challenger": _headline(challenger_metrics),
                       "champion": _headline(champion_metrics),
                       "loss_name": challenger_metrics["loss_name"],
                       "loss_change": _relative(challenger_metrics["loss"],
                                                champion_metrics["loss"])})
        say(f"{target.name}: challenger v{entry.version} ({trees} trees) "
            f"{challenger_metrics['loss_name']} {challenger_metrics['loss']:.5f} vs champion "
            f"v{champion_entry.version} {champion_metrics['loss']:.5f}")
    seconds["supervised"] = time.time() - tick

    rl_record: dict[str, Any] | None = None
    if spec.rl is not None:
        tick = time.time()
        from sor.rl.train import render_rl_card, train_rl_model

        result = train_rl_model(spec.rl, console=console, client=client,
                                models={k: v for k, v in challenger_bytes.items()
                                        if k != "action_value"})
        card = dict(result.card, reproduce="sor retrain")
        if settings_json is not None:
            card["feature_settings"] = settings_json
        entry = registry.stage("action_value", result.onnx_bytes, card, render_rl_card,
                               result.reference_rows)
        staged["action_value"] = int(entry.version)
        challenger_bytes["action_value"] = result.onnx_bytes
        rl_record = {"challenger_version": int(entry.version),
                     "champion_version": (registry.entry("action_value").version
                                          if "action_value" in names_in_use else None),
                     "validation_mean_is_bps":
                         card["metrics_test"]["validation_mean_is_bps"]}
        models["action_value"] = rl_record
        seconds["rl"] = time.time() - tick
        say(f"action_value: challenger v{entry.version}, validation IS "
            f"{rl_record['validation_mean_is_bps']:.3f} bps")

    tick = time.time()
    backtest = held_out_backtests(champion_bytes, challenger_bytes, spec, client=client,
                                  rl=spec.rl is not None and "action_value" in champion_bytes)
    seconds["backtests"] = time.time() - tick

    changed = {name: version for name, version in staged.items()}
    decision, reason, to_promote = decide(models, backtest, spec, changed)
    promoted: dict[str, int] = {}
    history_record = None
    if decision == "promote" and not promote:
        decision, reason = "kept", reason + " (not promoted: --no-promote)"
    if decision == "promote":
        history_record = registry.promote(to_promote, operator=OPERATOR, reason=reason)
        promoted = dict(to_promote)
        decision = "promoted"
    say(f"decision: {decision}: {reason}")
    seconds["total"] = time.time() - started
    workers = 0
    if client is not None:
        from sor.scale import worker_count

        workers = worker_count(client)
    report = RetrainReport(started_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), decision, reason, rows,
                           models, backtest, staged, promoted, history_record, spec.to_json(),
                           {k: round(v, 2) for k, v in seconds.items()}, workers)
    report.paths = write_report(report, registry.root, started_utc)
    return report


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("rows", "loss_name", "loss", "auc", "brier", "brier_base_rate", "log_loss",
            "expected_calibration_error", "positive_rate", "rmse", "mae", "r2", "label_mean")
    out = {k: metrics[k] for k in keys if k in metrics}
    if "baselines" in metrics:
        out["baselines_rmse"] = {k: v["rmse"] for k, v in metrics["baselines"].items()}
    return out


def _relative(challenger: float, champion: float) -> float:
    """Returns (challenger - champion) / champion (> 0: the challenger's loss is higher)."""
    if not (math.isfinite(challenger) and math.isfinite(champion)) or champion <= 0:
        return math.nan if challenger != champion else 0.0
    return (challenger - champion) / champion


def held_out_backtests(champion: Mapping[str, bytes], challenger: Mapping[str, bytes],
                       spec: RetrainSpec, *, client: Any = None, rl: bool = False
                       ) -> dict[str, Any]:
    """Runs the champion and the challenger models on the spec's regimes and held-out seeds
    (policy ml_router, and rl when `rl`), paired by (policy, regime, seed); returns per policy
    the mean IS of each, the mean paired improvement (champion IS - challenger IS, > 0: the
    challenger is cheaper), its standard error, the wins and the rows."""
    from sor.backtest.runner import PolicyChoice, run_grid

    policies = [PolicyChoice("ml_router")] + ([PolicyChoice("rl")] if rl else [])
    grids = {}
    for side, models in (("champion", champion), ("challenger", challenger)):
        grids[side] = run_grid(policies, spec.regimes, spec.seeds, spec=spec.episode,
                               workers=1 if client is None else 2, models=dict(models),
                               client=client)
    out: dict[str, Any] = {"regimes": list(spec.regimes), "seeds": list(spec.seeds),
                           "episode": json.loads(json.dumps(asdict(spec.episode))),
                           "policies": {}}
    for choice in policies:
        def index(rows: list[dict[str, Any]]) -> dict[tuple[str, int], float]:
            return {(r["regime"], int(r["seed"])): float(r["is_bps"]) for r in rows
                    if r["policy"] == choice.key}

        a, b = index(grids["champion"]), index(grids["challenger"])
        keys = sorted(set(a) & set(b))
        gains = np.array([a[k] - b[k] for k in keys], dtype=np.float64)
        n = len(gains)
        per_regime = {}
        for regime in spec.regimes:
            g = np.array([a[k] - b[k] for k in keys if k[0] == regime])
            per_regime[regime] = {"pairs": int(len(g)),
                                  "champion_is_bps": float(np.mean([a[k] for k in keys
                                                                    if k[0] == regime])),
                                  "challenger_is_bps": float(np.mean([b[k] for k in keys
                                                                      if k[0] == regime])),
                                  "mean_improvement_bps": float(g.mean()) if len(g) else
                                  math.nan}
        out["policies"][choice.key] = {
            "pairs": n,
            "champion_mean_is_bps": float(np.mean([a[k] for k in keys])),
            "challenger_mean_is_bps": float(np.mean([b[k] for k in keys])),
            "mean_improvement_bps": float(gains.mean()) if n else math.nan,
            "standard_error_bps": float(gains.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan,
            "challenger_wins": int(np.sum(gains > 0)), "ties": int(np.sum(gains == 0)),
            "by_regime": per_regime,
            "pairs_detail": [{"regime": k[0], "seed": k[1], "champion_is_bps": a[k],
                              "challenger_is_bps": b[k]} for k in keys],
        }
    return out


def _validation_loss(kind: str, booster: Any, rows: np.ndarray, labels: np.ndarray,
                     margin: np.ndarray | None) -> float:
    """Returns a fitted booster's validation loss: Brier (classifier) or RMSE (regressor)."""
    predictions = np.asarray(booster.inplace_predict(rows, base_margin=margin),
                             dtype=np.float64)
    error = predictions - np.asarray(labels, dtype=np.float64)
    return float(np.mean(error ** 2)) if kind == "classifier" else \
        float(np.sqrt(np.mean(error ** 2)))


def champion_margin(model: Any, kind: str, rows: np.ndarray) -> np.ndarray:
    """Returns the champion's raw score of each row, the starting score a warm-started
    challenger boosts on from: the logit of its probability (classifier) or its prediction
    (regressor). The logit of a float32 probability carries its rounding (about 1e-7 relative,
    up to ~5e-5 in probability after the stacked model's own rounding; measured)."""
    predictions = np.asarray(model.predict(rows), dtype=np.float64)
    if kind == "classifier":
        p = np.clip(predictions, 1e-7, 1 - 1e-7)
        return np.log(p / (1 - p)).astype(np.float32)
    return predictions.astype(np.float32)


def decide(models: dict[str, dict[str, Any]], backtest: dict[str, Any], spec: RetrainSpec,
           changed: Mapping[str, int]) -> tuple[str, str, dict[str, int]]:
    """Returns ("promote" or "kept", the reason with the figures, the versions to promote)
    by the spec's rule: the supervised challengers go in together when some model's held-out
    loss fell by ``min_loss_improvement``, none rose by more than ``metric_tolerance`` and
    ml_router's held-out backtest gain is ``>= min_improvement_bps``; the RL challenger goes in
    when, besides, the rl policy's gain is ``>= min_rl_improvement_bps`` (else it alone stays
    out)."""
    if not changed:
        return "kept", "no challenger was trained (too few rows for every model)", {}
    ml = backtest["policies"]["ml_router"]
    gain = ml["mean_improvement_bps"]
    figures = (f"ml_router held-out IS champion {ml['champion_mean_is_bps']:.3f} bps, "
               f"challenger {ml['challenger_mean_is_bps']:.3f} bps, mean paired improvement "
               f"{gain:+.3f} bps (s.e. {ml['standard_error_bps']:.3f}, {ml['challenger_wins']}"
               f"/{ml['pairs']} pairs won)")
    worse = []
    best_change = math.inf
    for name, record in models.items():
        if name == "action_value" or record.get("challenger") is None:
            continue
        change = record["loss_change"]
        if math.isfinite(change):
            best_change = min(best_change, change)
        if math.isfinite(change) and change > spec.metric_tolerance:
            worse.append(f"{name} held-out {record['loss_name']} "
                         f"{record['challenger']['loss']:.5f} vs champion "
                         f"{record['champion']['loss']:.5f} ({change:+.1%} > "
                         f"{spec.metric_tolerance:.0%} tolerance)")
    supervised = {n: v for n, v in changed.items() if n != "action_value"}
    if supervised and not best_change <= -spec.min_loss_improvement:
        worse.append(f"no held-out loss fell by {spec.min_loss_improvement:.1%} (best change "
                     f"{best_change:+.2%})")
    if not (math.isfinite(gain) and gain >= spec.min_improvement_bps):
        worse.insert(0, f"improvement {gain:+.3f} bps < {spec.min_improvement_bps:g} bps "
                        "required")
    promote = dict(changed)
    rl_note = ""
    if "action_value" in changed:
        rl = backtest["policies"].get("rl")
        if rl is not None:
            figures += (f"; rl champion {rl['champion_mean_is_bps']:.3f}, challenger "
                        f"{rl['challenger_mean_is_bps']:.3f} bps "
                        f"({rl['mean_improvement_bps']:+.3f})")
            if not rl["mean_improvement_bps"] >= spec.min_rl_improvement_bps:
                promote.pop("action_value")
                rl_note = (f"action_value kept: rl policy held-out improvement "
                           f"{rl['mean_improvement_bps']:+.3f} bps < "
                           f"{spec.min_rl_improvement_bps:g}; ")
    if not supervised:
        worse = [] if "action_value" in promote else worse
    if worse:
        return ("kept", "challenger kept out: " + "; ".join(worse) + "; " + rl_note + figures,
                {})
    if not promote:
        return "kept", "challenger kept out: " + rl_note + figures, {}
    return "promote", (f"challenger promoted ({', '.join(sorted(promote))}): improvement "
                       f"{gain:+.3f} bps >= {spec.min_improvement_bps:g} bps, best held-out "
                       f"loss change {best_change:+.2%}, none worse than "
                       f"{spec.metric_tolerance:.0%}; " + rl_note + figures), promote


def write_report(report: RetrainReport, registry_root: Path, started: Any) -> dict[str, str]:
    """Writes the report as ``<registry>/retrain/<UTC>.json`` and ``.md``; returns the paths."""
    folder = Path(registry_root) / "retrain"
    folder.mkdir(parents=True, exist_ok=True)
    stem = started.strftime("%Y%m%dT%H%M%S") + f"{started.microsecond:06d}Z"
    paths = {"json": str(folder / f"{stem}.json"), "markdown": str(folder / f"{stem}.md")}
    report.paths = paths
    data = report.to_json()
    for kind, text in (("json", json.dumps(data, indent=2, sort_keys=True) + "\n"),
                       ("markdown", render_report(data))):
        path = Path(paths[kind])
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return paths


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def comparison_rows(data: dict[str, Any]) -> list[tuple[str, ...]]:
    """Returns the comparison table (model, metric, champion, challenger, change) of a
    report's JSON: the change of each model's held-out loss (> 0: the challenger's is
    higher), and per backtest policy the paired gain (champion IS - challenger IS, > 0: the
    challenger is cheaper)."""
    rows = []
    for name, record in data["models"].items():
        if name == "action_value":
            rows.append((f"action_value v{record.get('champion_version')} -> "
                         f"v{record['challenger_version']}", "RL validation IS bps", "",
                         _fmt(record["validation_mean_is_bps"], 3), ""))
            continue
        if record.get("challenger") is None:
            rows.append((name, "", "", "", record.get("note", "")))
            continue
        champion, challenger = record["champion"], record["challenger"]
        label = f"{name} v{record['champion_version']} -> v{record['challenger_version']}"
        metrics = ("brier", "auc", "log_loss") if "auc" in challenger else ("rmse", "mae", "r2")
        for k, metric in enumerate(metrics):
            change = record["loss_change"] if k == 0 else None
            rows.append((label if k == 0 else "", metric, _fmt(champion.get(metric)),
                         _fmt(challenger.get(metric)),
                         f"{change:+.1%}" if isinstance(change, float) else ""))
    for policy, result in data["backtest"]["policies"].items():
        rows.append((f"backtest {policy}", f"mean IS bps ({result['pairs']} pairs)",
                     _fmt(result["champion_mean_is_bps"], 3),
                     _fmt(result["challenger_mean_is_bps"], 3),
                     f"paired gain {_fmt(result['mean_improvement_bps'], 3)} bps "
                     f"(s.e. {_fmt(result['standard_error_bps'], 3)})"))
    return rows


def render_report(data: dict[str, Any]) -> str:
    """Returns the report JSON as Markdown."""
    rows = data["rows"]
    lines = [f"# Retraining {data['started_utc']}: {data['decision']}", "", data["reason"], "",
             f"- labelled rows {rows['labelled']}: train {rows['train']['rows']}, validation "
             f"{rows['validation']['rows']}, test {rows['test']['rows']} (split by market time)",
             f"- held-out backtests: regimes {', '.join(data['backtest']['regimes'])}, seeds "
             f"{data['backtest']['seeds']}",
             f"- staged {data['staged']}; promoted {data['promoted'] or 'nothing'}",
             f"- Dask workers {data['dask_workers'] or 'none (local)'}; seconds "
             f"{data['seconds']}", "",
             "| model | metric | champion | challenger | change |",
             "| --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(row) + " |" for row in comparison_rows(data)]
    lines.append("")
    return "\n".join(lines)


__all__ = ["RetrainSpec", "RetrainReport", "retrain", "held_out_backtests", "decide",
           "time_split", "labelled_columns", "render_report", "comparison_rows", "OPERATOR"]
