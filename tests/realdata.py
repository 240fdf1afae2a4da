"""Helpers and hand annotations shared by the tests on real data (no fixtures here)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

# Hand annotation, checked by eye on every frame: where identity 0001 (the woman in the white
# dress of the two Market-1501 query crops) stands in each of the 16 full frames of
# ``reid_images/market1501_songwsx/full_frames``, xyxy pixels of the 1920x1080 images, rounded to
# 10 px. She is in all 16 frames (they are the frames this demo set was cut for), so none of
# her crops may count as "another person".
IDENTITY_0001: dict[str, tuple[int, int, int, int]] = {
    "c1s1_001051": (1210, 430, 1390, 750), "c1s1_002301": (820, 440, 960, 710),
    "c1s1_002326": (760, 440, 890, 730), "c1s1_002351": (680, 440, 820, 770),
    "c1s1_002376": (580, 440, 740, 810), "c1s1_002401": (450, 450, 640, 860),
    "c1s1_009376": (1710, 360, 1920, 800), "c1s1_009451": (1380, 410, 1540, 740),
    "c1s1_009476": (1350, 410, 1500, 710), "c1s1_009526": (1490, 380, 1660, 670),
    "c1s1_014601": (1760, 400, 1830, 570), "c1s1_014776": (1400, 420, 1520, 660),
    "c1s1_014901": (1080, 420, 1250, 840), "c3s1_000501": (970, 420, 1080, 600),
    "c3s1_000551": (1140, 410, 1240, 610), "c3s1_001626": (1590, 410, 1740, 630),
}


# Hand annotation of vtest.avi, checked by eye on the full frames and on crops of every track:
# (frame, xyxy box rounded to 10 px). The man in the navy down jacket with red shoulders, white
# trainers and a sheet of paper in his hand, who walks with the blonde woman in the black coat:
# at frame 60 he walks away up the path, at frame 300 he comes back down it (the tracker gives
# him two different tracks, 2-14 s and 21-37 s, and two more later).
VTEST_SAME_MAN: tuple[tuple[int, tuple[int, int, int, int]], ...] = (
    (60, (460, 200, 510, 290)), (300, (570, 160, 620, 230)))
# Someone else, never in a frame with him at those times: the woman in the red jacket at frame 500.
VTEST_RED_JACKET_WOMAN: tuple[int, tuple[int, int, int, int]] = (500, (300, 190, 340, 260))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes -> ``(N, M)`` (written out here, not
    taken from ``core``, so the tests check the code against an independent definition)."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def cut_clip(video: Path, out: Path, start: int, count: int, fps: float = 10.0) -> Path:
    """Write frames ``start .. start+count-1`` of ``video`` to ``out`` as mp4v; returns ``out``."""
    cap = cv2.VideoCapture(str(video))
    if start:
        cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    writer = None
    try:
        for _ in range(count):
            ok, frame = cap.read()
            assert ok, f"{video} ended before frame {start + count - 1}"
            if writer is None:
                h, w = frame.shape[:2]
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
            writer.write(frame)
    finally:
        if writer is not None:
            writer.release()
        cap.release()
    return out


def track_at(store, run_id: int, frame: int, box: tuple[float, float, float, float],
             min_iou: float = 0.5) -> int:
    """Database id (``track_pk``) of the track whose box at ``frame`` is the annotated one (IoU >= min_iou).
    """
    seen = store.sightings_in_frame(run_id, frame)
    assert len(seen), f"nobody tracked at frame {frame}"
    iou = box_iou(np.array([box], np.float32), seen.boxes)[0]
    i = int(np.argmax(iou))
    assert iou[i] >= min_iou, f"no track at frame {frame} matches {box} (best IoU {iou[i]:.2f})"
    return int(seen.track_pks[i])
