"""`sor bench ring` on tiny sizes: the report's keys and shape, never its times."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sor.bench import ring as ring_bench

TINY = {"samples": 2_000, "throughput_records": 50_000, "python_samples": 200,
        "python_records": 2_000, "python_batch_records": 20_000}
LATENCY_KEYS = {"p50_ns", "p99_ns", "p999_ns", "max_ns", "mean_ns", "samples",
                "round_trip_half_p50_ns", "round_trip_half_p99_ns"}


def check_side(side: dict, samples: int, records: int) -> None:
    assert LATENCY_KEYS <= side["latency"].keys()
    assert side["latency"]["samples"] == samples
    assert side["throughput"]["records"] == records
    assert side["throughput"]["throughput_per_s"] > 0
    assert isinstance(side["pinned"], bool) and side["api"]


@pytest.fixture(scope="module")
def report() -> dict:
    return ring_bench.run(**TINY)


def test_report_has_every_path_with_percentiles_and_throughput(report):
    assert report["benchmark"] == "ring" and report["record_size"] == 64
    assert report["hardware"]["cpu"] and report["hardware"]["allowed_cpus"]
    assert set(report["placement"]) == {"producer_cpu", "consumer_cpu"}
    sor = report["sor"]
    for key in ("cpp_threads", "cpp_processes"):
        check_side(sor[key], TINY["samples"], TINY["throughput_records"])
        assert sor[key]["latency"]["negative_samples"] >= 0
    check_side(sor["python_processes"], TINY["python_samples"], TINY["python_records"])
    assert sor["python_processes"]["batch_throughput"]["records"] == TINY["python_batch_records"]
    assert set(report["peers"]) == set(ring_bench.PEERS)
    for name, peer in report["peers"].items():
        if "skipped" in peer:
            assert name not in report["ratios"]
            continue
        check_side(peer, TINY["python_samples"], TINY["python_records"])
        assert set(report["ratios"][name]) == {"sor_cpp_p50", "sor_cpp_throughput",
                                               "sor_python_p50", "sor_python_throughput"}
    assert set(report["targets"]) == {"one_way_p50_ns", "throughput_per_s",
                                      "vs_multiprocessing_queue"}
    assert all(value in (True, False, None) for value in report["targets_met"].values())
    json.dumps(report, default=float)  # the --json output


def test_text_report_names_every_path(report):
    text = ring_bench.format_report(report)
    for label in ("sor ring, C++, threads", "sor ring, C++, processes",
                  "sor ring, Python, processes", "targets:"):
        assert label in text


def test_missing_peer_is_reported_as_skipped(monkeypatch):
    monkeypatch.setattr(ring_bench, "_available",
                        lambda kind: "zmq is not installed" if kind == "zmq" else None)
    monkeypatch.setattr(ring_bench, "PEERS", ("zmq",))
    report = ring_bench.run(**TINY)
    assert report["peers"] == {"zmq": {"skipped": "zmq is not installed"}}
    assert report["ratios"] == {}
    assert report["targets_met"]["vs_multiprocessing_queue_cpp_p50"] is None
    assert "zmq: skipped: zmq is not installed" in ring_bench.format_report(report)


def test_no_segments_or_queues_are_left_behind(report):
    leftovers = [p.name for p in Path("/dev/shm").iterdir() if p.name.startswith("sor-bench-")]
    assert leftovers == []


def test_cli_json_without_peers():
    out = subprocess.run([sys.executable, "-m", "sor.cli", "bench", "ring", "--json",
                          "--no-peers", "--samples", "1000", "--records", "20000",
                          "--python-samples", "100", "--python-records", "1000"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["peers"] == {} and report["sor"]["cpp_processes"]["latency"]["samples"] == 1000
    help_text = subprocess.run([sys.executable, "-m", "sor.cli", "bench", "ring", "--help"],
                               capture_output=True, text=True, timeout=60).stdout
    assert "--samples" in help_text and "sor[bench]" in help_text
