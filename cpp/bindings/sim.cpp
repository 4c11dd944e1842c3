#include <pybind11/stl.h>

#include <cstring>
#include <stdexcept>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "sor/book_bench.hpp"
#include "sor/market_sim.hpp"
#include "sor/synthetic_flow.hpp"

namespace py = pybind11;

namespace sor::bindings {

void bind_market_simulator(py::module_& m);

void bind_sim(py::module_& m) {
  m.def("generate_order_flow",
        [](std::uint64_t seed, std::size_t event_count, std::uint8_t venue_count,
           std::uint32_t instrument_count, std::int64_t start_price_ticks, std::int64_t start_ts_ns,
           double mean_gap_ns, std::size_t target_orders) {
          SyntheticFlowParams p;
          p.seed = seed;
          p.event_count = event_count;
          p.venue_count = venue_count;
          p.instrument_count = instrument_count;
          p.start_price_ticks = start_price_ticks;
          p.start_ts_ns = start_ts_ns;
          p.mean_gap_ns = mean_gap_ns;
          p.target_orders = target_orders;
          if (venue_count == 0 || instrument_count == 0) {
            raise_usage_error("venue_count and instrument_count must be at least 1");
          }
          if (start_price_ticks < 100) raise_usage_error("start_price_ticks must be at least 100");
          std::vector<MdEvent> events;
          {
            py::gil_scoped_release release;
            events = generate_order_flow(p);
          }
          return records_copy(events.data(), events.size());
        },
        py::arg("seed") = 1, py::arg("event_count") = 100000, py::arg("venue_count") = 1,
        py::arg("instrument_count") = 1, py::arg("start_price_ticks") = 10000,
        py::arg("start_ts_ns") = 1'700'000'000'000'000'000LL, py::arg("mean_gap_ns") = 2000.0,
        py::arg("target_orders") = 2000,
        "Returns a valid synthetic L3 stream (md_event_dtype) with a realistic message mix.");
  m.def("to_level_updates",
        [](const py::array& events) {
          const auto [data, count] = records_view<MdEvent>(events, "events");
          std::vector<MdEvent> out;
          {
            py::gil_scoped_release release;
            out = to_level_updates(data, count);
          }
          return records_copy(out.data(), out.size());
        },
        py::arg("events"), "Returns the L2 (LEVEL) stream that a valid L3 stream implies.");
  m.def("bench_book",
        [](const py::array& events, bool l3) {
          const auto [data, count] = records_view<MdEvent>(events, "events");
          py::array_t<double> latency(static_cast<py::ssize_t>(count));
          BookBenchResult r;
          {
            py::gil_scoped_release release;
            r = bench_book(l3, data, count, latency.mutable_data());
          }
          if (r.status != Status::kOk) raise_book_error(r.status, r.failed_index, data[r.failed_index], 0);
          py::dict d;
          d["latency_ns"] = latency;
          d["throughput_per_s"] = r.throughput_per_s;
          d["timer_overhead_ns"] = r.timer_overhead_ns;
          d["ns_per_tick"] = r.ns_per_tick;
          return d;
        },
        py::arg("events"), py::arg("l3"),
        "Times each event through a fresh L3 (or L2) book in C++; returns per-event latency "
        "(ns, timer overhead subtracted) and batch throughput.");
  bind_market_simulator(m);
}

namespace {

template <class T>
py::array_t<T> take_vector(std::vector<T>& v) {
  auto out = records_copy(v.data(), v.size());
  v.clear();
  return out;
}

}  // namespace

void bind_market_simulator(py::module_& m) {
  using namespace sor::sim;
  PYBIND11_NUMPY_DTYPE(QuoteSample, ts_ns, bid_price_ticks, ask_price_ticks, bid_quantity,
                       ask_quantity, fundamental_ticks, regime, reserved);
  m.attr("quote_sample_dtype") = py::dtype::of<QuoteSample>();
  py::enum_<VenueKind>(m, "SimVenueKind").value("LIT", VenueKind::kLit).value("DARK", VenueKind::kDark);
  py::class_<LatencySpec>(m, "SimLatencySpec")
      .def(py::init<>())
      .def_readwrite("market_data_ns", &LatencySpec::market_data_ns)
      .def_readwrite("order_entry_ns", &LatencySpec::order_entry_ns)
      .def_readwrite("ack_ns", &LatencySpec::ack_ns)
      .def_readwrite("jitter_fraction", &LatencySpec::jitter_fraction);
  py::class_<VenueSpec>(m, "SimVenueSpec")
      .def(py::init<>())
      .def_readwrite("venue_id", &VenueSpec::venue_id)
      .def_readwrite("name", &VenueSpec::name)
      .def_readwrite("kind", &VenueSpec::kind)
      .def_readwrite("tick_size_ticks", &VenueSpec::tick_size_ticks)
      .def_readwrite("maker_fee_usd_per_share", &VenueSpec::maker_fee_usd_per_share)
      .def_readwrite("taker_fee_usd_per_share", &VenueSpec::taker_fee_usd_per_share)
      .def_readwrite("midpoint_fee_usd_per_share", &VenueSpec::midpoint_fee_usd_per_share)
      .def_readwrite("latency", &VenueSpec::latency)
      .def_readwrite("flow_share", &VenueSpec::flow_share)
      .def_readwrite("informed_share", &VenueSpec::informed_share)
      .def_readwrite("hidden_arrival_per_s", &VenueSpec::hidden_arrival_per_s)
      .def_readwrite("hidden_mean_quantity", &VenueSpec::hidden_mean_quantity)
      .def_readwrite("hidden_lifetime_s", &VenueSpec::hidden_lifetime_s)
      .def_readwrite("min_quantity", &VenueSpec::min_quantity);
  py::class_<FlowSpec>(m, "SimFlowSpec")
      .def(py::init<>())
      .def_readwrite("limit_rate_per_s", &FlowSpec::limit_rate_per_s)
      .def_readwrite("cancel_rate_per_order_per_s", &FlowSpec::cancel_rate_per_order_per_s)
      .def_readwrite("partial_cancel_probability", &FlowSpec::partial_cancel_probability)
      .def_readwrite("market_rate_per_s", &FlowSpec::market_rate_per_s)
      .def_readwrite("hawkes_branching_ratio", &FlowSpec::hawkes_branching_ratio)
      .def_readwrite("hawkes_decay_per_s", &FlowSpec::hawkes_decay_per_s)
      .def_readwrite("sign_persistence", &FlowSpec::sign_persistence)
      .def_readwrite("placement_levels", &FlowSpec::placement_levels)
      .def_readwrite("depth_slope", &FlowSpec::depth_slope)
      .def_readwrite("half_spread_ticks", &FlowSpec::half_spread_ticks)
      .def_readwrite("join_best_boost", &FlowSpec::join_best_boost)
      .def_readwrite("join_best_scale_shares", &FlowSpec::join_best_scale_shares)
      .def_readwrite("mean_limit_quantity", &FlowSpec::mean_limit_quantity)
      .def_readwrite("mean_market_quantity", &FlowSpec::mean_market_quantity)
      .def_readwrite("market_quantity_sigma", &FlowSpec::market_quantity_sigma)
      .def_readwrite("market_collar_ticks", &FlowSpec::market_collar_ticks)
      .def_readwrite("lot_shares", &FlowSpec::lot_shares)
      .def_readwrite("stale_pull_probability", &FlowSpec::stale_pull_probability);
  py::class_<FundamentalSpec>(m, "SimFundamentalSpec")
      .def(py::init<>())
      .def_readwrite("news_rate_per_s", &FundamentalSpec::news_rate_per_s)
      .def_readwrite("news_mean_ticks", &FundamentalSpec::news_mean_ticks)
      .def_readwrite("news_tail_exponent", &FundamentalSpec::news_tail_exponent)
      .def_readwrite("news_branching_ratio", &FundamentalSpec::news_branching_ratio)
      .def_readwrite("news_decay_per_s", &FundamentalSpec::news_decay_per_s)
      .def_readwrite("permanent_impact_ticks_per_share",
                     &FundamentalSpec::permanent_impact_ticks_per_share)
      .def_readwrite("latent_density_shares_per_tick2",
                     &FundamentalSpec::latent_density_shares_per_tick2)
      .def_readwrite("latent_renewal_s", &FundamentalSpec::latent_renewal_s);
  py::class_<InformedSpec>(m, "SimInformedSpec")
      .def(py::init<>())
      .def_readwrite("probability", &InformedSpec::probability)
      .def_readwrite("lead_s", &InformedSpec::lead_s)
      .def_readwrite("orders", &InformedSpec::orders)
      .def_readwrite("mean_quantity", &InformedSpec::mean_quantity);
  py::class_<RegimeSpec>(m, "SimRegimeSpec")
      .def(py::init<>())
      .def_readwrite("name", &RegimeSpec::name)
      .def_readwrite("rate_multiplier", &RegimeSpec::rate_multiplier)
      .def_readwrite("news_multiplier", &RegimeSpec::news_multiplier)
      .def_readwrite("news_size_multiplier", &RegimeSpec::news_size_multiplier)
      .def_readwrite("half_spread_multiplier", &RegimeSpec::half_spread_multiplier)
      .def_readwrite("mean_duration_s", &RegimeSpec::mean_duration_s);
  py::class_<MarketSpec>(m, "SimMarketSpec")
      .def(py::init<>())
      .def_readwrite("seed", &MarketSpec::seed)
      .def_readwrite("session_start_ns", &MarketSpec::session_start_ns)
      .def_readwrite("session_length_ns", &MarketSpec::session_length_ns)
      .def_readwrite("instrument_count", &MarketSpec::instrument_count)
      .def_readwrite("initial_price_ticks", &MarketSpec::initial_price_ticks)
      .def_readwrite("price_tick_usd", &MarketSpec::price_tick_usd)
      .def_readwrite("u_shape_amplitude", &MarketSpec::u_shape_amplitude)
      .def_readwrite("flow", &MarketSpec::flow)
      .def_readwrite("fundamental", &MarketSpec::fundamental)
      .def_readwrite("informed", &MarketSpec::informed)
      .def_readwrite("regimes", &MarketSpec::regimes)
      .def_readwrite("venues", &MarketSpec::venues)
      .def_readwrite("record_feeds", &MarketSpec::record_feeds)
      .def_readwrite("record_events", &MarketSpec::record_events)
      .def_readwrite("record_trades", &MarketSpec::record_trades)
      .def_readwrite("quote_sample_interval_ns", &MarketSpec::quote_sample_interval_ns)
      .def_readwrite("quote_sample_levels", &MarketSpec::quote_sample_levels)
      .def_readwrite("reserve_orders", &MarketSpec::reserve_orders)
      .def_readwrite("fifo_order_entry", &MarketSpec::fifo_order_entry);
  m.def("validate_market_spec", &validate, py::arg("spec"),
        "Returns '' when the spec is usable, else a message naming the first problem.");
  py::class_<MarketSimulator>(m, "MarketSimulatorCore")
      .def(py::init([](const MarketSpec& spec) {
             if (std::string problem = validate(spec); !problem.empty()) raise_usage_error(problem);
             return std::make_unique<MarketSimulator>(spec);
           }),
           py::arg("spec"))
      .def("run_until", &MarketSimulator::run_until, py::arg("ts_ns"),
           py::call_guard<py::gil_scoped_release>())
      .def("run_session", &MarketSimulator::run_session, py::call_guard<py::gil_scoped_release>())
      .def("submit",
           [](MarketSimulator& s, const py::array& orders) {
             const auto [data, count] = records_view<AgentOrder>(orders, "orders");
             for (std::size_t n = 0; n < count; ++n) s.submit(data[n]);
           },
           py::arg("orders"))
      .def("cancel", &MarketSimulator::cancel, py::arg("client_order_id"), py::arg("ts_send"))
      .def("replace", &MarketSimulator::replace, py::arg("client_order_id"), py::arg("quantity"),
           py::arg("price_ticks"), py::arg("ts_send"))
      .def("resting_orders",
           [](const MarketSimulator& s, std::uint8_t venue_id, std::uint32_t instrument_id, Side side) {
             std::vector<OrderView> orders;
             s.resting_orders(venue_id, instrument_id, side, orders);
             const auto n = static_cast<py::ssize_t>(orders.size());
             py::array_t<std::uint64_t> ids(n);
             py::array_t<std::int64_t> prices(n);
             py::array_t<std::int64_t> quantities(n);
             for (py::ssize_t k = 0; k < n; ++k) {
               ids.mutable_at(k) = orders[static_cast<std::size_t>(k)].order_id;
               prices.mutable_at(k) = orders[static_cast<std::size_t>(k)].price_ticks;
               quantities.mutable_at(k) = orders[static_cast<std::size_t>(k)].quantity;
             }
             py::dict d;
             d["order_id"] = ids;
             d["price_ticks"] = prices;
             d["quantity"] = quantities;
             return d;
           },
           py::arg("venue_id"), py::arg("instrument_id"), py::arg("side"),
           "Returns the resting orders of a lit venue's side (order_id, price_ticks, quantity "
           "arrays), best price first and in time priority within a price.")
      .def("take_reports",
           [](MarketSimulator& s) {
             std::vector<SimReport> out;
             s.take_reports(out);
             return take_vector(out);
           })
      .def("take_trades",
           [](MarketSimulator& s) {
             std::vector<SimTrade> out;
             s.take_trades(out);
             return take_vector(out);
           })
      .def("take_quotes",
           [](MarketSimulator& s) {
             std::vector<QuoteSample> quotes;
             std::vector<std::int64_t> depth;
             s.take_quotes(quotes, depth);
             const auto levels = static_cast<py::ssize_t>(s.spec().quote_sample_levels);
             py::array_t<std::int64_t> rows({static_cast<py::ssize_t>(quotes.size()), py::ssize_t{2}, levels});
             if (!depth.empty()) std::memcpy(rows.mutable_data(), depth.data(), depth.size() * sizeof(std::int64_t));
             return py::make_tuple(take_vector(quotes), rows);
           })
      .def("take_feed",
           [](MarketSimulator& s, std::uint8_t venue_id) {
             std::vector<std::uint8_t> out;
             s.take_feed(venue_id, out);
             return py::bytes(reinterpret_cast<const char*>(out.data()), out.size());
           },
           py::arg("venue_id"))
      .def("take_events",
           [](MarketSimulator& s, std::uint8_t venue_id) {
             std::vector<MdEvent> out;
             s.take_events(venue_id, out);
             return take_vector(out);
           },
           py::arg("venue_id"))
      .def_property_readonly("now", &MarketSimulator::now)
      .def_property_readonly("session_end", &MarketSimulator::session_end)
      .def_property_readonly("regime", &MarketSimulator::regime)
      .def_property_readonly("open_agent_orders", &MarketSimulator::open_agent_orders)
      .def("nbbo",
           [](const MarketSimulator& s, std::uint32_t instrument_id) {
             Nbbo q = s.nbbo(instrument_id);
             return records_copy(&q, 1);
           },
           py::arg("instrument_id") = 0)
      .def("levels",
           [](const MarketSimulator& s, std::uint8_t venue_id, std::uint32_t instrument_id,
              Side side, std::size_t depth) {
             std::vector<LevelView> out(depth);
             const std::size_t n = s.levels(venue_id, instrument_id, side, out.data(), depth);
             return records_copy(out.data(), n);
           },
           py::arg("venue_id"), py::arg("instrument_id"), py::arg("side"), py::arg("depth") = 10)
      .def("fundamental", &MarketSimulator::fundamental, py::arg("instrument_id") = 0)
      .def("hidden_quantity", &MarketSimulator::hidden_quantity, py::arg("venue_id"),
           py::arg("instrument_id"), py::arg("side"))
      .def("counters", [](const MarketSimulator& s) {
        const SimCounters& c = s.counters();
        py::dict d;
        d["events"] = c.events;
        d["limit_orders"] = c.limit_orders;
        d["cancels"] = c.cancels;
        d["market_orders"] = c.market_orders;
        d["informed_orders"] = c.informed_orders;
        d["trades"] = c.trades;
        d["news"] = c.news;
        d["regime_switches"] = c.regime_switches;
        d["hidden_orders"] = c.hidden_orders;
        d["agent_orders"] = c.agent_orders;
        d["agent_rejects"] = c.agent_rejects;
        d["agent_fills"] = c.agent_fills;
        d["thinned"] = c.thinned;
        d["book_errors"] = c.book_errors;
        return d;
      });
}

}  // namespace sor::bindings
