"""Link the tracks of one video into people.

The tracker cuts a person into several tracks whenever it loses them (an occlusion, a
crossing, a few missed detections, leaving and coming back). Linking joins the tracks of
one indexing run that are the same person, from what the library already holds: the
stored ReID embeddings and where and when each track starts and ends. Nothing is decoded
or embedded again, so it costs a small fraction of indexing (``scripts/benchmark.py``).

Rules (:class:`LinkSettings`; the thresholds were calibrated on real data by
``scripts/calibrate_threshold.py --links``, see the README):

* **Appearance**: a track is its *centroid*, the L2-normalised mean of its K stored
  embeddings; two groups of tracks are as alike as the mean cosine over all their pairs of
  tracks (average linkage, which is the dot product of the groups' mean centroids).
* **Never two people at once**: two tracks whose time spans overlap are never in one
  person, directly or through other tracks: every track of one group must be apart in time
  from every track of the other (a cannot-link constraint checked at each merge, so no
  chain of pairs can join two tracks seen in the same frame, as union-find over pairs could).
* **Short gaps** (the later track starts at most ``short_gap_s`` after the earlier one
  ends): the place where the later track appears must be where the earlier one left, or
  where its walk leads. Foot points (box bottom centre, in box heights) are compared three
  ways: as they are, the earlier track's end carried forward by its velocity over its last
  second, and the later track's start carried back by its velocity over its first second;
  the closest of the three must be within ``reach_base + drift_per_s * gap``, and the plain
  distance within ``reach_base + max_speed * gap`` (nobody runs faster). The appearance must
  then reach ``short_threshold``. A short gap whose motion is implausible forbids the merge
  (it is another person nearby).
* **Long gaps** (a re-entry): appearance alone, at the stricter ``long_threshold``.

The merge is greedy agglomerative: the most alike pair of groups that the rules allow is
merged first, until no allowed pair is left. When two groups interleave in time, each
place where the merged timeline passes from one group to the other is a junction: one
implausible short junction forbids the merge; at least one plausible short junction lets
``short_threshold`` apply, otherwise ``long_threshold`` does.
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from core.store import LinkingRecord, Sightings, Store
from core.store.records import split_by_track


@dataclass(frozen=True)
class LinkSettings:
    """Thresholds of :func:`link_tracks` (see the module notes; calibrated with the default ReID model).

    Attributes:
        short_threshold: Appearance needed across a short gap with plausible motion.
        long_threshold: Appearance needed across a long gap (appearance only).
        short_gap_s: Gaps up to this many seconds are short.
        reach_base: Foot points may be this many box heights apart across any short gap ...
        drift_per_s: ... plus this many box heights per second of gap (after carrying them by velocity).
        max_speed: Box heights per second nobody exceeds (a fast walk is about 1.1 on vtest).
        velocity_s: Seconds at each end of a track its velocity is measured over.
        version: Bumped when the rules change, so runs linked by older rules are linked again.
    """

    short_threshold: float = 0.80
    long_threshold: float = 0.88
    short_gap_s: float = 4.0
    reach_base: float = 0.5
    drift_per_s: float = 0.5
    max_speed: float = 2.0
    velocity_s: float = 1.0
    version: int = 1


@dataclass(frozen=True)
class TrackEnds:
    """Where, when and how fast each track of a run starts and ends (what linking needs besides appearance).

    Attributes:
        track_pks: ``(N,)`` int64 track database ids.
        track_ids: ``(N,)`` int64 tracker ids.
        first_frames: ``(N,)`` int64 first processed frame of each track.
        last_frames: ``(N,)`` int64 last processed frame.
        first_s: ``(N,)`` float64 time of the first frame.
        last_s: ``(N,)`` float64 time of the last frame.
        first_boxes: ``(N, 4)`` float32 xyxy box in the first frame.
        last_boxes: ``(N, 4)`` float32 xyxy box in the last frame.
        first_velocity: ``(N, 2)`` float64 foot-point velocity (pixels/s) over the track's first second.
        last_velocity: ``(N, 2)`` float64 foot-point velocity over its last second.
    """

    track_pks: np.ndarray
    track_ids: np.ndarray
    first_frames: np.ndarray
    last_frames: np.ndarray
    first_s: np.ndarray
    last_s: np.ndarray
    first_boxes: np.ndarray
    last_boxes: np.ndarray
    first_velocity: np.ndarray
    last_velocity: np.ndarray

    def __len__(self) -> int:
        return len(self.track_pks)

    def take(self, rows: Sequence[int]) -> TrackEnds:
        """The tracks at positions ``rows``."""
        return TrackEnds(*(np.asarray(getattr(self, f))[list(rows)] for f in self.__dataclass_fields__))

    @classmethod
    def from_sightings(cls, sightings: Mapping[int, Sightings], velocity_s: float) -> TrackEnds:
        """Ends of tracks from their sightings (all of them, or those near the ends), ordered by tracker id.

        Args:
            sightings: ``{track_pk: sightings by frame}``.
            velocity_s: Seconds at each end the velocity is measured over.
        """
        order = sorted(sightings, key=lambda pk: int(sightings[pk].track_ids[0]))
        rows = [_ends_of(pk, sightings[pk], velocity_s) for pk in order]
        cols = list(zip(*rows, strict=True)) if rows else [()] * 10
        dtypes = (np.int64, np.int64, np.int64, np.int64, np.float64, np.float64, np.float32, np.float32,
                  np.float64, np.float64)
        shapes = ((-1,), (-1,), (-1,), (-1,), (-1,), (-1,), (-1, 4), (-1, 4), (-1, 2), (-1, 2))
        return cls(*(np.array(c, d).reshape(sh) for c, d, sh in zip(cols, dtypes, shapes, strict=True)))


def _foot(box: np.ndarray) -> np.ndarray:
    """``(..., 2)`` bottom centre of ``(..., 4)`` xyxy boxes."""
    box = np.asarray(box, np.float64)
    return np.stack([(box[..., 0] + box[..., 2]) / 2.0, box[..., 3]], axis=-1)


def _velocity(times: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Least-squares foot-point velocity (pixels/s) of a few sightings (0 when they span no time)."""
    t = np.asarray(times, np.float64)
    if len(t) < 2 or t[-1] - t[0] <= 0:
        return np.zeros(2)
    feet = _foot(boxes)
    tc = t - t.mean()
    return (tc[:, None] * (feet - feet.mean(axis=0))).sum(axis=0) / float((tc ** 2).sum())


def _ends_of(pk: int, s: Sightings, velocity_s: float) -> tuple:
    head = s.times_s <= s.times_s[0] + velocity_s
    tail = s.times_s >= s.times_s[-1] - velocity_s
    return (pk, int(s.track_ids[0]), int(s.frames[0]), int(s.frames[-1]), float(s.times_s[0]),
            float(s.times_s[-1]), s.boxes[0], s.boxes[-1], _velocity(s.times_s[head], s.boxes[head]),
            _velocity(s.times_s[tail], s.boxes[tail]))


DEFAULT_LINK_SETTINGS = LinkSettings()
"""The settings the engine links with."""


def centroids(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """``(N, D)`` L2-normalised mean of each ``(K_i, D)`` array of track embeddings."""
    out = np.stack([np.asarray(v, np.float64).mean(axis=0) for v in vectors])
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)


class _Linker:
    """State of one constrained agglomerative merge (see :func:`link_tracks`)."""

    def __init__(self, ends: TrackEnds, vectors: np.ndarray, settings: LinkSettings) -> None:
        self.ends, self.settings = ends, settings
        self.vectors = np.asarray(vectors, np.float64)
        n = len(ends)
        self.members: dict[int, list[int]] = {i: [i] for i in range(n)}
        self.sums = {i: self.vectors[i].copy() for i in range(n)}
        self.version = dict.fromkeys(range(n), 0)

    def similarity(self, a: int, b: int) -> float:
        """Average-linkage similarity of groups ``a`` and ``b``."""
        return float(self.sums[a] @ self.sums[b]) / (len(self.members[a]) * len(self.members[b]))

    def _overlap(self, i: int, j: int) -> bool:
        e = self.ends
        return bool(e.first_frames[i] <= e.last_frames[j] and e.first_frames[j] <= e.last_frames[i])

    def _plausible(self, earlier: int, later: int, gap_s: float) -> bool:
        e, s = self.ends, self.settings
        a, b = e.last_boxes[earlier], e.first_boxes[later]
        height = max(((a[3] - a[1]) + (b[3] - b[1])) / 2.0, 1.0)
        left, came = _foot(a), _foot(b)
        plain = float(np.linalg.norm(came - left)) / height
        forward = float(np.linalg.norm(left + e.last_velocity[earlier] * gap_s - came)) / height
        back = float(np.linalg.norm(came - e.first_velocity[later] * gap_s - left)) / height
        return (min(plain, forward, back) <= s.reach_base + s.drift_per_s * gap_s
                and plain <= s.reach_base + s.max_speed * gap_s)

    def required(self, a: int, b: int) -> float | None:
        """Appearance threshold a merge of groups ``a`` and ``b`` needs, or ``None`` when it is forbidden."""
        if any(self._overlap(i, j) for i in self.members[a] for j in self.members[b]):
            return None
        e, s = self.ends, self.settings
        side = {i: 0 for i in self.members[a]} | {j: 1 for j in self.members[b]}
        timeline = sorted(side, key=lambda i: (e.first_frames[i], e.track_ids[i]))
        short_ok = False
        for earlier, later in zip(timeline, timeline[1:], strict=False):
            if side[earlier] == side[later]:
                continue
            gap_s = float(e.first_s[later] - e.last_s[earlier])
            if gap_s <= s.short_gap_s:
                if not self._plausible(earlier, later, gap_s):
                    return None
                short_ok = True
        return s.short_threshold if short_ok else s.long_threshold

    def merge(self, a: int, b: int) -> int:
        self.members[a] += self.members.pop(b)
        self.sums[a] = self.sums[a] + self.sums.pop(b)
        self.version[a] += 1
        del self.version[b]
        return a

    def run(self) -> list[list[int]]:
        s = self.settings
        floor = min(s.short_threshold, s.long_threshold)
        heap: list[tuple[float, int, int, int, int]] = []
        n = len(self.vectors)
        block = 1024
        for lo in range(0, n, block):  # candidate pairs, in blocks (an hour of video: thousands of tracks)
            sims = self.vectors[lo:lo + block] @ self.vectors.T
            for r, c in zip(*np.nonzero(sims >= floor), strict=True):
                i, j = lo + int(r), int(c)
                if i < j and not self._overlap(i, j):
                    heapq.heappush(heap, (-float(sims[r, c]), i, j, 0, 0))
        while heap:
            neg, a, b, va, vb = heapq.heappop(heap)
            if self.version.get(a) != va or self.version.get(b) != vb:
                continue  # one of the two groups has changed since this pair was pushed
            need = self.required(a, b)
            if need is None or -neg < need:
                continue
            g = self.merge(a, b)
            others = [k for k in self.members if k != g]
            if not others:
                break
            sims = np.array([self.sums[k] for k in others]) @ self.sums[g]
            sims /= np.array([len(self.members[k]) for k in others]) * len(self.members[g])
            for k, sim in zip(others, sims.tolist(), strict=True):
                if sim >= floor:
                    x, y = (g, k) if g < k else (k, g)
                    heapq.heappush(heap, (-sim, x, y, self.version[x], self.version[y]))
        return sorted((sorted(m) for m in self.members.values()), key=lambda m: m[0])


def link_tracks(ends: TrackEnds, vectors: np.ndarray, settings: LinkSettings = DEFAULT_LINK_SETTINGS,
                ) -> list[list[int]]:
    """Group the tracks of one run into people.

    Args:
        ends: Where and when each track starts and ends (N tracks).
        vectors: ``(N, D)`` L2-normalised track centroids (:func:`centroids`), same order.
        settings: The rules' thresholds.

    Returns:
        Groups of track positions (indices into ``ends``), each sorted, every track in exactly one.
    """
    if len(ends) != len(vectors):
        raise ValueError(f"{len(ends)} tracks but {len(vectors)} vectors")
    if len(ends) == 0:
        return []
    return _Linker(ends, vectors, settings).run()


def run_ends(store: Store, run_id: int, settings: LinkSettings = DEFAULT_LINK_SETTINGS) -> TrackEnds:
    """The ends of every track of a run, read from the sightings near each end only."""
    run = store.get_run(run_id)
    video = store.get_video(run.video_id)
    window = int(np.ceil(settings.velocity_s * (video.fps if video.fps > 0 else 30.0))) + 1
    near = split_by_track(store.sightings_near_ends(run_id, window))
    return TrackEnds.from_sightings(near, settings.velocity_s)


def link_run(store: Store, run_id: int, settings: LinkSettings = DEFAULT_LINK_SETTINGS) -> LinkingRecord:
    """Link the tracks of one run into people and store them (replacing an earlier linking of the run).

    Tracks without embeddings stay alone, and so does every detection of a photo collection's run
    (``core.photo_index``; its "tracks" are single detections of unrelated photos, where time
    and motion mean nothing): a search then gives one hit per person per photo.

    Returns:
        The stored linking.
    """
    t0 = time.perf_counter()
    ends = run_ends(store, run_id, settings)
    people = dict(zip(ends.track_pks.tolist(), ends.track_ids.tolist(), strict=True))
    photos = store.get_run(run_id).settings.get("kind") == "photos"
    stored = {} if photos else store.track_vectors(ends.track_pks)
    have = [i for i, pk in enumerate(ends.track_pks.tolist()) if pk in stored]
    if have:
        sub = ends.take(have)
        vectors = centroids([stored[int(pk)] for pk in sub.track_pks.tolist()])
        for group in link_tracks(sub, vectors, settings):
            person = int(min(sub.track_ids[group]))
            for i in group:
                people[int(sub.track_pks[i])] = person
    return store.save_people(run_id, people, settings=asdict(settings), elapsed_s=time.perf_counter() - t0)


def needs_linking(store: Store, run_ids: Sequence[int], settings: LinkSettings = DEFAULT_LINK_SETTINGS,
                  ) -> list[int]:
    """The runs among ``run_ids`` not linked yet, or linked with other settings (finished runs only)."""
    done = {r.id for r in store.list_runs(status="done")}
    linked = store.linkings(run_ids)
    current = json.dumps(asdict(settings), sort_keys=True)
    return [r for r in run_ids if r in done and (r not in linked or linked[r].settings_json != current)]
