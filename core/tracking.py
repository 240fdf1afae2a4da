"""Multi-object tracking: links per-frame person detections into tracks (ByteTrack-style).

* :class:`ByteTracker` - the track life cycle (implements :class:`core.types.Tracker`), on the
  boxes, matching and Kalman filter of :mod:`core.track_motion`.
* :class:`BufferedByteTracker` - the default: ByteTracker with buffered second chances checked by
  appearance, for frames sampled a third of a second apart (see below).

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

With ``buffer > 0`` the pairs left after steps 2 and 4 get a second chance by *buffered* IoU
(C-BIoU, Yang et al. 2023: both boxes grown by ``buffer`` times their width and height on each
side), which matches a person who walked further than their own width between two processed
frames, as at a few processed frames per second. Buffered boxes also overlap a neighbour's, so
with ``appearance > 0`` such a second-chance pair must also look alike: the cosine distance
between the track's appearance (a moving average of the ReID vectors of its confident
detections, as in BoT-SORT) and the detection's must not exceed ``appearance``. The tracker then
``needs_embeddings``, and reads the vectors of the detections it learns from or checks only.
With ``tentative_low`` a tentative track unmatched in step 4 survives on a low-confidence box
(matched the same way), so a person whose scores hover about ``high_thresh`` is not restarted
on every weak frame; it still needs ``min_hits`` confident hits to be confirmed.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.track_motion import (
    BoxKalmanFilter,
    buffered,
    iou_matrix,
    linear_assignment,
    xyah_to_xyxy,
    xyxy_to_xyah,
)
from core.types import Detections, TrackedBoxes, Tracker

# --------------------------------------------------------------------------- tracker


TENTATIVE, TRACKED, LOST = "tentative", "tracked", "lost"
LOOK_EVERY = 3
"""A track's appearance is updated on its first confident hit, then every ``LOOK_EVERY``-th hit."""


class _Track:
    """One followed person: Kalman filter plus life-cycle counters."""

    __slots__ = ("kf", "track_id", "state", "hits", "misses", "score", "feature", "unseen")

    def __init__(self, xyah: np.ndarray, score: float) -> None:
        self.kf = BoxKalmanFilter(xyah)
        self.feature: np.ndarray | None = None  # (D,) float64 unit vector: the track's appearance
        self.unseen = 0  # hits since the appearance was last updated
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
        self.unseen += 1

    def wants_look(self) -> bool:
        """Whether this hit's ReID vector should update the appearance (the first, then every 3rd)."""
        return self.feature is None or self.unseen >= LOOK_EVERY

    def see(self, feature: np.ndarray) -> None:
        """Fold a detection's ReID vector into the appearance (moving average, BoT-SORT's 0.9)."""
        if not np.any(feature):
            return
        f = feature.astype(np.float64)
        if self.feature is not None:
            f = 0.9 * self.feature + 0.1 * f
        self.feature = f / np.linalg.norm(f)
        self.unseen = 0

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = {"feature": None, "unseen": 0, **state}  # checkpoints from before appearance
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
        buffer: Growth of both boxes, in box widths/heights per side, for the second-chance
            match of the pairs left (0: none, plain ByteTrack).
        appearance: Largest cosine distance between a track's and a detection's ReID vectors for
            a second-chance match (0: no appearance check, and no embeddings needed).
        tentative_low: A low-confidence detection keeps a tentative track alive (matched as the
            second chances are, not counted as a hit) instead of the track dying at once.
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
    buffer: float = 0.0
    appearance: float = 0.0
    tentative_low: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.buffer <= 2.0 or not 0.0 <= self.appearance <= 2.0:
            raise ValueError(f"buffer and appearance must be in [0, 2], got {self.buffer}, {self.appearance}")
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
        buffer: See :class:`ByteTrackConfig`.
        appearance: See :class:`ByteTrackConfig`.
        tentative_low: See :class:`ByteTrackConfig`.

    Raises:
        ValueError: If a setting is out of range.
    """

    def __init__(self, *, high_thresh: float = 0.5, low_thresh: float = 0.1, new_track_thresh: float = 0.6,
                 match_iou: float = 0.3, low_match_iou: float = 0.5, min_hits: int = 3,
                 max_age: int = 30, buffer: float = 0.0, appearance: float = 0.0,
                 tentative_low: bool = False) -> None:
        self.config = ByteTrackConfig(high_thresh=high_thresh, low_thresh=low_thresh,
                                      new_track_thresh=new_track_thresh, match_iou=match_iou,
                                      low_match_iou=low_match_iou, min_hits=min_hits, max_age=max_age,
                                      buffer=buffer, appearance=appearance, tentative_low=tentative_low)
        self.reset()

    @property
    def needs_embeddings(self) -> bool:
        """Whether the pipeline must pass ReID vectors (only with the appearance check on)."""
        return self.config.appearance > 0

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
            image: The frame (unused: this tracker uses motion, overlap and appearance only).
            embeddings: ``(N, D)`` ReID vectors of the detections, an array or
                :class:`~core.types.LazyEmbeddings` (read only when ``appearance > 0``: the tracker
                then ``needs_embeddings``; ``None`` skips the appearance check).

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
        use = embeddings is not None and cfg.appearance > 0

        def feats(dets: np.ndarray) -> Callable[[np.ndarray], np.ndarray] | None:
            """The ReID vectors of ``dets`` by position, read from ``embeddings`` when asked."""
            return (lambda cols: embeddings[dets[cols]]) if use else None

        matched: list[tuple[_Track, int]] = []  # confirmed tracks matched this frame, with det index

        # 1. high-confidence detections vs all confirmed tracks (seen last frame or lost)
        confirmed = [t for t in self._tracks if t.state != TENTATIVE]
        tentative = [t for t in self._tracks if t.state == TENTATIVE]
        pairs, left_tracks, left_high = self._cascade(confirmed, boxes, high, feats)
        matched += [(confirmed[ti], int(high[di])) for ti, di in pairs]
        high = high[left_high]

        # 2. low-confidence detections vs confirmed tracks still unmatched that were seen last frame
        recent = [confirmed[i] for i in left_tracks if confirmed[i].state == TRACKED]
        pairs, _, left_low = self._associate(recent, boxes[low], cfg.low_match_iou)
        matched += [(recent[ti], int(low[di])) for ti, di in pairs]
        low = low[left_low]

        # 3. life cycle of confirmed tracks: matched ones are corrected, the others age
        hit_now = list(matched)  # every track matched in this update, with its detection
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
        pairs, _, left_high = self._cascade(tentative, boxes, high, feats)
        for ti, di in pairs:
            track, det = tentative[ti], int(high[di])
            track.hit(xyah[det], float(scores[det]))
            hit_now.append((track, det))
            kept.append(track)
            if track.hits >= cfg.min_hits:
                self._confirm(track)
                matched.append((track, det))
        high = high[left_high]
        if cfg.tentative_low:  # 4c. a low-confidence box keeps a tentative track alive (not a hit)
            rest = np.setdiff1d(np.arange(len(tentative)), pairs[:, 0])
            more, _, _ = self._associate([tentative[i] for i in rest], boxes[low], cfg.match_iou, cfg.buffer,
                                         feats(low))
            for ti, di in more:
                tentative[rest[ti]].kf.update(xyah[low[di]])
                kept.append(tentative[rest[ti]])

        # 5. new tentative tracks from confident leftovers
        for det in high:
            if scores[det] >= cfg.new_track_thresh:
                track = _Track(xyah[det], float(scores[det]))
                hit_now.append((track, int(det)))
                if cfg.min_hits <= 1:
                    self._confirm(track)
                    matched.append((track, int(det)))
                kept.append(track)
        self._tracks = kept
        if use:  # appearance is learnt from confident boxes only, in one embedder call
            looks = [(t, d) for t, d in hit_now if scores[d] >= cfg.high_thresh and t.wants_look()]
            if looks:
                vectors = embeddings[np.array([d for _, d in looks])]
                for (track, _), vector in zip(looks, vectors, strict=True):
                    track.see(vector)

        matched.sort(key=lambda td: td[0].track_id)
        det_index = np.array([d for _, d in matched], dtype=np.int64)
        return TrackedBoxes(
            track_ids=np.array([t.track_id for t, _ in matched], dtype=np.int64),
            boxes=detections.boxes[det_index].reshape(-1, 4),
            scores=detections.scores[det_index],
            det_index=det_index,
        )

    def _cascade(self, tracks: list[_Track], boxes: np.ndarray, dets: np.ndarray,
                 feats: Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray] | None],
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Match ``tracks`` to the detections ``dets`` (indices into ``boxes``): IoU, then buffered IoU.

        With a ``buffer``, the pairs plain IoU leaves get the buffered second chance, checked by
        appearance (people who moved far since the last update).

        Returns:
            As :func:`linear_assignment`: ``(K, 2)`` ``(track position, position in dets)`` pairs and
            the track and ``dets`` positions left over.
        """
        cfg = self.config
        pairs, left_t, left_d = self._associate(tracks, boxes[dets], cfg.match_iou)
        if cfg.buffer <= 0:
            return pairs, left_t, left_d
        more, left_t2, left_d2 = self._associate([tracks[i] for i in left_t], boxes[dets[left_d]],
                                                 cfg.match_iou, cfg.buffer, feats(dets[left_d]))
        pairs = np.concatenate([pairs, np.stack([left_t[more[:, 0]], left_d[more[:, 1]]], axis=1)])
        return pairs, left_t[left_t2], left_d[left_d2]

    def _associate(self, tracks: list[_Track], det_boxes: np.ndarray, min_iou: float, buffer: float = 0.0,
                   looks: Callable[[np.ndarray], np.ndarray] | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Match tracks' predicted boxes to detection boxes by IoU (see :func:`linear_assignment`).

        With ``buffer``, by buffered IoU; with ``looks`` (ReID vectors of detections by column index)
        too, pairs whose appearance differs by more than ``appearance`` are excluded; only the
        detections that have a track within reach and a track that has an appearance are read.
        """
        predicted = xyah_to_xyxy(np.array([t.kf.xyah for t in tracks]).reshape(-1, 4))
        if buffer <= 0:
            return linear_assignment(1.0 - iou_matrix(predicted, det_boxes), 1.0 - min_iou)
        cost = 1.0 - iou_matrix(buffered(predicted, buffer), buffered(det_boxes, buffer))
        known = np.array([t.feature is not None for t in tracks], bool)
        reach = cost <= 1.0 - min_iou
        cols = np.flatnonzero(reach[known].any(axis=0)) if known.any() else np.zeros(0, np.int64)
        if looks is not None and len(cols):
            rows = np.flatnonzero(known)
            vectors = looks(cols).astype(np.float64)
            sim = np.stack([tracks[i].feature for i in rows]) @ vectors.T
            unlike = (1.0 - sim > self.config.appearance) & np.any(vectors, axis=1)[None, :]
            sub = cost[np.ix_(rows, cols)]
            cost[np.ix_(rows, cols)] = np.where(unlike, np.inf, sub)
        return linear_assignment(cost, 1.0 - min_iou)

    def __repr__(self) -> str:
        cfg = self.config
        fields = ", ".join(f"{f.name}={getattr(cfg, f.name)}" for f in dataclasses.fields(cfg))
        return f"ByteTracker({fields})"


# --------------------------------------------------------------------------- registry


class BufferedByteTracker(ByteTracker):
    """The default: :class:`ByteTracker` made for a few processed frames a second.

    Buffered second chances (``buffer=0.5``) checked by appearance (``appearance=0.3``),
    confirmation on the second hit (``min_hits=2``, ByteTrack's own rule) and tentative tracks
    kept alive by low-confidence boxes (``tentative_low``). Chosen by measurement at the default
    3 processed frames a second (README, Indexing speed): on vtest plain ByteTrack cut the people
    into 52 tracks and lost the sample query's first 2 s; buffered matching alone joined them
    into 35 but let a standing man's track take over the sample person walking past at stride
    1-2, which the appearance check stops; the second-hit confirmation and the low-confidence
    boxes found 96-100 % of the reference tracks on the 1080p and mostly-empty renderings where
    three hits found 89-96 % (this detector's scores of walking people hover about 0.3-0.6).
    """

    def __init__(self, *, buffer: float = 0.5, appearance: float = 0.3, min_hits: int = 2,
                 tentative_low: bool = True, **kwargs: Any) -> None:
        super().__init__(buffer=buffer, appearance=appearance, min_hits=min_hits, tentative_low=tentative_low,
                         **kwargs)


TRACKERS: dict[str, type[ByteTracker]] = {"bytetrack": ByteTracker, "bytetrack-buffered": BufferedByteTracker}
"""Trackers by name; each is created with keyword settings and implements :class:`core.types.Tracker`."""

DEFAULT_TRACKER = "bytetrack-buffered"
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
