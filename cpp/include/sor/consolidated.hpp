// The consolidated book: one L3 or L2 book per venue, and the cross-venue views built from
// them (NBBO, top-N depth with per-venue sizes, protected quotes).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "sor/book.hpp"
#include "sor/status.hpp"
#include "sor/types.hpp"

namespace sor {

// How a venue's market data arrives.
enum class BookType : std::uint8_t {
  kL3 = 3,  // Order by order.
  kL2 = 2,  // Price levels.
};

// One venue of a consolidated book.
struct VenueSpec {
  std::uint8_t venue_id;  // Venue id carried by its events.
  BookType book_type;     // L3 or L2.
  bool lit;               // Lit venues form the NBBO and protected quotes; dark ones do not.
};

// The best displayed bid and offer of one lit venue.
struct ProtectedQuote {
  std::uint8_t venue_id;         // Venue.
  std::int64_t bid_price_ticks;  // Best bid (0 when none).
  std::int64_t bid_quantity;     // Shares at the best bid.
  std::int64_t ask_price_ticks;  // Best ask (0 when none).
  std::int64_t ask_quantity;     // Shares at the best ask.
};

// Books of every venue, routed by MdEvent::venue_id, with consolidated views per instrument.
class ConsolidatedBook {
 public:
  // Most venues one consolidated book can hold (venue masks are 64-bit).
  static constexpr std::size_t kMaxVenues = 64;

  // Builds empty books for `venues`; venue ids must be distinct and there must be at most
  // kMaxVenues of them (checked by the caller; see sor/consolidated.cpp validate_venues).
  ConsolidatedBook(const std::vector<VenueSpec>& venues, const BookOptions& options = {});
  ConsolidatedBook(const ConsolidatedBook&) = delete;
  ConsolidatedBook& operator=(const ConsolidatedBook&) = delete;
  ConsolidatedBook(ConsolidatedBook&&) noexcept = default;
  ConsolidatedBook& operator=(ConsolidatedBook&&) noexcept = default;

  // Returns an empty string when `venues` can form a book, or what is wrong with them.
  static const char* validate_venues(const std::vector<VenueSpec>& venues) noexcept;

  // Applies one event to its venue's book.
  Status apply(const MdEvent& event) noexcept;
  // Applies events in order until the first rejection.
  BatchResult apply_batch(const MdEvent* events, std::size_t count) noexcept;

  // Returns the number of venues.
  std::size_t venue_count() const noexcept { return venues_.size(); }
  // Returns the spec of the venue at position `index` (the order given at construction).
  const VenueSpec& venue(std::size_t index) const noexcept { return venues_[index].spec; }
  // Returns the position of `venue_id`, or -1 when the book does not hold it.
  int venue_index(std::uint8_t venue_id) const noexcept { return slot_of_[venue_id]; }
  // Returns the L3 book of the venue at `index`, or nullptr when it is an L2 venue.
  const L3Book* l3(std::size_t index) const noexcept { return venues_[index].l3.get(); }
  // Returns the L2 book of the venue at `index`, or nullptr when it is an L3 venue.
  const L2Book* l2(std::size_t index) const noexcept { return venues_[index].l2.get(); }
  // Returns the book of the venue at `index` as its common base.
  const VenueBookBase& book(std::size_t index) const noexcept { return *venues_[index].base; }

  // Returns the best level of one venue's (instrument, side), all zero when it is empty or the
  // venue is not in the book.
  LevelView venue_best(std::uint8_t venue_id, std::uint32_t instrument_id, Side side) const noexcept;
  // Returns the national best bid and offer of `instrument_id` across lit venues.
  Nbbo nbbo(std::uint32_t instrument_id) const noexcept;
  // Fills the best `max_levels` consolidated price levels of one side, best first: prices,
  // total shares across venues, and per-venue shares in `venue_quantity` (row-major
  // [level][venue position], max_levels x venue_count()). Includes dark venues only when
  // `include_dark` (dark venues with a book, e.g. a simulated pool). Returns the level count.
  std::size_t depth(std::uint32_t instrument_id, Side side, std::size_t max_levels,
                    std::int64_t* price_ticks, std::int64_t* quantity,
                    std::int64_t* venue_quantity, bool include_dark = false) const noexcept;
  // Fills one ProtectedQuote per lit venue, in venue order; returns how many were written.
  std::size_t protected_quotes(std::uint32_t instrument_id, ProtectedQuote* out,
                               std::size_t max_quotes) const noexcept;

 private:
  struct VenueSlot {
    VenueSpec spec;
    std::unique_ptr<L3Book> l3;
    std::unique_ptr<L2Book> l2;
    VenueBookBase* base;
  };

  std::vector<VenueSlot> venues_;
  std::array<int, 256> slot_of_{};
};

}  // namespace sor
