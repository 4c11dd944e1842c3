"""Monitoring of the router: the audit journal, Prometheus metrics, the Python model guards
and the training feature profile (re-exports only; see docs/monitoring.md). The operator
console is ``sor.monitor.console``."""

from sor.monitor.guards import ModelGuardMonitor, ModelGuardReason
from sor.monitor.journal import AuditJournal, JournalContents, read_journal, training_rows
from sor.monitor.metrics import RouterMetrics
from sor.monitor.profile import FeatureProfile, psi

__all__ = ["AuditJournal", "JournalContents", "read_journal", "training_rows", "RouterMetrics",
           "ModelGuardMonitor", "ModelGuardReason", "FeatureProfile", "psi"]
