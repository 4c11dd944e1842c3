#define SOR_TEST_MAIN
#include "check.hpp"

#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "sor/fix.hpp"

using namespace sor::fix;

namespace {

// Replaces '|' by SOH, so tests can spell messages readably.
std::string soh(std::string text) {
  for (char& c : text) {
    if (c == '|') c = kSoh;
  }
  return text;
}

// Builds a valid message around `body` ("35=...|...|") by hand, independent of FixEncoder.
std::string framed(const std::string& body, const std::string& begin = "FIX.4.4") {
  const std::string b = soh(body);
  std::string head = "8=" + begin + "\x01" + "9=" + std::to_string(b.size()) + "\x01";
  const std::string message = head + b;
  unsigned sum = 0;
  for (unsigned char c : message) sum += c;
  char trailer[16];
  std::snprintf(trailer, sizeof trailer, "10=%03u\x01", sum % 256);
  return message + trailer;
}

struct Collected {
  FrameStatus status;
  std::string bytes;
};

// Feeds `stream` in chunks of the given sizes (cycled) and collects every frame, merging
// continued error frames into the frame they continue.
std::vector<Collected> feed_all(FixFramer& framer, const std::string& stream,
                                const std::vector<std::size_t>& chunks) {
  std::vector<Collected> out;
  std::size_t pos = 0;
  std::size_t chunk_index = 0;
  Frame frame;
  while (pos < stream.size()) {
    const std::size_t want = std::min(chunks[chunk_index++ % chunks.size()], stream.size() - pos);
    std::size_t given = 0;
    while (given < want) {
      const std::size_t taken = framer.append(stream.data() + pos + given, want - given);
      given += taken;
      bool any = false;
      while (framer.next(frame)) {
        any = true;
        if (frame.continued && !out.empty() && out.back().status == frame.status) {
          out.back().bytes.append(frame.bytes());
        } else {
          out.push_back({frame.status, std::string(frame.bytes())});
        }
      }
      CHECK(framer.buffered_bytes() <= framer.capacity());
      if (taken == 0 && !any) {
        CHECK(!"framer wedged: took no bytes and returned no frame");
        return out;
      }
    }
    pos += want;
  }
  return out;
}

const std::string kExecutionReport =
    "35=8|49=VENUE1|56=SOR|34=1042|52=20240315-14:30:01.123|37=ORD-778812|11=1.0000042|"
    "17=EXEC-991|150=F|39=1|55=AAPL|54=1|38=1000|44=187.25|32=200|31=187.24|151=800|14=200|"
    "6=187.24|60=20240315-14:30:01.122|851=2|30=XNAS|";

}  // namespace

TEST(framer_returns_a_whole_message) {
  FixFramer framer;
  const std::string message = framed(kExecutionReport);
  const auto frames = feed_all(framer, message, {message.size()});
  CHECK_EQ(frames.size(), 1u);
  CHECK(frames[0].status == FrameStatus::kOk);
  CHECK(frames[0].bytes == message);
  CHECK_EQ(framer.buffered_bytes(), 0u);
}

TEST(framer_handles_every_split_point) {
  const std::string message = framed(kExecutionReport);
  const std::string stream = message + framed("35=0|49=A|56=B|34=2|52=20240315-14:30:02|");
  for (std::size_t split = 1; split < stream.size(); ++split) {
    FixFramer framer;
    const auto frames = feed_all(framer, stream, {split, stream.size()});
    CHECK_EQ(frames.size(), 2u);
    if (frames.size() != 2) continue;
    CHECK(frames[0].status == FrameStatus::kOk && frames[0].bytes == message);
    CHECK(frames[1].status == FrameStatus::kOk);
  }
  FixFramer byte_at_a_time;
  const auto frames = feed_all(byte_at_a_time, stream, {1});
  CHECK_EQ(frames.size(), 2u);
}

TEST(framer_reports_a_bad_checksum_and_continues) {
  std::string bad = framed(kExecutionReport);
  bad[bad.size() - 2] = bad[bad.size() - 2] == '0' ? '1' : '0';
  const std::string good = framed("35=0|49=A|56=B|34=2|52=20240315-14:30:02|");
  FixFramer framer;
  const auto frames = feed_all(framer, bad + good, {7});
  CHECK_EQ(frames.size(), 2u);
  CHECK(frames[0].status == FrameStatus::kBadChecksum && frames[0].bytes == bad);
  CHECK(frames[1].status == FrameStatus::kOk && frames[1].bytes == good);
}

TEST(framer_reports_bad_body_lengths_and_resyncs) {
  const std::string good = framed("35=0|49=A|56=B|34=2|52=20240315-14:30:02|");
  // BodyLength not a number.
  std::string not_number = soh("8=FIX.4.4|9=1x2|35=0|10=000|");
  // BodyLength too short: 10= is not where the body ends.
  std::string message = framed(kExecutionReport);
  const std::size_t nine = message.find("\x01" "9=") + 3;
  std::string shorter = message;
  shorter[nine] = static_cast<char>(shorter[nine] - 1);
  // Missing 9= altogether.
  std::string missing = soh("8=FIX.4.4|35=0|49=A|10=123|");
  for (const std::string& bad : {not_number, shorter, missing}) {
    FixFramer framer;
    const auto frames = feed_all(framer, bad + good, {5});
    CHECK_EQ(frames.size(), 2u);
    if (frames.size() != 2) continue;
    CHECK(frames[0].status == FrameStatus::kBadBodyLength);
    CHECK(frames[0].bytes == bad);
    CHECK(frames[1].status == FrameStatus::kOk && frames[1].bytes == good);
  }
}

TEST(framer_recovers_from_a_truncated_message) {
  // The first message lost its tail; its BodyLength runs into the next message, which must
  // still come out once enough bytes arrive.
  const std::string first = framed(kExecutionReport);
  const std::string truncated = first.substr(0, first.size() - 40);
  const std::string good = framed("35=0|49=A|56=B|34=2|52=20240315-14:30:02|");
  FixFramer framer;
  const auto frames = feed_all(framer, truncated + good + good, {13});
  CHECK_EQ(frames.size(), 3u);
  if (frames.size() != 3) return;
  CHECK(frames[0].status == FrameStatus::kBadBodyLength && frames[0].bytes == truncated);
  CHECK(frames[1].status == FrameStatus::kOk && frames[1].bytes == good);
  CHECK(frames[2].status == FrameStatus::kOk && frames[2].bytes == good);
}

TEST(framer_finds_an_overlong_body_length_without_waiting_for_it) {
  // 9=60000 would hold back everything behind it until 60000 bytes arrive; the next message's
  // "<SOH>8=FIX" inside the body gives the error away at once.
  std::string bad = framed(kExecutionReport);
  const std::size_t nine = bad.find("\x01" "9=") + 3;
  bad.replace(nine, bad.find('\x01', nine) - nine, "60000");
  const std::string good = framed("35=0|49=A|56=B|34=2|52=20240315-14:30:02|");
  FixFramer framer;
  const auto frames = feed_all(framer, bad + good, {bad.size(), good.size()});
  CHECK_EQ(frames.size(), 2u);
  if (frames.size() != 2) return;
  CHECK(frames[0].status == FrameStatus::kBadBodyLength && frames[0].bytes == bad);
  CHECK(frames[1].status == FrameStatus::kOk && frames[1].bytes == good);
  // Cut inside a field: the boundary shows at the following message.
  const std::string cut = framed(kExecutionReport).substr(0, 100);
  FixFramer second;
  const auto later = feed_all(second, cut + good + good, {7});
  CHECK_EQ(later.size(), 3u);
  if (later.size() != 3) return;
  CHECK(later[0].status == FrameStatus::kBadBodyLength && later[0].bytes == cut);
  CHECK(later[1].bytes == good && later[2].bytes == good);
}

TEST(framer_skips_garbage_prefixes_and_interleaving) {
  const std::string a = framed(kExecutionReport);
  const std::string b = framed("35=0|49=A|56=B|34=2|52=20240315-14:30:02|");
  const std::string stream = "noise 8=FI" + a + "\r\n" + b + "8=FOX" + a;
  FixFramer framer;
  const auto frames = feed_all(framer, stream, {3, 11});
  CHECK_EQ(frames.size(), 6u);
  if (frames.size() != 6) return;
  CHECK(frames[0].status == FrameStatus::kGarbled && frames[0].bytes == "noise 8=FI");
  CHECK(frames[1].status == FrameStatus::kOk && frames[1].bytes == a);
  CHECK(frames[2].status == FrameStatus::kGarbled && frames[2].bytes == "\r\n");
  CHECK(frames[3].status == FrameStatus::kOk && frames[3].bytes == b);
  CHECK(frames[4].status == FrameStatus::kGarbled && frames[4].bytes == "8=FOX");
  CHECK(frames[5].status == FrameStatus::kOk && frames[5].bytes == a);
}

TEST(framer_skips_an_oversized_message_then_recovers) {
  FixFramer framer(256);
  std::string big_body = "35=B|58=";
  big_body += std::string(1000, 'x');
  big_body += "|";
  const std::string big = framed(big_body);
  const std::string good = framed(kExecutionReport);
  const auto frames = feed_all(framer, big + good, {64});
  CHECK_EQ(frames.size(), 2u);
  if (frames.size() != 2) return;
  CHECK(frames[0].status == FrameStatus::kTooLong && frames[0].bytes == big);
  CHECK(frames[1].status == FrameStatus::kOk && frames[1].bytes == good);
  CHECK(framer.capacity() == 256 + kFramerSlackBytes);
}

TEST(framer_never_wedges_on_a_full_buffer_of_garbage) {
  FixFramer framer(64);
  std::string noise(10000, 'z');
  noise += framed("35=0|49=A|56=B|34=2|");
  const auto frames = feed_all(framer, noise, {noise.size()});
  CHECK_EQ(frames.size(), 2u);
  if (frames.size() != 2) return;
  CHECK(frames[0].status == FrameStatus::kGarbled && frames[0].bytes.size() == 10000u);
  CHECK(frames[1].status == FrameStatus::kOk);
}

TEST(framer_fuzz_recovers_every_message_embedded_in_noise) {
  std::mt19937_64 rng(42);
  const std::string messages[] = {framed(kExecutionReport),
                                  framed("35=0|49=A|56=B|34=2|52=20240315-14:30:02|"),
                                  framed("35=A|49=A|56=B|34=1|98=0|108=30|", "FIX.4.2")};
  for (int round = 0; round < 200; ++round) {
    std::string stream;
    std::vector<std::string> expected;
    const int count = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < count; ++i) {
      // Noise that cannot contain "8=FIX": letters other than F, and digits other than 8.
      const std::size_t noise = rng() % 40;
      for (std::size_t k = 0; k < noise; ++k) {
        static constexpr char kAlphabet[] = "abcxyz0123456779=|\x01\r\n ";
        stream += kAlphabet[rng() % (sizeof kAlphabet - 1)];
      }
      expected.push_back(messages[rng() % 3]);
      stream += expected.back();
    }
    FixFramer framer(512);
    const auto frames = feed_all(framer, stream, {1 + rng() % 50, 1 + rng() % 300});
    std::vector<std::string> ok;
    std::string all;
    for (const auto& f : frames) {
      if (f.status == FrameStatus::kOk) ok.push_back(f.bytes);
      all += f.bytes;
    }
    CHECK(ok == expected);
    // Every byte comes out exactly once, in order, except a possible partial tail.
    CHECK(stream.compare(0, all.size(), all) == 0);
  }
  // Pure random bytes: never wedges, never exceeds capacity (checked inside feed_all).
  for (int round = 0; round < 100; ++round) {
    std::string stream(2000, '\0');
    for (char& c : stream) c = static_cast<char>(rng() % 256);
    if (round % 2 == 0) {
      for (int k = 0; k < 20; ++k) stream.replace(rng() % 1990, 5, "8=FIX");
    }
    FixFramer framer(128);
    feed_all(framer, stream, {1 + rng() % 100});
  }
}

TEST(parser_records_fields_in_order) {
  const std::string message = framed(kExecutionReport);
  FixMessage parsed;
  CHECK(parsed.parse(message.data(), message.size()) == ParseStatus::kOk);
  CHECK_EQ(parsed.field_count(), 25u);
  CHECK_EQ(parsed.field(0).tag, 8u);
  CHECK(parsed.value(0) == "FIX.4.4");
  std::string_view value;
  CHECK(parsed.get(35, value) && value == "8");
  CHECK(parsed.get(44, value) && value == "187.25");
  CHECK(parsed.get(851, value) && value == "2");
  CHECK(!parsed.get(9999, value));
  CHECK_EQ(parsed.seq_num(), 1042u);
  CHECK(!parsed.poss_dup());
  CHECK_EQ(parsed.field(parsed.field_count() - 1).tag, 10u);
}

TEST(parser_returns_first_occurrence_and_counts_repeats) {
  const std::string message = soh("8=FIX.4.4|35=D|453=2|448=A|447=D|452=1|448=B|447=D|452=3|"
                                  "9001=x|9001=y|10=000|");
  FixMessage parsed;
  CHECK(parsed.parse(message.data(), message.size()) == ParseStatus::kOk);
  std::string_view value;
  CHECK(parsed.get(448, value) && value == "A");
  CHECK_EQ(parsed.count(448), 2u);
  CHECK(parsed.get(9001, value) && value == "x");
  CHECK_EQ(parsed.count(9001), 2u);
  CHECK_EQ(parsed.count(1), 0u);
  // Reparsing another message forgets the previous one's tags.
  const std::string other = soh("8=FIX.4.2|35=0|10=000|");
  CHECK(parsed.parse(other.data(), other.size()) == ParseStatus::kOk);
  CHECK(!parsed.get(448, value));
  CHECK_EQ(parsed.count(9001), 0u);
}

TEST(parser_rejects_malformed_fields) {
  const std::pair<const char*, ParseStatus> cases[] = {
      {"", ParseStatus::kEmpty},
      {"8=FIX.4.4|=x|", ParseStatus::kEmptyTag},
      {"8=FIX.4.4||35=0|", ParseStatus::kEmptyTag},
      {"8=FIX.4.4|3a=0|", ParseStatus::kBadTag},
      {"8=FIX.4.4|035=0|", ParseStatus::kBadTag},
      {"8=FIX.4.4|0=0|", ParseStatus::kBadTag},
      {"8=FIX.4.4|1234567890=0|", ParseStatus::kBadTag},
      {"8=FIX.4.4|abc=0|", ParseStatus::kBadTag},
      {"8=FIX.4.4|35|", ParseStatus::kMissingEquals},
      {"8=FIX.4.4|35", ParseStatus::kMissingEquals},
      {"8=FIX.4.4|35=0", ParseStatus::kUnterminated},
      {"8=FIX.4.4|95=5|96=ab|", ParseStatus::kBadDataLength},
      {"8=FIX.4.4|95=x|96=ab|", ParseStatus::kBadDataLength},
  };
  for (const auto& [text, expected] : cases) {
    const std::string message = soh(text);
    FixMessage parsed;
    const ParseStatus status = parsed.parse(message.data(), message.size());
    CHECK(status == expected);
    if (status != expected) std::fprintf(stderr, "  case: %s -> %s\n", text,
                                         std::string(parse_status_name(status)).c_str());
    CHECK_EQ(parsed.field_count(), 0u);
    CHECK(!parsed.error_reason().empty());
  }
  FixMessage parsed;
  const std::string bad = soh("8=FIX.4.4|35=0|4x=1|");
  CHECK(parsed.parse(bad.data(), bad.size()) == ParseStatus::kBadTag);
  CHECK_EQ(parsed.error_offset(), 15u);
  CHECK(parsed.error_reason().find("4x=1") != std::string::npos);
  std::string_view value;
  CHECK(!parsed.get(8, value));
}

TEST(parser_limits_the_field_count) {
  std::string many = "8=FIX.4.4\x01";
  for (std::size_t i = 0; i < kMaxFields; ++i) many += "58=x\x01";
  FixMessage parsed;
  CHECK(parsed.parse(many.data(), many.size()) == ParseStatus::kTooManyFields);
  const std::size_t last = many.rfind("58=");
  const std::string fits = many.substr(0, last);
  CHECK(parsed.parse(fits.data(), fits.size()) == ParseStatus::kOk);
  CHECK_EQ(parsed.field_count(), kMaxFields);
}

TEST(parser_reads_data_fields_holding_soh) {
  const std::string message = soh("8=FIX.4.4|35=B|95=5|96=a|b=c|58=t|10=000|");
  FixMessage parsed;
  CHECK(parsed.parse(message.data(), message.size()) == ParseStatus::kOk);
  std::string_view value;
  CHECK(parsed.get(96, value) && value == soh("a|b=c"));
  CHECK(parsed.get(58, value) && value == "t");
}

TEST(encoder_writes_header_body_and_trailer) {
  FixEncoder encoder;
  HeaderFields header;
  header.begin_string = "FIX.4.4";
  header.msg_type = "D";
  header.sender_comp_id = "SOR";
  header.target_comp_id = "VENUE1";
  header.seq_num = 7;
  header.sending_time_ns = 1710513001123456789LL;  // 2024-03-15 14:30:01.123456789 UTC
  CHECK(encoder.begin(header) == EncodeStatus::kOk);
  CHECK(encoder.add(11, "1.42") == EncodeStatus::kOk);
  CHECK(encoder.add_int(38, 500) == EncodeStatus::kOk);
  CHECK(encoder.add_int(7928, -3) == EncodeStatus::kOk);
  const std::string_view message = encoder.finish();
  const std::string expected =
      framed("35=D|49=SOR|56=VENUE1|34=7|52=20240315-14:30:01.123|11=1.42|38=500|7928=-3|");
  CHECK(message == expected);

  header.poss_dup = true;
  header.orig_sending_time_ns = 1710513000000000000LL;
  CHECK(encoder.begin(header) == EncodeStatus::kOk);
  const std::string_view resent = encoder.finish();
  CHECK(resent == framed("35=D|49=SOR|56=VENUE1|34=7|52=20240315-14:30:01.123|43=Y|"
                         "122=20240315-14:30:00.000|"));
}

TEST(encoder_refuses_bad_fields) {
  FixEncoder encoder(64);
  HeaderFields header{"FIX.4.4", "0", "A", "B", 1, 0, false, 0};
  CHECK(encoder.begin(header) == EncodeStatus::kOk);
  CHECK(encoder.add(58, "") == EncodeStatus::kEmptyValue);
  CHECK_EQ(encoder.error_tag(), 58u);
  CHECK(encoder.finish().empty());
  encoder.begin(header);
  CHECK(encoder.add(58, soh("a|b")) == EncodeStatus::kValueHasSoh);
  encoder.begin(header);
  CHECK(encoder.add(96, soh("a|b")) == EncodeStatus::kOk);
  CHECK(encoder.add(0, "x") == EncodeStatus::kBadTag);
  encoder.begin(header);
  CHECK(encoder.add(58, std::string(100, 'x')) == EncodeStatus::kTooLong);
  for (std::uint32_t reserved : {8u, 9u, 10u, 34u, 35u, 43u, 49u, 52u, 56u, 122u}) {
    encoder.begin(header);
    CHECK(encoder.add(reserved, "1") == EncodeStatus::kReservedTag);
    encoder.begin(header);
    CHECK(encoder.add_int(reserved, 1) == EncodeStatus::kReservedTag);
  }
  encoder.begin(header);
  CHECK(encoder.add(kMaxTag + 1, "1") == EncodeStatus::kBadTag);
  header.msg_type = "";
  CHECK(encoder.begin(header) == EncodeStatus::kBadHeader);
  CHECK(encoder.finish().empty());
}

TEST(encoded_messages_frame_and_parse) {
  FixEncoder encoder;
  FixFramer framer;
  FixMessage parsed;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 500; ++i) {
    HeaderFields header{"FIX.4.2", "8", "SOR", "OMS", static_cast<std::uint64_t>(i + 1),
                        static_cast<std::int64_t>(rng() % (1ULL << 62)), i % 3 == 0, 0};
    encoder.begin(header);
    const int fields = static_cast<int>(rng() % 30);
    for (int k = 0; k < fields; ++k) {
      // Tags from 123 up: none of them is one the header or trailer owns.
      const auto tag = static_cast<std::uint32_t>(123 + rng() % 9000);
      CHECK(encoder.add_int(tag, static_cast<std::int64_t>(rng())) == EncodeStatus::kOk);
    }
    const std::string message(encoder.finish());
    CHECK(framer.append(message.data(), message.size()) == message.size());
    Frame frame;
    CHECK(framer.next(frame) && frame.status == FrameStatus::kOk && frame.bytes() == message);
    CHECK(parsed.parse(frame.data, frame.size) == ParseStatus::kOk);
    CHECK_EQ(parsed.seq_num(), static_cast<std::uint64_t>(i + 1));
    CHECK_EQ(parsed.field_count(), static_cast<std::size_t>(8 + fields + (i % 3 == 0 ? 2 : 0)));
  }
}

TEST(timestamps_round_trip) {
  char text[kMaxTimestampBytes];
  const std::int64_t ns = 1710513001123456789LL;
  CHECK(std::string(text, format_utc_timestamp(ns, 3, text)) == "20240315-14:30:01.123");
  CHECK(std::string(text, format_utc_timestamp(ns, 0, text)) == "20240315-14:30:01");
  CHECK(std::string(text, format_utc_timestamp(ns, 6, text)) == "20240315-14:30:01.123456");
  CHECK(std::string(text, format_utc_timestamp(ns, 9, text)) == "20240315-14:30:01.123456789");
  CHECK_EQ(format_utc_timestamp(ns, 2, text), 0u);
  CHECK(std::string(text, format_utc_timestamp(0, 3, text)) == "19700101-00:00:00.000");
  CHECK(std::string(text, format_utc_timestamp(-1, 9, text)) == "19691231-23:59:59.999999999");
  std::int64_t back = 0;
  CHECK(parse_utc_timestamp("20240315-14:30:01.123456789", back) == TimestampStatus::kOk);
  CHECK_EQ(back, ns);
  CHECK(parse_utc_timestamp("20240315-14:30:01.123", back) == TimestampStatus::kOk);
  CHECK_EQ(back, 1710513001123000000LL);
  CHECK(parse_utc_timestamp("20240229-00:00:00", back) == TimestampStatus::kOk);
  CHECK(parse_utc_timestamp("20230229-00:00:00", back) == TimestampStatus::kBadDate);
  CHECK(parse_utc_timestamp("20231301-00:00:00", back) == TimestampStatus::kBadDate);
  CHECK(parse_utc_timestamp("20230101-24:00:00", back) == TimestampStatus::kBadTime);
  CHECK(parse_utc_timestamp("20230101-00:00:00.12", back) == TimestampStatus::kBadFormat);
  CHECK(parse_utc_timestamp("2023-01-01T00:00:00", back) == TimestampStatus::kBadFormat);
  CHECK(parse_utc_timestamp("99991231-23:59:59", back) == TimestampStatus::kOutOfRange);
  const std::int64_t earliest = std::numeric_limits<std::int64_t>::min();
  CHECK(parse_utc_timestamp(std::string_view(text, format_utc_timestamp(earliest, 9, text)),
                            back) == TimestampStatus::kOk);
  CHECK(back == earliest);
  CHECK(parse_utc_timestamp(std::string_view(text, format_utc_timestamp(earliest, 0, text)),
                            back) == TimestampStatus::kOutOfRange);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 10000; ++i) {
    const auto value = static_cast<std::int64_t>(rng());
    CHECK(parse_utc_timestamp(std::string_view(text, format_utc_timestamp(value, 9, text)),
                              back) == TimestampStatus::kOk);
    CHECK_EQ(back, value);
  }
}

TEST(prices_are_exact) {
  TickSize tick;
  CHECK(tick_size_from_usd(0.0001, tick) && tick.units == 1 && tick.scale == 4);
  CHECK(tick_size_from_usd(0.005, tick) && tick.units == 5 && tick.scale == 3);
  CHECK(tick_size_from_usd(0.25, tick) && tick.units == 25 && tick.scale == 2);
  CHECK(tick_size_from_usd(1.0, tick) && tick.units == 1 && tick.scale == 0);
  CHECK(!tick_size_from_usd(0.0, tick));
  CHECK(!tick_size_from_usd(1.0 / 3.0, tick));
  const TickSize basis{1, 4};
  char text[kMaxPriceBytes];
  const auto show = [&](std::int64_t ticks, TickSize t) {
    return std::string(text, price_to_fix(ticks, t, text));
  };
  CHECK(show(1872500, basis) == "187.25");
  CHECK(show(1870000, basis) == "187");
  CHECK(show(1, basis) == "0.0001");
  CHECK(show(-5000, basis) == "-0.5");
  CHECK(show(0, basis) == "0");
  CHECK(show(3, TickSize{5, 3}) == "0.015");
  std::int64_t ticks = 0;
  CHECK(price_from_fix("187.25", basis, ticks) == PriceStatus::kOk);
  CHECK_EQ(ticks, 1872500);
  CHECK(price_from_fix("187.250000", basis, ticks) == PriceStatus::kOk);
  CHECK_EQ(ticks, 1872500);
  CHECK(price_from_fix("-0.0001", basis, ticks) == PriceStatus::kOk);
  CHECK_EQ(ticks, -1);
  CHECK(price_from_fix("00187", basis, ticks) == PriceStatus::kOk);
  CHECK_EQ(ticks, 1870000);
  CHECK(price_from_fix("187.25001", basis, ticks) == PriceStatus::kSubTick);
  CHECK(price_from_fix("0.012", TickSize{5, 3}, ticks) == PriceStatus::kSubTick);
  CHECK(price_from_fix("0.015", TickSize{5, 3}, ticks) == PriceStatus::kOk);
  CHECK_EQ(ticks, 3);
  CHECK(price_from_fix("1e3", basis, ticks) == PriceStatus::kBadFormat);
  CHECK(price_from_fix("", basis, ticks) == PriceStatus::kBadFormat);
  CHECK(price_from_fix("-", basis, ticks) == PriceStatus::kBadFormat);
  CHECK(price_from_fix("1.2.3", basis, ticks) == PriceStatus::kBadFormat);
  CHECK(price_from_fix("99999999999999999999", basis, ticks) == PriceStatus::kOverflow);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 10000; ++i) {
    const auto value = static_cast<std::int64_t>(rng() >> 20) - (1LL << 43);
    CHECK(price_from_fix(show(value, basis), basis, ticks) == PriceStatus::kOk);
    CHECK_EQ(ticks, value);
  }
}
