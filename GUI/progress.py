"""The status bar's account of background work: what runs, how far it is, its ETA, and Cancel."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton

from core.text import format_time
from core.types import IndexProgress
from GUI.workers import Status


class ProgressDisplay:
    """Shows the progress items of indexing, searching and saving images in the status bar.

    Args:
        label: What is being done (video, speed, ETA, people tracked).
        bar: Frames done of the video being indexed (busy indicator otherwise).
        cancel_button: Stops the work; shown only while there is work to stop.
    """

    def __init__(self, label: QLabel, bar: QProgressBar, cancel_button: QPushButton) -> None:
        self.label = label
        self.bar = bar
        self.cancel_button = cancel_button
        self._videos: dict[str, IndexProgress] = {}  # the last item of each video of this job

    def set_visible(self, visible: bool) -> None:
        """Show (work started) or hide (nothing left to stop) the progress widgets."""
        for w in (self.label, self.bar, self.cancel_button):
            w.setVisible(visible)
        self.cancel_button.setEnabled(visible)
        if not visible:
            self.label.setText("")
            self.bar.setFormat("%p%")

    def start(self, text: str = "") -> None:
        """Work started: show the widgets with a busy bar (and ``text``, if given)."""
        self.set_visible(True)
        self._videos = {}
        self.bar.setRange(0, 0)
        if text:
            self.label.setText(text)

    def cancelling(self) -> None:
        """Cancel was asked for: say so until the work stops."""
        self.label.setText("Cancelling...")
        self.cancel_button.setEnabled(False)

    def show(self, item: object) -> None:
        """Show one progress item of a job (:class:`~core.types.IndexProgress` or :class:`Status`)."""
        if isinstance(item, IndexProgress):
            name = Path(item.video_path).name
            if item.skipped:
                self.label.setText(f"{name}: already indexed")
                return
            self._videos[item.video_path] = item
            # several videos indexed at once (worker processes): the bar counts the frames of all
            running = [p for p in self._videos.values() if not p.done]
            done = sum(p.frames_done for p in self._videos.values())
            claimed = sum(p.frames_total for p in self._videos.values())
            self.bar.setRange(0, max(claimed, done, 1))
            self.bar.setValue(done)
            self.bar.setFormat(f"{done}/{claimed or '?'} frames")
            etas = [p.eta_s for p in running if p.eta_s is not None]
            eta_s = max(etas) if etas else (0.0 if not running else None)
            eta = f"ETA {format_time(eta_s, precise=False)}" if eta_s is not None else "ETA --"
            if len(running) > 1:
                fps = sum(p.fps for p in running)
                self.label.setText(f"Indexing {len(running)} videos at once: {fps:.1f} fps, {eta}")
                return
            tracks = f", {item.tracks} people tracked" if item.tracks else ""
            self.label.setText(f"Indexing {name}: {item.fps:.1f} fps, {eta}{tracks}")
        elif isinstance(item, Status):
            self.label.setText(item.text)
            if item.text.startswith("Searching"):
                self.bar.setRange(0, 0)
                self.bar.setFormat("")
