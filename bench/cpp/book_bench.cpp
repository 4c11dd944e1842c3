// C++ book benchmark: per-update latency percentiles and throughput for the L3 and L2 books on
// a synthetic stream with a realistic message mix. Usage: book_bench [events] [seed]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sor/book_bench.hpp"
#include "sor/synthetic_flow.hpp"

namespace {

double percentile(std::vector<double> v, double q) {
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void report(const char* name, const std::vector<sor::MdEvent>& events) {
  std::vector<double> latency(events.size());
  const sor::BookBenchResult r =
      sor::bench_book(name[1] == '3', events.data(), events.size(), latency.data());
  if (r.status != sor::Status::kOk) {
    std::printf("%s: stream rejected at %llu (%s)\n", name,
                static_cast<unsigned long long>(r.failed_index),
                std::string(sor::status_name(r.status)).c_str());
    return;
  }
  std::printf("%s  events=%zu  p50=%.1f ns  p99=%.1f ns  p99.9=%.1f ns  throughput=%.1f M/s"
              "  (timer overhead %.1f ns subtracted)\n",
              name, events.size(), percentile(latency, 0.5), percentile(latency, 0.99),
              percentile(latency, 0.999), r.throughput_per_s / 1e6, r.timer_overhead_ns);
}

}  // namespace

int main(int argc, char** argv) {
  sor::SyntheticFlowParams params;
  params.event_count = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1'000'000;
  params.seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 7;
  const auto l3 = sor::generate_order_flow(params);
  const auto l2 = sor::to_level_updates(l3.data(), l3.size());
  report("L3", l3);
  report("L2", l2);
  return 0;
}
