"""What makes an indexing run: its settings (:class:`IndexSettings`) and its settings key.

A run is identified by its video and its *settings key*: the sha256 of both model files'
sha256 (a derived int8 or float16 detector is a file of its own, so a model of its own),
their result-relevant configuration, the tracker's configuration and the result-relevant
:class:`IndexSettings` (:func:`run_settings`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.fileio import sha256_file
from core.motion import MotionConfig
from core.types import Detector, Embedder, Tracker

_EXECUTION_FIELDS = ("det_batch", "embed_batch", "commit_every", "prefetch")

DEFAULT_RATE = 3.0
"""Processed frames per second of video by default (chosen by measurement: see the README's Performance)."""


@dataclass(frozen=True)
class IndexSettings:
    """How a video is indexed.

    Fields that change the result are part of the run's settings key; ``det_batch``,
    ``embed_batch``, ``commit_every`` and ``prefetch`` only change speed and checkpoint spacing
    (a resumed run keeps the batch and checkpoint spacing it started with).

    Sampling: by default frames are processed at ``rate`` per second of video, whatever its
    frame rate (:meth:`stride_for`: stride 3 at 10 fps, 8 at 25 fps, 10 at 30 fps), so a 25 fps
    and a 10 fps recording of one scene cost the same and the tracker's ``max_age``/``min_hits``
    (counted in processed frames) mean the same time on both. A fixed ``stride`` instead
    processes every ``stride``-th frame (``rate`` is then ``None``).

    Attributes:
        stride: Process every ``stride``-th frame; ``None``: derive it from ``rate``.
        rate: Processed frames per second of video (used when ``stride`` is ``None``).
        motion_gate: Skip the detector on frames where nothing moves while no track is alive
            (:mod:`core.motion`).
        motion: The gate's settings (part of the key only when the gate is on).
        crops_per_track: K, embeddings kept per track.
        candidates_per_track: Candidate crops held per live track (>= K), spread over its life.
        min_track_sightings: Tracks seen in fewer processed frames are dropped as noise.
        track_gap: Processed frames without a match after which a track has ended (raised to
            the tracker's ``max_age`` + 1 when the tracker has that attribute).
        full_quality_height: Box height in pixels from which size no longer improves quality.
        border_margin: A box within this many pixels of the image border counts as cut.
        min_crop_size: ``(h, w)`` smallest box used as a crop.
        det_batch: Frames per detector call.
        embed_batch: Crops per embedder call.
        commit_every: Processed frames between checkpoints (rounded up to a multiple of ``det_batch``).
        prefetch: Frames decoded and letterboxed ahead by the decoding thread (0: no thread, decode
            in turn with inference).
    """

    stride: int | None = None
    rate: float | None = DEFAULT_RATE
    motion_gate: bool = True
    motion: MotionConfig = field(default_factory=MotionConfig)
    crops_per_track: int = 4
    candidates_per_track: int = 8
    min_track_sightings: int = 2
    track_gap: int = 30
    full_quality_height: int = 128
    border_margin: int = 2
    min_crop_size: tuple[int, int] = (16, 8)
    det_batch: int = 4
    embed_batch: int = 32
    commit_every: int = 48
    prefetch: int = 8

    def __post_init__(self) -> None:
        for name in ("crops_per_track", "min_track_sightings", "track_gap", "det_batch",
                     "embed_batch", "commit_every", "full_quality_height"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"IndexSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.stride is not None:
            if int(self.stride) < 1:
                raise ValueError(f"IndexSettings.stride must be >= 1, got {self.stride}")
            object.__setattr__(self, "stride", int(self.stride))
            object.__setattr__(self, "rate", None)  # a fixed stride makes the rate irrelevant
        elif self.rate is None or not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"IndexSettings needs a stride >= 1 or a rate > 0, got rate={self.rate}")
        else:
            object.__setattr__(self, "rate", float(self.rate))
        if self.prefetch < 0:
            raise ValueError(f"IndexSettings.prefetch must be >= 0, got {self.prefetch}")
        if self.candidates_per_track < self.crops_per_track:
            raise ValueError("IndexSettings.candidates_per_track must be >= crops_per_track")
        object.__setattr__(self, "min_crop_size", (int(self.min_crop_size[0]), int(self.min_crop_size[1])))
        rounded = -(-self.commit_every // self.det_batch) * self.det_batch
        object.__setattr__(self, "commit_every", rounded)

    def stride_for(self, fps: float) -> int:
        """The stride for a video of ``fps`` frames per second: ``stride``, else ``fps / rate`` rounded."""
        if self.stride is not None:
            return self.stride
        assert self.rate is not None
        return max(1, int(math.floor(float(fps) / self.rate + 0.5)))

    def result_fields(self) -> dict[str, Any]:
        """The settings that change the result (part of the settings key)."""
        out = {k: v for k, v in dataclasses.asdict(self).items() if k not in _EXECUTION_FIELDS}
        if not self.motion_gate:
            out.pop("motion")
        return out


# --------------------------------------------------------------------------- model identity


def model_identity(model: object) -> tuple[str, str]:
    """``(name, sha256)`` of a detector or embedder: its ``sha256`` attribute or its ``path`` file's digest.

    Raises:
        ValueError: The object has neither.
    """
    path = getattr(model, "path", None)
    sha = getattr(model, "sha256", None)
    name = getattr(model, "name", None) or (Path(path).stem if path else type(model).__name__)
    if not isinstance(name, str):
        name = Path(path).stem if path else type(model).__name__
    if sha is None:
        if path is None:
            raise ValueError(f"{type(model).__name__} has neither a sha256 nor a path attribute")
        sha = sha256_file(path, cached=True)
    return str(name), str(sha)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


_DETECTOR_ATTRS = ("conf", "iou", "person_classes", "person_ids", "merge_person_classes", "imgsz", "rect",
                   "end2end", "precision")
_EMBEDDER_ATTRS = ("input_size", "color_order", "mean", "std", "min_size")


def _config_of(obj: object, attrs: tuple[str, ...]) -> dict[str, Any]:
    return {a: _jsonable(getattr(obj, a)) for a in attrs if hasattr(obj, a)}


def tracker_config(tracker: object) -> dict[str, Any]:
    """Describe a fresh tracker: its ``config`` dataclass if it has one, else its public scalar attributes."""
    cfg = getattr(tracker, "config", None)
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        values = dataclasses.asdict(cfg)
    else:
        values = {k: v for k, v in vars(tracker).items()
                  if not k.startswith("_") and isinstance(v, (int, float, str, bool, tuple))}
    return {"type": f"{type(tracker).__module__}.{type(tracker).__qualname__}", **_jsonable(values)}


PHOTO_FIELDS = ("full_quality_height", "border_margin", "min_crop_size")
"""The :class:`IndexSettings` that change a photo collection's result (crop quality only)."""


def photo_run_settings(detector: Detector, embedder: Embedder, settings: IndexSettings, *, max_side: int,
                       ) -> tuple[dict[str, Any], str]:
    """The settings recorded with a photo collection's run (``kind: "photos"``) and its settings key.

    The key covers both models, their configuration, the longest side photos are decoded at
    (``max_side``, ``core.photos.PHOTO_MAX_SIDE``) and :data:`PHOTO_FIELDS`; no tracker, stride
    or motion setting (a photo run has none), so changing those does not index photos again.
    """
    det_name, det_sha = model_identity(detector)
    reid_name, reid_sha = model_identity(embedder)
    fields = {f: getattr(settings, f) for f in PHOTO_FIELDS}
    relevant = {"kind": "photos", "detector": det_sha, "reid": reid_sha, "max_side": int(max_side),
                "detector_config": _config_of(detector, _DETECTOR_ATTRS),
                "reid_config": _config_of(embedder, _EMBEDDER_ATTRS), "settings": fields}
    key = hashlib.sha256(json.dumps(_jsonable(relevant), sort_keys=True).encode()).hexdigest()
    recorded = {"kind": "photos", "stride": 1, "max_side": int(max_side), **fields,
                **{f: getattr(settings, f) for f in _EXECUTION_FIELDS},
                "detector_name": det_name, "reid_name": reid_name,
                "detector_config": relevant["detector_config"], "reid_config": relevant["reid_config"]}
    return _jsonable(recorded), key


def run_settings(detector: Detector, embedder: Embedder, tracker: Tracker, settings: IndexSettings,
                 ) -> tuple[dict[str, Any], str]:
    """The settings recorded with a run and its settings key.

    Returns:
        ``(settings dict, settings_key)``; the key is the sha256 of the result-relevant part.
    """
    det_name, det_sha = model_identity(detector)
    reid_name, reid_sha = model_identity(embedder)
    relevant = {
        "detector": det_sha, "detector_config": _config_of(detector, _DETECTOR_ATTRS),
        "reid": reid_sha, "reid_config": _config_of(embedder, _EMBEDDER_ATTRS),
        "tracker": tracker_config(tracker), "settings": settings.result_fields(),
    }
    key = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()
    recorded = {**dataclasses.asdict(settings), "detector_name": det_name, "reid_name": reid_name,
                "detector_config": relevant["detector_config"], "reid_config": relevant["reid_config"],
                "tracker": relevant["tracker"]}
    return _jsonable(recorded), key
