"""Person crops from MOTChallenge ground truth, written in the generic identity-folder layout.

Each ground-truth track of a sequence (class 1 = pedestrian, ``consider`` flag 1)
becomes one identity folder ``<sequence>_<track id>/`` holding crops named
``c<sequence index>_f<frame>.jpg``; the sequence is the camera. Useful as real
training data with true identities (e.g. MOT17/MOT20 ``train`` folders).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from training.errors import DataError


def read_mot_gt(seq_dir: str | Path, *, min_visibility: float = 0.5, min_height: int = 64
                ) -> dict[int, list[tuple[int, tuple[int, int, int, int]]]]:
    """Pedestrian boxes per track of one sequence.

    Args:
        seq_dir: A sequence folder holding ``gt/gt.txt`` and ``img1/``.
        min_visibility: Keep boxes at least this visible (gt column 9).
        min_height: Keep boxes at least this many pixels tall.

    Returns:
        ``{track id: [(frame, (x1, y1, x2, y2)), ...]}`` for frames whose image exists.
    """
    seq_dir = Path(seq_dir)
    gt = seq_dir / "gt" / "gt.txt"
    if not gt.is_file():
        raise DataError(f"{seq_dir}: no gt/gt.txt (not a MOTChallenge training sequence)")
    try:
        rows = np.loadtxt(gt, delimiter=",", ndmin=2)
    except ValueError:
        raise DataError(f"{gt}: not a MOTChallenge ground-truth file (comma-separated numbers)") from None
    frames = {int(p.stem) for p in (seq_dir / "img1").glob("*.jpg") if p.stem.isdigit()}
    tracks: dict[int, list[tuple[int, tuple[int, int, int, int]]]] = defaultdict(list)
    for row in rows:
        frame, tid, x, y, w, h, consider, cls, vis = row[:9]
        if int(frame) not in frames or consider != 1 or cls != 1 or vis < min_visibility or h < min_height:
            continue
        box = (int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
        tracks[int(tid)].append((int(frame), box))
    return dict(tracks)


def write_mot_crops(seq_dirs: Sequence[str | Path], out: str | Path, *, min_visibility: float = 0.5,
                    min_height: int = 64, min_crops: int = 2, max_crops: int = 0) -> dict[str, int]:
    """Write crops of every ground-truth track with at least ``min_crops`` usable boxes.

    Args:
        seq_dirs: Sequence folders; their order gives the camera numbers 1, 2, ...
        out: Output folder (``out/<sequence>_<track>/c<cam>_f<frame>.jpg``).
        min_visibility: See :func:`read_mot_gt`.
        min_height: See :func:`read_mot_gt`.
        min_crops: Skip tracks with fewer usable boxes.
        max_crops: Keep at most this many crops per track, evenly spread (0: all).

    Returns:
        ``{"identities": n, "images": m}``.
    """
    out = Path(out)
    identities = images = 0
    for cam, seq in enumerate(map(Path, seq_dirs), 1):
        tracks = read_mot_gt(seq, min_visibility=min_visibility, min_height=min_height)
        cache: dict[int, np.ndarray] = {}
        for tid, boxes in sorted(tracks.items()):
            if len(boxes) < min_crops:
                continue
            if max_crops and len(boxes) > max_crops:
                boxes = [boxes[i] for i in np.linspace(0, len(boxes) - 1, max_crops).round().astype(int)]
            folder = out / f"{seq.name}_{tid:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            for frame, (x1, y1, x2, y2) in boxes:
                if frame not in cache:
                    img = cv2.imread(str(seq / "img1" / f"{frame:06d}.jpg"))
                    if img is None:
                        raise DataError(f"{seq / 'img1' / f'{frame:06d}.jpg'}: cannot read this image")
                    cache[frame] = img
                img = cache[frame]
                h, w = img.shape[:2]
                crop = img[max(0, y1):min(h, y2), max(0, x1):min(w, x2)]
                if crop.size:
                    cv2.imwrite(str(folder / f"c{cam}_f{frame:06d}.jpg"), crop)
                    images += 1
            identities += 1
    return {"identities": identities, "images": images}
