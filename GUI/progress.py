"""The status bar's account of background work: what runs, how far it is, its ETA, and Cancel.

The ETA is :class:`core.eta.EtaEstimator`'s: the speed of the last seconds of indexing (not
the average since the start, which the first frames and the models' warm-up fool), plus the
time the search takes after the last frame. While the models load, the label says so and
counts the seconds.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton

from core.eta import EtaEstimator
from core.text import format_time, plural
from core.types import IndexProgress
from GUI.workers import Status


class ProgressDisplay:
    """Shows the progress items of indexing, searching and exporting in the status bar.

    Args:
        label: What is being done (video, frames, speed, time left, tracks so far).
        bar: Frames done of the video being indexed (busy indicator otherwise).
        cancel_button: Stops the work; shown only while there is work to stop.

    Attributes:
        eta: The estimator of the time left.
    """

    def __init__(self, label: QLabel, bar: QProgressBar, cancel_button: QPushButton) -> None:
        self.label = label
        self.bar = bar
        self.cancel_button = cancel_button
        self.eta = EtaEstimator()
        self._started = time.monotonic()
        self._videos: dict[str, IndexProgress] = {}  # the last item of each video of this job

    def set_visible(self, visible: bool) -> None:
        """Show (work started) or hide (nothing left to stop) the progress widgets."""
        for w in (self.label, self.bar, self.cancel_button):
            w.setVisible(visible)
        self.cancel_button.setEnabled(visible)
        if not visible:
            self.label.setText("")
            self.bar.setFormat("%p%")

    def start(self, text: str = "", tail_s: float = 0.0) -> None:
        """Work started: show the widgets with a busy bar (and ``text``, if given).

        Args:
            text: What is being done.
            tail_s: Seconds of work known to follow the last frame (counted in the ETA).
        """
        self.set_visible(True)
        self._videos = {}
        self.bar.setRange(0, 0)
        self.eta.reset()
        self.eta.tail_s = tail_s
        self._started = time.monotonic()
        if text:
            self.label.setText(text)

    def cancelling(self) -> None:
        """Cancel was asked for: say so until the work stops."""
        self.label.setText("Cancelling...")
        self.cancel_button.setEnabled(False)

    def show_count(self, what: str, done: int, total: int, unit: str = "frames") -> None:
        """Show ``done`` of ``total`` units of ``what`` with the time left."""
        total = max(total, done, 1)
        self.bar.setRange(0, total)
        self.bar.setValue(done)
        self.bar.setFormat(f"{done}/{total} {unit}".rstrip())
        left = self.eta.update(done, total)
        self.label.setText(f"{what}, {self.eta_text(left)}")

    @staticmethod
    def eta_text(left: float | None) -> str:
        """``"ETA 0:27"`` (``"ETA --"`` while the speed is being measured)."""
        if left is None:
            return "ETA --"
        return f"ETA {format_time(left + 0.5, precise=False)}"

    def show(self, item: object) -> None:
        """Show one progress item of a job (:class:`~core.types.IndexProgress` or :class:`Status`)."""
        if isinstance(item, IndexProgress):
            name = Path(item.video_path).name
            if item.skipped:
                self.label.setText(f"{name}: already indexed")
                return
            self._videos[item.video_path] = item
            # Several videos indexed at once (worker processes): the bar counts the frames of all.
            running = [p for p in self._videos.values() if not p.done]
            done = sum(p.frames_done for p in self._videos.values())
            claimed = sum(p.frames_total for p in self._videos.values())
            if len(running) > 1:
                fps = sum(p.fps for p in running)
                self.show_count(f"Indexing {len(running)} videos at once: {fps:.1f} fps", done, claimed)
                return
            rate = self.eta.rate
            unit, found = ("photos", ("person", "people")) if item.photos else ("frames", ("track", "tracks"))
            speed = f"{rate if rate is not None else item.fps:.1f} {'photos/s' if item.photos else 'fps'}"
            tracks = f", {plural(item.tracks, *found)} so far" if item.tracks else ""
            self.show_count(f"Indexing {name}: {speed}{tracks}", done, claimed, unit)
        elif isinstance(item, Status):
            self.label.setText(item.text)
            if item.text.startswith("Searching"):
                self.bar.setRange(0, 0)
                self.bar.setFormat("")
