#include "sor/consolidated.hpp"

#include <algorithm>

namespace sor {

const char* ConsolidatedBook::validate_venues(const std::vector<VenueSpec>& venues) noexcept {
  if (venues.empty()) return "a consolidated book needs at least one venue";
  if (venues.size() > kMaxVenues) return "a consolidated book holds at most 64 venues";
  std::array<bool, 256> seen{};
  for (const VenueSpec& v : venues) {
    if (seen[v.venue_id]) return "venue ids must be distinct";
    seen[v.venue_id] = true;
    if (v.book_type != BookType::kL3 && v.book_type != BookType::kL2) {
      return "book type must be L3 or L2";
    }
  }
  return "";
}

ConsolidatedBook::ConsolidatedBook(const std::vector<VenueSpec>& venues,
                                   const BookOptions& options) {
  slot_of_.fill(-1);
  venues_.reserve(venues.size());
  for (const VenueSpec& spec : venues) {
    VenueSlot slot{spec, nullptr, nullptr, nullptr};
    if (spec.book_type == BookType::kL3) {
      slot.l3 = std::make_unique<L3Book>(spec.venue_id, options);
      slot.base = slot.l3.get();
    } else {
      slot.l2 = std::make_unique<L2Book>(spec.venue_id, options);
      slot.base = slot.l2.get();
    }
    slot_of_[spec.venue_id] = static_cast<int>(venues_.size());
    venues_.push_back(std::move(slot));
  }
}

Status ConsolidatedBook::apply(const MdEvent& event) noexcept {
  const int index = slot_of_[event.venue_id];
  if (index < 0) return Status::kUnknownVenue;
  VenueSlot& slot = venues_[static_cast<std::size_t>(index)];
  return slot.l3 ? slot.l3->apply(event) : slot.l2->apply(event);
}

BatchResult ConsolidatedBook::apply_batch(const MdEvent* events, std::size_t count) noexcept {
  return apply_each(*this, events, count);
}

namespace {

// Folds one venue's best level into a running best price, size and venue mask.
void fold_best(const PriceLadder* ladder, std::uint64_t venue_bit, std::int64_t& price,
               std::int64_t& quantity, std::uint64_t& mask) noexcept {
  if (ladder == nullptr || ladder->empty()) return;
  const PriceLevel& best = *ladder->best();
  if (quantity == 0 || ladder->better(best.price_ticks, price)) {
    price = best.price_ticks;
    quantity = best.quantity;
    mask = venue_bit;
  } else if (best.price_ticks == price) {
    quantity += best.quantity;
    mask |= venue_bit;
  }
}

}  // namespace

LevelView ConsolidatedBook::venue_best(std::uint8_t venue_id, std::uint32_t instrument_id,
                                       Side side) const noexcept {
  const int index = venue_index(venue_id);
  if (index < 0) return {};
  const PriceLadder* ladder = book(static_cast<std::size_t>(index)).ladder(instrument_id, side);
  if (ladder == nullptr || ladder->empty()) return {};
  const PriceLevel& best = *ladder->best();
  return {best.price_ticks, best.quantity, best.order_count};
}

Nbbo ConsolidatedBook::nbbo(std::uint32_t instrument_id) const noexcept {
  Nbbo out{0, 0, 0, 0, 0, 0};
  for (std::size_t v = 0; v < venues_.size(); ++v) {
    if (!venues_[v].spec.lit) continue;
    const std::uint64_t bit = std::uint64_t{1} << v;
    const VenueBookBase& book = *venues_[v].base;
    fold_best(book.ladder(instrument_id, Side::kBuy), bit, out.bid_price_ticks, out.bid_quantity,
              out.bid_venue_mask);
    fold_best(book.ladder(instrument_id, Side::kSell), bit, out.ask_price_ticks, out.ask_quantity,
              out.ask_venue_mask);
  }
  return out;
}

std::size_t ConsolidatedBook::depth(std::uint32_t instrument_id, Side side,
                                    std::size_t max_levels, std::int64_t* price_ticks,
                                    std::int64_t* quantity, std::int64_t* venue_quantity,
                                    bool include_dark) const noexcept {
  // A k-way merge over the venues' ladders, each already sorted best first.
  const std::size_t venue_count = venues_.size();
  std::array<const PriceLadder*, kMaxVenues> ladders{};
  std::array<std::size_t, kMaxVenues> cursor{};
  for (std::size_t v = 0; v < venue_count; ++v) {
    if (venues_[v].spec.lit || include_dark) {
      ladders[v] = venues_[v].base->ladder(instrument_id, side);
    }
  }
  const bool bid = side == Side::kBuy;
  std::size_t levels = 0;
  while (levels < max_levels) {
    bool any = false;
    std::int64_t best = 0;
    for (std::size_t v = 0; v < venue_count; ++v) {
      const PriceLadder* l = ladders[v];
      if (l == nullptr || cursor[v] >= l->size()) continue;
      const std::int64_t p = l->at_depth(cursor[v]).price_ticks;
      if (!any || (bid ? p > best : p < best)) best = p;
      any = true;
    }
    if (!any) break;
    std::int64_t total = 0;
    std::int64_t* row = venue_quantity + levels * venue_count;
    for (std::size_t v = 0; v < venue_count; ++v) {
      row[v] = 0;
      const PriceLadder* l = ladders[v];
      if (l == nullptr || cursor[v] >= l->size()) continue;
      const PriceLevel& level = l->at_depth(cursor[v]);
      if (level.price_ticks == best) {
        row[v] = level.quantity;
        total += level.quantity;
        ++cursor[v];
      }
    }
    price_ticks[levels] = best;
    quantity[levels] = total;
    ++levels;
  }
  return levels;
}

std::size_t ConsolidatedBook::protected_quotes(std::uint32_t instrument_id, ProtectedQuote* out,
                                               std::size_t max_quotes) const noexcept {
  std::size_t n = 0;
  for (std::size_t v = 0; v < venues_.size() && n < max_quotes; ++v) {
    if (!venues_[v].spec.lit) continue;
    ProtectedQuote q{venues_[v].spec.venue_id, 0, 0, 0, 0};
    if (const PriceLadder* bids = venues_[v].base->ladder(instrument_id, Side::kBuy)) {
      if (const PriceLevel* best = bids->best()) {
        q.bid_price_ticks = best->price_ticks;
        q.bid_quantity = best->quantity;
      }
    }
    if (const PriceLadder* asks = venues_[v].base->ladder(instrument_id, Side::kSell)) {
      if (const PriceLevel* best = asks->best()) {
        q.ask_price_ticks = best->price_ticks;
        q.ask_quantity = best->quantity;
      }
    }
    out[n++] = q;
  }
  return n;
}

}  // namespace sor
