"""Feature extraction with a torch model and evaluation of a query/gallery split."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.data.datasets import Item
from training.data.loader import build_test_loader
from training.evaluation.metrics import RankMetrics, evaluate_rank, pairwise_distance, query_expansion
from training.evaluation.rerank import re_ranking


@torch.no_grad()
def extract_features(model: nn.Module, items: Sequence[Item], transform: Callable, *, device: str = "cpu",
                     batch_size: int = 128, workers: int = 2, desc: str = "features",
                     progress: bool = True) -> np.ndarray:
    """Embed images with ``model`` in eval mode.

    Returns:
        ``(len(items), D)`` float32 features (not normalised).
    """
    was_training = model.training
    model.eval()
    out = []
    loader = build_test_loader(items, transform, batch_size=batch_size, workers=workers)
    for imgs, *_ in tqdm(loader, desc=desc, leave=False, disable=not progress or len(loader) < 3):
        out.append(model(imgs.to(device)).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def evaluate_features(qf: np.ndarray, gf: np.ndarray, query: Sequence[Item], gallery: Sequence[Item], *,
                      normalize: bool = True, rerank: bool = False, qe_k: int = 0,
                      rerank_params: tuple[int, int, float] = (20, 6, 0.3),
                      ) -> tuple[RankMetrics, np.ndarray]:
    """Distances (squared Euclidean on L2-normalised features by default) and metrics.

    Args:
        qf: ``(Q, D)`` query features.
        gf: ``(G, D)`` gallery features.
        query: Query items (pids, camids used).
        gallery: Gallery items.
        normalize: L2-normalise features first.
        rerank: Apply k-reciprocal re-ranking.
        qe_k: Average query expansion with this many gallery neighbours (0: off).
        rerank_params: ``(k1, k2, lambda)``.

    Returns:
        ``(metrics, (Q, G) distance matrix used)``.
    """
    if normalize:
        qf = qf / np.maximum(np.linalg.norm(qf, axis=1, keepdims=True), 1e-12)
        gf = gf / np.maximum(np.linalg.norm(gf, axis=1, keepdims=True), 1e-12)
    if qe_k > 0:
        qf = query_expansion(qf, gf, qe_k)
    dist = pairwise_distance(qf, gf)
    if rerank:  # re_ranking squares its inputs, so hand it plain Euclidean distances
        dist = re_ranking(np.sqrt(dist), np.sqrt(pairwise_distance(qf, qf)),
                          np.sqrt(pairwise_distance(gf, gf)), *rerank_params)
    q_pids = np.array([p for _, p, _ in query])
    q_cams = np.array([c for _, _, c in query])
    g_pids = np.array([p for _, p, _ in gallery])
    g_cams = np.array([c for _, _, c in gallery])
    return evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams), dist
