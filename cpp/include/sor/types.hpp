// Hot-path records. Every struct here is fixed-layout, trivially copyable and mirrored by a
// numpy dtype in cpp/bindings/types.cpp; sizes and offsets are part of the wire/ring contract.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace sor {

// Side of an order or of a book level.
enum class Side : std::uint8_t {
  kNone = 0,  // Side is unknown or not applicable (e.g. a cross trade).
  kBuy = 1,   // Bid side.
  kSell = 2,  // Ask side.
};

// What a market-data event does to a book.
enum class EventKind : std::uint8_t {
  kNone = 0,         // Not an event; rejected by books.
  kAdd = 1,          // Adds a resting order: order_id, side, price_ticks, quantity.
  kModify = 2,       // Changes an order in place (same id) to price_ticks/quantity; keeps
                     // priority only when the price is unchanged and the quantity does not grow.
  kReplace = 3,      // Replaces order_id by related_id at price_ticks/quantity; loses priority.
  kCancel = 4,       // Removes quantity shares from order_id (partial cancel).
  kDelete = 5,       // Removes order_id entirely.
  kExecute = 6,      // Executes quantity shares of resting order_id; related_id is the match
                     // number, price_ticks the execution price (0 means the resting price).
  kTrade = 7,        // A trade print with no book effect (non-displayed or cross trade).
  kClear = 8,        // Removes every order and level of instrument_id on this venue.
  kLevel = 9,        // Price-level feed: sets the size at (side, price_ticks) to quantity (0
                     // removes the level); related_id is the order count when the feed has it.
  kBrokenTrade = 10, // Breaks the trade with match number related_id; no book effect.
  kStatus = 11,      // A sequenced message with no book effect (system event, directory,
                     // trading action); related_id holds the source message type.
};

// Bit flags carried by MdEvent::flags.
enum EventFlag : std::uint8_t {
  kFlagPrintable = 1,  // The execution or trade counts toward printed volume.
  kFlagCross = 2,      // The trade comes from an opening/closing/halt cross.
  kFlagSnapshot = 4,   // The event rebuilds a book from a snapshot, not incremental flow.
};

// One market-data event from one venue: 64 bytes, one cache line.
struct MdEvent {
  std::int64_t ts_event;       // Nanoseconds since the epoch when it happened at the venue.
  std::int64_t ts_recv;        // Nanoseconds since the epoch when we received it.
  std::uint64_t sequence;      // Venue sequence number; 0 means unsequenced (not checked).
  std::uint64_t order_id;      // Venue order id (unique per venue); for a cross trade (kTrade
                               // with kFlagCross) the cross type character code ('O', 'C'...).
  std::uint64_t related_id;    // New order id of a replace, match number of an execution.
  std::int64_t price_ticks;    // Price in ticks.
  std::int64_t quantity;       // Shares.
  std::uint32_t instrument_id; // Instrument id from the configuration.
  std::uint8_t venue_id;       // Venue id from the configuration.
  EventKind kind;              // What the event does.
  Side side;                   // Order or level side.
  std::uint8_t flags;          // EventFlag bits.
};

static_assert(sizeof(MdEvent) == 64, "MdEvent must be one cache line");
static_assert(alignof(MdEvent) == 8, "MdEvent alignment is part of the ring contract");
static_assert(std::is_trivially_copyable_v<MdEvent>);
static_assert(std::is_standard_layout_v<MdEvent>);
static_assert(offsetof(MdEvent, instrument_id) == 56);
static_assert(offsetof(MdEvent, flags) == 63);

// One price level of one side of one venue's book.
struct LevelView {
  std::int64_t price_ticks;  // Level price.
  std::int64_t quantity;     // Total displayed shares at the level.
  std::int64_t order_count;  // Orders at the level (0 when a price-level feed does not say).
};

static_assert(sizeof(LevelView) == 24);
static_assert(std::is_trivially_copyable_v<LevelView>);

// One resting order as seen in an L3 book.
struct OrderView {
  std::uint64_t order_id;      // Venue order id.
  std::int64_t price_ticks;    // Limit price.
  std::int64_t quantity;       // Remaining shares.
  std::int64_t orders_ahead;   // Orders ahead of it at its price (queue position, 0 = first).
  std::int64_t quantity_ahead; // Shares ahead of it at its price.
  std::uint32_t instrument_id; // Instrument id.
  Side side;                   // Order side.
  std::uint8_t pad_[3];        // Explicit padding.
};

static_assert(sizeof(OrderView) == 48);
static_assert(std::is_trivially_copyable_v<OrderView>);

// National best bid and offer across lit venues, with the size at each.
struct Nbbo {
  std::int64_t bid_price_ticks;  // Best bid (0 when no venue bids).
  std::int64_t bid_quantity;     // Shares at the best bid, all lit venues.
  std::int64_t ask_price_ticks;  // Best ask (0 when no venue offers).
  std::int64_t ask_quantity;     // Shares at the best ask, all lit venues.
  std::uint64_t bid_venue_mask;  // Bit v set when venue v is at the best bid.
  std::uint64_t ask_venue_mask;  // Bit v set when venue v is at the best ask.
};

static_assert(sizeof(Nbbo) == 48);
static_assert(std::is_trivially_copyable_v<Nbbo>);

// What a command from the control plane asks the engine to do.
enum class CommandKind : std::uint8_t {
  kNone = 0,          // Not a command; refused.
  kNewParent = 1,     // Starts working a parent order.
  kCancelParent = 2,  // Stops a parent order and cancels its open children.
  kAmendParent = 3,   // Changes a parent order's quantity and limit price.
  // 4 and 5 (the old halt/resume) are retired and refused as INVALID_COMMAND: the risk state
  // lives in the parameter block (EngineParams::risk_state).
  kAccountState = 6,  // Sets account_id's position and filled notional in instrument_id.
};

// Most accounts the engine keeps risk state for (ids 0..63; 0 is the default account).
inline constexpr std::size_t kMaxAccounts = 64;
// Instrument ids the risk stage covers (restricted list, reference prices, positions).
inline constexpr std::size_t kMaxRiskInstruments = 4096;

// One command from the control plane to the engine (command ring): 128 bytes.
struct Command {
  std::int64_t ts_ns;              // Nanoseconds since the epoch when it was sent.
  std::uint64_t command_id;        // Caller's id, echoed in the audit record that answers it.
  std::uint64_t parent_order_id;   // Parent order the command is about (0: none).
  std::int64_t quantity;           // Parent quantity in shares (new, amend).
  std::int64_t limit_price_ticks;  // Limit price; 0 means no limit.
  std::int64_t end_time_ns;        // Deadline (epoch ns, feature clock); 0: none. At it the
                                   // parent's children are cancelled and it expires.
  std::uint64_t venue_mask;        // Venues the parent may use (bit v = venue v); 0 means all.
  std::uint32_t instrument_id;     // Instrument id.
  CommandKind kind;                // What to do.
  Side side;                       // Parent side.
  std::uint8_t urgency;            // 0 (passive) .. 255 (aggressive); used by the policy.
  std::uint8_t flags;              // Reserved; 0.
  std::uint64_t client_order_hash; // Hash of the OMS's ClOrdID (0: no duplicate check).
  double notional_usd;             // ACCOUNT_STATE: filled notional of the account today.
  std::int64_t position_shares;    // ACCOUNT_STATE: signed position of the account.
  std::uint32_t account_id;        // Account (0: the default account); below kMaxAccounts.
  std::uint32_t pad;               // 0.
  std::uint8_t reserved[32];       // 0.
};

static_assert(sizeof(Command) == 128);
static_assert(alignof(Command) == 8);
static_assert(std::is_trivially_copyable_v<Command>);
static_assert(std::is_standard_layout_v<Command>);
static_assert(offsetof(Command, instrument_id) == 56);
static_assert(offsetof(Command, flags) == 63);
static_assert(offsetof(Command, client_order_hash) == 64);
static_assert(offsetof(Command, notional_usd) == 72);
static_assert(offsetof(Command, position_shares) == 80);
static_assert(offsetof(Command, account_id) == 88);
static_assert(offsetof(Command, pad) == 92);
static_assert(offsetof(Command, reserved) == 96);

// What an execution report says happened to a child order.
enum class ExecKind : std::uint8_t {
  kNone = 0,       // Not a report; ignored.
  kAck = 1,        // The venue accepted the order.
  kFill = 2,       // Shares executed (partially when leaves_quantity > 0).
  kCancelled = 3,  // The order is done without (further) fills.
  kRejected = 4,   // The venue refused the order.
};

// One execution report from a venue, relayed by the gateway (exec ring): 64 bytes.
struct ExecReport {
  std::int64_t ts_event;          // Nanoseconds since the epoch at the venue.
  std::int64_t ts_recv;           // Nanoseconds since the epoch when the gateway got it.
  std::uint64_t child_order_id;   // The engine's child order id.
  std::uint64_t parent_order_id;  // Parent of the child.
  std::int64_t last_price_ticks;  // Execution price (fills).
  std::int64_t last_quantity;     // Shares executed by this report (fills).
  std::int64_t leaves_quantity;   // Shares still open on the child after this report.
  std::uint32_t instrument_id;    // Instrument id.
  std::uint8_t venue_id;          // Venue of the child.
  ExecKind kind;                  // What happened.
  Side side;                      // Child side.
  std::uint8_t liquidity;         // 1 added, 2 removed, 0 unknown.
};

static_assert(sizeof(ExecReport) == 64);
static_assert(std::is_trivially_copyable_v<ExecReport>);

// What a child-order intent asks the gateway to do.
enum class OrderAction : std::uint8_t {
  kNone = 0,     // Not an intent.
  kNew = 1,      // Sends a new child order.
  kCancel = 2,   // Cancels child_order_id.
};

// How long a child order rests, and how it executes (FIX TimeInForce and ExecInst).
enum class TimeInForce : std::uint8_t {
  kDay = 0,           // Rests until filled, cancelled or the session ends.
  kIoc = 1,           // Immediate or cancel (a take).
  kPostOnly = 2,      // Day, post-only: refused rather than taking (ExecInst 6).
  kMidpointPeg = 3,   // Day, pegged to the NBBO midpoint; price_ticks is its limit (0: none).
};

// One child-order decision of the engine for the gateway (order ring): 64 bytes.
struct OrderIntent {
  std::int64_t ts_decision;       // Nanoseconds since the epoch when the engine decided.
  std::int64_t ts_trigger;        // ts_recv of the market-data event that triggered it (0 none).
  std::uint64_t child_order_id;   // Engine-assigned child id (unique per engine run).
  std::uint64_t parent_order_id;  // Parent order.
  std::int64_t price_ticks;       // Limit price.
  std::int64_t quantity;          // Shares.
  std::uint64_t trigger_sequence; // Sequence of the triggering market-data event (0 none).
  std::uint32_t instrument_id;    // Instrument id.
  std::uint8_t venue_id;          // Destination venue.
  OrderAction action;             // New or cancel.
  Side side;                      // Child side.
  TimeInForce time_in_force;      // Day or IOC.
};

static_assert(sizeof(OrderIntent) == 64);
static_assert(std::is_trivially_copyable_v<OrderIntent>);

// What an audit record reports.
enum class AuditKind : std::uint8_t {
  kNone = 0,
  kCommandAccepted = 1,  // reference = command_id.
  kCommandRejected = 2,  // reference = command_id, reason = RejectReason.
  kChildOrder = 3,       // A child intent was written; value_a = price, value_b = quantity.
  kRiskReject = 4,       // The risk stage refused a child; reason = RejectReason.
  kExecution = 5,        // An execution report was applied; value_a = price, value_b = qty.
  kParentDone = 6,       // A parent finished; value_a = filled shares, value_b = 0 filled,
                         // 1 cancelled, 2 expired (end time passed), 3 stopped by risk
                         // (reason = RejectReason); sent once no child is open.
  kParamsApplied = 7,    // A new parameter block version took effect; value_a = version.
  kBookError = 8,        // A market-data event was refused; reason = Status, reference = seq.
  kRiskState = 9,        // The risk state changed; value_a = new RiskState, value_b = previous,
                         // reference = parameter version.
  kRingOverflow = 10,    // A record could not be written to an output ring; value_a = ring.
  kModelGuard = 11,      // value_a 1 = tripped (fallback), 2 = re-enabled; value_b =
                         // ModelGuardReason; reference = model slot for output reasons, else 0.
  kAccountState = 12,    // An ACCOUNT_STATE command applied; value_a = position, value_b =
                         // filled notional in USD cents; reference = command id.
};

// Why a command or a child order was refused.
enum class RejectReason : std::uint8_t {
  kNone = 0,
  kHalted = 1,               // The risk state is HALTED.
  kMaxOrderQuantity = 2,     // Child above the per-order share limit.
  kMaxOrderNotional = 3,     // Child above the per-order notional limit.
  kPriceBand = 4,            // Child price outside the band around the reference price.
  kMaxOpenOrders = 5,        // Too many open children.
  kOrderRate = 6,            // Child-order rate limit reached.
  kUnknownParent = 7,        // Command names a parent the engine does not have.
  kDuplicateParent = 8,      // New parent with an id already in use.
  kInvalidCommand = 9,       // Bad kind, side, quantity or instrument.
  kCapacity = 10,            // Parent table is full.
  kMaxParentQuantity = 11,   // Parent above the parent share limit.
  kVenueDisabled = 12,       // The venue is disabled in the parameter block.
  kGrossNotional = 13,       // Daily gross notional limit reached.
  kRestricted = 14,          // The instrument is on the restricted list.
  kCreditLimit = 15,         // The account's credit (filled + open notional) would be exceeded.
  kPositionLimit = 16,       // The account's position in the instrument would be exceeded.
  kParticipation = 17,       // The parent would trade above its share of market volume.
  kMessageRate = 18,         // New + cancel message rate limit reached.
  kReferenceCollar = 19,     // Aggressive price beyond the collar around the reference price.
  kMaxParentNotional = 20,   // Parent above the parent notional limit.
  kDuplicateClientOrderId = 21,  // The ClOrdID hash was seen before today.
  kReducing = 22,            // REDUCING: the order would not reduce the account's position.
  kModelGuard = 23,          // The model guard tripped on this decision.
  kUnknownAccount = 24,      // The account is not configured.
  kInvalidInstrument = 25,   // Instrument id beyond kMaxRiskInstruments.
};

// Number of RejectReason values the per-reason counters cover.
inline constexpr std::size_t kRejectReasonCount = 32;

// One record of the engine's audit trail (audit ring): 64 bytes.
struct AuditRecord {
  std::int64_t ts_ns;             // Nanoseconds since the epoch.
  std::uint64_t sequence;         // Audit sequence, 1, 2, 3... with no gaps per engine run.
  std::uint64_t parent_order_id;  // Parent concerned (0 none).
  std::uint64_t child_order_id;   // Child concerned (0 none).
  std::int64_t value_a;           // Kind-specific value (see AuditKind).
  std::int64_t value_b;           // Kind-specific value (see AuditKind).
  std::uint64_t reference;        // Command id or market-data sequence.
  std::uint32_t instrument_id;    // Instrument concerned.
  std::uint8_t venue_id;          // Venue concerned.
  AuditKind kind;                 // What is reported.
  std::uint8_t reason;            // RejectReason or Status, by kind.
  std::uint8_t flags;             // Reserved; 0.
};

static_assert(sizeof(AuditRecord) == 64);
static_assert(std::is_trivially_copyable_v<AuditRecord>);

}  // namespace sor
