"""The set of models the service answers for.

:class:`ModelRepository` maps a model name to a loaded :class:`runtime.Model`.
This first version loads every bundle under one path once, at startup:

- ``model_path`` is a folder: every ``*.npz`` in it is a model named by its file
  stem (``digits.npz`` -> ``digits``). A bundle that fails to load is logged and
  skipped; if none loads, startup fails with :class:`RepositoryError`.
- ``model_path`` is a file: that one bundle is the only model.

Names must match :data:`MODEL_NAME_PATTERN`, so a name can never carry a path
separator or ``..``; a file whose stem does not match is skipped with a warning.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import runtime

__all__ = [
    "MODEL_NAME_PATTERN",
    "ModelEntry",
    "ModelNotFoundError",
    "ModelRepository",
    "RepositoryError",
    "find_bundles",
    "validate_model_name",
]

logger = logging.getLogger(__name__)

MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_NAME_RE = re.compile(MODEL_NAME_PATTERN)
_MAX_NAME_LENGTH = 128


class RepositoryError(RuntimeError):
    """The model path holds no model that can be served (a startup error)."""


class ModelNotFoundError(LookupError):
    """No model is served under the requested name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ModelEntry:
    """One served model: its name, the bundle it came from and the loaded model."""

    name: str
    path: Path
    model: runtime.Model


def validate_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name, else raise ``ValueError``."""
    if len(name) > _MAX_NAME_LENGTH or not _NAME_RE.fullmatch(name) or ".." in name:
        raise ValueError(
            f"invalid model name {name!r}: names match {MODEL_NAME_PATTERN}, contain no "
            f"'..' and have at most {_MAX_NAME_LENGTH} characters"
        )
    return name


def find_bundles(path: Path) -> list[Path]:
    """List the bundle files ``path`` designates, or raise :class:`RepositoryError`.

    Cheap (nothing is loaded): ``forge serve`` calls it to fail fast, before the
    server starts, with a message that says what to do.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        bundles = sorted(p for p in path.glob("*.npz") if p.is_file())
        if not bundles:
            raise RepositoryError(
                f"no model bundles (*.npz) in {path}: export one with forge.export, "
                f"or point FORGE_MODEL_PATH (or `forge serve PATH`) at a bundle or a "
                f"folder of bundles"
            )
        return bundles
    raise RepositoryError(
        f"model path {path} does not exist: expected a .npz bundle or a folder of them"
    )


class ModelRepository:
    """Models by name, read-only once built; ``get`` raises on an unknown name.

    Build it with :meth:`from_path`, or from entries directly (tests, embedders).
    """

    def __init__(self, entries: Mapping[str, ModelEntry] | None = None) -> None:
        self._entries: dict[str, ModelEntry] = dict(sorted((entries or {}).items()))

    @classmethod
    def from_path(cls, path: Path | str, *, verify: bool = True) -> ModelRepository:
        """Load every bundle under ``path``; raise :class:`RepositoryError` if none loads."""
        path = Path(path)
        entries: dict[str, ModelEntry] = {}
        failures: list[str] = []
        for bundle in find_bundles(path):
            try:
                name = validate_model_name(bundle.stem)
            except ValueError as exc:
                logger.warning("skipping %s: %s", bundle, exc)
                failures.append(f"{bundle.name}: {exc}")
                continue
            try:
                model = runtime.load(bundle, verify=verify)
            except Exception as exc:  # a broken bundle must not stop the others
                reason = f"{type(exc).__name__}: {exc}"
                logger.error("skipping model %r: cannot load %s (%s)", name, bundle, reason)
                failures.append(f"{bundle.name}: {reason}")
                continue
            entries[name] = ModelEntry(name=name, path=bundle, model=model)
            logger.info("loaded model %r from %s", name, bundle)
        if not entries:
            raise RepositoryError(
                f"no model could be loaded from {path}: " + "; ".join(failures)
            )
        return cls(entries)

    def get(self, name: str) -> ModelEntry:
        """Return the model served as ``name``, or raise :class:`ModelNotFoundError`."""
        try:
            validate_model_name(name)
        except ValueError as exc:
            raise ModelNotFoundError(name, str(exc)) from None
        try:
            return self._entries[name]
        except KeyError:
            available = ", ".join(self._entries) or "none"
            raise ModelNotFoundError(
                name, f"no model named {name!r}; available models: {available}"
            ) from None

    def names(self) -> list[str]:
        """The served model names, sorted."""
        return list(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
