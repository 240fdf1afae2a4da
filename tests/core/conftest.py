"""Expensive real-data fixtures shared by the core tests (each built once per test session).

* ``vtest_library`` (in ``tests/conftest.py``, shared with the training tests): the whole of
  ``vtest.avi`` indexed once per session.
* ``person_detector`` / ``reid_embedder``: the shared models, loaded once.
* ``short_clip``: the first 60 frames (6 s) of ``vtest.avi`` as an mp4v file, for quick indexing.
* ``man_crop``: the man in the red-and-navy puffer jacket cut from frame 52 of ``vtest.avi``
  (see tests/core/test_end_to_end.py for what was seen), a query photo.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.realdata import box_iou, cut_clip

SHORT_CLIP_FRAMES = 60


@pytest.fixture(scope="session")
def person_detector(detector_model_path):
    """The shared people detector (``Normal`` and ``Fall`` are people), on the CPU."""
    from core.detection import YoloOnnxDetector

    return YoloOnnxDetector(detector_model_path, person_classes=("Normal", "Fall"), device="cpu")


@pytest.fixture(scope="session")
def reid_embedder(reid_model_path):
    """The shared OSNet x0.25 MSMT17 ReID model with its manifest preprocessing, on the CPU."""
    from core.models import entry_for_file
    from core.reid import OnnxEmbedder

    entry = entry_for_file(reid_model_path)
    return OnnxEmbedder(reid_model_path, preprocess=entry.preprocess if entry else None, device="cpu")


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory, vtest_path) -> Path:
    """The first 60 frames (6 s at 10 fps) of vtest.avi written as mp4v."""
    return cut_clip(vtest_path, tmp_path_factory.mktemp("short_clip") / "vtest_6s.mp4", 0, SHORT_CLIP_FRAMES)



MAN_FRAME = 52
MAN_BOX_SEEN = (494, 209, 540, 301)   # the man at frame 52, by eye


@pytest.fixture(scope="session")
def man_crop(vtest_path, person_detector) -> np.ndarray:
    """The man's crop at frame 52: the detector's box that matches what was seen, with a small margin."""
    from core.video import open_source

    with open_source(vtest_path) as src:
        frame = src.read(MAN_FRAME).image
    boxes = person_detector.detect([frame])[0].boxes
    iou = box_iou(boxes, np.array([MAN_BOX_SEEN], np.float32))[:, 0]
    best = boxes[int(np.argmax(iou))]
    assert iou.max() > 0.7
    x1, y1, x2, y2 = (int(round(v)) for v in best)
    return np.ascontiguousarray(frame[max(y1 - 4, 0):y2 + 4, max(x1 - 4, 0):x2 + 4])
