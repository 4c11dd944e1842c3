#include "sor/features.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

namespace sor {
namespace {

constexpr std::int64_t kNsPerS = 1'000'000'000;
constexpr std::int64_t kFlowWindowNs[3] = {1 * kNsPerS, 10 * kNsPerS, 60 * kNsPerS};
constexpr std::int64_t kVol5mNs = 300 * kNsPerS;
constexpr std::int64_t kVol30mNs = 1'800 * kNsPerS;
// A GARCH gap longer than this many intervals has converged to omega / (1 - beta) anyway; the
// cap bounds the work of one call after a very long silence.
constexpr std::int64_t kMaxGarchSteps = 10'000;
constexpr double kBpsPerUnit = 1e4;

using FI = FeatureIndex;

constexpr FeatureInfo kSchema[] = {
    {FI::kOrderSide, "order.side", "sign", "+1 for a buy parent order, -1 for a sell."},
    {FI::kOrderQuantityRemainingFraction, "order.quantity_remaining_fraction", "fraction",
     "remaining_quantity / parent_quantity."},
    {FI::kOrderTimeRemainingFraction, "order.time_remaining_fraction", "fraction",
     "(end_ns - now_ns) / (end_ns - start_ns), clipped to [0, 1]."},
    {FI::kOrderParentAdvFraction, "order.parent_adv_fraction", "fraction of ADV",
     "parent_quantity / average daily volume (set_adv, else default_adv_shares)."},
    {FI::kOrderMidMoveSinceArrivalBps, "order.mid_move_since_arrival_bps", "bps",
     "(NBBO mid - arrival mid) / arrival mid in bps, signed so > 0 is against us (up for a "
     "buy); 0 when the NBBO is not two-sided or the arrival mid is 0."},
    {FI::kChildOrderType, "child.order_type", "category",
     "0 take (IOC), 1 post-only, 2 midpoint peg."},
    {FI::kChildQuantityShares, "child.quantity_shares", "shares", "Child order quantity."},
    {FI::kChildSizeBucket, "child.size_bucket", "category",
     "0: <= 100, 1: <= 500, 2: <= 2000, 3: <= 10000, 4: more shares."},
    {FI::kChildAdvFraction, "child.adv_fraction", "fraction of ADV",
     "child quantity / average daily volume."},
    {FI::kChildPriceOffsetTicks, "child.price_offset_ticks", "ticks",
     "Limit price minus the NBBO near touch, positive toward the far side (price - bid for a "
     "buy, ask - price for a sell). A 0 price means the type default: far touch (take), near "
     "touch (post), NBBO mid (midpoint). 0 when the near touch, or the far touch or mid a "
     "default needs, is missing."},
    {FI::kChildFeeBps, "child.fee_bps", "bps",
     "The venue's fee for this order type (taker, maker, midpoint) per share over the "
     "reference mid in USD, in bps; negative is a rebate. The reference mid is the NBBO mid, "
     "else the arrival mid; 0 when neither exists."},
    {FI::kNbboTwoSided, "nbbo.two_sided", "flag",
     "1 when the lit venues show both a bid and an ask, else 0."},
    {FI::kNbboSpreadTicks, "nbbo.spread_ticks", "ticks",
     "NBBO ask - bid in price ticks (negative when crossed across venues); 0 when not "
     "two-sided."},
    {FI::kNbboSpreadBps, "nbbo.spread_bps", "bps",
     "NBBO (ask - bid) / mid in bps; 0 when not two-sided."},
    {FI::kNbboImbalanceTop, "nbbo.imbalance_top", "fraction",
     "(near - far) / (near + far) of the shares at the NBBO, all lit venues; 0 when both are "
     "0 (a one-sided book gives +1 or -1)."},
    {FI::kBookImbalanceDepth, "book.imbalance_depth", "fraction",
     "Like nbbo.imbalance_top over the best 5 consolidated lit levels per side, level k "
     "weighted 1/k; 0 when the book is empty."},
    {FI::kBookNearDepth1, "book.near_depth_1", "shares",
     "Shares at the best consolidated near level (lit venues); 0 when absent."},
    {FI::kBookNearDepth2, "book.near_depth_2", "shares",
     "Shares at the 2nd best consolidated near level; 0 when absent."},
    {FI::kBookNearDepth3, "book.near_depth_3", "shares",
     "Shares at the 3rd best consolidated near level; 0 when absent."},
    {FI::kBookNearDepth4, "book.near_depth_4", "shares",
     "Shares at the 4th best consolidated near level; 0 when absent."},
    {FI::kBookNearDepth5, "book.near_depth_5", "shares",
     "Shares at the 5th best consolidated near level; 0 when absent."},
    {FI::kBookFarDepth1, "book.far_depth_1", "shares",
     "Shares at the best consolidated far level (lit venues); 0 when absent."},
    {FI::kBookFarDepth2, "book.far_depth_2", "shares",
     "Shares at the 2nd best consolidated far level; 0 when absent."},
    {FI::kBookFarDepth3, "book.far_depth_3", "shares",
     "Shares at the 3rd best consolidated far level; 0 when absent."},
    {FI::kBookFarDepth4, "book.far_depth_4", "shares",
     "Shares at the 4th best consolidated far level; 0 when absent."},
    {FI::kBookFarDepth5, "book.far_depth_5", "shares",
     "Shares at the 5th best consolidated far level; 0 when absent."},
    {FI::kFlowImbalance1s, "flow.imbalance_1s", "fraction",
     "(our-side - other-side aggressor shares) / their sum over printable executions and "
     "trade prints of every venue (dark included) in the 1 s window; > 0 means aggressors on "
     "our side (competition). Aggressor = opposite of the printed (resting) side; prints with "
     "no side count in volume only. 0 with no signed volume."},
    {FI::kFlowImbalance10s, "flow.imbalance_10s", "fraction",
     "As flow.imbalance_1s over the 10 s window."},
    {FI::kFlowImbalance60s, "flow.imbalance_60s", "fraction",
     "As flow.imbalance_1s over the 60 s window."},
    {FI::kFlowVolume60sShares, "flow.volume_60s_shares", "shares",
     "Printed shares of every venue (dark and side-less included) in the 60 s window."},
    {FI::kVolRealized5mBps, "vol.realized_5m_bps", "bps",
     "sqrt of the sum of squared log returns of the NBBO mid sampled on the vol grid (1 s) "
     "over the last 5 minutes, in bps. A sample without a two-sided NBBO adds a 0 return; 0 "
     "before two valid samples."},
    {FI::kVolRealized30mBps, "vol.realized_30m_bps", "bps",
     "As vol.realized_5m_bps over the last 30 minutes."},
    {FI::kVolGarchBps, "vol.garch_bps", "bps",
     "GARCH(1,1) one-step-ahead sigma of the next GARCH-interval mid log return in bps, the "
     "recursion stepped at each interval boundary; sqrt(initial variance) before the first "
     "boundary; 0 when not configured."},
    {FI::kVolImpliedAnnual, "vol.implied_annual", "fraction per sqrt(year)",
     "Implied volatility set through the API; 0 when not supplied."},
    {FI::kVolImpliedAvailable, "vol.implied_available", "flag",
     "1 when an implied volatility was supplied, else 0."},
    {FI::kVenueIsDark, "venue.is_dark", "flag", "1 for a dark venue, 0 for a lit one."},
    {FI::kVenueSpreadTicks, "venue.spread_ticks", "ticks",
     "The venue's own ask - bid in price ticks; 0 when its book is not two-sided or it is "
     "dark."},
    {FI::kVenueAtNbboNear, "venue.at_nbbo_near", "flag",
     "1 when the venue's best near price equals the NBBO near price, else 0 (0 when dark)."},
    {FI::kVenueAtNbboFar, "venue.at_nbbo_far", "flag",
     "1 when the venue's best far price equals the NBBO far price, else 0 (0 when dark)."},
    {FI::kVenueNearTouchShares, "venue.near_touch_shares", "shares",
     "Shares at the venue's best near level; 0 when absent or dark."},
    {FI::kVenueFarTouchShares, "venue.far_touch_shares", "shares",
     "Shares at the venue's best far level; 0 when absent or dark."},
    {FI::kVenueImbalanceTop, "venue.imbalance_top", "fraction",
     "(near - far) / (near + far) of the venue's touch sizes; 0 when both are 0."},
    {FI::kVenueNearDepth5Shares, "venue.near_depth5_shares", "shares",
     "Shares in the venue's best 5 near levels; 0 when dark."},
    {FI::kVenueFarDepth5Shares, "venue.far_depth5_shares", "shares",
     "Shares in the venue's best 5 far levels; 0 when dark."},
    {FI::kVenueFlowImbalance10s, "venue.flow_imbalance_10s", "fraction",
     "As flow.imbalance_10s over this venue's prints only."},
    {FI::kVenueVolume60sShares, "venue.volume_60s_shares", "shares",
     "This venue's printed shares in the 60 s window."},
    {FI::kVenueVolumeShare60s, "venue.volume_share_60s", "fraction",
     "venue.volume_60s_shares / flow.volume_60s_shares; 0 when no volume."},
    {FI::kVenueFillRate, "venue.fill_rate", "fraction",
     "Filled fraction of our child orders on this venue with this side, size bucket and order "
     "type: (sum d^age * filled/quantity + prior * prior_weight) / (sum d^age + prior_weight), "
     "d = 0.5^(1/half_life_orders); the prior with no history."},
    {FI::kVenueLatencyUs, "venue.latency_us", "us",
     "EWMA of measured order-to-ack latencies, starting from the configured latency."},
    {FI::kVenueMakerFeeBps, "venue.maker_fee_bps", "bps",
     "Maker fee over the reference mid in bps (as child.fee_bps); negative is a rebate."},
    {FI::kVenueTakerFeeBps, "venue.taker_fee_bps", "bps",
     "Taker fee over the reference mid in bps (as child.fee_bps)."},
    {FI::kVenueMidpointFeeBps, "venue.midpoint_fee_bps", "bps",
     "Midpoint fee over the reference mid in bps (as child.fee_bps)."},
};

static_assert(sizeof(kSchema) / sizeof(kSchema[0]) == kFeatureCount,
              "one schema entry per FeatureIndex");

constexpr bool schema_in_order() {
  for (std::size_t i = 0; i < kFeatureCount; ++i) {
    if (static_cast<std::size_t>(kSchema[i].index) != i) return false;
  }
  return true;
}
static_assert(schema_in_order(), "schema entries must follow FeatureIndex order");

// Timestamps are epoch nanoseconds (positive), but a floor keeps the grid right for any sign.
constexpr std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

constexpr std::size_t wrap(std::int64_t index, std::int64_t length) noexcept {
  const std::int64_t r = index % length;
  return static_cast<std::size_t>(r < 0 ? r + length : r);
}

bool finite_at_least(double value, double minimum) noexcept {
  return std::isfinite(value) && value >= minimum;
}

std::int64_t best_price(const PriceLadder* ladder) noexcept {
  if (ladder == nullptr || ladder->empty()) return 0;
  return ladder->best()->price_ticks;
}

double ratio_or_zero(double numerator, double denominator) noexcept {
  return denominator != 0.0 ? numerator / denominator : 0.0;
}

Side opposite(Side side) noexcept { return side == Side::kBuy ? Side::kSell : Side::kBuy; }

}  // namespace

const FeatureInfo* feature_schema() noexcept { return kSchema; }

const char* validate(const FeatureOptions& o) noexcept {
  if (o.venues.empty()) return "venues: at least one venue is needed";
  if (o.venues.size() > ConsolidatedBook::kMaxVenues) return "venues: at most 64 venues";
  bool seen[256] = {};
  bool any_lit = false;
  for (const FeatureVenueSpec& v : o.venues) {
    if (seen[v.venue_id]) return "venues: venue ids must be distinct";
    seen[v.venue_id] = true;
    any_lit = any_lit || v.lit;
    if (v.book_type != BookType::kL3 && v.book_type != BookType::kL2) {
      return "venues: book_type must be L3 or L2";
    }
    for (double fee : {v.maker_fee_usd_per_share, v.taker_fee_usd_per_share,
                       v.midpoint_fee_usd_per_share}) {
      if (!std::isfinite(fee) || std::fabs(fee) > 0.01) {
        return "venues: fees must be finite and within +-0.01 USD per share";
      }
    }
    if (v.latency_ns < 0 || v.latency_ns > kNsPerS) {
      return "venues: latency_ns must be between 0 and 1e9 ns";
    }
  }
  if (!any_lit) return "venues: at least one venue must be lit (the NBBO needs one)";
  if (o.max_instruments == 0 || o.max_instruments > (1u << 20)) {
    return "max_instruments must be between 1 and 1048576";
  }
  if (!(std::isfinite(o.price_tick_usd) && o.price_tick_usd > 0)) {
    return "price_tick_usd must be a finite number > 0";
  }
  if (o.flow_bucket_ns < 10'000'000 || o.flow_bucket_ns > kNsPerS ||
      kNsPerS % o.flow_bucket_ns != 0) {
    return "flow_bucket_ns must divide 1 s evenly and be at least 10 ms";
  }
  if (o.vol_sample_interval_ns < 100'000'000 || o.vol_sample_interval_ns > kVol5mNs ||
      kVol5mNs % o.vol_sample_interval_ns != 0) {
    return "vol_sample_interval_ns must divide 300 s evenly and be at least 100 ms";
  }
  if (!(std::isfinite(o.default_adv_shares) && o.default_adv_shares > 0)) {
    return "default_adv_shares must be a finite number > 0";
  }
  if (!(std::isfinite(o.fill_rate_prior) && o.fill_rate_prior >= 0 && o.fill_rate_prior <= 1)) {
    return "fill_rate_prior must be between 0 and 1";
  }
  if (!finite_at_least(o.fill_rate_prior_weight_orders, 0.0)) {
    return "fill_rate_prior_weight_orders must be a finite number >= 0";
  }
  if (!(std::isfinite(o.fill_rate_half_life_orders) && o.fill_rate_half_life_orders > 0)) {
    return "fill_rate_half_life_orders must be a finite number > 0";
  }
  if (!(std::isfinite(o.latency_ewma_weight) && o.latency_ewma_weight > 0 &&
        o.latency_ewma_weight <= 1)) {
    return "latency_ewma_weight must be in (0, 1]";
  }
  const GarchParams& g = o.garch;
  if (!finite_at_least(g.omega_bps2, 0.0)) return "garch.omega_bps2 must be a finite number >= 0";
  if (!finite_at_least(g.alpha, 0.0)) return "garch.alpha must be a finite number >= 0";
  if (!finite_at_least(g.beta, 0.0)) return "garch.beta must be a finite number >= 0";
  if (g.alpha + g.beta >= 1.0) return "garch.alpha + garch.beta must be < 1 (stationary)";
  if (!finite_at_least(g.initial_variance_bps2, 0.0)) {
    return "garch.initial_variance_bps2 must be a finite number >= 0";
  }
  if (g.sample_interval_ns <= 0 || g.sample_interval_ns % o.vol_sample_interval_ns != 0) {
    return "garch.sample_interval_ns must be a positive multiple of vol_sample_interval_ns";
  }
  if (feature_state_bytes(o) > (std::size_t{1} << 30)) {
    return "max_instruments x venues needs more than 1 GiB of feature state; lower it";
  }
  return "";
}

std::size_t feature_state_bytes(const FeatureOptions& o) noexcept {
  if (o.flow_bucket_ns <= 0 || o.vol_sample_interval_ns <= 0) return 0;
  const std::size_t instruments = o.max_instruments;
  const std::size_t venues = o.venues.size();
  const auto buckets = static_cast<std::size_t>(kFlowWindowNs[2] / o.flow_bucket_ns);
  const auto samples = static_cast<std::size_t>(kVol30mNs / o.vol_sample_interval_ns);
  const std::size_t per_instrument =
      buckets * (venues + 1) * 24 + samples * 8 + venues * (24 + 16) + 160;
  return instruments * per_instrument + venues * (2 * 5 * 3 * 16 + 16);
}

std::vector<VenueSpec> book_venues(const FeatureOptions& options) {
  std::vector<VenueSpec> out;
  out.reserve(options.venues.size());
  for (const FeatureVenueSpec& v : options.venues) out.push_back({v.venue_id, v.book_type, v.lit});
  return out;
}

// --- construction ---------------------------------------------------------------------------

FeatureEngine::FeatureEngine(const FeatureOptions& options) : options_(options) {
  const char* problem = validate(options_);
  if (*problem != '\0') throw std::invalid_argument(problem);
  venue_count_ = options_.venues.size();
  std::fill(std::begin(venue_slot_), std::end(venue_slot_), -1);
  for (std::size_t v = 0; v < venue_count_; ++v) {
    venue_slot_[options_.venues[v].venue_id] = static_cast<int>(v);
  }
  for (int w = 0; w < 3; ++w) buckets_per_window_[w] = kFlowWindowNs[w] / options_.flow_bucket_ns;
  bucket_ring_ = buckets_per_window_[2];
  samples_5m_ = kVol5mNs / options_.vol_sample_interval_ns;
  samples_30m_ = kVol30mNs / options_.vol_sample_interval_ns;
  garch_every_samples_ = options_.garch.sample_interval_ns / options_.vol_sample_interval_ns;
  fill_decay_ = std::pow(0.5, 1.0 / options_.fill_rate_half_life_orders);
  const GarchParams& g = options_.garch;
  initial_garch_variance_bps2_ = g.initial_variance_bps2 > 0
                                     ? g.initial_variance_bps2
                                     : g.omega_bps2 / (1.0 - g.alpha - g.beta);

  const std::size_t instruments = options_.max_instruments;
  const auto ring = static_cast<std::size_t>(bucket_ring_);
  instruments_.assign(instruments, InstrumentState{});
  for (InstrumentState& s : instruments_) {
    s.adv_shares = options_.default_adv_shares;
    s.garch_variance_bps2 = initial_garch_variance_bps2_;
  }
  flow_ring_.assign(instruments * ring, FlowBucket{0, 0, 0});
  venue_ring_.assign(instruments * ring * venue_count_, FlowBucket{0, 0, 0});
  venue_sums_.assign(instruments * venue_count_, VenueFlowSums{0, 0, 0});
  vol_ring_.assign(instruments * static_cast<std::size_t>(samples_30m_), 0.0);
  tops_.assign(instruments * venue_count_, Top{0, 0});
  venue_state_.resize(venue_count_);
  for (std::size_t v = 0; v < venue_count_; ++v) {
    venue_state_[v].latency_ns = static_cast<double>(options_.venues[v].latency_ns);
  }
  fill_rates_.assign(venue_count_ * 2 * 5 * 3, FillRateCell{});
}

// --- per-event path -------------------------------------------------------------------------

void FeatureEngine::start(InstrumentState& s) noexcept {
  // The book held nothing of this instrument before its first event, so every earlier sample
  // boundary had no mid: they count as taken, with 0 returns (the ring starts zeroed).
  s.started = true;
  s.bucket_index = floor_div(clock_ns_, options_.flow_bucket_ns);
  s.next_bucket_ns = (s.bucket_index + 1) * options_.flow_bucket_ns;
  s.sample_index = floor_div(clock_ns_, options_.vol_sample_interval_ns);
  if (s.sample_index * options_.vol_sample_interval_ns == clock_ns_) --s.sample_index;
  s.next_sample_ns = (s.sample_index + 1) * options_.vol_sample_interval_ns;
}

double FeatureEngine::cached_mid(std::uint32_t instrument_id) const noexcept {
  const Top* tops = &tops_[static_cast<std::size_t>(instrument_id) * venue_count_];
  std::int64_t bid = 0;
  std::int64_t ask = 0;
  for (std::size_t v = 0; v < venue_count_; ++v) {
    if (!options_.venues[v].lit) continue;
    if (tops[v].bid_price_ticks > bid) bid = tops[v].bid_price_ticks;
    if (tops[v].ask_price_ticks > 0 && (ask == 0 || tops[v].ask_price_ticks < ask)) {
      ask = tops[v].ask_price_ticks;
    }
  }
  return bid > 0 && ask > 0 ? static_cast<double>(bid + ask) / 2.0 : 0.0;
}

void FeatureEngine::push_sample(std::uint32_t instrument_id, InstrumentState& s,
                                double square_bps2) noexcept {
  const std::int64_t n = ++s.sample_index;
  double* ring = &vol_ring_[static_cast<std::size_t>(instrument_id) *
                            static_cast<std::size_t>(samples_30m_)];
  double& slot = ring[wrap(n, samples_30m_)];
  const double leaving_30m = slot;  // sample n - samples_30m_
  const double leaving_5m = ring[wrap(n - samples_5m_, samples_30m_)];
  s.sum_squares_30m_bps2 += square_bps2 - leaving_30m;
  s.sum_squares_5m_bps2 += square_bps2 - leaving_5m;
  s.nonzero_30m += (square_bps2 != 0.0) - (leaving_30m != 0.0);
  s.nonzero_5m += (square_bps2 != 0.0) - (leaving_5m != 0.0);
  slot = square_bps2;
}

void FeatureEngine::take_samples(std::uint32_t instrument_id, InstrumentState& s) noexcept {
  // Called before this event touches the cached tops, so the mid is the book as of every
  // boundary crossed since the instrument's previous event.
  const std::int64_t interval = options_.vol_sample_interval_ns;
  const std::int64_t last = floor_div(clock_ns_, interval);
  const std::int64_t first = s.sample_index + 1;
  const std::int64_t pending = last - first + 1;
  const double mid = cached_mid(instrument_id);
  double square = 0.0;
  if (mid > 0 && s.last_valid_mid_ticks > 0) {
    const double r = kBpsPerUnit * std::log(mid / s.last_valid_mid_ticks);
    square = r * r;
  }
  if (mid > 0) s.last_valid_mid_ticks = mid;

  // GARCH boundaries are every garch_every_samples_ sample boundaries.
  const std::int64_t every = garch_every_samples_;
  const std::int64_t first_garch = floor_div(first + every - 1, every);
  const std::int64_t last_garch = floor_div(last, every);
  if (first_garch <= last_garch) {
    const GarchParams& g = options_.garch;
    double r2 = 0.0;
    if (mid > 0 && s.garch_last_mid_ticks > 0) {
      const double r = kBpsPerUnit * std::log(mid / s.garch_last_mid_ticks);
      r2 = r * r;
    }
    if (mid > 0) s.garch_last_mid_ticks = mid;
    double variance = g.omega_bps2 + g.alpha * r2 + g.beta * s.garch_variance_bps2;
    const std::int64_t quiet = std::min(last_garch - first_garch, kMaxGarchSteps);
    for (std::int64_t k = 0; k < quiet; ++k) variance = g.omega_bps2 + g.beta * variance;
    s.garch_variance_bps2 = variance;
  }

  if (pending > samples_30m_) {
    // Even the first pending sample is older than the longest window: all windows are zeros.
    double* ring = &vol_ring_[static_cast<std::size_t>(instrument_id) *
                              static_cast<std::size_t>(samples_30m_)];
    std::fill(ring, ring + samples_30m_, 0.0);
    s.sum_squares_5m_bps2 = s.sum_squares_30m_bps2 = 0.0;
    s.nonzero_5m = s.nonzero_30m = 0;
    s.sample_index = last;
  } else {
    push_sample(instrument_id, s, square);
    for (std::int64_t k = 1; k < pending; ++k) push_sample(instrument_id, s, 0.0);
  }
  s.next_sample_ns = (last + 1) * interval;
}

void FeatureEngine::advance_buckets(std::uint32_t instrument_id, InstrumentState& s) noexcept {
  const std::int64_t now = floor_div(clock_ns_, options_.flow_bucket_ns);
  const std::int64_t ring = bucket_ring_;
  const std::size_t base = static_cast<std::size_t>(instrument_id) * static_cast<std::size_t>(ring);
  FlowBucket* buckets = &flow_ring_[base];
  FlowBucket* venue_buckets = &venue_ring_[base * venue_count_];
  VenueFlowSums* sums = &venue_sums_[static_cast<std::size_t>(instrument_id) * venue_count_];
  if (now - s.bucket_index >= ring) {
    std::fill(buckets, buckets + ring, FlowBucket{0, 0, 0});
    std::fill(venue_buckets, venue_buckets + ring * static_cast<std::int64_t>(venue_count_),
              FlowBucket{0, 0, 0});
    std::fill(sums, sums + venue_count_, VenueFlowSums{0, 0, 0});
    for (FlowBucket& w : s.sums) w = FlowBucket{0, 0, 0};
  } else {
    const std::int64_t n10 = buckets_per_window_[1];
    for (std::int64_t j = s.bucket_index + 1; j <= now; ++j) {
      const std::size_t slot = wrap(j, ring);
      for (int w = 0; w < 2; ++w) {
        const FlowBucket& out = buckets[wrap(j - buckets_per_window_[w], ring)];
        s.sums[w].buy_shares -= out.buy_shares;
        s.sums[w].sell_shares -= out.sell_shares;
        s.sums[w].total_shares -= out.total_shares;
      }
      s.sums[2].buy_shares -= buckets[slot].buy_shares;  // slot still holds bucket j - ring
      s.sums[2].sell_shares -= buckets[slot].sell_shares;
      s.sums[2].total_shares -= buckets[slot].total_shares;
      buckets[slot] = FlowBucket{0, 0, 0};
      FlowBucket* row = venue_buckets + slot * venue_count_;
      const FlowBucket* row10 = venue_buckets + wrap(j - n10, ring) * venue_count_;
      for (std::size_t v = 0; v < venue_count_; ++v) {
        sums[v].buy_10s -= row10[v].buy_shares;
        sums[v].sell_10s -= row10[v].sell_shares;
        sums[v].total_60s -= row[v].total_shares;
        row[v] = FlowBucket{0, 0, 0};
      }
    }
  }
  s.bucket_index = now;
  s.next_bucket_ns = (now + 1) * options_.flow_bucket_ns;
}

void FeatureEngine::add_trade(std::uint32_t instrument_id, std::size_t venue, Side resting_side,
                              std::int64_t quantity, InstrumentState& s) noexcept {
  const std::size_t slot = static_cast<std::size_t>(instrument_id) *
                               static_cast<std::size_t>(bucket_ring_) +
                           wrap(s.bucket_index, bucket_ring_);
  FlowBucket& bucket = flow_ring_[slot];
  FlowBucket& venue_bucket = venue_ring_[slot * venue_count_ + venue];
  VenueFlowSums& sums = venue_sums_[static_cast<std::size_t>(instrument_id) * venue_count_ + venue];
  bucket.total_shares += quantity;
  venue_bucket.total_shares += quantity;
  sums.total_60s += quantity;
  for (FlowBucket& w : s.sums) w.total_shares += quantity;
  if (resting_side == Side::kSell) {  // a buyer took the offer
    bucket.buy_shares += quantity;
    venue_bucket.buy_shares += quantity;
    sums.buy_10s += quantity;
    for (FlowBucket& w : s.sums) w.buy_shares += quantity;
  } else if (resting_side == Side::kBuy) {
    bucket.sell_shares += quantity;
    venue_bucket.sell_shares += quantity;
    sums.sell_10s += quantity;
    for (FlowBucket& w : s.sums) w.sell_shares += quantity;
  }
}

void FeatureEngine::on_event(const MdEvent& e, const ConsolidatedBook& book) noexcept {
  const int venue = venue_slot_[e.venue_id];
  if (venue < 0 || e.instrument_id >= options_.max_instruments) return;
  const auto v = static_cast<std::size_t>(venue);
  VenueState& vs = venue_state_[v];
  if (e.sequence != 0) {
    if (e.sequence <= vs.last_sequence) return;
    vs.last_sequence = e.sequence;
  }
  if (e.ts_recv > clock_ns_) clock_ns_ = e.ts_recv;
  const std::uint32_t i = e.instrument_id;
  InstrumentState& s = instruments_[i];
  if (!s.started) start(s);
  if (clock_ns_ >= s.next_sample_ns) take_samples(i, s);
  if (clock_ns_ >= s.next_bucket_ns) advance_buckets(i, s);
  bool book_change = false;
  switch (e.kind) {
    case EventKind::kExecute:
      if (e.flags & kFlagPrintable) add_trade(i, v, e.side, e.quantity, s);
      book_change = true;
      break;
    case EventKind::kTrade:
      if (e.flags & kFlagPrintable) add_trade(i, v, e.side, e.quantity, s);
      break;
    case EventKind::kAdd:
    case EventKind::kModify:
    case EventKind::kReplace:
    case EventKind::kCancel:
    case EventKind::kDelete:
    case EventKind::kClear:
    case EventKind::kLevel:
      book_change = true;
      break;
    default:
      break;
  }
  if (book_change && options_.venues[v].lit) {
    const int index = book.venue_index(e.venue_id);
    if (index >= 0) {
      const VenueBookBase& vb = book.book(static_cast<std::size_t>(index));
      Top& top = tops_[static_cast<std::size_t>(i) * venue_count_ + v];
      top.bid_price_ticks = best_price(vb.ladder(i, Side::kBuy));
      top.ask_price_ticks = best_price(vb.ladder(i, Side::kSell));
    }
  }
  ++events_applied_;
}

// --- setters --------------------------------------------------------------------------------

FeatureEngine::FillRateCell& FeatureEngine::fill_cell(std::size_t venue, Side side,
                                                      int size_bucket,
                                                      ChildOrderType type) noexcept {
  const std::size_t side_index = side == Side::kBuy ? 0 : 1;
  return fill_rates_[((venue * 2 + side_index) * 5 + static_cast<std::size_t>(size_bucket)) * 3 +
                     static_cast<std::size_t>(type)];
}

const FeatureEngine::FillRateCell& FeatureEngine::fill_cell(std::size_t venue, Side side,
                                                            int size_bucket,
                                                            ChildOrderType type) const noexcept {
  return const_cast<FeatureEngine*>(this)->fill_cell(venue, side, size_bucket, type);
}

FeatureStatus FeatureEngine::on_child_done(std::uint8_t venue_id, Side side,
                                           ChildOrderType order_type, std::int64_t quantity,
                                           std::int64_t filled_quantity) noexcept {
  const int venue = venue_slot_[venue_id];
  if (venue < 0) return FeatureStatus::kUnknownVenue;
  if (side != Side::kBuy && side != Side::kSell) return FeatureStatus::kInvalidSide;
  if (static_cast<std::uint8_t>(order_type) > 2) return FeatureStatus::kInvalidOrderType;
  if (quantity <= 0 || filled_quantity < 0 || filled_quantity > quantity) {
    return FeatureStatus::kInvalidQuantity;
  }
  FillRateCell& cell = fill_cell(static_cast<std::size_t>(venue), side,
                                 child_size_bucket(quantity), order_type);
  cell.filled_weight = fill_decay_ * cell.filled_weight +
                       static_cast<double>(filled_quantity) / static_cast<double>(quantity);
  cell.order_weight = fill_decay_ * cell.order_weight + 1.0;
  return FeatureStatus::kOk;
}

FeatureStatus FeatureEngine::on_latency_sample(std::uint8_t venue_id,
                                               std::int64_t latency_ns) noexcept {
  const int venue = venue_slot_[venue_id];
  if (venue < 0) return FeatureStatus::kUnknownVenue;
  if (latency_ns < 0) return FeatureStatus::kInvalidValue;
  const double w = options_.latency_ewma_weight;
  double& ewma = venue_state_[static_cast<std::size_t>(venue)].latency_ns;
  ewma = (1.0 - w) * ewma + w * static_cast<double>(latency_ns);
  return FeatureStatus::kOk;
}

FeatureStatus FeatureEngine::set_adv(std::uint32_t instrument_id, double adv_shares) noexcept {
  if (instrument_id >= options_.max_instruments) return FeatureStatus::kUnknownInstrument;
  if (!(std::isfinite(adv_shares) && adv_shares > 0)) return FeatureStatus::kInvalidValue;
  instruments_[instrument_id].adv_shares = adv_shares;
  return FeatureStatus::kOk;
}

FeatureStatus FeatureEngine::set_implied_volatility(std::uint32_t instrument_id,
                                                    double annual) noexcept {
  if (instrument_id >= options_.max_instruments) return FeatureStatus::kUnknownInstrument;
  if (!finite_at_least(annual, 0.0)) return FeatureStatus::kInvalidValue;
  instruments_[instrument_id].implied_annual = annual;
  instruments_[instrument_id].implied_available = true;
  return FeatureStatus::kOk;
}

FeatureStatus FeatureEngine::clear_implied_volatility(std::uint32_t instrument_id) noexcept {
  if (instrument_id >= options_.max_instruments) return FeatureStatus::kUnknownInstrument;
  instruments_[instrument_id].implied_annual = 0.0;
  instruments_[instrument_id].implied_available = false;
  return FeatureStatus::kOk;
}

FeatureStatus FeatureEngine::reset_sequence(std::uint8_t venue_id) noexcept {
  const int venue = venue_slot_[venue_id];
  if (venue < 0) return FeatureStatus::kUnknownVenue;
  venue_state_[static_cast<std::size_t>(venue)].last_sequence = 0;
  return FeatureStatus::kOk;
}

// --- decision rows --------------------------------------------------------------------------

struct FeatureEngine::WindowView {
  FlowBucket sums[3];
  VenueFlowSums venue;
};

void FeatureEngine::flow_view(std::uint32_t instrument_id, std::size_t venue, std::int64_t t_ns,
                              WindowView& out) const noexcept {
  const InstrumentState& s = instruments_[instrument_id];
  out = WindowView{};
  if (!s.started) return;
  const std::int64_t ring = bucket_ring_;
  const std::size_t base = static_cast<std::size_t>(instrument_id) * static_cast<std::size_t>(ring);
  const FlowBucket* buckets = &flow_ring_[base];
  const FlowBucket* venue_buckets = &venue_ring_[base * venue_count_];
  const std::int64_t now = floor_div(t_ns, options_.flow_bucket_ns);
  const std::int64_t behind = now - s.bucket_index;  // buckets the state has not advanced yet
  for (int w = 0; w < 3; ++w) {
    const std::int64_t n = buckets_per_window_[w];
    if (behind >= n) continue;
    out.sums[w] = s.sums[w];
    // Buckets s.bucket_index - n + 1 .. now - n have left the window since the last event.
    for (std::int64_t j = s.bucket_index - n + 1; j <= now - n; ++j) {
      const FlowBucket& b = buckets[wrap(j, ring)];
      out.sums[w].buy_shares -= b.buy_shares;
      out.sums[w].sell_shares -= b.sell_shares;
      out.sums[w].total_shares -= b.total_shares;
    }
  }
  const VenueFlowSums& vs = venue_sums_[static_cast<std::size_t>(instrument_id) * venue_count_ + venue];
  const std::int64_t n10 = buckets_per_window_[1];
  if (behind < n10) {
    out.venue.buy_10s = vs.buy_10s;
    out.venue.sell_10s = vs.sell_10s;
    for (std::int64_t j = s.bucket_index - n10 + 1; j <= now - n10; ++j) {
      const FlowBucket& b = venue_buckets[wrap(j, ring) * venue_count_ + venue];
      out.venue.buy_10s -= b.buy_shares;
      out.venue.sell_10s -= b.sell_shares;
    }
  }
  if (behind < ring) {
    out.venue.total_60s = vs.total_60s;
    for (std::int64_t j = s.bucket_index - ring + 1; j <= now - ring; ++j) {
      out.venue.total_60s -= venue_buckets[wrap(j, ring) * venue_count_ + venue].total_shares;
    }
  }
}

void FeatureEngine::vol_view(std::uint32_t instrument_id, std::int64_t t_ns,
                             double& realized_5m_bps, double& realized_30m_bps,
                             double& garch_bps) const noexcept {
  const InstrumentState& s = instruments_[instrument_id];
  realized_5m_bps = realized_30m_bps = 0.0;
  garch_bps = std::sqrt(std::max(s.garch_variance_bps2, 0.0));
  if (!s.started) return;
  const std::int64_t last = floor_div(t_ns, options_.vol_sample_interval_ns);
  const std::int64_t pending = last - s.sample_index;
  double sum5 = s.sum_squares_5m_bps2;
  double sum30 = s.sum_squares_30m_bps2;
  std::int64_t nonzero5 = s.nonzero_5m;
  std::int64_t nonzero30 = s.nonzero_30m;
  if (pending > 0) {
    // Boundaries since the last event: the book has not changed, so they all see today's mid.
    const double mid = cached_mid(instrument_id);
    double square = 0.0;
    if (mid > 0 && s.last_valid_mid_ticks > 0) {
      const double r = kBpsPerUnit * std::log(mid / s.last_valid_mid_ticks);
      square = r * r;
    }
    const double* ring = &vol_ring_[static_cast<std::size_t>(instrument_id) *
                                    static_cast<std::size_t>(samples_30m_)];
    auto shift = [&](std::int64_t window, double& sum, std::int64_t& nonzero) {
      if (pending > window) {
        sum = 0.0;
        nonzero = 0;
        return;
      }
      for (std::int64_t j = s.sample_index - window + 1; j <= last - window; ++j) {
        const double x = ring[wrap(j, samples_30m_)];
        sum -= x;
        nonzero -= x != 0.0;
      }
      sum += square;
      nonzero += square != 0.0;
    };
    shift(samples_5m_, sum5, nonzero5);
    shift(samples_30m_, sum30, nonzero30);

    const std::int64_t every = garch_every_samples_;
    const std::int64_t first_garch = floor_div(s.sample_index + every, every);
    const std::int64_t last_garch = floor_div(last, every);
    if (first_garch <= last_garch) {
      const GarchParams& g = options_.garch;
      double r2 = 0.0;
      if (mid > 0 && s.garch_last_mid_ticks > 0) {
        const double r = kBpsPerUnit * std::log(mid / s.garch_last_mid_ticks);
        r2 = r * r;
      }
      double variance = g.omega_bps2 + g.alpha * r2 + g.beta * s.garch_variance_bps2;
      const std::int64_t quiet = std::min(last_garch - first_garch, kMaxGarchSteps);
      for (std::int64_t k = 0; k < quiet; ++k) variance = g.omega_bps2 + g.beta * variance;
      garch_bps = std::sqrt(std::max(variance, 0.0));
    }
  }
  // The running sums add and subtract; the nonzero counts make an all-zero window exactly 0.
  realized_5m_bps = nonzero5 > 0 ? std::sqrt(std::max(sum5, 0.0)) : 0.0;
  realized_30m_bps = nonzero30 > 0 ? std::sqrt(std::max(sum30, 0.0)) : 0.0;
}

FeatureStatus FeatureEngine::check(const DecisionContext& c) const noexcept {
  if (c.instrument_id >= options_.max_instruments) return FeatureStatus::kUnknownInstrument;
  if (venue_slot_[c.venue_id] < 0) return FeatureStatus::kUnknownVenue;
  if (c.side != Side::kBuy && c.side != Side::kSell) return FeatureStatus::kInvalidSide;
  if (static_cast<std::uint8_t>(c.order_type) > 2) return FeatureStatus::kInvalidOrderType;
  if (c.child_quantity <= 0 || c.parent_quantity <= 0 || c.remaining_quantity < 0 ||
      c.remaining_quantity > c.parent_quantity) {
    return FeatureStatus::kInvalidQuantity;
  }
  if (c.end_ns <= c.start_ns) return FeatureStatus::kInvalidTime;
  if (c.child_price_ticks < 0 || !finite_at_least(c.arrival_mid_ticks, 0.0)) {
    return FeatureStatus::kInvalidPrice;
  }
  return FeatureStatus::kOk;
}

FeatureStatus FeatureEngine::build_row(const DecisionContext& c, const ConsolidatedBook& book,
                                       float* out) const noexcept {
  const FeatureStatus status = check(c);
  if (status != FeatureStatus::kOk) {
    std::fill(out, out + kFeatureCount, 0.0f);
    return status;
  }
  double row[kFeatureCount] = {};
  auto set = [&row](FeatureIndex f, double value) { row[static_cast<std::size_t>(f)] = value; };

  const std::uint32_t i = c.instrument_id;
  const auto v = static_cast<std::size_t>(venue_slot_[c.venue_id]);
  const FeatureVenueSpec& spec = options_.venues[v];
  const InstrumentState& s = instruments_[i];
  const bool buy = c.side == Side::kBuy;
  const double sign = buy ? 1.0 : -1.0;
  const Side near_side = c.side;
  const Side far_side = opposite(c.side);
  const std::int64_t t = std::max(c.now_ns, clock_ns_);

  const Nbbo nbbo = book.nbbo(i);
  const bool two_sided = nbbo.bid_price_ticks > 0 && nbbo.ask_price_ticks > 0;
  const double mid = two_sided ? static_cast<double>(nbbo.bid_price_ticks + nbbo.ask_price_ticks) / 2.0 : 0.0;
  const std::int64_t near_price = buy ? nbbo.bid_price_ticks : nbbo.ask_price_ticks;
  const std::int64_t far_price = buy ? nbbo.ask_price_ticks : nbbo.bid_price_ticks;
  const double near_quantity = static_cast<double>(buy ? nbbo.bid_quantity : nbbo.ask_quantity);
  const double far_quantity = static_cast<double>(buy ? nbbo.ask_quantity : nbbo.bid_quantity);
  const double reference_mid = mid > 0 ? mid : c.arrival_mid_ticks;
  auto fee_bps = [&](double fee_usd_per_share) {
    return reference_mid > 0
               ? fee_usd_per_share / (reference_mid * options_.price_tick_usd) * kBpsPerUnit
               : 0.0;
  };

  // order
  set(FI::kOrderSide, sign);
  set(FI::kOrderQuantityRemainingFraction,
      static_cast<double>(c.remaining_quantity) / static_cast<double>(c.parent_quantity));
  const double time_left = static_cast<double>(c.end_ns - c.now_ns) /
                           static_cast<double>(c.end_ns - c.start_ns);
  set(FI::kOrderTimeRemainingFraction, std::clamp(time_left, 0.0, 1.0));
  set(FI::kOrderParentAdvFraction, static_cast<double>(c.parent_quantity) / s.adv_shares);
  if (mid > 0 && c.arrival_mid_ticks > 0) {
    set(FI::kOrderMidMoveSinceArrivalBps,
        sign * (mid - c.arrival_mid_ticks) / c.arrival_mid_ticks * kBpsPerUnit);
  }

  // child
  set(FI::kChildOrderType, static_cast<double>(c.order_type));
  set(FI::kChildQuantityShares, static_cast<double>(c.child_quantity));
  set(FI::kChildSizeBucket, child_size_bucket(c.child_quantity));
  set(FI::kChildAdvFraction, static_cast<double>(c.child_quantity) / s.adv_shares);
  double price = 0.0;
  if (c.child_price_ticks > 0) {
    price = static_cast<double>(c.child_price_ticks);
  } else if (c.order_type == ChildOrderType::kTake) {
    price = static_cast<double>(far_price);
  } else if (c.order_type == ChildOrderType::kPost) {
    price = static_cast<double>(near_price);
  } else {
    price = mid;
  }
  if (price > 0 && near_price > 0) {
    const double near = static_cast<double>(near_price);
    set(FI::kChildPriceOffsetTicks, buy ? price - near : near - price);
  }
  const double type_fee = c.order_type == ChildOrderType::kTake ? spec.taker_fee_usd_per_share
                          : c.order_type == ChildOrderType::kPost
                              ? spec.maker_fee_usd_per_share
                              : spec.midpoint_fee_usd_per_share;
  set(FI::kChildFeeBps, fee_bps(type_fee));

  // consolidated book
  set(FI::kNbboTwoSided, two_sided ? 1.0 : 0.0);
  if (two_sided) {
    const auto spread = static_cast<double>(nbbo.ask_price_ticks - nbbo.bid_price_ticks);
    set(FI::kNbboSpreadTicks, spread);
    set(FI::kNbboSpreadBps, spread / mid * kBpsPerUnit);
  }
  set(FI::kNbboImbalanceTop,
      ratio_or_zero(near_quantity - far_quantity, near_quantity + far_quantity));
  constexpr std::size_t kLevels = 5;
  std::int64_t prices[kLevels];
  std::int64_t near_depth[kLevels] = {};
  std::int64_t far_depth[kLevels] = {};
  std::int64_t by_venue[kLevels * ConsolidatedBook::kMaxVenues];
  book.depth(i, near_side, kLevels, prices, near_depth, by_venue);
  book.depth(i, far_side, kLevels, prices, far_depth, by_venue);
  double weighted_near = 0.0;
  double weighted_far = 0.0;
  for (std::size_t k = 0; k < kLevels; ++k) {
    const double weight = 1.0 / static_cast<double>(k + 1);
    weighted_near += weight * static_cast<double>(near_depth[k]);
    weighted_far += weight * static_cast<double>(far_depth[k]);
    row[static_cast<std::size_t>(FI::kBookNearDepth1) + k] = static_cast<double>(near_depth[k]);
    row[static_cast<std::size_t>(FI::kBookFarDepth1) + k] = static_cast<double>(far_depth[k]);
  }
  set(FI::kBookImbalanceDepth,
      ratio_or_zero(weighted_near - weighted_far, weighted_near + weighted_far));

  // trade flow
  WindowView flow;
  flow_view(i, v, t, flow);
  for (int w = 0; w < 3; ++w) {
    const auto buy_shares = static_cast<double>(flow.sums[w].buy_shares);
    const auto sell_shares = static_cast<double>(flow.sums[w].sell_shares);
    row[static_cast<std::size_t>(FI::kFlowImbalance1s) + static_cast<std::size_t>(w)] =
        sign * ratio_or_zero(buy_shares - sell_shares, buy_shares + sell_shares);
  }
  const auto volume_60s = static_cast<double>(flow.sums[2].total_shares);
  set(FI::kFlowVolume60sShares, volume_60s);

  // volatility
  double realized_5m = 0.0;
  double realized_30m = 0.0;
  double garch = 0.0;
  vol_view(i, t, realized_5m, realized_30m, garch);
  set(FI::kVolRealized5mBps, realized_5m);
  set(FI::kVolRealized30mBps, realized_30m);
  set(FI::kVolGarchBps, garch);
  if (s.implied_available) {
    set(FI::kVolImpliedAnnual, s.implied_annual);
    set(FI::kVolImpliedAvailable, 1.0);
  }

  // candidate venue
  set(FI::kVenueIsDark, spec.lit ? 0.0 : 1.0);
  const int book_index = book.venue_index(c.venue_id);
  if (spec.lit && book_index >= 0) {
    const VenueBookBase& vb = book.book(static_cast<std::size_t>(book_index));
    const PriceLadder* near_ladder = vb.ladder(i, near_side);
    const PriceLadder* far_ladder = vb.ladder(i, far_side);
    auto touch = [](const PriceLadder* l, std::int64_t& p, std::int64_t& q) {
      p = q = 0;
      if (l != nullptr && !l->empty()) {
        p = l->best()->price_ticks;
        q = l->best()->quantity;
      }
    };
    auto depth5 = [](const PriceLadder* l) {
      std::int64_t total = 0;
      if (l == nullptr) return total;
      const std::size_t n = std::min<std::size_t>(5, l->size());
      for (std::size_t k = 0; k < n; ++k) total += l->at_depth(k).quantity;
      return total;
    };
    std::int64_t venue_near_price, venue_near_quantity, venue_far_price, venue_far_quantity;
    touch(near_ladder, venue_near_price, venue_near_quantity);
    touch(far_ladder, venue_far_price, venue_far_quantity);
    if (venue_near_price > 0 && venue_far_price > 0) {
      set(FI::kVenueSpreadTicks,
          static_cast<double>(buy ? venue_far_price - venue_near_price
                                  : venue_near_price - venue_far_price));
    }
    set(FI::kVenueAtNbboNear, venue_near_price > 0 && venue_near_price == near_price ? 1.0 : 0.0);
    set(FI::kVenueAtNbboFar, venue_far_price > 0 && venue_far_price == far_price ? 1.0 : 0.0);
    const auto vn = static_cast<double>(venue_near_quantity);
    const auto vf = static_cast<double>(venue_far_quantity);
    set(FI::kVenueNearTouchShares, vn);
    set(FI::kVenueFarTouchShares, vf);
    set(FI::kVenueImbalanceTop, ratio_or_zero(vn - vf, vn + vf));
    set(FI::kVenueNearDepth5Shares, static_cast<double>(depth5(near_ladder)));
    set(FI::kVenueFarDepth5Shares, static_cast<double>(depth5(far_ladder)));
  }
  const auto venue_buy = static_cast<double>(flow.venue.buy_10s);
  const auto venue_sell = static_cast<double>(flow.venue.sell_10s);
  set(FI::kVenueFlowImbalance10s,
      sign * ratio_or_zero(venue_buy - venue_sell, venue_buy + venue_sell));
  const auto venue_volume = static_cast<double>(flow.venue.total_60s);
  set(FI::kVenueVolume60sShares, venue_volume);
  set(FI::kVenueVolumeShare60s, ratio_or_zero(venue_volume, volume_60s));
  const FillRateCell& cell = fill_cell(v, c.side, child_size_bucket(c.child_quantity), c.order_type);
  const double prior_weight = options_.fill_rate_prior_weight_orders;
  const double weight = cell.order_weight + prior_weight;
  set(FI::kVenueFillRate,
      weight > 0 ? (cell.filled_weight + options_.fill_rate_prior * prior_weight) / weight
                 : options_.fill_rate_prior);
  set(FI::kVenueLatencyUs, venue_state_[v].latency_ns / 1'000.0);
  set(FI::kVenueMakerFeeBps, fee_bps(spec.maker_fee_usd_per_share));
  set(FI::kVenueTakerFeeBps, fee_bps(spec.taker_fee_usd_per_share));
  set(FI::kVenueMidpointFeeBps, fee_bps(spec.midpoint_fee_usd_per_share));

  for (std::size_t k = 0; k < kFeatureCount; ++k) {
    const auto value = static_cast<float>(row[k]);
    // Defence in depth: every formula above has a finite fallback; a model must never see NaN.
    // Adding +0 turns a -0 (a sign times a zero imbalance) into +0.
    out[k] = std::isfinite(value) ? value + 0.0f : 0.0f;
  }
  return FeatureStatus::kOk;
}

FeatureBatchResult FeatureEngine::build_rows(const DecisionContext* contexts, std::size_t count,
                                             const ConsolidatedBook& book,
                                             float* out) const noexcept {
  FeatureBatchResult result;
  for (std::size_t n = 0; n < count; ++n) {
    const FeatureStatus s = build_row(contexts[n], book, out + n * kFeatureCount);
    if (s != FeatureStatus::kOk) {
      if (result.failed == 0) {
        result.first_failed_index = n;
        result.status = s;
      }
      ++result.failed;
    }
  }
  return result;
}

FeatureApplyResult apply_events(ConsolidatedBook& book, FeatureEngine& engine,
                                const MdEvent* events, std::size_t count,
                                bool stop_on_reject) noexcept {
  FeatureApplyResult result;
  for (std::size_t n = 0; n < count; ++n) {
    const Status s = book.apply(events[n]);
    if (s != Status::kOk) {
      if (result.rejected == 0) {
        result.first_rejected_index = n;
        result.first_status = s;
      }
      ++result.rejected;
      if (stop_on_reject) break;
      continue;
    }
    engine.on_event(events[n], book);
    ++result.applied;
  }
  return result;
}

}  // namespace sor
