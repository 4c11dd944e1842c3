// The risk stage's hard limits as pure functions: what one parent at entry or one child order
// would do, against the parameter block (docs/guardrails.md). The engine gathers the inputs
// from its state and calls these on every parent and every child; nothing reaches the order
// ring without check_child. No allocation, no throw, no lock.
#pragma once

#include <cstdint>

#include "sor/engine.hpp"
#include "sor/types.hpp"

namespace sor {

// Children the engine can have in flight at once (its direct-mapped child table).
inline constexpr std::int64_t kMaxInFlightChildren = 1 << 16;

// A refusal (or kNone) with the measured value and the limit in the reason's unit: shares,
// USD cents, bps x 100, messages or orders per second; 0/0 where there is no number.
struct RiskVerdict {
  RejectReason reason = RejectReason::kNone;  // Why it was refused (kNone: accepted).
  std::int64_t measured = 0;                   // The value that broke the limit.
  std::int64_t limit = 0;                      // The limit.
};

// What the risk stage knows about one candidate child order.
struct ChildRiskInput {
  RiskState risk_state = RiskState::kActive;  // Engine risk state.
  std::uint32_t instrument_id = 0;            // Instrument.
  std::uint32_t account_id = 0;               // Account of its parent.
  Side side = Side::kBuy;                     // Child side.
  std::uint8_t venue_id = 0;                  // Destination venue.
  std::int64_t price_ticks = 0;               // Limit (0: an unlimited peg, valued at the mid).
  std::int64_t quantity = 0;                  // Shares.
  std::int64_t bid_price_ticks = 0;           // NBBO bid (0: none).
  std::int64_t ask_price_ticks = 0;           // NBBO ask (0: none).
  std::int64_t reference_price_ticks = 0;     // Collar reference (0: none known).
  double gross_notional_usd = 0;              // Child notional sent today.
  std::int64_t open_orders = 0;               // Children in flight, all parents.
  double order_tokens = 0;                    // Order-rate bucket (one second of orders).
  double message_tokens = 0;                  // Message-rate bucket (one second of messages).
  std::int64_t parent_traded_shares = 0;      // Parent filled + working.
  std::int64_t market_volume_shares = 0;      // Printed volume since the parent started.
  double account_filled_notional_usd = 0;     // Account's filled notional today.
  double account_open_notional_usd = 0;       // Account's open child notional.
  std::int64_t position_shares = 0;           // Account's position in the instrument.
  std::int64_t open_same_side_shares = 0;     // Account's open children on this side.
  bool model_refused = false;                 // The model guard tripped on this decision.
};

// What the risk stage knows about one new parent order.
struct ParentRiskInput {
  RiskState risk_state = RiskState::kActive;  // Engine risk state.
  std::uint32_t instrument_id = 0;            // Instrument.
  std::uint32_t account_id = 0;               // Account (0: the default account).
  Side side = Side::kBuy;                     // Parent side.
  std::int64_t quantity = 0;                  // Shares.
  std::int64_t limit_price_ticks = 0;         // Limit (0: none).
  double notional_usd = 0;                    // Quantity x (limit, else far touch, else ref).
  std::int64_t reference_price_ticks = 0;     // Collar reference (0: none known).
  bool duplicate_parent = false;              // The parent id is in use.
  bool duplicate_client_order = false;        // The ClOrdID hash was seen today.
  bool client_orders_full = false;            // The ClOrdID set cannot take another hash.
  std::int64_t client_orders_count = 0;       // Hashes held (for the CAPACITY refusal).
  std::int64_t client_orders_limit = 0;       // Hashes it can hold.
  double account_filled_notional_usd = 0;     // Account's filled notional today.
  double account_open_notional_usd = 0;       // Account's open child notional.
  std::int64_t position_shares = 0;           // Account's position in the instrument.
  std::int64_t open_same_side_shares = 0;     // Account's open children on this side.
};

// Returns USD as cents, rounded half away from zero (saturating).
std::int64_t usd_cents(double usd) noexcept;
// Returns bps as bps x 100, rounded half away from zero (saturating).
std::int64_t bps_hundredths(double bps) noexcept;
// Returns true when `instrument_id` is on the restricted list of `params`.
bool instrument_restricted(const EngineParams& params, std::uint32_t instrument_id) noexcept;
// Returns true when account `account_id` is configured in `params`.
bool account_configured(const EngineParams& params, std::uint32_t account_id) noexcept;
// Returns true when a refusal for `reason` stops the child's parent.
bool reason_stops_parent(RejectReason reason) noexcept;
// Returns the collar refusal of an aggressive `price_ticks` (0: none, or no reference).
RiskVerdict check_collar(const EngineParams& params, Side side, std::int64_t price_ticks,
                         std::int64_t reference_price_ticks) noexcept;
// Returns the first limit one child order breaks, in the engine's order, or kNone.
RiskVerdict check_child(const ChildRiskInput& in, const EngineParams& params) noexcept;
// Returns the first limit one new parent breaks at entry, in the engine's order, or kNone.
RiskVerdict check_parent(const ParentRiskInput& in, const EngineParams& params) noexcept;

}  // namespace sor
