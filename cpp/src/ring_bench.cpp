#include "sor/ring_bench.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "sor/latency.hpp"
#include "sor/ring.hpp"

namespace sor {
namespace {

struct BenchRecord {
  std::uint64_t sequence;
  std::uint64_t sent_tick;
  std::uint64_t received_tick;
  std::uint64_t padding[5];
};
static_assert(sizeof(BenchRecord) == kRingBenchRecordSize);

// Pins for the lifetime of the object and restores the previous affinity afterwards, so a
// Python thread that ran a benchmark is not left on one core.
class ScopedPin {
 public:
  explicit ScopedPin(int cpu) noexcept {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return;
    if (pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_) != 0) return;
    pinned_ = pin_current_thread(cpu);
  }
  ~ScopedPin() {
    if (pinned_) pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_);
  }
  ScopedPin(const ScopedPin&) = delete;
  ScopedPin& operator=(const ScopedPin&) = delete;
  bool pinned() const noexcept { return pinned_; }

 private:
  cpu_set_t saved_{};
  bool pinned_ = false;
};

RingBenchResult failed(RingBenchResult result, RingBenchStatus status, std::string detail) {
  result.status = status;
  result.detail = std::move(detail);
  return result;
}

RingOptions ring_options(const RingBenchOptions& options, const char* suffix) {
  RingOptions o;
  o.name = options.name + suffix;
  o.capacity_records = options.capacity_records;
  o.record_size = kRingBenchRecordSize;
  // A segment left by a crashed earlier run is replaced; one held by a live process is not.
  o.stale_policy = StalePolicy::kTakeover;
  return o;
}

// Attaches by name, retrying while the creating side has not made the segment yet (not found)
// or is still initialising it (magic not yet written: a layout mismatch until then).
RingResult attach_when_ready(const RingBenchOptions& options, const char* suffix, RingRole role,
                             std::int64_t deadline_ns, Ring& out) {
  for (;;) {
    RingResult r = Ring::attach(options.name + suffix, role, RecordType::kRaw,
                                kRingBenchRecordSize, StalePolicy::kError, out);
    const bool not_ready =
        r.status == RingStatus::kNotFound || r.status == RingStatus::kLayoutMismatch;
    if (r || !not_ready || CycleClock::steady_ns() > deadline_ns) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Checks the clock and the peer only every few million polls: the poll itself must stay a
// load and a compare, or it would measure the check.
class PollGuard {
 public:
  PollGuard(const Ring& ring, RingRole peer, std::int64_t timeout_ns) noexcept
      : ring_(ring), peer_(peer), timeout_ns_(timeout_ns),
        deadline_ns_(CycleClock::steady_ns() + timeout_ns) {}
  // Returns false when the wait should be abandoned.
  bool keep_waiting() noexcept {
    if (++polls_ < (1u << 22)) return true;
    polls_ = 0;
    const PeerState state = ring_.end_state(peer_, 0);
    if (state == PeerState::kDead || state == PeerState::kClosed) return false;
    return CycleClock::steady_ns() < deadline_ns_;
  }
  // Starts a new wait.
  void reset() noexcept {
    polls_ = 0;
    deadline_ns_ = CycleClock::steady_ns() + timeout_ns_;
  }

 private:
  const Ring& ring_;
  RingRole peer_;
  std::int64_t timeout_ns_;
  std::int64_t deadline_ns_;
  std::uint32_t polls_ = 0;
};

bool wait_for_attach(const Ring& ring, RingRole end, std::int64_t deadline_ns) {
  while (ring.end_state(end, 0) != PeerState::kAlive) {
    if (CycleClock::steady_ns() > deadline_ns) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

void spin_for(std::int64_t ns) noexcept {
  if (ns <= 0) return;
  const std::int64_t until = CycleClock::steady_ns() + ns;
  while (CycleClock::steady_ns() < until) {
  }
}

}  // namespace

const char* ring_bench_status_name(RingBenchStatus status) noexcept {
  switch (status) {
    case RingBenchStatus::kOk: return "ok";
    case RingBenchStatus::kRingError: return "ring_error";
    case RingBenchStatus::kPeerTimeout: return "peer_timeout";
    case RingBenchStatus::kDataError: return "data_error";
  }
  return "unknown_status";
}

bool pin_current_thread(int cpu) noexcept {
  if (cpu < 0 || cpu >= CPU_SETSIZE) return false;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

RingBenchResult ring_latency_send(const RingBenchOptions& options, double* one_way_ns,
                                  double* round_trip_half_ns) noexcept {
  RingBenchResult result;
  const ScopedPin pin(options.cpu);
  result.pinned = pin.pinned();
  const CycleClock clock;
  result.ns_per_tick = clock.ns_per_tick();
  result.timer_overhead_ns = clock.overhead_ticks() * clock.ns_per_tick();

  Ring out;
  Ring back;
  RingResult made = Ring::create(ring_options(options, "-out"), RingRole::kProducer, out);
  if (made) made = Ring::create(ring_options(options, "-back"), RingRole::kConsumer, back);
  if (!made) return failed(result, RingBenchStatus::kRingError, made.detail);
  const std::int64_t attach_deadline = CycleClock::steady_ns() + options.peer_timeout_ns;
  if (!wait_for_attach(out, RingRole::kConsumer, attach_deadline) ||
      !wait_for_attach(back, RingRole::kProducer, attach_deadline)) {
    return failed(result, RingBenchStatus::kPeerTimeout,
                  "the echo side did not attach to '" + options.name + "-out/-back' in time");
  }

  const double scale = clock.ns_per_tick();
  const std::uint64_t total = options.warmup + options.samples;
  BenchRecord record{};
  PollGuard guard(back, RingRole::kProducer, options.peer_timeout_ns);
  for (std::uint64_t i = 0; i < total; ++i) {
    spin_for(options.gap_ns);
    record.sequence = i;
    record.sent_tick = CycleClock::now();
    out.try_write(&record);  // paced: the previous record was consumed, so there is room
    const void* slot = nullptr;
    guard.reset();
    while (back.peek(1, &slot) == 0) {
      if (!guard.keep_waiting()) {
        return failed(result, RingBenchStatus::kPeerTimeout,
                      "the echo side stopped answering after " + std::to_string(i) + " records");
      }
    }
    const std::uint64_t answered_tick = CycleClock::now();
    BenchRecord echo;
    std::memcpy(&echo, slot, sizeof(echo));
    back.release(1);
    if (echo.sequence != i) {
      return failed(result, RingBenchStatus::kDataError,
                    "echo of record " + std::to_string(i) + " carried sequence " +
                        std::to_string(echo.sequence));
    }
    result.records = i + 1;
    if (i < options.warmup) continue;
    const std::uint64_t k = i - options.warmup;
    // Signed: on a host whose cores' counters are not synchronised the difference can be < 0.
    const auto one_way = static_cast<std::int64_t>(echo.received_tick - record.sent_tick);
    if (one_way < 0) ++result.negative_samples;
    one_way_ns[k] = one_way > 0 ? static_cast<double>(one_way) * scale : 0.0;
    round_trip_half_ns[k] = static_cast<double>(answered_tick - record.sent_tick) * scale / 2;
  }
  return result;
}

RingBenchResult ring_latency_echo(const RingBenchOptions& options) noexcept {
  RingBenchResult result;
  const ScopedPin pin(options.cpu);
  result.pinned = pin.pinned();
  const std::int64_t deadline = CycleClock::steady_ns() + options.peer_timeout_ns;
  Ring in;
  Ring back;
  RingResult attached = attach_when_ready(options, "-out", RingRole::kConsumer, deadline, in);
  if (attached) attached = attach_when_ready(options, "-back", RingRole::kProducer, deadline, back);
  if (!attached) return failed(result, RingBenchStatus::kRingError, attached.detail);

  const std::uint64_t total = options.warmup + options.samples;
  PollGuard guard(in, RingRole::kProducer, options.peer_timeout_ns);
  for (std::uint64_t i = 0; i < total; ++i) {
    const void* slot = nullptr;
    guard.reset();
    while (in.peek(1, &slot) == 0) {
      if (!guard.keep_waiting()) {
        return failed(result, RingBenchStatus::kPeerTimeout,
                      "the sender stopped after " + std::to_string(i) + " records");
      }
    }
    const std::uint64_t received_tick = CycleClock::now();
    BenchRecord record;
    std::memcpy(&record, slot, sizeof(record));
    in.release(1);
    record.received_tick = received_tick;
    back.try_write(&record);
    result.records = i + 1;
  }
  return result;
}

RingBenchResult ring_throughput_send(const RingBenchOptions& options) noexcept {
  RingBenchResult result;
  const ScopedPin pin(options.cpu);
  result.pinned = pin.pinned();
  Ring ring;
  const RingResult made = Ring::create(ring_options(options, "-tput"), RingRole::kProducer, ring);
  if (!made) return failed(result, RingBenchStatus::kRingError, made.detail);
  if (!wait_for_attach(ring, RingRole::kConsumer,
                       CycleClock::steady_ns() + options.peer_timeout_ns)) {
    return failed(result, RingBenchStatus::kPeerTimeout,
                  "the receiver did not attach to '" + options.name + "-tput' in time");
  }
  const std::uint32_t batch = std::max<std::uint32_t>(options.batch_records, 1);
  std::vector<BenchRecord> records(batch, BenchRecord{});
  const std::uint64_t total = options.throughput_records;
  PollGuard guard(ring, RingRole::kConsumer, options.peer_timeout_ns);
  const std::int64_t start_ns = CycleClock::steady_ns();
  std::uint64_t sequence = 0;
  while (sequence < total) {
    void* slots = nullptr;
    const std::uint64_t want = std::min<std::uint64_t>(batch, total - sequence);
    const std::uint64_t n = ring.claim(want, &slots);
    if (n == 0) {
      if (!guard.keep_waiting()) {
        return failed(result, RingBenchStatus::kPeerTimeout,
                      "the receiver stopped after " + std::to_string(sequence) + " records");
      }
      continue;
    }
    guard.reset();
    for (std::uint64_t j = 0; j < n; ++j) records[j].sequence = sequence + j;
    std::memcpy(slots, records.data(), n * sizeof(BenchRecord));
    ring.publish(n);
    sequence += n;
  }
  while (ring.size() != 0) {
    if (!guard.keep_waiting()) {
      return failed(result, RingBenchStatus::kPeerTimeout,
                    "the receiver did not consume the last records in time");
    }
  }
  const std::int64_t end_ns = CycleClock::steady_ns();
  result.records = total;
  result.elapsed_ns = static_cast<double>(end_ns - start_ns);
  result.throughput_per_s = static_cast<double>(total) * 1e9 / std::max(result.elapsed_ns, 1.0);
  return result;
}

RingBenchResult ring_throughput_receive(const RingBenchOptions& options) noexcept {
  RingBenchResult result;
  const ScopedPin pin(options.cpu);
  result.pinned = pin.pinned();
  Ring ring;
  const RingResult attached =
      attach_when_ready(options, "-tput", RingRole::kConsumer,
                        CycleClock::steady_ns() + options.peer_timeout_ns, ring);
  if (!attached) return failed(result, RingBenchStatus::kRingError, attached.detail);
  const std::uint32_t batch = std::max<std::uint32_t>(options.batch_records, 1);
  const std::uint64_t total = options.throughput_records;
  PollGuard guard(ring, RingRole::kProducer, options.peer_timeout_ns);
  std::uint64_t expected = 0;
  const std::int64_t start_ns = CycleClock::steady_ns();
  while (expected < total) {
    const void* slots = nullptr;
    const std::uint64_t n = ring.peek(batch, &slots);
    if (n == 0) {
      if (!guard.keep_waiting()) {
        return failed(result, RingBenchStatus::kPeerTimeout,
                      "the sender stopped after " + std::to_string(expected) + " records");
      }
      continue;
    }
    guard.reset();
    const auto* records = static_cast<const BenchRecord*>(slots);
    std::uint64_t mismatches = 0;
    for (std::uint64_t j = 0; j < n; ++j) mismatches += records[j].sequence != expected + j;
    if (mismatches != 0) {
      return failed(result, RingBenchStatus::kDataError,
                    "records out of sequence in the batch starting at " +
                        std::to_string(expected));
    }
    ring.release(n);
    expected += n;
  }
  result.records = total;
  result.elapsed_ns = static_cast<double>(CycleClock::steady_ns() - start_ns);
  result.throughput_per_s = static_cast<double>(total) * 1e9 / std::max(result.elapsed_ns, 1.0);
  return result;
}

RingBenchResult ring_latency_threads(const RingBenchOptions& options, int echo_cpu,
                                     double* one_way_ns, double* round_trip_half_ns) noexcept {
  RingBenchOptions echo_options = options;
  echo_options.cpu = echo_cpu;
  RingBenchResult echo_result;
  std::thread echo([&] { echo_result = ring_latency_echo(echo_options); });
  RingBenchResult result = ring_latency_send(options, one_way_ns, round_trip_half_ns);
  echo.join();
  if (result.status == RingBenchStatus::kOk && echo_result.status != RingBenchStatus::kOk) {
    return failed(result, echo_result.status, "echo thread: " + echo_result.detail);
  }
  result.pinned = result.pinned && echo_result.pinned;
  return result;
}

RingBenchResult ring_throughput_threads(const RingBenchOptions& options,
                                        int receiver_cpu) noexcept {
  RingBenchOptions receiver_options = options;
  receiver_options.cpu = receiver_cpu;
  RingBenchResult receiver_result;
  std::thread receiver([&] { receiver_result = ring_throughput_receive(receiver_options); });
  RingBenchResult result = ring_throughput_send(options);
  receiver.join();
  if (result.status == RingBenchStatus::kOk && receiver_result.status != RingBenchStatus::kOk) {
    return failed(result, receiver_result.status, "receiver thread: " + receiver_result.detail);
  }
  result.pinned = result.pinned && receiver_result.pinned;
  return result;
}

}  // namespace sor
