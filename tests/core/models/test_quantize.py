"""The int8 (and float16) detector: a valid ONNX model of its own that the app loads, whose boxes on real
vtest frames agree with the float model's, and whose runs are other runs.

The int8 model is the one the install made (``python -m core.models fetch`` in install.sh, calibrated on
``assets/sample_clip.mp4``, vtest's first 200 frames); when it is missing (a checkout without the
install step) the test session makes it the same way. Agreement is measured here on vtest frames the
calibration never saw (frames 300-780).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from core.detection import YoloOnnxDetector
from core.engine import Engine
from core.fileio import sha256_file
from core.models.derived import (
    DerivedModel,
    find_derived,
    load_derived,
    model_for_precision,
    record_derived,
    resolve_precision,
)
from core.models.quantize import box_agreement, convert_float16, float_tail, quantize_int8
from core.paths import REPO_ROOT
from core.pipeline import run_settings
from tests.realdata import box_iou

CLASSES = ("Normal", "Fall")
CHECK_FRAMES = range(300, 795, 25)  # 20 frames never used for calibration
MIN_AGREEMENT = 0.9  # measured here: 96 % on these frames, 100 % on the calibration clip's other frames


@pytest.fixture(scope="module")
def int8_path(detector_model_path, tmp_path_factory) -> Path:
    made = find_derived(detector_model_path, "int8")
    if made is not None:
        return made.path
    out = tmp_path_factory.mktemp("int8") / "yolov8s_people_normal_fall.int8.onnx"
    return quantize_int8(detector_model_path, out, record=False).path


@pytest.fixture(scope="module")
def vtest_frames(vtest_path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(vtest_path))
    out = []
    for i in range(max(CHECK_FRAMES) + 1):
        ok, frame = cap.read()
        assert ok
        if i in CHECK_FRAMES:
            out.append(frame)
    return out


def test_int8_model_is_valid_onnx_with_its_origin_in_its_metadata(int8_path, detector_model_path):
    onnx.checker.check_model(str(int8_path))
    model = onnx.load(str(int8_path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["precision"] == "int8"
    assert meta["derived_from_sha256"] == sha256_file(detector_model_path)
    assert "sample_clip.mp4" in meta["calibration_source"]
    assert "QDQ" in meta["quantization"] and "per-channel" in meta["quantization"]
    agreement = json.loads(meta["agreement"])
    assert agreement["share"] >= MIN_AGREEMENT and agreement["confident_boxes"] >= 20
    assert meta["names"] == "{0: 'Normal', 1: 'Fall'}"  # the source model's own metadata is kept
    # every Conv is quantized (its weights come through DequantizeLinear), the head's tail is float
    producers = {o: n for n in model.graph.node for o in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 64 and all(producers[n.input[1]].op_type == "DequantizeLinear" for n in convs)
    last = producers[model.graph.output[0].name]
    assert last.op_type == "Concat" and all(producers[i].op_type != "DequantizeLinear" for i in last.input)
    sigmoid = next(n for n in model.graph.node if n.op_type == "Sigmoid" and n.output[0] in last.input)
    assert producers[sigmoid.input[0]].op_type != "DequantizeLinear"  # class scores: float in, float out


def test_int8_boxes_agree_with_the_float_model_on_real_frames(int8_path, person_detector, vtest_frames):
    int8 = YoloOnnxDetector(int8_path, person_classes=CLASSES, device="cpu")
    assert int8.precision == "int8" and int8.names == person_detector.names
    reference = [person_detector.detect([f])[0] for f in vtest_frames]
    candidate = [int8.detect([f])[0] for f in vtest_frames]
    kept, total = box_agreement(reference, candidate)
    print(f"\nint8 keeps {kept} of {total} confident float boxes ({kept / total:.1%}) at IoU > 0.7")
    assert total >= 40 and kept / total >= MIN_AGREEMENT


def test_float_tail_is_the_post_processing_after_the_last_feature_convs(detector_model_path):
    model = onnx.load(str(detector_model_path))
    tail = set(float_tail(model))
    ops = {n.name: n.op_type for n in model.graph.node}
    assert {ops[n] for n in tail} >= {"Softmax", "Sigmoid", "Sub", "Add", "Div", "Mul", "Concat"}
    assert "Conv" not in {ops[n] for n in tail}
    # the SiLU activations between Convs are quantized: none of the backbone's Sigmoids is in the tail
    assert sum(1 for n, op in ops.items() if op == "Sigmoid" and n not in tail) == 57


def test_engine_runs_the_int8_model_and_its_runs_are_other_runs(tmp_path, int8_path, detector_model_path,
                                                                reid_model_path, reid_embedder, person_detector):
    with Engine(tmp_path / "lib.sqlite", detector=detector_model_path, reid=reid_model_path, device="cpu",
                precision="fp32") as fp32:
        assert fp32.precision == "fp32" and fp32.detector_path == Path(detector_model_path)
    int8 = YoloOnnxDetector(int8_path, person_classes=CLASSES, device="cpu")
    tracker = fp32.tracker_factory
    _, float_key = run_settings(person_detector, reid_embedder, tracker(), fp32.settings)
    int8_settings, int8_key = run_settings(int8, reid_embedder, tracker(), fp32.settings)
    assert float_key == fp32.settings_key and int8_key != float_key
    assert int8_settings["detector_config"]["precision"] == "int8"
    assert int8_settings["detector_name"] == int8_path.stem
    if find_derived(detector_model_path, "int8") is not None:  # installed: the default on the CPU
        with Engine(tmp_path / "lib.sqlite", detector=detector_model_path, reid=reid_model_path,
                    device="cpu") as auto:
            assert auto.precision == "int8" and auto.detector_path == int8_path
            assert auto.float_detector_path == Path(detector_model_path)
            assert auto.settings_key == int8_key


def test_precision_choice_and_fallback(tmp_path, detector_model_path):
    assert resolve_precision("auto", on_gpu=False) == "int8"
    assert resolve_precision("auto", on_gpu=True) == "fp16"
    assert resolve_precision("fp32", on_gpu=True) == "fp32"
    with pytest.raises(ValueError, match="auto, int8, fp16, fp32"):
        resolve_precision("int4", on_gpu=False)
    # nothing made in this folder: the float model runs; asked for by name, a note says how to make it
    path, used, note = model_for_precision(detector_model_path, "int8", on_gpu=False, folder=tmp_path)
    assert (path, used) == (Path(detector_model_path), "fp32")
    assert "python -m core.models quantize" in note and "int8" in note
    assert model_for_precision(detector_model_path, "auto", on_gpu=False, folder=tmp_path) == (
        Path(detector_model_path), "fp32", None)  # "auto" falls back quietly, as device="auto" does


def test_a_recorded_model_whose_bytes_changed_is_not_used(tmp_path, detector_model_path):
    fake = tmp_path / "copy.int8.onnx"
    fake.write_bytes(b"not the recorded bytes")
    record_derived(DerivedModel(file=fake.name, precision="int8", sha256="0" * 64, source_file="x.onnx",
                                source_sha256=sha256_file(detector_model_path), made="now", folder=tmp_path))
    assert [m.file for m in load_derived(tmp_path)] == [fake.name]
    assert find_derived(detector_model_path, "int8", tmp_path) is None


def test_quantize_command_makes_and_records_a_model(tmp_path, detector_model_path):
    proc = subprocess.run([sys.executable, "-m", "core.models", "quantize", str(detector_model_path),
                           "--models-dir", str(tmp_path), "--frames", "4"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (made,) = load_derived(tmp_path)
    assert made.path == tmp_path / "yolov8s_people_normal_fall.int8.onnx" and made.usable()
    assert made.sha256 == sha256_file(made.path) and made.about["agreement"]["frames"] == 4
    assert "confident boxes kept" in proc.stdout
    assert find_derived(detector_model_path, "int8", tmp_path) == made


def test_float16_model_runs_and_agrees(tmp_path, detector_model_path, person_detector, vtest_frames):
    made = convert_float16(detector_model_path, tmp_path / "det.fp16.onnx", record=False)
    onnx.checker.check_model(str(made.path))
    half = YoloOnnxDetector(made.path, person_classes=CLASSES, device="cpu")  # ORT runs it on the CPU too
    assert half.precision == "fp16"
    frames = vtest_frames[:6]
    kept, total = box_agreement([person_detector.detect([f])[0] for f in frames],
                                       [half.detect([f])[0] for f in frames])
    assert total >= 10 and kept == total
