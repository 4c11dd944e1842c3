#include "sor/fix.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sor::fix {
namespace {

constexpr std::string_view kMessageStart = "8=FIX";
constexpr std::size_t kNoScan = static_cast<std::size_t>(-1);
constexpr std::uint16_t kAbsent = 0xFFFF;
static_assert(kMaxFields < kAbsent, "field indexes must fit the direct table");

// Room before the body for "8=<BeginString>|9=<BodyLength>|", and after it for "10=nnn|".
constexpr std::size_t kHeaderRoom = 2 + kMaxBeginStringBytes + 1 + 2 + kMaxBodyLengthDigits + 1;
constexpr std::size_t kTrailerBytes = 7;
static_assert(kHeaderRoom + kTrailerBytes <= kFramerSlackBytes,
              "the framer's slack must hold the header and trailer of the largest message");

constexpr std::int64_t kNsPerSecond = 1'000'000'000;
constexpr std::int64_t kSecondsPerDay = 86'400;
constexpr std::int64_t kNsPerDay = kNsPerSecond * kSecondsPerDay;

inline bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// Returns the first SOH in [p, end), or end. FIX values are short: one 16-byte compare usually
// finds it, where a memchr call costs more than the scan.
inline const char* find_soh(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
  const __m128i soh = _mm_set1_epi8(kSoh);
  while (end - p >= 16) {
    const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const int mask = _mm_movemask_epi8(_mm_cmpeq_epi8(block, soh));
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end && *p != kSoh) ++p;
  return p;
}

// Writes `value` in decimal at `out`; returns the length.
std::size_t write_uint(std::uint64_t value, char* out) noexcept {
  char digits[20];
  std::size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  for (std::size_t i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
  return n;
}

std::size_t write_int(std::int64_t value, char* out) noexcept {
  if (value >= 0) return write_uint(static_cast<std::uint64_t>(value), out);
  out[0] = '-';
  return 1 + write_uint(0 - static_cast<std::uint64_t>(value), out + 1);
}

void write_2(int value, char* out) noexcept {
  out[0] = static_cast<char>('0' + value / 10);
  out[1] = static_cast<char>('0' + value % 10);
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, days since 1970-01-01).
std::int64_t days_from_civil(std::int64_t y, int m, int d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void civil_from_days(std::int64_t z, std::int64_t& y, int& m, int& d) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = yoe + era * 400 + (m <= 2);
}

int days_in_month(std::int64_t y, int m) noexcept {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2) {
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return leap ? 29 : 28;
  }
  return kDays[m - 1];
}

// Reads `count` digits at `text`; false if any is not a digit.
bool read_digits(const char* text, std::size_t count, std::int64_t& value) noexcept {
  std::int64_t v = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (!is_digit(text[i])) return false;
    v = v * 10 + (text[i] - '0');
  }
  value = v;
  return true;
}

constexpr std::int64_t kPowersOf10[19] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
    1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
    100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
    1000000000000000000LL};

}  // namespace

// ---- framing ---------------------------------------------------------------------------------

std::string_view frame_status_name(FrameStatus status) noexcept {
  switch (status) {
    case FrameStatus::kOk: return "ok";
    case FrameStatus::kBadChecksum: return "bad_checksum";
    case FrameStatus::kBadBodyLength: return "bad_body_length";
    case FrameStatus::kGarbled: return "garbled";
    case FrameStatus::kTooLong: return "too_long";
  }
  return "unknown_status";
}

std::uint32_t checksum(const char* data, std::size_t size) noexcept {
  std::uint32_t sum = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) sum += bytes[i];
  return sum & 0xFF;
}

FixFramer::FixFramer(std::size_t max_message_bytes)
    : buffer_(std::max<std::size_t>(max_message_bytes, 1) + kFramerSlackBytes),
      max_message_bytes_(std::max<std::size_t>(max_message_bytes, 1)) {}

std::size_t FixFramer::append(const char* data, std::size_t size) noexcept {
  if (head_ == tail_) {
    head_ = tail_ = 0;
    scan_head_ = kNoScan;
  }
  if (buffer_.size() - tail_ < size && head_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + head_, tail_ - head_);
    tail_ -= head_;
    head_ = 0;
    scan_head_ = kNoScan;
  }
  const std::size_t taken = std::min(size, buffer_.size() - tail_);
  if (taken != 0) std::memcpy(buffer_.data() + tail_, data, taken);
  tail_ += taken;
  return taken;
}

void FixFramer::clear() noexcept {
  head_ = tail_ = 0;
  skipping_ = false;
  scan_head_ = kNoScan;
}

bool FixFramer::emit(Frame& frame, FrameStatus status, bool continued, std::size_t end) noexcept {
  if (end == head_) return false;
  frame.status = status;
  frame.continued = continued;
  frame.data = buffer_.data() + head_;
  frame.size = end - head_;
  head_ = end;
  scan_head_ = kNoScan;
  return true;
}

bool FixFramer::skip(Frame& frame, FrameStatus status, bool continued,
                     std::size_t search_from) noexcept {
  const char* base = buffer_.data();
  const std::string_view rest(base + search_from, tail_ - search_from);
  const std::size_t found = rest.find(kMessageStart);
  std::size_t end;
  if (found != std::string_view::npos) {
    end = search_from + found;
    skipping_ = false;
  } else {
    // Hold back a tail that may be the first bytes of "8=FIX"; the next append completes it.
    std::size_t keep = std::min<std::size_t>(kMessageStart.size() - 1, rest.size());
    while (keep > 0 && std::memcmp(base + tail_ - keep, kMessageStart.data(), keep) != 0) --keep;
    end = tail_ - keep;
    skipping_ = true;
    skip_status_ = status;
  }
  return emit(frame, status, continued, end);
}

bool FixFramer::message_boundary_before(const char* p, std::size_t available) noexcept {
  // A field end followed by "8=FIX": BeginString is only ever the first field of a message.
  constexpr std::string_view kBoundary = "\x01" "8=FIX";
  const std::string_view seen(p, available);
  if (seen.find(kBoundary, scan_offset_) != std::string_view::npos) return true;
  if (available >= kBoundary.size()) {
    scan_offset_ = std::max(scan_offset_, available - (kBoundary.size() - 1));
  }
  return false;
}

bool FixFramer::next(Frame& frame) noexcept {
  if (skipping_) {
    if (skip(frame, skip_status_, true, head_)) return true;
    if (skipping_) return false;
  }
  const std::size_t available = tail_ - head_;
  if (available == 0) return false;
  const char* p = buffer_.data() + head_;

  const std::size_t start_bytes = std::min(available, kMessageStart.size());
  if (std::memcmp(p, kMessageStart.data(), start_bytes) != 0) {
    return skip(frame, FrameStatus::kGarbled, false, head_ + 1);
  }
  if (available <= kMessageStart.size()) return false;

  // BeginString ends at an SOH within kMaxBeginStringBytes of "8=".
  constexpr std::size_t kBeginLimit = 2 + kMaxBeginStringBytes + 1;
  const std::size_t begin_scan = std::min(available, kBeginLimit) - kMessageStart.size();
  const void* soh = std::memchr(p + kMessageStart.size(), kSoh, begin_scan);
  if (soh == nullptr) {
    if (available >= kBeginLimit) return skip(frame, FrameStatus::kGarbled, false, head_ + 1);
    return false;
  }
  std::size_t pos = static_cast<std::size_t>(static_cast<const char*>(soh) - p) + 1;

  // "9=" and up to kMaxBodyLengthDigits digits, then SOH.
  if (pos >= available) return false;
  if (p[pos] != '9') return skip(frame, FrameStatus::kBadBodyLength, false, head_ + 1);
  if (pos + 1 >= available) return false;
  if (p[pos + 1] != '=') return skip(frame, FrameStatus::kBadBodyLength, false, head_ + 1);
  pos += 2;
  std::size_t body_length = 0;
  std::size_t digits = 0;
  for (;; ++pos) {
    if (pos >= available) return false;
    const char c = p[pos];
    if (c == kSoh) break;
    if (!is_digit(c) || digits == kMaxBodyLengthDigits) {
      return skip(frame, FrameStatus::kBadBodyLength, false, head_ + 1);
    }
    body_length = body_length * 10 + static_cast<std::size_t>(c - '0');
    ++digits;
  }
  if (digits == 0 || body_length == 0) {
    return skip(frame, FrameStatus::kBadBodyLength, false, head_ + 1);
  }
  if (body_length > max_message_bytes_) {
    return skip(frame, FrameStatus::kTooLong, false, head_ + 1);
  }
  const std::size_t body_end = pos + 1 + body_length;
  const std::size_t total = body_end + kTrailerBytes;
  if (available < total) {
    // A BodyLength that is too long would hold back every message behind it until enough
    // bytes arrive; the start of a new message inside the body gives it away early.
    if (scan_head_ != head_) {
      scan_head_ = head_;
      scan_offset_ = pos;
    }
    if (message_boundary_before(p, available)) {
      return skip(frame, FrameStatus::kBadBodyLength, false, head_ + 1);
    }
    return false;
  }

  // The body ends with SOH exactly where "10=" starts.
  const char* trailer = p + body_end;
  if (p[body_end - 1] != kSoh || trailer[0] != '1' || trailer[1] != '0' || trailer[2] != '=') {
    return skip(frame, FrameStatus::kBadBodyLength, false, head_ + 1);
  }
  std::int64_t expected = 0;
  if (!read_digits(trailer + 3, 3, expected) || trailer[6] != kSoh) {
    return skip(frame, FrameStatus::kBadChecksum, false, head_ + 1);
  }
  const auto status = static_cast<std::uint32_t>(expected) == checksum(p, body_end)
                          ? FrameStatus::kOk
                          : FrameStatus::kBadChecksum;
  return emit(frame, status, false, head_ + total);
}

// ---- parsing ---------------------------------------------------------------------------------

std::string_view parse_status_name(ParseStatus status) noexcept {
  switch (status) {
    case ParseStatus::kOk: return "ok";
    case ParseStatus::kEmpty: return "empty";
    case ParseStatus::kEmptyTag: return "empty_tag";
    case ParseStatus::kBadTag: return "bad_tag";
    case ParseStatus::kMissingEquals: return "missing_equals";
    case ParseStatus::kUnterminated: return "unterminated";
    case ParseStatus::kTooManyFields: return "too_many_fields";
    case ParseStatus::kBadDataLength: return "bad_data_length";
    case ParseStatus::kTooLong: return "too_long";
  }
  return "unknown_status";
}

std::uint32_t data_tag_for_length(std::uint32_t length_tag) noexcept {
  switch (length_tag) {
    case 90: return 91;    // SecureDataLen -> SecureData
    case 93: return 89;    // SignatureLength -> Signature
    case 95: return 96;    // RawDataLength -> RawData
    case 212: return 213;  // XmlDataLen -> XmlData
    case 348: return 349;  // EncodedIssuerLen
    case 350: return 351;  // EncodedSecurityDescLen
    case 352: return 353;  // EncodedListExecInstLen
    case 354: return 355;  // EncodedTextLen
    case 356: return 357;  // EncodedSubjectLen
    case 358: return 359;  // EncodedHeadlineLen
    case 360: return 361;  // EncodedAllocTextLen
    case 362: return 363;  // EncodedUnderlyingIssuerLen
    case 364: return 365;  // EncodedUnderlyingSecurityDescLen
    case 445: return 446;  // EncodedListStatusTextLen
    case 618: return 619;  // EncodedLegIssuerLen
    case 621: return 622;  // EncodedLegSecurityDescLen
    default: return 0;
  }
}

bool is_data_tag(std::uint32_t tag) noexcept {
  switch (tag) {
    case 91: case 89: case 96: case 213: case 349: case 351: case 353: case 355: case 357:
    case 359: case 361: case 363: case 365: case 446: case 619: case 622:
      return true;
    default:
      return false;
  }
}

bool parse_int(std::string_view text, std::int64_t& value) noexcept {
  std::size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) i = 1;
  if (i == text.size()) return false;
  std::uint64_t magnitude = 0;
  constexpr std::uint64_t kLimit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (!is_digit(c)) return false;
    magnitude = magnitude * 10 + static_cast<std::uint64_t>(c - '0');
    if (magnitude > kLimit + (negative ? 1 : 0)) return false;
  }
  value = negative ? static_cast<std::int64_t>(0 - magnitude) : static_cast<std::int64_t>(magnitude);
  return true;
}

FixMessage::FixMessage() noexcept { first_.fill(kAbsent); }

ParseStatus FixMessage::fail(ParseStatus status, std::size_t offset) noexcept {
  for (std::uint32_t i = 0; i < count_; ++i) {
    if (fields_[i].tag < kDirectTags) first_[fields_[i].tag] = kAbsent;
  }
  count_ = 0;
  status_ = status;
  error_offset_ = offset;
  return status;
}

ParseStatus FixMessage::parse(const char* data, std::size_t size) noexcept {
  for (std::uint32_t i = 0; i < count_; ++i) {
    if (fields_[i].tag < kDirectTags) first_[fields_[i].tag] = kAbsent;
  }
  count_ = 0;
  data_ = data;
  size_ = size;
  error_offset_ = 0;
  if (size == 0) return fail(ParseStatus::kEmpty, 0);
  if (size >= std::numeric_limits<std::uint32_t>::max()) return fail(ParseStatus::kTooLong, 0);

  std::size_t pos = 0;
  std::uint32_t data_tag = 0;        // The data field the previous field gave a length for.
  std::int64_t data_length = -1;     // That length (-1: the length field was not a number).
  while (pos < size) {
    const std::size_t field_start = pos;
    const char first = data[pos];
    if (first == '=' || first == kSoh) return fail(ParseStatus::kEmptyTag, field_start);
    if (first < '1' || first > '9') return fail(ParseStatus::kBadTag, field_start);
    std::uint32_t tag = 0;
    std::size_t digits = 0;
    while (pos < size && is_digit(data[pos])) {
      if (++digits > 9) return fail(ParseStatus::kBadTag, field_start);
      tag = tag * 10 + static_cast<std::uint32_t>(data[pos] - '0');
      ++pos;
    }
    if (pos == size || data[pos] == kSoh) return fail(ParseStatus::kMissingEquals, field_start);
    if (data[pos] != '=') return fail(ParseStatus::kBadTag, field_start);
    ++pos;
    const std::size_t value_start = pos;
    std::size_t value_length;
    if (data_tag != 0 && tag == data_tag) {
      if (data_length < 0 || static_cast<std::uint64_t>(data_length) >= size - pos ||
          data[pos + static_cast<std::size_t>(data_length)] != kSoh) {
        return fail(ParseStatus::kBadDataLength, field_start);
      }
      value_length = static_cast<std::size_t>(data_length);
    } else {
      const char* soh = find_soh(data + pos, data + size);
      if (soh == data + size) return fail(ParseStatus::kUnterminated, field_start);
      value_length = static_cast<std::size_t>(soh - (data + pos));
    }
    pos += value_length + 1;
    data_tag = data_tag_for_length(tag);
    if (data_tag != 0) {
      std::int64_t length = -1;
      data_length = parse_int(std::string_view(data + value_start, value_length), length) &&
                            length >= 0
                        ? length
                        : -1;
    }
    if (count_ == kMaxFields) return fail(ParseStatus::kTooManyFields, field_start);
    fields_[count_] = Field{tag, static_cast<std::uint32_t>(value_start),
                            static_cast<std::uint32_t>(value_length)};
    if (tag < kDirectTags && first_[tag] == kAbsent) first_[tag] = static_cast<std::uint16_t>(count_);
    ++count_;
  }
  status_ = ParseStatus::kOk;
  return ParseStatus::kOk;
}

std::string FixMessage::error_reason() const {
  if (status_ == ParseStatus::kOk) return {};
  const std::size_t start = std::min(error_offset_, size_);
  std::string_view field(data_ + start, size_ - start);
  const std::size_t soh = field.find(kSoh);
  if (soh != std::string_view::npos) field = field.substr(0, soh);
  if (field.size() > 40) field = field.substr(0, 40);
  std::string shown;
  for (char c : field) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F) {
      shown += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      shown += "\\x";
      shown += kHex[byte >> 4];
      shown += kHex[byte & 0xF];
    }
  }
  std::string reason;
  switch (status_) {
    case ParseStatus::kEmpty: return "the message is empty";
    case ParseStatus::kTooLong: return "the message is 4 GiB or longer";
    case ParseStatus::kEmptyTag: reason = "a field has an empty tag"; break;
    case ParseStatus::kBadTag:
      reason = "a tag is not a positive number without leading zeros";
      break;
    case ParseStatus::kMissingEquals: reason = "a field has no '=' after its tag"; break;
    case ParseStatus::kUnterminated: reason = "the last field does not end with SOH"; break;
    case ParseStatus::kTooManyFields:
      reason = "the message has more than " + std::to_string(kMaxFields) + " fields";
      break;
    case ParseStatus::kBadDataLength:
      reason = "a data field does not have the length its length field gives";
      break;
    case ParseStatus::kOk: break;
  }
  return reason + " (field '" + shown + "')";
}

int FixMessage::find(std::uint32_t tag) const noexcept {
  if (tag < kDirectTags) {
    const std::uint16_t index = first_[tag];
    return index == kAbsent ? -1 : static_cast<int>(index);
  }
  for (std::uint32_t i = 0; i < count_; ++i) {
    if (fields_[i].tag == tag) return static_cast<int>(i);
  }
  return -1;
}

bool FixMessage::get(std::uint32_t tag, std::string_view& value) const noexcept {
  const int index = find(tag);
  if (index < 0) return false;
  value = this->value(static_cast<std::size_t>(index));
  return true;
}

std::size_t FixMessage::count(std::uint32_t tag) const noexcept {
  if (tag < kDirectTags && first_[tag] == kAbsent) return 0;
  std::size_t n = 0;
  for (std::uint32_t i = 0; i < count_; ++i) n += fields_[i].tag == tag;
  return n;
}

std::uint64_t FixMessage::seq_num() const noexcept {
  std::string_view text;
  std::int64_t value = 0;
  if (!get(34, text) || !parse_int(text, value) || value <= 0) return 0;
  return static_cast<std::uint64_t>(value);
}

bool FixMessage::poss_dup() const noexcept {
  std::string_view text;
  return get(43, text) && text == "Y";
}

// ---- encoding --------------------------------------------------------------------------------

std::string_view encode_status_name(EncodeStatus status) noexcept {
  switch (status) {
    case EncodeStatus::kOk: return "ok";
    case EncodeStatus::kBadTag: return "bad_tag";
    case EncodeStatus::kEmptyValue: return "empty_value";
    case EncodeStatus::kValueHasSoh: return "value_has_soh";
    case EncodeStatus::kTooLong: return "too_long";
    case EncodeStatus::kBadHeader: return "bad_header";
    case EncodeStatus::kReservedTag: return "reserved_tag";
  }
  return "unknown_status";
}

FixEncoder::FixEncoder(std::size_t max_message_bytes)
    : buffer_(kHeaderRoom + std::max<std::size_t>(max_message_bytes, 1) + kTrailerBytes),
      max_message_bytes_(std::max<std::size_t>(max_message_bytes, 1)) {}

EncodeStatus FixEncoder::fail(EncodeStatus status, std::uint32_t tag) noexcept {
  if (status_ == EncodeStatus::kOk) {
    status_ = status;
    error_tag_ = tag;
  }
  return status;
}

EncodeStatus FixEncoder::put(std::uint32_t tag, std::string_view value) noexcept {
  if (status_ != EncodeStatus::kOk) return status_;
  if (tag == 0 || tag > kMaxTag) return fail(EncodeStatus::kBadTag, tag);
  if (value.empty()) return fail(EncodeStatus::kEmptyValue, tag);
  if (std::memchr(value.data(), kSoh, value.size()) != nullptr && !is_data_tag(tag)) {
    return fail(EncodeStatus::kValueHasSoh, tag);
  }
  char tag_text[10];
  const std::size_t tag_size = write_uint(tag, tag_text);
  // The limit is on BodyLength: the body starts at kHeaderRoom.
  if (end_ + tag_size + 2 + value.size() > kHeaderRoom + max_message_bytes_) {
    return fail(EncodeStatus::kTooLong, tag);
  }
  char* out = buffer_.data() + end_;
  std::memcpy(out, tag_text, tag_size);
  std::size_t n = tag_size;
  out[n++] = '=';
  std::memcpy(out + n, value.data(), value.size());
  n += value.size();
  out[n++] = kSoh;
  end_ += n;
  return EncodeStatus::kOk;
}

EncodeStatus FixEncoder::begin(const HeaderFields& header) noexcept {
  status_ = EncodeStatus::kOk;
  error_tag_ = 0;
  end_ = kHeaderRoom;
  begin_string_size_ = 0;
  const auto bad = [](std::string_view text) {
    return text.empty() || text.find(kSoh) != std::string_view::npos;
  };
  if (bad(header.begin_string) || header.begin_string.size() > kMaxBeginStringBytes) {
    return fail(EncodeStatus::kBadHeader, 8);
  }
  if (bad(header.msg_type)) return fail(EncodeStatus::kBadHeader, 35);
  if (bad(header.sender_comp_id)) return fail(EncodeStatus::kBadHeader, 49);
  if (bad(header.target_comp_id)) return fail(EncodeStatus::kBadHeader, 56);
  std::memcpy(begin_string_.data(), header.begin_string.data(), header.begin_string.size());
  begin_string_size_ = header.begin_string.size();
  char number[24];
  char timestamp[kMaxTimestampBytes];
  put(35, header.msg_type);
  put(49, header.sender_comp_id);
  put(56, header.target_comp_id);
  put(34, std::string_view(number, write_uint(header.seq_num, number)));
  put(52, std::string_view(timestamp, format_utc_timestamp(header.sending_time_ns, 3, timestamp)));
  if (header.poss_dup) {
    put(43, "Y");
    const std::int64_t orig = header.orig_sending_time_ns != 0 ? header.orig_sending_time_ns
                                                               : header.sending_time_ns;
    put(122, std::string_view(timestamp, format_utc_timestamp(orig, 3, timestamp)));
  }
  return status_;
}

namespace {

bool is_reserved_tag(std::uint32_t tag) noexcept {
  switch (tag) {
    case 8: case 9: case 10: case 34: case 35: case 43: case 49: case 52: case 56: case 122:
      return true;
    default:
      return false;
  }
}

}  // namespace

EncodeStatus FixEncoder::add(std::uint32_t tag, std::string_view value) noexcept {
  if (is_reserved_tag(tag)) return fail(EncodeStatus::kReservedTag, tag);
  return put(tag, value);
}

EncodeStatus FixEncoder::add_int(std::uint32_t tag, std::int64_t value) noexcept {
  if (is_reserved_tag(tag)) return fail(EncodeStatus::kReservedTag, tag);
  char number[24];
  return put(tag, std::string_view(number, write_int(value, number)));
}

std::string_view FixEncoder::finish() noexcept {
  if (status_ != EncodeStatus::kOk || begin_string_size_ == 0) return {};
  const std::size_t body_length = end_ - kHeaderRoom;
  char length_digits[20];
  const std::size_t length_size = write_uint(body_length, length_digits);
  const std::size_t header_size = 2 + begin_string_size_ + 1 + 2 + length_size + 1;
  char* start = buffer_.data() + kHeaderRoom - header_size;
  char* out = start;
  *out++ = '8';
  *out++ = '=';
  std::memcpy(out, begin_string_.data(), begin_string_size_);
  out += begin_string_size_;
  *out++ = kSoh;
  *out++ = '9';
  *out++ = '=';
  std::memcpy(out, length_digits, length_size);
  out += length_size;
  *out++ = kSoh;
  const std::uint32_t sum = checksum(start, header_size + body_length);
  char* trailer = buffer_.data() + end_;
  trailer[0] = '1';
  trailer[1] = '0';
  trailer[2] = '=';
  trailer[3] = static_cast<char>('0' + sum / 100);
  trailer[4] = static_cast<char>('0' + sum / 10 % 10);
  trailer[5] = static_cast<char>('0' + sum % 10);
  trailer[6] = kSoh;
  return std::string_view(start, header_size + body_length + kTrailerBytes);
}

// ---- timestamps ------------------------------------------------------------------------------

std::string_view timestamp_status_name(TimestampStatus status) noexcept {
  switch (status) {
    case TimestampStatus::kOk: return "ok";
    case TimestampStatus::kBadFormat: return "bad_format";
    case TimestampStatus::kBadDate: return "bad_date";
    case TimestampStatus::kBadTime: return "bad_time";
    case TimestampStatus::kOutOfRange: return "out_of_range";
  }
  return "unknown_status";
}

std::size_t format_utc_timestamp(std::int64_t ns, int fraction_digits, char* out) noexcept {
  if (fraction_digits != 0 && fraction_digits != 3 && fraction_digits != 6 &&
      fraction_digits != 9) {
    return 0;
  }
  std::int64_t days = ns / kNsPerDay;
  std::int64_t in_day = ns % kNsPerDay;
  if (in_day < 0) {
    in_day += kNsPerDay;
    days -= 1;
  }
  std::int64_t year = 0;
  int month = 0;
  int day = 0;
  civil_from_days(days, year, month, day);
  const std::int64_t seconds = in_day / kNsPerSecond;
  const std::int64_t fraction = in_day % kNsPerSecond;
  // int64 ns spans 1677..2262, so the year always has four digits.
  write_2(static_cast<int>(year / 100), out);
  write_2(static_cast<int>(year % 100), out + 2);
  write_2(month, out + 4);
  write_2(day, out + 6);
  out[8] = '-';
  write_2(static_cast<int>(seconds / 3600), out + 9);
  out[11] = ':';
  write_2(static_cast<int>(seconds / 60 % 60), out + 12);
  out[14] = ':';
  write_2(static_cast<int>(seconds % 60), out + 15);
  if (fraction_digits == 0) return 17;
  out[17] = '.';
  std::int64_t scaled = fraction / kPowersOf10[9 - fraction_digits];
  for (int i = fraction_digits; i > 0; --i) {
    out[17 + i] = static_cast<char>('0' + scaled % 10);
    scaled /= 10;
  }
  return 18 + static_cast<std::size_t>(fraction_digits);
}

TimestampStatus parse_utc_timestamp(std::string_view text, std::int64_t& ns) noexcept {
  const std::size_t size = text.size();
  if (size != 17 && size != 21 && size != 24 && size != 27) return TimestampStatus::kBadFormat;
  const char* t = text.data();
  std::int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, fraction = 0;
  if (!read_digits(t, 4, year) || !read_digits(t + 4, 2, month) || !read_digits(t + 6, 2, day) ||
      t[8] != '-' || !read_digits(t + 9, 2, hour) || t[11] != ':' ||
      !read_digits(t + 12, 2, minute) || t[14] != ':' || !read_digits(t + 15, 2, second)) {
    return TimestampStatus::kBadFormat;
  }
  if (size > 17) {
    const std::size_t digits = size - 18;
    if (t[17] != '.' || !read_digits(t + 18, digits, fraction)) return TimestampStatus::kBadFormat;
    fraction *= kPowersOf10[9 - digits];
  }
  if (month < 1 || month > 12 || day < 1 ||
      day > days_in_month(year, static_cast<int>(month))) {
    return TimestampStatus::kBadDate;
  }
  if (hour > 23 || minute > 59 || second > 60) return TimestampStatus::kBadTime;
  const std::int64_t days = days_from_civil(year, static_cast<int>(month), static_cast<int>(day));
  const std::int64_t seconds = days * kSecondsPerDay + hour * 3600 + minute * 60 + second;
  // Before 1970 the whole seconds alone may overflow where seconds plus fraction do not.
  std::int64_t scaled = 0;
  const bool overflow =
      seconds < 0 && fraction > 0
          ? __builtin_mul_overflow(seconds + 1, kNsPerSecond, &scaled) ||
                __builtin_sub_overflow(scaled, kNsPerSecond - fraction, &scaled)
          : __builtin_mul_overflow(seconds, kNsPerSecond, &scaled) ||
                __builtin_add_overflow(scaled, fraction, &scaled);
  if (overflow) return TimestampStatus::kOutOfRange;
  ns = scaled;
  return TimestampStatus::kOk;
}

// ---- prices ----------------------------------------------------------------------------------

std::string_view price_status_name(PriceStatus status) noexcept {
  switch (status) {
    case PriceStatus::kOk: return "ok";
    case PriceStatus::kBadFormat: return "bad_format";
    case PriceStatus::kSubTick: return "sub_tick";
    case PriceStatus::kOverflow: return "overflow";
  }
  return "unknown_status";
}

bool tick_size_from_usd(double tick_usd, TickSize& tick) noexcept {
  if (!std::isfinite(tick_usd) || tick_usd <= 0.0 || tick_usd > 1e9) return false;
  for (int scale = 0; scale <= 9; ++scale) {
    const double scaled = tick_usd * static_cast<double>(kPowersOf10[scale]);
    const double units = std::round(scaled);
    if (units >= 1.0 && std::fabs(scaled - units) <= 1e-12 * units) {
      tick.units = static_cast<std::int64_t>(units);
      tick.scale = scale;
      return true;
    }
  }
  return false;
}

std::size_t price_to_fix(std::int64_t price_ticks, TickSize tick, char* out) noexcept {
  if (tick.units <= 0 || tick.scale < 0 || tick.scale > 9) return 0;
  const bool negative = price_ticks < 0;
  const std::uint64_t ticks = negative ? 0 - static_cast<std::uint64_t>(price_ticks)
                                       : static_cast<std::uint64_t>(price_ticks);
  std::uint64_t amount = 0;
  if (__builtin_mul_overflow(ticks, static_cast<std::uint64_t>(tick.units), &amount)) return 0;
  const auto unit = static_cast<std::uint64_t>(kPowersOf10[tick.scale]);
  std::uint64_t whole = amount / unit;
  std::uint64_t fraction = amount % unit;
  std::size_t n = 0;
  if (negative && amount != 0) out[n++] = '-';
  n += write_uint(whole, out + n);
  if (fraction != 0) {
    int digits = tick.scale;
    while (fraction % 10 == 0) {
      fraction /= 10;
      --digits;
    }
    out[n++] = '.';
    for (int i = digits; i > 0; --i) {
      out[n + static_cast<std::size_t>(i) - 1] = static_cast<char>('0' + fraction % 10);
      fraction /= 10;
    }
    n += static_cast<std::size_t>(digits);
  }
  return n;
}

PriceStatus price_from_fix(std::string_view text, TickSize tick,
                           std::int64_t& price_ticks) noexcept {
  if (tick.units <= 0 || tick.scale < 0 || tick.scale > 9) return PriceStatus::kBadFormat;
  std::size_t i = 0;
  const bool negative = !text.empty() && text[0] == '-';
  if (negative) i = 1;
  std::uint64_t amount = 0;  // In units of 10^-scale.
  std::size_t digits = 0;
  bool overflow = false;
  for (; i < text.size() && is_digit(text[i]); ++i, ++digits) {
    overflow |= __builtin_mul_overflow(amount, 10u, &amount) ||
                __builtin_add_overflow(amount, static_cast<std::uint64_t>(text[i] - '0'), &amount);
  }
  std::size_t fraction_digits = 0;
  bool sub_tick = false;
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && is_digit(text[i]); ++i, ++fraction_digits) {
      if (fraction_digits < static_cast<std::size_t>(tick.scale)) {
        overflow |=
            __builtin_mul_overflow(amount, 10u, &amount) ||
            __builtin_add_overflow(amount, static_cast<std::uint64_t>(text[i] - '0'), &amount);
      } else if (text[i] != '0') {
        sub_tick = true;
      }
    }
  }
  if (i != text.size() || digits + fraction_digits == 0) return PriceStatus::kBadFormat;
  for (std::size_t k = std::min<std::size_t>(fraction_digits, static_cast<std::size_t>(tick.scale));
       k < static_cast<std::size_t>(tick.scale); ++k) {
    overflow |= __builtin_mul_overflow(amount, 10u, &amount);
  }
  if (overflow) return PriceStatus::kOverflow;
  if (sub_tick || amount % static_cast<std::uint64_t>(tick.units) != 0) return PriceStatus::kSubTick;
  const std::uint64_t ticks = amount / static_cast<std::uint64_t>(tick.units);
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (ticks > kMax + (negative ? 1 : 0)) return PriceStatus::kOverflow;
  price_ticks = negative ? static_cast<std::int64_t>(0 - ticks) : static_cast<std::int64_t>(ticks);
  return PriceStatus::kOk;
}

}  // namespace sor::fix
