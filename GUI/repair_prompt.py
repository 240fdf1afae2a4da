"""When the window's library is damaged: say so, offer Repair, run it on a worker, reopen the library.

The repair itself is ``core.repair.repair_library`` (what ``python -m core repair`` runs), started
by :meth:`GUI.background.Background.repair`; this class only asks and reports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QMessageBox

from core.text import plural
from GUI.dialogs import offer_action

if TYPE_CHECKING:
    from core.repair import RepairReport
    from GUI.main_window import MainWindow


class RepairPrompt(QObject):
    """Offers Repair for a damaged library (see the module notes).

    Args:
        window: The main window (its jobs, progress display, messages and engine start).
        interactive: Ask in a message box (tests pass False and call :meth:`repair`).

    Attributes:
        damaged: The damage sentence while the library is damaged and not yet repaired, else ``""``.
    """

    def __init__(self, window: MainWindow, *, interactive: bool) -> None:
        super().__init__(window)
        self.window = window
        self.interactive = interactive
        self.damaged = ""
        window.jobs.libraryDamaged.connect(self.offer)
        window.jobs.repaired.connect(self._repaired)

    @Slot(str)
    def offer(self, text: str) -> None:
        """The library is damaged: tell the user and offer Repair."""
        self.damaged = text
        window = self.window
        window.device_label.setText("Library damaged")
        window.statusBar().showMessage(text)
        window.messageShown.emit("error", text)
        if self.interactive:
            offer_action(window, QMessageBox.Icon.Critical, text, "Repair", self.repair,
                         informative="Repair saves every readable video, indexing run, track and saved "
                                     "search into a new library under the same name and keeps the damaged "
                                     "file beside it.")

    def repair(self) -> bool:
        """Repair the window's library on a worker; False when there is nothing to repair or it is busy."""
        if not self.damaged or not self.window.jobs.repair(self.window.db_path()):
            return False
        self.window.progress.start("Repairing the library...")
        return True

    @Slot(object)
    def _repaired(self, report: RepairReport) -> None:
        self.damaged = ""
        self.window.progress.set_visible(False)
        saved = report.salvage
        if saved is not None:
            tracks = saved.table("tracks")
            lost = (f"; {plural(len(saved.runs_damaged), 'video')} lost tracks and will be indexed again "
                    "when searched" if saved.runs_damaged else "")
            self.window.show_message("info", f"Library repaired: {plural(tracks.kept, 'track')} saved"
                                             f"{lost}; the damaged file is kept as {report.kept}.")
        self.window.start_engine()
