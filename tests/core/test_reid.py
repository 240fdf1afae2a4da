"""core.reid: the ONNX ReID embedder on real crops, real full frames and real weights."""

from __future__ import annotations

import functools
import json

import cv2
import numpy as np
import pytest

from core.detection import YoloOnnxDetector
from core.errors import ModelError
from core.reid import OnnxEmbedder
from tests.core.tiny_onnx import tiny_model
from tests.realdata import IDENTITY_0001, box_iou

# The manifest entry's preprocess for osnet_x0_25_msmt17.onnx (the file has no metadata).
OSNET_PREPROCESS = {"input_size": [256, 128], "color_order": "RGB",
                    "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}

# A ReID-shaped model whose "embedding" is the per-channel mean of its 16x8 input: (N,3,16,8) -> (N,3).
_tiny_reid_model = functools.partial(tiny_model, in_shape=(3, 16, 8), out_op="GlobalAveragePool")


TINY_META = {"task": "reid", "input_height": "16", "input_width": "8", "color_order": "BGR",
             "mean": json.dumps([0.1, 0.2, 0.3]), "std": json.dumps([0.5, 0.25, 0.125]),
             "embedding_dim": "3", "model_name": "tiny_mean", "normalized": "0"}


def _expected(bgr, order, mean, std) -> np.ndarray:
    """What the tiny model must give for a crop of one colour: the normalised pixel, L2-normalised."""
    pixel = np.asarray(bgr, np.float64)[::-1] if order == "RGB" else np.asarray(bgr, np.float64)
    v = (pixel / 255 - np.asarray(mean)) / np.asarray(std)
    return v / np.linalg.norm(v)


@pytest.fixture(scope="session")
def embedder(reid_model_path) -> OnnxEmbedder:
    return OnnxEmbedder(reid_model_path, preprocess=OSNET_PREPROCESS, device="cpu")


@pytest.fixture(scope="session")
def detector(detector_model_path) -> YoloOnnxDetector:
    return YoloOnnxDetector(detector_model_path, person_classes=("Normal", "Fall"), device="cpu")


@pytest.fixture(scope="session")
def market(shared_data):
    root = shared_data / "reid_images/market1501_songwsx"
    queries = {p.name[:9]: cv2.imread(str(p)) for p in sorted((root / "query").glob("*.jpg"))}
    frames = {p.stem: cv2.imread(str(p)) for p in sorted((root / "full_frames").glob("*.jpg"))}
    assert set(queries) == {"0001_c1s1", "0001_c6s1"} and set(frames) == set(IDENTITY_0001)
    return queries, frames


def test_reads_preprocessing_from_the_manifest_dict(embedder):
    assert embedder.input_size == (256, 128) and embedder.color_order == "RGB"
    assert embedder.dim == 512 and embedder.name == "osnet_x0_25_msmt17"
    assert embedder.provider == "CPUExecutionProvider"


def test_true_cross_camera_match_ranks_above_everyone_else(embedder, detector, market, vtest_path):
    """Query: identity 0001 seen by camera 6. Gallery: her camera-1 crop, every person the detector
    cuts from the 16 full frames (cameras 1 and 3), and the people of 8 vtest.avi frames."""
    queries, frames = market
    query = embedder.embed_crops([queries["0001_c6s1"]])[0]
    market_crop = embedder.embed_crops([queries["0001_c1s1"]])[0]

    her, others = [], []
    for name, image in frames.items():
        dets = detector.detect([image])[0]
        emb = embedder.embed(image, dets.boxes)
        assert not emb.skipped
        is_her = box_iou(dets.boxes[emb.kept], np.array([IDENTITY_0001[name]], np.float32))[:, 0] > 0.5
        assert is_her.sum() == 1, f"{name}: expected one detection on identity 0001, got {is_her.sum()}"
        her.extend(emb.vectors[is_her])
        others.extend(emb.vectors[~is_her])
    cap = cv2.VideoCapture(str(vtest_path))
    for index in range(701):
        ok, frame = cap.read()
        assert ok
        if index % 100 == 0:
            emb = embedder.embed(frame, detector.detect([frame])[0].boxes)
            others.extend(emb.vectors)
    cap.release()
    her, others = np.array(her), np.array(others)
    assert len(her) == 16 and len(others) >= 60

    best_other = float((others @ query).max())
    # Her camera-1 crop (Market's own box) beats every other person...
    assert float(market_crop @ query) > best_other
    # ...and so does every crop of her that the detector cut from the full frames.
    assert float((her @ query).min()) > best_other


def test_embed_clips_and_skips_boxes_with_reasons(embedder, market):
    _, frames = market
    image = frames["c1s1_001051"]
    boxes = np.array([
        [1210, 430, 1390, 750],      # 0: her, fully inside
        [1800, 300, 2100, 900],      # 1: runs off the right edge: clipped to x <= 1920
        [100, 100, 105, 200],        # 2: 5 px wide: too small
        [500, 500, 400, 600],        # 3: x2 < x1: degenerate
        [2000, 100, 2100, 300],      # 4: right of the image
        [np.nan, 0, 10, 10],         # 5: not finite
        [-50, -40, 60, 200],         # 6: starts outside top-left: clipped
    ], np.float32)
    emb = embedder.embed(image, boxes)
    assert emb.kept.tolist() == [0, 1, 6]
    reasons = dict(emb.skipped)
    assert set(reasons) == {2, 3, 4, 5}
    assert "too small" in reasons[2] and "degenerate" in reasons[3]
    assert "outside" in reasons[4] and "not finite" in reasons[5]
    assert emb.vectors.shape == (3, 512) and emb.vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    # A box and the same pixels given as a crop give the same vector; clipping equals cropping.
    crops = [image[430:750, 1210:1390], image[300:900, 1800:1920], image[0:200, 0:60]]
    np.testing.assert_allclose(emb.vectors, embedder.embed_crops(crops), atol=1e-5)
    assert embedder.embed(image, np.zeros((0, 4), np.float32)).vectors.shape == (0, 512)


def test_batching_does_not_change_vectors(reid_model_path, embedder, market):
    queries, frames = market
    crops = list(queries.values()) + [frames["c1s1_002301"][440:710, 820:960], frames["c3s1_000501"]]
    one_by_one = OnnxEmbedder(reid_model_path, preprocess=OSNET_PREPROCESS, device="cpu", batch_size=1)
    np.testing.assert_allclose(embedder.embed_crops(crops), one_by_one.embed_crops(crops), atol=1e-5)


def test_embed_crops_accepts_grey_and_bgra(embedder, market):
    queries, _ = market
    crop = queries["0001_c1s1"]
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(crop, cv2.COLOR_BGR2BGRA)
    vecs = embedder.embed_crops([crop, bgra, grey])
    np.testing.assert_allclose(vecs[0], vecs[1], atol=1e-6)
    np.testing.assert_allclose(vecs[2], embedder.embed_crops([cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)])[0],
                               atol=1e-6)
    with pytest.raises(ValueError, match="crop 1 must be a non-empty"):
        embedder.embed_crops([crop, crop[:0]])


# -- models that carry their own metadata (as training/ exports them) ---------------------------


@pytest.mark.parametrize("order", ["BGR", "RGB"])
def test_metadata_drives_preprocessing(tmp_path, order):
    meta = {**TINY_META, "color_order": order}
    path = _tiny_reid_model(tmp_path / "tiny.onnx", metadata=meta)
    # A conflicting manifest dict is ignored: the model's own metadata wins.
    other = "BGR" if order == "RGB" else "RGB"
    emb = OnnxEmbedder(path, preprocess={**OSNET_PREPROCESS, "color_order": other})
    assert emb.input_size == (16, 8) and emb.color_order == order
    assert emb.dim == 3 and emb.name == "tiny_mean"
    colour = (30, 120, 210)  # B, G, R
    image = np.zeros((100, 80, 3), np.uint8)
    image[:] = (255, 255, 255)
    image[20:60, 10:30] = colour  # a 20x40 patch on white: any pixel of white shifts the mean
    out = emb.embed(image, np.array([[10, 20, 30, 60]], np.float32))
    want = _expected(colour, order, json.loads(meta["mean"]), json.loads(meta["std"]))
    np.testing.assert_allclose(out.vectors[0], want, atol=1e-5)


def test_fixed_batch_model_runs_one_by_one(tmp_path):
    path = _tiny_reid_model(tmp_path / "fixed.onnx", batch_dim=1, metadata=TINY_META)
    emb = OnnxEmbedder(path, batch_size=32)
    colours = [(10, 20, 30), (200, 100, 0), (0, 0, 255)]
    crops = [np.full((30, 12, 3), c, np.uint8) for c in colours]
    got = emb.embed_crops(crops)
    want = [_expected(c, "BGR", [0.1, 0.2, 0.3], [0.5, 0.25, 0.125]) for c in colours]
    np.testing.assert_allclose(got, np.array(want), atol=1e-5)


def test_metadata_input_size_must_match_the_model(tmp_path):
    path = _tiny_reid_model(tmp_path / "tiny.onnx", metadata={**TINY_META, "input_height": "32"})
    with pytest.raises(ModelError, match=r"takes input 16x8 .* says 32x8"):
        OnnxEmbedder(path)


def test_bad_metadata_values(tmp_path):
    path = _tiny_reid_model(tmp_path / "tiny.onnx", metadata={**TINY_META, "color_order": "HSV"})
    with pytest.raises(ModelError, match="color_order RGB or BGR") as err:
        OnnxEmbedder(path)
    assert str(path) in str(err.value)
    path = _tiny_reid_model(tmp_path / "dim.onnx", metadata={**TINY_META, "embedding_dim": "512"})
    with pytest.raises(ModelError, match="outputs 3-d vectors but its metadata says embedding_dim=512"):
        OnnxEmbedder(path)


# -- bad input ----------------------------------------------------------------------------------


def test_reid_model_without_metadata_or_preprocess(reid_model_path):
    with pytest.raises(ModelError) as err:
        OnnxEmbedder(reid_model_path)
    msg = str(err.value)
    assert str(reid_model_path) in msg and "\n" not in msg
    assert "input_height, input_width, color_order, mean, std missing" in msg
    assert "manifest entry" in msg and '"preprocess"' in msg


def test_detector_given_as_reid_model(detector_model_path):
    with pytest.raises(ModelError) as err:
        OnnxEmbedder(detector_model_path, preprocess=OSNET_PREPROCESS)
    msg = str(err.value)
    assert msg.startswith(f"{detector_model_path} is a person detector")
    assert "not a ReID model" in msg


def test_missing_and_non_onnx_files(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        OnnxEmbedder(tmp_path / "osnet.onnx", preprocess=OSNET_PREPROCESS)
    fake = tmp_path / "osnet.onnx"
    fake.write_text("this is a text file")
    with pytest.raises(ModelError, match="osnet.onnx is not a usable ONNX model") as err:
        OnnxEmbedder(fake, preprocess=OSNET_PREPROCESS)
    assert err.value.__cause__ is None
