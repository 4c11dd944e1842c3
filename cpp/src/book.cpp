#include "sor/book.hpp"

#include <algorithm>
#include <bit>

namespace sor {

// ---------------------------------------------------------------------------------------------
// PriceLadder
// ---------------------------------------------------------------------------------------------

PriceLadder::PriceLadder(Side side, std::size_t reserve_levels)
    : is_bid_(side == Side::kBuy), sign_(side == Side::kBuy ? 1 : -1) {
  sorted_.reserve(reserve_levels);
  pool_.reserve(reserve_levels);
  free_.reserve(reserve_levels);
}

std::size_t PriceLadder::locate(std::int64_t price_ticks, bool& found) const noexcept {
  // Most updates land within a few levels of the best, which is at the back: scan those
  // linearly, and only fall back to a binary search for deep levels.
  const std::int64_t k = key(price_ticks);
  const std::size_t n = sorted_.size();
  const std::size_t limit = n > 8 ? n - 8 : 0;
  std::size_t i = n;
  while (i > limit && key(sorted_[i - 1].price_ticks) > k) --i;
  if (i > limit) {
    found = key(sorted_[i - 1].price_ticks) == k;
    return found ? i - 1 : i;
  }
  if (i == 0) {
    found = false;
    return 0;
  }
  const auto it = std::lower_bound(
      sorted_.begin(), sorted_.begin() + static_cast<std::ptrdiff_t>(limit), k,
      [this](const Entry& e, std::int64_t value) { return key(e.price_ticks) < value; });
  const auto pos = static_cast<std::size_t>(it - sorted_.begin());
  found = pos < limit && key(sorted_[pos].price_ticks) == k;
  return pos;
}

PriceLevel* PriceLadder::find(std::int64_t price_ticks) noexcept {
  bool found = false;
  const std::size_t pos = locate(price_ticks, found);
  return found ? &pool_[sorted_[pos].slot] : nullptr;
}

std::uint32_t PriceLadder::find_or_insert_slot(std::int64_t price_ticks) {
  bool found = false;
  const std::size_t pos = locate(price_ticks, found);
  if (found) return sorted_[pos].slot;
  std::uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
    pool_[slot] = PriceLevel{price_ticks, 0, 0, kNoOrder, kNoOrder, 0};
  } else {
    slot = static_cast<std::uint32_t>(pool_.size());
    pool_.push_back(PriceLevel{price_ticks, 0, 0, kNoOrder, kNoOrder, 0});
  }
  sorted_.insert(sorted_.begin() + static_cast<std::ptrdiff_t>(pos), Entry{price_ticks, slot, 0});
  return slot;
}

void PriceLadder::erase(std::int64_t price_ticks) noexcept {
  bool found = false;
  const std::size_t pos = locate(price_ticks, found);
  if (!found) return;
  free_.push_back(sorted_[pos].slot);
  sorted_.erase(sorted_.begin() + static_cast<std::ptrdiff_t>(pos));
}

// ---------------------------------------------------------------------------------------------
// VenueBookBase
// ---------------------------------------------------------------------------------------------

VenueBookBase::VenueBookBase(std::uint8_t venue_id, const BookOptions& options)
    : venue_id_(venue_id), options_(options) {}

InstrumentLadders* VenueBookBase::instrument(std::uint32_t instrument_id) {
  if (instrument_id >= options_.max_instruments) return nullptr;
  if (instrument_id >= instruments_.size()) instruments_.resize(instrument_id + 1);
  auto& slot = instruments_[instrument_id];
  if (!slot) slot = std::make_unique<InstrumentLadders>(options_.reserve_levels);
  return slot.get();
}

Status VenueBookBase::check_cross(const InstrumentLadders& ladders, Side side,
                                  std::int64_t price_ticks) const noexcept {
  if (options_.allow_crossed) return Status::kOk;
  if (side == Side::kBuy) {
    const PriceLevel* best_ask = ladders.asks.best();
    if (best_ask != nullptr && price_ticks >= best_ask->price_ticks) return Status::kCrossedBook;
  } else {
    const PriceLevel* best_bid = ladders.bids.best();
    if (best_bid != nullptr && price_ticks <= best_bid->price_ticks) return Status::kCrossedBook;
  }
  return Status::kOk;
}

namespace {

inline bool valid_side(Side side) noexcept { return side == Side::kBuy || side == Side::kSell; }

inline bool has_no_book_effect(EventKind kind) noexcept {
  return kind == EventKind::kTrade || kind == EventKind::kBrokenTrade ||
         kind == EventKind::kStatus;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// L3Book::OrderIndex
// ---------------------------------------------------------------------------------------------

L3Book::OrderIndex::OrderIndex(std::size_t reserve) {
  const std::size_t capacity = std::bit_ceil(std::max<std::size_t>(16, reserve * 2));
  entries_.assign(capacity, Entry{0, kNoOrder, 0});
  mask_ = capacity - 1;
  shift_ = 64u - static_cast<unsigned>(std::countr_zero(capacity));
}

std::uint32_t L3Book::OrderIndex::find(std::uint64_t order_id) const noexcept {
  std::size_t i = home(order_id);
  while (true) {
    const Entry& e = entries_[i];
    if (e.slot == kNoOrder) return kNoOrder;
    if (e.order_id == order_id) return e.slot;
    i = (i + 1) & mask_;
  }
}

void L3Book::OrderIndex::insert(std::uint64_t order_id, std::uint32_t slot) {
  if ((size_ + 1) * 2 > entries_.size()) grow();
  std::size_t i = home(order_id);
  while (entries_[i].slot != kNoOrder) i = (i + 1) & mask_;
  entries_[i] = Entry{order_id, slot, 0};
  ++size_;
}

void L3Book::OrderIndex::erase(std::uint64_t order_id) noexcept {
  std::size_t i = home(order_id);
  while (true) {
    if (entries_[i].slot == kNoOrder) return;
    if (entries_[i].order_id == order_id) break;
    i = (i + 1) & mask_;
  }
  // Backward-shift deletion keeps probe chains intact without tombstones.
  std::size_t j = i;
  while (true) {
    j = (j + 1) & mask_;
    if (entries_[j].slot == kNoOrder) break;
    const std::size_t k = home(entries_[j].order_id);
    const bool movable = (j > i) ? (k <= i || k > j) : (k <= i && k > j);
    if (movable) {
      entries_[i] = entries_[j];
      i = j;
    }
  }
  entries_[i].slot = kNoOrder;
  --size_;
}

void L3Book::OrderIndex::grow() {
  std::vector<Entry> old;
  old.swap(entries_);
  const std::size_t capacity = old.size() * 2;
  entries_.assign(capacity, Entry{0, kNoOrder, 0});
  mask_ = capacity - 1;
  shift_ = 64u - static_cast<unsigned>(std::countr_zero(capacity));
  size_ = 0;
  for (const Entry& e : old) {
    if (e.slot != kNoOrder) {
      std::size_t i = home(e.order_id);
      while (entries_[i].slot != kNoOrder) i = (i + 1) & mask_;
      entries_[i] = e;
      ++size_;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// L3Book
// ---------------------------------------------------------------------------------------------

L3Book::L3Book(std::uint8_t venue_id, const BookOptions& options)
    : VenueBookBase(venue_id, options), free_head_(kNoOrder), index_(options.reserve_orders) {
  orders_.reserve(options.reserve_orders);
}

std::uint32_t L3Book::allocate_order() {
  if (free_head_ != kNoOrder) {
    const std::uint32_t slot = free_head_;
    free_head_ = orders_[slot].next;
    return slot;
  }
  orders_.push_back(Order{});
  return static_cast<std::uint32_t>(orders_.size() - 1);
}

void L3Book::link_back(PriceLadder& ladder, std::uint32_t level_slot,
                       std::uint32_t slot) noexcept {
  PriceLevel& level = ladder.level(level_slot);
  Order& o = orders_[slot];
  o.level_slot = level_slot;
  o.prev = level.tail;
  o.next = kNoOrder;
  if (level.tail != kNoOrder) {
    orders_[level.tail].next = slot;
  } else {
    level.head = slot;
  }
  level.tail = slot;
  level.quantity += o.quantity;
  ++level.order_count;
}

void L3Book::unlink(PriceLadder& ladder, std::uint32_t slot) noexcept {
  Order& o = orders_[slot];
  PriceLevel& level = ladder.level(o.level_slot);
  if (o.prev != kNoOrder) orders_[o.prev].next = o.next; else level.head = o.next;
  if (o.next != kNoOrder) orders_[o.next].prev = o.prev; else level.tail = o.prev;
  level.quantity -= o.quantity;
  if (--level.order_count == 0) ladder.erase(o.price_ticks);
}

void L3Book::unlink_and_free(std::uint32_t slot) noexcept {
  Order& o = orders_[slot];
  unlink(instruments_[o.instrument_id]->of(o.side), slot);
  o.next = free_head_;
  free_head_ = slot;
}

Status L3Book::add(const MdEvent& e) noexcept {
  if (!valid_side(e.side)) return Status::kInvalidSide;
  if (e.quantity <= 0) return Status::kInvalidQuantity;
  if (e.price_ticks <= 0) return Status::kInvalidPrice;
  if (index_.find(e.order_id) != kNoOrder) return Status::kDuplicateOrder;
  InstrumentLadders* ladders = instrument(e.instrument_id);
  if (ladders == nullptr) return Status::kUnknownInstrument;
  if (const Status s = check_cross(*ladders, e.side, e.price_ticks); s != Status::kOk) return s;
  const std::uint32_t slot = allocate_order();
  orders_[slot] = Order{e.order_id, e.price_ticks, e.quantity, kNoOrder, kNoOrder,
                        e.instrument_id, 0, e.side};
  PriceLadder& ladder = ladders->of(e.side);
  link_back(ladder, ladder.find_or_insert_slot(e.price_ticks), slot);
  index_.insert(e.order_id, slot);
  return Status::kOk;
}

Status L3Book::reduce(const MdEvent& e, bool execution) noexcept {
  const std::uint32_t slot = index_.find(e.order_id);
  if (slot == kNoOrder) return Status::kUnknownOrder;
  Order& o = orders_[slot];
  if (e.quantity <= 0 || e.quantity > o.quantity) return Status::kInvalidQuantity;
  if (execution) stats_.executed_quantity += static_cast<std::uint64_t>(e.quantity);
  if (e.quantity == o.quantity) {
    unlink_and_free(slot);
    index_.erase(e.order_id);
    return Status::kOk;
  }
  o.quantity -= e.quantity;
  instruments_[o.instrument_id]->of(o.side).level(o.level_slot).quantity -= e.quantity;
  return Status::kOk;
}

Status L3Book::remove(const MdEvent& e) noexcept {
  const std::uint32_t slot = index_.find(e.order_id);
  if (slot == kNoOrder) return Status::kUnknownOrder;
  unlink_and_free(slot);
  index_.erase(e.order_id);
  return Status::kOk;
}

Status L3Book::replace(const MdEvent& e) noexcept {
  const std::uint32_t old_slot = index_.find(e.order_id);
  if (old_slot == kNoOrder) return Status::kUnknownOrder;
  if (e.related_id != e.order_id && index_.find(e.related_id) != kNoOrder) {
    return Status::kDuplicateOrder;
  }
  if (e.quantity <= 0) return Status::kInvalidQuantity;
  if (e.price_ticks <= 0) return Status::kInvalidPrice;
  const Order old = orders_[old_slot];
  InstrumentLadders& ladders = *instruments_[old.instrument_id];
  if (const Status s = check_cross(ladders, old.side, e.price_ticks); s != Status::kOk) return s;
  unlink_and_free(old_slot);
  index_.erase(old.order_id);
  const std::uint32_t slot = allocate_order();
  orders_[slot] = Order{e.related_id, e.price_ticks, e.quantity, kNoOrder, kNoOrder,
                        old.instrument_id, 0, old.side};
  PriceLadder& ladder = ladders.of(old.side);
  link_back(ladder, ladder.find_or_insert_slot(e.price_ticks), slot);
  index_.insert(e.related_id, slot);
  return Status::kOk;
}

Status L3Book::modify(const MdEvent& e) noexcept {
  const std::uint32_t slot = index_.find(e.order_id);
  if (slot == kNoOrder) return Status::kUnknownOrder;
  if (e.quantity <= 0) return Status::kInvalidQuantity;
  if (e.price_ticks <= 0) return Status::kInvalidPrice;
  Order& o = orders_[slot];
  PriceLadder& ladder = instruments_[o.instrument_id]->of(o.side);
  if (e.price_ticks == o.price_ticks && e.quantity <= o.quantity) {
    ladder.level(o.level_slot).quantity -= o.quantity - e.quantity;
    o.quantity = e.quantity;
    return Status::kOk;
  }
  if (e.price_ticks != o.price_ticks) {
    if (const Status s = check_cross(*instruments_[o.instrument_id], o.side, e.price_ticks);
        s != Status::kOk) {
      return s;
    }
  }
  unlink(ladder, slot);
  o.price_ticks = e.price_ticks;
  o.quantity = e.quantity;
  link_back(ladder, ladder.find_or_insert_slot(e.price_ticks), slot);
  return Status::kOk;
}

Status L3Book::clear_instrument(std::uint32_t instrument_id) noexcept {
  if (instrument_id >= options_.max_instruments) return Status::kUnknownInstrument;
  InstrumentLadders* ladders = existing(instrument_id);
  if (ladders == nullptr) return Status::kOk;
  for (PriceLadder* ladder : {&ladders->bids, &ladders->asks}) {
    for (std::size_t depth = 0; depth < ladder->size(); ++depth) {
      std::uint32_t slot = ladder->at_depth(depth).head;
      while (slot != kNoOrder) {
        Order& o = orders_[slot];
        const std::uint32_t next = o.next;
        index_.erase(o.order_id);
        o.next = free_head_;
        free_head_ = slot;
        slot = next;
      }
    }
    ladder->clear();
  }
  return Status::kOk;
}

Status L3Book::change(const MdEvent& e) noexcept {
  switch (e.kind) {
    case EventKind::kAdd: return add(e);
    case EventKind::kModify: return modify(e);
    case EventKind::kReplace: return replace(e);
    case EventKind::kCancel: return reduce(e, false);
    case EventKind::kDelete: return remove(e);
    case EventKind::kExecute: return reduce(e, true);
    case EventKind::kClear: return clear_instrument(e.instrument_id);
    default: return has_no_book_effect(e.kind) ? Status::kOk : Status::kInvalidKind;
  }
}

Status L3Book::apply(const MdEvent& e) noexcept {
  return guarded_apply(e, [this](const MdEvent& event) { return change(event); });
}

BatchResult L3Book::apply_batch(const MdEvent* events, std::size_t count) noexcept {
  return apply_each(*this, events, count);
}

bool L3Book::find_order(std::uint64_t order_id, OrderView& out,
                        bool with_queue_position) const noexcept {
  const std::uint32_t slot = index_.find(order_id);
  if (slot == kNoOrder) return false;
  const Order& o = orders_[slot];
  out = OrderView{o.order_id, o.price_ticks, o.quantity, 0, 0, o.instrument_id, o.side, {}};
  if (!with_queue_position) return true;
  const PriceLadder& ladder = instruments_[o.instrument_id]->of(o.side);
  const PriceLevel* level = &ladder.level(o.level_slot);
  for (std::uint32_t cursor = level->head; cursor != slot; cursor = orders_[cursor].next) {
    ++out.orders_ahead;
    out.quantity_ahead += orders_[cursor].quantity;
  }
  return true;
}

bool L3Book::front_order(std::uint32_t instrument_id, Side side,
                         std::uint64_t& order_id) const noexcept {
  const PriceLadder* l = ladder(instrument_id, side);
  if (l == nullptr || l->empty()) return false;
  order_id = orders_[l->best()->head].order_id;
  return true;
}

std::size_t L3Book::orders_at(std::uint32_t instrument_id, Side side, std::int64_t price_ticks,
                              std::uint64_t* order_ids, std::size_t max_orders) const noexcept {
  const PriceLadder* l = ladder(instrument_id, side);
  if (l == nullptr) return 0;
  const PriceLevel* level = l->find(price_ticks);
  if (level == nullptr) return 0;
  std::size_t n = 0;
  for (std::uint32_t c = level->head; c != kNoOrder && n < max_orders; c = orders_[c].next) {
    order_ids[n++] = orders_[c].order_id;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// L2Book
// ---------------------------------------------------------------------------------------------

L2Book::L2Book(std::uint8_t venue_id, const BookOptions& options)
    : VenueBookBase(venue_id, options) {}

Status L2Book::set_level(const MdEvent& e) noexcept {
  if (!valid_side(e.side)) return Status::kInvalidSide;
  if (e.price_ticks <= 0) return Status::kInvalidPrice;
  if (e.quantity < 0) return Status::kInvalidQuantity;
  InstrumentLadders* ladders = instrument(e.instrument_id);
  if (ladders == nullptr) return Status::kUnknownInstrument;
  PriceLadder& ladder = ladders->of(e.side);
  PriceLevel* level = ladder.find(e.price_ticks);
  if (e.quantity == 0) {
    if (level == nullptr) return Status::kUnknownLevel;
    ladder.erase(e.price_ticks);
    return Status::kOk;
  }
  if (level == nullptr) {
    if (const Status s = check_cross(*ladders, e.side, e.price_ticks); s != Status::kOk) return s;
    level = &ladder.find_or_insert(e.price_ticks);
  }
  level->quantity = e.quantity;
  level->order_count = static_cast<std::uint32_t>(e.related_id);
  return Status::kOk;
}

Status L2Book::change(const MdEvent& e) noexcept {
  switch (e.kind) {
    case EventKind::kLevel: return set_level(e);
    case EventKind::kClear: {
      if (e.instrument_id >= options_.max_instruments) return Status::kUnknownInstrument;
      if (InstrumentLadders* ladders = existing(e.instrument_id); ladders != nullptr) {
        ladders->bids.clear();
        ladders->asks.clear();
      }
      return Status::kOk;
    }
    default: return has_no_book_effect(e.kind) ? Status::kOk : Status::kInvalidKind;
  }
}

Status L2Book::apply(const MdEvent& e) noexcept {
  return guarded_apply(e, [this](const MdEvent& event) { return change(event); });
}

BatchResult L2Book::apply_batch(const MdEvent* events, std::size_t count) noexcept {
  return apply_each(*this, events, count);
}

}  // namespace sor
