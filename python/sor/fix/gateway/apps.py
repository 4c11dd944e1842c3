"""The gateway's session applications: thin adapters from ``sor.fix.session`` callbacks to
:class:`~sor.fix.gateway.core.GatewayCore`."""

from __future__ import annotations

import logging
from typing import Any

from sor.fix.gateway.core import GatewayCore
from sor.fix.session import Application

log = logging.getLogger("sor.fix.gateway")


class OmsApplication(Application):
    """The OMS acceptor application: parent orders in (D, F, G), reports out (8, 9)."""

    def __init__(self, core: GatewayCore) -> None:
        self.core = core

    def on_logon(self, session: Any) -> None:
        """Journals the logon (the outbox before it is delivered or reset)."""
        self.core.on_oms_logon(session)

    def on_logout(self, session: Any, reason: str) -> None:
        """Hands the logout to the core: with cancel_on_disconnect the session's working
        parents are cancelled, else they keep working; reports wait in the session's store."""
        try:
            self.core.on_oms_logout(session, reason)
        except Exception:
            log.exception("OMS session %s: handling the logout failed", session.config.name)

    def on_message(self, session: Any, message: Any) -> None:
        """Hands an application message to the core; a failure is logged and the message
        answered with a BusinessMessageReject, the session stays up."""
        try:
            self.core.on_oms_message(session, message)
        except Exception as error:  # a bug must not take the session down
            log.exception("OMS message %s seq %d failed", message.msg_type, message.seq_num)
            try:
                session.business_reject(message, 0, f"router error: {error}"[:200])
            except Exception:
                log.exception("could not reject the message")


class VenueApplication(Application):
    """One venue initiator application: child orders out (D, F, G), reports in (8, 9).

    ``cancel`` and ``replace`` send a venue-side OrderCancelRequest or
    OrderCancelReplaceRequest for one working child (the engine sends its own cancels).
    """

    def __init__(self, core: GatewayCore, venue_id: int) -> None:
        self.core = core
        self.venue_id = int(venue_id)
        self.session: Any = None

    def on_logon(self, session: Any) -> None:
        """Sends the cancels owed to this venue (orphans after a restart, children open when
        a cancel_on_disconnect session dropped)."""
        self.core.on_venue_logon(self.venue_id)

    def on_logout(self, session: Any, reason: str) -> None:
        """Notes the logout: new children for this venue are refused until it is back."""
        try:
            self.core.on_venue_logout(self.venue_id, reason)
        except Exception:
            log.exception("venue session %s: handling the logout failed", session.config.name)

    def on_message(self, session: Any, message: Any) -> None:
        """Hands an ExecutionReport or OrderCancelReject to the core; a failure is logged."""
        try:
            self.core.on_venue_message(self.venue_id, session, message)
        except Exception:
            log.exception("venue %s message %s seq %d failed", session.config.name,
                          message.msg_type, message.seq_num)

    def cancel(self, incarnation: int, child_order_id: int) -> None:
        """Sends an OrderCancelRequest for child `<incarnation>.<child_order_id>`."""
        self.core.cancel_child(incarnation, child_order_id)

    def replace(self, incarnation: int, child_order_id: int, quantity: int,
                price_ticks: int) -> str:
        """Sends an OrderCancelReplaceRequest for a child; returns the new ClOrdID."""
        return self.core.replace_child(incarnation, child_order_id, quantity, price_ticks)
