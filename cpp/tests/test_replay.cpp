#define SOR_TEST_MAIN
#include "check.hpp"

#include <cmath>
#include <cstring>
#include <vector>

#include "sor/random.hpp"
#include "sor/replay.hpp"
#include "sor/synthetic_flow.hpp"

using namespace sor;
using namespace sor::sim;

namespace {

MdEvent event(EventKind kind, std::int64_t ts, std::uint64_t id, Side side, std::int64_t price,
              std::int64_t quantity, std::uint8_t venue = 0) {
  MdEvent e{};
  e.ts_event = ts;
  e.ts_recv = ts;
  e.kind = kind;
  e.order_id = id;
  e.side = side;
  e.price_ticks = price;
  e.quantity = quantity;
  e.venue_id = venue;
  return e;
}

MdEvent add(std::int64_t ts, std::uint64_t id, Side side, std::int64_t price, std::int64_t qty,
            std::uint8_t venue = 0) {
  return event(EventKind::kAdd, ts, id, side, price, qty, venue);
}
MdEvent execute(std::int64_t ts, std::uint64_t id, std::int64_t qty) {
  return event(EventKind::kExecute, ts, id, Side::kNone, 0, qty);
}
MdEvent cancel_shares(std::int64_t ts, std::uint64_t id, std::int64_t qty) {
  return event(EventKind::kCancel, ts, id, Side::kNone, 0, qty);
}
MdEvent remove(std::int64_t ts, std::uint64_t id) {
  return event(EventKind::kDelete, ts, id, Side::kNone, 0, 0);
}
MdEvent trade(std::int64_t ts, Side side, std::int64_t price, std::int64_t qty) {
  MdEvent e = event(EventKind::kTrade, ts, 0, side, price, qty);
  e.flags = kFlagPrintable;
  return e;
}

AgentOrder order(std::int64_t ts, std::uint64_t id, Side side, std::int64_t price,
                 std::int64_t qty, SimOrderType type = SimOrderType::kLimit,
                 std::uint8_t venue = 0) {
  AgentOrder o{};
  o.ts_send = ts;
  o.client_order_id = id;
  o.side = side;
  o.price_ticks = price;
  o.quantity = qty;
  o.type = type;
  o.venue_id = venue;
  o.tag = id * 10;
  return o;
}

ReplayOptions one_venue(ReplayVenueOptions venue = {}) {
  ReplayOptions o;
  o.venues.push_back(venue);
  return o;
}

// A two-sided book: bid 300 @ 1000 (order 1), ask 200 @ 1002 (order 2).
std::vector<MdEvent> base_book() {
  return {add(10, 1, Side::kBuy, 1000, 300), add(11, 2, Side::kSell, 1002, 200)};
}

std::vector<SimReport> drain(ReplayMarket& m) {
  std::vector<SimReport> out(m.pending_reports() + 1);
  out.resize(m.drain_reports(out.data(), out.size()));
  return out;
}

std::vector<SimReport> of_kind(const std::vector<SimReport>& reports, SimReportKind kind) {
  std::vector<SimReport> out;
  for (const SimReport& r : reports) {
    if (r.kind == kind) out.push_back(r);
  }
  return out;
}

std::int64_t filled(const std::vector<SimReport>& reports, std::uint64_t id) {
  std::int64_t total = 0;
  for (const SimReport& r : reports) {
    if (r.kind == SimReportKind::kFill && r.client_order_id == id) total += r.quantity;
  }
  return total;
}

ReplayMarket loaded(const std::vector<MdEvent>& events, ReplayOptions options = one_venue()) {
  ReplayMarket m(std::move(options));
  const LoadResult r = m.load(0, events.data(), events.size());
  CHECK(r.error == LoadError::kOk);
  return m;
}

}  // namespace

TEST(resting_order_fills_only_after_the_shares_ahead_executed) {
  auto events = base_book();
  events.push_back(execute(30, 1, 100));
  events.push_back(execute(40, 1, 200));  // Order 1 is gone: nothing recorded is ahead of us.
  events.push_back(add(45, 3, Side::kBuy, 1000, 100));  // Joins behind us.
  events.push_back(execute(50, 3, 60));
  ReplayMarket m = loaded(events);
  m.run_until(20);
  m.submit(order(20, 7, Side::kBuy, 1000, 100));
  m.run_until(20);
  CHECK_EQ(m.shares_ahead(7), 300);
  m.run_until(30);
  CHECK_EQ(m.shares_ahead(7), 200);
  CHECK_EQ(filled(drain(m), 7), 0);
  m.run_until(45);
  CHECK_EQ(m.shares_ahead(7), 0);
  CHECK_EQ(filled(drain(m), 7), 0);
  m.run_until(50);
  const auto reports = drain(m);
  CHECK_EQ(filled(reports, 7), 60);
  const auto fills = of_kind(reports, SimReportKind::kFill);
  CHECK_EQ(fills.size(), 1u);
  CHECK_EQ(fills[0].price_ticks, 1000);
  CHECK_EQ(fills[0].leaves_quantity, 40);
  CHECK_EQ(fills[0].detail, static_cast<std::uint8_t>(SimLiquidity::kAdded));
  CHECK_EQ(fills[0].tag, 70u);
  CHECK_EQ(m.leaves_quantity(7), 40);
}

TEST(an_execution_larger_than_the_shares_ahead_fills_the_overshoot) {
  auto events = base_book();
  events.push_back(add(12, 3, Side::kBuy, 1000, 500));
  events.push_back(execute(30, 1, 300));  // Exactly the 300 ahead of us: no fill.
  events.push_back(execute(40, 3, 450));  // Order 3 was behind us: we fill first, 100.
  ReplayMarket m = loaded(events);
  m.submit(order(11, 7, Side::kBuy, 1000, 100));
  m.run_until(11);
  CHECK_EQ(m.shares_ahead(7), 300);
  m.run_until(30);
  CHECK_EQ(filled(drain(m), 7), 0);
  m.run_until(40);
  CHECK_EQ(filled(drain(m), 7), 100);
  CHECK_EQ(m.leaves_quantity(7), -1);
}

TEST(queue_models_treat_cancels_at_our_price_differently) {
  auto events = base_book();
  events.push_back(add(21, 3, Side::kBuy, 1000, 100));  // Behind us; level 400.
  events.push_back(cancel_shares(30, 1, 100));          // 100 of the 300 ahead cancel... or not.
  const std::pair<QueueModel, std::int64_t> expected[] = {
      {QueueModel::kConservative, 300},  // From behind us: still 300 ahead.
      {QueueModel::kProportional, 225},  // 300 - 100 * 300 / 400.
      {QueueModel::kOptimistic, 200},    // From ahead of us.
      {QueueModel::kFifo, 200},          // Order 1 was ahead of us: exactly 100 fewer.
  };
  for (const auto& [model, ahead] : expected) {
    ReplayOptions options = one_venue();
    options.queue_model = model;
    ReplayMarket m = loaded(events, options);
    m.submit(order(20, 7, Side::kBuy, 1000, 100));
    m.run_until(30);
    CHECK_EQ(m.shares_ahead(7), ahead);
  }
  // FIFO knows which orders were ahead: a cancel behind us changes nothing.
  auto behind = base_book();
  behind.push_back(add(21, 3, Side::kBuy, 1000, 100));
  behind.push_back(cancel_shares(30, 3, 60));
  behind.push_back(add(31, 4, Side::kBuy, 1000, 100));
  behind.push_back(cancel_shares(32, 1, 10));
  for (const QueueModel model : {QueueModel::kFifo, QueueModel::kOptimistic}) {
    ReplayOptions options = one_venue();
    options.queue_model = model;
    ReplayMarket m = loaded(behind, options);
    m.submit(order(20, 7, Side::kBuy, 1000, 100));
    m.run_until(30);
    CHECK_EQ(m.shares_ahead(7), model == QueueModel::kFifo ? 300 : 240);
    m.run_until(32);
    CHECK_EQ(m.shares_ahead(7), model == QueueModel::kFifo ? 290 : 230);
  }
  // Whatever the model, the shares ahead never exceed what the level shows.
  auto shrinking = base_book();
  shrinking.push_back(cancel_shares(30, 1, 250));
  ReplayMarket m = loaded(shrinking);
  m.submit(order(20, 7, Side::kBuy, 1000, 100));
  m.run_until(30);
  CHECK_EQ(m.shares_ahead(7), 50);
}

TEST(taken_shares_are_depleted_and_cannot_be_taken_twice) {
  auto events = base_book();
  events.push_back(execute(40, 2, 100));               // Eats 100 of our 200 depletion.
  events.push_back(add(60, 4, Side::kSell, 1002, 100));  // Fresh shares at the level.
  events.push_back(remove(70, 2));
  events.push_back(remove(71, 4));                      // The level leaves the book.
  events.push_back(add(80, 5, Side::kSell, 1002, 100));
  ReplayMarket m = loaded(events);
  m.submit(order(20, 1, Side::kBuy, 1002, 150, SimOrderType::kIoc));
  m.submit(order(21, 2, Side::kBuy, 1002, 150, SimOrderType::kIoc));
  m.run_until(30);
  auto reports = drain(m);
  CHECK_EQ(filled(reports, 1), 150);
  CHECK_EQ(filled(reports, 2), 50);  // Only 50 of the recorded 200 were left.
  CHECK_EQ(m.quote(0, 0).ask_quantity, 0);
  m.submit(order(50, 3, Side::kBuy, 1002, 100, SimOrderType::kIoc));
  m.run_until(50);
  CHECK_EQ(filled(drain(m), 3), 0);  // The recorded execution took shares we had already taken.
  m.submit(order(65, 4, Side::kBuy, 1002, 300, SimOrderType::kIoc));
  m.run_until(65);
  CHECK_EQ(filled(drain(m), 4), 100);  // Only the new order's shares.
  m.submit(order(85, 5, Side::kBuy, 1002, 300, SimOrderType::kIoc));
  m.run_until(85);
  CHECK_EQ(filled(drain(m), 5), 100);  // Depletion went with the level.
}

TEST(a_limit_order_takes_level_by_level_at_resting_prices_then_rests) {
  std::vector<MdEvent> events = {add(10, 1, Side::kBuy, 1000, 300),
                                 add(11, 2, Side::kSell, 1002, 200),
                                 add(12, 3, Side::kSell, 1003, 100),
                                 add(13, 4, Side::kSell, 1005, 100)};
  ReplayMarket m = loaded(events);
  m.submit(order(20, 1, Side::kBuy, 1004, 400));
  m.run_until(20);
  const auto reports = drain(m);
  CHECK_EQ(reports.size(), 3u);
  CHECK(reports[0].kind == SimReportKind::kAck);
  CHECK_EQ(reports[1].price_ticks, 1002);
  CHECK_EQ(reports[1].quantity, 200);
  CHECK_EQ(reports[2].price_ticks, 1003);
  CHECK_EQ(reports[2].quantity, 100);
  CHECK_EQ(reports[2].leaves_quantity, 100);
  CHECK_EQ(m.shares_ahead(1), 0);
  const Nbbo q = m.quote(0, 0);
  CHECK_EQ(q.ask_price_ticks, 1005);
  CHECK_EQ(q.bid_price_ticks, 1000);  // The quote shows recorded liquidity, not the agent's.
}

TEST(a_trade_through_our_price_fills_us_fully) {
  auto events = base_book();
  events.push_back(execute(30, 1, 10));                    // A seller hit 1000 < our 1001.
  events.push_back(trade(40, Side::kSell, 1003, 5));       // A hidden sell lifted at 1003 > 1002.
  ReplayMarket m = loaded(events);
  m.submit(order(20, 1, Side::kBuy, 1001, 500));
  m.submit(order(20, 2, Side::kSell, 1002, 700));
  m.run_until(30);
  auto reports = drain(m);
  CHECK_EQ(filled(reports, 1), 500);
  CHECK_EQ(filled(reports, 2), 0);
  m.run_until(40);
  reports = drain(m);
  CHECK_EQ(filled(reports, 2), 700);
  const auto fills = of_kind(reports, SimReportKind::kFill);
  CHECK(!fills.empty() && fills[0].price_ticks == 1002);
}

TEST(a_recorded_order_crossing_our_resting_order_trades_with_it) {
  auto events = base_book();
  events.push_back(remove(30, 2));
  events.push_back(add(31, 3, Side::kSell, 1001, 60));  // Crosses our 1001 bid: fills 60.
  ReplayMarket m = loaded(events);
  m.submit(order(20, 1, Side::kBuy, 1001, 100));
  m.run_until(31);
  const auto reports = drain(m);
  CHECK_EQ(filled(reports, 1), 60);
  CHECK_EQ(m.quote(0, 0).ask_quantity, 0);  // The 60 traded with us; the level shows none.
  m.submit(order(40, 2, Side::kBuy, 1001, 100, SimOrderType::kIoc));
  m.run_until(40);
  CHECK_EQ(filled(drain(m), 2), 0);
}

TEST(latency_orders_events_and_a_cancel_can_lose_the_race_to_a_fill) {
  ReplayVenueOptions venue;
  venue.order_entry_latency_ns = 100;
  venue.ack_latency_ns = 50;
  for (const std::int64_t execution_ts : {300, 400}) {
    auto events = base_book();
    events.push_back(execute(execution_ts, 1, 10));  // Trades through our 1001 bid.
    ReplayMarket m = loaded(events, one_venue(venue));
    m.run_until(100);
    m.submit(order(100, 1, Side::kBuy, 1001, 100));
    m.run_until(250);
    m.cancel(1, 250);  // Arrives at 350.
    m.run_until(1000);
    const auto reports = drain(m);
    CHECK_EQ(reports.size(), execution_ts == 300 ? 3u : 2u);
    if (reports.size() < 2) continue;
    CHECK(reports[0].kind == SimReportKind::kAck);
    CHECK_EQ(reports[0].ts_event, 200);
    CHECK_EQ(reports[0].ts_recv, 250);
    if (execution_ts == 300 && reports.size() == 3) {
      CHECK(reports[1].kind == SimReportKind::kFill);
      CHECK_EQ(reports[1].ts_event, 300);
      CHECK(reports[2].kind == SimReportKind::kRejected);
      CHECK_EQ(reports[2].detail, static_cast<std::uint8_t>(SimRejectReason::kUnknownOrder));
      CHECK_EQ(reports[2].ts_event, 350);
      CHECK_EQ(reports[2].ts_recv, 400);
    } else {
      CHECK(reports[1].kind == SimReportKind::kCancelled);
      CHECK_EQ(reports[1].ts_event, 350);
      CHECK_EQ(reports[1].leaves_quantity, 0);
      CHECK_EQ(filled(reports, 1), 0);
    }
  }
}

TEST(reports_are_drained_only_once_received) {
  ReplayVenueOptions venue;
  venue.ack_latency_ns = 1000;
  ReplayMarket m = loaded(base_book(), one_venue(venue));
  m.submit(order(20, 1, Side::kBuy, 1000, 100));
  m.run_until(500);
  CHECK_EQ(drain(m).size(), 0u);
  CHECK_EQ(m.pending_reports(), 1u);
  m.run_until(1020);
  CHECK_EQ(drain(m).size(), 1u);
}

TEST(market_data_latency_delays_the_agent_view) {
  ReplayVenueOptions venue;
  venue.market_data_latency_ns = 100;
  ReplayMarket m = loaded(base_book(), one_venue(venue));
  m.run_until(50);
  CHECK_EQ(m.quote(0, 0, QuoteView::kVenue).bid_price_ticks, 1000);
  CHECK_EQ(m.quote(0, 0, QuoteView::kAgent).bid_price_ticks, 0);
  m.run_until(110);
  CHECK_EQ(m.quote(0, 0, QuoteView::kAgent).bid_price_ticks, 1000);
  CHECK_EQ(m.quote(0, 0, QuoteView::kAgent).ask_price_ticks, 0);
  m.run_until(111);
  CHECK_EQ(m.quote(0, 0, QuoteView::kAgent).ask_price_ticks, 1002);
}

TEST(post_only_is_rejected_when_it_would_take) {
  ReplayMarket m = loaded(base_book());
  m.submit(order(20, 1, Side::kBuy, 1002, 100, SimOrderType::kPostOnly));
  m.submit(order(20, 2, Side::kBuy, 1001, 100, SimOrderType::kPostOnly));
  m.run_until(20);
  const auto reports = drain(m);
  CHECK_EQ(reports.size(), 2u);
  CHECK(reports[0].kind == SimReportKind::kRejected);
  CHECK_EQ(reports[0].detail, static_cast<std::uint8_t>(SimRejectReason::kWouldTake));
  CHECK(reports[1].kind == SimReportKind::kAck);
  CHECK_EQ(m.shares_ahead(2), 0);
}

TEST(ioc_and_market_remainders_are_cancelled) {
  ReplayMarket m = loaded(base_book());
  m.submit(order(20, 1, Side::kBuy, 1003, 500, SimOrderType::kIoc));
  m.submit(order(20, 2, Side::kSell, 0, 450, SimOrderType::kMarket));
  m.run_until(20);
  const auto reports = drain(m);
  CHECK_EQ(filled(reports, 1), 200);
  CHECK_EQ(filled(reports, 2), 300);
  const auto cancelled = of_kind(reports, SimReportKind::kCancelled);
  CHECK_EQ(cancelled.size(), 2u);
  CHECK_EQ(cancelled[0].client_order_id, 1u);
  CHECK_EQ(cancelled[0].leaves_quantity, 0);
  CHECK_EQ(m.leaves_quantity(1), -1);
  CHECK_EQ(m.leaves_quantity(2), -1);
  CHECK_EQ(m.counters().shares_taken, 500);
}

TEST(fees_charge_takers_and_pay_maker_rebates) {
  ReplayVenueOptions venue;
  venue.maker_fee_usd_per_share = -0.002;
  venue.taker_fee_usd_per_share = 0.003;
  auto events = base_book();
  events.push_back(execute(30, 1, 10));  // Trades through our resting 1001 bid.
  ReplayMarket m = loaded(events, one_venue(venue));
  m.submit(order(20, 1, Side::kBuy, 1002, 100, SimOrderType::kIoc));
  m.submit(order(20, 2, Side::kBuy, 1001, 100));
  m.run_until(30);
  const auto fills = of_kind(drain(m), SimReportKind::kFill);
  CHECK_EQ(fills.size(), 2u);
  CHECK(std::fabs(fills[0].fee_usd - 0.3) < 1e-12);
  CHECK_EQ(fills[0].detail, static_cast<std::uint8_t>(SimLiquidity::kRemoved));
  CHECK(std::fabs(fills[1].fee_usd + 0.2) < 1e-12);
  CHECK_EQ(fills[1].detail, static_cast<std::uint8_t>(SimLiquidity::kAdded));
}

TEST(bad_orders_are_rejected_with_the_reason_and_the_replay_goes_on) {
  ReplayVenueOptions venue;
  venue.tick_size_ticks = 2;
  ReplayMarket m = loaded(base_book(), one_venue(venue));
  m.submit(order(20, 1, Side::kBuy, 1000, 100, SimOrderType::kLimit, 3));  // Unknown venue.
  m.submit(order(20, 2, Side::kBuy, 1000, 0));                              // Bad quantity.
  m.submit(order(20, 3, Side::kBuy, 1001, 100));                            // Off the grid.
  m.submit(order(20, 4, Side::kBuy, 0, 100));                               // Zero price.
  m.submit(order(20, 5, Side::kNone, 1000, 100));                           // No side.
  m.submit(order(20, 6, Side::kBuy, 1000, 100, SimOrderType::kMidpointPeg));
  AgentOrder other_instrument = order(20, 8, Side::kBuy, 1000, 100);
  other_instrument.instrument_id = 9;
  m.submit(other_instrument);
  m.submit(order(20, 7, Side::kBuy, 1000, 100));
  m.submit(order(20, 7, Side::kBuy, 998, 100));                             // Duplicate id.
  m.cancel(99, 20);                                                         // Never sent.
  m.run_until(20);
  const auto reports = drain(m);
  auto reason_of = [&](std::uint64_t id) {
    for (const SimReport& r : reports) {
      if (r.client_order_id == id && r.kind == SimReportKind::kRejected) return r.detail;
    }
    return std::uint8_t{0};
  };
  CHECK_EQ(reason_of(1), static_cast<std::uint8_t>(SimRejectReason::kUnknownVenue));
  CHECK_EQ(reason_of(2), static_cast<std::uint8_t>(SimRejectReason::kBadQuantity));
  CHECK_EQ(reason_of(3), static_cast<std::uint8_t>(SimRejectReason::kBadPrice));
  CHECK_EQ(reason_of(4), static_cast<std::uint8_t>(SimRejectReason::kBadPrice));
  CHECK_EQ(reason_of(5), static_cast<std::uint8_t>(SimRejectReason::kBadSide));
  CHECK_EQ(reason_of(6), static_cast<std::uint8_t>(SimRejectReason::kUnsupportedType));
  CHECK_EQ(reason_of(8), static_cast<std::uint8_t>(SimRejectReason::kUnknownInstrument));
  CHECK_EQ(reason_of(7), static_cast<std::uint8_t>(SimRejectReason::kDuplicateOrder));
  CHECK_EQ(reason_of(99), static_cast<std::uint8_t>(SimRejectReason::kUnknownOrder));
  CHECK_EQ(m.shares_ahead(7), 300);  // The first order 7 rests; the duplicate did not touch it.
  CHECK_EQ(m.counters().orders_rejected, 8u);
}

TEST(load_names_what_is_wrong_with_a_stream) {
  ReplayOptions options = one_venue();
  options.venues.push_back({});
  ReplayMarket m(options);
  const auto good = base_book();
  CHECK(m.load(5, good.data(), good.size()).error == LoadError::kUnknownVenue);
  const std::vector<MdEvent> unsorted = {add(20, 1, Side::kBuy, 1000, 1),
                                         add(10, 2, Side::kBuy, 1000, 1)};
  const LoadResult u = m.load(0, unsorted.data(), unsorted.size());
  CHECK(u.error == LoadError::kUnsorted);
  CHECK_EQ(u.index, 1u);
  CHECK(u.message.find("ts_event 10") != std::string::npos);
  CHECK(m.load(1, good.data(), good.size()).error == LoadError::kVenueMismatch);
  const std::vector<MdEvent> bad = {add(10, 1, Side::kBuy, 1000, 1), remove(11, 42)};
  const LoadResult b = m.load(0, bad.data(), bad.size());
  CHECK(b.error == LoadError::kBookRejected);
  CHECK(b.book_status == Status::kUnknownOrder);
  CHECK(b.message.find("unknown_order") != std::string::npos);
  CHECK(m.load(0, good.data(), good.size()).error == LoadError::kOk);
  CHECK(m.load(0, good.data(), good.size()).error == LoadError::kAlreadyLoaded);
  m.run_until(5);
  std::vector<MdEvent> venue1 = {add(10, 1, Side::kBuy, 1000, 1, 1)};
  CHECK(m.load(1, venue1.data(), venue1.size()).error == LoadError::kAlreadyStarted);
}

TEST(venues_merge_by_time_and_the_nbbo_spans_them) {
  ReplayOptions options = one_venue();
  options.venues.push_back({});
  ReplayMarket m(options);
  const std::vector<MdEvent> v0 = {add(10, 1, Side::kBuy, 1000, 100, 0),
                                   add(30, 2, Side::kSell, 1003, 100, 0)};
  const std::vector<MdEvent> v1 = {add(20, 1, Side::kBuy, 1000, 50, 1),
                                   add(20, 2, Side::kSell, 1002, 70, 1)};
  CHECK(m.load(0, v0.data(), v0.size()).error == LoadError::kOk);
  CHECK(m.load(1, v1.data(), v1.size()).error == LoadError::kOk);
  CHECK_EQ(m.next_event_ts(), 10);
  m.run_until(25);
  CHECK_EQ(m.next_event_ts(), 30);
  Nbbo n = m.nbbo(0);
  CHECK_EQ(n.bid_price_ticks, 1000);
  CHECK_EQ(n.bid_quantity, 150);
  CHECK_EQ(n.bid_venue_mask, 3u);
  CHECK_EQ(n.ask_price_ticks, 1002);
  CHECK_EQ(n.ask_venue_mask, 2u);
  m.run_until(30);
  CHECK_EQ(m.counters().recorded_events, 4u);
}

TEST(propagator_impact_has_the_sign_of_our_trades_and_decays) {
  ReplayOptions options = one_venue();
  options.impact_model = ImpactModel::kPropagator;
  options.propagator.eta_ticks = 20.0;
  options.propagator.daily_volume_shares = 10'000.0;  // 100 shares: 20 * 0.01^0.5 = 2 ticks.
  options.propagator.t0_ns = 1000.0;
  std::vector<MdEvent> events = {add(10, 1, Side::kBuy, 1000, 300),
                                 add(11, 2, Side::kSell, 1002, 100),
                                 add(12, 3, Side::kSell, 1003, 1000)};
  ReplayMarket m = loaded(events, options);
  m.submit(order(100, 1, Side::kBuy, 1002, 100, SimOrderType::kIoc));
  m.run_until(100);
  CHECK(std::fabs(m.impact_ticks(0) - 2.0) < 1e-12);
  // Our buy moved the prices our later orders meet up by 2 ticks.
  CHECK_EQ(m.quote(0, 0).ask_price_ticks, 1005);
  CHECK_EQ(m.quote(0, 0).bid_price_ticks, 1002);
  CHECK_EQ(m.quote(0, 0, QuoteView::kAgent).ask_price_ticks, 1002);  // Raw recorded book.
  m.submit(order(100, 2, Side::kBuy, 1004, 100, SimOrderType::kIoc));
  m.run_until(100);
  CHECK_EQ(filled(drain(m), 2), 0);  // 1003 + 2 > 1004: buying after our buy costs more.
  m.run_until(3100);
  CHECK(std::fabs(m.impact_ticks(0) - 2.0 / std::sqrt(4.0)) < 1e-12);  // G(3 t0) = 4^-0.5.
  m.submit(order(3100, 3, Side::kBuy, 1004, 100, SimOrderType::kIoc));
  m.run_until(3100);
  const auto fills = of_kind(drain(m), SimReportKind::kFill);
  CHECK_EQ(fills.size(), 1u);
  CHECK_EQ(fills[0].price_ticks, 1004);  // 1003 shifted by the rounded 1.0 + 2.0 decayed.
  // A sell pushes the other way: impact falls below the transient level left by the buys.
  const double before = m.impact_ticks(0);
  m.submit(order(3100, 4, Side::kSell, 0, 100, SimOrderType::kMarket));
  m.run_until(3100);
  CHECK(m.impact_ticks(0) < before - 1.9);
  m.run_until(1'000'000'000);
  CHECK(std::fabs(m.impact_ticks(0)) < 0.01);  // No permanent part: it all decays.
}

TEST(propagator_permanent_fraction_stays) {
  ReplayOptions options = one_venue();
  options.impact_model = ImpactModel::kPropagator;
  options.propagator.eta_ticks = 20.0;
  options.propagator.daily_volume_shares = 10'000.0;
  options.propagator.t0_ns = 1000.0;
  options.propagator.permanent_fraction = 0.25;
  ReplayMarket m = loaded(base_book(), options);
  m.submit(order(100, 1, Side::kBuy, 1002, 100, SimOrderType::kIoc));
  m.run_until(100);
  CHECK(std::fabs(m.impact_ticks(0) - 2.0) < 1e-12);
  m.run_until(INT64_MAX / 2);
  CHECK(std::fabs(m.impact_ticks(0) - 0.5) < 1e-6);
}

TEST(a_resting_order_meets_recorded_trades_at_impact_shifted_prices) {
  ReplayOptions options = one_venue();
  options.impact_model = ImpactModel::kPropagator;
  options.propagator.eta_ticks = 20.0;
  options.propagator.daily_volume_shares = 10'000.0;
  options.propagator.t0_ns = 1e12;  // Effectively constant over the test.
  auto events = base_book();
  events.push_back(add(12, 3, Side::kSell, 1004, 100));
  events.push_back(execute(30, 1, 10));  // Recorded at 1000, seen at 1002 after our buy.
  ReplayMarket m = loaded(events, options);
  m.submit(order(20, 1, Side::kSell, 0, 100, SimOrderType::kMarket));  // Impact -2.
  m.submit(order(20, 2, Side::kBuy, 999, 50));                        // Seen-through at 998.
  m.run_until(30);
  CHECK_EQ(filled(drain(m), 2), 50);
}

TEST(same_seed_same_reports_bit_for_bit) {
  SyntheticFlowParams p;
  p.seed = 5;
  p.event_count = 20'000;
  p.venue_count = 2;
  p.target_orders = 200;
  const std::vector<MdEvent> flow = generate_order_flow(p);
  auto run = [&](std::uint64_t seed) {
    ReplayOptions options;
    for (int v = 0; v < 2; ++v) {
      ReplayVenueOptions venue;
      venue.order_entry_latency_ns = 2'000 + 1'000 * v;
      venue.ack_latency_ns = 1'500;
      venue.market_data_latency_ns = 3'000;
      venue.latency_jitter_ns = 2'000;
      venue.taker_fee_usd_per_share = 0.003;
      venue.maker_fee_usd_per_share = -0.002;
      options.venues.push_back(venue);
    }
    options.queue_model = QueueModel::kProportional;
    options.impact_model = ImpactModel::kPropagator;
    options.seed = seed;
    ReplayMarket m(options);
    for (std::uint8_t v = 0; v < 2; ++v) {
      std::vector<MdEvent> mine;
      for (const MdEvent& e : flow) {
        if (e.venue_id == v) mine.push_back(e);
      }
      CHECK(m.load(v, mine.data(), mine.size()).error == LoadError::kOk);
    }
    Random agent(99);
    std::vector<SimReport> all;
    std::vector<SimReport> buffer(4096);
    std::int64_t ts = flow.front().ts_event;
    for (std::uint64_t id = 1; id <= 400; ++id) {
      ts += 50'000;
      m.run_until(ts);
      const auto v = static_cast<std::uint8_t>(agent.below(2));
      const Nbbo q = m.quote(v, 0, QuoteView::kAgent);
      if (q.bid_price_ticks == 0 || q.ask_price_ticks == 0) continue;
      const Side side = agent.below(2) == 0 ? Side::kBuy : Side::kSell;
      const std::int64_t offset = static_cast<std::int64_t>(agent.below(4)) - 1;
      const std::int64_t price = side == Side::kBuy ? q.bid_price_ticks + offset
                                                    : q.ask_price_ticks - offset;
      const auto type = static_cast<SimOrderType>(agent.below(4));
      m.submit(order(ts, id, side, price, 100 * (1 + static_cast<std::int64_t>(agent.below(5))),
                     type, v));
      if (agent.below(3) == 0) m.cancel(id - static_cast<std::uint64_t>(agent.below(5)), ts);
      all.insert(all.end(), buffer.begin(),
                 buffer.begin() + static_cast<std::ptrdiff_t>(m.drain_reports(buffer.data(), buffer.size())));
    }
    m.run_until(INT64_MAX);
    all.insert(all.end(), buffer.begin(),
               buffer.begin() + static_cast<std::ptrdiff_t>(m.drain_reports(buffer.data(), buffer.size())));
    return all;
  };
  const auto a = run(7);
  const auto b = run(7);
  const auto c = run(8);
  CHECK(a.size() > 400u);
  CHECK(!of_kind(a, SimReportKind::kFill).empty());
  CHECK_EQ(a.size(), b.size());
  CHECK(a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(SimReport)) == 0);
  CHECK(a.size() != c.size() || std::memcmp(a.data(), c.data(), a.size() * sizeof(SimReport)) != 0);
  for (std::size_t i = 1; i < a.size(); ++i) CHECK(a[i - 1].ts_recv <= a[i].ts_recv);
}

TEST(options_are_validated_by_name) {
  ReplayOptions options;
  CHECK(validate(options).find("venues") != std::string::npos);
  options.venues.push_back({});
  CHECK(validate(options).empty());
  options.venues[0].ack_latency_ns = -1;
  CHECK(validate(options).find("venues[0].ack_latency_ns") != std::string::npos);
  options.venues[0].ack_latency_ns = 0;
  options.propagator.delta = 0.0;
  CHECK(validate(options).find("propagator.delta") != std::string::npos);
}
