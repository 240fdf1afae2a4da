"""Searching and saving hits: from the model's videos and photos to a result in the model.

:class:`SearchControl` checks that a search can run (say why not, in one sentence),
starts index + search on the background jobs (waiting for the models when they are
still loading), shows its progress, puts the ``SearchResult`` into the window's model,
and writes the hits shown to CSV/JSON or as images. It also runs the searches the user
steers: a hit marked as the person or not (``Engine.refine``, the same query re-ranked)
and "find similar" from a hit (``Engine.search_like``, a new query over every video).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot

from core import export
from core.errors import ReidSearchError
from GUI.background import ENGINE_JOB, FEEDBACK_JOB, INDEX_JOB, SAVE_JOB, Background
from GUI.progress import ProgressDisplay
from GUI.window_model import WindowModel
from GUI.workers import Cancelled, ExportDone, Status

if TYPE_CHECKING:
    from core.engine import SearchResult
    from core.types import Hit


class SearchControl(QObject):
    """Runs searches and saves their hits (see the module notes).

    Args:
        model: The window's model: scope, photos and threshold in, result out.
        jobs: The engine and its jobs.
        progress: The status bar's progress widgets.
        start_engine: Loads the models (the search waits for them).
        parent: Owner.

    Signals:
        message(str, str): ``(level, text)`` to tell the user.
        status(str): A passing status-bar line.
        progressShown(object): A progress item was shown (``IndexProgress`` or ``Status``).
        searchFinished(object): A ``SearchResult`` arrived and is in the model.
    """

    message = Signal(str, str)
    status = Signal(str)
    progressShown = Signal(object)
    searchFinished = Signal(object)

    def __init__(self, model: WindowModel, jobs: Background, progress: ProgressDisplay,
                 start_engine: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.jobs = jobs
        self.progress = progress
        self._start_engine = start_engine
        jobs.progress.connect(self._on_progress)
        jobs.searchDone.connect(self._on_search_result)
        jobs.imagesSaved.connect(self._on_images_saved)
        jobs.jobFinished.connect(self._job_done)

    # ------------------------------------------------------------------ search
    def start(self, index_only: bool = False) -> bool:
        """Index the videos in scope if needed, then search the query photos in them (worker thread).

        Returns:
            True if the work started (or will start once the models are loaded).
        """
        if self.jobs.busy(INDEX_JOB):
            self.message.emit("info", "A search is already running.")
            return False
        videos = self.model.scope
        if not videos:
            self.message.emit("error", "Open a video first (File > Open video...), or try the sample.")
            return False
        photos = list(self.model.photos)
        if not index_only and not photos:
            self.message.emit("error", "Add a photo of the person first: Add photo..., drop an image on the "
                                       "query panel, or drag a rectangle around them on the video.")
            return False
        if self.jobs.engine is None:
            self.jobs.when_ready(lambda: self.start(index_only))
            if self.jobs.busy(ENGINE_JOB):
                self.status.emit("Loading models; the search starts as soon as they are ready.")
            else:
                self._start_engine()
            return True
        self.progress.start("Starting...")
        self.jobs.index_and_search(videos, None if index_only else photos, self.model.threshold)
        return True

    def mark(self, hit: Hit, mark: str) -> bool:
        """Mark a hit of the search shown (``"confirmed"``, ``"rejected"``, ``""``: clear) and re-rank it."""
        result = self.model.result
        if result is None or self.jobs.engine is None:
            return False
        if not self.jobs.refine(result.query_id, hit, mark):
            self.message.emit("info", "Wait for the running search to end, then mark the hit again.")
            return False
        self.status.emit("Re-ranking with your mark...")
        return True

    def find_similar(self, hit: Hit) -> bool:
        """Search every video of the library for the person of ``hit`` (their appearance is the query)."""
        if self.jobs.engine is None:
            self.message.emit("error", "The models are not loaded yet; try again in a moment.")
            return False
        if not self.jobs.find_similar(hit):
            self.message.emit("info", "Wait for the running search to end, then ask again.")
            return False
        self.status.emit(f"Finding people like track {hit.track_id}...")
        return True

    def reopen(self, query_id: int) -> SearchResult | None:
        """A stored search with its hits (``None``, and a message saying why, if it cannot be loaded)."""
        engine = self.jobs.engine
        if engine is None:
            self.message.emit("error", "The models are not loaded yet; try again in a moment.")
            return None
        try:
            result = engine.load_query(query_id)
        except ReidSearchError as exc:
            self.message.emit("error", str(exc))
            return None
        self.message.emit("info", f"Query #{query_id}: {len(result.hits)} candidate hits loaded.")
        return result

    def cancel(self) -> None:
        """Stop indexing (and image saving); indexing resumes later."""
        if self.jobs.busy(INDEX_JOB) or self.jobs.busy(SAVE_JOB):
            self.progress.cancelling()
        self.jobs.cancel(INDEX_JOB, SAVE_JOB)

    @Slot(object)
    def _on_progress(self, item: object) -> None:
        self.progress.show(item)
        self.progressShown.emit(item)

    @Slot(object)
    def _on_search_result(self, outcome: SearchResult | Status | Cancelled) -> None:
        if isinstance(outcome, Cancelled):
            self.message.emit("info", f"Stopped {outcome.what}. Indexing resumes where it stopped next time.")
            return
        if isinstance(outcome, Status):
            self.message.emit("info", outcome.text)
            return
        previous = self.model.result
        refined = previous is not None and previous.query_id == outcome.query_id
        self.model.result = outcome
        if not refined:
            for note in outcome.notes:
                self.message.emit("info", note)
        shown = len(self.model.visible_hits)
        what = "Re-ranked" if refined else "Search done"
        sentence = outcome.explain(self.model.threshold)
        if shown:
            self.message.emit("info", f"{what} in {outcome.elapsed_s:.1f} s: {sentence} Click a hit to see "
                                      "the person.")
        else:  # nobody to click: the sentence says the best score found and what to do
            self.message.emit("info", f"{what} in {outcome.elapsed_s:.1f} s. {sentence}")
        self.searchFinished.emit(outcome)

    @Slot(str)
    def _job_done(self, name: str) -> None:
        if name in (INDEX_JOB, SAVE_JOB, FEEDBACK_JOB):
            self.progress.set_visible(self.jobs.busy(INDEX_JOB) or self.jobs.busy(SAVE_JOB)
                                      or self.jobs.busy(FEEDBACK_JOB))

    # ------------------------------------------------------------------ hits out
    def export_hits(self, path: str | Path) -> Path | None:
        """Write the hits shown (at or above the threshold) to ``path`` (``.csv`` or ``.json``)."""
        hits = self.model.visible_hits
        try:
            out = export.write_hits(hits, path)
        except ReidSearchError as exc:  # the file cannot be written: the sentence names it and why
            self.message.emit("error", str(exc))
            return None
        except ValueError as exc:  # a name with another ending
            self.message.emit("error", f"Could not export the hits: {exc}")
            return None
        self.message.emit("info", f"Exported {len(hits)} hits to {out}.")
        return out

    def save_images(self, folder: str | Path) -> bool:
        """Save each shown hit's crop and annotated best frame as PNGs in ``folder`` (worker thread)."""
        hits = self.model.visible_hits
        if not hits:
            self.message.emit("error", "There are no hits to save: run a search first "
                                       "(or lower the threshold).")
            return False
        if self.jobs.busy(SAVE_JOB):
            return False
        self.progress.start()
        return self.jobs.save_images(hits, folder)

    @Slot(object)
    def _on_images_saved(self, outcome: ExportDone | Cancelled) -> None:
        if isinstance(outcome, ExportDone):
            self.message.emit("info", f"Saved {outcome.files} images to {outcome.folder}.")
        elif isinstance(outcome, Cancelled):
            self.message.emit("info", "Stopped saving images.")
