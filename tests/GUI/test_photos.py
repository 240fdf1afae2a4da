"""A folder of photos in the window: opened as photos, searched, a hit shown as its photo boxed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from core.search import DEFAULT_THRESHOLD
from core.types import IndexProgress
from GUI.results import HIT_ROLE
from tests.conftest import shared_file
from tests.GUI.helpers import highlight_at_left_edge, search, wait_shown
from tests.realdata import IDENTITY_0001, box_iou

MARKET = "reid_images/market1501_songwsx/full_frames"
QUERY_C6 = "reid_images/market1501_songwsx/query/0001_c6s1_009601_00.jpg"


def test_photo_folder_opened_searched_and_a_hit_shows_the_photo_boxed(make_window, qtbot, tmp_path):
    folder = tmp_path / "market photos"
    folder.mkdir()
    for photo in sorted(shared_file(MARKET).glob("*.jpg"))[:8]:          # 8 photos: a quick index
        (folder / photo.name).symlink_to(photo)
    w = make_window(tmp_path / "library.sqlite")
    assert w.open_folder(folder) == [str(folder)]                        # not interactive: the rule's answer
    assert w.image_folders.is_photos(folder) and w.player.photos
    assert w.player.frame_count == 8 and not w.timeline.isVisibleTo(w)  # photos without EXIF times
    wait_shown(w, qtbot, 0)
    assert w.frame_label.text() == "photo 0 / 7" and w.time_label.text() == ""   # no clock without EXIF
    w.query.add_files([str(shared_file(QUERY_C6))])
    qtbot.waitUntil(lambda: w.model.can_search, timeout=30000)
    labels = []
    w.progressShown.connect(lambda item: labels.append(w.progress_label.text()))
    result = search(w, qtbot)                                           # indexes the 8 photos, then searches
    photos = [p for p in w.progress_items if isinstance(p, IndexProgress)]
    assert photos and all(p.photos for p in photos) and photos[-1].frames_done == 8
    assert any("photos/s" in text and "people so far" in text for text in labels), labels
    shown = result.above(DEFAULT_THRESHOLD)
    assert len(shown) >= 6 and all(h.photo_path for h in shown)
    best = shown[0]
    her = IDENTITY_0001[Path(best.photo_path).stem]
    assert box_iou(np.array([her]), np.array([best.best_box]))[0, 0] >= 0.5
    assert w.library.tree.topLevelItemCount() >= 1
    # the hits list: one row per photo, labelled with the photo's name
    item = w.results.item_for(best)
    assert item.data(0, HIT_ROLE) == best and item.text(0).endswith(Path(best.photo_path).name)
    qtbot.waitUntil(lambda: w.results.has_thumbnail((best.video_path, best.track_id, best.best_frame)),
                    timeout=30000)
    # click it: the collection goes to her photo, large, with her box drawn
    target = best.best_frame if best.best_frame != 0 else 1
    w.player.seek(0 if target != 0 else 1)
    rect = w.results.tree.visualItemRect(item)
    QTest.mouseClick(w.results.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: w.player.frame_index == best.best_frame, timeout=5000)
    wait_shown(w, qtbot, best.best_frame, boxes=True)
    assert w.player.frame.image.shape[:2] == (1080, 1920)                 # the photo itself, full size
    selected = [o for o in w.view.overlays if o.kind == "selected"]
    assert len(selected) == 1 and np.allclose(selected[0].box, best.best_box, atol=1)
    assert highlight_at_left_edge(w.view, selected[0].box)


def test_opening_a_folder_of_images_asks_photos_or_video_frames(qapp, tmp_path):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from GUI.image_folders import ImageFolders, ask_kind

    seen = []

    def answer(button: str) -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(50, lambda: answer(button))             # not shown yet
            return
        seen.append(box.text())
        next(b for b in box.buttons() if b.text().startswith(button)).click()

    QTimer.singleShot(0, lambda: answer("Video frames"))
    assert ask_kind(None, str(tmp_path / "shots"), "photos", "its names are not one evenly numbered series") \
        == "sequence"
    assert "It looks like a photo collection (its names are not one evenly numbered series)" in seen[0]
    folders = ImageFolders(None, lambda: None, interactive=True)
    QTimer.singleShot(0, lambda: answer("Photos"))
    assert folders.choose(shared_file(MARKET)) == "photos" and folders.is_photos(shared_file(MARKET))
    assert "It looks like a photo collection" in seen[1]
