#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "errors.hpp"
#include "sor/replay.hpp"

namespace py = pybind11;

namespace sor::bindings {
namespace {

using sim::ReplayMarket;

sim::ReplayOptions options_from(const std::vector<py::dict>& venues, sim::QueueModel queue_model,
                                sim::ImpactModel impact_model, const py::dict& propagator,
                                std::uint64_t seed) {
  sim::ReplayOptions o;
  for (const py::dict& d : venues) {
    sim::ReplayVenueOptions v;
    v.order_entry_latency_ns = d["order_entry_latency_ns"].cast<std::int64_t>();
    v.ack_latency_ns = d["ack_latency_ns"].cast<std::int64_t>();
    v.market_data_latency_ns = d["market_data_latency_ns"].cast<std::int64_t>();
    v.latency_jitter_ns = d["latency_jitter_ns"].cast<std::int64_t>();
    v.maker_fee_usd_per_share = d["maker_fee_usd_per_share"].cast<double>();
    v.taker_fee_usd_per_share = d["taker_fee_usd_per_share"].cast<double>();
    v.tick_size_ticks = d["tick_size_ticks"].cast<std::int64_t>();
    o.venues.push_back(v);
  }
  o.queue_model = queue_model;
  o.impact_model = impact_model;
  o.propagator.eta_ticks = propagator["eta_ticks"].cast<double>();
  o.propagator.delta = propagator["delta"].cast<double>();
  o.propagator.beta = propagator["beta"].cast<double>();
  o.propagator.t0_ns = propagator["t0_ns"].cast<double>();
  o.propagator.permanent_fraction = propagator["permanent_fraction"].cast<double>();
  o.propagator.daily_volume_shares = propagator["daily_volume_shares"].cast<double>();
  o.seed = seed;
  return o;
}

py::dict counters_dict(const sim::ReplayCounters& c) {
  py::dict d;
  d["recorded_events"] = c.recorded_events;
  d["orders_submitted"] = c.orders_submitted;
  d["orders_rejected"] = c.orders_rejected;
  d["cancels_submitted"] = c.cancels_submitted;
  d["cancels_rejected"] = c.cancels_rejected;
  d["fills"] = c.fills;
  d["shares_taken"] = c.shares_taken;
  d["shares_made"] = c.shares_made;
  d["late_sends"] = c.late_sends;
  d["reports_emitted"] = c.reports_emitted;
  return d;
}

}  // namespace

void bind_replay(py::module_& m) {
  py::enum_<sim::QueueModel>(m, "QueueModel")
      .value("CONSERVATIVE", sim::QueueModel::kConservative)
      .value("PROPORTIONAL", sim::QueueModel::kProportional)
      .value("OPTIMISTIC", sim::QueueModel::kOptimistic)
      .value("FIFO", sim::QueueModel::kFifo);
  py::enum_<sim::ImpactModel>(m, "ImpactModel")
      .value("NONE", sim::ImpactModel::kNone)
      .value("PROPAGATOR", sim::ImpactModel::kPropagator);
  py::enum_<sim::QuoteView>(m, "QuoteView")
      .value("VENUE", sim::QuoteView::kVenue)
      .value("AGENT", sim::QuoteView::kAgent);

  py::class_<ReplayMarket>(m, "ReplayMarket",
                           "Recorded L3 streams replayed as the market, with agent orders inserted.")
      .def(py::init([](const std::vector<py::dict>& venues, sim::QueueModel queue_model,
                       sim::ImpactModel impact_model, const py::dict& propagator,
                       std::uint64_t seed) {
             sim::ReplayOptions o = options_from(venues, queue_model, impact_model, propagator, seed);
             const std::string problem = sim::validate(o);
             if (!problem.empty()) raise_usage_error(problem);
             return new ReplayMarket(std::move(o));
           }),
           py::arg("venues"), py::arg("queue_model"), py::arg("impact_model"),
           py::arg("propagator"), py::arg("seed"))
      .def("load",
           [](ReplayMarket& market, std::uint8_t venue_id, const py::array& events) -> py::object {
             const auto [data, count] = records_view<MdEvent>(events, "events");
             sim::LoadResult r;
             {
               py::gil_scoped_release release;
               r = market.load(venue_id, data, count);
             }
             if (r.error == sim::LoadError::kOk) return py::none();
             return py::make_tuple(std::string(sim::load_error_name(r.error)), r.index, r.message);
           },
           py::arg("venue_id"), py::arg("events"),
           "Loads a venue's recorded stream; returns None, or (error, index, message).")
      .def("submit",
           [](ReplayMarket& market, const py::array& orders) {
             const auto [data, count] = records_view<sim::AgentOrder>(orders, "orders");
             for (std::size_t i = 0; i < count; ++i) market.submit(data[i]);
           },
           py::arg("orders"), "Sends agent_order_dtype orders in array order.")
      .def("cancel", &ReplayMarket::cancel, py::arg("client_order_id"), py::arg("ts_send"),
           "Sends a cancel of an agent order.")
      .def("run_until",
           [](ReplayMarket& market, std::int64_t ts_ns) {
             py::gil_scoped_release release;
             market.run_until(ts_ns);
           },
           py::arg("ts_ns"), "Processes the venues up to and including ts_ns.")
      .def("drain_reports",
           [](ReplayMarket& market) {
             std::vector<sim::SimReport> out(market.pending_reports());
             out.resize(market.drain_reports(out.data(), out.size()));
             return records_copy(out.data(), out.size());
           },
           "Returns the reports received by now() as a sim_report_dtype array.")
      .def("quote", &ReplayMarket::quote, py::arg("venue_id"), py::arg("instrument_id"),
           py::arg("view"), "Returns one venue's best bid and ask as an Nbbo.")
      .def("nbbo", &ReplayMarket::nbbo, py::arg("instrument_id"), py::arg("view"),
           "Returns the best bid and ask across venues.")
      .def("impact_ticks", &ReplayMarket::impact_ticks, py::arg("instrument_id"),
           "Returns the current impact of the agent's trades in ticks.")
      .def("shares_ahead", &ReplayMarket::shares_ahead, py::arg("client_order_id"),
           "Returns the recorded shares ahead of a resting agent order, or -1.")
      .def("leaves_quantity", &ReplayMarket::leaves_quantity, py::arg("client_order_id"),
           "Returns the open quantity of an agent order, or -1.")
      .def_property_readonly("now", &ReplayMarket::now, "The replay clock in ns.")
      .def_property_readonly("next_event_ts", &ReplayMarket::next_event_ts,
                             "ts_event of the next recorded event (INT64_MAX when done).")
      .def_property_readonly("pending_reports", &ReplayMarket::pending_reports,
                             "Reports generated and not yet drained.")
      .def_property_readonly("counters",
                             [](const ReplayMarket& market) { return counters_dict(market.counters()); },
                             "Counters of the run.");
}

}  // namespace sor::bindings
