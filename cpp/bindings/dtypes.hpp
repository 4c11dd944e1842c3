// numpy dtypes of the hot-path records, registered once at module import.
#pragma once

#include <pybind11/numpy.h>

#include "sor/types.hpp"

namespace sor::bindings {

// Registers the numpy dtypes of MdEvent, LevelView and Nbbo with pybind11 (call once).
inline void register_dtypes() {
  PYBIND11_NUMPY_DTYPE(sor::MdEvent, ts_event, ts_recv, sequence, order_id, related_id,
                       price_ticks, quantity, instrument_id, venue_id, kind, side, flags);
  PYBIND11_NUMPY_DTYPE(sor::LevelView, price_ticks, quantity, order_count);
  PYBIND11_NUMPY_DTYPE(sor::Nbbo, bid_price_ticks, bid_quantity, ask_price_ticks, ask_quantity,
                       bid_venue_mask, ask_venue_mask);
}

}  // namespace sor::bindings
