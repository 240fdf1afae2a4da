"""From scored tracks to hits: one hit per person in one video, with all of their segments.

Scores: a track's score is its best cosine to the query over its stored embeddings, shown as
a **similarity** in ``[0, 1]`` (:func:`similarity`: the cosine clipped to ``[0, 1]``; the
shipped OSNet models end in a ReLU, so their cosines are already in that range).

People: the tracks of one run that ``core.linking`` linked are one person; a track of a run
not linked yet (or a search made with ``people=False``) is a person on its own. A person's
hit takes the score, best frame and box of their best-scoring track (``track_id``), and the
segments of all their tracks (``track_ids``).

Segments: a person's sightings (processed frames in which one of their tracks was matched)
are split into time segments wherever two consecutive sightings are more than
:func:`segment_gap_frames` frames apart: ``max(2 * stride, round(fps *``
:data:`SEGMENT_GAP_S` ``))``. Shorter gaps (a missed detection, a brief occlusion) stay
inside one segment; a person lost for longer and found again gives a new segment.
``start_s``/``end_s`` are the times of the first and last sighting of the segment.

Photos: in a photo collection a person is one detection in one photo (``core.photo_index``;
its run is not linked), so a hit is a photo with the person boxed, ``photo_path`` its file.

Marks: a hit is ``"confirmed"`` when one of its tracks is confirmed for the query, else
``"rejected"`` when one is rejected. Confirmed hits come first whatever their score,
rejected ones are set apart (:attr:`PersonHits.rejected`), never among the hits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from core.store import Store, hit_mark
from core.types import Hit, Segment

SEGMENT_GAP_S = 1.0
"""Sightings more than this many seconds apart (and more than two strides) start a new segment."""


def similarity(cosine: np.ndarray | float) -> np.ndarray:
    """Map cosine similarity to the user-facing similarity in ``[0, 1]`` (clip at 0 and 1).

    Args:
        cosine: Cosine similarities in ``[-1, 1]`` (any shape).

    Returns:
        float32 array of the same shape.
    """
    return np.clip(np.asarray(cosine, np.float32), 0.0, 1.0)


def segment_gap_frames(fps: float, stride: int) -> int:
    """Largest frame distance between two sightings that still belong to one segment.

    Args:
        fps: Frames per second of the video.
        stride: Processing stride of the indexing run.

    Returns:
        ``max(2 * stride, round(fps * SEGMENT_GAP_S))``.
    """
    by_time = int(round(fps * SEGMENT_GAP_S)) if fps and fps > 0 else 0
    return max(2 * max(int(stride), 1), by_time)


def split_segments(frames: np.ndarray, times_s: np.ndarray, max_gap: int) -> tuple[Segment, ...]:
    """Split sightings into continuous segments.

    Args:
        frames: ``(N,)`` increasing frame indices of the sightings (N >= 1).
        times_s: ``(N,)`` their times in seconds.
        max_gap: Consecutive sightings more than this many frames apart start a new segment.

    Returns:
        Segments in time order; each spans from its first to its last sighting.
    """
    frames = np.asarray(frames, np.int64)
    times_s = np.asarray(times_s, np.float64)
    if len(frames) == 0:
        return ()
    cuts = np.flatnonzero(np.diff(frames) > max_gap) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts - 1, [len(frames) - 1]])
    return tuple(Segment(start_s=float(times_s[a]), end_s=float(times_s[b]), start_frame=int(frames[a]),
                         end_frame=int(frames[b])) for a, b in zip(starts, ends, strict=True))


@dataclass(frozen=True)
class VideoRun:
    """What assembling hits needs to know of a searched run.

    Attributes:
        video_id: The run's video.
        video_path: Its path as last seen.
        fps: Its frames per second.
        stride: The run's processing stride.
        photos: The video is a photo collection (hits then name their photo, ``Hit.photo_path``).
    """

    video_id: int
    video_path: str
    fps: float
    stride: int
    photos: bool = False


@dataclass(frozen=True)
class PersonHits:
    """Hits of a search, each with its tracks' database ids (best-matching first).

    Attributes:
        hits: ``(track_pks, hit)``: confirmed hits first, then the others best first.
        rejected: ``(track_pks, hit)`` of the hits the user rejected, best first.
    """

    hits: tuple[tuple[tuple[int, ...], Hit], ...]
    rejected: tuple[tuple[tuple[int, ...], Hit], ...]


def person_hits(store: Store, scored: Mapping[int, tuple[float, int]], runs: Mapping[int, VideoRun], *,
                marks: Mapping[int, str] | None = None, people: bool = True, top_k: int | None = None,
                ) -> PersonHits:
    """Group scored tracks into people and make their hits.

    Args:
        store: The library.
        scored: ``{track_pk: (cosine, frame of the best-matching embedding)}``.
        runs: ``{run_id: VideoRun}`` of the searched runs.
        marks: ``{track_pk: "confirmed" | "rejected"}`` for the query.
        people: Group linked tracks into one hit (``False``: one hit per track, as before linking).
        top_k: Most unmarked hits kept (confirmed and rejected ones are all kept).

    Returns:
        The hits and the rejected hits.
    """
    marks = dict(marks or {})
    tracks = store.get_tracks(list(scored))
    person_of = store.people_of(list(scored)) if people else {}
    members_of = store.person_tracks(sorted(set(person_of.values()))) if person_of else {}
    groups: dict[tuple, list[int]] = {}
    for pk in scored:
        if pk in tracks:
            key = person_of.get(pk, ("track", pk))
            groups.setdefault(key, members_of.get(key, [pk]))
    all_members = sorted({pk for m in groups.values() for pk in m})
    sightings = store.sightings_of(all_members)
    member_tracks = store.get_tracks([pk for pk in all_members if pk not in tracks]) | tracks
    made = []
    for members in groups.values():
        members = [pk for pk in members if pk in sightings]
        best = max((pk for pk in members if pk in scored), key=lambda pk: (scored[pk][0], -pk))
        cos, frame = scored[best]
        track = member_tracks[best]
        run = runs[track.run_id]
        seen = sightings[best]
        at = int(np.argmin(np.abs(seen.frames - frame)))
        frames = np.concatenate([sightings[pk].frames for pk in members])
        times = np.concatenate([sightings[pk].times_s for pk in members])
        order = np.argsort(frames, kind="stable")
        in_time = sorted(members, key=lambda pk: (member_tracks[pk].first_frame, member_tracks[pk].track_id))
        hit = Hit(video_id=run.video_id, video_path=run.video_path, track_id=track.track_id,
                  score=float(similarity(cos)),
                  segments=split_segments(frames[order], times[order],
                                          segment_gap_frames(run.fps, run.stride)),
                  best_frame=int(seen.frames[at]), best_time_s=float(seen.times_s[at]),
                  best_box=tuple(float(v) for v in seen.boxes[at]),  # type: ignore[arg-type]
                  track_ids=tuple(member_tracks[pk].track_id for pk in in_time),
                  mark=hit_mark(members, marks))
        made.append(((best, *[pk for pk in members if pk != best]), hit))
    photo_of = store.photo_paths([(h.video_id, h.best_frame) for _, h in made
                                  if any(r.photos and r.video_id == h.video_id for r in runs.values())])
    for i, (pks, h) in enumerate(made):
        if (h.video_id, h.best_frame) in photo_of:
            path, taken = photo_of[(h.video_id, h.best_frame)]
            made[i] = (pks, replace(h, photo_path=path, photo_taken=taken))
    made.sort(key=lambda x: (x[1].mark != "confirmed", -x[1].score, x[1].video_id, x[1].track_id))
    kept = [m for m in made if m[1].mark == "confirmed"]
    others = [m for m in made if m[1].mark == ""]
    kept += others if top_k is None else others[:top_k]
    return PersonHits(hits=tuple(kept), rejected=tuple(m for m in made if m[1].mark == "rejected"))
