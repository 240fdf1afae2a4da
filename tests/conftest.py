"""Shared fixtures: where the real test data lives, Qt set to offscreen, and vtest.avi indexed once.

* ``vtest_library``: the whole of ``vtest.avi`` (795 frames) indexed at stride 2 into a fresh
  library with the shared YOLO detector and OSNet ReID model (about a minute on 2 CPU cores, once
  per session; the core and the training tests use it). ``REID_TEST_VTEST_LIBRARY=lib.sqlite``
  starts from a copy of that library instead (indexing is then a no-op when it already holds
  vtest.avi with the same models and settings).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("REID_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def shared_file(relative: str) -> Path:
    """Return a file from the shared data folder; skip the test with the reason when it is absent.

    On CI (``$CI`` set) the data must be there: a missing file fails the test instead, so a
    broken checkout or mount cannot turn half the suite into skips.
    """
    path = SHARED_DATA / relative
    if not path.exists():
        why = f"real test data not found: {path} (set REID_SHARED_DATA to the shared/data folder)"
        if os.environ.get("CI"):
            pytest.fail(why + "; CI must have it", pytrace=False)
        pytest.skip(why)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder (skips when absent)."""
    return shared_file("")


@pytest.fixture(scope="session")
def vtest_path() -> Path:
    """The real pedestrian video ``vtest.avi`` (795 frames, 768x576, 10 fps)."""
    return shared_file("video/vtest.avi")


@pytest.fixture(scope="session")
def detector_model_path() -> Path:
    """The shared YOLOv8s people detector (classes Normal, Fall)."""
    return shared_file("models/yolov8s_people_normal_fall.onnx")


@pytest.fixture(scope="session")
def reid_model_path() -> Path:
    """The shared OSNet x0.25 MSMT17 ReID model (ONNX, no metadata)."""
    return shared_file("models/osnet_x0_25_msmt17.onnx")


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
def vtest_library(tmp_path_factory, vtest_path, detector_model_path, reid_model_path) -> VtestLibrary:
    """Index the whole of vtest.avi at stride 2 once (the library is shared; tests may add queries)."""
    from core.engine import Engine

    db = tmp_path_factory.mktemp("vtest_library") / "library.sqlite"
    reuse = os.environ.get("REID_TEST_VTEST_LIBRARY")
    if reuse:  # developer shortcut: start from a copy of a library that already holds vtest.avi
        shutil.copyfile(reuse, db)
    # stride 2, the float32 detector and plain ByteTrack: the settings these tests' expectations (the
    # annotated tracks of tests/training/test_adapt.py among them) were measured with; the int8
    # default, sampling by time, the motion gate and the buffered tracker have tests of their own
    engine = Engine(db, detector=detector_model_path, reid=reid_model_path, device="cpu", stride=2,
                    precision="fp32", tracker="bytetrack")
    items = list(engine.index(vtest_path))
    assert items and items[-1].done, "indexing vtest.avi did not finish"
    video = engine.store.video_by_path(vtest_path)
    run = engine.store.latest_run(video.id)
    yield VtestLibrary(db_path=db, engine=engine, video=Path(vtest_path), video_id=video.id, run_id=run.id,
                       detector_path=Path(detector_model_path), reid_path=Path(reid_model_path))
    engine.close()
