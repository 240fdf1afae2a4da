"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), written after the authors' reference procedure.

1. Distances among all probe + gallery items are squared and each row is divided by
   its maximum.
2. For every item ``p``: its k-reciprocal neighbours ``R(p, k1)`` (items in p's top
   ``k1+1`` whose own top ``k1+1`` contains p) are expanded with the
   ``R(c, round(k1/2))`` of each member ``c`` that shares more than 2/3 of its items
   with ``R(p, k1)``, giving ``R*(p)``.
3. ``V[p, j] = exp(-d(p, j)) / sum`` over ``j`` in ``R*(p)`` (0 elsewhere); with
   ``k2 > 1``, ``V[p]`` is replaced by the mean of the ``V`` rows of p's ``k2`` nearest
   items (local query expansion).
4. Jaccard distance ``d_J(p, g) = 1 - sum_j min(V[p,j], V[g,j]) / sum_j max(V[p,j], V[g,j])``;
   since each row sums to 1 this is ``1 - m / (2 - m)`` with ``m = sum min``.
5. Final distance ``(1 - lambda) * d_J + lambda * d`` (``d`` from step 1).

Memory: ``V`` is a dense ``(Q+G, Q+G)`` float32 matrix.
"""

from __future__ import annotations

import numpy as np


def _k_reciprocal(initial_rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = initial_rank[i, :k + 1]
    backward = initial_rank[forward, :k + 1]
    return forward[(backward == i).any(axis=1)]


def k_reciprocal_jaccard(dist: np.ndarray, k1: int = 20, k2: int = 6, rows: int | None = None) -> np.ndarray:
    """Jaccard distances of k-reciprocal neighbour sets (steps 2-4 above).

    Args:
        dist: ``(N, N)`` prepared distances among all items (smaller is closer; each item's
            own distance the smallest of its row).
        k1: Neighbourhood size of the k-reciprocal sets.
        k2: Local query expansion size (1 = none).
        rows: Compute only the first ``rows`` rows (default: all ``N``).

    Returns:
        ``(rows, N)`` float32 Jaccard distances in ``[0, 1]`` (1: no shared neighbour).
    """
    dist = np.asarray(dist, np.float32)
    n = dist.shape[0]
    rows = n if rows is None else int(rows)
    initial_rank = np.argsort(dist, axis=1, kind="stable").astype(np.int32)
    half = int(np.around(k1 / 2.0))
    V = np.zeros((n, n), np.float32)
    for i in range(n):
        r = _k_reciprocal(initial_rank, i, k1)
        expansion = r
        for c in r:
            rc = _k_reciprocal(initial_rank, int(c), half)
            if len(np.intersect1d(rc, r)) > 2.0 / 3.0 * len(rc):
                expansion = np.append(expansion, rc)
        expansion = np.unique(expansion)
        w = np.exp(-dist[i, expansion])
        V[i, expansion] = w / w.sum()
    if k2 > 1:
        V = np.stack([V[initial_rank[i, :k2]].mean(axis=0) for i in range(n)])
    # Jaccard via the inverted index: only columns where V is non-zero contribute to the minimum.
    inv_index = [np.flatnonzero(V[:, j]) for j in range(n)]
    jaccard = np.zeros((rows, n), np.float32)
    for i in range(rows):
        m = np.zeros(n, np.float32)
        for j in np.flatnonzero(V[i]):
            found = inv_index[j]
            m[found] += np.minimum(V[i, j], V[found, j])
        jaccard[i] = 1 - m / (2 - m)
    return jaccard


def re_ranking(q_g_dist: np.ndarray, q_q_dist: np.ndarray, g_g_dist: np.ndarray, k1: int = 20, k2: int = 6,
               lambda_value: float = 0.3) -> np.ndarray:
    """Re-rank query-gallery distances.

    Args:
        q_g_dist: ``(Q, G)`` original distances.
        q_q_dist: ``(Q, Q)`` distances among queries.
        g_g_dist: ``(G, G)`` distances among gallery items.
        k1: Neighbourhood size of the k-reciprocal sets (20 in the paper).
        k2: Local query expansion size (6; 1 = none).
        lambda_value: Weight of the original distance (0.3).

    Returns:
        ``(Q, G)`` float32 final distances.
    """
    q_g_dist = np.asarray(q_g_dist, np.float32)
    num_q = q_g_dist.shape[0]
    dist = np.block([[np.asarray(q_q_dist, np.float32), q_g_dist],
                     [q_g_dist.T, np.asarray(g_g_dist, np.float32)]]) ** 2
    dist = dist / np.maximum(dist.max(axis=1, keepdims=True), 1e-12)
    jaccard = k_reciprocal_jaccard(dist, k1, k2, rows=num_q)
    final = (1 - lambda_value) * jaccard + lambda_value * dist[:num_q]
    return final[:, num_q:].astype(np.float32)
