"""The model registry: a folder (``models/`` in the repository) holding each model as ONNX
with its model card and reference rows, and ``registry.json`` naming the version in use.

Layout::

    models/registry.json                   {"models": {name: {version, file, sha256, ...}}}
    models/<name>-v<version>.onnx          the model (schema hash in its metadata)
    models/<name>-v<version>.card.json     metrics, schema hash, data seeds, code revision
    models/<name>-v<version>.card.md       the same card for people
    models/<name>-v<version>.reference.npy held-out rows checked against onnxruntime on load
    models/feature_profile-v<version>.json training distribution of the features (drift guard)

Publishing writes the files first and ``registry.json`` last (atomically, by rename), so a
reader sees the old or the new model, never half of one. Older versions stay for rollback.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sor.errors import ModelError, UsageError

REGISTRY_FILE = "registry.json"
MODEL_NAMES = ("fill_probability", "adverse_move", "market_impact")


def default_models_dir() -> Path:
    """Returns the shipped registry: ``models/`` of the source checkout, else the copy
    installed with the package (``sor/models/shipped``)."""
    env = os.environ.get("SOR_MODELS_DIR")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[3] / "models"
    if (checkout / REGISTRY_FILE).exists():
        return checkout
    return Path(__file__).resolve().parent / "shipped"


@dataclass(frozen=True)
class RegistryEntry:
    """One model version in a registry."""

    name: str
    version: int
    file: str
    sha256: str
    card: str
    reference_rows: str
    schema_hash: str


class ModelRegistry:
    """A registry folder. ``ModelRegistry(path).load("fill_probability")`` returns a validated
    model (schema, tree graph, parity with onnxruntime)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_models_dir()

    def _read(self) -> dict[str, Any]:
        path = self.root / REGISTRY_FILE
        if not path.exists():
            return {"models": {}}
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(data.get("models"), dict):
            raise ModelError(f"{path} has no 'models' table")
        return data

    def names(self) -> list[str]:
        """Returns the names of the models in use."""
        return sorted(self._read()["models"])

    def entry(self, name: str) -> RegistryEntry:
        """Returns the entry of the version of ``name`` in use; UsageError naming the known
        models when there is none."""
        models = self._read()["models"]
        if name not in models:
            raise UsageError(f"no model {name!r} in {self.root / REGISTRY_FILE}; "
                             f"models: {sorted(models)}")
        e = models[name]
        return RegistryEntry(name, int(e["version"]), e["file"], e["sha256"], e["card"],
                             e["reference_rows"], e["schema_hash"])

    def feature_settings(self) -> Any:
        """Returns the feature settings the models in use were trained with (the GARCH fit
        among them): the engine computes its features with these. None when not recorded."""
        from sor.models.dataset import settings_from_json

        data = self._read().get("feature_settings")
        return settings_from_json(data) if data else None

    def card(self, name: str) -> dict[str, Any]:
        """Returns the model card of the version of ``name`` in use."""
        return json.loads((self.root / self.entry(name).card).read_text())

    def path(self, name: str) -> Path:
        """Returns the ONNX file of the version of ``name`` in use."""
        return self.root / self.entry(name).file

    def load(self, name: str, *, expected_schema_hash: str | None = None) -> Any:
        """Loads and validates the version of ``name`` in use: the file's SHA-256 must match
        the registry, its schema hash the feature schema, and the C++ evaluator must agree
        with onnxruntime on the reference rows. Returns a ``TreeModel``."""
        from sor.features import FEATURE_SCHEMA
        from sor.models.onnx_trees import load_tree_model

        entry = self.entry(name)
        path = self.root / entry.file
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read model {name!r} from {path}: {exc}") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.sha256:
            raise ModelError(f"model {name!r} file {path} has SHA-256 {digest[:16]}..., the "
                             f"registry expects {entry.sha256[:16]}...: the file changed or is "
                             "corrupt")
        reference = None
        reference_path = self.root / entry.reference_rows
        if reference_path.exists():
            reference = np.load(reference_path)
        return load_tree_model(
            data, expected_schema_hash=expected_schema_hash or FEATURE_SCHEMA.version_hash,
            feature_names=FEATURE_SCHEMA.names, reference_rows=reference)

    def load_all(self, **kwargs: Any) -> dict[str, Any]:
        """Loads every model in use (see ``load``)."""
        return {name: self.load(name, **kwargs) for name in self.names()}

    def publish(self, name: str, onnx_bytes: bytes, card: dict[str, Any],
                render_markdown: Callable[[dict[str, Any]], str], reference_rows: np.ndarray,
                extra_files: dict[str, bytes] | None = None) -> RegistryEntry:
        """Writes a new version of ``name`` and makes it the one in use; returns its entry.
        The card gets the name, version, file and SHA-256, then ``render_markdown`` renders it.
        Publishing the same bytes as the version in use changes nothing."""
        self.root.mkdir(parents=True, exist_ok=True)
        data = self._read()
        digest = hashlib.sha256(onnx_bytes).hexdigest()
        current = data["models"].get(name)
        if current and current["sha256"] == digest:
            version = int(current["version"])
        else:
            version = max([int(current["version"]) if current else 0] +
                          self._versions_on_disk(name)) + 1
        stem = f"{name}-v{version}"
        card = dict(card, name=name, version=version, onnx_sha256=digest, file=f"{stem}.onnx")
        files = {
            f"{stem}.onnx": onnx_bytes,
            f"{stem}.card.json": (json.dumps(card, indent=2, sort_keys=True) + "\n").encode(),
            f"{stem}.card.md": render_markdown(card).encode(),
        }
        for suffix, payload in (extra_files or {}).items():
            files[f"{stem}.{suffix}"] = payload
        for file_name, payload in files.items():
            _write_atomic(self.root / file_name, payload)
        reference_path = self.root / f"{stem}.reference.npy"
        tmp = reference_path.with_name(reference_path.name + ".tmp")
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(reference_rows, dtype=np.float32))
        os.replace(tmp, reference_path)
        data["models"][name] = {"version": version, "file": f"{stem}.onnx", "sha256": digest,
                                "card": f"{stem}.card.json",
                                "reference_rows": reference_path.name,
                                "schema_hash": card["feature_schema"]["hash"]}
        if "feature_settings" in card:
            data["feature_settings"] = card["feature_settings"]
        _write_atomic(self.root / REGISTRY_FILE,
                      (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
        return self.entry(name)

    def feature_profile_path(self) -> Path | None:
        """Returns the feature profile file in use (``registry.json``'s ``feature_profile``),
        None when the registry has none."""
        entry = self._read().get("feature_profile")
        return self.root / entry["file"] if entry else None

    def feature_profile(self) -> Any:
        """Returns the feature profile in use (``sor.monitor.FeatureProfile``), checked against
        the registry's SHA-256 and the feature schema; None when the registry has none."""
        from sor.monitor.profile import FeatureProfile

        entry = self._read().get("feature_profile")
        if not entry:
            return None
        path = self.root / entry["file"]
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            raise ModelError(f"cannot read the feature profile {path}: {exc}") from exc
        if digest != entry["sha256"]:
            raise ModelError(f"feature profile {path} has SHA-256 {digest[:16]}..., the registry "
                             f"expects {entry['sha256'][:16]}...: the file changed or is corrupt")
        return FeatureProfile.load(path)

    def publish_feature_profile(self, profile: Any) -> Path:
        """Writes a feature profile (``sor.monitor.FeatureProfile``) as a new version and makes
        it the one in use; the same bytes as the profile in use change nothing. Returns its
        path."""
        self.root.mkdir(parents=True, exist_ok=True)
        payload = profile.to_bytes()
        digest = hashlib.sha256(payload).hexdigest()
        data = self._read()
        current = data.get("feature_profile")
        if current and current["sha256"] == digest:
            return self.root / current["file"]
        versions = [int(current["version"])] if current else []
        for path in self.root.glob("feature_profile-v*.json"):
            tail = path.stem[len("feature_profile-v"):]
            if tail.isdigit():
                versions.append(int(tail))
        version = max(versions, default=0) + 1
        name = f"feature_profile-v{version}.json"
        _write_atomic(self.root / name, payload)
        data["feature_profile"] = {"version": version, "file": name, "sha256": digest,
                                   "schema_hash": profile.schema_hash, "rows": profile.rows}
        _write_atomic(self.root / REGISTRY_FILE,
                      (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())
        return self.root / name

    def _versions_on_disk(self, name: str) -> list[int]:
        versions = []
        for path in self.root.glob(f"{name}-v*.onnx"):
            tail = path.stem[len(name) + 2:]
            if tail.isdigit():
                versions.append(int(tail))
        return versions


def _write_atomic(path: Path, payload: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
