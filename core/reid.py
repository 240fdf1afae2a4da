"""Person re-identification embeddings with an ONNX model run by ONNX Runtime.

Pre-processing (input size, colour order, mean and std) comes from the model's
ONNX metadata (keys written by ``training/``: ``input_height``, ``input_width``,
``color_order``, ``mean``, ``std``, ``embedding_dim``, ``model_name``) or, for a
model without metadata, from its manifest entry's ``preprocess`` dict
(``input_size [h, w]``, ``color_order``, ``mean``, ``std``). Metadata wins where
both give a value.

Each crop is resized to the model's input with ``cv2.INTER_LINEAR``, put in the
model's colour order, scaled as ``(pixel / 255 - mean) / std``, run in batches, and
the output is L2-normalised (float32), so a dot product is the cosine similarity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.errors import ModelError
from core.onnx_model import OnnxBacked, load_session
from core.types import Embeddings

METADATA_KEYS = ("input_height", "input_width", "color_order", "mean", "std")
"""Metadata keys the embedder needs (``embedding_dim``, ``model_name`` are optional)."""
COLOR_ORDERS = ("RGB", "BGR")
MAX_INPUT_SIDE = 4096
"""Largest input height or width taken from a model's metadata (ReID inputs are a few hundred pixels)."""


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or hostile nesting
        return text


def _resolve_preprocess(path: Path, metadata: Mapping[str, str],
                        preprocess: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge the model metadata (first) and the manifest ``preprocess`` dict into one checked config.

    Returns:
        ``{"input_size": (h, w), "color_order": "RGB"|"BGR", "mean": (3,), "std": (3,)}``.

    Raises:
        ModelError: A value is missing from both, or is malformed.
    """
    pre = dict(preprocess or {})
    found: dict[str, Any] = {}
    if "input_height" in metadata and "input_width" in metadata:
        found["input_size"] = (_parse_json(metadata["input_height"]), _parse_json(metadata["input_width"]))
    elif "input_size" in pre:
        found["input_size"] = pre["input_size"]
    for key in ("color_order", "mean", "std"):
        if key in metadata:
            found[key] = _parse_json(metadata[key]) if key != "color_order" else metadata[key]
        elif key in pre:
            found[key] = pre[key]
    missing = [k for k in METADATA_KEYS
               if (k in ("input_height", "input_width") and "input_size" not in found)
               or (k not in ("input_height", "input_width") and k not in found)]
    if missing:
        raise ModelError(
            f"{path} has no ReID pre-processing metadata ({', '.join(missing)} missing) and none was given; "
            "its manifest entry can supply it as \"preprocess\": {\"input_size\": [h, w], "
            "\"color_order\": \"RGB\", \"mean\": [...], \"std\": [...]}.")
    try:
        h, w = (int(v) for v in found["input_size"])
        order = str(found["color_order"]).upper()
        mean = np.asarray(found["mean"], np.float32).reshape(3)
        std = np.asarray(found["std"], np.float32).reshape(3)
        if not (0 < h <= MAX_INPUT_SIDE and 0 < w <= MAX_INPUT_SIDE) or order not in COLOR_ORDERS \
                or not (std > 0).all():
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        shown = repr({k: found[k] for k in ("input_size", "color_order", "mean", "std")})
        shown = shown if len(shown) <= 200 else shown[:197] + "..."
        raise ModelError(f"{path} has unusable ReID pre-processing {shown}: need input_size [h, w] > 0, "
                         f"color_order RGB or BGR, and 3 means and 3 positive stds.") from None
    return {"input_size": (h, w), "color_order": order, "mean": mean, "std": std}


class OnnxEmbedder(OnnxBacked):
    """Turns person crops into L2-normalised ReID vectors (implements ``core.types.Embedder``).

    Attributes:
        path: The model file.
        name: ``model_name`` from the metadata, else the file's stem.
        input_size: ``(h, w)`` the crops are resized to.
        color_order: ``"RGB"`` or ``"BGR"``: channel order the model expects.
        mean: ``(3,)`` float32 per-channel mean on the 0..1 scale, in the model's channel order.
        std: ``(3,)`` float32 per-channel std, same order.
        min_size: ``(h, w)`` smallest box (after clipping to the image) that is embedded.
        batch_size: Most crops per ONNX Runtime call.
        metadata: The model's ONNX metadata map.
    """

    def __init__(self, path: str | os.PathLike[str], *, preprocess: Mapping[str, Any] | None = None,
                 device: str = "auto", batch_size: int = 32, min_size: tuple[int, int] = (16, 8),
                 threads: int | None = None) -> None:
        """Load the model and work out its pre-processing.

        Args:
            path: ONNX ReID model: input ``(N, 3, h, w)``, output ``(N, D)``.
            preprocess: Manifest ``preprocess`` dict (``input_size [h, w]``, ``color_order``,
                ``mean``, ``std``) for models without ReID metadata; ignored where metadata exists.
            device: ``"auto"``, ``"cuda"`` or ``"cpu"`` (see ``core.onnx_model.load_session``).
            batch_size: Most crops per ONNX Runtime call (a model with a fixed batch size uses that).
            min_size: ``(h, w)`` in pixels; smaller boxes are skipped with a reason.
            threads: ONNX Runtime intra-op threads (default: all cores).

        Raises:
            ModelError: The file is missing, not ONNX, not a ReID model, its pre-processing is
                unknown, or its input shape disagrees with the configured input size.
            ValueError: ``batch_size`` < 1.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._model = load_session(path, device=device, expect="reid", threads=threads)
        model = self._model
        self.path: Path = model.path
        self.metadata = model.metadata
        cfg = _resolve_preprocess(model.path, model.metadata, preprocess)
        self.input_size: tuple[int, int] = cfg["input_size"]
        self.color_order: str = cfg["color_order"]
        self.mean: np.ndarray = cfg["mean"]
        self.std: np.ndarray = cfg["std"]
        self.batch_size = int(batch_size)
        self.min_size = (int(min_size[0]), int(min_size[1]))
        self.name: str = model.metadata.get("model_name") or model.path.stem
        # Scale and shift folded together: x = pixel * scale + shift, in the model's channel order.
        self._scale = (1.0 / (255.0 * self.std)).astype(np.float32)
        self._shift = (-self.mean / self.std).astype(np.float32)

        fixed = model.fixed_hw
        if fixed is not None and fixed != self.input_size:
            raise ModelError(f"{model.path} takes input {fixed[0]}x{fixed[1]} (h x w) but its pre-processing "
                             f"says {self.input_size[0]}x{self.input_size[1]}.")
        out_dim = model.output_shapes[0][1]
        meta_dim = model.metadata.get("embedding_dim")
        if isinstance(out_dim, int) and out_dim > 0:
            self._dim = out_dim
        elif meta_dim is not None and meta_dim.strip().isdigit():
            self._dim = int(meta_dim)
        else:  # dynamic output width and no metadata: ask the model once
            self._dim = int(self._run(np.zeros((1, *self.input_size, 3), np.uint8)).shape[1])
        if meta_dim is not None and meta_dim.strip().isdigit() and int(meta_dim) != self._dim:
            raise ModelError(f"{model.path} outputs {self._dim}-d vectors but its metadata says "
                             f"embedding_dim={meta_dim}.")

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return self._dim

    def _run(self, crops: np.ndarray) -> np.ndarray:
        """``(B, h, w, 3)`` uint8 BGR crops at the input size -> ``(B, D)`` float32 raw outputs."""
        if self.color_order == "RGB":
            crops = crops[..., ::-1]
        x = np.empty((len(crops), 3, *crops.shape[1:3]), np.float32)
        np.multiply(crops.transpose(0, 3, 1, 2), self._scale[:, None, None], out=x, dtype=np.float32)
        x += self._shift[:, None, None]
        return self._model.run_batched(x, self.batch_size).astype(np.float32, copy=False)

    def _embed_resized(self, crops: list[np.ndarray]) -> np.ndarray:
        """Resize BGR crops to the input size, run them, L2-normalise; returns ``(B, D)`` float32."""
        if not crops:
            return np.zeros((0, self._dim), np.float32)
        h, w = self.input_size
        stack = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_LINEAR) for c in crops])
        out = self._run(stack).reshape(len(crops), -1)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)

    def embed(self, image: np.ndarray, boxes: np.ndarray) -> Embeddings:
        """Embed the people in one image.

        Boxes are rounded to whole pixels and clipped to the image. A box is skipped (and
        listed in ``skipped`` with a reason) when it is not finite, has no area, lies outside
        the image, or is smaller than ``min_size`` after clipping.

        Args:
            image: ``(H, W, 3)`` uint8 BGR image.
            boxes: ``(N, 4)`` xyxy pixel boxes.

        Returns:
            ``Embeddings`` with ``vectors (M, D)`` float32 L2-normalised, ``kept (M,)`` box indices,
            ``skipped`` ``((index, reason), ...)``.

        Raises:
            ValueError: ``image`` is not ``(H, W, 3)`` uint8 or ``boxes`` is not ``(N, 4)``.
        """
        if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
                and image.shape[2] == 3):
            raise ValueError(f"image must be (H, W, 3) uint8 BGR, got {getattr(image, 'shape', type(image))}")
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
        H, W = image.shape[:2]
        min_h, min_w = self.min_size
        crops: list[np.ndarray] = []
        kept: list[int] = []
        skipped: list[tuple[int, str]] = []
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            if not np.isfinite((x1, y1, x2, y2)).all():
                skipped.append((i, "box is not finite"))
                continue
            if x2 <= x1 or y2 <= y1:
                skipped.append((i, f"degenerate box ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f})"))
                continue
            if x2 <= 0 or y2 <= 0 or x1 >= W or y1 >= H:
                skipped.append((i, f"box ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}) lies outside the "
                                   f"{W}x{H} image"))
                continue
            cx1, cy1 = max(0, int(round(x1))), max(0, int(round(y1)))
            cx2, cy2 = min(W, int(round(x2))), min(H, int(round(y2)))
            if cy2 - cy1 < min_h or cx2 - cx1 < min_w:
                skipped.append((i, f"too small: {cx2 - cx1}x{cy2 - cy1} px in the image "
                                   f"(w x h; at least {min_w}x{min_h} needed)"))
                continue
            crops.append(image[cy1:cy2, cx1:cx2])
            kept.append(i)
        vectors = self._embed_resized(crops)
        return Embeddings(vectors=vectors, kept=np.asarray(kept, np.int64), skipped=tuple(skipped))

    def embed_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Embed whole person crops (e.g. query photos).

        Args:
            crops: BGR images ``(h, w, 3)`` uint8 of any size; ``(h, w)`` grey and ``(h, w, 4)``
                BGRA images are converted to BGR.

        Returns:
            ``(len(crops), D)`` float32, each row L2-normalised.

        Raises:
            ValueError: A crop is empty or not an 8-bit image.
        """
        ready = []
        for i, crop in enumerate(crops):
            if not isinstance(crop, np.ndarray) or crop.dtype != np.uint8 or crop.size == 0:
                shape = getattr(crop, "shape", type(crop).__name__)
                raise ValueError(f"crop {i} must be a non-empty uint8 image, got {shape} "
                                 f"{getattr(crop, 'dtype', '')}")
            if crop.ndim == 2:
                crop = cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
            elif crop.ndim == 3 and crop.shape[2] == 4:
                crop = cv2.cvtColor(crop, cv2.COLOR_BGRA2BGR)
            elif not (crop.ndim == 3 and crop.shape[2] == 3):
                raise ValueError(f"crop {i} must be (h, w, 3) BGR, got shape {crop.shape}")
            ready.append(crop)
        return self._embed_resized(ready)

    def __repr__(self) -> str:
        return (f"OnnxEmbedder({str(self.path)!r}, name={self.name!r}, dim={self.dim}, input_size="
                f"{self.input_size}, color_order={self.color_order!r}, provider={self.provider!r})")
