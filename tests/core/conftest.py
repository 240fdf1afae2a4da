"""Expensive real-data fixtures shared by the core tests (each built once per test session).

* ``vtest_library`` (in ``tests/conftest.py``, shared with the training tests): the whole of
  ``vtest.avi`` indexed once per session.
* ``person_detector`` / ``reid_embedder``: the shared models, loaded once.
* ``short_clip``: the first 60 frames (6 s) of ``vtest.avi`` as an mp4v file, for quick indexing.
* ``man_crop``: the man in the red-and-navy puffer jacket cut from frame 52 of ``vtest.avi``
  (see tests/core/test_end_to_end.py for what was seen), a query photo.
* ``fault_clips`` / ``fault_library``: three short vtest clips and, built on first use, a finished
  library of each (indexed as the engine does, ``tests/core/faultlib.py``), for the fault tests.
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


FAULT_CLIPS = {"A": (0, 48), "B": (300, 24), "C": (500, 24)}
"""Name -> (first frame, frames) of the fault tests' clips of vtest.avi."""


@pytest.fixture(scope="session")
def fault_clips(tmp_path_factory, vtest_path) -> dict[str, Path]:
    """Three short clips of vtest.avi (mp4v): A (48 frames), B and C (24 frames each, other people)."""
    folder = tmp_path_factory.mktemp("fault_clips")
    return {name: cut_clip(vtest_path, folder / f"clip{name}.mp4", start, n)
            for name, (start, n) in FAULT_CLIPS.items()}


@pytest.fixture(scope="session")
def fault_library(tmp_path_factory, fault_clips, person_detector, reid_embedder):
    """``fault_library(name)``: a finished library of clip ``name`` alone (built once; copy it to change)."""
    from core.store import Store
    from tests.core.faultlib import index

    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            db = tmp_path_factory.mktemp(f"fault_ref_{name}") / "library.sqlite"
            with Store(db) as store:
                items = index(fault_clips[name], store, (person_detector, reid_embedder))
                assert items[-1].done
            built[name] = db
        return built[name]

    return get
