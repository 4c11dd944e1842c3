"""The model benchmark report: structure on a tiny run (never times)."""

from __future__ import annotations

import json

import pytest

from sor import _core
from sor.bench.model import format_report
from sor.cli import main

TINY = ["--trees", "4", "--trees", "9", "--depth", "3", "--features", "6", "--rows", "32",
        "--train-rows", "600", "--calls", "200", "--python-calls", "50", "--warmup", "10"]


def test_model_bench_report_structure(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    out = tmp_path / "model.json"
    assert main(["bench", "model", "--json", "--out", str(out), *TINY]) == 0
    report = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == report
    assert report["benchmark"] == "model" and set(report["models"]) == {"4", "9"}
    assert report["setup"]["row_pool"] == 32 and report["targets"]["vs_tl2cgen"] == 2.5
    for count, result in report["models"].items():
        assert result["trees"] == int(count) and result["parity"]["max_abs_difference"] <= 1e-5
        assert {"p50_ns", "p99_ns", "p999_ns", "simd_path"} <= set(result["sor"])
        assert result["sor"]["calls"] == 200
        assert set(result["peers"]) == {"onnxruntime", "xgboost", "tl2cgen"}
        for peer in result["peers"].values():
            if "skipped" in peer:
                continue
            assert {"p50_ns", "p99_ns", "p999_ns", "p50_ratio", "max_abs_difference_vs_sor"} <= set(peer)
            assert peer["max_abs_difference_vs_sor"] <= 1e-5
    assert ("feature_update" in report) == hasattr(_core, "bench_feature_update")
    text = format_report(report)
    assert "onnxruntime" in text and "p99.9" in text


def test_model_bench_without_peers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "model", "--json", "--no-peers", *TINY[:2], *TINY[4:]]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["models"]) == ["4"] and report["models"]["4"]["peers"] == {}
