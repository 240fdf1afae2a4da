"""Measure same-person and different-person similarities on real data and pick the default threshold.

Usage (from the project root)::

    python scripts/calibrate_threshold.py [--db LIB.sqlite] [--video ../shared/data/video/vtest.avi]
        [--detector FILE] [--reid FILE] [--stride 2] [--min-gap-s 3] [--max-fmr 0.01]

What is measured, always with the *search score* (``core.search``): a query crop's best
cosine over a track's stored K embeddings, mapped to a similarity in ``[0, 1]``.

* Query crops: every track of the indexed video (``--video``, default vtest.avi) is cropped at
  sightings spread over its life (every ``--sample-every`` frames, boxes not touching the image
  border, at least ``--min-height`` px tall), read back from the video and embedded.
* Same person (vtest): a crop of track A vs A's own stored embeddings at least ``--min-gap-s``
  seconds away from the crop (the person has moved on: other pose, place, light, size).
* Different people (vtest): a crop of track A vs every track B seen in the *same frame* as A at
  some point (two boxes in one frame are certainly two people; tracks of the same person never
  co-occur).
* Same person (Market-1501): the two query crops of identity 0001 (cameras 1 and 6) against
  each other, and each against identity 0001 cut by the detector out of the full camera frame
  ``c1s1_001051.jpg`` (single-vector scores, K = 1).
* Different people (Market-1501 vs vtest): each Market crop against every vtest track.

The threshold is the smallest value whose false match rate (share of different-person
scores at or above it) is at most ``--max-fmr``, i.e. the highest true match rate with an
FMR <= 1 %, rounded up to 0.01.

Tracker mistakes (an id switch between two people) would put a different person into a
"same" pair; the gap rule and the co-occurrence rule keep both sets as clean as the
tracker is.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from core.engine import Engine
from core.search import embed_photo, similarity
from core.video import open_source

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PCTS = (1, 5, 10, 25, 50, 75, 90, 95, 99)


def percentiles(name: str, values: np.ndarray) -> str:
    v = np.asarray(values, np.float64)
    if len(v) == 0:
        return f"{name:34s} n=0"
    cells = " ".join(f"{np.percentile(v, p):.3f}" for p in PCTS)
    return f"{name:34s} n={len(v):5d}  min {v.min():.3f}  {cells}  max {v.max():.3f}"


def pick_threshold(same: np.ndarray, diff: np.ndarray, max_fmr: float) -> tuple[float, float, float]:
    """Smallest threshold (0.01 steps) with FMR <= max_fmr; returns (threshold, TMR, FMR)."""
    for t in np.round(np.arange(0.0, 1.0001, 0.01), 2):
        fmr = float(np.mean(diff >= t))
        if fmr <= max_fmr:
            return float(t), float(np.mean(same >= t)), fmr
    return 1.0, float(np.mean(same >= 1.0)), float(np.mean(diff >= 1.0))


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
    ap.add_argument("--worst", type=int, default=0, help="print the N worst same and different cases")
    ap.add_argument("--max-fmr", type=float, default=0.01)
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
    store = engine.store
    video = engine.find_video(args.video)
    run = engine.run_for(video).run
    assert run is not None
    tracks = store.tracks(run.id)
    emb = store.embedding_rows([run.id])
    by_pk = {t.pk: t for t in tracks}

    sight = {t.pk: store.sightings(t.pk) for t in tracks}
    tid = {pk: t.track_id for pk, t in by_pk.items()}
    W, H = video.width, video.height
    boxes_at: dict[int, list[np.ndarray]] = {}
    for s in sight.values():
        for f, b in zip(s.frames.tolist(), s.boxes, strict=True):
            boxes_at.setdefault(f, []).append(b)

    def covered(f: int, b: np.ndarray) -> float:
        """Largest fraction of box b covered by another person's box in frame f."""
        worst = 0.0
        for o in boxes_at[f]:
            if np.array_equal(o, b):
                continue
            iw = max(0.0, min(b[2], o[2]) - max(b[0], o[0]))
            ih = max(0.0, min(b[3], o[3]) - max(b[1], o[1]))
            worst = max(worst, iw * ih / max((b[2] - b[0]) * (b[3] - b[1]), 1e-9))
        return worst

    # Sample crops along every track (every --sample-every frames, tall enough); "clean" ones (not at the
    # border, not covered by another person) serve as query photos. Read in one pass over the video.
    wanted: dict[int, list[tuple[int, np.ndarray, bool]]] = {}
    for pk, s in sight.items():
        last = -10**9
        for f, b in zip(s.frames.tolist(), s.boxes, strict=True):
            if f - last < args.sample_every or b[3] - b[1] < args.min_height:
                continue
            border = b[0] <= 2 or b[1] <= 2 or b[2] >= W - 2 or b[3] >= H - 2
            upright = b[3] - b[1] >= 1.2 * (b[2] - b[0])  # a query photo shows a standing person
            clean = upright and not border and covered(f, b) <= args.max_overlap
            wanted.setdefault(f, []).append((pk, b, clean))
            last = f
    samples: dict[int, list[tuple[int, np.ndarray, bool]]] = {pk: [] for pk in by_pk}  # (frame, vec, clean)
    with open_source(args.video) as src:
        for f in sorted(wanted):
            image = src.read(f).image
            e = engine.embedder.embed(image, np.stack([b for _, b, _ in wanted[f]]))
            for row, j in enumerate(e.kept.tolist()):
                pk, _, clean = wanted[f][j]
                samples[pk].append((f, e.vectors[row], clean))

    # Tracker id switches: cut a track where two consecutive samples (about 1 s apart) stop looking
    # alike (cosine < --split-cos); each piece is a "unit" assumed to be one person.
    unit_of_frame: dict[int, list[tuple[int, int, int]]] = {}  # pk -> [(first_frame, last_frame, unit)]
    cuts_text = []
    next_unit = 0
    for pk, smp in samples.items():
        s = sight[pk]
        bounds = [int(s.frames[0])]
        for (f0, v0, _), (f1, v1, _) in zip(smp, smp[1:], strict=False):
            if args.split_cos > 0 and float(v0 @ v1) < args.split_cos:
                bounds.append((f0 + f1) // 2 + 1)
                cuts_text.append(f"T{tid[pk]}@{f0}-{f1} ({float(v0 @ v1):.2f})")
        bounds.append(int(s.frames[-1]) + 1)
        unit_of_frame[pk] = []
        for lo, hi in zip(bounds, bounds[1:], strict=False):
            unit_of_frame[pk].append((lo, hi - 1, next_unit))
            next_unit += 1

    def unit(pk: int, f: int) -> int:
        return next(u for lo, hi, u in unit_of_frame[pk] if lo <= f <= hi)

    unit_vecs: dict[int, list[tuple[int, np.ndarray]]] = {}
    for pk, f, v in zip(emb.track_pks.tolist(), emb.frames.tolist(), emb.vectors, strict=True):
        unit_vecs.setdefault(unit(pk, f), []).append((f, v))
    unit_frames: dict[int, set[int]] = {}
    unit_name: dict[int, str] = {}
    for pk, s in sight.items():
        for f in s.frames.tolist():
            u = unit(pk, f)
            unit_frames.setdefault(u, set()).add(f)
            unit_name[u] = f"T{tid[pk]}[{min(unit_frames[u])}-{max(unit_frames[u])}]"
    # Tracks of things that are not standing people (e.g. a detector false positive on an object lying on
    # the lawn, wider than tall, the same in every frame) would add trivial pairs to both sets: left out.
    aspect = {pk: float(np.median((s.boxes[:, 3] - s.boxes[:, 1])
                                  / np.maximum(s.boxes[:, 2] - s.boxes[:, 0], 1))) for pk, s in sight.items()}
    not_people = {pk for pk, a in aspect.items() if a < 1.2}
    not_people_units = {u for pk in not_people for _, _, u in unit_of_frame[pk]}
    print(f"left out as not people (median box height/width < 1.2): "
          f"{', '.join(f'T{tid[pk]} ({aspect[pk]:.2f})' for pk in sorted(not_people)) or 'none'}")
    co = {u: {w for w in unit_frames if w != u and w not in not_people_units
              and unit_frames[u] & unit_frames[w]} for u in unit_frames}

    fps = video.fps
    gap = int(math.ceil(args.min_gap_s * fps))
    same, diff, same_pairs, diff_pairs, rows = [], [], [], [], []
    n_queries = 0
    for pk, smp in samples.items():
        for f, v, clean in smp:
            if not clean or pk in not_people:
                continue
            n_queries += 1
            u = unit(pk, f)
            own = [(g, w) for g, w in unit_vecs.get(u, []) if abs(g - f) >= gap]
            if own:
                sc = np.array([w @ v for _, w in own])
                same.append(float(sc.max()))
                same_pairs += sc.tolist()
                rows.append(("same", float(sc.max()), unit_name[u], f, unit_name[u]))
            for w_unit in co[u]:
                other = unit_vecs.get(w_unit, [])
                if other:
                    sc = np.array([w @ v for _, w in other])
                    diff.append(float(sc.max()))
                    diff_pairs += sc.tolist()
                    rows.append(("diff", float(sc.max()), unit_name[u], f, unit_name[w_unit]))
    print(f"id switches cut (consecutive samples with cosine < {args.split_cos}): {len(cuts_text)}: "
          + ", ".join(cuts_text))
    if args.worst:
        low = sorted((r for r in rows if r[0] == "same"), key=lambda r: r[1])[: args.worst]
        high = sorted((r for r in rows if r[0] == "diff"), key=lambda r: -r[1])[: args.worst]
        for kind, sc, a_name, f, b_name in low + high:
            print(f"  {kind} {sc:.3f}: crop of {a_name} at frame {f} vs {b_name}")
    same_v = similarity(np.array(same))
    diff_v = similarity(np.array(diff))

    # Market-1501 identity 0001
    qdir = args.market / "query"
    qfiles = sorted(qdir.glob("*.jpg"))
    market = [embed_photo(p, i, engine.detector, engine.embedder) for i, p in enumerate(qfiles)]
    full = embed_photo(args.market / "full_frames" / "c1s1_001051.jpg", 0, engine.detector, engine.embedder)
    m_same = [float(market[0].vector @ market[1].vector)] + [float(m.vector @ full.vector) for m in market]
    m_diff = []
    for m in market:
        for pk in by_pk:
            if pk in not_people:
                continue
            other = emb.vectors[emb.track_pks == pk]
            if len(other):
                m_diff.append(float((other @ m.vector).max()))
    m_same_v, m_diff_v = similarity(np.array(m_same)), similarity(np.array(m_diff))

    print()
    print(f"{len(tracks)} tracks, {len(emb)} stored embeddings (K <= {run.settings.get('crops_per_track')}), "
          f"{n_queries} query crops; same-person gap >= {args.min_gap_s:g} s")
    print(f"{'':34s} {'':7s}  {'':9s}  " + " ".join(f"p{p:<4d}" for p in PCTS))
    print(percentiles("same person, vtest (track max)", same_v))
    print(percentiles("different, vtest co-occurring", diff_v))
    print(percentiles("same person, vtest single pairs", similarity(np.array(same_pairs))))
    print(percentiles("different, vtest single pairs", similarity(np.array(diff_pairs))))
    print(percentiles("same person, Market 0001", m_same_v))
    print(f"  Market 0001 c1 vs c6 {m_same[0]:.3f}; vs full frame c1s1_001051 person "
          f"{', '.join(f'{x:.3f}' for x in m_same[1:])} ({full.note})")
    print(percentiles("different, Market vs vtest tracks", m_diff_v))

    all_same = np.concatenate([same_v, m_same_v])
    all_diff = np.concatenate([diff_v, m_diff_v])
    print()
    print("threshold  TMR(same>=t)  FMR(diff>=t)")
    for t in (0.55, 0.6, 0.65, 0.7, 0.72, 0.75, 0.8, 0.85):
        print(f"  {t:.2f}     {np.mean(all_same >= t):6.3f}        {np.mean(all_diff >= t):6.3f}")
    t, tmr, fmr = pick_threshold(all_same, all_diff, args.max_fmr)
    print(f"\nchosen threshold {t:.2f}: TMR {tmr:.3f}, FMR {fmr:.4f} (FMR <= {args.max_fmr:g}); "
          f"n_same={len(all_same)}, n_diff={len(all_diff)}")
    engine.close()
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
