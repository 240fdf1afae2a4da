"""Shared fixtures: where the real test data lives, and Qt set to offscreen."""

from __future__ import annotations

import os
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
