"""The engine facade: what the command line and the GUI call (contract: ``brief/engine_api.md``).

One :class:`Engine` holds the models (one ONNX Runtime session each, shared by all
threads), the library database (:class:`core.store.Store`) and the FAISS index of
the engine's ReID model. Every method opens its own database session, so one engine
may be used from several threads, one call at a time per thread. Everything returned
is immutable.

Which indexing run of a video is used (search, ``boxes_at``): the run made with the
engine's current models and settings when it is finished; else the newest finished
run made with the same ReID model (other detector, stride or tracker settings: its
embeddings are comparable); else the current settings' unfinished run when it has
tracks (a note says the video is only partly indexed). A video indexed only with
another ReID model cannot be searched with this one.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import search as search_mod
from core.detection import YoloOnnxDetector
from core.errors import StoreError
from core.index import EmbeddingIndex
from core.models import resolve_model
from core.onnx_model import DEVICES
from core.pipeline import IndexSettings, index_video, model_identity, run_settings
from core.reid import OnnxEmbedder
from core.store import RunRecord, Store, VideoRecord
from core.types import Hit, IndexProgress, TrackedBoxes, Tracker
from core.video import fingerprint

VideoRef = str | Path | int
"""A video: its path (as indexed, or a moved copy of the same content) or its database id."""


@dataclass(frozen=True)
class VideoInfo:
    """A video of the library as the engine sees it.

    Attributes:
        id: Database id.
        path: Path as last seen.
        fingerprint: Content fingerprint.
        fps: Frames per second.
        frame_count: Frames in the video.
        duration_s: Length in seconds.
        width: Frame width in pixels.
        height: Frame height in pixels.
        indexed: A finished run exists with the engine's current models and settings.
        tracks: Tracks of the newest finished run (0 if none).
        status: ``"indexed"``, ``"partial"`` (an unfinished run with the current settings has
            started) or ``"not indexed"``.
    """

    id: int
    path: str
    fingerprint: str
    fps: float
    frame_count: int
    duration_s: float
    width: int
    height: int
    indexed: bool
    tracks: int
    status: str


@dataclass(frozen=True)
class QueryInfo:
    """A saved search, without its hits.

    Attributes:
        id: Query id (for :meth:`Engine.load_query`).
        created: ISO time.
        photos: Photo paths (``"<array i>"`` for in-memory photos).
        video_ids: Videos searched.
        hits: Stored hits (every track at or above ``core.search.SCORE_FLOOR``).
    """

    id: int
    created: str
    photos: tuple[str, ...]
    video_ids: tuple[int, ...]
    hits: int


@dataclass(frozen=True)
class SearchResult:
    """Result of a search (new or reloaded).

    Attributes:
        query_id: Id of the stored query.
        hits: Best first; every candidate track with score >= ``core.search.SCORE_FLOOR``, so a
            threshold slider can re-filter without searching again.
        threshold: The threshold asked for.
        notes: What was done with the photos and videos, one sentence each.
        elapsed_s: Seconds the search (or the reload) took.
    """

    query_id: int
    hits: tuple[Hit, ...]
    threshold: float
    notes: tuple[str, ...]
    elapsed_s: float

    def above(self, threshold: float) -> tuple[Hit, ...]:
        """Hits with ``score >= threshold``, best first."""
        return tuple(h for h in self.hits if h.score >= threshold)


def default_tracker_factory(**kwargs: Any) -> Callable[[], Tracker]:
    """The project's tracker (``core.tracking``), configured with ``kwargs``.

    Args:
        **kwargs: Tracker settings, typically the detector's manifest ``tracker`` entry
            (thresholds suited to that detector's confidence scale).
    """
    from core.tracking import ByteTracker

    return functools.partial(ByteTracker, **kwargs) if kwargs else ByteTracker


class Engine:
    """Index videos and search them for people (see the module notes).

    Args:
        db_path: Library database file (created when missing).
        detector: Detector ONNX file; ``None``: the manifest's default model.
        reid: ReID ONNX file; ``None``: the manifest's default model.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        stride: Process every ``stride``-th frame when indexing.
        tracker_factory: Makes a fresh tracker per video (default: ``core.tracking``'s).
        settings: Full indexing settings (overrides ``stride``).
        index_kind: FAISS index kind (:data:`core.index.INDEX_KINDS`): ``"flat"`` (exact, the
            default), ``"flat16"`` or ``"ivf"`` for very large libraries.

    Attributes:
        detector_path: The detector model file in use.
        reid_path: The ReID model file in use.
        providers: ``{"detector": provider, "reid": provider}`` ONNX Runtime really uses.
        notes: Sentences about the set-up, e.g. a CUDA fallback.
        settings: The indexing settings.

    Raises:
        ModelError: A model file is missing or unusable, or no default model is present (the
            message names ``python -m core.models fetch``).
        StoreError: The database cannot be opened.
        ValueError: Unknown ``device`` or a bad ``stride``.
        KeyError: Unknown ``index_kind`` (the message lists the valid ones).
    """

    def __init__(self, db_path: str | Path, *, detector: str | Path | None = None,
                 reid: str | Path | None = None, device: str = "auto", stride: int = 2,
                 tracker_factory: Callable[[], Tracker] | None = None,
                 settings: IndexSettings | None = None, index_kind: str = "flat") -> None:
        if device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        self.settings = settings if settings is not None else IndexSettings(stride=int(stride))
        det_path, det_entry = resolve_model("detect", detector)
        reid_path, reid_entry = resolve_model("reid", reid)
        person_classes = det_entry.person_classes if det_entry and det_entry.person_classes else ("person",)
        self.detector = YoloOnnxDetector(det_path, person_classes=person_classes, device=device)
        self.embedder = OnnxEmbedder(reid_path, preprocess=reid_entry.preprocess if reid_entry else None,
                                     device=device)
        self.detector_path: Path = Path(det_path)
        self.reid_path: Path = Path(reid_path)
        self.device = device
        self.providers: dict[str, str] = {"detector": self.detector.provider, "reid": self.embedder.provider}
        notes: list[str] = []
        for model in (self.detector, self.embedder):
            if model.fallback_note and model.fallback_note not in notes:
                notes.append(model.fallback_note)
        self.notes: tuple[str, ...] = tuple(notes)
        self.tracker_factory = tracker_factory or default_tracker_factory(
            **(det_entry.tracker if det_entry else {}))
        self.reid_name, self.reid_sha256 = model_identity(self.embedder)
        _, self.settings_key = run_settings(self.detector, self.embedder, self.tracker_factory(),
                                            self.settings)
        self.store = Store(db_path)
        self.db_path = self.store.path
        self.faiss_index = EmbeddingIndex(self.store, self.reid_sha256, self.embedder.dim, kind=index_kind)

    # -- indexing ---------------------------------------------------------------------------------

    def index(self, video: str | Path, *, cancel: threading.Event | None = None) -> Iterator[IndexProgress]:
        """Index one video file or image folder (resumable; a finished video yields one skipped item).

        Args:
            video: Video file or folder of images.
            cancel: Set it to stop after the current frame; the next call resumes.

        Yields:
            Progress items; the last has ``done=True`` (or ``skipped=True``).

        Raises:
            VideoError: The file is not a readable video or image folder.
        """
        yield from index_video(video, store=self.store, detector=self.detector, embedder=self.embedder,
                               tracker_factory=self.tracker_factory, settings=self.settings, cancel=cancel)

    # -- library ----------------------------------------------------------------------------------

    def _find_video(self, video: VideoRef) -> VideoRecord:
        if isinstance(video, (int, np.integer)) and not isinstance(video, bool):
            return self.store.get_video(int(video))
        path = Path(video)
        record = self.store.video_by_path(path)
        if record is None and path.is_file():
            try:
                record = self.store.video_by_fingerprint(fingerprint(path))
            except OSError:
                record = None
        if record is None:
            raise StoreError(f"{video}: this video is not in the library {self.db_path}; index it first "
                             f"(python -m core index {video}).")
        return record

    def _run_for(self, video: VideoRecord) -> tuple[RunRecord | None, str | None]:
        """The run to use for a video (see the module notes) and a note when it is partial."""
        current = self.store.find_run(video.id, self.settings_key)
        if current is not None and current.status == "done":
            return current, None
        done = self.store.latest_run(video.id, status="done", reid_sha256=self.reid_sha256)
        if done is not None:
            return done, None
        if current is not None and current.tracks_done > 0:
            total = current.frames_total or video.frame_count
            return current, (f"{video.path}: only partly indexed ({current.frames_done} of {total} frames); "
                             "searched what is indexed so far.")
        return None, None

    def _video_info(self, v: VideoRecord) -> VideoInfo:
        current = self.store.find_run(v.id, self.settings_key)
        indexed = current is not None and current.status == "done"
        status = "indexed" if indexed else "partial" if current is not None else "not indexed"
        latest = current if indexed else self.store.latest_run(v.id, status="done")
        return VideoInfo(id=v.id, path=v.path, fingerprint=v.fingerprint, fps=v.fps,
                         frame_count=v.frame_count, duration_s=v.duration_s, width=v.width,
                         height=v.height, indexed=indexed, tracks=latest.tracks_done if latest else 0,
                         status=status)

    def videos(self) -> list[VideoInfo]:
        """Every video of the library, in the order added."""
        return [self._video_info(v) for v in self.store.list_videos()]

    def queries(self, video: VideoRef | None = None) -> list[QueryInfo]:
        """Saved searches, newest first (only those that searched ``video`` when given)."""
        video_id = None if video is None else self._find_video(video).id
        return [QueryInfo(id=q.id, created=q.created, photos=q.photos, video_ids=q.video_ids, hits=q.hits)
                for q in self.store.list_queries(video_id)]

    # -- searching --------------------------------------------------------------------------------

    def search(self, photos: Sequence[str | Path | np.ndarray], *, videos: Sequence[VideoRef] | None = None,
               threshold: float | None = None, top_k: int = 200) -> SearchResult:
        """Search videos for the person in the photos and store the search.

        Args:
            photos: Image files or BGR arrays: tight person crops or whole pictures (the largest
                person is used; see ``core.search``). Several photos of one person are combined.
            videos: Videos to search (paths or ids); ``None``: every indexed video.
            threshold: Similarity threshold for :meth:`SearchResult.above` (default
                ``core.search.DEFAULT_THRESHOLD``); hits down to ``SCORE_FLOOR`` are kept anyway.
            top_k: Most tracks returned.

        Returns:
            The stored search's result.

        Raises:
            QueryError: A photo is unreadable or shows no person.
            StoreError: A video is unknown or not indexed with this ReID model, or nothing is indexed.
            ValueError: ``threshold`` outside ``[0, 1]`` or ``top_k`` < 1.
        """
        t0 = time.perf_counter()
        threshold = search_mod.DEFAULT_THRESHOLD if threshold is None else float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if int(top_k) < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if isinstance(photos, (str, Path, np.ndarray)):
            photos = [photos]
        notes: list[str] = []
        targets: list[search_mod.SearchTarget] = []
        if videos is None:
            records = self.store.list_videos()
            explicit = False
        else:
            if isinstance(videos, (str, Path, int)):
                videos = [videos]
            records = [self._find_video(v) for v in videos]
            explicit = True
        for v in records:
            run, note = self._run_for(v)
            if run is None:
                if explicit:
                    other = self.store.latest_run(v.id, status="done")
                    why = (f"it was indexed with another ReID model ({other.reid_name}); index it again with "
                           f"{self.reid_path.name}" if other is not None else "it is not indexed yet")
                    raise StoreError(f"{v.path}: cannot be searched: {why} (python -m core index {v.path}).")
                continue
            if note:
                notes.append(note)
            targets.append(search_mod.SearchTarget(run.id, v, int(run.settings.get("stride", 1))))
        if not targets:
            raise StoreError(f"no video of the library {self.db_path} is indexed with the ReID model "
                             f"{self.reid_path.name}; index one first (python -m core index VIDEO).")
        raw = search_mod.search(photos, store=self.store, index=self.faiss_index, detector=self.detector,
                                embedder=self.embedder, targets=targets, top_k=int(top_k))
        notes = [p.note for p in raw.photos] + notes
        query_id = self.store.save_query(photos=[p.label for p in raw.photos],
                                         video_ids=[t.video.id for t in targets], threshold=threshold,
                                         reid_sha256=self.reid_sha256, hits=raw.hits, notes=notes)
        return SearchResult(query_id=query_id, hits=tuple(h for _, h in raw.hits), threshold=threshold,
                            notes=tuple(notes), elapsed_s=time.perf_counter() - t0)

    def load_query(self, query_id: int) -> SearchResult:
        """Reopen a stored search (its hits as they were found; no photo or video is read).

        Raises:
            StoreError: No such query.
        """
        t0 = time.perf_counter()
        record = self.store.load_query(int(query_id))
        s = record.summary
        return SearchResult(query_id=s.id, hits=record.hits, threshold=s.threshold, notes=s.notes,
                            elapsed_s=time.perf_counter() - t0)

    def boxes_at(self, video: VideoRef, frame_index: int) -> TrackedBoxes:
        """Every track's box stored at a frame (or at the nearest processed frame at most stride-1 back).

        Args:
            video: Path or id of an indexed video.
            frame_index: Frame number.

        Returns:
            ``TrackedBoxes`` with ``track_ids (N,)``, ``boxes (N, 4)`` xyxy, ``scores (N,)`` and
            ``det_index`` all ``-1`` (detections are not stored); empty when nothing was seen.

        Raises:
            StoreError: The video is unknown or has no usable run.
        """
        record = self._find_video(video)
        run, _ = self._run_for(record)
        if run is None:
            raise StoreError(f"{record.path}: not indexed with the ReID model {self.reid_path.name}.")
        stride = max(int(run.settings.get("stride", 1)), 1)
        frame_index = int(frame_index)
        s = self.store.sightings_in_frame(run.id, max(frame_index - stride + 1, 0), frame_index)
        if len(s):
            at = s.frames == s.frames.max()
            return TrackedBoxes(track_ids=s.track_ids[at], boxes=s.boxes[at], scores=s.scores[at],
                                det_index=np.full(int(at.sum()), -1, np.int64))
        return TrackedBoxes(track_ids=np.zeros(0, np.int64), boxes=np.zeros((0, 4), np.float32),
                            scores=np.zeros(0, np.float32), det_index=np.zeros(0, np.int64))

    def close(self) -> None:
        """Release the database connections (the engine should not be used afterwards)."""
        self.store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Engine(db={str(self.db_path)!r}, detector={self.detector_path.name!r}, "
                f"reid={self.reid_path.name!r}, stride={self.settings.stride}, providers={self.providers})")
