"""The engine facade: what the command line and the GUI call.

One :class:`Engine` holds the models (one ONNX Runtime session each, shared by all
threads), the library (:class:`core.library.Library` over :class:`core.store.Store`)
and the FAISS index of the engine's ReID model. Every method opens its own database
session, so one engine may be used from several threads, one call at a time per
thread. Everything returned is immutable.

Use cases and where they live: index one video (:meth:`Engine.index`) or several
(:meth:`Engine.index_many`, which the CLI's ``index`` and the GUI's Search both run; with
several worker processes, see :mod:`core.parallel`; a video's tracks are linked into people
as soon as it is indexed), search by photo (:meth:`Engine.search`; :meth:`Engine.check_photo`
looks at a photo first), find the person of a hit again (:meth:`Engine.search_like`), mark
hits as the person or not and re-rank (:meth:`Engine.refine`), reopen a saved search, list
the library and link older libraries (the model-free :class:`core.library.Library`, which the
engine extends with the run rule for its models, see that module), boxes at a frame for the
player (:meth:`Engine.boxes_at`, and a span of frames at once: :meth:`Engine.boxes_between`).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from core import search as search_mod
from core.boxes import FrameBoxes
from core.detection import YoloOnnxDetector
from core.engine_models import load_models
from core.errors import StoreError
from core.index import EmbeddingIndex
from core.index_settings import photo_run_settings
from core.library import HitRef, Library, QueryInfo, RunChoice, SearchResult, VideoInfo, VideoRef
from core.linking import centroids, link_run, needs_linking
from core.parallel import WorkerSpec, default_workers, index_videos
from core.photo_index import index_media
from core.photos import IMAGE_KINDS, PHOTO_MAX_SIDE
from core.pipeline import DEFAULT_RATE, IndexSettings, model_identity, run_settings
from core.query_photos import PhotoCheck, check_photo
from core.store import Store, VideoRecord
from core.tracking import DEFAULT_TRACKER, make_tracker
from core.types import IndexEvent, IndexOutcome, IndexProgress, TrackedBoxes, Tracker

__all__ = ["Engine", "HitRef", "PhotoCheck", "QueryInfo", "SearchResult", "VideoInfo", "VideoRef"]

def plural_tracks(n: int) -> str:
    """``"track"`` or ``"N tracks"`` as a note says it."""
    return "track" if n == 1 else f"{n} tracks"

class Engine(Library):
    """Index videos and search them for people (see the module notes).

    The engine is a :class:`~core.library.Library` whose run rule uses its own models and
    settings: :meth:`videos`, :meth:`run_for` and :meth:`search` see a video as indexed when a
    run made with them (or, for search, with the same ReID model) is finished.

    Args:
        db_path: Library database file (created when missing).
        detector: Detector ONNX file (float32); ``None``: the manifest's default model.
        reid: ReID ONNX file; ``None``: the manifest's default model.
        device: ``"auto"``, ``"cuda"`` or ``"cpu"``.
        precision: The detector's precision (:data:`core.models.derived.PRECISIONS`): ``"auto"``
            (int8 on the CPU, float16 on CUDA), ``"int8"``, ``"fp16"`` or ``"fp32"``. The int8 and
            float16 versions are models of their own, made once per machine (``python -m
            core.models quantize``; ``fetch`` makes the int8 one); when the one asked for is
            missing the float32 model runs and :attr:`notes` says so. The ReID model always runs
            in float32: its embeddings must stay comparable across machines.
        stride: Process every ``stride``-th frame when indexing; ``None``: sample by time (``rate``).
        rate: Processed frames per second of video when ``stride`` is ``None`` (default
            :data:`core.pipeline.DEFAULT_RATE`).
        motion_gate: Skip the detector where nothing moves and no track is alive (``core.motion``).
        tracker: Tracker name (a key of :data:`core.tracking.TRACKERS`), configured with the
            detector's manifest ``tracker`` entry (thresholds suited to its confidence scale).
        settings: Full indexing settings (overrides ``stride``, ``rate`` and ``motion_gate``).
        index_kind: FAISS index kind (:data:`core.index.INDEX_KINDS`): ``"flat"`` (exact, the
            default), ``"flat16"`` or ``"ivf"`` for very large libraries.
        workers: Worker processes :meth:`index_many` uses for several videos; ``None``:
            :func:`core.parallel.default_workers` (from the number of cores).
        threads: ONNX Runtime threads of this engine's models (default: all cores).
        images: How a folder of images is indexed: ``"auto"`` (:func:`core.photos.classify_folder`),
            ``"sequence"`` (video frames) or ``"photos"`` (``core.photo_index``; an image file always is).
        detect_size: Longest side of the detector's input in pixels (``None``: the model's own, 640);
            larger finds smaller (farther) people at a higher cost (README, Detector input size).

    Attributes:
        models: The loaded detector and ReID model (:class:`core.engine_models.EngineModels`).
        detector_path: The detector model file in use (the derived int8/fp16 file when one runs).
        float_detector_path: The float32 model it was made from (``detector_path`` for fp32).
        precision: The detector precision really in use (``"int8"``, ``"fp16"`` or ``"fp32"``).
        reid_path: The ReID model file in use.
        providers: ``{"detector": provider, "reid": provider}`` ONNX Runtime really uses.
        notes: Sentences about the set-up, e.g. a CUDA fallback or a missing int8 model.
        settings: The indexing settings.
        tracker_factory: Makes the fresh tracker of each new run.
        settings_key: Hash of the models and settings (one run per video and key).
        photo_settings_key: The same for photo collections (``core.index_settings.photo_run_settings``).

    Raises:
        ModelError: A model file is missing or unusable, or no default model is present (the
            message names ``python -m core.models fetch``); a fixed-size detector and a ``detect_size``.
        StoreError: The database cannot be opened.
        ValueError: Unknown ``device`` or ``precision``, a bad ``stride``, ``rate``, ``workers`` or
            ``detect_size``.
        KeyError: Unknown ``index_kind`` or ``tracker`` (the message lists the valid ones).
    """

    def __init__(self, db_path: str | Path, *, detector: str | Path | None = None,
                 reid: str | Path | None = None, device: str = "auto", precision: str = "auto",
                 stride: int | None = None, rate: float | None = None, motion_gate: bool = True,
                 tracker: str = DEFAULT_TRACKER, settings: IndexSettings | None = None,
                 index_kind: str = "flat", workers: int | None = None, threads: int | None = None,
                 images: str = "auto", detect_size: int | None = None) -> None:
        if images not in IMAGE_KINDS:
            raise ValueError(f"images must be one of {', '.join(IMAGE_KINDS)}, got {images!r}")
        self.images = images
        self.image_kinds: dict[str, str] = {}
        """Folders read otherwise than ``images`` says: ``{resolved path: kind}`` (:meth:`read_as`)."""
        if workers is not None and int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if settings is None:
            settings = IndexSettings(stride=stride, rate=DEFAULT_RATE if rate is None else float(rate),
                                     motion_gate=bool(motion_gate))
        self.settings = settings
        models = load_models(detector, reid, device=device, precision=precision, detect_size=detect_size,
                             threads=threads)
        self.models = models
        self.detector, self.embedder = models.detector, models.embedder
        self.detector_path: Path = Path(self.detector.path)
        self.float_detector_path: Path = models.float_detector_path
        self.precision: str = self.detector.precision
        self.reid_path: Path = Path(self.embedder.path)
        self.device = device
        self.workers = None if workers is None else int(workers)
        self.providers: dict[str, str] = models.providers
        self.notes: tuple[str, ...] = models.notes
        self._tracker = (tracker, dict(models.tracker_kwargs))
        make_tracker(tracker, **self._tracker[1])  # an unknown name or setting fails here, not mid-index
        self.tracker_factory: Callable[[], Tracker] = functools.partial(make_tracker, tracker,
                                                                        **self._tracker[1])
        self.reid_name, self.reid_sha256 = model_identity(self.embedder)
        _, self.settings_key = run_settings(self.detector, self.embedder, self.tracker_factory(),
                                            self.settings)
        _, self.photo_settings_key = photo_run_settings(self.detector, self.embedder, self.settings,
                                                        max_side=PHOTO_MAX_SIDE)
        super().__init__(Store(db_path))
        self.db_path = self.store.path
        self.faiss_index = EmbeddingIndex(self.store, self.reid_sha256, self.embedder.dim, kind=index_kind)

    @functools.cached_property
    def photo_detector(self) -> YoloOnnxDetector:
        """The detector of query photos: always the float32 model (loaded on first use).

        A photo is one image, where speed does not matter; the int8 model's slightly shifted
        boxes would decide differently whether a tight crop is embedded whole (measured: 12 of 14
        vtest crops taken whole in int8, 14 of 14 in float32).
        """
        return self.models.float_detector()

    # -- indexing ---------------------------------------------------------------------------------

    def index(self, video: str | Path, *, cancel: threading.Event | None = None) -> Iterator[IndexProgress]:
        """Index one video file, image folder or image (resumable; a finished one yields one skipped item).

        A folder of images is a sequence or photos as :attr:`images` says (the first ``note`` says which).

        Args:
            video: Video file, folder of images, or image file.
            cancel: Set it to stop after the current frame; the next call resumes.

        Yields:
            Progress items; the last has ``done=True`` (or ``skipped=True``). Before it is yielded the
            video's tracks are linked into people (``core.linking``), when they are not yet.

        Raises:
            VideoError: The file is not a readable video or image folder.
        """
        for item in index_media(video, store=self.store, detector=self.detector, embedder=self.embedder,
                                tracker_factory=self.tracker_factory, settings=self.settings,
                                images=self.image_kinds.get(str(Path(video).resolve()), self.images),
                                cancel=cancel):
            if item.done or item.skipped:
                self._link_video(video)
            yield item

    def read_as(self, folder: str | Path, kind: str) -> None:
        """Index ``folder`` as ``kind`` (``"sequence"``, ``"photos"``, ``"auto"``), not as ``images`` says."""
        if kind not in IMAGE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(IMAGE_KINDS)}, got {kind!r}")
        self.image_kinds[str(Path(folder).resolve())] = kind

    def _link_video(self, video: str | Path) -> None:
        """Link the tracks of ``video``'s finished run with this engine's settings (when not linked yet)."""
        record = self.find_video(video)
        run = self.store.find_run(record.id, self._key_of(record))
        if run is not None:
            self._link([run.id])

    def _link(self, run_ids: Sequence[int]) -> None:
        """Link the finished runs among ``run_ids`` that have no people yet (or older ones)."""
        for run_id in needs_linking(self.store, run_ids):
            link_run(self.store, run_id)

    def index_many(self, videos: Sequence[str | Path], *, cancel: threading.Event | None = None,
                   workers: int | None = None) -> Iterator[IndexEvent]:
        """Index several videos (what the CLI's ``index`` and the GUI's Search run).

        With more than one worker (``workers``, else the engine's, else
        :func:`core.parallel.default_workers`) the videos are indexed in that many worker
        processes at once, each with its own models; the events of different videos then
        interleave (each carries its path). A video that fails (unreadable, busy elsewhere) does
        not stop the others: its outcome says why. A cancel stops every video after its current
        frame and starts no further one; the next call resumes every video where it stopped
        (finished ones are skipped at once), with any number of workers. A finished video's tracks
        are linked into people before its outcome is yielded.

        Args:
            videos: Video files or image folders (see ``core.video.expand_sources`` for folders).
            cancel: Set it to stop after the current frame.
            workers: Worker processes for this call (1: in this process).

        Yields:
            For each video: an :class:`~core.types.IndexStarted`, its
            :class:`~core.types.IndexProgress` items, then an :class:`~core.types.IndexOutcome`.
        """
        paths = [str(v) for v in videos]
        count = workers or self.workers or default_workers(len(paths))
        for event in index_videos(paths, workers=count, spec=self.worker_spec,
                                  index=lambda path: self.index(path, cancel=cancel), cancel=cancel):
            if isinstance(event, IndexOutcome) and event.status in ("done", "skipped"):
                self._link_video(event.video_path)  # a worker's video (in this process: already linked)
            yield event

    def worker_spec(self, threads: int) -> WorkerSpec:
        """What a worker process needs to index with this engine's models and settings."""
        tracker, kwargs = self._tracker
        preprocess = self.models.reid_preprocess
        return WorkerSpec(db_path=str(self.db_path), detector=str(self.detector_path),
                          person_classes=tuple(self.detector.person_classes), reid=str(self.reid_path),
                          reid_preprocess=preprocess, device=self.device, tracker=tracker,
                          tracker_kwargs=kwargs, settings=self.settings, threads=int(threads),
                          images=self.images, image_kinds=dict(self.image_kinds),
                          detect_size=self.models.detect_size)

    # -- library, with this engine's run rule --------------------------------------------------

    def run_for(self, video: VideoRecord, *, settings_key: str | None = None,
                reid_sha256: str | None = None) -> RunChoice:
        """The run of ``video`` that counts for this engine's models and settings (``core.library``).

        ``settings_key`` / ``reid_sha256`` default to the engine's own.
        """
        return super().run_for(video, settings_key=settings_key or self._key_of(video),
                               reid_sha256=reid_sha256 or self.reid_sha256)

    def _key_of(self, video: VideoRecord) -> str:
        """The settings key of this engine's runs of ``video`` (photo collections have their own)."""
        return self.photo_settings_key if video.kind == "photos" else self.settings_key

    def videos(self, *, settings_key: str | None = None) -> list[VideoInfo]:
        """Every video of the library, in the order added, as this engine's settings see it."""
        return [self.video_info(v, settings_key=settings_key or self._key_of(v))
                for v in self.store.list_videos()]

    # -- searching --------------------------------------------------------------------------------

    def _targets(self, videos: Sequence[VideoRef] | VideoRef | None) -> tuple[list[search_mod.SearchTarget],
                                                                               list[str]]:
        """The runs to search for ``videos`` with this ReID model (``Library.search_targets``), linked."""
        targets, notes = self.search_targets(videos, reid_name=self.reid_path.name)
        self._link([t.run_id for t in targets])
        return targets, notes

    @staticmethod
    def _check(threshold: float | None, top_k: int) -> float:
        threshold = search_mod.DEFAULT_THRESHOLD if threshold is None else float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {threshold}")
        if int(top_k) < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        return threshold

    def search(self, photos: Sequence[str | Path | np.ndarray], *, videos: Sequence[VideoRef] | None = None,
               threshold: float | None = None, top_k: int = 200) -> SearchResult:
        """Search videos for the person in the photos and store the search.

        Args:
            photos: Image files or BGR arrays: tight person crops or whole pictures (the largest
                person is used; see ``core.search``). Several photos of one person are combined.
            videos: Videos to search (paths or ids); ``None``: every indexed video.
            threshold: Similarity threshold for :meth:`SearchResult.above` (default
                ``core.search.DEFAULT_THRESHOLD``); every candidate is kept anyway.
            top_k: Most people returned.

        Returns:
            The stored search's result: one hit per person (linked tracks together). In a
            read-only library: the result, not stored, with ``query_id`` ``None`` and a note saying so.

        Raises:
            QueryError: A photo is unreadable or shows no person.
            StoreError: A video is unknown or not indexed with this ReID model, or nothing is indexed.
            ValueError: ``threshold`` outside ``[0, 1]`` or ``top_k`` < 1.
        """
        t0 = time.perf_counter()
        threshold = self._check(threshold, top_k)
        if isinstance(photos, (str, Path, np.ndarray)):
            photos = [photos]
        targets, notes = self._targets(videos)
        raw = search_mod.search(photos, store=self.store, index=self.faiss_index,
                                detector=self.photo_detector,
                                embedder=self.embedder, targets=targets, top_k=int(top_k))
        notes = [p.note for p in raw.photos] + notes
        labels = [p.label for p in raw.photos]
        query_id: int | None = None
        if self.store.writable:
            query_id = self.store.save_query(photos=labels, video_ids=[t.video.id for t in targets],
                                             threshold=threshold, reid_sha256=self.reid_sha256,
                                             hits=raw.hits, notes=notes, vector=raw.query)
        else:
            notes.append(f"this search was not saved: the library {self.db_path} is read-only "
                         f"({self.store.read_only_reason}).")
        return SearchResult(query_id=query_id, hits=tuple(h for _, h in raw.hits), threshold=threshold,
                            notes=tuple(notes), elapsed_s=time.perf_counter() - t0, photos=tuple(labels))

    def check_photo(self, photo: str | Path | np.ndarray) -> PhotoCheck:
        """Look for the person in a query photo as a search will (:func:`core.query_photos.check_photo`).

        Raises:
            QueryError: One sentence naming the photo (``"<array 0>"`` for an array) and what is wrong.
        """
        return check_photo(photo, self.photo_detector)

    def search_like(self, video: VideoRef, track_id: int, *, videos: Sequence[VideoRef] | None = None,
                    threshold: float | None = None, top_k: int = 200) -> SearchResult:
        """Find similar: search for the person of a hit, whose stored embeddings become the query.

        The person is every track linked with ``track_id`` (a hit's tracks); their embeddings are
        averaged into the query, and they are marked confirmed for it (they are the person), so
        they come first and the person's other appearances follow.

        Args:
            video: The hit's video (path or id).
            track_id: One of the hit's tracks (its tracker id).
            videos: Videos to search; ``None``: every video indexed with this ReID model.
            threshold: As for :meth:`search`.
            top_k: Most people returned.

        Raises:
            StoreError: Unknown video or track, or a video indexed with another ReID model.
            ValueError: Bad ``threshold`` or ``top_k``.
        """
        t0 = time.perf_counter()
        threshold = self._check(threshold, top_k)
        record = self.find_video(video)
        run = self.run_for(record).run
        if run is None or run.reid_sha256 != self.reid_sha256:
            raise StoreError(f"{record.path}: not indexed with the ReID model {self.reid_path.name}; "
                             f"index it first (python -m core index {record.path}).")
        self._link([run.id])
        track = next((t for t in self.store.tracks(run.id) if t.track_id == int(track_id)), None)
        if track is None:
            raise StoreError(f"{record.path} has no track {track_id} (python -m core show QUERY_ID lists "
                             "the tracks of each hit).")
        person = self.store.people_of([track.pk]).get(track.pk)
        members = self.store.person_tracks([person])[person] if person else [track.pk]
        stored = self.store.track_vectors(members)
        query = centroids([np.vstack([stored[pk] for pk in members if pk in stored])])[0]
        targets, notes = self._targets(videos)
        marks = dict.fromkeys(members, "confirmed")
        found = search_mod.search_runs(self.store, self.faiss_index, query, targets, top_k=int(top_k),
                                       marks=marks)
        label = f"<similar to {Path(record.path).name} track {int(track_id)}>"
        n = len(members)
        notes = [f"{label}: the query is the {plural_tracks(n)} of that person, marked as confirmed.", *notes]
        query_id: int | None = None
        if self.store.writable:
            query_id = self.store.save_query(photos=[label], video_ids=[t.video.id for t in targets],
                                             threshold=threshold, reid_sha256=self.reid_sha256,
                                             hits=found.hits + found.rejected, notes=notes, vector=query,
                                             like_tracks=members)
            self.store.set_marks(query_id, marks)
        else:
            notes.append(f"this search was not saved: the library {self.db_path} is read-only "
                         f"({self.store.read_only_reason}).")
        return SearchResult(query_id=query_id, hits=tuple(h for _, h in found.hits), threshold=threshold,
                            notes=tuple(notes), elapsed_s=time.perf_counter() - t0, photos=(label,))

    def refine(self, query_id: int, *, confirm: Sequence[HitRef] = (), reject: Sequence[HitRef] = (),
               clear: Sequence[HitRef] = (), top_k: int = 200) -> SearchResult:
        """Mark hits of a saved search as the person (``confirm``) or not (``reject``), and re-rank at once.

        Confirmed hits join the query (their embeddings are averaged in) and stay on top; rejected
        ones push it away and never come back for this query (``core.ranking``). The marks and
        the new ranking are stored with the query, so reopening it shows them.

        Args:
            query_id: A saved search.
            confirm: Hits that are the person.
            reject: Hits that are not.
            clear: Hits whose mark is taken back.
            top_k: Most unmarked people returned.

        Raises:
            StoreError: No such query, a hit that is not one of its hits, a search saved before
                marks existed, or one made with another ReID model.
        """
        t0 = time.perf_counter()
        record = self.store.load_query(int(query_id))
        summary = record.summary
        if record.vector is None:
            raise StoreError(f"query {query_id} was saved by an older version without its query vector; "
                             "search again to confirm or reject its hits.")
        if summary.reid_sha256 != self.reid_sha256:
            raise StoreError(f"query {query_id} was made with another ReID model; open the library with that "
                             "model to refine it.")
        changes: dict[int, str | None] = {}
        for refs, mark in ((clear, None), (confirm, "confirmed"), (reject, "rejected")):
            for ref in refs:
                changes.update(dict.fromkeys(self.hit_tracks(record, ref), mark))
        self.store.set_marks(record.id, changes)
        marks = self.store.marks(record.id)
        targets, notes = self._targets(list(summary.video_ids))
        found = search_mod.search_runs(self.store, self.faiss_index, record.vector, targets, top_k=int(top_k),
                                       marks=marks)
        self.store.replace_hits(record.id, found.hits + found.rejected)
        return SearchResult(query_id=record.id, hits=tuple(h for _, h in found.hits),
                            threshold=summary.threshold,
                            notes=summary.notes, elapsed_s=time.perf_counter() - t0, photos=summary.photos,
                            created=summary.created, rejected=tuple(h for _, h in found.rejected))

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
        return self.boxes_between(video, frame_index, frame_index).at(frame_index)

    def boxes_between(self, video: VideoRef, first: int, last: int) -> FrameBoxes:
        """The stored boxes of frames ``first..last``, read at once (a player's span, see ``core.boxes``).

        Args:
            video: Path or id of an indexed video.
            first: First frame.
            last: Last frame (>= ``first``).

        Returns:
            A :class:`~core.boxes.FrameBoxes` whose ``at(frame)`` gives the boxes of each frame of the span.

        Raises:
            StoreError: The video is unknown or has no usable run.
        """
        record = self.find_video(video)
        run = self.run_for(record).run
        if run is None:
            raise StoreError(f"{record.path}: not indexed with the ReID model {self.reid_path.name}.")
        stride = max(int(run.settings.get("stride", 1)), 1)
        first, last = int(first), max(int(first), int(last))
        seen = self.store.sightings_in_frame(run.id, max(first - stride + 1, 0), last)
        return FrameBoxes(video_id=record.id, run_id=run.id, first=first, last=last, stride=stride,
                          frames=seen.frames, track_ids=seen.track_ids, boxes=seen.boxes, scores=seen.scores)

    def __enter__(self) -> Engine:
        return self

    def __repr__(self) -> str:
        sampling = (f"stride={self.settings.stride}" if self.settings.stride is not None
                    else f"rate={self.settings.rate:g}/s")
        return (f"Engine(db={str(self.db_path)!r}, detector={self.detector_path.name!r} ({self.precision}), "
                f"reid={self.reid_path.name!r}, {sampling}, providers={self.providers})")
