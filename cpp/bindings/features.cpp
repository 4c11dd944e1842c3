#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "errors.hpp"
#include "sor/consolidated.hpp"
#include "sor/feature_bench.hpp"
#include "sor/features.hpp"

namespace py = pybind11;

namespace sor::bindings {
namespace {

// The book and the engine it feeds, owned together so they always see the same events.
struct FeatureEngineCore {
  explicit FeatureEngineCore(const FeatureOptions& options)
      : book(book_venues(options)), engine(options) {}
  ConsolidatedBook book;
  FeatureEngine engine;
  std::uint64_t rejected = 0;
};

std::unique_ptr<FeatureEngineCore> make_core(const FeatureOptions& options) {
  const std::string problem = validate(options);
  if (!problem.empty()) raise_feature_config_error(problem);
  return std::make_unique<FeatureEngineCore>(options);
}

void check(FeatureStatus status, const char* what) {
  if (status != FeatureStatus::kOk) {
    raise_feature_error(std::string(feature_status_name(status)), -1, what);
  }
}

}  // namespace

void bind_features(py::module_& m) {
  m.attr("decision_context_dtype") = py::dtype::of<DecisionContext>();
  m.attr("FEATURE_SCHEMA_NAME") = kFeatureSchemaName;
  m.attr("FEATURE_SCHEMA_REVISION") = kFeatureSchemaRevision;
  m.attr("FEATURE_COUNT") = kFeatureCount;

  py::enum_<ChildOrderType>(m, "ChildOrderType")
      .value("TAKE", ChildOrderType::kTake)
      .value("POST", ChildOrderType::kPost)
      .value("MIDPOINT", ChildOrderType::kMidpoint);

  m.def("feature_schema", [] {
          py::list out;
          const FeatureInfo* schema = feature_schema();
          for (std::size_t k = 0; k < kFeatureCount; ++k) {
            out.append(py::make_tuple(schema[k].name, schema[k].unit, schema[k].description));
          }
          return out;
        },
        "Returns the feature schema as (name, unit, description) tuples in row order.");

  py::class_<FeatureVenueSpec>(m, "FeatureVenueSpec", "One venue as the feature engine sees it.")
      .def(py::init([](std::uint8_t venue_id, bool lit, BookType book_type, double maker,
                       double taker, double midpoint, std::int64_t latency_ns) {
             return FeatureVenueSpec{venue_id, lit, book_type, maker, taker, midpoint, latency_ns};
           }),
           py::arg("venue_id"), py::kw_only(), py::arg("lit") = true,
           py::arg("book_type") = BookType::kL3, py::arg("maker_fee_usd_per_share") = 0.0,
           py::arg("taker_fee_usd_per_share") = 0.0, py::arg("midpoint_fee_usd_per_share") = 0.0,
           py::arg("latency_ns") = 100'000)
      .def_readwrite("venue_id", &FeatureVenueSpec::venue_id)
      .def_readwrite("lit", &FeatureVenueSpec::lit)
      .def_readwrite("book_type", &FeatureVenueSpec::book_type)
      .def_readwrite("maker_fee_usd_per_share", &FeatureVenueSpec::maker_fee_usd_per_share)
      .def_readwrite("taker_fee_usd_per_share", &FeatureVenueSpec::taker_fee_usd_per_share)
      .def_readwrite("midpoint_fee_usd_per_share", &FeatureVenueSpec::midpoint_fee_usd_per_share)
      .def_readwrite("latency_ns", &FeatureVenueSpec::latency_ns);

  py::class_<GarchParams>(m, "GarchParams",
                          "GARCH(1,1) parameters of the mid return per interval, in bps.")
      .def(py::init<>())
      .def_readwrite("omega_bps2", &GarchParams::omega_bps2)
      .def_readwrite("alpha", &GarchParams::alpha)
      .def_readwrite("beta", &GarchParams::beta)
      .def_readwrite("sample_interval_ns", &GarchParams::sample_interval_ns)
      .def_readwrite("initial_variance_bps2", &GarchParams::initial_variance_bps2);

  py::class_<FeatureOptions>(m, "FeatureOptions", "Everything a feature engine is built from.")
      .def(py::init<>())
      .def_readwrite("venues", &FeatureOptions::venues)
      .def_readwrite("max_instruments", &FeatureOptions::max_instruments)
      .def_readwrite("price_tick_usd", &FeatureOptions::price_tick_usd)
      .def_readwrite("vol_sample_interval_ns", &FeatureOptions::vol_sample_interval_ns)
      .def_readwrite("flow_bucket_ns", &FeatureOptions::flow_bucket_ns)
      .def_readwrite("default_adv_shares", &FeatureOptions::default_adv_shares)
      .def_readwrite("fill_rate_prior", &FeatureOptions::fill_rate_prior)
      .def_readwrite("fill_rate_prior_weight_orders", &FeatureOptions::fill_rate_prior_weight_orders)
      .def_readwrite("fill_rate_half_life_orders", &FeatureOptions::fill_rate_half_life_orders)
      .def_readwrite("latency_ewma_weight", &FeatureOptions::latency_ewma_weight)
      .def_readwrite("garch", &FeatureOptions::garch);

  m.def("validate_feature_options", [](const FeatureOptions& o) { return std::string(validate(o)); },
        py::arg("options"), "Returns '' when the options are usable, else what is wrong.");
  m.def("feature_state_bytes", &feature_state_bytes, py::arg("options"),
        "Returns the bytes of state an engine built from these options preallocates.");

  py::class_<FeatureEngineCore>(m, "FeatureEngineCore",
                                "A consolidated book and the feature engine it feeds.")
      .def(py::init(&make_core), py::arg("options"))
      .def("apply", [](FeatureEngineCore& c, const py::array& events, bool strict) {
             const auto [data, count] = records_view<MdEvent>(events, "events");
             FeatureApplyResult r;
             {
               py::gil_scoped_release release;
               r = apply_events(c.book, c.engine, data, count, strict);
             }
             c.rejected += r.rejected;
             if (strict && r.rejected != 0) {
               const MdEvent& bad = data[r.first_rejected_index];
               const int index = c.book.venue_index(bad.venue_id);
               const std::uint64_t expected =
                   index < 0 ? 0 : c.book.book(static_cast<std::size_t>(index)).expected_sequence();
               raise_book_error(r.first_status, r.first_rejected_index, bad, expected);
             }
             return r.applied;
           },
           py::arg("events"), py::kw_only(), py::arg("strict") = true,
           "Applies md_event_dtype records to the owned book and, when it takes them, to the "
           "engine (GIL released); returns how many were applied. strict: raise on the first "
           "refused event (those before it stay applied); else skip refused events and count "
           "them in `rejected`.")
      .def("build_rows", [](const FeatureEngineCore& c, const py::array& contexts) {
             const auto [data, count] = records_view<DecisionContext>(contexts, "contexts");
             py::array_t<float> out(std::vector<py::ssize_t>{
                 static_cast<py::ssize_t>(count), static_cast<py::ssize_t>(kFeatureCount)});
             float* rows = out.mutable_data();
             FeatureBatchResult r;
             {
               py::gil_scoped_release release;
               r = c.engine.build_rows(data, count, c.book, rows);
             }
             if (r.failed != 0) {
               raise_feature_error(std::string(feature_status_name(r.status)),
                                   static_cast<std::int64_t>(r.first_failed_index),
                                   std::to_string(r.failed) + " of " + std::to_string(count) +
                                       " contexts refused");
             }
             return out;
           },
           py::arg("contexts"),
           "Returns float32 rows [n, FEATURE_COUNT] for decision_context_dtype records; raises "
           "FeatureError naming the first refused context.")
      .def("on_child_done", [](FeatureEngineCore& c, std::uint8_t venue_id, Side side,
                               ChildOrderType type, std::int64_t quantity, std::int64_t filled) {
             check(c.engine.on_child_done(venue_id, side, type, quantity, filled), "on_child_done");
           },
           py::arg("venue_id"), py::arg("side"), py::arg("order_type"), py::arg("quantity"),
           py::arg("filled_quantity"), "Records the outcome of one of our child orders.")
      .def("on_latency_sample", [](FeatureEngineCore& c, std::uint8_t venue_id, std::int64_t ns) {
             check(c.engine.on_latency_sample(venue_id, ns), "on_latency_sample");
           },
           py::arg("venue_id"), py::arg("latency_ns"), "Records one order-to-ack latency.")
      .def("set_adv", [](FeatureEngineCore& c, std::uint32_t instrument, double shares) {
             check(c.engine.set_adv(instrument, shares), "set_adv");
           },
           py::arg("instrument_id"), py::arg("adv_shares"), "Sets an instrument's ADV.")
      .def("set_implied_volatility", [](FeatureEngineCore& c, std::uint32_t instrument, double annual) {
             check(c.engine.set_implied_volatility(instrument, annual), "set_implied_volatility");
           },
           py::arg("instrument_id"), py::arg("annual"), "Sets an instrument's implied volatility.")
      .def("clear_implied_volatility", [](FeatureEngineCore& c, std::uint32_t instrument) {
             check(c.engine.clear_implied_volatility(instrument), "clear_implied_volatility");
           },
           py::arg("instrument_id"), "Clears an instrument's implied volatility.")
      .def("reset_sequence", [](FeatureEngineCore& c, std::uint8_t venue_id) {
             check(c.engine.reset_sequence(venue_id), "reset_sequence");
           },
           py::arg("venue_id"), "Forgets a venue's last sequence (after a book resync).")
      .def_property_readonly("book", [](const FeatureEngineCore& c) { return &c.book; },
                             py::return_value_policy::reference_internal,
                             "The owned ConsolidatedBook (read it; apply through the engine).")
      .def_property_readonly("clock_ns", [](const FeatureEngineCore& c) { return c.engine.clock_ns(); },
                             "The largest ts_recv seen (0 before the first event).")
      .def_property_readonly("events_applied",
                             [](const FeatureEngineCore& c) { return c.engine.events_applied(); },
                             "Events that changed the engine's state.")
      .def_property_readonly("rejected", [](const FeatureEngineCore& c) { return c.rejected; },
                             "Events the book refused so far.");

  m.def("bench_feature_update", [](std::uint64_t events, std::uint64_t seed) {
          if (events == 0) raise_usage_error("events must be at least 1");
          FeatureBenchResult r;
          {
            py::gil_scoped_release release;
            r = bench_feature_update(events, seed);
          }
          py::dict d;
          d["p50_ns"] = r.p50_ns;
          d["p99_ns"] = r.p99_ns;
          d["p999_ns"] = r.p999_ns;
          d["mean_ns"] = r.mean_ns;
          d["build_row_p50_ns"] = r.build_row_p50_ns;
          d["build_row_p99_ns"] = r.build_row_p99_ns;
          d["build_row_p999_ns"] = r.build_row_p999_ns;
          d["build_row_mean_ns"] = r.build_row_mean_ns;
          d["events"] = r.events;
          d["rows"] = r.rows;
          d["timer_overhead_ns"] = r.timer_overhead_ns;
          d["method"] = r.method;
          return d;
        },
        py::arg("events") = 1'000'000, py::arg("seed") = 1,
        "Times FeatureEngine::on_event per event (book apply untimed) and build_row on a "
        "synthetic 5-venue stream; returns p50/p99/p999 ns and how they were measured.");
}

}  // namespace sor::bindings
