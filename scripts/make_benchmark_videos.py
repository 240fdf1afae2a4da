"""Make the benchmark videos from vtest.avi with OpenCV (see scripts/benchmark.py).

Usage: python scripts/make_benchmark_videos.py [--video ../shared/data/video/vtest.avi] [--out DIR]

* ``vtest_1080p25.mp4``: vtest upscaled to 1440x1080 (its 4:3 at 1080 lines, Lanczos) at 25 fps.
  The 2.5 frames between two source frames are *interpolated*, not repeated: dense optical flow
  (OpenCV DIS) between the two source frames, both warped to the in-between time and blended by
  distance in time. Duplicated frames would flatter the motion gate and the tracker.
* ``vtest_empty10min.mp4``: 10 minutes at 10 fps (768x576) of vtest's empty scene: the temporal
  median of its frames, with fresh sensor-like noise (Gaussian, sigma 2 grey levels) on every
  frame so the picture is never perfectly still. vtest's real people appear only in
  :data:`STRETCHES`: stretches of the real footage (frames of vtest, people and all) cut in at
  the given times. The first stretch holds vtest frame 160, where ``assets/sample_query.jpg`` was
  cut, so the sample query has its person in all three benchmark videos.

The files are mp4v (the codec OpenCV's wheels can write); real cameras use H.264/H.265, whose
decoding costs more per frame.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VTEST = ROOT.parent / "shared" / "data" / "video" / "vtest.avi"

HD_SIZE = (1440, 1080)
HD_FPS = 25.0
EMPTY_MINUTES = 10
EMPTY_FPS = 10.0
NOISE_SIGMA = 2.0
STRETCHES = ((60.0, 100, 250), (270.0, 420, 540), (480.0, 640, 760))
"""``(start in the output in s, first vtest frame, end vtest frame)`` of each stretch with people."""


def read_all(video: Path) -> tuple[list[np.ndarray], float]:
    cap = cv2.VideoCapture(str(video))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    if not frames:
        raise SystemExit(f"{video}: no frames")
    return frames, fps


def _writer(path: Path, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise SystemExit(f"{path}: OpenCV cannot write mp4v here")
    return writer


def interpolate(a: np.ndarray, b: np.ndarray, flow: np.ndarray, alpha: float) -> np.ndarray:
    """The frame at ``alpha`` in [0, 1) between ``a`` and ``b`` (``flow``: a -> b, per pixel)."""
    if alpha == 0:
        return a
    h, w = a.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    wa = cv2.remap(a, gx - alpha * flow[..., 0], gy - alpha * flow[..., 1], cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_REPLICATE)
    wb = cv2.remap(b, gx + (1 - alpha) * flow[..., 0], gy + (1 - alpha) * flow[..., 1], cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_REPLICATE)
    return cv2.addWeighted(wa, 1 - alpha, wb, alpha, 0)


def make_hd(frames: list[np.ndarray], fps: float, out: Path) -> dict:
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
    count = int((len(frames) - 1) / fps * HD_FPS) + 1
    writer = _writer(out, HD_FPS, HD_SIZE)
    flow_for, flow = -1, None
    for k in range(count):
        pos = k * fps / HD_FPS
        i = min(int(pos), len(frames) - 1)
        alpha = pos - i if i + 1 < len(frames) else 0.0
        if alpha > 1e-6 and flow_for != i:
            flow, flow_for = dis.calc(grey[i], grey[i + 1], None), i
        frame = interpolate(frames[i], frames[i + 1], flow, alpha) if alpha > 1e-6 else frames[i]
        writer.write(cv2.resize(frame, HD_SIZE, interpolation=cv2.INTER_LANCZOS4))
        if k % 250 == 0:
            print(f"  {out.name}: {k}/{count} frames", flush=True)
    writer.release()
    return {"file": out.name, "frames": count, "fps": HD_FPS, "size": list(HD_SIZE),
            "source_frame_of_output": f"k * {fps:g} / {HD_FPS:g}"}


def make_empty(frames: list[np.ndarray], fps: float, out: Path) -> dict:
    background = np.median(np.stack(frames[::3]), axis=0).astype(np.uint8)
    count = int(EMPTY_MINUTES * 60 * EMPTY_FPS)
    h, w = background.shape[:2]
    writer = _writer(out, EMPTY_FPS, (w, h))
    rng = np.random.default_rng(0)
    placed = {}
    for start_s, first, end in STRETCHES:
        start = int(round(start_s * EMPTY_FPS))
        for j, src in enumerate(range(first, end)):
            placed[start + j] = src
    for k in range(count):
        if k in placed:
            frame = frames[placed[k]]
        else:
            noise = rng.normal(0.0, NOISE_SIGMA, background.shape).astype(np.float32)
            frame = np.clip(background.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        writer.write(frame)
        if k % 1000 == 0:
            print(f"  {out.name}: {k}/{count} frames", flush=True)
    writer.release()
    stretches = [{"output_frames": [int(round(s * EMPTY_FPS)), int(round(s * EMPTY_FPS)) + e - f],
                  "vtest_frames": [f, e]} for s, f, e in STRETCHES]
    return {"file": out.name, "frames": count, "fps": EMPTY_FPS, "size": [w, h], "stretches": stretches}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=VTEST)
    ap.add_argument("--out", type=Path, default=Path("/tmp/reid-benchmark"))
    args = ap.parse_args()
    if not args.video.is_file():
        print(f"error: {args.video}: not found", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    frames, fps = read_all(args.video)
    for name, maker in (("vtest_1080p25.mp4", make_hd), ("vtest_empty10min.mp4", make_empty)):
        target = args.out / name
        if target.is_file():
            print(f"{target}: already there")
            continue
        print(f"making {target}")
        print(json.dumps(maker(frames, fps, target)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
