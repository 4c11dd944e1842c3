"""The training profile of the decision features, and the population stability index (PSI)
of live rows against it.

A :class:`FeatureProfile` holds, per feature, bin edges and the fraction of the training rows
in each bin. Edges are the deciles of the training values (10th to 90th percentile),
deduplicated; the bins are open at both ends: bin 0 is ``x < e[0]``, bin k is
``e[k-1] <= x < e[k]``, the last is ``x >= e[-1]`` (``numpy.searchsorted(edges, x, "right")``).
A feature with few distinct values (a flag, a category) gets one bin per value that holds at
least a tenth of the rows, so its bins are its values.

PSI of live fractions ``a`` against training fractions ``e``:
``sum_i (a_i - e_i) * ln(a_i / e_i)``, each fraction floored at ``PSI_EPSILON`` (1e-4) so an
empty bin counts as rare, not impossible. Rules of thumb: < 0.1 no shift, 0.1-0.25 moderate,
> 0.25 large. ``docs/monitoring.md`` gives the figures measured on the shipped models.

The profile is JSON (``models/feature_profile-v<version>.json``, written by ``sor train`` into
the registry) with the feature schema hash; loading it under another schema is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from sor.errors import FeatureProfileError
from sor.features import FEATURE_SCHEMA

PROFILE_FORMAT = "sor.feature_profile"
PROFILE_FORMAT_VERSION = 1
PSI_EPSILON = 1e-4
QUANTILES = tuple(k / 10 for k in range(1, 10))

DEFAULT_DRIFT_FEATURES: tuple[str, ...] = (
    "book.near_depth_1",
    "venue.near_touch_shares",
    "venue.near_depth5_shares",
    "venue.spread_ticks",
)
"""Features the drift guard watches by default: the depth and spread the router sees where it
posts. Chosen by measurement (docs/monitoring.md): over windows of 1000 live decisions of the
shipped models they stay far below the threshold on the default scenario and far above it in
the volatile one or when scaled x3; regime-level features (volatility, volume) and
side-relative flow features move too much within one regime to be watched this way."""


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Returns the population stability index of fractions `actual` against `expected` (both
    over the same bins, each summing to 1), fractions floored at PSI_EPSILON."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_EPSILON)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class FeatureBins:
    """One feature's bins: interior edges and the training fraction of each of the
    ``len(edges) + 1`` bins."""

    name: str
    edges: np.ndarray
    fractions: np.ndarray
    summary: dict[str, float] = field(default_factory=dict)

    def bin_indices(self, values: np.ndarray) -> np.ndarray:
        """Returns the bin of each value."""
        return np.searchsorted(self.edges, np.asarray(values, dtype=np.float64), side="right")

    def counts(self, values: np.ndarray) -> np.ndarray:
        """Returns the number of `values` in each bin."""
        return np.bincount(self.bin_indices(values), minlength=len(self.fractions))

    def psi(self, values: np.ndarray) -> float:
        """Returns the PSI of `values` against the training fractions (NaN with no values)."""
        counts = self.counts(values)
        total = counts.sum()
        return psi(self.fractions, counts / total) if total else math.nan


class FeatureProfile:
    """Per-feature bins and training fractions of a training set (see the module docs)."""

    def __init__(self, features: Mapping[str, FeatureBins], *, schema_hash: str,
                 default_features: Sequence[str] = (), rows: int = 0,
                 source: Mapping[str, Any] | None = None) -> None:
        self.features = dict(features)
        self.schema_hash = schema_hash
        self.rows = int(rows)
        self.source = dict(source or {})
        unknown = [n for n in default_features if n not in self.features]
        if unknown:
            raise FeatureProfileError(f"default features {unknown} are not in the profile")
        self.default_features = tuple(default_features)

    @property
    def names(self) -> tuple[str, ...]:
        """The profiled features, in schema order."""
        return tuple(self.features)

    @classmethod
    def from_rows(cls, rows: np.ndarray, names: Sequence[str], *,
                  default_features: Sequence[str] | None = None,
                  source: Mapping[str, Any] | None = None) -> FeatureProfile:
        """Returns the profile of training `rows` (N x len(names)), columns named `names`
        (feature schema names). `default_features` (default: DEFAULT_DRIFT_FEATURES that are
        profiled) are the ones the drift guard watches unless told otherwise."""
        matrix = np.asarray(rows, dtype=np.float64)
        names = tuple(names)
        if matrix.ndim != 2 or matrix.shape[1] != len(names):
            raise FeatureProfileError(f"rows must be N x {len(names)} (one column per name), "
                                      f"got shape {matrix.shape}")
        if len(matrix) < 10:
            raise FeatureProfileError(f"a profile needs at least 10 rows, got {len(matrix)}")
        unknown = [n for n in names if n not in FEATURE_SCHEMA.names]
        if unknown:
            raise FeatureProfileError(f"not features of schema {FEATURE_SCHEMA.version_hash}: "
                                      f"{unknown}")
        if len(set(names)) != len(names):
            raise FeatureProfileError("feature names repeat")
        if not np.all(np.isfinite(matrix)):
            bad = [names[k] for k in np.flatnonzero(~np.all(np.isfinite(matrix), axis=0))]
            raise FeatureProfileError(f"training rows hold NaN or infinity in {bad}")
        order = sorted(range(len(names)), key=lambda k: FEATURE_SCHEMA.index(names[k]))
        features = {}
        for k in order:
            column = matrix[:, k]
            edges = np.unique(np.quantile(column, QUANTILES, method="inverted_cdf"))
            counts = np.bincount(np.searchsorted(edges, column, side="right"),
                                 minlength=len(edges) + 1)
            summary = {"mean": float(column.mean()), "std": float(column.std()),
                       "min": float(column.min()), "max": float(column.max())}
            features[names[k]] = FeatureBins(names[k], edges, counts / len(column), summary)
        if default_features is None:
            default_features = tuple(n for n in DEFAULT_DRIFT_FEATURES if n in features)
        return cls(features, schema_hash=FEATURE_SCHEMA.version_hash,
                   default_features=default_features, rows=len(matrix), source=source)

    # --- scoring ------------------------------------------------------------------------

    def columns(self, names: Sequence[str] | None = None) -> list[int]:
        """Returns the schema column of each of `names` (default: every profiled feature)."""
        names = self.names if names is None else tuple(names)
        missing = [n for n in names if n not in self.features]
        if missing:
            raise FeatureProfileError(f"features {missing} are not in the profile; profiled: "
                                      f"{list(self.names)}")
        return [FEATURE_SCHEMA.index(n) for n in names]

    def psi(self, rows: np.ndarray, names: Sequence[str] | None = None) -> dict[str, float]:
        """Returns the PSI of each feature of `names` (default: every profiled one) for live
        feature rows `rows` (N x schema size, e.g. ``decisions["features"]``)."""
        matrix = np.asarray(rows)
        if matrix.ndim != 2 or matrix.shape[1] != FEATURE_SCHEMA.size:
            raise FeatureProfileError(f"rows must be N x {FEATURE_SCHEMA.size} feature rows, got "
                                      f"shape {matrix.shape}")
        names = self.names if names is None else tuple(names)
        columns = self.columns(names)
        return {n: self.features[n].psi(matrix[:, c]) for n, c in zip(names, columns)}

    # --- files --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Returns the profile as JSON-ready data (what save writes)."""
        return {
            "format": PROFILE_FORMAT, "format_version": PROFILE_FORMAT_VERSION,
            "feature_schema": {"name": "sor.features", "hash": self.schema_hash},
            "binning": "deciles of the training rows, deduplicated; bins open at both ends; "
                       "bin = searchsorted(edges, x, 'right')",
            "psi_epsilon": PSI_EPSILON,
            "rows": self.rows,
            "default_features": list(self.default_features),
            "source": self.source,
            "features": {name: {"edges": [float(x) for x in b.edges],
                                "fractions": [round(float(x), 8) for x in b.fractions],
                                **{k: float(v) for k, v in b.summary.items()}}
                         for name, b in self.features.items()},
        }

    def to_bytes(self) -> bytes:
        """Returns the profile file's bytes (deterministic: sorted keys, fixed layout)."""
        return (json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n").encode()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the profile to `path` (atomically, by rename); returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        os.replace(tmp, target)
        return target

    @property
    def sha256(self) -> str:
        """SHA-256 of the file's bytes."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, source: str = "<profile>",
                  expected_schema_hash: str | None = None) -> FeatureProfile:
        """Returns the profile held in `data` (see to_json); refuses another format or feature
        schema (FeatureProfileError naming both hashes)."""
        found_format = data.get("format") if isinstance(data, Mapping) else None
        if found_format != PROFILE_FORMAT:
            raise FeatureProfileError(f"not a feature profile (format {found_format!r})",
                                      source=source)
        if data.get("format_version") != PROFILE_FORMAT_VERSION:
            raise FeatureProfileError(f"profile format version {data.get('format_version')}; "
                                      f"this code reads {PROFILE_FORMAT_VERSION}", source=source)
        expected = expected_schema_hash or FEATURE_SCHEMA.version_hash
        found = (data.get("feature_schema") or {}).get("hash")
        if found != expected:
            raise FeatureProfileError(f"profile was built on feature schema {found}, the serving "
                                      f"feature schema is {expected}; rebuild it with sor train",
                                      source=source)
        features = {}
        try:
            for name, entry in data["features"].items():
                if name not in FEATURE_SCHEMA.names:
                    raise FeatureProfileError(f"{name!r} is not a feature of the schema",
                                              source=source)
                edges = np.asarray(entry["edges"], dtype=np.float64)
                fractions = np.asarray(entry["fractions"], dtype=np.float64)
                if len(fractions) != len(edges) + 1 or np.any(np.diff(edges) <= 0) or \
                        np.any(fractions < 0) or abs(fractions.sum() - 1) > 1e-4:
                    raise FeatureProfileError(f"feature {name!r}: edges must increase and its "
                                              f"{len(edges) + 1} fractions sum to 1", source=source)
                summary = {k: float(entry[k]) for k in ("mean", "std", "min", "max") if k in entry}
                features[name] = FeatureBins(name, edges, fractions, summary)
            ordered = {n: features[n] for n in FEATURE_SCHEMA.names if n in features}
            return cls(ordered, schema_hash=found,
                       default_features=data.get("default_features", ()),
                       rows=int(data.get("rows", 0)), source=data.get("source") or {})
        except FeatureProfileError as error:
            if error.source:
                raise
            raise FeatureProfileError(error.reason, source=source) from None
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise FeatureProfileError(f"malformed profile: {error!r}", source=source) from None

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, *,
             expected_schema_hash: str | None = None) -> FeatureProfile:
        """Reads a profile file; None reads the profile of the shipped registry."""
        if path is None:
            from sor.models.registry import ModelRegistry

            profile_path = ModelRegistry().feature_profile_path()
            if profile_path is None:
                raise FeatureProfileError("the shipped model registry has no feature profile")
            path = profile_path
        text = os.fspath(path)
        try:
            data = json.loads(Path(text).read_text())
        except OSError as error:
            raise FeatureProfileError(f"cannot read: {error.strerror or error}",
                                      source=text) from None
        except ValueError as error:
            raise FeatureProfileError(f"not JSON: {error}", source=text) from None
        return cls.from_json(data, source=text, expected_schema_hash=expected_schema_hash)

    def __repr__(self) -> str:
        return (f"<sor.monitor.FeatureProfile {len(self.features)} features, {self.rows} rows, "
                f"schema {self.schema_hash}>")


__all__ = ["FeatureProfile", "FeatureBins", "psi", "PSI_EPSILON", "DEFAULT_DRIFT_FEATURES",
           "QUANTILES"]
