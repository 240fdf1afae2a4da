"""A cheap motion gate: does anything move between two processed frames?

The detector costs ~95 % of indexing; on footage where nothing happens for minutes (most
CCTV) it can be skipped. Each processed frame is shrunk to a small grey copy
(:func:`small_grey`: ``width`` pixels wide, area-averaged, then blurred, which also
removes most sensor and compression noise) and compared with the previous processed
frame's copy: a pixel *changed* when its grey level differs by more than ``diff``, and
the frame *has motion* when the changed pixels, after a 3x3 opening that drops isolated
specks, cover at least ``area`` of the picture. A person walking at any distance the
detector can see changes far more than that between two frames a fifth of a second apart.

The pipeline (``core.pipeline``) decides, per frame, whether to run the detector: always
while a track is alive (so a person standing still stays found), else only from the first
frame with motion on. The gate's whole state is the previous small copy, a plain numpy
array: it is pickled with the run's checkpoint, so a resumed run takes the same decisions
as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_OPEN = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class MotionConfig:
    """Settings of the gate (part of a run's settings key).

    Attributes:
        width: Width in pixels of the small grey copy (height keeps the aspect ratio).
        diff: Grey-level difference (0-255) above which a pixel has changed.
        area: Share of the picture's pixels that must change for the frame to have motion.
    """

    width: int = 160
    diff: int = 12
    area: float = 0.0008

    def __post_init__(self) -> None:
        if self.width < 16 or not 0 < self.diff < 255 or not 0.0 < self.area < 1.0:
            raise ValueError(f"MotionConfig needs width >= 16, 0 < diff < 255, 0 < area < 1; got {self}")


def small_grey(image: np.ndarray, width: int) -> np.ndarray:
    """``(h, width)`` uint8 grey copy of a BGR image, area-averaged and blurred (5x5 Gaussian).

    Grey first, then shrunk: one channel to average instead of three (3x cheaper on a frame).
    """
    h, w = image.shape[:2]
    height = max(1, int(round(h * width / w)))
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(small, (5, 5), 0)


def changed_share(previous: np.ndarray, current: np.ndarray, diff: int) -> float:
    """Share of pixels whose grey level changed by more than ``diff`` (isolated specks removed)."""
    changed = (cv2.absdiff(previous, current) > diff).astype(np.uint8)
    changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, _OPEN)
    return float(changed.mean())


class MotionGate:
    """Frame differencing between consecutive processed frames (see the module notes).

    Picklable (its state is the previous small copy), deterministic.

    Args:
        config: The gate's settings.
    """

    def __init__(self, config: MotionConfig | None = None) -> None:
        self.config = config or MotionConfig()
        self.previous: np.ndarray | None = None

    def update(self, small: np.ndarray) -> bool:
        """Compare a processed frame's small copy (:func:`small_grey`) with the previous one and keep it.

        Returns:
            True when the frame has motion; the first frame, or one of another size (a new
            sequence), always does.
        """
        previous, self.previous = self.previous, small
        if previous is None or previous.shape != small.shape:
            return True
        return changed_share(previous, small, self.config.diff) >= self.config.area
