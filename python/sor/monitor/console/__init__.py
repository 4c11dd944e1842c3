"""The operator console: a web page served by the router with live charts, the venue and
parent tables, model status, the guardrail event log and the kill switch (docs/console.md).

``ConsoleServer(control)`` serves it for a control object: the router's ``Gateway`` or an
``EngineConsoleControl`` over a bare ``sor.Engine``.
"""

from __future__ import annotations

from sor.monitor.console.control import EngineConsoleControl
from sor.monitor.console.server import RISK_STATES, ConsoleServer, to_json_value

__all__ = ["ConsoleServer", "EngineConsoleControl", "RISK_STATES", "to_json_value"]
