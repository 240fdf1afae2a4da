"""Helpers shared by the GUI tests: act on the window like a user would."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from GUI.video_view import HIGHLIGHT
from tests.GUI.conftest import WORK_TIMEOUT_MS


def area(box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def drag_around(view, box, pad: float = 4.0) -> None:
    """Drag a rectangle around an image-pixel box on the video view, like a user would."""
    p1 = view.to_widget(box[0] - pad, box[1] - pad).toPoint()
    p2 = view.to_widget(box[2] + pad, box[3] + pad).toPoint()
    QTest.mousePress(view, Qt.MouseButton.LeftButton, pos=p1)
    QTest.mouseMove(view, QPoint((p1.x() + p2.x()) // 2, (p1.y() + p2.y()) // 2))
    QTest.mouseMove(view, p2)
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, pos=p2)


def draw_query(w, qtbot, frame: int = 20):
    """Seek to ``frame``, drag a rectangle around its largest walking person; returns their overlay."""
    w.player.seek(frame)
    qtbot.waitUntil(lambda: len(w.view.overlays) > 0, timeout=5000)
    # The largest upright box: a walking person (the detector also reports a yellow bag lying on the grass).
    upright = [o for o in w.view.overlays if (o.box[3] - o.box[1]) > 1.5 * (o.box[2] - o.box[0])]
    assert upright, w.view.overlays
    person = max(upright, key=lambda o: area(o.box))
    with qtbot.waitSignal(w.queries.changed, timeout=5000):
        drag_around(w.view, person.box)
    return person


def search(w, qtbot, click: bool = True):
    """Press Search and wait for the result (and the library refresh that follows)."""
    loads = w.library_loads
    with qtbot.waitSignal(w.searchFinished, timeout=WORK_TIMEOUT_MS) as sig:
        if click:
            QTest.mouseClick(w.search_button, Qt.MouseButton.LeftButton)
        else:
            assert w.start_search()
    qtbot.waitUntil(lambda: w.library_loads > loads, timeout=30000)
    return sig.args[0]


def highlight_at_left_edge(view, box) -> bool:
    img = view.grab().toImage()
    edge = view.box_to_widget(box)
    c = img.pixelColor(int(edge.left()), int(edge.center().y()))
    return (c.red(), c.green(), c.blue()) == (HIGHLIGHT.red(), HIGHLIGHT.green(), HIGHLIGHT.blue())
