"""The timeline under the video: every hit segment along the video, coloured by score.

Hits are packed into rows (best hits first, a hit goes to the first row where
none of its segments overlaps another hit's), so overlapping people stay
visible. A hit is a person: all of their segments (over all their linked tracks)
share one lane. A vertical marker shows the current frame. Clicking a segment emits
:attr:`Timeline.hitClicked`; clicking or dragging elsewhere emits
:attr:`Timeline.seekRequested`.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QHelpEvent, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from core.text import format_time, person_label
from core.types import Hit
from GUI.video_view import HIGHLIGHT
from GUI.window_model import DEFAULT_SCORE_RANGE

RULER_H = 16
ROW_MAX_H = 12
ROW_MIN_H = 3
ROW_GAP = 2
MARGIN_X = 8


def score_color(score: float, low: float = 0.3, high: float = 0.9) -> QColor:
    """Colour for a match score: red (weak) through yellow to green (strong)."""
    t = 0.0 if high <= low else min(1.0, max(0.0, (score - low) / (high - low)))
    return QColor.fromHsvF(t * 0.36, 0.85, 0.95)


def pack_rows(hits: Sequence[Hit]) -> list[list[Hit]]:
    """Put hits into rows so that no two hits in a row overlap in time (greedy, in the given order)."""
    rows: list[list[tuple[int, int]]] = []
    placed: list[list[Hit]] = []
    for hit in hits:
        spans = [(s.start_frame, s.end_frame) for s in hit.segments] or [(hit.best_frame, hit.best_frame)]
        for r, taken in enumerate(rows):
            if all(b < s0 - 1 or a > s1 + 1 for a, b in spans for s0, s1 in taken):
                taken.extend(spans)
                placed[r].append(hit)
                break
        else:
            rows.append(list(spans))
            placed.append([hit])
    return placed


class Timeline(QWidget):
    """Hit segments along the video with the current-position marker.

    Signals:
        hitClicked(object): A ``core.types.Hit`` whose segment was clicked.
        seekRequested(int): A frame index clicked or dragged to outside any segment.
    """

    hitClicked = Signal(object)
    seekRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._frames = 0
        self._fps = 0.0
        self._position = 0
        self._hits: tuple[Hit, ...] = ()
        self._rows: list[list[Hit]] = []
        self._selected: Hit | None = None
        self._score_range = DEFAULT_SCORE_RANGE
        self._dragging = False
        self.setMouseTracking(True)
        self.setMinimumHeight(RULER_H + 3 * (ROW_MAX_H + ROW_GAP) + 8)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(RULER_H + 5 * (ROW_MAX_H + ROW_GAP) + 8)

    def sizeHint(self) -> QSize:  # noqa: D102 - Qt override
        return QSize(600, self.minimumHeight())

    # ------------------------------------------------------------------ state
    def set_video(self, frame_count: int, fps: float) -> None:
        """Set the length of the video shown (clears hits and selection)."""
        self._frames = max(0, int(frame_count))
        self._fps = float(fps) if fps and fps > 0 else 0.0
        self._position = 0
        self.set_hits(())

    def set_hits(self, hits: Sequence[Hit], score_range: tuple[float, float] | None = None) -> None:
        """Show these hits (all of the current video, best first)."""
        self._hits = tuple(hits)
        self._rows = pack_rows(self._hits)
        if score_range is not None:
            self._score_range = score_range
        if self._selected is not None and self._selected not in self._hits:
            self._selected = None
        self.update()

    def set_selected(self, hit: Hit | None) -> None:
        """Outline this hit's segments (``None`` for none)."""
        self._selected = hit
        self.update()

    def set_position(self, frame: int) -> None:
        """Move the current-position marker."""
        if frame != self._position:
            self._position = int(frame)
            self.update()

    @property
    def hits(self) -> tuple[Hit, ...]:
        """The hits drawn."""
        return self._hits

    @property
    def position(self) -> int:
        """The frame the marker is at."""
        return self._position

    # ------------------------------------------------------------------ geometry
    def _track(self) -> QRectF:
        return QRectF(MARGIN_X, RULER_H, max(1.0, self.width() - 2 * MARGIN_X), self.height() - RULER_H - 4)

    def _row_h(self) -> float:
        n = max(1, len(self._rows))
        avail = self._track().height() - 2
        return max(float(ROW_MIN_H), min(float(ROW_MAX_H), avail / n - ROW_GAP))

    def x_of(self, frame: float) -> float:
        """Widget x of a frame index."""
        track = self._track()
        if self._frames <= 1:
            return track.left()
        return track.left() + track.width() * frame / (self._frames - 1)

    def frame_at(self, x: float) -> int:
        """Frame index under widget x (clamped)."""
        track = self._track()
        if self._frames <= 1:
            return 0
        t = (x - track.left()) / track.width()
        return int(round(min(1.0, max(0.0, t)) * (self._frames - 1)))

    def segment_rects(self, hit: Hit) -> list[QRectF]:
        """Widget rectangles of a hit's segments (empty if the hit is not shown)."""
        track = self._track()
        rh = self._row_h()
        for r, row in enumerate(self._rows):
            if any(h is hit for h in row):
                y = track.top() + 1 + r * (rh + ROW_GAP)
                if y + rh > track.bottom() + 0.5:
                    return []  # rows beyond the widget are not drawn
                segs = hit.segments or ()
                spans = [(s.start_frame, s.end_frame) for s in segs] or [(hit.best_frame, hit.best_frame)]
                out = []
                for a, b in spans:
                    x1 = self.x_of(a)
                    x2 = max(self.x_of(b), x1 + 3)
                    out.append(QRectF(x1, y, x2 - x1, rh))
                return out
        return []

    def hit_at(self, point: QPointF) -> Hit | None:
        """The hit whose segment is under a widget point (2 px tolerance), or ``None``."""
        for hit in self._hits:
            for rect in self.segment_rects(hit):
                if rect.adjusted(-2, -2, 2, 2).contains(point):
                    return hit
        return None

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: D102 - Qt override
        p = QPainter(self)
        pal = self.palette()
        p.fillRect(self.rect(), pal.window())
        track = self._track()
        p.fillRect(track, QColor(28, 31, 36))
        self._paint_ruler(p, track)
        low, high = self._score_range
        for hit in self._hits:
            color = score_color(hit.score, low, high)
            for rect in self.segment_rects(hit):
                p.fillRect(rect, color)
        if self._selected is not None:
            p.setPen(QPen(HIGHLIGHT.lighter(130), 2))
            p.setBrush(Qt.BrushStyle.NoBrush)
            for rect in self.segment_rects(self._selected):
                p.drawRect(rect.adjusted(-1, -1, 1, 1))
        if self._frames > 0:
            x = self.x_of(self._position)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            p.setPen(QPen(QColor(255, 255, 255), 2))
            p.drawLine(QPointF(x, track.top()), QPointF(x, track.bottom()))
            p.setBrush(QColor(255, 255, 255))
            p.setPen(Qt.PenStyle.NoPen)
            p.drawPolygon(QPolygonF([QPointF(x - 5, track.top() - 6), QPointF(x + 5, track.top() - 6),
                                     QPointF(x, track.top())]))
        if not self._hits and self._frames > 0:
            p.setPen(QColor(150, 155, 160))
            p.drawText(track, Qt.AlignmentFlag.AlignCenter, "No hits in this video yet")
        p.end()

    def _paint_ruler(self, p: QPainter, track: QRectF) -> None:
        if self._frames <= 1 or self._fps <= 0:
            return
        duration = self._frames / self._fps
        # About one labelled tick per 90 px.
        steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
        want = duration / max(1.0, track.width() / 90)
        step = next((s for s in steps if s >= want), steps[-1])
        p.setPen(self.palette().color(self.foregroundRole()))
        font = p.font()
        font.setPointSizeF(max(6.5, font.pointSizeF() * 0.8))
        p.setFont(font)
        t = 0.0
        while t <= duration + 1e-6:
            x = self.x_of(t * self._fps)
            p.drawLine(QPointF(x, RULER_H - 4), QPointF(x, RULER_H))
            label = format_time(t, precise=False)
            left = min(max(0.0, x - 30), self.width() - 60.0)
            p.drawText(QRectF(left, 0, 60, RULER_H - 4), Qt.AlignmentFlag.AlignCenter, label)
            t += step

    # ------------------------------------------------------------------ mouse
    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: D102 - Qt override
        if event.button() == Qt.MouseButton.LeftButton and self._frames > 0:
            hit = self.hit_at(event.position())
            if hit is not None:
                self.hitClicked.emit(hit)
            else:
                self._dragging = True
                self.seekRequested.emit(self.frame_at(event.position().x()))
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: D102 - Qt override
        if self._dragging:
            self.seekRequested.emit(self.frame_at(event.position().x()))
        hit = self.hit_at(event.position())
        self.setCursor(Qt.CursorShape.PointingHandCursor if hit is not None else Qt.CursorShape.ArrowCursor)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: D102 - Qt override
        self._dragging = False
        super().mouseReleaseEvent(event)

    def event(self, e) -> bool:  # noqa: D102 - Qt override
        if e.type() == e.Type.ToolTip and isinstance(e, QHelpEvent):
            hit = self.hit_at(QPointF(e.pos()))
            if hit is not None:
                segs = hit.segments
                span = (f"{format_time(segs[0].start_s)} - {format_time(segs[-1].end_s)}" if segs
                        else format_time(hit.best_time_s))
                label = person_label(hit.track_id, hit.track_ids)
                QToolTip.showText(e.globalPos(), f"{label}  score {hit.score:.2f}\n{span}", self)
            else:
                QToolTip.hideText()
                e.ignore()
            return True
        return super().event(e)
