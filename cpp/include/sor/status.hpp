// Status values returned by the core instead of exceptions; mapped to Python in
// cpp/bindings/errors.cpp.
#pragma once

#include <cstdint>
#include <string_view>

namespace sor {

// Outcome of applying one event or decoding one message.
enum class Status : std::uint8_t {
  kOk = 0,                // Applied.
  kUnknownOrder = 1,      // The order id is not in the book.
  kDuplicateOrder = 2,    // The order id is already in the book.
  kInvalidQuantity = 3,   // Zero/negative size, or more shares than the order has left.
  kInvalidPrice = 4,      // Price is zero or negative.
  kInvalidSide = 5,       // Side is neither buy nor sell.
  kInvalidKind = 6,       // The event kind does not apply to this book.
  kSequenceGap = 7,       // The venue sequence number skipped ahead.
  kCrossedBook = 8,       // The event would leave the venue's book crossed or locked.
  kCapacityExceeded = 9,  // A preallocated table is full.
  kUnknownVenue = 10,     // The venue id is not configured for this book.
  kUnknownInstrument = 11,// The instrument id is beyond the configured range.
  kTruncated = 12,        // Input ends inside a message or frame.
  kMalformed = 13,        // Input bytes do not form a valid message.
  kUnknownLevel = 14,     // A price-level update removes a level the book does not have.
};

// Returns a short, stable name for a status ("unknown_order").
constexpr std::string_view status_name(Status status) noexcept {
  switch (status) {
    case Status::kOk: return "ok";
    case Status::kUnknownOrder: return "unknown_order";
    case Status::kDuplicateOrder: return "duplicate_order";
    case Status::kInvalidQuantity: return "invalid_quantity";
    case Status::kInvalidPrice: return "invalid_price";
    case Status::kInvalidSide: return "invalid_side";
    case Status::kInvalidKind: return "invalid_kind";
    case Status::kSequenceGap: return "sequence_gap";
    case Status::kCrossedBook: return "crossed_book";
    case Status::kCapacityExceeded: return "capacity_exceeded";
    case Status::kUnknownVenue: return "unknown_venue";
    case Status::kUnknownInstrument: return "unknown_instrument";
    case Status::kTruncated: return "truncated";
    case Status::kMalformed: return "malformed";
    case Status::kUnknownLevel: return "unknown_level";
  }
  return "unknown_status";
}

// Result of a batch call: how many events were applied and the first failure, if any.
struct BatchResult {
  std::uint64_t applied = 0;     // Events applied before the first failure (or all).
  Status status = Status::kOk;   // kOk, or the status of event `applied`.
};

}  // namespace sor
