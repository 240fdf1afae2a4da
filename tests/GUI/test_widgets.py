"""The custom widgets on their own: video view picking and painting, timeline, query panel."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QRect, Qt, QUrl
from PySide6.QtGui import QColor, QDropEvent
from PySide6.QtTest import QTest

from core.types import Hit, Segment
from GUI.query_panel import QueryPanel
from GUI.timeline import Timeline, pack_rows
from GUI.video_view import HIGHLIGHT, OverlayBox, VideoView
from GUI.workers import bgr_to_qimage, crop_box


def _hit(track: int, score: float, spans: list[tuple[int, int]], best: int, fps: float = 10.0) -> Hit:
    segs = tuple(Segment(a / fps, b / fps, a, b) for a, b in spans)
    return Hit(1, "/videos/walk.mp4", track, score, segs, best, best / fps, (100.0, 50.0, 160.0, 250.0))


@pytest.fixture
def frame_bgr(vtest_path):
    cap = cv2.VideoCapture(str(vtest_path))
    ok, image = cap.read()
    cap.release()
    assert ok
    return image


def _shown_view(qtbot, width: int, height: int) -> VideoView:
    """A VideoView of the given size, shown and exposed (offscreen)."""
    view = VideoView()
    qtbot.addWidget(view)
    view.resize(width, height)
    view.show()
    qtbot.waitExposed(view)
    return view


def test_bgr_to_qimage_keeps_colours_and_owns_pixels():
    img = np.zeros((4, 6, 3), np.uint8)
    img[..., 0] = 255  # blue in BGR
    q = bgr_to_qimage(img)
    img[...] = 0  # the QImage must not share memory
    assert (q.width(), q.height()) == (6, 4)
    assert q.pixelColor(2, 2) == QColor(0, 0, 255)


def test_crop_box_clamps_to_image():
    img = np.zeros((100, 80, 3), np.uint8)
    assert crop_box(img, (-20, -20, 500, 500)).shape == (100, 80, 3)
    assert crop_box(img, (10, 10, 30, 60), margin=0.0).shape == (50, 20, 3)


def test_video_view_drag_gives_image_rectangle(qtbot, frame_bgr):
    view = _shown_view(qtbot, 768 // 2 + 100, 576 // 2)  # half scale, letterboxed horizontally
    view.set_frame(bgr_to_qimage(frame_bgr))
    target = view.image_rect()
    assert target.height() == pytest.approx(288, abs=1)
    p1 = view.to_widget(200, 100).toPoint()
    p2 = view.to_widget(300, 400).toPoint()
    with qtbot.waitSignal(view.cropSelected, timeout=2000) as sig:
        QTest.mousePress(view, Qt.MouseButton.LeftButton, pos=p1)
        QTest.mouseMove(view, QPoint((p1.x() + p2.x()) // 2, (p1.y() + p2.y()) // 2))
        QTest.mouseMove(view, p2)
        QTest.mouseRelease(view, Qt.MouseButton.LeftButton, pos=p2)
    rect: QRect = sig.args[0]
    assert abs(rect.left() - 200) <= 3 and abs(rect.top() - 100) <= 3
    assert abs(rect.right() + 1 - 300) <= 3 and abs(rect.bottom() + 1 - 400) <= 3


def test_video_view_click_is_not_a_crop_but_double_click_on_box_is(qtbot, frame_bgr):
    view = _shown_view(qtbot, 768, 576)
    view.set_frame(bgr_to_qimage(frame_bgr), (OverlayBox((100, 100, 150, 220), "#3", "person", 3),))
    inside = view.to_widget(120, 150).toPoint()
    with qtbot.assertNotEmitted(view.cropSelected, wait=50):
        QTest.mouseClick(view, Qt.MouseButton.LeftButton, pos=inside)
    with qtbot.waitSignal(view.cropSelected, timeout=2000) as sig:
        QTest.mouseDClick(view, Qt.MouseButton.LeftButton, pos=inside)
    assert sig.args[0] == QRect(100, 100, 50, 120)


def test_video_view_paints_highlight(qtbot, frame_bgr):
    view = _shown_view(qtbot, 768, 576)
    box = (300.0, 200.0, 360.0, 380.0)
    view.set_frame(bgr_to_qimage(frame_bgr), (OverlayBox(box, "Match 0.91", "selected", 7, 0.91),))
    img = view.grab().toImage()
    edge = view.box_to_widget(box)
    # Middle of the left edge (4 px pen) is the highlight colour; the box inside is the video.
    c = img.pixelColor(int(round(edge.left())), int(edge.center().y()))
    assert (c.red(), c.green(), c.blue()) == (HIGHLIGHT.red(), HIGHLIGHT.green(), HIGHLIGHT.blue())
    inner = img.pixelColor(int(edge.center().x()), int(edge.center().y()))
    assert inner != HIGHLIGHT


def test_pack_rows_never_overlaps():
    hits = [_hit(1, 0.9, [(0, 50)], 10), _hit(2, 0.8, [(40, 90)], 50), _hit(3, 0.7, [(60, 100)], 70),
            _hit(4, 0.6, [(120, 130)], 125)]
    rows = pack_rows(hits)
    assert [[h.track_id for h in r] for r in rows] == [[1, 3, 4], [2]]


def test_timeline_click_segment_and_empty_space(qtbot):
    tl = Timeline()
    qtbot.addWidget(tl)
    tl.resize(800, tl.height())
    tl.show()
    qtbot.waitExposed(tl)
    tl.set_video(200, 10.0)
    a, b = _hit(1, 0.9, [(10, 40), (120, 150)], 130), _hit(2, 0.5, [(30, 60)], 45)
    tl.set_hits([a, b])
    rects = tl.segment_rects(a)
    assert len(rects) == 2 and rects[1].left() > rects[0].right()
    with qtbot.waitSignal(tl.hitClicked, timeout=1000) as sig:
        QTest.mouseClick(tl, Qt.MouseButton.LeftButton, pos=rects[1].center().toPoint())
    assert sig.args[0] is a
    with qtbot.waitSignal(tl.hitClicked, timeout=1000) as sig:
        QTest.mouseClick(tl, Qt.MouseButton.LeftButton, pos=tl.segment_rects(b)[0].center().toPoint())
    assert sig.args[0] is b
    x = int(tl.x_of(180))
    with qtbot.waitSignal(tl.seekRequested, timeout=1000) as sig:
        QTest.mouseClick(tl, Qt.MouseButton.LeftButton, pos=QPoint(x, tl.height() - 6))
    assert abs(sig.args[0] - 180) <= 1
    # The marker is drawn where the position is: a white line at x of frame 100.
    tl.set_position(100)
    img = tl.grab().toImage()
    mx = int(round(tl.x_of(100)))
    assert img.pixelColor(mx, tl.height() - 8).lightness() > 230
    assert img.pixelColor(mx + 20, tl.height() - 8).lightness() < 60  # empty track is dark
    assert tl.hit_at(QPointF(tl.x_of(190), rects[0].center().y())) is None


def test_query_panel_adds_real_photos_and_reports_bad_ones(qtbot, tmp_path, frame_bgr):
    panel = QueryPanel()
    qtbot.addWidget(panel)
    good = tmp_path / "person.png"
    cv2.imwrite(str(good), frame_bgr[100:300, 200:280])
    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image", encoding="utf-8")
    with qtbot.waitSignal(panel.changed, timeout=1000):
        assert panel.add_photo(good)
    assert panel.photos() == [str(good.resolve())]
    assert not panel.add_photo(good)  # no duplicates
    with qtbot.waitSignal(panel.problem, timeout=1000) as sig:
        assert not panel.add_photo(bad)
    assert "notes.jpg" in sig.args[0] and "cannot be read" in sig.args[0]
    with qtbot.waitSignal(panel.problem, timeout=1000) as sig:
        panel.add_photo(tmp_path / "missing.png")
    assert "not found" in sig.args[0]
    # Dropping files on the list: the image is added, the text file is reported.
    other = tmp_path / "second.jpg"
    cv2.imwrite(str(other), frame_bgr[200:400, 400:480])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(other)), QUrl.fromLocalFile(str(bad))])
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(panel.problem, timeout=1000):
        panel.list.dropEvent(drop)
    assert panel.photos() == [str(good.resolve()), str(other.resolve())]
    panel.list.item(0).setSelected(True)
    panel.remove_selected()
    assert panel.photos() == [str(other.resolve())]
    panel.clear()
    assert panel.photos() == []


