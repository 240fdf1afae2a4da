"""Plain data that crosses stage and thread boundaries.

Every value here is immutable: frozen dataclasses whose numpy arrays are made
read-only on construction, so a result handed from a worker thread to the GUI
cannot be changed under anyone's feet.

Shapes use N for the number of boxes in one frame and D for the embedding size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


def _frozen_array(value: np.ndarray, dtype: type, shape_tail: tuple[int, ...]) -> np.ndarray:
    """Return ``value`` as a read-only array of ``dtype`` whose trailing dims are ``shape_tail``.

    Args:
        value: Array-like input.
        dtype: Target numpy dtype.
        shape_tail: Required trailing dimensions, e.g. ``(4,)`` for ``(N, 4)`` boxes.

    Returns:
        A read-only copy (or view) of the data.

    Raises:
        ValueError: If the shape does not match.
    """
    arr = np.asarray(value, dtype=dtype)
    if arr.ndim != 1 + len(shape_tail) or arr.shape[1:] != shape_tail:
        raise ValueError(f"expected shape (N, {', '.join(map(str, shape_tail))}) got {arr.shape}"
                         if shape_tail else f"expected shape (N,) got {arr.shape}")
    if arr.flags.writeable:
        arr = arr.copy()
        arr.flags.writeable = False
    return arr


@dataclass(frozen=True)
class Detections:
    """People found in one frame.

    Attributes:
        boxes: ``(N, 4)`` float32, ``x1, y1, x2, y2`` in pixels of the original frame.
        scores: ``(N,)`` float32 detector confidence in ``[0, 1]``.
        classes: ``(N,)`` int64 class ids of the detector's class list.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", _frozen_array(self.boxes, np.float32, (4,)))
        object.__setattr__(self, "scores", _frozen_array(self.scores, np.float32, ()))
        object.__setattr__(self, "classes", _frozen_array(self.classes, np.int64, ()))
        n = len(self.boxes)
        if len(self.scores) != n or len(self.classes) != n:
            raise ValueError("boxes, scores and classes must have the same length")

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> Detections:
        """Return a frame with no detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass(frozen=True)
class TrackedBoxes:
    """Confirmed tracks updated in one frame (the tracker's output).

    Attributes:
        track_ids: ``(N,)`` int64 ids, unique per tracker instance, starting at 1.
        boxes: ``(N, 4)`` float32 xyxy pixels (the matched detection's box).
        scores: ``(N,)`` float32 score of the matched detection.
        det_index: ``(N,)`` int64 index into the frame's ``Detections`` that was matched.
    """

    track_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    det_index: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "track_ids", _frozen_array(self.track_ids, np.int64, ()))
        object.__setattr__(self, "boxes", _frozen_array(self.boxes, np.float32, (4,)))
        object.__setattr__(self, "scores", _frozen_array(self.scores, np.float32, ()))
        object.__setattr__(self, "det_index", _frozen_array(self.det_index, np.int64, ()))

    def __len__(self) -> int:
        return len(self.track_ids)


@dataclass(frozen=True)
class Embeddings:
    """ReID vectors for the usable boxes of one image.

    Attributes:
        vectors: ``(M, D)`` float32, each row L2-normalised.
        kept: ``(M,)`` int64 index of each row's box in the input boxes.
        skipped: ``((box_index, reason), ...)`` for boxes that were not embedded
            (too small, degenerate, outside the image).
    """

    vectors: np.ndarray
    kept: np.ndarray
    skipped: tuple[tuple[int, str], ...] = ()

    def __post_init__(self) -> None:
        vec = np.asarray(self.vectors, np.float32)
        if vec.ndim != 2:
            raise ValueError(f"vectors must be (M, D), got {vec.shape}")
        vec = vec.copy()
        vec.flags.writeable = False
        object.__setattr__(self, "vectors", vec)
        object.__setattr__(self, "kept", _frozen_array(self.kept, np.int64, ()))
        if len(self.kept) != len(vec):
            raise ValueError("kept must have one entry per vector")


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based frame number in the source (for a folder of images, the image's rank).
        time_s: Presentation time in seconds.
        image: ``(H, W, 3)`` uint8 BGR image (OpenCV order).
    """

    index: int
    time_s: float
    image: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Segment:
    """A continuous stretch of time in which a track was seen."""

    start_s: float
    end_s: float
    start_frame: int
    end_frame: int


@dataclass(frozen=True)
class Hit:
    """One person found by a search: one person in one video, with all of their tracks.

    A person is the tracks of one video that ``core.linking`` linked together (one track when
    nothing was linked). The hit's score, best frame and box are those of its best-matching
    track, ``track_id``.

    Attributes:
        video_id: Database id of the video.
        video_path: Path of the video as last seen.
        track_id: The best-matching track (its id within the video's indexing run).
        score: Similarity in ``[0, 1]`` (higher is more alike), see ``core.search``.
        segments: Time segments in which the person was seen (over all their tracks), in order.
        best_frame: Frame index whose crop matched best.
        best_time_s: Time of ``best_frame`` in seconds.
        best_box: ``(x1, y1, x2, y2)`` pixels of the person in ``best_frame``.
        track_ids: Every track of the person, in time order (``(track_id,)`` for one track).
        mark: ``"confirmed"`` or ``"rejected"`` when the user marked the hit (``core.engine.Engine.refine``),
            else ``""``.
        photo_path: In a photo collection (``core.photos``): the photo file of ``best_frame`` (the hit
            is one person in one photo, boxed by ``best_box``); ``""`` in a video.
        photo_taken: The photo's EXIF ``DateTimeOriginal`` as ISO text (camera time), else ``""``:
            photos of several collections share this one timeline.
    """

    video_id: int
    video_path: str
    track_id: int
    score: float
    segments: tuple[Segment, ...]
    best_frame: int
    best_time_s: float
    best_box: tuple[float, float, float, float]
    track_ids: tuple[int, ...] = ()
    mark: str = ""
    photo_path: str = ""
    photo_taken: str = ""

    def __post_init__(self) -> None:
        if not self.track_ids:
            object.__setattr__(self, "track_ids", (int(self.track_id),))


@dataclass(frozen=True)
class IndexProgress:
    """Progress of an indexing run, yielded by the pipeline generator.

    Attributes:
        video_path: The video being indexed.
        frames_done: Frames decoded so far (including frames resumed from an earlier run).
        frames_total: Frames in the video (0 when unknown).
        fps: Processing speed in frames per second over this run.
        eta_s: Estimated seconds left (``None`` when unknown).
        stage_s: Seconds spent per stage so far: ``(("decode", t), ("detect", t), ...)``.
        tracks: Tracks written so far.
        done: True on the last progress item of a finished run.
        skipped: True when the video was already indexed with these models and settings.
        warning: On the last item, a sentence about the video itself when it needs one
            (a truncated file: how many frames decoded of those its header claims).
        processed: Frames processed in this pass (every ``stride``-th frame).
        detected: Of those, frames the detector ran on (the others were skipped by the motion gate).
        note: On the first item of a run that had to start again instead of resuming, a
            sentence saying why (its saved progress was unreadable or from another version); on
            the first item of a folder of images, how it is read (a sequence or photos).
        photos: The run is a photo collection's (``core.photo_index``): ``frames_*`` count photos,
            ``fps`` is photos per second and ``tracks`` the people found (one per detection).
    """

    video_path: str
    frames_done: int
    frames_total: int
    fps: float
    eta_s: float | None
    stage_s: tuple[tuple[str, float], ...] = ()
    tracks: int = 0
    done: bool = False
    skipped: bool = False
    warning: str | None = None
    processed: int = 0
    detected: int = 0
    note: str | None = None
    photos: bool = False


@dataclass(frozen=True)
class IndexStarted:
    """Indexing of one video of several is starting (``core.engine.Engine.index_many``).

    Attributes:
        video_path: The video, as given.
        number: Its position, from 1.
        count: Videos in the batch.
    """

    video_path: str
    number: int
    count: int


INDEX_OUTCOMES = ("done", "skipped", "cancelled", "failed")
"""Values of :attr:`IndexOutcome.status`."""


@dataclass(frozen=True)
class IndexOutcome:
    """How indexing one video of several ended (``core.engine.Engine.index_many``).

    Attributes:
        video_path: The video, as given.
        status: One of :data:`INDEX_OUTCOMES`: ``"done"`` (indexed now), ``"skipped"`` (already
            indexed with these models and settings), ``"cancelled"`` (stopped by the user; the
            next call resumes) or ``"failed"``.
        last: The video's last progress item (``None`` when it failed before the first).
        elapsed_s: Seconds spent on the video.
        message: ``"failed"``: the one-sentence error; ``"done"``: the last item's warning, if any.
    """

    video_path: str
    status: str
    last: IndexProgress | None
    elapsed_s: float
    message: str | None = None

    def __post_init__(self) -> None:
        if self.status not in INDEX_OUTCOMES:
            raise ValueError(f"status must be one of {INDEX_OUTCOMES}, got {self.status!r}")


IndexEvent = IndexStarted | IndexProgress | IndexOutcome
"""What ``core.engine.Engine.index_many`` yields."""


class Detector(Protocol):
    """Finds people in frames."""

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        """Detect people in a batch of ``(H, W, 3)`` uint8 BGR images."""
        ...


class LazyEmbeddings:
    """``(N, D)`` ReID vectors of one frame's detections, each computed when first indexed.

    What the pipeline passes a tracker that ``needs_embeddings``: indexing it like an array
    (``e[i]``, ``e[idx]`` with an int array) returns float32 rows and embeds only the rows
    not computed yet, so a tracker that looks at the appearance of a few detections pays for
    those only. Rows of boxes the embedder skips are zero.

    Args:
        count: ``N``, the detections of the frame.
        dim: ``D``, the vector size.
        compute: Embeds the detections of an int array of row indices: ``(len, D)`` float32.
    """

    def __init__(self, count: int, dim: int, compute: Callable[[np.ndarray], np.ndarray]) -> None:
        self.shape = (int(count), int(dim))
        self._rows = np.zeros(self.shape, np.float32)
        self._done = np.zeros(self.shape[0], bool)
        self._compute = compute

    @classmethod
    def of(cls, embedder: Embedder, image: np.ndarray, boxes: np.ndarray) -> LazyEmbeddings:
        """The vectors of ``boxes`` ``(N, 4)`` xyxy of ``image``, by ``embedder`` as they are read."""
        def compute(rows: np.ndarray) -> np.ndarray:
            out = np.zeros((len(rows), embedder.dim), np.float32)
            emb = embedder.embed(image, boxes[rows])
            out[emb.kept] = emb.vectors
            return out

        return cls(len(boxes), embedder.dim, compute)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def computed(self) -> int:
        """Rows embedded so far."""
        return int(self._done.sum())

    def __getitem__(self, index: int | np.ndarray) -> np.ndarray:
        wanted = np.unique(np.arange(self.shape[0])[index])
        missing = wanted[~self._done[wanted]]
        if len(missing):
            self._rows[missing] = self._compute(missing)
            self._done[missing] = True
        return self._rows[index]


class Tracker(Protocol):
    """Links per-frame detections into tracks; one instance per video (BoxMOT's ``update(dets, img, embs)``).

    A tracker that uses appearance sets a true ``needs_embeddings`` attribute; the pipeline
    then passes the detections' vectors as :class:`LazyEmbeddings` (an embedder call for the
    rows the tracker reads, so motion-only trackers leave it unset and pay nothing).
    """

    def update(self, detections: Detections, image: np.ndarray | None = None,
               embeddings: np.ndarray | None = None) -> TrackedBoxes:
        """Advance one (processed) frame and return the confirmed tracks matched in it.

        Args:
            detections: The frame's detections (``N`` boxes).
            image: The frame, ``(H, W, 3)`` uint8 BGR (for trackers that look at pixels,
                e.g. camera-motion compensation).
            embeddings: ``(N, D)`` float32 L2-normalised ReID vectors of the detections (rows of
                boxes too small to embed are zero), when the tracker ``needs_embeddings``: an
                array or :class:`LazyEmbeddings` (index it, do not iterate it).
        """
        ...

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1."""
        ...


class Embedder(Protocol):
    """Turns person crops into L2-normalised vectors."""

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        ...

    def embed(self, image: np.ndarray, boxes: np.ndarray) -> Embeddings:
        """Embed the ``(N, 4)`` xyxy pixel boxes of one ``(H, W, 3)`` BGR image."""
        ...

    def embed_crops(self, crops: list[np.ndarray]) -> np.ndarray:
        """Embed whole BGR person crops; returns ``(len(crops), D)`` float32, L2-normalised."""
        ...
