"""sor.sim.report: the validation report renders every figure and a table of every statistic,
deterministically, from a synthetic run.

Named test_sim_report.py, not test_report.py: tests/ has no __init__.py files, so test module
basenames must be unique across the tree.
"""

from __future__ import annotations

import struct

import pytest
from test_stylized import synthetic_market, synthetic_metaorders

from sor.errors import UsageError
from sor.sim.report import render_simulation_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PARAMETERS = {"seed": 7, "venues": 3, "tick_size_usd": 0.01, "agents": "noise, informed, mm"}


def png_size(path) -> tuple[int, int]:
    """Returns (width, height) from a PNG's IHDR chunk, checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    assert chunk_type == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def market():
    quotes, bid_depth, ask_depth, trades = synthetic_market()
    return quotes, bid_depth, ask_depth, trades, synthetic_metaorders(2_000, 0.5, seed=21)


def render(directory, market):
    quotes, bid_depth, ask_depth, trades, metaorders = market
    return render_simulation_report(directory, quotes, bid_depth, ask_depth, trades=trades,
                                    metaorders=metaorders, parameters=PARAMETERS,
                                    bootstrap_samples=200)


@pytest.fixture(scope="module")
def full_report(market, tmp_path_factory):
    """The report of the synthetic run with every input (rendering costs about a second per
    report on a small VM, so tests share it)."""
    return render(tmp_path_factory.mktemp("report") / "out", market)


def test_report_writes_every_figure_and_names_every_statistic(full_report):
    report = full_report
    assert report.directory.name == "out"
    assert set(report.figure_paths) == {"mid_price", "return_distribution", "autocorrelation",
                                        "spread", "depth_profile", "queue_depletion",
                                        "trade_signs", "impact"}
    for path in report.figure_paths.values():
        assert path.parent == report.directory
        width, height = png_size(path)
        assert width > 100 and height > 100
    markdown = report.markdown_path.read_text(encoding="utf-8")
    page = report.html_path.read_text(encoding="utf-8")
    assert len(report.facts.checks) > 20
    for check in report.facts.checks:
        row = next(line for line in markdown.splitlines() if f"`{check.name}`" in line)
        assert f"| {check.verdict} |" in row
        assert (check.band.describe() if check.band else "—") in row
        assert f"<code>{check.name}</code>" in page
    for name in report.figure_paths:
        assert f"({name}.png)" in markdown and f'src="{name}.png"' in page
    for key in PARAMETERS:
        assert f"| {key} |" in markdown and f"<td>{key}</td>" in page
    assert "| tick_size_usd | 0.01 |" in markdown
    assert ("**PASS**" if report.passes else "**FAIL**") in markdown


def test_report_text_is_deterministic(full_report, market, tmp_path):
    again = render(tmp_path, market)
    assert again.markdown_path.read_text() == full_report.markdown_path.read_text()
    assert again.html_path.read_text() == full_report.html_path.read_text()


def test_report_of_a_failing_run_without_trades(tmp_path, market):
    quotes, bid_depth, ask_depth, _, _ = market
    linear = synthetic_metaorders(2_000, 1.0, seed=22)
    report = render_simulation_report(tmp_path, quotes, bid_depth, ask_depth, metaorders=linear,
                                      bootstrap_samples=100)
    assert "trade_signs" not in report.figure_paths and "impact" in report.figure_paths
    assert not report.passes
    markdown = report.markdown_path.read_text()
    assert "trade_sign_autocorrelation_lag_1" not in markdown
    assert "None given." in markdown and "| trades | not given |" in markdown
    assert "**FAIL**" in markdown and "failing: impact_exponent" in markdown
    row = next(line for line in markdown.splitlines() if "`impact_exponent`" in line)
    assert "| FAIL |" in row
    assert '<td class="FAIL">FAIL</td>' in report.html_path.read_text()


def test_report_refuses_a_run_too_short_for_its_return_horizon(tmp_path, market):
    quotes, bid_depth, ask_depth, _, _ = market
    with pytest.raises(UsageError, match="at least"):
        render_simulation_report(tmp_path, quotes[:600], bid_depth[:600], ask_depth[:600])
    assert not any(tmp_path.iterdir())  # nothing half-written
    with pytest.raises(UsageError, match="multiple"):
        render_simulation_report(tmp_path, quotes, bid_depth, ask_depth,
                                 return_horizon_ns=1_500_000_000)
