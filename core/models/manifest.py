"""Read ``models/manifest.json`` and pick the models the app runs with.

The manifest lists each model once: file name, task (``detect`` or ``reid``), sha256,
licence, where it comes from, and what a model without ONNX metadata needs to be
run (``preprocess`` for ReID models, ``person_classes`` for detectors). Entries are
in order of preference: the first present model of a task is the default.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import paths
from core.fileio import sha256_file
from core.errors import ModelError

TASKS = ("detect", "reid")
FETCH_HINT = "python -m core.models fetch"


@dataclass(frozen=True)
class ModelEntry:
    """One model of the manifest.

    Attributes:
        name: Short unique name, e.g. ``osnet_x0_25_msmt17``.
        task: ``detect`` or ``reid``.
        file: File name inside the models folder.
        sha256: Expected digest of the file, or ``None`` when the file is produced at
            install time (exported or converted) and so differs between installs.
        licence: Licence of the weights (and data terms).
        description: One or two sentences for people.
        source: How to obtain the file (``kind`` is ``download``, ``convert``,
            ``ultralytics-export`` or ``local``), see ``core.models.fetch``.
        person_classes: Detector class names that are people (detectors only).
        preprocess: ``input_size [h, w]``, ``color_order``, ``mean``, ``std`` for a ReID
            model without metadata (``None`` when the model carries its own).
        tracker: Tracker keyword arguments suited to this detector's confidence scale
            (detectors only), e.g. ``{"high_thresh": 0.4}``; empty for the defaults.
        folder: The models folder the entry resolves against.
    """

    name: str
    task: str
    file: str
    sha256: str | None
    licence: str
    description: str
    source: dict[str, Any]
    person_classes: tuple[str, ...] = ()
    preprocess: dict[str, Any] | None = None
    tracker: dict[str, Any] = field(default_factory=dict)
    folder: Path = field(default_factory=paths.models_dir)

    @property
    def path(self) -> Path:
        """Where the model file lives (it may not exist yet)."""
        return self.folder / self.file

    @property
    def present(self) -> bool:
        """Whether the model file exists."""
        return self.path.is_file()


def _entry(raw: dict[str, Any], folder: Path, where: Path) -> ModelEntry:
    try:
        task = raw["task"]
        if task not in TASKS:
            raise ValueError(f"task {task!r} is not one of {', '.join(TASKS)}")
        return ModelEntry(
            name=raw["name"],
            task=task,
            file=raw["file"],
            sha256=raw.get("sha256"),
            licence=raw.get("licence", "unknown"),
            description=raw.get("description", ""),
            source=dict(raw.get("source", {"kind": "local"})),
            person_classes=tuple(raw.get("person_classes", ("person",) if task == "detect" else ())),
            preprocess=raw.get("preprocess"),
            tracker=dict(raw.get("tracker", {})),
            folder=folder,
        )
    except (KeyError, ValueError) as exc:
        raise ModelError(f"{where}: bad model entry {raw.get('name', raw)!r}: {exc}") from None


def load_manifest(path: Path | None = None, folder: Path | None = None) -> list[ModelEntry]:
    """Read the manifest.

    Args:
        path: Manifest file; defaults to the project's ``models/manifest.json``.
        folder: Models folder the entries resolve against; defaults to
            ``core.paths.models_dir()``.

    Returns:
        The entries in order of preference.

    Raises:
        ModelError: If the manifest is missing or malformed.
    """
    path = Path(path) if path else paths.manifest_path()
    folder = Path(folder) if folder else paths.models_dir()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: model manifest not found") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: model manifest is not valid JSON ({exc})") from None
    entries = [_entry(item, folder, path) for item in raw.get("models", [])]
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ModelError(f"{path}: model names must be unique, got {names}")
    return entries


def default_model(task: str, entries: list[ModelEntry] | None = None) -> ModelEntry:
    """Return the first present model of ``task`` in manifest order.

    Raises:
        ModelError: If ``task`` is unknown or no model of that task is present, with
            the command that fetches the models.
    """
    if task not in TASKS:
        raise ModelError(f"unknown model task {task!r}; valid tasks: {', '.join(TASKS)}")
    entries = load_manifest() if entries is None else entries
    of_task = [e for e in entries if e.task == task]
    for entry in of_task:
        if entry.present:
            return entry
    folder = of_task[0].folder if of_task else paths.models_dir()
    wanted = ", ".join(e.file for e in of_task)
    raise ModelError(
        f"no {task} model found in {folder} (looked for {wanted}); fetch the models with "
        f"`{FETCH_HINT}` (or `install.sh --offline DIR`)"
    )


def entry_for_file(path: str | Path, entries: list[ModelEntry] | None = None) -> ModelEntry | None:
    """Find the manifest entry describing a model file, by file name or by sha256.

    A user may point the app at a copy of a manifest model kept elsewhere; its
    preprocessing then still comes from the manifest.

    Returns:
        The entry, or ``None`` for a model the manifest does not know.
    """
    path = Path(path)
    entries = load_manifest() if entries is None else entries
    for entry in entries:
        if entry.file == path.name:
            return entry
    if path.is_file():
        digest = sha256_file(path)
        for entry in entries:
            if entry.sha256 == digest:
                return entry
    return None


def resolve_model(task: str, path: str | Path | None = None) -> tuple[Path, ModelEntry | None]:
    """Pick the model file for ``task``: the given path, else the manifest default.

    Args:
        task: ``detect`` or ``reid``.
        path: A model file chosen by the user, or ``None`` for the default.

    Returns:
        ``(path, entry)`` where ``entry`` is the manifest entry of that file, if any.

    Raises:
        ModelError: If the given file does not exist or no default model is present.
    """
    if path is None:
        entry = default_model(task)
        return entry.path, entry
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found; fetch the default models with `{FETCH_HINT}`")
    return path, entry_for_file(path)
