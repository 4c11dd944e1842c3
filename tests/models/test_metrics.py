"""Held-out metrics against slow, obvious definitions."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sor.models import metrics as m


def _auc_by_pairs(labels, scores):
    positives = [s for y, s in zip(labels, scores) if y]
    negatives = [s for y, s in zip(labels, scores) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0
               for p, n in itertools.product(positives, negatives))
    return wins / (len(positives) * len(negatives))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=40))
def test_auc_matches_the_pairwise_definition_with_ties(pairs):
    labels = np.array([p[0] for p in pairs])
    scores = np.array([p[1] / 5 for p in pairs])
    if labels.all() or not labels.any():
        assert math.isnan(m.roc_auc(labels, scores))
    else:
        assert m.roc_auc(labels, scores) == pytest.approx(_auc_by_pairs(labels, scores))


def test_brier_log_loss_and_calibration_by_hand():
    labels = np.array([1, 0, 1, 1])
    p = np.array([0.9, 0.2, 0.6, 0.65])
    assert m.brier_score(labels, p) == pytest.approx((0.01 + 0.04 + 0.16 + 0.1225) / 4)
    assert m.log_loss(labels, p) == pytest.approx(
        -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.65)) / 4)
    curve = m.calibration_curve(labels, p, bins=2)
    assert [c["count"] for c in curve] == [1, 3]
    assert curve[1]["observed"] == 1.0
    assert curve[1]["mean_predicted"] == pytest.approx((0.9 + 0.6 + 0.65) / 3)
    assert m.expected_calibration_error(curve) == pytest.approx(
        (1 * 0.2 + 3 * (1 - 2.15 / 3)) / 4)


def test_regressor_metrics_compare_with_each_baseline():
    y = np.array([1.0, 2.0, 3.0])
    out = m.regressor_metrics(y, y + 0.5, {"zero": np.zeros(3)})
    assert out["rmse"] == pytest.approx(0.5)
    assert out["baselines"]["zero"]["rmse"] == pytest.approx(math.sqrt(14 / 3))
    assert out["baselines"]["zero"]["rmse_improvement"] == pytest.approx(
        1 - 0.5 / math.sqrt(14 / 3))
    assert out["r2"] == pytest.approx(1 - 0.25 / np.var(y))
