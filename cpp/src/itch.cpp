#include "sor/itch.hpp"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <utility>

namespace sor::itch {
namespace {

constexpr std::size_t kLocateCount = 65536;
constexpr std::size_t kHeaderBytes = 11;  // type, locate, tracking number, timestamp
constexpr std::int64_t kMaxTimestamp = (std::int64_t{1} << 48) - 1;

constexpr std::array<std::uint8_t, 256> make_lengths() {
  std::array<std::uint8_t, 256> lengths{};
  lengths['S'] = 12;
  lengths['R'] = 39;
  lengths['H'] = 25;
  lengths['Y'] = 20;
  lengths['L'] = 26;
  lengths['V'] = 35;
  lengths['W'] = 12;
  lengths['K'] = 28;
  lengths['J'] = 35;
  lengths['h'] = 21;
  lengths['A'] = 36;
  lengths['F'] = 40;
  lengths['E'] = 31;
  lengths['C'] = 36;
  lengths['X'] = 23;
  lengths['D'] = 19;
  lengths['U'] = 35;
  lengths['P'] = 44;
  lengths['Q'] = 40;
  lengths['B'] = 19;
  lengths['I'] = 50;
  lengths['N'] = 20;
  lengths['O'] = 48;
  return lengths;
}

constexpr std::array<std::uint8_t, 256> kLengths = make_lengths();

inline std::uint16_t read16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

inline std::uint32_t read32(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

inline std::uint64_t read48(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 6; ++i) v = (v << 8) | p[i];
  return v;
}

inline std::uint64_t read64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

inline void write16(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

inline void write32(std::uint8_t* p, std::uint32_t v) noexcept {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

inline void write48(std::uint8_t* p, std::uint64_t v) noexcept {
  for (int i = 5; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

inline void write64(std::uint8_t* p, std::uint64_t v) noexcept {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

// Symbols are keyed as their 8 space-padded wire bytes so lookups never build a string.
inline std::uint64_t symbol_key(const char* symbol, std::size_t length) noexcept {
  std::uint8_t padded[8];
  std::memset(padded, ' ', sizeof padded);
  std::memcpy(padded, symbol, length < 8 ? length : 8);
  return read64(padded);
}

// Printable form of a type byte for error messages.
struct TypeName {
  char text[16];
  explicit TypeName(std::uint8_t type) noexcept {
    if (type >= 0x20 && type < 0x7f) {
      std::snprintf(text, sizeof text, "'%c'", static_cast<char>(type));
    } else {
      std::snprintf(text, sizeof text, "0x%02x", type);
    }
  }
};

Side wire_side(std::uint8_t code) noexcept {
  if (code == 'B') return Side::kBuy;
  if (code == 'S') return Side::kSell;
  return Side::kNone;
}

}  // namespace

std::size_t message_length(char type) noexcept {
  return kLengths[static_cast<std::uint8_t>(type)];
}

// ------------------------------------------------------------------------------------------
// Decoder

ItchDecoder::ItchDecoder(DecoderOptions options)
    : options_(std::move(options)),
      locate_to_instrument_(kLocateCount, kUnmappedInstrument),
      locate_to_directory_(kLocateCount, -1) {
  if (options_.instruments) {
    symbol_to_instrument_.reserve(options_.instruments->size());
    for (const auto& [symbol, instrument_id] : *options_.instruments) {
      // A symbol longer than the 8-byte wire field can never match a directory entry.
      if (symbol.size() <= 8) {
        symbol_to_instrument_[symbol_key(symbol.data(), symbol.size())] = instrument_id;
      }
    }
  } else {
    for (std::size_t locate = 0; locate < kLocateCount; ++locate) {
      locate_to_instrument_[locate] = static_cast<std::uint32_t>(locate);
    }
  }
  directory_.reserve(1024);
}

Status ItchDecoder::fail(Status status, std::uint64_t offset, const char* format, ...) noexcept {
  status_ = status;
  error_offset_ = offset;
  va_list args;
  va_start(args, format);
  std::vsnprintf(reason_.data(), reason_.size(), format, args);
  va_end(args);
  return status;
}

std::size_t ItchDecoder::max_events(std::size_t size) const noexcept {
  // The shortest message with its length prefix is 2 + 12 bytes.
  return (size + pending_size_) / 14 + 1;
}

Status ItchDecoder::decode(const std::uint8_t* data, std::size_t size,
                           std::vector<MdEvent>& out) noexcept {
  if (status_ != Status::kOk) return status_;
  return options_.framing == Framing::kFile ? decode_file(data, size, out)
                                            : decode_packet(data, size, out);
}

Status ItchDecoder::finish() noexcept {
  if (status_ != Status::kOk) return status_;
  if (pending_size_ > 0) {
    const std::uint64_t offset = bytes_fed_ - pending_size_;
    if (pending_size_ < 2) {
      return fail(Status::kTruncated, offset,
                  "stream ends inside the 2-byte length prefix of a frame (1 byte present)");
    }
    return fail(Status::kTruncated, offset,
                "stream ends inside a frame: %zu of %u bytes present", pending_size_,
                2u + read16(pending_.data()));
  }
  return Status::kOk;
}

Status ItchDecoder::check_header(const std::uint8_t* frame, std::size_t available,
                                 std::uint64_t offset) noexcept {
  if (available < 2) return Status::kOk;
  const std::uint16_t length = read16(frame);
  if (length == 0) return fail(Status::kMalformed, offset, "frame declares 0 bytes");
  if (available < 3) return Status::kOk;
  const std::size_t expected = kLengths[frame[2]];
  if (expected == 0) {
    return fail(Status::kMalformed, offset, "unknown message type %s",
                TypeName(frame[2]).text);
  }
  if (expected != length) {
    return fail(Status::kMalformed, offset, "message type %s must be %zu bytes, frame declares %u",
                TypeName(frame[2]).text, expected, length);
  }
  return Status::kOk;
}

Status ItchDecoder::decode_file(const std::uint8_t* data, std::size_t size,
                                std::vector<MdEvent>& out) noexcept {
  const std::uint64_t base = bytes_fed_;
  bytes_fed_ += size;
  std::size_t pos = 0;

  if (pending_size_ > 0) {
    // Validating the header as soon as it is complete bounds the pending frame to 52 bytes.
    const std::uint64_t frame_offset = base - pending_size_;
    while (pending_size_ < 3 && pos < size) pending_[pending_size_++] = data[pos++];
    if (Status s = check_header(pending_.data(), pending_size_, frame_offset); s != Status::kOk) {
      return s;
    }
    if (pending_size_ < 3) return Status::kOk;
    const std::size_t total = 2u + read16(pending_.data());
    const std::size_t take = std::min(total - pending_size_, size - pos);
    std::memcpy(pending_.data() + pending_size_, data + pos, take);
    pending_size_ += take;
    pos += take;
    if (pending_size_ < total) return Status::kOk;
    pending_size_ = 0;
    if (Status s = decode_message(pending_.data() + 2, total - 2, next_sequence_, frame_offset, out);
        s != Status::kOk) {
      return s;
    }
    ++next_sequence_;
  }

  while (size - pos >= 3) {
    const std::uint64_t frame_offset = base + pos;
    if (Status s = check_header(data + pos, size - pos, frame_offset); s != Status::kOk) return s;
    const std::size_t total = 2u + read16(data + pos);
    if (size - pos < total) break;
    if (Status s = decode_message(data + pos + 2, total - 2, next_sequence_, frame_offset, out);
        s != Status::kOk) {
      return s;
    }
    ++next_sequence_;
    pos += total;
  }

  if (pos < size) {
    if (Status s = check_header(data + pos, size - pos, base + pos); s != Status::kOk) return s;
    pending_size_ = size - pos;
    std::memcpy(pending_.data(), data + pos, pending_size_);
  }
  return Status::kOk;
}

Status ItchDecoder::decode_packet(const std::uint8_t* data, std::size_t size,
                                  std::vector<MdEvent>& out) noexcept {
  const std::uint64_t base = bytes_fed_;
  bytes_fed_ += size;
  if (size < kMoldHeaderBytes) {
    return fail(Status::kTruncated, base,
                "MoldUDP64 packet of %zu bytes is shorter than its 20-byte header", size);
  }
  const std::uint64_t first_sequence = read64(data + 10);
  const std::uint16_t count = read16(data + 18);
  std::size_t pos = kMoldHeaderBytes;
  if (count == kMoldEndOfSession) {
    end_of_session_ = true;
  } else {
    for (std::uint16_t i = 0; i < count; ++i) {
      const std::uint64_t message_offset = base + pos;
      if (pos == size) {
        return fail(Status::kMalformed, message_offset,
                    "MoldUDP64 packet declares %u messages but holds only %u", count, i);
      }
      if (size - pos < 2) {
        return fail(Status::kTruncated, message_offset,
                    "MoldUDP64 packet ends inside the length prefix of message %u", i);
      }
      const std::size_t length = read16(data + pos);
      if (size - pos - 2 < length) {
        return fail(Status::kTruncated, message_offset,
                    "MoldUDP64 message %u declares %zu bytes but the packet has %zu left", i,
                    length, size - pos - 2);
      }
      if (Status s = decode_message(data + pos + 2, length, first_sequence + i, message_offset, out);
          s != Status::kOk) {
        return s;
      }
      pos += 2 + length;
    }
  }
  if (pos != size) {
    return fail(Status::kMalformed, base + pos,
                "MoldUDP64 packet has %zu bytes after its %u declared messages", size - pos,
                count == kMoldEndOfSession ? 0u : count);
  }
  return Status::kOk;
}

Status ItchDecoder::decode_message(const std::uint8_t* m, std::size_t length,
                                   std::uint64_t sequence, std::uint64_t offset,
                                   std::vector<MdEvent>& out) noexcept {
  if (length == 0) return fail(Status::kMalformed, offset, "message declares 0 bytes");
  const std::uint8_t type = m[0];
  const std::size_t expected = kLengths[type];
  if (expected == 0) {
    return fail(Status::kMalformed, offset, "unknown message type %s", TypeName(type).text);
  }
  if (expected != length) {
    return fail(Status::kMalformed, offset, "message type %s must be %zu bytes, frame declares %zu",
                TypeName(type).text, expected, length);
  }

  const std::uint16_t locate = read16(m + 1);
  MdEvent e{};
  e.ts_event = options_.session_date_ns + static_cast<std::int64_t>(read48(m + 5));
  e.ts_recv = options_.ts_recv != 0 ? options_.ts_recv : e.ts_event;
  e.sequence = sequence;
  e.venue_id = options_.venue_id;

  auto require_side = [&](std::uint8_t code) -> bool {
    e.side = wire_side(code);
    if (e.side != Side::kNone) return true;
    fail(Status::kMalformed, offset, "message type %s has side %s, must be 'B' or 'S'",
         TypeName(type).text, TypeName(code).text);
    return false;
  };

  switch (type) {
    case 'A':
    case 'F':
      if (!require_side(m[19])) return status_;
      e.kind = EventKind::kAdd;
      e.order_id = read64(m + 11);
      e.quantity = read32(m + 20);
      e.price_ticks = read32(m + 32);
      break;
    case 'E':
      e.kind = EventKind::kExecute;
      e.order_id = read64(m + 11);
      e.quantity = read32(m + 19);
      e.related_id = read64(m + 23);
      e.flags = kFlagPrintable;
      break;
    case 'C':
      e.kind = EventKind::kExecute;
      e.order_id = read64(m + 11);
      e.quantity = read32(m + 19);
      e.related_id = read64(m + 23);
      e.flags = m[31] == 'Y' ? std::uint8_t{kFlagPrintable} : std::uint8_t{0};
      e.price_ticks = read32(m + 32);
      break;
    case 'X':
      e.kind = EventKind::kCancel;
      e.order_id = read64(m + 11);
      e.quantity = read32(m + 19);
      break;
    case 'D':
      e.kind = EventKind::kDelete;
      e.order_id = read64(m + 11);
      break;
    case 'U':
      e.kind = EventKind::kReplace;
      e.order_id = read64(m + 11);
      e.related_id = read64(m + 19);
      e.quantity = read32(m + 27);
      e.price_ticks = read32(m + 31);
      break;
    case 'P':
      if (!require_side(m[19])) return status_;
      e.kind = EventKind::kTrade;
      e.order_id = read64(m + 11);
      e.quantity = read32(m + 20);
      e.price_ticks = read32(m + 32);
      e.related_id = read64(m + 36);
      e.flags = kFlagPrintable;
      break;
    case 'Q':
      e.kind = EventKind::kTrade;
      e.quantity = static_cast<std::int64_t>(read64(m + 11));
      e.price_ticks = read32(m + 27);
      e.related_id = read64(m + 31);
      e.order_id = m[39];
      e.flags = kFlagCross | kFlagPrintable;
      break;
    case 'B':
      e.kind = EventKind::kBrokenTrade;
      e.related_id = read64(m + 11);
      break;
    case 'R': {
      const char* symbol = reinterpret_cast<const char*>(m + 11);
      if (options_.instruments) {
        const auto found = symbol_to_instrument_.find(symbol_key(symbol, 8));
        locate_to_instrument_[locate] =
            found == symbol_to_instrument_.end() ? kUnmappedInstrument : found->second;
      }
      std::int32_t& index = locate_to_directory_[locate];
      if (index < 0) {
        index = static_cast<std::int32_t>(directory_.size());
        directory_.emplace_back();
      }
      DirectoryEntry& entry = directory_[static_cast<std::size_t>(index)];
      entry.stock_locate = locate;
      std::size_t symbol_length = 8;
      while (symbol_length > 0 && symbol[symbol_length - 1] == ' ') --symbol_length;
      entry.symbol.fill('\0');
      std::memcpy(entry.symbol.data(), symbol, symbol_length);
      entry.market_category = static_cast<char>(m[19]);
      entry.financial_status = static_cast<char>(m[20]);
      entry.round_lot_size = read32(m + 21);
      entry.instrument_id = locate_to_instrument_[locate];
      e.kind = EventKind::kStatus;
      e.related_id = type;
      break;
    }
    case 'S':
      e.kind = EventKind::kStatus;
      e.related_id = type;
      e.order_id = m[11];
      break;
    default:
      e.kind = EventKind::kStatus;
      e.related_id = type;
      break;
  }

  e.instrument_id = locate_to_instrument_[locate];
  if (e.instrument_id == kUnmappedInstrument) {
    // Unmapped messages still take their sequence number so books see no false gaps.
    const std::uint64_t keep_order_id = type == 'S' ? e.order_id : 0;
    const std::int64_t ts_event = e.ts_event;
    const std::int64_t ts_recv = e.ts_recv;
    e = MdEvent{};
    e.ts_event = ts_event;
    e.ts_recv = ts_recv;
    e.sequence = sequence;
    e.venue_id = options_.venue_id;
    e.instrument_id = kUnmappedInstrument;
    e.kind = EventKind::kStatus;
    e.related_id = type;
    e.order_id = keep_order_id;
    if (locate != 0) ++unmapped_messages_;
  }
  ++counts_[type];
  out.push_back(e);
  return Status::kOk;
}

// ------------------------------------------------------------------------------------------
// Encoder

ItchEncoder::ItchEncoder(EncoderOptions options)
    : options_(std::move(options)), next_sequence_(options_.first_sequence) {
  session_.fill(' ');
  std::memcpy(session_.data(), options_.session.data(),
              std::min(options_.session.size(), session_.size()));
}

Status ItchEncoder::fail(Status status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(reason_.data(), reason_.size(), format, args);
  va_end(args);
  return status;
}

Status ItchEncoder::locate_of(std::uint32_t instrument_id, std::uint16_t& stock_locate) {
  if (options_.stock_locates) {
    const auto found = options_.stock_locates->find(instrument_id);
    if (found == options_.stock_locates->end()) {
      return fail(Status::kUnknownInstrument, "instrument %u has no stock locate", instrument_id);
    }
    stock_locate = found->second;
    return Status::kOk;
  }
  if (instrument_id > 0xFFFF) {
    return fail(Status::kUnknownInstrument,
                "instrument %u does not fit a 16-bit stock locate", instrument_id);
  }
  stock_locate = static_cast<std::uint16_t>(instrument_id);
  return Status::kOk;
}

void ItchEncoder::write_symbol(std::uint8_t* at, std::uint16_t stock_locate) const {
  const auto found = locate_symbols_.find(stock_locate);
  if (found == locate_symbols_.end()) {
    std::memset(at, ' ', 8);
  } else {
    std::memcpy(at, found->second.data(), 8);
  }
}

void ItchEncoder::open_packet() {
  packet_.clear();
  packet_.resize(kMoldHeaderBytes);
  std::memcpy(packet_.data(), session_.data(), session_.size());
  write64(packet_.data() + 10, next_sequence_);
  packet_count_ = 0;
  packet_open_ = true;
}

void ItchEncoder::flush() {
  if (!packet_open_) return;
  write16(packet_.data() + 18, packet_count_);
  packets_.push_back(std::move(packet_));
  packet_ = {};
  packet_open_ = false;
}

void ItchEncoder::end_session() {
  if (options_.framing != Framing::kMoldUdp64) return;
  flush();
  open_packet();
  packet_count_ = kMoldEndOfSession;
  flush();
}

Status ItchEncoder::begin(char type, std::uint16_t stock_locate, std::int64_t ts_event,
                          std::uint8_t*& body) {
  std::int64_t since_midnight = 0;
  if (__builtin_sub_overflow(ts_event, options_.session_date_ns, &since_midnight) ||
      since_midnight < 0 || since_midnight > kMaxTimestamp) {
    return fail(Status::kMalformed,
                "ts_event %lld is not within 2^48 ns after session_date_ns %lld",
                static_cast<long long>(ts_event),
                static_cast<long long>(options_.session_date_ns));
  }
  const std::size_t length = message_length(type);
  std::vector<std::uint8_t>* target = &bytes_;
  if (options_.framing == Framing::kMoldUdp64) {
    if (options_.max_packet_bytes < kMoldHeaderBytes + 2 + length) {
      return fail(Status::kCapacityExceeded,
                  "max_packet_bytes %zu cannot hold a %zu-byte message", options_.max_packet_bytes,
                  length);
    }
    if (options_.max_messages_per_packet == 0 ||
        options_.max_messages_per_packet >= kMoldEndOfSession) {
      return fail(Status::kCapacityExceeded, "max_messages_per_packet must be 1..65534, not %zu",
                  options_.max_messages_per_packet);
    }
    if (packet_open_ && (packet_.size() + 2 + length > options_.max_packet_bytes ||
                         packet_count_ >= options_.max_messages_per_packet)) {
      flush();
    }
    if (!packet_open_) open_packet();
    ++packet_count_;
    target = &packet_;
  }
  const std::size_t start = target->size();
  target->resize(start + 2 + length);
  std::uint8_t* frame = target->data() + start;
  write16(frame, static_cast<std::uint16_t>(length));
  std::uint8_t* m = frame + 2;
  m[0] = static_cast<std::uint8_t>(type);
  write16(m + 1, stock_locate);
  write16(m + 3, 0);
  write48(m + 5, static_cast<std::uint64_t>(since_midnight));
  body = m;
  ++next_sequence_;
  ++messages_written_;
  return Status::kOk;
}

Status ItchEncoder::system_event(char code, std::int64_t ts_event) {
  std::uint8_t* m = nullptr;
  if (Status s = begin('S', 0, ts_event, m); s != Status::kOk) return s;
  m[11] = static_cast<std::uint8_t>(code);
  return Status::kOk;
}

Status ItchEncoder::stock_directory(std::uint16_t stock_locate, std::string_view symbol,
                                    std::uint32_t round_lot_size, std::int64_t ts_event,
                                    char market_category, char financial_status) {
  if (symbol.empty() || symbol.size() > 8) {
    return fail(Status::kMalformed, "symbol '%.*s' must be 1 to 8 characters",
                static_cast<int>(symbol.size()), symbol.data());
  }
  std::uint8_t* m = nullptr;
  if (Status s = begin('R', stock_locate, ts_event, m); s != Status::kOk) return s;
  std::array<char, 8> padded;
  padded.fill(' ');
  std::memcpy(padded.data(), symbol.data(), symbol.size());
  locate_symbols_[stock_locate] = padded;
  std::memcpy(m + 11, padded.data(), 8);
  m[19] = static_cast<std::uint8_t>(market_category);
  m[20] = static_cast<std::uint8_t>(financial_status);
  write32(m + 21, round_lot_size);
  m[25] = 'N';                  // round lots only
  m[26] = 'C';                  // issue classification: common stock
  std::memcpy(m + 27, "Z ", 2); // issue sub-type: not applicable
  m[29] = 'P';                  // authenticity: live/production
  m[30] = 'N';                  // short sale threshold indicator
  m[31] = ' ';                  // IPO flag
  m[32] = '1';                  // LULD reference price tier
  m[33] = 'N';                  // ETP flag
  write32(m + 34, 0);           // ETP leverage factor
  m[38] = 'N';                  // inverse indicator
  return Status::kOk;
}

Status ItchEncoder::encode(const MdEvent& e) {
  std::uint16_t locate = 0;
  if (Status s = locate_of(e.instrument_id, locate); s != Status::kOk) return s;

  // Every field is validated before begin() so a refused event writes nothing.
  auto side_code = [&](std::uint8_t& code) -> Status {
    if (e.side == Side::kBuy) code = 'B';
    else if (e.side == Side::kSell) code = 'S';
    else return fail(Status::kInvalidSide, "side %u is neither buy nor sell",
                     static_cast<unsigned>(e.side));
    return Status::kOk;
  };
  auto quantity32 = [&]() -> Status {
    if (e.quantity < 0 || e.quantity > 0xFFFFFFFFll) {
      return fail(Status::kInvalidQuantity, "quantity %lld does not fit 4 unsigned bytes",
                  static_cast<long long>(e.quantity));
    }
    return Status::kOk;
  };
  auto price32 = [&]() -> Status {
    if (e.price_ticks < 0 || e.price_ticks > 0xFFFFFFFFll) {
      return fail(Status::kInvalidPrice, "price_ticks %lld does not fit a 4-byte ITCH price",
                  static_cast<long long>(e.price_ticks));
    }
    return Status::kOk;
  };
  const auto q32 = static_cast<std::uint32_t>(e.quantity);
  const auto p32 = static_cast<std::uint32_t>(e.price_ticks);

  std::uint8_t* m = nullptr;
  std::uint8_t side = 0;
  switch (e.kind) {
    case EventKind::kAdd:
      if (Status s = side_code(side); s != Status::kOk) return s;
      if (Status s = quantity32(); s != Status::kOk) return s;
      if (Status s = price32(); s != Status::kOk) return s;
      if (Status s = begin('A', locate, e.ts_event, m); s != Status::kOk) return s;
      write64(m + 11, e.order_id);
      m[19] = side;
      write32(m + 20, q32);
      write_symbol(m + 24, locate);
      write32(m + 32, p32);
      return Status::kOk;
    case EventKind::kExecute:
      if (Status s = quantity32(); s != Status::kOk) return s;
      if (e.price_ticks == 0 && (e.flags & kFlagPrintable)) {
        if (Status s = begin('E', locate, e.ts_event, m); s != Status::kOk) return s;
        write64(m + 11, e.order_id);
        write32(m + 19, q32);
        write64(m + 23, e.related_id);
        return Status::kOk;
      }
      if (Status s = price32(); s != Status::kOk) return s;
      if (Status s = begin('C', locate, e.ts_event, m); s != Status::kOk) return s;
      write64(m + 11, e.order_id);
      write32(m + 19, q32);
      write64(m + 23, e.related_id);
      m[31] = (e.flags & kFlagPrintable) ? 'Y' : 'N';
      write32(m + 32, p32);
      return Status::kOk;
    case EventKind::kCancel:
      if (Status s = quantity32(); s != Status::kOk) return s;
      if (Status s = begin('X', locate, e.ts_event, m); s != Status::kOk) return s;
      write64(m + 11, e.order_id);
      write32(m + 19, q32);
      return Status::kOk;
    case EventKind::kDelete:
      if (Status s = begin('D', locate, e.ts_event, m); s != Status::kOk) return s;
      write64(m + 11, e.order_id);
      return Status::kOk;
    case EventKind::kReplace:
      if (Status s = quantity32(); s != Status::kOk) return s;
      if (Status s = price32(); s != Status::kOk) return s;
      if (Status s = begin('U', locate, e.ts_event, m); s != Status::kOk) return s;
      write64(m + 11, e.order_id);
      write64(m + 19, e.related_id);
      write32(m + 27, q32);
      write32(m + 31, p32);
      return Status::kOk;
    case EventKind::kTrade:
      if (e.flags & kFlagCross) {
        if (e.quantity < 0) {
          return fail(Status::kInvalidQuantity, "cross quantity %lld is negative",
                      static_cast<long long>(e.quantity));
        }
        if (Status s = price32(); s != Status::kOk) return s;
        if (e.order_id == 0 || e.order_id > 0xFF) {
          return fail(Status::kMalformed,
                      "cross trade order_id %llu must hold the cross type character code",
                      static_cast<unsigned long long>(e.order_id));
        }
        if (Status s = begin('Q', locate, e.ts_event, m); s != Status::kOk) return s;
        write64(m + 11, static_cast<std::uint64_t>(e.quantity));
        write_symbol(m + 19, locate);
        write32(m + 27, p32);
        write64(m + 31, e.related_id);
        m[39] = static_cast<std::uint8_t>(e.order_id);
        return Status::kOk;
      }
      if (Status s = side_code(side); s != Status::kOk) return s;
      if (Status s = quantity32(); s != Status::kOk) return s;
      if (Status s = price32(); s != Status::kOk) return s;
      if (Status s = begin('P', locate, e.ts_event, m); s != Status::kOk) return s;
      write64(m + 11, e.order_id);
      m[19] = side;
      write32(m + 20, q32);
      write_symbol(m + 24, locate);
      write32(m + 32, p32);
      write64(m + 36, e.related_id);
      return Status::kOk;
    case EventKind::kBrokenTrade:
      if (Status s = begin('B', locate, e.ts_event, m); s != Status::kOk) return s;
      write64(m + 11, e.related_id);
      return Status::kOk;
    default:
      return fail(Status::kInvalidKind, "event kind %u has no ITCH message",
                  static_cast<unsigned>(e.kind));
  }
}

BatchResult ItchEncoder::encode(const MdEvent* events, std::size_t count) {
  BatchResult result;
  for (; result.applied < count; ++result.applied) {
    result.status = encode(events[result.applied]);
    if (result.status != Status::kOk) break;
  }
  return result;
}

}  // namespace sor::itch
