"""A photo collection read as a :class:`core.video_source.VideoSource`: frame ``i`` is photo ``i``, upright.

What the player, the thumbnails and the exports read a photo hit from: the same order as
indexing (:class:`core.photos.PhotoCollection`), each photo upright at its full size (the
stored boxes are in those pixels), its ``time_s`` the collection's (EXIF time or rank).
Use :func:`core.video.open_source` with ``photos=True`` (or an image file) to make one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from core.errors import VideoError
from core.photos import PhotoCollection, load_photo
from core.types import Frame
from core.video_source import VideoSource

_FULL_SIZE = 1 << 20
"""``max_side`` that decodes every photo at its own size."""


class PhotoSource(VideoSource):
    """The photos of a collection, one frame each; ``width``/``height`` are the first photo's.

    ``time_source`` is ``"exif"`` when every photo has an EXIF time (the timeline means
    something), else ``"index"``.

    Raises:
        VideoError: The path holds no readable image.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.collection = PhotoCollection.open(self.path)
        first = self.collection.photos[0]
        self.fps = 1.0
        self.frame_count = len(self.collection)
        self.width, self.height = first.width, first.height
        self.is_image_folder = True
        self.time_source = "exif" if self.collection.timed else "index"

    def _frame(self, index: int) -> Frame:
        photo = self.collection.photos[index]
        return Frame(index=index, time_s=photo.time_s, image=load_photo(photo, _FULL_SIZE)[0])

    def _iter_frames(self, stride: int, start: int) -> Iterator[Frame]:
        for index in range(start, self.frame_count, stride):
            self._check_open()
            yield self._frame(index)
        self._decoded_end = self.frame_count

    def _read(self, index: int) -> Frame:
        if index >= self.frame_count:
            raise VideoError(f"{self.path} has no photo {index}: it holds {self.frame_count}.")
        return self._frame(index)

    def _count_frames(self) -> None:
        self._decoded_end = self.frame_count
