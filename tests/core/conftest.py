"""Expensive real-data fixtures shared by the core tests (each built once per test session).

* ``vtest_library``: the whole of ``vtest.avi`` (795 frames) indexed at stride 2 into a fresh
  library with the shared YOLO detector and OSNet ReID model (2-3 minutes on 2 CPU cores, once).
  ``REID_TEST_VTEST_LIBRARY=lib.sqlite`` starts from a copy of that library instead (indexing is
  then a no-op when it already holds vtest.avi with the same models and settings).
* ``person_detector`` / ``reid_embedder``: the shared models, loaded once.
* ``short_clip``: the first 60 frames (6 s) of ``vtest.avi`` as an mp4v file, for quick indexing.
* ``fault_clips`` / ``fault_library``: three short vtest clips and, built on first use, a finished
  library of each (indexed as the engine does, ``tests/core/faultlib.py``), for the fault tests.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.realdata import cut_clip

SHORT_CLIP_FRAMES = 60


@dataclass(frozen=True)
class VtestLibrary:
    """``vtest.avi`` indexed once per session.

    Attributes:
        db_path: The library file.
        engine: An open engine on it (shared: do not close it).
        video: Path of vtest.avi.
        video_id: Its id in the library.
        run_id: The finished indexing run.
        detector_path: Detector model file.
        reid_path: ReID model file.
    """

    db_path: Path
    engine: object
    video: Path
    video_id: int
    run_id: int
    detector_path: Path
    reid_path: Path


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
def vtest_library(tmp_path_factory, vtest_path, detector_model_path, reid_model_path) -> VtestLibrary:
    """Index the whole of vtest.avi at stride 2 once (the library is shared; tests may add queries)."""
    from core.engine import Engine

    db = tmp_path_factory.mktemp("vtest_library") / "library.sqlite"
    reuse = os.environ.get("REID_TEST_VTEST_LIBRARY")
    if reuse:  # developer shortcut: start from a copy of a library that already holds vtest.avi
        shutil.copyfile(reuse, db)
    engine = Engine(db, detector=detector_model_path, reid=reid_model_path, device="cpu", stride=2)
    items = list(engine.index(vtest_path))
    assert items and items[-1].done, "indexing vtest.avi did not finish"
    video = engine.store.video_by_path(vtest_path)
    run = engine.store.latest_run(video.id)
    yield VtestLibrary(db_path=db, engine=engine, video=Path(vtest_path), video_id=video.id, run_id=run.id,
                       detector_path=Path(detector_model_path), reid_path=Path(reid_model_path))
    engine.close()


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory, vtest_path) -> Path:
    """The first 60 frames (6 s at 10 fps) of vtest.avi written as mp4v."""
    return cut_clip(vtest_path, tmp_path_factory.mktemp("short_clip") / "vtest_6s.mp4", 0, SHORT_CLIP_FRAMES)



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
