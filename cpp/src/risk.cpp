#include "sor/risk.hpp"

#include <cmath>
#include <limits>

namespace sor {
namespace {

std::int64_t round_half_away(double value) noexcept {
  if (std::isnan(value)) return 0;
  if (!(std::fabs(value) < 9.0e18)) {
    return value > 0 ? std::numeric_limits<std::int64_t>::max()
                     : std::numeric_limits<std::int64_t>::min();
  }
  return std::llround(value);
}

RiskVerdict refuse(RejectReason reason, std::int64_t measured = 0, std::int64_t limit = 0) noexcept {
  return RiskVerdict{reason, measured, limit};
}

// The position after `quantity` more on `side`, counting the open same-side shares.
std::int64_t position_after(Side side, std::int64_t position, std::int64_t open_same,
                            std::int64_t quantity) noexcept {
  const std::int64_t after = side == Side::kBuy ? position + open_same + quantity
                                                : position - open_same - quantity;
  return after < 0 ? -after : after;
}

// The shares a REDUCING order may still trade on `side`: the position it reduces.
std::int64_t reducible(Side side, std::int64_t position) noexcept {
  if (side == Side::kBuy) return position < 0 ? -position : 0;
  return position > 0 ? position : 0;
}

}  // namespace

std::int64_t usd_cents(double usd) noexcept { return round_half_away(usd * 100.0); }

std::int64_t bps_hundredths(double bps) noexcept { return round_half_away(bps * 100.0); }

bool instrument_restricted(const EngineParams& params, std::uint32_t instrument_id) noexcept {
  return instrument_id < kMaxRiskInstruments &&
         ((params.restricted_instruments[instrument_id / 64] >> (instrument_id % 64)) & 1U);
}

bool account_configured(const EngineParams& params, std::uint32_t account_id) noexcept {
  return account_id < kMaxAccounts && ((params.account_enabled_mask >> account_id) & 1U);
}

bool reason_stops_parent(RejectReason reason) noexcept {
  return reason == RejectReason::kRestricted || reason == RejectReason::kCreditLimit ||
         reason == RejectReason::kPositionLimit || reason == RejectReason::kUnknownAccount;
}

RiskVerdict check_collar(const EngineParams& params, Side side, std::int64_t price_ticks,
                         std::int64_t reference_price_ticks) noexcept {
  const double collar = params.reference_collar_bps;
  if (!(collar > 0) || price_ticks <= 0 || reference_price_ticks <= 0) return {};
  const double deviation_bps =
      (static_cast<double>(price_ticks) / static_cast<double>(reference_price_ticks) - 1.0) * 1e4;
  const double aggressive_bps = side == Side::kBuy ? deviation_bps : -deviation_bps;
  if (aggressive_bps > collar) {
    return refuse(RejectReason::kReferenceCollar, bps_hundredths(aggressive_bps),
                  bps_hundredths(collar));
  }
  return {};
}

RiskVerdict check_child(const ChildRiskInput& in, const EngineParams& p) noexcept {
  if (in.risk_state == RiskState::kHalted) return refuse(RejectReason::kHalted);
  if (in.instrument_id >= kMaxRiskInstruments) return refuse(RejectReason::kInvalidInstrument);
  if (!account_configured(p, in.account_id)) return refuse(RejectReason::kUnknownAccount);
  if (in.risk_state == RiskState::kReducing) {
    const std::int64_t allowed = reducible(in.side, in.position_shares);
    if (in.open_same_side_shares + in.quantity > allowed) {
      return refuse(RejectReason::kReducing, in.open_same_side_shares + in.quantity, allowed);
    }
  }
  if (in.venue_id >= kMaxEngineVenues || !((p.enabled_venue_mask >> in.venue_id) & 1U)) {
    return refuse(RejectReason::kVenueDisabled);
  }
  if (instrument_restricted(p, in.instrument_id)) return refuse(RejectReason::kRestricted);
  if (in.quantity > p.max_order_quantity_shares) {
    return refuse(RejectReason::kMaxOrderQuantity, in.quantity, p.max_order_quantity_shares);
  }
  std::int64_t price = in.price_ticks;
  if (price <= 0) {  // an unlimited midpoint peg: valued and banded at the mid
    if (in.bid_price_ticks <= 0 || in.ask_price_ticks <= in.bid_price_ticks) {
      return refuse(RejectReason::kPriceBand);
    }
    price = (in.bid_price_ticks + in.ask_price_ticks) / 2;
  }
  const double notional = static_cast<double>(price) * p.price_tick_usd *
                          static_cast<double>(in.quantity);
  if (notional > p.max_order_notional_usd) {
    return refuse(RejectReason::kMaxOrderNotional, usd_cents(notional),
                  usd_cents(p.max_order_notional_usd));
  }
  if (in.gross_notional_usd + notional > p.max_gross_notional_usd) {
    return refuse(RejectReason::kGrossNotional, usd_cents(in.gross_notional_usd + notional),
                  usd_cents(p.max_gross_notional_usd));
  }
  if (in.bid_price_ticks > 0 && in.ask_price_ticks > 0) {
    const double mid = 0.5 * static_cast<double>(in.bid_price_ticks + in.ask_price_ticks);
    const double away_bps = std::fabs(static_cast<double>(price) - mid) * 10'000.0 / mid;
    if (away_bps > p.price_band_bps) {
      return refuse(RejectReason::kPriceBand, bps_hundredths(away_bps),
                    bps_hundredths(p.price_band_bps));
    }
  }
  if (const RiskVerdict v = check_collar(p, in.side, price, in.reference_price_ticks);
      v.reason != RejectReason::kNone) {
    return v;
  }
  const std::int64_t open_limit = p.max_open_orders < kMaxInFlightChildren ? p.max_open_orders
                                                                           : kMaxInFlightChildren;
  if (in.open_orders >= open_limit) {
    return refuse(RejectReason::kMaxOpenOrders, in.open_orders + 1, open_limit);
  }
  if (in.order_tokens < 1.0) {
    return refuse(RejectReason::kOrderRate,
                  p.max_orders_per_second - static_cast<std::int64_t>(std::floor(in.order_tokens)) + 1,
                  p.max_orders_per_second);
  }
  if (in.message_tokens < 1.0) {
    return refuse(RejectReason::kMessageRate,
                  p.max_messages_per_second -
                      static_cast<std::int64_t>(std::floor(in.message_tokens)) + 1,
                  p.max_messages_per_second);
  }
  if (p.max_participation_rate > 0) {
    const auto allowed =
        static_cast<std::int64_t>(std::floor(p.max_participation_rate *
                                             static_cast<double>(in.market_volume_shares))) +
        p.participation_allowance_shares;
    const std::int64_t traded = in.parent_traded_shares + in.quantity;
    if (traded > allowed) return refuse(RejectReason::kParticipation, traded, allowed);
  }
  const double used = in.account_filled_notional_usd + in.account_open_notional_usd + notional;
  const double credit_limit = p.account_credit_limit_usd[in.account_id];
  if (used > credit_limit) {
    return refuse(RejectReason::kCreditLimit, usd_cents(used), usd_cents(credit_limit));
  }
  const std::int64_t magnitude =
      position_after(in.side, in.position_shares, in.open_same_side_shares, in.quantity);
  if (magnitude > p.account_max_position_shares[in.account_id]) {
    return refuse(RejectReason::kPositionLimit, magnitude,
                  p.account_max_position_shares[in.account_id]);
  }
  if (in.model_refused) return refuse(RejectReason::kModelGuard);
  return {};
}

RiskVerdict check_parent(const ParentRiskInput& in, const EngineParams& p) noexcept {
  if (in.instrument_id >= kMaxRiskInstruments) return refuse(RejectReason::kInvalidInstrument);
  if (!account_configured(p, in.account_id)) return refuse(RejectReason::kUnknownAccount);
  if (in.risk_state == RiskState::kHalted) return refuse(RejectReason::kHalted);
  if (instrument_restricted(p, in.instrument_id)) return refuse(RejectReason::kRestricted);
  if (in.duplicate_parent) return refuse(RejectReason::kDuplicateParent);
  if (in.duplicate_client_order) return refuse(RejectReason::kDuplicateClientOrderId);
  if (in.quantity > p.max_parent_quantity_shares) {
    return refuse(RejectReason::kMaxParentQuantity, in.quantity, p.max_parent_quantity_shares);
  }
  if (in.notional_usd > p.max_parent_notional_usd) {
    return refuse(RejectReason::kMaxParentNotional, usd_cents(in.notional_usd),
                  usd_cents(p.max_parent_notional_usd));
  }
  if (const RiskVerdict v = check_collar(p, in.side, in.limit_price_ticks, in.reference_price_ticks);
      v.reason != RejectReason::kNone) {
    return v;
  }
  if (in.risk_state == RiskState::kReducing) {
    const std::int64_t allowed = reducible(in.side, in.position_shares);
    if (in.quantity > allowed) return refuse(RejectReason::kReducing, in.quantity, allowed);
  }
  const double used = in.account_filled_notional_usd + in.account_open_notional_usd + in.notional_usd;
  const double credit_limit = p.account_credit_limit_usd[in.account_id];
  if (used > credit_limit) {
    return refuse(RejectReason::kCreditLimit, usd_cents(used), usd_cents(credit_limit));
  }
  const std::int64_t magnitude =
      position_after(in.side, in.position_shares, in.open_same_side_shares, in.quantity);
  if (magnitude > p.account_max_position_shares[in.account_id]) {
    return refuse(RejectReason::kPositionLimit, magnitude,
                  p.account_max_position_shares[in.account_id]);
  }
  if (in.client_orders_full) {
    return refuse(RejectReason::kCapacity, in.client_orders_count, in.client_orders_limit);
  }
  return {};
}

}  // namespace sor
