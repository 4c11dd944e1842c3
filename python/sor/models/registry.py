"""The model registry: a folder (``models/`` in the repository) holding each model as ONNX
with its model card and reference rows, and ``registry.json`` naming the version in use.

Layout::

    models/registry.json                   {"models": {name: {version, file, sha256, ...}}}
    models/<name>-v<version>.onnx          the model (schema hash in its metadata)
    models/<name>-v<version>.card.json     metrics, schema hash, data seeds, code revision
    models/<name>-v<version>.card.md       the same card for people
    models/<name>-v<version>.reference.npy held-out rows checked against onnxruntime on load
    models/feature_profile-v<version>.json training distribution of the features (drift guard)

Versions: ``stage`` writes a new version's files and lists it in ``registry.json`` without
putting it in use; ``promote`` switches any number of models to given versions in one atomic
write of ``registry.json`` and appends a ``history`` record; ``rollback`` undoes the last
promotion not yet rolled back; ``publish`` is stage + promote. ``registry.json``::

    {"models":   {name: entry},                       the versions in use
     "versions": {name: {"<version>": entry}},        every version staged or published
     "staged":   {name: [version, ...]},              versions never put in use
     "history":  [{id, ts_ns, operator, reason, changes: {name: {"from": v, "to": v}},
                   "rollback_of": id (rollbacks only)}],
     "feature_settings": {...}, "feature_profile": {...}}

A registry written before versions existed (``models`` only, like the shipped one) reads the
same: its versions come from ``models`` and the cards on disk. Files are written first and
``registry.json`` last (atomically, by rename), so a reader sees the old or the new set of
models, never half of one; writers take a lock file (``.registry.lock``). Older versions stay
for rollback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from sor.errors import ModelError, RegistryError, UsageError

REGISTRY_FILE = "registry.json"
LOCK_FILE = ".registry.lock"
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

    # --- reading ----------------------------------------------------------------------------

    def _read_bytes(self) -> bytes | None:
        try:
            return (self.root / REGISTRY_FILE).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RegistryError(f"cannot read {self.root / REGISTRY_FILE}: {exc}") from exc

    def _parse(self, raw: bytes | None) -> dict[str, Any]:
        path = self.root / REGISTRY_FILE
        if raw is None:
            return {"models": {}}
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RegistryError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
            raise RegistryError(f"{path} has no 'models' table")
        for key in ("versions", "staged"):
            if key in data and not isinstance(data[key], dict):
                raise RegistryError(f"{path}: {key!r} is not a table")
        if "history" in data and not isinstance(data["history"], list):
            raise RegistryError(f"{path}: 'history' is not a list")
        return data

    def _read(self) -> dict[str, Any]:
        return self._parse(self._read_bytes())

    def snapshot(self) -> tuple[str, dict[str, Any]]:
        """Returns ``(fingerprint, contents)`` of ``registry.json`` read once, so both describe
        the same write (what a watcher compares and installs)."""
        raw = self._read_bytes()
        return _fingerprint(raw), self._parse(raw)

    def fingerprint(self) -> str:
        """Returns the SHA-256 of ``registry.json`` (empty string when there is none): it
        changes with every promotion, rollback, stage or publish."""
        return _fingerprint(self._read_bytes())

    def names(self) -> list[str]:
        """Returns the names of the models in use."""
        return sorted(self._read()["models"])

    def in_use(self, data: dict[str, Any] | None = None) -> dict[str, int]:
        """Returns the version in use of each model (of ``data`` from ``snapshot`` if given)."""
        data = self._read() if data is None else data
        return {name: int(e["version"]) for name, e in sorted(data["models"].items())}

    def entry(self, name: str, version: int | None = None, *,
              data: dict[str, Any] | None = None) -> RegistryEntry:
        """Returns the entry of version ``version`` of ``name`` (default: the version in use).
        UsageError naming the known models when none is in use; RegistryError naming the
        model and version when that version does not exist."""
        data = self._read() if data is None else data
        models = data["models"]
        if version is None:
            if name not in models:
                raise UsageError(f"no model {name!r} in {self.root / REGISTRY_FILE}; "
                                 f"models: {sorted(models)}")
            return _entry(name, models[name])
        raw = self._version_table(data, name).get(int(version))
        if raw is None:
            known = sorted(self._version_table(data, name))
            raise RegistryError(f"model {name!r} has no version {version} in {self.root}; "
                                f"versions: {known or 'none'}")
        return _entry(name, raw)

    def _version_table(self, data: dict[str, Any], name: str) -> dict[int, dict[str, Any]]:
        """Every known version of ``name``: recorded in ``versions``, in use, or (registries
        written before versions existed) a card on disk."""
        table: dict[int, dict[str, Any]] = {}
        for version in self._versions_on_disk(name):
            raw = self._entry_from_card(name, version)
            if raw is not None:
                table[version] = raw
        for key, raw in (data.get("versions", {}).get(name) or {}).items():
            table[int(key)] = raw
        if name in data["models"]:
            current = data["models"][name]
            table[int(current["version"])] = current
        return table

    def _entry_from_card(self, name: str, version: int) -> dict[str, Any] | None:
        stem = f"{name}-v{version}"
        try:
            card = json.loads((self.root / f"{stem}.card.json").read_text())
            return {"version": version, "file": f"{stem}.onnx", "sha256": card["onnx_sha256"],
                    "card": f"{stem}.card.json", "reference_rows": f"{stem}.reference.npy",
                    "schema_hash": card["feature_schema"]["hash"]}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Returns every version of ``name``, oldest first: ``{version, sha256, status, card,
        file}`` with status ``in_use``, ``staged`` (never put in use) or ``retired``.
        RegistryError when the registry knows no version of ``name``."""
        data = self._read()
        table = self._version_table(data, name)
        if not table:
            raise RegistryError(f"no model {name!r} in {self.root}; models: "
                                f"{sorted(set(data['models']) | set(data.get('versions', {})))}")
        current = data["models"].get(name)
        staged = {int(v) for v in data.get("staged", {}).get(name, [])}
        rows = []
        for version in sorted(table):
            raw = table[version]
            if current is not None and int(current["version"]) == version:
                status = "in_use"
            elif version in staged:
                status = "staged"
            else:
                status = "retired"
            rows.append({"version": version, "sha256": raw["sha256"], "status": status,
                         "card": raw["card"], "file": raw["file"]})
        return rows

    def history(self) -> list[dict[str, Any]]:
        """Returns the promotion and rollback records, oldest first."""
        return list(self._read().get("history", []))

    def feature_settings(self) -> Any:
        """Returns the feature settings the models in use were trained with (the GARCH fit
        among them): the engine computes its features with these. None when not recorded."""
        from sor.models.dataset import settings_from_json

        data = self._read().get("feature_settings")
        return settings_from_json(data) if data else None

    def card(self, name: str, version: int | None = None) -> dict[str, Any]:
        """Returns the model card of version ``version`` of ``name`` (default: in use)."""
        return json.loads((self.root / self.entry(name, version).card).read_text())

    def path(self, name: str, version: int | None = None) -> Path:
        """Returns the ONNX file of version ``version`` of ``name`` (default: in use)."""
        return self.root / self.entry(name, version).file

    def onnx_bytes(self, name: str, version: int | None = None) -> bytes:
        """Returns the ONNX bytes of version ``version`` of ``name`` (default: in use),
        checked against the registry's SHA-256."""
        return self._checked_bytes(self.entry(name, version))

    def _checked_bytes(self, entry: RegistryEntry) -> bytes:
        path = self.root / entry.file
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read model {entry.name!r} v{entry.version} from {path}: "
                             f"{exc}") from exc
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.sha256:
            raise ModelError(f"model {entry.name!r} v{entry.version} file {path} has SHA-256 "
                             f"{digest[:16]}..., the registry expects {entry.sha256[:16]}...: "
                             "the file changed or is corrupt")
        return data

    def load(self, name: str, version: int | None = None, *,
             expected_schema_hash: str | None = None, data: dict[str, Any] | None = None) -> Any:
        """Loads and validates version ``version`` of ``name`` (default: the one in use): the
        file's SHA-256 must match the registry, its schema hash the feature schema, and the C++
        evaluator must agree with onnxruntime on the reference rows. Returns a ``TreeModel``."""
        from sor.features import FEATURE_SCHEMA
        from sor.models.onnx_trees import load_tree_model

        entry = self.entry(name, version, data=data)
        payload = self._checked_bytes(entry)
        reference = None
        reference_path = self.root / entry.reference_rows
        if reference_path.exists():
            reference = np.load(reference_path)
        return load_tree_model(
            payload, expected_schema_hash=expected_schema_hash or FEATURE_SCHEMA.version_hash,
            feature_names=FEATURE_SCHEMA.names, reference_rows=reference)

    def load_all(self, **kwargs: Any) -> dict[str, Any]:
        """Loads every model in use (see ``load``)."""
        return {name: self.load(name, **kwargs) for name in self.names()}

    # --- writing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serializes writers (threads of this process and other processes) of this folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        with _THREAD_LOCK, open(self.root / LOCK_FILE, "a+b") as handle:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX: threads only
                yield
                return
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, data: dict[str, Any]) -> None:
        _write_atomic(self.root / REGISTRY_FILE,
                      (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())

    def stage(self, name: str, onnx_bytes: bytes, card: dict[str, Any],
              render_markdown: Callable[[dict[str, Any]], str], reference_rows: np.ndarray,
              extra_files: dict[str, bytes] | None = None) -> RegistryEntry:
        """Writes a new version of ``name`` (ONNX, card, rendered card, reference rows, extra
        files) without putting it in use; returns its entry. The card gets the name, version,
        file and SHA-256, then ``render_markdown`` renders it. Staging the same bytes as a
        version the registry has returns that version and writes nothing."""
        with self._locked():
            return self._stage_locked(name, onnx_bytes, card, render_markdown, reference_rows,
                                      extra_files)

    def _stage_locked(self, name: str, onnx_bytes: bytes, card: dict[str, Any],
                      render_markdown: Callable[[dict[str, Any]], str],
                      reference_rows: np.ndarray,
                      extra_files: dict[str, bytes] | None) -> RegistryEntry:
        data = self._read()
        digest = hashlib.sha256(onnx_bytes).hexdigest()
        table = self._version_table(data, name)
        for version, raw in sorted(table.items(), reverse=True):
            if raw["sha256"] == digest and (self.root / raw["file"]).exists():
                return _entry(name, raw)
        version = max(list(table) + self._versions_on_disk(name) + [0]) + 1
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
        tmp = reference_path.with_name(f"{reference_path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(reference_rows, dtype=np.float32))
        os.replace(tmp, reference_path)
        raw = {"version": version, "file": f"{stem}.onnx", "sha256": digest,
               "card": f"{stem}.card.json", "reference_rows": reference_path.name,
               "schema_hash": card["feature_schema"]["hash"]}
        data.setdefault("versions", {}).setdefault(name, {})[str(version)] = raw
        staged = data.setdefault("staged", {}).setdefault(name, [])
        staged.append(version)
        self._write(data)
        return _entry(name, raw)

    def promote(self, changes: dict[str, int], *, operator: str, reason: str) -> dict[str, Any]:
        """Puts the given version of every named model in use in one atomic write of
        ``registry.json`` and appends a history record ``{id, ts_ns, operator, reason,
        changes: {name: {"from": v_or_None, "to": v}}}``, which it returns. RegistryError
        (nothing changes) when a version does not exist, its file is missing or corrupt, or
        every model already runs the version asked for."""
        if not changes:
            raise RegistryError("promote: no models named (give NAME=VERSION)")
        _check_actor(operator, reason, "promote")
        with self._locked():
            data = self._read()
            normalized = {}
            for name, version in changes.items():
                try:
                    normalized[str(name)] = int(version)
                except (TypeError, ValueError):
                    raise RegistryError(f"promote: version of {name!r} must be an integer, got "
                                        f"{version!r}") from None
            record_changes = {}
            for name, version in sorted(normalized.items()):
                entry = self.entry(name, version, data=data)
                _verify(self, entry, "promote")
                current = data["models"].get(name)
                before = int(current["version"]) if current else None
                if before != version:
                    record_changes[name] = {"from": before, "to": version}
            if not record_changes:
                raise RegistryError(f"promote: {', '.join(f'{n} v{v}' for n, v in sorted(normalized.items()))} "
                                    "already in use; nothing to promote")
            return self._apply_locked(data, record_changes, operator=operator, reason=reason)

    def _apply_locked(self, data: dict[str, Any], record_changes: dict[str, dict[str, Any]], *,
                      operator: str, reason: str, rollback_of: int | None = None
                      ) -> dict[str, Any]:
        versions = data.setdefault("versions", {})
        staged = data.setdefault("staged", {})
        for name, change in record_changes.items():
            table = self._version_table(data, name)
            for version, raw in table.items():  # every known version gets recorded
                versions.setdefault(name, {}).setdefault(str(version), raw)
            target = change["to"]
            if target is None:
                data["models"].pop(name, None)
                continue
            raw = table[target]
            data["models"][name] = raw
            if target in staged.get(name, []):
                staged[name] = [v for v in staged[name] if v != target]
            card_path = self.root / raw["card"]
            try:
                card = json.loads(card_path.read_text())
            except (OSError, ValueError):
                card = {}
            if "feature_settings" in card:
                data["feature_settings"] = card["feature_settings"]
        history = data.setdefault("history", [])
        record: dict[str, Any] = {
            "id": (max((int(h.get("id", 0)) for h in history), default=0) + 1),
            "ts_ns": time.time_ns(), "operator": operator, "reason": reason,
            "changes": record_changes}
        if rollback_of is not None:
            record["rollback_of"] = rollback_of
        history.append(record)
        self._write(data)
        return record

    def rollback(self, *, operator: str, reason: str,
                 names: list[str] | tuple[str, ...] | None = None) -> dict[str, Any]:
        """Undoes the last promotion (of ``names``, default any) not yet rolled back: its
        models go back to the versions they had before it (a model it added is taken out of
        use). Rollback records are never undone themselves, so rolling back twice walks back
        two promotions; to undo a rollback, promote the version again. Returns the history
        record (with ``rollback_of``); RegistryError when there is nothing to roll back."""
        _check_actor(operator, reason, "rollback")
        wanted = set(names) if names else None
        with self._locked():
            data = self._read()
            history = data.get("history", [])
            rolled_back = {(int(h["rollback_of"]), name) for h in history
                           if "rollback_of" in h for name in h.get("changes", {})}
            for record in reversed(history):
                if "rollback_of" in record:
                    continue
                targets = [name for name in record.get("changes", {})
                           if (wanted is None or name in wanted)
                           and (int(record["id"]), name) not in rolled_back]
                if not targets:
                    continue
                record_changes = {}
                for name in sorted(targets):
                    current = data["models"].get(name)
                    before = int(current["version"]) if current else None
                    previous = record["changes"][name]["from"]
                    if previous is not None:
                        _verify(self, self.entry(name, int(previous), data=data), "rollback")
                    record_changes[name] = {"from": before, "to": previous}
                return self._apply_locked(data, record_changes, operator=operator,
                                          reason=reason, rollback_of=int(record["id"]))
            scope = f" of {sorted(wanted)}" if wanted else ""
            raise RegistryError(f"rollback: no promotion{scope} left to roll back in "
                                f"{self.root / REGISTRY_FILE}")

    def publish(self, name: str, onnx_bytes: bytes, card: dict[str, Any],
                render_markdown: Callable[[dict[str, Any]], str], reference_rows: np.ndarray,
                extra_files: dict[str, bytes] | None = None, *,
                operator: str = "sor train", reason: str = "published") -> RegistryEntry:
        """Writes a new version of ``name`` and makes it the one in use (stage + promote, a
        history record by ``operator``); returns its entry. Publishing the same bytes as the
        version in use changes nothing."""
        with self._locked():
            entry = self._stage_locked(name, onnx_bytes, card, render_markdown,
                                       reference_rows, extra_files)
            data = self._read()
            current = data["models"].get(name)
            before = int(current["version"]) if current else None
            if before != entry.version:
                self._apply_locked(data, {name: {"from": before, "to": entry.version}},
                                   operator=operator, reason=reason)
            elif "feature_settings" in card and data.get("feature_settings") != card["feature_settings"]:
                data["feature_settings"] = card["feature_settings"]
                self._write(data)
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
        with self._locked():
            return self._publish_profile_locked(profile, payload, digest)

    def _publish_profile_locked(self, profile: Any, payload: bytes, digest: str) -> Path:
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
        self._write(data)
        return self.root / name

    def _versions_on_disk(self, name: str) -> list[int]:
        versions = []
        for path in self.root.glob(f"{name}-v*.onnx"):
            tail = path.stem[len(name) + 2:]
            if tail.isdigit():
                versions.append(int(tail))
        return versions


_THREAD_LOCK = threading.RLock()


def _entry(name: str, raw: dict[str, Any]) -> RegistryEntry:
    return RegistryEntry(name, int(raw["version"]), raw["file"], raw["sha256"], raw["card"],
                         raw["reference_rows"], raw["schema_hash"])


def _fingerprint(raw: bytes | None) -> str:
    return hashlib.sha256(raw).hexdigest() if raw is not None else ""


def _verify(registry: ModelRegistry, entry: RegistryEntry, action: str) -> None:
    try:
        registry._checked_bytes(entry)
    except RegistryError:
        raise
    except ModelError as exc:
        raise RegistryError(f"{action}: {exc}") from exc


def _check_actor(operator: str, reason: str, action: str) -> None:
    if not str(operator or "").strip():
        raise RegistryError(f"{action}: an operator is required")
    if not str(reason or "").strip():
        raise RegistryError(f"{action}: a reason is required")


def parse_changes(items: list[str]) -> dict[str, int]:
    """Returns ``{name: version}`` from ``NAME=VERSION`` strings (``v3`` or ``3``);
    RegistryError naming the malformed item."""
    changes: dict[str, int] = {}
    for item in items:
        name, sep, version = item.partition("=")
        version = version.strip().lstrip("vV")
        if not sep or not name.strip() or not version.isdigit():
            raise RegistryError(f"expected NAME=VERSION (e.g. fill_probability=3), got {item!r}")
        changes[name.strip()] = int(version)
    return changes


def _write_atomic(path: Path, payload: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
