"""The query panel: the photos of the person to find.

Photos come from files (button or drag-and-drop of image files) or from a
rectangle drawn on the video (the main window saves that crop as a PNG and adds
its path here). Each photo is shown as a thumbnail; the panel only keeps paths.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""Photo file types accepted by the panel."""

THUMB = QSize(56, 112)


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` has a photo suffix the panel accepts."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def save_crop(image: np.ndarray, rect: QRect, folder: Path, prefix: str) -> Path:
    """Save the person inside ``rect`` as a query photo: ``folder/<prefix>_<x1>_<y1>_<x2>_<y2>.png``.

    Args:
        image: The ``(H, W, 3)`` BGR frame.
        rect: The rectangle drawn, in image pixels (clipped to the image).
        folder: Where query photos are kept (created when missing).
        prefix: Start of the file name (video and frame).

    Returns:
        The PNG written.

    Raises:
        ValueError: The rectangle is too small for a person, or the file cannot be written
            (one sentence naming the folder or file).
    """
    h, w = image.shape[:2]
    x1, y1 = max(0, rect.left()), max(0, rect.top())
    x2, y2 = min(w, rect.left() + rect.width()), min(h, rect.top() + rect.height())
    if x2 - x1 < 8 or y2 - y1 < 16:
        raise ValueError("The rectangle is too small to be a person: drag a box around the whole person.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{folder}: cannot create the folder for query photos ({exc.strerror}).") from exc
    out = folder / f"{prefix}_{x1}_{y1}_{x2}_{y2}.png"
    if not cv2.imwrite(str(out), image[y1:y2, x1:x2]):
        raise ValueError(f"{out}: could not save the query photo.")
    return out


class _PhotoList(QListWidget):
    """Icon list that accepts dropped image files."""

    filesDropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setFlow(QListWidget.Flow.LeftToRight)
        self.setWrapping(False)
        self.setIconSize(THUMB)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Static)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSpacing(4)
        self.setFixedHeight(THUMB.height() + 44)
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: D102 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:  # noqa: D102 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: D102 - Qt override
        if event.mimeData().hasUrls():
            paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
            event.acceptProposedAction()
            self.filesDropped.emit(paths)
        else:
            super().dropEvent(event)


class QueryPanel(QWidget):
    """Photos of the person to search for.

    Signals:
        changed(): The set of photos changed.
        addRequested(): The user pressed "Add photo..." (the window opens the file dialog).
        problem(str): A dropped or added file could not be used (readable sentence).
    """

    changed = Signal()
    addRequested = Signal()
    problem = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = _PhotoList(self)
        self.list.filesDropped.connect(self.add_photos)
        self.list.setToolTip("Query photos: drop image files here, add them from a file, or drag a "
                             "rectangle around a person on the video")
        self.hint = QLabel("Drop photos here, use <b>Add photo</b>, or drag a rectangle around a person "
                           "on the video.")
        self.hint.setWordWrap(True)
        self.hint.setObjectName("hint")
        self.add_button = QPushButton("Add photo...")
        self.add_button.setToolTip("Add a photo of the person from a file")
        self.add_button.clicked.connect(self.addRequested)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list)
        layout.addWidget(self.hint)
        layout.addLayout(buttons)
        self.setAcceptDrops(True)
        self.list.itemSelectionChanged.connect(self._update_buttons)
        self._update_buttons()

    def photos(self) -> list[str]:
        """Paths of the query photos, in order."""
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def add_photos(self, paths: list[str]) -> int:
        """Add several photos; returns how many were added."""
        return sum(1 for p in paths if self.add_photo(p))

    def add_photo(self, path: str | Path) -> bool:
        """Add one photo file; reports a problem (and returns False) if it cannot be read."""
        path = Path(path)
        if not path.is_file():
            self.problem.emit(f"{path}: photo not found.")
            return False
        reader = QImageReader(str(path))
        reader.setAutoTransform(True)
        image = reader.read()
        if image.isNull():
            self.problem.emit(f"{path.name}: cannot be read as an image ({reader.errorString()}).")
            return False
        key = str(path.resolve())
        if key in self.photos():
            return False
        pixmap = QPixmap.fromImage(image.scaled(THUMB, Qt.AspectRatioMode.KeepAspectRatio,
                                                Qt.TransformationMode.SmoothTransformation))
        item = QListWidgetItem(QIcon(pixmap), path.name if len(path.name) <= 14 else path.name[:12] + "...")
        item.setData(Qt.ItemDataRole.UserRole, key)
        item.setToolTip(f"{path}\n{image.width()} x {image.height()} pixels")
        self.list.addItem(item)
        self._update_buttons()
        self.changed.emit()
        return True

    def set_photos(self, paths: list[str]) -> None:
        """Replace the photos (files that no longer exist are skipped silently)."""
        self.list.clear()
        for p in paths:
            if Path(p).is_file():
                self.add_photo(p)
        self._update_buttons()
        self.changed.emit()

    def remove_selected(self) -> None:
        """Remove the selected photos."""
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
        self._update_buttons()
        self.changed.emit()

    def clear(self) -> None:
        """Remove every photo."""
        self.list.clear()
        self._update_buttons()
        self.changed.emit()

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(bool(self.list.selectedItems()))
        self.clear_button.setEnabled(self.list.count() > 0)
        self.hint.setVisible(self.list.count() == 0)

    # Drops anywhere on the panel, not just on the list.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: D102 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: D102 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
            self.add_photos([u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()])
