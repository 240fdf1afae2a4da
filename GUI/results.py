"""The results panel: one row per person, grouped by video, with thumbnails, scores and time ranges.

A threshold slider re-filters the hits of the last search live
(``SearchResult.above``), without searching again. When nobody reaches the threshold the
panel says so in the result's own sentence (``SearchResult.explain``: the best score found
and what to do).

The user steers the search from here: a hit can be marked as the person (check, key
``C``) or not (cross, key ``X``; ``U`` takes a mark back), and "Find similar" (button, key
``F``, or the context menu) searches for the person of a hit. The panel only asks, by
signals; the window runs the re-ranked search and shows its result. Confirmed hits carry a
check mark and stay on top; rejected ones are left out, and counted under the slider.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QPoint, QSize, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QSlider,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.search import DEFAULT_THRESHOLD
from core.text import format_time, person_label
from core.types import Hit
from GUI.timeline import score_color
from GUI.window_model import DEFAULT_SCORE_RANGE
from GUI.workers import hit_key

if TYPE_CHECKING:
    from core.engine import SearchResult

THUMB = QSize(28, 56)
SLIDER_STEPS = 100
HIT_ROLE = Qt.ItemDataRole.UserRole + 1
MARK_SIGNS = {"confirmed": "\u2714 ", "rejected": "\u2718 ", "": ""}
"""Check / cross before the label of a marked hit."""


def hit_label(hit: Hit) -> str:
    """A hit's row label: its mark and the person's tracks (``Track 11``, ``Person: tracks 4, 16, 31``).

    A hit in a photo collection is labelled with its photo's file name.
    """
    if hit.photo_path:
        return MARK_SIGNS.get(hit.mark, "") + Path(hit.photo_path).name
    return MARK_SIGNS.get(hit.mark, "") + person_label(hit.track_id, hit.track_ids)


def time_range(hit: Hit) -> str:
    """``start - end`` of a hit's segments (or its best time), e.g. ``0:12.3 - 0:25.0``; a photo's rank."""
    if hit.photo_path:
        return f"photo {hit.best_frame + 1}"
    if hit.segments:
        return f"{format_time(hit.segments[0].start_s)} - {format_time(hit.segments[-1].end_s)}"
    return format_time(hit.best_time_s)


class ResultsPanel(QWidget):
    """Hits of the last search.

    Signals:
        hitActivated(object): The user picked a hit (``core.types.Hit``).
        thresholdChanged(float): The threshold slider moved.
        markRequested(object, str): The user marked a hit: ``"confirmed"``, ``"rejected"`` or ``""``
            (take the mark back).
        similarRequested(object): The user asked for people like this hit.
    """

    hitActivated = Signal(object)
    thresholdChanged = Signal(float)
    markRequested = Signal(object, str)
    similarRequested = Signal(object)

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
        self.count_label.setWordWrap(True)
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
        # The person's label gives way (elided, whole in its tooltip); score and times stay whole.
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.currentItemChanged.connect(self._current_changed)
        self.tree.itemClicked.connect(self._item_clicked)

        self.act_confirm = self._hit_action("This is the person", "C", "Mark the hit as the person searched "
                                            "for: it joins the query and stays on top",
                                            lambda h: self.markRequested.emit(h, "confirmed"))
        self.act_reject = self._hit_action("Not the person", "X", "Mark the hit as someone else: it leaves "
                                           "the results and pushes look-alikes down",
                                           lambda h: self.markRequested.emit(h, "rejected"))
        self.act_clear = self._hit_action("Take the mark back", "U", "Forget this hit's mark",
                                          lambda h: self.markRequested.emit(h, ""))
        self.act_similar = self._hit_action("Find similar", "F", "Search every video for this person: their "
                                            "stored appearance becomes the query",
                                            self.similarRequested.emit)
        self.similar_button = QPushButton("Find similar")
        self.confirm_button = QPushButton("\u2714 Person")
        self.reject_button = QPushButton("\u2718 Not")
        buttons = QHBoxLayout()
        for button, act in ((self.similar_button, self.act_similar), (self.confirm_button, self.act_confirm),
                            (self.reject_button, self.act_reject)):
            button.setToolTip(f"{act.toolTip()} ({act.shortcut().toString()})")
            button.clicked.connect(act.trigger)
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.context_menu: QMenu | None = None
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.tree.customContextMenuRequested.connect(self._context_menu)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.count_label)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self.set_threshold(self._threshold)
        self._update_buttons()

    # ------------------------------------------------------------------ marks and find similar
    def _hit_action(self, text: str, key: str, tip: str, emit) -> QAction:
        act = QAction(text, self.tree)
        act.setShortcut(key)
        act.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        act.setToolTip(tip)
        act.triggered.connect(lambda: (hit := self.current_hit()) is not None and emit(hit))
        self.tree.addAction(act)
        return act

    def current_hit(self) -> Hit | None:
        """The hit of the current row (``None`` when no hit row is current)."""
        item = self.tree.currentItem()
        return item.data(0, HIT_ROLE) if item is not None else None

    def _update_buttons(self, *_: object) -> None:
        hit = self.current_hit()
        for act in (self.act_similar, self.act_confirm, self.act_reject, self.act_clear):
            act.setEnabled(hit is not None)
        if hit is not None:
            self.act_confirm.setEnabled(hit.mark != "confirmed")
            self.act_clear.setEnabled(bool(hit.mark))
        for button, act in ((self.similar_button, self.act_similar), (self.confirm_button, self.act_confirm),
                            (self.reject_button, self.act_reject)):
            button.setEnabled(act.isEnabled())

    def _context_menu(self, pos: QPoint) -> None:
        item = self.tree.itemAt(pos)
        if item is None or item.data(0, HIT_ROLE) is None:
            return
        self.tree.setCurrentItem(item)
        menu = QMenu(self.tree)
        for act in (self.act_similar, None, self.act_confirm, self.act_reject, self.act_clear):
            menu.addSeparator() if act is None else menu.addAction(act)
        menu.popup(self.tree.viewport().mapToGlobal(pos))
        self.context_menu = menu  # kept for tests (and alive while shown)

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
            rejected = f"; {len(result.rejected)} rejected" if result.rejected else ""
            if self._visible:
                self.count_label.setText(
                    f"{len(self._visible)} of {total} candidate{'s' if total != 1 else ''} at or above "
                    f"{self._threshold:.2f}"
                    + (f" in {len(by_video)} of {n_videos} videos" if n_videos > 1 else "") + rejected)
            else:
                self.count_label.setText(result.explain(self._threshold))
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
            self._update_buttons()

    def _add_hit(self, group: QTreeWidgetItem, hit: Hit) -> None:
        n = len(hit.segments)
        item = QTreeWidgetItem(group, [hit_label(hit), f"{hit.score:.2f}",
                                       time_range(hit) + (f"  ({n} visits)" if n > 1 else "")])
        item.setData(0, HIT_ROLE, hit)
        key = hit_key(hit)
        icon = self._icons.get(key)
        if icon is not None:
            item.setIcon(0, icon)
        item.setSizeHint(0, QSize(THUMB.width() + 64, THUMB.height() + 6))
        color = score_color(hit.score, *self._score_range)
        item.setForeground(1, QBrush(color.darker(115) if color.lightness() > 160 else color))
        font = item.font(1)
        font.setBold(True)
        item.setFont(1, font)
        segs = "\n".join(f"  {format_time(s.start_s)} - {format_time(s.end_s)}  (frames {s.start_frame}-"
                         f"{s.end_frame})" for s in hit.segments)
        tracks = ", ".join(map(str, hit.track_ids))
        mark = {"confirmed": "\nMarked: the person", "rejected": "\nMarked: not the person"}.get(hit.mark, "")
        item.setToolTip(0, f"{hit.photo_path or hit.video_path}\nTracks {tracks} (best: {hit.track_id}), "
                           f"score {hit.score:.3f}"
                           f"{mark}\nBest frame {hit.best_frame} at {format_time(hit.best_time_s)}\n"
                           f"Seen:\n{segs}\nC: the person, X: not the person, F: find similar")
        if hit.mark == "confirmed":
            font = item.font(0)
            font.setBold(True)
            item.setFont(0, font)
        item.setToolTip(2, item.toolTip(0))
        self._items[key] = item

    def _current_changed(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        self._update_buttons()
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

