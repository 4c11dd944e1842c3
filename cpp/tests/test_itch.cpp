#define SOR_TEST_MAIN
#include "check.hpp"

#include <cstring>
#include <string>
#include <vector>

#include "sor/itch.hpp"

using sor::EventKind;
using sor::MdEvent;
using sor::Side;
using sor::Status;
using namespace sor::itch;

namespace {

constexpr std::int64_t kMidnight = 1'700'000'000'000'000'000;

MdEvent make(EventKind kind, std::uint64_t sequence, std::uint64_t order_id, Side side,
             std::int64_t price, std::int64_t quantity, std::uint64_t related,
             std::uint8_t flags) {
  MdEvent e{};
  e.ts_event = kMidnight + 34'200'000'000'000 + static_cast<std::int64_t>(sequence) * 1000;
  e.ts_recv = e.ts_event;
  e.sequence = sequence;
  e.order_id = order_id;
  e.related_id = related;
  e.price_ticks = price;
  e.quantity = quantity;
  e.instrument_id = 7;
  e.venue_id = 3;
  e.kind = kind;
  e.side = side;
  e.flags = flags;
  return e;
}

std::vector<MdEvent> sample_events() {
  return {
      make(EventKind::kAdd, 1, 11, Side::kBuy, 1'234'500, 100, 0, 0),
      make(EventKind::kAdd, 2, 12, Side::kSell, 1'235'000, 200, 0, 0),
      make(EventKind::kExecute, 3, 11, Side::kNone, 0, 40, 901, sor::kFlagPrintable),
      make(EventKind::kExecute, 4, 12, Side::kNone, 1'234'900, 10, 902, 0),
      make(EventKind::kCancel, 5, 11, Side::kNone, 0, 10, 0, 0),
      make(EventKind::kReplace, 6, 12, Side::kNone, 1'235'100, 150, 13, 0),
      make(EventKind::kDelete, 7, 13, Side::kNone, 0, 0, 0, 0),
      make(EventKind::kTrade, 8, 14, Side::kBuy, 1'234'700, 300, 903, sor::kFlagPrintable),
      make(EventKind::kTrade, 9, 'O', Side::kNone, 1'234'600, 5'000'000'000, 904,
           sor::kFlagCross | sor::kFlagPrintable),
      make(EventKind::kBrokenTrade, 10, 0, Side::kNone, 0, 0, 903, 0),
  };
}

bool same(const MdEvent& a, const MdEvent& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

std::vector<std::uint8_t> encode_file(const std::vector<MdEvent>& events) {
  EncoderOptions options;
  options.session_date_ns = kMidnight;
  ItchEncoder encoder(options);
  for (const auto& e : events) CHECK(encoder.encode(e) == Status::kOk);
  return encoder.bytes();
}

DecoderOptions decoder_options(Framing framing) {
  DecoderOptions options;
  options.framing = framing;
  options.venue_id = 3;
  options.session_date_ns = kMidnight;
  return options;
}

// A file-framed A message with the given declared length, side byte and type.
std::vector<std::uint8_t> add_frame(char type, std::uint16_t declared, char side) {
  std::vector<std::uint8_t> frame(2 + 36, 0);
  frame[0] = static_cast<std::uint8_t>(declared >> 8);
  frame[1] = static_cast<std::uint8_t>(declared);
  frame[2] = static_cast<std::uint8_t>(type);
  frame[2 + 19] = static_cast<std::uint8_t>(side);
  frame.resize(2 + declared);
  return frame;
}

}  // namespace

TEST(file_round_trip) {
  const auto events = sample_events();
  const auto bytes = encode_file(events);
  ItchDecoder decoder(decoder_options(Framing::kFile));
  std::vector<MdEvent> out;
  out.reserve(decoder.max_events(bytes.size()));
  CHECK(decoder.decode(bytes.data(), bytes.size(), out) == Status::kOk);
  CHECK(decoder.finish() == Status::kOk);
  CHECK_EQ(out.size(), events.size());
  for (std::size_t i = 0; i < events.size() && i < out.size(); ++i) CHECK(same(out[i], events[i]));
  CHECK_EQ(decoder.message_counts()['A'], 2u);
  CHECK_EQ(decoder.message_counts()['Q'], 1u);
}

TEST(mold_round_trip_splits_packets) {
  auto events = sample_events();
  EncoderOptions options;
  options.framing = Framing::kMoldUdp64;
  options.session_date_ns = kMidnight;
  options.first_sequence = 1;
  options.max_messages_per_packet = 3;
  ItchEncoder encoder(options);
  for (const auto& e : events) CHECK(encoder.encode(e) == Status::kOk);
  encoder.end_session();
  CHECK_EQ(encoder.packets().size(), 5u);  // 3 + 3 + 3 + 1, then end of session
  ItchDecoder decoder(decoder_options(Framing::kMoldUdp64));
  std::vector<MdEvent> out;
  for (const auto& packet : encoder.packets()) {
    CHECK(decoder.decode(packet.data(), packet.size(), out) == Status::kOk);
  }
  CHECK(decoder.end_of_session());
  CHECK_EQ(out.size(), events.size());
  for (std::size_t i = 0; i < events.size() && i < out.size(); ++i) CHECK(same(out[i], events[i]));
}

TEST(directory_and_instrument_map) {
  EncoderOptions encoder_options;
  ItchEncoder encoder(encoder_options);
  CHECK(encoder.system_event('O', 5) == Status::kOk);
  CHECK(encoder.stock_directory(7, "AAPL", 100, 6) == Status::kOk);
  auto add = make(EventKind::kAdd, 3, 1, Side::kBuy, 100, 10, 0, 0);
  add.ts_event = 7;
  CHECK(encoder.encode(add) == Status::kOk);
  add.instrument_id = 8;  // locate 8 never appears in the directory
  CHECK(encoder.encode(add) == Status::kOk);
  const auto& bytes = encoder.bytes();

  DecoderOptions options;
  options.instruments.emplace();
  (*options.instruments)["AAPL"] = 42;
  ItchDecoder decoder(options);
  std::vector<MdEvent> out;
  CHECK(decoder.decode(bytes.data(), bytes.size(), out) == Status::kOk);
  CHECK_EQ(out.size(), 4u);
  CHECK(out[0].kind == EventKind::kStatus);
  CHECK_EQ(out[0].related_id, static_cast<std::uint64_t>('S'));
  CHECK_EQ(out[0].order_id, static_cast<std::uint64_t>('O'));
  CHECK(out[1].kind == EventKind::kStatus);
  CHECK_EQ(out[1].instrument_id, 42u);
  CHECK(out[2].kind == EventKind::kAdd);
  CHECK_EQ(out[2].instrument_id, 42u);
  CHECK(out[3].kind == EventKind::kStatus);
  CHECK_EQ(out[3].related_id, static_cast<std::uint64_t>('A'));
  CHECK_EQ(out[3].instrument_id, kUnmappedInstrument);
  CHECK_EQ(out[3].sequence, 4u);
  CHECK_EQ(decoder.unmapped_messages(), 1u);
  CHECK_EQ(decoder.directory().size(), 1u);
  CHECK(decoder.directory()[0].symbol_view() == "AAPL");
  CHECK_EQ(decoder.directory()[0].round_lot_size, 100u);
}

TEST(truncated_frame_reported_on_finish) {
  const auto bytes = encode_file(sample_events());
  ItchDecoder decoder(decoder_options(Framing::kFile));
  std::vector<MdEvent> out;
  const std::size_t cut = bytes.size() - 5;
  CHECK(decoder.decode(bytes.data(), cut, out) == Status::kOk);
  CHECK_EQ(out.size(), 9u);
  CHECK(decoder.finish() == Status::kTruncated);
  CHECK_EQ(decoder.error_offset(), bytes.size() - 21);  // the B frame is 2 + 19 bytes
}

TEST(unknown_type_is_malformed) {
  auto bytes = encode_file(sample_events());
  const std::size_t second = 2 + 36;
  bytes[second + 2] = 'Z';
  ItchDecoder decoder(decoder_options(Framing::kFile));
  std::vector<MdEvent> out;
  CHECK(decoder.decode(bytes.data(), bytes.size(), out) == Status::kMalformed);
  CHECK_EQ(decoder.error_offset(), second);
  CHECK_EQ(out.size(), 1u);
  CHECK(decoder.error_reason().find("'Z'") != std::string_view::npos);
}

TEST(bad_length_is_malformed) {
  auto prefix = encode_file({sample_events()[0]});
  const auto frame = add_frame('A', 30, 'B');
  prefix.insert(prefix.end(), frame.begin(), frame.end());
  ItchDecoder decoder(decoder_options(Framing::kFile));
  std::vector<MdEvent> out;
  CHECK(decoder.decode(prefix.data(), prefix.size(), out) == Status::kMalformed);
  CHECK_EQ(decoder.error_offset(), 38u);
  CHECK_EQ(out.size(), 1u);
  CHECK(decoder.error_reason() == "message type 'A' must be 36 bytes, frame declares 30");
}

TEST(bad_side_is_malformed) {
  const auto frame = add_frame('A', 36, 'X');
  ItchDecoder decoder(decoder_options(Framing::kFile));
  std::vector<MdEvent> out;
  CHECK(decoder.decode(frame.data(), frame.size(), out) == Status::kMalformed);
  CHECK_EQ(decoder.error_offset(), 0u);
  CHECK(out.empty());
  // The error is sticky: later input is not consumed.
  CHECK(decoder.decode(frame.data(), frame.size(), out) == Status::kMalformed);
  CHECK(out.empty());
}

TEST(mold_count_overrun_is_malformed) {
  EncoderOptions options;
  options.framing = Framing::kMoldUdp64;
  options.session_date_ns = kMidnight;
  ItchEncoder encoder(options);
  const auto events = sample_events();
  CHECK(encoder.encode(events[0]) == Status::kOk);
  CHECK(encoder.encode(events[1]) == Status::kOk);
  encoder.flush();
  auto packet = encoder.packets().at(0);
  packet[19] = 3;  // declares 3 messages, holds 2
  ItchDecoder decoder(decoder_options(Framing::kMoldUdp64));
  std::vector<MdEvent> out;
  CHECK(decoder.decode(packet.data(), packet.size(), out) == Status::kMalformed);
  CHECK_EQ(decoder.error_offset(), packet.size());
  CHECK_EQ(out.size(), 2u);

  ItchDecoder short_decoder(decoder_options(Framing::kMoldUdp64));
  out.clear();
  CHECK(short_decoder.decode(packet.data(), packet.size() - 4, out) == Status::kTruncated);
  CHECK_EQ(short_decoder.error_offset(), 20u + 38u);
  CHECK_EQ(out.size(), 1u);
}

TEST(streamed_chunks_match_one_shot_at_every_split) {
  const auto events = sample_events();
  const auto bytes = encode_file(events);
  for (std::size_t split = 0; split <= bytes.size(); ++split) {
    for (std::size_t second = split; second <= bytes.size(); second += 37) {
      ItchDecoder decoder(decoder_options(Framing::kFile));
      std::vector<MdEvent> out;
      CHECK(decoder.decode(bytes.data(), split, out) == Status::kOk);
      CHECK(decoder.decode(bytes.data() + split, second - split, out) == Status::kOk);
      CHECK(decoder.decode(bytes.data() + second, bytes.size() - second, out) == Status::kOk);
      CHECK(decoder.finish() == Status::kOk);
      CHECK_EQ(out.size(), events.size());
      for (std::size_t i = 0; i < events.size() && i < out.size(); ++i) {
        CHECK(same(out[i], events[i]));
      }
    }
  }
  // One byte at a time.
  ItchDecoder decoder(decoder_options(Framing::kFile));
  std::vector<MdEvent> out;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    CHECK(decoder.decode(bytes.data() + i, 1, out) == Status::kOk);
  }
  CHECK(decoder.finish() == Status::kOk);
  CHECK_EQ(out.size(), events.size());
}

TEST(encoder_refuses_what_it_cannot_write) {
  EncoderOptions options;
  options.session_date_ns = kMidnight;
  ItchEncoder encoder(options);
  auto status = make(EventKind::kStatus, 1, 0, Side::kNone, 0, 0, 'S', 0);
  CHECK(encoder.encode(status) == Status::kInvalidKind);
  auto bad_side = make(EventKind::kAdd, 1, 1, Side::kNone, 1, 1, 0, 0);
  CHECK(encoder.encode(bad_side) == Status::kInvalidSide);
  auto early = make(EventKind::kDelete, 1, 1, Side::kNone, 0, 0, 0, 0);
  early.ts_event = kMidnight - 1;
  CHECK(encoder.encode(early) != Status::kOk);
  early.ts_event = kMidnight + (std::int64_t{1} << 48);
  CHECK(encoder.encode(early) != Status::kOk);
  CHECK(encoder.bytes().empty());
  CHECK_EQ(encoder.messages_written(), 0u);
}
