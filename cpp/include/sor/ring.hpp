// Single-producer single-consumer rings of fixed-size records in POSIX shared memory.
// The layout and memory-ordering argument is in docs/rings.md.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "sor/types.hpp"

namespace sor {

// "SORRING1" read as a little-endian integer; written last when a segment is initialised.
inline constexpr std::uint64_t kRingMagic = 0x31474e4952524f53ULL;
// Bumped whenever the header or record layout changes.
inline constexpr std::uint32_t kRingLayoutVersion = 1;
// Byte offset of the first record slot in a segment.
inline constexpr std::size_t kRingDataOffset = 1024;

// Which record struct a ring carries (checked on attach).
enum class RecordType : std::uint32_t {
  kRaw = 0,          // Opaque fixed-size records.
  kMdEvent = 1,      // MdEvent.
  kCommand = 2,      // Command.
  kExecReport = 3,   // ExecReport.
  kOrderIntent = 4,  // OrderIntent.
  kAuditRecord = 5,  // AuditRecord.
  kDecisionRecord = 6,  // DecisionRecord (384 bytes).
};

// What a producer does when the ring is full.
enum class OverflowPolicy : std::uint8_t {
  kRefuse = 0,  // Writes what fits, refuses the rest at once and counts it.
  kSpin = 1,    // Spins for space up to the ring's spin limit, then refuses and counts.
};

// Which end of a ring a handle holds.
enum class RingRole : std::uint8_t {
  kProducer = 0,  // Writes records.
  kConsumer = 1,  // Reads records.
  kObserver = 2,  // Reads counters only.
};

// What to do with a segment or role left behind by a dead process.
enum class StalePolicy : std::uint8_t {
  kError = 0,     // Refuse, naming the dead process.
  kTakeover = 1,  // Remove the stale segment (or role) and carry on.
};

// State of the process at the other end of a ring.
enum class PeerState : std::uint8_t {
  kAbsent = 0,   // No process holds the role.
  kAlive = 1,    // The process exists and its heartbeat is fresh.
  kStalled = 2,  // The process exists but its heartbeat is older than the timeout.
  kDead = 3,     // The process holding the role no longer exists.
  kClosed = 4,   // The process released the role cleanly.
};

// Outcome of creating or attaching a ring.
enum class RingStatus : std::uint8_t {
  kOk = 0,
  kInvalidArgument = 1,  // Bad name, capacity (not a power of two) or record size.
  kInUse = 2,            // A segment of that name is held by a live process.
  kNotFound = 3,         // No segment of that name.
  kLayoutMismatch = 4,   // The segment has another magic or layout version.
  kRecordMismatch = 5,   // The segment carries another record type or size.
  kRoleTaken = 6,        // A live process already holds the requested role.
  kStale = 7,            // The segment or role belongs to a dead process (policy: error).
  kSystemError = 8,      // An operating-system call failed (errno in the detail).
};

// Returns a short, stable name for a ring status ("layout_mismatch").
std::string_view ring_status_name(RingStatus status) noexcept;

// Result of create/attach: a status and a sentence saying what was wrong.
struct RingResult {
  RingStatus status = RingStatus::kOk;  // kOk on success.
  std::string detail;                   // Human-readable reason, empty on success.
  // Returns true on success.
  explicit operator bool() const noexcept { return status == RingStatus::kOk; }
};

// Creation parameters of a ring.
struct RingOptions {
  std::string name;                        // Segment name under /dev/shm (no slash).
  std::uint64_t capacity_records = 1 << 16;  // Slots; a power of two.
  std::uint32_t record_size = 64;          // Bytes per record; a multiple of 8.
  RecordType record_type = RecordType::kRaw;  // Record struct carried.
  OverflowPolicy overflow_policy = OverflowPolicy::kRefuse;  // Full-ring behaviour.
  std::int64_t overflow_spin_limit_ns = 0;   // Spin bound for OverflowPolicy::kSpin.
  StalePolicy stale_policy = StalePolicy::kError;  // Segment left by a dead process.
};

// Counters and identities of a ring, readable by any attached handle.
struct RingStats {
  std::uint64_t capacity_records;   // Slots.
  std::uint32_t record_size;        // Bytes per record.
  RecordType record_type;           // Record struct carried.
  OverflowPolicy overflow_policy;   // Full-ring behaviour.
  std::uint64_t written_records;    // Records published since creation.
  std::uint64_t read_records;       // Records consumed since creation.
  std::uint64_t refused_records;    // Records a producer could not write (ring full).
  std::uint64_t full_events;        // Write calls that found the ring full.
  std::int32_t creator_pid;         // Process that created the segment.
  std::int32_t producer_pid;        // Process holding the producer role (0 none).
  std::int32_t consumer_pid;        // Process holding the consumer role (0 none).
  std::int64_t producer_heartbeat_age_ns;  // Since the producer's last heartbeat (-1 never).
  std::int64_t consumer_heartbeat_age_ns;  // Since the consumer's last heartbeat (-1 never).
  std::uint64_t producer_takeovers; // Times a dead producer's role was taken over.
  std::uint64_t consumer_takeovers; // Times a dead consumer's role was taken over.
};

// Shared header at the start of every segment; each hot index sits alone on its cache lines.
struct RingHeader {
  std::atomic<std::uint64_t> magic;       // kRingMagic once initialised.
  std::uint32_t layout_version;           // kRingLayoutVersion.
  std::uint32_t record_size;              // Bytes per record.
  std::uint64_t capacity;                 // Slots (power of two).
  std::uint32_t record_type;              // RecordType.
  std::uint8_t overflow_policy;           // OverflowPolicy.
  std::uint8_t pad0_[3];
  std::int64_t overflow_spin_limit_ns;    // Spin bound.
  std::int64_t created_ns;                // Realtime clock at creation.
  std::int32_t creator_pid;               // Creating process.
  std::uint8_t pad1_[128 - 52];

  alignas(128) std::atomic<std::uint64_t> write_index;  // Records published (producer).
  std::uint8_t pad2_[128 - 8];

  alignas(128) std::atomic<std::int32_t> producer_pid;  // Producer process (0 none).
  std::atomic<std::uint32_t> producer_closed;           // 1 after a clean release.
  std::atomic<std::int64_t> producer_heartbeat_ns;      // Monotonic clock.
  std::atomic<std::uint64_t> refused_records;           // Records refused on overflow.
  std::atomic<std::uint64_t> full_events;               // Write calls that met a full ring.
  std::atomic<std::uint64_t> producer_takeovers;        // Dead producers replaced.
  std::uint8_t pad3_[128 - 40];

  alignas(128) std::atomic<std::uint64_t> read_index;   // Records consumed (consumer).
  std::uint8_t pad4_[128 - 8];

  alignas(128) std::atomic<std::int32_t> consumer_pid;  // Consumer process (0 none).
  std::atomic<std::uint32_t> consumer_closed;           // 1 after a clean release.
  std::atomic<std::int64_t> consumer_heartbeat_ns;      // Monotonic clock.
  std::atomic<std::uint64_t> consumer_takeovers;        // Dead consumers replaced.
  std::uint8_t pad5_[128 - 24];
};

static_assert(sizeof(RingHeader) <= kRingDataOffset);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::int64_t>::is_always_lock_free);
static_assert(std::atomic<std::int32_t>::is_always_lock_free);

// Returns the monotonic clock in nanoseconds (the heartbeat clock, shared by processes).
std::int64_t monotonic_ns() noexcept;
// Returns the realtime clock in nanoseconds since the epoch.
std::int64_t realtime_ns() noexcept;
// Returns true when process `pid` exists.
bool process_alive(std::int32_t pid) noexcept;

// A handle on one end of a ring; movable, closed by its destructor.
class Ring {
 public:
  Ring() = default;
  Ring(Ring&& other) noexcept;
  Ring& operator=(Ring&& other) noexcept;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring();

  // Creates the segment `options.name` and takes `role`; unlinks it when this handle closes.
  static RingResult create(const RingOptions& options, RingRole role, Ring& out);
  // Attaches to an existing segment, checking layout, record type and size, and takes `role`.
  static RingResult attach(std::string_view name, RingRole role, RecordType record_type,
                           std::uint32_t record_size, StalePolicy stale_policy, Ring& out);
  // Removes a segment by name; returns false when it did not exist.
  static bool unlink(std::string_view name) noexcept;

  // Returns true while the handle is open.
  bool is_open() const noexcept { return header_ != nullptr; }
  // Returns the segment name.
  const std::string& name() const noexcept { return name_; }
  // Returns the role this handle holds.
  RingRole role() const noexcept { return role_; }
  // Returns the slot count.
  std::uint64_t capacity() const noexcept { return capacity_; }
  // Returns the record size in bytes.
  std::uint32_t record_size() const noexcept { return record_size_; }

  // Producer: writes up to `count` records following the overflow policy; returns how many
  // were written (the rest are refused and counted).
  std::uint64_t write(const void* records, std::uint64_t count) noexcept;
  // Producer: writes one record if there is room; a refusal is counted.
  bool try_write(const void* record) noexcept;
  // Producer: returns up to `max` contiguous free slots at *slots, without publishing.
  std::uint64_t claim(std::uint64_t max, void** slots) noexcept;
  // Producer: publishes `count` records written into claimed slots.
  void publish(std::uint64_t count) noexcept;
  // Producer: counts `count` records refused by the caller (a full ring it chose not to wait on).
  void count_refused(std::uint64_t count) noexcept;

  // Consumer: returns up to `max` contiguous readable records at *records.
  std::uint64_t peek(std::uint64_t max, const void** records) noexcept;
  // Consumer: frees `count` records returned by peek.
  void release(std::uint64_t count) noexcept;
  // Consumer: copies up to `max` records to `out` and frees them; returns the count.
  std::uint64_t read(void* out, std::uint64_t max) noexcept;
  // Returns the records written and not yet read.
  std::uint64_t size() const noexcept;

  // Records that this end is alive (monotonic clock).
  void heartbeat() noexcept;
  // Returns the state of the other end (for an observer: of the producer).
  PeerState peer_state(std::int64_t heartbeat_timeout_ns) const noexcept;
  // Returns the state of the given end.
  PeerState end_state(RingRole end, std::int64_t heartbeat_timeout_ns) const noexcept;
  // Returns the shared counters.
  RingStats stats() const noexcept;

  // Releases the role (marked closed) and unlinks the segment if this handle made it; the
  // mapping stays valid (for views still held) until close().
  void release_role() noexcept;
  // Releases the role as release_role() does, then unmaps.
  void close() noexcept;
  // Keeps the segment when this creating handle closes (another process owns its lifetime).
  void set_unlink_on_close(bool unlink) noexcept { unlink_on_close_ = unlink; }

 private:
  RingResult take_role(RingRole role, StalePolicy policy);
  // Returns how many of `available` slots from this end's index can be used in one span.
  std::uint64_t contiguous(std::uint64_t available, std::uint64_t max) const noexcept;
  std::uint8_t* slot(std::uint64_t index) const noexcept {
    return data_ + (index & mask_) * record_size_;
  }

  RingHeader* header_ = nullptr;
  std::uint8_t* data_ = nullptr;
  std::size_t mapped_bytes_ = 0;
  std::uint64_t capacity_ = 0;
  std::uint64_t mask_ = 0;
  std::uint32_t record_size_ = 0;
  RingRole role_ = RingRole::kObserver;
  bool unlink_on_close_ = false;
  std::uint64_t inode_ = 0;
  std::string name_;
  // This end's own index, and its cached copy of the other end's index (refreshed only when
  // the cached value says the ring is full or empty).
  std::uint64_t local_index_ = 0;
  std::uint64_t cached_other_index_ = 0;
};

}  // namespace sor
