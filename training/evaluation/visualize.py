"""Pictures: a rank-list image for a few queries, and the training curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from training.data.transforms import read_rgb


def save_rank_list(out_png: str | Path, distmat: np.ndarray, query: Sequence[tuple[str, int, int]],
                   gallery: Sequence[tuple[str, int, int]], *, num_queries: int = 5, top_k: int = 10,
                   cell: tuple[int, int] = (128, 64)) -> Path:
    """Draw each of the first ``num_queries`` queries and its ``top_k`` gallery results.

    Gallery items the protocol ignores (same person and camera as the query, junk ``-1``)
    are skipped. Results get a green border when they are the query's person, red otherwise.

    Args:
        out_png: Output image path.
        distmat: ``(Q, G)`` distances.
        query: ``(path, pid, camid)`` per query row.
        gallery: ``(path, pid, camid)`` per gallery column.
        num_queries: Rows to draw.
        top_k: Results per row.
        cell: ``(height, width)`` of each thumbnail.

    Returns:
        The written path.
    """
    h, w = cell
    pad, gap = 4, 12
    rows = []
    for qi in range(min(num_queries, len(query))):
        qpath, qpid, qcam = query[qi]
        tiles = [_tile(qpath, h, w, (0, 0, 0), pad)]
        tiles.append(np.full((h + 2 * pad, gap, 3), 255, np.uint8))
        for gi in np.argsort(distmat[qi], kind="stable"):
            gpath, gpid, gcam = gallery[gi]
            if gpid == -1 or (gpid == qpid and gcam == qcam):
                continue
            tiles.append(_tile(gpath, h, w, (0, 180, 0) if gpid == qpid else (220, 0, 0), pad))
            if len(tiles) == top_k + 2:
                break
        while len(tiles) < top_k + 2:
            tiles.append(np.full((h + 2 * pad, w + 2 * pad, 3), 255, np.uint8))
        rows.append(np.concatenate(tiles, axis=1))
        rows.append(np.full((pad, rows[-1].shape[1], 3), 255, np.uint8))
    canvas = np.concatenate(rows, axis=0) if rows else np.full((h, w, 3), 255, np.uint8)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_png), cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    return out_png


def _tile(path: str, h: int, w: int, color: tuple[int, int, int], pad: int) -> np.ndarray:
    img = cv2.resize(read_rgb(path), (w, h), interpolation=cv2.INTER_AREA)
    return cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=color)


def plot_history(history: Sequence[dict[str, float]], out_png: str | Path) -> Path:
    """Plot per-epoch training loss (and its parts) and accuracy to a PNG (matplotlib, Agg backend).

    Args:
        history: One dict per epoch with ``epoch``, ``loss`` and optionally ``ce``,
            ``triplet``, ``center``, ``circle``, ``acc``, ``rank1``, ``mAP``.
        out_png: Output path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "ce", "triplet", "center", "circle"):
        if any(key in h for h in history):
            ax1.plot([h["epoch"] for h in history if key in h], [h[key] for h in history if key in h],
                     marker="o", label=key)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.set_title("training loss")
    ax1.legend()
    for key, scale in (("acc", 100.0), ("rank1", 1.0), ("mAP", 1.0)):
        pts = [(h["epoch"], h[key] * scale) for h in history if key in h]
        if pts:
            ax2.plot(*zip(*pts, strict=True), marker="o", label=key + (" (train)" if key == "acc" else ""))
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("%")
    ax2.set_title("accuracy")
    if ax2.lines:
        ax2.legend()
    ax1.set_xticks(epochs) if len(epochs) <= 20 else None
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
