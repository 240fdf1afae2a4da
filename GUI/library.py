"""The library panel: videos in the database (and ones just opened), with their past queries.

Each video has a check box: the checked videos are the ones a search covers, so
several videos (or a whole folder) can be searched at once. Double-clicking a
video opens it; double-clicking a past query reopens it with its hits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.text import format_time
from GUI.window_model import norm_path

if TYPE_CHECKING:
    from core.engine import QueryInfo, VideoInfo

PATH_ROLE = Qt.ItemDataRole.UserRole + 1
QUERY_ROLE = Qt.ItemDataRole.UserRole + 2


def _when(iso: str) -> str:
    """``HH:MM`` for today, else ``YYYY-MM-DD HH:MM`` (local time)."""
    try:
        when = datetime.fromisoformat(iso)
    except (TypeError, ValueError):
        return str(iso)
    if when.tzinfo is not None:
        when = when.astimezone()
    same_day = when.date() == datetime.now(when.tzinfo).date()
    return when.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")


class LibraryPanel(QWidget):
    """Videos known to the library and their past queries.

    Signals:
        videoActivated(str): Open this video.
        queryActivated(int, str): Reopen query ``id`` (and its first video's path).
        checkedChanged(): The checked videos (:meth:`checked_paths`) changed.
        openRequested(): "Open video..." pressed.
        openFolderRequested(): "Open folder..." pressed.
    """

    videoActivated = Signal(str)
    queryActivated = Signal(int, str)
    checkedChanged = Signal()
    openRequested = Signal()
    openFolderRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pending: list[str] = []
        self._infos: dict[str, VideoInfo] = {}
        self._checked: set[str] = set()
        self._checked_list: list[str] = []  # checked_paths() when checkedChanged last fired
        self._current: str | None = None
        self._queries: dict[int, tuple[QueryInfo, ...]] = {}

        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Video", "Status", "Length"])
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemActivated.connect(self._activated)
        self.tree.itemChanged.connect(self._item_changed)
        self.tree.setToolTip("Checked videos are searched together. Double-click a video to open it, "
                             "or a past query to see its hits again.")

        self.open_button = QPushButton("Open video...")
        self.open_button.clicked.connect(self.openRequested)
        self.folder_button = QPushButton("Open folder...")
        self.folder_button.clicked.connect(self.openFolderRequested)
        self.summary = QLabel("")
        self.summary.setObjectName("hint")
        self.summary.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.folder_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.summary)

    # ------------------------------------------------------------------ content
    def add_pending(self, path: str, checked: bool = True) -> None:
        """List a video that may not be in the database yet."""
        key = norm_path(path)
        if key not in self._pending and key not in self._infos:
            self._pending.append(key)
        if checked:
            self._checked.add(key)
        self._rebuild()

    def set_current(self, path: str | None) -> None:
        """Mark the video being shown (bold)."""
        self._current = norm_path(path) if path else None
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            font = item.font(0)
            font.setBold(item.data(0, PATH_ROLE) == self._current)
            item.setFont(0, font)

    def set_library(self, videos: Sequence[VideoInfo], queries: Mapping[int, Sequence[QueryInfo]]) -> None:
        """Show the database's videos (``VideoInfo``) and their queries (``QueryInfo`` by video id)."""
        self._infos = {norm_path(v.path): v for v in videos}
        self._queries = {k: tuple(v) for k, v in queries.items()}
        self._pending = [p for p in self._pending if p not in self._infos]
        self._rebuild()

    def _rebuild(self) -> None:
        expanded = {self.tree.topLevelItem(i).data(0, PATH_ROLE) for i in range(self.tree.topLevelItemCount())
                    if self.tree.topLevelItem(i).isExpanded()}
        self.tree.blockSignals(True)
        try:
            self.tree.clear()
            for key, info in self._infos.items():
                item = self._video_item(key, info.status, format_time(info.duration_s, precise=False))
                item.setToolTip(0, f"{info.path}\n{info.width} x {info.height}, {info.fps:g} fps, "
                                   f"{info.frame_count} frames\n{info.tracks} tracks, {info.status}")
                for q in self._queries.get(info.id, ()):
                    names = ", ".join(Path(p).name for p in q.photos)
                    child = QTreeWidgetItem(item, [f"{_when(q.created)}  {names}  ({q.hits} hits)"])
                    child.setFirstColumnSpanned(True)
                    child.setData(0, QUERY_ROLE, int(q.id))
                    child.setData(0, PATH_ROLE, key)
                    child.setToolTip(0, f"Query #{q.id}, {q.created}: double-click to see its {q.hits} hits "
                                        "again\n" + "\n".join(q.photos))
                item.setExpanded(key in expanded)
            for key in self._pending:
                item = self._video_item(key, "not indexed", "")
                item.setToolTip(0, key)
        finally:
            self.tree.blockSignals(False)
        self.set_current(self._current)
        n_checked = len(self.checked_paths())
        self.summary.setText(f"{self.tree.topLevelItemCount()} videos, {n_checked} checked for search"
                             if self.tree.topLevelItemCount() else "No videos yet.")
        self._checks_may_have_changed()

    def _checks_may_have_changed(self) -> None:
        checked = self.checked_paths()
        if checked != self._checked_list:
            self._checked_list = checked
            self.checkedChanged.emit()

    def _video_item(self, key: str, status: str, length: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem(self.tree, [Path(key).name, status, length])
        item.setData(0, PATH_ROLE, key)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(0, Qt.CheckState.Checked if key in self._checked else Qt.CheckState.Unchecked)
        return item

    # ------------------------------------------------------------------ checks
    def checked_paths(self) -> list[str]:
        """Paths of the checked videos, in list order."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            if item.checkState(0) == Qt.CheckState.Checked:
                out.append(item.data(0, PATH_ROLE))
        return out

    def set_checked(self, paths: Sequence[str], exclusive: bool = False) -> None:
        """Check these videos (and uncheck the others when ``exclusive``)."""
        keys = {norm_path(p) for p in paths}
        self._checked = keys if exclusive else self._checked | keys
        self.tree.blockSignals(True)
        for i in range(self.tree.topLevelItemCount()):
            item = self.tree.topLevelItem(i)
            item.setCheckState(0, Qt.CheckState.Checked if item.data(0, PATH_ROLE) in self._checked
                               else Qt.CheckState.Unchecked)
        self.tree.blockSignals(False)
        self._rebuild()

    def video_opened(self, path: str, check: str = "only") -> None:
        """List a video the window just opened, mark it current and check it as asked.

        Args:
            path: The video.
            check: ``"only"``: check only this video; ``"add"``: check it too; ``"keep"``:
                leave the checks (this video is checked if nothing is).
        """
        self.add_pending(path, checked=False)
        if check == "only":
            self.set_checked([path], exclusive=True)
        elif check == "add" or not self.checked_paths():
            self.set_checked([path])
        self.set_current(path)

    def info_for(self, path: str) -> VideoInfo | None:
        """The ``VideoInfo`` of a video in the database, or ``None``."""
        return self._infos.get(norm_path(path))

    def query_info(self, query_id: int) -> QueryInfo | None:
        """The ``QueryInfo`` of a past query listed, or ``None``."""
        return next((q for qs in self._queries.values() for q in qs if q.id == query_id), None)

    def paths(self) -> list[str]:
        """Every listed video."""
        return [self.tree.topLevelItem(i).data(0, PATH_ROLE) for i in range(self.tree.topLevelItemCount())]

    def query_item(self, query_id: int) -> QTreeWidgetItem | None:
        """The row of a past query."""
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for j in range(top.childCount()):
                if top.child(j).data(0, QUERY_ROLE) == query_id:
                    return top.child(j)
        return None

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        key = item.data(0, PATH_ROLE)
        if column != 0 or item.parent() is not None or not key:
            return
        if item.checkState(0) == Qt.CheckState.Checked:
            self._checked.add(key)
        else:
            self._checked.discard(key)
        self.summary.setText(f"{self.tree.topLevelItemCount()} videos, {len(self.checked_paths())} checked "
                             "for search")
        self._checks_may_have_changed()

    def _activated(self, item: QTreeWidgetItem, _column: int) -> None:
        query_id = item.data(0, QUERY_ROLE)
        path = item.data(0, PATH_ROLE)
        if query_id is not None:
            self.queryActivated.emit(int(query_id), path)
        elif path:
            self.videoActivated.emit(path)
