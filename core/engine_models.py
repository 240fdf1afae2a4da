"""The models an engine runs, loaded once (one ONNX Runtime session each).

Which files (manifest defaults or the user's), at which precision and input size.

:func:`load_models` resolves the detector and ReID files (``core.models``), picks the derived
int8/float16 detector for ``precision`` (``core.models.derived.detector_file``) and loads both;
what it found out about the set-up (a CUDA fallback, a missing int8 model) is in
:attr:`EngineModels.notes`. :class:`core.engine.Engine` and nothing else builds on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.detection import YoloOnnxDetector
from core.models import resolve_model
from core.models.derived import PRECISIONS, detector_file
from core.onnx_model import DEVICES, cuda_available
from core.reid import OnnxEmbedder


@dataclass(frozen=True)
class EngineModels:
    """The loaded models of an engine.

    Attributes:
        detector: The detector that indexes (the derived file when int8/float16 runs).
        embedder: The ReID model (always float32: embeddings must stay comparable across machines).
        float_detector_path: The float32 detector file ``detector`` was made from (or is).
        reid_preprocess: The ReID model's manifest preprocessing (for a model without metadata).
        tracker_kwargs: The detector's manifest ``tracker`` settings (thresholds suited to its scores).
        detect_size: The longest side of the detector's input asked for (``None``: the model's own).
        device: Where they were asked to run (``"auto"``, ``"cuda"`` or ``"cpu"``).
        threads: ONNX Runtime threads per model (``None``: all cores).
        notes: Sentences about the set-up, e.g. a CUDA fallback or a missing int8 model.
    """

    detector: YoloOnnxDetector
    embedder: OnnxEmbedder
    float_detector_path: Path
    reid_preprocess: dict[str, Any] | None
    tracker_kwargs: dict[str, Any]
    detect_size: int | None
    device: str
    threads: int | None
    notes: tuple[str, ...]

    @property
    def providers(self) -> dict[str, str]:
        """``{"detector": provider, "reid": provider}`` ONNX Runtime really uses."""
        return {"detector": self.detector.provider, "reid": self.embedder.provider}

    def float_detector(self) -> YoloOnnxDetector:
        """The float32 detector at the model's own input size (query photos: one image each)."""
        if self.detector.precision == "fp32" and self.detect_size is None:
            return self.detector
        return YoloOnnxDetector(self.float_detector_path, person_classes=self.detector.person_classes,
                                device=self.device, threads=self.threads)


def load_models(detector: str | Path | None, reid: str | Path | None, *, device: str = "auto",
                precision: str = "auto", detect_size: int | None = None,
                threads: int | None = None) -> EngineModels:
    """Resolve and load an engine's detector and ReID model (see the module notes).

    Raises:
        ModelError: A model file is missing or unusable, or no default model is present; a fixed-size
            detector asked for another ``detect_size``.
        ValueError: Unknown ``device`` or ``precision``; ``detect_size`` not a multiple of the
            detector's stride.
    """
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    det_path, det_entry = resolve_model("detect", detector)
    reid_path, reid_entry = resolve_model("reid", reid)
    notes: list[str] = []
    run_path = detector_file(Path(det_path), precision, on_gpu=device != "cpu" and cuda_available(),
                             notes=notes)
    person_classes = det_entry.person_classes if det_entry and det_entry.person_classes else ("person",)
    det = YoloOnnxDetector(run_path, person_classes=person_classes, device=device, threads=threads,
                           imgsz=detect_size)
    preprocess = dict(reid_entry.preprocess) if reid_entry and reid_entry.preprocess else None
    embedder = OnnxEmbedder(reid_path, preprocess=preprocess, device=device, threads=threads)
    for model in (det, embedder):
        if model.fallback_note and model.fallback_note not in notes:
            notes.append(model.fallback_note)
    tracker_kwargs = dict(det_entry.tracker) if det_entry else {}
    return EngineModels(detector=det, embedder=embedder, float_detector_path=Path(det_path),
                        reid_preprocess=preprocess, tracker_kwargs=tracker_kwargs,
                        detect_size=None if detect_size is None else int(detect_size), device=device,
                        threads=threads, notes=tuple(notes))
