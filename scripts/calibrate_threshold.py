"""Measure same-person and different-person scores on real data; pick the default threshold and linking rules.

Usage (from the project root)::

    python scripts/calibrate_threshold.py [--db LIB.sqlite] [--video ../shared/data/video/vtest.avi]
        [--detector FILE] [--reid FILE] [--stride 2] [--min-gap-s 3] [--max-fmr 0.01] [--grid]

**Search scores.** What is measured is the *search score* of ``core.search``: a query crop's best
cosine over a track's stored K embeddings, clipped to ``[0, 1]``, for the plain query and for
the query after average query expansion (``core.ranking``, the shipped scoring), and, for
comparison, k-reciprocal re-ranking (a distance, not a similarity: only its ranking is
comparable, so it is reported as a true match rate at 1 % false match rate).

* Query crops: every track of the indexed video (``--video``, default vtest.avi) is cropped at
  sightings spread over its life (every ``--sample-every`` frames, boxes not touching the image
  border, not covered by another person, upright, at least ``--min-height`` px tall), read
  back from the video and embedded.
* Units: a track is cut where two consecutive samples (about 1 s apart) stop looking alike
  (tracker id switches); each piece is a unit, assumed to be one person.
* The gallery of a query crop of unit ``u`` at frame ``f``: every stored embedding of the video
  except those of ``u`` less than ``--min-gap-s`` from ``f`` (a crop is not searched against
  itself or its neighbours).
* Same person, own track: the score of ``u`` (its embeddings at least 3 s away: other pose,
  place, light, size). Same person, other tracks: the score of every other unit of the same
  person by the hand annotation :data:`PEOPLE` (front against back views: what expansion is for).
* Different people: every unit seen in the *same frame* as ``u`` (two boxes in one frame are
  certainly two people); the Market-1501 crops of identity 0001 (never in vtest) against every
  vtest track. Hand-annotated different people (look-alikes seen at other times) are reported
  beside them.
* Same person (Market-1501): the two query crops of identity 0001 (cameras 1 and 6) against
  each other, and each against her cut out of the full frame ``c1s1_001051.jpg``.

The threshold is the smallest value (0.01 steps) whose false match rate is at most ``--max-fmr``.

**Linking** (``core.linking``): track-to-track appearance (the cosine of track centroids) for
pairs of tracks seen in the same frame (certainly two people), for the two halves of one track
(one person), and for the tracks of the hand annotation; then the people the shipped linking
finds in the video, checked against the annotation, and the hits per person of a search
before and after linking.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.engine import Engine
from core.linking import DEFAULT_LINK_SETTINGS, centroids, link_run
from core.ranking import DEFAULT_EXPANSION, NO_EXPANSION, Expansion, two_pass
from core.search import embed_photo, similarity
from core.text import plural
from core.video import open_source
from training.evaluation.rerank import re_ranking

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PCTS = (1, 5, 10, 25, 50, 75, 90, 95, 99)
THRESHOLDS = (0.60, 0.70, 0.76, 0.80, 0.82, 0.84, 0.85, 0.86, 0.88, 0.90)

# Hand annotation of vtest.avi, checked by eye on crops of every track (contact sheets of 8 crops
# per track and full frames around each junction): the people who come back, one (frame, box)
# per track of theirs at stride 2 with the default models (xyxy pixels of the 768x576 frame).
# The two men in long black coats (alike, once in view together) and a few short tracks are
# left out: which coat is which could not be told for every track.
PEOPLE: dict[str, list[tuple[int, tuple[int, int, int, int]]]] = {
    "man in the red-and-navy puffer jacket": [(82, (433, 167, 483, 244)), (288, (585, 142, 626, 214)),
                                              (534, (294, 383, 388, 548)), (678, (519, 157, 569, 230))],
    "blonde woman in a black coat": [(90, (475, 156, 526, 228)), (308, (609, 164, 647, 238)),
                                     (664, (263, 345, 329, 484))],
    "woman in the red jacket": [(506, (262, 184, 313, 261)), (710, (507, 125, 544, 190))],
    "man in the black leather jacket": [(24, (365, 185, 407, 264)), (182, (587, 214, 647, 313)),
                                        (280, (399, 238, 444, 320)), (370, (492, 249, 544, 355)),
                                        (562, (578, 155, 624, 233)), (758, (309, 172, 357, 247))],
    "bald man, dark jacket, jeans": [(98, (576, 155, 616, 225)), (232, (262, 155, 321, 238)),
                                     (350, (463, 182, 518, 275)), (544, (417, 165, 461, 250)),
                                     (700, (356, 167, 405, 246)), (782, (606, 204, 656, 306))],
    "dark-haired man, dark jacket, jeans": [(90, (362, 175, 412, 246)), (192, (560, 240, 606, 342)),
                                            (260, (315, 208, 372, 306)), (324, (443, 143, 479, 214)),
                                            (442, (292, 194, 327, 291)), (640, (355, 157, 402, 232)),
                                            (752, (398, 232, 447, 306))],
}


def percentiles(name: str, values: np.ndarray) -> str:
    v = np.asarray(values, np.float64)
    if len(v) == 0:
        return f"{name:36s} n=0"
    cells = " ".join(f"{np.percentile(v, p):.3f}" for p in PCTS)
    return f"{name:36s} n={len(v):5d}  min {v.min():.3f}  {cells}  max {v.max():.3f}"


def pick_threshold(same: np.ndarray, diff: np.ndarray, max_fmr: float) -> tuple[float, float, float]:
    """Smallest threshold (0.01 steps) with FMR <= max_fmr; returns (threshold, TMR, FMR)."""
    for t in np.round(np.arange(0.0, 1.0001, 0.01), 2):
        fmr = float(np.mean(diff >= t))
        if fmr <= max_fmr:
            return float(t), float(np.mean(same >= t)), fmr
    return 1.0, float(np.mean(same >= 1.0)), float(np.mean(diff >= 1.0))


def tmr_at_fmr(same: np.ndarray, diff: np.ndarray, max_fmr: float) -> float:
    """True match rate at the smallest score cut whose false match rate is at most ``max_fmr`` (any scale)."""
    cut = np.quantile(diff, 1.0 - max_fmr, method="higher") if len(diff) else -np.inf
    cut = np.nextafter(cut, np.inf) if np.mean(diff >= cut) > max_fmr else cut
    return float(np.mean(same >= cut))


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / max((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter, 1e-9)


class Video:
    """The indexed video: tracks, sightings, embeddings, query crops, units, co-occurrence, annotation."""

    def __init__(self, engine: Engine, args: argparse.Namespace) -> None:
        self.engine, self.args = engine, args
        store = engine.store
        self.video = engine.find_video(args.video)
        self.run = engine.run_for(self.video).run
        assert self.run is not None
        self.tracks = store.tracks(self.run.id)
        self.emb = store.embedding_rows([self.run.id])
        self.by_pk = {t.pk: t for t in self.tracks}
        self.sight = {t.pk: store.sightings(t.pk) for t in self.tracks}
        self.tid = {pk: t.track_id for pk, t in self.by_pk.items()}
        self._sample_crops()
        self._cut_units()
        self._annotation()

    def covered(self, f: int, b: np.ndarray) -> float:
        """Largest fraction of box b covered by another person's box in frame f."""
        worst = 0.0
        for o in self.boxes_at[f]:
            if np.array_equal(o, b):
                continue
            iw = max(0.0, min(b[2], o[2]) - max(b[0], o[0]))
            ih = max(0.0, min(b[3], o[3]) - max(b[1], o[1]))
            worst = max(worst, iw * ih / max((b[2] - b[0]) * (b[3] - b[1]), 1e-9))
        return worst

    def _sample_crops(self) -> None:
        args, W, H = self.args, self.video.width, self.video.height
        self.boxes_at: dict[int, list[np.ndarray]] = {}
        for s in self.sight.values():
            for f, b in zip(s.frames.tolist(), s.boxes, strict=True):
                self.boxes_at.setdefault(f, []).append(b)
        wanted: dict[int, list[tuple[int, np.ndarray, bool]]] = {}
        for pk, s in self.sight.items():
            last = -10**9
            for f, b in zip(s.frames.tolist(), s.boxes, strict=True):
                if f - last < args.sample_every or b[3] - b[1] < args.min_height:
                    continue
                border = b[0] <= 2 or b[1] <= 2 or b[2] >= W - 2 or b[3] >= H - 2
                upright = b[3] - b[1] >= 1.2 * (b[2] - b[0])  # a query photo shows a standing person
                clean = upright and not border and self.covered(f, b) <= args.max_overlap
                wanted.setdefault(f, []).append((pk, b, clean))
                last = f
        self.samples: dict[int, list[tuple[int, np.ndarray, bool]]] = {pk: [] for pk in self.by_pk}
        with open_source(args.video) as src:
            for f in sorted(wanted):
                image = src.read(f).image
                e = self.engine.embedder.embed(image, np.stack([b for _, b, _ in wanted[f]]))
                for row, j in enumerate(e.kept.tolist()):
                    pk, _, clean = wanted[f][j]
                    self.samples[pk].append((f, e.vectors[row], clean))

    def _cut_units(self) -> None:
        args = self.args
        self.unit_spans: dict[int, list[tuple[int, int, int]]] = {}
        self.cuts_text = []
        next_unit = 0
        for pk, smp in self.samples.items():
            s = self.sight[pk]
            bounds = [int(s.frames[0])]
            for (f0, v0, _), (f1, v1, _) in zip(smp, smp[1:], strict=False):
                if args.split_cos > 0 and float(v0 @ v1) < args.split_cos:
                    bounds.append((f0 + f1) // 2 + 1)
                    self.cuts_text.append(f"T{self.tid[pk]}@{f0}-{f1} ({float(v0 @ v1):.2f})")
            bounds.append(int(s.frames[-1]) + 1)
            self.unit_spans[pk] = []
            for lo, hi in zip(bounds, bounds[1:], strict=False):
                self.unit_spans[pk].append((lo, hi - 1, next_unit))
                next_unit += 1
        self.emb_unit = np.array([self.unit(pk, f) for pk, f in zip(self.emb.track_pks.tolist(),
                                                                    self.emb.frames.tolist(), strict=True)])
        frames: dict[int, set[int]] = {}
        self.unit_name: dict[int, str] = {}
        for pk, s in self.sight.items():
            for f in s.frames.tolist():
                u = self.unit(pk, f)
                frames.setdefault(u, set()).add(f)
                self.unit_name[u] = f"T{self.tid[pk]}[{min(frames[u])}-{max(frames[u])}]"
        # Tracks of things that are not standing people (a detector false positive on an object lying on the
        # lawn, wider than tall, the same in every frame) would add trivial pairs to both sets: left out.
        aspect = {pk: float(np.median((s.boxes[:, 3] - s.boxes[:, 1])
                                      / np.maximum(s.boxes[:, 2] - s.boxes[:, 0], 1)))
                  for pk, s in self.sight.items()}
        self.not_people = {pk for pk, a in aspect.items() if a < 1.2}
        self.not_people_text = ", ".join(f"T{self.tid[pk]} ({aspect[pk]:.2f})"
                                         for pk in sorted(self.not_people))
        bad_units = {u for pk in self.not_people for _, _, u in self.unit_spans[pk]}
        self.co = {u: {w for w in frames if w != u and w not in bad_units and frames[u] & frames[w]}
                   for u in frames}

    def unit(self, pk: int, f: int) -> int:
        return next(u for lo, hi, u in self.unit_spans[pk] if lo <= f <= hi)

    def _annotation(self) -> None:
        """Person of each unit (and track) by :data:`PEOPLE`: the unit holding the annotated sighting."""
        self.person_of_unit: dict[int, str] = {}
        self.person_of_track: dict[int, str] = {}
        self.missing = []
        for name, seen in PEOPLE.items():
            for f, box in seen:
                found = [(box_iou(np.array(box, np.float32), b), pk) for pk, s in self.sight.items()
                         for g, b in zip(s.frames.tolist(), s.boxes, strict=True) if g == f]
                iou, pk = max(found, default=(0.0, None))
                if pk is None or iou < 0.5:
                    self.missing.append(f"{name} at frame {f}")
                    continue
                self.person_of_unit[self.unit(pk, f)] = name
                self.person_of_track[pk] = name


def unit_scorer(v: Video, keep: np.ndarray) -> tuple[Callable, Callable]:
    """``score(q) -> {unit: best cosine}`` and ``centroids(units)`` over the embeddings where ``keep``."""
    vecs, units = v.emb.vectors[keep], v.emb_unit[keep]
    order = np.unique(units)

    def score(q: np.ndarray) -> dict[int, float]:
        s = vecs @ q
        best = np.full(units.max() + 1, -np.inf)
        np.maximum.at(best, units, s)
        return {int(u): float(best[u]) for u in order}

    def cents(chosen: list[int]) -> np.ndarray:
        return centroids([vecs[units == u] for u in chosen])

    return score, cents


def kreciprocal_scores(q: np.ndarray, v: Video, keep: np.ndarray) -> dict[int, float]:
    """k-reciprocal re-ranking (k1 6, k2 3, lambda 0.3) over unit centroids: 1 - final distance."""
    vecs, units = v.emb.vectors[keep], v.emb_unit[keep]
    order = np.unique(units)
    g = centroids([vecs[units == u] for u in order]).astype(np.float64)
    best = np.array([(vecs[units == u] @ q).max() for u in order])
    dist = re_ranking(np.sqrt(np.maximum(2 - 2 * best, 0))[None, :], np.zeros((1, 1)),
                      np.sqrt(np.maximum(2 - 2 * g @ g.T, 0)), k1=6, k2=3, lambda_value=0.3)[0]
    return {int(u): float(1 - d) for u, d in zip(order, dist, strict=True)}


def measure(v: Video, scoring: str | Expansion, gap_frames: int) -> dict[str, np.ndarray]:
    """Same/different score sets of every clean query crop under one scoring."""
    out: dict[str, list[float]] = {"same": [], "same_other": [], "diff": [], "diff_hand": []}
    for pk, smp in v.samples.items():
        if pk in v.not_people:
            continue
        for f, q, clean in smp:
            if not clean:
                continue
            u = v.unit(pk, f)
            keep = ~((v.emb_unit == u) & (np.abs(v.emb.frames - f) < gap_frames))
            if isinstance(scoring, Expansion):
                score, cents = unit_scorer(v, keep)
                _, scores = two_pass(q, score, cents, scoring)
            else:
                scores = kreciprocal_scores(q, v, keep)
            if u in scores and (v.emb_unit[keep] == u).any():
                out["same"].append(scores[u])
            me = v.person_of_unit.get(u)
            for w, sc in scores.items():
                other = v.person_of_unit.get(w)
                if w == u or w not in v.unit_name:
                    continue
                if w in v.co[u]:
                    out["diff"].append(sc)
                elif me and other and other == me:
                    out["same_other"].append(sc)
                elif me and other:
                    out["diff_hand"].append(sc)
    return {k: np.array(val) for k, val in out.items()}


def market_scores(v: Video, args: argparse.Namespace, scoring: str | Expansion,
                  ) -> tuple[np.ndarray, np.ndarray]:
    engine = v.engine
    qfiles = sorted((args.market / "query").glob("*.jpg"))
    market = [embed_photo(p, i, engine.detector, engine.embedder) for i, p in enumerate(qfiles)]
    full = embed_photo(args.market / "full_frames" / "c1s1_001051.jpg", 0, engine.detector, engine.embedder)
    same = [float(market[0].vector @ market[1].vector)] + [float(m.vector @ full.vector) for m in market]
    people = np.array([pk not in v.not_people for pk in v.emb.track_pks.tolist()])
    diff = []
    for m in market:
        if isinstance(scoring, Expansion):
            score, cents = unit_scorer(v, people)
            diff += list(two_pass(m.vector, score, cents, scoring)[1].values())
        else:
            diff += list(kreciprocal_scores(m.vector, v, people).values())
    return np.array(same), np.array(diff)


def report_scores(v: Video, args: argparse.Namespace) -> None:
    gap = int(math.ceil(args.min_gap_s * v.video.fps))
    variants: list[tuple[str, str | Expansion]] = [
        ("plain (no expansion)", NO_EXPANSION),
        ("shipped: AQE " + _aqe_name(DEFAULT_EXPANSION), DEFAULT_EXPANSION)]
    if args.grid:
        for top in (1, 3, 5, 10):
            for ms in (0.70, 0.72, 0.74, 0.76, 0.80):
                for alpha in (1.0, 3.0):
                    variants.append((f"AQE top {top} >= {ms} alpha {alpha:g}", Expansion(top, ms, alpha)))
    variants.append(("k-reciprocal (k1 6, k2 3, lambda 0.3)", "k-reciprocal"))
    rows = []
    for name, scoring in variants:
        sets = measure(v, scoring, gap)
        m_same, m_diff = market_scores(v, args, scoring)
        same = np.concatenate([similarity(sets["same"]), similarity(m_same)])
        diff = np.concatenate([similarity(sets["diff"]), similarity(m_diff)])
        other = similarity(sets["same_other"])
        rows.append((name, scoring, sets, same, diff, other))
        print(f"{name:44s} TMR@{args.max_fmr:.0%}FMR own track {tmr_at_fmr(same, diff, args.max_fmr):.3f}, "
              f"other tracks of the person {tmr_at_fmr(other, diff, args.max_fmr):.3f}  "
              f"(n same {len(same)}, other {len(other)}, diff {len(diff)}, "
              f"hand diff {len(sets['diff_hand'])})",
              flush=True)
    for name, _, sets, same, diff, other in rows[:2]:
        print(f"\n== {name}")
        print(percentiles("same person, own track (3 s away)", similarity(sets["same"])))
        print(percentiles("same person, other tracks (hand)", similarity(sets["same_other"])))
        print(percentiles("different, seen in the same frame", similarity(sets["diff"])))
        print(percentiles("different, hand annotation", similarity(sets["diff_hand"])))
        print("threshold  TMR own  TMR other  FMR   FMR hand")
        hand = similarity(sets["diff_hand"])
        for t in THRESHOLDS:
            print(f"  {t:.2f}     {np.mean(same >= t):.3f}    {np.mean(other >= t):.3f}   "
                  f"{np.mean(diff >= t):.4f}  {np.mean(hand >= t):.4f}")
        t, tmr, fmr = pick_threshold(same, diff, args.max_fmr)
        print(f"threshold for FMR <= {args.max_fmr:g}: {t:.2f}: TMR own {tmr:.3f}, "
              f"other {np.mean(other >= t):.3f}, "
              f"FMR {fmr:.4f}")


def _aqe_name(e: Expansion) -> str:
    return f"top {e.top} >= {e.min_score} alpha {e.alpha:g}"


def report_linking(v: Video, args: argparse.Namespace) -> None:
    store = v.engine.store
    vec = store.track_vectors([t.pk for t in v.tracks])
    cen = {pk: centroids([vec[pk]])[0] for pk in vec}
    people = [t.pk for t in v.tracks if t.pk not in v.not_people and t.pk in cen]
    seen = {pk: set(v.sight[pk].frames.tolist()) for pk in people}
    span = {t.pk: (t.first_frame, t.last_frame) for t in v.tracks}
    co, halves, same, diff = [], [], [], []
    for i, a in enumerate(people):
        for b in people[i + 1:]:
            c = float(cen[a] @ cen[b])
            if seen[a] & seen[b]:
                co.append(c)
            elif span[a][1] < span[b][0] or span[b][1] < span[a][0]:
                if a in v.person_of_track and b in v.person_of_track:
                    (same if v.person_of_track[a] == v.person_of_track[b] else diff).append(c)
        emb_frames = v.emb.frames[v.emb.track_pks == a]
        if len(emb_frames) >= 2 and (emb_frames.max() - emb_frames.min()) >= args.min_gap_s * v.video.fps:
            mid = np.median(emb_frames)
            lo, hi = vec[a][emb_frames <= mid], vec[a][emb_frames > mid]
            if len(lo) and len(hi):
                halves.append(float(centroids([lo])[0] @ centroids([hi])[0]))
    co, halves, same, diff = map(np.array, (co, halves, same, diff))
    print("\n== linking: track-to-track appearance (cosine of centroids)")
    print(percentiles("two tracks seen in the same frame", co))
    print(percentiles("two halves of one track", halves))
    print(percentiles("same person, other track (hand)", same))
    print(percentiles("different people (hand)", diff))
    print("threshold  halves  same(hand)  same-frame pairs above  hand-different above")
    for t in (0.76, 0.78, 0.80, 0.82, 0.84, 0.86, 0.88, 0.90, 0.92):
        print(f"  {t:.2f}    {np.mean(halves >= t):.3f}   {np.mean(same >= t):.3f}      "
              f"{int(np.sum(co >= t)):3d} of {len(co)}            {int(np.sum(diff >= t)):3d} of {len(diff)}")
    rec = link_run(store, v.run.id)
    groups = store.run_people(v.run.id)
    person_of = {pk: person for person, pks in groups.items() for pk in pks}
    joined = [g for g in groups.values() if len(g) > 1]
    wrong = [g for g in joined if len({v.person_of_track[pk] for pk in g if pk in v.person_of_track}) > 1]
    together = sum(1 for g in groups.values() for a in g for b in g if a < b
                   and v.person_of_track.get(a) and v.person_of_track.get(a) == v.person_of_track.get(b))
    possible = sum(1 for a in v.person_of_track for b in v.person_of_track
                   if a < b and v.person_of_track[a] == v.person_of_track[b])
    print(f"\nlinking {DEFAULT_LINK_SETTINGS}: {len(v.tracks)} tracks -> {rec.people} people in "
          f"{rec.elapsed_s * 1000:.0f} ms; groups of several tracks: "
          + "; ".join("+".join(f"T{v.tid[pk]}" for pk in sorted(g, key=v.tid.get)) for g in joined))
    print(f"hand annotation: groups mixing two annotated people: {len(wrong)}; pairs of one person's tracks "
          f"linked {together} of {possible}")
    for name in PEOPLE:
        mine = [pk for pk, p in v.person_of_track.items() if p == name]
        people = plural(len({person_of[pk] for pk in mine}), "person", "people")
        print(f"  {name}: {len(mine)} tracks -> {people}")


def report_hits_per_person(v: Video, args: argparse.Namespace) -> None:
    """Hits per person of a search, before (plain scoring, one hit per track, the old 0.76) and after."""
    from core.search import DEFAULT_THRESHOLD, SearchTarget, search_runs

    engine, store = v.engine, v.engine.store

    def count(query: np.ndarray, target: SearchTarget, mine: set[int], after: bool) -> tuple[int, int, int]:
        found = search_runs(store, engine.faiss_index, query, [target], expansion=DEFAULT_EXPANSION if after
                            else NO_EXPANSION, people=after).hits
        t = DEFAULT_THRESHOLD if after else 0.76
        kept = [pks for pks, h in found if h.score >= t]
        right = [pks for pks in kept if set(pks) & mine]
        return len(right), len(kept) - len(right), len({pk for pks in right for pk in pks} & mine)

    print(f"\n== hits per person: before (no expansion, one hit per track, threshold 0.76) -> after "
          f"(shipped scoring and linking, threshold {DEFAULT_THRESHOLD})")
    target = SearchTarget(v.run.id, v.video, int(v.run.settings.get("stride", 1)))
    for name, seen in PEOPLE.items():
        mine = {pk for pk, p in v.person_of_track.items() if p == name}
        f, box = seen[0]
        pk = max(mine, key=lambda t: box_iou(np.array(box, np.float32), v.sight[t].boxes[
            np.argmin(np.abs(v.sight[t].frames - f))]))
        crops = [(g, q) for g, q, clean in v.samples[pk] if clean] or [(g, q) for g, q, _ in v.samples[pk]]
        g, q = min(crops, key=lambda c: abs(c[0] - f))
        b, a = count(q, target, mine, False), count(q, target, mine, True)
        print(f"  {name} (crop at frame {g}, {len(mine)} tracks): hits {b[0]} -> {a[0]}, "
              f"wrong hits {b[1]} -> "
              f"{a[1]}, tracks of theirs found {b[2]} -> {a[2]}")
    clip = ROOT / "assets" / "sample_clip.mp4"
    for _ in engine.index(clip):
        pass
    video = engine.find_video(clip)
    run = engine.run_for(video).run
    target = SearchTarget(run.id, video, int(run.settings.get("stride", 1)))
    photo = embed_photo(ROOT / "assets" / "sample_query.jpg", 0, engine.detector, engine.embedder)
    for after in (False, True):
        found = search_runs(store, engine.faiss_index, photo.vector, [target],
                            expansion=DEFAULT_EXPANSION if after else NO_EXPANSION, people=after).hits
        t = DEFAULT_THRESHOLD if after else 0.76
        kept = [h for _, h in found if h.score >= t]
        spans = ["tracks " + "+".join(map(str, h.track_ids)) + f" {h.score:.2f} "
                 + ", ".join(f"{sg.start_s:.1f}-{sg.end_s:.1f} s" for sg in h.segments) for h in kept]
        when = "after" if after else "before"
        print(f"  sample clip, sample_query.jpg, {when}: {plural(len(kept), 'hit')}: "
              + "; ".join(spans))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, help="library to (re)use; default: a fresh temporary one")
    ap.add_argument("--video", type=Path, default=SHARED / "video" / "vtest.avi")
    ap.add_argument("--market", type=Path, default=SHARED / "reid_images" / "market1501_songwsx")
    ap.add_argument("--detector", type=Path, default=SHARED / "models" / "yolov8s_people_normal_fall.onnx")
    ap.add_argument("--reid", type=Path, default=SHARED / "models" / "osnet_x0_25_msmt17.onnx")
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--min-gap-s", type=float, default=3.0)
    ap.add_argument("--sample-every", type=int, default=10, help="frames between query crops of a track")
    ap.add_argument("--min-height", type=int, default=48)
    ap.add_argument("--max-overlap", type=float, default=0.1,
                    help="skip query crops covered more than this by another person's box")
    ap.add_argument("--split-cos", type=float, default=0.5,
                    help="cut tracks where consecutive samples fall below this cosine (0: never)")
    ap.add_argument("--max-fmr", type=float, default=0.01)
    ap.add_argument("--grid", action="store_true", help="also measure a grid of expansion settings")
    ap.add_argument("--no-scores", action="store_true", help="only the linking and hits-per-person parts")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()

    tmp = None
    if args.db is None:
        tmp = tempfile.TemporaryDirectory()
        args.db = Path(tmp.name) / "calib.sqlite"
    engine = Engine(args.db, detector=args.detector, reid=args.reid, device=args.device, stride=args.stride)
    print(f"models: {engine.detector_path.name}, {engine.reid_path.name}; db {engine.db_path}", flush=True)
    for p in engine.index(args.video):
        if p.done or p.skipped:
            print(f"indexed {args.video.name}: {p.frames_done} frames, {p.tracks} tracks"
                  f"{' (already)' if p.skipped else ''}", flush=True)
    v = Video(engine, args)
    print(f"left out as not people (median box height/width < 1.2): {v.not_people_text or 'none'}")
    print(f"id switches cut (consecutive samples with cosine < {args.split_cos}): {len(v.cuts_text)}: "
          + ", ".join(v.cuts_text))
    print(f"hand annotation: {len(v.person_of_track)} tracks of {len(PEOPLE)} people"
          + (f"; not found: {', '.join(v.missing)}" if v.missing else ""))
    print(f"{len(v.tracks)} tracks, {len(v.emb)} stored embeddings, "
          f"{sum(c for s in v.samples.values() for _, _, c in s)} clean query crops\n", flush=True)
    if not args.no_scores:
        report_scores(v, args)
    report_linking(v, args)
    report_hits_per_person(v, args)
    engine.close()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
