"""The `sor` command line: version, help, demo and the book benchmark (no time assertions)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import sor


def run_sor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sor.cli", *args], capture_output=True,
                          text=True, timeout=600)


def test_version_and_help():
    out = run_sor("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"sor {sor.__version__}"
    out = run_sor("--help")
    assert out.returncode == 0 and "demo" in out.stdout and "bench" in out.stdout
    out = run_sor("bench", "book", "--help")
    assert out.returncode == 0 and "sor[bench]" in out.stdout


@pytest.mark.slow
def test_demo_routes_parent_orders_over_fix_end_to_end_and_reports_tca():
    out = run_sor("demo", "--time-scale", "0.25", "--baseline-seeds", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "router: logged on to 5 venues" in out.stdout
    assert out.stdout.count("OMS -> router:") == 5
    # the fat finger first, refused by the pre-trade controls with its reason
    assert "(a fat finger): rejected: MAX_PARENT_NOTIONAL" in out.stdout
    assert "operator console: http://127.0.0.1:" in out.stdout
    assert "audit journal: " in out.stdout and "refusals by reason: " in out.stdout
    assert "TCA: implementation shortfall" in out.stdout and "best_price" in out.stdout
    assert "every parent finished and its CumQty/LeavesQty/AvgPx match its fills" in out.stdout


def test_feed_demo_runs_end_to_end_and_checks_itself():
    out = run_sor("feed-demo", "--events", "40000", "--snapshots", "2")
    assert out.returncode == 0, out.stderr
    assert "NBBO" in out.stdout and "MoldUDP64" in out.stdout
    assert "ITCH path vs direct path, every level of every venue: identical" in out.stdout


def test_bench_book_json_report_shape():
    out = run_sor("bench", "book", "--json", "--events", "20000", "--no-peers")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["benchmark"] == "book" and report["hardware"]["cpu"]
    for key in ("l3", "l2"):
        side = report["sor"][key]
        assert side["events"] > 0 and side["throughput_per_s"] > 0
        assert {"p50_ns", "p99_ns", "p999_ns", "mean_ns", "per_update", "api"} <= side.keys()
    assert report["stream"]["l3_events"] == 20000


def test_errors_exit_nonzero_with_a_message():
    out = run_sor("feed-demo", "--events", "0")
    assert out.returncode == 2 and "sor: error:" in out.stderr
