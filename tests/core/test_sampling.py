"""Sampling by time: the default processes DEFAULT_RATE frames per second of video whatever its frame rate,
and each run records the stride its video really got (search and the player read it)."""

from __future__ import annotations

import pytest

from core.engine import Engine
from core.pipeline import DEFAULT_RATE, IndexSettings
from tests.realdata import cut_clip


@pytest.mark.parametrize(("fps", "stride"), [(10, 3), (25, 8), (30, 10), (29.97, 10), (12.5, 4), (50, 17),
                                             (5, 2), (1, 1)])
def test_rate_to_stride(fps, stride):
    assert DEFAULT_RATE == 3.0
    assert IndexSettings().stride_for(fps) == stride


def test_fixed_stride_ignores_the_rate_and_both_are_in_the_key():
    fixed = IndexSettings(stride=3, rate=7.0)
    assert fixed.rate is None and fixed.stride_for(10) == fixed.stride_for(30) == 3
    by_time = IndexSettings()
    assert by_time.stride is None and by_time.rate == DEFAULT_RATE
    assert by_time.result_fields()["rate"] == DEFAULT_RATE and fixed.result_fields()["stride"] == 3
    assert IndexSettings(rate=2.5).stride_for(25) == 10
    assert "motion" in by_time.result_fields()
    assert "motion" not in IndexSettings(motion_gate=False).result_fields()
    for bad in ({"stride": 0}, {"rate": 0.0}, {"rate": None}, {"rate": float("nan")}):
        with pytest.raises(ValueError, match="stride|rate"):
            IndexSettings(**bad)


def test_a_30_fps_and_a_15_fps_video_cost_the_same(tmp_path, vtest_path, detector_model_path,
                                                   reid_model_path):
    """The same 40 frames of vtest labelled 30 fps (1.33 s) and 15 fps (2.67 s): stride 10 and 5, so the
    same number of processed frames per second of video; each run records its stride."""
    fast = cut_clip(vtest_path, tmp_path / "at30.mp4", 0, 40, fps=30.0)
    slow = cut_clip(vtest_path, tmp_path / "at15.mp4", 0, 40, fps=15.0)
    with Engine(tmp_path / "lib.sqlite", detector=detector_model_path, reid=reid_model_path,
                device="cpu") as e:
        assert e.settings.stride is None and e.settings.rate == DEFAULT_RATE
        last = {}
        for video in (fast, slow):
            *_, last[video] = e.index(video)
            run = e.run_for(e.find_video(video)).run
            expected = 10 if video == fast else 5
            assert run.status == "done" and run.settings["stride"] == expected
            assert run.settings["rate"] == DEFAULT_RATE and run.settings_key == e.settings_key
            for t in e.store.tracks(run.id):
                assert (e.store.sightings(t.pk).frames % expected == 0).all()
        assert last[fast].processed == 4 and last[slow].processed == 8
        per_second = {v: last[v].processed / (40 / fps) for v, fps in ((fast, 30.0), (slow, 15.0))}
        assert per_second[fast] == per_second[slow] == DEFAULT_RATE
