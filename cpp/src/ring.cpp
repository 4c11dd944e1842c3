#include "sor/ring.hpp"

#include "shm.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace sor {
namespace {

inline void cpu_relax() noexcept {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

using detail::shm_path;

bool valid_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 200) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return name != "." && name != "..";
}

RingResult fail(RingStatus status, std::string detail) { return {status, std::move(detail)}; }

RingResult system_fail(const std::string& what, std::string_view name) {
  return fail(RingStatus::kSystemError,
              what + " of ring '" + std::string(name) + "' failed: " + std::strerror(errno));
}

std::size_t segment_bytes(std::uint64_t capacity, std::uint32_t record_size) {
  return kRingDataOffset + static_cast<std::size_t>(capacity) * record_size;
}

const char* role_name(RingRole role) {
  switch (role) {
    case RingRole::kProducer: return "producer";
    case RingRole::kConsumer: return "consumer";
    case RingRole::kObserver: return "observer";
  }
  return "?";
}

// Reads a segment's header through a temporary mapping; used to judge an existing name.
struct ExistingSegment {
  bool initialised = false;
  std::int32_t creator_pid = 0;
  std::int32_t producer_pid = 0;
  std::int32_t consumer_pid = 0;
};

ExistingSegment inspect(int fd) {
  ExistingSegment seg;
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) < sizeof(RingHeader)) return seg;
  void* p = mmap(nullptr, sizeof(RingHeader), PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return seg;
  const auto* h = static_cast<const RingHeader*>(p);
  seg.initialised = h->magic.load(std::memory_order_acquire) == kRingMagic;
  seg.creator_pid = h->creator_pid;
  seg.producer_pid = h->producer_pid.load(std::memory_order_acquire);
  seg.consumer_pid = h->consumer_pid.load(std::memory_order_acquire);
  munmap(p, sizeof(RingHeader));
  return seg;
}

}  // namespace

std::string_view ring_status_name(RingStatus status) noexcept {
  switch (status) {
    case RingStatus::kOk: return "ok";
    case RingStatus::kInvalidArgument: return "invalid_argument";
    case RingStatus::kInUse: return "in_use";
    case RingStatus::kNotFound: return "not_found";
    case RingStatus::kLayoutMismatch: return "layout_mismatch";
    case RingStatus::kRecordMismatch: return "record_mismatch";
    case RingStatus::kRoleTaken: return "role_taken";
    case RingStatus::kStale: return "stale";
    case RingStatus::kSystemError: return "system_error";
  }
  return "unknown_status";
}

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t realtime_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

bool process_alive(std::int32_t pid) noexcept {
  if (pid <= 0) return false;
  if (kill(pid, 0) == 0) return true;
  return errno == EPERM;  // exists, owned by someone else
}

Ring::Ring(Ring&& other) noexcept { *this = std::move(other); }

Ring& Ring::operator=(Ring&& other) noexcept {
  if (this != &other) {
    close();
    header_ = std::exchange(other.header_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    mapped_bytes_ = std::exchange(other.mapped_bytes_, 0);
    capacity_ = other.capacity_;
    mask_ = other.mask_;
    record_size_ = other.record_size_;
    role_ = other.role_;
    unlink_on_close_ = std::exchange(other.unlink_on_close_, false);
    inode_ = other.inode_;
    name_ = std::move(other.name_);
    local_index_ = other.local_index_;
    cached_other_index_ = other.cached_other_index_;
  }
  return *this;
}

Ring::~Ring() { close(); }

RingResult Ring::create(const RingOptions& options, RingRole role, Ring& out) {
  const std::string& name = options.name;
  if (!valid_name(name)) {
    return fail(RingStatus::kInvalidArgument,
                "ring name '" + name + "' must be 1-200 characters of [A-Za-z0-9._-]");
  }
  const std::uint64_t cap = options.capacity_records;
  if (cap < 2 || (cap & (cap - 1)) != 0 || cap > (1ULL << 32)) {
    return fail(RingStatus::kInvalidArgument,
                "ring '" + name + "' capacity " + std::to_string(cap) +
                    " must be a power of two between 2 and 2^32 records");
  }
  if (options.record_size == 0 || options.record_size % 8 != 0 || options.record_size > 65536) {
    return fail(RingStatus::kInvalidArgument,
                "ring '" + name + "' record size " + std::to_string(options.record_size) +
                    " must be a multiple of 8 bytes up to 65536");
  }
  if (options.overflow_spin_limit_ns < 0) {
    return fail(RingStatus::kInvalidArgument, "ring '" + name + "' spin limit must be >= 0 ns");
  }
  const std::string path = shm_path(name);
  int fd = shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0 && errno == EEXIST) {
    const int existing = shm_open(path.c_str(), O_RDONLY, 0);
    if (existing < 0) return system_fail("opening existing segment", name);
    const ExistingSegment seg = inspect(existing);
    ::close(existing);
    for (std::int32_t pid : {seg.creator_pid, seg.producer_pid, seg.consumer_pid}) {
      if (pid != 0 && process_alive(pid)) {
        return fail(RingStatus::kInUse, "ring '" + name + "' already exists and is in use by "
                                        "live process " + std::to_string(pid));
      }
    }
    if (options.stale_policy == StalePolicy::kError) {
      return fail(RingStatus::kStale,
                  "ring '" + name + "' is a stale segment left by dead process " +
                      std::to_string(seg.creator_pid) +
                      " (remove it, or create with the takeover policy)");
    }
    shm_unlink(path.c_str());
    fd = shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  }
  if (fd < 0) return system_fail("shm_open", name);
  const std::uint64_t inode = detail::segment_inode(fd);
  const std::size_t bytes = segment_bytes(cap, options.record_size);
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    RingResult r = system_fail("ftruncate", name);
    ::close(fd);
    shm_unlink(path.c_str());
    return r;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    RingResult r = system_fail("mmap", name);
    shm_unlink(path.c_str());
    return r;
  }
  auto* h = new (p) RingHeader{};
  h->layout_version = kRingLayoutVersion;
  h->record_size = options.record_size;
  h->capacity = cap;
  h->record_type = static_cast<std::uint32_t>(options.record_type);
  h->overflow_policy = static_cast<std::uint8_t>(options.overflow_policy);
  h->overflow_spin_limit_ns = options.overflow_spin_limit_ns;
  h->created_ns = realtime_ns();
  h->creator_pid = static_cast<std::int32_t>(getpid());
  h->producer_heartbeat_ns.store(-1, std::memory_order_relaxed);
  h->consumer_heartbeat_ns.store(-1, std::memory_order_relaxed);
  h->magic.store(kRingMagic, std::memory_order_release);

  Ring ring;
  ring.header_ = h;
  ring.data_ = static_cast<std::uint8_t*>(p) + kRingDataOffset;
  ring.mapped_bytes_ = bytes;
  ring.capacity_ = cap;
  ring.mask_ = cap - 1;
  ring.record_size_ = options.record_size;
  ring.name_ = name;
  ring.unlink_on_close_ = true;
  ring.inode_ = inode;
  ring.role_ = RingRole::kObserver;
  RingResult taken = ring.take_role(role, options.stale_policy);
  if (!taken) return taken;
  out = std::move(ring);
  return {};
}

RingResult Ring::attach(std::string_view name, RingRole role, RecordType record_type,
                        std::uint32_t record_size, StalePolicy stale_policy, Ring& out) {
  if (!valid_name(name)) {
    return fail(RingStatus::kInvalidArgument,
                "ring name '" + std::string(name) + "' must be 1-200 characters of [A-Za-z0-9._-]");
  }
  const std::string path = shm_path(name);
  const int fd = shm_open(path.c_str(), O_RDWR, 0);
  if (fd < 0) {
    if (errno == ENOENT) {
      return fail(RingStatus::kNotFound, "no ring named '" + std::string(name) + "' in /dev/shm");
    }
    return system_fail("shm_open", name);
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    RingResult r = system_fail("fstat", name);
    ::close(fd);
    return r;
  }
  const auto bytes = static_cast<std::size_t>(st.st_size);
  if (bytes < kRingDataOffset) {
    ::close(fd);
    return fail(RingStatus::kLayoutMismatch, "segment '" + std::string(name) + "' is " +
                                                 std::to_string(bytes) +
                                                 " bytes, too small to be a sor ring");
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return system_fail("mmap", name);
  auto* h = static_cast<RingHeader*>(p);
  auto unmap_fail = [&](RingStatus status, std::string detail) {
    munmap(p, bytes);
    return fail(status, std::move(detail));
  };
  if (h->magic.load(std::memory_order_acquire) != kRingMagic) {
    return unmap_fail(RingStatus::kLayoutMismatch,
                      "segment '" + std::string(name) + "' is not an initialised sor ring (bad magic)");
  }
  if (h->layout_version != kRingLayoutVersion) {
    return unmap_fail(RingStatus::kLayoutMismatch,
                      "ring '" + std::string(name) + "' has layout version " +
                          std::to_string(h->layout_version) + ", this build reads version " +
                          std::to_string(kRingLayoutVersion));
  }
  if (segment_bytes(h->capacity, h->record_size) != bytes) {
    return unmap_fail(RingStatus::kLayoutMismatch,
                      "ring '" + std::string(name) + "' header says " +
                          std::to_string(h->capacity) + " x " + std::to_string(h->record_size) +
                          " bytes but the segment is " + std::to_string(bytes) + " bytes");
  }
  if (h->record_size != record_size ||
      (record_type != RecordType::kRaw && h->record_type != static_cast<std::uint32_t>(record_type))) {
    return unmap_fail(RingStatus::kRecordMismatch,
                      "ring '" + std::string(name) + "' carries record type " +
                          std::to_string(h->record_type) + " of " + std::to_string(h->record_size) +
                          " bytes, expected type " +
                          std::to_string(static_cast<std::uint32_t>(record_type)) + " of " +
                          std::to_string(record_size) + " bytes");
  }
  Ring ring;
  ring.header_ = h;
  ring.data_ = static_cast<std::uint8_t*>(p) + kRingDataOffset;
  ring.mapped_bytes_ = bytes;
  ring.capacity_ = h->capacity;
  ring.mask_ = h->capacity - 1;
  ring.record_size_ = h->record_size;
  ring.name_ = std::string(name);
  ring.role_ = RingRole::kObserver;
  RingResult taken = ring.take_role(role, stale_policy);
  if (!taken) return taken;
  out = std::move(ring);
  return {};
}

RingResult Ring::take_role(RingRole role, StalePolicy policy) {
  if (role == RingRole::kObserver) {
    role_ = role;
    return {};
  }
  RingHeader* h = header_;
  const bool producer = role == RingRole::kProducer;
  std::atomic<std::int32_t>& pid_slot = producer ? h->producer_pid : h->consumer_pid;
  const auto me = static_cast<std::int32_t>(getpid());
  std::int32_t holder = pid_slot.load(std::memory_order_acquire);
  for (;;) {
    if (holder != 0) {
      if (holder == me || process_alive(holder)) {
        return fail(RingStatus::kRoleTaken, "ring '" + name_ + "' already has a " +
                                                role_name(role) + " (process " +
                                                std::to_string(holder) + ")");
      }
      if (policy == StalePolicy::kError) {
        return fail(RingStatus::kStale, "ring '" + name_ + "' " + role_name(role) +
                                            " role is held by dead process " +
                                            std::to_string(holder) +
                                            " (attach with the takeover policy to replace it)");
      }
    }
    if (pid_slot.compare_exchange_weak(holder, me, std::memory_order_acq_rel)) break;
  }
  if (holder != 0) {
    (producer ? h->producer_takeovers : h->consumer_takeovers)
        .fetch_add(1, std::memory_order_relaxed);
  }
  (producer ? h->producer_closed : h->consumer_closed).store(0, std::memory_order_relaxed);
  role_ = role;
  if (producer) {
    local_index_ = h->write_index.load(std::memory_order_relaxed);
    cached_other_index_ = h->read_index.load(std::memory_order_acquire);
  } else {
    local_index_ = h->read_index.load(std::memory_order_relaxed);
    cached_other_index_ = h->write_index.load(std::memory_order_acquire);
  }
  heartbeat();
  return {};
}

bool Ring::unlink(std::string_view name) noexcept {
  if (!valid_name(name)) return false;
  return shm_unlink(shm_path(name).c_str()) == 0;
}

std::uint64_t Ring::contiguous(std::uint64_t available, std::uint64_t max) const noexcept {
  const std::uint64_t to_end = capacity_ - (local_index_ & mask_);
  const std::uint64_t n = max < available ? max : available;
  return n < to_end ? n : to_end;
}

std::uint64_t Ring::claim(std::uint64_t max, void** slots) noexcept {
  std::uint64_t free = capacity_ - (local_index_ - cached_other_index_);
  if (free < max) {
    cached_other_index_ = header_->read_index.load(std::memory_order_acquire);
    free = capacity_ - (local_index_ - cached_other_index_);
  }
  *slots = slot(local_index_);
  return contiguous(free, max);
}

void Ring::publish(std::uint64_t count) noexcept {
  local_index_ += count;
  header_->write_index.store(local_index_, std::memory_order_release);
}

void Ring::count_refused(std::uint64_t count) noexcept {
  if (count == 0) return;
  header_->refused_records.fetch_add(count, std::memory_order_relaxed);
  header_->full_events.fetch_add(1, std::memory_order_relaxed);
}

bool Ring::try_write(const void* record) noexcept {
  if (local_index_ - cached_other_index_ == capacity_) {
    cached_other_index_ = header_->read_index.load(std::memory_order_acquire);
    if (local_index_ - cached_other_index_ == capacity_) {
      count_refused(1);
      return false;
    }
  }
  std::memcpy(slot(local_index_), record, record_size_);
  publish(1);
  return true;
}

std::uint64_t Ring::write(const void* records, std::uint64_t count) noexcept {
  const auto* src = static_cast<const std::uint8_t*>(records);
  std::uint64_t done = 0;
  std::int64_t deadline = -1;
  while (done < count) {
    void* dst = nullptr;
    const std::uint64_t n = claim(count - done, &dst);
    if (n != 0) {
      std::memcpy(dst, src + done * record_size_, n * record_size_);
      publish(n);
      done += n;
      continue;
    }
    if (header_->overflow_policy != static_cast<std::uint8_t>(OverflowPolicy::kSpin)) break;
    const std::int64_t now = monotonic_ns();
    if (deadline < 0) deadline = now + header_->overflow_spin_limit_ns;
    if (now >= deadline) break;
    for (int i = 0; i < 64; ++i) cpu_relax();
  }
  count_refused(count - done);
  return done;
}

std::uint64_t Ring::peek(std::uint64_t max, const void** records) noexcept {
  std::uint64_t ready = cached_other_index_ - local_index_;
  if (ready < max) {
    cached_other_index_ = header_->write_index.load(std::memory_order_acquire);
    ready = cached_other_index_ - local_index_;
  }
  *records = slot(local_index_);
  return contiguous(ready, max);
}

void Ring::release(std::uint64_t count) noexcept {
  local_index_ += count;
  header_->read_index.store(local_index_, std::memory_order_release);
}

std::uint64_t Ring::read(void* out, std::uint64_t max) noexcept {
  auto* dst = static_cast<std::uint8_t*>(out);
  std::uint64_t done = 0;
  while (done < max) {
    const void* src = nullptr;
    const std::uint64_t n = peek(max - done, &src);
    if (n == 0) break;
    std::memcpy(dst + done * record_size_, src, n * record_size_);
    release(n);
    done += n;
  }
  return done;
}

std::uint64_t Ring::size() const noexcept {
  const std::uint64_t w = header_->write_index.load(std::memory_order_acquire);
  const std::uint64_t r = header_->read_index.load(std::memory_order_acquire);
  return w - r;
}

void Ring::heartbeat() noexcept {
  if (role_ == RingRole::kProducer) {
    header_->producer_heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed);
  } else if (role_ == RingRole::kConsumer) {
    header_->consumer_heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed);
  }
}

PeerState Ring::end_state(RingRole end, std::int64_t heartbeat_timeout_ns) const noexcept {
  const bool producer = end == RingRole::kProducer;
  const std::int32_t pid =
      (producer ? header_->producer_pid : header_->consumer_pid).load(std::memory_order_acquire);
  if (pid == 0) {
    const std::uint32_t closed = (producer ? header_->producer_closed : header_->consumer_closed)
                                     .load(std::memory_order_acquire);
    return closed != 0 ? PeerState::kClosed : PeerState::kAbsent;
  }
  if (!process_alive(pid)) return PeerState::kDead;
  const std::int64_t beat = (producer ? header_->producer_heartbeat_ns
                                      : header_->consumer_heartbeat_ns)
                                .load(std::memory_order_relaxed);
  if (heartbeat_timeout_ns > 0 && (beat < 0 || monotonic_ns() - beat > heartbeat_timeout_ns)) {
    return PeerState::kStalled;
  }
  return PeerState::kAlive;
}

PeerState Ring::peer_state(std::int64_t heartbeat_timeout_ns) const noexcept {
  return end_state(role_ == RingRole::kProducer ? RingRole::kConsumer : RingRole::kProducer,
                   heartbeat_timeout_ns);
}

RingStats Ring::stats() const noexcept {
  const RingHeader* h = header_;
  const std::int64_t now = monotonic_ns();
  const std::int64_t pbeat = h->producer_heartbeat_ns.load(std::memory_order_relaxed);
  const std::int64_t cbeat = h->consumer_heartbeat_ns.load(std::memory_order_relaxed);
  RingStats s{};
  s.capacity_records = h->capacity;
  s.record_size = h->record_size;
  s.record_type = static_cast<RecordType>(h->record_type);
  s.overflow_policy = static_cast<OverflowPolicy>(h->overflow_policy);
  s.written_records = h->write_index.load(std::memory_order_acquire);
  s.read_records = h->read_index.load(std::memory_order_acquire);
  s.refused_records = h->refused_records.load(std::memory_order_relaxed);
  s.full_events = h->full_events.load(std::memory_order_relaxed);
  s.creator_pid = h->creator_pid;
  s.producer_pid = h->producer_pid.load(std::memory_order_relaxed);
  s.consumer_pid = h->consumer_pid.load(std::memory_order_relaxed);
  s.producer_heartbeat_age_ns = pbeat < 0 ? -1 : now - pbeat;
  s.consumer_heartbeat_age_ns = cbeat < 0 ? -1 : now - cbeat;
  s.producer_takeovers = h->producer_takeovers.load(std::memory_order_relaxed);
  s.consumer_takeovers = h->consumer_takeovers.load(std::memory_order_relaxed);
  return s;
}

void Ring::release_role() noexcept {
  if (header_ == nullptr) return;
  const auto me = static_cast<std::int32_t>(getpid());
  if (role_ == RingRole::kProducer) {
    header_->producer_closed.store(1, std::memory_order_relaxed);
    std::int32_t expected = me;
    header_->producer_pid.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
  } else if (role_ == RingRole::kConsumer) {
    header_->consumer_closed.store(1, std::memory_order_relaxed);
    std::int32_t expected = me;
    header_->consumer_pid.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
  }
  role_ = RingRole::kObserver;
  if (unlink_on_close_) {
    detail::unlink_if_same_inode(name_, inode_);
    unlink_on_close_ = false;
  }
}

void Ring::close() noexcept {
  if (header_ == nullptr) return;
  release_role();
  munmap(header_, mapped_bytes_);
  header_ = nullptr;
  data_ = nullptr;
}

}  // namespace sor
