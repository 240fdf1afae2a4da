"""What ``scripts/calibrate_threshold.py`` measures: the indexed video's tracks, query crops and scores.

The hand annotation of vtest.avi (:data:`PEOPLE`), the query crops and units of
:class:`Video`, and the scorers (plain, query expansion, k-reciprocal) with
:func:`measure` and :func:`market_scores`; the calibration script prints its reports from
these. See that script's notes for what each measurement is.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.engine import Engine
from core.linking import centroids
from core.ranking import Expansion, two_pass
from core.search import embed_photo
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
