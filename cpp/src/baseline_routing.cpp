// The best-price rule shared by the baseline policies (see baseline_policies.hpp).
#include <algorithm>
#include <cmath>

#include "sor/baseline_policies.hpp"
#include "sor/policies.hpp"

namespace sor {
namespace {

// Levels per venue the rule looks at; deeper levels are left for the next decision.
constexpr std::size_t kRouteLevels = 16;

struct Candidate {
  std::int64_t price_ticks;
  std::int64_t quantity;
  double fee_usd_per_share;
  std::uint32_t static_rank;
  std::uint32_t venue_position;  // Position in view.venues.
};

// Buy takes asks: lower is better; sell takes bids: higher is better.
bool better_candidate(const Candidate& a, const Candidate& b, bool buy) noexcept {
  if (a.price_ticks != b.price_ticks) return buy ? a.price_ticks < b.price_ticks
                                                 : a.price_ticks > b.price_ticks;
  if (a.fee_usd_per_share != b.fee_usd_per_share) return a.fee_usd_per_share < b.fee_usd_per_share;
  if (a.static_rank != b.static_rank) return a.static_rank < b.static_rank;
  return a.venue_position < b.venue_position;
}

std::size_t collect(const PolicyView& view, Candidate* candidates) noexcept {
  const ParentState& parent = *view.parent;
  const bool buy = parent.side == Side::kBuy;
  const Side far_side = buy ? Side::kSell : Side::kBuy;
  const std::size_t venue_count = std::min(view.venue_count, kMaxPolicyVenues);
  std::size_t count = 0;
  if (view.book == nullptr) return 0;
  for (std::size_t v = 0; v < venue_count; ++v) {
    const PolicyVenue& venue = view.venues[v];
    if (!venue.lit) continue;
    const int index = view.book->venue_index(venue.venue_id);
    if (index < 0) continue;
    const PriceLadder* ladder =
        view.book->book(static_cast<std::size_t>(index)).ladder(parent.instrument_id, far_side);
    if (ladder == nullptr) continue;
    const std::size_t levels = std::min(ladder->size(), kRouteLevels);
    for (std::size_t d = 0; d < levels; ++d) {
      const PriceLevel& level = ladder->at_depth(d);
      if (parent.limit_price_ticks != 0 &&
          (buy ? level.price_ticks > parent.limit_price_ticks
               : level.price_ticks < parent.limit_price_ticks)) {
        break;
      }
      if (level.quantity <= 0) continue;
      candidates[count++] = Candidate{level.price_ticks, level.quantity,
                                      venue.taker_fee_usd_per_share, venue.static_rank,
                                      static_cast<std::uint32_t>(v)};
    }
  }
  std::sort(candidates, candidates + count,
            [buy](const Candidate& a, const Candidate& b) { return better_candidate(a, b, buy); });
  return count;
}

}  // namespace

std::int64_t sendable_quantity(const ParentState& parent) noexcept {
  return std::max<std::int64_t>(0, parent.quantity - parent.filled - parent.open_quantity);
}

std::int64_t round_to_lot(double shares, std::int64_t lot_shares) noexcept {
  if (!(shares > 0.0)) return 0;
  if (lot_shares <= 1) return std::llround(shares);
  const double lots = std::round(shares / static_cast<double>(lot_shares));
  return static_cast<std::int64_t>(lots) * lot_shares;
}

std::int64_t route_marketable(const PolicyView& view, std::int64_t quantity,
                              PolicyOutput& out) noexcept {
  const ParentState& parent = *view.parent;
  const std::int64_t sendable = sendable_quantity(parent);
  quantity = std::min(quantity, sendable);
  if (quantity <= 0) return 0;
  const bool completes_parent = quantity == sendable;
  const std::int64_t lot = std::max<std::int64_t>(parent.lot_shares, 1);
  // the best-price rule of the best_price policy, with whole lots per child
  return add_best_price_takes(view, quantity, kRouteLevels, out, lot, completes_parent);
}

double best_taker_fee_usd_per_share(const PolicyView& view) noexcept {
  Candidate candidates[kMaxPolicyVenues * kRouteLevels];
  if (collect(view, candidates) > 0) return candidates[0].fee_usd_per_share;
  double fee = 0.0;
  bool any = false;
  for (std::size_t v = 0; v < std::min(view.venue_count, kMaxPolicyVenues); ++v) {
    if (!view.venues[v].lit) continue;
    fee = any ? std::min(fee, view.venues[v].taker_fee_usd_per_share)
              : view.venues[v].taker_fee_usd_per_share;
    any = true;
  }
  return fee;
}

}  // namespace sor
