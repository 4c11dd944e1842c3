#define SOR_TEST_MAIN
#include "check.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "sor/backtest.hpp"
#include "sor/consolidated.hpp"
#include "sor/features.hpp"
#include "sor/policies.hpp"

using namespace sor;

namespace {

constexpr std::int64_t kS = 1'000'000'000;
constexpr std::int64_t kT0 = 1'700'000'000 * kS;

// Three venues: two lit (venue 1 has the lower taker fee, venue 0 the better rank), one dark.
FeatureOptions options() {
  FeatureOptions o;
  o.venues.push_back({0, true, BookType::kL3, -0.002, 0.003, 0.001, 100'000});
  o.venues.push_back({1, true, BookType::kL3, -0.001, 0.001, 0.001, 200'000});
  o.venues.push_back({2, false, BookType::kL3, 0.001, 0.001, 0.001, 300'000});
  o.price_tick_usd = 0.01;
  return o;
}

std::vector<PolicyVenue> venues(double fee0 = 0.003, double fee1 = 0.001) {
  return {PolicyVenue{0, true, 1, -0.002, fee0, 0.001, 100'000, 0},
          PolicyVenue{1, true, 1, -0.001, fee1, 0.001, 200'000, 1},
          PolicyVenue{2, false, 1, 0.001, 0.001, 0.001, 300'000, 2}};
}

// A hand-built book: asks v0 100@1000 300@1001 500@1003, v1 200@1000 400@1002;
// bids v0 500@999, v1 500@999 and 700@998; a dark venue with no book.
struct Rig {
  Rig() : book(book_venues(options())), engine(options()) {
    add(0, Side::kSell, 1000, 100);
    add(0, Side::kSell, 1001, 300);
    add(0, Side::kSell, 1003, 500);
    add(1, Side::kSell, 1000, 200);
    add(1, Side::kSell, 1002, 400);
    add(0, Side::kBuy, 999, 500);
    add(1, Side::kBuy, 999, 500);
    add(1, Side::kBuy, 998, 700);
  }
  void add(std::uint8_t venue, Side side, std::int64_t price, std::int64_t qty) {
    MdEvent e{};
    e.kind = EventKind::kAdd;
    e.venue_id = venue;
    e.side = side;
    e.price_ticks = price;
    e.quantity = qty;
    e.order_id = ++next_id;
    e.ts_recv = e.ts_event = kT0;
    CHECK(book.apply(e) == Status::kOk);
    engine.on_event(e, book);
  }
  PolicyView view(std::int64_t now = kT0) {
    PolicyView v{};
    v.now_ns = now;
    v.book = &book;
    v.features = &engine;
    v.parent = &parent;
    v.venues = policy_venues.data();
    v.venue_count = policy_venues.size();
    return v;
  }
  ConsolidatedBook book;
  FeatureEngine engine;
  std::uint64_t next_id = 0;
  ParentState parent{1, 0, Side::kBuy, 1000, 0, 0, 0, kT0, kT0 + 300 * kS, 999.5, 1e6, 100};
  std::vector<PolicyVenue> policy_venues = venues();
};

void check_child(const PolicyOutput& out, std::size_t n, std::uint8_t venue, std::int64_t price,
                 std::int64_t quantity) {
  CHECK(n < out.child_count);
  if (n >= out.child_count) return;
  CHECK_EQ(out.children[n].venue_id, venue);
  CHECK(out.children[n].type == ChildOrderType::kTake);
  CHECK_EQ(out.children[n].price_ticks, price);
  CHECK_EQ(out.children[n].quantity, quantity);
}

std::unique_ptr<ExecutionPolicy> make(const std::string& name, const PolicyParams& params = {}) {
  std::string error;
  auto policy = make_policy(name, params, error);
  CHECK(policy != nullptr);
  CHECK(error.empty());
  return policy;
}

}  // namespace

TEST(best_price_sweeps_by_price_then_fee_then_rank) {
  // Offers: 1000 v1 (fee 0.001) 200, 1000 v0 100, 1001 v0 300, 1002 v1 400 -> 1000 shares:
  // v1 600 up to 1002 (its first offer is the best), then v0 400 up to 1001.
  Rig rig;
  auto policy = make("best_price");
  policy->reset(rig.parent, rig.policy_venues.data(), rig.policy_venues.size());
  PolicyOutput out;
  policy->decide(rig.view(), out);
  CHECK_EQ(out.child_count, 2u);
  check_child(out, 0, 1, 1002, 600);
  check_child(out, 1, 0, 1001, 400);
  CHECK_EQ(out.cancel_count, 0u);
}

TEST(best_price_breaks_fee_ties_by_static_rank) {
  Rig rig;
  rig.policy_venues = venues(0.002, 0.002);
  rig.parent.quantity = 250;
  auto policy = make("best_price");
  PolicyOutput out;
  policy->decide(rig.view(), out);
  // Same price and fee at 1000: v0 (rank 0) first for 100, then v1 for 150.
  CHECK_EQ(out.child_count, 2u);
  check_child(out, 0, 0, 1000, 100);
  check_child(out, 1, 1, 1000, 150);
}

TEST(best_price_respects_limit_free_quantity_and_depth) {
  Rig rig;
  rig.parent.limit_price_ticks = 1001;
  auto policy = make("best_price");
  PolicyOutput out;
  policy->decide(rig.view(), out);
  CHECK_EQ(out.child_count, 2u);
  check_child(out, 0, 1, 1000, 200);
  check_child(out, 1, 0, 1001, 400);

  Rig rig2;
  rig2.parent.filled = 200;
  rig2.parent.open_quantity = 300;  // 500 free
  PolicyOutput out2;
  policy->decide(rig2.view(), out2);
  CHECK_EQ(out2.child_count, 2u);
  check_child(out2, 0, 1, 1000, 200);
  check_child(out2, 1, 0, 1001, 300);

  Rig rig3;
  auto shallow = make("best_price", {{"depth_levels", 1}});
  PolicyOutput out3;
  shallow->decide(rig3.view(), out3);  // only the touch of each venue: 200 + 100
  CHECK_EQ(out3.child_count, 2u);
  check_child(out3, 0, 1, 1000, 200);
  check_child(out3, 1, 0, 1000, 100);

  Rig rig4;
  rig4.parent.open_quantity = 1000;  // nothing free
  PolicyOutput out4;
  policy->decide(rig4.view(), out4);
  CHECK_EQ(out4.child_count, 0u);
}

TEST(best_price_sell_takes_the_bids) {
  Rig rig;
  rig.parent.side = Side::kSell;
  rig.parent.quantity = 1200;
  auto policy = make("best_price");
  PolicyOutput out;
  policy->decide(rig.view(), out);
  // 999: v1 500 (lower fee), v0 500; then 998: v1 200 -> v1 700 down to 998, v0 500 at 999.
  CHECK_EQ(out.child_count, 2u);
  check_child(out, 0, 1, 998, 700);
  check_child(out, 1, 0, 999, 500);
}

TEST(twap_sends_equal_slices_and_rolls_leftovers) {
  Rig rig;
  auto policy = make("twap", {{"slices", 3}});
  policy->reset(rig.parent, rig.policy_venues.data(), rig.policy_venues.size());
  auto* twap = dynamic_cast<TwapPolicy*>(policy.get());
  CHECK(twap != nullptr);
  CHECK_EQ(twap->slice_time_ns(1), kT0 + 100 * kS);
  CHECK_EQ(twap->slice_target(0), 300);
  CHECK_EQ(twap->slice_target(1), 600);
  CHECK_EQ(twap->slice_target(2), 1000);

  PolicyOutput out;
  policy->decide(rig.view(kT0), out);  // slice 0: 300 = v1 200 + v0 100 at 1000
  CHECK_EQ(out.child_count, 2u);
  check_child(out, 0, 1, 1000, 200);
  check_child(out, 1, 0, 1000, 100);
  CHECK_EQ(out.next_decision_ns, kT0 + 100 * kS);

  PolicyOutput idle;
  policy->decide(rig.view(kT0 + kS), idle);  // between slices: nothing, wake at slice 1
  CHECK_EQ(idle.child_count, 0u);
  CHECK_EQ(idle.next_decision_ns, kT0 + 100 * kS);

  rig.parent.filled = 100;  // slice 0 left 200: slice 1 wants 600 - 100 = 500
  PolicyOutput out1;
  policy->decide(rig.view(kT0 + 100 * kS), out1);
  CHECK_EQ(out1.child_count, 2u);
  check_child(out1, 0, 1, 1000, 200);
  check_child(out1, 1, 0, 1001, 300);
  CHECK_EQ(out1.next_decision_ns, kT0 + 200 * kS);

  rig.parent.filled = 600;
  PolicyOutput out2;
  policy->decide(rig.view(kT0 + 250 * kS), out2);  // last slice: everything left
  CHECK_EQ(out2.next_decision_ns, 0);
  std::int64_t total = 0;
  for (std::size_t n = 0; n < out2.child_count; ++n) total += out2.children[n].quantity;
  CHECK_EQ(total, 400);
}

TEST(factory_rejects_unknown_names_and_parameters) {
  std::string error;
  CHECK(make_policy("nope", {}, error) == nullptr);
  CHECK(error.find("unknown policy 'nope'") != std::string::npos);
  CHECK(error.find("best_price") != std::string::npos);
  CHECK(make_policy("twap", {{"slice", 3}}, error) == nullptr);
  CHECK(error.rfind("slice: unknown parameter", 0) == 0);
  CHECK(make_policy("twap", {{"slices", 0}}, error) == nullptr);
  CHECK(error.rfind("slices: must be an integer", 0) == 0);
  CHECK(make_policy("twap", {{"slices", 2.5}}, error) == nullptr);
  CHECK(error.rfind("slices:", 0) == 0);
  CHECK(make_policy("best_price", {{"depth_levels", 1000}}, error) == nullptr);
  CHECK(error.rfind("depth_levels:", 0) == 0);
  auto twap = make_policy("twap", {{"slices", 7}}, error);
  CHECK(twap != nullptr && error.empty());
  CHECK(std::strcmp(twap->name(), "twap") == 0);
  const std::vector<std::string> names = policy_names();
  CHECK_EQ(names.size(), 8u);
  for (const std::string& name : names) {  // every registered policy builds with defaults
    auto made = make_policy(name, {}, error);
    CHECK(made != nullptr && error.empty());
    CHECK(made != nullptr && name == made->name());
  }
}

namespace {

sim::MarketSpec small_market(std::uint64_t seed) {
  sim::MarketSpec m;
  m.seed = seed;
  m.initial_price_ticks = 10'000;
  m.venues.resize(2);
  m.venues[0].venue_id = 0;
  m.venues[0].name = "A";
  m.venues[1].venue_id = 1;
  m.venues[1].name = "B";
  m.venues[1].taker_fee_usd_per_share = 0.001;
  m.venues[0].tick_size_ticks = 2;
  m.venues[1].tick_size_ticks = 2;
  return m;
}

}  // namespace

TEST(backtest_is_deterministic_and_never_overfills) {
  BacktestSpec spec;
  spec.market = small_market(7);
  spec.start_offset_ns = 60 * kS;
  spec.horizon_ns = 20 * kS;
  spec.markout_tail_ns = 5 * kS;
  spec.quantity = 3'000;
  auto policy = make("twap", {{"slices", 4}});
  const BacktestResult a = run_backtest(spec, *policy, PolicyModels{});
  const BacktestResult b = run_backtest(spec, *policy, PolicyModels{});
  CHECK_EQ(a.fills.size(), b.fills.size());
  CHECK(a.fills.size() == b.fills.size() &&
        std::memcmp(a.fills.data(), b.fills.data(), a.fills.size() * sizeof(BacktestFill)) == 0);
  std::int64_t filled = 0;
  for (const BacktestFill& f : a.fills) filled += f.quantity;
  CHECK_EQ(filled, a.filled);
  CHECK(a.filled <= spec.quantity);
  CHECK_EQ(a.filled, spec.quantity);  // the sweep finishes the parent
  CHECK_EQ(a.counters.book_errors, 0u);
  CHECK(a.start_ns >= spec.market.session_start_ns + spec.start_offset_ns);
  CHECK(!a.mids.empty());
  CHECK_EQ(a.mids[1].ts_ns - a.mids[0].ts_ns, spec.mid_sample_interval_ns);
}

TEST(backtest_validate_names_the_problem) {
  BacktestSpec spec;
  spec.market = small_market(1);
  CHECK(validate(spec).empty());
  spec.quantity = 0;
  CHECK(validate(spec).rfind("quantity:", 0) == 0);
  spec.quantity = 100;
  spec.horizon_ns = spec.market.session_length_ns;
  CHECK(validate(spec).rfind("horizon_ns:", 0) == 0);
  spec.horizon_ns = kS;
  spec.venues = {PolicyVenue{9, true, 1, 0, 0, 0, 0, 0}};
  CHECK(validate(spec).rfind("venues[0]:", 0) == 0);
}
