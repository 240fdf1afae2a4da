"""The engine facade: what the command line and the GUI call.

One :class:`Engine` holds the models (one ONNX Runtime session each, shared by all
threads), the library (:class:`core.library.Library` over :class:`core.store.Store`)
and the FAISS index of the engine's ReID model. Every method opens its own database
session, so one engine may be used from several threads, one call at a time per
thread. Everything returned is immutable.

Use cases and where they live: index one video (:meth:`Engine.index`) or several
(:meth:`Engine.index_many`, which the CLI's ``index`` and the GUI's Search both run),
search (:meth:`Engine.search`), reopen a saved search and list the library (the
model-free :class:`core.library.Library`, which the engine extends with the run rule
for its models, see that module), boxes at a frame for the player
(:meth:`Engine.boxes_at`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from core import search as search_mod
from core.detection import YoloOnnxDetector
from core.errors import ReidSearchError, StoreError
from core.index import EmbeddingIndex
from core.library import Library, QueryInfo, RunChoice, SearchResult, VideoInfo, VideoRef
from core.models import resolve_model
from core.onnx_model import DEVICES
from core.pipeline import IndexSettings, index_video, model_identity, run_settings
from core.reid import OnnxEmbedder
from core.store import Store, VideoRecord
from core.tracking import DEFAULT_TRACKER, make_tracker
from core.types import IndexEvent, IndexOutcome, IndexProgress, IndexStarted, TrackedBoxes, Tracker

__all__ = ["Engine", "QueryInfo", "SearchResult", "VideoInfo", "VideoRef"]


class Engine(Library):
    """Index videos and search them for people (see the module notes).

    The engine is a :class:`~core.library.Library` whose run rule uses its own models and
    settings: :meth:`videos`, :meth:`run_for` and :meth:`search` see a video as indexed when a
    run made with them (or, for search, with the same ReID model) is finished.

    Args:
        db_path: Library database file (created when missing).
        detector: Detector ONNX file; ``None``: the manifest's default model.
        reid: ReID ONNX file; ``None``: the manifest's default model.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        stride: Process every ``stride``-th frame when indexing.
        tracker: Tracker name (a key of :data:`core.tracking.TRACKERS`), configured with the
            detector's manifest ``tracker`` entry (thresholds suited to its confidence scale).
        settings: Full indexing settings (overrides ``stride``).
        index_kind: FAISS index kind (:data:`core.index.INDEX_KINDS`): ``"flat"`` (exact, the
            default), ``"flat16"`` or ``"ivf"`` for very large libraries.

    Attributes:
        detector_path: The detector model file in use.
        reid_path: The ReID model file in use.
        providers: ``{"detector": provider, "reid": provider}`` ONNX Runtime really uses.
        notes: Sentences about the set-up, e.g. a CUDA fallback.
        settings: The indexing settings.
        tracker_factory: Makes the fresh tracker of each new run.
        settings_key: Hash of the models and settings (one run per video and key).

    Raises:
        ModelError: A model file is missing or unusable, or no default model is present (the
            message names ``python -m core.models fetch``).
        StoreError: The database cannot be opened.
        ValueError: Unknown ``device`` or a bad ``stride``.
        KeyError: Unknown ``index_kind`` or ``tracker`` (the message lists the valid ones).
    """

    def __init__(self, db_path: str | Path, *, detector: str | Path | None = None,
                 reid: str | Path | None = None, device: str = "auto", stride: int = 2,
                 tracker: str = DEFAULT_TRACKER, settings: IndexSettings | None = None,
                 index_kind: str = "flat") -> None:
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
        tracker_kwargs = det_entry.tracker if det_entry else {}
        make_tracker(tracker, **tracker_kwargs)  # an unknown name or setting fails here, not mid-index
        self.tracker_factory: Callable[[], Tracker] = functools.partial(make_tracker, tracker,
                                                                        **tracker_kwargs)
        self.reid_name, self.reid_sha256 = model_identity(self.embedder)
        _, self.settings_key = run_settings(self.detector, self.embedder, self.tracker_factory(),
                                            self.settings)
        super().__init__(Store(db_path))
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

    def index_many(self, videos: Sequence[str | Path], *,
                   cancel: threading.Event | None = None) -> Iterator[IndexEvent]:
        """Index several videos one after the other (what the CLI's ``index`` and the GUI's Search run).

        A video that fails (unreadable, busy elsewhere) does not stop the others: its outcome says
        why. A cancel stops the batch after the current frame; the next call resumes every video
        where it stopped (finished ones are skipped at once).

        Args:
            videos: Video files or image folders (see ``core.video.expand_sources`` for folders).
            cancel: Set it to stop after the current frame.

        Yields:
            For each video: an :class:`~core.types.IndexStarted`, its
            :class:`~core.types.IndexProgress` items, then an :class:`~core.types.IndexOutcome`.
            After a cancel no further video is started.
        """
        for number, video in enumerate(videos, 1):
            path = str(video)
            if cancel is not None and cancel.is_set():
                yield IndexOutcome(path, "cancelled", None, 0.0)
                return
            yield IndexStarted(path, number, len(videos))
            t0 = time.perf_counter()
            last: IndexProgress | None = None
            try:
                for last in self.index(video, cancel=cancel):
                    yield last
            except ReidSearchError as err:
                yield IndexOutcome(path, "failed", last, time.perf_counter() - t0, str(err))
                continue
            elapsed = time.perf_counter() - t0
            if last is not None and last.skipped:
                yield IndexOutcome(path, "skipped", last, elapsed)
            elif last is not None and last.done:
                yield IndexOutcome(path, "done", last, elapsed, last.warning)
            else:
                yield IndexOutcome(path, "cancelled", last, elapsed)
                return

    # -- library, with this engine's run rule --------------------------------------------------

    def run_for(self, video: VideoRecord, *, settings_key: str | None = None,
                reid_sha256: str | None = None) -> RunChoice:
        """The run of ``video`` that counts for this engine's models and settings (``core.library``).

        ``settings_key`` / ``reid_sha256`` default to the engine's own.
        """
        return super().run_for(video, settings_key=settings_key or self.settings_key,
                               reid_sha256=reid_sha256 or self.reid_sha256)

    def videos(self, *, settings_key: str | None = None) -> list[VideoInfo]:
        """Every video of the library, in the order added, as this engine's settings see it."""
        return super().videos(settings_key=settings_key or self.settings_key)

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
            The stored search's result (in a read-only library: the result, not stored, with
            ``query_id`` ``None`` and a note saying so).

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
            records = [self.find_video(v) for v in videos]
            explicit = True
        for video in records:
            choice = self.run_for(video)
            if choice.run is None:
                if explicit:
                    other = self.store.latest_run(video.id, status="done")
                    why = (f"it was indexed with another ReID model ({other.reid_name}); index it again with "
                           f"{self.reid_path.name}" if other is not None else "it is not indexed yet")
                    raise StoreError(f"{video.path}: cannot be searched: {why} (python -m core index "
                                     f"{video.path}).")
                continue
            if choice.note:
                notes.append(choice.note)
            targets.append(search_mod.SearchTarget(choice.run.id, video,
                                                   int(choice.run.settings.get("stride", 1))))
        if not targets:
            raise StoreError(f"no video of the library {self.db_path} is indexed with the ReID model "
                             f"{self.reid_path.name}; index one first (python -m core index VIDEO).")
        raw = search_mod.search(photos, store=self.store, index=self.faiss_index, detector=self.detector,
                                embedder=self.embedder, targets=targets, top_k=int(top_k))
        notes = [p.note for p in raw.photos] + notes
        labels = [p.label for p in raw.photos]
        query_id: int | None = None
        if self.store.writable:
            query_id = self.store.save_query(photos=labels, video_ids=[t.video.id for t in targets],
                                             threshold=threshold, reid_sha256=self.reid_sha256,
                                             hits=raw.hits, notes=notes)
        else:
            notes.append(f"this search was not saved: the library {self.db_path} is read-only "
                         f"({self.store.read_only_reason}).")
        return SearchResult(query_id=query_id, hits=tuple(h for _, h in raw.hits), threshold=threshold,
                            notes=tuple(notes), elapsed_s=time.perf_counter() - t0, photos=tuple(labels))

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
        record = self.find_video(video)
        run = self.run_for(record).run
        if run is None:
            raise StoreError(f"{record.path}: not indexed with the ReID model {self.reid_path.name}.")
        stride = max(int(run.settings.get("stride", 1)), 1)
        frame_index = int(frame_index)
        seen = self.store.sightings_in_frame(run.id, max(frame_index - stride + 1, 0), frame_index)
        if len(seen):
            at = seen.frames == seen.frames.max()
            return TrackedBoxes(track_ids=seen.track_ids[at], boxes=seen.boxes[at], scores=seen.scores[at],
                                det_index=np.full(int(at.sum()), -1, np.int64))
        return TrackedBoxes(track_ids=np.zeros(0, np.int64), boxes=np.zeros((0, 4), np.float32),
                            scores=np.zeros(0, np.float32), det_index=np.zeros(0, np.int64))

    def __enter__(self) -> Engine:
        return self

    def __repr__(self) -> str:
        return (f"Engine(db={str(self.db_path)!r}, detector={self.detector_path.name!r}, "
                f"reid={self.reid_path.name!r}, stride={self.settings.stride}, providers={self.providers})")
