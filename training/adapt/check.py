"""The before/after check on the user's own footage, without labels.

Pairs come from held-out tracks only (:mod:`training.adapt.mining`), never seen by training:

* **same person**: two crops of one held-out track at least ``min_gap_s`` seconds apart
  (the person has moved on: another pose, place and size);
* **different people**: two boxes of the *same frame* (two boxes in one frame are two
  people), from two held-out tracks, not overlapping much (IoU below ``max_iou``, so a
  double detection of one person is not counted as two).

The figure is the **true match rate at 1 % false match rate** (TMR@1%FMR): the threshold is
the smallest cosine similarity that at most 1 % of the different-people pairs reach, and
TMR is the share of same-person pairs at or above it. Similarity distributions (histograms)
are kept for the plot.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.adapt.mining import MinedCrop
from training.data.transforms import IMAGENET_MEAN, IMAGENET_STD

BINS = np.linspace(-0.2, 1.0, 61)
"""Histogram bin edges of the similarity distributions."""


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class CheckPairs:
    """Index pairs into a list of held-out crops.

    Attributes:
        crops: The crops the indices refer to.
        positives: ``(P, 2)`` int64 same-track pairs at least ``min_gap_s`` apart.
        negatives: ``(N, 2)`` int64 same-frame pairs of different tracks.
    """

    crops: tuple[MinedCrop, ...]
    positives: np.ndarray
    negatives: np.ndarray


def build_pairs(crops: Sequence[MinedCrop], *, min_gap_s: float = 3.0, max_iou: float = 0.3,
                max_pairs: int = 20000, seed: int = 0) -> CheckPairs:
    """Same-person and different-people pairs of held-out crops (each set capped at ``max_pairs``)."""
    crops = tuple(crops)
    by_track: dict[int, list[int]] = defaultdict(list)
    by_frame: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, c in enumerate(crops):
        by_track[c.track].append(i)
        by_frame[(c.camera, c.frame)].append(i)
    pos = [(a, b) for idx in by_track.values() for k, a in enumerate(idx) for b in idx[k + 1:]
           if abs(crops[a].time_s - crops[b].time_s) >= min_gap_s]
    neg = [(a, b) for idx in by_frame.values() for k, a in enumerate(idx) for b in idx[k + 1:]
           if crops[a].track != crops[b].track and _iou(crops[a].box, crops[b].box) < max_iou]
    rng = np.random.default_rng(seed)

    def cap(pairs: list[tuple[int, int]]) -> np.ndarray:
        arr = np.asarray(pairs, np.int64).reshape(-1, 2)
        if len(arr) > max_pairs:
            arr = arr[np.sort(rng.choice(len(arr), max_pairs, replace=False))]
        return arr

    return CheckPairs(crops, cap(pos), cap(neg))


def tmr_at_fmr(same: np.ndarray, diff: np.ndarray, fmr: float = 0.01) -> tuple[float, float]:
    """``(TMR, threshold)`` at false match rate ``fmr``.

    The threshold is the smallest value that at most ``fmr`` of ``diff`` reach; TMR is the share
    of ``same`` at or above it.
    """
    diff = np.sort(np.asarray(diff, np.float64))[::-1]
    allowed = int(math.floor(fmr * len(diff)))  # different-people pairs allowed at or above it
    threshold = float(np.nextafter(diff[allowed], np.inf)) if allowed < len(diff) else -np.inf
    return float(np.mean(np.asarray(same) >= threshold)), threshold


def check_figures(features: np.ndarray, pairs: CheckPairs, fmr: float = 0.01) -> dict[str, Any]:
    """TMR@FMR, threshold, similarity statistics and histograms of one model's ``(N, D)`` features."""
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    same = np.sum(x[pairs.positives[:, 0]] * x[pairs.positives[:, 1]], axis=1)
    diff = np.sum(x[pairs.negatives[:, 0]] * x[pairs.negatives[:, 1]], axis=1)
    tmr, thr = tmr_at_fmr(same, diff, fmr)
    return {"tmr_at_fmr": round(tmr, 4), "fmr": fmr, "threshold": round(thr, 4),
            "same_mean": round(float(same.mean()), 4), "diff_mean": round(float(diff.mean()), 4),
            "same_hist": np.histogram(same, BINS)[0].tolist(),
            "diff_hist": np.histogram(diff, BINS)[0].tolist()}


def run_check(embed: Callable[[Sequence[str]], np.ndarray], pairs: CheckPairs,
              fmr: float = 0.01) -> dict[str, Any]:
    """Embed the pairs' crops with ``embed(paths) -> (N, D)`` and compute :func:`check_figures`."""
    return check_figures(embed([c.path for c in pairs.crops]), pairs, fmr)


def summary(before: dict[str, Any], after: dict[str, Any], pairs: CheckPairs) -> dict[str, Any]:
    """The ``eval`` metadata: both models' figures on the same held-out pairs, and the verdict."""
    keep = ("tmr_at_fmr", "threshold", "same_mean", "diff_mean", "same_hist", "diff_hist")
    return {"check": "held-out tracks of the library: same track >= 3 s apart vs same frame",
            "fmr": before["fmr"], "positives": len(pairs.positives), "negatives": len(pairs.negatives),
            "hist_bins": [float(BINS[0]), float(BINS[-1]), len(BINS) - 1],
            "heldout_tracks": len({c.track for c in pairs.crops}),
            "base": {k: before[k] for k in keep}, "adapted": {k: after[k] for k in keep},
            "better": bool(after["tmr_at_fmr"] >= before["tmr_at_fmr"])}


def describe(s: dict[str, Any]) -> str:
    """One line of the before/after figures."""
    b, a = s["base"], s["adapted"]
    pct = 100 * s["fmr"]
    return (f"held-out check ({s['positives']} same-person / {s['negatives']} different-people pairs of "
            f"{s['heldout_tracks']} tracks): TMR@{pct:g}%FMR base {100 * b['tmr_at_fmr']:.1f}% -> adapted "
            f"{100 * a['tmr_at_fmr']:.1f}%; mean similarity same {b['same_mean']:.3f} -> "
            f"{a['same_mean']:.3f}, "
            f"different {b['diff_mean']:.3f} -> {a['diff_mean']:.3f}")


def plot_check(before: dict[str, Any], after: dict[str, Any], out_png: str | Path,
               title: str = "held-out check") -> Path:
    """Similarity histograms (same person vs different people), base and adapted side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centres = (BINS[:-1] + BINS[1:]) / 2
    width = BINS[1] - BINS[0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (name, fig_) in zip(axes, (("base", before), ("adapted", after)), strict=True):
        for key, colour, label in (("same_hist", "tab:green", "same person"),
                                   ("diff_hist", "tab:red", "different people")):
            h = np.asarray(fig_[key], np.float64)
            ax.bar(centres, h / max(h.sum(), 1), width=width, color=colour, alpha=0.5, label=label)
        ax.axvline(fig_["threshold"], color="k", linestyle="--",
                   label=f"threshold at {100 * fig_['fmr']:g}% FMR ({fig_['threshold']:.2f})")
        ax.set_title(f"{name}: TMR@{100 * fig_['fmr']:g}%FMR {100 * fig_['tmr_at_fmr']:.1f}%")
        ax.set_xlabel("cosine similarity")
        ax.legend(fontsize=8, loc="upper left")
    axes[0].set_ylabel("share of pairs")
    fig.suptitle(title)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


def model_embedder(path: str | Path, *, arch: str = "osnet_x0_25", input_size: tuple[int, int] = (256, 128),
                   workers: int = 2) -> Callable[[Sequence[str]], np.ndarray]:
    """``embed(paths) -> (N, D)`` for a model file.

    ONNX files run with ONNX Runtime (preprocessing from their metadata, else 256x128 ImageNet);
    training checkpoints carry their architecture; other ``.pth`` files are state dicts of ``arch``.
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        import cv2
        import onnxruntime as ort

        from training.export import preprocess

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        md = sess.get_modelmeta().custom_metadata_map
        size = (int(md.get("input_height", 256)), int(md.get("input_width", 128)))
        mean = json.loads(md["mean"]) if "mean" in md else IMAGENET_MEAN
        std = json.loads(md["std"]) if "std" in md else IMAGENET_STD
        name = sess.get_inputs()[0].name

        def embed_onnx(paths: Sequence[str]) -> np.ndarray:
            out = [sess.run(None, {name: preprocess([cv2.imread(p) for p in paths[i:i + 64]], size, mean, std,
                                                     md.get("color_order", "RGB"))})[0]
                   for i in range(0, len(paths), 64)]
            return np.concatenate(out).astype(np.float32)

        return embed_onnx
    from training.checkpoint import load_checkpoint
    from training.data.transforms import build_transforms
    from training.errors import CheckpointError
    from training.evaluation.features import extract_features
    from training.modeling import build_model, load_weights

    try:
        meta = load_checkpoint(path)["meta"]
        arch, input_size, kwargs = meta["arch"], tuple(meta["input_size"]), meta["model_kwargs"]
    except CheckpointError:
        kwargs = {}
    model = build_model(arch, num_classes=0, **kwargs)
    load_weights(model, path)
    tf = build_transforms(*input_size, train=False)

    def embed_torch(paths: Sequence[str]) -> np.ndarray:
        return extract_features(model, [(p, 0, 0) for p in paths], tf, workers=workers, progress=False)

    return embed_torch


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m training.adapt.check --work DIR MODEL...``: each model's figures on DIR's pairs."""
    import argparse

    from training.adapt.mining import MinedLibrary
    from training.cli import run_main
    from training.errors import DataError

    p = argparse.ArgumentParser(prog="python -m training.adapt.check",
                                description="TMR at 1 %% FMR of ReID models on the held-out pairs of an "
                                            "adaptation work folder (python -m training.adapt --work DIR).")
    p.add_argument("--work", required=True, help="work folder of python -m training.adapt")
    p.add_argument("models", nargs="+",
                   help=".onnx file, training checkpoint or torchreid .pth (osnet_x0_25)")
    args = p.parse_args(argv)

    def body() -> int:
        lib = MinedLibrary.load(args.work)
        if lib is None:
            raise DataError(f"{args.work}: no mined library here (run python -m training.adapt first)")
        pairs = build_pairs(lib.heldout)
        print(f"{len(pairs.positives)} same-person and {len(pairs.negatives)} different-people "
              "held-out pairs")
        for m in args.models:
            f = run_check(model_embedder(m), pairs)
            print(f"{m}: TMR@1%FMR {100 * f['tmr_at_fmr']:.1f}% (threshold {f['threshold']:.3f}); mean "
                  f"similarity same {f['same_mean']:.3f}, different {f['diff_mean']:.3f}")
        return 0

    return run_main(body, "check")


if __name__ == "__main__":
    import sys

    sys.exit(main())
