"""bench_feature_update runs and reports what it measured (no time is asserted)."""

from __future__ import annotations

import pytest

from sor import UsageError, _core


def test_bench_reports_percentiles_and_method():
    result = _core.bench_feature_update(20_000, 3)
    assert result["events"] == 20_000 and result["rows"] > 300
    for key in ("p50_ns", "p99_ns", "p999_ns", "build_row_p50_ns", "build_row_p99_ns",
                "build_row_p999_ns"):
        assert result[key] >= 0
    assert result["p50_ns"] <= result["p99_ns"] <= result["p999_ns"]
    assert "on_event" in result["method"] and "untimed" in result["method"]


def test_bench_needs_events():
    with pytest.raises(UsageError):
        _core.bench_feature_update(0, 1)
