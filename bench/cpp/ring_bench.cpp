// C++ ring benchmark: paced one-way latency and batched throughput of 64-byte records between
// two threads and between two processes (fork), producer pinned to cpu 0 and consumer to cpu 1
// where the host allows. Usage: ring_bench [samples] [throughput_records]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sor/ring_bench.hpp"

namespace {

double percentile(std::vector<double> v, double q) {
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void print_latency(const char* label, const sor::RingBenchResult& r,
                   const std::vector<double>& one_way, const std::vector<double>& half) {
  if (r.status != sor::RingBenchStatus::kOk) {
    std::printf("%s: %s: %s\n", label, sor::ring_bench_status_name(r.status), r.detail.c_str());
    return;
  }
  std::printf("%s one-way  p50=%.1f  p99=%.1f  p99.9=%.1f  max=%.1f ns   round trip/2 p50=%.1f ns"
              "   (pinned: %s, negative: %llu)\n",
              label, percentile(one_way, 0.5), percentile(one_way, 0.99),
              percentile(one_way, 0.999), *std::max_element(one_way.begin(), one_way.end()),
              percentile(half, 0.5), r.pinned ? "yes" : "no",
              static_cast<unsigned long long>(r.negative_samples));
}

void print_throughput(const char* label, const sor::RingBenchResult& r) {
  if (r.status != sor::RingBenchStatus::kOk) {
    std::printf("%s: %s: %s\n", label, sor::ring_bench_status_name(r.status), r.detail.c_str());
    return;
  }
  std::printf("%s throughput  %.1f M records/s  (%llu records, pinned: %s)\n", label,
              r.throughput_per_s / 1e6, static_cast<unsigned long long>(r.records),
              r.pinned ? "yes" : "no");
}

// Runs `child` in a forked process (this program has no other threads at that point).
template <class Child>
pid_t fork_child(Child&& child) {
  const pid_t pid = fork();
  if (pid == 0) _exit(child().status == sor::RingBenchStatus::kOk ? 0 : 1);
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  sor::RingBenchOptions options;
  options.name = "sor-ring-bench-" + std::to_string(getpid());
  options.samples = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200'000;
  options.throughput_records = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 20'000'000;
  options.cpu = 0;
  std::vector<double> one_way(options.samples);
  std::vector<double> half(options.samples);

  print_latency("threads  ", sor::ring_latency_threads(options, 1, one_way.data(), half.data()),
                one_way, half);
  print_throughput("threads  ", sor::ring_throughput_threads(options, 1));

  sor::RingBenchOptions child = options;
  child.cpu = 1;
  pid_t pid = fork_child([&] { return sor::ring_latency_echo(child); });
  const sor::RingBenchResult latency = sor::ring_latency_send(options, one_way.data(), half.data());
  int status = 0;
  waitpid(pid, &status, 0);
  print_latency("processes", latency, one_way, half);
  pid = fork_child([&] { return sor::ring_throughput_receive(child); });
  const sor::RingBenchResult throughput = sor::ring_throughput_send(options);
  waitpid(pid, &status, 0);
  print_throughput("processes", throughput);
  return 0;
}
