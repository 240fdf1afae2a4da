"""Cut the first-run sample from vtest.avi: assets/sample_clip.mp4 and assets/sample_query.jpg.

vtest.avi is OpenCV's sample video (Apache-2.0 AND BSD-3-Clause), so a short clip of it
may ship with the project. The query is the person in the light jacket who crosses the
clip, cut from frame 160 with the shared detector.

Usage: python scripts/make_sample_assets.py [--video ../shared/data/video/vtest.avi]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from core.paths import REPO_ROOT

CLIP_FRAMES = 200
QUERY_FRAME = 160
QUERY_NEAR = (365, 215)  # a point on the chosen person in QUERY_FRAME (pixels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", type=Path, default=REPO_ROOT.parent / "shared/data/video/vtest.avi")
    parser.add_argument("--detector", type=Path,
                        default=REPO_ROOT.parent / "shared/data/models/yolov8s_people_normal_fall.onnx")
    args = parser.parse_args()
    assets = REPO_ROOT / "assets"
    cap = cv2.VideoCapture(str(args.video))
    fps = cap.get(cv2.CAP_PROP_FPS)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(assets / "sample_clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    query_frame = None
    for i in range(CLIP_FRAMES):
        ok, frame = cap.read()
        if not ok:
            raise SystemExit(f"{args.video}: only {i} frames")
        writer.write(frame)
        if i == QUERY_FRAME:
            query_frame = frame
    writer.release()
    cap.release()

    from core.detection import YoloOnnxDetector

    det = YoloOnnxDetector(args.detector, person_classes=("Normal", "Fall"))
    boxes = det.detect([query_frame])[0].boxes
    centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    x1, y1, x2, y2 = boxes[int(np.argmin(np.linalg.norm(centres - QUERY_NEAR, axis=1)))]
    pad = 0.08 * (y2 - y1)
    top, bottom = int(max(0, y1 - pad)), int(min(h, y2 + pad))
    crop = query_frame[top:bottom, int(max(0, x1 - pad)):int(min(w, x2 + pad))]
    cv2.imwrite(str(assets / "sample_query.jpg"), crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
    print(f"wrote {assets / 'sample_clip.mp4'} ({CLIP_FRAMES} frames) and "
          f"sample_query.jpg {crop.shape[1]}x{crop.shape[0]}")


if __name__ == "__main__":
    main()
