"""Router configuration: TOML files validated into frozen typed objects. This module only
re-exports; the pieces live in ``sor.config.model`` (the types), ``sor.config.codec`` (TOML in
and out), ``sor.config.changes`` (diff and edit by key path) and ``sor.config.store`` (the
configuration of a running router).
"""

from sor._core import BookType, RiskState
from sor.config.changes import ConfigChange, diff, with_changes
from sor.config.codec import default_config, dump, from_dict, load, loads, save, to_dict
from sor.config.model import (
    ACCESS_FEE_CAP_USD_PER_SHARE,
    FIX_BEGIN_STRINGS,
    RING_NAMES,
    MAX_ACCOUNTS,
    MAX_RISK_INSTRUMENTS,
    WILDCARD,
    Account,
    EngineSettings,
    FeeSchedule,
    FixEndpoint,
    GuardrailSettings,
    IdleStrategy,
    Instrument,
    OverflowPolicy,
    RiskLimits,
    RouterConfig,
    RoutingRule,
    StaleSegmentPolicy,
    Venue,
    VenueKind,
)
from sor.config.store import RESTART_ONLY_KEYS, ConfigStore, restart_only_reason
from sor.errors import ConfigError

__all__ = [
    "RouterConfig", "Venue", "VenueKind", "BookType", "FeeSchedule", "FixEndpoint", "Instrument",
    "RoutingRule", "RiskLimits", "Account", "GuardrailSettings", "RiskState", "MAX_ACCOUNTS",
    "MAX_RISK_INSTRUMENTS", "EngineSettings", "IdleStrategy", "OverflowPolicy",
    "StaleSegmentPolicy", "ACCESS_FEE_CAP_USD_PER_SHARE", "FIX_BEGIN_STRINGS", "RING_NAMES",
    "WILDCARD", "load", "loads", "dump", "save", "to_dict", "from_dict", "default_config",
    "ConfigChange", "diff", "with_changes", "ConfigStore", "RESTART_ONLY_KEYS",
    "restart_only_reason", "ConfigError",
]
