"""The whole app, offscreen, on real video and real models.

The real vtest.avi is indexed once per session through the window's worker (see
``conftest.indexed_session``); each test here works on a private copy of that
library. Cancelling is tested on vtest.avi too.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from core.search import SCORE_FLOOR
from core.types import IndexProgress
from GUI.main import parse_args
from GUI.main_window import SAMPLE_CLIP, SAMPLE_QUERY
from GUI.results import HIT_ROLE
from GUI.settings import AppSettings
from GUI.timeline import score_color
from GUI.window_model import norm_path
from tests.GUI.conftest import CLIP_FRAMES, WORK_TIMEOUT_MS, ini_settings_store
from tests.GUI.helpers import draw_query, highlight_at_left_edge, search, seek_shown, wait_shown
from tests.realdata import cut_clip

GUI_DIR = Path(__file__).resolve().parents[2] / "GUI"


# --------------------------------------------------------------------------- indexing through the worker


def test_session_indexing_ran_through_the_worker(indexed_session):
    s = indexed_session
    items = [p for p in s.progress if isinstance(p, IndexProgress)]
    assert items, s.messages
    assert not any(p.skipped for p in items)
    done = [p.frames_done for p in items]
    assert done == sorted(done), "frames done must only grow"
    assert items[-1].done and items[-1].frames_done == CLIP_FRAMES
    assert all(p.frames_total == CLIP_FRAMES for p in items)
    assert items[-1].tracks > 0
    # The status bar said frames, speed and ETA while it ran.
    assert any("fps" in label and "ETA" in label for label in s.labels), s.labels
    assert s.status == "indexed"
    assert not [m for m in s.messages if m[0] == "error"]


FROZEN_GUI_MS = 2000
"""A gap this long between timer ticks means the GUI thread did the work itself. The measured gap is
a figure (printed here and kept in the README), not a target: a loaded 2-core CI machine can stretch
a 20 ms tick to a few hundred milliseconds, while indexing on the GUI thread freezes it for the whole
run (tens of seconds)."""


def test_gui_thread_stays_responsive_while_indexing(indexed_session):
    s = indexed_session
    print(f"\n[GUI] largest gap between 20 ms timer ticks while indexing: {s.max_gap_ms:.0f} ms "
          f"(mean {s.mean_gap_ms:.1f} ms over {s.ticks} ticks, {s.wall_s:.1f} s of indexing)")
    assert s.ticks > 10
    assert s.max_gap_ms < FROZEN_GUI_MS


# --------------------------------------------------------------------------- the main story


def test_draw_person_search_and_click_hits(make_window, indexed_db, indexed_session, qtbot, tmp_path):
    w = make_window(indexed_db)
    assert w.stack.currentWidget() is w.empty  # empty state first
    assert w.open_video(indexed_session.clip)
    assert w.stack.currentWidget() is w.view
    person = draw_query(w, qtbot)
    (photo,) = w.queries.photos()
    assert Path(photo).parent == indexed_db.parent / "queries"
    crop = cv2.imread(photo)
    bw, bh = person.box[2] - person.box[0], person.box[3] - person.box[1]
    assert abs(crop.shape[1] - bw) <= 12 and abs(crop.shape[0] - bh) <= 12

    result = search(w, qtbot)
    # The clip was indexed already: the worker skipped indexing and only searched.
    assert any(isinstance(p, IndexProgress) and p.skipped for p in w.progress_items)
    assert result.hits
    best = result.hits[0]
    assert person.track_id in best.track_ids, "the person drawn must be the best hit (one of its tracks)"
    assert best.score > 0.85
    assert w.results.visible_hits() == result.above(w.results.threshold)
    tree = w.results.tree
    listed = sum(tree.topLevelItem(i).childCount() for i in range(tree.topLevelItemCount()))
    assert listed == len(w.results.visible_hits())

    # Every hit at or above the floor on the timeline once the slider goes down.
    w.results.set_threshold(SCORE_FLOOR)
    assert w.timeline.hits == result.above(SCORE_FLOOR)
    qtbot.waitUntil(lambda: w.results.has_thumbnail((best.video_path, best.track_id, best.best_frame)),
                    timeout=30000)
    seg = w.timeline.segment_rects(best)[0]
    marker = w.timeline.x_of(w.timeline.position)
    x = max((seg.left() + 3, seg.right() - 3), key=lambda v: abs(v - marker))
    timeline_img = w.timeline.grab().toImage()
    c = timeline_img.pixelColor(int(x), int(seg.center().y()))
    want = score_color(best.score, *w.results.score_range())
    assert abs(c.red() - want.red()) <= 2 and abs(c.green() - want.green()) <= 2

    # Click the best hit in the list: the video goes to its best frame and the box is highlighted.
    w.player.seek(0)
    item = w.results.item_for(best)
    rect = tree.visualItemRect(item)
    QTest.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: w.player.frame_index == best.best_frame, timeout=5000)
    wait_shown(w, qtbot, best.best_frame, boxes=True)
    assert w.frame_label.text() == f"frame {best.best_frame} / {CLIP_FRAMES - 1}"
    assert w.timeline.position == best.best_frame
    selected = [o for o in w.view.overlays if o.kind == "selected"]
    assert len(selected) == 1 and selected[0].track_id == best.track_id
    assert highlight_at_left_edge(w.view, selected[0].box)

    # Click a hit's segment on the timeline (every hit shown, after moving away from it).
    for hit in w.timeline.hits:
        w.player.seek(0 if hit.best_frame > 0 else 1)
        QTest.mouseClick(w.timeline, Qt.MouseButton.LeftButton,
                         pos=w.timeline.segment_rects(hit)[0].center().toPoint())
        qtbot.waitUntil(lambda h=hit: w.player.frame_index == h.best_frame, timeout=5000)
        wait_shown(w, qtbot, hit.best_frame)
        selected = [o for o in w.view.overlays if o.kind == "selected"]
        assert len(selected) == 1 and selected[0].track_id == hit.track_id
        assert w.results.tree.currentItem() is w.results.item_for(hit)

    # The threshold slider re-filters live, without searching again.
    with qtbot.assertNotEmitted(w.searchFinished, wait=100):
        w.results.slider.setValue(int(best.score * 100) + 1)
        assert w.results.visible_hits() == result.above(w.results.threshold)
        assert best not in w.timeline.hits
        w.results.slider.setValue(int(SCORE_FLOOR * 100))
        assert w.results.visible_hits() == result.hits
    assert not w.jobs.busy("index+search")

    # Export what is shown: JSON (the CLI's schema) and CSV, then the images.
    out = w.search.export_hits(tmp_path / "hits.json")
    data = json.loads(out.read_text(encoding="utf-8"))
    # the hits shown, best first, each with its own track, score, segments and box (read off the result)
    assert [(d["video"], d["track_id"], d["best_frame"]) for d in data] == [
        (h.video_path, h.track_id, h.best_frame) for h in result.hits]
    assert [d["score"] for d in data] == pytest.approx([h.score for h in result.hits], abs=1e-6)
    assert [len(d["segments"]) for d in data] == [len(h.segments) for h in result.hits]
    assert data[0]["best_box"] == pytest.approx(list(result.hits[0].best_box), abs=0.01)
    assert {"video", "track_id", "score", "segments", "best_frame", "best_box"} <= set(data[0])
    assert set(data[0]["segments"][0]) == {"start_s", "end_s", "start_frame", "end_frame"}
    rows = list(csv.DictReader((w.search.export_hits(tmp_path / "hits.csv")).open(encoding="utf-8")))
    assert len(rows) == sum(len(h.segments) for h in result.hits)
    folder = tmp_path / "images"
    with qtbot.waitSignal(w.jobFinished, timeout=60000, check_params_cb=lambda name: name == "save images"):
        assert w.search.save_images(folder)
    pngs = sorted(folder.glob("*.png"))
    assert len(pngs) == 2 * len(result.hits)
    assert cv2.imread(str(pngs[0])) is not None
    assert not [m for m in w.messages if m[0] == "error"], w.messages


def test_library_reopens_past_query_and_skips_indexed_video(make_window, indexed_db, indexed_session,
                                                            qtbot):
    w = make_window(indexed_db)
    info = w.library.info_for(str(indexed_session.clip))
    assert info is not None and info.status == "indexed" and info.tracks > 0
    w.open_video(indexed_session.clip)
    draw_query(w, qtbot, frame=30)
    result = search(w, qtbot, click=False)
    photos = w.queries.photos()
    assert w.library.query_item(result.query_id) is not None
    w.close()

    # A new window on the same library: double-click the past query.
    w2 = make_window(indexed_db)
    item = w2.library.query_item(result.query_id)
    assert item is not None
    item.parent().setExpanded(True)
    w2.library.tree.scrollToItem(item)
    qtbot.waitUntil(lambda: not w2.library.tree.visualItemRect(item).isEmpty(), timeout=5000)
    rect = w2.library.tree.visualItemRect(item)
    t0 = time.perf_counter()
    # A real double click: press, release, then the double-click event.
    QTest.mouseClick(w2.library.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    QTest.mouseDClick(w2.library.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: w2.model.result is not None, timeout=5000)
    print(f"\n[GUI] past query reopened in {1000 * (time.perf_counter() - t0):.0f} ms")
    assert w2.model.result.hits == result.hits
    assert w2.queries.photos() == photos
    assert w2.model.video_path == norm_path(indexed_session.clip)

    # Index only on an indexed video: one skipped progress item, nothing indexed again.
    n = len(w2.progress_items)
    with qtbot.waitSignal(w2.jobFinished, timeout=60000, check_params_cb=lambda n: n == "index+search"):
        assert w2.start_search(index_only=True)
    items = [p for p in w2.progress_items[n:] if isinstance(p, IndexProgress)]
    assert len(items) == 1 and items[0].skipped


def test_several_videos_searched_at_once_grouped_by_video(make_window, indexed_db, indexed_session, qtbot,
                                                          vtest_path, tmp_path):
    folder = tmp_path / "more"
    folder.mkdir()
    second = cut_clip(vtest_path, folder / "later.mp4", 100, 24)
    (folder / "notes.txt").write_text("not a video", encoding="utf-8")
    w = make_window(indexed_db)
    opened = w.open_folder(folder)
    assert opened == [str(second)]  # only the video files of the folder
    w.open_videos([indexed_session.clip, second])
    assert sorted(w.library.checked_paths()) == sorted([norm_path(indexed_session.clip), norm_path(second)])
    assert w.scope_label.text() == "Searches in 2 checked videos."
    draw_query(w, qtbot)
    result = search(w, qtbot)  # indexes later.mp4 through the worker, then searches both
    assert any(isinstance(p, IndexProgress) and not p.skipped and p.video_path.endswith("later.mp4")
               for p in w.progress_items)
    w.results.set_threshold(SCORE_FLOOR)
    videos = {norm_path(h.video_path) for h in result.hits}
    assert videos == {norm_path(indexed_session.clip), norm_path(second)}
    tree = w.results.tree
    assert tree.topLevelItemCount() == 2
    for i in range(tree.topLevelItemCount()):
        group = tree.topLevelItem(i)
        hits = [group.child(j).data(0, HIT_ROLE) for j in range(group.childCount())]
        assert {norm_path(h.video_path) for h in hits} == {norm_path(group.toolTip(0))}
    # A hit in the other video opens that video at the hit's frame.
    hit = next(h for h in result.hits if norm_path(h.video_path) == norm_path(second))
    w.show_hit(hit)
    assert w.model.video_path == norm_path(second) and w.player.frame_index == hit.best_frame
    assert w.library.info_for(str(second)).status == "indexed"


# --------------------------------------------------------------------------- cancelling, closing


def _integrity(db: Path) -> tuple[str, list[tuple[str, int]]]:
    con = sqlite3.connect(db)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        runs = con.execute("SELECT status, frames_done FROM index_runs").fetchall()
    finally:
        con.close()
    return ok, runs


def test_cancel_real_vtest_then_resume_and_close_while_working(make_window, vtest_path, tmp_path, qtbot):
    db = tmp_path / "lib" / "library.sqlite"
    w = make_window(db)
    assert w.open_video(vtest_path)
    assert w.frame_label.text() == "frame 0 / 794"
    w.player.seek(700)
    assert w.player.frame_index == 700 and w.time_label.text().startswith("1:10.0")
    assert w.start_search(index_only=True)
    assert w.cancel_button.isVisible() and w.act_cancel.isEnabled()
    qtbot.waitUntil(lambda: any(isinstance(p, IndexProgress) and p.frames_done >= 8
                                for p in w.progress_items), timeout=WORK_TIMEOUT_MS)
    t0 = time.perf_counter()
    loads = w.library_loads
    with qtbot.waitSignal(w.jobFinished, timeout=60000, check_params_cb=lambda n: n == "index+search"):
        QTest.mouseClick(w.cancel_button, Qt.MouseButton.LeftButton)
    stop_s = time.perf_counter() - t0
    qtbot.waitUntil(lambda: w.library_loads > loads, timeout=30000)
    print(f"\n[GUI] cancel -> worker finished in {stop_s * 1000:.0f} ms")
    assert stop_s < 10
    assert any(level == "info" and "Stopped indexing" in text for level, text in w.messages)
    assert not w.cancel_button.isVisible()
    ok, runs = _integrity(db)
    assert ok == "ok"
    assert len(runs) == 1 and runs[0][0] == "cancelled" and 0 < runs[0][1] < 795
    assert w.library.info_for(str(vtest_path)).status == "partial"
    done_before = runs[0][1]

    # Resume: the first progress item starts where the cancelled run stopped.
    n = len(w.progress_items)
    assert w.start_search(index_only=True)
    qtbot.waitUntil(lambda: any(isinstance(p, IndexProgress) for p in w.progress_items[n:]),
                    timeout=WORK_TIMEOUT_MS)
    first = next(p for p in w.progress_items[n:] if isinstance(p, IndexProgress))
    assert first.frames_done >= done_before > 0

    # Close the window while indexing: the worker stops, the database stays consistent.
    t0 = time.perf_counter()
    w.close()
    close_s = time.perf_counter() - t0
    print(f"[GUI] closing the window during indexing took {close_s * 1000:.0f} ms")
    assert not w.jobs.busy()
    ok, runs = _integrity(db)
    assert ok == "ok" and runs[0][0] == "cancelled" and runs[0][1] >= done_before


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_give_readable_messages(make_window, indexed_db, indexed_session, tmp_path, qtbot):
    w = make_window(indexed_db)

    def last_error() -> str:
        errors = [t for level, t in w.messages if level == "error"]
        return errors[-1] if errors else ""

    w.start_search()
    assert "Open a video first" in last_error()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x01 this is not a video" * 100)
    assert not w.open_video(broken)
    assert "broken.mp4" in last_error() and "\n" not in last_error()
    assert not w.open_video(tmp_path / "nowhere.avi")
    assert "nowhere.avi" in last_error() and "does not exist" in last_error()
    assert w.model.video_path is None and w.stack.currentWidget() is w.empty

    w.open_video(indexed_session.clip)
    w.start_search()
    assert "Add a photo of the person first" in last_error()
    assert not w.queries.add_photo(tmp_path / "missing.jpg")
    assert "missing.jpg" in last_error()

    # A photo without a person: the search refuses it with a sentence naming the photo.
    grey = tmp_path / "wall.png"
    cv2.imwrite(str(grey), np.full((200, 100, 3), 128, np.uint8))
    w.queries.add_photo(grey)
    with qtbot.waitSignal(w.jobFinished, timeout=WORK_TIMEOUT_MS,
                          check_params_cb=lambda n: n == "index+search"):
        assert w.start_search()
    assert "wall.png" in last_error() and "no person" in last_error()
    assert w.model.result is None


def test_missing_model_names_the_fetch_command(make_window, tmp_path, monkeypatch):
    w = make_window(tmp_path / "a.sqlite", settings=AppSettings(detector=str(tmp_path / "nope.onnx")))
    assert w.engine is None
    errors = [t for level, t in w.messages if level == "error"]
    assert errors and "nope.onnx" in errors[-1] and "python -m core.models fetch" in errors[-1]
    assert w.device_label.text() == "Models not loaded"

    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setenv("REID_MODELS_DIR", str(empty))
    w2 = make_window(tmp_path / "b.sqlite", settings=AppSettings())
    errors = [t for level, t in w2.messages if level == "error"]
    assert errors and "python -m core.models fetch" in errors[-1]


def test_gpu_requested_without_gpu_falls_back_and_says_so(make_window, tmp_path, model_settings):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: nothing to fall back from")
    from dataclasses import replace

    w = make_window(tmp_path / "lib.sqlite", settings=replace(model_settings, device="gpu"))
    assert w.engine is not None
    assert w.engine.providers == {"detector": "CPUExecutionProvider", "reid": "CPUExecutionProvider"}
    warnings = [t for level, t in w.messages if level == "warning"]
    assert warnings and "CUDA" in warnings[0] and "CPU" in warnings[0]
    assert w.device_label.text() == "Running on CPU"


def test_errors_open_a_message_box_when_interactive(make_window, tmp_path, qtbot):
    w = make_window(tmp_path / "lib.sqlite", interactive=True)
    w.open_video(tmp_path / "gone.mp4")
    box = w.last_message_box
    assert box is not None
    qtbot.waitUntil(box.isVisible, timeout=2000)
    assert "gone.mp4" in box.text()
    assert w.statusBar().currentMessage() == box.text()
    box.accept()
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=2000)


# --------------------------------------------------------------------------- settings, sample, start-up


def test_settings_apply_rebuilds_engine_and_window_geometry_is_remembered(make_window, tmp_path, qtbot,
                                                                          model_settings):
    from dataclasses import replace

    from GUI.settings_dialog import SettingsDialog

    settings_store = ini_settings_store(tmp_path / "remember.ini", model_settings)
    w = make_window(tmp_path / "lib.sqlite", settings_store=settings_store)
    dialog = SettingsDialog(w.settings, w.engine.providers, w.engine.notes, 0.7, w)
    assert "CPU" in dialog.providers.text()
    names = [dialog.detector.itemText(i) for i in range(dialog.detector.count())]
    assert any("yolov8s_people_normal_fall" in n for n in names) and names[-1] == "Other ONNX file..."
    assert dialog.detector.path() == w.settings.detector and dialog.reid.path() == w.settings.reid
    dialog.stride.setValue(3)
    dialog.threshold.setValue(0.62)
    new = dialog.result_settings()
    assert new == replace(w.settings, stride=3, threshold=0.62)
    dialog.reject()
    with qtbot.waitSignal(w.engineReady, timeout=120000):
        w.settings_control.apply(new)
    assert w.engine.settings.stride == 3
    assert w.results.threshold == pytest.approx(0.62)
    w.resize(1111, 733)
    w.close()
    w2 = make_window(tmp_path / "lib.sqlite", settings_store=ini_settings_store(tmp_path / "remember.ini"))
    assert (w2.width(), w2.height()) == (1111, 733)
    assert w2.settings.stride == 3 and w2.results.threshold == pytest.approx(0.62)


def test_a_change_of_settings_offers_to_index_the_videos_again(make_window, indexed_db, indexed_session,
                                                              qtbot):
    from dataclasses import replace

    w = make_window(indexed_db)
    assert w.library.info_for(str(indexed_session.clip)).status == "indexed"
    # The threshold alone changes no run: nothing to offer.
    w.settings_control.apply(replace(w.settings, threshold=0.7))
    assert not w.settings_control.stale
    # Every 3rd frame instead of every 2nd: the video's run no longer counts.
    loads = w.library_loads
    with qtbot.waitSignal(w.engineReady, timeout=WORK_TIMEOUT_MS):
        w.settings_control.apply(replace(w.settings, stride=w.settings.stride + 1))
    qtbot.waitUntil(lambda: w.library_loads > loads and bool(w.settings_control.stale),
                    timeout=WORK_TIMEOUT_MS)
    assert w.settings_control.stale == [str(indexed_session.clip)]
    text = w.settings_control.text
    assert text.startswith("1 video was indexed with other models or settings: it is indexed again")
    assert w.statusBar().currentMessage() == text
    # Index again now: that video is checked and indexed with the new settings (cancelled here: the
    # whole of it takes a minute; the session fixture times a full run through the same action).
    assert w.settings_control.index_now()
    assert w.model.scope == [norm_path(indexed_session.clip)]
    qtbot.waitUntil(lambda: any(isinstance(p, IndexProgress) and p.frames_done > 0
                                and norm_path(p.video_path) == norm_path(indexed_session.clip)
                                for p in w.progress_items), timeout=WORK_TIMEOUT_MS)
    assert w.engine.settings.stride == 3
    with qtbot.waitSignal(w.jobFinished, timeout=WORK_TIMEOUT_MS):
        w.cancel_work()
    assert not w.settings_control.stale


@pytest.mark.skipif(not (SAMPLE_CLIP.is_file() and SAMPLE_QUERY.is_file()), reason="sample assets missing")
def test_try_the_sample_opens_clip_and_photo_and_starts_the_search(make_window, tmp_path, qtbot):
    w = make_window(tmp_path / "lib.sqlite")
    assert w.sample_button.isVisible()
    help_actions = [a.text() for a in w.menuBar().actions()[-1].menu().actions()]
    assert "&Try the sample" in help_actions
    QTest.mouseClick(w.sample_button, Qt.MouseButton.LeftButton)
    assert w.model.video_path == norm_path(SAMPLE_CLIP)
    assert w.queries.photos() == [str(SAMPLE_QUERY.resolve())]
    # The search starts once the photo's person is found (a worker looks, as for every photo added).
    qtbot.waitUntil(lambda: w.jobs.busy("index+search"), timeout=WORK_TIMEOUT_MS)
    qtbot.waitUntil(lambda: any(isinstance(p, IndexProgress) and p.frames_done > 0 for p in w.progress_items),
                    timeout=WORK_TIMEOUT_MS)
    # Indexing the whole 20 s sample is too slow for a unit test; stop it (the screenshot script runs it all).
    with qtbot.waitSignal(w.jobFinished, timeout=60000, check_params_cb=lambda n: n == "index+search"):
        w.search.cancel()


def test_command_line(make_window, indexed_db, indexed_session, tmp_path, qtbot):
    args = parse_args(["--video", "a.mp4", "--video", "b.mp4", "--query", "p.jpg", "--db", "x.sqlite"])
    assert args.video == ["a.mp4", "b.mp4"] and args.query == ["p.jpg"] and args.db == "x.sqlite"
    assert not args.search
    # `cd GUI; python main.py --help` works: main.py fixes the import path itself.
    proc = subprocess.run([sys.executable, "main.py", "--help"], cwd=GUI_DIR, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "--query" in proc.stdout
    proc = subprocess.run([sys.executable, "-c", "import main, GUI.main_window, core.engine"], cwd=GUI_DIR,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    photo = tmp_path / "person.png"
    cap = cv2.VideoCapture(str(indexed_session.clip))
    ok, frame = cap.read()
    cap.release()
    assert ok
    cv2.imwrite(str(photo), frame[80:300, 300:420])
    w = make_window(indexed_db)
    w.open_initial([str(indexed_session.clip)], [str(photo)])
    assert w.model.video_path == norm_path(indexed_session.clip)
    assert w.queries.photos() == [str(photo.resolve())]
    assert w.search_button.isEnabled()  # ready to search


def test_timeline_seek_and_transport(make_window, indexed_db, indexed_session, qtbot):
    w = make_window(indexed_db)
    w.open_video(indexed_session.clip)
    x = round(w.timeline.x_of(30))
    # A pixel of the timeline spans more than one frame of a long video: the click lands on the
    # frame under that pixel, within a frame of 30.
    at = w.timeline.frame_at(x)
    assert abs(at - 30) <= 1
    QTest.mouseClick(w.timeline, Qt.MouseButton.LeftButton, pos=QPoint(x, w.timeline.height() - 6))
    assert w.player.frame_index == at and w.position.value() == at
    w.player.step(1)
    assert w.player.frame_index == at + 1
    w.player.step(-2)
    assert w.player.frame_index == at - 1
    w.position.setValue(10)
    assert w.player.frame_index == 10
    with qtbot.waitSignal(w.frameShown, timeout=5000, check_params_cb=lambda i: i >= 13):
        w.player.play()
    assert w.player.playing
    w.player.toggle_play()
    assert not w.player.playing
    w.player.seek(CLIP_FRAMES - 2)
    w.player.play()
    qtbot.waitUntil(lambda: not w.player.playing, timeout=5000)  # stops at the end
    assert w.player.frame_index == CLIP_FRAMES - 1
    # Boxes of the people are drawn (the clip is indexed) and they are inside the frame.
    seek_shown(w, qtbot, 20, boxes=True)
    assert w.view.overlays
    for o in w.view.overlays:
        assert 0 <= o.box[0] < o.box[2] <= 768 and 0 <= o.box[1] < o.box[3] <= 576
    assert w.view.overlay_at(QPointF(-5, -5)) is None
