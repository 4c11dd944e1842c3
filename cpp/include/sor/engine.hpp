// The engine: one busy-polling loop that reads the market-data, command and execution rings,
// runs book -> features -> models -> policy -> risk, and writes the order and audit rings.
// Parameters reach it through a seqlock-protected block in a shared control segment, where its
// state and counters are also published. Layout and ordering notes: docs/engine.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sor/consolidated.hpp"
#include "sor/decision.hpp"
#include "sor/features.hpp"
#include "sor/policies.hpp"
#include "sor/ring.hpp"
#include "sor/tree_model.hpp"
#include "sor/types.hpp"

namespace sor {

// Bumped whenever the control segment layout or EngineParams changes.
inline constexpr std::uint32_t kEngineLayoutVersion = 4;
// "SORCTRL1" as a little-endian integer.
inline constexpr std::uint64_t kControlMagic = 0x314c525443524f53ULL;
// Most venues the parameter block describes (venue ids index 64-bit masks).
inline constexpr std::size_t kMaxEngineVenues = 64;

// Lifecycle of an engine, published in the control segment.
enum class EngineState : std::uint32_t {
  kCreated = 0,   // Segments exist; the loop has not started.
  kStarting = 1,  // Pinning, scheduling and locking memory.
  kRunning = 2,   // Polling.
  kDraining = 3,  // Stop requested; consuming what is left in the input rings.
  kStopped = 4,   // Exited cleanly.
  kFailed = 5,    // Setup failed; last_error says why.
};

// How the loop waits when a pass found no work.
enum class IdleStrategy : std::uint32_t {
  kSpin = 0,     // Busy-spin with a pause instruction (lowest latency, burns the core).
  kYield = 1,    // sched_yield().
  kSleep = 2,    // nanosleep(idle_sleep_ns).
  kBackoff = 3,  // Spin, then yield, then sleep as idle passes accumulate.
};

// Risk state of the engine (EngineParams::risk_state, the one source of truth).
enum class RiskState : std::uint32_t {
  kActive = 0,    // Normal operation.
  kReducing = 1,  // Only orders that reduce the account's position in the instrument.
  kHalted = 2,    // Kill switch: every open child cancelled, no new child or parent.
};

// How the hosted policy's decisions are made (EngineCounters::model_mode).
enum class ModelMode : std::uint32_t {
  kModel = 0,     // The hosted policy with its models.
  kFallback = 1,  // The model guard tripped (or was forced): the fallback policy routes.
  kNone = 2,      // The hosted policy uses no model (or there is none).
};

// Words of the restricted-instrument bitset.
inline constexpr std::size_t kRestrictedWords = kMaxRiskInstruments / 64;

// Parameters and limits set by the control plane (versioned, read by the loop via seqlock).
// Layout version 4 (docs/guardrails.md); USD limits are doubles, share limits int64.
struct EngineParams {
  std::uint64_t version;                       // Increases with every publication.
  std::int64_t max_order_quantity_shares;      // Per child order.
  std::int64_t max_parent_quantity_shares;     // Per parent order.
  std::int64_t max_open_orders;                // Child orders in flight.
  std::int64_t max_orders_per_second;          // Child orders per rolling second.
  std::int64_t idle_sleep_ns;                  // Sleep per idle pass (sleep/backoff).
  double price_band_bps;                       // Child price within this of the NBBO mid.
  double price_tick_usd;                       // Value of one price tick.
  double max_order_notional_usd;               // Per child order.
  double max_gross_notional_usd;               // Sum of child notional since start.
  std::uint64_t enabled_venue_mask;            // Venues the engine may route to.
  RiskState risk_state;                        // ACTIVE, REDUCING or HALTED.
  IdleStrategy idle_strategy;                  // Idle behaviour.
  double taker_fee_usd_per_share[kMaxEngineVenues];  // By venue id; used for all-in price.
  double max_parent_notional_usd;              // Parent quantity x (limit, else far touch).
  std::int64_t max_messages_per_second;        // New + cancel messages per rolling second.
  double max_participation_rate;               // Share of market volume since start (0: off).
  std::int64_t participation_allowance_shares; // Shares a parent may trade before volume.
  double reference_collar_bps;                 // Aggressive price vs the reference price.
  std::int64_t reference_price_ticks[kMaxRiskInstruments];  // By instrument (0: last trade).
  std::uint64_t restricted_instruments[kRestrictedWords];   // Bit i: instrument i restricted.
  std::uint64_t account_enabled_mask;          // Bit a: account a configured.
  double account_credit_limit_usd[kMaxAccounts];           // Filled + open notional per day.
  std::int64_t account_max_position_shares[kMaxAccounts];  // |position| per instrument.
  std::uint32_t trading_day;                   // yyyymmdd; a change resets the day's state.
  std::uint32_t model_fallback_reason;         // Non-zero ModelGuardReason forces fallback.
  double model_output_min[kModelSlots];        // Valid output range by ModelSlot.
  double model_output_max[kModelSlots];
  std::int64_t model_latency_budget_ns;        // One policy decision (0: no budget).
  std::int64_t model_latency_breaches;         // Consecutive breaches that trip the guard.
  std::uint64_t model_enable_generation;       // A new value clears the latched trip.
};

static_assert(std::is_trivially_copyable_v<EngineParams>);
static_assert(std::is_standard_layout_v<EngineParams>);

// Returns parameters with conservative defaults (no venue enabled, tick 0.0001 USD).
EngineParams default_engine_params() noexcept;

// Engine counters, published in the control segment (single writer: the loop).
struct EngineCounters {
  std::atomic<std::uint64_t> loop_passes;         // Passes of the loop.
  std::atomic<std::uint64_t> idle_passes;         // Passes that found no work.
  std::atomic<std::uint64_t> md_events;           // Market-data events consumed.
  std::atomic<std::uint64_t> md_rejected;         // Events a book refused.
  std::atomic<std::uint64_t> commands;            // Commands consumed.
  std::atomic<std::uint64_t> commands_rejected;   // Commands refused.
  std::atomic<std::uint64_t> exec_reports;        // Execution reports consumed.
  std::atomic<std::uint64_t> child_orders;        // Child intents written.
  std::atomic<std::uint64_t> risk_rejects;        // Children refused by the risk stage.
  std::atomic<std::uint64_t> order_ring_refused;  // Child intents the order ring refused.
  std::atomic<std::uint64_t> audit_records;       // Audit records written.
  std::atomic<std::uint64_t> audit_ring_refused;  // Audit records the audit ring refused.
  std::atomic<std::uint64_t> params_version;      // Parameter version in effect.
  std::atomic<std::uint64_t> active_parents;      // Parents being worked.
  std::atomic<std::uint64_t> open_orders;         // Child orders in flight.
  std::atomic<std::uint64_t> filled_quantity;     // Shares filled, all parents.
  std::atomic<std::uint32_t> risk_state;          // RiskState.
  std::atomic<std::uint64_t> decisions;           // Decision records made.
  std::atomic<std::uint64_t> decision_ring_refused;  // Decision records the ring refused.
  std::atomic<std::uint64_t> model_evaluations;   // Model predictions run.
  std::atomic<std::uint64_t> model_input_rejects; // Decisions whose row could not be used.
  std::atomic<std::uint64_t> model_swaps;         // Models installed (all slots).
  std::atomic<std::uint64_t> policy_decisions;    // decide() calls of the hosted policy.
  std::atomic<std::uint64_t> policy_requests_refused;  // Requests it made that were not sent.
  std::atomic<std::uint32_t> model_generation[kModelSlots];  // Per-slot swap generation.
  std::atomic<std::uint32_t> model_mode;          // ModelMode.
  std::atomic<std::uint32_t> model_guard_reason;  // ModelGuardReason in force (0: none).
  std::atomic<std::uint64_t> model_guard_trips;   // Times the guard engaged the fallback.
  std::atomic<std::uint64_t> messages;            // New + cancel intents written.
  std::atomic<std::uint64_t> risk_rejects_by_reason[kRejectReasonCount];  // By RejectReason.
};

// The shared control segment `<name>.control`.
struct EngineControl {
  std::atomic<std::uint64_t> magic;         // kControlMagic once initialised.
  std::uint32_t layout_version;             // kEngineLayoutVersion.
  std::int32_t engine_pid;                  // Process running (or owning) the engine.
  std::int64_t created_ns;                  // Realtime clock at creation.

  alignas(128) std::atomic<std::uint32_t> state;  // EngineState.
  std::atomic<std::uint32_t> stop_requested;      // Set by the control plane or a signal.
  std::atomic<std::int64_t> heartbeat_ns;         // Monotonic clock, refreshed by the loop.
  std::atomic<std::int32_t> pinned_cpu;           // CPU the loop runs on (-1 unpinned).
  std::atomic<std::uint32_t> sched_fifo;          // 1 when running SCHED_FIFO.
  std::atomic<std::uint32_t> memory_locked;       // 1 when mlockall succeeded.
  char last_error[244];                           // Why setup failed (NUL-terminated).

  alignas(128) std::atomic<std::uint64_t> params_sequence;  // Seqlock: odd while writing.
  EngineParams params;                                      // Guarded by params_sequence.

  alignas(128) EngineCounters counters;  // Written by the loop only.
};

// Outcome of creating, attaching or starting an engine.
struct EngineResult {
  bool ok = true;       // False on failure.
  std::string detail;   // What failed.
  // Returns true on success.
  explicit operator bool() const noexcept { return ok; }
};

// A handle on an engine's control segment (create or attach by name).
class EngineControlHandle {
 public:
  EngineControlHandle() = default;
  EngineControlHandle(const EngineControlHandle&) = delete;
  EngineControlHandle& operator=(const EngineControlHandle&) = delete;
  ~EngineControlHandle();

  // Creates `<name>.control`; a stale one of a dead engine is replaced when `takeover`.
  EngineResult create(const std::string& name, bool takeover);
  // Attaches to `<name>.control`, checking magic and layout version.
  EngineResult attach(const std::string& name);
  // Unmaps (and unlinks when this handle created the segment and `unlink`).
  void close(bool unlink) noexcept;
  // Returns the mapped control block.
  EngineControl* get() const noexcept { return control_; }
  // Returns the segment name.
  const std::string& segment_name() const noexcept { return segment_; }

  // Publishes new parameters (single writer); returns the version written.
  std::uint64_t write_params(const EngineParams& params) noexcept;
  // Copies a consistent snapshot of the parameters.
  EngineParams read_params() const noexcept;
  // Copies a consistent snapshot of the parameters into `out` (no temporary).
  void read_params_into(EngineParams& out) const noexcept;

 private:
  EngineControl* control_ = nullptr;
  std::string segment_;
  bool owner_ = false;
  std::uint64_t inode_ = 0;
};

// What the feature engine knows of one instrument at start.
struct InstrumentFeatureSpec {
  std::uint32_t instrument_id;      // Instrument.
  double adv_shares;                // Average daily volume (> 0).
  double implied_volatility_annual; // Implied volatility (0: none).
  std::int64_t lot_shares = 100;    // Round lot (policies size children in lots).
};

// Size and overflow behaviour of one of the engine's rings.
struct RingSettings {
  std::uint64_t capacity_records;  // Slots; a power of two.
  OverflowPolicy overflow;         // What the producer does when it is full.
  std::int64_t spin_limit_ns;      // Spin bound for OverflowPolicy::kSpin.
};

// Creation options of an engine.
struct EngineOptions {
  std::string name;                          // Prefix of every segment name.
  std::vector<VenueSpec> venues;             // Venues with a book.
  std::uint32_t max_instruments = 1024;      // Instrument ids must be below this.
  std::uint32_t reserve_orders = 1u << 18;   // Orders preallocated per L3 venue book.
  std::uint32_t max_parents = 4096;          // Parent orders the engine can work at once.
  RingSettings market_data{1u << 16, OverflowPolicy::kSpin, 100'000};  // md ring (input).
  RingSettings commands{1u << 10, OverflowPolicy::kSpin, 100'000};      // command ring (input).
  RingSettings executions{1u << 12, OverflowPolicy::kSpin, 100'000};    // exec ring (input).
  RingSettings orders{1u << 12, OverflowPolicy::kRefuse, 0};            // order ring (output).
  RingSettings audit{1u << 16, OverflowPolicy::kRefuse, 0};             // audit ring (output).
  RingSettings decisions{1u << 12, OverflowPolicy::kRefuse, 0};         // decision ring (output).
  FeatureOptions features;                   // Feature engine; empty venues: derived from venues.
  std::vector<InstrumentFeatureSpec> instruments;  // ADV and implied volatility per instrument.
  std::int64_t default_horizon_ns = 1'800'000'000'000;  // Parent horizon when it names no end.
  std::string policy;                        // "" = the built-in liquidity taker; else a
                                             // make_policy name (one instance per parent slot).
  PolicyParams policy_params;                // Parameters of `policy`.
  std::vector<PolicyVenue> policy_venues;    // Venues the policy sees (empty: from features).
  std::int64_t decision_interval_ns = 1'000'000'000;  // Policy decision grid (feature clock).
  std::string fallback_policy = "best_price";  // Policy the model guard falls back to (no
                                             // models); used only with a hosted policy.
  PolicyParams fallback_policy_params;       // Parameters of `fallback_policy`.
  std::uint32_t client_order_capacity = 1u << 20;  // ClOrdID hashes remembered per trading
                                             // day (a power of two; the set refuses when full).
  bool takeover_stale = false;               // Replace segments left by a dead engine.
  int cpu = -1;                              // Core to pin the loop to (-1: do not pin).
  bool sched_fifo = false;                   // Run the loop SCHED_FIFO.
  int sched_priority = 50;                   // SCHED_FIFO priority (1..99).
  bool lock_memory = false;                  // mlockall(MCL_CURRENT | MCL_FUTURE).
  std::int64_t drain_timeout_ns = 2'000'000'000;  // Longest drain on stop.
  EngineParams params = default_engine_params();  // Initial parameters.
};

// Names of the segments of engine `name`.
struct EngineSegmentNames {
  std::string control, market_data, commands, executions, orders, audit, decisions;
};

// Returns the segment names of engine `name` ("<name>.md", "<name>.cmd", ...).
EngineSegmentNames engine_segment_names(const std::string& name);

// One engine: owns its segments and its loop.
class Engine {
 public:
  // Creates the segments and the books; the loop is not started.
  static EngineResult create(const EngineOptions& options, std::unique_ptr<Engine>& out);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs the loop on the calling thread until a stop is requested, then drains.
  EngineResult run() noexcept;
  // Starts the loop on a new thread; returns once setup (pinning etc.) succeeded or failed.
  EngineResult start_thread();
  // Asks the loop to stop (it drains the input rings first).
  void request_stop() noexcept;
  // Waits for the loop thread to exit.
  void join();
  // Returns the control block.
  EngineControl* control() const noexcept { return control_.get(); }
  // Returns the options the engine was created with.
  const EngineOptions& options() const noexcept { return options_; }
  // Unlinks the segments now (the mappings stay until destruction).
  void unlink_segments() noexcept;
  // Installs `model` in `slot` atomically (nullptr empties the slot); the loop picks it up at
  // its next decision. The previous model is freed once the loop can no longer hold it.
  // Fails (keeping the previous model) when the model does not take kFeatureCount features.
  EngineResult set_model(ModelSlot slot, std::shared_ptr<const TreeEnsemble> model);
  // Installs several models as one set: a decision sees all of them or none (a seqlock the
  // loop re-reads), each slot's generation moves once. Fails, changing nothing, on an
  // unknown or repeated slot or a model with the wrong feature count.
  EngineResult set_models(
      std::vector<std::pair<ModelSlot, std::shared_ptr<const TreeEnsemble>>> models);
  // Returns the model in `slot` (nullptr when empty).
  std::shared_ptr<const TreeEnsemble> model(ModelSlot slot) const;

 private:
  struct Impl;
  explicit Engine(const EngineOptions& options);
  EngineResult setup_thread() noexcept;
  void loop() noexcept;

  EngineOptions options_;
  EngineControlHandle control_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  // Control-plane side of the model slots: owners of installed and retired models.
  mutable std::mutex models_mutex_;
  std::shared_ptr<const TreeEnsemble> installed_[kModelSlots];
  struct Retired {
    std::shared_ptr<const TreeEnsemble> model;
    std::uint64_t loop_passes;  // Loop passes when it was replaced.
  };
  std::vector<Retired> retired_;
  void collect_retired_locked() noexcept;
};

// Installs SIGTERM/SIGINT handlers that request a stop of `control`'s engine; returns false
// when handlers could not be installed. restore_stop_signals() puts the previous ones back.
bool install_stop_signals(EngineControl* control) noexcept;
// Restores the handlers replaced by install_stop_signals.
void restore_stop_signals() noexcept;

}  // namespace sor
