"""Indexing: decode -> detect -> track -> choose crops -> embed -> store. The only place wiring the stages.

:func:`index_video` is a generator of :class:`core.types.IndexProgress`. Per video and
per *settings key* (hash of both model files' sha256, their result-relevant
configuration, the tracker's configuration and the result-relevant
:class:`~core.index_settings.IndexSettings`, see :mod:`core.index_settings`) there is one
run in the store: a finished run makes a repeat call a no-op, other settings make a new
run, an interrupted run is resumed.

Flow. The video's stride is the settings' fixed ``stride`` or, by default, the one that
processes ``rate`` frames per second of it (:meth:`IndexSettings.stride_for`; the run
records it as ``settings["stride"]``). Frames ``0, stride, 2*stride, ...`` are decoded and
letterboxed ahead by a thread (:mod:`core.prefetch`; the frames between are skipped with
``grab()`` alone), detected in batches of ``det_batch`` frames and fed to the tracker one
by one. With the motion gate on (:mod:`core.motion`) a batch's frames before its first
frame with motion are not shown to the detector while no track is *alive*: no live track
that has moved (more than half its height from where it was first seen) and no track
starting (the tracker holds no tentative track). The tracker gets those frames with no
detections, so it ages its tracks as usual. A person who walked in and stands still
therefore stays found (their track has moved, so the detector keeps running), one walking
in is found from the first frame that shows the motion, and something that has never
moved (a static object the detector takes for a person, or someone motionless since the
first frame) does not keep the detector running on an otherwise still scene: it is
looked at again, and tracked anew, whenever something moves.

Each confirmed track collects
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
every ``commit_every`` processed frames (a multiple of ``det_batch``), on cancel, and at
the end; it is one transaction (:meth:`core.store.Store.checkpoint`) holding (a) every
track that ended since the previous checkpoint with all its sightings and embeddings,
(b) ``frames_done`` = last processed frame + 1, and (c) the run *state*: a zlib-
compressed pickle of the tracker object, of the live tracks (sightings and candidate
crops, lossless), of the motion gate (its previous small frame) and the counters. A
track is therefore either entirely in the database or entirely in the state blob, never
half-written. On resume (after a cancel, an error, or a killed process: SQLite rolls
back an unfinished transaction) the state is loaded and decoding restarts at the next
processed frame. Batches and checkpoints are counted in processed frames from the start
of the video, with the run's stored ``det_batch``/``commit_every``, so a resumed run
detects the same frame batches, and detection, tracking and embedding are deterministic:
the result equals an uninterrupted run (``tests/core/test_pipeline.py`` proves it with a
SIGKILLed process). A state that cannot be unpickled, or was written by another version
of the program (``core.__version__``), restarts the run from frame 0, and the
first progress item's ``note`` says why. States are read by :func:`core.safe_pickle.loads`,
which builds only the engine's own kinds of objects (a crafted library runs no code).

One indexer per run: while a run is indexed, its operating-system file lock
(``<db>.locks/video<id>-<settings key>.lock``, :mod:`filelock`) is held, so a second
program, window or thread asking for the same video, library and settings gets a
:class:`~core.errors.BusyError` at once and changes nothing. The operating system
drops the lock when the process ends, even when it is killed, so a stale lock never
blocks a resume.

Cancel (``cancel.is_set()``) is checked after every processed frame taken from the
decoding thread; frames of an
unfinished detection batch are dropped (they are re-read on resume), a checkpoint
with status ``cancelled`` is written and one last progress item is yielded. Closing
the generator early counts as a cancel. An exception marks the run ``failed`` (its
last checkpoint stays, so the next call resumes) and propagates; an error of the library
itself (a full disk, a lock held too long) propagates without another write.
"""

from __future__ import annotations

import dataclasses
import pickle
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import __version__, safe_pickle
from core.crops import Candidate, LiveTrack, copy_crop, crop_quality, has_moved
from core.index_settings import (
    _EXECUTION_FIELDS,
    DEFAULT_RATE,
    IndexSettings,
    model_identity,
    run_settings,
    tracker_config,
)
from core.motion import MotionGate, small_grey
from core.prefetch import Inline, Prefetcher, Prepared
from core.run_lock import open_run, record_failure, run_lock_path, take_run_lock
from core.store import NewTrack, RunRecord, Store
from core.tracking import TENTATIVE
from core.types import (
    Detections,
    Detector,
    Embedder,
    Frame,
    IndexProgress,
    LazyEmbeddings,
    TrackedBoxes,
    Tracker,
)
from core.video import VideoSource, fingerprint, open_source

__all__ = ["DEFAULT_RATE", "STAGES", "IndexSettings", "crop_quality", "index_video", "model_identity",
           "run_lock_path", "run_settings", "tracker_config"]

_LiveTrack = LiveTrack  # the name the tests (and older code) use

STAGES = ("decode", "detect", "track", "embed", "write")
"""Stage names of ``IndexProgress.stage_s``, in pipeline order (``decode``: time waiting for the
decoding thread, the part of decoding that inference did not hide)."""

STATE_VERSION = 3
"""Layout version of the pickled resume state."""


@dataclass
class _State:
    """Everything needed to continue a run (pickled at each checkpoint).

    ``gate`` is the motion gate (``None`` when it is off); ``starting`` whether a track may be
    starting (after the last frame the detector saw, the tracker holds a tentative track).
    """

    version: int
    code_version: str
    settings_key: str
    tracker: Tracker
    live: dict[int, LiveTrack]
    next_track_id: int
    ordinal: int
    last_frame: int
    gate: MotionGate | None = None
    starting: bool = False


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
    recorded["stride"] = settings.stride_for(source.fps)  # the stride this video really gets
    lock = take_run_lock(store, video.id, key, path_text)
    try:
        run = store.find_run(video.id, key)
        if run is not None and run.status == "done":
            yield IndexProgress(video_path=path_text, frames_done=run.frames_done,
                                frames_total=run.frames_total, fps=0.0, eta_s=0.0, tracks=run.tracks_done,
                                done=True, skipped=True)
            return
        if run is None:
            run = open_run(store, video.id, key, recorded, detector, embedder, source.frame_count)
        # a resumed run keeps the batch/checkpoint spacing it started with (same batches, same result)
        stored = run.settings
        exec_settings = dataclasses.replace(settings, stride=int(stored.get("stride", recorded["stride"])),
                                            **{f: stored[f] for f in _EXECUTION_FIELDS if f in stored})
        state, why = _load_state(store, run, key)
        note = None
        if state is None:
            if run.frames_done or run.tracks_done:
                note = f"{path_text}: {why}; indexing starts again from the first frame."
                store.reset_run(run.id)
                run = store.get_run(run.id)
            gate = MotionGate(settings.motion) if settings.motion_gate else None
            state = _State(STATE_VERSION, __version__, key, fresh_tracker, live={}, next_track_id=1,
                           ordinal=0, last_frame=-1, gate=gate)
        worker = _Indexer(source, store, run, detector, embedder, exec_settings, state)
        worker.note = note
        yield from worker.loop(cancel)
    finally:
        lock.release()


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
        self.finished: list[LiveTrack] = []
        self.timer = _Timer()
        size = getattr(embedder, "input_size", None)
        self.input_size = (int(size[0]), int(size[1])) if size is not None else None
        max_age = getattr(state.tracker, "max_age", None)
        self.gap = max(settings.track_gap, int(max_age) + 1 if isinstance(max_age, (int, float)) else 0)
        self.frames_total = max(run.frames_total, source.frame_count)
        self.start_frame = state.last_frame + 1
        self.ended = False
        self.t0 = time.perf_counter()
        self.processed = self.detected = 0
        self._prepare_image = getattr(detector, "prepare", None)
        self._detect_prepared = getattr(detector, "detect_prepared", None)
        if self._prepare_image is None or self._detect_prepared is None:
            self._prepare_image = self._detect_prepared = None
        self._hint: MotionGate | None = None  # the decoding thread's copy of the gate (see _prepare)
        self.note: str | None = None
        """Said once, on the next progress item (a restart instead of a resume)."""

    # -- per frame ---------------------------------------------------------------------------

    def _track_frame(self, frame: Frame, dets: Detections) -> TrackedBoxes:
        state, settings = self.state, self.settings
        state.ordinal += 1
        state.last_frame = frame.index
        tracked = state.tracker.update(dets, frame.image, self._detection_embeddings(frame, dets))
        hh, ww = frame.image.shape[:2]
        for i in range(len(tracked)):
            tid = int(tracked.track_ids[i])
            live = state.live.get(tid)
            if live is None:
                live = state.live[tid] = LiveTrack(track_id=state.next_track_id, tracker_id=tid)
                state.next_track_id += 1
            box = tracked.boxes[i]
            score = float(tracked.scores[i])
            live.frames.append(frame.index)
            live.times.append(float(frame.time_s))
            live.boxes.append(tuple(float(v) for v in box))
            live.scores.append(score)
            live.last_ordinal = state.ordinal
            live.moved = live.moved or has_moved(live.boxes[0], box)
            others = np.delete(dets.boxes, int(tracked.det_index[i]), axis=0) if len(dets) else dets.boxes
            quality = crop_quality(box, score, others, ww, hh, settings)
            slot = live.offer(frame.index, quality, settings.candidates_per_track) if quality > 0 else None
            if slot is not None:
                slot.crop = copy_crop(frame.image, box, self.input_size)
        ended = [tid for tid, t in state.live.items() if state.ordinal - t.last_ordinal >= self.gap]
        for tid in ended:
            self.finished.append(state.live.pop(tid))
        return tracked

    def _starting(self, dets: Detections, tracked: TrackedBoxes) -> bool:
        """Whether a track may be starting after a frame the detector saw.

        True when the tracker holds a tentative track (``active_tracks``), or, for a tracker that
        does not say, when a detection was left unmatched to a confirmed track.
        """
        active = getattr(self.state.tracker, "active_tracks", None)
        if callable(active):
            return any(state == TENTATIVE for _, state, _ in active())
        return len(dets) > len(tracked)

    def _detection_embeddings(self, frame: Frame, dets: Detections) -> LazyEmbeddings | None:
        """Vectors of the detections for a tracker that ``needs_embeddings`` (made as it reads them)."""
        if not getattr(self.state.tracker, "needs_embeddings", False):
            return None
        return LazyEmbeddings.of(self.embedder, frame.image, dets.boxes)

    # -- checkpoints -------------------------------------------------------------------------

    def _embed_finished(self) -> list[NewTrack]:
        settings = self.settings
        keep: list[tuple[LiveTrack, list[Candidate]]] = []
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
                             warning=self.source.truncation_warning if done else None,
                             processed=self.processed, detected=self.detected, note=note)

    # -- main loop ---------------------------------------------------------------------------

    def _prepare(self, frame: Frame) -> Prepared:
        """In the decoding thread: the gate's small copy and, unless the gate skips the frame, the letterbox.

        ``self._hint`` replays the gate's own comparisons (same frames, same order, from the
        same previous copy), so a frame without motion is not letterboxed ahead; should the
        detector see it all the same (a live track), :meth:`_process` letterboxes it then.
        """
        small = None
        if self._hint is not None:
            small = small_grey(frame.image, self._hint.config.width)
            if not self._hint.update(small):
                return Prepared(frame, None, small)
        net = self._prepare_image(frame.image) if self._prepare_image is not None else None
        return Prepared(frame, net, small)

    def loop(self, cancel: threading.Event | None) -> Iterator[IndexProgress]:
        settings = self.settings
        start = self.state.last_frame + settings.stride if self.state.last_frame >= 0 else 0
        if self.run.status != "running":
            self.store.set_run_status(self.run.id, "running")
        decoded = self.source.iter_frames(settings.stride, start)
        self._hint = None
        if self.state.gate is not None:
            self._hint = MotionGate(self.state.gate.config)
            self._hint.previous = self.state.gate.previous
        frames = (Prefetcher(decoded, self._prepare, settings.prefetch) if settings.prefetch
                  else Inline(decoded, self._prepare))
        batch: list[Prepared] = []
        try:
            while True:
                t = time.perf_counter()
                item = next(frames, None)
                self.timer.add("decode", t)
                if cancel is not None and cancel.is_set():
                    self._checkpoint("cancelled")
                    self.ended = True
                    yield self._progress()
                    return
                if item is not None:
                    batch.append(item)
                    if len(batch) < settings.det_batch:
                        continue
                if batch:
                    self._process(batch)
                    batch = []
                    if self.state.ordinal % settings.commit_every == 0:
                        self._checkpoint("running")
                if item is None:
                    self._checkpoint("done", final=True)
                    self.ended = True
                    yield self._progress(done=True)
                    return
                yield self._progress()
        except GeneratorExit:
            if not self.ended:
                self._checkpoint("cancelled")
            raise
        except Exception as err:
            record_failure(self.store, self.run.id, err)  # a library error itself writes nothing
            raise
        finally:
            frames.close()

    def _shown(self, batch: list[Prepared]) -> list[bool]:
        """Which frames of a batch the detector sees (the motion gate, see the module notes)."""
        gate, state = self.state.gate, self.state
        if gate is None:
            return [True] * len(batch)
        moving = [gate.update(item.small) for item in batch]  # every frame updates the gate, in order
        if state.starting or any(t.moved for t in state.live.values()):
            return [True] * len(batch)
        first = moving.index(True) if True in moving else len(batch)
        return [i >= first for i in range(len(batch))]

    def _process(self, batch: list[Prepared]) -> None:
        t = time.perf_counter()
        shown = [item for item, on in zip(batch, self._shown(batch), strict=True) if on]
        images = [item.frame.image for item in shown]
        if not shown:
            found = []
        elif self._detect_prepared is not None:
            nets = [item.net_input if item.net_input is not None else self._prepare_image(item.frame.image)
                    for item in shown]
            found = self._detect_prepared(images, nets)
        else:
            found = self.detector.detect(images)
        dets = dict(zip((id(item) for item in shown), found, strict=True))
        self.processed += len(batch)
        self.detected += len(shown)
        t = self.timer.add("detect", t)
        for item in batch:
            d = dets.get(id(item))
            tracked = self._track_frame(item.frame, d if d is not None else Detections.empty())
            if d is not None:
                self.state.starting = self._starting(d, tracked)
        self.timer.add("track", t)
