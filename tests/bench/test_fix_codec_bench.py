"""The FIX codec benchmark report: structure on a tiny run (never times)."""

from __future__ import annotations

import json

import pytest

from sor.bench.fix_codec import format_report
from sor.cli import main

TINY = ["--calls", "300", "--peer-calls", "20", "--warmup", "10", "--pool", "16"]
WORKLOADS = {"parse", "parse_and_read", "frame_and_parse", "encode"}


def test_fix_codec_bench_report_structure(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    out = tmp_path / "fix.json"
    assert main(["bench", "fix-codec", "--json", "--out", str(out), *TINY]) == 0
    report = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == report
    assert report["benchmark"] == "fix-codec" and set(report["workloads"]) == WORKLOADS
    assert 150 <= report["setup"]["execution_report_bytes_mean"] <= 260
    for workload in report["workloads"].values():
        ours, peer = workload["sor"], workload["simplefix"]
        assert ours["calls"] == 300 and peer["calls"] == 20
        assert {"p50_ns", "p99_ns", "p999_ns", "loop_ns_per_call"} <= set(ours)
        assert {"p50_ratio", "p99_ratio", "p999_ratio", "version"} <= set(peer)
        assert peer["agrees"] is True
    assert set(report["targets_met"]) == {"parse_p50_ns"}
    text = format_report(report)
    assert "simplefix" in text and "p99.9" in text and "frame_and_parse" in text


def test_fix_codec_bench_without_peers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "fix-codec", "--json", "--no-peers", *TINY]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(set(w) == {"sor"} for w in report["workloads"].values())
    assert not any(line.split()[:1] == ["simplefix"] for line in format_report(report).splitlines())
