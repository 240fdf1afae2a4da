"""The engine and the work done with it, off the GUI thread.

:class:`Background` holds the window's ``core.engine.Engine`` (built on a worker
thread, since loading the models takes seconds) and starts the jobs of
:mod:`GUI.workers` with it: index + search, the library listing, thumbnails and
hit images. It re-emits what the jobs report as its own signals, on the GUI
thread, so the window only connects to one object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from core.errors import ReidSearchError
from core.types import Hit, TrackedBoxes
from core.video import open_source
from GUI.settings import AppSettings
from GUI.workers import (
    Job,
    JobRunner,
    LibraryDamaged,
    export_images_body,
    index_and_search_body,
    library_body,
    load_engine_body,
    repair_body,
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
REPAIR_JOB = "repair"


def engine_factory(settings: AppSettings, db: Path) -> Callable[[], Engine]:
    """A function building the engine the settings ask for, on the library ``db``."""

    def build() -> Engine:
        from core.engine import Engine

        db.parent.mkdir(parents=True, exist_ok=True)
        device = {"gpu": "cuda"}.get(settings.device, settings.device)
        return Engine(db, detector=settings.detector, reid=settings.reid, device=device,
                      stride=settings.stride)

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
        searchDone(object): The ``SearchResult``, a ``Status`` (index only) or ``Cancelled``.
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

    def busy(self, name: str | None = None) -> bool:
        """Whether a job (called ``name``) is running."""
        return self.runner.busy(name)

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
        """The tracked people of a library video at a frame (``None``: no engine, not indexed)."""
        engine = self.engine
        if engine is None or video is None or video.status == "not indexed" and video.tracks == 0:
            return None
        try:
            return engine.boxes_at(video.id, frame_index)  # by id: no path lookup on the GUI thread
        except ReidSearchError:
            return None

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

    def thumbnails(self, hits: Sequence[Hit], missing: Callable[[Hit], bool]) -> None:
        """Make the thumbnails of the hits for which ``missing(hit)`` holds (stops the previous run)."""
        self.runner.cancel(THUMB_JOB)
        todo = [h for h in hits if missing(h)]
        if todo:
            job = self._job(THUMB_JOB, thumbnails_body(todo, open_source))
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
        job = self._job(SAVE_JOB, export_images_body(hits, str(folder), open_source))
        job.progress.connect(self.progress)
        job.result.connect(self.imagesSaved)
        job.error.connect(self.error)
        self.runner.start(job)
        return True

    @Slot()
    def _job_done(self) -> None:
        job = self.sender()
        name = job.name if isinstance(job, Job) else ""
        if name == INDEX_JOB or (name == LIBRARY_JOB and self._library_dirty):
            self.refresh_library()
        self.jobFinished.emit(name)

    def close(self) -> None:
        """Stop every job, wait for the threads, and close the engine."""
        self._closing = True
        self.runner.stop_all()
        if self.engine is not None:
            self.engine.close()
            self.engine = None
