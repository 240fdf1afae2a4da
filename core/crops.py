"""Crops of a track: how good a box is as a ReID crop, and the candidates a live track keeps.

Each confirmed track collects up to ``candidates_per_track`` candidate crops, chosen for
:func:`crop_quality` (confident, large, not cut by the image border, not covered by other
people) and spread over the track's life (:meth:`LiveTrack.offer`); when it ends, the best
of each of ``crops_per_track`` equal time bins are embedded (:meth:`LiveTrack.choose`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from core.index_settings import IndexSettings


def crop_quality(box: np.ndarray, score: float, others: np.ndarray, width: int, height: int,
                 settings: IndexSettings) -> float:
    """How good a box is as a ReID crop (0 = unusable).

    ``score x min(1, h / full_quality_height) x (0.3 if cut by the border) x (0.5 if wider
    than tall / 1.2) x (1 - the largest fraction of the box covered by another person)``.

    Args:
        box: ``(4,)`` xyxy pixels.
        score: Detector confidence.
        others: ``(M, 4)`` boxes of the other people in the frame.
        width: Image width.
        height: Image height.
        settings: For ``full_quality_height``, ``border_margin``, ``min_crop_size``.

    Returns:
        The quality in ``[0, 1]``.
    """
    x1, y1 = max(float(box[0]), 0.0), max(float(box[1]), 0.0)
    x2, y2 = min(float(box[2]), float(width)), min(float(box[3]), float(height))
    w, h = x2 - x1, y2 - y1
    if not (math.isfinite(w) and math.isfinite(h)):
        return 0.0
    if h < settings.min_crop_size[0] or w < settings.min_crop_size[1]:
        return 0.0
    q = float(score) * min(1.0, h / settings.full_quality_height)
    m = settings.border_margin
    if box[0] <= m or box[1] <= m or box[2] >= width - m or box[3] >= height - m:
        q *= 0.3
    if h < 1.2 * w:
        q *= 0.5
    if len(others):
        ix = np.clip(np.minimum(others[:, 2], x2) - np.maximum(others[:, 0], x1), 0, None)
        iy = np.clip(np.minimum(others[:, 3], y2) - np.maximum(others[:, 1], y1), 0, None)
        q *= 1.0 - float(np.max(ix * iy)) / (w * h)
    return max(q, 0.0)


def copy_crop(image: np.ndarray, box: np.ndarray, input_size: tuple[int, int] | None) -> np.ndarray:
    """Copy a box out of the image; shrink it to the embedder input when larger (same result, less memory).

    The embedder resizes crops with ``cv2.INTER_LINEAR`` to its input size; resizing to exactly that size
    here first makes its own resize the identity, so the embedding does not change.
    """
    hh, ww = image.shape[:2]
    x1, y1 = max(int(math.floor(box[0])), 0), max(int(math.floor(box[1])), 0)
    x2, y2 = min(int(math.ceil(box[2])), ww), min(int(math.ceil(box[3])), hh)
    crop = image[y1:y2, x1:x2]
    if input_size is not None and crop.shape[0] * crop.shape[1] > input_size[0] * input_size[1]:
        return cv2.resize(crop, (input_size[1], input_size[0]), interpolation=cv2.INTER_LINEAR)
    return crop.copy()


MOVED_HEIGHTS = 0.5
"""A track has *moved* once its box centre has been this many first-box heights from its first centre."""


def has_moved(first: tuple[float, float, float, float], box: np.ndarray) -> bool:
    """Whether ``box`` (xyxy) is more than :data:`MOVED_HEIGHTS` heights of ``first`` away from it."""
    height = max(first[3] - first[1], 1.0)
    dx = (box[0] + box[2] - first[0] - first[2]) / 2
    dy = (box[1] + box[3] - first[1] - first[3]) / 2
    return bool(math.hypot(dx, dy) > MOVED_HEIGHTS * height)


@dataclass
class Candidate:
    """A candidate crop of a live track: its frame, its :func:`crop_quality` and the pixels."""

    frame: int
    quality: float
    crop: np.ndarray = field(repr=False)


@dataclass
class LiveTrack:
    """A track being followed: its sightings so far and its candidate crops (pickled in the state).

    ``track_id`` is the id the track gets in the store (the pipeline's own numbering, see the
    module notes); ``tracker_id`` is the id the tracker gave it; ``moved`` whether its box centre
    has ever been more than :data:`MOVED_HEIGHTS` box heights away from where it was first seen.
    """

    track_id: int
    tracker_id: int
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    last_ordinal: int = 0
    moved: bool = False

    def offer(self, frame: int, quality: float, capacity: int) -> Candidate | None:
        """Add a candidate slot and prune to ``capacity``.

        Of the two candidates closest in time (the earliest such pair on ties) the lower-quality
        one goes (the later one on equal quality), which keeps good crops spread over the track.

        Returns:
            The new slot when it was kept (the caller fills in its crop), else ``None``.
        """
        new = Candidate(frame, quality, np.empty((0, 0, 3), np.uint8))
        self.candidates.append(new)
        while len(self.candidates) > capacity:
            gaps = [b.frame - a.frame for a, b in zip(self.candidates, self.candidates[1:], strict=False)]
            i = int(np.argmin(gaps))
            a, b = self.candidates[i], self.candidates[i + 1]
            del self.candidates[i if a.quality < b.quality else i + 1]
        return new if any(c is new for c in self.candidates) else None

    def choose(self, k: int) -> list[Candidate]:
        """Up to ``k`` candidates: the best of each of ``k`` equal time bins, then the best others."""
        if len(self.candidates) <= k:
            return list(self.candidates)
        first, last = self.frames[0], self.frames[-1]
        span = max(last - first + 1, 1)
        chosen: list[Candidate] = []
        for b in range(k):
            lo, hi = first + span * b / k, first + span * (b + 1) / k
            in_bin = [c for c in self.candidates if lo <= c.frame < hi and c not in chosen]
            if in_bin:
                chosen.append(max(in_bin, key=lambda c: (c.quality, -c.frame)))
        rest = sorted((c for c in self.candidates if all(c is not x for x in chosen)),
                      key=lambda c: (-c.quality, c.frame))
        chosen += rest[: k - len(chosen)]
        return sorted(chosen, key=lambda c: c.frame)
