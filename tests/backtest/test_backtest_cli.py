"""``sor backtest`` on a tiny budget: the JSON document has the documented structure."""

from __future__ import annotations

import json

from sor.cli import main


def test_backtest_json_has_the_documented_structure(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["backtest", "--policies", "best_price,twap:slices=3", "--regimes", "calm",
                 "--seeds", "5-6", "--quantity", "5000", "--horizon-s", "20",
                 "--start-offset-s", "60", "--workers", "2", "--resamples", "200",
                 "--no-models", "--quiet", "--json", "--out", str(out)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["schema"] == "sor.backtest/1"
    assert set(report) == {"schema", "config", "notes", "improvement_vs_best_baseline",
                           "episodes", "summary"}
    config = report["config"]
    # the candidate (ml_router) is run too, on the same seeds
    assert config["policy_labels"] == ["best_price", "twap(slices=3)", "ml_router"]
    assert config["regimes"] == ["calm"] and config["seeds"] == [5, 6]
    assert config["reference"] == "best_price" and config["candidate"] == "ml_router"
    episodes = report["episodes"]
    assert len(episodes) == 6
    for e in episodes:
        for key in ("policy", "regime", "seed", "side", "is_bps", "vwap_slippage_bps",
                    "fill_rate", "participation", "fees_bps", "fill_mix", "markouts_bps"):
            assert key in e
        assert e["fill_rate"] == 1.0
        assert set(e["markouts_bps"]["all"]) == {"shares", "1s", "10s", "60s"}
    # Paired: both policies have the same side and arrival on each seed.
    for seed in (5, 6):
        pair = [e for e in episodes if e["seed"] == seed]
        assert len({e["side"] for e in pair}) == 1
        assert len({e["arrival_mid_ticks"] for e in pair}) == 1
    summary = report["summary"]
    cell = summary["by_regime"]["calm"]["twap(slices=3)"]
    assert cell["is_bps"]["ci_low"] <= cell["is_bps"]["mean"] <= cell["is_bps"]["ci_high"]
    assert set(summary["averaged"]) == {"best_price", "twap(slices=3)", "ml_router"}
    paired = summary["paired_vs_reference"]
    assert paired["reference"] == "best_price" and "twap(slices=3)" in paired["averaged"]
    verdict = summary["improvement_vs_best_baseline"]
    assert verdict["candidate"] == "ml_router"
    assert verdict["best_baseline"] in ("best_price", "twap(slices=3)")
    assert report["improvement_vs_best_baseline"] == verdict["improvement"]
    assert set(verdict["per_regime"]) == {"calm"}
    assert isinstance(report["notes"], list)
    written = json.loads((out / "backtest.json").read_text())
    assert written == report
    for name in ("index.html", "is_by_regime.png", "paired_differences.png", "markouts.png",
                 "fill_mix.png"):
        assert (out / name).stat().st_size > 0


def test_backtest_reports_an_unknown_policy(capsys):
    assert main(["backtest", "--policies", "nope", "--quiet"]) == 2
    assert "unknown policy 'nope'" in capsys.readouterr().err
