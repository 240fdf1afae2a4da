"""Image transforms in numpy/OpenCV/torch (no torchvision).

Images enter as ``(H, W, 3)`` uint8 RGB arrays and leave as ``(3, H, W)`` float32
tensors normalised as ``(pixel / 255 - mean) / std`` (the ONNX metadata convention).
Random decisions draw from torch's global generator, which the DataLoader seeds
per worker from the main process's generator, so a run resumed from a checkpoint
(which restores that generator) replays the same augmentations.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import cv2
import numpy as np
import torch

from core.fileio import read_image
from training.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _rand() -> float:
    return float(torch.rand(()))


def _uniform(lo: float, hi: float) -> float:
    return lo + (hi - lo) * _rand()


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x):  # noqa: D102
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(repr(t) for t in self.transforms) + ")"


class Resize:
    """Resize an ``(H, W, 3)`` uint8 image to ``(height, width)`` with bilinear interpolation.

    Bilinear ``cv2.resize`` is what the app's embedder does at inference time, so
    training sees the same resampling.
    """

    def __init__(self, height: int, width: int) -> None:
        self.height, self.width = int(height), int(width)

    def __call__(self, img: np.ndarray) -> np.ndarray:  # noqa: D102
        if img.shape[:2] == (self.height, self.width):
            return img
        return cv2.resize(img, (self.width, self.height), interpolation=cv2.INTER_LINEAR)

    def __repr__(self) -> str:
        return f"Resize({self.height}, {self.width})"


class RandomHorizontalFlip:
    """Mirror the image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: np.ndarray) -> np.ndarray:  # noqa: D102
        if _rand() < self.p:
            return np.ascontiguousarray(img[:, ::-1])
        return img

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class PadCrop:
    """Zero-pad ``padding`` pixels on every side, then cut a random crop of the original size."""

    def __init__(self, padding: int = 10, fill: int = 0) -> None:
        self.padding, self.fill = int(padding), fill

    def __call__(self, img: np.ndarray) -> np.ndarray:  # noqa: D102
        if self.padding <= 0:
            return img
        h, w = img.shape[:2]
        p = self.padding
        padded = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_CONSTANT, value=(self.fill,) * 3)
        y = int(torch.randint(0, 2 * p + 1, ()))
        x = int(torch.randint(0, 2 * p + 1, ()))
        return padded[y:y + h, x:x + w].copy()

    def __repr__(self) -> str:
        return f"PadCrop(padding={self.padding})"


class ColorJitter:
    """Random brightness, contrast, saturation (factors in ``[1-v, 1+v]``) and hue shift (``[-v, v]`` turns).

    Applied in a random order like torchvision's, on uint8 RGB images.
    """

    def __init__(self, brightness: float = 0.2, contrast: float = 0.15, saturation: float = 0.0,
                 hue: float = 0.0, p: float = 0.5) -> None:
        self.brightness, self.contrast, self.saturation, self.hue, self.p = (
            brightness, contrast, saturation, hue, p)

    def __call__(self, img: np.ndarray) -> np.ndarray:  # noqa: D102
        if _rand() >= self.p:
            return img
        x = img.astype(np.float32)
        for k in torch.randperm(4).tolist():
            if k == 0 and self.brightness > 0:
                x = x * _uniform(1 - self.brightness, 1 + self.brightness)
            elif k == 1 and self.contrast > 0:
                gray = (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2]).mean()
                x = (x - gray) * _uniform(1 - self.contrast, 1 + self.contrast) + gray
            elif k == 2 and self.saturation > 0:
                gray = (0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2])[..., None]
                x = (x - gray) * _uniform(1 - self.saturation, 1 + self.saturation) + gray
            elif k == 3 and self.hue > 0:
                hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV_FULL)
                shift = int(round(_uniform(-self.hue, self.hue) * 256))
                hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + shift) % 256).astype(np.uint8)
                x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL).astype(np.float32)
            x = np.clip(x, 0, 255)
        return x.astype(np.uint8)

    def __repr__(self) -> str:
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue}, p={self.p})")


class ToTensorNormalize:
    """``(H, W, 3)`` uint8 RGB -> ``(3, H, W)`` float32 tensor ``(pixel / 255 - mean) / std``."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        self.mean = np.asarray(mean, np.float32).reshape(1, 1, 3)
        self.std = np.asarray(std, np.float32).reshape(1, 1, 3)

    def __call__(self, img: np.ndarray) -> torch.Tensor:  # noqa: D102
        x = (img.astype(np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))

    def __repr__(self) -> str:
        return f"ToTensorNormalize(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"


class RandomErasing:
    """Random erasing (Zhong et al. 2020) on a ``(3, H, W)`` tensor, with probability ``p``.

    A rectangle of area fraction ``[sl, sh]`` and aspect ratio ``[r1, 1/r1]`` is filled
    with ``value`` per channel. The default fill, ``(0.4914, 0.4822, 0.4465)`` written
    into the normalised tensor, is the one used by the BoT and torchreid code.
    """

    def __init__(self, p: float = 0.5, sl: float = 0.02, sh: float = 0.4, r1: float = 0.3,
                 value: Sequence[float] = (0.4914, 0.4822, 0.4465)) -> None:
        self.p, self.sl, self.sh, self.r1 = p, sl, sh, r1
        self.value = torch.tensor(value, dtype=torch.float32).view(3, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if _rand() >= self.p:
            return x
        _, h, w = x.shape
        area = h * w
        for _ in range(100):
            target = _uniform(self.sl, self.sh) * area
            aspect = _uniform(self.r1, 1.0 / self.r1)
            eh = int(round(np.sqrt(target * aspect)))
            ew = int(round(np.sqrt(target / aspect)))
            if 0 < ew < w and 0 < eh < h:
                y = int(torch.randint(0, h - eh + 1, ()))
                x0 = int(torch.randint(0, w - ew + 1, ()))
                x = x.clone()
                x[:, y:y + eh, x0:x0 + ew] = self.value
                return x
        return x

    def __repr__(self) -> str:
        return f"RandomErasing(p={self.p}, sl={self.sl}, sh={self.sh}, r1={self.r1})"


def build_transforms(height: int, width: int, *, train: bool, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD, flip_p: float = 0.5, padding: int = 10,
                     erasing_p: float = 0.5, color_jitter: bool = False) -> Compose:
    """Training or test pipeline.

    Args:
        height: Output height in pixels.
        width: Output width in pixels.
        train: Random augmentation (flip, pad-and-crop, colour jitter, erasing) when True;
            resize + normalise only when False.
        mean: Per-channel RGB mean on the 0..1 scale.
        std: Per-channel RGB std on the 0..1 scale.
        flip_p: Horizontal flip probability.
        padding: Pad-and-crop border in pixels (0: off).
        erasing_p: Random erasing probability (0: off).
        color_jitter: Add :class:`ColorJitter` with its defaults.

    Returns:
        A callable ``(H, W, 3) uint8 RGB -> (3, height, width) float32 tensor``.
    """
    steps: list[Callable] = [Resize(height, width)]
    if train:
        if flip_p > 0:
            steps.append(RandomHorizontalFlip(flip_p))
        if padding > 0:
            steps.append(PadCrop(padding))
        if color_jitter:
            steps.append(ColorJitter())
    steps.append(ToTensorNormalize(mean, std))
    if train and erasing_p > 0:
        steps.append(RandomErasing(erasing_p))
    return Compose(steps)


def read_rgb(path: str) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB.

    Raises:
        DataError: The file is missing or not a readable image.
    """
    img = read_image(path) if os.path.isfile(path) else None
    if img is None:
        raise DataError(f"{path}: cannot read this image file")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
