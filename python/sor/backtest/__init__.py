"""Backtests of execution policies in the simulated multi-venue market: episodes, metrics,
paired statistics and the report. This module only re-exports (docs/backtest.md)."""

from sor.backtest.metrics import (
    MARKOUT_HORIZONS_S,
    bootstrap_mean_ci,
    bootstrap_regime_average,
    episode_metrics,
    fill_mix,
    implementation_shortfall,
    markouts_bps,
    paired_bootstrap_ci,
    relative_improvement_ci,
    vwap_slippage_bps,
)
from sor.backtest.report import build_report, format_report, summarize, write_report
from sor.backtest.runner import (
    CHILD_DTYPE,
    DEFAULT_REGIMES,
    FILL_DTYPE,
    MID_DTYPE,
    Episode,
    EpisodeSpec,
    PolicyChoice,
    available_policies,
    parse_policies,
    run_episode,
    run_grid,
)

__all__ = [
    "CHILD_DTYPE", "DEFAULT_REGIMES", "FILL_DTYPE", "MID_DTYPE", "MARKOUT_HORIZONS_S",
    "Episode", "EpisodeSpec", "PolicyChoice", "available_policies", "parse_policies",
    "run_episode", "run_grid", "episode_metrics", "implementation_shortfall",
    "vwap_slippage_bps", "markouts_bps", "fill_mix", "bootstrap_mean_ci",
    "bootstrap_regime_average", "paired_bootstrap_ci", "relative_improvement_ci",
    "summarize", "build_report", "format_report", "write_report",
]
