"""Query photos: find the person in each photo and embed them into one query vector.

Query photos -> one query vector:

* Each photo is a file (any image OpenCV reads) or a BGR array, either a tight
  person crop or a whole picture. The person detector runs on it (and, when it
  finds nobody, once more on the photo padded with a grey border: a detector
  trained on scenes often misses a person who fills the whole image).
* The photo's *main person* is the largest upright detection (taller than wide;
  the largest of all when none is upright: detectors sometimes report a lying
  "person" on things on the ground). The photo is taken as a **tight crop**, and
  embedded whole, when that person fills it: the box covers at least
  :data:`CROP_MIN_COVERAGE` of the area or :data:`CROP_MIN_HEIGHT` of the height.
  Otherwise the main person's box is cut out and embedded, and a note says so
  (``"photo.jpg: 3 people found, used the largest at (x1, y1, x2, y2)"``).
* A photo in which the detector finds nobody, even padded, raises
  :class:`~core.errors.QueryError` (``"photo.jpg: no person found ..."``): a
  query vector of a wall or of grass would match people at random.
* Several photos of one person: their L2-normalised embeddings are averaged and
  the mean is L2-normalised again (the centroid direction on the unit sphere),
  which cancels view- and camera-specific parts of each photo.

:func:`check_photo` looks at a photo the same way before it is used (the GUI checks each photo
and drawn box as it is added).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.errors import QueryError
from core.fileio import read_image
from core.types import Detector, Embedder

CROP_MIN_COVERAGE = 0.5
"""A photo whose main person's box covers this fraction of its area is a tight crop."""

CROP_MIN_HEIGHT = 0.8
"""... or whose main person's box spans this fraction of its height."""

PAD_FRACTION = 0.5
"""Grey border (fraction of the longer side) added for the second detection try."""


@dataclass(frozen=True)
class QueryPhoto:
    """One query photo after person finding and embedding.

    Attributes:
        label: The photo's path as given, or ``"<array i>"`` for an in-memory image.
        vector: ``(D,)`` float32 L2-normalised embedding.
        box: ``(x1, y1, x2, y2)`` of the person used, or ``None`` when the whole photo was used.
        people: People the detector found.
        note: One sentence on what was used.
    """

    label: str
    vector: np.ndarray
    box: tuple[float, float, float, float] | None
    people: int
    note: str


def photo_label(photo: str | Path | np.ndarray, i: int) -> str:
    """How a photo is named in notes, errors and stored queries."""
    return f"<array {i}>" if isinstance(photo, np.ndarray) else str(photo)


def load_photo(photo: str | Path | np.ndarray, label: str) -> np.ndarray:
    """Read a query photo as an ``(H, W, 3)`` uint8 BGR image.

    Args:
        photo: Image file, or an array (``(H, W)`` grey, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA uint8).
        label: Its name for error messages.

    Raises:
        QueryError: Missing or unreadable file, or an array that is not an 8-bit image.
    """
    if isinstance(photo, np.ndarray):
        image = photo
    else:
        path = Path(photo)
        if not path.exists():
            raise QueryError(f"{label}: photo not found.")
        if path.is_dir():
            raise QueryError(f"{label}: is a folder, not a photo.")
        try:
            image = read_image(path)
        except OSError as err:
            raise QueryError(f"{label}: cannot be read ({err.strerror or err}).") from None
        if image is None:
            raise QueryError(f"{label}: not a readable image (JPEG, PNG, BMP, WebP, ...).")
    if image.dtype != np.uint8 or image.size == 0 or image.ndim not in (2, 3):
        raise QueryError(f"{label}: not an 8-bit image (got {image.dtype} {image.shape}).")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.shape[2] != 3:
        raise QueryError(f"{label}: has {image.shape[2]} channels; expected a colour or grey image.")
    return np.ascontiguousarray(image)


def detect_people(image: np.ndarray, detector: Detector) -> np.ndarray:
    """``(N, 4)`` person boxes in ``image``; tries a grey-padded copy when none is found."""
    boxes = np.asarray(detector.detect([image])[0].boxes, np.float32).reshape(-1, 4)
    if len(boxes):
        return boxes
    h, w = image.shape[:2]
    p = max(1, int(round(PAD_FRACTION * max(h, w))))
    padded = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    boxes = np.asarray(detector.detect([padded])[0].boxes, np.float32).reshape(-1, 4) - p
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    keep = (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)
    return boxes[keep]


def main_person(boxes: np.ndarray) -> int:
    """Index of the largest upright box (taller than wide), or of the largest box when none is upright.

    Args:
        boxes: ``(N, 4)`` xyxy, N >= 1.
    """
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    area = w * h
    upright = h >= w
    if upright.any():
        area = np.where(upright, area, -1.0)
    return int(np.argmax(area))


def _fmt_box(box: Sequence[float]) -> str:
    return "(" + ", ".join(str(int(round(float(v)))) for v in box) + ")"


def embed_photo(photo: str | Path | np.ndarray, i: int, detector: Detector, embedder: Embedder) -> QueryPhoto:
    """Find the person in one query photo and embed them (see the module notes for the rules).

    Args:
        photo: Image file or BGR array.
        i: Position of the photo in the query (for in-memory labels).
        detector: Person detector.
        embedder: ReID embedder.

    Returns:
        The embedded photo with a note.

    Raises:
        QueryError: Unreadable photo, no person found, or the person is too small to embed.
    """
    label = photo_label(photo, i)
    image = load_photo(photo, label)
    h, w = image.shape[:2]
    boxes = detect_people(image, detector)
    if len(boxes) == 0:
        raise QueryError(f"{label}: no person found (give a photo or crop showing one whole person).")
    j = main_person(boxes)
    box = boxes[j]
    bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
    n = len(boxes)
    if bw * bh >= CROP_MIN_COVERAGE * w * h or bh >= CROP_MIN_HEIGHT * h:
        vector = embedder.embed_crops([image])[0]
        extra = f" ({n} people found)" if n > 1 else ""
        note = f"{label}: used the whole photo as a person crop{extra}."
        used = None
    else:
        emb = embedder.embed(image, box[None, :])
        if len(emb.vectors) == 0:
            reason = emb.skipped[0][1] if emb.skipped else "not usable"
            raise QueryError(f"{label}: the person found at {_fmt_box(box)} is too small to use ({reason}).")
        vector = emb.vectors[0]
        who = "1 person found, used it" if n == 1 else f"{n} people found, used the largest"
        note = f"{label}: {who} at {_fmt_box(box)}."
        used = tuple(float(v) for v in box)
    vector = np.asarray(vector, np.float32).copy()
    vector.flags.writeable = False
    return QueryPhoto(label=label, vector=vector, box=used, people=n, note=note)  # type: ignore[arg-type]


def combine(vectors: np.ndarray) -> np.ndarray:
    """Combine several photos' embeddings into one query vector: mean, then L2-normalise.

    Args:
        vectors: ``(P, D)`` L2-normalised embeddings, P >= 1.

    Returns:
        ``(D,)`` float32 unit vector.
    """
    mean = np.asarray(vectors, np.float64).reshape(len(vectors), -1).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-9:
        raise QueryError("the query photos' embeddings cancel out; use photos of one person.")
    return (mean / norm).astype(np.float32)


def embed_query(photos: Sequence[str | Path | np.ndarray], detector: Detector, embedder: Embedder,
                ) -> tuple[np.ndarray, tuple[QueryPhoto, ...]]:
    """Embed the query photos and combine them.

    Returns:
        ``((D,) float32 query vector, the embedded photos)``.

    Raises:
        QueryError: No photos, or one of them is unusable.
    """
    if isinstance(photos, (str, Path, np.ndarray)):
        photos = [photos]
    if len(photos) == 0:
        raise QueryError("no query photo given.")
    done = tuple(embed_photo(p, i, detector, embedder) for i, p in enumerate(photos))
    return combine(np.stack([q.vector for q in done])), done


@dataclass(frozen=True)
class PhotoCheck:
    """A query photo looked at before use (:func:`check_photo`).

    Attributes:
        label: The photo as named in messages (its path, or ``"<array 0>"``).
        people: People the detector found in it.
        box: ``(x1, y1, x2, y2)`` of the person a search will use.
        whole: The search will embed the whole photo (that person fills it) rather than cut them out.
        size: ``(width, height)`` of the photo.
    """

    label: str
    people: int
    box: tuple[float, float, float, float]
    whole: bool
    size: tuple[int, int]


def check_photo(photo: str | Path | np.ndarray, detector: Detector) -> PhotoCheck:
    """Look for the person in a query photo as a search will, before it is used (no embedding).

    The search takes the photo's main person; this refuses, besides what the search refuses (an
    unreadable photo, no person at all), a photo whose only "people" are lying down: a detector
    trained on falls reports objects on the ground (a bag on the grass, a patch of lawn) as
    fallen people, and a query vector of those matches people at random.

    Raises:
        QueryError: One sentence naming the photo (``"<array 0>"`` for an array) and what is wrong.
    """
    label = photo_label(photo, 0)
    image = load_photo(photo, label)
    boxes = detect_people(image, detector)  # the search's own rule, padding included
    if len(boxes) == 0:
        raise QueryError(f"{label}: no person found (give a photo or crop showing one whole person).")
    box = boxes[main_person(boxes)]
    bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
    if bh < bw:
        raise QueryError(f"{label}: no standing or walking person found, only something lying down "
                         "(give a photo or crop showing one whole person).")
    h, w = image.shape[:2]
    whole = bw * bh >= CROP_MIN_COVERAGE * w * h or bh >= CROP_MIN_HEIGHT * h
    return PhotoCheck(label=label, people=len(boxes), box=(float(box[0]), float(box[1]), float(box[2]),
                                                           float(box[3])), whole=whole, size=(w, h))
