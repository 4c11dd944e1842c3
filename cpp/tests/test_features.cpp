#define SOR_TEST_MAIN
#include "check.hpp"

#include <cmath>
#include <cstring>
#include <vector>

#include "sor/consolidated.hpp"
#include "sor/features.hpp"

using namespace sor;

namespace {

constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kT0 = 1'700'000'000 * kS;  // on every grid

bool near(double a, double b, double tolerance = 1e-5) {
  return std::fabs(a - b) <= tolerance * std::max(1.0, std::fabs(b));
}

#define CHECK_NEAR(a, b)                                                              \
  do {                                                                                \
    const double sor_x_ = (a), sor_y_ = (b);                                          \
    if (!near(sor_x_, sor_y_))                                                        \
      ::sor::testing::report(__FILE__, __LINE__, std::string(#a " ~= " #b " (") +    \
                                                     std::to_string(sor_x_) + " vs " + \
                                                     std::to_string(sor_y_) + ")");   \
  } while (0)

FeatureOptions options() {
  FeatureOptions o;
  o.venues.push_back({0, true, BookType::kL3, -0.002, 0.003, 0.001, 100'000});
  o.venues.push_back({1, true, BookType::kL3, 0.0, 0.001, 0.001, 200'000});
  o.venues.push_back({2, false, BookType::kL3, 0.001, 0.001, 0.001, 300'000});
  o.max_instruments = 2;
  o.price_tick_usd = 0.01;
  return o;
}

// A book and an engine fed together, as the engine loop does.
struct Rig {
  explicit Rig(const FeatureOptions& o = options()) : book(book_venues(o)), engine(o) {}
  void feed(EventKind kind, std::uint8_t venue, Side side, std::int64_t price, std::int64_t qty,
            std::uint64_t id, std::int64_t ts, std::uint8_t flags = 0) {
    MdEvent e{};
    e.kind = kind;
    e.venue_id = venue;
    e.side = side;
    e.price_ticks = price;
    e.quantity = qty;
    e.order_id = id;
    e.ts_recv = e.ts_event = ts;
    e.flags = flags;
    CHECK(book.apply(e) == Status::kOk);
    engine.on_event(e, book);
  }
  float feature(FeatureIndex f, Side side = Side::kBuy, std::int64_t now = kT0,
                std::uint8_t venue = 0, ChildOrderType type = ChildOrderType::kTake) {
    DecisionContext c{};
    c.now_ns = now;
    c.start_ns = now - kS;
    c.end_ns = now + 3 * kS;
    c.child_quantity = 200;
    c.parent_quantity = 1'000;
    c.remaining_quantity = 400;
    c.venue_id = venue;
    c.side = side;
    c.order_type = type;
    float row[kFeatureCount];
    CHECK(engine.build_row(c, book, row) == FeatureStatus::kOk);
    for (float x : row) CHECK(std::isfinite(x));
    return row[static_cast<std::size_t>(f)];
  }
  ConsolidatedBook book;
  FeatureEngine engine;
};

}  // namespace

TEST(schema_is_complete_and_ordered) {
  const FeatureInfo* schema = feature_schema();
  for (std::size_t k = 0; k < kFeatureCount; ++k) {
    CHECK(static_cast<std::size_t>(schema[k].index) == k);
    CHECK(std::strlen(schema[k].name) > 0 && std::strlen(schema[k].unit) > 0);
    for (std::size_t j = 0; j < k; ++j) CHECK(std::strcmp(schema[j].name, schema[k].name) != 0);
  }
  CHECK_EQ(kFeatureCount, 52u);
}

TEST(validate_names_the_problem) {
  FeatureOptions o = options();
  CHECK(std::string(validate(o)).empty());
  o.garch.alpha = 0.6;
  o.garch.beta = 0.5;
  CHECK(std::string(validate(o)).rfind("garch.alpha", 0) == 0);
  o = options();
  o.flow_bucket_ns = 300'000'000;
  CHECK(std::string(validate(o)).rfind("flow_bucket_ns", 0) == 0);
  o = options();
  o.venues[1].venue_id = 0;
  CHECK(std::string(validate(o)).rfind("venues", 0) == 0);
  bool threw = false;
  try {
    FeatureEngine engine(o);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw);
}

TEST(spread_and_imbalances) {
  Rig r;
  r.feed(EventKind::kAdd, 0, Side::kBuy, 100, 300, 1, kT0);
  r.feed(EventKind::kAdd, 1, Side::kBuy, 100, 100, 2, kT0);
  r.feed(EventKind::kAdd, 1, Side::kBuy, 99, 200, 3, kT0);
  r.feed(EventKind::kAdd, 0, Side::kSell, 102, 100, 4, kT0);
  CHECK_NEAR(r.feature(FeatureIndex::kNbboSpreadTicks), 2.0);
  CHECK_NEAR(r.feature(FeatureIndex::kNbboSpreadBps), 2.0 / 101.0 * 1e4);
  CHECK_NEAR(r.feature(FeatureIndex::kNbboImbalanceTop), (400.0 - 100.0) / 500.0);
  CHECK_NEAR(r.feature(FeatureIndex::kNbboImbalanceTop, Side::kSell), -(400.0 - 100.0) / 500.0);
  // depth weights 1/k: near 400 + 200/2, far 100
  CHECK_NEAR(r.feature(FeatureIndex::kBookImbalanceDepth), (500.0 - 100.0) / 600.0);
  CHECK_NEAR(r.feature(FeatureIndex::kBookNearDepth2), 200.0);
  CHECK_NEAR(r.feature(FeatureIndex::kVenueSpreadTicks), 2.0);
  CHECK_NEAR(r.feature(FeatureIndex::kVenueImbalanceTop), (300.0 - 100.0) / 400.0);
  CHECK_NEAR(r.feature(FeatureIndex::kVenueNearDepth5Shares, Side::kBuy, kT0, 1), 300.0);
  CHECK_NEAR(r.feature(FeatureIndex::kVenueAtNbboFar, Side::kBuy, kT0, 1), 0.0);
  CHECK_NEAR(r.feature(FeatureIndex::kChildPriceOffsetTicks), 2.0);  // a take at the ask
  CHECK_NEAR(r.feature(FeatureIndex::kChildFeeBps), 0.003 / 1.01 * 1e4);
  CHECK_NEAR(r.feature(FeatureIndex::kOrderTimeRemainingFraction), 0.75);
}

TEST(flow_windows_expire) {
  Rig r;
  r.feed(EventKind::kAdd, 0, Side::kSell, 102, 1'000, 1, kT0);
  r.feed(EventKind::kExecute, 0, Side::kSell, 0, 300, 1, kT0 + 50'000'000, kFlagPrintable);
  r.feed(EventKind::kTrade, 2, Side::kBuy, 101, 100, 0, kT0 + 5 * kS, kFlagPrintable);
  r.feed(EventKind::kTrade, 2, Side::kNone, 101, 600, 0, kT0 + 5 * kS, kFlagPrintable);
  r.feed(EventKind::kTrade, 2, Side::kBuy, 101, 999, 0, kT0 + 5 * kS, 0);  // not printable
  const std::int64_t t = kT0 + 5 * kS;
  // 1 s window: only the dark sell aggressor (100) and the sideless print
  CHECK_NEAR(r.feature(FeatureIndex::kFlowImbalance1s, Side::kBuy, t), -1.0);
  CHECK_NEAR(r.feature(FeatureIndex::kFlowImbalance10s, Side::kBuy, t), (300.0 - 100.0) / 400.0);
  CHECK_NEAR(r.feature(FeatureIndex::kFlowVolume60sShares, Side::kBuy, t), 1'000.0);
  CHECK_NEAR(r.feature(FeatureIndex::kVenueVolumeShare60s, Side::kBuy, t, 2), 0.7);
  // 10 s after the execution's bucket it left the 10 s window; the dark prints stay
  CHECK_NEAR(r.feature(FeatureIndex::kFlowImbalance10s, Side::kBuy, kT0 + 10'100'000'000), -1.0);
  CHECK_NEAR(r.feature(FeatureIndex::kFlowImbalance1s, Side::kBuy, kT0 + 6'100'000'000), 0.0);
  CHECK_NEAR(r.feature(FeatureIndex::kFlowVolume60sShares, Side::kBuy, kT0 + 61 * kS), 700.0);
  CHECK_NEAR(r.feature(FeatureIndex::kFlowVolume60sShares, Side::kBuy, kT0 + 65 * kS), 0.0);
  // the state itself advances the same way when a later event arrives
  r.feed(EventKind::kAdd, 0, Side::kBuy, 100, 100, 2, kT0 + 61 * kS);
  CHECK_NEAR(r.feature(FeatureIndex::kFlowVolume60sShares, Side::kBuy, kT0 + 61 * kS), 700.0);
  CHECK_NEAR(r.feature(FeatureIndex::kVenueVolume60sShares, Side::kBuy, kT0 + 61 * kS, 0), 0.0);
}

TEST(mid_samples_see_the_book_before_the_crossing_event) {
  FeatureOptions o = options();
  o.garch = GarchParams{1.0, 0.5, 0.25, kS, 0.0};  // unconditional variance 4
  Rig r(o);
  r.feed(EventKind::kAdd, 0, Side::kBuy, 999, 100, 1, kT0 + 100);
  r.feed(EventKind::kAdd, 0, Side::kSell, 1'001, 100, 2, kT0 + 200);   // mid 1000
  CHECK_NEAR(r.feature(FeatureIndex::kVolGarchBps, Side::kBuy, kT0 + 300), 2.0);
  r.feed(EventKind::kDelete, 0, Side::kNone, 0, 0, 1, kT0 + kS + 400);  // crosses 1 s: 1000
  r.feed(EventKind::kDelete, 0, Side::kNone, 0, 0, 2, kT0 + kS + 450);
  r.feed(EventKind::kAdd, 1, Side::kBuy, 1'009, 100, 3, kT0 + kS + 500);
  r.feed(EventKind::kAdd, 1, Side::kSell, 1'011, 100, 4, kT0 + kS + 600); // mid 1010
  const double r2 = 1e4 * std::log(1'010.0 / 1'000.0);
  // at 2 s (a pending boundary) the sample is 1010
  CHECK_NEAR(r.feature(FeatureIndex::kVolRealized5mBps, Side::kBuy, kT0 + 2 * kS), r2);
  CHECK_NEAR(r.feature(FeatureIndex::kVolRealized30mBps, Side::kBuy, kT0 + 2 * kS), r2);
  // GARCH: at 1 s no return yet (first mid): 1 + 0.25 * 4 = 2; at 2 s: 1 + 0.5 r2^2 + 0.25 * 2
  CHECK_NEAR(r.feature(FeatureIndex::kVolGarchBps, Side::kBuy, kT0 + kS + 700), std::sqrt(2.0));
  const double v2 = 1.0 + 0.5 * r2 * r2 + 0.25 * 2.0;
  CHECK_NEAR(r.feature(FeatureIndex::kVolGarchBps, Side::kBuy, kT0 + 2 * kS), std::sqrt(v2));
  CHECK_NEAR(r.feature(FeatureIndex::kVolGarchBps, Side::kBuy, kT0 + 3 * kS),
             std::sqrt(1.0 + 0.25 * v2));
  // an event at 2.5 s takes the samples for real: same values
  r.feed(EventKind::kAdd, 1, Side::kBuy, 1'000, 100, 5, kT0 + 2 * kS + kS / 2);  // below bid
  CHECK_NEAR(r.feature(FeatureIndex::kVolRealized5mBps, Side::kBuy, kT0 + 2 * kS + kS / 2), r2);
  CHECK_NEAR(r.feature(FeatureIndex::kVolGarchBps, Side::kBuy, kT0 + 2 * kS + kS / 2),
             std::sqrt(v2));
  // 5 minutes later the return left the short window, not the long one
  CHECK_NEAR(r.feature(FeatureIndex::kVolRealized5mBps, Side::kBuy, kT0 + 302 * kS), 0.0);
  CHECK_NEAR(r.feature(FeatureIndex::kVolRealized30mBps, Side::kBuy, kT0 + 302 * kS), r2);
  CHECK_NEAR(r.feature(FeatureIndex::kVolRealized30mBps, Side::kBuy, kT0 + 1'802 * kS), 0.0);
}

TEST(fill_rate_and_latency_updates) {
  FeatureOptions o = options();
  o.fill_rate_prior = 0.5;
  o.fill_rate_prior_weight_orders = 2.0;
  o.fill_rate_half_life_orders = 1.0;  // each older order weighs half
  o.latency_ewma_weight = 0.25;
  Rig r(o);
  CHECK_NEAR(r.feature(FeatureIndex::kVenueFillRate), 0.5);
  CHECK(r.engine.on_child_done(0, Side::kBuy, ChildOrderType::kTake, 200, 200) == FeatureStatus::kOk);
  CHECK_NEAR(r.feature(FeatureIndex::kVenueFillRate), (1.0 + 1.0) / (1.0 + 2.0));
  CHECK(r.engine.on_child_done(0, Side::kBuy, ChildOrderType::kTake, 200, 50) == FeatureStatus::kOk);
  CHECK_NEAR(r.feature(FeatureIndex::kVenueFillRate), (0.5 + 0.25 + 1.0) / (1.5 + 2.0));
  CHECK_NEAR(r.feature(FeatureIndex::kVenueFillRate, Side::kSell), 0.5);  // another cell
  CHECK(r.engine.on_child_done(0, Side::kBuy, ChildOrderType::kTake, 200, 201) ==
        FeatureStatus::kInvalidQuantity);
  CHECK(r.engine.on_child_done(7, Side::kBuy, ChildOrderType::kTake, 1, 1) ==
        FeatureStatus::kUnknownVenue);
  CHECK_NEAR(r.feature(FeatureIndex::kVenueLatencyUs), 100.0);
  CHECK(r.engine.on_latency_sample(0, 500'000) == FeatureStatus::kOk);
  CHECK_NEAR(r.feature(FeatureIndex::kVenueLatencyUs), 0.75 * 100.0 + 0.25 * 500.0);
}

TEST(bad_contexts_zero_the_row) {
  Rig r;
  DecisionContext c{};
  c.now_ns = kT0;
  c.start_ns = kT0;
  c.end_ns = kT0 + 1;
  c.child_quantity = 1;
  c.parent_quantity = 1;
  c.side = Side::kBuy;
  c.venue_id = 9;
  float row[kFeatureCount];
  std::fill(row, row + kFeatureCount, 7.0f);
  CHECK(r.engine.build_row(c, r.book, row) == FeatureStatus::kUnknownVenue);
  for (float x : row) CHECK(x == 0.0f);
  c.venue_id = 0;
  c.instrument_id = 2;
  CHECK(r.engine.build_row(c, r.book, row) == FeatureStatus::kUnknownInstrument);
  c.instrument_id = 0;
  c.arrival_mid_ticks = std::nan("");
  CHECK(r.engine.build_row(c, r.book, row) == FeatureStatus::kInvalidPrice);
  DecisionContext batch[2] = {c, c};
  batch[0].arrival_mid_ticks = 0.0;
  float rows[2 * kFeatureCount];
  const FeatureBatchResult result = r.engine.build_rows(batch, 2, r.book, rows);
  CHECK_EQ(result.failed, 1u);
  CHECK_EQ(result.first_failed_index, 1u);
  CHECK(result.status == FeatureStatus::kInvalidPrice);
}

TEST(duplicates_and_unknown_events_are_ignored) {
  Rig r;
  MdEvent e{};
  e.kind = EventKind::kTrade;
  e.venue_id = 2;
  e.side = Side::kSell;
  e.quantity = 100;
  e.sequence = 5;
  e.flags = kFlagPrintable;
  e.ts_recv = kT0;
  r.engine.on_event(e, r.book);
  r.engine.on_event(e, r.book);  // same sequence: a duplicate
  e.venue_id = 9;                // not a venue of the engine
  r.engine.on_event(e, r.book);
  e.venue_id = 2;
  e.instrument_id = 5;           // beyond max_instruments
  e.sequence = 6;
  r.engine.on_event(e, r.book);
  CHECK_EQ(r.engine.events_applied(), 1u);
  CHECK_NEAR(r.feature(FeatureIndex::kFlowVolume60sShares), 100.0);
  CHECK(r.engine.reset_sequence(2) == FeatureStatus::kOk);
  e.instrument_id = 0;
  e.sequence = 1;
  r.engine.on_event(e, r.book);
  CHECK_NEAR(r.feature(FeatureIndex::kFlowVolume60sShares), 200.0);
}

TEST(apply_events_stops_or_skips) {
  FeatureOptions o = options();
  ConsolidatedBook book(book_venues(o));
  FeatureEngine engine(o);
  MdEvent events[3]{};
  events[0].kind = EventKind::kAdd;
  events[0].order_id = 1;
  events[0].side = Side::kBuy;
  events[0].price_ticks = 10;
  events[0].quantity = 5;
  events[1] = events[0];  // duplicate order id: refused
  events[2] = events[0];
  events[2].order_id = 2;
  FeatureApplyResult r = apply_events(book, engine, events, 3, true);
  CHECK_EQ(r.applied, 1u);
  CHECK_EQ(r.first_rejected_index, 1u);
  CHECK(r.first_status == Status::kDuplicateOrder);
  r = apply_events(book, engine, events + 2, 1, false);
  CHECK_EQ(r.applied, 1u);
  CHECK_EQ(r.rejected, 0u);
}
