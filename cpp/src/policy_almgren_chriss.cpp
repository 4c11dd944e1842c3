// Almgren-Chriss optimal liquidation trajectory (see docs/baselines.md).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "baseline_common.hpp"
#include "sor/baseline_policies.hpp"

namespace sor {

const char* AlmgrenChrissPolicy::validate(const Config& c) noexcept {
  if (c.decision_interval_ns <= 0) return "decision_interval_ns must be > 0";
  if (!(c.risk_aversion_per_tick_share >= 0.0) || !std::isfinite(c.risk_aversion_per_tick_share))
    return "risk_aversion_per_tick_share must be finite and >= 0";
  if (!(c.volatility_bps_per_sqrt_second >= 0.0) ||
      !std::isfinite(c.volatility_bps_per_sqrt_second))
    return "volatility_bps_per_sqrt_second must be finite and >= 0";
  if (!(c.temporary_impact_ticks_per_share_per_second > 0.0) ||
      !std::isfinite(c.temporary_impact_ticks_per_share_per_second))
    return "temporary_impact_ticks_per_share_per_second must be finite and > 0";
  if (!(c.permanent_impact_ticks_per_share >= 0.0) ||
      !std::isfinite(c.permanent_impact_ticks_per_share))
    return "permanent_impact_ticks_per_share must be finite and >= 0";
  const double tau_s = static_cast<double>(c.decision_interval_ns) * 1e-9;
  if (!(c.temporary_impact_ticks_per_share_per_second -
            0.5 * c.permanent_impact_ticks_per_share * tau_s > 0.0))
    return "permanent_impact_ticks_per_share too large: eta - gamma tau / 2 must be > 0";
  return "";
}

AlmgrenChrissPolicy::AlmgrenChrissPolicy(const Config& config) : config_(config) {
  const char* error = validate(config_);
  if (*error != '\0') throw std::invalid_argument(error);
}

double AlmgrenChrissPolicy::kappa_per_second(double sigma_ticks) const noexcept {
  const double tau = static_cast<double>(config_.decision_interval_ns) * 1e-9;
  const double eta_tilde = config_.temporary_impact_ticks_per_share_per_second -
                           0.5 * config_.permanent_impact_ticks_per_share * tau;
  // cosh(kappa tau) = 1 + e with e = lambda sigma^2 tau^2 / (2 eta_tilde); acosh(1 + e) written
  // as log1p(e + sqrt(e (2 + e))) keeps precision when e is tiny (lambda -> 0).
  const double e =
      config_.risk_aversion_per_tick_share * sigma_ticks * sigma_ticks * tau * tau /
      (2.0 * eta_tilde);
  if (!(e > 0.0)) return 0.0;
  return std::log1p(e + std::sqrt(e * (2.0 + e))) / tau;
}

void AlmgrenChrissPolicy::reset(const ParentState& parent, const PolicyVenue*, std::size_t) {
  parent_ = parent;
  const double sigma_ticks =
      config_.volatility_bps_per_sqrt_second * 1e-4 * parent.arrival_mid_ticks;
  kappa_per_second_ = kappa_per_second(sigma_ticks);
  volatility_checked_ = !config_.volatility_from_features;
}

double AlmgrenChrissPolicy::holdings_fraction(std::int64_t t_ns) const noexcept {
  if (t_ns <= parent_.start_ns) return 1.0;
  if (t_ns >= parent_.end_ns) return 0.0;
  const double horizon_s = static_cast<double>(parent_.end_ns - parent_.start_ns) * 1e-9;
  const double remaining_s = static_cast<double>(parent_.end_ns - t_ns) * 1e-9;
  if (kappa_per_second_ <= 0.0) return remaining_s / horizon_s;
  // sinh(a) / sinh(b) = e^(a - b) (1 - e^-2a) / (1 - e^-2b): no overflow for large kappa T.
  const double a = kappa_per_second_ * remaining_s;
  const double b = kappa_per_second_ * horizon_s;
  return std::exp(a - b) * std::expm1(-2.0 * a) / std::expm1(-2.0 * b);
}

std::int64_t AlmgrenChrissPolicy::target_filled(std::int64_t t_ns) const noexcept {
  if (t_ns >= parent_.end_ns) return parent_.quantity;
  const double done = (1.0 - holdings_fraction(t_ns)) * static_cast<double>(parent_.quantity);
  return std::min(parent_.quantity, round_to_lot(done, parent_.lot_shares));
}

void AlmgrenChrissPolicy::decide(const PolicyView& view, PolicyOutput& out) noexcept {
  const ParentState& parent = *view.parent;
  if (!volatility_checked_) {
    volatility_checked_ = true;
    if (view.features != nullptr && view.book != nullptr && parent.arrival_mid_ticks > 0.0) {
      DecisionContext context{};
      context.now_ns = view.now_ns;
      context.start_ns = parent.start_ns;
      context.end_ns = parent.end_ns;
      context.child_quantity = std::max<std::int64_t>(parent.lot_shares, 1);
      context.parent_quantity = parent.quantity;
      context.remaining_quantity = parent.quantity - parent.filled;
      context.arrival_mid_ticks = parent.arrival_mid_ticks;
      context.instrument_id = parent.instrument_id;
      context.venue_id = view.venue_count > 0 ? view.venues[0].venue_id : 0;
      context.side = parent.side;
      context.order_type = ChildOrderType::kTake;
      float row[kFeatureCount];
      if (view.features->build_row(context, *view.book, row) == FeatureStatus::kOk) {
        const double realized_5m_bps =
            row[static_cast<std::size_t>(FeatureIndex::kVolRealized5mBps)];
        if (realized_5m_bps > 0.0) {
          const double sigma_ticks =
              realized_5m_bps / std::sqrt(300.0) * 1e-4 * parent.arrival_mid_ticks;
          kappa_per_second_ = kappa_per_second(sigma_ticks);
        }
      }
    }
  }
  const std::int64_t interval = config_.decision_interval_ns;
  std::int64_t target;
  std::int64_t next;
  if (view.now_ns >= parent.end_ns) {
    target = parent.quantity;
    next = view.now_ns + interval;
  } else {
    const std::int64_t k = baseline::period_index(parent, interval, view.now_ns);
    next = baseline::period_end(parent, interval, k);
    target = target_filled(next);
  }
  const std::int64_t slice = baseline::lot_slice(target - parent.filled - parent.open_quantity,
                                                 sendable_quantity(parent), parent.lot_shares);
  if (slice > 0) route_marketable(view, slice, out);
  out.next_decision_ns = next;
}

}  // namespace sor
