"""The engine benchmark report: shape and bookkeeping on a short run (never times)."""

from __future__ import annotations

import json

import pytest

from sor.bench.engine import format_report, run
from sor.cli import main


@pytest.mark.slow
def test_engine_bench_report_has_every_mode_and_percentile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "engine", "--json", "--samples", "2000"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["results"]) == {"thread", "process"}
    for result in report["results"].values():
        assert result["samples"] == 2000 and result["timeouts"] == 0
        # every tick produced one child order, on top of the seeded sweep
        assert result["child_orders"] >= 2000 + 2000
        assert result["risk_rejects"] == 0 and result["audit_ring_refused"] >= 0
        assert {"p50_ns", "p99_ns", "p999_ns", "max_ns", "meets_p50_ns_target"} <= set(result)
    assert "process" in report["results"] and report["targets"]["p50_ns"] == 1500.0


def test_engine_bench_text_report_names_the_stages() -> None:
    report = run(samples=500, modes=["thread"])
    text = format_report(report)
    assert "thread" in text and "pass-through" in text and "p99.9" in text
