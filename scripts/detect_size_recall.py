"""Which people the detector finds at each input size, on MOT17's annotated street scenes.

Usage (from the project root)::

    python scripts/detect_size_recall.py [--sizes 512 640 960 1280] [--precision fp32 int8]

For every frame of the MOT17 mini sequences in ``../shared/data/mot17_mini`` and every visible
pedestrian of the ground truth (class 1, at least half visible), it runs the detector at each
input size (the longest side of the network input, ``--detect-size``) and prints, side by side,
the share of pedestrians found (a detection at IoU >= 0.5) by their height in pixels of a
1080p frame, with the time per frame. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
HEIGHTS = (0, 50, 100, 150, 250, 100_000)


def pedestrians(root: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(image, (N, 4) xyxy boxes, (N,) heights in 1080p pixels)`` of every annotated frame."""
    out = []
    for seq in sorted(p for p in root.iterdir() if (p / "gt" / "gt.txt").is_file()):
        gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",", ndmin=2)
        for image_path in sorted((seq / "img1").glob("*.jpg")):
            rows = gt[(gt[:, 0] == int(image_path.stem)) & (gt[:, 7] == 1) & (gt[:, 8] >= 0.5)]
            image = cv2.imread(str(image_path))
            boxes = np.c_[rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4], rows[:, 3] + rows[:, 5]]
            out.append((image, boxes, rows[:, 5] * 1080 / image.shape[0]))
    return out


def main() -> int:
    from core.engine_models import load_models
    from core.track_motion import iou_matrix

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 640, 960, 1280])
    ap.add_argument("--precision", nargs="+", default=["fp32", "int8"], choices=["fp32", "int8"])
    ap.add_argument("--data", type=Path, default=SHARED / "mot17_mini" / "train")
    args = ap.parse_args()
    frames = pedestrians(args.data)
    bins = list(zip(HEIGHTS[:-1], HEIGHTS[1:], strict=True))
    counts = [sum(int(((h >= lo) & (h < hi)).sum()) for _, _, h in frames) for lo, hi in bins]
    print(f"{len(frames)} frames, {sum(counts)} visible pedestrians")
    names = [f"{lo}-{hi} px" if hi < HEIGHTS[-1] else f">= {lo} px" for lo, hi in bins]
    columns = " | ".join(f"{n} ({c})" for n, c in zip(names, counts, strict=True))
    print(f"| precision | input | ms/frame | {columns} |\n|---|---|---|" + "---|" * len(bins))
    for precision in args.precision:
        for size in args.sizes:
            det = load_models(None, None, device="cpu", precision=precision, detect_size=size).detector
            det.detect([frames[0][0]])  # warm up
            found = np.zeros(len(bins))
            spent = 0.0
            for image, boxes, heights in frames:
                t0 = time.perf_counter()
                dets = det.detect([image])[0]
                spent += time.perf_counter() - t0
                hit = (iou_matrix(boxes, dets.boxes).max(axis=1) >= 0.5) if len(boxes) and len(dets) else \
                    np.zeros(len(boxes), bool)
                for k, (lo, hi) in enumerate(bins):
                    found[k] += hit[(heights >= lo) & (heights < hi)].sum()
            shares = " | ".join(f"{f / max(c, 1):.0%}" for f, c in zip(found, counts, strict=True))
            print(f"| {det.precision} | {size} | {spent / len(frames) * 1000:.0f} | {shares} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
