"""The base of every frame source: what a video file and an image folder have in common.

The rules every source follows (frame index, frame count, timestamps, seeking) are in
:mod:`core.video`, which opens sources; :mod:`core.video_file` and :mod:`core.image_folder`
are the two kinds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from core.errors import VideoError
from core.types import Frame


def truncation_tolerance(claimed: int) -> int:
    """Frames a stream may fall short of its header claim before it counts as truncated.

    Headers that estimate the count from duration x fps are often off by a frame or two.
    """
    return max(2, round(0.01 * claimed))


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
        return self._decoded_end < self.frame_count - truncation_tolerance(self.frame_count)

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
