"""The engine and the work done with it, off the GUI thread.

:class:`Background` holds the window's ``core.engine.Engine`` (built on a worker
thread, since loading the models takes seconds) and starts the jobs of
:mod:`GUI.workers` with it: index + search, marking hits and finding similar people,
the library listing, thumbnails and hit images; :meth:`Background.run` starts the jobs
other parts of the window define (reopening a search, checking photos, exporting clips).
It re-emits what the jobs report as its own signals, on the GUI thread, so the window only
connects to one object. It also holds the player's readers (:mod:`GUI.readers`): the
frames of the open video and the people's boxes, so no frame is decoded and no box is read
on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from core.types import Hit, TrackedBoxes
from core.video import open_hit_source
from GUI.readers import READER_JOBS, BoxReader, FrameReader
from GUI.settings import AppSettings
from GUI.workers import (
    Job,
    JobRunner,
    LibraryDamaged,
    export_images_body,
    index_and_search_body,
    library_body,
    load_engine_body,
    refine_body,
    repair_body,
    similar_body,
    thumbnails_body,
)

if TYPE_CHECKING:  # core.engine loads ONNX Runtime: imported on the worker that builds the engine
    from core.engine import Engine, VideoInfo

log = logging.getLogger(__name__)

INDEX_JOB = "index+search"
THUMB_JOB = "thumbnails"
ENGINE_JOB = "load models"
SAVE_JOB = "save images"
LIBRARY_JOB = "library"
EVIDENCE_JOB = "export clips"
FEEDBACK_JOB = "refine"
REPAIR_JOB = "repair"
PROGRESS_JOBS = (INDEX_JOB, SAVE_JOB, EVIDENCE_JOB, FEEDBACK_JOB)
"""Jobs whose progress the status bar shows (with Cancel)."""


class _Relay(QObject):
    """Re-emits a job's signals on the thread it lives in (see :meth:`Background.run`)."""

    result = Signal(object)
    progress = Signal(object)
    error = Signal(str)


def engine_factory(settings: AppSettings, db: Path) -> Callable[[], Engine]:
    """A function building the engine the settings ask for, on the library ``db``."""

    def build() -> Engine:
        from core.engine import Engine

        db.parent.mkdir(parents=True, exist_ok=True)
        return Engine(db, detector=settings.detector, reid=settings.reid, **settings.engine_kwargs())

    return build


def describe_engine(engine: Engine) -> tuple[str, str]:
    """``("Running on CPU", details)``: where the models run, for the status bar and its tooltip."""
    kinds = {v.replace("ExecutionProvider", "") for v in engine.providers.values()}
    text = "Running on " + " + ".join(sorted(kinds)) if kinds else "Models loaded"
    details = "\n".join(f"{k}: {v}" for k, v in engine.providers.items())
    return text, f"{details}\nDetector: {engine.detector_path}\nReID: {engine.reid_path}"


class Background(QObject):
    """The engine and its jobs (see the module notes).

    Signals:
        engineLoaded(object): The ``Engine`` is ready (:attr:`engine` is set).
        engineFailed(str): The engine could not be built (readable sentence).
        libraryDamaged(str): The library file is damaged (the sentence offers Repair; see :meth:`repair`).
        repaired(object): A ``core.repair.RepairReport``: the library was repaired (reload the engine).
        libraryLoaded(object): A ``GUI.workers.LibrarySnapshot`` of the database.
        progress(object): ``IndexProgress`` or ``Status`` of index + search or image saving.
        searchDone(object): The ``SearchResult`` (of a search, a re-ranking or a find-similar), a
            ``Status`` (index only) or ``Cancelled``.
        imagesSaved(object): ``ExportDone`` or ``Cancelled``.
        thumbnailReady(object): A ``GUI.workers.Thumbnail``.
        error(str): A job failed (readable sentence).
        jobFinished(str): A job (by name) ended, however it ended.
        jobsChanged(): A job started or its thread ended (what is busy changed).
    """

    engineLoaded = Signal(object)
    engineFailed = Signal(str)
    libraryDamaged = Signal(str)
    repaired = Signal(object)
    libraryLoaded = Signal(object)
    progress = Signal(object)
    searchDone = Signal(object)
    imagesSaved = Signal(object)
    thumbnailReady = Signal(object)
    error = Signal(str)
    jobFinished = Signal(str)
    jobsChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = JobRunner(self)
        self.runner.jobsChanged.connect(self.jobsChanged)
        self.engine: Engine | None = None
        self._pending: list[Callable[[], object]] = []
        self._closing = False
        self._library_dirty = False
        self.frames = FrameReader(self.runner, self)
        self.boxes = BoxReader(self.runner, lambda: self.engine, self)
        self.libraryLoaded.connect(lambda _snapshot: self.boxes.clear())  # a video may be indexed now

    def busy(self, name: str | None = None) -> bool:
        """Whether a job (called ``name``; any but the player's readers) is running."""
        if name is None:
            return any(job.name not in READER_JOBS for job in self.runner.running())
        return self.runner.busy(name)

    def showing_progress(self) -> bool:
        """Whether a job whose progress the status bar shows is running (:data:`PROGRESS_JOBS`)."""
        return any(self.runner.busy(name) for name in PROGRESS_JOBS)

    def run(self, name: str, body: Callable[[Job], object], *,
            result: Callable[[object], object] | None = None,
            progress: Callable[[object], object] | None = None,
            error: Callable[[str], object] | None = None) -> Job:
        """Start a job: ``body(job)`` on its own thread; its result, progress and error go to these slots.

        Errors go to :attr:`error` unless ``error`` is given; :attr:`jobFinished` follows the end.
        """
        job = self._job(name, body)
        # A plain callable connected to the job's signals would run on the job's thread: the relay,
        # a QObject of this (the GUI) thread, receives them queued and calls them here.
        relay = _Relay(self)
        for signal, there, call in ((job.result, relay.result, result),
                                    (job.progress, relay.progress, progress),
                                    (job.error, relay.error, error or self.error.emit)):
            signal.connect(there)
            if call is not None:
                there.connect(call)
        job.finished.connect(relay.deleteLater)
        self.runner.start(job)
        return job

    def cancel(self, *names: str) -> None:
        """Ask the jobs of these names to stop (indexing resumes next time)."""
        for name in names:
            self.runner.cancel(name)

    def _job(self, name: str, body: Callable[[Job], object]) -> Job:
        """A job whose end this object hears of; connect the rest, then ``runner.start`` it."""
        job = Job(name, body)
        job.finished.connect(self._job_done)
        return job

    # ------------------------------------------------------------------ the engine
    def load_engine(self, settings: AppSettings, db: Path) -> bool:
        """(Re)build the engine on a worker thread; False while indexing or loading (nothing done)."""
        if self.busy(INDEX_JOB) or self.busy(ENGINE_JOB):
            return False
        if self.engine is not None:
            self.boxes.clear()
            self.engine.close()
            self.engine = None
        job = self._job(ENGINE_JOB, load_engine_body(engine_factory(settings, db)))
        job.result.connect(self._engine_loaded)
        job.error.connect(self._engine_failed)
        self.runner.start(job)
        return True

    def when_ready(self, call: Callable[[], object]) -> None:
        """Run ``call`` once the engine being loaded is ready (dropped if loading fails)."""
        self._pending.append(call)

    @Slot(object)
    def _engine_loaded(self, engine: Engine | LibraryDamaged) -> None:
        if isinstance(engine, LibraryDamaged):
            self._pending.clear()
            self.libraryDamaged.emit(engine.text)
            return
        if self._closing:
            engine.close()
            return
        self.engine = engine
        self.refresh_library()
        self.engineLoaded.emit(engine)
        pending, self._pending = self._pending, []
        for call in pending:
            call()

    @Slot(str)
    def _engine_failed(self, text: str) -> None:
        self._pending.clear()
        self.engineFailed.emit(text)

    def repair(self, db: Path) -> bool:
        """Repair the damaged library ``db`` on a worker (:attr:`repaired` follows); False if busy."""
        if self.engine is not None or self.busy(REPAIR_JOB) or self.busy(ENGINE_JOB):
            return False
        job = self._job(REPAIR_JOB, repair_body(db))
        job.progress.connect(self.progress)
        job.result.connect(self.repaired)
        job.error.connect(self.error)
        self.runner.start(job)
        return True

    def boxes_at(self, video: VideoInfo | None, frame_index: int) -> TrackedBoxes | None:
        """The tracked people of a library video at a frame, if read already (never waits).

        ``None`` when there is no engine, the video is not indexed, or its boxes are being read
        (then :attr:`boxes` emits ``spanLoaded`` when they are in).
        """
        if self.engine is None or video is None or video.status == "not indexed" and video.tracks == 0:
            return None
        return self.boxes.at(video.id, frame_index)  # by id: no path lookup

    # ------------------------------------------------------------------ jobs
    def refresh_library(self) -> None:
        """Read the library (videos and past queries) on a worker; :attr:`libraryLoaded` follows."""
        if self.engine is None or self._closing:
            return
        if self.busy(LIBRARY_JOB):
            self._library_dirty = True  # read it again when this read ends
            return
        self._library_dirty = False
        job = self._job(LIBRARY_JOB, library_body(self.engine))
        job.result.connect(self.libraryLoaded)
        job.error.connect(self.error)
        self.runner.start(job)

    def index_and_search(self, videos: Sequence[str], photos: Sequence[str] | None, threshold: float) -> None:
        """Index the videos (resumable), then search the photos in them (``None``: index only)."""
        assert self.engine is not None
        job = self._job(INDEX_JOB, index_and_search_body(self.engine, videos, photos, threshold))
        job.progress.connect(self.progress)
        job.result.connect(self.searchDone)
        job.error.connect(self.error)
        self.runner.start(job)

    def refine(self, query_id: int, hit: Hit, mark: str) -> bool:
        """Mark a hit of a stored search (``""``: clear its mark) and re-rank it; False if busy."""
        return self._feedback(refine_body(self.engine, query_id, hit, mark))

    def find_similar(self, hit: Hit) -> bool:
        """Search every video of the library for the person of ``hit``; False if busy."""
        return self._feedback(similar_body(self.engine, hit))

    def _feedback(self, body: Callable[[Job], object]) -> bool:
        if self.engine is None or self.busy(FEEDBACK_JOB) or self.busy(INDEX_JOB):
            return False
        job = self._job(FEEDBACK_JOB, body)
        job.progress.connect(self.progress)
        job.result.connect(self.searchDone)
        job.error.connect(self.error)
        self.runner.start(job)
        return True

    def thumbnails(self, hits: Sequence[Hit], missing: Callable[[Hit], bool]) -> None:
        """Make the thumbnails of the hits for which ``missing(hit)`` holds (stops the previous run)."""
        self.runner.cancel(THUMB_JOB)
        todo = [h for h in hits if missing(h)]
        if todo:
            job = self._job(THUMB_JOB, thumbnails_body(todo, open_hit_source))
            job.progress.connect(self.thumbnailReady)
            job.error.connect(self._thumbnail_failed)
            self.runner.start(job)

    @Slot(str)
    def _thumbnail_failed(self, text: str) -> None:
        log.warning("thumbnails: %s", text)

    def save_images(self, hits: Sequence[Hit], folder: str | Path) -> bool:
        """Save each hit's crop and annotated best frame in ``folder``; False if already saving."""
        if self.busy(SAVE_JOB):
            return False
        job = self._job(SAVE_JOB, export_images_body(hits, str(folder), open_hit_source))
        job.progress.connect(self.progress)
        job.result.connect(self.imagesSaved)
        job.error.connect(self.error)
        self.runner.start(job)
        return True

    @Slot()
    def _job_done(self) -> None:
        job = self.sender()
        name = job.name if isinstance(job, Job) else ""
        if name in (INDEX_JOB, FEEDBACK_JOB) or (name == LIBRARY_JOB and self._library_dirty):
            self.refresh_library()
        self.jobFinished.emit(name)

    def close(self) -> None:
        """Stop every job, wait for the threads, and close the engine."""
        self._closing = True
        self.frames.close()
        self.boxes.close()
        self.runner.stop_all()
        if self.engine is not None:
            self.engine.close()
            self.engine = None
