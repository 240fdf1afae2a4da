"""The video view: paints the current frame with the people's boxes, lets the user pick a person.

Frames are rendered by hand (OpenCV BGR array -> ``QImage`` -> ``QPainter``), not
with ``QVideoWidget``, so the view works the same offscreen, in tests and in
screenshots. The frame is letterboxed into the widget; boxes are given in image
pixels and mapped to the widget when painting.

Picking a person: drag a rectangle around them (or double-click a detected box)
and the view emits :attr:`VideoView.cropSelected` with the rectangle in image
pixels; the main window turns it into a query photo.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

HIGHLIGHT = QColor(0, 230, 118)
"""Colour of the selected hit's box (bright green)."""

MATCH = QColor(255, 196, 0)
"""Colour of other matching people whose box carries no colour of its own (amber)."""

PERSON = QColor(235, 240, 245, 190)
"""Colour of every other person's box."""

DRAW = QColor(64, 196, 255)
"""Colour of the rectangle being drawn."""

MIN_DRAG_PX = 8
"""A drag shorter than this (widget pixels) counts as a click."""


@dataclass(frozen=True)
class OverlayBox:
    """A box to draw over the frame.

    Attributes:
        box: ``(x1, y1, x2, y2)`` in image pixels.
        label: Text drawn above the box.
        kind: ``"person"``, ``"match"`` or ``"selected"``.
        track_id: Track id of the person (``-1`` when unknown).
        score: Match score, if the person is a hit.
        color: ``(r, g, b)`` of a ``"match"`` box: the colour of its score in the hits list and
            the timeline (``None``: :data:`MATCH`).
    """

    box: tuple[float, float, float, float]
    label: str
    kind: str = "person"
    track_id: int = -1
    score: float | None = None
    color: tuple[int, int, int] | None = None


class VideoView(QWidget):
    """Paints one frame plus overlays; turns drags into crop rectangles.

    Signals:
        cropSelected(QRect): A rectangle in image pixels the user drew or clicked.
    """

    cropSelected = Signal(QRect)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._overlays: tuple[OverlayBox, ...] = ()
        self._press: QPointF | None = None
        self._drag: QRectF | None = None
        self._message = ""
        self.setMouseTracking(True)
        self.setMinimumSize(320, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Drag a rectangle around a person (or double-click their box) to search for them")
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    # ------------------------------------------------------------------ state
    def set_frame(self, image: QImage | None, overlays: tuple[OverlayBox, ...] = ()) -> None:
        """Show ``image`` (or nothing) with ``overlays`` (boxes in image pixels)."""
        self._image = image
        self._overlays = tuple(overlays)
        self.update()

    def set_overlays(self, overlays: tuple[OverlayBox, ...]) -> None:
        """Replace the boxes drawn over the current frame."""
        self._overlays = tuple(overlays)
        self.update()

    def set_message(self, text: str) -> None:
        """Show a short message in the middle of the view (empty to clear)."""
        self._message = text
        self.update()

    @property
    def image(self) -> QImage | None:
        """The frame being shown."""
        return self._image

    @property
    def overlays(self) -> tuple[OverlayBox, ...]:
        """The boxes being drawn."""
        return self._overlays

    def sizeHint(self) -> QSize:  # noqa: D102 - Qt override
        return QSize(768, 576)

    # ------------------------------------------------------------------ geometry
    def image_rect(self) -> QRectF:
        """Where the frame is painted in widget coordinates (aspect kept, centred)."""
        if self._image is None or self._image.isNull():
            return QRectF()
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def _scale(self) -> float:
        target = self.image_rect()
        return target.width() / self._image.width() if self._image is not None and target.width() else 1.0

    def to_widget(self, x: float, y: float) -> QPointF:
        """Map image pixel ``(x, y)`` to widget coordinates."""
        target = self.image_rect()
        s = self._scale()
        return QPointF(target.x() + x * s, target.y() + y * s)

    def to_image(self, point: QPointF) -> QPointF:
        """Map a widget point to image pixels (clamped to the image)."""
        target = self.image_rect()
        s = self._scale() or 1.0
        x = (point.x() - target.x()) / s
        y = (point.y() - target.y()) / s
        if self._image is not None:
            x = min(max(x, 0.0), float(self._image.width()))
            y = min(max(y, 0.0), float(self._image.height()))
        return QPointF(x, y)

    def box_to_widget(self, box: tuple[float, float, float, float]) -> QRectF:
        """Map an image-pixel ``(x1, y1, x2, y2)`` box to a widget rectangle."""
        p1 = self.to_widget(box[0], box[1])
        p2 = self.to_widget(box[2], box[3])
        return QRectF(p1, p2)

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: D102 - Qt override
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(18, 20, 24))
        if self._image is not None and not self._image.isNull():
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.image_rect(), self._image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            # Plain people first, then matches, the selected one on top.
            order = {"person": 0, "match": 1, "selected": 2}
            for item in sorted(self._overlays, key=lambda o: order.get(o.kind, 0)):
                self._paint_box(painter, item)
            if self._drag is not None:
                pen = QPen(DRAW, 2, Qt.PenStyle.DashLine)
                painter.setPen(pen)
                painter.setBrush(QColor(64, 196, 255, 40))
                painter.drawRect(self._drag)
        if self._message:
            painter.setPen(QColor(220, 225, 230))
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 1.2)
            painter.setFont(font)
            flags = Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap
            painter.drawText(self.rect(), flags, self._message)
        painter.end()

    def _paint_box(self, painter: QPainter, item: OverlayBox) -> None:
        rect = self.box_to_widget(item.box)
        color = {"selected": HIGHLIGHT, "match": MATCH}.get(item.kind, PERSON)
        if item.kind == "match" and item.color is not None:
            color = QColor(*item.color)
        width = {"selected": 4.0, "match": 3.0}.get(item.kind, 1.5)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(color, width))
        painter.drawRect(rect)
        if not item.label:
            return
        font = QFont(self.font())
        font.setBold(item.kind != "person")
        painter.setFont(font)
        metrics = painter.fontMetrics()
        tw = metrics.horizontalAdvance(item.label) + 8
        th = metrics.height() + 2
        ty = rect.top() - th if rect.top() - th >= 0 else rect.top()
        right = max(self.image_rect().right(), rect.left() + tw)
        label_rect = QRectF(min(rect.left() - width / 2, right - tw), ty, tw, th)  # inside the frame
        fill = QColor(color)
        if item.kind == "person":
            fill = QColor(30, 34, 40, 200)
        painter.fillRect(label_rect, fill)
        painter.setPen(QColor(10, 12, 14) if item.kind != "person" else QColor(235, 240, 245))
        painter.drawText(label_rect, Qt.AlignmentFlag.AlignCenter, item.label)

    # ------------------------------------------------------------------ picking
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: D102 - Qt override
        if event.button() == Qt.MouseButton.LeftButton and self._image is not None:
            self._press = event.position()
            self._drag = None
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: D102 - Qt override
        if self._press is not None:
            pos = event.position()
            if (pos - self._press).manhattanLength() >= MIN_DRAG_PX:
                self._drag = QRectF(self._press, pos).normalized().intersected(self.image_rect())
                self.update()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: D102 - Qt override
        if event.button() == Qt.MouseButton.LeftButton and self._press is not None:
            drag = self._drag
            self._press = self._drag = None
            self.update()
            if drag is not None and drag.width() >= MIN_DRAG_PX and drag.height() >= MIN_DRAG_PX:
                p1 = self.to_image(drag.topLeft())
                p2 = self.to_image(drag.bottomRight())
                rect = QRectF(p1, p2).toAlignedRect()
                if rect.width() >= 4 and rect.height() >= 4:
                    self.cropSelected.emit(rect)
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: D102 - Qt override
        if event.button() == Qt.MouseButton.LeftButton:
            hit = self.overlay_at(event.position())
            if hit is not None:
                x1, y1, x2, y2 = hit.box
                self.cropSelected.emit(QRectF(QPointF(x1, y1), QPointF(x2, y2)).toAlignedRect())
        super().mouseDoubleClickEvent(event)

    def overlay_at(self, point: QPointF) -> OverlayBox | None:
        """The smallest box under a widget point, if any."""
        under = [o for o in self._overlays if self.box_to_widget(o.box).contains(point)]
        if not under:
            return None
        return min(under, key=lambda o: (o.box[2] - o.box[0]) * (o.box[3] - o.box[1]))
