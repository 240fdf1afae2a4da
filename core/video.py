"""Video input: a video file or a folder of images, read as :class:`core.types.Frame` items.

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

import hashlib
import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from core.errors import VideoError
from core.fileio import read_image
from core.types import Frame

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
"""File name endings (any case) taken as frames in an image folder."""

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv",
                                     ".webm", ".ts", ".mts", ".m2ts", ".flv", ".3gp", ".ogv", ".dav")
"""File name endings (any case) taken as videos in a folder of videos (CLI and GUI alike)."""

TIME_PROBE_FRAMES = 30
"""Frames decoded at open to decide whether the container timestamps are reliable."""

DEFAULT_VIDEO_FPS = 25.0
"""Frame rate assumed for a video whose container, timestamps and caller give none."""

DEFAULT_FOLDER_FPS = 1.0
"""Frame rate of an image folder when the caller gives none."""

GRAB_AHEAD = 48
"""``read(i)`` decodes through (instead of seeking) when ``i`` is at most this many frames ahead."""

FINGERPRINT_EDGE_BYTES = 1 << 20
"""Bytes hashed at the start and at the end of a file by :func:`fingerprint`."""

FINGERPRINT_MIDDLE_CHUNKS = 4
"""Number of evenly spaced chunks hashed from the middle of a file by :func:`fingerprint`."""

FINGERPRINT_CHUNK_BYTES = 64 << 10
"""Size of each middle chunk hashed by :func:`fingerprint`."""


def _truncation_tolerance(claimed: int) -> int:
    """Frames a stream may fall short of its header claim before it counts as truncated.

    Headers that estimate the count from duration x fps are often off by a frame or two.
    """
    return max(2, round(0.01 * claimed))


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers by value: ``img2.png`` < ``img10.png``.

    Args:
        name: A file name.

    Returns:
        A tuple comparable between any two names.
    """
    parts = re.split(r"(\d+)", name)
    return tuple((1, int(p)) if i % 2 else (0, p.lower()) for i, p in enumerate(parts)) + ((0, name),)


def video_files(folder: str | Path) -> list[Path]:
    """The video files directly in ``folder`` (:data:`VIDEO_EXTENSIONS`), in natural name order.

    Sub-folders and other files are ignored.

    Args:
        folder: A folder.

    Returns:
        The videos' paths (empty when there are none).

    Raises:
        VideoError: The folder cannot be listed.
    """
    folder = Path(folder)
    try:
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS]
    except OSError as err:
        raise VideoError(f"{folder}: folder cannot be listed ({err.strerror or err}).") from None
    return sorted(files, key=lambda p: natural_key(p.name))


def expand_sources(items: Sequence[str | Path]) -> list[Path]:
    """Turn what a user names (video files, image folders, folders of videos) into the sources to index.

    A folder holding at least one file with a video ending (:data:`VIDEO_EXTENSIONS`) stands for
    those videos (:func:`video_files`); any other folder is one image sequence. The CLI and the
    GUI both open folders this way.

    Args:
        items: Video files, image folders, or folders of videos.

    Returns:
        Paths in order, each once (by resolved path).

    Raises:
        VideoError: An item does not exist.
    """
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if not path.exists():
            raise VideoError(f"{path}: no such file or folder.")
        files = video_files(path) if path.is_dir() else []
        out += files or [path]
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def list_images(folder: Path) -> list[Path]:
    """Return the image files directly in ``folder``, in natural name order.

    Hidden files (names starting with ``.``) and other extensions are left out.

    Args:
        folder: A directory.

    Returns:
        Paths of the images, in frame order.
    """
    files = [
        p for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def _read_image(path: Path) -> np.ndarray | None:
    """Decode an image file to ``(H, W, 3)`` uint8 BGR; ``None`` when it cannot be read or decoded."""
    try:
        return read_image(path)
    except OSError:
        return None


def fingerprint(path: str | Path) -> str:
    """Content fingerprint of a video file (or image folder), unchanged by renaming or moving it.

    A file's fingerprint is the SHA-256 hex digest over: its size as 8 little-endian bytes, its first
    and last :data:`FINGERPRINT_EDGE_BYTES`, and :data:`FINGERPRINT_MIDDLE_CHUNKS` chunks of
    :data:`FINGERPRINT_CHUNK_BYTES` at evenly spaced offsets in between (small files are hashed
    whole). It reads at most about 2.3 MiB, so it is fast on multi-GB files; two different videos of
    the same size agree in all sampled bytes only in contrived cases. An image folder's fingerprint is
    the SHA-256 over the fingerprints of its images in frame order (names do not count).

    Args:
        path: A video file or a folder of images.

    Returns:
        64 lowercase hex characters.

    Raises:
        VideoError: If the path does not exist, cannot be read, or is a folder without images.
    """
    path = Path(path)
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise VideoError(f"Image folder {path} contains no images ({', '.join(IMAGE_EXTENSIONS)}).")
        digest = hashlib.sha256(b"image-folder")
        for image in images:
            digest.update(bytes.fromhex(fingerprint(image)))
        return digest.hexdigest()
    if not path.exists():
        raise VideoError(f"Video file {path} does not exist.")
    digest = hashlib.sha256()
    try:
        size = path.stat().st_size
        digest.update(size.to_bytes(8, "little"))
        with path.open("rb") as f:
            sampled = 2 * FINGERPRINT_EDGE_BYTES + FINGERPRINT_MIDDLE_CHUNKS * FINGERPRINT_CHUNK_BYTES
            if size <= sampled:
                digest.update(f.read())
            else:
                digest.update(f.read(FINGERPRINT_EDGE_BYTES))
                span = size - 2 * FINGERPRINT_EDGE_BYTES - FINGERPRINT_CHUNK_BYTES
                for k in range(1, FINGERPRINT_MIDDLE_CHUNKS + 1):
                    f.seek(FINGERPRINT_EDGE_BYTES + span * k // (FINGERPRINT_MIDDLE_CHUNKS + 1))
                    digest.update(f.read(FINGERPRINT_CHUNK_BYTES))
                f.seek(size - FINGERPRINT_EDGE_BYTES)
                digest.update(f.read(FINGERPRINT_EDGE_BYTES))
    except OSError as exc:
        raise VideoError(f"Video file {path} cannot be read ({exc.strerror or exc}).") from None
    return digest.hexdigest()


def open_source(path: str | Path, *, fps: float | None = None) -> VideoSource:
    """Open a video file or a folder of images.

    Args:
        path: A video file OpenCV can decode, or a folder whose images (see
            :data:`IMAGE_EXTENSIONS`) are the frames in natural name order.
        fps: Image folders: their frame rate (default :data:`DEFAULT_FOLDER_FPS`). Video files: the
            rate to use only when the container gives no valid one.

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
    if path.is_dir():
        return ImageFolderSource(path, fps=fps if fps is not None else DEFAULT_FOLDER_FPS)
    return VideoFileSource(path, fps=fps)


class VideoSource:
    """A video file or folder of images, read frame by frame (base of both kinds).

    Attributes:
        path: The file or folder as given.
        fps: Frames per second used for times (see the module notes).
        frame_count: Frames the container claims (image folders: number of images); 0 when unknown.
        width: Width in pixels of the first frame.
        height: Height in pixels of the first frame.
        is_image_folder: True for a folder of images.
        time_source: ``"container"`` when frame times come from the container, else ``"index"``.
    """

    path: Path
    fps: float
    frame_count: int
    width: int
    height: int
    is_image_folder: bool
    time_source: str

    def __init__(self) -> None:
        self._decoded_end: int | None = None
        self._closed = False

    @property
    def duration_s(self) -> float:
        """Length in seconds: ``frame_count / fps`` (0 when the count is unknown)."""
        return self.frame_count / self.fps

    @property
    def frames_decoded(self) -> int | None:
        """Frames that really decode, once a pass has reached the end of the stream, else ``None``."""
        return self._decoded_end

    @property
    def truncated(self) -> bool:
        """Whether a pass ended clearly before the frame count the header claims."""
        if self._decoded_end is None or self.frame_count <= 0:
            return False
        return self._decoded_end < self.frame_count - _truncation_tolerance(self.frame_count)

    @property
    def truncation_warning(self) -> str | None:
        """One sentence saying how many frames decoded of those the header claims, when :attr:`truncated`."""
        return self._truncated_message() if self.truncated else None

    def iter_frames(self, stride: int = 1, start: int = 0) -> Iterator[Frame]:
        """Yield frames ``start, start + stride, start + 2 * stride, ...`` until the real end.

        Args:
            stride: Yield every ``stride``-th frame (>= 1); the ones between are decoded but not
                converted to images.
            start: Index of the first frame to yield (>= 0).

        Yields:
            Frames with their index and time; images are ``(H, W, 3)`` uint8 BGR.

        Raises:
            ValueError: If ``stride < 1`` or ``start < 0``.
            VideoError: Image folders only: if an image cannot be decoded.
        """
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        self._check_open()
        return self._iter_frames(stride, start)

    def __iter__(self) -> Iterator[Frame]:
        """Yield every frame in order (the ``FrameSource`` protocol)."""
        return self.iter_frames()

    def read(self, index: int) -> Frame:
        """Return frame ``index`` exactly as sequential decoding yields it.

        Args:
            index: 0-based frame index.

        Returns:
            The frame.

        Raises:
            ValueError: If ``index`` is negative.
            VideoError: If the frame does not exist or cannot be decoded.
        """
        if index < 0:
            raise ValueError(f"frame index must be >= 0, got {index}")
        self._check_open()
        return self._read(int(index))

    def verify(self) -> int:
        """Decode the whole stream (without converting images) and return how many frames it has.

        Use it to find out up front whether a file is complete; it costs one decoding pass.

        Returns:
            The number of frames that decode; also stored in ``frames_decoded``.

        Raises:
            VideoError: If the file ends clearly short of the count its header claims.
        """
        self._check_open()
        self._count_frames()
        if self.truncated:
            raise VideoError(self._truncated_message())
        assert self._decoded_end is not None
        return self._decoded_end

    def close(self) -> None:
        """Release the decoder; the source cannot be read afterwards."""
        self._closed = True

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        kind = "images" if self.is_image_folder else "video"
        return (f"{type(self).__name__}({str(self.path)!r}, {kind}, {self.width}x{self.height}, "
                f"{self.fps:g} fps, {self.frame_count} frames)")

    # -- for the two kinds -------------------------------------------------------------------------

    def _iter_frames(self, stride: int, start: int) -> Iterator[Frame]:
        raise NotImplementedError

    def _read(self, index: int) -> Frame:
        raise NotImplementedError

    def _count_frames(self) -> None:
        raise NotImplementedError

    def _check_open(self) -> None:
        if self._closed:
            raise VideoError(f"Video source {self.path} has been closed.")

    def _truncated_message(self) -> str:
        return (f"Video file {self.path} is truncated or damaged: only {self._decoded_end} frames decode "
                f"of the {self.frame_count} frames its header claims.")


class ImageFolderSource(VideoSource):
    """A folder of images, one frame each in natural name order; frames keep their own size.

    ``width`` and ``height`` are those of the first image. Use :func:`open_source` to create one.
    """

    def __init__(self, folder: Path, *, fps: float = DEFAULT_FOLDER_FPS) -> None:
        super().__init__()
        self.path = folder
        if not folder.exists():
            raise VideoError(f"Image folder {folder} does not exist.")
        try:
            self._files = list_images(folder)
        except OSError as exc:
            raise VideoError(f"Image folder {folder} cannot be listed ({exc.strerror or exc}).") from None
        if not self._files:
            raise VideoError(f"Image folder {folder} contains no images ({', '.join(IMAGE_EXTENSIONS)}).")
        first = self._load(0)
        self.fps = float(fps)
        self.frame_count = len(self._files)
        self.height, self.width = first.shape[:2]
        self.is_image_folder = True
        self.time_source = "index"

    @property
    def files(self) -> tuple[Path, ...]:
        """The image files, in frame order."""
        return tuple(self._files)

    def _load(self, index: int) -> np.ndarray:
        image = _read_image(self._files[index])
        if image is None:
            raise VideoError(f"Image {self._files[index]} in folder {self.path} cannot be decoded.")
        return image

    def _frame(self, index: int) -> Frame:
        return Frame(index=index, time_s=index / self.fps, image=self._load(index))

    def _iter_frames(self, stride: int, start: int) -> Iterator[Frame]:
        for index in range(start, len(self._files), stride):
            self._check_open()
            yield self._frame(index)
        self._decoded_end = len(self._files)

    def _read(self, index: int) -> Frame:
        if index >= len(self._files):
            raise VideoError(f"Image folder {self.path} has no frame {index}: it holds {len(self._files)} "
                             "images.")
        return self._frame(index)

    def _count_frames(self) -> None:
        self._decoded_end = len(self._files)


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
