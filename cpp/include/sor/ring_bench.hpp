// The ring benchmark harness shared by `sor bench ring` and bench/cpp/ring_bench.cpp: paced
// one-way latency (with an echo that also gives the round trip) and batched throughput of
// 64-byte records, between two threads or two processes attached to the same rings by name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace sor {

// Bytes per benchmark record (one cache line).
inline constexpr std::uint32_t kRingBenchRecordSize = 64;

// Outcome of one side of a ring benchmark run.
enum class RingBenchStatus : std::uint8_t {
  kOk = 0,
  kRingError = 1,    // A ring could not be created or attached (the detail says why).
  kPeerTimeout = 2,  // The other side did not attach, answer or finish in time.
  kDataError = 3,    // A record arrived out of sequence.
};

// Returns a short, stable name for a benchmark status ("peer_timeout").
const char* ring_bench_status_name(RingBenchStatus status) noexcept;

// Parameters of a ring benchmark run; both sides of a run must be given the same values.
struct RingBenchOptions {
  std::string name = "sor-bench-ring";          // Base ring name; suffixes -out, -back, -tput.
  std::uint64_t samples = 200'000;              // Timed latency exchanges.
  std::uint64_t warmup = 20'000;                // Untimed exchanges before the samples.
  std::int64_t gap_ns = 0;                      // Sender's pause between paced exchanges.
  std::uint64_t throughput_records = 20'000'000;  // Records sent in a throughput run.
  std::uint32_t batch_records = 256;            // Records per write or peek in a throughput run.
  std::uint64_t capacity_records = 1 << 16;     // Slots per ring; a power of two.
  int cpu = -1;                                 // Core this side pins itself to (-1: none).
  std::int64_t peer_timeout_ns = 20'000'000'000;  // How long to wait for the other side.
};

// What one side of a run measured.
struct RingBenchResult {
  RingBenchStatus status = RingBenchStatus::kOk;  // kOk, or why the run stopped.
  std::string detail;                 // Human-readable reason, empty on success.
  bool pinned = false;                // This side ran pinned to options.cpu.
  double ns_per_tick = 0;             // Calibration of the cycle counter (sender side).
  double timer_overhead_ns = 0;       // Mean cost of one counter read pair (not subtracted).
  std::uint64_t negative_samples = 0; // One-way samples below zero (clamped to 0).
  std::uint64_t records = 0;          // Records exchanged, timed or not.
  double elapsed_ns = 0;              // Throughput run: first write to last record consumed.
  double throughput_per_s = 0;        // Throughput run: records per second.
};

// Pins the calling thread to `cpu`; returns false when the host does not allow it.
bool pin_current_thread(int cpu) noexcept;

// Sender of a latency run: creates the rings, waits for the echo side, then sends
// warmup + samples records one at a time, each stamped with the cycle counter, waiting for each
// echo before the next. Writes one_way_ns[samples] (echo's counter on receipt minus the stamp)
// and round_trip_half_ns[samples] (stamp to echo received, halved).
RingBenchResult ring_latency_send(const RingBenchOptions& options, double* one_way_ns,
                                  double* round_trip_half_ns) noexcept;

// Echo side of a latency run: attaches to the rings by name, and for each record takes the
// cycle counter on receipt and sends it back.
RingBenchResult ring_latency_echo(const RingBenchOptions& options) noexcept;

// Sender of a throughput run: creates the ring, waits for the receiver, writes
// throughput_records records in batches and times until the receiver has consumed them all.
RingBenchResult ring_throughput_send(const RingBenchOptions& options) noexcept;

// Receiver of a throughput run: attaches by name and consumes every record in batches in
// place (peek/release), checking each sequence number.
RingBenchResult ring_throughput_receive(const RingBenchOptions& options) noexcept;

// Runs a latency run with the echo on a second thread pinned to `echo_cpu`.
RingBenchResult ring_latency_threads(const RingBenchOptions& options, int echo_cpu,
                                     double* one_way_ns, double* round_trip_half_ns) noexcept;

// Runs a throughput run with the receiver on a second thread pinned to `receiver_cpu`.
RingBenchResult ring_throughput_threads(const RingBenchOptions& options,
                                        int receiver_cpu) noexcept;

}  // namespace sor
