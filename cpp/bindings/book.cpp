#include <pybind11/stl.h>

#include <algorithm>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "errors.hpp"
#include "sor/book.hpp"
#include "sor/consolidated.hpp"

namespace py = pybind11;

namespace sor::bindings {
namespace {

template <class Book>
std::uint64_t apply_events(Book& book, const py::array& events) {
  const auto [data, count] = records_view<MdEvent>(events, "events");
  BatchResult r;
  {
    py::gil_scoped_release release;
    r = book.apply_batch(data, count);
  }
  if (r.status != Status::kOk) {
    std::uint64_t expected = 0;
    if constexpr (std::is_same_v<Book, ConsolidatedBook>) {
      const int index = book.venue_index(data[r.applied].venue_id);
      if (index >= 0) expected = book.book(static_cast<std::size_t>(index)).expected_sequence();
    } else {
      expected = book.expected_sequence();
    }
    raise_book_error(r.status, r.applied, data[r.applied], expected);
  }
  return r.applied;
}

py::array_t<LevelView> ladder_depth(const PriceLadder* ladder, std::size_t levels) {
  const std::size_t n = ladder == nullptr ? 0 : std::min(levels, ladder->size());
  py::array_t<LevelView> out(static_cast<py::ssize_t>(n));
  LevelView* rows = out.mutable_data();
  for (std::size_t d = 0; d < n; ++d) {
    const PriceLevel& level = ladder->at_depth(d);
    rows[d] = LevelView{level.price_ticks, level.quantity, level.order_count};
  }
  return out;
}

py::object best_level(const PriceLadder* ladder) {
  if (ladder == nullptr || ladder->empty()) return py::none();
  return py::make_tuple(ladder->best()->price_ticks, ladder->best()->quantity);
}

BookOptions make_options(bool allow_crossed, std::uint32_t reserve_orders,
                         std::uint32_t max_instruments) {
  BookOptions options;
  options.allow_crossed = allow_crossed;
  options.reserve_orders = reserve_orders;
  options.max_instruments = max_instruments;
  return options;
}

py::dict stats_dict(const BookStats& s) {
  py::dict d;
  d["applied"] = s.applied;
  d["rejected"] = s.rejected;
  d["duplicate_sequence"] = s.duplicate_sequence;
  d["executed_quantity"] = s.executed_quantity;
  return d;
}

// Methods both venue books share.
template <class Book, class PyClass>
void bind_venue_book_common(PyClass& cls) {
  cls.def("apply", &apply_events<Book>, py::arg("events"),
          "Applies a numpy array of md_event_dtype records in order; returns how many were "
          "applied. Raises BookIntegrityError or SequenceGapError naming the first bad event, "
          "which is not applied (events before it are).")
      .def("depth", [](const Book& b, Side side, std::size_t levels, std::uint32_t instrument) {
            return ladder_depth(b.ladder(instrument, side), levels);
          }, py::arg("side"), py::arg("levels") = 5, py::arg("instrument_id") = 0,
          "Returns the best `levels` levels of one side as a level_dtype array, best first.")
      .def("top", [](const Book& b, std::size_t levels, std::uint32_t instrument) {
            return py::make_tuple(ladder_depth(b.ladder(instrument, Side::kBuy), levels),
                                  ladder_depth(b.ladder(instrument, Side::kSell), levels));
          }, py::arg("levels") = 1, py::arg("instrument_id") = 0,
          "Returns (bids, asks), each the best `levels` levels as a level_dtype array.")
      .def("best_bid", [](const Book& b, std::uint32_t i) { return best_level(b.ladder(i, Side::kBuy)); },
           py::arg("instrument_id") = 0, "Returns (price_ticks, quantity) of the best bid, or None.")
      .def("best_ask", [](const Book& b, std::uint32_t i) { return best_level(b.ladder(i, Side::kSell)); },
           py::arg("instrument_id") = 0, "Returns (price_ticks, quantity) of the best ask, or None.")
      .def("resync", &Book::resync, py::arg("next_sequence"),
           "Accepts `next_sequence` as the next sequence number (0: whatever comes next).")
      .def_property_readonly("venue_id", &Book::venue_id, "The venue this book belongs to.")
      .def_property_readonly("expected_sequence", &Book::expected_sequence,
                             "The next expected sequence number (0 before the first).")
      .def_property_readonly("stats", [](const Book& b) { return stats_dict(b.stats()); },
                             "Counters: applied, rejected, duplicate_sequence, executed_quantity.");
}

}  // namespace

void bind_book(py::module_& m) {
  py::enum_<BookType>(m, "BookType").value("L3", BookType::kL3).value("L2", BookType::kL2);

  py::class_<L3Book> l3(m, "L3Book", "Order-by-order book of one venue (all its instruments).");
  l3.def(py::init([](std::uint8_t venue_id, bool allow_crossed, std::uint32_t reserve_orders,
                     std::uint32_t max_instruments) {
           return new L3Book(venue_id, make_options(allow_crossed, reserve_orders, max_instruments));
         }),
         py::arg("venue_id") = 0, py::kw_only(), py::arg("allow_crossed") = false,
         py::arg("reserve_orders") = 1u << 16, py::arg("max_instruments") = 1u << 20);
  bind_venue_book_common<L3Book>(l3);
  l3.def("order", [](const L3Book& b, std::uint64_t order_id) -> py::object {
          OrderView v{};
          if (!b.find_order(order_id, v)) return py::none();
          py::dict d;
          d["order_id"] = v.order_id;
          d["instrument_id"] = v.instrument_id;
          d["side"] = v.side;
          d["price_ticks"] = v.price_ticks;
          d["quantity"] = v.quantity;
          d["orders_ahead"] = v.orders_ahead;
          d["quantity_ahead"] = v.quantity_ahead;
          return d;
        }, py::arg("order_id"),
        "Returns the order with its queue position (orders_ahead, quantity_ahead), or None.")
      .def("orders_at", [](const L3Book& b, Side side, std::int64_t price, std::uint32_t instrument) {
            const PriceLadder* ladder = b.ladder(instrument, side);
            const PriceLevel* level = ladder != nullptr ? ladder->find(price) : nullptr;
            py::array_t<std::uint64_t> out(level != nullptr ? level->order_count : 0);
            b.orders_at(instrument, side, price, out.mutable_data(), static_cast<std::size_t>(out.size()));
            return out;
          }, py::arg("side"), py::arg("price_ticks"), py::arg("instrument_id") = 0,
          "Returns the order ids resting at a price, in time priority.")
      .def_property_readonly("order_count", &L3Book::order_count, "Resting orders.");

  py::class_<L2Book> l2(m, "L2Book", "Price-level book of one venue, fed by LEVEL events.");
  l2.def(py::init([](std::uint8_t venue_id, bool allow_crossed, std::uint32_t max_instruments) {
           return new L2Book(venue_id, make_options(allow_crossed, 0, max_instruments));
         }),
         py::arg("venue_id") = 0, py::kw_only(), py::arg("allow_crossed") = false,
         py::arg("max_instruments") = 1u << 20);
  bind_venue_book_common<L2Book>(l2);

  py::class_<VenueSpec>(m, "VenueSpec", "One venue of a consolidated book.")
      .def(py::init([](std::uint8_t venue_id, BookType book_type, bool lit) {
             return VenueSpec{venue_id, book_type, lit};
           }),
           py::arg("venue_id"), py::arg("book_type") = BookType::kL3, py::arg("lit") = true)
      .def_readonly("venue_id", &VenueSpec::venue_id)
      .def_readonly("book_type", &VenueSpec::book_type)
      .def_readonly("lit", &VenueSpec::lit);

  py::class_<Nbbo>(m, "Nbbo", "National best bid and offer across lit venues.")
      .def_readonly("bid_price_ticks", &Nbbo::bid_price_ticks)
      .def_readonly("bid_quantity", &Nbbo::bid_quantity)
      .def_readonly("ask_price_ticks", &Nbbo::ask_price_ticks)
      .def_readonly("ask_quantity", &Nbbo::ask_quantity)
      .def_readonly("bid_venue_mask", &Nbbo::bid_venue_mask)
      .def_readonly("ask_venue_mask", &Nbbo::ask_venue_mask)
      .def("__repr__", [](const Nbbo& n) {
        return "Nbbo(bid=" + std::to_string(n.bid_quantity) + "@" +
               std::to_string(n.bid_price_ticks) + ", ask=" + std::to_string(n.ask_quantity) +
               "@" + std::to_string(n.ask_price_ticks) + ")";
      });

  py::class_<ConsolidatedBook>(m, "ConsolidatedBook",
                               "One book per venue, with NBBO, depth by venue and protected quotes.")
      .def(py::init([](const std::vector<VenueSpec>& venues, bool allow_crossed,
                       std::uint32_t reserve_orders, std::uint32_t max_instruments) {
             const std::string problem = ConsolidatedBook::validate_venues(venues);
             if (!problem.empty()) raise_usage_error(problem);
             return new ConsolidatedBook(
                 venues, make_options(allow_crossed, reserve_orders, max_instruments));
           }),
           py::arg("venues"), py::kw_only(), py::arg("allow_crossed") = false,
           py::arg("reserve_orders") = 1u << 16, py::arg("max_instruments") = 1u << 20)
      .def("apply", &apply_events<ConsolidatedBook>, py::arg("events"),
           "Applies events to their venues' books in order; returns how many were applied.")
      .def("nbbo", &ConsolidatedBook::nbbo, py::arg("instrument_id") = 0,
           "Returns the NBBO of an instrument; venue masks have bit k for venue position k.")
      .def("depth", [](const ConsolidatedBook& c, Side side, std::size_t levels,
                       std::uint32_t instrument, bool include_dark) {
             const std::size_t venues = c.venue_count();
             std::vector<std::int64_t> price(levels), quantity(levels), by_venue(levels * venues);
             const std::size_t n = c.depth(instrument, side, levels, price.data(), quantity.data(),
                                           by_venue.data(), include_dark);
             const auto rows = static_cast<py::ssize_t>(n);
             py::dict d;
             d["price_ticks"] = py::array_t<std::int64_t>(rows, price.data());
             d["quantity"] = py::array_t<std::int64_t>(rows, quantity.data());
             d["venue_quantity"] = py::array_t<std::int64_t>(
                 std::vector<py::ssize_t>{rows, static_cast<py::ssize_t>(venues)}, by_venue.data());
             return d;
           },
           py::arg("side"), py::arg("levels") = 5, py::arg("instrument_id") = 0,
           py::arg("include_dark") = false,
           "Returns {price_ticks, quantity, venue_quantity[level, venue position]} for the best "
           "`levels` consolidated levels of one side, best first.")
      .def("protected_quotes", [](const ConsolidatedBook& c, std::uint32_t instrument) {
             std::vector<ProtectedQuote> quotes(c.venue_count());
             const std::size_t n = c.protected_quotes(instrument, quotes.data(), quotes.size());
             return records_copy(quotes.data(), n);
           },
           py::arg("instrument_id") = 0,
           "Returns the best displayed bid and offer of each lit venue (protected_quote_dtype).")
      .def("venue_book", [](const ConsolidatedBook& c, std::uint8_t venue_id) -> py::object {
             const int index = c.venue_index(venue_id);
             if (index < 0) raise_usage_error("venue " + std::to_string(venue_id) + " is not in this book");
             const auto i = static_cast<std::size_t>(index);
             if (c.l3(i) != nullptr) return py::cast(c.l3(i), py::return_value_policy::reference);
             return py::cast(c.l2(i), py::return_value_policy::reference);
           },
           py::arg("venue_id"), py::keep_alive<0, 1>(),
           "Returns the venue's own L3Book or L2Book (read it; apply through this book).")
      .def_property_readonly("venues", [](const ConsolidatedBook& c) {
             std::vector<VenueSpec> out;
             for (std::size_t i = 0; i < c.venue_count(); ++i) out.push_back(c.venue(i));
             return out;
           }, "The venues, in position order (the order venue masks and columns use).");
}

}  // namespace sor::bindings
