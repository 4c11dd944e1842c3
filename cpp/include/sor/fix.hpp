// FIX tag=value: framing by BodyLength and CheckSum over a bounded buffer, one-pass parsing into
// a fixed field table, encoding with BodyLength and CheckSum, UTCTimestamps and exact decimal
// prices. No Python here; nothing here throws: every call reports a status value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sor::fix {

// The FIX field delimiter.
inline constexpr char kSoh = '\x01';

// Most fields one message may hold; a message with more does not parse (kTooManyFields).
inline constexpr std::size_t kMaxFields = 512;

// Largest tag the parser reads and the encoder writes (nine digits).
inline constexpr std::uint32_t kMaxTag = 999'999'999;

// Tags below this number are found in O(1) by FixMessage::find; others by a scan.
inline constexpr std::uint32_t kDirectTags = 1024;

// Bytes a framer holds beyond max_message_bytes: room for the 8= and 9= fields and the trailer.
inline constexpr std::size_t kFramerSlackBytes = 64;

// Longest BeginString value (8=) the framer accepts ("FIX.4.4", "FIXT.1.1").
inline constexpr std::size_t kMaxBeginStringBytes = 16;

// Most digits of a BodyLength (9=) value the framer accepts.
inline constexpr std::size_t kMaxBodyLengthDigits = 10;

// Longest UTCTimestamp text: YYYYMMDD-HH:MM:SS.sssssssss.
inline constexpr std::size_t kMaxTimestampBytes = 27;

// Longest text price_to_fix writes (sign, 19 digits, point, 18 decimals).
inline constexpr std::size_t kMaxPriceBytes = 48;

// ---- framing ---------------------------------------------------------------------------------

// What a frame returned by FixFramer holds.
enum class FrameStatus : std::uint8_t {
  kOk = 0,              // A whole message: BodyLength and CheckSum are right.
  kBadChecksum = 1,     // Framed by BodyLength, but the 10= value does not match the sum.
  kBadBodyLength = 2,   // 9= is missing or not a number, or the body does not end where 10= starts
                        // (found early when "<SOH>8=FIX" shows up inside the body).
  kGarbled = 3,         // Bytes that do not start a message with 8=FIX; skipped to the next 8=FIX.
  kTooLong = 4,         // BodyLength above max_message_bytes; skipped to the next 8=FIX.
};

// Returns a short, stable name for a frame status ("bad_checksum").
std::string_view frame_status_name(FrameStatus status) noexcept;

// One frame: a whole message (kOk) or bytes the framer skipped (every other status).
struct Frame {
  FrameStatus status = FrameStatus::kOk;  // What the bytes are.
  bool continued = false;  // Error bytes that continue the skip of the previous error frame.
  const char* data = nullptr;             // First byte, inside the framer's buffer.
  std::size_t size = 0;                   // Byte count.

  // Returns the frame's bytes (valid until the framer's next append or clear).
  std::string_view bytes() const noexcept { return std::string_view(data, size); }
};

// Splits a byte stream into FIX messages, checking BodyLength (9) and CheckSum (10). The buffer
// is allocated once (max_message_bytes + kFramerSlackBytes); after any error the framer skips to
// the next "8=FIX", so it never wedges and never holds more than its capacity.
class FixFramer {
 public:
  // Prepares a framer for messages whose BodyLength is at most `max_message_bytes` (>= 1).
  explicit FixFramer(std::size_t max_message_bytes = 65536);

  // Copies as many of `size` bytes as fit into the buffer; returns how many it took. Take every
  // frame with next() before appending again: that frees room, so a later append takes more.
  std::size_t append(const char* data, std::size_t size) noexcept;

  // Returns true and fills `frame` with the next frame, or returns false when the buffer holds
  // no complete frame. Frames stay valid until the next append or clear.
  bool next(Frame& frame) noexcept;

  // Drops every buffered byte and the skip state (on a new connection).
  void clear() noexcept;

  // Returns the number of bytes buffered and not yet returned in a frame.
  std::size_t buffered_bytes() const noexcept { return tail_ - head_; }

  // Returns the buffer's size: the most bytes the framer ever holds.
  std::size_t capacity() const noexcept { return buffer_.size(); }

  // Returns the largest BodyLength accepted.
  std::size_t max_message_bytes() const noexcept { return max_message_bytes_; }

 private:
  bool skip(Frame& frame, FrameStatus status, bool continued, std::size_t search_from) noexcept;
  bool emit(Frame& frame, FrameStatus status, bool continued, std::size_t end) noexcept;
  bool message_boundary_before(const char* message, std::size_t available) noexcept;

  std::vector<char> buffer_;
  std::size_t max_message_bytes_;
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
  bool skipping_ = false;
  FrameStatus skip_status_ = FrameStatus::kGarbled;
  std::size_t scan_head_ = static_cast<std::size_t>(-1);  // head_ of the message being scanned.
  std::size_t scan_offset_ = 0;  // Where its boundary scan resumes, from scan_head_.
};

// Returns the FIX CheckSum of `size` bytes: their sum modulo 256.
std::uint32_t checksum(const char* data, std::size_t size) noexcept;

// ---- parsing ---------------------------------------------------------------------------------

// Outcome of FixMessage::parse.
enum class ParseStatus : std::uint8_t {
  kOk = 0,
  kEmpty = 1,           // No bytes.
  kEmptyTag = 2,        // A field starts with '='.
  kBadTag = 3,          // A tag is not a positive number without leading zeros.
  kMissingEquals = 4,   // A field has no '=' before its SOH (or before the end).
  kUnterminated = 5,    // The last field does not end with SOH.
  kTooManyFields = 6,   // More than kMaxFields fields.
  kBadDataLength = 7,   // A data field's length field is not a number or overruns the message.
  kTooLong = 8,         // The message is 4 GiB or more.
};

// Returns a short, stable name for a parse status ("bad_tag").
std::string_view parse_status_name(ParseStatus status) noexcept;

// One field of a parsed message: its tag and where its value lies in the message bytes. No
// member initialisers: a FixMessage's table of kMaxFields is left unwritten until parsed.
struct Field {
  std::uint32_t tag;     // Tag number.
  std::uint32_t offset;  // Offset of the value's first byte.
  std::uint32_t length;  // Value length in bytes (0 for an empty value).
};

// Returns the data field whose length a field with tag `length_tag` gives (RawDataLength 95 ->
// RawData 96, SignatureLength 93 -> Signature 89, ...), or 0 when `length_tag` is not one.
std::uint32_t data_tag_for_length(std::uint32_t length_tag) noexcept;

// Returns true when `tag` is a data field (its value may hold SOH; its length field precedes it).
bool is_data_tag(std::uint32_t tag) noexcept;

// Parses a decimal integer with an optional leading '-' (FIX int); returns false when `text`
// is empty, holds anything else, or overflows int64.
bool parse_int(std::string_view text, std::int64_t& value) noexcept;

// The fields of one message, parsed in one pass into a fixed table (no allocation). The message
// bytes are not copied: they must outlive the parse and every lookup.
class FixMessage {
 public:
  FixMessage() noexcept;

  // Parses `size` bytes of tag=value<SOH> fields. On failure the table is empty and
  // error_offset() locates the offending field.
  ParseStatus parse(const char* data, std::size_t size) noexcept;

  // Returns the status of the last parse.
  ParseStatus status() const noexcept { return status_; }

  // Returns the byte offset of the field the last parse failed on.
  std::size_t error_offset() const noexcept { return error_offset_; }

  // Returns a human description of the last parse failure ("" after a success).
  std::string error_reason() const;

  // Returns the message bytes.
  std::string_view data() const noexcept { return std::string_view(data_, size_); }

  // Returns the number of fields.
  std::size_t field_count() const noexcept { return count_; }

  // Returns the field table: field_count() fields in wire order.
  const Field* fields() const noexcept { return fields_.data(); }

  // Returns field `index` (< field_count()).
  const Field& field(std::size_t index) const noexcept { return fields_[index]; }

  // Returns the value of field `index` (< field_count()).
  std::string_view value(std::size_t index) const noexcept {
    return std::string_view(data_ + fields_[index].offset, fields_[index].length);
  }

  // Returns the index of the first field with `tag`, or -1.
  int find(std::uint32_t tag) const noexcept;

  // Returns true and sets `value` to the first value of `tag`; false when the tag is absent.
  bool get(std::uint32_t tag, std::string_view& value) const noexcept;

  // Returns the number of fields with `tag`.
  std::size_t count(std::uint32_t tag) const noexcept;

  // Returns MsgSeqNum (34), or 0 when it is absent, not a number or not positive.
  std::uint64_t seq_num() const noexcept;

  // Returns true when PossDupFlag (43) is "Y".
  bool poss_dup() const noexcept;

 private:
  std::array<Field, kMaxFields> fields_;  // Only the first count_ are meaningful.
  std::array<std::uint16_t, kDirectTags> first_;  // Tag -> index of its first field, or kAbsent.
  const char* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint32_t count_ = 0;
  std::size_t error_offset_ = 0;
  ParseStatus status_ = ParseStatus::kEmpty;

  ParseStatus fail(ParseStatus status, std::size_t offset) noexcept;
};

// ---- encoding --------------------------------------------------------------------------------

// Outcome of a FixEncoder call.
enum class EncodeStatus : std::uint8_t {
  kOk = 0,
  kBadTag = 1,        // A tag is 0 or above kMaxTag.
  kEmptyValue = 2,    // A value is empty (FIX forbids fields without a value).
  kValueHasSoh = 3,   // A value holds SOH and the tag is not a data field.
  kTooLong = 4,       // The message would exceed max_message_bytes.
  kBadHeader = 5,     // An empty or SOH-holding BeginString, MsgType or CompID, or a
                      // BeginString longer than kMaxBeginStringBytes.
  kReservedTag = 6,   // A body field with a tag the encoder writes itself (8, 9, 10, 34, 35,
                      // 43, 49, 52, 56, 122).
};

// Returns a short, stable name for an encode status ("value_has_soh").
std::string_view encode_status_name(EncodeStatus status) noexcept;

// The standard header of a message to encode.
struct HeaderFields {
  std::string_view begin_string;         // 8: "FIX.4.2", "FIX.4.4".
  std::string_view msg_type;             // 35.
  std::string_view sender_comp_id;       // 49.
  std::string_view target_comp_id;       // 56.
  std::uint64_t seq_num = 0;             // 34.
  std::int64_t sending_time_ns = 0;      // 52, ns since the epoch (UTC), written with ms.
  bool poss_dup = false;                 // 43=Y and 122 when true.
  std::int64_t orig_sending_time_ns = 0; // 122; 0 means the sending time.
};

// Writes messages into one reusable buffer: header 8, 9, 35, 49, 56, 34, 52 (43, 122), the body
// fields in order, then 10, with BodyLength and CheckSum computed. Nothing allocates after the
// constructor.
class FixEncoder {
 public:
  // Prepares an encoder for messages whose BodyLength is at most `max_message_bytes` (>= 1).
  explicit FixEncoder(std::size_t max_message_bytes = 65536);

  // Starts a message, dropping any unfinished one.
  EncodeStatus begin(const HeaderFields& header) noexcept;

  // Appends a body field with a text value. Tags the header and trailer own are refused.
  EncodeStatus add(std::uint32_t tag, std::string_view value) noexcept;

  // Appends a body field with an integer value.
  EncodeStatus add_int(std::uint32_t tag, std::int64_t value) noexcept;

  // Writes BodyLength and the trailer; returns the whole message (valid until the next begin),
  // or an empty view when the message is too long or begin() failed.
  std::string_view finish() noexcept;

  // Returns the tag of the last refused field (0 for a header problem).
  std::uint32_t error_tag() const noexcept { return error_tag_; }

 private:
  EncodeStatus put(std::uint32_t tag, std::string_view value) noexcept;
  EncodeStatus fail(EncodeStatus status, std::uint32_t tag) noexcept;

  std::vector<char> buffer_;
  std::size_t max_message_bytes_;
  std::size_t end_ = 0;          // One past the last byte written.
  std::array<char, kMaxBeginStringBytes> begin_string_{};
  std::size_t begin_string_size_ = 0;
  EncodeStatus status_ = EncodeStatus::kOk;
  std::uint32_t error_tag_ = 0;
};

// ---- timestamps ------------------------------------------------------------------------------

// Outcome of parse_utc_timestamp.
enum class TimestampStatus : std::uint8_t {
  kOk = 0,
  kBadFormat = 1,    // Not YYYYMMDD-HH:MM:SS with 0, 3, 6 or 9 fractional digits.
  kBadDate = 2,      // Month or day out of range.
  kBadTime = 3,      // Hour, minute or second out of range.
  kOutOfRange = 4,   // Outside what int64 nanoseconds since the epoch can hold.
};

// Returns a short, stable name for a timestamp status ("bad_date").
std::string_view timestamp_status_name(TimestampStatus status) noexcept;

// Writes ns since the epoch as a UTCTimestamp with `fraction_digits` (0, 3, 6 or 9; truncated)
// into `out` (kMaxTimestampBytes); returns the length, or 0 for other digit counts.
std::size_t format_utc_timestamp(std::int64_t ns, int fraction_digits, char* out) noexcept;

// Parses a UTCTimestamp with seconds, ms, us or ns precision into ns since the epoch.
TimestampStatus parse_utc_timestamp(std::string_view text, std::int64_t& ns) noexcept;

// ---- prices ----------------------------------------------------------------------------------

// A tick size as an exact decimal: units * 10^-scale USD (0.0001 is {1, 4}).
struct TickSize {
  std::int64_t units = 1;  // Positive.
  int scale = 4;           // Decimal places, 0..9.
};

// Returns true and sets `tick` when `tick_usd` is a positive decimal with at most 9 places.
bool tick_size_from_usd(double tick_usd, TickSize& tick) noexcept;

// Outcome of price_from_fix.
enum class PriceStatus : std::uint8_t {
  kOk = 0,
  kBadFormat = 1,    // Not [-]digits[.digits].
  kSubTick = 2,      // Not a whole number of ticks.
  kOverflow = 3,     // Too many ticks for int64.
};

// Returns a short, stable name for a price status ("sub_tick").
std::string_view price_status_name(PriceStatus status) noexcept;

// Writes `price_ticks` ticks as an exact FIX decimal without trailing zeros ("150.25", "150",
// "-0.5") into `out` (kMaxPriceBytes); returns the length, or 0 when the USD amount overflows.
std::size_t price_to_fix(std::int64_t price_ticks, TickSize tick, char* out) noexcept;

// Parses a FIX decimal price into a whole number of ticks.
PriceStatus price_from_fix(std::string_view text, TickSize tick, std::int64_t& price_ticks) noexcept;

}  // namespace sor::fix
