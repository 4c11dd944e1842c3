// Execution policies: what decides, at each decision time of one parent order, which child
// orders to send (venue, order type, price, size) and which to cancel. Classical baselines,
// the ML router and the learned (RL) policy all implement ExecutionPolicy; the backtester
// (backtest.hpp) and the engine run them the same way. A policy is prepared once (reset) and
// then called with a read-only view; decide() never allocates, throws or locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "sor/consolidated.hpp"
#include "sor/decision.hpp"
#include "sor/features.hpp"
#include "sor/tree_model.hpp"
#include "sor/types.hpp"

namespace sor {

// Most child requests or cancels one decide() call can return.
inline constexpr std::size_t kMaxPolicyRequests = 64;
// Most venues a policy sees.
inline constexpr std::size_t kMaxPolicyVenues = 16;

// What a policy knows of one venue (fees in USD per share, negative is a rebate).
struct PolicyVenue {
  std::uint8_t venue_id;             // Venue id.
  bool lit;                          // Lit (displayed book) or dark pool.
  std::int64_t tick_size_ticks;      // Price grid of the venue, in price ticks.
  double maker_fee_usd_per_share;    // Fee for resting liquidity that executes.
  double taker_fee_usd_per_share;    // Fee for taking liquidity.
  double midpoint_fee_usd_per_share; // Fee for a midpoint execution.
  std::int64_t latency_ns;           // Order entry plus acknowledgement latency.
  std::uint32_t static_rank;         // Tie-break rank of the best-price rule (lower first).
};

// The parent order being worked.
struct ParentState {
  std::uint64_t parent_order_id;     // Parent id.
  std::uint32_t instrument_id;       // Instrument.
  Side side;                         // Buy or sell.
  std::int64_t quantity;             // Parent shares.
  std::int64_t filled;               // Shares filled so far.
  std::int64_t open_quantity;        // Shares in open children (resting or in flight).
  std::int64_t limit_price_ticks;    // Parent limit (0: none).
  std::int64_t start_ns;             // Arrival (decision clock, MdEvent::ts_recv).
  std::int64_t end_ns;               // Deadline (> start_ns).
  double arrival_mid_ticks;          // NBBO mid at arrival.
  double adv_shares;                 // Average daily volume of the instrument.
  std::int64_t lot_shares;           // Round lot.
};

// One open child order of the parent.
struct OpenChild {
  std::uint64_t child_id;            // Id given by the runner.
  std::uint8_t venue_id;             // Venue.
  ChildOrderType type;               // Take (IOC), post-only or midpoint peg.
  std::int64_t price_ticks;          // Limit (0 for an unlimited peg).
  std::int64_t quantity;             // Shares sent.
  std::int64_t leaves;               // Shares still open.
  std::int64_t sent_ns;              // When it was sent (decision clock).
  bool cancel_sent;                  // A cancel is on its way.
};

// One child the policy asks for.
struct ChildRequest {
  std::uint8_t venue_id;             // Venue.
  ChildOrderType type;               // Take (IOC), post-only or midpoint peg.
  std::int64_t price_ticks;          // Limit; 0 = the type's default (far touch, near touch, peg).
  std::int64_t quantity;             // Shares (> 0, whole lots unless the last).
};

// What one decide() call returns.
struct PolicyOutput {
  ChildRequest children[kMaxPolicyRequests];   // New children, sent in this order.
  std::size_t child_count = 0;                 // Entries used in children.
  std::uint64_t cancels[kMaxPolicyRequests];   // Child ids to cancel.
  std::size_t cancel_count = 0;                // Entries used in cancels.
  std::int64_t next_decision_ns = 0;           // Wake me at this time at the latest (0: grid).

  // Appends a child request; returns false when full.
  bool add_child(std::uint8_t venue, ChildOrderType type, std::int64_t price_ticks,
                 std::int64_t quantity) noexcept {
    if (child_count >= kMaxPolicyRequests || quantity <= 0) return false;
    children[child_count++] = ChildRequest{venue, type, price_ticks, quantity};
    return true;
  }
  // Appends a cancel; returns false when full.
  bool add_cancel(std::uint64_t child_id) noexcept {
    if (cancel_count >= kMaxPolicyRequests) return false;
    cancels[cancel_count++] = child_id;
    return true;
  }
};

// Checks what the models see and say (docs/guardrails.md, model guard): a non-finite input
// row, a non-finite output or one outside [output_min, output_max] of its slot trips it. The
// first trip is kept (reason, slot) until clear(); the owner (the engine) turns it into the
// fallback. Single-threaded, noexcept, no allocation.
struct ModelGuard {
  double output_min[kModelSlots] = {-1e300, -1e300, -1e300, -1e300};  // By ModelSlot.
  double output_max[kModelSlots] = {1e300, 1e300, 1e300, 1e300};      // By ModelSlot.
  ModelGuardReason reason = ModelGuardReason::kNone;  // First trip since clear().
  ModelSlot slot = ModelSlot::kFillProbability;       // Slot of the first trip.
  std::uint64_t checks = 0;                           // Outputs checked.

  // Returns true when something tripped the guard since clear().
  bool tripped() const noexcept { return reason != ModelGuardReason::kNone; }
  // Records a trip (the first one is kept).
  void trip(ModelGuardReason why, ModelSlot where) noexcept {
    if (reason != ModelGuardReason::kNone) return;
    reason = why;
    slot = where;
  }
  // Returns true when every value of `row` is finite; trips NON_FINITE_INPUT otherwise.
  bool check_row(ModelSlot where, const float* row, std::size_t count) noexcept;
  // Returns true when `output` is finite and within its slot's range; trips otherwise.
  bool check_output(ModelSlot where, float output) noexcept;
  // Forgets the trip.
  void clear() noexcept { reason = ModelGuardReason::kNone; }
};

// The models a policy may consult (any may be null), and the guard that checks them.
struct PolicyModels {
  const TreeEnsemble* fill_probability = nullptr;  // P(filled in full within the horizon).
  const TreeEnsemble* adverse_move = nullptr;      // Expected mid move against us, bps.
  const TreeEnsemble* market_impact = nullptr;     // Expected mid move after our take, bps.
  const TreeEnsemble* action_value = nullptr;      // Learned Q(state, action) (RL policy).
  ModelGuard* guard = nullptr;                     // Checks rows and outputs (null: none).

  // Returns the model in `slot` (null when absent).
  const TreeEnsemble* model(ModelSlot slot) const noexcept {
    switch (slot) {
      case ModelSlot::kFillProbability: return fill_probability;
      case ModelSlot::kAdverseMove: return adverse_move;
      case ModelSlot::kMarketImpact: return market_impact;
      case ModelSlot::kActionValue: return action_value;
    }
    return nullptr;
  }
  // Returns the prediction of the model in `slot` for `row` (NaN when the slot is empty or
  // the guard refuses the row); every output passes the guard when one is attached. Policies
  // call this rather than the ensembles, so no model output escapes the guard.
  float predict(ModelSlot slot, const float* row) const noexcept;
};

// Everything a policy reads at one decision time.
struct PolicyView {
  std::int64_t now_ns;                       // Decision time (decision clock).
  const ConsolidatedBook* book;              // Books as the router sees them now.
  const FeatureEngine* features;             // Incremental features (build_row).
  const ParentState* parent;                 // The parent order.
  const OpenChild* open_children;            // Its open children.
  std::size_t open_child_count;              // Entries in open_children.
  const PolicyVenue* venues;                 // Venues the parent may use.
  std::size_t venue_count;                   // Entries in venues.
  PolicyModels models;                       // Models (null when absent).
  double market_volume_shares;               // Printed volume since the parent's start.
};

// One fill of one of the parent's children.
struct ChildFill {
  std::uint64_t child_id;     // Child.
  std::uint8_t venue_id;      // Venue.
  ChildOrderType type;        // Child type.
  std::int64_t price_ticks;   // Execution price.
  std::int64_t quantity;      // Shares.
  std::int64_t ts_ns;         // When the report arrived (decision clock).
  double fee_usd;             // Fee paid (negative: rebate).
};

// An execution policy (see the file comment).
class ExecutionPolicy {
 public:
  virtual ~ExecutionPolicy() = default;
  // Returns the policy's name ("twap", "almgren_chriss", ...).
  virtual const char* name() const noexcept = 0;
  // Prepares for a new parent order (may allocate).
  virtual void reset(const ParentState& parent, const PolicyVenue* venues,
                     std::size_t venue_count) = 0;
  // Decides at one decision time; writes requests into `out` (which arrives empty).
  virtual void decide(const PolicyView& view, PolicyOutput& out) noexcept = 0;
  // Returns true when decide() consults PolicyView::models (the model guard watches it).
  virtual bool uses_models() const noexcept { return false; }
  // Learns from a fill of one of its children.
  virtual void on_fill(const ChildFill& fill) noexcept { (void)fill; }
  // Learns from a finished child (filled, cancelled or rejected): shares sent and filled.
  virtual void on_child_done(std::uint64_t child_id, std::uint8_t venue_id, ChildOrderType type,
                             std::int64_t quantity, std::int64_t filled) noexcept {
    (void)child_id; (void)venue_id; (void)type; (void)quantity; (void)filled;
  }
};

}  // namespace sor
