#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "errors.hpp"
#include <pybind11/numpy.h>

#include "sor/engine.hpp"
#include "sor/engine_bench.hpp"
#include "sor/risk.hpp"

namespace py = pybind11;

namespace sor::bindings {
namespace {

// Returns d[key], or raises a usage error naming the missing key.
py::object need(const py::dict& d, const char* key) {
  if (!d.contains(key)) raise_usage_error(std::string("engine params: missing key '") + key + "'");
  return d[key];
}

template <class T>
T need_as(const py::dict& d, const char* key) {
  try {
    return need(d, key).cast<T>();
  } catch (const py::cast_error&) {
    raise_usage_error(std::string("engine params: key '") + key + "' has the wrong type");
  }
}

template <class T, std::size_t N>
void need_list(const py::dict& d, const char* key, T (&out)[N]) {
  const auto values = need_as<std::vector<T>>(d, key);
  if (values.size() > N) {
    raise_usage_error(std::string("engine params: '") + key + "' has " +
                      std::to_string(values.size()) + " entries, at most " + std::to_string(N));
  }
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = values[i];
}

EngineParams params_from(const py::dict& d) {
  EngineParams p = default_engine_params();
  p.max_order_quantity_shares = need_as<std::int64_t>(d, "max_order_quantity_shares");
  p.max_parent_quantity_shares = need_as<std::int64_t>(d, "max_parent_quantity_shares");
  p.max_open_orders = need_as<std::int64_t>(d, "max_open_orders");
  p.max_orders_per_second = need_as<std::int64_t>(d, "max_orders_per_second");
  p.price_band_bps = need_as<double>(d, "price_band_bps");
  p.idle_sleep_ns = need_as<std::int64_t>(d, "idle_sleep_ns");
  p.price_tick_usd = need_as<double>(d, "price_tick_usd");
  p.max_order_notional_usd = need_as<double>(d, "max_order_notional_usd");
  p.max_gross_notional_usd = need_as<double>(d, "max_gross_notional_usd");
  p.enabled_venue_mask = need_as<std::uint64_t>(d, "enabled_venue_mask");
  const py::object state = need(d, "risk_state");
  const auto state_value = py::isinstance<RiskState>(state)
                               ? static_cast<std::uint32_t>(state.cast<RiskState>())
                               : state.cast<std::uint32_t>();
  if (state_value > static_cast<std::uint32_t>(RiskState::kHalted)) {
    raise_usage_error("engine params: risk_state must be 0 (ACTIVE), 1 (REDUCING) or 2 (HALTED), "
                      "got " + std::to_string(state_value));
  }
  p.risk_state = static_cast<RiskState>(state_value);
  p.idle_strategy = need_as<IdleStrategy>(d, "idle_strategy");
  need_list(d, "taker_fee_usd_per_share", p.taker_fee_usd_per_share);
  p.max_parent_notional_usd = need_as<double>(d, "max_parent_notional_usd");
  p.max_messages_per_second = need_as<std::int64_t>(d, "max_messages_per_second");
  p.max_participation_rate = need_as<double>(d, "max_participation_rate");
  p.participation_allowance_shares = need_as<std::int64_t>(d, "participation_allowance_shares");
  p.reference_collar_bps = need_as<double>(d, "reference_collar_bps");
  for (const auto& [key, value] : need_as<py::dict>(d, "reference_price_ticks")) {
    const auto instrument = key.cast<std::uint64_t>();
    if (instrument >= kMaxRiskInstruments) {
      raise_usage_error("engine params: reference_price_ticks names instrument " +
                        std::to_string(instrument) + ", ids must be below " +
                        std::to_string(kMaxRiskInstruments));
    }
    p.reference_price_ticks[instrument] = value.cast<std::int64_t>();
  }
  for (const auto& item : need_as<py::list>(d, "restricted_instruments")) {
    const auto instrument = item.cast<std::uint64_t>();
    if (instrument >= kMaxRiskInstruments) {
      raise_usage_error("engine params: restricted_instruments names instrument " +
                        std::to_string(instrument) + ", ids must be below " +
                        std::to_string(kMaxRiskInstruments));
    }
    p.restricted_instruments[instrument / 64] |= std::uint64_t{1} << (instrument % 64);
  }
  p.account_enabled_mask = need_as<std::uint64_t>(d, "account_enabled_mask");
  need_list(d, "account_credit_limit_usd", p.account_credit_limit_usd);
  need_list(d, "account_max_position_shares", p.account_max_position_shares);
  p.trading_day = need_as<std::uint32_t>(d, "trading_day");
  need_list(d, "model_output_min", p.model_output_min);
  need_list(d, "model_output_max", p.model_output_max);
  p.model_latency_budget_ns = need_as<std::int64_t>(d, "model_latency_budget_ns");
  p.model_latency_breaches = need_as<std::int64_t>(d, "model_latency_breaches");
  const py::object reason = need(d, "model_fallback_reason");
  p.model_fallback_reason = py::isinstance<ModelGuardReason>(reason)
                                ? static_cast<std::uint32_t>(reason.cast<ModelGuardReason>())
                                : reason.cast<std::uint32_t>();
  p.model_enable_generation = need_as<std::uint64_t>(d, "model_enable_generation");
  return p;
}

py::dict params_dict(const EngineParams& p) {
  py::dict d;
  d["version"] = p.version;
  d["max_order_quantity_shares"] = p.max_order_quantity_shares;
  d["max_parent_quantity_shares"] = p.max_parent_quantity_shares;
  d["max_open_orders"] = p.max_open_orders;
  d["max_orders_per_second"] = p.max_orders_per_second;
  d["price_band_bps"] = p.price_band_bps;
  d["idle_sleep_ns"] = p.idle_sleep_ns;
  d["price_tick_usd"] = p.price_tick_usd;
  d["max_order_notional_usd"] = p.max_order_notional_usd;
  d["max_gross_notional_usd"] = p.max_gross_notional_usd;
  d["enabled_venue_mask"] = p.enabled_venue_mask;
  d["risk_state"] = p.risk_state;
  d["idle_strategy"] = p.idle_strategy;
  d["taker_fee_usd_per_share"] = std::vector<double>(
      p.taker_fee_usd_per_share, p.taker_fee_usd_per_share + kMaxEngineVenues);
  d["max_parent_notional_usd"] = p.max_parent_notional_usd;
  d["max_messages_per_second"] = p.max_messages_per_second;
  d["max_participation_rate"] = p.max_participation_rate;
  d["participation_allowance_shares"] = p.participation_allowance_shares;
  d["reference_collar_bps"] = p.reference_collar_bps;
  py::dict references;
  for (std::size_t i = 0; i < kMaxRiskInstruments; ++i) {
    if (p.reference_price_ticks[i] != 0) references[py::int_(i)] = p.reference_price_ticks[i];
  }
  d["reference_price_ticks"] = references;
  py::list restricted;
  for (std::size_t i = 0; i < kMaxRiskInstruments; ++i) {
    if ((p.restricted_instruments[i / 64] >> (i % 64)) & 1U) restricted.append(i);
  }
  d["restricted_instruments"] = restricted;
  d["account_enabled_mask"] = p.account_enabled_mask;
  d["account_credit_limit_usd"] =
      std::vector<double>(p.account_credit_limit_usd, p.account_credit_limit_usd + kMaxAccounts);
  d["account_max_position_shares"] = std::vector<std::int64_t>(
      p.account_max_position_shares, p.account_max_position_shares + kMaxAccounts);
  d["trading_day"] = p.trading_day;
  d["model_output_min"] = std::vector<double>(p.model_output_min, p.model_output_min + kModelSlots);
  d["model_output_max"] = std::vector<double>(p.model_output_max, p.model_output_max + kModelSlots);
  d["model_latency_budget_ns"] = p.model_latency_budget_ns;
  d["model_latency_breaches"] = p.model_latency_breaches;
  d["model_fallback_reason"] = static_cast<ModelGuardReason>(p.model_fallback_reason);
  d["model_enable_generation"] = p.model_enable_generation;
  return d;
}

py::dict counters_dict(const EngineCounters& c) {
  py::dict d;
  auto get = [](const auto& counter) { return counter.load(std::memory_order_relaxed); };
  d["loop_passes"] = get(c.loop_passes);
  d["idle_passes"] = get(c.idle_passes);
  d["md_events"] = get(c.md_events);
  d["md_rejected"] = get(c.md_rejected);
  d["commands"] = get(c.commands);
  d["commands_rejected"] = get(c.commands_rejected);
  d["exec_reports"] = get(c.exec_reports);
  d["child_orders"] = get(c.child_orders);
  d["risk_rejects"] = get(c.risk_rejects);
  d["order_ring_refused"] = get(c.order_ring_refused);
  d["audit_records"] = get(c.audit_records);
  d["audit_ring_refused"] = get(c.audit_ring_refused);
  d["params_version"] = get(c.params_version);
  d["active_parents"] = get(c.active_parents);
  d["open_orders"] = get(c.open_orders);
  d["filled_quantity"] = get(c.filled_quantity);
  d["risk_state"] = static_cast<RiskState>(get(c.risk_state));
  d["decisions"] = get(c.decisions);
  d["decision_ring_refused"] = get(c.decision_ring_refused);
  d["model_evaluations"] = get(c.model_evaluations);
  d["model_input_rejects"] = get(c.model_input_rejects);
  d["model_swaps"] = get(c.model_swaps);
  d["policy_decisions"] = get(c.policy_decisions);
  d["policy_requests_refused"] = get(c.policy_requests_refused);
  py::list generations;
  for (const auto& g : c.model_generation) generations.append(get(g));
  d["model_generation"] = generations;
  d["model_mode"] = static_cast<ModelMode>(get(c.model_mode));
  d["model_guard_reason"] = static_cast<ModelGuardReason>(get(c.model_guard_reason));
  d["model_guard_trips"] = get(c.model_guard_trips);
  d["messages"] = get(c.messages);
  py::list by_reason;
  for (const auto& r : c.risk_rejects_by_reason) by_reason.append(get(r));
  d["risk_rejects_by_reason"] = by_reason;
  return d;
}

// The Python view of a control segment, attached by name (also used by the owning process).
struct PyControl {
  EngineControlHandle handle;
  EngineControl& c() const {
    if (handle.get() == nullptr) raise_usage_error("engine control handle is closed");
    return *handle.get();
  }
};

std::unique_ptr<Engine> make_engine(const py::dict& o) {
  EngineOptions options;
  options.name = o["name"].cast<std::string>();
  for (const auto& v : o["venues"].cast<py::list>()) {
    const auto t = v.cast<py::tuple>();
    options.venues.push_back(VenueSpec{t[0].cast<std::uint8_t>(), t[1].cast<BookType>(),
                                       t[2].cast<bool>()});
  }
  options.max_instruments = o["max_instruments"].cast<std::uint32_t>();
  options.reserve_orders = o["reserve_orders"].cast<std::uint32_t>();
  options.max_parents = o["max_parents"].cast<std::uint32_t>();
  const py::dict rings = o["rings"].cast<py::dict>();
  auto ring = [&](const char* key, RingSettings& settings) {
    const auto t = rings[key].cast<py::tuple>();
    settings = RingSettings{t[0].cast<std::uint64_t>(), t[1].cast<OverflowPolicy>(),
                            t[2].cast<std::int64_t>()};
  };
  ring("market_data", options.market_data);
  ring("commands", options.commands);
  ring("executions", options.executions);
  ring("orders", options.orders);
  ring("audit", options.audit);
  ring("decisions", options.decisions);
  if (o.contains("features") && !o["features"].is_none()) {
    options.features = o["features"].cast<FeatureOptions>();
  }
  if (o.contains("instruments")) {
    for (const auto& i : o["instruments"].cast<py::list>()) {
      const auto t = i.cast<py::tuple>();
      options.instruments.push_back(InstrumentFeatureSpec{
          t[0].cast<std::uint32_t>(), t[1].cast<double>(), t[2].cast<double>(),
          t.size() > 3 ? t[3].cast<std::int64_t>() : std::int64_t{100}});
    }
  }
  if (o.contains("policy") && !o["policy"].is_none()) {
    options.policy = o["policy"].cast<std::string>();
    if (o.contains("policy_params")) {
      for (const auto& [key, value] : o["policy_params"].cast<py::dict>()) {
        options.policy_params[py::str(key).cast<std::string>()] = value.cast<double>();
      }
    }
  }
  if (o.contains("fallback_policy") && !o["fallback_policy"].is_none()) {
    options.fallback_policy = o["fallback_policy"].cast<std::string>();
    if (o.contains("fallback_policy_params")) {
      for (const auto& [key, value] : o["fallback_policy_params"].cast<py::dict>()) {
        options.fallback_policy_params[py::str(key).cast<std::string>()] = value.cast<double>();
      }
    }
  }
  if (o.contains("client_order_capacity")) {
    options.client_order_capacity = o["client_order_capacity"].cast<std::uint32_t>();
  }
  if (o.contains("decision_interval_ns")) {
    options.decision_interval_ns = o["decision_interval_ns"].cast<std::int64_t>();
  }
  if (o.contains("default_horizon_ns")) {
    options.default_horizon_ns = o["default_horizon_ns"].cast<std::int64_t>();
  }
  options.takeover_stale = o["takeover_stale"].cast<bool>();
  options.cpu = o["cpu"].cast<int>();
  options.sched_fifo = o["sched_fifo"].cast<bool>();
  options.sched_priority = o["sched_priority"].cast<int>();
  options.lock_memory = o["lock_memory"].cast<bool>();
  options.drain_timeout_ns = o["drain_timeout_ns"].cast<std::int64_t>();
  options.params = params_from(o["params"].cast<py::dict>());
  std::unique_ptr<Engine> engine;
  EngineResult r = Engine::create(options, engine);
  if (!r) raise_engine_error(r.detail);
  return engine;
}

}  // namespace

void bind_engine(py::module_& m) {

  py::enum_<EngineState>(m, "EngineState")
      .value("CREATED", EngineState::kCreated)
      .value("STARTING", EngineState::kStarting)
      .value("RUNNING", EngineState::kRunning)
      .value("DRAINING", EngineState::kDraining)
      .value("STOPPED", EngineState::kStopped)
      .value("FAILED", EngineState::kFailed);
  py::enum_<IdleStrategy>(m, "IdleStrategy")
      .value("SPIN", IdleStrategy::kSpin)
      .value("YIELD", IdleStrategy::kYield)
      .value("SLEEP", IdleStrategy::kSleep)
      .value("BACKOFF", IdleStrategy::kBackoff);
  py::enum_<RiskState>(m, "RiskState")
      .value("ACTIVE", RiskState::kActive)
      .value("REDUCING", RiskState::kReducing)
      .value("HALTED", RiskState::kHalted);
  py::enum_<ModelMode>(m, "ModelMode")
      .value("MODEL", ModelMode::kModel)
      .value("FALLBACK", ModelMode::kFallback)
      .value("NONE", ModelMode::kNone);
  m.attr("ENGINE_LAYOUT_VERSION") = kEngineLayoutVersion;
  m.attr("MAX_ACCOUNTS") = kMaxAccounts;
  m.attr("MAX_RISK_INSTRUMENTS") = kMaxRiskInstruments;
  m.def("default_engine_params", [] { return params_dict(default_engine_params()); });

  py::class_<ChildRiskInput>(m, "ChildRiskInput",
                             "What the risk stage knows about one candidate child order.")
      .def(py::init<>())
      .def_readwrite("risk_state", &ChildRiskInput::risk_state)
      .def_readwrite("instrument_id", &ChildRiskInput::instrument_id)
      .def_readwrite("account_id", &ChildRiskInput::account_id)
      .def_readwrite("side", &ChildRiskInput::side)
      .def_readwrite("venue_id", &ChildRiskInput::venue_id)
      .def_readwrite("price_ticks", &ChildRiskInput::price_ticks)
      .def_readwrite("quantity", &ChildRiskInput::quantity)
      .def_readwrite("bid_price_ticks", &ChildRiskInput::bid_price_ticks)
      .def_readwrite("ask_price_ticks", &ChildRiskInput::ask_price_ticks)
      .def_readwrite("reference_price_ticks", &ChildRiskInput::reference_price_ticks)
      .def_readwrite("gross_notional_usd", &ChildRiskInput::gross_notional_usd)
      .def_readwrite("open_orders", &ChildRiskInput::open_orders)
      .def_readwrite("order_tokens", &ChildRiskInput::order_tokens)
      .def_readwrite("message_tokens", &ChildRiskInput::message_tokens)
      .def_readwrite("parent_traded_shares", &ChildRiskInput::parent_traded_shares)
      .def_readwrite("market_volume_shares", &ChildRiskInput::market_volume_shares)
      .def_readwrite("account_filled_notional_usd", &ChildRiskInput::account_filled_notional_usd)
      .def_readwrite("account_open_notional_usd", &ChildRiskInput::account_open_notional_usd)
      .def_readwrite("position_shares", &ChildRiskInput::position_shares)
      .def_readwrite("open_same_side_shares", &ChildRiskInput::open_same_side_shares)
      .def_readwrite("model_refused", &ChildRiskInput::model_refused);
  py::class_<ParentRiskInput>(m, "ParentRiskInput",
                              "What the risk stage knows about one new parent order.")
      .def(py::init<>())
      .def_readwrite("risk_state", &ParentRiskInput::risk_state)
      .def_readwrite("instrument_id", &ParentRiskInput::instrument_id)
      .def_readwrite("account_id", &ParentRiskInput::account_id)
      .def_readwrite("side", &ParentRiskInput::side)
      .def_readwrite("quantity", &ParentRiskInput::quantity)
      .def_readwrite("limit_price_ticks", &ParentRiskInput::limit_price_ticks)
      .def_readwrite("notional_usd", &ParentRiskInput::notional_usd)
      .def_readwrite("reference_price_ticks", &ParentRiskInput::reference_price_ticks)
      .def_readwrite("duplicate_parent", &ParentRiskInput::duplicate_parent)
      .def_readwrite("duplicate_client_order", &ParentRiskInput::duplicate_client_order)
      .def_readwrite("client_orders_full", &ParentRiskInput::client_orders_full)
      .def_readwrite("client_orders_count", &ParentRiskInput::client_orders_count)
      .def_readwrite("client_orders_limit", &ParentRiskInput::client_orders_limit)
      .def_readwrite("account_filled_notional_usd", &ParentRiskInput::account_filled_notional_usd)
      .def_readwrite("account_open_notional_usd", &ParentRiskInput::account_open_notional_usd)
      .def_readwrite("position_shares", &ParentRiskInput::position_shares)
      .def_readwrite("open_same_side_shares", &ParentRiskInput::open_same_side_shares);
  auto verdict = [](const RiskVerdict& v) {
    return py::make_tuple(v.reason, v.measured, v.limit);
  };
  m.def("check_child_risk",
        [verdict](const ChildRiskInput& in, const py::dict& params) {
          return verdict(check_child(in, params_from(params)));
        },
        py::arg("child"), py::arg("params"),
        "Returns (RejectReason, measured, limit) of the engine's risk stage for one child.");
  m.def("check_parent_risk",
        [verdict](const ParentRiskInput& in, const py::dict& params) {
          return verdict(check_parent(in, params_from(params)));
        },
        py::arg("parent"), py::arg("params"),
        "Returns (RejectReason, measured, limit) of the engine's entry checks for one parent.");
  m.def("engine_segment_names", [](const std::string& name) {
    const EngineSegmentNames n = engine_segment_names(name);
    py::dict d;
    d["control"] = n.control;
    d["market_data"] = n.market_data;
    d["commands"] = n.commands;
    d["executions"] = n.executions;
    d["orders"] = n.orders;
    d["audit"] = n.audit;
    d["decisions"] = n.decisions;
    return d;
  });

  m.def(
      "bench_tick_to_decision",
      [](const std::string& name, std::uint32_t instrument_id, std::vector<std::uint8_t> venues,
         std::int64_t ask_price_ticks, std::uint64_t samples, std::uint64_t warmup, int cpu) {
        EngineBenchOptions o;
        o.engine_name = name;
        o.instrument_id = instrument_id;
        o.venues = std::move(venues);
        o.ask_price_ticks = ask_price_ticks;
        o.samples = samples;
        o.warmup = warmup;
        o.cpu = cpu;
        EngineBenchResult r;
        {
          py::gil_scoped_release release;
          r = bench_tick_to_decision(o);
        }
        if (!r.error.empty()) raise_engine_error(r.error);
        py::dict out;
        out["latency_ns"] = py::array_t<double>(static_cast<py::ssize_t>(r.latency_ns.size()),
                                                r.latency_ns.data());
        out["timeouts"] = r.timeouts;
        out["pinned"] = r.pinned;
        return out;
      },
      py::arg("name"), py::arg("instrument_id"), py::arg("venues"), py::arg("ask_price_ticks"),
      py::arg("samples"), py::arg("warmup"), py::arg("cpu"));

  py::class_<Engine>(m, "EngineCore")
      .def(py::init(&make_engine), py::arg("options"))
      .def("start_thread",
           [](Engine& e) {
             EngineResult r;
             {
               py::gil_scoped_release release;
               r = e.start_thread();
             }
             if (!r) raise_engine_error(r.detail);
           })
      .def("run_foreground",
           [](Engine& e) {
             // SIGTERM/SIGINT request a stop while the GIL is released.
             install_stop_signals(e.control());
             EngineResult r;
             {
               py::gil_scoped_release release;
               r = e.run();
             }
             restore_stop_signals();
             if (!r) raise_engine_error(r.detail);
           })
      .def("request_stop", &Engine::request_stop)
      .def(
          "set_model",
          [](Engine& e, std::uint32_t slot, std::shared_ptr<TreeEnsemble> model) {
            EngineResult r = e.set_model(static_cast<ModelSlot>(slot), std::move(model));
            if (!r) raise_usage_error(r.detail);
          },
          py::arg("slot"), py::arg("model").none(true),
          "Installs a model in a slot atomically (None empties it); the loop uses it from its "
          "next decision and the previous model is freed once the loop cannot hold it.")
      .def(
          "set_models",
          [](Engine& e, const std::vector<std::pair<std::uint32_t, std::shared_ptr<TreeEnsemble>>>&
                            models) {
            std::vector<std::pair<ModelSlot, std::shared_ptr<const TreeEnsemble>>> set;
            set.reserve(models.size());
            for (const auto& [slot, model] : models) {
              set.emplace_back(static_cast<ModelSlot>(slot), model);
            }
            EngineResult r = e.set_models(std::move(set));
            if (!r) raise_usage_error(r.detail);
          },
          py::arg("models"),
          "Installs several (slot, model) pairs as one set (None empties a slot): every "
          "decision sees all of them or none; nothing changes on an error.")
      .def("join", &Engine::join, py::call_guard<py::gil_scoped_release>())
      .def("unlink_segments", &Engine::unlink_segments);

  py::class_<PyControl>(m, "EngineControl")
      .def_static("attach",
                  [](const std::string& name) {
                    auto control = std::make_unique<PyControl>();
                    EngineResult r = control->handle.attach(name);
                    if (!r) raise_engine_error(r.detail);
                    return control;
                  })
      .def_property_readonly("state",
                             [](const PyControl& s) { return static_cast<EngineState>(s.c().state.load()); })
      .def_property_readonly("engine_pid", [](const PyControl& s) { return s.c().engine_pid; })
      .def_property_readonly("created_ns", [](const PyControl& s) { return s.c().created_ns; })
      .def_property_readonly("pinned_cpu", [](const PyControl& s) { return s.c().pinned_cpu.load(); })
      .def_property_readonly("sched_fifo", [](const PyControl& s) { return s.c().sched_fifo.load() != 0; })
      .def_property_readonly("memory_locked",
                             [](const PyControl& s) { return s.c().memory_locked.load() != 0; })
      .def_property_readonly("last_error", [](const PyControl& s) { return std::string(s.c().last_error); })
      .def_property_readonly("heartbeat_age_ns",
                             [](const PyControl& s) { return monotonic_ns() - s.c().heartbeat_ns.load(); })
      .def_property_readonly("stop_requested",
                             [](const PyControl& s) { return s.c().stop_requested.load() != 0; })
      .def("engine_alive", [](const PyControl& s) { return process_alive(s.c().engine_pid); })
      .def("request_stop", [](PyControl& s) { s.c().stop_requested.store(1); })
      .def("counters", [](const PyControl& s) { return counters_dict(s.c().counters); })
      .def("params", [](const PyControl& s) {
        s.c();
        return params_dict(s.handle.read_params());
      })
      .def("write_params", [](PyControl& s, const py::dict& params) {
        s.c();
        return s.handle.write_params(params_from(params));
      })
      .def("close", [](PyControl& s) { s.handle.close(false); });
}

}  // namespace sor::bindings
