"""Cluster memory with momentum-updated centroids and its contrastive loss (Cluster Contrast, Dai 2022).

The memory holds one L2-normalised centroid per pseudo-identity. A batch of L2-normalised
features ``x`` with cluster labels ``y`` is scored against every centroid and the loss is
InfoNCE, ``CE(x @ M.T / temp, y)``; afterwards each centroid of the batch moves towards its
samples, ``M[y] <- normalise(momentum * M[y] + (1 - momentum) * x)`` (no gradient flows into it).

Camera-aware term (optional, ``cam_weight > 0``): with several cameras (videos), the memory
also keeps one centroid per (cluster, camera) and each sample is pulled towards its cluster's
centroids seen by *other* cameras (an inter-camera InfoNCE over the camera centroids, as in
the camera-aware proxies of Wang et al. 2021), so a person's look in one video is tied to the
same person in the others. With one camera it is zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ClusterMemory(nn.Module):
    """Centroid memory and InfoNCE loss.

    Args:
        dim: Feature size D.
        temp: Softmax temperature (0.05 in Cluster Contrast).
        momentum: Centroid update momentum (0.1-0.2).
        cam_weight: Weight of the camera-aware inter-camera term (0: off).
    """

    def __init__(self, dim: int, temp: float = 0.05, momentum: float = 0.2, cam_weight: float = 0.0) -> None:
        super().__init__()
        self.dim, self.temp, self.momentum, self.cam_weight = dim, temp, momentum, cam_weight
        self.register_buffer("centroids", torch.zeros(0, dim))
        self.register_buffer("cam_centroids", torch.zeros(0, dim))
        self.register_buffer("cam_cluster", torch.zeros(0, dtype=torch.long))
        self.register_buffer("cam_camera", torch.zeros(0, dtype=torch.long))

    @property
    def num_clusters(self) -> int:
        """Number of centroids."""
        return len(self.centroids)

    @torch.no_grad()
    def reset(self, features: torch.Tensor, labels: torch.Tensor, cameras: torch.Tensor) -> None:
        """Start a round: centroids = normalised mean features of each cluster (and cluster x camera).

        Args:
            features: ``(N, D)`` features of the round's samples.
            labels: ``(N,)`` cluster labels ``0..C-1`` (no outliers).
            cameras: ``(N,)`` camera ids.
        """
        x = F.normalize(features.float(), dim=1)
        c = int(labels.max()) + 1
        cent = torch.zeros(c, x.shape[1]).index_add_(0, labels, x)
        self.centroids = F.normalize(cent, dim=1)
        pairs, inverse = torch.unique(torch.stack([labels, cameras], 1), dim=0, return_inverse=True)
        cam = torch.zeros(len(pairs), x.shape[1]).index_add_(0, inverse, x)
        self.cam_centroids = F.normalize(cam, dim=1)
        self.cam_cluster, self.cam_camera = pairs[:, 0].clone(), pairs[:, 1].clone()

    def forward(self, features: torch.Tensor, labels: torch.Tensor,
                cameras: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of a batch (then the centroids of its clusters are updated).

        Args:
            features: ``(B, D)`` features (normalised here).
            labels: ``(B,)`` cluster labels.
            cameras: ``(B,)`` camera ids.

        Returns:
            ``(loss, parts)`` with ``parts`` = ``{"loss", "nce", "cam", "acc"}`` as floats.
        """
        x = F.normalize(features.float(), dim=1)
        logits = x @ self.centroids.clone().t() / self.temp  # the update below is in place
        nce = F.cross_entropy(logits, labels)
        loss = nce
        parts = {"nce": float(nce.detach()), "acc": float((logits.argmax(1) == labels).float().mean())}
        if self.cam_weight > 0:
            cam = self._camera_term(x, labels, cameras)
            loss = loss + self.cam_weight * cam
            parts["cam"] = float(cam.detach())
        parts["loss"] = float(loss.detach())
        self._update(x.detach(), labels, cameras)
        return loss, parts

    def _camera_term(self, x: torch.Tensor, labels: torch.Tensor, cameras: torch.Tensor) -> torch.Tensor:
        """Inter-camera InfoNCE: positives are the sample's cluster centroids of other cameras."""
        logits = x @ self.cam_centroids.clone().t() / self.temp
        pos = (self.cam_cluster[None] == labels[:, None]) & (self.cam_camera[None] != cameras[:, None])
        has = pos.any(1)
        if not has.any():
            return x.sum() * 0
        log_p = logits.log_softmax(1)
        return -(log_p.masked_fill(~pos, 0).sum(1)[has] / pos.sum(1)[has]).mean()

    @torch.no_grad()
    def _update(self, x: torch.Tensor, labels: torch.Tensor, cameras: torch.Tensor) -> None:
        m = self.momentum
        for xi, y, c in zip(x, labels.tolist(), cameras.tolist(), strict=True):
            self.centroids[y] = F.normalize(m * self.centroids[y] + (1 - m) * xi, dim=0)
            if self.cam_weight > 0:
                j = int(((self.cam_cluster == y) & (self.cam_camera == c)).nonzero()[0, 0])
                self.cam_centroids[j] = F.normalize(m * self.cam_centroids[j] + (1 - m) * xi, dim=0)
