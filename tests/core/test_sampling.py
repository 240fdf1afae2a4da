"""Sampling by time: the default processes DEFAULT_RATE frames per second of video whatever its frame rate,
and each run records the stride its video really got (search and the player read it)."""

from __future__ import annotations

import pytest

from core.engine import Engine
from core.pipeline import DEFAULT_RATE, IndexSettings
from tests.realdata import cut_clip


@pytest.mark.parametrize(("fps", "stride"), [(10, 2), (25, 5), (30, 6), (29.97, 6), (12.5, 3), (50, 10),
                                             (5, 1), (1, 1)])
def test_rate_to_stride(fps, stride):
    assert DEFAULT_RATE == 5.0
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


def test_a_25_fps_and_a_10_fps_video_cost_the_same(tmp_path, vtest_path, detector_model_path,
                                                   reid_model_path):
    """The same 40 frames of vtest labelled 25 fps (1.6 s) and 10 fps (4 s): stride 5 and 2, so the same
    number of processed frames per second of video; each run records its stride."""
    fast = cut_clip(vtest_path, tmp_path / "at25.mp4", 0, 40, fps=25.0)
    slow = cut_clip(vtest_path, tmp_path / "at10.mp4", 0, 40, fps=10.0)
    with Engine(tmp_path / "lib.sqlite", detector=detector_model_path, reid=reid_model_path,
                device="cpu") as e:
        assert e.settings.stride is None and e.settings.rate == DEFAULT_RATE
        last = {}
        for video in (fast, slow):
            *_, last[video] = e.index(video)
            run = e.run_for(e.find_video(video)).run
            expected = 5 if video == fast else 2
            assert run.status == "done" and run.settings["stride"] == expected
            assert run.settings["rate"] == DEFAULT_RATE and run.settings_key == e.settings_key
            for t in e.store.tracks(run.id):
                assert (e.store.sightings(t.pk).frames % expected == 0).all()
        assert last[fast].processed == 8 and last[slow].processed == 20
        per_second = {v: last[v].processed / (40 / fps) for v, fps in ((fast, 25.0), (slow, 10.0))}
        assert per_second[fast] == per_second[slow] == DEFAULT_RATE
