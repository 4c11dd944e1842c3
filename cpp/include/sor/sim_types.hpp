// Records shared by the market simulator and the replay market: the orders an agent (the
// router, an RL policy, an experiment) sends to a simulated venue and the reports it gets back.
// Fixed layout and trivially copyable, mirrored by numpy dtypes (agent_order_dtype,
// sim_report_dtype) so Python can pass and read them in batches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "sor/types.hpp"

namespace sor::sim {

// Order types a simulated venue accepts.
enum class SimOrderType : std::uint8_t {
  kLimit = 0,        // Matches what it can at price_ticks or better, rests the rest (lit, dark).
  kMarket = 1,       // Matches up to quantity at any price; the rest is cancelled (lit).
  kIoc = 2,          // Matches what it can at price_ticks or better; the rest is cancelled.
  kPostOnly = 3,     // Rests at price_ticks; rejected when it would take liquidity (lit).
  kMidpointPeg = 4,  // Rests hidden at the NBBO midpoint, limited by price_ticks (0 = none).
};

// What a report tells the agent.
enum class SimReportKind : std::uint8_t {
  kNone = 0,
  kAck = 1,        // The venue accepted the order (it rests or is being matched).
  kFill = 2,       // Shares executed; leaves_quantity says what is still open.
  kCancelled = 3,  // The order is done without further fills (IOC rest, cancel, market rest).
  kRejected = 4,   // The venue refused the order (or a cancel or replace of it); reason says why.
  kReplaced = 5,   // A replace took effect: price_ticks and leaves_quantity are the new ones.
};

// Why a simulated venue refused an order or a cancel.
enum class SimRejectReason : std::uint8_t {
  kNone = 0,
  kUnknownVenue = 1,       // venue_id is not a venue of the market.
  kUnknownInstrument = 2,  // instrument_id is not an instrument of the market.
  kBadQuantity = 3,        // quantity <= 0, or min_quantity outside [0, quantity].
  kBadPrice = 4,           // Limit price <= 0 or not on the venue's tick grid.
  kBadSide = 5,            // Side is neither buy nor sell.
  kUnsupportedType = 6,    // The venue does not take this order type (e.g. market in a dark pool).
  kWouldTake = 7,          // A post-only order would have taken liquidity.
  kUnknownOrder = 8,       // A cancel names an order that is not open.
  kDuplicateOrder = 9,     // client_order_id is already open.
  kNoReference = 10,       // A midpoint order arrived with no two-sided NBBO.
  kSessionClosed = 11,     // The order arrived after the session end.
};

// Liquidity flag of a fill.
enum class SimLiquidity : std::uint8_t {
  kNone = 0,     // Not a fill.
  kAdded = 1,    // The agent's order was resting (maker fee or rebate).
  kRemoved = 2,  // The agent's order took liquidity (taker fee).
  kMidpoint = 3, // Matched at the midpoint (dark pool or midpoint peg; the venue's mid fee).
};

// One order an agent sends to a simulated venue: 64 bytes.
struct AgentOrder {
  std::int64_t ts_send;            // Nanoseconds since the epoch when the agent sent it.
  std::uint64_t client_order_id;   // Agent's id, unique among its open orders; echoed in reports.
  std::int64_t price_ticks;        // Limit price (0 for market; midpoint peg: 0 means no limit).
  std::int64_t quantity;           // Shares.
  std::int64_t min_quantity;       // Smallest acceptable execution (dark pools; 0 = none).
  std::uint64_t tag;               // Caller's value echoed in reports (e.g. the parent order id).
  std::uint64_t reserved;          // 0.
  std::uint32_t instrument_id;     // Instrument id.
  std::uint8_t venue_id;           // Destination venue.
  SimOrderType type;               // Order type.
  Side side;                       // Buy or sell.
  std::uint8_t flags;              // 0.
};

static_assert(sizeof(AgentOrder) == 64);
static_assert(std::is_trivially_copyable_v<AgentOrder>);

// One report from a simulated venue to the agent: 72 bytes.
struct SimReport {
  std::int64_t ts_event;          // Nanoseconds since the epoch when it happened at the venue.
  std::int64_t ts_recv;           // When the agent receives it (ts_event + ack latency + jitter).
  std::uint64_t client_order_id;  // The agent's order.
  std::uint64_t tag;              // The order's tag.
  std::int64_t price_ticks;       // Fill price (fills), the order's price otherwise.
  std::int64_t quantity;          // Shares executed by this report (fills), else 0.
  std::int64_t leaves_quantity;   // Shares still open on the order after this report.
  double fee_usd;                 // Fee charged for this fill in USD (negative: a rebate).
  std::uint32_t instrument_id;    // Instrument id.
  std::uint8_t venue_id;          // Venue.
  SimReportKind kind;             // What happened.
  Side side;                      // Order side.
  std::uint8_t detail;            // SimLiquidity for fills, SimRejectReason for rejects,
                                  // kCancelRequested for a cancel that answers a cancel request.
};

// SimReport::detail of a kCancelled report that answers the agent's cancel request (0: the
// venue cancelled on its own: an IOC or market remainder, self-trade prevention).
inline constexpr std::uint8_t kCancelRequested = 1;

static_assert(sizeof(SimReport) == 72);
static_assert(std::is_trivially_copyable_v<SimReport>);

// One trade on any venue, as the simulator's tape records it: 48 bytes.
struct SimTrade {
  std::int64_t ts_event;        // When it happened.
  std::int64_t price_ticks;     // Execution price.
  std::int64_t quantity;        // Shares.
  std::uint64_t aggressor_id;   // Agent client_order_id when the agent took, else 0.
  std::uint32_t instrument_id;  // Instrument id.
  std::uint8_t venue_id;        // Venue.
  Side aggressor_side;          // Side of the taker (kNone for a dark cross).
  std::uint8_t agent;           // 1 when the agent was the taker, 2 the maker, 0 neither.
  std::uint8_t informed;        // 1 when the taker was an informed trader.
  std::uint8_t pad_[8];         // Explicit padding.
};

static_assert(sizeof(SimTrade) == 48);
static_assert(std::is_trivially_copyable_v<SimTrade>);

}  // namespace sor::sim
