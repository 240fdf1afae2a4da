"""Search speed and memory figures (prints figures; asserts nothing). Indexing speed against what is
still found, with the int8 detector, sampling by time, the motion gate and worker processes, is
``scripts/benchmark.py``.

Usage (from the project root)::

    python scripts/benchmark_search.py [VIDEO] [--stride 2] [--device cpu] [--sizes 1e4 1e5 1e6]
        [--detector FILE] [--reid FILE] [--imgsz-probe 640 480 416] [--skip-index]

1. Indexes VIDEO (default ``../shared/data/video/vtest.avi``) into a fresh temporary library with
   :class:`core.engine.Engine` and prints the real-time factor (video seconds per wall second),
   frames/s, time per stage (decode, detect, track, embed, write), crops embedded per track
   (mean/max, which must be <= K), and peak memory.
2. Detector probe: seconds per frame of the detector alone at several input sizes (the shared
   detector's input height/width are dynamic, so this needs no re-export) and how many people it
   finds at each size, to show what a smaller input would buy.
3. Search latency: FAISS exact inner-product search (``IndexFlatIP``, what ``core.index`` builds
   by default) over synthetic libraries of 1e4, 1e5, 1e6 random L2-normalised 512-d track
   embeddings, k = 1600 (what a top-200 search asks for), median of repeated single queries;
   then the whole ``Engine.search`` path on the indexed video (photo -> person -> embedding ->
   FAISS -> per-track scores -> people -> segments -> stored query), split into photo embedding and
   search; the search step alone, plain against the shipped scoring (query expansion and one hit per
   person), and ``Engine.refine`` / ``Engine.search_like``.
4. Linking the video's tracks into people (``core.linking``; part of indexing), timed on its own
   against the indexing wall time.

Targets (reported, not asserted): real-time factor >= 1 at stride 2 on 2 cores; search over 1e6
embeddings < 200 ms (``flat16`` or ``ivf`` where exact ``flat`` misses it).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / (1024 * 1024)


def bench_index(args, db: Path):
    from core.engine import Engine

    engine = Engine(db, detector=args.detector, reid=args.reid, device=args.device, stride=args.stride)
    print(f"models: detector {engine.detector_path.name} ({engine.providers['detector']}), "
          f"ReID {engine.reid_path.name} ({engine.providers['reid']}); threads {os.cpu_count()}")
    for note in engine.notes:
        print(f"note: {note}")
    rss0 = rss_mb()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    items = list(engine.index(args.video))
    last = items[-1] if items else None
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    assert last is not None and last.done, "indexing did not finish"
    video = engine.store.video_by_path(args.video)
    run = engine.store.latest_run(video.id)
    duration = last.frames_done / video.fps
    processed = -(-last.frames_done // args.stride)
    print(f"\n== indexing {args.video.name}: {last.frames_done} frames ({duration:.1f} s of video at "
          f"{video.fps:g} fps), stride {args.stride} -> {processed} frames processed")
    print(f"wall {wall:.1f} s, CPU {cpu:.1f} s (CPU/wall {cpu / wall:.2f} of {os.cpu_count()} cores)")
    print(f"real-time factor {duration / wall:.2f} (video s per wall s; target >= 1)")
    print(f"speed {last.frames_done / wall:.1f} video frames/s, {processed / wall:.2f} processed frames/s, "
          f"{wall / processed * 1000:.0f} ms per processed frame")
    stages = dict(last.stage_s)
    total = sum(stages.values())
    print("time per stage: " + ", ".join(f"{k} {v:.1f} s ({v / total:.0%})" for k, v in stages.items())
          + f"; other {max(wall - total, 0):.1f} s")
    rows = engine.store.embedding_rows([run.id], with_vectors=False)
    tracks = engine.store.tracks(run.id)
    per_track = np.array([np.sum(rows.track_pks == t.pk) for t in tracks])
    k = run.settings["crops_per_track"]
    print(f"tracks {len(tracks)}, embeddings {len(rows)}: crops embedded per track mean "
          f"{per_track.mean():.2f}, max {per_track.max()} (K = {k}; "
          f"{'ok' if per_track.max() <= k else 'EXCEEDS K'})")
    print(f"memory: peak RSS {peak_rss_mb():.0f} MiB (process), RSS before indexing {rss0:.0f} MiB, "
          f"after {rss_mb():.0f} MiB")
    bench_linking(engine, run, wall)
    return engine, video


def bench_linking(engine, run, index_wall: float) -> None:
    """Linking the run's tracks into people (done inside Engine.index), timed again on its own."""
    from core.linking import link_run

    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        rec = link_run(engine.store, run.id)
        times.append(time.perf_counter() - t0)
    link = float(np.median(times))
    print(f"linking {run.tracks_done} tracks into {rec.people} people: median {link * 1000:.0f} ms "
          f"(reading tracks and embeddings, merging, writing) = {link / index_wall:.2%} of the indexing "
          "wall time")


def bench_detector_sizes(engine, args) -> None:
    from core.video import open_source

    det = engine.detector
    with open_source(args.video) as src:
        frames = [f.image for f in src.iter_frames(stride=40)][:12]
    print(f"\n== detector alone on {len(frames)} frames of {args.video.name} "
          f"({frames[0].shape[1]}x{frames[0].shape[0]}), batch 4")
    original = det.imgsz
    base_counts = None
    try:
        for size in args.imgsz_probe:
            det.imgsz = (size, size)
            det.detect(frames[:4])  # warm-up
            t0 = time.perf_counter()
            out = []
            for i in range(0, len(frames), 4):
                out += det.detect(frames[i:i + 4])
            per = (time.perf_counter() - t0) / len(frames)
            n = np.array([len(d) for d in out])
            if base_counts is None:
                base_counts = n
            h, w = det._batch_shape([frames[0].shape[:2]])
            share = n.sum() / base_counts.sum()
            print(f"imgsz {size}: input {w}x{h}, {per * 1000:.0f} ms/frame -> stride-2 real-time factor "
                  f"bound {2 / (per * 10):.2f} at 10 fps; people found {n.sum()} ({share:.0%} of imgsz "
                  f"{args.imgsz_probe[0]})")
    finally:
        det.imgsz = original


def bench_faiss(sizes: list[int], dim: int = 512, k: int = 1600, repeats: int = 20,
                alternatives: bool = True) -> None:
    import faiss

    print(f"\n== FAISS exact search (IndexFlatIP, D={dim}, k={k}, {faiss.omp_get_max_threads()} threads), "
          f"median of {repeats} single queries")
    rng = np.random.default_rng(0)
    for n in sizes:
        xb = np.empty((n, dim), np.float32)
        for i in range(0, n, 100_000):  # generate in chunks to bound the float64 temporaries
            part = rng.standard_normal((min(100_000, n - i), dim), dtype=np.float32)
            xb[i:i + len(part)] = part / np.linalg.norm(part, axis=1, keepdims=True)
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        t0 = time.perf_counter()
        index.add_with_ids(xb, np.arange(n, dtype=np.int64))
        build = time.perf_counter() - t0
        q = rng.standard_normal((repeats + 2, dim), dtype=np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        times = []
        for i in range(repeats + 2):
            t0 = time.perf_counter()
            index.search(q[i:i + 1], min(k, n))
            times.append(time.perf_counter() - t0)
        times = np.array(times[2:]) * 1000
        print(f"n={n:>9,d}: median {np.median(times):7.1f} ms, p90 {np.percentile(times, 90):7.1f} ms "
              f"(add {build:.2f} s, {xb.nbytes / 2**20:.0f} MiB of vectors)")
        if n == max(sizes) and alternatives:
            _alternatives(index, xb, q[2:], k, repeats)
        del index, xb


def _timed(index, q: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    index.search(q[:1], k)
    times, ids = [], []
    for i in range(len(q)):
        t0 = time.perf_counter()
        ids.append(index.search(q[i:i + 1], k)[1][0])
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000), np.stack(ids)


def _alternatives(exact, xb: np.ndarray, q: np.ndarray, k: int, repeats: int) -> None:
    """Faster index kinds at the largest size, with their recall of the exact top 100."""
    import faiss

    n, dim = xb.shape
    _, truth = exact.search(q, 100)
    print(f"   alternatives at n={n:,d} (recall = share of the exact top 100 found; random vectors have no "
          "clusters, the worst case for IVF):")
    for k_try in (200,):
        ms, _ = _timed(exact, q, k_try)
        print(f"   flat, k={k_try}: median {ms:.1f} ms")
    sq = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    sq.train(xb[:1000])
    sq.add(xb)
    ms, ids = _timed(sq, q, k)
    recall = np.mean([len(set(a[:100]) & set(b)) / 100 for a, b in zip(ids, truth, strict=True)])
    print(f"   flat float16 (IndexScalarQuantizer fp16, core.index kind 'flat16'), k={k}: "
          f"median {ms:.1f} ms, recall {recall:.3f}")
    del sq
    nlist = int(round(np.sqrt(n)))
    quant = faiss.IndexFlatIP(dim)
    ivf = faiss.IndexIVFFlat(quant, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    ivf.train(xb[np.random.default_rng(1).choice(n, min(n, 64 * nlist), replace=False)])
    ivf.add(xb)
    build = time.perf_counter() - t0
    for nprobe in (16, 64):
        ivf.nprobe = nprobe
        ms, ids = _timed(ivf, q, k)
        recall = np.mean([len(set(a[:100]) & set(b)) / 100 for a, b in zip(ids, truth, strict=True)])
        print(f"   IVF flat nlist={nlist}, nprobe={nprobe} (core.index kind 'ivf'), k={k}: "
              f"median {ms:.1f} ms, recall {recall:.3f} (train+add {build:.0f} s)")


def bench_engine_search(engine, video, args) -> None:
    from core import search as search_mod
    from core.video import open_source

    with open_source(args.video) as src:
        frame = src.read(min(52, video.frame_count - 1)).image
    run = engine.run_for(video).run
    seen = engine.store.sightings_in_frame(run.id, 52)
    crop = frame
    if len(seen):
        x1, y1, x2, y2 = (int(v) for v in seen.boxes[0])
        crop = np.ascontiguousarray(frame[y1:y2, x1:x2])
    t0 = time.perf_counter()
    engine.faiss_index.refresh()
    print(f"\n== Engine.search on the indexed video ({engine.faiss_index.ntotal} embeddings; FAISS index "
          f"{engine.faiss_index.last_action} in {(time.perf_counter() - t0) * 1000:.0f} ms)")
    for label, photo in (("person crop", crop), ("whole frame", frame)):
        engine.search([photo])  # warm-up (first detector call at this input size)
        totals, embeds = [], []
        for _ in range(5):
            t0 = time.perf_counter()
            engine.search([photo])
            totals.append(time.perf_counter() - t0)
            target = search_mod.SearchTarget(run.id, video, args.stride)
            raw = search_mod.search([photo], store=engine.store, index=engine.faiss_index,
                                    detector=engine.detector, embedder=engine.embedder, targets=[target])
            embeds.append(raw.embed_s)
        total, emb = float(np.median(totals)), float(np.median(embeds))
        print(f"{label}: Engine.search median {total * 1000:.0f} ms = photo detection+embedding "
              f"{emb * 1000:.0f} ms + search and storing {max(total - emb, 0) * 1000:.0f} ms")
    bench_scoring(engine, run, video, crop, args)
    t0 = time.perf_counter()
    q = engine.queries()[0].id
    engine.load_query(q)
    print(f"load_query (reopen a stored search): {(time.perf_counter() - t0) * 1000:.1f} ms")


def bench_scoring(engine, run, video, crop: np.ndarray, args) -> None:
    """The search step alone, side by side: plain (one pass, one hit per track, as before people) against the
    shipped scoring (expansion: two passes; one hit per person); then refine and find-similar."""
    from core import search as search_mod
    from core.ranking import NO_EXPANSION
    from core.search import embed_query

    query, _ = embed_query([crop], engine.detector, engine.embedder)
    target = [search_mod.SearchTarget(run.id, video, args.stride)]

    def median_ms(fn, n: int = 7) -> float:
        fn()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1000)

    plain = median_ms(lambda: search_mod.search_runs(engine.store, engine.faiss_index, query, target,
                                                     expansion=NO_EXPANSION, people=False))
    shipped = median_ms(lambda: search_mod.search_runs(engine.store, engine.faiss_index, query, target))
    print(f"search step (query vector -> hits, not stored): plain {plain:.0f} ms, shipped (expansion + "
          f"people) {shipped:.0f} ms: ratio {shipped / max(plain, 1e-9):.2f}")
    result = engine.search([crop])
    hits = result.hits
    refine = median_ms(lambda: engine.refine(result.query_id, confirm=[hits[0]], reject=[hits[-1]]), n=3)
    like = median_ms(lambda: engine.search_like(video.id, hits[0].track_id), n=3)
    print(f"refine (confirm one hit, reject another, re-rank, store): {refine:.0f} ms; "
          f"search_like (find similar from a hit): {like:.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", type=Path, default=SHARED / "video" / "vtest.avi")
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--detector", type=Path, default=SHARED / "models" / "yolov8s_people_normal_fall.onnx")
    ap.add_argument("--reid", type=Path, default=SHARED / "models" / "osnet_x0_25_msmt17.onnx")
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6])
    ap.add_argument("--imgsz-probe", type=int, nargs="+", default=[640, 480, 416, 320])
    ap.add_argument("--db", type=Path, help="library to use (default: fresh temporary)")
    args = ap.parse_args()
    if not args.video.exists():
        print(f"error: {args.video}: not found", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.sqlite"
        engine, video = bench_index(args, db)
        bench_engine_search(engine, video, args)
        bench_detector_sizes(engine, args)
        engine.close()
    bench_faiss([int(n) for n in args.sizes])
    print(f"\npeak RSS of the whole run {peak_rss_mb():.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
