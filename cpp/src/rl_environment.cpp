#include "sor/rl_environment.hpp"

#include <cmath>
#include <stdexcept>

namespace sor {

// The session's policy: the environment decides, so this only keeps the interface whole.
struct RlEnvironment::Listener final : ExecutionPolicy {
  const char* name() const noexcept override { return "rl_environment"; }
  void reset(const ParentState&, const PolicyVenue*, std::size_t) override {}
  void decide(const PolicyView&, PolicyOutput&) noexcept override {}
};

RlEnvironment::RlEnvironment(const BacktestSpec& spec, const RlActionConfig& actions,
                             const PolicyModels& models)
    : listener_(std::make_unique<Listener>()) {
  if (const char* problem = validate(actions); problem[0] != '\0') {
    throw std::invalid_argument(std::string("actions: ") + problem);
  }
  session_ = std::make_unique<BacktestSession>(spec, *listener_, models);
  const std::vector<PolicyVenue>& venues = session_->venues();
  actions_ = RlActionSet(venues.data(), venues.size(), actions);
  rows_.assign(actions_.size() * kFeatureCount, 0.0f);
}

RlEnvironment::~RlEnvironment() = default;

std::size_t RlEnvironment::action_count() const noexcept { return actions_.size(); }

void RlEnvironment::reset() {
  session_->begin();
  const ParentState& p = session_->parent();
  arrival_notional_usd_ = static_cast<double>(p.quantity) * p.arrival_mid_ticks *
                          session_->price_tick_usd();
  fills_seen_ = 0;
  done_ = false;
  observe();
}

void RlEnvironment::observe() {
  const PolicyView view = session_->view();
  child_shares_ = actions_.observe(view, rows_.data(), feasible_.data());
}

namespace {

// Cost against the arrival mid, fees included, of fills[first..]: > 0 is a cost.
double fills_cost_usd(const std::vector<BacktestFill>& fills, std::size_t first,
                      const ParentState& parent, double price_tick_usd) noexcept {
  const double sign = parent.side == Side::kBuy ? 1.0 : -1.0;
  double cost = 0;
  for (std::size_t i = first; i < fills.size(); ++i) {
    const BacktestFill& f = fills[i];
    cost += sign * static_cast<double>(f.quantity) *
                (static_cast<double>(f.price_ticks) - parent.arrival_mid_ticks) * price_tick_usd +
            f.fee_usd;
  }
  return cost;
}

}  // namespace

RlStepResult RlEnvironment::step(std::size_t action) {
  if (done_) throw std::logic_error("the episode has ended; reset a new one");
  if (action >= actions_.size()) {
    throw std::out_of_range("action " + std::to_string(action) + " is not below " +
                            std::to_string(actions_.size()));
  }
  PolicyOutput out;
  const PolicyView view = session_->view();
  actions_.act(view, feasible_[action] ? action : 0, child_shares_, out);
  session_->step(out);
  double cost = 0;
  if (session_->done()) {
    result_ = session_->finish();  // the sweep's fills land in this step
    done_ = true;
    cost = fills_cost_usd(result_.fills, fills_seen_, result_.parent, result_.price_tick_usd);
    fills_seen_ = result_.fills.size();
  } else {
    cost = fills_cost_usd(session_->fills(), fills_seen_, session_->parent(),
                          session_->price_tick_usd());
    fills_seen_ = session_->fills().size();
    observe();
  }
  const double reward =
      arrival_notional_usd_ > 0 ? -cost / arrival_notional_usd_ * 1e4 : 0.0;
  return {reward, done_};
}

}  // namespace sor
