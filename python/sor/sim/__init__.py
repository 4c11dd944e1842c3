"""Market simulation: the multi-venue simulator (``Market``, scenarios), synthetic L3 flow, and
the replay market."""

from sor.sim.market import Market, MarketClosedError
from sor.sim.scenario import Scenario, load_scenario, shipped_scenarios
from sor.sim.synthetic import level_updates, synthetic_order_flow

__all__ = ["Market", "MarketClosedError", "Scenario", "load_scenario", "shipped_scenarios",
           "synthetic_order_flow", "level_updates"]
