"""Boxes, matching and motion for the trackers (:mod:`core.tracking`).

* :func:`xyxy_to_xyah` / :func:`xyah_to_xyxy` - corner and centre/aspect/height box forms.
* :func:`iou_matrix` - vectorised IoU between two sets of boxes; :func:`buffered` grows boxes
  for the buffered IoU of C-BIoU (Yang et al., WACV 2023), which matches people who moved far
  between two processed frames.
* :func:`linear_assignment` - optimal one-to-one matching (Hungarian, ``scipy``) under a cost gate.
* :class:`BoxKalmanFilter` - constant-velocity Kalman filter (``filterpy``) of one box on the state
  ``(cx, cy, a, h, vcx, vcy, va, vh)`` with ``a = w / h``; noise scales with the box height as in
  DeepSORT/ByteTrack, so small (far) and large (near) people are followed equally well.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment

# --------------------------------------------------------------------------- boxes and matching


def xyxy_to_xyah(boxes: np.ndarray) -> np.ndarray:
    """Convert boxes from corners to centre, aspect ratio and height.

    Args:
        boxes: ``(N, 4)`` ``x1, y1, x2, y2``.

    Returns:
        ``(N, 4)`` float64 ``cx, cy, w / h, h``.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: np.ndarray) -> np.ndarray:
    """Convert boxes from centre, aspect ratio and height to corners.

    Args:
        xyah: ``(N, 4)`` ``cx, cy, w / h, h``.

    Returns:
        ``(N, 4)`` float64 ``x1, y1, x2, y2``.
    """
    s = np.asarray(xyah, dtype=np.float64).reshape(-1, 4)
    h = s[:, 3]
    w = s[:, 2] * h
    return np.stack([s[:, 0] - w / 2, s[:, 1] - h / 2, s[:, 0] + w / 2, s[:, 1] + h / 2], axis=1)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in ``a`` with every box in ``b``.

    Args:
        a: ``(N, 4)`` xyxy boxes.
        b: ``(M, 4)`` xyxy boxes.

    Returns:
        ``(N, M)`` float64 in ``[0, 1]``; 0 where a box has no area.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def buffered(boxes: np.ndarray, buffer: float) -> np.ndarray:
    """Boxes grown by ``buffer`` times their width and height on each side (C-BIoU)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    pad = np.stack([b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1) * buffer
    return np.concatenate([b[:, :2] - pad, b[:, 2:] + pad], axis=1)


def linear_assignment(cost: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of rows to columns, keeping only pairs with ``cost <= max_cost``.

    Pairs above the gate are excluded before solving (not just dropped afterwards), so a forbidden
    pair never pushes an allowed one out of the optimum.

    Args:
        cost: ``(N, M)`` costs (e.g. ``1 - IoU``).
        max_cost: Largest cost a matched pair may have.

    Returns:
        ``(matches, unmatched_rows, unmatched_cols)``: ``(K, 2)`` int64 ``(row, col)`` pairs sorted by
        row, and the ``(N - K,)`` / ``(M - K,)`` int64 indices left over, ascending.
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, m = cost.shape
    if n == 0 or m == 0:
        return np.zeros((0, 2), np.int64), np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64)
    allowed = cost <= max_cost
    big = max_cost + 1.0 + np.abs(cost[np.isfinite(cost)]).sum()  # worse than any set of allowed pairs
    gated = np.where(allowed, cost, big)
    rows, cols = linear_sum_assignment(gated)
    keep = allowed[rows, cols]
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    free_rows = np.ones(n, bool)
    free_rows[matches[:, 0]] = False
    free_cols = np.ones(m, bool)
    free_cols[matches[:, 1]] = False
    return matches, np.flatnonzero(free_rows).astype(np.int64), np.flatnonzero(free_cols).astype(np.int64)


# --------------------------------------------------------------------------- Kalman filter


class BoxKalmanFilter:
    """Constant-velocity Kalman filter of one box, state ``(cx, cy, a, h, vcx, vcy, va, vh)``.

    Noise standard deviations are proportional to the box height ``h`` (weights 1/20 for
    position, 1/160 for velocity, as in DeepSORT and ByteTrack); the aspect ratio ``a = w / h`` gets
    small fixed noise. Time unit: one processed frame.

    Pickles to its mean and covariance only (the ``filterpy`` object is rebuilt on load).

    Args:
        xyah: ``(4,)`` first measurement ``cx, cy, a, h``.
    """

    STD_WEIGHT_POSITION = 1.0 / 20
    STD_WEIGHT_VELOCITY = 1.0 / 160

    def __init__(self, xyah: np.ndarray) -> None:
        z = np.asarray(xyah, dtype=np.float64).reshape(4)
        h = self._scale(z[3])
        wp, wv = self.STD_WEIGHT_POSITION, self.STD_WEIGHT_VELOCITY
        pos, vel = 2 * wp * h, 10 * wv * h
        std = np.array([pos, pos, 1e-2, pos, vel, vel, 1e-5, vel])
        self._kf = self._make_filter(np.concatenate([z, np.zeros(4)]), np.diag(std**2))

    @staticmethod
    def _make_filter(mean: np.ndarray, cov: np.ndarray) -> KalmanFilter:
        kf = KalmanFilter(dim_x=8, dim_z=4)
        kf.F = np.eye(8)
        kf.F[:4, 4:] = np.eye(4)
        kf.H = np.eye(4, 8)
        kf.x = mean.reshape(8, 1).copy()
        kf.P = cov.copy()
        return kf

    @staticmethod
    def _scale(h: float) -> float:
        return max(float(h), 1.0)  # keep the noise positive for degenerate predictions

    @property
    def mean(self) -> np.ndarray:
        """``(8,)`` state estimate ``cx, cy, a, h, vcx, vcy, va, vh``."""
        return self._kf.x.reshape(8).copy()

    @property
    def covariance(self) -> np.ndarray:
        """``(8, 8)`` state covariance."""
        return self._kf.P.copy()

    @property
    def xyah(self) -> np.ndarray:
        """``(4,)`` current box ``cx, cy, a, h``."""
        return self._kf.x[:4, 0].copy()

    @property
    def xyxy(self) -> np.ndarray:
        """``(4,)`` current box ``x1, y1, x2, y2``."""
        return xyah_to_xyxy(self._kf.x[:4, 0])[0]

    def predict(self, *, freeze_height: bool = False) -> None:
        """Advance one processed frame.

        Args:
            freeze_height: Zero the height velocity first (used for lost tracks, so an unseen box
                does not keep growing or shrinking).
        """
        if freeze_height:
            self._kf.x[7, 0] = 0.0
        h = self._scale(self._kf.x[3, 0])
        wp, wv = self.STD_WEIGHT_POSITION, self.STD_WEIGHT_VELOCITY
        std = np.array([wp * h, wp * h, 1e-2, wp * h, wv * h, wv * h, 1e-5, wv * h])
        self._kf.predict(Q=np.diag(std**2))

    def update(self, xyah: np.ndarray) -> None:
        """Correct the state with a measured box ``(4,)`` ``cx, cy, a, h``."""
        h = self._scale(self._kf.x[3, 0])
        wp = self.STD_WEIGHT_POSITION
        std = np.array([wp * h, wp * h, 1e-1, wp * h])
        self._kf.update(np.asarray(xyah, dtype=np.float64).reshape(4, 1), R=np.diag(std**2))

    def __getstate__(self) -> dict[str, Any]:
        return {"mean": self.mean, "cov": self.covariance}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._kf = self._make_filter(state["mean"], state["cov"])
