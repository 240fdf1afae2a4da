"""The app icon, drawn with QPainter (no image files to ship)."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap


def app_icon() -> QIcon:
    """A magnifying glass over a person silhouette, at several sizes."""
    icon = QIcon()
    for size in (16, 24, 32, 48, 64, 128, 256):
        pix = QPixmap(size, size)
        pix.fill(Qt.GlobalColor.transparent)
        p = QPainter(pix)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        s = size / 64.0
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(33, 150, 243))
        p.drawRoundedRect(QRectF(2 * s, 2 * s, 60 * s, 60 * s), 12 * s, 12 * s)
        # person
        p.setBrush(QColor(255, 255, 255))
        p.drawEllipse(QPointF(26 * s, 20 * s), 6.5 * s, 6.5 * s)
        body = QPainterPath()
        body.addRoundedRect(QRectF(17 * s, 28 * s, 18 * s, 22 * s), 7 * s, 7 * s)
        p.drawPath(body)
        # lens
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.setPen(QPen(QColor(0, 230, 118), 5 * s))
        p.drawEllipse(QPointF(38 * s, 36 * s), 11 * s, 11 * s)
        p.setPen(QPen(QColor(0, 230, 118), 7 * s, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        p.drawLine(QPointF(46 * s, 44 * s), QPointF(55 * s, 53 * s))
        p.end()
        icon.addPixmap(pix)
    return icon
