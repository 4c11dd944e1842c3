"""Fitted Q-iteration on a small decision problem whose values are known by hand."""

import numpy as np
import pytest

from sor.errors import UsageError
from sor.rl.fqi import FqiSpec, Transitions, fitted_q_iteration, max_next_value

F = 52


def _row(step: int, action: int) -> np.ndarray:
    row = np.zeros(F, dtype=np.float32)
    row[2] = step        # order.time_remaining_fraction stands in for the step
    row[5] = action      # child.order_type stands in for the action
    return row


def _chain(copies: int = 40) -> Transitions:
    # step 0: action 0 pays -1 and leads to step 1, action 1 pays -2 and ends.
    # step 1: action 0 pays 0, action 1 pays -5; both end.
    rows, rewards, nxt, feasible, done = [], [], [], [], []
    step1 = np.stack([_row(1, 0), _row(1, 1)])
    blank = np.zeros((2, F), dtype=np.float32)
    for _ in range(copies):
        rows.append(_row(0, 0)); rewards.append(-1.0); nxt.append(step1)
        feasible.append([True, True]); done.append(False)
        rows.append(_row(0, 1)); rewards.append(-2.0); nxt.append(blank)
        feasible.append([False, False]); done.append(True)
        rows.append(_row(1, 0)); rewards.append(0.0); nxt.append(blank)
        feasible.append([False, False]); done.append(True)
        rows.append(_row(1, 1)); rewards.append(-5.0); nxt.append(blank)
        feasible.append([False, False]); done.append(True)
    return Transitions(np.array(rows), np.array(rewards), np.array(nxt),
                       np.array(feasible), np.array(done))


def test_fqi_recovers_the_values_of_a_two_step_chain():
    data = _chain()
    spec = FqiSpec(iterations=3, rounds=60, max_depth=3, learning_rate=0.3, min_child_weight=1,
                   subsample=1.0)
    booster, history = fitted_q_iteration(data, spec)
    q = booster.inplace_predict(np.stack([_row(0, 0), _row(0, 1), _row(1, 0), _row(1, 1)]))
    # Q(s0, a0) = -1 + max(0, -5) = -1; Q(s0, a1) = -2; Q(s1, a0) = 0; Q(s1, a1) = -5
    np.testing.assert_allclose(q, [-1.0, -2.0, 0.0, -5.0], atol=0.05)
    assert len(history) == 3 and history[-1]["bellman_rmse"] < 0.05


def test_infeasible_and_terminal_next_actions_count_for_nothing():
    data = _chain(2)
    booster, _ = fitted_q_iteration(data, FqiSpec(iterations=1, rounds=5, subsample=1.0,
                                                  min_child_weight=1))
    values = max_next_value(booster, data)
    assert np.all(values[data.done] == 0)


def test_refuses_empty_or_ragged_data():
    with pytest.raises(UsageError, match="differ in length"):
        Transitions(np.zeros((2, F)), np.zeros(3), np.zeros((2, 1, F)), np.zeros((2, 1), bool),
                    np.zeros(2, bool))
    with pytest.raises(UsageError, match="invalid FQI spec"):
        FqiSpec(gamma=0)
