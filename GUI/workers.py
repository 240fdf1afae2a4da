"""Background work: engine loading, indexing + search, thumbnails, image export.

Every job is a :class:`Job` (a ``QObject``) moved to its own ``QThread``. It
emits ``progress`` items, one ``result`` (unless cancelled or failed), ``error``
with a readable sentence on failure and **always** ``finished`` (``try/finally``).
Only immutable things cross the thread boundary: ``IndexProgress``,
``SearchResult``, :class:`Status`, :class:`Thumbnail` (a ``QImage``, never a
``QPixmap``) and :class:`Cancelled`.

The job bodies are plain functions taking the job (for ``progress.emit`` and
``cancel_event``) and returning the result, so they hold no Qt widgets and no
pipeline logic: everything comes from ``core.engine.Engine`` and ``core.video``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot
from PySide6.QtGui import QImage

from core.errors import DamagedLibraryError, ReidSearchError
from core.library import QueryInfo, SearchResult, VideoInfo
from core.text import plural
from core.types import Hit, IndexOutcome, IndexStarted

if TYPE_CHECKING:
    from core.engine import Engine
    from core.repair import RepairReport
    from core.video import VideoSource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Status:
    """A stage message from a job, e.g. ``"Searching 2 videos..."``."""

    text: str


@dataclass(frozen=True)
class Cancelled:
    """Result of a job stopped by the user.

    Attributes:
        what: What was stopped, for the status bar.
    """

    what: str


@dataclass(frozen=True)
class Thumbnail:
    """The best-frame crop of one hit, made off the GUI thread.

    Attributes:
        key: ``(video_path, track_id, best_frame)`` identifying the hit.
        image: The crop as an RGB ``QImage`` that owns its pixels.
        photo: A photo hit's whole photo, small, with the person boxed (``None`` for a video hit).
    """

    key: tuple[str, int, int]
    image: QImage
    photo: QImage | None = None


@dataclass(frozen=True)
class ExportDone:
    """Result of saving hit images: the folder and how many files were written."""

    folder: str
    files: int


def hit_key(hit: Hit) -> tuple[str, int, int]:
    """Identify a hit across results: ``(video_path, track_id, best_frame)``."""
    return (str(hit.video_path), int(hit.track_id), int(hit.best_frame))


def bgr_to_qimage(image: np.ndarray) -> QImage:
    """Copy an ``(H, W, 3)`` uint8 BGR array into a ``QImage`` that owns its pixels.

    Safe to call on any thread (``QImage`` is not a GUI-thread-only class).
    """
    arr = np.ascontiguousarray(image)
    h, w = arr.shape[:2]
    return QImage(arr.data, w, h, int(arr.strides[0]), QImage.Format.Format_BGR888).copy()


def crop_box(image: np.ndarray, box: Sequence[float], margin: float = 0.08) -> np.ndarray:
    """Cut ``box`` (x1, y1, x2, y2 pixels) out of an ``(H, W, 3)`` image with a small margin.

    Returns:
        The ``(h, w, 3)`` crop (at least 1x1 pixel), a view into ``image``.
    """
    h, w = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    ix1 = int(max(0, min(w - 1, np.floor(x1 - mx))))
    iy1 = int(max(0, min(h - 1, np.floor(y1 - my))))
    ix2 = int(max(ix1 + 1, min(w, np.ceil(x2 + mx))))
    iy2 = int(max(iy1 + 1, min(h, np.ceil(y2 + my))))
    return image[iy1:iy2, ix1:ix2]


class Job(QObject):
    """A unit of background work run by :class:`JobRunner` on its own ``QThread``.

    Args:
        name: Short name for logs and the status bar (``"index+search"``).
        body: ``body(job) -> result``; it may call ``job.progress.emit(item)`` and
            should poll ``job.cancel_event``.
    """

    progress = Signal(object)
    result = Signal(object)
    error = Signal(str)
    finished = Signal()

    def __init__(self, name: str, body: Callable[[Job], Any]) -> None:
        super().__init__()
        self.name = name
        self.cancel_event = threading.Event()
        self.done = False
        self._body = body

    def cancel(self) -> None:
        """Ask the job to stop as soon as it can (thread-safe)."""
        self.cancel_event.set()

    @Slot()
    def run(self) -> None:
        """Run the body; emit ``result`` or ``error``, then always ``finished``."""
        try:
            outcome = self._body(self)
            self.result.emit(outcome)
        except ReidSearchError as exc:
            self.error.emit(str(exc))
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            self.error.emit(f"{self.name}: {exc.strerror or exc}{where}")
        except MemoryError:
            self.error.emit(f"{self.name}: ran out of memory.")
        except Exception as exc:  # noqa: BLE001 - a worker must never take the app down
            log.error("%s failed:\n%s", self.name, traceback.format_exc())
            self.error.emit(f"{self.name} failed unexpectedly: {type(exc).__name__}: {exc}")
        finally:
            self._body = None  # drop what the body holds (an engine, hits) as soon as the work ends
            self.done = True
            self.finished.emit()


class JobRunner(QObject):
    """Starts jobs on their own threads and keeps them alive until they finish.

    The runner lives on the GUI thread. ``stop_all`` cancels every job and waits
    for the threads, which is what closing the window does.
    """

    jobsChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: dict[Job, QThread] = {}

    def start(self, job: Job) -> Job:
        """Move ``job`` to a new thread and start it; returns the job for chaining."""
        thread = QThread()
        thread.setObjectName(f"job:{job.name}")
        job.moveToThread(thread)
        thread.started.connect(job.run)
        job.finished.connect(thread.quit)
        thread.finished.connect(self._reap)
        self._running[job] = thread
        thread.start()
        self.jobsChanged.emit()
        return job

    @Slot()
    def _reap(self) -> None:
        for job, thread in list(self._running.items()):
            if thread.isFinished():
                # Not job.deleteLater(): the job lives in a thread whose event loop has ended, so the
                # deferred delete would never run. Python owns the job; dropping it deletes it.
                del self._running[job]
                thread.deleteLater()
        self.jobsChanged.emit()

    def running(self, name: str | None = None) -> list[Job]:
        """Jobs that have not finished, optionally only those called ``name``."""
        return [j for j, t in self._running.items()
                if not j.done and not t.isFinished() and (name is None or j.name == name)]

    def busy(self, name: str | None = None) -> bool:
        """Whether a job (called ``name``) is running."""
        return bool(self.running(name))

    def cancel(self, name: str | None = None) -> None:
        """Ask running jobs (called ``name``) to stop."""
        for job in self.running(name):
            job.cancel()

    def stop_all(self, timeout_ms: int = 15000) -> bool:
        """Cancel every job and wait for the threads to end.

        Returns:
            True if every thread ended within ``timeout_ms``.
        """
        for job in list(self._running):
            job.cancel()
        ok = True
        for thread in list(self._running.values()):
            thread.quit()
            ok = thread.wait(timeout_ms) and ok
        self._reap()
        return ok


# ----------------------------------------------------------------------------- job bodies


@dataclass(frozen=True)
class LibraryDamaged:
    """Result of loading the engine when the library file is damaged (the sentence offers Repair)."""

    text: str


def load_engine_body(factory: Callable[[], Engine]) -> Callable[[Job], Engine | LibraryDamaged]:
    """Job body that builds an engine (loads the ONNX models) off the GUI thread."""

    def body(job: Job) -> Engine | LibraryDamaged:
        job.progress.emit(Status("Loading models..."))
        try:
            return factory()
        except DamagedLibraryError as err:
            return LibraryDamaged(str(err))

    return body


def repair_body(db: Path) -> Callable[[Job], RepairReport]:
    """Job body that repairs a damaged library (``core.repair``), reporting each step as a Status."""

    def body(job: Job) -> RepairReport:
        from core.repair import repair_library

        job.progress.emit(Status(f"Repairing {db.name}..."))
        return repair_library(db, progress=lambda line: job.progress.emit(Status(f"Repairing: {line}")))

    return body


def index_and_search_body(
    engine: Engine,
    videos: Sequence[str],
    photos: Sequence[str] | None,
    threshold: float | None,
) -> Callable[[Job], SearchResult | Status | Cancelled]:
    """Job body: index every video (``Engine.index_many``: resumable, skipped when done), then search.

    Args:
        engine: The engine.
        videos: Video paths to index and search.
        photos: Query photo paths; ``None`` to index only.
        threshold: Threshold stored with the search (``None``: engine default).

    Returns:
        A body returning the ``SearchResult``, a :class:`Status` (index only) or
        :class:`Cancelled`; a video that fails to index ends the job with its error.
    """
    videos = tuple(str(v) for v in videos)
    photos = None if photos is None else tuple(str(p) for p in photos)

    def body(job: Job) -> SearchResult | Status | Cancelled:
        for event in engine.index_many(videos, cancel=job.cancel_event):
            if isinstance(event, IndexStarted):
                label = f"({event.number}/{event.count}) " if event.count > 1 else ""
                job.progress.emit(Status(f"{label}Opening {Path(event.video_path).name}..."))
            elif isinstance(event, IndexOutcome):
                if event.status == "failed":
                    raise ReidSearchError(str(event.message))
                if event.status == "cancelled":
                    return Cancelled(f"indexing {Path(event.video_path).name}")
            else:
                job.progress.emit(event)
        if photos is None:
            return Status(f"Indexed {plural(len(videos), 'video')}.")
        if job.cancel_event.is_set():
            return Cancelled("search")
        where = plural(len(videos), "video") if len(videos) > 1 else Path(videos[0]).name
        job.progress.emit(Status(f"Searching {where}..."))
        return engine.search(list(photos), videos=list(videos), threshold=threshold)

    return body


@dataclass(frozen=True)
class LibrarySnapshot:
    """The library as read by a worker: ``VideoInfo`` items and each video's ``QueryInfo`` items.

    Attributes:
        videos: Every video of the library, in the order added.
        queries: ``((video_id, (QueryInfo, ...)), ...)``, newest query first.
    """

    videos: tuple[VideoInfo, ...]
    queries: tuple[tuple[int, tuple[QueryInfo, ...]], ...]

    def queries_by_video(self) -> dict[int, tuple[QueryInfo, ...]]:
        """The queries as a dict keyed by video id."""
        return dict(self.queries)


def library_body(engine: Engine) -> Callable[[Job], LibrarySnapshot]:
    """Job body reading the library (videos and their past queries) off the GUI thread."""

    def body(job: Job) -> LibrarySnapshot:
        videos = tuple(engine.videos())
        return LibrarySnapshot(videos, tuple((v.id, tuple(engine.queries(v.id))) for v in videos))

    return body


def refine_body(engine: Engine, query_id: int, hit: Hit, mark: str) -> Callable[[Job], SearchResult]:
    """Job body marking one hit of a stored search and re-ranking it (``Engine.refine``).

    ``mark`` is ``"confirmed"``, ``"rejected"`` or ``""`` (take the mark back).
    """
    field = {"confirmed": "confirm", "rejected": "reject", "": "clear"}[mark]

    def body(job: Job) -> SearchResult:
        job.progress.emit(Status("Re-ranking..."))
        return engine.refine(query_id, **{field: [hit]})

    return body


def similar_body(engine: Engine, hit: Hit) -> Callable[[Job], SearchResult]:
    """Job body searching every video of the library for the person of a hit (``Engine.search_like``)."""

    def body(job: Job) -> SearchResult:
        job.progress.emit(Status(f"Finding people like track {hit.track_id}..."))
        return engine.search_like(hit.video_id, hit.track_id)

    return body


def load_query_body(engine: Engine, query_id: int) -> Callable[[Job], SearchResult]:
    """Job body reloading a stored search (``Engine.load_query``)."""

    def body(job: Job) -> SearchResult:
        job.progress.emit(Status(f"Loading query #{query_id}..."))
        return engine.load_query(query_id)

    return body


def _read_frames(hits: Sequence[Hit], job: Job, open_source: Callable[[Hit], VideoSource]):
    """Yield ``(hit, frame_image)`` reading each hit's best frame (or photo), one source per video."""
    by_video: dict[tuple[str, bool], list[Hit]] = {}
    for hit in hits:
        by_video.setdefault((str(hit.video_path), bool(hit.photo_path)), []).append(hit)
    for video_hits in by_video.values():
        try:
            source = open_source(video_hits[0])
        except ReidSearchError as exc:
            log.warning("thumbnails: %s", exc)
            continue
        try:
            # Read in frame order: sequential reads are much cheaper than seeks.
            for hit in sorted(video_hits, key=lambda h: h.best_frame):
                if job.cancel_event.is_set():
                    return
                try:
                    frame = source.read(int(hit.best_frame))
                except ReidSearchError as exc:
                    log.warning("thumbnails: %s", exc)
                    continue
                yield hit, frame.image
        finally:
            source.close()


def thumbnails_body(hits: Sequence[Hit], open_source: Callable[[Hit], VideoSource],
                    height: int = 128) -> Callable[[Job], int]:
    """Job body emitting a :class:`Thumbnail` per hit (best-frame crop scaled to ``height``)."""
    hits = tuple(hits)

    def body(job: Job) -> int:
        count = 0
        for hit, image in _read_frames(hits, job, open_source):
            crop = crop_box(image, hit.best_box)
            qimg = bgr_to_qimage(crop)
            if qimg.height() > height:
                qimg = qimg.scaledToHeight(height, Qt.TransformationMode.SmoothTransformation)
            job.progress.emit(Thumbnail(hit_key(hit), qimg, boxed_photo(image, hit.best_box, height)
                                        if hit.photo_path else None))
            count += 1
        return count

    return body


def boxed_photo(image: np.ndarray, box: Sequence[float], height: int) -> QImage:
    """``image`` (BGR) scaled to ``height`` pixels, ``box`` drawn in the selection green, as a ``QImage``."""
    import cv2

    scale = min(1.0, height / max(image.shape[0], 1))
    small = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    x1, y1, x2, y2 = (int(round(v * scale)) for v in box)
    cv2.rectangle(small, (x1, y1), (x2, y2), (118, 230, 0), 2)
    return bgr_to_qimage(small)


def export_images_body(hits: Sequence[Hit], folder: str, open_source: Callable[[Hit], VideoSource],
                       ) -> Callable[[Job], ExportDone | Cancelled]:
    """Job body saving each hit's crop and annotated best frame as PNG files in ``folder``."""
    import cv2

    hits = tuple(hits)

    def body(job: Job) -> ExportDone | Cancelled:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        files = 0
        for hit, image in _read_frames(hits, job, open_source):
            name = Path(hit.photo_path or hit.video_path).stem
            stem = f"{name}_track{hit.track_id:04d}_f{hit.best_frame:06d}_s{hit.score:.3f}"
            crop = crop_box(image, hit.best_box, margin=0.0)
            framed = image.copy()
            x1, y1, x2, y2 = (int(round(v)) for v in hit.best_box)
            cv2.rectangle(framed, (x1, y1), (x2, y2), (118, 230, 0), 3)
            cv2.putText(framed, f"{hit.score:.2f}", (x1, max(14, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.6, (118, 230, 0), 2, cv2.LINE_AA)
            for name, img in ((f"{stem}_crop.png", crop), (f"{stem}_frame.png", framed)):
                if not cv2.imwrite(str(out / name), img):
                    raise OSError(f"{out / name}: could not write the image")
                files += 1
            job.progress.emit(Status(f"Saved {files} images..."))
        if job.cancel_event.is_set():
            return Cancelled("saving images")
        return ExportDone(str(out), files)

    return body

