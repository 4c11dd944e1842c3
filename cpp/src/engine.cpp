#include "sor/engine.hpp"
#include "sor/risk.hpp"

#include "shm.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <cstring>
#include <future>
#include <new>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace sor {
namespace {

constexpr std::size_t kChildTableSize = kMaxInFlightChildren;  // direct-mapped by child id
constexpr std::size_t kMaxOpenChildrenPerParent = 64;  // open children a hosted policy tracks
constexpr std::uint64_t kBatch = 256;             // records taken from a ring per pass

inline void cpu_relax() noexcept {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

template <class T>
inline void bump(std::atomic<T>& counter, T by = 1) noexcept {
  // Single writer: a relaxed load and store is enough and avoids a locked instruction.
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

void set_error(EngineControl* control, const std::string& message) noexcept {
  const std::size_t n = std::min(message.size(), sizeof(control->last_error) - 1);
  std::memcpy(control->last_error, message.data(), n);
  control->last_error[n] = '\0';
}

Side opposite(Side side) noexcept { return side == Side::kBuy ? Side::kSell : Side::kBuy; }

EngineControl* g_signal_control = nullptr;
struct sigaction g_previous_term {};
struct sigaction g_previous_int {};

void on_stop_signal(int) {
  if (g_signal_control != nullptr) {
    g_signal_control->stop_requested.store(1, std::memory_order_relaxed);
  }
}

}  // namespace

EngineParams default_engine_params() noexcept {
  EngineParams p{};
  p.version = 0;
  p.max_order_quantity_shares = 10'000;
  p.max_parent_quantity_shares = 1'000'000;
  p.max_open_orders = 256;
  p.max_orders_per_second = 1'000;
  p.price_band_bps = 500.0;
  p.idle_sleep_ns = 50'000;
  p.price_tick_usd = 0.0001;
  p.max_order_notional_usd = 1'000'000.0;
  p.max_gross_notional_usd = 50'000'000.0;
  p.enabled_venue_mask = 0;
  p.risk_state = RiskState::kActive;
  p.idle_strategy = IdleStrategy::kSpin;
  p.max_parent_notional_usd = 100'000'000.0;
  p.max_messages_per_second = 2'000;
  p.max_participation_rate = 0.0;
  p.participation_allowance_shares = 0;
  p.reference_collar_bps = 0.0;
  p.account_enabled_mask = 1;  // the default account
  for (std::size_t a = 0; a < kMaxAccounts; ++a) {
    p.account_credit_limit_usd[a] = 1e12;
    p.account_max_position_shares[a] = std::numeric_limits<std::int64_t>::max() / 4;
  }
  p.trading_day = 0;
  p.model_fallback_reason = 0;
  for (std::size_t s = 0; s < kModelSlots; ++s) {
    p.model_output_min[s] = -std::numeric_limits<double>::infinity();
    p.model_output_max[s] = std::numeric_limits<double>::infinity();
  }
  p.model_latency_budget_ns = 0;
  p.model_latency_breaches = 1;
  p.model_enable_generation = 0;
  return p;
}

EngineSegmentNames engine_segment_names(const std::string& name) {
  return {name + ".control", name + ".md",    name + ".cmd",     name + ".exec",
          name + ".order",   name + ".audit", name + ".decision"};
}

// --- control segment ------------------------------------------------------------------------

EngineControlHandle::~EngineControlHandle() { close(false); }

EngineResult EngineControlHandle::create(const std::string& name, bool takeover) {
  segment_ = name + ".control";
  const std::string path = detail::shm_path(segment_);
  int fd = shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0 && errno == EEXIST) {
    EngineControlHandle existing;
    if (existing.attach(name)) {
      const std::int32_t pid = existing.get()->engine_pid;
      const auto state = static_cast<EngineState>(existing.get()->state.load());
      const bool finished = state == EngineState::kStopped || state == EngineState::kFailed;
      if (process_alive(pid) && !finished) {
        return {false, "engine '" + name + "' already exists and is owned by live process " +
                           std::to_string(pid)};
      }
      if (!takeover && !finished) {
        return {false, "engine '" + name + "' has stale segments left by dead process " +
                           std::to_string(pid) +
                           " (set engine.stale_segment_policy = \"takeover\" to replace them)"};
      }
    } else if (!takeover) {
      return {false, "segment '" + segment_ + "' exists and is not a readable engine control "
                     "block: " + existing.segment_name()};
    }
    existing.close(false);
    shm_unlink(path.c_str());
    fd = shm_open(path.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  }
  if (fd < 0) return {false, "shm_open of '" + segment_ + "' failed: " + std::strerror(errno)};
  inode_ = detail::segment_inode(fd);
  if (ftruncate(fd, sizeof(EngineControl)) != 0) {
    ::close(fd);
    shm_unlink(path.c_str());
    return {false, "ftruncate of '" + segment_ + "' failed: " + std::strerror(errno)};
  }
  void* p = mmap(nullptr, sizeof(EngineControl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    shm_unlink(path.c_str());
    return {false, "mmap of '" + segment_ + "' failed: " + std::strerror(errno)};
  }
  control_ = new (p) EngineControl{};
  control_->layout_version = kEngineLayoutVersion;
  control_->engine_pid = static_cast<std::int32_t>(getpid());
  control_->created_ns = realtime_ns();
  control_->pinned_cpu.store(-1);
  control_->heartbeat_ns.store(monotonic_ns());
  control_->magic.store(kControlMagic, std::memory_order_release);
  owner_ = true;
  return {};
}

EngineResult EngineControlHandle::attach(const std::string& name) {
  segment_ = name + ".control";
  const std::string path = detail::shm_path(segment_);
  const int fd = shm_open(path.c_str(), O_RDWR, 0);
  if (fd < 0) {
    return {false, errno == ENOENT ? "no engine named '" + name + "' (no /dev/shm/" + segment_ + ")"
                                   : "shm_open of '" + segment_ + "' failed: " + std::strerror(errno)};
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) != sizeof(EngineControl)) {
    ::close(fd);
    return {false, "segment '" + segment_ + "' has " + std::to_string(st.st_size) +
                       " bytes; this build's engine control block has " +
                       std::to_string(sizeof(EngineControl)) + " (another layout version?)"};
  }
  void* p = mmap(nullptr, sizeof(EngineControl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return {false, "mmap of '" + segment_ + "' failed: " + std::strerror(errno)};
  auto* control = static_cast<EngineControl*>(p);
  if (control->magic.load(std::memory_order_acquire) != kControlMagic ||
      control->layout_version != kEngineLayoutVersion) {
    const std::uint32_t version = control->layout_version;
    munmap(p, sizeof(EngineControl));
    return {false, "engine '" + name + "' has control layout version " + std::to_string(version) +
                       ", this build reads version " + std::to_string(kEngineLayoutVersion)};
  }
  control_ = control;
  owner_ = false;
  return {};
}

void EngineControlHandle::close(bool unlink) noexcept {
  if (control_ == nullptr) return;
  munmap(control_, sizeof(EngineControl));
  control_ = nullptr;
  if (unlink && owner_) detail::unlink_if_same_inode(segment_, inode_);
}

std::uint64_t EngineControlHandle::write_params(const EngineParams& params) noexcept {
  EngineControl* c = control_;
  // Writers take the seqlock by making the sequence odd, so two control processes cannot
  // interleave their copies.
  std::uint64_t seq = c->params_sequence.load(std::memory_order_relaxed);
  for (;;) {
    if ((seq & 1U) == 0 &&
        c->params_sequence.compare_exchange_weak(seq, seq + 1, std::memory_order_acquire)) {
      break;
    }
    cpu_relax();
    seq = c->params_sequence.load(std::memory_order_relaxed);
  }
  std::atomic_thread_fence(std::memory_order_release);
  EngineParams copy = params;
  copy.version = c->params.version + 1;
  std::memcpy(static_cast<void*>(&c->params), &copy, sizeof(EngineParams));
  c->params_sequence.store(seq + 2, std::memory_order_release);
  return copy.version;
}

EngineParams EngineControlHandle::read_params() const noexcept {
  EngineParams out{};
  read_params_into(out);
  return out;
}

void EngineControlHandle::read_params_into(EngineParams& out) const noexcept {
  const EngineControl* c = control_;
  for (;;) {
    const std::uint64_t before = c->params_sequence.load(std::memory_order_acquire);
    if (before & 1U) {
      cpu_relax();
      continue;
    }
    std::memcpy(static_cast<void*>(&out), static_cast<const void*>(&c->params), sizeof(EngineParams));
    std::atomic_thread_fence(std::memory_order_acquire);
    if (c->params_sequence.load(std::memory_order_relaxed) == before) return;
  }
}

// --- the engine ---------------------------------------------------------------------------

// Rounds of the horizon sweep of an expired parent (each takes every venue's top).
constexpr std::uint8_t kMaxHorizonSweeps = 8;

// How a parent is being stopped (Parent::winding_down).
enum Winding : std::uint8_t {
  kWorking = 0,      // routing normally
  kCancelling = 1,   // cancelled: children being cancelled, then kParentDone 1
  kExpiring = 2,     // end time passed: passive children being cancelled before the sweep
  kFinalSweep = 3,   // end time passed: the remainder taken within the limit, then done (0 or 2)
  kStopping = 4,     // stopped by risk: children being cancelled, then kParentDone 3
};

struct Parent {
  std::uint64_t id = 0;
  std::uint64_t command_id = 0;
  std::uint64_t venue_mask = 0;
  std::uint64_t client_order_hash = 0;
  std::int64_t quantity = 0;
  std::int64_t filled = 0;
  std::int64_t working = 0;
  std::int64_t limit_price_ticks = 0;
  std::int64_t volume_at_start = 0;   // the instrument's printed volume when it arrived
  std::uint32_t instrument_id = 0;
  std::uint32_t account_id = 0;
  Side side = Side::kNone;
  bool active = false;
  bool on_fallback = false;           // the model guard's fallback policy routes it
  std::uint8_t stop_reason = 0;       // RejectReason that stopped it (kStopping)
  std::int64_t start_ns = 0;          // feature clock at arrival
  std::int64_t end_ns = 0;            // deadline on the feature clock
  double arrival_mid_ticks = 0;       // NBBO mid at arrival (0: none)
  std::int64_t next_decision_ns = 0;  // hosted policy: next decision (feature clock)
  bool expires = false;               // the command named an end time: wound down there
  std::uint8_t winding_down = 0;      // a Winding value: 0 working
  std::uint8_t sweep_rounds = 0;      // horizon sweeps sent (each takes the venues' tops)
  std::uint32_t open_count = 0;       // open children in open_ids
  std::uint64_t open_ids[kMaxOpenChildrenPerParent] = {};
};

struct Child {
  std::uint64_t id = 0;  // 0 = free slot
  std::uint32_t parent_slot = 0;
  std::int64_t leaves = 0;
  std::int64_t price_ticks = 0;
  std::int64_t quantity = 0;
  std::int64_t filled = 0;
  std::int64_t sent_ns = 0;  // realtime when the intent was written
  std::uint8_t venue_id = 0;
  bool acknowledged = false;  // a first report measured the venue's latency
  ChildOrderType type = ChildOrderType::kTake;
  bool cancel_sent = false;
  std::int64_t decided_ns = 0;  // feature clock when decided (the policy's clock)
  // what the risk stage accounts for, kept here because a parent slot can be reused while a
  // finished parent's child is still open
  std::int64_t valued_ticks = 0;  // price its open notional is counted at
  std::uint32_t account_id = 0;
  std::uint32_t instrument_id = 0;
  Side side = Side::kNone;
};

// One account's exposure in one instrument.
struct Exposure {
  std::int64_t position = 0;   // signed filled shares (buys positive) this trading day
  std::int64_t open_buy = 0;   // shares in open buy children
  std::int64_t open_sell = 0;  // shares in open sell children
};

// One account's credit use this trading day.
struct AccountCredit {
  double filled_notional_usd = 0;
  double open_notional_usd = 0;
};

// The day's ClOrdID hashes: open addressing with linear probing over a table allocated once
// (calloc: untouched pages stay unmapped); refuses rather than grows when 7/8 full.
class ClientOrderSet {
 public:
  ClientOrderSet() = default;
  ClientOrderSet(const ClientOrderSet&) = delete;
  ClientOrderSet& operator=(const ClientOrderSet&) = delete;
  ~ClientOrderSet() { std::free(slots_); }

  bool init(std::uint32_t capacity) noexcept {
    slots_ = static_cast<std::uint64_t*>(std::calloc(capacity, sizeof(std::uint64_t)));
    mask_ = capacity - 1;
    limit_ = capacity - capacity / 8;
    return slots_ != nullptr;
  }
  // Returns the slot holding `hash`, or the empty slot where it would go.
  std::uint64_t find(std::uint64_t hash) const noexcept {
    std::uint64_t i = mix(hash) & mask_;
    while (slots_[i] != 0 && slots_[i] != hash) i = (i + 1) & mask_;
    return i;
  }
  bool holds(std::uint64_t slot, std::uint64_t hash) const noexcept { return slots_[slot] == hash; }
  bool full() const noexcept { return count_ >= limit_; }
  void store(std::uint64_t slot, std::uint64_t hash) noexcept {
    slots_[slot] = hash;
    ++count_;
  }
  void clear() noexcept {
    if (count_ == 0) return;
    std::memset(slots_, 0, (mask_ + 1) * sizeof(std::uint64_t));
    count_ = 0;
  }
  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t limit() const noexcept { return limit_; }

 private:
  static std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64 finaliser
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
  }
  std::uint64_t* slots_ = nullptr;
  std::uint64_t mask_ = 0;
  std::uint64_t limit_ = 0;
  std::uint64_t count_ = 0;
};

using Verdict = RiskVerdict;

inline Verdict refuse(RejectReason reason, std::int64_t measured = 0, std::int64_t limit = 0) noexcept {
  return Verdict{reason, measured, limit};
}

struct Engine::Impl {
  Ring md, commands, executions, orders, audit, decisions;
  ConsolidatedBook book;
  FeatureEngine features;
  std::atomic<const TreeEnsemble*> models[kModelSlots] = {};
  std::atomic<std::uint32_t> model_generation[kModelSlots] = {};
  // Seqlock over models[] and model_generation[]: odd while set_models writes them, so a
  // decision reads one installed set, never part of an old and part of a new one.
  std::atomic<std::uint64_t> models_sequence{0};
  std::int64_t default_horizon_ns = 0;
  // the hosted policy: one instance per parent slot, prepared at creation; with a policy that
  // uses models, one fallback instance per slot too (the model guard switches to it)
  std::vector<std::unique_ptr<ExecutionPolicy>> policies;
  std::vector<std::unique_ptr<ExecutionPolicy>> fallbacks;
  std::vector<PolicyVenue> policy_venues;
  std::vector<double> adv_by_instrument;
  std::vector<std::int64_t> lot_by_instrument;
  std::int64_t decision_interval_ns = 1'000'000'000;
  PolicyOutput policy_output;
  OpenChild open_scratch[kMaxOpenChildrenPerParent];
  std::uint64_t md_applied = 0;
  std::uint64_t decision_sequence = 0;
  EngineParams params{};
  std::uint64_t params_sequence_seen = 0;
  RiskState risk_state = RiskState::kActive;
  std::vector<Parent> parents;
  std::vector<std::uint32_t> active;  // slots of active parents
  std::vector<Child> children;
  // Order and message rate limits as token buckets holding at most one second of each.
  double rate_tokens = -1;  // < 0 until the first check fills the bucket
  double message_tokens = -1;
  std::int64_t rate_refilled_ns = 0;
  std::uint64_t next_child_id = 1;
  std::uint64_t audit_sequence = 0;
  std::int64_t open_orders = 0;
  std::uint32_t expiring_parents = 0;  // active parents with an end time not yet reached
  double gross_notional_usd = 0;
  EngineCounters* counters = nullptr;
  // risk state by account and instrument (instrument ids below risk_instruments)
  std::uint32_t risk_instruments = 0;
  std::vector<Exposure> exposures;          // [account * risk_instruments + instrument]
  AccountCredit credit[kMaxAccounts] = {};
  std::vector<std::int64_t> last_trade_ticks;   // by instrument (0: none seen)
  std::vector<std::int64_t> market_volume;      // printed shares by instrument since start
  ClientOrderSet client_orders;
  std::uint32_t trading_day = 0;
  // the model guard
  ModelGuard guard;
  ModelMode model_mode = ModelMode::kNone;
  ModelGuardReason latched = ModelGuardReason::kNone;
  std::uint64_t enable_generation_seen = 0;
  std::int64_t latency_breaches_in_row = 0;

  Impl(const EngineOptions& options)
      : book(options.venues, [&] {
          BookOptions b;
          b.max_instruments = options.max_instruments;
          b.reserve_orders = options.reserve_orders;
          return b;
        }()),
        features(options.features),
        default_horizon_ns(options.default_horizon_ns),
        parents(options.max_parents),
        children(kChildTableSize) {
    active.reserve(options.max_parents);
    adv_by_instrument.assign(options.max_instruments, options.features.default_adv_shares);
    lot_by_instrument.assign(options.max_instruments, 100);
    decision_interval_ns = options.decision_interval_ns;
    for (const InstrumentFeatureSpec& i : options.instruments) {
      adv_by_instrument[i.instrument_id] = i.adv_shares;
      lot_by_instrument[i.instrument_id] = std::max<std::int64_t>(1, i.lot_shares);
      features.set_adv(i.instrument_id, i.adv_shares);
      if (i.implied_volatility_annual > 0) {
        features.set_implied_volatility(i.instrument_id, i.implied_volatility_annual);
      }
    }
    risk_instruments = std::min<std::uint32_t>(options.max_instruments,
                                               static_cast<std::uint32_t>(kMaxRiskInstruments));
    exposures.assign(static_cast<std::size_t>(kMaxAccounts) * risk_instruments, Exposure{});
    last_trade_ticks.assign(risk_instruments, 0);
    market_volume.assign(options.max_instruments, 0);
    if (!client_orders.init(options.client_order_capacity)) throw std::bad_alloc();
  }

  Exposure& exposure(std::uint32_t account, std::uint32_t instrument) noexcept {
    return exposures[static_cast<std::size_t>(account) * risk_instruments + instrument];
  }

  bool account_enabled(std::uint32_t account) const noexcept {
    return account_configured(params, account);
  }

  // The reference price of the collar: the configured one, else the last trade (0: none).
  std::int64_t reference_price(std::uint32_t instrument) const noexcept {
    if (instrument >= risk_instruments) return 0;
    const std::int64_t configured = params.reference_price_ticks[instrument];
    return configured > 0 ? configured : last_trade_ticks[instrument];
  }

  bool guarding() const noexcept { return model_mode == ModelMode::kModel; }

  // The feature and model stages for one candidate child: builds its feature row, runs every
  // installed model on it (none in FALLBACK; each output checked by the guard in MODEL mode)
  // and writes the decision record (the risk verdict is filled in by the caller through
  // `record`). Never throws; a refused or non-finite row runs no model.
  void evaluate_candidate(const Parent& p, std::uint8_t venue, std::int64_t price,
                          std::int64_t quantity, ChildOrderType type,
                          DecisionRecord& record) noexcept {
    const std::int64_t started = monotonic_ns();
    record = DecisionRecord{};
    record.sequence = ++decision_sequence;
    record.parent_order_id = p.id;
    record.md_events = md_applied;
    DecisionContext& c = record.context;
    c.now_ns = features.clock_ns();
    c.start_ns = p.start_ns;
    c.end_ns = p.end_ns;
    c.child_price_ticks = price;
    c.child_quantity = quantity;
    c.parent_quantity = p.quantity;
    c.remaining_quantity = std::max<std::int64_t>(0, p.quantity - p.filled);
    c.arrival_mid_ticks = p.arrival_mid_ticks;
    c.instrument_id = p.instrument_id;
    c.venue_id = venue;
    c.side = p.side;
    c.order_type = type;
    const FeatureStatus status = features.build_row(c, book, record.features);
    record.row_status = static_cast<std::uint8_t>(status);
    for (std::size_t s = 0; s < kModelSlots; ++s) {
      record.model_output[s] = std::numeric_limits<float>::quiet_NaN();
    }
    bool usable = status == FeatureStatus::kOk;
    if (!usable) {
      record.flags |= kDecisionRowRefused;
    } else {
      for (float v : record.features) usable = usable && std::isfinite(v);
      if (!usable) record.flags |= kDecisionNonFiniteRow;
    }
    const bool fallback = model_mode == ModelMode::kFallback;
    if (!usable) {
      bump(counters->model_input_rejects);
      // a non-finite row would have been offered to the models: the guard trips on it
      if (guarding() && status == FeatureStatus::kOk) {
        guard.trip(ModelGuardReason::kNonFiniteInput, ModelSlot::kFillProbability);
      }
    } else if (!fallback) {
      const TreeEnsemble* chosen[kModelSlots];
      for (;;) {
        const std::uint64_t before = models_sequence.load(std::memory_order_acquire);
        if (before & 1U) {
          cpu_relax();
          continue;
        }
        for (std::size_t s = 0; s < kModelSlots; ++s) {
          record.model_generation[s] = model_generation[s].load(std::memory_order_relaxed);
          chosen[s] = models[s].load(std::memory_order_relaxed);
        }
        std::atomic_thread_fence(std::memory_order_acquire);
        if (models_sequence.load(std::memory_order_relaxed) == before) break;
      }
      for (std::size_t s = 0; s < kModelSlots; ++s) {
        const TreeEnsemble* model = chosen[s];
        if (model == nullptr) continue;
        record.model_output[s] = model->predict(record.features);
        record.model_mask |= 1U << s;
        bump(counters->model_evaluations);
        if (guarding()) guard.check_output(static_cast<ModelSlot>(s), record.model_output[s]);
      }
    }
    record.inference_ns = monotonic_ns() - started;
  }

  void publish_decision(DecisionRecord& record) noexcept {
    record.ts_ns = realtime_ns();
    if (decisions.write(&record, 1) == 1) {
      bump(counters->decisions);
    } else {
      bump(counters->decision_ring_refused);
    }
  }

  // Writes one audit record; a full audit ring is counted, never waited on forever.
  void audit_record(AuditKind kind, std::uint64_t parent, std::uint64_t child, std::int64_t a,
                    std::int64_t b, std::uint64_t reference, std::uint32_t instrument,
                    std::uint8_t venue, std::uint8_t reason) noexcept {
    AuditRecord r{};
    r.ts_ns = realtime_ns();
    r.sequence = ++audit_sequence;
    r.parent_order_id = parent;
    r.child_order_id = child;
    r.value_a = a;
    r.value_b = b;
    r.reference = reference;
    r.instrument_id = instrument;
    r.venue_id = venue;
    r.kind = kind;
    r.reason = reason;
    if (audit.write(&r, 1) == 1) {
      bump(counters->audit_records);
    } else {
      bump(counters->audit_ring_refused);
    }
  }

  void count_reject(RejectReason reason) noexcept {
    const auto index = static_cast<std::size_t>(reason);
    if (index < kRejectReasonCount) bump(counters->risk_rejects_by_reason[index]);
  }

  void set_risk_state(RiskState state) noexcept {
    if (state == risk_state) return;
    const RiskState previous = risk_state;
    risk_state = state;
    counters->risk_state.store(static_cast<std::uint32_t>(state), std::memory_order_relaxed);
    audit_record(AuditKind::kRiskState, 0, 0, static_cast<std::int64_t>(state),
                 static_cast<std::int64_t>(previous), params.version, 0, 0, 0);
    if (state == RiskState::kHalted) {
      // every open child of every parent is cancelled; the parents pause
      for (const std::uint32_t slot : active) {
        const Parent& p = parents[slot];
        for (std::uint32_t i = 0; i < p.open_count; ++i) cancel_child(slot, p.open_ids[i]);
      }
    } else if (previous == RiskState::kHalted) {
      // the parents resume: hosted policies decide at once, the built-in taker sweeps
      for (std::size_t k = 0; k < active.size(); ++k) {
        const std::uint32_t slot = active[k];
        Parent& p = parents[slot];
        if (p.winding_down != kWorking) continue;
        if (!policies.empty()) {
          p.next_decision_ns = 0;
        } else {
          const std::size_t before = active.size();
          sweep(slot);
          if (active.size() != before) --k;  // the sweep stopped it
        }
      }
    }
  }

  // A new trading day: credit used, positions and the ClOrdID set start again (open
  // children stay open and stay counted).
  void start_trading_day() noexcept {
    for (AccountCredit& a : credit) a.filled_notional_usd = 0;
    for (Exposure& e : exposures) e.position = 0;
    client_orders.clear();
    gross_notional_usd = 0;
  }

  void refresh_params(EngineControlHandle& control) noexcept {
    const std::uint64_t seq = control.get()->params_sequence.load(std::memory_order_acquire);
    if (seq == params_sequence_seen || (seq & 1U)) return;
    control.read_params_into(params);
    params_sequence_seen = seq;
    counters->params_version.store(params.version, std::memory_order_relaxed);
    audit_record(AuditKind::kParamsApplied, 0, 0, static_cast<std::int64_t>(params.version), 0,
                 0, 0, 0, 0);
    for (std::size_t s = 0; s < kModelSlots; ++s) {
      guard.output_min[s] = params.model_output_min[s];
      guard.output_max[s] = params.model_output_max[s];
    }
    if (params.trading_day != trading_day) {
      if (trading_day != 0) start_trading_day();
      trading_day = params.trading_day;
    }
    const auto state = static_cast<std::uint32_t>(params.risk_state);
    set_risk_state(state <= static_cast<std::uint32_t>(RiskState::kHalted) ? params.risk_state
                                                                         : RiskState::kHalted);
    apply_model_params();
  }

  // --- the model guard ------------------------------------------------------------------

  // Switches every active parent to the fallback policy or back to the hosted one, reset
  // with its current state; each decides at the next pass.
  void switch_parents(bool to_fallback) noexcept {
    for (const std::uint32_t slot : active) {
      Parent& p = parents[slot];
      ExecutionPolicy& policy = to_fallback ? *fallbacks[slot] : *policies[slot];
      policy.reset(parent_state(p), policy_venues.data(), policy_venues.size());
      p.on_fallback = to_fallback;
      p.next_decision_ns = 0;
    }
  }

  // Latches a trip: routing goes to the fallback policy until an operator re-enables.
  void latch(ModelGuardReason reason, std::uint64_t reference) noexcept {
    if (model_mode == ModelMode::kNone || reason == ModelGuardReason::kNone) return;
    const bool engage = latched == ModelGuardReason::kNone;
    latched = reason;
    counters->model_guard_reason.store(static_cast<std::uint32_t>(reason), std::memory_order_relaxed);
    if (!engage) return;
    model_mode = ModelMode::kFallback;
    latency_breaches_in_row = 0;
    counters->model_mode.store(static_cast<std::uint32_t>(model_mode), std::memory_order_relaxed);
    bump(counters->model_guard_trips);
    audit_record(AuditKind::kModelGuard, 0, 0, 1, static_cast<std::int64_t>(reason), reference, 0,
                 0, 0);
    switch_parents(true);
  }

  // Turns a trip the guard recorded into the latched fallback.
  void settle_guard() noexcept {
    if (!guard.tripped()) return;
    const ModelGuardReason reason = guard.reason;
    const bool output = reason == ModelGuardReason::kNonFiniteOutput ||
                        reason == ModelGuardReason::kOutputOutOfRange;
    const std::uint64_t reference = output ? static_cast<std::uint64_t>(guard.slot) : 0;
    guard.clear();
    if (guarding()) latch(reason, reference);
  }

  // The guard's parameters: a forced reason latches; a new enable generation with no forced
  // reason clears the latch and routing goes back to the models.
  void apply_model_params() noexcept {
    if (model_mode == ModelMode::kNone) return;
    const auto forced = static_cast<ModelGuardReason>(
        std::min<std::uint32_t>(params.model_fallback_reason, 255U));
    if (params.model_enable_generation != enable_generation_seen) {
      enable_generation_seen = params.model_enable_generation;
      if (latched != ModelGuardReason::kNone && forced == ModelGuardReason::kNone) {
        const ModelGuardReason previous = latched;
        latched = ModelGuardReason::kNone;
        model_mode = ModelMode::kModel;
        latency_breaches_in_row = 0;
        guard.clear();
        counters->model_mode.store(static_cast<std::uint32_t>(model_mode), std::memory_order_relaxed);
        counters->model_guard_reason.store(0, std::memory_order_relaxed);
        audit_record(AuditKind::kModelGuard, 0, 0, 2, static_cast<std::int64_t>(previous), 0, 0,
                     0, 0);
        switch_parents(false);
      }
    }
    if (forced != ModelGuardReason::kNone && latched == ModelGuardReason::kNone) latch(forced, 0);
  }

  Parent* find_parent(std::uint64_t id, std::uint32_t* slot) noexcept {
    for (std::uint32_t s : active) {
      if (parents[s].id == id) {
        if (slot) *slot = s;
        return &parents[s];
      }
    }
    return nullptr;
  }

  void refill_buckets(std::int64_t now_ns) noexcept {
    const auto orders_limit = static_cast<double>(params.max_orders_per_second);
    const auto messages_limit = static_cast<double>(params.max_messages_per_second);
    if (rate_tokens < 0 && message_tokens < 0 && rate_refilled_ns == 0) {
      rate_tokens = orders_limit;
      message_tokens = messages_limit;
    } else {
      const double seconds = static_cast<double>(std::max<std::int64_t>(0, now_ns - rate_refilled_ns)) * 1e-9;
      rate_tokens = std::min(orders_limit, rate_tokens + seconds * orders_limit);
      message_tokens = std::min(messages_limit, message_tokens + seconds * messages_limit);
    }
    rate_refilled_ns = now_ns;
  }

  // The risk stage for one child: gathers what check_child needs (risk.hpp) from the
  // engine's state. The refusal carries the measured value and the limit.
  Verdict risk_check(const Parent& p, std::uint8_t venue, std::int64_t price,
                     std::int64_t quantity, std::int64_t now_ns, bool model_refused) noexcept {
    ChildRiskInput in;
    in.risk_state = risk_state;
    in.instrument_id = p.instrument_id;
    in.account_id = p.account_id;
    in.side = p.side;
    in.venue_id = venue;
    in.price_ticks = price;
    in.quantity = quantity;
    if (p.instrument_id < risk_instruments && p.account_id < kMaxAccounts) {
      const Nbbo nbbo = book.nbbo(p.instrument_id);
      in.bid_price_ticks = nbbo.bid_price_ticks;
      in.ask_price_ticks = nbbo.ask_price_ticks;
      in.reference_price_ticks = reference_price(p.instrument_id);
      const Exposure& e = exposure(p.account_id, p.instrument_id);
      in.position_shares = e.position;
      in.open_same_side_shares = p.side == Side::kBuy ? e.open_buy : e.open_sell;
      in.account_filled_notional_usd = credit[p.account_id].filled_notional_usd;
      in.account_open_notional_usd = credit[p.account_id].open_notional_usd;
      in.market_volume_shares = market_volume[p.instrument_id] - p.volume_at_start;
    }
    in.gross_notional_usd = gross_notional_usd;
    in.open_orders = open_orders;
    refill_buckets(now_ns);
    in.order_tokens = rate_tokens;
    in.message_tokens = message_tokens;
    in.parent_traded_shares = p.filled + p.working;
    in.model_refused = model_refused;
    return check_child(in, params);
  }

  // Sends one child through the feature, model and risk stages; returns true when it
  // reached the order ring. Every candidate leaves a decision record.
  bool send_child(std::uint32_t slot, std::uint8_t venue, std::int64_t price,
                  std::int64_t quantity, const MdEvent* trigger,
                  ChildOrderType type = ChildOrderType::kTake) noexcept {
    Parent& p = parents[slot];
    if (p.open_count >= kMaxOpenChildrenPerParent ||
        (p.winding_down != kWorking && p.winding_down != kFinalSweep)) {
      return false;
    }
    DecisionRecord& record = decision_scratch;
    evaluate_candidate(p, venue, price, quantity, type, record);
    const std::int64_t now = monotonic_ns();
    const Verdict verdict = risk_check(p, venue, price, quantity, now, guarding() && guard.tripped());
    record.risk_reason = static_cast<std::uint8_t>(verdict.reason);
    if (verdict.reason != RejectReason::kNone) {
      publish_decision(record);
      bump(counters->risk_rejects);
      count_reject(verdict.reason);
      audit_record(AuditKind::kRiskReject, p.id, 0, verdict.measured, verdict.limit,
                   trigger ? trigger->sequence : p.command_id, p.instrument_id, venue,
                   static_cast<std::uint8_t>(verdict.reason));
      if (reason_stops_parent(verdict.reason)) stop_parent(slot, verdict.reason);
      return false;
    }
    const std::uint64_t id = next_child_id;
    Child& c = children[id % kChildTableSize];
    if (c.id != 0) {  // slot still in flight: bounded by max_open_orders above
      publish_decision(record);
      return false;
    }
    OrderIntent intent{};
    intent.ts_decision = realtime_ns();
    intent.ts_trigger = trigger ? trigger->ts_recv : 0;
    intent.child_order_id = id;
    intent.parent_order_id = p.id;
    intent.price_ticks = price;
    intent.quantity = quantity;
    intent.trigger_sequence = trigger ? trigger->sequence : 0;
    intent.instrument_id = p.instrument_id;
    intent.venue_id = venue;
    intent.action = OrderAction::kNew;
    intent.side = p.side;
    intent.time_in_force = type == ChildOrderType::kPost       ? TimeInForce::kPostOnly
                           : type == ChildOrderType::kMidpoint ? TimeInForce::kMidpointPeg
                                                               : TimeInForce::kIoc;
    if (orders.write(&intent, 1) != 1) {
      bump(counters->order_ring_refused);
      audit_record(AuditKind::kRingOverflow, p.id, id, 0, quantity, 0, p.instrument_id, venue, 0);
      publish_decision(record);
      return false;
    }
    ++next_child_id;
    const std::int64_t valued = valued_price(p, price);
    c = Child{id, slot, quantity, price, quantity, 0, intent.ts_decision, venue, false, type, false,
              features.clock_ns(), valued, p.account_id, p.instrument_id, p.side};
    p.open_ids[p.open_count++] = id;
    record.child_order_id = id;
    record.flags |= kDecisionChildSent;
    publish_decision(record);
    p.working += quantity;
    ++open_orders;
    rate_tokens -= 1.0;
    message_tokens -= 1.0;
    const double notional = static_cast<double>(valued) * params.price_tick_usd *
                            static_cast<double>(quantity);
    gross_notional_usd += notional;
    credit[p.account_id].open_notional_usd += notional;
    Exposure& e = exposure(p.account_id, p.instrument_id);
    (p.side == Side::kBuy ? e.open_buy : e.open_sell) += quantity;
    bump(counters->child_orders);
    bump(counters->messages);
    counters->open_orders.store(static_cast<std::uint64_t>(open_orders), std::memory_order_relaxed);
    audit_record(AuditKind::kChildOrder, p.id, id, price, quantity,
                 trigger ? trigger->sequence : p.command_id, p.instrument_id, venue, 0);
    return true;
  }

  // The price a child is valued at: its limit, or the mid for an unlimited peg.
  std::int64_t valued_price(const Parent& p, std::int64_t price) const noexcept {
    if (price > 0) return price;
    const Nbbo q = book.nbbo(p.instrument_id);
    return q.bid_price_ticks > 0 && q.ask_price_ticks > 0
               ? (q.bid_price_ticks + q.ask_price_ticks) / 2 : 0;
  }

  // --- the hosted policy (EngineOptions::policy) -------------------------------------------

  // Returns the limit of a policy request: its own, else the far touch of its venue for a
  // take, the NBBO near touch for a post, 0 (unlimited peg) for a midpoint child.
  std::int64_t request_price(const Parent& p, const ChildRequest& r) const noexcept {
    if (r.price_ticks > 0 || r.type == ChildOrderType::kMidpoint) return r.price_ticks;
    const Nbbo q = book.nbbo(p.instrument_id);
    if (r.type == ChildOrderType::kPost) {
      return p.side == Side::kBuy ? q.bid_price_ticks : q.ask_price_ticks;
    }
    const Side far = p.side == Side::kBuy ? Side::kSell : Side::kBuy;
    const LevelView best = book.venue_best(r.venue_id, p.instrument_id, far);
    if (best.price_ticks > 0) return best.price_ticks;
    return p.side == Side::kBuy ? q.ask_price_ticks : q.bid_price_ticks;
  }

  // Returns `quantity` cut to the per-order share and notional limits, in whole lots when
  // cut (policies do not see the limits; what is cut is theirs to ask for again). The risk
  // stage still checks the child; a quantity that cannot fit is returned as it is, so the
  // refusal names the limit.
  std::int64_t fit_order_limits(const Parent& p, std::int64_t quantity,
                                std::int64_t price) const noexcept {
    std::int64_t fitted = std::min(quantity, params.max_order_quantity_shares);
    const std::int64_t valued = valued_price(p, price);
    if (valued > 0 && params.price_tick_usd > 0) {
      const double per_share = static_cast<double>(valued) * params.price_tick_usd;
      const double most = std::floor(params.max_order_notional_usd / per_share);
      if (most < static_cast<double>(fitted)) fitted = static_cast<std::int64_t>(std::max(0.0, most));
    }
    if (fitted >= quantity) return quantity;
    const std::int64_t lot = lot_by_instrument[p.instrument_id];
    fitted -= fitted % lot;
    return fitted > 0 ? fitted : quantity;
  }

  // Returns a parent as the policy sees it.
  ParentState parent_state(const Parent& p) const noexcept {
    ParentState state{};
    state.parent_order_id = p.id;
    state.instrument_id = p.instrument_id;
    state.side = p.side;
    state.quantity = p.quantity;
    state.filled = p.filled;
    state.open_quantity = p.working;
    state.limit_price_ticks = p.limit_price_ticks;
    state.start_ns = p.start_ns;
    state.end_ns = p.end_ns;
    state.arrival_mid_ticks = p.arrival_mid_ticks;
    state.adv_shares = adv_by_instrument[p.instrument_id];
    state.lot_shares = lot_by_instrument[p.instrument_id];
    return state;
  }

  // Returns the policy instance that routes the parent in `slot` now.
  ExecutionPolicy& policy_for(std::uint32_t slot) noexcept {
    return parents[slot].on_fallback ? *fallbacks[slot] : *policies[slot];
  }

  // Runs the parent's policy once: its view, its decision, its cancels and children. In
  // MODEL mode the decision is timed against the latency budget and every model output
  // passes the guard; a trip refuses this decision's children (MODEL_GUARD) and switches
  // every parent to the fallback policy afterwards.
  void run_policy(std::uint32_t slot) noexcept {
    Parent& p = parents[slot];
    ExecutionPolicy& policy = policy_for(slot);
    const std::int64_t now = features.clock_ns();
    const ParentState state = parent_state(p);
    std::size_t open = 0;
    for (std::uint32_t i = 0; i < p.open_count; ++i) {
      const Child& c = children[p.open_ids[i] % kChildTableSize];
      open_scratch[open++] = OpenChild{c.id, c.venue_id, c.type, c.price_ticks, c.quantity,
                                       c.leaves, c.decided_ns, c.cancel_sent};
    }
    PolicyView view{};
    view.now_ns = now;
    view.book = &book;
    view.features = &features;
    view.parent = &state;
    view.open_children = open_scratch;
    view.open_child_count = open;
    view.venues = policy_venues.data();
    view.venue_count = policy_venues.size();
    const bool guarded = guarding() && !p.on_fallback;
    if (!p.on_fallback) {  // the fallback policy sees no model at all
      view.models.fill_probability = models[0].load(std::memory_order_acquire);
      view.models.adverse_move = models[1].load(std::memory_order_acquire);
      view.models.market_impact = models[2].load(std::memory_order_acquire);
      view.models.action_value = models[3].load(std::memory_order_acquire);
      if (guarded) view.models.guard = &guard;
    }
    view.market_volume_shares = static_cast<double>(market_volume[p.instrument_id] - p.volume_at_start);
    PolicyOutput& out = policy_output;
    out.child_count = 0;
    out.cancel_count = 0;
    out.next_decision_ns = 0;
    if (guarded) {
      const std::int64_t started = monotonic_ns();
      policy.decide(view, out);
      const std::int64_t spent = monotonic_ns() - started;
      if (params.model_latency_budget_ns > 0) {
        if (spent > params.model_latency_budget_ns) {
          if (++latency_breaches_in_row >= std::max<std::int64_t>(1, params.model_latency_breaches)) {
            guard.trip(ModelGuardReason::kLatencyBudget, ModelSlot::kFillProbability);
          }
        } else {
          latency_breaches_in_row = 0;
        }
      }
    } else {
      policy.decide(view, out);
    }
    bump(counters->policy_decisions);
    for (std::size_t i = 0; i < out.cancel_count; ++i) cancel_child(slot, out.cancels[i]);
    for (std::size_t i = 0; i < out.child_count; ++i) {
      const ChildRequest& r = out.children[i];
      const std::int64_t free = p.quantity - p.filled - p.working;
      const std::int64_t price = request_price(p, r);
      const std::int64_t quantity = fit_order_limits(p, std::min(r.quantity, free), price);
      if (quantity <= 0 || !venue_allowed(p, r.venue_id) ||
          (r.type != ChildOrderType::kMidpoint && !price_acceptable(p, price)) ||
          p.open_count >= kMaxOpenChildrenPerParent ||
          !send_child(slot, r.venue_id, price, quantity, nullptr, r.type)) {
        bump(counters->policy_requests_refused);
      }
    }
    const std::int64_t grid = now + decision_interval_ns;
    if (p.active) {
      p.next_decision_ns = out.next_decision_ns > now ? std::min(out.next_decision_ns, grid) : grid;
    }
    settle_guard();
  }

  // Asks the gateway to cancel one of the parent's open children (once). Cancels are never
  // refused by risk; they count toward the message rate.
  void cancel_child(std::uint32_t slot, std::uint64_t child_id) noexcept {
    Child& c = children[child_id % kChildTableSize];
    if (c.id != child_id || c.parent_slot != slot || c.cancel_sent) return;
    const Parent& p = parents[slot];
    OrderIntent intent{};
    intent.ts_decision = realtime_ns();
    intent.child_order_id = child_id;
    intent.parent_order_id = p.id;
    intent.price_ticks = c.price_ticks;
    intent.quantity = c.leaves;
    intent.instrument_id = c.instrument_id;
    intent.venue_id = c.venue_id;
    intent.action = OrderAction::kCancel;
    intent.side = c.side;
    if (orders.write(&intent, 1) == 1) {
      c.cancel_sent = true;
      refill_buckets(monotonic_ns());
      message_tokens = std::max(message_tokens - 1.0,
                                -static_cast<double>(params.max_messages_per_second));
      bump(counters->messages);
    } else {
      bump(counters->order_ring_refused);
    }
  }

  // Runs every parent's policy whose decision time has come (feature clock); none while
  // HALTED (the parents are paused).
  void run_policies() noexcept {
    if (risk_state == RiskState::kHalted) return;
    const std::int64_t now = features.clock_ns();
    for (std::size_t k = 0; k < active.size();) {
      const std::uint32_t slot = active[k];
      const Parent& p = parents[slot];
      const std::size_t before = active.size();
      if (p.active && p.winding_down == kWorking && now >= p.next_decision_ns) run_policy(slot);
      if (active.size() == before) ++k;  // finish_parent removed this slot otherwise
    }
  }

  // Winds down every parent whose end time has passed on the feature clock (DoneForDay).
  void expire_parents() noexcept {
    const std::int64_t now = features.clock_ns();
    for (std::size_t k = 0; k < active.size();) {
      const std::uint32_t slot = active[k];
      const Parent& p = parents[slot];
      const std::size_t before = active.size();
      if (p.expires && p.winding_down == kWorking && now >= p.end_ns) wind_down(slot, kExpiring);
      if (active.size() == before) ++k;  // finish_parent removed this slot otherwise
    }
  }

  // Stops a parent: cancels its open children; once none is open, a cancelled parent is done
  // (kParentDone 1), one stopped by risk too (3, with its reason), and an expired one takes
  // its remainder within its limit (the horizon sweep, as in the backtester) and is done
  // when those children are (0 filled, 2 expired).
  void wind_down(std::uint32_t slot, std::uint8_t how) noexcept {
    Parent& p = parents[slot];
    p.winding_down = how;
    if (expiring_parents > 0 && p.expires) --expiring_parents;
    p.expires = false;
    for (std::uint32_t i = 0; i < p.open_count; ++i) cancel_child(slot, p.open_ids[i]);
    if (p.open_count == 0) children_settled(slot);
  }

  // A child refusal that stops its parent (docs/guardrails.md): cancels its children and
  // reports PARENT_DONE 3 with the reason once they are done.
  void stop_parent(std::uint32_t slot, RejectReason reason) noexcept {
    Parent& p = parents[slot];
    if (!p.active || p.winding_down == kStopping || p.winding_down == kCancelling) return;
    p.stop_reason = static_cast<std::uint8_t>(reason);
    wind_down(slot, kStopping);
  }

  // The next step of a winding-down parent whose children are all done.
  void children_settled(std::uint32_t slot) noexcept {
    Parent& p = parents[slot];
    if (p.winding_down == kExpiring) p.winding_down = kFinalSweep;
    // Each round takes every venue's top within the limit; the next round sees the book the
    // previous one left. A round that sends nothing ends it.
    if (p.winding_down == kFinalSweep && risk_state == RiskState::kActive &&
        p.filled < p.quantity && p.sweep_rounds < kMaxHorizonSweeps) {
      ++p.sweep_rounds;
      sweep(slot);
      if (!p.active || p.open_count != 0) return;  // (a refusal may have stopped it)
    }
    if (p.winding_down == kCancelling) return finish_parent(slot, 1);
    if (p.winding_down == kStopping) return finish_parent(slot, 3, p.stop_reason);
    finish_parent(slot, p.filled >= p.quantity ? 0 : 2);
  }

  bool price_acceptable(const Parent& p, std::int64_t price) const noexcept {
    if (price <= 0) return false;
    if (p.limit_price_ticks == 0) return true;
    return p.side == Side::kBuy ? price <= p.limit_price_ticks : price >= p.limit_price_ticks;
  }

  bool venue_allowed(const Parent& p, std::uint8_t venue) const noexcept {
    if (venue >= kMaxEngineVenues) return false;
    return p.venue_mask == 0 || ((p.venue_mask >> venue) & 1U);
  }

  // The built-in policy: on arrival, take displayed liquidity venue by venue in order of
  // all-in price (price plus taker fee) within the limit.
  void sweep(std::uint32_t slot) noexcept {
    Parent& p = parents[slot];
    ProtectedQuote quotes[ConsolidatedBook::kMaxVenues];
    const std::size_t n = book.protected_quotes(p.instrument_id, quotes, ConsolidatedBook::kMaxVenues);
    bool used[ConsolidatedBook::kMaxVenues] = {};
    for (std::size_t round = 0; round < n; ++round) {
      if (!p.active || (p.winding_down != kWorking && p.winding_down != kFinalSweep)) return;
      const std::int64_t remaining = p.quantity - p.filled - p.working;
      if (remaining <= 0) return;
      int best = -1;
      double best_cost = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (used[i] || !venue_allowed(p, quotes[i].venue_id)) continue;
        const std::int64_t price =
            p.side == Side::kBuy ? quotes[i].ask_price_ticks : quotes[i].bid_price_ticks;
        const std::int64_t size =
            p.side == Side::kBuy ? quotes[i].ask_quantity : quotes[i].bid_quantity;
        if (size <= 0 || !price_acceptable(p, price)) continue;
        const double fee = params.taker_fee_usd_per_share[quotes[i].venue_id];
        const double px = static_cast<double>(price) * params.price_tick_usd;
        const double cost = p.side == Side::kBuy ? px + fee : -(px - fee);
        if (best < 0 || cost < best_cost) {
          best = static_cast<int>(i);
          best_cost = cost;
        }
      }
      if (best < 0) return;
      used[best] = true;
      const ProtectedQuote& q = quotes[best];
      const std::int64_t price = p.side == Side::kBuy ? q.ask_price_ticks : q.bid_price_ticks;
      const std::int64_t size = p.side == Side::kBuy ? q.ask_quantity : q.bid_quantity;
      const std::int64_t quantity =
          std::min({remaining, size, params.max_order_quantity_shares});
      send_child(slot, q.venue_id, price, quantity, nullptr);
    }
  }

  // The built-in policy on market data: new contra-side liquidity at a venue's top, within a
  // working parent's limit, is taken at once.
  void on_market(const MdEvent& e) noexcept {
    if (active.empty() || !policies.empty()) return;  // a hosted policy decides on its grid
    if (risk_state == RiskState::kHalted) return;
    if (e.kind != EventKind::kAdd && e.kind != EventKind::kLevel) return;
    if (e.quantity <= 0) return;
    const int index = book.venue_index(e.venue_id);
    if (index < 0 || !book.venue(static_cast<std::size_t>(index)).lit) return;
    const PriceLadder* ladder = book.book(static_cast<std::size_t>(index)).ladder(e.instrument_id, e.side);
    if (ladder == nullptr || ladder->empty() || ladder->best()->price_ticks != e.price_ticks) return;
    for (std::size_t k = 0; k < active.size(); ++k) {
      const std::uint32_t slot = active[k];
      Parent& p = parents[slot];
      if (p.instrument_id != e.instrument_id || opposite(p.side) != e.side) continue;
      if (p.winding_down != kWorking) continue;
      if (!venue_allowed(p, e.venue_id) || !price_acceptable(p, e.price_ticks)) continue;
      const std::int64_t remaining = p.quantity - p.filled - p.working;
      if (remaining <= 0) continue;
      const std::int64_t quantity =
          std::min({remaining, e.quantity, params.max_order_quantity_shares});
      send_child(slot, e.venue_id, e.price_ticks, quantity, &e);
      return;  // the new liquidity goes to one parent
    }
  }

  void finish_parent(std::uint32_t slot, std::int64_t how, std::uint8_t reason = 0) noexcept {
    Parent& p = parents[slot];
    if (!p.active) return;
    p.active = false;
    if (p.expires && expiring_parents > 0) --expiring_parents;
    p.expires = false;
    audit_record(AuditKind::kParentDone, p.id, 0, p.filled, how, p.command_id, p.instrument_id, 0,
                 reason);
    active.erase(std::find(active.begin(), active.end(), slot));
    counters->active_parents.store(active.size(), std::memory_order_relaxed);
  }

  void reject_command(const Command& c, Verdict v) noexcept {
    bump(counters->commands_rejected);
    count_reject(v.reason);
    audit_record(AuditKind::kCommandRejected, c.parent_order_id, 0, v.measured, v.limit,
                 c.command_id, c.instrument_id, 0, static_cast<std::uint8_t>(v.reason));
  }

  void reject_command(const Command& c, RejectReason reason) noexcept { reject_command(c, refuse(reason)); }

  // Returns the notional of a parent at entry: quantity x (limit, else the far touch, else
  // the reference price); 0 when nothing prices it.
  double parent_notional(std::uint32_t instrument, Side side, std::int64_t quantity,
                         std::int64_t limit) const noexcept {
    std::int64_t price = limit;
    if (price <= 0) {
      const Nbbo q = book.nbbo(instrument);
      price = side == Side::kBuy ? q.ask_price_ticks : q.bid_price_ticks;
    }
    if (price <= 0) price = reference_price(instrument);
    return static_cast<double>(std::max<std::int64_t>(0, price)) * params.price_tick_usd *
           static_cast<double>(quantity);
  }

  // The parent entry checks (check_parent, risk.hpp) with the engine's state.
  Verdict parent_entry_check(const Command& c) noexcept {
    ParentRiskInput in;
    in.risk_state = risk_state;
    in.instrument_id = c.instrument_id;
    in.account_id = c.account_id;
    in.side = c.side;
    in.quantity = c.quantity;
    in.limit_price_ticks = c.limit_price_ticks;
    in.duplicate_parent = find_parent(c.parent_order_id, nullptr) != nullptr;
    if (c.client_order_hash != 0) {
      in.duplicate_client_order =
          client_orders.holds(client_orders.find(c.client_order_hash), c.client_order_hash);
      in.client_orders_full = client_orders.full();
      in.client_orders_count = static_cast<std::int64_t>(client_orders.count());
      in.client_orders_limit = static_cast<std::int64_t>(client_orders.limit());
    }
    if (c.instrument_id < risk_instruments && c.account_id < kMaxAccounts) {
      in.notional_usd = parent_notional(c.instrument_id, c.side, c.quantity, c.limit_price_ticks);
      in.reference_price_ticks = reference_price(c.instrument_id);
      const Exposure& e = exposure(c.account_id, c.instrument_id);
      in.position_shares = e.position;
      in.open_same_side_shares = c.side == Side::kBuy ? e.open_buy : e.open_sell;
      in.account_filled_notional_usd = credit[c.account_id].filled_notional_usd;
      in.account_open_notional_usd = credit[c.account_id].open_notional_usd;
    }
    return check_parent(in, params);
  }

  void on_command(const Command& c, std::uint32_t max_instruments) noexcept {
    bump(counters->commands);
    switch (c.kind) {
      case CommandKind::kNewParent: {
        if ((c.side != Side::kBuy && c.side != Side::kSell) || c.quantity <= 0 ||
            c.limit_price_ticks < 0 || c.parent_order_id == 0) {
          return reject_command(c, RejectReason::kInvalidCommand);
        }
        if (c.instrument_id < kMaxRiskInstruments && c.instrument_id >= max_instruments) {
          return reject_command(c, RejectReason::kInvalidCommand);
        }
        if (const Verdict v = parent_entry_check(c); v.reason != RejectReason::kNone) {
          return reject_command(c, v);
        }
        std::uint32_t slot = 0;
        while (slot < parents.size() && parents[slot].active) ++slot;
        if (slot == parents.size()) {
          return reject_command(c, refuse(RejectReason::kCapacity,
                                          static_cast<std::int64_t>(parents.size()) + 1,
                                          static_cast<std::int64_t>(parents.size())));
        }
        if (c.client_order_hash != 0) {
          client_orders.store(client_orders.find(c.client_order_hash), c.client_order_hash);
        }
        Parent& p = parents[slot];
        p = Parent{};
        p.id = c.parent_order_id;
        p.command_id = c.command_id;
        p.venue_mask = c.venue_mask;
        p.client_order_hash = c.client_order_hash;
        p.quantity = c.quantity;
        p.limit_price_ticks = c.limit_price_ticks;
        p.instrument_id = c.instrument_id;
        p.account_id = c.account_id;
        p.side = c.side;
        p.active = true;
        p.volume_at_start = market_volume[c.instrument_id];
        p.start_ns = features.clock_ns();
        p.end_ns = c.end_time_ns > p.start_ns ? c.end_time_ns : p.start_ns + default_horizon_ns;
        p.expires = c.end_time_ns > 0;
        if (p.expires) ++expiring_parents;
        {
          const Nbbo nbbo = book.nbbo(c.instrument_id);
          p.arrival_mid_ticks =
              nbbo.bid_price_ticks > 0 && nbbo.ask_price_ticks > nbbo.bid_price_ticks
                  ? 0.5 * static_cast<double>(nbbo.bid_price_ticks + nbbo.ask_price_ticks)
                  : 0.0;
        }
        active.push_back(slot);
        counters->active_parents.store(active.size(), std::memory_order_relaxed);
        audit_record(AuditKind::kCommandAccepted, p.id, 0, c.quantity, c.limit_price_ticks,
                     c.command_id, c.instrument_id, 0, 0);
        if (policies.empty()) {
          sweep(slot);
        } else {
          p.open_count = 0;
          p.on_fallback = model_mode == ModelMode::kFallback;
          policy_for(slot).reset(parent_state(p), policy_venues.data(), policy_venues.size());
          run_policy(slot);
        }
        return;
      }
      case CommandKind::kCancelParent: {
        std::uint32_t slot = 0;
        if (!find_parent(c.parent_order_id, &slot)) return reject_command(c, RejectReason::kUnknownParent);
        audit_record(AuditKind::kCommandAccepted, c.parent_order_id, 0, 0, 0, c.command_id,
                     parents[slot].instrument_id, 0, 0);
        if (parents[slot].winding_down == kStopping) return;  // already being stopped by risk
        return wind_down(slot, kCancelling);
      }
      case CommandKind::kAmendParent: {
        std::uint32_t slot = 0;
        Parent* p = find_parent(c.parent_order_id, &slot);
        if (!p || p->winding_down != kWorking) return reject_command(c, RejectReason::kUnknownParent);
        if (c.quantity < p->filled + p->working || c.limit_price_ticks < 0) {
          return reject_command(c, RejectReason::kInvalidCommand);
        }
        if (c.quantity > params.max_parent_quantity_shares) {
          return reject_command(c, refuse(RejectReason::kMaxParentQuantity, c.quantity,
                                          params.max_parent_quantity_shares));
        }
        const double notional = parent_notional(p->instrument_id, p->side, c.quantity,
                                                c.limit_price_ticks);
        if (notional > params.max_parent_notional_usd) {
          return reject_command(c, refuse(RejectReason::kMaxParentNotional, usd_cents(notional),
                                          usd_cents(params.max_parent_notional_usd)));
        }
        if (const Verdict v = check_collar(params, p->side, c.limit_price_ticks,
                                           reference_price(p->instrument_id));
            v.reason != RejectReason::kNone) {
          return reject_command(c, v);
        }
        p->quantity = c.quantity;
        p->limit_price_ticks = c.limit_price_ticks;
        audit_record(AuditKind::kCommandAccepted, p->id, 0, c.quantity, c.limit_price_ticks,
                     c.command_id, p->instrument_id, 0, 0);
        if (p->filled >= p->quantity) return finish_parent(slot, 0);
        if (risk_state == RiskState::kActive) sweep(slot);
        return;
      }
      case CommandKind::kAccountState: {
        if (c.instrument_id >= kMaxRiskInstruments) {
          return reject_command(c, RejectReason::kInvalidInstrument);
        }
        if (c.instrument_id >= risk_instruments || !std::isfinite(c.notional_usd) ||
            c.notional_usd < 0) {
          return reject_command(c, RejectReason::kInvalidCommand);
        }
        if (!account_enabled(c.account_id)) return reject_command(c, RejectReason::kUnknownAccount);
        exposure(c.account_id, c.instrument_id).position = c.position_shares;
        credit[c.account_id].filled_notional_usd = c.notional_usd;
        audit_record(AuditKind::kAccountState, c.parent_order_id, 0, c.position_shares,
                     usd_cents(c.notional_usd), c.command_id, c.instrument_id,
                     static_cast<std::uint8_t>(c.account_id), 0);
        return;
      }
      case CommandKind::kNone:
        break;
    }
    reject_command(c, RejectReason::kInvalidCommand);
  }

  void on_execution(const ExecReport& r) noexcept {
    bump(counters->exec_reports);
    Child& c = children[r.child_order_id % kChildTableSize];
    if (c.id == 0 || c.id != r.child_order_id) {
      audit_record(AuditKind::kExecution, r.parent_order_id, r.child_order_id, r.last_price_ticks,
                   r.last_quantity, 0, r.instrument_id, r.venue_id,
                   static_cast<std::uint8_t>(RejectReason::kUnknownParent));
      return;
    }
    Parent& p = parents[c.parent_slot];
    const bool parent_live = p.active;
    bool done = false;
    if (!c.acknowledged && r.ts_recv > c.sent_ns) {
      features.on_latency_sample(c.venue_id, r.ts_recv - c.sent_ns);  // venue.latency_us
      c.acknowledged = true;
    }
    const bool hosted = !policies.empty() && parent_live;
    Exposure& exposure_now = exposure(c.account_id, c.instrument_id);
    AccountCredit& account = credit[c.account_id];
    const double tick = params.price_tick_usd;
    if (r.kind == ExecKind::kFill) {
      const std::int64_t q = std::max<std::int64_t>(0, std::min(r.last_quantity, c.leaves));
      c.leaves -= q;
      c.filled += q;
      if (hosted && q > 0) {
        policy_for(c.parent_slot).on_fill(ChildFill{c.id, c.venue_id, c.type, r.last_price_ticks, q,
                                                    features.clock_ns(), 0.0});
      }
      const std::int64_t fill_price = r.last_price_ticks > 0 ? r.last_price_ticks : c.valued_ticks;
      exposure_now.position += c.side == Side::kBuy ? q : -q;
      (c.side == Side::kBuy ? exposure_now.open_buy : exposure_now.open_sell) -= q;
      account.filled_notional_usd += static_cast<double>(fill_price) * tick * static_cast<double>(q);
      account.open_notional_usd = std::max(
          0.0, account.open_notional_usd -
                   static_cast<double>(c.valued_ticks) * tick * static_cast<double>(q));
      p.filled += q;
      p.working -= q;
      bump(counters->filled_quantity, static_cast<std::uint64_t>(q));
      done = r.leaves_quantity <= 0 || c.leaves <= 0;
    } else if (r.kind == ExecKind::kCancelled || r.kind == ExecKind::kRejected) {
      done = true;
    }
    audit_record(AuditKind::kExecution, p.id, c.id, r.last_price_ticks, r.last_quantity,
                 static_cast<std::uint64_t>(r.kind), r.instrument_id, r.venue_id, 0);
    if (done) {
      features.on_child_done(c.venue_id, c.side, c.type, c.quantity, c.filled);
      if (hosted) policy_for(c.parent_slot).on_child_done(c.id, c.venue_id, c.type, c.quantity, c.filled);
      for (std::uint32_t i = 0; i < p.open_count; ++i) {
        if (p.open_ids[i] == c.id) {
          p.open_ids[i] = p.open_ids[--p.open_count];
          break;
        }
      }
      (c.side == Side::kBuy ? exposure_now.open_buy : exposure_now.open_sell) -= c.leaves;
      account.open_notional_usd = std::max(
          0.0, account.open_notional_usd -
                   static_cast<double>(c.valued_ticks) * tick * static_cast<double>(c.leaves));
      p.working -= c.leaves;  // shares the venue will no longer fill
      c.id = 0;
      --open_orders;
      counters->open_orders.store(static_cast<std::uint64_t>(open_orders), std::memory_order_relaxed);
    }
    if (parent_live && p.filled >= p.quantity && p.winding_down != kStopping) {
      finish_parent(c.parent_slot, 0);
    } else if (parent_live && p.winding_down != kWorking && p.open_count == 0) {
      children_settled(c.parent_slot);
    }
  }

  // Records a printed trade: market volume (participation) and the last price (reference).
  void on_print(const MdEvent& e, std::int64_t price) noexcept {
    if (e.instrument_id < market_volume.size() && e.quantity > 0) {
      market_volume[e.instrument_id] += e.quantity;
    }
    if (price > 0 && e.instrument_id < risk_instruments) last_trade_ticks[e.instrument_id] = price;
  }

  // Returns the price of a printable execution or trade (an execution without one is at the
  // resting order's price, looked up before the book removes it); 0 for anything else.
  std::int64_t print_price(const MdEvent& e) const noexcept {
    if (!(e.flags & kFlagPrintable)) return -1;
    if (e.kind == EventKind::kTrade) return e.price_ticks;
    if (e.kind != EventKind::kExecute) return -1;
    if (e.price_ticks > 0) return e.price_ticks;
    const int index = book.venue_index(e.venue_id);
    if (index < 0) return 0;
    const L3Book* l3 = book.l3(static_cast<std::size_t>(index));
    OrderView order{};
    if (l3 != nullptr && l3->find_order(e.order_id, order, false)) return order.price_ticks;
    return 0;
  }

  // One pass over the input rings; returns the records consumed.
  std::uint64_t poll(std::uint32_t max_instruments) noexcept {
    std::uint64_t work = 0;
    const MdEvent* events = nullptr;
    const void* raw = nullptr;
    std::uint64_t n = md.peek(kBatch, &raw);
    events = static_cast<const MdEvent*>(raw);
    for (std::uint64_t i = 0; i < n; ++i) {
      const MdEvent& e = events[i];
      const std::int64_t printed = print_price(e);
      const Status s = book.apply(e);  // book stage
      if (s != Status::kOk) {
        bump(counters->md_rejected);
        audit_record(AuditKind::kBookError, 0, 0, e.price_ticks, e.quantity, e.sequence,
                     e.instrument_id, e.venue_id, static_cast<std::uint8_t>(s));
        continue;
      }
      if (printed >= 0) on_print(e, printed);
      features.on_event(e, book);  // feature stage (incremental)
      ++md_applied;
      on_market(e);  // policy stage; candidates go through the model and risk stages
    }
    if (n != 0) {
      md.release(n);
      bump(counters->md_events, n);
      work += n;
      settle_guard();
    }
    n = commands.peek(kBatch, &raw);
    for (std::uint64_t i = 0; i < n; ++i) on_command(static_cast<const Command*>(raw)[i], max_instruments);
    if (n != 0) {
      commands.release(n);
      work += n;
      settle_guard();
    }
    n = executions.peek(kBatch, &raw);
    for (std::uint64_t i = 0; i < n; ++i) on_execution(static_cast<const ExecReport*>(raw)[i]);
    if (n != 0) {
      executions.release(n);
      work += n;
      settle_guard();
    }
    if (!policies.empty() && !active.empty()) run_policies();
    if (expiring_parents > 0) expire_parents();
    settle_guard();
    return work;
  }

  void heartbeat(EngineControl* control) noexcept {
    control->heartbeat_ns.store(monotonic_ns(), std::memory_order_relaxed);
    md.heartbeat();
    commands.heartbeat();
    executions.heartbeat();
    orders.heartbeat();
    audit.heartbeat();
    decisions.heartbeat();
  }

  DecisionRecord decision_scratch{};
};

Engine::Engine(const EngineOptions& options) : options_(options) {}

Engine::~Engine() {
  request_stop();
  if (thread_.joinable()) thread_.join();
  unlink_segments();
  control_.close(true);
}

EngineResult Engine::create(const EngineOptions& options, std::unique_ptr<Engine>& out) {
  if (const char* problem = ConsolidatedBook::validate_venues(options.venues); problem[0] != '\0') {
    return {false, problem};
  }
  if (options.max_parents == 0 || options.max_instruments == 0) {
    return {false, "max_parents and max_instruments must be positive"};
  }
  if (options.cpu >= 0 && options.cpu >= CPU_SETSIZE) {
    return {false, "cpu " + std::to_string(options.cpu) + " is beyond CPU_SETSIZE"};
  }
  if (options.sched_fifo && (options.sched_priority < 1 || options.sched_priority > 99)) {
    return {false, "sched_priority " + std::to_string(options.sched_priority) + " must be 1..99"};
  }
  std::unique_ptr<Engine> engine(new Engine(options));
  if (EngineResult r = engine->control_.create(options.name, options.takeover_stale); !r) return r;
  EngineOptions resolved = options;
  if (resolved.features.venues.empty()) {
    // No feature configuration: the engine's venues, with no fees and no latency known.
    for (const VenueSpec& v : options.venues) {
      FeatureVenueSpec f{};
      f.venue_id = v.venue_id;
      f.lit = v.lit;
      f.book_type = v.book_type;
      resolved.features.venues.push_back(f);
    }
    resolved.features.max_instruments = options.max_instruments;
  }
  if (const char* problem = validate(resolved.features); problem[0] != '\0') {
    return {false, std::string("features: ") + problem};
  }
  if (resolved.features.venues.size() != options.venues.size()) {
    return {false, "features: the feature venues must be the engine's venues"};
  }
  for (std::size_t i = 0; i < options.venues.size(); ++i) {
    const FeatureVenueSpec& f = resolved.features.venues[i];
    const VenueSpec& v = options.venues[i];
    if (f.venue_id != v.venue_id || f.lit != v.lit || f.book_type != v.book_type) {
      return {false, "features: venue " + std::to_string(i) +
                         " differs from the engine's venue (id, lit or book type)"};
    }
  }
  if (resolved.features.max_instruments < options.max_instruments) {
    return {false, "features: max_instruments is below the engine's max_instruments"};
  }
  for (const InstrumentFeatureSpec& i : options.instruments) {
    if (i.instrument_id >= options.max_instruments || !(i.adv_shares > 0) ||
        !std::isfinite(i.adv_shares) || !(i.implied_volatility_annual >= 0) ||
        !std::isfinite(i.implied_volatility_annual)) {
      return {false, "instrument " + std::to_string(i.instrument_id) +
                         ": id must be below max_instruments, adv_shares > 0 and implied "
                         "volatility >= 0"};
    }
  }
  if (options.default_horizon_ns <= 0) return {false, "default_horizon_ns must be positive"};
  if (options.decision_interval_ns <= 0) return {false, "decision_interval_ns must be positive"};
  if (options.client_order_capacity < 16 ||
      (options.client_order_capacity & (options.client_order_capacity - 1)) != 0) {
    return {false, "client_order_capacity must be a power of two >= 16, got " +
                       std::to_string(options.client_order_capacity)};
  }
  try {
    engine->impl_ = std::make_unique<Impl>(resolved);
  } catch (const std::exception& e) {
    return {false, e.what()};
  }
  if (!options.policy.empty()) {
    // the hosted policy: venues from the options (or the feature venues), one instance per
    // parent slot so reset() allocates nothing while the engine runs
    Impl& hosted = *engine->impl_;
    hosted.policy_venues = options.policy_venues;
    if (hosted.policy_venues.empty()) {
      std::uint32_t rank = 0;
      for (const FeatureVenueSpec& f : resolved.features.venues) {
        PolicyVenue v{};
        v.venue_id = f.venue_id;
        v.lit = f.lit;
        v.tick_size_ticks = 1;
        v.maker_fee_usd_per_share = f.maker_fee_usd_per_share;
        v.taker_fee_usd_per_share = f.taker_fee_usd_per_share;
        v.midpoint_fee_usd_per_share = f.midpoint_fee_usd_per_share;
        v.latency_ns = f.latency_ns;
        v.static_rank = rank++;
        hosted.policy_venues.push_back(v);
      }
    }
    if (hosted.policy_venues.size() > kMaxPolicyVenues) {
      return {false, "policy: at most " + std::to_string(kMaxPolicyVenues) + " venues"};
    }
    hosted.policies.reserve(options.max_parents);
    for (std::uint32_t i = 0; i < options.max_parents; ++i) {
      std::string error;
      std::unique_ptr<ExecutionPolicy> policy = make_policy(options.policy, options.policy_params, error);
      if (!policy) return {false, "policy: " + error};
      hosted.policies.push_back(std::move(policy));
    }
    // the model guard's fallback: a policy without models, one instance per slot as well
    if (hosted.policies.front()->uses_models()) {
      hosted.fallbacks.reserve(options.max_parents);
      for (std::uint32_t i = 0; i < options.max_parents; ++i) {
        std::string error;
        std::unique_ptr<ExecutionPolicy> fallback =
            make_policy(options.fallback_policy, options.fallback_policy_params, error);
        if (!fallback) return {false, "fallback_policy: " + error};
        if (fallback->uses_models()) {
          return {false, "fallback_policy: '" + options.fallback_policy +
                             "' uses models; the fallback must be a rule-based policy"};
        }
        hosted.fallbacks.push_back(std::move(fallback));
      }
      hosted.model_mode = ModelMode::kModel;
    }
  }
  Impl& impl = *engine->impl_;
  const EngineSegmentNames names = engine_segment_names(options.name);
  const StalePolicy stale = options.takeover_stale ? StalePolicy::kTakeover : StalePolicy::kError;
  struct Spec {
    Ring* ring;
    const std::string* name;
    const RingSettings* settings;
    RecordType type;
    RingRole role;
  };
  const Spec specs[] = {
      {&impl.md, &names.market_data, &options.market_data, RecordType::kMdEvent, RingRole::kConsumer},
      {&impl.commands, &names.commands, &options.commands, RecordType::kCommand, RingRole::kConsumer},
      {&impl.executions, &names.executions, &options.executions, RecordType::kExecReport,
       RingRole::kConsumer},
      {&impl.orders, &names.orders, &options.orders, RecordType::kOrderIntent, RingRole::kProducer},
      {&impl.audit, &names.audit, &options.audit, RecordType::kAuditRecord, RingRole::kProducer},
      {&impl.decisions, &names.decisions, &options.decisions, RecordType::kDecisionRecord,
       RingRole::kProducer},
  };
  for (const Spec& s : specs) {
    RingOptions o;
    o.name = *s.name;
    o.capacity_records = s.settings->capacity_records;
    o.record_size = s.type == RecordType::kDecisionRecord ? sizeof(DecisionRecord)
                    : s.type == RecordType::kCommand      ? sizeof(Command)
                                                          : 64;
    o.record_type = s.type;
    o.overflow_policy = s.settings->overflow;
    o.overflow_spin_limit_ns = s.settings->spin_limit_ns;
    o.stale_policy = stale;
    if (RingResult r = Ring::create(o, s.role, *s.ring); !r) return {false, r.detail};
  }
  EngineControl* control = engine->control_.get();
  impl.counters = &control->counters;
  control->counters.model_mode.store(static_cast<std::uint32_t>(impl.model_mode),
                                     std::memory_order_relaxed);
  engine->control_.write_params(options.params);
  out = std::move(engine);
  return {};
}

void Engine::unlink_segments() noexcept {
  if (!impl_) return;
  for (Ring* ring : {&impl_->md, &impl_->commands, &impl_->executions, &impl_->orders, &impl_->audit,
                     &impl_->decisions}) {
    ring->release_role();
  }
}

EngineResult Engine::set_model(ModelSlot slot, std::shared_ptr<const TreeEnsemble> model) {
  std::vector<std::pair<ModelSlot, std::shared_ptr<const TreeEnsemble>>> one;
  one.emplace_back(slot, std::move(model));
  return set_models(std::move(one));
}

EngineResult Engine::set_models(
    std::vector<std::pair<ModelSlot, std::shared_ptr<const TreeEnsemble>>> models) {
  bool seen[kModelSlots] = {};
  for (const auto& [slot, model] : models) {
    const auto index = static_cast<std::size_t>(slot);
    if (index >= kModelSlots) return {false, "unknown model slot " + std::to_string(index)};
    if (seen[index]) return {false, "model slot " + std::to_string(index) + " given twice"};
    seen[index] = true;
    if (model && model->feature_count() != kFeatureCount) {
      return {false, "the model for slot " + std::to_string(index) + " takes " +
                         std::to_string(model->feature_count()) +
                         " features, the engine's feature rows have " +
                         std::to_string(kFeatureCount)};
    }
  }
  std::lock_guard<std::mutex> lock(models_mutex_);
  EngineControl* control = control_.get();
  // seqlock write: the loop retries a read that overlaps these stores (a few nanoseconds)
  const std::uint64_t sequence = impl_->models_sequence.load(std::memory_order_relaxed);
  impl_->models_sequence.store(sequence + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  std::uint32_t generations[kModelSlots] = {};
  for (const auto& [slot, model] : models) {
    const auto index = static_cast<std::size_t>(slot);
    impl_->models[index].store(model.get(), std::memory_order_relaxed);
    generations[index] =
        impl_->model_generation[index].fetch_add(1, std::memory_order_relaxed) + 1;
  }
  impl_->models_sequence.store(sequence + 2, std::memory_order_release);
  const std::uint64_t passes = control->counters.loop_passes.load(std::memory_order_acquire);
  for (auto& [slot, model] : models) {
    const auto index = static_cast<std::size_t>(slot);
    control->counters.model_generation[index].store(generations[index],
                                                    std::memory_order_relaxed);
    control->counters.model_swaps.fetch_add(1, std::memory_order_relaxed);
    if (installed_[index]) retired_.push_back({std::move(installed_[index]), passes});
    installed_[index] = std::move(model);
  }
  collect_retired_locked();
  return {};
}

std::shared_ptr<const TreeEnsemble> Engine::model(ModelSlot slot) const {
  const auto index = static_cast<std::size_t>(slot);
  if (index >= kModelSlots) return nullptr;
  std::lock_guard<std::mutex> lock(models_mutex_);
  return installed_[index];
}

void Engine::collect_retired_locked() noexcept {
  // The loop loads a slot's pointer inside one pass and never keeps it across passes, so a
  // model replaced before pass n started is unreachable once pass n+1 has begun. A loop that
  // is not running holds nothing.
  const EngineControl* control = control_.get();
  const auto state = static_cast<EngineState>(control->state.load(std::memory_order_acquire));
  const bool running = state == EngineState::kStarting || state == EngineState::kRunning ||
                       state == EngineState::kDraining;
  const std::uint64_t passes = control->counters.loop_passes.load(std::memory_order_acquire);
  std::erase_if(retired_, [&](const Retired& r) { return !running || passes >= r.loop_passes + 2; });
}

EngineResult Engine::setup_thread() noexcept {
  EngineControl* control = control_.get();
  control->state.store(static_cast<std::uint32_t>(EngineState::kStarting));
  auto fail = [&](const std::string& message) {
    set_error(control, message);
    control->state.store(static_cast<std::uint32_t>(EngineState::kFailed));
    return EngineResult{false, message};
  };
  if (options_.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(options_.cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) {
      return fail("cannot pin the engine to cpu " + std::to_string(options_.cpu) +
                  " (not online or not allowed for this process)");
    }
    control->pinned_cpu.store(options_.cpu);
  }
  if (options_.sched_fifo) {
    sched_param sp{};
    sp.sched_priority = options_.sched_priority;
    if (const int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp); err != 0) {
      return fail(std::string("cannot run the engine SCHED_FIFO priority ") +
                  std::to_string(options_.sched_priority) + ": " + std::strerror(err) +
                  " (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least that priority)");
    }
    control->sched_fifo.store(1);
  }
  if (options_.lock_memory) {
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
      return fail(std::string("mlockall failed: ") + std::strerror(errno) +
                  " (raise RLIMIT_MEMLOCK, e.g. LimitMEMLOCK=infinity in the systemd unit)");
    }
    control->memory_locked.store(1);
  }
  return {};
}

void Engine::loop() noexcept {
  EngineControl* control = control_.get();
  Impl& impl = *impl_;
  const std::uint32_t max_instruments = options_.max_instruments;
  control->state.store(static_cast<std::uint32_t>(EngineState::kRunning));
  impl.refresh_params(control_);
  impl.heartbeat(control);
  std::uint64_t passes = 0;
  std::uint64_t idle_run = 0;
  while (control->stop_requested.load(std::memory_order_relaxed) == 0) {
    const std::uint64_t work = impl.poll(max_instruments);
    ++passes;
    if ((passes & 1023U) == 0) {
      impl.refresh_params(control_);
      impl.heartbeat(control);
      control->counters.loop_passes.store(passes, std::memory_order_relaxed);
    }
    if (work != 0) {
      idle_run = 0;
      continue;
    }
    bump(control->counters.idle_passes);
    ++idle_run;
    if ((idle_run & 63U) == 0) {
      impl.refresh_params(control_);
      impl.heartbeat(control);
    }
    switch (impl.params.idle_strategy) {
      case IdleStrategy::kSpin:
        cpu_relax();
        break;
      case IdleStrategy::kYield:
        sched_yield();
        break;
      case IdleStrategy::kSleep:
      case IdleStrategy::kBackoff: {
        if (impl.params.idle_strategy == IdleStrategy::kBackoff && idle_run < 1000) {
          if (idle_run < 100) cpu_relax(); else sched_yield();
          break;
        }
        timespec ts{0, static_cast<long>(std::clamp<std::int64_t>(impl.params.idle_sleep_ns, 1000,
                                                                  999'999'999))};
        nanosleep(&ts, nullptr);
        impl.heartbeat(control);
        break;
      }
    }
  }
  control->state.store(static_cast<std::uint32_t>(EngineState::kDraining));
  const std::int64_t deadline = monotonic_ns() + options_.drain_timeout_ns;
  while (monotonic_ns() < deadline) {
    impl.refresh_params(control_);
    if (impl.poll(max_instruments) == 0 && impl.md.size() == 0 && impl.commands.size() == 0 &&
        impl.executions.size() == 0) {
      break;
    }
  }
  control->counters.loop_passes.store(passes, std::memory_order_relaxed);
  impl.heartbeat(control);
  control->state.store(static_cast<std::uint32_t>(EngineState::kStopped), std::memory_order_release);
}

EngineResult Engine::run() noexcept {
  if (EngineResult r = setup_thread(); !r) return r;
  loop();
  return {};
}

EngineResult Engine::start_thread() {
  if (thread_.joinable()) return {false, "engine '" + options_.name + "' is already running"};
  std::promise<EngineResult> ready;
  std::future<EngineResult> result = ready.get_future();
  thread_ = std::thread([this, &ready] {
    EngineResult r = setup_thread();
    const bool ok = r.ok;
    // Running from the caller's point of view as soon as start_thread returns.
    if (ok) control_.get()->state.store(static_cast<std::uint32_t>(EngineState::kRunning));
    ready.set_value(std::move(r));
    if (ok) loop();
  });
  EngineResult r = result.get();
  if (!r) thread_.join();
  return r;
}

void Engine::request_stop() noexcept {
  if (EngineControl* c = control_.get()) c->stop_requested.store(1, std::memory_order_relaxed);
}

void Engine::join() {
  if (thread_.joinable()) thread_.join();
}

bool install_stop_signals(EngineControl* control) noexcept {
  g_signal_control = control;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  return sigaction(SIGTERM, &action, &g_previous_term) == 0 &&
         sigaction(SIGINT, &action, &g_previous_int) == 0;
}

void restore_stop_signals() noexcept {
  sigaction(SIGTERM, &g_previous_term, nullptr);
  sigaction(SIGINT, &g_previous_int, nullptr);
  g_signal_control = nullptr;
}

}  // namespace sor
