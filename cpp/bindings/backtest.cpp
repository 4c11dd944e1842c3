#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "sor/rl_environment.hpp"
#include <cstring>
#include "errors.hpp"
#include "sor/backtest.hpp"
#include "sor/policies.hpp"
#include "sor/tree_model.hpp"

namespace py = pybind11;

namespace sor::bindings {
namespace {

BacktestSpec spec_from(const py::object& spec_or_dict) {
  if (py::isinstance<BacktestSpec>(spec_or_dict)) return spec_or_dict.cast<BacktestSpec>();
  if (!py::isinstance<py::dict>(spec_or_dict)) {
    raise_usage_error("spec must be a BacktestSpec or a dict of its fields");
  }
  py::object spec = py::module_::import("sor._core").attr("BacktestSpec")();
  for (const auto& [key, value] : spec_or_dict.cast<py::dict>()) {
    const std::string name = py::str(key).cast<std::string>();
    if (name.empty() || name[0] == '_' || !py::hasattr(spec, name.c_str())) {
      raise_backtest_config_error(name + ": unknown BacktestSpec field");
    }
    spec.attr(name.c_str()) = value;
  }
  return spec.cast<BacktestSpec>();
}

PolicyModels models_from(const py::object& models, std::vector<std::shared_ptr<TreeEnsemble>>& keep) {
  PolicyModels out;
  if (models.is_none()) return out;
  if (!py::isinstance<py::dict>(models)) raise_usage_error("models must be a dict or None");
  for (const auto& [key, value] : models.cast<py::dict>()) {
    const std::string name = py::str(key).cast<std::string>();
    if (value.is_none()) continue;
    auto model = value.cast<std::shared_ptr<TreeEnsemble>>();
    keep.push_back(model);
    if (name == "fill_probability") out.fill_probability = model.get();
    else if (name == "adverse_move") out.adverse_move = model.get();
    else if (name == "market_impact") out.market_impact = model.get();
    else if (name == "action_value") out.action_value = model.get();
    else raise_usage_error("models: unknown model '" + name + "'; expected fill_probability, "
                           "adverse_move, market_impact, action_value");
  }
  return out;
}

py::dict venue_dict(const PolicyVenue& v) {
  py::dict d;
  d["venue_id"] = v.venue_id;
  d["lit"] = v.lit;
  d["tick_size_ticks"] = v.tick_size_ticks;
  d["maker_fee_usd_per_share"] = v.maker_fee_usd_per_share;
  d["taker_fee_usd_per_share"] = v.taker_fee_usd_per_share;
  d["midpoint_fee_usd_per_share"] = v.midpoint_fee_usd_per_share;
  d["latency_ns"] = v.latency_ns;
  d["static_rank"] = v.static_rank;
  return d;
}

py::dict result_dict(const BacktestResult& r) {
  py::dict d;
  d["policy"] = r.policy_name;
  d["fills"] = records_copy(r.fills.data(), r.fills.size());
  d["children"] = records_copy(r.children.data(), r.children.size());
  d["mids"] = records_copy(r.mids.data(), r.mids.size());
  py::list venues;
  for (const PolicyVenue& v : r.venues) venues.append(venue_dict(v));
  d["venues"] = venues;
  d["side"] = r.parent.side;
  d["quantity"] = r.parent.quantity;
  d["limit_price_ticks"] = r.parent.limit_price_ticks;
  d["lot_shares"] = r.parent.lot_shares;
  d["adv_shares"] = r.parent.adv_shares;
  d["filled"] = r.filled;
  d["fees_usd"] = r.fees_usd;
  d["arrival_mid_ticks"] = r.arrival_mid_ticks;
  d["true_arrival_mid_ticks"] = r.true_arrival_mid_ticks;
  d["end_mid_ticks"] = r.end_mid_ticks;
  d["start_ns"] = r.start_ns;
  d["end_ns"] = r.end_ns;
  d["finished_ns"] = r.finished_ns;
  d["market_vwap_ticks"] = r.market_vwap_ticks;
  d["market_volume_shares"] = r.market_volume_shares;
  d["own_tape_volume_shares"] = r.own_tape_volume_shares;
  d["price_tick_usd"] = r.price_tick_usd;
  d["seed"] = r.seed;
  const BacktestCounters& c = r.counters;
  py::dict counters;
  counters["decisions"] = c.decisions;
  counters["child_requests"] = c.child_requests;
  counters["requests_refused"] = c.requests_refused;
  counters["requests_clipped"] = c.requests_clipped;
  counters["children_sent"] = c.children_sent;
  counters["children_rejected"] = c.children_rejected;
  counters["cancels_sent"] = c.cancels_sent;
  counters["cancels_ignored"] = c.cancels_ignored;
  counters["cancel_rejects"] = c.cancel_rejects;
  counters["sweep_rounds"] = c.sweep_rounds;
  counters["md_events"] = c.md_events;
  counters["book_errors"] = c.book_errors;
  d["counters"] = counters;
  return d;
}

}  // namespace

struct PyRlEnvironment {
  std::unique_ptr<RlEnvironment> env;
  std::vector<std::shared_ptr<TreeEnsemble>> keep;

  py::tuple observation() const {
    const auto n = static_cast<py::ssize_t>(env->action_count());
    py::array_t<float> rows({n, static_cast<py::ssize_t>(kFeatureCount)});
    std::memcpy(rows.mutable_data(), env->rows(), sizeof(float) * static_cast<std::size_t>(n) * kFeatureCount);
    py::array_t<bool> feasible(n);
    std::memcpy(feasible.mutable_data(), env->feasible(), sizeof(bool) * static_cast<std::size_t>(n));
    return py::make_tuple(rows, feasible);
  }
};

void bind_backtest(py::module_& m) {
  PYBIND11_NUMPY_DTYPE(BacktestFill, ts_ns, child_id, price_ticks, quantity, fee_usd, venue_id,
                       type, liquidity, swept);
  PYBIND11_NUMPY_DTYPE(BacktestChild, child_id, price_ticks, quantity, filled, sent_ns, done_ns,
                       fee_usd, venue_id, type, swept, rejected, reject_reason);
  PYBIND11_NUMPY_DTYPE(MidSample, ts_ns, bid_price_ticks, ask_price_ticks, mid_ticks);
  m.attr("backtest_fill_dtype") = py::dtype::of<BacktestFill>();
  m.attr("backtest_child_dtype") = py::dtype::of<BacktestChild>();
  m.attr("mid_sample_dtype") = py::dtype::of<MidSample>();

  py::class_<PolicyVenue>(m, "PolicyVenue", "What a policy knows of one venue.")
      .def(py::init<>())
      .def_readwrite("venue_id", &PolicyVenue::venue_id)
      .def_readwrite("lit", &PolicyVenue::lit)
      .def_readwrite("tick_size_ticks", &PolicyVenue::tick_size_ticks)
      .def_readwrite("maker_fee_usd_per_share", &PolicyVenue::maker_fee_usd_per_share)
      .def_readwrite("taker_fee_usd_per_share", &PolicyVenue::taker_fee_usd_per_share)
      .def_readwrite("midpoint_fee_usd_per_share", &PolicyVenue::midpoint_fee_usd_per_share)
      .def_readwrite("latency_ns", &PolicyVenue::latency_ns)
      .def_readwrite("static_rank", &PolicyVenue::static_rank);

  py::class_<BacktestSpec>(m, "BacktestSpec", "Everything that defines one backtest episode.")
      .def(py::init<>())
      .def_readwrite("market", &BacktestSpec::market)
      .def_readwrite("instrument_id", &BacktestSpec::instrument_id)
      .def_readwrite("parent_order_id", &BacktestSpec::parent_order_id)
      .def_readwrite("side", &BacktestSpec::side)
      .def_readwrite("quantity", &BacktestSpec::quantity)
      .def_readwrite("limit_price_ticks", &BacktestSpec::limit_price_ticks)
      .def_readwrite("start_offset_ns", &BacktestSpec::start_offset_ns)
      .def_readwrite("horizon_ns", &BacktestSpec::horizon_ns)
      .def_readwrite("decision_interval_ns", &BacktestSpec::decision_interval_ns)
      .def_readwrite("markout_tail_ns", &BacktestSpec::markout_tail_ns)
      .def_readwrite("mid_sample_interval_ns", &BacktestSpec::mid_sample_interval_ns)
      .def_readwrite("mid_lookback_ns", &BacktestSpec::mid_lookback_ns)
      .def_readwrite("max_arrival_wait_ns", &BacktestSpec::max_arrival_wait_ns)
      .def_readwrite("finish_at_horizon", &BacktestSpec::finish_at_horizon)
      .def_readwrite("max_sweep_rounds", &BacktestSpec::max_sweep_rounds)
      .def_readwrite("sweep_wait_ns", &BacktestSpec::sweep_wait_ns)
      .def_readwrite("sweep_depth_levels", &BacktestSpec::sweep_depth_levels)
      .def_readwrite("settle_timeout_ns", &BacktestSpec::settle_timeout_ns)
      .def_readwrite("settle_step_ns", &BacktestSpec::settle_step_ns)
      .def_readwrite("features", &BacktestSpec::features)
      .def_readwrite("adv_shares", &BacktestSpec::adv_shares)
      .def_readwrite("lot_shares", &BacktestSpec::lot_shares)
      .def_readwrite("venues", &BacktestSpec::venues);

  m.def("validate_backtest_spec", [](const BacktestSpec& spec) { return validate(spec); },
        py::arg("spec"), "Returns '' when the spec is usable, else what is wrong.");
  m.def("policy_venues", &policy_venues, py::arg("market"),
        "Returns the PolicyVenues derived from a SimMarketSpec (venue order is the rank).");

  py::class_<ExecutionPolicy>(m, "ExecutionPolicy",
                              "An execution policy made by make_policy (C++; run by run_backtest).")
      .def_property_readonly("name", [](const ExecutionPolicy& p) { return std::string(p.name()); })
      .def("__repr__", [](const ExecutionPolicy& p) {
        return "<ExecutionPolicy " + std::string(p.name()) + ">";
      });

  m.def("make_policy",
        [](const std::string& name, const py::object& params) {
          PolicyParams p;
          if (!params.is_none()) {
            for (const auto& [key, value] : params.cast<py::dict>()) {
              const std::string k = py::str(key).cast<std::string>();
              try {
                p[k] = value.cast<double>();
              } catch (const py::cast_error&) {
                raise_policy_config_error(k + ": must be a number");
              }
            }
          }
          std::string error;
          std::unique_ptr<ExecutionPolicy> policy = make_policy(name, p, error);
          if (!policy) raise_policy_config_error(error);
          return policy;
        },
        py::arg("name"), py::arg("params") = py::none(),
        "Makes the policy `name` with numeric `params`; raises PolicyConfigError naming an "
        "unknown policy or an unknown or impossible parameter.");
  m.def("policy_names", &policy_names, "Returns the policy names make_policy knows.");

  m.def("run_backtest",
        [](const py::object& spec_or_dict, ExecutionPolicy& policy, const py::object& models) {
          const BacktestSpec spec = spec_from(spec_or_dict);
          if (std::string problem = validate(spec); !problem.empty()) {
            raise_backtest_config_error(problem);
          }
          std::vector<std::shared_ptr<TreeEnsemble>> keep;
          const PolicyModels policy_models = models_from(models, keep);
          BacktestResult result;
          {
            py::gil_scoped_release release;
            result = run_backtest(spec, policy, policy_models);
          }
          return result_dict(result);
        },
        py::arg("spec"), py::arg("policy"), py::arg("models") = py::none(),
        "Runs one backtest episode (GIL released): spec is a BacktestSpec or a dict of its "
        "fields, policy from make_policy, models a dict of TreeEnsembles by name (or None). "
        "Returns a dict: fills/children/mids arrays, scalars and counters.");

  py::class_<PyRlEnvironment>(m, "RlEnvironmentCore",
                              "One episode of the routing problem, stepped decision by decision.")
      .def(py::init([](const py::object& spec_or_dict, const py::dict& actions,
                       const py::object& models) {
             const BacktestSpec spec = spec_from(spec_or_dict);
             if (std::string problem = validate(spec); !problem.empty()) {
               raise_backtest_config_error(problem);
             }
             RlActionConfig config;
             for (const auto& [key, value] : actions) {
               const std::string k = py::str(key).cast<std::string>();
               if (k == "child_shares") config.child_shares = value.cast<double>();
               else if (k == "passive_lifetime_s") config.passive_lifetime_s = value.cast<double>();
               else if (k == "decision_interval_s") config.decision_interval_s = value.cast<double>();
               else raise_usage_error("actions: unknown key '" + k + "'");
             }
             if (const char* problem = validate(config); problem[0] != '\0') {
               raise_usage_error(std::string("actions: ") + problem);
             }
             auto env = std::make_unique<PyRlEnvironment>();
             const PolicyModels policy_models = models_from(models, env->keep);
             env->env = std::make_unique<RlEnvironment>(spec, config, policy_models);
             return env;
           }),
           py::arg("spec"), py::arg("actions"), py::arg("models") = py::none())
      .def_property_readonly("action_count",
                             [](const PyRlEnvironment& e) { return e.env->action_count(); })
      .def("reset", [](PyRlEnvironment& e) {
        {
          py::gil_scoped_release release;
          e.env->reset();
        }
        return e.observation();
      }, "Runs to the arrival; returns (rows [actions, features] float32, feasible [actions] bool).")
      .def("step", [](PyRlEnvironment& e, std::size_t action) {
        if (e.env->done()) raise_usage_error("the episode has ended; make a new environment");
        if (action >= e.env->action_count()) raise_usage_error("action out of range");
        RlStepResult r;
        {
          py::gil_scoped_release release;
          r = e.env->step(action);
        }
        py::tuple obs = e.observation();
        return py::make_tuple(obs[0], obs[1], r.reward_bps, r.done);
      }, py::arg("action"),
      "Acts and advances one decision; returns (rows, feasible, reward_bps, done).")
      .def("result", [](const PyRlEnvironment& e) {
        if (!e.env->done()) raise_usage_error("the episode has not ended");
        return result_dict(e.env->result());
      }, "Returns the episode's result (as run_backtest) once it ended.");
}

}  // namespace sor::bindings
