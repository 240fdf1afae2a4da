"""Make the int8 (and float16) version of a YOLO detector with ONNX Runtime's own tools.

int8 (:func:`quantize_int8`): ``onnxruntime.quantization.quantize_static`` in QDQ format,
per-channel int8 weights, uint8 activations, MinMax calibration (averaged over the frames,
``CalibMovingAverage``: measured on vtest frames the calibration never saw, 96 % of the
confident boxes kept against 93 % for plain MinMax, as many as Percentile or twice the
frames give, at MinMax's cost) on real frames letterboxed exactly as the detector does it.
Every Conv is quantized, and so are the ops between the Convs (SiLU, Concat, Split, MaxPool,
Resize, Add); the head's post-processing after the last feature Convs (the DFL's
Reshape/Transpose/Softmax, box decoding with its Sub/Add/Div/Mul, the class Sigmoid and the
final Concat: :func:`float_tail`) stays float. Quantizing that too makes the shared YOLOv8s
output no boxes at all: the box coordinates (0..640) and the class scores (0..1) would share
one uint8 scale in the last Concat.

Calibration frames come from a video (at install time the project's own
``assets/sample_clip.mp4``): ``2 * frames`` frames evenly spaced over it, the even ones
calibrate and the odd ones measure the agreement with the float model (share of the float
model's confident boxes, score >= :data:`CONFIDENT`, that the int8 model reproduces at
IoU > :data:`AGREEMENT_IOU`). Both facts go into the new model's ONNX metadata
(``precision``, ``derived_from``, ``derived_from_sha256``, ``quantization``,
``calibration_source``, ``agreement``), next to the source model's own metadata.

float16 (:func:`convert_float16`, for CUDA): ``onnxruntime.transformers.float16``, inputs
and outputs kept float32 and the same head tail kept float32.
"""

from __future__ import annotations

import ast
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from core import paths
from core.errors import ModelError
from core.fileio import sha256_file
from core.models.derived import DerivedModel, derived_file_name, new_record, record_derived

CONFIDENT = 0.5
"""Score from which a float-model box counts as confident in the agreement figure."""

AGREEMENT_IOU = 0.7
"""IoU above which an int8 box reproduces a float box."""

DEFAULT_CALIBRATION_FRAMES = 24
"""Frames that calibrate (as many again measure the agreement)."""


def default_calibration_video() -> Path:
    """The project's own sample clip (``assets/sample_clip.mp4``): what every install has."""
    return paths.REPO_ROOT / "assets" / "sample_clip.mp4"


def float_tail(model: Any) -> list[str]:
    """Names of the nodes that stay float: every non-Conv node after the last feature Convs.

    A *feature Conv* is a Conv with a bias (every learned, batch-norm-fused Conv of a YOLO
    export); the DFL's fixed-weight Conv has none. A node belongs to the tail when no
    feature Conv is downstream of it.

    Args:
        model: An ``onnx.ModelProto`` (nodes in topological order, as ONNX requires).
    """
    nodes = list(model.graph.node)
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(i)
    feature = [n.op_type == "Conv" and len(n.input) > 2 and bool(n.input[2]) for n in nodes]
    reaches = [False] * len(nodes)
    for i in range(len(nodes) - 1, -1, -1):
        reaches[i] = any(feature[j] or reaches[j] for out in nodes[i].output for j in consumers.get(out, ()))
    return [n.name for n, r in zip(nodes, reaches, strict=True) if not r and n.op_type != "Conv"]


def _class_names(model: Any, path: Path) -> tuple[str, ...]:
    meta = {p.key: p.value for p in model.metadata_props}
    try:
        names = ast.literal_eval(meta.get("names", ""))
        return tuple(str(v) for v in dict(names).values())
    except (ValueError, SyntaxError, TypeError):
        raise ModelError(f"{path} has no Ultralytics class names ('names' metadata); only Ultralytics "
                         "YOLO exports can be quantized here.") from None


def calibration_frames(video: Path, count: int) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """``2 * count`` frames evenly spaced over ``video``: (calibration frames, agreement frames, indices)."""
    from core.video import open_source

    with open_source(video) as src:
        total = src.frame_count or 2 * count
        step = max(1, total // (2 * count))
        frames = [(f.index, f.image) for f in src.iter_frames(stride=step)][: 2 * count]
    if len(frames) < 2:
        raise ModelError(f"{video}: too few frames to calibrate on ({len(frames)}).")
    return [im for _, im in frames[0::2]], [im for _, im in frames[1::2]], [i for i, _ in frames]


def box_agreement(reference: list[Any], candidate: list[Any], *, min_score: float = CONFIDENT,
                  iou: float = AGREEMENT_IOU) -> tuple[int, int]:
    """``(kept, total)``: reference boxes with score >= ``min_score`` that ``candidate`` reproduces at IoU > ``iou``.

    Args:
        reference: ``Detections`` per frame from the float model.
        candidate: ``Detections`` per frame from the derived model (same frames).
    """
    from core.track_motion import iou_matrix

    kept = total = 0
    for ref, cand in zip(reference, candidate, strict=True):
        boxes = ref.boxes[ref.scores >= min_score]
        total += len(boxes)
        if len(boxes) and len(cand):
            kept += int((iou_matrix(boxes, cand.boxes).max(axis=1) > iou).sum())
    return kept, total


def _measure(source: Path, derived: Path, classes: tuple[str, ...], frames: list[np.ndarray],
             ) -> dict[str, Any]:
    from core.detection import YoloOnnxDetector

    timings = {}
    outs = {}
    for label, path in (("fp32", source), ("derived", derived)):
        det = YoloOnnxDetector(path, person_classes=classes, device="cpu")
        det.detect(frames[:1])
        t0 = time.perf_counter()
        outs[label] = [det.detect([f])[0] for f in frames]
        timings[label] = (time.perf_counter() - t0) / len(frames)
    kept, total = box_agreement(outs["fp32"], outs["derived"])
    agreement = {"confident_boxes": total, "kept": kept, "share": round(kept / total, 4) if total else None,
                 "min_score": CONFIDENT, "iou": AGREEMENT_IOU, "frames": len(frames)}
    return agreement, round(timings["fp32"] / timings["derived"], 2)


def _save_with_metadata(model: Any, out: Path, extra: dict[str, str]) -> None:
    import onnx

    keep = [p for p in model.metadata_props if p.key not in extra]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in extra.items():
        model.metadata_props.add(key=key, value=value)
    part = out.with_name(out.name + ".part")
    onnx.save(model, str(part))
    os.replace(part, out)


class _Frames:
    """``onnxruntime.quantization.CalibrationDataReader`` over letterboxed frames."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self.input_name = input_name
        self._it: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._it, None)
        return None if batch is None else {self.input_name: batch}

    def rewind(self) -> None:  # not needed for MinMax, present for the reader protocol
        """Nothing to do."""


def quantize_int8(source: str | Path, out: str | Path | None = None, *, calibration: str | Path | None = None,
                  frames: int = DEFAULT_CALIBRATION_FRAMES, record: bool = True) -> DerivedModel:
    """Make the int8 version of a YOLO detector (see the module notes) and record it.

    Args:
        source: The float32 Ultralytics YOLO ONNX detector.
        out: Where to write (default: ``<models folder>/<stem>.int8.onnx``).
        calibration: Video to calibrate on (default: :func:`default_calibration_video`).
        frames: Calibration frames (as many again measure the agreement).
        record: Add it to the models folder's ``local.json``.

    Returns:
        The record (sha256, calibration source, measured agreement).

    Raises:
        ModelError: The source is not a usable YOLO detector or quantization failed.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from core.detection import YoloOnnxDetector

    source = Path(source)
    out = Path(out) if out else paths.models_dir() / derived_file_name(source, "int8")
    calibration = Path(calibration) if calibration else default_calibration_video()
    try:
        model = onnx.load(str(source))
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, OSError, ...
        raise ModelError(f"{source} cannot be read as an ONNX model ({exc}).") from None
    classes = _class_names(model, source)
    det = YoloOnnxDetector(source, person_classes=classes, device="cpu")
    calib, check, indices = calibration_frames(calibration, frames)
    batches = [det.preprocess([f])[0] for f in calib]
    keep_float = float_tail(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        raw = Path(tmp) / out.name
        try:
            quantize_static(str(source), str(raw), _Frames(det._model.input_name, batches),
                            quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                            activation_type=QuantType.QUInt8, nodes_to_exclude=keep_float,
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"CalibMovingAverage": True})
        except Exception as exc:  # noqa: BLE001 - the quantizer raises anything from onnx and ORT
            raise ModelError(f"quantizing {source.name} failed: {type(exc).__name__}: {exc}") from None
        agreement, speedup = _measure(source, raw, classes, check)
        about = {
            "quantization": "onnxruntime.quantization.quantize_static, QDQ, per-channel int8 weights, "
                            f"uint8 activations, MinMax (moving average over frames); {len(keep_float)} "
                            "head post-processing nodes "
                            "after the last feature Convs kept float",
            "calibration_source": f"{calibration.name} (sha256 {sha256_file(calibration)[:16]}), "
                                  f"{len(calib)} frames {indices[0::2]}",
            "agreement": agreement,
        }
        quantized = onnx.load(str(raw))
        _save_with_metadata(quantized, out, _metadata(source, "int8", about))
    # the speed-up is this machine's, and noisy: in the record, not in the model (whose bytes then
    # depend only on the source model, the calibration frames and ONNX Runtime's quantizer)
    made = new_record(source, out, "int8", {**about, "speedup_cpu": speedup})
    if record:
        record_derived(made)
    return made


def _metadata(source: Path, precision: str, about: dict[str, Any]) -> dict[str, str]:
    meta = {"precision": precision, "derived_from": source.name,
            "derived_from_sha256": sha256_file(source, cached=True)}
    for key, value in about.items():
        meta[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return meta


def convert_float16(source: str | Path, out: str | Path | None = None, *, record: bool = True) -> DerivedModel:
    """Make the float16 version of a YOLO detector for CUDA (inputs/outputs and the head tail stay float32).

    Args:
        source: The float32 Ultralytics YOLO ONNX detector.
        out: Where to write (default: ``<models folder>/<stem>.fp16.onnx``).
        record: Add it to the models folder's ``local.json``.

    Raises:
        ModelError: The source cannot be read or converted.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    source = Path(source)
    out = Path(out) if out else paths.models_dir() / derived_file_name(source, "fp16")
    try:
        model = onnx.load(str(source))
        keep_float = float_tail(model)
        half = convert_float_to_float16(model, keep_io_types=True, node_block_list=keep_float)
    except Exception as exc:  # noqa: BLE001 - onnx / converter errors of any kind
        raise ModelError(f"converting {source.name} to float16 failed: {type(exc).__name__}: {exc}") from None
    _sort_nodes(half.graph)  # the converter appends its input Casts at the end; ONNX wants them first
    about = {"conversion": "onnxruntime.transformers.float16, float32 inputs and outputs, "
                           f"{len(keep_float)} head post-processing nodes kept float32"}
    out.parent.mkdir(parents=True, exist_ok=True)
    _save_with_metadata(half, out, _metadata(source, "fp16", about))
    made = new_record(source, out, "fp16", about)
    if record:
        record_derived(made)
    return made


def _sort_nodes(graph: Any) -> None:
    """Put a graph's nodes in topological order (stable: a node keeps its place when it can)."""
    known = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise ModelError("the converted graph has a cycle or an input nothing produces")
        for node in ready:
            known.update(node.output)
        ordered += ready
        pending = [n for n in pending if all(n is not r for r in ready)]
    graph.ClearField("node")
    graph.node.extend(ordered)
