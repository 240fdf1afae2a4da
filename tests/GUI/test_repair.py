"""A damaged library in the window (offscreen, real models, a real library with pages overwritten):
the window says so, offers Repair, repairs on a worker when the user clicks it, and opens the
repaired library with its videos."""

from __future__ import annotations

import pytest

from tests.core.faultlib import counts, damage
from tests.GUI.conftest import WORK_TIMEOUT_MS
from tests.realdata import cut_clip


@pytest.fixture
def library(tmp_path, vtest_path, detector_model_path, reid_model_path):
    """A real library: 40 frames of vtest.avi indexed with the real models (path of the clip, of the db)."""
    from core.engine import Engine

    clip = cut_clip(vtest_path, tmp_path / "walk.mp4", 0, 40)
    db = tmp_path / "library" / "library.sqlite"
    with Engine(db, detector=detector_model_path, reid=reid_model_path, device="cpu") as engine:
        assert list(engine.index(clip))[-1].done
    return clip, db


def test_a_damaged_library_is_offered_repair_and_reopened(make_window, library, qtbot):
    clip, indexed_db = library
    before = counts(indexed_db)
    damage(indexed_db, "overwritten pages")
    w = make_window(indexed_db, interactive=True)
    assert w.engine is None and w.repair_prompt.damaged
    errors = [text for level, text in w.messages if level == "error"]
    assert len(errors) == 1 and str(indexed_db) in errors[0] and "is damaged" in errors[0]
    assert w.device_label.text() == "Library damaged"
    box = w.last_message_box
    qtbot.waitUntil(box.isVisible, timeout=5000)
    (repair,) = [b for b in box.buttons() if b.text() == "Repair"]
    with qtbot.waitSignal(w.libraryRefreshed, timeout=WORK_TIMEOUT_MS):
        repair.click()
    assert w.engine is not None and not w.repair_prompt.damaged
    assert any(level == "info" and text.startswith("Library repaired") for level, text in w.messages)
    assert w.library.info_for(str(clip)) is not None  # the video is back in the library
    assert list(indexed_db.parent.glob(indexed_db.name + ".damaged-*"))  # the damaged file is kept
    after = counts(indexed_db)
    assert after["videos"] == before["videos"] and after["index_runs"] == before["index_runs"]
    assert after["tracks"] <= before["tracks"]  # a small library: what the three pages held is gone
