#include "sor/rl_policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace sor {
namespace {

constexpr std::size_t at(FeatureIndex f) { return static_cast<std::size_t>(f); }

}  // namespace

const char* validate(const RlActionConfig& c) noexcept {
  if (!(c.child_shares >= 1) || !std::isfinite(c.child_shares)) return "child_shares must be >= 1";
  if (!(c.passive_lifetime_s > 0) || !std::isfinite(c.passive_lifetime_s)) {
    return "passive_lifetime_s must be > 0";
  }
  if (!(c.decision_interval_s > 0) || !std::isfinite(c.decision_interval_s)) {
    return "decision_interval_s must be > 0";
  }
  return "";
}

RlActionSet::RlActionSet(const PolicyVenue* venues, std::size_t venue_count,
                         const RlActionConfig& config)
    : config_(config) {
  venue_count = std::min(venue_count, kMaxPolicyVenues);
  actions_[count_++] = RlAction{venue_count ? venues[0].venue_id : std::uint8_t{0},
                                ChildOrderType::kTake, true};
  for (std::size_t v = 0; v < venue_count; ++v) {
    for (const ChildOrderType type :
         {ChildOrderType::kTake, ChildOrderType::kPost, ChildOrderType::kMidpoint}) {
      if (!venues[v].lit && type != ChildOrderType::kMidpoint) continue;
      actions_[count_++] = RlAction{venues[v].venue_id, type, false};
    }
  }
}

std::int64_t RlActionSet::observe(const PolicyView& view, float* rows, bool* feasible) const noexcept {
  const ParentState& p = *view.parent;
  const std::int64_t lot = std::max<std::int64_t>(1, p.lot_shares);
  const std::int64_t free = p.quantity - p.filled - p.open_quantity;
  // at least an even share of what is left over the decisions left, so waiting stays possible
  const double interval_ns = config_.decision_interval_s * 1e9;
  const double decisions_left =
      std::max(1.0, std::ceil(static_cast<double>(p.end_ns - view.now_ns) / interval_ns));
  const double even = static_cast<double>(p.quantity - p.filled) / decisions_left;
  std::int64_t size = static_cast<std::int64_t>(
                          std::ceil(std::max(config_.child_shares, even) / static_cast<double>(lot))) *
                      lot;
  size = std::min(std::max(size, lot), free >= lot ? free / lot * lot : free);
  const Nbbo nbbo = view.book->nbbo(p.instrument_id);
  const bool two_sided = nbbo.bid_price_ticks > 0 && nbbo.ask_price_ticks > nbbo.bid_price_ticks;
  const Side far_side = p.side == Side::kBuy ? Side::kSell : Side::kBuy;
  const std::int64_t far_price = p.side == Side::kBuy ? nbbo.ask_price_ticks : nbbo.bid_price_ticks;
  // priced at one lot when nothing is free, so the rows stay defined
  const std::int64_t priced = std::max<std::int64_t>(size, lot);
  for (std::size_t i = 0; i < count_; ++i) {
    const RlAction& a = actions_[i];
    float* row = rows + i * kFeatureCount;
    feasible[i] = a.wait;
    DecisionContext c{};
    c.now_ns = view.now_ns;
    c.start_ns = p.start_ns;
    c.end_ns = p.end_ns;
    c.child_quantity = priced;
    c.parent_quantity = p.quantity;
    c.remaining_quantity = std::clamp<std::int64_t>(p.quantity - p.filled, 0, p.quantity);
    c.arrival_mid_ticks = p.arrival_mid_ticks;
    c.instrument_id = p.instrument_id;
    c.venue_id = a.venue_id;
    c.side = p.side;
    c.order_type = a.wait ? ChildOrderType::kTake : a.type;
    if (view.features->build_row(c, *view.book, row) != FeatureStatus::kOk) {
      std::memset(row, 0, sizeof(float) * kFeatureCount);
      feasible[i] = a.wait;
    } else if (!a.wait) {
      bool ok = size > 0 && two_sided;
      if (ok && a.type == ChildOrderType::kTake) {
        ok = view.book->venue_best(a.venue_id, p.instrument_id, far_side).price_ticks == far_price;
      }
      feasible[i] = ok;
    }
    if (a.wait) {
      row[at(FeatureIndex::kChildOrderType)] = kWaitOrderType;
      row[at(FeatureIndex::kChildQuantityShares)] = 0.0f;
      row[at(FeatureIndex::kChildSizeBucket)] = 0.0f;
      row[at(FeatureIndex::kChildAdvFraction)] = 0.0f;
      row[at(FeatureIndex::kChildPriceOffsetTicks)] = 0.0f;
      row[at(FeatureIndex::kChildFeeBps)] = 0.0f;
    }
  }
  return size;
}

void RlActionSet::act(const PolicyView& view, std::size_t index, std::int64_t child_shares,
                      PolicyOutput& out) const noexcept {
  const auto lifetime = static_cast<std::int64_t>(config_.passive_lifetime_s * 1e9);
  for (std::size_t i = 0; i < view.open_child_count; ++i) {
    const OpenChild& c = view.open_children[i];
    if (c.type != ChildOrderType::kTake && !c.cancel_sent && view.now_ns - c.sent_ns >= lifetime) {
      out.add_cancel(c.child_id);
    }
  }
  if (index >= count_ || child_shares <= 0) return;
  const RlAction& a = actions_[index];
  if (a.wait) return;
  out.add_child(a.venue_id, a.type, 0, child_shares);
}

RlPolicy::RlPolicy(const RlActionConfig& config) : config_(config) {}

void RlPolicy::reset(const ParentState& parent, const PolicyVenue* venues, std::size_t venue_count) {
  actions_ = RlActionSet(venues, venue_count, config_);
  next_decision_ns_ = parent.start_ns;
}

void RlPolicy::decide(const PolicyView& view, PolicyOutput& out) noexcept {
  // acts on its own grid (the one it was trained on), whatever the runner's grid
  if (view.now_ns < next_decision_ns_) {
    out.next_decision_ns = next_decision_ns_;
    return;
  }
  next_decision_ns_ = view.now_ns + static_cast<std::int64_t>(config_.decision_interval_s * 1e9);
  out.next_decision_ns = next_decision_ns_;
  const std::int64_t size = actions_.observe(view, rows_, feasible_);
  std::size_t best = 0;  // wait
  const PolicyModels& m = view.models;
  if (m.action_value != nullptr) {
    float best_value = m.predict(ModelSlot::kActionValue, rows_);
    for (std::size_t i = 1; i < actions_.size(); ++i) {
      if (!feasible_[i]) continue;
      const float value = m.predict(ModelSlot::kActionValue, rows_ + i * kFeatureCount);
      if (value > best_value) {
        best_value = value;
        best = i;
      }
    }
  }
  actions_.act(view, best, size, out);
}

}  // namespace sor
