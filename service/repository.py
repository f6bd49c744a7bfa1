"""The model repository: which models and versions the service answers for, and reloads.

A repository root is one of:

- a folder, each entry of which is either
  - ``<name>/<version>/model.npz``: a versioned model (``version`` is a decimal number;
    other entries inside ``<name>/`` are ignored), or
  - ``<name>.npz``: a model with the single version 1 (the flat layout);
- one bundle file: the only model, named by its file stem, version 1.

The *version policy* picks which versions of each model are served: the newest
``latest_versions`` (default 1), ``all``, or the ``specific`` versions listed. With
``latest`` a version that fails to load is passed over for the next older one, so
a broken new bundle never takes a model offline.

:meth:`ModelRepository.reload` rescans the root and applies changes; the service
calls it on a timer (``poll_interval``) and from the repository endpoints. A new or
changed bundle is loaded and warmed (run once on zeros, so that numba kernels are
compiled) *before* it replaces anything; a bundle that fails either step is logged
and refused, and whatever was served before stays. The swap itself is one
assignment: a request holds the :class:`ModelEntry` it looked up, so requests in
flight finish on the old version (it *drains*), and later ones get the new one.

Names must match :data:`MODEL_NAME_PATTERN`, so a name can never carry a path
separator or ``..``; an entry whose name does not match is skipped with a warning.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import runtime

__all__ = [
    "MODEL_NAME_PATTERN",
    "ModelEntry",
    "ModelNotFoundError",
    "ModelRepository",
    "RepositoryError",
    "VersionPolicy",
    "find_bundles",
    "scan_repository",
    "validate_model_name",
    "warm_up",
]

logger = logging.getLogger(__name__)

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_NAME_RE = re.compile(MODEL_NAME_PATTERN)
_MAX_NAME_LENGTH = 128
BUNDLE_FILE = "model.npz"


class RepositoryError(RuntimeError):
    """The repository holds no model that can be served, or a load was refused."""


class ModelNotFoundError(LookupError):
    """No model (or no such version of it) is served under the requested name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ModelEntry:
    """One served model version: its name, version, bundle file and the loaded model."""

    name: str
    path: Path
    model: runtime.Model
    version: int = 1
    signature: tuple[int, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class VersionPolicy:
    """Which of a model's versions are served (see the module docstring)."""

    kind: Literal["latest", "all", "specific"] = "latest"
    latest: int = 1
    versions: tuple[int, ...] = ()

    def candidates(self, available: list[int]) -> tuple[list[int], int | None]:
        """Versions to try, newest first, and how many of them to keep (None: all that load)."""
        newest_first = sorted(available, reverse=True)
        if self.kind == "latest":
            return newest_first, self.latest
        if self.kind == "all":
            return newest_first, None
        return [v for v in newest_first if v in self.versions], None


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise ``ValueError``."""
    if len(name) > _MAX_NAME_LENGTH or not _NAME_RE.fullmatch(name) or ".." in name:
        raise ValueError(
            f"invalid model name {name!r}: names match {MODEL_NAME_PATTERN}, contain no "
            f"'..' and have at most {_MAX_NAME_LENGTH} characters"
        )
    return name


def scan_repository(root: Path) -> tuple[dict[str, dict[int, Path]], list[str]]:
    """What ``root`` holds on disk: ``{name: {version: bundle path}}``, and skip reasons.

    Raises :class:`RepositoryError` when ``root`` does not exist. Nothing is loaded.
    """
    root = Path(root)
    if root.is_file():
        return {root.stem: {1: root}}, []
    if not root.is_dir():
        raise RepositoryError(
            f"model repository {root} does not exist: expected a .npz bundle, or a folder "
            f"of <name>/<version>/{BUNDLE_FILE} and <name>.npz bundles"
        )
    found: dict[str, dict[int, Path]] = {}
    skipped: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.is_file() and entry.suffix == ".npz":
            name, versions = entry.stem, {1: entry}
        elif entry.is_dir():
            name = entry.name
            versions = {
                int(sub.name): sub / BUNDLE_FILE
                for sub in entry.iterdir()
                if sub.name.isdigit() and sub.is_dir() and (sub / BUNDLE_FILE).is_file()
            }
            if not versions:
                continue
        else:
            continue
        try:
            validate_model_name(name)
        except ValueError as exc:
            logger.warning("skipping %s: %s", entry, exc)
            skipped.append(f"{entry.name}: {exc}")
            continue
        if name in found:  # both <name>/ and <name>.npz: the versioned folder wins
            logger.warning("ignoring %s: model %r also has a versioned folder", entry, name)
            if entry.is_dir():
                found[name] = versions
            continue
        found[name] = versions
    return found, skipped


def find_bundles(path: Path) -> list[Path]:
    """List the bundle files ``path`` designates, or raise :class:`RepositoryError`.

    Cheap (nothing is loaded): ``forge serve`` calls it to fail fast, before the
    server starts, with a message that says what to do.
    """
    found, _ = scan_repository(Path(path))
    bundles = [p for versions in found.values() for _, p in sorted(versions.items())]
    if not bundles:
        raise RepositoryError(
            f"no model bundles (*.npz) in {path}: export one with forge.export and put it "
            f"at <name>.npz or <name>/<version>/{BUNDLE_FILE}, or point "
            f"FORGE_MODEL_REPOSITORY (or `forge serve PATH`) at a bundle or a folder"
        )
    return bundles


def warm_up(model: runtime.Model) -> None:
    """Run ``model`` once on zeros before it serves: :meth:`runtime.Model.warm_up`, which
    also imports numba and loads the kernels that large requests will use."""
    model.warm_up()


def _signature(path: Path) -> tuple[int, ...]:
    stat = path.stat()
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


class ModelRepository:
    """Served models by name and version; :meth:`reload` applies changes on disk.

    Build it with :meth:`from_path`, or from entries directly (tests, embedders).
    Lookups never block: the table is replaced whole on every change.
    """

    def __init__(
        self,
        entries: Mapping[str, ModelEntry] | None = None,
        *,
        root: Path | None = None,
        policy: VersionPolicy | None = None,
        verify: bool = True,
        warmup: bool = True,
    ) -> None:
        self._models: dict[str, dict[int, ModelEntry]] = {
            name: {entry.version: entry} for name, entry in sorted((entries or {}).items())
        }
        self.root = Path(root) if root is not None else None
        self.policy = policy or VersionPolicy()
        self.verify = verify
        self.warmup = warmup
        self._unloaded: set[str] = set()  # explicitly unloaded: polling leaves them alone
        self._failed: dict[tuple[str, int], tuple[tuple[int, ...], str]] = {}
        self._reload_lock = threading.Lock()

    @classmethod
    def from_path(
        cls,
        path: Path | str,
        *,
        verify: bool = True,
        policy: VersionPolicy | None = None,
        warmup: bool = False,
    ) -> ModelRepository:
        """Load the repository at ``path``; raise :class:`RepositoryError` if nothing loads."""
        repository = cls(root=Path(path), policy=policy, verify=verify, warmup=warmup)
        find_bundles(Path(path))
        repository.reload()
        if not repository._models:
            failures = list(repository.failures().values())
            raise RepositoryError(f"no model could be loaded from {path}: " + "; ".join(failures))
        return repository

    # -- lookups --------------------------------------------------------------------

    def get(self, name: str, version: int | str | None = None) -> ModelEntry:
        """The model served as ``name`` (its newest served version unless ``version``)."""
        try:
            validate_model_name(name)
        except ValueError as exc:
            raise ModelNotFoundError(name, str(exc)) from None
        versions = self._models.get(name)
        if not versions:
            available = ", ".join(self._models) or "none"
            raise ModelNotFoundError(
                name, f"no model named {name!r}; available models: {available}"
            )
        if version is None:
            return versions[max(versions)]
        # ASCII digits only ("²".isdigit() is true), and few enough for int()
        number = int(version) if re.fullmatch(r"[0-9]{1,18}", str(version)) else None
        if number is None or number not in versions:
            served = ", ".join(str(v) for v in sorted(versions))
            raise ModelNotFoundError(
                name, f"model {name!r} has no version {str(version)!r}; served versions: {served}"
            )
        return versions[number]

    def versions(self, name: str) -> list[int]:
        """The served versions of ``name``, oldest first (empty if none)."""
        return sorted(self._models.get(name, {}))

    def entries(self) -> list[ModelEntry]:
        """Every served model version, by name then version."""
        return [e for name in self._models for _, e in sorted(self._models[name].items())]

    def names(self) -> list[str]:
        """The served model names, sorted."""
        return sorted(self._models)

    def failures(self) -> dict[str, str]:
        """Bundles refused by the last loads: ``{"name/version": reason}``."""
        # a snapshot: a reload thread may change the dict while the event loop reads it
        failed = list(self._failed.items())
        return {f"{name}/{version}": reason for (name, version), (_, reason) in failed}

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    # -- changes --------------------------------------------------------------------

    def reload(self, names: list[str] | None = None) -> dict[str, list[int]]:
        """Rescan the root and apply what changed; return ``{name: served versions}``.

        ``names`` limits the work to those models. Models explicitly unloaded are
        left alone unless named. Safe to call from any thread (reloads run one at a time).
        """
        if self.root is None:
            return {name: self.versions(name) for name in self._models}
        with self._reload_lock:
            found, _ = scan_repository(self.root)
            targets = set(found) | set(self._models) if names is None else set(names)
            table = dict(self._models)
            for name in sorted(targets):
                if names is None and name in self._unloaded:
                    continue
                served = self._reload_one(name, found.get(name, {}), table.get(name, {}))
                if served:
                    table[name] = served
                elif name in table:
                    logger.info("model %r is no longer served (no bundle left on disk)", name)
                    del table[name]
            self._models = dict(sorted(table.items()))
            return {name: self.versions(name) for name in sorted(targets) if name in table}

    def load(self, name: str) -> list[int]:
        """Load (or reload) one model from disk; raise if it is not there or nothing loads."""
        validate_model_name(name)
        self._unloaded.discard(name)
        found, _ = scan_repository(self.root) if self.root is not None else ({}, [])
        if name not in found and name not in self._models:
            raise ModelNotFoundError(name, f"no model named {name!r} in the repository")
        self.reload([name])
        if name not in self._models:
            reasons = "; ".join(f"{k}: {v}" for k, v in self.failures().items()
                                if k.startswith(f"{name}/"))
            raise RepositoryError(f"model {name!r} could not be loaded: {reasons}")
        return self.versions(name)

    def unload(self, name: str) -> None:
        """Stop serving ``name`` (until :meth:`load`); requests in flight finish."""
        self.get(name)  # 404 for unknown names
        with self._reload_lock:
            self._unloaded.add(name)
            self._models = {k: v for k, v in self._models.items() if k != name}
        logger.info("model %r unloaded", name)

    def _reload_one(
        self, name: str, on_disk: dict[int, Path], current: dict[int, ModelEntry]
    ) -> dict[int, ModelEntry]:
        order, keep = self.policy.candidates(list(on_disk))
        served: dict[int, ModelEntry] = {}
        for version in order:
            if keep is not None and len(served) >= keep:
                break
            entry = self._load_version(name, version, on_disk[version], current.get(version))
            if entry is not None:
                served[version] = entry
        if not served and on_disk and current:
            return current  # nothing new loads: keep serving what we had
        for version in sorted(set(served) - set(current)):
            logger.info("model %r version %d is now served", name, version)
        for version in sorted(set(current) - set(served)):
            logger.info("model %r version %d retired (drains its requests in flight)", name, version)
        return dict(sorted(served.items()))

    def _load_version(
        self, name: str, version: int, path: Path, current: ModelEntry | None
    ) -> ModelEntry | None:
        try:
            signature = _signature(path)
        except OSError:
            return current
        if current is not None and current.signature == signature:
            return current
        failed = self._failed.get((name, version))
        if failed is not None and failed[0] == signature:
            return current  # refused before and unchanged since: do not retry or re-log
        try:
            model = runtime.load(path, verify=self.verify)
            if self.warmup:
                warm_up(model)
        except Exception as exc:  # a broken bundle must not stop the others
            reason = f"{type(exc).__name__}: {exc}"
            where = path.name if path.parent == self.root or path == self.root else (
                f"{name}/{version}/{path.name}")
            logger.error("refusing model %r version %d from %s (%s)%s", name, version, path,
                         reason, "; the previous version keeps serving" if current else "")
            self._failed[(name, version)] = (signature, f"{where}: {reason}")
            return current
        self._failed.pop((name, version), None)
        logger.info("loaded model %r version %d from %s", name, version, path)
        return ModelEntry(name=name, path=path, model=model, version=version, signature=signature)
