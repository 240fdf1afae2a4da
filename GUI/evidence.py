"""Export clips: the hits as evidence (MP4 clips, a contact sheet, a record), written on a worker.

:class:`EvidenceExport` asks what to export (:class:`ExportDialog`: the selected hit or all
hits shown, the folder, the seconds kept before and after each segment, boxes drawn or
not, clips or only the contact sheet) and runs :func:`core.clips.export_evidence` on a
worker thread, with its progress and ETA in the status bar and Cancel. It is the same
export as ``python -m core export QUERY_ID --out FOLDER --clips``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QWidget,
)

from core.clips import DEFAULT_MARGIN_S, ExportOptions, ExportProgress, ExportReport, export_evidence
from core.text import plural
from core.types import Hit
from GUI.background import EVIDENCE_JOB, Background
from GUI.dialogs import FileDialogs, lay_out_dialog
from GUI.progress import ProgressDisplay
from GUI.window_model import WindowModel
from GUI.workers import Cancelled

if TYPE_CHECKING:
    from core.library import Library, SearchResult
    from GUI.workers import Job


class ExportDialog(QDialog):
    """What to export, and where.

    Args:
        folder: The folder proposed.
        selected: The selected hit, if any (offered as "only this hit").
        shown: How many hits are shown.
        parent: Parent widget.
    """

    def __init__(self, folder: str, selected: Hit | None, shown: int, dialogs: FileDialogs,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export clips")
        self.setMinimumWidth(480)
        self._dialogs = dialogs
        self.folder = QLineEdit(folder)
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        which = f" (track {selected.track_id}, {selected.score:.2f})" if selected else ""
        self.only_selected = QRadioButton("Only the selected hit" + which)
        self.all_shown = QRadioButton(f"All {plural(shown, 'hit')} shown")
        self.only_selected.setEnabled(selected is not None)
        (self.only_selected if selected is not None else self.all_shown).setChecked(True)
        self.clips = QCheckBox("Write an MP4 clip of each time the person was seen")
        self.clips.setChecked(True)
        self.margin = QDoubleSpinBox()
        self.margin.setRange(0.0, 60.0)
        self.margin.setSingleStep(0.5)
        self.margin.setDecimals(1)
        self.margin.setSuffix(" s")
        self.margin.setValue(DEFAULT_MARGIN_S)
        self.margin.setToolTip("Seconds of video kept before and after each time the person was seen")
        self.boxes = QCheckBox("Draw the person's box into the clips")
        self.boxes.setChecked(True)
        self.clips.toggled.connect(self.margin.setEnabled)
        self.clips.toggled.connect(self.boxes.setEnabled)
        note = QLabel("The folder also gets a contact sheet (the best picture of each hit), the hits as CSV, "
                      "the query photos and export.json: which photos, models and threshold found them.")
        note.setObjectName("hint")
        note.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Folder:", row)
        form.addRow("Hits:", self.only_selected)
        form.addRow("", self.all_shown)
        form.addRow("Clips:", self.clips)
        form.addRow("Before and after:", self.margin)
        form.addRow("", self.boxes)
        lay_out_dialog(self, form, note, "Export")

    def _browse(self) -> None:
        if folder := self._dialogs.folder("Export clips to"):
            self.folder.setText(folder)

    def options(self) -> ExportOptions:
        """The export options chosen."""
        return ExportOptions(clips=self.clips.isChecked(), margin_s=self.margin.value(),
                             boxes=self.boxes.isChecked())


def evidence_body(library: Library, hits: Sequence[Hit], folder: str, query: SearchResult | None,
                  threshold: float, options: ExportOptions) -> Callable[[Job], ExportReport | Cancelled]:
    """Job body running :func:`core.clips.export_evidence` (progress items out, cancellable)."""
    hits = tuple(hits)

    def body(job: Job) -> ExportReport | Cancelled:
        report = None
        for item in export_evidence(hits, folder, library=library, query=query, threshold=threshold,
                                    options=options, cancel=job.cancel_event):
            if isinstance(item, ExportProgress):
                job.progress.emit(item)
            else:
                report = item
        return report if report is not None else Cancelled("exporting clips")

    return body


class EvidenceExport(QObject):
    """Exports the hits shown (or the selected one) as evidence (see the module notes).

    Signals:
        message(str, str): ``(level, text)`` to tell the user.
        progressShown(object): An ``ExportProgress`` was shown.
        exported(object): The ``ExportReport`` of a finished export.
    """

    message = Signal(str, str)
    progressShown = Signal(object)
    exported = Signal(object)

    def __init__(self, model: WindowModel, jobs: Background, progress: ProgressDisplay, dialogs: FileDialogs,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.jobs = jobs
        self.progress = progress
        self.dialogs = dialogs
        self._parent = parent
        jobs.jobFinished.connect(self._job_done)

    @property
    def busy(self) -> bool:
        """Whether an export is running."""
        return self.jobs.busy(EVIDENCE_JOB)

    def choose(self) -> None:
        """Ask what to export and where, then export."""
        hits = self.model.visible_hits
        if not hits:
            self.message.emit("error", "There are no hits to export: run a search first "
                                       "(or lower the threshold).")
            return
        selected = self.model.selected_hit if self.model.selected_hit in hits else None
        result = self.model.result
        name = f"search{result.query_id}_clips" if result is not None else "clips"
        start = self.dialogs.start_folder() or str(Path.home())
        dialog = ExportDialog(str(Path(start) / name), selected, len(hits), self.dialogs, self._parent)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        chosen = (selected,) if selected is not None and dialog.only_selected.isChecked() else hits
        self.start(chosen, dialog.folder.text().strip(), dialog.options())

    def start(self, hits: Sequence[Hit], folder: str | Path, options: ExportOptions) -> bool:
        """Export ``hits`` into ``folder`` on a worker; False if nothing can start (a message says why)."""
        engine = self.jobs.engine
        if not hits or not str(folder):
            self.message.emit("error", "Choose the hits to export and a folder to export them to.")
            return False
        if engine is None:
            self.message.emit("error", "The library is not open yet (the models are loading); "
                                       "try again in a moment.")
            return False
        if self.busy:
            self.message.emit("info", "An export is already running.")
            return False
        self.progress.start(f"Exporting {plural(len(hits), 'hit')}...")
        self.jobs.run(EVIDENCE_JOB, evidence_body(engine, hits, str(folder), self.model.result,
                                                  self.model.threshold, options),
                      result=self._done, progress=self._progress)
        return True

    def cancel(self) -> None:
        """Stop the export (nothing half-written is left)."""
        if self.busy:
            self.progress.cancelling()
            self.jobs.cancel(EVIDENCE_JOB)

    @Slot(object)
    def _progress(self, item: ExportProgress) -> None:
        self.progress.show_count(item.text, item.done, item.total, unit="")
        self.progressShown.emit(item)

    @Slot(object)
    def _done(self, outcome: ExportReport | Cancelled) -> None:
        if isinstance(outcome, Cancelled):
            self.message.emit("info", "Stopped exporting clips; no half-written clip was left.")
            return
        clips = f"{plural(len(outcome.clips), 'clip')}, " if outcome.clips else ""
        self.message.emit("info", f"Exported {plural(outcome.hits, 'hit')} to {outcome.folder}: "
                                  f"{clips}the contact sheet and export.json.")
        self.exported.emit(outcome)

    @Slot(str)
    def _job_done(self, name: str) -> None:
        if name == EVIDENCE_JOB:
            self.progress.set_visible(self.jobs.showing_progress())
