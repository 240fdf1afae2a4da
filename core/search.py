"""Search indexed videos for the person in one or more query photos.

Query photos -> one query vector: see :mod:`core.query_photos` (a photo's main person, tight
crops, several photos combined).

Scoring (:func:`search_runs`): every track of an indexed video has up to K embeddings
(crops spread over its life, see :mod:`core.pipeline`). A track's score is its *best*
match, the largest cosine similarity between the query vector and the track's K vectors,
found by an exact FAISS inner-product search (:class:`core.index.EmbeddingIndex`) limited
to the searched runs. With an exact search, a track whose second-best vector is among
the neighbours has its best vector among them too, so asking for ``top_k * K``
neighbours (doubling while short) gives exact per-track maxima. Before the final search
the query takes in the user's marks and is expanded over its confident first results
(:mod:`core.ranking`: Rocchio feedback, then average query expansion); the score stays
that cosine, shown as a **similarity** in ``[0, 1]`` (:func:`similarity`).
:data:`DEFAULT_THRESHOLD` was chosen for this scoring with
``scripts/calibrate_threshold.py`` (see that script and the README).

Hits (:mod:`core.hits`): the scored tracks are grouped into people (the tracks
``core.linking`` linked), one hit per person in one video with all of their segments,
the best frame and box of their best-matching track.

Search reads only the database and the FAISS index, never the video.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import StoreError
from core.hits import SEGMENT_GAP_S, VideoRun, person_hits, segment_gap_frames, similarity, split_segments
from core.index import EmbeddingIndex
from core.linking import centroids
from core.query_photos import (
    CROP_MIN_COVERAGE,
    CROP_MIN_HEIGHT,
    PAD_FRACTION,
    QueryPhoto,
    combine,
    embed_photo,
    embed_query,
    load_photo,
    main_person,
    photo_label,
)
from core.ranking import DEFAULT_EXPANSION, Expansion, feedback_query, normalised, reject_penalty, two_pass
from core.store import Store, VideoRecord
from core.types import Detector, Embedder, Hit

__all__ = [
    "CROP_MIN_COVERAGE", "CROP_MIN_HEIGHT", "DEFAULT_THRESHOLD", "PAD_FRACTION", "SCORE_FLOOR",
    "SEGMENT_GAP_S",
    "QueryPhoto", "RawSearch", "RunSearch", "SearchTarget", "combine", "embed_photo", "embed_query",
    "load_photo", "main_person", "photo_label", "search", "search_runs", "segment_gap_frames", "similarity",
    "split_segments",
]

DEFAULT_THRESHOLD = 0.85
"""Default similarity above which a track counts as the query person.

Chosen by ``scripts/calibrate_threshold.py`` on real data with the default ReID model: the
smallest threshold whose false match rate is at most 1 %. The measured rates, and how to pick
another threshold, are in the README ("Choosing a threshold"), their one home.
"""

SCORE_FLOOR = 0.0
"""No floor: every candidate (up to ``top_k`` people) is kept, so a threshold slider reaches all of them."""

# --------------------------------------------------------------------------- searching runs


@dataclass(frozen=True)
class SearchTarget:
    """One indexing run to search, with its video.

    Attributes:
        run_id: The run.
        video: Its video.
        stride: The run's processing stride (for segment gaps).
    """

    run_id: int
    video: VideoRecord
    stride: int


def _faiss_scorer(store: Store, index: EmbeddingIndex, targets: Sequence[SearchTarget], n_tracks: int,
                  best: dict[int, tuple[float, int]]):
    """``score(q) -> {track_pk: best cosine}`` over the targets' runs (exact per-track maxima).

    Each call also leaves ``{track_pk: (cosine, frame)}`` of its tracks in ``best``.
    """
    run_ids = sorted({t.run_id for t in targets})
    per_run = store.embedding_counts(index.reid_sha256)
    n_allowed = sum(per_run.get(r, 0) for r in run_ids)
    # Searching every run of the model needs no id filter (FAISS then skips building an id set).
    filter_ids = None if set(per_run) <= set(run_ids) else run_ids

    def score(query: np.ndarray) -> dict[int, float]:
        best.clear()
        if n_allowed == 0:
            return {}
        k = min(n_allowed, n_tracks * 8)
        while True:
            scores, ids = index.search(np.asarray(query, np.float32)[None, :], k, run_ids=filter_ids)
            valid = ids[0] >= 0
            scores, ids = scores[0][valid], ids[0][valid]
            info = store.embedding_info(ids)
            best.clear()
            for sc, eid in zip(scores.tolist(), ids.tolist(), strict=True):
                pk, frame = info[int(eid)]
                if pk not in best:  # results are best first: the first one per track is its best
                    best[pk] = (float(sc), int(frame))
            if len(best) >= n_tracks or k >= n_allowed:
                break
            k = min(n_allowed, k * 2)
        return {pk: c for pk, (c, _) in best.items()}

    return score


@dataclass(frozen=True)
class RunSearch:
    """Hits of :func:`search_runs`.

    Attributes:
        hits: ``(track_pks, hit)`` pairs: confirmed first, then best first (see ``core.hits``).
        rejected: ``(track_pks, hit)`` of the hits the user rejected.
        query: ``(D,)`` the final query vector (after feedback and expansion).
    """

    hits: tuple[tuple[tuple[int, ...], Hit], ...]
    rejected: tuple[tuple[tuple[int, ...], Hit], ...]
    query: np.ndarray


def search_runs(store: Store, index: EmbeddingIndex, query: np.ndarray, targets: Sequence[SearchTarget], *,
                top_k: int = 200, marks: Mapping[int, str] | None = None,
                expansion: Expansion = DEFAULT_EXPANSION, people: bool = True) -> RunSearch:
    """Score the tracks of the given runs against a query and make one hit per person.

    Args:
        store: The library.
        index: FAISS index of the ReID model the runs were made with.
        query: ``(D,)`` L2-normalised query vector (from the photos, or a track's embeddings).
        targets: Runs to search.
        top_k: Most unmarked hits returned (people; every marked one is kept besides).
        marks: ``{track_pk: "confirmed" | "rejected"}``: the user's marks for this query (``core.ranking``).
        expansion: Query expansion settings (``core.ranking.NO_EXPANSION``: the plain query).
        people: One hit per person (linked tracks together); ``False``: one hit per track.

    Returns:
        The hits, the rejected hits and the final query vector.
    """
    marks = {int(pk): m for pk, m in (marks or {}).items() if m}
    if not targets or top_k <= 0:
        return RunSearch((), (), normalised(query))
    marked_emb = store.track_embeddings(list(marks))
    marked_pks = [pk for pk in marks if pk in marked_emb]
    cents = dict(zip(marked_pks, centroids([marked_emb[pk].vectors for pk in marked_pks]), strict=True)) \
        if marked_pks else {}
    confirmed = [cents[pk] for pk in marked_pks if marks[pk] == "confirmed"]
    rejected = [cents[pk] for pk in marked_pks if marks[pk] == "rejected"]
    q = feedback_query(query, confirmed)
    best: dict[int, tuple[float, int]] = {}
    scorer = _faiss_scorer(store, index, targets, top_k + len(marks), best)

    def track_centroids(pks: list[int]) -> np.ndarray:
        stored = store.track_vectors(pks)
        return centroids([stored[pk] for pk in pks])

    final, _ = two_pass(q, scorer, track_centroids, expansion, skip=set(marks))
    scored = dict(best)
    run_ids = {t.run_id for t in targets}
    for pk in marked_pks:  # a marked track is scored even when it is far down the list
        emb = marked_emb[pk]
        if pk not in scored and int(emb.run_ids[0]) in run_ids:
            sims = emb.vectors @ final
            i = int(np.argmax(sims))
            scored[pk] = (float(sims[i]), int(emb.frames[i]))
    if rejected:  # candidates more like a rejected hit than like the query lose the difference
        others = [pk for pk in scored if pk not in marks]
        penalty = reject_penalty(track_centroids(others), final, np.array(confirmed).reshape(-1, len(final)),
                                 np.array(rejected))
        for pk, drop in zip(others, penalty.tolist(), strict=True):
            scored[pk] = (scored[pk][0] - drop, scored[pk][1])
    runs = {t.run_id: VideoRun(t.video.id, t.video.path, t.video.fps, t.stride, t.video.kind == "photos")
            for t in targets}
    found = person_hits(store, scored, runs, marks=marks, people=people, top_k=top_k)
    return RunSearch(found.hits, found.rejected, final)


@dataclass(frozen=True)
class RawSearch:
    """Result of :func:`search` before it is stored.

    Attributes:
        hits: ``(track_pks, hit)`` pairs, best first.
        rejected: ``(track_pks, hit)`` of rejected hits (none for a new search).
        photos: The embedded photos.
        query: ``(D,)`` query vector made from the photos (before expansion: what is stored).
        elapsed_s: Seconds spent (photo embedding included).
        embed_s: Seconds spent finding and embedding the people in the photos.
    """

    hits: tuple[tuple[tuple[int, ...], Hit], ...]
    rejected: tuple[tuple[tuple[int, ...], Hit], ...]
    photos: tuple[QueryPhoto, ...]
    query: np.ndarray
    elapsed_s: float
    embed_s: float


def search(photos: Sequence[str | Path | np.ndarray], *, store: Store, index: EmbeddingIndex,
           detector: Detector, embedder: Embedder, targets: Sequence[SearchTarget], top_k: int = 200,
           expansion: Expansion = DEFAULT_EXPANSION, people: bool = True) -> RawSearch:
    """Embed the query photos and search the given runs.

    Raises:
        QueryError: A photo is unusable.
        StoreError: Nothing to search.
    """
    t0 = time.perf_counter()
    if not targets:
        raise StoreError("no indexed video to search; index one first (python -m core index VIDEO).")
    query, done = embed_query(photos, detector, embedder)
    t1 = time.perf_counter()
    found = search_runs(store, index, query, targets, top_k=top_k, expansion=expansion, people=people)
    return RawSearch(hits=found.hits, rejected=found.rejected, photos=done, query=query,
                     elapsed_s=time.perf_counter() - t0, embed_s=t1 - t0)
