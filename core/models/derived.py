"""Models made from other models on this machine: the int8 and float16 versions of a detector.

A derived model is a model of its own: its own file next to the others, its own sha256
(recorded when it is made), and so its own identity in a run's settings key. Which
derived models exist is recorded in ``models/local.json`` (per install, never committed)::

    {"schema": 1, "derived": [{"file": "yolo11n.int8.onnx", "precision": "int8",
      "sha256": "...", "source_file": "yolo11n.onnx", "source_sha256": "...",
      "made": "2026-01-01T10:00:00+00:00", "about": {...}}]}

A derived model is found by the sha256 of the file it was made from (so a copy of a
manifest model kept elsewhere finds it too) and its precision; a recorded model whose
file is gone or whose bytes no longer match the recorded sha256 is not used.

Precision (``PRECISIONS``) is what a user chooses; :func:`resolve_precision` turns
``"auto"`` into int8 on the CPU and float16 on CUDA, and :func:`model_for_precision`
picks the file to load, with one sentence when it has to fall back to float32.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core import paths
from core.errors import ModelError
from core.fileio import sha256_file

PRECISIONS = ("auto", "int8", "fp16", "fp32")
"""Detector precisions a user can ask for; ``auto``: int8 on the CPU, fp16 on CUDA."""

DERIVED_PRECISIONS = ("int8", "fp16")
"""Precisions that are made from a float32 model (the others are the model itself)."""

LOCAL_FILE = "local.json"
"""The derived-model record in the models folder."""


@dataclass(frozen=True)
class DerivedModel:
    """One model made on this machine from another one.

    Attributes:
        file: File name in the models folder.
        precision: ``"int8"`` or ``"fp16"``.
        sha256: Digest of the file, recorded when it was made.
        source_file: File name of the model it was made from.
        source_sha256: Digest of that model.
        made: ISO time it was made.
        about: How it was made and what was measured (calibration source, agreement with the
            float model), the same facts as in its ONNX metadata.
        folder: The models folder it lives in.
    """

    file: str
    precision: str
    sha256: str
    source_file: str
    source_sha256: str
    made: str
    about: dict[str, Any] = field(default_factory=dict)
    folder: Path = field(default_factory=paths.models_dir, compare=False)

    @property
    def path(self) -> Path:
        """Where the file lives."""
        return self.folder / self.file

    def usable(self) -> bool:
        """Whether the file is there with the recorded bytes."""
        return self.path.is_file() and sha256_file(self.path, cached=True) == self.sha256


def derived_file_name(source: Path, precision: str) -> str:
    """``yolo11n.onnx`` -> ``yolo11n.int8.onnx``."""
    return f"{source.stem}.{precision}{source.suffix or '.onnx'}"


def _local_path(folder: Path | None) -> Path:
    return (Path(folder) if folder else paths.models_dir()) / LOCAL_FILE


def load_derived(folder: Path | None = None) -> list[DerivedModel]:
    """The derived models recorded in ``folder`` (default: the models folder); empty when none.

    Raises:
        ModelError: ``local.json`` exists but cannot be read.
    """
    where = _local_path(folder)
    if not where.is_file():
        return []
    try:
        raw = json.loads(where.read_text(encoding="utf-8"))
        return [DerivedModel(**{k: v for k, v in item.items() if k != "folder"}, folder=where.parent)
                for item in raw.get("derived", [])]
    except (OSError, json.JSONDecodeError, TypeError) as exc:
        raise ModelError(f"{where}: unreadable record of derived models ({exc}); delete it and run "
                         "`python -m core.models fetch` to make them again.") from None


def record_derived(model: DerivedModel) -> None:
    """Add (or replace: same file name) a derived model in its folder's ``local.json``, atomically."""
    others = [m for m in load_derived(model.folder) if m.file != model.file]
    items = [{k: v for k, v in asdict(m).items() if k != "folder"} for m in [*others, model]]
    where = _local_path(model.folder)
    tmp = where.with_name(where.name + ".part")
    tmp.write_text(json.dumps({"schema": 1, "derived": items}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, where)


def new_record(source: Path, out: Path, precision: str, about: dict[str, Any]) -> DerivedModel:
    """The record of a file just made in ``out`` from ``source`` (digests computed now)."""
    return DerivedModel(file=out.name, precision=precision, sha256=sha256_file(out),
                        source_file=source.name, source_sha256=sha256_file(source, cached=True),
                        made=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                        about=about, folder=out.parent)


def find_derived(source: str | Path, precision: str, folder: Path | None = None) -> DerivedModel | None:
    """The usable derived model of ``precision`` made from ``source`` (matched by its sha256), or ``None``."""
    source = Path(source)
    if not source.is_file():
        return None
    digest = sha256_file(source, cached=True)
    for model in load_derived(folder):
        if model.source_sha256 == digest and model.precision == precision and model.usable():
            return model
    return None


def resolve_precision(precision: str, on_gpu: bool) -> str:
    """``"auto"`` -> ``"fp16"`` on a GPU, ``"int8"`` on the CPU; other values unchanged.

    Raises:
        ValueError: Not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "fp16" if on_gpu else "int8"
    return precision


def model_for_precision(source: str | Path, precision: str, *, on_gpu: bool,
                        folder: Path | None = None) -> tuple[Path, str, str | None]:
    """The detector file to load for a precision.

    Args:
        source: The float32 model (a manifest model or any file).
        precision: One of :data:`PRECISIONS`.
        on_gpu: Whether the model will run on CUDA (decides ``"auto"``).
        folder: Models folder holding ``local.json`` (default: the models folder).

    Returns:
        ``(path, precision really used, note)``: the derived file when it exists, else the float
        model, with one sentence saying how to make the derived one when that precision was asked
        for by name (``"auto"`` falls back quietly, as ``device="auto"`` does to the CPU).
    """
    wanted = resolve_precision(precision, on_gpu)
    source = Path(source)
    if wanted == "fp32":
        return source, "fp32", None
    found = find_derived(source, wanted, folder)
    if found is not None:
        return found.path, wanted, None
    note = None
    if precision != "auto":
        note = (f"no {wanted} version of {source.name} has been made on this machine; running it in "
                f"float32 (`python -m core.models quantize {source} --to {wanted}` makes one)")
    return source, "fp32", note


def detector_file(float_path: Path, precision: str, on_gpu: bool, notes: list[str]) -> Path:
    """The detector file an engine runs for ``precision``; the float16 version is made on the spot on a GPU.

    A sentence goes to ``notes`` when the precision asked for cannot be had (the float32 model runs).
    """
    path, used, note = model_for_precision(float_path, precision, on_gpu=on_gpu)
    if used == "fp32" and resolve_precision(precision, on_gpu) == "fp16":
        from core.models.quantize import convert_float16

        try:
            return convert_float16(float_path).path
        except (ModelError, OSError, ImportError) as exc:
            note = f"{float_path.name} runs in float32: making its float16 version failed ({exc})"
    if note is not None:
        notes.append(note)
    return path
