"""Pseudo-identities: tracks clustered with DBSCAN on a k-reciprocal Jaccard distance, must-not-link kept.

As in Cluster Contrast / SpCL, but on *tracks* (the mean feature of a track's crops): a
track is already one person (up to tracker mistakes), so clustering tracks merges the several
tracks of a person who left and came back, or who appears in several videos.

Must-not-link: two tracks seen in the same frame are two people. Their distance is set to
the maximum (1) before DBSCAN, and a cluster that still holds such a pair (DBSCAN chains
through a third track) is split greedily (:func:`split_cannot_link`), so no cluster ever
contains two tracks of one frame. Tracks DBSCAN leaves alone (label ``-1``) are outliers:
they sit out the round.
"""

from __future__ import annotations

import numpy as np

from training.evaluation.rerank import k_reciprocal_jaccard


def l2n(x: np.ndarray) -> np.ndarray:
    """Rows divided by their L2 norm (float32)."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def group_mean(features: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """``(n_groups, D)`` L2-normalised mean of the L2-normalised ``features`` of each group ``0..n-1``."""
    x = l2n(features)
    out = np.zeros((n_groups, x.shape[1]), np.float32)
    np.add.at(out, groups, x)
    return l2n(out)


def jaccard_distance(features: np.ndarray, k1: int = 6, k2: int = 2) -> np.ndarray:
    """``(N, N)`` symmetric k-reciprocal Jaccard distance of L2-normalised features (0 on the diagonal).

    The prepared distance is ``2 - 2 cos`` as in Cluster Contrast (no row normalisation).
    """
    x = l2n(features)
    dist = np.clip(2.0 - 2.0 * (x @ x.T), 0.0, None)
    np.fill_diagonal(dist, 0.0)
    jac = k_reciprocal_jaccard(dist, k1, k2)
    jac = np.clip(np.maximum(jac, jac.T), 0.0, 1.0)
    np.fill_diagonal(jac, 0.0)
    return jac


def split_cannot_link(labels: np.ndarray, dist: np.ndarray, cannot: np.ndarray, eps: float) -> np.ndarray:
    """Split every cluster holding a must-not-link pair; returns new labels (``-1`` for singletons).

    Inside such a cluster, members are taken densest first (most neighbours within ``eps``) and
    each joins the sub-cluster it is closest to on average (below ``eps``) among those holding no
    track it must not be linked with, else starts a new one. Sub-clusters of one track become
    outliers.
    """
    labels = np.asarray(labels).copy()
    next_label = labels.max() + 1 if len(labels) else 0
    for c in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == c)
        if not cannot[np.ix_(members, members)].any():
            continue
        density = (dist[np.ix_(members, members)] < eps).sum(1)
        groups: list[list[int]] = []
        for m in members[np.argsort(-density, kind="stable")]:
            best, best_d = None, eps
            for g in groups:
                if cannot[m, g].any():
                    continue
                d = float(dist[m, g].mean())
                if d < best_d:
                    best, best_d = g, d
            if best is None:
                groups.append([int(m)])
            else:
                best.append(int(m))
        for g in groups:
            if len(g) == 1:
                labels[g] = -1
            else:
                labels[g] = next_label
                next_label += 1
    return labels


def relabel(labels: np.ndarray) -> np.ndarray:
    """Clusters renumbered ``0..C-1`` in order of first appearance; ``-1`` kept."""
    out = np.full(len(labels), -1, np.int64)
    mapping: dict[int, int] = {}
    for i, lab in enumerate(np.asarray(labels).tolist()):
        if lab >= 0:
            out[i] = mapping.setdefault(lab, len(mapping))
    return out


def cluster_tracks(features: np.ndarray, cannot: np.ndarray, *, eps: float = 0.6, min_samples: int = 2,
                   k1: int = 6, k2: int = 2) -> np.ndarray:
    """Cluster track features into pseudo-identities.

    Args:
        features: ``(T, D)`` track features.
        cannot: ``(T, T)`` bool must-not-link matrix (tracks seen in one frame).
        eps: DBSCAN neighbourhood radius on the Jaccard distance.
        min_samples: DBSCAN core-point size (2: a cluster needs two tracks).
        k1: k-reciprocal neighbourhood size.
        k2: Local query expansion size.

    Returns:
        ``(T,)`` int64 labels ``0..C-1``, ``-1`` for outliers; no cluster holds a must-not-link pair.
    """
    from sklearn.cluster import DBSCAN

    n = len(features)
    if n < 2:
        return np.full(n, -1, np.int64)
    dist = jaccard_distance(features, k1, k2)
    dist[cannot] = 1.0
    dbscan = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed")
    labels = dbscan.fit_predict(dist.astype(np.float64))
    return relabel(split_cannot_link(labels, dist, cannot, eps))
