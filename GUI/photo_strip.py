"""The photo strip: a photo collection's hits as thumbnails of their photos, the person boxed.

Under the picture, where a video has its timeline: when the collection shown has hits at the
threshold, one thumbnail per hit (the whole photo, small, with the person's box drawn by
:func:`GUI.workers.boxed_photo`), best first, its score below. A click shows that photo large
with the box (:attr:`PhotoStrip.hitActivated`, which the window connects to ``show_hit``).
The strip follows the window's model (result, threshold, current video) by itself.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem

from core.types import Hit
from GUI.window_model import WindowModel, same_path
from GUI.workers import Thumbnail, hit_key

STRIP_ICON = QSize(160, 96)
"""Size of a photo's thumbnail in the strip."""


class PhotoStrip(QListWidget):
    """A horizontal strip of photo hits (see the module notes); hidden when there is none.

    Signals:
        hitActivated(object): The :class:`~core.types.Hit` clicked.
    """

    hitActivated = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("photoStrip")
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(STRIP_ICON)
        # a fixed cell: thumbnails arrive after the items, and the cells must not be sized without them
        self.setGridSize(QSize(STRIP_ICON.width() + 12, STRIP_ICON.height() + 30))
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setFixedHeight(STRIP_ICON.height() + 52)
        self.setToolTip("The photos in which the person was found, best first: click one to see it large")
        self._model: WindowModel | None = None
        self._pixmaps: dict[tuple[str, int, int], QPixmap] = {}
        self.hits: tuple[Hit, ...] = ()
        self.itemClicked.connect(lambda item: self.hitActivated.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.setVisible(False)

    def attach(self, model: WindowModel, thumbnails: Signal) -> None:
        """Follow ``model``; take the photo thumbnails ``thumbnails`` emits (``thumbnailReady``)."""
        self._model = model
        for event in (model.events.result, model.events.threshold, model.events.video_path):
            event.connect(self.refresh)
        model.events.selected_hit.connect(self._select)
        thumbnails.connect(self.set_thumbnail)

    def refresh(self, *_: object) -> None:
        """Show the photo hits of the current collection at the threshold."""
        model = self._model
        hits = tuple(h for h in model.hits_in(model.video_path) if h.photo_path) if model is not None else ()
        if hits == self.hits:
            return
        self.hits = hits
        self.clear()
        for hit in hits:
            item = QListWidgetItem(f"{hit.score:.2f}  {Path(hit.photo_path).name}")
            item.setData(Qt.ItemDataRole.UserRole, hit)
            item.setToolTip(f"{hit.photo_path}\nsimilarity {hit.score:.3f}")
            pix = self._pixmaps.get(hit_key(hit))
            if pix is not None:
                item.setIcon(QIcon(pix))
            self.addItem(item)
        self.setVisible(bool(hits))

    def set_thumbnail(self, thumb: Thumbnail) -> None:
        """Give a photo hit its boxed thumbnail (GUI thread)."""
        if thumb.photo is None:
            return
        pix = QPixmap.fromImage(thumb.photo.scaled(STRIP_ICON, Qt.AspectRatioMode.KeepAspectRatio,
                                                   Qt.TransformationMode.SmoothTransformation))
        if len(self._pixmaps) > 2000:
            self._pixmaps.clear()
        self._pixmaps[thumb.key] = pix
        for i in range(self.count()):
            item = self.item(i)
            if hit_key(item.data(Qt.ItemDataRole.UserRole)) == thumb.key:
                item.setIcon(QIcon(pix))

    def has_thumbnail(self, hit: Hit) -> bool:
        """Whether the strip holds ``hit``'s photo thumbnail."""
        return hit_key(hit) in self._pixmaps

    def item_for(self, hit: Hit) -> QListWidgetItem | None:
        """The strip's item of ``hit``, if shown."""
        for i in range(self.count()):
            if self.item(i).data(Qt.ItemDataRole.UserRole) == hit:
                return self.item(i)
        return None

    def _select(self, hit: Hit | None) -> None:
        item = self.item_for(hit) if hit is not None else None
        self.blockSignals(True)
        if item is not None:
            self.setCurrentItem(item)
        elif hit is None or not same_path(hit.video_path, self._model.video_path or ""):
            self.clearSelection()
        self.blockSignals(False)
