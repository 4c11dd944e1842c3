"""The router's FIX gateway: the OMS acceptor application (parent orders) and one venue
initiator application per venue (child orders) around the C++ engine, with a crash-safe
order-state journal. ``GatewayCore`` holds the order logic; ``Gateway`` runs it with the
engine, the sessions and the reactor."""

from sor.fix.gateway.core import DEFAULT_HORIZON_NS, Child, GatewayCore, Parent, session_active

__all__ = ["GatewayCore", "Parent", "Child", "session_active", "DEFAULT_HORIZON_NS"]
