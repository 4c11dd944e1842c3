#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "sor/book.hpp"
#include "sor/policies.hpp"

namespace sor {
namespace {

struct Offer {
  std::int64_t price_ticks;
  std::int64_t quantity;
  double fee_usd_per_share;
  std::uint32_t static_rank;
  std::uint32_t venue_position;  // position in view.venues
  std::uint32_t depth;           // level index within the venue, keeps the order total
};

}  // namespace

std::int64_t add_best_price_takes(const PolicyView& view, std::int64_t quantity,
                                  std::size_t depth_levels, PolicyOutput& out,
                                  std::int64_t lot_shares, bool odd_lots_to_best) noexcept {
  if (quantity <= 0 || view.book == nullptr || view.parent == nullptr) return 0;
  const ParentState& parent = *view.parent;
  const bool buy = parent.side == Side::kBuy;
  const Side far_side = buy ? Side::kSell : Side::kBuy;
  const std::int64_t limit = parent.limit_price_ticks;
  const std::size_t levels = std::min(depth_levels, kMaxBestPriceLevels);
  const std::size_t venue_count = std::min(view.venue_count, kMaxPolicyVenues);

  std::array<Offer, kMaxPolicyVenues * kMaxBestPriceLevels> offers;
  std::size_t count = 0;
  for (std::size_t v = 0; v < venue_count; ++v) {
    const PolicyVenue& venue = view.venues[v];
    if (!venue.lit) continue;
    const int index = view.book->venue_index(venue.venue_id);
    if (index < 0) continue;
    const PriceLadder* ladder =
        view.book->book(static_cast<std::size_t>(index)).ladder(parent.instrument_id, far_side);
    if (ladder == nullptr) continue;
    const std::size_t depth = std::min(levels, ladder->size());
    for (std::size_t d = 0; d < depth; ++d) {
      const PriceLevel& level = ladder->at_depth(d);
      if (limit > 0 && (buy ? level.price_ticks > limit : level.price_ticks < limit)) break;
      if (level.quantity <= 0) continue;
      offers[count++] = Offer{level.price_ticks, level.quantity, venue.taker_fee_usd_per_share,
                              venue.static_rank, static_cast<std::uint32_t>(v),
                              static_cast<std::uint32_t>(d)};
    }
  }
  std::sort(offers.begin(), offers.begin() + static_cast<std::ptrdiff_t>(count),
            [buy](const Offer& a, const Offer& b) {
              if (a.price_ticks != b.price_ticks) {
                return buy ? a.price_ticks < b.price_ticks : a.price_ticks > b.price_ticks;
              }
              if (a.fee_usd_per_share != b.fee_usd_per_share) {
                return a.fee_usd_per_share < b.fee_usd_per_share;
              }
              if (a.static_rank != b.static_rank) return a.static_rank < b.static_rank;
              if (a.venue_position != b.venue_position) return a.venue_position < b.venue_position;
              return a.depth < b.depth;
            });

  // One IOC per venue, at the worst price allocated there; venues in order of their best offer.
  std::array<std::int64_t, kMaxPolicyVenues> venue_quantity{};
  std::array<std::int64_t, kMaxPolicyVenues> venue_price{};
  std::array<std::uint32_t, kMaxPolicyVenues> venue_order{};
  std::size_t used = 0;
  std::int64_t remaining = quantity;
  for (std::size_t n = 0; n < count && remaining > 0; ++n) {
    const Offer& o = offers[n];
    const std::int64_t take = std::min(o.quantity, remaining);
    remaining -= take;
    if (venue_quantity[o.venue_position] == 0) venue_order[used++] = o.venue_position;
    venue_quantity[o.venue_position] += take;
    venue_price[o.venue_position] = o.price_ticks;
  }
  if (lot_shares > 1) {
    // whole lots per child; the odd shares ride on the best venue only when asked
    std::int64_t odd = 0;
    for (std::size_t n = 0; n < used; ++n) {
      std::int64_t& q = venue_quantity[venue_order[n]];
      odd += q % lot_shares;
      q -= q % lot_shares;
    }
    if (odd_lots_to_best && used > 0) venue_quantity[venue_order[0]] += odd;
  }
  std::int64_t requested = 0;
  for (std::size_t n = 0; n < used; ++n) {
    const std::uint32_t v = venue_order[n];
    if (venue_quantity[v] <= 0) continue;
    if (!out.add_child(view.venues[v].venue_id, ChildOrderType::kTake, venue_price[v],
                       venue_quantity[v])) {
      break;
    }
    requested += venue_quantity[v];
  }
  return requested;
}

void BestPricePolicy::reset(const ParentState& parent, const PolicyVenue* venues,
                            std::size_t venue_count) {
  (void)parent;
  (void)venues;
  (void)venue_count;
}

void BestPricePolicy::decide(const PolicyView& view, PolicyOutput& out) noexcept {
  const ParentState& p = *view.parent;
  const std::int64_t free = p.quantity - p.filled - p.open_quantity;
  if (free <= 0) return;
  add_best_price_takes(view, free, static_cast<std::size_t>(config_.depth_levels), out);
}

std::unique_ptr<ExecutionPolicy> make_best_price_policy(const PolicyParams& params,
                                                        std::string& error) {
  PolicyParamReader reader(params, error);
  BestPriceConfig config;
  config.depth_levels = reader.integer("depth_levels", config.depth_levels, 1,
                                       static_cast<std::int64_t>(kMaxBestPriceLevels));
  if (!reader.finish()) return nullptr;
  return std::make_unique<BestPricePolicy>(config);
}

}  // namespace sor
