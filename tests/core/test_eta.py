"""core.eta: the time left from the speed of the recent past."""

from __future__ import annotations

import pytest

from core.eta import EtaEstimator


def test_no_estimate_until_the_window_spans_min_span():
    eta = EtaEstimator(window_s=10, min_span_s=2)
    assert eta.update(10, 100, now=0.0) is None
    assert eta.update(20, 100, now=1.0) is None      # 1 s of progress seen: too little
    assert eta.update(30, 100, now=2.0) == pytest.approx(70 / 10)
    assert eta.rate == pytest.approx(10)


def test_follows_the_recent_speed_not_the_average_since_the_start():
    eta = EtaEstimator(window_s=5, min_span_s=1)
    t, done = 0.0, 0
    for _ in range(20):                              # 20 s at 20 frames/s: a fast start
        eta.update(done, 2000, now=t)
        t, done = t + 1, done + 20
    for _ in range(20):                              # then the machine gets busy: 5 frames/s
        left = eta.update(done, 2000, now=t)
        t, done = t + 1, done + 5
    assert eta.rate == pytest.approx(5)
    assert left == pytest.approx((2000 - (done - 5)) / 5)
    average = (done - 5) / (t - 1)                   # what a since-the-start rate would say
    assert left > 2 * (2000 - (done - 5)) / average


def test_tail_is_added_and_done_work_leaves_only_the_tail():
    eta = EtaEstimator(window_s=10, min_span_s=1, tail_s=1.5)
    eta.update(0, 50, now=0.0)
    assert eta.update(10, 50, now=2.0) == pytest.approx(40 / 5 + 1.5)
    assert eta.update(50, 50, now=3.0) == pytest.approx(1.5)


def test_another_video_or_a_count_going_back_starts_afresh():
    eta = EtaEstimator(window_s=10, min_span_s=1)
    eta.update(0, 100, now=0.0)
    eta.update(50, 100, now=5.0)
    assert eta.update(0, 300, now=6.0) is None       # the next video: nothing known of its speed yet
    assert eta.update(30, 300, now=8.0) == pytest.approx(270 / 15)
    assert eta.update(10, 300, now=9.0) is None      # went back (a restart): afresh
    eta.reset()
    assert eta.estimate() is None


def test_unknown_total_gives_no_estimate_and_bad_arguments_are_refused():
    eta = EtaEstimator(min_span_s=0)
    eta.update(0, 0, now=0.0)
    assert eta.update(10, 0, now=5.0) is None
    with pytest.raises(ValueError):
        EtaEstimator(window_s=0)
