"""The window's Qt-free model: its rules, without a window (and without Qt)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core import paths
from core.engine import SearchResult
from core.search import DEFAULT_THRESHOLD
from core.types import Hit, Segment
from GUI.window_model import DEFAULT_SCORE_RANGE, WindowModel, norm_path


def _hit(video: str, track: int, score: float, frame: int = 10) -> Hit:
    return Hit(1, video, track, score, (Segment(frame / 10, frame / 10 + 2, frame, frame + 20),), frame,
               frame / 10, (10.0, 20.0, 50.0, 120.0))


def _result(*hits: Hit, query_id: int = 1) -> SearchResult:
    return SearchResult(query_id, tuple(sorted(hits, key=lambda h: -h.score)), DEFAULT_THRESHOLD, (), 0.1)


@pytest.fixture
def videos(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    for v in (a, b):
        v.write_bytes(b"")
    return str(a), str(b)


def _recorder(model: WindowModel, *names: str) -> list[tuple[str, object]]:
    seen: list[tuple[str, object]] = []

    def listen(name: str) -> None:  # psygnal passes as many arguments as the callback takes
        getattr(model.events, name).connect(lambda new: seen.append((name, new)))

    for name in names:
        listen(name)
    return seen


def test_threshold_is_clamped_and_filters_the_visible_hits(videos):
    a, _ = videos
    m = WindowModel.restore(None)
    assert m.threshold == DEFAULT_THRESHOLD and m.visible_hits == ()
    strong, weak = _hit(a, 1, 0.91), _hit(a, 2, 0.62)
    m.result = _result(strong, weak)
    assert m.visible_hits == (strong,)
    seen = _recorder(m, "threshold")
    m.threshold = 0.5
    assert m.visible_hits == (strong, weak) == m.result.above(0.5)
    m.threshold = 0.5  # no change: no event
    m.threshold = 7
    m.threshold = -1
    assert seen == [("threshold", 0.5), ("threshold", 1.0), ("threshold", 0.0)]
    assert WindowModel(threshold=3).threshold == 1.0


def test_a_new_result_clears_the_selection_before_observers_hear_of_it(videos):
    a, _ = videos
    m = WindowModel()
    first = _hit(a, 1, 0.9)
    m.result = _result(first)
    m.selected_hit = first
    during: list[object] = []
    m.events.result.connect(lambda _new: during.append(m.selected_hit))
    seen = _recorder(m, "selected_hit")
    m.result = _result(_hit(a, 5, 0.8), query_id=2)
    assert m.selected_hit is None and during == [None] and seen == [("selected_hit", None)]
    m.selected_hit = m.result.hits[0]
    m.result = None
    assert m.selected_hit is None and m.visible_hits == ()


def test_score_range_follows_the_result_and_the_threshold_at_that_time(videos):
    a, _ = videos
    m = WindowModel(threshold=0.7)
    assert m.score_range == DEFAULT_SCORE_RANGE
    m.result = _result(_hit(a, 1, 0.95), _hit(a, 2, 0.55))
    assert m.score_range == pytest.approx((0.55, 0.95))
    m.threshold = 0.6  # moving the slider keeps the colours
    assert m.score_range == pytest.approx((0.55, 0.95))
    m.threshold = 0.8
    m.result = _result(_hit(a, 3, 0.82), query_id=2)
    assert m.score_range == pytest.approx((0.8, 0.85))
    m.result = _result(query_id=3)  # no hits: the colours stay
    assert m.score_range == pytest.approx((0.8, 0.85))


def test_threshold_above_the_selected_hit_unselects_it(videos):
    a, _ = videos
    m = WindowModel(threshold=0.6)
    hit = _hit(a, 1, 0.72)
    m.result = _result(hit)
    m.selected_hit = hit
    m.threshold = 0.72  # at the score: still shown, still selected
    assert m.selected_hit is hit
    m.threshold = 0.73
    assert m.selected_hit is None
    m.threshold = 0.5
    assert m.selected_hit is None  # lowering again does not bring it back


def test_opening_another_video_unselects_a_hit_of_the_old_one(videos):
    a, b = videos
    m = WindowModel(threshold=0.5)
    in_a = _hit(a, 1, 0.9)
    m.result = _result(in_a, _hit(b, 2, 0.8))
    m.video_path = a
    m.selected_hit = in_a
    m.video_path = a + "/../a.mp4"  # the same file by another spelling: no change at all
    assert m.video_path == norm_path(a) and m.selected_hit is in_a
    m.video_path = b
    assert m.selected_hit is None


def test_hits_in_a_video_follow_the_result_and_the_threshold(videos):
    a, b = videos
    m = WindowModel(threshold=0.5)
    assert m.hits_in(a) == () and m.hits_in(None) == ()
    a1, a2, b1 = _hit(a, 1, 0.9), _hit(a, 2, 0.6), _hit(b, 3, 0.7)
    m.result = _result(a1, a2, b1)
    assert m.hits_in(a) == (a1, a2) and m.hits_in(b) == (b1,)
    m.threshold = 0.65  # the grouping is worked out again
    assert m.hits_in(a) == (a1,) and m.hits_in(norm_path(b)) == (b1,)
    m.result = _result(b1, query_id=2)
    assert m.hits_in(a) == () and m.hits_in(b) == (b1,)


def test_scope_is_the_checked_videos_else_the_current_one(videos):
    a, b = videos
    m = WindowModel()
    assert m.scope == [] and m.scope_text == "Open a video to search in." and not m.can_search
    m.video_path = a
    assert m.scope == [norm_path(a)] and m.scope_text == "Searches in a.mp4."
    assert not m.can_search
    m.photos = ["/photos/p.png"]
    assert m.photos == ("/photos/p.png",) and m.can_search
    seen = _recorder(m, "checked_videos")
    m.checked_videos = [a, b]
    assert m.scope == [norm_path(a), norm_path(b)] and m.scope_text == "Searches in 2 checked videos."
    m.checked_videos = (norm_path(a), norm_path(b))  # the same list: no event
    assert seen == [("checked_videos", (norm_path(a), norm_path(b)))]
    m.checked_videos = []
    assert m.scope == [norm_path(a)]


def test_the_threshold_saved_follows_the_calibrated_default():
    assert WindowModel.restore(None).threshold_to_save() is None
    assert WindowModel.restore(0.62).threshold == 0.62
    assert WindowModel.restore(0.62).threshold_to_save() == 0.62
    assert WindowModel(threshold=DEFAULT_THRESHOLD + 0.004).threshold_to_save() is None
    assert WindowModel(threshold=0.6234).threshold_to_save() == 0.62


CHECK = r"""
import json, sys
import GUI.window_model
banned = sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "torch", "training"))
print(json.dumps(banned))
"""


def test_the_model_imports_without_qt():
    proc = subprocess.run([sys.executable, "-c", CHECK], cwd=paths.REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
