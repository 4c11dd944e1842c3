"""Held-out metrics of the supervised models: AUC, Brier score and calibration for the
classifier, RMSE against baselines for the regressors. Plain numpy, so the numbers in a model
card can be recomputed by anyone from the Parquet dataset."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Returns the area under the ROC curve (the probability that a random positive scores
    above a random negative, ties counting one half); NaN when one class is absent."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(scores)]))
    average = (starts + ends - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


def brier_score(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Returns the mean squared difference between the probability and the 0/1 outcome."""
    labels = np.asarray(labels, dtype=np.float64)
    return float(np.mean((np.asarray(probabilities, dtype=np.float64) - labels) ** 2))


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Returns the mean negative log-likelihood (probabilities clipped to [1e-12, 1-1e-12])."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1 - 1e-12)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def calibration_curve(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
                      ) -> list[dict[str, float]]:
    """Returns, per equal-width probability bin with rows in it, the mean predicted
    probability, the observed frequency and the row count."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    index = np.minimum((p * bins).astype(int), bins - 1)
    curve = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            curve.append({"bin_low": b / bins, "bin_high": (b + 1) / bins,
                          "mean_predicted": float(p[mask].mean()),
                          "observed": float(y[mask].mean()), "count": int(mask.sum())})
    return curve


def expected_calibration_error(curve: list[dict[str, float]]) -> float:
    """Returns the row-weighted mean |predicted - observed| over the calibration bins."""
    total = sum(c["count"] for c in curve)
    return float(sum(c["count"] * abs(c["mean_predicted"] - c["observed"]) for c in curve)
                 / max(total, 1))


def classifier_metrics(labels: np.ndarray, probabilities: np.ndarray,
                       base_rate: float) -> dict[str, Any]:
    """Returns AUC, Brier (and the Brier of always predicting the training base rate), log
    loss, the calibration curve and its expected calibration error."""
    curve = calibration_curve(labels, probabilities)
    return {
        "rows": int(len(labels)),
        "positive_rate": float(np.mean(labels)),
        "auc": roc_auc(labels, probabilities),
        "brier": brier_score(labels, probabilities),
        "brier_base_rate": brier_score(labels, np.full(len(labels), base_rate)),
        "log_loss": log_loss(labels, probabilities),
        "expected_calibration_error": expected_calibration_error(curve),
        "calibration": curve,
    }


def regressor_metrics(labels: np.ndarray, predictions: np.ndarray,
                      baselines: dict[str, np.ndarray]) -> dict[str, Any]:
    """Returns RMSE, MAE and R^2 of the predictions and the RMSE of each named baseline on the
    same rows, with the model's RMSE improvement over each (a fraction; > 0 is better)."""
    y = np.asarray(labels, dtype=np.float64)
    f = np.asarray(predictions, dtype=np.float64)
    rmse = float(np.sqrt(np.mean((f - y) ** 2)))
    variance = float(np.var(y))
    out: dict[str, Any] = {
        "rows": int(len(y)),
        "label_mean": float(y.mean()),
        "label_std": float(y.std()),
        "rmse": rmse,
        "mae": float(np.mean(np.abs(f - y))),
        "r2": 1.0 - rmse ** 2 / variance if variance > 0 else math.nan,
        "baselines": {},
    }
    for name, values in baselines.items():
        b_rmse = float(np.sqrt(np.mean((np.asarray(values, dtype=np.float64) - y) ** 2)))
        out["baselines"][name] = {"rmse": b_rmse,
                                  "rmse_improvement": 1.0 - rmse / b_rmse if b_rmse > 0 else 0.0}
    return out
