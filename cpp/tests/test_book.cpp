#define SOR_TEST_MAIN
#include "check.hpp"

#include <cstring>
#include <vector>

#include "sor/book.hpp"
#include "sor/consolidated.hpp"
#include "sor/synthetic_flow.hpp"

using namespace sor;

namespace {

MdEvent ev(EventKind kind, std::uint64_t id, Side side, std::int64_t price, std::int64_t qty,
           std::uint64_t seq = 0, std::uint8_t venue = 0, std::uint64_t related = 0) {
  MdEvent e{};
  e.kind = kind;
  e.order_id = id;
  e.side = side;
  e.price_ticks = price;
  e.quantity = qty;
  e.sequence = seq;
  e.venue_id = venue;
  e.related_id = related;
  return e;
}

const PriceLevel& best(const L3Book& b, Side s) { return *b.ladder(0, s)->best(); }

}  // namespace

TEST(l3_add_and_priority) {
  L3Book b(0);
  CHECK(b.apply(ev(EventKind::kAdd, 1, Side::kBuy, 100, 10)) == Status::kOk);
  CHECK(b.apply(ev(EventKind::kAdd, 2, Side::kBuy, 100, 20)) == Status::kOk);
  CHECK(b.apply(ev(EventKind::kAdd, 3, Side::kBuy, 99, 5)) == Status::kOk);
  CHECK(b.apply(ev(EventKind::kAdd, 4, Side::kSell, 101, 7)) == Status::kOk);
  CHECK_EQ(best(b, Side::kBuy).price_ticks, 100);
  CHECK_EQ(best(b, Side::kBuy).quantity, 30);
  CHECK_EQ(best(b, Side::kBuy).order_count, 2u);
  CHECK_EQ(best(b, Side::kSell).price_ticks, 101);
  OrderView v{};
  CHECK(b.find_order(2, v));
  CHECK_EQ(v.orders_ahead, 1);
  CHECK_EQ(v.quantity_ahead, 10);
  std::uint64_t front = 0;
  CHECK(b.front_order(0, Side::kBuy, front));
  CHECK_EQ(front, 1u);
  CHECK_EQ(b.order_count(), 4u);
}

TEST(l3_reduce_execute_delete) {
  L3Book b(0);
  b.apply(ev(EventKind::kAdd, 1, Side::kSell, 200, 100));
  b.apply(ev(EventKind::kAdd, 2, Side::kSell, 200, 50));
  CHECK(b.apply(ev(EventKind::kCancel, 1, Side::kNone, 0, 30)) == Status::kOk);
  CHECK_EQ(best(b, Side::kSell).quantity, 120);
  CHECK(b.apply(ev(EventKind::kExecute, 1, Side::kNone, 0, 70)) == Status::kOk);
  CHECK(!b.contains(1));
  CHECK_EQ(best(b, Side::kSell).quantity, 50);
  CHECK_EQ(b.stats().executed_quantity, 70u);
  CHECK(b.apply(ev(EventKind::kExecute, 2, Side::kNone, 0, 51)) == Status::kInvalidQuantity);
  CHECK_EQ(best(b, Side::kSell).quantity, 50);
  CHECK(b.apply(ev(EventKind::kDelete, 2, Side::kNone, 0, 0)) == Status::kOk);
  CHECK(b.ladder(0, Side::kSell)->empty());
  CHECK(b.apply(ev(EventKind::kDelete, 2, Side::kNone, 0, 0)) == Status::kUnknownOrder);
}

TEST(l3_replace_and_modify_priority) {
  L3Book b(0);
  b.apply(ev(EventKind::kAdd, 1, Side::kBuy, 100, 10));
  b.apply(ev(EventKind::kAdd, 2, Side::kBuy, 100, 10));
  // Modify down in size keeps priority; up in size loses it.
  CHECK(b.apply(ev(EventKind::kModify, 1, Side::kNone, 100, 5)) == Status::kOk);
  OrderView v{};
  b.find_order(1, v);
  CHECK_EQ(v.orders_ahead, 0);
  CHECK(b.apply(ev(EventKind::kModify, 1, Side::kNone, 100, 15)) == Status::kOk);
  b.find_order(1, v);
  CHECK_EQ(v.orders_ahead, 1);
  CHECK_EQ(best(b, Side::kBuy).quantity, 25);
  // Replace gives a new id at the back of the new price.
  CHECK(b.apply(ev(EventKind::kReplace, 2, Side::kNone, 98, 40, 0, 0, 9)) == Status::kOk);
  CHECK(!b.contains(2));
  CHECK(b.find_order(9, v));
  CHECK_EQ(v.price_ticks, 98);
  CHECK_EQ(v.side, Side::kBuy);
  CHECK(b.apply(ev(EventKind::kReplace, 9, Side::kNone, 97, 1, 0, 0, 1)) ==
        Status::kDuplicateOrder);
  CHECK(b.find_order(9, v));
}

TEST(l3_rejects_leave_book_unchanged) {
  L3Book b(0);
  b.apply(ev(EventKind::kAdd, 1, Side::kBuy, 100, 10));
  b.apply(ev(EventKind::kAdd, 2, Side::kSell, 102, 10));
  CHECK(b.apply(ev(EventKind::kAdd, 1, Side::kBuy, 99, 10)) == Status::kDuplicateOrder);
  CHECK(b.apply(ev(EventKind::kAdd, 3, Side::kBuy, 102, 10)) == Status::kCrossedBook);
  CHECK(b.apply(ev(EventKind::kAdd, 3, Side::kSell, 100, 10)) == Status::kCrossedBook);
  CHECK(b.apply(ev(EventKind::kAdd, 3, Side::kBuy, 101, -5)) == Status::kInvalidQuantity);
  CHECK(b.apply(ev(EventKind::kAdd, 3, Side::kBuy, 0, 5)) == Status::kInvalidPrice);
  CHECK(b.apply(ev(EventKind::kAdd, 3, Side::kNone, 100, 5)) == Status::kInvalidSide);
  CHECK(b.apply(ev(EventKind::kCancel, 7, Side::kNone, 0, 5)) == Status::kUnknownOrder);
  CHECK(b.apply(ev(EventKind::kReplace, 1, Side::kNone, 103, 5, 0, 0, 8)) ==
        Status::kCrossedBook);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kBuy, 100, 5)) == Status::kInvalidKind);
  CHECK(b.apply(ev(EventKind::kAdd, 3, Side::kBuy, 100, 5, 0, 4)) == Status::kUnknownVenue);
  CHECK_EQ(b.order_count(), 2u);
  CHECK_EQ(best(b, Side::kBuy).quantity, 10);
  CHECK(b.contains(1));
  CHECK_EQ(b.stats().rejected, 10u);
  BookOptions crossed;
  crossed.allow_crossed = true;
  L3Book c(0, crossed);
  c.apply(ev(EventKind::kAdd, 1, Side::kSell, 100, 10));
  CHECK(c.apply(ev(EventKind::kAdd, 2, Side::kBuy, 101, 10)) == Status::kOk);
}

TEST(sequence_gap_and_duplicates) {
  L3Book b(0);
  CHECK(b.apply(ev(EventKind::kAdd, 1, Side::kBuy, 100, 10, 5)) == Status::kOk);
  CHECK_EQ(b.expected_sequence(), 6u);
  CHECK(b.apply(ev(EventKind::kAdd, 2, Side::kBuy, 100, 10, 8)) == Status::kSequenceGap);
  CHECK(!b.contains(2));
  CHECK_EQ(b.expected_sequence(), 6u);
  CHECK(b.apply(ev(EventKind::kAdd, 3, Side::kBuy, 100, 10, 5)) == Status::kOk);
  CHECK(!b.contains(3));
  CHECK_EQ(b.stats().duplicate_sequence, 1u);
  // A rejected event does not consume its sequence number.
  CHECK(b.apply(ev(EventKind::kDelete, 99, Side::kNone, 0, 0, 6)) == Status::kUnknownOrder);
  CHECK_EQ(b.expected_sequence(), 6u);
  b.resync(8);
  CHECK(b.apply(ev(EventKind::kAdd, 2, Side::kBuy, 100, 10, 8)) == Status::kOk);
}

TEST(clear_instrument) {
  L3Book b(0);
  for (std::uint64_t i = 1; i <= 50; ++i) {
    b.apply(ev(EventKind::kAdd, i, i % 2 ? Side::kBuy : Side::kSell,
               i % 2 ? 100 - static_cast<std::int64_t>(i % 7) : 110 + static_cast<std::int64_t>(i % 5),
               10));
  }
  CHECK_EQ(b.order_count(), 50u);
  CHECK(b.apply(ev(EventKind::kClear, 0, Side::kNone, 0, 0)) == Status::kOk);
  CHECK_EQ(b.order_count(), 0u);
  CHECK(b.ladder(0, Side::kBuy)->empty());
  CHECK(b.apply(ev(EventKind::kAdd, 1, Side::kBuy, 100, 10)) == Status::kOk);
}

TEST(l2_levels) {
  L2Book b(0);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kBuy, 100, 300)) == Status::kOk);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kBuy, 101, 100)) == Status::kOk);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kSell, 103, 200)) == Status::kOk);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kSell, 101, 200)) == Status::kCrossedBook);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kBuy, 100, 0)) == Status::kOk);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kBuy, 100, 0)) == Status::kUnknownLevel);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kBuy, 101, -1)) == Status::kInvalidQuantity);
  CHECK(b.apply(ev(EventKind::kAdd, 1, Side::kBuy, 101, 1)) == Status::kInvalidKind);
  CHECK_EQ(b.ladder(0, Side::kBuy)->size(), 1u);
  CHECK_EQ(b.ladder(0, Side::kBuy)->best()->quantity, 100);
}

TEST(ladder_deep_levels_use_binary_search) {
  L2Book b(0);
  for (std::int64_t p = 1000; p > 900; p -= 2) b.apply(ev(EventKind::kLevel, 0, Side::kBuy, p, p));
  CHECK_EQ(b.ladder(0, Side::kBuy)->size(), 50u);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kBuy, 911, 5)) == Status::kOk);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kBuy, 912, 7)) == Status::kOk);
  const PriceLadder& l = *b.ladder(0, Side::kBuy);
  CHECK_EQ(l.size(), 51u);
  for (std::size_t d = 1; d < l.size(); ++d) CHECK(l.at_depth(d).price_ticks < l.at_depth(d - 1).price_ticks);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kBuy, 913, 0)) == Status::kUnknownLevel);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kBuy, 911, 0)) == Status::kOk);
  CHECK(b.apply(ev(EventKind::kLevel, 0, Side::kBuy, 912, 0)) == Status::kOk);
}

TEST(consolidated_nbbo_depth_quotes) {
  ConsolidatedBook c({{0, BookType::kL3, true}, {3, BookType::kL2, true}, {7, BookType::kL3, false}});
  c.apply(ev(EventKind::kAdd, 1, Side::kBuy, 100, 10, 0, 0));
  c.apply(ev(EventKind::kAdd, 2, Side::kSell, 105, 10, 0, 0));
  c.apply(ev(EventKind::kLevel, 0, Side::kBuy, 100, 30, 0, 3));
  c.apply(ev(EventKind::kLevel, 0, Side::kBuy, 99, 40, 0, 3));
  c.apply(ev(EventKind::kLevel, 0, Side::kSell, 104, 20, 0, 3));
  c.apply(ev(EventKind::kAdd, 9, Side::kBuy, 102, 500, 0, 7));  // dark: not in the NBBO
  CHECK(c.apply(ev(EventKind::kAdd, 9, Side::kBuy, 102, 500, 0, 9)) == Status::kUnknownVenue);
  const Nbbo n = c.nbbo(0);
  CHECK_EQ(n.bid_price_ticks, 100);
  CHECK_EQ(n.bid_quantity, 40);
  CHECK_EQ(n.bid_venue_mask, 3u);
  CHECK_EQ(n.ask_price_ticks, 104);
  CHECK_EQ(n.ask_venue_mask, 2u);
  std::int64_t prices[4], qty[4], per_venue[12];
  CHECK_EQ(c.depth(0, Side::kBuy, 4, prices, qty, per_venue), 2u);
  CHECK_EQ(prices[0], 100);
  CHECK_EQ(qty[0], 40);
  CHECK_EQ(per_venue[0], 10);
  CHECK_EQ(per_venue[1], 30);
  CHECK_EQ(per_venue[2], 0);
  CHECK_EQ(prices[1], 99);
  CHECK_EQ(per_venue[4], 40);
  CHECK_EQ(c.depth(0, Side::kBuy, 4, prices, qty, per_venue, true), 3u);
  CHECK_EQ(prices[0], 102);
  ProtectedQuote q[4];
  CHECK_EQ(c.protected_quotes(0, q, 4), 2u);
  CHECK_EQ(q[1].venue_id, 3);
  CHECK_EQ(q[1].ask_price_ticks, 104);
}

TEST(synthetic_flow_is_valid_deterministic_and_l2_matches_l3) {
  SyntheticFlowParams p;
  p.event_count = 60'000;
  p.venue_count = 3;
  p.instrument_count = 2;
  p.seed = 42;
  const auto a = generate_order_flow(p);
  const auto b = generate_order_flow(p);
  CHECK_EQ(a.size(), p.event_count);
  bool same = a.size() == b.size();
  for (std::size_t i = 0; same && i < a.size(); ++i) same = std::memcmp(&a[i], &b[i], sizeof(MdEvent)) == 0;
  CHECK(same);
  std::vector<VenueSpec> l3v, l2v;
  for (std::uint8_t v = 0; v < 3; ++v) {
    l3v.push_back({v, BookType::kL3, true});
    l2v.push_back({v, BookType::kL2, true});
  }
  ConsolidatedBook l3(l3v), l2(l2v);
  const BatchResult r3 = l3.apply_batch(a.data(), a.size());
  CHECK(r3.status == Status::kOk);
  const auto levels = to_level_updates(a.data(), a.size());
  const BatchResult r2 = l2.apply_batch(levels.data(), levels.size());
  CHECK(r2.status == Status::kOk);
  for (std::uint32_t i = 0; i < 2; ++i) {
    for (Side s : {Side::kBuy, Side::kSell}) {
      std::int64_t p3[64], q3[64], v3[64 * 3], p2[64], q2[64], v2[64 * 3];
      const std::size_t n3 = l3.depth(i, s, 64, p3, q3, v3);
      const std::size_t n2 = l2.depth(i, s, 64, p2, q2, v2);
      CHECK_EQ(n3, n2);
      CHECK(n3 > 5);
      for (std::size_t k = 0; k < n3 && k < n2; ++k) {
        CHECK_EQ(p3[k], p2[k]);
        CHECK_EQ(q3[k], q2[k]);
      }
    }
  }
  std::size_t kinds[12] = {};
  for (const auto& e : a) ++kinds[static_cast<int>(e.kind)];
  CHECK(kinds[static_cast<int>(EventKind::kAdd)] > a.size() / 4);
  CHECK(kinds[static_cast<int>(EventKind::kExecute)] > a.size() / 50);
  CHECK(kinds[static_cast<int>(EventKind::kReplace)] > a.size() / 30);
  CHECK(kinds[static_cast<int>(EventKind::kCancel)] > a.size() / 100);
}
