"""The router's FIX gateway: the OMS acceptor application (parent orders) and one venue
initiator application per venue (child orders) around the C++ engine, with a crash-safe
order-state journal. ``GatewayCore`` holds the order logic; ``Gateway`` runs it with the
engine, the sessions and the reactor."""

from sor.fix.gateway.apps import OmsApplication, VenueApplication
from sor.fix.gateway.core import DEFAULT_HORIZON_NS, Child, GatewayCore, Parent, session_active
from sor.fix.gateway.runner import Gateway, default_sessions, run_router

__all__ = ["Gateway", "GatewayCore", "OmsApplication", "VenueApplication", "Parent", "Child",
           "default_sessions", "run_router", "session_active", "DEFAULT_HORIZON_NS"]
