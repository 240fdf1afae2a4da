"""The adaptation loop: cluster tracks, train against the cluster memory, re-cluster, check, export.

Every ``cluster_every`` epochs the training crops are embedded with the current model
(un-augmented), each track's mean feature is clustered (:mod:`training.adapt.clustering`),
outlier tracks sit out the round and the memory is re-initialised with the new centroids.
Batches are PK-sampled over the round's pseudo-identities. After each epoch the whole state
(model, optimiser, schedule, memory, labels, random generators, history) goes to
``<work>/last.pth``; running the same command again resumes from it exactly.

``labels="tracks"`` is the old one-track-one-identity mode (every training track its own
class, never re-clustered) in the same loop, for comparison.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.adapt.clustering import cluster_tracks, group_mean
from training.adapt.memory import ClusterMemory
from training.adapt.mining import MinedLibrary
from training.checkpoint import (
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from training.data.loader import build_train_loader
from training.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms
from training.engine import resolve_device
from training.errors import CheckpointError, DataError
from training.evaluation.features import extract_features
from training.modeling import build_model, load_pretrained
from training.solver import WarmupLR, build_optimizer

LABEL_MODES = ("clusters", "tracks")


@dataclass(frozen=True)
class AdaptSettings:
    """Settings of one adaptation run (all saved in the checkpoint; a resume needs the same ones).

    Attributes:
        arch: Architecture (``training.modeling.MODELS`` key).
        base: Weights to start from (torchreid state dict or training checkpoint).
        height: Input height.
        width: Input width.
        epochs: Training epochs.
        cluster_every: Re-cluster every this many epochs (the first epoch always clusters).
        iters_per_epoch: At most this many batches per epoch (fewer when a pass over the data is shorter).
        batch_size: Images per batch (fewer when there are fewer clusters than
            ``batch_size / num_instances``).
        num_instances: Images per pseudo-identity in a batch (K of the PK sampler).
        lr: Adam learning rate (cosine decay over the epochs).
        weight_decay: Adam weight decay.
        temp: InfoNCE temperature.
        momentum: Centroid momentum.
        cam_weight: Camera-aware term weight (needs several videos; 0: off).
        eps: DBSCAN radius on the Jaccard distance.
        k1: k-reciprocal neighbourhood size.
        k2: Local query expansion size.
        labels: ``clusters`` (pseudo-identities) or ``tracks`` (one identity per track).
        flip_p: Horizontal flip probability.
        padding: Pad-and-crop border.
        erasing_p: Random erasing probability.
        workers: Data loader workers.
        threads: torch CPU threads (0: torch's default; 1 is fastest on a busy machine).
        seed: Random seed.
        device: ``auto``, ``cpu`` or ``cuda``.
        progress: Progress bars while embedding.
    """

    arch: str = "osnet_x0_25"
    base: str = ""
    height: int = 256
    width: int = 128
    epochs: int = 10
    cluster_every: int = 2
    iters_per_epoch: int = 50
    batch_size: int = 32
    num_instances: int = 4
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    temp: float = 0.05
    momentum: float = 0.2
    cam_weight: float = 0.0
    eps: float = 0.6
    k1: int = 6
    k2: int = 2
    labels: str = "clusters"
    flip_p: float = 0.5
    padding: int = 10
    erasing_p: float = 0.5
    workers: int = 2
    threads: int = 0
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.labels not in LABEL_MODES:
            raise KeyError(f"unknown label mode {self.labels!r}; valid modes: {', '.join(LABEL_MODES)}")

    def same_run(self, other: dict[str, Any]) -> list[str]:
        """Names of the settings that differ from a saved ``asdict``.

        ``epochs`` may grow; threads, workers and progress bars may change.
        """
        free = ("epochs", "threads", "workers", "progress")
        return [k for k, v in asdict(self).items() if k not in free and other.get(k) != v]


def embed_paths(model: nn.Module, paths: Sequence[str], s: AdaptSettings, device: torch.device,
                desc: str = "embedding") -> np.ndarray:
    """``(N, D)`` features of image files, un-augmented, in eval mode."""
    tf = build_transforms(s.height, s.width, train=False)
    return extract_features(model, [(p, 0, 0) for p in paths], tf, device=str(device), batch_size=64,
                            workers=s.workers, desc=desc, progress=s.progress)


def build_base_model(s: AdaptSettings) -> nn.Module:
    """The base network (no classifier) with ``s.base`` loaded."""
    model = build_model(s.arch, num_classes=0)
    if s.base:
        load_pretrained(model, s.base)
    return model


@dataclass
class Adapter:
    """State of one adaptation run; :meth:`run` drives it.

    Attributes:
        lib: The mined library.
        s: Settings.
        work: Work folder (``last.pth``, ``log.txt``, ``history.json``).
        model: The network being adapted.
        memory: Cluster memory.
        optimizer: Adam.
        scheduler: Cosine decay per epoch.
        device: Where it runs.
        epoch: Epochs completed.
        labels: ``(T,)`` pseudo-identity of each training track (``-1``: outlier this round).
        history: One dict per completed epoch.
        log: Where log lines go.
    """

    lib: MinedLibrary
    s: AdaptSettings
    work: Path
    model: nn.Module
    memory: ClusterMemory
    optimizer: torch.optim.Optimizer
    scheduler: WarmupLR
    device: torch.device
    epoch: int = 0
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    history: list[dict[str, Any]] = field(default_factory=list)
    log: Callable[[str], None] = print

    @classmethod
    def create(cls, lib: MinedLibrary, s: AdaptSettings, work: str | Path,
               log: Callable[[str], None] = print) -> Adapter:
        """Seed, build the model from ``s.base``, the memory, optimiser and schedule."""
        seed_everything(s.seed)
        device = resolve_device(s.device)
        if device.type == "cpu" and s.threads > 0:
            torch.set_num_threads(s.threads)
        model = build_base_model(s).to(device)
        memory = ClusterMemory(model.feature_dim, s.temp, s.momentum, s.cam_weight).to(device)
        optimizer = build_optimizer(model, "adam", s.lr, s.weight_decay)
        scheduler = WarmupLR(optimizer, "cosine", max_epochs=s.epochs, warmup_epochs=0, min_factor=0.01)
        return cls(lib, s, Path(work), model, memory, optimizer, scheduler, device, log=log)

    # -- tracks and pseudo-labels -----------------------------------------------------------------

    @property
    def train_tracks(self) -> np.ndarray:
        """``(T,)`` library track indices of the training tracks."""
        return self.lib.train_tracks

    def crop_groups(self) -> np.ndarray:
        """``(M,)`` position in :attr:`train_tracks` of each training crop's track."""
        pos = {int(t): i for i, t in enumerate(self.train_tracks)}
        return np.array([pos[c.track] for c in self.lib.train], np.int64)

    def pseudo_labels(self) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Embed the training crops with the current model and cluster the tracks.

        Returns:
            ``(crop features (M, D), track labels (T,), figures)``.
        """
        start = time.perf_counter()
        feats = embed_paths(self.model, [c.path for c in self.lib.train], self.s, self.device,
                            desc=f"clustering (epoch {self.epoch + 1})")
        n = len(self.train_tracks)
        if self.s.labels == "tracks":
            labels = np.arange(n, dtype=np.int64)
        else:
            cannot = self.lib.cannot_link_matrix(self.train_tracks)
            labels = cluster_tracks(group_mean(feats, self.crop_groups(), n), cannot, eps=self.s.eps,
                                    k1=self.s.k1, k2=self.s.k2)
        clusters = int(labels.max()) + 1 if (labels >= 0).any() else 0
        return feats, labels, {"clusters": clusters, "clustered_tracks": int((labels >= 0).sum()),
                               "outlier_tracks": int((labels < 0).sum()), "tracks": n,
                               "cluster_seconds": round(time.perf_counter() - start, 2)}

    def recluster(self) -> dict[str, Any]:
        """Start a round: new pseudo-labels, the memory reset to their centroids; returns round figures.

        Raises:
            DataError: Fewer than two pseudo-identities (nothing to contrast).
        """
        feats, labels, figures = self.pseudo_labels()
        if figures["clusters"] < 2:
            raise DataError(f"{self.lib.settings['db']}: only {figures['clusters']} pseudo-identities among "
                            f"{figures['tracks']} tracks: too little footage (or too few people) to adapt on")
        self.labels = labels
        crop_labels = labels[self.crop_groups()]
        keep = crop_labels >= 0
        cams = torch.tensor([c.camera for c in self.lib.train], dtype=torch.long)[torch.from_numpy(keep)]
        self.memory.reset(torch.from_numpy(feats[keep]), torch.from_numpy(crop_labels[keep]), cams)
        self.memory.to(self.device)
        return figures

    def round_items(self) -> list[tuple[str, int, int]]:
        """``(path, pseudo-identity, camera)`` of the training crops of clustered tracks."""
        lab = self.labels[self.crop_groups()]
        return [(c.path, int(y), c.camera) for c, y in zip(self.lib.train, lab, strict=True) if y >= 0]

    def batch_shape(self) -> tuple[int, int]:
        """``(batch_size, iterations)`` of this round's epochs."""
        k = self.s.num_instances
        lab = self.labels[self.crop_groups()]
        counts = np.bincount(lab[lab >= 0])
        batch = min(self.s.batch_size // k, len(counts)) * k
        per_pass = sum(max(int(n), k) // k * k for n in counts if n) // batch
        return batch, max(1, min(self.s.iters_per_epoch, per_pass))

    # -- training ----------------------------------------------------------------------------------

    def train_epoch(self, bar: tqdm | None = None) -> dict[str, Any]:
        """One epoch (re-clustering first when due); returns its figures."""
        stats: dict[str, Any] = {"epoch": self.epoch + 1}
        if self.epoch % max(1, self.s.cluster_every) == 0 and not (self.s.labels == "tracks" and self.epoch):
            stats.update(self.recluster())
        items = self.round_items()
        batch, iters = self.batch_shape()
        tf = build_transforms(self.s.height, self.s.width, train=True, flip_p=self.s.flip_p,
                              padding=self.s.padding, erasing_p=self.s.erasing_p)
        loader = build_train_loader(items, tf, batch_size=batch, num_instances=self.s.num_instances,
                                    workers=self.s.workers, seed=self.s.seed)
        loader.sampler.set_epoch(self.epoch)
        self.model.train()
        sums: dict[str, float] = {}
        seen, start = 0, time.perf_counter()
        for it, (imgs, pids, cams, _) in enumerate(loader):
            if it >= iters:
                break
            imgs, pids, cams = (t.to(self.device) for t in (imgs, pids, cams))
            self.optimizer.zero_grad(set_to_none=True)
            loss, parts = self.memory(self.model(imgs).features, pids, cams)
            loss.backward()
            self.optimizer.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            seen += len(imgs)
            if bar is not None:
                bar.set_postfix(epoch=f"{self.epoch + 1}/{self.s.epochs}", loss=f"{parts['loss']:.3f}")
                bar.update(1)
        elapsed = time.perf_counter() - start
        stats.update({k: v / max(iters, 1) for k, v in sums.items()})
        stats.update(lr=self.optimizer.param_groups[0]["lr"], images=seen, batch=batch, iters=iters,
                     img_per_s=round(seen / max(elapsed, 1e-9), 1), seconds=round(elapsed, 2))
        self.scheduler.step()
        self.epoch += 1
        return stats

    def estimated_iters(self) -> int:
        """Batches left, for the progress bar (the current round's size times the epochs left)."""
        if not len(self.labels):
            n = len(self.lib.train) // max(self.s.batch_size, 1)
            return (self.s.epochs - self.epoch) * max(1, min(self.s.iters_per_epoch, n))
        return (self.s.epochs - self.epoch) * self.batch_shape()[1]

    # -- checkpoints -------------------------------------------------------------------------------

    def meta(self, eval_figures: dict[str, Any] | None = None) -> dict[str, Any]:
        """What ``training.export --checkpoint`` needs to rebuild the model."""
        return {"arch": self.s.arch, "model_kwargs": {}, "num_classes": 0,
                "input_size": [self.s.height, self.s.width], "mean": list(IMAGENET_MEAN),
                "std": list(IMAGENET_STD), "dataset": "adapted", "eval": eval_figures}

    def state_dict(self) -> dict[str, Any]:
        """The whole run's state."""
        return {"epoch": self.epoch, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "memory": self.memory.state_dict(),
                "labels": torch.from_numpy(self.labels.copy()), "rng": get_rng_state(),
                "history": json.dumps(self.history), "meta": self.meta(),
                "adapt": json.dumps(asdict(self.s))}

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        """Restore :meth:`state_dict` (the settings must match, except a larger ``epochs``)."""
        saved = json.loads(state.get("adapt", "{}"))
        differ = self.s.same_run(saved)
        if differ:
            raise CheckpointError(f"{source}: was run with other settings ({', '.join(differ)}); "
                                  "use another --work folder or --restart")
        mem = state["memory"]
        for name, value in mem.items():  # the memory's size is the round's number of clusters
            setattr(self.memory, name, value.clone().to(self.device))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scheduler.max_epochs = self.s.epochs
        self.labels = state["labels"].numpy().astype(np.int64)
        self.epoch = int(state["epoch"])
        self.history = json.loads(state["history"])
        set_rng_state(state["rng"])

    def save(self) -> Path:
        """Write ``last.pth`` (and ``history.json``)."""
        (self.work / "history.json").write_text(json.dumps(self.history, indent=1))
        return save_checkpoint(self.work / "last.pth", self.state_dict())

    def resume(self) -> bool:
        """Load ``last.pth`` when present; returns whether it did."""
        path = self.work / "last.pth"
        if not path.is_file():
            return False
        self.load_state_dict(load_checkpoint(path), str(path))
        return True

    def run(self, *, progress: bool = True, stop_after: int | None = None) -> None:
        """Train until ``s.epochs`` (or ``stop_after`` epochs in total), checkpointing after each epoch."""
        bar = tqdm(total=self.estimated_iters(), desc="adapting", unit="batch", disable=not progress,
                   dynamic_ncols=True)
        try:
            while self.epoch < self.s.epochs and (stop_after is None or self.epoch < stop_after):
                stats = self.train_epoch(bar)
                if "clusters" in stats:  # a new round: its size sets the batches left
                    bar.total = bar.n + stats["iters"] * (self.s.epochs - self.epoch)
                    bar.refresh()
                self.history.append(stats)
                self.log(_epoch_line(stats, self.s.epochs))
                self.save()
        finally:
            bar.close()


def _epoch_line(st: dict[str, Any], epochs: int) -> str:
    line = f"epoch {st['epoch']}/{epochs} loss {st.get('loss', math.nan):.4f}"
    if "cam" in st:
        line += f" (nce {st['nce']:.4f} cam {st['cam']:.4f})"
    line += f" acc {100 * st.get('acc', 0):.1f}% lr {st['lr']:.2e} {st['img_per_s']:.1f} img/s"
    if "clusters" in st:
        line += (f" | re-clustered: {st['clusters']} pseudo-identities from {st['clustered_tracks']} of "
                 f"{st['tracks']} tracks, {st['outlier_tracks']} outliers sit out")
    return line
