"""Indexing speed against what is still found (prints figures side by side in one run; asserts nothing).

Usage (from the project root)::

    python scripts/benchmark.py [--videos DIR] [--work DIR] [--only vtest hd empty] [--no-rates]
                                [--no-workers] [--fresh]

Videos: (a) ``vtest.avi`` (768x576, 10 fps, 79.5 s); (b) ``vtest_1080p25.mp4`` and (c)
``vtest_empty10min.mp4`` from ``scripts/make_benchmark_videos.py`` (made in ``--videos`` when
missing). Each video is indexed with :class:`core.engine.Engine` into a library of its own per
configuration:

* ``reference``: fp32, every frame, no motion gate: what is found when nothing is saved;
* ``fp32 stride 2``: the settings before int8, time sampling and the gate;
* ``int8 stride 2``: int8 detector only;
* ``int8 rate``: int8 and sampling by time (the default rate; on vtest the same as stride 2);
* ``default``: int8, sampling by time and the motion gate (what the app does now);
* on vtest also the default at other rates (tracks found against the rate), and the default
  with plain ByteTrack (``--tracker bytetrack``: what the buffered tracker is for).

For each: wall time, real-time factor (video seconds per wall second), video frames/s, frames
processed and shown to the detector, time per stage, the machine's load average at the start and
end of the run (other programs share it), and what is still found compared with the
reference: the share of the reference's tracks found (a reference track lasting >= 1 s is
*found* when, on at least half of the frames this run processed while that person was there,
one of this run's tracks has a box overlapping the reference box at IoU >= 0.5; tracks that
never moved, such as the detector's static false "Fall" on vtest's lawn, are counted apart,
since the motion gate deliberately does not keep the detector running for them) and the sample
query's best hit (``assets/sample_query.jpg``) with its segments, marked ``same`` when they
match the reference's within a second. Last, the three videos indexed into one library by 1
worker process and by N.

Runs are cached in ``--work`` (default ``/tmp/reid-benchmark/work``: a finished configuration
is not measured again; ``--fresh`` measures everything anew). The machine's CPU flags (AVX-512
VNNI / AVX-VNNI: without them int8 can be slower than fp32) and load average are printed, with
the detector alone in fp32 and int8 on the same frames, so the precision choice is visible on
any machine. Targets on 2 cores: vtest >= 5x real time, 1080p25 >= 2x, mostly-empty >= 20x, each
with >= 95 % of the reference tracks found and the sample query's segments unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
QUERY = ROOT / "assets" / "sample_query.jpg"
DETECTOR = SHARED / "models" / "yolov8s_people_normal_fall.onnx"
REID = SHARED / "models" / "osnet_x0_25_msmt17.onnx"
VIDEOS = {"vtest": SHARED / "video" / "vtest.avi", "hd": Path("vtest_1080p25.mp4"),
          "empty": Path("vtest_empty10min.mp4")}
SWEEP_RATES = (10.0, 5.0, 2.0)
TARGETS = {"vtest": 5.0, "hd": 2.0, "empty": 20.0}


@dataclass(frozen=True)
class Config:
    name: str
    precision: str
    stride: int | None
    rate: float | None
    gate: bool
    tracker: str | None = None  # None: the default tracker

    def engine_kwargs(self) -> dict:
        from core.tracking import DEFAULT_TRACKER

        return {"precision": self.precision, "stride": self.stride, "rate": self.rate,
                "motion_gate": self.gate, "tracker": self.tracker or DEFAULT_TRACKER}


def configs() -> list[Config]:
    return [Config("reference", "fp32", 1, None, False), Config("fp32 stride 2", "fp32", 2, None, False),
            Config("int8 stride 2", "int8", 2, None, False), Config("int8 rate", "int8", None, None, False),
            Config("default", "int8", None, None, True)]


def machine() -> str:
    flags = ""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next(line for line in lines if line.startswith("flags"))
    except (OSError, StopIteration):
        pass
    vnni = [f for f in ("avx512_vnni", "avx_vnni") if f in flags.split()]
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    import onnxruntime as ort

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, VNNI: "
            f"{', '.join(vnni) or 'none'}; onnxruntime {ort.__version__}; load average {load[0]:.1f}")


# --------------------------------------------------------------------------- one measured run


def run_config(video: Path, config: Config, work: Path, fresh: bool) -> dict:
    from core.engine import Engine

    folder = work / video.stem / config.name.replace(" ", "_")
    result_file = folder / "result.json"
    if result_file.is_file() and not fresh:
        return json.loads(result_file.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    engine = Engine(folder / "library.sqlite", detector=DETECTOR, reid=REID, device="cpu",
                    **config.engine_kwargs())
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    items = list(engine.index(video))
    last = items[-1] if items else None
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    assert last is not None and last.done, f"{video}: indexing did not finish"
    record = engine.store.video_by_path(video)
    run = engine.run_for(record).run
    result = {"video": video.name, "config": config.name, "precision": engine.precision,
              "stride": int(run.settings["stride"]), "frames": last.frames_done, "fps": record.fps,
              "duration_s": last.frames_done / record.fps, "wall_s": wall, "cpu_s": cpu,
              "processed": last.processed, "detected": last.detected, "stages": dict(last.stage_s),
              "tracks": _tracks(engine.store, run.id), "query": _query(engine),
              "load": [round(load0, 1), round(os.getloadavg()[0], 1)]}
    engine.close()
    result_file.write_text(json.dumps(result))
    return result


def _tracks(store, run_id: int) -> list[dict]:
    out = []
    for t in store.tracks(run_id):
        s = store.sightings(t.pk)
        out.append({"frames": s.frames.tolist(), "boxes": np.round(s.boxes, 1).tolist()})
    return out


def _query(engine) -> dict | None:
    result = engine.search([QUERY])
    hits = result.above(result.threshold)
    if not hits:
        return None
    best = hits[0]
    return {"score": round(best.score, 3), "track": best.track_id,
            "segments": [(round(s.start_s, 1), round(s.end_s, 1)) for s in best.segments]}


# --------------------------------------------------------------------------- comparing with the reference


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def found_share(reference: dict, result: dict, min_s: float = 1.0) -> tuple[int, int, int, int]:
    """Reference tracks (lasting >= ``min_s``) that ``result`` found (see the module notes).

    Returns:
        ``(found, count)`` for the tracks that moved (people walking: ``core.crops.has_moved``) and
        ``(found, count)`` for those that never did (someone or something standing still all along).
    """
    from core.crops import has_moved

    fps, stride = reference["fps"], result["stride"]
    by_frame: dict[int, list] = {}
    for t in result["tracks"]:
        for f, b in zip(t["frames"], t["boxes"], strict=True):
            by_frame.setdefault(f, []).append(b)
    counts = {True: [0, 0], False: [0, 0]}
    for t in reference["tracks"]:
        if (t["frames"][-1] - t["frames"][0]) / fps < min_s:
            continue
        moved = any(has_moved(t["boxes"][0], np.array(b)) for b in t["boxes"])
        grid = [(f, b) for f, b in zip(t["frames"], t["boxes"], strict=True) if f % stride == 0]
        hits = sum(1 for f, b in grid
                   if f in by_frame and _iou(np.array([b]), np.array(by_frame[f])).max() >= 0.5)
        counts[moved][0] += bool(grid) and hits >= 0.5 * len(grid)
        counts[moved][1] += 1
    return (*counts[True], *counts[False])


def same_segments(a: dict | None, b: dict | None, tol: float = 1.0) -> bool:
    if a is None or b is None:
        return a is b
    if len(a["segments"]) != len(b["segments"]):
        return False
    return all(abs(x[0] - y[0]) <= tol and abs(x[1] - y[1]) <= tol
               for x, y in zip(a["segments"], b["segments"], strict=True))


def row(result: dict, reference: dict) -> str:
    rtf = result["duration_s"] / result["wall_s"]
    found, n_ref, still_found, n_still = found_share(reference, result)
    share = f"{found / n_ref:.0%} of {n_ref}" if n_ref else "-"
    if n_still:
        share += f" (+ {still_found} of {n_still} never moving)"
    stages = result["stages"]
    total = sum(stages.values()) or 1.0
    stage_text = " ".join(f"{k[:3]} {v / total:.0%}" for k, v in stages.items())
    q = result["query"]
    query = "none"
    if q is not None:
        same = " (same)" if same_segments(q, reference["query"]) else " (DIFFERENT)"
        query = f"{q['score']:.2f}: " + ", ".join(f"{s:g}-{e:g}" for s, e in q["segments"]) + same
    shown = f"{result['detected']}/{result['processed']}"
    speed = result["frames"] / result["wall_s"]
    return (f"| {result['config']} | {result['precision']} | {result['stride']} | {shown} "
            f"| {result['wall_s']:.0f} | {'-'.join(map(str, result.get('load', ['?'])))} "
            f"| **{rtf:.1f}x** | {speed:.0f} | {stage_text} "
            f"| {len(result['tracks'])} | {share} | {query} |")


HEADER = ("| run | precision | stride | frames detected / processed | wall s | load | real time "
          "| video frames/s | time per stage | tracks | moving reference tracks found "
          "| sample query: best hit, segments (s) |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")


# --------------------------------------------------------------------------- detector alone, workers


def detector_alone(frames: int = 12) -> str:
    import cv2

    from core.detection import YoloOnnxDetector
    from core.models.derived import find_derived

    int8 = find_derived(DETECTOR, "int8")
    if int8 is None:
        return "detector alone: no int8 model made yet (python -m core.models fetch)"
    cap = cv2.VideoCapture(str(VIDEOS["vtest"]))
    images = [cap.read()[1] for _ in range(frames)]
    per = {}
    for label, path in (("fp32", DETECTOR), ("int8", int8.path)):
        det = YoloOnnxDetector(path, person_classes=("Normal", "Fall"), device="cpu")
        det.detect(images[:1])
        t0 = time.perf_counter()
        for im in images:
            det.detect([im])
        per[label] = (time.perf_counter() - t0) / frames * 1000
    return (f"detector alone on {frames} vtest frames (640x480 input): fp32 {per['fp32']:.0f} ms/frame, "
            f"int8 {per['int8']:.0f} ms/frame: int8 is {per['fp32'] / per['int8']:.2f}x faster on this CPU")


def workers_compare(videos: list[Path], work: Path, counts: tuple[int, ...]) -> list[str]:
    lines = []
    duration = 0.0
    for n in counts:
        folder = work / f"workers_{n}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        code = ("import sys, time; from core.engine import Engine\n"
                f"e = Engine({str(folder / 'library.sqlite')!r}, detector={str(DETECTOR)!r}, "
                f"reid={str(REID)!r}, device='cpu', workers={n})\n"
                "t0 = time.perf_counter(); ev = list(e.index_many(sys.argv[1:]))\n"
                "print(time.perf_counter() - t0)\n"
                "print(sum(r.tracks_done for r in e.store.list_runs()))\n")
        out = subprocess.run([sys.executable, "-c", code, *map(str, videos)], capture_output=True, text=True,
                             cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout.split()
        wall, tracks = float(out[-2]), int(out[-1])
        if not duration:
            import cv2

            for v in videos:
                cap = cv2.VideoCapture(str(v))
                duration += cap.get(cv2.CAP_PROP_FRAME_COUNT) / cap.get(cv2.CAP_PROP_FPS)
        lines.append(f"| {n} | {wall:.0f} | **{duration / wall:.1f}x** | {tracks} |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=Path("/tmp/reid-benchmark"),
                    help="benchmark videos folder")
    ap.add_argument("--work", type=Path, help="libraries and cached results (default: VIDEOS/work)")
    ap.add_argument("--only", nargs="+", choices=sorted(VIDEOS), default=list(VIDEOS))
    ap.add_argument("--no-rates", action="store_true", help="skip the rate sweep on vtest")
    ap.add_argument("--no-workers", action="store_true", help="skip the 1 vs N worker processes comparison")
    ap.add_argument("--workers", type=int, default=2, help="N of the comparison (default: 2)")
    ap.add_argument("--fresh", action="store_true", help="measure every configuration again")
    ap.add_argument("--configs", nargs="+", metavar="NAME",
                    help="only these configurations (e.g. reference, to run the slow references first)")
    args = ap.parse_args()
    work = args.work or args.videos / "work"
    paths = {k: (v if v.is_absolute() else args.videos / v) for k, v in VIDEOS.items()}
    if not all(paths[k].is_file() for k in args.only):
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_benchmark_videos.py"), "--out",
                        str(args.videos)], check=True)
    print(f"machine: {machine()}")
    print(detector_alone())
    from core.index_settings import IndexSettings

    for key in args.only:
        video = paths[key]
        import cv2

        fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS)
        same = IndexSettings().stride_for(fps) == 2  # time sampling is stride 2 here: no separate row
        chosen = [c for c in configs() if not (same and c.name == "int8 rate")
                  and not (key == "empty" and c.name == "fp32 stride 2")  # 3000 fp32 frames: see (a), (b)
                  and (args.configs is None or c.name in args.configs)]
        results = [run_config(video, c, work, args.fresh) for c in chosen]
        if args.configs is not None:
            continue
        if not args.no_rates and key == "vtest":
            results += [run_config(video, Config(f"default, {r:g}/s", "int8", None, r, True), work,
                                   args.fresh) for r in SWEEP_RATES]
            results.append(run_config(video, Config("default, plain ByteTrack", "int8", None, None, True,
                                                    "bytetrack"), work, args.fresh))
        reference = results[0]
        print(f"\n### {video.name}: {reference['duration_s']:.1f} s at {reference['fps']:g} fps "
              f"(target >= {TARGETS[key]:g}x real time)\n")
        print(HEADER)
        for result in results:
            print(row(result, reference))
    if not args.no_workers:
        videos = [paths[k] for k in args.only]
        print(f"\n### {len(videos)} videos in one library, default settings\n")
        print("| worker processes | wall s | real time | tracks |\n|---|---|---|---|")
        for line in workers_compare(videos, work, (1, args.workers)):
            print(line)
    print(f"\nmachine at the end: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
