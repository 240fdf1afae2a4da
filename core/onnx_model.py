"""Load an ONNX model into ONNX Runtime and check that it is the kind of model expected.

Shared by the person detector (``core.detection``) and the ReID embedder
(``core.reid``). Every problem with the file becomes one readable
:class:`core.errors.ModelError` sentence that names the file.

Kinds of model recognised from their inputs and outputs:

* ``detect``: one ``(N, 3, H, W)`` image input and a 3-D first output, either the
  raw Ultralytics head ``(N, 4 + C, anchors)`` or, for ``end2end`` exports,
  ``(N, K, 6)`` (``x1, y1, x2, y2, score, class``). Ultralytics metadata
  (``names``, ``imgsz``, ``stride``, ``task``) usually comes with it.
* ``reid``: one ``(N, 3, H, W)`` image input and a 2-D first output ``(N, D)``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import onnxruntime as ort

from core.errors import ModelError

DEVICES = ("auto", "cuda", "cpu")
KINDS = ("detect", "reid")
_KIND_WORDS = {"detect": "a person detector", "reid": "a ReID model"}
_EXPECTED_OUTPUT = {"detect": "[N, 4+classes, anchors]", "reid": "[N, D]"}
_CUDA = "CUDAExecutionProvider"
_TENSORRT = "TensorrtExecutionProvider"
_CPU = "CPUExecutionProvider"
GPU_PROVIDERS = (_TENSORRT, _CUDA)
"""Execution providers that run on an NVIDIA GPU."""

Dim = int | str | None
"""One tensor dimension as ONNX Runtime reports it: an int, or a name / ``None`` when dynamic."""


def _shape_text(shape: tuple[Dim, ...]) -> str:
    """``('batch', 6, 'anchors')`` -> ``[N, 6, anchors]`` (a dynamic batch dim is written ``N``)."""
    return "[" + ", ".join(str(d) if isinstance(d, int) and d > 0 else "N" if i == 0 else str(d or "?")
                           for i, d in enumerate(shape)) + "]"


@dataclass(frozen=True)
class OnnxModel:
    """A loaded ONNX model and what was learned about it.

    Attributes:
        path: The model file.
        session: The ONNX Runtime session (thread-safe for ``run``).
        kind: ``"detect"`` or ``"reid"``, recognised from the input and output shapes.
        input_name: Name of the image input.
        input_shape: ``(N, 3, H, W)`` dims; ints where fixed, a name or ``None`` where dynamic.
        output_names: Names of all outputs, first one first.
        output_shapes: Dims of each output, like ``input_shape``.
        metadata: The ONNX ``metadata_props`` map (read-only), e.g. Ultralytics ``names``.
        provider: The execution provider ONNX Runtime really runs on (``session.get_providers()[0]``).
        fallback_note: One sentence when CUDA was asked for but the model runs on the CPU, else ``None``.
    """

    path: Path
    session: ort.InferenceSession
    kind: str
    input_name: str
    input_shape: tuple[Dim, ...]
    output_names: tuple[str, ...]
    output_shapes: tuple[tuple[Dim, ...], ...]
    metadata: Mapping[str, str]
    provider: str
    fallback_note: str | None = None

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model was exported with, or ``None`` when the batch dim is dynamic."""
        n = self.input_shape[0]
        return n if isinstance(n, int) and n > 0 else None

    @property
    def fixed_hw(self) -> tuple[int, int] | None:
        """``(H, W)`` of the image input when both are fixed, else ``None``."""
        h, w = self.input_shape[2], self.input_shape[3]
        if isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0:
            return h, w
        return None

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on one input batch and return its first output.

        Args:
            batch: ``(B, 3, H, W)`` float32 (``B`` must equal ``fixed_batch`` when that is set).

        Returns:
            The first output, e.g. ``(B, D)`` for a ReID model.

        Raises:
            ModelError: ONNX Runtime failed (a broken model: shapes or weights that do not fit).
        """
        try:
            return self.session.run(self.output_names[:1], {self.input_name: batch})[0]
        except Exception as exc:  # onnxruntime raises its own types (Fail, InvalidArgument, ...)
            raise ModelError(f"{self.path} failed to run on a {list(batch.shape)} batch: "
                             f"{_ort_reason(exc, self.path)}.") from None

    def run_batched(self, batch: np.ndarray, max_batch: int) -> np.ndarray:
        """Run ``batch`` in chunks of at most ``max_batch`` (or of the model's fixed batch size).

        A model exported with a fixed batch size ``b`` gets chunks of exactly ``b``
        rows; the last chunk is padded with zeros and the padding rows are dropped.

        Args:
            batch: ``(B, 3, H, W)`` float32.
            max_batch: Largest chunk for models with a dynamic batch dim.

        Returns:
            The first output for all ``B`` rows, concatenated along axis 0.
        """
        step = self.fixed_batch or max(1, int(max_batch))
        outs = []
        for start in range(0, len(batch), step):
            chunk = batch[start:start + step]
            n = len(chunk)
            if self.fixed_batch and n < step:
                pad = np.zeros((step - n, *chunk.shape[1:]), chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            outs.append(self.run(np.ascontiguousarray(chunk))[:n])
        return np.concatenate(outs) if outs else np.zeros((0,), np.float32)


class OnnxBacked:
    """Mixin of the stage classes that run one :class:`OnnxModel` held in ``self._model``."""

    _model: OnnxModel

    @property
    def provider(self) -> str:
        """Execution provider ONNX Runtime really uses."""
        return self._model.provider

    @property
    def fallback_note(self) -> str | None:
        """One sentence when CUDA was requested but the CPU is used."""
        return self._model.fallback_note


def cuda_available() -> bool:
    """Whether this ONNX Runtime can run models on an NVIDIA GPU (``onnxruntime-gpu`` with CUDA)."""
    return _CUDA in ort.get_available_providers()


def _tensorrt_present() -> bool:
    """TensorRT is offered by this ONNX Runtime *and* its libraries are installed (else ORT only warns)."""
    if _TENSORRT not in ort.get_available_providers():
        return False
    import ctypes.util
    import importlib.util

    return importlib.util.find_spec("tensorrt") is not None or ctypes.util.find_library("nvinfer") is not None


def _tensorrt_options() -> dict[str, str]:
    """TensorRT: float16 kernels where the model allows, engines cached next to the models (built once)."""
    from core import paths

    cache = paths.models_dir() / "tensorrt_cache"
    return {"trt_fp16_enable": "True", "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(cache), "trt_timing_cache_enable": "True"}


def _providers(device: str) -> tuple[list[str | tuple[str, dict[str, str]]], str | None]:
    """Pick execution providers for ``device``; returns them and a note when CUDA is unavailable.

    On a GPU: TensorRT first where it is installed (float16 enabled, engine cache), then CUDA
    (cuDNN picks its fastest convolution once per input shape), then the CPU for any operator
    the GPU providers lack.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device != "cpu" and cuda_available():
        chain: list[str | tuple[str, dict[str, str]]] = []
        if _tensorrt_present():
            chain.append((_TENSORRT, _tensorrt_options()))
        chain += [(_CUDA, {"cudnn_conv_algo_search": "EXHAUSTIVE", "do_copy_in_default_stream": "1"}), _CPU]
        return chain, None
    if device == "cuda":
        return [_CPU], (f"CUDA was requested but this ONNX Runtime ({ort.__version__}) has no {_CUDA} "
                        "(install onnxruntime-gpu on a machine with an NVIDIA GPU); running on the CPU.")
    return [_CPU], None


def _kind_of(input_shape: tuple[Dim, ...], output_shape: tuple[Dim, ...],
             metadata: Mapping[str, str]) -> str | None:
    """Recognise ``detect`` or ``reid`` from the shapes (``None`` when neither fits)."""
    if len(input_shape) != 4 or (isinstance(input_shape[1], int) and input_shape[1] != 3):
        return None
    task = metadata.get("task")
    if len(output_shape) == 2:
        return "reid" if task in (None, "reid") else None
    if len(output_shape) == 3 and task in (None, "detect"):
        return "detect"
    return None


def _ort_reason(exc: BaseException, path: Path) -> str:
    """ONNX Runtime's message as a short clause (first line, without its prefix and the path)."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = re.sub(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*", "", reason)
    reason = reason.replace(f"Load model from {path} failed:", "").strip().rstrip(".")
    return reason if len(reason) <= 200 else reason[:197] + "..."


def load_session(path: str | os.PathLike[str], *, device: str = "auto", expect: str | None = None,
                 threads: int | None = None) -> OnnxModel:
    """Open an ONNX model with ONNX Runtime and check what kind of model it is.

    Args:
        path: The ``.onnx`` file.
        device: ``"auto"`` (CUDA when ONNX Runtime offers it, else CPU), ``"cuda"`` (same, but
            leaves a ``fallback_note`` when it has to use the CPU) or ``"cpu"``.
        expect: ``"detect"`` or ``"reid"`` to refuse any other kind of model; ``None`` accepts both.
        threads: Threads for one operator (``intra_op_num_threads``); default ``os.cpu_count()``.

    Returns:
        The loaded :class:`OnnxModel`.

    Raises:
        ModelError: The file is missing, is not an ONNX model, or is not the expected kind.
        ValueError: ``device`` or ``expect`` is not one of the known values.
    """
    path = Path(path)
    if expect is not None and expect not in KINDS:
        raise ValueError(f"expect must be one of {', '.join(KINDS)} or None, got {expect!r}")
    providers, note = _providers(device)
    if not path.exists():
        raise ModelError(f"Model file {path} does not exist.")
    if not path.is_file():
        raise ModelError(f"Model path {path} is a folder, not an ONNX model file.")

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads or os.cpu_count() or 1)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: no provider-assignment chatter on stderr
    # Idle ONNX Runtime threads sleep instead of spinning: the decoding thread, other worker processes
    # and other programs get the cores (measured on 2 shared cores: 25 % less CPU, 15 % less wall time).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises several unrelated types (InvalidProtobuf, Fail, ...)
        reason = _ort_reason(exc, path)
        if "protobuf" in reason.lower():
            reason = "it is not a readable ONNX protobuf file"
        raise ModelError(f"{path} is not a usable ONNX model: {reason}.") from None

    try:  # names, dims and metadata are protobuf strings: a damaged file may hold invalid UTF-8
        inputs = session.get_inputs()
        outputs = session.get_outputs()
        metadata = MappingProxyType(dict(session.get_modelmeta().custom_metadata_map))
        input_shape = tuple(inputs[0].shape) if inputs else ()
        output_shapes = tuple(tuple(o.shape) for o in outputs)
        input_name, output_names = (inputs[0].name if inputs else ""), tuple(o.name for o in outputs)
    except UnicodeDecodeError:
        raise ModelError(f"{path} is not a usable ONNX model: its names or metadata are not UTF-8 text "
                         "(a damaged file?).") from None
    if len(inputs) != 1 or not outputs:
        raise ModelError(f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; an image model "
                         "needs exactly one image input [N, 3, H, W] and at least one output.")
    kind = _kind_of(input_shape, output_shapes[0], metadata)
    if kind is None or (expect is not None and kind != expect):
        what = _KIND_WORDS[kind] if kind else "neither a person detector nor a ReID model"
        shapes = f"input {_shape_text(input_shape)}, output {_shape_text(output_shapes[0])}"
        if kind is not None:
            shapes = f"output {_shape_text(output_shapes[0])}"
        if expect is None:
            raise ModelError(f"{path} is {what} ({shapes}); expected a detector with output "
                             f"{_EXPECTED_OUTPUT['detect']} or a ReID model with output "
                             f"{_EXPECTED_OUTPUT['reid']}.")
        raise ModelError(f"{path} is {what} ({shapes}), not {_KIND_WORDS[expect]} "
                         f"(expected image input [N, 3, H, W] and output {_EXPECTED_OUTPUT[expect]}).")

    provider = session.get_providers()[0]
    asked = [p if isinstance(p, str) else p[0] for p in providers]
    if note is None and _CUDA in asked and provider not in GPU_PROVIDERS:
        note = f"ONNX Runtime could not start {_CUDA} (CUDA/cuDNN libraries missing?); running on the CPU."
    return OnnxModel(path=path, session=session, kind=kind, input_name=input_name,
                     input_shape=input_shape, output_names=output_names,
                     output_shapes=output_shapes, metadata=metadata, provider=provider,
                     fallback_note=note)
