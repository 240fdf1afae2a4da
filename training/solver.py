"""Optimisers and the warmup learning-rate schedule (multi-step or cosine), stepped once per epoch."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

OPTIMIZERS = ("adam", "amsgrad", "sgd", "adamw")
SCHEDULES = ("multistep", "cosine", "constant")


def build_optimizer(model: nn.Module, name: str = "adam", lr: float = 3.5e-4, weight_decay: float = 5e-4,
                    bias_lr_factor: float = 1.0, weight_decay_bias: float | None = None,
                    momentum: float = 0.9, extra_params: Sequence[nn.Parameter] = (),
                    ) -> torch.optim.Optimizer:
    """Optimiser over the trainable parameters, BoT-style: biases may get their own lr / decay.

    Args:
        model: The network.
        name: ``adam``, ``amsgrad``, ``adamw`` or ``sgd``.
        lr: Base learning rate.
        weight_decay: L2 weight decay of weights.
        bias_lr_factor: Learning-rate factor of biases.
        weight_decay_bias: Weight decay of biases (default: ``weight_decay``).
        momentum: SGD momentum.
        extra_params: More parameters to optimise with the base settings (e.g. a loss's).

    Raises:
        KeyError: Unknown ``name``.
    """
    wd_bias = weight_decay if weight_decay_bias is None else weight_decay_bias
    groups = []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if n.endswith("bias"):
            groups.append({"params": [p], "lr": lr * bias_lr_factor, "weight_decay": wd_bias})
        else:
            groups.append({"params": [p], "lr": lr, "weight_decay": weight_decay})
    if extra_params:
        groups.append({"params": list(extra_params), "lr": lr, "weight_decay": weight_decay})
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "amsgrad":
        return torch.optim.Adam(groups, lr=lr, amsgrad=True)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    raise KeyError(f"unknown optimizer {name!r}; valid optimizers: {', '.join(OPTIMIZERS)}")


class WarmupLR(LRScheduler):
    """Linear warmup from ``warmup_factor * lr`` over ``warmup_epochs``, then multi-step or cosine decay.

    ``step()`` once per epoch; epoch ``e`` (0-based) uses ``lr * factor(e)``:

    * warmup (``e < warmup_epochs``): ``warmup_factor + (1 - warmup_factor) * e / warmup_epochs``
      (BoT: 0.01 -> 1 over 10 epochs);
    * ``multistep``: ``gamma ** (number of milestones <= e)``;
    * ``cosine``: ``min_factor + (1 - min_factor) * (1 + cos(pi * t)) / 2`` with ``t`` going
      from 0 after warmup to 1 at ``max_epochs``;
    * ``constant``: 1.

    Args:
        optimizer: The optimiser.
        mode: ``multistep``, ``cosine`` or ``constant``.
        max_epochs: Total epochs (for cosine).
        milestones: Epochs at which ``multistep`` multiplies by ``gamma``.
        gamma: Multi-step factor.
        warmup_epochs: Warmup length (0: none).
        warmup_factor: Starting factor of the warmup.
        min_factor: Final factor of the cosine decay.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, mode: str = "multistep", max_epochs: int = 120,
                 milestones: Sequence[int] = (40, 70), gamma: float = 0.1, warmup_epochs: int = 10,
                 warmup_factor: float = 0.01, min_factor: float = 0.0, last_epoch: int = -1) -> None:
        if mode not in SCHEDULES:
            raise KeyError(f"unknown lr schedule {mode!r}; valid schedules: {', '.join(SCHEDULES)}")
        self.mode, self.max_epochs, self.milestones = mode, max_epochs, sorted(milestones)
        self.gamma, self.warmup_epochs, self.warmup_factor = gamma, warmup_epochs, warmup_factor
        self.min_factor = min_factor
        super().__init__(optimizer, last_epoch)

    def factor(self, epoch: int) -> float:
        """The lr multiplier of 0-based ``epoch``."""
        if epoch < self.warmup_epochs:
            return self.warmup_factor + (1 - self.warmup_factor) * epoch / self.warmup_epochs
        if self.mode == "multistep":
            return self.gamma ** sum(1 for m in self.milestones if m <= epoch)
        if self.mode == "cosine":
            span = max(1, self.max_epochs - self.warmup_epochs)
            t = min(1.0, (epoch - self.warmup_epochs) / span)
            return self.min_factor + (1 - self.min_factor) * (1 + math.cos(math.pi * t)) / 2
        return 1.0

    def get_lr(self) -> list[float]:  # noqa: D102
        f = self.factor(self.last_epoch)
        return [base * f for base in self.base_lrs]
