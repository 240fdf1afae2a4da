"""The results panel: hits grouped by video, with thumbnails, scores and time ranges.

A threshold slider re-filters the hits of the last search live
(``SearchResult.above``), without searching again.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.search import DEFAULT_THRESHOLD
from core.text import format_time
from core.types import Hit
from GUI.timeline import score_color
from GUI.window_model import DEFAULT_SCORE_RANGE
from GUI.workers import hit_key

if TYPE_CHECKING:
    from core.engine import SearchResult

THUMB = QSize(34, 68)
SLIDER_STEPS = 100
HIT_ROLE = Qt.ItemDataRole.UserRole + 1


def time_range(hit: Hit) -> str:
    """``start - end`` of a hit's segments (or its best time), e.g. ``0:12.3 - 0:25.0``."""
    if hit.segments:
        return f"{format_time(hit.segments[0].start_s)} - {format_time(hit.segments[-1].end_s)}"
    return format_time(hit.best_time_s)


class ResultsPanel(QWidget):
    """Hits of the last search.

    Signals:
        hitActivated(object): The user picked a hit (``core.types.Hit``).
        thresholdChanged(float): The threshold slider moved.
    """

    hitActivated = Signal(object)
    thresholdChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._result: SearchResult | None = None
        self._threshold = DEFAULT_THRESHOLD
        self._score_range = DEFAULT_SCORE_RANGE
        self._visible: tuple[Hit, ...] = ()
        self._icons: dict[tuple[str, int, int], QIcon] = {}
        self._items: dict[tuple[str, int, int], QTreeWidgetItem] = {}
        self._quiet = False
        self._changed_to: QTreeWidgetItem | None = None

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setToolTip("Show only hits with a score at or above this threshold")
        self.slider.valueChanged.connect(self._slider_moved)
        self.threshold_label = QLabel()
        self.threshold_label.setMinimumWidth(110)
        self.count_label = QLabel("No search yet")
        self.count_label.setObjectName("hint")
        top = QHBoxLayout()
        top.addWidget(self.threshold_label)
        top.addWidget(self.slider, 1)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Person", "Score", "Seen"])
        self.tree.setIconSize(THUMB)
        self.tree.setRootIsDecorated(True)
        self.tree.setUniformRowHeights(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.itemClicked.connect(self._item_clicked)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.count_label)
        layout.addWidget(self.tree, 1)
        self.set_threshold(self._threshold)

    # ------------------------------------------------------------------ state
    @property
    def result(self) -> SearchResult | None:
        """The ``SearchResult`` shown (``None`` before a search)."""
        return self._result

    @property
    def threshold(self) -> float:
        """The current threshold in ``[0, 1]``."""
        return self._threshold

    def visible_hits(self) -> tuple[Hit, ...]:
        """Hits at or above the threshold, best first."""
        return self._visible

    def set_threshold(self, value: float) -> None:
        """Move the slider to ``value`` (re-filters, emits ``thresholdChanged``)."""
        value = min(1.0, max(0.0, float(value)))
        self._threshold = value
        self.slider.blockSignals(True)
        self.slider.setValue(int(round(value * SLIDER_STEPS)))
        self.slider.blockSignals(False)
        self._refilter()
        self.thresholdChanged.emit(self._threshold)

    def set_result(self, result: SearchResult | None, score_range: tuple[float, float] | None = None) -> None:
        """Show a ``SearchResult`` (``None`` to clear), its scores coloured over ``score_range``.

        Args:
            result: The search to show.
            score_range: ``(low, high)`` of the colour scale (``WindowModel.score_range``); ``None``
                keeps the current one.
        """
        self._result = result
        if score_range is not None:
            self._score_range = score_range
        self._refilter()

    def set_thumbnail(self, key: tuple[str, int, int], image: QImage) -> None:
        """Give the hit ``key`` its best-frame thumbnail (GUI thread: makes the pixmap)."""
        pix = QPixmap.fromImage(image.scaled(THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation))
        icon = QIcon(pix)
        if len(self._icons) > 2000:
            self._icons.clear()
        self._icons[key] = icon
        item = self._items.get(key)
        if item is not None:
            item.setIcon(0, icon)

    def has_thumbnail(self, key: tuple[str, int, int]) -> bool:
        """Whether a thumbnail is known for this hit."""
        return key in self._icons

    def score_range(self) -> tuple[float, float]:
        """Score range used to colour hits (shared with the timeline)."""
        return self._score_range

    def select_hit(self, hit: Hit) -> None:
        """Select the row of ``hit`` without emitting ``hitActivated``."""
        item = self._items.get(hit_key(hit))
        self._quiet = True
        try:
            if item is not None:
                self.tree.setCurrentItem(item)
                self.tree.scrollToItem(item)
            else:
                self.tree.setCurrentItem(None)
        finally:
            self._quiet = False

    def item_for(self, hit: Hit) -> QTreeWidgetItem | None:
        """The tree row showing ``hit``."""
        return self._items.get(hit_key(hit))

    # ------------------------------------------------------------------ building
    def _slider_moved(self, value: int) -> None:
        self._threshold = value / SLIDER_STEPS
        self._refilter()
        self.thresholdChanged.emit(self._threshold)

    def _refilter(self) -> None:
        self.threshold_label.setText(f"Threshold <b>{self._threshold:.2f}</b>")
        result = self._result
        current = self.tree.currentItem()
        current_key = hit_key(current.data(0, HIT_ROLE)) if current and current.data(0, HIT_ROLE) else None
        self._quiet = True
        self.tree.setUpdatesEnabled(False)
        try:
            self.tree.clear()
            self._items.clear()
            self._changed_to = None
            if result is None:
                self._visible = ()
                self.count_label.setText("No search yet: add a photo of the person and press Search.")
                return
            self._visible = tuple(result.above(self._threshold))
            total = len(result.hits)
            by_video: dict[str, list[Hit]] = {}
            for hit in self._visible:
                by_video.setdefault(str(hit.video_path), []).append(hit)
            n_videos = len({str(h.video_path) for h in result.hits}) or len(by_video)
            self.count_label.setText(
                f"{len(self._visible)} of {total} candidate{'s' if total != 1 else ''} at or above "
                f"{self._threshold:.2f}"
                + (f" in {len(by_video)} of {n_videos} videos" if n_videos > 1 else "")
            )
            for video, hits in by_video.items():
                group = QTreeWidgetItem(self.tree, [Path(video).name, "", f"{len(hits)} hit"
                                                    + ("s" if len(hits) != 1 else "")])
                group.setToolTip(0, video)
                group.setFirstColumnSpanned(False)
                font = group.font(0)
                font.setBold(True)
                group.setFont(0, font)
                group.setFlags(group.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                for hit in hits:
                    self._add_hit(group, hit)
                group.setExpanded(True)
            if current_key in self._items:
                self.tree.setCurrentItem(self._items[current_key])
        finally:
            self.tree.setUpdatesEnabled(True)
            self._quiet = False

    def _add_hit(self, group: QTreeWidgetItem, hit: Hit) -> None:
        n = len(hit.segments)
        item = QTreeWidgetItem(group, [f"Track {hit.track_id}", f"{hit.score:.2f}",
                                       time_range(hit) + (f"  ({n} visits)" if n > 1 else "")])
        item.setData(0, HIT_ROLE, hit)
        key = hit_key(hit)
        icon = self._icons.get(key)
        if icon is not None:
            item.setIcon(0, icon)
        item.setSizeHint(0, QSize(THUMB.width() + 90, THUMB.height() + 6))
        color = score_color(hit.score, *self._score_range)
        item.setForeground(1, QBrush(color.darker(115) if color.lightness() > 160 else color))
        font = item.font(1)
        font.setBold(True)
        item.setFont(1, font)
        segs = "\n".join(f"  {format_time(s.start_s)} - {format_time(s.end_s)}  (frames {s.start_frame}-"
                         f"{s.end_frame})" for s in hit.segments)
        item.setToolTip(0, f"{hit.video_path}\nTrack {hit.track_id}, score {hit.score:.3f}\n"
                           f"Best frame {hit.best_frame} at {format_time(hit.best_time_s)}\nSeen:\n{segs}")
        item.setToolTip(2, item.toolTip(0))
        self._items[key] = item

    def _current_changed(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        if self._quiet or current is None:
            return
        hit = current.data(0, HIT_ROLE)
        if hit is not None:
            self._changed_to = current
            self.hitActivated.emit(hit)

    def _item_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        # Clicking the row that is already current seeks again (currentItemChanged does not fire).
        if self._quiet or item is not self.tree.currentItem():
            return
        if self._changed_to is item:  # this click is what made it current: already emitted
            self._changed_to = None
            return
        hit = item.data(0, HIT_ROLE)
        if hit is not None:
            self.hitActivated.emit(hit)

