"""One row per person, marks and "Find similar" in the real window (offscreen), on the session's vtest.avi."""

from __future__ import annotations

import cv2
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from core.video import open_source
from GUI.results import HIT_ROLE
from tests.GUI.conftest import WORK_TIMEOUT_MS
from tests.GUI.helpers import search


def press(w, qtbot, key: Qt.Key):
    """Press a key on the results list and wait for the re-ranked result."""
    tree = w.results.tree
    tree.setFocus()
    with qtbot.waitSignal(w.searchFinished, timeout=WORK_TIMEOUT_MS) as sig:
        QTest.keyClick(tree, key)
    return sig.args[0]


def test_people_marks_and_find_similar(make_window, indexed_db, indexed_session, qtbot, tmp_path):
    photo = tmp_path / "man.jpg"   # the man in the puffer jacket at 5.2 s (tests/core/test_end_to_end.py)
    with open_source(indexed_session.clip) as src:
        cv2.imwrite(str(photo), src.read(52).image[205:305, 490:545])
    w = make_window(indexed_db)
    w.activateWindow()
    assert w.open_video(indexed_session.clip)
    w.queries.add_photo(photo)
    result = search(w, qtbot)

    # One row per person: the man is one hit whose segments (several tracks) share one timeline lane.
    man = result.hits[0]
    assert len(man.track_ids) > 1 and len(man.segments) > 1
    item = w.results.item_for(man)
    assert item.text(0) == "Person: tracks " + ", ".join(map(str, man.track_ids))
    lanes = {round(r.top()) for r in w.timeline.segment_rects(man)}
    assert len(w.timeline.segment_rects(man)) == len(man.segments) and len(lanes) == 1

    # Nobody above the threshold: the panel says so with the best score, and what to do.
    w.results.set_threshold(1.0)
    text = w.results.count_label.text()
    assert text.startswith(f"Nobody reaches similarity 1.00: the best candidate scores {man.score:.2f}")
    assert "click" not in text.lower()
    w.results.set_threshold(0.0)

    # X on a row rejects that hit: re-ranked at once, it leaves the list and is counted.
    other = result.hits[1]
    w.results.tree.setCurrentItem(w.results.item_for(other))
    rejected = press(w, qtbot, Qt.Key.Key_X)
    assert rejected.query_id == result.query_id
    assert [h.track_ids for h in rejected.rejected] == [other.track_ids]
    shown = [w.results.tree.topLevelItem(0).child(i).data(0, HIT_ROLE)
             for i in range(w.results.tree.topLevelItem(0).childCount())]
    assert other.track_ids not in [h.track_ids for h in shown]
    assert "1 rejected" in w.results.count_label.text()

    # C confirms the man: a check mark, first whatever the threshold.
    again = next(h for h in rejected.hits if h.track_ids == man.track_ids)
    w.results.tree.setCurrentItem(w.results.item_for(again))
    confirmed = press(w, qtbot, Qt.Key.Key_C)
    best = confirmed.hits[0]
    assert best.track_ids == man.track_ids and best.mark == "confirmed"
    assert w.results.item_for(best).text(0).startswith("\u2714 Person: tracks")
    w.results.set_threshold(1.0)
    assert w.results.visible_hits() == (best,)
    w.results.set_threshold(0.0)

    # Find similar, from the context menu of a hit: a new query, the hit's person first (confirmed).
    rect = w.results.tree.visualItemRect(w.results.item_for(best))
    w.results.tree.customContextMenuRequested.emit(rect.center())
    menu = w.results.context_menu
    names = [a.text() for a in menu.actions() if a.text()]
    assert names == ["Find similar", "This is the person", "Not the person", "Take the mark back"]
    menu.close()
    with qtbot.waitSignal(w.searchFinished, timeout=WORK_TIMEOUT_MS) as sig:
        next(a for a in menu.actions() if a.text() == "Find similar").trigger()
    similar = sig.args[0]
    assert similar.query_id != result.query_id and similar.photos[0].startswith("<similar to vtest.avi track")
    assert similar.hits[0].track_ids == man.track_ids and similar.hits[0].mark == "confirmed"
    assert w.results.result is similar

    # The marked query reopens with its marks.
    reopened = w.search.reopen(result.query_id)
    assert reopened.hits == confirmed.hits and reopened.rejected == confirmed.rejected
