"""Person detection with an Ultralytics YOLO model exported to ONNX, run by ONNX Runtime.

The class list, input size and stride come from the Ultralytics metadata in the
ONNX file, so any Ultralytics detect export works (YOLOv8, YOLO11, YOLO26, a
custom-trained model); which classes count as people is configuration
(``person_classes``, from the model manifest), never a special case here.

Pre-processing matches Ultralytics ``predict``: letterbox (keep the aspect ratio,
pad with grey 114, image centred), BGR to RGB, ``/ 255``, NCHW float32. When the
model accepts any input height and width, each batch is padded only up to the
next multiple of the stride (``rect``), as Ultralytics does for PyTorch models;
otherwise to the full ``imgsz`` square.

Post-processing: the raw head ``(N, 4 + C, anchors)`` (``cx, cy, w, h`` in
letterboxed input pixels, then one score per class) is decoded with the best
class per anchor, a confidence threshold, the person-class filter and class-aware
non-maximum suppression; ``end2end`` exports ``(N, K, 6)`` already hold NMS'd
``x1, y1, x2, y2, score, class``. Boxes are mapped back to the original image
and clipped to it.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from core.errors import ModelError
from core.onnx_model import OnnxBacked, OnnxModel, load_session
from core.types import Detections

PAD_VALUE = 114
MAX_DET = 300
_MAX_NMS = 30000


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float, classes: np.ndarray | None = None) -> np.ndarray:
    """Greedy non-maximum suppression (OpenCV's ``cv2.dnn.NMSBoxes``, ``NMSBoxesBatched`` per class).

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)`` confidences.
        iou: Boxes overlapping a kept, higher-scoring box by more than this IoU are dropped.
        classes: ``(N,)`` class ids: a box is only dropped for a box of its own class
            (``None``: all boxes compete).

    Returns:
        ``(K,)`` int64 indices of the kept boxes, highest score first.
    """
    boxes = np.asarray(boxes)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    if classes is None:
        kept = cv2.dnn.NMSBoxes(xywh, scores, 0.0, iou)
    else:
        kept = cv2.dnn.NMSBoxesBatched(xywh, scores, np.asarray(classes, np.int32), 0.0, iou)
    return np.asarray(kept, np.int64).reshape(-1)


def _parse_literal(model: OnnxModel, key: str) -> object:
    """Parse one Ultralytics metadata value (python literal text), or ``None`` when absent."""
    text = model.metadata.get(key)
    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):  # hostile text: nesting too
        raise ModelError(f"{model.path} has unreadable Ultralytics metadata {key}={text[:80]!r}.") from None


def _check_image(i: int, im: object) -> None:
    if not (isinstance(im, np.ndarray) and im.dtype == np.uint8 and im.ndim == 3
            and im.shape[2] == 3 and im.shape[0] > 0 and im.shape[1] > 0):
        raise ValueError(f"image {i} must be (H, W, 3) uint8 BGR, got "
                         f"{getattr(im, 'shape', type(im).__name__)} {getattr(im, 'dtype', '')}")


def _bad_metadata(model: OnnxModel, key: str, expected: str) -> ModelError:
    text = model.metadata.get(key, "")
    return ModelError(f"{model.path} has unusable Ultralytics metadata {key}={text[:80]!r} "
                      f"(expected {expected}).")


def _class_names(model: OnnxModel) -> dict[int, str]:
    """``{class id: name}`` from the metadata ``names``."""
    names = _parse_literal(model, "names")
    if not isinstance(names, dict) or not names:
        raise ModelError(f"{model.path} has no Ultralytics class names in its metadata ('names'); "
                         "export it with Ultralytics (model.export(format='onnx')).")
    if not all(isinstance(k, int) and not isinstance(k, bool) and isinstance(v, str)
               for k, v in names.items()):
        raise _bad_metadata(model, "names", "{class id: 'name', ...}")
    return dict(names)


def _sizes(value: object, count: int | None) -> tuple[int, ...] | None:
    """``value`` as positive pixel sizes (one int, or ``count`` of them when given), else ``None``."""
    values = value if isinstance(value, (list, tuple)) else (value,)
    if not values or count is not None and len(values) != count or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1 << 15 for v in values):
        return None
    return tuple(values)


class YoloOnnxDetector(OnnxBacked):
    """Finds people with an Ultralytics YOLO detect model in ONNX format (implements ``core.types.Detector``).

    Attributes:
        path: The model file.
        names: ``{class_id: name}`` from the model's metadata.
        person_ids: Class ids kept (those named in ``person_classes``).
        imgsz: ``(H, W)`` network input size.
        stride: Largest network stride (padding multiple for ``rect`` batches).
        provider: Execution provider in use, e.g. ``CPUExecutionProvider``.
        fallback_note: Set when CUDA was asked for but is not available.
        end2end: Whether the model outputs already-suppressed ``(N, K, 6)`` detections.
        precision: ``"fp32"``, or the ``precision`` metadata of a derived model (``"int8"``, ``"fp16"``,
            see ``core.models.quantize``).
    """

    def __init__(self, path: str | os.PathLike[str], *, person_classes: Sequence[str] = ("person",),
                 conf: float = 0.25, iou: float = 0.45, device: str = "auto", max_batch: int = 8,
                 rect: bool = True, merge_person_classes: bool = True, threads: int | None = None,
                 imgsz: int | None = None) -> None:
        """Load the model and check its class list.

        Args:
            path: An Ultralytics detect model exported to ONNX.
            person_classes: Class names that are people; every name must be one of the model's classes.
            conf: Minimum confidence in ``[0, 1]``.
            iou: NMS IoU threshold in ``[0, 1]`` (boxes of the same class overlapping more are merged).
            device: ``"auto"``, ``"cuda"`` or ``"cpu"`` (see ``core.onnx_model.load_session``).
            max_batch: Most images per ONNX Runtime call (models exported with a fixed batch size
                use that size instead).
            rect: Pad batches only to the next stride multiple when the model takes any input size.
            merge_person_classes: Run NMS over all person classes together, so one person seen as
                two person classes (e.g. ``Normal`` and ``Fall``) gives one box, the higher-scoring
                one; ``False`` gives plain class-aware NMS as Ultralytics does.
            threads: ONNX Runtime intra-op threads (default: all cores).
            imgsz: Longest side of the network input in pixels, a multiple of the model's stride
                (``None``: the size in the model's metadata, 640 for Ultralytics exports). Larger
                finds smaller people at a higher cost; only models exported with a dynamic
                input size take another size.

        Raises:
            ModelError: The file is not a usable Ultralytics detector, lacks class names, or does
                not know one of ``person_classes``.
            ValueError: ``conf`` or ``iou`` is outside ``[0, 1]`` or ``max_batch`` < 1.
        """
        if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
            raise ValueError(f"conf and iou must be in [0, 1], got conf={conf}, iou={iou}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        asked = imgsz
        self._model = load_session(path, device=device, expect="detect", threads=threads)
        model = self._model
        self.path: Path = model.path
        self.conf = float(conf)
        self.iou = float(iou)
        self.max_batch = int(max_batch)
        self.merge_person_classes = bool(merge_person_classes)
        self.precision = model.metadata.get("precision", "fp32")

        self.names: dict[int, str] = _class_names(model)

        imgsz = _parse_literal(model, "imgsz")
        if imgsz is None:
            imgsz = model.fixed_hw
        if isinstance(imgsz, int) and not isinstance(imgsz, bool):
            imgsz = (imgsz, imgsz)
        if imgsz is None:
            raise ModelError(f"{model.path} gives no input size: neither metadata 'imgsz' nor a fixed "
                             f"input shape (input {list(model.input_shape)}).")
        size = _sizes(imgsz, 2)
        if size is None:
            raise _bad_metadata(model, "imgsz", "[height, width] in pixels")
        self.imgsz: tuple[int, int] = (size[0], size[1])
        stride = _parse_literal(model, "stride")
        strides = _sizes(32 if stride is None else stride, None)
        if strides is None:
            raise _bad_metadata(model, "stride", "a positive number of pixels, or a list of them")
        self.stride = max(strides)
        # A fixed input shape wins over the metadata: it is what the graph accepts.
        if model.fixed_hw is not None:
            self.imgsz = model.fixed_hw
        if asked is not None and (int(asked), int(asked)) != self.imgsz:
            if model.fixed_hw is not None:
                raise ModelError(f"{model.path} takes only {model.fixed_hw[1]}x{model.fixed_hw[0]} input "
                                 f"(exported with a fixed size), not {asked}; export it with dynamic=True "
                                 "for another size.")
            if int(asked) < self.stride or int(asked) % self.stride:
                raise ValueError(f"The detector's input size must be a multiple of its stride "
                                 f"{self.stride} pixels (e.g. 640, 960), got {asked}.")
            self.imgsz = (int(asked), int(asked))
        self.rect = bool(rect) and model.fixed_hw is None

        out_shape = model.output_shapes[0]
        flag = model.metadata.get("end2end")
        if flag is not None:
            self.end2end = flag.strip().lower() == "true"
        else:  # older exports (e.g. YOLOv10) lack the flag: recognise (N, K, 6) by its shape
            self.end2end = (out_shape[2] == 6 and isinstance(out_shape[1], int)
                            and out_shape[1] != 4 + len(self.names))
        if max(self.names) + 1 != len(self.names):
            raise ModelError(f"{model.path} has class ids {sorted(self.names)} in its metadata 'names'; "
                             "expected 0 to N-1.")
        if not self.end2end and isinstance(out_shape[1], int) and out_shape[1] != 4 + len(self.names):
            raise ModelError(f"{model.path} outputs {out_shape[1]} channels per anchor but its metadata "
                             f"names {len(self.names)} classes (expected 4 + {len(self.names)}).")

        by_name: dict[str, list[int]] = {}
        for cid, name in self.names.items():
            by_name.setdefault(name, []).append(cid)
        person_classes = tuple(person_classes)
        unknown = [c for c in person_classes if c not in by_name]
        if unknown or not person_classes:
            listed = ", ".join(repr(n) for n in self.names.values())
            raise ModelError(f"{model.path} has no class {', '.join(map(repr, unknown)) or '(none given)'} "
                             f"among its classes {listed}; set person_classes to class names of this model.")
        self.person_classes = person_classes
        self.person_ids: tuple[int, ...] = tuple(sorted(i for c in person_classes for i in by_name[c]))
        self._is_person = np.zeros(len(self.names), bool)
        self._is_person[list(self.person_ids)] = True

    # -- pre-processing -------------------------------------------------------------------------

    def _scaled_size(self, h: int, w: int) -> tuple[int, int]:
        """Size ``(h, w)`` of an ``h x w`` image resized to fit ``imgsz`` with its aspect ratio."""
        r = min(self.imgsz[0] / h, self.imgsz[1] / w)
        return int(round(h * r)), int(round(w * r))

    def _batch_shape(self, sizes: list[tuple[int, int]]) -> tuple[int, int]:
        """Network input ``(H, W)`` for a batch of images of the given sizes."""
        if not self.rect:
            return self.imgsz
        s = self.stride
        hs, ws = zip(*(self._scaled_size(h, w) for h, w in sizes), strict=True)
        return (min(self.imgsz[0], -(-max(hs) // s) * s), min(self.imgsz[1], -(-max(ws) // s) * s))

    def _letterbox(self, im: np.ndarray, th: int, tw: int, out: np.ndarray) -> np.ndarray:
        """Letterbox one BGR image into ``out``, ``(3, th, tw)`` float32 RGB in [0, 1]; returns its params."""
        h, w = im.shape[:2]
        gain = min(self.imgsz[0] / h, self.imgsz[1] / w)
        nh, nw = self._scaled_size(h, w)
        resized = im if (nh, nw) == (h, w) else cv2.resize(im, (nw, nh), interpolation=cv2.INTER_LINEAR)
        # Centre like Ultralytics LetterBox: top = round(dh - 0.1), left = round(dw - 0.1).
        top = int(round((th - nh) / 2 - 0.1))
        left = int(round((tw - nw) / 2 - 0.1))
        canvas = np.full((th, tw, 3), PAD_VALUE, np.uint8)
        canvas[top:top + nh, left:left + nw] = resized
        # One pass: BGR->RGB, HWC->CHW, uint8->float32 in [0, 1].
        np.multiply(canvas[..., ::-1].transpose(2, 0, 1), np.float32(1 / 255), out=out, dtype=np.float32)
        return np.array((gain, left, top), np.float64)

    def preprocess(self, images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Letterbox a batch of BGR images into one network input.

        Args:
            images: ``B`` images, each ``(H, W, 3)`` uint8 BGR.

        Returns:
            ``(B, 3, H', W')`` float32 RGB in ``[0, 1]``, and ``(B, 3)`` float64 rows of
            ``(gain, pad_x, pad_y)`` that map input pixels back: ``orig = (net - pad) / gain``.
        """
        th, tw = self._batch_shape([im.shape[:2] for im in images])
        batch = np.empty((len(images), 3, th, tw), np.float32)
        params = np.zeros((len(images), 3), np.float64)
        for i, im in enumerate(images):
            params[i] = self._letterbox(im, th, tw, batch[i])
        return batch, params

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Letterbox one image on its own (what a decoding thread does ahead of :meth:`detect_prepared`).

        Returns:
            ``(3, H', W')`` float32 input and ``(3,)`` params, exactly the row :meth:`preprocess`
            gives this image in a batch of images of its size.
        """
        _check_image(0, image)
        th, tw = self._batch_shape([image.shape[:2]])
        out = np.empty((3, th, tw), np.float32)
        return out, self._letterbox(image, th, tw, out)

    def detect_prepared(self, images: list[np.ndarray],
                        prepared: list[tuple[np.ndarray, np.ndarray]]) -> list[Detections]:
        """:meth:`detect` for images already letterboxed by :meth:`prepare` (same results).

        Images of different sizes (an image folder) are letterboxed again together, as
        :meth:`detect` does.
        """
        if len({p[0].shape for p in prepared}) > 1:
            return self.detect(images)
        step = self._model.fixed_batch or self.max_batch
        results: list[Detections] = []
        for start in range(0, len(images), step):
            chunk = prepared[start:start + step]
            batch = np.stack([p[0] for p in chunk])
            params = np.stack([p[1] for p in chunk])
            results += self._run_batch(batch, params, images[start:start + step])
        return results

    # -- post-processing ------------------------------------------------------------------------

    def _decode_raw(self, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One image's raw head ``(4 + C, anchors)`` -> NMS'd person boxes in network pixels."""
        if pred.shape[0] != 4 + len(self._is_person):
            raise ModelError(f"{self.path} outputs {pred.shape[0]} values per anchor but its metadata names "
                             f"{len(self.names)} classes (expected 4 + {len(self.names)}).")
        pred = pred.T  # (anchors, 4 + C)
        cls_scores = pred[:, 4:]
        classes = cls_scores.argmax(1)
        scores = cls_scores[np.arange(len(pred)), classes]
        keep = (scores > self.conf) & self._is_person[classes]
        if not keep.any():
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
        xywh, scores, classes = pred[keep, :4], scores[keep], classes[keep]
        if len(scores) > _MAX_NMS:
            top = np.argsort(-scores)[:_MAX_NMS]
            xywh, scores, classes = xywh[top], scores[top], classes[top]
        boxes = np.empty_like(xywh)
        boxes[:, :2] = xywh[:, :2] - xywh[:, 2:] / 2
        boxes[:, 2:] = xywh[:, :2] + xywh[:, 2:] / 2
        kept = nms(boxes, scores, self.iou, None if self.merge_person_classes else classes)[:MAX_DET]
        return boxes[kept], scores[kept], classes[kept]

    def _decode_end2end(self, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One image's end2end output ``(K, 6)`` -> person boxes in network pixels."""
        classes = pred[:, 5].round().astype(np.int64)
        valid = (classes >= 0) & (classes < len(self._is_person))
        keep = valid & (pred[:, 4] > self.conf)
        keep[valid] &= self._is_person[classes[valid]]
        return pred[keep, :4], pred[keep, 4], classes[keep]

    def _to_detections(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                       param: np.ndarray, shape: tuple[int, ...]) -> Detections:
        """Map network-pixel boxes of one image back to its pixels, clip, drop empty boxes."""
        gain, pad_x, pad_y = param
        h, w = shape[:2]
        out = boxes.astype(np.float64)
        out[:, [0, 2]] = ((out[:, [0, 2]] - pad_x) / gain).clip(0, w)
        out[:, [1, 3]] = ((out[:, [1, 3]] - pad_y) / gain).clip(0, h)
        ok = (out[:, 2] > out[:, 0]) & (out[:, 3] > out[:, 1])
        return Detections(out[ok].astype(np.float32), scores[ok].astype(np.float32),
                          classes[ok].astype(np.int64))

    # -- public ---------------------------------------------------------------------------------

    def detect(self, images: list[np.ndarray]) -> list[Detections]:
        """Detect people in a batch of images.

        Args:
            images: ``(H, W, 3)`` uint8 BGR images (sizes may differ).

        Returns:
            One ``Detections`` per image: ``boxes (N, 4)`` float32 xyxy pixels of that image,
            ``scores (N,)``, ``classes (N,)`` ids into ``names`` (only person classes).

        Raises:
            ValueError: An image is not ``(H, W, 3)`` uint8 with H, W > 0.
        """
        for i, im in enumerate(images):
            _check_image(i, im)
        step = self._model.fixed_batch or self.max_batch
        results: list[Detections] = []
        for start in range(0, len(images), step):
            chunk = images[start:start + step]
            batch, params = self.preprocess(chunk)
            results += self._run_batch(batch, params, chunk)
        return results

    def _run_batch(self, batch: np.ndarray, params: np.ndarray, images: list[np.ndarray]) -> list[Detections]:
        out = self._model.run_batched(batch, self._model.fixed_batch or self.max_batch)
        decode = self._decode_end2end if self.end2end else self._decode_raw
        return [self._to_detections(*decode(pred), param, im.shape)
                for pred, param, im in zip(out, params, images, strict=True)]

    def __repr__(self) -> str:
        return (f"YoloOnnxDetector({str(self.path)!r}, person_classes={self.person_classes}, "
                f"conf={self.conf}, iou={self.iou}, imgsz={self.imgsz}, provider={self.provider!r})")
