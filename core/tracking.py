"""Multi-object tracking: links per-frame person detections into tracks (ByteTrack-style).

Pieces, each usable on its own:

* :class:`BoxKalmanFilter` - constant-velocity Kalman filter (``filterpy``) of one box on the state
  ``(cx, cy, a, h, vcx, vcy, va, vh)`` with ``a = w / h``; noise scales with the box height as in
  DeepSORT/ByteTrack, so small (far) and large (near) people are followed equally well.
* :func:`iou_matrix` - vectorised IoU between two sets of boxes.
* :func:`linear_assignment` - optimal one-to-one matching (Hungarian, ``scipy``) under a cost gate.
* :class:`ByteTracker` - the track life cycle (implements :class:`core.types.Tracker`).

One :meth:`ByteTracker.update` call is one *processed* frame (with a frame stride, every
``stride``-th video frame); ages and hit counts are counted in these calls.

Association in each update (ByteTrack, Zhang et al. 2022):

1. Every track's box is predicted by its Kalman filter.
2. High-confidence detections (``score >= high_thresh``) are matched to the confirmed tracks, both
   those seen in the previous update and lost ones, by IoU (``IoU >= match_iou``).
3. Low-confidence detections (``low_thresh <= score < high_thresh``, often occluded people) are
   matched to the confirmed tracks still unmatched that were seen in the previous update
   (``IoU >= low_match_iou``). They keep such a track alive but never start or revive one, so
   detector noise does not create tracks.
4. The high-confidence detections left are matched to tentative tracks (``IoU >= match_iou``).
5. Tentative tracks without a match die at once; confirmed tracks without a match are lost and die
   after more than ``max_age`` updates in a row without one.
6. High-confidence detections still left with ``score >= new_track_thresh`` start tentative tracks.

A tentative track becomes confirmed after ``min_hits`` consecutive hits (``min_hits=1``: at
once). Only then does it get an id: ids are 1, 2, 3, ... per tracker instance in order of
confirmation, without gaps. A confirmed track that is lost and found again keeps its id. The output
of an update lists the confirmed tracks matched in that frame (with the matched detection's box,
score and index); the frames a track spent tentative are not reported. Detection classes are
ignored (all detections are taken to be people). Detections with a non-finite or empty box are
ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment

from core.types import Detections, TrackedBoxes, Tracker

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


# --------------------------------------------------------------------------- tracker


TENTATIVE, TRACKED, LOST = "tentative", "tracked", "lost"


class _Track:
    """One followed person: Kalman filter plus life-cycle counters."""

    __slots__ = ("kf", "track_id", "state", "hits", "misses", "score")

    def __init__(self, xyah: np.ndarray, score: float) -> None:
        self.kf = BoxKalmanFilter(xyah)
        self.track_id = 0  # 0 while tentative
        self.state = TENTATIVE
        self.hits = 1  # consecutive updates with a match
        self.misses = 0  # consecutive updates without a match
        self.score = score

    def hit(self, xyah: np.ndarray, score: float) -> None:
        self.kf.update(xyah)
        self.hits += 1
        self.misses = 0
        self.score = score

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)


@dataclass(frozen=True)
class ByteTrackConfig:
    """Settings of :class:`ByteTracker` (see the module notes for how they are used).

    Attributes:
        high_thresh: Detections at or above this score take part in the first association.
        low_thresh: Detections below this score are ignored; those in ``[low_thresh, high_thresh)``
            can only keep a confirmed track alive.
        new_track_thresh: Unmatched high-confidence detections at or above this score start a track.
        match_iou: Least IoU for a high-confidence match (cost ``1 - IoU <= 1 - match_iou``; the
            default 0.3 is ByteTrack's ``match_thresh=0.8`` cost gate made a little stricter, the
            value ByteTrack uses for tentative tracks).
        low_match_iou: Least IoU for a low-confidence match (ByteTrack: 0.5).
        min_hits: Consecutive matched updates before a track is confirmed and reported.
        max_age: Updates a confirmed track may go unmatched and still be found again.
    """

    high_thresh: float = 0.5
    low_thresh: float = 0.1
    new_track_thresh: float = 0.6
    match_iou: float = 0.3
    low_match_iou: float = 0.5
    min_hits: int = 3
    max_age: int = 30

    def __post_init__(self) -> None:
        for name in ("high_thresh", "low_thresh", "new_track_thresh", "match_iou", "low_match_iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.low_thresh > self.high_thresh:
            raise ValueError(f"low_thresh ({self.low_thresh}) must not exceed "
                             f"high_thresh ({self.high_thresh})")
        if self.min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {self.min_hits}")
        if self.max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {self.max_age}")


class ByteTracker:
    """ByteTrack-style tracker: Kalman motion, IoU matching, two-stage association by score.

    One instance per video. Deterministic, and picklable (to resume an interrupted run).

    Args:
        high_thresh: See :class:`ByteTrackConfig`.
        low_thresh: See :class:`ByteTrackConfig`.
        new_track_thresh: See :class:`ByteTrackConfig`.
        match_iou: See :class:`ByteTrackConfig`.
        low_match_iou: See :class:`ByteTrackConfig`.
        min_hits: See :class:`ByteTrackConfig`.
        max_age: See :class:`ByteTrackConfig`.

    Raises:
        ValueError: If a setting is out of range.
    """

    def __init__(self, *, high_thresh: float = 0.5, low_thresh: float = 0.1, new_track_thresh: float = 0.6,
                 match_iou: float = 0.3, low_match_iou: float = 0.5, min_hits: int = 3,
                 max_age: int = 30) -> None:
        self.config = ByteTrackConfig(high_thresh=high_thresh, low_thresh=low_thresh,
                                      new_track_thresh=new_track_thresh, match_iou=match_iou,
                                      low_match_iou=low_match_iou, min_hits=min_hits, max_age=max_age)
        self.reset()

    @property
    def max_age(self) -> int:
        """Updates a confirmed track may go unmatched and still be found again."""
        return self.config.max_age

    @property
    def min_hits(self) -> int:
        """Consecutive matched updates before a track is confirmed."""
        return self.config.min_hits

    @property
    def frame_count(self) -> int:
        """Updates since creation or the last :meth:`reset`."""
        return self._frame

    @property
    def ids_issued(self) -> int:
        """Number of track ids given out so far (the last id issued)."""
        return self._next_id - 1

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1."""
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._frame = 0

    def active_tracks(self) -> list[tuple[int, str, np.ndarray]]:
        """Tracks held now, for inspection: ``(track_id (0 if tentative), state, (4,) predicted xyxy)``."""
        return [(t.track_id, t.state, t.kf.xyxy) for t in self._tracks]

    def _confirm(self, track: _Track) -> None:
        track.state = TRACKED
        track.track_id = self._next_id
        self._next_id += 1

    def update(self, detections: Detections, image: np.ndarray | None = None,
               embeddings: np.ndarray | None = None) -> TrackedBoxes:
        """Advance one processed frame.

        Args:
            detections: The frame's detections (boxes ``(N, 4)`` xyxy pixels, scores ``(N,)``).
            image: The frame (unused: this tracker uses motion and overlap only).
            embeddings: Unused (the tracker has no ``needs_embeddings``, so the pipeline passes none).

        Returns:
            The confirmed tracks matched in this frame, sorted by id: ids ``(K,)``, the matched
            detections' boxes ``(K, 4)`` and scores ``(K,)``, and ``det_index`` ``(K,)`` into
            ``detections``.
        """
        cfg = self.config
        self._frame += 1
        boxes = detections.boxes.astype(np.float64)
        scores = detections.scores.astype(np.float64)
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        usable = np.isfinite(boxes).all(axis=1) & np.isfinite(scores) & (w > 0) & (h > 0)
        high = np.flatnonzero(usable & (scores >= cfg.high_thresh))
        low = np.flatnonzero(usable & (scores >= cfg.low_thresh) & (scores < cfg.high_thresh))
        xyah = np.zeros((len(boxes), 4))
        if usable.any():
            xyah[usable] = xyxy_to_xyah(boxes[usable])

        for t in self._tracks:
            t.kf.predict(freeze_height=t.state == LOST)

        matched: list[tuple[_Track, int]] = []  # confirmed tracks matched this frame, with det index

        # 1. high-confidence detections vs all confirmed tracks (seen last frame or lost)
        confirmed = [t for t in self._tracks if t.state != TENTATIVE]
        tentative = [t for t in self._tracks if t.state == TENTATIVE]
        pairs, left_tracks, left_high = self._associate(confirmed, boxes[high], cfg.match_iou)
        matched += [(confirmed[ti], int(high[di])) for ti, di in pairs]
        high = high[left_high]

        # 2. low-confidence detections vs confirmed tracks still unmatched that were seen last frame
        recent = [confirmed[i] for i in left_tracks if confirmed[i].state == TRACKED]
        pairs, _, _ = self._associate(recent, boxes[low], cfg.low_match_iou)
        matched += [(recent[ti], int(low[di])) for ti, di in pairs]

        # 3. life cycle of confirmed tracks: matched ones are corrected, the others age
        for track, det in matched:
            track.hit(xyah[det], float(scores[det]))
            track.state = TRACKED
        seen = {id(t) for t, _ in matched}
        for track in confirmed:
            if id(track) not in seen:
                track.state = LOST
                track.misses += 1
        kept = [t for t in confirmed if t.misses <= cfg.max_age]

        # 4. remaining high-confidence detections vs tentative tracks; unmatched tentative ones die
        pairs, _, left_high = self._associate(tentative, boxes[high], cfg.match_iou)
        for ti, di in pairs:
            track, det = tentative[ti], int(high[di])
            track.hit(xyah[det], float(scores[det]))
            kept.append(track)
            if track.hits >= cfg.min_hits:
                self._confirm(track)
                matched.append((track, det))
        high = high[left_high]

        # 5. new tentative tracks from confident leftovers
        for det in high:
            if scores[det] >= cfg.new_track_thresh:
                track = _Track(xyah[det], float(scores[det]))
                if cfg.min_hits <= 1:
                    self._confirm(track)
                    matched.append((track, int(det)))
                kept.append(track)
        self._tracks = kept

        matched.sort(key=lambda td: td[0].track_id)
        det_index = np.array([d for _, d in matched], dtype=np.int64)
        return TrackedBoxes(
            track_ids=np.array([t.track_id for t, _ in matched], dtype=np.int64),
            boxes=detections.boxes[det_index].reshape(-1, 4),
            scores=detections.scores[det_index],
            det_index=det_index,
        )

    @staticmethod
    def _associate(tracks: list[_Track], det_boxes: np.ndarray,
                   min_iou: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Match tracks' predicted boxes to detection boxes by IoU (see :func:`linear_assignment`)."""
        predicted = xyah_to_xyxy(np.array([t.kf.xyah for t in tracks]).reshape(-1, 4))
        return linear_assignment(1.0 - iou_matrix(predicted, det_boxes), 1.0 - min_iou)

    def __repr__(self) -> str:
        cfg = self.config
        fields = ", ".join(f"{f.name}={getattr(cfg, f.name)}" for f in dataclasses.fields(cfg))
        return f"ByteTracker({fields})"


# --------------------------------------------------------------------------- registry


TRACKERS: dict[str, type[ByteTracker]] = {"bytetrack": ByteTracker}
"""Trackers by name; each is created with keyword settings and implements :class:`core.types.Tracker`."""

DEFAULT_TRACKER = "bytetrack"
"""The tracker the engine uses unless told otherwise (``Engine(tracker=...)``, ``--tracker``)."""


def make_tracker(name: str, **kwargs: Any) -> Tracker:
    """Create a tracker by registry name.

    Args:
        name: A key of :data:`TRACKERS`.
        **kwargs: Settings passed to the tracker class.

    Returns:
        A fresh tracker.

    Raises:
        KeyError: If ``name`` is unknown; the message lists the valid names.
        ValueError: If a setting is out of range.
    """
    try:
        cls = TRACKERS[name]
    except KeyError:
        raise KeyError(f"unknown tracker {name!r}; valid names: {', '.join(sorted(TRACKERS))}") from None
    return cls(**kwargs)
