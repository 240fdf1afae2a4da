"""A video file decoded with OpenCV: exact random access, honest frame counts and times.

The rules (frame index, count, timestamps, seeking) are in :mod:`core.video`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.errors import VideoError
from core.types import Frame
from core.video_source import VideoSource

log = logging.getLogger(__name__)

TIME_PROBE_FRAMES = 30
"""Frames decoded at open to decide whether the container timestamps are reliable."""

DEFAULT_VIDEO_FPS = 25.0
"""Frame rate assumed for a video whose container, timestamps and caller give none."""

GRAB_AHEAD = 48
"""``read(i)`` decodes through (instead of seeking) when ``i`` is at most this many frames ahead."""


@dataclass
class _SeekTrust:
    """Whether ``CAP_PROP_POS_FRAMES`` seeks in one file land where they say (shared by its decoders).

    Attributes:
        claimed: Frame count the header claims (0 when unknown).
        trusted: ``None`` until checked, then whether seeks are used at all.
    """

    claimed: int
    trusted: bool | None = None


class _Capture:
    """A ``cv2.VideoCapture`` that knows the index of the frame its next ``grab()`` decodes."""

    def __init__(self, path: Path, trust: _SeekTrust) -> None:
        self.path = path
        self.trust = trust
        self.cap = _open_capture(path)
        self.pos = 0  # index of the frame the next grab() decodes

    def grab(self) -> bool:
        """Decode the next frame (no colour conversion); False at the end of the stream."""
        if self.cap.grab():
            self.pos += 1
            return True
        return False

    def retrieve(self) -> np.ndarray | None:
        """The last grabbed frame as ``(H, W, 3)`` uint8 BGR, or ``None`` if it cannot be converted."""
        ok, image = self.cap.retrieve()
        if not ok or image is None or image.ndim != 3 or image.shape[2] != 3:
            return None
        return image

    def time_ms(self) -> float:
        """Container time in milliseconds of the last grabbed frame."""
        return float(self.cap.get(cv2.CAP_PROP_POS_MSEC))

    def seek(self, index: int) -> bool:
        """Position so that the next ``grab()`` decodes frame ``index``.

        Returns:
            False if the stream ends before ``index`` (then ``pos`` is the real frame count).
        """
        if index == self.pos:
            return True
        if not self.pos < index <= self.pos + GRAB_AHEAD and self._seeks_trusted():
            self.cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            reported = self.cap.get(cv2.CAP_PROP_POS_FRAMES)
            if reported == index:
                self.pos = index
                return True
            self._distrust(f"a seek to frame {index} landed on {reported:g}")
            self.rewind()
        elif index < self.pos:
            self.rewind()
        while self.pos < index:
            if not self.grab():
                return False
        return True

    def _seeks_trusted(self) -> bool:
        """Check once per file that a seek to the last claimed frame lands there and decodes.

        A file whose tail is missing (a truncated copy) usually lost its seek index with it, and
        OpenCV then lands on wrong or half-decoded frames while reporting the requested position.
        """
        if self.trust.trusted is None:
            last = self.trust.claimed - 1
            if last < 1:
                self._distrust("its header gives no frame count")
            else:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, last)
                if self.cap.get(cv2.CAP_PROP_POS_FRAMES) == last and self.cap.grab():
                    self.trust.trusted = True
                    self.pos = last + 1
                else:
                    self._distrust(f"its last claimed frame ({last}) cannot be reached by seeking")
                    self.rewind()
        return bool(self.trust.trusted)

    def _distrust(self, why: str) -> None:
        if self.trust.trusted is not False:
            log.info("%s: reading sequentially instead of seeking, because %s", self.path, why)
        self.trust.trusted = False

    def rewind(self) -> None:
        """Go back to frame 0 by reopening the file (frame 0 is always a keyframe)."""
        self.cap.release()
        self.cap = _open_capture(self.path)
        self.pos = 0

    def release(self) -> None:
        """Release the decoder."""
        self.cap.release()


def _open_capture(path: Path) -> cv2.VideoCapture:
    """Open ``path`` with OpenCV's preferred backend for files (FFmpeg); raise if it cannot."""
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"File {path} is not a video OpenCV can read (unknown format or damaged).")
    return cap


class VideoFileSource(VideoSource):
    """A video file decoded with OpenCV (FFmpeg in the pip wheels); create it with :func:`open_source`."""

    def __init__(self, path: Path, *, fps: float | None = None) -> None:
        super().__init__()
        self.path = path
        self.is_image_folder = False
        if not path.exists():
            raise VideoError(f"Video file {path} does not exist.")
        if not path.is_file():
            raise VideoError(f"Video path {path} is neither a file nor a folder of images.")
        if path.stat().st_size == 0:
            raise VideoError(f"Video file {path} is empty (0 bytes).")
        self._trust = _SeekTrust(claimed=0)
        cap = _Capture(path, self._trust)
        try:
            claimed = cap.cap.get(cv2.CAP_PROP_FRAME_COUNT)
            self.frame_count = int(claimed) if math.isfinite(claimed) and claimed > 0 else 0
            self._trust.claimed = self.frame_count
            container_fps = float(cap.cap.get(cv2.CAP_PROP_FPS))
            if not cap.grab() or (first := cap.retrieve()) is None:
                raise VideoError(f"Video file {path} has no decodable frames (its header claims "
                                 f"{self.frame_count}).")
            self.height, self.width = first.shape[:2]
            times = [cap.time_ms()]
            while len(times) < TIME_PROBE_FRAMES and cap.grab():
                times.append(cap.time_ms())
            if len(times) < TIME_PROBE_FRAMES:
                self._decoded_end = len(times)
        except BaseException:
            cap.release()
            raise
        self._cap: _Capture | None = cap
        step = _median_step_s(times)
        if 0 < container_fps <= 1000 and math.isfinite(container_fps):
            self.fps = container_fps
        elif fps is not None:
            self.fps = float(fps)
        elif step is not None and step > 0:
            self.fps = 1.0 / step
        else:
            self.fps = DEFAULT_VIDEO_FPS
        reliable = (
            step is not None
            and all(math.isfinite(t) and t >= 0 for t in times)
            and all(b > a for a, b in zip(times, times[1:], strict=False))
            and abs(step * self.fps - 1.0) <= 0.2
        )
        self.time_source = "container" if reliable else "index"

    def _time_s(self, index: int, time_ms: float) -> float:
        if self.time_source == "container" and math.isfinite(time_ms) and time_ms >= 0:
            return time_ms / 1000.0
        return index / self.fps

    def _reached_end(self, count: int) -> None:
        self._decoded_end = count
        if self.truncated:
            self._trust.trusted = False  # the seek index went with the missing tail
            log.warning("%s", self._truncated_message())

    def _iter_frames(self, stride: int, start: int) -> Iterator[Frame]:
        cap = _Capture(self.path, self._trust)
        try:
            if not cap.seek(start):
                self._reached_end(cap.pos)
                return
            while True:
                self._check_open()
                index = cap.pos
                if not cap.grab():
                    self._reached_end(index)
                    return
                if (index - start) % stride:
                    continue
                image = cap.retrieve()
                if image is None:
                    self._reached_end(index)
                    return
                yield Frame(index=index, time_s=self._time_s(index, cap.time_ms()), image=image)
        finally:
            cap.release()

    def _read(self, index: int) -> Frame:
        if self._decoded_end is not None and index >= self._decoded_end:
            raise VideoError(self._past_end_message(index))
        if self._cap is None:
            self._cap = _Capture(self.path, self._trust)
        cap = self._cap
        if not cap.seek(index) or not cap.grab():
            self._reached_end(cap.pos)
            raise VideoError(self._past_end_message(index))
        image = cap.retrieve()
        if image is None:
            raise VideoError(f"Frame {index} of video file {self.path} cannot be decoded.")
        return Frame(index=index, time_s=self._time_s(index, cap.time_ms()), image=image)

    def _past_end_message(self, index: int) -> str:
        return (f"Video file {self.path} has no frame {index}: only {self._decoded_end} frames decode "
                f"(its header claims {self.frame_count}).")

    def _count_frames(self) -> None:
        if self._decoded_end is not None:
            return
        cap = _Capture(self.path, self._trust)
        try:
            while cap.grab():
                pass
            self._reached_end(cap.pos)
        finally:
            cap.release()

    def close(self) -> None:
        """Release the decoder; the source cannot be read afterwards."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        super().close()


def _median_step_s(times_ms: list[float]) -> float | None:
    """Median step in seconds between consecutive container times, ``None`` for fewer than 2."""
    if len(times_ms) < 2:
        return None
    steps = np.diff(np.asarray(times_ms, dtype=np.float64)) / 1000.0
    if not np.all(np.isfinite(steps)):
        return None
    return float(np.median(steps))
