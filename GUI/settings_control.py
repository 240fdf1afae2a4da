"""Changing the settings: the Settings dialog, applying what it returns, and the offer to index again.

A run belongs to its models and settings (``core.index_settings``): once the Settings dialog
changes the ReID model (a fine-tuned one from ``python -m training.adapt``), the detector,
its precision or the frames indexed, every video indexed before is indexed again the next time
it is searched. This class waits for the library as the new engine sees it, counts those
videos and offers to index them now (Index only, on a worker, with progress and Cancel) rather
than at the next search. It only asks; the indexing is the window's own Index only.
The dialog itself is :mod:`GUI.settings_dialog`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QMessageBox

from core.text import plural
from GUI.background import INDEX_JOB
from GUI.dialogs import offer_action
from GUI.settings import AppSettings
from GUI.settings_dialog import edit_settings

if TYPE_CHECKING:
    from GUI.main_window import MainWindow
    from GUI.workers import LibrarySnapshot


class SettingsControl(QObject):
    """Edits and applies the settings; offers to index again what a change left behind (module notes).

    Args:
        window: The main window (its settings, jobs, library panel, messages and Index only).
        interactive: Ask in a message box (tests pass False and call :meth:`index_now`).

    Attributes:
        stale: The videos indexed with other models or settings, once counted (else empty).
        text: The last sentence said about them (``""`` before any).
    """

    def __init__(self, window: MainWindow, *, interactive: bool) -> None:
        super().__init__(window)
        self.window = window
        self.interactive = interactive
        self.stale: list[str] = []
        self.text = ""
        self._expecting = False  # a change of what a run is: count the stale videos at the next library read
        window.jobs.libraryLoaded.connect(self._library_loaded)

    def open(self) -> None:
        """Show the Settings dialog; apply (and rebuild the engine) when accepted."""
        w = self.window
        new = edit_settings(w, w.settings, w.jobs.engine, db_in_use=w.db_path(),
                            db_from_command_line=w.db_from_command_line,
                            indexed_videos=w.library.indexed_count())
        if new is not None:
            self.apply(new)

    def apply(self, new: AppSettings) -> None:
        """Use new settings: save them, move the threshold, rebuild the engine if needed.

        When they change what a run is made with, the videos indexed before are counted at the
        next library read and indexing them again is offered.
        """
        w = self.window
        old = w.settings
        w.settings = new
        w.settings_store.save(new)
        if new.threshold is not None:
            w.model.threshold = new.threshold
        if new.engine_key() != old.engine_key():
            self._expecting = new.run_key() != old.run_key()
            if w.jobs.busy(INDEX_JOB):
                w.show_message("warning", "The new models, device or database are used after the running "
                                          "search ends; apply the settings again then.")
                return
            w.start_engine()

    @Slot(object)
    def _library_loaded(self, snapshot: LibrarySnapshot) -> None:
        if not self._expecting or self.window.jobs.engine is None:
            return  # the library read of the old engine, or none asked for
        self._expecting = False
        # Not indexed with these settings, but tracks from a finished run of other ones.
        self.stale = [v.path for v in snapshot.videos if v.status != "indexed" and v.tracks > 0]
        if not self.stale:
            return
        n = len(self.stale)
        self.text = (f"{plural(n, 'video')} {'was' if n == 1 else 'were'} indexed with other models or "
                     f"settings: {'it is' if n == 1 else 'they are'} indexed again the next time "
                     f"{'it is' if n == 1 else 'they are'} searched (about as long as the first time), "
                     "or now with Index again.")
        window = self.window
        window.statusBar().showMessage(self.text, 20000)
        window.messageShown.emit("info", self.text)
        if self.interactive:
            offer_action(window, QMessageBox.Icon.Question, self.text, "Index again now", self.index_now,
                         decline="Later")

    def index_now(self) -> bool:
        """Check the stale videos (only them) and index them (Index only); False: nothing to do."""
        if not self.stale:
            return False
        window = self.window
        window.library.set_checked(self.stale, exclusive=True)
        window.model.checked_videos = tuple(window.library.checked_paths())
        started = window.start_search(index_only=True)
        if started:
            self.stale = []
        return started
