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

}  // namespace sor
