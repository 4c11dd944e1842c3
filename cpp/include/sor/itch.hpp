// NASDAQ TotalView-ITCH 5.0: decoding to MdEvent and encoding from it, in file framing
// (2-byte length prefix per message) or MoldUDP64 packets. No Python here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sor/status.hpp"
#include "sor/types.hpp"

namespace sor::itch {

// How ITCH messages are wrapped on the wire.
enum class Framing : std::uint8_t {
  kFile = 0,       // Each message is prefixed by its 2-byte big-endian length (NASDAQ files).
  kMoldUdp64 = 1,  // One MoldUDP64 packet per call: session, sequence, count, framed messages.
};

// Size in bytes of the MoldUDP64 packet header (session 10, sequence 8, count 2).
inline constexpr std::size_t kMoldHeaderBytes = 20;

// Message count of a MoldUDP64 end-of-session packet.
inline constexpr std::uint16_t kMoldEndOfSession = 0xFFFF;

// Instrument id of events whose stock locate is not bound when an instrument map is in use.
inline constexpr std::uint32_t kUnmappedInstrument = 0xFFFFFFFFu;

// Returns the fixed length in bytes of ITCH 5.0 message `type`, or 0 for an unknown type.
std::size_t message_length(char type) noexcept;

// Options fixed when a decoder is constructed.
struct DecoderOptions {
  Framing framing = Framing::kFile;  // Wire framing of the input.
  std::uint8_t venue_id = 0;         // Venue id written into every event.
  std::int64_t session_date_ns = 0;  // Epoch ns of the session's midnight; added to timestamps.
  std::int64_t ts_recv = 0;          // ts_recv of every event; 0 means use ts_event.
  // Symbol -> instrument id; when set, only stock-directory-bound locates map to instruments.
  std::optional<std::unordered_map<std::string, std::uint32_t>> instruments;
};

// One stock directory ('R') entry as last seen for its stock locate.
struct DirectoryEntry {
  std::uint16_t stock_locate = 0;         // Stock locate code.
  std::array<char, 9> symbol{};           // Symbol without trailing spaces, NUL-terminated.
  std::uint32_t round_lot_size = 0;       // Round lot size in shares.
  char market_category = ' ';             // Market category code.
  char financial_status = ' ';            // Financial status indicator code.
  std::uint32_t instrument_id = 0;        // Instrument the locate maps to (or kUnmappedInstrument).

  // Returns the symbol as a view.
  std::string_view symbol_view() const noexcept { return std::string_view(symbol.data()); }
};

// Decodes ITCH 5.0 into MdEvents; every sequenced message yields exactly one event.
class ItchDecoder {
 public:
  // Prepares the decoder: locate tables and the instrument map are built here, once.
  explicit ItchDecoder(DecoderOptions options);

  // Decodes `size` bytes (file framing: any chunk of the stream; MoldUDP64: one whole packet),
  // appending events to `out` (reserve max_events(size) first and nothing allocates). Stops at
  // the first error, keeping the events before it; the error then sticks to every later call.
  Status decode(const std::uint8_t* data, std::size_t size, std::vector<MdEvent>& out) noexcept;

  // Ends the stream: kTruncated when a partial file frame is left over, else the sticky status.
  Status finish() noexcept;

  // Returns the most events the next decode of `size` bytes can append (for reserve()).
  std::size_t max_events(std::size_t size) const noexcept;

  // Returns the status of the first error, or kOk.
  Status status() const noexcept { return status_; }

  // Returns the absolute byte offset (from the first byte ever fed) of the erroneous frame.
  std::uint64_t error_offset() const noexcept { return error_offset_; }

  // Returns a human description of the first error ("" when there is none).
  std::string_view error_reason() const noexcept { return std::string_view(reason_.data()); }

  // Returns the number of bytes fed so far.
  std::uint64_t bytes_fed() const noexcept { return bytes_fed_; }

  // Returns the number of bytes of an incomplete file frame held for the next call.
  std::size_t pending_bytes() const noexcept { return pending_size_; }

  // Returns true once a MoldUDP64 end-of-session packet has been seen.
  bool end_of_session() const noexcept { return end_of_session_; }

  // Returns how many messages of each type byte were decoded.
  const std::array<std::uint64_t, 256>& message_counts() const noexcept { return counts_; }

  // Returns how many messages had a non-zero stock locate not bound to an instrument.
  std::uint64_t unmapped_messages() const noexcept { return unmapped_messages_; }

  // Returns the stock directory entries in order of first appearance of their locate.
  const std::vector<DirectoryEntry>& directory() const noexcept { return directory_; }

  // Returns the options the decoder was built with.
  const DecoderOptions& options() const noexcept { return options_; }

 private:
  Status decode_file(const std::uint8_t* data, std::size_t size, std::vector<MdEvent>& out) noexcept;
  Status decode_packet(const std::uint8_t* data, std::size_t size, std::vector<MdEvent>& out) noexcept;
  Status check_header(const std::uint8_t* frame, std::size_t available, std::uint64_t offset) noexcept;
  Status decode_message(const std::uint8_t* message, std::size_t length, std::uint64_t sequence,
                        std::uint64_t offset, std::vector<MdEvent>& out) noexcept;
  Status fail(Status status, std::uint64_t offset, const char* format, ...) noexcept;

  DecoderOptions options_;
  std::unordered_map<std::uint64_t, std::uint32_t> symbol_to_instrument_;
  std::vector<std::uint32_t> locate_to_instrument_;
  std::vector<std::int32_t> locate_to_directory_;
  std::vector<DirectoryEntry> directory_;
  std::array<std::uint64_t, 256> counts_{};
  std::uint64_t unmapped_messages_ = 0;
  std::uint64_t bytes_fed_ = 0;
  std::uint64_t next_sequence_ = 1;
  std::array<std::uint8_t, 64> pending_{};
  std::size_t pending_size_ = 0;
  bool end_of_session_ = false;
  Status status_ = Status::kOk;
  std::uint64_t error_offset_ = 0;
  std::array<char, 192> reason_{};
};

// Options fixed when an encoder is constructed.
struct EncoderOptions {
  Framing framing = Framing::kFile;  // Wire framing of the output.
  std::int64_t session_date_ns = 0;  // Epoch ns of the session's midnight; subtracted from ts.
  std::string session = "SOR";       // MoldUDP64 session id, space-padded to 10 bytes.
  std::uint64_t first_sequence = 1;  // MoldUDP64 sequence number of the first message.
  std::size_t max_packet_bytes = 1400;       // Largest MoldUDP64 packet, header included.
  std::size_t max_messages_per_packet = 0xFFFE;  // Most messages in one MoldUDP64 packet.
  // Instrument id -> stock locate; when unset the locate is the instrument id itself.
  std::optional<std::unordered_map<std::uint32_t, std::uint16_t>> stock_locates;
};

// Writes valid ITCH 5.0 (tracking number 0) from MdEvents and a few status messages.
class ItchEncoder {
 public:
  // Prepares the encoder; options are validated by the first call that needs them.
  explicit ItchEncoder(EncoderOptions options);

  // Writes a system event ('S') with event `code` at epoch ns `ts_event`.
  Status system_event(char code, std::int64_t ts_event);

  // Writes a stock directory entry ('R') binding `stock_locate` to `symbol`.
  Status stock_directory(std::uint16_t stock_locate, std::string_view symbol,
                         std::uint32_t round_lot_size, std::int64_t ts_event,
                         char market_category = 'Q', char financial_status = 'N');

  // Writes the message for `event` (A, E, C, X, D, U, P, Q or B); other kinds are refused.
  Status encode(const MdEvent& event);

  // Writes `count` events in order, stopping at the first refused one.
  BatchResult encode(const MdEvent* events, std::size_t count);

  // Closes the open MoldUDP64 packet, if any (file framing: does nothing).
  void flush();

  // Closes the open packet and writes a MoldUDP64 end-of-session packet.
  void end_session();

  // Returns the file-framed bytes written so far.
  const std::vector<std::uint8_t>& bytes() const noexcept { return bytes_; }

  // Drops the file-framed bytes written so far (after the caller took them); state is kept.
  void clear_bytes() noexcept { bytes_.clear(); }

  // Returns the closed MoldUDP64 packets.
  const std::vector<std::vector<std::uint8_t>>& packets() const noexcept { return packets_; }

  // Returns a human description of the last refused call ("" when none).
  std::string_view error_reason() const noexcept { return std::string_view(reason_.data()); }

  // Returns the number of messages written.
  std::uint64_t messages_written() const noexcept { return messages_written_; }

 private:
  Status begin(char type, std::uint16_t stock_locate, std::int64_t ts_event,
               std::uint8_t*& body);
  Status locate_of(std::uint32_t instrument_id, std::uint16_t& stock_locate);
  void write_symbol(std::uint8_t* at, std::uint16_t stock_locate) const;
  void open_packet();
  Status fail(Status status, const char* format, ...);

  EncoderOptions options_;
  std::array<std::uint8_t, 10> session_{};
  std::unordered_map<std::uint16_t, std::array<char, 8>> locate_symbols_;
  std::vector<std::uint8_t> bytes_;
  std::vector<std::vector<std::uint8_t>> packets_;
  std::vector<std::uint8_t> packet_;
  std::uint16_t packet_count_ = 0;
  bool packet_open_ = false;
  std::uint64_t next_sequence_ = 1;
  std::uint64_t messages_written_ = 0;
  std::array<char, 192> reason_{};
};

}  // namespace sor::itch
