"""A folder of images read as one sequence of frames (one frame per image, natural name order)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from core.errors import VideoError
from core.fileio import read_image
from core.media import IMAGE_EXTENSIONS, list_images
from core.types import Frame
from core.video_source import VideoSource

DEFAULT_FOLDER_FPS = 1.0
"""Frame rate of an image folder when the caller gives none."""


def _read_image(path: Path) -> np.ndarray | None:
    """Decode an image file to ``(H, W, 3)`` uint8 BGR; ``None`` when it cannot be read or decoded."""
    try:
        return read_image(path)
    except OSError:
        return None


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
