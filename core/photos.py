"""Photo collections: a folder of photos (or one photo) read photo by photo, not as a video.

A folder of images is one of two kinds (:data:`IMAGE_KINDS`):

* a **sequence**: frames dumped from one camera, indexed as a video (``core.image_folder``:
  tracked, sampled by stride);
* a **photo collection**: photos from a phone, a camera trap, an evidence dump. Every person
  in every photo is detected and embedded on their own (``core.photo_index``).

:func:`classify_folder` tells them apart, in this order (the README states the same rule):

1. one image file, or images in sub-folders: **photos** (a camera's frames are dumped flat);
2. an image carries an EXIF ``DateTimeOriginal`` (a camera or phone took it): **photos**;
3. fewer than :data:`MIN_SEQUENCE_FRAMES` images, or images of different sizes: **photos**;
4. names that are not one numbered series: every name must be the same text around its last
   number (``frame_#.jpg``), and the numbers evenly spaced (at least 90 % of the steps equal the
   most common one, every other step a multiple of it: a few dropped frames are allowed). Else
   **photos**;
5. otherwise a **sequence**.

Order and time (:class:`PhotoCollection`): when every photo has an EXIF ``DateTimeOriginal``,
photos are in the order they were taken and a photo's ``time_s`` is seconds after the first one
(``taken`` keeps the absolute time, so several collections share one timeline); otherwise they
are in natural order of their paths (``core.media.natural_key``, folder by folder) and
``time_s`` is the photo's rank (one photo per second). EXIF orientation is applied: a photo is
read upright, and its size and boxes are those of the upright photo.

Photos are decoded with Pillow (JPEG draft mode decodes a 12 MP photo straight at half or a
quarter of its size) and shrunk to at most :data:`PHOTO_MAX_SIDE` pixels: detection runs at
640 pixels and crops at 256 x 128, so nothing is lost and memory stays bounded.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import VideoError
from core.media import IMAGE_EXTENSIONS, natural_key

IMAGE_KINDS = ("auto", "sequence", "photos")
"""How a folder of images is read: worked out (:func:`classify_folder`), as a sequence, or as photos."""

PHOTO_MAX_SIDE = 1920
"""Longest side, in pixels, a photo is decoded at for detection and crops (boxes are scaled back)."""

MIN_SEQUENCE_FRAMES = 2
"""A folder with fewer images is read as photos."""

SEQUENCE_STEP_SHARE = 0.9
"""Share of name-number steps that must equal the most common step for a numbered series."""

FINGERPRINT_BYTES = 64 << 10
"""Bytes of each photo's start (its EXIF included) and end hashed into a collection's fingerprint."""

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_ORIENTATION = 0x0112
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
              7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
"""EXIF orientation -> the turn that makes the stored image upright (as ``PIL.ImageOps.exif_transpose``)."""


@dataclass(frozen=True)
class Photo:
    """One photo of a collection.

    Attributes:
        index: Rank in the collection (the ``frame`` of its sightings).
        path: The file.
        rel: Its path relative to the collection (``""`` when the collection is this one file).
        width: Upright width in pixels.
        height: Upright height in pixels.
        orientation: EXIF orientation (1: upright as stored; 6: turned 90 degrees clockwise to view ...).
        taken: EXIF ``DateTimeOriginal`` (naive local time of the camera), or ``None``.
        time_s: Time in the collection (see the module notes).
    """

    index: int
    path: Path
    rel: str
    width: int
    height: int
    orientation: int = 1
    taken: datetime | None = None
    time_s: float = 0.0


@dataclass(frozen=True)
class FolderKind:
    """What a folder of images is (:func:`classify_folder`).

    Attributes:
        kind: ``"sequence"`` or ``"photos"``.
        reason: Why, as the end of a sentence (``"its names are not one numbered series"``).
        images: Images found.
    """

    kind: str
    reason: str
    images: int

    def sentence(self, path: str | Path) -> str:
        """What the user is told: ``"<path>: read as a photo collection (16 images: ...)."``."""
        what = "a photo collection" if self.kind == "photos" else "a sequence of video frames"
        other = "sequence" if self.kind == "photos" else "photos"
        return (f"{path}: read as {what} ({self.images} images: {self.reason}); "
                f"--images {other} reads it the other way.")


def _header(path: Path, root: Path) -> tuple[Photo | None, str | None]:
    """A photo's upright size, orientation and time from its header (no decoding); why it cannot be read."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            exif = img.getexif()
            orientation = int(exif.get(_ORIENTATION, 1) or 1)
            raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL)
    except (OSError, ValueError, SyntaxError) as exc:
        return None, f"{path.name} ({exc})"
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    taken = None
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if isinstance(raw, str):
        try:
            taken = datetime.strptime(raw.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
        except ValueError:
            taken = None
    rel = "" if path == root else path.relative_to(root).as_posix()
    return Photo(index=0, path=path, rel=rel, width=width, height=height,
                 orientation=orientation if 1 <= orientation <= 8 else 1, taken=taken), None


def _path_key(rel: str) -> tuple:
    return tuple(natural_key(part) for part in rel.split("/"))


def image_files(path: str | Path) -> list[Path]:
    """The image files of a photo collection: ``path`` itself, or every image under it (sub-folders too).

    Hidden files and folders (names starting with ``.``) are left out; order: natural, folder by folder.

    Raises:
        VideoError: The path does not exist, cannot be listed, or is not an image.
    """
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise VideoError(f"{path} is not an image ({', '.join(IMAGE_EXTENSIONS)}).")
        return [path]
    if not path.is_dir():
        raise VideoError(f"{path}: no such file or folder.")
    try:
        found = [p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                 and not any(part.startswith(".") for part in p.relative_to(path).parts)]
    except OSError as exc:
        raise VideoError(f"{path}: folder cannot be listed ({exc.strerror or exc}).") from None
    return sorted(found, key=lambda p: _path_key(p.relative_to(path).as_posix()))


def _numbered_series(names: Sequence[str]) -> bool:
    """Whether names are one numbered series (see the module notes, rule 4)."""
    patterns, numbers = set(), []
    for name in names:
        stem = Path(name).stem
        digits = [i for i, ch in enumerate(stem) if ch.isdigit()]
        if not digits:
            return False
        end = digits[-1] + 1
        start = end
        while start > 0 and stem[start - 1].isdigit():
            start -= 1
        patterns.add((stem[:start], stem[end:], Path(name).suffix.lower()))
        numbers.append(int(stem[start:end]))
    if len(patterns) != 1:
        return False
    steps = np.diff(np.sort(np.array(numbers, np.int64)))
    if len(steps) == 0 or steps.min() <= 0:
        return False
    step, count = Counter(steps.tolist()).most_common(1)[0]
    return count >= SEQUENCE_STEP_SHARE * len(steps) and bool(np.all(steps % step == 0))


def classify_folder(path: str | Path) -> FolderKind:
    """Whether ``path`` (a folder of images or one image) is a sequence or a photo collection.

    The rule is in the module notes (and the README).

    Raises:
        VideoError: The path does not exist or holds no image.
    """
    path = Path(path)
    files = image_files(path)
    if not files:
        raise VideoError(f"Image folder {path} contains no images ({', '.join(IMAGE_EXTENSIONS)}).")
    n = len(files)
    if path.is_file():
        return FolderKind("photos", "a single image", 1)
    if any(f.parent != path for f in files):
        return FolderKind("photos", "images in sub-folders", n)
    if n < MIN_SEQUENCE_FRAMES:
        return FolderKind("photos", "a single image", n)
    heads = [_header(f, path)[0] for f in files]
    if any(h is not None and h.taken is not None for h in heads):
        return FolderKind("photos", "photos with the EXIF time they were taken", n)
    sizes = {(h.width, h.height) for h in heads if h is not None}
    if len(sizes) > 1:
        return FolderKind("photos", f"{len(sizes)} different image sizes", n)
    if not _numbered_series([f.name for f in files]):
        return FolderKind("photos", "its names are not one evenly numbered series", n)
    return FolderKind("sequence", "one size, one evenly numbered series of names", n)


@dataclass(frozen=True)
class PhotoCollection:
    """The photos of a folder (sub-folders included) or a single image, in collection order.

    Attributes:
        root: The folder or image file.
        photos: The readable photos, ``index`` = rank.
        timed: Every photo has an EXIF time (order and ``time_s`` come from it).
        unreadable: ``"name (why)"`` of the files that cannot be read (left out).
    """

    root: Path
    photos: tuple[Photo, ...]
    timed: bool
    unreadable: tuple[str, ...] = ()

    @classmethod
    def open(cls, path: str | Path) -> PhotoCollection:
        """List and order the photos (headers only; nothing is decoded).

        Raises:
            VideoError: The path does not exist, holds no image, or no image can be read.
        """
        root = Path(path)
        files = image_files(root)
        heads, bad = [], []
        for f in files:
            head, why = _header(f, root)
            if head is None:
                bad.append(why)
            else:
                heads.append(head)
        if not heads:
            what = f"no readable image ({bad[0]})" if bad else f"no images ({', '.join(IMAGE_EXTENSIONS)})"
            raise VideoError(f"{root} contains {what}.")
        timed = all(h.taken is not None for h in heads)
        if timed:
            heads.sort(key=lambda h: (h.taken, _path_key(h.rel)))
            first = heads[0].taken
            times = [(h.taken - first).total_seconds() for h in heads]  # type: ignore[operator]
        else:
            times = [float(i) for i in range(len(heads))]
        photos = tuple(Photo(index=i, path=h.path, rel=h.rel, width=h.width, height=h.height,
                             orientation=h.orientation, taken=h.taken, time_s=t)
                       for i, (h, t) in enumerate(zip(heads, times, strict=True)))
        return cls(root=root, photos=photos, timed=timed, unreadable=tuple(bad))  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self.photos)

    def fingerprint(self) -> str:
        """The collection's content fingerprint: its photos' bytes in collection order (names do not count).

        Each photo contributes its size and its first and last :data:`FINGERPRINT_BYTES`, so a
        folder of thousands of 12 MP photos is fingerprinted without reading them whole.

        Raises:
            VideoError: A photo cannot be read.
        """
        digest = hashlib.sha256(b"photo-collection")
        for photo in self.photos:
            try:
                size = photo.path.stat().st_size
                with photo.path.open("rb") as f:
                    head = f.read(FINGERPRINT_BYTES)
                    f.seek(max(size - FINGERPRINT_BYTES, len(head)))
                    tail = f.read()
            except OSError as exc:
                raise VideoError(f"Photo {photo.path} cannot be read ({exc.strerror or exc}).") from None
            digest.update(size.to_bytes(8, "little"))
            digest.update(hashlib.sha256(head + tail).digest())
        return digest.hexdigest()


def load_photo(photo: Photo, max_side: int = PHOTO_MAX_SIDE) -> tuple[np.ndarray, float]:
    """Decode a photo upright, shrunk to at most ``max_side`` pixels.

    Returns:
        ``(image, scale)``: ``(h, w, 3)`` uint8 BGR and its size over the upright photo's
        (``box_in_photo = box_in_image / scale``).

    Raises:
        VideoError: The photo cannot be decoded (one sentence naming it).
    """
    longest = max(photo.width, photo.height)
    scale = min(1.0, max_side / longest) if longest > 0 else 1.0
    try:
        with Image.open(photo.path) as img:
            if scale < 1.0 and img.format == "JPEG":
                # decode straight at 1/2, 1/4 or 1/8 of the size (never below the target); stored orientation
                stored = (photo.height, photo.width) if photo.orientation in (5, 6, 7, 8) else \
                    (photo.width, photo.height)
                img.draft("RGB", (int(stored[0] * scale), int(stored[1] * scale)))
            img = img.convert("RGB") if img.mode != "RGB" else img
            if photo.orientation in _TRANSPOSE:
                img = img.transpose(_TRANSPOSE[photo.orientation])
            w, h = img.size
            target = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
            if (w, h) != target:
                img = img.resize(target, Image.Resampling.BILINEAR, reducing_gap=2.0)
            rgb = np.asarray(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise VideoError(f"Photo {photo.path} cannot be decoded ({exc}).") from None
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    return bgr, bgr.shape[1] / photo.width if photo.width else 1.0
