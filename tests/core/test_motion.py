"""The motion gate on a real-background clip: vtest.avi's empty scene (the temporal median of its
frames, with fresh sensor-like noise on every frame), into which a real person of vtest walks from
the left border (vtest frames 604-621, pasted in the strip where she walks), then stands still for
3 s, then is gone.

The gate must skip the detector on the empty stretch and must not skip a frame from the first one
that shows her on; while she stands still her track keeps the detector running, so her sightings
are those of the ungated run. The scene's static false detection (the yellow object on the grass,
which the shared detector calls a fallen person) does not keep the detector running.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.motion import MotionConfig, MotionGate, small_grey
from core.pipeline import IndexSettings, index_video
from core.store import Store
from core.tracking import ByteTracker

WINDOW = (slice(165, 262), slice(0, 110))  # rows, columns of the strip she walks in (no one else there)
SOURCE = range(604, 622)
EMPTY_BEFORE, STILL, EMPTY_AFTER = 40, 30, 12
WALK_IN = EMPTY_BEFORE  # first clip frame with her pixels
STILL_FROM = WALK_IN + len(SOURCE)
STILL_TO = STILL_FROM + STILL
STRIDE = 2
TRACKER = {"high_thresh": 0.4, "new_track_thresh": 0.45}  # the shared detector's manifest entry


@pytest.fixture(scope="module")
def walk_in_clip(tmp_path_factory, vtest_path) -> tuple[Path, list[np.ndarray]]:
    cap = cv2.VideoCapture(str(vtest_path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    background = np.median(np.stack(frames[::8]), axis=0).astype(np.uint8)
    rng = np.random.default_rng(1)

    def noisy(image: np.ndarray) -> np.ndarray:
        return np.clip(image + rng.normal(0, 2.0, image.shape), 0, 255).astype(np.uint8)

    def with_her(source: int) -> np.ndarray:
        out = background.copy()
        out[WINDOW] = frames[source][WINDOW]
        return out

    clip = ([noisy(background) for _ in range(EMPTY_BEFORE)] + [noisy(with_her(i)) for i in SOURCE]
            + [noisy(with_her(SOURCE[-1])) for _ in range(STILL)]
            + [noisy(background) for _ in range(EMPTY_AFTER)])
    path = tmp_path_factory.mktemp("motion") / "walk_in.avi"
    h, w = background.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    for frame in clip:
        writer.write(frame)
    writer.release()
    cap = cv2.VideoCapture(str(path))
    decoded = [cap.read()[1] for _ in clip]  # what the pipeline will see (after compression)
    return path, decoded


def test_gate_sees_no_motion_on_the_empty_scene_and_sees_her_walk_in(walk_in_clip):
    _, frames = walk_in_clip
    gate = MotionGate(MotionConfig())
    moving = {i: gate.update(small_grey(frames[i], 160)) for i in range(0, len(frames), STRIDE)}
    assert moving[0]  # the first frame: nothing to compare with
    assert not any(moving[i] for i in range(STRIDE, WALK_IN, STRIDE))
    first = min(i for i in moving if i >= WALK_IN and moving[i])
    assert first <= WALK_IN + STRIDE  # within a processed frame of her first pixels
    assert all(moving[i] for i in range(first, STILL_FROM, STRIDE))  # walking: motion on every frame
    assert not any(moving[i] for i in range(STILL_FROM + STRIDE, STILL_TO, STRIDE))  # standing still


class RecordingDetector:
    """The real detector; records which frames it is shown (by pixel digest)."""

    def __init__(self, real) -> None:
        self.real, self.path, self.shown = real, real.path, []

    def detect(self, images):
        self.shown += [hashlib.sha1(im.tobytes()).hexdigest() for im in images]
        return self.real.detect(images)


def _index(clip: Path, db: Path, detector, embedder, gate: bool) -> tuple[Store, list]:
    store = Store(db)
    settings = IndexSettings(stride=STRIDE, motion_gate=gate, det_batch=4, commit_every=8)
    items = list(index_video(clip, store=store, detector=detector, embedder=embedder,
                             tracker_factory=functools.partial(ByteTracker, **TRACKER), settings=settings))
    return store, items


def _her_sightings(store: Store) -> dict[int, np.ndarray]:
    """Frame -> box of the tracks whose boxes lie in her strip."""
    (run,) = store.list_runs()
    out = {}
    for t in store.tracks(run.id):
        s = store.sightings(t.pk)
        cx = (s.boxes[:, 0] + s.boxes[:, 2]) / 2
        if np.median(cx) < WINDOW[1].stop and np.median(s.boxes[:, 3]) < WINDOW[0].stop + 10:
            out.update({int(f): b for f, b in zip(s.frames, s.boxes, strict=True)})
    return out


def test_pipeline_skips_the_empty_stretch_and_keeps_her_found(tmp_path, walk_in_clip, person_detector,
                                                               reid_embedder):
    clip, frames = walk_in_clip
    digest = {hashlib.sha1(f.tobytes()).hexdigest(): i for i, f in enumerate(frames)}
    gated = RecordingDetector(person_detector)
    st_on, on = _index(clip, tmp_path / "on.sqlite", gated, reid_embedder, gate=True)
    st_off, off = _index(clip, tmp_path / "off.sqlite", person_detector, reid_embedder, gate=False)
    shown = sorted(digest[d] for d in gated.shown)
    processed = list(range(0, len(frames), STRIDE))
    assert on[-1].done and on[-1].processed == off[-1].processed == len(processed)
    assert off[-1].detected == len(processed) and on[-1].detected == len(shown) < len(processed)
    # the empty stretch is skipped once the static false detection is confirmed (first few frames) ...
    assert max(i for i in shown if i < WALK_IN) <= 6 * STRIDE
    # ... and from her entrance (within a processed frame of her first pixels) every processed frame
    first = min(i for i in shown if i >= WALK_IN)
    assert first <= WALK_IN + STRIDE
    assert [i for i in processed if i >= first] == [i for i in shown if i >= first]
    her_on, her_off = _her_sightings(st_on), _her_sightings(st_off)
    assert her_off and min(her_off) < STILL_FROM  # she is found while walking in ...
    assert [f for f in her_off if STILL_FROM <= f < STILL_TO]  # ... and while standing still
    assert sorted(her_on) == sorted(her_off)
    for f, box in her_off.items():
        np.testing.assert_array_equal(her_on[f], box)
