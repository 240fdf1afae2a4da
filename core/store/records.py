"""What the store returns and takes: frozen dataclasses and read-only numpy arrays, and their row converters.

Every converter reads a row by column name (``row.id``, ``row.fps`` ...), so it
takes an ORM object and a result row of selected columns alike:
``video_from_row``, ``run_from_row``, ``track_from_row``, ``sightings_from_rows``,
``embeddings_from_rows``, ``query_summary_from_row`` and ``hit_from_row``;
``hit_values`` is the other direction for a hit, ``vector_bytes`` / ``vector_from_bytes``
for a query vector. The columns are those of :mod:`core.store.tables`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.types import Hit, Segment


def readonly(arr: np.ndarray) -> np.ndarray:
    """Return a read-only C-contiguous copy of ``arr`` (no copy when it is already read-only)."""
    if arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.array(arr, order="C", copy=True)
        arr.flags.writeable = False
    return arr


@dataclass(frozen=True)
class VideoRecord:
    """A video of the library.

    Attributes:
        id: Database id.
        path: Path of the file as last seen (updated when a moved file is indexed again).
        fingerprint: Content fingerprint (``core.video.fingerprint``).
        fps: Frames per second.
        frame_count: Frames in the file.
        duration_s: Length in seconds.
        width: Frame width in pixels.
        height: Frame height in pixels.
        added: ISO time the video was first added.
        kind: ``"video"`` (a video file or an image sequence) or ``"photos"`` (a photo collection,
            ``core.photos``: its frames are photos, see :class:`PhotoRecord`).
    """

    id: int
    path: str
    fingerprint: str
    fps: float
    frame_count: int
    duration_s: float
    width: int
    height: int
    added: str
    kind: str = "video"


@dataclass(frozen=True)
class PhotoRecord:
    """One photo of a photo collection as the library keeps it.

    Attributes:
        frame: Its rank in the collection (the ``frame`` of its sightings and hits).
        path: The photo file (absolute: the collection's path joined with the stored relative path).
        taken: EXIF ``DateTimeOriginal`` as ISO text, or ``None``.
        time_s: Its time in the collection (see ``core.photos``).
        width: Upright width in pixels.
        height: Upright height in pixels.
    """

    frame: int
    path: str
    taken: str | None
    time_s: float
    width: int
    height: int


@dataclass(frozen=True)
class RunRecord:
    """An indexing run (without its resume state blob, see :meth:`core.store.Store.load_run_state`).

    Attributes:
        id: Database id.
        video_id: The video indexed.
        detector_name: Detector model name.
        detector_sha256: Detector model file digest.
        reid_name: ReID model name.
        reid_sha256: ReID model file digest (embeddings of different models never mix).
        embedding_dim: D of the embeddings.
        settings_json: The indexing settings as JSON text (see :attr:`settings`).
        settings_key: Hash of models + settings; unique per video.
        status: ``running``, ``cancelled``, ``done`` or ``failed``.
        frames_done: Frames covered by the last commit (last processed frame + 1).
        frames_total: Frames in the video.
        tracks_done: Tracks written so far.
        started: ISO time the run was created.
        finished: ISO time it ended (``None`` while running or interrupted).
        error: Error sentence of a failed run.
    """

    id: int
    video_id: int
    detector_name: str
    detector_sha256: str
    reid_name: str
    reid_sha256: str
    embedding_dim: int
    settings_json: str
    settings_key: str
    status: str
    frames_done: int
    frames_total: int
    tracks_done: int
    started: str
    finished: str | None
    error: str | None

    @property
    def settings(self) -> dict[str, Any]:
        """The indexing settings (a fresh dict)."""
        return json.loads(self.settings_json)


@dataclass(frozen=True)
class TrackRecord:
    """A finished track.

    Attributes:
        pk: Database id (``track_pk`` elsewhere).
        run_id: The run that produced it.
        video_id: The run's video.
        track_id: Tracker id, unique within the run.
        first_frame: First processed frame it was seen in.
        last_frame: Last processed frame it was seen in.
        first_s: Time of ``first_frame`` in seconds.
        last_s: Time of ``last_frame`` in seconds.
        n_sightings: Number of sightings (processed frames it was matched in).
    """

    pk: int
    run_id: int
    video_id: int
    track_id: int
    first_frame: int
    last_frame: int
    first_s: float
    last_s: float
    n_sightings: int


@dataclass(frozen=True)
class Sightings:
    """Boxes of one or more tracks, sorted by (frame, track id) or by frame for one track.

    Attributes:
        track_pks: ``(N,)`` int64 database ids of the tracks.
        track_ids: ``(N,)`` int64 tracker ids.
        frames: ``(N,)`` int64 frame indices.
        times_s: ``(N,)`` float64 times in seconds.
        boxes: ``(N, 4)`` float32 xyxy pixels.
        scores: ``(N,)`` float32 detector scores.
    """

    track_pks: np.ndarray
    track_ids: np.ndarray
    frames: np.ndarray
    times_s: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class StoredEmbeddings:
    """Embeddings (ids, owners and vectors), ordered by embedding id.

    Attributes:
        ids: ``(M,)`` int64 embedding ids (the FAISS ids).
        track_pks: ``(M,)`` int64 track database ids.
        run_ids: ``(M,)`` int64 run ids.
        frames: ``(M,)`` int64 frame of each crop.
        quality: ``(M,)`` float32 crop quality used to choose it.
        vectors: ``(M, D)`` float32 L2-normalised vectors (``(M, 0)`` when not loaded).
    """

    ids: np.ndarray
    track_pks: np.ndarray
    run_ids: np.ndarray
    frames: np.ndarray
    quality: np.ndarray
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class LinkingRecord:
    """The linking of one run's tracks into people.

    Attributes:
        run_id: The run.
        created: ISO time.
        settings_json: The linking settings used, as JSON text.
        people: People found (groups of tracks, single tracks included).
        elapsed_s: Seconds the linking took.
    """

    run_id: int
    created: str
    settings_json: str
    people: int
    elapsed_s: float


@dataclass(frozen=True)
class NewTrack:
    """A finished track as the pipeline writes it.

    Attributes:
        track_id: Tracker id.
        frames: ``(N,)`` int64 frames of the sightings, increasing.
        times_s: ``(N,)`` float64 times of the sightings.
        boxes: ``(N, 4)`` float32 xyxy boxes.
        scores: ``(N,)`` float32 detector scores.
        emb_frames: ``(K,)`` int64 frames of the embedded crops.
        vectors: ``(K, D)`` float32 L2-normalised embeddings.
        quality: ``(K,)`` float32 quality of the embedded crops.
    """

    track_id: int
    frames: np.ndarray
    times_s: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    emb_frames: np.ndarray
    vectors: np.ndarray
    quality: np.ndarray

    def __post_init__(self) -> None:
        conv = {"frames": np.int64, "times_s": np.float64, "boxes": np.float32, "scores": np.float32,
                "emb_frames": np.int64, "vectors": np.float32, "quality": np.float32}
        for name, dtype in conv.items():
            object.__setattr__(self, name, readonly(np.asarray(getattr(self, name), dtype)))
        n, k = len(self.frames), len(self.emb_frames)
        if n == 0 or self.boxes.shape != (n, 4) or self.times_s.shape != (n,) or self.scores.shape != (n,):
            raise ValueError("a track needs N >= 1 sightings with (N,) frames/times/scores and (N, 4) boxes")
        if self.vectors.ndim != 2 or len(self.vectors) != k or self.quality.shape != (k,):
            raise ValueError("emb_frames, vectors (K, D) and quality must have the same K")


@dataclass(frozen=True)
class QuerySummary:
    """A saved search, without its hits.

    Attributes:
        id: Database id.
        created: ISO time.
        photos: Photo paths (or labels for in-memory photos).
        video_ids: Videos searched.
        threshold: Threshold asked for.
        reid_sha256: ReID model that made the query vectors.
        notes: Notes of the search (e.g. which person of a photo was used).
        hits: Number of stored hits.
        like_tracks: ``track_pk`` of the tracks whose embeddings made the query ("find similar";
            ``()`` for a search by photo).
    """

    id: int
    created: str
    photos: tuple[str, ...]
    video_ids: tuple[int, ...]
    threshold: float
    reid_sha256: str
    notes: tuple[str, ...]
    hits: int
    like_tracks: tuple[int, ...] = ()


@dataclass(frozen=True)
class QueryRecord:
    """A saved search with its hits.

    Attributes:
        summary: The query's fields.
        hits: Stored hits in their stored order (best first; ``video_path`` is the video's current
            path; ``mark`` from the query's marks).
        track_pks: ``track_pk`` of each hit's best track, same order.
        hit_tracks: Every ``track_pk`` of each hit (best first), same order.
        vector: ``(D,)`` float32 query vector, ``None`` for searches saved before schema 3.
        marks: ``{track_pk: "confirmed" | "rejected"}`` of the query.
    """

    summary: QuerySummary
    hits: tuple[Hit, ...]
    track_pks: tuple[int, ...] = field(default=())
    hit_tracks: tuple[tuple[int, ...], ...] = field(default=())
    vector: np.ndarray | None = field(default=None, repr=False)
    marks: dict[int, str] = field(default_factory=dict)

    @property
    def id(self) -> int:
        """The query id."""
        return self.summary.id



# --------------------------------------------------------------------------- row converters


def video_from_row(r: Any) -> VideoRecord:
    """A ``videos`` row as a record."""
    return VideoRecord(id=r.id, path=r.path, fingerprint=r.fingerprint, fps=r.fps, frame_count=r.frame_count,
                       duration_s=r.duration_s, width=r.width, height=r.height, added=r.added,
                       kind=r.kind or "video")


def photo_file(collection: str, relative: str | None) -> str:
    """The absolute file of a photo stored ``relative`` to its collection's path (``""``: the path itself)."""
    return str(Path(collection) / relative) if relative else collection


def run_from_row(r: Any) -> RunRecord:
    """An ``index_runs`` row (without its ``state`` blob) as a record."""
    return RunRecord(id=r.id, video_id=r.video_id, detector_name=r.detector_name,
                     detector_sha256=r.detector_sha256, reid_name=r.reid_name, reid_sha256=r.reid_sha256,
                     embedding_dim=r.embedding_dim, settings_json=r.settings, settings_key=r.settings_key,
                     status=r.status, frames_done=r.frames_done, frames_total=r.frames_total,
                     tracks_done=r.tracks_done, started=r.started, finished=r.finished, error=r.error)


def track_from_row(r: Any) -> TrackRecord:
    """A ``tracks`` row with its run's ``video_id`` as a record."""
    return TrackRecord(pk=r.id, run_id=r.run_id, video_id=r.video_id, track_id=r.track_id,
                       first_frame=r.first_frame, last_frame=r.last_frame, first_s=r.first_s,
                       last_s=r.last_s, n_sightings=r.n_sightings)


def sightings_from_rows(rows: Sequence[Any]) -> Sightings:
    """``sightings`` rows with their track's ``track_id``, in the given order."""
    n = len(rows)
    boxes = np.array([(r.x1, r.y1, r.x2, r.y2) for r in rows], np.float32).reshape(n, 4)
    return Sightings(
        track_pks=readonly(np.array([r.track_pk for r in rows], np.int64)),
        track_ids=readonly(np.array([r.track_id for r in rows], np.int64)),
        frames=readonly(np.array([r.frame for r in rows], np.int64)),
        times_s=readonly(np.array([r.time_s for r in rows], np.float64)),
        boxes=readonly(boxes),
        scores=readonly(np.array([r.score for r in rows], np.float32)),
    )


def split_by_track(sightings: Sightings) -> dict[int, Sightings]:
    """``{track_pk: that track's sightings}`` of sightings sorted by track (read-only views, no copy)."""
    if len(sightings) == 0:
        return {}
    cuts = [0, *(np.flatnonzero(np.diff(sightings.track_pks)) + 1).tolist(), len(sightings)]
    return {int(sightings.track_pks[a]): Sightings(
        track_pks=sightings.track_pks[a:b], track_ids=sightings.track_ids[a:b], frames=sightings.frames[a:b],
        times_s=sightings.times_s[a:b], boxes=sightings.boxes[a:b], scores=sightings.scores[a:b])
        for a, b in zip(cuts[:-1], cuts[1:], strict=True)}


def embeddings_from_rows(rows: Sequence[Any], *, with_vectors: bool) -> StoredEmbeddings:
    """``embeddings`` rows (with their ``vector`` bytes when ``with_vectors``) in the given order.

    Raises:
        ValueError: The vectors have different dimensions (mixed ReID models).
    """
    m = len(rows)
    if with_vectors and m:
        sizes = {len(r.vector) for r in rows}
        if len(sizes) != 1:
            raise ValueError("the selected embeddings have different dimensions (mixed ReID models)")
        vectors = np.frombuffer(b"".join(r.vector for r in rows), "<f4").reshape(m, sizes.pop() // 4)
        vectors = vectors.astype(np.float32)
    else:
        vectors = np.zeros((m, 0), np.float32)
    return StoredEmbeddings(
        ids=readonly(np.array([r.id for r in rows], np.int64)),
        track_pks=readonly(np.array([r.track_pk for r in rows], np.int64)),
        run_ids=readonly(np.array([r.run_id for r in rows], np.int64)),
        frames=readonly(np.array([r.frame for r in rows], np.int64)),
        quality=readonly(np.array([r.quality for r in rows], np.float32)),
        vectors=readonly(vectors),
    )


def query_summary_from_row(q: Any, n_hits: int) -> QuerySummary:
    """A ``queries`` row and its number of hits as a summary."""
    return QuerySummary(id=q.id, created=q.created, photos=tuple(json.loads(q.photos)),
                        video_ids=tuple(int(v) for v in json.loads(q.video_ids)), threshold=q.threshold,
                        reid_sha256=q.reid_sha256, notes=tuple(json.loads(q.notes)), hits=n_hits,
                        like_tracks=tuple(int(t) for t in json.loads(q.like_tracks or "[]")))


def hit_track_pks(h: Any) -> tuple[int, ...]:
    """Every ``track_pk`` of a ``hits`` row, best first (one-track hits of schema 2 included)."""
    pks = tuple(int(t) for t in json.loads(h.track_pks or "[]"))
    return pks or (int(h.track_pk),)


def hit_from_row(h: Any, *, video_id: int, video_path: str, track_id: int, track_ids: Sequence[int] = (),
                 mark: str = "", photo_path: str = "", photo_taken: str = "") -> Hit:
    """A ``hits`` row, with its video, tracker ids (best; all in time order) and mark, as a ``Hit``."""
    segments = tuple(Segment(float(a), float(b), int(c), int(d)) for a, b, c, d in json.loads(h.segments))
    box = tuple(float(x) for x in json.loads(h.best_box))
    return Hit(video_id=video_id, video_path=video_path, track_id=track_id, score=h.score, segments=segments,
               best_frame=h.best_frame, best_time_s=h.best_time_s, best_box=box,  # type: ignore[arg-type]
               track_ids=tuple(int(t) for t in track_ids), mark=mark, photo_path=photo_path,
               photo_taken=photo_taken)


def hit_values(query_id: int, track_pks: int | Sequence[int], h: Hit) -> dict[str, Any]:
    """The ``hits`` row of one hit of a saved search (the inverse of :func:`hit_from_row`).

    Args:
        query_id: The query.
        track_pks: The hit's ``track_pk``, or all of them with the best-matching track first.
        h: The hit.
    """
    pks = [int(track_pks)] if isinstance(track_pks, (int, np.integer)) else [int(t) for t in track_pks]
    return {"query_id": query_id, "track_pk": pks[0], "track_pks": json.dumps(pks), "score": float(h.score),
            "best_frame": int(h.best_frame), "best_time_s": float(h.best_time_s),
            "best_box": json.dumps([float(x) for x in h.best_box]),
            "segments": json.dumps([[sg.start_s, sg.end_s, sg.start_frame, sg.end_frame]
                                    for sg in h.segments])}


def vector_bytes(vector: np.ndarray | None) -> bytes | None:
    """A ``(D,)`` vector as the little-endian float32 bytes the library stores (``None`` stays ``None``)."""
    return None if vector is None else np.ascontiguousarray(np.asarray(vector).ravel(), "<f4").tobytes()


def vector_from_bytes(data: bytes | None) -> np.ndarray | None:
    """The inverse of :func:`vector_bytes` (a read-only ``(D,)`` float32 array)."""
    return None if data is None else readonly(np.frombuffer(data, "<f4").astype(np.float32))
