"""The review loop as a new user meets it (issue 12): keys, one person per query, photos checked when
added, small windows, library clicks, words, settings, the details, and clips exported as evidence.

Offscreen, the real window, the real models, the real vtest.avi library of the session (conftest).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QPushButton, QStyle, QStyleOptionViewItem

from core.clips import ExportOptions
from core.search import SCORE_FLOOR
from core.video import open_source
from GUI.settings_dialog import SettingsDialog
from GUI.timeline import score_color
from GUI.window_model import norm_path
from GUI.window_ui import MINIMUM_SIZE
from tests.GUI.conftest import WORK_TIMEOUT_MS
from tests.GUI.helpers import area, drag_around, draw_query, search, seek_shown, wait_shown
from tests.realdata import cut_clip


def _active(w, qtbot) -> None:
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=5000)


def _checked(w, qtbot) -> None:
    qtbot.waitUntil(lambda: not w.query.busy, timeout=WORK_TIMEOUT_MS)


def _errors(w) -> list[str]:
    return [t for level, t in w.messages if level == "error"]


def _click_row(qtbot, tree, item, double: bool = False) -> None:
    tree.scrollToItem(item)
    qtbot.waitUntil(lambda: not tree.visualItemRect(item).isEmpty(), timeout=5000)
    pos = tree.visualItemRect(item).center()
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def _other_person(w, qtbot, frame: int, not_track: int):
    """Seek to ``frame`` and return the largest upright person there who is not track ``not_track``."""
    seek_shown(w, qtbot, frame, boxes=True)
    upright = [o for o in w.view.overlays if (o.box[3] - o.box[1]) > 1.5 * (o.box[2] - o.box[0])
               and o.track_id != not_track]
    assert upright, w.view.overlays
    return max(upright, key=lambda o: area(o.box))


# --------------------------------------------------------------------------- 1. keys


def test_playback_keys_work_after_clicking_a_hit_and_up_down_move_between_hits(make_window, indexed_db,
                                                                             indexed_session, qtbot):
    w = make_window(indexed_db)
    _active(w, qtbot)
    assert w.open_video(indexed_session.clip)
    draw_query(w, qtbot, frame=20)
    search(w, qtbot)
    w.results.set_threshold(SCORE_FLOOR)
    hits = w.results.visible_hits()
    assert len(hits) >= 2
    tree = w.results.tree
    _click_row(qtbot, tree, w.results.item_for(hits[0]))
    wait_shown(w, qtbot, hits[0].best_frame)
    assert tree.hasFocus()
    for key, frame in ((Qt.Key.Key_Right, hits[0].best_frame + 1), (Qt.Key.Key_Right, hits[0].best_frame + 2),
                       (Qt.Key.Key_Left, hits[0].best_frame + 1)):
        QTest.keyClick(tree, key)
        assert w.player.frame_index == frame
    QTest.keyClick(tree, Qt.Key.Key_Space)
    assert w.player.playing
    QTest.keyClick(tree, Qt.Key.Key_Space)
    assert not w.player.playing
    # Up and Down stay the list's: the next hit is selected and shown.
    QTest.keyClick(tree, Qt.Key.Key_Down)
    assert w.model.selected_hit == hits[1] and tree.currentItem() is w.results.item_for(hits[1])
    assert w.player.frame_index == hits[1].best_frame
    # The threshold slider keeps the arrows while it has the keyboard.
    w.results.slider.setFocus()
    before, frame = w.results.threshold, w.player.frame_index
    QTest.keyClick(w.results.slider, Qt.Key.Key_Right)
    assert w.results.threshold > before and w.player.frame_index == frame


# --------------------------------------------------------------------------- 2. one query, one person


def test_one_query_is_one_person_and_clear_clears_the_search(make_window, indexed_db, indexed_session, qtbot):
    w = make_window(indexed_db)
    assert w.open_video(indexed_session.clip)
    first = draw_query(w, qtbot, frame=20)                       # nobody there yet: no question
    (photo,) = w.queries.photos()
    assert not w.queries.asking
    _checked(w, qtbot)
    assert "used as drawn" in w.queries.notes.text() and "frame 20 of" in w.queries.notes.text()
    assert ".png" not in w.queries.notes.text()
    result = search(w, qtbot)
    w.show_hit(result.hits[0])
    wait_shown(w, qtbot, result.hits[0].best_frame)
    assert any(o.kind == "selected" for o in w.view.overlays)

    # Another person drawn: asked, not averaged in silently.
    other = _other_person(w, qtbot, 300, first.track_id)
    drag_around(w.view, other.box)
    qtbot.waitUntil(lambda: w.queries.asking, timeout=5000)
    assert "same person" in w.queries.question_text.text() and "frame 300" in w.queries.question_text.text()
    assert w.queries.photos() == [photo]
    QTest.mouseClick(w.queries.answer_button("add"), Qt.MouseButton.LeftButton)
    assert len(w.queries.photos()) == 2 and w.model.result is result
    _checked(w, qtbot)

    # Cancel: nothing added, and the drawn box is not kept on disk.
    seek_shown(w, qtbot, 301)
    drag_around(w.view, other.box)
    qtbot.waitUntil(lambda: w.queries.asking, timeout=5000)
    kept = set((indexed_db.parent / "queries").iterdir())
    QTest.mouseClick(w.queries.answer_button("cancel"), Qt.MouseButton.LeftButton)
    assert len(w.queries.photos()) == 2
    assert len(set((indexed_db.parent / "queries").iterdir())) == len(kept) - 1

    # New person: the photos are replaced and the old search goes: hits, timeline, green box.
    seek_shown(w, qtbot, 302)
    drag_around(w.view, other.box)
    qtbot.waitUntil(lambda: w.queries.asking, timeout=5000)
    QTest.mouseClick(w.queries.answer_button("new"), Qt.MouseButton.LeftButton)
    (new_photo,) = w.queries.photos()
    assert "f000302" in new_photo
    assert w.model.result is None and w.results.tree.topLevelItemCount() == 0 and w.timeline.hits == ()
    assert not [o for o in w.view.overlays if o.kind in ("selected", "match")]
    _checked(w, qtbot)

    # Clear: the photos and the search made with them.
    result = search(w, qtbot)
    assert result.hits and w.timeline.hits
    QTest.mouseClick(w.queries.clear_button, Qt.MouseButton.LeftButton)
    assert w.queries.photos() == [] and w.model.result is None
    assert w.results.tree.topLevelItemCount() == 0 and w.timeline.hits == ()
    assert not w.notes_label.isVisible() and not w.queries.notes.isVisible()


# --------------------------------------------------------------------------- 3. photos checked when added


def test_pictures_without_a_person_are_refused_when_added_naming_what_the_user_gave(make_window, indexed_db,
                                                                                   indexed_session, qtbot,
                                                                                   tmp_path):
    w = make_window(indexed_db)
    with open_source(indexed_session.clip) as src:
        frame6 = src.read(6).image
    bag = tmp_path / "bag.png"
    cv2.imwrite(str(bag), frame6[480:535, 60:170])               # a yellow bag lying on the lawn
    w.query.add_files([str(bag)])
    _checked(w, qtbot)
    assert w.queries.photos() == []
    error = _errors(w)[-1]
    assert error.startswith("bag.png: no standing or walking person found") and str(tmp_path) not in error

    # A box drawn on the grass: refused at once, named as the box drawn, no internal file in sight.
    assert w.open_video(indexed_session.clip)
    seek_shown(w, qtbot, 6)
    drag_around(w.view, (110.0, 360.0, 300.0, 470.0))
    _checked(w, qtbot)
    assert w.queries.photos() == []
    error = _errors(w)[-1]
    assert error.startswith("The box drawn at frame 6 of vtest.avi:") and "person" in error
    assert ".png" not in error and "queries" not in error
    assert not list((indexed_db.parent / "queries").glob("*.png"))  # not kept
    assert not any("Added the person" in t for _, t in w.messages)

    # A person drawn is checked and said so; the search finds them.
    draw_query(w, qtbot, frame=20)
    _checked(w, qtbot)
    assert any(t == "Added the person in the box drawn at frame 20 of vtest.avi; press Search to find them."
               for _, t in w.messages)
    assert search(w, qtbot).hits
    assert w.queries.notes.isVisible() and not w.notes_label.text()  # the photo's note is the panel's
    w.queries.list.item(0).setSelected(True)
    QTest.mouseClick(w.queries.remove_button, Qt.MouseButton.LeftButton)
    assert w.queries.photos() == [] and not w.queries.notes.isVisible()  # no note left of a photo gone


# --------------------------------------------------------------------------- 4. small windows


def test_small_windows_keep_labels_whole_and_the_hits_list_usable(make_window, indexed_db, indexed_session,
                                                                 qtbot):
    w = make_window(indexed_db)
    w.resize(640, 400)
    assert (w.width(), w.height()) == MINIMUM_SIZE
    assert w.open_video(indexed_session.clip)
    draw_query(w, qtbot, frame=20)
    search(w, qtbot)
    w.results.set_threshold(SCORE_FLOOR)
    for size in (MINIMUM_SIZE, (1024, 640)):
        w.resize(*size)
        qtbot.waitUntil(lambda s=size: (w.width(), w.height()) == s, timeout=5000)
        QApplication.processEvents()
        cut = [lab.text() for lab in w.findChildren(QLabel) if lab.isVisible() and lab.text()
               and not lab.wordWrap() and lab.width() < lab.sizeHint().width()]
        cut += [b.text() for b in w.findChildren(QPushButton)
                if b.isVisible() and b.width() < b.sizeHint().width()]
        assert not cut, (size, cut)
        tree = w.results.tree
        rects = [tree.visualItemRect(w.results.item_for(h)) for h in w.results.visible_hits()]
        rows = [r for r in rects if 0 <= r.top() and r.bottom() <= tree.viewport().height()]
        seen = max(tree.fontMetrics().horizontalAdvance(w.results.item_for(h).text(2))
                   for h in w.results.visible_hits())
        print(f"\n[GUI] {size[0]}x{size[1]}: {len(rows)} hit rows whole in the list, Seen column "
              f"{tree.columnWidth(2)} px for {seen} px of text")
        assert len(rows) >= (3 if size == (1024, 640) else 2)
        # Whole: the column is as wide as its text and ends inside the list.
        assert tree.columnWidth(2) >= seen
        assert tree.header().sectionViewportPosition(2) + tree.columnWidth(2) <= tree.viewport().width()


# --------------------------------------------------------------------------- 5. library clicks


def test_one_click_in_the_library_shows_a_video_or_reopens_a_search(make_window, indexed_db, indexed_session,
                                                                   qtbot):
    w = make_window(indexed_db)
    w.open_video(indexed_session.clip)
    draw_query(w, qtbot, frame=30)
    result = search(w, qtbot)
    w.close()

    w2 = make_window(indexed_db)
    assert "1 indexed video" in w2.welcome.text() and "past search" in w2.welcome.text()
    tree = w2.library.tree
    _click_row(qtbot, tree, tree.topLevelItem(0))
    assert w2.model.video_path == norm_path(indexed_session.clip)
    assert w2.stack.currentWidget() is w2.view
    tree.topLevelItem(0).setExpanded(True)  # the rows are made again as the video opens
    query_item = w2.library.query_item(result.query_id)
    assert "candidate" in query_item.text(0) and "hits" not in query_item.text(0)
    assert "click" in tree.toolTip().lower() and "double" not in tree.toolTip().lower()
    _click_row(qtbot, tree, query_item)
    qtbot.waitUntil(lambda: w2.model.result is not None, timeout=10000)
    assert w2.model.result.hits == result.hits and w2.model.result.query_id == result.query_id
    assert any(t.startswith(f"Search #{result.query_id} of ") for _, t in w2.messages)


# --------------------------------------------------------------------------- 6. words, 7. settings


def test_words_count_and_name_one_thing_each(indexed_session, make_window, indexed_db):
    labels = [lab for lab in indexed_session.labels if "Indexing" in lab]
    assert labels and not any("people tracked" in lab for lab in labels)
    assert any("tracks so far" in lab for lab in labels), labels
    w = make_window(indexed_db)
    assert w.library.summary.text() == "1 video, 0 checked for search"


def test_settings_name_what_is_in_use_and_say_what_a_change_does(make_window, indexed_db):
    w = make_window(indexed_db)
    assert w.act_settings.shortcut() == QKeySequence("Ctrl+,")
    dialog = SettingsDialog(w.settings, w.engine.providers, w.engine.notes, parent=w, db_in_use=w.db_path(),
                            db_from_command_line=True, indexed_videos=w.library.indexed_count())
    assert str(indexed_db.resolve()) in dialog.db_in_use.text() and "--db" in dialog.db_in_use.text()
    for combo in (dialog.detector, dialog.reid):
        assert combo.itemText(0).startswith("Default: ") and ".onnx)" in combo.itemText(0)
    assert "again" in dialog.consequence.text()
    if w.settings.sampling == "stride":
        dialog.stride.setValue(w.settings.stride + 1)
    else:
        dialog.rate.setValue(w.settings.rate + 1)
    assert dialog.consequence.text().startswith("A new detector, precision or choice of frames: the video "
                                                "indexed so far is indexed again")
    dialog.reject()


# --------------------------------------------------------------------------- 9. the details


def test_details_slider_width_playhead_text_match_colours_start_folder_log_levels(make_window, indexed_db,
                                                                                  indexed_session, qtbot,
                                                                                  tmp_path, vtest_path,
                                                                                  caplog):
    w = make_window(indexed_db)
    folder = tmp_path / "cameras"
    folder.mkdir()
    clip = cut_clip(vtest_path, folder / "gate.mp4", 0, 40)
    assert w.open_video(clip)
    assert w.dialogs.start_folder() == str(folder.resolve())       # the next dialog starts where it is
    assert w.open_video(indexed_session.clip)
    widths = set()
    for frame in (0, 9, 99, 794):
        seek_shown(w, qtbot, frame)
        QApplication.processEvents()
        widths.add(w.position.width())
        marker = w.timeline.x_of(w.timeline.position)
        rect = w.timeline.empty_text_rect()
        assert not rect.left() <= marker <= rect.right(), (frame, marker, rect)
    assert len(widths) == 1, widths
    draw_query(w, qtbot, frame=20)
    result = search(w, qtbot)
    w.results.set_threshold(SCORE_FLOOR)
    w.show_hit(result.hits[0])
    # A frame where another hit (not the selected one) is boxed: its colour is the list's and the timeline's.
    hit = next(h for h in w.results.visible_hits()[1:] if h.segments)
    seek_shown(w, qtbot, hit.best_frame, boxes=True)
    qtbot.waitUntil(lambda: any(o.kind == "match" for o in w.view.overlays), timeout=10000)
    for o in (o for o in w.view.overlays if o.kind == "match"):
        c = score_color(o.score, *w.model.score_range)
        assert o.color == (c.red(), c.green(), c.blue())
    with caplog.at_level(logging.INFO, logger="GUI"):
        w.show_message("error", "Something failed.")
        w.show_message("info", "Something done.")
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels["Something failed."] == logging.ERROR and levels["Something done."] == logging.INFO


# --------------------------------------------------------------------------- export clips


def test_export_clips_runs_on_a_worker_and_writes_the_evidence(make_window, indexed_db, indexed_session,
                                                              qtbot, tmp_path):
    w = make_window(indexed_db)
    assert w.open_video(indexed_session.clip)
    draw_query(w, qtbot, frame=20)
    result = search(w, qtbot)
    assert w.act_export_clips.isEnabled()
    hits = w.model.visible_hits[:2]
    out = tmp_path / "evidence"
    with qtbot.waitSignal(w.evidence.exported, timeout=WORK_TIMEOUT_MS) as sig:
        assert w.evidence.start(hits, out, ExportOptions(clips=True, margin_s=0.5, boxes=True))
        assert w.evidence.busy and w.cancel_button.isVisible()
    report = sig.args[0]
    assert report.hits == len(hits) and report.clips and all(p.is_file() for p in report.files)
    assert any(type(p).__name__ == "ExportProgress" for p in w.progress_items)
    assert any(t.startswith(f"Exported {len(hits)} hit") and str(out) in t for _, t in w.messages)
    record = json.loads((out / "export.json").read_text(encoding="utf-8"))
    assert record["query"]["id"] == result.query_id
    assert record["threshold"] == pytest.approx(w.model.threshold)
    assert [h["track_id"] for h in record["hits"]] == [h.track_id for h in hits]
    assert Path(record["query"]["photos"][0]["path"]) == Path(w.queries.photos()[0])
    qtbot.waitUntil(lambda: not w.cancel_button.isVisible(), timeout=5000)
    assert not _errors(w)


def test_a_click_on_a_library_check_box_only_checks(make_window, indexed_db, qtbot):
    w = make_window(indexed_db)
    tree = w.library.tree
    item = tree.topLevelItem(0)
    opt = QStyleOptionViewItem()
    opt.initFrom(tree)
    opt.rect = tree.visualItemRect(item)
    opt.features = QStyleOptionViewItem.ViewItemFeature.HasCheckIndicator
    box = tree.style().subElementRect(QStyle.SubElement.SE_ItemViewItemCheckIndicator, opt, tree)
    before = item.checkState(0)
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=box.center())
    assert item.checkState(0) != before
    assert w.model.video_path is None and w.stack.currentWidget() is w.empty
