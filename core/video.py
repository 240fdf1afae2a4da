"""Video input: a video file or a folder of images, read as :class:`core.types.Frame` items.

The two kinds are :mod:`core.video_file` and :mod:`core.image_folder` (each a
:class:`core.video_source.VideoSource`); :mod:`core.media` knows which files are media.

Use :func:`open_source` to open either kind; both are a :class:`VideoSource`::

    with open_source("walk.mp4") as src:
        for frame in src.iter_frames(stride=3):
            ...                     # frame.index, frame.time_s, frame.image (H, W, 3) BGR uint8
        still = src.read(120)       # exact random access

Rules this module follows (the rest of the engine relies on them):

* **Frame index** is the 0-based rank of a frame in decode order (sequential decoding is the
  ground truth). ``read(i)`` returns exactly the frame that ``iter_frames`` yields with index ``i``.
* **Frame count.** ``frame_count`` is what the container header claims (0 when it claims nothing),
  read at open without decoding the file. Headers can lie: ``iter_frames`` ignores the claim and stops
  cleanly at the real end of the stream (earlier or later). Once a pass has reached the real end,
  ``frames_decoded`` holds the true count and ``truncated`` tells whether the file ended clearly
  short of the claim (a truncated download or copy). A truncated file still yields every frame that
  decodes; ``verify()`` turns truncation into a :class:`~core.errors.VideoError`, and ``read(i)`` of a
  frame past the real end raises one, both naming the decoded and the claimed counts.
* **Timestamps.** Video files: at open, the container timestamps (``CAP_PROP_POS_MSEC``) of the first
  up-to-:data:`TIME_PROBE_FRAMES` frames are checked. They are *reliable* when they are all finite and
  non-negative, strictly increasing, and their median step is within 20 % of ``1 / fps``. Then every
  frame's ``time_s`` is its container timestamp (right for variable frame rate files); a single frame
  whose container time is missing or negative gets ``index / fps``. Otherwise (``time_source ==
  "index"``) every frame's ``time_s`` is ``index / fps``. The rule depends on the frame alone, so
  ``read(i)`` and ``iter_frames`` agree. Image folders: ``time_s = index / fps``.
* **fps.** Video files: the container's frame rate when it is valid (0 < fps <= 1000), else the
  ``fps`` argument, else the rate implied by reliable timestamps, else 25. Image folders: the ``fps``
  argument, default 1.0.
* **Seeking.** ``read(i)`` positions with ``CAP_PROP_POS_FRAMES`` and checks the position OpenCV reports.
  Before the first seek in a file it checks once that a seek to the last frame the header claims
  lands there and decodes: a truncated copy fails this (its seek index went with its tail, and OpenCV
  then returns wrong or half-decoded frames while reporting the requested position). When that check
  fails, or a seek reports another position than requested, or a pass found the file truncated, the
  source stops seeking and decodes sequentially instead: forward from where it is, or from frame 0
  (always a keyframe) when going back. Reading ``i + 1`` after ``i`` is a plain read, and short jumps
  forward are decoded through. OpenCV derives seek positions from timestamps, so in variable frame
  rate files a seek can land on another frame than sequential decoding without OpenCV noticing;
  such files are rare for the cameras this app is meant for.

A :class:`VideoSource` is not thread-safe: use one per thread. Each ``iter_frames`` call owns its own
decoder, so ``read`` may be used while an iteration is in progress.
"""

from __future__ import annotations

import math
from pathlib import Path

from core.image_folder import DEFAULT_FOLDER_FPS, ImageFolderSource
from core.media import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    expand_sources,
    fingerprint,
    list_images,
    natural_key,
    video_files,
)
from core.types import Hit
from core.video_file import DEFAULT_VIDEO_FPS, TIME_PROBE_FRAMES, VideoFileSource
from core.video_source import VideoSource

__all__ = ["DEFAULT_FOLDER_FPS", "DEFAULT_VIDEO_FPS", "IMAGE_EXTENSIONS", "TIME_PROBE_FRAMES",
           "VIDEO_EXTENSIONS", "ImageFolderSource", "VideoFileSource", "VideoSource", "expand_sources",
           "fingerprint", "list_images", "natural_key", "open_hit_source", "open_source", "video_files"]


def open_hit_source(hit: Hit) -> VideoSource:
    """Open what a search hit was found in: its video, or its photo collection (``hit.photo_path``)."""
    return open_source(hit.video_path, photos=bool(hit.photo_path))


def open_source(path: str | Path, *, fps: float | None = None, photos: bool = False) -> VideoSource:
    """Open a video file, a folder of images, or a photo collection.

    Args:
        path: A video file OpenCV can decode, or a folder whose images (see
            :data:`IMAGE_EXTENSIONS`) are the frames in natural name order, or (``photos``, or an
            image file) a photo collection (:class:`core.photo_source.PhotoSource`).
        fps: Image folders: their frame rate (default :data:`DEFAULT_FOLDER_FPS`). Video files: the
            rate to use only when the container gives no valid one.
        photos: Read a folder as a photo collection (sub-folders included, each photo upright).

    Returns:
        An open source; close it (or use it as a context manager) when done.

    Raises:
        VideoError: If the path is missing, is not a video, has no decodable frame, or is a folder
            without images.
        ValueError: If ``fps`` is given and not a positive finite number.
    """
    if fps is not None and not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    path = Path(path)
    if photos or (path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS):
        from core.photo_source import PhotoSource

        return PhotoSource(path)
    if path.is_dir():
        return ImageFolderSource(path, fps=fps if fps is not None else DEFAULT_FOLDER_FPS)
    return VideoFileSource(path, fps=fps)
