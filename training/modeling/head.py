"""Pooling and the shared embedding head (optional FC, optional BNNeck, classifier)."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class GeM(nn.Module):
    """Generalised-mean pooling (Radenović et al. 2018) with a learnable exponent ``p``.

    ``(N, C, H, W) -> (N, C, 1, 1)``: ``mean(x.clamp(eps) ** p) ** (1 / p)``.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return F.adaptive_avg_pool2d(x.clamp(min=self.eps).pow(self.p), 1).pow(1.0 / self.p)


POOLINGS = ("avg", "gem")


def make_pool(kind: str) -> nn.Module:
    """``"avg"`` (global average) or ``"gem"`` pooling."""
    if kind == "avg":
        return nn.AdaptiveAvgPool2d(1)
    if kind == "gem":
        return GeM()
    raise KeyError(f"unknown pooling {kind!r}; valid poolings: {', '.join(POOLINGS)}")


class ReidOutput(NamedTuple):
    """Training-mode output of a ReID network.

    Attributes:
        logits: ``(N, num_classes)`` classifier scores (``None`` without classifier).
        features: ``(N, D)`` features the metric losses use (before the BNNeck).
    """

    logits: torch.Tensor | None
    features: torch.Tensor


class ReidHeadMixin:
    """Pooling -> [fc] -> [BNNeck] -> classifier, with torchreid-compatible attribute names.

    A subclass defines ``featuremaps(x) -> (N, C, H, W)`` and calls :meth:`_build_head`.
    Attributes created: ``pool``; ``fc`` (``Linear + BatchNorm1d + ReLU`` like torchreid,
    or ``None``); ``bottleneck`` (BNNeck ``BatchNorm1d`` with a frozen bias, or ``None``);
    ``classifier`` (``Linear``, or ``None`` when ``num_classes`` is 0).

    In eval mode ``forward`` returns the inference embedding ``(N, D)``: after the
    BNNeck when there is one (BoT), else the pooled/fc feature (torchreid). In train
    mode it returns :class:`ReidOutput` with the pre-BNNeck feature for metric losses.
    """

    feature_dim: int

    def _build_head(self, in_dim: int, num_classes: int, *, pooling: str = "avg", fc_dim: int | None = None,
                    bnneck: bool = True, classifier_bias: bool | None = None) -> None:
        self.pool = make_pool(pooling)
        if fc_dim:
            self.fc = nn.Sequential(nn.Linear(in_dim, fc_dim), nn.BatchNorm1d(fc_dim), nn.ReLU(inplace=True))
            dim = fc_dim
        else:
            self.fc = None
            dim = in_dim
        self.feature_dim = dim
        if bnneck:
            self.bottleneck = nn.BatchNorm1d(dim)
            self.bottleneck.bias.requires_grad_(False)
            nn.init.constant_(self.bottleneck.weight, 1.0)
            nn.init.constant_(self.bottleneck.bias, 0.0)
        else:
            self.bottleneck = None
        if classifier_bias is None:
            classifier_bias = not bnneck
        if num_classes > 0:
            self.classifier = nn.Linear(dim, num_classes, bias=classifier_bias)
            nn.init.normal_(self.classifier.weight, std=0.001 if bnneck else 0.01)
            if classifier_bias:
                nn.init.constant_(self.classifier.bias, 0.0)
        else:
            self.classifier = None

    def featuremaps(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone feature maps ``(N, C, h, w)`` of images ``(N, 3, H, W)``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor | ReidOutput:
        """Embed ``(N, 3, H, W)`` images; see the class docstring for the outputs."""
        v = self.pool(self.featuremaps(x)).flatten(1)
        if self.fc is not None:
            v = self.fc(v)
        feat = self.bottleneck(v) if self.bottleneck is not None else v
        if not self.training:
            return feat
        logits = self.classifier(feat) if self.classifier is not None else None
        return ReidOutput(logits, v)

    def head_modules(self) -> list[str]:
        """Names of the head's parameterised modules (trained while the backbone is frozen)."""
        return [n for n in ("pool", "fc", "bottleneck", "classifier") if getattr(self, n) is not None]
