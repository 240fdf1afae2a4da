"""Model registry and weight loading.

``build_model("osnet_x0_25", num_classes=751)`` etc.; ``MODELS`` lists the names.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.errors import CheckpointError
from training.modeling.head import GeM, ReidOutput
from training.modeling.osnet import OSNET_CHANNELS, OSNet
from training.modeling.resnet import ResNet
from training.registry import Registry

MODELS: Registry = Registry("model", {
    "resnet50": partial(ResNet, layers=(3, 4, 6, 3), ibn=False),
    "resnet50_ibn_a": partial(ResNet, layers=(3, 4, 6, 3), ibn=True),
    **{name: partial(OSNet, channels=ch) for name, ch in OSNET_CHANNELS.items()},
    "osnet_ibn_x1_0": partial(OSNet, channels=OSNET_CHANNELS["osnet_x1_0"], IN=True),
})
"""Architecture name -> constructor ``(num_classes=0, **kwargs) -> nn.Module``.

ResNet kwargs: ``last_stride``, ``pooling``, ``bnneck``, ``fc_dim``; OSNet kwargs:
``pooling``, ``fc_dim`` (default 512, torchreid's head), ``bnneck`` (default False).
"""

__all__ = ["MODELS", "GeM", "OSNet", "ReidOutput", "ResNet", "build_model", "load_pretrained",
           "load_weights", "read_state_dict"]


def build_model(arch: str, num_classes: int = 0, **kwargs: Any) -> nn.Module:
    """Build architecture ``arch`` (see :data:`MODELS`).

    Args:
        arch: Registry name, e.g. ``"resnet50"``, ``"osnet_x0_25"``.
        num_classes: Classifier size; 0 for an inference-only model without classifier.
        **kwargs: Architecture options (pooling, bnneck, fc_dim, last_stride).

    Raises:
        KeyError: Unknown ``arch`` (the message lists the valid names).
    """
    return MODELS[arch](num_classes=num_classes, **kwargs)


def read_state_dict(path: str | Path) -> OrderedDict[str, torch.Tensor]:
    """Read a state dict from a file (plain, torchreid ``{'state_dict': ...}``, or a training checkpoint).

    Accepts a plain state dict, a torchreid checkpoint (``state_dict`` key) or this
    package's training checkpoint (``model`` key); ``module.`` prefixes (DataParallel) are removed.

    Raises:
        CheckpointError: Missing file or no state dict in it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a weights file"
        raise CheckpointError(f"{path}: not a readable PyTorch weights file ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:120]})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: holds no state dict of tensors")
    return OrderedDict((k[7:] if k.startswith("module.") else k, v) for k, v in obj.items())


def load_weights(model: nn.Module, weights: str | Path | dict[str, torch.Tensor], *,
                 source: str = "weights") -> None:
    """Load a full state dict strictly; classifier tensors are dropped when the model has none.

    Raises:
        CheckpointError: Missing/unexpected keys or shape mismatches (first few named).
    """
    if not isinstance(weights, dict):
        source = str(weights)
        weights = read_state_dict(weights)
    if getattr(model, "classifier", None) is None:
        weights = OrderedDict((k, v) for k, v in weights.items() if not k.startswith("classifier."))
    own = model.state_dict()
    bad = [f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}" for k, v in weights.items()
           if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    if bad or missing or unexpected:
        parts = []
        if bad:
            parts.append(f"shape mismatch {', '.join(bad[:3])}")
        if missing:
            parts.append(f"{len(missing)} missing keys ({', '.join(missing[:3])}...)")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({', '.join(unexpected[:3])}...)")
        raise CheckpointError(f"{source}: does not fit {type(model).__name__}: {'; '.join(parts)}")
    model.load_state_dict(weights, strict=True)


def load_pretrained(model: nn.Module, path: str | Path) -> tuple[list[str], list[str]]:
    """Initialise from a local checkpoint (e.g. ImageNet or another ReID dataset), non-strictly.

    Tensors whose name and shape match are copied; the classifier is never copied.

    Returns:
        ``(loaded, skipped)`` key names.

    Raises:
        CheckpointError: Unreadable file, or not a single tensor fits the model.
    """
    sd = read_state_dict(path)
    own = model.state_dict()
    loaded = [k for k, v in sd.items()
              if k in own and own[k].shape == v.shape and not k.startswith("classifier.")]
    skipped = [k for k in sd if k not in loaded]
    if not loaded:
        raise CheckpointError(f"{path}: no tensor in it matches {type(model).__name__} (wrong architecture?)")
    model.load_state_dict({k: sd[k] for k in loaded}, strict=False)
    return loaded, skipped
