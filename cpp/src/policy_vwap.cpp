// VWAP on an intraday volume curve (see docs/baselines.md).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "baseline_common.hpp"
#include "sor/baseline_policies.hpp"

namespace sor {
namespace {

constexpr std::int64_t kDayNs = 86'400'000'000'000;

// Cumulative of the simulator's activity (1 + a (2x - 1)^2) / (1 + a / 3) on [0, x].
double u_shape_cumulative(double x, double a) noexcept {
  const double c = 2.0 * x - 1.0;
  return (x + a * (c * c * c + 1.0) / 6.0) / (1.0 + a / 3.0);
}

// Cumulative of a piecewise-constant curve of equal-width bins, normalised to 1 at x = 1.
double bins_cumulative(double x, const std::vector<double>& bins) noexcept {
  double total = 0.0;
  for (double w : bins) total += w;
  const double scaled = x * static_cast<double>(bins.size());
  const auto whole = static_cast<std::size_t>(std::floor(scaled));
  double sum = 0.0;
  for (std::size_t b = 0; b < std::min(whole, bins.size()); ++b) sum += bins[b];
  if (whole < bins.size()) sum += bins[whole] * (scaled - static_cast<double>(whole));
  return sum / total;
}

}  // namespace

const char* VwapPolicy::validate(const Config& c) noexcept {
  if (c.decision_interval_ns <= 0) return "decision_interval_ns must be > 0";
  if (!(c.u_shape_amplitude >= 0.0) || !std::isfinite(c.u_shape_amplitude))
    return "u_shape_amplitude must be finite and >= 0";
  double total = 0.0;
  for (double w : c.volume_profile_bins) {
    if (!(w >= 0.0) || !std::isfinite(w)) return "volume_profile_bins must be finite and >= 0";
    total += w;
  }
  if (!c.volume_profile_bins.empty() && !(total > 0.0))
    return "volume_profile_bins must have a positive sum";
  if (c.session_open_ns_since_midnight < 0 || c.session_open_ns_since_midnight >= kDayNs)
    return "session_open_ns_since_midnight must be in [0, 24 h)";
  if (c.session_length_ns < 0 || c.session_length_ns > kDayNs)
    return "session_length_ns must be in [0, 24 h]";
  if (!(c.max_participation >= 0.0 && c.max_participation <= 1.0))
    return "max_participation must be in [0, 1]";
  return "";
}

VwapPolicy::VwapPolicy(const Config& config) : config_(config) {
  const char* error = validate(config_);
  if (*error != '\0') throw std::invalid_argument(error);
}

void VwapPolicy::reset(const ParentState& parent, const PolicyVenue*, std::size_t) {
  parent_ = parent;
  profile_start_ = profile_cumulative(parent.start_ns);
  profile_span_ = profile_cumulative(parent.end_ns) - profile_start_;
}

double VwapPolicy::profile_cumulative(std::int64_t t_ns) const noexcept {
  double x;
  if (config_.session_length_ns == 0) {
    const double horizon = static_cast<double>(parent_.end_ns - parent_.start_ns);
    x = horizon > 0 ? static_cast<double>(t_ns - parent_.start_ns) / horizon : 1.0;
  } else {
    const std::int64_t time_of_day = ((t_ns % kDayNs) + kDayNs) % kDayNs;
    x = static_cast<double>(time_of_day - config_.session_open_ns_since_midnight) /
        static_cast<double>(config_.session_length_ns);
  }
  x = std::clamp(x, 0.0, 1.0);
  return config_.volume_profile_bins.empty()
             ? u_shape_cumulative(x, config_.u_shape_amplitude)
             : bins_cumulative(x, config_.volume_profile_bins);
}

double VwapPolicy::target_fraction(std::int64_t t_ns) const noexcept {
  if (t_ns >= parent_.end_ns) return 1.0;
  if (t_ns <= parent_.start_ns) return 0.0;
  // A horizon outside the session (no expected volume) falls back to time-proportional.
  if (!(profile_span_ > 1e-12)) {
    return static_cast<double>(t_ns - parent_.start_ns) /
           static_cast<double>(parent_.end_ns - parent_.start_ns);
  }
  return std::clamp((profile_cumulative(t_ns) - profile_start_) / profile_span_, 0.0, 1.0);
}

void VwapPolicy::decide(const PolicyView& view, PolicyOutput& out) noexcept {
  const ParentState& parent = *view.parent;
  const std::int64_t sendable = sendable_quantity(parent);
  const std::int64_t interval = config_.decision_interval_ns;
  std::int64_t target;
  std::int64_t next;
  if (view.now_ns >= parent.end_ns) {
    target = parent.quantity;
    next = view.now_ns + interval;
  } else {
    const std::int64_t k = baseline::period_index(parent, interval, view.now_ns);
    const std::int64_t boundary = baseline::period_end(parent, interval, k);
    target = boundary >= parent.end_ns
                 ? parent.quantity
                 : std::min(parent.quantity,
                            round_to_lot(target_fraction(boundary) *
                                             static_cast<double>(parent.quantity),
                                         parent.lot_shares));
    next = boundary;
  }
  std::int64_t slice = target - parent.filled - parent.open_quantity;
  if (config_.max_participation > 0.0) {
    const auto allowed = static_cast<std::int64_t>(
        std::floor(config_.max_participation * std::max(view.market_volume_shares, 0.0)));
    slice = std::min(slice, allowed - parent.filled - parent.open_quantity);
  }
  slice = baseline::lot_slice(slice, sendable, parent.lot_shares);
  if (slice > 0) route_marketable(view, slice, out);
  out.next_decision_ns = next;
}

}  // namespace sor
