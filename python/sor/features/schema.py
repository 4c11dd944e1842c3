"""The feature schema of the router's decision rows: names, units and descriptions in row order,
and a version hash over them.

The schema is defined once, in C++ (``cpp/src/features.cpp``), and read here through
``_core.feature_schema()``, so serving (the engine) and training (datasets built with
:class:`sor.features.FeatureEngine`) cannot disagree. A model carries ``version_hash`` and is
refused when it differs. Book features are side-relative: "near" is the side the parent joins
passively (the bid for a buy), "far" the side it takes from (the ask for a buy).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from sor import _core
from sor.errors import UsageError


@dataclass(frozen=True)
class Feature:
    """One feature of a decision row."""

    name: str
    unit: str
    description: str


@dataclass(frozen=True)
class FeatureSchema:
    """The ordered features of a decision row and the hash that identifies them."""

    name: str
    revision: int
    features: tuple[Feature, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Returns the feature names in row order."""
        return tuple(f.name for f in self.features)

    @property
    def units(self) -> tuple[str, ...]:
        """Returns the feature units in row order."""
        return tuple(f.unit for f in self.features)

    @property
    def size(self) -> int:
        """Returns the number of features in a row."""
        return len(self.features)

    @property
    def version_hash(self) -> str:
        """Returns 16 hex digits of SHA-256 over the schema name, revision and every feature's
        ``name|unit``, in order."""
        text = "\n".join([self.name, str(self.revision)] +
                         [f"{f.name}|{f.unit}" for f in self.features])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def index(self, name: str) -> int:
        """Returns the position of feature ``name``; raises UsageError naming close matches."""
        for position, feature in enumerate(self.features):
            if feature.name == name:
                return position
        close = [n for n in self.names if name.split(".")[-1] in n][:5]
        raise UsageError(f"no feature {name!r} in schema {self.name}; similar: {close}")

    def as_dict(self, row: np.ndarray) -> dict[str, float]:
        """Returns ``{name: value}`` for one row (for reading and debugging)."""
        if row.shape != (self.size,):
            raise UsageError(f"expected a row of shape ({self.size},), got {row.shape}")
        return {name: float(value) for name, value in zip(self.names, row)}

    def doc_table(self) -> str:
        """Returns the Markdown table of the features (position, name, unit, description), as
        docs/features.md embeds it."""
        lines = ["| # | feature | unit | definition and fallback |", "|---|---|---|---|"]
        for position, f in enumerate(self.features):
            description = f.description.replace("|", "\\|")
            lines.append(f"| {position} | `{f.name}` | {f.unit} | {description} |")
        return "\n".join(lines) + "\n"


FEATURE_SCHEMA = FeatureSchema(
    name=str(_core.FEATURE_SCHEMA_NAME),
    revision=int(_core.FEATURE_SCHEMA_REVISION),
    features=tuple(Feature(*entry) for entry in _core.feature_schema()),
)
"""The decision-row schema shared by the engine and training."""
