"""Market simulation. For now: synthetic multi-venue L3 order flow with a realistic message
mix, generated in the C++ core (same seed, same stream, bit for bit)."""

from sor.sim.synthetic import level_updates, synthetic_order_flow

__all__ = ["synthetic_order_flow", "level_updates"]
