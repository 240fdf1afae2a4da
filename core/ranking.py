"""How a query vector is made from what the user said, and sharpened by the first results.

Two steps, both on L2-normalised vectors, both keeping the score a cosine similarity (one
readable scale, see ``core.search``):

1. **Feedback** (:func:`feedback_query`, the positive half of Rocchio): the tracks the user
   confirmed join the query (the query vector and the centroids of the confirmed tracks are
   averaged, each counting once). A search without marks keeps its vector.
2. **Average query expansion** (:func:`expand_query`, as fast-reid's AQE): the query is
   searched once, and the centroids of its first, confident results — at most
   :attr:`Expansion.top` tracks scoring at least :attr:`Expansion.min_score`, weighted by
   their score to the power :attr:`Expansion.alpha` — are added to it before the final
   search. A person's other views (their back, when the photo shows the front) then come
   closer, since the confident tracks of that person hold them. Rejected and confirmed tracks
   take no part (the first are not the person, the second are already in the query).
3. **Rejections** (:func:`reject_penalty`, nearest confirmed against nearest rejected): a
   candidate whose centroid is closer to a rejected track than to the query and to every
   confirmed track loses the difference from its score. Subtracting the rejected tracks from
   the query vector instead (the negative half of Rocchio) lowered every score, the
   confirmed ones too, since all people share much of their appearance vector; this keeps
   the scale for everyone who does not look like a rejected hit.

A track's centroid is the L2-normalised mean of its stored embeddings (``core.linking``).
The measurements behind the defaults (true match rate at 1 % false match rate, with and
without expansion) are in the README ("Choosing a threshold").
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Expansion:
    """Settings of query feedback and expansion.

    Attributes:
        top: Most tracks added to the query by expansion (0: no expansion).
        min_score: Only tracks at least this similar to the query are added.
        alpha: Each added track weighs its score to this power (the query itself weighs 1).
    """

    top: int = 5
    min_score: float = 0.72
    alpha: float = 1.0


DEFAULT_EXPANSION = Expansion()
"""What ``core.search`` ships (chosen with ``scripts/calibrate_threshold.py``)."""

NO_EXPANSION = Expansion(top=0)
"""The plain query: one search, no expansion."""


def normalised(vector: np.ndarray) -> np.ndarray:
    """``vector`` scaled to unit length (float32); a zero vector stays zero."""
    v = np.asarray(vector, np.float64).ravel()
    norm = float(np.linalg.norm(v))
    return (v / norm if norm > 1e-12 else v).astype(np.float32)


def feedback_query(query: np.ndarray, confirmed: Sequence[np.ndarray] | np.ndarray = ()) -> np.ndarray:
    """The query with the confirmed tracks averaged in.

    Args:
        query: ``(D,)`` unit query vector.
        confirmed: ``(C, D)`` unit centroids of the confirmed tracks.

    Returns:
        ``(D,)`` unit vector ``normalise(mean(query, *confirmed))``.
    """
    q = np.asarray(query, np.float64).ravel()
    pos = np.vstack([q[None, :], np.asarray(confirmed, np.float64).reshape(-1, len(q))])
    return normalised(pos.mean(axis=0))


def reject_penalty(centroids: np.ndarray, query: np.ndarray, confirmed: np.ndarray | Sequence[np.ndarray],
                   rejected: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """How much each candidate's score drops because it looks like a rejected hit.

    Args:
        centroids: ``(N, D)`` unit centroids of the candidate tracks.
        query: ``(D,)`` the final query vector.
        confirmed: ``(C, D)`` unit centroids of the confirmed tracks.
        rejected: ``(R, D)`` unit centroids of the rejected tracks.

    Returns:
        ``(N,)`` ``max(0, nearest rejected - max(query, nearest confirmed))`` (cosines of centroids).
    """
    c = np.asarray(centroids, np.float64).reshape(len(centroids), -1)
    rej = np.asarray(rejected, np.float64).reshape(-1, c.shape[1])
    if len(c) == 0 or len(rej) == 0:
        return np.zeros(len(c))
    pos = np.vstack([np.asarray(query, np.float64).reshape(1, -1), np.asarray(confirmed, np.float64)
                     .reshape(-1, c.shape[1])])
    return np.maximum((c @ rej.T).max(axis=1) - (c @ pos.T).max(axis=1), 0.0)


def expand_query(query: np.ndarray, centroids: np.ndarray, scores: np.ndarray,
                 expansion: Expansion = DEFAULT_EXPANSION) -> np.ndarray:
    """Average query expansion over the confident first results.

    Args:
        query: ``(D,)`` unit query vector.
        centroids: ``(N, D)`` unit centroids of candidate tracks (rejected and confirmed ones left out).
        scores: ``(N,)`` their similarity to ``query``.
        expansion: Settings.

    Returns:
        ``(D,)`` unit vector ``normalise(query + sum(score_i ** alpha * centroid_i))`` over at most
        ``top`` tracks with ``score_i >= min_score``; ``query`` itself when none qualifies.
    """
    scores = np.asarray(scores, np.float64).ravel()
    if expansion.top <= 0 or len(scores) == 0:
        return normalised(query)
    order = np.argsort(-scores, kind="stable")[: expansion.top]
    order = order[scores[order] >= expansion.min_score]
    if len(order) == 0:
        return normalised(query)
    weights = scores[order] ** expansion.alpha
    added = (weights[:, None] * np.asarray(centroids, np.float64)[order]).sum(axis=0)
    return normalised(np.asarray(query, np.float64).ravel() + added)


def two_pass(query: np.ndarray, score: Callable[[np.ndarray], dict[K, float]],
             centroids: Callable[[list[K]], np.ndarray], expansion: Expansion = DEFAULT_EXPANSION,
             skip: Collection[K] = ()) -> tuple[np.ndarray, dict[K, float]]:
    """Search, expand the query over the confident first results, search again.

    Args:
        query: ``(D,)`` unit query vector (after :func:`feedback_query`).
        score: Searches with a query vector: ``{track: best cosine}`` of the candidates found.
        centroids: ``(N, D)`` unit centroids of the given tracks, in order.
        expansion: Settings (``top == 0``: one search).
        skip: Tracks that take no part in the expansion (the marked ones).

    Returns:
        ``(final query vector, {track: best cosine} of the final search)``.
    """
    first = score(query)
    if expansion.top <= 0:
        return normalised(query), first
    ranked = sorted((k for k in first if k not in skip), key=lambda k: -first[k])[: expansion.top]
    chosen = [k for k in ranked if first[k] >= expansion.min_score]
    if not chosen:
        return normalised(query), first
    expanded = expand_query(query, centroids(chosen), np.array([first[k] for k in chosen]), expansion)
    return expanded, score(expanded)
