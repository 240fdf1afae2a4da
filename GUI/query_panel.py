"""The query panel: the photos of the person to find.

Photos come from files (button or drag-and-drop of image files) or from a
rectangle drawn on the video (the main window saves that crop as a PNG and adds
its path here). Each photo is shown as a thumbnail with a short name; the panel
only keeps paths, and a note per photo (what the search will use of it), listed
under the photos. What is dropped goes to :attr:`QueryPanel.intake` (the window
checks photos before they are added, see :mod:`GUI.query_control`).

"One query is one person": when photos are already there, the window asks, in a
bar of the panel itself (:meth:`QueryPanel.ask`), whether new photos show the same
person or start a new one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QIcon, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
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

THUMB = QSize(40, 80)


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` has a photo suffix the panel accepts."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


_DRAWN = re.compile(r"^(?P<video>.+)_f(?P<frame>\d{6})_\d+_\d+_\d+_\d+$")
"""The name :func:`save_crop` gives a drawn box: ``<video name>_f<frame>_<x1>_<y1>_<x2>_<y2>``."""


def drawn_name(path: str | Path) -> str | None:
    """``"the box drawn at frame 6 of vtest.avi"`` for a drawn box's file, ``None`` for another photo."""
    match = _DRAWN.match(Path(path).stem)
    if match is None:
        return None
    return f"the box drawn at frame {int(match['frame'])} of {match['video']}"


def drawn_frame(path: str | Path) -> int | None:
    """The frame a drawn box's file was drawn on (``None`` for another photo)."""
    match = _DRAWN.match(Path(path).stem)
    return int(match["frame"]) if match else None


def photo_name(path: str | Path) -> str:
    """How a photo is named to the user: what a drawn box shows, else the file name."""
    return drawn_name(path) or Path(path).name


def save_crop(image: np.ndarray, rect: QRect, folder: Path, prefix: str) -> Path:
    """Save the person inside ``rect`` as a query photo: ``folder/<prefix>_<x1>_<y1>_<x2>_<y2>.png``.

    Args:
        image: The ``(H, W, 3)`` BGR frame.
        rect: The rectangle drawn, in image pixels (clipped to the image).
        folder: Where query photos are kept (created when missing).
        prefix: Start of the file name: ``<video name>_f<frame, 6 digits>`` (see :func:`drawn_name`).

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
        self.setFixedHeight(THUMB.height() + 32)
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

    Attributes:
        intake: Called with the paths of files dropped on the panel (default: :meth:`add_photos`).

    Signals:
        changed(): The set of photos changed.
        addRequested(): The user pressed "Add photo..." (the window opens the file dialog).
        clearRequested(): The user pressed "Clear" (the window clears the photos and the search).
        answered(str): The user answered the question of :meth:`ask` (the answer's key).
        problem(str): A dropped or added file could not be used (readable sentence).
    """

    changed = Signal()
    addRequested = Signal()
    clearRequested = Signal()
    answered = Signal(str)
    problem = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.intake: Callable[[list[str]], object] = self.add_photos
        self._notes: dict[str, str] = {}
        self.list = _PhotoList(self)
        self.list.filesDropped.connect(lambda paths: self.intake(paths))
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
        self.clear_button.setToolTip("Remove the photos and the hits of their search")
        self.clear_button.clicked.connect(self.clearRequested)
        self.notes = QLabel("")
        self.notes.setObjectName("hint")
        self.notes.setWordWrap(True)
        self.notes.hide()
        self.question = QFrame()
        self.question.setObjectName("question")
        self.question_text = QLabel("")
        self.question_text.setWordWrap(True)
        self.question_buttons = QHBoxLayout()
        q_layout = QVBoxLayout(self.question)
        q_layout.setContentsMargins(6, 4, 6, 4)
        q_layout.addWidget(self.question_text)
        q_layout.addLayout(self.question_buttons)
        self.question.hide()
        buttons = QVBoxLayout()  # beside the photos: the panel stays short, the hits list gets the height
        buttons.setContentsMargins(0, 0, 0, 0)
        for b in (self.add_button, self.remove_button, self.clear_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.list, 1)
        top.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.hint)
        layout.addWidget(self.notes)
        layout.addWidget(self.question)
        self.setAcceptDrops(True)
        self.list.itemSelectionChanged.connect(self._update_buttons)
        self._update_buttons()

    def photos(self) -> list[str]:
        """Paths of the query photos, in order."""
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def add_photos(self, paths: list[str]) -> int:
        """Add several photos; returns how many were added."""
        return sum(1 for p in paths if self.add_photo(p))

    def add_photo(self, path: str | Path, label: str | None = None, note: str = "") -> bool:
        """Add one photo file; reports a problem (and returns False) if it cannot be read.

        Args:
            path: The photo.
            label: Its short name under the thumbnail (default: the file name).
            note: What the search will use of it, listed under the photos.
        """
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
        name = label or path.name
        item = QListWidgetItem(QIcon(pixmap), name if len(name) <= 14 else name[:12] + "...")
        item.setData(Qt.ItemDataRole.UserRole, key)
        title = f"{label}\n" if label else ""
        item.setToolTip(f"{title}{path}\n{image.width()} x {image.height()} pixels")
        self.list.addItem(item)
        self._notes[key] = note
        self._update_buttons()
        self.changed.emit()
        return True

    def set_note(self, path: str | Path, note: str) -> None:
        """Say what the search will use of a photo (listed under the photos)."""
        key = str(Path(path).resolve())
        if key in self._notes:
            self._notes[key] = note
            self._update_buttons()

    def note(self, path: str | Path) -> str:
        """The note of a photo (``""`` when none)."""
        return self._notes.get(str(Path(path).resolve()), "")

    def remove_photo(self, path: str | Path) -> bool:
        """Remove one photo; False if it is not there."""
        key = str(Path(path).resolve())
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == key:
                self.list.takeItem(i)
                self._update_buttons()
                self.changed.emit()
                return True
        return False

    def ask(self, text: str, answers: Sequence[tuple[str, str]]) -> None:
        """Ask a question in the panel's own bar; the button pressed emits :attr:`answered` with its key.

        Args:
            text: The question.
            answers: ``(key, button text)`` pairs, the first one the default button.
        """
        while self.question_buttons.count():
            item = self.question_buttons.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.question_text.setText(text)
        for n, (key, caption) in enumerate(answers):
            button = QPushButton(caption)
            button.setObjectName(f"answer-{key}")
            button.setDefault(n == 0)
            button.clicked.connect(lambda _=False, k=key: self._answer(k))
            self.question_buttons.addWidget(button)
        self.question_buttons.addStretch(1)
        self.question.show()

    def answer_button(self, key: str) -> QPushButton | None:
        """The button of an answer of the open question (``None`` when no question is open)."""
        if not self.question.isVisible():
            return None
        return self.question.findChild(QPushButton, f"answer-{key}")

    @property
    def asking(self) -> bool:
        """Whether a question is open."""
        return self.question.isVisible()

    def _answer(self, key: str) -> None:
        self.question.hide()
        self.answered.emit(key)

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
        current = self.photos()
        self._notes = {k: v for k, v in self._notes.items() if k in current}
        notes = [self._notes[k] for k in current if self._notes.get(k)]
        self.notes.setText("\n".join(notes))
        self.notes.setVisible(bool(notes))

    # Drops anywhere on the panel, not just on the list.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: D102 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: D102 - Qt override
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
            self.intake([u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()])
