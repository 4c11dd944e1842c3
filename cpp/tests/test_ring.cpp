#define SOR_TEST_MAIN
#include "check.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "sor/ring.hpp"

using namespace sor;

namespace {

std::string unique_name(const char* tag) {
  return std::string("sor-test-") + tag + "-" + std::to_string(getpid());
}

// A record whose last word is a checksum of the others, so a torn record is detectable.
struct Stamped {
  std::uint64_t sequence;
  std::uint64_t words[6];
  std::uint64_t checksum;
};
static_assert(sizeof(Stamped) == 64);

Stamped stamped(std::uint64_t seq) {
  Stamped r{};
  r.sequence = seq;
  std::uint64_t sum = seq * 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < 6; ++i) {
    r.words[i] = seq ^ (0xA5A5A5A5ULL << i);
    sum = (sum ^ r.words[i]) * 0x100000001B3ULL;
  }
  r.checksum = sum;
  return r;
}

bool intact(const Stamped& r) { return stamped(r.sequence).checksum == r.checksum; }

RingOptions options(const std::string& name, std::uint64_t capacity) {
  RingOptions o;
  o.name = name;
  o.capacity_records = capacity;
  o.record_size = sizeof(Stamped);
  return o;
}

}  // namespace

TEST(two_threads_exchange_millions_in_order_untorn) {
  const std::string name = unique_name("threads");
  Ring producer;
  CHECK(Ring::create(options(name, 1024), RingRole::kProducer, producer));
  Ring consumer;
  CHECK(Ring::attach(name, RingRole::kConsumer, RecordType::kRaw, sizeof(Stamped),
                     StalePolicy::kError, consumer));
  constexpr std::uint64_t kCount = 4'000'000;
  std::uint64_t bad = 0;
  std::uint64_t next = 0;
  std::thread reader([&] {
    std::vector<Stamped> batch(97);
    while (next < kCount) {
      const std::uint64_t n = consumer.read(batch.data(), batch.size());
      for (std::uint64_t i = 0; i < n; ++i) {
        if (batch[i].sequence != next || !intact(batch[i])) ++bad;
        ++next;
      }
    }
  });
  std::vector<Stamped> out(61);
  std::uint64_t seq = 0;
  while (seq < kCount) {
    const std::uint64_t want = std::min<std::uint64_t>(out.size(), kCount - seq);
    for (std::uint64_t i = 0; i < want; ++i) out[i] = stamped(seq + i);
    void* slots = nullptr;
    // Mix the claim/publish path with the copying path.
    if (seq % 2 == 0) {
      const std::uint64_t n = producer.claim(want, &slots);
      std::memcpy(slots, out.data(), n * sizeof(Stamped));
      producer.publish(n);
      seq += n;
    } else {
      seq += producer.write(out.data(), want);  // refuse policy: partial writes are fine
    }
  }
  reader.join();
  CHECK_EQ(next, kCount);
  CHECK_EQ(bad, 0u);
  const RingStats s = producer.stats();
  CHECK_EQ(s.written_records, kCount);
  CHECK_EQ(s.read_records, kCount);
}

TEST(full_ring_refuses_and_counts) {
  const std::string name = unique_name("full");
  Ring producer;
  CHECK(Ring::create(options(name, 8), RingRole::kProducer, producer));
  std::vector<Stamped> records;
  for (std::uint64_t i = 0; i < 13; ++i) records.push_back(stamped(i));
  CHECK_EQ(producer.write(records.data(), 13), 8u);
  CHECK(!producer.try_write(&records[0]));
  const RingStats s = producer.stats();
  CHECK_EQ(s.refused_records, 6u);
  CHECK_EQ(s.full_events, 2u);
  CHECK_EQ(producer.size(), 8u);
}

TEST(spin_policy_waits_for_space_within_bound) {
  const std::string name = unique_name("spin");
  RingOptions o = options(name, 8);
  o.overflow_policy = OverflowPolicy::kSpin;
  o.overflow_spin_limit_ns = 2'000'000'000;
  Ring producer;
  CHECK(Ring::create(o, RingRole::kProducer, producer));
  Ring consumer;
  CHECK(Ring::attach(name, RingRole::kConsumer, RecordType::kRaw, 64, StalePolicy::kError,
                     consumer));
  std::vector<Stamped> records;
  for (std::uint64_t i = 0; i < 100; ++i) records.push_back(stamped(i));
  std::uint64_t got = 0;
  std::thread reader([&] {
    Stamped r{};
    while (got < 100) got += consumer.read(&r, 1);
  });
  CHECK_EQ(producer.write(records.data(), 100), 100u);
  reader.join();
  CHECK_EQ(producer.stats().refused_records, 0u);

  // With nobody reading, the spin gives up at the bound and counts the refusal.
  Ring::unlink(name + "-b");
  RingOptions b = options(name + "-b", 8);
  b.overflow_policy = OverflowPolicy::kSpin;
  b.overflow_spin_limit_ns = 1'000'000;
  Ring lonely;
  CHECK(Ring::create(b, RingRole::kProducer, lonely));
  CHECK_EQ(lonely.write(records.data(), 10), 8u);
  CHECK_EQ(lonely.stats().refused_records, 2u);
}

TEST(attach_checks_layout_record_and_role) {
  const std::string name = unique_name("attach");
  Ring producer;
  RingOptions o = options(name, 16);
  o.record_type = RecordType::kMdEvent;
  CHECK(Ring::create(o, RingRole::kProducer, producer));
  Ring other;
  RingResult r = Ring::attach(name, RingRole::kConsumer, RecordType::kCommand, 64,
                              StalePolicy::kError, other);
  CHECK(r.status == RingStatus::kRecordMismatch);
  r = Ring::attach(name, RingRole::kConsumer, RecordType::kMdEvent, 32, StalePolicy::kError, other);
  CHECK(r.status == RingStatus::kRecordMismatch);
  r = Ring::attach(name, RingRole::kProducer, RecordType::kMdEvent, 64, StalePolicy::kError, other);
  CHECK(r.status == RingStatus::kRoleTaken);
  r = Ring::attach("sor-test-no-such-ring", RingRole::kConsumer, RecordType::kMdEvent, 64,
                   StalePolicy::kError, other);
  CHECK(r.status == RingStatus::kNotFound);
  r = Ring::attach("bad/name", RingRole::kConsumer, RecordType::kMdEvent, 64, StalePolicy::kError,
                   other);
  CHECK(r.status == RingStatus::kInvalidArgument);
  Ring again;
  r = Ring::create(o, RingRole::kProducer, again);
  CHECK(r.status == RingStatus::kInUse);
  o.capacity_records = 12;
  o.name = name + "-cap";
  r = Ring::create(o, RingRole::kProducer, again);
  CHECK(r.status == RingStatus::kInvalidArgument);
}

TEST(version_mismatch_is_refused) {
  const std::string name = unique_name("version");
  {
    Ring producer;
    CHECK(Ring::create(options(name, 16), RingRole::kProducer, producer));
    producer.set_unlink_on_close(false);
  }
  const int fd = shm_open(("/" + name).c_str(), O_RDWR, 0);
  CHECK(fd >= 0);
  void* p = mmap(nullptr, kRingDataOffset, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  static_cast<RingHeader*>(p)->layout_version = kRingLayoutVersion + 1;
  munmap(p, kRingDataOffset);
  Ring consumer;
  const RingResult r = Ring::attach(name, RingRole::kConsumer, RecordType::kRaw, 64,
                                    StalePolicy::kError, consumer);
  CHECK(r.status == RingStatus::kLayoutMismatch);
  CHECK(r.detail.find("layout version") != std::string::npos);
  CHECK(Ring::unlink(name));
}

TEST(dead_producer_is_detected_and_its_role_taken_over) {
  const std::string name = unique_name("dead");
  Ring consumer;
  CHECK(Ring::create(options(name, 1024), RingRole::kConsumer, consumer));
  CHECK(consumer.peer_state(0) == PeerState::kAbsent);
  const pid_t child = fork();
  if (child == 0) {
    Ring producer;
    if (!Ring::attach(name, RingRole::kProducer, RecordType::kRaw, 64, StalePolicy::kError,
                      producer)) {
      _exit(3);
    }
    for (std::uint64_t i = 0; i < 500; ++i) {
      const Stamped r = stamped(i);
      producer.try_write(&r);
    }
    _exit(0);  // dies holding the role: no close()
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK(consumer.peer_state(0) == PeerState::kDead);
  std::vector<Stamped> got(1024);
  CHECK_EQ(consumer.read(got.data(), got.size()), 500u);
  for (std::uint64_t i = 0; i < 500; ++i) CHECK(got[i].sequence == i && intact(got[i]));
  Ring replacement;
  CHECK(Ring::attach(name, RingRole::kProducer, RecordType::kRaw, 64, StalePolicy::kError,
                     replacement).status == RingStatus::kStale);
  CHECK(Ring::attach(name, RingRole::kProducer, RecordType::kRaw, 64, StalePolicy::kTakeover,
                     replacement));
  CHECK_EQ(replacement.stats().producer_takeovers, 1u);
  const Stamped r = stamped(500);
  CHECK(replacement.try_write(&r));
  CHECK_EQ(consumer.read(got.data(), 1), 1u);
  CHECK_EQ(got[0].sequence, 500u);
  replacement.close();
  CHECK(consumer.peer_state(0) == PeerState::kClosed);
}

TEST(stale_segment_of_dead_creator) {
  const std::string name = unique_name("stale");
  const pid_t child = fork();
  if (child == 0) {
    Ring producer;
    if (!Ring::create(options(name, 16), RingRole::kProducer, producer)) _exit(3);
    _exit(0);  // leaves the segment behind
  }
  int status = 0;
  waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  Ring ring;
  RingResult r = Ring::create(options(name, 16), RingRole::kProducer, ring);
  CHECK(r.status == RingStatus::kStale);
  CHECK(r.detail.find(std::to_string(child)) != std::string::npos);
  RingOptions o = options(name, 16);
  o.stale_policy = StalePolicy::kTakeover;
  CHECK(Ring::create(o, RingRole::kProducer, ring));
  ring.close();
  Ring gone;
  CHECK(Ring::attach(name, RingRole::kConsumer, RecordType::kRaw, 64, StalePolicy::kError, gone)
            .status == RingStatus::kNotFound);
}
