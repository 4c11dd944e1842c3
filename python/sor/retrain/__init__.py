"""The learning loop's retraining (docs/retraining.md): a simulated trading day
(``simulate_day``), labels of the live children from the store (``label_children``), and the
champion/challenger retraining (``retrain``)."""

from __future__ import annotations

from sor.retrain.simulate import SimulatedDay, simulate_day, trading_day_of

__all__ = ["SimulatedDay", "simulate_day", "trading_day_of"]
