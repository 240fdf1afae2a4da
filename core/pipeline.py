"""Indexing: decode -> detect -> track -> choose crops -> embed -> store. The only place wiring the stages.

:func:`index_video` is a generator of :class:`core.types.IndexProgress`. Per video and
per *settings key* (hash of both model files' sha256, their result-relevant
configuration, the tracker's configuration and the result-relevant
:class:`IndexSettings`) there is one run in the store: a finished run makes a repeat
call a no-op, other settings make a new run, an interrupted run is resumed.

Flow. Frames ``0, stride, 2*stride, ...`` are decoded, detected in batches of
``det_batch`` frames and fed to the tracker one by one. Each confirmed track collects
its sightings (every box) and up to ``candidates_per_track`` candidate crops, chosen
for :func:`crop_quality` (confident, large, not cut by the image border, not covered
by other people) and spread over the track's life: when the candidates overflow, of
the two closest in time the worse one goes. A track whose tracker id has not been
matched for ``track_gap`` processed frames (at least the tracker's own ``max_age``
when it has one) has ended: of its candidates, the best of each of
``crops_per_track`` equal time bins are kept (empty bins filled by the best others),
and it is written whole at the next checkpoint. Tracks with fewer than
``min_track_sightings`` sightings are dropped as noise (a single-frame track is
nearly always a detector glitch; two processed frames of a person are kept), and so
is a track with no usable crop. Track ids in the store are the pipeline's own,
1, 2, 3, ... in order of first confirmed appearance, so they stay unique even if a
tracker reused an id.

Crops are copied (at most ``candidates_per_track`` per live track, each no larger
than the embedder's input, so memory stays bounded) and embedded only when the
track has ended, ``embed_batch`` crops per call: exactly ``crops_per_track``
embeddings per track are computed, none wasted.

Resume design. Nothing is written between *checkpoints*. A checkpoint happens after
every ``commit_every`` processed frames (a multiple of ``det_batch``), on cancel, and
at the end; it is one transaction (:meth:`core.store.Store.checkpoint`) holding (a)
every track that ended since the previous checkpoint with all its sightings and
embeddings, (b) ``frames_done`` = last processed frame + 1, and (c) the run *state*:
a zlib-compressed pickle of the tracker object and of the live tracks (sightings and
candidate crops, lossless) plus the counters. A track is therefore either entirely in
the database or entirely in the state blob, never half-written. On resume (after a
cancel, an error, or a killed process: SQLite rolls back an unfinished transaction)
the state is loaded and decoding restarts at the next processed frame. Batches and
checkpoints are counted in processed frames from the start of the video, with the
run's stored ``det_batch``/``commit_every``, so a resumed run detects the same frame
batches, and detection, tracking and embedding are deterministic: the result equals
an uninterrupted run (``tests/core/test_pipeline.py`` proves it with a SIGKILLed
process). A state that cannot be unpickled, or was written by another version of
the program (``core.__version__``), restarts the run from frame 0, and the first
progress item's ``note`` says why. States are read by :func:`core.safe_pickle.loads`,
which builds only the engine's own kinds of objects (a crafted library runs no code).

One indexer per run: while a run is indexed, its operating-system file lock
(``<db>.locks/video<id>-<settings key>.lock``, :mod:`filelock`) is held, so a second
program, window or thread asking for the same video, library and settings gets a
:class:`~core.errors.BusyError` at once and changes nothing. The operating system
drops the lock when the process ends, even when it is killed, so a stale lock never
blocks a resume.

Cancel (``cancel.is_set()``) is checked after every decoded frame; frames of an
unfinished detection batch are dropped (they are re-read on resume), a checkpoint
with status ``cancelled`` is written and one last progress item is yielded. Closing
the generator early counts as a cancel. An exception marks the run ``failed`` (its
last checkpoint stays, so the next call resumes) and propagates; an error of the library
itself (a full disk, a lock held too long) propagates without another write.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pickle
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import filelock
import numpy as np

from core import __version__, safe_pickle
from core.errors import BusyError, ReidSearchError, StoreError
from core.fileio import sha256_file
from core.store import NewTrack, RunRecord, Store
from core.types import Detections, Detector, Embedder, Frame, IndexProgress, Tracker
from core.video import VideoSource, fingerprint, open_source

STAGES = ("decode", "detect", "track", "embed", "write")
"""Stage names of ``IndexProgress.stage_s``, in pipeline order."""

STATE_VERSION = 2
"""Layout version of the pickled resume state."""

_EXECUTION_FIELDS = ("det_batch", "embed_batch", "commit_every")


@dataclass(frozen=True)
class IndexSettings:
    """How a video is indexed.

    Fields that change the result are part of the run's settings key; ``det_batch``,
    ``embed_batch`` and ``commit_every`` only change speed and checkpoint spacing (a
    resumed run keeps the values it started with).

    Attributes:
        stride: Process every ``stride``-th frame.
        crops_per_track: K, embeddings kept per track.
        candidates_per_track: Candidate crops held per live track (>= K), spread over its life.
        min_track_sightings: Tracks seen in fewer processed frames are dropped as noise.
        track_gap: Processed frames without a match after which a track has ended (raised to
            the tracker's ``max_age`` + 1 when the tracker has that attribute).
        full_quality_height: Box height in pixels from which size no longer improves quality.
        border_margin: A box within this many pixels of the image border counts as cut.
        min_crop_size: ``(h, w)`` smallest box used as a crop.
        det_batch: Frames per detector call.
        embed_batch: Crops per embedder call.
        commit_every: Processed frames between checkpoints (rounded up to a multiple of ``det_batch``).
    """

    stride: int = 2
    crops_per_track: int = 4
    candidates_per_track: int = 8
    min_track_sightings: int = 2
    track_gap: int = 30
    full_quality_height: int = 128
    border_margin: int = 2
    min_crop_size: tuple[int, int] = (16, 8)
    det_batch: int = 4
    embed_batch: int = 32
    commit_every: int = 48

    def __post_init__(self) -> None:
        for name in ("stride", "crops_per_track", "min_track_sightings", "track_gap", "det_batch",
                     "embed_batch", "commit_every", "full_quality_height"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"IndexSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.candidates_per_track < self.crops_per_track:
            raise ValueError("IndexSettings.candidates_per_track must be >= crops_per_track")
        object.__setattr__(self, "min_crop_size", (int(self.min_crop_size[0]), int(self.min_crop_size[1])))
        rounded = -(-self.commit_every // self.det_batch) * self.det_batch
        object.__setattr__(self, "commit_every", rounded)

    def result_fields(self) -> dict[str, Any]:
        """The settings that change the result (part of the settings key)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in _EXECUTION_FIELDS}


# --------------------------------------------------------------------------- model identity


def model_identity(model: object) -> tuple[str, str]:
    """``(name, sha256)`` of a detector or embedder: its ``sha256`` attribute or its ``path`` file's digest.

    Raises:
        ValueError: The object has neither.
    """
    path = getattr(model, "path", None)
    sha = getattr(model, "sha256", None)
    name = getattr(model, "name", None) or (Path(path).stem if path else type(model).__name__)
    if not isinstance(name, str):
        name = Path(path).stem if path else type(model).__name__
    if sha is None:
        if path is None:
            raise ValueError(f"{type(model).__name__} has neither a sha256 nor a path attribute")
        sha = sha256_file(path, cached=True)
    return str(name), str(sha)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


_DETECTOR_ATTRS = ("conf", "iou", "person_classes", "person_ids", "merge_person_classes", "imgsz", "rect",
                   "end2end")
_EMBEDDER_ATTRS = ("input_size", "color_order", "mean", "std", "min_size")


def _config_of(obj: object, attrs: tuple[str, ...]) -> dict[str, Any]:
    return {a: _jsonable(getattr(obj, a)) for a in attrs if hasattr(obj, a)}


def tracker_config(tracker: object) -> dict[str, Any]:
    """Describe a fresh tracker: its ``config`` dataclass if it has one, else its public scalar attributes."""
    cfg = getattr(tracker, "config", None)
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        values = dataclasses.asdict(cfg)
    else:
        values = {k: v for k, v in vars(tracker).items()
                  if not k.startswith("_") and isinstance(v, (int, float, str, bool, tuple))}
    return {"type": f"{type(tracker).__module__}.{type(tracker).__qualname__}", **_jsonable(values)}


def run_settings(detector: Detector, embedder: Embedder, tracker: Tracker, settings: IndexSettings,
                 ) -> tuple[dict[str, Any], str]:
    """The settings recorded with a run and its settings key.

    Returns:
        ``(settings dict, settings_key)``; the key is the sha256 of the result-relevant part.
    """
    det_name, det_sha = model_identity(detector)
    reid_name, reid_sha = model_identity(embedder)
    relevant = {
        "detector": det_sha, "detector_config": _config_of(detector, _DETECTOR_ATTRS),
        "reid": reid_sha, "reid_config": _config_of(embedder, _EMBEDDER_ATTRS),
        "tracker": tracker_config(tracker), "settings": settings.result_fields(),
    }
    key = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()
    recorded = {**dataclasses.asdict(settings), "detector_name": det_name, "reid_name": reid_name,
                "detector_config": relevant["detector_config"], "reid_config": relevant["reid_config"],
                "tracker": relevant["tracker"]}
    return _jsonable(recorded), key


# --------------------------------------------------------------------------- crops


def crop_quality(box: np.ndarray, score: float, others: np.ndarray, width: int, height: int,
                 settings: IndexSettings) -> float:
    """How good a box is as a ReID crop (0 = unusable).

    ``score x min(1, h / full_quality_height) x (0.3 if cut by the border) x (0.5 if wider
    than tall / 1.2) x (1 - the largest fraction of the box covered by another person)``.

    Args:
        box: ``(4,)`` xyxy pixels.
        score: Detector confidence.
        others: ``(M, 4)`` boxes of the other people in the frame.
        width: Image width.
        height: Image height.
        settings: For ``full_quality_height``, ``border_margin``, ``min_crop_size``.

    Returns:
        The quality in ``[0, 1]``.
    """
    x1, y1 = max(float(box[0]), 0.0), max(float(box[1]), 0.0)
    x2, y2 = min(float(box[2]), float(width)), min(float(box[3]), float(height))
    w, h = x2 - x1, y2 - y1
    if not (math.isfinite(w) and math.isfinite(h)):
        return 0.0
    if h < settings.min_crop_size[0] or w < settings.min_crop_size[1]:
        return 0.0
    q = float(score) * min(1.0, h / settings.full_quality_height)
    m = settings.border_margin
    if box[0] <= m or box[1] <= m or box[2] >= width - m or box[3] >= height - m:
        q *= 0.3
    if h < 1.2 * w:
        q *= 0.5
    if len(others):
        ix = np.clip(np.minimum(others[:, 2], x2) - np.maximum(others[:, 0], x1), 0, None)
        iy = np.clip(np.minimum(others[:, 3], y2) - np.maximum(others[:, 1], y1), 0, None)
        q *= 1.0 - float(np.max(ix * iy)) / (w * h)
    return max(q, 0.0)


def _crop(image: np.ndarray, box: np.ndarray, input_size: tuple[int, int] | None) -> np.ndarray:
    """Copy a box out of the image; shrink it to the embedder input when larger (same result, less memory).

    The embedder resizes crops with ``cv2.INTER_LINEAR`` to its input size; resizing to exactly that size
    here first makes its own resize the identity, so the embedding does not change.
    """
    hh, ww = image.shape[:2]
    x1, y1 = max(int(math.floor(box[0])), 0), max(int(math.floor(box[1])), 0)
    x2, y2 = min(int(math.ceil(box[2])), ww), min(int(math.ceil(box[3])), hh)
    crop = image[y1:y2, x1:x2]
    if input_size is not None and crop.shape[0] * crop.shape[1] > input_size[0] * input_size[1]:
        return cv2.resize(crop, (input_size[1], input_size[0]), interpolation=cv2.INTER_LINEAR)
    return crop.copy()


@dataclass
class _Candidate:
    frame: int
    quality: float
    crop: np.ndarray = field(repr=False)


@dataclass
class _LiveTrack:
    """A track being followed: its sightings so far and its candidate crops (pickled in the state).

    ``track_id`` is the id the track gets in the store (the pipeline's own numbering, see the
    module notes); ``tracker_id`` is the id the tracker gave it.
    """

    track_id: int
    tracker_id: int
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    candidates: list[_Candidate] = field(default_factory=list)
    last_ordinal: int = 0

    def offer(self, frame: int, quality: float, capacity: int) -> _Candidate | None:
        """Add a candidate slot and prune to ``capacity``.

        Of the two candidates closest in time (the earliest such pair on ties) the lower-quality
        one goes (the later one on equal quality), which keeps good crops spread over the track.

        Returns:
            The new slot when it was kept (the caller fills in its crop), else ``None``.
        """
        new = _Candidate(frame, quality, np.empty((0, 0, 3), np.uint8))
        self.candidates.append(new)
        while len(self.candidates) > capacity:
            gaps = [b.frame - a.frame for a, b in zip(self.candidates, self.candidates[1:], strict=False)]
            i = int(np.argmin(gaps))
            a, b = self.candidates[i], self.candidates[i + 1]
            del self.candidates[i if a.quality < b.quality else i + 1]
        return new if any(c is new for c in self.candidates) else None

    def choose(self, k: int) -> list[_Candidate]:
        """Up to ``k`` candidates: the best of each of ``k`` equal time bins, then the best others."""
        if len(self.candidates) <= k:
            return list(self.candidates)
        first, last = self.frames[0], self.frames[-1]
        span = max(last - first + 1, 1)
        chosen: list[_Candidate] = []
        for b in range(k):
            lo, hi = first + span * b / k, first + span * (b + 1) / k
            in_bin = [c for c in self.candidates if lo <= c.frame < hi and c not in chosen]
            if in_bin:
                chosen.append(max(in_bin, key=lambda c: (c.quality, -c.frame)))
        rest = sorted((c for c in self.candidates if all(c is not x for x in chosen)),
                      key=lambda c: (-c.quality, c.frame))
        chosen += rest[: k - len(chosen)]
        return sorted(chosen, key=lambda c: c.frame)


@dataclass
class _State:
    """Everything needed to continue a run (pickled at each checkpoint)."""

    version: int
    code_version: str
    settings_key: str
    tracker: Tracker
    live: dict[int, _LiveTrack]
    next_track_id: int
    ordinal: int
    last_frame: int


# --------------------------------------------------------------------------- the generator


class _Timer:
    def __init__(self) -> None:
        self.spent = dict.fromkeys(STAGES, 0.0)

    def add(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.spent[stage] += now - start
        return now

    def items(self) -> tuple[tuple[str, float], ...]:
        return tuple((s, round(self.spent[s], 6)) for s in STAGES)


def index_video(source_path: str | Path, *, store: Store, detector: Detector, embedder: Embedder,
                tracker_factory: Callable[[], Tracker], settings: IndexSettings | None = None,
                cancel: threading.Event | None = None) -> Iterator[IndexProgress]:
    """Index one video (or image folder) into the store, resuming an interrupted run.

    Args:
        source_path: Video file or image folder.
        store: The library.
        detector: Person detector (identified by its ``path`` file's sha256 or ``sha256`` attribute).
        embedder: ReID embedder (same identification).
        tracker_factory: Makes a fresh tracker for a new run.
        settings: Indexing settings (default :class:`IndexSettings`).
        cancel: Set it to stop after the current frame; the run is checkpointed as ``cancelled``.

    Yields:
        Progress after every detection batch; the last item has ``done=True`` when the video was
        finished, or ``skipped=True`` (single item) when it already was.

    Raises:
        VideoError: The file is not a readable video (nothing is written then).
        BusyError: The same run is being indexed elsewhere right now (nothing is written then).
        ReidSearchError: Other user-facing errors (the run is marked failed, the database stays
            consistent and the next call resumes from the last checkpoint).
    """
    settings = settings or IndexSettings()
    source = open_source(source_path)
    try:
        yield from _index(source, store=store, detector=detector, embedder=embedder,
                          tracker_factory=tracker_factory, settings=settings, cancel=cancel)
    finally:
        source.close()


def _index(source: VideoSource, *, store: Store, detector: Detector, embedder: Embedder,
           tracker_factory: Callable[[], Tracker], settings: IndexSettings,
           cancel: threading.Event | None) -> Iterator[IndexProgress]:
    path_text = str(source.path)
    video = store.upsert_video(source.path, fingerprint(source.path), fps=source.fps,
                               frame_count=source.frame_count, width=source.width, height=source.height)
    fresh_tracker = tracker_factory()
    recorded, key = run_settings(detector, embedder, fresh_tracker, settings)
    lock = _run_lock(store, video.id, key, path_text)
    try:
        run = store.find_run(video.id, key)
        if run is not None and run.status == "done":
            yield IndexProgress(video_path=path_text, frames_done=run.frames_done,
                                frames_total=run.frames_total, fps=0.0, eta_s=0.0, tracks=run.tracks_done,
                                done=True, skipped=True)
            return
        if run is None:
            _, reid_sha = model_identity(embedder)
            det_name, det_sha = model_identity(detector)
            run = store.create_run(video.id, detector_name=det_name, detector_sha256=det_sha,
                                   reid_name=recorded["reid_name"], reid_sha256=reid_sha,
                                   embedding_dim=int(embedder.dim), settings=recorded, settings_key=key,
                                   frames_total=source.frame_count)
        # a resumed run keeps the batch/checkpoint spacing it started with (same batches, same result)
        stored = run.settings
        exec_settings = dataclasses.replace(settings,
                                            **{f: stored[f] for f in _EXECUTION_FIELDS if f in stored})
        state, why = _load_state(store, run, key)
        note = None
        if state is None:
            if run.frames_done or run.tracks_done:
                note = f"{path_text}: {why}; indexing starts again from the first frame."
                store.reset_run(run.id)
                run = store.get_run(run.id)
            state = _State(STATE_VERSION, __version__, key, fresh_tracker, live={}, next_track_id=1,
                           ordinal=0, last_frame=-1)
        worker = _Indexer(source, store, run, detector, embedder, exec_settings, state)
        worker.note = note
        yield from worker.loop(cancel)
    finally:
        lock.release()


def run_lock_path(db_path: Path, video_id: int, key: str) -> Path:
    """The lock file of one run: ``<db>.locks/video<id>-<key[:16]>.lock``."""
    return db_path.with_name(db_path.name + ".locks") / f"video{video_id}-{key[:16]}.lock"


def _run_lock(store: Store, video_id: int, key: str, path_text: str) -> filelock.BaseFileLock:
    """Take the run's lock without waiting (see the module notes), or raise :class:`BusyError`.

    Returns:
        The acquired lock; the caller releases it.
    """
    path = run_lock_path(store.path, video_id, key)
    lock = filelock.FileLock(path, timeout=0)
    try:
        path.parent.mkdir(exist_ok=True)
        lock.acquire()
    except filelock.Timeout:
        raise BusyError(f"{path_text}: is being indexed into {store.path} right now by another program or "
                        "window (same models and settings); wait for it to finish, or stop it, then "
                        "try again.") from None
    except OSError as err:
        raise StoreError(f"{path.parent}: cannot create the indexing lock ({err.strerror or err}).") from None
    return lock


def _load_state(store: Store, run: RunRecord, key: str) -> tuple[_State | None, str]:
    """The run's resume state, or ``None`` and why it cannot be used (see the module notes)."""
    blob = store.load_run_state(run.id)
    if blob is None:
        return None, "the interrupted run kept no saved progress"
    try:
        state = safe_pickle.loads(zlib.decompress(blob))
    except Exception:  # noqa: BLE001 - any unreadable state means: start the run again
        return None, "the saved progress of the interrupted run cannot be read (damaged)"
    if not isinstance(state, _State) or state.version != STATE_VERSION or state.code_version != __version__:
        made_by = getattr(state, "code_version", "?")
        return None, (f"the saved progress of the interrupted run was written by another version of "
                      f"ReID Video Search ({made_by}; this is {__version__})")
    if state.settings_key != key:
        return None, "the saved progress of the interrupted run belongs to other settings"
    return state, ""


class _Indexer:
    """One pass over a video for one run (holds the live state between checkpoints)."""

    def __init__(self, source: VideoSource, store: Store, run: RunRecord, detector: Detector,
                 embedder: Embedder, settings: IndexSettings, state: _State) -> None:
        self.source, self.store, self.run = source, store, run
        self.detector, self.embedder, self.settings, self.state = detector, embedder, settings, state
        self.finished: list[_LiveTrack] = []
        self.timer = _Timer()
        size = getattr(embedder, "input_size", None)
        self.input_size = (int(size[0]), int(size[1])) if size is not None else None
        max_age = getattr(state.tracker, "max_age", None)
        self.gap = max(settings.track_gap, int(max_age) + 1 if isinstance(max_age, (int, float)) else 0)
        self.frames_total = max(run.frames_total, source.frame_count)
        self.start_frame = state.last_frame + 1
        self.ended = False
        self.t0 = time.perf_counter()
        self.note: str | None = None
        """Said once, on the next progress item (a restart instead of a resume)."""

    # -- per frame ---------------------------------------------------------------------------

    def _track_frame(self, frame: Frame, dets: Detections) -> None:
        state, settings = self.state, self.settings
        state.ordinal += 1
        state.last_frame = frame.index
        tracked = state.tracker.update(dets, frame.image, self._detection_embeddings(frame, dets))
        hh, ww = frame.image.shape[:2]
        for i in range(len(tracked)):
            tid = int(tracked.track_ids[i])
            live = state.live.get(tid)
            if live is None:
                live = state.live[tid] = _LiveTrack(track_id=state.next_track_id, tracker_id=tid)
                state.next_track_id += 1
            box = tracked.boxes[i]
            score = float(tracked.scores[i])
            live.frames.append(frame.index)
            live.times.append(float(frame.time_s))
            live.boxes.append(tuple(float(v) for v in box))
            live.scores.append(score)
            live.last_ordinal = state.ordinal
            others = np.delete(dets.boxes, int(tracked.det_index[i]), axis=0) if len(dets) else dets.boxes
            quality = crop_quality(box, score, others, ww, hh, settings)
            slot = live.offer(frame.index, quality, settings.candidates_per_track) if quality > 0 else None
            if slot is not None:
                slot.crop = _crop(frame.image, box, self.input_size)
        ended = [tid for tid, t in state.live.items() if state.ordinal - t.last_ordinal >= self.gap]
        for tid in ended:
            self.finished.append(state.live.pop(tid))

    def _detection_embeddings(self, frame: Frame, dets: Detections) -> np.ndarray | None:
        """``(N, D)`` vectors of the detections for a tracker that ``needs_embeddings``, else ``None``.

        Rows of boxes the embedder skips (too small, outside the image) stay zero.
        """
        if not getattr(self.state.tracker, "needs_embeddings", False):
            return None
        out = np.zeros((len(dets), self.embedder.dim), np.float32)
        if len(dets):
            emb = self.embedder.embed(frame.image, dets.boxes)
            out[emb.kept] = emb.vectors
        return out

    # -- checkpoints -------------------------------------------------------------------------

    def _embed_finished(self) -> list[NewTrack]:
        settings = self.settings
        keep: list[tuple[_LiveTrack, list[_Candidate]]] = []
        for t in sorted(self.finished, key=lambda t: t.track_id):
            chosen = t.choose(settings.crops_per_track)
            if len(t.frames) >= settings.min_track_sightings and chosen:
                keep.append((t, chosen))
        self.finished = []
        crops = [c.crop for _, chosen in keep for c in chosen]
        vectors = [self.embedder.embed_crops(crops[i:i + settings.embed_batch])
                   for i in range(0, len(crops), settings.embed_batch)]
        all_vec = np.concatenate(vectors) if vectors else np.zeros((0, self.embedder.dim), np.float32)
        out, at = [], 0
        for t, chosen in keep:
            vec = all_vec[at:at + len(chosen)]
            at += len(chosen)
            out.append(NewTrack(track_id=t.track_id, frames=t.frames, times_s=t.times, boxes=t.boxes,
                                scores=t.scores, emb_frames=[c.frame for c in chosen], vectors=vec,
                                quality=[c.quality for c in chosen]))
        return out

    def _checkpoint(self, status: str, *, final: bool = False, error: str | None = None) -> None:
        if final:
            self.finished.extend(self.state.live.values())
            self.state.live = {}
        t = time.perf_counter()
        tracks = self._embed_finished()
        t = self.timer.add("embed", t)
        state = None
        if not final:
            state = zlib.compress(pickle.dumps(self.state, protocol=pickle.HIGHEST_PROTOCOL), 1)
        total = self.frames_total
        if final:
            decoded = self.source.frames_decoded
            total = decoded if decoded is not None else max(total, self.state.last_frame + 1)
            self.frames_total = total
        frames_done = total if final else self.state.last_frame + 1
        self.run = self.store.checkpoint(self.run.id, frames_done=frames_done, tracks=tracks,
                                         state=state, status=status, error=error, frames_total=total)
        self.timer.add("write", t)

    def _progress(self, *, done: bool = False) -> IndexProgress:
        frames_done = self.frames_total if done else self.state.last_frame + 1
        elapsed = time.perf_counter() - self.t0
        fps = (frames_done - self.start_frame) / elapsed if elapsed > 0 else 0.0
        eta = None
        if done:
            eta = 0.0
        elif fps > 0 and self.frames_total > 0:
            eta = max(self.frames_total - frames_done, 0) / fps
        note, self.note = self.note, None
        return IndexProgress(video_path=str(self.source.path), frames_done=frames_done,
                             frames_total=self.frames_total, fps=fps, eta_s=eta, stage_s=self.timer.items(),
                             tracks=self.run.tracks_done, done=done,
                             warning=self.source.truncation_warning if done else None, note=note)

    # -- main loop ---------------------------------------------------------------------------

    def loop(self, cancel: threading.Event | None) -> Iterator[IndexProgress]:
        settings = self.settings
        start = self.state.last_frame + settings.stride if self.state.last_frame >= 0 else 0
        if self.run.status != "running":
            self.store.set_run_status(self.run.id, "running")
        frames = self.source.iter_frames(settings.stride, start)
        batch: list[Frame] = []
        try:
            while True:
                t = time.perf_counter()
                frame = next(frames, None)
                self.timer.add("decode", t)
                if cancel is not None and cancel.is_set():
                    self._checkpoint("cancelled")
                    self.ended = True
                    yield self._progress()
                    return
                if frame is not None:
                    batch.append(frame)
                    if len(batch) < settings.det_batch:
                        continue
                if batch:
                    self._process(batch)
                    batch = []
                    if self.state.ordinal % settings.commit_every == 0:
                        self._checkpoint("running")
                if frame is None:
                    self._checkpoint("done", final=True)
                    self.ended = True
                    yield self._progress(done=True)
                    return
                yield self._progress()
        except GeneratorExit:
            if not self.ended:
                self._checkpoint("cancelled")
            raise
        except StoreError:
            raise  # the library itself failed (disk full, busy, damaged): its last checkpoint stands
        except ReidSearchError as err:
            self.store.set_run_status(self.run.id, "failed", str(err))
            raise
        except Exception as err:
            self.store.set_run_status(self.run.id, "failed", f"{type(err).__name__}: {err}")
            raise

    def _process(self, batch: list[Frame]) -> None:
        t = time.perf_counter()
        dets = self.detector.detect([f.image for f in batch])
        t = self.timer.add("detect", t)
        for frame, d in zip(batch, dets, strict=True):
            self._track_frame(frame, d)
        self.timer.add("track", t)
