"""`sor bench fix-path`: the report's shape on a short run (no time is asserted), and that the
router on simplefix did the same work (every parent answered by one child)."""

from __future__ import annotations

import json

import pytest

from sor.cli import main


@pytest.mark.slow
def test_fix_path_bench_report_structure(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    out = tmp_path / "fix-path.json"
    assert main(["bench", "fix-path", "--json", "--parents", "60", "--warmup", "10",
                 "--peer-parents", "30", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == json.loads(out.read_text())
    assert report["benchmark"] == "fix-path" and report["hardware"]["cpu"]
    for name, parents in (("sor", 60), ("simplefix", 30)):
        router = report["routers"][name]
        assert router["wire_to_wire"]["samples"] == parents
        assert 0 < router["in_router"]["samples"] <= parents
        # warmup + timed parents, one child each
        assert router["child_orders"] == parents + min(10, parents)
        for clock in ("in_router", "oms_send_to_child_written", "wire_to_wire"):
            r = router[clock]
            assert 0 < r["p50_us"] <= r["p99_us"] <= r["p999_us"]
    assert set(report["ratios"]) == {"in_router", "oms_send_to_child_written", "wire_to_wire"}
    assert isinstance(report["target_met"], bool)
