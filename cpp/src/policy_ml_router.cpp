#include "sor/ml_router.hpp"

#include <algorithm>
#include <cmath>

namespace sor {
namespace {

constexpr std::size_t kMaxCandidates = kMaxPolicyVenues * 3;

std::int64_t round_down_lots(double shares, std::int64_t lot) noexcept {
  if (shares <= 0) return 0;
  return static_cast<std::int64_t>(std::floor(shares / static_cast<double>(lot))) * lot;
}

}  // namespace

const char* validate(const MlRouterConfig& c) noexcept {
  if (!(c.schedule_power > 0) || !std::isfinite(c.schedule_power)) return "schedule_power must be > 0";
  if (!(c.passive_cover_s >= 0) || !std::isfinite(c.passive_cover_s)) return "passive_cover_s must be >= 0";
  if (!(c.passive_lifetime_s > 0) || !std::isfinite(c.passive_lifetime_s)) {
    return "passive_lifetime_s must be > 0";
  }
  if (!(c.min_fill_probability >= 0 && c.min_fill_probability <= 1)) {
    return "min_fill_probability must be in [0, 1]";
  }
  if (!std::isfinite(c.adverse_weight) || c.adverse_weight < 0) return "adverse_weight must be >= 0";
  if (!std::isfinite(c.impact_weight) || c.impact_weight < 0) return "impact_weight must be >= 0";
  if (!(c.max_child_shares >= 1) || !std::isfinite(c.max_child_shares)) {
    return "max_child_shares must be >= 1";
  }
  if (!(c.take_slack_lots >= 0) || !std::isfinite(c.take_slack_lots)) return "take_slack_lots must be >= 0";
  return "";
}

MlRouterPolicy::MlRouterPolicy(const MlRouterConfig& config) : config_(config) {}

void MlRouterPolicy::reset(const ParentState&, const PolicyVenue*, std::size_t) {}

double MlRouterPolicy::target_fraction(double u) const noexcept {
  u = std::clamp(u, 0.0, 1.0);
  return std::pow(u, config_.schedule_power);
}

std::size_t MlRouterPolicy::price_candidates(const PolicyView& view, std::int64_t quantity,
                                             Candidate* out, std::size_t capacity) const noexcept {
  const ParentState& p = *view.parent;
  const Nbbo nbbo = view.book->nbbo(p.instrument_id);
  if (nbbo.bid_price_ticks <= 0 || nbbo.ask_price_ticks <= nbbo.bid_price_ticks || quantity <= 0) {
    return 0;
  }
  const double mid = 0.5 * static_cast<double>(nbbo.bid_price_ticks + nbbo.ask_price_ticks);
  const double spread = static_cast<double>(nbbo.ask_price_ticks - nbbo.bid_price_ticks);
  const Side far_side = p.side == Side::kBuy ? Side::kSell : Side::kBuy;
  const std::int64_t far_price = p.side == Side::kBuy ? nbbo.ask_price_ticks : nbbo.bid_price_ticks;
  std::size_t n = 0;
  float row[kFeatureCount];
  for (std::size_t v = 0; v < view.venue_count; ++v) {
    const PolicyVenue& venue = view.venues[v];
    for (const ChildOrderType type :
         {ChildOrderType::kTake, ChildOrderType::kPost, ChildOrderType::kMidpoint}) {
      if (!venue.lit && type != ChildOrderType::kMidpoint) continue;
      if (n >= capacity) return n;
      Candidate c{};
      c.venue_id = venue.venue_id;
      c.type = type;
      c.quantity = quantity;
      if (type == ChildOrderType::kTake) {
        const LevelView best = view.book->venue_best(venue.venue_id, p.instrument_id, far_side);
        if (best.price_ticks != far_price || best.quantity <= 0) continue;  // takes at the NBBO only
        c.available = best.quantity;
      }
      DecisionContext context{};
      context.now_ns = view.now_ns;
      context.start_ns = p.start_ns;
      context.end_ns = p.end_ns;
      context.child_quantity = quantity;
      context.parent_quantity = p.quantity;
      context.remaining_quantity = std::max<std::int64_t>(0, p.quantity - p.filled);
      context.arrival_mid_ticks = p.arrival_mid_ticks;
      context.instrument_id = p.instrument_id;
      context.venue_id = venue.venue_id;
      context.side = p.side;
      context.order_type = type;
      if (view.features->build_row(context, *view.book, row) != FeatureStatus::kOk) continue;
      bool finite = true;
      for (float x : row) finite = finite && std::isfinite(x);
      if (!finite) continue;
      const PolicyModels& m = view.models;
      c.fill_probability = m.fill_probability
                               ? m.predict(ModelSlot::kFillProbability, row)
                               : row[static_cast<std::size_t>(FeatureIndex::kVenueFillRate)];
      c.adverse_move_bps = m.adverse_move ? m.predict(ModelSlot::kAdverseMove, row) : 0.0f;
      c.impact_bps = (m.market_impact && type == ChildOrderType::kTake)
                         ? m.predict(ModelSlot::kMarketImpact, row) : 0.0f;
      const double offset = row[static_cast<std::size_t>(FeatureIndex::kChildPriceOffsetTicks)];
      const double fee_bps = row[static_cast<std::size_t>(FeatureIndex::kChildFeeBps)];
      const double price_bps = (offset - 0.5 * spread) / mid * 1e4;  // vs the mid, > 0 pays
      if (type == ChildOrderType::kTake) {
        c.cost_bps = price_bps + fee_bps + config_.impact_weight * c.impact_bps;
      } else {
        c.cost_bps = price_bps + fee_bps + config_.adverse_weight * c.adverse_move_bps;
      }
      out[n++] = c;
    }
  }
  double best_take = 0;
  bool have_take = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (out[i].type == ChildOrderType::kTake && (!have_take || out[i].cost_bps < best_take)) {
      best_take = out[i].cost_bps;
      have_take = true;
    }
  }
  if (!have_take) best_take = 0.5 * spread / mid * 1e4;  // half the spread: what a take pays
  for (std::size_t i = 0; i < n; ++i) {
    out[i].score = static_cast<double>(out[i].fill_probability) * (best_take - out[i].cost_bps);
  }
  return n;
}

void MlRouterPolicy::decide(const PolicyView& view, PolicyOutput& out) noexcept {
  const ParentState& p = *view.parent;
  const std::int64_t lot = std::max<std::int64_t>(1, p.lot_shares);
  const double horizon = static_cast<double>(std::max<std::int64_t>(1, p.end_ns - p.start_ns));
  const double elapsed = static_cast<double>(view.now_ns - p.start_ns) / horizon;
  const double step = 1e9 / horizon;  // the decision grid is one second unless asked earlier
  const std::int64_t max_child = std::max<std::int64_t>(lot, round_down_lots(config_.max_child_shares, lot));

  // 1. passive children past their lifetime are re-priced
  std::int64_t open_take = 0;
  bool passive_on[256][3] = {};
  const auto lifetime = static_cast<std::int64_t>(config_.passive_lifetime_s * 1e9);
  for (std::size_t i = 0; i < view.open_child_count; ++i) {
    const OpenChild& c = view.open_children[i];
    if (c.type == ChildOrderType::kTake) {
      open_take += c.leaves;
      continue;
    }
    if (c.cancel_sent) continue;
    if (view.now_ns - c.sent_ns >= lifetime || view.now_ns >= p.end_ns) {
      out.add_cancel(c.child_id);
      continue;
    }
    passive_on[c.venue_id][static_cast<std::size_t>(c.type)] = true;
  }
  const std::int64_t free_at_start = p.quantity - p.filled - p.open_quantity;
  std::int64_t free = free_at_start;
  if (free <= 0) return;

  Candidate candidates[kMaxCandidates];
  // 2. take what the schedule needs by the next decision
  const auto due_next = static_cast<std::int64_t>(
      std::ceil(target_fraction(elapsed + step) * static_cast<double>(p.quantity)));
  std::int64_t behind = std::min(due_next, p.quantity) - p.filled - open_take;
  if (behind >= static_cast<std::int64_t>(config_.take_slack_lots * static_cast<double>(lot)) &&
      behind > 0) {
    if (behind > free) {
      // shares promised to passive children are needed now: pull them back
      for (std::size_t i = 0; i < view.open_child_count; ++i) {
        const OpenChild& c = view.open_children[i];
        if (c.type != ChildOrderType::kTake && !c.cancel_sent) out.add_cancel(c.child_id);
      }
    }
    std::int64_t need = std::min(behind, free);
    const std::size_t n = price_candidates(view, std::min(need, max_child), candidates, kMaxCandidates);
    std::sort(candidates, candidates + n, [](const Candidate& a, const Candidate& b) {
      return a.cost_bps < b.cost_bps;
    });
    for (std::size_t i = 0; i < n && need > 0; ++i) {
      const Candidate& c = candidates[i];
      if (c.type != ChildOrderType::kTake) continue;
      std::int64_t q = std::min({need, c.available, max_child});
      if (q < need && q >= lot) q = q / lot * lot;
      if (q <= 0) continue;
      if (out.add_child(c.venue_id, ChildOrderType::kTake, 0, q)) {
        need -= q;
        free -= q;
      }
    }
  }

  // 3. passive children on the cheapest expected venues for shares due soon
  const double cover = config_.passive_cover_s * 1e9 / horizon;
  const auto due_soon = static_cast<std::int64_t>(
      std::ceil(target_fraction(elapsed + cover) * static_cast<double>(p.quantity)));
  const std::int64_t taken_now = free_at_start - free;
  std::int64_t budget =
      std::min(std::min(due_soon, p.quantity) - p.filled - p.open_quantity - taken_now, free);
  budget = round_down_lots(static_cast<double>(budget), lot);
  if (budget < lot || view.now_ns >= p.end_ns) return;
  const std::size_t n = price_candidates(view, std::min(budget, max_child), candidates, kMaxCandidates);
  std::sort(candidates, candidates + n, [](const Candidate& a, const Candidate& b) {
    return a.score > b.score;
  });
  bool worth_waiting = false;
  for (std::size_t i = 0; i < n && budget >= lot; ++i) {
    const Candidate& c = candidates[i];
    if (c.type == ChildOrderType::kTake || c.score <= 0) continue;
    if (c.fill_probability < config_.min_fill_probability) continue;
    worth_waiting = true;
    if (passive_on[c.venue_id][static_cast<std::size_t>(c.type)]) continue;
    const std::int64_t q = std::min(budget, max_child);
    if (out.add_child(c.venue_id, c.type, 0, q)) {
      passive_on[c.venue_id][static_cast<std::size_t>(c.type)] = true;
      budget -= q;
    }
  }
  if (worth_waiting || budget < lot) return;
  // No passive child is expected to beat a take (the predicted adverse move eats the spread
  // saved): take the shares due soon now rather than wait for the price to run away.
  std::sort(candidates, candidates + n, [](const Candidate& a, const Candidate& b) {
    return a.cost_bps < b.cost_bps;
  });
  for (std::size_t i = 0; i < n && budget > 0; ++i) {
    const Candidate& c = candidates[i];
    if (c.type != ChildOrderType::kTake) continue;
    std::int64_t q = std::min({budget, c.available, max_child});
    if (q < budget && q >= lot) q = q / lot * lot;
    if (q <= 0) continue;
    if (out.add_child(c.venue_id, ChildOrderType::kTake, 0, q)) budget -= q;
  }
}

}  // namespace sor
