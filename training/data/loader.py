"""Torch datasets and data loaders over ``(path, pid, camid)`` items."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import cv2
import torch
from torch.utils.data import DataLoader, Dataset

from training.data.datasets import Item
from training.data.sampler import RandomIdentitySampler
from training.data.transforms import read_rgb


def _single_threaded_opencv(_worker_id: int | None = None) -> None:
    """One OpenCV thread in this process (and, as ``worker_init_fn``, in each loader worker).

    Measured on a 2-core machine: OpenCV's own thread pool fighting torch's threads made a
    ``workers=0`` OSNet x0.25 epoch 9x slower (2.9 vs 27 img/s); parallel decoding comes from
    the loader workers instead.
    """
    cv2.setNumThreads(1)


class ImageDataset(Dataset):
    """Read and transform images.

    Args:
        items: ``(path, pid, camid)`` samples.
        transform: ``(H, W, 3) uint8 RGB -> (3, h, w) float32`` tensor.

    Each sample is ``(image (3, h, w) float32, pid, camid, index)``.
    """

    def __init__(self, items: Sequence[Item], transform: Callable) -> None:
        self.items = list(items)
        self.transform = transform
        _single_threaded_opencv()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, int]:
        path, pid, cam = self.items[index]
        return self.transform(read_rgb(path)), pid, cam, index


def build_train_loader(items: Sequence[Item], transform: Callable, *, batch_size: int, num_instances: int,
                       workers: int = 2, seed: int = 0) -> DataLoader:
    """PK-sampled training loader (``num_instances`` 0 or 1: plain shuffled batches).

    The loader's sampler has ``set_epoch(epoch)``; call it before each epoch.
    """
    ds = ImageDataset(items, transform)
    if num_instances > 1:
        sampler = RandomIdentitySampler([pid for _, pid, _ in items], batch_size, num_instances, seed)
    else:
        sampler = EpochShuffleSampler(len(ds), seed)
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers, drop_last=True,
                      pin_memory=torch.cuda.is_available(), persistent_workers=False,
                      worker_init_fn=_single_threaded_opencv)


def build_test_loader(items: Sequence[Item], transform: Callable, *, batch_size: int = 128,
                      workers: int = 2) -> DataLoader:
    """Loader in dataset order, no augmentation randomness."""
    return DataLoader(ImageDataset(items, transform), batch_size=batch_size, shuffle=False,
                      num_workers=workers, pin_memory=torch.cuda.is_available(),
                      worker_init_fn=_single_threaded_opencv)


class EpochShuffleSampler(torch.utils.data.Sampler[int]):
    """Random permutation that depends only on ``seed`` and the epoch (for exact resume)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose permutation is yielded."""
        self.epoch = int(epoch)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n
