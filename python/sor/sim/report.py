"""The simulator validation report (`sor sim report`): figures and a table of every stylized
fact with its band and verdict, written to a directory as PNGs, ``report.md`` and
``index.html``.

Figures are drawn with matplotlib's object-oriented API on the Agg canvas (no screen, no pyplot
state). The text files depend only on the inputs, so the same run renders the same report.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from sor.sim.stylized import (
    DEFAULT_BANDS,
    NANOSECONDS_PER_MINUTE,
    AcceptanceBands,
    Check,
    StylizedFacts,
    format_number,
    mid_price_ticks,
    stylized_facts,
)

MARKDOWN_NAME = "report.md"
HTML_NAME = "index.html"
_PNG_METADATA = {"Software": None}  # no library version in the file: same input, same bytes


@dataclass(frozen=True)
class SimulationReport:
    """What :func:`render_simulation_report` wrote: the directory, the markdown and HTML pages,
    the figures by name (``mid_price``, ``return_distribution``, ...) and the statistics."""

    directory: Path
    markdown_path: Path
    html_path: Path
    figure_paths: Mapping[str, Path]
    facts: StylizedFacts

    @property
    def passes(self) -> bool:
        """Returns whether every banded check passes."""
        return self.facts.passes


@dataclass(frozen=True)
class _Figure:
    name: str
    title: str
    caption: str


def render_simulation_report(
    output_directory: str | Path,
    quotes: np.ndarray,
    bid_depth: np.ndarray,
    ask_depth: np.ndarray,
    *,
    trades: np.ndarray | None = None,
    metaorders: np.ndarray | None = None,
    parameters: Mapping[str, object] | None = None,
    return_horizon_ns: int = NANOSECONDS_PER_MINUTE,
    tail_fraction: float = 0.025,
    maximum_lag: int = 20,
    impact_bin_count: int = 10,
    bootstrap_samples: int = 1000,
    seed: int = 0,
    bands: AcceptanceBands = DEFAULT_BANDS,
) -> SimulationReport:
    """Measures every stylized fact of a run (see :func:`sor.sim.stylized.stylized_facts` for
    the inputs) and writes the figures, ``report.md`` and ``index.html`` into
    ``output_directory`` (created if missing; files of the same names are replaced).
    ``parameters`` are the run's settings, shown as given, in their order."""
    facts = stylized_facts(
        quotes, bid_depth, ask_depth, trades=trades, metaorders=metaorders,
        return_horizon_ns=return_horizon_ns, tail_fraction=tail_fraction,
        maximum_lag=maximum_lag, impact_bin_count=impact_bin_count,
        bootstrap_samples=bootstrap_samples, seed=seed, bands=bands)
    directory = Path(output_directory)
    directory.mkdir(parents=True, exist_ok=True)

    figures = _draw_figures(directory, quotes, facts)
    settings = {
        "quote samples": len(quotes),
        "span (minutes)": (int(quotes["ts_ns"][-1]) - int(quotes["ts_ns"][0]))
        / NANOSECONDS_PER_MINUTE,
        "depth levels": facts.depth.levels,
        "trades": "not given" if trades is None else len(trades),
        "metaorders": "not given" if metaorders is None else len(metaorders),
        "return horizon (seconds)": return_horizon_ns / 1e9,
        "returns": len(facts.returns),
        "Hill tail fraction": tail_fraction,
        "autocorrelation lags": maximum_lag,
        "impact bins": impact_bin_count,
        "bootstrap resamples": bootstrap_samples,
        "bootstrap seed": seed,
    }
    run_parameters = dict(parameters or {})
    markdown_path = directory / MARKDOWN_NAME
    markdown_path.write_text(_markdown(facts, run_parameters, settings, figures), encoding="utf-8")
    html_path = directory / HTML_NAME
    html_path.write_text(_html(facts, run_parameters, settings, figures), encoding="utf-8")
    return SimulationReport(directory, markdown_path, html_path,
                            {figure.name: directory / f"{figure.name}.png" for figure in figures},
                            facts)


# --- text -------------------------------------------------------------------------------------


def _value_text(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return format_number(float(value))
    return str(value)


def _rows(facts: StylizedFacts) -> list[tuple[str, Check]]:
    return [(title, check) for title, summary in facts.sections for check in summary.checks]


def _verdict_line(facts: StylizedFacts) -> str:
    banded = [check for check in facts.checks if check.passes is not None]
    passed = sum(check.passes is True for check in banded)
    failed = [check.name for check in banded if check.passes is False]
    line = f"**{'PASS' if facts.passes else 'FAIL'}**: {passed} of {len(banded)} banded checks pass"
    return line + (f"; failing: {', '.join(failed)}." if failed else ".")


def _markdown_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _markdown(facts: StylizedFacts, parameters: Mapping[str, object],
              settings: Mapping[str, object], figures: list[_Figure]) -> str:
    lines = ["# Simulation report: stylized facts", "",
             "Each statistic, its acceptance band and verdict; docs/sim-validation.md explains "
             "the estimators and why the bands are what they are. INFO rows have no band.", "",
             _verdict_line(facts), "",
             "## Statistics", "",
             "| section | statistic | value | band | verdict | what it is |",
             "|---|---|---:|---|---|---|"]
    for title, check in _rows(facts):
        band = "—" if check.band is None else check.band.describe()
        lines.append(f"| {title} | `{check.name}` | {format_number(check.value)} | "
                     f"{_markdown_escape(band)} | {check.verdict} | "
                     f"{_markdown_escape(check.description)} |")
    lines += ["", "## Run parameters", ""]
    if parameters:
        lines += ["| parameter | value |", "|---|---|"]
        lines += [f"| {_markdown_escape(str(key))} | {_markdown_escape(_value_text(value))} |"
                  for key, value in parameters.items()]
    else:
        lines.append("None given.")
    lines += ["", "## Data and analysis settings", "", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {_value_text(value)} |" for key, value in settings.items()]
    lines += ["", "## Figures", ""]
    for figure in figures:
        lines += [f"### {figure.title}", "", f"![{figure.title}]({figure.name}.png)", "",
                  figure.caption, ""]
    return "\n".join(lines)


def _html(facts: StylizedFacts, parameters: Mapping[str, object],
          settings: Mapping[str, object], figures: list[_Figure]) -> str:
    escape = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             "<title>Simulation report: stylized facts</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
             "td.num{text-align:right}.PASS{color:#060}.FAIL{color:#b00;font-weight:bold}"
             ".INFO{color:#666}img{max-width:100%}</style>",
             "</head>", "<body>", "<h1>Simulation report: stylized facts</h1>",
             "<p>Each statistic, its acceptance band and verdict; docs/sim-validation.md "
             "explains the estimators and why the bands are what they are. INFO rows have no "
             "band.</p>",
             f"<p>{escape(_verdict_line(facts).replace('**', ''))}</p>",
             "<h2>Statistics</h2>", "<table>",
             "<tr><th>section</th><th>statistic</th><th>value</th><th>band</th>"
             "<th>verdict</th><th>what it is</th></tr>"]
    for title, check in _rows(facts):
        band = "—" if check.band is None else check.band.describe()
        parts.append(f"<tr><td>{escape(title)}</td><td><code>{escape(check.name)}</code></td>"
                     f'<td class="num">{escape(format_number(check.value))}</td>'
                     f"<td>{escape(band)}</td>"
                     f'<td class="{check.verdict}">{check.verdict}</td>'
                     f"<td>{escape(check.description)}</td></tr>")
    parts += ["</table>", "<h2>Run parameters</h2>"]
    if parameters:
        parts.append("<table><tr><th>parameter</th><th>value</th></tr>")
        parts += [f"<tr><td>{escape(str(key))}</td><td>{escape(_value_text(value))}</td></tr>"
                  for key, value in parameters.items()]
        parts.append("</table>")
    else:
        parts.append("<p>None given.</p>")
    parts += ["<h2>Data and analysis settings</h2>",
              "<table><tr><th>setting</th><th>value</th></tr>"]
    parts += [f"<tr><td>{escape(key)}</td><td>{escape(_value_text(value))}</td></tr>"
              for key, value in settings.items()]
    parts += ["</table>", "<h2>Figures</h2>"]
    for figure in figures:
        parts += [f"<h3>{escape(figure.title)}</h3>",
                  f'<img src="{figure.name}.png" alt="{escape(figure.title)}">',
                  f"<p>{escape(figure.caption)}</p>"]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


# --- figures ----------------------------------------------------------------------------------


def _new_axes(width_inches: float = 7.0, height_inches: float = 4.0):
    figure = Figure(figsize=(width_inches, height_inches), dpi=100)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure, directory: Path, name: str) -> None:
    figure.tight_layout()
    figure.savefig(directory / f"{name}.png", format="png", metadata=_PNG_METADATA)


def _draw_figures(directory: Path, quotes: np.ndarray, facts: StylizedFacts) -> list[_Figure]:
    figures = [
        _draw_mid_price(directory, quotes),
        _draw_return_distribution(directory, quotes, facts),
        _draw_autocorrelation(directory, facts),
        _draw_spread(directory, facts),
        _draw_depth_profile(directory, facts),
        _draw_queue_depletion(directory, facts),
    ]
    if facts.trade_signs is not None:
        figures.append(_draw_trade_signs(directory, facts))
    if facts.impact is not None:
        figures.append(_draw_impact(directory, facts))
    return figures


def _draw_mid_price(directory: Path, quotes: np.ndarray) -> _Figure:
    figure, axes = _new_axes(8.0, 3.5)
    minutes = (quotes["ts_ns"] - quotes["ts_ns"][0]) / NANOSECONDS_PER_MINUTE
    axes.plot(minutes, mid_price_ticks(quotes), linewidth=0.6, color="tab:blue")
    axes.set_xlabel("minutes since start")
    axes.set_ylabel("mid price (ticks)")
    axes.set_title("Mid price")
    _save(figure, directory, "mid_price")
    return _Figure("mid_price", "Mid price path",
                   "NBBO mid in ticks; one-sided samples carry the last mid forward.")


def _draw_return_distribution(directory: Path, quotes: np.ndarray,
                              facts: StylizedFacts) -> _Figure:
    returns = facts.returns
    standardized = (returns - returns.mean()) / returns.std()
    figure, axes = _new_axes()
    edge = max(5.0, float(np.max(np.abs(standardized))))
    # Mid returns live near a lattice (the mid moves by half ticks): bins are whole multiples of
    # the standardized half-tick return, centred on them, so no bin falls between lattice points.
    half_tick = 0.5 / float(np.nanmedian(mid_price_ticks(quotes))) / returns.std()
    width = half_tick * max(1.0, math.ceil(2.0 * edge / 60.0 / half_tick))
    half_count = math.ceil(edge / width)
    edges = (np.arange(-half_count, half_count + 2) - 0.5) * width
    axes.hist(standardized, bins=edges, density=True, color="tab:blue",
              alpha=0.6, histtype="stepfilled", label="returns")
    grid = np.linspace(-edge, edge, 400)
    axes.plot(grid, np.exp(-grid ** 2 / 2) / math.sqrt(2 * math.pi), color="black",
              label="Gaussian")
    student_t = facts.heavy_tails.student_t
    dof = student_t.degrees_of_freedom
    scale = student_t.scale / returns.std()
    location = (student_t.location - returns.mean()) / returns.std()
    log_normalizer = (math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2)
                      - 0.5 * math.log(dof * math.pi) - math.log(scale))
    density = np.exp(log_normalizer - (dof + 1) / 2
                     * np.log1p(((grid - location) / scale) ** 2 / dof))
    axes.plot(grid, density, color="tab:red", linestyle="--",
              label=f"Student-t, {format_number(dof)} dof")
    axes.set_yscale("log")
    axes.set_ylim(bottom=0.5 / len(returns))
    axes.set_xlabel("standardized return")
    axes.set_ylabel("density (log scale)")
    horizon_seconds = format_number(facts.return_horizon_ns / 1e9)
    axes.set_title(f"Mid log returns over {horizon_seconds} s vs Gaussian")
    axes.legend()
    _save(figure, directory, "return_distribution")
    return _Figure("return_distribution", "Return distribution",
                   f"{len(returns)} non-overlapping mid log returns over {horizon_seconds} s, "
                   "standardized, against a unit Gaussian and the fitted Student-t.")


def _draw_autocorrelation(directory: Path, facts: StylizedFacts) -> _Figure:
    clustering = facts.volatility_clustering
    lags = np.arange(1, clustering.maximum_lag + 1)
    figure, axes = _new_axes()
    axes.plot(lags, clustering.return_autocorrelation[1:], marker="o", label="returns r")
    axes.plot(lags, clustering.absolute_return_autocorrelation[1:], marker="s", label="|r|")
    axes.axhspan(-clustering.significance_level, clustering.significance_level, color="grey",
                 alpha=0.2, label="±2/√n")
    axes.axhline(0.0, color="black", linewidth=0.5)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("lag (return horizons)")
    axes.set_ylabel("autocorrelation")
    axes.set_title("Autocorrelation of returns and of absolute returns")
    axes.legend()
    _save(figure, directory, "autocorrelation")
    return _Figure("autocorrelation", "Volatility clustering",
                   "Returns should be uncorrelated beyond the first lag; |returns| positively "
                   "correlated and slowly decaying.")


def _draw_spread(directory: Path, facts: StylizedFacts) -> _Figure:
    spread = facts.spread
    figure, axes = _new_axes()
    axes.bar(spread.spread_values, spread.spread_shares, color="tab:blue")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("spread (ticks)")
    axes.set_ylabel("share of two-sided samples")
    axes.set_title(f"Spread distribution (mean {format_number(spread.mean_ticks)} ticks)")
    _save(figure, directory, "spread")
    return _Figure("spread", "Spread distribution",
                   "Share of time at each NBBO spread; a large-tick liquid stock sits at one tick "
                   "most of the time.")


def _draw_depth_profile(directory: Path, facts: StylizedFacts) -> _Figure:
    depth = facts.depth
    distance = np.arange(depth.levels)
    figure, axes = _new_axes()
    axes.plot(distance, depth.mean_bid_depth, marker="o", label="bid")
    axes.plot(distance, depth.mean_ask_depth, marker="s", label="ask")
    axes.plot(distance, depth.mean_depth, color="black", linestyle="--", label="both sides")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("distance from the best (ticks)")
    axes.set_ylabel("mean depth (shares)")
    axes.set_title("Mean depth profile")
    axes.legend()
    _save(figure, directory, "depth_profile")
    return _Figure("depth_profile", "Depth profile",
                   "Mean shares resting k ticks from the best; expected a hump or an increase "
                   "away from the best.")


def _draw_queue_depletion(directory: Path, facts: StylizedFacts) -> _Figure:
    depletion = facts.queue_depletion
    figure, axes = _new_axes()
    if depletion.depletion_count:
        axes.hist(depletion.queue_before_depletion, bins=40, color="tab:blue", alpha=0.7,
                  histtype="stepfilled",
                  label="queue before depletion")
    else:
        axes.text(0.5, 0.5, "no depletion observed", transform=axes.transAxes, ha="center")
    axes.axvline(depletion.mean_best_queue, color="black", linestyle="--",
                 label="mean best queue")
    axes.set_xlabel("shares at the best, last sample before it emptied")
    axes.set_ylabel("depletions")
    axes.set_title(f"Queue depletion ({format_number(depletion.depletions_per_minute)} per minute)")
    axes.legend()
    _save(figure, directory, "queue_depletion")
    return _Figure("queue_depletion", "Queue depletion",
                   "Size of the best queue at the last sample before it emptied (best bid fell or "
                   "best ask rose), against the mean best queue.")


def _draw_trade_signs(directory: Path, facts: StylizedFacts) -> _Figure:
    signs = facts.trade_signs
    assert signs is not None
    lags = np.arange(1, len(signs.sign_autocorrelation))
    figure, axes = _new_axes()
    axes.plot(lags, signs.sign_autocorrelation[1:], marker="o")
    axes.axhline(0.0, color="black", linewidth=0.5)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("lag (trades)")
    axes.set_ylabel("autocorrelation of trade signs")
    axes.set_title(f"Order-flow signs ({signs.trade_count} signed trades)")
    _save(figure, directory, "trade_signs")
    return _Figure("trade_signs", "Order-flow signs",
                   "Autocorrelation of aggressor signs (+1 buy, -1 sell); real order flow shows "
                   "long memory (slow positive decay). Reported, not judged.")


def _draw_impact(directory: Path, facts: StylizedFacts) -> _Figure:
    impact = facts.impact
    assert impact is not None
    figure, axes = _new_axes(7.0, 5.0)
    positive = impact.normalized_impact > 0
    axes.scatter(impact.participation[positive], impact.normalized_impact[positive], s=3,
                 color="grey", alpha=0.25, label="single metaorders (I/σ > 0)")
    axes.errorbar(impact.bin_participation, impact.bin_mean_normalized_impact,
                  yerr=impact.bin_standard_error, fmt="o", color="tab:blue",
                  label="bin means ± s.e.")
    grid = np.geomspace(impact.bin_participation[0], impact.bin_participation[-1], 100)
    axes.plot(grid, impact.prefactor * grid ** impact.exponent, color="tab:red",
              label=f"fit: δ = {format_number(impact.exponent)}, Y = "
                    f"{format_number(impact.prefactor)}")
    centre_x = float(np.exp(np.mean(np.log(impact.bin_participation))))
    centre_y = float(np.exp(np.mean(np.log(impact.bin_mean_normalized_impact))))
    axes.plot(grid, centre_y * (grid / centre_x) ** 0.5, color="black", linestyle="--",
              label="square root reference")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("Q / V")
    axes.set_ylabel("impact / daily volatility")
    low, high = impact.exponent_confidence_interval
    axes.set_title(f"Metaorder impact: δ = {format_number(impact.exponent)} "
                   f"[{format_number(low)}, {format_number(high)}]")
    axes.legend(fontsize="small")
    _save(figure, directory, "impact")
    return _Figure("impact", "Square-root impact",
                   f"Mean impact over sigma in {len(impact.bin_counts)} equal-count bins of Q/V, "
                   "log-log, with the least-squares line and a slope-1/2 reference through the "
                   "bins' centre; negative single impacts are averaged in but not drawn.")
