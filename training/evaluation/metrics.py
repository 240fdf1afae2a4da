"""Ranking metrics under the Market-1501 protocol: CMC, mAP, mINP.

For each query, gallery images of the same person taken by the same camera are
ignored (they are too easy), and so are junk gallery images (person id ``-1``).
Queries with no true match left are skipped. Distractors (any other id, e.g. 0)
stay in the gallery as negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RankMetrics:
    """Figures of one evaluation.

    Attributes:
        cmc: ``(max_rank,)`` float, ``cmc[k-1]`` = fraction of queries with a true match in the top k.
        mAP: Mean average precision over valid queries.
        mINP: Mean inverse negative penalty (Ye et al. 2021): mean of ``#positives / rank of the
            hardest (last) positive``.
        num_valid: Queries that had at least one true match after the exclusions.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int

    def rank(self, k: int) -> float:
        """CMC at rank ``k`` (1-based)."""
        return float(self.cmc[k - 1])

    def as_dict(self) -> dict[str, float]:
        """``{"rank1", "rank5", "rank10", "mAP", "mINP"}`` as percentages rounded to 0.1."""
        out = {f"rank{k}": round(100 * self.rank(k), 1) for k in (1, 5, 10) if k <= len(self.cmc)}
        out["mAP"] = round(100 * self.mAP, 1)
        out["mINP"] = round(100 * self.mINP, 1)
        return out

    def __str__(self) -> str:
        d = self.as_dict()
        return " ".join(f"{k} {v:.1f}" for k, v in d.items()) + f" ({self.num_valid} queries)"


def evaluate_rank(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_camids: np.ndarray,
                  g_camids: np.ndarray, max_rank: int = 50) -> RankMetrics:
    """Evaluate a ``(Q, G)`` distance matrix (smaller = more alike).

    Args:
        distmat: ``(Q, G)`` float distances.
        q_pids: ``(Q,)`` query person ids.
        g_pids: ``(G,)`` gallery person ids (``-1`` = junk, ignored).
        q_camids: ``(Q,)`` query camera ids.
        g_camids: ``(G,)`` gallery camera ids.
        max_rank: Length of the CMC curve (cut to G when the gallery is smaller).

    Returns:
        The metrics; ``num_valid`` 0 (and zeros) when no query has a true match.
    """
    distmat = np.asarray(distmat, np.float64)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    order = np.argsort(distmat, axis=1, kind="stable")
    cmcs, aps, inps = [], [], []
    for i in range(num_q):
        o = order[i]
        keep = ~(((g_pids[o] == q_pids[i]) & (g_camids[o] == q_camids[i])) | (g_pids[o] == -1))
        matches = (g_pids[o] == q_pids[i])[keep]
        if not matches.any():
            continue
        hits = np.flatnonzero(matches)
        cmc = np.zeros(max_rank)
        if hits[0] < max_rank:
            cmc[hits[0]:] = 1
        cmcs.append(cmc)
        precision_at_hits = np.arange(1, len(hits) + 1) / (hits + 1)
        aps.append(precision_at_hits.mean())
        inps.append(len(hits) / (hits[-1] + 1))
    if not cmcs:
        return RankMetrics(np.zeros(max_rank), 0.0, 0.0, 0)
    return RankMetrics(np.mean(cmcs, axis=0), float(np.mean(aps)), float(np.mean(inps)), len(cmcs))


def pairwise_distance(qf: np.ndarray, gf: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """``(Q, D), (G, D) -> (Q, G)`` distances: ``euclidean`` (squared) or ``cosine`` (1 - cos)."""
    qf, gf = np.asarray(qf, np.float32), np.asarray(gf, np.float32)
    if metric == "cosine":
        qn = qf / np.maximum(np.linalg.norm(qf, axis=1, keepdims=True), 1e-12)
        gn = gf / np.maximum(np.linalg.norm(gf, axis=1, keepdims=True), 1e-12)
        return 1.0 - qn @ gn.T
    if metric == "euclidean":
        d = (qf ** 2).sum(1)[:, None] + (gf ** 2).sum(1)[None, :] - 2 * qf @ gf.T
        return np.maximum(d, 0)
    raise KeyError(f"unknown metric {metric!r}; valid metrics: cosine, euclidean")


def query_expansion(qf: np.ndarray, gf: np.ndarray, top_k: int = 5) -> np.ndarray:
    """Average query expansion: each query + its ``top_k`` nearest gallery features (L2-normalised).

    Returns:
        ``(Q, D)`` expanded query features.
    """
    qn = qf / np.maximum(np.linalg.norm(qf, axis=1, keepdims=True), 1e-12)
    gn = gf / np.maximum(np.linalg.norm(gf, axis=1, keepdims=True), 1e-12)
    top = np.argsort(-(qn @ gn.T), axis=1)[:, :top_k]
    out = qn + gn[top].sum(axis=1)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
