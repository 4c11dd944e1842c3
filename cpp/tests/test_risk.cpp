#define SOR_TEST_MAIN
#include "check.hpp"

#include <cmath>
#include <limits>

#include "sor/policy.hpp"
#include "sor/risk.hpp"
#include "sor/tree_model.hpp"

using namespace sor;

namespace {

EngineParams params() {
  EngineParams p = default_engine_params();
  p.enabled_venue_mask = 0b1111;
  return p;
}

ChildRiskInput child() {
  ChildRiskInput c;
  c.price_ticks = 1'000'100;
  c.quantity = 100;
  c.bid_price_ticks = 1'000'000;
  c.ask_price_ticks = 1'000'100;
  c.order_tokens = 10;
  c.message_tokens = 10;
  return c;
}

// A regressor on kFeatureCount features whose single leaf is `weight`, `trees` times over.
std::shared_ptr<const TreeEnsemble> constant_model(float weight, int trees) {
  TreeEnsembleSpec spec;
  spec.feature_count = static_cast<std::int64_t>(kFeatureCount);
  for (int t = 0; t < trees; ++t) {
    spec.nodes_treeids.push_back(t);
    spec.nodes_nodeids.push_back(0);
    spec.nodes_featureids.push_back(0);
    spec.nodes_modes.push_back(TreeNodeMode::kLeaf);
    spec.nodes_values.push_back(0.0f);
    spec.nodes_truenodeids.push_back(0);
    spec.nodes_falsenodeids.push_back(0);
    spec.leaf_treeids.push_back(t);
    spec.leaf_nodeids.push_back(0);
    spec.leaf_weights.push_back(weight);
  }
  TreeEnsembleBuild built = TreeEnsemble::build(spec);
  CHECK(built.ensemble != nullptr);
  return built.ensemble;
}

}  // namespace

TEST(an_ordinary_child_passes_and_each_limit_refuses_with_its_values) {
  const EngineParams base = params();
  CHECK(check_child(child(), base).reason == RejectReason::kNone);

  EngineParams p = base;
  p.max_order_quantity_shares = 99;
  RiskVerdict v = check_child(child(), p);
  CHECK(v.reason == RejectReason::kMaxOrderQuantity);
  CHECK_EQ(v.measured, 100);
  CHECK_EQ(v.limit, 99);

  p = base;
  p.max_order_notional_usd = 10'000.0;  // 100 x 100.01 USD = 10,001 USD
  v = check_child(child(), p);
  CHECK(v.reason == RejectReason::kMaxOrderNotional);
  CHECK_EQ(v.measured, 1'000'100);
  CHECK_EQ(v.limit, 1'000'000);

  p = base;
  p.price_band_bps = 0.4;  // 100.01 is 0.49998 bps from the 100.005 mid
  v = check_child(child(), p);
  CHECK(v.reason == RejectReason::kPriceBand);
  CHECK_EQ(v.measured, 50);
  CHECK_EQ(v.limit, 40);

  p = base;
  p.reference_collar_bps = 0.5;
  ChildRiskInput c = child();
  c.reference_price_ticks = 1'000'000;
  v = check_child(c, p);
  CHECK(v.reason == RejectReason::kReferenceCollar);
  CHECK_EQ(v.measured, 100);
  CHECK_EQ(v.limit, 50);
  c.side = Side::kSell;  // selling above the reference is passive: no collar
  CHECK(check_child(c, p).reason == RejectReason::kNone);

  p = base;
  p.max_participation_rate = 0.1;
  p.participation_allowance_shares = 20;
  c = child();
  c.market_volume_shares = 500;
  v = check_child(c, p);
  CHECK(v.reason == RejectReason::kParticipation);
  CHECK_EQ(v.measured, 100);
  CHECK_EQ(v.limit, 70);
  c.market_volume_shares = 800;
  CHECK(check_child(c, p).reason == RejectReason::kNone);

  p = base;
  p.account_credit_limit_usd[0] = 15'000.0;
  c = child();
  c.account_filled_notional_usd = 3'000.0;
  c.account_open_notional_usd = 2'000.0;
  v = check_child(c, p);
  CHECK(v.reason == RejectReason::kCreditLimit);
  CHECK_EQ(v.measured, 1'500'100);
  CHECK_EQ(v.limit, 1'500'000);
  CHECK(reason_stops_parent(v.reason));

  p = base;
  p.account_max_position_shares[0] = 250;
  c = child();
  c.position_shares = 100;
  c.open_same_side_shares = 60;
  v = check_child(c, p);
  CHECK(v.reason == RejectReason::kPositionLimit);
  CHECK_EQ(v.measured, 260);
  CHECK_EQ(v.limit, 250);

  c = child();
  c.message_tokens = -2.5;  // cancels consumed more than the bucket held
  p = base;
  p.max_messages_per_second = 10;
  v = check_child(c, p);
  CHECK(v.reason == RejectReason::kMessageRate);
  CHECK_EQ(v.measured, 14);
  CHECK_EQ(v.limit, 10);
}

TEST(risk_states_restricted_accounts_and_instruments) {
  EngineParams p = params();
  ChildRiskInput c = child();
  c.risk_state = RiskState::kHalted;
  CHECK(check_child(c, p).reason == RejectReason::kHalted);

  c = child();
  c.risk_state = RiskState::kReducing;
  CHECK(check_child(c, p).reason == RejectReason::kReducing);  // flat: nothing reduces
  c.position_shares = -150;
  CHECK(check_child(c, p).reason == RejectReason::kNone);      // buying back a short
  c.open_same_side_shares = 100;
  const RiskVerdict v = check_child(c, p);
  CHECK(v.reason == RejectReason::kReducing);
  CHECK_EQ(v.measured, 200);
  CHECK_EQ(v.limit, 150);

  c = child();
  c.instrument_id = 4096;
  CHECK(check_child(c, p).reason == RejectReason::kInvalidInstrument);
  c = child();
  c.instrument_id = 70;
  p.restricted_instruments[1] = std::uint64_t{1} << 6;
  CHECK(instrument_restricted(p, 70) && !instrument_restricted(p, 69));
  CHECK(check_child(c, p).reason == RejectReason::kRestricted);
  c = child();
  c.account_id = 2;
  CHECK(check_child(c, p).reason == RejectReason::kUnknownAccount);
  p.account_enabled_mask |= 0b100;
  CHECK(check_child(c, p).reason == RejectReason::kNone);
  c.venue_id = 9;
  CHECK(check_child(c, p).reason == RejectReason::kVenueDisabled);
  c = child();
  c.model_refused = true;
  CHECK(check_child(c, p).reason == RejectReason::kModelGuard);
}

TEST(parent_entry_checks_in_order) {
  EngineParams p = params();
  ParentRiskInput in;
  in.quantity = 200;
  in.limit_price_ticks = 1'000'100;
  in.notional_usd = 20'002.0;
  CHECK(check_parent(in, p).reason == RejectReason::kNone);
  in.duplicate_client_order = true;
  CHECK(check_parent(in, p).reason == RejectReason::kDuplicateClientOrderId);
  in.duplicate_parent = true;
  CHECK(check_parent(in, p).reason == RejectReason::kDuplicateParent);
  in.duplicate_parent = in.duplicate_client_order = false;
  p.max_parent_notional_usd = 10'000.0;
  RiskVerdict v = check_parent(in, p);
  CHECK(v.reason == RejectReason::kMaxParentNotional);
  CHECK_EQ(v.measured, 2'000'200);
  CHECK_EQ(v.limit, 1'000'000);
  p = params();
  p.reference_collar_bps = 100.0;
  in.reference_price_ticks = 980'000;  // the buy limit is 2.05% above it
  v = check_parent(in, p);
  CHECK(v.reason == RejectReason::kReferenceCollar);
  CHECK_EQ(v.measured, 20'510);
  CHECK_EQ(v.limit, 10'000);
  in.reference_price_ticks = 0;
  in.risk_state = RiskState::kReducing;
  in.position_shares = -150;
  v = check_parent(in, p);
  CHECK(v.reason == RejectReason::kReducing);
  CHECK_EQ(v.measured, 200);
  CHECK_EQ(v.limit, 150);
  in.risk_state = RiskState::kActive;
  in.client_orders_full = true;
  in.client_orders_count = 14;
  in.client_orders_limit = 14;
  v = check_parent(in, p);
  CHECK(v.reason == RejectReason::kCapacity);
  CHECK_EQ(v.measured, 14);
  in.account_id = 64;
  CHECK(check_parent(in, p).reason == RejectReason::kUnknownAccount);
  in.instrument_id = 5000;
  CHECK(check_parent(in, p).reason == RejectReason::kInvalidInstrument);
}

TEST(cents_and_hundredths_round_half_away_from_zero) {
  CHECK_EQ(usd_cents(0.125), 13);
  CHECK_EQ(usd_cents(-0.125), -13);
  CHECK_EQ(usd_cents(std::numeric_limits<double>::infinity()),
           std::numeric_limits<std::int64_t>::max());
  CHECK_EQ(bps_hundredths(1.005), 100);  // 1.005 is 1.00499999... as a double
}

TEST(the_guard_checks_rows_and_outputs_through_policy_models) {
  ModelGuard guard;
  guard.output_min[0] = 0.0;
  guard.output_max[0] = 1.0;
  PolicyModels models;
  models.guard = &guard;
  float row[kFeatureCount] = {};
  CHECK(std::isnan(models.predict(ModelSlot::kFillProbability, row)));  // empty slot
  CHECK(!guard.tripped());

  const auto half = constant_model(0.5f, 1);
  models.fill_probability = half.get();
  CHECK_EQ(models.predict(ModelSlot::kFillProbability, row), 0.5f);
  CHECK(!guard.tripped());

  const auto five = constant_model(5.0f, 1);
  models.fill_probability = five.get();
  CHECK_EQ(models.predict(ModelSlot::kFillProbability, row), 5.0f);
  CHECK(guard.reason == ModelGuardReason::kOutputOutOfRange);
  CHECK(guard.slot == ModelSlot::kFillProbability);

  guard.clear();
  const auto huge = constant_model(3.0e38f, 2);  // the sum overflows to +inf
  models.adverse_move = huge.get();
  CHECK(!std::isfinite(models.predict(ModelSlot::kAdverseMove, row)));
  CHECK(guard.reason == ModelGuardReason::kNonFiniteOutput);
  CHECK(guard.slot == ModelSlot::kAdverseMove);
  models.predict(ModelSlot::kFillProbability, row);  // the first trip is kept
  CHECK(guard.reason == ModelGuardReason::kNonFiniteOutput);

  guard.clear();
  models.fill_probability = half.get();
  row[7] = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(models.predict(ModelSlot::kFillProbability, row)));
  CHECK(guard.reason == ModelGuardReason::kNonFiniteInput);

  // without a guard nothing is checked (the backtester's default)
  models.guard = nullptr;
  guard.clear();
  models.fill_probability = five.get();
  row[7] = 0.0f;
  CHECK_EQ(models.predict(ModelSlot::kFillProbability, row), 5.0f);
  CHECK(!guard.tripped());
}
