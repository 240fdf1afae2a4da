"""The people's stored boxes over a stretch of frames, for a player that shows many frames.

A player asks for the boxes of every frame it shows. One database read per frame is
what a slow library (a network drive) cannot afford, so the boxes are read a *span*
of frames at a time (:meth:`core.engine.Engine.boxes_between`) into a
:class:`FrameBoxes`, and each frame's boxes are then looked up in memory.

The rule for a frame (the same as :meth:`core.engine.Engine.boxes_at`): an indexing run
at stride ``s`` stored the boxes of every ``s``-th frame, so a frame shows the boxes of
the nearest processed frame at most ``s - 1`` frames back; none when nobody was seen
there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.types import TrackedBoxes

SPAN_FRAMES = 256
"""Frames read at once by a player (about 10 s of 25 fps video)."""


def no_boxes() -> TrackedBoxes:
    """Empty ``TrackedBoxes``: nobody in the frame."""
    return TrackedBoxes(track_ids=np.zeros(0, np.int64), boxes=np.zeros((0, 4), np.float32),
                        scores=np.zeros(0, np.float32), det_index=np.zeros(0, np.int64))


def span_of(frame: int, size: int = SPAN_FRAMES) -> tuple[int, int]:
    """The aligned span ``(first, last)`` of ``size`` frames holding ``frame``."""
    first = (max(int(frame), 0) // size) * size
    return first, first + size - 1


@dataclass(frozen=True)
class FrameBoxes:
    """Every stored box of one video's run in frames ``first..last`` (read-only arrays).

    Attributes:
        video_id: The video.
        run_id: The indexing run the boxes come from.
        first: First frame covered.
        last: Last frame covered.
        stride: The run's processing stride.
        frames: ``(N,)`` int64 frame of each box, increasing.
        track_ids: ``(N,)`` int64 track id (within the run).
        boxes: ``(N, 4)`` float32 xyxy pixels.
        scores: ``(N,)`` float32 detector scores.
    """

    video_id: int
    run_id: int
    first: int
    last: int
    stride: int
    frames: np.ndarray
    track_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def covers(self, frame: int) -> bool:
        """Whether :meth:`at` can answer for ``frame``."""
        return self.first <= int(frame) <= self.last

    def at(self, frame: int) -> TrackedBoxes:
        """The boxes shown at ``frame`` (see the module notes); ``det_index`` is all ``-1``.

        Raises:
            ValueError: ``frame`` is outside ``first..last``.
        """
        frame = int(frame)
        if not self.covers(frame):
            raise ValueError(f"frame {frame} is outside the boxes read ({self.first}..{self.last})")
        lo = np.searchsorted(self.frames, frame - self.stride + 1, side="left")
        hi = np.searchsorted(self.frames, frame, side="right")
        if hi <= lo:
            return no_boxes()
        at = slice(lo + int(np.searchsorted(self.frames[lo:hi], self.frames[hi - 1], side="left")), hi)
        n = at.stop - at.start
        return TrackedBoxes(track_ids=self.track_ids[at], boxes=self.boxes[at], scores=self.scores[at],
                            det_index=np.full(n, -1, np.int64))
