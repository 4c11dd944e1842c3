"""`sor train`: simulated probe days -> Parquet -> three XGBoost models -> ONNX -> registry.

The three models share the one feature schema (``sor.features.FEATURE_SCHEMA``):

- ``fill_probability`` (classifier): the probability that a candidate child (venue, order
  type, price, size) is filled in full within its horizon (at once for an IOC take, within
  ``fill_horizon_s`` for post-only and midpoint children).
- ``adverse_move`` (regressor): the NBBO mid move over ``move_horizon_s`` after the decision,
  in bps, signed so > 0 is against the child's side.
- ``market_impact`` (regressor): the same move after one of our takes filled, i.e. the realised
  impact of a take of that size; compared with the square-root law fitted on the same rows.

Data split by seed: train seeds fit the trees, validation seeds stop the boosting, test seeds
(never seen before) give the metrics in the model cards. The feature profile of the training
rows (``sor.monitor.FeatureProfile``: decile bins and fractions per feature, the reference of
the drift guard) is published into the registry with the models. Everything is seeded and single-
configuration (fixed thread count), so the same command reproduces the same ONNX bytes.
"""

from __future__ import annotations

import math
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from sor.errors import UsageError
from sor.features import FEATURE_SCHEMA
from sor.models import metrics as m
from sor.models.dataset import DatasetSpec, build_dataset, read_dataset, settings_to_json
from sor.models.registry import ModelRegistry

_SQRT_DAY_OVER_30M = math.sqrt(6.5 * 60 / 30)  # 30-minute to one-day volatility


@dataclass(frozen=True)
class BoostingSpec:
    """XGBoost hyperparameters shared by the three models."""

    max_rounds: int = 300
    max_depth: int = 6
    learning_rate: float = 0.08
    subsample: float = 0.8
    colsample_bytree: float = 0.8
    min_child_weight: float = 20.0
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 30
    threads: int = 2
    random_state: int = 7


@dataclass(frozen=True)
class TrainSpec:
    """What `sor train` builds: the dataset days and the boosting settings."""

    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    boosting: BoostingSpec = field(default_factory=BoostingSpec)


@dataclass(frozen=True)
class Target:
    """One model: its label, the rows it learns from and what it means."""

    name: str
    kind: str            # "classifier" or "regressor"
    label: str
    description: str
    unit: str

    def rows(self, data: dict[str, np.ndarray]) -> np.ndarray:
        """Returns the mask of dataset rows this model learns from."""
        label = data[self.label].astype(np.float64)
        mask = np.isfinite(label)
        if self.name == "market_impact":
            mask &= (data["order_type"] == 0) & (data["filled_quantity"] > 0)
        return mask


TARGETS = (
    Target("fill_probability", "classifier", "filled",
           "Probability that the candidate child is filled in full within its horizon (IOC: "
           "at once; post-only and midpoint: within the fill horizon).", "probability"),
    Target("adverse_move", "regressor", "adverse_move_bps",
           "Expected NBBO mid move over the move horizon after the decision, bps of the mid, "
           "> 0 against the child's side.", "bps"),
    Target("market_impact", "regressor", "impact_bps",
           "Expected NBBO mid move over the move horizon after one of our takes of this size "
           "fills, bps, > 0 against us (realised impact of the take).", "bps"),
)


def code_revision() -> dict[str, Any]:
    """Returns the git commit of the source tree (and whether it had local changes), or the
    package version when not run from a checkout."""
    import sor

    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--",
                                "python", "cpp", "pyproject.toml", "CMakeLists.txt"],
                               check=True, capture_output=True, text=True,
                               timeout=10).stdout.strip() != ""
        return {"git_commit": commit, "dirty": dirty, "package_version": sor.__version__}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None, "dirty": None, "package_version": sor.__version__}


def _matrix(data: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    return np.column_stack([data[name][mask] for name in FEATURE_SCHEMA.names]).astype(np.float32)


def sqrt_law_baseline(data: dict[str, np.ndarray], mask: np.ndarray, coefficient: float
                      ) -> np.ndarray:
    """Returns the square-root-law impact ``Y * sigma_day * sqrt(Q / ADV)`` in bps for the
    rows in ``mask``: sigma_day from the 30-minute realised volatility, Q the filled shares."""
    sigma_day = data["vol.realized_30m_bps"][mask].astype(np.float64) * _SQRT_DAY_OVER_30M
    participation = data["filled_quantity"][mask] / data["adv_shares"][mask]
    return coefficient * sigma_day * np.sqrt(participation)


def fit_sqrt_law(data: dict[str, np.ndarray], mask: np.ndarray) -> float:
    """Returns the least-squares ``Y`` of the square-root law on the rows in ``mask``."""
    x = sqrt_law_baseline(data, mask, 1.0)
    y = data["impact_bps"][mask].astype(np.float64)
    denominator = float(np.dot(x, x))
    return float(np.dot(x, y) / denominator) if denominator > 0 else 0.0


def _params(boosting: BoostingSpec) -> dict[str, Any]:
    return dict(n_estimators=boosting.max_rounds, max_depth=boosting.max_depth,
                learning_rate=boosting.learning_rate, subsample=boosting.subsample,
                colsample_bytree=boosting.colsample_bytree,
                min_child_weight=boosting.min_child_weight, reg_lambda=boosting.reg_lambda,
                tree_method="hist", random_state=boosting.random_state,
                early_stopping_rounds=boosting.early_stopping_rounds)


def _check_kind(kind: str) -> None:
    if kind not in ("classifier", "regressor"):
        raise UsageError(f"kind must be 'classifier' or 'regressor', got {kind!r}")


def fit_booster(kind: str, train_x: Any, train_y: Any, valid_x: Any, valid_y: Any,
                boosting: BoostingSpec, *, client: Any = None,
                on_round: Callable[[int, int], None] | None = None,
                base_margin: tuple[Any, Any] | None = None) -> tuple[Any, int]:
    """Returns the XGBoost booster of ``kind`` ("classifier": binary logistic, "regressor":
    squared error) fitted on the train rows with early stopping on the validation rows, trimmed
    to the best validation round, and its number of trees. Without ``client`` the fit runs
    here with ``boosting.threads`` threads (bit-reproducible); with a ``distributed.Client`` it
    runs through ``xgboost.dask`` with the rows split into one partition per worker (the same
    hyperparameters; reproducible for a fixed worker count, not bit-identical to the local
    fit). ``on_round(done, max_rounds)`` follows progress (with ``client``: once, at the end).
    ``base_margin`` (train, validation): each row's starting raw score (a champion's margin:
    logit for the classifier), so the trees learn a correction to it (``sor retrain``'s warm
    start; the booster's own base score then plays no part)."""
    _check_kind(kind)
    if client is not None:
        import dask
        import dask.array as da

        partitions = _worker_count(client)

        def spread(x: Any) -> Any:
            # scatter the row blocks to the workers (not inside the task graph)
            x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
            blocks = [b for b in np.array_split(x, partitions) if len(b)] or [x]
            futures = client.scatter(blocks, hash=False)
            return da.concatenate([da.from_delayed(dask.delayed(f), shape=b.shape,
                                                   dtype=np.float32)
                                   for f, b in zip(futures, blocks)])

        margins = None if base_margin is None else (spread(base_margin[0]),
                                                     spread(base_margin[1]))
        return _fit_dask(client, kind, spread(train_x), spread(train_y), spread(valid_x),
                         spread(valid_y), boosting, on_round, margins)
    import xgboost as xgb

    class _Progress(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
            if on_round is not None:
                on_round(epoch + 1, boosting.max_rounds)
            return False

    params = dict(n_estimators=boosting.max_rounds, max_depth=boosting.max_depth,
                  learning_rate=boosting.learning_rate, subsample=boosting.subsample,
                  colsample_bytree=boosting.colsample_bytree,
                  min_child_weight=boosting.min_child_weight, reg_lambda=boosting.reg_lambda,
                  tree_method="hist", n_jobs=boosting.threads,
                  random_state=boosting.random_state,
                  early_stopping_rounds=boosting.early_stopping_rounds,
                  callbacks=[_Progress()])
    if kind == "classifier":
        model = xgb.XGBClassifier(objective="binary:logistic", eval_metric="logloss", **params)
    else:
        model = xgb.XGBRegressor(objective="reg:squarederror", eval_metric="rmse", **params)
    margins: dict[str, Any] = {}
    if base_margin is not None:
        margins = {"base_margin": np.asarray(base_margin[0], dtype=np.float32),
                   "base_margin_eval_set": [np.asarray(base_margin[1], dtype=np.float32)]}
    model.fit(train_x, train_y, eval_set=[(valid_x, valid_y)], verbose=False, **margins)
    # keep exactly the trees up to the best validation round
    best = int(model.best_iteration) + 1
    return model.get_booster()[:best], best


def _worker_count(client: Any) -> int:
    return max(1, len(client.scheduler_info().get("workers", {})))


def _fit_dask(client: Any, kind: str, train_x: Any, train_y: Any, valid_x: Any, valid_y: Any,
              boosting: BoostingSpec, on_round: Callable[[int, int], None] | None,
              base_margin: tuple[Any, Any] | None = None) -> tuple[Any, int]:
    import xgboost.dask as dxgb

    from sor.errors import ScaleOutError

    params = _params(boosting)
    if kind == "classifier":
        model = dxgb.DaskXGBClassifier(objective="binary:logistic", eval_metric="logloss",
                                       **params)
    else:
        model = dxgb.DaskXGBRegressor(objective="reg:squarederror", eval_metric="rmse",
                                      **params)
    model.client = client
    try:
        margins: dict[str, Any] = {}
        if base_margin is not None:
            margins = {"base_margin": base_margin[0], "base_margin_eval_set": [base_margin[1]]}
        model.fit(train_x, train_y, eval_set=[(valid_x, valid_y)], verbose=False, **margins)
    except (OSError, TimeoutError) as exc:
        raise ScaleOutError(f"xgboost.dask {kind} fit failed on the Dask cluster: "
                            f"{type(exc).__name__}: {exc}") from exc
    best = int(model.best_iteration) + 1
    if on_round is not None:
        on_round(int(model.get_booster().num_boosted_rounds()), boosting.max_rounds)
    return model.get_booster()[:best], best


def fit_booster_parquet(client: Any, kind: str, train_files: Sequence[str | Path],
                        valid_files: Sequence[str | Path], feature_columns: Sequence[str],
                        label: str, boosting: BoostingSpec, *,
                        row_filter: list[tuple[str, str, Any]] | None = None
                        ) -> tuple[Any, int]:
    """Returns ``fit_booster``'s (booster, trees) fitted through ``xgboost.dask`` on Parquet
    files the workers read themselves (``dask.dataframe.read_parquet``, one partition per
    file: the files must be readable from every worker): features ``feature_columns`` (as
    float32, in that order), label ``label``; rows whose label is missing are dropped, and
    ``row_filter`` (pyarrow filters, e.g. ``[("order_type", "==", 0)]``) keeps only matching
    rows."""
    import dask.dataframe as dd

    _check_kind(kind)
    if not train_files or not valid_files:
        raise UsageError("fit_booster_parquet needs at least one train and one validation file")
    columns = list(dict.fromkeys([*feature_columns, label]))

    def load(files: Sequence[str | Path]) -> tuple[Any, Any]:
        frame = dd.read_parquet([str(f) for f in files], columns=columns,
                                filters=row_filter or None)
        frame = frame.dropna(subset=[label])
        x = frame[list(feature_columns)].astype("float32").to_dask_array()
        y = frame[label].astype("float32").to_dask_array()
        return x, y

    train_x, train_y = load(train_files)
    valid_x, valid_y = load(valid_files)
    return _fit_dask(client, kind, train_x, train_y, valid_x, valid_y, boosting, None)


def train_models(spec: TrainSpec, data_dir: str | Path, models_dir: str | Path, *,
                 workers: int = 2, console: Any = None, client: Any = None
                 ) -> list[dict[str, Any]]:
    """Builds (or reuses) the dataset, trains the three models, validates them on the test
    seeds, exports each to ONNX and publishes it with its card into ``models_dir``; returns the
    cards. With a ``distributed.Client`` the fits run through ``xgboost.dask`` on its workers
    (``fit_booster``); everything else runs here."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    from sor.models.export import xgboost_to_onnx
    from sor.models.onnx_trees import load_tree_model

    started = time.time()
    registry = ModelRegistry(models_dir)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        days = spec.dataset.days()
        task = progress.add_task("simulated probe days", total=len(days))
        built = build_dataset(spec.dataset, data_dir, workers=workers,
                              on_day=lambda *_: progress.advance(task))
        paths = built.paths
        train = read_dataset(paths["train"])
        valid = read_dataset(paths["validation"])
        test = read_dataset(paths["test"])
        cards = []
        for target in TARGETS:
            tr, va, te = target.rows(train), target.rows(valid), target.rows(test)
            if tr.sum() < 200 or va.sum() < 50 or te.sum() < 50:
                raise UsageError(f"too few rows for {target.name}: train {int(tr.sum())}, "
                                 f"validation {int(va.sum())}, test {int(te.sum())}; "
                                 "simulate more days or hours")
            bar = progress.add_task(f"train {target.name}", total=spec.boosting.max_rounds)
            booster, rounds = fit_booster(
                target.kind, _matrix(train, tr), train[target.label][tr].astype(np.float32),
                _matrix(valid, va), valid[target.label][va].astype(np.float32), spec.boosting,
                client=client,
                on_round=lambda done, total, bar=bar: progress.update(bar, completed=done))
            progress.update(bar, completed=spec.boosting.max_rounds,
                            description=f"train {target.name} ({rounds} trees)")
            test_x = _matrix(test, te)
            test_y = test[target.label][te].astype(np.float64)
            card_metrics = _evaluate(target, booster, test_x, test_y, train, tr, test, te)
            reference = test_x[np.linspace(0, len(test_x) - 1, min(256, len(test_x))).astype(int)]
            metadata = {"sor.model_name": target.name, "sor.model_kind": target.kind,
                        "sor.label": target.label}
            onnx_bytes = xgboost_to_onnx(booster, feature_count=FEATURE_SCHEMA.size,
                                         schema_hash=FEATURE_SCHEMA.version_hash,
                                         metadata=metadata)
            loaded = load_tree_model(onnx_bytes, expected_schema_hash=FEATURE_SCHEMA.version_hash,
                                     feature_names=FEATURE_SCHEMA.names, reference_rows=reference)
            # the ONNX model must predict what XGBoost predicts
            native = booster.inplace_predict(test_x)
            ours = loaded.predict(test_x)
            export_gap = float(np.max(np.abs(np.asarray(native, dtype=np.float64) - ours)))
            card = _card(target, spec, rounds, card_metrics, loaded, export_gap, train, tr, valid,
                         va, test, te, started)
            card["feature_settings"] = settings_to_json(built.settings)
            if client is not None:
                card["fit"] = {"backend": "xgboost.dask", "dask_workers": _worker_count(client)}
            card["data"]["adv_shares"] = built.adv_shares
            plot = _plot(target, card_metrics)
            entry = registry.publish(target.name, onnx_bytes, card, render_card, reference,
                                     extra_files={"png": plot} if plot else None)
            cards.append(registry.card(entry.name))
        registry.publish_feature_profile(training_profile(train, spec))
    return cards


def training_profile(train: dict[str, np.ndarray], spec: TrainSpec) -> Any:
    """Returns the feature profile (``sor.monitor.FeatureProfile``) of the training rows: every
    probe of the train seeds, every feature of the schema."""
    from sor.monitor.profile import FeatureProfile

    rows = _matrix(train, np.ones(len(train["seed"]), dtype=bool))
    source = {"split": "train", "scenarios": sorted(set(train["scenario"].tolist())),
              "seeds": sorted({int(s) for s in train["seed"].tolist()}),
              "probe": asdict(spec.dataset.probe), "reproduce": "sor train"}
    return FeatureProfile.from_rows(rows, FEATURE_SCHEMA.names, source=source)


def _evaluate(target: Target, booster: Any, test_x: np.ndarray, test_y: np.ndarray,
              train: dict[str, np.ndarray], tr: np.ndarray, test: dict[str, np.ndarray],
              te: np.ndarray) -> dict[str, Any]:
    predictions = np.asarray(booster.inplace_predict(test_x), dtype=np.float64)
    if target.kind == "classifier":
        base_rate = float(train[target.label][tr].mean())
        return m.classifier_metrics(test_y.astype(bool), predictions, base_rate)
    baselines = {"zero": np.zeros(len(test_y)),
                 "train_mean": np.full(len(test_y), float(train[target.label][tr].mean()))}
    if target.name == "market_impact":
        coefficient = fit_sqrt_law(train, tr)
        baselines["square_root_law"] = sqrt_law_baseline(test, te, coefficient)
        out = m.regressor_metrics(test_y, predictions, baselines)
        out["square_root_law_coefficient"] = coefficient
        return out
    return m.regressor_metrics(test_y, predictions, baselines)


def _split_summary(data: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, Any]:
    scenarios = data["scenario"][mask]
    return {"rows": int(mask.sum()),
            "scenarios": sorted(set(scenarios.tolist())),
            "seeds": sorted({int(s) for s in data["seed"][mask].tolist()})}


def _card(target: Target, spec: TrainSpec, rounds: int, metrics: dict[str, Any], loaded: Any,
          export_gap: float, train: dict[str, np.ndarray], tr: np.ndarray,
          valid: dict[str, np.ndarray], va: np.ndarray, test: dict[str, np.ndarray],
          te: np.ndarray, started: float) -> dict[str, Any]:
    import onnxmltools
    import xgboost

    return {
        "kind": target.kind,
        "description": target.description,
        "label": {"column": target.label, "unit": target.unit},
        "feature_schema": {"name": "sor.features", "hash": FEATURE_SCHEMA.version_hash,
                           "size": FEATURE_SCHEMA.size},
        "trees": {"count": rounds, "max_depth": spec.boosting.max_depth},
        "boosting": asdict(spec.boosting),
        "data": {
            "probe": asdict(spec.dataset.probe),
            "scenarios": list(spec.dataset.scenarios),
            "train": _split_summary(train, tr),
            "validation": _split_summary(valid, va),
            "test": _split_summary(test, te),
        },
        "metrics_test": metrics,
        "parity": {"onnxruntime_max_abs_diff": loaded.parity.max_abs_difference,
                   "onnxruntime_rows": loaded.parity.rows,
                   "xgboost_max_abs_diff": export_gap},
        "code": code_revision(),
        "software": {"xgboost": xgboost.__version__, "onnxmltools": onnxmltools.__version__,
                     "python": platform.python_version()},
        "reproduce": "sor train",
        "training_seconds": round(time.time() - started, 1),
    }


def render_card(card: dict[str, Any]) -> str:
    """Returns the model card as Markdown."""
    metrics = card["metrics_test"]
    lines = [f"# Model card: {card['name']} v{card['version']}", "",
             card["description"], "",
             f"- kind: {card['kind']}; label `{card['label']['column']}` ({card['label']['unit']})",
             f"- feature schema `{card['feature_schema']['name']}` hash "
             f"`{card['feature_schema']['hash']}` ({card['feature_schema']['size']} features)",
             f"- trees: {card['trees']['count']} of depth <= {card['trees']['max_depth']}",
             f"- ONNX SHA-256 `{card['onnx_sha256']}`",
             f"- code: `{card['code']['git_commit']}`"
             f"{' (with local changes)' if card['code']['dirty'] else ''}; "
             f"reproduce with `{card['reproduce']}`",
             "", "## Data", ""]
    for split in ("train", "validation", "test"):
        s = card["data"][split]
        lines.append(f"- {split}: {s['rows']} rows, seeds {s['seeds']}, scenarios "
                     f"{', '.join(s['scenarios'])}")
    lines += ["", "## Held-out metrics (test seeds)", ""]
    if card["kind"] == "classifier":
        lines += [f"- AUC {metrics['auc']:.4f}",
                  f"- Brier {metrics['brier']:.4f} (base rate {metrics['brier_base_rate']:.4f})",
                  f"- log loss {metrics['log_loss']:.4f}",
                  f"- expected calibration error {metrics['expected_calibration_error']:.4f}",
                  f"- positive rate {metrics['positive_rate']:.4f} over {metrics['rows']} rows",
                  "", "| predicted | observed | rows |", "| --- | --- | --- |"]
        lines += [f"| {c['mean_predicted']:.3f} | {c['observed']:.3f} | {c['count']} |"
                  for c in metrics["calibration"]]
    else:
        lines += [f"- RMSE {metrics['rmse']:.4f} bps, MAE {metrics['mae']:.4f}, "
                  f"R^2 {metrics['r2']:.4f} over {metrics['rows']} rows",
                  "", "| baseline | RMSE | model's improvement |", "| --- | --- | --- |"]
        lines += [f"| {name} | {b['rmse']:.4f} | {b['rmse_improvement']:+.2%} |"
                  for name, b in metrics["baselines"].items()]
        if "square_root_law_coefficient" in metrics:
            lines += ["", f"Square-root law `Y * sigma_day * sqrt(Q/ADV)` fitted on the training "
                          f"rows: Y = {metrics['square_root_law_coefficient']:.4f}."]
    parity = card["parity"]
    lines += ["", "## Parity", "",
              f"- C++ evaluator vs onnxruntime: max |diff| {parity['onnxruntime_max_abs_diff']:.2e}"
              f" on {parity['onnxruntime_rows']} rows",
              f"- ONNX vs XGBoost: max |diff| {parity['xgboost_max_abs_diff']:.2e}", ""]
    return "\n".join(lines)


def _plot(target: Target, metrics: dict[str, Any]) -> bytes | None:
    """Returns a PNG: the calibration curve of the classifier, nothing for regressors."""
    if target.kind != "classifier":
        return None
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = metrics["calibration"]
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    axis.plot([c["mean_predicted"] for c in curve], [c["observed"] for c in curve], marker="o",
              label=f"{target.name} (AUC {metrics['auc']:.3f})")
    axis.set_xlabel("predicted probability")
    axis.set_ylabel("observed frequency (test seeds)")
    axis.set_title("Calibration")
    axis.legend(loc="upper left")
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def parse_seeds(text: str) -> tuple[int, ...]:
    """Parses ``"101-103,105"`` into (101, 102, 103, 105)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if "-" in part:
                low, high = (int(x) for x in part.split("-", 1))
                if high < low:
                    raise ValueError
                seeds.extend(range(low, high + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise UsageError(f"bad seed list {text!r}: use e.g. 101-103,105") from None
    if not seeds:
        raise UsageError(f"empty seed list {text!r}")
    return tuple(seeds)


def summary(cards: list[dict[str, Any]]) -> str:
    """Returns one line per model with its headline held-out metric."""
    lines = []
    for card in cards:
        metrics = card["metrics_test"]
        if "validation_mean_is_bps" in metrics:
            headline = (f"greedy policy: validation IS {metrics['validation_mean_is_bps']:.3f} "
                        f"bps on seeds {metrics['validation_seeds']}")
        elif card["kind"] == "classifier":
            headline = (f"AUC {metrics['auc']:.3f}  Brier {metrics['brier']:.4f} "
                        f"(base {metrics['brier_base_rate']:.4f})")
        else:
            best = min(metrics["baselines"].items(), key=lambda kv: kv[1]["rmse"])
            headline = (f"RMSE {metrics['rmse']:.3f} bps vs {best[0]} {best[1]['rmse']:.3f} "
                        f"({best[1]['rmse_improvement']:+.1%})")
        lines.append(f"{card['name']:<17} v{card['version']:<3} {card['trees']['count']:>4} trees"
                     f"  {headline}  parity {card['parity']['onnxruntime_max_abs_diff']:.1e}")
    return "\n".join(lines)
