"""Shared real-data fixtures of the training tests (built once per session in temporary folders)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from core.detection import YoloOnnxDetector
from tests.conftest import shared_file
from tests.realdata import IDENTITY_0001
from training.data.datasets import ReidData, build_dataset
from training.data.mot import write_mot_crops


def overlap(boxes: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Fraction of each box's area covered by ``box``."""
    b = np.asarray(box, np.float32)
    lt = np.maximum(boxes[:, :2], b[:2])
    rb = np.minimum(boxes[:, 2:], b[2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    return inter / np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine more threads make torch many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def osnet_weights() -> dict[str, Path]:
    """The torchreid model-zoo OSNet x0.25 state dicts, by training dataset."""
    return {name: shared_file(f"models/osnet_x0_25_{name}.pth") for name in ("msmt17", "market1501")}


@pytest.fixture(scope="session")
def market_root() -> Path:
    """The real Market-1501 demo images (2 query crops of identity 0001, 16 full frames)."""
    return shared_file("reid_images/market1501_songwsx")


@pytest.fixture(scope="session")
def other_people(market_root, detector_model_path) -> list[tuple[str, np.ndarray]]:
    """``(frame name, BGR crop)`` of every person the shared YOLO detector finds in the 16 full
    frames except identity 0001 (detections mostly covering her annotated box are dropped)."""
    det = YoloOnnxDetector(detector_model_path, person_classes=("Normal", "Fall"), device="cpu")
    out = []
    for name, her in IDENTITY_0001.items():
        image = cv2.imread(str(market_root / "full_frames" / f"{name}.jpg"))
        boxes = det.detect([image])[0].boxes
        for x1, y1, x2, y2 in boxes[overlap(boxes, her) < 0.5].round().astype(int):
            out.append((name, image[max(0, y1):y2, max(0, x1):x2].copy()))
    assert len(out) >= 20, "the detector should find at least 20 other people in the 16 frames"
    return out


@pytest.fixture(scope="session")
def mini_market(tmp_path_factory, market_root, other_people) -> Path:
    """A Market-1501-layout folder of real images: query = identity 0001 by camera 6; gallery =
    her camera-1 crop plus every other detected person as a distractor (id 0000, their camera);
    train = a few of the other people (the parser needs a training split)."""
    root = tmp_path_factory.mktemp("market") / "Market-1501-v15.09.15"
    for sub in ("query", "bounding_box_test", "bounding_box_train"):
        (root / sub).mkdir(parents=True)
    shutil.copy(market_root / "query" / "0001_c6s1_009601_00.jpg", root / "query")
    shutil.copy(market_root / "query" / "0001_c1s1_001051_00.jpg", root / "bounding_box_test")
    for i, (frame, crop) in enumerate(other_people):
        cam = frame[1]
        cv2.imwrite(str(root / "bounding_box_test" / f"0000_c{cam}s1_{i:06d}_00.jpg"), crop)
        if i < 4:
            cv2.imwrite(str(root / "bounding_box_train" / f"{i + 2:04d}_c{cam}s1_{i:06d}_00.jpg"), crop)
    return root


@pytest.fixture(scope="session")
def mot_tracks(tmp_path_factory) -> Path:
    """Generic-layout training set from MOT17 ground truth: 4 crops of each well-visible track."""
    seqs = sorted(p for p in shared_file("mot17_mini/train").iterdir() if p.is_dir())
    out = tmp_path_factory.mktemp("mot_tracks")
    stats = write_mot_crops(seqs, out, min_visibility=0.6, min_height=80, min_crops=4, max_crops=4)
    assert stats["identities"] >= 40 and stats["images"] == 4 * stats["identities"]
    return out


@pytest.fixture(scope="session")
def small_reid_data(mot_tracks, mini_market) -> ReidData:
    """Train: 16 MOT17 pseudo-identities x 4 real crops; query/gallery: the mini Market split."""
    tracks = build_dataset("generic", mot_tracks)
    keep = sorted({pid for _, pid, _ in tracks.train})[:16]
    market = build_dataset("market1501", mini_market.parent)
    train = tuple(i for i in tracks.train if i[1] in keep)
    return ReidData("mot17_tracks", train, market.query, market.gallery)
