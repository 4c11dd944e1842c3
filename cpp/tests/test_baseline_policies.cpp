#define SOR_TEST_MAIN
#include "check.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "sor/baseline_policies.hpp"
#include "sor/consolidated.hpp"
#include "sor/features.hpp"

using namespace sor;

namespace {

constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kMidnight = 1'700'006'400 * kS;  // a multiple of 24 h
constexpr std::int64_t kOpen = kMidnight + 34'200 * kS;  // 09:30 on the decision clock

bool near(double a, double b, double tolerance) { return std::fabs(a - b) <= tolerance; }

#define CHECK_NEAR(a, b, tol)                                                          \
  do {                                                                                 \
    const double sor_x_ = (a), sor_y_ = (b);                                           \
    if (!near(sor_x_, sor_y_, (tol)))                                                  \
      ::sor::testing::report(__FILE__, __LINE__, std::string(#a " ~= " #b " (") +     \
                                                     std::to_string(sor_x_) + " vs " +  \
                                                     std::to_string(sor_y_) + ")");    \
  } while (0)

bool starts_with(const char* message, const char* field) {
  return std::strncmp(message, field, std::strlen(field)) == 0;
}

// Venues 0 and 1 lit (0 charges more to take, 1 ranks lower), 2 and 3 dark.
std::vector<PolicyVenue> policy_venues() {
  return {
      {0, true, 1, -0.002, 0.003, 0.001, 100'000, 0},
      {1, true, 1, -0.001, 0.002, 0.001, 100'000, 1},
      {2, false, 1, 0.0, 0.0, 0.001, 100'000, 2},
      {3, false, 1, 0.0, 0.0, 0.001, 100'000, 3},
  };
}

// A consolidated book of the four venues, an instrument 0 and a parent order.
struct Rig {
  Rig()
      : book({{0, BookType::kL3, true},
              {1, BookType::kL3, true},
              {2, BookType::kL3, false},
              {3, BookType::kL3, false}}),
        venues(policy_venues()) {
    parent.parent_order_id = 1;
    parent.instrument_id = 0;
    parent.side = Side::kBuy;
    parent.quantity = 10'000;
    parent.start_ns = kOpen;
    parent.end_ns = kOpen + 100 * kS;
    parent.arrival_mid_ticks = 10'000.0;
    parent.adv_shares = 1e6;
    parent.lot_shares = 100;
  }
  void add(std::uint8_t venue, Side side, std::int64_t price, std::int64_t quantity) {
    MdEvent e{};
    e.kind = EventKind::kAdd;
    e.order_id = ++next_order_id;
    e.venue_id = venue;
    e.side = side;
    e.price_ticks = price;
    e.quantity = quantity;
    CHECK(book.apply(e) == Status::kOk);
  }
  void execute(std::uint8_t venue, std::uint64_t order_id, std::int64_t quantity) {
    MdEvent e{};
    e.kind = EventKind::kExecute;
    e.order_id = order_id;
    e.venue_id = venue;
    e.quantity = quantity;
    CHECK(book.apply(e) == Status::kOk);
  }
  // A deep two-sided book: bids 9'999 and asks 10'001 on both lit venues.
  void deep_book() {
    for (std::uint8_t v = 0; v < 2; ++v) {
      add(v, Side::kBuy, 9'999, 50'000);
      add(v, Side::kSell, 10'001, 50'000);
    }
  }
  PolicyView view(std::int64_t now_ns) {
    PolicyView v{};
    v.now_ns = now_ns;
    v.book = &book;
    v.features = nullptr;
    v.parent = &parent;
    v.open_children = open.data();
    v.open_child_count = open.size();
    v.venues = venues.data();
    v.venue_count = venues.size();
    v.market_volume_shares = market_volume;
    return v;
  }
  ConsolidatedBook book;
  std::vector<PolicyVenue> venues;
  ParentState parent{};
  std::vector<OpenChild> open;
  double market_volume = 0.0;
  std::uint64_t next_order_id = 0;
};

std::int64_t requested(const PolicyOutput& out) {
  std::int64_t total = 0;
  for (std::size_t i = 0; i < out.child_count; ++i) total += out.children[i].quantity;
  return total;
}

std::int64_t requested(const PolicyOutput& out, ChildOrderType type) {
  std::int64_t total = 0;
  for (std::size_t i = 0; i < out.child_count; ++i)
    if (out.children[i].type == type) total += out.children[i].quantity;
  return total;
}

// Runs `policy` as a runner would, with every take filled at once and posts/pegs left resting
// then cancelled: returns the filled shares (checks the request bound at every call).
std::int64_t run_takes_fill(ExecutionPolicy& policy, Rig& rig, std::int64_t until_ns) {
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  std::int64_t now = rig.parent.start_ns;
  for (int step = 0; step < 10'000 && now <= until_ns; ++step) {
    PolicyOutput out;
    PolicyView view = rig.view(now);
    policy.decide(view, out);
    CHECK(requested(out) <= sendable_quantity(rig.parent));
    for (std::size_t i = 0; i < out.child_count; ++i) {
      const ChildRequest& c = out.children[i];
      if (c.type == ChildOrderType::kTake) {
        rig.parent.filled += c.quantity;
        policy.on_child_done(0, c.venue_id, c.type, c.quantity, c.quantity);
      }
    }
    now = std::max(out.next_decision_ns, now + 1);
  }
  return rig.parent.filled;
}

}  // namespace

// --- the best-price rule ------------------------------------------------------------------

TEST(route_marketable_price_then_fee_then_rank) {
  Rig rig;
  rig.add(0, Side::kSell, 101, 300);
  rig.add(0, Side::kSell, 102, 500);
  rig.add(1, Side::kSell, 101, 200);
  rig.add(2, Side::kSell, 100, 900);  // dark: never taken
  PolicyOutput out;
  PolicyView view = rig.view(kOpen);
  CHECK_EQ(route_marketable(view, 600, out), 600);
  CHECK_EQ(out.child_count, 2u);
  // Same price 101: venue 1 first (lower taker fee), then venue 0 at 101 and 102.
  CHECK_EQ(out.children[0].venue_id, 1);
  CHECK_EQ(out.children[0].quantity, 200);
  CHECK_EQ(out.children[0].price_ticks, 101);
  CHECK(out.children[0].type == ChildOrderType::kTake);
  CHECK_EQ(out.children[1].venue_id, 0);
  CHECK_EQ(out.children[1].quantity, 400);
  CHECK_EQ(out.children[1].price_ticks, 102);
  // Equal fees: the static rank decides.
  rig.venues[1].taker_fee_usd_per_share = 0.003;
  rig.venues[1].static_rank = 5;
  PolicyOutput ranked;
  view = rig.view(kOpen);
  route_marketable(view, 300, ranked);
  CHECK_EQ(ranked.child_count, 1u);
  CHECK_EQ(ranked.children[0].venue_id, 0);
  CHECK_EQ(best_taker_fee_usd_per_share(view), 0.003);
}

TEST(route_marketable_limit_lots_and_displayed) {
  Rig rig;
  rig.add(0, Side::kSell, 101, 300);
  rig.add(0, Side::kSell, 102, 500);
  rig.add(1, Side::kSell, 101, 200);
  rig.parent.limit_price_ticks = 101;
  PolicyOutput out;
  PolicyView view = rig.view(kOpen);
  CHECK_EQ(route_marketable(view, 5'000, out), 500);  // only what is displayed within the limit
  rig.parent.limit_price_ticks = 0;
  PolicyOutput odd;
  CHECK_EQ(route_marketable(view, 650, odd), 600);  // whole lots: 200 + 400, odd 50 left
  rig.parent.quantity = 650;  // the same 650 now completes the parent: the odd lot rides along
  PolicyOutput last;
  view = rig.view(kOpen);
  CHECK_EQ(route_marketable(view, 650, last), 650);
  CHECK_EQ(last.children[0].quantity, 250);
  // Sell side takes bids, higher first.
  Rig sell;
  sell.parent.side = Side::kSell;
  sell.add(0, Side::kBuy, 99, 100);
  sell.add(1, Side::kBuy, 100, 100);
  PolicyOutput s;
  view = sell.view(kOpen);
  CHECK_EQ(route_marketable(view, 200, s), 200);
  CHECK_EQ(s.children[0].venue_id, 1);
  CHECK_EQ(s.children[0].price_ticks, 100);
}

// --- VWAP ---------------------------------------------------------------------------------

TEST(vwap_u_shape_schedule_by_hand) {
  Rig rig;
  rig.deep_book();
  rig.parent.quantity = 20'000;
  VwapConfig c;
  c.session_length_ns = 0;  // the profile spans the parent's horizon
  c.decision_interval_ns = 25 * kS;
  VwapPolicy policy(c);
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  // C(x) = (x + a ((2x - 1)^3 + 1) / 6) / (1 + a / 3), a = 2: C(1/4) = (1/4 + 7/24) / (5/3)
  // = 0.325, C(1/2) = 0.5, C(3/4) = 0.675.
  CHECK_NEAR(policy.target_fraction(kOpen + 25 * kS), 0.325, 1e-12);
  CHECK_NEAR(policy.target_fraction(kOpen + 50 * kS), 0.5, 1e-12);
  CHECK_NEAR(policy.target_fraction(kOpen + 75 * kS), 0.675, 1e-12);
  CHECK_EQ(policy.target_fraction(kOpen + 100 * kS), 1.0);
  PolicyOutput out;
  PolicyView view = rig.view(kOpen);
  policy.decide(view, out);
  CHECK_EQ(requested(out), 6'500);  // reach C(1/4) by the end of the first interval
  CHECK_EQ(out.next_decision_ns, kOpen + 25 * kS);
  CHECK(out.children[0].type == ChildOrderType::kTake);
  rig.parent.filled = 6'000;  // 500 short; 200 still in flight
  rig.parent.open_quantity = 200;
  PolicyOutput second;
  view = rig.view(kOpen + 25 * kS);
  policy.decide(view, second);
  CHECK_EQ(requested(second), 10'000 - 6'200);
}

TEST(vwap_bins_on_the_session_clock) {
  Rig rig;
  rig.deep_book();
  VwapConfig c;
  c.session_open_ns_since_midnight = 34'200 * kS;
  c.session_length_ns = 100 * kS;
  c.volume_profile_bins = {1.0, 3.0};
  VwapPolicy policy(c);
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());  // horizon = the session
  CHECK_NEAR(policy.target_fraction(kOpen + 25 * kS), 0.125, 1e-12);
  CHECK_NEAR(policy.target_fraction(kOpen + 50 * kS), 0.25, 1e-12);
  CHECK_NEAR(policy.target_fraction(kOpen + 75 * kS), 0.625, 1e-12);
  // A parent on the second half only: uniform bin, linear in time.
  rig.parent.start_ns = kOpen + 50 * kS;
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  CHECK_NEAR(policy.target_fraction(kOpen + 75 * kS), 0.5, 1e-12);
  // A horizon outside the session: time-proportional.
  rig.parent.start_ns = kOpen + 200 * kS;
  rig.parent.end_ns = kOpen + 300 * kS;
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  CHECK_NEAR(policy.target_fraction(kOpen + 225 * kS), 0.25, 1e-12);
}

TEST(vwap_participation_cap) {
  Rig rig;
  rig.deep_book();
  VwapConfig c;
  c.session_length_ns = 0;
  c.decision_interval_ns = 50 * kS;
  c.max_participation = 0.1;
  VwapPolicy policy(c);
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  rig.market_volume = 0.0;
  PolicyOutput none;
  PolicyView view = rig.view(kOpen);
  policy.decide(view, none);
  CHECK_EQ(none.child_count, 0u);
  rig.market_volume = 12'345.0;  // allowed 1'234 -> 1'200 in whole lots, minus 100 done
  rig.parent.filled = 100;
  PolicyOutput capped;
  view = rig.view(kOpen + 10 * kS);
  policy.decide(view, capped);
  CHECK_EQ(requested(capped), 1'100);
}

// --- Almgren-Chriss -------------------------------------------------------------------------

TEST(almgren_chriss_tiny_lambda_is_twap) {
  Rig rig;
  rig.deep_book();
  AlmgrenChrissConfig c;
  c.decision_interval_ns = 10 * kS;
  c.risk_aversion_per_tick_share = 1e-12;
  AlmgrenChrissPolicy policy(c);
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  CHECK(policy.kappa_per_second() > 0.0);
  for (int j = 0; j < 10; ++j) {
    const std::int64_t now = kOpen + j * 10 * kS + 3 * kS;  // inside interval j
    CHECK_EQ(policy.target_filled(kOpen + (j + 1) * 10 * kS), 1'000 * (j + 1));
    rig.parent.filled = 1'000 * j;
    PolicyOutput out;
    PolicyView view = rig.view(now);
    policy.decide(view, out);
    CHECK_EQ(requested(out), 1'000);
    CHECK_EQ(out.next_decision_ns, kOpen + (j + 1) * 10 * kS);
  }
  // Lambda = 0 is exactly linear.
  c.risk_aversion_per_tick_share = 0.0;
  AlmgrenChrissPolicy linear(c);
  linear.reset(rig.parent, rig.venues.data(), rig.venues.size());
  CHECK_EQ(linear.kappa_per_second(), 0.0);
  CHECK_NEAR(linear.holdings_fraction(kOpen + 30 * kS), 0.7, 1e-12);
}

TEST(almgren_chriss_trajectory_by_hand) {
  Rig rig;
  rig.deep_book();
  rig.parent.lot_shares = 1;
  rig.parent.end_ns = kOpen + 10 * kS;
  AlmgrenChrissConfig c;
  c.decision_interval_ns = kS;                       // tau = 1 s, T = 10 s
  c.volatility_bps_per_sqrt_second = 1.0;            // 1 bps of 10'000 ticks = 1 tick / sqrt(s)
  c.temporary_impact_ticks_per_share_per_second = 1.0;
  c.risk_aversion_per_tick_share = 0.2552519304127614;  // 2 (cosh(0.5) - 1): kappa tau = 0.5
  AlmgrenChrissPolicy policy(c);
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  CHECK_NEAR(policy.kappa_per_second(), 0.5, 1e-9);
  // x_1 = 10'000 sinh(4.5) / sinh(5) = 10'000 x 45.00301 / 74.20321 = 6'064.83: 3'935 done.
  CHECK_EQ(policy.target_filled(kOpen + kS), 3'935);
  CHECK_EQ(policy.target_filled(kOpen + 2 * kS), 6'322);  // sinh(4) / sinh(5) = 0.367773
  CHECK_EQ(policy.target_filled(kOpen + 3 * kS), 7'771);  // sinh(3.5) / sinh(5) = 0.222937
  PolicyOutput out;
  PolicyView view = rig.view(kOpen);
  policy.decide(view, out);
  CHECK_EQ(requested(out), 3'935);
}

TEST(almgren_chriss_large_lambda_front_loads) {
  Rig rig;
  rig.deep_book();
  AlmgrenChrissConfig c;
  c.decision_interval_ns = 10 * kS;
  c.risk_aversion_per_tick_share = 1e-5;
  AlmgrenChrissPolicy policy(c);
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  std::int64_t previous_done = 0;
  std::int64_t previous_slice = rig.parent.quantity;
  for (int j = 1; j <= 10; ++j) {
    const std::int64_t done = policy.target_filled(kOpen + j * 10 * kS);
    const std::int64_t slice = done - previous_done;
    CHECK(slice <= previous_slice);  // non-increasing trade sizes
    CHECK(done >= 1'000 * j);        // ahead of TWAP throughout
    previous_done = done;
    previous_slice = slice;
  }
  CHECK(policy.target_filled(kOpen + 10 * kS) > 2'000);
  CHECK_EQ(policy.target_filled(kOpen + 100 * kS), 10'000);
  // Huge kappa T does not overflow.
  c.risk_aversion_per_tick_share = 1e3;
  AlmgrenChrissPolicy extreme(c);
  extreme.reset(rig.parent, rig.venues.data(), rig.venues.size());
  CHECK(std::isfinite(extreme.holdings_fraction(kOpen + kS)));
  CHECK_EQ(extreme.target_filled(kOpen + 10 * kS), 10'000);
}

TEST(almgren_chriss_volatility_from_features) {
  // A lit venue whose mid alternates by 2 ticks every second for 6 minutes: realized vol > 0.
  FeatureOptions options;
  options.venues.push_back({0, true, BookType::kL3, -0.002, 0.003, 0.001, 100'000});
  options.price_tick_usd = 0.01;
  ConsolidatedBook book(book_venues(options));
  FeatureEngine engine(options);
  std::uint64_t id = 0;
  auto apply = [&](EventKind kind, std::uint64_t order, Side side, std::int64_t price,
                   std::int64_t ts) {
    MdEvent e{};
    e.kind = kind;
    e.order_id = order;
    e.side = side;
    e.price_ticks = price;
    e.quantity = 100;
    e.ts_recv = e.ts_event = ts;
    CHECK(book.apply(e) == Status::kOk);
    engine.on_event(e, book);
  };
  const std::int64_t t0 = kOpen - 400 * kS;
  apply(EventKind::kAdd, ++id, Side::kBuy, 9'999, t0);
  apply(EventKind::kAdd, ++id, Side::kSell, 10'001, t0);
  for (int i = 1; i <= 360; ++i) {
    const std::int64_t shift = (i % 2) * 2;
    apply(EventKind::kDelete, id - 1, Side::kNone, 0, t0 + i * kS);
    apply(EventKind::kDelete, id, Side::kNone, 0, t0 + i * kS);
    apply(EventKind::kAdd, id + 1, Side::kBuy, 9'999 + shift, t0 + i * kS);
    apply(EventKind::kAdd, id + 2, Side::kSell, 10'001 + shift, t0 + i * kS);
    id += 2;
  }
  std::vector<PolicyVenue> venues = {{0, true, 1, -0.002, 0.003, 0.001, 100'000, 0}};
  ParentState parent{};
  parent.side = Side::kBuy;
  parent.quantity = 10'000;
  parent.start_ns = kOpen - 40 * kS;
  parent.end_ns = kOpen + 60 * kS;
  parent.arrival_mid_ticks = 10'000.0;
  parent.lot_shares = 100;
  AlmgrenChrissConfig c;
  c.volatility_from_features = true;
  c.risk_aversion_per_tick_share = 1e-6;
  AlmgrenChrissPolicy policy(c);
  policy.reset(parent, venues.data(), venues.size());
  const double configured = policy.kappa_per_second();
  CHECK_NEAR(configured, policy.kappa_per_second(1.0 * 1e-4 * 10'000.0), 1e-15);
  PolicyView view{};
  view.now_ns = kOpen - 39 * kS;
  view.book = &book;
  view.features = &engine;
  view.parent = &parent;
  view.venues = venues.data();
  view.venue_count = venues.size();
  PolicyOutput out;
  policy.decide(view, out);
  // The reference: the row's vol.realized_5m_bps, per sqrt(second), in ticks at the arrival mid.
  DecisionContext context{};
  context.now_ns = view.now_ns;
  context.start_ns = parent.start_ns;
  context.end_ns = parent.end_ns;
  context.child_quantity = 100;
  context.parent_quantity = parent.quantity;
  context.remaining_quantity = parent.quantity;
  context.arrival_mid_ticks = parent.arrival_mid_ticks;
  context.side = Side::kBuy;
  float row[kFeatureCount];
  CHECK(engine.build_row(context, book, row) == FeatureStatus::kOk);
  const double realized = row[static_cast<std::size_t>(FeatureIndex::kVolRealized5mBps)];
  CHECK(realized > 0.0);
  const double expected = policy.kappa_per_second(realized / std::sqrt(300.0) * 1e-4 * 10'000.0);
  CHECK_NEAR(policy.kappa_per_second(), expected, 1e-12);
  CHECK(policy.kappa_per_second() != configured);
}

// --- Cont-Kukanov ---------------------------------------------------------------------------

TEST(cont_kukanov_single_venue_sa_matches_closed_form_discrete) {
  // xi uniform on {100, ..., 1'000}; Q = 200, S = 500. q = (2h + f + r) / (lambda_u + h + r)
  // = (0.01 + 0.003 + 0.002) / (0.0265 + 0.005 + 0.002) = 0.4478, F^-1(q) = 500 (F(400) = 0.4,
  // F(500) = 0.5), so L* = 500 - 200 = 300 and M* = 200.
  std::vector<double> rows;
  for (int i = 1; i <= 10; ++i) rows.push_back(100.0 * i);
  const ContKukanovProblem p{500.0, 0.005, 0.003, 0.0265, 0.02};
  const double queue = 200.0;
  const double rebate = 0.002;
  CHECK_NEAR(cont_kukanov_single_venue_quantile(p, rebate), 0.015 / 0.0335, 1e-12);
  const double closed = cont_kukanov_single_venue_limit_shares(p, queue, rebate, rows.data(),
                                                               rows.size());
  CHECK_NEAR(closed, 300.0, 1e-9);
  Random rng(7);
  double market = 0.0;
  double limit = 0.0;
  cont_kukanov_allocate(p, &queue, &rebate, 1, rows.data(), rows.size(), 40'000, rng, market,
                        &limit);
  CHECK_NEAR(limit, 300.0, 15.0);
  CHECK_NEAR(market, 200.0, 15.0);
  const double best = 500.0 - closed;
  const double cost_closed =
      cont_kukanov_expected_cost(p, &queue, &rebate, 1, rows.data(), rows.size(), best, &closed);
  const double cost_sa =
      cont_kukanov_expected_cost(p, &queue, &rebate, 1, rows.data(), rows.size(), market, &limit);
  CHECK(cost_sa >= cost_closed - 1e-9);
  CHECK_NEAR(cost_sa, cost_closed, 0.01 * std::fabs(cost_closed));
}

TEST(cont_kukanov_single_venue_sa_matches_closed_form_continuous) {
  // 2'000 draws of xi ~ exponential(mean 600); the closed form on those draws is the reference.
  Random draw(11);
  std::vector<double> rows;
  for (int i = 0; i < 2'000; ++i) rows.push_back(draw.exponential(600.0));
  const ContKukanovProblem p{1'000.0, 0.01, 0.003, 0.05, 0.03};
  const double queue = 300.0;
  const double rebate = 0.002;
  const double closed = cont_kukanov_single_venue_limit_shares(p, queue, rebate, rows.data(),
                                                               rows.size());
  // q = 0.025 / 0.062 = 0.403; F^-1(q) of the exponential ~ -600 ln(1 - q) = 310, so with
  // Q = 300 the limit order is small (L* ~ 0-10) and with Q = 0 it is L* ~ 310.
  CHECK(closed >= 0.0 && closed <= 100.0);
  Random rng(3);
  double market = 0.0;
  double limit = 0.0;
  const double zero_queue = 0.0;
  const double closed0 = cont_kukanov_single_venue_limit_shares(p, zero_queue, rebate,
                                                                rows.data(), rows.size());
  CHECK_NEAR(closed0, -600.0 * std::log(1.0 - 0.025 / 0.062), 40.0);
  cont_kukanov_allocate(p, &zero_queue, &rebate, 1, rows.data(), rows.size(), 50'000, rng,
                        market, &limit);
  CHECK_NEAR(limit, closed0, 0.03 * p.target_shares);
  CHECK_NEAR(market + limit, p.target_shares, 0.03 * p.target_shares);
  cont_kukanov_allocate(p, &queue, &rebate, 1, rows.data(), rows.size(), 50'000, rng, market,
                        &limit);
  CHECK_NEAR(limit, closed, 0.03 * p.target_shares);
}

TEST(cont_kukanov_closed_form_corners) {
  const std::vector<double> rows = {100.0, 200.0, 300.0};
  const double rebate = 0.002;
  // Queue longer than any outflow: no limit order.
  ContKukanovProblem p{500.0, 0.005, 0.003, 0.05, 0.05};
  CHECK_EQ(cont_kukanov_single_venue_limit_shares(p, 1'000.0, rebate, rows.data(), 3), 0.0);
  // lambda_u <= h + f: crossing never pays, everything rests.
  p.underfill_penalty_usd_per_share = 0.006;
  CHECK(cont_kukanov_single_venue_quantile(p, rebate) >= 1.0);
  CHECK_EQ(cont_kukanov_single_venue_limit_shares(p, 0.0, rebate, rows.data(), 3), 500.0);
  Random rng(5);
  double market = 0.0;
  double limit = 0.0;
  const double queue = 0.0;
  cont_kukanov_allocate(p, &queue, &rebate, 1, rows.data(), 3, 20'000, rng, market, &limit);
  // Past the largest outflow (300) a limit order never fills: every L in [300, 500] is optimal.
  CHECK(market < 25.0);
  CHECK(limit > 290.0);
  const double closed_limit = 500.0;
  CHECK_NEAR(cont_kukanov_expected_cost(p, &queue, &rebate, 1, rows.data(), 3, market, &limit),
             cont_kukanov_expected_cost(p, &queue, &rebate, 1, rows.data(), 3, 0.0,
                                        &closed_limit),
             1e-3);
}

TEST(cont_kukanov_two_venues_beats_simple_splits) {
  // Joint outflows: venue 0 has a short queue and moderate outflow, venue 1 a long queue.
  Random draw(19);
  std::vector<double> rows;
  for (int i = 0; i < 500; ++i) {
    rows.push_back(draw.exponential(800.0));
    rows.push_back(draw.exponential(1'500.0));
  }
  const double queue[2] = {100.0, 1'200.0};
  const double rebate[2] = {0.002, 0.003};
  const ContKukanovProblem p{1'000.0, 0.005, 0.003, 0.03, 0.02};
  Random rng(1);
  double market = 0.0;
  double limit[2] = {};
  cont_kukanov_allocate(p, queue, rebate, 2, rows.data(), 500, 50'000, rng, market, limit);
  const double cost = cont_kukanov_expected_cost(p, queue, rebate, 2, rows.data(), 500, market,
                                                 limit);
  // Coarse grid over (M, L0, L1) in steps of 50: the SA is within 1% of the grid's best.
  double grid_best = 1e300;
  for (int m = 0; m <= 1'000; m += 50)
    for (int a = 0; a <= 1'000; a += 50)
      for (int b = 0; b <= 1'000; b += 50) {
        const double l[2] = {double(a), double(b)};
        grid_best = std::min(grid_best, cont_kukanov_expected_cost(p, queue, rebate, 2,
                                                                   rows.data(), 500, m, l));
      }
  CHECK(cost <= grid_best + 0.01 * std::fabs(grid_best));
  CHECK(limit[0] > limit[1]);  // the short queue gets more
}

TEST(cont_kukanov_policy_places_split_and_replaces) {
  Rig rig;
  rig.add(0, Side::kBuy, 9'999, 200);
  rig.add(1, Side::kBuy, 9'999, 5'000);
  rig.add(0, Side::kSell, 10'001, 50'000);
  rig.add(1, Side::kSell, 10'001, 50'000);
  ContKukanovConfig c;
  c.decision_interval_ns = 10 * kS;  // 10 periods: S = 1'000 a period
  c.sa_iterations = 20'000;
  ContKukanovPolicy policy(c);
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  // Outflows per period: venue 0 often clears its 200-share queue, venue 1 never clears 5'000.
  for (int i = 0; i < 20; ++i) {
    const double row[4] = {200.0 + 60.0 * i, 100.0 + 10.0 * i, 0.0, 0.0};
    policy.record_outflow(row);
  }
  CHECK_EQ(policy.outflow_observations(), 20u);
  CHECK_EQ(policy.outflow_observation(0, 0), 200.0);
  PolicyOutput out;
  PolicyView view = rig.view(kOpen);
  policy.decide(view, out);
  CHECK(requested(out) <= 1'000);
  CHECK(requested(out) >= 900);
  std::int64_t posted_venue1 = 0;
  for (std::size_t i = 0; i < out.child_count; ++i) {
    const ChildRequest& child = out.children[i];
    CHECK(child.quantity % 100 == 0);
    if (child.type == ChildOrderType::kPost) {
      CHECK_EQ(child.price_ticks, 9'999);  // near touch
      if (child.venue_id == 1) posted_venue1 += child.quantity;
    }
  }
  CHECK(requested(out, ChildOrderType::kPost) > 0);
  CHECK(requested(out, ChildOrderType::kTake) > 0);
  CHECK_EQ(posted_venue1, 0);  // its queue is never reached
  CHECK_EQ(out.next_decision_ns, kOpen + 10 * kS);
  // Same period again: nothing new.
  PolicyOutput again;
  policy.decide(view, again);
  CHECK_EQ(again.child_count + again.cancel_count, 0u);
  // Next period: a resting post is cancelled first and nothing is placed until it is done.
  rig.parent.filled = requested(out, ChildOrderType::kTake);
  rig.open.push_back(OpenChild{42, 0, ChildOrderType::kPost, 9'999, 300, 300, kOpen, false});
  rig.parent.open_quantity = 300;
  PolicyOutput cancel;
  view = rig.view(kOpen + 10 * kS);
  policy.decide(view, cancel);
  CHECK_EQ(cancel.cancel_count, 1u);
  CHECK_EQ(cancel.cancels[0], 42u);
  CHECK_EQ(cancel.child_count, 0u);
  CHECK_EQ(cancel.next_decision_ns, kOpen + 10 * kS + c.replace_delay_ns);
  CHECK_EQ(policy.outflow_observations(), 21u);  // the period's outflow was recorded
  rig.open.clear();
  rig.parent.open_quantity = 0;
  PolicyOutput replaced;
  view = rig.view(kOpen + 10 * kS + c.replace_delay_ns);
  policy.decide(view, replaced);
  CHECK(requested(replaced) > 0);
  CHECK(requested(replaced) <= 2'000 - rig.parent.filled);
}

TEST(cont_kukanov_outflow_from_book_depletion) {
  Rig rig;
  rig.add(0, Side::kBuy, 9'999, 300);  // order 1
  rig.add(0, Side::kBuy, 9'999, 200);  // order 2
  rig.add(0, Side::kSell, 10'001, 50'000);
  rig.add(1, Side::kSell, 10'001, 50'000);
  ContKukanovConfig c;
  c.decision_interval_ns = 10 * kS;
  ContKukanovPolicy policy(c);
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  PolicyOutput first;
  PolicyView view = rig.view(kOpen);
  policy.decide(view, first);  // no history: all market, snapshot Q0 = 500 at 9'999
  CHECK_EQ(requested(first, ChildOrderType::kPost), 0);
  CHECK_EQ(requested(first), 1'000);
  rig.execute(0, 1, 300);  // 300 of the queue traded away
  rig.parent.filled = 1'000;
  PolicyOutput second;
  view = rig.view(kOpen + 10 * kS);
  policy.decide(view, second);
  CHECK_EQ(policy.outflow_observations(), 1u);
  CHECK_EQ(policy.outflow_observation(0, 0), 300.0);
  CHECK_EQ(policy.outflow_observation(0, 1), 0.0);  // venue 1 had no bid
  // A passive fill of ours proves the whole queue ahead left: Q + fill.
  ChildFill fill{};
  fill.type = ChildOrderType::kPost;
  fill.venue_id = 0;
  fill.quantity = 100;
  policy.on_fill(fill);
  rig.parent.filled = 2'000;
  PolicyOutput third;
  view = rig.view(kOpen + 20 * kS);
  policy.decide(view, third);
  CHECK_EQ(policy.outflow_observations(), 2u);
  CHECK_EQ(policy.outflow_observation(1, 0), 200.0 + 100.0);
}

TEST(cont_kukanov_deterministic_with_seed) {
  auto run = [](std::uint64_t seed) {
    Rig rig;
    rig.add(0, Side::kBuy, 9'999, 200);
    rig.add(1, Side::kBuy, 9'999, 400);
    rig.deep_book();
    ContKukanovConfig c;
    c.seed = seed;
    c.sa_iterations = 500;
    ContKukanovPolicy policy(c);
    policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
    Random draw(99);
    for (int i = 0; i < 10; ++i) {
      const double row[4] = {draw.exponential(800.0), draw.exponential(800.0), 0.0, 0.0};
      policy.record_outflow(row);
    }
    PolicyOutput out;
    PolicyView view = rig.view(kOpen);
    policy.decide(view, out);
    std::vector<std::int64_t> result;
    for (std::size_t i = 0; i < out.child_count; ++i) {
      result.push_back(out.children[i].venue_id);
      result.push_back(static_cast<std::int64_t>(out.children[i].type));
      result.push_back(out.children[i].quantity);
    }
    return result;
  };
  CHECK(run(1) == run(1));
  CHECK(!run(1).empty());
}

// --- dark allocator -------------------------------------------------------------------------

TEST(kaplan_meier_by_hand) {
  // Exact liquidity 2 and 4; censored at 3, 4 and 5 (filled everything sent).
  CensoredTailEstimator e(10, 1);
  e.observe(5, 2);
  e.observe(3, 3);
  e.observe(6, 4);
  e.observe(4, 4);
  e.observe(5, 5);
  CHECK_EQ(e.observation_count(), 5u);
  // N(0..2) = 5, D(2) = 1; N(3) = 4; N(4) = 3, D(4) = 1; N(5) = 1.
  // T(s) = prod_{y < s} (1 - D(y) / N(y)): 1, 1, 1, 0.8, 0.8, 0.8 x 2/3, ...
  CHECK_NEAR(e.kaplan_meier_tail(0), 1.0, 1e-12);
  CHECK_NEAR(e.kaplan_meier_tail(2), 1.0, 1e-12);
  CHECK_NEAR(e.kaplan_meier_tail(3), 0.8, 1e-12);
  CHECK_NEAR(e.kaplan_meier_tail(4), 0.8, 1e-12);
  CHECK_NEAR(e.kaplan_meier_tail(5), 0.8 * 2.0 / 3.0, 1e-12);
  CHECK_NEAR(e.kaplan_meier_tail(9), 0.8 * 2.0 / 3.0, 1e-12);
  // Cut-off with 1 at risk: N(5) = 1 -> c = 6, tail = KM everywhere here.
  CHECK_EQ(e.cutoff_units(), 6);
  CHECK_NEAR(e.tail(5), 0.8 * 2.0 / 3.0, 1e-12);
  // Needing 4 at risk: N(3) = 4, N(4) = 3 -> c = 4, optimistic T(5) = T(4) = 0.8.
  CensoredTailEstimator optimistic(10, 4);
  optimistic.observe(5, 2);
  optimistic.observe(3, 3);
  optimistic.observe(6, 4);
  optimistic.observe(4, 4);
  optimistic.observe(5, 5);
  CHECK_EQ(optimistic.cutoff_units(), 4);
  CHECK_NEAR(optimistic.tail(3), 0.8, 1e-12);
  CHECK_NEAR(optimistic.tail(5), 0.8, 1e-12);
  CHECK_NEAR(optimistic.kaplan_meier_tail(5), 0.8 * 2.0 / 3.0, 1e-12);
  // No data: fully optimistic.
  CensoredTailEstimator empty(10, 1);
  CHECK_EQ(empty.tail(7), 1.0);
  // An observed zero (nothing filled) kills the tail at 1.
  empty.observe(3, 0);
  CHECK_EQ(empty.tail(1), 0.0);
  empty.clear();
  CHECK_EQ(empty.tail(1), 1.0);
}

TEST(kaplan_meier_matches_slow_reference) {
  // Random censored samples vs a direct product-limit computation over the observation list.
  Random draw(23);
  CensoredTailEstimator e(30, 1);
  std::vector<std::pair<std::int64_t, bool>> obs;  // value, exact
  for (int i = 0; i < 200; ++i) {
    const auto liquidity = static_cast<std::int64_t>(draw.below(25));
    const auto sent = static_cast<std::int64_t>(1 + draw.below(20));
    e.observe(sent, std::min(liquidity, sent));
    obs.push_back({std::min(liquidity, sent), liquidity < sent});
  }
  for (std::int64_t s = 0; s <= 30; ++s) {
    double tail = 1.0;
    for (std::int64_t y = 0; y < s; ++y) {
      double at_risk = 0.0, deaths = 0.0;
      for (const auto& [value, exact] : obs) {
        if (value >= y) at_risk += 1.0;
        if (exact && value == y) deaths += 1.0;
      }
      if (at_risk > 0.0) tail *= 1.0 - deaths / at_risk;
    }
    CHECK_NEAR(e.kaplan_meier_tail(s), tail, 1e-12);
  }
}

TEST(greedy_allocation_by_hand_and_brute_force) {
  // Venue A: liquidity {1, 2 x4, 3 x4, 4}: T = 1, 0.9, 0.5, 0.1, 0 at 1..5.
  // Venue B: liquidity {0 x2, 1, 2, 3 x6}: T = 0.8, 0.7, 0.6, 0 at 1..4.
  CensoredTailEstimator est[2] = {CensoredTailEstimator(20, 1), CensoredTailEstimator(20, 1)};
  for (std::int64_t v : {1, 2, 2, 2, 2, 3, 3, 3, 3, 4}) est[0].observe(10, v);
  for (std::int64_t v : {0, 0, 1, 2, 3, 3, 3, 3, 3, 3}) est[1].observe(10, v);
  CHECK_NEAR(est[0].tail(2), 0.9, 1e-12);
  CHECK_NEAR(est[0].tail(4), 0.1, 1e-12);
  CHECK_NEAR(est[1].tail(1), 0.8, 1e-12);
  CHECK_NEAR(est[1].tail(3), 0.6, 1e-12);
  // Marginals 1, 0.9 (A), 0.8, 0.7, 0.6 (B) are the five largest: A 2, B 3, E[fill] = 4.0.
  std::int64_t allocation[2];
  CHECK_EQ(allocate_greedy(est, 2, 5, allocation), 5);
  CHECK_EQ(allocation[0], 2);
  CHECK_EQ(allocation[1], 3);
  // Brute force over every split for several V.
  for (std::int64_t units = 0; units <= 12; ++units) {
    allocate_greedy(est, 2, units, allocation);
    auto expected_fill = [&](std::int64_t a, std::int64_t b) {
      double sum = 0.0;
      for (std::int64_t s = 1; s <= a; ++s) sum += est[0].tail(s);
      for (std::int64_t s = 1; s <= b; ++s) sum += est[1].tail(s);
      return sum;
    };
    double best = -1.0;
    for (std::int64_t a = 0; a <= units; ++a) best = std::max(best, expected_fill(a, units - a));
    CHECK_NEAR(expected_fill(allocation[0], allocation[1]), best, 1e-12);
    CHECK_EQ(allocation[0] + allocation[1], units);
  }
}

TEST(dark_allocator_moves_away_from_empty_venue) {
  Rig rig;
  rig.deep_book();
  rig.parent.quantity = 100'000;
  rig.parent.end_ns = kOpen + 1'000 * kS;  // 100 periods of 10 s
  DarkAllocatorConfig c;
  c.cutoff_min_observations = 2;
  DarkAllocatorPolicy policy(c);
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  CHECK_EQ(policy.dark_venue_count(), 2u);
  // Venue 2 is always empty; venue 3 always has 30 lots at the mid.
  std::int64_t to_venue2_first = 0, to_venue2_last = 0, to_venue3_last = 0;
  std::uint64_t child_id = 0;
  for (int k = 0; k < 10; ++k) {
    PolicyOutput out;
    PolicyView view = rig.view(kOpen + k * 10 * kS);
    policy.decide(view, out);
    CHECK(requested(out) <= sendable_quantity(rig.parent));
    CHECK_EQ(out.cancel_count, 0u);
    std::int64_t venue2 = 0, venue3 = 0;
    for (std::size_t i = 0; i < out.child_count; ++i) {
      const ChildRequest& child = out.children[i];
      if (child.type == ChildOrderType::kTake) {
        CHECK(child.venue_id < 2);  // lit
        rig.parent.filled += child.quantity;
        continue;
      }
      CHECK(child.type == ChildOrderType::kMidpoint);
      CHECK_EQ(child.price_ticks, 0);
      const std::int64_t fill = child.venue_id == 2 ? 0 : std::min<std::int64_t>(child.quantity, 3'000);
      (child.venue_id == 2 ? venue2 : venue3) += child.quantity;
      rig.parent.filled += fill;
      // Cancelled at the period's end: the outcome is the observation.
      policy.on_child_done(++child_id, child.venue_id, child.type, child.quantity, fill);
    }
    if (k == 0) to_venue2_first = venue2;
    if (k == 9) {
      to_venue2_last = venue2;
      to_venue3_last = venue3;
    }
  }
  CHECK(to_venue2_first > 0);  // explored at first (optimism)
  CHECK(to_venue3_last >= 3'000);  // everything venue 3 can fill goes there
  CHECK(to_venue2_last < to_venue2_first);
  CHECK_EQ(policy.estimator(2)->tail(1), 0.0);
  CHECK_EQ(policy.estimator(3)->tail(30), 1.0);
  CHECK_EQ(policy.estimator(3)->tail(31), 0.0);
  // A new parent keeps what was learned.
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  CHECK_EQ(policy.estimator(2)->tail(1), 0.0);
}

TEST(dark_allocator_schedule_and_cancels) {
  Rig rig;
  rig.deep_book();
  DarkAllocatorConfig c;
  c.decision_interval_ns = 25 * kS;  // 4 periods
  DarkAllocatorPolicy policy(c);
  policy.reset(rig.parent, rig.venues.data(), rig.venues.size());
  PolicyOutput out;
  PolicyView view = rig.view(kOpen);
  policy.decide(view, out);
  // Period 0: the TWAP slice lit (2'500), the other 7'500 dark, split evenly under optimism.
  CHECK_EQ(requested(out, ChildOrderType::kTake), 2'500);
  CHECK_EQ(requested(out, ChildOrderType::kMidpoint), 7'500);
  CHECK_EQ(requested(out), 10'000);
  // Period 1 with the pegs still open: cancel them first.
  rig.parent.filled = 2'500;
  rig.parent.open_quantity = 7'500;
  rig.open.push_back(OpenChild{7, 2, ChildOrderType::kMidpoint, 0, 3'800, 3'800, kOpen, false});
  rig.open.push_back(OpenChild{8, 3, ChildOrderType::kMidpoint, 0, 3'700, 3'700, kOpen, true});
  PolicyOutput cancel;
  view = rig.view(kOpen + 25 * kS);
  policy.decide(view, cancel);
  CHECK_EQ(cancel.cancel_count, 1u);  // the other one already has a cancel on its way
  CHECK_EQ(cancel.cancels[0], 7u);
  CHECK_EQ(cancel.child_count, 0u);
  // The last period goes lit only.
  rig.open.clear();
  rig.parent.open_quantity = 0;
  rig.parent.filled = 6'000;
  PolicyOutput last;
  view = rig.view(kOpen + 80 * kS);
  policy.decide(view, last);
  CHECK_EQ(requested(last, ChildOrderType::kMidpoint), 0);
  CHECK_EQ(requested(last, ChildOrderType::kTake), 4'000);
}

// --- every policy -------------------------------------------------------------------------

TEST(decide_never_exceeds_sendable) {
  std::vector<std::unique_ptr<ExecutionPolicy>> policies;
  VwapConfig vwap;
  vwap.session_length_ns = 0;
  policies.push_back(std::make_unique<VwapPolicy>(vwap));
  policies.push_back(std::make_unique<AlmgrenChrissPolicy>(AlmgrenChrissConfig{}));
  ContKukanovConfig ck;
  ck.sa_iterations = 200;
  policies.push_back(std::make_unique<ContKukanovPolicy>(ck));
  policies.push_back(std::make_unique<DarkAllocatorPolicy>(DarkAllocatorConfig{}));
  Random draw(5);
  for (auto& policy : policies) {
    for (int trial = 0; trial < 200; ++trial) {
      Rig rig;
      rig.add(0, Side::kBuy, 9'999, 1'000);
      rig.add(1, Side::kBuy, 9'998, 1'000);
      rig.deep_book();
      rig.parent.quantity = 100 * static_cast<std::int64_t>(1 + draw.below(200)) +
                            static_cast<std::int64_t>(draw.below(3)) * 37;
      rig.parent.side = draw.below(2) ? Side::kBuy : Side::kSell;
      rig.parent.filled = static_cast<std::int64_t>(draw.below(
          static_cast<std::uint64_t>(rig.parent.quantity) + 1));
      rig.parent.open_quantity = static_cast<std::int64_t>(draw.below(
          static_cast<std::uint64_t>(rig.parent.quantity - rig.parent.filled) + 1));
      policy->reset(rig.parent, rig.venues.data(), rig.venues.size());
      if (auto* c = dynamic_cast<ContKukanovPolicy*>(policy.get())) {
        for (int i = 0; i < 5; ++i) {
          const double row[4] = {draw.exponential(2'000.0), draw.exponential(2'000.0), 0, 0};
          c->record_outflow(row);
        }
      }
      const std::int64_t now =
          rig.parent.start_ns + static_cast<std::int64_t>(draw.below(120)) * kS;
      PolicyOutput out;
      PolicyView view = rig.view(now);
      policy->decide(view, out);
      CHECK(requested(out) <= sendable_quantity(rig.parent));
      for (std::size_t i = 0; i < out.child_count; ++i) CHECK(out.children[i].quantity > 0);
    }
  }
}

TEST(policies_finish_the_parent_when_takes_fill) {
  {
    Rig rig;
    rig.deep_book();
    VwapConfig c;
    c.session_length_ns = 0;
    VwapPolicy p(c);
    CHECK_EQ(run_takes_fill(p, rig, rig.parent.end_ns), 10'000);
  }
  {
    Rig rig;
    rig.deep_book();
    rig.parent.quantity = 10'037;  // an odd lot at the end
    AlmgrenChrissPolicy p{AlmgrenChrissConfig{}};
    CHECK_EQ(run_takes_fill(p, rig, rig.parent.end_ns), 10'037);
  }
}

TEST(validate_names_the_bad_field) {
  VwapConfig v;
  CHECK(std::string(VwapPolicy::validate(v)).empty());
  v.decision_interval_ns = 0;
  CHECK(starts_with(VwapPolicy::validate(v), "decision_interval_ns"));
  v = VwapConfig{};
  v.volume_profile_bins = {1.0, -1.0};
  CHECK(starts_with(VwapPolicy::validate(v), "volume_profile_bins"));
  v = VwapConfig{};
  v.max_participation = 1.5;
  CHECK(starts_with(VwapPolicy::validate(v), "max_participation"));
  v = VwapConfig{};
  v.u_shape_amplitude = -1.0;
  CHECK(starts_with(VwapPolicy::validate(v), "u_shape_amplitude"));
  v = VwapConfig{};
  v.session_length_ns = -1;
  CHECK(starts_with(VwapPolicy::validate(v), "session_length_ns"));
  bool threw = false;
  try {
    VwapConfig negative;
    negative.decision_interval_ns = -5;
    VwapPolicy bad(negative);
  } catch (const std::invalid_argument& e) {
    threw = starts_with(e.what(), "decision_interval_ns");
  }
  CHECK(threw);

  AlmgrenChrissConfig a;
  CHECK(std::string(AlmgrenChrissPolicy::validate(a)).empty());
  a.risk_aversion_per_tick_share = -1.0;
  CHECK(starts_with(AlmgrenChrissPolicy::validate(a), "risk_aversion_per_tick_share"));
  a = AlmgrenChrissConfig{};
  a.temporary_impact_ticks_per_share_per_second = 0.0;
  CHECK(starts_with(AlmgrenChrissPolicy::validate(a),
                    "temporary_impact_ticks_per_share_per_second"));
  a = AlmgrenChrissConfig{};
  a.volatility_bps_per_sqrt_second = std::nan("");
  CHECK(starts_with(AlmgrenChrissPolicy::validate(a), "volatility_bps_per_sqrt_second"));
  a = AlmgrenChrissConfig{};
  a.permanent_impact_ticks_per_share = 1.0;  // eta - gamma tau / 2 = 0.01 - 2.5 < 0
  CHECK(starts_with(AlmgrenChrissPolicy::validate(a), "permanent_impact_ticks_per_share"));

  ContKukanovConfig k;
  CHECK(std::string(ContKukanovPolicy::validate(k)).empty());
  k.underfill_penalty_usd_per_share = 0.0;
  CHECK(starts_with(ContKukanovPolicy::validate(k), "underfill_penalty_usd_per_share"));
  k = ContKukanovConfig{};
  k.overfill_penalty_usd_per_share = -0.1;
  CHECK(starts_with(ContKukanovPolicy::validate(k), "overfill_penalty_usd_per_share"));
  k = ContKukanovConfig{};
  k.price_tick_usd = 0.0;
  CHECK(starts_with(ContKukanovPolicy::validate(k), "price_tick_usd"));
  k = ContKukanovConfig{};
  k.sa_iterations = 1;
  CHECK(starts_with(ContKukanovPolicy::validate(k), "sa_iterations"));
  k = ContKukanovConfig{};
  k.min_outflow_samples = 100;
  CHECK(starts_with(ContKukanovPolicy::validate(k), "min_outflow_samples"));
  k = ContKukanovConfig{};
  k.outflow_history_periods = 0;
  CHECK(starts_with(ContKukanovPolicy::validate(k), "outflow_history_periods"));

  DarkAllocatorConfig d;
  CHECK(std::string(DarkAllocatorPolicy::validate(d)).empty());
  d.max_lots_per_venue = 0;
  CHECK(starts_with(DarkAllocatorPolicy::validate(d), "max_lots_per_venue"));
  d = DarkAllocatorConfig{};
  d.cutoff_min_observations = 0;
  CHECK(starts_with(DarkAllocatorPolicy::validate(d), "cutoff_min_observations"));
  d = DarkAllocatorConfig{};
  d.replace_delay_ns = 0;
  CHECK(starts_with(DarkAllocatorPolicy::validate(d), "replace_delay_ns"));
}

TEST(names) {
  CHECK(std::string(VwapPolicy().name()) == "vwap");
  CHECK(std::string(AlmgrenChrissPolicy().name()) == "almgren_chriss");
  CHECK(std::string(ContKukanovPolicy().name()) == "cont_kukanov");
  CHECK(std::string(DarkAllocatorPolicy().name()) == "dark_allocator");
}
