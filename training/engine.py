"""The training loop: build everything from a configuration, train, evaluate, checkpoint, resume.

Output folder (``train.output_dir``): ``config.yaml`` (resolved), ``log.txt``,
``history.json`` (per-epoch figures), ``curves.png`` (loss/accuracy plot),
``checkpoints/epoch_NNN.pth`` every ``train.checkpoint_every`` epochs, ``last.pth``
(latest) and, when a query/gallery split exists, ``rank_list.png``.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from tqdm import tqdm

from training import config as C
from training.checkpoint import (
    get_rng_state,
    load_checkpoint,
    save_checkpoint,
    seed_everything,
    set_rng_state,
)
from training.data.datasets import ReidData, build_dataset
from training.data.loader import build_train_loader
from training.data.transforms import build_transforms
from training.errors import CheckpointError, ConfigError
from training.evaluation.features import evaluate_features, extract_features
from training.evaluation.visualize import plot_history, save_rank_list
from training.losses import ReidLoss
from training.modeling import build_model, load_pretrained
from training.solver import WarmupLR, build_optimizer


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise ``torch.device(name)``.

    Raises:
        ConfigError: CUDA asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name}: CUDA is not available in this PyTorch build/machine")
    return dev


@dataclass
class Trainer:
    """Holds the model, loss, optimisers and schedule of one run; :func:`train` drives it.

    Attributes:
        cfg: Resolved configuration.
        data: The parsed dataset.
        model: The network (on ``device``).
        criterion: The loss module (its center loss, if any, has its own optimiser).
        optimizer: Optimiser of the network.
        center_optimizer: SGD of the center-loss centers (``None`` without center loss).
        scheduler: Per-epoch warmup schedule.
        scaler: AMP gradient scaler (disabled on CPU).
        device: Where training runs.
        epoch: Epochs completed.
        history: One dict of figures per completed epoch.
    """

    cfg: dict[str, Any]
    data: ReidData
    model: nn.Module
    criterion: ReidLoss
    optimizer: torch.optim.Optimizer
    center_optimizer: torch.optim.Optimizer | None
    scheduler: WarmupLR
    scaler: torch.amp.GradScaler
    device: torch.device
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def amp(self) -> bool:
        """Mixed precision in use (CUDA and ``train.amp``)."""
        return bool(self.cfg["train"]["amp"]) and self.device.type == "cuda"

    def meta(self) -> dict[str, Any]:
        """What export/evaluation need to rebuild the model without the config file."""
        d = self.cfg["data"]
        last_eval = next((h["eval"] for h in reversed(self.history) if "eval" in h), None)
        return {"arch": self.cfg["model"]["arch"], "model_kwargs": C.model_kwargs(self.cfg),
                "num_classes": self.data.num_train_pids, "input_size": [int(d["height"]), int(d["width"])],
                "mean": list(d["mean"]), "std": list(d["std"]), "dataset": d["dataset"],
                "eval": last_eval, "config": yaml.safe_dump(self.cfg)}

    def state_dict(self) -> dict[str, Any]:
        """Everything of the run's state, for :func:`training.checkpoint.save_checkpoint`."""
        state = {"epoch": self.epoch, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                 "rng": get_rng_state(), "history": self.history, "meta": self.meta()}
        if self.criterion.center is not None:
            state["center_loss"] = self.criterion.center.state_dict()
            state["center_optimizer"] = self.center_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any], source: str = "checkpoint") -> None:
        """Restore a state saved by :meth:`state_dict` (RNG states included)."""
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            if self.criterion.center is not None:
                self.criterion.center.load_state_dict(state["center_loss"])
                self.center_optimizer.load_state_dict(state["center_optimizer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{source}: does not match this configuration "
                                  f"({str(exc).splitlines()[0][:160]})") from None
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        set_rng_state(state["rng"])

    def _set_frozen(self, frozen: bool) -> None:
        head = set(self.model.head_modules())
        for name, module in self.model.named_children():
            if name in head:
                continue
            module.train(not frozen)
            for p in module.parameters():
                p.requires_grad_(not frozen)

    def train_epoch(self, loader: torch.utils.data.DataLoader, *, progress: bool = True) -> dict[str, float]:
        """Run one epoch (``self.epoch`` 0-based); returns mean figures and images/second."""
        epoch = self.epoch
        loader.sampler.set_epoch(epoch)
        self.model.train()
        self._set_frozen(epoch < int(self.cfg["train"]["freeze_epochs"]))
        limit = int(self.cfg["train"]["iters_per_epoch"]) or len(loader)
        total = min(limit, len(loader))
        sums: dict[str, float] = {}
        seen, start = 0, time.perf_counter()
        bar = tqdm(total=total, desc=f"epoch {epoch + 1}/{self.cfg['train']['epochs']}", disable=not progress,
                   leave=False, unit="batch")
        autocast = (torch.autocast("cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext())
        for it, (imgs, pids, _, _) in enumerate(loader):
            if it >= total:
                break
            imgs, pids = imgs.to(self.device, non_blocking=True), pids.to(self.device, non_blocking=True)
            self.optimizer.zero_grad(set_to_none=True)
            if self.center_optimizer is not None:
                self.center_optimizer.zero_grad(set_to_none=True)
            with autocast:
                out = self.model(imgs)
            loss, parts = self.criterion(out.logits, out.features.float(), pids)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            if self.center_optimizer is not None:
                self.scaler.unscale_(self.center_optimizer)
                for p in self.criterion.center.parameters():
                    if p.grad is not None:  # undo the loss weight: centers learn at center_lr
                        p.grad.mul_(1.0 / self.criterion.center_weight)
                self.scaler.step(self.center_optimizer)
            self.scaler.update()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            seen += len(imgs)
            rate = seen / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(loss=f"{parts['loss']:.3f}", img_s=f"{rate:.1f}")
            bar.update(1)
        bar.close()
        elapsed = time.perf_counter() - start
        stats = {k: v / max(total, 1) for k, v in sums.items()}
        stats.update(epoch=epoch + 1, lr=self.optimizer.param_groups[0]["lr"], images=seen,
                     img_per_s=seen / max(elapsed, 1e-9), seconds=elapsed)
        self.scheduler.step()
        self.epoch += 1
        return stats

    def evaluate(self, *, progress: bool = True, rank_list: Path | None = None) -> dict[str, float]:
        """Evaluate on the dataset's query/gallery split (empty dict when there is none)."""
        if not self.data.query or not self.data.gallery:
            return {}
        tf = build_transforms(**C.transform_kwargs(self.cfg, train=False))
        kw = {"device": str(self.device), "batch_size": int(self.cfg["test"]["batch_size"]),
              "workers": int(self.cfg["data"]["workers"])}
        qf = extract_features(self.model, self.data.query, tf, desc="query", **kw)
        gf = extract_features(self.model, self.data.gallery, tf, desc="gallery", **kw)
        metrics, dist = evaluate_features(qf, gf, self.data.query, self.data.gallery,
                                          **C.test_kwargs(self.cfg))
        if rank_list is not None:
            save_rank_list(rank_list, dist, self.data.query, self.data.gallery)
        return metrics.as_dict()


def build_trainer(cfg: dict[str, Any], data: ReidData | None = None) -> Trainer:
    """Build dataset (unless given), model, loss, optimisers and schedule from ``cfg``; seeds first.

    Raises:
        KeyError: Unknown dataset/model/optimiser/schedule name (lists the valid ones).
        DataError / CheckpointError / ConfigError: Bad paths or values, in one sentence.
    """
    seed_everything(int(cfg["train"]["seed"]))
    device = resolve_device(cfg["train"]["device"])
    if device.type == "cpu" and int(cfg["train"]["cpu_threads"]) > 0:
        torch.set_num_threads(int(cfg["train"]["cpu_threads"]))
    if data is None:
        data = build_dataset(cfg["data"]["dataset"], cfg["data"]["root"])
    model = build_model(cfg["model"]["arch"], num_classes=data.num_train_pids, **C.model_kwargs(cfg))
    if cfg["model"]["pretrained"]:
        load_pretrained(model, cfg["model"]["pretrained"])
    model.to(device)
    criterion = ReidLoss(data.num_train_pids, model.feature_dim, **C.loss_kwargs(cfg)).to(device)
    optimizer = build_optimizer(model, **C.optimizer_kwargs(cfg))
    center_opt = None
    if criterion.center is not None:
        center_opt = torch.optim.SGD(criterion.center.parameters(), lr=float(cfg["loss"]["center_lr"]))
    scheduler = WarmupLR(optimizer, **C.scheduler_kwargs(cfg))
    amp = bool(cfg["train"]["amp"]) and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    return Trainer(cfg, data, model, criterion, optimizer, center_opt, scheduler, scaler, device)


class RunLog:
    """Append lines to a log file (and echo them through tqdm when ``echo``)."""

    def __init__(self, path: Path, echo: bool) -> None:
        self.path, self.echo = path, echo

    def __call__(self, msg: str) -> None:
        """Write one line."""
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(msg + "\n")
        if self.echo:
            tqdm.write(msg)


def train(cfg: dict[str, Any], *, data: ReidData | None = None, progress: bool = True,
          stop_after: int | None = None) -> Trainer:
    """Train as configured (resuming from ``train.resume`` when set); returns the trainer.

    Args:
        cfg: Resolved configuration (see :mod:`training.config`).
        data: Use this dataset instead of parsing ``data.dataset`` at ``data.root``.
        progress: tqdm bars and echoed log lines.
        stop_after: Stop after this many epochs in total (as if interrupted), for resume tests.
    """
    out = Path(cfg["train"]["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    log = RunLog(out / "log.txt", progress)
    trainer = build_trainer(cfg, data)
    if cfg["train"]["resume"]:
        trainer.load_state_dict(load_checkpoint(cfg["train"]["resume"]), str(cfg["train"]["resume"]))
        log(f"resumed from {cfg['train']['resume']} after epoch {trainer.epoch}")
    else:
        log(trainer.data.summary())
        n_params = sum(p.numel() for p in trainer.model.parameters()) / 1e6
        log(f"model {cfg['model']['arch']} ({n_params:.2f} M parameters) on {trainer.device}"
            f"{' with AMP' if trainer.amp else ''}")
    loader = build_train_loader(trainer.data.train, build_transforms(**C.transform_kwargs(cfg, train=True)),
                                **C.train_loader_kwargs(cfg))
    epochs = int(cfg["train"]["epochs"])
    every_ckpt = max(1, int(cfg["train"]["checkpoint_every"]))
    every_eval = int(cfg["train"]["eval_every"])
    while trainer.epoch < epochs and (stop_after is None or trainer.epoch < stop_after):
        stats = trainer.train_epoch(loader, progress=progress)
        e = trainer.epoch
        line = (f"epoch {e}/{epochs} loss {stats.get('loss', 0):.4f}"
                + "".join(f" {k} {stats[k]:.4f}" for k in ("ce", "triplet", "center", "circle") if k in stats)
                + (f" acc {100 * stats['acc']:.1f}%" if "acc" in stats else "")
                + f" lr {stats['lr']:.2e} {stats['img_per_s']:.1f} img/s")
        if e == epochs or (every_eval and e % every_eval == 0):
            figures = trainer.evaluate(progress=progress, rank_list=out / "rank_list.png")
            if figures:
                stats["eval"] = figures
                stats.update(rank1=figures["rank1"], mAP=figures["mAP"])
                line += " | " + " ".join(f"{k} {v:.1f}" for k, v in figures.items())
        trainer.history.append(stats)
        log(line)
        if e % every_ckpt == 0 or e == epochs:
            state = trainer.state_dict()
            save_checkpoint(out / "checkpoints" / f"epoch_{e:03d}.pth", state)
            save_checkpoint(out / "last.pth", state)
        (out / "history.json").write_text(json.dumps(trainer.history, indent=1))
        plot_history(trainer.history, out / "curves.png")
    return trainer
