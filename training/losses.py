"""ReID losses: label-smoothed cross-entropy, batch-hard triplet, center loss, circle loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CrossEntropyLabelSmooth(nn.Module):
    """Cross-entropy with label smoothing (Szegedy et al. 2016): target ``(1-eps) * onehot + eps / C``.

    Args:
        num_classes: C.
        epsilon: Smoothing (0 gives plain cross-entropy).
    """

    def __init__(self, num_classes: int, epsilon: float = 0.1) -> None:
        super().__init__()
        self.num_classes, self.epsilon = num_classes, epsilon

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean loss of ``(N, C)`` logits against ``(N,)`` int64 labels."""
        log_probs = F.log_softmax(logits.float(), dim=1)
        onehot = torch.zeros_like(log_probs).scatter_(1, targets.unsqueeze(1), 1)
        smooth = (1 - self.epsilon) * onehot + self.epsilon / self.num_classes
        return (-smooth * log_probs).sum(dim=1).mean()


def euclidean_dist(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(M, D), (N, D) -> (M, N)`` Euclidean distances (clamped at 1e-12 before the square root)."""
    xx = x.pow(2).sum(1, keepdim=True)
    yy = y.pow(2).sum(1, keepdim=True).t()
    d = (xx + yy - 2 * x @ y.t()).clamp(min=1e-12)
    return d.sqrt()


def hard_example_mining(dist: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each anchor: the farthest positive and the closest negative distance, each ``(N,)``."""
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    dist_ap = dist.masked_fill(~same, float("-inf")).max(dim=1).values
    dist_an = dist.masked_fill(same, float("inf")).min(dim=1).values
    return dist_ap, dist_an


class TripletLoss(nn.Module):
    """Batch-hard triplet loss (Hermans et al. 2017).

    Args:
        margin: Hinge margin; ``None`` for the soft-margin version ``softplus(d_ap - d_an)``.
        normalize: L2-normalise features first.
    """

    def __init__(self, margin: float | None = 0.3, normalize: bool = False) -> None:
        super().__init__()
        self.margin, self.normalize = margin, normalize

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(loss, fraction of anchors with d_an > d_ap)`` for ``(N, D)`` features."""
        x = features.float()
        if self.normalize:
            x = F.normalize(x, dim=1)
        dist_ap, dist_an = hard_example_mining(euclidean_dist(x, x), labels)
        valid = torch.isfinite(dist_ap) & torch.isfinite(dist_an)
        dist_ap, dist_an = dist_ap[valid], dist_an[valid]
        if dist_ap.numel() == 0:
            zero = features.sum() * 0
            return zero, zero.detach()
        if self.margin is None:
            loss = F.softplus(dist_ap - dist_an).mean()
        else:
            loss = F.relu(dist_ap - dist_an + self.margin).mean()
        return loss, (dist_an > dist_ap).float().mean().detach()


class CenterLoss(nn.Module):
    """Center loss (Wen et al. 2016): mean squared distance of features to their class center.

    The centers are parameters trained by their own optimizer (see ``training.solver``).

    Args:
        num_classes: Number of classes.
        feat_dim: Feature size D.
    """

    def __init__(self, num_classes: int, feat_dim: int) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``sum_i ||x_i - c_{y_i}||^2 / N`` (each term clamped to ``[1e-12, 1e12]``)."""
        diff = features.float() - self.centers[labels]
        return diff.pow(2).sum(1).clamp(1e-12, 1e12).mean()


class CircleLoss(nn.Module):
    """Pair-wise circle loss (Sun et al. 2020) on cosine similarities within the batch.

    Args:
        margin: Relaxation m (0.25).
        gamma: Scale (64 in the paper's ReID experiments; lower is gentler).
    """

    def __init__(self, margin: float = 0.25, gamma: float = 64.0) -> None:
        super().__init__()
        self.m, self.gamma = margin, gamma

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over anchors of ``softplus(logsumexp(neg logits) + logsumexp(pos logits))``."""
        x = F.normalize(features.float(), dim=1)
        sim = x @ x.t()
        n = len(labels)
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        eye = torch.eye(n, dtype=torch.bool, device=x.device)
        pos, neg = same & ~eye, ~same
        ap = (1 + self.m - sim.detach()).clamp(min=0)
        an = (sim.detach() + self.m).clamp(min=0)
        logit_p = -ap * (sim - (1 - self.m)) * self.gamma
        logit_n = an * (sim - self.m) * self.gamma
        logit_p = logit_p.masked_fill(~pos, float("-inf"))
        logit_n = logit_n.masked_fill(~neg, float("-inf"))
        valid = pos.any(1) & neg.any(1)
        if not valid.any():
            return features.sum() * 0
        lse = torch.logsumexp(logit_p[valid], dim=1) + torch.logsumexp(logit_n[valid], dim=1)
        return F.softplus(lse).mean()


class ReidLoss(nn.Module):
    """Weighted sum of the configured losses on a model's training output.

    Args:
        num_classes: Classifier size.
        feat_dim: Size of the features fed to the metric losses.
        ce_weight: Cross-entropy weight (0: off).
        label_smooth: Label smoothing epsilon.
        triplet_weight: Triplet weight (0: off).
        triplet_margin: Margin; ``None`` for soft margin.
        triplet_normalize: L2-normalise before the triplet distances.
        center_weight: Center-loss weight (0: off); its centers need their own optimizer.
        circle_weight: Circle-loss weight (0: off).
        circle_margin: Circle-loss m.
        circle_gamma: Circle-loss scale.
    """

    def __init__(self, num_classes: int, feat_dim: int, *, ce_weight: float = 1.0, label_smooth: float = 0.1,
                 triplet_weight: float = 1.0, triplet_margin: float | None = 0.3,
                 triplet_normalize: bool = False, center_weight: float = 0.0, circle_weight: float = 0.0,
                 circle_margin: float = 0.25, circle_gamma: float = 64.0) -> None:
        super().__init__()
        self.ce_weight, self.triplet_weight = ce_weight, triplet_weight
        self.center_weight, self.circle_weight = center_weight, circle_weight
        self.ce = CrossEntropyLabelSmooth(num_classes, label_smooth)
        self.triplet = TripletLoss(triplet_margin, triplet_normalize)
        self.center = CenterLoss(num_classes, feat_dim) if center_weight > 0 else None
        self.circle = CircleLoss(circle_margin, circle_gamma)

    def forward(self, logits: torch.Tensor | None, features: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Return the total loss and its parts (plus ``acc``, classification accuracy) as floats."""
        total = features.new_zeros((), dtype=torch.float32)
        parts: dict[str, float] = {}
        if self.ce_weight > 0 and logits is not None:
            ce = self.ce(logits, labels)
            total = total + self.ce_weight * ce
            parts["ce"] = float(ce.detach())
            parts["acc"] = float((logits.detach().argmax(1) == labels).float().mean())
        if self.triplet_weight > 0:
            tri, frac = self.triplet(features, labels)
            total = total + self.triplet_weight * tri
            parts["triplet"] = float(tri.detach())
            parts["triplet_ok"] = float(frac)
        if self.center is not None:
            cen = self.center(features, labels)
            total = total + self.center_weight * cen
            parts["center"] = float(cen.detach())
        if self.circle_weight > 0:
            cir = self.circle(features, labels)
            total = total + self.circle_weight * cir
            parts["circle"] = float(cir.detach())
        parts["loss"] = float(total.detach())
        return total, parts
