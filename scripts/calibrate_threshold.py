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
from pathlib import Path

import numpy as np
from calibration_data import (  # the measuring half, beside this script
    PEOPLE,
    ROOT,
    SHARED,
    THRESHOLDS,
    Video,
    box_iou,
    market_scores,
    measure,
    percentiles,
    pick_threshold,
    tmr_at_fmr,
)

from core.engine import Engine
from core.linking import DEFAULT_LINK_SETTINGS, centroids, link_run
from core.ranking import DEFAULT_EXPANSION, NO_EXPANSION, Expansion
from core.search import embed_photo, similarity
from core.text import plural


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
