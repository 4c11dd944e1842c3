#include "sor/feature_bench.hpp"

#include <algorithm>
#include <vector>

#include "sor/consolidated.hpp"
#include "sor/features.hpp"
#include "sor/latency.hpp"
#include "sor/random.hpp"
#include "sor/synthetic_flow.hpp"

namespace sor {
namespace {

constexpr std::uint8_t kLitVenues = 4;
constexpr std::uint8_t kDarkVenue = 4;
constexpr std::uint32_t kInstruments = 4;
constexpr std::size_t kRowEvery = 64;

FeatureOptions bench_options() {
  FeatureOptions o;
  for (std::uint8_t v = 0; v < kLitVenues; ++v) {
    o.venues.push_back({v, true, BookType::kL3, -0.0020, 0.0030, 0.0015, 90'000});
  }
  o.venues.push_back({kDarkVenue, false, BookType::kL3, 0.0010, 0.0010, 0.0010, 160'000});
  o.max_instruments = kInstruments;
  o.garch = GarchParams{0.5, 0.1, 0.85, 60'000'000'000, 0.0};
  return o;
}

// The synthetic L3 flow merged in ts_recv order, with a dark midpoint print now and then.
std::vector<MdEvent> bench_stream(std::uint64_t events, std::uint64_t seed) {
  SyntheticFlowParams p;
  p.seed = seed;
  p.event_count = static_cast<std::size_t>(events);
  p.venue_count = kLitVenues;
  p.instrument_count = kInstruments;
  p.mean_gap_ns = 20'000.0;
  std::vector<MdEvent> stream = generate_order_flow(p);
  // stable: a venue's own events keep their sequence order
  std::stable_sort(stream.begin(), stream.end(),
                   [](const MdEvent& a, const MdEvent& b) { return a.ts_recv < b.ts_recv; });
  Random rng(seed ^ 0xD1B54A32D192ED03ull);
  std::vector<MdEvent> out;
  out.reserve(stream.size() + stream.size() / 100 + 1);
  std::uint64_t match = 1;
  for (const MdEvent& e : stream) {
    out.push_back(e);
    if (rng.below(200) == 0) {
      MdEvent t = e;
      t.kind = EventKind::kTrade;
      t.venue_id = kDarkVenue;
      t.sequence = 0;
      t.order_id = 0;
      t.related_id = match++;
      t.quantity = 100 * static_cast<std::int64_t>(1 + rng.below(20));
      t.side = rng.below(2) == 0 ? Side::kBuy : Side::kSell;
      t.flags = kFlagPrintable;
      out.push_back(t);
    }
  }
  if (out.size() > events) out.resize(static_cast<std::size_t>(events));
  return out;
}

void percentiles(std::vector<double>& v, double& p50, double& p99, double& p999, double& mean) {
  if (v.empty()) return;
  double total = 0;
  for (double x : v) total += x;
  mean = total / static_cast<double>(v.size());
  std::sort(v.begin(), v.end());
  auto at = [&v](double q) {
    const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
    return v[k];
  };
  p50 = at(0.50);
  p99 = at(0.99);
  p999 = at(0.999);
}

}  // namespace

FeatureBenchResult bench_feature_update(std::uint64_t events, std::uint64_t seed) {
  FeatureBenchResult result;
  result.method =
      "per event: rdtsc (lfence-ordered) pair around FeatureEngine::on_event only, the "
      "ConsolidatedBook apply before it untimed; mean empty-pair timer overhead subtracted; "
      "one build_row per 64 events timed the same way";
  const std::vector<MdEvent> stream = bench_stream(events, seed);
  const FeatureOptions options = bench_options();
  BookOptions book_options;
  book_options.reserve_orders = 1u << 16;
  {
    // Warm-up pass: page in the code and the tables of a first engine, untimed.
    ConsolidatedBook book(book_venues(options), book_options);
    FeatureEngine engine(options);
    for (const MdEvent& e : stream) {
      if (book.apply(e) == Status::kOk) engine.on_event(e, book);
    }
  }
  ConsolidatedBook book(book_venues(options), book_options);
  FeatureEngine engine(options);
  const CycleClock clock;
  const double scale = clock.ns_per_tick();
  const double overhead = clock.overhead_ticks();
  result.timer_overhead_ns = overhead * scale;
  std::vector<double> update_ns;
  std::vector<double> row_ns;
  update_ns.reserve(stream.size());
  row_ns.reserve(stream.size() / kRowEvery + 1);
  Random rng(seed + 17);
  float row[kFeatureCount];
  auto elapsed = [&](std::uint64_t t0, std::uint64_t t1) {
    const double ticks = static_cast<double>(t1 - t0) - overhead;
    return ticks > 0 ? ticks * scale : 0.0;
  };
  for (std::size_t n = 0; n < stream.size(); ++n) {
    const MdEvent& e = stream[n];
    if (book.apply(e) != Status::kOk) continue;
    const std::uint64_t t0 = CycleClock::now();
    engine.on_event(e, book);
    const std::uint64_t t1 = CycleClock::now();
    update_ns.push_back(elapsed(t0, t1));
    if (n % kRowEvery == 0) {
      DecisionContext c{};
      c.now_ns = e.ts_recv;
      c.start_ns = e.ts_recv - 60'000'000'000;
      c.end_ns = e.ts_recv + 600'000'000'000;
      c.parent_quantity = 50'000;
      c.remaining_quantity = 20'000;
      c.child_quantity = 100 * static_cast<std::int64_t>(1 + rng.below(50));
      c.arrival_mid_ticks = 10'000.0;
      c.instrument_id = static_cast<std::uint32_t>(rng.below(kInstruments));
      c.venue_id = static_cast<std::uint8_t>(rng.below(kLitVenues + 1));
      c.side = rng.below(2) == 0 ? Side::kBuy : Side::kSell;
      c.order_type = static_cast<ChildOrderType>(rng.below(3));
      const std::uint64_t r0 = CycleClock::now();
      (void)engine.build_row(c, book, row);
      const std::uint64_t r1 = CycleClock::now();
      row_ns.push_back(elapsed(r0, r1));
    }
  }
  result.events = update_ns.size();
  result.rows = row_ns.size();
  percentiles(update_ns, result.p50_ns, result.p99_ns, result.p999_ns, result.mean_ns);
  percentiles(row_ns, result.build_row_p50_ns, result.build_row_p99_ns, result.build_row_p999_ns,
              result.build_row_mean_ns);
  return result;
}

}  // namespace sor
