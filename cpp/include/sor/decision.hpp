// The engine's decision records: for every child order the policy proposes, the candidate
// (DecisionContext), the feature row the models saw, their outputs and the risk verdict.
// They leave the engine on the decision ring (one record per slot); the audit journal,
// monitoring and retraining read them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "sor/features.hpp"

namespace sor {

// The models the engine consults before a child order, by slot.
enum class ModelSlot : std::uint32_t {
  kFillProbability = 0,  // P(child filled in full within its horizon).
  kAdverseMove = 1,      // Expected mid move against us over the horizon, bps.
  kMarketImpact = 2,     // Expected mid move after our take fills, bps.
  kActionValue = 3,      // Learned action value Q(row) of the rl policy.
};

// Number of model slots.
inline constexpr std::size_t kModelSlots = 4;

// Why the model guard sent routing to the fallback policy.
enum class ModelGuardReason : std::uint8_t {
  kNone = 0,                // Not tripped.
  kNonFiniteOutput = 1,     // A model returned NaN or infinity.
  kOutputOutOfRange = 2,    // A model output left [model_output_min, model_output_max].
  kNonFiniteInput = 3,      // A feature row offered to a model held NaN or infinity.
  kLatencyBudget = 4,       // Consecutive policy decisions over the latency budget.
  kFillRateCollapse = 5,    // Realised fill rate far below the predicted one (Python guard).
  kVenueConcentration = 6,  // Routing concentrated on one venue (Python guard).
  kFeatureDrift = 7,        // Feature population drifted from training (Python guard).
  kOperator = 8,            // Forced by an operator.
};

// Flags of DecisionRecord::flags.
enum DecisionFlag : std::uint8_t {
  kDecisionRowRefused = 1,      // build_row refused the context (status in row_status).
  kDecisionNonFiniteRow = 2,    // The row held a NaN/inf: no model ran on it.
  kDecisionChildSent = 4,       // The child reached the order ring.
};

// One decision of the engine (decision ring): 384 bytes, numpy decision_record_dtype.
struct DecisionRecord {
  std::int64_t ts_ns;                 // Realtime clock when the decision was made.
  std::uint64_t sequence;             // Decision sequence number (from 1).
  std::uint64_t parent_order_id;      // Parent order.
  std::uint64_t child_order_id;       // Child order id (0 when it was not sent).
  std::uint64_t md_events;            // Market-data events the engine had applied by then.
  std::int64_t inference_ns;          // Row building plus model evaluation, nanoseconds.
  DecisionContext context;            // The candidate child order.
  float model_output[kModelSlots];    // Output by ModelSlot (NaN when the slot was empty).
  std::uint32_t model_mask;           // Bit s: slot s had a model and ran.
  std::uint32_t model_generation[kModelSlots];  // Swap generation of each slot's model.
  std::uint8_t risk_reason;           // RejectReason of the risk stage (0: accepted).
  std::uint8_t row_status;            // FeatureStatus of build_row.
  std::uint8_t flags;                 // DecisionFlag bits.
  std::uint8_t reserved[17];          // 0.
  float features[kFeatureCount];      // The feature row, in schema order.
};

static_assert(sizeof(DecisionRecord) % 64 == 0, "decision records fill whole cache lines");
static_assert(sizeof(DecisionRecord) == 384);
static_assert(std::is_trivially_copyable_v<DecisionRecord>);
static_assert(std::is_standard_layout_v<DecisionRecord>);

}  // namespace sor
