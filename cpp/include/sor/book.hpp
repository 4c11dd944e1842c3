// Per-venue books: an L3 (order-by-order) book and an L2 (price-level) book, both holding every
// instrument of one venue. Apply calls are noexcept and report a Status; a rejected event
// changes nothing, including the expected sequence number.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "sor/status.hpp"
#include "sor/types.hpp"

namespace sor {

// Sentinel pool index: no order.
inline constexpr std::uint32_t kNoOrder = 0xFFFFFFFFu;

// One price level inside a ladder.
struct PriceLevel {
  std::int64_t price_ticks;  // Level price.
  std::int64_t quantity;     // Total shares resting at the level.
  std::uint32_t order_count; // Orders at the level (L2: as reported by the feed).
  std::uint32_t head;        // First order in time priority (L3 only).
  std::uint32_t tail;        // Last order in time priority (L3 only).
  std::uint32_t reserved;    // Padding to 32 bytes.
};

static_assert(sizeof(PriceLevel) == 32);

// The price levels of one side of one instrument. Levels live in a pool and never move while
// they exist, so an order can keep its level's slot; a compact index sorted by price (best
// last) gives the book order.
class PriceLadder {
 public:
  // Creates an empty ladder for `side` with room for `reserve_levels` levels.
  explicit PriceLadder(Side side, std::size_t reserve_levels = 256);

  // Returns the side this ladder holds.
  Side side() const noexcept { return is_bid_ ? Side::kBuy : Side::kSell; }
  // Returns the number of price levels.
  std::size_t size() const noexcept { return sorted_.size(); }
  // Returns true when the ladder has no level.
  bool empty() const noexcept { return sorted_.empty(); }
  // Returns the level `depth` away from the best (0 = best); depth must be < size().
  const PriceLevel& at_depth(std::size_t depth) const noexcept {
    return pool_[sorted_[sorted_.size() - 1 - depth].slot];
  }
  // Returns the best level, or nullptr when empty.
  const PriceLevel* best() const noexcept {
    return sorted_.empty() ? nullptr : &pool_[sorted_.back().slot];
  }
  // Returns true when price `a` is strictly better than price `b` on this side.
  bool better(std::int64_t a, std::int64_t b) const noexcept { return is_bid_ ? a > b : a < b; }
  // Returns the level in pool slot `slot` (a slot from find_or_insert_slot, still in use).
  PriceLevel& level(std::uint32_t slot) noexcept { return pool_[slot]; }
  // Returns the level in pool slot `slot`.
  const PriceLevel& level(std::uint32_t slot) const noexcept { return pool_[slot]; }
  // Returns the level at `price_ticks`, or nullptr.
  PriceLevel* find(std::int64_t price_ticks) noexcept;
  // Returns the level at `price_ticks`, or nullptr.
  const PriceLevel* find(std::int64_t price_ticks) const noexcept {
    return const_cast<PriceLadder*>(this)->find(price_ticks);
  }
  // Returns the pool slot of the level at `price_ticks`, inserting an empty level when absent.
  std::uint32_t find_or_insert_slot(std::int64_t price_ticks);
  // Returns the level at `price_ticks`, inserting an empty one when absent.
  PriceLevel& find_or_insert(std::int64_t price_ticks) {
    return pool_[find_or_insert_slot(price_ticks)];
  }
  // Removes the level at `price_ticks` (nothing when there is none).
  void erase(std::int64_t price_ticks) noexcept;
  // Removes every level.
  void clear() noexcept {
    sorted_.clear();
    pool_.clear();
    free_.clear();
  }

 private:
  struct Entry {
    std::int64_t price_ticks;
    std::uint32_t slot;
    std::uint32_t reserved;
  };

  // Returns the index of the first entry whose key is >= key(price), and whether it matches.
  std::size_t locate(std::int64_t price_ticks, bool& found) const noexcept;
  // Bids sort ascending by price, asks descending: the key is price times +1 or -1.
  std::int64_t key(std::int64_t price_ticks) const noexcept { return price_ticks * sign_; }

  std::vector<Entry> sorted_;        // Ascending key: worst first, best last.
  std::vector<PriceLevel> pool_;     // Levels by slot.
  std::vector<std::uint32_t> free_;  // Free slots of pool_.
  bool is_bid_;
  std::int64_t sign_;
};

// Applies events to `book` (anything with `Status apply(const MdEvent&)`) in order until the
// first rejection.
template <class Book>
BatchResult apply_each(Book& book, const MdEvent* events, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i) {
    const Status s = book.apply(events[i]);
    if (s != Status::kOk) return BatchResult{i, s};
  }
  return BatchResult{count, Status::kOk};
}

// Options shared by the books.
struct BookOptions {
  bool allow_crossed = false;            // Accept events that lock or cross a venue's own book.
  std::uint32_t max_instruments = 1u << 20; // Instrument ids must be below this.
  std::uint32_t reserve_orders = 1u << 16;  // Orders preallocated (L3); the pool grows past it.
  std::uint32_t reserve_levels = 256;       // Levels preallocated per side per instrument.
};

// Counters kept by every book.
struct BookStats {
  std::uint64_t applied = 0;             // Events applied.
  std::uint64_t rejected = 0;            // Events rejected with a non-ok status.
  std::uint64_t duplicate_sequence = 0;  // Events ignored because their sequence was already seen.
  std::uint64_t executed_quantity = 0;   // Shares executed against resting orders (L3).
};

// Tracks one venue's sequence numbers.
class SequenceTracker {
 public:
  // Returns kOk for the next number (or an unsequenced 0), kSequenceGap for a skip ahead; sets
  // `duplicate` for a number already seen.
  Status check(std::uint64_t sequence, bool& duplicate) const noexcept {
    duplicate = false;
    if (sequence == 0 || expected_ == 0 || sequence == expected_) return Status::kOk;
    if (sequence < expected_) {
      duplicate = true;
      return Status::kOk;
    }
    return Status::kSequenceGap;
  }
  // Records that `sequence` was applied.
  void commit(std::uint64_t sequence) noexcept {
    if (sequence != 0) expected_ = sequence + 1;
  }
  // Returns the next expected number (0 before the first sequenced event).
  std::uint64_t expected() const noexcept { return expected_; }
  // Accepts `next_sequence` as the next number (0 accepts whatever comes next).
  void resync(std::uint64_t next_sequence) noexcept { expected_ = next_sequence; }

 private:
  std::uint64_t expected_ = 0;
};

// Both sides of one instrument.
struct InstrumentLadders {
  PriceLadder bids;  // Buy side.
  PriceLadder asks;  // Sell side.
  // Creates empty ladders with `reserve_levels` preallocated per side.
  explicit InstrumentLadders(std::size_t reserve_levels)
      : bids(Side::kBuy, reserve_levels), asks(Side::kSell, reserve_levels) {}
  // Returns the ladder of `side` (kBuy or kSell).
  PriceLadder& of(Side side) noexcept { return side == Side::kBuy ? bids : asks; }
  // Returns the ladder of `side` (kBuy or kSell).
  const PriceLadder& of(Side side) const noexcept { return side == Side::kBuy ? bids : asks; }
};

// What the two books have in common: venue, options, sequence, instruments and counters.
class VenueBookBase {
 public:
  // Returns the venue this book belongs to.
  std::uint8_t venue_id() const noexcept { return venue_id_; }
  // Returns the ladder of (instrument, side), or nullptr when the instrument has no data yet.
  const PriceLadder* ladder(std::uint32_t instrument_id, Side side) const noexcept {
    if (instrument_id >= instruments_.size() || !instruments_[instrument_id]) return nullptr;
    return &instruments_[instrument_id]->of(side);
  }
  // Returns the next expected sequence number (0 before the first sequenced event).
  std::uint64_t expected_sequence() const noexcept { return sequence_.expected(); }
  // Accepts `next_sequence` as the next sequence number, e.g. after gap recovery.
  void resync(std::uint64_t next_sequence) noexcept { sequence_.resync(next_sequence); }
  // Returns the counters.
  const BookStats& stats() const noexcept { return stats_; }
  // Returns the options the book was built with.
  const BookOptions& options() const noexcept { return options_; }
  // Returns one past the highest instrument id seen.
  std::uint32_t instrument_capacity() const noexcept {
    return static_cast<std::uint32_t>(instruments_.size());
  }

 protected:
  VenueBookBase(std::uint8_t venue_id, const BookOptions& options);
  VenueBookBase(const VenueBookBase&) = delete;
  VenueBookBase& operator=(const VenueBookBase&) = delete;
  VenueBookBase(VenueBookBase&&) noexcept = default;
  VenueBookBase& operator=(VenueBookBase&&) noexcept = default;
  ~VenueBookBase() = default;
  // Returns the ladders of an instrument, creating them on first use; nullptr when out of range.
  InstrumentLadders* instrument(std::uint32_t instrument_id);
  // Returns the ladders of an instrument, or nullptr when it has none.
  InstrumentLadders* existing(std::uint32_t instrument_id) noexcept {
    return instrument_id < instruments_.size() ? instruments_[instrument_id].get() : nullptr;
  }
  // Checks venue and sequence, runs `body` (which returns the status of the book change), and
  // keeps the counters and the expected sequence; a non-ok status leaves everything as it was.
  template <class Body>
  Status guarded_apply(const MdEvent& e, Body&& body) noexcept {
    bool duplicate = false;
    Status s = e.venue_id == venue_id_ ? sequence_.check(e.sequence, duplicate)
                                       : Status::kUnknownVenue;
    if (s == Status::kOk && duplicate) {
      ++stats_.duplicate_sequence;
      return Status::kOk;
    }
    if (s == Status::kOk) s = body(e);
    if (s != Status::kOk) {
      ++stats_.rejected;
      return s;
    }
    sequence_.commit(e.sequence);
    ++stats_.applied;
    return Status::kOk;
  }
  // Returns kCrossedBook when a `side` level at `price` would lock or cross the other side.
  Status check_cross(const InstrumentLadders& ladders, Side side,
                     std::int64_t price_ticks) const noexcept;

  std::uint8_t venue_id_;
  BookOptions options_;
  SequenceTracker sequence_;
  BookStats stats_;
  std::vector<std::unique_ptr<InstrumentLadders>> instruments_;
};

// Order-by-order book of one venue: price-time FIFO per level, O(1) order lookup.
class L3Book : public VenueBookBase {
 public:
  // Creates an empty book for `venue_id`.
  explicit L3Book(std::uint8_t venue_id, const BookOptions& options = {});

  // Applies one event; returns kOk or why it was rejected (nothing changed then).
  Status apply(const MdEvent& event) noexcept;
  // Applies events in order until the first rejection.
  BatchResult apply_batch(const MdEvent* events, std::size_t count) noexcept;
  // Fills `out` with the order and, when `with_queue_position`, its queue position (orders and
  // shares ahead of it at its price, a walk of the level); returns false for an unknown id.
  bool find_order(std::uint64_t order_id, OrderView& out,
                  bool with_queue_position = true) const noexcept;
  // Returns true when the order id rests in the book.
  bool contains(std::uint64_t order_id) const noexcept { return index_.find(order_id) != kNoOrder; }
  // Returns the id of the first order in time priority at the best level of (instrument, side),
  // or false when that side is empty.
  bool front_order(std::uint32_t instrument_id, Side side, std::uint64_t& order_id) const noexcept;
  // Returns the number of resting orders across instruments.
  std::size_t order_count() const noexcept { return index_.size(); }
  // Copies up to `max_orders` order ids of (instrument, side, price) in time priority; returns
  // how many were written.
  std::size_t orders_at(std::uint32_t instrument_id, Side side, std::int64_t price_ticks,
                        std::uint64_t* order_ids, std::size_t max_orders) const noexcept;

 private:
  struct Order {
    std::uint64_t order_id;
    std::int64_t price_ticks;
    std::int64_t quantity;
    std::uint32_t prev;
    std::uint32_t next;
    std::uint32_t instrument_id;
    std::uint32_t level_slot;  // Its level's slot in the ladder's pool.
    Side side;
  };

  // Open-addressing map from order id to pool index (linear probing, backward-shift delete).
  class OrderIndex {
   public:
    explicit OrderIndex(std::size_t reserve);
    std::uint32_t find(std::uint64_t order_id) const noexcept;
    void insert(std::uint64_t order_id, std::uint32_t slot);
    void erase(std::uint64_t order_id) noexcept;
    std::size_t size() const noexcept { return size_; }

   private:
    struct Entry {
      std::uint64_t order_id;
      std::uint32_t slot;  // kNone when the entry is empty.
      std::uint32_t reserved;
    };
    std::size_t home(std::uint64_t order_id) const noexcept {
      return static_cast<std::size_t>((order_id * 0x9E3779B97F4A7C15ull) >> shift_);
    }
    void grow();
    std::vector<Entry> entries_;
    std::size_t mask_ = 0;
    unsigned shift_ = 0;
    std::size_t size_ = 0;
  };

  Status change(const MdEvent& e) noexcept;
  Status add(const MdEvent& e) noexcept;
  Status reduce(const MdEvent& e, bool execution) noexcept;
  Status remove(const MdEvent& e) noexcept;
  Status replace(const MdEvent& e) noexcept;
  Status modify(const MdEvent& e) noexcept;
  Status clear_instrument(std::uint32_t instrument_id) noexcept;

  std::uint32_t allocate_order();
  void link_back(PriceLadder& ladder, std::uint32_t level_slot, std::uint32_t slot) noexcept;
  // Unlinks the order from its level (erasing an emptied level) and frees it.
  void unlink_and_free(std::uint32_t slot) noexcept;
  void unlink(PriceLadder& ladder, std::uint32_t slot) noexcept;

  std::vector<Order> orders_;
  std::uint32_t free_head_;
  OrderIndex index_;
};

// Price-level book of one venue, fed by kLevel events.
class L2Book : public VenueBookBase {
 public:
  // Creates an empty book for `venue_id`.
  explicit L2Book(std::uint8_t venue_id, const BookOptions& options = {});

  // Applies one event; returns kOk or why it was rejected (nothing changed then).
  Status apply(const MdEvent& event) noexcept;
  // Applies events in order until the first rejection.
  BatchResult apply_batch(const MdEvent* events, std::size_t count) noexcept;

 private:
  Status change(const MdEvent& e) noexcept;
  Status set_level(const MdEvent& e) noexcept;
};

}  // namespace sor
